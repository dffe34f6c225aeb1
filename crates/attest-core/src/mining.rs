//! Process mining at the edge: Attest's runs as an event log, a template as a
//! checklist to check logs against, and a template drafted from a log.
//!
//! # The exported log
//!
//! One trace per run that has at least one task event (an empty trace tells
//! a mining tool nothing, and pm4py's data frames drop it). The case id is
//! the run id; the trace carries `attest:run_name`, `attest:template`,
//! `attest:template_version`, `attest:status`, `attest:started_at` and, once
//! the run ended, `attest:finished_at`.
//!
//! One event per `task_completed`, `task_approved` and `task_rejected`, in
//! ledger order. The activity is the task key, so a log of a template's runs
//! can be checked against that template; starting, completing and cancelling
//! the run are trace attributes rather than events for the same reason. The
//! lifecycle is `complete`, the timestamp the event's `at`, the resource the
//! actor (an email for a person; `token:`, `agent:` or `system:` otherwise).
//! Approvals and rejections carry `attest:decision` (`approved` or
//! `rejected`), and acts of an admin for someone else `attest:overridden`.
//!
//! # Checking a log against a template
//!
//! [`template_model`] gives one step per task in template order: optional
//! when the task has a `show_when`, repeatable when a rejection can send it
//! back (an approval, or a task some approval signs off). [`conform_template`]
//! treats every occurrence of a repeatable step but the last as rework: it
//! is neither out of order nor repeated, so a rejected and redone approval
//! still fits. Fitness stays `1 - deviations / (steps + events)` per case.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use attest_engine::{Event, EventBody};
use attest_mining::{
    Attribute, AttributeValue, CaseConformance, Deviation, DraftStep, EventLog, SequenceConformance, SequenceModel,
    SequenceStep, Trace, conform_sequence, draft_sequence,
};
use attest_store::{RunFilter, RunRow};
use attest_template::limits::MAX_NAME_CHARS;
use attest_template::{Assignee, Condition, Diagnostic, Field, FieldKind, Op, Task, TaskType, Template};

use crate::error::{Error, Result};
use crate::workspace::Workspace;

/// Runs read per page while exporting.
const PAGE: u32 = 500;
/// Longest task key the drafter makes, so `<key>_applies` is a field key too.
const MAX_DRAFT_KEY: usize = 63 - "_applies".len();

/// The runs of the workspace, or of one template, as an event log (see the
/// module documentation), oldest run first.
pub fn runs_to_log(ws: &Workspace, template: Option<&str>) -> Result<EventLog> {
    if let Some(key) = template {
        ws.template_row(key, None)?;
    }
    let mut log = EventLog::new();
    log.attributes.push(string_attribute("concept:name", "Attest runs"));
    let mut filter = RunFilter { template: template.map(str::to_owned), limit: PAGE, ..RunFilter::default() };
    loop {
        let page = ws.runs(&filter)?;
        let Some(last) = page.last() else { break };
        filter.before = Some(last.id.clone());
        let full = page.len() >= PAGE as usize;
        for row in &page {
            let trace = run_trace(&mut log, row, &ws.run_events(&row.id)?);
            if !trace.events.is_empty() {
                log.traces.push(trace);
            }
        }
        if !full {
            break;
        }
    }
    // Pages come newest first.
    log.traces.reverse();
    Ok(log)
}

fn run_trace(log: &mut EventLog, row: &RunRow, events: &[(u64, Event)]) -> Trace {
    let mut trace = Trace::new(row.id.clone());
    trace.attributes = vec![
        string_attribute("attest:run_name", &row.name),
        string_attribute("attest:template", &row.template_key),
        Attribute { key: "attest:template_version".into(), value: AttributeValue::Int(row.template_version.into()) },
        string_attribute("attest:status", row.status.as_str()),
        Attribute { key: "attest:started_at".into(), value: AttributeValue::Date(row.started_at.as_microsecond()) },
    ];
    if let Some(finished) = row.finished_at {
        trace.attributes.push(Attribute {
            key: "attest:finished_at".into(),
            value: AttributeValue::Date(finished.as_microsecond()),
        });
    }
    let complete: Arc<str> = "complete".into();
    for (_, event) in events {
        let (task, decision, overridden) = match &event.body {
            EventBody::TaskCompleted { task, overridden } => (task, None, *overridden),
            EventBody::TaskApproved { task, overridden, .. } => (task, Some("approved"), *overridden),
            EventBody::TaskRejected { task, overridden, .. } => (task, Some("rejected"), *overridden),
            _ => continue,
        };
        let mut mined = attest_mining::Event::new(log.activities.intern(task)).at(event.at.as_microsecond());
        mined.lifecycle = Some(complete.clone());
        mined.resource = Some(event.by.to_string().into());
        if let Some(decision) = decision {
            mined.attributes.push(string_attribute("attest:decision", decision));
        }
        if overridden {
            mined.attributes.push(Attribute { key: "attest:overridden".into(), value: AttributeValue::Boolean(true) });
        }
        trace.events.push(mined);
    }
    // Ledger order is time order; equal times keep it.
    trace.sort_by_timestamp();
    trace
}

fn string_attribute(key: &str, value: &str) -> Attribute {
    Attribute { key: key.into(), value: AttributeValue::String(value.into()) }
}

/// The template as an ordered checklist of its task keys (see the module
/// documentation).
pub fn template_model(template: &Template) -> SequenceModel {
    let subjects: HashSet<&str> = template.tasks.iter().flat_map(|t| t.approves.iter().map(String::as_str)).collect();
    // A validated template has unique task keys; should one repeat, its
    // first task stands for it.
    let mut seen = HashSet::new();
    let steps = template
        .tasks
        .iter()
        .filter(|task| seen.insert(task.key.as_str()))
        .map(|task| SequenceStep {
            activity: task.key.clone(),
            optional: task.show_when.is_some(),
            repeatable: task.task_type == TaskType::Approval || subjects.contains(task.key.as_str()),
        })
        .collect();
    SequenceModel::new(steps).expect("task keys are deduplicated")
}

/// Checks `log` against the template's checklist, counting earlier
/// occurrences of repeatable steps as rework (see the module documentation).
pub fn conform_template(log: &EventLog, template: &Template) -> SequenceConformance {
    let model = template_model(template);
    let repeatable: HashSet<&str> =
        model.steps().iter().filter(|step| step.repeatable).map(|step| step.activity.as_str()).collect();
    // The log without rework, and for each kept event its index in the case.
    let mut last_pass = EventLog { attributes: Vec::new(), traces: Vec::new(), activities: log.activities.clone() };
    let mut kept_index: Vec<Vec<usize>> = Vec::with_capacity(log.traces.len());
    for trace in &log.traces {
        let mut later = HashSet::new();
        let mut keep = vec![true; trace.events.len()];
        for (index, event) in trace.events.iter().enumerate().rev() {
            let activity = event.activity;
            if repeatable.contains(log.activity_name(activity)) && !later.insert(activity) {
                keep[index] = false;
            }
        }
        let mut filtered = Trace::new(trace.case_id.clone());
        let mut indexes = Vec::new();
        for (index, event) in trace.events.iter().enumerate().filter(|(index, _)| keep[*index]) {
            filtered.events.push(event.clone());
            indexes.push(index);
        }
        last_pass.traces.push(filtered);
        kept_index.push(indexes);
    }
    let checked = conform_sequence(&last_pass, &model);
    let step_count = model.steps().len();
    let (mut deviation_total, mut size_total) = (0usize, 0usize);
    let cases: Vec<CaseConformance> = checked
        .cases
        .into_iter()
        .zip(&log.traces)
        .zip(&kept_index)
        .map(|((case, trace), indexes)| {
            let original = |index: usize| indexes.get(index).copied().unwrap_or(trace.events.len());
            let deviations: Vec<Deviation> = case
                .deviations
                .into_iter()
                .map(|deviation| match deviation {
                    Deviation::Skipped { event_index, step_index, activity } => {
                        Deviation::Skipped { event_index: original(event_index), step_index, activity }
                    }
                    Deviation::Extra { event_index, activity } => {
                        Deviation::Extra { event_index: original(event_index), activity }
                    }
                    Deviation::OutOfOrder { event_index, step_index, activity } => {
                        Deviation::OutOfOrder { event_index: original(event_index), step_index, activity }
                    }
                    Deviation::Repeated { event_index, step_index, activity } => {
                        Deviation::Repeated { event_index: original(event_index), step_index, activity }
                    }
                })
                .collect();
            let size = step_count + trace.events.len();
            deviation_total += deviations.len();
            size_total += size;
            CaseConformance { case_id: case.case_id, fitness: fitness(deviations.len(), size), deviations }
        })
        .collect();
    let mean_case_fitness =
        if cases.is_empty() { 1.0 } else { cases.iter().map(|case| case.fitness).sum::<f64>() / cases.len() as f64 };
    SequenceConformance {
        fitness: fitness(deviation_total, size_total),
        mean_case_fitness,
        fitting_cases: cases.iter().filter(|case| case.deviations.is_empty()).count(),
        cases,
    }
}

fn fitness(deviations: usize, size: usize) -> f64 {
    if size == 0 { 1.0 } else { 1.0 - deviations as f64 / size as f64 }
}

/// Drafts a template from a log: one task per activity in the dominant order
/// (`draft_sequence`), keys slugified from the activity names, `stop` where
/// the activity's position never varies, assigned to a role named after the
/// activity's most frequent resource (or the starter when the log has none).
/// Activities missing from some cases become tasks shown only when a checkbox
/// on the first task says they apply; the first task itself is never
/// conditional (it asks the questions) and its instructions say when it was
/// optional. The result always went through `attest_template::validate`.
pub fn draft_template(log: &EventLog, key: &str, name: &str) -> std::result::Result<Template, Vec<Diagnostic>> {
    let draft = draft_sequence(log);
    let resources = top_resources(log);
    let has_resources = !resources.is_empty();
    let case_count = log.traces.len();
    let mut used_keys = HashSet::new();
    let mut roles: Vec<String> = Vec::new();
    let mut tasks: Vec<Task> = Vec::with_capacity(draft.len());
    let mut questions: Vec<Field> = Vec::new();
    for (position, step) in draft.iter().enumerate() {
        let task_key = unique_key(&slug(&step.activity, false, MAX_DRAFT_KEY, "task"), &mut used_keys);
        let assignee = match resources.get(step.activity.as_str()) {
            Some(resource) => {
                let role = slug(resource, true, 63, "resource");
                if !roles.contains(&role) {
                    roles.push(role.clone());
                }
                Assignee::Role(role)
            }
            None => Assignee::Starter,
        };
        let conditional = step.optional && position > 0;
        let show_when = conditional.then(|| {
            let field = format!("{task_key}_applies");
            questions.push(Field {
                key: field.clone(),
                label: truncate(
                    &format!("Does '{}' apply to this case?", truncate(&step.activity, 150)),
                    MAX_NAME_CHARS,
                ),
                kind: FieldKind::Checkbox,
                required: false,
                help: None,
                default: None,
                show_when: None,
            });
            Condition::Compare { field, op: Op::Is, value: Some(serde_json::Value::Bool(true)) }
        });
        let display =
            if step.activity.trim().is_empty() { task_key.clone() } else { truncate(&step.activity, MAX_NAME_CHARS) };
        tasks.push(Task {
            key: task_key,
            name: display,
            task_type: TaskType::Task,
            instructions: Some(instructions(step, case_count)),
            assignee,
            stop: step.fixed_position,
            approves: Vec::new(),
            show_when,
            controls: Vec::new(),
            due: None,
            remind: Vec::new(),
            escalate: Vec::new(),
            fields: Vec::new(),
            http: None,
        });
    }
    if let Some(first) = tasks.first_mut() {
        first.fields = questions;
    }
    let template = Template {
        format: attest_template::FORMAT_V1.to_owned(),
        key: key.to_owned(),
        name: name.to_owned(),
        description: Some(format!(
            "Drafted from an event log of {case_count} cases and {} events{}; review it before publishing.",
            log.event_count(),
            if has_resources { ", with roles named after each activity's most frequent resource" } else { "" }
        )),
        owner: None,
        policy: None,
        roles,
        controls: Vec::new(),
        tasks,
    };
    attest_template::validate(&template)?;
    Ok(template)
}

/// Drafts a template, as [`draft_template`], reporting invalidity as an error.
pub fn draft_template_checked(log: &EventLog, key: &str, name: &str) -> Result<Template> {
    draft_template(log, key, name).map_err(Error::InvalidTemplate)
}

fn instructions(step: &DraftStep, case_count: usize) -> String {
    let mut text = format!("Drafted from the log: '{}' occurs in {} of {case_count} cases", step.activity, step.cases);
    text += if step.fixed_position {
        ", always at this point of the order."
    } else {
        ", not always at this point of the order."
    };
    if step.repeatable {
        text += " It occurs more than once in some cases.";
    }
    truncate(&text, attest_template::limits::MAX_TEXT_CHARS)
}

/// The most frequent resource of each activity (ties: the first in name
/// order); empty when no event has a resource.
fn top_resources(log: &EventLog) -> HashMap<&str, String> {
    let mut counts: HashMap<&str, BTreeMap<&str, usize>> = HashMap::new();
    for event in log.traces.iter().flat_map(|trace| &trace.events) {
        if let Some(resource) = event.resource.as_deref().filter(|r| !r.trim().is_empty()) {
            *counts.entry(log.activity_name(event.activity)).or_default().entry(resource).or_default() += 1;
        }
    }
    counts
        .into_iter()
        .filter_map(|(activity, by_resource)| {
            let mut best: Option<(&str, usize)> = None;
            for (resource, count) in by_resource {
                if best.is_none_or(|(_, top)| count > top) {
                    best = Some((resource, count));
                }
            }
            best.map(|(resource, _)| (activity, resource.to_owned()))
        })
        .collect()
}

/// Lowercase ASCII letters and digits with single `_` between words, at most
/// `max` characters. A task key starts with a letter (else `fallback_` is
/// put in front); a role may start with a digit and keeps `-`.
fn slug(text: &str, role: bool, max: usize, fallback: &str) -> String {
    let mut out = String::new();
    for ch in text.chars().flat_map(char::to_lowercase) {
        let keep = ch.is_ascii_lowercase() || ch.is_ascii_digit() || (role && ch == '-');
        if keep {
            out.push(ch);
        } else if !out.is_empty() && !out.ends_with('_') {
            out.push('_');
        }
    }
    let mut out = out.trim_end_matches('_').to_owned();
    let starts_well = out.chars().next().is_some_and(|c| c.is_ascii_lowercase() || (role && c.is_ascii_digit()));
    if out.is_empty() {
        out = fallback.to_owned();
    } else if !starts_well {
        out = format!("{fallback}_{out}");
    }
    out.truncate(max);
    out.trim_end_matches('_').to_owned()
}

/// `base`, or `base_2`, `base_3`... (within [`MAX_DRAFT_KEY`]) when taken.
fn unique_key(base: &str, used: &mut HashSet<String>) -> String {
    let mut candidate = base.to_owned();
    let mut number = 2usize;
    while used.contains(&candidate) {
        let suffix = format!("_{number}");
        let mut stem = base.to_owned();
        stem.truncate(MAX_DRAFT_KEY - suffix.len());
        candidate = format!("{}{suffix}", stem.trim_end_matches('_'));
        number += 1;
    }
    used.insert(candidate.clone());
    candidate
}

/// At most `max` characters.
fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => text[..at].to_owned(),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(cases: &[&[(&str, &str)]]) -> EventLog {
        let mut log = EventLog::new();
        for (index, case) in cases.iter().enumerate() {
            let mut trace = Trace::new(index.to_string());
            for (activity, resource) in *case {
                let mut event = attest_mining::Event::new(log.activities.intern(activity));
                event.resource = (!resource.is_empty()).then(|| (*resource).into());
                trace.events.push(event);
            }
            log.traces.push(trace);
        }
        log
    }

    #[test]
    fn slugs_fit_the_key_rules() {
        assert_eq!(slug("Register Request", false, MAX_DRAFT_KEY, "task"), "register_request");
        assert_eq!(slug("  T04 Determine -- receipt!", false, MAX_DRAFT_KEY, "task"), "t04_determine_receipt");
        assert_eq!(slug("4 eyes", false, MAX_DRAFT_KEY, "task"), "task_4_eyes");
        assert_eq!(slug("Überprüfung", false, MAX_DRAFT_KEY, "task"), "berpr_fung");
        assert_eq!(slug("???", false, MAX_DRAFT_KEY, "task"), "task");
        assert_eq!(slug("alice@example.com", true, 63, "resource"), "alice_example_com");
        assert_eq!(slug("12-ops", true, 63, "resource"), "12-ops");
        assert!(slug(&"x".repeat(300), false, MAX_DRAFT_KEY, "task").len() <= MAX_DRAFT_KEY);
        let mut used = HashSet::new();
        let long = "y".repeat(MAX_DRAFT_KEY);
        assert_eq!(unique_key(&long, &mut used), long);
        let second = unique_key(&long, &mut used);
        assert!(second.ends_with("_2") && second.len() <= MAX_DRAFT_KEY, "{second}");
    }

    #[test]
    fn draft_is_valid_with_roles_conditions_and_stops() {
        let log = log(&[
            &[("Open case", "Ann"), ("Check", "Bob"), ("Close", "Ann")],
            &[("Open case", "Ann"), ("Check", "Bob"), ("Close", "Ann")],
            &[("Open case", "Ann"), ("Check", "Bob"), ("Escalate!", "Cy"), ("Close", "Ann")],
            &[("Open case", "Ann"), ("Check", "Bob"), ("Close", "Dee"), ("check", "Bob")],
        ]);
        let template = draft_template(&log, "drafted", "Drafted").expect("valid draft");
        let keys: Vec<&str> = template.tasks.iter().map(|t| t.key.as_str()).collect();
        assert_eq!(keys, ["open_case", "check", "escalate", "close", "check_2"]);
        assert_eq!(template.roles, ["ann", "bob", "cy"]);
        assert_eq!(template.tasks[0].assignee, Assignee::Role("ann".into()));
        assert!(template.tasks[0].stop);
        let fields: Vec<&str> = template.tasks[0].fields.iter().map(|f| f.key.as_str()).collect();
        assert_eq!(fields, ["escalate_applies", "check_2_applies"]);
        assert!(template.tasks[2].show_when.is_some() && template.tasks[3].show_when.is_none());
        let yaml = attest_template::to_yaml(&template);
        let parsed = attest_template::parse(&yaml, attest_template::SourceFormat::Yaml, None).expect("parses again");
        assert_eq!(parsed, template);
    }

    #[test]
    fn drafts_without_resources_use_the_starter_and_empty_logs_are_invalid() {
        let plain = log(&[&[("a", ""), ("b", "")]]);
        let template = draft_template(&plain, "plain", "Plain").expect("valid");
        assert!(template.roles.is_empty() && template.tasks.iter().all(|t| t.assignee == Assignee::Starter));
        let diagnostics = draft_template(&EventLog::new(), "empty", "Empty").expect_err("no tasks");
        assert!(diagnostics.iter().any(|d| d.message.contains("at least one task")), "{diagnostics:?}");
    }

    fn vendor() -> Template {
        let source = include_str!("../../../examples/vendor-onboarding.yaml");
        attest_template::parse(source, attest_template::SourceFormat::Yaml, None).expect("example parses")
    }

    #[test]
    fn template_model_marks_optional_and_rework_steps() {
        let model = template_model(&vendor());
        let steps: Vec<(&str, bool, bool)> =
            model.steps().iter().map(|s| (s.activity.as_str(), s.optional, s.repeatable)).collect();
        assert_eq!(
            steps,
            [("request", false, true), ("security_review", true, true), ("finance_approval", true, true)]
        );
    }

    #[test]
    fn rework_fits_and_real_deviations_are_located() {
        let mut log = EventLog::new();
        log.push_case(
            "rework",
            ["request", "security_review", "finance_approval", "request", "security_review", "finance_approval"],
        );
        log.push_case("skipped", ["security_review", "finance_approval"]);
        log.push_case("swapped", ["finance_approval", "request", "audit"]);
        let result = conform_template(&log, &vendor());
        assert_eq!(result.cases[0].fitness, 1.0, "{:?}", result.cases[0]);
        assert_eq!(
            result.cases[1].deviations,
            [Deviation::Skipped { event_index: 0, step_index: 0, activity: "request".into() }]
        );
        assert_eq!(result.cases[1].fitness, 1.0 - 1.0 / 5.0);
        assert_eq!(
            result.cases[2].deviations,
            [
                Deviation::OutOfOrder { event_index: 0, step_index: 2, activity: "finance_approval".into() },
                Deviation::Extra { event_index: 2, activity: "audit".into() },
            ]
        );
        assert_eq!(result.fitting_cases, 1);
        assert_eq!(result.fitness, 1.0 - 3.0 / (9.0 + 5.0 + 6.0));
    }
}

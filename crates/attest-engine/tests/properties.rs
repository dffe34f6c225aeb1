//! Properties over random valid templates and random command sequences: the
//! rules hold after every accepted command, refusals change nothing, and the
//! state is always the fold of the events.

mod common;

use std::cell::RefCell;

use attest_engine::condition::Visibility;
use attest_engine::decide::may_act;
use attest_engine::value::is_empty;
use attest_engine::{Actor, Command, CompiledTemplate, Event, EventBody, RunState, RunStatus, Values, execute};
use attest_template::{Condition, Field, FieldKind, NumberRules, Op, OptionRules, Task, TaskType, Template, TextRules};
use common::{approval, compile, field, task, template};
use jiff::Timestamp;
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{Value, json};

// ----- Random templates ----------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Text,
    Number,
    Checkbox,
    Select,
}

/// A condition on "some earlier field", resolved once the earlier fields are known.
#[derive(Debug, Clone)]
struct ConditionSpec {
    field: Index,
    variant: usize,
    negate: bool,
}

#[derive(Debug, Clone)]
struct FieldSpec {
    kind: Kind,
    required: bool,
    show_when: Option<ConditionSpec>,
}

#[derive(Debug, Clone)]
struct TaskSpec {
    /// Picks among earlier plain tasks; an approval when non-empty and possible.
    approves: Vec<Index>,
    stop: bool,
    assignee: usize,
    show_when: Option<ConditionSpec>,
    fields: Vec<FieldSpec>,
}

const ASSIGNEES: [&str; 4] = ["starter", "role:a", "role:b", "role:c"];

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![Just(Kind::Text), Just(Kind::Number), Just(Kind::Checkbox), Just(Kind::Select)]
}

fn condition_spec() -> impl Strategy<Value = Option<ConditionSpec>> {
    let spec = (any::<Index>(), 0..3usize, prop::bool::weighted(0.2))
        .prop_map(|(field, variant, negate)| ConditionSpec { field, variant, negate });
    prop::option::weighted(0.4, spec)
}

fn field_spec() -> impl Strategy<Value = FieldSpec> {
    (kind(), prop::bool::weighted(0.6), prop::option::weighted(0.3, condition_spec()).prop_map(Option::flatten))
        .prop_map(|(kind, required, show_when)| FieldSpec { kind, required, show_when })
}

fn task_spec() -> impl Strategy<Value = TaskSpec> {
    (
        prop_oneof![Just(Vec::new()), prop::collection::vec(any::<Index>(), 1..=3)],
        prop::bool::weighted(0.25),
        0..ASSIGNEES.len(),
        condition_spec(),
        prop::collection::vec(field_spec(), 0..=3),
    )
        .prop_map(|(approves, stop, assignee, show_when, fields)| TaskSpec {
            approves,
            stop,
            assignee,
            show_when,
            fields,
        })
}

/// A condition a person could write about an earlier field of this kind.
fn condition(spec: &ConditionSpec, earlier: &[(String, Kind)]) -> Option<Condition> {
    if earlier.is_empty() {
        return None;
    }
    let (key, kind) = spec.field.get(earlier);
    let (op, value) = match (kind, spec.variant) {
        (Kind::Text, 0) => (Op::HasValue, None),
        (Kind::Text, 1) => (Op::HasNoValue, None),
        (Kind::Text, _) => (Op::Is, Some(json!("abc"))),
        (Kind::Number, 0) => (Op::Gt, Some(json!(10))),
        (Kind::Number, 1) => (Op::Lte, Some(json!(50))),
        (Kind::Number, _) => (Op::Is, Some(json!(5))),
        (Kind::Checkbox, 0) => (Op::Is, Some(json!(true))),
        (Kind::Checkbox, 1) => (Op::Is, Some(json!(false))),
        (Kind::Checkbox, _) => (Op::IsNot, Some(json!(true))),
        (Kind::Select, 0) => (Op::Is, Some(json!("high"))),
        (Kind::Select, 1) => (Op::IsNot, Some(json!("low"))),
        (Kind::Select, _) => (Op::Contains, Some(json!("ig"))),
    };
    let compare = Condition::Compare { field: key.clone(), op, value };
    Some(if spec.negate { Condition::Not { not: Box::new(compare) } } else { compare })
}

fn field_kind(kind: Kind) -> FieldKind {
    match kind {
        Kind::Text => FieldKind::Text(TextRules { max_length: Some(8), ..TextRules::default() }),
        Kind::Number => FieldKind::Number(NumberRules { min: Some(0.0), max: Some(100.0), decimals: Some(0) }),
        Kind::Checkbox => FieldKind::Checkbox,
        Kind::Select => FieldKind::Select(OptionRules { options: vec!["low".into(), "medium".into(), "high".into()] }),
    }
}

/// Builds a valid template: conditions and approvals only look back.
fn build(specs: &[TaskSpec]) -> Template {
    let mut earlier: Vec<(String, Kind)> = Vec::new();
    let mut plain: Vec<String> = Vec::new();
    let mut tasks: Vec<Task> = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        let key = format!("t{i}");
        let show_when = spec.show_when.as_ref().and_then(|c| condition(c, &earlier));
        let assignee = ASSIGNEES[spec.assignee];
        if !spec.approves.is_empty() && !plain.is_empty() {
            let mut approves: Vec<&str> = spec.approves.iter().map(|p| p.get(&plain).as_str()).collect();
            approves.sort();
            approves.dedup();
            tasks.push(Task { stop: spec.stop, show_when, ..approval(&key, assignee, &approves) });
            continue;
        }
        let mut fields = Vec::new();
        let mut visible_to_later = earlier.clone();
        for (j, f) in spec.fields.iter().enumerate() {
            let fkey = format!("t{i}f{j}");
            let show_when = f.show_when.as_ref().and_then(|c| condition(c, &visible_to_later));
            fields.push(Field { required: f.required, show_when, ..field(&fkey, field_kind(f.kind)) });
            visible_to_later.push((fkey, f.kind));
        }
        earlier = visible_to_later;
        plain.push(key.clone());
        tasks.push(Task { stop: spec.stop, show_when, ..task(&key, assignee, fields) });
    }
    template(tasks)
}

fn templates() -> impl Strategy<Value = Template> {
    prop::collection::vec(task_spec(), 2..=8).prop_map(|specs| build(&specs))
}

// ----- Random people and commands ------------------------------------------------

fn actors() -> impl Strategy<Value = Vec<Actor>> {
    let roles = prop::sample::subsequence(vec!["a", "b", "c", "process-owner"], 1..=3);
    prop::collection::vec((roles, prop::bool::weighted(0.15)), 4).prop_map(|people| {
        people
            .into_iter()
            .enumerate()
            .map(|(i, (roles, admin))| {
                Actor::person(&format!("p{i}@example.com"), roles.into_iter().map(String::from).collect(), admin)
            })
            .collect()
    })
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum StepKind {
    SetFields,
    Complete,
    Approve,
    Reject,
    Comment,
    Cancel,
}

#[derive(Debug, Clone)]
struct Step {
    kind: StepKind,
    task: Index,
    actor: Index,
    /// Pick among tasks of the right type that are visible and open.
    prefer_open: bool,
    /// Pick among actors who may act on the task.
    prefer_assignee: bool,
    /// Complete with a valid value in every visible field.
    fill: bool,
    /// Per field of the task: whether to set it, valid or not, and which value.
    values: Vec<(bool, bool, Index)>,
    /// Give the comment, reason or rejection some text, or only blanks.
    with_text: bool,
}

fn step() -> impl Strategy<Value = Step> {
    let kind = prop_oneof![
        20 => Just(StepKind::SetFields),
        40 => Just(StepKind::Complete),
        20 => Just(StepKind::Approve),
        7 => Just(StepKind::Reject),
        3 => Just(StepKind::Comment),
        1 => Just(StepKind::Cancel),
    ];
    (
        kind,
        any::<Index>(),
        any::<Index>(),
        prop::bool::weighted(0.85),
        prop::bool::weighted(0.8),
        prop::bool::weighted(0.6),
        prop::collection::vec((any::<bool>(), prop::bool::weighted(0.7), any::<Index>()), 3),
        prop::bool::weighted(0.8),
    )
        .prop_map(|(kind, task, actor, prefer_open, prefer_assignee, fill, values, with_text)| Step {
            kind,
            task,
            actor,
            prefer_open,
            prefer_assignee,
            fill,
            values,
            with_text,
        })
}

fn value_for(kind: Kind, valid: bool, pick: Index) -> Value {
    let choices = match (kind, valid) {
        (Kind::Text, true) => vec![json!("abc"), json!("hello")],
        (Kind::Text, false) => vec![json!("far too long"), json!(""), json!(["abc"])],
        (Kind::Number, true) => vec![json!(5), json!(50), json!("100"), json!(0)],
        (Kind::Number, false) => vec![json!(-1), json!(1000), json!(2.5), json!("x"), Value::Null],
        (Kind::Checkbox, true) => vec![json!(true), json!(false), json!("yes")],
        (Kind::Checkbox, false) => vec![json!("maybe"), Value::Null],
        (Kind::Select, true) => vec![json!("low"), json!("medium"), json!("high")],
        (Kind::Select, false) => vec![json!("extreme"), json!("")],
    };
    pick.get(&choices).clone()
}

fn kind_of(field: &Field) -> Kind {
    match field.kind {
        FieldKind::Text(_) => Kind::Text,
        FieldKind::Number(_) => Kind::Number,
        FieldKind::Checkbox => Kind::Checkbox,
        _ => Kind::Select,
    }
}

/// Turns an abstract step into a command and an actor for the current state.
fn materialise(step: &Step, t: &CompiledTemplate, state: &RunState, people: &[Actor]) -> (Command, Actor) {
    let tasks = &t.template.tasks;
    let visibility = Visibility::compute(t, &state.values);
    let wants_approval = matches!(step.kind, StepKind::Approve | StepKind::Reject);
    let open: Vec<usize> = (0..tasks.len())
        .filter(|&i| visibility.tasks[i] && !state.tasks[i].done)
        .filter(|&i| (tasks[i].task_type == TaskType::Approval) == wants_approval)
        .collect();
    let all: Vec<usize> = (0..tasks.len()).collect();
    let ti = *step.task.get(if step.prefer_open && !open.is_empty() { &open } else { &all });
    let task = &tasks[ti];
    let assignees: Vec<&Actor> = people.iter().filter(|a| may_act(task, state, ti, a)).collect();
    let actor = if step.prefer_assignee && !assignees.is_empty() {
        (*step.actor.get(&assignees)).clone()
    } else {
        step.actor.get(people).clone()
    };
    let mut values = Values::new();
    for (fi, f) in task.fields.iter().enumerate() {
        let (set, valid, pick) = step.values[fi];
        if step.fill && step.kind == StepKind::Complete && visibility.field_at(ti, fi) {
            values.insert(f.key.clone(), value_for(kind_of(f), true, pick));
        } else if set {
            values.insert(f.key.clone(), value_for(kind_of(f), valid, pick));
        }
    }
    let text = if step.with_text { "looks wrong".to_string() } else { " ".to_string() };
    let key = task.key.clone();
    let command = match step.kind {
        StepKind::SetFields => Command::SetFields { task: key, values },
        StepKind::Complete => Command::Complete { task: key, values },
        StepKind::Approve => Command::Approve { task: key, comment: step.with_text.then(|| "ok".into()) },
        StepKind::Reject => Command::Reject { task: key, comment: text },
        StepKind::Comment => Command::Comment { task: key, text },
        StepKind::Cancel => Command::Cancel { reason: text },
    };
    (command, actor)
}

// ----- Invariants ------------------------------------------------------------------

fn ensure(holds: bool, what: impl FnOnce() -> String) -> Result<(), TestCaseError> {
    if holds { Ok(()) } else { Err(TestCaseError::fail(what())) }
}

/// The rules, checked on the events of one accepted command and the state after it.
fn check_invariants(t: &CompiledTemplate, events: &[Event], state: &RunState) -> Result<(), TestCaseError> {
    let tasks = &t.template.tasks;
    let vis = Visibility::compute(t, &state.values);
    let index = |key: &str| t.template.task_index(key).expect("events name template tasks");
    let missing_required = |ti: usize| {
        tasks[ti]
            .fields
            .iter()
            .enumerate()
            .find(|&(fi, f)| vis.field_at(ti, fi) && f.required && state.values.get(&f.key).is_none_or(is_empty))
    };
    for event in events {
        match &event.body {
            EventBody::TaskCompleted { task, .. } => {
                let ti = index(task);
                ensure(vis.tasks[ti], || format!("(a) hidden task {task} completed"))?;
                ensure(missing_required(ti).is_none(), || format!("(a) {task} completed without a required value"))?;
            }
            EventBody::TaskApproved { .. } | EventBody::TaskRejected { .. } => {}
            _ => continue,
        }
        let Some(task) = event.body.task() else {
            continue;
        };
        let ti = index(task);
        if !matches!(event.body, EventBody::TaskRejected { .. }) {
            let blocked = (0..ti).find(|&j| tasks[j].stop && vis.tasks[j] && !state.tasks[j].done);
            ensure(blocked.is_none(), || format!("(b) {task} done behind open stop task {blocked:?}"))?;
        }
        for subject in &tasks[ti].approves {
            let si = index(subject);
            let own = vis.tasks[si] && state.tasks[si].completed_by.as_deref() == Some(&*event.by.id);
            ensure(!own, || format!("(c) {} decided {task} on their own task {subject}", event.by))?;
        }
    }
    for (ti, task) in tasks.iter().enumerate() {
        let ts = &state.tasks[ti];
        if state.status == RunStatus::Completed {
            ensure(ts.done || !vis.tasks[ti], || format!("(d) run completed with {} open", task.key))?;
        }
        if ts.done && vis.tasks[ti] {
            ensure(missing_required(ti).is_none(), || format!("done task {} lacks a required value", task.key))?;
        }
        if ts.done && task.task_type == TaskType::Approval {
            for subject in &task.approves {
                let s = &state.tasks[index(subject)];
                let signed = !vis.tasks[index(subject)] || (s.done && s.completed_by != ts.completed_by);
                ensure(signed, || format!("approval {} stands over {subject}, open or its own", task.key))?;
            }
        }
    }
    Ok(())
}

/// (e) The state is the fold of the events, also after a round trip through JSON.
fn check_replay(t: &CompiledTemplate, events: &[Event], state: &RunState) -> Result<(), TestCaseError> {
    let replayed = RunState::replay(t, events).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(&replayed, state);
    prop_assert_eq!(&RunState::replay(t, events).map_err(|e| TestCaseError::fail(e.to_string()))?, &replayed);
    let stored: Vec<Event> = serde_json::from_str(&to_json(&events)).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let from_json = RunState::replay(t, &stored).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(&from_json, state);
    Ok(())
}

#[derive(Debug, Default)]
struct Counts {
    refused: usize,
    completed: usize,
    approved: usize,
    rejected: usize,
    runs_completed: usize,
    runs_cancelled: usize,
}

fn at(minute: usize) -> Timestamp {
    Timestamp::from_second(1_772_442_000 + 60 * minute as i64).expect("in range")
}

fn to_json(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value).expect("events and states serialise")
}

/// Executes the accepted commands again from scratch: same input, same bytes out.
fn check_deterministic(
    t: &CompiledTemplate,
    accepted: &[(Command, Actor, Timestamp)],
    events: &[Event],
    state: &RunState,
) -> Result<(), TestCaseError> {
    let mut again_events = Vec::new();
    let mut again_state: Option<RunState> = None;
    for (command, actor, now) in accepted {
        let (e, s) = execute(t, again_state.as_ref(), command, actor, *now)
            .map_err(|r| TestCaseError::fail(format!("re-execution refused: {r}")))?;
        again_events.extend(e);
        again_state = Some(s);
    }
    prop_assert_eq!(to_json(&again_events), to_json(&events));
    prop_assert_eq!(to_json(&again_state), to_json(&Some(state)));
    Ok(())
}

fn run_case(template: Template, people: &[Actor], steps: &[Step], counts: &mut Counts) -> Result<(), TestCaseError> {
    let t = compile(template);
    let start = Command::Start { run: "run-p".into(), name: "Property run".into(), due_at: None };
    let (mut events, mut state) = execute(&t, None, &start, &people[0], at(0)).expect("a run starts");
    let mut accepted = vec![(start, people[0].clone(), at(0))];
    for (i, step) in steps.iter().enumerate() {
        let finished = state.status != RunStatus::Open;
        let (command, actor) = materialise(step, &t, &state, people);
        let before = state.clone();
        match execute(&t, Some(&state), &command, &actor, at(i + 1)) {
            Err(_) => {
                prop_assert_eq!(&state, &before, "a refusal changed the state");
                counts.refused += 1;
                if finished {
                    break;
                }
            }
            Ok((new_events, new_state)) => {
                prop_assert!(!finished, "a finished run accepted {command:?}");
                check_invariants(&t, &new_events, &new_state)?;
                events.extend(new_events.iter().cloned());
                state = new_state;
                check_replay(&t, &events, &state)?;
                accepted.push((command, actor, at(i + 1)));
                for e in &new_events {
                    match e.body {
                        EventBody::TaskCompleted { .. } => counts.completed += 1,
                        EventBody::TaskApproved { .. } => counts.approved += 1,
                        EventBody::TaskRejected { .. } => counts.rejected += 1,
                        EventBody::RunCompleted {} => counts.runs_completed += 1,
                        EventBody::RunCancelled { .. } => counts.runs_cancelled += 1,
                        _ => {}
                    }
                }
            }
        }
    }
    check_deterministic(&t, &accepted, &events, &state)
}

#[test]
fn rules_hold_and_state_is_the_fold_of_events_for_random_templates_and_commands() {
    const CASES: usize = 1024;
    let config = Config { cases: CASES as u32, failure_persistence: None, ..Config::default() };
    let mut runner = TestRunner::new(config);
    let counts = RefCell::new(Counts::default());
    let strategy = (templates(), actors(), prop::collection::vec(step(), 1..=60));
    let result = runner
        .run(&strategy, |(template, people, steps)| run_case(template, &people, &steps, &mut counts.borrow_mut()));
    if let Err(e) = result {
        panic!("{e}");
    }
    // The generator must exercise the rules, not just be refused: these are
    // about half of what it typically produces.
    let c = counts.into_inner();
    assert!(c.completed >= CASES, "too few completions: {c:?}");
    assert!(c.approved >= CASES / 4, "too few approvals: {c:?}");
    assert!(c.rejected >= CASES / 16, "too few rejections: {c:?}");
    assert!(c.runs_completed >= CASES / 5, "too few completed runs: {c:?}");
    assert!(c.runs_cancelled >= CASES / 50, "too few cancelled runs: {c:?}");
    assert!(c.refused >= CASES * 4, "too few refusals: {c:?}");
}

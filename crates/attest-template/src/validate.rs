//! Semantic checks on a typed template: references, ordering, field rules
//! and size limits. Every problem is collected, in document order.

use std::collections::{HashMap, HashSet};

use regex::{Regex, RegexBuilder};
use serde_json::Value;

use crate::Diagnostic;
use crate::limits::*;
use crate::model::*;

/// Checks the whole template and returns every problem found, unlocated.
pub(crate) fn check(t: &Template) -> Vec<Diagnostic> {
    let mut checker = Checker::new(t);
    checker.template();
    checker.diags
}

/// Declared controls that no task lists: not wrong, but no run will ever
/// produce evidence for them.
pub(crate) fn unused_controls(t: &Template) -> Vec<Diagnostic> {
    let used: HashSet<&str> = t.tasks.iter().flat_map(|task| task.controls.iter().map(String::as_str)).collect();
    t.controls
        .iter()
        .enumerate()
        .filter(|(_, c)| !used.contains(c.id.as_str()))
        .map(|(i, c)| {
            Diagnostic::new(
                format!("controls[{i}]"),
                format!(
                    "control '{}' is declared but no task lists it under `controls`, so no run will evidence it",
                    c.id
                ),
            )
        })
        .collect()
}

/// Where a field sits: its task and its position on that task.
#[derive(Clone, Copy)]
struct FieldAt<'t> {
    task: usize,
    index: usize,
    field: &'t Field,
}

/// What a condition belongs to, which decides the fields it may use.
#[derive(Clone, Copy)]
enum Scope {
    Task(usize),
    Field(usize, usize),
}

/// How strictly a value must fit its field.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Fit {
    /// A default: the type and every rule of the field.
    Default,
    /// A value compared with `is` or `is_not`: the type and the options.
    Compare,
}

struct Checker<'t> {
    t: &'t Template,
    /// First task with each key.
    tasks: HashMap<&'t str, usize>,
    /// First field with each key, across all tasks.
    fields: HashMap<&'t str, FieldAt<'t>>,
    roles: HashSet<&'t str>,
    controls: HashSet<&'t str>,
    diags: Vec<Diagnostic>,
}

impl<'t> Checker<'t> {
    fn new(t: &'t Template) -> Self {
        let mut tasks = HashMap::new();
        let mut fields = HashMap::new();
        for (i, task) in t.tasks.iter().enumerate() {
            tasks.entry(task.key.as_str()).or_insert(i);
            for (j, field) in task.fields.iter().enumerate() {
                fields.entry(field.key.as_str()).or_insert(FieldAt { task: i, index: j, field });
            }
        }
        Checker {
            t,
            tasks,
            fields,
            roles: t.roles.iter().map(String::as_str).collect(),
            controls: t.controls.iter().map(|c| c.id.as_str()).collect(),
            diags: Vec::new(),
        }
    }

    fn err(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.diags.push(Diagnostic::new(path, message));
    }

    fn task_key(&self, i: usize) -> &'t str {
        self.t.tasks.get(i).map_or("?", |t| t.key.as_str())
    }

    fn template(&mut self) {
        let t = self.t;
        if t.format != FORMAT_V1 {
            self.err("format", format!("format is '{}'; this version reads only '{FORMAT_V1}'", t.format));
        }
        if !is_template_key(&t.key) {
            self.err(
                "key",
                format!(
                    "template key '{}' must be 1 to 63 lowercase letters, digits or '-', starting with a letter or digit",
                    t.key
                ),
            );
        }
        self.name("name", "the template", &t.name);
        if let Some(d) = &t.description {
            self.max_chars("description", "the template's description", d, MAX_TEXT_CHARS);
        }
        if let Some(owner) = &t.owner {
            self.assignee(owner, "owner", "owner", None);
        }
        if let Some(p) = &t.policy {
            self.policy(p);
        }
        self.roles();
        self.controls();
        if t.tasks.is_empty() {
            self.err("tasks", "a template needs at least one task");
        }
        if t.tasks.len() > MAX_TASKS {
            self.err("tasks", format!("the template has {} tasks; at most {MAX_TASKS} are allowed", t.tasks.len()));
        }
        for i in 0..t.tasks.len() {
            self.task(i);
        }
    }

    /// A required, bounded display name.
    fn name(&mut self, path: &str, what: &str, name: &str) {
        if name.trim().is_empty() {
            self.err(path, format!("{what} needs a non-empty name"));
        } else {
            self.max_chars(path, &format!("the name of {what}"), name, MAX_NAME_CHARS);
        }
    }

    fn max_chars(&mut self, path: &str, what: &str, text: &str, max: usize) {
        let n = text.chars().count();
        if n > max {
            self.err(path, format!("{what} is {n} characters long; at most {max} are allowed"));
        }
    }

    fn policy(&mut self, p: &PolicyRef) {
        if p.id.trim().is_empty() {
            self.err("policy.id", "policy needs a non-empty id, like POL-007");
        }
        self.max_chars("policy.id", "policy id", &p.id, MAX_REF_CHARS);
        if let Some(title) = &p.title {
            self.max_chars("policy.title", "policy title", title, MAX_NAME_CHARS);
        }
        if let Some(clause) = &p.clause {
            self.max_chars("policy.clause", "policy clause", clause, MAX_REF_CHARS);
        }
        if let Some(url) = &p.url
            && !is_url(url)
        {
            self.err("policy.url", format!("policy url '{url}' must be an http:// or https:// address without spaces"));
        }
    }

    fn roles(&mut self) {
        let t = self.t;
        if t.roles.len() > MAX_ROLES {
            self.err(
                "roles",
                format!("the template declares {} roles; at most {MAX_ROLES} are allowed", t.roles.len()),
            );
        }
        let mut seen = HashSet::new();
        for (i, role) in t.roles.iter().enumerate() {
            let path = format!("roles[{i}]");
            if !is_role_key(role) {
                self.err(
                    &path,
                    format!(
                        "role '{role}' must be 1 to 63 lowercase letters, digits, '-' or '_', starting with a letter or digit"
                    ),
                );
            }
            if !seen.insert(role.as_str()) {
                self.err(path, format!("role '{role}' is declared twice"));
            }
        }
    }

    fn controls(&mut self) {
        let t = self.t;
        if t.controls.len() > MAX_CONTROLS {
            self.err(
                "controls",
                format!("the template declares {} controls; at most {MAX_CONTROLS} are allowed", t.controls.len()),
            );
        }
        let mut seen = HashSet::new();
        for (i, control) in t.controls.iter().enumerate() {
            let path = format!("controls[{i}]");
            if !is_control_id(&control.id) {
                self.err(
                    format!("{path}.id"),
                    format!(
                        "control id '{}' must be 1 to 64 letters, digits, '.', '_', ':' or '-', starting with a letter or digit, like VR-01",
                        control.id
                    ),
                );
            }
            if !seen.insert(control.id.as_str()) {
                self.err(format!("{path}.id"), format!("control id '{}' is declared twice", control.id));
            }
            self.name(&format!("{path}.name"), &format!("control '{}'", control.id), &control.name);
            if control.frameworks.len() > MAX_FRAMEWORK_REFS {
                self.err(
                    format!("{path}.frameworks"),
                    format!(
                        "control '{}' lists {} framework references; at most {MAX_FRAMEWORK_REFS} are allowed",
                        control.id,
                        control.frameworks.len()
                    ),
                );
            }
            let mut refs = HashSet::new();
            for (j, reference) in control.frameworks.iter().enumerate() {
                let rpath = format!("{path}.frameworks[{j}]");
                if !is_framework_ref(reference) {
                    self.err(
                        &rpath,
                        format!(
                            "control '{}': framework reference '{reference}' must be written FRAMEWORK:REFERENCE without spaces, like SOC2:CC9.2 or ISO27001:A.5.19",
                            control.id
                        ),
                    );
                }
                if !refs.insert(reference.as_str()) {
                    self.err(rpath, format!("control '{}' lists framework reference '{reference}' twice", control.id));
                }
            }
        }
    }

    /// Checks an assignee. `task` is the index of the task it acts on, or
    /// `None` for the template's owner, who exists outside any run.
    fn assignee(&mut self, a: &Assignee, path: &str, who: &str, task: Option<usize>) {
        match a {
            Assignee::Starter => {
                if task.is_none() {
                    self.err(
                        path,
                        format!("{who} cannot be 'starter': the process owner is a role:KEY or a user:EMAIL"),
                    );
                }
            }
            Assignee::Role(role) => {
                if !self.roles.contains(role.as_str()) {
                    self.err(
                        path,
                        format!("{who} 'role:{role}' names a role that is not declared; add '{role}' to `roles`"),
                    );
                }
            }
            Assignee::User(email) => {
                if !is_email(email) {
                    self.err(path, format!("{who} 'user:{email}' is not a valid email address"));
                }
            }
            Assignee::Field(key) => {
                let Some(i) = task else {
                    self.err(
                        path,
                        format!("{who} cannot be 'field:{key}': the process owner is a role:KEY or a user:EMAIL"),
                    );
                    return;
                };
                match self.fields.get(key.as_str()).copied() {
                    None => self
                        .err(path, format!("{who} 'field:{key}' names a field that does not exist in this template")),
                    Some(at) if at.task >= i => {
                        let place = if at.task == i {
                            "this same task".to_string()
                        } else {
                            format!("the later task '{}'", self.task_key(at.task))
                        };
                        self.err(
                            path,
                            format!(
                                "{who} 'field:{key}' must be a members field of an earlier task, but '{key}' is on {place}"
                            ),
                        );
                    }
                    Some(at) if !matches!(at.field.kind, FieldKind::Members(_)) => self.err(
                        path,
                        format!(
                            "{who} 'field:{key}' must name a members field, but '{key}' is a {} field",
                            at.field.kind.type_name()
                        ),
                    ),
                    Some(_) => {}
                }
            }
        }
    }

    fn task(&mut self, i: usize) {
        let t = self.t;
        let Some(task) = t.tasks.get(i) else { return };
        let p = format!("tasks[{i}]");
        let who = format!("task '{}'", task.key);
        if !is_item_key(&task.key) {
            self.err(
                format!("{p}.key"),
                format!(
                    "task key '{}' must be 1 to 63 lowercase letters, digits or '_', starting with a letter",
                    task.key
                ),
            );
        }
        if let Some(&first) = self.tasks.get(task.key.as_str())
            && first != i
        {
            self.err(
                format!("{p}.key"),
                format!("task key '{}' is already used by tasks[{first}]; task keys must be unique", task.key),
            );
        }
        self.name(&format!("{p}.name"), &who, &task.name);
        if let Some(text) = &task.instructions {
            self.max_chars(&format!("{p}.instructions"), &format!("the instructions of {who}"), text, MAX_TEXT_CHARS);
        }
        self.assignee(&task.assignee, &format!("{p}.assignee"), &format!("{who}: assignee"), Some(i));
        self.approvals(i, task, &p, &who);
        if let Some(c) = &task.show_when {
            self.condition(c, &format!("{p}.show_when"), Scope::Task(i), 1);
        }
        let mut listed = HashSet::new();
        for (j, control) in task.controls.iter().enumerate() {
            let cpath = format!("{p}.controls[{j}]");
            if !self.controls.contains(control.as_str()) {
                self.err(&cpath, format!("{who} lists control '{control}', which is not declared under `controls`"));
            }
            if !listed.insert(control.as_str()) {
                self.err(cpath, format!("{who} lists control '{control}' twice"));
            }
        }
        self.due(i, task, &p, &who);
        if task.fields.len() > MAX_FIELDS_PER_TASK {
            self.err(
                format!("{p}.fields"),
                format!("{who} has {} fields; at most {MAX_FIELDS_PER_TASK} are allowed", task.fields.len()),
            );
        }
        for j in 0..task.fields.len() {
            self.field(i, j);
        }
        self.http(i, task, &p, &who);
    }

    /// A service task has its call, and only a service task has one. The
    /// call's placeholders name fields of earlier tasks (the values it sends
    /// exist when it runs); its response fills fields of its own task.
    fn http(&mut self, i: usize, task: &Task, p: &str, who: &str) {
        let Some(call) = &task.http else {
            if task.task_type == TaskType::Http {
                self.err(format!("{p}.http"), format!("service {who} (type: http) needs an `http` call"));
            }
            return;
        };
        let hp = format!("{p}.http");
        if task.task_type != TaskType::Http {
            self.err(&hp, format!("{who} has an `http` call but is not a service task; add `type: http`"));
            return;
        }
        let url_text = call.url.replace("{{", "").replace("}}", "");
        if !is_url(&url_text) {
            self.err(
                format!("{hp}.url"),
                format!(
                    "{who}: url '{}' must be an http:// or https:// URL of at most {MAX_URL_CHARS} characters",
                    call.url
                ),
            );
        }
        for key in call.placeholders() {
            match self.fields.get(key.as_str()) {
                None => self.err(&hp, format!("{who}: placeholder '{{{{{key}}}}}' names no field of this template")),
                Some(at) if at.task >= i => self.err(
                    &hp,
                    format!(
                        "{who}: placeholder '{{{{{key}}}}}' names a field of '{}', which does not come before it",
                        self.task_key(at.task)
                    ),
                ),
                Some(_) => {}
            }
        }
        for (field, pointer) in &call.response {
            if !task.fields.iter().any(|f| &f.key == field) {
                self.err(
                    format!("{hp}.response.{field}"),
                    format!("{who}: response maps into '{field}', which is not a field of this task"),
                );
            }
            if !(pointer.is_empty() || pointer.starts_with('/')) {
                self.err(
                    format!("{hp}.response.{field}"),
                    format!("{who}: '{pointer}' is not a JSON pointer (RFC 6901) like /id or /result/0/name"),
                );
            }
        }
        if call.retries > HttpCall::MAX_RETRIES {
            self.err(format!("{hp}.retries"), format!("{who}: at most {} retries", HttpCall::MAX_RETRIES));
        }
        if !(1..=HttpCall::MAX_TIMEOUT_SECONDS).contains(&call.timeout_seconds) {
            self.err(
                format!("{hp}.timeout_seconds"),
                format!("{who}: timeout_seconds must be 1 to {}", HttpCall::MAX_TIMEOUT_SECONDS),
            );
        }
    }

    fn approvals(&mut self, i: usize, task: &'t Task, p: &str, who: &str) {
        match task.task_type {
            TaskType::Approval if task.approves.is_empty() => {
                self.err(
                    format!("{p}.approves"),
                    format!("approval {who} must list the earlier tasks it signs off under `approves`"),
                );
                return;
            }
            TaskType::Task | TaskType::Http if !task.approves.is_empty() => {
                self.err(
                    format!("{p}.approves"),
                    format!("{who} lists `approves` but is not an approval; add `type: approval` or remove `approves`"),
                );
                return;
            }
            _ => {}
        }
        let mut seen = HashSet::new();
        for (j, subject) in task.approves.iter().enumerate() {
            let path = format!("{p}.approves[{j}]");
            if !seen.insert(subject.as_str()) {
                self.err(path, format!("approval {who} lists '{subject}' twice under `approves`"));
                continue;
            }
            let Some(&s) = self.tasks.get(subject.as_str()) else {
                self.err(path, format!("approval {who} approves '{subject}', which is not a task of this template"));
                continue;
            };
            if s == i {
                self.err(path, format!("approval {who} cannot approve itself"));
                continue;
            }
            if s > i {
                self.err(
                    path,
                    format!(
                        "approval {who} approves '{subject}', which comes after it; an approval can only approve earlier tasks"
                    ),
                );
                continue;
            }
            let Some(target) = self.t.tasks.get(s) else {
                continue;
            };
            if target.task_type == TaskType::Approval {
                self.err(
                    path,
                    format!("approval {who} approves '{subject}', which is itself an approval; approve the task it signs off instead"),
                );
                continue;
            }
            let same = match (&target.assignee, &task.assignee) {
                (Assignee::Starter, Assignee::Starter) => Some("starter".to_string()),
                (Assignee::User(a), Assignee::User(b)) if a == b => Some(format!("user:{a}")),
                _ => None,
            };
            if let Some(same) = same {
                self.err(
                    path,
                    format!(
                        "approval {who} and '{subject}', which it approves, are both assigned to {same}; separation of duties forbids whoever completed '{subject}' from approving it, so assign the approval to someone else"
                    ),
                );
            }
        }
    }

    fn due(&mut self, i: usize, task: &Task, p: &str, who: &str) {
        if let Some(due) = &task.due {
            let dpath = format!("{p}.due");
            match &due.after {
                DueAnchor::RunStarted => {}
                DueAnchor::Task(key) => match self.tasks.get(key.as_str()) {
                    None => self.err(
                        format!("{dpath}.after"),
                        format!("{who}: due counts from task '{key}', which is not a task of this template"),
                    ),
                    Some(&j) if j == i => self.err(
                        format!("{dpath}.after"),
                        format!("{who}: due cannot count from the task itself; use run_started or another task"),
                    ),
                    Some(_) => {}
                },
                DueAnchor::Field(key) => match self.fields.get(key.as_str()) {
                    None => self.err(
                        format!("{dpath}.after"),
                        format!("{who}: due counts from field '{key}', which does not exist in this template"),
                    ),
                    Some(at) if !is_dated(&at.field.kind) => self.err(
                        format!("{dpath}.after"),
                        format!(
                            "{who}: due counts from field '{key}', which is a {} field; it must be a date or datetime field",
                            at.field.kind.type_name()
                        ),
                    ),
                    Some(_) => {}
                },
            }
            self.duration(&due.within, &format!("{dpath}.in"), who);
            if due.business_days && matches!(due.within.unit, DurationUnit::Minutes | DurationUnit::Hours) {
                self.err(
                    format!("{dpath}.business_days"),
                    format!("{who}: business_days needs a due duration in days or weeks, not '{}'", due.within),
                );
            }
        }
        if !task.remind.is_empty() && task.due.is_none() {
            self.err(
                format!("{p}.remind"),
                format!("{who} has reminders but no due date; add `due` or remove `remind`"),
            );
        }
        if task.remind.len() > MAX_REMINDERS {
            self.err(
                format!("{p}.remind"),
                format!("{who} has {} reminders; at most {MAX_REMINDERS} are allowed", task.remind.len()),
            );
        }
        for (j, r) in task.remind.iter().enumerate() {
            self.duration(&r.before_due, &format!("{p}.remind[{j}].before_due"), who);
        }
        if !task.escalate.is_empty() && task.due.is_none() {
            self.err(
                format!("{p}.escalate"),
                format!("{who} has escalations but no due date; add `due` or remove `escalate`"),
            );
        }
        if task.escalate.len() > MAX_ESCALATIONS {
            self.err(
                format!("{p}.escalate"),
                format!("{who} has {} escalation steps; at most {MAX_ESCALATIONS} are allowed", task.escalate.len()),
            );
        }
        for (j, step) in task.escalate.iter().enumerate() {
            let spath = format!("{p}.escalate[{j}]");
            self.duration(&step.overdue_by, &format!("{spath}.overdue_by"), who);
            if let Some(previous) = j.checked_sub(1).and_then(|k| task.escalate.get(k))
                && step.overdue_by.minutes() <= previous.overdue_by.minutes()
            {
                self.err(
                    format!("{spath}.overdue_by"),
                    format!(
                        "{who}: escalation steps must have increasing overdue_by, but {} follows {}",
                        step.overdue_by, previous.overdue_by
                    ),
                );
            }
            let (a, key) = match &step.action {
                EscalationAction::Notify(a) => (a, "notify"),
                EscalationAction::Reassign(a) => (a, "reassign"),
            };
            self.assignee(a, &format!("{spath}.{key}"), &format!("{who}: escalation {key}"), Some(i));
        }
    }

    /// Durations built in code are not limited by the parser.
    fn duration(&mut self, d: &Duration, path: &str, who: &str) {
        if d.amount > Duration::MAX_AMOUNT {
            self.err(path, format!("{who}: duration '{d}' is longer than {} units", Duration::MAX_AMOUNT));
        }
    }

    fn field(&mut self, i: usize, j: usize) {
        let t = self.t;
        let Some(field) = t.tasks.get(i).and_then(|task| task.fields.get(j)) else {
            return;
        };
        let p = format!("tasks[{i}].fields[{j}]");
        let who = format!("field '{}'", field.key);
        if !is_item_key(&field.key) {
            self.err(
                format!("{p}.key"),
                format!(
                    "field key '{}' must be 1 to 63 lowercase letters, digits or '_', starting with a letter",
                    field.key
                ),
            );
        }
        if let Some(first) = self.fields.get(field.key.as_str()).copied()
            && (first.task, first.index) != (i, j)
        {
            self.err(
                format!("{p}.key"),
                format!(
                    "field key '{}' is already used on task '{}' (tasks[{}].fields[{}]); field keys must be unique across the template",
                    field.key,
                    self.task_key(first.task),
                    first.task,
                    first.index
                ),
            );
        }
        if field.label.trim().is_empty() {
            self.err(format!("{p}.label"), format!("{who} needs a non-empty label"));
        } else {
            self.max_chars(&format!("{p}.label"), &format!("the label of {who}"), &field.label, MAX_NAME_CHARS);
        }
        if let Some(help) = &field.help {
            self.max_chars(&format!("{p}.help"), &format!("the help of {who}"), help, MAX_HELP_CHARS);
        }
        self.rules(field, &p, &who);
        if let Some(default) = &field.default {
            let problem = match &field.kind {
                FieldKind::Members(_) | FieldKind::File(_) => {
                    Some(format!("{} fields cannot have a default", field.kind.type_name()))
                }
                kind => value_problem(kind, default, Fit::Default),
            };
            if let Some(problem) = problem {
                self.err(format!("{p}.default"), format!("{who}: default {problem}"));
            }
        }
        if let Some(c) = &field.show_when {
            self.condition(c, &format!("{p}.show_when"), Scope::Field(i, j), 1);
        }
    }

    fn rules(&mut self, field: &Field, p: &str, who: &str) {
        match &field.kind {
            FieldKind::Text(r) | FieldKind::Textarea(r) => self.text_rules(r, p, who),
            FieldKind::Number(r) => {
                for (key, bound) in [("min", r.min), ("max", r.max)] {
                    if let Some(b) = bound
                        && !b.is_finite()
                    {
                        self.err(format!("{p}.{key}"), format!("{who}: {key} must be a finite number"));
                    }
                }
                if let (Some(min), Some(max)) = (r.min, r.max)
                    && min > max
                {
                    self.err(format!("{p}.min"), format!("{who}: min ({min}) is greater than max ({max})"));
                }
                if let Some(d) = r.decimals
                    && d > MAX_DECIMALS
                {
                    self.err(
                        format!("{p}.decimals"),
                        format!("{who}: decimals is {d}; at most {MAX_DECIMALS} are allowed"),
                    );
                }
            }
            FieldKind::Email(r) => {
                self.domains(&r.allow_domains, &format!("{p}.allow_domains"), who);
                self.domains(&r.block_domains, &format!("{p}.block_domains"), who);
                for (k, d) in r.block_domains.iter().enumerate() {
                    if r.allow_domains.contains(d) {
                        self.err(
                            format!("{p}.block_domains[{k}]"),
                            format!("{who}: domain '{d}' is both allowed and blocked"),
                        );
                    }
                }
            }
            FieldKind::Date(r) | FieldKind::Datetime(r) => self.date_rules(field, r, p, who),
            FieldKind::Select(r) | FieldKind::MultiChoice(r) => {
                if r.options.is_empty() {
                    self.err(format!("{p}.options"), format!("{who} needs at least one option"));
                }
                if r.options.len() > MAX_OPTIONS {
                    self.err(
                        format!("{p}.options"),
                        format!("{who} has {} options; at most {MAX_OPTIONS} are allowed", r.options.len()),
                    );
                }
                let mut seen = HashSet::new();
                for (k, option) in r.options.iter().enumerate() {
                    let opath = format!("{p}.options[{k}]");
                    if option.trim().is_empty() {
                        self.err(&opath, format!("{who}: options must not be empty"));
                    }
                    self.max_chars(&opath, &format!("option '{option}' of {who}"), option, MAX_NAME_CHARS);
                    if !seen.insert(option.as_str()) {
                        self.err(opath, format!("{who} lists option '{option}' twice"));
                    }
                }
            }
            FieldKind::File(r) => {
                if r.accept.len() > MAX_LIST_ITEMS {
                    self.err(
                        format!("{p}.accept"),
                        format!("{who} accepts {} extensions; at most {MAX_LIST_ITEMS} are allowed", r.accept.len()),
                    );
                }
                let mut seen = HashSet::new();
                for (k, ext) in r.accept.iter().enumerate() {
                    let apath = format!("{p}.accept[{k}]");
                    if !is_extension(ext) {
                        self.err(
                            &apath,
                            format!(
                                "{who}: accept '{ext}' must be a lowercase file extension without the dot, like 'pdf'"
                            ),
                        );
                    }
                    if !seen.insert(ext.as_str()) {
                        self.err(apath, format!("{who} lists extension '{ext}' twice"));
                    }
                }
                if r.max_size_mb == Some(0) {
                    self.err(format!("{p}.max_size_mb"), format!("{who}: max_size_mb must be at least 1"));
                }
            }
            FieldKind::Table(r) => self.table_rules(r, p, who),
            FieldKind::Url | FieldKind::Checkbox | FieldKind::Members(_) | FieldKind::Hidden => {}
        }
    }

    fn text_rules(&mut self, r: &TextRules, p: &str, who: &str) {
        if r.max_length == Some(0) {
            self.err(format!("{p}.max_length"), format!("{who}: max_length must be at least 1"));
        }
        if let (Some(min), Some(max)) = (r.min_length, r.max_length)
            && min > max
        {
            self.err(
                format!("{p}.min_length"),
                format!("{who}: min_length ({min}) is greater than max_length ({max})"),
            );
        }
        if let Some(pattern) = &r.pattern {
            let n = pattern.chars().count();
            if n > MAX_PATTERN_CHARS {
                self.err(
                    format!("{p}.pattern"),
                    format!("{who}: pattern is {n} characters long; at most {MAX_PATTERN_CHARS} are allowed"),
                );
            } else if let Err(e) = compile_pattern(pattern) {
                self.err(format!("{p}.pattern"), format!("{who}: pattern does not compile: {e}"));
            }
        }
    }

    fn domains(&mut self, domains: &[String], path: &str, who: &str) {
        if domains.len() > MAX_LIST_ITEMS {
            self.err(path, format!("{who} lists {} domains; at most {MAX_LIST_ITEMS} are allowed", domains.len()));
        }
        let mut seen = HashSet::new();
        for (k, d) in domains.iter().enumerate() {
            let dpath = format!("{path}[{k}]");
            if !is_domain(d) {
                self.err(&dpath, format!("{who}: '{d}' is not a lowercase domain name like example.com"));
            }
            if !seen.insert(d.as_str()) {
                self.err(dpath, format!("{who} lists domain '{d}' twice"));
            }
        }
    }

    fn date_rules(&mut self, field: &Field, r: &DateRules, p: &str, who: &str) {
        for (key, bound) in [("not_before", &r.not_before), ("not_after", &r.not_after)] {
            let Some(bound) = bound else { continue };
            let bpath = format!("{p}.{key}");
            if bound.offset_days.unsigned_abs() > MAX_DATE_OFFSET_DAYS.unsigned_abs() {
                self.err(
                    &bpath,
                    format!(
                        "{who}: {key} shifts by {} days; at most {MAX_DATE_OFFSET_DAYS} are allowed",
                        bound.offset_days
                    ),
                );
            }
            if let DateBase::Field(k) = &bound.base {
                if *k == field.key {
                    self.err(&bpath, format!("{who}: {key} cannot refer to the field itself"));
                    continue;
                }
                match self.fields.get(k.as_str()) {
                    None => self.err(
                        &bpath,
                        format!("{who}: {key} refers to field '{k}', which does not exist in this template"),
                    ),
                    Some(at) if !is_dated(&at.field.kind) => self.err(
                        &bpath,
                        format!(
                            "{who}: {key} refers to field '{k}', which is a {} field; it must be a date or datetime field",
                            at.field.kind.type_name()
                        ),
                    ),
                    Some(_) => {}
                }
            }
        }
        if let (Some(before), Some(after)) = (&r.not_before, &r.not_after) {
            let contradicts = match (&before.base, &after.base) {
                (DateBase::Date(a), DateBase::Date(b)) => {
                    shift(*a, before.offset_days).zip(shift(*b, after.offset_days)).is_some_and(|(a, b)| a > b)
                }
                (DateBase::RunStarted, DateBase::RunStarted) => before.offset_days > after.offset_days,
                (DateBase::Field(a), DateBase::Field(b)) if a == b => before.offset_days > after.offset_days,
                _ => false,
            };
            if contradicts {
                self.err(
                    format!("{p}.not_before"),
                    format!(
                        "{who}: not_before ({}) is later than not_after ({}), so no date fits",
                        String::from(before.clone()),
                        String::from(after.clone())
                    ),
                );
            }
        }
    }

    fn table_rules(&mut self, r: &TableRules, p: &str, who: &str) {
        if r.columns.is_empty() {
            self.err(format!("{p}.columns"), format!("{who} needs at least one column"));
        }
        if r.columns.len() > MAX_COLUMNS {
            self.err(
                format!("{p}.columns"),
                format!("{who} has {} columns; at most {MAX_COLUMNS} are allowed", r.columns.len()),
            );
        }
        let mut seen = HashSet::new();
        for (k, column) in r.columns.iter().enumerate() {
            let cpath = format!("{p}.columns[{k}]");
            if !is_item_key(&column.key) {
                self.err(
                    format!("{cpath}.key"),
                    format!(
                        "{who}: column key '{}' must be 1 to 63 lowercase letters, digits or '_', starting with a letter",
                        column.key
                    ),
                );
            }
            if !seen.insert(column.key.as_str()) {
                self.err(format!("{cpath}.key"), format!("{who} has two columns with key '{}'", column.key));
            }
            if column.label.trim().is_empty() {
                self.err(format!("{cpath}.label"), format!("{who}: column '{}' needs a non-empty label", column.key));
            } else {
                self.max_chars(
                    &format!("{cpath}.label"),
                    &format!("the label of column '{}' of {who}", column.key),
                    &column.label,
                    MAX_NAME_CHARS,
                );
            }
            if !COLUMN_TYPES.contains(&column.column_type.as_str()) {
                self.err(
                    format!("{cpath}.type"),
                    format!(
                        "{who}: column '{}' has type '{}'; a column is one of text, number, date, checkbox",
                        column.key, column.column_type
                    ),
                );
            }
        }
        if r.max_rows == Some(0) {
            self.err(format!("{p}.max_rows"), format!("{who}: max_rows must be at least 1"));
        }
    }

    fn scope_name(&self, scope: Scope) -> String {
        match scope {
            Scope::Task(i) => format!("task '{}'", self.task_key(i)),
            Scope::Field(i, j) => {
                let key = self.t.tasks.get(i).and_then(|t| t.fields.get(j)).map_or("?", |f| f.key.as_str());
                format!("field '{key}'")
            }
        }
    }

    fn condition(&mut self, c: &Condition, path: &str, scope: Scope, depth: usize) {
        if depth > MAX_CONDITION_DEPTH {
            self.err(
                path,
                format!(
                    "{}: show_when nests conditions more than {MAX_CONDITION_DEPTH} levels deep; simplify it",
                    self.scope_name(scope)
                ),
            );
            return;
        }
        let (key, items) = match c {
            Condition::Compare { field, op, value } => {
                self.compare(field, *op, value.as_ref(), path, scope);
                return;
            }
            Condition::Not { not } => {
                self.condition(not, &format!("{path}.not"), scope, depth + 1);
                return;
            }
            Condition::All { all } => ("all", all),
            Condition::Any { any } => ("any", any),
        };
        if items.is_empty() {
            self.err(
                format!("{path}.{key}"),
                format!("{}: `{key}` needs at least one condition", self.scope_name(scope)),
            );
        }
        if items.len() > MAX_CONDITION_ITEMS {
            self.err(
                format!("{path}.{key}"),
                format!(
                    "{}: `{key}` holds {} conditions; at most {MAX_CONDITION_ITEMS} are allowed",
                    self.scope_name(scope),
                    items.len()
                ),
            );
        }
        for (k, item) in items.iter().enumerate() {
            self.condition(item, &format!("{path}.{key}[{k}]"), scope, depth + 1);
        }
    }

    fn compare(&mut self, key: &str, op: Op, value: Option<&Value>, path: &str, scope: Scope) {
        let who = self.scope_name(scope);
        let op_name = op_name(op);
        let at = self.fields.get(key).copied();
        match at {
            None => self.err(
                format!("{path}.field"),
                format!("{who}: show_when refers to field '{key}', which does not exist in this template"),
            ),
            Some(at) => {
                let problem = match scope {
                    Scope::Task(i) if at.task == i => Some(format!(
                        "{who}: show_when uses '{key}', a field of this same task; a task can only depend on fields of earlier tasks"
                    )),
                    Scope::Task(i) if at.task > i => Some(format!(
                        "{who}: show_when uses field '{key}' of the later task '{}'; a task can only depend on fields of earlier tasks",
                        self.task_key(at.task)
                    )),
                    Scope::Field(i, j) if at.task == i && at.index == j => {
                        Some(format!("{who}: show_when cannot depend on the field itself"))
                    }
                    Scope::Field(i, j) if at.task == i && at.index > j => Some(format!(
                        "{who}: show_when uses '{key}', which comes after it on the same task; a field can only depend on earlier fields"
                    )),
                    Scope::Field(i, _) if at.task > i => Some(format!(
                        "{who}: show_when uses field '{key}' of the later task '{}'; a field can only depend on fields of earlier tasks or earlier fields of its own task",
                        self.task_key(at.task)
                    )),
                    _ => None,
                };
                if let Some(problem) = problem {
                    self.err(format!("{path}.field"), problem);
                }
            }
        }
        let value = match (op.takes_value(), value) {
            (true, None) => {
                self.err(path, format!("{who}: op `{op_name}` needs a `value` to compare with"));
                return;
            }
            (false, Some(_)) => {
                self.err(format!("{path}.value"), format!("{who}: op `{op_name}` takes no `value`; remove it"));
                return;
            }
            (false, None) => return,
            (true, Some(v)) => v,
        };
        let Some(at) = at else { return };
        let kind = &at.field.kind;
        let type_name = kind.type_name();
        let problem = match op {
            Op::Gt | Op::Gte | Op::Lt | Op::Lte => {
                if !matches!(kind, FieldKind::Number(_) | FieldKind::Date(_) | FieldKind::Datetime(_)) {
                    self.err(
                        format!("{path}.op"),
                        format!(
                            "{who}: op `{op_name}` only compares number, date or datetime fields, and '{key}' is a {type_name} field"
                        ),
                    );
                    return;
                }
                value_problem(kind, value, Fit::Compare)
            }
            Op::Is | Op::IsNot => {
                if matches!(kind, FieldKind::File(_) | FieldKind::Table(_)) {
                    self.err(
                        format!("{path}.op"),
                        format!(
                            "{who}: op `{op_name}` cannot compare the {type_name} field '{key}'; use `has_value` or `has_no_value`"
                        ),
                    );
                    return;
                }
                value_problem(kind, value, Fit::Compare)
            }
            Op::Contains => match kind {
                FieldKind::Text(_) | FieldKind::Textarea(_) => string_problem(value),
                FieldKind::MultiChoice(r) => option_problem(&r.options, value),
                FieldKind::Members(_) => email_problem(value),
                // A table contains a value when any cell of any row equals it.
                FieldKind::Table(_) => scalar_problem(value),
                _ => {
                    self.err(
                        format!("{path}.op"),
                        format!(
                            "{who}: op `contains` applies to text, textarea, multi_choice, members or table fields, and '{key}' is a {type_name} field"
                        ),
                    );
                    return;
                }
            },
            Op::HasValue | Op::HasNoValue => None,
        };
        if let Some(problem) = problem {
            self.err(format!("{path}.value"), format!("{who}: value for '{key}' {problem}"));
        }
    }
}

const COLUMN_TYPES: &[&str] = &["text", "number", "date", "checkbox"];

fn op_name(op: Op) -> &'static str {
    match op {
        Op::Is => "is",
        Op::IsNot => "is_not",
        Op::HasValue => "has_value",
        Op::HasNoValue => "has_no_value",
        Op::Gt => "gt",
        Op::Gte => "gte",
        Op::Lt => "lt",
        Op::Lte => "lte",
        Op::Contains => "contains",
    }
}

fn is_dated(kind: &FieldKind) -> bool {
    matches!(kind, FieldKind::Date(_) | FieldKind::Datetime(_))
}

/// Compiles a field pattern so that it must match the whole value.
///
/// The pattern is first compiled alone, so that a pattern such as `a)|(b`
/// cannot escape the anchoring group it is then wrapped in.
pub(crate) fn compile_pattern(pattern: &str) -> Result<Regex, String> {
    let build = |p: &str| {
        RegexBuilder::new(p).size_limit(MAX_PATTERN_PROGRAM_BYTES).build().map_err(|e| one_line(&e.to_string()))
    };
    build(pattern)?;
    build(&format!("^(?:{pattern})$"))
}

/// Regex errors draw a caret diagram over several lines; a diagnostic is one line.
fn one_line(text: &str) -> String {
    let lines: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    match lines.iter().rev().find_map(|l| l.strip_prefix("error: ")) {
        Some(reason) => reason.to_owned(),
        None => lines.join(" "),
    }
}

/// A short description of a value for messages.
fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) if s.chars().count() > 40 => {
            format!("\"{}…\"", s.chars().take(40).collect::<String>())
        }
        Value::String(s) => format!("\"{s}\""),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "a map".into(),
    }
}

fn scalar_problem(v: &Value) -> Option<String> {
    match v {
        Value::String(_) | Value::Number(_) | Value::Bool(_) => None,
        _ => Some(format!("must be text, a number or true/false, not {}", describe(v))),
    }
}

fn string_problem(v: &Value) -> Option<String> {
    (!v.is_string()).then(|| format!("must be text, not {}", describe(v)))
}

fn email_problem(v: &Value) -> Option<String> {
    match v.as_str() {
        Some(s) if is_email(s) => None,
        _ => Some(format!("must be an email address like name@example.com, not {}", describe(v))),
    }
}

fn option_problem(options: &[String], v: &Value) -> Option<String> {
    match v.as_str() {
        Some(s) if options.iter().any(|o| o == s) => None,
        _ => Some(format!("must be one of the options ({}), not {}", options.join(", "), describe(v))),
    }
}

fn date_value(v: &Value) -> Option<jiff::civil::Date> {
    v.as_str().and_then(|s| s.parse().ok())
}

fn datetime_value(v: &Value) -> Option<jiff::Timestamp> {
    v.as_str().and_then(|s| s.parse().ok())
}

/// Shifts a date by whole days, or `None` outside the calendar.
fn shift(date: jiff::civil::Date, days: i32) -> Option<jiff::civil::Date> {
    let span = jiff::Span::new().try_days(i64::from(days)).ok()?;
    date.checked_add(span).ok()
}

/// Why `v` does not fit a field of this kind, or `None` if it does.
fn value_problem(kind: &FieldKind, v: &Value, fit: Fit) -> Option<String> {
    let strict = fit == Fit::Default;
    match kind {
        FieldKind::Text(r) | FieldKind::Textarea(r) => {
            let Some(s) = v.as_str() else {
                return string_problem(v);
            };
            if !strict {
                return None;
            }
            let n = u32::try_from(s.chars().count()).unwrap_or(u32::MAX);
            if let Some(min) = r.min_length
                && n < min
            {
                return Some(format!("is {n} characters long, shorter than min_length {min}"));
            }
            if let Some(max) = r.max_length
                && n > max
            {
                return Some(format!("is {n} characters long, longer than max_length {max}"));
            }
            match r.pattern.as_deref().map(compile_pattern) {
                Some(Ok(re)) if !re.is_match(s) => Some(format!("{} does not match the pattern", describe(v))),
                _ => None,
            }
        }
        FieldKind::Number(r) => {
            let Some(x) = v.as_f64() else {
                return Some(format!("must be a number, not {}", describe(v)));
            };
            if !strict {
                return None;
            }
            if let Some(min) = r.min
                && x < min
            {
                return Some(format!("{x} is less than min {min}"));
            }
            if let Some(max) = r.max
                && x > max
            {
                return Some(format!("{x} is more than max {max}"));
            }
            match r.decimals {
                Some(d) if !has_at_most_decimals(x, d) => {
                    Some(format!("{x} has more than {d} digits after the decimal point"))
                }
                _ => None,
            }
        }
        FieldKind::Email(r) => {
            if let Some(problem) = email_problem(v) {
                return Some(problem);
            }
            if !strict {
                return None;
            }
            let domain =
                v.as_str().and_then(|s| s.rsplit_once('@')).map(|(_, d)| d.to_ascii_lowercase()).unwrap_or_default();
            if !r.allow_domains.is_empty() && !r.allow_domains.iter().any(|d| domain_matches(&domain, d)) {
                return Some(format!("{} is not in allow_domains", describe(v)));
            }
            if r.block_domains.iter().any(|d| domain_matches(&domain, d)) {
                return Some(format!("{} is in block_domains", describe(v)));
            }
            None
        }
        FieldKind::Url => match v.as_str() {
            Some(s) if is_url(s) => None,
            _ => Some(format!("must be an http:// or https:// address, not {}", describe(v))),
        },
        FieldKind::Date(r) => {
            let Some(date) = date_value(v) else {
                return Some(format!("must be a date written like 2025-01-31, not {}", describe(v)));
            };
            if strict { fixed_bounds_problem(r, date) } else { None }
        }
        FieldKind::Datetime(r) => {
            let Some(ts) = datetime_value(v) else {
                return Some(format!(
                    "must be a date and time with an offset, like 2025-01-31T09:00:00Z, not {}",
                    describe(v)
                ));
            };
            let date = ts.to_zoned(jiff::tz::TimeZone::UTC).date();
            if strict { fixed_bounds_problem(r, date) } else { None }
        }
        FieldKind::Select(r) => option_problem(&r.options, v),
        // The engine compares a list with one value by membership.
        FieldKind::MultiChoice(r) if !strict => option_problem(&r.options, v),
        FieldKind::MultiChoice(r) => {
            let Some(items) = v.as_array() else {
                return Some(format!("must be a list of options ({}), not {}", r.options.join(", "), describe(v)));
            };
            let mut seen = HashSet::new();
            for item in items {
                if let Some(problem) = option_problem(&r.options, item) {
                    return Some(problem);
                }
                if !seen.insert(item.as_str()) {
                    return Some(format!("lists {} twice", describe(item)));
                }
            }
            None
        }
        FieldKind::Checkbox => (!v.is_boolean()).then(|| format!("must be true or false, not {}", describe(v))),
        // Members are only compared, by membership, with one address.
        FieldKind::Members(_) => email_problem(v),
        FieldKind::Table(r) => {
            let Some(rows) = v.as_array() else {
                return Some(format!("must be a list of rows, not {}", describe(v)));
            };
            if let Some(max) = r.max_rows
                && rows.len() > usize::try_from(max).unwrap_or(usize::MAX)
            {
                return Some(format!("has {} rows, more than max_rows {max}", rows.len()));
            }
            rows.iter().find_map(|row| row_problem(r, row))
        }
        FieldKind::File(_) => Some("cannot be compared or preset for file fields".into()),
        // Integrations store hidden values as text.
        FieldKind::Hidden => string_problem(v),
    }
}

/// Why `row` is not a valid table row.
fn row_problem(r: &TableRules, row: &Value) -> Option<String> {
    let Some(cells) = row.as_object() else {
        return Some(format!("has a row that is {}, not a map of column keys to values", describe(row)));
    };
    for (key, cell) in cells {
        let Some(column) = r.columns.iter().find(|c| c.key == *key) else {
            return Some(format!("names column '{key}', which the table does not have"));
        };
        let fits = match column.column_type.as_str() {
            "text" => cell.is_string(),
            "number" => cell.is_number(),
            "date" => date_value(cell).is_some(),
            "checkbox" => cell.is_boolean(),
            _ => true,
        };
        if !fits && !cell.is_null() {
            return Some(format!(
                "has {} in column '{key}', which holds {} values",
                describe(cell),
                column.column_type
            ));
        }
    }
    if let Some(missing) = r.columns.iter().find(|c| c.required && cells.get(&c.key).is_none_or(Value::is_null)) {
        return Some(format!("leaves the required column '{}' empty", missing.key));
    }
    None
}

fn fixed_bounds_problem(r: &DateRules, date: jiff::civil::Date) -> Option<String> {
    let fixed = |b: &Option<DateBound>| match b {
        Some(DateBound { base: DateBase::Date(d), offset_days }) => shift(*d, *offset_days),
        _ => None,
    };
    if let Some(bound) = fixed(&r.not_before)
        && date < bound
    {
        return Some(format!("{date} is before not_before {bound}"));
    }
    if let Some(bound) = fixed(&r.not_after)
        && date > bound
    {
        return Some(format!("{date} is after not_after {bound}"));
    }
    None
}

fn has_at_most_decimals(x: f64, decimals: u32) -> bool {
    let scale = 10f64.powi(i32::try_from(decimals).unwrap_or(i32::MAX));
    let scaled = x * scale;
    (scaled - scaled.round()).abs() <= 1e-9 * scaled.abs().max(1.0)
}

/// Whether an address's domain is `rule` or one of its subdomains.
pub(crate) fn domain_matches(domain: &str, rule: &str) -> bool {
    domain == rule || domain.strip_suffix(rule).is_some_and(|prefix| prefix.ends_with('.'))
}

fn is_lower_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// `^[a-z0-9][a-z0-9-]{0,62}$`
pub(crate) fn is_template_key(s: &str) -> bool {
    let b = s.as_bytes();
    (1..=63).contains(&b.len()) && is_lower_alnum(b[0]) && b.iter().all(|&c| is_lower_alnum(c) || c == b'-')
}

/// `^[a-z][a-z0-9_]{0,62}$`, for tasks, fields and table columns.
pub(crate) fn is_item_key(s: &str) -> bool {
    let b = s.as_bytes();
    (1..=63).contains(&b.len()) && b[0].is_ascii_lowercase() && b.iter().all(|&c| is_lower_alnum(c) || c == b'_')
}

/// `^[a-z0-9][a-z0-9_-]{0,62}$`
pub(crate) fn is_role_key(s: &str) -> bool {
    let b = s.as_bytes();
    (1..=63).contains(&b.len())
        && is_lower_alnum(b[0])
        && b.iter().all(|&c| is_lower_alnum(c) || c == b'_' || c == b'-')
}

/// `^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$`
fn is_control_id(s: &str) -> bool {
    let b = s.as_bytes();
    (1..=64).contains(&b.len())
        && b[0].is_ascii_alphanumeric()
        && b.iter().all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b':' | b'-'))
}

/// `FRAMEWORK:REFERENCE`, both parts present, no whitespace.
fn is_framework_ref(s: &str) -> bool {
    s.chars().count() <= MAX_REF_CHARS
        && !s.chars().any(char::is_whitespace)
        && s.split_once(':').is_some_and(|(f, r)| !f.is_empty() && !r.is_empty())
}

/// A lowercase extension without the dot: `pdf`, `xlsx`, `tar.gz` is refused.
fn is_extension(s: &str) -> bool {
    (1..=16).contains(&s.len()) && s.bytes().all(is_lower_alnum)
}

/// A lowercase DNS name with at least two labels.
pub(crate) fn is_domain(s: &str) -> bool {
    s.len() <= 253
        && s.split('.').count() >= 2
        && s.split('.').all(|label| {
            let b = label.as_bytes();
            (1..=63).contains(&b.len())
                && b.iter().all(|&c| is_lower_alnum(c) || c == b'-')
                && b.first() != Some(&b'-')
                && b.last() != Some(&b'-')
        })
}

/// A plain `local@domain` address; case does not matter.
pub(crate) fn is_email(s: &str) -> bool {
    if s.len() > 254 {
        return false;
    }
    let Some((local, domain)) = s.rsplit_once('@') else {
        return false;
    };
    let local_ok = (1..=64).contains(&local.len())
        && local.bytes().all(|c| c.is_ascii_alphanumeric() || b"!#$%&'*+/=?^_`{|}~.-".contains(&c))
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..");
    local_ok && is_domain(&domain.to_ascii_lowercase())
}

fn is_url(s: &str) -> bool {
    let rest = s.strip_prefix("https://").or_else(|| s.strip_prefix("http://"));
    s.len() <= MAX_URL_CHARS
        && rest.is_some_and(|r| !r.is_empty() && !r.starts_with('/'))
        && !s.chars().any(|c| c.is_whitespace() || c.is_control())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        assert!(is_template_key("vendor-onboarding"));
        assert!(is_template_key("9a"));
        assert!(!is_template_key("-a"));
        assert!(!is_template_key("Vendor"));
        assert!(!is_template_key(&"a".repeat(64)));
        assert!(is_item_key("security_review"));
        assert!(!is_item_key("1abc"));
        assert!(!is_item_key("a-b"));
        assert!(!is_item_key(""));
        assert!(is_role_key("procurement-lead"));
        assert!(is_control_id("VR-01"));
        assert!(!is_control_id("VR 01"));
    }

    #[test]
    fn emails_and_domains() {
        assert!(is_email("ana.lopez+it@example.co.uk"));
        assert!(is_email("Ana@Example.com"));
        assert!(!is_email("ana@localhost"));
        assert!(!is_email("@example.com"));
        assert!(!is_email("ana..x@example.com"));
        assert!(!is_email("ana@exa_mple.com"));
        assert!(is_domain("example.com"));
        assert!(!is_domain("Example.com"));
        assert!(!is_domain("-a.com"));
        assert!(domain_matches("mail.example.com", "example.com"));
        assert!(!domain_matches("badexample.com", "example.com"));
    }

    #[test]
    fn patterns_are_anchored_and_bounded() {
        let re = compile_pattern("[A-Z]{2}[0-9]+").ok();
        assert!(re.as_ref().is_some_and(|r| r.is_match("DE123")));
        assert!(re.as_ref().is_some_and(|r| !r.is_match("xDE123")));
        // A pattern cannot close the anchoring group early.
        assert!(compile_pattern("a)|(b").is_err());
        assert!(compile_pattern("(a{1000}){1000}").is_err());
        let err = compile_pattern("(abc").err().unwrap_or_default();
        assert!(!err.contains('\n'), "{err}");
    }

    #[test]
    fn decimals() {
        assert!(has_at_most_decimals(12.25, 2));
        assert!(!has_at_most_decimals(12.255, 2));
        assert!(has_at_most_decimals(3.0, 0));
        assert!(!has_at_most_decimals(0.1, 0));
    }
}

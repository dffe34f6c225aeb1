//! The template editor's form: between a draft's model and HTML inputs.
//!
//! Every input is named by its path in the template (`tasks[2].fields[0].pattern`),
//! the same path the template validator puts on its messages, so a message
//! lands beside the input it is about. A posted form is turned back into the
//! template's JSON shape, starting from the stored draft so that what the
//! form does not show (reminders, defaults, table columns, conditions
//! nested deeper than the form goes) is kept, and then read by the template parser: the form has
//! no rules of its own.

use std::collections::{BTreeMap, BTreeSet};

use attest_template::{Diagnostic, SourceFormat, Template};
use serde_json::{Map, Value, json};

/// Marks where a posted task or field came from in the stored draft.
const ORIG: &str = "__orig";
/// Set when a condition nests deeper than the form goes; it is kept as stored.
const KEEP: &str = "keep";
/// How many levels of a condition the form edits, counted as the validator
/// counts them (a `not` or a group's item is one level down). Deeper ones are
/// written in words and edited as YAML.
const FORM_CONDITION_DEPTH: usize = 5;
/// Most conditions one group shows in the form.
const FORM_CONDITION_ITEMS: usize = 20;

/// Most tasks and fields the form adds or carries, so a post cannot grow without bound.
const MAX_FORM_TASKS: usize = attest_template::limits::MAX_TASKS;
const MAX_FORM_ROWS: usize = 200;

const OPS: &[(&str, &str)] = &[
    ("is", "is"),
    ("is_not", "is not"),
    ("has_value", "has a value"),
    ("has_no_value", "has no value"),
    ("gt", ">"),
    ("gte", "≥"),
    ("lt", "<"),
    ("lte", "≤"),
    ("contains", "contains"),
];

pub const FIELD_TYPES: &[&str] = &[
    "text",
    "textarea",
    "number",
    "email",
    "url",
    "date",
    "datetime",
    "select",
    "multi_choice",
    "checkbox",
    "members",
    "file",
    "table",
    "hidden",
];

/// The validation keys each field type takes, with how the form reads them.
fn rules_of(field_type: &str) -> &'static [(&'static str, Kind)] {
    use Kind::*;
    match field_type {
        "text" | "textarea" => &[("min_length", Int), ("max_length", Int), ("pattern", Str)],
        "number" => &[("min", Num), ("max", Num), ("decimals", Int)],
        "email" => &[("allow_domains", List), ("block_domains", List)],
        "date" | "datetime" => &[("not_before", Str), ("not_after", Str)],
        "select" | "multi_choice" => &[("options", Lines)],
        "members" => &[("multiple", Bool)],
        "file" => &[("accept", List), ("max_size_mb", Int)],
        _ => &[],
    }
}

/// Every validation key the form may show, so a post replaces all of them.
const ALL_RULE_KEYS: &[&str] = &[
    "min_length",
    "max_length",
    "pattern",
    "min",
    "max",
    "decimals",
    "allow_domains",
    "block_domains",
    "not_before",
    "not_after",
    "options",
    "multiple",
    "accept",
    "max_size_mb",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Str,
    Int,
    Num,
    Bool,
    /// Comma- or space-separated words.
    List,
    /// One entry per line.
    Lines,
}

// ----- the model -----

/// The draft's template as the form edits it: its JSON shape, with each
/// task and field marked with where it came from.
pub fn model_of(t: &Template) -> Value {
    let mut v = serde_json::to_value(t).unwrap_or_else(|_| json!({}));
    if let Some(tasks) = v.get_mut("tasks").and_then(Value::as_array_mut) {
        for (i, task) in tasks.iter_mut().enumerate() {
            task[ORIG] = json!(i);
            if let Some(fields) = task.get_mut("fields").and_then(Value::as_array_mut) {
                for (j, f) in fields.iter_mut().enumerate() {
                    f[ORIG] = json!(j);
                }
            }
        }
    }
    v
}

/// Reads the model as a template, or the first shape problem with its path.
pub fn template_of(model: &Value) -> Result<Template, Diagnostic> {
    let mut clean = model.clone();
    strip_marks(&mut clean);
    attest_template::read_shape(&clean.to_string(), SourceFormat::Json)
}

fn strip_marks(v: &mut Value) {
    if let Some(tasks) = v.get_mut("tasks").and_then(Value::as_array_mut) {
        for task in tasks {
            if let Some(o) = task.as_object_mut() {
                o.remove(ORIG);
            }
            if let Some(fields) = task.get_mut("fields").and_then(Value::as_array_mut) {
                for f in fields {
                    if let Some(o) = f.as_object_mut() {
                        o.remove(ORIG);
                    }
                }
            }
        }
    }
}

// ----- reading a post -----

/// A posted form by input name; a name may repeat (checkbox groups).
#[derive(Debug, Default)]
pub struct Posted(BTreeMap<String, Vec<String>>);

impl Posted {
    pub fn new(pairs: &[(String, String)]) -> Posted {
        let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (k, v) in pairs {
            m.entry(k.clone()).or_default().push(v.clone());
        }
        Posted(m)
    }

    fn text(&self, name: &str) -> String {
        self.0.get(name).and_then(|v| v.first()).map(|s| s.trim().to_string()).unwrap_or_default()
    }

    /// The text as written, line ends normalised, for multi-line inputs
    /// (a block scalar's final newline is content); blank is empty.
    fn block(&self, name: &str) -> String {
        let text = self.0.get(name).and_then(|v| v.first()).map(|s| s.replace("\r\n", "\n")).unwrap_or_default();
        if text.trim().is_empty() { String::new() } else { text }
    }

    fn has(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }

    /// Whether any input's name starts with `prefix`.
    fn has_prefix(&self, prefix: &str) -> bool {
        self.0.range(prefix.to_string()..).next().is_some_and(|(k, _)| k.starts_with(prefix))
    }

    fn all(&self, name: &str) -> Vec<String> {
        self.0
            .get(name)
            .map(|v| v.iter().map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect())
            .unwrap_or_default()
    }

    /// The indices `n` of inputs named `{prefix}[n].…`, in order.
    fn indices(&self, prefix: &str) -> Vec<usize> {
        let mut out = BTreeSet::new();
        let start = format!("{prefix}[");
        for name in self.0.range(start.clone()..) {
            let Some(rest) = name.0.strip_prefix(&start) else { break };
            if let Some(n) = rest.split(']').next().and_then(|s| s.parse::<usize>().ok()) {
                out.insert(n);
            }
        }
        out.into_iter().collect()
    }
}

/// Builds the edited model from a post over the stored model.
pub fn apply_post(stored: &Value, p: &Posted) -> Value {
    let mut m = stored.as_object().cloned().unwrap_or_default();
    for key in ["key", "name"] {
        m.insert(key.into(), Value::String(p.text(key)));
    }
    set_opt(&mut m, "description", p.block("description"));
    set_opt(&mut m, "owner", p.text("owner"));
    let policy: Map<String, Value> = ["id", "title", "clause", "url"]
        .iter()
        .filter_map(|k| {
            let v = p.text(&format!("policy.{k}"));
            (!v.is_empty()).then(|| (k.to_string(), Value::String(v)))
        })
        .collect();
    if policy.is_empty() {
        m.remove("policy");
    } else {
        let mut policy = policy;
        policy.entry("id").or_insert_with(|| Value::String(String::new()));
        m.insert("policy".into(), Value::Object(policy));
    }
    set_list(&mut m, "roles", words(&p.text("roles")));
    let controls: Vec<Value> = p
        .indices("controls")
        .into_iter()
        .take(MAX_FORM_ROWS)
        .filter_map(|i| {
            let (id, name) = (p.text(&format!("controls[{i}].id")), p.text(&format!("controls[{i}].name")));
            let frameworks = words(&p.text(&format!("controls[{i}].frameworks")));
            if id.is_empty() && name.is_empty() && frameworks.is_empty() {
                return None;
            }
            let mut c = json!({"id": id, "name": name});
            if !frameworks.is_empty() {
                c["frameworks"] = json!(frameworks);
            }
            Some(c)
        })
        .collect();
    set_list(&mut m, "controls", controls);

    let stored_tasks = stored.get("tasks").and_then(Value::as_array).cloned().unwrap_or_default();
    let mut tasks = Vec::new();
    for i in p.indices("tasks").into_iter().take(MAX_FORM_TASKS) {
        let pre = format!("tasks[{i}]");
        let orig = p.text(&format!("{pre}.{ORIG}")).parse::<usize>().ok();
        let base = orig.and_then(|o| stored_tasks.get(o)).cloned().unwrap_or_else(|| json!({}));
        tasks.push(task_from(p, &pre, orig, &base));
    }
    m.insert("tasks".into(), Value::Array(tasks));
    let mut model = Value::Object(m);
    type_condition_values(&mut model);
    model
}

fn task_from(p: &Posted, pre: &str, orig: Option<usize>, base: &Value) -> Value {
    let mut t = base.as_object().cloned().unwrap_or_default();
    let keep_condition = p.has(&format!("{pre}.show_when.{KEEP}"));
    for k in
        ["key", "name", "type", "assignee", "stop", "approves", "instructions", "controls", "due", "escalate", "fields"]
    {
        t.remove(k);
    }
    if !keep_condition {
        t.remove("show_when");
    }
    let f = |k: &str| format!("{pre}.{k}");
    t.insert("key".into(), Value::String(p.text(&f("key"))));
    t.insert("name".into(), Value::String(p.text(&f("name"))));
    let approval = p.text(&f("type")) == "approval";
    if approval {
        t.insert("type".into(), json!("approval"));
        set_list(&mut t, "approves", p.all(&f("approves")).into_iter().map(Value::String).collect());
    }
    t.insert("assignee".into(), Value::String(p.text(&f("assignee"))));
    if p.has(&f("stop")) {
        t.insert("stop".into(), json!(true));
    }
    set_opt(&mut t, "instructions", p.block(&f("instructions")));
    set_list(&mut t, "controls", p.all(&f("controls")).into_iter().map(Value::String).collect());
    if !keep_condition && let Some(c) = condition_from(p, &f("show_when"), 1) {
        t.insert("show_when".into(), c);
    }
    let (after, within) = (p.text(&f("due.after")), p.text(&f("due.in")));
    if !after.is_empty() || !within.is_empty() {
        let mut due = json!({"after": after, "in": within});
        if p.has(&f("due.business_days")) {
            due["business_days"] = json!(true);
        }
        t.insert("due".into(), due);
    }
    let steps: Vec<Value> = p
        .indices(&f("escalate"))
        .into_iter()
        .take(attest_template::limits::MAX_ESCALATIONS + 1)
        .filter_map(|k| {
            let e = |x: &str| p.text(&format!("{pre}.escalate[{k}].{x}"));
            let (by, action, target) = (e("overdue_by"), e("action"), e("target"));
            if by.is_empty() && target.is_empty() {
                return None;
            }
            let action = if action == "reassign" { "reassign" } else { "notify" };
            Some(json!({"overdue_by": by, action: target}))
        })
        .collect();
    set_list(&mut t, "escalate", steps);
    let stored_fields = base.get("fields").and_then(Value::as_array).cloned().unwrap_or_default();
    let fields: Vec<Value> = p
        .indices(&f("fields"))
        .into_iter()
        .take(attest_template::limits::MAX_FIELDS_PER_TASK)
        .map(|j| {
            let fpre = format!("{pre}.fields[{j}]");
            let forig = p.text(&format!("{fpre}.{ORIG}")).parse::<usize>().ok();
            let fbase = forig.and_then(|o| stored_fields.get(o)).cloned().unwrap_or_else(|| json!({}));
            field_from(p, &fpre, forig, &fbase)
        })
        .collect();
    set_list(&mut t, "fields", fields);
    if let Some(o) = orig {
        t.insert(ORIG.into(), json!(o));
    }
    Value::Object(t)
}

fn field_from(p: &Posted, pre: &str, orig: Option<usize>, base: &Value) -> Value {
    let mut fl = base.as_object().cloned().unwrap_or_default();
    let f = |k: &str| format!("{pre}.{k}");
    let field_type = p.text(&f("type"));
    let type_changed = base.get("type").and_then(Value::as_str) != Some(field_type.as_str());
    let keep_condition = p.has(&f(&format!("show_when.{KEEP}")));
    for k in ["key", "label", "type", "required", "help"].iter().chain(ALL_RULE_KEYS) {
        fl.remove(*k);
    }
    if !keep_condition {
        fl.remove("show_when");
    }
    if type_changed {
        // A default or table of the old type would not fit the new one.
        for k in ["default", "columns", "max_rows"] {
            fl.remove(k);
        }
        if field_type == "table" {
            fl.insert("columns".into(), json!([{"key": "item", "label": "Item", "type": "text"}]));
        }
    }
    fl.insert("key".into(), Value::String(p.text(&f("key"))));
    fl.insert("label".into(), Value::String(p.text(&f("label"))));
    fl.insert("type".into(), Value::String(field_type.clone()));
    if p.has(&f("required")) {
        fl.insert("required".into(), json!(true));
    }
    set_opt(&mut fl, "help", p.block(&f("help")));
    for (key, kind) in rules_of(&field_type) {
        let name = f(key);
        let v = match kind {
            Kind::Str => Some(p.text(&name)).filter(|s| !s.is_empty()).map(Value::String),
            Kind::Int => Some(p.text(&name)).filter(|s| !s.is_empty()).map(|s| match s.parse::<u64>() {
                Ok(n) => json!(n),
                // Left as text, so the parser names the input and what it expects.
                Err(_) => Value::String(s),
            }),
            Kind::Num => Some(p.text(&name)).filter(|s| !s.is_empty()).map(|s| match s.parse::<f64>() {
                Ok(n) if n.is_finite() => json!(n),
                _ => Value::String(s),
            }),
            Kind::Bool => p.has(&name).then(|| json!(true)),
            Kind::List => Some(words(&p.text(&name))).filter(|w| !w.is_empty()).map(|w| json!(w)),
            Kind::Lines => {
                let lines: Vec<Value> = p
                    .block(&name)
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(|l| Value::String(l.to_string()))
                    .collect();
                // Options are required on choice fields: an empty list gets the validator's message.
                Some(Value::Array(lines))
            }
        };
        if let Some(v) = v {
            fl.insert((*key).to_string(), v);
        }
    }
    if !keep_condition && let Some(c) = condition_from(p, &f("show_when"), 1) {
        fl.insert("show_when".into(), c);
    }
    if let Some(o) = orig {
        fl.insert(ORIG.into(), json!(o));
    }
    Value::Object(fl)
}

/// The condition posted at `path` (`depth` levels down, as the validator
/// counts): its `not` box wraps what its inputs say. A node already negated
/// was shown with its inputs under `{path}.not`; one just negated, under
/// `path` itself. None when no field is chosen anywhere in it.
fn condition_from(p: &Posted, path: &str, depth: usize) -> Option<Value> {
    if depth > attest_template::limits::MAX_CONDITION_DEPTH {
        return None;
    }
    let negate = p.has(&format!("{path}.negate"));
    let inner_path = format!("{path}.not");
    let inner = if p.has_prefix(&format!("{inner_path}.")) {
        plain_condition_from(p, &inner_path, depth + 1)
    } else {
        plain_condition_from(p, path, depth + usize::from(negate))
    }?;
    Some(if negate { json!({"not": inner}) } else { inner })
}

/// A group (`{path}.match` says all or any; its items are numbered under
/// the key it was shown with) or a comparison from its three inputs, which
/// `{path}.combine` may turn into the first item of a new group.
fn plain_condition_from(p: &Posted, path: &str, depth: usize) -> Option<Value> {
    let group = p.text(&format!("{path}.match"));
    if group == "all" || group == "any" {
        let mut numbers: BTreeSet<usize> = BTreeSet::new();
        for shown in ["all", "any"] {
            numbers.extend(p.indices(&format!("{path}.{shown}")));
        }
        let items: Vec<Value> = numbers
            .into_iter()
            .take(attest_template::limits::MAX_CONDITION_ITEMS + 1)
            .filter_map(|k| {
                let item = ["all", "any"]
                    .iter()
                    .map(|shown| format!("{path}.{shown}[{k}]"))
                    .find(|item| p.has_prefix(&format!("{item}.")))?;
                condition_from(p, &item, depth + 1)
            })
            .collect();
        return (!items.is_empty()).then(|| Value::Object(Map::from_iter([(group, Value::Array(items))])));
    }
    let field = p.text(&format!("{path}.field"));
    if field.is_empty() {
        return None;
    }
    let op = p.text(&format!("{path}.op"));
    let op = if op.is_empty() { "is".to_string() } else { op };
    let mut c = json!({"field": field, "op": op});
    if !matches!(op.as_str(), "has_value" | "has_no_value") {
        c["value"] = Value::String(p.text(&format!("{path}.value")));
    }
    match p.text(&format!("{path}.combine")).as_str() {
        combine @ ("all" | "any") => Some(Value::Object(Map::from_iter([(combine.to_string(), json!([c]))]))),
        _ => Some(c),
    }
}

/// Condition values arrive as text; a checkbox field compares with a
/// boolean and a number field with a number, as the file format writes them.
fn type_condition_values(model: &mut Value) {
    let mut types: BTreeMap<String, String> = BTreeMap::new();
    for task in model.get("tasks").and_then(Value::as_array).into_iter().flatten() {
        for f in task.get("fields").and_then(Value::as_array).into_iter().flatten() {
            if let (Some(k), Some(t)) = (f.get("key").and_then(Value::as_str), f.get("type").and_then(Value::as_str)) {
                types.entry(k.to_string()).or_insert_with(|| t.to_string());
            }
        }
    }
    fn fix(c: &mut Value, types: &BTreeMap<String, String>) {
        for group in ["all", "any"] {
            if let Some(items) = c.get_mut(group).and_then(Value::as_array_mut) {
                items.iter_mut().for_each(|item| fix(item, types));
            }
        }
        if let Some(inner) = c.get_mut("not") {
            fix(inner, types);
        }
        let Some(field) = c.get("field").and_then(Value::as_str).map(str::to_string) else { return };
        let Some(Value::String(text)) = c.get("value").cloned() else { return };
        let typed = match types.get(&field).map(String::as_str) {
            Some("checkbox") => match text.as_str() {
                "true" => json!(true),
                "false" => json!(false),
                _ => Value::String(text),
            },
            // Whole numbers stay integers, as a file would write them.
            Some("number") => match (text.parse::<i64>(), text.parse::<f64>()) {
                (Ok(n), _) => json!(n),
                (_, Ok(n)) if n.is_finite() => json!(n),
                _ => Value::String(text),
            },
            _ => Value::String(text),
        };
        c["value"] = typed;
    }
    if let Some(tasks) = model.get_mut("tasks").and_then(Value::as_array_mut) {
        for task in tasks {
            if let Some(c) = task.get_mut("show_when") {
                fix(c, &types);
            }
            if let Some(fields) = task.get_mut("fields").and_then(Value::as_array_mut) {
                for f in fields {
                    if let Some(c) = f.get_mut("show_when") {
                        fix(c, &types);
                    }
                }
            }
        }
    }
}

fn set_opt(m: &mut Map<String, Value>, key: &str, v: String) {
    if v.is_empty() {
        m.remove(key);
    } else {
        m.insert(key.into(), Value::String(v));
    }
}

fn set_list(m: &mut Map<String, Value>, key: &str, v: Vec<Value>) {
    if v.is_empty() {
        m.remove(key);
    } else {
        m.insert(key.into(), Value::Array(v));
    }
}

/// Words separated by commas or white space.
fn words(s: &str) -> Vec<Value> {
    s.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|w| !w.is_empty())
        .map(|w| Value::String(w.to_string()))
        .collect()
}

// ----- structural actions -----

/// What a button of the editor asks for besides saving.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Save,
    Validate,
    AddTask,
    RemoveTask(usize),
    MoveTaskUp(usize),
    MoveTaskDown(usize),
    AddField(usize),
    RemoveField(usize, usize),
    MoveFieldUp(usize, usize),
    MoveFieldDown(usize, usize),
}

impl Action {
    pub fn parse(s: &str) -> Action {
        let mut parts = s.split(':');
        let name = parts.next().unwrap_or("");
        let mut n = || parts.next().and_then(|x| x.parse::<usize>().ok());
        match (name, n(), n()) {
            ("validate", _, _) => Action::Validate,
            ("add_task", _, _) => Action::AddTask,
            ("remove_task", Some(i), _) => Action::RemoveTask(i),
            ("task_up", Some(i), _) => Action::MoveTaskUp(i),
            ("task_down", Some(i), _) => Action::MoveTaskDown(i),
            ("add_field", Some(i), _) => Action::AddField(i),
            ("remove_field", Some(i), Some(j)) => Action::RemoveField(i, j),
            ("field_up", Some(i), Some(j)) => Action::MoveFieldUp(i, j),
            ("field_down", Some(i), Some(j)) => Action::MoveFieldDown(i, j),
            _ => Action::Save,
        }
    }

    /// The task the action touched, for the page to show unfolded and scroll to.
    pub fn task(self, model: &Value) -> Option<usize> {
        let last = model.get("tasks").and_then(Value::as_array).map_or(0, Vec::len).saturating_sub(1);
        match self {
            Action::AddTask => Some(last),
            Action::MoveTaskUp(i) => Some(i.saturating_sub(1)),
            Action::MoveTaskDown(i) => Some((i + 1).min(last)),
            Action::RemoveTask(i) => Some(i.min(last)),
            Action::AddField(i)
            | Action::RemoveField(i, _)
            | Action::MoveFieldUp(i, _)
            | Action::MoveFieldDown(i, _) => Some(i),
            Action::Save | Action::Validate => None,
        }
    }
}

/// Applies a structural action to the model; out-of-range indices do nothing.
pub fn apply_action(model: &mut Value, action: Action) {
    let used_keys = all_keys(model);
    let Some(tasks) = model.get_mut("tasks").and_then(Value::as_array_mut) else { return };
    match action {
        Action::Save | Action::Validate => {}
        Action::AddTask if tasks.len() < MAX_FORM_TASKS => {
            let key = fresh("task", &used_keys);
            tasks.push(json!({"key": key, "name": "New task", "assignee": "starter"}));
        }
        Action::RemoveTask(i) if i < tasks.len() && tasks.len() > 1 => {
            tasks.remove(i);
        }
        Action::MoveTaskUp(i) if i > 0 && i < tasks.len() => tasks.swap(i - 1, i),
        Action::MoveTaskDown(i) if i + 1 < tasks.len() => tasks.swap(i, i + 1),
        Action::AddField(i) => {
            if let Some(task) = tasks.get_mut(i) {
                let key = fresh("field", &used_keys);
                let new = json!({"key": key, "label": "New field", "type": "text"});
                match task.get_mut("fields").and_then(Value::as_array_mut) {
                    Some(fields) if fields.len() < attest_template::limits::MAX_FIELDS_PER_TASK => fields.push(new),
                    Some(_) => {}
                    None => task["fields"] = json!([new]),
                }
            }
        }
        Action::RemoveField(i, j) | Action::MoveFieldUp(i, j) | Action::MoveFieldDown(i, j) => {
            let Some(task) = tasks.get_mut(i) else { return };
            let Some(fields) = task.get_mut("fields").and_then(Value::as_array_mut) else { return };
            match action {
                Action::RemoveField(..) if j < fields.len() => {
                    fields.remove(j);
                }
                Action::MoveFieldUp(..) if j > 0 && j < fields.len() => fields.swap(j - 1, j),
                Action::MoveFieldDown(..) if j + 1 < fields.len() => fields.swap(j, j + 1),
                _ => {}
            }
            if fields.is_empty()
                && let Some(o) = task.as_object_mut()
            {
                o.remove("fields");
            }
        }
        _ => {}
    }
}

fn all_keys(model: &Value) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    for task in model.get("tasks").and_then(Value::as_array).into_iter().flatten() {
        if let Some(k) = task.get("key").and_then(Value::as_str) {
            keys.insert(k.to_string());
        }
        for f in task.get("fields").and_then(Value::as_array).into_iter().flatten() {
            if let Some(k) = f.get("key").and_then(Value::as_str) {
                keys.insert(k.to_string());
            }
        }
    }
    keys
}

fn fresh(stem: &str, used: &BTreeSet<String>) -> String {
    (1..).map(|n| format!("{stem}_{n}")).find(|k| !used.contains(k)).unwrap_or_else(|| stem.to_string())
}

// ----- messages beside inputs -----

/// Validator messages by path, handed out to the inputs and blocks they belong to.
#[derive(Debug, Default)]
pub struct Messages(Vec<(String, String)>);

impl Messages {
    pub fn new(diags: &[Diagnostic]) -> Messages {
        Messages(diags.iter().map(|d| (d.path.clone(), with_line(d))).collect())
    }

    /// Takes the messages about `path` or anything inside it.
    pub fn take(&mut self, path: &str) -> Vec<String> {
        let (mine, rest): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.0).into_iter().partition(|(p, _)| within(p, path));
        self.0 = rest;
        mine.into_iter().map(|(_, m)| m).collect()
    }

    /// Whatever no input or block took.
    pub fn rest(&mut self) -> Vec<String> {
        std::mem::take(&mut self.0)
            .into_iter()
            .map(|(p, m)| if p.is_empty() { m } else { format!("{p}: {m}") })
            .collect()
    }
}

fn with_line(d: &Diagnostic) -> String {
    match d.line {
        Some(line) => format!("{} (YAML line {line})", d.message),
        None => d.message.clone(),
    }
}

/// Whether `path` is `prefix` or inside it (`tasks[1]` holds `tasks[1].key`, not `tasks[10]`).
fn within(path: &str, prefix: &str) -> bool {
    match path.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || rest.starts_with('.') || rest.starts_with('['),
        None => false,
    }
}

// ----- the view -----

/// One input of the editor.
#[derive(Debug, Clone)]
pub struct Input {
    pub name: String,
    pub id: String,
    pub label: String,
    pub kind: InputKind,
    pub value: String,
    /// Choices of a select or a checkbox group: value, label, selected.
    pub choices: Vec<(String, String, bool)>,
    pub help: String,
    /// Suggestions for a text input (a datalist).
    pub suggest: Vec<String>,
    pub errors: Vec<String>,
    /// Spans the whole row of the grid.
    pub wide: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputKind {
    Text,
    Number,
    Area,
    Select,
    Check,
    Checks,
    Hidden,
}

impl Input {
    fn new(name: &str, label: &str, kind: InputKind, value: String) -> Input {
        Input {
            name: name.to_string(),
            id: input_id(name),
            label: label.to_string(),
            kind,
            value,
            choices: Vec::new(),
            help: String::new(),
            suggest: Vec::new(),
            errors: Vec::new(),
            wide: false,
        }
    }

    fn help(mut self, h: &str) -> Input {
        self.help = h.to_string();
        self
    }

    fn wide(mut self) -> Input {
        self.wide = true;
        self
    }

    fn choices(mut self, c: Vec<(String, String, bool)>) -> Input {
        self.choices = c;
        self
    }

    fn suggest(mut self, s: Vec<String>) -> Input {
        self.suggest = s;
        self
    }

    pub fn is(&self, kind: &str) -> bool {
        let k = match self.kind {
            InputKind::Text => "text",
            InputKind::Number => "number",
            InputKind::Area => "area",
            InputKind::Select => "select",
            InputKind::Check => "check",
            InputKind::Checks => "checks",
            InputKind::Hidden => "hidden",
        };
        k == kind
    }

    pub fn checked(&self) -> bool {
        self.value == "true"
    }

    pub fn invalid(&self) -> bool {
        !self.errors.is_empty()
    }

    pub fn described_by(&self) -> String {
        let mut ids = Vec::new();
        if !self.help.is_empty() {
            ids.push(format!("{}-help", self.id));
        }
        if !self.errors.is_empty() {
            ids.push(format!("{}-err", self.id));
        }
        ids.join(" ")
    }
}

/// An HTML id for an input path: `tasks[2].fields[0].key` → `in-tasks-2-fields-0-key`.
pub fn input_id(name: &str) -> String {
    let mut id = String::from("in-");
    for c in name.chars() {
        match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '_' | '-' => id.push(c),
            _ => {
                if !id.ends_with('-') {
                    id.push('-');
                }
            }
        }
    }
    id.trim_end_matches('-').to_string()
}

#[derive(Debug, Clone)]
pub struct FieldBlock {
    pub index: usize,
    pub title: String,
    pub hidden: Vec<Input>,
    pub inputs: Vec<Input>,
    pub rules: Vec<Input>,
    pub condition: Vec<CondRow>,
    pub complex_condition: Option<String>,
    pub errors: Vec<String>,
    pub last: bool,
}

#[derive(Debug, Clone)]
pub struct TaskBlock {
    pub index: usize,
    pub title: String,
    pub assignee: String,
    /// Shown unfolded: it has problems, was just changed, or the template is short.
    pub open: bool,
    pub approval: bool,
    pub stop: bool,
    pub hidden: Vec<Input>,
    pub inputs: Vec<Input>,
    pub condition: Vec<CondRow>,
    pub complex_condition: Option<String>,
    pub due: Vec<Input>,
    pub escalations: Vec<Vec<Input>>,
    pub fields: Vec<FieldBlock>,
    pub errors: Vec<String>,
    pub problem_count: usize,
    pub last: bool,
}

/// One line of a condition in the form: a group opens (with its all/any
/// choice), a comparison, or a group closes. A tree drawn as a list, in order.
#[derive(Debug, Clone)]
pub struct CondRow {
    /// `open`, `compare` or `close`.
    pub kind: &'static str,
    /// The condition's path in the template; messages about it (and not
    /// about one of its inputs) show on its row.
    pub path: String,
    /// Names the row for assistive technology: "Condition item 2 item 1".
    pub legend: String,
    pub inputs: Vec<Input>,
    pub errors: Vec<String>,
}

impl CondRow {
    pub fn is(&self, kind: &str) -> bool {
        self.kind == kind
    }
}

#[derive(Debug, Clone)]
pub struct ControlRow {
    pub inputs: Vec<Input>,
    pub errors: Vec<String>,
}

/// The whole editor as inputs, with the messages handed out.
#[derive(Debug, Clone)]
pub struct EditorView {
    pub header: Vec<Input>,
    pub controls: Vec<ControlRow>,
    pub tasks: Vec<TaskBlock>,
    /// Messages about the whole template or nothing the form shows.
    pub general: Vec<String>,
}

fn s(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

fn list_text(v: Option<&Value>, sep: &str) -> String {
    match v {
        Some(Value::Array(items)) => items.iter().map(|i| s(Some(i))).collect::<Vec<_>>().join(sep),
        other => s(other),
    }
}

fn flag(v: Option<&Value>) -> String {
    if v == Some(&Value::Bool(true)) { "true".into() } else { String::new() }
}

pub fn view(model: &Value, messages: &mut Messages) -> EditorView {
    use InputKind::*;
    let tasks_v = model.get("tasks").and_then(Value::as_array).cloned().unwrap_or_default();
    let roles: Vec<String> = model
        .get("roles")
        .and_then(Value::as_array)
        .map(|r| r.iter().map(|x| s(Some(x))).collect())
        .unwrap_or_default();
    let control_ids: Vec<String> = model
        .get("controls")
        .and_then(Value::as_array)
        .map(|c| c.iter().map(|x| s(x.get("id"))).filter(|x| !x.is_empty()).collect())
        .unwrap_or_default();

    let mut header = vec![
        Input::new("key", "Key", Text, s(model.get("key")))
            .help("Lowercase letters, digits and '-'; runs refer to it, so keep it once published."),
        Input::new("name", "Name", Text, s(model.get("name"))),
        Input::new("owner", "Owner", Text, s(model.get("owner")))
            .help("Who is accountable: role:KEY or user:EMAIL.")
            .suggest(roles.iter().map(|r| format!("role:{r}")).collect()),
        Input::new("roles", "Roles", Text, list_text(model.get("roles"), ", "))
            .help("The workspace roles the tasks use, separated by commas."),
        Input::new("description", "Description", Area, s(model.get("description"))).wide(),
        Input::new("policy.id", "Policy id", Text, s(model.pointer("/policy/id"))),
        Input::new("policy.title", "Policy title", Text, s(model.pointer("/policy/title"))),
        Input::new("policy.clause", "Clause", Text, s(model.pointer("/policy/clause"))),
        Input::new("policy.url", "Policy link", Text, s(model.pointer("/policy/url")))
            .help("An http:// or https:// address."),
    ];

    // Field keys of each task, for conditions and anchors.
    let mut field_keys_by_task: Vec<Vec<(String, String)>> = Vec::new();
    for t in &tasks_v {
        field_keys_by_task.push(
            t.get("fields")
                .and_then(Value::as_array)
                .map(|fs| fs.iter().map(|f| (s(f.get("key")), s(f.get("type")))).collect())
                .unwrap_or_default(),
        );
    }
    let task_keys: Vec<String> = tasks_v.iter().map(|t| s(t.get("key"))).collect();

    let mut tasks = Vec::new();
    for (i, t) in tasks_v.iter().enumerate() {
        let pre = format!("tasks[{i}]");
        let n = |k: &str| format!("{pre}.{k}");
        let approval = s(t.get("type")) == "approval";
        let earlier_fields: Vec<String> = field_keys_by_task[..i].iter().flatten().map(|(k, _)| k.clone()).collect();
        let member_fields: Vec<String> = field_keys_by_task[..i]
            .iter()
            .flatten()
            .filter(|(_, ty)| ty == "members")
            .map(|(k, _)| format!("field:{k}"))
            .collect();
        let mut hidden = Vec::new();
        if let Some(o) = t.get(ORIG) {
            hidden.push(Input::new(&n(ORIG), "", Hidden, s(Some(o))));
        }
        let mut assignee_suggest = vec!["starter".to_string()];
        assignee_suggest.extend(roles.iter().map(|r| format!("role:{r}")));
        assignee_suggest.extend(member_fields);
        let approves_now: Vec<String> = t
            .get("approves")
            .and_then(Value::as_array)
            .map(|a| a.iter().map(|x| s(Some(x))).collect())
            .unwrap_or_default();
        let mut approvable: Vec<(String, String, bool)> = tasks_v[..i]
            .iter()
            .filter(|e| s(e.get("type")) != "approval")
            .map(|e| {
                let k = s(e.get("key"));
                let checked = approves_now.contains(&k);
                (k.clone(), format!("{} ({k})", s(e.get("name"))), checked)
            })
            .collect();
        for k in &approves_now {
            if !approvable.iter().any(|(v, _, _)| v == k) {
                approvable.push((k.clone(), k.clone(), true));
            }
        }
        let task_controls: Vec<String> = t
            .get("controls")
            .and_then(Value::as_array)
            .map(|a| a.iter().map(|x| s(Some(x))).collect())
            .unwrap_or_default();
        let mut control_choices: Vec<(String, String, bool)> =
            control_ids.iter().map(|c| (c.clone(), c.clone(), task_controls.contains(c))).collect();
        for c in &task_controls {
            if !control_ids.contains(c) {
                control_choices.push((c.clone(), c.clone(), true));
            }
        }
        let mut inputs = vec![
            Input::new(&n("name"), "Name", Text, s(t.get("name"))),
            Input::new(&n("key"), "Key", Text, s(t.get("key"))).help("Lowercase letters, digits and '_'."),
            Input::new(&n("type"), "Type", Select, if approval { "approval".into() } else { "task".into() }).choices(
                vec![("task".into(), "Task".into(), !approval), ("approval".into(), "Approval".into(), approval)],
            ),
            Input::new(&n("assignee"), "Assignee", Text, s(t.get("assignee")))
                .help("starter, role:KEY, user:EMAIL or field:KEY (a people field of an earlier task).")
                .suggest(assignee_suggest),
            Input::new(&n("stop"), "Stop: later tasks wait until this one is complete", Check, flag(t.get("stop")))
                .wide(),
        ];
        if approval {
            inputs.push(
                Input::new(&n("approves"), "Approves", Checks, String::new())
                    .choices(approvable)
                    .help("The earlier tasks this approval signs off.")
                    .wide(),
            );
        }
        if !control_choices.is_empty() {
            inputs.push(
                Input::new(&n("controls"), "Evidences controls", Checks, String::new()).choices(control_choices).wide(),
            );
        }
        inputs.push(Input::new(&n("instructions"), "Instructions", Area, s(t.get("instructions"))).wide());

        let (condition, complex_condition) =
            condition_rows(&n("show_when"), t.get("show_when"), &earlier_fields, "Only if");
        let mut due_anchors = vec![("".to_string(), "(no due date)".to_string())];
        due_anchors.push(("run_started".into(), "the run started".into()));
        due_anchors.extend(
            task_keys
                .iter()
                .filter(|k| **k != task_keys[i])
                .map(|k| (format!("task:{k}"), format!("task {k} was completed"))),
        );
        due_anchors.extend(
            field_keys_by_task
                .iter()
                .flatten()
                .filter(|(_, ty)| ty == "date" || ty == "datetime")
                .map(|(k, _)| (format!("field:{k}"), format!("the date in field {k}"))),
        );
        let after_now = s(t.pointer("/due/after"));
        if !due_anchors.iter().any(|(v, _)| *v == after_now) {
            due_anchors.push((after_now.clone(), after_now.clone()));
        }
        let due = vec![
            Input::new(&n("due.after"), "Due after", Select, after_now.clone())
                .choices(due_anchors.into_iter().map(|(v, l)| (v.clone(), l, v == after_now)).collect()),
            Input::new(&n("due.in"), "Within", Text, s(t.pointer("/due/in"))).help("Like 4h, 3d or 2w."),
            Input::new(
                &n("due.business_days"),
                "Count business days only",
                Check,
                flag(t.pointer("/due/business_days")),
            ),
        ];
        let mut escalations = Vec::new();
        let steps = t.get("escalate").and_then(Value::as_array).cloned().unwrap_or_default();
        for k in 0..=steps.len() {
            let step = steps.get(k);
            let action = if step.and_then(|x| x.get("reassign")).is_some() { "reassign" } else { "notify" };
            let target = step.map(|x| s(x.get(action))).unwrap_or_default();
            let e = |x: &str| format!("{pre}.escalate[{k}].{x}");
            escalations.push(vec![
                Input::new(
                    &e("overdue_by"),
                    "Overdue by",
                    Text,
                    step.map(|x| s(x.get("overdue_by"))).unwrap_or_default(),
                ),
                Input::new(&e("action"), "Then", Select, action.into()).choices(vec![
                    ("notify".into(), "notify".into(), action == "notify"),
                    ("reassign".into(), "reassign to".into(), action == "reassign"),
                ]),
                Input::new(&e("target"), "Whom", Text, target)
                    .suggest(roles.iter().map(|r| format!("role:{r}")).collect()),
            ]);
        }

        let mut fields = Vec::new();
        let fields_v = t.get("fields").and_then(Value::as_array).cloned().unwrap_or_default();
        for (j, f) in fields_v.iter().enumerate() {
            let fpre = format!("{pre}.fields[{j}]");
            let fname = |k: &str| format!("{fpre}.{k}");
            let ftype = s(f.get("type"));
            let mut fhidden = Vec::new();
            if let Some(o) = f.get(ORIG) {
                fhidden.push(Input::new(&fname(ORIG), "", Hidden, s(Some(o))));
            }
            let finputs = vec![
                Input::new(&fname("label"), "Label", Text, s(f.get("label"))),
                Input::new(&fname("key"), "Key", Text, s(f.get("key"))),
                Input::new(&fname("type"), "Type", Select, ftype.clone()).choices(
                    FIELD_TYPES.iter().map(|ty| (ty.to_string(), ty.replace('_', " "), *ty == ftype)).collect(),
                ),
                Input::new(&fname("required"), "Required", Check, flag(f.get("required"))),
                Input::new(&fname("help"), "Help text", Text, s(f.get("help"))).wide(),
            ];
            let rules = rules_of(&ftype)
                .iter()
                .map(|(key, kind)| {
                    let label = rule_label(key);
                    let name = fname(key);
                    match kind {
                        Kind::Bool => Input::new(&name, label, Check, flag(f.get(*key))),
                        Kind::Lines => {
                            Input::new(&name, label, Area, list_text(f.get(*key), "\n")).help("One per line.")
                        }
                        Kind::List => {
                            Input::new(&name, label, Text, list_text(f.get(*key), ", ")).help("Separated by commas.")
                        }
                        Kind::Int | Kind::Num => Input::new(&name, label, Number, s(f.get(*key))),
                        Kind::Str => {
                            let help = match *key {
                                "pattern" => "A regular expression the whole value must match.",
                                _ => "A date (2025-01-31), run_started or field:KEY, with an offset like +30d.",
                            };
                            Input::new(&name, label, Text, s(f.get(*key))).help(help)
                        }
                    }
                })
                .collect();
            let mut cond_fields = earlier_fields.clone();
            cond_fields.extend(fields_v[..j].iter().map(|x| s(x.get("key"))));
            let (fcondition, fcomplex) =
                condition_rows(&fname("show_when"), f.get("show_when"), &cond_fields, "Show only if");
            fields.push(FieldBlock {
                index: j,
                title: s(f.get("label")),
                hidden: fhidden,
                inputs: finputs,
                rules,
                condition: fcondition,
                complex_condition: fcomplex,
                errors: Vec::new(),
                last: j + 1 == fields_v.len(),
            });
        }
        tasks.push(TaskBlock {
            index: i,
            title: s(t.get("name")),
            assignee: s(t.get("assignee")),
            open: false,
            approval,
            stop: t.get("stop") == Some(&Value::Bool(true)),
            hidden,
            inputs,
            condition,
            complex_condition,
            due,
            escalations,
            fields,
            errors: Vec::new(),
            problem_count: 0,
            last: i + 1 == tasks_v.len(),
        });
    }

    let controls_v = model.get("controls").and_then(Value::as_array).cloned().unwrap_or_default();
    let mut controls = Vec::new();
    for k in 0..=controls_v.len() {
        let c = controls_v.get(k);
        let pre = format!("controls[{k}]");
        controls.push(ControlRow {
            inputs: vec![
                Input::new(&format!("{pre}.id"), "Id", Text, c.map(|x| s(x.get("id"))).unwrap_or_default()),
                Input::new(&format!("{pre}.name"), "Name", Text, c.map(|x| s(x.get("name"))).unwrap_or_default()),
                Input::new(
                    &format!("{pre}.frameworks"),
                    "Frameworks",
                    Text,
                    c.map(|x| list_text(x.get("frameworks"), ", ")).unwrap_or_default(),
                )
                .help("Like SOC2:CC9.2, ISO27001:A.5.19."),
            ],
            errors: Vec::new(),
        });
    }

    // Hand out messages: inputs first, then the blocks that hold them.
    let tasks_len = tasks.len();
    for task in &mut tasks {
        let before = messages.0.len();
        for field in &mut task.fields {
            for input in field.inputs.iter_mut().chain(field.rules.iter_mut()) {
                input.errors = messages.take(&input.name);
            }
            hand_out_condition(&mut field.condition, messages);
            field.errors = messages.take(&format!("tasks[{}].fields[{}]", task.index, field.index));
        }
        for input in task.inputs.iter_mut().chain(task.due.iter_mut()) {
            input.errors = messages.take(&input.name);
        }
        hand_out_condition(&mut task.condition, messages);
        for (k, row) in task.escalations.iter_mut().enumerate() {
            for input in row.iter_mut() {
                input.errors = messages.take(&input.name);
            }
            let rest = messages.take(&format!("tasks[{}].escalate[{k}]", task.index));
            if let Some(target) = row.last_mut() {
                target.errors.extend(rest);
            }
        }
        task.errors = messages.take(&format!("tasks[{}]", task.index));
        task.problem_count = before - messages.0.len();
        task.open = task.problem_count > 0 || tasks_len <= 3;
    }
    for (k, row) in controls.iter_mut().enumerate() {
        for input in &mut row.inputs {
            input.errors = messages.take(&input.name);
        }
        row.errors = messages.take(&format!("controls[{k}]"));
    }
    for input in &mut header {
        input.errors = messages.take(&input.name);
    }
    // `policy` itself (a missing id) belongs beside the id.
    let policy_rest = messages.take("policy");
    if let Some(id) = header.iter_mut().find(|i| i.name == "policy.id") {
        id.errors.extend(policy_rest);
    }
    EditorView { header, controls, tasks, general: messages.rest() }
}

fn rule_label(key: &str) -> &'static str {
    match key {
        "min_length" => "Shortest length",
        "max_length" => "Longest length",
        "pattern" => "Pattern",
        "min" => "Smallest",
        "max" => "Largest",
        "decimals" => "Decimals",
        "allow_domains" => "Only these domains",
        "block_domains" => "Not these domains",
        "not_before" => "Not before",
        "not_after" => "Not after",
        "options" => "Options",
        "multiple" => "More than one person",
        "accept" => "File types",
        "max_size_mb" => "Largest size (MB)",
        _ => "Rule",
    }
}

/// Messages for a condition's rows: each input takes its own, then each
/// row what is left about its condition. Rows are visited last to first so a
/// group's items take theirs before the group.
fn hand_out_condition(rows: &mut [CondRow], messages: &mut Messages) {
    for row in rows.iter_mut().rev() {
        for input in &mut row.inputs {
            input.errors = messages.take(&input.name);
        }
        if !row.is("close") {
            row.errors = messages.take(&row.path);
        }
    }
}

/// The rows of a condition, or the condition in words when it nests deeper
/// than the form goes (it is then kept as it is and edited as YAML).
fn condition_rows(path: &str, c: Option<&Value>, fields: &[String], label: &str) -> (Vec<CondRow>, Option<String>) {
    if let Some(v) = c.filter(|v| !fits_form(v, 1)) {
        let text = serde_json::from_value::<attest_template::Condition>(v.clone())
            .map(|c| attest_design::condition_text(&c))
            .unwrap_or_else(|_| v.to_string());
        let keep = Input::new(&format!("{path}.{KEEP}"), "", InputKind::Hidden, "1".into());
        let row = CondRow {
            kind: "compare",
            path: path.to_string(),
            legend: String::new(),
            inputs: vec![keep],
            errors: vec![],
        };
        return (vec![row], Some(text));
    }
    let mut rows = Vec::new();
    let node =
        Node { path: path.to_string(), depth: 1, legend: "Condition".into(), field_label: format!("{label} field") };
    node_rows(&mut rows, &node, c, fields);
    (rows, None)
}

/// Whether the form can show a condition: groups and `not`s no deeper than
/// `FORM_CONDITION_DEPTH`, no `not` of a `not`, groups of at most
/// `FORM_CONDITION_ITEMS`, and every part of a shape it knows.
fn fits_form(c: &Value, depth: usize) -> bool {
    if depth > FORM_CONDITION_DEPTH {
        return false;
    }
    if let Some(inner) = c.get("not") {
        return inner.get("not").is_none() && fits_form(inner, depth + 1);
    }
    for group in ["all", "any"] {
        if let Some(items) = c.get(group) {
            return items.as_array().is_some_and(|items| {
                items.len() <= FORM_CONDITION_ITEMS && items.iter().all(|item| fits_form(item, depth + 1))
            });
        }
    }
    c.get("field").is_some_and(Value::is_string)
}

/// Where a condition's rows go: its path, level, and names.
struct Node {
    path: String,
    depth: usize,
    legend: String,
    field_label: String,
}

/// Appends the rows of the condition `c` at `node` (none: an empty row to fill in).
fn node_rows(rows: &mut Vec<CondRow>, node: &Node, c: Option<&Value>, fields: &[String]) {
    use InputKind::*;
    let negated = c.and_then(|v| v.get("not"));
    let (inner, inner_path, inner_depth) = match negated {
        Some(inner) => (Some(inner), format!("{}.not", node.path), node.depth + 1),
        None => (c, node.path.clone(), node.depth),
    };
    let mut lead = Vec::new();
    // Negating puts what is inside one level down.
    if negated.is_some() || (c.is_some() && inner_depth < FORM_CONDITION_DEPTH) {
        let checked = if negated.is_some() { "true" } else { "" };
        lead.push(Input::new(&format!("{}.negate", node.path), "Not: the opposite of this", Check, checked.into()));
    }
    let group = inner.and_then(|v| ["all", "any"].into_iter().find(|g| v.get(*g).is_some()));
    let Some(group) = group else {
        let v = inner;
        let field_now = v.map(|v| s(v.get("field"))).unwrap_or_default();
        let op_now = v.map(|v| s(v.get("op"))).unwrap_or_else(|| "is".into());
        let mut choices = vec![(String::new(), "(no condition)".to_string(), field_now.is_empty())];
        choices.extend(fields.iter().map(|k| (k.clone(), k.clone(), *k == field_now)));
        if !field_now.is_empty() && !fields.contains(&field_now) {
            choices.push((field_now.clone(), field_now.clone(), true));
        }
        let mut inputs = lead;
        inputs.extend([
            Input::new(&format!("{inner_path}.field"), &node.field_label, Select, field_now).choices(choices),
            Input::new(&format!("{inner_path}.op"), "Compare", Select, op_now.clone())
                .choices(OPS.iter().map(|(v, l)| (v.to_string(), l.to_string(), *v == op_now)).collect()),
            Input::new(&format!("{inner_path}.value"), "Value", Text, v.map(|v| s(v.get("value"))).unwrap_or_default()),
        ]);
        // Combining puts this comparison one level down, as a group's first item.
        if v.is_some() && inner_depth < FORM_CONDITION_DEPTH {
            inputs.push(
                Input::new(&format!("{inner_path}.combine"), "Add a condition", Select, String::new()).choices(vec![
                    (String::new(), "(no)".into(), true),
                    ("all".into(), "and another (all must hold)".into(), false),
                    ("any".into(), "or another (any may hold)".into(), false),
                ]),
            );
        }
        rows.push(CondRow {
            kind: "compare",
            path: node.path.clone(),
            legend: node.legend.clone(),
            inputs,
            errors: vec![],
        });
        return;
    };
    let items = inner.and_then(|v| v.get(group)).and_then(Value::as_array).cloned().unwrap_or_default();
    let mut inputs = lead;
    inputs.push(Input::new(&format!("{inner_path}.match"), "Holds when", Select, group.into()).choices(vec![
        ("all".into(), "all of these hold".into(), group == "all"),
        ("any".into(), "any of these holds".into(), group == "any"),
    ]));
    rows.push(CondRow { kind: "open", path: node.path.clone(), legend: node.legend.clone(), inputs, errors: vec![] });
    let item = |k: usize| Node {
        path: format!("{inner_path}.{group}[{k}]"),
        depth: inner_depth + 1,
        legend: format!("{} item {}", node.legend, k + 1),
        field_label: "Field".into(),
    };
    for (k, v) in items.iter().enumerate() {
        node_rows(rows, &item(k), Some(v), fields);
    }
    if items.len() < FORM_CONDITION_ITEMS {
        let mut blank = item(items.len());
        blank.legend = format!("{}: a new item (fill in to add)", node.legend);
        node_rows(rows, &blank, None, fields);
    }
    rows.push(CondRow { kind: "close", path: String::new(), legend: String::new(), inputs: vec![], errors: vec![] });
}

#[cfg(test)]
mod tests {
    use super::*;

    const VENDOR: &str = include_str!("../../../../examples/vendor-onboarding.yaml");

    fn vendor() -> Template {
        attest_template::parse(VENDOR, SourceFormat::Yaml, None).unwrap_or_else(|d| panic!("{d:?}"))
    }

    /// The pairs a browser would send for the rendered editor, unchanged.
    fn pairs_of(view: &EditorView) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut push = |i: &Input| match i.kind {
            InputKind::Check => {
                if i.checked() {
                    out.push((i.name.clone(), "true".into()));
                }
            }
            InputKind::Checks => {
                for (v, _, on) in &i.choices {
                    if *on {
                        out.push((i.name.clone(), v.clone()));
                    }
                }
            }
            _ => out.push((i.name.clone(), i.value.clone())),
        };
        view.header.iter().for_each(&mut push);
        view.controls.iter().flat_map(|c| &c.inputs).for_each(&mut push);
        for t in &view.tasks {
            t.hidden
                .iter()
                .chain(&t.inputs)
                .chain(t.condition.iter().flat_map(|r| &r.inputs))
                .chain(&t.due)
                .for_each(&mut push);
            t.escalations.iter().flatten().for_each(&mut push);
            for f in &t.fields {
                f.hidden
                    .iter()
                    .chain(&f.inputs)
                    .chain(&f.rules)
                    .chain(f.condition.iter().flat_map(|r| &r.inputs))
                    .for_each(&mut push);
            }
        }
        out
    }

    #[test]
    fn an_unchanged_form_gives_back_the_same_template() {
        for name in
            ["vendor-onboarding", "employee-onboarding", "incident-response", "invoice-approval", "user-access-review"]
        {
            let path = format!("{}/../../examples/{name}.yaml", env!("CARGO_MANIFEST_DIR"));
            let source = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{e}"));
            let t = attest_template::parse(&source, SourceFormat::Yaml, None).unwrap_or_else(|d| panic!("{d:?}"));
            let model = model_of(&t);
            let v = view(&model, &mut Messages::default());
            let posted = Posted::new(&pairs_of(&v));
            let back = template_of(&apply_post(&model, &posted)).unwrap_or_else(|d| panic!("{name}: {d}"));
            assert_eq!(back, t, "{name}: the form round-trips");
        }
    }

    #[test]
    fn a_word_in_a_number_rule_is_named_at_its_input() {
        let t = vendor();
        let model = model_of(&t);
        let mut pairs = pairs_of(&view(&model, &mut Messages::default()));
        for (k, v) in &mut pairs {
            if k == "tasks[0].fields[0].max_length" {
                *v = "lots".into();
            }
        }
        let edited = apply_post(&model, &Posted::new(&pairs));
        let err = template_of(&edited).expect_err("a word is not a length");
        assert_eq!(err.path, "tasks[0].fields[0].max_length");
        let mut messages = Messages::new(&[err]);
        let v = view(&edited, &mut messages);
        let input = v.tasks[0].fields[0].rules.iter().find(|i| i.name == "tasks[0].fields[0].max_length");
        let input = input.unwrap_or_else(|| panic!("the input is shown"));
        assert_eq!(input.value, "lots", "the value stays as typed");
        assert_eq!(input.errors.len(), 1);
        assert!(v.general.is_empty());
    }

    #[test]
    fn validator_messages_land_beside_their_inputs_or_blocks() {
        let mut t = vendor();
        t.tasks[1].assignee = attest_template::Assignee::Role("nobody".into());
        t.tasks[2].approves.push("finance_approval".into());
        let diags = attest_template::validate(&t).expect_err("invalid");
        let mut messages = Messages::new(&diags);
        let v = view(&model_of(&t), &mut messages);
        let assignee = v.tasks[1].inputs.iter().find(|i| i.name == "tasks[1].assignee").map(|i| i.errors.len());
        assert_eq!(assignee, Some(1));
        let approves = v.tasks[2].inputs.iter().find(|i| i.name == "tasks[2].approves").map(|i| i.errors.len());
        assert_eq!(approves, Some(1));
        assert_eq!(v.tasks[1].problem_count, 1);
        assert!(v.general.is_empty(), "{:?}", v.general);
    }

    #[test]
    fn changing_a_field_type_drops_the_old_types_rules() {
        let t = vendor();
        let model = model_of(&t);
        let mut pairs = pairs_of(&view(&model, &mut Messages::default()));
        for (k, v) in &mut pairs {
            if k == "tasks[0].fields[0].type" {
                *v = "number".into();
            }
        }
        let back = template_of(&apply_post(&model, &Posted::new(&pairs))).unwrap_or_else(|d| panic!("{d}"));
        assert_eq!(back.tasks[0].fields[0].kind.type_name(), "number");
    }

    #[test]
    fn actions_add_move_and_remove_with_fresh_keys() {
        let t = vendor();
        let mut model = model_of(&t);
        apply_action(&mut model, Action::AddTask);
        apply_action(&mut model, Action::AddField(3));
        apply_action(&mut model, Action::MoveTaskUp(3));
        let back = template_of(&model).unwrap_or_else(|d| panic!("{d}"));
        assert_eq!(back.tasks[2].key, "task_1");
        assert_eq!(back.tasks[2].fields[0].key, "field_1");
        apply_action(&mut model, Action::RemoveField(2, 0));
        apply_action(&mut model, Action::RemoveTask(2));
        assert_eq!(template_of(&model).unwrap_or_else(|d| panic!("{d}")), t);
        assert_eq!(Action::parse("remove_field:2:0"), Action::RemoveField(2, 0));
        assert_eq!(Action::parse("nonsense:1"), Action::Save);
    }

    #[test]
    fn condition_values_take_the_fields_type() {
        let t = vendor();
        let model = model_of(&t);
        let pairs = pairs_of(&view(&model, &mut Messages::default()));
        let back = template_of(&apply_post(&model, &Posted::new(&pairs))).unwrap_or_else(|d| panic!("{d}"));
        let Some(attest_template::Condition::Compare { value, .. }) = &back.tasks[1].show_when else {
            panic!("a simple condition")
        };
        assert_eq!(value, &Some(json!(true)));
    }

    #[test]
    fn a_posted_condition_is_read_no_deeper_than_the_validator_allows() {
        let mut path = "tasks[0].show_when".to_string();
        let mut pairs = Vec::new();
        for _ in 0..40 {
            pairs.push((format!("{path}.match"), "all".to_string()));
            path = format!("{path}.all[0]");
        }
        pairs.push((format!("{path}.field"), "x".to_string()));
        let read = condition_from(&Posted::new(&pairs), "tasks[0].show_when", 1);
        assert_eq!(read, None, "the comparison lies beyond the bound, so no group holds anything");
        fn depth(c: &Value) -> usize {
            c.get("all").and_then(Value::as_array).and_then(|a| a.first()).map_or(1, |c| 1 + depth(c))
        }
        pairs.truncate(10);
        pairs.push((
            "tasks[0].show_when.all[0].all[0].all[0].all[0].all[0].all[0].all[0].all[0].all[0].all[0].field".into(),
            "x".into(),
        ));
        let read = condition_from(&Posted::new(&pairs), "tasks[0].show_when", 1).expect("within the bound");
        assert_eq!(depth(&read), 11);
    }

    #[test]
    fn within_respects_index_boundaries() {
        assert!(within("tasks[1].key", "tasks[1]"));
        assert!(within("tasks[1]", "tasks[1]"));
        assert!(!within("tasks[10].key", "tasks[1]"));
        assert!(within("roles[2]", "roles"));
        assert_eq!(input_id("tasks[2].fields[0].key"), "in-tasks-2-fields-0-key");
    }
}

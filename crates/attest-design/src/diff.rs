//! What changed between two versions of a template: a structural diff
//! (tasks, fields and controls matched by their keys, so a renamed label is
//! a change of that field and not a removal and an addition) and a line diff
//! of their YAML for people who read text.

use attest_template::Template;
use serde_json::{Map, Value};

use crate::text::value_text;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Added,
    Removed,
    Changed,
    /// The same items in another order.
    Reordered,
}

impl ChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Added => "added",
            ChangeKind::Removed => "removed",
            ChangeKind::Changed => "changed",
            ChangeKind::Reordered => "reordered",
        }
    }
}

/// One difference, located by task and field where it has them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub kind: ChangeKind,
    /// The task concerned, by key.
    pub task: Option<String>,
    /// The field concerned, by key.
    pub field: Option<String>,
    /// What changed within it, like `assignee`, `due.in` or `controls`;
    /// empty when the task or field itself was added or removed.
    pub what: String,
    /// The value before, written as in a template (absent when added).
    pub before: Option<String>,
    pub after: Option<String>,
}

impl Change {
    /// Where the change is, in words: `task security_review › field risk › required`.
    pub fn location(&self) -> String {
        let mut parts = Vec::new();
        if let Some(t) = &self.task {
            parts.push(format!("task {t}"));
        }
        if let Some(f) = &self.field {
            parts.push(format!("field {f}"));
        }
        if !self.what.is_empty() {
            parts.push(self.what.clone());
        }
        parts.join(" › ")
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateDiff {
    pub changes: Vec<Change>,
    pub lines: LineDiff,
}

impl TemplateDiff {
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }
}

/// Compares two versions of a template.
pub fn diff_templates(old: &Template, new: &Template) -> TemplateDiff {
    let a = serde_json::to_value(old).unwrap_or_default();
    let b = serde_json::to_value(new).unwrap_or_default();
    let mut d = Differ { changes: Vec::new(), task: None, field: None };
    d.top(&a, &b);
    TemplateDiff {
        changes: d.changes,
        lines: line_diff(&attest_template::to_yaml(old), &attest_template::to_yaml(new)),
    }
}

struct Differ {
    changes: Vec<Change>,
    task: Option<String>,
    field: Option<String>,
}

static EMPTY: std::sync::LazyLock<Map<String, Value>> = std::sync::LazyLock::new(Map::new);

impl Differ {
    fn push(&mut self, kind: ChangeKind, what: &str, before: Option<&Value>, after: Option<&Value>) {
        self.changes.push(Change {
            kind,
            task: self.task.clone(),
            field: self.field.clone(),
            what: what.to_string(),
            before: before.map(flow),
            after: after.map(flow),
        });
    }

    fn top(&mut self, a: &Value, b: &Value) {
        let (a, b) = (a.as_object().unwrap_or(&EMPTY), b.as_object().unwrap_or(&EMPTY));
        for key in union_keys(a, b) {
            match key.as_str() {
                "tasks" => self.keyed(&key, a.get(&key), b.get(&key), "key", Level::Task),
                "controls" => self.keyed(&key, a.get(&key), b.get(&key), "id", Level::Control),
                _ => self.value(&key, a.get(&key), b.get(&key)),
            }
        }
    }

    /// A list of items with an identity: each item is matched by it.
    fn keyed(&mut self, name: &str, a: Option<&Value>, b: Option<&Value>, id: &str, level: Level) {
        let empty = Vec::new();
        let list_a = a.and_then(Value::as_array).unwrap_or(&empty);
        let list_b = b.and_then(Value::as_array).unwrap_or(&empty);
        let ident = |v: &Value| v.get(id).map(value_text).unwrap_or_default();
        let ids_a: Vec<String> = list_a.iter().map(ident).collect();
        let ids_b: Vec<String> = list_b.iter().map(ident).collect();
        for (item, key) in list_a.iter().zip(&ids_a) {
            if !ids_b.contains(key) {
                self.enter(level, key);
                let what = if level == Level::Control { format!("control {key}") } else { String::new() };
                self.push(ChangeKind::Removed, &what, Some(&summary(item)), None);
                self.leave(level);
            }
        }
        for (item_b, key) in list_b.iter().zip(&ids_b) {
            self.enter(level, key);
            match ids_a.iter().position(|k| k == key) {
                None => {
                    let what = if level == Level::Control { format!("control {key}") } else { String::new() };
                    self.push(ChangeKind::Added, &what, None, Some(&summary(item_b)));
                }
                Some(at) => {
                    let item_a = &list_a[at];
                    let (oa, ob) = (item_a.as_object().unwrap_or(&EMPTY), item_b.as_object().unwrap_or(&EMPTY));
                    for prop in union_keys(oa, ob) {
                        if level == Level::Task && prop == "fields" {
                            self.keyed("fields", oa.get(&prop), ob.get(&prop), "key", Level::Field);
                        } else if level == Level::Control {
                            self.value(&format!("control {key}: {prop}"), oa.get(&prop), ob.get(&prop));
                        } else {
                            self.value(&prop, oa.get(&prop), ob.get(&prop));
                        }
                    }
                }
            }
            self.leave(level);
        }
        let common_a: Vec<&String> = ids_a.iter().filter(|k| ids_b.contains(k)).collect();
        let common_b: Vec<&String> = ids_b.iter().filter(|k| ids_a.contains(k)).collect();
        if common_a != common_b {
            let order = |ids: &[&String]| Value::String(ids.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "));
            self.push(
                ChangeKind::Reordered,
                &format!("order of {name}"),
                Some(&order(&common_a)),
                Some(&order(&common_b)),
            );
        }
    }

    fn enter(&mut self, level: Level, key: &str) {
        match level {
            Level::Task => self.task = Some(key.to_string()),
            Level::Field => self.field = Some(key.to_string()),
            Level::Control => {}
        }
    }

    fn leave(&mut self, level: Level) {
        match level {
            Level::Task => self.task = None,
            Level::Field => self.field = None,
            Level::Control => {}
        }
    }

    /// Any other value: objects are compared key by key, everything else whole.
    fn value(&mut self, what: &str, a: Option<&Value>, b: Option<&Value>) {
        match (a, b) {
            (Some(x), Some(y)) if x == y => {}
            (None, None) => {}
            (Some(Value::Object(x)), Some(Value::Object(y))) => {
                for key in union_keys(x, y) {
                    self.value(&format!("{what}.{key}"), x.get(&key), y.get(&key));
                }
            }
            (None, Some(y)) => self.push(ChangeKind::Added, what, None, Some(y)),
            (Some(x), None) => self.push(ChangeKind::Removed, what, Some(x), None),
            (Some(x), Some(y)) => self.push(ChangeKind::Changed, what, Some(x), Some(y)),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    Task,
    Field,
    Control,
}

/// The keys of both objects: the first's order, then the second's new ones.
fn union_keys(a: &Map<String, Value>, b: &Map<String, Value>) -> Vec<String> {
    let mut keys: Vec<String> = a.keys().cloned().collect();
    keys.extend(b.keys().filter(|k| !a.contains_key(*k)).cloned());
    keys
}

/// What an added or removed task, field or control is called.
fn summary(item: &Value) -> Value {
    let name = ["name", "label"].iter().find_map(|k| item.get(*k)).map(value_text).unwrap_or_default();
    let kind = item.get("type").map(value_text);
    match kind {
        Some(k) => Value::String(format!("{name} ({k})")),
        None => Value::String(name),
    }
}

/// A value as it is written in a template's YAML flow style:
/// `{ field: risk, op: is, value: high }`.
fn flow(v: &Value) -> String {
    match v {
        Value::Object(m) => {
            let parts: Vec<String> = m.iter().map(|(k, v)| format!("{k}: {}", flow(v))).collect();
            format!("{{ {} }}", parts.join(", "))
        }
        Value::Array(items) => format!("[{}]", items.iter().map(flow).collect::<Vec<_>>().join(", ")),
        other => value_text(other),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineOp {
    Same,
    Added,
    Removed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiffLine {
    pub op: LineOp,
    /// 1-based line number in the old text (absent for added lines).
    pub old_no: Option<usize>,
    pub new_no: Option<usize>,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineDiff {
    pub lines: Vec<DiffLine>,
}

impl LineDiff {
    pub fn added(&self) -> usize {
        self.lines.iter().filter(|l| l.op == LineOp::Added).count()
    }

    pub fn removed(&self) -> usize {
        self.lines.iter().filter(|l| l.op == LineOp::Removed).count()
    }

    /// The changed lines with `context` unchanged lines around each run of
    /// changes; `None` stands for lines left out.
    pub fn with_context(&self, context: usize) -> Vec<Option<&DiffLine>> {
        let n = self.lines.len();
        let mut keep = vec![false; n];
        for (i, l) in self.lines.iter().enumerate() {
            if l.op != LineOp::Same {
                for k in keep.iter_mut().take((i + context + 1).min(n)).skip(i.saturating_sub(context)) {
                    *k = true;
                }
            }
        }
        let mut out = Vec::new();
        let mut skipping = false;
        for (i, l) in self.lines.iter().enumerate() {
            if keep[i] {
                out.push(Some(l));
                skipping = false;
            } else if !skipping {
                out.push(None);
                skipping = true;
            }
        }
        out
    }
}

/// The most table cells the line diff fills; beyond it, the differing middle
/// is shown as removed then added, so a huge rewrite cannot exhaust memory.
const MAX_DIFF_CELLS: usize = 4_000_000;

/// A line diff: the shortest edit that keeps the longest common subsequence
/// of lines, after taking off the common start and end.
pub fn line_diff(old: &str, new: &str) -> LineDiff {
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    let prefix = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let suffix = a[prefix..].iter().rev().zip(b[prefix..].iter().rev()).take_while(|(x, y)| x == y).count();
    let (mid_a, mid_b) = (&a[prefix..a.len() - suffix], &b[prefix..b.len() - suffix]);
    let mut lines = Vec::with_capacity(a.len().max(b.len()));
    let same = |i: usize, j: usize, text: &str| DiffLine {
        op: LineOp::Same,
        old_no: Some(i + 1),
        new_no: Some(j + 1),
        text: text.to_string(),
    };
    for (i, text) in a.iter().enumerate().take(prefix) {
        lines.push(same(i, i, text));
    }
    let removed =
        |i: usize, text: &str| DiffLine { op: LineOp::Removed, old_no: Some(i + 1), new_no: None, text: text.into() };
    let added =
        |j: usize, text: &str| DiffLine { op: LineOp::Added, old_no: None, new_no: Some(j + 1), text: text.into() };
    let (n, m) = (mid_a.len(), mid_b.len());
    if (n + 1).saturating_mul(m + 1) > MAX_DIFF_CELLS {
        lines.extend(mid_a.iter().enumerate().map(|(i, t)| removed(prefix + i, t)));
        lines.extend(mid_b.iter().enumerate().map(|(j, t)| added(prefix + j, t)));
    } else {
        // lcs[i][j]: the longest common subsequence of mid_a[i..] and mid_b[j..].
        let width = m + 1;
        let mut lcs = vec![0u32; (n + 1) * width];
        for i in (0..n).rev() {
            for j in (0..m).rev() {
                lcs[i * width + j] = if mid_a[i] == mid_b[j] {
                    lcs[(i + 1) * width + j + 1] + 1
                } else {
                    lcs[(i + 1) * width + j].max(lcs[i * width + j + 1])
                };
            }
        }
        let (mut i, mut j) = (0, 0);
        while i < n || j < m {
            if i < n && j < m && mid_a[i] == mid_b[j] {
                lines.push(same(prefix + i, prefix + j, mid_a[i]));
                i += 1;
                j += 1;
            } else if i < n && (j == m || lcs[(i + 1) * width + j] >= lcs[i * width + j + 1]) {
                // Removals before additions, as readers of diffs expect.
                lines.push(removed(prefix + i, mid_a[i]));
                i += 1;
            } else {
                lines.push(added(prefix + j, mid_b[j]));
                j += 1;
            }
        }
    }
    for k in 0..suffix {
        let (i, j) = (a.len() - suffix + k, b.len() - suffix + k);
        lines.push(same(i, j, a[i]));
    }
    LineDiff { lines }
}

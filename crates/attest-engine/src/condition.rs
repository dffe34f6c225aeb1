//! Conditional visibility. Conditions only look at fields that come earlier in
//! the template, so one pass in document order decides every task and field.
//! A hidden field counts as having no value, so a stale value behind a hidden
//! field never drives later logic.

use attest_template::{Condition, Op};
use serde_json::Value;

use crate::compiled::CompiledTemplate;
use crate::event::Values;
use crate::value::is_empty;

/// Which tasks and fields are visible for a given set of values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Visibility {
    pub tasks: Vec<bool>,
    /// Every field of the template in document order (see
    /// [`CompiledTemplate::field_position`]).
    fields: Vec<bool>,
    field_offsets: Vec<usize>,
}

impl Visibility {
    /// Visibility under the run's values.
    pub fn compute(template: &CompiledTemplate, values: &Values) -> Self {
        Self::with_lookup(template, &|key| values.get(key))
    }

    /// Visibility under values looked up by key, so a caller can overlay
    /// pending changes without copying the run's values.
    pub fn with_lookup<'v>(template: &CompiledTemplate, lookup: &dyn Fn(&str) -> Option<&'v Value>) -> Self {
        let t = &template.template;
        let mut tasks = Vec::with_capacity(t.tasks.len());
        let mut fields: Vec<bool> = Vec::with_capacity(template.field_count());
        for task in &t.tasks {
            let task_visible = task.show_when.as_ref().is_none_or(|c| holds_in(template, c, &fields, lookup, 0));
            for field in &task.fields {
                let visible =
                    task_visible && field.show_when.as_ref().is_none_or(|c| holds_in(template, c, &fields, lookup, 0));
                fields.push(visible);
            }
            tasks.push(task_visible);
        }
        Visibility { tasks, fields, field_offsets: template.field_offsets().to_vec() }
    }

    /// Whether field `field_index` of task `task_index` is visible.
    pub fn field_at(&self, task_index: usize, field_index: usize) -> bool {
        self.field_offsets
            .get(task_index)
            .and_then(|offset| self.fields.get(offset + field_index))
            .copied()
            .unwrap_or(false)
    }

    pub fn field(&self, template: &CompiledTemplate, key: &str) -> bool {
        template.field_position(key).and_then(|i| self.fields.get(i)).copied().unwrap_or(false)
    }
}

/// A condition during the visibility pass: a field counts only if it comes
/// earlier (already decided) and is visible; otherwise it has no value.
fn holds_in<'v>(
    template: &CompiledTemplate,
    c: &Condition,
    decided: &[bool],
    lookup: &dyn Fn(&str) -> Option<&'v Value>,
    depth: usize,
) -> bool {
    let visible_value = |key: &str| -> Option<&'v Value> {
        let position = template.field_position(key)?;
        if decided.get(position).copied().unwrap_or(false) { lookup(key) } else { None }
    };
    holds(c, &visible_value, depth)
}

/// Deepest nesting evaluated; the validator refuses deeper conditions, and this
/// bound keeps evaluation safe even on unvalidated input.
const MAX_DEPTH: usize = 32;

/// Evaluates a condition against values looked up by field key.
pub fn holds<'v>(c: &Condition, values: &dyn Fn(&str) -> Option<&'v Value>, depth: usize) -> bool {
    if depth > MAX_DEPTH {
        return false;
    }
    match c {
        Condition::All { all } => all.iter().all(|c| holds(c, values, depth + 1)),
        Condition::Any { any } => any.iter().any(|c| holds(c, values, depth + 1)),
        Condition::Not { not } => !holds(not, values, depth + 1),
        Condition::Compare { field, op, value } => {
            let actual = values(field).filter(|v| !is_empty(v));
            compare(actual, *op, value.as_ref())
        }
    }
}

fn compare(actual: Option<&Value>, op: Op, expected: Option<&Value>) -> bool {
    match op {
        Op::HasValue => actual.is_some(),
        Op::HasNoValue => actual.is_none(),
        Op::Is => actual.zip(expected).is_some_and(|(a, e)| equals(a, e)),
        Op::IsNot => !actual.zip(expected).is_some_and(|(a, e)| equals(a, e)),
        Op::Contains => actual.zip(expected).is_some_and(|(a, e)| contains(a, e)),
        Op::Gt | Op::Gte | Op::Lt | Op::Lte => {
            let Some(ord) = actual.zip(expected).and_then(|(a, e)| order(a, e)) else {
                return false;
            };
            match op {
                Op::Gt => ord.is_gt(),
                Op::Gte => ord.is_ge(),
                Op::Lt => ord.is_lt(),
                _ => ord.is_le(),
            }
        }
    }
}

fn equals(actual: &Value, expected: &Value) -> bool {
    match (actual, expected) {
        (Value::Array(items), e) => items.iter().any(|i| equals(i, e)),
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (Value::Number(a), Value::String(b)) => b.parse::<f64>().ok() == a.as_f64(),
        (Value::Bool(a), Value::String(b)) => b.eq_ignore_ascii_case(&a.to_string()),
        (Value::String(a), Value::String(b)) => a == b,
        (a, b) => a == b,
    }
}

fn contains(actual: &Value, expected: &Value) -> bool {
    match actual {
        Value::String(s) => expected.as_str().is_some_and(|e| s.to_lowercase().contains(&e.to_lowercase())),
        Value::Array(items) => items
            .iter()
            .any(|i| i == expected || i.as_object().is_some_and(|row| row.values().any(|cell| cell == expected))),
        _ => false,
    }
}

fn order(actual: &Value, expected: &Value) -> Option<std::cmp::Ordering> {
    if let (Some(a), Some(e)) = (as_number(actual), as_number(expected)) {
        return a.partial_cmp(&e);
    }
    let (a, e) = (actual.as_str()?, expected.as_str()?);
    if let (Ok(a), Ok(e)) = (a.parse::<jiff::civil::Date>(), e.parse::<jiff::civil::Date>()) {
        return Some(a.cmp(&e));
    }
    if let (Ok(a), Ok(e)) = (a.parse::<jiff::Timestamp>(), e.parse::<jiff::Timestamp>()) {
        return Some(a.cmp(&e));
    }
    None
}

fn as_number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

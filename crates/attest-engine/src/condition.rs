//! Conditional visibility. Conditions only look at fields that come earlier in
//! the template, so one pass in document order decides every task and field.
//! A hidden field counts as having no value, so a stale value behind a hidden
//! field never drives later logic.

use std::cmp::Ordering;
use std::sync::Arc;

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
    field_offsets: Arc<[usize]>,
}

impl Visibility {
    /// Visibility under the run's values.
    pub fn compute(template: &CompiledTemplate, values: &Values) -> Self {
        with_inputs(template.input_keys().len(), |inputs| {
            resolve(template, values, inputs);
            Self::from_inputs(template, inputs)
        })
    }

    /// Visibility under the run's values with pending changes over them (a
    /// `null` clears a field), without merging them into a copy.
    pub fn with_pending(template: &CompiledTemplate, values: &Values, pending: &Values) -> Self {
        with_inputs(template.input_keys().len(), |inputs| {
            resolve(template, values, inputs);
            for (key, value) in pending {
                if let Some(input) = template.input_index(key) {
                    inputs[input] = Some(value).filter(|v| !is_empty(v));
                }
            }
            Self::from_inputs(template, inputs)
        })
    }

    /// Visibility with the value of each condition input (see
    /// [`CompiledTemplate::input_keys`]), `None` for no value.
    fn from_inputs(template: &CompiledTemplate, inputs: &[Option<&Value>]) -> Self {
        let t = &template.template;
        let mut tasks = Vec::with_capacity(t.tasks.len());
        let mut fields: Vec<bool> = Vec::with_capacity(template.field_count());
        for (ti, task) in t.tasks.iter().enumerate() {
            let task_visible = template.task_condition(ti).is_none_or(|c| c.holds(&fields, inputs));
            for _ in &task.fields {
                let position = fields.len();
                let visible =
                    task_visible && template.field_condition(position).is_none_or(|c| c.holds(&fields, inputs));
                fields.push(visible);
            }
            tasks.push(task_visible);
        }
        Visibility { tasks, fields, field_offsets: template.shared_field_offsets() }
    }

    /// Whether field `field_index` of task `task_index` is visible.
    pub fn field_at(&self, task_index: usize, field_index: usize) -> bool {
        self.field_offsets
            .get(task_index)
            .and_then(|offset| self.fields.get(offset + field_index))
            .copied()
            .unwrap_or(false)
    }

    /// Whether the task and each of its fields are visible alike in both.
    pub(crate) fn same_for_task(&self, other: &Visibility, task_index: usize) -> bool {
        self.tasks.get(task_index) == other.tasks.get(task_index)
            && self.task_fields(task_index) == other.task_fields(task_index)
    }

    fn task_fields(&self, task_index: usize) -> Option<&[bool]> {
        let start = self.field_offsets.get(task_index).copied().unwrap_or(self.fields.len());
        let end = self.field_offsets.get(task_index + 1).copied().unwrap_or(self.fields.len());
        self.fields.get(start..end)
    }

    pub fn field(&self, template: &CompiledTemplate, key: &str) -> bool {
        template.field_position(key).and_then(|i| self.fields.get(i)).copied().unwrap_or(false)
    }
}

/// How many values per condition input [`resolve`] still walks rather than
/// searching for each input.
const MERGE_VALUES_PER_INPUT: usize = 12;

/// Most condition inputs whose values are held on the stack while visibility
/// is decided; more take an allocation.
const INPUTS_ON_STACK: usize = 16;

/// Places the value of each condition input (see
/// [`CompiledTemplate::input_keys`]) in its slot of `inputs`, leaving `None`
/// for no value.
fn resolve<'v>(template: &CompiledTemplate, values: &'v Values, inputs: &mut [Option<&'v Value>]) {
    let keys = template.input_keys();
    // Walking the values in key order beside the sorted inputs compares fewer
    // keys than a search per input, unless the inputs are few among many values.
    if values.len() > MERGE_VALUES_PER_INPUT * keys.len() {
        for (slot, key) in inputs.iter_mut().zip(keys) {
            *slot = values.get(key).filter(|v| !is_empty(v));
        }
        return;
    }
    let mut wanted = template.sorted_inputs().iter().copied().peekable();
    for (key, value) in values {
        while let Some(&input) = wanted.peek() {
            match key_order(&keys[input], key) {
                Ordering::Greater => break,
                Ordering::Equal => inputs[input] = Some(value).filter(|v| !is_empty(v)),
                Ordering::Less => {}
            }
            wanted.next();
        }
        if wanted.peek().is_none() {
            break;
        }
    }
}

/// Calls `f` with a slot per condition input, each `None` at first.
fn with_inputs<'v, R>(count: usize, f: impl FnOnce(&mut [Option<&'v Value>]) -> R) -> R {
    if count <= INPUTS_ON_STACK { f(&mut [None; INPUTS_ON_STACK][..count]) } else { f(&mut vec![None; count]) }
}

/// The order of keys as strings, deciding on the first byte without a call
/// when it differs, as it mostly does among field keys.
pub(crate) fn key_order(a: &str, b: &str) -> Ordering {
    match (a.as_bytes().first(), b.as_bytes().first()) {
        (Some(x), Some(y)) if x != y => x.cmp(y),
        _ => a.cmp(b),
    }
}

/// Deepest nesting evaluated; the validator refuses deeper conditions, and this
/// bound keeps evaluation safe even on unvalidated input.
const MAX_DEPTH: usize = 32;

/// A `show_when` condition with each field resolved to its position, so that
/// evaluating it looks up nothing but the values themselves.
#[derive(Debug, Clone)]
pub(crate) enum Cond {
    /// A node nested deeper than [`MAX_DEPTH`], which never holds.
    TooDeep,
    All(Vec<Cond>),
    Any(Vec<Cond>),
    Not(Box<Cond>),
    Compare {
        /// The field's index among the template's condition inputs.
        input: usize,
        position: Option<usize>,
        op: Op,
        value: Option<Value>,
    },
}

impl Cond {
    /// Resolves a condition: `position` places a field key, `input` gives the
    /// index of a field the condition reads among all condition inputs.
    pub(crate) fn new(
        c: &Condition,
        position: &dyn Fn(&str) -> Option<usize>,
        input: &mut dyn FnMut(&str) -> usize,
    ) -> Self {
        Self::at_depth(c, position, input, 0)
    }

    fn at_depth(
        c: &Condition,
        position: &dyn Fn(&str) -> Option<usize>,
        input: &mut dyn FnMut(&str) -> usize,
        depth: usize,
    ) -> Self {
        if depth > MAX_DEPTH {
            return Cond::TooDeep;
        }
        let mut all = |cs: &[Condition]| cs.iter().map(|c| Self::at_depth(c, position, input, depth + 1)).collect();
        match c {
            Condition::All { all: cs } => Cond::All(all(cs)),
            Condition::Any { any: cs } => Cond::Any(all(cs)),
            Condition::Not { not } => Cond::Not(Box::new(Self::at_depth(not, position, input, depth + 1))),
            Condition::Compare { field, op, value } => {
                Cond::Compare { input: input(field), position: position(field), op: *op, value: value.clone() }
            }
        }
    }

    /// Whether the condition holds during the visibility pass: a field counts
    /// only if it comes earlier (already decided) and is visible; otherwise it
    /// has no value.
    fn holds(&self, decided: &[bool], inputs: &[Option<&Value>]) -> bool {
        match self {
            Cond::TooDeep => false,
            Cond::All(cs) => cs.iter().all(|c| c.holds(decided, inputs)),
            Cond::Any(cs) => cs.iter().any(|c| c.holds(decided, inputs)),
            Cond::Not(c) => !c.holds(decided, inputs),
            Cond::Compare { input, position, op, value } => {
                let decided_visible = position.is_some_and(|p| decided.get(p).copied().unwrap_or(false));
                let actual = if decided_visible { inputs.get(*input).copied().flatten() } else { None };
                compare(actual, *op, value.as_ref())
            }
        }
    }

    /// Whether the condition holds with every field it reads counting with its
    /// value in `values`, as in a pass where each of them is visible.
    fn holds_on(&self, keys: &[String], values: &Values) -> bool {
        match self {
            Cond::TooDeep => false,
            Cond::All(cs) => cs.iter().all(|c| c.holds_on(keys, values)),
            Cond::Any(cs) => cs.iter().any(|c| c.holds_on(keys, values)),
            Cond::Not(c) => !c.holds_on(keys, values),
            Cond::Compare { input, op, value, .. } => {
                let actual = keys.get(*input).and_then(|k| values.get(k)).filter(|v| !is_empty(v));
                compare(actual, *op, value.as_ref())
            }
        }
    }

    /// Whether every field the condition reads is at one of the `positions`
    /// (and so has a position).
    pub(crate) fn reads_only(&self, positions: &impl Fn(usize) -> bool) -> bool {
        !self.reads_any(&|_, position| !position.is_some_and(positions))
    }

    /// Whether the condition reads a field that `read` picks by its input
    /// index and position.
    pub(crate) fn reads_any(&self, read: &impl Fn(usize, Option<usize>) -> bool) -> bool {
        match self {
            Cond::TooDeep => false,
            Cond::All(cs) | Cond::Any(cs) => cs.iter().any(|c| c.reads_any(read)),
            Cond::Not(c) => c.reads_any(read),
            Cond::Compare { input, position, .. } => read(*input, *position),
        }
    }
}

/// Whether task `task_index` is visible, decided from the run's values alone
/// without a visibility pass; only for a task whose condition reads fields
/// that are always visible and come earlier (see
/// [`CompiledTemplate::condition_reads_fixed`]), which a pass would count with
/// their values as they are.
pub(crate) fn fixed_task_visible(template: &CompiledTemplate, values: &Values, task_index: usize) -> bool {
    template.task_condition(task_index).is_none_or(|c| c.holds_on(template.input_keys(), values))
}

/// Which fields of task `task_index` are visible, by index on the task, given
/// whether the task is; decided from the run's values alone without a
/// visibility pass. Only for a task whose fields' conditions read fields that
/// are always visible and come earlier (see
/// [`CompiledTemplate::fields_read_fixed`]), which a pass would count with
/// their values as they are.
pub(crate) fn fixed_fields_visible(
    template: &CompiledTemplate,
    values: &Values,
    task_index: usize,
    task_visible: bool,
) -> u64 {
    let Some(&offset) = template.field_offsets().get(task_index).filter(|_| task_visible) else {
        return 0;
    };
    let count = template.template.tasks.get(task_index).map_or(0, |t| t.fields.len().min(64));
    (0..count)
        .filter(|fi| template.field_condition(offset + fi).is_none_or(|c| c.holds_on(template.input_keys(), values)))
        .fold(0, |visible, fi| visible | 1 << fi)
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
        (Value::Bool(a), Value::String(b)) => b.eq_ignore_ascii_case(if *a { "true" } else { "false" }),
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

fn order(actual: &Value, expected: &Value) -> Option<Ordering> {
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn example() -> CompiledTemplate {
        let source = include_str!("../../../examples/employee-onboarding.yaml");
        let t = attest_template::parse(source, attest_template::SourceFormat::Yaml, None).expect("example parses");
        CompiledTemplate::new(t, 1, "sha256:test".into()).expect("example compiles")
    }

    fn values(v: &Value) -> Values {
        v.as_object().expect("an object").iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }

    #[test]
    fn a_value_shows_or_hides_only_the_tasks_it_is_said_to() {
        let template = example();
        let runs = [
            json!({"employment_type": "full_time", "equipment": ["laptop"], "remote": true, "check_result": "consider"}),
            json!({"employment_type": "contractor", "equipment": [], "privileged_access": true}),
        ];
        let changes =
            [json!(null), json!("consider"), json!("contractor"), json!(true), json!(["laptop"]), json!(["admins"])];
        for run in &runs {
            let before = Visibility::compute(&template, &values(run));
            for key in template.input_keys() {
                for change in &changes {
                    let mut changed = values(run);
                    changed.insert(key.clone(), change.clone());
                    let after = Visibility::compute(&template, &changed);
                    for ti in 0..template.template.tasks.len() {
                        if !before.same_for_task(&after, ti) {
                            let position = template.field_position(key).expect("an input is a field");
                            assert!(
                                template.shown_or_hidden_by(position).contains(&ti),
                                "{key} = {change} changes task {ti}"
                            );
                        }
                    }
                }
            }
        }
        let full_name = template.field_position("full_name").expect("a field");
        assert_eq!(template.shown_or_hidden_by(full_name), &[] as &[usize]);
    }

    #[test]
    fn a_condition_on_always_visible_fields_decides_as_the_pass_does() {
        let template = example();
        let fixed: Vec<usize> =
            (0..template.template.tasks.len()).filter(|&ti| template.condition_reads_fixed(ti)).collect();
        assert!(fixed.len() >= 3, "the example has tasks whose conditions read always visible fields");
        let variants = [
            json!({}),
            json!({"employment_type": "contractor", "equipment": []}),
            json!({"employment_type": "full_time", "privileged_access": true, "equipment": ["monitor"]}),
            json!({"employment_type": "part_time", "groups": ["admins"], "equipment": ["laptop"], "remote": true}),
            json!({"privileged_access": false, "groups": [], "equipment": null}),
        ];
        let fields_fixed: Vec<usize> =
            (0..template.template.tasks.len()).filter(|&ti| template.fields_read_fixed(ti)).collect();
        let equipment = template.task_index("equipment_shipping").expect("a task");
        assert!(fields_fixed.contains(&equipment), "its fields read the request's, which always show");
        for v in variants {
            let values = values(&v);
            let pass = Visibility::compute(&template, &values);
            for &ti in &fixed {
                assert_eq!(fixed_task_visible(&template, &values, ti), pass.tasks[ti], "task {ti} with {v}");
            }
            for &ti in &fields_fixed {
                let visible = fixed_fields_visible(&template, &values, ti, pass.tasks[ti]);
                for fi in 0..template.template.tasks[ti].fields.len() {
                    assert_eq!(visible & 1 << fi != 0, pass.field_at(ti, fi), "task {ti} field {fi} with {v}");
                }
            }
        }
    }
}

//! A template version prepared for execution: patterns compiled, conditions
//! resolved to field positions and keys indexed once, not per command.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use attest_template::{DateBase, FieldKind, TaskType, Template};
use regex::Regex;

use crate::condition::Cond;
use crate::event::Values;

/// A published template version as the engine runs it.
#[derive(Debug, Clone)]
pub struct CompiledTemplate {
    pub template: Arc<Template>,
    pub version: u32,
    pub content_hash: String,
    patterns: KeyMap<Regex>,
    task_index: KeyMap<usize>,
    /// Each task's key, shared with the task states of every run.
    task_keys: Vec<Arc<str>>,
    /// Position of each field among all fields of the template, in document order.
    field_positions: KeyMap<usize>,
    /// Position of each task's first field among all fields.
    field_offsets: Arc<[usize]>,
    field_count: usize,
    /// For each field position, the position of the first field with its key,
    /// which is where [`Self::field_position`] places that key's value.
    key_positions: Vec<usize>,
    /// Each task's `show_when`, by task index.
    task_conditions: Vec<Option<Cond>>,
    /// Each field's `show_when`, by field position.
    field_conditions: Vec<Option<Cond>>,
    /// For each task, whether none of its fields has a condition of its own,
    /// so that they show whenever the task does.
    fields_unconditional: Vec<bool>,
    /// For each task, whether its condition reads only earlier fields that are
    /// always visible, so that the run's values decide it without a pass.
    condition_reads_fixed: Vec<bool>,
    /// For each task of at most 64 fields, whether its condition (if any) and
    /// each of its fields' read only earlier fields that are always visible,
    /// so that the run's values decide which of its fields show without a pass.
    fields_read_fixed: Vec<bool>,
    /// For each task, whether some condition reads one of its fields.
    has_condition_inputs: Vec<bool>,
    /// For each condition input, the tasks whose visibility or whose fields'
    /// visibility its value can change, directly or through the fields it shows
    /// or hides.
    shown_or_hidden_by: Vec<Vec<usize>>,
    /// Each task's `approves`, as task indices (`None` for a key not in the template).
    approves: Vec<Vec<Option<usize>>>,
    /// The indices of the approval tasks, in order.
    approval_tasks: Vec<usize>,
    /// The fields some condition reads (only their values decide visibility),
    /// each with its index in `input_keys`.
    condition_inputs: KeyMap<usize>,
    /// The keys of the condition inputs, in the order conditions first read them.
    input_keys: Vec<String>,
    /// The condition inputs' indices, ordered by their keys.
    sorted_inputs: Vec<usize>,
    /// For each field position, the tasks whose requirement check reads the
    /// value of its key: the tasks with a field of that key, and those with a
    /// date bound on it. Kept by position, as deciding a change knows where
    /// each value's field is and so looks up no key.
    requirement_readers: Vec<Vec<usize>>,
    /// For each field position, the index of its key among the condition
    /// inputs, if some condition reads it.
    position_inputs: Vec<Option<usize>>,
    /// The values a run starts with: each field's default, a later field's
    /// over an earlier one's of the same key.
    defaults: Values,
}

/// Maps keyed by the template's own keys. The keys in a map come from the
/// template, so a hostile lookup key cannot crowd a bucket and an unkeyed
/// hash is safe; it is much cheaper than SipHash on short keys.
type KeyMap<V> = HashMap<String, V, BuildHasherDefault<KeyHasher>>;

/// The FxHash mixing step, a word at a time.
#[derive(Debug, Default)]
struct KeyHasher(u64);

impl KeyHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl Hasher for KeyHasher {
    fn write(&mut self, mut bytes: &[u8]) {
        while let Some((word, rest)) = bytes.split_first_chunk::<8>() {
            self.add(u64::from_le_bytes(*word));
            bytes = rest;
        }
        if !bytes.is_empty() {
            self.add(bytes.iter().fold(0, |word, &b| word << 8 | u64::from(b)));
        }
    }

    fn write_u8(&mut self, byte: u8) {
        self.add(u64::from(byte));
    }

    fn finish(&self) -> u64 {
        // The multiply leaves the low bits weak; hashbrown picks buckets with them.
        self.0.rotate_left(26)
    }
}

/// Most tasks whose keys [`CompiledTemplate::task_index`] compares one by one
/// rather than looking the key up in its map.
const TASKS_COMPARED: usize = 16;

/// Bound on a compiled pattern's size, so that a hostile pattern cannot make
/// the engine allocate without limit.
const PATTERN_SIZE_LIMIT_BYTES: usize = 1 << 20;

impl CompiledTemplate {
    /// Prepares a validated template. Fails only on a pattern the validator
    /// should already have refused.
    pub fn new(template: Template, version: u32, content_hash: String) -> Result<Self, String> {
        let mut patterns = KeyMap::default();
        for (_, field) in template.fields() {
            if let FieldKind::Text(rules) | FieldKind::Textarea(rules) = &field.kind
                && let Some(p) = &rules.pattern
            {
                let re = regex::RegexBuilder::new(&format!("^(?:{p})$"))
                    .size_limit(PATTERN_SIZE_LIMIT_BYTES)
                    .build()
                    .map_err(|e| format!("field '{}': pattern does not compile: {e}", field.key))?;
                patterns.insert(field.key.clone(), re);
            }
        }
        let mut task_index = KeyMap::default();
        for (i, t) in template.tasks.iter().enumerate() {
            // The last definition wins, as when collecting into a map.
            task_index.insert(t.key.clone(), i);
        }
        let task_keys = template.tasks.iter().map(|t| Arc::from(t.key.as_str())).collect();
        let mut field_positions = KeyMap::default();
        let mut field_offsets = Vec::with_capacity(template.tasks.len());
        let mut field_count = 0;
        for task in &template.tasks {
            field_offsets.push(field_count);
            for field in &task.fields {
                // The first definition wins, as in `Template::field`.
                field_positions.entry(field.key.clone()).or_insert(field_count);
                field_count += 1;
            }
        }
        let position = |key: &str| field_positions.get(key).copied();
        let key_positions = template.fields().filter_map(|(_, f)| position(&f.key)).collect();
        let mut condition_inputs: KeyMap<usize> = KeyMap::default();
        let mut input_keys: Vec<String> = Vec::new();
        let mut input = |key: &str| {
            *condition_inputs.entry(key.to_string()).or_insert_with(|| {
                input_keys.push(key.to_string());
                input_keys.len() - 1
            })
        };
        let task_conditions: Vec<_> =
            template.tasks.iter().map(|t| t.show_when.as_ref().map(|c| Cond::new(c, &position, &mut input))).collect();
        let field_conditions: Vec<_> =
            template.fields().map(|(_, f)| f.show_when.as_ref().map(|c| Cond::new(c, &position, &mut input))).collect();
        let fields_unconditional = template
            .tasks
            .iter()
            .enumerate()
            .map(|(ti, t)| (0..t.fields.len()).all(|fi| field_conditions[field_offsets[ti] + fi].is_none()))
            .collect();
        let mut always_visible = Vec::with_capacity(field_count);
        for (ti, task) in template.tasks.iter().enumerate() {
            for fi in 0..task.fields.len() {
                always_visible
                    .push(task_conditions[ti].is_none() && field_conditions[field_offsets[ti] + fi].is_none());
            }
        }
        let condition_reads_fixed = task_conditions
            .iter()
            .enumerate()
            .map(|(ti, c)| {
                c.as_ref().is_some_and(|c| {
                    c.reads_only(&|p| p < field_offsets[ti] && always_visible.get(p).copied().unwrap_or(false))
                })
            })
            .collect();
        // Whether the field at `p` comes before `position` and always shows.
        let fixed_before = |position: usize, p: usize| p < position && always_visible.get(p).copied().unwrap_or(false);
        let fields_read_fixed = template
            .tasks
            .iter()
            .enumerate()
            .map(|(ti, t)| {
                let offset = field_offsets[ti];
                t.fields.len() <= 64
                    && task_conditions[ti].as_ref().is_none_or(|c| c.reads_only(&|p| fixed_before(offset, p)))
                    && (offset..offset + t.fields.len()).all(|position| {
                        field_conditions[position].as_ref().is_none_or(|c| c.reads_only(&|p| fixed_before(position, p)))
                    })
            })
            .collect();
        // Conditions read only earlier fields, so one pass in document order
        // finds every field a value shows or hides through others.
        let shown_or_hidden_by = (0..input_keys.len())
            .map(|input| {
                let mut affected = vec![false; field_count];
                let mut tasks = Vec::new();
                for (ti, task) in template.tasks.iter().enumerate() {
                    let reads = |c: &Option<Cond>, affected: &[bool]| {
                        c.as_ref().is_some_and(|c| {
                            c.reads_any(&|i, p| {
                                i == input || p.is_some_and(|p| affected.get(p).copied().unwrap_or(false))
                            })
                        })
                    };
                    let task_affected = reads(&task_conditions[ti], &affected);
                    let mut any = task_affected;
                    for fi in 0..task.fields.len() {
                        let p = field_offsets[ti] + fi;
                        if task_affected || reads(&field_conditions[p], &affected) {
                            affected[p] = true;
                            any = true;
                        }
                    }
                    if any {
                        tasks.push(ti);
                    }
                }
                tasks
            })
            .collect();
        let has_condition_inputs =
            template.tasks.iter().map(|t| t.fields.iter().any(|f| condition_inputs.contains_key(&f.key))).collect();
        let mut sorted_inputs: Vec<usize> = (0..input_keys.len()).collect();
        sorted_inputs.sort_by(|a, b| input_keys[*a].cmp(&input_keys[*b]));
        let approves =
            template.tasks.iter().map(|t| t.approves.iter().map(|s| task_index.get(s).copied()).collect()).collect();
        let approval_tasks = template
            .tasks
            .iter()
            .enumerate()
            .filter(|(_, t)| t.task_type == TaskType::Approval)
            .map(|(i, _)| i)
            .collect();
        let mut readers_by_key: KeyMap<Vec<usize>> = KeyMap::default();
        for (ti, task) in template.tasks.iter().enumerate() {
            for field in &task.fields {
                let mut read = |key: &str| {
                    let readers = readers_by_key.entry(key.to_string()).or_default();
                    if readers.last() != Some(&ti) {
                        readers.push(ti);
                    }
                };
                read(&field.key);
                if let FieldKind::Date(rules) | FieldKind::Datetime(rules) = &field.kind {
                    for bound in [&rules.not_before, &rules.not_after].into_iter().flatten() {
                        if let DateBase::Field(key) = &bound.base {
                            read(key);
                        }
                    }
                }
            }
        }
        let requirement_readers =
            template.fields().map(|(_, f)| readers_by_key.get(&f.key).cloned().unwrap_or_default()).collect();
        let position_inputs = template.fields().map(|(_, f)| condition_inputs.get(&f.key).copied()).collect();
        let mut defaults = Values::new();
        for (_, field) in template.fields() {
            if let Some(default) = &field.default {
                defaults.insert(field.key.clone(), default.clone());
            }
        }
        Ok(CompiledTemplate {
            template: Arc::new(template),
            version,
            content_hash,
            patterns,
            task_index,
            task_keys,
            field_positions,
            field_offsets: field_offsets.into(),
            field_count,
            key_positions,
            task_conditions,
            field_conditions,
            fields_unconditional,
            condition_reads_fixed,
            fields_read_fixed,
            has_condition_inputs,
            shown_or_hidden_by,
            approves,
            approval_tasks,
            condition_inputs,
            input_keys,
            sorted_inputs,
            requirement_readers,
            position_inputs,
            defaults,
        })
    }

    pub fn task_index(&self, key: &str) -> Option<usize> {
        // A few keys are compared faster than one is hashed; the last with the
        // key wins, as in the map.
        if self.task_keys.len() <= TASKS_COMPARED {
            return self.task_keys.iter().rposition(|k| **k == *key);
        }
        self.task_index.get(key).copied()
    }

    /// Each task's key, by task index.
    pub(crate) fn task_keys(&self) -> &[Arc<str>] {
        &self.task_keys
    }

    pub fn field_position(&self, key: &str) -> Option<usize> {
        self.field_positions.get(key).copied()
    }

    pub fn field_offsets(&self) -> &[usize] {
        &self.field_offsets
    }

    pub(crate) fn shared_field_offsets(&self) -> Arc<[usize]> {
        self.field_offsets.clone()
    }

    pub fn field_count(&self) -> usize {
        self.field_count
    }

    pub fn pattern(&self, field: &str) -> Option<&Regex> {
        self.patterns.get(field)
    }

    /// Where [`Self::field_position`] places the key of field `field_index` of
    /// task `task_index`.
    pub(crate) fn key_position(&self, task_index: usize, field_index: usize) -> usize {
        self.key_positions[self.field_offsets[task_index] + field_index]
    }

    pub(crate) fn task_condition(&self, task_index: usize) -> Option<&Cond> {
        self.task_conditions.get(task_index).and_then(Option::as_ref)
    }

    pub(crate) fn field_condition(&self, position: usize) -> Option<&Cond> {
        self.field_conditions.get(position).and_then(Option::as_ref)
    }

    /// Whether none of the task's fields has a condition of its own.
    pub(crate) fn fields_unconditional(&self, task_index: usize) -> bool {
        self.fields_unconditional.get(task_index).copied().unwrap_or(false)
    }

    /// Whether the task has a condition that reads only earlier fields that
    /// are always visible (see [`crate::condition::fixed_task_visible`]).
    pub(crate) fn condition_reads_fixed(&self, task_index: usize) -> bool {
        self.condition_reads_fixed.get(task_index).copied().unwrap_or(false)
    }

    /// Whether the run's values decide which of the task's fields show (see
    /// [`crate::condition::fixed_fields_visible`]).
    pub(crate) fn fields_read_fixed(&self, task_index: usize) -> bool {
        self.fields_read_fixed.get(task_index).copied().unwrap_or(false)
    }

    /// Whether some condition reads one of the task's fields.
    pub(crate) fn has_condition_inputs(&self, task_index: usize) -> bool {
        self.has_condition_inputs.get(task_index).copied().unwrap_or(true)
    }

    /// The tasks whose visibility or whose fields' visibility a change of the
    /// value of the field at `position` can change; none for a field no
    /// condition reads.
    pub(crate) fn shown_or_hidden_by(&self, position: usize) -> &[usize] {
        self.input_at(position).and_then(|i| self.shown_or_hidden_by.get(i)).map_or(&[], Vec::as_slice)
    }

    /// The index among [`Self::input_keys`] of the key of the field at
    /// `position`, if some condition reads it.
    pub(crate) fn input_at(&self, position: usize) -> Option<usize> {
        self.position_inputs.get(position).copied().flatten()
    }

    /// Whether some condition reads the field's value.
    pub(crate) fn is_condition_input(&self, key: &str) -> bool {
        self.condition_inputs.contains_key(key)
    }

    /// The field's index among [`Self::input_keys`], if some condition reads it.
    pub(crate) fn input_index(&self, key: &str) -> Option<usize> {
        self.condition_inputs.get(key).copied()
    }

    /// The keys of the fields conditions read; a condition names each by its
    /// index here.
    pub(crate) fn input_keys(&self) -> &[String] {
        &self.input_keys
    }

    /// The indices of [`Self::input_keys`], ordered by key.
    pub(crate) fn sorted_inputs(&self) -> &[usize] {
        &self.sorted_inputs
    }

    /// The tasks whose requirement check reads the value of the field at `position`.
    pub(crate) fn requirement_readers(&self, position: usize) -> &[usize] {
        self.requirement_readers.get(position).map_or(&[], Vec::as_slice)
    }

    /// The values a run starts with, from its fields' defaults.
    pub(crate) fn defaults(&self) -> &Values {
        &self.defaults
    }

    /// The indices of the approval tasks, in order.
    pub(crate) fn approval_tasks(&self) -> &[usize] {
        &self.approval_tasks
    }

    /// The task indices an approval signs off, in the order of its `approves`.
    pub(crate) fn approves(&self, task_index: usize) -> &[Option<usize>] {
        self.approves.get(task_index).map_or(&[], Vec::as_slice)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_task_key_compared_one_by_one_is_found_where_the_map_finds_it() {
        let source = include_str!("../../../examples/employee-onboarding.yaml");
        let t = attest_template::parse(source, attest_template::SourceFormat::Yaml, None).expect("example parses");
        let compiled = CompiledTemplate::new(t, 1, "sha256:test".into()).expect("example compiles");
        assert!(compiled.task_keys.len() <= TASKS_COMPARED, "the example's keys are compared");
        let keys = compiled.task_keys.iter().map(|k| k.to_string()).chain(["nope".into(), String::new()]);
        for key in keys {
            assert_eq!(compiled.task_index(&key), compiled.task_index.get(key.as_str()).copied(), "{key}");
        }
    }
}

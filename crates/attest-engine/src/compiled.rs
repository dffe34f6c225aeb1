//! A template version prepared for execution: patterns compiled once, not per
//! command.

use std::collections::HashMap;
use std::sync::Arc;

use attest_template::{FieldKind, Template};
use regex::Regex;

/// A published template version as the engine runs it.
#[derive(Debug, Clone)]
pub struct CompiledTemplate {
    pub template: Arc<Template>,
    pub version: u32,
    pub content_hash: String,
    patterns: HashMap<String, Regex>,
    task_index: HashMap<String, usize>,
    /// Position of each field among all fields of the template, in document order.
    field_positions: HashMap<String, usize>,
    /// Position of each task's first field among all fields.
    field_offsets: Vec<usize>,
    field_count: usize,
}

/// Bound on a compiled pattern's size, so that a hostile pattern cannot make
/// the engine allocate without limit.
const PATTERN_SIZE_LIMIT_BYTES: usize = 1 << 20;

impl CompiledTemplate {
    /// Prepares a validated template. Fails only on a pattern the validator
    /// should already have refused.
    pub fn new(template: Template, version: u32, content_hash: String) -> Result<Self, String> {
        let mut patterns = HashMap::new();
        for (_, field) in template.fields() {
            if let FieldKind::Text(rules) | FieldKind::Textarea(rules) = &field.kind {
                if let Some(p) = &rules.pattern {
                    let re = regex::RegexBuilder::new(&format!("^(?:{p})$"))
                        .size_limit(PATTERN_SIZE_LIMIT_BYTES)
                        .build()
                        .map_err(|e| format!("field '{}': pattern does not compile: {e}", field.key))?;
                    patterns.insert(field.key.clone(), re);
                }
            }
        }
        let task_index = template.tasks.iter().enumerate().map(|(i, t)| (t.key.clone(), i)).collect();
        let mut field_positions = HashMap::new();
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
        Ok(CompiledTemplate {
            template: Arc::new(template),
            version,
            content_hash,
            patterns,
            task_index,
            field_positions,
            field_offsets,
            field_count,
        })
    }

    pub fn task_index(&self, key: &str) -> Option<usize> {
        self.task_index.get(key).copied()
    }

    pub fn field_position(&self, key: &str) -> Option<usize> {
        self.field_positions.get(key).copied()
    }

    pub fn field_offsets(&self) -> &[usize] {
        &self.field_offsets
    }

    pub fn field_count(&self) -> usize {
        self.field_count
    }

    pub fn pattern(&self, field: &str) -> Option<&Regex> {
        self.patterns.get(field)
    }
}

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
        Ok(CompiledTemplate { template: Arc::new(template), version, content_hash, patterns })
    }

    pub fn pattern(&self, field: &str) -> Option<&Regex> {
        self.patterns.get(field)
    }
}

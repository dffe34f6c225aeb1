//! What the store's integration tests share: a one-task template whose
//! commits are about the ledger and the rows, not the workflow.
#![allow(clippy::unwrap_used)]

use attest_engine::CompiledTemplate;

const TEMPLATE: &str = r#"{"format": "attest/v1", "key": "t", "name": "T", "roles": ["ops"], "tasks": [
  {"key": "check", "name": "Check", "assignee": "role:ops"}
]}"#;

/// The template with one task, `check`, assigned to role `ops`.
pub fn compiled() -> CompiledTemplate {
    let template = attest_template::parse(TEMPLATE, attest_template::SourceFormat::Json, None).unwrap();
    let hash = attest_template::content_hash(&template);
    CompiledTemplate::new(template, 1, hash).unwrap()
}

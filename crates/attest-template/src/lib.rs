//! Workflow templates: the `attest/v1` model, its parser and its validator.
//!
//! This crate knows the file format and nothing about runs, storage or HTTP.
//! [`parse`] reads YAML or JSON into a [`Template`] and runs every check;
//! [`validate`] runs the same checks on a template built in code.

mod de;
mod diagnostic;
pub mod limits;
pub mod model;
mod source;
mod validate;

use std::path::Path;

use sha2::{Digest, Sha256};

pub use diagnostic::Diagnostic;
pub use model::*;

/// Sources larger than this are refused before any parsing.
pub const MAX_TEMPLATE_BYTES: usize = 1 << 20;

/// How much source text, in total, locating semantic errors may re-read.
/// Each location re-parses the source once, so a huge file with many errors
/// gets positions only for its first few.
const LOCATE_BUDGET_BYTES: usize = 16 << 20;

/// The syntax a template source is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceFormat {
    Yaml,
    Json,
}

impl SourceFormat {
    /// Picks the format by extension: `.json` is JSON, anything else
    /// (`.yaml`, `.yml`, none) is YAML.
    pub fn from_path(path: &Path) -> SourceFormat {
        match path.extension().and_then(|e| e.to_str()) {
            Some(ext) if ext.eq_ignore_ascii_case("json") => SourceFormat::Json,
            _ => SourceFormat::Yaml,
        }
    }
}

/// Parses and fully validates a template.
///
/// A syntax or shape error (wrong type, unknown or repeated key) stops at the
/// first one; semantic errors are all collected, in document order. Every
/// diagnostic carries `file_name` and, where the source allows, its line and
/// column.
pub fn parse(source: &str, format: SourceFormat, file_name: Option<&str>) -> Result<Template, Vec<Diagnostic>> {
    let with_file = |mut d: Diagnostic| {
        d.file = file_name.map(str::to_owned);
        d
    };
    if source.len() > MAX_TEMPLATE_BYTES {
        return Err(vec![with_file(Diagnostic::new(
            "",
            format!(
                "the template is {} bytes; templates may be at most {MAX_TEMPLATE_BYTES} bytes (1 MiB)",
                source.len()
            ),
        ))]);
    }
    // Editors on some systems start files with a byte order mark.
    let source = source.strip_prefix('\u{feff}').unwrap_or(source);
    if source.trim().is_empty() {
        return Err(vec![with_file(Diagnostic::new(
            "",
            "the template is empty; it needs at least `format`, `key`, `name` and `tasks`",
        ))]);
    }
    let template = source::read(source, format).map_err(|d| vec![with_file(d)])?;
    let mut diags = validate::check(&template);
    if diags.is_empty() {
        return Ok(template);
    }
    let located = LOCATE_BUDGET_BYTES / source.len().max(1);
    for d in diags.iter_mut().take(located) {
        if let Some((line, column)) = source::locate(source, format, &d.path) {
            d.line = Some(line);
            d.column = Some(column);
        }
    }
    // Checks run in model order; where every problem has a position, the
    // order they are written in is the one a reader follows.
    if diags.iter().all(|d| d.line.is_some()) {
        diags.sort_by_key(|d| (d.line, d.column));
    }
    Err(diags.into_iter().map(with_file).collect())
}

/// Reads a template's shape (syntax, types, known keys) without the semantic
/// checks, for drafts that may be saved before they are valid. The error is
/// the first shape problem, with its path, line and column.
pub fn read_shape(source: &str, format: SourceFormat) -> Result<Template, Diagnostic> {
    if source.len() > MAX_TEMPLATE_BYTES {
        return Err(Diagnostic::new(
            "",
            format!(
                "the template is {} bytes; templates may be at most {MAX_TEMPLATE_BYTES} bytes (1 MiB)",
                source.len()
            ),
        ));
    }
    let source = source.strip_prefix('\u{feff}').unwrap_or(source);
    if source.trim().is_empty() {
        return Err(Diagnostic::new(
            "",
            "the template is empty; it needs at least `format`, `key`, `name` and `tasks`",
        ));
    }
    source::read(source, format)
}

/// Runs the semantic checks of [`parse`] on a template built in code, such
/// as one from the editor, the BPMN importer or the log drafter.
pub fn validate(t: &Template) -> Result<(), Vec<Diagnostic>> {
    let diags = validate::check(t);
    if diags.is_empty() { Ok(()) } else { Err(diags) }
}

/// Advice that does not make a template invalid: controls that are declared
/// but that no task evidences.
pub fn warnings(t: &Template) -> Vec<Diagnostic> {
    validate::unused_controls(t)
}

/// `sha256:` and the hex SHA-256 of the template's RFC 8785 canonical JSON,
/// so that formatting, comments, key order and YAML versus JSON do not
/// change it, while any change of content does.
pub fn content_hash(t: &Template) -> String {
    let value = to_value(t);
    // A JSON value always canonicalises: its keys are strings and its numbers finite.
    let canonical = serde_json_canonicalizer::to_vec(&value).unwrap_or_default();
    format!("sha256:{}", hex::encode(Sha256::digest(&canonical)))
}

/// The template as YAML, readable by [`parse`] again.
pub fn to_yaml(t: &Template) -> String {
    let value = to_value(t);
    // JSON is valid YAML, so it stands in should the YAML emitter ever fail.
    serde_yaml::to_string(&value).unwrap_or_else(|_| format!("{value:#}\n"))
}

/// The template as indented JSON, readable by [`parse`] again.
pub fn to_json_pretty(t: &Template) -> String {
    format!("{:#}\n", to_value(t))
}

/// The template as a JSON value. The model's serialisation has no way to
/// fail: every map key is a string and a non-finite number becomes null.
fn to_value(t: &Template) -> serde_json::Value {
    serde_json::to_value(t).unwrap_or_default()
}

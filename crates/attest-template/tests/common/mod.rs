//! Helpers shared by the integration tests.

// Each test binary uses its own subset of these helpers.
#![allow(dead_code)]

use attest_template::{Diagnostic, SourceFormat, Template, parse};

/// A template header with two roles and one control; tasks follow at two spaces.
pub const HEADER: &str = "format: attest/v1
key: test
name: Test
roles: [clerk, boss]
controls:
  - { id: C-1, name: A control }
tasks:
";

/// A complete template from its tasks, written at an indent of two spaces.
pub fn doc(tasks: &str) -> String {
    format!("{HEADER}{tasks}")
}

/// A one-task template from the lines that follow `- key: a` / `name: A`.
pub fn one_task(rest: &str) -> String {
    doc(&format!("  - key: a\n    name: A\n{rest}"))
}

pub fn parse_yaml(src: &str) -> Result<Template, Vec<Diagnostic>> {
    parse(src, SourceFormat::Yaml, Some("t.yaml"))
}

/// Parses a source that must be valid.
pub fn valid(src: &str) -> Template {
    match parse_yaml(src) {
        Ok(t) => t,
        Err(diags) => panic!("expected a valid template, got:\n{}\n---\n{src}", render(&diags)),
    }
}

/// Parses a source that must be invalid.
pub fn errors(src: &str) -> Vec<Diagnostic> {
    match parse_yaml(src) {
        Ok(_) => panic!("expected errors, but this parsed:\n{src}"),
        Err(diags) => diags,
    }
}

pub fn render(diags: &[Diagnostic]) -> String {
    diags.iter().map(|d| format!("  {d}\n")).collect()
}

/// The 1-based number of the first line that contains `needle`.
pub fn line_of(src: &str, needle: &str) -> u32 {
    let index = src.lines().position(|l| l.contains(needle)).unwrap_or_else(|| panic!("no line contains {needle:?}"));
    u32::try_from(index + 1).expect("line number fits u32")
}

/// Asserts that `src` is refused with a diagnostic at `path` whose message
/// contains `fragment`, on the line that contains `needle`.
pub fn expect(src: &str, path: &str, fragment: &str, needle: &str) -> Diagnostic {
    let diags = errors(src);
    let d = diags
        .iter()
        .find(|d| d.path == path && d.message.contains(fragment))
        .unwrap_or_else(|| panic!("no diagnostic at {path:?} containing {fragment:?}; got:\n{}", render(&diags)))
        .clone();
    assert_eq!(d.line, Some(line_of(src, needle)), "line of: {d}");
    assert!(d.column.is_some(), "column of: {d}");
    assert_eq!(d.file.as_deref(), Some("t.yaml"));
    d
}

/// Asserts that validating a typed template reports `fragment` at `path`.
pub fn expect_typed(t: &Template, path: &str, fragment: &str) -> Diagnostic {
    let diags = attest_template::validate(t).expect_err("the template should be invalid");
    diags
        .iter()
        .find(|d| d.path == path && d.message.contains(fragment))
        .unwrap_or_else(|| panic!("no diagnostic at {path:?} containing {fragment:?}; got:\n{}", render(&diags)))
        .clone()
}

/// The example templates shipped with the repository.
pub fn examples_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

/// Every example as (file name, source), sorted by name.
pub fn examples() -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = std::fs::read_dir(examples_dir())
        .expect("examples directory")
        .map(|entry| {
            let path = entry.expect("directory entry").path();
            let name = path.file_name().and_then(|n| n.to_str()).expect("file name").to_owned();
            let src = std::fs::read_to_string(&path).expect("readable example");
            (name, src)
        })
        .collect();
    out.sort();
    out
}

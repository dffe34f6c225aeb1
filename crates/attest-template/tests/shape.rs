//! Syntax and shape errors: the first one stops parsing and carries its
//! path, line and column.

mod common;

use std::path::Path;

use attest_template::{Diagnostic, SourceFormat, parse};
use common::{doc, errors, line_of, one_task};

/// Asserts the single diagnostic of a source that does not parse.
fn shape(src: &str, path: &str, fragment: &str, needle: &str) -> Diagnostic {
    let diags = errors(src);
    assert_eq!(diags.len(), 1, "{diags:?}");
    let d = diags[0].clone();
    assert_eq!(d.path, path, "{d}");
    assert!(d.message.contains(fragment), "{d}");
    assert_eq!(d.line, Some(line_of(src, needle)), "{d}");
    assert!(d.column.is_some(), "{d}");
    // The parsers' own position suffixes are not repeated in the message.
    assert!(!d.message.contains(" at line "), "{d}");
    d
}

#[test]
fn a_key_of_another_field_type_names_the_type() {
    let src =
        one_task("    assignee: starter\n    fields:\n      - { key: n, label: N, type: number, min_length: 3 }\n");
    let d = shape(
        &src,
        "tasks[0].fields[0].min_length",
        "unknown field `min_length` for a `number` field, expected one of",
        "min_length: 3",
    );
    assert!(d.message.contains("`min`, `max`, `decimals`"), "{d}");
    assert_eq!(d.column, Some(43));
}

#[test]
fn a_key_written_before_the_type_is_checked_against_it() {
    let src = one_task(
        "    assignee: starter\n    fields:\n      - key: n\n        label: N\n        options: [a]\n        type: text\n",
    );
    shape(&src, "tasks[0].fields[0]", "unknown field `options` for a `text` field", "- key: n");
}

#[test]
fn unknown_keys_are_refused_everywhere() {
    shape(
        &doc("  - { key: a, name: A, assignee: starter }\nowners: x\n"),
        "owners",
        "unknown field `owners`",
        "owners: x",
    );
    shape(
        &one_task("    assignee: starter\n    assigne: role:clerk\n"),
        "tasks[0].assigne",
        "unknown field `assigne`, expected one of `key`, `name`",
        "assigne: role:clerk",
    );
    shape(
        &one_task("    assignee: starter\n    due: { after: run_started, in: 1d, businessdays: true }\n"),
        "tasks[0].due.businessdays",
        "unknown field `businessdays`",
        "businessdays",
    );
    shape(
        &one_task("    assignee: starter\n    fields:\n      - { key: f, label: F, type: whatever }\n"),
        "tasks[0].fields[0].type",
        "unknown variant `whatever`, expected one of `text`",
        "type: whatever",
    );
    shape(
        &one_task("    assignee: starter\n    type: approvel\n"),
        "tasks[0].type",
        "unknown variant `approvel`, expected one of `task`, `approval`, `http`",
        "type: approvel",
    );
}

#[test]
fn duplicate_mapping_keys_are_refused() {
    shape(&one_task("    assignee: starter\n    name: B\n"), "tasks[0]", "duplicate field `name`", "- key: a");
    shape(
        &one_task("    assignee: starter\n    fields:\n      - { key: f, label: F, type: text, label: G }\n"),
        "tasks[0].fields[0].label",
        "duplicate field `label`",
        "label: G",
    );
    shape(
        &one_task("    assignee: starter\n    show_when: { field: x, op: is, op: is_not }\n"),
        "tasks[0].show_when.op",
        "duplicate field `op`",
        "op: is_not",
    );
    shape(
        &one_task(
            "    assignee: starter\n    fields:\n      - { key: h, label: H, type: hidden, default: { a: 1, a: 2 } }\n",
        ),
        "tasks[0].fields[0].default",
        "duplicate key `a`",
        "type: hidden",
    );
}

#[test]
fn conditions_have_exactly_one_shape() {
    shape(
        &one_task("    assignee: starter\n    show_when: { field: x, op: is, value: 1, all: [] }\n"),
        "tasks[0].show_when",
        "a condition is either `field`, `op` and `value`, or exactly one of `all`, `any` or `not`",
        "show_when",
    );
    shape(
        &one_task("    assignee: starter\n    show_when: { any: [], not: { field: x, op: has_value } }\n"),
        "tasks[0].show_when",
        "this one has `any`, `not`",
        "show_when",
    );
    shape(
        &one_task("    assignee: starter\n    show_when: { field: x }\n"),
        "tasks[0].show_when",
        "missing field `op`",
        "show_when",
    );
    shape(
        &one_task("    assignee: starter\n    show_when: {}\n"),
        "tasks[0].show_when",
        "a condition needs `field` and `op`",
        "show_when",
    );
    shape(
        &one_task("    assignee: starter\n    show_when: { field: x, op: greater, value: 1 }\n"),
        "tasks[0].show_when.op",
        "unknown variant `greater`",
        "show_when",
    );
    shape(
        &one_task("    assignee: starter\n    show_when: { field: x, op: is, valu: 1 }\n"),
        "tasks[0].show_when.valu",
        "unknown field `valu`, expected one of `field`, `op`, `value`, `all`, `any`, `not`",
        "show_when",
    );
    shape(
        &one_task("    assignee: starter\n    show_when: personal_data\n"),
        "tasks[0].show_when",
        "expected a condition",
        "show_when",
    );
}

#[test]
fn escalations_take_exactly_one_action() {
    let with = |step: &str| {
        one_task(&format!(
            "    assignee: starter\n    due: {{ after: run_started, in: 1d }}\n    escalate:\n      - {step}\n"
        ))
    };
    shape(
        &with("{ overdue_by: 1d }"),
        "tasks[0].escalate[0]",
        "an escalation step needs `notify` or `reassign`",
        "overdue_by",
    );
    shape(
        &with("{ overdue_by: 1d, notify: starter, reassign: role:boss }"),
        "tasks[0].escalate[0]",
        "takes either `notify` or `reassign`, not both",
        "overdue_by",
    );
    shape(&with("{ notify: starter }"), "tasks[0].escalate[0]", "missing field `overdue_by`", "notify");
    shape(
        &with("{ overdue_by: 1d, page: starter }"),
        "tasks[0].escalate[0].page",
        "unknown field `page`, expected one of `overdue_by`, `notify`, `reassign`",
        "page",
    );
}

#[test]
fn written_values_are_checked_as_they_are_read() {
    shape(
        &one_task("    assignee: boss\n"),
        "tasks[0].assignee",
        "assignee 'boss' must be 'starter', 'role:KEY', 'user:EMAIL' or 'field:KEY'",
        "assignee: boss",
    );
    shape(
        &one_task("    assignee: starter\n    due: { after: run_started, in: 3 days }\n"),
        "tasks[0].due.in",
        "duration '3 days' must end in m, h, d or w (like 4h, 3d, 2w)",
        "in: 3 days",
    );
    shape(
        &one_task("    assignee: starter\n    due: { after: run_started, in: +3d }\n"),
        "tasks[0].due.in",
        "duration '+3d' must be a whole number",
        "in: +3d",
    );
    shape(
        &one_task("    assignee: starter\n    due: { after: yesterday, in: 3d }\n"),
        "tasks[0].due.after",
        "it must be 'run_started', 'task:KEY' or 'field:KEY'",
        "after: yesterday",
    );
    shape(
        &one_task(
            "    assignee: starter\n    fields:\n      - { key: d, label: D, type: date, not_before: next week }\n",
        ),
        "tasks[0].fields[0].not_before",
        "must be a date (2025-01-31), 'run_started' or 'field:KEY'",
        "not_before",
    );
    shape(
        &one_task(
            "    assignee: starter\n    fields:\n      - { key: d, label: D, type: date, not_after: run_started+4h }\n",
        ),
        "tasks[0].fields[0].not_after",
        "must be in days or weeks",
        "not_after",
    );
    shape(
        &one_task("    assignee: starter\n    stop: yes\n"),
        "tasks[0].stop",
        "invalid type: string \"yes\", expected a boolean",
        "stop: yes",
    );
    shape(
        &one_task("    assignee: starter\n    fields:\n      - { key: n, label: N, type: number, min: .nan }\n"),
        "tasks[0].fields[0].min",
        "field 'n': min must be a finite number",
        "min: .nan",
    );
}

#[test]
fn missing_required_keys_are_named() {
    shape(&doc("  - key: a\n    assignee: starter\n"), "tasks[0]", "missing field `name`", "- key: a");
    shape(
        &one_task("    assignee: starter\n    fields:\n      - { key: s, label: S, type: select }\n"),
        "tasks[0].fields[0]",
        "missing field `options`",
        "type: select",
    );
    shape(
        &one_task("    assignee: starter\n    fields:\n      - { key: s, type: text }\n"),
        "tasks[0].fields[0]",
        "missing field `label`",
        "type: text",
    );
}

#[test]
fn yaml_syntax_errors_have_positions() {
    let src = "format: attest/v1\nkey: k\nname: [unclosed\ntasks: []\n";
    let d = errors(src).remove(0);
    assert!(d.line.is_some() && d.column.is_some(), "{d}");
    assert!(!d.message.contains(" at line "), "{d}");
    let src = "format: attest/v1\n  key: k\n";
    let d = errors(src).remove(0);
    assert_eq!(d.line, Some(2), "{d}");
}

#[test]
fn several_yaml_documents_are_refused() {
    let src = format!("{}---\nformat: attest/v1\n", one_task("    assignee: starter\n"));
    let d = errors(&src).remove(0);
    assert!(d.message.contains("more than one document"), "{d}");
}

#[test]
fn empty_sources_are_refused_plainly() {
    for src in ["", "  \n\n"] {
        let d = errors(src).remove(0);
        assert!(d.message.contains("the template is empty"), "{d}");
    }
}

#[test]
fn json_errors_have_paths_and_positions() {
    let src = "{\n  \"format\": \"attest/v1\",\n  \"key\": \"k\",\n  \"name\": \"N\",\n  \"tasks\": [\n    {\"key\": \"a\", \"name\": \"A\", \"assignee\": \"starter\", \"colour\": 1}\n  ]\n}\n";
    let d = parse(src, SourceFormat::Json, Some("t.json")).expect_err("unknown key").remove(0);
    assert_eq!(d.path, "tasks[0].colour");
    assert!(d.message.starts_with("unknown field `colour`"), "{d}");
    assert_eq!(d.line, Some(6));
    assert!(d.to_string().starts_with("t.json:6:"), "{d}");

    let d = parse("{\"format\": \"attest/v1\",}", SourceFormat::Json, None).expect_err("syntax").remove(0);
    assert_eq!((d.line, d.path.as_str()), (Some(1), ""), "{d}");
    assert!(d.message.contains("trailing comma"), "{d}");

    let valid = "{\"format\": \"attest/v1\", \"key\": \"k\", \"name\": \"N\", \"tasks\": [{\"key\": \"a\", \"name\": \"A\", \"assignee\": \"starter\"}]}";
    assert!(parse(valid, SourceFormat::Json, None).is_ok());
    let d = parse(&format!("{valid} {{}}"), SourceFormat::Json, None).expect_err("trailing").remove(0);
    assert!(d.message.contains("trailing characters"), "{d}");
}

#[test]
fn a_byte_order_mark_is_ignored() {
    let src = format!("\u{feff}{}", one_task("    assignee: starter\n"));
    assert!(parse(&src, SourceFormat::Yaml, None).is_ok());
}

#[test]
fn the_format_follows_the_extension() {
    assert_eq!(SourceFormat::from_path(Path::new("a/b.json")), SourceFormat::Json);
    assert_eq!(SourceFormat::from_path(Path::new("b.JSON")), SourceFormat::Json);
    assert_eq!(SourceFormat::from_path(Path::new("b.yaml")), SourceFormat::Yaml);
    assert_eq!(SourceFormat::from_path(Path::new("b.yml")), SourceFormat::Yaml);
    assert_eq!(SourceFormat::from_path(Path::new("b")), SourceFormat::Yaml);
}

#[test]
fn diagnostics_display_and_serialise() {
    let d = Diagnostic {
        file: Some("a.yaml".into()),
        line: Some(3),
        column: Some(7),
        path: "tasks[0].key".into(),
        message: "bad".into(),
    };
    assert_eq!(d.to_string(), "a.yaml:3:7: tasks[0].key: bad");
    let bare = Diagnostic { file: None, line: None, column: None, path: String::new(), message: "bad".into() };
    assert_eq!(bare.to_string(), "bad");
    let no_column = Diagnostic { column: None, ..d.clone() };
    assert_eq!(no_column.to_string(), "a.yaml:3: tasks[0].key: bad");
    let json = serde_json::to_value(&d).expect("serialises");
    assert_eq!(
        json,
        serde_json::json!({"file": "a.yaml", "line": 3, "column": 7, "path": "tasks[0].key", "message": "bad"})
    );
}

/// Nesting up to the parsers' own depth limits ends in an error, not a
/// stack overflow.
#[test]
fn deep_nesting_is_refused_without_overflow() {
    for depth in [20, 60, 200] {
        let mut yaml = "{ field: x, op: has_value }".to_string();
        let mut json = "{\"field\": \"x\", \"op\": \"has_value\"}".to_string();
        for _ in 0..depth {
            yaml = format!("{{ not: {yaml} }}");
            json = format!("{{\"not\": {json}}}");
        }
        let src = one_task(&format!("    assignee: starter\n    show_when: {yaml}\n"));
        assert!(!errors(&src).is_empty());
        let src = format!(
            "{{\"format\": \"attest/v1\", \"key\": \"k\", \"name\": \"N\", \"tasks\": [{{\"key\": \"a\", \"name\": \"A\", \"assignee\": \"starter\", \"show_when\": {json}}}]}}"
        );
        assert!(parse(&src, SourceFormat::Json, None).is_err());
    }
}

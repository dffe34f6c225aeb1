//! `read_shape`: what drafts are saved with. It reads a template that does
//! not validate yet, and refuses text that does not have the model's shape,
//! with the same path and position as `parse`.

use attest_template::{SourceFormat, parse, read_shape};

const NOT_YET_VALID: &str =
    "format: attest/v1\nkey: k\nname: K\ntasks:\n  - key: a\n    name: A\n    assignee: role:undeclared\n";

#[test]
fn a_template_that_does_not_validate_yet_still_reads() {
    let t = read_shape(NOT_YET_VALID, SourceFormat::Yaml).expect("the shape is right");
    assert_eq!(t.tasks[0].key, "a");
    let errors = parse(NOT_YET_VALID, SourceFormat::Yaml, None).expect_err("the role is not declared");
    assert_eq!(errors[0].path, "tasks[0].assignee");
}

#[test]
fn a_shape_error_is_refused_with_its_path_and_line() {
    let bad = NOT_YET_VALID.replace("    name: A\n", "    name: A\n    stop: maybe\n");
    let d = read_shape(&bad, SourceFormat::Yaml).expect_err("a word is not a boolean");
    assert_eq!((d.path.as_str(), d.line), ("tasks[0].stop", Some(7)));
    let same = parse(&bad, SourceFormat::Yaml, None).expect_err("parse refuses it too");
    assert_eq!(same, vec![d]);
}

#[test]
fn empty_and_oversized_sources_are_refused_unread() {
    assert!(read_shape("  \n", SourceFormat::Yaml).expect_err("empty").message.contains("empty"));
    let huge = "#".repeat(attest_template::MAX_TEMPLATE_BYTES + 1);
    assert!(read_shape(&huge, SourceFormat::Yaml).expect_err("too large").message.contains("1 MiB"));
}

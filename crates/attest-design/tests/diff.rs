//! Version diffs: tasks, fields and controls are matched by key, values are
//! shown as written, and the YAML line diff keeps the common lines.

mod common;

use attest_design::{ChangeKind, LineOp, diff_templates, line_diff};
use common::{example, parse};

#[test]
fn identical_versions_have_no_changes() {
    let t = example("vendor-onboarding");
    let d = diff_templates(&t, &t);
    assert!(d.is_empty());
    assert_eq!(d.lines.added() + d.lines.removed(), 0);
}

#[test]
fn changes_are_found_by_task_and_field() {
    let old = example("vendor-onboarding");
    let mut new = old.clone();
    new.name = "Vendor onboarding (2026)".into();
    new.tasks[1].assignee = attest_template::Assignee::Role("procurement-lead".into());
    new.tasks[0].fields[0].required = false;
    new.tasks[0].fields.remove(1);
    new.tasks[1].show_when = None;
    let mut extra = new.tasks[1].clone();
    extra.key = "legal_review".into();
    extra.name = "Legal review".into();
    extra.fields.clear();
    new.tasks.insert(2, extra);
    new.tasks.swap(0, 1);

    let d = diff_templates(&old, &new);
    let find = |loc: &str| d.changes.iter().find(|c| c.location() == loc).unwrap_or_else(|| panic!("{loc}: {d:#?}"));
    let name = find("name");
    assert_eq!(
        (name.kind, name.before.as_deref(), name.after.as_deref()),
        (ChangeKind::Changed, Some("Vendor onboarding"), Some("Vendor onboarding (2026)"))
    );
    assert_eq!(find("task security_review › assignee").after.as_deref(), Some("role:procurement-lead"));
    assert_eq!(find("task request › field vendor_name › required").kind, ChangeKind::Removed);
    let removed = find("task request › field vendor_website");
    assert_eq!((removed.kind, removed.before.as_deref()), (ChangeKind::Removed, Some("Vendor website (url)")));
    assert_eq!(
        find("task security_review › show_when").before.as_deref(),
        Some("{ field: personal_data, op: is, value: true }")
    );
    assert_eq!(find("task legal_review").kind, ChangeKind::Added);
    let order = find("order of tasks");
    assert_eq!(order.kind, ChangeKind::Reordered);
    assert_eq!(order.after.as_deref(), Some("security_review, request, finance_approval"));
    assert!(d.lines.added() > 0 && d.lines.removed() > 0);
}

#[test]
fn controls_are_matched_by_id() {
    let old = example("vendor-onboarding");
    let mut new = old.clone();
    new.controls[1].frameworks.push("ISO27001:A.5.20".into());
    let d = diff_templates(&old, &new);
    assert_eq!(d.changes.len(), 1, "{:#?}", d.changes);
    assert_eq!(d.changes[0].location(), "control VR-02: frameworks");
}

#[test]
fn a_new_field_and_a_new_rule_show_as_added() {
    let old = parse("format: attest/v1\nkey: k\nname: K\ntasks:\n  - { key: a, name: A, assignee: starter }\n");
    let new = parse(
        "format: attest/v1\nkey: k\nname: K\ntasks:\n  - key: a\n    name: A\n    assignee: starter\n    due: { after: run_started, in: 3d }\n    fields: [ { key: n, label: N, type: number, min: 1 } ]\n",
    );
    let d = diff_templates(&old, &new);
    let locs: Vec<String> = d.changes.iter().map(|c| format!("{} {}", c.kind.as_str(), c.location())).collect();
    assert_eq!(locs, vec!["added task a › due", "added task a › field n"]);
    assert_eq!(d.changes[0].after.as_deref(), Some("{ after: run_started, in: 3d }"));
}

#[test]
fn line_diff_keeps_common_lines_and_numbers_both_sides() {
    let d = line_diff("a\nb\nc\nd\n", "a\nc\nx\nd\n");
    let ops: Vec<(LineOp, &str)> = d.lines.iter().map(|l| (l.op, l.text.as_str())).collect();
    assert_eq!(
        ops,
        vec![
            (LineOp::Same, "a"),
            (LineOp::Removed, "b"),
            (LineOp::Same, "c"),
            (LineOp::Added, "x"),
            (LineOp::Same, "d")
        ]
    );
    assert_eq!((d.lines[3].old_no, d.lines[3].new_no), (None, Some(3)));
    assert_eq!((d.lines[4].old_no, d.lines[4].new_no), (Some(4), Some(4)));
}

#[test]
fn context_leaves_out_long_unchanged_stretches() {
    let old: String = (0..50).map(|i| format!("line {i}\n")).collect();
    let new = old.replace("line 25\n", "line twenty-five\n");
    let d = line_diff(&old, &new);
    let shown = d.with_context(2);
    assert_eq!(shown.iter().filter(|l| l.is_none()).count(), 2, "a gap before and after");
    assert_eq!(shown.iter().flatten().count(), 6);
}

#[test]
fn a_rewrite_too_large_to_align_is_shown_as_removed_then_added() {
    let old: String = (0..3000).map(|i| format!("old {i}\n")).collect();
    let new: String = (0..3000).map(|i| format!("new {i}\n")).collect();
    let d = line_diff(&old, &new);
    assert_eq!((d.removed(), d.added()), (3000, 3000));
    assert_eq!(d.lines[0].op, LineOp::Removed);
}

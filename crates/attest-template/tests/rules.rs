//! Every semantic rule: a small bad template, the exact message fragment,
//! the path and the line it is reported on.

mod common;

use attest_template::limits::*;
use attest_template::{Assignee, Condition, Field, FieldKind, Op, OptionRules, TextRules, validate, warnings};
use common::{doc, errors, expect, expect_typed, one_task, valid};

/// Two plain tasks: `a` by the clerk with a few fields, then `rest`.
fn two_tasks(rest: &str) -> String {
    doc(&format!(
        "  - key: a
    name: A
    assignee: role:clerk
    fields:
      - {{ key: amount, label: Amount, type: number }}
      - {{ key: note, label: Note, type: text }}
      - {{ key: kind, label: Kind, type: select, options: [small, large] }}
      - {{ key: flag, label: Flag, type: checkbox }}
      - {{ key: when, label: When, type: date }}
      - {{ key: doc, label: Doc, type: file }}
      - {{ key: who, label: Who, type: members }}
      - {{ key: tags, label: Tags, type: multi_choice, options: [red, blue] }}
      - {{ key: rows, label: Rows, type: table, columns: [ {{ key: item, label: Item, type: text }} ] }}
  - key: b
    name: B
{rest}"
    ))
}

// Template level.

#[test]
fn format_must_be_v1() {
    let src = one_task("    assignee: starter\n").replace("attest/v1", "attest/v2");
    expect(&src, "format", "format is 'attest/v2'; this version reads only 'attest/v1'", "format:");
}

#[test]
fn template_key_is_lowercase_with_dashes() {
    let src = one_task("    assignee: starter\n").replace("key: test", "key: Test_Key");
    expect(&src, "key", "template key 'Test_Key' must be 1 to 63 lowercase letters", "key: Test_Key");
    let long = format!("key: {}", "a".repeat(64));
    let src = one_task("    assignee: starter\n").replace("key: test", &long);
    expect(&src, "key", "must be 1 to 63", &long);
}

#[test]
fn names_are_required_and_bounded() {
    let src = one_task("    assignee: starter\n").replace("name: Test", "name: \"  \"");
    expect(&src, "name", "the template needs a non-empty name", "name: \"  \"");
    let long = "x".repeat(MAX_NAME_CHARS + 1);
    let src = doc(&format!("  - key: a\n    name: {long}\n    assignee: starter\n"));
    expect(&src, "tasks[0].name", "the name of task 'a' is 201 characters long; at most 200", &long);
}

#[test]
fn instructions_are_bounded() {
    let long = "y".repeat(MAX_TEXT_CHARS + 1);
    let src = one_task(&format!("    assignee: starter\n    instructions: {long}\n"));
    expect(&src, "tasks[0].instructions", "the instructions of task 'a' is 20001 characters long", "instructions:");
}

#[test]
fn a_template_needs_a_task() {
    let src = doc("  []\n").replace("tasks:\n  []", "tasks: []");
    expect(&src, "tasks", "a template needs at least one task", "tasks: []");
}

#[test]
fn owner_is_a_declared_role_or_a_user() {
    let base = one_task("    assignee: starter\n");
    let src = base.replace("name: Test\n", "name: Test\nowner: role:auditor\n");
    expect(&src, "owner", "owner 'role:auditor' names a role that is not declared; add 'auditor' to `roles`", "owner:");
    let src = base.replace("name: Test\n", "name: Test\nowner: starter\n");
    expect(&src, "owner", "owner cannot be 'starter'", "owner:");
    let src = base.replace("name: Test\n", "name: Test\nowner: field:x\n");
    expect(&src, "owner", "owner cannot be 'field:x'", "owner:");
    let src = base.replace("name: Test\n", "name: Test\nowner: user:not-an-email\n");
    expect(&src, "owner", "owner 'user:not-an-email' is not a valid email address", "owner:");
}

#[test]
fn policy_links_are_web_addresses() {
    let src = one_task("    assignee: starter\n")
        .replace("name: Test\n", "name: Test\npolicy: { id: P-1, url: \"ftp://x\" }\n");
    expect(&src, "policy.url", "policy url 'ftp://x' must be an http:// or https:// address", "policy:");
    let src = one_task("    assignee: starter\n").replace("name: Test\n", "name: Test\npolicy: { id: \"\" }\n");
    expect(&src, "policy.id", "policy needs a non-empty id", "policy:");
}

// Duplicates.

#[test]
fn duplicate_task_keys_are_refused() {
    let src = doc("  - { key: a, name: A, assignee: starter }\n  - { key: a, name: B, assignee: starter }\n");
    expect(&src, "tasks[1].key", "task key 'a' is already used by tasks[0]", "name: B");
}

#[test]
fn field_keys_are_unique_across_the_template() {
    let src = two_tasks("    assignee: starter\n    fields:\n      - { key: note, label: Again, type: text }\n");
    expect(
        &src,
        "tasks[1].fields[0].key",
        "field key 'note' is already used on task 'a' (tasks[0].fields[1]); field keys must be unique across the template",
        "label: Again",
    );
}

#[test]
fn duplicate_roles_are_refused() {
    let src = one_task("    assignee: starter\n").replace("roles: [clerk, boss]", "roles: [clerk, boss, clerk]");
    expect(&src, "roles[2]", "role 'clerk' is declared twice", "roles:");
    let src = one_task("    assignee: starter\n").replace("roles: [clerk, boss]", "roles: [clerk, Big Boss]");
    expect(&src, "roles[1]", "role 'Big Boss' must be 1 to 63 lowercase letters", "roles:");
}

#[test]
fn duplicate_control_ids_are_refused() {
    let src = one_task("    assignee: starter\n    controls: [C-1]\n").replace(
        "  - { id: C-1, name: A control }\n",
        "  - { id: C-1, name: A control }\n  - { id: C-1, name: Again }\n",
    );
    expect(&src, "controls[1].id", "control id 'C-1' is declared twice", "name: Again");
}

#[test]
fn duplicate_options_are_refused() {
    let src = one_task(
        "    assignee: starter\n    fields:\n      - { key: s, label: S, type: select, options: [a, b, a] }\n",
    );
    expect(&src, "tasks[0].fields[0].options[2]", "field 's' lists option 'a' twice", "options:");
}

#[test]
fn duplicate_column_keys_are_refused() {
    let src = one_task(
        "    assignee: starter\n    fields:\n      - key: t\n        label: T\n        type: table\n        columns:\n          - { key: c, label: C, type: text }\n          - { key: c, label: D, type: number }\n",
    );
    expect(&src, "tasks[0].fields[0].columns[1].key", "field 't' has two columns with key 'c'", "label: D");
}

// Keys.

#[test]
fn task_and_field_keys_follow_the_pattern() {
    let src = doc("  - { key: Review, name: A, assignee: starter }\n");
    expect(
        &src,
        "tasks[0].key",
        "task key 'Review' must be 1 to 63 lowercase letters, digits or '_', starting with a letter",
        "key: Review",
    );
    let src = one_task("    assignee: starter\n    fields:\n      - { key: 2fa, label: F, type: text }\n");
    expect(&src, "tasks[0].fields[0].key", "field key '2fa' must be 1 to 63", "key: 2fa");
}

// Assignees.

#[test]
fn role_assignees_must_be_declared() {
    let src = one_task("    assignee: role:auditor\n");
    expect(
        &src,
        "tasks[0].assignee",
        "task 'a': assignee 'role:auditor' names a role that is not declared; add 'auditor' to `roles`",
        "assignee:",
    );
}

#[test]
fn user_assignees_need_a_valid_email() {
    let src = one_task("    assignee: user:ana@@example.com\n");
    expect(
        &src,
        "tasks[0].assignee",
        "task 'a': assignee 'user:ana@@example.com' is not a valid email address",
        "assignee:",
    );
    assert!(parse_ok(&one_task("    assignee: user:Ana.Lopez@Example.com\n")));
}

fn parse_ok(src: &str) -> bool {
    attest_template::parse(src, attest_template::SourceFormat::Yaml, None).is_ok()
}

#[test]
fn field_assignees_name_a_members_field_of_an_earlier_task() {
    let src = two_tasks("    assignee: field:nobody\n");
    expect(
        &src,
        "tasks[1].assignee",
        "task 'b': assignee 'field:nobody' names a field that does not exist",
        "assignee: field:nobody",
    );
    let src = two_tasks("    assignee: field:note\n");
    expect(
        &src,
        "tasks[1].assignee",
        "assignee 'field:note' must name a members field, but 'note' is a text field",
        "assignee: field:note",
    );
    let src = two_tasks("    assignee: field:mine\n    fields:\n      - { key: mine, label: Mine, type: members }\n");
    expect(
        &src,
        "tasks[1].assignee",
        "must be a members field of an earlier task, but 'mine' is on this same task",
        "assignee: field:mine",
    );
    let src = doc(
        "  - { key: a, name: A, assignee: field:later }\n  - key: b\n    name: B\n    assignee: starter\n    fields:\n      - { key: later, label: L, type: members }\n",
    );
    expect(&src, "tasks[0].assignee", "'later' is on the later task 'b'", "assignee: field:later");
    assert!(parse_ok(&two_tasks("    assignee: field:who\n")));
}

#[test]
fn escalation_targets_are_checked_like_assignees() {
    let src = one_task(
        "    assignee: starter\n    due: { after: run_started, in: 1d }\n    escalate:\n      - { overdue_by: 1d, notify: role:ghost }\n      - { overdue_by: 2d, reassign: field:self_pick }\n    fields:\n      - { key: self_pick, label: P, type: members }\n",
    );
    expect(
        &src,
        "tasks[0].escalate[0].notify",
        "task 'a': escalation notify 'role:ghost' names a role that is not declared",
        "notify: role:ghost",
    );
    expect(
        &src,
        "tasks[0].escalate[1].reassign",
        "task 'a': escalation reassign 'field:self_pick' must be a members field of an earlier task",
        "reassign:",
    );
}

// Approvals.

#[test]
fn approval_tasks_need_approves() {
    let src = doc(
        "  - { key: a, name: A, assignee: starter }\n  - { key: b, name: B, type: approval, assignee: role:boss }\n",
    );
    expect(
        &src,
        "tasks[1].approves",
        "approval task 'b' must list the earlier tasks it signs off under `approves`",
        "key: b",
    );
}

#[test]
fn approves_is_only_for_approval_tasks() {
    let src = doc(
        "  - { key: a, name: A, assignee: starter }\n  - { key: b, name: B, approves: [a], assignee: role:boss }\n",
    );
    expect(
        &src,
        "tasks[1].approves",
        "task 'b' lists `approves` but is not an approval; add `type: approval`",
        "key: b",
    );
}

#[test]
fn approves_names_earlier_plain_tasks_once() {
    let src = doc("  - { key: a, name: A, assignee: starter }
  - { key: ok, name: OK, type: approval, approves: [a], assignee: role:boss }
  - key: b
    name: B
    type: approval
    assignee: role:boss
    approves:
      - ghost
      - b
      - c
      - ok
      - a
      - a   # again
  - { key: c, name: C, assignee: starter }
");
    expect(
        &src,
        "tasks[2].approves[0]",
        "approval task 'b' approves 'ghost', which is not a task of this template",
        "- ghost",
    );
    expect(&src, "tasks[2].approves[1]", "approval task 'b' cannot approve itself", "- b");
    expect(
        &src,
        "tasks[2].approves[2]",
        "approves 'c', which comes after it; an approval can only approve earlier tasks",
        "- c",
    );
    expect(&src, "tasks[2].approves[3]", "approves 'ok', which is itself an approval", "- ok");
    expect(&src, "tasks[2].approves[5]", "approval task 'b' lists 'a' twice under `approves`", "# again");
    assert_eq!(errors(&src).len(), 5);
}

#[test]
fn an_approver_cannot_be_the_same_person_as_the_subject() {
    let src = doc(
        "  - { key: a, name: A, assignee: user:ana@example.com }\n  - { key: b, name: B, type: approval, approves: [a], assignee: user:ana@example.com }\n",
    );
    expect(&src, "tasks[1].approves[0]", "are both assigned to user:ana@example.com; separation of duties", "key: b");
    let src = doc(
        "  - { key: a, name: A, assignee: starter }\n  - { key: b, name: B, type: approval, approves: [a], assignee: starter }\n",
    );
    expect(&src, "tasks[1].approves[0]", "are both assigned to starter", "key: b");
}

// Conditions.

#[test]
fn conditions_name_existing_fields() {
    let src = two_tasks("    assignee: starter\n    show_when: { field: amout, op: gt, value: 1 }\n");
    expect(
        &src,
        "tasks[1].show_when.field",
        "task 'b': show_when refers to field 'amout', which does not exist",
        "show_when",
    );
}

#[test]
fn task_conditions_use_fields_of_earlier_tasks() {
    let src = two_tasks(
        "    assignee: starter\n    show_when: { field: mine, op: has_value }\n    fields:\n      - { key: mine, label: M, type: text }\n",
    );
    expect(&src, "tasks[1].show_when.field", "task 'b': show_when uses 'mine', a field of this same task", "show_when");
    let src = doc(
        "  - key: a\n    name: A\n    assignee: starter\n    show_when: { field: later, op: has_value }\n  - key: b\n    name: B\n    assignee: starter\n    fields:\n      - { key: later, label: L, type: text }\n",
    );
    expect(
        &src,
        "tasks[0].show_when.field",
        "task 'a': show_when uses field 'later' of the later task 'b'",
        "show_when",
    );
}

#[test]
fn field_conditions_use_earlier_fields() {
    let src = one_task(
        "    assignee: starter\n    fields:\n      - { key: x, label: X, type: checkbox, show_when: { field: x, op: is, value: true } }\n",
    );
    expect(
        &src,
        "tasks[0].fields[0].show_when.field",
        "field 'x': show_when cannot depend on the field itself",
        "key: x",
    );
    let src = one_task(
        "    assignee: starter\n    fields:\n      - { key: x, label: X, type: text, show_when: { field: y, op: is, value: true } }\n      - { key: y, label: Y, type: checkbox }\n",
    );
    expect(
        &src,
        "tasks[0].fields[0].show_when.field",
        "field 'x': show_when uses 'y', which comes after it on the same task",
        "key: x",
    );
    let src = doc(
        "  - key: a\n    name: A\n    assignee: starter\n    fields:\n      - { key: x, label: X, type: text, show_when: { field: y, op: has_value } }\n  - key: b\n    name: B\n    assignee: starter\n    fields:\n      - { key: y, label: Y, type: checkbox }\n",
    );
    expect(
        &src,
        "tasks[0].fields[0].show_when.field",
        "field 'x': show_when uses field 'y' of the later task 'b'",
        "key: x",
    );
    // Earlier fields of the same task and fields of earlier tasks are fine.
    valid(&two_tasks(
        "    assignee: starter\n    fields:\n      - { key: p, label: P, type: checkbox, show_when: { field: flag, op: is, value: true } }\n      - { key: q, label: Q, type: text, show_when: { field: p, op: is, value: true } }\n",
    ));
}

#[test]
fn value_is_present_exactly_when_the_op_takes_one() {
    let src = two_tasks("    assignee: starter\n    show_when: { field: amount, op: gt }\n");
    expect(&src, "tasks[1].show_when", "task 'b': op `gt` needs a `value` to compare with", "show_when");
    let src = two_tasks("    assignee: starter\n    show_when: { field: amount, op: has_value, value: 3 }\n");
    expect(&src, "tasks[1].show_when.value", "task 'b': op `has_value` takes no `value`; remove it", "show_when");
    let src = two_tasks("    assignee: starter\n    show_when: { field: note, op: is, value: null }\n");
    expect(&src, "tasks[1].show_when", "op `is` needs a `value`", "show_when");
}

#[test]
fn ordering_ops_need_numbers_or_dates() {
    let src = two_tasks("    assignee: starter\n    show_when: { field: note, op: gt, value: 3 }\n");
    expect(
        &src,
        "tasks[1].show_when.op",
        "op `gt` only compares number, date or datetime fields, and 'note' is a text field",
        "show_when",
    );
    let src = two_tasks("    assignee: starter\n    show_when: { field: amount, op: lte, value: \"10\" }\n");
    expect(&src, "tasks[1].show_when.value", "value for 'amount' must be a number, not \"10\"", "show_when");
    let src = two_tasks("    assignee: starter\n    show_when: { field: when, op: lt, value: 31/01/2025 }\n");
    expect(&src, "tasks[1].show_when.value", "value for 'when' must be a date written like 2025-01-31", "show_when");
    valid(&two_tasks("    assignee: starter\n    show_when: { field: when, op: gte, value: 2025-01-31 }\n"));
}

#[test]
fn is_values_fit_the_field_type() {
    let src = two_tasks("    assignee: starter\n    show_when: { field: kind, op: is, value: huge }\n");
    expect(
        &src,
        "tasks[1].show_when.value",
        "value for 'kind' must be one of the options (small, large), not \"huge\"",
        "show_when",
    );
    let src = two_tasks("    assignee: starter\n    show_when: { field: flag, op: is, value: \"true\" }\n");
    expect(&src, "tasks[1].show_when.value", "value for 'flag' must be true or false, not \"true\"", "show_when");
    let src = two_tasks("    assignee: starter\n    show_when: { field: amount, op: is_not, value: [1] }\n");
    expect(&src, "tasks[1].show_when.value", "value for 'amount' must be a number, not a list", "show_when");
    // A list field is compared by membership, with one of its options.
    let src = two_tasks("    assignee: starter\n    show_when: { field: tags, op: is, value: [red] }\n");
    expect(
        &src,
        "tasks[1].show_when.value",
        "value for 'tags' must be one of the options (red, blue), not a list",
        "show_when",
    );
    valid(&two_tasks("    assignee: starter\n    show_when: { field: tags, op: is_not, value: blue }\n"));
    let src = two_tasks("    assignee: starter\n    show_when: { field: doc, op: is, value: x }\n");
    expect(
        &src,
        "tasks[1].show_when.op",
        "op `is` cannot compare the file field 'doc'; use `has_value` or `has_no_value`",
        "show_when",
    );
}

#[test]
fn contains_applies_to_text_lists_members_and_tables() {
    let src = two_tasks("    assignee: starter\n    show_when: { field: amount, op: contains, value: 1 }\n");
    expect(
        &src,
        "tasks[1].show_when.op",
        "op `contains` applies to text, textarea, multi_choice, members or table fields, and 'amount' is a number field",
        "show_when",
    );
    let src = two_tasks("    assignee: starter\n    show_when: { field: who, op: contains, value: someone }\n");
    expect(&src, "tasks[1].show_when.value", "value for 'who' must be an email address", "show_when");
    let src = two_tasks("    assignee: starter\n    show_when: { field: rows, op: contains, value: { item: pen } }\n");
    expect(
        &src,
        "tasks[1].show_when.value",
        "value for 'rows' must be text, a number or true/false, not a map",
        "show_when",
    );
    let src = two_tasks("    assignee: starter\n    show_when: { field: tags, op: contains, value: green }\n");
    expect(&src, "tasks[1].show_when.value", "value for 'tags' must be one of the options (red, blue)", "show_when");
    valid(&two_tasks("    assignee: starter\n    show_when: { field: note, op: contains, value: urgent }\n"));
    valid(&two_tasks("    assignee: starter\n    show_when: { field: rows, op: contains, value: pen }\n"));
}

#[test]
fn nested_conditions_are_checked_at_every_level() {
    let src = two_tasks(
        "    assignee: starter\n    show_when:\n      all:\n        - { field: flag, op: is, value: true }\n        - any:\n            - { field: kind, op: is, value: large }\n            - not: { field: ghost, op: has_value }\n",
    );
    expect(&src, "tasks[1].show_when.all[1].any[1].not.field", "show_when refers to field 'ghost'", "ghost");
    let src = two_tasks("    assignee: starter\n    show_when: { any: [] }\n");
    expect(&src, "tasks[1].show_when.any", "task 'b': `any` needs at least one condition", "show_when");
}

#[test]
fn condition_nesting_is_bounded() {
    let mut cond = "{ field: flag, op: has_value }".to_string();
    for _ in 0..MAX_CONDITION_DEPTH {
        cond = format!("{{ not: {cond} }}");
    }
    let src = two_tasks(&format!("    assignee: starter\n    show_when: {cond}\n"));
    let path = format!("tasks[1].show_when{}", ".not".repeat(MAX_CONDITION_DEPTH));
    expect(&src, &path, "show_when nests conditions more than 16 levels deep", "show_when");
}

// Controls.

#[test]
fn task_controls_must_be_declared() {
    let src = one_task("    assignee: starter\n    controls: [C-1, C-9]\n");
    expect(
        &src,
        "tasks[0].controls[1]",
        "task 'a' lists control 'C-9', which is not declared under `controls`",
        "controls: [C-1, C-9]",
    );
}

#[test]
fn unused_controls_are_warnings_not_errors() {
    let t = valid(&one_task("    assignee: starter\n"));
    let w = warnings(&t);
    assert_eq!(w.len(), 1);
    assert_eq!(w[0].path, "controls[0]");
    assert!(w[0].message.contains("control 'C-1' is declared but no task lists it"), "{}", w[0]);
    assert!(warnings(&valid(&one_task("    assignee: starter\n    controls: [C-1]\n"))).is_empty());
}

#[test]
fn framework_references_name_the_framework() {
    let src = one_task("    assignee: starter\n    controls: [C-1]\n")
        .replace("{ id: C-1, name: A control }", "{ id: C-1, name: A control, frameworks: [SOC2] }");
    expect(
        &src,
        "controls[0].frameworks[0]",
        "framework reference 'SOC2' must be written FRAMEWORK:REFERENCE",
        "frameworks",
    );
}

// Due dates, reminders and escalations.

#[test]
fn due_after_a_task_names_another_task() {
    let src = one_task("    assignee: starter\n    due: { after: task:ghost, in: 1d }\n");
    expect(
        &src,
        "tasks[0].due.after",
        "task 'a': due counts from task 'ghost', which is not a task of this template",
        "due:",
    );
    let src = one_task("    assignee: starter\n    due: { after: task:a, in: 1d }\n");
    expect(&src, "tasks[0].due.after", "task 'a': due cannot count from the task itself", "due:");
}

#[test]
fn due_after_a_field_needs_a_date_field() {
    let src = two_tasks("    assignee: starter\n    due: { after: field:note, in: 1d }\n");
    expect(
        &src,
        "tasks[1].due.after",
        "due counts from field 'note', which is a text field; it must be a date or datetime field",
        "due:",
    );
    let src = two_tasks("    assignee: starter\n    due: { after: field:ghost, in: 1d }\n");
    expect(&src, "tasks[1].due.after", "due counts from field 'ghost', which does not exist", "due:");
    valid(&two_tasks("    assignee: starter\n    due: { after: field:when, in: 0d }\n"));
}

#[test]
fn business_days_need_days_or_weeks() {
    let src = one_task("    assignee: starter\n    due: { after: run_started, in: 4h, business_days: true }\n");
    expect(&src, "tasks[0].due.business_days", "business_days needs a due duration in days or weeks, not '4h'", "due:");
}

#[test]
fn reminders_and_escalations_need_a_due_date() {
    let src = one_task("    assignee: starter\n    remind: [ { before_due: 1d } ]\n");
    expect(&src, "tasks[0].remind", "task 'a' has reminders but no due date", "remind:");
    let src = one_task("    assignee: starter\n    escalate: [ { overdue_by: 1d, notify: role:boss } ]\n");
    expect(&src, "tasks[0].escalate", "task 'a' has escalations but no due date", "escalate:");
}

#[test]
fn escalation_steps_increase() {
    let src = one_task(
        "    assignee: starter\n    due: { after: run_started, in: 1d }\n    escalate:\n      - { overdue_by: 2d, notify: role:boss }\n      - { overdue_by: 48h, reassign: role:boss }\n",
    );
    expect(
        &src,
        "tasks[0].escalate[1].overdue_by",
        "escalation steps must have increasing overdue_by, but 48h follows 2d",
        "48h",
    );
}

// Field rules.

#[test]
fn text_lengths_are_ordered() {
    let src = one_task(
        "    assignee: starter\n    fields:\n      - { key: t, label: T, type: text, min_length: 10, max_length: 5 }\n",
    );
    expect(
        &src,
        "tasks[0].fields[0].min_length",
        "field 't': min_length (10) is greater than max_length (5)",
        "min_length",
    );
    let src =
        one_task("    assignee: starter\n    fields:\n      - { key: t, label: T, type: textarea, max_length: 0 }\n");
    expect(&src, "tasks[0].fields[0].max_length", "max_length must be at least 1", "max_length");
}

#[test]
fn patterns_compile_and_are_bounded() {
    let src =
        one_task("    assignee: starter\n    fields:\n      - { key: t, label: T, type: text, pattern: \"[a-z\" }\n");
    let d = expect(
        &src,
        "tasks[0].fields[0].pattern",
        "field 't': pattern does not compile: unclosed character class",
        "pattern",
    );
    assert!(!d.message.contains('\n'));
    let src = one_task(
        "    assignee: starter\n    fields:\n      - { key: t, label: T, type: text, pattern: \"(x{1000}){1000}\" }\n",
    );
    expect(&src, "tasks[0].fields[0].pattern", "pattern does not compile", "pattern");
    let long = "a".repeat(MAX_PATTERN_CHARS + 1);
    let src = one_task(&format!(
        "    assignee: starter\n    fields:\n      - {{ key: t, label: T, type: text, pattern: {long} }}\n"
    ));
    expect(&src, "tasks[0].fields[0].pattern", "pattern is 1001 characters long; at most 1000", "pattern");
}

#[test]
fn number_bounds_are_ordered() {
    let src =
        one_task("    assignee: starter\n    fields:\n      - { key: n, label: N, type: number, min: 5, max: 1.5 }\n");
    expect(&src, "tasks[0].fields[0].min", "field 'n': min (5) is greater than max (1.5)", "min: 5");
}

#[test]
fn options_are_not_empty() {
    let src =
        one_task("    assignee: starter\n    fields:\n      - { key: s, label: S, type: multi_choice, options: [] }\n");
    expect(&src, "tasks[0].fields[0].options", "field 's' needs at least one option", "options: []");
}

#[test]
fn defaults_fit_the_field() {
    let cases = [
        (
            "{ key: f, label: F, type: select, options: [a, b], default: c }",
            "field 'f': default must be one of the options (a, b), not \"c\"",
        ),
        ("{ key: f, label: F, type: number, min: 0, default: -1 }", "field 'f': default -1 is less than min 0"),
        (
            "{ key: f, label: F, type: number, decimals: 0, default: 1.5 }",
            "1.5 has more than 0 digits after the decimal point",
        ),
        (
            "{ key: f, label: F, type: text, max_length: 3, default: abcd }",
            "default is 4 characters long, longer than max_length 3",
        ),
        (
            "{ key: f, label: F, type: text, pattern: \"[0-9]+\", default: 12a }",
            "default \"12a\" does not match the pattern",
        ),
        ("{ key: f, label: F, type: checkbox, default: \"no\" }", "default must be true or false, not \"no\""),
        ("{ key: f, label: F, type: date, default: 2025-02-30 }", "default must be a date written like 2025-01-31"),
        (
            "{ key: f, label: F, type: date, not_before: 2025-01-01, default: 2024-12-31 }",
            "default 2024-12-31 is before not_before 2025-01-01",
        ),
        (
            "{ key: f, label: F, type: datetime, default: \"2025-01-01 10:00\" }",
            "must be a date and time with an offset",
        ),
        (
            "{ key: f, label: F, type: multi_choice, options: [a], default: a }",
            "default must be a list of options (a), not \"a\"",
        ),
        (
            "{ key: f, label: F, type: email, allow_domains: [example.com], default: x@other.org }",
            "default \"x@other.org\" is not in allow_domains",
        ),
        ("{ key: f, label: F, type: url, default: example.com }", "must be an http:// or https:// address"),
        ("{ key: f, label: F, type: members, default: ana@example.com }", "members fields cannot have a default"),
        ("{ key: f, label: F, type: file, default: x.pdf }", "file fields cannot have a default"),
    ];
    for (field, fragment) in cases {
        let src = one_task(&format!("    assignee: starter\n    fields:\n      - {field}\n"));
        expect(&src, "tasks[0].fields[0].default", fragment, "key: f");
    }
    let src = one_task(
        "    assignee: starter\n    fields:\n      - key: f\n        label: F\n        type: table\n        columns: [ { key: item, label: Item, type: text, required: true }, { key: qty, label: Qty, type: number } ]\n        default: [ { qty: \"two\", item: pen } ]\n",
    );
    expect(
        &src,
        "tasks[0].fields[0].default",
        "default has \"two\" in column 'qty', which holds number values",
        "default:",
    );
}

#[test]
fn file_extensions_are_lowercase_without_dots() {
    let src = one_task(
        "    assignee: starter\n    fields:\n      - { key: f, label: F, type: file, accept: [pdf, .docx, PNG] }\n",
    );
    expect(
        &src,
        "tasks[0].fields[0].accept[1]",
        "field 'f': accept '.docx' must be a lowercase file extension without the dot",
        "accept",
    );
    expect(&src, "tasks[0].fields[0].accept[2]", "accept 'PNG' must be a lowercase file extension", "accept");
}

#[test]
fn email_domains_are_lowercase_names() {
    let src = one_task(
        "    assignee: starter\n    fields:\n      - { key: e, label: E, type: email, allow_domains: [Example.com], block_domains: [x.org, x.org] }\n",
    );
    expect(
        &src,
        "tasks[0].fields[0].allow_domains[0]",
        "field 'e': 'Example.com' is not a lowercase domain name",
        "allow_domains",
    );
    expect(&src, "tasks[0].fields[0].block_domains[1]", "field 'e' lists domain 'x.org' twice", "allow_domains");
}

#[test]
fn date_bounds_refer_to_date_fields() {
    let src = two_tasks(
        "    assignee: starter\n    fields:\n      - { key: d, label: D, type: date, not_before: field:note }\n",
    );
    expect(
        &src,
        "tasks[1].fields[0].not_before",
        "field 'd': not_before refers to field 'note', which is a text field; it must be a date or datetime field",
        "not_before",
    );
    let src = two_tasks(
        "    assignee: starter\n    fields:\n      - { key: d, label: D, type: datetime, not_after: field:ghost+1d }\n",
    );
    expect(
        &src,
        "tasks[1].fields[0].not_after",
        "not_after refers to field 'ghost', which does not exist",
        "not_after",
    );
    let src =
        two_tasks("    assignee: starter\n    fields:\n      - { key: d, label: D, type: date, not_after: field:d }\n");
    expect(&src, "tasks[1].fields[0].not_after", "not_after cannot refer to the field itself", "not_after");
    let src = two_tasks(
        "    assignee: starter\n    fields:\n      - { key: d, label: D, type: date, not_before: run_started+10d, not_after: run_started+1w }\n",
    );
    expect(
        &src,
        "tasks[1].fields[0].not_before",
        "not_before (run_started+10d) is later than not_after (run_started+7d), so no date fits",
        "not_before",
    );
    valid(&two_tasks(
        "    assignee: starter\n    fields:\n      - { key: d, label: D, type: date, not_before: field:when-1w, not_after: 2030-12-31 }\n",
    ));
}

#[test]
fn table_columns_are_present_and_typed() {
    let src = one_task("    assignee: starter\n    fields:\n      - { key: t, label: T, type: table, columns: [] }\n");
    expect(&src, "tasks[0].fields[0].columns", "field 't' needs at least one column", "columns: []");
    let src = one_task(
        "    assignee: starter\n    fields:\n      - { key: t, label: T, type: table, columns: [ { key: c, label: C, type: select } ] }\n",
    );
    expect(
        &src,
        "tasks[0].fields[0].columns[0].type",
        "field 't': column 'c' has type 'select'; a column is one of text, number, date, checkbox",
        "columns:",
    );
}

// Size limits, checked on templates built in code as the editor would.

fn base() -> attest_template::Template {
    valid(&one_task("    assignee: starter\n    controls: [C-1]\n"))
}

fn text_field(key: String) -> Field {
    Field {
        key,
        label: "Label".into(),
        kind: FieldKind::Text(TextRules::default()),
        required: false,
        help: None,
        default: None,
        show_when: None,
    }
}

#[test]
fn task_count_is_bounded() {
    let mut t = base();
    let task = t.tasks[0].clone();
    t.tasks = (0..=MAX_TASKS)
        .map(|i| {
            let mut task = task.clone();
            task.key = format!("t{i}");
            task
        })
        .collect();
    expect_typed(&t, "tasks", "the template has 501 tasks; at most 500 are allowed");
}

#[test]
fn fields_per_task_are_bounded() {
    let mut t = base();
    t.tasks[0].fields = (0..=MAX_FIELDS_PER_TASK).map(|i| text_field(format!("f{i}"))).collect();
    expect_typed(&t, "tasks[0].fields", "task 'a' has 201 fields; at most 200 are allowed");
}

#[test]
fn options_are_bounded() {
    let mut t = base();
    let mut field = text_field("s".into());
    field.kind = FieldKind::Select(OptionRules { options: (0..=MAX_OPTIONS).map(|i| format!("o{i}")).collect() });
    t.tasks[0].fields.push(field);
    expect_typed(&t, "tasks[0].fields[0].options", "field 's' has 501 options; at most 500 are allowed");
}

#[test]
fn validate_checks_templates_built_in_code() {
    let mut t = base();
    assert!(validate(&t).is_ok());
    t.tasks[0].assignee = Assignee::Role(String::new());
    t.tasks[0].show_when = Some(Condition::Compare { field: "x".into(), op: Op::HasValue, value: None });
    let diags = validate(&t).expect_err("invalid");
    assert_eq!(diags.len(), 2, "{diags:?}");
    // Without a source there is no position.
    assert!(diags.iter().all(|d| d.line.is_none() && d.file.is_none()));
    // Deep conditions built in code are cut off, not recursed into.
    let mut deep = Condition::Compare { field: "x".into(), op: Op::HasValue, value: None };
    for _ in 0..10_000 {
        deep = Condition::Not { not: Box::new(deep) };
    }
    t.tasks[0].show_when = Some(deep);
    expect_typed(
        &t,
        "tasks[0].show_when.not.not.not.not.not.not.not.not.not.not.not.not.not.not.not.not",
        "more than 16 levels",
    );
}

#[test]
fn all_problems_are_reported_in_document_order() {
    let src = doc("  - key: a
    name: A
    assignee: role:ghost
    fields:
      - { key: n, label: N, type: number, min: 3, max: 1 }
  - key: b
    name: \"\"
    type: approval
    approves: [zz]
    assignee: role:boss
");
    let diags = errors(&src);
    let paths: Vec<&str> = diags.iter().map(|d| d.path.as_str()).collect();
    assert_eq!(paths, ["tasks[0].assignee", "tasks[0].fields[0].min", "tasks[1].name", "tasks[1].approves[0]"]);
    let lines: Vec<u32> = diags.iter().filter_map(|d| d.line).collect();
    assert!(lines.windows(2).all(|w| w[0] <= w[1]), "{lines:?}");
    assert!(
        diags[0].to_string().starts_with("t.yaml:10:15: tasks[0].assignee: task 'a': assignee 'role:ghost'"),
        "{}",
        diags[0]
    );
}

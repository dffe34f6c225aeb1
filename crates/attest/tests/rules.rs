//! Every rule of the spec's "Rules the engine enforces", observed through the
//! real binary: the refusal's message on stderr, its `--json` body (`rule`,
//! `task`, `field`), the exit code, and a run that is exactly as it was.

mod common;

use common::*;
use serde_json::Value;

/// A small template that exercises every rule: a stop task with required
/// fields and a file, a conditional task and field, a task for a role, and an
/// approval of two tasks. The owner is a role, so cancelling can be tested.
const RULES: &str = r#"
format: attest/v1
key: rules
name: Rules under test
owner: role:ops-lead
roles: [maker, checker, ops-lead]
tasks:
  - key: request
    name: Request
    assignee: starter
    stop: true
    fields:
      - { key: title, label: Title, type: text, required: true, max_length: 20 }
      - { key: amount, label: Amount, type: number, required: true, min: 0, max: 1000000 }
      - { key: kind, label: Kind, type: select, options: [normal, special] }
      - { key: contract, label: Contract, type: file, required: true, accept: [pdf] }
      - { key: note, label: Note, type: text, show_when: { field: kind, op: is, value: special } }
  - key: special_review
    name: Special review
    assignee: role:checker
    show_when: { field: kind, op: is, value: special }
    fields:
      - { key: verdict, label: Verdict, type: select, options: [fine, bad], required: true }
  - key: work
    name: Do the work
    assignee: role:maker
    fields:
      - { key: done_on, label: Done on, type: date, required: true }
  - key: approval
    name: Approve
    type: approval
    approves: [request, work]
    assignee: role:checker
"#;

const STARTER: &str = "rita@example.com";
const MAKER: &str = "mo@example.com";
const CHECKER: &str = "cat@example.com";
const BOTH: &str = "bo@example.com";
const OWNER: &str = "olga@example.com";
const PROCESS_OWNER: &str = "pia@example.com";
const NOBODY: &str = "nina@example.com";

fn rules_ws() -> Ws {
    let ws = Ws::new();
    ws.user(STARTER, &[]);
    ws.user(MAKER, &["maker"]);
    ws.user(CHECKER, &["checker"]);
    ws.user(BOTH, &["maker", "checker"]);
    ws.user(OWNER, &["ops-lead"]);
    ws.user(PROCESS_OWNER, &["process-owner"]);
    ws.user(NOBODY, &[]);
    let p = ws.publish_text("rules.yaml", RULES);
    assert_eq!(p["version"], 1);
    ws
}

/// A run whose request is complete (title, amount, contract), by [`STARTER`].
fn run_with_request_done(ws: &Ws) -> String {
    let run = ws.start("rules", STARTER);
    ws.attach(&run, "request", "contract", "contract.pdf", STARTER);
    ws.json(&["task", "complete", &run, "request", "--as", STARTER, "title=Laptops", "amount=1200"]);
    run
}

/// Runs a command that must be refused: checks the exit code, the text
/// message on stderr, the JSON body and that `run show` did not change.
/// Returns the JSON error body.
#[track_caller]
fn refused(ws: &Ws, run: &str, args: &[&str], code: i32, rule: &str, task: Option<&str>, field: Option<&str>) -> Value {
    let before = ws.show(run);
    let text = ws.cmd(args).expect_code(code);
    assert!(
        text.stderr.starts_with("refused: ") && text.stderr.contains(&format!("[rule: {rule}]")),
        "attest {args:?}: stderr should be a refusal under rule {rule}:\n{}",
        text.stderr
    );
    assert!(text.stdout.is_empty(), "a refusal prints nothing on stdout: {}", text.stdout);
    let body = ws.cmd_json(args).expect_code(code).error_json();
    assert_eq!(body["error"], "refused", "{body}");
    assert_eq!(body["rule"], rule, "{body}");
    assert_eq!(body["task"].as_str(), task, "task named by the refusal: {body}");
    assert_eq!(body["field"].as_str(), field, "field named by the refusal: {body}");
    let message = body["message"].as_str().expect("message");
    assert!(message.starts_with("refused: "), "{message}");
    assert!(text.stderr.contains(message), "text and JSON give the same message:\n{}\n{message}", text.stderr);
    let after = ws.show(run);
    assert_eq!(before, after, "a refused command must leave the run unchanged");
    body
}

fn message(body: &Value) -> &str {
    body["message"].as_str().expect("message")
}

// ----- rule 1: required fields, valid values, stop tasks, the actor -----

#[test]
fn required_field_missing_is_refused_naming_the_field_and_task() {
    let ws = rules_ws();
    let run = ws.start("rules", STARTER);
    let body = refused(
        &ws,
        &run,
        &["task", "complete", &run, "request", "--as", STARTER],
        1,
        "required-field",
        Some("request"),
        Some("title"),
    );
    assert_eq!(message(&body), "refused: field 'title' on task 'request' is required");
    // With the text fields given, the missing file is named, and the values
    // given with the refused command are not kept.
    let body = refused(
        &ws,
        &run,
        &["task", "complete", &run, "request", "--as", STARTER, "title=Laptops", "amount=5"],
        1,
        "required-field",
        Some("request"),
        Some("contract"),
    );
    assert_eq!(message(&body), "refused: field 'contract' on task 'request' is required");
    assert_eq!(ws.show(&run)["values"].as_object().map(|o| o.len()), Some(0));
}

#[test]
fn vendor_onboarding_contract_is_required() {
    let ws = Ws::new();
    ws.user(STARTER, &["requester"]);
    ws.publish(std::path::Path::new(example!("vendor-onboarding")));
    let run = ws.start("vendor-onboarding", STARTER);
    let body = refused(
        &ws,
        &run,
        &["task", "complete", &run, "request", "--as", STARTER, "vendor_name=Acme GmbH", "annual_spend=25000"],
        1,
        "required-field",
        Some("request"),
        Some("contract"),
    );
    assert_eq!(message(&body), "refused: field 'contract' on task 'request' is required");
    let text =
        ws.cmd(&["task", "complete", &run, "request", "--as", STARTER, "vendor_name=Acme GmbH", "annual_spend=25000"]);
    assert!(text.stderr.contains("refused: field 'contract' on task 'request' is required"), "{}", text.stderr);
}

#[test]
fn invalid_values_are_refused_as_bad_input_with_the_field() {
    let ws = rules_ws();
    let run = ws.start("rules", STARTER);
    let cases: [(&str, &str); 6] = [
        ("amount=lots", "amount"),
        ("amount=-1", "amount"),
        ("amount:=\"x\"", "amount"),
        ("title=this title is far longer than twenty characters", "title"),
        ("kind=unusual", "kind"),
        ("kind:=[\"normal\"]", "kind"),
    ];
    for (value, field) in cases {
        let body = refused(
            &ws,
            &run,
            &["task", "set", &run, "request", "--as", STARTER, value],
            2,
            "invalid-value",
            Some("request"),
            Some(field),
        );
        assert!(message(&body).contains(&format!("field '{field}' on task 'request'")), "{body}");
    }
    // A file field is filled by attaching, and only with an accepted extension.
    refused(
        &ws,
        &run,
        &["task", "set", &run, "request", "--as", STARTER, "contract=x.pdf"],
        2,
        "invalid-value",
        Some("request"),
        Some("contract"),
    );
    let txt = ws.write("contract.txt", "not a pdf");
    refused(
        &ws,
        &run,
        &["task", "attach", &run, "request", path_str(&txt), "--field", "contract", "--as", STARTER],
        2,
        "invalid-value",
        Some("request"),
        Some("contract"),
    );
    // A refused upload leaves the ledger verifiable.
    ws.assert_replay_and_verify(&[&run]);
}

#[test]
fn unknown_task_unknown_field_and_field_of_another_task_are_bad_input() {
    let ws = rules_ws();
    let run = ws.start("rules", STARTER);
    let body =
        refused(&ws, &run, &["task", "complete", &run, "nope", "--as", STARTER], 2, "unknown-task", Some("nope"), None);
    assert!(message(&body).contains("task 'nope' does not exist"), "{body}");
    refused(
        &ws,
        &run,
        &["task", "set", &run, "request", "--as", STARTER, "ghost=1"],
        2,
        "unknown-field",
        Some("request"),
        Some("ghost"),
    );
    refused(
        &ws,
        &run,
        &["task", "set", &run, "request", "--as", STARTER, "done_on=2025-03-03"],
        2,
        "field-not-on-task",
        Some("request"),
        Some("done_on"),
    );
}

#[test]
fn stop_task_blocks_every_later_task() {
    let ws = rules_ws();
    let run = ws.start("rules", STARTER);
    let body = refused(
        &ws,
        &run,
        &["task", "complete", &run, "work", "--as", MAKER, "done_on=2025-03-03"],
        1,
        "stop-task",
        Some("work"),
        None,
    );
    assert_eq!(message(&body), "refused: task 'work' waits for stop task 'request' to be completed first");
    assert_eq!(task(&ws.show(&run), "work")["waits_for"], "request");
    ws.attach(&run, "request", "contract", "contract.pdf", STARTER);
    ws.json(&["task", "complete", &run, "request", "--as", STARTER, "title=Laptops", "amount=1200"]);
    ws.json(&["task", "complete", &run, "work", "--as", MAKER, "done_on=2025-03-03"]);
    assert_eq!(task_status(&ws.show(&run), "work"), "done");
}

#[test]
fn hidden_task_cannot_be_completed_and_appears_when_its_condition_holds() {
    let ws = rules_ws();
    let run = ws.start("rules", STARTER);
    assert_eq!(task_status(&ws.show(&run), "special_review"), "hidden");
    // Hidden: refused even for its assignee, and the request's hidden field too.
    let body = refused(
        &ws,
        &run,
        &["task", "complete", &run, "special_review", "--as", CHECKER, "verdict=fine"],
        1,
        "hidden-task",
        Some("special_review"),
        None,
    );
    assert!(message(&body).contains("hidden by its condition"), "{body}");
    refused(
        &ws,
        &run,
        &["task", "set", &run, "request", "--as", STARTER, "note=hello"],
        1,
        "hidden-field",
        Some("request"),
        Some("note"),
    );

    // Changing the value shows the task (and the field); changing it back hides it again.
    ws.json(&["task", "set", &run, "request", "--as", STARTER, "kind=special"]);
    let show = ws.show(&run);
    assert_eq!(task_status(&show, "special_review"), "open");
    assert_eq!(task(&show, "special_review")["assignees"], serde_json::json!(["role:checker"]));
    ws.json(&["task", "set", &run, "request", "--as", STARTER, "note=hello"]);
    ws.json(&["task", "set", &run, "request", "--as", STARTER, "kind=normal"]);
    assert_eq!(task_status(&ws.show(&run), "special_review"), "hidden");
    ws.json(&["task", "set", &run, "request", "--as", STARTER, "kind=special"]);
    assert_eq!(task_status(&ws.show(&run), "special_review"), "open");
}

#[test]
fn only_an_assignee_may_act() {
    let ws = rules_ws();
    let run = ws.start("rules", STARTER);
    let body = refused(
        &ws,
        &run,
        &["task", "set", &run, "request", "--as", MAKER, "title=Mine"],
        1,
        "not-assignee",
        Some("request"),
        None,
    );
    assert!(message(&body).contains("mo@example.com is not an assignee of task 'request'"), "{body}");
    let run = run_with_request_done(&ws);
    refused(
        &ws,
        &run,
        &["task", "complete", &run, "work", "--as", CHECKER, "done_on=2025-03-03"],
        1,
        "not-assignee",
        Some("work"),
        None,
    );
    ws.json(&["task", "complete", &run, "work", "--as", MAKER, "done_on=2025-03-03"]);
    refused(
        &ws,
        &run,
        &["task", "approve", &run, "approval", "--as", MAKER],
        1,
        "not-assignee",
        Some("approval"),
        None,
    );
}

#[test]
fn admin_override_is_recorded_as_overridden() {
    let ws = rules_ws();
    let run = ws.start("rules", STARTER);
    ws.attach(&run, "request", "contract", "contract.pdf", ADMIN);
    ws.json(&["task", "complete", &run, "request", "--as", ADMIN, "title=By admin", "amount=1"]);
    ws.json(&["task", "complete", &run, "work", "--as", MAKER, "done_on=2025-03-03"]);
    let show = ws.show(&run);
    let completed = events(&show, "task_completed", None);
    assert_eq!(completed.len(), 2, "{show}");
    let request = events(&show, "task_completed", Some("request"));
    assert_eq!(request.len(), 1);
    assert_eq!(request[0]["overridden"], true, "the admin's completion is an override: {show}");
    let work = events(&show, "task_completed", Some("work"));
    assert_ne!(work[0]["overridden"], true, "the assignee's completion is no override: {show}");
    assert_eq!(task(&show, "request")["completed_by"], ADMIN);
    let by: Vec<&str> = show["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["event"]["type"] == "task_completed" && e["event"]["task"] == "request")
        .map(|e| e["by"].as_str().expect("by"))
        .collect();
    assert_eq!(by, [ADMIN]);
    // The override never lets the admin approve the work they did themselves.
    let body = refused(
        &ws,
        &run,
        &["task", "approve", &run, "approval", "--as", ADMIN],
        1,
        "separation-of-duties",
        Some("approval"),
        None,
    );
    assert!(message(&body).contains("'request'"), "{body}");
    // An admin approving others' work is an override too.
    let run2 = run_with_request_done(&ws);
    ws.json(&["task", "complete", &run2, "work", "--as", MAKER, "done_on=2025-03-03"]);
    ws.json(&["task", "approve", &run2, "approval", "--as", ADMIN]);
    let show2 = ws.show(&run2);
    let approved = events(&show2, "task_approved", Some("approval"));
    assert_eq!(approved.len(), 1);
    assert_eq!(approved[0]["overridden"], true, "{show2}");
    assert_eq!(show2["status"], "completed");
}

// ----- rule 2: approvals -----

#[test]
fn approval_waits_for_its_subjects() {
    let ws = rules_ws();
    let run = run_with_request_done(&ws);
    let body = refused(
        &ws,
        &run,
        &["task", "approve", &run, "approval", "--as", CHECKER],
        1,
        "approval-waits",
        Some("approval"),
        None,
    );
    assert_eq!(message(&body), "refused: approval 'approval' waits for task 'work' to be completed");
    refused(
        &ws,
        &run,
        &["task", "reject", &run, "approval", "--as", CHECKER, "--comment", "no"],
        1,
        "approval-waits",
        Some("approval"),
        None,
    );
}

#[test]
fn approval_and_plain_tasks_take_their_own_commands() {
    let ws = rules_ws();
    let run = run_with_request_done(&ws);
    ws.json(&["task", "complete", &run, "work", "--as", MAKER, "done_on=2025-03-03"]);
    refused(
        &ws,
        &run,
        &["task", "complete", &run, "approval", "--as", CHECKER],
        1,
        "approval-task",
        Some("approval"),
        None,
    );
    refused(&ws, &run, &["task", "approve", &run, "work", "--as", MAKER], 1, "not-approval-task", Some("work"), None);
}

#[test]
fn self_approval_is_refused_by_separation_of_duties() {
    let ws = rules_ws();
    let run = run_with_request_done(&ws);
    // BOTH holds maker and checker: completing the work bars them from approving it.
    ws.json(&["task", "complete", &run, "work", "--as", BOTH, "done_on=2025-03-03"]);
    let body = refused(
        &ws,
        &run,
        &["task", "approve", &run, "approval", "--as", BOTH],
        1,
        "separation-of-duties",
        Some("approval"),
        None,
    );
    assert_eq!(
        message(&body),
        "refused: separation of duties: bo@example.com completed task 'work' and cannot decide approval 'approval'"
    );
    refused(
        &ws,
        &run,
        &["task", "reject", &run, "approval", "--as", BOTH, "--comment", "redo"],
        1,
        "separation-of-duties",
        Some("approval"),
        None,
    );
    ws.json(&["task", "approve", &run, "approval", "--as", CHECKER]);
    assert_eq!(ws.status(&run), "completed");
}

#[test]
fn reject_needs_a_comment() {
    let ws = rules_ws();
    let run = run_with_request_done(&ws);
    ws.json(&["task", "complete", &run, "work", "--as", MAKER, "done_on=2025-03-03"]);
    for comment in ["", "   "] {
        let body = refused(
            &ws,
            &run,
            &["task", "reject", &run, "approval", "--as", CHECKER, "--comment", comment],
            1,
            "comment-required",
            Some("approval"),
            None,
        );
        assert!(message(&body).contains("needs a comment"), "{body}");
    }
    // Without --comment at all, the command line itself is incomplete.
    let out = ws.cmd(&["task", "reject", &run, "approval", "--as", CHECKER]).expect_code(2);
    assert!(out.stderr.contains("--comment"), "{}", out.stderr);
}

#[test]
fn reject_sends_subjects_to_rework_keeping_values_and_counting_rounds() {
    let ws = rules_ws();
    let run = run_with_request_done(&ws);
    ws.json(&["task", "complete", &run, "work", "--as", MAKER, "done_on=2025-03-03"]);
    let values_before = ws.show(&run)["values"].clone();
    assert_eq!(values_before["title"], "Laptops");

    let out = ws.json(&["task", "reject", &run, "approval", "--as", CHECKER, "--comment", "Wrong amount"]);
    assert_eq!(out["status"], "open");
    let show = ws.show(&run);
    assert_eq!(show["rework_count"], 1);
    assert_eq!(task_status(&show, "request"), "rework");
    assert_eq!(task_status(&show, "work"), "rework");
    assert_eq!(task(&show, "request")["rework_count"], 1);
    assert_eq!(task(&show, "work")["rework_count"], 1);
    assert_eq!(task_status(&show, "approval"), "open");
    assert_ne!(task(&show, "approval")["decision"], "approved", "the approval starts over: {show}");
    assert_eq!(show["values"], values_before, "rework keeps the values");
    let rejected = events(&show, "task_rejected", Some("approval"));
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0]["comment"], "Wrong amount");
    assert_eq!(rejected[0]["reopened"], serde_json::json!(["request", "work"]));

    // The approval cannot be decided again until the rework is done; the stop
    // task gates the work again.
    refused(&ws, &run, &["task", "approve", &run, "approval", "--as", CHECKER], 1, "stop-task", Some("approval"), None);
    refused(&ws, &run, &["task", "complete", &run, "work", "--as", MAKER], 1, "stop-task", Some("work"), None);
    // Values were kept, so completing again needs no values.
    ws.json(&["task", "complete", &run, "request", "--as", STARTER, "amount=1100"]);
    ws.json(&["task", "complete", &run, "work", "--as", MAKER]);
    // A second round is counted too.
    ws.json(&["task", "reject", &run, "approval", "--as", CHECKER, "--comment", "Still wrong"]);
    assert_eq!(ws.show(&run)["rework_count"], 2);
    ws.json(&["task", "complete", &run, "request", "--as", STARTER]);
    ws.json(&["task", "complete", &run, "work", "--as", MAKER]);
    ws.json(&["task", "approve", &run, "approval", "--as", CHECKER, "--comment", "Fine now"]);
    let show = ws.show(&run);
    assert_eq!(show["status"], "completed");
    assert_eq!(show["rework_count"], 2);
    assert_eq!(task(&show, "request")["rework_count"], 2);
    assert_eq!(show["values"]["amount"], 1100);
    assert_eq!(show["values"]["title"], "Laptops");
    assert_eq!(task(&show, "approval")["decision"], "approved");
    ws.assert_replay_and_verify(&[&run]);
}

// ----- rule 3: completing and cancelling runs -----

#[test]
fn run_completes_when_every_visible_task_is_done() {
    let ws = rules_ws();
    let run = run_with_request_done(&ws);
    assert_eq!(ws.status(&run), "open");
    ws.json(&["task", "complete", &run, "work", "--as", MAKER, "done_on=2025-03-03"]);
    assert_eq!(ws.status(&run), "open");
    let out = ws.json(&["task", "approve", &run, "approval", "--as", CHECKER]);
    assert_eq!(out["status"], "completed");
    let show = ws.show(&run);
    assert_eq!(show["status"], "completed");
    assert!(show["finished_at"].is_string(), "{show}");
    // The hidden task was not needed.
    assert_eq!(task_status(&show, "special_review"), "hidden");
    assert_eq!(events(&show, "run_completed", None).len(), 1);

    // With the conditional task visible, the run waits for it as well.
    let run2 = ws.start("rules", STARTER);
    ws.attach(&run2, "request", "contract", "contract.pdf", STARTER);
    ws.json(&["task", "complete", &run2, "request", "--as", STARTER, "title=T", "amount=1", "kind=special"]);
    ws.json(&["task", "complete", &run2, "work", "--as", MAKER, "done_on=2025-03-03"]);
    ws.json(&["task", "approve", &run2, "approval", "--as", CHECKER]);
    assert_eq!(ws.status(&run2), "open", "special_review is visible and open");
    ws.json(&["task", "complete", &run2, "special_review", "--as", CHECKER, "verdict=fine"]);
    assert_eq!(ws.status(&run2), "completed");
    let listed = ws.json(&["run", "list", "--status", "completed"]);
    assert_eq!(listed.as_array().map(Vec::len), Some(2));
    ws.assert_replay_and_verify(&[&run, &run2]);
}

#[test]
fn cancel_needs_a_reason() {
    let ws = rules_ws();
    let run = ws.start("rules", STARTER);
    for reason in ["", "  "] {
        let body = refused(
            &ws,
            &run,
            &["run", "cancel", &run, "--as", ADMIN, "--reason", reason],
            1,
            "reason-required",
            None,
            None,
        );
        assert!(message(&body).contains("needs a reason"), "{body}");
    }
}

#[test]
fn cancel_needs_the_process_owner_or_an_admin() {
    let ws = rules_ws();
    // Neither the starter, an assignee, nor someone without roles may cancel.
    let run = ws.start("rules", STARTER);
    for who in [STARTER, MAKER, CHECKER, NOBODY] {
        let body = refused(
            &ws,
            &run,
            &["run", "cancel", &run, "--as", who, "--reason", "not needed"],
            1,
            "not-permitted",
            None,
            None,
        );
        assert!(message(&body).contains("only the process owner or an admin"), "{body}");
    }
    // The template owner's role, the process-owner role and the admin may.
    for who in [OWNER, PROCESS_OWNER, ADMIN] {
        let run = ws.start("rules", STARTER);
        let out = ws.json(&["run", "cancel", &run, "--as", who, "--reason", "Duplicate request"]);
        assert_eq!(out["status"], "cancelled");
        let show = ws.show(&run);
        assert_eq!(show["status"], "cancelled");
        assert_eq!(show["cancel_reason"], "Duplicate request");
        let cancelled: Vec<&Value> = show["events"]
            .as_array()
            .expect("events")
            .iter()
            .filter(|e| e["event"]["type"] == "run_cancelled")
            .collect();
        assert_eq!(cancelled.len(), 1);
        assert_eq!(cancelled[0]["by"], who);
    }
    assert_eq!(ws.json(&["run", "list", "--status", "cancelled"]).as_array().map(Vec::len), Some(3));
    assert_eq!(ws.json(&["run", "list", "--status", "open"]).as_array().map(Vec::len), Some(1));
}

#[test]
fn commands_on_completed_or_cancelled_runs_are_refused() {
    let ws = rules_ws();
    let done = run_with_request_done(&ws);
    ws.json(&["task", "complete", &done, "work", "--as", MAKER, "done_on=2025-03-03"]);
    ws.json(&["task", "approve", &done, "approval", "--as", CHECKER]);
    assert_eq!(ws.status(&done), "completed");
    let cancelled = run_with_request_done(&ws);
    ws.json(&["run", "cancel", &cancelled, "--as", ADMIN, "--reason", "Vendor withdrew"]);
    assert_eq!(ws.status(&cancelled), "cancelled");

    let pdf = ws.write("late.pdf", "late");
    for (run, status) in [(&done, "completed"), (&cancelled, "cancelled")] {
        let commands: Vec<Vec<&str>> = vec![
            vec!["task", "set", run, "request", "--as", STARTER, "title=Late"],
            vec!["task", "complete", run, "work", "--as", MAKER, "done_on=2025-03-03"],
            vec!["task", "approve", run, "approval", "--as", CHECKER],
            vec!["task", "reject", run, "approval", "--as", CHECKER, "--comment", "late"],
            vec!["task", "comment", run, "request", "--as", STARTER, "a late remark"],
            vec!["task", "attach", run, "request", path_str(&pdf), "--field", "contract", "--as", STARTER],
            vec!["run", "cancel", run, "--as", ADMIN, "--reason", "again"],
        ];
        for args in &commands {
            let body = refused(&ws, run, args, 1, "run-not-open", None, None);
            assert_eq!(message(&body), format!("refused: the run is {status}"), "{args:?}");
        }
    }
    ws.assert_replay_and_verify(&[&done, &cancelled]);
}

#[test]
fn completed_task_is_locked_until_sent_back() {
    let ws = rules_ws();
    let run = run_with_request_done(&ws);
    let body = refused(
        &ws,
        &run,
        &["task", "complete", &run, "request", "--as", STARTER],
        1,
        "task-locked",
        Some("request"),
        None,
    );
    assert!(message(&body).contains("already completed"), "{body}");
    refused(
        &ws,
        &run,
        &["task", "set", &run, "request", "--as", STARTER, "title=Changed"],
        1,
        "task-locked",
        Some("request"),
        None,
    );
    ws.json(&["task", "complete", &run, "work", "--as", MAKER, "done_on=2025-03-03"]);
    ws.json(&["task", "approve", &run, "approval", "--as", CHECKER]);
}

// ----- rule 5: accepted commands are events; state is their fold -----

#[test]
fn every_accepted_command_is_an_event_and_replays_to_the_state() {
    let ws = rules_ws();
    let run = ws.start("rules", STARTER);
    let count = |ws: &Ws| ws.show(&run)["events"].as_array().map(Vec::len).expect("events");
    assert_eq!(count(&ws), 1);
    ws.json(&["task", "set", &run, "request", "--as", STARTER, "title=T"]);
    assert_eq!(count(&ws), 2);
    // Setting the same value again changes nothing and records nothing.
    ws.json(&["task", "set", &run, "request", "--as", STARTER, "title=T"]);
    assert_eq!(count(&ws), 2);
    ws.json(&["task", "comment", &run, "request", "--as", MAKER, "please hurry"]);
    assert_eq!(count(&ws), 3);
    let show = ws.show(&run);
    let seqs: Vec<u64> =
        show["events"].as_array().expect("events").iter().map(|e| e["seq"].as_u64().expect("seq")).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "ledger positions increase: {seqs:?}");
    ws.assert_replay_and_verify(&[&run]);
}

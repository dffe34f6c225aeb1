//! Service tasks (`type: http`): Attest completes them with the values of its
//! call once every earlier task is done, or records that the call failed; a
//! person can then retry the call or complete the task by hand.
#![allow(clippy::unwrap_used)]

use attest_engine::view::{TaskStatus, task_views};
use attest_engine::{Actor, Command, CompiledTemplate, Rule, RunState, Values, due_service_tasks, execute};
use jiff::Timestamp;
use serde_json::json;

const TEMPLATE: &str = r#"
format: attest/v1
key: vendor-check
name: Vendor check
roles: [buyer]
tasks:
  - key: request
    name: Request
    assignee: starter
    fields:
      - { key: vendor, label: Vendor, type: text, required: true }
  - key: lookup
    name: Look the vendor up in the ERP
    type: http
    assignee: role:buyer
    http:
      url: https://erp.example.com/vendors
      body: { name: "{{vendor}}" }
      response: { vendor_id: /id }
    fields:
      - { key: vendor_id, label: Vendor id, type: text, required: true }
  - key: order
    name: Order
    assignee: role:buyer
"#;

fn compiled() -> CompiledTemplate {
    let t = attest_template::parse(TEMPLATE, attest_template::SourceFormat::Yaml, None).unwrap();
    CompiledTemplate::new(t, 1, "sha256:test".into()).unwrap()
}

fn now() -> Timestamp {
    "2026-03-02T09:00:00Z".parse().unwrap()
}

fn rita() -> Actor {
    Actor::person("rita@example.com", vec![], false)
}

fn buyer() -> Actor {
    Actor::person("bob@example.com", vec!["buyer".into()], false)
}

fn run(t: &CompiledTemplate, request_done: bool) -> RunState {
    let start = Command::Start { run: "r1".into(), name: "Acme".into(), due_at: None };
    let (_, state) = execute(t, None, &start, &rita(), now()).unwrap();
    if !request_done {
        return state;
    }
    let values: Values = [("vendor".to_string(), json!("Acme GmbH"))].into();
    execute(t, Some(&state), &Command::Complete { task: "request".into(), values }, &rita(), now()).unwrap().1
}

fn service_values() -> Values {
    [("vendor_id".to_string(), json!("V-1001"))].into()
}

fn status(t: &CompiledTemplate, s: &RunState, key: &str) -> TaskStatus {
    task_views(t, s, now(), &jiff::tz::TimeZone::UTC).into_iter().find(|v| v.key == key).unwrap().status
}

#[test]
fn attest_completes_a_service_task_only_after_every_earlier_task() {
    let t = compiled();
    let early = run(&t, false);
    assert!(due_service_tasks(&t, &early).is_empty(), "the call waits for the request");
    let complete = Command::Complete { task: "lookup".into(), values: service_values() };
    let refused = execute(&t, Some(&early), &complete, &Actor::system(), now()).unwrap_err();
    assert_eq!(refused.rule, Rule::ServiceWaits);

    let ready = run(&t, true);
    assert_eq!(due_service_tasks(&t, &ready), [1]);
    assert_eq!(status(&t, &ready, "lookup"), TaskStatus::Automatic, "not in anyone's inbox while Attest works it");
    let (events, done) = execute(&t, Some(&ready), &complete, &Actor::system(), now()).unwrap();
    let types: Vec<_> = events.iter().map(|e| e.body.type_name()).collect();
    assert_eq!(types, ["fields_set", "task_completed"]);
    assert!(events.iter().all(|e| e.by == Actor::system()));
    assert_eq!(done.values["vendor_id"], "V-1001");
    assert!(due_service_tasks(&t, &done).is_empty());
}

#[test]
fn attest_may_not_work_ordinary_tasks() {
    let t = compiled();
    let s = run(&t, true);
    let refused = execute(
        &t,
        Some(&s),
        &Command::Complete { task: "order".into(), values: Values::new() },
        &Actor::system(),
        now(),
    )
    .unwrap_err();
    assert_eq!(refused.rule, Rule::NotAssignee);
}

#[test]
fn a_failed_call_shows_its_error_and_goes_to_the_assignee() {
    let t = compiled();
    let s = run(&t, true);
    let fail = Command::FailService { task: "lookup".into(), error: "the ERP answered 503 three times".into() };
    let refused = execute(&t, Some(&s), &fail, &buyer(), now()).unwrap_err();
    assert_eq!(refused.rule, Rule::NotPermitted, "only Attest records a failed call");
    let (_, failed) = execute(&t, Some(&s), &fail, &Actor::system(), now()).unwrap();
    let view =
        task_views(&t, &failed, now(), &jiff::tz::TimeZone::UTC).into_iter().find(|v| v.key == "lookup").unwrap();
    assert_eq!(view.status, TaskStatus::Open);
    assert_eq!(view.service_error.as_deref(), Some("the ERP answered 503 three times"));
    assert_eq!(view.assignees, ["role:buyer"]);
    assert!(due_service_tasks(&t, &failed).is_empty(), "no more calls until someone retries");
    let again = execute(&t, Some(&failed), &fail, &Actor::system(), now()).unwrap_err();
    assert_eq!(again.rule, Rule::TaskLocked);
}

#[test]
fn the_assignee_retries_a_failed_call() {
    let t = compiled();
    let s = run(&t, true);
    let retry = Command::RetryService { task: "lookup".into() };
    assert_eq!(execute(&t, Some(&s), &retry, &buyer(), now()).unwrap_err().rule, Rule::NotServiceTask);
    let fail = Command::FailService { task: "lookup".into(), error: "timed out".into() };
    let (_, failed) = execute(&t, Some(&s), &fail, &Actor::system(), now()).unwrap();
    assert_eq!(execute(&t, Some(&failed), &retry, &rita(), now()).unwrap_err().rule, Rule::NotAssignee);
    let not_service = Command::RetryService { task: "order".into() };
    assert_eq!(execute(&t, Some(&failed), &not_service, &buyer(), now()).unwrap_err().rule, Rule::NotServiceTask);
    let (events, retried) = execute(&t, Some(&failed), &retry, &buyer(), now()).unwrap();
    assert_eq!(events[0].body.type_name(), "service_retried");
    assert_eq!(due_service_tasks(&t, &retried), [1], "the call is due again");
    assert_eq!(status(&t, &retried, "lookup"), TaskStatus::Automatic);
}

#[test]
fn the_assignee_takes_over_by_hand() {
    let t = compiled();
    let s = run(&t, true);
    let fail = Command::FailService { task: "lookup".into(), error: "could not connect".into() };
    let (_, failed) = execute(&t, Some(&s), &fail, &Actor::system(), now()).unwrap();
    let by_hand = Command::Complete { task: "lookup".into(), values: service_values() };
    let (_, done) = execute(&t, Some(&failed), &by_hand, &buyer(), now()).unwrap();
    let lookup = done.task("lookup").unwrap();
    assert!(lookup.done);
    assert_eq!(lookup.completed_by.as_deref(), Some("bob@example.com"));
    assert!(lookup.service_error.is_none());
    // The task's own rules still hold for a person: its required field.
    let empty = Command::Complete { task: "lookup".into(), values: Values::new() };
    assert_eq!(execute(&t, Some(&failed), &empty, &buyer(), now()).unwrap_err().rule, Rule::RequiredField);
}

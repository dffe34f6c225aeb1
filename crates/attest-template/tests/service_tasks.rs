//! Service tasks (`type: http`): the call's shape, its placeholders and its
//! response mapping, each refused with its path and line.
#![allow(clippy::unwrap_used)]

mod common;

use attest_template::{HttpMethod, TaskType};
use common::{doc, expect, valid};

/// A request task with two fields, then the service task `rest`.
fn with_service(rest: &str) -> String {
    doc(&format!(
        "  - key: request
    name: Request
    assignee: starter
    fields:
      - {{ key: vendor, label: Vendor, type: text }}
      - {{ key: amount, label: Amount, type: number }}
  - key: lookup
    name: Look the vendor up
    assignee: starter
{rest}"
    ))
}

#[test]
fn a_service_task_reads_back_with_its_call() {
    let src = with_service(
        "    type: http
    http:
      url: https://erp.example.com/vendors?name={{vendor}}
      body: { name: \"{{vendor}}\", spend: \"{{amount}}\", note: \"vendor {{vendor}}\" }
      response: { vendor_id: /id }
      retries: 2
      timeout_seconds: 5
    fields:
      - { key: vendor_id, label: Vendor id, type: text }
",
    );
    let t = valid(&src);
    let task = &t.tasks[1];
    assert_eq!(task.task_type, TaskType::Http);
    let call = task.http.as_ref().unwrap();
    assert_eq!(call.method, HttpMethod::Post, "POST is the default method");
    assert_eq!(call.retries, 2);
    assert_eq!(call.placeholders(), ["vendor", "amount"]);
    // The stored JSON parses again as the same template.
    let json = serde_json::to_string(&t).unwrap();
    let again = attest_template::parse(&json, attest_template::SourceFormat::Json, None).unwrap();
    assert_eq!(again, t);
}

#[test]
fn a_service_task_needs_its_call_and_only_it_may_have_one() {
    let src = with_service("    type: http\n");
    expect(&src, "tasks[1].http", "(type: http) needs an `http` call", "key: lookup");
    let src = with_service("    http: { url: https://example.com/ }\n");
    expect(&src, "tasks[1].http", "is not a service task; add `type: http`", "http: { url");
}

#[test]
fn the_url_must_be_http() {
    let src = with_service("    type: http\n    http: { url: ftp://example.com/x }\n");
    expect(&src, "tasks[1].http.url", "must be an http:// or https:// URL", "http: { url");
}

#[test]
fn placeholders_name_earlier_fields() {
    let src = with_service("    type: http\n    http: { url: \"https://example.com/{{nope}}\" }\n");
    expect(&src, "tasks[1].http", "placeholder '{{nope}}' names no field", "http: { url");
    let src = with_service(
        "    type: http\n    http: { url: https://example.com/, body: { x: \"{{own}}\" } }\n    fields:\n      - { key: own, label: Own, type: text }\n",
    );
    expect(&src, "tasks[1].http", "names a field of 'lookup', which does not come before it", "http: { url");
}

#[test]
fn the_response_fills_fields_of_the_task_through_pointers() {
    let src =
        with_service("    type: http\n    http:\n      url: https://example.com/\n      response: { vendor: /id }\n");
    expect(&src, "tasks[1].http.response.vendor", "'vendor', which is not a field of this task", "response:");
    let src = with_service(
        "    type: http\n    http:\n      url: https://example.com/\n      response: { vid: id }\n    fields:\n      - { key: vid, label: Id, type: text }\n",
    );
    expect(&src, "tasks[1].http.response.vid", "'id' is not a JSON pointer", "response:");
}

#[test]
fn retries_and_timeouts_are_bounded() {
    let src = with_service("    type: http\n    http:\n      url: https://example.com/\n      retries: 11\n");
    expect(&src, "tasks[1].http.retries", "at most 10 retries", "retries: 11");
    let src = with_service("    type: http\n    http:\n      url: https://example.com/\n      timeout_seconds: 0\n");
    expect(&src, "tasks[1].http.timeout_seconds", "timeout_seconds must be 1 to 120", "timeout_seconds: 0");
    let src = with_service("    type: http\n    http:\n      url: https://example.com/\n      method: TRACE\n");
    let diags = common::errors(&src);
    assert!(diags.iter().any(|d| d.path.starts_with("tasks[1].http")), "{diags:?}");
}

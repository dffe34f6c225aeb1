//! Service tasks against a real HTTP endpoint on loopback: the call is made
//! with a body rendered from run fields, transient failures are retried, the
//! response fills the task's fields, a final failure is visible on the run
//! and its assignee can retry or take over; evidence packs still verify.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use attest_server::Config;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn template(port: u16, retries: u32) -> String {
    format!(
        r#"
format: attest/v1
key: vendor-lookup
name: Vendor lookup
roles: [checker]
tasks:
  - key: request
    name: Request
    assignee: starter
    fields:
      - {{ key: vendor, label: Vendor, type: text, required: true }}
  - key: lookup
    name: Look the vendor up
    type: http
    assignee: role:checker
    http:
      url: "http://127.0.0.1:{port}/vendors?name={{{{vendor}}}}"
      body: {{ name: "{{{{vendor}}}}", source: attest }}
      response: {{ vendor_id: /id }}
      retries: {retries}
      timeout_seconds: 2
    fields:
      - {{ key: vendor_id, label: Vendor id, type: text, required: true }}
"#
    )
}

/// An endpoint that answers each request with the next scripted status (the
/// last one repeats) and a JSON id, and records what it was sent.
struct Endpoint {
    port: u16,
    seen: Arc<Mutex<Vec<String>>>,
    script: Arc<Mutex<Vec<u16>>>,
    task: tokio::task::JoinHandle<()>,
}

async fn endpoint(script: &[u16]) -> Endpoint {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let script = Arc::new(Mutex::new(script.to_vec()));
    let (s, sc) = (seen.clone(), script.clone());
    let task = tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let (seen, script) = (s.clone(), sc.clone());
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 8192];
                // Read the head, then as much body as content-length says.
                loop {
                    let n = conn.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let len = text
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_string())
                            })
                            .and_then(|v| v.parse::<usize>().ok())
                            .unwrap_or(0);
                        if buf.len() >= end + 4 + len {
                            break;
                        }
                    }
                }
                let status = {
                    let mut s = script.lock().unwrap();
                    if s.len() > 1 { s.remove(0) } else { s[0] }
                };
                seen.lock().unwrap().push(String::from_utf8_lossy(&buf).to_string());
                let body = if status == 200 { r#"{"id": "V-1001", "extra": true}"# } else { r#"{"error": "busy"}"# };
                let head = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = conn.write_all(head.as_bytes()).await;
                let _ = conn.write_all(body.as_bytes()).await;
            });
        }
    });
    Endpoint { port, seen, script, task }
}

fn fast(config: &mut Config) {
    config.hooks.poll_ms = 50;
    config.hooks.service_first_delay_ms = 100;
}

async fn start_and_request(s: &common::Server, port: u16, retries: u32) -> String {
    let r = s.post("admin", "/api/v1/templates", json!({"source": template(port, retries)})).await;
    assert!(r.status == 201, "{:?}", r.body);
    let r = s.post("member", "/api/v1/runs", json!({"template": "vendor-lookup"})).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let run = r.body["run"].as_str().unwrap().to_string();
    let path = format!("/api/v1/runs/{run}/tasks/request/complete");
    let r = s.post("member", &path, json!({"values": {"vendor": "Acme & Co"}})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    run
}

async fn lookup_task(s: &common::Server, run: &str) -> (Value, Value) {
    let r = s.get("admin", &format!("/api/v1/runs/{run}")).await;
    let task = r.body["tasks"].as_array().unwrap().iter().find(|t| t["key"] == "lookup").unwrap().clone();
    (r.body, task)
}

async fn wait_until(
    what: &str,
    s: &common::Server,
    run: &str,
    check: impl Fn(&Value, &Value) -> bool,
) -> (Value, Value) {
    let start = Instant::now();
    loop {
        let (run_view, task) = lookup_task(s, run).await;
        if check(&run_view, &task) {
            return (run_view, task);
        }
        assert!(start.elapsed() < Duration::from_secs(30), "timed out waiting for {what}: {task}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_call_is_retried_and_fills_the_task_from_the_response() {
    let s = common::Server::start_with(fast).await;
    let ep = endpoint(&[503, 503, 200]).await;
    let run = start_and_request(&s, ep.port, 3).await;
    let (view, task) = wait_until("the call to complete the task", &s, &run, |_, t| t["status"] == "done").await;
    assert_eq!(view["values"]["vendor_id"], "V-1001");
    assert_eq!(task["completed_by"], "attest", "Attest itself completed it");
    assert_eq!(view["status"], "completed");
    let seen = ep.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 3, "two transient failures, then success");
    assert!(seen[0].starts_with("POST /vendors?name=Acme%20%26%20Co HTTP/1.1"), "{}", seen[0]);
    let body = seen[0].split("\r\n\r\n").nth(1).unwrap();
    assert_eq!(serde_json::from_str::<Value>(body).unwrap(), json!({"name": "Acme & Co", "source": "attest"}));

    // The evidence pack re-executes the run, including Attest's own completion.
    let export = s.get("auditor", &format!("/api/v1/audit/runs/{run}/export")).await;
    assert_eq!(export.status, 200);
    let report = attest_pack::verify(std::io::Cursor::new(export.bytes.clone()), None);
    assert!(report.ok(), "{:?}", report.failures);
    ep.task.abort();
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_call_is_shown_on_the_run_and_the_assignee_retries_it() {
    let s = common::Server::start_with(fast).await;
    let ep = endpoint(&[500]).await;
    let run = start_and_request(&s, ep.port, 1).await;
    let (_, task) = wait_until("the call to fail for good", &s, &run, |_, t| t["service_error"].is_string()).await;
    assert_eq!(task["status"], "open", "a failed call goes to the assignee");
    assert_eq!(task["service_error"], "the endpoint answered 500 (after 2 attempts)");
    assert_eq!(ep.seen.lock().unwrap().len(), 2, "one retry, as the template says");
    let inbox = s.get("member", "/api/v1/inbox").await;
    assert!(inbox.body.to_string().contains(&run), "the failed task is in the assignee's inbox: {}", inbox.body);

    // A person who is not an assignee may not retry; the assignee may.
    let retry = format!("/api/v1/runs/{run}/tasks/lookup/retry");
    let r = s.post("auditor", &retry, json!({})).await;
    assert_eq!(r.status, 403);
    *ep.script.lock().unwrap() = vec![200];
    let r = s.post("member", &retry, json!({})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let (view, _) = wait_until("the retried call to complete the task", &s, &run, |_, t| t["status"] == "done").await;
    assert_eq!(view["values"]["vendor_id"], "V-1001");

    let export = s.get("auditor", &format!("/api/v1/audit/runs/{run}/export")).await;
    let report = attest_pack::verify(std::io::Cursor::new(export.bytes.clone()), None);
    assert!(report.ok(), "a run with a failed and retried call verifies: {:?}", report.failures);
    ep.task.abort();
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_assignee_takes_over_a_failed_call_by_hand() {
    let s = common::Server::start_with(fast).await;
    let ep = endpoint(&[404]).await;
    let run = start_and_request(&s, ep.port, 3).await;
    let (_, task) = wait_until("the call to fail", &s, &run, |_, t| t["service_error"].is_string()).await;
    assert_eq!(task["service_error"], "the endpoint answered 404");
    assert_eq!(ep.seen.lock().unwrap().len(), 1, "a 404 is final: no retries");
    let r = s
        .post("member", &format!("/api/v1/runs/{run}/tasks/lookup/complete"), json!({"values": {"vendor_id": "V-9"}}))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let (view, task) = lookup_task(&s, &run).await;
    assert_eq!(task["status"], "done");
    assert!(task.get("service_error").is_none());
    assert_eq!(view["values"]["vendor_id"], "V-9");
    ep.task.abort();
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_endpoint_fails_after_bounded_attempts() {
    let s = common::Server::start_with(fast).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let run = start_and_request(&s, port, 2).await;
    let (_, task) = wait_until("the call to fail", &s, &run, |_, t| t["service_error"].is_string()).await;
    assert_eq!(task["service_error"], "could not connect (after 3 attempts)");
    s.stop().await;
}

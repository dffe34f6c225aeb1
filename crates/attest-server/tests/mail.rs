//! Mail through a real SMTP server on loopback: Python's aiosmtpd, started by
//! the test, writes each message it receives to a directory. The server's
//! scheduler runs on a manual clock and is ticked by the test.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use attest_core::Clock;
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

const SINK: &str = r#"
import asyncio, json, os, sys, uuid
from aiosmtpd.controller import Controller

class Sink:
    async def handle_DATA(self, server, session, envelope):
        path = os.path.join(sys.argv[1], uuid.uuid4().hex)
        with open(path + ".tmp", "w") as f:
            json.dump({"from": envelope.mail_from, "to": envelope.rcpt_tos,
                       "data": envelope.content.decode("utf-8", "replace")}, f)
        os.rename(path + ".tmp", path + ".json")
        return "250 OK"

controller = Controller(Sink(), hostname="127.0.0.1", port=int(sys.argv[2]))
controller.start()
print("ready", flush=True)
sys.stdin.read()
controller.stop()
"#;

const TIMED_TEMPLATE: &str = r#"
format: attest/v1
key: timed-check
name: Timed check
roles: [reviewer]
tasks:
  - key: check
    name: Check the list
    assignee: starter
    due: { after: run_started, in: 2d }
    remind:
      - { before_due: 1d }
    escalate:
      - { overdue_by: 1d, notify: role:reviewer }
  - key: review
    name: Review the check
    type: approval
    approves: [check]
    assignee: role:reviewer
"#;

/// The SMTP sink process; killed when dropped.
struct SmtpSink {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Starts aiosmtpd, or says why not: with `CI=true` a missing aiosmtpd fails.
fn start_sink() -> Option<SmtpSink> {
    let available = Command::new("python3")
        .args(["-c", "import aiosmtpd"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !available {
        assert!(
            std::env::var("CI").map_or(true, |v| v != "true"),
            "aiosmtpd is missing: python3 -m pip install aiosmtpd==1.4.6"
        );
        eprintln!("skipping: aiosmtpd is not installed (python3 -m pip install aiosmtpd==1.4.6)");
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child = Command::new("python3")
        .args(["-c", SINK, dir.path().to_str().unwrap(), &port.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut line).unwrap();
    assert_eq!(line.trim(), "ready", "the SMTP sink did not start");
    Some(SmtpSink { child, dir, port })
}

#[derive(Debug, Clone)]
struct Received {
    to: Vec<String>,
    subject: String,
    body: String,
}

fn received(dir: &Path) -> Vec<Received> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|p| {
            let v: Value = serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
            let data = v["data"].as_str().unwrap().to_string();
            let subject =
                data.lines().find_map(|l| l.strip_prefix("Subject: ")).map(str::to_string).unwrap_or_default();
            let to = v["to"].as_array().unwrap().iter().map(|t| t.as_str().unwrap().to_string()).collect();
            Received { to, subject, body: data.replace("=\r\n", "").replace("=3D", "=") }
        })
        .collect()
}

/// Messages about one run, as (recipient, subject).
fn about(dir: &Path, run_name: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = received(dir)
        .into_iter()
        .filter(|m| m.subject.contains(run_name))
        .map(|m| (m.to.join(","), m.subject))
        .collect();
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_reaches_a_real_smtp_server_with_recipients_subjects_and_links() {
    let Some(sink) = start_sink() else { return };
    let clock = Clock::manual(Timestamp::now());
    let manual = clock.clone();
    let s = common::Server::start_with(move |c| {
        c.clock = clock;
        c.scheduler.enabled = false;
    })
    .await;
    let running = s.running.as_ref().unwrap();
    let admin_email = running.seeded.as_ref().unwrap().admin.clone();
    let admin = s.login(&admin_email, &s.admin_password).await;
    assert_eq!(admin.status, 200);

    let r = s
        .post(
            "admin",
            "/api/v1/settings/mail",
            json!({"smtp_host": "127.0.0.1", "smtp_port": sink.port, "tls": "none",
                   "from": "Attest <attest@example.com>", "base_url": "https://attest.example.com/"}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["mail"]["password_set"], false);
    assert_eq!(s.post("admin", "/api/v1/templates", json!({"source": TIMED_TEMPLATE})).await.status, 201);
    let r = s.post("admin", "/api/v1/people", json!({"email": "rev@example.com", "roles": ["reviewer"]})).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let r = s
        .post("admin", "/api/v1/tokens", json!({"name": "reviewer bot", "access": "member", "roles": ["reviewer"]}))
        .await;
    let reviewer_token = r.body["token"].as_str().unwrap().to_string();

    let r = s.post_session("/api/v1/runs", &admin, json!({"template": "timed-check", "name": "Mail run"})).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let run = r.body["run"].as_str().unwrap().to_string();
    let link = format!("https://attest.example.com/runs/{run}#task-check");

    running.tick().await.unwrap();
    let mails = received(sink.dir.path());
    let assigned = mails.iter().find(|m| m.subject == "Task assigned: Check the list (Mail run)").expect("assigned");
    assert_eq!(assigned.to, std::slice::from_ref(&admin_email));
    assert!(assigned.body.contains(&link), "the text and HTML bodies link to the task: {}", assigned.body);
    assert!(assigned.body.contains("Content-Type: text/html"));
    assert!(assigned.body.contains("Content-Type: text/plain"));
    running.tick().await.unwrap();
    let after = about(sink.dir.path(), "Mail run");
    assert_eq!(after.len(), 1, "the same state sends nothing again: {after:?}");

    // One day and a minute later the reminder is due: a ledger event, then its mail.
    manual.advance(SignedDuration::from_mins(24 * 60 + 1));
    running.tick().await.unwrap();
    running.tick().await.unwrap();
    assert!(
        about(sink.dir.path(), "Mail run")
            .contains(&(admin_email.clone(), "Due soon: Check the list (Mail run)".into()))
    );

    // The starter opts out of non-essential mail: the overdue notice skips
    // them, the escalation (essential) reaches the reviewer.
    assert_eq!(s.post_session("/api/v1/me/mail", &admin, json!({"opt_out": true})).await.status, 200);
    manual.advance(SignedDuration::from_hours(48));
    running.tick().await.unwrap();
    running.tick().await.unwrap();
    let now = about(sink.dir.path(), "Mail run");
    assert!(now.contains(&("rev@example.com".into(), "Escalated: Check the list (Mail run)".into())), "{now:?}");
    assert!(!now.iter().any(|(_, subject)| subject.starts_with("Overdue")), "opted out: {now:?}");
    assert_eq!(s.post_session("/api/v1/me/mail", &admin, json!({"opt_out": false})).await.status, 200);

    // Approval requested, rejected back for rework, approved: run completed.
    let r = s.post_session(&format!("/api/v1/runs/{run}/tasks/check/complete"), &admin, json!({})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    running.tick().await.unwrap();
    let reject = s
        .client
        .post(format!("{}/api/v1/runs/{run}/tasks/review/reject", s.base))
        .bearer_auth(&reviewer_token)
        .json(&json!({"comment": "the list is incomplete"}))
        .send()
        .await
        .unwrap();
    assert_eq!(reject.status().as_u16(), 200);
    running.tick().await.unwrap();
    let r = s.post_session(&format!("/api/v1/runs/{run}/tasks/check/complete"), &admin, json!({})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    running.tick().await.unwrap();
    let approve = s
        .client
        .post(format!("{}/api/v1/runs/{run}/tasks/review/approve", s.base))
        .bearer_auth(&reviewer_token)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(approve.status().as_u16(), 200);
    running.tick().await.unwrap();

    let all = about(sink.dir.path(), "Mail run");
    let count = |to: &str, subject: &str| all.iter().filter(|(t, s)| t == to && s == subject).count();
    assert_eq!(count("rev@example.com", "Approval requested: Review the check (Mail run)"), 2, "{all:?}");
    assert_eq!(count(&admin_email, "Sent back for rework: Check the list (Mail run)"), 1, "{all:?}");
    assert_eq!(count(&admin_email, "Run completed: Mail run"), 1, "{all:?}");
    let completed = received(sink.dir.path()).into_iter().find(|m| m.subject == "Run completed: Mail run").unwrap();
    assert!(completed.body.contains(&format!("https://attest.example.com/runs/{run}")));

    let outbox = s.get("admin", "/api/v1/mail/outbox?failing=true").await;
    assert_eq!(outbox.status, 200);
    assert_eq!(outbox.body["items"], json!([]), "nothing failed");
    assert_eq!(s.get("member", "/api/v1/mail/outbox").await.status, 403, "admins only");
    drop(sink);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_that_cannot_be_sent_is_retried_with_backoff_and_shown_to_admins() {
    let clock = Clock::manual(Timestamp::now());
    let manual = clock.clone();
    let s = common::Server::start_with(move |c| {
        c.clock = clock;
        c.scheduler.enabled = false;
    })
    .await;
    let running = s.running.as_ref().unwrap();
    let admin_email = running.seeded.as_ref().unwrap().admin.clone();
    let admin = s.login(&admin_email, &s.admin_password).await;
    // Nothing listens on this port.
    let r = s
        .post(
            "admin",
            "/api/v1/settings/mail",
            json!({"smtp_host": "127.0.0.1", "smtp_port": free_port(), "tls": "none",
                   "from": "attest@example.com", "base_url": "https://attest.example.com"}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let r = s.post_session("/api/v1/runs", &admin, json!({"template": "quick-check", "name": "Unsent"})).await;
    assert_eq!(r.status, 201);
    running.tick().await.unwrap();
    let failing = s.get("admin", "/api/v1/mail/outbox?failing=true&limit=1000").await;
    let mine: Vec<&Value> = failing.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["subject"] == "Task assigned: Check (Unsent)")
        .collect();
    assert_eq!(mine.len(), 1, "{:?}", failing.body);
    assert_eq!(mine[0]["state"], "pending");
    assert_eq!(mine[0]["attempts"], 1);
    assert!(mine[0]["last_error"].as_str().unwrap().contains("SMTP 127.0.0.1"), "{:?}", mine[0]);
    let first_retry: Timestamp = mine[0]["next_attempt_at"].as_str().unwrap().parse().unwrap();
    assert!(first_retry > manual.now(), "retried later, not at once");
    // Eight attempts with doubling waits, then the mail is given up on.
    for _ in 0..8 {
        manual.advance(SignedDuration::from_hours(7));
        running.tick().await.unwrap();
    }
    let failed = s.get("admin", "/api/v1/mail/outbox?state=failed&limit=1000").await;
    let mine: Vec<&Value> = failed.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["subject"] == "Task assigned: Check (Unsent)")
        .collect();
    assert_eq!(mine.len(), 1, "{:?}", failed.body);
    assert_eq!(mine[0]["attempts"], 8);
    s.stop().await;
}

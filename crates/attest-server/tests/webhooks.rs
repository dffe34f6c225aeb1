//! Outbound webhooks against real receivers on loopback: a Python receiver
//! that checks every signature with the Standard Webhooks reference library,
//! down for a while and across a server restart; and bounded attempts
//! against unreachable, silent and endlessly answering receivers.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use attest_core::hooks::RetryPolicy;
use attest_server::Config;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Fast retries and short timeouts, so a test sees many attempts quickly.
fn fast_hooks(config: &mut Config) {
    config.hooks.poll_ms = 50;
    config.hooks.timeout_ms = 1_000;
    config.hooks.connect_timeout_ms = 500;
    config.hooks.retry = RetryPolicy { first_delay_ms: 100, max_delay_ms: 400, window_ms: 10 * 60 * 1_000 };
}

/// Whether the `standardwebhooks` package can be imported; with CI=true its
/// absence fails the test, elsewhere the test is skipped with the reason.
fn standardwebhooks_available() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import standardwebhooks"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "python3 with standardwebhooks is required (pip install standardwebhooks==1.1.0)"
        );
        println!("skipped: python3 with the standardwebhooks package is not installed");
    }
    ok
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The Python receiver, killed when dropped.
struct Receiver(Child);

impl Receiver {
    fn start(port: u16, secret: &str, out: &std::path::Path) -> Receiver {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/webhook_receiver.py");
        let mut child = Command::new("python3")
            .args([script, &port.to_string(), secret, out.to_str().unwrap()])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut line).unwrap();
        assert_eq!(line.trim(), "ready");
        Receiver(child)
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn restart(s: &mut common::Server, tweak: fn(&mut Config)) {
    s.running.take().unwrap().shutdown().await;
    let mut config = Config::new(s._dir.path().join("data"));
    tweak(&mut config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let running = attest_server::start(config, listener).await.unwrap();
    s.base = format!("http://{}", running.addr);
    s.running = Some(running);
}

/// Starts a quick-check run as the member and completes its first task.
async fn run_with_activity(s: &common::Server, i: usize) -> String {
    let run = s.start_check("member").await;
    let r =
        s.post("member", &format!("/api/v1/runs/{run}/tasks/check/comments"), json!({"text": format!("c{i}")})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let path = format!("/api/v1/runs/{run}/tasks/check/complete");
    let r = s.post("member", &path, json!({"values": {"note": format!("note {i}")}})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    run
}

async fn subscribe(s: &common::Server, url: &str, event_types: Value) -> (String, String) {
    let r = s.post("admin", "/api/v1/webhooks", json!({"url": url, "event_types": event_types})).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    (r.body["id"].as_str().unwrap().to_string(), r.body["secret"].as_str().unwrap().to_string())
}

async fn deliveries(s: &common::Server, id: &str) -> Vec<Value> {
    let r = s.get("admin", &format!("/api/v1/webhooks/{id}/deliveries?limit=200")).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body["items"].as_array().unwrap().clone()
}

async fn wait_for<F: std::future::Future<Output = bool>>(what: &str, limit: Duration, mut check: impl FnMut() -> F) {
    let start = Instant::now();
    while !check().await {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_arrives_signed_and_in_run_order_across_receiver_downtime_and_a_restart() {
    if !standardwebhooks_available() {
        return;
    }
    let mut s = common::Server::start_with(fast_hooks).await;
    let port = free_port();
    let (id, secret) = subscribe(&s, &format!("http://127.0.0.1:{port}/hook"), json!([])).await;

    // The receiver is down: attempts fail and are retried with backoff.
    let mut runs = Vec::new();
    for i in 0..4 {
        runs.push(run_with_activity(&s, i).await);
    }
    wait_for("failed attempts while the receiver is down", Duration::from_secs(20), || async {
        deliveries(&s, &id).await.iter().any(|d| d["attempts"].as_u64() >= Some(2))
    })
    .await;
    let pending = deliveries(&s, &id).await;
    assert!(pending.iter().all(|d| d["status"] == "pending"), "{pending:#?}");
    assert!(pending.iter().any(|d| d["last_error"] == "could not connect"), "{pending:#?}");

    // Restart in the middle: the queue is in the database, not in memory.
    restart(&mut s, fast_hooks).await;
    for i in 4..8 {
        runs.push(run_with_activity(&s, i).await);
    }

    // The receiver comes back.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("received.jsonl");
    let _receiver = Receiver::start(port, &secret, &out);

    let mut expected: BTreeMap<u64, (String, u64)> = BTreeMap::new();
    for run in &runs {
        let r = s.get("admin", &format!("/api/v1/runs/{run}/events")).await;
        for (run_seq, e) in r.body["items"].as_array().unwrap().iter().enumerate() {
            expected.insert(e["seq"].as_u64().unwrap(), (run.clone(), run_seq as u64));
        }
    }
    let read = || -> Vec<Value> {
        std::fs::read_to_string(&out).unwrap_or_default().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    };
    wait_for("every event at the receiver", Duration::from_secs(60), || {
        let got: BTreeSet<u64> = read().iter().filter_map(|r| r["seq"].as_u64()).collect();
        let done = expected.keys().all(|seq| got.contains(seq));
        async move { done }
    })
    .await;

    let received = read();
    assert!(received.iter().all(|r| r["valid"] == true), "a signature did not verify: {received:#?}");
    // Per-run order: the first arrival of each event follows the run's order.
    let mut first_seen: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let mut seen = BTreeSet::new();
    for r in &received {
        let seq = r["seq"].as_u64().unwrap();
        if let Some((run, run_seq)) = expected.get(&seq)
            && seen.insert(seq)
        {
            assert_eq!(r["run"].as_str(), Some(run.as_str()));
            assert_eq!(r["run_seq"].as_u64(), Some(*run_seq));
            first_seen.entry(run.clone()).or_default().push(*run_seq);
        }
    }
    for (run, order) in &first_seen {
        let mut sorted = order.clone();
        sorted.sort_unstable();
        assert_eq!(order, &sorted, "events of run {run} arrived out of order");
    }
    // The same webhook-id is used for every attempt of an event.
    for r in &received {
        let seq = r["seq"].as_u64().unwrap();
        assert!(r["id"].as_str().unwrap().ends_with(&format!("_{seq}")), "{r}");
    }
    wait_for("the delivery log to show every delivery as delivered", Duration::from_secs(10), || async {
        let log = deliveries(&s, &id).await;
        log.len() == expected.len() && log.iter().all(|d| d["status"] == "delivered")
    })
    .await;
    let one = &deliveries(&s, &id).await[0];
    let detail = s.get("admin", &format!("/api/v1/webhooks/{id}/deliveries/{}", one["id"].as_str().unwrap())).await;
    assert_eq!(detail.status, 200);
    let log = detail.body["attempt_log"].as_array().unwrap();
    assert_eq!(log.last().unwrap()["status"], 204);
    assert!(detail.body["payload"]["type"].is_string());
    s.stop().await;
}

/// Accepts connections and reads requests, but never answers.
async fn silent_receiver() -> (u16, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((mut conn, _)) = listener.accept().await {
            let mut buf = [0u8; 4096];
            let _ = conn.read(&mut buf).await;
            held.push(conn);
        }
    });
    (port, task)
}

/// Answers 200 with a body announced as 1 GiB and streamed until the client
/// hangs up; counts the bytes it managed to send.
async fn endless_receiver() -> (u16, tokio::task::JoinHandle<()>, std::sync::Arc<std::sync::atomic::AtomicU64>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let sent = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter = sent.clone();
    let task = tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let counter = counter.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 8192];
                let _ = conn.read(&mut buf).await;
                let head = "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 1073741824\r\n\r\n";
                if conn.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let chunk = vec![b'x'; 64 * 1024];
                while conn.write_all(&chunk).await.is_ok() {
                    counter.fetch_add(chunk.len() as u64, std::sync::atomic::Ordering::Relaxed);
                }
            });
        }
    });
    (port, task, sent)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attempts_are_bounded_for_unreachable_silent_and_endless_receivers() {
    let s = common::Server::start_with(fast_hooks).await;
    let unreachable = free_port();
    let (silent, silent_task) = silent_receiver().await;
    let (endless, endless_task, endless_sent) = endless_receiver().await;
    let only_starts = json!(["run_started"]);
    let (down_id, _) = subscribe(&s, &format!("http://127.0.0.1:{unreachable}/"), only_starts.clone()).await;
    let (silent_id, _) = subscribe(&s, &format!("http://127.0.0.1:{silent}/"), only_starts.clone()).await;
    let (endless_id, _) = subscribe(&s, &format!("http://127.0.0.1:{endless}/"), only_starts).await;
    s.start_check("member").await;

    let attempt_log = |id: String| {
        let s = &s;
        async move {
            let d = deliveries(s, &id).await;
            if d.is_empty() {
                return Vec::new();
            }
            let r = s.get("admin", &format!("/api/v1/webhooks/{id}/deliveries/{}", d[0]["id"].as_str().unwrap())).await;
            r.body["attempt_log"].as_array().cloned().unwrap_or_default()
        }
    };
    wait_for("attempts against every receiver", Duration::from_secs(30), || async {
        !attempt_log(down_id.clone()).await.is_empty()
            && !attempt_log(silent_id.clone()).await.is_empty()
            && !attempt_log(endless_id.clone()).await.is_empty()
    })
    .await;

    let down = attempt_log(down_id.clone()).await;
    assert_eq!(down[0]["error"], "could not connect", "{down:#?}");
    let silent_log = attempt_log(silent_id.clone()).await;
    assert_eq!(silent_log[0]["error"], "timed out", "{silent_log:#?}");
    let took = silent_log[0]["duration_ms"].as_u64().unwrap();
    assert!((900..3_000).contains(&took), "a silent receiver is given up on after the timeout, took {took} ms");
    // An endless 200 is cut at the response cap: delivered, with a bounded excerpt.
    let endless_log = attempt_log(endless_id.clone()).await;
    assert_eq!(endless_log[0]["status"], 200, "{endless_log:#?}");
    assert!(endless_log[0]["error"].is_null(), "{endless_log:#?}");
    assert!(endless_log[0]["response"].as_str().unwrap().len() <= 1_000);
    assert_eq!(deliveries(&s, &endless_id).await[0]["status"], "delivered");
    let sent = endless_sent.load(std::sync::atomic::Ordering::Relaxed);
    assert!(sent < 64 * 1024 * 1024, "the client read far past its cap: {sent} bytes");
    silent_task.abort();
    endless_task.abort();
    s.stop().await;
}

/// Answers every request with 204 and records its `webhook-id`.
async fn accepting_receiver(port: u16) -> (tokio::task::JoinHandle<()>, Arc<Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    let ids = Arc::new(Mutex::new(Vec::new()));
    let seen = ids.clone();
    let task = tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                let n = conn.read(&mut buf).await.unwrap_or(0);
                let head = String::from_utf8_lossy(&buf[..n]).to_string();
                if let Some(id) = head.lines().find_map(|l| l.strip_prefix("webhook-id: ")) {
                    seen.lock().unwrap().push(id.trim().to_string());
                }
                let _ = conn.write_all(b"HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n").await;
            });
        }
    });
    (task, ids)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistent_failure_disables_the_subscription_with_a_ledger_notice_and_redelivery_recovers() {
    let s = common::Server::start_with(|c| {
        fast_hooks(c);
        c.hooks.retry = RetryPolicy { first_delay_ms: 100, max_delay_ms: 200, window_ms: 1_000 };
    })
    .await;
    let port = free_port();
    let (id, _) = subscribe(&s, &format!("http://127.0.0.1:{port}/"), json!(["run_started"])).await;
    s.start_check("member").await;
    wait_for("the subscription to be disabled", Duration::from_secs(20), || async {
        s.get("admin", &format!("/api/v1/webhooks/{id}")).await.body["enabled"] == false
    })
    .await;
    let sub = s.get("admin", &format!("/api/v1/webhooks/{id}")).await.body;
    assert!(sub["disabled_reason"].as_str().unwrap().contains("could not connect"), "{sub}");
    let failed = deliveries(&s, &id).await;
    // A page larger than the documented maximum is refused, not cut short.
    let r = s.get("admin", &format!("/api/v1/webhooks/{id}/deliveries?limit=201")).await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    let r = s.get("admin", &format!("/api/v1/webhooks/{id}/deliveries?cursor=9007199254740992")).await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    assert_eq!(failed[0]["status"], "failed");
    assert!(failed[0]["attempts"].as_u64().unwrap() >= 3, "{failed:#?}");
    // The admin's notice is a workspace event in the ledger, by the system.
    let dir = attest_core::DataDir::new(s._dir.path().join("data"));
    let store = attest_store_sqlite::SqliteStore::open(dir.database()).unwrap();
    let size = attest_store::Store::ledger_size(&store).unwrap();
    let entries = attest_store::Store::ledger_entries(&store, 0, size).unwrap();
    let notices: Vec<Value> = entries
        .iter()
        .map(|e| serde_json::from_slice::<Value>(&e.bytes).unwrap())
        .filter(|e| e["event"]["type"] == "webhook_disabled")
        .collect();
    assert_eq!(notices.len(), 1, "one notice for one disabled subscription");
    assert_eq!(notices[0]["event"]["id"], id.as_str());
    assert_eq!(notices[0]["event"]["by"]["kind"], "system");
    drop(store);

    // The receiver comes up; the admin enables the subscription and redelivers.
    let (receiver, _) = accepting_receiver(port).await;
    let r = s.post("admin", &format!("/api/v1/webhooks/{id}/enable"), json!({})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let delivery = failed[0]["id"].as_str().unwrap().to_string();
    let r = s.post("admin", &format!("/api/v1/webhooks/{id}/deliveries/{delivery}/redeliver"), json!({})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    wait_for("the redelivery", Duration::from_secs(20), || async {
        deliveries(&s, &id).await[0]["status"] == "delivered"
    })
    .await;
    receiver.abort();
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_sharing_a_database_deliver_every_event_once() {
    let s = common::Server::start_with(fast_hooks).await;
    let mut config = Config::new(s._dir.path().join("data"));
    fast_hooks(&mut config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let second = attest_server::start(config, listener).await.unwrap();
    let port = free_port();
    let (receiver, ids) = accepting_receiver(port).await;
    let (id, _) = subscribe(&s, &format!("http://127.0.0.1:{port}/"), json!([])).await;
    let mut runs = Vec::new();
    for i in 0..6 {
        runs.push(run_with_activity(&s, i).await);
    }
    let mut expected = 0;
    for run in &runs {
        expected += s.get("admin", &format!("/api/v1/runs/{run}/events")).await.body["items"].as_array().unwrap().len();
    }
    wait_for("every event at the receiver", Duration::from_secs(30), || {
        let n = ids.lock().unwrap().len();
        async move { n >= expected }
    })
    .await;
    // Both workers compete for the same queue; the leases let one send each.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got = ids.lock().unwrap().clone();
    let distinct: BTreeSet<&String> = got.iter().collect();
    assert_eq!(distinct.len(), expected, "every event delivered");
    assert_eq!(got.len(), expected, "no event sent twice by the two processes");
    let log = deliveries(&s, &id).await;
    assert!(log.iter().all(|d| d["status"] == "delivered" && d["attempts"] == 1), "{log:#?}");
    second.shutdown().await;
    receiver.abort();
    s.stop().await;
}

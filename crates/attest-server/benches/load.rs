//! Load benchmark: task completions per second with durable commits, and
//! p50/p99 latency, next to GET /healthz on the same server.
//!
//! The server runs in a second process (this binary re-executed with
//! `ATTEST_BENCH_SERVE`), the load comes from this one, over loopback.
//!
//! `cargo bench -p attest-server --bench load` (env: `ATTEST_BENCH_RUNS`,
//! default 4000; `ATTEST_BENCH_CONCURRENCY`, default 64).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::BufRead as _;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const TEMPLATE: &str = r#"
format: attest/v1
key: bench-check
name: Bench check
tasks:
  - key: check
    name: Check
    assignee: starter
"#;

fn main() {
    if let Ok(dir) = std::env::var("ATTEST_BENCH_SERVE") {
        // The server process.
        attest_server::serve(dir.into(), "127.0.0.1:0").expect("serving");
        return;
    }
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let runs: usize = std::env::var("ATTEST_BENCH_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(4000);
    let concurrency: usize = std::env::var("ATTEST_BENCH_CONCURRENCY").ok().and_then(|v| v.parse().ok()).unwrap_or(64);
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .env("ATTEST_BENCH_SERVE", dir.path().join("data"))
        .env("ATTEST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .expect("starting the server process");
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut password, mut addr) = (String::new(), String::new());
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(rest) = line.strip_prefix("One-time password: ") {
            password = rest.split_whitespace().next().unwrap().to_string();
        }
        if let Some(rest) = line.strip_prefix("Listening on http://") {
            addr = rest.split_whitespace().next().unwrap().to_string();
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(load(format!("http://{addr}"), password, runs, concurrency));
    let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
    let _ = child.wait();
}

async fn load(base: String, password: String, runs: usize, concurrency: usize) {
    let client = reqwest::Client::builder().pool_max_idle_per_host(concurrency * 2).build().unwrap();
    // Sign in, change the one-time password, make a member token.
    let r = client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"email": "admin@example.com", "password": password}))
        .send()
        .await
        .unwrap();
    let cookie = r.headers().get("set-cookie").unwrap().to_str().unwrap().split(';').next().unwrap().to_string();
    let body: Value = r.json().await.unwrap();
    let r = client
        .post(format!("{base}/api/v1/auth/password"))
        .header("cookie", &cookie)
        .header("x-csrf-token", body["csrf_token"].as_str().unwrap())
        .json(&json!({"current_password": password, "new_password": "benchmark password"}))
        .send()
        .await
        .unwrap();
    let cookie = r.headers().get("set-cookie").unwrap().to_str().unwrap().split(';').next().unwrap().to_string();
    let body: Value = r.json().await.unwrap();
    let csrf = body["csrf_token"].as_str().unwrap().to_string();
    let post = |path: &str, b: Value| {
        client.post(format!("{base}{path}")).header("cookie", &cookie).header("x-csrf-token", &csrf).json(&b).send()
    };
    let t: Value =
        post("/api/v1/tokens", json!({"name": "bench", "access": "member"})).await.unwrap().json().await.unwrap();
    let token = Arc::new(t["token"].as_str().unwrap().to_string());
    let r = post("/api/v1/templates", json!({"source": TEMPLATE})).await.unwrap();
    assert_eq!(r.status().as_u16(), 201);

    // Start the runs (also durable commits), then complete one task in each.
    let started = phase(&client, &base, &token, concurrency, runs, |_| {
        ("POST", "/api/v1/runs".to_string(), Some(json!({"template": "bench-check"})))
    })
    .await;
    let ids: Arc<Vec<String>> =
        Arc::new(started.bodies.iter().map(|b| b["run"].as_str().unwrap().to_string()).collect());
    let ids2 = ids.clone();
    let completions = phase(&client, &base, &token, concurrency, ids.len(), move |i| {
        ("POST", format!("/api/v1/runs/{}/tasks/check/complete", ids2[i]), Some(json!({})))
    })
    .await;
    let health = phase(&client, &base, &token, concurrency, runs, |_| ("GET", "/healthz".to_string(), None)).await;
    assert_eq!(completions.ok, ids.len(), "every completion succeeded");
    let metrics = client.get(format!("{base}/metrics")).send().await.unwrap().text().await.unwrap();
    let count = |name: &str| {
        metrics.lines().find_map(|l| l.strip_prefix(name)).and_then(|v| v.trim().parse::<f64>().ok()).unwrap_or(0.0)
    };
    let (batches, commands) = (count("attest_commit_batches_total "), count("attest_commit_batched_commands_total "));

    println!("load benchmark: {runs} runs, {concurrency} concurrent clients, loopback, separate server process");
    println!("durable commits: SQLite WAL, synchronous=FULL, group commit");
    println!("group commit: {commands} commands in {batches} batches ({:.1} per fsync)", commands / batches.max(1.0));
    started.report("start run");
    completions.report("complete task");
    health.report("GET /healthz");
    println!(
        "ratio: completions/s over healthz/s = {:.3}; p99 complete {:.2} ms (target >= 2000/s, p99 < 50 ms)",
        completions.rate() / health.rate(),
        completions.p(0.99)
    );
}

struct Phase {
    ok: usize,
    elapsed: Duration,
    latencies_ms: Vec<f64>,
    bodies: Vec<Value>,
}

impl Phase {
    fn rate(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64()
    }
    fn p(&self, q: f64) -> f64 {
        let i = ((self.latencies_ms.len() as f64 - 1.0) * q).round() as usize;
        self.latencies_ms.get(i).copied().unwrap_or(f64::NAN)
    }
    fn report(&self, what: &str) {
        println!(
            "{what:<14} {:>6} ok in {:>6.2} s: {:>8.0}/s  p50 {:>6.2} ms  p99 {:>6.2} ms",
            self.ok,
            self.elapsed.as_secs_f64(),
            self.rate(),
            self.p(0.5),
            self.p(0.99)
        );
    }
}

async fn phase(
    client: &reqwest::Client,
    base: &str,
    token: &Arc<String>,
    concurrency: usize,
    n: usize,
    request: impl Fn(usize) -> (&'static str, String, Option<Value>) + Send + Sync + 'static,
) -> Phase {
    let request = Arc::new(request);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let (client, base, token, request, next) =
            (client.clone(), base.to_string(), token.clone(), request.clone(), next.clone());
        workers.push(tokio::spawn(async move {
            let mut out = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= n {
                    break;
                }
                let (method, path, body) = request(i);
                let mut req = client
                    .request(reqwest::Method::from_bytes(method.as_bytes()).unwrap(), format!("{base}{path}"))
                    .bearer_auth(token.as_str());
                if let Some(b) = body {
                    req = req.json(&b);
                }
                let t = Instant::now();
                let r = req.send().await.unwrap();
                let ok = r.status().is_success();
                let body: Value = r.json().await.unwrap_or(Value::Null);
                out.push((t.elapsed().as_secs_f64() * 1000.0, ok, body));
            }
            out
        }));
    }
    let mut phase = Phase { ok: 0, elapsed: Duration::ZERO, latencies_ms: Vec::new(), bodies: Vec::new() };
    for w in workers {
        for (ms, ok, body) in w.await.unwrap() {
            phase.latencies_ms.push(ms);
            if ok {
                phase.ok += 1;
                phase.bodies.push(body);
            }
        }
    }
    phase.elapsed = started.elapsed();
    phase.latencies_ms.sort_by(f64::total_cmp);
    phase
}

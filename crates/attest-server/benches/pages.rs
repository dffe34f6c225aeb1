//! Page render times with 10,000 runs in the workspace: every page of the web
//! app, requested again and again over loopback from the same process, with
//! the median, the 95th percentile and the slowest time per page. The time is measured at the
//! client, so it bounds the server-side render from above.
//!
//! The pages come from the route table: the benchmark refuses to run while a
//! GET page has no URL in `pages` (and is not a download in `NOT_PAGES`).
//!
//! `cargo bench -p attest-server --bench pages` (env: `ATTEST_BENCH_RUNS`,
//! default 10000; `ATTEST_BENCH_REPEAT`, default 30). The target is every
//! page under 50 ms.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use attest_core::{BatchItem, DataDir, Workspace};
use attest_engine::{Command, Values};
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

const BATCH: usize = 500;

/// Seeds the example workspace, then `runs` vendor-onboarding runs a month
/// old: every third with its request form filled in, every sixtieth with the
/// request completed (so its review and approval are overdue), every tenth
/// cancelled.
fn seed(dir: &DataDir, runs: usize) -> (String, String, String) {
    let now = Timestamp::now();
    let then = now.checked_sub(SignedDuration::from_hours(24 * 30)).unwrap();
    let seeded = attest_core::seed::seed_data_dir(dir, then).unwrap();
    let ws: Workspace = seeded.workspace;
    let rita = ws.person("rita@example.com").unwrap();
    let owner = ws.person("owner@example.com").unwrap();
    let mut ids = Vec::with_capacity(runs);
    let mut made = 0;
    while made < runs {
        let n = BATCH.min(runs - made);
        let items: Vec<BatchItem> = (0..n)
            .map(|i| BatchItem::Start {
                template: "vendor-onboarding".into(),
                name: Some(format!("Vendor {}", made + i)),
                by: rita.clone(),
            })
            .collect();
        for r in ws.execute_many(&items, then).unwrap() {
            ids.push(r.unwrap().run_id.clone());
        }
        made += n;
    }
    let mut items = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        if i % 3 == 0 {
            let values: Values = [
                ("vendor_name".to_string(), json!(format!("Vendor {i} GmbH"))),
                ("annual_spend".to_string(), json!(5000 + (i % 7) * 5000)),
                ("personal_data".to_string(), json!(i % 2 == 0)),
            ]
            .into_iter()
            .collect();
            items.push(BatchItem::Execute {
                run: id.clone(),
                command: Command::SetFields { task: "request".into(), values },
                by: rita.clone(),
            });
        }
        if i % 10 == 1 {
            items.push(BatchItem::Execute {
                run: id.clone(),
                command: Command::Cancel { reason: "benchmark".into() },
                by: owner.clone(),
            });
        }
    }
    for chunk in items.chunks(BATCH) {
        for r in ws.execute_many(chunk, then).unwrap() {
            r.unwrap();
        }
    }
    for (i, id) in ids.iter().enumerate().filter(|(i, _)| i % 60 == 0) {
        let contract = format!("%PDF-1.4 contract {i}");
        ws.attach(id, "request", Some("contract"), "contract.pdf", &mut contract.as_bytes(), &rita, then).unwrap();
        ws.execute(id, &Command::Complete { task: "request".into(), values: Values::new() }, &rita, then).unwrap();
    }
    let webhook = integration_seed(&ws, &dir.database(), then);
    (ids[0].clone(), design_seed(&ws, &dir.database(), then), webhook)
}

/// A second version of employee onboarding (for the diff page) and an open
/// draft of it (for the editor's pages); returns the draft's id.
fn design_seed(ws: &Workspace, database: &std::path::Path, at: Timestamp) -> String {
    let owner = ws.person("owner@example.com").unwrap();
    let row = ws.template_row("employee-onboarding", None).unwrap();
    let mut t: attest_template::Template = serde_json::from_str(&row.json).unwrap();
    t.tasks[0].name = "Request the new hire (v2)".into();
    t.tasks[1].assignee = attest_template::Assignee::Role("hr".into());
    ws.publish(&owner, t, at).unwrap();
    let drafts = attest_store_sqlite::SqliteStore::open(database).unwrap();
    let start = attest_core::drafts::DraftStart::Version { key: "employee-onboarding".into(), version: None };
    ws.create_draft(&drafts, &owner, &start, at).unwrap().id
}

/// A schedule, a webhook subscription and a trigger URL, for the integration
/// pages; returns the subscription's id.
fn integration_seed(ws: &Workspace, database: &std::path::Path, at: Timestamp) -> String {
    let store = attest_store_sqlite::SqliteStore::open(database).unwrap();
    let admin = ws.person("admin@example.com").unwrap();
    let rule = attest_core::schedule::ScheduleRule::Every {
        every: attest_core::schedule::Every::Quarterly,
        at: "09:00".into(),
        weekday: None,
        day: Some(1),
    };
    let new = attest_core::schedule::NewSchedule {
        template: "vendor-onboarding".into(),
        name_pattern: "Vendor review {quarter} {year}".into(),
        rule,
        time_zone: "Europe/Berlin".into(),
        starts_as: "owner@example.com".into(),
        due_days: Some(10),
        due_business_days: true,
    };
    attest_core::schedule::create(ws, &store, &admin, new, at).unwrap();
    let trigger = attest_core::hooks::NewTrigger {
        template: "vendor-onboarding".into(),
        secret: "benchmark-trigger-secret".into(),
        run_as: "owner@example.com".into(),
        mapping: Vec::new(),
    };
    ws.set_trigger(&store, &admin, trigger, at).unwrap();
    let subscription = attest_core::hooks::NewSubscription {
        url: "https://hooks.example.com/attest".into(),
        secret: "whsec_YmVuY2htYXJrLXNpZ25pbmctc2VjcmV0LTAwMDAwMDAw".into(),
        template: None,
        event_types: Vec::new(),
    };
    ws.create_subscription(&store, &admin, subscription, at).unwrap().id
}

/// GET routes of the page table that are downloads or actions rather than
/// pages, and why the benchmark leaves them out of its timings.
const NOT_PAGES: &[(&str, &str)] = &[
    ("/assets/{file}", "stylesheet and script compiled into the binary; no store read"),
    ("/audit/verify", "an action that re-hashes the whole ledger; timed once below, for scale"),
    ("/audit/runs/{run}/pack", "a zip download of a run's evidence pack, not a page"),
    ("/audit/pack", "a zip download of a period's evidence pack, not a page"),
];

/// The pages to time, each with the route it exercises. Every GET page of the
/// route table must have at least one here (or be in `NOT_PAGES`), so a new
/// page cannot be left out of the benchmark unnoticed.
fn pages(run: &str, draft: &str, webhook: &str) -> Vec<(&'static str, String)> {
    let pages: Vec<(&'static str, String)> = vec![
        ("/login", "/login".into()),
        ("/", "/".into()),
        ("/account/password", "/account/password".into()),
        ("/runs", "/runs".into()),
        ("/runs", "/runs?status=open".into()),
        ("/runs", "/runs?template=vendor-onboarding&status=completed".into()),
        ("/runs", "/runs?assignee=sam@example.com".into()),
        ("/runs", "/runs?assignee=fin@example.com&overdue=1".into()),
        ("/runs", "/runs?overdue=1".into()),
        ("/runs.csv", "/runs.csv".into()),
        ("/runs/new", "/runs/new".into()),
        ("/runs/{run}", format!("/runs/{run}")),
        ("/audit", "/audit".into()),
        ("/audit/proofs/{index}", "/audit/proofs/100".into()),
        ("/admin/people", "/admin/people".into()),
        ("/admin/tokens", "/admin/tokens".into()),
        ("/dashboards", "/dashboards".into()),
        ("/dashboards/templates/{key}", "/dashboards/templates/vendor-onboarding".into()),
        ("/dashboards/templates/{key}", "/dashboards/templates/vendor-onboarding?version=1".into()),
        (
            "/dashboards/templates/{key}/compare",
            "/dashboards/templates/vendor-onboarding/compare?left=1&right=1".into(),
        ),
        (
            "/dashboards/templates/{key}/compare",
            "/dashboards/templates/employee-onboarding/compare?left=1&right=2".into(),
        ),
        ("/templates", "/templates".into()),
        ("/templates/{key}", "/templates/vendor-onboarding".into()),
        ("/templates/{key}", "/templates/employee-onboarding".into()),
        ("/templates/{key}/diff", "/templates/employee-onboarding/diff?from=1&to=2".into()),
        ("/drafts/new", "/drafts/new".into()),
        ("/drafts/{draft}", format!("/drafts/{draft}")),
        ("/drafts/{draft}", format!("/drafts/{draft}?check=1")),
        ("/drafts/{draft}/yaml", format!("/drafts/{draft}/yaml?check=1")),
        ("/account/time-zone", "/account/time-zone".into()),
        ("/schedules", "/schedules".into()),
        ("/admin/webhooks", "/admin/webhooks".into()),
        ("/admin/webhooks/{id}", format!("/admin/webhooks/{webhook}")),
        ("/templates/{key}/trigger", "/templates/vendor-onboarding/trigger".into()),
    ];
    let get_pages = || attest_server::ROUTES.iter().filter(|r| r.is_page() && r.method == "GET");
    for route in get_pages() {
        let covered = pages.iter().any(|(p, _)| *p == route.path) || NOT_PAGES.iter().any(|(p, _)| *p == route.path);
        assert!(covered, "the page {} has no URL in the benchmark: add one to `pages`", route.path);
    }
    for route in pages.iter().map(|(r, _)| *r).chain(NOT_PAGES.iter().map(|(r, _)| *r)) {
        assert!(get_pages().any(|r| r.path == route), "{route} is not a GET page of the route table");
    }
    pages
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let runs: usize = std::env::var("ATTEST_BENCH_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000);
    let repeat: usize = std::env::var("ATTEST_BENCH_REPEAT").ok().and_then(|v| v.parse().ok()).unwrap_or(30);
    let tmp = tempfile::tempdir().unwrap();
    let dir = DataDir::new(tmp.path().join("data"));
    let started = Instant::now();
    let (busy_run, draft, webhook) = seed(&dir, runs);
    println!("seeded {runs} runs in {:.1} s", started.elapsed().as_secs_f64());
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(measure(dir, busy_run, draft, webhook, repeat));
}

async fn measure(dir: DataDir, run: String, draft: String, webhook: String, repeat: usize) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let running = attest_server::start(attest_server::Config::new(dir.root().to_path_buf()), listener).await.unwrap();
    let base = format!("http://{}", running.addr);
    let seeded = running.seeded.clone().expect("the first admin gets a one-time password");
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let r = client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"email": seeded.admin, "password": seeded.one_time_password}))
        .send()
        .await
        .unwrap();
    let cookie = r.headers().get("set-cookie").unwrap().to_str().unwrap().split(';').next().unwrap().to_string();
    let body: Value = r.json().await.unwrap();
    let r = client
        .post(format!("{base}/api/v1/auth/password"))
        .header("cookie", &cookie)
        .header("x-csrf-token", body["csrf_token"].as_str().unwrap())
        .json(&json!({"current_password": seeded.one_time_password, "new_password": "benchmark password"}))
        .send()
        .await
        .unwrap();
    let cookie = r.headers().get("set-cookie").unwrap().to_str().unwrap().split(';').next().unwrap().to_string();
    let pages = pages(&run, &draft, &webhook);
    // The machine's load, since a loaded machine stretches the slowest requests.
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("load average before: {}", load.trim());
    println!("{:<60} {:>9} {:>9} {:>9}", "page", "median ms", "p95 ms", "max ms");
    let mut worst = Duration::ZERO;
    for (_, path) in &pages {
        let mut times = Vec::with_capacity(repeat);
        for _ in 0..repeat {
            let t = Instant::now();
            let r = client.get(format!("{base}{path}")).header("cookie", &cookie).send().await.unwrap();
            let status = r.status().as_u16();
            let _ = r.bytes().await.unwrap();
            times.push(t.elapsed());
            assert_eq!(status, 200, "{path}");
        }
        times.sort();
        let median = times[times.len() / 2];
        let p95 = times[(times.len() * 95).div_ceil(100) - 1];
        let max = *times.last().unwrap();
        worst = worst.max(max);
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        println!("{path:<60} {:>9.2} {:>9.2} {:>9.2}", ms(median), ms(p95), ms(max));
    }
    // An action, not a page: it re-hashes the whole ledger. Reported for scale.
    for path in ["/audit/verify"] {
        let t = Instant::now();
        let r = client.get(format!("{base}{path}")).header("cookie", &cookie).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200, "{path}");
        let n = r.bytes().await.unwrap().len();
        println!("{path:<60} {:>9.2} ms once ({n} bytes; an action, not a page)", t.elapsed().as_secs_f64() * 1e3);
    }
    println!("slowest page request: {:.2} ms (target: under 50 ms)", worst.as_secs_f64() * 1e3);
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("load average after: {}", load.trim());
    running.shutdown().await;
}

//! Dashboard metrics read time with many runs in the store.
//!
//! Seeds a data directory through the real use cases (engine, group commits
//! with fsync, facts written with the events): runs of two templates, one of
//! them with two versions, started over two years of simulated time in 6-hour
//! steps, each step one group commit that starts new runs and moves open
//! ones on (some rejected, some cancelled, some left open). Then measures
//! reading the figures of one template, of one version over a quarter, a
//! version comparison and the workspace overview.
//!
//! `cargo bench -p attest-core --bench metrics [-- RUNS [REPETITIONS]]` (default 100000 runs, 20 repetitions)

use std::time::{Duration, Instant};

use attest_core::metrics::Period;
use attest_core::workspace::init_data_dir;
use attest_core::{BatchItem, DataDir, Workspace};
use attest_engine::{Actor, Command, RunStatus, Values};
use jiff::{SignedDuration, Timestamp};

const TEMPLATE: &str = r#"
format: attest/v1
key: KEY
name: NAME
roles: [it, approver]
controls:
  - { id: C-1, name: Shipped items are approved }
tasks:
  - key: request
    name: Ask
    assignee: starter
    stop: true
    fields:
      - { key: model, label: Model, type: text, required: true }
  - key: ship
    name: Ship
    assignee: role:it
    controls: [C-1]
    due: { after: task:request, in: DUE }
  - key: approve
    name: Approve
    type: approval
    approves: [ship]
    assignee: role:approver
"#;

const STEP_HOURS: i64 = 6;
const STEPS: usize = 2 * 365 * 4;

/// One measured read; returns how many runs (or rows) it covered.
type Reader<'a> = Box<dyn Fn() -> u64 + 'a>;

/// A small deterministic generator, so every seeding is the same.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

fn template(key: &str, name: &str, due: &str) -> attest_template::Template {
    let source = TEMPLATE.replace("KEY", key).replace("NAME", name).replace("DUE", due);
    Workspace::validate(&source, attest_template::SourceFormat::Yaml, None).expect("valid template")
}

/// Time this thread has spent on a CPU, from Linux's scheduler statistics:
/// unlike wall time, it does not grow when other processes take the cores.
fn thread_cpu() -> Option<Duration> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    text.split_whitespace().next()?.parse().ok().map(Duration::from_nanos)
}

fn stats(samples: &mut [Duration]) -> (f64, f64) {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    (ms(samples[samples.len() / 2]), ms(samples[samples.len() - 1]))
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let runs: usize = args.first().and_then(|s| s.parse().ok()).unwrap_or(100_000);
    let repetitions: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(20);

    let tmp = tempfile::tempdir().expect("tempdir");
    // METRICS_BENCH_DATA keeps the seeded directory, and reuses it when it exists.
    let kept = std::env::var_os("METRICS_BENCH_DATA").map(std::path::PathBuf::from);
    let dir = DataDir::new(kept.clone().unwrap_or_else(|| tmp.path().join("data")));
    let t0: Timestamp = "2024-01-01T00:00:00Z".parse().expect("valid");
    let end = t0.checked_add(SignedDuration::from_hours(STEP_HOURS * (STEPS as i64 - 1))).expect("in range");
    if !dir.exists() {
        seed(&dir, t0, runs);
    }
    let db_mb = std::fs::metadata(dir.database()).map(|m| m.len() as f64 / 1e6).unwrap_or(0.0);
    measure(&dir, end, db_mb, repetitions);
}

fn seed(dir: &DataDir, t0: Timestamp, runs: usize) {
    let (ws, _) = init_data_dir(dir, "bench", "admin@example.com", "Admin", t0).expect("init");
    let admin = Actor::person("admin@example.com", vec![], true);
    ws.publish(&admin, template("laptop", "Laptop request", "12h"), t0).expect("publish");
    ws.publish(&admin, template("access", "Access request", "1d"), t0).expect("publish");
    let rita = Actor::person("rita@example.com", vec![], false);
    let ivan = Actor::person("ivan@example.com", vec!["it".into()], false);
    let alice = Actor::person("alice@example.com", vec!["approver".into()], false);

    let mut rng = Lcg(7);
    let mut open: Vec<String> = Vec::new();
    let mut started = 0usize;
    let seeding = Instant::now();
    for step in 0..STEPS {
        let now = t0.checked_add(SignedDuration::from_hours(STEP_HOURS * step as i64)).expect("in range");
        if step == STEPS / 2 {
            ws.publish(&admin, template("laptop", "Laptop request", "8h"), now).expect("publish v2");
        }
        let mut items = Vec::new();
        for run in &open {
            if !rng.chance(45) {
                continue;
            }
            let state = ws.run(run).expect("run").state;
            let done = |k: &str| state.task(k).is_some_and(|t| t.done);
            let (command, by) = if rng.chance(1) {
                (Command::Cancel { reason: "no longer needed".into() }, &admin)
            } else if !done("request") {
                let values: Values = [("model".to_string(), serde_json::json!("standard"))].into_iter().collect();
                (Command::Complete { task: "request".into(), values }, &rita)
            } else if !done("ship") {
                (Command::Complete { task: "ship".into(), values: Values::new() }, &ivan)
            } else if rng.chance(10) {
                (Command::Reject { task: "approve".into(), comment: "check again".into() }, &alice)
            } else {
                (Command::Approve { task: "approve".into(), comment: None }, &alice)
            };
            items.push(BatchItem::Execute { run: run.clone(), command, by: by.clone() });
        }
        // Starts spread evenly over the steps, so the last weeks still hold open runs.
        let new = (step + 1) * runs / STEPS - started;
        for i in 0..new {
            let key = if (started + i) % 5 < 3 { "laptop" } else { "access" };
            items.push(BatchItem::Start { template: key.into(), name: Some("bench".into()), by: rita.clone() });
        }
        started += new;
        let results = ws.execute_many(&items, now).expect("batch");
        for result in results {
            let state = result.expect("accepted");
            if state.status == RunStatus::Open {
                if !open.contains(&state.run_id) {
                    open.push(state.run_id.clone());
                }
            } else {
                open.retain(|r| *r != state.run_id);
            }
        }
    }
    println!("seeded {runs} runs in {:.1}s", seeding.elapsed().as_secs_f64());
}

fn measure(dir: &DataDir, now: Timestamp, db_mb: f64, repetitions: usize) {
    let ws = Workspace::open(dir).expect("open");
    let quarter = Period { from: now.checked_sub(SignedDuration::from_hours(24 * 91)).ok(), to: None };
    let overview = ws.metrics_overview(Period::default(), now).expect("overview");
    println!("{} runs ({} open) in the store, database {db_mb:.0} MB", overview.runs.started, overview.runs.open);
    let cases: Vec<(&str, Reader<'_>)> = vec![
        (
            "template, all versions, all time",
            Box::new(|| ws.template_metrics("laptop", None, Period::default(), now).expect("m").runs.started),
        ),
        (
            "template version 2, last quarter",
            Box::new(|| ws.template_metrics("laptop", Some(2), quarter, now).expect("m").runs.started),
        ),
        (
            "version 1 vs 2, all time",
            Box::new(|| {
                let c = ws.compare_versions("laptop", 1, 2, Period::default(), now).expect("c");
                c.left.runs.started + c.right.runs.started
            }),
        ),
        (
            "workspace overview, all time",
            Box::new(|| ws.metrics_overview(Period::default(), now).expect("o").runs.started),
        ),
    ];
    for (name, read) in &cases {
        let mut samples = Vec::with_capacity(repetitions);
        let mut cpu = Vec::with_capacity(repetitions);
        let mut covered = 0;
        for _ in 0..repetitions {
            let (t, c) = (Instant::now(), thread_cpu());
            covered = read();
            samples.push(t.elapsed());
            if let (Some(before), Some(after)) = (c, thread_cpu()) {
                cpu.push(after.saturating_sub(before));
            }
        }
        let (median, max) = stats(&mut samples);
        let cpu_median = if cpu.is_empty() { f64::NAN } else { stats(&mut cpu).0 };
        println!(
            "{name:<36} {covered:>7} runs  wall median {median:>7.1} ms  max {max:>7.1} ms  cpu median {cpu_median:>6.1} ms"
        );
    }
    // Where the time of the all-time template read goes, store call by store call.
    let scope = attest_store::MetricScope { template: Some("laptop".into()), ..Default::default() };
    let store = ws.store();
    let calls: Vec<(&str, Reader<'_>)> = vec![
        ("store: run_counts", Box::new(|| store.run_counts(&scope).expect("r").len() as u64)),
        ("store: cycle_times", Box::new(|| store.cycle_times(&scope).expect("r").len() as u64)),
        ("store: task_waits", Box::new(|| store.task_waits(&scope).expect("r").len() as u64)),
        ("store: completion_days", Box::new(|| store.completion_days(&scope).expect("r").len() as u64)),
        ("store: control_counts", Box::new(|| store.control_counts(&scope).expect("r").len() as u64)),
        ("store: overdue_counts", Box::new(|| store.overdue_counts(&scope, now).expect("r").len() as u64)),
    ];
    for (name, call) in &calls {
        let mut samples = Vec::with_capacity(repetitions);
        let mut cpu = Vec::with_capacity(repetitions);
        for _ in 0..repetitions {
            let (t, c) = (Instant::now(), thread_cpu());
            call();
            samples.push(t.elapsed());
            if let (Some(before), Some(after)) = (c, thread_cpu()) {
                cpu.push(after.saturating_sub(before));
            }
        }
        let (median, _) = stats(&mut samples);
        let cpu_median = if cpu.is_empty() { f64::NAN } else { stats(&mut cpu).0 };
        println!("  {name:<34} wall median {median:>7.1} ms  cpu median {cpu_median:>6.1} ms");
    }
}

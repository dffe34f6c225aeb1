//! Jobs per second through the scheduler over a real SQLite file (fsync on):
//! no-op jobs (claim, run, complete: the queue's own cost) and reminder jobs
//! (each an engine command committed to the ledger by the system actor).
//!
//! `cargo bench -p attest-core --bench jobs [-- NOOP_JOBS REMINDER_JOBS]`

use std::sync::Arc;
use std::time::Instant;

use attest_core::scheduler::{JobError, JobHandler, Scheduler, SchedulerConfig};
use attest_core::workspace::init_data_dir;
use attest_core::{DataDir, Workspace};
use attest_store::{FsBlobStore, JobRow, JobStore, NewJob};
use attest_store_sqlite::SqliteStore;
use attest_template::SourceFormat;
use jiff::{SignedDuration, Timestamp};

const TEMPLATE: &str = "
format: attest/v1
key: remind-me
name: Remind me
tasks:
  - key: work
    name: Work
    assignee: starter
    due: { after: run_started, in: 2d }
    remind:
      - { before_due: 1d }
";

#[derive(Debug)]
struct Noop;

impl JobHandler for Noop {
    fn run(&self, _job: &JobRow, _now: Timestamp) -> Result<(), JobError> {
        Ok(())
    }
}

fn arg(index: usize, default: usize) -> usize {
    std::env::args().filter(|a| !a.starts_with('-')).nth(index).and_then(|a| a.parse().ok()).unwrap_or(default)
}

fn main() {
    let noop_jobs = arg(1, 20_000);
    let reminder_jobs = arg(2, 1_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let data = DataDir::new(dir.path().join("data"));
    let t0: Timestamp = "2026-03-02T09:00:00Z".parse().expect("timestamp");
    init_data_dir(&data, "Bench", "admin@example.com", "Admin", t0).expect("init");
    let store = Arc::new(SqliteStore::open(data.database()).expect("open"));
    let ws = Arc::new(Workspace::with_store(store.clone(), Arc::new(FsBlobStore::new(data.files()))));
    let admin = ws.person("admin@example.com").expect("admin");
    let template = Workspace::validate(TEMPLATE, SourceFormat::Yaml, None).expect("template");
    ws.publish(&admin, template, t0).expect("publish");
    let config = SchedulerConfig { batch: 500, ..SchedulerConfig::default() };
    let mut scheduler = Scheduler::new(ws.clone(), store.clone(), store.clone(), store.clone(), "bench", config);
    scheduler.register("noop", Arc::new(Noop));

    let jobs: Vec<NewJob> = (0..noop_jobs)
        .map(|i| NewJob { kind: "noop".into(), key: format!("noop:{i}"), payload: "{}".into(), run_at: t0 })
        .collect();
    store.enqueue(&jobs, t0).expect("enqueue");
    let started = Instant::now();
    let mut done = 0;
    while done < noop_jobs {
        let report = scheduler.tick(t0).expect("tick");
        assert!(report.jobs_done > 0, "no progress");
        done += report.jobs_done;
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "no-op jobs:     {noop_jobs} in {secs:.2} s = {:.0} jobs/s (claim + run + complete)",
        noop_jobs as f64 / secs
    );

    for _ in 0..reminder_jobs {
        ws.start_run(&admin, "remind-me", None, t0).expect("start");
    }
    scheduler.tick(t0).expect("follow the ledger");
    let reminder_time = t0.checked_add(SignedDuration::from_hours(24)).expect("in range");
    let started = Instant::now();
    let mut done = 0;
    while done < reminder_jobs {
        let report = scheduler.tick(reminder_time).expect("tick");
        assert!(report.jobs_done > 0, "no progress");
        done += report.jobs_done;
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "reminder jobs:  {reminder_jobs} in {secs:.2} s = {:.0} jobs/s (engine command + ledger commit each)",
        reminder_jobs as f64 / secs
    );
}

//! Runs started→completed per second for the 10-task employee onboarding
//! example: in memory through the engine alone, and durably through the
//! SQLite store with fsync on (one transaction per command, and group commit).
//!
//! `cargo bench -p attest-core --bench runs [-- ENGINE_RUNS DURABLE_RUNS]`

use std::time::Instant;

use attest_core::workspace::init_data_dir;
use attest_core::{BatchItem, DataDir, Workspace};
use attest_engine::{Actor, Command, CompiledTemplate, FileRef, RunState, Values};
use jiff::{Timestamp, ToSpan};
use serde_json::{Value, json};

/// The allocator of the `attest` binary, so the figures are the product's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const SOURCE: &str = include_str!("../../../examples/employee-onboarding.yaml");

struct People {
    manager: Actor,
    hr_lead: Actor,
    hr: Actor,
    it: Actor,
    payroll: Actor,
}

fn person(email: &str, role: &str) -> Actor {
    Actor::person(email, vec![role.to_string()], false)
}

fn people() -> People {
    People {
        manager: person("maria@example.com", "hiring-manager"),
        hr_lead: person("hanna@example.com", "hr-lead"),
        hr: person("henry@example.com", "hr"),
        it: person("ivan@example.com", "it"),
        payroll: person("paula@example.com", "payroll"),
    }
}

fn values(v: Value) -> Values {
    v.as_object().map(|o| o.iter().map(|(k, v)| (k.clone(), v.clone())).collect()).unwrap_or_default()
}

fn pdf(name: &str) -> FileRef {
    FileRef { name: name.into(), size: 1024, media_type: "application/pdf".into(), sha256: "ab".repeat(32).into() }
}

/// The commands that take one onboarding run from start to completion, after
/// `Start`, each with its actor.
fn script(p: &People, now: Timestamp) -> Vec<(Command, Actor)> {
    let start = now.to_zoned(jiff::tz::TimeZone::UTC).date();
    let start_date = start.checked_add(10.days()).expect("in range").to_string();
    let today = start.to_string();
    let complete = |task: &str, v: Value| Command::Complete { task: task.into(), values: values(v) };
    let attach = |task: &str, field: &str, name: &str| Command::AttachEvidence {
        task: task.into(),
        field: Some(field.into()),
        file: pdf(name),
    };
    vec![
        (
            complete(
                "request",
                json!({
                    "full_name": "Jo Doe", "personal_email": "jo@mail.example.org", "start_date": start_date,
                    "department": "engineering", "job_title": "Engineer", "employment_type": "full_time",
                    "manager": ["maria@example.com"], "equipment": ["laptop"], "privileged_access": false,
                }),
            ),
            p.manager.clone(),
        ),
        (Command::Approve { task: "headcount_approval".into(), comment: None }, p.hr_lead.clone()),
        (attach("background_check", "check_report", "screening.pdf"), p.hr.clone()),
        (complete("background_check", json!({ "check_result": "clear" })), p.hr.clone()),
        (attach("contract", "signed_contract", "contract.pdf"), p.hr.clone()),
        (complete("contract", json!({ "nda_included": true, "contract_signed_on": today })), p.hr.clone()),
        (
            complete(
                "account_provisioning",
                json!({ "username": "jo.doe", "work_email": "jo.doe@example.com", "groups": ["all-staff"], "mfa_enrolled": true }),
            ),
            p.it.clone(),
        ),
        (
            complete(
                "equipment_shipping",
                json!({ "asset_tags": "AT-000001", "laptop_serial": "SN-1", "shipped_on": today }),
            ),
            p.it.clone(),
        ),
        (
            complete("payroll_setup", json!({ "payroll_id": "PR000001", "bank_details_verified": true })),
            p.payroll.clone(),
        ),
        (attach("security_training", "training_certificate", "certificate.pdf"), p.manager.clone()),
        (
            complete("security_training", json!({ "training_completed_on": start_date, "aup_acknowledged": true })),
            p.manager.clone(),
        ),
        (Command::Approve { task: "onboarding_signoff".into(), comment: None }, p.hr_lead.clone()),
    ]
}

// Not inlined, so that a profiler can count each path on its own.
#[inline(never)]
fn engine_only(compiled: &CompiledTemplate, runs: u64, now: Timestamp) -> (f64, u64) {
    let p = people();
    let steps = script(&p, now);
    let mut events_total = 0u64;
    let t0 = Instant::now();
    for i in 0..runs {
        let (mut events, mut state) = attest_engine::execute(
            compiled,
            None,
            &Command::Start { run: format!("run-{i}"), name: "bench".into(), due_at: None },
            &p.manager,
            now,
        )
        .expect("start");
        for (command, actor) in &steps {
            let (more, next) =
                attest_engine::execute_owned(compiled, Some(state), command, actor, now).expect("step accepted");
            events.extend(more);
            state = next;
        }
        assert_eq!(state.status, attest_engine::RunStatus::Completed, "the script completes the run");
        events_total += events.len() as u64;
    }
    (t0.elapsed().as_secs_f64(), events_total)
}

fn setup_store(now: Timestamp) -> (tempfile::TempDir, Workspace) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = DataDir::new(tmp.path().join("data"));
    let (ws, _) = init_data_dir(&dir, "bench", "admin@example.com", "Admin", now).expect("init");
    let operator =
        Actor { kind: attest_engine::ActorKind::System, id: "bench".into(), roles: Default::default(), admin: true };
    let t = attest_template::parse(SOURCE, attest_template::SourceFormat::Yaml, None).expect("example parses");
    ws.publish(&operator, t, now).expect("publish");
    (tmp, ws)
}

// Not inlined, so that a profiler can count each path on its own.
#[inline(never)]
fn durable_per_command(runs: u64, now: Timestamp) -> f64 {
    let (_tmp, ws) = setup_store(now);
    let p = people();
    let steps = script(&p, now);
    let t0 = Instant::now();
    for _ in 0..runs {
        let state = ws.start_run(&p.manager, "employee-onboarding", Some("bench"), now).expect("start");
        let mut last: Option<RunState> = None;
        for (command, actor) in &steps {
            last = Some(ws.execute(&state.run_id, command, actor, now).expect("step").1);
        }
        assert_eq!(last.map(|s| s.status), Some(attest_engine::RunStatus::Completed));
    }
    t0.elapsed().as_secs_f64()
}

// Not inlined, so that a profiler can count each path on its own.
#[inline(never)]
fn durable_group_commit(runs: u64, batch_runs: usize, now: Timestamp) -> f64 {
    let (_tmp, ws) = setup_store(now);
    let p = people();
    let steps = script(&p, now);
    // The callers: as the server's writer hands each result to the request
    // that waits for it, the results go to another thread, which checks and
    // drops them while the next batch is written.
    let (results, callers) =
        std::sync::mpsc::sync_channel::<(bool, Vec<attest_core::Result<std::sync::Arc<RunState>>>)>(4);
    let checker = std::thread::spawn(move || {
        let mut completed = 0u64;
        for (last_step, batch) in callers {
            for result in batch {
                let state = result.expect("step accepted");
                if last_step {
                    assert_eq!(state.status, attest_engine::RunStatus::Completed, "the script completes the run");
                    completed += 1;
                }
            }
        }
        completed
    });
    let t0 = Instant::now();
    let mut left = runs as usize;
    while left > 0 {
        let n = left.min(batch_runs);
        left -= n;
        let starts: Vec<BatchItem> = (0..n)
            .map(|_| BatchItem::Start {
                template: "employee-onboarding".into(),
                name: Some("bench".into()),
                by: p.manager.clone(),
            })
            .collect();
        let ids: Vec<String> = ws
            .execute_many(&starts, now)
            .expect("batch")
            .into_iter()
            .map(|r| r.expect("start").run_id.clone())
            .collect();
        for (i, (command, actor)) in steps.iter().enumerate() {
            let items: Vec<BatchItem> = ids
                .iter()
                .map(|run| BatchItem::Execute { run: run.clone(), command: command.clone(), by: actor.clone() })
                .collect();
            let batch = ws.execute_many(&items, now).expect("batch");
            assert_eq!(batch.len(), n);
            results.send((i + 1 == steps.len(), batch)).expect("the checking thread runs");
        }
    }
    drop(results);
    let completed = checker.join().expect("every step accepted and every run completed");
    let secs = t0.elapsed().as_secs_f64();
    assert_eq!(completed, runs, "every run completed");
    secs
}

fn main() {
    let args: Vec<u64> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let engine_runs = args.first().copied().unwrap_or(100_000);
    let durable_runs = args.get(1).copied().unwrap_or(2_000);
    let now: Timestamp = "2026-11-24T09:00:00Z".parse().expect("valid");
    let t = attest_template::parse(SOURCE, attest_template::SourceFormat::Yaml, None).expect("example parses");
    let hash = attest_template::content_hash(&t);
    let compiled = CompiledTemplate::new(t, 1, hash).expect("compiles");

    let (secs, events) = engine_only(&compiled, engine_runs, now);
    println!(
        "engine only (in memory, one core): {engine_runs} runs in {secs:.3} s = {:.0} runs/s ({:.0} events/s)",
        engine_runs as f64 / secs,
        events as f64 / secs
    );
    let per_command_runs = (durable_runs / 10).max(20);
    let secs = durable_per_command(per_command_runs, now);
    println!(
        "durable, one fsync'd transaction per command: {per_command_runs} runs in {secs:.3} s = {:.0} runs/s",
        per_command_runs as f64 / secs
    );
    let batch_runs = 500;
    let secs = durable_group_commit(durable_runs, batch_runs, now);
    println!(
        "durable, group commit of {batch_runs} runs per transaction (fsync on): {durable_runs} runs in {secs:.3} s = {:.0} runs/s",
        durable_runs as f64 / secs
    );
}

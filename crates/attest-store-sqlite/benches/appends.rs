//! Durable ledger appends per second through the real SQLite store: WAL with
//! `synchronous = FULL`, so every committed transaction is fsynced. Entries go
//! in through `Store::write_runs` as many small run commits, with 1 to 10,000
//! entries per transaction, and the share of the time spent in SHA-256 is
//! measured on the same entries, as a share of the CPU time of the writes
//! (wall time includes the fsyncs). Figures are printed, not asserted.
//!
//! `cargo bench -p attest-store-sqlite --bench appends [-- ENTRIES]`

use std::hint::black_box;
use std::time::{Duration, Instant};

use attest_engine::{Actor, Command, CompiledTemplate, Event, EventBody, RunState};
use attest_ledger::{leaf_hash, node_hash};
use attest_store::{EntryEvent, LedgerEntry, RunCommit, RunFacts, Store, TaskRow};
use attest_store_sqlite::SqliteStore;
use jiff::Timestamp;

/// A one-task template: the projection written with each commit stays small,
/// so the figures are about the ledger append, as the issue asks.
const TEMPLATE: &str = r#"{"format": "attest/v1", "key": "bench", "name": "Bench", "roles": ["ops"], "tasks": [
  {"key": "check", "name": "Check", "assignee": "role:ops", "fields": [{"key": "note", "label": "Note", "type": "text"}]}
]}"#;

/// Entries per transaction, and how many entries each setting appends.
const SETTINGS: &[(usize, usize)] = &[(1, 500), (100, 50_000), (1_000, 200_000), (10_000, 200_000)];

/// Events per run commit in the second shape: a run's command with its consequences.
const EVENTS_PER_COMMIT: usize = 10;

fn main() {
    let scale: f64 =
        std::env::args().skip(1).find_map(|a| a.parse::<usize>().ok()).map_or(1.0, |n| n as f64 / 200_000.0);
    let template = compile();
    println!("attest-store-sqlite durable appends (WAL, synchronous=FULL; figures, not assertions)");
    println!(
        "{:>8} {:>14} {:>8} {:>9} {:>11} {:>13} {:>8} {:>8}",
        "per txn", "events/commit", "entries", "seconds", "entries/s", "cpu us/entry", "sha256", "jcs"
    );
    for events_per_commit in [1, EVENTS_PER_COMMIT] {
        for &(per_txn, entries) in SETTINGS {
            let entries = ((entries as f64 * scale) as usize).max(per_txn).div_ceil(per_txn) * per_txn;
            let t = run(&template, per_txn, entries, events_per_commit);
            println!(
                "{per_txn:>8} {events_per_commit:>14} {entries:>8} {:>9.3} {:>11.0} {:>13.2} {:>7.1}% {:>7.1}%",
                t.wall.as_secs_f64(),
                entries as f64 / t.wall.as_secs_f64(),
                t.cpu.as_secs_f64() * 1e6 / entries as f64,
                100.0 * t.sha256.as_secs_f64() / t.cpu.as_secs_f64(),
                100.0 * t.encoding.as_secs_f64() / t.cpu.as_secs_f64()
            );
        }
    }
}

fn compile() -> CompiledTemplate {
    let template = attest_template::parse(TEMPLATE, attest_template::SourceFormat::Json, None)
        .unwrap_or_else(|d| panic!("the bench template is invalid: {d:?}"));
    let hash = attest_template::content_hash(&template);
    CompiledTemplate::new(template, 1, hash).expect("the bench template compiles")
}

/// CPU time this thread has run, from the kernel's scheduler statistics: on a
/// shared machine it stays meaningful when wall time does not.
fn thread_cpu() -> Duration {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|n| n.parse().ok()))
        .map_or(Duration::ZERO, Duration::from_nanos)
}

/// Where the time of one setting went.
struct Timings {
    /// Wall time of the writes, fsyncs included.
    wall: Duration,
    /// CPU time of the writes.
    cpu: Duration,
    /// SHA-256 alone on the same entries: a leaf and an interior node each.
    sha256: Duration,
    /// RFC 8785 encoding alone of the same entries.
    encoding: Duration,
}

/// Appends `entries` entries, `per_txn` to a transaction, and times them.
fn run(template: &CompiledTemplate, per_txn: usize, entries: usize, events_per_commit: usize) -> Timings {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(dir.path().join("bench.db")).expect("open store");
    let actor = Actor::person("ops@example.com", vec!["ops".into()], false);
    let at: Timestamp = "2025-01-01T00:00:00Z".parse().expect("timestamp");
    let commits_per_txn = per_txn.div_ceil(events_per_commit);
    let mut run_number = 0u64;
    let mut written = 0usize;
    let mut elapsed = Duration::ZERO;
    let mut cpu = Duration::ZERO;
    let mut encoded: Vec<Vec<u8>> = Vec::with_capacity(entries);
    let mut encoding = Duration::ZERO;
    while written < entries {
        let batch: Vec<RunCommit> = (0..commits_per_txn)
            .map(|_| {
                run_number += 1;
                commit(template, &actor, at, run_number, events_per_commit)
            })
            .collect();
        let entries_of_batch: Vec<LedgerEntry> = batch
            .iter()
            .flat_map(|c| {
                c.events.iter().enumerate().map(|(i, event)| LedgerEntry {
                    seq: 0,
                    run: Some(c.run_id.clone()),
                    run_seq: Some(i as u64),
                    event: EntryEvent::Run(event.clone()),
                })
            })
            .collect();
        let started = thread_cpu();
        for mut entry in entries_of_batch {
            entry.seq = encoded.len() as u64;
            encoded.push(entry.encode().expect("encodes"));
        }
        encoding += thread_cpu() - started;
        let (started, cpu_started) = (Instant::now(), thread_cpu());
        let results = store.write_runs(&batch).expect("write");
        elapsed += started.elapsed();
        cpu += thread_cpu() - cpu_started;
        assert!(results.iter().all(Result::is_ok), "no conflicts expected");
        written += batch.iter().map(|c| c.events.len()).sum::<usize>();
    }
    assert_eq!(store.ledger_size().expect("size"), written as u64);
    // SHA-256 work of the appends: one leaf hash per entry and one interior
    // node per entry (a tree of n leaves has n - 1 interior nodes).
    let started = Instant::now();
    let mut acc = [0u8; 32];
    for bytes in &encoded {
        let leaf = leaf_hash(bytes);
        acc = node_hash(&acc, &leaf);
    }
    black_box(acc);
    Timings { wall: elapsed, cpu, sha256: started.elapsed(), encoding }
}

/// A run commit: `run_started`, then `events - 1` comments.
fn commit(template: &CompiledTemplate, actor: &Actor, at: Timestamp, run: u64, events: usize) -> RunCommit {
    let run_id = format!("00000000-0000-7000-8000-{run:012x}");
    let start = Command::Start { run: run_id.clone(), name: format!("bench run {run}"), due_at: None };
    let (mut all, mut state): (Vec<Event>, RunState) =
        attest_engine::execute(template, None, &start, actor, at).expect("start is accepted");
    for i in 1..events {
        let comment = Command::Comment { task: "check".into(), text: format!("comment {i}") };
        let (more, next) = attest_engine::execute(template, Some(&state), &comment, actor, at).expect("comment");
        all.extend(more);
        state = next;
    }
    debug_assert!(matches!(all[0].body, EventBody::RunStarted { .. }));
    let tasks = vec![TaskRow {
        key: "check".into(),
        name: "Check".into(),
        status: "open".into(),
        approval: false,
        due_at: None,
        assignees: vec!["role:ops".into()],
    }];
    // Facts without task episodes: these commits are about the ledger and rows.
    let facts = RunFacts { event_count: state.event_count, ..RunFacts::before_events(&state) };
    RunCommit { run_id, expected_version: 0, events: all, state, tasks, facts, previous: None }
}

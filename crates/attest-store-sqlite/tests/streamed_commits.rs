//! Run commits streamed into one transaction (`Store::write_runs_streamed`):
//! they land as `write_runs` lands them, a conflict stays in its own slot, and
//! a commit that fails to arrive rolls the whole transaction back.
#![allow(clippy::unwrap_used)]

mod common;

use attest_engine::{Actor, Command, CompiledTemplate};
use attest_store::{CommitBytes, RunCommit, RunFacts, Store, StoreError, TaskRow};
use attest_store_sqlite::SqliteStore;
use common::compiled;
use jiff::Timestamp;

fn store() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("attest.db")).unwrap();
    (dir, store)
}

/// The start of run `n`, or a comment on it decided at `expected_version`.
fn commit(template: &CompiledTemplate, n: u64, expected_version: u64) -> RunCommit {
    let actor = Actor::person("ops@example.com", vec!["ops".into()], false);
    let at: Timestamp = "2026-03-02T09:00:00Z".parse().unwrap();
    let run_id = format!("run-{n}");
    let start = Command::Start { run: run_id.clone(), name: format!("run {n}"), due_at: None };
    let (mut events, state) = attest_engine::execute(template, None, &start, &actor, at).unwrap();
    let (events, state) = if expected_version == 0 {
        (events, state)
    } else {
        let comment = Command::Comment { task: "check".into(), text: "hello".into() };
        let (more, next) = attest_engine::execute(template, Some(&state), &comment, &actor, at).unwrap();
        events.clear();
        (more, next)
    };
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
    RunCommit { run_id, expected_version, events, state, tasks, facts, previous: None }
}

fn with_bytes(commit: RunCommit) -> attest_store::StoreResult<(RunCommit, CommitBytes)> {
    let bytes = CommitBytes::new(&commit)?;
    Ok((commit, bytes))
}

#[test]
fn streamed_commits_store_the_entries_write_runs_stores_and_keep_conflicts_per_run() {
    let template = compiled();
    let (_a, streamed) = store();
    let (_b, sliced) = store();
    let starts: Vec<RunCommit> = (0..3).map(|n| commit(&template, n, 0)).collect();
    // Run 1 is at version 1 in the store, so a comment decided at version 5 conflicts.
    let comments = vec![commit(&template, 0, 1), commit(&template, 1, 5), commit(&template, 2, 1)];
    for batch in [&starts, &comments] {
        let expected = sliced.write_runs(batch).unwrap();
        let mut commits = batch.iter().cloned().map(with_bytes);
        let written = streamed.write_runs_streamed(&mut commits).unwrap();
        let ids: Vec<&str> = written.iter().map(|(c, _)| c.run_id.as_str()).collect();
        assert_eq!(ids, batch.iter().map(|c| c.run_id.as_str()).collect::<Vec<_>>(), "in the order they came");
        let outcomes: Vec<_> = written.into_iter().map(|(_, outcome)| outcome).collect();
        assert_eq!(outcomes, expected);
    }
    let size = sliced.ledger_size().unwrap();
    assert_eq!(size, 5, "three starts and two comments; the conflicting comment wrote nothing");
    assert_eq!(streamed.ledger_size().unwrap(), size);
    let entries = |s: &SqliteStore| s.ledger_entries(0, size).unwrap().into_iter().map(|e| e.bytes).collect::<Vec<_>>();
    assert_eq!(entries(&streamed), entries(&sliced));
    assert_eq!(streamed.ledger_root(size).unwrap(), sliced.ledger_root(size).unwrap());
    assert_eq!(streamed.run("run-1").unwrap().map(|r| r.row.version), Some(1));
}

#[test]
fn a_commit_that_fails_to_arrive_rolls_the_whole_transaction_back() {
    let template = compiled();
    let (_dir, store) = store();
    let mut commits = (0..2)
        .map(|n| with_bytes(commit(&template, n, 0)))
        .chain(std::iter::once(Err(StoreError::Other(anyhow::anyhow!("the producer failed")))))
        .chain(std::iter::once(with_bytes(commit(&template, 9, 0))));
    let failed = store.write_runs_streamed(&mut commits);
    assert!(matches!(failed, Err(StoreError::Other(ref e)) if e.to_string() == "the producer failed"), "{failed:?}");
    assert_eq!(store.ledger_size().unwrap(), 0, "no entry of the batch landed");
    for run in ["run-0", "run-1", "run-9"] {
        assert!(store.run(run).unwrap().is_none(), "{run} was not written");
    }
    // The store stays usable: the same commits land in a new transaction.
    let batch: Vec<RunCommit> = (0..2).map(|n| commit(&template, n, 0)).collect();
    assert_eq!(store.write_runs(&batch).unwrap(), vec![Ok(()), Ok(())]);
    assert_eq!(store.ledger_size().unwrap(), 2);
}

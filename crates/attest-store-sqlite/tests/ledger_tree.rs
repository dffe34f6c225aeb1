//! The store keeps the leaves and the upper levels of the Merkle tree and
//! hashes the levels between from the leaves: its roots, proofs and leaves must
//! be those of the whole tree, at every size, whatever batches built it.
#![allow(clippy::unwrap_used)]

mod common;

use attest_engine::{Actor, Command, CompiledTemplate};
use attest_ledger::{MemoryNodeStore, append_batch, consistency_proof, inclusion_proof, leaf_hash, root};
use attest_store::{RunCommit, RunFacts, Store};
use attest_store_sqlite::SqliteStore;
use common::compiled;
use jiff::Timestamp;

/// Starts run `n` and adds `comments` comments to it in the same commit.
fn run_commit(template: &CompiledTemplate, n: usize, comments: usize) -> RunCommit {
    let actor = Actor::person("ops@example.com", vec!["ops".into()], false);
    let at: Timestamp = "2026-03-02T09:00:00Z".parse().unwrap();
    let run_id = format!("run-{n}");
    let start = Command::Start { run: run_id.clone(), name: format!("run {n}"), due_at: None };
    let (mut events, mut state) = attest_engine::execute(template, None, &start, &actor, at).unwrap();
    for i in 0..comments {
        let comment = Command::Comment { task: "check".into(), text: format!("comment {i}") };
        let (more, next) = attest_engine::execute(template, Some(&state), &comment, &actor, at).unwrap();
        events.extend(more);
        state = next;
    }
    let facts = RunFacts { event_count: state.event_count, ..RunFacts::before_events(&state) };
    RunCommit { run_id, expected_version: 0, events, state, tasks: Vec::new(), facts, previous: None }
}

#[test]
fn roots_proofs_and_leaves_match_the_whole_tree_at_every_size() {
    let template = compiled();
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("attest.db")).unwrap();
    // Batches of uneven sizes, so that transactions start and end at every
    // position within the lower levels' subtrees.
    let mut n = 0;
    for batch_runs in [1, 3, 2, 5, 1, 7, 4] {
        let commits: Vec<RunCommit> = (0..batch_runs).map(|i| run_commit(&template, n + i, (n + i) % 4)).collect();
        n += batch_runs;
        assert!(store.write_runs(&commits).unwrap().iter().all(Result::is_ok));
    }
    let size = store.ledger_size().unwrap();
    assert!(size > 40, "the ledger spans several level-4 subtrees: {size} entries");
    let entries = store.ledger_entries(0, size).unwrap();
    let leaves: Vec<_> = entries.iter().map(|e| leaf_hash(&e.bytes)).collect();
    let mut whole = MemoryNodeStore::default();
    append_batch(&mut whole, 0, &leaves).unwrap();

    assert_eq!(store.ledger_leaf(size).unwrap(), None, "no leaf past the end");
    for index in 0..size {
        assert_eq!(store.ledger_leaf(index).unwrap(), Some(leaves[index as usize]), "leaf {index}");
    }
    for tree_size in 1..=size {
        assert_eq!(store.ledger_root(tree_size).unwrap(), root(&whole, tree_size).unwrap(), "root of {tree_size}");
        for index in 0..tree_size {
            assert_eq!(
                store.inclusion_proof(index, tree_size).unwrap(),
                inclusion_proof(&whole, index, tree_size).unwrap(),
                "inclusion of {index} in {tree_size}"
            );
        }
        for old_size in 1..tree_size {
            assert_eq!(
                store.consistency_proof(old_size, tree_size).unwrap(),
                consistency_proof(&whole, old_size, tree_size).unwrap(),
                "consistency of {old_size} with {tree_size}"
            );
        }
    }
    assert!(store.ledger_root(size + 1).is_err(), "a root past the end names the missing node");
}

#[test]
fn a_database_that_stored_every_level_keeps_its_roots_and_proofs_after_migration_13() {
    let template = compiled();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("attest.db");
    let store = SqliteStore::open(&path).unwrap();
    let commits: Vec<RunCommit> = (0..12).map(|n| run_commit(&template, n, 3)).collect();
    assert!(store.write_runs(&commits).unwrap().iter().all(Result::is_ok));
    let size = store.ledger_size().unwrap();
    let root_before = store.ledger_root(size).unwrap();
    let proof_before = store.inclusion_proof(size / 2, size).unwrap();
    let leaves: Vec<_> = store.ledger_entries(0, size).unwrap().iter().map(|e| leaf_hash(&e.bytes)).collect();
    drop(store);

    // Schema 12 stored every level: put levels 1 to 3 back and step the
    // schema back, as an older binary would have left the file.
    let mut whole = MemoryNodeStore::default();
    append_batch(&mut whole, 0, &leaves).unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    let mut restored = 0;
    for level in 1..4u32 {
        for index in 0..size >> level {
            let hash = attest_ledger::NodeStore::node(&whole, level, index).unwrap().unwrap();
            conn.execute(
                "INSERT INTO ledger_nodes (level, idx, hash) VALUES (?1, ?2, ?3)",
                rusqlite::params![level, index as i64, &hash[..]],
            )
            .unwrap();
            restored += 1;
        }
    }
    assert!(restored > 10, "levels 1 to 3 held rows: {restored}");
    conn.pragma_update(None, "user_version", 12).unwrap();
    drop(conn);

    let store = SqliteStore::open(&path).unwrap();
    drop(store);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let left: i64 =
        conn.query_row("SELECT COUNT(*) FROM ledger_nodes WHERE level BETWEEN 1 AND 3", [], |r| r.get(0)).unwrap();
    assert_eq!(left, 0, "migration 13 deletes the levels that are hashed when read");
    drop(conn);
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.ledger_root(size).unwrap(), root_before);
    assert_eq!(store.inclusion_proof(size / 2, size).unwrap(), proof_before);
}

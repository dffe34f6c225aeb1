//! A run's state is stored as a snapshot every few events, at its start and
//! at its end; a read folds the events after the snapshot. Reads from a fresh
//! workspace (no run cache) give the state the commands returned, whatever
//! the distance to the last snapshot, and a database from before snapshots
//! keeps its runs.

use attest_core::workspace::init_data_dir;
use attest_core::{DataDir, Workspace};
use attest_engine::{Actor, Command, RunState};
use jiff::Timestamp;

const VENDOR: &str = include_str!("../../../examples/vendor-onboarding.yaml");

/// Fewest events between two snapshots of a run that stays open, as the
/// store's documentation promises.
const MOST_FOLDED_EVENTS: usize = 15;

struct Fixture {
    _tmp: tempfile::TempDir,
    dir: DataDir,
    ws: Workspace,
    requester: Actor,
    now: Timestamp,
}

fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = DataDir::new(tmp.path().join("data"));
    let now: Timestamp = "2026-11-24T09:00:00Z".parse().expect("valid");
    let (ws, _) = init_data_dir(&dir, "snapshots", "admin@example.com", "Admin", now).expect("init");
    let operator =
        Actor { kind: attest_engine::ActorKind::System, id: "test".into(), roles: Default::default(), admin: true };
    let template = Workspace::validate(VENDOR, attest_template::SourceFormat::Yaml, None).expect("example");
    ws.publish(&operator, template, now).expect("publish");
    let requester = Actor::person("rita@example.com", vec!["requester".into()], false);
    Fixture { _tmp: tmp, dir, ws, requester, now }
}

fn comment(n: usize) -> Command {
    Command::Comment { task: "request".into(), text: format!("note {n}") }
}

/// The run as a workspace without a run cache reads it.
fn read_fresh(dir: &DataDir, run: &str) -> RunState {
    Workspace::open(dir).expect("open").run(run).expect("run").state
}

#[test]
fn a_run_read_from_the_store_folds_the_events_after_its_snapshot() {
    let f = fixture();
    let started = f.ws.start_run(&f.requester, "vendor-onboarding", None, f.now).expect("start");
    let run = started.run_id.clone();
    let stored = f.ws.store().run(&run).expect("read").expect("stored");
    assert!(stored.tail.is_empty(), "a run's start writes its snapshot");
    assert_eq!(stored.row.state, started);
    let mut folded_most = 0;
    for n in 0..40 {
        let (_, state) = f.ws.execute(&run, &comment(n), &f.requester, f.now).expect("comment");
        let stored = f.ws.store().run(&run).expect("read").expect("stored");
        assert_eq!(stored.row.version, state.event_count);
        assert_eq!(stored.row.state.event_count + stored.tail.len() as u64, stored.row.version);
        assert!(stored.tail.len() <= MOST_FOLDED_EVENTS, "{} events after the snapshot", stored.tail.len());
        folded_most = folded_most.max(stored.tail.len());
        assert_eq!(read_fresh(&f.dir, &run), state, "after comment {n}");
        assert_eq!(f.ws.replay(&run).expect("replay"), state);
    }
    assert_eq!(folded_most, MOST_FOLDED_EVENTS, "reads folded events between snapshots");
    let cancel = Command::Cancel { reason: "test over".into() };
    let admin = Actor::person("admin@example.com", vec![], true);
    let (_, state) = f.ws.execute(&run, &cancel, &admin, f.now).expect("cancel");
    let stored = f.ws.store().run(&run).expect("read").expect("stored");
    assert!(stored.tail.is_empty(), "a run's end writes its snapshot");
    assert_eq!(stored.row.state, state);
    let listed = Workspace::open(&f.dir).expect("open").runs(&Default::default()).expect("list");
    assert_eq!(listed.iter().map(|r| &r.state).collect::<Vec<_>>(), vec![&state]);
}

#[test]
fn runs_listed_fold_each_run_from_its_own_snapshot() {
    let f = fixture();
    let mut expected = Vec::new();
    for comments in [0, 3, 15, 16, 17, 40] {
        let run = f.ws.start_run(&f.requester, "vendor-onboarding", None, f.now).expect("start").run_id;
        let mut state = f.ws.run(&run).expect("run").state;
        for n in 0..comments {
            state = f.ws.execute(&run, &comment(n), &f.requester, f.now).expect("comment").1;
        }
        expected.push(state);
    }
    let fresh = Workspace::open(&f.dir).expect("open");
    let filter = attest_store::RunFilter { limit: 100, ..Default::default() };
    let mut listed: Vec<RunState> = fresh.runs(&filter).expect("list").into_iter().map(|r| r.state).collect();
    listed.sort_by_key(|s| s.event_count);
    expected.sort_by_key(|s| s.event_count);
    assert_eq!(listed, expected);
}

/// Schema 10 kept every run's current state in its row, and the facts' event
/// count in a column; migration 11 moves the state to the snapshot table and
/// reads the count as the run's version (and migration 12 keys the run
/// tables by run number).
#[test]
fn a_database_from_before_snapshots_keeps_its_runs() {
    let f = fixture();
    let mut states = Vec::new();
    for comments in [0, 5, 20] {
        let run = f.ws.start_run(&f.requester, "vendor-onboarding", None, f.now).expect("start").run_id;
        for n in 0..comments {
            f.ws.execute(&run, &comment(n), &f.requester, f.now).expect("comment");
        }
        states.push(f.ws.run(&run).expect("run"));
    }
    drop(f.ws);
    let db = rusqlite::Connection::open(f.dir.database()).expect("open");
    // Back to schema 11 first: the run tables keyed by run id, not by run number.
    db.execute_batch(
        "CREATE TABLE v11_entries AS SELECT e.seq, r.id AS run_id, e.run_seq, e.type, e.bytes
           FROM entries e LEFT JOIN runs r USING (run_no);
         CREATE TABLE v11_tasks AS SELECT r.id AS run_id, t.key, t.name, t.status, t.approval, t.due_at, t.position
           FROM tasks t JOIN runs r USING (run_no);
         CREATE TABLE v11_task_assignees AS SELECT a.principal, r.id AS run_id, a.task_key
           FROM task_assignees a JOIN runs r USING (run_no);
         CREATE TABLE v11_metric_runs AS SELECT r.id AS run_id, m.template_key, m.version, m.status, m.started_at,
             m.finished_at, m.rejections, m.on_time
           FROM metric_runs m JOIN runs r USING (run_no);
         CREATE TABLE v11_metric_tasks AS SELECT r.id AS run_id, m.seq, m.template_key, m.version, m.run_started_at,
             m.task_key, m.approval, m.outcome, m.actionable_at, m.ended_at, m.due_at
           FROM metric_tasks m JOIN runs r USING (run_no);
         CREATE TABLE v11_metric_controls AS SELECT r.id AS run_id, m.seq, m.control_id, m.template_key, m.version,
             m.run_started_at, m.passed
           FROM metric_controls m JOIN runs r USING (run_no);
         CREATE TABLE v11_runs AS SELECT id, template_key, template_version, name, status, starter, started_at,
             updated_at, finished_at, version, due_at
           FROM runs ORDER BY run_no;
         DROP TABLE entries; DROP TABLE tasks; DROP TABLE task_assignees; DROP TABLE metric_runs;
         DROP TABLE metric_tasks; DROP TABLE metric_controls; DROP TABLE runs;
         ALTER TABLE v11_entries RENAME TO entries; ALTER TABLE v11_tasks RENAME TO tasks;
         ALTER TABLE v11_task_assignees RENAME TO task_assignees; ALTER TABLE v11_metric_runs RENAME TO metric_runs;
         ALTER TABLE v11_metric_tasks RENAME TO metric_tasks;
         ALTER TABLE v11_metric_controls RENAME TO metric_controls; ALTER TABLE v11_runs RENAME TO runs;",
    )
    .expect("back to schema 11");
    db.execute_batch(
        "ALTER TABLE runs ADD COLUMN state TEXT NOT NULL DEFAULT ''; DROP TABLE run_states;
         ALTER TABLE metric_runs ADD COLUMN event_count INTEGER NOT NULL DEFAULT 0;
         UPDATE metric_runs SET event_count = (SELECT version FROM runs WHERE runs.id = metric_runs.run_id);",
    )
    .expect("back to schema 10");
    for row in &states {
        let json = serde_json::to_string(&row.state).expect("state json");
        db.execute("UPDATE runs SET state = ?1 WHERE id = ?2", rusqlite::params![json, row.id]).expect("state");
    }
    db.pragma_update(None, "user_version", 10).expect("schema 10");
    drop(db);
    let ws = Workspace::open(&f.dir).expect("migrates");
    for row in &states {
        let stored = ws.store().run(&row.id).expect("read").expect("stored");
        assert!(stored.tail.is_empty(), "the migrated snapshot is the run's current state");
        assert_eq!(ws.run(&row.id).expect("run"), *row);
        let facts = ws.store().run_facts(&row.id).expect("facts").expect("the run has facts");
        assert_eq!(facts.event_count, row.version, "the facts are current");
    }
    let more = ws.execute(&states[2].id, &comment(99), &f.requester, f.now).expect("a migrated run goes on").1;
    assert_eq!(read_fresh(&f.dir, &states[2].id), more);
}

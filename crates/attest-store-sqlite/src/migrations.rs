//! Schema migrations, applied in order and recorded in `PRAGMA user_version`.

use attest_store::{StoreError, StoreResult};
use rusqlite::Connection;

/// Each entry moves the schema one version forward. Never edit a released
/// entry: add a new one.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE workspace (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    name TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
-- The ledger: every event of the workspace, as canonical bytes, in order.
CREATE TABLE entries (
    seq INTEGER PRIMARY KEY,
    run_id TEXT,
    run_seq INTEGER,
    type TEXT NOT NULL,
    bytes BLOB NOT NULL
);
CREATE UNIQUE INDEX entries_by_run ON entries (run_id, run_seq) WHERE run_id IS NOT NULL;
-- Complete-subtree hashes of the Merkle tree over `entries`.
CREATE TABLE ledger_nodes (
    level INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    hash BLOB NOT NULL,
    PRIMARY KEY (level, idx)
) WITHOUT ROWID;
CREATE TABLE checkpoints (
    size INTEGER PRIMARY KEY,
    note TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE users (
    email TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    admin INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE user_roles (
    email TEXT NOT NULL REFERENCES users (email),
    role TEXT NOT NULL,
    PRIMARY KEY (email, role)
) WITHOUT ROWID;
CREATE TABLE templates (
    key TEXT NOT NULL,
    version INTEGER NOT NULL,
    name TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    json TEXT NOT NULL,
    published_at INTEGER NOT NULL,
    published_by TEXT NOT NULL,
    PRIMARY KEY (key, version)
);
-- Projections: derived from `entries`, written in the same transaction.
CREATE TABLE runs (
    id TEXT PRIMARY KEY,
    template_key TEXT NOT NULL,
    template_version INTEGER NOT NULL,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    starter TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    finished_at INTEGER,
    version INTEGER NOT NULL,
    state TEXT NOT NULL
);
CREATE INDEX runs_by_template ON runs (template_key, status, id);
CREATE INDEX runs_by_status ON runs (status, id);
CREATE TABLE tasks (
    run_id TEXT NOT NULL,
    key TEXT NOT NULL,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    approval INTEGER NOT NULL,
    due_at INTEGER,
    position INTEGER NOT NULL,
    PRIMARY KEY (run_id, key)
) WITHOUT ROWID;
CREATE TABLE task_assignees (
    principal TEXT NOT NULL,
    run_id TEXT NOT NULL,
    task_key TEXT NOT NULL,
    PRIMARY KEY (principal, run_id, task_key)
) WITHOUT ROWID;
CREATE INDEX task_assignees_by_run ON task_assignees (run_id);
"#,
    r#"
-- Credentials: secrets that are not facts of the ledger.
CREATE TABLE passwords (
    email TEXT PRIMARY KEY REFERENCES users (email),
    phc TEXT NOT NULL,
    must_change INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE TABLE sessions (
    id_hash TEXT PRIMARY KEY,
    email TEXT NOT NULL REFERENCES users (email),
    csrf TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX sessions_by_email ON sessions (email);
CREATE TABLE api_tokens (
    id TEXT PRIMARY KEY,
    hash TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    access TEXT NOT NULL,
    roles TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    last_used_at INTEGER,
    revoked_at INTEGER
);
CREATE TABLE idempotency (
    principal TEXT NOT NULL,
    key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    status INTEGER NOT NULL,
    content_type TEXT NOT NULL,
    body BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (principal, key)
);
"#,
    r#"
-- Template drafts: editor work in progress, not facts of the ledger.
CREATE TABLE template_drafts (
    id TEXT PRIMARY KEY,
    template_key TEXT NOT NULL,
    name TEXT NOT NULL,
    base_version INTEGER,
    source TEXT NOT NULL,
    revision INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_by TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX template_drafts_by_update ON template_drafts (updated_at);
"#,
    r#"
-- Process-metric facts (attest_store::metrics), written with each run's events.
CREATE TABLE metric_runs (
    run_id TEXT PRIMARY KEY,
    template_key TEXT NOT NULL,
    version INTEGER NOT NULL,
    status TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    finished_at INTEGER,
    rejections INTEGER NOT NULL,
    event_count INTEGER NOT NULL,
    on_time INTEGER
);
CREATE INDEX metric_runs_by_start ON metric_runs
    (template_key, version, started_at, status, finished_at, rejections, on_time);
CREATE INDEX metric_runs_by_completion ON metric_runs (template_key, version, finished_at, started_at)
    WHERE status = 'completed';
CREATE TABLE metric_tasks (
    run_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    template_key TEXT NOT NULL,
    version INTEGER NOT NULL,
    run_started_at INTEGER NOT NULL,
    task_key TEXT NOT NULL,
    approval INTEGER NOT NULL,
    outcome TEXT,
    actionable_at INTEGER,
    ended_at INTEGER,
    due_at INTEGER,
    PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;
CREATE INDEX metric_tasks_ended ON metric_tasks
    (template_key, version, run_started_at, task_key, approval, outcome, actionable_at, ended_at, due_at)
    WHERE ended_at IS NOT NULL;
CREATE INDEX metric_tasks_open_due ON metric_tasks (template_key, version, due_at, run_id)
    WHERE ended_at IS NULL AND due_at IS NOT NULL;
CREATE TABLE metric_controls (
    run_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    control_id TEXT NOT NULL,
    template_key TEXT NOT NULL,
    version INTEGER NOT NULL,
    run_started_at INTEGER NOT NULL,
    passed INTEGER NOT NULL,
    PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;
CREATE INDEX metric_controls_by_template ON metric_controls (template_key, version, run_started_at, control_id, passed);
"#,
    r#"
-- The scheduler: durable jobs claimed under leases (also the mail outbox:
-- kind 'email'), ledger followers' cursors, schedules, settings, mail opt-outs.
CREATE TABLE jobs (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    key TEXT NOT NULL UNIQUE,
    payload TEXT NOT NULL,
    run_at INTEGER NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    lease_owner TEXT,
    lease_until INTEGER,
    last_error TEXT,
    created_at INTEGER NOT NULL,
    finished_at INTEGER
);
CREATE INDEX jobs_due ON jobs (state, run_at, id);
CREATE TABLE cursors (
    name TEXT PRIMARY KEY,
    position INTEGER NOT NULL
);
CREATE TABLE schedules (
    id TEXT PRIMARY KEY,
    template TEXT NOT NULL,
    name_pattern TEXT NOT NULL,
    rule TEXT NOT NULL,
    time_zone TEXT NOT NULL,
    starts_as TEXT NOT NULL,
    paused INTEGER NOT NULL,
    next_at INTEGER,
    last_fired_at INTEGER,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX schedules_due ON schedules (paused, next_at);
CREATE TABLE settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE mail_preferences (
    email TEXT PRIMARY KEY REFERENCES users (email),
    opt_out INTEGER NOT NULL
);
"#,
    r#"
-- Integrations (issue #6): outbound webhooks with a leased delivery queue, inbound triggers.
CREATE TABLE webhook_subscriptions (
    id TEXT PRIMARY KEY,
    url TEXT NOT NULL,
    secret TEXT NOT NULL,
    template TEXT,
    event_types TEXT NOT NULL,
    enabled INTEGER NOT NULL,
    disabled_reason TEXT,
    disabled_at INTEGER,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    from_seq INTEGER NOT NULL
);
-- The next ledger entry the dispatcher has not turned into deliveries.
CREATE TABLE webhook_cursor (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    next_seq INTEGER NOT NULL
);
CREATE TABLE webhook_deliveries (
    id TEXT PRIMARY KEY,
    subscription TEXT NOT NULL REFERENCES webhook_subscriptions (id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    run_id TEXT,
    event_type TEXT NOT NULL,
    payload TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    -- Retries stop once this is older than the retry window; a redelivery resets it.
    retry_from INTEGER NOT NULL,
    next_attempt_at INTEGER,
    delivered_at INTEGER,
    last_status INTEGER,
    last_error TEXT,
    lease_owner TEXT,
    lease_until INTEGER
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at);
CREATE INDEX webhook_deliveries_by_run ON webhook_deliveries (subscription, run_id, seq);
CREATE INDEX webhook_deliveries_by_subscription ON webhook_deliveries (subscription, id);
CREATE TABLE webhook_attempts (
    delivery TEXT NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    attempt INTEGER NOT NULL,
    at INTEGER NOT NULL,
    status INTEGER,
    error TEXT,
    duration_ms INTEGER NOT NULL,
    response TEXT,
    PRIMARY KEY (delivery, attempt)
);
-- Runs of templates with service tasks that may have a call due: marked by the
-- dispatcher from the ledger, worked under a lease, dropped when nothing is due.
CREATE TABLE service_runs (
    run_id TEXT PRIMARY KEY,
    touched_seq INTEGER NOT NULL,
    attempts INTEGER NOT NULL,
    due_at INTEGER NOT NULL,
    lease_owner TEXT,
    lease_until INTEGER
);
CREATE INDEX service_runs_due ON service_runs (due_at);
CREATE TABLE triggers (
    template TEXT PRIMARY KEY,
    secret_hash TEXT NOT NULL,
    run_as TEXT NOT NULL,
    mapping TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
"#,
    // A schedule's due period: its runs are due this many (business) days after their start.
    r#"
ALTER TABLE schedules ADD COLUMN due_days INTEGER;
ALTER TABLE schedules ADD COLUMN due_business_days INTEGER NOT NULL DEFAULT 0;
"#,
    r#"
-- The runs list's overdue filter: only open tasks with a due time are indexed.
CREATE INDEX tasks_open_due ON tasks (due_at, run_id)
    WHERE status IN ('open', 'rework') AND due_at IS NOT NULL;
"#,
    r#"
-- A run's own deadline (a schedule's due period) as a column, for the runs
-- list's overdue filter; it is set at the start and never changes.
ALTER TABLE runs ADD COLUMN due_at INTEGER;
UPDATE runs SET due_at = CAST(unixepoch(json_extract(state, '$.due_at')) AS INTEGER) * 1000
    WHERE json_extract(state, '$.due_at') IS NOT NULL;
CREATE INDEX runs_open_due ON runs (due_at) WHERE status = 'open' AND due_at IS NOT NULL;
"#,
    r#"
-- Per-day rollups of the metric facts (rollups.rs), by template version and
-- the UTC day runs started on (completed on, for metric_done_days), filled
-- here from the facts already stored.
CREATE TABLE metric_day_runs (
    template_key TEXT NOT NULL,
    version INTEGER NOT NULL,
    day INTEGER NOT NULL,
    status TEXT NOT NULL,
    runs INTEGER NOT NULL,
    rejections INTEGER NOT NULL,
    on_time INTEGER NOT NULL,
    judged INTEGER NOT NULL,
    PRIMARY KEY (template_key, version, day, status)
) WITHOUT ROWID;
CREATE TABLE metric_day_cycles (
    template_key TEXT NOT NULL,
    version INTEGER NOT NULL,
    day INTEGER NOT NULL,
    chunk INTEGER NOT NULL,
    count INTEGER NOT NULL,
    cycle_ms TEXT NOT NULL,
    PRIMARY KEY (template_key, version, day, chunk)
) WITHOUT ROWID;
CREATE TABLE metric_done_days (
    template_key TEXT NOT NULL,
    version INTEGER NOT NULL,
    day INTEGER NOT NULL,
    chunk INTEGER NOT NULL,
    count INTEGER NOT NULL,
    cycle_ms TEXT NOT NULL,
    PRIMARY KEY (template_key, version, day, chunk)
) WITHOUT ROWID;
CREATE TABLE metric_day_waits (
    template_key TEXT NOT NULL,
    version INTEGER NOT NULL,
    day INTEGER NOT NULL,
    task_key TEXT NOT NULL,
    approval INTEGER NOT NULL,
    chunk INTEGER NOT NULL,
    count INTEGER NOT NULL,
    with_due INTEGER NOT NULL,
    on_time INTEGER NOT NULL,
    wait_ms TEXT NOT NULL,
    PRIMARY KEY (template_key, version, day, task_key, approval, chunk)
) WITHOUT ROWID;
CREATE TABLE metric_day_controls (
    template_key TEXT NOT NULL,
    version INTEGER NOT NULL,
    day INTEGER NOT NULL,
    control_id TEXT NOT NULL,
    applied INTEGER NOT NULL,
    passed INTEGER NOT NULL,
    PRIMARY KEY (template_key, version, day, control_id)
) WITHOUT ROWID;
-- Fact rows are now read only for a period's partial first and last days,
-- each within one day: indexes by time alone serve those reads, and are far
-- cheaper to keep up on every commit than the covering ones they replace.
DROP INDEX metric_runs_by_start;
DROP INDEX metric_runs_by_completion;
DROP INDEX metric_tasks_ended;
DROP INDEX metric_controls_by_template;
CREATE INDEX metric_runs_by_start ON metric_runs (started_at);
CREATE INDEX metric_runs_by_completion ON metric_runs (finished_at) WHERE status = 'completed';
CREATE INDEX metric_tasks_ended ON metric_tasks (run_started_at) WHERE ended_at IS NOT NULL;
CREATE INDEX metric_controls_by_start ON metric_controls (run_started_at);
-- A day is the floor of ms / 86400000 (SQLite's division truncates toward zero).
INSERT INTO metric_day_runs (template_key, version, day, status, runs, rejections, on_time, judged)
    SELECT template_key, version, (started_at - (((started_at % 86400000) + 86400000) % 86400000)) / 86400000 AS d,
        status, COUNT(*), SUM(rejections), COALESCE(SUM(on_time = 1), 0), COUNT(on_time)
    FROM metric_runs GROUP BY template_key, version, d, status;
INSERT INTO metric_day_cycles (template_key, version, day, chunk, count, cycle_ms)
    SELECT template_key, version, (started_at - (((started_at % 86400000) + 86400000) % 86400000)) / 86400000 AS d,
        0, COUNT(*), group_concat(finished_at - started_at, ',')
    FROM metric_runs WHERE status = 'completed' GROUP BY template_key, version, d;
INSERT INTO metric_done_days (template_key, version, day, chunk, count, cycle_ms)
    SELECT template_key, version, (finished_at - (((finished_at % 86400000) + 86400000) % 86400000)) / 86400000 AS d,
        0, COUNT(*), group_concat(finished_at - started_at, ',')
    FROM metric_runs WHERE status = 'completed' GROUP BY template_key, version, d;
INSERT INTO metric_day_waits (template_key, version, day, task_key, approval, chunk, count, with_due, on_time, wait_ms)
    SELECT template_key, version,
        (run_started_at - (((run_started_at % 86400000) + 86400000) % 86400000)) / 86400000 AS d,
        task_key, approval, 0, COUNT(*), SUM(due_at IS NOT NULL), COALESCE(SUM(ended_at <= due_at), 0),
        group_concat(ended_at - actionable_at, ',')
    FROM metric_tasks WHERE ended_at IS NOT NULL GROUP BY template_key, version, d, task_key, approval;
INSERT INTO metric_day_controls (template_key, version, day, control_id, applied, passed)
    SELECT template_key, version,
        (run_started_at - (((run_started_at % 86400000) + 86400000) % 86400000)) / 86400000 AS d,
        control_id, COUNT(*), SUM(passed)
    FROM metric_controls GROUP BY template_key, version, d, control_id;
"#,
    // 11: a run's state moves out of its row into a snapshot written every few
    // events, and the metric facts lose their event count (the run's version);
    // the rows every command updates stay small and fewer.
    r#"
CREATE TABLE run_states (
    run_id TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    state TEXT NOT NULL
);
INSERT INTO run_states (run_id, version, state) SELECT id, version, state FROM runs;
ALTER TABLE runs DROP COLUMN state;
-- A run's facts are written in every commit's transaction, so their event
-- count is the run's version; a column of its own cost a statement per command.
ALTER TABLE metric_runs DROP COLUMN event_count;
"#,
    // 12: runs get an integer key, `run_no`, that the tables every command
    // writes carry instead of the 36-character run id: each index seek then
    // compares integers, and each row and index entry is smaller. `runs.id`
    // stays the public id; `run_no` is declared so VACUUM keeps the numbers.
    // Each table is copied aside and created again under its own name:
    // renaming tables re-read the whole schema each time, which made this
    // migration cost a new database about seven times as many instructions.
    r#"
CREATE TEMP TABLE v11_runs AS SELECT rowid AS run_no, * FROM runs;
DROP TABLE runs;
CREATE TABLE runs (
    run_no INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    template_key TEXT NOT NULL,
    template_version INTEGER NOT NULL,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    starter TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    finished_at INTEGER,
    version INTEGER NOT NULL,
    due_at INTEGER
);
INSERT INTO runs (run_no, id, template_key, template_version, name, status, starter, started_at, updated_at,
        finished_at, version, due_at)
    SELECT run_no, id, template_key, template_version, name, status, starter, started_at, updated_at,
        finished_at, version, due_at
    FROM temp.v11_runs;
CREATE INDEX runs_by_template ON runs (template_key, status, id);
CREATE INDEX runs_by_status ON runs (status, id);
CREATE INDEX runs_open_due ON runs (due_at) WHERE status = 'open' AND due_at IS NOT NULL;

CREATE TEMP TABLE v11_entries AS SELECT * FROM entries;
DROP TABLE entries;
CREATE TABLE entries (
    seq INTEGER PRIMARY KEY,
    run_no INTEGER,
    run_seq INTEGER,
    type TEXT NOT NULL,
    bytes BLOB NOT NULL
);
INSERT INTO entries (seq, run_no, run_seq, type, bytes)
    SELECT e.seq, r.run_no, e.run_seq, e.type, e.bytes FROM temp.v11_entries e LEFT JOIN runs r ON r.id = e.run_id;
CREATE UNIQUE INDEX entries_by_run ON entries (run_no, run_seq) WHERE run_no IS NOT NULL;

CREATE TEMP TABLE v11_run_states AS SELECT * FROM run_states;
DROP TABLE run_states;
CREATE TABLE run_states (
    run_no INTEGER PRIMARY KEY,
    version INTEGER NOT NULL,
    state TEXT NOT NULL
);
INSERT INTO run_states (run_no, version, state)
    SELECT r.run_no, s.version, s.state FROM temp.v11_run_states s JOIN runs r ON r.id = s.run_id;

CREATE TEMP TABLE v11_tasks AS SELECT * FROM tasks;
DROP TABLE tasks;
CREATE TABLE tasks (
    run_no INTEGER NOT NULL,
    key TEXT NOT NULL,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    approval INTEGER NOT NULL,
    due_at INTEGER,
    position INTEGER NOT NULL,
    PRIMARY KEY (run_no, key)
) WITHOUT ROWID;
INSERT INTO tasks (run_no, key, name, status, approval, due_at, position)
    SELECT r.run_no, t.key, t.name, t.status, t.approval, t.due_at, t.position
    FROM temp.v11_tasks t JOIN runs r ON r.id = t.run_id;
CREATE INDEX tasks_open_due ON tasks (due_at, run_no)
    WHERE status IN ('open', 'rework') AND due_at IS NOT NULL;

CREATE TEMP TABLE v11_task_assignees AS SELECT * FROM task_assignees;
DROP TABLE task_assignees;
CREATE TABLE task_assignees (
    principal TEXT NOT NULL,
    run_no INTEGER NOT NULL,
    task_key TEXT NOT NULL,
    PRIMARY KEY (principal, run_no, task_key)
) WITHOUT ROWID;
INSERT INTO task_assignees (principal, run_no, task_key)
    SELECT a.principal, r.run_no, a.task_key FROM temp.v11_task_assignees a JOIN runs r ON r.id = a.run_id;
CREATE INDEX task_assignees_by_run ON task_assignees (run_no);

CREATE TEMP TABLE v11_metric_runs AS SELECT * FROM metric_runs;
DROP TABLE metric_runs;
CREATE TABLE metric_runs (
    run_no INTEGER PRIMARY KEY,
    template_key TEXT NOT NULL,
    version INTEGER NOT NULL,
    status TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    finished_at INTEGER,
    rejections INTEGER NOT NULL,
    on_time INTEGER
);
INSERT INTO metric_runs (run_no, template_key, version, status, started_at, finished_at, rejections, on_time)
    SELECT r.run_no, m.template_key, m.version, m.status, m.started_at, m.finished_at, m.rejections, m.on_time
    FROM temp.v11_metric_runs m JOIN runs r ON r.id = m.run_id;
CREATE INDEX metric_runs_by_start ON metric_runs (started_at);
CREATE INDEX metric_runs_by_completion ON metric_runs (finished_at) WHERE status = 'completed';

CREATE TEMP TABLE v11_metric_tasks AS SELECT * FROM metric_tasks;
DROP TABLE metric_tasks;
CREATE TABLE metric_tasks (
    run_no INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    template_key TEXT NOT NULL,
    version INTEGER NOT NULL,
    run_started_at INTEGER NOT NULL,
    task_key TEXT NOT NULL,
    approval INTEGER NOT NULL,
    outcome TEXT,
    actionable_at INTEGER,
    ended_at INTEGER,
    due_at INTEGER,
    PRIMARY KEY (run_no, seq)
) WITHOUT ROWID;
INSERT INTO metric_tasks (run_no, seq, template_key, version, run_started_at, task_key, approval, outcome,
        actionable_at, ended_at, due_at)
    SELECT r.run_no, m.seq, m.template_key, m.version, m.run_started_at, m.task_key, m.approval, m.outcome,
        m.actionable_at, m.ended_at, m.due_at
    FROM temp.v11_metric_tasks m JOIN runs r ON r.id = m.run_id;
CREATE INDEX metric_tasks_ended ON metric_tasks (run_started_at) WHERE ended_at IS NOT NULL;
CREATE INDEX metric_tasks_open_due ON metric_tasks (template_key, version, due_at, run_no)
    WHERE ended_at IS NULL AND due_at IS NOT NULL;

CREATE TEMP TABLE v11_metric_controls AS SELECT * FROM metric_controls;
DROP TABLE metric_controls;
CREATE TABLE metric_controls (
    run_no INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    control_id TEXT NOT NULL,
    template_key TEXT NOT NULL,
    version INTEGER NOT NULL,
    run_started_at INTEGER NOT NULL,
    passed INTEGER NOT NULL,
    PRIMARY KEY (run_no, seq)
) WITHOUT ROWID;
INSERT INTO metric_controls (run_no, seq, control_id, template_key, version, run_started_at, passed)
    SELECT r.run_no, m.seq, m.control_id, m.template_key, m.version, m.run_started_at, m.passed
    FROM temp.v11_metric_controls m JOIN runs r ON r.id = m.run_id;
CREATE INDEX metric_controls_by_start ON metric_controls (run_started_at);

DROP TABLE temp.v11_runs;
DROP TABLE temp.v11_entries;
DROP TABLE temp.v11_run_states;
DROP TABLE temp.v11_tasks;
DROP TABLE temp.v11_task_assignees;
DROP TABLE temp.v11_metric_runs;
DROP TABLE temp.v11_metric_tasks;
DROP TABLE temp.v11_metric_controls;
"#,
    // 13: the tree's nodes of levels 1 to 3 (below
    // `nodes::FIRST_STORED_INNER_LEVEL`) are hashed from the leaves they cover
    // when read, no longer stored.
    r#"
DELETE FROM ledger_nodes WHERE level BETWEEN 1 AND 3;
"#,
];

/// Brings the schema up to date; true if it applied a migration.
pub(crate) fn migrate(conn: &mut Connection) -> StoreResult<bool> {
    migrate_to(conn, MIGRATIONS.len())
}

/// Brings the schema up to version `target`; tests build older databases with it.
pub(crate) fn migrate_to(conn: &mut Connection, target: usize) -> StoreResult<bool> {
    let current: i64 =
        conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(|e| StoreError::Other(e.into()))?;
    let known = MIGRATIONS.len() as i64;
    if current > known {
        return Err(StoreError::Corrupt(format!(
            "the database schema is version {current}, newer than this build knows ({known}); upgrade attest"
        )));
    }
    for (i, migration) in MIGRATIONS.iter().enumerate().take(target).skip(current as usize) {
        let tx = conn.transaction().map_err(|e| StoreError::Other(e.into()))?;
        tx.execute_batch(migration).map_err(|e| StoreError::Other(e.into()))?;
        tx.pragma_update(None, "user_version", (i + 1) as i64).map_err(|e| StoreError::Other(e.into()))?;
        tx.commit().map_err(|e| StoreError::Other(e.into()))?;
    }
    Ok(current < target as i64)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use attest_engine::{Actor, Command, CompiledTemplate, RunState};
    use attest_store::{
        ControlFact, MetricsStore, RunCommit, RunFacts, RunFilter, RunSearch, RunSearchStore, Store, TaskFact,
        TaskOutcome, TaskRow,
    };
    use jiff::Timestamp;
    use rusqlite::Connection;

    use super::{MIGRATIONS, migrate_to};
    use crate::SqliteStore;

    const TEMPLATE: &str = r#"{"format": "attest/v1", "key": "t", "name": "T", "roles": ["ops"], "tasks": [
      {"key": "check", "name": "Check", "assignee": "role:ops"},
      {"key": "sign", "name": "Sign", "assignee": "role:ops"}
    ]}"#;

    fn at(ms: i64) -> Timestamp {
        Timestamp::from_millisecond(1_780_000_000_000 + ms).unwrap()
    }

    /// The commit of run `n` that brings `state` (`None`: a start) `comments`
    /// events further, with task rows, assignees and facts that vary by run.
    fn commit(template: &CompiledTemplate, n: i64, state: Option<&RunState>, comments: usize) -> RunCommit {
        let actor = Actor::person("ops@example.com", vec!["ops".into()], false);
        let run_id = format!("0190a000-0000-7000-8000-{n:012x}");
        let (mut events, mut next) = match state {
            Some(s) => (Vec::new(), s.clone()),
            None => {
                let start = Command::Start { run: run_id.clone(), name: format!("run {n}"), due_at: None };
                attest_engine::execute(template, None, &start, &actor, at(n)).unwrap()
            }
        };
        for i in 0..comments {
            let comment = Command::Comment { task: "check".into(), text: format!("note {i}") };
            let (more, after) = attest_engine::execute(template, Some(&next), &comment, &actor, at(n + 1)).unwrap();
            events.extend(more);
            next = after;
        }
        let tasks = ["check", "sign"]
            .iter()
            .enumerate()
            .map(|(i, key)| TaskRow {
                key: (*key).into(),
                name: key.to_uppercase(),
                status: if i == 0 && n % 2 == 0 { "completed".into() } else { "open".into() },
                approval: i == 1,
                due_at: (n % 3 == 0).then(|| at(n * 1000)),
                assignees: vec!["role:ops".into(), format!("user:p{}@example.com", n % 4)],
            })
            .collect();
        let facts = RunFacts {
            rejections: u32::try_from(n % 2).unwrap(),
            event_count: next.event_count,
            tasks: vec![
                TaskFact {
                    task_key: "check".into(),
                    approval: false,
                    actionable_at: Some(at(n)),
                    ended_at: (n % 2 == 0).then(|| at(n + 500)),
                    outcome: (n % 2 == 0).then_some(TaskOutcome::Completed),
                    due_at: None,
                },
                TaskFact {
                    task_key: "sign".into(),
                    approval: true,
                    actionable_at: Some(at(n + 500)),
                    ended_at: None,
                    outcome: None,
                    due_at: Some(at(n + 9000)),
                },
            ],
            controls: vec![ControlFact { control_id: format!("C-{n}"), passed: n % 2 == 1 }],
            ..RunFacts::before_events(&next)
        };
        let expected_version = state.map_or(0, |s| s.event_count);
        RunCommit { run_id, expected_version, events, state: next, tasks, facts, previous: None }
    }

    /// Everything a store gives back about its runs, and their rows joined to run ids.
    #[derive(Debug, PartialEq)]
    struct Everything {
        runs: Vec<String>,
        rows: Vec<Vec<String>>,
    }

    fn everything(store: &SqliteStore, ids: &[String]) -> Everything {
        let mut runs = Vec::new();
        for id in ids {
            runs.push(format!("{:?}", store.run(id).unwrap().unwrap()));
            runs.push(format!("{:?}", store.run_events(id).unwrap()));
            runs.push(format!("{:?}", store.run_facts(id).unwrap().unwrap()));
        }
        let principals: Vec<String> = (0..4).map(|p| format!("user:p{p}@example.com")).collect();
        runs.push(format!("{:?}", store.inbox(&principals).unwrap()));
        let filter = RunFilter { limit: 100, ..RunFilter::default() };
        let assigned = RunSearch {
            filter: filter.clone(),
            assigned_to: Some(vec!["user:p1@example.com".into()]),
            overdue_at: None,
        };
        let overdue = RunSearch { filter, assigned_to: None, overdue_at: Some(at(10_000_000)) };
        for search in [assigned, overdue] {
            let found = store.search_runs(&search).unwrap();
            assert!(!found.is_empty(), "{search:?} finds runs");
            runs.push(format!("{found:?}"));
        }
        let queries = [
            "SELECT r.id, s.version, s.state FROM run_states s JOIN runs r USING (run_no) ORDER BY r.id",
            "SELECT e.seq, r.id, e.run_seq, e.type, hex(e.bytes) FROM entries e LEFT JOIN runs r USING (run_no)
             ORDER BY e.seq",
            "SELECT r.id, t.key, t.name, t.status, t.approval, t.due_at, t.position
             FROM tasks t JOIN runs r USING (run_no) ORDER BY r.id, t.key",
            "SELECT a.principal, r.id, a.task_key FROM task_assignees a JOIN runs r USING (run_no)
             ORDER BY a.principal, r.id, a.task_key",
            "SELECT r.id, m.template_key, m.version, m.status, m.started_at, m.finished_at, m.rejections, m.on_time
             FROM metric_runs m JOIN runs r USING (run_no) ORDER BY r.id",
            "SELECT r.id, m.seq, m.template_key, m.version, m.run_started_at, m.task_key, m.approval, m.outcome,
               m.actionable_at, m.ended_at, m.due_at
             FROM metric_tasks m JOIN runs r USING (run_no) ORDER BY r.id, m.seq",
            "SELECT r.id, m.seq, m.control_id, m.template_key, m.version, m.run_started_at, m.passed
             FROM metric_controls m JOIN runs r USING (run_no) ORDER BY r.id, m.seq",
        ];
        let rows = store
            .with_conn(|c| {
                let mut rows = Vec::new();
                for query in queries {
                    let mut stmt = c.prepare(query).unwrap();
                    let columns = stmt.column_count();
                    let mut read = stmt.query([]).unwrap();
                    while let Some(row) = read.next().unwrap() {
                        let values = (0..columns)
                            .map(|i| format!("{:?}", row.get::<_, rusqlite::types::Value>(i).unwrap()))
                            .collect();
                        rows.push(values);
                    }
                }
                Ok(rows)
            })
            .unwrap();
        Everything { runs, rows }
    }

    /// Migration 12 keys the run tables by integer: a database at schema 11
    /// keeps every run, snapshot, entry, task, assignee and metric fact, and
    /// its runs go on taking commands.
    #[test]
    fn runs_keyed_by_integer_keep_their_rows() {
        let template = {
            let t = attest_template::parse(TEMPLATE, attest_template::SourceFormat::Json, None).unwrap();
            let hash = attest_template::content_hash(&t);
            CompiledTemplate::new(t, 1, hash).unwrap()
        };
        let dir = tempfile::tempdir().unwrap();
        let current = dir.path().join("current.db");
        let store = SqliteStore::open(&current).unwrap();
        // Some runs past a snapshot with entries after it, some not.
        let mut states = Vec::new();
        for n in 0..6 {
            let start = commit(&template, n, None, 0);
            store.write_runs(std::slice::from_ref(&start)).unwrap().into_iter().for_each(|r| r.unwrap());
            let more = commit(&template, n, Some(&start.state), n as usize * 5 + 1);
            store.write_runs(std::slice::from_ref(&more)).unwrap().into_iter().for_each(|r| r.unwrap());
            states.push(more.state);
        }
        let ids: Vec<String> = states.iter().map(|s| s.run_id.clone()).collect();
        let before = everything(&store, &ids);
        assert!(before.rows.len() > 100, "the runs left rows to compare: {}", before.rows.len());
        drop(store);

        // The same rows in a database at schema 11, keyed by run id. The runs
        // go in newest first, so their rowids differ from the keys above.
        let old = dir.path().join("schema-11.db");
        let mut conn = Connection::open(&old).unwrap();
        migrate_to(&mut conn, 11).unwrap();
        conn.execute("ATTACH DATABASE ?1 AS current", [current.to_str().unwrap()]).unwrap();
        conn.execute_batch(
            "INSERT INTO runs (id, template_key, template_version, name, status, starter, started_at, updated_at,
               finished_at, version, due_at)
               SELECT id, template_key, template_version, name, status, starter, started_at, updated_at,
                 finished_at, version, due_at
               FROM current.runs ORDER BY run_no DESC;
             INSERT INTO run_states (run_id, version, state)
               SELECT r.id, s.version, s.state FROM current.run_states s JOIN current.runs r USING (run_no);
             INSERT INTO entries (seq, run_id, run_seq, type, bytes)
               SELECT e.seq, r.id, e.run_seq, e.type, e.bytes
               FROM current.entries e LEFT JOIN current.runs r USING (run_no);
             INSERT INTO ledger_nodes SELECT * FROM current.ledger_nodes;
             INSERT INTO tasks (run_id, key, name, status, approval, due_at, position)
               SELECT r.id, t.key, t.name, t.status, t.approval, t.due_at, t.position
               FROM current.tasks t JOIN current.runs r USING (run_no);
             INSERT INTO task_assignees (principal, run_id, task_key)
               SELECT a.principal, r.id, a.task_key FROM current.task_assignees a JOIN current.runs r USING (run_no);
             INSERT INTO metric_runs (run_id, template_key, version, status, started_at, finished_at, rejections,
               on_time)
               SELECT r.id, m.template_key, m.version, m.status, m.started_at, m.finished_at, m.rejections, m.on_time
               FROM current.metric_runs m JOIN current.runs r USING (run_no);
             INSERT INTO metric_tasks (run_id, seq, template_key, version, run_started_at, task_key, approval,
               outcome, actionable_at, ended_at, due_at)
               SELECT r.id, m.seq, m.template_key, m.version, m.run_started_at, m.task_key, m.approval, m.outcome,
                 m.actionable_at, m.ended_at, m.due_at
               FROM current.metric_tasks m JOIN current.runs r USING (run_no);
             INSERT INTO metric_controls (run_id, seq, control_id, template_key, version, run_started_at, passed)
               SELECT r.id, m.seq, m.control_id, m.template_key, m.version, m.run_started_at, m.passed
               FROM current.metric_controls m JOIN current.runs r USING (run_no);
             DETACH DATABASE current;",
        )
        .unwrap();
        drop(conn);

        let migrated = SqliteStore::open(&old).unwrap();
        let version: i64 =
            migrated.with_conn(|c| Ok(c.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap())).unwrap();
        assert_eq!(version, MIGRATIONS.len() as i64);
        assert_eq!(everything(&migrated, &ids), before);
        let first: i64 = migrated
            .with_conn(|c| Ok(c.query_row("SELECT run_no FROM runs WHERE id = ?1", [&ids[0]], |r| r.get(0)).unwrap()))
            .unwrap();
        assert_eq!(first, ids.len() as i64, "the keys are the schema-11 rowids");
        for (n, state) in (0..).zip(&states) {
            let next = commit(&template, n, Some(state), 1);
            assert_eq!(migrated.write_runs(std::slice::from_ref(&next)).unwrap(), vec![Ok(())]);
            assert_eq!(migrated.run(&state.run_id).unwrap().unwrap().row.version, next.state.event_count);
        }
    }
}

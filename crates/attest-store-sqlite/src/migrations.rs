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
];

pub(crate) fn migrate(conn: &mut Connection) -> StoreResult<()> {
    let current: i64 =
        conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(|e| StoreError::Other(e.into()))?;
    let known = MIGRATIONS.len() as i64;
    if current > known {
        return Err(StoreError::Corrupt(format!(
            "the database schema is version {current}, newer than this build knows ({known}); upgrade attest"
        )));
    }
    for (i, migration) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let tx = conn.transaction().map_err(|e| StoreError::Other(e.into()))?;
        tx.execute_batch(migration).map_err(|e| StoreError::Other(e.into()))?;
        tx.pragma_update(None, "user_version", (i + 1) as i64).map_err(|e| StoreError::Other(e.into()))?;
        tx.commit().map_err(|e| StoreError::Other(e.into()))?;
    }
    Ok(())
}

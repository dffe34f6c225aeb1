//! The embedded default store: one SQLite file in the data directory.
//!
//! WAL journal with `synchronous = FULL`, so a commit that returned is on disk.
//! Writes take SQLite's write lock up front (`BEGIN IMMEDIATE`), so two
//! processes sharing the file serialise, and the per-run version check inside
//! the transaction turns a lost race into a clean conflict.

mod auth;
mod drafts;
mod hooks;
mod jobs;
mod metrics;
mod migrations;
mod nodes;
mod rollups;
mod schedules;
mod search;
mod wal;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::Context as _;
use attest_engine::{RunState, RunStatus, WorkspaceEvent};
use attest_ledger::Hash;
use attest_store::{
    CheckpointRow, CommitBytes, DirectoryChange, EntryEvent, EventBytes, InboxRow, LedgerEntry, RunCommit, RunFilter,
    RunRow, Store, StoreError, StoreResult, StoredEntry, StoredRun, TaskRow, TemplateSummary, TemplateVersionRow,
    UserRow, WorkspaceInfo,
};
use jiff::Timestamp;
use rusqlite::{
    CachedStatement, Connection, OptionalExtension, ToSql, Transaction, TransactionBehavior, params, params_from_iter,
};

use crate::nodes::{BufferedNodes, SqlNodes};
use crate::wal::{WalCheckpointer, WalPolicy};

/// How long a writer waits for another process's write lock before giving up.
const BUSY_TIMEOUT_MS: u64 = 30_000;
/// Distinct SQL statements kept prepared per connection.
const STATEMENT_CACHE_CAPACITY: usize = 128;
/// Page cache per connection, in KiB.
const PAGE_CACHE_KIB: i64 = 64 * 1024;
/// Most runs returned by one list call.
pub const MAX_LIST_LIMIT: u32 = 1_000;
/// Most run keys a store remembers; past it, it forgets them all and learns again.
const KNOWN_RUNS_CAPACITY: usize = 1 << 16;

#[derive(Debug)]
pub struct SqliteStore {
    /// Declared before the connection so the checkpoint thread stops first
    /// and the writer's connection, closing last, checkpoints what is left.
    wal: WalCheckpointer,
    conn: Mutex<Connection>,
    /// The integer keys of runs committed lately, by run id. A committed
    /// run's key never changes, so a commit on a known run updates its row
    /// by key without looking the key up by id.
    run_nos: Mutex<HashMap<String, i64>>,
    path: PathBuf,
}

fn other(e: impl Into<anyhow::Error>) -> StoreError {
    StoreError::Other(e.into())
}

fn sql(e: rusqlite::Error) -> StoreError {
    match e {
        rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::DatabaseBusy => {
            StoreError::Conflict("the database is busy with another writer; try again".into())
        }
        e => StoreError::Other(e.into()),
    }
}

fn ms(t: Timestamp) -> i64 {
    t.as_millisecond()
}

fn from_ms(v: i64) -> StoreResult<Timestamp> {
    Timestamp::from_millisecond(v).map_err(|e| StoreError::Corrupt(format!("bad timestamp {v}: {e}")))
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and brings its schema up to date.
    pub fn open(path: impl AsRef<Path>) -> StoreResult<Self> {
        Self::open_with(path.as_ref(), WalPolicy::default())
    }

    fn open_with(path: &Path, policy: WalPolicy) -> StoreResult<Self> {
        let path = path.to_path_buf();
        let conn = Connection::open(&path).with_context(|| format!("opening {}", path.display())).map_err(other)?;
        conn.busy_timeout(std::time::Duration::from_millis(BUSY_TIMEOUT_MS)).map_err(sql)?;
        // Every statement of the write path stays prepared; re-parsing SQL was a
        // measurable share of each commit.
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE_CAPACITY);
        conn.pragma_update(None, "journal_mode", "WAL").map_err(sql)?;
        conn.pragma_update(None, "synchronous", "FULL").map_err(sql)?;
        conn.pragma_update(None, "foreign_keys", "ON").map_err(sql)?;
        // Metrics reads scan a period's fact rows; SQLite's default 2 MiB page
        // cache would fetch their index pages from the OS on every read.
        conn.pragma_update(None, "cache_size", -PAGE_CACHE_KIB).map_err(sql)?;
        let mut conn = conn;
        if migrations::migrate(&mut conn)? {
            // A migration may rewrite whole tables into the WAL: copied into
            // the database now, the WAL starts over with the first commit
            // instead of waiting for the checkpoint thread's first turn.
            conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())).map_err(sql)?;
        }
        let wal = WalCheckpointer::start(&conn, &path, policy)?;
        Ok(SqliteStore { wal, conn: Mutex::new(conn), run_nos: Mutex::new(HashMap::new()), path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn with_conn<T>(&self, f: impl FnOnce(&mut Connection) -> StoreResult<T>) -> StoreResult<T> {
        let mut guard = self.conn.lock().map_err(|_| other(anyhow::anyhow!("store lock poisoned")))?;
        f(&mut guard)
    }

    /// Writes run commits in one transaction (see [`write_commits`]) and,
    /// once it has committed, remembers the keys of the runs it wrote.
    fn write_run_commits<C: std::borrow::Borrow<RunCommit>>(
        &self,
        commits: &mut dyn Iterator<Item = StoreResult<(C, CommitBytes)>>,
    ) -> StoreResult<Vec<(C, Result<(), String>)>> {
        let mut known = self.run_nos.lock().map_err(|_| other(anyhow::anyhow!("run key lock poisoned")))?;
        let mut keys = RunKeys { known: &known, learned: Vec::new() };
        let written = self.write(|tx| write_commits(tx, &mut keys, commits))?;
        let RunKeys { learned, .. } = keys;
        if known.len() + learned.len() > KNOWN_RUNS_CAPACITY {
            known.clear();
        }
        known.extend(learned);
        Ok(written)
    }

    fn write<T>(&self, f: impl FnOnce(&Transaction<'_>) -> StoreResult<T>) -> StoreResult<T> {
        self.with_conn(|conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(sql)?;
            let out = f(&tx)?;
            tx.commit().map_err(sql)?;
            self.wal.committed(conn);
            Ok(out)
        })
    }
}

fn ledger_size(tx: &Connection) -> StoreResult<u64> {
    let size: i64 = tx
        .prepare_cached("SELECT COALESCE(MAX(seq) + 1, 0) FROM entries")
        .map_err(sql)?
        .query_row([], |r| r.get(0))
        .map_err(sql)?;
    Ok(size as u64)
}

/// Writes an entry's row and returns its leaf hash; the tree is the caller's.
fn insert_entry(tx: &Transaction<'_>, entry: &LedgerEntry) -> StoreResult<Hash> {
    let bytes = entry.encode().map_err(other)?;
    tx.prepare_cached(
        "INSERT INTO entries (seq, run_no, run_seq, type, bytes)
         VALUES (?1, (SELECT run_no FROM runs WHERE id = ?2), ?3, ?4, ?5)",
    )
    .map_err(sql)?
    .execute(params![entry.seq as i64, entry.run, entry.run_seq.map(|v| v as i64), entry.type_name(), &bytes])
    .map_err(sql)?;
    Ok(attest_ledger::leaf_hash(&bytes))
}

/// Appends one entry to the events table and the Merkle tree.
fn append_entry(tx: &Transaction<'_>, entry: &LedgerEntry) -> StoreResult<()> {
    let leaf = insert_entry(tx, entry)?;
    let mut nodes = SqlNodes { tx };
    attest_ledger::append(&mut nodes, entry.seq, &leaf).map_err(other)?;
    Ok(())
}

/// The entries one transaction appends: their rows and the tree's nodes
/// wait in memory and go in at the end with multi-row inserts, each left
/// sibling is read at most once per transaction, and the next sequence
/// number is known without asking the table again.
struct Appender {
    start: u64,
    leaves: Vec<Hash>,
    rows: Vec<EntryRow>,
}

/// A run event's `entries` row waiting for the end of its transaction.
struct EntryRow {
    seq: i64,
    run_no: i64,
    run_seq: i64,
    type_name: &'static str,
    bytes: Vec<u8>,
}

impl Appender {
    fn new(tx: &Transaction<'_>) -> StoreResult<Self> {
        Ok(Appender { start: ledger_size(tx)?, leaves: Vec::new(), rows: Vec::new() })
    }

    fn next_seq(&self) -> u64 {
        self.start + self.leaves.len() as u64
    }

    /// Appends an event of run `run` (its id, which the entry's bytes name)
    /// whose integer key is `run_no` (which the row carries).
    fn push(
        &mut self,
        run: &str,
        run_no: i64,
        run_seq: u64,
        event: &EventBytes,
        type_name: &'static str,
    ) -> StoreResult<()> {
        let seq = self.next_seq();
        let bytes = event.entry(seq, run, run_seq).map_err(other)?;
        self.leaves.push(attest_ledger::leaf_hash(&bytes));
        self.rows.push(EntryRow { seq: seq as i64, run_no, run_seq: run_seq as i64, type_name, bytes });
        Ok(())
    }

    fn finish(self, tx: &Transaction<'_>) -> StoreResult<()> {
        let values: Vec<&dyn ToSql> = self
            .rows
            .iter()
            .flat_map(|r| [&r.seq as &dyn ToSql, &r.run_no, &r.run_seq, &r.type_name, &r.bytes])
            .collect();
        insert_rows(tx, "INSERT INTO entries (seq, run_no, run_seq, type, bytes)", 5, &values)?;
        let mut nodes = BufferedNodes::new(tx);
        attest_ledger::append_batch(&mut nodes, self.start, &self.leaves).map_err(other)?;
        nodes.flush()
    }
}

/// Largest number of rows one multi-row `INSERT` writes.
const ROWS_PER_INSERT: usize = 64;

/// Inserts rows of `columns` values each with multi-row statements: one
/// statement per row was a large share of a group commit. Chunks hold a power
/// of two rows, so only a few distinct statements stay prepared.
pub(crate) fn insert_rows(tx: &Transaction<'_>, head: &str, columns: usize, values: &[&dyn ToSql]) -> StoreResult<()> {
    insert_rows_with(tx, head, columns, values, "")
}

/// [`insert_rows`] with `tail` (an `ON CONFLICT` clause) after the values.
pub(crate) fn insert_rows_with(
    tx: &Transaction<'_>,
    head: &str,
    columns: usize,
    values: &[&dyn ToSql],
    tail: &str,
) -> StoreResult<()> {
    debug_assert_eq!(values.len() % columns, 0, "whole rows only");
    if values.is_empty() {
        return Ok(());
    }
    let row = format!("({})", vec!["?"; columns].join(", "));
    let mut rest = values;
    while !rest.is_empty() {
        let rows = rest.len() / columns;
        let chunk = if rows >= ROWS_PER_INSERT { ROWS_PER_INSERT } else { 1 << rows.ilog2() };
        let (now, later) = rest.split_at(chunk * columns);
        let statement = format!("{head} VALUES {} {tail}", vec![row.as_str(); chunk].join(", "));
        tx.prepare_cached(&statement).map_err(sql)?.execute(params_from_iter(now)).map_err(sql)?;
        rest = later;
    }
    Ok(())
}

fn apply_change(tx: &Transaction<'_>, event: &WorkspaceEvent, change: &DirectoryChange) -> StoreResult<()> {
    let at = ms(event.at);
    match change {
        DirectoryChange::CreateWorkspace { name } => {
            let exists: bool = tx.query_row("SELECT EXISTS(SELECT 1 FROM workspace)", [], |r| r.get(0)).map_err(sql)?;
            if exists {
                return Err(StoreError::Conflict("this data directory already holds a workspace".into()));
            }
            tx.execute("INSERT INTO workspace (id, name, created_at) VALUES (1, ?1, ?2)", params![name, at])
                .map_err(sql)?;
        }
        DirectoryChange::AddUser { email, name, admin } => {
            let n = tx
                .execute(
                    "INSERT INTO users (email, name, admin, created_at) VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
                    params![email, name, admin, at],
                )
                .map_err(sql)?;
            if n == 0 {
                return Err(StoreError::Conflict(format!("a person with email {email} already exists")));
            }
        }
        DirectoryChange::GrantRole { email, role } => {
            let n = tx
                .execute(
                    "INSERT INTO user_roles (email, role) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
                    params![email, role],
                )
                .map_err(sql)?;
            if n == 0 {
                return Err(StoreError::Conflict(format!("{email} already holds role {role}")));
            }
        }
        DirectoryChange::RevokeRole { email, role } => {
            let n = tx
                .execute("DELETE FROM user_roles WHERE email = ?1 AND role = ?2", params![email, role])
                .map_err(sql)?;
            if n == 0 {
                return Err(StoreError::NotFound(format!("{email} does not hold role {role}")));
            }
        }
        DirectoryChange::PublishTemplate { key, name, version, content_hash, json } => {
            let latest: i64 = tx
                .query_row("SELECT COALESCE(MAX(version), 0) FROM templates WHERE key = ?1", [key], |r| r.get(0))
                .map_err(sql)?;
            if latest + 1 != i64::from(*version) {
                return Err(StoreError::Conflict(format!(
                    "template {key} is at version {latest} now; publishing expected {}",
                    version - 1
                )));
            }
            tx.execute(
                "INSERT INTO templates (key, version, name, content_hash, json, published_at, published_by) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![key, version, name, content_hash, json, at, event.by.id],
            )
            .map_err(sql)?;
        }
    }
    Ok(())
}

/// The statements most run commits run, each prepared the first time a
/// transaction needs it and held to its end: the statement cache hashes and
/// compares a statement's whole text on every lookup.
#[derive(Default)]
pub(crate) struct Prepared<'c> {
    update_run: Option<CachedStatement<'c>>,
    update_task: Option<CachedStatement<'c>>,
    delete_assignee: Option<CachedStatement<'c>>,
    write_snapshot: Option<CachedStatement<'c>>,
    /// One statement per set of changed columns (a bit each), see
    /// `metrics::update_task_fact`.
    pub(crate) update_task_facts: Vec<(u8, CachedStatement<'c>)>,
}

/// The statement in `slot`, prepared from `text` if the transaction has not yet.
fn prepared<'s, 'c>(
    slot: &'s mut Option<CachedStatement<'c>>,
    tx: &'c Transaction<'_>,
    text: &str,
) -> StoreResult<&'s mut CachedStatement<'c>> {
    let statement = match slot.take() {
        Some(statement) => statement,
        None => tx.prepare_cached(text).map_err(sql)?,
    };
    Ok(slot.insert(statement))
}

/// The run keys a transaction knows: those of runs committed before it, and
/// those it learns, which are known to later ones only once it commits.
struct RunKeys<'a> {
    known: &'a HashMap<String, i64>,
    learned: Vec<(String, i64)>,
}

fn write_run<'c>(
    tx: &'c Transaction<'_>,
    keys: &mut RunKeys<'_>,
    ledger: &mut Appender,
    statements: &mut Prepared<'c>,
    rollups: &mut rollups::Batch,
    commit: &RunCommit,
    bytes: &CommitBytes,
) -> StoreResult<Result<(), String>> {
    let s = &commit.state;
    // The other rows carry the run's integer key: a new run's is the rowid
    // its insert took, a stored run's is known or looked up by id (a
    // `RETURNING` clause on the update cost more than the lookup).
    let known = keys.known.get(&s.run_id).copied();
    let run_no = if commit.expected_version == 0 {
        insert_run(tx, s)?
    } else {
        // A run this store has not committed yet is looked up by id; its key
        // is remembered once the commit lands.
        let stored = match known {
            Some(run_no) => Some(run_no),
            None => run_no_of(tx, &s.run_id)?,
        };
        match stored {
            Some(run_no) if update_run(tx, statements, run_no, commit)? => Some(run_no),
            _ => None,
        }
    };
    let Some(run_no) = run_no else {
        return Ok(Err(conflict(tx, commit)?));
    };
    if known.is_none() {
        keys.learned.push((s.run_id.clone(), run_no));
    }
    // `CommitBytes` holds the state's JSON when the commit stores a snapshot
    // (`writes_state_snapshot`).
    if let Some(state_json) = &bytes.state_json {
        let text = "INSERT INTO run_states (run_no, version, state) VALUES (?1, ?2, ?3)
                    ON CONFLICT (run_no) DO UPDATE SET version = excluded.version, state = excluded.state";
        prepared(&mut statements.write_snapshot, tx, text)?
            .execute(params![run_no, s.event_count as i64, state_json])
            .map_err(sql)?;
    }
    for (i, (event, event_bytes)) in commit.events.iter().zip(&bytes.events).enumerate() {
        let run_seq = commit.expected_version + i as u64;
        ledger.push(&commit.run_id, run_no, run_seq, event_bytes, event.body.type_name())?;
    }
    write_task_rows(tx, statements, run_no, commit)?;
    let previous = commit.previous.as_ref().map(|p| &p.facts);
    metrics::write_facts(tx, statements, rollups, run_no, commit.expected_version == 0, &commit.facts, previous)?;
    Ok(Ok(()))
}

/// Updates a stored run's row, keyed `run_no`, if the run is still at the
/// version the command was decided on, so the version check costs no
/// statement of its own; false if it is not.
fn update_run<'c>(
    tx: &'c Transaction<'_>,
    statements: &mut Prepared<'c>,
    run_no: i64,
    commit: &RunCommit,
) -> StoreResult<bool> {
    let s = &commit.state;
    let written = if commit.previous.as_ref().is_some_and(|p| p.facts.status == s.status) {
        // Status is in both run indexes; an update that leaves it alone must
        // not name it, or SQLite rewrites both index entries. Every command
        // runs this statement, so its values are bound one by one, without the
        // parameter count check and the slice `execute` takes.
        let statement = prepared(
            &mut statements.update_run,
            tx,
            "UPDATE runs SET updated_at = ?2, finished_at = ?3, version = ?4 WHERE run_no = ?1 AND version = ?5",
        )?;
        statement.raw_bind_parameter(1, run_no).map_err(sql)?;
        statement.raw_bind_parameter(2, ms(s.updated_at)).map_err(sql)?;
        statement.raw_bind_parameter(3, s.finished_at.map(ms)).map_err(sql)?;
        statement.raw_bind_parameter(4, s.event_count as i64).map_err(sql)?;
        statement.raw_bind_parameter(5, commit.expected_version as i64).map_err(sql)?;
        statement.raw_execute().map_err(sql)?
    } else {
        tx.prepare_cached(
            "UPDATE runs SET status = ?2, updated_at = ?3, finished_at = ?4, version = ?5
             WHERE run_no = ?1 AND version = ?6",
        )
        .map_err(sql)?
        .execute(params![
            run_no,
            s.status.as_str(),
            ms(s.updated_at),
            s.finished_at.map(ms),
            s.event_count as i64,
            commit.expected_version as i64
        ])
        .map_err(sql)?
    };
    Ok(written > 0)
}

/// Why a commit's run row was not written: the run moved on (or, for a new
/// run, its id is taken) since the command was decided.
fn conflict(tx: &Transaction<'_>, commit: &RunCommit) -> StoreResult<String> {
    let current: Option<i64> = tx
        .prepare_cached("SELECT version FROM runs WHERE id = ?1")
        .map_err(sql)?
        .query_row([&commit.run_id], |r| r.get(0))
        .optional()
        .map_err(sql)?;
    Ok(format!(
        "run {} changed while the command was decided (version {} now, {} expected); reload and try again",
        commit.run_id,
        current.unwrap_or(0),
        commit.expected_version
    ))
}

/// Writes run commits as they come in one transaction, and hands each back
/// with its outcome; an `Err` from `commits` ends the write, so the caller's
/// transaction rolls back.
fn write_commits<C: std::borrow::Borrow<RunCommit>>(
    tx: &Transaction<'_>,
    keys: &mut RunKeys<'_>,
    commits: &mut dyn Iterator<Item = StoreResult<(C, CommitBytes)>>,
) -> StoreResult<Vec<(C, Result<(), String>)>> {
    let mut ledger = Appender::new(tx)?;
    let mut statements = Prepared::default();
    let mut rollups = rollups::Batch::default();
    let mut written = Vec::new();
    for next in commits {
        let (commit, bytes) = next?;
        let outcome = write_run(tx, keys, &mut ledger, &mut statements, &mut rollups, commit.borrow(), &bytes)?;
        written.push((commit, outcome));
    }
    rollups.flush(tx)?;
    ledger.finish(tx)?;
    Ok(written)
}

/// Inserts a new run's row and returns its integer key; `None` when the id is taken.
fn insert_run(tx: &Transaction<'_>, s: &RunState) -> StoreResult<Option<i64>> {
    let text = "INSERT INTO runs (id, template_key, template_version, name, status, starter, started_at, updated_at,
                  finished_at, version, due_at)
                VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
                ON CONFLICT (id) DO NOTHING";
    let inserted = tx
        .prepare_cached(text)
        .map_err(sql)?
        .execute(params![
            s.run_id,
            s.template_key,
            s.version,
            s.name,
            s.status.as_str(),
            s.starter,
            ms(s.started_at),
            ms(s.updated_at),
            s.finished_at.map(ms),
            s.event_count as i64,
            s.due_at.map(ms)
        ])
        .map_err(sql)?;
    Ok((inserted > 0).then(|| tx.last_insert_rowid()))
}

/// A task row and its assignee rows as stored before a commit.
struct StoredTask<'a> {
    key: &'a str,
    status: &'a str,
    due_at: Option<i64>,
    /// One per assignee row, as `INSERT OR IGNORE` left them.
    principals: Vec<&'a str>,
}

/// Brings a run's task and assignee rows to the commit's projection, writing
/// only the rows that differ: a command changes a task or two, and deleting
/// and re-inserting every row was most of a commit's SQL.
fn write_task_rows<'c>(
    tx: &'c Transaction<'_>,
    statements: &mut Prepared<'c>,
    run_no: i64,
    commit: &RunCommit,
) -> StoreResult<()> {
    if let Some(previous) = &commit.previous {
        let stored = previous
            .tasks
            .iter()
            .map(|task| StoredTask {
                key: &task.key,
                status: &task.status,
                due_at: task.due_at.map(ms),
                // Only an open run's open tasks have assignee rows.
                principals: if assignees_indexed(previous.facts.status, &task.status) {
                    let mut principals: Vec<&str> = task.assignees.iter().map(String::as_str).collect();
                    principals.sort_unstable();
                    principals.dedup();
                    principals
                } else {
                    Vec::new()
                },
            })
            .collect();
        return write_task_changes(tx, statements, run_no, commit, stored);
    }
    if commit.expected_version == 0 {
        // A new run has no rows yet.
        return write_task_changes(tx, statements, run_no, commit, Vec::new());
    }
    let mut stmt = tx.prepare_cached("SELECT key, status, due_at FROM tasks WHERE run_no = ?1").map_err(sql)?;
    let tasks = stmt
        .query_map([run_no], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, Option<i64>>(2)?)))
        .map_err(sql)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(sql)?;
    let mut stmt =
        tx.prepare_cached("SELECT task_key, principal FROM task_assignees WHERE run_no = ?1").map_err(sql)?;
    let assignees = stmt
        .query_map([run_no], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
        .map_err(sql)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(sql)?;
    let mut stored: Vec<StoredTask<'_>> = tasks
        .iter()
        .map(|(key, status, due_at)| StoredTask { key, status, due_at: *due_at, principals: Vec::new() })
        .collect();
    for (task_key, principal) in &assignees {
        match stored.iter_mut().find(|t| t.key == task_key) {
            Some(task) => task.principals.push(principal),
            // An assignee row without its task row goes; the projection
            // below writes it again if it still belongs there.
            None => delete_assignee(tx, statements, principal, run_no, task_key)?,
        }
    }
    write_task_changes(tx, statements, run_no, commit, stored)
}

/// Writes the task and assignee rows of `commit` that differ from `stored`
/// and deletes the stored ones it no longer has. Both lists come in template
/// order, so a task is looked for at its own position first.
fn write_task_changes<'c>(
    tx: &'c Transaction<'_>,
    statements: &mut Prepared<'c>,
    run_no: i64,
    commit: &RunCommit,
    stored: Vec<StoredTask<'_>>,
) -> StoreResult<()> {
    let s = &commit.state;
    let mut stored: Vec<Option<StoredTask<'_>>> = stored.into_iter().map(Some).collect();
    // New task and assignee rows go in with multi-row inserts after the loop:
    // a run's start inserts every task, and a statement per row cost most of it.
    // No delete below names a row inserted here, so the order does not matter.
    let mut new_tasks: Vec<(&TaskRow, Option<i64>, i64)> = Vec::new();
    let mut new_assignees: Vec<(&String, &String)> = Vec::new();
    for (position, task) in commit.tasks.iter().enumerate() {
        let due_at = task.due_at.map(ms);
        let at = if stored.get(position).is_some_and(|t| t.as_ref().is_some_and(|t| t.key == task.key)) {
            Some(position)
        } else {
            stored.iter().position(|t| t.as_ref().is_some_and(|t| t.key == task.key))
        };
        let previous = at.and_then(|i| stored[i].take());
        match &previous {
            Some(p) if p.status == task.status && p.due_at == due_at => {}
            // A task row's name, approval flag and position come from the
            // run's template version, which never changes: only status and
            // due date move.
            Some(_) => {
                let text = "UPDATE tasks SET status = ?3, due_at = ?4 WHERE run_no = ?1 AND key = ?2";
                let statement = prepared(&mut statements.update_task, tx, text)?;
                statement.raw_bind_parameter(1, run_no).map_err(sql)?;
                statement.raw_bind_parameter(2, &task.key).map_err(sql)?;
                statement.raw_bind_parameter(3, &task.status).map_err(sql)?;
                statement.raw_bind_parameter(4, due_at).map_err(sql)?;
                statement.raw_execute().map_err(sql)?;
            }
            None => new_tasks.push((task, due_at, position as i64)),
        }
        let mut principals = previous.map(|p| p.principals).unwrap_or_default();
        if assignees_indexed(s.status, &task.status) {
            for principal in &task.assignees {
                if let Some(i) = principals.iter().position(|p| p == principal) {
                    principals.swap_remove(i);
                    continue;
                }
                new_assignees.push((principal, &task.key));
            }
        }
        for principal in principals {
            delete_assignee(tx, statements, principal, run_no, &task.key)?;
        }
    }
    // What is left stored is no longer in the projection.
    for task in stored.into_iter().flatten() {
        tx.prepare_cached("DELETE FROM tasks WHERE run_no = ?1 AND key = ?2")
            .map_err(sql)?
            .execute(params![run_no, task.key])
            .map_err(sql)?;
        for principal in task.principals {
            delete_assignee(tx, statements, principal, run_no, task.key)?;
        }
    }
    let values: Vec<&dyn ToSql> = new_tasks
        .iter()
        .flat_map(|(task, due_at, position)| {
            [&run_no as &dyn ToSql, &task.key, &task.name, &task.status, &task.approval, due_at, position]
        })
        .collect();
    insert_rows_with(
        tx,
        "INSERT INTO tasks (run_no, key, name, status, approval, due_at, position)",
        7,
        &values,
        "ON CONFLICT (run_no, key) DO UPDATE SET name = excluded.name, status = excluded.status,
           approval = excluded.approval, due_at = excluded.due_at, position = excluded.position",
    )?;
    let values: Vec<&dyn ToSql> =
        new_assignees.iter().flat_map(|(principal, task_key)| [*principal as &dyn ToSql, &run_no, *task_key]).collect();
    insert_rows(tx, "INSERT OR IGNORE INTO task_assignees (principal, run_no, task_key)", 3, &values)
}

/// Whether a task's assignees are indexed: only actionable tasks of open
/// runs are anyone's work.
fn assignees_indexed(run: RunStatus, task_status: &str) -> bool {
    run == RunStatus::Open && (task_status == "open" || task_status == "rework")
}

fn delete_assignee<'c>(
    tx: &'c Transaction<'_>,
    statements: &mut Prepared<'c>,
    principal: &str,
    run_no: i64,
    task_key: &str,
) -> StoreResult<()> {
    let text = "DELETE FROM task_assignees WHERE principal = ?1 AND run_no = ?2 AND task_key = ?3";
    let statement = prepared(&mut statements.delete_assignee, tx, text)?;
    statement.raw_bind_parameter(1, principal).map_err(sql)?;
    statement.raw_bind_parameter(2, run_no).map_err(sql)?;
    statement.raw_bind_parameter(3, task_key).map_err(sql)?;
    statement.raw_execute().map_err(sql)?;
    Ok(())
}

fn run_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RunRowRaw> {
    Ok(RunRowRaw {
        id: r.get(0)?,
        template_key: r.get(1)?,
        template_version: r.get(2)?,
        name: r.get(3)?,
        status: r.get(4)?,
        starter: r.get(5)?,
        started_at: r.get(6)?,
        updated_at: r.get(7)?,
        finished_at: r.get(8)?,
        version: r.get(9)?,
        snapshot_version: r.get(10)?,
        state_json: r.get(11)?,
        run_no: r.get(12)?,
    })
}

struct RunRowRaw {
    id: String,
    template_key: String,
    template_version: u32,
    name: String,
    status: String,
    starter: String,
    started_at: i64,
    updated_at: i64,
    finished_at: Option<i64>,
    version: i64,
    snapshot_version: i64,
    state_json: String,
    run_no: i64,
}

/// A run's row and its last state snapshot, from `runs r JOIN run_states s`.
const RUN_COLUMNS: &str = "r.id, r.template_key, r.template_version, r.name, r.status, r.starter, r.started_at,
     r.updated_at, r.finished_at, r.version, s.version, s.state, r.run_no";

/// The integer key of the run with id `run_id`.
pub(crate) fn run_no_of(c: &Connection, run_id: &str) -> StoreResult<Option<i64>> {
    c.prepare_cached("SELECT run_no FROM runs WHERE id = ?1")
        .map_err(sql)?
        .query_row([run_id], |r| r.get(0))
        .optional()
        .map_err(sql)
}

/// A run's entries from position `from_run_seq` on, in run order.
fn run_entries(c: &Connection, run_no: i64, from_run_seq: i64) -> StoreResult<Vec<StoredEntry>> {
    let mut stmt = c
        .prepare_cached("SELECT seq, bytes FROM entries WHERE run_no = ?1 AND run_seq >= ?2 ORDER BY run_seq")
        .map_err(sql)?;
    let rows = stmt
        .query_map(params![run_no, from_run_seq], |r| {
            Ok(StoredEntry { seq: r.get::<_, i64>(0)? as u64, bytes: r.get(1)? })
        })
        .map_err(sql)?;
    rows.map(|r| r.map_err(sql)).collect()
}

/// A run's row, its snapshot and the entries after the snapshot.
fn stored_run(c: &Connection, raw: RunRowRaw) -> StoreResult<StoredRun> {
    let tail =
        if raw.version > raw.snapshot_version { run_entries(c, raw.run_no, raw.snapshot_version)? } else { Vec::new() };
    let row = to_run_row(raw)?;
    if row.state.event_count + tail.len() as u64 != row.version {
        return Err(StoreError::Corrupt(format!(
            "run {} is at version {} but its snapshot ({} events) and later entries ({}) do not add up",
            row.id,
            row.version,
            row.state.event_count,
            tail.len()
        )));
    }
    Ok(StoredRun { row, tail })
}

fn to_run_row(raw: RunRowRaw) -> StoreResult<RunRow> {
    let state: RunState = serde_json::from_str(&raw.state_json)
        .map_err(|e| StoreError::Corrupt(format!("run {} has an unreadable state: {e}", raw.id)))?;
    let status = match raw.status.as_str() {
        "open" => RunStatus::Open,
        "completed" => RunStatus::Completed,
        "cancelled" => RunStatus::Cancelled,
        other => return Err(StoreError::Corrupt(format!("run {} has unknown status {other}", raw.id))),
    };
    Ok(RunRow {
        id: raw.id,
        template_key: raw.template_key,
        template_version: raw.template_version,
        name: raw.name,
        status,
        starter: raw.starter,
        started_at: from_ms(raw.started_at)?,
        updated_at: from_ms(raw.updated_at)?,
        finished_at: raw.finished_at.map(from_ms).transpose()?,
        version: raw.version as u64,
        state,
    })
}

fn template_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(TemplateVersionRow, i64)> {
    Ok((
        TemplateVersionRow {
            key: r.get(0)?,
            name: r.get(1)?,
            version: r.get(2)?,
            content_hash: r.get(3)?,
            json: r.get(4)?,
            published_at: Timestamp::UNIX_EPOCH,
            published_by: r.get(6)?,
        },
        r.get(5)?,
    ))
}

fn finish_template((mut row, at): (TemplateVersionRow, i64)) -> StoreResult<TemplateVersionRow> {
    row.published_at = from_ms(at)?;
    Ok(row)
}

const TEMPLATE_COLUMNS: &str = "key, name, version, content_hash, json, published_at, published_by";

impl Store for SqliteStore {
    fn workspace(&self) -> StoreResult<Option<WorkspaceInfo>> {
        self.with_conn(|c| {
            let row: Option<(String, i64)> = c
                .query_row("SELECT name, created_at FROM workspace WHERE id = 1", [], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
                .map_err(sql)?;
            row.map(|(name, at)| Ok(WorkspaceInfo { name, created_at: from_ms(at)? })).transpose()
        })
    }

    fn write_workspace(&self, event: &WorkspaceEvent, change: &DirectoryChange) -> StoreResult<u64> {
        self.write(|tx| {
            apply_change(tx, event, change)?;
            let seq = ledger_size(tx)?;
            let entry = LedgerEntry { seq, run: None, run_seq: None, event: EntryEvent::Workspace(event.clone()) };
            append_entry(tx, &entry)?;
            Ok(seq)
        })
    }

    fn write_runs(&self, commits: &[RunCommit]) -> StoreResult<Vec<Result<(), String>>> {
        let mut commits = commits.iter().map(|c| Ok((c, CommitBytes::new(c)?)));
        let written = self.write_run_commits(&mut commits)?;
        Ok(written.into_iter().map(|(_, outcome)| outcome).collect())
    }

    fn write_runs_streamed(
        &self,
        commits: &mut dyn Iterator<Item = StoreResult<(RunCommit, CommitBytes)>>,
    ) -> StoreResult<Vec<(RunCommit, Result<(), String>)>> {
        self.write_run_commits(commits)
    }

    fn user(&self, email: &str) -> StoreResult<Option<UserRow>> {
        Ok(self.users()?.into_iter().find(|u| u.email == email))
    }

    fn users(&self) -> StoreResult<Vec<UserRow>> {
        self.with_conn(|c| {
            let mut stmt = c
                .prepare_cached(
                    "SELECT u.email, u.name, u.admin, u.created_at, COALESCE(group_concat(r.role, char(31)), '')
                     FROM users u LEFT JOIN (SELECT * FROM user_roles ORDER BY role) r ON r.email = u.email
                     GROUP BY u.email ORDER BY u.email",
                )
                .map_err(sql)?;
            let rows = stmt
                .query_map([], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, bool>(2)?,
                        r.get::<_, i64>(3)?,
                        r.get::<_, String>(4)?,
                    ))
                })
                .map_err(sql)?;
            let mut users = Vec::new();
            for row in rows {
                let (email, name, admin, at, roles) = row.map_err(sql)?;
                let mut roles: Vec<String> =
                    roles.split('\u{1f}').filter(|s| !s.is_empty()).map(str::to_string).collect();
                roles.sort();
                users.push(UserRow { email, name, admin, roles, created_at: from_ms(at)? });
            }
            Ok(users)
        })
    }

    fn template_version(&self, key: &str, version: Option<u32>) -> StoreResult<Option<TemplateVersionRow>> {
        self.with_conn(|c| {
            // Prepared once per connection: every run start looks its template up.
            let row = match version {
                Some(v) => c
                    .prepare_cached(&format!(
                        "SELECT {TEMPLATE_COLUMNS} FROM templates WHERE key = ?1 AND version = ?2"
                    ))
                    .and_then(|mut stmt| stmt.query_row(params![key, v], template_row).optional()),
                None => c
                    .prepare_cached(&format!(
                        "SELECT {TEMPLATE_COLUMNS} FROM templates WHERE key = ?1 ORDER BY version DESC LIMIT 1"
                    ))
                    .and_then(|mut stmt| stmt.query_row(params![key], template_row).optional()),
            }
            .map_err(sql)?;
            row.map(finish_template).transpose()
        })
    }

    fn template_versions(&self, key: &str) -> StoreResult<Vec<TemplateVersionRow>> {
        self.with_conn(|c| {
            let mut stmt = c
                .prepare_cached(&format!("SELECT {TEMPLATE_COLUMNS} FROM templates WHERE key = ?1 ORDER BY version"))
                .map_err(sql)?;
            let rows = stmt.query_map([key], template_row).map_err(sql)?;
            rows.map(|r| r.map_err(sql).and_then(finish_template)).collect()
        })
    }

    fn templates(&self) -> StoreResult<Vec<TemplateSummary>> {
        self.with_conn(|c| {
            let mut stmt = c
                .prepare_cached(
                    "SELECT t.key, t.name, t.version,
                       (SELECT COUNT(*) FROM runs r WHERE r.template_key = t.key AND r.status = 'open'),
                       (SELECT COUNT(*) FROM runs r WHERE r.template_key = t.key)
                     FROM templates t
                     WHERE t.version = (SELECT MAX(version) FROM templates t2 WHERE t2.key = t.key)
                     ORDER BY t.key",
                )
                .map_err(sql)?;
            let rows = stmt
                .query_map([], |r| {
                    Ok(TemplateSummary {
                        key: r.get(0)?,
                        name: r.get(1)?,
                        latest_version: r.get(2)?,
                        open_runs: r.get::<_, i64>(3)? as u64,
                        total_runs: r.get::<_, i64>(4)? as u64,
                    })
                })
                .map_err(sql)?;
            rows.map(|r| r.map_err(sql)).collect()
        })
    }

    fn run(&self, run_id: &str) -> StoreResult<Option<StoredRun>> {
        self.with_conn(|c| {
            // The row and the entries after its snapshot are read in one
            // transaction: read apart, another process's commit between them
            // made the entries outnumber the row's version.
            let tx = c.transaction().map_err(sql)?;
            // Prepared once per connection: every command loads its run.
            let row = tx
                .prepare_cached(&format!(
                    "SELECT {RUN_COLUMNS} FROM runs r JOIN run_states s ON s.run_no = r.run_no WHERE r.id = ?1"
                ))
                .and_then(|mut stmt| stmt.query_row([run_id], run_row).optional())
                .map_err(sql)?;
            row.map(|raw| stored_run(&tx, raw)).transpose()
        })
    }

    fn run_events(&self, run_id: &str) -> StoreResult<Vec<StoredEntry>> {
        self.with_conn(|c| match run_no_of(c, run_id)? {
            Some(run_no) => run_entries(c, run_no, 0),
            None => Ok(Vec::new()),
        })
    }

    fn runs(&self, filter: &RunFilter) -> StoreResult<Vec<StoredRun>> {
        let limit = filter.limit.clamp(1, MAX_LIST_LIMIT);
        self.with_conn(|c| {
            // One transaction for the rows and their entries, as in `run`.
            let tx = c.transaction().map_err(sql)?;
            let mut stmt = tx
                .prepare_cached(&format!(
                    "SELECT {RUN_COLUMNS} FROM runs r JOIN run_states s ON s.run_no = r.run_no
                     WHERE (?1 IS NULL OR r.template_key = ?1) AND (?2 IS NULL OR r.status = ?2)
                       AND (?3 IS NULL OR r.id < ?3)
                     ORDER BY r.id DESC LIMIT ?4"
                ))
                .map_err(sql)?;
            let raws = stmt
                .query_map(
                    params![filter.template, filter.status.map(RunStatus::as_str), filter.before, limit],
                    run_row,
                )
                .map_err(sql)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(sql)?;
            raws.into_iter().map(|raw| stored_run(&tx, raw)).collect()
        })
    }

    fn inbox(&self, principals: &[String]) -> StoreResult<Vec<InboxRow>> {
        self.with_conn(|c| {
            let mut stmt = c
                .prepare_cached(
                    "SELECT DISTINCT r.id, r.name, r.template_key, t.key, t.name, t.status, t.approval, t.due_at, t.position
                     FROM task_assignees a
                     JOIN tasks t ON t.run_no = a.run_no AND t.key = a.task_key
                     JOIN runs r ON r.run_no = a.run_no
                     WHERE a.principal IN (SELECT value FROM json_each(?1)) AND r.status = 'open'
                     ORDER BY t.due_at IS NULL, t.due_at, r.id, t.position",
                )
                .map_err(sql)?;
            let principals_json = serde_json::to_string(principals).map_err(other)?;
            let rows = stmt
                .query_map([principals_json], |r| {
                    Ok((
                        InboxRow {
                            run_id: r.get(0)?,
                            run_name: r.get(1)?,
                            template_key: r.get(2)?,
                            task_key: r.get(3)?,
                            task_name: r.get(4)?,
                            status: r.get(5)?,
                            approval: r.get(6)?,
                            due_at: None,
                        },
                        r.get::<_, Option<i64>>(7)?,
                    ))
                })
                .map_err(sql)?;
            let mut out = Vec::new();
            for row in rows {
                let (mut item, due) = row.map_err(sql)?;
                item.due_at = due.map(from_ms).transpose()?;
                out.push(item);
            }
            Ok(out)
        })
    }

    fn ledger_size(&self) -> StoreResult<u64> {
        self.with_conn(|c| ledger_size(c))
    }

    fn ledger_entries(&self, from: u64, to: u64) -> StoreResult<Vec<StoredEntry>> {
        self.with_conn(|c| {
            let mut stmt = c
                .prepare_cached("SELECT seq, bytes FROM entries WHERE seq >= ?1 AND seq < ?2 ORDER BY seq")
                .map_err(sql)?;
            let rows = stmt
                .query_map(params![from as i64, to.min(i64::MAX as u64) as i64], |r| {
                    Ok(StoredEntry { seq: r.get::<_, i64>(0)? as u64, bytes: r.get(1)? })
                })
                .map_err(sql)?;
            rows.map(|r| r.map_err(sql)).collect()
        })
    }

    fn ledger_root(&self, size: u64) -> StoreResult<Hash> {
        self.with_conn(|c| {
            let tx = c.transaction().map_err(sql)?;
            let nodes = SqlNodes { tx: &tx };
            attest_ledger::root(&nodes, size).map_err(other)
        })
    }

    fn inclusion_proof(&self, index: u64, size: u64) -> StoreResult<Vec<Hash>> {
        self.with_conn(|c| {
            let tx = c.transaction().map_err(sql)?;
            let nodes = SqlNodes { tx: &tx };
            attest_ledger::inclusion_proof(&nodes, index, size).map_err(other)
        })
    }

    fn consistency_proof(&self, old_size: u64, new_size: u64) -> StoreResult<Vec<Hash>> {
        self.with_conn(|c| {
            let tx = c.transaction().map_err(sql)?;
            let nodes = SqlNodes { tx: &tx };
            attest_ledger::consistency_proof(&nodes, old_size, new_size).map_err(other)
        })
    }

    fn ledger_leaf(&self, index: u64) -> StoreResult<Option<Hash>> {
        self.with_conn(|c| {
            let tx = c.transaction().map_err(sql)?;
            let nodes = SqlNodes { tx: &tx };
            attest_ledger::NodeStore::node(&nodes, 0, index).map_err(sql)
        })
    }

    fn put_checkpoint(&self, checkpoint: &CheckpointRow) -> StoreResult<()> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO checkpoints (size, note, created_at) VALUES (?1, ?2, ?3) ON CONFLICT (size) DO NOTHING",
                params![checkpoint.size as i64, checkpoint.note, ms(checkpoint.created_at)],
            )
            .map_err(sql)?;
            Ok(())
        })
    }

    fn checkpoints(&self) -> StoreResult<Vec<CheckpointRow>> {
        self.with_conn(|c| {
            let mut stmt =
                c.prepare_cached("SELECT size, note, created_at FROM checkpoints ORDER BY size").map_err(sql)?;
            let rows = stmt
                .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?)))
                .map_err(sql)?;
            let mut out = Vec::new();
            for row in rows {
                let (size, note, at) = row.map_err(sql)?;
                out.push(CheckpointRow { size: size as u64, note, created_at: from_ms(at)? });
            }
            Ok(out)
        })
    }
}

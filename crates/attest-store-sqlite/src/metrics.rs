//! [`MetricsStore`] for SQLite: the metric fact tables (see `migrations.rs`)
//! and the indexed reads that aggregate them. The facts of a run are written
//! by [`write_facts`] inside the transaction that appends its events.

use std::collections::BTreeMap;

use attest_engine::RunStatus;
use attest_store::{
    CompletionDay, ControlCountRow, ControlFact, CycleTimes, MetricScope, MetricsStore, OverdueCountRow, RunCountRow,
    RunFacts, StoreError, StoreResult, TaskFact, TaskOutcome, TaskWaits,
};
use jiff::Timestamp;
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, ToSql, Transaction, params, params_from_iter};

use crate::rollups::{self, DayRange, day_filter, parse_list};
use crate::{Prepared, SqliteStore, from_ms, insert_rows, insert_rows_with, ms, run_no_of, sql};

fn status(s: &str) -> StoreResult<RunStatus> {
    match s {
        "open" => Ok(RunStatus::Open),
        "completed" => Ok(RunStatus::Completed),
        "cancelled" => Ok(RunStatus::Cancelled),
        other => Err(StoreError::Corrupt(format!("metric facts hold unknown run status {other}"))),
    }
}

/// Writes the facts of the run whose integer key is `run_no`, and adds the
/// move of the day rollups to the transaction's `rollups` (written by its
/// flush). With the facts as stored before (`previous`), nothing is read
/// back; without them (a run this process did not commit last), the stored
/// ones are read first. Only the rows that differ are written.
pub(crate) fn write_facts<'c>(
    tx: &'c Transaction<'_>,
    statements: &mut Prepared<'c>,
    rollups: &mut rollups::Batch,
    run_no: i64,
    new_run: bool,
    f: &RunFacts,
    previous: Option<&RunFacts>,
) -> StoreResult<()> {
    let stored;
    let before = match (new_run, previous) {
        (true, _) => None,
        (false, Some(p)) => Some(p),
        (false, None) => {
            stored = read_facts(tx, run_no, &f.run_id)?;
            stored.as_ref()
        }
    };
    rollups.apply(tx, before, f)?;
    match before {
        Some(p) => write_fact_changes(tx, statements, run_no, f, p),
        None => {
            upsert_run_fact(tx, run_no, f)?;
            upsert_task_facts(tx, run_no, f, 0)?;
            insert_control_facts(tx, run_no, f)
        }
    }
}

/// Writes what changed between two versions of a run's facts. Most commands
/// change one task episode and leave the run's row alone: its event count is
/// the run's version, not a column every command would rewrite.
fn write_fact_changes<'c>(
    tx: &'c Transaction<'_>,
    statements: &mut Prepared<'c>,
    run_no: i64,
    f: &RunFacts,
    p: &RunFacts,
) -> StoreResult<()> {
    let run_same = (&p.template_key, p.version, p.status, p.started_at, p.finished_at, p.rejections, p.on_time)
        == (&f.template_key, f.version, f.status, f.started_at, f.finished_at, f.rejections, f.on_time);
    if !run_same {
        upsert_run_fact(tx, run_no, f)?;
    }
    for (seq, (t, stored)) in f.tasks.iter().zip(&p.tasks).enumerate() {
        // The row exists: an update skips the insert attempt an upsert makes.
        update_task_fact(tx, statements, run_no, seq, t, stored)?;
    }
    upsert_task_facts(tx, run_no, f, p.tasks.len())?;
    if p.tasks.len() > f.tasks.len() {
        tx.prepare_cached("DELETE FROM metric_tasks WHERE run_no = ?1 AND seq >= ?2")
            .map_err(sql)?
            .execute(params![run_no, f.tasks.len() as i64])
            .map_err(sql)?;
    }
    if p.controls != f.controls {
        tx.prepare_cached("DELETE FROM metric_controls WHERE run_no = ?1")
            .map_err(sql)?
            .execute([run_no])
            .map_err(sql)?;
        insert_control_facts(tx, run_no, f)?;
    }
    Ok(())
}

fn upsert_run_fact(tx: &Transaction<'_>, run_no: i64, f: &RunFacts) -> StoreResult<()> {
    tx.prepare_cached(
        "INSERT INTO metric_runs (run_no, template_key, version, status, started_at, finished_at, rejections, on_time)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (run_no) DO UPDATE SET status = excluded.status, finished_at = excluded.finished_at,
           rejections = excluded.rejections, on_time = excluded.on_time",
    )
    .map_err(sql)?
    .execute(params![
        run_no,
        f.template_key,
        f.version,
        f.status.as_str(),
        ms(f.started_at),
        f.finished_at.map(ms),
        f.rejections,
        f.on_time
    ])
    .map_err(sql)?;
    Ok(())
}

/// Upserts the task facts from position `from` on with multi-row statements:
/// a run's start writes every episode, and a statement per row cost most of it.
fn upsert_task_facts(tx: &Transaction<'_>, run_no: i64, f: &RunFacts, from: usize) -> StoreResult<()> {
    let Some(tasks) = f.tasks.get(from..).filter(|t| !t.is_empty()) else {
        return Ok(());
    };
    let started_at = ms(f.started_at);
    let rows: Vec<_> = tasks
        .iter()
        .enumerate()
        .map(|(i, t)| {
            (
                (from + i) as i64,
                t.outcome.map(TaskOutcome::as_str),
                t.actionable_at.map(ms),
                t.ended_at.map(ms),
                t.due_at.map(ms),
            )
        })
        .collect();
    let values: Vec<&dyn ToSql> = rows
        .iter()
        .zip(tasks)
        .flat_map(|((seq, outcome, actionable_at, ended_at, due_at), t)| {
            [
                &run_no as &dyn ToSql,
                seq,
                &f.template_key,
                &f.version,
                &started_at,
                &t.task_key,
                &t.approval,
                outcome,
                actionable_at,
                ended_at,
                due_at,
            ]
        })
        .collect();
    insert_rows_with(
        tx,
        "INSERT INTO metric_tasks (run_no, seq, template_key, version, run_started_at, task_key, approval, outcome,
           actionable_at, ended_at, due_at)",
        11,
        &values,
        "ON CONFLICT (run_no, seq) DO UPDATE SET task_key = excluded.task_key, approval = excluded.approval,
           outcome = excluded.outcome, actionable_at = excluded.actionable_at, ended_at = excluded.ended_at,
           due_at = excluded.due_at",
    )
}

/// Updates a task fact's row from `stored` to `t`, setting only the columns
/// that changed, and nothing when none did: an update that names a column of
/// `metric_tasks_ended` or `metric_tasks_open_due`, or of their conditions,
/// makes SQLite rewrite that index's entries, and a task turning actionable
/// without a due date touches neither. Each set of changed columns has its
/// statement, held for the transaction and bound one parameter at a time like
/// the other statements every command runs (see `write_run`).
fn update_task_fact<'c>(
    tx: &'c Transaction<'_>,
    statements: &mut Prepared<'c>,
    run_no: i64,
    seq: usize,
    t: &TaskFact,
    stored: &TaskFact,
) -> StoreResult<()> {
    let outcome = t.outcome.map(TaskOutcome::as_str);
    let (actionable_at, ended_at, due_at) = (t.actionable_at.map(ms), t.ended_at.map(ms), t.due_at.map(ms));
    let columns: [(&str, bool, &dyn ToSql); 6] = [
        ("task_key", t.task_key != stored.task_key, &t.task_key),
        ("approval", t.approval != stored.approval, &t.approval),
        ("outcome", t.outcome != stored.outcome, &outcome),
        ("actionable_at", t.actionable_at != stored.actionable_at, &actionable_at),
        ("ended_at", t.ended_at != stored.ended_at, &ended_at),
        ("due_at", t.due_at != stored.due_at, &due_at),
    ];
    let changed = columns.iter().enumerate().filter(|(_, (_, changed, _))| *changed).fold(0u8, |m, (i, _)| m | 1 << i);
    if changed == 0 {
        return Ok(());
    }
    let held = &mut statements.update_task_facts;
    let at = match held.iter().position(|(m, _)| *m == changed) {
        Some(at) => at,
        None => {
            let set: Vec<String> = columns
                .iter()
                .filter(|(_, changed, _)| *changed)
                .enumerate()
                .map(|(i, (column, _, _))| format!("{column} = ?{}", i + 3))
                .collect();
            let text = format!("UPDATE metric_tasks SET {} WHERE run_no = ?1 AND seq = ?2", set.join(", "));
            held.push((changed, tx.prepare_cached(&text).map_err(sql)?));
            held.len() - 1
        }
    };
    let statement = &mut held[at].1;
    statement.raw_bind_parameter(1, run_no).map_err(sql)?;
    statement.raw_bind_parameter(2, seq as i64).map_err(sql)?;
    for (i, (_, _, value)) in columns.iter().filter(|(_, changed, _)| *changed).enumerate() {
        statement.raw_bind_parameter(i + 3, value).map_err(sql)?;
    }
    statement.raw_execute().map_err(sql)?;
    Ok(())
}

/// Inserts a run's control facts with multi-row statements.
fn insert_control_facts(tx: &Transaction<'_>, run_no: i64, f: &RunFacts) -> StoreResult<()> {
    let started_at = ms(f.started_at);
    let seqs: Vec<i64> = (0..f.controls.len() as i64).collect();
    let values: Vec<&dyn ToSql> = f
        .controls
        .iter()
        .zip(&seqs)
        .flat_map(|(c, seq)| {
            [&run_no as &dyn ToSql, seq, &c.control_id, &f.template_key, &f.version, &started_at, &c.passed]
        })
        .collect();
    insert_rows(
        tx,
        "INSERT INTO metric_controls (run_no, seq, control_id, template_key, version, run_started_at, passed)",
        7,
        &values,
    )
}

/// A WHERE clause over the scope's template, version and a time column.
fn scope_filter(scope: &MetricScope, time_column: &str, mut conditions: Vec<String>) -> (String, Vec<Value>) {
    let mut values = Vec::new();
    rollups::version_conditions(scope, &mut conditions, &mut values);
    if let Some(from) = scope.from {
        values.push(Value::Integer(ms(from)));
        conditions.push(format!("{time_column} >= ?{}", values.len()));
    }
    if let Some(to) = scope.to {
        values.push(Value::Integer(ms(to)));
        conditions.push(format!("{time_column} < ?{}", values.len()));
    }
    let clause = if conditions.is_empty() { String::new() } else { format!("WHERE {}", conditions.join(" AND ")) };
    (clause, values)
}

/// The stored facts of the run whose integer key is `run_no` and id `run_id`.
fn read_facts(c: &Connection, run_no: i64, run_id: &str) -> StoreResult<Option<RunFacts>> {
    type RawRun = (String, u32, String, i64, Option<i64>, u32, i64, Option<bool>);
    let raw: Option<RawRun> = c
        .prepare_cached(
            "SELECT m.template_key, m.version, m.status, m.started_at, m.finished_at, m.rejections,
               COALESCE(r.version, 0), m.on_time
             FROM metric_runs m LEFT JOIN runs r ON r.run_no = m.run_no WHERE m.run_no = ?1",
        )
        .map_err(sql)?
        .query_row([run_no], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?))
        })
        .optional()
        .map_err(sql)?;
    let Some((template_key, version, st, started, finished, rejections, event_count, on_time)) = raw else {
        return Ok(None);
    };
    let mut tasks = Vec::new();
    {
        let mut stmt = c
            .prepare_cached(
                "SELECT task_key, approval, outcome, actionable_at, ended_at, due_at
                 FROM metric_tasks WHERE run_no = ?1 ORDER BY seq",
            )
            .map_err(sql)?;
        let rows = stmt
            .query_map([run_no], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, bool>(1)?,
                    r.get::<_, Option<String>>(2)?,
                    r.get::<_, Option<i64>>(3)?,
                    r.get::<_, Option<i64>>(4)?,
                    r.get::<_, Option<i64>>(5)?,
                ))
            })
            .map_err(sql)?;
        for row in rows {
            let (task_key, approval, outcome, actionable, ended, due) = row.map_err(sql)?;
            let outcome = match outcome {
                Some(o) => Some(
                    TaskOutcome::parse(&o)
                        .ok_or_else(|| StoreError::Corrupt(format!("run {run_id}: unknown task outcome {o}")))?,
                ),
                None => None,
            };
            tasks.push(TaskFact {
                task_key,
                approval,
                actionable_at: actionable.map(from_ms).transpose()?,
                ended_at: ended.map(from_ms).transpose()?,
                outcome,
                due_at: due.map(from_ms).transpose()?,
            });
        }
    }
    let mut controls = Vec::new();
    {
        let mut stmt = c
            .prepare_cached("SELECT control_id, passed FROM metric_controls WHERE run_no = ?1 ORDER BY seq")
            .map_err(sql)?;
        let rows =
            stmt.query_map([run_no], |r| Ok(ControlFact { control_id: r.get(0)?, passed: r.get(1)? })).map_err(sql)?;
        for row in rows {
            controls.push(row.map_err(sql)?);
        }
    }
    Ok(Some(RunFacts {
        run_id: run_id.to_string(),
        template_key,
        version,
        status: status(&st)?,
        started_at: from_ms(started)?,
        finished_at: finished.map(from_ms).transpose()?,
        rejections,
        event_count: event_count as u64,
        on_time,
        tasks,
        controls,
    }))
}

impl MetricsStore for SqliteStore {
    fn run_facts(&self, run_id: &str) -> StoreResult<Option<RunFacts>> {
        self.with_conn(|c| match run_no_of(c, run_id)? {
            Some(run_no) => read_facts(c, run_no, run_id),
            None => Ok(None),
        })
    }

    fn backfill_facts(&self, facts: &[RunFacts]) -> StoreResult<usize> {
        self.write(|tx| {
            let mut written = 0;
            let mut statements = Prepared::default();
            let mut rollups = rollups::Batch::default();
            for f in facts {
                let current: Option<(i64, i64)> = tx
                    .prepare_cached(
                        "SELECT r.run_no, r.version FROM runs r WHERE r.id = ?1
                         AND NOT EXISTS (SELECT 1 FROM metric_runs m WHERE m.run_no = r.run_no)",
                    )
                    .map_err(sql)?
                    .query_row([&f.run_id], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()
                    .map_err(sql)?;
                if let Some((run_no, version)) = current
                    && version == f.event_count as i64
                {
                    write_facts(tx, &mut statements, &mut rollups, run_no, true, f, None)?;
                    written += 1;
                }
            }
            rollups.flush(tx)?;
            Ok(written)
        })
    }

    fn runs_without_facts(&self, limit: u32) -> StoreResult<Vec<String>> {
        self.with_conn(|c| {
            // Counting is cheap; the anti-join runs only when something is missing.
            let (runs, facts): (i64, i64) = c
                .query_row("SELECT (SELECT COUNT(*) FROM runs), (SELECT COUNT(*) FROM metric_runs)", [], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .map_err(sql)?;
            if runs == facts {
                return Ok(Vec::new());
            }
            let mut stmt = c
                .prepare_cached(
                    "SELECT r.id FROM runs r WHERE NOT EXISTS (SELECT 1 FROM metric_runs m WHERE m.run_no = r.run_no)
                     ORDER BY r.id LIMIT ?1",
                )
                .map_err(sql)?;
            let rows = stmt.query_map([limit], |r| r.get(0)).map_err(sql)?;
            rows.map(|r| r.map_err(sql)).collect()
        })
    }

    fn run_counts(&self, scope: &MetricScope) -> StoreResult<Vec<RunCountRow>> {
        self.with_conn(|c| split_read(c, scope, raw_run_counts, day_run_counts, merge_run_counts))
    }

    fn cycle_times(&self, scope: &MetricScope) -> StoreResult<Vec<CycleTimes>> {
        self.with_conn(|c| split_read(c, scope, raw_cycle_times, day_cycle_times, merge_cycle_times))
    }

    fn completion_days(&self, scope: &MetricScope) -> StoreResult<Vec<CompletionDay>> {
        self.with_conn(|c| split_read(c, scope, raw_completion_days, day_completion_days, merge_completion_days))
    }

    fn task_waits(&self, scope: &MetricScope) -> StoreResult<Vec<TaskWaits>> {
        self.with_conn(|c| split_read(c, scope, raw_task_waits, day_task_waits, merge_task_waits))
    }

    fn control_counts(&self, scope: &MetricScope) -> StoreResult<Vec<ControlCountRow>> {
        self.with_conn(|c| split_read(c, scope, raw_control_counts, day_control_counts, merge_control_counts))
    }

    fn overdue_counts(&self, scope: &MetricScope, now: Timestamp) -> StoreResult<Vec<OverdueCountRow>> {
        let unbounded = MetricScope { from: None, to: None, ..scope.clone() };
        let (clause, mut values) =
            scope_filter(&unbounded, "due_at", vec!["ended_at IS NULL".into(), "due_at IS NOT NULL".into()]);
        values.push(Value::Integer(ms(now)));
        let clause = format!("{clause} AND due_at < ?{}", values.len());
        self.with_conn(|c| {
            let mut stmt = c
                .prepare_cached(&format!(
                    "SELECT template_key, version, COUNT(*), COUNT(DISTINCT run_no) FROM metric_tasks {clause}
                     GROUP BY template_key, version ORDER BY template_key, version"
                ))
                .map_err(sql)?;
            let rows = stmt
                .query_map(params_from_iter(values), |r| {
                    Ok(OverdueCountRow {
                        template_key: r.get(0)?,
                        version: r.get(1)?,
                        tasks: r.get::<_, i64>(2)? as u64,
                        runs: r.get::<_, i64>(3)? as u64,
                    })
                })
                .map_err(sql)?;
            rows.map(|r| r.map_err(sql)).collect()
        })
    }
}

/// Runs started in scope counted from the fact rows.
fn raw_run_counts(c: &Connection, scope: &MetricScope) -> StoreResult<Vec<RunCountRow>> {
    let (clause, values) = scope_filter(scope, "started_at", Vec::new());
    let query = format!(
        "SELECT template_key, version, status, COUNT(*), COALESCE(SUM(rejections), 0), COALESCE(SUM(on_time = 1), 0), COUNT(on_time)
         FROM metric_runs {clause} GROUP BY template_key, version, status"
    );
    run_count_rows(c, &query, values)
}

/// Runs a query whose rows are (template, version, status, runs, rejections, on time, judged).
fn run_count_rows(c: &Connection, query: &str, values: Vec<Value>) -> StoreResult<Vec<RunCountRow>> {
    let mut stmt = c.prepare_cached(query).map_err(sql)?;
    let rows = stmt
        .query_map(params_from_iter(values), |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, u32>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, i64>(4)?,
                r.get::<_, i64>(5)?,
                r.get::<_, i64>(6)?,
            ))
        })
        .map_err(sql)?;
    let mut out = Vec::new();
    for row in rows {
        let (template_key, version, st, runs, rejections, on_time, judged) = row.map_err(sql)?;
        out.push(RunCountRow {
            template_key,
            version,
            status: status(&st)?,
            runs: runs as u64,
            rejections: rejections as u64,
            on_time: on_time as u64,
            judged: judged as u64,
        });
    }
    Ok(out)
}

/// Cycle times of runs started in scope, from the fact rows.
fn raw_cycle_times(c: &Connection, scope: &MetricScope) -> StoreResult<Vec<CycleTimes>> {
    let (clause, values) = scope_filter(scope, "started_at", vec!["status = 'completed'".into()]);
    let mut stmt = c
        .prepare_cached(&format!(
            "SELECT template_key, finished_at - started_at FROM metric_runs {clause} ORDER BY template_key"
        ))
        .map_err(sql)?;
    let mut rows = stmt.query(params_from_iter(values)).map_err(sql)?;
    let mut out: Vec<CycleTimes> = Vec::new();
    while let Some(r) = rows.next().map_err(sql)? {
        let key = r.get_ref(0).map_err(sql)?.as_bytes().map_err(|e| sql(e.into()))?;
        let cycle: i64 = r.get(1).map_err(sql)?;
        match out.last_mut() {
            Some(last) if last.template_key.as_bytes() == key => last.cycle_ms.push(cycle),
            _ => {
                out.push(CycleTimes { template_key: String::from_utf8_lossy(key).into_owned(), cycle_ms: vec![cycle] })
            }
        }
    }
    Ok(out)
}

/// Ended task episodes of runs started in scope, from the fact rows.
fn raw_task_waits(c: &Connection, scope: &MetricScope) -> StoreResult<Vec<TaskWaits>> {
    let (clause, values) = scope_filter(scope, "run_started_at", vec!["ended_at IS NOT NULL".into()]);
    let mut stmt = c
        .prepare_cached(&format!(
            "SELECT task_key, approval, ended_at - actionable_at, due_at IS NOT NULL, ended_at <= due_at
             FROM metric_tasks {clause}"
        ))
        .map_err(sql)?;
    let mut rows = stmt.query(params_from_iter(values)).map_err(sql)?;
    let mut out: Vec<TaskWaits> = Vec::new();
    while let Some(r) = rows.next().map_err(sql)? {
        let key = r.get_ref(0).map_err(sql)?.as_bytes().map_err(|e| sql(e.into()))?;
        let approval: bool = r.get(1).map_err(sql)?;
        // A template has few tasks: a linear search beats hashing each row.
        let i = match out.iter().position(|t| t.approval == approval && t.task_key.as_bytes() == key) {
            Some(i) => i,
            None => {
                out.push(TaskWaits {
                    task_key: String::from_utf8_lossy(key).into_owned(),
                    approval,
                    wait_ms: Vec::new(),
                    with_due: 0,
                    on_time: 0,
                });
                out.len() - 1
            }
        };
        let wait: i64 = r.get(2).map_err(sql)?;
        let with_due: bool = r.get(3).map_err(sql)?;
        let on_time: Option<bool> = r.get(4).map_err(sql)?;
        let t = &mut out[i];
        t.wait_ms.push(wait);
        t.with_due += u64::from(with_due);
        t.on_time += u64::from(on_time == Some(true));
    }
    Ok(out)
}

/// Control outcomes of runs started in scope, from the fact rows.
fn raw_control_counts(c: &Connection, scope: &MetricScope) -> StoreResult<Vec<ControlCountRow>> {
    let (clause, values) = scope_filter(scope, "run_started_at", Vec::new());
    let query = format!(
        "SELECT version, control_id, COUNT(*), SUM(passed) FROM metric_controls {clause}
         GROUP BY version, control_id ORDER BY version, control_id"
    );
    control_count_rows(c, &query, values)
}

/// Runs a query whose rows are (version, control, applied, passed).
fn control_count_rows(c: &Connection, query: &str, values: Vec<Value>) -> StoreResult<Vec<ControlCountRow>> {
    let mut stmt = c.prepare_cached(query).map_err(sql)?;
    let rows = stmt
        .query_map(params_from_iter(values), |r| {
            Ok(ControlCountRow {
                version: r.get(0)?,
                control_id: r.get(1)?,
                applied: r.get::<_, i64>(2)? as u64,
                passed: r.get::<_, i64>(3)? as u64,
            })
        })
        .map_err(sql)?;
    rows.map(|r| r.map_err(sql)).collect()
}

/// Cycle times of runs completed in scope, per day, from the fact rows.
fn raw_completion_days(c: &Connection, scope: &MetricScope) -> StoreResult<Vec<CompletionDay>> {
    let (clause, values) = scope_filter(scope, "finished_at", vec!["status = 'completed'".into()]);
    let mut stmt = c
        .prepare_cached(&format!("SELECT finished_at, finished_at - started_at FROM metric_runs {clause}"))
        .map_err(sql)?;
    let rows =
        stmt.query_map(params_from_iter(values), |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))).map_err(sql)?;
    let mut days: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    for row in rows {
        let (finished, cycle) = row.map_err(sql)?;
        days.entry(rollups::day_of(finished)).or_default().push(cycle);
    }
    days.into_iter()
        .map(|(day, cycle_ms)| Ok(CompletionDay { day: from_ms(day * rollups::DAY_MS)?, cycle_ms }))
        .collect()
}

/// Reads a scope as its whole days from the rollups and its partial days at
/// the ends from the fact rows, and merges the parts.
fn split_read<T>(
    c: &Connection,
    scope: &MetricScope,
    raw: fn(&Connection, &MetricScope) -> StoreResult<Vec<T>>,
    days: fn(&Connection, &MetricScope, DayRange) -> StoreResult<Vec<T>>,
    merge: fn(Vec<T>) -> Vec<T>,
) -> StoreResult<Vec<T>> {
    let split = rollups::split(scope);
    let mut parts = Vec::new();
    for edge in &split.edges {
        parts.extend(raw(c, edge)?);
    }
    if let Some(range) = split.days {
        parts.extend(days(c, scope, range)?);
    }
    Ok(merge(parts))
}

fn day_run_counts(c: &Connection, scope: &MetricScope, days: DayRange) -> StoreResult<Vec<RunCountRow>> {
    let (clause, values) = day_filter(scope, days);
    let query = format!(
        "SELECT template_key, version, status, SUM(runs), SUM(rejections), SUM(on_time), SUM(judged)
         FROM metric_day_runs {clause} GROUP BY template_key, version, status HAVING SUM(runs) > 0"
    );
    run_count_rows(c, &query, values)
}

fn day_cycle_times(c: &Connection, scope: &MetricScope, days: DayRange) -> StoreResult<Vec<CycleTimes>> {
    let (clause, values) = day_filter(scope, days);
    let mut stmt = c
        .prepare_cached(&format!("SELECT template_key, cycle_ms FROM metric_day_cycles {clause} ORDER BY template_key"))
        .map_err(sql)?;
    let mut rows = stmt.query(params_from_iter(values)).map_err(sql)?;
    let mut out: Vec<CycleTimes> = Vec::new();
    while let Some(r) = rows.next().map_err(sql)? {
        let key: &str = r.get_ref(0).map_err(sql)?.as_str().map_err(|e| sql(e.into()))?;
        let list: &str = r.get_ref(1).map_err(sql)?.as_str().map_err(|e| sql(e.into()))?;
        if out.last().is_none_or(|last| last.template_key != key) {
            out.push(CycleTimes { template_key: key.to_string(), cycle_ms: Vec::new() });
        }
        if let Some(last) = out.last_mut() {
            parse_list(list, &mut last.cycle_ms)?;
        }
    }
    Ok(out)
}

fn day_completion_days(c: &Connection, scope: &MetricScope, days: DayRange) -> StoreResult<Vec<CompletionDay>> {
    let (clause, values) = day_filter(scope, days);
    let mut stmt =
        c.prepare_cached(&format!("SELECT day, cycle_ms FROM metric_done_days {clause} ORDER BY day")).map_err(sql)?;
    let mut rows = stmt.query(params_from_iter(values)).map_err(sql)?;
    let mut out: Vec<CompletionDay> = Vec::new();
    while let Some(r) = rows.next().map_err(sql)? {
        let day = from_ms(r.get::<_, i64>(0).map_err(sql)? * rollups::DAY_MS)?;
        let list: &str = r.get_ref(1).map_err(sql)?.as_str().map_err(|e| sql(e.into()))?;
        if out.last().is_none_or(|last| last.day != day) {
            out.push(CompletionDay { day, cycle_ms: Vec::new() });
        }
        if let Some(last) = out.last_mut() {
            parse_list(list, &mut last.cycle_ms)?;
        }
    }
    Ok(out)
}

fn day_task_waits(c: &Connection, scope: &MetricScope, days: DayRange) -> StoreResult<Vec<TaskWaits>> {
    let (clause, values) = day_filter(scope, days);
    let mut stmt = c
        .prepare_cached(&format!(
            "SELECT task_key, approval, with_due, on_time, wait_ms FROM metric_day_waits {clause}"
        ))
        .map_err(sql)?;
    let mut rows = stmt.query(params_from_iter(values)).map_err(sql)?;
    let mut out: Vec<TaskWaits> = Vec::new();
    while let Some(r) = rows.next().map_err(sql)? {
        let key: &str = r.get_ref(0).map_err(sql)?.as_str().map_err(|e| sql(e.into()))?;
        let approval: bool = r.get(1).map_err(sql)?;
        // A template has few tasks: a linear search beats sorting the rows.
        let i = match out.iter().position(|t| t.approval == approval && t.task_key == key) {
            Some(i) => i,
            None => {
                out.push(TaskWaits {
                    task_key: key.to_string(),
                    approval,
                    wait_ms: Vec::new(),
                    with_due: 0,
                    on_time: 0,
                });
                out.len() - 1
            }
        };
        let with_due: i64 = r.get(2).map_err(sql)?;
        let on_time: i64 = r.get(3).map_err(sql)?;
        let list: &str = r.get_ref(4).map_err(sql)?.as_str().map_err(|e| sql(e.into()))?;
        let t = &mut out[i];
        t.with_due += with_due as u64;
        t.on_time += on_time as u64;
        parse_list(list, &mut t.wait_ms)?;
    }
    Ok(out)
}

fn day_control_counts(c: &Connection, scope: &MetricScope, days: DayRange) -> StoreResult<Vec<ControlCountRow>> {
    let (clause, values) = day_filter(scope, days);
    let query = format!(
        "SELECT version, control_id, SUM(applied), SUM(passed) FROM metric_day_controls {clause}
         GROUP BY version, control_id HAVING SUM(applied) > 0 ORDER BY version, control_id"
    );
    control_count_rows(c, &query, values)
}

fn merge_run_counts(rows: Vec<RunCountRow>) -> Vec<RunCountRow> {
    let mut out: Vec<RunCountRow> = Vec::new();
    for r in rows {
        match out.iter_mut().find(|o| (&o.template_key, o.version, o.status) == (&r.template_key, r.version, r.status))
        {
            Some(o) => {
                o.runs += r.runs;
                o.rejections += r.rejections;
                o.on_time += r.on_time;
                o.judged += r.judged;
            }
            None => out.push(r),
        }
    }
    out
}

fn merge_cycle_times(rows: Vec<CycleTimes>) -> Vec<CycleTimes> {
    let mut out: Vec<CycleTimes> = Vec::new();
    for r in rows {
        match out.iter_mut().find(|o| o.template_key == r.template_key) {
            Some(o) => o.cycle_ms.extend(r.cycle_ms),
            None => out.push(r),
        }
    }
    out.sort_by(|a, b| a.template_key.cmp(&b.template_key));
    out
}

fn merge_completion_days(rows: Vec<CompletionDay>) -> Vec<CompletionDay> {
    let mut days: BTreeMap<Timestamp, Vec<i64>> = BTreeMap::new();
    for r in rows {
        days.entry(r.day).or_default().extend(r.cycle_ms);
    }
    days.into_iter().map(|(day, cycle_ms)| CompletionDay { day, cycle_ms }).collect()
}

fn merge_task_waits(rows: Vec<TaskWaits>) -> Vec<TaskWaits> {
    let mut out: Vec<TaskWaits> = Vec::new();
    for r in rows {
        match out.iter_mut().find(|o| o.task_key == r.task_key && o.approval == r.approval) {
            Some(o) => {
                o.wait_ms.extend(r.wait_ms);
                o.with_due += r.with_due;
                o.on_time += r.on_time;
            }
            None => out.push(r),
        }
    }
    out
}

fn merge_control_counts(rows: Vec<ControlCountRow>) -> Vec<ControlCountRow> {
    let mut out: Vec<ControlCountRow> = Vec::new();
    for r in rows {
        match out.iter_mut().find(|o| o.version == r.version && o.control_id == r.control_id) {
            Some(o) => {
                o.applied += r.applied;
                o.passed += r.passed;
            }
            None => out.push(r),
        }
    }
    out.sort_by(|a, b| (a.version, &a.control_id).cmp(&(b.version, &b.control_id)));
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use proptest::prelude::*;
    use proptest::strategy::ValueTree;

    use super::*;
    use crate::rollups::DAY_MS;

    const HOUR_MS: i64 = 3_600_000;
    /// 2026-03-02T00:00:00Z, a midnight.
    const T0_MS: i64 = 1_772_409_600_000;

    fn at(ms: i64) -> Timestamp {
        Timestamp::from_millisecond(ms).unwrap()
    }

    /// One change to a run's facts, as commits make them.
    #[derive(Debug, Clone)]
    enum Change {
        Open {
            task: u8,
            approval: bool,
            actionable: bool,
        },
        End {
            which: u8,
            wait_h: u8,
            due: Option<bool>,
            outcome: u8,
        },
        Drop {
            which: u8,
        },
        Reject,
        Complete {
            cycle_h: u8,
            on_time: bool,
            controls: Vec<(u8, bool)>,
        },
        Cancel,
        /// The stored facts were stale: a replay moved an ended episode's start.
        Restate {
            which: u8,
            wait_h: u8,
        },
    }

    fn change() -> impl Strategy<Value = Change> {
        prop_oneof![
            3 => (0u8..3, any::<bool>(), any::<bool>())
                .prop_map(|(task, approval, actionable)| Change::Open { task, approval, actionable }),
            3 => (any::<u8>(), 0u8..60, proptest::option::of(any::<bool>()), 0u8..3)
                .prop_map(|(which, wait_h, due, outcome)| Change::End { which, wait_h, due, outcome }),
            1 => any::<u8>().prop_map(|which| Change::Drop { which }),
            1 => Just(Change::Reject),
            1 => (0u8..200, any::<bool>(), proptest::collection::vec((0u8..3, any::<bool>()), 0..3))
                .prop_map(|(cycle_h, on_time, controls)| Change::Complete { cycle_h, on_time, controls }),
            1 => Just(Change::Cancel),
            1 => (any::<u8>(), 0u8..60).prop_map(|(which, wait_h)| Change::Restate { which, wait_h }),
        ]
    }

    /// A run's first facts: which template version it belongs to and when it
    /// started (ms after T0), often on or a millisecond before an hour, so on
    /// the bounds of the periods read.
    fn run_start() -> impl Strategy<Value = (bool, u32, i64)> {
        (any::<bool>(), 1u32..3, hour(), prop_oneof![Just(0i64), Just(-1), Just(1_234)])
            .prop_map(|(t, v, h, offset_ms)| (t, v, (h * HOUR_MS + offset_ms).max(0)))
    }

    /// A period bound in hours after T0: often a midnight, often not.
    fn hour() -> impl Strategy<Value = i64> {
        prop_oneof![(0i64..6).prop_map(|d| d * 24), 0i64..(5 * 24)]
    }

    fn next(f: &RunFacts, change: &Change) -> RunFacts {
        let mut f = f.clone();
        if f.status != RunStatus::Open {
            return f;
        }
        let started = ms(f.started_at);
        let open: Vec<usize> = (0..f.tasks.len()).filter(|&i| f.tasks[i].ended_at.is_none()).collect();
        let ended: Vec<usize> = (0..f.tasks.len()).filter(|&i| f.tasks[i].ended_at.is_some()).collect();
        match change {
            Change::Open { task, approval, actionable } => f.tasks.push(TaskFact {
                task_key: format!("task-{task}"),
                approval: *approval,
                actionable_at: actionable.then(|| at(started + HOUR_MS)),
                ended_at: None,
                outcome: None,
                due_at: None,
            }),
            Change::End { which, wait_h, due, outcome } => {
                if let Some(&i) = open.get(usize::from(*which) % open.len().max(1)) {
                    let t = &mut f.tasks[i];
                    let start = t.actionable_at.map_or(started + 2 * HOUR_MS, ms);
                    let end = start + i64::from(*wait_h) * HOUR_MS + 17;
                    t.actionable_at = Some(at(start));
                    t.ended_at = Some(at(end));
                    t.due_at = due.map(|met| at(if met { end + 1 } else { end - 1 }));
                    t.outcome = Some(
                        [TaskOutcome::Completed, TaskOutcome::Approved, TaskOutcome::Rejected][usize::from(*outcome)],
                    );
                }
            }
            Change::Drop { which } => {
                if let Some(&i) = open.get(usize::from(*which) % open.len().max(1)) {
                    f.tasks.remove(i);
                }
            }
            Change::Reject => f.rejections += 1,
            Change::Complete { cycle_h, on_time, controls } => {
                f.status = RunStatus::Completed;
                f.finished_at = Some(at(started + i64::from(*cycle_h) * HOUR_MS + 5));
                f.on_time = Some(*on_time);
                f.tasks.retain(|t| t.ended_at.is_some());
                f.controls = controls
                    .iter()
                    .map(|(id, passed)| ControlFact { control_id: format!("C-{id}"), passed: *passed })
                    .collect();
            }
            Change::Cancel => {
                f.status = RunStatus::Cancelled;
                f.finished_at = Some(at(started + 3 * HOUR_MS));
                f.tasks.retain(|t| t.ended_at.is_some());
            }
            Change::Restate { which, wait_h } => {
                if let Some(&i) = ended.get(usize::from(*which) % ended.len().max(1)) {
                    let t = &mut f.tasks[i];
                    let end = ms(t.ended_at.unwrap());
                    t.actionable_at = Some(at(end - i64::from(*wait_h) * HOUR_MS));
                }
            }
        }
        f.event_count += 1;
        f
    }

    /// Rows in a comparable order, with every list of durations sorted.
    fn normal_counts(mut rows: Vec<RunCountRow>) -> Vec<RunCountRow> {
        rows.retain(|r| r.runs > 0);
        rows.sort_by(|a, b| {
            (&a.template_key, a.version, a.status.as_str()).cmp(&(&b.template_key, b.version, b.status.as_str()))
        });
        rows
    }

    fn normal_cycles(rows: Vec<CycleTimes>) -> Vec<(String, Vec<i64>)> {
        let mut out: Vec<(String, Vec<i64>)> = rows.into_iter().map(|c| (c.template_key, c.cycle_ms)).collect();
        out.iter_mut().for_each(|(_, v)| v.sort_unstable());
        out.retain(|(_, v)| !v.is_empty());
        out.sort();
        out
    }

    fn normal_waits(rows: Vec<TaskWaits>) -> Vec<(String, bool, Vec<i64>, u64, u64)> {
        let mut out: Vec<_> = rows
            .into_iter()
            .map(|mut t| {
                t.wait_ms.sort_unstable();
                (t.task_key, t.approval, t.wait_ms, t.with_due, t.on_time)
            })
            .filter(|t| !t.2.is_empty())
            .collect();
        out.sort();
        out
    }

    fn normal_days(rows: Vec<CompletionDay>) -> Vec<(Timestamp, Vec<i64>)> {
        let mut out: Vec<_> = rows
            .into_iter()
            .map(|mut d| {
                d.cycle_ms.sort_unstable();
                (d.day, d.cycle_ms)
            })
            .filter(|d| !d.1.is_empty())
            .collect();
        out.sort();
        out
    }

    fn normal_controls(mut rows: Vec<ControlCountRow>) -> Vec<ControlCountRow> {
        rows.retain(|r| r.applied > 0);
        rows.sort_by(|a, b| (a.version, &a.control_id).cmp(&(b.version, &b.control_id)));
        rows
    }

    /// Every read of the scope through the rollups equals the read of the fact rows.
    fn assert_reads_agree(store: &SqliteStore, scope: &MetricScope) -> Result<(), TestCaseError> {
        store
            .with_conn(|c| {
                let raw = (
                    normal_days(raw_completion_days(c, scope)?),
                    normal_counts(raw_run_counts(c, scope)?),
                    normal_cycles(raw_cycle_times(c, scope)?),
                    normal_waits(raw_task_waits(c, scope)?),
                    normal_controls(raw_control_counts(c, scope)?),
                );
                let split = (
                    normal_days(split_read(c, scope, raw_completion_days, day_completion_days, merge_completion_days)?),
                    normal_counts(split_read(c, scope, raw_run_counts, day_run_counts, merge_run_counts)?),
                    normal_cycles(split_read(c, scope, raw_cycle_times, day_cycle_times, merge_cycle_times)?),
                    normal_waits(split_read(c, scope, raw_task_waits, day_task_waits, merge_task_waits)?),
                    normal_controls(split_read(
                        c,
                        scope,
                        raw_control_counts,
                        day_control_counts,
                        merge_control_counts,
                    )?),
                );
                Ok((raw, split))
            })
            .map_err(|e| TestCaseError::fail(e.to_string()))
            .and_then(|(raw, split)| {
                prop_assert_eq!(raw, split, "scope {:?}", scope);
                Ok(())
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        /// Commits that move runs' facts keep the day rollups equal to the
        /// fact rows, over any period, whole days or not.
        #[test]
        fn day_rollups_equal_the_fact_rows(
            runs in proptest::collection::vec(
                (run_start(), proptest::collection::vec((change(), any::<bool>()), 0..14), any::<bool>()),
                1..7,
            ),
            bounds in proptest::collection::vec((proptest::option::of(hour()), proptest::option::of(hour()), 0u8..3), 4),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let store = SqliteStore::open(dir.path().join("attest.db")).unwrap();
            for (n, ((other_template, version, start_ms), changes, flush_each)) in runs.iter().enumerate() {
                // Facts need no run row here: the rollups are the subject.
                let run_no = n as i64;
                let mut f = RunFacts {
                    run_id: format!("run-{n}"),
                    template_key: if *other_template { "beta".into() } else { "alpha".into() },
                    version: *version,
                    status: RunStatus::Open,
                    started_at: at(T0_MS + start_ms),
                    finished_at: None,
                    rejections: 0,
                    event_count: 1,
                    on_time: None,
                    tasks: Vec::new(),
                    controls: Vec::new(),
                };
                // A group commit moves several runs in one transaction, and its rollups once.
                store
                    .write(|tx| {
                        let mut rollups = rollups::Batch::default();
                        write_facts(tx, &mut Prepared::default(), &mut rollups, run_no, true, &f, None)?;
                        for (c, cached) in changes {
                            let after = next(&f, c);
                            // Without the previous facts, the store reads the stored ones.
                            let previous = cached.then_some(&f);
                            write_facts(tx, &mut Prepared::default(), &mut rollups, run_no, false, &after, previous)?;
                            f = after;
                            if *flush_each {
                                rollups.flush(tx)?;
                            }
                        }
                        rollups.flush(tx)
                    })
                    .unwrap();
            }
            for (from_h, to_h, which) in bounds {
                let (template, version) = match which {
                    0 => (None, None),
                    1 => (Some("alpha".to_string()), None),
                    _ => (Some("alpha".to_string()), Some(1)),
                };
                let from = from_h.map(|h| at(T0_MS + h * HOUR_MS));
                let to = to_h.map(|h| at(T0_MS + h * HOUR_MS));
                assert_reads_agree(&store, &MetricScope { template, version, from, to })?;
            }
            assert_reads_agree(&store, &MetricScope::default())?;
            assert_reads_agree(&store, &MetricScope { from: Some(at(T0_MS + DAY_MS)), to: Some(at(T0_MS + 3 * DAY_MS)), ..MetricScope::default() })?;
        }
    }

    #[test]
    fn a_period_splits_into_whole_days_and_partial_edges() {
        let day = |d: i64| Some(at(T0_MS + d * DAY_MS));
        let hours = |h: i64| Some(at(T0_MS + h * HOUR_MS));
        let t0_day = T0_MS / DAY_MS;
        let scope = |from, to| MetricScope { template: Some("t".into()), version: None, from, to };

        let whole = rollups::split(&scope(day(1), day(3)));
        assert_eq!(whole.days, Some(DayRange { first: Some(t0_day + 1), end: Some(t0_day + 3) }));
        assert!(whole.edges.is_empty());

        let ragged = rollups::split(&scope(hours(30), hours(80)));
        assert_eq!(ragged.days, Some(DayRange { first: Some(t0_day + 2), end: Some(t0_day + 3) }));
        assert_eq!(ragged.edges, vec![scope(hours(30), day(2)), scope(day(3), hours(80))]);

        let unbounded = rollups::split(&scope(None, hours(5)));
        assert_eq!(unbounded.days, Some(DayRange { first: None, end: Some(t0_day) }));
        assert_eq!(unbounded.edges, vec![scope(day(0), hours(5))]);

        // Within one day, or across one midnight without a whole day: fact rows only.
        assert_eq!(rollups::split(&scope(hours(2), hours(20))).days, None);
        assert_eq!(rollups::split(&scope(hours(20), hours(40))).edges, vec![scope(hours(20), hours(40))]);
    }

    /// Migration 10 fills the rollups of a data directory whose facts predate them.
    #[test]
    fn the_rollup_migration_fills_rollups_from_stored_facts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("attest.db");
        let store = SqliteStore::open(&path).unwrap();
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        for n in 0..40 {
            let run_no = i64::from(n);
            let start_h = i64::from(n) * 7;
            let mut f = RunFacts {
                run_id: format!("run-{n}"),
                template_key: "alpha".into(),
                version: 1 + (n % 2),
                status: RunStatus::Open,
                started_at: at(T0_MS + start_h * HOUR_MS + 999),
                finished_at: None,
                rejections: 0,
                event_count: 1,
                on_time: None,
                tasks: Vec::new(),
                controls: Vec::new(),
            };
            let changes = proptest::collection::vec(change(), 0..12).new_tree(&mut runner).unwrap().current();
            store
                .write(|tx| {
                    let mut rollups = rollups::Batch::default();
                    write_facts(tx, &mut Prepared::default(), &mut rollups, run_no, true, &f, None)?;
                    for c in &changes {
                        let after = next(&f, c);
                        write_facts(tx, &mut Prepared::default(), &mut rollups, run_no, false, &after, Some(&f))?;
                        f = after;
                    }
                    rollups.flush(tx)
                })
                .unwrap();
        }
        let read = |store: &SqliteStore| {
            store
                .with_conn(|c| {
                    let scope = MetricScope::default();
                    let range = DayRange { first: None, end: None };
                    Ok((
                        normal_days(day_completion_days(c, &scope, range)?),
                        normal_counts(day_run_counts(c, &scope, range)?),
                        normal_cycles(day_cycle_times(c, &scope, range)?),
                        normal_waits(day_task_waits(c, &scope, range)?),
                        normal_controls(day_control_counts(c, &scope, range)?),
                    ))
                })
                .unwrap()
        };
        let kept = read(&store);
        assert!(!kept.0.is_empty() && !kept.2.is_empty(), "the runs left rollups to compare");
        drop(store);
        // The same facts in a database at schema 9: no rollups, facts keyed by
        // run id with their own event count. These facts have no run rows, so
        // migration 12 drops them, after migration 10 has rolled them up.
        let old = dir.path().join("schema-9.db");
        let mut conn = rusqlite::Connection::open(&old).unwrap();
        crate::migrations::migrate_to(&mut conn, 9).unwrap();
        conn.execute("ATTACH DATABASE ?1 AS current", [path.to_str().unwrap()]).unwrap();
        conn.execute_batch(
            "INSERT INTO metric_runs (run_id, template_key, version, status, started_at, finished_at, rejections,
               event_count, on_time)
               SELECT 'run-' || run_no, template_key, version, status, started_at, finished_at, rejections, 0, on_time
               FROM current.metric_runs;
             INSERT INTO metric_tasks (run_id, seq, template_key, version, run_started_at, task_key, approval, outcome,
               actionable_at, ended_at, due_at)
               SELECT 'run-' || run_no, seq, template_key, version, run_started_at, task_key, approval, outcome,
                 actionable_at, ended_at, due_at
               FROM current.metric_tasks;
             INSERT INTO metric_controls (run_id, seq, control_id, template_key, version, run_started_at, passed)
               SELECT 'run-' || run_no, seq, control_id, template_key, version, run_started_at, passed
               FROM current.metric_controls;
             DETACH DATABASE current;",
        )
        .unwrap();
        drop(conn);
        let reopened = SqliteStore::open(&old).unwrap();
        assert_eq!(read(&reopened), kept);
    }

    /// A partial day at a period's edge is read through an index by time, not
    /// by scanning the template's fact rows.
    #[test]
    fn edge_reads_use_the_time_indexes() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path().join("attest.db")).unwrap();
        let edge = MetricScope {
            template: Some("alpha".into()),
            version: None,
            from: Some(at(T0_MS + 5 * HOUR_MS)),
            to: Some(at(T0_MS + DAY_MS)),
        };
        let plans = [
            ("metric_runs", "started_at", vec![], "metric_runs_by_start"),
            ("metric_runs", "finished_at", vec!["status = 'completed'".to_string()], "metric_runs_by_completion"),
            ("metric_tasks", "run_started_at", vec!["ended_at IS NOT NULL".to_string()], "metric_tasks_ended"),
            ("metric_controls", "run_started_at", vec![], "metric_controls_by_start"),
        ];
        for (table, column, conditions, index) in plans {
            let (clause, values) = scope_filter(&edge, column, conditions);
            let plan: Vec<String> = store
                .with_conn(|c| {
                    let mut stmt =
                        c.prepare(&format!("EXPLAIN QUERY PLAN SELECT * FROM {table} {clause}")).map_err(sql)?;
                    let rows = stmt.query_map(params_from_iter(values), |r| r.get::<_, String>(3)).map_err(sql)?;
                    rows.map(|r| r.map_err(sql)).collect()
                })
                .unwrap();
            assert!(plan.iter().any(|p| p.contains(index)), "{table} by {column}: {plan:?}");
        }
    }
}

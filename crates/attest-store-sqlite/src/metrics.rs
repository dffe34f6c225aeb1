//! [`MetricsStore`] for SQLite: the metric fact tables (see `migrations.rs`)
//! and the indexed reads that aggregate them. The facts of a run are written
//! by [`write_facts`] inside the transaction that appends its events.

use attest_engine::RunStatus;
use attest_store::{
    ControlCountRow, ControlFact, CycleTimes, MetricScope, MetricsStore, OverdueCountRow, RunCountRow, RunFacts,
    StoreError, StoreResult, TaskFact, TaskOutcome, TaskWaits,
};
use jiff::Timestamp;
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Transaction, params, params_from_iter};

use crate::{SqliteStore, from_ms, ms, sql};

fn status(s: &str) -> StoreResult<RunStatus> {
    match s {
        "open" => Ok(RunStatus::Open),
        "completed" => Ok(RunStatus::Completed),
        "cancelled" => Ok(RunStatus::Cancelled),
        other => Err(StoreError::Corrupt(format!("metric facts hold unknown run status {other}"))),
    }
}

/// Writes a run's facts. With the facts as stored before (`previous`), only
/// the rows that differ are written, and nothing is read back; without them,
/// ended task episodes (which never change) past the stored ones are added
/// and open episodes are replaced.
pub(crate) fn write_facts(
    tx: &Transaction<'_>,
    new_run: bool,
    f: &RunFacts,
    previous: Option<&RunFacts>,
) -> StoreResult<()> {
    if let (false, Some(p)) = (new_run, previous) {
        return write_fact_changes(tx, f, p);
    }
    upsert_run_fact(tx, f)?;
    let stored_ended: i64 = if new_run {
        0
    } else {
        tx.prepare_cached("DELETE FROM metric_tasks WHERE run_id = ?1 AND ended_at IS NULL")
            .map_err(sql)?
            .execute([&f.run_id])
            .map_err(sql)?;
        tx.prepare_cached("DELETE FROM metric_controls WHERE run_id = ?1")
            .map_err(sql)?
            .execute([&f.run_id])
            .map_err(sql)?;
        tx.prepare_cached("SELECT COUNT(*) FROM metric_tasks WHERE run_id = ?1")
            .map_err(sql)?
            .query_row([&f.run_id], |r| r.get(0))
            .map_err(sql)?
    };
    for (seq, t) in f.tasks.iter().enumerate().skip(stored_ended as usize) {
        upsert_task_fact(tx, f, seq, t)?;
    }
    insert_control_facts(tx, f)
}

/// Writes what changed between two versions of a run's facts. Most commands
/// change one task episode; rewriting the run's row moves it in two wide
/// indexes, so a row whose indexed columns did not change only gets its
/// event count.
fn write_fact_changes(tx: &Transaction<'_>, f: &RunFacts, p: &RunFacts) -> StoreResult<()> {
    let run_indexed_same = (&p.template_key, p.version, p.status, p.started_at, p.finished_at, p.rejections, p.on_time)
        == (&f.template_key, f.version, f.status, f.started_at, f.finished_at, f.rejections, f.on_time);
    if run_indexed_same {
        if p.event_count != f.event_count {
            tx.prepare_cached("UPDATE metric_runs SET event_count = ?2 WHERE run_id = ?1")
                .map_err(sql)?
                .execute(params![f.run_id, f.event_count as i64])
                .map_err(sql)?;
        }
    } else {
        upsert_run_fact(tx, f)?;
    }
    for (seq, t) in f.tasks.iter().enumerate() {
        if p.tasks.get(seq) != Some(t) {
            upsert_task_fact(tx, f, seq, t)?;
        }
    }
    if p.tasks.len() > f.tasks.len() {
        tx.prepare_cached("DELETE FROM metric_tasks WHERE run_id = ?1 AND seq >= ?2")
            .map_err(sql)?
            .execute(params![f.run_id, f.tasks.len() as i64])
            .map_err(sql)?;
    }
    if p.controls != f.controls {
        tx.prepare_cached("DELETE FROM metric_controls WHERE run_id = ?1")
            .map_err(sql)?
            .execute([&f.run_id])
            .map_err(sql)?;
        insert_control_facts(tx, f)?;
    }
    Ok(())
}

fn upsert_run_fact(tx: &Transaction<'_>, f: &RunFacts) -> StoreResult<()> {
    tx.prepare_cached(
        "INSERT INTO metric_runs (run_id, template_key, version, status, started_at, finished_at, rejections, event_count, on_time)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
         ON CONFLICT (run_id) DO UPDATE SET status = excluded.status, finished_at = excluded.finished_at,
           rejections = excluded.rejections, event_count = excluded.event_count, on_time = excluded.on_time",
    )
    .map_err(sql)?
    .execute(params![
        f.run_id,
        f.template_key,
        f.version,
        f.status.as_str(),
        ms(f.started_at),
        f.finished_at.map(ms),
        f.rejections,
        f.event_count as i64,
        f.on_time
    ])
    .map_err(sql)?;
    Ok(())
}

fn upsert_task_fact(tx: &Transaction<'_>, f: &RunFacts, seq: usize, t: &TaskFact) -> StoreResult<()> {
    tx.prepare_cached(
        "INSERT INTO metric_tasks (run_id, seq, template_key, version, run_started_at, task_key, approval, outcome,
           actionable_at, ended_at, due_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
         ON CONFLICT (run_id, seq) DO UPDATE SET task_key = excluded.task_key, approval = excluded.approval,
           outcome = excluded.outcome, actionable_at = excluded.actionable_at, ended_at = excluded.ended_at,
           due_at = excluded.due_at",
    )
    .map_err(sql)?
    .execute(params![
        f.run_id,
        seq as i64,
        f.template_key,
        f.version,
        ms(f.started_at),
        t.task_key,
        t.approval,
        t.outcome.map(TaskOutcome::as_str),
        t.actionable_at.map(ms),
        t.ended_at.map(ms),
        t.due_at.map(ms)
    ])
    .map_err(sql)?;
    Ok(())
}

fn insert_control_facts(tx: &Transaction<'_>, f: &RunFacts) -> StoreResult<()> {
    for (seq, c) in f.controls.iter().enumerate() {
        tx.prepare_cached(
            "INSERT INTO metric_controls (run_id, seq, control_id, template_key, version, run_started_at, passed)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )
        .map_err(sql)?
        .execute(params![f.run_id, seq as i64, c.control_id, f.template_key, f.version, ms(f.started_at), c.passed])
        .map_err(sql)?;
    }
    Ok(())
}

/// A WHERE clause over the scope's template, version and a time column.
fn scope_filter(scope: &MetricScope, time_column: &str, mut conditions: Vec<String>) -> (String, Vec<Value>) {
    let mut values = Vec::new();
    if let Some(t) = &scope.template {
        values.push(Value::Text(t.clone()));
        conditions.push(format!("template_key = ?{}", values.len()));
    }
    if let Some(v) = scope.version {
        values.push(Value::Integer(i64::from(v)));
        conditions.push(format!("version = ?{}", values.len()));
    }
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

fn read_facts(c: &Connection, run_id: &str) -> StoreResult<Option<RunFacts>> {
    type RawRun = (String, u32, String, i64, Option<i64>, u32, i64, Option<bool>);
    let raw: Option<RawRun> = c
        .prepare_cached(
            "SELECT template_key, version, status, started_at, finished_at, rejections, event_count, on_time
             FROM metric_runs WHERE run_id = ?1",
        )
        .map_err(sql)?
        .query_row([run_id], |r| {
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
                 FROM metric_tasks WHERE run_id = ?1 ORDER BY seq",
            )
            .map_err(sql)?;
        let rows = stmt
            .query_map([run_id], |r| {
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
            .prepare_cached("SELECT control_id, passed FROM metric_controls WHERE run_id = ?1 ORDER BY seq")
            .map_err(sql)?;
        let rows =
            stmt.query_map([run_id], |r| Ok(ControlFact { control_id: r.get(0)?, passed: r.get(1)? })).map_err(sql)?;
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
        self.with_conn(|c| read_facts(c, run_id))
    }

    fn backfill_facts(&self, facts: &[RunFacts]) -> StoreResult<usize> {
        self.write(|tx| {
            let mut written = 0;
            for f in facts {
                let current: Option<i64> = tx
                    .prepare_cached(
                        "SELECT r.version FROM runs r WHERE r.id = ?1
                         AND NOT EXISTS (SELECT 1 FROM metric_runs m WHERE m.run_id = r.id)",
                    )
                    .map_err(sql)?
                    .query_row([&f.run_id], |r| r.get(0))
                    .optional()
                    .map_err(sql)?;
                if current == Some(f.event_count as i64) {
                    write_facts(tx, true, f, None)?;
                    written += 1;
                }
            }
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
                    "SELECT r.id FROM runs r WHERE NOT EXISTS (SELECT 1 FROM metric_runs m WHERE m.run_id = r.id)
                     ORDER BY r.id LIMIT ?1",
                )
                .map_err(sql)?;
            let rows = stmt.query_map([limit], |r| r.get(0)).map_err(sql)?;
            rows.map(|r| r.map_err(sql)).collect()
        })
    }

    fn run_counts(&self, scope: &MetricScope) -> StoreResult<Vec<RunCountRow>> {
        let (clause, values) = scope_filter(scope, "started_at", Vec::new());
        self.with_conn(|c| {
            let mut stmt = c
                .prepare_cached(&format!(
                    "SELECT template_key, version, status, COUNT(*), COALESCE(SUM(rejections), 0), COALESCE(SUM(on_time = 1), 0), COUNT(on_time)
                     FROM metric_runs {clause} GROUP BY template_key, version, status"
                ))
                .map_err(sql)?;
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
        })
    }

    fn cycle_times(&self, scope: &MetricScope) -> StoreResult<Vec<CycleTimes>> {
        let (clause, values) = scope_filter(scope, "started_at", vec!["status = 'completed'".into()]);
        self.with_conn(|c| {
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
                    _ => out.push(CycleTimes {
                        template_key: String::from_utf8_lossy(key).into_owned(),
                        cycle_ms: vec![cycle],
                    }),
                }
            }
            Ok(out)
        })
    }

    fn completions(&self, scope: &MetricScope) -> StoreResult<Vec<(Timestamp, Timestamp)>> {
        let (clause, values) = scope_filter(scope, "finished_at", vec!["status = 'completed'".into()]);
        self.with_conn(|c| {
            let mut stmt =
                c.prepare_cached(&format!("SELECT started_at, finished_at FROM metric_runs {clause}")).map_err(sql)?;
            let rows = stmt
                .query_map(params_from_iter(values), |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))
                .map_err(sql)?;
            let mut out = Vec::new();
            for row in rows {
                let (s, f) = row.map_err(sql)?;
                out.push((from_ms(s)?, from_ms(f)?));
            }
            Ok(out)
        })
    }

    fn task_waits(&self, scope: &MetricScope) -> StoreResult<Vec<TaskWaits>> {
        let (clause, values) = scope_filter(scope, "run_started_at", vec!["ended_at IS NOT NULL".into()]);
        self.with_conn(|c| {
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
        })
    }

    fn control_counts(&self, scope: &MetricScope) -> StoreResult<Vec<ControlCountRow>> {
        let (clause, values) = scope_filter(scope, "run_started_at", Vec::new());
        self.with_conn(|c| {
            let mut stmt = c
                .prepare_cached(&format!(
                    "SELECT version, control_id, COUNT(*), SUM(passed) FROM metric_controls {clause}
                     GROUP BY version, control_id ORDER BY version, control_id"
                ))
                .map_err(sql)?;
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
        })
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
                    "SELECT template_key, version, COUNT(*), COUNT(DISTINCT run_id) FROM metric_tasks {clause}
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

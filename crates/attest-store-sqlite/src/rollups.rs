//! Per-day rollups of the metric facts: for each template version and UTC
//! day runs started on, the run counts per status, the cycle times of the
//! completed runs, the waits of the ended task episodes per task, and the
//! control outcomes; and the cycle times again by the UTC day runs completed
//! on, for the weekly trend. They are changed in the transaction that changes the
//! facts, by the difference between the facts before and after a commit, so a
//! dashboard reads one row per day and task instead of one per run and episode.
//!
//! A period whose bounds are not midnights UTC reads its partial first and
//! last days from the fact rows (`metrics.rs`), and the whole days between
//! from these rows. Migration 10 fills them from the facts already stored. Lists of durations are kept exactly (decimal
//! milliseconds, comma-separated), so medians and percentiles stay exact.

use attest_engine::RunStatus;
use attest_store::{MetricScope, RunFacts, StoreError, StoreResult, TaskFact};
use rusqlite::types::Value;
use std::collections::BTreeMap;

use rusqlite::{Transaction, params};

use crate::{ms, sql};

pub(crate) const DAY_MS: i64 = 86_400_000;
/// Durations one rollup row lists before the next row for the same day and
/// task is started, so adding one rewrites a bounded text.
const CHUNK_VALUES: i64 = 256;

/// The UTC day an instant (in ms) falls on, counted from 1970-01-01.
pub(crate) fn day_of(ms: i64) -> i64 {
    ms.div_euclid(DAY_MS)
}

/// Whole days `[first, end)` of a scope (`None`: unbounded on that side).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DayRange {
    pub first: Option<i64>,
    pub end: Option<i64>,
}

/// A scope cut into the whole days read from the rollups and the partial days
/// at its ends, read from the fact rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Split {
    pub days: Option<DayRange>,
    pub edges: Vec<MetricScope>,
}

/// Cuts a scope by a time column that the rollups key by UTC day.
pub(crate) fn split(scope: &MetricScope) -> Split {
    let from = scope.from.map(ms);
    let to = scope.to.map(ms);
    // The first whole day starts at or after `from`; the last ends at or before `to`.
    let first = from.map(|f| day_of(f) + i64::from(f.rem_euclid(DAY_MS) != 0));
    let end = to.map(day_of);
    if let (Some(first), Some(end)) = (first, end)
        && first >= end
    {
        // Less than a whole day: every fact row of it is read.
        return Split { days: None, edges: vec![scope.clone()] };
    }
    let mut edges = Vec::new();
    if let (Some(f), Some(first)) = (from, first)
        && f != first * DAY_MS
    {
        edges.push(MetricScope { to: instant(first * DAY_MS), ..scope.clone() });
    }
    if let (Some(t), Some(end)) = (to, end)
        && t != end * DAY_MS
    {
        edges.push(MetricScope { from: instant(end * DAY_MS), ..scope.clone() });
    }
    Split { days: Some(DayRange { first, end }), edges }
}

fn instant(ms: i64) -> Option<jiff::Timestamp> {
    jiff::Timestamp::from_millisecond(ms).ok()
}

/// Conditions on the scope's template and version, numbered after `values`.
pub(crate) fn version_conditions(scope: &MetricScope, conditions: &mut Vec<String>, values: &mut Vec<Value>) {
    if let Some(t) = &scope.template {
        values.push(Value::Text(t.clone()));
        conditions.push(format!("template_key = ?{}", values.len()));
    }
    if let Some(v) = scope.version {
        values.push(Value::Integer(i64::from(v)));
        conditions.push(format!("version = ?{}", values.len()));
    }
}

/// A WHERE clause over the scope's template and version and a day range.
pub(crate) fn day_filter(scope: &MetricScope, days: DayRange) -> (String, Vec<Value>) {
    let mut values = Vec::new();
    let mut conditions = Vec::new();
    version_conditions(scope, &mut conditions, &mut values);
    if let Some(first) = days.first {
        values.push(Value::Integer(first));
        conditions.push(format!("day >= ?{}", values.len()));
    }
    if let Some(end) = days.end {
        values.push(Value::Integer(end));
        conditions.push(format!("day < ?{}", values.len()));
    }
    let clause = if conditions.is_empty() { String::new() } else { format!("WHERE {}", conditions.join(" AND ")) };
    (clause, values)
}

/// Parses a comma-separated list of milliseconds into `out`.
pub(crate) fn parse_list(text: &str, out: &mut Vec<i64>) -> StoreResult<()> {
    if text.is_empty() {
        return Ok(());
    }
    for item in text.split(',') {
        out.push(
            item.parse().map_err(|_| StoreError::Corrupt(format!("metric rollup holds a bad duration '{item}'")))?,
        );
    }
    Ok(())
}

/// What a run adds to its day's run counts.
fn run_part(f: &RunFacts) -> (RunStatus, u32, Option<bool>) {
    (f.status, f.rejections, f.on_time)
}

/// A completed run's cycle time in ms, and the day it completed on.
fn cycle(f: &RunFacts) -> Option<(i64, i64)> {
    match (f.status, f.finished_at) {
        (RunStatus::Completed, Some(done)) => Some((ms(done) - ms(f.started_at), day_of(ms(done)))),
        _ => None,
    }
}

/// A task's rollup row: template, version, day, task, approval.
type WaitKey = (String, u32, i64, String, bool);

/// Waits to list, how many had a due date, and how many met it.
type PendingWaits = (Vec<i64>, i64, i64);

/// Rollup changes of one write transaction, summed per rollup row and
/// written once at its end ([`Batch::flush`]): the runs of a group commit
/// mostly start and end on the same days, so they move each day's rows once
/// instead of once per run.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    /// (template, version, day, status) to (runs, rejections, on time, judged).
    runs: BTreeMap<(String, u32, i64, &'static str), [i64; 4]>,
    /// (table, template, version, day) to cycle times to list.
    cycles: BTreeMap<(&'static str, String, u32, i64), Vec<i64>>,
    waits: BTreeMap<WaitKey, PendingWaits>,
    /// (template, version, day, control) to (applied, passed).
    controls: BTreeMap<(String, u32, i64, String), [i64; 2]>,
}

impl Batch {
    /// Adds the move of the rollups from a run's facts as stored (`before`,
    /// `None` when it had none) to its new facts.
    pub(crate) fn apply(
        &mut self,
        tx: &Transaction<'_>,
        before: Option<&RunFacts>,
        after: &RunFacts,
    ) -> StoreResult<()> {
        // The rows a run counts in are keyed by what never changes for it.
        if let Some(b) = before
            && (&b.run_id, &b.template_key, b.version, b.started_at)
                != (&after.run_id, &after.template_key, after.version, after.started_at)
        {
            return Err(StoreError::Corrupt(format!(
                "the stored metric facts of run {} name another run, template version or start",
                after.run_id
            )));
        }
        let day = day_of(ms(after.started_at));
        if before.map(run_part) != Some(run_part(after)) {
            if let Some(b) = before {
                self.add_run(b, day, -1);
            }
            self.add_run(after, day, 1);
        }

        // A cycle time is listed under the day the run started and the day it completed.
        let (old_cycle, new_cycle) = (before.and_then(cycle), cycle(after));
        if old_cycle != new_cycle {
            if let Some((c, done_day)) = old_cycle {
                // A removal finds the value in the stored rows, so what is pending goes first.
                self.flush(tx)?;
                remove_cycle(tx, STARTED_TABLE, after, day, c)?;
                remove_cycle(tx, COMPLETED_TABLE, after, done_day, c)?;
            }
            if let Some((c, done_day)) = new_cycle {
                for (table, day) in [(STARTED_TABLE, day), (COMPLETED_TABLE, done_day)] {
                    self.cycles.entry((table, after.template_key.clone(), after.version, day)).or_default().push(c);
                }
            }
        }

        // Ended episodes never change and keep their order, so walking both lists
        // in step finds the new ones in one pass. Were the stored facts stale, an
        // episode may be removed and added back, which leaves the rollups right.
        let mut old_ended = before.into_iter().flat_map(|b| b.tasks.iter()).filter(|t| t.ended_at.is_some()).peekable();
        let mut added = Vec::new();
        for t in after.tasks.iter().filter(|t| t.ended_at.is_some()) {
            if old_ended.peek() == Some(&t) {
                old_ended.next();
            } else {
                added.push(t);
            }
        }
        let gone: Vec<&TaskFact> = old_ended.collect();
        if !gone.is_empty() {
            self.flush(tx)?;
        }
        for t in gone {
            remove_wait(tx, after, day, t)?;
        }
        for t in added {
            let (with_due, on_time) = due_parts(t);
            let entry = self
                .waits
                .entry((after.template_key.clone(), after.version, day, t.task_key.clone(), t.approval))
                .or_default();
            entry.0.push(wait_ms(t)?);
            entry.1 += with_due;
            entry.2 += on_time;
        }

        let old_controls = before.map(|b| b.controls.as_slice()).unwrap_or_default();
        if old_controls != after.controls.as_slice() {
            for c in old_controls {
                self.add_control(after, day, &c.control_id, c.passed, -1);
            }
            for c in &after.controls {
                self.add_control(after, day, &c.control_id, c.passed, 1);
            }
        }
        Ok(())
    }

    fn add_run(&mut self, f: &RunFacts, day: i64, sign: i64) {
        let row = self.runs.entry((f.template_key.clone(), f.version, day, f.status.as_str())).or_default();
        row[0] += sign;
        row[1] += sign * i64::from(f.rejections);
        row[2] += sign * i64::from(f.on_time == Some(true));
        row[3] += sign * i64::from(f.on_time.is_some());
    }

    fn add_control(&mut self, f: &RunFacts, day: i64, control_id: &str, passed: bool, sign: i64) {
        let row = self.controls.entry((f.template_key.clone(), f.version, day, control_id.to_string())).or_default();
        row[0] += sign;
        row[1] += sign * i64::from(passed);
    }

    /// Writes the pending changes, one statement per rollup row.
    pub(crate) fn flush(&mut self, tx: &Transaction<'_>) -> StoreResult<()> {
        for ((template, version, day, status), [runs, rejections, on_time, judged]) in std::mem::take(&mut self.runs) {
            if runs == 0 && rejections == 0 && on_time == 0 && judged == 0 {
                continue;
            }
            tx.prepare_cached(
                "INSERT INTO metric_day_runs (template_key, version, day, status, runs, rejections, on_time, judged)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT (template_key, version, day, status) DO UPDATE SET runs = runs + excluded.runs,
                   rejections = rejections + excluded.rejections, on_time = on_time + excluded.on_time,
                   judged = judged + excluded.judged",
            )
            .map_err(sql)?
            .execute(params![template, version, day, status, runs, rejections, on_time, judged])
            .map_err(sql)?;
        }
        for ((table, template, version, day), cycles) in std::mem::take(&mut self.cycles) {
            tx.prepare_cached(&format!(
                "INSERT INTO {table} (template_key, version, day, chunk, count, cycle_ms)
                 VALUES (?1, ?2, ?3, COALESCE((SELECT chunk + (count >= ?6) FROM {table}
                     WHERE template_key = ?1 AND version = ?2 AND day = ?3 ORDER BY chunk DESC LIMIT 1), 0), ?4, ?5)
                 ON CONFLICT (template_key, version, day, chunk) DO UPDATE SET count = count + excluded.count,
                   cycle_ms = iif(cycle_ms = '', '', cycle_ms || ',') || excluded.cycle_ms"
            ))
            .map_err(sql)?
            .execute(params![template, version, day, cycles.len() as i64, list(&cycles), CHUNK_VALUES])
            .map_err(sql)?;
        }
        for ((template, version, day, task, approval), (waits, with_due, on_time)) in std::mem::take(&mut self.waits) {
            tx.prepare_cached(
                "INSERT INTO metric_day_waits
                   (template_key, version, day, task_key, approval, chunk, count, with_due, on_time, wait_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, COALESCE((SELECT chunk + (count >= ?10) FROM metric_day_waits
                     WHERE template_key = ?1 AND version = ?2 AND day = ?3 AND task_key = ?4 AND approval = ?5
                     ORDER BY chunk DESC LIMIT 1), 0), ?6, ?7, ?8, ?9)
                 ON CONFLICT (template_key, version, day, task_key, approval, chunk) DO UPDATE SET
                   count = count + excluded.count, with_due = with_due + excluded.with_due,
                   on_time = on_time + excluded.on_time,
                   wait_ms = iif(wait_ms = '', '', wait_ms || ',') || excluded.wait_ms",
            )
            .map_err(sql)?
            .execute(params![
                template,
                version,
                day,
                task,
                approval,
                waits.len() as i64,
                with_due,
                on_time,
                list(&waits),
                CHUNK_VALUES
            ])
            .map_err(sql)?;
        }
        for ((template, version, day, control), [applied, passed]) in std::mem::take(&mut self.controls) {
            if applied == 0 && passed == 0 {
                continue;
            }
            tx.prepare_cached(
                "INSERT INTO metric_day_controls (template_key, version, day, control_id, applied, passed)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (template_key, version, day, control_id) DO UPDATE SET
                   applied = applied + excluded.applied, passed = passed + excluded.passed",
            )
            .map_err(sql)?
            .execute(params![template, version, day, control, applied, passed])
            .map_err(sql)?;
        }
        Ok(())
    }
}

/// Durations as a rollup lists them: decimal ms, comma-separated.
fn list(values: &[i64]) -> String {
    let mut out = String::with_capacity(values.len() * 10);
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&v.to_string());
    }
    out
}

/// Cycle times by the day runs started on, and by the day they completed on.
const STARTED_TABLE: &str = "metric_day_cycles";
const COMPLETED_TABLE: &str = "metric_done_days";

/// Whether an ended episode had a due date, and whether it met it.
fn due_parts(t: &TaskFact) -> (i64, i64) {
    match (t.ended_at, t.due_at) {
        (Some(end), Some(due)) => (1, i64::from(end <= due)),
        _ => (0, 0),
    }
}

fn wait_ms(t: &TaskFact) -> StoreResult<i64> {
    match (t.actionable_at, t.ended_at) {
        (Some(a), Some(e)) => Ok(ms(e) - ms(a)),
        _ => Err(StoreError::Corrupt(format!("an ended episode of task {} has no start of its wait", t.task_key))),
    }
}

/// Takes one occurrence of `value` out of the first chunk listing it (a
/// chunk may be left with an empty list). Only a run whose stored facts were
/// stale takes this path.
fn remove_value(
    tx: &Transaction<'_>,
    table: &str,
    column: &str,
    key_values: &[Value],
    value: i64,
) -> StoreResult<bool> {
    let chunks: Vec<(i64, String)> = {
        let mut stmt = tx
            .prepare_cached(&format!("SELECT chunk, {column} FROM {table} WHERE {} ORDER BY chunk", key_clause(table)))
            .map_err(sql)?;
        let rows =
            stmt.query_map(rusqlite::params_from_iter(key_values), |r| Ok((r.get(0)?, r.get(1)?))).map_err(sql)?;
        rows.collect::<Result<_, _>>().map_err(sql)?
    };
    let wanted = value.to_string();
    for (chunk, list) in chunks {
        let mut items: Vec<&str> = list.split(',').collect();
        if let Some(i) = items.iter().position(|v| *v == wanted) {
            items.remove(i);
            let mut values = key_values.to_vec();
            values.push(Value::Integer(chunk));
            values.push(Value::Text(items.join(",")));
            let n = values.len();
            tx.prepare_cached(&format!(
                "UPDATE {table} SET count = count - 1, {column} = ?{n} WHERE {} AND chunk = ?{}",
                key_clause(table),
                n - 1
            ))
            .map_err(sql)?
            .execute(rusqlite::params_from_iter(values))
            .map_err(sql)?;
            return Ok(true);
        }
    }
    Ok(false)
}

fn key_clause(table: &str) -> &'static str {
    if table == "metric_day_waits" {
        "template_key = ?1 AND version = ?2 AND day = ?3 AND task_key = ?4 AND approval = ?5"
    } else {
        "template_key = ?1 AND version = ?2 AND day = ?3"
    }
}

fn remove_cycle(tx: &Transaction<'_>, table: &str, f: &RunFacts, day: i64, cycle: i64) -> StoreResult<()> {
    let key = [Value::Text(f.template_key.clone()), Value::Integer(i64::from(f.version)), Value::Integer(day)];
    if !remove_value(tx, table, "cycle_ms", &key, cycle)? {
        return Err(drift(f));
    }
    Ok(())
}

fn remove_wait(tx: &Transaction<'_>, f: &RunFacts, day: i64, t: &TaskFact) -> StoreResult<()> {
    let key = [
        Value::Text(f.template_key.clone()),
        Value::Integer(i64::from(f.version)),
        Value::Integer(day),
        Value::Text(t.task_key.clone()),
        Value::Integer(i64::from(t.approval)),
    ];
    if !remove_value(tx, "metric_day_waits", "wait_ms", &key, wait_ms(t)?)? {
        return Err(drift(f));
    }
    let (with_due, on_time) = due_parts(t);
    if with_due > 0 {
        // The due counts are summed over a day's chunks, so any chunk may carry the decrement.
        tx.prepare_cached(
            "UPDATE metric_day_waits SET with_due = with_due - 1, on_time = on_time - ?6
             WHERE template_key = ?1 AND version = ?2 AND day = ?3 AND task_key = ?4 AND approval = ?5
               AND chunk = (SELECT MIN(chunk) FROM metric_day_waits WHERE template_key = ?1 AND version = ?2
                 AND day = ?3 AND task_key = ?4 AND approval = ?5)",
        )
        .map_err(sql)?
        .execute(params![f.template_key, f.version, day, t.task_key, t.approval, on_time])
        .map_err(sql)?;
    }
    Ok(())
}

fn drift(f: &RunFacts) -> StoreError {
    StoreError::Corrupt(format!(
        "the metric rollups of template {} version {} lack a value that the facts of run {} held: \
         the rollups and the facts disagree, which is a bug in attest",
        f.template_key, f.version, f.run_id
    ))
}

//! [`RunSearchStore`] over the `runs`, `tasks` and `task_assignees` projections.

use attest_engine::RunStatus;
use attest_store::{RunSearch, RunSearchStore, RunSummary, StoreError, StoreResult};
use rusqlite::params_from_iter;
use rusqlite::types::Value;

use crate::{MAX_LIST_LIMIT, SqliteStore, from_ms, ms, other, sql as sql_error};

/// The columns of a [`RunSummary`]: not the state, whose JSON would be read
/// and parsed for every run listed or exported.
const SUMMARY_COLUMNS: &str = "r.id, r.template_key, r.template_version, r.name, r.status, r.starter, r.started_at, r.updated_at, r.finished_at, r.due_at";

type SummaryRaw = (String, String, u32, String, String, String, i64, i64, Option<i64>, Option<i64>);

fn summary_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SummaryRaw> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?, r.get(8)?, r.get(9)?))
}

fn to_summary(raw: SummaryRaw) -> StoreResult<RunSummary> {
    let (id, template_key, template_version, name, status, starter, started_at, updated_at, finished_at, due_at) = raw;
    let status = match status.as_str() {
        "open" => RunStatus::Open,
        "completed" => RunStatus::Completed,
        "cancelled" => RunStatus::Cancelled,
        other => return Err(StoreError::Corrupt(format!("run {id} has unknown status {other}"))),
    };
    Ok(RunSummary {
        template_key,
        template_version,
        name,
        status,
        starter,
        started_at: from_ms(started_at)?,
        updated_at: from_ms(updated_at)?,
        finished_at: finished_at.map(from_ms).transpose()?,
        due_at: due_at.map(from_ms).transpose()?,
        id,
    })
}

impl RunSearchStore for SqliteStore {
    fn search_runs(&self, q: &RunSearch) -> StoreResult<Vec<RunSummary>> {
        let (sql, values) = search_sql(q)?;
        self.with_conn(|c| {
            let mut stmt = c.prepare_cached(&sql).map_err(sql_error)?;
            let rows = stmt.query_map(params_from_iter(values), summary_row).map_err(sql_error)?;
            rows.map(|r| r.map_err(sql_error).and_then(to_summary)).collect()
        })
    }
}

/// The runs list's query with its parameters.
fn search_sql(q: &RunSearch) -> StoreResult<(String, Vec<Value>)> {
    let limit = q.filter.limit.clamp(1, MAX_LIST_LIMIT);
    // Only the filters given go into the SQL, so that SQLite can pick the
    // `runs_by_template` or `runs_by_status` index; `?n IS NULL OR …`
    // forms made it walk every run by id.
    let mut conditions: Vec<&str> = Vec::new();
    let mut values: Vec<Value> = Vec::new();
    if let Some(template) = &q.filter.template {
        conditions.push("r.template_key = ?");
        values.push(Value::Text(template.clone()));
    }
    if let Some(status) = q.filter.status {
        conditions.push("r.status = ?");
        values.push(Value::Text(RunStatus::as_str(status).to_string()));
    }
    if let Some(before) = &q.filter.before {
        conditions.push("r.id < ?");
        values.push(Value::Text(before.clone()));
    }
    // The assignee and overdue filters are sets computed once, from the
    // `task_assignees` key (principal first) and the `tasks_open_due`
    // index; as correlated `EXISTS` they ran once per run walked, which is
    // every run when few match.
    if let Some(principals) = &q.assigned_to {
        conditions.push(
            "r.run_no IN (SELECT a.run_no FROM task_assignees a JOIN tasks t ON t.run_no = a.run_no AND t.key = a.task_key
                      WHERE a.principal IN (SELECT value FROM json_each(?))
                        AND t.status IN ('open', 'rework'))",
        );
        values.push(Value::Text(serde_json::to_string(principals).map_err(other)?));
    }
    if let Some(at) = q.overdue_at {
        // A run is overdue when an open task is, or when its own deadline
        // (a schedule's due period) has passed.
        conditions.push(
            "r.status = 'open' AND (r.run_no IN (SELECT t.run_no FROM tasks t
               WHERE t.status IN ('open', 'rework') AND t.due_at IS NOT NULL AND t.due_at < ?)
               OR r.due_at < ?)",
        );
        values.push(Value::Integer(ms(at)));
        values.push(Value::Integer(ms(at)));
    }
    values.push(Value::Integer(limit as i64));
    let filter = if conditions.is_empty() { String::new() } else { format!("WHERE {}", conditions.join(" AND ")) };
    Ok((format!("SELECT {SUMMARY_COLUMNS} FROM runs r {filter} ORDER BY r.id DESC LIMIT ?"), values))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// SQLite's plan for a search, one line per step.
    fn plan(q: &RunSearch) -> String {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path().join("attest.db")).unwrap();
        let (sql, values) = search_sql(q).unwrap();
        store
            .with_conn(|c| {
                let mut stmt = c.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).map_err(sql_error)?;
                let rows = stmt.query_map(params_from_iter(values), |r| r.get::<_, String>(3)).map_err(sql_error)?;
                rows.map(|r| r.map_err(sql_error)).collect::<StoreResult<Vec<_>>>()
            })
            .unwrap()
            .join("\n")
    }

    #[test]
    fn the_assignee_and_overdue_filters_are_sets_from_indexes_not_a_subquery_per_run() {
        let q = RunSearch {
            assigned_to: Some(vec!["user:fin@example.com".into(), "role:finance-approver".into()]),
            overdue_at: Some(jiff::Timestamp::UNIX_EPOCH),
            ..RunSearch::default()
        };
        let plan = plan(&q);
        assert!(!plan.contains("CORRELATED"), "{plan}");
        assert!(plan.contains("SEARCH a USING PRIMARY KEY (principal=?)"), "{plan}");
        assert!(plan.contains("SEARCH t USING INDEX tasks_open_due"), "{plan}");
    }
}

//! [`RunSearchStore`] over the `runs`, `tasks` and `task_assignees` projections.

use attest_engine::RunStatus;
use attest_store::{RunRow, RunSearch, RunSearchStore, StoreResult};
use rusqlite::params_from_iter;
use rusqlite::types::Value;

use crate::{MAX_LIST_LIMIT, RUN_COLUMNS, SqliteStore, ms, other, run_row, sql as sql_error, to_run_row};

impl RunSearchStore for SqliteStore {
    fn search_runs(&self, q: &RunSearch) -> StoreResult<Vec<RunRow>> {
        let (sql, values) = search_sql(q)?;
        self.with_conn(|c| {
            let mut stmt = c.prepare_cached(&sql).map_err(sql_error)?;
            let rows = stmt.query_map(params_from_iter(values), run_row).map_err(sql_error)?;
            rows.map(|r| r.map_err(sql_error).and_then(to_run_row)).collect()
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
            "r.id IN (SELECT a.run_id FROM task_assignees a JOIN tasks t ON t.run_id = a.run_id AND t.key = a.task_key
                      WHERE a.principal IN (SELECT value FROM json_each(?))
                        AND t.status IN ('open', 'rework'))",
        );
        values.push(Value::Text(serde_json::to_string(principals).map_err(other)?));
    }
    if let Some(at) = q.overdue_at {
        conditions.push(
            "r.status = 'open' AND r.id IN (SELECT t.run_id FROM tasks t
               WHERE t.status IN ('open', 'rework') AND t.due_at IS NOT NULL AND t.due_at < ?)",
        );
        values.push(Value::Integer(ms(at)));
    }
    values.push(Value::Integer(limit as i64));
    let filter = if conditions.is_empty() { String::new() } else { format!("WHERE {}", conditions.join(" AND ")) };
    Ok((format!("SELECT {RUN_COLUMNS} FROM runs r {filter} ORDER BY r.id DESC LIMIT ?"), values))
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

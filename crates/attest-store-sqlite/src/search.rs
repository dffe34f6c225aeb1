//! [`RunSearchStore`] over the `runs`, `tasks` and `task_assignees` projections.

use attest_engine::RunStatus;
use attest_store::{RunRow, RunSearch, RunSearchStore, StoreResult};
use rusqlite::params_from_iter;
use rusqlite::types::Value;

use crate::{MAX_LIST_LIMIT, RUN_COLUMNS, SqliteStore, ms, other, run_row, sql, to_run_row};

impl RunSearchStore for SqliteStore {
    fn search_runs(&self, q: &RunSearch) -> StoreResult<Vec<RunRow>> {
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
        if let Some(principals) = &q.assigned_to {
            conditions.push(
                "EXISTS (SELECT 1 FROM task_assignees a JOIN tasks t ON t.run_id = a.run_id AND t.key = a.task_key
                         WHERE a.run_id = r.id AND a.principal IN (SELECT value FROM json_each(?))
                           AND t.status IN ('open', 'rework'))",
            );
            values.push(Value::Text(serde_json::to_string(principals).map_err(other)?));
        }
        if let Some(at) = q.overdue_at {
            // A run is overdue when an open task is, or when the run's own
            // deadline (whole-second RFC 3339 in its state, so text order is
            // time order) has passed.
            conditions.push(
                "r.status = 'open' AND (EXISTS (SELECT 1 FROM tasks t WHERE t.run_id = r.id
                   AND t.status IN ('open', 'rework') AND t.due_at IS NOT NULL AND t.due_at < ?)
                   OR json_extract(r.state, '$.due_at') < ?)",
            );
            values.push(Value::Integer(ms(at)));
            let whole = jiff::Timestamp::from_second(at.as_second()).unwrap_or(at);
            values.push(Value::Text(whole.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()));
        }
        values.push(Value::Integer(limit as i64));
        let filter = if conditions.is_empty() { String::new() } else { format!("WHERE {}", conditions.join(" AND ")) };
        self.with_conn(|c| {
            let mut stmt = c
                .prepare_cached(&format!("SELECT {RUN_COLUMNS} FROM runs r {filter} ORDER BY r.id DESC LIMIT ?"))
                .map_err(sql)?;
            let rows = stmt.query_map(params_from_iter(values), run_row).map_err(sql)?;
            rows.map(|r| r.map_err(sql).and_then(to_run_row)).collect()
        })
    }
}

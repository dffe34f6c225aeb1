//! [`RunSearchStore`] over the `runs`, `tasks` and `task_assignees` projections.

use attest_engine::RunStatus;
use attest_store::{RunRow, RunSearch, RunSearchStore, StoreResult};
use rusqlite::params;

use crate::{MAX_LIST_LIMIT, RUN_COLUMNS, SqliteStore, ms, other, run_row, sql, to_run_row};

impl RunSearchStore for SqliteStore {
    fn search_runs(&self, q: &RunSearch) -> StoreResult<Vec<RunRow>> {
        let limit = q.filter.limit.clamp(1, MAX_LIST_LIMIT);
        let principals = q.assigned_to.as_ref().map(serde_json::to_string).transpose().map_err(other)?;
        let overdue = q.overdue_at.map(ms);
        self.with_conn(|c| {
            let mut stmt = c
                .prepare_cached(&format!(
                    "SELECT {RUN_COLUMNS} FROM runs r
                     WHERE (?1 IS NULL OR template_key = ?1) AND (?2 IS NULL OR status = ?2) AND (?3 IS NULL OR id < ?3)
                       AND (?5 IS NULL OR EXISTS (
                             SELECT 1 FROM task_assignees a JOIN tasks t ON t.run_id = a.run_id AND t.key = a.task_key
                             WHERE a.run_id = r.id AND a.principal IN (SELECT value FROM json_each(?5))
                               AND t.status IN ('open', 'rework')))
                       AND (?6 IS NULL OR (r.status = 'open' AND EXISTS (
                             SELECT 1 FROM tasks t WHERE t.run_id = r.id AND t.status IN ('open', 'rework')
                               AND t.due_at IS NOT NULL AND t.due_at < ?6)))
                     ORDER BY id DESC LIMIT ?4"
                ))
                .map_err(sql)?;
            let rows = stmt
                .query_map(
                    params![
                        q.filter.template,
                        q.filter.status.map(RunStatus::as_str),
                        q.filter.before,
                        limit,
                        principals,
                        overdue
                    ],
                    run_row,
                )
                .map_err(sql)?;
            rows.map(|r| r.map_err(sql).and_then(to_run_row)).collect()
        })
    }
}

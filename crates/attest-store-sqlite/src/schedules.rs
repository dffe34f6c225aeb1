//! [`ScheduleStore`] for SQLite.

use attest_engine::WorkspaceEvent;
use attest_store::{NewJob, ScheduleRow, ScheduleStore, StoreError, StoreResult};
use jiff::Timestamp;
use rusqlite::{OptionalExtension, Row, params};

use crate::hooks::append_workspace_event;
use crate::jobs::insert_jobs;
use crate::{SqliteStore, from_ms, ms, sql};

/// Most schedules one workspace keeps.
const MAX_SCHEDULES: i64 = 10_000;

const SCHEDULE_COLUMNS: &str = "id, template, name_pattern, rule, time_zone, starts_as, paused, next_at, \
                                last_fired_at, created_by, created_at, due_days, due_business_days";

type RawSchedule = (ScheduleRow, Option<i64>, Option<i64>, i64);

fn schedule_row(r: &Row<'_>) -> rusqlite::Result<RawSchedule> {
    Ok((
        ScheduleRow {
            id: r.get(0)?,
            template: r.get(1)?,
            name_pattern: r.get(2)?,
            rule: r.get(3)?,
            time_zone: r.get(4)?,
            starts_as: r.get(5)?,
            paused: r.get(6)?,
            next_at: None,
            last_fired_at: None,
            created_by: r.get(9)?,
            created_at: Timestamp::UNIX_EPOCH,
            due_days: r.get(11)?,
            due_business_days: r.get(12)?,
        },
        r.get(7)?,
        r.get(8)?,
        r.get(10)?,
    ))
}

fn finish((mut s, next_at, fired, created): RawSchedule) -> StoreResult<ScheduleRow> {
    s.next_at = next_at.map(from_ms).transpose()?;
    s.last_fired_at = fired.map(from_ms).transpose()?;
    s.created_at = from_ms(created)?;
    Ok(s)
}

impl ScheduleStore for SqliteStore {
    fn put_schedule(&self, event: &WorkspaceEvent, s: &ScheduleRow) -> StoreResult<()> {
        self.write(|tx| {
            let count: i64 = tx.query_row("SELECT COUNT(*) FROM schedules", [], |r| r.get(0)).map_err(sql)?;
            if count >= MAX_SCHEDULES {
                return Err(StoreError::Conflict(format!("a workspace keeps at most {MAX_SCHEDULES} schedules")));
            }
            let n = tx
                .execute(
                    &format!(
                        "INSERT INTO schedules ({SCHEDULE_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
                         ON CONFLICT (id) DO NOTHING"
                    ),
                    params![
                        s.id,
                        s.template,
                        s.name_pattern,
                        s.rule,
                        s.time_zone,
                        s.starts_as,
                        s.paused,
                        s.next_at.map(ms),
                        s.last_fired_at.map(ms),
                        s.created_by,
                        ms(s.created_at),
                        s.due_days,
                        s.due_business_days
                    ],
                )
                .map_err(sql)?;
            if n == 0 {
                return Err(StoreError::Conflict(format!("a schedule with id {} exists", s.id)));
            }
            append_workspace_event(tx, event)?;
            Ok(())
        })
    }

    fn schedule(&self, id: &str) -> StoreResult<Option<ScheduleRow>> {
        self.with_conn(|c| {
            let row = c
                .query_row(&format!("SELECT {SCHEDULE_COLUMNS} FROM schedules WHERE id = ?1"), [id], schedule_row)
                .optional()
                .map_err(sql)?;
            row.map(finish).transpose()
        })
    }

    fn schedules(&self) -> StoreResult<Vec<ScheduleRow>> {
        self.with_conn(|c| {
            let mut stmt =
                c.prepare_cached(&format!("SELECT {SCHEDULE_COLUMNS} FROM schedules ORDER BY id")).map_err(sql)?;
            let rows = stmt.query_map([], schedule_row).map_err(sql)?;
            rows.map(|r| r.map_err(sql).and_then(finish)).collect()
        })
    }

    fn set_schedule_paused(
        &self,
        event: &WorkspaceEvent,
        id: &str,
        paused: bool,
        next_at: Option<Timestamp>,
    ) -> StoreResult<()> {
        self.write(|tx| {
            let n = tx
                .execute(
                    "UPDATE schedules SET paused = ?2, next_at = ?3 WHERE id = ?1",
                    params![id, paused, next_at.map(ms)],
                )
                .map_err(sql)?;
            if n == 0 {
                return Err(StoreError::NotFound(format!("no schedule with id {id}")));
            }
            append_workspace_event(tx, event)?;
            Ok(())
        })
    }

    fn delete_schedule(&self, event: &WorkspaceEvent, id: &str) -> StoreResult<()> {
        self.write(|tx| {
            let n = tx.execute("DELETE FROM schedules WHERE id = ?1", [id]).map_err(sql)?;
            if n == 0 {
                return Err(StoreError::NotFound(format!("no schedule with id {id}")));
            }
            append_workspace_event(tx, event)?;
            Ok(())
        })
    }

    fn due_schedules(&self, now: Timestamp, limit: u32) -> StoreResult<Vec<ScheduleRow>> {
        self.with_conn(|c| {
            let mut stmt = c
                .prepare_cached(&format!(
                    "SELECT {SCHEDULE_COLUMNS} FROM schedules WHERE paused = 0 AND next_at <= ?1 ORDER BY next_at LIMIT ?2"
                ))
                .map_err(sql)?;
            let rows = stmt.query_map(params![ms(now), limit], schedule_row).map_err(sql)?;
            rows.map(|r| r.map_err(sql).and_then(finish)).collect()
        })
    }

    fn fire_schedule(
        &self,
        id: &str,
        expected: Timestamp,
        next: Option<Timestamp>,
        fired_at: Timestamp,
        job: &NewJob,
        now: Timestamp,
    ) -> StoreResult<bool> {
        self.write(|tx| {
            let n = tx
                .execute(
                    "UPDATE schedules SET next_at = ?3, last_fired_at = ?4 WHERE id = ?1 AND next_at = ?2 AND paused = 0",
                    params![id, ms(expected), next.map(ms), ms(fired_at)],
                )
                .map_err(sql)?;
            if n == 0 {
                return Ok(false);
            }
            insert_jobs(tx, std::slice::from_ref(job), now)?;
            Ok(true)
        })
    }
}

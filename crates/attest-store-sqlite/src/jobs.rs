//! [`JobStore`] and [`SettingsStore`] for SQLite (the scheduler's migration).

use attest_engine::WorkspaceEvent;
use attest_store::{JobFilter, JobRow, JobState, JobStore, NewJob, SettingsStore, StoreError, StoreResult};
use jiff::Timestamp;
use rusqlite::{OptionalExtension, Row, Transaction, params};

use crate::{SqliteStore, from_ms, ms, sql};

/// Most jobs one list call returns.
const MAX_JOB_LIST: u32 = 1_000;

const JOB_COLUMNS: &str =
    "id, kind, key, payload, run_at, state, attempts, lease_owner, lease_until, last_error, created_at, finished_at";

type RawJob = (JobRow, i64, String, Option<i64>, i64, Option<i64>);

fn job_row(r: &Row<'_>) -> rusqlite::Result<RawJob> {
    Ok((
        JobRow {
            id: r.get(0)?,
            kind: r.get(1)?,
            key: r.get(2)?,
            payload: r.get(3)?,
            run_at: Timestamp::UNIX_EPOCH,
            state: JobState::Pending,
            attempts: r.get(6)?,
            lease_owner: r.get(7)?,
            lease_until: None,
            last_error: r.get(9)?,
            created_at: Timestamp::UNIX_EPOCH,
            finished_at: None,
        },
        r.get(4)?,
        r.get(5)?,
        r.get(8)?,
        r.get(10)?,
        r.get(11)?,
    ))
}

fn finish_job((mut job, run_at, state, lease_until, created_at, finished_at): RawJob) -> StoreResult<JobRow> {
    job.run_at = from_ms(run_at)?;
    job.state = JobState::parse(&state)
        .ok_or_else(|| StoreError::Corrupt(format!("job {} has unknown state {state}", job.id)))?;
    job.lease_until = lease_until.map(from_ms).transpose()?;
    job.created_at = from_ms(created_at)?;
    job.finished_at = finished_at.map(from_ms).transpose()?;
    Ok(job)
}

pub(crate) fn insert_jobs(tx: &Transaction<'_>, jobs: &[NewJob], now: Timestamp) -> StoreResult<usize> {
    let mut inserted = 0;
    let mut stmt = tx
        .prepare_cached(
            "INSERT INTO jobs (kind, key, payload, run_at, state, created_at) VALUES (?1, ?2, ?3, ?4, 'pending', ?5)
             ON CONFLICT (key) DO NOTHING",
        )
        .map_err(sql)?;
    for job in jobs {
        inserted += stmt.execute(params![job.kind, job.key, job.payload, ms(job.run_at), ms(now)]).map_err(sql)?;
    }
    Ok(inserted)
}

impl JobStore for SqliteStore {
    fn enqueue(&self, jobs: &[NewJob], now: Timestamp) -> StoreResult<usize> {
        self.write(|tx| insert_jobs(tx, jobs, now))
    }

    fn claim(&self, owner: &str, now: Timestamp, lease_until: Timestamp, limit: u32) -> StoreResult<Vec<JobRow>> {
        self.write(|tx| {
            // One conditional update: only rows still pending, due and unleased
            // are taken, so a concurrent claimer can never take the same row.
            let mut stmt = tx
                .prepare_cached(&format!(
                    "UPDATE jobs SET lease_owner = ?1, lease_until = ?2, attempts = attempts + 1
                     WHERE id IN (
                       SELECT id FROM jobs
                       WHERE state = 'pending' AND run_at <= ?3 AND (lease_until IS NULL OR lease_until <= ?3)
                       ORDER BY run_at, id LIMIT ?4)
                     RETURNING {JOB_COLUMNS}"
                ))
                .map_err(sql)?;
            let rows = stmt.query_map(params![owner, ms(lease_until), ms(now), limit], job_row).map_err(sql)?;
            let mut jobs = rows.map(|r| r.map_err(sql).and_then(finish_job)).collect::<StoreResult<Vec<_>>>()?;
            jobs.sort_by_key(|j| (j.run_at, j.id));
            Ok(jobs)
        })
    }

    fn complete(&self, id: i64, owner: &str, now: Timestamp) -> StoreResult<bool> {
        self.write(|tx| {
            let n = tx
                .prepare_cached(
                    "UPDATE jobs SET state = 'done', lease_owner = NULL, lease_until = NULL, finished_at = ?3
                     WHERE id = ?1 AND lease_owner = ?2 AND state = 'pending'",
                )
                .map_err(sql)?
                .execute(params![id, owner, ms(now)])
                .map_err(sql)?;
            Ok(n == 1)
        })
    }

    fn complete_many(&self, ids: &[i64], owner: &str, now: Timestamp) -> StoreResult<usize> {
        if ids.is_empty() {
            return Ok(0);
        }
        self.write(|tx| {
            let mut stmt = tx
                .prepare_cached(
                    "UPDATE jobs SET state = 'done', lease_owner = NULL, lease_until = NULL, finished_at = ?3
                     WHERE id = ?1 AND lease_owner = ?2 AND state = 'pending'",
                )
                .map_err(sql)?;
            let mut done = 0;
            for id in ids {
                done += stmt.execute(params![id, owner, ms(now)]).map_err(sql)?;
            }
            Ok(done)
        })
    }

    fn fail(
        &self,
        id: i64,
        owner: &str,
        error: &str,
        retry_at: Option<Timestamp>,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let error: String = error.chars().take(2_000).collect();
        self.write(|tx| {
            let n = match retry_at {
                Some(at) => tx
                    .prepare_cached(
                        "UPDATE jobs SET run_at = ?4, last_error = ?3, lease_owner = NULL, lease_until = NULL
                         WHERE id = ?1 AND lease_owner = ?2 AND state = 'pending'",
                    )
                    .map_err(sql)?
                    .execute(params![id, owner, error, ms(at)])
                    .map_err(sql)?,
                None => tx
                    .prepare_cached(
                        "UPDATE jobs SET state = 'failed', last_error = ?3, lease_owner = NULL, lease_until = NULL,
                         finished_at = ?4 WHERE id = ?1 AND lease_owner = ?2 AND state = 'pending'",
                    )
                    .map_err(sql)?
                    .execute(params![id, owner, error, ms(now)])
                    .map_err(sql)?,
            };
            Ok(n == 1)
        })
    }

    fn jobs(&self, filter: &JobFilter) -> StoreResult<Vec<JobRow>> {
        let limit = filter.limit.clamp(1, MAX_JOB_LIST);
        self.with_conn(|c| {
            let mut stmt = c
                .prepare_cached(&format!(
                    "SELECT {JOB_COLUMNS} FROM jobs
                     WHERE (?1 IS NULL OR kind = ?1) AND (?2 IS NULL OR state = ?2) AND (?3 = 0 OR last_error IS NOT NULL)
                     ORDER BY id DESC LIMIT ?4"
                ))
                .map_err(sql)?;
            let rows = stmt
                .query_map(
                    params![filter.kind, filter.state.map(JobState::as_str), filter.with_errors, limit],
                    job_row,
                )
                .map_err(sql)?;
            rows.map(|r| r.map_err(sql).and_then(finish_job)).collect()
        })
    }

    fn prune_jobs(&self, before: Timestamp) -> StoreResult<usize> {
        self.write(|tx| {
            tx.execute("DELETE FROM jobs WHERE state = 'done' AND finished_at < ?1", [ms(before)]).map_err(sql)
        })
    }

    fn cursor(&self, name: &str) -> StoreResult<u64> {
        self.with_conn(|c| {
            let position: Option<i64> = c
                .prepare_cached("SELECT position FROM cursors WHERE name = ?1")
                .map_err(sql)?
                .query_row([name], |r| r.get(0))
                .optional()
                .map_err(sql)?;
            Ok(position.unwrap_or(0) as u64)
        })
    }

    fn advance_cursor(&self, name: &str, from: u64, to: u64, jobs: &[NewJob], now: Timestamp) -> StoreResult<bool> {
        self.write(|tx| {
            let current: Option<i64> = tx
                .prepare_cached("SELECT position FROM cursors WHERE name = ?1")
                .map_err(sql)?
                .query_row([name], |r| r.get(0))
                .optional()
                .map_err(sql)?;
            if current.unwrap_or(0) as u64 != from {
                return Ok(false);
            }
            insert_jobs(tx, jobs, now)?;
            tx.prepare_cached(
                "INSERT INTO cursors (name, position) VALUES (?1, ?2)
                 ON CONFLICT (name) DO UPDATE SET position = excluded.position",
            )
            .map_err(sql)?
            .execute(params![name, to as i64])
            .map_err(sql)?;
            Ok(true)
        })
    }
}

impl SettingsStore for SqliteStore {
    fn setting(&self, key: &str) -> StoreResult<Option<String>> {
        self.with_conn(|c| {
            c.query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| r.get(0)).optional().map_err(sql)
        })
    }

    fn put_setting(&self, event: &WorkspaceEvent, key: &str, json: &str) -> StoreResult<()> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO settings (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                params![key, json],
            )
            .map_err(sql)?;
            crate::hooks::append_workspace_event(tx, event)?;
            Ok(())
        })
    }

    fn mail_opt_out(&self, email: &str) -> StoreResult<bool> {
        self.with_conn(|c| {
            let v: Option<bool> = c
                .query_row("SELECT opt_out FROM mail_preferences WHERE email = ?1", [email], |r| r.get(0))
                .optional()
                .map_err(sql)?;
            Ok(v.unwrap_or(false))
        })
    }

    fn set_mail_opt_out(&self, email: &str, opt_out: bool) -> StoreResult<()> {
        self.write(|tx| {
            ensure_person(tx, email)?;
            tx.execute(
                "INSERT INTO mail_preferences (email, opt_out) VALUES (?1, ?2)
                 ON CONFLICT (email) DO UPDATE SET opt_out = excluded.opt_out",
                params![email, opt_out],
            )
            .map_err(sql)?;
            Ok(())
        })
    }

    fn person_time_zone(&self, email: &str) -> StoreResult<Option<String>> {
        let key = format!("{PERSON_TIME_ZONE}{email}");
        self.with_conn(|c| {
            c.query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| r.get(0)).optional().map_err(sql)
        })
    }

    fn set_person_time_zone(&self, email: &str, zone: Option<&str>) -> StoreResult<()> {
        let key = format!("{PERSON_TIME_ZONE}{email}");
        self.write(|tx| {
            ensure_person(tx, email)?;
            match zone {
                Some(zone) => tx.execute(
                    "INSERT INTO settings (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    params![key, zone],
                ),
                None => tx.execute("DELETE FROM settings WHERE key = ?1", [key]),
            }
            .map_err(sql)?;
            Ok(())
        })
    }
}

/// The settings key prefix of a person's time zone: a preference kept beside
/// the workspace settings, which needs no table of its own.
const PERSON_TIME_ZONE: &str = "person_time_zone:";

/// A per-person setting is refused for someone the workspace does not know.
fn ensure_person(tx: &Transaction<'_>, email: &str) -> StoreResult<()> {
    let exists: bool =
        tx.query_row("SELECT EXISTS(SELECT 1 FROM users WHERE email = ?1)", [email], |r| r.get(0)).map_err(sql)?;
    if !exists {
        return Err(StoreError::NotFound(format!("no person with email {email} in this workspace")));
    }
    Ok(())
}

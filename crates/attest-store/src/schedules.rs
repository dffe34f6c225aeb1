//! Schedules: recurring runs of a template. A schedule's `next_at` is the
//! next occurrence still to fire; firing moves it on and enqueues the
//! `start_run` job in one transaction, guarded by the `next_at` the caller
//! read, so two processes never fire the same occurrence.

use attest_engine::WorkspaceEvent;
use jiff::Timestamp;
use serde::Serialize;

use crate::StoreResult;
use crate::jobs::NewJob;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScheduleRow {
    pub id: String,
    pub template: String,
    /// The run name with placeholders (`{year}`, `{quarter}`, ...).
    pub name_pattern: String,
    /// The rule as JSON text: `{"cron": "..."}` or `{"every": "...", ...}`.
    pub rule: String,
    /// IANA time zone the rule is read in.
    pub time_zone: String,
    /// The person the runs are started as (the `starter` of each run).
    pub starts_as: String,
    pub paused: bool,
    /// The next occurrence to fire; `None` when the rule has no more.
    pub next_at: Option<Timestamp>,
    pub last_fired_at: Option<Timestamp>,
    pub created_by: String,
    pub created_at: Timestamp,
    /// Each run is due this many days after its scheduled start, if set.
    pub due_days: Option<u32>,
    /// Count `due_days` in business days (Monday to Friday) instead of calendar days.
    pub due_business_days: bool,
}

pub trait ScheduleStore: Send + Sync + std::fmt::Debug {
    /// Adds a schedule with its workspace event; a conflict if the id exists.
    fn put_schedule(&self, event: &WorkspaceEvent, schedule: &ScheduleRow) -> StoreResult<()>;
    fn schedule(&self, id: &str) -> StoreResult<Option<ScheduleRow>>;
    fn schedules(&self) -> StoreResult<Vec<ScheduleRow>>;
    /// Pauses or resumes, setting the next occurrence, with its workspace
    /// event; not-found if unknown.
    fn set_schedule_paused(
        &self,
        event: &WorkspaceEvent,
        id: &str,
        paused: bool,
        next_at: Option<Timestamp>,
    ) -> StoreResult<()>;
    /// Deletes with its workspace event; not-found if unknown.
    fn delete_schedule(&self, event: &WorkspaceEvent, id: &str) -> StoreResult<()>;
    /// Active schedules whose `next_at` is at or before `now`.
    fn due_schedules(&self, now: Timestamp, limit: u32) -> StoreResult<Vec<ScheduleRow>>;
    /// Moves `next_at` from `expected` to `next`, records `fired_at` and
    /// enqueues the job, in one transaction. False if another process moved
    /// it first or the schedule is gone or paused.
    fn fire_schedule(
        &self,
        id: &str,
        expected: Timestamp,
        next: Option<Timestamp>,
        fired_at: Timestamp,
        job: &NewJob,
        now: Timestamp,
    ) -> StoreResult<bool>;
}

//! Durable jobs: the scheduler's work queue, kept in the store so that a
//! restart loses nothing.
//!
//! A job is claimed under a lease (`lease_owner`, `lease_until`): a claim
//! takes only pending jobs that are due and whose lease is free or expired,
//! in one conditional update, so several server processes sharing one
//! database never run a job twice at the same time (PostgreSQL would do the
//! same with `FOR UPDATE SKIP LOCKED`). A worker that dies mid-job leaves its
//! lease to expire and the job is claimed again: delivery is at least once,
//! so every job's effect must be idempotent (the engine refuses a reminder or
//! escalation step twice; a scheduled run has a deterministic id).
//!
//! Each job has a unique `key`: enqueueing a key that exists (in any state)
//! does nothing, which is how followers of the ledger stay idempotent.
//!
//! Cursors remember how far a follower has read the ledger; a follower
//! enqueues what it derived and moves its cursor in one transaction.

use jiff::Timestamp;
use serde::Serialize;

use crate::StoreResult;

/// A job's life: pending until it succeeds (done) or runs out of attempts (failed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Pending,
    Done,
    Failed,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Pending => "pending",
            JobState::Done => "done",
            JobState::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(JobState::Pending),
            "done" => Some(JobState::Done),
            "failed" => Some(JobState::Failed),
            _ => None,
        }
    }
}

/// A job to enqueue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewJob {
    /// What handles it, e.g. `remind`, `escalate`, `email`, `start_run`.
    pub kind: String,
    /// Unique across all jobs ever kept: a second enqueue of a key is ignored.
    pub key: String,
    /// The handler's input, as JSON text.
    pub payload: String,
    pub run_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JobRow {
    pub id: i64,
    pub kind: String,
    pub key: String,
    pub payload: String,
    pub run_at: Timestamp,
    pub state: JobState,
    /// Claims so far, including the current one.
    pub attempts: u32,
    pub lease_owner: Option<String>,
    pub lease_until: Option<Timestamp>,
    pub last_error: Option<String>,
    pub created_at: Timestamp,
    pub finished_at: Option<Timestamp>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobFilter {
    pub kind: Option<String>,
    pub state: Option<JobState>,
    /// Only jobs that failed at least once (pending with an error, or failed).
    pub with_errors: bool,
    pub limit: u32,
}

pub trait JobStore: Send + Sync + std::fmt::Debug {
    /// Inserts the jobs whose keys are new; returns how many were inserted.
    fn enqueue(&self, jobs: &[NewJob], now: Timestamp) -> StoreResult<usize>;

    /// Leases up to `limit` pending jobs due at `now` whose lease is free or
    /// expired to `owner` until `lease_until`, counting an attempt on each.
    /// Oldest `run_at` first.
    fn claim(&self, owner: &str, now: Timestamp, lease_until: Timestamp, limit: u32) -> StoreResult<Vec<JobRow>>;

    /// Marks a job done if `owner` still holds its lease; false if the lease was lost.
    fn complete(&self, id: i64, owner: &str, now: Timestamp) -> StoreResult<bool>;

    /// Marks several jobs done in one transaction (one fsync); returns how
    /// many were still leased by `owner`.
    fn complete_many(&self, ids: &[i64], owner: &str, now: Timestamp) -> StoreResult<usize>;

    /// Records a failed attempt if `owner` still holds the lease: the job is
    /// tried again at `retry_at`, or fails for good when that is `None`.
    fn fail(&self, id: i64, owner: &str, error: &str, retry_at: Option<Timestamp>, now: Timestamp)
    -> StoreResult<bool>;

    fn jobs(&self, filter: &JobFilter) -> StoreResult<Vec<JobRow>>;

    /// Deletes done jobs finished before `before`; returns how many.
    fn prune_jobs(&self, before: Timestamp) -> StoreResult<usize>;

    /// A follower's position in the ledger (0 when it never ran).
    fn cursor(&self, name: &str) -> StoreResult<u64>;

    /// Enqueues jobs and moves a cursor from `from` to `to` in one
    /// transaction. False (and nothing written) if the cursor was not at `from`.
    fn advance_cursor(&self, name: &str, from: u64, to: u64, jobs: &[NewJob], now: Timestamp) -> StoreResult<bool>;
}

//! Process-metric facts: per-run and per-task rows derived from each run
//! commit and written in the same transaction as its events, so reading
//! metrics aggregates these rows and never reads events.
//!
//! What each fact means is defined in `docs/metrics.md`; `attest_core::metrics`
//! derives them (a pure fold) and aggregates them.

use attest_engine::{RunState, RunStatus};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::StoreResult;

/// Everything the metrics know about one run, as of its latest commit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunFacts {
    pub run_id: String,
    pub template_key: String,
    pub version: u32,
    pub status: RunStatus,
    pub started_at: Timestamp,
    /// When the run completed or was cancelled.
    pub finished_at: Option<Timestamp>,
    /// Rejections over the run's life.
    pub rejections: u32,
    /// Events folded: equals the run's version when the facts are current. A
    /// store reads it as the run's version, since every run commit writes the
    /// facts in its transaction.
    pub event_count: u64,
    /// For a completed run: whether every task completion with a due date met it.
    pub on_time: Option<bool>,
    /// Task episodes in the order they were first seen; an episode keeps its
    /// position, except that open ones dropped (hidden, or the run finished) close the gap.
    pub tasks: Vec<TaskFact>,
    /// For a completed run: each declared control that applied, and whether it passed.
    pub controls: Vec<ControlFact>,
}

impl RunFacts {
    /// The facts of a run before any event is folded into them.
    pub fn before_events(state: &RunState) -> Self {
        RunFacts {
            run_id: state.run_id.clone(),
            template_key: state.template_key.clone(),
            version: state.version,
            status: state.status,
            started_at: state.started_at,
            finished_at: None,
            rejections: 0,
            event_count: 0,
            on_time: None,
            tasks: Vec::new(),
            controls: Vec::new(),
        }
    }
}

/// How a task episode ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskOutcome {
    Completed,
    Approved,
    Rejected,
}

impl TaskOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskOutcome::Completed => "completed",
            TaskOutcome::Approved => "approved",
            TaskOutcome::Rejected => "rejected",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "completed" => Some(TaskOutcome::Completed),
            "approved" => Some(TaskOutcome::Approved),
            "rejected" => Some(TaskOutcome::Rejected),
            _ => None,
        }
    }
}

/// One stretch of a task being open: from when it (re)opened to its
/// completion or decision. Open episodes have no `ended_at`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskFact {
    pub task_key: String,
    pub approval: bool,
    /// When it was first seen actionable in this episode.
    pub actionable_at: Option<Timestamp>,
    pub ended_at: Option<Timestamp>,
    pub outcome: Option<TaskOutcome>,
    /// The due date at the end of the episode, or now for an open one.
    pub due_at: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControlFact {
    pub control_id: String,
    pub passed: bool,
}

/// Which runs a metrics read covers: one template (optionally one version),
/// runs started in `[from, to)`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetricScope {
    /// `None` covers every template (the workspace overview).
    pub template: Option<String>,
    pub version: Option<u32>,
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
}

/// Runs started in scope with one status, counted per template version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunCountRow {
    pub template_key: String,
    pub version: u32,
    pub status: RunStatus,
    pub runs: u64,
    pub rejections: u64,
    /// Completed runs judged on time, and those judged at all.
    pub on_time: u64,
    pub judged: u64,
}

/// Cycle times (completion minus start, in ms) of one template's completed
/// runs in scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CycleTimes {
    pub template_key: String,
    pub cycle_ms: Vec<i64>,
}

/// Runs that completed on one UTC day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompletionDay {
    /// Midnight UTC.
    pub day: Timestamp,
    pub cycle_ms: Vec<i64>,
}

/// The ended episodes of one task in scope: their waits, and how many had a
/// due date and met it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskWaits {
    pub task_key: String,
    pub approval: bool,
    /// From actionable to completion (or decision, for approvals), in ms;
    /// a rejected non-approval task never ends an episode, so all count.
    pub wait_ms: Vec<i64>,
    pub with_due: u64,
    pub on_time: u64,
}

/// Control outcomes of the completed runs in scope, counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlCountRow {
    pub version: u32,
    pub control_id: String,
    pub applied: u64,
    pub passed: u64,
}

/// Open tasks of open runs with a due date before `now`, counted per version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverdueCountRow {
    pub template_key: String,
    pub version: u32,
    pub tasks: u64,
    pub runs: u64,
}

/// The read side of the metric facts, and the write used to fill them for
/// runs that predate them. Regular writes go with the run's events through
/// [`crate::Store::write_runs`] (`RunCommit::facts`).
pub trait MetricsStore: Send + Sync + std::fmt::Debug {
    /// The current facts of one run, the input of the next incremental fold.
    fn run_facts(&self, run_id: &str) -> StoreResult<Option<RunFacts>>;

    /// Stores facts computed by replay, for runs that have none; a run that
    /// already has facts, or whose version differs from `event_count`, is
    /// left alone. Returns how many were written.
    fn backfill_facts(&self, facts: &[RunFacts]) -> StoreResult<usize>;

    /// Runs that have no facts (at most `limit` ids).
    fn runs_without_facts(&self, limit: u32) -> StoreResult<Vec<String>>;

    /// Runs started in scope, counted per template, version and status.
    fn run_counts(&self, scope: &MetricScope) -> StoreResult<Vec<RunCountRow>>;

    /// Cycle times of runs started in scope, per template.
    fn cycle_times(&self, scope: &MetricScope) -> StoreResult<Vec<CycleTimes>>;

    /// Cycle times of runs that completed in `[from, to)`, whenever they
    /// started, per UTC day they completed on, in day order.
    fn completion_days(&self, scope: &MetricScope) -> StoreResult<Vec<CompletionDay>>;

    /// Ended task episodes of runs started in scope, per task.
    fn task_waits(&self, scope: &MetricScope) -> StoreResult<Vec<TaskWaits>>;

    /// Control outcomes of runs started in scope.
    fn control_counts(&self, scope: &MetricScope) -> StoreResult<Vec<ControlCountRow>>;

    /// Open tasks due before `now` of the scope's template and version,
    /// counted per template version (the period does not apply: overdue is about now).
    fn overdue_counts(&self, scope: &MetricScope, now: Timestamp) -> StoreResult<Vec<OverdueCountRow>>;
}

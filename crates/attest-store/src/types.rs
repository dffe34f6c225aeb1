//! Rows and changes exchanged with a store.

use attest_engine::{Event, RunState, RunStatus};
use jiff::Timestamp;
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorkspaceInfo {
    pub name: String,
    pub created_at: Timestamp,
}

/// A projection change that goes with a workspace event.
#[derive(Debug, Clone, PartialEq)]
pub enum DirectoryChange {
    CreateWorkspace {
        name: String,
    },
    /// Fails with a conflict if the email exists.
    AddUser {
        email: String,
        name: String,
        admin: bool,
    },
    GrantRole {
        email: String,
        role: String,
    },
    RevokeRole {
        email: String,
        role: String,
    },
    /// Fails with a conflict unless `version` is one past the latest.
    PublishTemplate {
        key: String,
        name: String,
        version: u32,
        content_hash: String,
        json: String,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UserRow {
    pub email: String,
    pub name: String,
    pub admin: bool,
    pub roles: Vec<String>,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TemplateVersionRow {
    pub key: String,
    pub name: String,
    pub version: u32,
    pub content_hash: String,
    /// The template as canonical-shaped JSON; it parses as a template file.
    pub json: String,
    pub published_at: Timestamp,
    pub published_by: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TemplateSummary {
    pub key: String,
    pub name: String,
    pub latest_version: u32,
    pub open_runs: u64,
    pub total_runs: u64,
}

/// The events of one run to append, with the projections they lead to.
#[derive(Debug, Clone)]
pub struct RunCommit {
    pub run_id: String,
    /// Events the run held when the command was decided; 0 for a new run.
    pub expected_version: u64,
    pub events: Vec<Event>,
    /// The state after the events, for the run's projection rows.
    pub state: RunState,
    pub tasks: Vec<TaskRow>,
    /// The run's metric facts after the events. Every commit carries them, so
    /// stored facts are always those of the run's stored version.
    pub facts: crate::metrics::RunFacts,
    /// The projection as stored at `expected_version`, when the caller knows
    /// it: the store then writes only the rows that differ without reading
    /// them back. `None` makes the store read what it needs.
    pub previous: Option<StoredProjection>,
}

/// Events between two stored snapshots of a run's state: a read folds fewer
/// than this many events over the last snapshot. Writing the state at every
/// command was the largest row a command wrote (kilobytes per run).
pub const STATE_SNAPSHOT_EVENTS: u64 = 16;

/// Whether a commit stores the run's state: when the run starts, when it
/// ends, and when its event count crosses a multiple of
/// [`STATE_SNAPSHOT_EVENTS`]. The other commits leave the last snapshot and
/// its later events for reads to fold.
pub fn writes_state_snapshot(expected_version: u64, state: &RunState) -> bool {
    expected_version == 0
        || state.status != RunStatus::Open
        || state.event_count / STATE_SNAPSHOT_EVENTS != expected_version / STATE_SNAPSHOT_EVENTS
}

/// What writing a [`RunCommit`] needs that no transaction does: the state's
/// JSON when the commit stores a snapshot of it, and the canonical bytes of
/// the events. Made apart from the write, so that a caller can make it on
/// another thread while the store writes earlier commits.
#[derive(Debug, Clone)]
pub struct CommitBytes {
    pub state_json: Option<String>,
    /// One per event of the commit, in order.
    pub events: Vec<crate::EventBytes>,
}

impl CommitBytes {
    pub fn new(commit: &RunCommit) -> crate::StoreResult<Self> {
        let state_json = if writes_state_snapshot(commit.expected_version, &commit.state) {
            Some(serde_json::to_string(&commit.state).map_err(|e| crate::StoreError::Other(e.into()))?)
        } else {
            None
        };
        let events = commit
            .events
            .iter()
            .map(crate::EventBytes::new)
            .collect::<Result<Vec<_>, _>>()
            .map_err(crate::StoreError::Other)?;
        Ok(CommitBytes { state_json, events })
    }
}

/// A run's projection rows as one commit left them.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredProjection {
    pub tasks: Vec<TaskRow>,
    pub facts: crate::metrics::RunFacts,
}

/// A task as indexed for the inbox and run lists.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskRow {
    pub key: String,
    pub name: String,
    pub status: String,
    pub approval: bool,
    pub due_at: Option<Timestamp>,
    pub assignees: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunRow {
    pub id: String,
    pub template_key: String,
    pub template_version: u32,
    pub name: String,
    pub status: RunStatus,
    pub starter: String,
    pub started_at: Timestamp,
    pub updated_at: Timestamp,
    pub finished_at: Option<Timestamp>,
    /// Events in the run: its version for optimistic concurrency.
    pub version: u64,
    /// The projected state at `version`.
    #[serde(skip)]
    pub state: RunState,
}

/// A run as stored. The state is written only every few events (a snapshot),
/// so that the row each command rewrites stays small: `row.state` is the
/// snapshot, and `tail` holds the run's entries after it, in run order.
/// Folding `tail` over `row.state` gives the state at `row.version`.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRun {
    pub row: RunRow,
    pub tail: Vec<StoredEntry>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunFilter {
    pub template: Option<String>,
    pub status: Option<RunStatus>,
    /// Runs started before this run id (for cursor pagination, newest first).
    pub before: Option<String>,
    pub limit: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InboxRow {
    pub run_id: String,
    pub run_name: String,
    pub template_key: String,
    pub task_key: String,
    pub task_name: String,
    pub status: String,
    pub approval: bool,
    pub due_at: Option<Timestamp>,
}

/// An entry as stored: its position and canonical bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEntry {
    pub seq: u64,
    pub bytes: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckpointRow {
    pub size: u64,
    /// The signed note text, exactly as signed.
    pub note: String,
    pub created_at: Timestamp,
}

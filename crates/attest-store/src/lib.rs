//! The store: the narrow trait every persistence backend implements, the
//! ledger entry encoding they share, and the evidence blob store.
//!
//! This crate knows no SQL. Backends (`attest-store-sqlite`, later PostgreSQL)
//! implement [`Store`]; code above this trait never assumes a backend.

pub mod auth;
pub mod blob;
pub mod drafts;
pub mod entry;
pub mod hooks;
pub mod jobs;
pub mod metrics;
pub mod schedules;
pub mod search;
pub mod settings;
pub mod types;

pub use auth::{AuthStore, CredentialChange, IdempotentResponse, PasswordRow, SessionRow, TokenRow};
pub use blob::{BlobError, BlobStore, FsBlobStore};
pub use drafts::{DraftRow, DraftSave, DraftStore};
pub use entry::{EntryEvent, EventBytes, LedgerEntry, RunEntry};
pub use hooks::HookStore;
pub use jobs::{JobFilter, JobRow, JobState, JobStore, NewJob};
pub use metrics::{
    CompletionDay, ControlCountRow, ControlFact, CycleTimes, MetricScope, MetricsStore, OverdueCountRow, RunCountRow,
    RunFacts, TaskFact, TaskOutcome, TaskWaits,
};
pub use schedules::{ScheduleRow, ScheduleStore};
pub use search::{RunSearch, RunSearchStore, RunSummary};
pub use settings::SettingsStore;
pub use types::*;

use attest_engine::WorkspaceEvent;
use attest_ledger::Hash;

/// Everything that can go wrong in a store, in terms a caller can act on.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Someone else changed the same thing first; reload and try again.
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("not found: {0}")]
    NotFound(String),
    /// The data directory holds something this build cannot read.
    #[error("the database is damaged or from an unknown version: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Persistence for one workspace: events (which are the ledger's entries), the
/// Merkle tree over them, checkpoints, and the projections reads use.
///
/// Every write appends its events to the ledger and updates the projections
/// in one transaction: either all of it is durable or none of it is. The
/// metric facts are such a projection, so every backend keeps them.
pub trait Store: MetricsStore + Send + Sync + std::fmt::Debug {
    /// The workspace, once `attest init` has created it.
    fn workspace(&self) -> StoreResult<Option<WorkspaceInfo>>;

    /// Appends a workspace event with its projection change.
    fn write_workspace(&self, event: &WorkspaceEvent, change: &DirectoryChange) -> StoreResult<u64>;

    /// Appends the events of several runs in one transaction (group commit).
    /// Each commit is checked on its own: a run whose version moved gets
    /// `Err(conflict)` in its slot and writes nothing, the others still land.
    fn write_runs(&self, commits: &[RunCommit]) -> StoreResult<Vec<Result<(), String>>>;

    /// [`Self::write_runs`] for commits that arrive while earlier ones are
    /// written, each with its [`CommitBytes`], so that a caller can prepare
    /// the next commits on another thread. An `Err` from `commits` ends the
    /// transaction without committing any of it and is returned. The commits
    /// come back in the order they arrived, each with its outcome.
    fn write_runs_streamed(
        &self,
        commits: &mut dyn Iterator<Item = StoreResult<(RunCommit, CommitBytes)>>,
    ) -> StoreResult<Vec<(RunCommit, Result<(), String>)>>;

    /// Appends one run's events; a moved version is a [`StoreError::Conflict`].
    fn write_run(&self, commit: &RunCommit) -> StoreResult<()> {
        let results = self.write_runs(std::slice::from_ref(commit))?;
        match results.into_iter().next() {
            Some(Ok(())) => Ok(()),
            Some(Err(why)) => Err(StoreError::Conflict(why)),
            None => Err(StoreError::Other(anyhow::anyhow!("the store returned no result for a commit"))),
        }
    }

    fn user(&self, email: &str) -> StoreResult<Option<UserRow>>;
    fn users(&self) -> StoreResult<Vec<UserRow>>;

    fn template_version(&self, key: &str, version: Option<u32>) -> StoreResult<Option<TemplateVersionRow>>;
    fn template_versions(&self, key: &str) -> StoreResult<Vec<TemplateVersionRow>>;
    fn templates(&self) -> StoreResult<Vec<TemplateSummary>>;

    fn run(&self, run_id: &str) -> StoreResult<Option<StoredRun>>;
    fn run_events(&self, run_id: &str) -> StoreResult<Vec<StoredEntry>>;
    fn runs(&self, filter: &RunFilter) -> StoreResult<Vec<StoredRun>>;
    /// Open, visible tasks whose assignees include any of the principals.
    fn inbox(&self, principals: &[String]) -> StoreResult<Vec<InboxRow>>;

    /// Number of entries in the ledger.
    fn ledger_size(&self) -> StoreResult<u64>;
    /// Entries with `from <= seq < to`, in order.
    fn ledger_entries(&self, from: u64, to: u64) -> StoreResult<Vec<StoredEntry>>;
    fn ledger_root(&self, size: u64) -> StoreResult<Hash>;
    fn inclusion_proof(&self, index: u64, size: u64) -> StoreResult<Vec<Hash>>;
    fn consistency_proof(&self, old_size: u64, new_size: u64) -> StoreResult<Vec<Hash>>;
    /// The stored leaf hash at an index, as the tree holds it.
    fn ledger_leaf(&self, index: u64) -> StoreResult<Option<Hash>>;

    fn put_checkpoint(&self, checkpoint: &CheckpointRow) -> StoreResult<()>;
    fn checkpoints(&self) -> StoreResult<Vec<CheckpointRow>>;
}

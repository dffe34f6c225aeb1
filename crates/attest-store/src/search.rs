//! Finding runs by who may act on them and by overdue tasks: what the web
//! app's runs list filters on, beyond [`RunFilter`](crate::RunFilter).

use attest_engine::RunStatus;
use jiff::Timestamp;
use serde::Serialize;

use crate::{RunFilter, StoreResult};

/// A runs-list query: the plain filter plus the projection-backed ones.
#[derive(Debug, Clone, Default)]
pub struct RunSearch {
    pub filter: RunFilter,
    /// Only runs with an open task assigned to one of these principals
    /// (`user:EMAIL`, `role:KEY`).
    pub assigned_to: Option<Vec<String>>,
    /// Only open runs with an open task due before this instant.
    pub overdue_at: Option<Timestamp>,
}

/// A run as a list shows it: a [`RunRow`](crate::RunRow) without its state,
/// so that listing or exporting many runs reads no run's state.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunSummary {
    pub id: String,
    pub template_key: String,
    pub template_version: u32,
    pub name: String,
    pub status: RunStatus,
    pub starter: String,
    pub started_at: Timestamp,
    pub updated_at: Timestamp,
    pub finished_at: Option<Timestamp>,
    /// The run's own deadline, if it has one (a schedule's due period).
    pub due_at: Option<Timestamp>,
}

/// Run searches over the projections, newest first.
pub trait RunSearchStore: Send + Sync + std::fmt::Debug {
    fn search_runs(&self, query: &RunSearch) -> StoreResult<Vec<RunSummary>>;
}

//! Template drafts: a process owner's work in progress in the editor.
//!
//! Kept apart from [`crate::Store`] because a draft is not a fact of the
//! audit trail: it may be invalid, it changes with every save and it is
//! thrown away once published. Publishing goes through the ledger like any
//! other template version; the draft itself never does.

use jiff::Timestamp;

use crate::StoreResult;

/// A draft as stored: the template's YAML text, which may not validate yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DraftRow {
    pub id: String,
    /// The template key the draft names (its `key:`), for lists; may be empty.
    pub template_key: String,
    /// The display name the draft gives (its `name:`), for lists; may be empty.
    pub name: String,
    /// The published version the draft started from, if any.
    pub base_version: Option<u32>,
    /// The draft's YAML text.
    pub source: String,
    /// Counts saves, from 1: a save names the revision it edited, so two
    /// editors cannot overwrite each other unnoticed.
    pub revision: u64,
    pub created_by: String,
    pub created_at: Timestamp,
    pub updated_by: String,
    pub updated_at: Timestamp,
}

/// A change to a draft's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DraftSave<'a> {
    pub template_key: &'a str,
    pub name: &'a str,
    pub source: &'a str,
    pub by: &'a str,
    pub at: Timestamp,
}

pub trait DraftStore: Send + Sync + std::fmt::Debug {
    /// Stores a new draft; a conflict if the id exists.
    fn create_draft(&self, draft: &DraftRow) -> StoreResult<()>;

    fn draft(&self, id: &str) -> StoreResult<Option<DraftRow>>;

    /// Every draft, most recently changed first, without their sources' bulk
    /// mattering to the caller (`source` is left empty).
    fn drafts(&self) -> StoreResult<Vec<DraftRow>>;

    fn draft_count(&self) -> StoreResult<u64>;

    /// Replaces a draft's content if it is still at `expected_revision` and
    /// returns the new revision; a conflict if someone saved in between, not
    /// found if it is gone.
    fn save_draft(&self, id: &str, expected_revision: u64, save: &DraftSave<'_>) -> StoreResult<u64>;

    /// Removes a draft; not found if it is gone.
    fn delete_draft(&self, id: &str) -> StoreResult<()>;
}

//! Why writing a pack failed.

/// A failure to export a pack. Verification never fails this way: it
/// reports what it found (see [`crate::verify::Report`]).
#[derive(Debug, thiserror::Error)]
pub enum PackError {
    /// The workspace refused or failed (no such run, unreadable store, ...).
    #[error(transparent)]
    Core(#[from] attest_core::Error),
    /// A period or run argument the caller must fix.
    #[error("{0}")]
    BadInput(String),
    /// The data directory disagrees with its own ledger, so no honest pack can be made.
    #[error("{0}; run `attest audit verify` to see what was changed")]
    Damaged(String),
    /// The pack would break the limits every reader enforces.
    #[error("the pack would hold {files} files, more than the {max} a pack may hold: export a shorter period")]
    TooLarge { files: usize, max: usize },
    #[error("writing the pack failed: {0}")]
    Zip(#[from] zip::result::ZipError),
    #[error("writing the pack failed: {0}")]
    Io(#[from] std::io::Error),
}

impl From<attest_store::StoreError> for PackError {
    fn from(e: attest_store::StoreError) -> Self {
        PackError::Core(e.into())
    }
}

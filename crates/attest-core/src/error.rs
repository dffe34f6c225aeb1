//! One error type for the application boundary.

use attest_engine::{Refusal, Rule};
use attest_store::{BlobError, StoreError};
use attest_template::Diagnostic;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The engine refused the command under one of its rules.
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// Someone else changed the same run or record first.
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("{0}")]
    NotFound(String),
    /// A template that does not validate.
    #[error("the template is not valid:\n{}", .0.iter().map(|d| format!("  {d}")).collect::<Vec<_>>().join("\n"))]
    InvalidTemplate(Vec<Diagnostic>),
    /// Input the caller must fix: a malformed value, a missing file, a bad id.
    #[error("{0}")]
    BadInput(String),
    /// The data directory is not set up, or set up twice.
    #[error("{0}")]
    Setup(String),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// Whether the caller's input is at fault (as opposed to a rule or a race).
    pub fn is_bad_input(&self) -> bool {
        match self {
            Error::Refused(r) => matches!(
                r.rule,
                Rule::UnknownTask | Rule::UnknownField | Rule::FieldNotOnTask | Rule::InvalidValue | Rule::TooLarge
            ),
            Error::NotFound(_) | Error::InvalidTemplate(_) | Error::BadInput(_) | Error::Setup(_) => true,
            Error::Conflict(_) | Error::Other(_) => false,
        }
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(m) => Error::Conflict(m),
            StoreError::NotFound(m) => Error::NotFound(m),
            StoreError::Corrupt(m) => Error::Other(anyhow::anyhow!("the database is damaged: {m}")),
            StoreError::Other(e) => Error::Other(e),
        }
    }
}

impl From<BlobError> for Error {
    fn from(e: BlobError) -> Self {
        match e {
            BlobError::TooLarge { .. } | BlobError::BadHash(_) => Error::BadInput(e.to_string()),
            BlobError::Missing { .. } => Error::NotFound(e.to_string()),
            BlobError::Io(io) => Error::Other(io.into()),
        }
    }
}

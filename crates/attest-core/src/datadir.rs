//! The data directory: where one workspace keeps its database, evidence files
//! and signing key.

use std::path::{Path, PathBuf};

/// Paths inside a data directory. The layout is part of the backup contract:
/// copying the directory while the server is stopped copies the workspace.
#[derive(Debug, Clone)]
pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        DataDir { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn database(&self) -> PathBuf {
        self.root.join("attest.db")
    }

    pub fn files(&self) -> PathBuf {
        self.root.join("files")
    }

    pub fn keys(&self) -> PathBuf {
        self.root.join("keys")
    }

    /// The checkpoint signing key, readable by its owner only.
    pub fn signing_key(&self) -> PathBuf {
        self.keys().join("checkpoint.key")
    }

    pub fn exists(&self) -> bool {
        self.database().exists()
    }
}

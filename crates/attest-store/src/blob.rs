//! Evidence files, stored content-addressed by SHA-256.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("the file is larger than the limit of {limit_bytes} bytes")]
    TooLarge { limit_bytes: u64 },
    #[error("evidence file {sha256} is missing")]
    Missing { sha256: String },
    #[error("'{0}' is not a SHA-256 in hex")]
    BadHash(String),
    #[error("evidence storage failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Where evidence files live. Content addressing makes writes idempotent, so
/// a file stored before a failed transaction is harmless.
pub trait BlobStore: Send + Sync + std::fmt::Debug {
    /// Stores the content and returns its SHA-256 (hex) and size.
    fn put(&self, content: &mut dyn Read, limit_bytes: u64) -> Result<(String, u64), BlobError>;
    fn get(&self, sha256: &str) -> Result<Vec<u8>, BlobError>;
    fn path(&self, sha256: &str) -> Result<PathBuf, BlobError>;
}

/// Files under `DIR/ab/cdef…`, named by their hash.
#[derive(Debug, Clone)]
pub struct FsBlobStore {
    root: PathBuf,
}

impl FsBlobStore {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        FsBlobStore { root: root.into() }
    }
}

fn check_hash(sha256: &str) -> Result<(), BlobError> {
    if sha256.len() == 64 && sha256.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        Ok(())
    } else {
        Err(BlobError::BadHash(sha256.chars().take(80).collect()))
    }
}

impl BlobStore for FsBlobStore {
    fn put(&self, content: &mut dyn Read, limit_bytes: u64) -> Result<(String, u64), BlobError> {
        std::fs::create_dir_all(&self.root)?;
        let mut tmp = tempfile_in(&self.root)?;
        let mut hasher = Sha256::new();
        let mut size_bytes = 0u64;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = content.read(&mut buf)?;
            if n == 0 {
                break;
            }
            size_bytes += n as u64;
            if size_bytes > limit_bytes {
                let _ = std::fs::remove_file(&tmp.1);
                return Err(BlobError::TooLarge { limit_bytes });
            }
            hasher.update(&buf[..n]);
            tmp.0.write_all(&buf[..n])?;
        }
        tmp.0.sync_all()?;
        let sha256 = hex::encode(hasher.finalize());
        let dest = self.path(&sha256)?;
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::rename(&tmp.1, &dest)?;
        Ok((sha256, size_bytes))
    }

    fn get(&self, sha256: &str) -> Result<Vec<u8>, BlobError> {
        let path = self.path(sha256)?;
        std::fs::read(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => BlobError::Missing { sha256: sha256.to_string() },
            _ => BlobError::Io(e),
        })
    }

    fn path(&self, sha256: &str) -> Result<PathBuf, BlobError> {
        check_hash(sha256)?;
        Ok(self.root.join(&sha256[..2]).join(&sha256[2..]))
    }
}

fn tempfile_in(dir: &Path) -> Result<(std::fs::File, PathBuf), BlobError> {
    for attempt in 0..16u32 {
        let nanos =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
        let path = dir.join(format!(".upload-{}-{nanos}-{attempt}", std::process::id()));
        match std::fs::OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(f) => return Ok((f, path)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(BlobError::Io(std::io::Error::other("could not create a temporary file for the upload")))
}

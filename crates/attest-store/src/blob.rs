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
        let (mut file, tmp_path) = tempfile_in(&self.root)?;
        let (sha256, size_bytes) = match copy_hashed(content, &mut file, limit_bytes) {
            Ok(done) => done,
            Err(e) => {
                // A failed or refused upload leaves nothing behind.
                let _ = std::fs::remove_file(&tmp_path);
                return Err(e);
            }
        };
        let dest = self.path(&sha256)?;
        let parent = dest.parent().map_or_else(|| self.root.clone(), Path::to_path_buf);
        std::fs::create_dir_all(&parent)?;
        std::fs::rename(&tmp_path, &dest)?;
        // The rename is durable only once its directory is, and the ledger
        // names this file as soon as the transaction that follows commits.
        std::fs::File::open(&parent)?.sync_all()?;
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

/// Copies at most `limit_bytes` into `file`, fsyncs it, and returns the SHA-256 (hex) and size.
fn copy_hashed(content: &mut dyn Read, file: &mut std::fs::File, limit_bytes: u64) -> Result<(String, u64), BlobError> {
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
            return Err(BlobError::TooLarge { limit_bytes });
        }
        hasher.update(&buf[..n]);
        file.write_all(&buf[..n])?;
    }
    file.sync_all()?;
    Ok((hex::encode(hasher.finalize()), size_bytes))
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

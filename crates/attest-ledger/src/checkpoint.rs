//! C2SP tlog-checkpoint (<https://c2sp.org/tlog-checkpoint>): a signed tree
//! head.
//!
//! The body is the note text
//!
//! ```text
//! <origin>
//! <tree size, decimal, no leading zeros>
//! <base64 root hash>
//! [<extension line>]...
//! ```
//!
//! signed as a [signed note](crate::note). Attest requires the log key's name to
//! equal the origin (the spec says SHOULD): a key shared by two logs then
//! cannot pass one log's checkpoint off as the other's.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::Hash;
use crate::note::{self, NoteError};
pub use crate::note::{SignerKey, VerifierKey};

/// Longest origin line accepted, in bytes.
pub const MAX_ORIGIN_BYTES: usize = note::MAX_KEY_NAME_BYTES;

/// Most extension lines accepted.
pub const MAX_EXTENSION_LINES: usize = 16;

/// Longest extension line accepted, in bytes.
pub const MAX_EXTENSION_LINE_BYTES: usize = 1024;

/// A log's tree head: which log, how many leaves, and their root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's identity, e.g. `attest.example.com/ledger`; also the name of its key.
    pub origin: String,
    /// Number of leaves.
    pub size: u64,
    /// RFC 6962 root of the first `size` leaves.
    pub root: Hash,
    /// Opaque extra lines after the root; NOT RECOMMENDED by the spec.
    pub extension_lines: Vec<String>,
}

/// Why a checkpoint was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    /// The signed note around the body is invalid or not signed by the key.
    #[error(transparent)]
    Note(#[from] NoteError),
    /// The body breaks the tlog-checkpoint format.
    #[error("checkpoint body is malformed: {0}")]
    Malformed(&'static str),
    /// The origin does not name the key that must sign it.
    #[error("checkpoint origin {origin:?} differs from the log key name {key_name:?}")]
    OriginKeyMismatch { origin: String, key_name: String },
}

impl Checkpoint {
    /// The note text: origin, size and root lines, then extension lines.
    pub fn to_body(&self) -> Result<String, CheckpointError> {
        check_origin(&self.origin)?;
        check_extensions(self.extension_lines.iter().map(String::as_str))?;
        let mut body = format!("{}\n{}\n{}\n", self.origin, self.size, STANDARD.encode(self.root));
        for line in &self.extension_lines {
            body.push_str(line);
            body.push('\n');
        }
        Ok(body)
    }

    /// Parses a note text. The text is not authenticated: use [`open`] on notes.
    pub fn parse_body(text: &str) -> Result<Self, CheckpointError> {
        if text.len() > note::MAX_NOTE_BYTES {
            return Err(CheckpointError::Malformed("body is too large"));
        }
        let Some(text) = text.strip_suffix('\n') else {
            return Err(CheckpointError::Malformed("body must end with a newline"));
        };
        let mut lines = text.split('\n');
        let (Some(origin), Some(size), Some(root)) = (lines.next(), lines.next(), lines.next()) else {
            return Err(CheckpointError::Malformed("body must have origin, size and root lines"));
        };
        check_origin(origin)?;
        let size = parse_decimal(size)
            .ok_or(CheckpointError::Malformed("tree size must be a decimal u64 without leading zeros"))?;
        let root = decode_hash(root).ok_or(CheckpointError::Malformed("root must be the base64 of 32 bytes"))?;
        let extension_lines: Vec<&str> = lines.by_ref().take(MAX_EXTENSION_LINES + 1).collect();
        check_extensions(extension_lines.iter().copied())?;
        Ok(Self {
            origin: origin.to_owned(),
            size,
            root,
            extension_lines: extension_lines.into_iter().map(str::to_owned).collect(),
        })
    }
}

/// Signs `checkpoint` with the log key, whose name must equal the origin.
pub fn sign(checkpoint: &Checkpoint, signer: &SignerKey) -> Result<String, CheckpointError> {
    check_key_name(&checkpoint.origin, signer.name())?;
    Ok(note::sign(&checkpoint.to_body()?, &[signer])?)
}

/// Opens a checkpoint note: requires a valid signature by `verifier` (others
/// are ignored), then parses the body and checks that its origin is the key name.
pub fn open(note_text: impl AsRef<[u8]>, verifier: &VerifierKey) -> Result<Checkpoint, CheckpointError> {
    let body = note::open(note_text, verifier)?;
    let checkpoint = Checkpoint::parse_body(&body)?;
    check_key_name(&checkpoint.origin, verifier.name())?;
    Ok(checkpoint)
}

/// Parses an ASCII decimal `u64` with no sign and no leading zeros.
pub(crate) fn parse_decimal(text: &str) -> Option<u64> {
    let canonical = !text.is_empty()
        && text.len() <= 20
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'));
    if canonical { text.parse().ok() } else { None }
}

/// Decodes the standard base64 of exactly 32 bytes.
pub(crate) fn decode_hash(text: &str) -> Option<Hash> {
    if text.len() != 44 {
        return None;
    }
    STANDARD.decode(text).ok()?.try_into().ok()
}

fn check_origin(origin: &str) -> Result<(), CheckpointError> {
    if origin.is_empty() || origin.len() > MAX_ORIGIN_BYTES {
        return Err(CheckpointError::Malformed("origin must be 1 to 256 bytes"));
    }
    if origin.chars().any(char::is_control) {
        return Err(CheckpointError::Malformed("origin must not hold control characters"));
    }
    Ok(())
}

fn check_extensions<'a>(lines: impl ExactSizeIterator<Item = &'a str>) -> Result<(), CheckpointError> {
    if lines.len() > MAX_EXTENSION_LINES {
        return Err(CheckpointError::Malformed("more than 16 extension lines"));
    }
    for line in lines {
        if line.is_empty() || line.len() > MAX_EXTENSION_LINE_BYTES {
            return Err(CheckpointError::Malformed("extension lines must be 1 to 1024 bytes"));
        }
        if line.chars().any(char::is_control) {
            return Err(CheckpointError::Malformed("extension lines must not hold control characters"));
        }
    }
    Ok(())
}

fn check_key_name(origin: &str, key_name: &str) -> Result<(), CheckpointError> {
    if origin == key_name {
        Ok(())
    } else {
        Err(CheckpointError::OriginKeyMismatch { origin: origin.to_owned(), key_name: key_name.to_owned() })
    }
}

//! C2SP tlog-proof (<https://c2sp.org/tlog-proof>): an offline-verifiable
//! proof that an entry is in the log.
//!
//! ```text
//! c2sp.org/tlog-proof@v1
//! extra <base64>            (optional, unauthenticated)
//! index <decimal>
//! <base64 hash>             (zero or more: the inclusion proof, leaf side first)
//!
//! <checkpoint note, verbatim>
//! ```

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::Hash;
use crate::checkpoint::{self, Checkpoint, CheckpointError, decode_hash, parse_decimal};
use crate::note::{MAX_NOTE_BYTES, VerifierKey};
use crate::verify::{MAX_INCLUSION_PROOF_HASHES, ProofError, verify_inclusion};

/// First line of every proof file.
pub const HEADER: &str = "c2sp.org/tlog-proof@v1";

/// Largest extra data accepted, in bytes before base64.
pub const MAX_EXTRA_BYTES: usize = 4096;

/// Largest proof file accepted: the checkpoint note plus room for the header,
/// the extra line, the index and the longest inclusion proof.
pub const MAX_PROOF_FILE_BYTES: usize = MAX_NOTE_BYTES + 16 * 1024;

/// A parsed proof file. Nothing in it is trusted before [`ProofFile::verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProofFile {
    /// Opaque application data; not authenticated by the log.
    pub extra: Option<Vec<u8>>,
    /// Index of the entry in the log.
    pub index: u64,
    /// Inclusion proof for the entry in the checkpoint's tree.
    pub inclusion_proof: Vec<Hash>,
    /// The signed checkpoint note, verbatim, ending in a newline.
    pub checkpoint_note: String,
}

/// Why a proof file was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofFileError {
    /// The file exceeds [`MAX_PROOF_FILE_BYTES`].
    #[error("proof file is {len} bytes, more than the {max} accepted")]
    TooLarge { len: usize, max: usize },
    /// The file is not UTF-8.
    #[error("proof file is not valid UTF-8")]
    NotUtf8,
    /// The file breaks the tlog-proof format.
    #[error("proof file is malformed: {0}")]
    Malformed(&'static str),
    /// More proof lines than any tree of fewer than 2^64 leaves needs.
    #[error("proof file has more than {max} inclusion proof lines")]
    TooManyHashes { max: usize },
    /// Inclusion proof line `line` (1-based) is not the base64 of 32 bytes.
    #[error("inclusion proof line {line} is not the base64 of a 32-byte hash")]
    BadHash { line: usize },
    /// The embedded checkpoint is invalid or not signed by the log key.
    #[error("the proof file's checkpoint is rejected")]
    Checkpoint(#[from] CheckpointError),
    /// The inclusion proof does not hold against the checkpoint.
    #[error("the inclusion proof does not hold against the checkpoint")]
    Proof(#[from] ProofError),
}

impl ProofFile {
    /// Parses a proof file; bounds sizes and line counts before decoding.
    pub fn parse(input: impl AsRef<[u8]>) -> Result<Self, ProofFileError> {
        let input = input.as_ref();
        if input.len() > MAX_PROOF_FILE_BYTES {
            return Err(ProofFileError::TooLarge { len: input.len(), max: MAX_PROOF_FILE_BYTES });
        }
        let text = std::str::from_utf8(input).map_err(|_| ProofFileError::NotUtf8)?;
        // Proof lines are never empty, so the first blank line ends them; the
        // checkpoint note that follows has blank lines of its own.
        let (head, checkpoint_note) = text
            .split_once("\n\n")
            .ok_or(ProofFileError::Malformed("no blank line between the proof and the checkpoint"))?;
        if checkpoint_note.is_empty() || checkpoint_note.len() > MAX_NOTE_BYTES {
            return Err(ProofFileError::Malformed("the checkpoint note is empty or larger than a note may be"));
        }
        let mut lines = head.split('\n');
        if lines.next() != Some(HEADER) {
            return Err(ProofFileError::Malformed("the first line must be c2sp.org/tlog-proof@v1"));
        }
        let mut line = lines.next();
        let extra = match line.and_then(|l| l.strip_prefix("extra ")) {
            Some(encoded) => {
                line = lines.next();
                Some(decode_extra(encoded)?)
            }
            None => None,
        };
        let index = line
            .and_then(|l| l.strip_prefix("index "))
            .and_then(parse_decimal)
            .ok_or(ProofFileError::Malformed("expected `index N` with N a decimal u64 without leading zeros"))?;
        let hash_lines: Vec<&str> = lines.take(MAX_INCLUSION_PROOF_HASHES + 1).collect();
        if hash_lines.len() > MAX_INCLUSION_PROOF_HASHES {
            return Err(ProofFileError::TooManyHashes { max: MAX_INCLUSION_PROOF_HASHES });
        }
        let inclusion_proof = hash_lines
            .iter()
            .enumerate()
            .map(|(number, line)| decode_hash(line).ok_or(ProofFileError::BadHash { line: number + 1 }))
            .collect::<Result<_, _>>()?;
        Ok(Self { extra, index, inclusion_proof, checkpoint_note: checkpoint_note.to_owned() })
    }

    /// The file's text; refuses values that would not parse back.
    pub fn to_text(&self) -> Result<String, ProofFileError> {
        if self.inclusion_proof.len() > MAX_INCLUSION_PROOF_HASHES {
            return Err(ProofFileError::TooManyHashes { max: MAX_INCLUSION_PROOF_HASHES });
        }
        if self.extra.as_ref().is_some_and(|extra| extra.len() > MAX_EXTRA_BYTES) {
            return Err(ProofFileError::Malformed("extra data is larger than 4096 bytes"));
        }
        if self.checkpoint_note.is_empty() || self.checkpoint_note.len() > MAX_NOTE_BYTES {
            return Err(ProofFileError::Malformed("the checkpoint note is empty or larger than a note may be"));
        }
        let mut text = format!("{HEADER}\n");
        if let Some(extra) = &self.extra {
            text.push_str(&format!("extra {}\n", STANDARD.encode(extra)));
        }
        text.push_str(&format!("index {}\n", self.index));
        for hash in &self.inclusion_proof {
            text.push_str(&STANDARD.encode(hash));
            text.push('\n');
        }
        text.push('\n');
        text.push_str(&self.checkpoint_note);
        Ok(text)
    }

    /// Verifies the file for the entry with leaf hash `leaf`: the checkpoint
    /// must be signed by `log_key` and the proof must lead from the leaf at
    /// `index` to its root. Returns the checkpoint.
    pub fn verify(&self, leaf: &Hash, log_key: &VerifierKey) -> Result<Checkpoint, ProofFileError> {
        let checkpoint = checkpoint::open(&self.checkpoint_note, log_key)?;
        verify_inclusion(leaf, self.index, checkpoint.size, &self.inclusion_proof, &checkpoint.root)?;
        Ok(checkpoint)
    }
}

fn decode_extra(encoded: &str) -> Result<Vec<u8>, ProofFileError> {
    let too_large = ProofFileError::Malformed("extra data is larger than 4096 bytes");
    if encoded.len() > MAX_EXTRA_BYTES.div_ceil(3) * 4 {
        return Err(too_large);
    }
    let extra = STANDARD.decode(encoded).map_err(|_| ProofFileError::Malformed("extra data is not standard base64"))?;
    if extra.len() > MAX_EXTRA_BYTES {
        return Err(too_large);
    }
    Ok(extra)
}

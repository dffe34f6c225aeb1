//! The pack's layout: file names and the manifest.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// The manifest's `format`; a reader refuses any other.
pub const FORMAT: &str = "attest-evidence-pack/v1";

pub const MANIFEST: &str = "manifest.json";
/// The template version of a run pack.
pub const TEMPLATE: &str = "template.json";
/// The verifier key, as `attest audit key` prints it.
pub const KEY: &str = "key.txt";
pub const SUMMARY: &str = "summary.html";
/// The one checkpoint every proof of a run pack is against.
pub const CHECKPOINT: &str = "checkpoint.txt";
/// A period pack's checkpoint at or before the period's first entry.
pub const CHECKPOINT_START: &str = "checkpoint-start.txt";
/// A period pack's checkpoint after the period; every proof is against it.
pub const CHECKPOINT_END: &str = "checkpoint-end.txt";
/// The consistency proof from the start checkpoint to the end checkpoint.
pub const CONSISTENCY: &str = "consistency.txt";

pub const EVENTS_DIR: &str = "events/";
pub const PROOFS_DIR: &str = "proofs/";
pub const FILES_DIR: &str = "files/";
pub const TEMPLATES_DIR: &str = "templates/";

/// Most files a pack may hold; a period with more entries is exported in parts.
pub const MAX_ENTRIES: usize = 1_000_000;
/// Largest single file once decompressed: an evidence file (100 MiB) with room to spare.
pub const MAX_ENTRY_BYTES: u64 = 128 * 1024 * 1024;
/// Largest total of all files once decompressed.
pub const MAX_TOTAL_BYTES: u64 = 16 * 1024 * 1024 * 1024;
/// Largest total of the files a reader keeps in memory (everything but the
/// evidence files and the summary, which are only hashed).
pub const MAX_KEPT_BYTES: u64 = 1024 * 1024 * 1024;
/// Longest file name accepted.
pub const MAX_NAME_BYTES: usize = 200;

/// `events/NNNNNN.json`: the canonical bytes of ledger entry NNNNNN.
pub fn event_path(seq: u64) -> String {
    format!("{EVENTS_DIR}{seq:06}.json")
}

/// `proofs/NNNNNN.tlog-proof`: the inclusion proof of entry NNNNNN.
pub fn proof_path(seq: u64) -> String {
    format!("{PROOFS_DIR}{seq:06}.tlog-proof")
}

/// `files/<sha256>`: an evidence file, named by the hex SHA-256 of its content.
pub fn file_path(sha256: &str) -> String {
    format!("{FILES_DIR}{sha256}")
}

/// `templates/<hex content hash>.json`: a template version of a period pack.
pub fn template_path(content_hash: &str) -> String {
    format!("{TEMPLATES_DIR}{}.json", content_hash.strip_prefix("sha256:").unwrap_or(content_hash))
}

/// The sequence number an `events/` or `proofs/` name stands for: six or more
/// decimal digits, no sign, zero-padded to exactly six when smaller.
pub fn seq_of(name: &str, dir: &str, ext: &str) -> Option<u64> {
    let digits = name.strip_prefix(dir)?.strip_suffix(ext)?;
    let seq: u64 = digits.parse().ok()?;
    (digits.bytes().all(|b| b.is_ascii_digit()) && format!("{seq:06}") == digits).then_some(seq)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PackKind {
    /// Every event of one run.
    Run,
    /// Every entry of the ledger in a time period.
    Period,
}

/// `manifest.json`. It is not signed: every claim in it that matters is
/// checked against the signed checkpoints, the proofs and the hashes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format: String,
    pub kind: PackKind,
    /// The log's origin: the name of the checkpoint key.
    pub origin: String,
    pub workspace: String,
    pub created_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<RunInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<PeriodInfo>,
    pub checkpoints: Vec<CheckpointRef>,
    pub templates: Vec<TemplateRef>,
    /// Every file of the pack but the manifest, with its SHA-256.
    pub files: Vec<FileEntry>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunInfo {
    pub id: String,
    pub name: String,
    pub template: String,
    pub version: u32,
    /// The run's events in the pack: all it had when the checkpoint was signed.
    pub events: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeriodInfo {
    /// First instant of the period, inclusive.
    pub from: Timestamp,
    /// Last instant of the period, inclusive.
    pub to: Timestamp,
    /// The first ledger entry of the period.
    pub first_seq: u64,
    /// One past the last ledger entry of the period.
    pub end_seq: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointRef {
    pub path: String,
    pub size: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateRef {
    pub key: String,
    pub version: u32,
    pub content_hash: String,
    pub path: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    pub path: String,
    pub sha256: String,
    pub size: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_names_round_trip() {
        assert_eq!(seq_of(&event_path(17), EVENTS_DIR, ".json"), Some(17));
        assert_eq!(seq_of(&proof_path(1_234_567), PROOFS_DIR, ".tlog-proof"), Some(1_234_567));
        assert_eq!(seq_of("events/17.json", EVENTS_DIR, ".json"), None);
        assert_eq!(seq_of("events/+00017.json", EVENTS_DIR, ".json"), None);
        assert_eq!(seq_of("events/0000017.json", EVENTS_DIR, ".json"), None);
    }
}

//! Verifying a pack offline, from its bytes and a key alone.
//!
//! Nothing in the manifest is trusted: it only says where to look. Entries
//! are trusted because their proofs lead to a root the key signed; templates
//! because their content hash is the one the signed `run_started` records;
//! evidence files because their hash is the one the signed
//! `evidence_attached` records. Every problem found is reported with its
//! kind and, where there is one, the ledger index and the file concerned.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Seek};
use std::sync::Arc;

use attest_engine::{CompiledTemplate, Event, EventBody, WorkspaceEventBody};
use attest_ledger::checkpoint::{self, Checkpoint, VerifierKey};
use attest_ledger::proof_file::ProofFile;
use attest_ledger::verify::{verify_consistency, verify_inclusion};
use attest_store::{EntryEvent, LedgerEntry};
use attest_template::SourceFormat;
use jiff::Timestamp;
use serde::Serialize;

use crate::consistency::ConsistencyFile;
use crate::layout::{self, EVENTS_DIR, FILES_DIR, Manifest, PROOFS_DIR, PackKind, PeriodInfo, RunInfo, seq_of};
use crate::read::{Archive, read_archive};
use crate::replay;

/// Failures recorded in full; past this only their number is kept.
const MAX_RECORDED_FAILURES: usize = 100;

/// What kind of problem a failure is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailureKind {
    /// The zip itself is unreadable or breaks the pack's limits.
    Archive,
    /// `manifest.json` is missing, malformed or contradicts the pack.
    Manifest,
    /// A file the manifest lists is absent.
    FileMissing,
    /// A file's SHA-256 or size differs from the manifest's.
    FileHash,
    /// A file is in the zip but not in the manifest.
    FileUnlisted,
    /// No usable key, or the log announces another key.
    Key,
    /// A checkpoint is not signed by the key.
    Signature,
    /// A checkpoint's size or origin contradicts the pack.
    Checkpoint,
    /// An event file is unreadable, not canonical, or not where its index says.
    Event,
    /// A proof file is missing, malformed, or for another index or checkpoint.
    Proof,
    /// An inclusion proof does not lead from the entry to the signed root.
    Inclusion,
    /// Entries that must be in the pack are missing.
    Gap,
    /// The period's first or last entry is not where the period begins or ends.
    Boundary,
    /// The consistency proof between the period's checkpoints fails.
    Consistency,
    /// A template is missing, invalid, or not the version the run was decided on.
    Template,
    /// An evidence file is missing, replaced, or attached by no event.
    Evidence,
    /// Re-executing a run through the engine refuses a command or gives other events.
    Rule,
}

impl FailureKind {
    pub fn name(self) -> &'static str {
        match self {
            FailureKind::Archive => "archive",
            FailureKind::Manifest => "manifest",
            FailureKind::FileMissing => "file-missing",
            FailureKind::FileHash => "file-hash",
            FailureKind::FileUnlisted => "file-unlisted",
            FailureKind::Key => "key",
            FailureKind::Signature => "signature",
            FailureKind::Checkpoint => "checkpoint",
            FailureKind::Event => "event",
            FailureKind::Proof => "proof",
            FailureKind::Inclusion => "inclusion",
            FailureKind::Gap => "gap",
            FailureKind::Boundary => "boundary",
            FailureKind::Consistency => "consistency",
            FailureKind::Template => "template",
            FailureKind::Evidence => "evidence",
            FailureKind::Rule => "rule",
        }
    }
}

impl std::fmt::Display for FailureKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One problem found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    pub kind: FailureKind,
    /// The ledger index concerned, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<u64>,
    /// The file of the pack concerned, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    pub message: String,
}

/// Where the key that was trusted came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KeySource {
    /// Given by the caller (`--key`).
    Given,
    /// Read from the pack's own `key.txt`, which proves only self-consistency.
    Pack,
}

/// A run whose every command the engine decided again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunChecked {
    pub id: String,
    pub template: String,
    pub version: u32,
    pub events: usize,
    pub commands: usize,
    pub status: String,
}

/// What was verified and what failed.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub kind: Option<PackKind>,
    pub key: Option<String>,
    pub key_source: Option<KeySource>,
    /// Files whose hash and size match the manifest.
    pub files: usize,
    /// Entries that are canonical and sit at their index.
    pub events: usize,
    /// Inclusion proofs that lead to the signed root.
    pub proofs: usize,
    /// Checkpoints whose signature verifies, with their sizes.
    pub checkpoints: Vec<(String, u64)>,
    /// The sizes a verified consistency proof links.
    pub consistency: Option<(u64, u64)>,
    pub templates: usize,
    /// Evidence files whose hash is the one their event records.
    pub evidence_files: usize,
    pub runs: Vec<RunChecked>,
    pub warnings: Vec<String>,
    pub failures: Vec<Failure>,
    /// Failures past the first hundred, counted only.
    pub more_failures: usize,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.failures.is_empty()
    }

    fn fail(&mut self, kind: FailureKind, index: Option<u64>, path: Option<&str>, message: String) {
        if self.failures.len() < MAX_RECORDED_FAILURES {
            self.failures.push(Failure { kind, index, path: path.map(str::to_string), message });
        } else {
            self.more_failures += 1;
        }
    }
}

/// Verifies a pack. With no `key`, the pack's own `key.txt` is used and the
/// report warns that it must be compared with the workspace's published key.
pub fn verify<R: Read + Seek>(reader: R, key: Option<&VerifierKey>) -> Report {
    let mut report = Report::default();
    let archive = match read_archive(reader) {
        Ok(archive) => archive,
        Err(e) => {
            report.fail(FailureKind::Archive, None, None, e.to_string());
            return report;
        }
    };
    let Some(manifest) = read_manifest(&archive, &mut report) else {
        return report;
    };
    report.kind = Some(manifest.kind);
    check_files(&archive, &manifest, &mut report);
    let Some(key) = choose_key(&archive, key, &mut report) else {
        return report;
    };
    let checkpoints = open_checkpoints(&archive, &manifest, &key, &mut report);
    let proof_checkpoint = match manifest.kind {
        PackKind::Run => layout::CHECKPOINT,
        PackKind::Period => layout::CHECKPOINT_END,
    };
    let proof_checkpoint = checkpoints.get(proof_checkpoint);
    if proof_checkpoint.is_none() {
        report.fail(
            FailureKind::Inclusion,
            None,
            None,
            "no inclusion proof could be checked: the checkpoint they are against did not verify".into(),
        );
    }
    let entries = check_entries(&archive, proof_checkpoint, &mut report);
    if let Some(announced) = announced_key(&entries)
        && announced != key.to_string()
    {
        report.fail(
            FailureKind::Key,
            Some(0),
            Some(&layout::event_path(0)),
            format!("the log announces the key {announced}, not the key being trusted"),
        );
    }
    let replayable = match (manifest.kind, &manifest.run, &manifest.period) {
        (PackKind::Run, Some(run), _) => check_run_structure(&entries, run, &mut report),
        (PackKind::Period, _, Some(period)) => {
            check_period_structure(&archive, &entries, period, &checkpoints, &mut report)
        }
        _ => {
            report.fail(
                FailureKind::Manifest,
                None,
                Some(layout::MANIFEST),
                "the manifest's kind lacks its run or period".into(),
            );
            BTreeSet::new()
        }
    };
    let templates = load_templates(&archive, &manifest, &mut report);
    reexecute_runs(&entries, &replayable, &templates, &mut report);
    check_evidence(&archive, &entries, &mut report);
    report
}

fn read_manifest(archive: &Archive, report: &mut Report) -> Option<Manifest> {
    let Some(bytes) = archive.bytes(layout::MANIFEST) else {
        report.fail(FailureKind::Manifest, None, Some(layout::MANIFEST), "the pack has no manifest.json".into());
        return None;
    };
    let manifest: Manifest = match serde_json::from_slice(bytes) {
        Ok(m) => m,
        Err(e) => {
            report.fail(
                FailureKind::Manifest,
                None,
                Some(layout::MANIFEST),
                format!("manifest.json is not a pack manifest: {e}"),
            );
            return None;
        }
    };
    if manifest.format != layout::FORMAT {
        report.fail(
            FailureKind::Manifest,
            None,
            Some(layout::MANIFEST),
            format!("the pack's format is {:?}; this verifier reads {}", manifest.format, layout::FORMAT),
        );
        return None;
    }
    Some(manifest)
}

/// Every listed file is present with its hash and size; nothing is unlisted.
fn check_files(archive: &Archive, manifest: &Manifest, report: &mut Report) {
    let mut listed = BTreeSet::new();
    for file in &manifest.files {
        if !listed.insert(file.path.as_str()) {
            report.fail(
                FailureKind::Manifest,
                None,
                Some(&file.path),
                format!("the manifest lists {} twice", file.path),
            );
            continue;
        }
        match archive.entries.get(&file.path) {
            None => report.fail(
                FailureKind::FileMissing,
                None,
                Some(&file.path),
                format!("{} is listed in the manifest but missing from the pack", file.path),
            ),
            Some(entry) if entry.sha256 != file.sha256 || entry.size != file.size => report.fail(
                FailureKind::FileHash,
                None,
                Some(&file.path),
                format!(
                    "{} has SHA-256 {} ({} bytes), but the manifest lists {} ({} bytes)",
                    file.path, entry.sha256, entry.size, file.sha256, file.size
                ),
            ),
            Some(_) => report.files += 1,
        }
    }
    for name in archive.entries.keys() {
        if name != layout::MANIFEST && !listed.contains(name.as_str()) {
            report.fail(
                FailureKind::FileUnlisted,
                None,
                Some(name),
                format!("{name} is in the pack but not in its manifest"),
            );
        }
    }
}

fn choose_key(archive: &Archive, given: Option<&VerifierKey>, report: &mut Report) -> Option<VerifierKey> {
    let in_pack = archive.bytes(layout::KEY).and_then(|b| std::str::from_utf8(b).ok()).map(str::trim);
    let (key, source) = match given {
        Some(key) => (key.clone(), KeySource::Given),
        None => {
            let Some(text) = in_pack else {
                report.fail(
                    FailureKind::Key,
                    None,
                    Some(layout::KEY),
                    "the pack has no key.txt and no --key was given".into(),
                );
                return None;
            };
            match VerifierKey::parse(text) {
                Ok(key) => {
                    report.warnings.push(format!(
                        "the key was taken from the pack's key.txt; a pack can only prove it is consistent with its own \
                         key, so compare {key} with the key the workspace publishes (`attest audit key`) or pass --key"
                    ));
                    (key, KeySource::Pack)
                }
                Err(e) => {
                    report.fail(
                        FailureKind::Key,
                        None,
                        Some(layout::KEY),
                        format!("key.txt is not a verifier key: {e}"),
                    );
                    return None;
                }
            }
        }
    };
    if source == KeySource::Given && in_pack.is_some_and(|text| text != key.to_string()) {
        report.warnings.push("the pack's key.txt differs from the key given; the given key is the one trusted".into());
    }
    report.key = Some(key.to_string());
    report.key_source = Some(source);
    Some(key)
}

/// Opens every checkpoint the manifest lists; returns those that verify, with their note.
fn open_checkpoints(
    archive: &Archive,
    manifest: &Manifest,
    key: &VerifierKey,
    report: &mut Report,
) -> BTreeMap<&'static str, (Checkpoint, String)> {
    let allowed: &[&'static str] = match manifest.kind {
        PackKind::Run => &[layout::CHECKPOINT],
        PackKind::Period => &[layout::CHECKPOINT_START, layout::CHECKPOINT_END],
    };
    let mut opened = BTreeMap::new();
    for cref in &manifest.checkpoints {
        let Some(&path) = allowed.iter().find(|p| **p == cref.path) else {
            report.fail(
                FailureKind::Manifest,
                None,
                Some(&cref.path),
                format!("{} is not a checkpoint file of this kind of pack", cref.path),
            );
            continue;
        };
        let Some(note) = archive.bytes(path) else {
            report.fail(FailureKind::FileMissing, None, Some(path), format!("{path} is missing from the pack"));
            continue;
        };
        match checkpoint::open(note, key) {
            Err(e) => report.fail(
                FailureKind::Signature,
                None,
                Some(path),
                format!("{path} does not verify with key {key}: {e}"),
            ),
            Ok(cp) if cp.size != cref.size => report.fail(
                FailureKind::Checkpoint,
                None,
                Some(path),
                format!("{path} signs size {}, but the manifest says {}", cp.size, cref.size),
            ),
            Ok(cp) if cp.origin != manifest.origin => report.fail(
                FailureKind::Checkpoint,
                None,
                Some(path),
                format!("{path} is from log {:?}, but the manifest names {:?}", cp.origin, manifest.origin),
            ),
            Ok(cp) => {
                report.checkpoints.push((path.to_string(), cp.size));
                opened.insert(path, (cp, String::from_utf8_lossy(note).into_owned()));
            }
        }
    }
    for path in allowed {
        let required = *path != layout::CHECKPOINT_START;
        if required && !manifest.checkpoints.iter().any(|c| c.path == *path) {
            report.fail(FailureKind::Manifest, None, Some(path), format!("the manifest lists no {path}"));
        }
    }
    opened
}

/// Reads every entry with its proof; returns the readable entries by index.
fn check_entries(
    archive: &Archive,
    checkpoint: Option<&(Checkpoint, String)>,
    report: &mut Report,
) -> BTreeMap<u64, LedgerEntry> {
    let mut events = BTreeSet::new();
    let mut proofs = BTreeSet::new();
    for name in archive.entries.keys() {
        if name.starts_with(EVENTS_DIR) {
            match seq_of(name, EVENTS_DIR, ".json") {
                Some(seq) => {
                    events.insert(seq);
                }
                None => {
                    report.fail(FailureKind::Event, None, Some(name), format!("{name} is not named events/NNNNNN.json"))
                }
            }
        } else if name.starts_with(PROOFS_DIR) {
            match seq_of(name, PROOFS_DIR, ".tlog-proof") {
                Some(seq) => {
                    proofs.insert(seq);
                }
                None => report.fail(
                    FailureKind::Proof,
                    None,
                    Some(name),
                    format!("{name} is not named proofs/NNNNNN.tlog-proof"),
                ),
            }
        }
    }
    for seq in proofs.difference(&events) {
        let path = layout::proof_path(*seq);
        report.fail(
            FailureKind::Gap,
            Some(*seq),
            Some(&path),
            format!("{path} proves entry {seq}, which the pack lacks"),
        );
    }
    let mut entries = BTreeMap::new();
    for seq in events {
        let path = layout::event_path(seq);
        let Some(bytes) = archive.bytes(&path) else { continue };
        let entry = match LedgerEntry::decode(bytes) {
            Ok(entry) => entry,
            Err(e) => {
                report.fail(
                    FailureKind::Event,
                    Some(seq),
                    Some(&path),
                    format!("entry {seq} is not a readable event: {e}"),
                );
                continue;
            }
        };
        let mut sound = true;
        if !entry.encode().is_ok_and(|canonical| canonical == bytes) {
            report.fail(
                FailureKind::Event,
                Some(seq),
                Some(&path),
                format!("entry {seq} is not in RFC 8785 canonical form"),
            );
            sound = false;
        }
        if entry.seq != seq {
            report.fail(
                FailureKind::Event,
                Some(seq),
                Some(&path),
                format!("{path} holds entry {}, not entry {seq}: entries were moved or reordered", entry.seq),
            );
            sound = false;
        }
        if sound {
            report.events += 1;
        }
        check_proof(archive, seq, bytes, checkpoint, report);
        entries.insert(seq, entry);
    }
    entries
}

fn check_proof(
    archive: &Archive,
    seq: u64,
    bytes: &[u8],
    checkpoint: Option<&(Checkpoint, String)>,
    report: &mut Report,
) {
    let path = layout::proof_path(seq);
    let Some(text) = archive.bytes(&path) else {
        report.fail(FailureKind::Proof, Some(seq), Some(&path), format!("entry {seq} has no inclusion proof {path}"));
        return;
    };
    let proof = match ProofFile::parse(text) {
        Ok(proof) => proof,
        Err(e) => {
            report.fail(FailureKind::Proof, Some(seq), Some(&path), format!("{path} is not a C2SP tlog-proof: {e}"));
            return;
        }
    };
    if proof.index != seq {
        report.fail(
            FailureKind::Proof,
            Some(seq),
            Some(&path),
            format!("{path} proves index {}, not {seq}", proof.index),
        );
        return;
    }
    let Some((cp, note)) = checkpoint else { return };
    if proof.checkpoint_note != *note {
        report.fail(
            FailureKind::Proof,
            Some(seq),
            Some(&path),
            format!("{path} is against a different checkpoint than the pack's signed one"),
        );
        return;
    }
    let leaf = attest_ledger::leaf_hash(bytes);
    match verify_inclusion(&leaf, seq, cp.size, &proof.inclusion_proof, &cp.root) {
        Ok(()) => report.proofs += 1,
        Err(e) => report.fail(
            FailureKind::Inclusion,
            Some(seq),
            Some(&path),
            format!("entry {seq} is not in the signed log of {} entries: {e}", cp.size),
        ),
    }
}

fn announced_key(entries: &BTreeMap<u64, LedgerEntry>) -> Option<&str> {
    match &entries.get(&0)?.event {
        EntryEvent::Workspace(w) => match &w.body {
            WorkspaceEventBody::WorkspaceCreated { verifier_key, .. } => Some(verifier_key.as_str()),
            _ => None,
        },
        EntryEvent::Run(_) => None,
    }
}

/// A run pack holds exactly the run's events, from `run_started` on, with no
/// gap. Returns the run to re-execute.
fn check_run_structure(entries: &BTreeMap<u64, LedgerEntry>, run: &RunInfo, report: &mut Report) -> BTreeSet<String> {
    let mut expected_run_seq = 0u64;
    for (seq, entry) in entries {
        let path = layout::event_path(*seq);
        if entry.run.as_deref() != Some(run.id.as_str()) || !matches!(entry.event, EntryEvent::Run(_)) {
            report.fail(
                FailureKind::Event,
                Some(*seq),
                Some(&path),
                format!("entry {seq} is not an event of run {}", run.id),
            );
            continue;
        }
        match entry.run_seq {
            Some(n) if n == expected_run_seq => {}
            Some(n) if n > expected_run_seq => report.fail(
                FailureKind::Gap,
                Some(*seq),
                Some(&path),
                format!("events {expected_run_seq} to {} of run {} are missing before entry {seq}", n - 1, run.id),
            ),
            other => report.fail(
                FailureKind::Event,
                Some(*seq),
                Some(&path),
                format!("entry {seq} is event {other:?} of the run, out of order (expected {expected_run_seq})"),
            ),
        }
        expected_run_seq = entry.run_seq.map_or(expected_run_seq, |n| n.max(expected_run_seq)).saturating_add(1);
    }
    if entries.len() as u64 != run.events {
        report.fail(
            FailureKind::Gap,
            None,
            Some(layout::MANIFEST),
            format!("the manifest says run {} has {} events, but the pack holds {}", run.id, run.events, entries.len()),
        );
    }
    let finished = entries.values().last().is_some_and(|e| {
        matches!(&e.event, EntryEvent::Run(ev) if matches!(ev.body, EventBody::RunCompleted {} | EventBody::RunCancelled { .. }))
    });
    if !finished {
        report.warnings.push(format!(
            "run {} was still open when the checkpoint was signed: the pack proves its events up to then, \
             and later events, if any, are not in it",
            run.id
        ));
    }
    BTreeSet::from([run.id.clone()])
}

fn entry_at(entry: &LedgerEntry) -> Timestamp {
    match &entry.event {
        EntryEvent::Run(e) => e.at,
        EntryEvent::Workspace(e) => e.at,
    }
}

/// A period pack holds every entry of `[first_seq, end_seq)`, bounded by
/// entries outside the period, and the consistency proof between its
/// checkpoints. Returns the runs to re-execute: those the period touches.
fn check_period_structure(
    archive: &Archive,
    entries: &BTreeMap<u64, LedgerEntry>,
    period: &PeriodInfo,
    checkpoints: &BTreeMap<&'static str, (Checkpoint, String)>,
    report: &mut Report,
) -> BTreeSet<String> {
    let PeriodInfo { from, to, first_seq: first, end_seq: end } = *period;
    let in_period = |e: &LedgerEntry| from <= entry_at(e) && entry_at(e) <= to;
    if first >= end {
        report.fail(
            FailureKind::Manifest,
            None,
            Some(layout::MANIFEST),
            format!("the period's range {first}..{end} is empty"),
        );
        return BTreeSet::new();
    }
    let missing: Vec<u64> = (first..end).filter(|s| !entries.contains_key(s)).take(1_000).collect();
    if let Some(&gap) = missing.first() {
        report.fail(
            FailureKind::Gap,
            Some(gap),
            Some(&layout::event_path(gap)),
            format!(
                "entry {gap} of the period is missing ({}{} of entries {first} to {} are missing)",
                missing.len(),
                if missing.len() == 1_000 { " or more" } else { "" },
                end - 1
            ),
        );
    }
    for seq in [first, end - 1] {
        if let Some(entry) = entries.get(&seq)
            && !in_period(entry)
        {
            report.fail(
                FailureKind::Boundary,
                Some(seq),
                Some(&layout::event_path(seq)),
                format!(
                    "entry {seq} at {} is outside the period {from} to {to}, yet it starts or ends it",
                    entry_at(entry)
                ),
            );
        }
    }
    let end_size = checkpoints.get(layout::CHECKPOINT_END).map(|(cp, _)| cp.size);
    let mut bounds = Vec::new();
    if first > 0 {
        bounds.push((first - 1, "before"));
    }
    if end_size.is_some_and(|size| end < size) {
        bounds.push((end, "after"));
    }
    if end_size.is_some_and(|size| end > size) {
        report.fail(
            FailureKind::Checkpoint,
            Some(end),
            Some(layout::CHECKPOINT_END),
            format!("the period runs to entry {end}, past the end checkpoint's {} entries", end_size.unwrap_or(0)),
        );
    }
    for (seq, side) in bounds {
        match entries.get(&seq) {
            None => report.fail(
                FailureKind::Boundary,
                Some(seq),
                Some(&layout::event_path(seq)),
                format!(
                    "entry {seq}, just {side} the period, is missing: nothing shows the period is complete at that end"
                ),
            ),
            Some(entry) if in_period(entry) => report.fail(
                FailureKind::Boundary,
                Some(seq),
                Some(&layout::event_path(seq)),
                format!(
                    "entry {seq} at {} falls in the period, yet the pack leaves it out of the period",
                    entry_at(entry)
                ),
            ),
            Some(_) => {}
        }
    }
    let touched: BTreeSet<String> = entries.range(first..end).filter_map(|(_, e)| e.run.clone()).collect();
    for (seq, entry) in entries {
        let context = *seq < first && entry.run.as_ref().is_some_and(|r| touched.contains(r));
        let boundary = (first > 0 && *seq == first - 1) || *seq == end;
        if !(first..end).contains(seq) && !context && !boundary {
            report.fail(
                FailureKind::Event,
                Some(*seq),
                Some(&layout::event_path(*seq)),
                format!("entry {seq} is outside the period and belongs to no run the period touches"),
            );
        }
    }
    check_consistency(archive, checkpoints, first, report);
    touched
}

fn check_consistency(
    archive: &Archive,
    checkpoints: &BTreeMap<&'static str, (Checkpoint, String)>,
    first: u64,
    report: &mut Report,
) {
    let start = checkpoints.get(layout::CHECKPOINT_START).map(|(cp, _)| cp);
    let end = checkpoints.get(layout::CHECKPOINT_END).map(|(cp, _)| cp);
    let path = layout::CONSISTENCY;
    match (start, end, archive.bytes(path)) {
        (None, _, _) if archive.entries.contains_key(layout::CHECKPOINT_START) => {}
        (None, _, _) => {
            if first > 0 {
                report.warnings.push(format!(
                    "the pack has no checkpoint from before the period (entry {first}): it proves the period's entries \
                     are in the end checkpoint, but not that the log before them was kept unchanged"
                ));
            }
        }
        (Some(_), _, None) => report.fail(
            FailureKind::Consistency,
            None,
            Some(path),
            "the pack has a start checkpoint but no consistency.txt".into(),
        ),
        (Some(_), None, Some(_)) => {}
        (Some(start), Some(end), Some(bytes)) => {
            if start.size > first {
                report.fail(
                    FailureKind::Checkpoint,
                    Some(first),
                    Some(layout::CHECKPOINT_START),
                    format!(
                        "the start checkpoint covers {} entries, past the period's first entry {first}",
                        start.size
                    ),
                );
            }
            match ConsistencyFile::parse(bytes) {
                Err(e) => report.fail(FailureKind::Consistency, None, Some(path), e.to_string()),
                Ok(file) if file.old_size != start.size || file.new_size != end.size => report.fail(
                    FailureKind::Consistency,
                    None,
                    Some(path),
                    format!(
                        "consistency.txt links sizes {} and {}, but the checkpoints are of {} and {}",
                        file.old_size, file.new_size, start.size, end.size
                    ),
                ),
                Ok(file) => match verify_consistency(start.size, end.size, &start.root, &end.root, &file.proof) {
                    Ok(()) => report.consistency = Some((start.size, end.size)),
                    Err(e) => report.fail(
                        FailureKind::Consistency,
                        None,
                        Some(path),
                        format!(
                            "the log of {} entries does not provably extend the log of {} entries: {e}",
                            end.size, start.size
                        ),
                    ),
                },
            }
        }
    }
}

/// Parses every template the manifest lists, keyed by content hash.
fn load_templates(
    archive: &Archive,
    manifest: &Manifest,
    report: &mut Report,
) -> BTreeMap<String, attest_template::Template> {
    let mut templates = BTreeMap::new();
    for tref in &manifest.templates {
        let Some(bytes) = archive.bytes(&tref.path) else {
            report.fail(
                FailureKind::FileMissing,
                None,
                Some(&tref.path),
                format!("template {} is missing from the pack", tref.path),
            );
            continue;
        };
        let Ok(text) = std::str::from_utf8(bytes) else {
            report.fail(FailureKind::Template, None, Some(&tref.path), format!("{} is not UTF-8", tref.path));
            continue;
        };
        match attest_template::parse(text, SourceFormat::Json, Some(&tref.path)) {
            Err(diagnostics) => report.fail(
                FailureKind::Template,
                None,
                Some(&tref.path),
                format!(
                    "{} is not a valid template: {}",
                    tref.path,
                    diagnostics.first().map(ToString::to_string).unwrap_or_default()
                ),
            ),
            Ok(template) => {
                let hash = attest_template::content_hash(&template);
                if hash != tref.content_hash {
                    report.fail(
                        FailureKind::Template,
                        None,
                        Some(&tref.path),
                        format!("{} hashes to {hash}, but the manifest lists {}", tref.path, tref.content_hash),
                    );
                }
                templates.insert(hash, template);
            }
        }
    }
    report.templates = templates.len();
    templates
}

/// Re-decides every command of the given runs through the engine.
fn reexecute_runs(
    entries: &BTreeMap<u64, LedgerEntry>,
    runs: &BTreeSet<String>,
    templates: &BTreeMap<String, attest_template::Template>,
    report: &mut Report,
) {
    let mut by_run: BTreeMap<&str, Vec<(u64, &Event)>> = BTreeMap::new();
    for (seq, entry) in entries {
        if let (Some(run), EntryEvent::Run(event)) = (&entry.run, &entry.event)
            && runs.contains(run)
        {
            by_run.entry(run.as_str()).or_default().push((*seq, event));
        }
    }
    let mut compiled: BTreeMap<String, Arc<CompiledTemplate>> = BTreeMap::new();
    for (run, events) in by_run {
        let Some(&(first_seq, first)) = events.first() else { continue };
        let EventBody::RunStarted { template: key, version, content_hash, .. } = &first.body else {
            report.fail(
                FailureKind::Gap,
                Some(first_seq),
                Some(&layout::event_path(first_seq)),
                format!("run {run}: its run_started event is missing, so it cannot be re-executed"),
            );
            continue;
        };
        let template = match compiled.get(content_hash) {
            Some(t) => t.clone(),
            None => {
                let Some(template) = templates.get(content_hash) else {
                    report.fail(
                        FailureKind::Template,
                        Some(first_seq),
                        None,
                        format!(
                            "run {run} was decided on {key} v{version} with content hash {content_hash}, and the pack \
                             holds no template with that hash"
                        ),
                    );
                    continue;
                };
                match CompiledTemplate::new(template.clone(), *version, content_hash.clone()) {
                    Ok(t) => {
                        let t = Arc::new(t);
                        compiled.insert(content_hash.clone(), t.clone());
                        t
                    }
                    Err(e) => {
                        report.fail(FailureKind::Template, Some(first_seq), None, format!("run {run}: {e}"));
                        continue;
                    }
                }
            }
        };
        match replay::reexecute(&template, &events) {
            Ok(done) => report.runs.push(RunChecked {
                id: run.to_string(),
                template: key.clone(),
                version: *version,
                events: events.len(),
                commands: done.commands,
                status: done.state.status.as_str().to_string(),
            }),
            Err(f) => report.fail(
                FailureKind::Rule,
                Some(f.seq),
                Some(&layout::event_path(f.seq)),
                format!("run {run}: {}", f.message),
            ),
        }
    }
}

/// Every attached file is in the pack with the recorded hash and size, and
/// every file in the pack is attached by an event in it.
fn check_evidence(archive: &Archive, entries: &BTreeMap<u64, LedgerEntry>, report: &mut Report) {
    let mut referenced = BTreeSet::new();
    for (seq, entry) in entries {
        let EntryEvent::Run(event) = &entry.event else { continue };
        let EventBody::EvidenceAttached { file, .. } = &event.body else { continue };
        let path = layout::file_path(&file.sha256);
        if !referenced.insert(path.clone()) {
            continue;
        }
        match archive.entries.get(&path) {
            None => report.fail(
                FailureKind::Evidence,
                Some(*seq),
                Some(&path),
                format!(
                    "evidence file {} ({}), attached by entry {seq}, is missing from the pack",
                    file.name, file.sha256
                ),
            ),
            Some(found) if *found.sha256 != *file.sha256 => report.fail(
                FailureKind::Evidence,
                Some(*seq),
                Some(&path),
                format!(
                    "evidence file {} was replaced: entry {seq} records SHA-256 {}, the file in the pack hashes to {}",
                    file.name, file.sha256, found.sha256
                ),
            ),
            Some(found) if found.size != file.size => report.fail(
                FailureKind::Evidence,
                Some(*seq),
                Some(&path),
                format!(
                    "evidence file {}: entry {seq} records {} bytes, the pack holds {}",
                    file.name, file.size, found.size
                ),
            ),
            Some(_) => report.evidence_files += 1,
        }
    }
    for name in archive.entries.keys().filter(|n| n.starts_with(FILES_DIR)) {
        if !referenced.contains(name) {
            report.fail(FailureKind::Evidence, None, Some(name), format!("{name} is attached by no event in the pack"));
        }
    }
}

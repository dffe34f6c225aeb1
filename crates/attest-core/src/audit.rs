//! Proof: signed checkpoints over the ledger and full verification of a data
//! directory against them.

use std::collections::BTreeMap;

use attest_engine::{Event, EventBody, RunState, WorkspaceEventBody};
use attest_ledger::Hash;
use attest_ledger::checkpoint::{self, Checkpoint};
use attest_ledger::note::{SignerKey, VerifierKey};
use attest_ledger::verify::RootBuilder;
use attest_store::{CheckpointRow, EntryEvent, LedgerEntry};
use jiff::Timestamp;
use serde::Serialize;

use crate::datadir::DataDir;
use crate::error::{Error, Result};
use crate::workspace::Workspace;

/// When checkpoints are signed without being asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckpointPolicy {
    /// Sign once this many entries were appended since the last checkpoint.
    pub every_entries: u64,
    /// Sign once this many seconds passed since the last checkpoint, if anything was appended.
    pub every_seconds: i64,
}

impl Default for CheckpointPolicy {
    fn default() -> Self {
        CheckpointPolicy { every_entries: 256, every_seconds: 3600 }
    }
}

/// Entries read per batch while verifying, so memory stays flat on big logs.
const VERIFY_BATCH_ENTRIES: u64 = 4096;

/// Loads the workspace's signing key from the data directory.
pub fn load_signer(dir: &DataDir) -> Result<SignerKey> {
    let path = dir.signing_key();
    let text = std::fs::read_to_string(&path)
        .map_err(|e| Error::Setup(format!("cannot read the signing key {}: {e}", path.display())))?;
    SignerKey::from_text(text.trim())
        .map_err(|e| Error::Setup(format!("the signing key {} is unusable: {e}", path.display())))
}

/// The verifier key the workspace announced in its first ledger entry.
pub fn announced_key(ws: &Workspace) -> Result<VerifierKey> {
    let first = ws.store().ledger_entries(0, 1)?;
    let entry = first.first().ok_or_else(|| Error::Setup("the ledger is empty".into()))?;
    let decoded = LedgerEntry::decode(&entry.bytes).map_err(|e| Error::Other(e.into()))?;
    match decoded.event {
        EntryEvent::Workspace(e) => match e.body {
            WorkspaceEventBody::WorkspaceCreated { verifier_key, .. } => {
                VerifierKey::parse(&verifier_key).map_err(|e| Error::Other(e.into()))
            }
            _ => Err(Error::Other(anyhow::anyhow!("ledger entry 0 is not workspace_created"))),
        },
        EntryEvent::Run(_) => Err(Error::Other(anyhow::anyhow!("ledger entry 0 is not workspace_created"))),
    }
}

/// Signs a checkpoint of the ledger as it is now and keeps it.
pub fn sign_checkpoint(ws: &Workspace, signer: &SignerKey, now: Timestamp) -> Result<CheckpointRow> {
    let size = ws.store().ledger_size()?;
    let root = ws.store().ledger_root(size)?;
    let cp = Checkpoint { origin: signer.name().to_string(), size, root, extension_lines: Vec::new() };
    let note = checkpoint::sign(&cp, signer).map_err(|e| Error::Other(e.into()))?;
    let row = CheckpointRow { size, note, created_at: now };
    ws.store().put_checkpoint(&row)?;
    Ok(row)
}

/// Signs a checkpoint if the policy says one is due.
pub fn maybe_checkpoint(
    ws: &Workspace,
    signer: &SignerKey,
    policy: CheckpointPolicy,
    now: Timestamp,
) -> Result<Option<CheckpointRow>> {
    let size = ws.store().ledger_size()?;
    let last = ws.store().checkpoints()?.into_iter().last();
    let due = match &last {
        None => size > 0,
        Some(cp) => {
            size > cp.size
                && (size - cp.size >= policy.every_entries
                    || now.as_second() - cp.created_at.as_second() >= policy.every_seconds)
        }
    };
    if due { sign_checkpoint(ws, signer, now).map(Some) } else { Ok(None) }
}

/// One problem `verify` found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The first ledger index concerned, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<u64>,
    pub kind: &'static str,
    pub message: String,
}

/// What `verify` checked and found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct VerifyReport {
    pub entries: u64,
    pub checkpoints: u64,
    pub runs: u64,
    pub evidence_files: u64,
    pub findings: Vec<Finding>,
}

impl VerifyReport {
    pub fn ok(&self) -> bool {
        self.findings.is_empty()
    }

    fn find(&mut self, index: Option<u64>, kind: &'static str, message: String) {
        self.findings.push(Finding { index, kind, message });
    }
}

/// Recomputes the whole ledger from the stored entries and checks it against
/// the stored tree, every checkpoint's signature and root, the runs'
/// projections, and the evidence files.
pub fn verify(ws: &Workspace, key: &VerifierKey) -> Result<VerifyReport> {
    let mut report = VerifyReport::default();
    let store = ws.store();
    let size = store.ledger_size()?;
    let checkpoints = store.checkpoints()?;
    let mut expected_roots: BTreeMap<u64, (usize, Checkpoint)> = BTreeMap::new();
    for (i, row) in checkpoints.iter().enumerate() {
        match checkpoint::open(&row.note, key) {
            Ok(cp) if cp.size != row.size => {
                report.find(
                    Some(row.size),
                    "checkpoint",
                    format!("checkpoint #{i} is stored for size {} but signs size {}", row.size, cp.size),
                );
            }
            Ok(cp) if cp.size > size => {
                report.find(
                    Some(size),
                    "checkpoint",
                    format!(
                        "checkpoint #{i} signs {} entries but the ledger holds {size}: entries were deleted",
                        cp.size
                    ),
                );
            }
            Ok(cp) => {
                expected_roots.insert(cp.size, (i, cp));
            }
            Err(e) => report.find(
                Some(row.size),
                "checkpoint",
                format!("checkpoint #{i} (size {}) does not verify: {e}", row.size),
            ),
        }
    }
    report.checkpoints = checkpoints.len() as u64;

    let mut builder = RootBuilder::new();
    let mut runs: BTreeMap<String, Vec<Event>> = BTreeMap::new();
    let mut run_positions: BTreeMap<String, u64> = BTreeMap::new();
    let mut files: BTreeMap<String, (u64, String)> = BTreeMap::new();
    // Once entries are found shifted (one deleted or inserted and the rest
    // renumbered), every later entry mismatches too: the first is named, the
    // rest would only repeat it.
    let mut shifted = false;
    // The entry after a swapped pair's first half is its other half, already named.
    let mut named_swap: Option<u64> = None;
    let mut next: u64 = 0;
    if let Some((_, cp)) = expected_roots.get(&0) {
        check_root(&mut report, &builder, cp);
    }
    while next < size {
        let batch = store.ledger_entries(next, next + VERIFY_BATCH_ENTRIES)?;
        if batch.is_empty() {
            report.find(Some(next), "deleted", format!("entry {next} is missing from the ledger"));
            break;
        }
        for stored in batch {
            let index = builder.size();
            if stored.seq != index {
                report.find(
                    Some(index),
                    "deleted",
                    format!("entry {index} is missing: the next stored entry is {}", stored.seq),
                );
                return finish(ws, report, runs, files);
            }
            let leaf = attest_ledger::leaf_hash(&stored.bytes);
            let tree_leaf = store.ledger_leaf(index)?;
            let mut leaf_ok = tree_leaf == Some(leaf);
            if !leaf_ok && !shifted && named_swap != Some(index) {
                let (kind, message) = classify_mismatch(ws, index, &stored.bytes, &leaf, tree_leaf.is_some())?;
                shifted = matches!(kind, "deleted" | "inserted");
                if kind == "reordered" {
                    named_swap = Some(index + 1);
                }
                report.find(Some(index), kind, message);
            }
            leaf_ok |= shifted || named_swap == Some(index);
            match LedgerEntry::decode(&stored.bytes) {
                Err(e) if leaf_ok => {
                    report.find(Some(index), "modified", format!("entry {index} is not a readable event: {e}"))
                }
                Err(_) => {}
                Ok(entry) => {
                    if entry.seq != index && leaf_ok && !shifted && named_swap.is_none() {
                        report.find(Some(index), "reordered", format!("entry {index} says it is entry {}", entry.seq));
                    }
                    if leaf_ok && !entry.encode().is_ok_and(|bytes| bytes == stored.bytes) {
                        report.find(Some(index), "modified", format!("entry {index} is not in canonical form"));
                    }
                    if let (Some(run), EntryEvent::Run(event)) = (entry.run, entry.event) {
                        let position = run_positions.entry(run.clone()).or_insert(0);
                        if entry.run_seq != Some(*position) && !shifted && named_swap.is_none() {
                            report.find(
                                Some(index),
                                "reordered",
                                format!(
                                    "entry {index} is event {:?} of run {run}, expected {}",
                                    entry.run_seq, position
                                ),
                            );
                        }
                        *position += 1;
                        if let EventBody::EvidenceAttached { file, .. } = &event.body {
                            files.entry(file.sha256.to_string()).or_insert((index, file.name.to_string()));
                        }
                        runs.entry(run).or_default().push(event);
                    }
                }
            }
            builder.push(&leaf);
            next = builder.size();
            if let Some((_, cp)) = expected_roots.get(&next) {
                check_root(&mut report, &builder, cp);
            }
        }
    }
    finish(ws, report, runs, files)
}

/// Names what happened at the first entry that does not match its leaf in
/// the Merkle tree, by where the entries fit in the tree: two adjacent
/// entries that fit each other's place were swapped; a next entry that fits
/// here means this one was inserted; an entry that fits the place its own
/// `seq` names was moved, and moved down by one with the rest after it, an
/// entry was deleted; anything else was modified in place.
fn classify_mismatch(
    ws: &Workspace,
    index: u64,
    bytes: &[u8],
    leaf: &Hash,
    has_tree_leaf: bool,
) -> Result<(&'static str, String)> {
    let store = ws.store();
    if !has_tree_leaf {
        return Ok((
            "inserted",
            format!("entry {index} has no leaf in the Merkle tree: it was added outside the ledger"),
        ));
    }
    let stored_leaf = |i: u64| -> Result<Option<Hash>> {
        Ok(store.ledger_entries(i, i + 1)?.first().map(|e| attest_ledger::leaf_hash(&e.bytes)))
    };
    let tree = |i: u64| store.ledger_leaf(i);
    let next_leaf = stored_leaf(index + 1)?;
    if next_leaf.is_some() && next_leaf == tree(index)? {
        if tree(index + 1)? == Some(*leaf) {
            return Ok((
                "reordered",
                format!("entries {index} and {} were swapped: each sits in the other's place", index + 1),
            ));
        }
        return Ok((
            "inserted",
            format!("entry {index} was inserted: the entry stored after it is the one the tree holds at {index}"),
        ));
    }
    let claimed = LedgerEntry::decode(bytes).ok().map(|e| e.seq).filter(|seq| *seq != index);
    if let Some(seq) = claimed
        && tree(seq)? == Some(*leaf)
    {
        if seq == index + 1 && next_leaf.is_some() && next_leaf == tree(index + 2)? {
            return Ok(("deleted", format!("entry {index} was deleted: the entries after it were moved down by one")));
        }
        return Ok(("reordered", format!("entry {seq} was moved to position {index}")));
    }
    Ok(("modified", format!("entry {index} does not match the leaf hash in the Merkle tree")))
}

fn check_root(report: &mut VerifyReport, builder: &RootBuilder, cp: &Checkpoint) {
    if builder.root() != cp.root {
        report.find(
            Some(cp.size.saturating_sub(1)),
            "checkpoint",
            format!(
                "the first {} entries do not give the root the checkpoint signed: something in them was changed",
                cp.size
            ),
        );
    }
}

fn finish(
    ws: &Workspace,
    mut report: VerifyReport,
    runs: BTreeMap<String, Vec<Event>>,
    files: BTreeMap<String, (u64, String)>,
) -> Result<VerifyReport> {
    report.entries = ws.store().ledger_size()?;
    report.runs = runs.len() as u64;
    for (run_id, events) in &runs {
        let Some(EventBody::RunStarted { template, version, .. }) = events.first().map(|e| &e.body) else {
            report.find(None, "run", format!("run {run_id} does not begin with run_started"));
            continue;
        };
        let compiled = match ws.compiled(template, *version) {
            Ok(c) => c,
            Err(e) => {
                report.find(None, "run", format!("run {run_id}: template {template} v{version}: {e}"));
                continue;
            }
        };
        match RunState::replay(&compiled, events) {
            Err(e) => report.find(None, "run", format!("run {run_id}: {e}")),
            // The stored snapshot with the events after it must give the
            // state all of the run's events give.
            Ok(state) => match ws.store().run(run_id)?.map(|stored| ws.current(stored)) {
                Some(Ok(row)) if row.state == state => {}
                Some(_) => {
                    report.find(None, "projection", format!("run {run_id}: the stored state differs from its events"))
                }
                None => report.find(None, "projection", format!("run {run_id} has events but no stored run")),
            },
        }
    }
    report.evidence_files = files.len() as u64;
    for (sha256, (index, name)) in files {
        match ws.blobs().get(&sha256) {
            Ok(bytes) => {
                let actual = hex_sha256(&bytes);
                if actual != sha256 {
                    report.find(
                        Some(index),
                        "evidence",
                        format!("evidence file {name} ({sha256}) was replaced: its content hashes to {actual}"),
                    );
                }
            }
            Err(e) => report.find(Some(index), "evidence", format!("evidence file {name}: {e}")),
        }
    }
    // First bad index first: a reader starts where the damage starts.
    report.findings.sort_by_key(|f| f.index.unwrap_or(u64::MAX));
    Ok(report)
}

fn hex_sha256(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(bytes))
}

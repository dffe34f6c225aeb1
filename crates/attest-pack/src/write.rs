//! Writing packs from a workspace.
//!
//! The exporter checks what it copies as it goes: every proof it writes is
//! verified against the checkpoint it signs for, every evidence file against
//! its name, every template against its content hash. A damaged data
//! directory therefore fails the export instead of yielding a pack that
//! would fail verification later.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Seek, Write};

use attest_core::Workspace;
use attest_core::audit::sign_checkpoint;
use attest_engine::EventBody;
use attest_ledger::checkpoint::{self, Checkpoint, SignerKey};
use attest_ledger::proof_file::ProofFile;
use attest_ledger::verify::{verify_consistency, verify_inclusion};
use attest_store::{CheckpointRow, EntryEvent, LedgerEntry, StoredEntry};
use attest_template::{SourceFormat, Template};
use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use sha2::{Digest, Sha256};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};

use crate::consistency::ConsistencyFile;
use crate::error::PackError;
use crate::layout::{
    self, CheckpointRef, FileEntry, MAX_ENTRIES, Manifest, PackKind, PeriodInfo, RunInfo, TemplateRef,
};
use crate::summary::{self, SummaryInput};

/// Entries read per batch while scanning the ledger for a period.
const SCAN_BATCH_ENTRIES: u64 = 4096;

/// What an export wrote.
#[derive(Debug, Clone)]
pub struct ExportOutcome {
    pub manifest: Manifest,
    /// Ledger entries in the pack, each with its proof.
    pub entries: usize,
    pub evidence_files: usize,
    /// The checkpoint every proof is against.
    pub checkpoint_size: u64,
    /// Whether that checkpoint was signed for this export.
    pub signed_checkpoint: bool,
}

/// Parses `--from` and `--to`: a date (`YYYY-MM-DD`, a whole UTC day) or an
/// RFC 3339 instant. Both ends are inclusive: `--to 2025-03-31` runs to the
/// last nanosecond of that day.
pub fn parse_period(from: &str, to: &str) -> Result<(Timestamp, Timestamp), PackError> {
    let start = parse_instant(from, false)?;
    let end = parse_instant(to, true)?;
    if start > end {
        return Err(PackError::BadInput(format!("the period is empty: --from {from} is after --to {to}")));
    }
    Ok((start, end))
}

fn parse_instant(text: &str, end_of_day: bool) -> Result<Timestamp, PackError> {
    let text = text.trim();
    if let Ok(t) = text.parse::<Timestamp>() {
        return Ok(t);
    }
    let date: Date = text.parse().map_err(|_| {
        PackError::BadInput(format!(
            "'{text}' is neither a date like 2025-03-31 nor an RFC 3339 time like 2025-03-31T12:00:00Z"
        ))
    })?;
    let out_of_range = || PackError::BadInput(format!("'{text}' is out of range"));
    let day = if end_of_day { date.tomorrow().map_err(|_| out_of_range())? } else { date };
    let start = day.to_zoned(TimeZone::UTC).map_err(|_| out_of_range())?.timestamp();
    if end_of_day {
        start.checked_sub(jiff::SignedDuration::from_nanos(1)).map_err(|_| out_of_range())
    } else {
        Ok(start)
    }
}

/// Writes the pack of one run: all its events, each proven against one
/// signed checkpoint (signed now if the latest does not cover the run).
pub fn export_run<W: Write + Seek>(
    ws: &Workspace,
    signer: &SignerKey,
    run_id: &str,
    now: Timestamp,
    out: W,
) -> Result<ExportOutcome, PackError> {
    let row = ws.run(run_id)?;
    let stored = ws.store().run_events(&row.id)?;
    let entries = decode_all(&stored)?;
    let needed = stored.last().map_or(0, |e| e.seq + 1);
    let (cp_row, cp, signed) = covering_checkpoint(ws, signer, needed, now)?;
    let (template_ref, template) = template_for(ws, &row.template_key, row.template_version, layout::TEMPLATE)?;
    if let Some(EntryEvent::Run(first)) = entries.first().map(|e| &e.event)
        && let EventBody::RunStarted { content_hash, .. } = &first.body
        && *content_hash != template_ref.content_hash
    {
        return Err(PackError::Damaged(format!(
            "run {} was started on template content {content_hash}, but the stored version is {}",
            row.id, template_ref.content_hash
        )));
    }
    let mut pack = Builder::new(out, now);
    pack.add_entries(ws, &stored, &cp_row.note, &cp)?;
    pack.add(layout::CHECKPOINT, cp_row.note.as_bytes())?;
    pack.add(&template_ref.path, attest_template::to_json_pretty(&template).as_bytes())?;
    let evidence_files = pack.add_evidence(ws, &entries)?;
    let manifest = Manifest {
        format: layout::FORMAT.into(),
        kind: PackKind::Run,
        origin: cp.origin.clone(),
        workspace: workspace_name(ws)?,
        created_at: now,
        run: Some(RunInfo {
            id: row.id.clone(),
            name: row.name.clone(),
            template: row.template_key.clone(),
            version: row.template_version,
            events: entries.len() as u64,
        }),
        period: None,
        checkpoints: vec![CheckpointRef { path: layout::CHECKPOINT.into(), size: cp.size }],
        templates: vec![template_ref],
        files: Vec::new(),
    };
    let names = vec![(row.template_key.clone(), row.template_version, template.name.clone())];
    let manifest = pack.finish(manifest, &entries, signer, &names)?;
    Ok(ExportOutcome {
        manifest,
        entries: entries.len(),
        evidence_files,
        checkpoint_size: cp.size,
        signed_checkpoint: signed,
    })
}

/// Writes the pack of a period: every ledger entry whose `at` falls in
/// `[from, to]`, and every entry between the first and the last of them; the
/// entry just before and just after as boundaries; the earlier events of the
/// runs the period touches, so those runs re-execute from their start; and
/// checkpoints at both ends with the consistency proof between them.
pub fn export_period<W: Write + Seek>(
    ws: &Workspace,
    signer: &SignerKey,
    from: Timestamp,
    to: Timestamp,
    now: Timestamp,
    out: W,
) -> Result<ExportOutcome, PackError> {
    let size = ws.store().ledger_size()?;
    let (first, end) = period_range(ws, size, from, to)?
        .ok_or_else(|| PackError::BadInput(format!("no ledger entry falls in the period {from} to {to}")))?;
    let (end_row, end_cp, signed) = covering_checkpoint(ws, signer, (end + 1).min(size), now)?;
    let start = start_checkpoint(ws, signer, first)?;

    let mut stored = ws.store().ledger_entries(first.saturating_sub(1), (end + 1).min(end_cp.size))?;
    let mut included: BTreeSet<u64> = stored.iter().map(|e| e.seq).collect();
    let mut runs_touched: BTreeSet<String> = BTreeSet::new();
    for entry in decode_all(&stored)? {
        if (first..end).contains(&entry.seq) {
            runs_touched.extend(entry.run);
        }
    }
    // Runs that started before the period bring their earlier events, so the
    // verifier can re-decide them from the start.
    for run in &runs_touched {
        for entry in ws.store().run_events(run)? {
            if entry.seq < first && included.insert(entry.seq) {
                stored.push(entry);
            }
        }
    }
    stored.sort_by_key(|e| e.seq);
    let entries = decode_all(&stored)?;

    let mut templates: BTreeMap<(String, u32), (TemplateRef, Template)> = BTreeMap::new();
    for entry in &entries {
        if let EntryEvent::Run(e) = &entry.event
            && let EventBody::RunStarted { template, version, .. } = &e.body
            && entry.run.as_ref().is_some_and(|r| runs_touched.contains(r))
        {
            let key = (template.clone(), *version);
            if let std::collections::btree_map::Entry::Vacant(e) = templates.entry(key) {
                let (tref, t) = template_for(ws, template, *version, "")?;
                e.insert((tref, t));
            }
        }
    }
    let files_estimate = 2 * entries.len() + templates.len() + 8;
    if files_estimate > MAX_ENTRIES {
        return Err(PackError::TooLarge { files: files_estimate, max: MAX_ENTRIES });
    }

    let mut pack = Builder::new(out, now);
    pack.add_entries(ws, &stored, &end_row.note, &end_cp)?;
    let mut checkpoints = Vec::new();
    if let Some((start_row, start_cp)) = &start {
        let proof = ws.store().consistency_proof(start_cp.size, end_cp.size)?;
        verify_consistency(start_cp.size, end_cp.size, &start_cp.root, &end_cp.root, &proof).map_err(|e| {
            PackError::Damaged(format!(
                "the ledger's consistency proof from size {} to {} does not verify: {e}",
                start_cp.size, end_cp.size
            ))
        })?;
        let file = ConsistencyFile { old_size: start_cp.size, new_size: end_cp.size, proof };
        pack.add(layout::CHECKPOINT_START, start_row.note.as_bytes())?;
        pack.add(layout::CONSISTENCY, file.to_text().as_bytes())?;
        checkpoints.push(CheckpointRef { path: layout::CHECKPOINT_START.into(), size: start_cp.size });
    }
    pack.add(layout::CHECKPOINT_END, end_row.note.as_bytes())?;
    checkpoints.push(CheckpointRef { path: layout::CHECKPOINT_END.into(), size: end_cp.size });
    let mut template_refs = Vec::new();
    let mut names = Vec::new();
    for ((key, version), (tref, template)) in templates {
        pack.add(&tref.path, attest_template::to_json_pretty(&template).as_bytes())?;
        names.push((key, version, template.name.clone()));
        template_refs.push(tref);
    }
    let evidence_files = pack.add_evidence(ws, &entries)?;
    let manifest = Manifest {
        format: layout::FORMAT.into(),
        kind: PackKind::Period,
        origin: end_cp.origin.clone(),
        workspace: workspace_name(ws)?,
        created_at: now,
        run: None,
        period: Some(PeriodInfo { from, to, first_seq: first, end_seq: end }),
        checkpoints,
        templates: template_refs,
        files: Vec::new(),
    };
    let manifest = pack.finish(manifest, &entries, signer, &names)?;
    Ok(ExportOutcome {
        manifest,
        entries: entries.len(),
        evidence_files,
        checkpoint_size: end_cp.size,
        signed_checkpoint: signed,
    })
}

/// `[first, end)`: from the first entry whose `at` is in the period to one
/// past the last, found in one bounded-memory pass over the ledger.
fn period_range(ws: &Workspace, size: u64, from: Timestamp, to: Timestamp) -> Result<Option<(u64, u64)>, PackError> {
    let mut range: Option<(u64, u64)> = None;
    let mut next = 0;
    while next < size {
        let batch = ws.store().ledger_entries(next, next + SCAN_BATCH_ENTRIES)?;
        let Some(last) = batch.last() else {
            return Err(PackError::Damaged(format!("ledger entry {next} is missing")));
        };
        next = last.seq + 1;
        for entry in decode_all(&batch)? {
            let at = match &entry.event {
                EntryEvent::Run(e) => e.at,
                EntryEvent::Workspace(e) => e.at,
            };
            if from <= at && at <= to {
                range = Some(range.map_or((entry.seq, entry.seq + 1), |(first, _)| (first, entry.seq + 1)));
            }
        }
    }
    Ok(range)
}

/// The latest stored checkpoint at or before the period's first entry, if
/// there is one and the period does not start the log.
fn start_checkpoint(
    ws: &Workspace,
    signer: &SignerKey,
    first: u64,
) -> Result<Option<(CheckpointRow, Checkpoint)>, PackError> {
    if first == 0 {
        return Ok(None);
    }
    let row = ws.store().checkpoints()?.into_iter().rfind(|c| c.size > 0 && c.size <= first);
    row.map(|row| {
        let cp = open_checked(ws, signer, &row)?;
        Ok((row, cp))
    })
    .transpose()
}

/// The earliest stored checkpoint of at least `needed` entries, or a fresh
/// one signed now when none is that large.
fn covering_checkpoint(
    ws: &Workspace,
    signer: &SignerKey,
    needed: u64,
    now: Timestamp,
) -> Result<(CheckpointRow, Checkpoint, bool), PackError> {
    let stored = ws.store().checkpoints()?.into_iter().find(|c| c.size >= needed.max(1));
    let (row, signed) = match stored {
        Some(row) => (row, false),
        None => (sign_checkpoint(ws, signer, now)?, true),
    };
    let cp = open_checked(ws, signer, &row)?;
    Ok((row, cp, signed))
}

/// Opens a stored checkpoint with the workspace's key and checks it signs the
/// ledger's actual root at its size.
fn open_checked(ws: &Workspace, signer: &SignerKey, row: &CheckpointRow) -> Result<Checkpoint, PackError> {
    let cp = checkpoint::open(&row.note, &signer.verifier_key())
        .map_err(|e| PackError::Damaged(format!("the stored checkpoint of size {} does not verify: {e}", row.size)))?;
    if cp.size != row.size || cp.root != ws.store().ledger_root(cp.size)? {
        return Err(PackError::Damaged(format!(
            "the stored checkpoint of size {} does not sign the ledger's root at that size",
            row.size
        )));
    }
    Ok(cp)
}

fn decode_all(stored: &[StoredEntry]) -> Result<Vec<LedgerEntry>, PackError> {
    stored
        .iter()
        .map(|s| {
            LedgerEntry::decode(&s.bytes)
                .map_err(|e| PackError::Damaged(format!("ledger entry {} is not a readable event: {e}", s.seq)))
        })
        .collect()
}

/// The stored template version, checked against its content hash.
fn template_for(ws: &Workspace, key: &str, version: u32, path: &str) -> Result<(TemplateRef, Template), PackError> {
    let row = ws.template_row(key, Some(version))?;
    let template = attest_template::parse(&row.json, SourceFormat::Json, None)
        .map_err(|_| PackError::Damaged(format!("the stored template {key} v{version} does not parse and validate")))?;
    let content_hash = attest_template::content_hash(&template);
    if content_hash != row.content_hash {
        return Err(PackError::Damaged(format!(
            "the stored template {key} v{version} hashes to {content_hash}, not to its recorded {}",
            row.content_hash
        )));
    }
    let path = if path.is_empty() { layout::template_path(&content_hash) } else { path.to_string() };
    Ok((TemplateRef { key: key.into(), version, content_hash, path }, template))
}

fn workspace_name(ws: &Workspace) -> Result<String, PackError> {
    Ok(ws.store().workspace()?.map(|w| w.name).unwrap_or_default())
}

struct Builder<W: Write + Seek> {
    zip: ZipWriter<W>,
    options: SimpleFileOptions,
    files: Vec<FileEntry>,
}

impl<W: Write + Seek> Builder<W> {
    /// Files are stamped with the export time, in UTC, where zip can hold it.
    fn new(out: W, now: Timestamp) -> Self {
        let civil = now.to_zoned(TimeZone::UTC).datetime();
        let stamp = u16::try_from(civil.year()).ok().and_then(|year| {
            zip::DateTime::from_date_and_time(
                year,
                civil.month().unsigned_abs(),
                civil.day().unsigned_abs(),
                civil.hour().unsigned_abs(),
                civil.minute().unsigned_abs(),
                civil.second().unsigned_abs(),
            )
            .ok()
        });
        let options = SimpleFileOptions::default()
            .compression_method(CompressionMethod::Deflated)
            .last_modified_time(stamp.unwrap_or_default());
        Builder { zip: ZipWriter::new(out), options, files: Vec::new() }
    }

    fn add(&mut self, path: &str, bytes: &[u8]) -> Result<(), PackError> {
        self.zip.start_file(path, self.options)?;
        self.zip.write_all(bytes)?;
        self.files.push(FileEntry {
            path: path.into(),
            sha256: hex::encode(Sha256::digest(bytes)),
            size: bytes.len() as u64,
        });
        Ok(())
    }

    /// Each entry's canonical bytes and its inclusion proof, verified here first.
    fn add_entries(
        &mut self,
        ws: &Workspace,
        stored: &[StoredEntry],
        note: &str,
        cp: &Checkpoint,
    ) -> Result<(), PackError> {
        for entry in stored {
            let proof = ws.store().inclusion_proof(entry.seq, cp.size)?;
            let leaf = attest_ledger::leaf_hash(&entry.bytes);
            verify_inclusion(&leaf, entry.seq, cp.size, &proof, &cp.root).map_err(|_| {
                PackError::Damaged(format!(
                    "ledger entry {} does not match the Merkle tree the checkpoint signs",
                    entry.seq
                ))
            })?;
            let file =
                ProofFile { extra: None, index: entry.seq, inclusion_proof: proof, checkpoint_note: note.to_string() };
            let text = file.to_text().map_err(|e| PackError::Damaged(format!("proof of entry {}: {e}", entry.seq)))?;
            self.add(&layout::event_path(entry.seq), &entry.bytes)?;
            self.add(&layout::proof_path(entry.seq), text.as_bytes())?;
        }
        Ok(())
    }

    /// Every evidence file the entries attach, checked against its name.
    fn add_evidence(&mut self, ws: &Workspace, entries: &[LedgerEntry]) -> Result<usize, PackError> {
        let mut added = BTreeSet::new();
        for entry in entries {
            let EntryEvent::Run(e) = &entry.event else { continue };
            let EventBody::EvidenceAttached { file, .. } = &e.body else { continue };
            if !added.insert(file.sha256.clone()) {
                continue;
            }
            let bytes = ws.blobs().get(&file.sha256).map_err(attest_core::Error::from)?;
            let actual = hex::encode(Sha256::digest(&bytes));
            if *actual != *file.sha256 {
                return Err(PackError::Damaged(format!(
                    "evidence file {} ({}) was replaced: its content hashes to {actual}",
                    file.name, file.sha256
                )));
            }
            self.add(&layout::file_path(&file.sha256), &bytes)?;
        }
        Ok(added.len())
    }

    /// Adds the key and the summary, then the manifest listing every file.
    fn finish(
        mut self,
        mut manifest: Manifest,
        entries: &[LedgerEntry],
        signer: &SignerKey,
        template_names: &[(String, u32, String)],
    ) -> Result<Manifest, PackError> {
        let key = signer.verifier_key().to_string();
        self.add(layout::KEY, format!("{key}\n").as_bytes())?;
        let html = summary::render(&SummaryInput { manifest: &manifest, entries, key: &key, template_names });
        self.add(layout::SUMMARY, html.as_bytes())?;
        manifest.files = std::mem::take(&mut self.files);
        let json = serde_json::to_vec_pretty(&manifest).map_err(|e| PackError::Io(e.into()))?;
        self.zip.start_file(layout::MANIFEST, self.options)?;
        self.zip.write_all(&json)?;
        self.zip.finish()?;
        Ok(manifest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_are_inclusive_days_or_instants() {
        let (from, to) = parse_period("2025-01-01", "2025-01-31").expect("dates parse");
        assert_eq!(from.to_string(), "2025-01-01T00:00:00Z");
        assert_eq!(to.to_string(), "2025-01-31T23:59:59.999999999Z");
        let (from, to) = parse_period("2025-01-01T10:00:00Z", "2025-01-01T11:00:00+01:00").expect("instants parse");
        assert_eq!(from, to);
        assert!(parse_period("2025-02-01", "2025-01-01").is_err());
        assert!(parse_period("yesterday", "2025-01-01").is_err());
    }
}

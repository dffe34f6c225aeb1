//! `attest audit export` and `attest verify`: evidence packs.

use std::fs::File;
use std::io::{BufReader, BufWriter, Write as _};
use std::path::{Path, PathBuf};

use attest_core::audit;
use attest_core::{DataDir, Error, Workspace};
use attest_ledger::note::VerifierKey;
use attest_pack::{ExportOutcome, KeySource, PackError, PackKind, Report};
use serde_json::json;

use crate::output::{CliError, print_json};

pub fn export(
    dir: &DataDir,
    run: Option<String>,
    from: Option<String>,
    to: Option<String>,
    output: &Path,
    json: bool,
) -> Result<(), CliError> {
    let period = match (&run, from, to) {
        (Some(_), None, None) => None,
        (None, Some(from), Some(to)) => Some(attest_pack::parse_period(&from, &to).map_err(pack_error)?),
        _ => return Err(CliError::Usage("give --run RUN, or --from DATE and --to DATE".into())),
    };
    let ws = Workspace::open(dir)?;
    let signer = audit::load_signer(dir)?;
    let now = crate::commands::now()?;
    // Write beside the target and rename, so a failed export leaves no half pack.
    let partial = partial_path(output)?;
    let file =
        File::create(&partial).map_err(|e| Error::BadInput(format!("cannot write {}: {e}", partial.display())))?;
    let mut writer = BufWriter::new(file);
    let written = match (&run, period) {
        (Some(run), _) => attest_pack::export_run(&ws, &signer, run, now, &mut writer),
        (None, Some((from, to))) => attest_pack::export_period(&ws, &signer, from, to, now, &mut writer),
        (None, None) => Err(PackError::BadInput("give --run RUN, or --from DATE and --to DATE".into())),
    };
    let finished = written.map_err(pack_error).and_then(|outcome| {
        writer.flush()?;
        writer.get_ref().sync_all()?;
        std::fs::rename(&partial, output)?;
        Ok(outcome)
    });
    let outcome = match finished {
        Ok(outcome) => outcome,
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            return Err(e);
        }
    };
    report_export(&outcome, output, json)
}

fn partial_path(output: &Path) -> Result<PathBuf, CliError> {
    let name = output
        .file_name()
        .ok_or_else(|| CliError::Usage(format!("-o {} names no file", output.display())))?
        .to_string_lossy();
    Ok(output.with_file_name(format!(".{name}.partial-{}", std::process::id())))
}

fn pack_error(e: PackError) -> CliError {
    match e {
        PackError::Core(e) => CliError::App(e),
        PackError::BadInput(m) => CliError::Usage(m),
        e @ PackError::TooLarge { .. } => CliError::Usage(e.to_string()),
        e @ PackError::Damaged(_) => CliError::App(Error::Conflict(e.to_string())),
        e @ (PackError::Zip(_) | PackError::Io(_)) => CliError::Other(e.into()),
    }
}

fn report_export(outcome: &ExportOutcome, output: &Path, json: bool) -> Result<(), CliError> {
    let m = &outcome.manifest;
    if json {
        print_json(&json!({
            "file": output,
            "kind": m.kind,
            "entries": outcome.entries,
            "evidence_files": outcome.evidence_files,
            "checkpoint_size": outcome.checkpoint_size,
            "signed_checkpoint": outcome.signed_checkpoint,
            "run": m.run,
            "period": m.period,
        }))?;
        return Ok(());
    }
    let what = match (&m.run, &m.period) {
        (Some(run), _) => format!("run {} \"{}\"", run.id, run.name),
        (_, Some(p)) => {
            format!("period {} to {} (entries {} to {})", p.from, p.to, p.first_seq, p.end_seq.saturating_sub(1))
        }
        _ => String::new(),
    };
    println!("wrote {}: {what}", output.display());
    println!(
        "{} ledger entries with inclusion proofs, {} evidence files, {} templates, {} files in all",
        outcome.entries,
        outcome.evidence_files,
        m.templates.len(),
        m.files.len() + 1
    );
    let fresh = if outcome.signed_checkpoint { " (signed now)" } else { "" };
    println!("proofs are against the checkpoint of {} entries{fresh}", outcome.checkpoint_size);
    println!("verify it anywhere: attest verify {} --key '<the workspace's key>'", output.display());
    Ok(())
}

pub fn verify(file: &Path, key: Option<&str>, json: bool) -> Result<(), CliError> {
    let key = key
        .map(|text| VerifierKey::parse(text.trim()))
        .transpose()
        .map_err(|e| CliError::Usage(format!("--key is not a verifier key: {e}")))?;
    let reader = File::open(file).map_err(|e| CliError::Usage(format!("cannot read {}: {e}", file.display())))?;
    let report = attest_pack::verify(BufReader::new(reader), key.as_ref());
    if json {
        print_json(&json!({ "ok": report.ok(), "report": report }))?;
    } else {
        print_report(file, &report);
    }
    if report.ok() { Ok(()) } else { Err(CliError::Failed) }
}

fn print_report(file: &Path, r: &Report) {
    let kind = match r.kind {
        Some(PackKind::Run) => "run pack",
        Some(PackKind::Period) => "period pack",
        None => "pack",
    };
    println!("verifying {} ({kind}), offline", file.display());
    if let (Some(key), Some(source)) = (&r.key, r.key_source) {
        let from = match source {
            KeySource::Given => "given with --key",
            KeySource::Pack => "taken from the pack",
        };
        println!("key: {key} ({from})");
    }
    for warning in &r.warnings {
        println!("WARNING: {warning}");
    }
    if r.kind.is_some() {
        println!("ok: {} files match the SHA-256 and size in the manifest", r.files);
        for (path, size) in &r.checkpoints {
            println!("ok: {path} is signed by the key (a log of {size} entries)");
        }
        println!(
            "ok: {} entries are canonical and at their index; {} inclusion proofs lead to the signed root",
            r.events, r.proofs
        );
        if let Some((old, new)) = r.consistency {
            println!("ok: the log of {new} entries extends the log of {old} entries (consistency proof)");
        }
        println!("ok: {} templates match the content hash their runs were started on", r.templates);
        println!("ok: {} evidence files match the SHA-256 their events record", r.evidence_files);
        for run in &r.runs {
            println!(
                "ok: run {} ({} v{}, {}): the engine re-decided its {} commands and gave exactly the {} recorded \
                 events; rules re-checked: required fields, stop order, assignees, separation of duties",
                run.id, run.template, run.version, run.status, run.commands, run.events
            );
        }
    }
    for f in &r.failures {
        let mut place = String::new();
        if let Some(index) = f.index {
            place.push_str(&format!(" at index {index}"));
        }
        if let Some(path) = &f.path {
            place.push_str(&format!(" ({path})"));
        }
        println!("FAIL [{}]{place}: {}", f.kind, f.message);
    }
    if r.more_failures > 0 {
        println!("... and {} more failures", r.more_failures);
    }
    if r.ok() {
        println!("verified: every check passed");
    } else {
        println!("NOT VERIFIED: {} problems found", r.failures.len() + r.more_failures);
    }
}

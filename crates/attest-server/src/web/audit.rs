//! Audit: the verifier key, checkpoints, "verify now", inclusion proofs of
//! ledger entries, and evidence packs of a run or a period. Auditors read
//! and export; nothing here changes the workspace.

use std::sync::Arc;

use askama::Template;
use attest_core::audit;
use attest_store::{LedgerEntry, RunFilter};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::{Extension, Router};
use serde::Deserialize;

use super::{Chrome, FieldErrors, Viewer, WebResult, blocking, page, page_with, when};
use crate::App;
use crate::api::{PackExport, pack_download, pack_problem};
use crate::guard::Caller;
use crate::problem::Problem;

pub fn routes(r: Router<Arc<App>>) -> Router<Arc<App>> {
    r.route("/audit", get(audit_page))
        .route("/audit/verify", get(verify_now))
        .route("/audit/proofs/{index}", get(proof))
        .route("/audit/runs/{run}/pack", get(run_pack))
        .route("/audit/pack", get(period_pack))
}

/// Checkpoints listed on the page, newest first.
const SHOWN_CHECKPOINTS: usize = 20;

struct CheckpointView {
    size: u64,
    at: String,
    note: String,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    chrome: Chrome,
    key: String,
    ledger_size: u64,
    checkpoint_count: usize,
    checkpoints: Vec<CheckpointView>,
    from: String,
    to: String,
    recent: Vec<(String, String, &'static str)>,
    errors: FieldErrors,
}

async fn audit_view(app: &Arc<App>, viewer: &Viewer, from: String, to: String, errors: FieldErrors) -> WebResult {
    let a = app.clone();
    let (key, size, all, recent) = blocking(move || {
        let key = audit::announced_key(&a.read)?.to_string();
        let recent = a
            .read
            .runs(&RunFilter { limit: 10, ..RunFilter::default() })?
            .into_iter()
            .map(|r| (r.id, r.name, r.status.as_str()))
            .collect::<Vec<_>>();
        Ok((key, a.read.store().ledger_size()?, a.read.store().checkpoints()?, recent))
    })
    .await?;
    let checkpoint_count = all.len();
    let checkpoints = all
        .into_iter()
        .rev()
        .take(SHOWN_CHECKPOINTS)
        .map(|c| CheckpointView { size: c.size, at: when(c.created_at), note: c.note })
        .collect();
    let chrome = Chrome::load(app, viewer, "audit").await?;
    let status = if errors.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    Ok(page_with(
        status,
        &AuditPage { chrome, key, ledger_size: size, checkpoint_count, checkpoints, from, to, recent, errors },
    ))
}

async fn audit_page(State(app): State<Arc<App>>, Extension(caller): Extension<Caller>) -> WebResult {
    let viewer = Viewer::of(&caller)?;
    audit_view(&app, &viewer, String::new(), String::new(), FieldErrors::default()).await
}

struct FindingView {
    index: String,
    kind: String,
    message: String,
}

#[derive(Template)]
#[template(path = "verify.html")]
struct VerifyPage {
    chrome: Chrome,
    ok: bool,
    entries: u64,
    checkpoints: u64,
    runs: u64,
    evidence_files: u64,
    findings: Vec<FindingView>,
    at: String,
}

async fn verify_now(State(app): State<Arc<App>>, Extension(caller): Extension<Caller>) -> WebResult {
    let viewer = Viewer::of(&caller)?;
    let a = app.clone();
    let report = blocking(move || {
        let key = audit::announced_key(&a.read)?;
        Ok(audit::verify(&a.read, &key)?)
    })
    .await?;
    let chrome = Chrome::load(&app, &viewer, "audit").await?;
    Ok(page(&VerifyPage {
        chrome,
        ok: report.ok(),
        entries: report.entries,
        checkpoints: report.checkpoints,
        runs: report.runs,
        evidence_files: report.evidence_files,
        findings: report
            .findings
            .iter()
            .map(|f| FindingView {
                index: f.index.map(|i| i.to_string()).unwrap_or_default(),
                kind: f.kind.to_string(),
                message: f.message.clone(),
            })
            .collect(),
        at: when(app.now()),
    }))
}

#[derive(Template)]
#[template(path = "proof.html")]
struct ProofPage {
    chrome: Chrome,
    index: u64,
    size: u64,
    leaf_hash: String,
    root: String,
    proof: Vec<String>,
    entry_json: String,
    run: Option<String>,
}

async fn proof(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Path(index): Path<String>,
) -> WebResult {
    let viewer = Viewer::of(&caller)?;
    let index: u64 = index.parse().map_err(|_| Problem::not_found(format!("'{index}' is not a ledger index")))?;
    let a = app.clone();
    let (size, leaf, root, proof, entry_json, run) = blocking(move || {
        let store = a.read.store();
        let size = store.ledger_size()?;
        if index >= size {
            return Err(Problem::not_found(format!("the ledger holds {size} entries; there is no entry {index}")));
        }
        let proof = store.inclusion_proof(index, size)?;
        let leaf = store.ledger_leaf(index)?.map(hex::encode).unwrap_or_default();
        let root = hex::encode(store.ledger_root(size)?);
        let entry = store.ledger_entries(index, index + 1)?;
        let (json, run) = match entry.first() {
            Some(e) => {
                let run = LedgerEntry::decode(&e.bytes).ok().and_then(|d| d.run);
                let pretty = serde_json::from_slice::<serde_json::Value>(&e.bytes)
                    .ok()
                    .and_then(|v| serde_json::to_string_pretty(&v).ok())
                    .unwrap_or_else(|| String::from_utf8_lossy(&e.bytes).into_owned());
                (pretty, run)
            }
            None => (String::new(), None),
        };
        Ok((size, leaf, root, proof.iter().map(hex::encode).collect::<Vec<_>>(), json, run))
    })
    .await?;
    let chrome = Chrome::load(&app, &viewer, "audit").await?;
    Ok(page(&ProofPage { chrome, index, size, leaf_hash: leaf, root, proof, entry_json, run }))
}

async fn run_pack(State(app): State<Arc<App>>, Path(id): Path<String>) -> WebResult {
    let name = format!(
        "attest-run-{}.zip",
        id.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-').take(64).collect::<String>()
    );
    let export: Box<PackExport> = Box::new(move |app: &App, signer, zip| {
        attest_pack::export_run(&app.write, signer, &id, app.now(), zip).map(|_| ())
    });
    Ok(pack_download(app, name, export).await?)
}

#[derive(Deserialize)]
struct PeriodQuery {
    from: Option<String>,
    to: Option<String>,
}

async fn period_pack(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<PeriodQuery>,
) -> WebResult<Response> {
    let viewer = Viewer::of(&caller)?;
    let from = q.from.unwrap_or_default().trim().to_string();
    let to = q.to.unwrap_or_default().trim().to_string();
    let mut errors = FieldErrors::default();
    if from.is_empty() {
        errors.add("from", "enter the first day, like 2026-01-01");
    }
    if to.is_empty() {
        errors.add("to", "enter the last day, like 2026-03-31");
    }
    if errors.is_empty() {
        match attest_pack::parse_period(&from, &to) {
            Ok((start, end)) => {
                let name = format!("attest-period-{}-{}.zip", start.strftime("%Y%m%d"), end.strftime("%Y%m%d"));
                let export: Box<PackExport> = Box::new(move |app: &App, signer, zip| {
                    attest_pack::export_period(&app.write, signer, start, end, app.now(), zip).map(|_| ())
                });
                match pack_download(app.clone(), name, export).await {
                    Ok(res) => return Ok(res),
                    Err(p) if p.status < 500 => errors.add("to", p.detail),
                    Err(p) => return Err(p.into()),
                }
            }
            Err(e) => {
                // Put the message beside the bound that does not read; a pair that reads
                // but does not make a period is the last day's fault.
                let input = if attest_pack::parse_period(&from, &from).is_err() { "from" } else { "to" };
                errors.add(input, pack_problem(e).detail);
            }
        }
    }
    audit_view(&app, &viewer, from, to, errors).await
}

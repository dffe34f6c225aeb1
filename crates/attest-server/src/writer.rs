//! The group-commit writer: one blocking task drains a bounded queue of run
//! commands and commits each batch with one `Workspace::execute_many`, so
//! many concurrent commands share one fsync. Each caller gets its own result.

use std::sync::Arc;

use attest_core::audit::{self, CheckpointPolicy};
use attest_core::{BatchItem, Workspace};
use attest_engine::RunState;
use attest_ledger::note::SignerKey;
use tokio::sync::{mpsc, oneshot};

use crate::metrics::Metrics;
use crate::problem::Problem;

/// Commands waiting before callers are told to slow down.
pub const QUEUE_DEPTH: usize = 4096;

#[derive(Debug)]
pub struct Job {
    pub item: BatchItem,
    pub reply: oneshot::Sender<Result<RunState, Problem>>,
}

/// Starts the writer thread; it ends when every sender is dropped, after the
/// queued commands are committed.
pub fn spawn(
    ws: Arc<Workspace>,
    signer: Option<SignerKey>,
    metrics: Arc<Metrics>,
    batch_max: usize,
    clock: attest_core::Clock,
) -> (mpsc::Sender<Job>, std::thread::JoinHandle<()>) {
    let (tx, mut rx) = mpsc::channel::<Job>(QUEUE_DEPTH);
    let handle = std::thread::Builder::new()
        .name("attest-writer".into())
        .spawn(move || {
            let policy = CheckpointPolicy::default();
            let mut jobs: Vec<Job> = Vec::with_capacity(batch_max);
            while let Some(first) = rx.blocking_recv() {
                jobs.push(first);
                while jobs.len() < batch_max {
                    match rx.try_recv() {
                        Ok(job) => jobs.push(job),
                        Err(_) => break,
                    }
                }
                let items: Vec<BatchItem> = jobs.iter().map(|j| j.item.clone()).collect();
                let now = clock.now();
                metrics.batch(items.len());
                match ws.execute_many(&items, now) {
                    Ok(results) => {
                        for (job, result) in jobs.drain(..).zip(results) {
                            let _ = job.reply.send(result.map_err(Problem::from));
                        }
                    }
                    Err(e) => {
                        let p = Problem::from(e);
                        for job in jobs.drain(..) {
                            let _ = job.reply.send(Err(p.clone()));
                        }
                    }
                }
                if let Some(signer) = &signer
                    && let Err(e) = audit::maybe_checkpoint(&ws, signer, policy, now)
                {
                    tracing::warn!(error = %e, "could not sign a checkpoint");
                }
            }
        })
        .expect("spawning the writer thread");
    (tx, handle)
}

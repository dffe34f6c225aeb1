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

/// Where a command's result goes: the run's state, shared with the run cache.
pub type Reply = oneshot::Sender<Result<Arc<RunState>, Problem>>;

#[derive(Debug)]
pub struct Job {
    pub item: BatchItem,
    pub reply: Reply,
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
            let mut items: Vec<BatchItem> = Vec::with_capacity(batch_max);
            let mut replies: Vec<Reply> = Vec::with_capacity(batch_max);
            while let Some(first) = rx.blocking_recv() {
                let mut next = Some(first);
                while let Some(Job { item, reply }) = next {
                    // The items are moved out of their jobs, not copied: each
                    // holds a command's values, and copying them on this
                    // thread held up every commit behind it.
                    items.push(item);
                    replies.push(reply);
                    next = if items.len() < batch_max { rx.try_recv().ok() } else { None };
                }
                let now = clock.now();
                metrics.batch(items.len());
                match ws.execute_many(&items, now) {
                    Ok(results) => {
                        for (reply, result) in replies.drain(..).zip(results) {
                            let _ = reply.send(result.map_err(Problem::from));
                        }
                    }
                    Err(e) => {
                        let p = Problem::from(e);
                        for reply in replies.drain(..) {
                            let _ = reply.send(Err(p.clone()));
                        }
                    }
                }
                items.clear();
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

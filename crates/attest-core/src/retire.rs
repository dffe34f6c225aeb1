//! Drops what a group commit leaves behind on a thread of its own.
//!
//! A large group commit is decided on a second thread, so the events and the
//! old projection rows of its runs are allocated there and were freed on the
//! writer's thread after the write: each free of another thread's block goes
//! through an atomic list in mimalloc, and all of it kept the store waiting
//! for the next batch. The retiring thread frees them while the writer goes
//! on, on the core the second thread leaves idle between batches.

use std::sync::OnceLock;
use std::sync::mpsc::{SyncSender, TrySendError, sync_channel};
use std::thread::JoinHandle;

/// Batches of garbage waiting to be dropped; past it, the caller drops its
/// own, so memory stays bounded when the thread falls behind.
const RETIRE_QUEUE_BATCHES: usize = 4;

type Garbage = Box<dyn Send>;

/// A thread that drops values sent to it, started by the first value and
/// joined when this drops.
#[derive(Default)]
pub(crate) struct Retirer {
    /// `None` inside when the thread could not be started: values are then
    /// dropped where they are retired.
    thread: OnceLock<Option<(SyncSender<Garbage>, JoinHandle<()>)>>,
}

impl std::fmt::Debug for Retirer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Retirer").field("started", &self.thread.get().is_some_and(Option::is_some)).finish()
    }
}

impl Retirer {
    /// Drops `value` on the retiring thread, or here if its queue is full.
    pub(crate) fn retire<T: Send + 'static>(&self, value: T) {
        let thread = self.thread.get_or_init(|| {
            let (sender, receiver) = sync_channel::<Garbage>(RETIRE_QUEUE_BATCHES);
            let spawned = std::thread::Builder::new().name("attest-retire".into()).spawn(move || {
                // Each value drops as it arrives; the loop ends when the sender goes.
                for garbage in receiver {
                    drop(garbage);
                }
            });
            // Without the thread, values drop where they are retired, as
            // they did before it: slower, but nothing is lost.
            spawned.ok().map(|handle| (sender, handle))
        });
        let Some((sender, _)) = thread else { return };
        match sender.try_send(Box::new(value)) {
            Ok(()) => {}
            Err(TrySendError::Full(garbage) | TrySendError::Disconnected(garbage)) => drop(garbage),
        }
    }
}

impl Drop for Retirer {
    fn drop(&mut self) {
        if let Some(Some((sender, handle))) = self.thread.take() {
            drop(sender);
            // A panic in a drop has already been reported by the panic hook;
            // there is nothing left to clean up.
            handle.join().ok();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    struct Counted(Arc<AtomicUsize>);

    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn every_retired_value_is_dropped_by_the_time_the_retirer_is() {
        let dropped = Arc::new(AtomicUsize::new(0));
        let retirer = Retirer::default();
        // More than the queue holds, so some are dropped in place.
        for _ in 0..100 {
            retirer.retire(vec![Counted(Arc::clone(&dropped)), Counted(Arc::clone(&dropped))]);
        }
        drop(retirer);
        assert_eq!(dropped.load(Ordering::SeqCst), 200);
    }

    #[test]
    fn a_retirer_never_used_starts_no_thread() {
        let retirer = Retirer::default();
        assert!(retirer.thread.get().is_none());
        assert_eq!(format!("{retirer:?}"), "Retirer { started: false }");
    }
}

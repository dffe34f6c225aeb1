//! WAL checkpoints off the write path.
//!
//! SQLite's automatic checkpoint runs inside the commit that crosses its
//! threshold, so a writer that commits large batches paid for copying the
//! WAL into the database (and an fsync of the database) in nearly every
//! commit. Here the writer's connection never checkpoints on its own: after a
//! commit it wakes a thread with a second connection, which checkpoints in
//! PASSIVE mode, so it never waits for the writer nor makes it wait. A commit
//! stays durable as before: it is fsync'd in the WAL before it returns, and a
//! checkpoint only copies what is already there.
//!
//! The WAL restarts from its beginning once a checkpoint has copied all of it
//! and the writer begins its next transaction. A writer that commits back to
//! back (one command per commit) begins that transaction while the checkpoint
//! of its last commit is still running, so the WAL would only grow. Each
//! background checkpoint reports how many frames the WAL holds; past a
//! threshold the writer checkpoints itself in RESTART mode, copying only what
//! the background checkpoints have not and waiting for readers, so its next
//! commit starts the WAL over. Should the background thread fall silent, the
//! writer does the same once the WAL file passes a ceiling, and its next
//! commit cuts the file back to half the ceiling.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::Connection;

use crate::{BUSY_TIMEOUT_MS, other, sql};
use attest_store::StoreResult;

/// When the background thread checkpoints and when the writer does.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WalPolicy {
    /// Least time between two background checkpoints: each fsyncs the
    /// database file, so commits that come faster share one.
    pub min_gap: Duration,
    /// WAL frames, as the last background checkpoint counted them, past
    /// which the writer checkpoints itself.
    pub restart_frames: u64,
    /// WAL file size past which the writer checkpoints itself.
    pub ceiling_bytes: u64,
}

impl Default for WalPolicy {
    fn default() -> Self {
        // About as often as SQLite's automatic checkpoint for single-command
        // commits, and after every commit of a group of hundreds of runs
        // (about 1,100 frames each), whose WAL restarts between commits by
        // itself unless checkpoints fall a few commits behind.
        WalPolicy { min_gap: Duration::from_millis(200), restart_frames: 4096, ceiling_bytes: 64 * 1024 * 1024 }
    }
}

/// What the writer tells the checkpoint thread.
#[derive(Debug, Default)]
struct Signal {
    /// A commit landed since the last checkpoint began.
    committed: bool,
    stop: bool,
}

#[derive(Debug, Default)]
struct Shared {
    signal: Mutex<Signal>,
    wake: Condvar,
    /// Frames in the WAL when the last background checkpoint ran.
    wal_frames: AtomicU64,
}

impl Shared {
    /// The signal, even if a thread panicked holding it: it holds two flags,
    /// and stopping the thread must work regardless.
    fn signal(&self) -> MutexGuard<'_, Signal> {
        self.signal.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The checkpoint thread of one store; dropping it stops and joins the thread.
#[derive(Debug)]
pub(crate) struct WalCheckpointer {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    wal_path: PathBuf,
    restart_frames: u64,
    ceiling_bytes: u64,
}

impl WalCheckpointer {
    /// Turns off the automatic checkpoint of `writer` and starts the thread
    /// that checkpoints the database at `path` instead.
    pub(crate) fn start(writer: &Connection, path: &Path, policy: WalPolicy) -> StoreResult<Self> {
        writer.pragma_update(None, "wal_autocheckpoint", 0).map_err(sql)?;
        // A restarted WAL keeps this much of its file, so commits overwrite it
        // in place instead of growing it, which costs its fsync a metadata write.
        let kept_bytes = i64::try_from(policy.ceiling_bytes / 2).unwrap_or(i64::MAX);
        writer.pragma_update(None, "journal_size_limit", kept_bytes).map_err(sql)?;
        let conn = Connection::open(path).map_err(sql)?;
        conn.busy_timeout(Duration::from_millis(BUSY_TIMEOUT_MS)).map_err(sql)?;
        // A checkpoint fsyncs the database before the WAL may be restarted
        // over what it copied only when this connection syncs fully.
        conn.pragma_update(None, "synchronous", "FULL").map_err(sql)?;
        let shared = Arc::new(Shared::default());
        let thread = std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn({
                let shared = Arc::clone(&shared);
                move || checkpoint_loop(&conn, &shared, policy.min_gap)
            })
            .map_err(other)?;
        let mut wal_path = path.as_os_str().to_os_string();
        wal_path.push("-wal");
        Ok(WalCheckpointer {
            shared,
            thread: Some(thread),
            wal_path: wal_path.into(),
            restart_frames: policy.restart_frames,
            ceiling_bytes: policy.ceiling_bytes,
        })
    }

    /// Called by the writer after each commit, on its own connection.
    /// The commit has landed, so nothing here fails it: a failed checkpoint is
    /// logged and the next commit tries again.
    pub(crate) fn committed(&self, writer: &Connection) {
        self.shared.signal().committed = true;
        self.shared.wake.notify_one();
        let wal_frames = self.shared.wal_frames.load(Ordering::Relaxed);
        let wal_bytes = std::fs::metadata(&self.wal_path).map(|m| m.len()).unwrap_or(0);
        if wal_frames <= self.restart_frames && wal_bytes <= self.ceiling_bytes {
            return;
        }
        match checkpoint(writer, "RESTART") {
            Ok(Some(_)) => self.shared.wal_frames.store(0, Ordering::Relaxed),
            // The background thread is checkpointing, or a reader holds the
            // WAL; the next commit tries again.
            Ok(None) => tracing::debug!(wal_frames, wal_bytes, "the WAL could not be restarted yet"),
            Err(e) => tracing::warn!(wal_frames, wal_bytes, error = %e, "checkpointing a large WAL failed"),
        }
    }
}

impl Drop for WalCheckpointer {
    fn drop(&mut self) {
        self.shared.signal().stop = true;
        self.shared.wake.notify_one();
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("the WAL checkpoint thread panicked");
        }
    }
}

/// Checkpoints after commits, at most once per `min_gap`, until told to stop.
fn checkpoint_loop(conn: &Connection, shared: &Shared, min_gap: Duration) {
    let mut last: Option<Instant> = None;
    let mut signal = shared.signal();
    loop {
        if signal.stop {
            return;
        }
        if !signal.committed {
            signal = shared.wake.wait(signal).unwrap_or_else(|p| p.into_inner());
            continue;
        }
        let now = Instant::now();
        if let Some(due) = last.map(|at| at + min_gap).filter(|due| *due > now) {
            signal = shared.wake.wait_timeout(signal, due - now).unwrap_or_else(|p| p.into_inner()).0;
            continue;
        }
        signal.committed = false;
        drop(signal);
        // PASSIVE copies what it can without waiting for anyone; whatever is
        // left goes with the next one.
        match checkpoint(conn, "PASSIVE") {
            Ok(Some(frames)) => shared.wal_frames.store(frames, Ordering::Relaxed),
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "a background WAL checkpoint failed"),
        }
        last = Some(Instant::now());
        signal = shared.signal();
    }
}

/// Runs a checkpoint in `mode` and returns the frames in the WAL, or `None`
/// when it could not run to its end because another connection was
/// checkpointing or a reader needed the WAL.
fn checkpoint(conn: &Connection, mode: &str) -> rusqlite::Result<Option<u64>> {
    let (busy, frames): (i64, i64) =
        conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok((busy == 0).then(|| u64::try_from(frames).unwrap_or(0)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SqliteStore;
    use attest_store::{DraftRow, DraftStore};
    use jiff::Timestamp;

    const COMMITS: usize = 100;
    /// Each commit writes a draft this large, so it fills a few dozen pages.
    const SOURCE_BYTES: usize = 64 * 1024;

    fn draft(i: usize) -> DraftRow {
        let at = Timestamp::from_second(1_700_000_000).unwrap_or_else(|e| panic!("{e}"));
        DraftRow {
            id: format!("d{i}"),
            template_key: format!("k{i}"),
            name: "K".into(),
            base_version: None,
            source: format!("# {i}\n{}", "x".repeat(SOURCE_BYTES)),
            revision: 1,
            created_by: "a@example.com".into(),
            created_at: at,
            updated_by: "a@example.com".into(),
            updated_at: at,
        }
    }

    fn wal_bytes(db: &Path) -> u64 {
        let mut wal = db.as_os_str().to_os_string();
        wal.push("-wal");
        std::fs::metadata(wal).map(|m| m.len()).unwrap_or(0)
    }

    /// Commits `commits` drafts, waiting `pause` after each, and returns the
    /// largest WAL file seen after a commit.
    fn largest_wal_bytes(store: &SqliteStore, commits: usize, pause: Duration) -> u64 {
        (0..commits)
            .map(|i| {
                store.create_draft(&draft(i)).unwrap_or_else(|e| panic!("{e}"));
                std::thread::sleep(pause);
                wal_bytes(store.path())
            })
            .max()
            .unwrap_or(0)
    }

    #[test]
    fn background_checkpoints_let_the_wal_restart_between_commits() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let policy = WalPolicy { min_gap: Duration::ZERO, restart_frames: u64::MAX, ceiling_bytes: u64::MAX };
        let store = SqliteStore::open_with(&dir.path().join("attest.db"), policy).unwrap_or_else(|e| panic!("{e}"));
        let largest = largest_wal_bytes(&store, COMMITS, Duration::from_millis(20));
        let written = (COMMITS * SOURCE_BYTES) as u64;
        assert!(largest < written / 4, "the WAL grew to {largest} bytes of {written} written");
    }

    #[test]
    fn back_to_back_commits_restart_the_wal_once_a_checkpoint_counts_enough_frames() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let policy = WalPolicy { min_gap: Duration::from_millis(20), restart_frames: 64, ceiling_bytes: u64::MAX };
        let store = SqliteStore::open_with(&dir.path().join("attest.db"), policy).unwrap_or_else(|e| panic!("{e}"));
        // Between two background checkpoints the WAL grows by the commits of
        // one gap: dozens on a disk that syncs in well under a millisecond.
        // Four times as many commits as the other tests keep that well below
        // the bound wherever the disk is fast or slow.
        let commits = 4 * COMMITS;
        let largest = largest_wal_bytes(&store, commits, Duration::ZERO);
        let written = (commits * SOURCE_BYTES) as u64;
        // Without restarts the WAL holds everything written; a writer's
        // checkpoint can lose to a background one now and then.
        assert!(largest < written / 4, "the WAL grew to {largest} bytes of {written} written");
    }

    #[test]
    fn the_writer_bounds_the_wal_when_checkpoints_fall_behind_and_nothing_is_lost() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let db = dir.path().join("attest.db");
        // One background checkpoint after the first commit, then none.
        let ceiling_bytes = 512 * 1024;
        let policy = WalPolicy { min_gap: Duration::from_secs(3600), restart_frames: u64::MAX, ceiling_bytes };
        let store = SqliteStore::open_with(&db, policy).unwrap_or_else(|e| panic!("{e}"));
        let largest = largest_wal_bytes(&store, COMMITS, Duration::ZERO);
        // The commit that crosses the ceiling is the last to grow the file,
        // or the one after it when the background checkpoint was running.
        let bound = ceiling_bytes + 4 * SOURCE_BYTES as u64;
        assert!(largest <= bound, "the WAL grew to {largest} bytes, past {bound}");
        drop(store);
        let store = SqliteStore::open(&db).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(store.draft_count().unwrap_or_else(|e| panic!("{e}")), COMMITS as u64);
        let last = store.draft(&format!("d{}", COMMITS - 1)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(last, Some(draft(COMMITS - 1)));
    }

    #[test]
    fn dropping_the_store_joins_the_checkpoint_thread_and_closes_its_connection() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let db = dir.path().join("attest.db");
        let store = SqliteStore::open(&db).unwrap_or_else(|e| panic!("{e}"));
        store.create_draft(&draft(0)).unwrap_or_else(|e| panic!("{e}"));
        assert!(wal_bytes(&db) > 0);
        drop(store);
        // SQLite removes the WAL only when the last connection to the file closes.
        assert_eq!(wal_bytes(&db), 0, "a connection to the database is still open");
        let mut wal = db.into_os_string();
        wal.push("-wal");
        assert!(!Path::new(&wal).exists());
    }
}

//! Runs this process committed lately, each with the projection rows its last
//! commit wrote. The next command on such a run needs neither its state read
//! back and parsed nor its projection rows read to find what changed. Nothing
//! asks the store whether an entry is current: the commit's version check
//! refuses one that another process (or a write past this workspace) moved,
//! and the command is decided again on the stored run.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use attest_engine::RunState;
use attest_store::StoredProjection;

/// Runs kept; each holds a deep copy of its values, so the bound is memory.
pub(crate) const RUN_CACHE_CAPACITY: usize = 4096;

#[derive(Debug)]
pub(crate) struct CachedRun {
    /// The run's version (event count) when this was stored.
    pub version: u64,
    /// Shared with the result handed to the command's caller, which is done
    /// with it by the run's next command, so that command rarely copies it.
    pub state: Arc<RunState>,
    pub projection: StoredProjection,
}

#[derive(Debug)]
pub(crate) struct RunCache {
    entries: HashMap<String, (u64, CachedRun)>,
    /// Insertion order for eviction, as (run, generation); an item whose
    /// generation is no longer the entry's is stale and skipped.
    order: VecDeque<(String, u64)>,
    generation: u64,
    capacity: usize,
}

impl RunCache {
    pub(crate) fn new(capacity: usize) -> Self {
        assert!(capacity > 0, "a run cache holds at least one run");
        RunCache { entries: HashMap::new(), order: VecDeque::new(), generation: 0, capacity }
    }

    /// Takes a run out. The caller puts the run back after its commit lands.
    pub(crate) fn take(&mut self, run_id: &str) -> Option<CachedRun> {
        self.entries.remove(run_id).map(|(_, run)| run)
    }

    pub(crate) fn put(&mut self, run_id: String, run: CachedRun) {
        self.generation += 1;
        self.order.push_back((run_id.clone(), self.generation));
        self.entries.insert(run_id, (self.generation, run));
        while self.entries.len() > self.capacity {
            let Some((oldest, generation)) = self.order.pop_front() else { break };
            if self.entries.get(&oldest).is_some_and(|(g, _)| *g == generation) {
                self.entries.remove(&oldest);
            }
        }
        // Taken or replaced entries leave stale items behind; compact so the
        // queue stays within a constant factor of the entries.
        if self.order.len() > 2 * self.capacity {
            let entries = &self.entries;
            self.order.retain(|(run, generation)| entries.get(run).is_some_and(|(g, _)| g == generation));
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use attest_store::RunFacts;

    fn cached(version: u64) -> CachedRun {
        let state = RunState {
            run_id: "r".into(),
            template_key: "t".into(),
            version: 1,
            content_hash: String::new(),
            name: "r".into(),
            starter: "s".into(),
            started_at: jiff::Timestamp::UNIX_EPOCH,
            status: attest_engine::RunStatus::Open,
            finished_at: None,
            cancel_reason: None,
            due_at: None,
            values: Default::default(),
            tasks: Vec::new(),
            rework_count: 0,
            event_count: version,
            updated_at: jiff::Timestamp::UNIX_EPOCH,
        };
        let facts = RunFacts {
            run_id: "r".into(),
            template_key: "t".into(),
            version: 1,
            status: attest_engine::RunStatus::Open,
            started_at: jiff::Timestamp::UNIX_EPOCH,
            finished_at: None,
            rejections: 0,
            event_count: version,
            on_time: None,
            tasks: Vec::new(),
            controls: Vec::new(),
        };
        CachedRun { version, state: Arc::new(state), projection: StoredProjection { tasks: Vec::new(), facts } }
    }

    #[test]
    fn take_hands_out_a_run_once() {
        let mut cache = RunCache::new(4);
        cache.put("a".into(), cached(3));
        assert_eq!(cache.take("a").map(|r| r.version), Some(3));
        assert!(cache.take("a").is_none(), "taken until put back");
    }

    #[test]
    fn the_oldest_run_is_evicted_beyond_capacity_and_the_queue_stays_bounded() {
        let mut cache = RunCache::new(2);
        cache.put("a".into(), cached(1));
        cache.put("b".into(), cached(1));
        cache.put("c".into(), cached(1));
        assert_eq!(cache.len(), 2);
        assert!(cache.take("a").is_none(), "the oldest went first");
        for round in 0..1000 {
            let run = cache.take("b").expect("b is cached");
            assert_eq!(run.version, round + 1);
            cache.put("b".into(), CachedRun { version: run.version + 1, ..run });
        }
        assert!(cache.order.len() <= 4, "stale queue items are compacted: {}", cache.order.len());
        assert!(cache.take("c").is_some(), "the newer run survived");
    }
}

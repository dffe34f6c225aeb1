//! Log analyses: directly-follows graph with performance, start and end
//! activities, variants, activity counts and case durations.
//!
//! Definitions follow pm4py: a directly-follows pair is two consecutive events
//! of one case (in timestamp order), its performance is the time between them,
//! and a variant is a case's sequence of activities.

use foldhash::HashMap;
use std::cmp::Ordering;

use serde::Serialize;

use crate::log::{ActivityId, EventLog};

const MICROS_PER_SECOND: f64 = 1_000_000.0;

/// One edge of the directly-follows graph.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DfgEdge {
    /// The earlier activity.
    pub source: ActivityId,
    /// The activity directly following it.
    pub target: ActivityId,
    /// How many times `target` directly follows `source`.
    pub count: u64,
    /// Mean time between the two events, over pairs where both have a timestamp.
    pub mean_seconds: Option<f64>,
    /// Median of the same times.
    pub median_seconds: Option<f64>,
}

/// The directly-follows graph of a log.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Dfg {
    /// Edges by count, highest first; ties by source then target name.
    pub edges: Vec<DfgEdge>,
    /// Activities that start a case, with how many cases they start.
    pub start_activities: Vec<(ActivityId, u64)>,
    /// Activities that end a case, with how many cases they end.
    pub end_activities: Vec<(ActivityId, u64)>,
    /// How many events each activity has.
    pub activity_counts: Vec<(ActivityId, u64)>,
}

impl Dfg {
    /// The sum of all edge counts.
    pub fn total_count(&self) -> u64 {
        self.edges.iter().map(|edge| edge.count).sum()
    }

    /// The most frequent edge (ties go to the smallest source, then target, name).
    pub fn top_edge(&self) -> Option<&DfgEdge> {
        self.edges.first()
    }
}

/// A variant: a distinct sequence of activities and the cases that follow it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Variant {
    /// The activities in order.
    pub activities: Vec<ActivityId>,
    /// How many cases have exactly this sequence.
    pub count: u64,
}

impl Variant {
    /// The activity names of this variant.
    pub fn names<'l>(&self, log: &'l EventLog) -> Vec<&'l str> {
        self.activities.iter().map(|&id| log.activity_name(id)).collect()
    }
}

/// Statistics of case durations (last event time minus first event time).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CaseDurationStats {
    /// Cases with at least one timestamp, which the statistics cover.
    pub cases: usize,
    /// Shortest duration.
    pub min_seconds: f64,
    /// Median duration.
    pub median_seconds: f64,
    /// Mean duration.
    pub mean_seconds: f64,
    /// 90th percentile, linearly interpolated between ranks (as numpy's default).
    pub p90_seconds: f64,
    /// Longest duration.
    pub max_seconds: f64,
}

/// The headline figures of a log, the same set pm4py's reference file lists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogSummary {
    /// Number of events.
    pub events: usize,
    /// Number of cases (traces).
    pub cases: usize,
    /// Number of distinct activities.
    pub activities: usize,
    /// Number of distinct directly-follows pairs.
    pub dfg_edges: usize,
    /// Sum of directly-follows counts.
    pub dfg_total_count: u64,
    /// Number of distinct variants.
    pub variants: usize,
    /// Number of distinct start activities.
    pub start_activities: usize,
    /// Number of distinct end activities.
    pub end_activities: usize,
    /// The most frequent directly-follows pair.
    pub top_dfg_edge: Option<(String, String)>,
    /// Its count (0 without edges).
    pub top_dfg_count: u64,
}

/// Computes the directly-follows graph with frequencies and performance.
pub fn discover_dfg(log: &EventLog) -> Dfg {
    let mut index: HashMap<(ActivityId, ActivityId), usize> = HashMap::default();
    let mut counts: Vec<u64> = Vec::new();
    let mut durations_us: Vec<Vec<i64>> = Vec::new();
    let mut pairs: Vec<(ActivityId, ActivityId)> = Vec::new();
    let mut starts: HashMap<ActivityId, u64> = HashMap::default();
    let mut ends: HashMap<ActivityId, u64> = HashMap::default();
    for trace in &log.traces {
        let (Some(first), Some(last)) = (trace.events.first(), trace.events.last()) else {
            continue;
        };
        *starts.entry(first.activity).or_default() += 1;
        *ends.entry(last.activity).or_default() += 1;
        for pair in trace.events.windows(2) {
            let key = (pair[0].activity, pair[1].activity);
            let slot = *index.entry(key).or_insert_with(|| {
                pairs.push(key);
                counts.push(0);
                durations_us.push(Vec::new());
                pairs.len() - 1
            });
            counts[slot] += 1;
            if let (Some(from), Some(to)) = (pair[0].timestamp_us, pair[1].timestamp_us) {
                durations_us[slot].push(to.saturating_sub(from));
            }
        }
    }
    let mut edges: Vec<DfgEdge> = pairs
        .into_iter()
        .zip(counts)
        .zip(durations_us)
        .map(|(((source, target), count), mut durations)| {
            let mean_seconds = mean_seconds(&durations);
            let median_seconds = percentile_seconds(&mut durations, 0.5);
            DfgEdge { source, target, count, mean_seconds, median_seconds }
        })
        .collect();
    edges.sort_by(|a, b| {
        b.count.cmp(&a.count).then_with(|| {
            let a_names = (log.activity_name(a.source), log.activity_name(a.target));
            a_names.cmp(&(log.activity_name(b.source), log.activity_name(b.target)))
        })
    });
    Dfg {
        edges,
        start_activities: sorted_counts(log, starts),
        end_activities: sorted_counts(log, ends),
        activity_counts: activity_counts(log),
    }
}

/// Counts events per activity, highest first (ties by name).
pub fn activity_counts(log: &EventLog) -> Vec<(ActivityId, u64)> {
    let mut counts = vec![0u64; log.activities.len()];
    for event in log.traces.iter().flat_map(|trace| &trace.events) {
        if let Some(count) = counts.get_mut(event.activity.index()) {
            *count += 1;
        }
    }
    let used = counts
        .into_iter()
        .enumerate()
        .filter(|&(_, count)| count > 0)
        .map(|(index, count)| (ActivityId(index as u32), count))
        .collect::<HashMap<_, _>>();
    sorted_counts(log, used)
}

/// The variants, most frequent first; ties by the activity names in order.
pub fn variants(log: &EventLog) -> Vec<Variant> {
    let mut counts: HashMap<Vec<ActivityId>, u64> = HashMap::default();
    let mut sequence = Vec::new();
    for trace in &log.traces {
        sequence.clear();
        sequence.extend(trace.events.iter().map(|event| event.activity));
        // Looking up by slice allocates only for a variant not seen before.
        match counts.get_mut(sequence.as_slice()) {
            Some(count) => *count += 1,
            None => {
                counts.insert(sequence.clone(), 1);
            }
        }
    }
    let mut variants: Vec<Variant> =
        counts.into_iter().map(|(activities, count)| Variant { activities, count }).collect();
    variants.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| compare_sequences(log, &a.activities, &b.activities)));
    variants
}

fn compare_sequences(log: &EventLog, a: &[ActivityId], b: &[ActivityId]) -> Ordering {
    a.iter().map(|&id| log.activity_name(id)).cmp(b.iter().map(|&id| log.activity_name(id)))
}

/// Duration statistics over the cases that have timestamps; `None` if none has.
pub fn case_duration_stats(log: &EventLog) -> Option<CaseDurationStats> {
    let mut durations_us: Vec<i64> = log
        .traces
        .iter()
        .filter_map(|trace| {
            let mut times = trace.events.iter().filter_map(|event| event.timestamp_us);
            let first = times.next()?;
            let (min, max) = times.fold((first, first), |(min, max), t| (min.min(t), max.max(t)));
            Some(max.saturating_sub(min))
        })
        .collect();
    if durations_us.is_empty() {
        return None;
    }
    durations_us.sort_unstable();
    let mean = mean_seconds(&durations_us)?;
    Some(CaseDurationStats {
        cases: durations_us.len(),
        min_seconds: durations_us[0] as f64 / MICROS_PER_SECOND,
        median_seconds: sorted_percentile_seconds(&durations_us, 0.5),
        mean_seconds: mean,
        p90_seconds: sorted_percentile_seconds(&durations_us, 0.9),
        max_seconds: durations_us[durations_us.len() - 1] as f64 / MICROS_PER_SECOND,
    })
}

/// The headline figures compared with pm4py's reference.
pub fn summarize(log: &EventLog) -> LogSummary {
    let dfg = discover_dfg(log);
    let top = dfg.top_edge();
    LogSummary {
        events: log.event_count(),
        cases: log.traces.len(),
        activities: dfg.activity_counts.len(),
        dfg_edges: dfg.edges.len(),
        dfg_total_count: dfg.total_count(),
        variants: variants(log).len(),
        start_activities: dfg.start_activities.len(),
        end_activities: dfg.end_activities.len(),
        top_dfg_edge: top
            .map(|edge| (log.activity_name(edge.source).to_owned(), log.activity_name(edge.target).to_owned())),
        top_dfg_count: top.map_or(0, |edge| edge.count),
    }
}

fn sorted_counts(log: &EventLog, counts: HashMap<ActivityId, u64>) -> Vec<(ActivityId, u64)> {
    let mut counts: Vec<(ActivityId, u64)> = counts.into_iter().collect();
    counts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| log.activity_name(a.0).cmp(log.activity_name(b.0))));
    counts
}

fn mean_seconds(durations_us: &[i64]) -> Option<f64> {
    if durations_us.is_empty() {
        return None;
    }
    let total: i128 = durations_us.iter().map(|&d| i128::from(d)).sum();
    Some(total as f64 / durations_us.len() as f64 / MICROS_PER_SECOND)
}

fn percentile_seconds(durations_us: &mut [i64], fraction: f64) -> Option<f64> {
    if durations_us.is_empty() {
        return None;
    }
    durations_us.sort_unstable();
    Some(sorted_percentile_seconds(durations_us, fraction))
}

/// Linear interpolation between the closest ranks, as numpy's default percentile.
fn sorted_percentile_seconds(sorted_us: &[i64], fraction: f64) -> f64 {
    let rank = fraction * (sorted_us.len() - 1) as f64;
    let lower = rank.floor() as usize;
    let upper = rank.ceil() as usize;
    let weight = rank - lower as f64;
    let value = sorted_us[lower] as f64 + (sorted_us[upper] as f64 - sorted_us[lower] as f64) * weight;
    value / MICROS_PER_SECOND
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::{Event, Trace};

    fn timed_log(cases: &[&[(&str, i64)]]) -> EventLog {
        let mut log = EventLog::new();
        for (index, case) in cases.iter().enumerate() {
            let mut trace = Trace::new(index.to_string());
            for &(name, seconds) in *case {
                let id = log.activities.intern(name);
                trace.events.push(Event::new(id).at(seconds * 1_000_000));
            }
            log.traces.push(trace);
        }
        log
    }

    #[test]
    fn dfg_counts_and_performance() {
        let log =
            timed_log(&[&[("a", 0), ("b", 10), ("c", 40)], &[("a", 0), ("b", 20), ("c", 30)], &[("a", 0), ("b", 60)]]);
        let dfg = discover_dfg(&log);
        let edge = |from: &str, to: &str| {
            dfg.edges.iter().find(|e| log.activity_name(e.source) == from && log.activity_name(e.target) == to).cloned()
        };
        let ab = edge("a", "b").expect("a->b");
        assert_eq!(ab.count, 3);
        assert_eq!(ab.mean_seconds, Some(30.0));
        assert_eq!(ab.median_seconds, Some(20.0));
        let bc = edge("b", "c").expect("b->c");
        assert_eq!((bc.count, bc.mean_seconds, bc.median_seconds), (2, Some(20.0), Some(20.0)));
        assert_eq!(dfg.total_count(), 5);
        assert_eq!(dfg.top_edge().map(|e| e.count), Some(3));
        assert_eq!(dfg.start_activities.len(), 1);
        assert_eq!(dfg.end_activities.len(), 2);
        assert_eq!(dfg.end_activities[0].1, 2);
    }

    #[test]
    fn variants_are_sorted_by_count_then_names() {
        let mut log = EventLog::new();
        log.push_case("1", ["a", "c"]);
        log.push_case("2", ["a", "b"]);
        log.push_case("3", ["a", "c"]);
        log.push_case("4", ["a", "b"]);
        log.push_case("5", ["z"]);
        let found = variants(&log);
        let names: Vec<(Vec<&str>, u64)> = found.iter().map(|v| (v.names(&log), v.count)).collect();
        assert_eq!(names, vec![(vec!["a", "b"], 2), (vec!["a", "c"], 2), (vec!["z"], 1)]);
    }

    #[test]
    fn case_durations_use_numpy_percentiles() {
        let log = timed_log(&[
            &[("a", 0), ("b", 10)],
            &[("a", 0), ("b", 20)],
            &[("a", 5), ("b", 35)],
            &[("a", 0), ("b", 100)],
            &[("a", 7)],
        ]);
        let stats = case_duration_stats(&log).expect("stats");
        // Sorted durations: 0, 10, 20, 30, 100.
        assert_eq!(stats.cases, 5);
        assert_eq!(stats.min_seconds, 0.0);
        assert_eq!(stats.median_seconds, 20.0);
        assert_eq!(stats.mean_seconds, 32.0);
        assert!((stats.p90_seconds - 72.0).abs() < 1e-9, "{}", stats.p90_seconds);
        assert_eq!(stats.max_seconds, 100.0);
    }
}

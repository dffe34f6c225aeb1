//! Pure statistics for the metrics: nearest-rank percentiles, rates, weeks
//! and histogram buckets. No IO, no clock.

use jiff::Timestamp;
use serde::Serialize;

const DAY_MS: i64 = 86_400_000;
const HOUR_MS: i64 = 3_600_000;
/// 1970-01-01 was a Thursday: weeks start on Mondays, three days earlier.
const EPOCH_WEEKDAY_OFFSET_DAYS: i64 = 3;

/// The nearest-rank percentile `p` (0 < p ≤ 100) of sorted values: the
/// smallest value such that at least p% of the values are at most it.
pub fn percentile(sorted: &[i64], p: u32) -> Option<i64> {
    percentile_rank(sorted.len(), p).and_then(|rank| sorted.get(rank - 1).copied())
}

/// The 1-based nearest rank of percentile `p` among `n` values.
fn percentile_rank(n: usize, p: u32) -> Option<usize> {
    if n == 0 || p == 0 || p > 100 {
        return None;
    }
    Some((u64::from(p) * n as u64).div_ceil(100).max(1) as usize)
}

/// A share with its parts, so a reader sees how much it rests on.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Rate {
    pub count: u64,
    pub of: u64,
    /// `count / of`, absent when `of` is 0.
    pub rate: Option<f64>,
}

impl Rate {
    pub fn new(count: u64, of: u64) -> Self {
        Rate { count, of, rate: if of == 0 { None } else { Some(count as f64 / of as f64) } }
    }
}

/// Count, median and p90 of durations in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Durations {
    pub count: u64,
    pub median_ms: Option<i64>,
    pub p90_ms: Option<i64>,
    pub max_ms: Option<i64>,
}

impl Durations {
    /// Summarises values; reorders them in place. Two selections instead of
    /// a sort: a dashboard summarises a million task waits on each read.
    pub fn of(values: &mut [i64]) -> Self {
        let rank_index = |p: u32| percentile_rank(values.len(), p).map(|rank| rank - 1);
        let (median_index, p90_index) = (rank_index(50), rank_index(90));
        let mut median_ms = None;
        let mut p90_ms = None;
        if let (Some(m), Some(n)) = (median_index, p90_index) {
            let (_, median, above) = values.select_nth_unstable(m);
            median_ms = Some(*median);
            // The p90 is at or above the median: select it among the values above.
            p90_ms = if n == m { Some(*median) } else { Some(*above.select_nth_unstable(n - m - 1).1) };
        }
        Durations { count: values.len() as u64, median_ms, p90_ms, max_ms: values.iter().copied().max() }
    }
}

/// The Monday 00:00 UTC that starts the week holding `t`.
pub fn week_start(t: Timestamp) -> Timestamp {
    let days = t.as_millisecond().div_euclid(DAY_MS);
    let week = (days + EPOCH_WEEKDAY_OFFSET_DAYS).div_euclid(7);
    Timestamp::from_millisecond((week * 7 - EPOCH_WEEKDAY_OFFSET_DAYS) * DAY_MS).unwrap_or(t)
}

/// Week starts from the week of `from` to the week of `to` inclusive, at
/// most `max` of them (the latest ones).
pub fn weeks(from: Timestamp, to: Timestamp, max: usize) -> Vec<Timestamp> {
    let first = week_start(from).as_millisecond();
    let last = week_start(to).as_millisecond();
    if last < first || max == 0 {
        return Vec::new();
    }
    let week_ms = 7 * DAY_MS;
    let count = ((last - first) / week_ms + 1) as usize;
    let skip = count.saturating_sub(max);
    (skip..count).filter_map(|i| Timestamp::from_millisecond(first + i as i64 * week_ms).ok()).collect()
}

/// Bucket widths a histogram may use: readable durations.
const BUCKET_WIDTHS_MS: &[i64] = &[
    HOUR_MS,
    2 * HOUR_MS,
    4 * HOUR_MS,
    6 * HOUR_MS,
    12 * HOUR_MS,
    DAY_MS,
    2 * DAY_MS,
    7 * DAY_MS,
    14 * DAY_MS,
    30 * DAY_MS,
    90 * DAY_MS,
    365 * DAY_MS,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Bucket {
    /// Lower bound, inclusive.
    pub from_ms: i64,
    /// Upper bound, exclusive.
    pub to_ms: i64,
    pub count: u64,
}

/// A histogram of non-negative durations with at most `max_buckets`
/// buckets of the smallest readable width that fits them, from zero to the
/// bucket holding the largest value.
pub fn histogram(values: &[i64], max_buckets: usize) -> Vec<Bucket> {
    let Some(&max) = values.iter().max() else { return Vec::new() };
    let max = max.max(0);
    let max_buckets = max_buckets.max(1) as i64;
    let width = BUCKET_WIDTHS_MS
        .iter()
        .copied()
        .find(|w| max / w < max_buckets)
        .unwrap_or_else(|| (max / max_buckets + 1).max(1));
    let n = (max / width + 1) as usize;
    let mut buckets: Vec<Bucket> =
        (0..n).map(|i| Bucket { from_ms: i as i64 * width, to_ms: (i as i64 + 1) * width, count: 0 }).collect();
    for &v in values {
        let i = (v.max(0) / width) as usize;
        if let Some(b) = buckets.get_mut(i) {
            b.count += 1;
        }
    }
    buckets
}

/// A duration for people: `3d 4h`, `2h 5m`, `40s`.
pub fn human_duration(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    let (d, h, m) = (s / 86_400, (s % 86_400) / 3600, (s % 3600) / 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, m) => format!("{m}m"),
        (0, h, 0) => format!("{h}h"),
        (0, h, m) => format!("{h}h {m}m"),
        (d, 0, _) => format!("{d}d"),
        (d, h, _) => format!("{d}d {h}h"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().expect("timestamp")
    }

    #[test]
    fn nearest_rank_percentiles() {
        let h = HOUR_MS;
        assert_eq!(percentile(&[2 * h, 4 * h, 10 * h], 50), Some(4 * h));
        assert_eq!(percentile(&[2 * h, 4 * h, 10 * h], 90), Some(10 * h));
        assert_eq!(percentile(&[1, 2, 3, 4], 50), Some(2));
        assert_eq!(percentile(&(1..=10).collect::<Vec<_>>(), 90), Some(9));
        assert_eq!(percentile(&(1..=11).collect::<Vec<_>>(), 90), Some(10));
        assert_eq!(percentile(&[7], 90), Some(7));
        assert_eq!(percentile(&[], 50), None);
        assert_eq!(percentile(&[1], 0), None);
    }

    proptest::proptest! {
        /// The selections give exactly the nearest-rank figures of a full sort.
        #[test]
        fn durations_by_selection_equal_the_sorted_figures(mut values in proptest::collection::vec(-5i64..50, 0..200)) {
            let mut sorted = values.clone();
            sorted.sort_unstable();
            let d = Durations::of(&mut values);
            proptest::prop_assert_eq!(d.count, sorted.len() as u64);
            proptest::prop_assert_eq!(d.median_ms, percentile(&sorted, 50));
            proptest::prop_assert_eq!(d.p90_ms, percentile(&sorted, 90));
            proptest::prop_assert_eq!(d.max_ms, sorted.last().copied());
        }
    }

    #[test]
    fn rate_of_nothing_is_absent() {
        assert_eq!(Rate::new(0, 0).rate, None);
        assert_eq!(Rate::new(1, 4).rate, Some(0.25));
    }

    #[test]
    fn weeks_start_on_monday_utc() {
        // 2026-03-05 is a Thursday; its week starts Monday 2026-03-02.
        assert_eq!(week_start(ts("2026-03-05T13:00:00Z")), ts("2026-03-02T00:00:00Z"));
        assert_eq!(week_start(ts("2026-03-02T00:00:00Z")), ts("2026-03-02T00:00:00Z"));
        assert_eq!(week_start(ts("2026-03-01T23:59:59Z")), ts("2026-02-23T00:00:00Z"));
        assert_eq!(week_start(ts("1969-12-31T00:00:00Z")), ts("1969-12-29T00:00:00Z"));
        let w = weeks(ts("2026-03-05T00:00:00Z"), ts("2026-03-20T00:00:00Z"), 10);
        assert_eq!(w, vec![ts("2026-03-02T00:00:00Z"), ts("2026-03-09T00:00:00Z"), ts("2026-03-16T00:00:00Z")]);
        assert_eq!(weeks(ts("2026-03-05T00:00:00Z"), ts("2026-03-20T00:00:00Z"), 1), vec![ts("2026-03-16T00:00:00Z")]);
    }

    #[test]
    fn histogram_picks_the_smallest_readable_width() {
        let h = HOUR_MS;
        let buckets = histogram(&[2 * h, 4 * h, 10 * h], 12);
        assert_eq!(buckets.len(), 11);
        assert_eq!(buckets[0], Bucket { from_ms: 0, to_ms: h, count: 0 });
        assert_eq!(buckets[2].count, 1);
        assert_eq!(buckets[4].count, 1);
        assert_eq!(buckets[10], Bucket { from_ms: 10 * h, to_ms: 11 * h, count: 1 });
        let wide = histogram(&[0, 30 * DAY_MS], 12);
        assert_eq!(wide[0].to_ms, 7 * DAY_MS);
        assert_eq!(wide.iter().map(|b| b.count).sum::<u64>(), 2);
        assert!(histogram(&[], 12).is_empty());
    }

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(human_duration(4 * HOUR_MS), "4h");
        assert_eq!(human_duration(26 * HOUR_MS + 60_000), "1d 2h");
        assert_eq!(human_duration(90_000), "1m");
        assert_eq!(human_duration(5_000), "5s");
    }
}

//! Process metrics per template and template version (`docs/metrics.md`).
//!
//! Each run commit carries the run's facts ([`facts::advance`]), written in
//! the same transaction as its events. Reading metrics aggregates those fact
//! rows through [`attest_store::MetricsStore`]; it never reads events.

pub mod facts;
pub mod stats;

use std::collections::BTreeMap;

use attest_engine::{CompiledTemplate, Event, RunStatus};
use attest_store::{MetricScope, RunFacts, StoredProjection};
use jiff::Timestamp;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::workspace::Workspace;
pub use stats::{Bucket, Durations, Rate};

/// Most weeks a trend covers (the latest ones).
pub const MAX_TREND_WEEKS: usize = 52;
/// Buckets in the cycle-time histogram, at most.
pub const HISTOGRAM_BUCKETS: usize = 12;
/// Runs whose facts are filled in per store write when an older data
/// directory is opened.
const BACKFILL_BATCH: u32 = 500;

/// Which runs a metrics read covers: started in `[from, to)`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Period {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<Timestamp>,
}

impl Period {
    /// A period from its first and last day (`YYYY-MM-DD`, UTC) or instant
    /// (RFC 3339), both included.
    pub fn from_dates(from: Option<&str>, to: Option<&str>) -> Result<Self> {
        let from = from.map(|s| bound(s, "from", false)).transpose()?;
        let to = to.map(|s| bound(s, "to", true)).transpose()?;
        if let (Some(f), Some(t)) = (from, to)
            && t <= f
        {
            return Err(Error::BadInput("the period ends before it starts: 'to' must not be before 'from'".into()));
        }
        Ok(Period { from, to })
    }
}

/// A period bound: the start of a day or an instant; for the end (`after`),
/// the first instant after that day or instant.
fn bound(text: &str, what: &str, after: bool) -> Result<Timestamp> {
    let text = text.trim();
    let bad = || Error::BadInput(format!("{what} '{text}' is not a date: write YYYY-MM-DD or an RFC 3339 instant"));
    if let Ok(day) = text.parse::<jiff::civil::Date>() {
        let day = if after { day.tomorrow().map_err(|_| bad())? } else { day };
        return day.to_zoned(jiff::tz::TimeZone::UTC).map(|z| z.timestamp()).map_err(|_| bad());
    }
    let instant: Timestamp = text.parse().map_err(|_| bad())?;
    if after { instant.checked_add(jiff::SignedDuration::from_millis(1)).map_err(|_| bad()) } else { Ok(instant) }
}

/// Runs started in the period, by how they stand.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RunCounts {
    pub started: u64,
    pub completed: u64,
    pub cancelled: u64,
    pub open: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WeekFigure {
    /// Monday 00:00 UTC.
    pub week: Timestamp,
    /// Runs completed in the week.
    pub completed: u64,
    /// Median cycle time of those runs.
    pub median_cycle_ms: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ControlFigure {
    pub id: String,
    pub name: String,
    /// Completed runs where the control applied, and those where it passed.
    pub pass: Rate,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskWait {
    pub task: String,
    pub name: String,
    pub wait: Durations,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Overdue {
    pub tasks: u64,
    pub runs: u64,
}

/// The figures of one template (or one of its versions) over a period.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TemplateMetrics {
    pub template: String,
    pub name: String,
    /// `None`: every version together.
    pub version: Option<u32>,
    pub period: Period,
    pub now: Timestamp,
    pub runs: RunCounts,
    pub completion: Rate,
    pub cancellation: Rate,
    /// Rejections per run started in the period.
    pub rework_rate: Option<f64>,
    pub rejections: u64,
    pub cycle_time: Durations,
    pub on_time_tasks: Rate,
    pub on_time_runs: Rate,
    pub controls: Vec<ControlFigure>,
    /// Non-approval tasks, longest median wait first.
    pub bottlenecks: Vec<TaskWait>,
    /// Approval tasks, longest median delay to a decision first.
    pub approval_delays: Vec<TaskWait>,
    pub overdue: Overdue,
    /// Weekly throughput and cycle time by completion week.
    pub weeks: Vec<WeekFigure>,
    pub cycle_time_histogram: Vec<Bucket>,
}

/// One template's headline figures in the workspace overview.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TemplateOverview {
    pub template: String,
    pub name: String,
    pub latest_version: u32,
    pub runs: RunCounts,
    pub completion: Rate,
    pub rework_rate: Option<f64>,
    pub cycle_time: Durations,
    pub on_time_runs: Rate,
    pub overdue: Overdue,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Overview {
    pub period: Period,
    pub now: Timestamp,
    pub runs: RunCounts,
    pub overdue: Overdue,
    pub templates: Vec<TemplateOverview>,
}

/// Two versions of one template side by side.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VersionComparison {
    pub template: String,
    pub left: TemplateMetrics,
    pub right: TemplateMetrics,
}

impl Workspace {
    /// A run's facts as they were before a commit at `expected_version`
    /// (`None` for a new run): the stored projection's when the caller knows
    /// it, else read from the store. When the stored ones are missing or stale
    /// (an older data directory), they are rebuilt from the run's stored events.
    pub(crate) fn previous_facts(
        &self,
        compiled: &CompiledTemplate,
        expected_version: u64,
        known: Option<&StoredProjection>,
        run_id: &str,
    ) -> Result<Option<RunFacts>> {
        if let Some(p) = known {
            return Ok(Some(p.facts.clone()));
        }
        if expected_version == 0 {
            return Ok(None);
        }
        match self.store().run_facts(run_id)? {
            Some(f) if f.event_count == expected_version => Ok(Some(f)),
            _ => {
                let stored: Vec<Event> =
                    self.run_events(run_id)?.into_iter().map(|(_, e)| e).take(expected_version as usize).collect();
                facts::replay(compiled, &stored, &self.time_zone()).map_err(|e| Error::Other(e.into()))
            }
        }
    }

    /// Fills in the facts of runs that have none (a data directory from before
    /// metrics), by replaying their stored events. Returns how many were filled.
    pub fn backfill_metric_facts(&self) -> Result<usize> {
        let mut filled = 0;
        loop {
            let missing = self.store().runs_without_facts(BACKFILL_BATCH)?;
            if missing.is_empty() {
                return Ok(filled);
            }
            let mut batch = Vec::with_capacity(missing.len());
            for run_id in &missing {
                let row = self.run(run_id)?;
                let compiled = self.compiled(&row.template_key, row.template_version)?;
                let events: Vec<Event> = self.run_events(run_id)?.into_iter().map(|(_, e)| e).collect();
                if let Some(f) =
                    facts::replay(&compiled, &events, &self.time_zone()).map_err(|e| Error::Other(e.into()))?
                {
                    batch.push(f);
                }
            }
            let written = self.store().backfill_facts(&batch)?;
            filled += written;
            if written == 0 {
                // Every missing run moved meanwhile, and its commit wrote its facts.
                return Ok(filled);
            }
        }
    }

    /// The figures of a template, or of one of its versions, over a period.
    pub fn template_metrics(
        &self,
        key: &str,
        version: Option<u32>,
        period: Period,
        now: Timestamp,
    ) -> Result<TemplateMetrics> {
        let row = self.template_row(key, version)?;
        let names = self.compiled(key, row.version)?;
        let scope = MetricScope { template: Some(key.to_string()), version, from: period.from, to: period.to };
        let mut counts = RunCounts::default();
        let (mut rejections, mut on_time, mut judged) = (0u64, 0u64, 0u64);
        for r in self.store().run_counts(&scope)? {
            tally(&mut counts, r.status, r.runs);
            rejections += r.rejections;
            on_time += r.on_time;
            judged += r.judged;
        }
        let mut cycles: Vec<i64> = self.store().cycle_times(&scope)?.into_iter().flat_map(|c| c.cycle_ms).collect();
        let cycle_time_histogram = stats::histogram(&cycles, HISTOGRAM_BUCKETS);
        let cycle_time = Durations::of(&mut cycles);

        let mut waits: BTreeMap<(bool, String), Vec<i64>> = BTreeMap::new();
        let (mut tasks_on_time, mut tasks_due) = (0u64, 0u64);
        for t in self.store().task_waits(&scope)? {
            tasks_due += t.with_due;
            tasks_on_time += t.on_time;
            waits.entry((t.approval, t.task_key)).or_default().extend(t.wait_ms);
        }
        let task_name = |k: &str| {
            names.template.tasks.iter().find(|t| t.key == k).map_or_else(|| k.to_string(), |t| t.name.clone())
        };
        let (mut bottlenecks, mut approval_delays) = (Vec::new(), Vec::new());
        for ((approval, task), mut values) in waits {
            let wait = TaskWait { name: task_name(&task), task, wait: Durations::of(&mut values) };
            if approval { approval_delays.push(wait) } else { bottlenecks.push(wait) }
        }
        let by_median =
            |a: &TaskWait, b: &TaskWait| b.wait.median_ms.cmp(&a.wait.median_ms).then_with(|| a.task.cmp(&b.task));
        bottlenecks.sort_by(by_median);
        approval_delays.sort_by(by_median);

        let mut controls: BTreeMap<String, (u64, u64)> = BTreeMap::new();
        for c in self.store().control_counts(&scope)? {
            let e = controls.entry(c.control_id).or_default();
            e.0 += c.applied;
            e.1 += c.passed;
        }
        let controls = names
            .template
            .controls
            .iter()
            .map(|c| c.id.clone())
            .chain(controls.keys().cloned())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .map(|id| {
                let (applied, passed) = controls.get(&id).copied().unwrap_or_default();
                let name =
                    names.template.controls.iter().find(|c| c.id == id).map_or_else(String::new, |c| c.name.clone());
                ControlFigure { id, name, pass: Rate::new(passed, applied) }
            })
            .collect();

        let weeks = self.weekly(&scope, period, now)?;
        let overdue = self
            .store()
            .overdue_counts(&scope, now)?
            .iter()
            .fold(Overdue::default(), |o, r| Overdue { tasks: o.tasks + r.tasks, runs: o.runs + r.runs });
        Ok(TemplateMetrics {
            template: key.to_string(),
            name: row.name,
            version,
            period,
            now,
            completion: Rate::new(counts.completed, counts.started),
            cancellation: Rate::new(counts.cancelled, counts.started),
            rework_rate: (counts.started > 0).then(|| rejections as f64 / counts.started as f64),
            rejections,
            runs: counts,
            cycle_time,
            on_time_tasks: Rate::new(tasks_on_time, tasks_due),
            on_time_runs: Rate::new(on_time, judged),
            controls,
            bottlenecks,
            approval_delays,
            overdue,
            weeks,
            cycle_time_histogram,
        })
    }

    /// Weekly throughput and median cycle time, by the week runs completed in.
    fn weekly(&self, scope: &MetricScope, period: Period, now: Timestamp) -> Result<Vec<WeekFigure>> {
        let last = period.to.map_or(now, |t| t.checked_sub(jiff::SignedDuration::from_millis(1)).unwrap_or(t));
        // The trend covers at most the latest MAX_TREND_WEEKS weeks of the period.
        let window = stats::week_start(last)
            .checked_sub(jiff::SignedDuration::from_hours(24 * 7 * (MAX_TREND_WEEKS as i64 - 1)))
            .ok();
        let from = match (period.from, window) {
            (Some(f), Some(w)) => Some(f.max(w)),
            (f, w) => f.or(w),
        };
        let days = self.store().completion_days(&MetricScope { from, ..scope.clone() })?;
        let first = period.from.or_else(|| days.first().map(|d| d.day));
        let Some(first) = first else { return Ok(Vec::new()) };
        let weeks = stats::weeks(first, last.max(first), MAX_TREND_WEEKS);
        let mut per_week: BTreeMap<Timestamp, Vec<i64>> = weeks.iter().map(|w| (*w, Vec::new())).collect();
        // Weeks start at a midnight, so a day falls in one week.
        for day in days {
            if let Some(v) = per_week.get_mut(&stats::week_start(day.day)) {
                v.extend(day.cycle_ms);
            }
        }
        Ok(per_week
            .into_iter()
            .map(|(week, mut cycles)| {
                cycles.sort_unstable();
                WeekFigure { week, completed: cycles.len() as u64, median_cycle_ms: stats::percentile(&cycles, 50) }
            })
            .collect())
    }

    /// Two versions of a template over the same period.
    pub fn compare_versions(
        &self,
        key: &str,
        left: u32,
        right: u32,
        period: Period,
        now: Timestamp,
    ) -> Result<VersionComparison> {
        let left_metrics = self.template_metrics(key, Some(left), period, now)?;
        // A template with one version compares it with itself by default: read it once.
        let right_metrics =
            if right == left { left_metrics.clone() } else { self.template_metrics(key, Some(right), period, now)? };
        Ok(VersionComparison { template: key.to_string(), left: left_metrics, right: right_metrics })
    }

    /// Every template's headline figures over a period.
    pub fn metrics_overview(&self, period: Period, now: Timestamp) -> Result<Overview> {
        let scope = MetricScope { template: None, version: None, from: period.from, to: period.to };
        #[derive(Default)]
        struct Acc {
            counts: RunCounts,
            rejections: u64,
            cycles: Vec<i64>,
            on_time: (u64, u64),
        }
        let mut per: BTreeMap<String, Acc> = BTreeMap::new();
        for r in self.store().run_counts(&scope)? {
            let acc = per.entry(r.template_key).or_default();
            tally(&mut acc.counts, r.status, r.runs);
            acc.rejections += r.rejections;
            acc.on_time.0 += r.on_time;
            acc.on_time.1 += r.judged;
        }
        for c in self.store().cycle_times(&scope)? {
            per.entry(c.template_key).or_default().cycles.extend(c.cycle_ms);
        }
        let mut overdue: BTreeMap<String, Overdue> = BTreeMap::new();
        for r in self.store().overdue_counts(&scope, now)? {
            let o = overdue.entry(r.template_key).or_default();
            o.tasks += r.tasks;
            o.runs += r.runs;
        }
        let mut total = RunCounts::default();
        let mut total_overdue = Overdue::default();
        let mut templates = Vec::new();
        for t in self.store().templates()? {
            let mut acc = per.remove(&t.key).unwrap_or_default();
            let o = overdue.get(&t.key).copied().unwrap_or_default();
            total.started += acc.counts.started;
            total.completed += acc.counts.completed;
            total.cancelled += acc.counts.cancelled;
            total.open += acc.counts.open;
            total_overdue.tasks += o.tasks;
            total_overdue.runs += o.runs;
            templates.push(TemplateOverview {
                template: t.key,
                name: t.name,
                latest_version: t.latest_version,
                completion: Rate::new(acc.counts.completed, acc.counts.started),
                rework_rate: (acc.counts.started > 0).then(|| acc.rejections as f64 / acc.counts.started as f64),
                runs: acc.counts,
                cycle_time: Durations::of(&mut acc.cycles),
                on_time_runs: Rate::new(acc.on_time.0, acc.on_time.1),
                overdue: o,
            });
        }
        Ok(Overview { period, now, runs: total, overdue: total_overdue, templates })
    }
}

fn tally(counts: &mut RunCounts, status: RunStatus, runs: u64) {
    counts.started += runs;
    match status {
        RunStatus::Open => counts.open += runs,
        RunStatus::Completed => counts.completed += runs,
        RunStatus::Cancelled => counts.cancelled += runs,
    }
}

//! Conformance against an ordered checklist, and drafting such a checklist from a log.
//!
//! # Checking a case against a [`SequenceModel`]
//!
//! Each event of a case is matched to the step with the same activity. Then:
//!
//! * **extra**: the event's activity is not a step of the model;
//! * **repeated**: the event is a second (or later) occurrence of a step that
//!   is not repeatable;
//! * **out of order**: the event is not part of the longest subsequence of the
//!   remaining events whose steps follow the model order (occurrences of a
//!   repeatable step may be adjacent in it). When two steps are swapped, the
//!   earlier event, the one observed before a step that precedes it in the
//!   model, is the one reported;
//! * **skipped**: a required (not optional) step has no event at all. Its
//!   event index is where it was due: the first in-order event of a later
//!   step, or the case length when none follows.
//!
//! Each event yields at most one deviation and each step at most one skip, so
//! with `d` deviations, `s` model steps and `n` events, the case fitness
//! `1 - d / (s + n)` lies in `[0, 1]` (1 when `s + n = 0`). The log fitness is
//! `1 - Σd / Σ(s + n)` over all cases.

use foldhash::HashMap;

use serde::{Deserialize, Serialize};

use crate::analysis::variants;
use crate::log::{ActivityId, EventLog};

/// One step of an ordered checklist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SequenceStep {
    /// The activity that performs the step.
    pub activity: String,
    /// The step may be left out.
    pub optional: bool,
    /// The step may occur more than once.
    pub repeatable: bool,
}

impl SequenceStep {
    /// A required step that occurs once.
    pub fn required(activity: impl Into<String>) -> Self {
        Self { activity: activity.into(), optional: false, repeatable: false }
    }

    /// An optional step that occurs at most once.
    pub fn optional(activity: impl Into<String>) -> Self {
        Self { optional: true, ..Self::required(activity) }
    }

    /// The same step, allowed to repeat.
    pub fn repeatable(mut self) -> Self {
        self.repeatable = true;
        self
    }
}

/// A model step that cannot be told apart from another.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SequenceModelError {
    /// Two steps share an activity, so events could not be matched to one step.
    #[error("steps {first} and {second} both have the activity {activity:?}; each activity may appear once")]
    DuplicateActivity {
        /// The shared activity.
        activity: String,
        /// 0-based index of the first step.
        first: usize,
        /// 0-based index of the second step.
        second: usize,
    },
}

/// An ordered checklist whose steps have distinct activities.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SequenceModel {
    steps: Vec<SequenceStep>,
}

impl SequenceModel {
    /// Checks that no two steps share an activity.
    pub fn new(steps: Vec<SequenceStep>) -> Result<Self, SequenceModelError> {
        let mut seen: HashMap<&str, usize> = HashMap::default();
        for (index, step) in steps.iter().enumerate() {
            if let Some(&first) = seen.get(step.activity.as_str()) {
                return Err(SequenceModelError::DuplicateActivity {
                    activity: step.activity.clone(),
                    first,
                    second: index,
                });
            }
            seen.insert(&step.activity, index);
        }
        Ok(Self { steps })
    }

    /// A model from a draft: one step per drafted activity, in draft order.
    pub fn from_draft(draft: &[DraftStep]) -> Result<Self, SequenceModelError> {
        Self::new(
            draft
                .iter()
                .map(|step| SequenceStep {
                    activity: step.activity.clone(),
                    optional: step.optional,
                    repeatable: step.repeatable,
                })
                .collect(),
        )
    }

    /// The steps in order.
    pub fn steps(&self) -> &[SequenceStep] {
        &self.steps
    }
}

/// A difference between a case and the model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Deviation {
    /// A required step never happened; `event_index` is where it was due.
    Skipped {
        /// 0-based event position where the step was due.
        event_index: usize,
        /// 0-based step index.
        step_index: usize,
        /// The step's activity.
        activity: String,
    },
    /// An event whose activity the model does not have.
    Extra {
        /// 0-based event position.
        event_index: usize,
        /// The event's activity.
        activity: String,
    },
    /// An event that breaks the model order.
    OutOfOrder {
        /// 0-based event position.
        event_index: usize,
        /// 0-based step index of its activity.
        step_index: usize,
        /// The event's activity.
        activity: String,
    },
    /// Another occurrence of a step that is not repeatable.
    Repeated {
        /// 0-based event position.
        event_index: usize,
        /// 0-based step index of its activity.
        step_index: usize,
        /// The event's activity.
        activity: String,
    },
}

impl Deviation {
    /// Where in the case the deviation is.
    pub fn event_index(&self) -> usize {
        match self {
            Self::Skipped { event_index, .. }
            | Self::Extra { event_index, .. }
            | Self::OutOfOrder { event_index, .. }
            | Self::Repeated { event_index, .. } => *event_index,
        }
    }
}

/// The conformance of one case.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CaseConformance {
    /// The case id.
    pub case_id: String,
    /// `1 - deviations / (model steps + events)`.
    pub fitness: f64,
    /// The deviations, by event index.
    pub deviations: Vec<Deviation>,
}

/// The conformance of a log.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SequenceConformance {
    /// `1 - Σ deviations / Σ (model steps + events)` over all cases.
    pub fitness: f64,
    /// The mean of the case fitnesses (1 for an empty log).
    pub mean_case_fitness: f64,
    /// Cases without deviations.
    pub fitting_cases: usize,
    /// Per-case results, in log order.
    pub cases: Vec<CaseConformance>,
}

/// Checks every case of `log` against `model` (see the module documentation).
pub fn conform_sequence(log: &EventLog, model: &SequenceModel) -> SequenceConformance {
    let step_count = model.steps.len();
    let step_of: HashMap<ActivityId, usize> = model
        .steps
        .iter()
        .enumerate()
        .filter_map(|(index, step)| Some((log.activities.get(&step.activity)?, index)))
        .collect();
    let mut occurrences = vec![0usize; step_count];
    let mut cases = Vec::with_capacity(log.traces.len());
    let (mut deviation_total, mut size_total) = (0usize, 0usize);
    for trace in &log.traces {
        occurrences.iter_mut().for_each(|count| *count = 0);
        let mut deviations = Vec::new();
        let mut ordered: Vec<(usize, usize)> = Vec::new();
        for (event_index, event) in trace.events.iter().enumerate() {
            let activity = || log.activity_name(event.activity).to_owned();
            match step_of.get(&event.activity) {
                None => deviations.push(Deviation::Extra { event_index, activity: activity() }),
                Some(&step_index) => {
                    if occurrences[step_index] > 0 && !model.steps[step_index].repeatable {
                        deviations.push(Deviation::Repeated { event_index, step_index, activity: activity() });
                    } else {
                        occurrences[step_index] += 1;
                        ordered.push((event_index, step_index));
                    }
                }
            }
        }
        let kept = longest_ordered(&ordered);
        let mut in_order: Vec<(usize, usize)> = Vec::with_capacity(kept.len());
        for (position, &(event_index, step_index)) in ordered.iter().enumerate() {
            if kept[position] {
                in_order.push((event_index, step_index));
            } else {
                deviations.push(Deviation::OutOfOrder {
                    event_index,
                    step_index,
                    activity: model.steps[step_index].activity.clone(),
                });
            }
        }
        for (step_index, step) in model.steps.iter().enumerate() {
            if step.optional || occurrences[step_index] > 0 {
                continue;
            }
            let event_index = in_order
                .iter()
                .find(|&&(_, later)| later > step_index)
                .map_or(trace.events.len(), |&(event_index, _)| event_index);
            deviations.push(Deviation::Skipped { event_index, step_index, activity: step.activity.clone() });
        }
        deviations.sort_by_key(Deviation::event_index);
        let size = step_count + trace.events.len();
        deviation_total += deviations.len();
        size_total += size;
        cases.push(CaseConformance {
            case_id: trace.case_id.clone(),
            fitness: ratio_fitness(deviations.len(), size),
            deviations,
        });
    }
    let mean_case_fitness =
        if cases.is_empty() { 1.0 } else { cases.iter().map(|case| case.fitness).sum::<f64>() / cases.len() as f64 };
    SequenceConformance {
        fitness: ratio_fitness(deviation_total, size_total),
        mean_case_fitness,
        fitting_cases: cases.iter().filter(|case| case.deviations.is_empty()).count(),
        cases,
    }
}

fn ratio_fitness(deviations: usize, size: usize) -> f64 {
    if size == 0 { 1.0 } else { 1.0 - deviations as f64 / size as f64 }
}

/// Marks the events of a longest subsequence whose step indexes never decrease
/// (patience sorting, O(n log n)).
fn longest_ordered(events: &[(usize, usize)]) -> Vec<bool> {
    // tails[k]: position of the last element of the best subsequence of length k + 1.
    let mut tails: Vec<usize> = Vec::new();
    let mut previous = vec![usize::MAX; events.len()];
    for (position, &(_, step)) in events.iter().enumerate() {
        let length = tails.partition_point(|&tail| events[tail].1 <= step);
        if length > 0 {
            previous[position] = tails[length - 1];
        }
        if length == tails.len() {
            tails.push(position);
        } else {
            tails[length] = position;
        }
    }
    let mut kept = vec![false; events.len()];
    let mut cursor = tails.last().copied().unwrap_or(usize::MAX);
    while cursor != usize::MAX {
        kept[cursor] = true;
        cursor = previous[cursor];
    }
    kept
}

/// A checklist step proposed from a log.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DraftStep {
    /// The activity.
    pub activity: String,
    /// Present in fewer than all cases.
    pub optional: bool,
    /// In every case, all its occurrences fall on the same side of every other
    /// activity's occurrences as in the draft order.
    pub fixed_position: bool,
    /// Occurs more than once in at least one case.
    pub repeatable: bool,
    /// Number of cases in which it occurs.
    pub cases: usize,
}

/// Drafts an ordered checklist from a log.
///
/// The order is that of the most frequent variant (first occurrences). Each
/// other activity is then inserted, by increasing mean position, before the
/// first step whose mean position is greater than its own, where an activity's
/// position in a case is the index of its first occurrence.
pub fn draft_sequence(log: &EventLog) -> Vec<DraftStep> {
    let activity_count = log.activities.len();
    let mut cases_with = vec![0usize; activity_count];
    let mut position_sum = vec![0usize; activity_count];
    let mut repeats = vec![false; activity_count];
    let mut first_seen: Vec<Option<usize>> = vec![None; activity_count];
    let mut touched = Vec::new();
    for trace in &log.traces {
        for (index, event) in trace.events.iter().enumerate() {
            let id = event.activity.index();
            match first_seen[id] {
                Some(_) => repeats[id] = true,
                None => {
                    first_seen[id] = Some(index);
                    touched.push(id);
                }
            }
        }
        for id in touched.drain(..) {
            cases_with[id] += 1;
            position_sum[id] += first_seen[id].take().unwrap_or(0);
        }
    }
    let mean_position = |id: usize| position_sum[id] as f64 / cases_with[id].max(1) as f64;

    let mut order: Vec<usize> = Vec::new();
    let mut placed = vec![false; activity_count];
    if let Some(dominant) = variants(log).first() {
        for id in &dominant.activities {
            if !placed[id.index()] {
                placed[id.index()] = true;
                order.push(id.index());
            }
        }
    }
    let mut rest: Vec<usize> = (0..activity_count).filter(|&id| cases_with[id] > 0 && !placed[id]).collect();
    rest.sort_by(|&a, &b| {
        mean_position(a)
            .total_cmp(&mean_position(b))
            .then_with(|| log.activity_name(ActivityId(a as u32)).cmp(log.activity_name(ActivityId(b as u32))))
    });
    for id in rest {
        let at = order.iter().position(|&step| mean_position(step) > mean_position(id)).unwrap_or(order.len());
        order.insert(at, id);
    }

    let fixed = fixed_positions(log, &order);
    let case_count = log.traces.len();
    order
        .iter()
        .map(|&id| DraftStep {
            activity: log.activity_name(ActivityId(id as u32)).to_owned(),
            optional: cases_with[id] < case_count,
            fixed_position: fixed[id],
            repeatable: repeats[id],
            cases: cases_with[id],
        })
        .collect()
}

/// For each activity, whether no case puts an occurrence of another activity
/// on the wrong side of one of its occurrences, given the draft `order`.
fn fixed_positions(log: &EventLog, order: &[usize]) -> Vec<bool> {
    let activity_count = log.activities.len();
    let mut rank = vec![usize::MAX; activity_count];
    for (position, &id) in order.iter().enumerate() {
        rank[id] = position;
    }
    let mut fixed = vec![true; activity_count];
    let mut span: Vec<Option<(usize, usize)>> = vec![None; activity_count];
    let mut present: Vec<usize> = Vec::new();
    for trace in &log.traces {
        for (index, event) in trace.events.iter().enumerate() {
            let id = event.activity.index();
            match &mut span[id] {
                Some((_, last)) => *last = index,
                slot @ None => {
                    *slot = Some((index, index));
                    present.push(id);
                }
            }
        }
        present.sort_by_key(|&id| rank[id]);
        let spans: Vec<(usize, usize)> = present.iter().map(|&id| span[id].unwrap_or((0, 0))).collect();
        // An activity is out of place if a later step starts before it ends,
        // or an earlier step ends after it starts.
        let mut later_first = usize::MAX;
        let mut late = vec![false; present.len()];
        for (position, &(first, last)) in spans.iter().enumerate().rev() {
            late[position] = later_first < last;
            later_first = later_first.min(first);
        }
        let mut earlier_last = 0usize;
        for (position, &(first, last)) in spans.iter().enumerate() {
            let early = position > 0 && earlier_last > first;
            if early || late[position] {
                fixed[present[position]] = false;
            }
            earlier_last = earlier_last.max(last);
        }
        for id in present.drain(..) {
            span[id] = None;
        }
    }
    fixed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> SequenceModel {
        SequenceModel::new(vec![
            SequenceStep::required("submit"),
            SequenceStep::optional("clarify").repeatable(),
            SequenceStep::required("review"),
            SequenceStep::required("approve"),
        ])
        .expect("distinct activities")
    }

    fn check(cases: &[&[&str]]) -> SequenceConformance {
        let mut log = EventLog::new();
        for (index, case) in cases.iter().enumerate() {
            log.push_case(index.to_string(), case.iter().copied());
        }
        conform_sequence(&log, &model())
    }

    #[test]
    fn conforming_cases_have_fitness_one() {
        let result = check(&[&["submit", "review", "approve"], &["submit", "clarify", "clarify", "review", "approve"]]);
        assert_eq!(result.fitness, 1.0);
        assert_eq!(result.fitting_cases, 2);
        assert!(result.cases.iter().all(|case| case.deviations.is_empty()));
    }

    #[test]
    fn skipped_step_is_reported_where_it_was_due() {
        let result = check(&[&["submit", "approve"]]);
        let case = &result.cases[0];
        assert_eq!(
            case.deviations,
            vec![Deviation::Skipped { event_index: 1, step_index: 2, activity: "review".into() }]
        );
        // 1 deviation over 4 steps + 2 events.
        assert_eq!(case.fitness, 1.0 - 1.0 / 6.0);
    }

    #[test]
    fn extra_repeated_and_out_of_order_events() {
        let result = check(&[&["review", "submit", "email", "approve", "approve"]]);
        let case = &result.cases[0];
        assert_eq!(
            case.deviations,
            vec![
                Deviation::OutOfOrder { event_index: 0, step_index: 2, activity: "review".into() },
                Deviation::Extra { event_index: 2, activity: "email".into() },
                Deviation::Repeated { event_index: 4, step_index: 3, activity: "approve".into() },
            ]
        );
        // 3 deviations over 4 steps + 5 events.
        assert_eq!(case.fitness, 1.0 - 3.0 / 9.0);
    }

    #[test]
    fn log_fitness_sums_over_cases() {
        let result = check(&[&["submit", "review", "approve"], &[]]);
        // Case 2 skips the three required steps: 3 / (4 + 0). Log: 3 / (7 + 4).
        assert_eq!(result.cases[1].fitness, 0.25);
        assert_eq!(result.cases[1].deviations.len(), 3);
        assert!(result.cases[1].deviations.iter().all(|d| d.event_index() == 0));
        assert_eq!(result.fitness, 1.0 - 3.0 / 11.0);
        assert_eq!(result.mean_case_fitness, (1.0 + 0.25) / 2.0);
        assert_eq!(result.fitting_cases, 1);
    }

    #[test]
    fn a_late_first_step_is_the_one_out_of_order() {
        // "approve" jumps ahead; the rest keep the model order.
        let result = check(&[&["approve", "submit", "review"]]);
        let kinds: Vec<(usize, &str)> = result.cases[0]
            .deviations
            .iter()
            .map(|d| match d {
                Deviation::OutOfOrder { event_index, .. } => (*event_index, "out_of_order"),
                other => (other.event_index(), "other"),
            })
            .collect();
        assert_eq!(kinds, vec![(0, "out_of_order")]);
    }

    #[test]
    fn duplicate_model_activities_are_rejected() {
        let error =
            SequenceModel::new(vec![SequenceStep::required("a"), SequenceStep::required("a")]).expect_err("duplicate");
        assert_eq!(error, SequenceModelError::DuplicateActivity { activity: "a".into(), first: 0, second: 1 });
    }

    #[test]
    fn draft_follows_the_dominant_variant() {
        let mut log = EventLog::new();
        log.push_case("1", ["open", "check", "fix", "close"]);
        log.push_case("2", ["open", "check", "fix", "close"]);
        log.push_case("3", ["open", "fix", "check", "escalate", "close"]);
        log.push_case("4", ["open", "check", "fix", "fix", "close"]);
        let draft = draft_sequence(&log);
        let summary: Vec<(&str, bool, bool, bool)> =
            draft.iter().map(|s| (s.activity.as_str(), s.optional, s.fixed_position, s.repeatable)).collect();
        assert_eq!(
            summary,
            vec![
                ("open", false, true, false),
                ("check", false, false, false),
                ("fix", false, false, true),
                // Mean first position 3 puts it before "close" (mean 4).
                ("escalate", true, true, false),
                ("close", false, true, false),
            ]
        );
        let model = SequenceModel::from_draft(&draft).expect("distinct");
        let result = conform_sequence(&log, &model);
        assert_eq!(result.fitting_cases, 3);
    }
}

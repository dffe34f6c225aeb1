//! A run's metric facts, derived from its commits by a pure fold.
//!
//! Completions and decisions are taken from the events themselves; whether a
//! task is actionable is judged on the state after each commit, at the
//! commit's instant (every event of a commit carries the same `now`). A
//! replay from stored events therefore groups consecutive events of the same
//! instant into one step: the two agree whenever a run's commits have
//! distinct instants (see `docs/metrics.md`).

use attest_engine::view::{TaskStatus, TaskView, projected_task_views};
use attest_engine::{ApplyError, CompiledTemplate, Event, EventBody, RunState, RunStatus};
use attest_store::{ControlFact, RunFacts, TaskFact, TaskOutcome};
use attest_template::TaskType;
use jiff::tz::TimeZone;

/// The facts after one commit: `previous` are the facts before it (`None`
/// for a new run), `events` the commit's events and `state` the state after them.
pub fn advance(
    previous: Option<RunFacts>,
    template: &CompiledTemplate,
    events: &[Event],
    state: &RunState,
    tz: &TimeZone,
) -> RunFacts {
    let at = events.last().map_or(state.updated_at, |e| e.at);
    advance_with_views(previous, template, events, state, &projected_task_views(template, state, at, tz), tz)
}

/// [`advance`] given the state's projected task views at its last event
/// (`projected_task_views`), for a caller that has them already (a commit
/// projects them for its task rows).
pub fn advance_with_views(
    previous: Option<RunFacts>,
    template: &CompiledTemplate,
    events: &[Event],
    state: &RunState,
    views: &[TaskView],
    tz: &TimeZone,
) -> RunFacts {
    let mut facts = previous.unwrap_or_else(|| RunFacts::before_events(state));
    // Episodes keep the position they were created at, so a commit rewrites
    // only the episodes it changed (the store diffs facts by position).
    let mut tasks = std::mem::take(&mut facts.tasks);
    let at = events.last().map_or(state.updated_at, |e| e.at);

    for event in events {
        let (task, outcome) = match &event.body {
            EventBody::TaskCompleted { task, .. } => (task, TaskOutcome::Completed),
            EventBody::TaskApproved { task, .. } => (task, TaskOutcome::Approved),
            EventBody::TaskRejected { task, .. } => (task, TaskOutcome::Rejected),
            _ => continue,
        };
        let i = match open_episode(&tasks, task) {
            Some(i) => i,
            None => {
                tasks.push(new_episode(template, task));
                tasks.len() - 1
            }
        };
        let episode = &mut tasks[i];
        // Actionable and completed within one instant: no wait.
        episode.actionable_at = episode.actionable_at.or(Some(event.at));
        episode.ended_at = Some(event.at);
        episode.outcome = Some(outcome);
        episode.due_at = template
            .task_index(task)
            .and_then(|i| template.template.tasks.get(i))
            .and_then(|t| attest_engine::due::due_at(t, state, tz));
    }

    if state.status == RunStatus::Open {
        let mut still_open = vec![false; tasks.len()];
        for (i, view) in views.iter().enumerate() {
            if !matches!(view.status, TaskStatus::Open | TaskStatus::Rework) {
                continue;
            }
            let j = match open_episode(&tasks, &view.key) {
                Some(j) => j,
                None => {
                    tasks.push(new_episode(template, &view.key));
                    still_open.push(false);
                    tasks.len() - 1
                }
            };
            still_open[j] = true;
            let episode = &mut tasks[j];
            episode.due_at = view.due_at;
            if episode.actionable_at.is_none() && actionable(template, views, i) {
                episode.actionable_at = Some(at);
            }
        }
        // An open episode whose task is no longer open (hidden by a condition) is dropped.
        let mut keep = still_open.into_iter();
        tasks.retain(|t| keep.next().unwrap_or(false) || t.ended_at.is_some());
    } else {
        // A finished run's unfinished tasks never end: they have no waiting time.
        tasks.retain(|t| t.ended_at.is_some());
    }

    facts.status = state.status;
    facts.finished_at = state.finished_at;
    facts.rejections = state.rework_count;
    facts.event_count = state.event_count;
    if state.status == RunStatus::Completed {
        facts.on_time = Some(tasks.iter().all(|t| match (t.ended_at, t.due_at) {
            (Some(end), Some(due)) => end <= due,
            _ => true,
        }));
        facts.controls = controls(template, state, views, &tasks);
    } else {
        facts.on_time = None;
        facts.controls = Vec::new();
    }
    facts.tasks = tasks;
    facts
}

/// The position of the task's open episode, if it has one.
fn open_episode(tasks: &[TaskFact], task: &str) -> Option<usize> {
    tasks.iter().position(|t| t.ended_at.is_none() && t.task_key == task)
}

/// The facts of a run from its full event history.
pub fn replay(template: &CompiledTemplate, events: &[Event], tz: &TimeZone) -> Result<Option<RunFacts>, ApplyError> {
    let mut state: Option<RunState> = None;
    let mut facts: Option<RunFacts> = None;
    for step in events.chunk_by(|a, b| a.at == b.at) {
        for event in step {
            state = Some(attest_engine::state::apply(template, state, event)?);
        }
        if let Some(s) = &state {
            facts = Some(advance(facts, template, step, s, tz));
        }
    }
    Ok(facts)
}

fn new_episode(template: &CompiledTemplate, task: &str) -> TaskFact {
    let approval = template
        .task_index(task)
        .and_then(|i| template.template.tasks.get(i))
        .is_some_and(|t| t.task_type == TaskType::Approval);
    TaskFact { task_key: task.to_string(), approval, actionable_at: None, ended_at: None, outcome: None, due_at: None }
}

/// Someone can act on the task now: it is open and visible, no earlier stop
/// task holds it, it has an assignee, and an approval's visible subjects are done.
fn actionable(template: &CompiledTemplate, views: &[TaskView], i: usize) -> bool {
    let Some(view) = views.get(i) else { return false };
    let open = matches!(view.status, TaskStatus::Open | TaskStatus::Rework);
    if !open || view.waits_for.is_some() || view.assignees.is_empty() {
        return false;
    }
    let Some(task) = template.template.tasks.get(i) else { return false };
    task.approves.iter().all(|subject| {
        template
            .task_index(subject)
            .and_then(|si| views.get(si))
            .is_none_or(|v| matches!(v.status, TaskStatus::Hidden | TaskStatus::Done))
    })
}

/// For a completed run: a control applied when one of the tasks that
/// evidence it was done; it passed when none of those was sent back for
/// rework and none of those that are approvals rejected.
fn controls(
    template: &CompiledTemplate,
    state: &RunState,
    views: &[TaskView],
    episodes: &[TaskFact],
) -> Vec<ControlFact> {
    let mut out = Vec::new();
    for control in &template.template.controls {
        let mut applied = false;
        let mut passed = true;
        for (i, task) in template.template.tasks.iter().enumerate() {
            if !task.controls.contains(&control.id) {
                continue;
            }
            if views.get(i).is_none_or(|v| v.status != TaskStatus::Done) {
                continue;
            }
            applied = true;
            let reworked = state.tasks.get(i).is_some_and(|t| t.rework_count > 0);
            let rejected = episodes.iter().any(|e| e.task_key == task.key && e.outcome == Some(TaskOutcome::Rejected));
            if reworked || rejected {
                passed = false;
            }
        }
        if applied {
            out.push(ControlFact { control_id: control.id.clone(), passed });
        }
    }
    out
}

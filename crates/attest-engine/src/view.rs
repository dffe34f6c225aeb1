//! Read models derived from a run's state: what a person sees of each task and
//! what the store's projections index (assignees, due dates, status).

use attest_template::{Assignee, TaskType};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::Serialize;

use crate::compiled::CompiledTemplate;
use crate::condition::Visibility;
use crate::decide::members;
use crate::due::due_at;
use crate::state::{Decision, RunState, RunStatus};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    Open,
    /// Open again after an approval sent it back.
    Rework,
    Done,
    Hidden,
    /// A service task Attest is working: not in anyone's inbox until its call fails.
    Automatic,
}

impl TaskStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Open => "open",
            TaskStatus::Rework => "rework",
            TaskStatus::Done => "done",
            TaskStatus::Hidden => "hidden",
            TaskStatus::Automatic => "automatic",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskView {
    pub key: String,
    pub name: String,
    pub approval: bool,
    pub status: TaskStatus,
    pub stop: bool,
    /// Principals who may act: `user:EMAIL` or `role:KEY`.
    pub assignees: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub due_at: Option<Timestamp>,
    pub overdue: bool,
    /// The earlier stop task this one waits for, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waits_for: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completed_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision: Option<Decision>,
    pub rework_count: u32,
    /// Why a service task's call failed; its assignee can retry or complete it by hand.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_error: Option<String>,
}

/// The tasks of a run as of `now`, in template order.
pub fn task_views(template: &CompiledTemplate, state: &RunState, now: Timestamp, tz: &TimeZone) -> Vec<TaskView> {
    views(template, state, now, tz, Principals::EveryTask)
}

/// [`task_views`] as the store's projections index them: only the tasks
/// someone can work on now (open, or open again for rework) name their
/// assignees, as only theirs are anyone's work. Every commit projects the
/// views, and most of a run's tasks are not open at any one time.
pub fn projected_task_views(
    template: &CompiledTemplate,
    state: &RunState,
    now: Timestamp,
    tz: &TimeZone,
) -> Vec<TaskView> {
    views(template, state, now, tz, Principals::OpenTasks)
}

/// Which tasks' views name their assignees.
#[derive(Clone, Copy)]
enum Principals {
    EveryTask,
    OpenTasks,
}

fn views(
    template: &CompiledTemplate,
    state: &RunState,
    now: Timestamp,
    tz: &TimeZone,
    principals: Principals,
) -> Vec<TaskView> {
    let visibility = Visibility::compute(template, &state.values);
    let mut first_open_stop: Option<String> = None;
    let mut views = Vec::with_capacity(state.tasks.len());
    for (i, (task, ts)) in template.template.tasks.iter().zip(&state.tasks).enumerate() {
        let visible = visibility.tasks[i];
        let status = match (visible, ts.done) {
            (false, _) => TaskStatus::Hidden,
            (true, true) => TaskStatus::Done,
            (true, false) if ts.rework_count > 0 => TaskStatus::Rework,
            (true, false) if task.task_type == TaskType::Http && ts.service_error.is_none() => TaskStatus::Automatic,
            (true, false) => TaskStatus::Open,
        };
        let open = matches!(status, TaskStatus::Open | TaskStatus::Rework);
        let due = if visible && state.status == RunStatus::Open { due_at(task, state, tz) } else { None };
        views.push(TaskView {
            key: task.key.clone(),
            name: task.name.clone(),
            approval: task.task_type == TaskType::Approval,
            status,
            stop: task.stop,
            assignees: match principals {
                Principals::OpenTasks if !open => Vec::new(),
                _ => assignees(template, state, i),
            },
            due_at: due,
            overdue: open && state.status == RunStatus::Open && due.is_some_and(|d| d < now),
            waits_for: if open { first_open_stop.clone() } else { None },
            completed_by: ts.completed_by.as_deref().filter(|_| ts.done).map(String::from),
            completed_at: ts.completed_at.filter(|_| ts.done),
            decision: ts.decision,
            rework_count: ts.rework_count,
            service_error: ts.service_error.clone(),
        });
        if task.stop && visible && !ts.done && first_open_stop.is_none() {
            first_open_stop = Some(task.key.clone());
        }
    }
    views
}

/// Who may act on a task, as principals the inbox can match.
pub fn assignees(template: &CompiledTemplate, state: &RunState, task_index: usize) -> Vec<String> {
    let Some(task) = template.template.tasks.get(task_index) else { return Vec::new() };
    let assignee = match state.tasks.get(task_index).and_then(|t| t.reassigned_to.as_deref()).map(Assignee::parse) {
        Some(Ok(a)) => a,
        _ => task.assignee.clone(),
    };
    match assignee {
        Assignee::Starter => vec![principal("user:", &state.starter)],
        Assignee::Role(r) => vec![principal("role:", &r)],
        Assignee::User(u) => vec![principal("user:", &u)],
        Assignee::Field(k) => members(state, &k).into_iter().map(|m| principal("user:", m)).collect(),
    }
}

/// A principal as `kind` (`user:` or `role:`) and id, built without the
/// formatting machinery: every commit names the principals of its open tasks.
fn principal(kind: &str, id: &str) -> String {
    let mut principal = String::with_capacity(kind.len() + id.len());
    principal.push_str(kind);
    principal.push_str(id);
    principal
}

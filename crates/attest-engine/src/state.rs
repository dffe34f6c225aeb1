//! The state of a run: a pure fold of its events over its template version.

use std::sync::Arc;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::actor::{shared_opt_str, shared_str};

use crate::compiled::CompiledTemplate;
use crate::event::{Event, EventBody, FileRef, Values};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Open,
    Completed,
    Cancelled,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Open => "open",
            RunStatus::Completed => "completed",
            RunStatus::Cancelled => "cancelled",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Approved,
    Rejected,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskState {
    /// The task's key, shared with the compiled template rather than copied
    /// into every run.
    #[serde(with = "shared_str")]
    pub key: Arc<str>,
    pub done: bool,
    /// Who completed (or approved) it most recently: the id of the event's
    /// actor, shared with it rather than copied.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "shared_opt_str")]
    pub completed_by: Option<Arc<str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub overridden: bool,
    /// The latest decision of an approval task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<Decision>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision_comment: Option<String>,
    /// How many times this task was sent back for rework.
    pub rework_count: u32,
    /// An escalation's new assignee (`user:EMAIL` or `role:KEY`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reassigned_to: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub evidence: Vec<FileRef>,
    pub comment_count: u32,
    /// Why a service task's call failed for good, until it is retried or done by hand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_error: Option<String>,
    /// Reminder steps (from 1) sent since the task was last opened.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reminded: Vec<u32>,
    /// The last escalation step (from 1) taken since the task was last opened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escalated: Option<u32>,
}

impl TaskState {
    /// A task opened again starts a new round of reminders and escalations.
    fn reopen(&mut self) {
        self.done = false;
        self.reminded.clear();
        self.escalated = None;
    }
}

/// Everything the engine knows about one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunState {
    pub run_id: String,
    pub template_key: String,
    pub version: u32,
    pub content_hash: String,
    pub name: String,
    /// The id of whoever started the run (the `starter` assignee).
    pub starter: String,
    pub started_at: Timestamp,
    pub status: RunStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancel_reason: Option<String>,
    /// When the whole run is due (set at its start, by a schedule's due period).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_at: Option<Timestamp>,
    pub values: Values,
    pub tasks: Vec<TaskState>,
    /// Rejections over the run's life.
    pub rework_count: u32,
    /// Events folded so far: the run's version for optimistic concurrency.
    pub event_count: u64,
    pub updated_at: Timestamp,
}

/// Why an event could not be folded: the events do not belong to this template
/// or are out of order. Stored events that fail here mean corruption.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("event {index} ({event_type}) cannot be applied: {reason}")]
pub struct ApplyError {
    pub index: u64,
    pub event_type: &'static str,
    pub reason: String,
}

impl RunState {
    pub fn task(&self, key: &str) -> Option<&TaskState> {
        self.tasks.iter().find(|t| *t.key == *key)
    }

    fn task_position(&self, key: &str) -> Option<usize> {
        self.tasks.iter().position(|t| *t.key == *key)
    }

    /// Folds events into a state. The first event must be `run_started`.
    pub fn replay<'a>(
        template: &CompiledTemplate,
        events: impl IntoIterator<Item = &'a Event>,
    ) -> Result<RunState, ApplyError> {
        let mut events = events.into_iter();
        let first = events.next().ok_or(ApplyError {
            index: 0,
            event_type: "none",
            reason: "a run needs a run_started event".into(),
        })?;
        let mut state = apply(template, None, first)?;
        for event in events {
            apply_to(&mut state, event)?;
        }
        Ok(state)
    }
}

/// Applies one event. Pure: the same state and event give the same result.
pub fn apply(template: &CompiledTemplate, state: Option<RunState>, event: &Event) -> Result<RunState, ApplyError> {
    let Some(mut s) = state else {
        return start(template, event);
    };
    apply_to(&mut s, event)?;
    Ok(s)
}

/// Applies one event to a run that has started, in place. An error can leave
/// the state partly changed, so a caller must then drop it.
pub(crate) fn apply_to(s: &mut RunState, event: &Event) -> Result<(), ApplyError> {
    let index = s.event_count;
    apply_body(s, &event.body, event).map_err(|reason| ApplyError {
        index,
        event_type: event.body.type_name(),
        reason,
    })?;
    s.event_count += 1;
    s.updated_at = event.at;
    Ok(())
}

/// The state a run starts in, from its `run_started` event.
fn start(template: &CompiledTemplate, event: &Event) -> Result<RunState, ApplyError> {
    let fail = |reason: String| ApplyError { index: 0, event_type: event.body.type_name(), reason };
    let mut s = match &event.body {
        EventBody::RunStarted { run, template: key, version, content_hash, name, due_at } => {
            if *key != template.template.key || *version != template.version {
                return Err(fail(format!("run is of {key} v{version}, not of the template given")));
            }
            RunState {
                run_id: run.clone(),
                template_key: key.clone(),
                version: *version,
                content_hash: content_hash.clone(),
                name: name.clone(),
                starter: String::from(&*event.by.id),
                started_at: event.at,
                status: RunStatus::Open,
                finished_at: None,
                cancel_reason: None,
                due_at: *due_at,
                // Copied whole, which costs less than inserting each default.
                values: template.defaults().clone(),
                tasks: template
                    .task_keys()
                    .iter()
                    .map(|key| TaskState {
                        key: Arc::clone(key),
                        done: false,
                        completed_by: None,
                        completed_at: None,
                        overridden: false,
                        decision: None,
                        decision_comment: None,
                        rework_count: 0,
                        reassigned_to: None,
                        evidence: Vec::new(),
                        comment_count: 0,
                        reminded: Vec::new(),
                        escalated: None,
                        service_error: None,
                    })
                    .collect(),
                rework_count: 0,
                event_count: 0,
                updated_at: event.at,
            }
        }
        _ => return Err(fail("the first event of a run must be run_started".into())),
    };
    s.event_count += 1;
    s.updated_at = event.at;
    Ok(s)
}

fn apply_body(s: &mut RunState, body: &EventBody, event: &Event) -> Result<(), String> {
    let slot = match body.task() {
        Some(task) => Some(s.task_position(task).ok_or_else(|| format!("unknown task '{task}'"))?),
        None => None,
    };
    // Every event that names a task has its slot; the others never use it.
    fn task_mut(s: &mut RunState, slot: Option<usize>) -> Result<&mut TaskState, &'static str> {
        slot.and_then(|i| s.tasks.get_mut(i)).ok_or("unknown task")
    }
    match body {
        EventBody::RunStarted { .. } => return Err("the run has already started".into()),
        EventBody::FieldsSet { values, .. } => {
            for (k, v) in values {
                if v.is_null() {
                    s.values.remove(k);
                } else {
                    s.values.insert(k.clone(), v.clone());
                }
            }
        }
        EventBody::TaskCompleted { overridden, .. } => {
            let t = task_mut(s, slot)?;
            t.done = true;
            t.service_error = None;
            t.completed_by = Some(Arc::clone(&event.by.id));
            t.completed_at = Some(event.at);
            t.overridden = *overridden;
        }
        EventBody::TaskApproved { comment, overridden, .. } => {
            let t = task_mut(s, slot)?;
            t.done = true;
            t.completed_by = Some(Arc::clone(&event.by.id));
            t.completed_at = Some(event.at);
            t.overridden = *overridden;
            t.decision = Some(Decision::Approved);
            t.decision_comment = comment.clone();
        }
        EventBody::TaskRejected { comment, reopened, .. } => {
            let t = task_mut(s, slot)?;
            t.reopen();
            t.decision = Some(Decision::Rejected);
            t.decision_comment = Some(comment.clone());
            for key in reopened {
                let subject =
                    s.task_position(key).map(|i| &mut s.tasks[i]).ok_or_else(|| format!("unknown task '{key}'"))?;
                subject.reopen();
                subject.rework_count += 1;
            }
            s.rework_count += 1;
        }
        EventBody::TaskReopened { .. } => {
            let t = task_mut(s, slot)?;
            t.reopen();
            // A reset approval no longer stands; it waits for a new decision.
            t.decision = None;
            t.decision_comment = None;
        }
        EventBody::CommentAdded { .. } => {
            let t = task_mut(s, slot)?;
            t.comment_count += 1;
        }
        EventBody::EvidenceAttached { field, file, .. } => {
            if let Some(field) = field {
                s.values.insert(field.clone(), file.to_value());
            }
            let t = task_mut(s, slot)?;
            t.evidence.push(file.clone());
        }
        EventBody::TaskReassigned { to, .. } => {
            let t = task_mut(s, slot)?;
            t.reassigned_to = Some(to.clone());
        }
        EventBody::TaskReminded { step, .. } => {
            let t = task_mut(s, slot)?;
            if !t.reminded.contains(step) {
                t.reminded.push(*step);
            }
        }
        EventBody::TaskEscalated { step, .. } => {
            let t = task_mut(s, slot)?;
            t.escalated = Some(*step);
        }
        EventBody::RunCompleted {} => {
            s.status = RunStatus::Completed;
            s.finished_at = Some(event.at);
        }
        EventBody::ServiceFailed { error, .. } => {
            let t = task_mut(s, slot)?;
            t.service_error = Some(error.clone());
        }
        EventBody::ServiceRetried { .. } => {
            let t = task_mut(s, slot)?;
            t.service_error = None;
        }
        EventBody::RunCancelled { reason } => {
            s.status = RunStatus::Cancelled;
            s.finished_at = Some(event.at);
            s.cancel_reason = Some(reason.clone());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn who_completed_a_task_serialises_as_a_plain_string() {
        let json = r#"{"key":"a","done":true,"completed_by":"ann@example.com","rework_count":0,"comment_count":0}"#;
        let task: TaskState = serde_json::from_str(json).expect("parses");
        assert_eq!(task.completed_by.as_deref(), Some("ann@example.com"));
        assert_eq!(serde_json::to_string(&task).expect("serialises"), json);
        let open = TaskState { done: false, completed_by: None, ..task };
        assert!(!serde_json::to_string(&open).expect("serialises").contains("completed_by"));
    }
}

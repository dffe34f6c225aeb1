//! Re-execution: every recorded command of a run is decided again by the
//! engine, as the recorded actor (with the roles and admin flag the event
//! snapshots) at the recorded time, and must be accepted and give exactly the
//! recorded events. That re-checks every rule the engine enforces: required
//! fields, stop order, assignees, separation of duties on each approval.

use attest_engine::{Command, CompiledTemplate, Event, EventBody, RunState, Values};
use attest_ledger::canonical::to_canonical_json;

/// A run re-executed without a problem.
#[derive(Debug, Clone)]
pub struct Replayed {
    pub commands: usize,
    pub state: RunState,
}

/// The first problem, at the ledger index of the event concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayFailure {
    pub seq: u64,
    pub message: String,
}

/// Re-decides a run's events, given in run order with their ledger indexes.
pub fn reexecute(template: &CompiledTemplate, events: &[(u64, &Event)]) -> Result<Replayed, ReplayFailure> {
    let mut state: Option<RunState> = None;
    let mut commands = 0;
    let mut next = 0;
    while let Some(&(seq, first)) = events.get(next) {
        let fail = |message: String| ReplayFailure { seq, message };
        let command = command_for(events.get(next..).unwrap_or_default()).map_err(fail)?;
        let what = describe(&command);
        let (produced, after) = attest_engine::execute(template, state.as_ref(), &command, &first.by, first.at)
            .map_err(|refusal| {
                fail(format!(
                    "the engine refuses to {what} as {} [rule {}]: {}",
                    first.by,
                    refusal.rule.name(),
                    refusal.message
                ))
            })?;
        if produced.is_empty() {
            return Err(fail(format!("the engine records nothing for {what}: the recorded event changes nothing")));
        }
        for (offset, produced_event) in produced.iter().enumerate() {
            let Some(&(recorded_seq, recorded)) = events.get(next + offset) else {
                return Err(fail(format!(
                    "to {what} the engine also records {}, which the pack lacks",
                    produced_event.body.type_name()
                )));
            };
            if !same(produced_event, recorded) {
                return Err(ReplayFailure {
                    seq: recorded_seq,
                    message: format!(
                        "to {what} the engine records {} but the pack holds {}",
                        canonical_text(produced_event),
                        canonical_text(recorded)
                    ),
                });
            }
        }
        next += produced.len();
        commands += 1;
        state = Some(after);
    }
    match state {
        Some(state) => Ok(Replayed { commands, state }),
        None => Err(ReplayFailure { seq: 0, message: "the run has no events".into() }),
    }
}

/// The command that must have produced the events starting at `events[0]`.
fn command_for(events: &[(u64, &Event)]) -> Result<Command, String> {
    let Some(&(_, first)) = events.first() else {
        return Err("no event left".into());
    };
    let command = match &first.body {
        EventBody::RunStarted { run, name, due_at, .. } => {
            Command::Start { run: run.clone(), name: name.clone(), due_at: *due_at }
        }
        EventBody::FieldsSet { task, values } => {
            // Completing with values records `fields_set`, the reopenings it
            // causes, then `task_completed`, all by one actor at one instant.
            let completes = events
                .iter()
                .skip(1)
                .map(|(_, e)| e)
                .find(|e| !matches!(e.body, EventBody::TaskReopened { .. }))
                .is_some_and(|e| {
                    e.by == first.by
                        && e.at == first.at
                        && matches!(&e.body, EventBody::TaskCompleted { task: done, .. } if done == task)
                });
            if completes {
                Command::Complete { task: task.clone(), values: values.clone() }
            } else {
                Command::SetFields { task: task.clone(), values: values.clone() }
            }
        }
        EventBody::TaskCompleted { task, .. } => Command::Complete { task: task.clone(), values: Values::new() },
        EventBody::TaskApproved { task, comment, .. } => {
            Command::Approve { task: task.clone(), comment: comment.clone() }
        }
        EventBody::TaskRejected { task, comment, .. } => {
            Command::Reject { task: task.clone(), comment: comment.clone() }
        }
        EventBody::CommentAdded { task, text } => Command::Comment { task: task.clone(), text: text.clone() },
        EventBody::EvidenceAttached { task, field, file } => {
            Command::AttachEvidence { task: task.clone(), field: field.clone(), file: file.clone() }
        }
        EventBody::TaskReassigned { task, to, cause } => {
            Command::Reassign { task: task.clone(), to: to.clone(), cause: cause.clone() }
        }
        EventBody::RunCancelled { reason } => Command::Cancel { reason: reason.clone() },
        EventBody::TaskReminded { task, step } => Command::Remind { task: task.clone(), step: *step },
        EventBody::TaskEscalated { task, step, .. } => Command::Escalate { task: task.clone(), step: *step },
        EventBody::ServiceFailed { task, error } => Command::FailService { task: task.clone(), error: error.clone() },
        EventBody::ServiceRetried { task } => Command::RetryService { task: task.clone() },
        EventBody::TaskReopened { .. } | EventBody::RunCompleted {} => {
            return Err(format!(
                "{} is only ever a consequence of a command, but no command before it produces it",
                first.body.type_name()
            ));
        }
    };
    Ok(command)
}

/// Events compare by their canonical bytes, the form the ledger hashes.
fn same(a: &Event, b: &Event) -> bool {
    matches!((to_canonical_json(a), to_canonical_json(b)), (Ok(x), Ok(y)) if x == y)
}

fn canonical_text(event: &Event) -> String {
    let text = to_canonical_json(event).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
    let short: String = text.chars().take(300).collect();
    if short.len() < text.len() { format!("{short}…") } else { short }
}

/// The command in words, for messages.
pub fn describe(command: &Command) -> String {
    match command {
        Command::Start { .. } => "start the run".into(),
        Command::SetFields { task, .. } => format!("set fields on task '{task}'"),
        Command::Complete { task, values } if values.is_empty() => format!("complete task '{task}'"),
        Command::Complete { task, .. } => format!("complete task '{task}' with values"),
        Command::Approve { task, .. } => format!("approve '{task}'"),
        Command::Reject { task, .. } => format!("reject '{task}'"),
        Command::Comment { task, .. } => format!("comment on task '{task}'"),
        Command::AttachEvidence { task, file, .. } => format!("attach {} to task '{task}'", file.name),
        Command::Reassign { task, to, .. } => format!("reassign task '{task}' to {to}"),
        Command::Cancel { .. } => "cancel the run".into(),
        Command::Remind { task, step } => format!("send reminder {step} of task '{task}'"),
        Command::Escalate { task, step } => format!("take escalation step {step} of task '{task}'"),
        Command::FailService { task, .. } => format!("record the failed call of service task '{task}'"),
        Command::RetryService { task } => format!("retry service task '{task}'"),
    }
}

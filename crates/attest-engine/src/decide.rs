//! Deciding commands: the rules of the spec, enforced. A command is checked
//! against the current state and either refused with a reason or turned into
//! events. Nothing here reads a clock or does IO: `now` comes in.

use std::cell::{Cell, OnceCell};

use attest_template::{Assignee, EscalationAction, Field, Task, TaskType};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::actor::{Actor, ActorKind};
use crate::compiled::CompiledTemplate;
use crate::condition::{Visibility, fixed_fields_visible, fixed_task_visible, key_order};
use crate::event::{Event, EventBody, FileRef, Values};
use crate::refusal::{Refusal, Rule};
use crate::state::{ApplyError, RunState, RunStatus, apply, apply_to};
use crate::value::{self, DateContext};

/// Longest comment, rejection comment or cancellation reason accepted.
pub const MAX_COMMENT_CHARS: usize = 10_000;
/// Most field values one command may set.
pub const MAX_VALUES_PER_COMMAND: usize = 200;
/// The workspace role that may cancel any run, besides admins and the template's owner.
pub const PROCESS_OWNER_ROLE: &str = "process-owner";

/// What someone asks the engine to do to a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum Command {
    Start {
        run: String,
        name: String,
        /// When the whole run is due (a schedule's due period); whole seconds.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        due_at: Option<Timestamp>,
    },
    SetFields {
        task: String,
        values: Values,
    },
    Complete {
        task: String,
        values: Values,
    },
    Approve {
        task: String,
        comment: Option<String>,
    },
    Reject {
        task: String,
        comment: String,
    },
    Comment {
        task: String,
        text: String,
    },
    AttachEvidence {
        task: String,
        field: Option<String>,
        file: FileRef,
    },
    Reassign {
        task: String,
        to: String,
        cause: String,
    },
    Cancel {
        reason: String,
    },
    /// The scheduler sends reminder `step` (from 1) of the task's `remind` list.
    Remind {
        task: String,
        step: u32,
    },
    /// The scheduler takes escalation `step` (from 1) of the task's `escalate` list.
    Escalate {
        task: String,
        step: u32,
    },
    /// Attest records that a service task's call failed for good.
    FailService {
        task: String,
        error: String,
    },
    /// A person asks for a failed service task's call to be made again.
    RetryService {
        task: String,
    },
}

/// Decides a command and returns the events it produces with the state after
/// them. The state is `None` only for `Start`.
pub fn execute(
    template: &CompiledTemplate,
    state: Option<&RunState>,
    command: &Command,
    actor: &Actor,
    now: Timestamp,
) -> Result<(Vec<Event>, RunState), Refusal> {
    let mut applied = None;
    let events = decide(template, state, &mut applied, command, actor, now)?;
    // A command that applied no event leaves the state as it was.
    let state = applied.or_else(|| state.cloned()).ok_or_else(not_started)?;
    Ok((events, state))
}

/// Like [`execute`], but takes the state by value so that deciding does not
/// copy it. A refused command drops the state, so a caller that goes on with
/// the same state after a refusal should use [`execute`].
pub fn execute_owned(
    template: &CompiledTemplate,
    mut state: Option<RunState>,
    command: &Command,
    actor: &Actor,
    now: Timestamp,
) -> Result<(Vec<Event>, RunState), Refusal> {
    // The state is decided on where it is, since each move copies all of it.
    let events = decide(template, None, &mut state, command, actor, now)?;
    Ok((events, state.ok_or_else(not_started)?))
}

fn not_started() -> Refusal {
    Refusal::new(Rule::RunNotOpen, "the run has not started")
}

/// Decides a command on the state in `applied` or, while that is `None`, on
/// `borrowed`, which is copied into `applied` when the first event is applied.
fn decide<'a>(
    template: &'a CompiledTemplate,
    borrowed: Option<&'a RunState>,
    applied: &'a mut Option<RunState>,
    command: &Command,
    actor: &'a Actor,
    now: Timestamp,
) -> Result<Vec<Event>, Refusal> {
    let mut decider = Decider {
        template,
        actor,
        now,
        // Room for what most commands emit (values set, the task completed and
        // the run completed), so that they allocate the list once.
        events: Vec::with_capacity(3),
        borrowed,
        state: applied,
        visibility: OnceCell::new(),
        fixed_visible: Cell::default(),
        fixed_fields: Cell::default(),
    };
    decider.decide(command)?;
    Ok(decider.events)
}

struct Decider<'a> {
    template: &'a CompiledTemplate,
    actor: &'a Actor,
    now: Timestamp,
    events: Vec<Event>,
    /// The caller's state, until the first event is applied to a copy of it.
    borrowed: Option<&'a RunState>,
    /// The state with this command's events applied so far; `None` while
    /// the state is `borrowed` or the run has not started.
    state: &'a mut Option<RunState>,
    /// Visibility under the state's values, computed when first needed and
    /// kept until an event changes a value some condition reads.
    visibility: OnceCell<Visibility>,
    /// The tasks decided from the state's values alone so far (see
    /// [`Self::task_visible`]), kept as long as `visibility` would be.
    fixed_visible: Cell<FixedVisibility>,
    /// The last task whose fields were decided from the state's values alone
    /// (see [`Self::fields_visibility`]) with the fields that show, kept as
    /// long as `visibility` would be.
    fixed_fields: Cell<Option<(usize, u64)>>,
}

impl<'a> Decider<'a> {
    fn emit(&mut self, body: EventBody) -> Result<(), Refusal> {
        self.emit_as(self.actor.clone(), body)
    }

    fn emit_as(&mut self, by: Actor, body: EventBody) -> Result<(), Refusal> {
        let changes_visibility = self.changes_visibility(&body);
        self.push_event(by, body, changes_visibility).map(drop)
    }

    /// Whether applying the event can change visibility. Visibility reads only
    /// the values conditions name, so only a change to one of those can.
    fn changes_visibility(&self, body: &EventBody) -> bool {
        let inputs = |k: &String| self.template.is_condition_input(k);
        match body {
            EventBody::RunStarted { .. } => true,
            EventBody::FieldsSet { values, .. } => values.keys().any(inputs),
            EventBody::EvidenceAttached { field, .. } => field.as_ref().is_some_and(inputs),
            _ => false,
        }
    }

    /// Applies and records an event that `changes_visibility` says can change
    /// visibility or not (see [`Self::changes_visibility`]). Returns the
    /// visibility it made stale, if any, so that a caller can tell which tasks
    /// and fields it showed or hid.
    fn push_event(
        &mut self,
        by: Actor,
        body: EventBody,
        changes_visibility: bool,
    ) -> Result<Option<Visibility>, Refusal> {
        // The event is applied where it is recorded rather than moved there
        // after; a refusal drops the decider with its events.
        let event = &*self.events.push_mut(Event { at: self.now, by, body });
        let refused = |e: ApplyError| Refusal::new(Rule::RunNotOpen, e.to_string());
        if self.state.is_none()
            && let Some(borrowed) = self.borrowed.take()
        {
            // A borrowed state is copied here, when its first event is applied.
            *self.state = Some(borrowed.clone());
        }
        match self.state.as_mut() {
            Some(state) => apply_to(state, event).map_err(refused)?,
            None => *self.state = Some(apply(self.template, None, event).map_err(refused)?),
        }
        let stale = if changes_visibility {
            self.fixed_visible.take();
            self.fixed_fields.take();
            self.visibility.take()
        } else {
            None
        };
        Ok(stale)
    }

    fn state(&self) -> Result<&RunState, Refusal> {
        self.state.as_ref().or(self.borrowed).ok_or_else(not_started)
    }

    fn decide(&mut self, command: &Command) -> Result<(), Refusal> {
        if let Command::Start { run, name, due_at } = command {
            if self.state().is_ok() {
                return Err(Refusal::new(Rule::RunNotOpen, format!("run '{run}' has already started")));
            }
            check_text(name, "run name", 200, Rule::TooLarge)?;
            let t = &self.template;
            let body = EventBody::RunStarted {
                run: run.clone(),
                template: t.template.key.clone(),
                version: t.version,
                content_hash: t.content_hash.clone(),
                name: name.trim().to_string(),
                // Whole seconds, so the stored instant compares as text in the runs list's overdue search.
                due_at: due_at.and_then(|d| Timestamp::from_second(d.as_second()).ok()),
            };
            return self.emit(body);
        }
        let state = self.state()?;
        if state.status != RunStatus::Open {
            return Err(Refusal::new(Rule::RunNotOpen, format!("the run is {}", state.status.as_str())));
        }
        match command {
            Command::Start { .. } => Ok(()),
            Command::SetFields { task, values } => {
                let (ti, task) = self.task(task)?;
                self.ensure_can_edit(ti, task)?;
                self.set_values(ti, task, values).map(drop)
            }
            Command::Complete { task, values } => self.complete(task, values),
            Command::Approve { task, comment } => self.approve(task, comment.as_deref()),
            Command::Reject { task, comment } => self.reject(task, comment),
            Command::Comment { task, text } => {
                let (_, task) = self.task(task)?;
                check_text(text, "a comment", MAX_COMMENT_CHARS, Rule::CommentRequired)
                    .map_err(|r| r.on_task(&task.key))?;
                self.emit(EventBody::CommentAdded { task: task.key.clone(), text: text.trim().to_string() })
            }
            Command::AttachEvidence { task, field, file } => self.attach(task, field.as_deref(), file),
            Command::Reassign { task, to, cause } => self.reassign(task, to, cause),
            Command::Cancel { reason } => self.cancel(reason),
            Command::Remind { task, step } => self.remind(task, *step),
            Command::Escalate { task, step } => self.escalate(task, *step),
            Command::FailService { task, error } => self.fail_service(task, error),
            Command::RetryService { task } => self.retry_service(task),
        }
    }

    /// Looks a task up with its index; the reference lives as long as the
    /// template, not the decider, so the decider can keep emitting events while
    /// holding it.
    fn task(&self, key: &str) -> Result<(usize, &'a Task), Refusal> {
        let template: &'a CompiledTemplate = self.template;
        template.task_index(key).and_then(|i| Some((i, template.template.tasks.get(i)?))).ok_or_else(|| {
            Refusal::new(Rule::UnknownTask, format!("task '{key}' does not exist in this template")).on_task(key)
        })
    }

    fn visibility(&self) -> Result<&Visibility, Refusal> {
        let state = self.state()?;
        Ok(self.visibility.get_or_init(|| Visibility::compute(self.template, &state.values)))
    }

    /// Whether task `ti` is visible. A task without a condition always is, and
    /// one whose condition reads only fields that always show is decided from
    /// the values, so asking about either computes no visibility.
    fn task_visible(&self, ti: usize) -> Result<bool, Refusal> {
        if self.template.task_condition(ti).is_none() {
            return Ok(true);
        }
        if let Some(visibility) = self.visibility.get() {
            return Ok(visibility.tasks[ti]);
        }
        if self.template.condition_reads_fixed(ti) {
            let fixed = self.fixed_visible.get();
            if let Some(visible) = fixed.get(ti) {
                return Ok(visible);
            }
            let visible = fixed_task_visible(self.template, &self.state()?.values, ti);
            self.fixed_visible.set(fixed.with(ti, visible));
            return Ok(visible);
        }
        Ok(self.visibility()?.tasks[ti])
    }

    /// Which fields of task `ti` show. When the task shows and none of its
    /// fields has a condition, all of them do; when their conditions read
    /// only fields that always show, the values decide them. Neither computes
    /// a visibility.
    fn fields_visibility(&self, ti: usize) -> Result<ShownFields<'_>, Refusal> {
        if self.template.fields_unconditional(ti) && self.task_visible(ti)? {
            return Ok(ShownFields::All);
        }
        if self.visibility.get().is_none() && self.template.fields_read_fixed(ti) {
            if let Some((task, shown)) = self.fixed_fields.get()
                && task == ti
            {
                return Ok(ShownFields::Fixed(shown));
            }
            let visible = self.task_visible(ti)?;
            let shown = fixed_fields_visible(self.template, &self.state()?.values, ti, visible);
            self.fixed_fields.set(Some((ti, shown)));
            return Ok(ShownFields::Fixed(shown));
        }
        self.visibility().map(ShownFields::Pass)
    }

    /// Checks that the task is visible, open, and the actor may act on it.
    /// Returns whether acting is an admin override.
    fn ensure_can_edit(&self, ti: usize, task: &Task) -> Result<bool, Refusal> {
        let state = self.state()?;
        let task_state = &state.tasks[ti];
        if task_state.done {
            let rule = if task.task_type == TaskType::Approval { Rule::AlreadyCompleted } else { Rule::TaskLocked };
            return Err(Refusal::new(
                rule,
                format!("task '{}' is already completed; it opens again only if an approval sends it back", task.key),
            )
            .on_task(&task.key));
        }
        if !self.task_visible(ti)? {
            return Err(Refusal::new(
                Rule::HiddenTask,
                format!("task '{}' is hidden by its condition and cannot be worked on", task.key),
            )
            .on_task(&task.key));
        }
        self.ensure_actor(ti, task)
    }

    /// Whether the actor is an assignee; an admin who is not acts as an override.
    /// Attest itself works service tasks, once every earlier task is complete.
    fn ensure_actor(&self, ti: usize, task: &Task) -> Result<bool, Refusal> {
        let state = self.state()?;
        if self.actor.kind == ActorKind::System && task.task_type == TaskType::Http {
            if let Some(waiting) = service_waits_for(self.template, state, self.visibility()?, ti) {
                return Err(Refusal::new(
                    Rule::ServiceWaits,
                    format!("service task '{}' waits for task '{waiting}' to be completed", task.key),
                )
                .on_task(&task.key));
            }
            return Ok(false);
        }
        if may_act(task, state, ti, self.actor) {
            return Ok(false);
        }
        if self.actor.admin {
            return Ok(true);
        }
        let who = match &state.tasks[ti].reassigned_to {
            Some(to) => to.clone(),
            None => task.assignee.to_string(),
        };
        Err(Refusal::new(
            Rule::NotAssignee,
            format!("{} is not an assignee of task '{}' (assigned to {who})", self.actor, task.key),
        )
        .on_task(&task.key))
    }

    /// Sets values of the task's fields. Returns the fields it gave a valid,
    /// non-empty value, so that completing the task need not check them again.
    fn set_values(&mut self, ti: usize, task: &Task, raw: &Values) -> Result<Validated, Refusal> {
        let mut validated = Validated::default();
        if raw.is_empty() {
            return Ok(validated);
        }
        if raw.len() > MAX_VALUES_PER_COMMAND {
            return Err(Refusal::new(Rule::TooLarge, format!("at most {MAX_VALUES_PER_COMMAND} values per command"))
                .on_task(&task.key));
        }
        let state = self.state()?;
        // Copying the map keeps its shape, so the values are normalised in place
        // instead of each key being searched for again; each copied value is
        // normalised as it is rather than copied again.
        let mut normalised = raw.clone();
        // Each value's field index on the task, with whether the value differs
        // from the run's (found below); on the stack unless the values are many.
        let mut on_heap = Vec::new();
        let mut on_stack = [(0, false); POSITIONS_ON_STACK];
        let positions: &mut [(usize, bool)] = if normalised.len() <= POSITIONS_ON_STACK {
            &mut on_stack[..normalised.len()]
        } else {
            on_heap.resize(normalised.len(), (0, false));
            &mut on_heap
        };
        for ((key, slot), (fi, _)) in normalised.iter_mut().zip(positions.iter_mut()) {
            let (field_index, v) = normalise_on(self.template, state, task, key, std::mem::take(slot))?;
            *slot = v;
            *fi = field_index;
        }
        // Each value's field is known from here on, so the facts about its key
        // are looked up by the field's position among all fields.
        let offset = self.template.field_offsets()[ti];
        // Visibility is judged with the new values, since a field may depend on
        // an earlier field of the same task; they overlay the run's values
        // rather than being merged into a copy. Values that cannot show or hide
        // the task or its fields leave them as they are.
        // The values are all of this task's fields, so only a task with a field
        // some condition reads needs each looked up.
        let reads_inputs = self.template.has_condition_inputs(ti);
        let recomputed = (reads_inputs
            && positions.iter().any(|(fi, _)| self.template.shown_or_hidden_by(offset + fi).contains(&ti)))
        .then(|| Visibility::with_pending(self.template, &state.values, &normalised));
        let shown = match &recomputed {
            Some(v) => ShownFields::Pass(v),
            None => self.fields_visibility(ti)?,
        };
        let dates = DateContext { run_started_at: state.started_at, values: &state.values, pending: Some(&normalised) };
        // The values are checked and compared with the run's in key order, as
        // they come; of several problems the one of the field first in the
        // task's order is refused, as the fields are shown.
        let mut problem: Option<(usize, Refusal)> = None;
        let mut run_values = RunValues::new(&state.values, normalised.len());
        for ((fi, differs), (key, v)) in positions.iter_mut().zip(&normalised) {
            *differs = run_values.differs(key, v);
            if v.is_null() || problem.as_ref().is_some_and(|(first, _)| first < fi) {
                continue;
            }
            let field = &task.fields[*fi];
            let refusal = if !shown.field_at(ti, *fi) {
                hidden_field(task, field)
            } else {
                match value::validate(self.template, field, v, &dates) {
                    Ok(()) => {
                        if !value::is_empty(v) {
                            validated.insert(*fi);
                        }
                        continue;
                    }
                    Err(why) => invalid_value(task, &field.key, why),
                }
            };
            problem = Some((*fi, refusal));
        }
        if let Some((_, refusal)) = problem {
            return Err(refusal);
        }
        let mut changed_positions = positions.iter().filter(|(_, differs)| *differs).map(|(fi, _)| offset + fi);
        if changed_positions.clone().next().is_none() {
            return Ok(validated);
        }
        let mut recheck = self.tasks_to_recheck(changed_positions.clone());
        let shows_or_hides = reads_inputs && changed_positions.clone().any(|p| self.shows_or_hides_completed(p));
        let changes_visibility = changed_positions.any(|p| self.template.input_at(p).is_some());
        let mut changed = normalised;
        if positions.iter().any(|(_, differs)| !differs) {
            let mut keep = positions.iter().map(|(_, differs)| *differs);
            changed.retain(|_, _| keep.next().unwrap_or(false));
        }
        if shows_or_hides {
            // The visibility before the change, to tell what the change shows or hides.
            self.visibility()?;
        }
        let body = EventBody::FieldsSet { task: task.key.clone(), values: changed };
        let stale = self.push_event(self.actor.clone(), body, changes_visibility)?;
        if let Some(v) = recomputed {
            // The run's values are now the merged ones it was judged on.
            self.visibility = OnceCell::from(v);
        }
        if shows_or_hides {
            self.recheck_shown_or_hidden(stale.as_ref(), &mut recheck)?;
        }
        self.reopen_invalidated(&recheck)?;
        Ok(validated)
    }

    /// Which completed tasks a change of these values can leave incomplete
    /// while visibility stays as it was. Each completed task met its
    /// requirements after the previous change, and its check reads only the
    /// visibility of the task and its fields, its own fields' values and the
    /// fields its date bounds name; so only the tasks reading a changed value
    /// need checking again, and those [`Self::recheck_shown_or_hidden`] adds.
    /// The changed values are given by their fields' positions among all fields.
    fn tasks_to_recheck(&self, changed: impl Iterator<Item = usize>) -> TaskSet {
        let mut recheck = TaskSet::default();
        for position in changed {
            for &ti in self.template.requirement_readers(position) {
                recheck.insert(ti);
            }
        }
        recheck
    }

    /// Whether a change of the value of the field at `position` can show or
    /// hide a completed task or one of its fields. Only completed tasks are
    /// rechecked, so otherwise what the change shows or hides does not matter.
    fn shows_or_hides_completed(&self, position: usize) -> bool {
        let tasks = self.state().map_or(&[][..], |s| s.tasks.as_slice());
        self.template.shown_or_hidden_by(position).iter().any(|&ti| tasks.get(ti).is_some_and(|t| t.done))
    }

    /// Marks for a recheck the tasks a change of condition inputs showed or hid,
    /// or showed or hid a field of: the visibility before the change against
    /// the current one. Without the one before (never computed), every task.
    fn recheck_shown_or_hidden(&self, before: Option<&Visibility>, recheck: &mut TaskSet) -> Result<(), Refusal> {
        let after = self.visibility()?;
        for ti in 0..self.template.template.tasks.len() {
            if before.is_none_or(|before| !before.same_for_task(after, ti)) {
                recheck.insert(ti);
            }
        }
        Ok(())
    }

    /// After values change, conditions are re-evaluated: a completed task that
    /// now lacks a visible required value goes back to open. `recheck` marks
    /// the tasks the change can affect (see [`Self::tasks_to_recheck`]).
    fn reopen_invalidated(&mut self, recheck: &TaskSet) -> Result<(), Refusal> {
        let template = self.template;
        let state = self.state()?;
        let marked = |ti: usize| recheck.contains(ti) && state.tasks[ti].done;
        if !(0..state.tasks.len()).any(marked) {
            return self.reset_void_approvals();
        }
        let visibility = self.visibility()?;
        let checked = |ti: usize| marked(ti) && visibility.tasks[ti];
        if !(0..state.tasks.len()).any(checked) {
            return self.reset_void_approvals();
        }
        // The values are placed by field position once instead of being
        // searched for field by field.
        let mut slots = vec![None; template.field_count()];
        for (key, v) in &state.values {
            if let Some(p) = template.field_position(key) {
                slots[p] = Some(v);
            }
        }
        let dates = DateContext { run_started_at: state.started_at, values: &state.values, pending: None };
        let mut reopen = Vec::new();
        for (ti, task) in template.template.tasks.iter().enumerate() {
            if checked(ti) {
                let value_of = |fi: usize, _: &Field| slots[template.key_position(ti, fi)];
                if let Err(r) = self.requirements_met_with(
                    ti,
                    task,
                    ShownFields::Pass(visibility),
                    &dates,
                    Validated::default(),
                    &value_of,
                ) {
                    reopen.push((task.key.clone(), r.message));
                }
            }
        }
        for (task, why) in reopen {
            self.emit(EventBody::TaskReopened { task, cause: format!("a changed value left it incomplete: {why}") })?;
        }
        self.reset_void_approvals()
    }

    /// An approval signs off its visible subjects as they were, done by someone
    /// else. When a changed value reopens a subject, or shows one that was
    /// hidden, the approval no longer holds and goes back to open (rule 2).
    fn reset_void_approvals(&mut self) -> Result<(), Refusal> {
        let template = self.template;
        let state = self.state()?;
        // The approvals reset so far, with the subject that voided each; they
        // count as open for the approvals after them.
        let mut reset: Vec<(usize, &'a str)> = Vec::new();
        let open = |i: usize, reset: &[(usize, &str)]| !state.tasks[i].done || reset.iter().any(|(r, _)| *r == i);
        for &ti in template.approval_tasks() {
            if open(ti, &reset) {
                continue;
            }
            let task = &template.template.tasks[ti];
            let decider = state.tasks[ti].completed_by.as_deref();
            for (subject, si) in task.approves.iter().zip(template.approves(ti)) {
                let Some(si) = si.filter(|si| *si < state.tasks.len()) else { continue };
                if self.task_visible(si)? && (open(si, &reset) || state.tasks[si].completed_by.as_deref() == decider) {
                    reset.push((ti, subject));
                    break;
                }
            }
        }
        for (ti, subject) in reset {
            self.emit(EventBody::TaskReopened {
                task: template.template.tasks[ti].key.clone(),
                cause: format!("approval reset: task '{subject}' changed after it was approved"),
            })?;
        }
        Ok(())
    }

    /// Rule 1's field part: every visible required field holds a valid value.
    /// The `validated` fields were given a valid, non-empty value under the
    /// same values and visibility already, so they are not checked again.
    fn requirements_met(
        &self,
        ti: usize,
        task: &Task,
        state: &RunState,
        shown: ShownFields<'_>,
        validated: Validated,
    ) -> Result<(), Refusal> {
        let dates = DateContext { run_started_at: state.started_at, values: &state.values, pending: None };
        self.requirements_met_with(ti, task, shown, &dates, validated, &|_, field| state.values.get(&field.key))
    }

    /// [`Self::requirements_met`] with each field's value (by its index on the
    /// task) looked up by `value_of`; only the `shown` fields are checked.
    fn requirements_met_with<'v>(
        &self,
        ti: usize,
        task: &Task,
        shown: ShownFields<'_>,
        dates: &DateContext<'_>,
        validated: Validated,
        value_of: &dyn Fn(usize, &Field) -> Option<&'v serde_json::Value>,
    ) -> Result<(), Refusal> {
        for (fi, field) in task.fields.iter().enumerate() {
            if !shown.field_at(ti, fi) || validated.contains(fi) {
                continue;
            }
            match value_of(fi, field).filter(|v| !value::is_empty(v)) {
                None if field.required => return Err(required_field(task, field)),
                None => {}
                Some(v) => value::validate(self.template, field, v, dates)
                    .map_err(|why| invalid_value(task, &field.key, why))?,
            }
        }
        Ok(())
    }

    /// Rule 1's order part: every earlier visible stop task is complete.
    fn earlier_stops_done(&self, ti: usize, task: &Task) -> Result<(), Refusal> {
        let state = self.state()?;
        for (i, earlier) in self.template.template.tasks.iter().enumerate().take(ti) {
            if earlier.stop && !state.tasks[i].done && self.task_visible(i)? {
                return Err(Refusal::new(
                    Rule::StopTask,
                    format!("task '{}' waits for stop task '{}' to be completed first", task.key, earlier.key),
                )
                .on_task(&task.key));
            }
        }
        Ok(())
    }

    fn complete(&mut self, key: &str, values: &Values) -> Result<(), Refusal> {
        let (ti, task) = self.task(key)?;
        if task.task_type == TaskType::Approval {
            return Err(Refusal::new(
                Rule::ApprovalTask,
                format!("task '{key}' is an approval: approve or reject it instead"),
            )
            .on_task(key));
        }
        let overridden = self.ensure_can_edit(ti, task)?;
        let validated = self.set_values(ti, task, values)?;
        self.earlier_stops_done(ti, task)?;
        self.requirements_met(ti, task, self.state()?, self.fields_visibility(ti)?, validated)?;
        self.emit(EventBody::TaskCompleted { task: key.to_string(), overridden })?;
        self.complete_run_if_done()
    }

    /// Checks shared by approve and reject: the approval is open, visible, the
    /// actor may decide, its subjects are done, and nobody approves their own work.
    /// Each visible subject is handed to `visible_subject`, so that only a
    /// rejection collects them.
    fn check_decision(
        &self,
        key: &str,
        mut visible_subject: impl FnMut(&'a str),
    ) -> Result<(usize, &'a Task, bool), Refusal> {
        let (ti, task) = self.task(key)?;
        if task.task_type != TaskType::Approval {
            return Err(Refusal::new(
                Rule::NotApprovalTask,
                format!("task '{key}' is not an approval: complete it instead"),
            )
            .on_task(key));
        }
        let overridden = self.ensure_can_edit(ti, task)?;
        self.earlier_stops_done(ti, task)?;
        let state = self.state()?;
        for (subject, si) in task.approves.iter().zip(self.template.approves(ti)) {
            let Some(si) = *si else { continue };
            if !self.task_visible(si)? {
                continue;
            }
            let subject_state = &state.tasks[si];
            if !subject_state.done {
                return Err(Refusal::new(
                    Rule::ApprovalWaits,
                    format!("approval '{key}' waits for task '{subject}' to be completed"),
                )
                .on_task(key));
            }
            // Separation of duties holds even for admins: an override of who may
            // act never lets anyone sign off their own work.
            if subject_state.completed_by.as_deref() == Some(&*self.actor.id) {
                return Err(Refusal::new(
                    Rule::SeparationOfDuties,
                    format!(
                        "separation of duties: {} completed task '{subject}' and cannot decide approval '{key}'",
                        self.actor
                    ),
                )
                .on_task(key));
            }
            visible_subject(subject);
        }
        Ok((ti, task, overridden))
    }

    fn approve(&mut self, key: &str, comment: Option<&str>) -> Result<(), Refusal> {
        let (ti, task, overridden) = self.check_decision(key, |_| {})?;
        // Rule 1 holds for approvals too: their own visible required fields.
        self.requirements_met(ti, task, self.state()?, self.fields_visibility(ti)?, Validated::default())?;
        let comment = match comment.map(str::trim).filter(|c| !c.is_empty()) {
            Some(c) => {
                check_text(c, "a comment", MAX_COMMENT_CHARS, Rule::CommentRequired).map_err(|r| r.on_task(key))?;
                Some(c.to_string())
            }
            None => None,
        };
        self.emit(EventBody::TaskApproved { task: key.to_string(), comment, overridden })?;
        self.complete_run_if_done()
    }

    fn reject(&mut self, key: &str, comment: &str) -> Result<(), Refusal> {
        if comment.trim().is_empty() {
            return Err(Refusal::new(
                Rule::CommentRequired,
                format!("rejecting approval '{key}' needs a comment saying what to rework"),
            )
            .on_task(key));
        }
        check_text(comment, "a comment", MAX_COMMENT_CHARS, Rule::CommentRequired).map_err(|r| r.on_task(key))?;
        let mut subjects = Vec::new();
        let (_, _, overridden) = self.check_decision(key, |s| subjects.push(s.to_string()))?;
        self.emit(EventBody::TaskRejected {
            task: key.to_string(),
            comment: comment.trim().to_string(),
            reopened: subjects.clone(),
            overridden,
        })?;
        // Any other approval that signed off a task now in rework is void.
        let template = self.template;
        let state = self.state()?;
        let stale: Vec<String> = template
            .template
            .tasks
            .iter()
            .enumerate()
            .filter(|(i, t)| {
                t.task_type == TaskType::Approval
                    && t.key != key
                    && state.tasks[*i].done
                    && t.approves.iter().any(|s| subjects.contains(s))
            })
            .map(|(_, t)| t.key.clone())
            .collect();
        for task in stale {
            self.emit(EventBody::TaskReopened {
                task,
                cause: format!("approval reset: '{key}' sent its subject back for rework"),
            })?;
        }
        Ok(())
    }

    fn attach(&mut self, key: &str, field: Option<&str>, file: &FileRef) -> Result<(), Refusal> {
        let (ti, task) = self.task(key)?;
        self.ensure_can_edit(ti, task)?;
        // The position among all fields of the field the file is attached to.
        let mut attached_at = None;
        if let Some(field_key) = field {
            let Some((fi, field_def)) = task.fields.iter().enumerate().find(|(_, f)| f.key == field_key) else {
                return Err(Refusal::new(Rule::FieldNotOnTask, format!("task '{key}' has no field '{field_key}'"))
                    .on_task(key)
                    .on_field(field_key));
            };
            let attest_template::FieldKind::File(rules) = &field_def.kind else {
                return Err(Refusal::new(
                    Rule::InvalidValue,
                    format!("field '{field_key}' on task '{key}' is not a file field"),
                )
                .on_task(key)
                .on_field(field_key));
            };
            // The field is the first with its key (as in a valid template), so
            // a visible task shows it unless its own condition hides it.
            let position = self.template.field_offsets()[ti] + fi;
            let first_with_key = self.template.key_position(ti, fi) == position;
            let shown =
                if first_with_key && self.template.field_condition(position).is_none() && self.task_visible(ti)? {
                    true
                } else {
                    self.visibility()?.field(self.template, field_key)
                };
            if !shown {
                return Err(Refusal::new(
                    Rule::HiddenField,
                    format!("field '{field_key}' on task '{key}' is hidden by its condition"),
                )
                .on_task(key)
                .on_field(field_key));
            }
            value::validate_file(rules, file).map_err(|why| {
                Refusal::new(Rule::InvalidValue, format!("field '{field_key}' on task '{key}': {why}"))
                    .on_task(key)
                    .on_field(field_key)
            })?;
            attached_at = Some(position);
        }
        let mut recheck = self.tasks_to_recheck(attached_at.into_iter());
        let shows_or_hides = attached_at.is_some_and(|p| self.shows_or_hides_completed(p));
        if shows_or_hides {
            // The visibility before the change, to tell what the change shows or hides.
            self.visibility()?;
        }
        let changes_visibility = attached_at.is_some_and(|p| self.template.input_at(p).is_some());
        let body =
            EventBody::EvidenceAttached { task: key.to_string(), field: field.map(str::to_string), file: file.clone() };
        let stale = self.push_event(self.actor.clone(), body, changes_visibility)?;
        if shows_or_hides {
            self.recheck_shown_or_hidden(stale.as_ref(), &mut recheck)?;
        }
        self.reopen_invalidated(&recheck)
    }

    fn reassign(&mut self, key: &str, to: &str, cause: &str) -> Result<(), Refusal> {
        let (ti, task) = self.task(key)?;
        if !(self.actor.kind == ActorKind::System || self.actor.admin) {
            return Err(Refusal::new(
                Rule::NotPermitted,
                format!("only an admin or an escalation may reassign task '{key}'"),
            )
            .on_task(key));
        }
        let target = Assignee::parse(to).map_err(|e| Refusal::new(Rule::InvalidValue, e).on_task(key))?;
        if !matches!(target, Assignee::Role(_) | Assignee::User(_)) {
            return Err(Refusal::new(Rule::InvalidValue, "a task is reassigned to role:KEY or user:EMAIL").on_task(key));
        }
        if self.state()?.tasks[ti].done {
            return Err(Refusal::new(Rule::TaskLocked, format!("task '{key}' is already completed")).on_task(key));
        }
        self.emit(EventBody::TaskReassigned {
            task: task.key.clone(),
            to: target.to_string(),
            cause: cause.to_string(),
        })
    }

    /// Checks shared by reminders and escalations: only the scheduler (the
    /// system actor) takes them, on an open, visible task.
    fn check_timed_step(&self, key: &str, what: &str) -> Result<(usize, &'a Task), Refusal> {
        let (ti, task) = self.task(key)?;
        if self.actor.kind != ActorKind::System {
            return Err(Refusal::new(Rule::NotPermitted, format!("only the scheduler sends {what}s of task '{key}'"))
                .on_task(key));
        }
        if self.state()?.tasks[ti].done {
            return Err(Refusal::new(Rule::TaskLocked, format!("task '{key}' is already completed")).on_task(key));
        }
        if !self.task_visible(ti)? {
            return Err(Refusal::new(Rule::HiddenTask, format!("task '{key}' is hidden by its condition")).on_task(key));
        }
        Ok((ti, task))
    }

    fn remind(&mut self, key: &str, step: u32) -> Result<(), Refusal> {
        let (ti, task) = self.check_timed_step(key, "reminder")?;
        if step == 0 || step as usize > task.remind.len() {
            return Err(Refusal::new(Rule::InvalidValue, format!("task '{key}' has no reminder {step}")).on_task(key));
        }
        if self.state()?.tasks[ti].reminded.contains(&step) {
            return Err(Refusal::new(
                Rule::AlreadyCompleted,
                format!("reminder {step} of task '{key}' was already sent"),
            )
            .on_task(key));
        }
        self.emit(EventBody::TaskReminded { task: key.to_string(), step })
    }

    fn escalate(&mut self, key: &str, step: u32) -> Result<(), Refusal> {
        let (ti, task) = self.check_timed_step(key, "escalation")?;
        let Some(escalation) = (step as usize).checked_sub(1).and_then(|i| task.escalate.get(i)) else {
            return Err(
                Refusal::new(Rule::InvalidValue, format!("task '{key}' has no escalation step {step}")).on_task(key)
            );
        };
        if let Some(last) = self.state()?.tasks[ti].escalated.filter(|last| *last >= step) {
            return Err(Refusal::new(
                Rule::AlreadyCompleted,
                format!("task '{key}' has already been escalated to step {last}"),
            )
            .on_task(key));
        }
        match &escalation.action {
            EscalationAction::Notify(target) => self.emit(EventBody::TaskEscalated {
                task: key.to_string(),
                step,
                notify: Some(target.to_string()),
                reassign: None,
            }),
            EscalationAction::Reassign(target) => {
                let to = target.to_string();
                self.emit(EventBody::TaskEscalated {
                    task: key.to_string(),
                    step,
                    notify: None,
                    reassign: Some(to.clone()),
                })?;
                self.emit(EventBody::TaskReassigned {
                    task: key.to_string(),
                    to,
                    cause: format!("escalation step {step}: overdue by {}", escalation.overdue_by),
                })
            }
        }
    }

    /// The service task `key`, refused unless it is one.
    fn service_task(&self, key: &str) -> Result<(usize, &'a Task), Refusal> {
        let (ti, task) = self.task(key)?;
        if task.task_type != TaskType::Http {
            return Err(Refusal::new(Rule::NotServiceTask, format!("task '{key}' is not a service task (type: http)"))
                .on_task(key));
        }
        Ok((ti, task))
    }

    fn fail_service(&mut self, key: &str, error: &str) -> Result<(), Refusal> {
        let (ti, task) = self.service_task(key)?;
        if self.actor.kind != ActorKind::System {
            return Err(Refusal::new(
                Rule::NotPermitted,
                format!("only Attest records that the call of service task '{key}' failed"),
            )
            .on_task(key));
        }
        self.ensure_can_edit(ti, task)?;
        if self.state()?.tasks[ti].service_error.is_some() {
            return Err(Refusal::new(Rule::TaskLocked, format!("service task '{key}' has already failed")).on_task(key));
        }
        check_text(error, "a service error", MAX_COMMENT_CHARS, Rule::ReasonRequired).map_err(|r| r.on_task(key))?;
        self.emit(EventBody::ServiceFailed { task: key.to_string(), error: error.trim().to_string() })
    }

    fn retry_service(&mut self, key: &str) -> Result<(), Refusal> {
        let (ti, task) = self.service_task(key)?;
        self.ensure_can_edit(ti, task)?;
        if self.state()?.tasks[ti].service_error.is_none() {
            return Err(Refusal::new(
                Rule::NotServiceTask,
                format!("service task '{key}' has not failed; there is nothing to retry"),
            )
            .on_task(key));
        }
        self.emit(EventBody::ServiceRetried { task: key.to_string() })
    }

    fn cancel(&mut self, reason: &str) -> Result<(), Refusal> {
        let state = self.state()?;
        let owner = self.template.template.owner.as_ref().is_some_and(|o| match o {
            Assignee::Role(r) => self.actor.has_role(r),
            Assignee::User(u) => **u == *self.actor.id,
            _ => false,
        });
        if !(self.actor.admin || owner || self.actor.has_role(PROCESS_OWNER_ROLE)) {
            return Err(Refusal::new(
                Rule::NotPermitted,
                format!("{} may not cancel run '{}': only the process owner or an admin may", self.actor, state.run_id),
            ));
        }
        if reason.trim().is_empty() {
            return Err(Refusal::new(Rule::ReasonRequired, "cancelling a run needs a reason"));
        }
        check_text(reason, "a reason", MAX_COMMENT_CHARS, Rule::ReasonRequired)?;
        self.emit(EventBody::RunCancelled { reason: reason.trim().to_string() })
    }

    /// Rule 3: the run completes when every visible task is complete.
    fn complete_run_if_done(&mut self) -> Result<(), Refusal> {
        let state = self.state()?;
        // An open task without a condition is visible, so one settles it
        // without evaluating any condition.
        let open = |ti: &usize| !state.tasks[*ti].done;
        let mut all_done = !(0..state.tasks.len()).filter(open).any(|ti| self.template.task_condition(ti).is_none());
        if all_done {
            for ti in (0..state.tasks.len()).filter(open) {
                if self.task_visible(ti)? {
                    all_done = false;
                    break;
                }
            }
        }
        if all_done {
            self.emit_as(Actor::system(), EventBody::RunCompleted {})?;
        }
        Ok(())
    }
}

/// A set of task indices (see [`Decider::tasks_to_recheck`]). Tasks up to 63
/// take a bit each, so that most commands mark tasks without allocating; the
/// rest are kept in a list by index past 63.
#[derive(Debug, Default)]
struct TaskSet {
    low: u64,
    high: Vec<bool>,
}

impl TaskSet {
    fn insert(&mut self, task_index: usize) {
        match task_index.checked_sub(64) {
            None => self.low |= 1 << task_index,
            Some(i) => {
                if self.high.len() <= i {
                    self.high.resize(i + 1, false);
                }
                self.high[i] = true;
            }
        }
    }

    fn contains(&self, task_index: usize) -> bool {
        match task_index.checked_sub(64) {
            None => self.low & (1 << task_index) != 0,
            Some(i) => self.high.get(i).copied().unwrap_or(false),
        }
    }
}

/// Which tasks' visibility is known and which of those are visible, by task
/// index; a task past 63 is never known, which only costs deciding it again.
#[derive(Debug, Clone, Copy, Default)]
struct FixedVisibility {
    known: u64,
    visible: u64,
}

impl FixedVisibility {
    fn get(self, task_index: usize) -> Option<bool> {
        let bit = 1u64.checked_shl(u32::try_from(task_index).ok()?)?;
        (self.known & bit != 0).then_some(self.visible & bit != 0)
    }

    fn with(self, task_index: usize, visible: bool) -> Self {
        let Some(bit) = u32::try_from(task_index).ok().and_then(|i| 1u64.checked_shl(i)) else {
            return self;
        };
        let visible = if visible { self.visible | bit } else { self.visible & !bit };
        FixedVisibility { known: self.known | bit, visible }
    }
}

/// Which fields of a task show (see [`Decider::fields_visibility`]).
#[derive(Debug, Clone, Copy)]
enum ShownFields<'v> {
    /// Every field of the task.
    All,
    /// The fields whose bit is set, by index on the task.
    Fixed(u64),
    /// The fields a visibility pass shows.
    Pass(&'v Visibility),
}

impl ShownFields<'_> {
    /// Whether field `field_index` of task `task_index` (the task these are the fields of) shows.
    fn field_at(self, task_index: usize, field_index: usize) -> bool {
        match self {
            ShownFields::All => true,
            ShownFields::Fixed(bits) => field_index < 64 && bits & 1 << field_index != 0,
            ShownFields::Pass(visibility) => visibility.field_at(task_index, field_index),
        }
    }
}

/// Field indices of one task, as a set; indices past 63 are never members,
/// which only costs their fields a second validation.
#[derive(Debug, Clone, Copy, Default)]
struct Validated(u64);

impl Validated {
    fn insert(&mut self, field_index: usize) {
        if field_index < 64 {
            self.0 |= 1 << field_index;
        }
    }

    fn contains(self, field_index: usize) -> bool {
        field_index < 64 && self.0 & (1 << field_index) != 0
    }
}

/// Most values of one command whose fields [`Decider::set_values`] holds on
/// the stack; more take an allocation.
const POSITIONS_ON_STACK: usize = 16;

/// How many run values per command value [`RunValues`] still walks rather
/// than searching for each key.
const WALK_VALUES_PER_PENDING: usize = 12;

/// The run's values, read beside a command's values in key order. Both are in
/// key order, so one walk over the run's values finds each key with fewer
/// comparisons than a search per key, unless the command's values are few
/// among many.
struct RunValues<'v> {
    values: &'v Values,
    /// The walk so far, with the first value not passed yet; `None` when
    /// each key is searched for.
    walk: Option<(RunValuesIter<'v>, Option<(&'v String, &'v serde_json::Value)>)>,
}

type RunValuesIter<'v> = std::collections::btree_map::Iter<'v, String, serde_json::Value>;

impl<'v> RunValues<'v> {
    fn new(values: &'v Values, pending_count: usize) -> Self {
        let walk = (values.len() <= WALK_VALUES_PER_PENDING * pending_count).then(|| {
            let mut iter = values.iter();
            let first = iter.next();
            (iter, first)
        });
        RunValues { values, walk }
    }

    /// Whether `value` differs from the run's value of `key`, no value
    /// counting as `null`. The keys asked about must come in key order.
    fn differs(&mut self, key: &str, value: &serde_json::Value) -> bool {
        let old = match &mut self.walk {
            Some((iter, current)) => {
                while let Some((k, _)) = *current
                    && key_order(k, key).is_lt()
                {
                    *current = iter.next();
                }
                current.filter(|(k, _)| k.as_str() == key).map(|(_, v)| v)
            }
            None => self.values.get(key),
        };
        old.unwrap_or(&serde_json::Value::Null) != value
    }
}

/// The earlier visible task a service task still waits for, if any: its call
/// is made only with every earlier task complete, so the values it sends exist.
fn service_waits_for<'t>(
    template: &'t CompiledTemplate,
    state: &RunState,
    visibility: &Visibility,
    task_index: usize,
) -> Option<&'t str> {
    template
        .template
        .tasks
        .iter()
        .enumerate()
        .take(task_index)
        .find(|(i, _)| visibility.tasks[*i] && !state.tasks[*i].done)
        .map(|(_, t)| t.key.as_str())
}

/// The service tasks whose call is due: open, visible, not failed, and with
/// every earlier visible task complete. Empty unless the run is open.
pub fn due_service_tasks(template: &CompiledTemplate, state: &RunState) -> Vec<usize> {
    if state.status != RunStatus::Open {
        return Vec::new();
    }
    let visibility = Visibility::compute(template, &state.values);
    template
        .template
        .tasks
        .iter()
        .enumerate()
        .filter(|(i, t)| {
            t.task_type == TaskType::Http
                && visibility.tasks[*i]
                && !state.tasks[*i].done
                && state.tasks[*i].service_error.is_none()
                && service_waits_for(template, state, &visibility, *i).is_none()
        })
        .map(|(i, _)| i)
        .collect()
}

/// Whether the actor is an assignee of the task in this run (rule 1's actor part).
pub fn may_act(task: &Task, state: &RunState, task_index: usize, actor: &Actor) -> bool {
    let reassigned = state.tasks.get(task_index).and_then(|t| t.reassigned_to.as_deref());
    let parsed = match reassigned.map(Assignee::parse) {
        Some(Ok(a)) => Some(a),
        _ => None,
    };
    match parsed.as_ref().unwrap_or(&task.assignee) {
        Assignee::Starter => *state.starter == *actor.id,
        Assignee::Role(r) => actor.has_role(r),
        Assignee::User(u) => **u == *actor.id,
        Assignee::Field(k) => match state.values.get(k) {
            Some(serde_json::Value::Array(items)) => items.iter().any(|v| v.as_str() == Some(&*actor.id)),
            Some(serde_json::Value::String(s)) => **s == *actor.id,
            _ => false,
        },
    }
}

/// The emails held by a `members` field.
pub fn members<'s>(state: &'s RunState, field: &str) -> Vec<&'s str> {
    match state.values.get(field) {
        Some(serde_json::Value::Array(items)) => items.iter().filter_map(|v| v.as_str()).collect(),
        Some(serde_json::Value::String(s)) => vec![s.as_str()],
        _ => Vec::new(),
    }
}

/// Every field problem of a task form's values at once, by the checks that
/// `SetFields` makes (and, when `completing`, `Complete` adds: required fields
/// and the task's other values): values for fields the task lacks first, then
/// the task's fields in order. A command stops
/// at its first refusal; a form wants to show them all. This decides nothing:
/// the command still does, and may refuse for reasons that are no field's
/// (who may act, task order, the run's status).
pub fn field_problems(
    template: &CompiledTemplate,
    state: &RunState,
    task_key: &str,
    raw: &Values,
    completing: bool,
) -> Vec<Refusal> {
    let Some((ti, task)) = template.task_index(task_key).and_then(|ti| Some((ti, template.template.tasks.get(ti)?)))
    else {
        return Vec::new();
    };
    let mut problems = Vec::new();
    let mut normalised = Values::new();
    for (key, raw_value) in raw.iter().take(MAX_VALUES_PER_COMMAND) {
        match normalise_on(template, state, task, key, raw_value.clone()) {
            Ok((_, v)) => {
                normalised.insert(key.clone(), v);
            }
            Err(refusal) => problems.push(refusal),
        }
    }
    let merged = |key: &str| match normalised.get(key) {
        Some(v) if v.is_null() => None,
        Some(v) => Some(v),
        None => state.values.get(key),
    };
    let visibility = Visibility::with_pending(template, &state.values, &normalised);
    let dates = DateContext { run_started_at: state.started_at, values: &state.values, pending: Some(&normalised) };
    for (fi, field) in task.fields.iter().enumerate() {
        if problems.iter().any(|p| p.field.as_deref() == Some(field.key.as_str())) {
            continue;
        }
        let visible = visibility.field_at(ti, fi);
        let pending = normalised.get(&field.key).filter(|v| !v.is_null());
        if let Some(v) = pending {
            if !visible {
                problems.push(hidden_field(task, field));
                continue;
            }
            if let Err(why) = value::validate(template, field, v, &dates) {
                problems.push(invalid_value(task, &field.key, why));
                continue;
            }
        }
        if completing && visible {
            match merged(&field.key).filter(|v| !value::is_empty(v)) {
                None if field.required => problems.push(required_field(task, field)),
                Some(v) if pending.is_none() => {
                    if let Err(why) = value::validate(template, field, v, &dates) {
                        problems.push(invalid_value(task, &field.key, why));
                    }
                }
                _ => {}
            }
        }
    }
    problems
}

/// A raw value for a task's field, normalised, with the field's index on the task; or why it
/// cannot be set there.
fn normalise_on(
    template: &CompiledTemplate,
    state: &RunState,
    task: &Task,
    key: &str,
    raw: serde_json::Value,
) -> Result<(usize, serde_json::Value), Refusal> {
    let Some((fi, field)) = task.fields.iter().enumerate().find(|(_, f)| f.key == key) else {
        let rule = if template.template.field(key).is_some() { Rule::FieldNotOnTask } else { Rule::UnknownField };
        return Err(Refusal::new(rule, format!("task '{}' has no field '{key}'", task.key))
            .on_task(&task.key)
            .on_field(key));
    };
    let v = value::normalise_owned(field, raw).map_err(|why| invalid_value(task, key, why))?;
    if matches!(field.kind, attest_template::FieldKind::File(_)) && !v.is_null() && state.values.get(key) != Some(&v) {
        return Err(Refusal::new(
            Rule::InvalidValue,
            format!("field '{key}' on task '{}' takes a file: attach it instead", task.key),
        )
        .on_task(&task.key)
        .on_field(key));
    }
    Ok((fi, v))
}

fn invalid_value(task: &Task, field_key: &str, why: impl std::fmt::Display) -> Refusal {
    Refusal::new(Rule::InvalidValue, format!("field '{field_key}' on task '{}': {why}", task.key))
        .on_task(&task.key)
        .on_field(field_key)
}

fn hidden_field(task: &Task, field: &Field) -> Refusal {
    Refusal::new(Rule::HiddenField, format!("field '{}' on task '{}' is hidden by its condition", field.key, task.key))
        .on_task(&task.key)
        .on_field(&field.key)
}

fn required_field(task: &Task, field: &Field) -> Refusal {
    Refusal::new(Rule::RequiredField, format!("field '{}' on task '{}' is required", field.key, task.key))
        .on_task(&task.key)
        .on_field(&field.key)
}

fn check_text(text: &str, what: &str, max_chars: usize, empty_rule: Rule) -> Result<(), Refusal> {
    if text.trim().is_empty() {
        return Err(Refusal::new(empty_rule, format!("{what} must not be empty")));
    }
    // A text has no more characters than bytes, so only a long one is counted.
    if text.len() > max_chars && text.chars().count() > max_chars {
        return Err(Refusal::new(Rule::TooLarge, format!("{what} is longer than {max_chars} characters")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn values(pairs: &[(&str, Value)]) -> Values {
        pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
    }

    #[test]
    fn a_task_is_known_visible_or_hidden_only_once_decided() {
        let fixed = FixedVisibility::default().with(3, true).with(5, false).with(64, true);
        assert_eq!(fixed.get(3), Some(true));
        assert_eq!(fixed.get(5), Some(false));
        assert_eq!(fixed.get(4), None);
        assert_eq!(fixed.get(64), None);
        assert_eq!(fixed.with(3, false).get(3), Some(false));
    }

    #[test]
    fn a_task_set_holds_the_tasks_marked_below_and_past_63() {
        let mut set = TaskSet::default();
        for ti in [0, 5, 63, 64, 70] {
            set.insert(ti);
        }
        let marked: Vec<usize> = (0..80).filter(|ti| set.contains(*ti)).collect();
        assert_eq!(marked, [0, 5, 63, 64, 70]);
    }

    #[test]
    fn a_pending_value_differs_as_a_search_for_its_key_says_whether_walked_or_searched() {
        let run = values(&[("alpha", json!(1)), ("beta", json!("b")), ("bz", json!(null)), ("delta", json!([1]))]);
        let pending = values(&[
            ("a", json!(null)),
            ("alpha", json!(1)),
            ("b", json!("b")),
            ("beta", json!("c")),
            ("bz", json!(null)),
            ("delta", json!([1])),
            ("zeta", json!(null)),
            ("zz", json!(0)),
        ]);
        let searched: Vec<bool> = pending.iter().map(|(k, v)| run.get(k).unwrap_or(&Value::Null) != v).collect();
        assert_eq!(searched, [false, false, true, true, false, false, false, true]);
        let differs = |run: &Values, pending: &Values| {
            let mut run_values = RunValues::new(run, pending.len());
            pending.iter().map(|(k, v)| run_values.differs(k, v)).collect::<Vec<_>>()
        };
        assert!(RunValues::new(&run, pending.len()).walk.is_some());
        assert_eq!(differs(&run, &pending), searched, "walked");
        let many: Values = (0..100).map(|i| (format!("k{i:03}"), json!(i))).chain(run.clone()).collect();
        let one = values(&[("beta", json!("c"))]);
        assert!(RunValues::new(&many, one.len()).walk.is_none());
        assert_eq!(differs(&many, &one), [true], "searched");
        assert_eq!(differs(&many, &values(&[("k050", json!(50))])), [false], "searched");
    }
}

//! The scheduler's use cases: everything that happens because time passed.
//!
//! One [`Scheduler::tick`] at a given `now` does, in order:
//! 1. **follow the ledger** from a stored cursor: for each run that changed,
//!    make sure the timed jobs of its open tasks exist (a reminder per
//!    `remind` step, an escalation per `escalate` step, an overdue notice),
//!    and derive the mail the new events call for. Jobs have unique keys and
//!    are written in the same transaction that moves the cursor, so a crash
//!    between a run's commit and this step is healed on the next tick and
//!    nothing is enqueued twice;
//! 2. **fire due schedules**: only the latest missed occurrence, once;
//! 3. **run due jobs**, claimed under a lease: reminders and escalations are
//!    engine commands by the system actor (so ledger events), a scheduled
//!    run is a start with a deterministic run id, mail is sent through the
//!    [`MailSender`]. A failed job is retried with exponential backoff up to
//!    a bound, then marked failed for admins to see.
//!
//! Other job kinds (webhooks, HTTP tasks) plug in with [`Scheduler::register`]:
//! enqueue a [`NewJob`] with a unique key through the `JobStore`, and the
//! registered [`JobHandler`] runs it with the same leases and retries.
//! Delivery is at least once: a handler must be idempotent.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use attest_engine::view::{TaskStatus, TaskView, task_views};
use attest_engine::{Actor, Command, EventBody, RunStatus, WorkspaceEvent, WorkspaceEventBody};
use attest_store::{EntryEvent, JobRow, JobStore, LedgerEntry, NewJob, ScheduleStore, SettingsStore, UserRow};
use attest_template::{Duration, DurationUnit};
use jiff::{SignedDuration, Timestamp, ToSpan, Zoned};
use serde::{Deserialize, Serialize};
use sha2::Digest as _;

use crate::error::{Error, Result};
use crate::mail::{self, Mail, MailContext, MailKind, MailSettings};
use crate::schedule;
use crate::workspace::Workspace;

/// The cursor of the ledger follower.
pub const FOLLOWER: &str = "scheduler";

/// Job kinds handled here.
pub const REMIND: &str = "remind";
pub const ESCALATE: &str = "escalate";
pub const OVERDUE: &str = "overdue";
pub const START_RUN: &str = "start_run";
pub const EMAIL: &str = "email";

/// How the scheduler works; the server reads these from its config.
#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    /// Most jobs claimed per tick.
    pub batch: u32,
    /// How long a claim lasts before another worker may take the job.
    pub lease: SignedDuration,
    /// Attempts before a job is marked failed.
    pub max_attempts: u32,
    /// The first retry waits this long; each next one twice as long.
    pub backoff_base: SignedDuration,
    pub backoff_max: SignedDuration,
    /// Most ledger entries the follower reads per tick.
    pub follow_batch: u64,
    /// Done jobs are kept this long (their keys stop re-enqueues), then pruned.
    pub retention: SignedDuration,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            batch: 100,
            lease: SignedDuration::from_secs(60),
            max_attempts: 8,
            backoff_base: SignedDuration::from_secs(30),
            backoff_max: SignedDuration::from_secs(6 * 3600),
            follow_batch: 1_000,
            retention: SignedDuration::from_hours(24 * 400),
        }
    }
}

/// Why a job did not succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobError {
    /// Try again later (with backoff), until the attempts run out.
    Retry(String),
    /// Will never succeed: mark failed now.
    Fatal(String),
}

/// Runs the jobs of one kind.
pub trait JobHandler: Send + Sync + std::fmt::Debug {
    fn run(&self, job: &JobRow, now: Timestamp) -> std::result::Result<(), JobError>;
}

/// Sends one message; an `Err` is retried with backoff.
pub trait MailSender: Send + Sync + std::fmt::Debug {
    fn send(&self, settings: &MailSettings, mail: &Mail) -> std::result::Result<(), String>;
}

/// What one tick did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TickReport {
    pub entries_followed: u64,
    pub jobs_enqueued: usize,
    pub schedules_fired: usize,
    pub jobs_claimed: usize,
    pub jobs_done: usize,
    pub jobs_retried: usize,
    pub jobs_failed: usize,
}

#[derive(Debug, Serialize, Deserialize)]
struct TimedPayload {
    run: String,
    task: String,
    #[serde(default)]
    step: u32,
    /// The due time the job was computed from: if the task's due time moved,
    /// the job is obsolete and a new one exists.
    due_ms: i64,
    rework: u32,
}

#[derive(Debug, Serialize, Deserialize)]
struct StartPayload {
    schedule: String,
    template: String,
    name: String,
    starts_as: String,
    run_id: String,
    /// The run's deadline from the schedule's due period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    due_at: Option<Timestamp>,
}

/// The scheduler of one workspace.
#[derive(Debug)]
pub struct Scheduler {
    ws: Arc<Workspace>,
    jobs: Arc<dyn JobStore>,
    schedules: Arc<dyn ScheduleStore>,
    settings: Arc<dyn SettingsStore>,
    mailer: Option<Arc<dyn MailSender>>,
    handlers: HashMap<String, Arc<dyn JobHandler>>,
    owner: String,
    config: SchedulerConfig,
    /// Set on shutdown: the job in progress finishes, claimed jobs not yet
    /// started are left to their lease and taken again later.
    stopping: AtomicBool,
}

impl Scheduler {
    /// `owner` names this worker in leases; make it unique per process.
    pub fn new(
        ws: Arc<Workspace>,
        jobs: Arc<dyn JobStore>,
        schedules: Arc<dyn ScheduleStore>,
        settings: Arc<dyn SettingsStore>,
        owner: &str,
        config: SchedulerConfig,
    ) -> Self {
        Scheduler {
            ws,
            jobs,
            schedules,
            settings,
            mailer: None,
            handlers: HashMap::new(),
            owner: owner.to_string(),
            config,
            stopping: AtomicBool::new(false),
        }
    }

    /// Asks a running tick to stop after the job in progress.
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
    }

    pub fn with_mailer(mut self, mailer: Arc<dyn MailSender>) -> Self {
        self.mailer = Some(mailer);
        self
    }

    /// Adds a handler for another job kind.
    pub fn register(&mut self, kind: &str, handler: Arc<dyn JobHandler>) {
        self.handlers.insert(kind.to_string(), handler);
    }

    pub fn jobs(&self) -> &Arc<dyn JobStore> {
        &self.jobs
    }

    pub fn workspace(&self) -> &Arc<Workspace> {
        &self.ws
    }

    /// Follows the ledger again from its start: after the workspace's time
    /// zone changed, every open task's due time (and so its jobs) may have
    /// moved. Jobs already enqueued keep their keys, so nothing repeats.
    pub fn refollow(&self, now: Timestamp) -> Result<()> {
        let at = self.jobs.cursor(FOLLOWER)?;
        self.jobs.advance_cursor(FOLLOWER, at, 0, &[], now)?;
        Ok(())
    }

    /// Follows the ledger, fires due schedules and runs due jobs. A failing
    /// step does not keep the others from running; its error is returned
    /// after them.
    pub fn tick(&self, now: Timestamp) -> Result<TickReport> {
        let mut report = TickReport::default();
        let followed = (|| {
            loop {
                let (followed, enqueued) = self.follow_ledger(now)?;
                report.entries_followed += followed;
                report.jobs_enqueued += enqueued;
                if followed < self.config.follow_batch {
                    return Ok(());
                }
            }
        })();
        let fired = self.fire_schedules(now).map(|n| report.schedules_fired = n);
        let ran = self.run_due_jobs(now, &mut report);
        let pruned = match now.checked_sub(self.config.retention) {
            Ok(cutoff) => self.jobs.prune_jobs(cutoff).map(|_| ()).map_err(Error::from),
            Err(_) => Ok(()),
        };
        followed.and(fired).and(ran).and(pruned)?;
        Ok(report)
    }

    /// Reads the next ledger entries after the cursor and enqueues the jobs
    /// they call for. Returns (entries read, jobs enqueued).
    pub fn follow_ledger(&self, now: Timestamp) -> Result<(u64, usize)> {
        let store = self.ws.store();
        let from = self.jobs.cursor(FOLLOWER)?;
        let size = store.ledger_size()?;
        let to = size.min(from.saturating_add(self.config.follow_batch));
        if to <= from {
            return Ok((0, 0));
        }
        let mail_settings = mail::mail_settings(self.settings.as_ref())?;
        let mut deriver = Deriver::new(self, mail_settings, now)?;
        let mut runs = BTreeSet::new();
        for stored in store.ledger_entries(from, to)? {
            let entry = LedgerEntry::decode(&stored.bytes)
                .map_err(|e| Error::Other(anyhow::anyhow!("ledger entry {} is unreadable: {e}", stored.seq)))?;
            if let (Some(run), EntryEvent::Run(event)) = (&entry.run, &entry.event) {
                runs.insert(run.clone());
                deriver.event_mail(stored.seq, run, &event.body)?;
            }
        }
        for run in &runs {
            deriver.run_jobs(run)?;
        }
        let jobs = deriver.jobs;
        let count = jobs.len();
        if !self.jobs.advance_cursor(FOLLOWER, from, to, &jobs, now)? {
            // Another process moved the cursor: its jobs have the same keys.
            return Ok((0, 0));
        }
        Ok((to - from, count))
    }

    /// Fires every active schedule whose next occurrence has come: only the
    /// latest occurrence that is due, once, however many were missed.
    pub fn fire_schedules(&self, now: Timestamp) -> Result<usize> {
        let mut fired = 0;
        for row in self.schedules.due_schedules(now, self.config.batch)? {
            let Some(expected) = row.next_at else { continue };
            let Ok(rule) = schedule::compiled_rule(&row) else {
                // A rule this build cannot read (a time zone gone from the
                // database) would fail every tick: pause it for an owner to fix.
                let paused = WorkspaceEvent {
                    at: now,
                    by: Actor::system(),
                    body: WorkspaceEventBody::SchedulePaused { id: row.id.clone() },
                };
                self.schedules.set_schedule_paused(&paused, &row.id, true, None)?;
                continue;
            };
            let occurrence = rule.latest_until(expected, now);
            let next = rule.next_after(now.max(occurrence));
            let local = occurrence.to_zoned(rule.time_zone().clone());
            let payload = StartPayload {
                schedule: row.id.clone(),
                template: row.template.clone(),
                name: schedule::run_name(&row.name_pattern, &local),
                starts_as: row.starts_as.clone(),
                run_id: scheduled_run_id(&row.id, occurrence),
                due_at: schedule::run_due_at(&row, occurrence, &self.ws.time_zone()),
            };
            let job = NewJob {
                kind: START_RUN.into(),
                key: format!("{START_RUN}:{}:{}", row.id, occurrence.as_millisecond()),
                payload: to_json(&payload)?,
                run_at: now,
            };
            if self.schedules.fire_schedule(&row.id, expected, next, occurrence, &job, now)? {
                fired += 1;
            }
        }
        Ok(fired)
    }

    /// Claims due jobs and runs them, recording each outcome.
    pub fn run_due_jobs(&self, now: Timestamp, report: &mut TickReport) -> Result<()> {
        let lease_until = now.checked_add(self.config.lease).map_err(|e| Error::Other(e.into()))?;
        let claimed = self.jobs.claim(&self.owner, now, lease_until, self.config.batch)?;
        report.jobs_claimed += claimed.len();
        // Jobs with idempotent effects are marked done together, in one
        // transaction after the batch; a crash before it only repeats
        // effects the engine or the run id refuses. Mail is marked done one
        // by one, so a crash re-sends at most one message.
        let mut done = Vec::new();
        for job in claimed {
            if self.stopping.load(Ordering::SeqCst) {
                break;
            }
            match self.run_job(&job, now) {
                Ok(()) if job.kind == EMAIL => {
                    self.jobs.complete(job.id, &self.owner, now)?;
                    report.jobs_done += 1;
                }
                Ok(()) => {
                    done.push(job.id);
                    report.jobs_done += 1;
                }
                Err(JobError::Retry(why)) if job.attempts < self.config.max_attempts => {
                    let retry_at = now.checked_add(self.backoff(job.attempts)).unwrap_or(now);
                    self.jobs.fail(job.id, &self.owner, &why, Some(retry_at), now)?;
                    report.jobs_retried += 1;
                }
                Err(JobError::Retry(why) | JobError::Fatal(why)) => {
                    self.jobs.fail(job.id, &self.owner, &why, None, now)?;
                    report.jobs_failed += 1;
                }
            }
        }
        self.jobs.complete_many(&done, &self.owner, now)?;
        Ok(())
    }

    /// The wait before retry number `attempts`: base × 2^(attempts−1), capped.
    pub fn backoff(&self, attempts: u32) -> SignedDuration {
        let factor = 1i32.checked_shl(attempts.saturating_sub(1).min(20)).unwrap_or(i32::MAX);
        self.config.backoff_base.checked_mul(factor).unwrap_or(self.config.backoff_max).min(self.config.backoff_max)
    }

    fn run_job(&self, job: &JobRow, now: Timestamp) -> std::result::Result<(), JobError> {
        match job.kind.as_str() {
            REMIND => self.timed(job, now, |p| Command::Remind { task: p.task.clone(), step: p.step }),
            ESCALATE => self.timed(job, now, |p| Command::Escalate { task: p.task.clone(), step: p.step }),
            OVERDUE => self.overdue(job, now),
            START_RUN => self.start_run(job, now),
            EMAIL => self.send_mail(job),
            other => match self.handlers.get(other) {
                Some(handler) => handler.run(job, now),
                None => Err(JobError::Fatal(format!("no handler for jobs of kind '{other}'"))),
            },
        }
    }

    /// The task's view now, if the task is still open with the due time and
    /// round of work the job was computed for.
    fn current_view(&self, p: &TimedPayload, now: Timestamp) -> std::result::Result<Option<TaskView>, JobError> {
        let row = match self.ws.run(&p.run) {
            Ok(row) => row,
            Err(Error::NotFound(_)) => return Ok(None),
            Err(e) => return Err(JobError::Retry(e.to_string())),
        };
        if row.state.status != RunStatus::Open {
            return Ok(None);
        }
        let compiled = self.ws.compiled(&row.template_key, row.template_version).map_err(retry)?;
        let view = task_views(&compiled, &row.state, now, &self.ws.time_zone()).into_iter().find(|v| {
            v.key == p.task
                && matches!(v.status, TaskStatus::Open | TaskStatus::Rework)
                && v.rework_count == p.rework
                && v.due_at.map(Timestamp::as_millisecond) == Some(p.due_ms)
        });
        Ok(view)
    }

    /// A reminder or escalation: an engine command by the system actor. A
    /// refusal means the step is no longer wanted (done, taken already).
    fn timed(
        &self,
        job: &JobRow,
        now: Timestamp,
        command: impl Fn(&TimedPayload) -> Command,
    ) -> std::result::Result<(), JobError> {
        let p: TimedPayload = from_json(&job.payload)?;
        if self.current_view(&p, now)?.is_none() {
            return Ok(());
        }
        match self.ws.execute(&p.run, &command(&p), &Actor::system(), now) {
            Ok(_) | Err(Error::Refused(_)) => Ok(()),
            Err(e) => Err(JobError::Retry(e.to_string())),
        }
    }

    /// The task fell due: tell its assignees, unless mail is off or it is done.
    fn overdue(&self, job: &JobRow, now: Timestamp) -> std::result::Result<(), JobError> {
        let p: TimedPayload = from_json(&job.payload)?;
        let Some(view) = self.current_view(&p, now)? else { return Ok(()) };
        let Some(settings) = mail::mail_settings(self.settings.as_ref()).map_err(retry)? else { return Ok(()) };
        let row = self.ws.run(&p.run).map_err(retry)?;
        let mut deriver = Deriver::new(self, Some(settings), now).map_err(retry)?;
        let key = format!("{}:{}:{}", p.run, p.task, p.due_ms);
        deriver
            .mail_to(MailKind::Overdue, &key, &view.assignees, &row.name, &p.run, Some(&view), None)
            .map_err(retry)?;
        let jobs = deriver.jobs;
        self.jobs.enqueue(&jobs, now).map_err(|e| JobError::Retry(e.to_string()))?;
        Ok(())
    }

    fn start_run(&self, job: &JobRow, now: Timestamp) -> std::result::Result<(), JobError> {
        let p: StartPayload = from_json(&job.payload)?;
        let actor = match self.ws.person(&p.starts_as) {
            Ok(a) => a,
            Err(Error::NotFound(m)) => return Err(JobError::Fatal(m)),
            Err(e) => return Err(JobError::Retry(e.to_string())),
        };
        match self.ws.start_run_with_id(&actor, &p.template, Some(&p.name), &p.run_id, p.due_at, now) {
            Ok(_) => Ok(()),
            // A retry after a crash: the run with this id is already there.
            Err(Error::Conflict(_)) if matches!(self.ws.store().run(&p.run_id), Ok(Some(_))) => Ok(()),
            Err(e @ (Error::NotFound(_) | Error::Refused(_))) => Err(JobError::Fatal(e.to_string())),
            Err(e) => Err(JobError::Retry(e.to_string())),
        }
    }

    fn send_mail(&self, job: &JobRow) -> std::result::Result<(), JobError> {
        let mail: Mail = from_json(&job.payload)?;
        let Some(settings) = mail::mail_settings(self.settings.as_ref()).map_err(retry)? else {
            return Err(JobError::Retry("mail is not configured: set the SMTP settings".into()));
        };
        let Some(mailer) = &self.mailer else {
            return Err(JobError::Retry("this process has no mail sender".into()));
        };
        mailer.send(&settings, &mail).map_err(JobError::Retry)
    }
}

fn retry(e: Error) -> JobError {
    JobError::Retry(e.to_string())
}

fn to_json<T: Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| Error::Other(e.into()))
}

fn from_json<T: for<'de> Deserialize<'de>>(s: &str) -> std::result::Result<T, JobError> {
    serde_json::from_str(s).map_err(|e| JobError::Fatal(format!("unreadable job payload: {e}")))
}

/// A run id for one occurrence of a schedule: a UUIDv7 whose time is the
/// occurrence and whose random bits are a hash of schedule and occurrence, so
/// a retried start names the same run and time order still holds.
pub fn scheduled_run_id(schedule: &str, occurrence: Timestamp) -> String {
    let digest = sha2::Sha256::digest(format!("{schedule}\n{}", occurrence.as_millisecond()).as_bytes());
    let mut random = [0u8; 10];
    random.copy_from_slice(&digest[..10]);
    let millis = u64::try_from(occurrence.as_millisecond()).unwrap_or(0);
    uuid::Builder::from_unix_timestamp_millis(millis, &random).into_uuid().to_string()
}

/// A time before a due time: calendar units in the workspace's zone.
fn before(due: &Zoned, d: Duration) -> Option<Zoned> {
    let amount = i64::from(d.amount);
    let span = match d.unit {
        DurationUnit::Minutes => amount.minutes(),
        DurationUnit::Hours => amount.hours(),
        DurationUnit::Days => amount.days(),
        DurationUnit::Weeks => amount.weeks(),
    };
    due.checked_sub(span).ok()
}

/// Builds the jobs one follow step enqueues.
struct Deriver<'a> {
    scheduler: &'a Scheduler,
    mail: Option<MailSettings>,
    users: Vec<UserRow>,
    now: Timestamp,
    jobs: Vec<NewJob>,
}

impl<'a> Deriver<'a> {
    fn new(scheduler: &'a Scheduler, mail: Option<MailSettings>, now: Timestamp) -> Result<Self> {
        let users = if mail.is_some() { scheduler.ws.users()? } else { Vec::new() };
        Ok(Deriver { scheduler, mail, users, now, jobs: Vec::new() })
    }

    /// The people of the workspace a principal (`user:EMAIL`, `role:KEY`)
    /// stands for; API tokens and unknown addresses get no mail.
    fn people(&self, principal: &str) -> Vec<String> {
        match principal.split_once(':') {
            Some(("user", email)) => self.users.iter().filter(|u| u.email == email).map(|u| u.email.clone()).collect(),
            Some(("role", role)) => {
                self.users.iter().filter(|u| u.roles.iter().any(|r| r == role)).map(|u| u.email.clone()).collect()
            }
            _ => Vec::new(),
        }
    }

    /// Queues one message per person behind the principals; `key` makes it unique.
    #[allow(clippy::too_many_arguments)]
    fn mail_to(
        &mut self,
        kind: MailKind,
        key: &str,
        principals: &[String],
        run_name: &str,
        run: &str,
        view: Option<&TaskView>,
        detail: Option<String>,
    ) -> Result<()> {
        let Some(settings) = &self.mail else { return Ok(()) };
        let tz = self.scheduler.ws.time_zone();
        let link = match view {
            Some(v) => settings.task_link(run, &v.key),
            None => settings.run_link(run),
        };
        let due = view.and_then(|v| v.due_at).map(|d| d.to_zoned(tz.clone()).strftime("%Y-%m-%d %H:%M %Z").to_string());
        let ctx = MailContext { run_name, task_name: view.map(|v| v.name.as_str()), due, detail, link };
        let mut people: Vec<String> = principals.iter().flat_map(|p| self.people(p)).collect();
        people.sort();
        people.dedup();
        for person in people {
            if !kind.essential() && self.scheduler.settings.mail_opt_out(&person)? {
                continue;
            }
            let mail = mail::compose(kind, &person, &ctx);
            self.jobs.push(NewJob {
                kind: EMAIL.into(),
                key: format!("{EMAIL}:{}:{key}:{person}", kind.as_str()),
                payload: to_json(&mail)?,
                run_at: self.now,
            });
        }
        Ok(())
    }

    /// Mail that a single event calls for.
    fn event_mail(&mut self, seq: u64, run: &str, body: &EventBody) -> Result<()> {
        if self.mail.is_none() {
            return Ok(());
        }
        let (kind, principals, detail): (MailKind, Vec<String>, Option<String>) = match body {
            EventBody::TaskReminded { .. } => (MailKind::DueSoon, Vec::new(), None),
            EventBody::TaskEscalated { step, notify: Some(to), .. } => {
                (MailKind::Escalated, vec![to.clone()], Some(format!("Escalation step {step}.")))
            }
            EventBody::TaskEscalated { step, reassign: Some(to), .. } => {
                (MailKind::Escalated, vec![to.clone()], Some(format!("Escalation step {step}: the task is now yours.")))
            }
            EventBody::RunCompleted {} => (MailKind::RunCompleted, Vec::new(), None),
            _ => return Ok(()),
        };
        let row = self.scheduler.ws.run(run)?;
        let compiled = self.scheduler.ws.compiled(&row.template_key, row.template_version)?;
        let views = task_views(&compiled, &row.state, self.now, &self.scheduler.ws.time_zone());
        let view = body.task().and_then(|t| views.iter().find(|v| v.key == t));
        let principals = match kind {
            MailKind::DueSoon => view.map(|v| v.assignees.clone()).unwrap_or_default(),
            MailKind::RunCompleted => vec![format!("user:{}", row.state.starter)],
            _ => principals,
        };
        let principals = resolve_special(&principals, &row.state.starter, &row.state);
        self.mail_to(kind, &seq.to_string(), &principals, &row.name, run, view, detail)
    }

    /// For a run that changed: the timed jobs of its open tasks with a due
    /// time, and the "your turn" mail for tasks that became actionable.
    fn run_jobs(&mut self, run: &str) -> Result<()> {
        let row = self.scheduler.ws.run(run)?;
        if row.state.status != RunStatus::Open {
            return Ok(());
        }
        let compiled = self.scheduler.ws.compiled(&row.template_key, row.template_version)?;
        let tz = self.scheduler.ws.time_zone();
        let views = task_views(&compiled, &row.state, self.now, &tz);
        for (view, task) in views.iter().zip(&compiled.template.tasks) {
            if !matches!(view.status, TaskStatus::Open | TaskStatus::Rework) {
                continue;
            }
            // An approval is someone's turn once every subject it signs off is done.
            let subjects_done = task.approves.iter().all(|subject| {
                views.iter().any(|v| v.key == *subject && matches!(v.status, TaskStatus::Done | TaskStatus::Hidden))
            });
            if view.waits_for.is_none() && subjects_done && !view.assignees.is_empty() {
                let kind = if view.rework_count > 0 {
                    MailKind::Rework
                } else if view.approval {
                    MailKind::ApprovalRequested
                } else {
                    MailKind::TaskAssigned
                };
                // A new round (a rework, a rejection resetting an approval) or a
                // new assignee is new mail; the same state again is not.
                let key = format!(
                    "{run}:{}:{}:{}:{}",
                    view.key,
                    view.rework_count,
                    row.state.rework_count,
                    view.assignees.join(",")
                );
                self.mail_to(kind, &key, &view.assignees, &row.name, run, Some(view), None)?;
            }
            let Some(due_at) = view.due_at else { continue };
            let due = due_at.to_zoned(tz.clone());
            let business_days = task.due.as_ref().is_some_and(|d| d.business_days);
            let payload = |step: u32| TimedPayload {
                run: run.to_string(),
                task: view.key.clone(),
                step,
                due_ms: due_at.as_millisecond(),
                rework: view.rework_count,
            };
            let key = |kind: &str, step: u32| {
                format!("{kind}:{run}:{}:{}:{step}:{}", view.key, view.rework_count, due_at.as_millisecond())
            };
            for (i, reminder) in task.remind.iter().enumerate() {
                let step = i as u32 + 1;
                let Some(at) = before(&due, reminder.before_due) else { continue };
                self.jobs.push(NewJob {
                    kind: REMIND.into(),
                    key: key(REMIND, step),
                    payload: to_json(&payload(step))?,
                    run_at: at.timestamp(),
                });
            }
            for (i, escalation) in task.escalate.iter().enumerate() {
                let step = i as u32 + 1;
                let Some(at) = attest_engine::due::add(&due, escalation.overdue_by, business_days) else { continue };
                self.jobs.push(NewJob {
                    kind: ESCALATE.into(),
                    key: key(ESCALATE, step),
                    payload: to_json(&payload(step))?,
                    run_at: at.timestamp(),
                });
            }
            if self.mail.is_some() {
                self.jobs.push(NewJob {
                    kind: OVERDUE.into(),
                    key: key(OVERDUE, 0),
                    payload: to_json(&payload(0))?,
                    run_at: due_at,
                });
            }
        }
        Ok(())
    }
}

/// Escalation targets may be `starter` or `field:KEY`; mail goes to people.
fn resolve_special(principals: &[String], starter: &str, state: &attest_engine::RunState) -> Vec<String> {
    let mut out = Vec::new();
    for p in principals {
        match p.split_once(':') {
            Some(("field", key)) => {
                out.extend(attest_engine::decide::members(state, key).into_iter().map(|m| format!("user:{m}")));
            }
            None if p == "starter" => out.push(format!("user:{starter}")),
            _ => out.push(p.clone()),
        }
    }
    out
}

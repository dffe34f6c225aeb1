//! Time tests of the scheduler: each drives `Scheduler::tick` at chosen
//! instants (the injectable clock, without sleeping) over a real SQLite data
//! directory, and reads what happened from the ledger.

use std::sync::Arc;

use attest_core::schedule::{self, Every, NewSchedule, ScheduleRule};
use attest_core::scheduler::{JobError, JobHandler, Scheduler, SchedulerConfig};
use attest_core::workspace::init_data_dir;
use attest_core::{Clock, DataDir, Workspace};
use attest_engine::{Actor, EventBody};
use attest_store::{FsBlobStore, JobFilter, JobRow, JobState, JobStore, NewJob, RunFilter, ScheduleStore};
use attest_store_sqlite::SqliteStore;
use attest_template::SourceFormat;
use jiff::{SignedDuration, Timestamp};

const TEMPLATE: &str = r#"
format: attest/v1
key: access-review
name: Access review
roles: [reviewer, lead]
tasks:
  - key: review
    name: Review access
    assignee: role:reviewer
    due: { after: run_started, in: 3d, business_days: true }
    remind:
      - { before_due: 1d }
    escalate:
      - { overdue_by: 1d, notify: role:lead }
      - { overdue_by: 3d, reassign: user:lee@example.com }
"#;

fn ts(s: &str) -> Timestamp {
    s.parse().expect("test timestamps are valid")
}

struct Fixture {
    _dir: tempfile::TempDir,
    ws: Arc<Workspace>,
    store: Arc<SqliteStore>,
    admin: Actor,
}

impl Fixture {
    fn new(time_zone: &str) -> Fixture {
        let dir = tempfile::tempdir().expect("temp dir");
        let data = DataDir::new(dir.path().join("data"));
        let t0 = ts("2026-11-01T00:00:00Z");
        init_data_dir(&data, "Test", "admin@example.com", "Admin", t0).expect("init");
        let store = Arc::new(SqliteStore::open(data.database()).expect("open"));
        let ws = Workspace::with_store(store.clone(), Arc::new(FsBlobStore::new(data.files())));
        let system = attest_engine::Actor::system();
        let (_, tz) = attest_core::mail::set_time_zone(store.as_ref(), &system, time_zone, t0).expect("zone");
        ws.set_time_zone(tz);
        let admin = ws.person("admin@example.com").expect("admin");
        for (email, role) in [("rex@example.com", "reviewer"), ("lee@example.com", "lead")] {
            ws.add_user(&admin, email, "", false, t0).expect("user");
            ws.grant_role(&admin, email, role, t0).expect("role");
        }
        let template = Workspace::validate(TEMPLATE, SourceFormat::Yaml, None).expect("valid template");
        ws.publish(&admin, template, t0).expect("publish");
        Fixture { _dir: dir, ws: Arc::new(ws), store, admin }
    }

    fn scheduler(&self, owner: &str) -> Scheduler {
        Scheduler::new(
            self.ws.clone(),
            self.store.clone(),
            self.store.clone(),
            self.store.clone(),
            owner,
            SchedulerConfig::default(),
        )
    }

    /// The event types the scheduler (the system actor) recorded on a run.
    fn system_events(&self, run: &str) -> Vec<EventBody> {
        self.ws
            .run_events(run)
            .expect("events")
            .into_iter()
            .filter(|(_, e)| e.by == Actor::system())
            .map(|(_, e)| e.body)
            .collect()
    }

    fn runs(&self) -> Vec<attest_store::RunRow> {
        self.ws.runs(&RunFilter { limit: 100, ..RunFilter::default() }).expect("runs")
    }
}

#[test]
fn a_task_due_in_three_business_days_from_a_friday_is_due_on_wednesday_and_escalates_after() {
    let f = Fixture::new("Europe/Berlin");
    // Friday 2026-11-20, 10:00 in Berlin.
    let friday = ts("2026-11-20T09:00:00Z");
    let run = f.ws.start_run(&f.admin, "access-review", Some("Q4"), friday).expect("start");
    let row = f.ws.run(&run.run_id).expect("run");
    let inbox = f.ws.inbox(&f.ws.person("rex@example.com").expect("rex")).expect("inbox");
    assert_eq!(inbox[0].due_at, Some(ts("2026-11-25T09:00:00Z")), "Wednesday 10:00 Berlin");
    assert_eq!(row.state.status, attest_engine::RunStatus::Open);

    let scheduler = f.scheduler("worker-1");
    scheduler.tick(friday).expect("tick");
    // Over the weekend and up to the reminder (Tuesday 10:00) nothing happens.
    scheduler.tick(ts("2026-11-24T08:59:59Z")).expect("tick");
    assert!(f.system_events(&run.run_id).is_empty());
    // First escalation is one business day after Wednesday: Thursday 10:00.
    scheduler.tick(ts("2026-11-26T08:59:00Z")).expect("tick");
    let events = f.system_events(&run.run_id);
    assert_eq!(events, vec![EventBody::TaskReminded { task: "review".into(), step: 1 }]);
    scheduler.tick(ts("2026-11-26T09:00:00Z")).expect("tick");
    assert_eq!(f.system_events(&run.run_id).len(), 2);
}

#[test]
fn a_reminder_is_sent_once_at_its_time_as_a_ledger_event() {
    let f = Fixture::new("UTC");
    let monday = ts("2026-03-02T09:00:00Z");
    let run = f.ws.start_run(&f.admin, "access-review", None, monday).expect("start");
    let scheduler = f.scheduler("worker-1");
    // Due Thursday 09:00; the reminder one day before: Wednesday 09:00.
    let report = scheduler.tick(ts("2026-03-04T08:59:00Z")).expect("tick");
    assert_eq!(report.jobs_done, 0);
    assert!(f.system_events(&run.run_id).is_empty());
    scheduler.tick(ts("2026-03-04T09:00:00Z")).expect("tick");
    scheduler.tick(ts("2026-03-04T09:05:00Z")).expect("tick");
    let events = f.ws.run_events(&run.run_id).expect("events");
    let reminders: Vec<_> = events.iter().filter(|(_, e)| e.body.type_name() == "task_reminded").collect();
    assert_eq!(reminders.len(), 1, "one reminder, however often the scheduler ticks");
    assert_eq!(reminders[0].1.at, ts("2026-03-04T09:00:00Z"));
    assert_eq!(reminders[0].1.by, Actor::system());
    f.ws.replay(&run.run_id).expect("the stored state is the fold of the events");
}

#[test]
fn two_escalation_steps_notify_then_reassign_each_once() {
    let f = Fixture::new("UTC");
    let monday = ts("2026-03-02T09:00:00Z");
    let run = f.ws.start_run(&f.admin, "access-review", None, monday).expect("start");
    let scheduler = f.scheduler("worker-1");
    scheduler.tick(monday).expect("tick");
    // Due Thursday 2026-03-05 09:00; step 1 Friday 09:00; step 2 three
    // business days after the due time: Tuesday 2026-03-10 09:00.
    scheduler.tick(ts("2026-03-06T09:00:00Z")).expect("tick");
    let events = f.system_events(&run.run_id);
    assert_eq!(
        events.last(),
        Some(&EventBody::TaskEscalated {
            task: "review".into(),
            step: 1,
            notify: Some("role:lead".into()),
            reassign: None
        })
    );
    scheduler.tick(ts("2026-03-10T08:59:00Z")).expect("tick");
    assert_eq!(f.system_events(&run.run_id).len(), 2, "reminder and step 1 only");
    scheduler.tick(ts("2026-03-10T09:00:00Z")).expect("tick");
    scheduler.tick(ts("2026-03-11T09:00:00Z")).expect("tick");
    let types: Vec<&str> = f.system_events(&run.run_id).iter().map(|b| b.type_name()).collect();
    assert_eq!(types, ["task_reminded", "task_escalated", "task_escalated", "task_reassigned"]);
    let lee = f.ws.person("lee@example.com").expect("lee");
    let inbox = f.ws.inbox(&lee).expect("inbox");
    assert_eq!(inbox.len(), 1, "the task now waits for lee");
    let rex = f.ws.person("rex@example.com").expect("rex");
    assert!(f.ws.inbox(&rex).expect("inbox").is_empty());
}

#[test]
fn escalations_missed_during_downtime_run_in_order_on_the_next_tick() {
    let f = Fixture::new("UTC");
    let monday = ts("2026-03-02T09:00:00Z");
    let run = f.ws.start_run(&f.admin, "access-review", None, monday).expect("start");
    let scheduler = f.scheduler("worker-1");
    scheduler.tick(ts("2026-03-20T09:00:00Z")).expect("one tick after long downtime");
    let types: Vec<&str> = f.system_events(&run.run_id).iter().map(|b| b.type_name()).collect();
    assert_eq!(types, ["task_reminded", "task_escalated", "task_escalated", "task_reassigned"]);
}

fn daily_schedule(f: &Fixture, zone: &str, at: &str, now: Timestamp) -> attest_store::ScheduleRow {
    schedule::create(
        &f.ws,
        f.store.as_ref(),
        &f.admin,
        NewSchedule {
            template: "access-review".into(),
            name_pattern: "Access review {date}".into(),
            rule: ScheduleRule::Every { every: Every::Daily, at: at.into(), weekday: None, day: None },
            time_zone: zone.into(),
            starts_as: "admin@example.com".into(),
            due_days: None,
            due_business_days: false,
        },
        now,
    )
    .expect("schedule")
}

#[test]
fn a_daily_schedule_keeps_nine_oclock_across_the_daylight_saving_change() {
    let f = Fixture::new("Europe/Berlin");
    let clock = Clock::manual(ts("2026-10-23T12:00:00Z"));
    daily_schedule(&f, "Europe/Berlin", "09:00", clock.now());
    let scheduler = f.scheduler("worker-1");
    // Tick every hour for four days across Sunday 2026-10-25 03:00 CEST -> 02:00 CET.
    for _ in 0..(4 * 24) {
        clock.advance(SignedDuration::from_hours(1));
        scheduler.tick(clock.now()).expect("tick");
    }
    let mut started: Vec<(String, Timestamp)> = f.runs().into_iter().map(|r| (r.name.clone(), r.started_at)).collect();
    started.sort_by_key(|(_, at)| *at);
    assert_eq!(
        started,
        vec![
            ("Access review 2026-10-24".to_string(), ts("2026-10-24T07:00:00Z")),
            ("Access review 2026-10-25".to_string(), ts("2026-10-25T08:00:00Z")),
            ("Access review 2026-10-26".to_string(), ts("2026-10-26T08:00:00Z")),
            ("Access review 2026-10-27".to_string(), ts("2026-10-27T08:00:00Z")),
        ]
    );
}

#[test]
fn a_schedule_missed_during_downtime_runs_once_on_restart_not_once_per_missed_day() {
    let f = Fixture::new("UTC");
    let created = ts("2026-03-01T12:00:00Z");
    let row = daily_schedule(&f, "UTC", "09:00", created);
    assert_eq!(row.next_at, Some(ts("2026-03-02T09:00:00Z")));
    // The server was down from before Monday's run until Friday afternoon.
    let restarted = f.scheduler("after-restart");
    let report = restarted.tick(ts("2026-03-06T15:00:00Z")).expect("tick");
    assert_eq!(report.schedules_fired, 1);
    restarted.tick(ts("2026-03-06T15:01:00Z")).expect("tick");
    let names: Vec<String> = f.runs().into_iter().map(|r| r.name).collect();
    assert_eq!(names, ["Access review 2026-03-06"]);
    let row = f.store.schedule(&row.id).expect("read").expect("exists");
    assert_eq!(row.next_at, Some(ts("2026-03-07T09:00:00Z")));
    assert_eq!(row.last_fired_at, Some(ts("2026-03-06T09:00:00Z")));
    restarted.tick(ts("2026-03-07T09:00:00Z")).expect("tick");
    assert_eq!(f.runs().len(), 2);
}

#[test]
fn a_paused_schedule_does_not_fire_and_resumes_from_the_next_occurrence() {
    let f = Fixture::new("UTC");
    let row = daily_schedule(&f, "UTC", "09:00", ts("2026-03-01T12:00:00Z"));
    schedule::pause(f.store.as_ref(), &f.admin, &row.id, ts("2026-03-01T12:00:00Z")).expect("pause");
    let scheduler = f.scheduler("worker-1");
    scheduler.tick(ts("2026-03-04T10:00:00Z")).expect("tick");
    assert!(f.runs().is_empty());
    let resumed = schedule::resume(f.store.as_ref(), &f.admin, &row.id, ts("2026-03-04T10:00:00Z")).expect("resume");
    assert_eq!(resumed.next_at, Some(ts("2026-03-05T09:00:00Z")));
    scheduler.tick(ts("2026-03-05T09:00:00Z")).expect("tick");
    assert_eq!(f.runs().len(), 1);
}

#[test]
fn a_scheduled_start_retried_after_a_crash_does_not_start_a_second_run() {
    let f = Fixture::new("UTC");
    let row = daily_schedule(&f, "UTC", "09:00", ts("2026-03-01T12:00:00Z"));
    let now = ts("2026-03-02T09:00:00Z");
    let first = f.scheduler("crashes");
    assert_eq!(first.fire_schedules(now).expect("fire"), 1);
    // The first worker claims the start, starts the run, and dies before
    // marking the job done.
    let claimed = f.store.claim("crashes", now, ts("2026-03-02T09:01:00Z"), 10).expect("claim");
    assert_eq!(claimed.len(), 1);
    let payload: serde_json::Value = serde_json::from_str(&claimed[0].payload).expect("json");
    let run_id = payload["run_id"].as_str().expect("run id");
    f.ws.start_run_with_id(&f.admin, "access-review", Some("Access review"), run_id, None, now).expect("start");
    // Another worker takes the job once the lease expired.
    let second = f.scheduler("survivor");
    let report = second.tick(ts("2026-03-02T09:02:00Z")).expect("tick");
    assert_eq!(report.jobs_done, 1);
    assert_eq!(f.runs().len(), 1);
    assert_eq!(f.store.schedule(&row.id).expect("read").expect("exists").next_at, Some(ts("2026-03-03T09:00:00Z")));
}

#[test]
fn two_workers_never_claim_the_same_job_and_an_expired_lease_is_claimed_again() {
    let f = Fixture::new("UTC");
    let now = ts("2026-03-02T09:00:00Z");
    let jobs: Vec<NewJob> = (0..50)
        .map(|i| NewJob { kind: "noop".into(), key: format!("noop:{i}"), payload: "{}".into(), run_at: now })
        .collect();
    assert_eq!(f.store.enqueue(&jobs, now).expect("enqueue"), 50);
    assert_eq!(f.store.enqueue(&jobs, now).expect("enqueue again"), 0, "keys are unique");
    let other = SqliteStore::open(f.store.path()).expect("second connection");
    let lease = ts("2026-03-02T09:01:00Z");
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| f.store.claim("a", now, lease, 30).expect("claim a"));
        let b = s.spawn(|| other.claim("b", now, lease, 30).expect("claim b"));
        (a.join().expect("a"), b.join().expect("b"))
    });
    assert_eq!(a.len() + b.len(), 50);
    let mut ids: Vec<i64> = a.iter().chain(&b).map(|j| j.id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 50, "no job was claimed twice");
    assert!(other.claim("b", now, lease, 100).expect("claim").is_empty(), "leases hold");
    let a_id = a.first().map(|j| j.id).unwrap_or(b[0].id);
    let owner = if a.is_empty() { "b" } else { "a" };
    assert!(!f.store.complete(a_id, "intruder", now).expect("complete"), "only the lease owner completes");
    assert!(f.store.complete(a_id, owner, now).expect("complete"));
    let again = other.claim("c", lease, ts("2026-03-02T09:02:00Z"), 100).expect("claim after expiry");
    assert_eq!(again.len(), 49, "the expired leases are claimed again, the done job is not");
    assert!(again.iter().all(|j| j.attempts == 2));
}

#[derive(Debug)]
struct Flaky;

impl JobHandler for Flaky {
    fn run(&self, _job: &JobRow, _now: Timestamp) -> Result<(), JobError> {
        Err(JobError::Retry("the receiver said 503".into()))
    }
}

#[test]
fn a_failing_job_is_retried_with_growing_backoff_then_marked_failed_with_its_error() {
    let f = Fixture::new("UTC");
    let now = ts("2026-03-02T09:00:00Z");
    let config =
        SchedulerConfig { max_attempts: 3, backoff_base: SignedDuration::from_secs(10), ..SchedulerConfig::default() };
    let mut scheduler =
        Scheduler::new(f.ws.clone(), f.store.clone(), f.store.clone(), f.store.clone(), "worker", config);
    scheduler.register("flaky", Arc::new(Flaky));
    f.store
        .enqueue(&[NewJob { kind: "flaky".into(), key: "flaky:1".into(), payload: "{}".into(), run_at: now }], now)
        .expect("enqueue");
    let job = |store: &SqliteStore| {
        store.jobs(&JobFilter { kind: Some("flaky".into()), limit: 1, ..JobFilter::default() }).expect("jobs").remove(0)
    };
    assert_eq!(scheduler.tick(now).expect("tick").jobs_retried, 1);
    assert_eq!(job(&f.store).run_at, ts("2026-03-02T09:00:10Z"), "first retry after the base delay");
    assert_eq!(scheduler.tick(ts("2026-03-02T09:00:09Z")).expect("tick").jobs_claimed, 0, "not before its time");
    scheduler.tick(ts("2026-03-02T09:00:10Z")).expect("tick");
    assert_eq!(job(&f.store).run_at, ts("2026-03-02T09:00:30Z"), "then twice as long");
    assert_eq!(scheduler.tick(ts("2026-03-02T09:00:30Z")).expect("tick").jobs_failed, 1);
    let failed = job(&f.store);
    assert_eq!(failed.state, JobState::Failed);
    assert_eq!(failed.attempts, 3);
    assert_eq!(failed.last_error.as_deref(), Some("the receiver said 503"));
    let visible = f.store.jobs(&JobFilter { with_errors: true, limit: 10, ..JobFilter::default() }).expect("failures");
    assert_eq!(visible.len(), 1);
}

#[test]
fn after_a_time_zone_change_reminders_follow_the_new_business_days() {
    let f = Fixture::new("UTC");
    // Friday 23:00 UTC is already Saturday morning in Tokyo.
    let friday_night = ts("2026-03-06T23:00:00Z");
    let run = f.ws.start_run(&f.admin, "access-review", None, friday_night).expect("start");
    let scheduler = f.scheduler("worker-1");
    scheduler.tick(friday_night).expect("tick");
    let (_, tokyo) =
        attest_core::mail::set_time_zone(f.store.as_ref(), &f.admin, "Asia/Tokyo", friday_night).expect("zone");
    f.ws.set_time_zone(tokyo);
    scheduler.refollow(friday_night).expect("refollow");
    // Counted in Tokyo: due Wednesday 08:00 JST (Tuesday 23:00 UTC), so the
    // reminder is one day earlier than counted in UTC.
    scheduler.tick(ts("2026-03-09T23:00:00Z")).expect("tick");
    assert_eq!(f.system_events(&run.run_id), vec![EventBody::TaskReminded { task: "review".into(), step: 1 }]);
}

/// The mail queued (as `email` jobs), as (recipient, subject).
fn queued_mail(f: &Fixture) -> Vec<(String, String)> {
    let jobs =
        f.store.jobs(&JobFilter { kind: Some("email".into()), limit: 1000, ..JobFilter::default() }).expect("jobs");
    let mut out: Vec<(String, String)> = jobs
        .iter()
        .map(|j| {
            let mail: attest_core::mail::Mail = serde_json::from_str(&j.payload).expect("mail payload");
            (mail.to, mail.subject)
        })
        .collect();
    out.sort();
    out
}

#[test]
fn overdue_notices_go_to_assignees_who_did_not_opt_out_and_escalations_to_everyone() {
    use attest_store::SettingsStore as _;
    let f = Fixture::new("UTC");
    let settings = attest_core::mail::MailSettings {
        smtp_host: "127.0.0.1".into(),
        smtp_port: 25,
        tls: attest_core::mail::TlsMode::None,
        from: "attest@example.com".into(),
        username: None,
        password: None,
        base_url: "https://attest.example.com".into(),
    };
    attest_core::mail::set_mail_settings(f.store.as_ref(), &f.admin, &settings, ts("2026-03-02T09:00:00Z"))
        .expect("mail settings");
    let t0 = ts("2026-03-02T09:00:00Z");
    f.ws.add_user(&f.admin, "ria@example.com", "", false, t0).expect("user");
    f.ws.grant_role(&f.admin, "ria@example.com", "reviewer", t0).expect("role");
    f.ws.grant_role(&f.admin, "ria@example.com", "lead", t0).expect("role");
    f.store.set_mail_opt_out("ria@example.com", true).expect("opt out");
    f.ws.start_run(&f.admin, "access-review", Some("Opt-out run"), t0).expect("start");
    let scheduler = f.scheduler("worker-1");
    for day in ["2026-03-02T09:00:00Z", "2026-03-05T09:00:00Z", "2026-03-05T09:01:00Z", "2026-03-06T09:00:00Z"] {
        scheduler.tick(ts(day)).expect("tick");
    }
    scheduler.tick(ts("2026-03-06T09:01:00Z")).expect("tick");
    let mail: Vec<(String, String)> =
        queued_mail(&f).into_iter().filter(|(_, subject)| subject.contains("Opt-out run")).collect();
    let expected: Vec<(String, String)> = [
        ("lee@example.com", "Escalated: Review access (Opt-out run)"),
        ("rex@example.com", "Due soon: Review access (Opt-out run)"),
        ("rex@example.com", "Overdue: Review access (Opt-out run)"),
        ("rex@example.com", "Task assigned: Review access (Opt-out run)"),
        ("ria@example.com", "Escalated: Review access (Opt-out run)"),
    ]
    .iter()
    .map(|(to, subject)| (to.to_string(), subject.to_string()))
    .collect();
    assert_eq!(mail, expected, "ria opted out of everything but the escalation");
}

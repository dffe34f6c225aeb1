//! Process metrics over runs with known timings: every figure is checked
//! against the value worked out by hand from the script below. And the
//! incremental facts equal the facts replayed from the stored events.

use attest_core::metrics::{Period, facts};
use attest_core::workspace::init_data_dir;
use attest_core::{DataDir, Error, Workspace};
use attest_engine::{Actor, ActorKind, Command, Event, Values};
use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;
use serde_json::{Value, json};

const LAPTOP_V1: &str = r#"
format: attest/v1
key: laptop
name: Laptop request
roles: [it, approver]
controls:
  - { id: C-1, name: Shipped laptops are approved }
tasks:
  - key: request
    name: Ask for a laptop
    assignee: starter
    stop: true
    fields:
      - { key: model, label: Model, type: text, required: true }
  - key: ship
    name: Ship the laptop
    assignee: role:it
    controls: [C-1]
    due: { after: task:request, in: 4h }
  - key: approve
    name: Approve shipping
    type: approval
    approves: [ship]
    assignee: role:approver
"#;

const VENDOR: &str = include_str!("../../../examples/vendor-onboarding.yaml");

const HOUR: i64 = 3_600_000;
const MIN: i64 = 60_000;

struct Bench {
    _tmp: tempfile::TempDir,
    dir: DataDir,
    ws: Workspace,
    rita: Actor,
    ivan: Actor,
    alice: Actor,
    admin: Actor,
}

fn t0() -> Timestamp {
    // A Monday.
    "2026-03-02T08:00:00Z".parse().expect("valid")
}

fn at(base: Timestamp, ms: i64) -> Timestamp {
    base.checked_add(SignedDuration::from_millis(ms)).expect("in range")
}

fn bench() -> Bench {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = DataDir::new(tmp.path().join("data"));
    let (ws, _) = init_data_dir(&dir, "metrics", "admin@example.com", "Admin", t0()).expect("init");
    let admin = Actor::person("admin@example.com", vec![], true);
    let template = Workspace::validate(LAPTOP_V1, attest_template::SourceFormat::Yaml, None).expect("valid");
    ws.publish(&admin, template, t0()).expect("publish");
    Bench {
        _tmp: tmp,
        dir,
        ws,
        rita: Actor::person("rita@example.com", vec![], false),
        ivan: Actor::person("ivan@example.com", vec!["it".into()], false),
        alice: Actor::person("alice@example.com", vec!["approver".into()], false),
        admin,
    }
}

fn complete(task: &str, values: Value) -> Command {
    let values: Values =
        values.as_object().map(|o| o.iter().map(|(k, v)| (k.clone(), v.clone())).collect()).unwrap_or_default();
    Command::Complete { task: task.into(), values }
}

fn approve() -> Command {
    Command::Approve { task: "approve".into(), comment: None }
}

/// Five runs of version 1, each started a day after the previous one:
/// A completes in 2h, B in 4h after one rejection, C in 10h with the
/// shipping late, D is cancelled, E is open with shipping overdue at `now`.
fn script(b: &Bench) -> Timestamp {
    let ws = &b.ws;
    let day = 24 * HOUR;
    let run = |start: Timestamp| ws.start_run(&b.rita, "laptop", Some("run"), start).expect("start").run_id;
    let exec = |run: &str, cmd: Command, who: &Actor, when: Timestamp| {
        ws.execute(run, &cmd, who, when).expect("accepted");
    };
    let request = || complete("request", json!({"model": "standard"}));

    let a0 = t0();
    let a = run(a0);
    exec(&a, request(), &b.rita, at(a0, HOUR));
    exec(&a, complete("ship", json!({})), &b.ivan, at(a0, HOUR + 30 * MIN));
    exec(&a, approve(), &b.alice, at(a0, 2 * HOUR));

    let b0 = at(t0(), day);
    let r = run(b0);
    exec(&r, request(), &b.rita, at(b0, HOUR));
    exec(&r, complete("ship", json!({})), &b.ivan, at(b0, 2 * HOUR));
    exec(
        &r,
        Command::Reject { task: "approve".into(), comment: "wrong model".into() },
        &b.alice,
        at(b0, 2 * HOUR + 30 * MIN),
    );
    exec(&r, complete("ship", json!({})), &b.ivan, at(b0, 3 * HOUR));
    exec(&r, approve(), &b.alice, at(b0, 4 * HOUR));

    let c0 = at(t0(), 2 * day);
    let c = run(c0);
    exec(&c, request(), &b.rita, at(c0, HOUR));
    exec(&c, complete("ship", json!({})), &b.ivan, at(c0, 6 * HOUR));
    exec(&c, approve(), &b.alice, at(c0, 10 * HOUR));

    let d0 = at(t0(), 3 * day);
    let d = run(d0);
    exec(&d, request(), &b.rita, at(d0, HOUR));
    exec(&d, Command::Cancel { reason: "no budget".into() }, &b.admin, at(d0, 2 * HOUR));

    let e0 = at(t0(), 4 * day);
    let e = run(e0);
    exec(&e, request(), &b.rita, at(e0, HOUR));
    at(e0, 8 * HOUR)
}

#[test]
fn metrics_over_known_timings_give_the_figures_worked_out_by_hand() {
    let b = bench();
    let now = script(&b);
    let m = b.ws.template_metrics("laptop", Some(1), Period::default(), now).expect("metrics");

    assert_eq!((m.runs.started, m.runs.completed, m.runs.cancelled, m.runs.open), (5, 3, 1, 1));
    assert_eq!(m.completion.rate, Some(0.6));
    assert_eq!(m.cancellation.rate, Some(0.2));
    assert_eq!(m.rejections, 1);
    assert_eq!(m.rework_rate, Some(0.2));
    assert_eq!(m.cycle_time.count, 3);
    assert_eq!(m.cycle_time.median_ms, Some(4 * HOUR));
    assert_eq!(m.cycle_time.p90_ms, Some(10 * HOUR));
    // Shipping has a due date: A, B twice on time; C late.
    assert_eq!((m.on_time_tasks.count, m.on_time_tasks.of), (3, 4));
    assert_eq!((m.on_time_runs.count, m.on_time_runs.of), (2, 3));
    // C-1 applied in A, B, C; B's shipping was sent back.
    assert_eq!(m.controls.len(), 1);
    assert_eq!(m.controls[0].id, "C-1");
    assert_eq!((m.controls[0].pass.count, m.controls[0].pass.of), (2, 3));

    // Waiting before completion: request 1h in all five runs; shipping
    // 30m (A), 1h and 30m (B), 5h (C).
    let keys: Vec<&str> = m.bottlenecks.iter().map(|w| w.task.as_str()).collect();
    assert_eq!(keys, ["request", "ship"]);
    assert_eq!(m.bottlenecks[0].wait.count, 5);
    assert_eq!(m.bottlenecks[0].wait.median_ms, Some(HOUR));
    assert_eq!(m.bottlenecks[1].name, "Ship the laptop");
    assert_eq!(m.bottlenecks[1].wait.count, 4);
    assert_eq!(m.bottlenecks[1].wait.median_ms, Some(30 * MIN));
    assert_eq!(m.bottlenecks[1].wait.p90_ms, Some(5 * HOUR));
    // Delay to a decision: 30m (A), 30m to the rejection and 1h (B), 4h (C).
    assert_eq!(m.approval_delays.len(), 1);
    assert_eq!(m.approval_delays[0].wait.count, 4);
    assert_eq!(m.approval_delays[0].wait.median_ms, Some(30 * MIN));
    assert_eq!(m.approval_delays[0].wait.p90_ms, Some(4 * HOUR));
    assert_eq!(m.approval_delays[0].wait.max_ms, Some(4 * HOUR));

    // E's shipping fell due 5h after it started.
    assert_eq!((m.overdue.tasks, m.overdue.runs), (1, 1));
    let earlier = b.ws.template_metrics("laptop", Some(1), Period::default(), at(now, -3 * HOUR - MIN)).expect("m");
    assert_eq!(earlier.overdue.tasks, 0, "not overdue before its due date");

    // All three completions fall in the week of Monday 2 March.
    assert_eq!(m.weeks.len(), 1);
    assert_eq!(m.weeks[0].week, t0().checked_sub(SignedDuration::from_hours(8)).expect("range"));
    assert_eq!((m.weeks[0].completed, m.weeks[0].median_cycle_ms), (3, Some(4 * HOUR)));
    assert_eq!(m.cycle_time_histogram.iter().map(|h| h.count).sum::<u64>(), 3);
}

#[test]
fn a_period_selects_runs_by_the_day_they_started() {
    let b = bench();
    let now = script(&b);
    let tuesday = Period::from_dates(Some("2026-03-03"), Some("2026-03-03")).expect("period");
    let m = b.ws.template_metrics("laptop", None, tuesday, now).expect("metrics");
    assert_eq!((m.runs.started, m.runs.completed), (1, 1));
    assert_eq!(m.cycle_time.median_ms, Some(4 * HOUR));
    assert_eq!(m.rework_rate, Some(1.0));
    assert_eq!(m.weeks.len(), 1, "the trend covers the period's weeks only");
    assert_eq!(m.weeks[0].completed, 1);
    let later = Period::from_dates(Some("2026-03-05"), None).expect("period");
    let m = b.ws.template_metrics("laptop", None, later, now).expect("metrics");
    assert_eq!((m.runs.started, m.runs.cancelled, m.runs.open), (2, 1, 1));
    assert_eq!(m.cycle_time.median_ms, None);
    assert!(matches!(Period::from_dates(Some("2026-03-05"), Some("2026-03-04")), Err(Error::BadInput(_))));
    assert!(matches!(Period::from_dates(Some("March"), None), Err(Error::BadInput(_))));
}

#[test]
fn versions_are_measured_apart_and_together() {
    let b = bench();
    let now = script(&b);
    let v2 = LAPTOP_V1.replace("name: Laptop request", "name: Laptop request (v2)");
    let template = Workspace::validate(&v2, attest_template::SourceFormat::Yaml, None).expect("valid");
    b.ws.publish(&b.admin, template, now).expect("publish v2");
    let f0 = at(t0(), 4 * 24 * HOUR);
    let f = b.ws.start_run(&b.rita, "laptop", None, f0).expect("start").run_id;
    for (cmd, who, ms) in [
        (complete("request", json!({"model": "pro"})), &b.rita, HOUR),
        (complete("ship", json!({})), &b.ivan, 2 * HOUR),
        (approve(), &b.alice, 3 * HOUR),
    ] {
        b.ws.execute(&f, &cmd, who, at(f0, ms)).expect("accepted");
    }
    let cmp = b.ws.compare_versions("laptop", 1, 2, Period::default(), now).expect("compare");
    assert_eq!((cmp.left.runs.started, cmp.right.runs.started), (5, 1));
    assert_eq!(cmp.right.cycle_time.median_ms, Some(3 * HOUR));
    assert_eq!(cmp.right.name, "Laptop request (v2)");
    let all = b.ws.template_metrics("laptop", None, Period::default(), now).expect("all");
    assert_eq!(all.runs.started, 6);
    // 2h, 3h, 4h, 10h: nearest rank 2 of 4 and 4 of 4.
    assert_eq!(all.cycle_time.median_ms, Some(3 * HOUR));
    assert_eq!(all.cycle_time.p90_ms, Some(10 * HOUR));
    assert!(matches!(b.ws.template_metrics("laptop", Some(3), Period::default(), now), Err(Error::NotFound(_))));

    let overview = b.ws.metrics_overview(Period::default(), now).expect("overview");
    assert_eq!(overview.runs.started, 6);
    assert_eq!((overview.overdue.tasks, overview.overdue.runs), (1, 1));
    assert_eq!(overview.templates.len(), 1);
    assert_eq!(overview.templates[0].latest_version, 2);
    assert_eq!(overview.templates[0].cycle_time.median_ms, Some(3 * HOUR));
}

#[test]
fn an_older_data_directory_gets_its_facts_by_replay_when_opened() {
    let b = bench();
    let now = script(&b);
    let before = b.ws.template_metrics("laptop", None, Period::default(), now).expect("metrics");
    drop(b.ws);
    let db = rusqlite::Connection::open(b.dir.database()).expect("open");
    // A data directory from before metrics has no facts and so no rollups of them.
    db.execute_batch(
        "DELETE FROM metric_runs; DELETE FROM metric_tasks; DELETE FROM metric_controls;
         DELETE FROM metric_day_runs; DELETE FROM metric_day_cycles; DELETE FROM metric_done_days;
         DELETE FROM metric_day_waits; DELETE FROM metric_day_controls;",
    )
    .expect("wipe");
    drop(db);
    let ws = Workspace::open(&b.dir).expect("open fills the facts in");
    assert_eq!(ws.store().runs_without_facts(10).expect("missing"), Vec::<String>::new());
    let after = ws.template_metrics("laptop", None, Period::default(), now).expect("metrics");
    assert_eq!(before, after);
}

fn stored_events(ws: &Workspace, run: &str) -> Vec<Event> {
    ws.run_events(run).expect("events").into_iter().map(|(_, e)| e).collect()
}

#[derive(Debug, Clone)]
enum Step {
    Set(usize, &'static str, Value),
    Complete(usize, &'static str),
    Approve(usize),
    Reject(usize),
    Cancel(usize),
    Attach(usize, &'static str, &'static str),
}

fn step() -> impl Strategy<Value = Step> {
    let who = 0usize..5;
    let value = prop_oneof![
        Just(("vendor_name", json!("Acme"))),
        Just(("annual_spend", json!("25000"))),
        Just(("annual_spend", json!("500"))),
        Just(("personal_data", json!(true))),
        Just(("personal_data", json!(false))),
        Just(("risk", json!("high"))),
        Just(("risk", json!("low"))),
    ];
    let task = prop_oneof![Just("request"), Just("security_review")];
    prop_oneof![
        3 => (who.clone(), value).prop_map(|(w, (k, v))| Step::Set(w, k, v)),
        3 => (who.clone(), task).prop_map(|(w, t)| Step::Complete(w, t)),
        2 => (who.clone(), prop_oneof![Just(("request", "contract")), Just(("security_review", "report"))])
            .prop_map(|(w, (t, f))| Step::Attach(w, t, f)),
        2 => who.clone().prop_map(Step::Approve),
        2 => who.clone().prop_map(Step::Reject),
        1 => who.prop_map(Step::Cancel),
    ]
}

fn vendor_people() -> Vec<Actor> {
    vec![
        Actor::person("rita@example.com", vec!["requester".into()], false),
        Actor::person("sam@example.com", vec!["security".into()], false),
        Actor::person("fin@example.com", vec!["finance-approver".into()], false),
        Actor::person("pat@example.com", vec!["procurement-lead".into()], false),
        Actor::person("admin@example.com", vec![], true),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn incremental_facts_equal_facts_replayed_from_stored_events(
        steps in proptest::collection::vec((step(), 1i64..600), 1..40),
    ) {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = DataDir::new(tmp.path().join("data"));
        let mut now = t0();
        let (ws, _) = init_data_dir(&dir, "prop", "admin@example.com", "Admin", now).expect("init");
        let operator = Actor { kind: ActorKind::System, id: "test".into(), roles: Default::default(), admin: true };
        let template = Workspace::validate(VENDOR, attest_template::SourceFormat::Yaml, None).expect("example");
        ws.publish(&operator, template, now).expect("publish");
        let people = vendor_people();
        let run = ws.start_run(&people[0], "vendor-onboarding", None, now).expect("start").run_id;
        let compiled = ws.compiled("vendor-onboarding", 1).expect("compiled");
        for (step, minutes) in &steps {
            now = at(now, minutes * MIN);
            let values = |k: &str, v: &Value| -> Values { [(k.to_string(), v.clone())].into_iter().collect() };
            let task_of = |k: &str| if matches!(k, "risk") { "security_review" } else { "request" };
            let outcome = match step {
                Step::Set(w, k, v) => ws
                    .execute(&run, &Command::SetFields { task: task_of(k).into(), values: values(k, v) }, &people[*w], now)
                    .map(|_| ()),
                Step::Complete(w, t) => ws.execute(&run, &complete(t, json!({})), &people[*w], now).map(|_| ()),
                Step::Approve(w) => ws
                    .execute(&run, &Command::Approve { task: "finance_approval".into(), comment: None }, &people[*w], now)
                    .map(|_| ()),
                Step::Reject(w) => ws
                    .execute(&run, &Command::Reject { task: "finance_approval".into(), comment: "again".into() }, &people[*w], now)
                    .map(|_| ()),
                Step::Cancel(w) => ws.execute(&run, &Command::Cancel { reason: "withdrawn".into() }, &people[*w], now).map(|_| ()),
                Step::Attach(w, t, f) => {
                    let mut bytes: &[u8] = b"%PDF-1.4 evidence";
                    ws.attach(&run, t, Some(f), "evidence.pdf", &mut bytes, &people[*w], now).map(|_| ())
                }
            };
            match outcome {
                Ok(()) | Err(Error::Refused(_)) => {}
                Err(e) => prop_assert!(false, "unexpected error: {e}"),
            }
            let stored = ws.store().run_facts(&run).expect("facts").expect("the run has facts");
            let replayed = facts::replay(&compiled, &stored_events(&ws, &run), &ws.time_zone())
                .expect("replay")
                .expect("a started run");
            prop_assert_eq!(&stored, &replayed);
            prop_assert_eq!(stored.event_count, ws.run(&run).expect("run").version);
        }
    }
}

#[test]
fn a_group_commit_gives_the_facts_a_replay_gives() {
    let b = bench();
    let run = b.ws.start_run(&b.rita, "laptop", None, t0()).expect("start").run_id;
    let later = at(t0(), 3 * HOUR);
    let item =
        |command: Command, by: &Actor| attest_core::BatchItem::Execute { run: run.clone(), command, by: by.clone() };
    let results =
        b.ws.execute_many(
            &[
                item(complete("request", json!({"model": "standard"})), &b.rita),
                item(complete("ship", json!({})), &b.ivan),
                item(Command::Reject { task: "approve".into(), comment: "again".into() }, &b.alice),
                item(complete("ship", json!({})), &b.ivan),
                item(approve(), &b.alice),
            ],
            later,
        )
        .expect("batch");
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let compiled = b.ws.compiled("laptop", 1).expect("compiled");
    let stored = b.ws.store().run_facts(&run).expect("facts").expect("facts");
    let replayed = facts::replay(&compiled, &stored_events(&b.ws, &run), &b.ws.time_zone()).expect("replay");
    assert_eq!(Some(&stored), replayed.as_ref());
    // Five episodes ended in the one commit: request waited 3h, the rest nothing.
    let waits: Vec<(&str, i64)> = stored
        .tasks
        .iter()
        .map(|t| {
            let span =
                t.ended_at.expect("ended").as_millisecond() - t.actionable_at.expect("actionable").as_millisecond();
            (t.task_key.as_str(), span)
        })
        .collect();
    assert_eq!(waits, [("request", 3 * HOUR), ("ship", 0), ("approve", 0), ("ship", 0), ("approve", 0)]);
    assert_eq!((stored.rejections, stored.on_time), (1, Some(true)));
    assert_eq!(stored.controls, [attest_store::ControlFact { control_id: "C-1".into(), passed: false }]);
}

//! Property: whatever sequence of commands people send, the state stored in
//! the SQLite projection is exactly the fold of the events stored in the
//! ledger, each person's inbox is what a full projection of that state gives
//! (the store rewrites only changed task rows), the stored metric facts are a
//! replay of the stored events (the store writes only changed fact rows,
//! diffed against what the run cache held), and the ledger verifies against
//! its checkpoints.

use attest_core::audit;
use attest_core::workspace::init_data_dir;
use attest_core::{BatchItem, DataDir, Error, Workspace};
use attest_engine::{Actor, Command, RunStatus, Values};
use jiff::Timestamp;
use proptest::prelude::*;
use serde_json::{Value, json};

const VENDOR: &str = include_str!("../../../examples/vendor-onboarding.yaml");

#[derive(Debug, Clone)]
enum Step {
    Set(usize, &'static str, Value),
    Complete(usize, &'static str),
    Attach(usize, &'static str, &'static str),
    Approve(usize),
    Reject(usize, bool),
    Comment(usize, &'static str),
    Cancel(usize, bool),
}

fn people() -> Vec<Actor> {
    vec![
        Actor::person("rita@example.com", vec!["requester".into()], false),
        Actor::person("sam@example.com", vec!["security".into()], false),
        Actor::person("fin@example.com", vec!["finance-approver".into()], false),
        Actor::person("pat@example.com", vec!["procurement-lead".into()], false),
        Actor::person("admin@example.com", vec![], true),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    let who = 0usize..5;
    let value = prop_oneof![
        Just(("vendor_name", json!("Acme"))),
        Just(("vendor_name", json!(""))),
        Just(("annual_spend", json!("25000"))),
        Just(("annual_spend", json!("500"))),
        Just(("annual_spend", json!("lots"))),
        Just(("personal_data", json!(true))),
        Just(("personal_data", json!(false))),
        Just(("risk", json!("high"))),
        Just(("risk", json!("low"))),
    ];
    let task = prop_oneof![Just("request"), Just("security_review"), Just("finance_approval")];
    prop_oneof![
        (who.clone(), value).prop_map(|(w, (k, v))| Step::Set(w, k, v)),
        (who.clone(), task.clone()).prop_map(|(w, t)| Step::Complete(w, t)),
        (who.clone(), prop_oneof![Just(("request", "contract")), Just(("security_review", "report"))])
            .prop_map(|(w, (t, f))| Step::Attach(w, t, f)),
        who.clone().prop_map(Step::Approve),
        (who.clone(), any::<bool>()).prop_map(|(w, c)| Step::Reject(w, c)),
        (who.clone(), task).prop_map(|(w, t)| Step::Comment(w, t)),
        (who, proptest::bool::weighted(0.1)).prop_map(|(w, c)| Step::Cancel(w, c)),
    ]
}

fn command(step: &Step) -> (usize, Option<Command>) {
    let values = |k: &str, v: &Value| -> Values { [(k.to_string(), v.clone())].into_iter().collect() };
    match step {
        Step::Set(w, k, v) => (*w, Some(Command::SetFields { task: task_of(k).into(), values: values(k, v) })),
        Step::Complete(w, t) => (*w, Some(Command::Complete { task: (*t).into(), values: Values::new() })),
        Step::Attach(w, _, _) => (*w, None),
        Step::Approve(w) => (*w, Some(Command::Approve { task: "finance_approval".into(), comment: None })),
        Step::Reject(w, with_comment) => (
            *w,
            Some(Command::Reject {
                task: "finance_approval".into(),
                comment: if *with_comment { "Rework please".into() } else { String::new() },
            }),
        ),
        Step::Comment(w, t) => (*w, Some(Command::Comment { task: (*t).into(), text: "Looks fine".into() })),
        Step::Cancel(w, really) => (*w, really.then(|| Command::Cancel { reason: "Vendor withdrew".into() })),
    }
}

/// A person's inbox rows for the run as the store answers it.
fn stored_inbox(ws: &Workspace, run: &str, person: &Actor) -> Vec<(String, String, String, bool, Option<Timestamp>)> {
    let mut rows: Vec<_> = ws
        .inbox(person)
        .expect("inbox")
        .into_iter()
        .filter(|r| r.run_id == run)
        .map(|r| (r.task_key, r.status, r.task_name, r.approval, r.due_at))
        .collect();
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    rows
}

/// The same rows from a full projection of the stored state.
fn projected_inbox(
    ws: &Workspace,
    run: &str,
    person: &Actor,
) -> Vec<(String, String, String, bool, Option<Timestamp>)> {
    let row = ws.run(run).expect("run");
    if row.state.status != RunStatus::Open {
        return Vec::new();
    }
    let compiled = ws.compiled(&row.template_key, row.template_version).expect("template");
    let commit = ws.prepare_commit(&compiled, row.version, Vec::new(), &row.state).expect("commit");
    let mut principals = vec![format!("user:{}", person.id)];
    principals.extend(person.roles.iter().map(|r| format!("role:{r}")));
    let mut rows: Vec<_> = commit
        .tasks
        .into_iter()
        .filter(|t| (t.status == "open" || t.status == "rework") && t.assignees.iter().any(|a| principals.contains(a)))
        .map(|t| (t.key, t.status, t.name, t.approval, t.due_at))
        .collect();
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    rows
}

fn task_of(field: &str) -> &'static str {
    match field {
        "risk" | "report" => "security_review",
        _ => "request",
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn stored_state_is_the_fold_of_stored_events(steps in proptest::collection::vec(step(), 1..40)) {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = DataDir::new(tmp.path().join("data"));
        let mut now: Timestamp = "2026-11-24T09:00:00Z".parse().expect("valid");
        let (ws, _) = init_data_dir(&dir, "prop", "admin@example.com", "Admin", now).expect("init");
        let operator = Actor { kind: attest_engine::ActorKind::System, id: "test".into(), roles: Default::default(), admin: true };
        let template = Workspace::validate(VENDOR, attest_template::SourceFormat::Yaml, None).expect("example");
        ws.publish(&operator, template, now).expect("publish");
        let people = people();
        let run = ws.start_run(&people[0], "vendor-onboarding", None, now).expect("start").run_id;
        for step in &steps {
            now = now.checked_add(jiff::SignedDuration::from_mins(7)).expect("in range");
            let before = ws.run(&run).expect("run");
            let (who, cmd) = command(step);
            let outcome = match (step, cmd) {
                (Step::Attach(_, task, field), _) => {
                    let mut bytes: &[u8] = b"%PDF-1.4 evidence";
                    ws.attach(&run, task, Some(field), "evidence.pdf", &mut bytes, &people[who], now).map(|_| ())
                }
                (_, Some(cmd)) => ws.execute(&run, &cmd, &people[who], now).map(|_| ()),
                (_, None) => continue,
            };
            match outcome {
                Ok(()) => {}
                Err(Error::Refused(_)) => {
                    let after = ws.run(&run).expect("run");
                    prop_assert_eq!(&before.state, &after.state, "a refusal changed the stored state");
                    prop_assert_eq!(before.version, after.version);
                }
                Err(e) => prop_assert!(false, "unexpected error: {e}"),
            }
            for person in &people {
                prop_assert_eq!(stored_inbox(&ws, &run, person), projected_inbox(&ws, &run, person));
            }
            let replayed = ws.replay(&run).expect("replay matches the stored projection");
            prop_assert_eq!(replayed.event_count, ws.run(&run).expect("run").version);
            // The metric facts, written as changes from the facts the run cache
            // held, equal a full replay of the stored events.
            let events: Vec<_> = ws.run_events(&run).expect("events").into_iter().map(|(_, e)| e).collect();
            let compiled = ws.compiled("vendor-onboarding", 1).expect("template");
            let replayed_facts =
                attest_core::metrics::facts::replay(&compiled, &events, &ws.time_zone()).expect("facts replay");
            prop_assert_eq!(ws.store().run_facts(&run).expect("stored facts"), replayed_facts);
            if replayed.status != RunStatus::Open {
                break;
            }
        }
        let signer = audit::load_signer(&dir).expect("key");
        audit::sign_checkpoint(&ws, &signer, now).expect("checkpoint");
        let report = audit::verify(&ws, &signer.verifier_key()).expect("verify runs");
        prop_assert!(report.ok(), "{:?}", report.findings);
        // Workspace creation, the admin, the template and the run's start, at least.
        prop_assert!(report.entries >= 4);
        prop_assert_eq!(report.runs, 1);
        // The workspace's three entries (created, admin, template) and every event of the run.
        prop_assert_eq!(report.entries, 3 + ws.run(&run).expect("run").version);
    }
}

/// The facts and inbox rows the store holds for a run, against a full replay
/// and a full projection of its stored state.
fn assert_projection_current(ws: &Workspace, run: &str, people: &[Actor], step: &str) {
    let events: Vec<_> = ws.run_events(run).expect("events").into_iter().map(|(_, e)| e).collect();
    let compiled = ws.compiled("vendor-onboarding", 1).expect("template");
    let replayed = attest_core::metrics::facts::replay(&compiled, &events, &ws.time_zone()).expect("facts replay");
    assert_eq!(ws.store().run_facts(run).expect("stored facts"), replayed, "facts after {step}");
    for person in people {
        assert_eq!(stored_inbox(ws, run, person), projected_inbox(ws, run, person), "inbox after {step}");
    }
}

/// Regression (issue 2, durable throughput): commands decided from the run
/// cache write only the projection rows that changed; every row must still
/// equal what a full projection and replay give, through a rejection, rework
/// and completion with each command a cache hit.
#[test]
fn run_cache_commits_keep_every_projection_row_current() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = DataDir::new(tmp.path().join("data"));
    let mut now: Timestamp = "2026-11-24T09:00:00Z".parse().expect("valid");
    let (ws, _) = init_data_dir(&dir, "cache", "admin@example.com", "Admin", now).expect("init");
    let operator =
        Actor { kind: attest_engine::ActorKind::System, id: "test".into(), roles: Default::default(), admin: true };
    let template = Workspace::validate(VENDOR, attest_template::SourceFormat::Yaml, None).expect("example");
    ws.publish(&operator, template, now).expect("publish");
    let people = people();
    let (rita, sam, fin) = (&people[0], &people[1], &people[2]);
    let run = ws.start_run(rita, "vendor-onboarding", None, now).expect("start").run_id;
    let values = |v: Value| -> Values { v.as_object().expect("object").clone().into_iter().collect() };
    let complete = |task: &str, v: Value| Command::Complete { task: task.into(), values: values(v) };
    let request = json!({
        "vendor_name": "Acme GmbH", "vendor_website": "https://acme.example",
        "annual_spend": 25000, "personal_data": true,
    });
    let steps: Vec<(&str, &Actor, Option<Command>)> = vec![
        ("set request", rita, Some(Command::SetFields { task: "request".into(), values: values(request) })),
        ("attach contract", rita, None),
        ("complete request", rita, Some(complete("request", json!({})))),
        (
            "review",
            sam,
            Some(Command::AttachEvidence {
                task: "security_review".into(),
                field: Some("report".into()),
                file: attest_engine::FileRef {
                    name: "assessment.pdf".into(),
                    size: 10,
                    media_type: "application/pdf".into(),
                    sha256: "ab".repeat(32).into(),
                },
            }),
        ),
        ("complete review", sam, Some(complete("security_review", json!({ "risk": "high" })))),
        ("reject", fin, Some(Command::Reject { task: "finance_approval".into(), comment: "Unsigned".into() })),
        ("attach again", rita, None),
        ("complete request again", rita, Some(complete("request", json!({})))),
        ("complete review again", sam, Some(complete("security_review", json!({})))),
        ("approve", fin, Some(Command::Approve { task: "finance_approval".into(), comment: None })),
    ];
    for (name, who, command) in steps {
        now = now.checked_add(jiff::SignedDuration::from_hours(5)).expect("in range");
        match command {
            Some(command) => {
                ws.execute(&run, &command, who, now).unwrap_or_else(|e| panic!("{name}: {e}"));
            }
            None => {
                let mut bytes: &[u8] = b"%PDF-1.4 contract";
                ws.attach(&run, "request", Some("contract"), "contract.pdf", &mut bytes, who, now)
                    .unwrap_or_else(|e| panic!("{name}: {e}"));
            }
        }
        assert_projection_current(&ws, &run, &people, name);
    }
    assert_eq!(ws.run(&run).expect("run").status, RunStatus::Completed);
}

/// Regression (issue 2, durable throughput): a group commit writes its
/// entries and tree nodes with multi-row inserts, in chunks of a power of two
/// rows. Batches that span several chunks and a remainder, on a ledger of odd
/// size, must store the entries, leaves and roots that one append per entry gives.
#[test]
fn group_commits_in_chunks_leave_the_tree_one_append_per_entry_gives() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = DataDir::new(tmp.path().join("data"));
    let now: Timestamp = "2026-11-24T09:00:00Z".parse().expect("valid");
    let (ws, _) = init_data_dir(&dir, "chunks", "admin@example.com", "Admin", now).expect("init");
    let operator =
        Actor { kind: attest_engine::ActorKind::System, id: "test".into(), roles: Default::default(), admin: true };
    let template = Workspace::validate(VENDOR, attest_template::SourceFormat::Yaml, None).expect("example");
    ws.publish(&operator, template, now).expect("publish");
    let rita = people().remove(0);
    let starts: Vec<BatchItem> = (0..77)
        .map(|_| BatchItem::Start { template: "vendor-onboarding".into(), name: None, by: rita.clone() })
        .collect();
    let runs: Vec<String> =
        ws.execute_many(&starts, now).expect("batch").into_iter().map(|r| r.expect("start").run_id.clone()).collect();
    for name in ["Acme", "Acme GmbH"] {
        let values: Values = [("vendor_name".to_string(), json!(name))].into_iter().collect();
        let sets: Vec<BatchItem> = runs
            .iter()
            .map(|run| BatchItem::Execute {
                run: run.clone(),
                command: Command::SetFields { task: "request".into(), values: values.clone() },
                by: rita.clone(),
            })
            .collect();
        for outcome in ws.execute_many(&sets, now).expect("batch") {
            outcome.expect("set");
        }
    }
    let store = ws.store();
    let size = store.ledger_size().expect("size");
    // The workspace's three entries, then one start and two sets per run.
    assert_eq!(size, 3 + 3 * 77, "every batch appended its entries");
    let mut tree = attest_ledger::MemoryNodeStore::new();
    for entry in store.ledger_entries(0, size).expect("entries") {
        let leaf = attest_ledger::leaf_hash(&entry.bytes);
        assert_eq!(store.ledger_leaf(entry.seq).expect("leaf"), Some(leaf), "leaf {}", entry.seq);
        attest_ledger::append(&mut tree, entry.seq, &leaf).expect("append");
        let grown = entry.seq + 1;
        assert_eq!(
            store.ledger_root(grown).expect("root"),
            attest_ledger::root(&tree, grown).expect("root"),
            "root of {grown}"
        );
    }
    for run in &runs {
        ws.replay(run).expect("replay matches the stored projection");
    }
}

/// Regression (issue 2, durable throughput): a group commit decides each
/// command on the run's pending state itself, which a refusal drops. Refused
/// commands before and between accepted ones on the same run leave the later
/// ones decided on the right state.
#[test]
fn refusals_in_a_group_commit_leave_later_commands_on_the_same_run_their_state() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = DataDir::new(tmp.path().join("data"));
    let now: Timestamp = "2026-11-24T09:00:00Z".parse().expect("valid");
    let (ws, _) = init_data_dir(&dir, "refusals", "admin@example.com", "Admin", now).expect("init");
    let operator =
        Actor { kind: attest_engine::ActorKind::System, id: "test".into(), roles: Default::default(), admin: true };
    let template = Workspace::validate(VENDOR, attest_template::SourceFormat::Yaml, None).expect("example");
    ws.publish(&operator, template, now).expect("publish");
    let people = people();
    let (rita, fin) = (&people[0], &people[2]);
    let run = ws.start_run(rita, "vendor-onboarding", None, now).expect("start").run_id;
    let set = |name: &str| Command::SetFields {
        task: "request".into(),
        values: [("vendor_name".to_string(), json!(name))].into_iter().collect(),
    };
    let approve = Command::Approve { task: "finance_approval".into(), comment: None };
    let items: Vec<BatchItem> = [(&approve, fin), (&set("Acme"), rita), (&approve, fin), (&set("Acme GmbH"), rita)]
        .into_iter()
        .map(|(command, by)| BatchItem::Execute { run: run.clone(), command: command.clone(), by: by.clone() })
        .collect();
    let outcomes = ws.execute_many(&items, now).expect("batch");
    assert!(matches!(outcomes[0], Err(Error::Refused(_))), "{:?}", outcomes[0]);
    assert!(matches!(outcomes[2], Err(Error::Refused(_))), "{:?}", outcomes[2]);
    let first = outcomes[1].as_ref().expect("the first set is accepted");
    let second = outcomes[3].as_ref().expect("the second set is accepted");
    assert_eq!(first.values.get("vendor_name"), Some(&json!("Acme")));
    assert_eq!(second.values.get("vendor_name"), Some(&json!("Acme GmbH")));
    assert_eq!(second.event_count, first.event_count + 1, "the second set was decided after the first");
    let stored = ws.run(&run).expect("run");
    assert_eq!(&stored.state, &**second);
    ws.replay(&run).expect("replay matches the stored projection");
    assert_projection_current(&ws, &run, &people, "the batch");
}

/// Regression (issue 2, durable throughput): a batch of 32 runs or more is
/// decided on a second thread while the store writes. Whatever it holds
/// (cached and stored runs, refusals before, between and after accepted
/// commands, runs with refusals only, an unknown run, starts), each item's
/// outcome and each run's stored state are what the same commands sent one
/// at a time give.
#[test]
fn a_large_batch_decided_beside_the_writes_gives_what_one_command_at_a_time_gives() {
    const RUNS: usize = 40;
    let now: Timestamp = "2026-11-24T09:00:00Z".parse().expect("valid");
    let people = people();
    let (rita, fin) = (&people[0], &people[2]);
    let set = |field: &str, value: Value| Command::SetFields {
        task: "request".into(),
        values: [(field.to_string(), value)].into_iter().collect(),
    };
    let approve = Command::Approve { task: "finance_approval".into(), comment: None };
    let open = |name: &str| {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = DataDir::new(tmp.path().join("data"));
        let (ws, _) = init_data_dir(&dir, name, "admin@example.com", "Admin", now).expect("init");
        let operator =
            Actor { kind: attest_engine::ActorKind::System, id: "test".into(), roles: Default::default(), admin: true };
        let template = Workspace::validate(VENDOR, attest_template::SourceFormat::Yaml, None).expect("example");
        ws.publish(&operator, template, now).expect("publish");
        for i in 0..RUNS {
            ws.start_run_with_id(rita, "vendor-onboarding", None, &format!("run-{i}"), None, now).expect("start");
        }
        // A second workspace on the same data holds none of the runs in its
        // cache; one command caches the first half again.
        let ws = Workspace::open(&dir).expect("open");
        for i in 0..RUNS / 2 {
            ws.execute(&format!("run-{i}"), &set("vendor_website", json!("https://example.com")), rita, now)
                .expect("set");
        }
        (tmp, ws)
    };
    let (_batch_dir, batched) = open("batched");
    let (_single_dir, single) = open("single");
    let mut items = Vec::new();
    for round in 0..4 {
        for i in 0..RUNS {
            let run = format!("run-{i}");
            // Every third run gets refused commands only.
            let (command, by) = match (round, i % 3 == 0) {
                (0 | 2, _) => (approve.clone(), fin),
                (1, false) => (set("vendor_name", json!("Acme")), rita),
                (3, false) => (set("annual_spend", json!("500")), rita),
                (_, _) => (set("annual_spend", json!("lots")), rita),
            };
            items.push(BatchItem::Execute { run, command, by: by.clone() });
        }
        items.push(BatchItem::Start { template: "vendor-onboarding".into(), name: None, by: rita.clone() });
    }
    items.push(BatchItem::Execute { run: "no-such-run".into(), command: approve.clone(), by: fin.clone() });
    let outcomes = batched.execute_many(&items, now).expect("batch");
    assert_eq!(outcomes.len(), items.len());
    let mut accepted = 0;
    for (item, outcome) in items.iter().zip(&outcomes) {
        match item {
            BatchItem::Start { .. } => {
                let state = outcome.as_ref().expect("a start is accepted");
                batched.replay(&state.run_id).expect("the started run replays to its stored state");
            }
            BatchItem::Execute { run, command, by } => {
                match (single.execute(run, command, by, now).map(|(_, state)| state), outcome) {
                    (Ok(one), Ok(many)) => {
                        assert_eq!(&one, &**many, "{run}: {command:?}");
                        accepted += 1;
                    }
                    (Err(one), Err(many)) => assert_eq!(one.to_string(), many.to_string(), "{run}: {command:?}"),
                    (one, many) => panic!("{run}: {command:?}: one at a time gave {one:?}, the batch {many:?}"),
                }
            }
        }
    }
    assert_eq!(accepted, 2 * (RUNS - RUNS.div_ceil(3)), "two sets on each run that is not refused only");
    for i in 0..RUNS {
        let run = format!("run-{i}");
        assert_eq!(batched.run(&run).expect("run").state, single.run(&run).expect("run").state, "{run}");
        batched.replay(&run).expect("replay matches the stored projection");
        assert_projection_current(&batched, &run, &people, "the large batch");
    }
}

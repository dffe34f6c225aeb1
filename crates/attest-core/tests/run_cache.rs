//! The run cache is trusted without asking the store for the run's version:
//! a run moved past it (here by a second workspace on the same data
//! directory, as another process would) is decided again on its stored
//! state, neither refused on the stale one nor written over.

use attest_core::workspace::{BatchItem, init_data_dir};
use attest_core::{DataDir, Workspace};
use attest_engine::{Actor, Command, RunStatus, Values};
use jiff::{SignedDuration, Timestamp};

const LAPTOP: &str = r#"
format: attest/v1
key: laptop
name: Laptop request
roles: [it, approver]
tasks:
  - key: request
    name: Ask for a laptop
    assignee: starter
  - key: ship
    name: Ship the laptop
    assignee: role:it
  - key: approve
    name: Approve shipping
    type: approval
    approves: [ship]
    assignee: role:approver
"#;

struct Two {
    _tmp: tempfile::TempDir,
    /// The workspace whose cache goes stale.
    this: Workspace,
    /// The other process.
    other: Workspace,
    rita: Actor,
    ivan: Actor,
    alice: Actor,
}

fn t0() -> Timestamp {
    "2026-03-02T08:00:00Z".parse().expect("valid")
}

fn later(minutes: i64) -> Timestamp {
    t0().checked_add(SignedDuration::from_mins(minutes)).expect("in range")
}

fn two() -> Two {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = DataDir::new(tmp.path().join("data"));
    let (this, _) = init_data_dir(&dir, "cache", "admin@example.com", "Admin", t0()).expect("init");
    let admin = Actor::person("admin@example.com", vec![], true);
    let template = Workspace::validate(LAPTOP, attest_template::SourceFormat::Yaml, None).expect("valid");
    this.publish(&admin, template, t0()).expect("publish");
    let other = Workspace::open(&dir).expect("open a second workspace");
    Two {
        _tmp: tmp,
        this,
        other,
        rita: Actor::person("rita@example.com", vec![], false),
        ivan: Actor::person("ivan@example.com", vec!["it".into()], false),
        alice: Actor::person("alice@example.com", vec!["approver".into()], false),
    }
}

fn complete(task: &str) -> Command {
    Command::Complete { task: task.into(), values: Values::default() }
}

fn approve() -> Command {
    Command::Approve { task: "approve".into(), comment: None }
}

/// Starts a run in `this` and completes its request there, so `this` holds
/// the run in its cache.
fn cached_run(t: &Two) -> String {
    let run = t.this.start_run(&t.rita, "laptop", Some("run"), t0()).expect("start").run_id;
    t.this.execute(&run, &complete("request"), &t.rita, later(1)).expect("request");
    run
}

/// The stored run's event kinds, in order.
fn stored_events(ws: &Workspace, run: &str) -> Vec<String> {
    ws.run_events(run).expect("events").into_iter().map(|(_, e)| e.body.type_name().to_string()).collect()
}

#[test]
fn a_command_refused_on_a_stale_cached_state_is_decided_on_the_stored_run() {
    let t = two();
    let run = cached_run(&t);
    // The approval waits for shipping, which only the other process saw done.
    t.other.execute(&run, &complete("ship"), &t.ivan, later(2)).expect("ship elsewhere");
    let (_, state) = t.this.execute(&run, &approve(), &t.alice, later(3)).expect("approved on the stored run");
    assert_eq!(state.status, RunStatus::Completed);
    assert_eq!(t.this.replay(&run).expect("replay"), state, "the stored run is the state handed back");
}

#[test]
fn a_command_whose_commit_on_a_stale_cached_state_conflicts_is_decided_again() {
    let t = two();
    let run = cached_run(&t);
    let note = Command::Comment { task: "ship".into(), text: "on its way".into() };
    t.other.execute(&run, &note, &t.ivan, later(2)).expect("comment elsewhere");
    // Shipping is open in the cached state too, so only the commit can tell.
    t.this.execute(&run, &complete("ship"), &t.ivan, later(3)).expect("shipped on the stored run");
    let events = stored_events(&t.this, &run);
    let comment = events.iter().position(|k| k == "comment_added");
    let shipped = events.iter().rposition(|k| k == "task_completed");
    assert!(comment.is_some() && comment < shipped, "the comment is kept, before the completion: {events:?}");
    t.this.replay(&run).expect("replay");
}

#[test]
fn batch_items_on_a_stale_cached_run_are_decided_again_on_the_stored_run() {
    let t = two();
    let refused = cached_run(&t);
    let conflicted = cached_run(&t);
    let fresh = cached_run(&t);
    t.other.execute(&refused, &complete("ship"), &t.ivan, later(2)).expect("ship elsewhere");
    let note = Command::Comment { task: "ship".into(), text: "on its way".into() };
    t.other.execute(&conflicted, &note, &t.ivan, later(2)).expect("comment elsewhere");
    let item =
        |run: &str, command: Command, by: &Actor| BatchItem::Execute { run: run.into(), command, by: by.clone() };
    let items = [
        item(&refused, approve(), &t.alice),
        item(&conflicted, complete("ship"), &t.ivan),
        item(&fresh, complete("ship"), &t.ivan),
        item(&conflicted, approve(), &t.alice),
    ];
    let results = t.this.execute_many(&items, later(3)).expect("batch");
    let states: Vec<_> = results.into_iter().map(|r| r.expect("every item is accepted")).collect();
    assert_eq!(states[0].status, RunStatus::Completed);
    assert_eq!(states[3].status, RunStatus::Completed);
    assert_eq!(states[2].status, RunStatus::Open);
    for run in [&refused, &conflicted, &fresh] {
        t.this.replay(run).expect("replay");
    }
    assert!(stored_events(&t.this, &conflicted).iter().any(|k| k == "comment_added"), "the comment is kept");
}

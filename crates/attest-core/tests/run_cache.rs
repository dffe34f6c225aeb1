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

/// Regression (issue 2, durable throughput): a batch item's state is shared
/// with the run cache instead of copied for the caller, and the run's next
/// command decides on it as before.
#[test]
fn a_batch_items_state_is_shared_with_the_run_cache() {
    let t = two();
    let run = cached_run(&t);
    let item = |command: Command, by: &Actor| BatchItem::Execute { run: run.clone(), command, by: by.clone() };
    let mut results = t.this.execute_many(&[item(complete("ship"), &t.ivan)], later(2)).expect("batch");
    let shipped = results.remove(0).expect("shipped");
    assert_eq!(std::sync::Arc::strong_count(&shipped), 2, "one for the caller, one in the run cache");
    // The caller still holds the state, so approving copies it: the state it
    // holds stays as it was.
    let approved = t.this.execute_many(&[item(approve(), &t.alice)], later(3)).expect("batch").remove(0);
    assert_eq!(approved.expect("approved").status, RunStatus::Completed);
    assert_eq!(shipped.status, RunStatus::Open, "the caller's state is not changed under it");
    t.this.replay(&run).expect("replay");
}

/// Regression (issue 2, durable throughput): accepted batch items that
/// change nothing make no commit; each still gets the state after it.
#[test]
fn batch_items_that_change_nothing_get_the_state_after_them() {
    let t = two();
    let run = t.this.start_run(&t.rita, "laptop", Some("run"), t0()).expect("start").run_id;
    let note = |text: &str| Command::Comment { task: "request".into(), text: text.into() };
    let item = |command: Command| BatchItem::Execute { run: run.clone(), command, by: t.rita.clone() };
    let set = Command::SetFields { task: "request".into(), values: Values::default() };
    // `other` holds no cached state of the run: it decides on the stored one.
    let results = t.other.execute_many(&[item(set.clone())], later(1)).expect("batch");
    let unchanged = results.into_iter().next().expect("one result").expect("accepted");
    assert_eq!(*unchanged, t.other.run(&run).expect("run").state, "the stored state, unchanged");
    let results =
        t.other.execute_many(&[item(note("first")), item(set), item(note("second"))], later(2)).expect("batch");
    let states: Vec<_> = results.into_iter().map(|r| r.expect("accepted")).collect();
    assert_eq!(states[0].event_count, unchanged.event_count + 1);
    assert_eq!(states[1].event_count, states[0].event_count, "setting nothing adds no event");
    assert_eq!(states[2].event_count, states[1].event_count + 1);
    assert_eq!(*states[2], t.other.replay(&run).expect("replay"), "the last item's state is the stored one");
}

//! Verification from a pack's bytes: re-execution catches what signatures
//! cannot (events genuinely in the signed ledger that break a rule, because
//! they were written past the engine), and no damage to the bytes panics.

use std::io::Cursor;

use attest_core::audit::load_signer;
use attest_core::workspace::init_data_dir;
use attest_core::{DataDir, Workspace};
use attest_engine::{Actor, Command, Event, EventBody, RunState, Values};
use attest_ledger::note::VerifierKey;
use attest_pack::{FailureKind, Report};
use attest_template::SourceFormat;
use jiff::Timestamp;

const TEMPLATE: &str = "
format: attest/v1
key: sod
name: Separation of duties
roles: [clerk]
tasks:
  - key: work
    name: Do the work
    assignee: role:clerk
  - key: approval
    name: Approve the work
    type: approval
    assignee: role:clerk
    approves: [work]
";

struct Setup {
    _dir: tempfile::TempDir,
    data: DataDir,
    ws: Workspace,
    key: VerifierKey,
    run: String,
    clerk: Actor,
    now: Timestamp,
}

/// A run whose work is done by one clerk and waits for approval.
fn setup() -> Setup {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = DataDir::new(dir.path().join("data"));
    let now: Timestamp = "2025-05-05T10:00:00Z".parse().expect("timestamp");
    let (ws, key) = init_data_dir(&data, "Test", "admin@example.com", "Admin", now).expect("init");
    let key = VerifierKey::parse(&key).expect("key");
    let admin = Actor::system();
    let template = Workspace::validate(TEMPLATE, SourceFormat::Yaml, None).expect("valid template");
    ws.publish(&admin, template, now).expect("publish");
    for email in ["ann@example.com", "bob@example.com"] {
        ws.add_user(&admin, email, "", false, now).expect("add user");
        ws.grant_role(&admin, email, "clerk", now).expect("grant");
    }
    let clerk = ws.person("ann@example.com").expect("ann");
    let run = ws.start_run(&clerk, "sod", Some("Test run"), now).expect("start").run_id;
    ws.execute(&run, &Command::Complete { task: "work".into(), values: Values::new() }, &clerk, now).expect("complete");
    Setup { _dir: dir, data, ws, key, run, clerk, now }
}

fn pack(s: &Setup) -> Vec<u8> {
    let signer = load_signer(&s.data).expect("signer");
    let mut zip = Cursor::new(Vec::new());
    attest_pack::export_run(&s.ws, &signer, &s.run, s.now, &mut zip).expect("export");
    zip.into_inner()
}

fn pack_and_verify(s: &Setup) -> Report {
    attest_pack::verify(Cursor::new(pack(s)), Some(&s.key))
}

#[test]
fn damaged_bytes_are_reported_not_panicked_on() {
    let s = setup();
    let bytes = pack(&s);
    assert!(attest_pack::verify(Cursor::new(bytes.clone()), Some(&s.key)).ok());
    // Every 7th byte, and every truncation point in steps of 97 bytes.
    for position in (0..bytes.len()).step_by(7) {
        let mut damaged = bytes.clone();
        damaged[position] ^= 0x5a;
        let _ = attest_pack::verify(Cursor::new(damaged), Some(&s.key));
    }
    for length in (0..bytes.len()).step_by(97) {
        let report = attest_pack::verify(Cursor::new(bytes[..length].to_vec()), Some(&s.key));
        assert!(!report.ok(), "a truncated pack must not verify");
    }
}

#[test]
fn an_approval_by_someone_else_re_executes() {
    let s = setup();
    let bob = s.ws.person("bob@example.com").expect("bob");
    s.ws.execute(&s.run, &Command::Approve { task: "approval".into(), comment: None }, &bob, s.now).expect("approve");
    let report = pack_and_verify(&s);
    assert!(report.ok(), "{:?}", report.failures);
    assert_eq!(report.runs.len(), 1);
    assert_eq!(report.runs[0].status, "completed");
    assert_eq!((report.runs[0].commands, report.runs[0].events), (3, 4));
}

#[test]
fn a_self_approval_written_past_the_engine_is_caught_by_re_execution() {
    let s = setup();
    let row = s.ws.run(&s.run).expect("run");
    let compiled = s.ws.compiled(&row.template_key, row.template_version).expect("template");
    let forged: Vec<Event> = [
        EventBody::TaskApproved { task: "approval".into(), comment: None, overridden: false },
        EventBody::RunCompleted {},
    ]
    .into_iter()
    .map(|body| Event { at: s.now, by: s.clerk.clone(), body })
    .collect();
    let mut events: Vec<Event> = s.ws.run_events(&s.run).expect("events").into_iter().map(|(_, e)| e).collect();
    events.extend(forged.iter().cloned());
    let state = RunState::replay(&compiled, &events).expect("the fold accepts what the engine would refuse");
    let forged_index = s.ws.store().ledger_size().expect("size");
    let commit = s.ws.prepare_commit(&compiled, row.version, forged, &state).expect("commit");
    s.ws.store().write_run(&commit).expect("write past the engine");

    let report = pack_and_verify(&s);
    let failure = report.failures.iter().find(|f| f.kind == FailureKind::Rule).expect("a rule failure");
    assert!(failure.message.contains("separation-of-duties"), "{failure:?}");
    assert_eq!(failure.index, Some(forged_index), "the forged approval's ledger index");
    assert_eq!(report.proofs as u64, row.version + 2, "every proof still verifies: the ledger itself is intact");
}

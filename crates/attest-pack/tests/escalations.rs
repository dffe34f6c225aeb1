//! Runs with scheduler events (reminders, escalations, an escalation's
//! reassignment) verify offline: the verifier re-executes them as the system
//! actor at their recorded time and gets byte-identical events.

use std::io::Cursor;

use attest_core::audit::load_signer;
use attest_core::workspace::init_data_dir;
use attest_core::{DataDir, Workspace};
use attest_engine::{Actor, Command, Values};
use attest_ledger::note::VerifierKey;
use attest_template::SourceFormat;
use jiff::Timestamp;

const TEMPLATE: &str = "
format: attest/v1
key: timed
name: Timed
roles: [clerk, lead]
tasks:
  - key: work
    name: Do the work
    assignee: role:clerk
    due: { after: run_started, in: 1d }
    remind:
      - { before_due: 2h }
    escalate:
      - { overdue_by: 1h, notify: role:lead }
      - { overdue_by: 1d, reassign: user:lee@example.com }
";

#[test]
fn a_pack_with_reminders_escalations_and_a_reassignment_verifies() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = DataDir::new(dir.path().join("data"));
    let t0: Timestamp = "2026-03-02T09:00:00Z".parse().expect("timestamp");
    let (ws, key) = init_data_dir(&data, "Test", "admin@example.com", "Admin", t0).expect("init");
    let key = VerifierKey::parse(&key).expect("key");
    let system = Actor::system();
    let template = Workspace::validate(TEMPLATE, SourceFormat::Yaml, None).expect("valid template");
    ws.publish(&system, template, t0).expect("publish");
    ws.add_user(&system, "lee@example.com", "", false, t0).expect("user");
    let admin = ws.person("admin@example.com").expect("admin");
    let run = ws.start_run(&admin, "timed", Some("Timed run"), t0).expect("start").run_id;
    let at = |s: &str| s.parse::<Timestamp>().expect("timestamp");
    ws.execute(&run, &Command::Remind { task: "work".into(), step: 1 }, &system, at("2026-03-03T07:00:00Z"))
        .expect("remind");
    ws.execute(&run, &Command::Escalate { task: "work".into(), step: 1 }, &system, at("2026-03-03T10:00:00Z"))
        .expect("escalate 1");
    ws.execute(&run, &Command::Escalate { task: "work".into(), step: 2 }, &system, at("2026-03-04T09:00:00Z"))
        .expect("escalate 2");
    let lee = ws.person("lee@example.com").expect("lee");
    ws.execute(
        &run,
        &Command::Complete { task: "work".into(), values: Values::new() },
        &lee,
        at("2026-03-04T10:00:00Z"),
    )
    .expect("the new assignee completes it");

    let signer = load_signer(&data).expect("signer");
    let mut zip = Cursor::new(Vec::new());
    attest_pack::export_run(&ws, &signer, &run, at("2026-03-05T00:00:00Z"), &mut zip).expect("export");
    let report = attest_pack::verify(Cursor::new(zip.into_inner()), Some(&key));
    assert!(report.ok(), "{:?}", report.failures);
    assert_eq!(report.events, 7, "started, reminded, escalated, escalated, reassigned, completed, run completed");
}

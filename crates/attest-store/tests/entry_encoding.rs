//! Ledger entries keep their bytes: the ledger's own canonical encoder gives,
//! for every kind of event, exactly what the general RFC 8785 encoder gives.
//! Stored leaf hashes and evidence packs depend on it. A run event's entry
//! encoded by reference (`RunEntry`) or spliced around its event's bytes
//! encoded ahead (`EventBytes`, what a commit writes) gives the same bytes.

use attest_engine::{Actor, ActorKind, Event, EventBody, FileRef, Values, WorkspaceEvent, WorkspaceEventBody};
use attest_store::{EntryEvent, EventBytes, LedgerEntry, RunEntry};
use jiff::Timestamp;
use serde_json::json;

/// A string with what canonical JSON must escape or order specially.
const TRICKY: &str = "Zoë \"quoted\" \\ back/slash\n\t\u{1}\u{7f} € \u{e000} \u{1f600}";

fn file() -> FileRef {
    FileRef { name: TRICKY.into(), size: 1 << 40, media_type: "application/pdf".into(), sha256: "ab".repeat(32).into() }
}

fn values() -> Values {
    let mut v = Values::new();
    v.insert("b_number".into(), json!(3.25));
    v.insert("a_list".into(), json!(["x", {"z": 1, "a": [true, null]}]));
    v.insert(TRICKY.into(), json!(TRICKY));
    v.insert("\u{e000}".into(), json!(-9_007_199_254_740_992i64));
    v.insert("\u{1f600}".into(), json!(1e21));
    v.insert("cleared".into(), serde_json::Value::Null);
    v
}

fn run_bodies() -> Vec<EventBody> {
    let task = || "task_a".to_string();
    vec![
        EventBody::RunStarted {
            run: "0190-run".into(),
            template: "onboarding".into(),
            version: 3,
            content_hash: "cd".repeat(32),
            name: TRICKY.into(),
            due_at: None,
        },
        EventBody::RunStarted {
            run: "0190-run".into(),
            template: "onboarding".into(),
            version: 3,
            content_hash: "cd".repeat(32),
            name: "Scheduled".into(),
            due_at: Some("2026-04-01T09:00:00Z".parse().expect("a timestamp")),
        },
        EventBody::FieldsSet { task: task(), values: values() },
        EventBody::FieldsSet { task: task(), values: Values::new() },
        EventBody::TaskCompleted { task: task(), overridden: false },
        EventBody::TaskCompleted { task: task(), overridden: true },
        EventBody::TaskApproved { task: task(), comment: Some(TRICKY.into()), overridden: true },
        EventBody::TaskApproved { task: task(), comment: None, overridden: false },
        EventBody::TaskRejected {
            task: task(),
            comment: TRICKY.into(),
            reopened: vec![task(), "b".into()],
            overridden: false,
        },
        EventBody::TaskReopened { task: task(), cause: TRICKY.into() },
        EventBody::CommentAdded { task: task(), text: TRICKY.into() },
        EventBody::EvidenceAttached { task: task(), field: Some("report".into()), file: file() },
        EventBody::EvidenceAttached { task: task(), field: None, file: file() },
        EventBody::TaskReassigned { task: task(), to: "role:hr".into(), cause: TRICKY.into() },
        EventBody::RunCompleted {},
        EventBody::RunCancelled { reason: TRICKY.into() },
    ]
}

fn workspace_bodies() -> Vec<WorkspaceEventBody> {
    vec![
        WorkspaceEventBody::WorkspaceCreated { name: TRICKY.into(), verifier_key: "attest+abc+AQ==".into() },
        WorkspaceEventBody::UserAdded { email: "a@example.com".into(), name: TRICKY.into(), admin: true },
        WorkspaceEventBody::UserAdded { email: "a@example.com".into(), name: "A".into(), admin: false },
        WorkspaceEventBody::RoleGranted { email: "a@example.com".into(), role: "hr".into() },
        WorkspaceEventBody::RoleRevoked { email: "a@example.com".into(), role: "hr".into() },
        WorkspaceEventBody::TemplatePublished { key: "k".into(), version: 1, content_hash: "ef".repeat(32) },
        WorkspaceEventBody::TokenCreated {
            id: "t1".into(),
            name: TRICKY.into(),
            kind: "agent".into(),
            access: "write".into(),
            roles: vec!["hr".into(), "it".into()],
        },
        WorkspaceEventBody::TokenCreated {
            id: "t2".into(),
            name: "n".into(),
            kind: "token".into(),
            access: "read".into(),
            roles: vec![],
        },
        WorkspaceEventBody::TokenRevoked { id: "t1".into() },
        WorkspaceEventBody::PasswordChanged { email: "a@example.com".into() },
    ]
}

fn actors() -> Vec<Actor> {
    vec![
        Actor::person("hanna@example.com", vec!["hr-lead".into(), "hr".into()], true),
        Actor { kind: ActorKind::Agent, id: TRICKY.into(), roles: Default::default(), admin: false },
        Actor::system(),
    ]
}

fn assert_reference_bytes(entry: &LedgerEntry) {
    let reference = serde_json_canonicalizer::to_vec(entry).expect("the general encoder encodes every entry");
    let bytes = entry.encode().expect("entry encodes");
    assert_eq!(String::from_utf8_lossy(&bytes), String::from_utf8_lossy(&reference), "entry {entry:?}");
}

#[test]
fn every_event_kind_encodes_to_the_rfc8785_reference_bytes() {
    let at: Timestamp = "2026-11-24T09:00:00.123Z".parse().expect("valid");
    let mut seq = (1u64 << 53) - 40;
    for by in actors() {
        for body in run_bodies() {
            let event = Event { at, by: by.clone(), body };
            let by_ref = RunEntry { seq, run: "0190-run", run_seq: seq, event: &event }.encode().expect("encodes");
            let spliced = EventBytes::new(&event).expect("encodes").entry(seq, "0190-run", seq).expect("encodes");
            assert_eq!(spliced, by_ref, "a run entry spliced around its event's bytes, {event:?}");
            let entry =
                LedgerEntry { seq, run: Some("0190-run".into()), run_seq: Some(seq), event: EntryEvent::Run(event) };
            assert_reference_bytes(&entry);
            assert_eq!(by_ref, entry.encode().expect("entry encodes"), "a run entry by reference, {entry:?}");
            seq += 1;
        }
        for body in workspace_bodies() {
            let event = EntryEvent::Workspace(WorkspaceEvent { at, by: by.clone(), body });
            assert_reference_bytes(&LedgerEntry { seq, run: None, run_seq: None, event });
            seq += 1;
        }
    }
}

#[test]
fn spliced_entries_equal_entries_by_reference_for_any_run_id_and_position() {
    let at: Timestamp = "2026-11-24T09:00:00.123Z".parse().expect("valid");
    let event =
        Event { at, by: actors().remove(1), body: EventBody::FieldsSet { task: "task_a".into(), values: values() } };
    let bytes = EventBytes::new(&event).expect("encodes");
    let positions = [0, 1, 9, 10, 12_345, (1 << 53) - 1, 1 << 53, (1 << 53) + 1, u64::MAX];
    for run in ["0190-run", "", TRICKY, "quote\"", "back\\slash", "del\u{7f}", "tab\t", "\u{1f600}"] {
        for &seq in &positions {
            for &run_seq in &positions {
                let by_ref = RunEntry { seq, run, run_seq, event: &event }.encode().expect("encodes");
                let spliced = bytes.entry(seq, run, run_seq).expect("encodes");
                assert_eq!(
                    String::from_utf8_lossy(&spliced),
                    String::from_utf8_lossy(&by_ref),
                    "run {run:?} at {seq}, run_seq {run_seq}"
                );
            }
        }
    }
}

//! The engine is deterministic: the same commands at the same times give the
//! same bytes, which is what lets an auditor re-execute a run offline.

mod common;

use attest_engine::{Actor, Command, Event, FileRef, RunState, RunStatus, Values, execute};
use attest_template::{
    Due, DueAnchor, Duration, Field, FieldKind, FileRules, NumberRules, Op, OptionRules, Task, TextRules,
};
use common::{approval, compile, field, task, template};
use jiff::Timestamp;
use serde_json::json;

fn vendor_template() -> attest_template::Template {
    let personal = attest_template::Condition::Compare { field: "amount".into(), op: Op::Gt, value: Some(json!(1000)) };
    template(vec![
        Task {
            stop: true,
            ..task(
                "request",
                "starter",
                vec![
                    Field { required: true, ..field("name", FieldKind::Text(TextRules::default())) },
                    field("amount", FieldKind::Number(NumberRules::default())),
                    field("contract", FieldKind::File(FileRules { accept: vec!["pdf".into()], max_size_mb: Some(5) })),
                ],
            )
        },
        Task {
            show_when: Some(personal),
            due: Some(Due {
                after: DueAnchor::Task("request".into()),
                within: Duration::parse("2d").expect("valid"),
                business_days: true,
            }),
            ..task(
                "review",
                "role:security",
                vec![Field {
                    required: true,
                    ..field("risk", FieldKind::Select(OptionRules { options: vec!["low".into(), "high".into()] }))
                }],
            )
        },
        approval("sign", "role:finance", &["request", "review"]),
    ])
}

fn person(email: &str, roles: &[&str]) -> Actor {
    Actor::person(email, roles.iter().map(|r| r.to_string()).collect(), false)
}

fn values(pairs: &[(&str, serde_json::Value)]) -> Values {
    pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
}

/// A whole run using every kind of command, with its actors and times.
fn script() -> Vec<(Command, Actor, Timestamp)> {
    let sam = person("sam@example.com", &[]);
    let erin = person("erin@example.com", &[]);
    let fin = person("fin@example.com", &["finance"]);
    let contract = FileRef {
        name: "contract.pdf".into(),
        size: 42_000,
        media_type: "application/pdf".into(),
        sha256: "0f".repeat(32).into(),
    };
    let complete = |task: &str, pairs: &[(&str, serde_json::Value)]| Command::Complete {
        task: task.into(),
        values: values(pairs),
    };
    let steps = vec![
        (Command::Start { run: "run-7".into(), name: "Acme onboarding".into(), due_at: None }, sam.clone()),
        (Command::SetFields { task: "request".into(), values: values(&[("name", json!("Acme"))]) }, sam.clone()),
        (
            Command::AttachEvidence { task: "request".into(), field: Some("contract".into()), file: contract },
            sam.clone(),
        ),
        (Command::Comment { task: "request".into(), text: "Signed last week".into() }, sam.clone()),
        (complete("request", &[("amount", json!("12_500.50"))]), sam.clone()),
        (
            Command::Reassign { task: "review".into(), to: "user:erin@example.com".into(), cause: "overdue".into() },
            Actor::system(),
        ),
        (complete("review", &[("risk", json!("high"))]), erin.clone()),
        (Command::Reject { task: "sign".into(), comment: "Amount looks wrong".into() }, fin.clone()),
        (complete("request", &[("amount", json!(12500))]), sam.clone()),
        (complete("review", &[]), erin),
        (Command::Approve { task: "sign".into(), comment: Some("Fine now".into()) }, fin),
    ];
    let start: Timestamp = "2026-03-06T16:30:00Z".parse().expect("valid timestamp");
    steps
        .into_iter()
        .enumerate()
        .map(|(i, (command, actor))| (command, actor, start + jiff::SignedDuration::from_mins(7 * i as i64)))
        .collect()
}

/// Runs the script on a freshly compiled template; returns the events and
/// every intermediate state as JSON.
fn execute_script() -> (String, Vec<String>, Vec<Event>) {
    let template = compile(vendor_template());
    let mut state: Option<RunState> = None;
    let mut events = Vec::new();
    let mut states = Vec::new();
    for (command, actor, now) in script() {
        let (new_events, new_state) = execute(&template, state.as_ref(), &command, &actor, now)
            .unwrap_or_else(|r| panic!("{command:?} was refused: {r}"));
        events.extend(new_events);
        states.push(serde_json::to_string(&new_state).expect("states serialise"));
        state = Some(new_state);
    }
    assert_eq!(state.map(|s| s.status), Some(RunStatus::Completed), "the script runs to completion");
    (serde_json::to_string(&events).expect("events serialise"), states, events)
}

#[test]
fn the_same_commands_at_the_same_times_give_byte_identical_events_and_states() {
    let (events_a, states_a, _) = execute_script();
    let (events_b, states_b, _) = execute_script();
    assert_eq!(events_a, events_b);
    assert_eq!(states_a, states_b);
}

#[test]
fn replaying_stored_events_gives_the_byte_identical_final_state() {
    let (events_json, states, events) = execute_script();
    let stored: Vec<Event> = serde_json::from_str(&events_json).expect("events deserialise");
    assert_eq!(stored, events);
    let template = compile(vendor_template());
    let replayed = RunState::replay(&template, &stored).expect("stored events replay");
    let last = states.last().expect("the script has steps");
    assert_eq!(&serde_json::to_string(&replayed).expect("states serialise"), last);
    let again = RunState::replay(&template, &stored).expect("stored events replay");
    assert_eq!(serde_json::to_string(&again).expect("states serialise"), *last);
}

//! The delivery queue on a real SQLite file: the dispatcher's cursor moves
//! by compare-and-set, deliveries of a run are handed out in order, a lease
//! keeps a delivery with one worker, and persistent failure disables the
//! subscription once, with one ledger notice.
#![allow(clippy::unwrap_used)]

use attest_engine::{Actor, WorkspaceEvent, WorkspaceEventBody};
use attest_store::hooks::{AttemptOutcome, AttemptRow, HookStore, NewDelivery, SubscriptionRow};
use attest_store::{Store, StoreError};
use attest_store_sqlite::SqliteStore;
use jiff::{SignedDuration, Timestamp};

fn t0() -> Timestamp {
    "2026-03-02T09:00:00Z".parse().unwrap()
}

fn store() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("attest.db")).unwrap();
    (dir, store)
}

fn subscribe(store: &SqliteStore) -> SubscriptionRow {
    let event = WorkspaceEvent {
        at: t0(),
        by: Actor::system(),
        body: WorkspaceEventBody::WebhookCreated {
            id: "wh_1".into(),
            url: "http://127.0.0.1/".into(),
            template: None,
            events: vec![],
        },
    };
    let row = SubscriptionRow {
        id: "wh_1".into(),
        url: "http://127.0.0.1/".into(),
        secret: "whsec_AAAA".into(),
        template: None,
        event_types: vec![],
        enabled: true,
        disabled_reason: None,
        disabled_at: None,
        created_by: "system:attest".into(),
        created_at: t0(),
        from_seq: 0,
    };
    store.create_subscription(&event, &row).unwrap()
}

fn delivery(seq: u64, run: &str) -> NewDelivery {
    NewDelivery {
        id: format!("msg_1_{seq}"),
        subscription: "wh_1".into(),
        seq,
        run: Some(run.into()),
        event_type: "task_completed".into(),
        payload: "{}".into(),
    }
}

fn attempt(id: &str, at: Timestamp) -> AttemptRow {
    AttemptRow { delivery: id.into(), attempt: 1, at, status: Some(204), error: None, duration_ms: 3, response: None }
}

fn record(store: &SqliteStore, owner: &str, attempt: AttemptRow, outcome: AttemptOutcome) -> bool {
    store.record_attempts(owner, &[(attempt, outcome)]).unwrap()[0]
}

fn claimed_ids(store: &SqliteStore, owner: &str, now: Timestamp) -> Vec<String> {
    store.claim_deliveries(owner, now, 10_000, 50).unwrap().into_iter().map(|c| c.delivery.id).collect()
}

#[test]
fn the_cursor_moves_only_from_where_it_was() {
    let (_dir, store) = store();
    let sub = subscribe(&store);
    assert_eq!(sub.from_seq, 1, "a subscription receives what comes after its creation");
    store.enqueue(0, 5, &[delivery(3, "a")], &[("a".into(), 3)], t0()).unwrap();
    let again = store.enqueue(0, 7, &[delivery(4, "a")], &[], t0());
    assert!(matches!(again, Err(StoreError::Conflict(_))), "a second dispatcher from the old cursor loses");
    assert_eq!(store.dispatch_cursor().unwrap(), 5);
    assert!(store.delivery("msg_1_4").unwrap().is_none(), "the losing dispatcher wrote nothing");
}

#[test]
fn deliveries_of_a_run_are_handed_out_in_order() {
    let (_dir, store) = store();
    subscribe(&store);
    store.enqueue(0, 4, &[delivery(1, "a"), delivery(2, "a"), delivery(3, "b")], &[], t0()).unwrap();
    assert_eq!(claimed_ids(&store, "w1", t0()), ["msg_1_1", "msg_1_3"]);
    assert!(record(&store, "w1", attempt("msg_1_1", t0()), AttemptOutcome::Delivered));
    assert_eq!(claimed_ids(&store, "w1", t0()), ["msg_1_2"], "the next of run a once the first is delivered");
}

#[test]
fn a_lease_keeps_a_delivery_with_one_worker_until_it_runs_out() {
    let (_dir, store) = store();
    subscribe(&store);
    store.enqueue(0, 2, &[delivery(1, "a")], &[], t0()).unwrap();
    assert_eq!(claimed_ids(&store, "w1", t0()), ["msg_1_1"]);
    assert!(claimed_ids(&store, "w2", t0()).is_empty(), "leased to w1");
    let later = t0().checked_add(SignedDuration::from_secs(11)).unwrap();
    assert_eq!(claimed_ids(&store, "w2", later), ["msg_1_1"], "w1's lease ran out");
    assert!(!record(&store, "w1", attempt("msg_1_1", later), AttemptOutcome::Delivered));
    assert!(record(&store, "w2", attempt("msg_1_1", later), AttemptOutcome::Delivered));
    assert_eq!(store.attempts("msg_1_1").unwrap().len(), 1, "only the lease holder's attempt is logged");
}

#[test]
fn giving_up_disables_the_subscription_once_with_one_notice() {
    let (_dir, store) = store();
    subscribe(&store);
    store.enqueue(0, 3, &[delivery(1, "a"), delivery(2, "b")], &[], t0()).unwrap();
    assert_eq!(claimed_ids(&store, "w1", t0()).len(), 2);
    let before = store.ledger_size().unwrap();
    for id in ["msg_1_1", "msg_1_2"] {
        let notice = WorkspaceEvent {
            at: t0(),
            by: Actor::system(),
            body: WorkspaceEventBody::WebhookDisabled { id: "wh_1".into(), reason: "down".into() },
        };
        let outcome = AttemptOutcome::Failed { disable: Box::new(notice), reason: "down".into() };
        assert!(record(&store, "w1", attempt(id, t0()), outcome));
    }
    let sub = store.subscription("wh_1").unwrap().unwrap();
    assert!(!sub.enabled);
    assert_eq!(sub.disabled_reason.as_deref(), Some("down"));
    assert_eq!(store.ledger_size().unwrap(), before + 1, "one notice for the subscription");
    // Redelivery makes a failed delivery pending again; an enabled subscription sends it.
    store.redeliver("msg_1_1", t0()).unwrap();
    assert!(claimed_ids(&store, "w1", t0()).is_empty(), "not while the subscription is disabled");
    let enabled = WorkspaceEvent {
        at: t0(),
        by: Actor::system(),
        body: WorkspaceEventBody::WebhookEnabled { id: "wh_1".into() },
    };
    store.enable_subscription(&enabled, "wh_1").unwrap();
    assert_eq!(claimed_ids(&store, "w1", t0()), ["msg_1_1"]);
}

#[test]
fn a_marked_run_is_dropped_only_if_nothing_touched_it_since() {
    let (_dir, store) = store();
    store.enqueue(0, 2, &[], &[("r".into(), 1)], t0()).unwrap();
    let claimed = store.claim_service_runs("w1", t0(), 10_000, 10).unwrap();
    assert_eq!(claimed.len(), 1);
    // A newer entry touches the run while w1 works on it.
    store.enqueue(2, 3, &[], &[("r".into(), 2)], t0()).unwrap();
    store.finish_service_run("w1", &claimed[0]).unwrap();
    let again = store.claim_service_runs("w1", t0(), 10_000, 10).unwrap();
    assert_eq!(again.len(), 1, "the newer mark survives");
    assert_eq!(again[0].touched_seq, 2);
    store.finish_service_run("w1", &again[0]).unwrap();
    assert!(store.claim_service_runs("w1", t0(), 10_000, 10).unwrap().is_empty());
}

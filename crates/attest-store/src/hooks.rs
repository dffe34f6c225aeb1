//! Integrations: outbound webhook subscriptions with their durable delivery
//! queue, and inbound run triggers.
//!
//! Kept apart from [`crate::Store`] because deliveries are operational state
//! (attempts, leases, secrets), not facts of the audit trail. The changes an
//! admin must be able to see later (a subscription created, deleted or
//! disabled, a trigger set or removed) are written with a workspace event in
//! the same transaction.
//!
//! Several server processes may share one database: the ledger cursor is
//! advanced by compare-and-set, and a delivery is worked on only under a lease.

use attest_engine::WorkspaceEvent;
use jiff::Timestamp;
use serde::Serialize;

use crate::StoreResult;

/// An outbound webhook subscription.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SubscriptionRow {
    pub id: String,
    pub url: String,
    /// `whsec_` + base64 of the key. Needed in clear to sign; never logged and
    /// shown by the API only when the subscription is created.
    #[serde(skip)]
    pub secret: String,
    /// Only run events of this template; `None` for every event.
    pub template: Option<String>,
    /// Event types delivered; empty for all.
    pub event_types: Vec<String>,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub disabled_at: Option<Timestamp>,
    pub created_by: String,
    pub created_at: Timestamp,
    /// The first ledger entry this subscription receives: the one after its creation.
    pub from_seq: u64,
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    Pending,
    Delivered,
    /// Retried until the retry window closed.
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(DeliveryStatus::Pending),
            "delivered" => Some(DeliveryStatus::Delivered),
            "failed" => Some(DeliveryStatus::Failed),
            _ => None,
        }
    }
}

/// A delivery to enqueue: one ledger entry for one subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDelivery {
    /// The `webhook-id`: stable across retries, so receivers can deduplicate.
    pub id: String,
    pub subscription: String,
    pub seq: u64,
    /// Deliveries of the same run to the same subscription go out in `seq` order.
    pub run: Option<String>,
    pub event_type: String,
    /// The JSON body sent, exactly as signed.
    pub payload: String,
}

/// A delivery with its progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeliveryRow {
    pub id: String,
    pub subscription: String,
    pub seq: u64,
    pub run: Option<String>,
    pub event_type: String,
    #[serde(skip)]
    pub payload: String,
    pub status: DeliveryStatus,
    pub attempts: u32,
    pub created_at: Timestamp,
    /// Retries stop when the retry window, counted from here, has passed.
    pub retry_from: Timestamp,
    pub next_attempt_at: Option<Timestamp>,
    pub delivered_at: Option<Timestamp>,
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
}

/// A claimed delivery with what sending it needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedDelivery {
    pub delivery: DeliveryRow,
    pub url: String,
    pub secret: String,
}

/// One attempt, as the delivery log shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AttemptRow {
    pub delivery: String,
    pub attempt: u32,
    pub at: Timestamp,
    /// The HTTP status, when the receiver answered.
    pub status: Option<u16>,
    /// Why the attempt failed (connection, timeout, non-2xx), if it did.
    pub error: Option<String>,
    pub duration_ms: u64,
    /// The start of the response body, bounded.
    pub response: Option<String>,
}

/// What came of an attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum AttemptOutcome {
    Delivered,
    /// Try again at this time.
    Retry {
        next_at: Timestamp,
    },
    /// The retry window closed: the delivery fails and the subscription is
    /// disabled, with this workspace event as the admin's notice.
    Failed {
        disable: Box<WorkspaceEvent>,
        reason: String,
    },
}

/// A run marked for the service-task executor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceRunRow {
    pub run: String,
    /// The latest ledger entry that marked it.
    pub touched_seq: u64,
    /// Transient failures of the current call so far.
    pub attempts: u32,
}

/// A template's inbound trigger: a secret URL that starts runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TriggerRow {
    pub template: String,
    /// SHA-256 (hex) of the URL secret; the secret itself is shown once.
    #[serde(skip)]
    pub secret_hash: String,
    /// The person runs are started as (their authority at the time applies).
    pub run_as: String,
    /// JSON pointers into the payload and the first-task fields they fill.
    pub mapping: Vec<TriggerMapping>,
    pub created_by: String,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TriggerMapping {
    /// An RFC 6901 JSON pointer into the payload, like `/vendor/name`.
    pub path: String,
    pub field: String,
    /// A required path missing from the payload refuses the trigger.
    #[serde(default = "yes")]
    pub required: bool,
}

fn yes() -> bool {
    true
}

pub trait HookStore: Send + Sync + std::fmt::Debug {
    /// Adds a subscription; its `from_seq` is set to the entry after its
    /// creation event, which is appended in the same transaction.
    fn create_subscription(&self, event: &WorkspaceEvent, row: &SubscriptionRow) -> StoreResult<SubscriptionRow>;
    fn subscriptions(&self) -> StoreResult<Vec<SubscriptionRow>>;
    fn subscription(&self, id: &str) -> StoreResult<Option<SubscriptionRow>>;
    /// Deletes a subscription with its deliveries; not-found if it does not exist.
    fn delete_subscription(&self, event: &WorkspaceEvent, id: &str) -> StoreResult<()>;
    /// Enables a disabled subscription again, with its workspace event; its
    /// pending deliveries resume. Not-found if it does not exist.
    fn enable_subscription(&self, event: &WorkspaceEvent, id: &str) -> StoreResult<()>;
    /// Stops deliveries to a subscription (kept pending until it is enabled),
    /// with its workspace event. Not-found if it does not exist.
    fn disable_subscription(&self, event: &WorkspaceEvent, id: &str, reason: &str) -> StoreResult<()>;

    /// The next ledger entry the dispatcher has not looked at.
    fn dispatch_cursor(&self) -> StoreResult<u64>;
    /// Inserts deliveries, marks runs whose service tasks may be due (run id
    /// and the ledger seq that touched it), and moves the cursor from `from` to
    /// `to`, in one transaction. A conflict if another dispatcher moved it
    /// first (nothing is written then); a delivery already enqueued is kept.
    fn enqueue(
        &self,
        from: u64,
        to: u64,
        deliveries: &[NewDelivery],
        service_runs: &[(String, u64)],
        now: Timestamp,
    ) -> StoreResult<()>;

    /// Leases up to `limit` marked runs that are due.
    fn claim_service_runs(
        &self,
        owner: &str,
        now: Timestamp,
        lease_ms: u64,
        limit: u32,
    ) -> StoreResult<Vec<ServiceRunRow>>;
    /// Nothing is due on the run: drops its mark unless a newer entry touched
    /// it meanwhile (then only the lease is released).
    fn finish_service_run(&self, owner: &str, run: &ServiceRunRow) -> StoreResult<()>;
    /// A call failed transiently: count it and try again at `due_at`.
    fn retry_service_run(&self, owner: &str, run: &str, attempts: u32, due_at: Timestamp) -> StoreResult<()>;

    /// Leases up to `limit` due deliveries of enabled subscriptions for
    /// `lease_ms`. A delivery is never handed out while an earlier delivery of
    /// the same run to the same subscription is pending.
    fn claim_deliveries(
        &self,
        owner: &str,
        now: Timestamp,
        lease_ms: u64,
        limit: u32,
    ) -> StoreResult<Vec<ClaimedDelivery>>;
    /// Logs attempts and applies their outcomes in one transaction (one
    /// fsync for a worker's whole batch). An attempt whose lease `owner` no
    /// longer holds is not written; its slot in the answer is false.
    fn record_attempts(&self, owner: &str, attempts: &[(AttemptRow, AttemptOutcome)]) -> StoreResult<Vec<bool>>;
    /// Newest (highest ledger seq) first, at most `limit`, only below `before_seq` if given.
    fn deliveries(&self, subscription: &str, before_seq: Option<u64>, limit: u32) -> StoreResult<Vec<DeliveryRow>>;
    fn delivery(&self, id: &str) -> StoreResult<Option<DeliveryRow>>;
    fn attempts(&self, delivery: &str) -> StoreResult<Vec<AttemptRow>>;
    /// Makes a delivery pending and due now again (manual redelivery).
    fn redeliver(&self, id: &str, now: Timestamp) -> StoreResult<()>;

    /// Sets (replacing) a template's trigger, with its workspace event.
    fn put_trigger(&self, event: &WorkspaceEvent, row: &TriggerRow) -> StoreResult<()>;
    fn trigger(&self, template: &str) -> StoreResult<Option<TriggerRow>>;
    fn delete_trigger(&self, event: &WorkspaceEvent, template: &str) -> StoreResult<()>;
}

//! [`HookStore`] for SQLite: webhook subscriptions, the leased delivery queue
//! and inbound triggers, in their own tables.

use attest_engine::WorkspaceEvent;
use attest_store::hooks::{
    AttemptOutcome, AttemptRow, ClaimedDelivery, DeliveryRow, DeliveryStatus, HookStore, NewDelivery, ServiceRunRow,
    SubscriptionRow, TriggerMapping, TriggerRow,
};
use attest_store::{EntryEvent, LedgerEntry, StoreError, StoreResult};
use jiff::Timestamp;
use rusqlite::{OptionalExtension, Row, Transaction, params};

use crate::{SqliteStore, append_entry, from_ms, ledger_size, ms, other, sql};

const SUBSCRIPTION_COLUMNS: &str = "id, url, secret, template, event_types, enabled, disabled_reason, disabled_at, \
                                    created_by, created_at, from_seq";
const DELIVERY_COLUMNS: &str = "d.id, d.subscription, d.seq, d.run_id, d.event_type, d.payload, d.status, d.attempts, \
                                d.created_at, d.retry_from, d.next_attempt_at, d.delivered_at, d.last_status, d.last_error";

pub(crate) fn append_workspace_event(tx: &Transaction<'_>, event: &WorkspaceEvent) -> StoreResult<u64> {
    let seq = ledger_size(tx)?;
    let entry = LedgerEntry { seq, run: None, run_seq: None, event: EntryEvent::Workspace(event.clone()) };
    append_entry(tx, &entry)?;
    Ok(seq)
}

struct RawSubscription {
    row: SubscriptionRow,
    event_types: String,
    disabled_at: Option<i64>,
    created_at: i64,
}

fn subscription_row(r: &Row<'_>) -> rusqlite::Result<RawSubscription> {
    Ok(RawSubscription {
        row: SubscriptionRow {
            id: r.get(0)?,
            url: r.get(1)?,
            secret: r.get(2)?,
            template: r.get(3)?,
            event_types: Vec::new(),
            enabled: r.get(5)?,
            disabled_reason: r.get(6)?,
            disabled_at: None,
            created_by: r.get(8)?,
            created_at: Timestamp::UNIX_EPOCH,
            from_seq: r.get::<_, i64>(10)? as u64,
        },
        event_types: r.get(4)?,
        disabled_at: r.get(7)?,
        created_at: r.get(9)?,
    })
}

fn finish_subscription(raw: RawSubscription) -> StoreResult<SubscriptionRow> {
    let mut row = raw.row;
    row.event_types = serde_json::from_str(&raw.event_types)
        .map_err(|e| StoreError::Corrupt(format!("webhook {} event types: {e}", row.id)))?;
    row.disabled_at = raw.disabled_at.map(from_ms).transpose()?;
    row.created_at = from_ms(raw.created_at)?;
    Ok(row)
}

struct RawDelivery {
    row: DeliveryRow,
    status: String,
    created_at: i64,
    retry_from: i64,
    next_attempt_at: Option<i64>,
    delivered_at: Option<i64>,
}

fn delivery_row(r: &Row<'_>) -> rusqlite::Result<RawDelivery> {
    Ok(RawDelivery {
        row: DeliveryRow {
            id: r.get(0)?,
            subscription: r.get(1)?,
            seq: r.get::<_, i64>(2)? as u64,
            run: r.get(3)?,
            event_type: r.get(4)?,
            payload: r.get(5)?,
            status: DeliveryStatus::Pending,
            attempts: r.get(7)?,
            created_at: Timestamp::UNIX_EPOCH,
            retry_from: Timestamp::UNIX_EPOCH,
            next_attempt_at: None,
            delivered_at: None,
            last_status: r.get(12)?,
            last_error: r.get(13)?,
        },
        status: r.get(6)?,
        created_at: r.get(8)?,
        retry_from: r.get(9)?,
        next_attempt_at: r.get(10)?,
        delivered_at: r.get(11)?,
    })
}

fn finish_delivery(raw: RawDelivery) -> StoreResult<DeliveryRow> {
    let mut row = raw.row;
    row.status = DeliveryStatus::parse(&raw.status)
        .ok_or_else(|| StoreError::Corrupt(format!("delivery {} has unknown status {}", row.id, raw.status)))?;
    row.created_at = from_ms(raw.created_at)?;
    row.retry_from = from_ms(raw.retry_from)?;
    row.next_attempt_at = raw.next_attempt_at.map(from_ms).transpose()?;
    row.delivered_at = raw.delivered_at.map(from_ms).transpose()?;
    Ok(row)
}

fn cursor(c: &rusqlite::Connection) -> StoreResult<u64> {
    let v: Option<i64> = c
        .prepare_cached("SELECT next_seq FROM webhook_cursor WHERE id = 1")
        .map_err(sql)?
        .query_row([], |r| r.get(0))
        .optional()
        .map_err(sql)?;
    Ok(v.unwrap_or(0) as u64)
}

/// Logs one attempt and applies its outcome, if `owner` still holds the lease.
fn record_attempt(tx: &Transaction<'_>, owner: &str, a: &AttemptRow, outcome: &AttemptOutcome) -> StoreResult<bool> {
    let held: Option<(u32, String)> = tx
        .prepare_cached(
            "SELECT attempts, subscription FROM webhook_deliveries
             WHERE id = ?1 AND status = 'pending' AND lease_owner = ?2",
        )
        .map_err(sql)?
        .query_row(params![a.delivery, owner], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()
        .map_err(sql)?;
    let Some((attempts, subscription)) = held else { return Ok(false) };
    let attempt = attempts + 1;
    tx.prepare_cached(
        "INSERT INTO webhook_attempts (delivery, attempt, at, status, error, duration_ms, response)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )
    .map_err(sql)?
    .execute(params![a.delivery, attempt, ms(a.at), a.status, a.error, a.duration_ms as i64, a.response])
    .map_err(sql)?;
    let (status, next_at, delivered_at) = match outcome {
        AttemptOutcome::Delivered => ("delivered", None, Some(ms(a.at))),
        AttemptOutcome::Retry { next_at } => ("pending", Some(ms(*next_at)), None),
        AttemptOutcome::Failed { .. } => ("failed", None, None),
    };
    tx.prepare_cached(
        "UPDATE webhook_deliveries SET status = ?2, attempts = ?3, next_attempt_at = ?4, delivered_at = ?5,
         last_status = ?6, last_error = ?7, lease_owner = NULL, lease_until = NULL WHERE id = ?1",
    )
    .map_err(sql)?
    .execute(params![a.delivery, status, attempt, next_at, delivered_at, a.status, a.error])
    .map_err(sql)?;
    if let AttemptOutcome::Failed { disable, reason } = outcome {
        // Several deliveries may give up together: the first disables
        // the subscription and leaves the notice, the others find it done.
        let n = tx
            .execute(
                "UPDATE webhook_subscriptions SET enabled = 0, disabled_reason = ?2, disabled_at = ?3
                 WHERE id = ?1 AND enabled = 1",
                params![subscription, reason, ms(a.at)],
            )
            .map_err(sql)?;
        if n > 0 {
            append_workspace_event(tx, disable)?;
        }
    }
    Ok(true)
}

impl HookStore for SqliteStore {
    fn create_subscription(&self, event: &WorkspaceEvent, row: &SubscriptionRow) -> StoreResult<SubscriptionRow> {
        self.write(|tx| {
            let seq = append_workspace_event(tx, event)?;
            let mut row = row.clone();
            row.from_seq = seq + 1;
            let types = serde_json::to_string(&row.event_types).map_err(other)?;
            tx.execute(
                &format!(
                    "INSERT INTO webhook_subscriptions ({SUBSCRIPTION_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
                ),
                params![
                    row.id,
                    row.url,
                    row.secret,
                    row.template,
                    types,
                    row.enabled,
                    row.disabled_reason,
                    row.disabled_at.map(ms),
                    row.created_by,
                    ms(row.created_at),
                    row.from_seq as i64
                ],
            )
            .map_err(sql)?;
            Ok(row)
        })
    }

    fn subscriptions(&self) -> StoreResult<Vec<SubscriptionRow>> {
        self.with_conn(|c| {
            let mut stmt = c
                .prepare_cached(&format!(
                    "SELECT {SUBSCRIPTION_COLUMNS} FROM webhook_subscriptions ORDER BY created_at, id"
                ))
                .map_err(sql)?;
            let rows = stmt.query_map([], subscription_row).map_err(sql)?;
            rows.map(|r| r.map_err(sql).and_then(finish_subscription)).collect()
        })
    }

    fn subscription(&self, id: &str) -> StoreResult<Option<SubscriptionRow>> {
        self.with_conn(|c| {
            let raw = c
                .prepare_cached(&format!("SELECT {SUBSCRIPTION_COLUMNS} FROM webhook_subscriptions WHERE id = ?1"))
                .map_err(sql)?
                .query_row([id], subscription_row)
                .optional()
                .map_err(sql)?;
            raw.map(finish_subscription).transpose()
        })
    }

    fn delete_subscription(&self, event: &WorkspaceEvent, id: &str) -> StoreResult<()> {
        self.write(|tx| {
            let n = tx.execute("DELETE FROM webhook_subscriptions WHERE id = ?1", [id]).map_err(sql)?;
            if n == 0 {
                return Err(StoreError::NotFound(format!("no webhook subscription with id {id}")));
            }
            append_workspace_event(tx, event)?;
            Ok(())
        })
    }

    fn enable_subscription(&self, event: &WorkspaceEvent, id: &str) -> StoreResult<()> {
        self.write(|tx| {
            let n = tx
                .execute(
                    "UPDATE webhook_subscriptions SET enabled = 1, disabled_reason = NULL, disabled_at = NULL WHERE id = ?1",
                    [id],
                )
                .map_err(sql)?;
            if n == 0 {
                return Err(StoreError::NotFound(format!("no webhook subscription with id {id}")));
            }
            append_workspace_event(tx, event)?;
            Ok(())
        })
    }

    fn disable_subscription(&self, event: &WorkspaceEvent, id: &str, reason: &str) -> StoreResult<()> {
        self.write(|tx| {
            let n = tx
                .execute(
                    "UPDATE webhook_subscriptions SET enabled = 0, disabled_reason = ?2, disabled_at = ?3 WHERE id = ?1",
                    params![id, reason, ms(event.at)],
                )
                .map_err(sql)?;
            if n == 0 {
                return Err(StoreError::NotFound(format!("no webhook subscription with id {id}")));
            }
            append_workspace_event(tx, event)?;
            Ok(())
        })
    }

    fn dispatch_cursor(&self) -> StoreResult<u64> {
        self.with_conn(|c| cursor(c))
    }

    fn enqueue(
        &self,
        from: u64,
        to: u64,
        deliveries: &[NewDelivery],
        service_runs: &[(String, u64)],
        now: Timestamp,
    ) -> StoreResult<()> {
        self.write(|tx| {
            let current = cursor(tx)?;
            if current != from {
                return Err(StoreError::Conflict(format!(
                    "another dispatcher moved the webhook cursor to {current} (expected {from})"
                )));
            }
            for d in deliveries {
                tx.prepare_cached(
                    "INSERT OR IGNORE INTO webhook_deliveries
                     (id, subscription, seq, run_id, event_type, payload, status, attempts, created_at, retry_from, next_attempt_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'pending', 0, ?7, ?7, ?7)",
                )
                .map_err(sql)?
                .execute(params![d.id, d.subscription, d.seq as i64, d.run, d.event_type, d.payload, ms(now)])
                .map_err(sql)?;
            }
            for (run, seq) in service_runs {
                // A run waiting out a retry keeps its time; any other is due now.
                tx.prepare_cached(
                    "INSERT INTO service_runs (run_id, touched_seq, attempts, due_at) VALUES (?1, ?2, 0, ?3)
                     ON CONFLICT (run_id) DO UPDATE SET touched_seq = excluded.touched_seq,
                       due_at = CASE WHEN attempts > 0 THEN due_at ELSE excluded.due_at END",
                )
                .map_err(sql)?
                .execute(params![run, *seq as i64, ms(now)])
                .map_err(sql)?;
            }
            tx.prepare_cached(
                "INSERT INTO webhook_cursor (id, next_seq) VALUES (1, ?1) ON CONFLICT (id) DO UPDATE SET next_seq = excluded.next_seq",
            )
            .map_err(sql)?
            .execute([to as i64])
            .map_err(sql)?;
            Ok(())
        })
    }

    fn claim_service_runs(
        &self,
        owner: &str,
        now: Timestamp,
        lease_ms: u64,
        limit: u32,
    ) -> StoreResult<Vec<ServiceRunRow>> {
        let lease_until = ms(now).saturating_add(lease_ms.min(i64::MAX as u64) as i64);
        self.write(|tx| {
            let mut stmt = tx
                .prepare_cached(
                    "SELECT run_id, touched_seq, attempts FROM service_runs
                     WHERE due_at <= ?1 AND (lease_until IS NULL OR lease_until <= ?1) ORDER BY due_at LIMIT ?2",
                )
                .map_err(sql)?;
            let rows = stmt
                .query_map(params![ms(now), limit], |r| {
                    Ok(ServiceRunRow { run: r.get(0)?, touched_seq: r.get::<_, i64>(1)? as u64, attempts: r.get(2)? })
                })
                .map_err(sql)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(sql)?;
            drop(stmt);
            for row in &rows {
                tx.prepare_cached("UPDATE service_runs SET lease_owner = ?2, lease_until = ?3 WHERE run_id = ?1")
                    .map_err(sql)?
                    .execute(params![row.run, owner, lease_until])
                    .map_err(sql)?;
            }
            Ok(rows)
        })
    }

    fn finish_service_run(&self, owner: &str, run: &ServiceRunRow) -> StoreResult<()> {
        self.write(|tx| {
            let n = tx
                .prepare_cached("DELETE FROM service_runs WHERE run_id = ?1 AND touched_seq = ?2 AND lease_owner = ?3")
                .map_err(sql)?
                .execute(params![run.run, run.touched_seq as i64, owner])
                .map_err(sql)?;
            if n == 0 {
                tx.prepare_cached(
                    "UPDATE service_runs SET attempts = 0, lease_owner = NULL, lease_until = NULL
                     WHERE run_id = ?1 AND lease_owner = ?2",
                )
                .map_err(sql)?
                .execute(params![run.run, owner])
                .map_err(sql)?;
            }
            Ok(())
        })
    }

    fn retry_service_run(&self, owner: &str, run: &str, attempts: u32, due_at: Timestamp) -> StoreResult<()> {
        self.write(|tx| {
            tx.prepare_cached(
                "UPDATE service_runs SET attempts = ?3, due_at = ?4, lease_owner = NULL, lease_until = NULL
                 WHERE run_id = ?1 AND lease_owner = ?2",
            )
            .map_err(sql)?
            .execute(params![run, owner, attempts, ms(due_at)])
            .map_err(sql)?;
            Ok(())
        })
    }

    fn claim_deliveries(
        &self,
        owner: &str,
        now: Timestamp,
        lease_ms: u64,
        limit: u32,
    ) -> StoreResult<Vec<ClaimedDelivery>> {
        let lease_until = ms(now).saturating_add(lease_ms.min(i64::MAX as u64) as i64);
        self.write(|tx| {
            let mut stmt = tx
                .prepare_cached(&format!(
                    "SELECT {DELIVERY_COLUMNS}, s.url, s.secret FROM webhook_deliveries d
                     JOIN webhook_subscriptions s ON s.id = d.subscription
                     WHERE d.status = 'pending' AND d.next_attempt_at <= ?1 AND s.enabled = 1
                       AND (d.lease_until IS NULL OR d.lease_until <= ?1)
                       AND NOT EXISTS (
                         SELECT 1 FROM webhook_deliveries e
                         WHERE e.subscription = d.subscription AND e.run_id = d.run_id
                           AND e.status = 'pending' AND e.seq < d.seq)
                     ORDER BY d.next_attempt_at, d.seq LIMIT ?2"
                ))
                .map_err(sql)?;
            let rows = stmt
                .query_map(params![ms(now), limit], |r| Ok((delivery_row(r)?, r.get::<_, String>(14)?, r.get(15)?)))
                .map_err(sql)?;
            let mut claimed = Vec::new();
            for row in rows {
                let (raw, url, secret) = row.map_err(sql)?;
                claimed.push(ClaimedDelivery { delivery: finish_delivery(raw)?, url, secret });
            }
            drop(stmt);
            for c in &claimed {
                tx.prepare_cached("UPDATE webhook_deliveries SET lease_owner = ?2, lease_until = ?3 WHERE id = ?1")
                    .map_err(sql)?
                    .execute(params![c.delivery.id, owner, lease_until])
                    .map_err(sql)?;
            }
            Ok(claimed)
        })
    }

    fn record_attempts(&self, owner: &str, attempts: &[(AttemptRow, AttemptOutcome)]) -> StoreResult<Vec<bool>> {
        self.write(|tx| attempts.iter().map(|(a, outcome)| record_attempt(tx, owner, a, outcome)).collect())
    }

    fn deliveries(&self, subscription: &str, before_seq: Option<u64>, limit: u32) -> StoreResult<Vec<DeliveryRow>> {
        self.with_conn(|c| {
            let mut stmt = c
                .prepare_cached(&format!(
                    "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries d
                     WHERE d.subscription = ?1 AND (?2 IS NULL OR d.seq < ?2) ORDER BY d.seq DESC LIMIT ?3"
                ))
                .map_err(sql)?;
            let before = before_seq.map(|s| s.min(i64::MAX as u64) as i64);
            let rows = stmt.query_map(params![subscription, before, limit], delivery_row).map_err(sql)?;
            rows.map(|r| r.map_err(sql).and_then(finish_delivery)).collect()
        })
    }

    fn delivery(&self, id: &str) -> StoreResult<Option<DeliveryRow>> {
        self.with_conn(|c| {
            let raw = c
                .prepare_cached(&format!("SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries d WHERE d.id = ?1"))
                .map_err(sql)?
                .query_row([id], delivery_row)
                .optional()
                .map_err(sql)?;
            raw.map(finish_delivery).transpose()
        })
    }

    fn attempts(&self, delivery: &str) -> StoreResult<Vec<AttemptRow>> {
        self.with_conn(|c| {
            let mut stmt = c
                .prepare_cached(
                    "SELECT delivery, attempt, at, status, error, duration_ms, response FROM webhook_attempts
                     WHERE delivery = ?1 ORDER BY attempt",
                )
                .map_err(sql)?;
            let rows = stmt
                .query_map([delivery], |r| {
                    Ok((
                        AttemptRow {
                            delivery: r.get(0)?,
                            attempt: r.get(1)?,
                            at: Timestamp::UNIX_EPOCH,
                            status: r.get(3)?,
                            error: r.get(4)?,
                            duration_ms: r.get::<_, i64>(5)? as u64,
                            response: r.get(6)?,
                        },
                        r.get::<_, i64>(2)?,
                    ))
                })
                .map_err(sql)?;
            let mut out = Vec::new();
            for row in rows {
                let (mut a, at) = row.map_err(sql)?;
                a.at = from_ms(at)?;
                out.push(a);
            }
            Ok(out)
        })
    }

    fn redeliver(&self, id: &str, now: Timestamp) -> StoreResult<()> {
        self.write(|tx| {
            let n = tx
                .execute(
                    "UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = ?2, retry_from = ?2,
                     delivered_at = NULL, lease_owner = NULL, lease_until = NULL WHERE id = ?1",
                    params![id, ms(now)],
                )
                .map_err(sql)?;
            if n == 0 {
                return Err(StoreError::NotFound(format!("no webhook delivery with id {id}")));
            }
            Ok(())
        })
    }

    fn put_trigger(&self, event: &WorkspaceEvent, row: &TriggerRow) -> StoreResult<()> {
        self.write(|tx| {
            let mapping = serde_json::to_string(&row.mapping).map_err(other)?;
            tx.execute(
                "INSERT INTO triggers (template, secret_hash, run_as, mapping, created_by, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (template) DO UPDATE SET secret_hash = excluded.secret_hash, run_as = excluded.run_as,
                   mapping = excluded.mapping, created_by = excluded.created_by, created_at = excluded.created_at",
                params![row.template, row.secret_hash, row.run_as, mapping, row.created_by, ms(row.created_at)],
            )
            .map_err(sql)?;
            append_workspace_event(tx, event)?;
            Ok(())
        })
    }

    fn trigger(&self, template: &str) -> StoreResult<Option<TriggerRow>> {
        self.with_conn(|c| {
            let raw = c
                .prepare_cached(
                    "SELECT template, secret_hash, run_as, mapping, created_by, created_at FROM triggers WHERE template = ?1",
                )
                .map_err(sql)?
                .query_row([template], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, String>(4)?,
                        r.get::<_, i64>(5)?,
                    ))
                })
                .optional()
                .map_err(sql)?;
            raw.map(|(template, secret_hash, run_as, mapping, created_by, at)| {
                let mapping: Vec<TriggerMapping> = serde_json::from_str(&mapping)
                    .map_err(|e| StoreError::Corrupt(format!("trigger of {template}: {e}")))?;
                Ok(TriggerRow { template, secret_hash, run_as, mapping, created_by, created_at: from_ms(at)? })
            })
            .transpose()
        })
    }

    fn delete_trigger(&self, event: &WorkspaceEvent, template: &str) -> StoreResult<()> {
        self.write(|tx| {
            let n = tx.execute("DELETE FROM triggers WHERE template = ?1", [template]).map_err(sql)?;
            if n == 0 {
                return Err(StoreError::NotFound(format!("template {template} has no trigger")));
            }
            append_workspace_event(tx, event)?;
            Ok(())
        })
    }
}

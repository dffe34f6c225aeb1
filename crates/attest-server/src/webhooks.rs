//! Outbound webhooks: the background worker that turns ledger entries into
//! deliveries and sends them, signed per the Standard Webhooks specification.
//!
//! Nothing is queued in memory: the dispatcher and the deliveries live in the
//! store (see `attest_core::hooks`), and a delivery is sent only under a lease,
//! so several server processes can share one database and a crash loses
//! nothing (a leased delivery is sent again once its lease runs out).

use std::sync::Arc;
use std::time::{Duration, Instant};

use attest_core::hooks::{Dispatcher, RetryPolicy};
use attest_engine::{Actor, WorkspaceEvent, WorkspaceEventBody};
use attest_store::Store;
use attest_store::hooks::{AttemptOutcome, AttemptRow, ClaimedDelivery, HookStore};
use attest_store_sqlite::SqliteStore;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use tokio::sync::watch;

/// How outbound HTTP calls are bounded.
#[derive(Debug, Clone)]
pub struct HookConfig {
    /// Turn the background worker off (another process delivers).
    pub enabled: bool,
    pub connect_timeout_ms: u64,
    /// The whole attempt, from connecting to the last byte read.
    pub timeout_ms: u64,
    /// Response bytes read at most; the rest is not read.
    pub max_response_bytes: usize,
    /// Deliveries sent at once.
    pub concurrency: u32,
    /// How often the worker looks for new entries and due deliveries.
    pub poll_ms: u64,
    pub retry: RetryPolicy,
    /// Hosts outbound calls may reach (`ATTEST_OUTBOUND_HOSTS`, comma-separated);
    /// `None` allows every host. CI's API fuzzing sets it to loopback.
    pub allowed_hosts: Option<Vec<String>>,
}

impl HookConfig {
    /// The defaults; `ATTEST_WEBHOOK_RETRY_HOURS` sets the retry window.
    pub fn from_env() -> Self {
        let mut retry = RetryPolicy::default();
        if let Some(h) = std::env::var("ATTEST_WEBHOOK_RETRY_HOURS").ok().and_then(|v| v.parse::<u64>().ok()) {
            retry.window_ms = h.clamp(1, 24 * 30) * 3_600_000;
        }
        HookConfig {
            enabled: true,
            connect_timeout_ms: 5_000,
            timeout_ms: 15_000,
            max_response_bytes: 64 * 1024,
            concurrency: 32,
            poll_ms: 500,
            retry,
            allowed_hosts: std::env::var("ATTEST_OUTBOUND_HOSTS")
                .ok()
                .map(|v| v.split(',').map(|h| h.trim().to_ascii_lowercase()).filter(|h| !h.is_empty()).collect()),
        }
    }

    /// A lease outlives an attempt, so no two processes send the same delivery at once.
    fn lease_ms(&self) -> u64 {
        self.timeout_ms.saturating_mul(2).saturating_add(5_000)
    }
}

/// Characters of a response body kept in the delivery log.
const RESPONSE_EXCERPT_CHARS: usize = 1_000;

type HmacSha256 = Hmac<sha2::Sha256>;

/// `v1,` + base64 HMAC-SHA256 over `id.timestamp.body` with the secret's key
/// (`whsec_` + base64 of the key bytes).
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &str) -> anyhow::Result<String> {
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap_or(secret))
        .map_err(|e| anyhow::anyhow!("the webhook secret is not base64: {e}"))?;
    let mut mac = HmacSha256::new_from_slice(&key).map_err(|e| anyhow::anyhow!("bad webhook key: {e}"))?;
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    Ok(format!("v1,{}", base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())))
}

/// A new subscription secret: `whsec_` + base64 of 32 random bytes.
pub fn new_secret() -> String {
    use rand::RngCore as _;
    let mut key = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut key);
    format!("whsec_{}", base64::engine::general_purpose::STANDARD.encode(key))
}

/// The HTTP client for outbound calls: bounded timeouts, no redirects
/// (a 3xx counts as a failed attempt rather than a hop to another host).
pub fn client(config: &HookConfig) -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .connect_timeout(Duration::from_millis(config.connect_timeout_ms))
        .timeout(Duration::from_millis(config.timeout_ms))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("Attest-Webhooks/", env!("CARGO_PKG_VERSION")))
        .build()?)
}

/// What one HTTP attempt gave.
#[derive(Debug)]
pub struct Sent {
    pub status: Option<u16>,
    pub error: Option<String>,
    pub response: Option<String>,
    pub duration_ms: u64,
}

impl Sent {
    pub fn ok(&self) -> bool {
        self.error.is_none() && self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

/// Reads at most `max` bytes of a response body; the rest is left unread.
pub async fn read_bounded(mut res: reqwest::Response, max: usize) -> Result<(Vec<u8>, bool), reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = res.chunk().await? {
        let room = max - body.len();
        if chunk.len() > room {
            body.extend_from_slice(&chunk[..room]);
            return Ok((body, true));
        }
        body.extend_from_slice(&chunk);
    }
    Ok((body, false))
}

fn describe(e: reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "could not connect".into()
    } else {
        // The URL may carry credentials: never put it in the log.
        format!("request failed: {}", e.without_url())
    }
}

/// Sends one delivery.
async fn send(client: &reqwest::Client, config: &HookConfig, c: &ClaimedDelivery, timestamp: i64) -> Sent {
    let started = Instant::now();
    let d = &c.delivery;
    if let Some(allowed) = &config.allowed_hosts {
        let host = reqwest::Url::parse(&c.url).ok().and_then(|u| u.host_str().map(str::to_ascii_lowercase));
        if !host.is_some_and(|h| allowed.contains(&h)) {
            let error = "the URL's host is not in ATTEST_OUTBOUND_HOSTS".to_string();
            return Sent { status: None, error: Some(error), response: None, duration_ms: 0 };
        }
    }
    let signature = match sign(&c.secret, &d.id, timestamp, &d.payload) {
        Ok(s) => s,
        Err(e) => {
            return Sent { status: None, error: Some(e.to_string()), response: None, duration_ms: 0 };
        }
    };
    let result = client
        .post(&c.url)
        .header("content-type", "application/json")
        .header("webhook-id", &d.id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(d.payload.clone())
        .send()
        .await;
    let (status, error, response) = match result {
        Err(e) => (None, Some(describe(e)), None),
        Ok(res) => {
            let status = res.status().as_u16();
            match read_bounded(res, config.max_response_bytes).await {
                Ok((body, _)) => {
                    let text: String = String::from_utf8_lossy(&body).chars().take(RESPONSE_EXCERPT_CHARS).collect();
                    let error = (!(200..300).contains(&status)).then(|| format!("the receiver answered {status}"));
                    (Some(status), error, Some(text))
                }
                Err(e) => (Some(status), Some(describe(e)), None),
            }
        }
    };
    Sent { status, error, response, duration_ms: started.elapsed().as_millis() as u64 }
}

/// The background worker of one server process.
#[derive(Debug)]
pub struct Worker {
    pub handle: tokio::task::JoinHandle<()>,
    pub stop: watch::Sender<bool>,
}

/// Starts the worker: it dispatches new ledger entries and sends due
/// deliveries until `stop` is set, finishing the attempts in flight.
pub fn spawn(database: std::path::PathBuf, config: HookConfig) -> anyhow::Result<Worker> {
    let store = Arc::new(SqliteStore::open(&database)?);
    let client = client(&config)?;
    let (stop, mut stopped) = watch::channel(false);
    let owner = format!("worker-{}", uuid::Uuid::now_v7().simple());
    let handle = tokio::spawn(async move {
        let mut dispatcher = Dispatcher::new();
        loop {
            let busy = match round(&store, &client, &config, &owner, &mut dispatcher).await {
                Ok(busy) => busy,
                Err(e) => {
                    tracing::warn!(error = %e, "webhook worker round failed; trying again");
                    false
                }
            };
            if *stopped.borrow() {
                break;
            }
            if !busy {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(config.poll_ms)) => {}
                    _ = stopped.changed() => break,
                }
            }
        }
    });
    Ok(Worker { handle, stop })
}

/// One round: dispatch what is new, then send one batch of due deliveries.
/// Returns whether there was work, so a busy worker does not sleep.
async fn round(
    store: &Arc<SqliteStore>,
    client: &reqwest::Client,
    config: &HookConfig,
    owner: &str,
    dispatcher: &mut Dispatcher,
) -> anyhow::Result<bool> {
    let s = store.clone();
    let mut d = std::mem::take(dispatcher);
    let (d, dispatched) = tokio::task::spawn_blocking(move || {
        let r = d.dispatch_once(s.as_ref() as &dyn Store, s.as_ref() as &dyn HookStore, crate::now());
        (d, r)
    })
    .await?;
    *dispatcher = d;
    let dispatched = dispatched?;
    let s = store.clone();
    let (lease_ms, limit, who) = (config.lease_ms(), config.concurrency.max(1), owner.to_string());
    let claimed =
        tokio::task::spawn_blocking(move || s.claim_deliveries(&who, crate::now(), lease_ms, limit)).await??;
    if claimed.is_empty() {
        return Ok(dispatched > 0);
    }
    let timestamp = crate::now().as_second();
    let mut attempts = tokio::task::JoinSet::new();
    for c in claimed {
        let (client, config) = (client.clone(), config.clone());
        attempts.spawn(async move {
            let sent = send(&client, &config, &c, timestamp).await;
            (c, sent)
        });
    }
    let mut results = Vec::new();
    while let Some(done) = attempts.join_next().await {
        results.push(done?);
    }
    let s = store.clone();
    let (retry, who) = (config.retry, owner.to_string());
    tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        for (c, sent) in results {
            record(s.as_ref(), &who, &retry, &c, &sent)?;
        }
        Ok(())
    })
    .await??;
    Ok(true)
}

fn record(
    hooks: &dyn HookStore,
    owner: &str,
    retry: &RetryPolicy,
    c: &ClaimedDelivery,
    sent: &Sent,
) -> anyhow::Result<()> {
    let now = crate::now();
    let d = &c.delivery;
    let outcome = if sent.ok() {
        AttemptOutcome::Delivered
    } else {
        match retry.next_attempt(d.attempts + 1, d.retry_from, now) {
            Some(next_at) => AttemptOutcome::Retry { next_at },
            None => {
                let reason = format!(
                    "delivery {} failed for {} attempts over the retry window; last error: {}",
                    d.id,
                    d.attempts + 1,
                    sent.error.as_deref().unwrap_or("unknown")
                );
                tracing::warn!(subscription = %d.subscription, delivery = %d.id, "disabling webhook after persistent failure");
                let event = WorkspaceEvent {
                    at: now,
                    by: Actor::system(),
                    body: WorkspaceEventBody::WebhookDisabled { id: d.subscription.clone(), reason: reason.clone() },
                };
                AttemptOutcome::Failed { disable: Box::new(event), reason }
            }
        }
    };
    let attempt = AttemptRow {
        delivery: d.id.clone(),
        attempt: d.attempts + 1,
        at: now,
        status: sent.status,
        error: sent.error.clone(),
        duration_ms: sent.duration_ms,
        response: sent.response.clone(),
    };
    if !hooks.record_attempt(owner, &attempt, &outcome)? {
        tracing::info!(delivery = %d.id, "lease lost before the attempt was recorded; another worker retries it");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_the_standard_webhooks_example() {
        // The example of the Standard Webhooks specification's reference libraries.
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
        let body = r#"{"test": 2432232314}"#;
        let sig = sign(secret, id, 1614265330, body).unwrap_or_default();
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }
}

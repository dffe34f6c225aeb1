//! Outbound webhooks: the background worker that turns ledger entries into
//! deliveries and sends them, signed per the Standard Webhooks specification;
//! the same worker makes the calls of service tasks (see `services`).
//!
//! Nothing is queued in memory: the dispatcher and the deliveries live in the
//! store (see `attest_core::hooks`), and a delivery is sent only under a lease,
//! so several server processes can share one database and a crash loses
//! nothing (a leased delivery is sent again once its lease runs out).

use std::sync::Arc;
use std::time::{Duration, Instant};

use attest_core::hooks::{Dispatcher, RetryPolicy};
use attest_core::{DataDir, Workspace};
use attest_engine::{Actor, WorkspaceEvent, WorkspaceEventBody};
use attest_store::hooks::{AttemptOutcome, AttemptRow, ClaimedDelivery, HookStore};
use attest_store::{FsBlobStore, Store};
use attest_store_sqlite::SqliteStore;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use tokio::sync::watch;

use crate::services;

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
    /// Service tasks: the wait before the first retry of a call (doubling, at most a minute).
    pub service_first_delay_ms: u64,
    /// Service tasks: a larger response fails the call.
    pub service_max_response_bytes: usize,
    /// Service tasks: runs worked at once.
    pub service_concurrency: u32,
    /// Where the worker reads the time; `start` sets it to the server's `Config::clock`.
    pub clock: attest_core::Clock,
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
            service_first_delay_ms: 1_000,
            service_max_response_bytes: 1024 * 1024,
            service_concurrency: 8,
            allowed_hosts: std::env::var("ATTEST_OUTBOUND_HOSTS")
                .ok()
                .map(|v| v.split(',').map(|h| h.trim().to_ascii_lowercase()).filter(|h| !h.is_empty()).collect()),
            clock: attest_core::Clock::from_env(),
        }
    }

    /// A lease outlives an attempt, so no two processes send the same delivery at once.
    fn lease_ms(&self) -> u64 {
        self.timeout_ms.saturating_mul(2).saturating_add(5_000)
    }

    /// A service call may take up to the longest timeout a template allows.
    fn service_lease_ms(&self) -> u64 {
        u64::from(attest_template::HttpCall::MAX_TIMEOUT_SECONDS) * 2_000 + 5_000
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

/// The background workers of one server process: webhooks (dispatch and
/// delivery) and service calls, each in its own loop so a slow endpoint of
/// one never holds up the other.
#[derive(Debug)]
pub struct Worker {
    pub handles: Vec<tokio::task::JoinHandle<()>>,
    pub stop: watch::Sender<bool>,
}

impl Worker {
    /// Stops the loops once their attempts in flight are recorded.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for handle in self.handles {
            let _ = handle.await;
        }
    }
}

/// Runs `round` until `stop` is set, sleeping `poll_ms` after a round without work.
fn spawn_loop<F, Fut>(
    name: &'static str,
    poll_ms: u64,
    mut stopped: watch::Receiver<bool>,
    mut round: F,
) -> tokio::task::JoinHandle<()>
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = anyhow::Result<bool>> + Send,
{
    tokio::spawn(async move {
        loop {
            let busy = match round().await {
                Ok(busy) => busy,
                Err(e) => {
                    tracing::warn!(error = %e, worker = name, "worker round failed; trying again");
                    false
                }
            };
            if *stopped.borrow() {
                break;
            }
            if !busy {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(poll_ms)) => {}
                    _ = stopped.changed() => break,
                }
            }
        }
    })
}

/// Starts the workers: they dispatch new ledger entries, send due deliveries
/// and make due service calls until stopped, finishing what is in flight.
pub fn spawn(dir: &DataDir, config: HookConfig) -> anyhow::Result<Worker> {
    let store = Arc::new(SqliteStore::open(dir.database())?);
    let service_store = Arc::new(SqliteStore::open(dir.database())?);
    let ws = Arc::new(Workspace::with_store(service_store.clone(), Arc::new(FsBlobStore::new(dir.files()))));
    let client = client(&config)?;
    let (stop, stopped) = watch::channel(false);
    let owner = format!("worker-{}", uuid::Uuid::now_v7().simple());
    let dispatcher = Arc::new(tokio::sync::Mutex::new(Dispatcher::new()));
    let (c, cfg, who) = (client.clone(), config.clone(), owner.clone());
    let hooks = spawn_loop("webhooks", config.poll_ms, stopped.clone(), move || {
        let (store, client, config, owner, dispatcher) =
            (store.clone(), c.clone(), cfg.clone(), who.clone(), dispatcher.clone());
        async move {
            let mut d = dispatcher.lock().await;
            round(&store, &client, &config, &owner, &mut d).await
        }
    });
    let cfg = config.clone();
    let services = spawn_loop("services", config.poll_ms, stopped, move || {
        let (store, ws, client, config, owner) =
            (service_store.clone(), ws.clone(), client.clone(), cfg.clone(), owner.clone());
        async move { serve_due_services(&store, &ws, &client, &config, &owner).await }
    });
    Ok(Worker { handles: vec![hooks, services], stop })
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
    let (s, clock) = (store.clone(), config.clock.clone());
    let mut d = std::mem::take(dispatcher);
    let (d, dispatched) = tokio::task::spawn_blocking(move || {
        let r = d.dispatch_once(s.as_ref() as &dyn Store, s.as_ref() as &dyn HookStore, clock.now());
        (d, r)
    })
    .await?;
    *dispatcher = d;
    let dispatched = dispatched?;
    let s = store.clone();
    let (lease_ms, limit, who) = (config.lease_ms(), config.concurrency.max(1), owner.to_string());
    let now = config.clock.now();
    let claimed = tokio::task::spawn_blocking(move || s.claim_deliveries(&who, now, lease_ms, limit)).await??;
    if claimed.is_empty() {
        return Ok(dispatched > 0);
    }
    let timestamp = config.clock.now().as_second();
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
    let (retry, who, now) = (config.retry, owner.to_string(), config.clock.now());
    tokio::task::spawn_blocking(move || record(s.as_ref(), &who, &retry, &results, now)).await??;
    Ok(true)
}

/// Works the marked runs whose service calls are due; whether there were any.
async fn serve_due_services(
    store: &Arc<SqliteStore>,
    ws: &Arc<Workspace>,
    client: &reqwest::Client,
    config: &HookConfig,
    owner: &str,
) -> anyhow::Result<bool> {
    let s = store.clone();
    let (lease_ms, limit, who) = (config.service_lease_ms(), config.service_concurrency.max(1), owner.to_string());
    let now = config.clock.now();
    let marked = tokio::task::spawn_blocking(move || s.claim_service_runs(&who, now, lease_ms, limit)).await??;
    if marked.is_empty() {
        return Ok(false);
    }
    let mut calls = tokio::task::JoinSet::new();
    for run in marked {
        let hooks: Arc<dyn HookStore> = store.clone();
        calls.spawn(services::work_run(ws.clone(), hooks, client.clone(), config.clone(), owner.to_string(), run));
    }
    while let Some(done) = calls.join_next().await {
        if let Err(e) = done? {
            tracing::warn!(error = %e, "a service call could not be recorded; it is tried again after its lease");
        }
    }
    Ok(true)
}

/// Records a round's attempts in one transaction.
fn record(
    hooks: &dyn HookStore,
    owner: &str,
    retry: &RetryPolicy,
    results: &[(ClaimedDelivery, Sent)],
    now: jiff::Timestamp,
) -> anyhow::Result<()> {
    let mut attempts = Vec::with_capacity(results.len());
    for (c, sent) in results {
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
                        body: WorkspaceEventBody::WebhookDisabled {
                            id: d.subscription.clone(),
                            reason: reason.clone(),
                        },
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
        attempts.push((attempt, outcome));
    }
    let held = hooks.record_attempts(owner, &attempts)?;
    for ((attempt, _), held) in attempts.iter().zip(held) {
        if !held {
            tracing::info!(delivery = %attempt.delivery, "lease lost before the attempt was recorded; another worker retries it");
        }
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

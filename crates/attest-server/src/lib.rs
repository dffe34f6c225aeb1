//! `attest serve`: the REST JSON API over a workspace.
//!
//! Only this crate knows HTTP and JSON shapes. Reads run on their own store
//! connection in `spawn_blocking`; run commands go through the group-commit
//! writer ([`writer`]); every route passes the guard, which asks
//! [`access::authorize`] — the one place that decides access.

// `Problem` (~150 bytes) is every handler's error; the paths that return it do IO
// anyway, so boxing it would buy nothing.
#![allow(clippy::result_large_err)]

pub mod access;
mod api;
mod authn;
mod charts;
mod docs;
mod guard;
mod hooks_api;
pub mod metrics;
mod metrics_api;
pub mod problem;
pub mod ratelimit;
pub mod routes;
mod schedules_api;
pub mod scheduling;
mod services;
mod web;
pub mod webhooks;
mod writer;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use attest_core::scheduler::{Scheduler, SchedulerConfig};
use attest_core::{DataDir, Workspace};
use attest_ledger::note::SignerKey;
use attest_store::{AuthStore, DraftStore, FsBlobStore, HookStore};
use attest_store_sqlite::SqliteStore;
use jiff::Timestamp;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

pub use routes::{ROUTES, RouteSpec};

/// How a server runs.
#[derive(Debug, Clone)]
pub struct Config {
    pub data: PathBuf,
    /// Largest evidence upload, in bytes.
    pub max_upload_bytes: u64,
    /// Largest JSON body, in bytes.
    pub max_json_bytes: usize,
    /// Mark session cookies `Secure` (set when served behind TLS).
    pub secure_cookies: bool,
    /// Most commands per group commit.
    pub batch_max: usize,
    /// Where the scheduler, the webhook worker and every handler read the time (`App::now`).
    pub clock: attest_core::Clock,
    pub scheduler: scheduling::SchedulerSettings,
    /// Outbound webhooks: timeouts, bounds, retries, the worker.
    pub hooks: webhooks::HookConfig,
    /// How often each template's secret trigger URL may be called.
    pub trigger_rate: ratelimit::Rate,
}

impl Config {
    pub fn new(data: impl Into<PathBuf>) -> Self {
        Config {
            data: data.into(),
            max_upload_bytes: attest_core::workspace::MAX_EVIDENCE_BYTES,
            max_json_bytes: 2 * 1024 * 1024,
            secure_cookies: std::env::var("ATTEST_SECURE_COOKIES").is_ok_and(|v| v == "1" || v == "true"),
            batch_max: 256,
            clock: attest_core::Clock::from_env(),
            scheduler: scheduling::SchedulerSettings::default(),
            hooks: webhooks::HookConfig::from_env(),
            trigger_rate: ratelimit::Rate::default(),
        }
    }
}

/// What first start made: the admin and a one-time password.
#[derive(Debug, Clone)]
pub struct Seeded {
    pub admin: String,
    pub one_time_password: String,
}

/// Shared by every request.
#[derive(Debug)]
pub struct App {
    pub config: Config,
    pub dir: DataDir,
    /// Reads and credential changes, on their own connection.
    pub read: Arc<Workspace>,
    pub auth: Arc<dyn AuthStore>,
    /// The runs list's searches, on the read connection.
    pub search: Arc<dyn attest_store::RunSearchStore>,
    /// Template drafts of the editor, on the read connection like credentials.
    pub drafts: Arc<dyn DraftStore>,
    /// Webhook subscriptions, deliveries and triggers, on the read connection.
    pub hooks: Arc<dyn HookStore>,
    /// Workspace changes and uploads; run commands go through `writer`.
    pub write: Arc<Workspace>,
    pub writer: mpsc::Sender<writer::Job>,
    pub signer: Option<SignerKey>,
    /// Signs the sign-in form's CSRF tokens (`authn::login_form_key`).
    pub login_key: [u8; 32],
    pub metrics: Arc<metrics::Metrics>,
    /// Resolved credentials, cleared whenever people, roles or credentials change.
    pub principals: Mutex<HashMap<String, (access::Principal, std::time::Instant)>>,
    pub limiter: authn::LoginLimiter,
    pub token_touched: Mutex<HashMap<String, std::time::Instant>>,
    pub inflight_keys: Mutex<std::collections::HashSet<String>>,
    /// Jobs, schedules and settings, on the scheduler's own connection.
    pub sched_store: Arc<SqliteStore>,
    pub scheduler: Arc<Scheduler>,
    /// Calls of the secret trigger URL, per template.
    pub trigger_limiter: ratelimit::Limiter,
}

impl App {
    /// The server's clock (`Config::clock`).
    pub fn now(&self) -> Timestamp {
        self.config.clock.now()
    }

    /// Changes the workspace's time zone for every connection of this process.
    pub fn set_time_zone(&self, tz: jiff::tz::TimeZone) {
        self.read.set_time_zone(tz.clone());
        self.write.set_time_zone(tz.clone());
        self.scheduler.workspace().set_time_zone(tz);
    }

    pub fn forget_principals(&self) {
        if let Ok(mut m) = self.principals.lock() {
            m.clear();
        }
    }
}

/// A running server.
#[derive(Debug)]
pub struct Running {
    pub addr: SocketAddr,
    pub seeded: Option<Seeded>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
    writer: Option<std::thread::JoinHandle<()>>,
    scheduler: Arc<Scheduler>,
    clock: attest_core::Clock,
    scheduler_stop: Option<tokio::sync::watch::Sender<bool>>,
    scheduler_task: Option<tokio::task::JoinHandle<()>>,
    hooks: Option<webhooks::Worker>,
}

impl Running {
    /// Stops accepting, finishes in-flight requests and queued commands.
    pub async fn shutdown(mut self) {
        self.scheduler.stop();
        if let Some(stop) = self.scheduler_stop.take() {
            let _ = stop.send(true);
        }
        if let Some(task) = self.scheduler_task.take() {
            let _ = task.await;
        }
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let _ = (&mut self.task).await;
        if let Some(worker) = self.hooks.take() {
            worker.shutdown().await;
        }
        if let Some(w) = self.writer.take() {
            let _ = tokio::task::spawn_blocking(move || w.join()).await;
        }
    }

    /// Runs one scheduler tick at the server clock's `now` (tests move a
    /// manual clock and call this instead of waiting for the loop).
    pub async fn tick(&self) -> anyhow::Result<attest_core::scheduler::TickReport> {
        scheduling::tick(self.scheduler.clone(), &self.clock).await
    }
}

/// Opens (seeding on first start) the data directory and builds the shared state.
fn open(config: Config) -> anyhow::Result<(Arc<App>, Option<Seeded>, std::thread::JoinHandle<()>)> {
    let dir = DataDir::new(&config.data);
    let mut seeded = None;
    if !dir.exists() {
        let out = attest_core::seed::seed_data_dir(&dir, config.clock.now()).context("seeding a new workspace")?;
        let password = authn::one_time_password();
        let phc = authn::hash_password(&password)?;
        let system = attest_engine::Actor::system();
        let store = Arc::new(SqliteStore::open(dir.database())?);
        out.workspace.set_password(store.as_ref(), &system, &out.admin, phc, true, config.clock.now())?;
        seeded = Some(Seeded { admin: out.admin, one_time_password: password });
    }
    let read_store = Arc::new(SqliteStore::open(dir.database())?);
    if seeded.is_none() {
        seeded = first_admin_password(&dir, &read_store, config.clock.now())?;
    }
    let read = Arc::new(Workspace::with_store(read_store.clone(), Arc::new(FsBlobStore::new(dir.files()))));
    let write_store = Arc::new(SqliteStore::open(dir.database())?);
    let write = Arc::new(Workspace::with_store(write_store, Arc::new(FsBlobStore::new(dir.files()))));
    write.backfill_metric_facts().context("filling in metric facts for older runs")?;
    let signer = attest_core::audit::load_signer(&dir).ok();
    let metrics = Arc::new(metrics::Metrics::default());
    let (tx, handle) =
        writer::spawn(write.clone(), signer.clone(), metrics.clone(), config.batch_max.max(1), config.clock.clone());
    let sched_store = Arc::new(SqliteStore::open(dir.database())?);
    let sched_ws = Arc::new(Workspace::with_store(sched_store.clone(), Arc::new(FsBlobStore::new(dir.files()))));
    let tz = attest_core::mail::time_zone(sched_store.as_ref())?;
    for ws in [&read, &write, &sched_ws] {
        ws.set_time_zone(tz.clone());
    }
    let sched_config = SchedulerConfig {
        batch: config.scheduler.batch.max(1),
        lease: jiff::SignedDuration::from_millis(config.scheduler.lease_ms.max(1_000) as i64),
        ..SchedulerConfig::default()
    };
    let owner = format!("{}-{}", std::process::id(), uuid::Uuid::now_v7());
    let scheduler = Arc::new(
        Scheduler::new(sched_ws, sched_store.clone(), sched_store.clone(), sched_store.clone(), &owner, sched_config)
            .with_mailer(Arc::new(scheduling::SmtpMailer)),
    );
    let app = App {
        trigger_limiter: ratelimit::Limiter::new(config.trigger_rate),
        config,
        dir,
        read,
        auth: read_store.clone(),
        search: read_store.clone(),
        drafts: read_store.clone(),
        hooks: read_store,
        write,
        writer: tx,
        login_key: authn::login_form_key(signer.as_ref()),
        signer,
        metrics,
        principals: Mutex::new(HashMap::new()),
        limiter: authn::LoginLimiter::default(),
        token_touched: Mutex::new(HashMap::new()),
        inflight_keys: Mutex::new(Default::default()),
        sched_store,
        scheduler,
    };
    Ok((Arc::new(app), seeded, handle))
}

/// A workspace made by `attest init` has no passwords yet: its first admin
/// gets a one-time password, so someone can sign in.
fn first_admin_password(dir: &DataDir, store: &Arc<SqliteStore>, now: Timestamp) -> anyhow::Result<Option<Seeded>> {
    use attest_store::Store as _;
    let users = store.users()?;
    for u in &users {
        if store.password(&u.email)?.is_some() {
            return Ok(None);
        }
    }
    let Some(admin) = users.iter().find(|u| u.admin) else { return Ok(None) };
    let ws = Workspace::with_store(store.clone(), Arc::new(FsBlobStore::new(dir.files())));
    let password = authn::one_time_password();
    let phc = authn::hash_password(&password)?;
    ws.set_password(store.as_ref(), &attest_engine::Actor::system(), &admin.email, phc, true, now)?;
    Ok(Some(Seeded { admin: admin.email.clone(), one_time_password: password }))
}

/// Starts serving on a bound listener (port 0 in tests).
pub async fn start(config: Config, listener: TcpListener) -> anyhow::Result<Running> {
    let (app, seeded, writer) = tokio::task::spawn_blocking(move || open(config)).await??;
    let addr = listener.local_addr()?;
    let scheduler = app.scheduler.clone();
    let clock = app.config.clock.clone();
    let (scheduler_stop, stop_rx) = tokio::sync::watch::channel(false);
    let scheduler_task = app
        .config
        .scheduler
        .enabled
        .then(|| scheduling::spawn_loop(scheduler.clone(), clock.clone(), &app.config.scheduler, stop_rx));
    let hooks = if app.config.hooks.enabled {
        let config = webhooks::HookConfig { clock: clock.clone(), ..app.config.hooks.clone() };
        Some(webhooks::spawn(&app.dir, config)?)
    } else {
        None
    };
    let router = api::router(app.clone());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let served = axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>())
            .with_graceful_shutdown(async move {
                let _ = rx.await;
            })
            .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "server stopped");
        }
        // Dropping the app closes the writer's queue once requests are done.
        drop(app);
    });
    Ok(Running {
        addr,
        seeded,
        shutdown: Some(tx),
        task,
        writer: Some(writer),
        scheduler,
        clock,
        scheduler_stop: Some(scheduler_stop),
        scheduler_task,
        hooks,
    })
}

/// `attest serve`: runs until SIGTERM or Ctrl-C, then shuts down gracefully.
pub fn serve(data: PathBuf, addr: &str) -> anyhow::Result<()> {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("ATTEST_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_target(false)
        .try_init();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async move {
        let listener = TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr}"))?;
        let running = start(Config::new(data.clone()), listener).await?;
        if let Some(s) = &running.seeded {
            println!("Workspace in {} is ready (example templates, people and runs on first start).", data.display());
            println!("Admin login: {}", s.admin);
            println!("One-time password: {}  (change it on first login)", s.one_time_password);
        }
        println!("Listening on http://{}  (API docs: http://{}/api/docs)", running.addr, running.addr);
        tracing::info!(addr = %running.addr, "listening");
        shutdown_signal().await;
        tracing::info!("shutting down: finishing in-flight requests");
        running.shutdown().await;
        Ok(())
    })
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

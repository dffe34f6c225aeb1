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
mod docs;
mod guard;
mod hooks_api;
pub mod metrics;
pub mod problem;
pub mod routes;
mod services;
pub mod webhooks;
mod writer;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use attest_core::{DataDir, Workspace};
use attest_ledger::note::SignerKey;
use attest_store::{AuthStore, FsBlobStore, HookStore};
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
    /// Outbound webhooks: timeouts, bounds, retries, the worker.
    pub hooks: webhooks::HookConfig,
}

impl Config {
    pub fn new(data: impl Into<PathBuf>) -> Self {
        Config {
            data: data.into(),
            max_upload_bytes: attest_core::workspace::MAX_EVIDENCE_BYTES,
            max_json_bytes: 2 * 1024 * 1024,
            secure_cookies: std::env::var("ATTEST_SECURE_COOKIES").is_ok_and(|v| v == "1" || v == "true"),
            batch_max: 256,
            hooks: webhooks::HookConfig::from_env(),
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
    /// Webhook subscriptions, deliveries and triggers, on the read connection.
    pub hooks: Arc<dyn HookStore>,
    /// Workspace changes and uploads; run commands go through `writer`.
    pub write: Arc<Workspace>,
    pub writer: mpsc::Sender<writer::Job>,
    pub signer: Option<SignerKey>,
    pub metrics: Arc<metrics::Metrics>,
    /// Resolved credentials, cleared whenever people, roles or credentials change.
    pub principals: Mutex<HashMap<String, (access::Principal, std::time::Instant)>>,
    pub limiter: authn::LoginLimiter,
    pub token_touched: Mutex<HashMap<String, std::time::Instant>>,
    pub inflight_keys: Mutex<std::collections::HashSet<String>>,
}

impl App {
    pub fn forget_principals(&self) {
        if let Ok(mut m) = self.principals.lock() {
            m.clear();
        }
    }
}

/// The clock: `ATTEST_NOW` fixes it for tests.
pub fn now() -> Timestamp {
    std::env::var("ATTEST_NOW").ok().and_then(|s| s.parse().ok()).unwrap_or_else(Timestamp::now)
}

/// A running server.
#[derive(Debug)]
pub struct Running {
    pub addr: SocketAddr,
    pub seeded: Option<Seeded>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
    writer: Option<std::thread::JoinHandle<()>>,
    hooks: Option<webhooks::Worker>,
}

impl Running {
    /// Stops accepting, finishes in-flight requests and queued commands.
    pub async fn shutdown(mut self) {
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
}

/// Opens (seeding on first start) the data directory and builds the shared state.
fn open(config: Config) -> anyhow::Result<(Arc<App>, Option<Seeded>, std::thread::JoinHandle<()>)> {
    let dir = DataDir::new(&config.data);
    let mut seeded = None;
    if !dir.exists() {
        let out = attest_core::seed::seed_data_dir(&dir, now()).context("seeding a new workspace")?;
        let password = authn::one_time_password();
        let phc = authn::hash_password(&password)?;
        let system = attest_engine::Actor::system();
        let store = Arc::new(SqliteStore::open(dir.database())?);
        out.workspace.set_password(store.as_ref(), &system, &out.admin, phc, true, now())?;
        seeded = Some(Seeded { admin: out.admin, one_time_password: password });
    }
    let read_store = Arc::new(SqliteStore::open(dir.database())?);
    if seeded.is_none() {
        seeded = first_admin_password(&dir, &read_store)?;
    }
    let read = Arc::new(Workspace::with_store(read_store.clone(), Arc::new(FsBlobStore::new(dir.files()))));
    let write_store = Arc::new(SqliteStore::open(dir.database())?);
    let write = Arc::new(Workspace::with_store(write_store, Arc::new(FsBlobStore::new(dir.files()))));
    let signer = attest_core::audit::load_signer(&dir).ok();
    let metrics = Arc::new(metrics::Metrics::default());
    let (tx, handle) = writer::spawn(write.clone(), signer.clone(), metrics.clone(), config.batch_max.max(1));
    let app = App {
        config,
        dir,
        read,
        auth: read_store.clone(),
        hooks: read_store,
        write,
        writer: tx,
        signer,
        metrics,
        principals: Mutex::new(HashMap::new()),
        limiter: authn::LoginLimiter::default(),
        token_touched: Mutex::new(HashMap::new()),
        inflight_keys: Mutex::new(Default::default()),
    };
    Ok((Arc::new(app), seeded, handle))
}

/// A workspace made by `attest init` has no passwords yet: its first admin
/// gets a one-time password, so someone can sign in.
fn first_admin_password(dir: &DataDir, store: &Arc<SqliteStore>) -> anyhow::Result<Option<Seeded>> {
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
    ws.set_password(store.as_ref(), &attest_engine::Actor::system(), &admin.email, phc, true, now())?;
    Ok(Some(Seeded { admin: admin.email.clone(), one_time_password: password }))
}

/// Starts serving on a bound listener (port 0 in tests).
pub async fn start(config: Config, listener: TcpListener) -> anyhow::Result<Running> {
    let (app, seeded, writer) = tokio::task::spawn_blocking(move || open(config)).await??;
    let addr = listener.local_addr()?;
    let hooks =
        if app.config.hooks.enabled { Some(webhooks::spawn(&app.dir, app.config.hooks.clone())?) } else { None };
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
    Ok(Running { addr, seeded, shutdown: Some(tx), task, writer: Some(writer), hooks })
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

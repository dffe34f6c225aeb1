//! The scheduler inside the server: a tokio task that calls
//! [`Scheduler::tick`] every `tick_ms` on a blocking thread, reading the time
//! from the server's [`attest_core::Clock`], and stops on graceful shutdown
//! after the tick in progress. Its work lives in the store's job table
//! (`attest_core::scheduler` explains what a tick does), so a restart loses
//! nothing, and each process leases jobs under its own owner name.
//!
//! Tests turn the loop off (`SchedulerSettings::enabled = false`), move a
//! manual clock and call [`crate::Running::tick`] instead of sleeping.
//!
//! Mail goes out through [`SmtpMailer`] (lettre, blocking SMTP on the
//! scheduler's thread) with the workspace's SMTP settings.

use std::sync::Arc;
use std::time::Duration;

use attest_core::Clock;
use attest_core::mail::{Mail, MailSettings, TlsMode};
use attest_core::scheduler::{MailSender, Scheduler, TickReport};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{Message, SmtpTransport, Transport};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How the server's scheduler runs.
#[derive(Debug, Clone)]
pub struct SchedulerSettings {
    /// Run the loop; off in tests that call `Running::tick` themselves.
    pub enabled: bool,
    pub tick_ms: u64,
    /// Most jobs claimed per tick.
    pub batch: u32,
    /// How long a claimed job is this process's before another may take it.
    pub lease_ms: u64,
}

impl Default for SchedulerSettings {
    fn default() -> Self {
        SchedulerSettings { enabled: true, tick_ms: 1_000, batch: 100, lease_ms: 60_000 }
    }
}

/// Longest wait for an SMTP server, per step; it also bounds how long a
/// graceful shutdown waits for the send in progress.
const SMTP_TIMEOUT: Duration = Duration::from_secs(10);

/// Sends mail over SMTP with the workspace's settings.
#[derive(Debug, Default)]
pub struct SmtpMailer;

impl MailSender for SmtpMailer {
    fn send(&self, settings: &MailSettings, mail: &Mail) -> Result<(), String> {
        let host = settings.smtp_host.trim();
        let builder = match settings.tls {
            TlsMode::None => SmtpTransport::builder_dangerous(host),
            TlsMode::Starttls => SmtpTransport::starttls_relay(host).map_err(|e| format!("SMTP TLS setup: {e}"))?,
            TlsMode::Tls => SmtpTransport::relay(host).map_err(|e| format!("SMTP TLS setup: {e}"))?,
        };
        let mut builder = builder.port(settings.smtp_port).timeout(Some(SMTP_TIMEOUT));
        if let (Some(user), Some(password)) = (&settings.username, &settings.password) {
            builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
        }
        let from: Mailbox =
            settings.from.parse().map_err(|e| format!("the sender '{}' is not valid: {e}", settings.from))?;
        let to: Mailbox = mail.to.parse().map_err(|e| format!("the recipient '{}' is not valid: {e}", mail.to))?;
        let message = Message::builder()
            .from(from)
            .to(to)
            .subject(mail.subject.clone())
            .multipart(MultiPart::alternative_plain_html(mail.text.clone(), mail.html.clone()))
            .map_err(|e| format!("the message could not be built: {e}"))?;
        builder.build().send(&message).map(|_| ()).map_err(|e| format!("SMTP {host}:{}: {e}", settings.smtp_port))
    }
}

/// Runs one tick on a blocking thread.
pub async fn tick(scheduler: Arc<Scheduler>, clock: &Clock) -> anyhow::Result<TickReport> {
    let now = clock.now();
    let report = tokio::task::spawn_blocking(move || scheduler.tick(now)).await??;
    Ok(report)
}

/// Starts the loop; it ends when `stop` changes (or its sender is dropped).
pub fn spawn_loop(
    scheduler: Arc<Scheduler>,
    clock: Clock,
    settings: &SchedulerSettings,
    mut stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    let period = Duration::from_millis(settings.tick_ms.max(10));
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(period);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = interval.tick() => {}
                _ = stop.changed() => break,
            }
            match tick(scheduler.clone(), &clock).await {
                Ok(report) if report.jobs_retried + report.jobs_failed > 0 => {
                    tracing::warn!(retried = report.jobs_retried, failed = report.jobs_failed, "scheduler jobs failed");
                }
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "scheduler tick failed"),
            }
        }
    })
}

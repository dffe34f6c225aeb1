//! Email notifications: the workspace's mail settings, the kinds of mail,
//! and their text and HTML bodies. Sending is the server's (SMTP); mail waits
//! in the job queue as `email` jobs, so it survives restarts and failed sends
//! are retried with backoff and listed for admins.

use attest_engine::{Actor, WorkspaceEvent, WorkspaceEventBody};
use attest_store::{SettingsStore, StoreResult};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::html::escape;
use crate::schedule::parse_time_zone;

/// Settings keys in the store.
pub const MAIL_SETTING: &str = "mail";
pub const TIME_ZONE_SETTING: &str = "time_zone";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TlsMode {
    /// Plain SMTP (a relay on the same host or a test sink).
    None,
    /// Upgrade with STARTTLS; refuse to send if the server does not offer it.
    Starttls,
    /// TLS from the first byte (SMTPS, usually port 465).
    Tls,
}

/// How the workspace sends mail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailSettings {
    pub smtp_host: String,
    pub smtp_port: u16,
    pub tls: TlsMode,
    /// The sender address, e.g. `Attest <attest@example.com>`.
    pub from: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// Where people open Attest, for links in mail: `https://attest.example.com`.
    pub base_url: String,
}

impl MailSettings {
    pub fn check(&self) -> Result<()> {
        let host = self.smtp_host.trim();
        if host.is_empty() || host.len() > 253 || host.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(Error::BadInput("smtp_host must be a host name or address".into()));
        }
        if self.smtp_port == 0 {
            return Err(Error::BadInput("smtp_port must be 1-65535".into()));
        }
        if self.from.trim().is_empty() || !self.from.contains('@') || self.from.len() > 320 {
            return Err(Error::BadInput("from must be an email address, optionally with a name".into()));
        }
        let url = self.base_url.trim();
        if !(url.starts_with("http://") || url.starts_with("https://")) || url.len() > 2_000 {
            return Err(Error::BadInput("base_url must be an http:// or https:// address".into()));
        }
        if self.username.is_some() != self.password.is_some() {
            return Err(Error::BadInput("give both username and password, or neither".into()));
        }
        Ok(())
    }

    /// The full address of a path of this server (`/runs/…`).
    pub fn link(&self, path: &str) -> String {
        format!("{}{path}", self.base_url.trim().trim_end_matches('/'))
    }

    /// The address of a task in the web app.
    pub fn task_link(&self, run: &str, task: &str) -> String {
        self.link(&format!("/runs/{run}#task-{task}"))
    }

    pub fn run_link(&self, run: &str) -> String {
        self.link(&format!("/runs/{run}"))
    }
}

/// The mail settings, if mail is configured.
pub fn mail_settings(store: &dyn SettingsStore) -> Result<Option<MailSettings>> {
    match store.setting(MAIL_SETTING)? {
        Some(json) => Ok(Some(
            serde_json::from_str(&json)
                .map_err(|e| Error::Other(anyhow::anyhow!("the stored mail settings are unreadable: {e}")))?,
        )),
        None => Ok(None),
    }
}

/// Checks and stores the mail settings, recording who set them (never the password).
pub fn set_mail_settings(store: &dyn SettingsStore, by: &Actor, settings: &MailSettings, now: Timestamp) -> Result<()> {
    settings.check()?;
    let json = serde_json::to_string(settings).map_err(|e| Error::Other(e.into()))?;
    let body = WorkspaceEventBody::MailSettingsSet {
        smtp_host: settings.smtp_host.trim().to_string(),
        smtp_port: settings.smtp_port,
        from: settings.from.clone(),
        base_url: settings.base_url.clone(),
    };
    Ok(store.put_setting(&WorkspaceEvent { at: now, by: by.clone(), body }, MAIL_SETTING, &json)?)
}

/// The workspace's time zone (UTC until set).
pub fn time_zone(store: &dyn SettingsStore) -> Result<TimeZone> {
    match stored_time_zone(store)? {
        Some(name) => parse_time_zone(&name),
        None => Ok(TimeZone::UTC),
    }
}

fn stored_time_zone(store: &dyn SettingsStore) -> StoreResult<Option<String>> {
    Ok(store.setting(TIME_ZONE_SETTING)?.and_then(|json| serde_json::from_str::<String>(&json).ok()))
}

/// The workspace's time zone name.
pub fn time_zone_name(store: &dyn SettingsStore) -> Result<String> {
    Ok(stored_time_zone(store)?.unwrap_or_else(|| "UTC".into()))
}

/// The zone a person sees times in: their own choice, else the workspace's.
pub fn viewer_time_zone(store: &dyn SettingsStore, email: &str, workspace: &TimeZone) -> Result<TimeZone> {
    // A stored choice this build cannot read (a zone gone from the database) falls back to the workspace's.
    Ok(match store.person_time_zone(email)? {
        Some(name) => parse_time_zone(&name).unwrap_or_else(|_| workspace.clone()),
        None => workspace.clone(),
    })
}

/// Sets (checked, canonical name returned) or clears a person's own time zone.
pub fn set_person_time_zone(store: &dyn SettingsStore, email: &str, name: Option<&str>) -> Result<Option<String>> {
    let canonical = match name.map(str::trim).filter(|n| !n.is_empty()) {
        Some(n) => Some(parse_time_zone(n)?.iana_name().unwrap_or("UTC").to_string()),
        None => None,
    };
    store.set_person_time_zone(email, canonical.as_deref())?;
    Ok(canonical)
}

/// Checks and stores the workspace's time zone; returns its canonical name.
pub fn set_time_zone(store: &dyn SettingsStore, by: &Actor, name: &str, now: Timestamp) -> Result<(String, TimeZone)> {
    let tz = parse_time_zone(name)?;
    let canonical = tz.iana_name().unwrap_or("UTC").to_string();
    let json = serde_json::to_string(&canonical).map_err(|e| Error::Other(e.into()))?;
    let body = WorkspaceEventBody::TimeZoneSet { time_zone: canonical.clone() };
    store.put_setting(&WorkspaceEvent { at: now, by: by.clone(), body }, TIME_ZONE_SETTING, &json)?;
    Ok((canonical, tz))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MailKind {
    TaskAssigned,
    ApprovalRequested,
    Rework,
    DueSoon,
    Overdue,
    Escalated,
    RunCompleted,
}

impl MailKind {
    /// Essential mail is sent even to people who opted out of notifications.
    pub fn essential(self) -> bool {
        matches!(self, MailKind::Escalated | MailKind::ApprovalRequested)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            MailKind::TaskAssigned => "task_assigned",
            MailKind::ApprovalRequested => "approval_requested",
            MailKind::Rework => "rework",
            MailKind::DueSoon => "due_soon",
            MailKind::Overdue => "overdue",
            MailKind::Escalated => "escalated",
            MailKind::RunCompleted => "run_completed",
        }
    }
}

/// A message ready to send: the payload of an `email` job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mail {
    pub kind: MailKind,
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// What a message is about.
#[derive(Debug, Clone)]
pub struct MailContext<'a> {
    pub run_name: &'a str,
    pub task_name: Option<&'a str>,
    /// The due time in the workspace's zone, written out.
    pub due: Option<String>,
    /// A sentence of detail (who escalated, the rejection comment).
    pub detail: Option<String>,
    pub link: String,
}

/// Writes the subject and the text and HTML bodies of a message.
pub fn compose(kind: MailKind, to: &str, ctx: &MailContext<'_>) -> Mail {
    let task = ctx.task_name.unwrap_or("");
    let run = ctx.run_name;
    let (subject, lead) = match kind {
        MailKind::TaskAssigned => (format!("Task assigned: {task} ({run})"), format!("You have a task: {task}.")),
        MailKind::ApprovalRequested => {
            (format!("Approval requested: {task} ({run})"), format!("Your approval is requested: {task}."))
        }
        MailKind::Rework => {
            (format!("Sent back for rework: {task} ({run})"), format!("{task} was sent back to you for rework."))
        }
        MailKind::DueSoon => (format!("Due soon: {task} ({run})"), format!("{task} is due soon.")),
        MailKind::Overdue => (format!("Overdue: {task} ({run})"), format!("{task} is overdue.")),
        MailKind::Escalated => {
            (format!("Escalated: {task} ({run})"), format!("{task} is overdue and was escalated to you."))
        }
        MailKind::RunCompleted => (format!("Run completed: {run}"), format!("The run {run} is complete.")),
    };
    let mut lines = vec![lead];
    lines.push(format!("Run: {run}"));
    if let Some(due) = &ctx.due {
        lines.push(format!("Due: {due}"));
    }
    if let Some(detail) = &ctx.detail {
        lines.push(detail.clone());
    }
    let mut text = lines.join("\n");
    text.push_str(&format!("\n\nOpen it: {}\n\nYou get this mail from Attest.\n", ctx.link));
    let mut html = String::from("<!doctype html><html><body style=\"font-family: sans-serif\">");
    for line in &lines {
        html.push_str(&format!("<p>{}</p>", escape(line)));
    }
    html.push_str(&format!(
        "<p><a href=\"{}\">Open it in Attest</a></p><p style=\"color:#666\">You get this mail from Attest.</p></body></html>",
        escape(&ctx.link)
    ));
    Mail { kind, to: to.to_string(), subject, text, html }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_carry_the_link_and_escape_html() {
        let ctx = MailContext {
            run_name: "Review <Q1>",
            task_name: Some("Sign & file"),
            due: Some("2026-03-11 09:00 CET".into()),
            detail: None,
            link: "https://attest.example.com/runs/r1#task-sign".into(),
        };
        let mail = compose(MailKind::DueSoon, "ann@example.com", &ctx);
        assert_eq!(mail.subject, "Due soon: Sign & file (Review <Q1>)");
        assert!(mail.text.contains("Open it: https://attest.example.com/runs/r1#task-sign"));
        assert!(mail.html.contains("Review &lt;Q1&gt;"));
        assert!(mail.html.contains("href=\"https://attest.example.com/runs/r1#task-sign\""));
        assert!(!MailKind::DueSoon.essential());
        assert!(MailKind::Escalated.essential());
    }
}

//! Workspace events: changes to who is in the workspace and which template
//! versions exist. They are ledger entries like run events, so the audit
//! trail also proves who held which role when.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::actor::Actor;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkspaceEvent {
    pub at: Timestamp,
    pub by: Actor,
    #[serde(flatten)]
    pub body: WorkspaceEventBody,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum WorkspaceEventBody {
    WorkspaceCreated {
        name: String,
        /// The checkpoint signing key's verifier key, so the log names its own key.
        verifier_key: String,
    },
    UserAdded {
        email: String,
        name: String,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        admin: bool,
    },
    RoleGranted {
        email: String,
        role: String,
    },
    RoleRevoked {
        email: String,
        role: String,
    },
    TemplatePublished {
        key: String,
        version: u32,
        content_hash: String,
    },
    /// An API token was issued; its secret is never in the ledger.
    TokenCreated {
        id: String,
        name: String,
        /// `token` or `agent`.
        kind: String,
        access: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        roles: Vec<String>,
    },
    TokenRevoked {
        id: String,
    },
    /// A person's password was set or changed; the hash is never in the ledger.
    PasswordChanged {
        email: String,
    },
    /// An outbound webhook subscription was added; its secret is never in the ledger.
    WebhookCreated {
        id: String,
        url: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        template: Option<String>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        events: Vec<String>,
    },
    WebhookDeleted {
        id: String,
    },
    /// Attest stopped delivering to a subscription after persistent failure:
    /// the admin's notice that it needs attention.
    WebhookDisabled {
        id: String,
        reason: String,
    },
    /// A disabled subscription was enabled again; its pending deliveries resume.
    WebhookEnabled {
        id: String,
    },
    /// A template's inbound trigger URL was set (or replaced); the secret is never in the ledger.
    TriggerSet {
        template: String,
        run_as: String,
    },
    TriggerRemoved {
        template: String,
    },
    /// A schedule of recurring runs was added.
    ScheduleCreated {
        id: String,
        template: String,
        name_pattern: String,
        /// The rule as given: `{"cron": ...}` or `{"every": ..., "at": ...}`.
        rule: serde_json::Value,
        time_zone: String,
        starts_as: String,
        /// Each run is due this many (business) days after its start.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        due_days: Option<u32>,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        due_business_days: bool,
    },
    /// A schedule was paused: by a person, or by the system when its rule can no longer be read.
    SchedulePaused {
        id: String,
    },
    ScheduleResumed {
        id: String,
    },
    ScheduleDeleted {
        id: String,
    },
    /// The workspace's time zone (due dates, business days) was set.
    TimeZoneSet {
        time_zone: String,
    },
    /// The SMTP settings were set; the password is never in the ledger.
    MailSettingsSet {
        smtp_host: String,
        smtp_port: u16,
        from: String,
        base_url: String,
    },
}

impl WorkspaceEventBody {
    pub fn type_name(&self) -> &'static str {
        match self {
            WorkspaceEventBody::WorkspaceCreated { .. } => "workspace_created",
            WorkspaceEventBody::UserAdded { .. } => "user_added",
            WorkspaceEventBody::RoleGranted { .. } => "role_granted",
            WorkspaceEventBody::RoleRevoked { .. } => "role_revoked",
            WorkspaceEventBody::TemplatePublished { .. } => "template_published",
            WorkspaceEventBody::TokenCreated { .. } => "token_created",
            WorkspaceEventBody::TokenRevoked { .. } => "token_revoked",
            WorkspaceEventBody::PasswordChanged { .. } => "password_changed",
            WorkspaceEventBody::WebhookCreated { .. } => "webhook_created",
            WorkspaceEventBody::WebhookDeleted { .. } => "webhook_deleted",
            WorkspaceEventBody::WebhookDisabled { .. } => "webhook_disabled",
            WorkspaceEventBody::WebhookEnabled { .. } => "webhook_enabled",
            WorkspaceEventBody::TriggerSet { .. } => "trigger_set",
            WorkspaceEventBody::TriggerRemoved { .. } => "trigger_removed",
            WorkspaceEventBody::ScheduleCreated { .. } => "schedule_created",
            WorkspaceEventBody::SchedulePaused { .. } => "schedule_paused",
            WorkspaceEventBody::ScheduleResumed { .. } => "schedule_resumed",
            WorkspaceEventBody::ScheduleDeleted { .. } => "schedule_deleted",
            WorkspaceEventBody::TimeZoneSet { .. } => "time_zone_set",
            WorkspaceEventBody::MailSettingsSet { .. } => "mail_settings_set",
        }
    }
}

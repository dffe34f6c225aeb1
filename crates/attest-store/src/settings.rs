//! Workspace settings (time zone, mail) and per-person mail preferences:
//! configuration, kept outside the ledger; a change of a workspace setting
//! appends a workspace event saying who changed it (never a secret).

use attest_engine::WorkspaceEvent;

use crate::StoreResult;

pub trait SettingsStore: Send + Sync + std::fmt::Debug {
    /// A setting's JSON text, if set.
    fn setting(&self, key: &str) -> StoreResult<Option<String>>;
    /// Sets a workspace setting and appends its event, in one transaction.
    fn put_setting(&self, event: &WorkspaceEvent, key: &str, json: &str) -> StoreResult<()>;
    /// Whether a person opted out of non-essential mail.
    fn mail_opt_out(&self, email: &str) -> StoreResult<bool>;
    /// Not-found if the person does not exist.
    fn set_mail_opt_out(&self, email: &str, opt_out: bool) -> StoreResult<()>;
    /// The time zone (IANA name) a person chose to see times in, if any.
    fn person_time_zone(&self, email: &str) -> StoreResult<Option<String>>;
    /// Sets, or with `None` clears, a person's time zone; not-found if the
    /// person does not exist. A preference, like the mail opt-out.
    fn set_person_time_zone(&self, email: &str, zone: Option<&str>) -> StoreResult<()>;
}

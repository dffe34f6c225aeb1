//! Workspace settings (time zone, mail) and per-person mail preferences:
//! configuration, not facts of the ledger.

use crate::StoreResult;

pub trait SettingsStore: Send + Sync + std::fmt::Debug {
    /// A setting's JSON text, if set.
    fn setting(&self, key: &str) -> StoreResult<Option<String>>;
    fn put_setting(&self, key: &str, json: &str) -> StoreResult<()>;
    /// Whether a person opted out of non-essential mail.
    fn mail_opt_out(&self, email: &str) -> StoreResult<bool>;
    /// Not-found if the person does not exist.
    fn set_mail_opt_out(&self, email: &str, opt_out: bool) -> StoreResult<()>;
}

//! Credential use cases: the changes to passwords and API tokens that belong
//! in the audit trail. The secrets themselves never reach the ledger: a
//! password arrives here already hashed, a token as its hash.

use attest_engine::{Actor, WorkspaceEvent, WorkspaceEventBody};
use attest_store::{AuthStore, CredentialChange, PasswordRow, TokenRow};
use jiff::Timestamp;

use crate::error::{Error, Result};
use crate::workspace::{Workspace, parse_email, parse_role};

/// Access levels a token may be scoped to.
pub const ACCESS_LEVELS: &[&str] = &["admin", "process-owner", "member", "auditor"];

impl Workspace {
    /// Sets a person's password hash (argon2id PHC) and records that it changed.
    pub fn set_password(
        &self,
        auth: &dyn AuthStore,
        by: &Actor,
        email: &str,
        phc: String,
        must_change: bool,
        now: Timestamp,
    ) -> Result<()> {
        let email = parse_email(email)?;
        if self.store().user(&email)?.is_none() {
            return Err(Error::NotFound(format!("no person with email {email} in this workspace")));
        }
        let event = WorkspaceEvent {
            at: now,
            by: by.clone(),
            body: WorkspaceEventBody::PasswordChanged { email: email.clone() },
        };
        let row = PasswordRow { email, phc, must_change, updated_at: now };
        auth.write_credential(Some(&event), &CredentialChange::SetPassword(row))?;
        Ok(())
    }

    /// Issues an API token (its hash is given) and records it in the ledger.
    pub fn create_token(&self, auth: &dyn AuthStore, by: &Actor, token: TokenRow, now: Timestamp) -> Result<()> {
        if !ACCESS_LEVELS.contains(&token.access.as_str()) {
            return Err(Error::BadInput(format!(
                "'{}' is not an access level: use one of {}",
                token.access,
                ACCESS_LEVELS.join(", ")
            )));
        }
        if token.kind != "token" && token.kind != "agent" {
            return Err(Error::BadInput(format!("'{}' is not a token kind: use token or agent", token.kind)));
        }
        let name = token.name.trim();
        if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
            return Err(Error::BadInput("a token name must be 1 to 200 printable characters".into()));
        }
        if token.roles.len() > 50 {
            return Err(Error::BadInput("a token may hold at most 50 roles".into()));
        }
        for r in &token.roles {
            parse_role(r)?;
        }
        let event = WorkspaceEvent {
            at: now,
            by: by.clone(),
            body: WorkspaceEventBody::TokenCreated {
                id: token.id.clone(),
                name: name.to_string(),
                kind: token.kind.clone(),
                access: token.access.clone(),
                roles: token.roles.clone(),
            },
        };
        auth.write_credential(Some(&event), &CredentialChange::CreateToken(token))?;
        Ok(())
    }

    /// Revokes an API token and records it in the ledger.
    pub fn revoke_token(&self, auth: &dyn AuthStore, by: &Actor, id: &str, now: Timestamp) -> Result<()> {
        let event =
            WorkspaceEvent { at: now, by: by.clone(), body: WorkspaceEventBody::TokenRevoked { id: id.to_string() } };
        auth.write_credential(Some(&event), &CredentialChange::RevokeToken { id: id.to_string(), at: now })?;
        Ok(())
    }
}

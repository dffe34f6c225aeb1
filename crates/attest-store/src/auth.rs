//! Credentials: password hashes, sessions, API tokens and idempotency keys.
//!
//! Kept apart from [`crate::Store`] because credentials are secrets, not
//! facts of the audit trail: they can be rotated and expire. Changes that
//! matter for audit (a token created or revoked, a password changed) are
//! written together with a workspace event in the same transaction.

use attest_engine::WorkspaceEvent;
use jiff::Timestamp;
use serde::Serialize;

use crate::StoreResult;

/// A person's password, as an argon2id PHC string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordRow {
    pub email: String,
    pub phc: String,
    /// Set for a one-time password: the person must choose a new one.
    pub must_change: bool,
    pub updated_at: Timestamp,
}

/// A login session; only the SHA-256 of its cookie value is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    pub id_hash: String,
    pub email: String,
    /// The CSRF token a browser must echo on unsafe requests.
    pub csrf: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

/// An API token for an integration or an agent; only its hash is stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenRow {
    pub id: String,
    #[serde(skip)]
    pub hash: String,
    pub name: String,
    /// `token` or `agent`.
    pub kind: String,
    /// The workspace access level: `admin`, `process-owner`, `member` or `auditor`.
    pub access: String,
    /// Template roles the token acts under.
    pub roles: Vec<String>,
    pub created_by: String,
    pub created_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
}

/// A stored response to a POST with an `Idempotency-Key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotentResponse {
    /// A hash of method, path and body: a key reused for another request is refused.
    pub fingerprint: String,
    pub status: u16,
    pub content_type: String,
    pub body: Vec<u8>,
}

/// A credential change, written with its workspace event when it has one.
#[derive(Debug, Clone, PartialEq)]
pub enum CredentialChange {
    SetPassword(PasswordRow),
    CreateToken(TokenRow),
    /// Fails with not-found unless the token exists and is not revoked yet.
    RevokeToken {
        id: String,
        at: Timestamp,
    },
}

pub trait AuthStore: Send + Sync + std::fmt::Debug {
    /// Applies a credential change and appends its event to the ledger, in one transaction.
    fn write_credential(&self, event: Option<&WorkspaceEvent>, change: &CredentialChange) -> StoreResult<()>;

    fn password(&self, email: &str) -> StoreResult<Option<PasswordRow>>;

    fn put_session(&self, session: &SessionRow) -> StoreResult<()>;
    fn session(&self, id_hash: &str) -> StoreResult<Option<SessionRow>>;
    fn delete_session(&self, id_hash: &str) -> StoreResult<()>;
    /// Ends every session of a person (after a password change).
    fn delete_sessions_of(&self, email: &str) -> StoreResult<()>;

    fn token_by_hash(&self, hash: &str) -> StoreResult<Option<TokenRow>>;
    fn tokens(&self) -> StoreResult<Vec<TokenRow>>;
    fn touch_token(&self, id: &str, at: Timestamp) -> StoreResult<()>;

    fn idempotent_response(&self, principal: &str, key: &str) -> StoreResult<Option<IdempotentResponse>>;
    /// Keeps the first response stored for a key; later ones are ignored.
    fn put_idempotent_response(
        &self,
        principal: &str,
        key: &str,
        response: &IdempotentResponse,
        at: Timestamp,
    ) -> StoreResult<()>;
}

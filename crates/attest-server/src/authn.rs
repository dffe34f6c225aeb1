//! Authentication: passwords (argon2id), session cookies with a CSRF token,
//! API tokens (stored as SHA-256), and login rate limiting.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use attest_engine::{Actor, ActorKind};
use axum::http::HeaderMap;
use base64::Engine as _;
use rand::RngCore as _;
use sha2::Digest as _;

use crate::App;
use crate::access::{Access, Credential, Principal};
use crate::problem::Problem;

pub const SESSION_COOKIE: &str = "attest_session";
pub const CSRF_HEADER: &str = "x-csrf-token";
pub const SESSION_HOURS: i64 = 12;
pub const MIN_PASSWORD_CHARS: usize = 12;
pub const MAX_PASSWORD_CHARS: usize = 1024;
/// How long a resolved credential is trusted before it is looked up again.
const PRINCIPAL_TTL: Duration = Duration::from_secs(10);

fn argon2() -> Argon2<'static> {
    // OWASP's argon2id baseline: 19 MiB, 2 passes, 1 lane.
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

pub fn hash_password(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    argon2().hash_password(password.as_bytes(), &salt).map(|h| h.to_string()).map_err(|e| anyhow::anyhow!("{e}"))
}

pub fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| argon2().verify_password(password.as_bytes(), &h).is_ok())
}

pub fn random_secret(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}

/// A one-time password a person must change on first login.
pub fn one_time_password() -> String {
    random_secret(15)
}

pub fn sha256_hex(s: &str) -> String {
    hex::encode(sha2::Sha256::digest(s.as_bytes()))
}

pub fn check_new_password(p: &str) -> Result<(), Problem> {
    let n = p.chars().count();
    if !(MIN_PASSWORD_CHARS..=MAX_PASSWORD_CHARS).contains(&n) {
        return Err(Problem::bad_request(format!(
            "a password must be {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters"
        )));
    }
    Ok(())
}

/// Failed logins per email: after five in fifteen minutes, wait.
#[derive(Debug, Default)]
pub struct LoginLimiter {
    failures: Mutex<HashMap<String, Vec<Instant>>>,
}

const MAX_FAILURES: usize = 5;
const FAILURE_WINDOW: Duration = Duration::from_secs(15 * 60);

impl LoginLimiter {
    /// Seconds to wait, if the email is locked out now.
    pub fn check(&self, email: &str) -> Option<u64> {
        let mut map = self.failures.lock().ok()?;
        let list = map.get_mut(email)?;
        list.retain(|t| t.elapsed() < FAILURE_WINDOW);
        if list.len() >= MAX_FAILURES {
            let oldest = list.first().copied()?;
            Some(FAILURE_WINDOW.saturating_sub(oldest.elapsed()).as_secs().max(1))
        } else {
            None
        }
    }

    pub fn fail(&self, email: &str) {
        if let Ok(mut map) = self.failures.lock() {
            if map.len() > 100_000 {
                map.clear();
            }
            map.entry(email.to_string()).or_default().push(Instant::now());
        }
    }

    pub fn succeed(&self, email: &str) {
        if let Ok(mut map) = self.failures.lock() {
            map.remove(email);
        }
    }
}

fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get_all(axum::http::header::COOKIE).iter().filter_map(|v| v.to_str().ok()).find_map(|line| {
        line.split(';').map(str::trim).find_map(|kv| kv.strip_prefix(name).and_then(|rest| rest.strip_prefix('=')))
    })
}

/// The `Set-Cookie` value for a new session.
pub fn session_cookie(app: &App, headers: &HeaderMap, id: &str) -> String {
    let secure = app.config.secure_cookies
        || headers.get("x-forwarded-proto").and_then(|v| v.to_str().ok()).is_some_and(|v| v == "https");
    format!(
        "{SESSION_COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
        SESSION_HOURS * 3600,
        if secure { "; Secure" } else { "" }
    )
}

pub fn clear_cookie() -> String {
    format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
}

/// The caller from memory alone, without touching the store: `None` when a
/// lookup (or a token's last-used update) is needed.
pub fn authenticate_cached(app: &App, headers: &HeaderMap) -> Option<Result<Option<Principal>, Problem>> {
    let key = if let Some(auth) = headers.get(axum::http::header::AUTHORIZATION) {
        let token = auth.to_str().ok()?.strip_prefix("Bearer ")?.trim();
        sha256_hex(token)
    } else if let Some(id) = cookie_value(headers, SESSION_COOKIE).filter(|v| !v.is_empty() && v.len() <= 200) {
        format!("s:{}", sha256_hex(id))
    } else {
        return Some(Ok(None));
    };
    let map = app.principals.lock().ok()?;
    let (p, at) = map.get(&key)?;
    if at.elapsed() >= PRINCIPAL_TTL {
        return None;
    }
    if let Credential::Token { id } = &p.credential {
        let touched = app.token_touched.lock().ok()?;
        if touched.get(id).is_none_or(|t| t.elapsed() > Duration::from_secs(60)) {
            return None;
        }
    }
    Some(Ok(Some(p.clone())))
}

/// Who is calling, from a bearer token or a session cookie. `Ok(None)` is
/// anonymous; a credential that is present but bad is an error.
pub fn authenticate(app: &App, headers: &HeaderMap) -> Result<Option<Principal>, Problem> {
    if let Some(auth) = headers.get(axum::http::header::AUTHORIZATION) {
        let value = auth.to_str().map_err(|_| Problem::unauthorized("the Authorization header is not readable"))?;
        let token = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty() && t.len() <= 200)
            .ok_or_else(|| Problem::unauthorized("use 'Authorization: Bearer TOKEN'"))?;
        let hash = sha256_hex(token);
        let principal = cached(app, &hash, || token_principal(app, &hash))?;
        touch_token(app, &principal);
        return Ok(Some(principal));
    }
    if let Some(id) = cookie_value(headers, SESSION_COOKIE).filter(|v| !v.is_empty() && v.len() <= 200) {
        let hash = sha256_hex(id);
        let principal = cached(app, &format!("s:{hash}"), || session_principal(app, &hash))?;
        return Ok(Some(principal));
    }
    Ok(None)
}

fn cached(app: &App, key: &str, load: impl FnOnce() -> Result<Principal, Problem>) -> Result<Principal, Problem> {
    if let Ok(map) = app.principals.lock()
        && let Some((p, at)) = map.get(key)
        && at.elapsed() < PRINCIPAL_TTL
    {
        return Ok(p.clone());
    }
    let p = load()?;
    if let Ok(mut map) = app.principals.lock() {
        if map.len() > 10_000 {
            map.clear();
        }
        map.insert(key.to_string(), (p.clone(), Instant::now()));
    }
    Ok(p)
}

fn token_principal(app: &App, hash: &str) -> Result<Principal, Problem> {
    let row = app.auth.token_by_hash(hash)?.ok_or_else(|| Problem::unauthorized("unknown API token"))?;
    if row.revoked_at.is_some() {
        return Err(Problem::unauthorized("this API token was revoked"));
    }
    let access =
        Access::parse(&row.access).ok_or_else(|| Problem::internal("a stored token has an unknown access level"))?;
    let kind = if row.kind == "agent" { ActorKind::Agent } else { ActorKind::Token };
    let actor = Actor { kind, id: row.id.clone(), roles: row.roles.clone(), admin: access == Access::Admin };
    Ok(Principal { actor, access, credential: Credential::Token { id: row.id }, must_change_password: false })
}

fn session_principal(app: &App, hash: &str) -> Result<Principal, Problem> {
    let session = app.auth.session(hash)?.ok_or_else(|| Problem::unauthorized("the session ended; sign in again"))?;
    if session.expires_at < app.now() {
        return Err(Problem::unauthorized("the session expired; sign in again"));
    }
    let user = app
        .read
        .store()
        .user(&session.email)?
        .ok_or_else(|| Problem::unauthorized("the session's person is no longer in the workspace"))?;
    let must_change = app.auth.password(&user.email)?.is_some_and(|p| p.must_change);
    let access = Access::of_person(user.admin, &user.roles);
    let actor = Actor { kind: ActorKind::Person, id: user.email, roles: user.roles, admin: user.admin };
    Ok(Principal {
        actor,
        access,
        credential: Credential::Session { id_hash: session.id_hash, csrf: session.csrf },
        must_change_password: must_change,
    })
}

/// Records a token's last use, at most once a minute per token.
fn touch_token(app: &App, p: &Principal) {
    let Credential::Token { id } = &p.credential else { return };
    let due = match app.token_touched.lock() {
        Ok(mut m) => {
            let due = m.get(id).is_none_or(|t| t.elapsed() > Duration::from_secs(60));
            if due {
                m.insert(id.clone(), Instant::now());
            }
            due
        }
        Err(_) => false,
    };
    if due && let Err(e) = app.auth.touch_token(id, app.now()) {
        tracing::warn!(error = %e, "could not record a token's last use");
    }
}

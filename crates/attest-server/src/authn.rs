//! Authentication: passwords (argon2id), session cookies with a CSRF token,
//! API tokens (stored as SHA-256), login rate limiting, and the sign-in
//! form's CSRF token (a signed double-submit cookie).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use attest_engine::{Actor, ActorKind};
use axum::http::HeaderMap;
use base64::Engine as _;
use hmac::{Hmac, Mac as _};
use jiff::Timestamp;
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
/// The cookie that carries the sign-in form's CSRF token (before any session).
pub const LOGIN_CSRF_COOKIE: &str = "attest_login_csrf";
/// How long a sign-in form may stay open before its token expires.
const LOGIN_FORM_HOURS: i64 = 12;
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

type HmacSha256 = Hmac<sha2::Sha256>;

/// The key that signs sign-in form tokens. It is derived from the workspace's
/// signing key, so every process serving the same data directory accepts the
/// others' forms; without a signing key it is random, and open forms expire
/// when the process restarts.
pub fn login_form_key(signer: Option<&attest_ledger::note::SignerKey>) -> [u8; 32] {
    match signer {
        Some(key) => {
            let mut h = sha2::Sha256::new();
            h.update(b"attest sign-in form csrf v1\n");
            h.update(key.to_bytes());
            h.finalize().into()
        }
        None => {
            let mut key = [0u8; 32];
            rand::rngs::OsRng.fill_bytes(&mut key);
            key
        }
    }
}

fn login_mac(key: &[u8; 32], issued_ms: i64, nonce: &str) -> String {
    // A 32-byte key is always a valid HMAC key.
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(format!("login-csrf\n{issued_ms}.{nonce}").as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// A new sign-in form token: issue time, random nonce and their signature.
pub fn new_login_token(app: &App, now: Timestamp) -> String {
    let issued_ms = now.as_millisecond();
    let nonce = random_secret(16);
    format!("{issued_ms}.{nonce}.{}", login_mac(&app.login_key, issued_ms, &nonce))
}

/// Whether a sign-in form token is one this server signed and has not expired.
fn login_token_valid(app: &App, token: &str, now: Timestamp) -> bool {
    let mut parts = token.splitn(3, '.');
    let (Some(issued), Some(nonce), Some(mac)) = (parts.next(), parts.next(), parts.next()) else { return false };
    let Ok(issued_ms) = issued.parse::<i64>() else { return false };
    let age_ms = now.as_millisecond().saturating_sub(issued_ms);
    (0..LOGIN_FORM_HOURS * 3_600_000).contains(&age_ms)
        && constant_time_eq(login_mac(&app.login_key, issued_ms, nonce).as_bytes(), mac.as_bytes())
}

/// The sign-in form token the browser already holds, if it is still good.
pub fn current_login_token(app: &App, headers: &HeaderMap, now: Timestamp) -> Option<String> {
    cookie_value(headers, LOGIN_CSRF_COOKIE).filter(|t| login_token_valid(app, t, now)).map(str::to_string)
}

/// Whether a sign-in post carries the same valid token in its form and its
/// cookie. Another site can make a browser post the form, but it can neither
/// read the cookie nor sign a token of its own.
pub fn login_csrf_ok(app: &App, headers: &HeaderMap, sent: &str, now: Timestamp) -> bool {
    current_login_token(app, headers, now).is_some_and(|t| constant_time_eq(t.as_bytes(), sent.as_bytes()))
}

/// The `Set-Cookie` value that hands the browser a sign-in form token.
pub fn login_csrf_cookie(app: &App, headers: &HeaderMap, token: &str) -> String {
    format!(
        "{LOGIN_CSRF_COOKIE}={token}; Path=/login; HttpOnly; SameSite=Strict; Max-Age={}{}",
        LOGIN_FORM_HOURS * 3600,
        if secure(app, headers) { "; Secure" } else { "" }
    )
}

/// The `Set-Cookie` value that drops the sign-in form token once signed in.
pub fn clear_login_csrf_cookie() -> String {
    format!("{LOGIN_CSRF_COOKIE}=; Path=/login; HttpOnly; SameSite=Strict; Max-Age=0")
}

pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn secure(app: &App, headers: &HeaderMap) -> bool {
    app.config.secure_cookies
        || headers.get("x-forwarded-proto").and_then(|v| v.to_str().ok()).is_some_and(|v| v == "https")
}

fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get_all(axum::http::header::COOKIE).iter().filter_map(|v| v.to_str().ok()).find_map(|line| {
        line.split(';').map(str::trim).find_map(|kv| kv.strip_prefix(name).and_then(|rest| rest.strip_prefix('=')))
    })
}

/// The `Set-Cookie` value for a new session.
pub fn session_cookie(app: &App, headers: &HeaderMap, id: &str) -> String {
    format!(
        "{SESSION_COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
        SESSION_HOURS * 3600,
        if secure(app, headers) { "; Secure" } else { "" }
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
    let actor =
        Actor { kind, id: row.id.as_str().into(), roles: row.roles.as_slice().into(), admin: access == Access::Admin };
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
    let actor = Actor { kind: ActorKind::Person, id: user.email.into(), roles: user.roles.into(), admin: user.admin };
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

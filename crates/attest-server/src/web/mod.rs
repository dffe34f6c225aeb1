//! The web app: server-rendered HTML pages for people in a browser.
//!
//! Every page works without JavaScript; `assets/app.js` only enhances (it
//! shows conditional fields as values change). No CDN, no external fonts.
//!
//! # How a page is served
//!
//! 1. **Route table.** Every page has an entry in the `page!` block at the end
//!    of [`crate::routes::ROUTES`] naming its [`Action`](crate::access::Action).
//!    The guard (`guard.rs`) authenticates the caller, asks
//!    [`access::authorize`](crate::access::authorize), and for a page answers a
//!    refusal as HTML: not signed in → `303` to `/login?next=…`; on a one-time
//!    password → `303` to `/account/password`; otherwise an error page with the
//!    status. A route without an entry is never served. Page routes are not in
//!    the OpenAPI document.
//! 2. **CSRF.** A signed-in POST must carry the session's token: pages put it
//!    in a hidden `csrf` field (`{% include "csrf.html" %}` inside the
//!    `<form>`, urlencoded or multipart). The guard checks it before the
//!    handler runs.
//! 3. **Handler.** Add the axum route in [`router`] (in your area's file, one
//!    file per area: `auth.rs`, `home.rs`, `runs.rs`, `audit.rs`, `admin.rs`,
//!    `schedules.rs`, `hooks.rs`).
//!    Take `Extension<Caller>` and use [`Viewer::of`] for the signed-in person.
//!    Read with [`blocking`] on `app.read`; send run commands through
//!    [`crate::api::submit`] (the group-commit writer). Never re-implement an
//!    engine rule: show the engine's refusal.
//! 4. **Template.** An askama struct with `chrome: Chrome` (from
//!    [`Chrome::load`]) whose file under `templates/` starts with
//!    `{% extends "base.html" %}` and fills `{% block title %}` and
//!    `{% block content %}`. Answer it with [`page`] (or [`page_with`] for a
//!    non-200 status, such as 422 for a form with messages).
//! 5. **Forms.** Parse the body with [`FormBody`]. On bad input, re-render the
//!    same page with status 422, the values as typed, and a message beside
//!    each field ([`FieldErrors`]): `{% let err_key = "NAME" %}` then
//!    `{% include "field_error.html" %}` renders one with id `err-NAME`; point
//!    the input's `aria-describedby` at it and give it `autofocus`. Store
//!    nothing. On success, redirect (`303`) with [`see_other`] to a page that
//!    shows the result (`?ok=…` flashes a notice from [`flash`]).
//! 6. **Look.** Reuse the classes of `assets/app.css` (`panel`, `page-head`,
//!    `field`, `badge`, `table-wrap`, `actions`, `empty`, `notice`); the run
//!    page's diagram slot is `runs::run_diagram`.
//! 7. **Time.** Use `app.now()`, the server's clock (`Config::clock`), so
//!    tests that move a manual clock see pages agree with the scheduler.
//!
//! Errors in handlers are [`WebError`] (a `Problem` shown as a page), so
//! `?` works on core and store results.

pub(crate) mod account;
mod admin;
mod assets;
mod audit;
mod auth;
mod drafts;
mod editor_form;
mod home;
mod hooks;
mod metrics;
mod runs;
mod schedules;
mod templates;

use std::collections::BTreeMap;
use std::sync::Arc;

use askama::Template;
use axum::Router;
use axum::body::Body;
use axum::extract::{FromRequest, Multipart, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;

use crate::App;
use crate::access::{Access, Credential, Principal};
use crate::guard::Caller;
use crate::problem::Problem;

pub(crate) use crate::api::blocking;

/// The page routes; the guard layer is added by the caller (`api::router`).
pub fn router(upload_limit: usize) -> Router<Arc<App>> {
    let r = Router::new();
    let r = auth::routes(r);
    let r = account::routes(r);
    let r = assets::routes(r);
    let r = home::routes(r);
    let r = runs::routes(r, upload_limit);
    let r = audit::routes(r);
    let r = templates::routes(r);
    let r = drafts::routes(r);
    let r = metrics::routes(r);
    let r = schedules::routes(r);
    let r = hooks::routes(r);
    admin::routes(r)
}

// ----- the signed-in person and the page chrome -----

/// The signed-in caller as pages see them.
#[derive(Debug, Clone)]
pub struct Viewer {
    pub principal: Principal,
    pub csrf: String,
}

impl Viewer {
    pub fn of(caller: &Caller) -> Result<Viewer, WebError> {
        let principal = caller.principal()?.clone();
        let csrf = match &principal.credential {
            Credential::Session { csrf, .. } => csrf.clone(),
            Credential::Token { .. } => String::new(),
        };
        Ok(Viewer { principal, csrf })
    }
}

/// What the layout shows around every page: who is signed in, the navigation
/// they may use, the count of their open work, and a notice.
#[derive(Debug, Clone, Default)]
pub struct Chrome {
    pub signed_in: bool,
    pub email: String,
    pub access: &'static str,
    pub csrf: String,
    /// Which navigation entry is current: `home`, `runs`, `templates`, `schedules`, `metrics`, `audit`, `admin`,
    /// `account`.
    pub nav: &'static str,
    pub inbox_count: usize,
    pub can_start: bool,
    pub can_audit: bool,
    pub can_admin: bool,
    pub must_change_password: bool,
    pub notice: Option<String>,
}

impl Chrome {
    /// The chrome for a signed-in viewer; reads their inbox size.
    pub async fn load(app: &Arc<App>, viewer: &Viewer, nav: &'static str) -> Result<Chrome, WebError> {
        let p = &viewer.principal;
        let count = if p.must_change_password {
            0
        } else {
            let (a, actor) = (app.clone(), p.actor.clone());
            blocking(move || Ok(a.read.inbox(&actor)?.len())).await?
        };
        Ok(Self::counted(viewer, nav, count))
    }

    /// The chrome when the page already read the viewer's inbox size.
    pub fn counted(viewer: &Viewer, nav: &'static str, inbox_count: usize) -> Chrome {
        let p = &viewer.principal;
        Chrome {
            signed_in: true,
            email: p.actor.id.to_string(),
            access: p.access.as_str(),
            csrf: viewer.csrf.clone(),
            nav,
            inbox_count,
            can_start: matches!(p.access, Access::Admin | Access::ProcessOwner | Access::Member),
            can_audit: matches!(p.access, Access::Admin | Access::Auditor),
            can_admin: p.access == Access::Admin,
            must_change_password: p.must_change_password,
            notice: None,
        }
    }

    /// The chrome for someone not signed in.
    pub fn anonymous() -> Chrome {
        Chrome::default()
    }

    pub fn with_notice(mut self, notice: Option<String>) -> Chrome {
        self.notice = notice;
        self
    }

    /// Whether `nav` is the current entry, for `aria-current`.
    pub fn current(&self, nav: &str) -> &'static str {
        if self.nav == nav { "page" } else { "false" }
    }
}

/// The `?ok=` key a form's redirect carries, naming the notice to show.
#[derive(serde::Deserialize)]
pub struct OkQuery {
    pub ok: Option<String>,
}

/// The notice for a `?ok=` key after a successful form; unknown keys show nothing,
/// so a link cannot put arbitrary words on a page.
pub fn flash(key: Option<&str>) -> Option<String> {
    let text = match key? {
        "saved" => "Saved.",
        "unchanged" => "Nothing to save: no value changed.",
        "completed" => "Task completed.",
        "approved" => "Approved.",
        "rejected" => "Rejected: the approved tasks are open again for rework.",
        "commented" => "Comment added.",
        "uploaded" => "Evidence uploaded.",
        "started" => "Run started.",
        "cancelled" => "Run cancelled.",
        "password" => "Password changed.",
        "signed-out" => "You are signed out.",
        "person" => "Person added.",
        "role-granted" => "Role granted.",
        "role-revoked" => "Role revoked.",
        "token-revoked" => "Token revoked.",
        _ => return None,
    };
    Some(text.to_string())
}

// ----- responses -----

/// Answers a rendered page with status 200.
pub fn page(t: &impl Template) -> Response {
    page_with(StatusCode::OK, t)
}

/// Answers a rendered page with a status (422 for a form with messages).
pub fn page_with(status: StatusCode, t: &impl Template) -> Response {
    match t.render() {
        Ok(html) => html_response(status, html),
        Err(e) => {
            tracing::error!(error = %e, "a page failed to render");
            html_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                "<!doctype html><title>Error</title><p>This page failed to render; the server log has the details."
                    .to_string(),
            )
        }
    }
}

fn html_response(status: StatusCode, html: String) -> Response {
    let mut res = (status, html).into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    // Pages show one person's view of live state: never cache them.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; style-src 'self'; frame-ancestors 'none'; form-action 'self'",
        ),
    );
    res
}

/// A `303 See Other` to a path of this site.
/// Every template's key and name, for a form's choice of template. It reads
/// the store: call it off the async thread.
pub fn template_choices(app: &App) -> Result<Vec<(String, String)>, attest_store::StoreError> {
    Ok(app.read.store().templates()?.into_iter().map(|t| (t.key, t.name)).collect())
}

pub fn see_other(location: &str) -> Response {
    let mut res = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    res
}

/// A page-safe redirect target: only a path of this site.
pub fn local_path(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') && n.len() <= 2000 => n.to_string(),
        _ => "/".to_string(),
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    chrome: Chrome,
    status: u16,
    title: String,
    detail: String,
}

/// An error shown as a page.
#[derive(Debug)]
pub struct WebError(pub Problem);

impl From<Problem> for WebError {
    fn from(p: Problem) -> Self {
        WebError(p)
    }
}

impl From<attest_core::Error> for WebError {
    fn from(e: attest_core::Error) -> Self {
        WebError(Problem::from(e))
    }
}

impl From<attest_store::StoreError> for WebError {
    fn from(e: attest_store::StoreError) -> Self {
        WebError(Problem::from(e))
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        error_page(self.0)
    }
}

pub type WebResult<T = Response> = Result<T, WebError>;

fn error_page(p: Problem) -> Response {
    let status = p.status_code();
    let (title, detail) = match (status.as_u16(), p.kind.as_str()) {
        (_, "urn:attest:problem:csrf") => (
            "This form has expired".to_string(),
            "The form was not sent with this session's security token. Go back, reload the page and try again."
                .to_string(),
        ),
        (403, _) => ("Not allowed".to_string(), capitalise(&p.detail)),
        (404, _) => ("Not found".to_string(), capitalise(&p.detail)),
        _ => (p.title.clone(), capitalise(&p.detail)),
    };
    page_with(status, &ErrorPage { chrome: Chrome::anonymous(), status: status.as_u16(), title, detail })
}

/// How the guard answers a page it refuses: a redirect to sign in, to the
/// password form, or an error page.
pub fn refusal(problem: Problem, req: &Request) -> Response {
    match problem.status {
        401 => {
            let here = req.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/");
            let next = if req.method() == axum::http::Method::GET && here != "/" {
                format!("/login?next={}", urlencode(here))
            } else {
                "/login".to_string()
            };
            let mut res = see_other(&next);
            if let Ok(v) = HeaderValue::from_str(&crate::authn::clear_cookie()) {
                res.headers_mut().insert(header::SET_COOKIE, v);
            }
            res
        }
        403 if problem.detail.contains("one-time password") => see_other("/account/password"),
        _ => error_page(problem),
    }
}

/// An HTML 404 for paths outside the API.
pub fn not_found() -> Response {
    error_page(Problem::not_found("there is no page at this address"))
}

pub fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

pub fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

// ----- forms -----

/// An urlencoded form body as ordered pairs (a name may repeat: checkboxes).
#[derive(Debug, Clone, Default)]
pub struct FormBody(pub Vec<(String, String)>);

/// Most pairs a form may send.
const MAX_FORM_PAIRS: usize = 1000;

impl FormBody {
    pub fn parse(bytes: &[u8]) -> Result<FormBody, Problem> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(bytes)
            .map_err(|e| Problem::bad_request(format!("the form could not be read: {e}")))?;
        if pairs.len() > MAX_FORM_PAIRS {
            return Err(Problem::too_large(format!("a form sends at most {MAX_FORM_PAIRS} values")));
        }
        Ok(FormBody(pairs))
    }

    /// The first value of a name.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// The first value, trimmed, or empty.
    pub fn text(&self, name: &str) -> String {
        self.get(name).unwrap_or("").trim().to_string()
    }

    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0.iter().filter(move |(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

impl<S: Send + Sync> FromRequest<S> for FormBody {
    type Rejection = WebError;

    async fn from_request(req: Request, state: &S) -> Result<Self, WebError> {
        let ct = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
        if !ct.to_ascii_lowercase().starts_with("application/x-www-form-urlencoded") {
            return Err(WebError(Problem::unsupported_media("send the form as application/x-www-form-urlencoded")));
        }
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|_| WebError(Problem::too_large("the form is too large")))?;
        Ok(FormBody::parse(&bytes)?)
    }
}

/// Messages beside fields, by input name; `""` is the form's own message.
#[derive(Debug, Clone, Default)]
pub struct FieldErrors(pub BTreeMap<String, String>);

impl FieldErrors {
    pub fn add(&mut self, name: &str, message: impl Into<String>) {
        self.0.entry(name.to_string()).or_insert_with(|| capitalise(&message.into()));
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    pub fn has(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The form's own message (not about one field).
    pub fn form(&self) -> Option<&str> {
        self.get("")
    }
}

/// The CSRF token a page form sent in its body (`csrf` field), with the
/// request rebuilt so the handler can read the body again.
pub async fn form_csrf(req: Request, limit: usize) -> Result<(Request, String), Problem> {
    let (parts, body) = req.into_parts();
    let bytes =
        axum::body::to_bytes(body, limit).await.map_err(|_| Problem::too_large("the request body is too large"))?;
    let ct = parts.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_lowercase();
    let token = if ct.starts_with("application/x-www-form-urlencoded") {
        FormBody::parse(&bytes)?.get("csrf").unwrap_or("").to_string()
    } else if ct.starts_with("multipart/form-data") {
        let probe = Request::from_parts(parts.clone(), Body::from(bytes.clone()));
        let mut mp = Multipart::from_request(probe, &())
            .await
            .map_err(|e| Problem::bad_request(format!("the form could not be read: {e}")))?;
        let mut token = String::new();
        while let Ok(Some(field)) = mp.next_field().await {
            if field.name() == Some("csrf") {
                token = field.text().await.unwrap_or_default();
                break;
            }
        }
        token
    } else {
        String::new()
    };
    Ok((Request::from_parts(parts, Body::from(bytes)), token))
}

// ----- formatting for templates -----

/// A timestamp as people read it: `2026-03-01 14:05 UTC`.
pub fn when(t: Timestamp) -> String {
    t.strftime("%Y-%m-%d %H:%M UTC").to_string()
}

/// A timestamp in a time zone, labelled with the zone: `2026-03-01 15:05 Europe/Berlin`.
pub fn when_in(t: Timestamp, tz: &jiff::tz::TimeZone) -> String {
    format!("{} {}", t.to_zoned(tz.clone()).strftime("%Y-%m-%d %H:%M"), tz.iana_name().unwrap_or("UTC"))
}

/// A due date relative to now: "overdue by 2 days", "due in 3 hours".
pub fn due_badge(due: Timestamp, now: Timestamp) -> (String, &'static str) {
    let secs = due.as_second() - now.as_second();
    let span = |s: i64| {
        let s = s.abs();
        if s >= 2 * 86_400 {
            format!("{} days", s / 86_400)
        } else if s >= 7_200 {
            format!("{} hours", s / 3_600)
        } else if s >= 120 {
            format!("{} minutes", s / 60)
        } else {
            "a moment".to_string()
        }
    };
    if secs < 0 {
        (format!("overdue by {}", span(secs)), "overdue")
    } else if secs < 86_400 {
        (format!("due in {}", span(secs)), "soon")
    } else {
        (format!("due in {}", span(secs)), "due")
    }
}

/// A principal (`user:EMAIL`, `role:KEY`) in words.
pub fn principal_label(p: &str) -> String {
    if let Some(email) = p.strip_prefix("user:") {
        email.to_string()
    } else if let Some(role) = p.strip_prefix("role:") {
        format!("anyone with role {role}")
    } else {
        p.to_string()
    }
}

pub fn bytes_label(n: u64) -> String {
    if n >= 1024 * 1024 {
        format!("{:.1} MiB", n as f64 / (1024.0 * 1024.0))
    } else if n >= 1024 {
        format!("{:.1} KiB", n as f64 / 1024.0)
    } else {
        format!("{n} bytes")
    }
}

//! The handlers and the router. Handlers only translate between HTTP/JSON and
//! the workspace's use cases; access was decided by the guard before they run.

use std::sync::Arc;

use attest_core::audit;
use attest_core::{BatchItem, Error};
use attest_engine::view::task_views;
use attest_engine::{Command, RunState, RunStatus, Values};
use attest_store::{RunFilter, SessionRow, TokenRow};
use attest_template::SourceFormat;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Multipart, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Extension, Json, Router, middleware};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio::sync::oneshot;

use crate::access::Credential;
use crate::guard::Caller;
use crate::problem::{ApiResult, Problem};
use crate::{App, authn, docs, guard, hooks_api, writer};

/// Largest payload the secret trigger URL reads: it is open to anyone who has the URL.
const TRIGGER_BODY_LIMIT: usize = 256 * 1024;

type AppState = State<Arc<App>>;

// ----- extractors that answer with problem+json -----

/// A JSON body: 415 unless `application/json`, 413 over the limit, 400 if malformed.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Problem> {
        let ct = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
        let mime = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        if mime != "application/json" && !(mime.starts_with("application/") && mime.ends_with("+json")) {
            return Err(Problem::unsupported_media("send the body as application/json"));
        }
        let bytes = axum::body::Bytes::from_request(req, state).await.map_err(|r| {
            if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
                Problem::too_large("the request body is too large")
            } else {
                Problem::bad_request(format!("the request body could not be read: {r}"))
            }
        })?;
        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(|e| Problem::bad_request(format!("the body is not valid JSON for this request: {e}")))
    }
}

#[derive(Debug)]
pub struct PathParams<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for PathParams<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| PathParams(p.0))
            .map_err(|e: PathRejection| Problem::bad_request(e.body_text()))
    }
}

#[derive(Debug)]
pub struct QueryParams<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for QueryParams<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| QueryParams(q.0))
            .map_err(|e: QueryRejection| Problem::bad_request(e.body_text()))
    }
}

pub(crate) async fn blocking<T: Send + 'static>(f: impl FnOnce() -> ApiResult<T> + Send + 'static) -> ApiResult<T> {
    tokio::task::spawn_blocking(f).await.map_err(|_| Problem::internal("a worker task failed"))?
}

pub(crate) fn created(value: Value) -> Response {
    (StatusCode::CREATED, Json(value)).into_response()
}

/// Sends a run command to the group-commit writer and waits for its result.
pub(crate) async fn submit(app: &App, kind: &'static str, item: BatchItem) -> ApiResult<Arc<RunState>> {
    app.metrics.command(kind);
    let (tx, rx) = oneshot::channel();
    app.writer
        .send(writer::Job { item, reply: tx })
        .await
        .map_err(|_| Problem::new(StatusCode::SERVICE_UNAVAILABLE, "shutting-down", "the server is shutting down"))?;
    rx.await.map_err(|_| Problem::internal("the writer stopped"))?
}

pub(crate) fn run_state_json(s: &RunState) -> Value {
    json!({"run": s.run_id, "status": s.status, "version": s.event_count, "template": s.template_key})
}

pub(crate) async fn execute(
    app: &App,
    caller: &Caller,
    kind: &'static str,
    run: String,
    command: Command,
) -> ApiResult<Json<Value>> {
    let by = caller.principal()?.actor.clone();
    let state = submit(app, kind, BatchItem::Execute { run, command, by }).await?;
    Ok(Json(run_state_json(&state)))
}

// ----- operations -----

async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

async fn readyz(State(app): AppState) -> Response {
    match blocking(move || Ok(app.read.store().ledger_size()?)).await {
        Ok(_) => Json(json!({"status": "ready"})).into_response(),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"status": "unavailable"}))).into_response(),
    }
}

async fn metrics(State(app): AppState) -> Response {
    let a = app.clone();
    let size = blocking(move || Ok(a.read.store().ledger_size()?)).await.unwrap_or(0);
    let mut res = app.metrics.render(size).into_response();
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4"));
    res
}

async fn openapi() -> Response {
    let mut res = docs::openapi_json().into_response();
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    res
}

async fn docs_page() -> Html<&'static str> {
    Html(docs::DOCS_HTML)
}

async fn not_found(uri: axum::http::Uri) -> Response {
    if uri.path().starts_with("/api/") {
        Problem::not_found("no such endpoint; see /api/docs").into_response()
    } else {
        crate::web::not_found()
    }
}

// ----- auth -----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Login {
    email: String,
    password: String,
}

pub(crate) fn new_session(app: &App, email: &str) -> ApiResult<(String, String)> {
    let id = authn::random_secret(32);
    let csrf = authn::random_secret(32);
    let now = app.now();
    let expires = now
        .checked_add(jiff::SignedDuration::from_hours(authn::SESSION_HOURS))
        .map_err(|e| Problem::internal(e.to_string()))?;
    app.auth.put_session(&SessionRow {
        id_hash: authn::sha256_hex(&id),
        email: email.to_string(),
        csrf: csrf.clone(),
        created_at: now,
        expires_at: expires,
    })?;
    Ok((id, csrf))
}

fn with_cookie(app: &App, headers: &HeaderMap, id: &str, body: Value) -> Response {
    let mut res = Json(body).into_response();
    if let Ok(v) = HeaderValue::from_str(&authn::session_cookie(app, headers, id)) {
        res.headers_mut().insert(header::SET_COOKIE, v);
    }
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// What signing in with a password gave.
pub(crate) enum SignIn {
    Session {
        email: String,
        id: String,
        csrf: String,
        must_change: bool,
    },
    /// Too many failures for this email: wait this many seconds.
    Wait(u64),
    Wrong,
}

/// Checks an email and password under the login rate limit (the API's and
/// the web form's one path) and opens a session.
pub(crate) async fn sign_in(app: &Arc<App>, email: &str, password: String) -> ApiResult<SignIn> {
    let Ok(email) = attest_core::workspace::parse_email(email) else { return Ok(SignIn::Wrong) };
    if let Some(wait) = app.limiter.check(&email) {
        return Ok(SignIn::Wait(wait));
    }
    let a = app.clone();
    let e = email.clone();
    let outcome = blocking(move || {
        let row = a.auth.password(&e)?;
        let ok = match &row {
            Some(r) => authn::verify_password(&password, &r.phc),
            None => {
                // Spend the same time as a real check, so timing does not tell who exists.
                let _ = authn::hash_password(&password);
                false
            }
        };
        if !ok {
            return Ok(None);
        }
        let must_change = row.is_some_and(|r| r.must_change);
        let (id, csrf) = new_session(&a, &e)?;
        Ok(Some((id, csrf, must_change)))
    })
    .await?;
    let Some((id, csrf, must_change)) = outcome else {
        app.limiter.fail(&email);
        return Ok(SignIn::Wrong);
    };
    app.limiter.succeed(&email);
    Ok(SignIn::Session { email, id, csrf, must_change })
}

async fn login(State(app): AppState, headers: HeaderMap, JsonBody(b): JsonBody<Login>) -> ApiResult<Response> {
    match sign_in(&app, &b.email, b.password).await? {
        SignIn::Session { email, id, csrf, must_change } => Ok(with_cookie(
            &app,
            &headers,
            &id,
            json!({"email": email, "csrf_token": csrf, "must_change_password": must_change}),
        )),
        SignIn::Wait(wait) => {
            let mut res = Problem::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too-many-logins",
                format!("too many failed logins for {}; try again in {wait} s", b.email.trim().to_ascii_lowercase()),
            )
            .into_response();
            if let Ok(v) = HeaderValue::from_str(&wait.to_string()) {
                res.headers_mut().insert(header::RETRY_AFTER, v);
            }
            Ok(res)
        }
        SignIn::Wrong => Err(Problem::unauthorized("the email or the password is wrong")),
    }
}

async fn logout(State(app): AppState, Extension(caller): Extension<Caller>) -> ApiResult<Response> {
    let p = caller.principal()?.clone();
    if let Credential::Session { id_hash, .. } = p.credential {
        let a = app.clone();
        blocking(move || Ok(a.auth.delete_session(&id_hash)?)).await?;
        app.forget_principals();
    }
    let mut res = Json(json!({"ok": true})).into_response();
    if let Ok(v) = HeaderValue::from_str(&authn::clear_cookie()) {
        res.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(res)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PasswordChange {
    current_password: String,
    new_password: String,
}

async fn change_password(
    State(app): AppState,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    JsonBody(b): JsonBody<PasswordChange>,
) -> ApiResult<Response> {
    let p = caller.principal()?.clone();
    let (id, csrf) = replace_password(&app, &p, b.current_password, b.new_password).await?;
    Ok(with_cookie(
        &app,
        &headers,
        &id,
        json!({"email": caller.principal()?.actor.id, "csrf_token": csrf, "must_change_password": false}),
    ))
}

/// Changes a person's password (the API's and the web form's one path): ends
/// their sessions and opens a new one, returning its id and CSRF token.
pub(crate) async fn replace_password(
    app: &Arc<App>,
    p: &crate::access::Principal,
    current: String,
    new: String,
) -> ApiResult<(String, String)> {
    authn::check_new_password(&new)?;
    if new == current {
        return Err(Problem::bad_request("the new password must differ from the current one"));
    }
    let a = app.clone();
    let actor = p.actor.clone();
    let email = p.actor.id.clone();
    let out = blocking(move || {
        let row = a.auth.password(&email)?.ok_or_else(|| Problem::forbidden("you have no password to change"))?;
        if !authn::verify_password(&current, &row.phc) {
            return Err(Problem::forbidden("the current password is wrong"));
        }
        let phc = authn::hash_password(&new).map_err(|e| Problem::internal(e.to_string()))?;
        a.read.set_password(a.auth.as_ref(), &actor, &email, phc, false, a.now())?;
        a.auth.delete_sessions_of(&email)?;
        new_session(&a, &email)
    })
    .await?;
    app.forget_principals();
    Ok(out)
}

async fn me(Extension(caller): Extension<Caller>) -> ApiResult<Json<Value>> {
    let p = caller.principal()?;
    Ok(Json(json!({
        "id": p.actor.id, "kind": p.actor.kind, "access": p.access.as_str(), "roles": p.actor.roles,
        "admin": p.actor.admin, "must_change_password": p.must_change_password,
    })))
}

// ----- templates -----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TemplateSource {
    source: String,
    #[serde(default)]
    format: Option<String>,
}

fn parse_source(b: &TemplateSource) -> ApiResult<attest_template::Template> {
    let format = match b.format.as_deref() {
        None | Some("yaml") => SourceFormat::Yaml,
        Some("json") => SourceFormat::Json,
        Some(other) => return Err(Problem::bad_request(format!("'{other}' is not a format: use yaml or json"))),
    };
    Ok(attest_core::Workspace::validate(&b.source, format, None)?)
}

async fn templates(State(app): AppState) -> ApiResult<Json<Value>> {
    let items = blocking(move || Ok(app.read.store().templates()?)).await?;
    Ok(Json(json!({ "items": items })))
}

async fn validate_template(JsonBody(b): JsonBody<TemplateSource>) -> ApiResult<Json<Value>> {
    let t = blocking(move || parse_source(&b)).await?;
    Ok(Json(json!({
        "valid": true, "key": t.key, "name": t.name, "content_hash": attest_template::content_hash(&t),
    })))
}

async fn publish_template(
    State(app): AppState,
    Extension(caller): Extension<Caller>,
    JsonBody(b): JsonBody<TemplateSource>,
) -> ApiResult<Response> {
    let by = caller.principal()?.actor.clone();
    let out = blocking(move || {
        let t = parse_source(&b)?;
        Ok(app.write.publish(&by, t, app.now())?)
    })
    .await?;
    Ok(created(serde_json::to_value(out).map_err(|e| Problem::internal(e.to_string()))?))
}

fn version_json(row: &attest_store::TemplateVersionRow) -> Value {
    let template: Value = serde_json::from_str(&row.json).unwrap_or(Value::Null);
    json!({
        "key": row.key, "name": row.name, "version": row.version, "content_hash": row.content_hash,
        "published_at": row.published_at, "published_by": row.published_by, "template": template,
    })
}

async fn template(State(app): AppState, PathParams(key): PathParams<String>) -> ApiResult<Json<Value>> {
    let row = blocking(move || Ok(app.read.template_row(&key, None)?)).await?;
    Ok(Json(version_json(&row)))
}

async fn template_versions(State(app): AppState, PathParams(key): PathParams<String>) -> ApiResult<Json<Value>> {
    let rows = blocking(move || {
        let rows = app.read.store().template_versions(&key)?;
        if rows.is_empty() {
            return Err(Problem::not_found(format!("no template with key {key}")));
        }
        Ok(rows)
    })
    .await?;
    Ok(Json(json!({ "items": rows.iter().map(version_json).collect::<Vec<_>>() })))
}

async fn template_version(
    State(app): AppState,
    PathParams((key, version)): PathParams<(String, String)>,
) -> ApiResult<Json<Value>> {
    let version: u32 = version
        .parse()
        .ok()
        .filter(|v| *v > 0)
        .ok_or_else(|| Problem::not_found(format!("template {key} has no version '{version}'")))?;
    let row = blocking(move || Ok(app.read.template_row(&key, Some(version))?)).await?;
    Ok(Json(version_json(&row)))
}

// ----- runs -----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RunQuery {
    template: Option<String>,
    status: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
}

async fn runs(State(app): AppState, QueryParams(q): QueryParams<RunQuery>) -> ApiResult<Json<Value>> {
    let limit = q.limit.unwrap_or(50);
    if !(1..=1000).contains(&limit) {
        return Err(Problem::bad_request("limit must be between 1 and 1000"));
    }
    let status = match q.status.as_deref() {
        None => None,
        Some("open") => Some(RunStatus::Open),
        Some("completed") => Some(RunStatus::Completed),
        Some("cancelled") => Some(RunStatus::Cancelled),
        Some(s) => return Err(Problem::bad_request(format!("'{s}' is not a run status"))),
    };
    let filter = RunFilter { template: q.template, status, before: q.cursor, limit };
    let rows = blocking(move || Ok(app.read.runs(&filter)?)).await?;
    let next = if rows.len() as u32 == limit { rows.last().map(|r| r.id.clone()) } else { None };
    Ok(Json(json!({ "items": rows, "next_cursor": next })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StartRun {
    template: String,
    name: Option<String>,
}

async fn start_run(
    State(app): AppState,
    Extension(caller): Extension<Caller>,
    JsonBody(b): JsonBody<StartRun>,
) -> ApiResult<Response> {
    let by = caller.principal()?.actor.clone();
    let name = b.name.map(|n| n.trim().to_string()).filter(|n| !n.is_empty());
    let state = submit(&app, "start", BatchItem::Start { template: b.template, name, by }).await?;
    let mut res = created(run_state_json(&state));
    if let Ok(v) = HeaderValue::from_str(&format!("/api/v1/runs/{}", state.run_id)) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    Ok(res)
}

async fn run(State(app): AppState, PathParams(id): PathParams<String>) -> ApiResult<Json<Value>> {
    blocking(move || {
        let row = app.read.run(&id)?;
        let compiled = app.read.compiled(&row.template_key, row.template_version)?;
        let tz = app.read.time_zone();
        let views = task_views(&compiled, &row.state, app.now(), &tz);
        Ok(Json(json!({
            "run": row.id, "name": row.name, "template": row.template_key, "version": row.template_version,
            "status": row.status, "starter": row.state.starter, "started_at": row.started_at,
            "updated_at": row.updated_at, "finished_at": row.finished_at, "cancel_reason": row.state.cancel_reason,
            "rework_count": row.state.rework_count, "events": row.version, "values": row.state.values, "tasks": views,
            "time_zone": tz.iana_name().unwrap_or("UTC"), "due_at": row.state.due_at,
        })))
    })
    .await
}

fn events_json(app: &App, id: &str) -> ApiResult<Vec<Value>> {
    app.read.run(id)?;
    let mut items = Vec::new();
    for (seq, e) in app.read.run_events(id)? {
        let mut v = serde_json::to_value(&e).map_err(|e| Problem::internal(e.to_string()))?;
        if let Value::Object(m) = &mut v {
            m.insert("seq".into(), json!(seq));
        }
        items.push(v);
    }
    Ok(items)
}

async fn run_events(State(app): AppState, PathParams(id): PathParams<String>) -> ApiResult<Json<Value>> {
    let items = blocking(move || events_json(&app, &id)).await?;
    Ok(Json(json!({ "items": items })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Cancel {
    reason: String,
}

async fn cancel(
    State(app): AppState,
    Extension(caller): Extension<Caller>,
    PathParams(id): PathParams<String>,
    JsonBody(b): JsonBody<Cancel>,
) -> ApiResult<Json<Value>> {
    execute(&app, &caller, "cancel", id, Command::Cancel { reason: b.reason }).await
}

// ----- tasks -----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SetValues {
    values: Values,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Complete {
    #[serde(default)]
    values: Values,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Approve {
    comment: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Reject {
    comment: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CommentBody {
    text: String,
}

const MAX_VALUES: usize = 200;

async fn set_fields(
    State(app): AppState,
    Extension(caller): Extension<Caller>,
    PathParams((run, task)): PathParams<(String, String)>,
    JsonBody(b): JsonBody<SetValues>,
) -> ApiResult<Json<Value>> {
    if b.values.len() > MAX_VALUES {
        return Err(Problem::bad_request(format!("at most {MAX_VALUES} values per request")));
    }
    execute(&app, &caller, "set_fields", run, Command::SetFields { task, values: b.values }).await
}

async fn complete(
    State(app): AppState,
    Extension(caller): Extension<Caller>,
    PathParams((run, task)): PathParams<(String, String)>,
    JsonBody(b): JsonBody<Complete>,
) -> ApiResult<Json<Value>> {
    if b.values.len() > MAX_VALUES {
        return Err(Problem::bad_request(format!("at most {MAX_VALUES} values per request")));
    }
    execute(&app, &caller, "complete", run, Command::Complete { task, values: b.values }).await
}

async fn approve(
    State(app): AppState,
    Extension(caller): Extension<Caller>,
    PathParams((run, task)): PathParams<(String, String)>,
    JsonBody(b): JsonBody<Approve>,
) -> ApiResult<Json<Value>> {
    execute(&app, &caller, "approve", run, Command::Approve { task, comment: b.comment }).await
}

async fn reject(
    State(app): AppState,
    Extension(caller): Extension<Caller>,
    PathParams((run, task)): PathParams<(String, String)>,
    JsonBody(b): JsonBody<Reject>,
) -> ApiResult<Json<Value>> {
    execute(&app, &caller, "reject", run, Command::Reject { task, comment: b.comment }).await
}

async fn comment(
    State(app): AppState,
    Extension(caller): Extension<Caller>,
    PathParams((run, task)): PathParams<(String, String)>,
    JsonBody(b): JsonBody<CommentBody>,
) -> ApiResult<Json<Value>> {
    execute(&app, &caller, "comment", run, Command::Comment { task, text: b.text }).await
}

/// A file name as sent, refused if it names a path rather than a file.
pub(crate) fn upload_name(name: &str) -> ApiResult<String> {
    let bad = name.is_empty()
        || name.len() > 255
        || name.contains(['/', '\\', '\0'])
        || name.starts_with('.')
        || name.chars().any(char::is_control);
    if bad {
        return Err(Problem::bad_request(format!(
            "'{}' is not a usable file name: send a plain name without directories",
            name.escape_debug()
        )));
    }
    Ok(attest_core::workspace::sanitize_file_name(name)?)
}

async fn upload(
    State(app): AppState,
    Extension(caller): Extension<Caller>,
    PathParams((run, task)): PathParams<(String, String)>,
    req: Request,
) -> ApiResult<Json<Value>> {
    let ct = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !ct.to_ascii_lowercase().starts_with("multipart/form-data") {
        return Err(Problem::unsupported_media("upload evidence as multipart/form-data with a 'file' part"));
    }
    let mut mp = Multipart::from_request(req, &())
        .await
        .map_err(|e| Problem::bad_request(format!("the multipart body is not readable: {e}")))?;
    let limit = app.config.max_upload_bytes;
    let mut file: Option<(String, Vec<u8>)> = None;
    let mut field: Option<String> = None;
    let part_error = |e: axum::extract::multipart::MultipartError| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Problem::too_large(format!("the upload is larger than {limit} bytes"))
        } else {
            Problem::bad_request(format!("the multipart body is not readable: {e}"))
        }
    };
    while let Some(mut part) = mp.next_field().await.map_err(part_error)? {
        match part.name() {
            Some("file") => {
                if file.is_some() {
                    return Err(Problem::bad_request("send one 'file' part"));
                }
                let name = upload_name(part.file_name().unwrap_or(""))?;
                let mut bytes = Vec::new();
                while let Some(chunk) = part.chunk().await.map_err(part_error)? {
                    if (bytes.len() + chunk.len()) as u64 > limit {
                        return Err(Problem::too_large(format!("the upload is larger than {limit} bytes")));
                    }
                    bytes.extend_from_slice(&chunk);
                }
                file = Some((name, bytes));
            }
            Some("field") => {
                let text = part.text().await.map_err(part_error)?;
                if text.len() > 200 {
                    return Err(Problem::bad_request("the 'field' part names a field key"));
                }
                field = Some(text.trim().to_string()).filter(|t| !t.is_empty());
            }
            _ => return Err(Problem::bad_request("unexpected part: send 'file' and optionally 'field'")),
        }
    }
    let (name, bytes) = file.ok_or_else(|| Problem::bad_request("the upload has no 'file' part"))?;
    let by = caller.principal()?.actor.clone();
    app.metrics.command("attach_evidence");
    let state = blocking(move || {
        let (_, state) = app.write.attach(&run, &task, field.as_deref(), &name, &mut &bytes[..], &by, app.now())?;
        Ok(state)
    })
    .await?;
    Ok(Json(run_state_json(&state)))
}

async fn inbox(State(app): AppState, Extension(caller): Extension<Caller>) -> ApiResult<Json<Value>> {
    let actor = caller.principal()?.actor.clone();
    let items = blocking(move || Ok(app.read.inbox(&actor)?)).await?;
    Ok(Json(json!({ "items": items })))
}

// ----- people -----

async fn people(State(app): AppState) -> ApiResult<Json<Value>> {
    let items = blocking(move || Ok(app.read.users()?)).await?;
    Ok(Json(json!({ "items": items })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewPerson {
    email: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    admin: bool,
    #[serde(default)]
    roles: Vec<String>,
}

async fn add_person(
    State(app): AppState,
    Extension(caller): Extension<Caller>,
    JsonBody(b): JsonBody<NewPerson>,
) -> ApiResult<Response> {
    if b.roles.len() > 50 {
        return Err(Problem::bad_request("at most 50 roles"));
    }
    let by = caller.principal()?.actor.clone();
    let a = app.clone();
    let out = blocking(move || {
        let email = attest_core::workspace::parse_email(&b.email)?;
        let roles = b.roles.iter().map(|r| attest_core::workspace::parse_role(r)).collect::<Result<Vec<_>, Error>>()?;
        let now = a.now();
        a.write.add_user(&by, &email, &b.name, b.admin, now)?;
        for r in &roles {
            a.write.grant_role(&by, &email, r, now)?;
        }
        let password = authn::one_time_password();
        let phc = authn::hash_password(&password).map_err(|e| Problem::internal(e.to_string()))?;
        a.read.set_password(a.auth.as_ref(), &by, &email, phc, true, now)?;
        Ok(json!({"email": email, "one_time_password": password}))
    })
    .await?;
    app.forget_principals();
    Ok(created(out))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RoleBody {
    role: String,
}

async fn grant_role(
    State(app): AppState,
    Extension(caller): Extension<Caller>,
    PathParams(email): PathParams<String>,
    JsonBody(b): JsonBody<RoleBody>,
) -> ApiResult<Json<Value>> {
    let by = caller.principal()?.actor.clone();
    let a = app.clone();
    blocking(move || Ok(a.write.grant_role(&by, &email, &b.role, a.now())?)).await?;
    app.forget_principals();
    Ok(Json(json!({"ok": true})))
}

async fn revoke_role(
    State(app): AppState,
    Extension(caller): Extension<Caller>,
    PathParams((email, role)): PathParams<(String, String)>,
) -> ApiResult<Json<Value>> {
    let by = caller.principal()?.actor.clone();
    let a = app.clone();
    blocking(move || Ok(a.write.revoke_role(&by, &email, &role, a.now())?)).await?;
    app.forget_principals();
    Ok(Json(json!({"ok": true})))
}

async fn reset_password(
    State(app): AppState,
    Extension(caller): Extension<Caller>,
    PathParams(email): PathParams<String>,
) -> ApiResult<Json<Value>> {
    let by = caller.principal()?.actor.clone();
    let a = app.clone();
    let out = blocking(move || {
        let email = attest_core::workspace::parse_email(&email)?;
        let password = authn::one_time_password();
        let phc = authn::hash_password(&password).map_err(|e| Problem::internal(e.to_string()))?;
        a.read.set_password(a.auth.as_ref(), &by, &email, phc, true, a.now())?;
        a.auth.delete_sessions_of(&email)?;
        Ok(json!({"email": email, "one_time_password": password}))
    })
    .await?;
    app.forget_principals();
    Ok(Json(out))
}

// ----- tokens -----

async fn tokens(State(app): AppState) -> ApiResult<Json<Value>> {
    let items = blocking(move || Ok(app.auth.tokens()?)).await?;
    Ok(Json(json!({ "items": items })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewToken {
    name: String,
    #[serde(default)]
    kind: Option<String>,
    access: String,
    #[serde(default)]
    roles: Vec<String>,
}

async fn create_token(
    State(app): AppState,
    Extension(caller): Extension<Caller>,
    JsonBody(b): JsonBody<NewToken>,
) -> ApiResult<Response> {
    let by = caller.principal()?.actor.clone();
    let secret = format!("attest_{}", authn::random_secret(32));
    let id = uuid::Uuid::now_v7().to_string();
    let now = app.now();
    let row = TokenRow {
        id: id.clone(),
        hash: authn::sha256_hex(&secret),
        name: b.name.trim().to_string(),
        kind: b.kind.unwrap_or_else(|| "token".into()),
        access: b.access,
        roles: b.roles,
        created_by: by.to_string(),
        created_at: now,
        last_used_at: None,
        revoked_at: None,
    };
    let shown = json!({"id": id, "token": secret, "name": row.name, "kind": row.kind, "access": row.access,
                       "roles": row.roles});
    let a = app.clone();
    blocking(move || Ok(a.read.create_token(a.auth.as_ref(), &by, row, now)?)).await?;
    let mut res = created(shown);
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}

async fn revoke_token(
    State(app): AppState,
    Extension(caller): Extension<Caller>,
    PathParams(id): PathParams<String>,
) -> ApiResult<Json<Value>> {
    let by = caller.principal()?.actor.clone();
    let a = app.clone();
    blocking(move || Ok(a.read.revoke_token(a.auth.as_ref(), &by, &id, a.now())?)).await?;
    app.forget_principals();
    Ok(Json(json!({"ok": true})))
}

// ----- audit -----

async fn audit_key(State(app): AppState) -> ApiResult<Json<Value>> {
    let key = blocking(move || Ok(audit::announced_key(&app.read)?)).await?;
    Ok(Json(json!({"verifier_key": key.to_string()})))
}

async fn checkpoints(State(app): AppState) -> ApiResult<Json<Value>> {
    let items = blocking(move || Ok(app.read.store().checkpoints()?)).await?;
    Ok(Json(json!({ "items": items })))
}

async fn sign_checkpoint(State(app): AppState) -> ApiResult<Response> {
    let row = blocking(move || {
        let signer = app
            .signer
            .as_ref()
            .ok_or_else(|| Problem::new(StatusCode::CONFLICT, "no-signing-key", "the signing key is not readable"))?;
        Ok(audit::sign_checkpoint(&app.write, signer, app.now())?)
    })
    .await?;
    Ok(created(serde_json::to_value(row).map_err(|e| Problem::internal(e.to_string()))?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InclusionQuery {
    index: u64,
    size: Option<u64>,
}

fn hashes(list: &[attest_ledger::Hash]) -> Vec<String> {
    list.iter().map(hex::encode).collect()
}

async fn inclusion(State(app): AppState, QueryParams(q): QueryParams<InclusionQuery>) -> ApiResult<Json<Value>> {
    blocking(move || {
        let store = app.read.store();
        let current = store.ledger_size()?;
        let size = q.size.unwrap_or(current);
        if size > current {
            return Err(Problem::not_found(format!("the ledger holds {current} entries, not {size}")));
        }
        if q.index >= size {
            return Err(Problem::bad_request(format!("index {} is not below size {size}", q.index)));
        }
        let proof = store.inclusion_proof(q.index, size)?;
        let leaf = store.ledger_leaf(q.index)?.map(hex::encode);
        let root = hex::encode(store.ledger_root(size)?);
        Ok(Json(json!({"index": q.index, "size": size, "leaf_hash": leaf, "root": root, "proof": hashes(&proof)})))
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConsistencyQuery {
    old: u64,
    new: Option<u64>,
}

async fn consistency(State(app): AppState, QueryParams(q): QueryParams<ConsistencyQuery>) -> ApiResult<Json<Value>> {
    blocking(move || {
        let store = app.read.store();
        let current = store.ledger_size()?;
        let new = q.new.unwrap_or(current);
        if new > current {
            return Err(Problem::not_found(format!("the ledger holds {current} entries, not {new}")));
        }
        if q.old == 0 || q.old > new {
            return Err(Problem::bad_request(format!("old must be between 1 and new ({new})")));
        }
        let proof = store.consistency_proof(q.old, new)?;
        Ok(Json(json!({
            "old_size": q.old, "new_size": new, "old_root": hex::encode(store.ledger_root(q.old)?),
            "new_root": hex::encode(store.ledger_root(new)?), "proof": hashes(&proof),
        })))
    })
    .await
}

async fn verify(State(app): AppState) -> ApiResult<Json<Value>> {
    let report = blocking(move || {
        let key = audit::announced_key(&app.read)?;
        Ok(audit::verify(&app.read, &key)?)
    })
    .await?;
    let mut v = serde_json::to_value(&report).map_err(|e| Problem::internal(e.to_string()))?;
    if let Value::Object(m) = &mut v {
        m.insert("ok".into(), json!(report.ok()));
    }
    Ok(Json(v))
}

/// What a pack export failed with, as a problem the caller can act on.
pub(crate) fn pack_problem(e: attest_pack::PackError) -> Problem {
    match e {
        attest_pack::PackError::Core(core) => Problem::from(core),
        attest_pack::PackError::BadInput(m) => Problem::bad_request(m),
        attest_pack::PackError::TooLarge { .. } => Problem::bad_request(e.to_string()),
        other => Problem::internal(other.to_string()),
    }
}

pub(crate) type PackExport = dyn FnOnce(&App, &attest_ledger::note::SignerKey, &mut std::io::Cursor<Vec<u8>>) -> Result<(), attest_pack::PackError>
    + Send;

/// Exports a pack in memory and answers it as a zip download.
pub(crate) async fn pack_download(app: Arc<App>, name: String, export: Box<PackExport>) -> ApiResult<Response> {
    let bytes = blocking(move || {
        let signer = app
            .signer
            .as_ref()
            .ok_or_else(|| Problem::new(StatusCode::CONFLICT, "no-signing-key", "the signing key is not readable"))?;
        let mut zip = std::io::Cursor::new(Vec::new());
        export(&app, signer, &mut zip).map_err(pack_problem)?;
        Ok(zip.into_inner())
    })
    .await?;
    let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{name}\""))
        .map_err(|e| Problem::internal(e.to_string()))?;
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("application/zip")),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        bytes,
    )
        .into_response())
}

async fn export_run(State(app): AppState, PathParams(id): PathParams<String>) -> ApiResult<Response> {
    let name = format!(
        "attest-run-{}.zip",
        id.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-').take(64).collect::<String>()
    );
    let export =
        Box::new(move |app: &App, signer: &attest_ledger::note::SignerKey, zip: &mut std::io::Cursor<Vec<u8>>| {
            attest_pack::export_run(&app.write, signer, &id, app.now(), zip).map(|_| ())
        });
    pack_download(app, name, export).await
}

#[derive(Deserialize)]
struct PeriodQuery {
    from: String,
    to: String,
}

async fn export_period(State(app): AppState, QueryParams(q): QueryParams<PeriodQuery>) -> ApiResult<Response> {
    let (from, to) = attest_pack::parse_period(&q.from, &q.to).map_err(pack_problem)?;
    let name = format!("attest-period-{}-{}.zip", from.strftime("%Y%m%d"), to.strftime("%Y%m%d"));
    let export =
        Box::new(move |app: &App, signer: &attest_ledger::note::SignerKey, zip: &mut std::io::Cursor<Vec<u8>>| {
            attest_pack::export_period(&app.write, signer, from, to, app.now(), zip).map(|_| ())
        });
    pack_download(app, name, export).await
}

// ----- the router -----

pub fn router(app: Arc<App>) -> Router {
    let upload_limit = (app.config.max_upload_bytes as usize).saturating_add(64 * 1024);
    crate::schedules_api::routes(Router::new())
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/api/openapi.json", get(openapi))
        .route("/api/docs", get(docs_page))
        .route("/api/v1/auth/login", post(login))
        .route("/api/v1/auth/logout", post(logout))
        .route("/api/v1/auth/password", post(change_password))
        .route("/api/v1/me", get(me))
        .route("/api/v1/templates", get(templates).post(publish_template))
        .route("/api/v1/templates/validate", post(validate_template))
        .route("/api/v1/templates/{key}", get(template))
        .route("/api/v1/templates/{key}/versions", get(template_versions))
        .route("/api/v1/templates/{key}/versions/{version}", get(template_version))
        .route("/api/v1/runs", get(runs).post(start_run))
        .route("/api/v1/runs/{run}", get(run))
        .route("/api/v1/runs/{run}/events", get(run_events))
        .route("/api/v1/runs/{run}/cancel", post(cancel))
        .route("/api/v1/runs/{run}/tasks/{task}/fields", post(set_fields))
        .route("/api/v1/runs/{run}/tasks/{task}/complete", post(complete))
        .route("/api/v1/runs/{run}/tasks/{task}/approve", post(approve))
        .route("/api/v1/runs/{run}/tasks/{task}/reject", post(reject))
        .route("/api/v1/runs/{run}/tasks/{task}/comments", post(comment))
        .route("/api/v1/runs/{run}/tasks/{task}/evidence", post(upload).layer(DefaultBodyLimit::max(upload_limit)))
        .route("/api/v1/inbox", get(inbox))
        .route("/api/v1/people", get(people).post(add_person))
        .route("/api/v1/people/{email}/roles", post(grant_role))
        .route("/api/v1/people/{email}/roles/{role}", delete(revoke_role))
        .route("/api/v1/people/{email}/password-reset", post(reset_password))
        .route("/api/v1/tokens", get(tokens).post(create_token))
        .route("/api/v1/tokens/{id}", delete(revoke_token))
        .route("/api/v1/audit/key", get(audit_key))
        .route("/api/v1/audit/checkpoints", get(checkpoints).post(sign_checkpoint))
        .route("/api/v1/audit/proofs/inclusion", get(inclusion))
        .route("/api/v1/audit/proofs/consistency", get(consistency))
        .route("/api/v1/audit/verify", get(verify))
        .route("/api/v1/audit/runs/{run}/export", get(export_run))
        .route("/api/v1/audit/export", get(export_period))
        .merge(crate::metrics_api::router())
        .merge(crate::web::router(upload_limit))
        // ----- integrations (issue #6): webhooks and triggers -----
        .route("/api/v1/runs/{run}/tasks/{task}/retry", post(hooks_api::retry_service))
        .route("/api/v1/webhooks", get(hooks_api::list_webhooks).post(hooks_api::create_webhook))
        .route("/api/v1/webhooks/{id}", get(hooks_api::webhook).delete(hooks_api::delete_webhook))
        .route("/api/v1/webhooks/{id}/enable", post(hooks_api::enable_webhook))
        .route("/api/v1/webhooks/{id}/disable", post(hooks_api::disable_webhook))
        .route("/api/v1/webhooks/{id}/deliveries", get(hooks_api::deliveries))
        .route("/api/v1/webhooks/{id}/deliveries/{delivery}", get(hooks_api::delivery))
        .route("/api/v1/webhooks/{id}/deliveries/{delivery}/redeliver", post(hooks_api::redeliver))
        .route(
            "/api/v1/templates/{key}/trigger",
            get(hooks_api::trigger)
                .put(hooks_api::set_trigger)
                .delete(hooks_api::delete_trigger)
                .post(hooks_api::trigger_with_token),
        )
        .route(
            "/hooks/triggers/{template}/{secret}",
            post(hooks_api::trigger_with_secret).layer(DefaultBodyLimit::max(TRIGGER_BODY_LIMIT)),
        )
        .route_layer(middleware::from_fn_with_state(app.clone(), guard::guard))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(app.config.max_json_bytes))
        .layer(middleware::from_fn_with_state(app.clone(), guard::observe))
        .with_state(app)
}

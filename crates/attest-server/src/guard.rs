//! Middleware: the guard every route passes (authenticate, authorize through
//! `access::authorize`, CSRF, idempotency keys) and the observer (request
//! ids, logs, metrics).

use std::sync::Arc;
use std::time::Instant;

use attest_store::IdempotentResponse;
use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::Digest as _;
use tracing::Instrument as _;

use crate::App;
use crate::access::{self, Credential, Principal};
use crate::authn::{self, constant_time_eq};
use crate::problem::{Problem, RefusedRule};
use crate::routes;

/// The authenticated caller, for handlers (`None`: anonymous on a public route).
#[derive(Debug, Clone)]
pub struct Caller(pub Option<Principal>);

impl Caller {
    /// The principal; the guard only lets anonymous callers reach public routes.
    pub fn principal(&self) -> Result<&Principal, Problem> {
        self.0.as_ref().ok_or_else(|| Problem::unauthorized("sign in first"))
    }
}

/// The matched route, for the observer's labels.
#[derive(Debug, Clone, Copy)]
pub struct RouteLabel(pub &'static str);

const MAX_IDEMPOTENCY_KEY: usize = 255;

pub async fn guard(State(app): State<Arc<App>>, matched: Option<MatchedPath>, req: Request, next: Next) -> Response {
    let path = matched.as_ref().map(MatchedPath::as_str).unwrap_or("");
    let method = if req.method() == Method::HEAD { "GET" } else { req.method().as_str() };
    let Some(spec) = routes::find(method, path) else {
        // Fail closed: a route without an entry in the table is never served.
        return Problem::new(StatusCode::METHOD_NOT_ALLOWED, "method-not-allowed", "this method is not allowed here")
            .into_response();
    };
    let mut res = guarded(app, spec, req, next).await;
    res.extensions_mut().insert(RouteLabel(spec.path));
    res
}

async fn guarded(app: Arc<App>, spec: &'static routes::RouteSpec, mut req: Request, next: Next) -> Response {
    // Pages answer a refusal as a page (or a redirect to sign in), the API as problem+json.
    let refuse = |problem: Problem, req: &Request| {
        if spec.is_page() { crate::web::refusal(problem, req) } else { problem.into_response() }
    };
    let principal = if spec.action == access::Action::Public {
        None
    } else if let Some(known) = authn::authenticate_cached(&app, req.headers()) {
        match known {
            Ok(p) => p,
            Err(problem) => return refuse(problem, &req),
        }
    } else {
        let headers = req.headers().clone();
        let a = app.clone();
        match tokio::task::spawn_blocking(move || authn::authenticate(&a, &headers)).await {
            Ok(Ok(p)) => p,
            Ok(Err(problem)) => return refuse(problem, &req),
            Err(_) => return refuse(Problem::internal("authentication failed"), &req),
        }
    };
    if let Err(problem) = access::authorize(principal.as_ref(), spec.action) {
        return refuse(problem, &req);
    }
    let unsafe_method = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if let Some(Principal { credential: Credential::Session { csrf, .. }, .. }) = &principal
        && unsafe_method
    {
        let sent = req.headers().get(authn::CSRF_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        let ok = if constant_time_eq(sent.as_bytes(), csrf.as_bytes()) {
            true
        } else if spec.is_page() && sent.is_empty() {
            // A page's form carries the token in its body, as the `csrf` field.
            let limit = (app.config.max_upload_bytes as usize).saturating_add(64 * 1024);
            match crate::web::form_csrf(req, limit).await {
                Ok((rebuilt, sent)) => {
                    req = rebuilt;
                    constant_time_eq(sent.as_bytes(), csrf.as_bytes())
                }
                Err(problem) => return crate::web::refusal(problem, &Request::new(Body::empty())),
            }
        } else {
            false
        };
        if !ok {
            return refuse(
                Problem::new(
                    StatusCode::FORBIDDEN,
                    "csrf",
                    "a signed-in browser must send the session's CSRF token in the X-CSRF-Token header",
                ),
                &req,
            );
        }
    }
    let key = match req.headers().get("idempotency-key") {
        Some(v) if *req.method() == Method::POST => match v.to_str() {
            Ok(k) if !k.is_empty() && k.len() <= MAX_IDEMPOTENCY_KEY && k.bytes().all(|b| b.is_ascii_graphic()) => {
                Some(k.to_string())
            }
            _ => {
                return Problem::bad_request("Idempotency-Key must be 1 to 255 visible ASCII characters")
                    .into_response();
            }
        },
        _ => None,
    };
    req.extensions_mut().insert(Caller(principal.clone()));
    match (key, principal) {
        (Some(key), Some(p)) => idempotent(app, p, key, req, next).await,
        _ => next.run(req).await,
    }
}

/// Runs a POST at most once per (caller, key): a repeat gets the stored response.
async fn idempotent(app: Arc<App>, p: Principal, key: String, req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    let limit = (app.config.max_upload_bytes as usize).max(app.config.max_json_bytes) + 64 * 1024;
    let bytes = match axum::body::to_bytes(body, limit).await {
        Ok(b) => b,
        Err(_) => return Problem::too_large("the request body is too large").into_response(),
    };
    let mut h = sha2::Sha256::new();
    h.update(parts.method.as_str().as_bytes());
    h.update(b" ");
    h.update(parts.uri.path().as_bytes());
    h.update(b"\n");
    h.update(&bytes);
    let fingerprint = hex::encode(h.finalize());
    let who = p.key();
    let slot = format!("{who}\u{0}{key}");
    {
        let a = app.clone();
        let (w, k) = (who.clone(), key.clone());
        let stored = tokio::task::spawn_blocking(move || a.auth.idempotent_response(&w, &k)).await;
        match stored {
            Ok(Ok(Some(r))) => {
                if r.fingerprint != fingerprint {
                    return Problem::unprocessable("this Idempotency-Key was used for a different request")
                        .into_response();
                }
                let mut res = Response::new(Body::from(r.body));
                *res.status_mut() = StatusCode::from_u16(r.status).unwrap_or(StatusCode::OK);
                if let Ok(v) = HeaderValue::from_str(&r.content_type) {
                    res.headers_mut().insert(header::CONTENT_TYPE, v);
                }
                res.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
                return res;
            }
            Ok(Ok(None)) => {}
            Ok(Err(e)) => return Problem::from(e).into_response(),
            Err(_) => return Problem::internal("idempotency lookup failed").into_response(),
        }
    }
    let fresh = app.inflight_keys.lock().map(|mut s| s.insert(slot.clone())).unwrap_or(false);
    if !fresh {
        return Problem::conflict("a request with this Idempotency-Key is still in progress").into_response();
    }
    let res = next.run(Request::from_parts(parts, Body::from(bytes))).await;
    let (parts, body) = res.into_parts();
    let body = axum::body::to_bytes(body, 16 * 1024 * 1024).await.unwrap_or_default();
    if !parts.status.is_server_error() {
        let stored = IdempotentResponse {
            fingerprint,
            status: parts.status.as_u16(),
            content_type: parts
                .headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("application/json")
                .to_string(),
            body: body.to_vec(),
        };
        let a = app.clone();
        let _ = tokio::task::spawn_blocking(move || a.auth.put_idempotent_response(&who, &key, &stored, a.now())).await;
    }
    if let Ok(mut s) = app.inflight_keys.lock() {
        s.remove(&slot);
    }
    Response::from_parts(parts, Body::from(body))
}

/// Request ids, a span per request, one log line, and the request metrics.
pub async fn observe(State(app): State<Arc<App>>, mut req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    if let Ok(v) = HeaderValue::from_str(&id) {
        req.headers_mut().insert("x-request-id", v);
    }
    let method = req.method().clone();
    let uri_path = req.uri().path().to_string();
    let span = tracing::info_span!("request", request_id = %id, method = %method, path = %uri_path);
    let started = Instant::now();
    let mut res = next.run(req).instrument(span.clone()).await;
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    let route = res.extensions().get::<RouteLabel>().map_or("unmatched", |r| r.0);
    let status = res.status().as_u16();
    app.metrics.request(method.as_str(), route, status, ms);
    if let Some(RefusedRule(rule)) = res.extensions().get::<RefusedRule>() {
        app.metrics.refusal(rule);
    }
    if let Ok(v) = HeaderValue::from_str(&id) {
        res.headers_mut().insert("x-request-id", v);
    }
    span.in_scope(|| {
        if status >= 500 {
            tracing::error!(status, ms, route, "request failed");
        } else {
            tracing::info!(status, ms, route, "request");
        }
    });
    res
}

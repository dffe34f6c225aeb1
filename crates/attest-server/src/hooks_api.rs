//! Handlers for integrations: webhook subscriptions and their delivery log,
//! and inbound run triggers (a secret URL per template, or an API token).

use std::net::SocketAddr;
use std::sync::Arc;

use attest_core::hooks::{NewSubscription, NewTrigger};
use attest_store::hooks::{SubscriptionRow, TriggerMapping, TriggerRow};
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse as _, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::{JsonBody, PathParams, QueryParams, blocking, created, execute, run_state_json};
use crate::guard::Caller;
use crate::problem::{ApiResult, Problem};
use crate::{App, authn, webhooks};

type AppState = State<Arc<App>>;

/// Most deliveries one page lists.
const MAX_DELIVERY_PAGE: u32 = 200;

fn subscription_json(s: &SubscriptionRow) -> Value {
    json!({
        "id": s.id, "url": s.url, "template": s.template, "event_types": s.event_types, "enabled": s.enabled,
        "disabled_reason": s.disabled_reason, "disabled_at": s.disabled_at, "created_by": s.created_by,
        "created_at": s.created_at,
    })
}

fn to_value<T: serde::Serialize>(v: &T) -> ApiResult<Value> {
    serde_json::to_value(v).map_err(|e| Problem::internal(e.to_string()))
}

pub async fn list_webhooks(State(app): AppState) -> ApiResult<Json<Value>> {
    let rows = blocking(move || Ok(app.hooks.subscriptions()?)).await?;
    Ok(Json(json!({"items": rows.iter().map(subscription_json).collect::<Vec<_>>()})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewWebhook {
    url: String,
    template: Option<String>,
    #[serde(default)]
    event_types: Vec<String>,
}

pub async fn create_webhook(
    State(app): AppState,
    Extension(caller): Extension<Caller>,
    JsonBody(b): JsonBody<NewWebhook>,
) -> ApiResult<Response> {
    let by = caller.principal()?.actor.clone();
    let secret = webhooks::new_secret();
    let shown = secret.clone();
    let row = blocking(move || {
        let new = NewSubscription { url: b.url, secret, template: b.template, event_types: b.event_types };
        Ok(app.read.create_subscription(app.hooks.as_ref(), &by, new, app.now())?)
    })
    .await?;
    let mut body = subscription_json(&row);
    body["secret"] = json!(shown);
    let mut res = created(body);
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}

fn find_subscription(app: &App, id: &str) -> ApiResult<SubscriptionRow> {
    app.hooks.subscription(id)?.ok_or_else(|| Problem::not_found(format!("no webhook subscription with id {id}")))
}

pub async fn webhook(State(app): AppState, PathParams(id): PathParams<String>) -> ApiResult<Json<Value>> {
    let row = blocking(move || find_subscription(&app, &id)).await?;
    Ok(Json(subscription_json(&row)))
}

pub async fn delete_webhook(
    State(app): AppState,
    Extension(caller): Extension<Caller>,
    PathParams(id): PathParams<String>,
) -> ApiResult<Json<Value>> {
    let by = caller.principal()?.actor.clone();
    blocking(move || Ok(app.read.delete_subscription(app.hooks.as_ref(), &by, &id, app.now())?)).await?;
    Ok(Json(json!({"ok": true})))
}

/// A use case that changes one subscription (enable, disable, delete).
pub(crate) type SubscriptionChange = fn(
    &attest_core::Workspace,
    &dyn attest_store::HookStore,
    &attest_engine::Actor,
    &str,
    jiff::Timestamp,
) -> attest_core::Result<()>;

/// Switches a subscription on or off as the caller and answers it as it now is.
async fn switch_webhook(
    app: Arc<App>,
    caller: Caller,
    id: String,
    change: SubscriptionChange,
) -> ApiResult<Json<Value>> {
    let by = caller.principal()?.actor.clone();
    let row = blocking(move || {
        change(&app.read, app.hooks.as_ref(), &by, &id, app.now())?;
        find_subscription(&app, &id)
    })
    .await?;
    Ok(Json(subscription_json(&row)))
}

pub async fn enable_webhook(
    State(app): AppState,
    Extension(caller): Extension<Caller>,
    PathParams(id): PathParams<String>,
) -> ApiResult<Json<Value>> {
    switch_webhook(app, caller, id, attest_core::Workspace::enable_subscription).await
}

pub async fn disable_webhook(
    State(app): AppState,
    Extension(caller): Extension<Caller>,
    PathParams(id): PathParams<String>,
) -> ApiResult<Json<Value>> {
    switch_webhook(app, caller, id, attest_core::Workspace::disable_subscription).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryPage {
    limit: Option<u32>,
    cursor: Option<u64>,
}

pub async fn deliveries(
    State(app): AppState,
    PathParams(id): PathParams<String>,
    QueryParams(q): QueryParams<DeliveryPage>,
) -> ApiResult<Json<Value>> {
    let limit = q.limit.unwrap_or(50);
    if !(1..=MAX_DELIVERY_PAGE).contains(&limit) {
        return Err(Problem::bad_request(format!("limit must be between 1 and {MAX_DELIVERY_PAGE}")));
    }
    // The documented bound: the largest integer a JSON client reads exactly.
    if q.cursor.is_some_and(|c| c > (1 << 53) - 1) {
        return Err(Problem::bad_request("cursor must be at most 2^53 - 1"));
    }
    let rows = blocking(move || {
        find_subscription(&app, &id)?;
        Ok(app.hooks.deliveries(&id, q.cursor, limit)?)
    })
    .await?;
    let next = if rows.len() as u32 == limit { rows.last().map(|d| d.seq) } else { None };
    Ok(Json(json!({"items": to_value(&rows)?, "next_cursor": next})))
}

pub async fn delivery(
    State(app): AppState,
    PathParams((id, delivery)): PathParams<(String, String)>,
) -> ApiResult<Json<Value>> {
    blocking(move || {
        let d = app
            .hooks
            .delivery(&delivery)?
            .filter(|d| d.subscription == id)
            .ok_or_else(|| Problem::not_found(format!("no delivery {delivery} of webhook {id}")))?;
        let attempts = app.hooks.attempts(&delivery)?;
        let mut body = to_value(&d)?;
        body["payload"] = serde_json::from_str(&d.payload).unwrap_or(Value::Null);
        body["attempt_log"] = to_value(&attempts)?;
        Ok(Json(body))
    })
    .await
}

pub async fn redeliver(
    State(app): AppState,
    PathParams((id, delivery)): PathParams<(String, String)>,
) -> ApiResult<Json<Value>> {
    blocking(move || {
        app.hooks
            .delivery(&delivery)?
            .filter(|d| d.subscription == id)
            .ok_or_else(|| Problem::not_found(format!("no delivery {delivery} of webhook {id}")))?;
        app.hooks.redeliver(&delivery, app.now())?;
        let d = app.hooks.delivery(&delivery)?.ok_or_else(|| Problem::not_found("the delivery was deleted"))?;
        Ok(Json(to_value(&d)?))
    })
    .await
}

/// `POST /api/v1/runs/{run}/tasks/{task}/retry`: makes a failed service call again.
pub async fn retry_service(
    State(app): AppState,
    Extension(caller): Extension<Caller>,
    PathParams((run, task)): PathParams<(String, String)>,
) -> ApiResult<Json<Value>> {
    execute(&app, &caller, "retry_service", run, attest_engine::Command::RetryService { task }).await
}

// ----- triggers -----

fn trigger_json(t: &TriggerRow) -> ApiResult<Value> {
    Ok(json!({
        "template": t.template, "run_as": t.run_as, "mapping": to_value(&t.mapping)?, "created_by": t.created_by,
        "created_at": t.created_at,
    }))
}

pub async fn trigger(State(app): AppState, PathParams(key): PathParams<String>) -> ApiResult<Json<Value>> {
    let row = blocking(move || {
        app.hooks.trigger(&key)?.ok_or_else(|| Problem::not_found(format!("template {key} has no trigger")))
    })
    .await?;
    Ok(Json(trigger_json(&row)?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetTrigger {
    run_as: Option<String>,
    #[serde(default)]
    mapping: Vec<TriggerMapping>,
}

pub async fn set_trigger(
    State(app): AppState,
    Extension(caller): Extension<Caller>,
    PathParams(key): PathParams<String>,
    JsonBody(b): JsonBody<SetTrigger>,
) -> ApiResult<Response> {
    let principal = caller.principal()?;
    let by = principal.actor.clone();
    let run_as = match b.run_as {
        Some(email) => email,
        None if principal.is_person() => by.id.to_string(),
        None => return Err(Problem::bad_request("a token must name the person runs start as in run_as")),
    };
    let secret = authn::random_secret(32);
    let shown = secret.clone();
    let row = blocking(move || {
        let new = NewTrigger { template: key, secret, run_as, mapping: b.mapping };
        Ok(app.read.set_trigger(app.hooks.as_ref(), &by, new, app.now())?)
    })
    .await?;
    let mut body = trigger_json(&row)?;
    body["secret"] = json!(shown);
    body["url"] = json!(format!("/hooks/triggers/{}/{shown}", row.template));
    let mut res = created(body);
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}

pub async fn delete_trigger(
    State(app): AppState,
    Extension(caller): Extension<Caller>,
    PathParams(key): PathParams<String>,
) -> ApiResult<Json<Value>> {
    let by = caller.principal()?.actor.clone();
    blocking(move || Ok(app.read.remove_trigger(app.hooks.as_ref(), &by, &key, app.now())?)).await?;
    Ok(Json(json!({"ok": true})))
}

fn started(state: &attest_engine::RunState) -> Response {
    let mut res = created(run_state_json(state));
    if let Ok(v) = HeaderValue::from_str(&format!("/api/v1/runs/{}", state.run_id)) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    res
}

/// `POST /api/v1/templates/{key}/trigger`: starts a run as the caller, with
/// the template's trigger mapping (if it has one) applied to the body.
pub async fn trigger_with_token(
    State(app): AppState,
    Extension(caller): Extension<Caller>,
    PathParams(key): PathParams<String>,
    JsonBody(payload): JsonBody<Value>,
) -> ApiResult<Response> {
    let by = caller.principal()?.actor.clone();
    app.metrics.command("trigger");
    let state = blocking(move || {
        let mapping = app.hooks.trigger(&key)?.map(|t| t.mapping).unwrap_or_default();
        Ok(app.write.start_from_payload(&by, &key, &mapping, &payload, None, app.now())?)
    })
    .await?;
    Ok(started(&state))
}

/// `POST /hooks/triggers/{template}/{secret}`: the secret URL. A wrong secret
/// and a template without a trigger get the same 401, and a log line. Each
/// template's URL is rate limited (`Config::trigger_rate`): over it, a 429
/// with `Retry-After`, before the secret is even looked at.
pub async fn trigger_with_secret(
    State(app): AppState,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    PathParams((template, secret)): PathParams<(String, String)>,
    JsonBody(payload): JsonBody<Value>,
) -> ApiResult<Response> {
    if let Err(wait) = app.trigger_limiter.take(&template) {
        tracing::warn!(template = %template, peer = %peer.ip(), "trigger refused: rate limit");
        let mut res = Problem::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too-many-triggers",
            format!("the trigger URL of {template} was called too often; try again in {wait} s"),
        )
        .into_response();
        if let Ok(v) = HeaderValue::from_str(&wait.to_string()) {
            res.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return Ok(res);
    }
    let a = app.clone();
    let t = template.clone();
    let trigger = blocking(move || Ok(a.read.check_trigger_secret(a.hooks.as_ref(), &t, &secret)?)).await?;
    let Some(trigger) = trigger else {
        tracing::warn!(template = %template, peer = %peer.ip(), "trigger refused: wrong secret or no trigger");
        return Err(Problem::new(StatusCode::UNAUTHORIZED, "unauthorized", "unknown trigger URL"));
    };
    let state = blocking(move || {
        let by = app.write.person(&trigger.run_as)?;
        Ok(app.write.start_from_payload(&by, &template, &trigger.mapping, &payload, None, app.now())?)
    })
    .await?;
    Ok(started(&state))
}

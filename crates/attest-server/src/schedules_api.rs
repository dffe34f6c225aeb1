//! Handlers for schedules, workspace settings (time zone, mail) and mail
//! (the outbox admins watch, each person's opt-out). Their routes are the
//! "scheduling" block of the route table.

use std::sync::Arc;

use attest_core::mail::{self, MailSettings};
use attest_core::schedule::{self, NewSchedule};
use attest_core::scheduler::EMAIL;
use attest_store::{JobFilter, JobState, JobStore as _, ScheduleRow, ScheduleStore as _, SettingsStore as _};
use axum::extract::State;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::App;
use crate::api::{JsonBody, PathParams, QueryParams, blocking, created};
use crate::guard::Caller;
use crate::problem::{ApiResult, Problem};

type AppState = State<Arc<App>>;

/// The scheduling routes, added to the router before the guard layer.
pub fn routes(router: Router<Arc<App>>) -> Router<Arc<App>> {
    router
        .route("/api/v1/schedules", get(list).post(create))
        .route("/api/v1/schedules/{id}", get(one).delete(remove))
        .route("/api/v1/schedules/{id}/pause", post(pause))
        .route("/api/v1/schedules/{id}/resume", post(resume))
        .route("/api/v1/settings", get(settings))
        .route("/api/v1/settings/time-zone", post(set_time_zone))
        .route("/api/v1/settings/mail", post(set_mail))
        .route("/api/v1/mail/outbox", get(outbox))
        .route("/api/v1/me/mail", get(my_mail).post(set_my_mail))
        .route("/api/v1/me/time-zone", get(my_time_zone).post(set_my_time_zone))
}

fn schedule_json(row: &ScheduleRow) -> Value {
    let rule: Value = serde_json::from_str(&row.rule).unwrap_or(Value::Null);
    json!({
        "id": row.id, "template": row.template, "name_pattern": row.name_pattern, "rule": rule,
        "time_zone": row.time_zone, "starts_as": row.starts_as, "paused": row.paused, "next_at": row.next_at,
        "last_fired_at": row.last_fired_at, "created_by": row.created_by, "created_at": row.created_at,
        "due_days": row.due_days, "due_business_days": row.due_business_days,
    })
}

async fn list(State(app): AppState) -> ApiResult<Json<Value>> {
    let rows = blocking(move || Ok(app.sched_store.schedules()?)).await?;
    Ok(Json(json!({"items": rows.iter().map(schedule_json).collect::<Vec<_>>()})))
}

async fn create(
    State(app): AppState,
    Extension(caller): Extension<Caller>,
    JsonBody(body): JsonBody<NewSchedule>,
) -> ApiResult<Response> {
    let by = caller.principal()?.actor.clone();
    let row = blocking(move || {
        let now = app.now();
        Ok(schedule::create(app.scheduler.workspace(), app.sched_store.as_ref(), &by, body, now)?)
    })
    .await?;
    Ok(created(schedule_json(&row)))
}

async fn one(State(app): AppState, PathParams(id): PathParams<String>) -> ApiResult<Json<Value>> {
    let row = blocking(move || {
        app.sched_store.schedule(&id)?.ok_or_else(|| Problem::not_found(format!("no schedule with id {id}")))
    })
    .await?;
    Ok(Json(schedule_json(&row)))
}

async fn remove(
    State(app): AppState,
    Extension(caller): Extension<Caller>,
    PathParams(id): PathParams<String>,
) -> ApiResult<Json<Value>> {
    let by = caller.principal()?.actor.clone();
    blocking(move || Ok(schedule::delete(app.sched_store.as_ref(), &by, &id, app.now())?)).await?;
    Ok(Json(json!({"ok": true})))
}

async fn pause(
    State(app): AppState,
    Extension(caller): Extension<Caller>,
    PathParams(id): PathParams<String>,
) -> ApiResult<Json<Value>> {
    let by = caller.principal()?.actor.clone();
    let row = blocking(move || Ok(schedule::pause(app.sched_store.as_ref(), &by, &id, app.now())?)).await?;
    Ok(Json(schedule_json(&row)))
}

async fn resume(
    State(app): AppState,
    Extension(caller): Extension<Caller>,
    PathParams(id): PathParams<String>,
) -> ApiResult<Json<Value>> {
    let by = caller.principal()?.actor.clone();
    let row = blocking(move || Ok(schedule::resume(app.sched_store.as_ref(), &by, &id, app.now())?)).await?;
    Ok(Json(schedule_json(&row)))
}

/// Mail settings as shown: the password is never returned.
fn settings_json(app: &App) -> ApiResult<Value> {
    let zone = mail::time_zone_name(app.sched_store.as_ref())?;
    let mail = mail::mail_settings(app.sched_store.as_ref())?.map(|m| {
        json!({"smtp_host": m.smtp_host, "smtp_port": m.smtp_port, "tls": m.tls, "from": m.from,
               "username": m.username, "password_set": m.password.is_some(), "base_url": m.base_url})
    });
    Ok(json!({"time_zone": zone, "mail": mail}))
}

async fn settings(State(app): AppState) -> ApiResult<Json<Value>> {
    Ok(Json(blocking(move || settings_json(&app)).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TimeZoneBody {
    time_zone: String,
}

async fn set_time_zone(
    State(app): AppState,
    Extension(caller): Extension<Caller>,
    JsonBody(body): JsonBody<TimeZoneBody>,
) -> ApiResult<Json<Value>> {
    let by = caller.principal()?.actor.clone();
    let value = blocking(move || {
        let (_, tz) = mail::set_time_zone(app.sched_store.as_ref(), &by, &body.time_zone, app.now())?;
        app.set_time_zone(tz);
        app.scheduler.refollow(app.now())?;
        settings_json(&app)
    })
    .await?;
    Ok(Json(value))
}

async fn set_mail(
    State(app): AppState,
    Extension(caller): Extension<Caller>,
    JsonBody(body): JsonBody<MailSettings>,
) -> ApiResult<Json<Value>> {
    let by = caller.principal()?.actor.clone();
    let value = blocking(move || {
        mail::set_mail_settings(app.sched_store.as_ref(), &by, &body, app.now())?;
        settings_json(&app)
    })
    .await?;
    Ok(Json(value))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OutboxQuery {
    state: Option<String>,
    failing: Option<bool>,
    limit: Option<u32>,
}

/// Mail waiting, sent or given up on, newest first; `failing=true` keeps
/// only messages whose sending failed at least once, with the last error.
async fn outbox(State(app): AppState, QueryParams(q): QueryParams<OutboxQuery>) -> ApiResult<Json<Value>> {
    let limit = q.limit.unwrap_or(50);
    if !(1..=1000).contains(&limit) {
        return Err(Problem::bad_request("limit must be between 1 and 1000"));
    }
    let state = match q.state.as_deref() {
        None => None,
        Some(s) => {
            Some(JobState::parse(s).ok_or_else(|| Problem::bad_request("state must be pending, done or failed"))?)
        }
    };
    let filter = JobFilter { kind: Some(EMAIL.into()), state, with_errors: q.failing.unwrap_or(false), limit };
    let jobs = blocking(move || Ok(app.sched_store.jobs(&filter)?)).await?;
    let items: Vec<Value> = jobs
        .iter()
        .map(|j| {
            let mail: Value = serde_json::from_str(&j.payload).unwrap_or(Value::Null);
            json!({"id": j.id, "kind": mail["kind"], "to": mail["to"], "subject": mail["subject"],
                   "state": j.state, "attempts": j.attempts, "last_error": j.last_error, "next_attempt_at": j.run_at,
                   "created_at": j.created_at, "finished_at": j.finished_at})
        })
        .collect();
    Ok(Json(json!({"items": items})))
}

async fn my_mail(State(app): AppState, Extension(caller): Extension<Caller>) -> ApiResult<Json<Value>> {
    let email = caller.principal()?.actor.id.clone();
    let opt_out = blocking(move || Ok(app.sched_store.mail_opt_out(&email)?)).await?;
    Ok(Json(json!({"opt_out": opt_out})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MailPreference {
    opt_out: bool,
}

/// Opting out stops non-essential mail; escalations and approval requests still come.
async fn set_my_mail(
    State(app): AppState,
    Extension(caller): Extension<Caller>,
    JsonBody(body): JsonBody<MailPreference>,
) -> ApiResult<Json<Value>> {
    let principal = caller.principal()?;
    if principal.actor.kind != attest_engine::ActorKind::Person {
        return Err(Problem::bad_request("mail preferences belong to people, not to API tokens"));
    }
    let email = principal.actor.id.clone();
    blocking(move || Ok(app.sched_store.set_mail_opt_out(&email, body.opt_out)?)).await?;
    Ok(Json(json!({"opt_out": body.opt_out})))
}

fn my_time_zone_json(app: &App, email: &str) -> ApiResult<Value> {
    let mine = app.sched_store.person_time_zone(email)?;
    let effective = mail::viewer_time_zone(app.sched_store.as_ref(), email, &app.read.time_zone())?;
    Ok(json!({"time_zone": mine, "effective": effective.iana_name().unwrap_or("UTC")}))
}

async fn my_time_zone(State(app): AppState, Extension(caller): Extension<Caller>) -> ApiResult<Json<Value>> {
    let email = caller.principal()?.actor.id.clone();
    Ok(Json(blocking(move || my_time_zone_json(&app, &email)).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MyTimeZone {
    time_zone: Option<String>,
}

/// A person's own zone for showing times; `null` goes back to the workspace's.
async fn set_my_time_zone(
    State(app): AppState,
    Extension(caller): Extension<Caller>,
    JsonBody(body): JsonBody<MyTimeZone>,
) -> ApiResult<Json<Value>> {
    let principal = caller.principal()?;
    if principal.actor.kind != attest_engine::ActorKind::Person {
        return Err(Problem::bad_request("a time zone belongs to a person, not to an API token"));
    }
    let email = principal.actor.id.clone();
    let value = blocking(move || {
        mail::set_person_time_zone(app.sched_store.as_ref(), &email, body.time_zone.as_deref())?;
        my_time_zone_json(&app, &email)
    })
    .await?;
    Ok(Json(value))
}

//! Integrations: webhook subscriptions (created with their signing secret
//! shown once, enabled, disabled, deleted) with their delivery log and manual
//! redelivery, and each template's trigger URL (created or rotated with the
//! secret URL shown once, its payload mapping edited, revoked). The same use
//! cases as `hooks_api.rs`.

use std::sync::Arc;

use askama::Template;
use attest_core::hooks::{EVENT_TYPES, NewSubscription, NewTrigger, parse_url};
use attest_core::workspace::parse_email;
use attest_store::hooks::TriggerMapping;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Extension, Router};
use serde::Deserialize;

use super::{Chrome, FieldErrors, FormBody, OkQuery, Viewer, WebResult, blocking, page_with, see_other, when_in};
use crate::guard::Caller;
use crate::problem::Problem;
use crate::{App, authn, webhooks};

pub fn routes(r: Router<Arc<App>>) -> Router<Arc<App>> {
    r.route("/admin/webhooks", get(webhooks_page).post(create_webhook))
        .route("/admin/webhooks/{id}", get(webhook_page))
        .route("/admin/webhooks/{id}/enable", post(enable_webhook))
        .route("/admin/webhooks/{id}/disable", post(disable_webhook))
        .route("/admin/webhooks/{id}/delete", post(delete_webhook))
        .route("/admin/webhooks/{id}/deliveries/{delivery}/redeliver", post(redeliver))
        .route("/templates/{key}/trigger", get(trigger_page).post(set_trigger))
        .route("/templates/{key}/trigger/revoke", post(revoke_trigger))
}

/// Deliveries one page of the log shows.
const DELIVERY_PAGE: u32 = 50;

/// A secret shown once on the page that made it.
struct Secret {
    what: String,
    value: String,
}

fn notice(key: Option<&str>) -> Option<String> {
    let text = match key? {
        "enabled" => "Webhook enabled: its pending deliveries go out again.",
        "disabled" => "Webhook disabled: deliveries wait until it is enabled.",
        "deleted" => "Webhook deleted with its delivery log.",
        "redelivered" => "Delivery queued again.",
        "mapping" => "Trigger saved; its secret URL is unchanged.",
        "revoked" => "Trigger URL revoked: it starts no more runs.",
        other => return super::flash(Some(other)),
    };
    Some(text.to_string())
}

// ----- webhook subscriptions -----

struct SubscriptionView {
    id: String,
    url: String,
    scope: String,
    events: String,
    enabled: bool,
    disabled: String,
    created: String,
    created_by: String,
}

#[derive(Template)]
#[template(path = "webhooks.html")]
struct WebhooksPage {
    chrome: Chrome,
    subscriptions: Vec<SubscriptionView>,
    templates: Vec<(String, String)>,
    event_types: &'static [&'static str],
    secret: Option<Secret>,
    errors: FieldErrors,
    typed: FormBody,
}

impl WebhooksPage {
    fn checked(&self, event_type: &str) -> bool {
        self.typed.all("event_types").any(|t| t == event_type)
    }
}

async fn webhooks_view(
    app: &Arc<App>,
    viewer: &Viewer,
    secret: Option<Secret>,
    errors: FieldErrors,
    typed: FormBody,
    notice: Option<String>,
) -> WebResult {
    let a = app.clone();
    let (rows, templates) = blocking(move || {
        let templates = super::template_choices(&a)?;
        Ok((a.hooks.subscriptions()?, templates))
    })
    .await?;
    let tz = app.read.time_zone();
    let subscriptions = rows
        .into_iter()
        .map(|s| SubscriptionView {
            scope: s.template.map(|t| format!("runs of {t}")).unwrap_or_else(|| "every template".into()),
            events: if s.event_types.is_empty() {
                "all events".into()
            } else {
                format!("only {}", s.event_types.join(", "))
            },
            enabled: s.enabled,
            disabled: match (s.disabled_reason, s.disabled_at) {
                (Some(r), Some(at)) => format!("{r} ({})", when_in(at, &tz)),
                (Some(r), None) => r,
                (None, _) => String::new(),
            },
            created: when_in(s.created_at, &tz),
            created_by: s.created_by,
            id: s.id,
            url: s.url,
        })
        .collect();
    let chrome = Chrome::load(app, viewer, "admin").await?.with_notice(notice);
    let status = if errors.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    let page = WebhooksPage { chrome, subscriptions, templates, event_types: EVENT_TYPES, secret, errors, typed };
    Ok(page_with(status, &page))
}

async fn webhooks_page(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<OkQuery>,
) -> WebResult {
    let viewer = Viewer::of(&caller)?;
    webhooks_view(&app, &viewer, None, FieldErrors::default(), FormBody::default(), notice(q.ok.as_deref())).await
}

async fn create_webhook(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    form: FormBody,
) -> WebResult {
    let viewer = Viewer::of(&caller)?;
    let mut errors = FieldErrors::default();
    let url = match parse_url(&form.text("url")) {
        Ok(u) => u,
        Err(e) => {
            errors.add("url", Problem::from(e).detail);
            String::new()
        }
    };
    let template = Some(form.text("template")).filter(|t| !t.is_empty());
    let event_types: Vec<String> = form.all("event_types").map(str::to_string).collect();
    if let Some(t) = event_types.iter().find(|t| !EVENT_TYPES.contains(&t.as_str())) {
        errors.add("event_types", format!("'{t}' is not an event type"));
    }
    if errors.is_empty() {
        let (a, by) = (app.clone(), viewer.principal.actor.clone());
        let secret = webhooks::new_secret();
        let new = NewSubscription { url, secret: secret.clone(), template, event_types };
        let made = blocking(move || {
            if let Some(key) = &new.template
                && let Err(e) = a.read.template_row(key, None)
            {
                return Ok(Err(("template", Problem::from(e))));
            }
            let now = a.now();
            Ok(a.read.create_subscription(a.hooks.as_ref(), &by, new, now).map_err(|e| ("", Problem::from(e))))
        })
        .await?;
        match made {
            Ok(row) => {
                let shown = Secret { what: format!("Signing secret of the webhook to {}", row.url), value: secret };
                let notice = Some("Webhook created. Copy its signing secret now: it is shown only once.".to_string());
                return webhooks_view(&app, &viewer, Some(shown), errors, FormBody::default(), notice).await;
            }
            Err((field, p)) if p.status < 500 => errors.add(field, p.detail),
            Err((_, p)) => return Err(p.into()),
        }
    }
    webhooks_view(&app, &viewer, None, errors, form, None).await
}

/// Makes a change to one subscription as the viewer, then goes back to the
/// list with its notice.
async fn change_webhook(
    app: Arc<App>,
    caller: Caller,
    id: String,
    change: crate::hooks_api::SubscriptionChange,
    ok: &str,
) -> WebResult {
    let by = Viewer::of(&caller)?.principal.actor;
    blocking(move || {
        let now = app.now();
        Ok(change(&app.read, app.hooks.as_ref(), &by, &id, now)?)
    })
    .await?;
    Ok(see_other(&format!("/admin/webhooks?ok={ok}")))
}

async fn enable_webhook(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> WebResult {
    change_webhook(app, caller, id, attest_core::Workspace::enable_subscription, "enabled").await
}

async fn disable_webhook(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> WebResult {
    change_webhook(app, caller, id, attest_core::Workspace::disable_subscription, "disabled").await
}

async fn delete_webhook(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> WebResult {
    change_webhook(app, caller, id, attest_core::Workspace::delete_subscription, "deleted").await
}

// ----- the delivery log -----

struct DeliveryView {
    id: String,
    seq: u64,
    run: Option<String>,
    event_type: String,
    status: &'static str,
    attempts: u32,
    last_status: String,
    last_error: String,
    next_attempt: String,
    created: String,
}

#[derive(Template)]
#[template(path = "webhook.html")]
struct WebhookPage {
    chrome: Chrome,
    id: String,
    url: String,
    scope: String,
    events: String,
    enabled: bool,
    disabled: String,
    deliveries: Vec<DeliveryView>,
    next_cursor: Option<u64>,
    zone: String,
}

#[derive(Deserialize)]
struct LogQuery {
    ok: Option<String>,
    cursor: Option<u64>,
}

async fn webhook_page(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    Query(q): Query<LogQuery>,
) -> WebResult {
    let viewer = Viewer::of(&caller)?;
    let a = app.clone();
    let cursor = q.cursor;
    let (sub, rows) = blocking(move || {
        let sub = a
            .hooks
            .subscription(&id)?
            .ok_or_else(|| Problem::not_found(format!("no webhook subscription with id {id}")))?;
        let rows = a.hooks.deliveries(&id, cursor, DELIVERY_PAGE)?;
        Ok((sub, rows))
    })
    .await?;
    let tz = app.read.time_zone();
    let next_cursor = if rows.len() as u32 == DELIVERY_PAGE { rows.last().map(|d| d.seq) } else { None };
    let deliveries = rows
        .into_iter()
        .map(|d| DeliveryView {
            status: d.status.as_str(),
            attempts: d.attempts,
            last_status: d.last_status.map(|s| s.to_string()).unwrap_or_default(),
            last_error: d.last_error.unwrap_or_default(),
            next_attempt: d.next_attempt_at.map(|t| when_in(t, &tz)).unwrap_or_default(),
            created: when_in(d.created_at, &tz),
            id: d.id,
            seq: d.seq,
            run: d.run,
            event_type: d.event_type,
        })
        .collect();
    let chrome = Chrome::load(&app, &viewer, "admin").await?.with_notice(notice(q.ok.as_deref()));
    let page = WebhookPage {
        chrome,
        scope: sub.template.map(|t| format!("runs of {t}")).unwrap_or_else(|| "every template".into()),
        events: if sub.event_types.is_empty() {
            "all events".into()
        } else {
            format!("only {}", sub.event_types.join(", "))
        },
        enabled: sub.enabled,
        disabled: sub.disabled_reason.unwrap_or_default(),
        id: sub.id,
        url: sub.url,
        deliveries,
        next_cursor,
        zone: tz.iana_name().unwrap_or("UTC").to_string(),
    };
    Ok(page_with(StatusCode::OK, &page))
}

async fn redeliver(State(app): State<Arc<App>>, Path((id, delivery)): Path<(String, String)>) -> WebResult {
    let back = format!("/admin/webhooks/{}?ok=redelivered", super::urlencode(&id));
    blocking(move || {
        app.hooks
            .delivery(&delivery)?
            .filter(|d| d.subscription == id)
            .ok_or_else(|| Problem::not_found(format!("no delivery {delivery} of webhook {id}")))?;
        let now = app.now();
        Ok(app.hooks.redeliver(&delivery, now)?)
    })
    .await?;
    Ok(see_other(&back))
}

// ----- trigger URLs -----

#[derive(Template)]
#[template(path = "trigger.html")]
struct TriggerPage {
    chrome: Chrome,
    key: String,
    name: String,
    /// Whether the template has a trigger now.
    exists: bool,
    run_as: String,
    created: String,
    created_by: String,
    /// The first task's fields, which a mapping may fill.
    fields: Vec<String>,
    secret: Option<Secret>,
    errors: FieldErrors,
    typed: FormBody,
}

/// The mapping as the form shows it: one `/path -> field` a line, `?` after
/// the field for an optional path.
fn mapping_text(mapping: &[TriggerMapping]) -> String {
    mapping
        .iter()
        .map(|m| format!("{} -> {}{}", m.path, m.field, if m.required { "" } else { "?" }))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Most characters of the mapping text.
const MAX_MAPPING_CHARS: usize = 100_000;

fn parse_mapping(text: &str) -> Result<Vec<TriggerMapping>, String> {
    if text.len() > MAX_MAPPING_CHARS {
        return Err(format!("the mapping is at most {MAX_MAPPING_CHARS} characters"));
    }
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate().map(|(i, l)| (i + 1, l.trim())) {
        if line.is_empty() {
            continue;
        }
        let Some((path, field)) = line.split_once("->") else {
            return Err(format!("line {n}: write a JSON pointer, an arrow and a field, like /vendor/name -> vendor"));
        };
        let (path, field) = (path.trim(), field.trim());
        let (field, required) = match field.strip_suffix('?') {
            Some(f) => (f.trim(), false),
            None => (field, true),
        };
        if field.is_empty() {
            return Err(format!("line {n}: name the field after the arrow"));
        }
        out.push(TriggerMapping { path: path.to_string(), field: field.to_string(), required });
    }
    Ok(out)
}

async fn trigger_view(
    app: &Arc<App>,
    viewer: &Viewer,
    key: String,
    secret: Option<Secret>,
    errors: FieldErrors,
    typed: Option<FormBody>,
    notice: Option<String>,
) -> WebResult {
    let a = app.clone();
    let k = key.clone();
    let (name, fields, trigger) = blocking(move || {
        let row = a.read.template_row(&k, None)?;
        let compiled = a.read.compiled(&k, row.version)?;
        let fields = compiled
            .template
            .tasks
            .first()
            .map(|t| t.fields.iter().map(|f| f.key.clone()).collect())
            .unwrap_or_default();
        Ok((row.name, fields, a.hooks.trigger(&k)?))
    })
    .await?;
    let tz = app.read.time_zone();
    let typed = typed.unwrap_or_else(|| {
        let (run_as, mapping) = match &trigger {
            Some(t) => (t.run_as.clone(), mapping_text(&t.mapping)),
            None => (viewer.principal.actor.id.to_string(), String::new()),
        };
        FormBody(vec![("run_as".into(), run_as), ("mapping".into(), mapping)])
    });
    let chrome = Chrome::load(app, viewer, "templates").await?.with_notice(notice);
    let status = if errors.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    let page = TriggerPage {
        chrome,
        key,
        name,
        exists: trigger.is_some(),
        run_as: trigger.as_ref().map(|t| t.run_as.clone()).unwrap_or_default(),
        created: trigger.as_ref().map(|t| when_in(t.created_at, &tz)).unwrap_or_default(),
        created_by: trigger.map(|t| t.created_by).unwrap_or_default(),
        fields,
        secret,
        errors,
        typed,
    };
    Ok(page_with(status, &page))
}

async fn trigger_page(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Path(key): Path<String>,
    Query(q): Query<OkQuery>,
) -> WebResult {
    let viewer = Viewer::of(&caller)?;
    trigger_view(&app, &viewer, key, None, FieldErrors::default(), None, notice(q.ok.as_deref())).await
}

/// Saves the trigger: `action=rotate` makes a new secret URL (the first one
/// too), `action=save` keeps the current URL and changes who runs start as
/// and the mapping.
async fn set_trigger(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Path(key): Path<String>,
    form: FormBody,
) -> WebResult {
    let viewer = Viewer::of(&caller)?;
    let mut errors = FieldErrors::default();
    let run_as = match parse_email(&form.text("run_as")) {
        Ok(e) => e,
        Err(e) => {
            errors.add("run_as", Problem::from(e).detail);
            String::new()
        }
    };
    let mapping = match parse_mapping(form.get("mapping").unwrap_or("")) {
        Ok(m) => m,
        Err(message) => {
            errors.add("mapping", message);
            Vec::new()
        }
    };
    let rotate = form.get("action") != Some("save");
    if errors.is_empty() {
        let (a, by, k) = (app.clone(), viewer.principal.actor.clone(), key.clone());
        let secret = rotate.then(|| authn::random_secret(32));
        let s = secret.clone();
        let made = blocking(move || {
            if let Err(e) = a.read.person(&run_as) {
                return Ok(Err(("run_as", Problem::from(e))));
            }
            let now = a.now();
            let saved = match s {
                Some(secret) => {
                    a.read.set_trigger(a.hooks.as_ref(), &by, NewTrigger { template: k, secret, run_as, mapping }, now)
                }
                None => a.read.set_trigger_mapping(a.hooks.as_ref(), &by, &k, &run_as, mapping, now),
            };
            Ok(saved.map_err(|e| ("mapping", Problem::from(e))))
        })
        .await?;
        match (made, secret) {
            (Ok(_), Some(secret)) => {
                let path = format!("/hooks/triggers/{}/{secret}", super::urlencode(&key));
                // The full address when the workspace knows its own (the mail
                // settings' base URL); the path alone otherwise. The trigger is
                // saved by now, so a failed read must not hide its one showing.
                let a = app.clone();
                let settings = blocking(move || Ok(attest_core::mail::mail_settings(a.sched_store.as_ref())?)).await;
                let url = match settings {
                    Ok(Some(m)) => m.link(&path),
                    Ok(None) => path,
                    Err(e) => {
                        tracing::warn!(error = %e.detail, "mail settings unreadable; showing the trigger URL as a path");
                        path
                    }
                };
                let shown = Secret { what: "The trigger's secret URL (POST a JSON object to it)".into(), value: url };
                let notice = Some(
                    "Trigger URL created. Copy it now: it is shown only once; an earlier URL no longer works.".into(),
                );
                return trigger_view(&app, &viewer, key, Some(shown), errors, None, notice).await;
            }
            (Ok(_), None) => {
                return Ok(see_other(&format!("/templates/{}/trigger?ok=mapping", super::urlencode(&key))));
            }
            (Err((_, p)), _) if p.status == 404 && !rotate => {
                errors.add("", "this template has no trigger URL yet: create one first");
            }
            (Err((field, p)), _) if p.status < 500 => errors.add(field, p.detail),
            (Err((_, p)), _) => return Err(p.into()),
        }
    }
    trigger_view(&app, &viewer, key, None, errors, Some(form), None).await
}

async fn revoke_trigger(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Path(key): Path<String>,
) -> WebResult {
    let by = Viewer::of(&caller)?.principal.actor;
    let back = format!("/templates/{}/trigger?ok=revoked", super::urlencode(&key));
    blocking(move || {
        let now = app.now();
        Ok(app.read.remove_trigger(app.hooks.as_ref(), &by, &key, now)?)
    })
    .await?;
    Ok(see_other(&back))
}

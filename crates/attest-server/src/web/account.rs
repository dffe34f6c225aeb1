//! The account's time zone: each person may see times in their own zone
//! (the workspace's until they choose one). Due times on My work, the run
//! page and the runs list show in it, labelled with its name.

use std::sync::Arc;

use askama::Template;
use attest_store::SettingsStore as _;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Extension, Router};

use super::{Chrome, FieldErrors, FormBody, OkQuery, Viewer, WebResult, blocking, page_with, see_other};

use crate::App;
use crate::guard::Caller;
use crate::problem::Problem;

pub fn routes(r: Router<Arc<App>>) -> Router<Arc<App>> {
    r.route("/account/time-zone", get(form).post(save))
}

/// The zone a viewer sees times in: their own, else the workspace's.
pub fn viewer_zone(app: &App, viewer: &Viewer) -> Result<jiff::tz::TimeZone, Problem> {
    let email = &viewer.principal.actor.id;
    Ok(attest_core::mail::viewer_time_zone(app.sched_store.as_ref(), email, &app.read.time_zone())?)
}

#[derive(Template)]
#[template(path = "time_zone.html")]
struct TimeZonePage {
    chrome: Chrome,
    workspace_zone: String,
    errors: FieldErrors,
    typed: FormBody,
}

async fn view(
    app: &Arc<App>,
    viewer: &Viewer,
    errors: FieldErrors,
    typed: Option<FormBody>,
    notice: Option<String>,
) -> WebResult {
    let (a, email) = (app.clone(), viewer.principal.actor.id.clone());
    let mine = blocking(move || Ok(a.sched_store.person_time_zone(&email)?)).await?;
    let typed = typed.unwrap_or_else(|| FormBody(vec![("time_zone".into(), mine.unwrap_or_default())]));
    let chrome = Chrome::load(app, viewer, "account").await?.with_notice(notice);
    let workspace_zone = app.read.time_zone().iana_name().unwrap_or("UTC").to_string();
    let status = if errors.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    Ok(page_with(status, &TimeZonePage { chrome, workspace_zone, errors, typed }))
}

async fn form(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<OkQuery>,
) -> WebResult {
    let viewer = Viewer::of(&caller)?;
    view(&app, &viewer, FieldErrors::default(), None, super::flash(q.ok.as_deref())).await
}

async fn save(State(app): State<Arc<App>>, Extension(caller): Extension<Caller>, form: FormBody) -> WebResult {
    let viewer = Viewer::of(&caller)?;
    if !viewer.principal.is_person() {
        return Err(Problem::bad_request("a time zone belongs to a person, not to an API token").into());
    }
    let (a, email, zone) = (app.clone(), viewer.principal.actor.id.clone(), form.text("time_zone"));
    let saved =
        blocking(move || Ok(attest_core::mail::set_person_time_zone(a.sched_store.as_ref(), &email, Some(&zone))))
            .await?;
    match saved {
        Ok(_) => Ok(see_other("/account/time-zone?ok=saved")),
        Err(e) => {
            let mut errors = FieldErrors::default();
            errors.add("time_zone", Problem::from(e).detail);
            view(&app, &viewer, errors, Some(form), None).await
        }
    }
}

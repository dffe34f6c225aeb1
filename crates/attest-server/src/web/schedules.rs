//! Schedules: the list with each next run in the workspace's zone, the
//! create form (cron or a daily/weekly/monthly/quarterly rule, zone, run name
//! pattern, who starts the runs), pause, resume and delete. The same use
//! cases as `schedules_api.rs`.

use std::sync::Arc;

use askama::Template;
use attest_core::schedule::{self, CompiledRule, Every, NewSchedule, ScheduleRule};
use attest_core::workspace::parse_email;
use attest_engine::Actor;
use attest_store::ScheduleStore as _;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Extension, Router};

use super::{Chrome, FieldErrors, FormBody, OkQuery, Viewer, WebResult, blocking, page_with, see_other, when_in};
use crate::App;
use crate::guard::Caller;
use crate::problem::Problem;

pub fn routes(r: Router<Arc<App>>) -> Router<Arc<App>> {
    r.route("/schedules", get(list).post(create))
        .route("/schedules/{id}/pause", post(pause))
        .route("/schedules/{id}/resume", post(resume))
        .route("/schedules/{id}/delete", post(delete))
}

const KINDS: &[&str] = &["daily", "weekly", "monthly", "quarterly", "cron"];
const WEEKDAYS: &[&str] = &["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"];

struct ScheduleView {
    id: String,
    template: String,
    name_pattern: String,
    rule: String,
    time_zone: String,
    starts_as: String,
    paused: bool,
    next: String,
    last: String,
    /// The due period of each run, in words; empty without one.
    due: String,
}

#[derive(Template)]
#[template(path = "schedules.html")]
struct SchedulesPage {
    chrome: Chrome,
    schedules: Vec<ScheduleView>,
    templates: Vec<(String, String)>,
    can_design: bool,
    /// The workspace's zone, in which next runs show.
    zone: String,
    errors: FieldErrors,
    typed: FormBody,
    kinds: &'static [&'static str],
    weekdays: &'static [&'static str],
}

fn notice(key: Option<&str>) -> Option<String> {
    let text = match key? {
        "created" => "Schedule created.",
        "paused" => "Schedule paused: nothing starts until it is resumed.",
        "resumed" => "Schedule resumed from its next occurrence.",
        "deleted" => "Schedule deleted; the runs it started stay.",
        other => return super::flash(Some(other)),
    };
    Some(text.to_string())
}

async fn view(
    app: &Arc<App>,
    viewer: &Viewer,
    errors: FieldErrors,
    typed: FormBody,
    notice: Option<String>,
) -> WebResult {
    let a = app.clone();
    let (rows, templates) = blocking(move || {
        let templates = super::template_choices(&a)?;
        Ok((a.sched_store.schedules()?, templates))
    })
    .await?;
    let tz = app.read.time_zone();
    let schedules = rows
        .into_iter()
        .map(|r| {
            let rule = serde_json::from_str::<ScheduleRule>(&r.rule)
                .map(|rule| schedule::describe_rule(&rule))
                .unwrap_or_else(|_| r.rule.clone());
            ScheduleView {
                next: match (r.paused, r.next_at) {
                    (true, _) => "paused".into(),
                    (false, Some(t)) => when_in(t, &tz),
                    (false, None) => "no further occurrence".into(),
                },
                last: r.last_fired_at.map(|t| when_in(t, &tz)).unwrap_or_else(|| "never".into()),
                id: r.id,
                template: r.template,
                name_pattern: r.name_pattern,
                rule,
                time_zone: r.time_zone,
                starts_as: r.starts_as,
                paused: r.paused,
                due: match (r.due_days, r.due_business_days) {
                    (Some(d), true) => format!("due {d} business days after start"),
                    (Some(d), false) => format!("due {d} days after start"),
                    (None, _) => String::new(),
                },
            }
        })
        .collect();
    let can_design = super::templates::can_design(viewer);
    let chrome = Chrome::load(app, viewer, "schedules").await?.with_notice(notice);
    let status = if errors.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    let zone = tz.iana_name().unwrap_or("UTC").to_string();
    let mut typed = typed;
    if typed.0.is_empty() {
        // The form starts with the workspace's zone and the viewer as starter.
        typed.0.push(("time_zone".into(), zone.clone()));
        typed.0.push(("starts_as".into(), viewer.principal.actor.id.to_string()));
        typed.0.push(("kind".into(), "monthly".into()));
        typed.0.push(("at".into(), "09:00".into()));
        typed.0.push(("day".into(), "1".into()));
    }
    let page = SchedulesPage {
        chrome,
        schedules,
        templates,
        can_design,
        zone,
        errors,
        typed,
        kinds: KINDS,
        weekdays: WEEKDAYS,
    };
    Ok(page_with(status, &page))
}

async fn list(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<OkQuery>,
) -> WebResult {
    let viewer = Viewer::of(&caller)?;
    view(&app, &viewer, FieldErrors::default(), FormBody::default(), notice(q.ok.as_deref())).await
}

/// Reads the rule from the form, with a message beside the input at fault.
fn rule_of(form: &FormBody, errors: &mut FieldErrors) -> Option<ScheduleRule> {
    let kind = form.text("kind");
    let every = match kind.as_str() {
        "cron" => {
            let cron = form.text("cron");
            if cron.is_empty() {
                errors.add("cron", "enter a cron pattern, like 0 9 * * 1 for Mondays at 09:00");
                return None;
            }
            let rule = ScheduleRule::Cron { cron };
            if let Err(e) = CompiledRule::new(&rule, "UTC") {
                errors.add("cron", Problem::from(e).detail);
                return None;
            }
            return Some(rule);
        }
        "daily" => Every::Daily,
        "weekly" => Every::Weekly,
        "monthly" => Every::Monthly,
        "quarterly" => Every::Quarterly,
        _ => {
            errors.add("kind", "choose how often runs start");
            return None;
        }
    };
    let at = form.text("at");
    let weekday = (every == Every::Weekly).then(|| form.text("weekday"));
    if weekday.as_deref().is_some_and(|w| !WEEKDAYS.contains(&w)) {
        errors.add("weekday", "choose the day of the week runs start on");
    }
    let day = if matches!(every, Every::Monthly | Every::Quarterly) {
        match form.text("day").parse::<u8>() {
            Ok(d) if (1..=31).contains(&d) => Some(d),
            _ => {
                errors.add("day", "enter a day of the month from 1 to 31 (short months use their last day)");
                None
            }
        }
    } else {
        None
    };
    let rule = ScheduleRule::Every { every, at, weekday, day };
    if errors.has("weekday") || errors.has("day") {
        return None;
    }
    match CompiledRule::new(&rule, "UTC") {
        Ok(_) => Some(rule),
        Err(e) => {
            errors.add("at", Problem::from(e).detail);
            None
        }
    }
}

async fn create(State(app): State<Arc<App>>, Extension(caller): Extension<Caller>, form: FormBody) -> WebResult {
    let viewer = Viewer::of(&caller)?;
    let mut errors = FieldErrors::default();
    let template = form.text("template");
    if template.is_empty() {
        errors.add("template", "choose the template the schedule starts");
    }
    let name_pattern = match schedule::parse_name_pattern(&form.text("name_pattern")) {
        Ok(p) => p,
        Err(e) => {
            errors.add("name_pattern", Problem::from(e).detail);
            String::new()
        }
    };
    let rule = rule_of(&form, &mut errors);
    let time_zone = form.text("time_zone");
    if let Err(e) = schedule::parse_time_zone(&time_zone) {
        errors.add("time_zone", Problem::from(e).detail);
    }
    let due_days = match form.text("due_days") {
        d if d.is_empty() => None,
        d => match d.parse::<u32>().ok().filter(|d| schedule::check_due_days(Some(*d)).is_ok()) {
            Some(d) => Some(d),
            None => {
                errors.add(
                    "due_days",
                    format!("enter a number of days from 1 to {}, or nothing", schedule::MAX_DUE_DAYS),
                );
                None
            }
        },
    };
    let due_business_days = form.get("due_business_days") == Some("true");
    let starts_as = match parse_email(&form.text("starts_as")) {
        Ok(e) => e,
        Err(e) => {
            errors.add("starts_as", Problem::from(e).detail);
            String::new()
        }
    };
    if let (true, Some(rule)) = (errors.is_empty(), rule) {
        let (a, by) = (app.clone(), viewer.principal.actor.clone());
        let new = NewSchedule { template, name_pattern, rule, time_zone, starts_as, due_days, due_business_days };
        let made = blocking(move || Ok(create_schedule(&a, &by, new))).await?;
        match made {
            Ok(()) => return Ok(see_other("/schedules?ok=created")),
            Err((field, p)) if p.status < 500 => errors.add(field, p.detail),
            Err((_, p)) => return Err(p.into()),
        }
    }
    view(&app, &viewer, errors, form, None).await
}

/// Creates a schedule; a refusal comes with the input it belongs to.
fn create_schedule(app: &App, by: &Actor, new: NewSchedule) -> Result<(), (&'static str, Problem)> {
    // The template and the person are checked first so their messages land beside their inputs.
    app.read.template_row(&new.template, None).map_err(|e| ("template", Problem::from(e)))?;
    app.read.person(&new.starts_as).map_err(|e| ("starts_as", Problem::from(e)))?;
    let now = app.now();
    schedule::create(app.scheduler.workspace(), app.sched_store.as_ref(), by, new, now)
        .map_err(|e| ("", Problem::from(e)))?;
    Ok(())
}

async fn pause(State(app): State<Arc<App>>, Extension(caller): Extension<Caller>, Path(id): Path<String>) -> WebResult {
    let by = Viewer::of(&caller)?.principal.actor;
    blocking(move || Ok(schedule::pause(app.sched_store.as_ref(), &by, &id, app.now())?)).await?;
    Ok(see_other("/schedules?ok=paused"))
}

async fn resume(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> WebResult {
    let by = Viewer::of(&caller)?.principal.actor;
    blocking(move || Ok(schedule::resume(app.sched_store.as_ref(), &by, &id, app.now())?)).await?;
    Ok(see_other("/schedules?ok=resumed"))
}

async fn delete(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> WebResult {
    let by = Viewer::of(&caller)?.principal.actor;
    blocking(move || Ok(schedule::delete(app.sched_store.as_ref(), &by, &id, app.now())?)).await?;
    Ok(see_other("/schedules?ok=deleted"))
}

//! Runs: the list with filters and CSV export, starting a run, and the run
//! page as a checklist (forms, approvals, comments, evidence, activity).
//!
//! Field values go to the engine as typed (strings); the engine normalises
//! and validates them, and its refusal (rule, task, field) is shown beside
//! the field. Which tasks and fields show is the engine's `Visibility`.

use std::collections::BTreeMap;
use std::sync::Arc;

use askama::Template;
use attest_core::BatchItem;
use attest_engine::condition::Visibility;
use attest_engine::view::{TaskStatus, TaskView, task_views};
use attest_engine::{Command, CompiledTemplate, Decision, EventBody, RunStatus, Values};
use attest_store::{RunFilter, RunSearch, RunSummary};
use attest_template::{Field, FieldKind};
use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Path, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    Chrome, FieldErrors, FormBody, Viewer, WebResult, blocking, bytes_label, due_badge, page_with, principal_label,
    see_other, when,
};
use crate::App;
use crate::access::Access;
use crate::guard::Caller;
use crate::problem::Problem;

pub fn routes(r: Router<Arc<App>>, upload_limit: usize) -> Router<Arc<App>> {
    r.route("/runs", get(list).post(start))
        .route("/runs.csv", get(csv_export))
        .route("/runs/new", get(new_run))
        .route("/runs/{run}", get(run_page))
        .route("/runs/{run}/cancel", post(cancel))
        .route("/runs/{run}/tasks/{task}", post(task_form))
        .route("/runs/{run}/tasks/{task}/preview", post(preview))
        .route("/runs/{run}/tasks/{task}/decision", post(decision))
        .route("/runs/{run}/tasks/{task}/comments", post(comment))
        .route("/runs/{run}/tasks/{task}/evidence", post(evidence).layer(DefaultBodyLimit::max(upload_limit)))
}

const PAGE_SIZE: u32 = 50;
/// Most rows one CSV export holds.
const MAX_CSV_ROWS: usize = 100_000;

// ----- the runs list -----

#[derive(Deserialize, Default, Clone)]
struct ListQuery {
    template: Option<String>,
    status: Option<String>,
    assignee: Option<String>,
    overdue: Option<String>,
    cursor: Option<String>,
    ok: Option<String>,
}

struct RunLine {
    id: String,
    name: String,
    template_key: String,
    template_version: u32,
    status: &'static str,
    starter: String,
    started: String,
    updated: String,
    /// The run's own deadline and how it stands, if it has one.
    due: Option<RunDue>,
}

/// A run's own deadline as pages show it: when (in the workspace's zone) and,
/// while the run is open, a badge.
struct RunDue {
    at: String,
    badge: Option<(String, &'static str)>,
}

fn run_due(
    due_at: Option<jiff::Timestamp>,
    status: attest_engine::RunStatus,
    now: jiff::Timestamp,
    tz: &jiff::tz::TimeZone,
) -> Option<RunDue> {
    let due = due_at?;
    let open = status == attest_engine::RunStatus::Open;
    Some(RunDue { at: super::when_in(due, tz), badge: open.then(|| super::due_badge(due, now)) })
}

#[derive(Template)]
#[template(path = "runs.html")]
struct RunsPage {
    chrome: Chrome,
    runs: Vec<RunLine>,
    templates: Vec<(String, String)>,
    people: Vec<String>,
    q_template: String,
    q_status: String,
    q_assignee: String,
    q_overdue: bool,
    errors: FieldErrors,
    next: Option<String>,
    csv: String,
    first_page: bool,
    filter_query: String,
}

fn status_of(s: &str) -> Result<Option<RunStatus>, String> {
    match s {
        "" => Ok(None),
        "open" => Ok(Some(RunStatus::Open)),
        "completed" => Ok(Some(RunStatus::Completed)),
        "cancelled" => Ok(Some(RunStatus::Cancelled)),
        other => Err(format!("'{other}' is not a run status: choose open, completed or cancelled")),
    }
}

/// The search a list query asks for, or the messages for its bad filters.
fn search_of(app: &App, q: &ListQuery, limit: u32) -> Result<RunSearch, FieldErrors> {
    let mut errors = FieldErrors::default();
    let status = status_of(q.status.as_deref().unwrap_or("").trim()).unwrap_or_else(|m| {
        errors.add("status", m);
        None
    });
    let template = q.template.as_deref().map(str::trim).filter(|t| !t.is_empty()).map(str::to_string);
    let assignee = q.assignee.as_deref().map(str::trim).filter(|t| !t.is_empty());
    let assigned_to = match assignee {
        None => None,
        Some(a) => match app.read.person(a) {
            Ok(person) => {
                let mut p = vec![format!("user:{}", person.id)];
                p.extend(person.roles.iter().map(|r| format!("role:{r}")));
                Some(p)
            }
            Err(e) => {
                errors.add("assignee", Problem::from(e).detail);
                None
            }
        },
    };
    let overdue_at = q.overdue.as_deref().is_some_and(|v| !v.is_empty()).then(|| app.now());
    let before = q.cursor.clone().filter(|c| !c.is_empty() && c.len() <= 64);
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(RunSearch { filter: RunFilter { template, status, before, limit }, assigned_to, overdue_at })
}

fn run_line(r: RunSummary, now: jiff::Timestamp, tz: &jiff::tz::TimeZone) -> RunLine {
    RunLine {
        due: run_due(r.due_at, r.status, now, tz),
        status: r.status.as_str(),
        started: when(r.started_at),
        updated: when(r.updated_at),
        id: r.id,
        name: r.name,
        template_key: r.template_key,
        template_version: r.template_version,
        starter: r.starter,
    }
}

fn filter_query(q: &ListQuery) -> String {
    let mut parts = Vec::new();
    for (k, v) in [("template", &q.template), ("status", &q.status), ("assignee", &q.assignee), ("overdue", &q.overdue)]
    {
        if let Some(v) = v.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
            parts.push(format!("{k}={}", super::urlencode(v)));
        }
    }
    parts.join("&")
}

async fn list(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<ListQuery>,
) -> WebResult {
    let viewer = Viewer::of(&caller)?;
    let (a, v) = (app.clone(), viewer.clone());
    let q2 = q.clone();
    let (rows, errors, templates, people, tz) = blocking(move || {
        let tz = super::account::viewer_zone(&a, &v)?;
        let templates = super::template_choices(&a)?;
        let people: Vec<String> = a.read.users()?.into_iter().map(|u| u.email).collect();
        match search_of(&a, &q2, PAGE_SIZE) {
            Ok(search) => Ok((a.search.search_runs(&search)?, FieldErrors::default(), templates, people, tz)),
            Err(errors) => Ok((Vec::new(), errors, templates, people, tz)),
        }
    })
    .await?;
    let next = (rows.len() as u32 == PAGE_SIZE).then(|| rows.last().map(|r| r.id.clone())).flatten();
    let chrome = Chrome::load(&app, &viewer, "runs").await?.with_notice(super::flash(q.ok.as_deref()));
    let fq = filter_query(&q);
    let now = app.now();
    let status = if errors.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    Ok(page_with(
        status,
        &RunsPage {
            chrome,
            runs: rows.into_iter().map(|r| run_line(r, now, &tz)).collect(),
            templates,
            people,
            q_template: q.template.clone().unwrap_or_default(),
            q_status: q.status.clone().unwrap_or_default(),
            q_assignee: q.assignee.clone().unwrap_or_default(),
            q_overdue: q.overdue.as_deref().is_some_and(|v| !v.is_empty()),
            errors,
            next,
            csv: if fq.is_empty() { "/runs.csv".into() } else { format!("/runs.csv?{fq}") },
            first_page: q.cursor.as_deref().is_none_or(str::is_empty),
            filter_query: fq,
        },
    ))
}

async fn csv_export(State(app): State<Arc<App>>, Query(q): Query<ListQuery>) -> WebResult {
    let bytes = blocking(move || {
        let mut search = search_of(&app, &q, attest_store_sqlite::MAX_LIST_LIMIT)
            .map_err(|errors| Problem::bad_request(errors.0.values().cloned().collect::<Vec<_>>().join("; ")))?;
        let mut out = csv::Writer::from_writer(Vec::new());
        let header =
            ["id", "name", "template", "version", "status", "starter", "started_at", "updated_at", "finished_at"];
        out.write_record(header).map_err(|e| Problem::internal(e.to_string()))?;
        let mut written = 0;
        loop {
            let rows = app.search.search_runs(&search)?;
            let full = rows.len() as u32 == search.filter.limit;
            for r in &rows {
                let finished = r.finished_at.map(|t| t.to_string()).unwrap_or_default();
                out.write_record([
                    r.id.as_str(),
                    r.name.as_str(),
                    r.template_key.as_str(),
                    &r.template_version.to_string(),
                    r.status.as_str(),
                    r.starter.as_str(),
                    &r.started_at.to_string(),
                    &r.updated_at.to_string(),
                    &finished,
                ])
                .map_err(|e| Problem::internal(e.to_string()))?;
                written += 1;
            }
            match rows.last() {
                Some(last) if full && written < MAX_CSV_ROWS => search.filter.before = Some(last.id.clone()),
                _ => break,
            }
        }
        out.into_inner().map_err(|e| Problem::internal(e.to_string()))
    })
    .await?;
    let mut res = bytes.into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8"));
    h.insert(header::CONTENT_DISPOSITION, HeaderValue::from_static("attachment; filename=\"attest-runs.csv\""));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}

// ----- starting a run -----

#[derive(Template)]
#[template(path = "run_new.html")]
struct NewRunPage {
    chrome: Chrome,
    templates: Vec<(String, String)>,
    template: String,
    name: String,
    errors: FieldErrors,
}

#[derive(Deserialize)]
struct NewQuery {
    template: Option<String>,
}

async fn new_run_page(
    app: &Arc<App>,
    viewer: &Viewer,
    template: String,
    name: String,
    errors: FieldErrors,
) -> WebResult {
    let a = app.clone();
    let templates = blocking(move || Ok(super::template_choices(&a)?)).await?;
    let chrome = Chrome::load(app, viewer, "runs").await?;
    let status = if errors.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    Ok(page_with(status, &NewRunPage { chrome, templates, template, name, errors }))
}

async fn new_run(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<NewQuery>,
) -> WebResult {
    let viewer = Viewer::of(&caller)?;
    new_run_page(&app, &viewer, q.template.unwrap_or_default(), String::new(), FieldErrors::default()).await
}

/// Longest run name a form may send.
const MAX_RUN_NAME_CHARS: usize = 200;

async fn start(State(app): State<Arc<App>>, Extension(caller): Extension<Caller>, form: FormBody) -> WebResult {
    let viewer = Viewer::of(&caller)?;
    let template = form.text("template");
    let name = form.text("name");
    let mut errors = FieldErrors::default();
    if template.is_empty() {
        errors.add("template", "choose the template to run");
    }
    if name.chars().count() > MAX_RUN_NAME_CHARS {
        errors.add("name", format!("a run name has at most {MAX_RUN_NAME_CHARS} characters"));
    }
    if errors.is_empty() {
        let item = BatchItem::Start {
            template: template.clone(),
            name: Some(name.clone()).filter(|n| !n.is_empty()),
            by: viewer.principal.actor.clone(),
        };
        match crate::api::submit(&app, "start", item).await {
            Ok(state) => return Ok(see_other(&format!("/runs/{}?ok=started", state.run_id))),
            Err(p) if p.status == 404 => errors.add("template", p.detail),
            Err(p) if p.status < 500 => errors.add(if p.field.is_some() { "name" } else { "" }, p.detail),
            Err(p) => return Err(p.into()),
        }
    }
    new_run_page(&app, &viewer, template, name, errors).await
}

// ----- the run page -----

/// A form that came back with messages: which task, the messages, and the
/// values as typed so nothing is lost.
#[derive(Debug, Default)]
struct Feedback {
    task: String,
    errors: FieldErrors,
    typed: FormBody,
}

struct OptionView {
    value: String,
    selected: bool,
}

struct FieldView {
    key: String,
    label: String,
    /// `text`, `textarea`, `number`, `email`, `url`, `date`, `datetime`,
    /// `select`, `multi_choice`, `checkbox`, `members`, `table`, `file`.
    input: &'static str,
    required: bool,
    help: String,
    value: String,
    options: Vec<OptionView>,
    checked: bool,
    visible: bool,
    error: Option<String>,
    /// For file fields: the attached file, and the extensions accepted.
    file: Option<String>,
    accept: String,
    autofocus: bool,
}

impl FieldView {
    fn described_by(&self) -> String {
        let mut ids = Vec::new();
        if !self.help.is_empty() {
            ids.push(format!("help-{}", self.key));
        }
        if self.error.is_some() {
            ids.push(format!("err-{}", self.key));
        }
        ids.join(" ")
    }
}

struct EvidenceView {
    name: String,
    size: String,
    sha256: String,
    field: String,
}

struct CommentView {
    by: String,
    at: String,
    text: String,
}

struct TaskCard {
    n: usize,
    key: String,
    name: String,
    /// CSS state: `open`, `done`, `hidden`, `rework`, `overdue`, `locked`.
    state: &'static str,
    state_label: String,
    approval: bool,
    stop: bool,
    who: String,
    due: Option<(String, &'static str)>,
    /// The due time in the viewer's zone, labelled with it.
    due_when: Option<String>,
    lock: Option<String>,
    done_line: Option<String>,
    decision_comment: Option<String>,
    instructions: Option<String>,
    can_act: bool,
    fields: Vec<FieldView>,
    readonly: Vec<(String, String)>,
    evidence: Vec<EvidenceView>,
    comments: Vec<CommentView>,
    errors: FieldErrors,
    comment_typed: String,
    decision_typed: String,
    has_input_fields: bool,
}

impl TaskCard {
    fn is_open(&self) -> bool {
        matches!(self.state, "open" | "rework" | "overdue" | "locked")
    }
}

struct ActivityItem {
    seq: u64,
    at: String,
    by: String,
    text: String,
}

#[derive(Template)]
#[template(path = "run.html")]
struct RunPage {
    chrome: Chrome,
    id: String,
    name: String,
    template_key: String,
    template_version: u32,
    status: &'static str,
    starter: String,
    started: String,
    finished: Option<String>,
    cancel_reason: Option<String>,
    rework_count: u32,
    due: Option<RunDue>,
    tasks: Vec<TaskCard>,
    activity: Vec<ActivityItem>,
    can_audit: bool,
    can_cancel: bool,
    cancel_errors: FieldErrors,
    diagram: Option<String>,
}

impl RunPage {
    fn open(&self) -> bool {
        self.status == "open"
    }
}

#[derive(Deserialize)]
struct OkQuery {
    ok: Option<String>,
}

async fn run_page(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    Query(q): Query<OkQuery>,
) -> WebResult {
    let viewer = Viewer::of(&caller)?;
    render_run(&app, &viewer, id, None, FieldErrors::default(), super::flash(q.ok.as_deref())).await
}

/// Loads the run and renders its page, with a form's messages if any.
async fn render_run(
    app: &Arc<App>,
    viewer: &Viewer,
    id: String,
    feedback: Option<Feedback>,
    cancel_errors: FieldErrors,
    notice: Option<String>,
) -> WebResult {
    let status =
        if feedback.is_some() || !cancel_errors.is_empty() { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
    let a = app.clone();
    let v = viewer.clone();
    let page_data = blocking(move || build_run_page(&a, &v, &id, feedback.as_ref())).await?;
    let chrome = Chrome::load(app, viewer, "runs").await?.with_notice(notice);
    let mut page_data = page_data;
    page_data.chrome = chrome;
    page_data.cancel_errors = cancel_errors;
    Ok(page_with(status, &page_data))
}

/// Shows a value as text.
fn value_text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::Bool(true) => "Yes".into(),
        Value::Bool(false) => "No".into(),
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Array(items) if items.iter().all(|i| i.is_string()) => {
            items.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", ")
        }
        Value::Object(m) if m.contains_key("sha256") => m.get("name").and_then(Value::as_str).unwrap_or("").to_string(),
        other => other.to_string(),
    }
}

/// A value as an input shows it.
fn input_text(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::Bool(b)) => b.to_string(),
        Some(Value::Array(items)) if items.iter().all(|i| i.is_string()) => {
            items.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", ")
        }
        Some(other) => value_text(other),
    }
}

fn input_kind(kind: &FieldKind) -> &'static str {
    match kind {
        FieldKind::Text(_) => "text",
        FieldKind::Textarea(_) => "textarea",
        FieldKind::Number(_) => "number",
        FieldKind::Email(_) => "email",
        FieldKind::Url => "url",
        FieldKind::Date(_) => "date",
        FieldKind::Datetime(_) => "datetime",
        FieldKind::Select(_) => "select",
        FieldKind::MultiChoice(_) => "multi_choice",
        FieldKind::Checkbox => "checkbox",
        FieldKind::Members(_) => "members",
        FieldKind::File(_) => "file",
        FieldKind::Table(_) => "table",
        FieldKind::Hidden => "hidden",
    }
}

/// The values a task form sends, keyed by field, as the engine takes them.
/// Only fields the form showed (`shown`) count; unchanged values are left out
/// so saving an untouched form records nothing.
fn form_values(compiled: &CompiledTemplate, task_index: usize, stored: &Values, form: &FormBody) -> Values {
    let mut values = Values::new();
    let Some(task) = compiled.template.tasks.get(task_index) else { return values };
    let shown: Vec<&str> = form.all("shown").collect();
    for field in task.fields.iter().filter(|f| shown.contains(&f.key.as_str())) {
        let name = format!("f.{}", field.key);
        let raw = match &field.kind {
            FieldKind::File(_) | FieldKind::Hidden => continue,
            FieldKind::Checkbox => Value::Bool(form.all(&name).any(|v| v == "true")),
            FieldKind::MultiChoice(_) => Value::Array(form.all(&name).map(|v| Value::String(v.to_string())).collect()),
            _ => Value::String(form.get(&name).unwrap_or("").to_string()),
        };
        let before = stored.get(&field.key).cloned().unwrap_or(Value::Null);
        let unchanged = attest_engine::value::normalise(field, &raw).is_ok_and(|n| n == before)
            || (attest_engine::value::is_empty(&raw) && attest_engine::value::is_empty(&before));
        if !unchanged {
            values.insert(field.key.clone(), raw);
        }
    }
    values
}

/// Stored values overlaid with what a form typed, normalised by the engine
/// (a value it cannot read counts as none), for visibility.
fn overlay(compiled: &CompiledTemplate, task_index: usize, stored: &Values, form: &FormBody) -> Values {
    let mut merged = stored.clone();
    let Some(task) = compiled.template.tasks.get(task_index) else { return merged };
    for (key, raw) in form_values(compiled, task_index, stored, form) {
        if let Some(field) = task.fields.iter().find(|f| f.key == key) {
            merged.insert(key, attest_engine::value::normalise(field, &raw).unwrap_or(Value::Null));
        }
    }
    merged
}

fn field_view(
    field: &Field,
    stored: &Values,
    visible: bool,
    typed: Option<&FormBody>,
    errors: &FieldErrors,
    first_error: Option<&str>,
) -> FieldView {
    let name = format!("f.{}", field.key);
    let stored_value = stored.get(&field.key);
    let typed_text = typed.and_then(|f| f.get(&name)).map(str::to_string);
    let value = typed_text.clone().unwrap_or_else(|| match (&field.kind, stored_value) {
        (FieldKind::Datetime(_), Some(Value::String(s))) => s.clone(),
        _ => input_text(stored_value),
    });
    let options = match &field.kind {
        FieldKind::Select(o) | FieldKind::MultiChoice(o) => o
            .options
            .iter()
            .map(|opt| {
                let selected = match typed {
                    Some(f) if f.all("shown").any(|s| s == field.key) => f.all(&name).any(|v| v == opt),
                    _ => match stored_value {
                        Some(Value::String(s)) => s == opt,
                        Some(Value::Array(items)) => items.iter().any(|i| i.as_str() == Some(opt)),
                        _ => false,
                    },
                };
                OptionView { value: opt.clone(), selected }
            })
            .collect(),
        _ => Vec::new(),
    };
    let checked = match typed {
        Some(f) if f.all("shown").any(|s| s == field.key) => f.all(&name).any(|v| v == "true"),
        _ => stored_value == Some(&Value::Bool(true)),
    };
    let (file, accept) = match &field.kind {
        FieldKind::File(rules) => {
            let current = match stored_value {
                Some(v @ Value::Object(_)) => serde_json::from_value::<attest_engine::FileRef>(v.clone()).ok(),
                _ => None,
            };
            (
                current.map(|f| format!("{} ({}), SHA-256 {}", f.name, bytes_label(f.size), f.sha256)),
                rules.accept.iter().map(|e| format!(".{e}")).collect::<Vec<_>>().join(","),
            )
        }
        _ => (None, String::new()),
    };
    FieldView {
        key: field.key.clone(),
        label: field.label.clone(),
        input: input_kind(&field.kind),
        required: field.required,
        help: field.help.clone().unwrap_or_default(),
        value,
        options,
        checked,
        visible,
        error: errors.get(&field.key).map(str::to_string),
        file,
        accept,
        autofocus: first_error == Some(field.key.as_str()),
    }
}

fn build_run_page(app: &App, viewer: &Viewer, id: &str, feedback: Option<&Feedback>) -> Result<RunPage, Problem> {
    let row = app.read.run(id)?;
    let compiled = app.read.compiled(&row.template_key, row.template_version)?;
    let now = app.now();
    let viewer_tz = super::account::viewer_zone(app, viewer)?;
    let state = &row.state;
    let views = task_views(&compiled, state, now, &app.read.time_zone());
    let events = app.read.run_events(id)?;
    let actor = &viewer.principal.actor;
    let may_work = matches!(viewer.principal.access, Access::Admin | Access::ProcessOwner | Access::Member);
    let run_open = state.status == RunStatus::Open;
    let mut comments: BTreeMap<String, Vec<CommentView>> = BTreeMap::new();
    for (_, e) in &events {
        if let EventBody::CommentAdded { task, text } = &e.body {
            comments.entry(task.clone()).or_default().push(CommentView {
                by: e.by.to_string(),
                at: when(e.at),
                text: text.clone(),
            });
        }
    }
    let names: BTreeMap<&str, &str> = views.iter().map(|v| (v.key.as_str(), v.name.as_str())).collect();
    let mut tasks = Vec::with_capacity(views.len());
    for (i, (view, task)) in views.iter().zip(&compiled.template.tasks).enumerate() {
        let fb = feedback.filter(|f| f.task == view.key);
        let values_for_visibility =
            fb.map(|f| overlay(&compiled, i, &state.values, &f.typed)).unwrap_or_else(|| state.values.clone());
        let visibility = Visibility::compute(&compiled, &values_for_visibility);
        let ts = &state.tasks[i];
        let open = matches!(view.status, TaskStatus::Open | TaskStatus::Rework);
        let can_act =
            run_open && open && may_work && (actor.admin || attest_engine::decide::may_act(task, state, i, actor));
        let empty = FieldErrors::default();
        let errors = fb.map(|f| &f.errors).unwrap_or(&empty);
        // The first field with a message in the form's order takes the focus.
        let first_error = task.fields.iter().map(|f| f.key.as_str()).find(|k| errors.has(k));
        let fields: Vec<FieldView> = task
            .fields
            .iter()
            .enumerate()
            .filter(|(_, f)| !matches!(f.kind, FieldKind::Hidden))
            .map(|(fi, f)| {
                field_view(f, &state.values, visibility.field_at(i, fi), fb.map(|f| &f.typed), errors, first_error)
            })
            .collect();
        let readonly = task
            .fields
            .iter()
            .enumerate()
            .filter(|(fi, f)| !matches!(f.kind, FieldKind::Hidden) && visibility.field_at(i, *fi))
            .filter_map(|(_, f)| {
                let v = state.values.get(&f.key)?;
                let text = value_text(v);
                (!text.is_empty()).then(|| (f.label.clone(), text))
            })
            .collect();
        let field_labels: BTreeMap<&str, &str> =
            task.fields.iter().map(|f| (f.key.as_str(), f.label.as_str())).collect();
        let evidence = ts
            .evidence
            .iter()
            .map(|f| EvidenceView {
                name: f.name.to_string(),
                size: bytes_label(f.size),
                sha256: f.sha256.to_string(),
                field: String::new(),
            })
            .collect::<Vec<_>>();
        let evidence = label_evidence(evidence, state, task, &field_labels);
        let (state_class, state_label) = task_state(view, names.get(view.waits_for.as_deref().unwrap_or("")).copied());
        let lock = view.waits_for.as_ref().map(|w| {
            format!(
                "Locked: “{}” is a stop task and must be completed before this task can be.",
                names.get(w.as_str()).copied().unwrap_or(w)
            )
        });
        let done_line = match (view.completed_by.as_ref(), view.completed_at) {
            (Some(by), Some(at)) => Some(match view.decision {
                Some(Decision::Approved) => format!("Approved by {by} on {}", when(at)),
                Some(Decision::Rejected) => format!("Rejected by {by} on {}", when(at)),
                None => format!("Completed by {by} on {}", when(at)),
            }),
            // A rejection leaves the approval open again: say who rejected it, and why.
            _ if ts.decision == Some(Decision::Rejected) => match (ts.completed_by.as_ref(), ts.completed_at) {
                (Some(by), Some(at)) => Some(format!("Rejected by {by} on {}", when(at))),
                _ => Some("Rejected".to_string()),
            },
            _ => None,
        };
        let has_input_fields = fields.iter().any(|f| f.input != "file");
        tasks.push(TaskCard {
            n: i + 1,
            key: view.key.clone(),
            name: view.name.clone(),
            state: state_class,
            state_label,
            approval: view.approval,
            stop: view.stop,
            who: view.assignees.iter().map(|p| principal_label(p)).collect::<Vec<_>>().join(" or "),
            due: view.due_at.filter(|_| open).map(|d| due_badge(d, now)),
            due_when: view.due_at.filter(|_| open).map(|d| super::when_in(d, &viewer_tz)),
            lock,
            done_line,
            decision_comment: ts.decision_comment.clone(),
            instructions: task.instructions.clone(),
            can_act,
            fields,
            readonly,
            evidence,
            comments: comments.remove(&view.key).unwrap_or_default(),
            errors: errors.clone(),
            comment_typed: fb.map(|f| f.typed.text("text")).unwrap_or_default(),
            decision_typed: fb.map(|f| f.typed.text("comment")).unwrap_or_default(),
            has_input_fields,
        });
    }
    let labels: BTreeMap<&str, &str> = compiled
        .template
        .tasks
        .iter()
        .flat_map(|t| t.fields.iter().map(|f| (f.key.as_str(), f.label.as_str())))
        .collect();
    let mut activity: Vec<ActivityItem> = events
        .iter()
        .map(|(seq, e)| ActivityItem {
            seq: *seq,
            at: when(e.at),
            by: e.by.to_string(),
            text: describe(&e.body, &names, &labels),
        })
        .collect();
    activity.reverse();
    let diagram = run_diagram(&compiled, &views);
    Ok(RunPage {
        chrome: Chrome::anonymous(),
        id: row.id.clone(),
        name: row.name.clone(),
        template_key: row.template_key.clone(),
        template_version: row.template_version,
        status: row.status.as_str(),
        starter: state.starter.clone(),
        started: when(row.started_at),
        finished: row.finished_at.map(when),
        cancel_reason: state.cancel_reason.clone(),
        rework_count: state.rework_count,
        due: run_due(state.due_at, state.status, now, &viewer_tz),
        tasks,
        activity,
        can_audit: matches!(viewer.principal.access, Access::Admin | Access::Auditor),
        can_cancel: run_open && matches!(viewer.principal.access, Access::Admin | Access::ProcessOwner),
        cancel_errors: FieldErrors::default(),
        diagram,
    })
}

/// The template's diagram with the run's state overlaid; each box links to its task.
fn run_diagram(compiled: &CompiledTemplate, views: &[TaskView]) -> Option<String> {
    // The side bar is narrow: narrower boxes keep the text legible there.
    let options =
        attest_design::diagram::DiagramOptions { id_prefix: "rd", link_prefix: Some("#task-"), node_width: 240 };
    Some(attest_design::run_diagram_svg(&compiled.template, views, &options))
}

/// Names the file field each evidence file filled, if any.
fn label_evidence(
    mut evidence: Vec<EvidenceView>,
    state: &attest_engine::RunState,
    task: &attest_template::Task,
    labels: &BTreeMap<&str, &str>,
) -> Vec<EvidenceView> {
    for e in &mut evidence {
        if let Some(f) = task.fields.iter().find(|f| {
            state.values.get(&f.key).and_then(|v| v.get("sha256")).and_then(Value::as_str) == Some(e.sha256.as_str())
        }) {
            e.field = labels.get(f.key.as_str()).copied().unwrap_or("").to_string();
        }
    }
    evidence
}

fn task_state(view: &TaskView, _waits: Option<&str>) -> (&'static str, String) {
    match view.status {
        TaskStatus::Hidden => ("hidden", "not needed in this run".into()),
        TaskStatus::Done => {
            ("done", if view.decision == Some(Decision::Approved) { "approved".into() } else { "done".into() })
        }
        _ if view.overdue => ("overdue", "overdue".into()),
        _ if view.waits_for.is_some() => ("locked", "locked".into()),
        TaskStatus::Rework => ("rework", format!("in rework (round {})", view.rework_count)),
        TaskStatus::Open => ("open", "open".into()),
        TaskStatus::Automatic => ("automatic", "Attest is calling the service".into()),
    }
}

/// An event in words for the activity feed.
fn describe(body: &EventBody, tasks: &BTreeMap<&str, &str>, fields: &BTreeMap<&str, &str>) -> String {
    let t = |k: &str| format!("“{}”", tasks.get(k).copied().unwrap_or(k));
    match body {
        EventBody::RunStarted { name, template, version, .. } => format!("started “{name}” ({template} v{version})"),
        EventBody::FieldsSet { task, values } => {
            let names: Vec<&str> = values.keys().map(|k| fields.get(k.as_str()).copied().unwrap_or(k)).collect();
            format!("set {} on {}", names.join(", "), t(task))
        }
        EventBody::TaskCompleted { task, overridden } => {
            format!("completed {}{}", t(task), if *overridden { " (admin override)" } else { "" })
        }
        EventBody::TaskApproved { task, comment, .. } => match comment {
            Some(c) if !c.is_empty() => format!("approved {}: “{c}”", t(task)),
            _ => format!("approved {}", t(task)),
        },
        EventBody::TaskRejected { task, comment, reopened, .. } => format!(
            "rejected {}: “{comment}”; reopened {}",
            t(task),
            reopened.iter().map(|k| t(k)).collect::<Vec<_>>().join(", ")
        ),
        EventBody::TaskReopened { task, cause } => format!("reopened {} ({cause})", t(task)),
        EventBody::CommentAdded { task, text } => format!("commented on {}: “{text}”", t(task)),
        EventBody::EvidenceAttached { task, file, .. } => {
            format!("attached {} to {} (SHA-256 {}…)", file.name, t(task), &file.sha256[..file.sha256.len().min(12)])
        }
        EventBody::TaskReassigned { task, to, cause } => format!("reassigned {} to {to} ({cause})", t(task)),
        EventBody::TaskReminded { task, step } => format!("reminded the assignees of {} (reminder {step})", t(task)),
        EventBody::TaskEscalated { task, step, notify, reassign } => {
            let to = match (notify, reassign) {
                (Some(n), _) => format!(": notified {n}"),
                (None, Some(r)) => format!(": reassigned to {r}"),
                (None, None) => String::new(),
            };
            format!("escalated {} (step {step}){to}", t(task))
        }
        EventBody::ServiceFailed { task, error } => format!("the call of {} failed: {error}", t(task)),
        EventBody::ServiceRetried { task } => format!("asked for the call of {} to be made again", t(task)),
        EventBody::RunCompleted {} => "the run completed".into(),
        EventBody::RunCancelled { reason } => format!("cancelled the run: “{reason}”"),
    }
}

// ----- task forms -----

/// Puts the engine's refusal beside the input it names.
fn refusal_errors(p: &Problem, input_for_rule: impl Fn(&str) -> Option<&'static str>) -> FieldErrors {
    let mut errors = FieldErrors::default();
    let name = match (&p.field, p.rule.and_then(&input_for_rule)) {
        (Some(field), _) => field.clone(),
        (None, Some(input)) => input.to_string(),
        (None, None) => String::new(),
    };
    errors.add(&name, p.detail.clone());
    errors
}

async fn run_command(
    app: &Arc<App>,
    viewer: &Viewer,
    kind: &'static str,
    run: &str,
    command: Command,
) -> Result<(), Problem> {
    let item = BatchItem::Execute { run: run.to_string(), command, by: viewer.principal.actor.clone() };
    crate::api::submit(app, kind, item).await.map(|_| ())
}

fn after(run: &str, ok: &str, task: &str) -> Response {
    see_other(&format!("/runs/{run}?ok={ok}#task-{task}"))
}

async fn task_form(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Path((run, task)): Path<(String, String)>,
    form: FormBody,
) -> WebResult {
    let viewer = Viewer::of(&caller)?;
    let complete = form.get("action") == Some("complete");
    let (a, r, t, f) = (app.clone(), run.clone(), task.clone(), form.clone());
    let values = blocking(move || {
        let row = a.read.run(&r)?;
        let compiled = a.read.compiled(&row.template_key, row.template_version)?;
        let index = compiled.task_index(&t).ok_or_else(|| Problem::not_found(format!("this run has no task {t}")))?;
        Ok(form_values(&compiled, index, &row.state.values, &f))
    })
    .await?;
    let unchanged = !complete && values.is_empty();
    let sent = values.clone();
    let outcome = if complete {
        run_command(&app, &viewer, "complete", &run, Command::Complete { task: task.clone(), values }).await
    } else if unchanged {
        Ok(())
    } else {
        run_command(&app, &viewer, "set_fields", &run, Command::SetFields { task: task.clone(), values }).await
    };
    match outcome {
        Ok(()) => Ok(after(
            &run,
            if complete {
                "completed"
            } else if unchanged {
                "unchanged"
            } else {
                "saved"
            },
            &task,
        )),
        Err(p) if p.status < 500 && p.status != 404 => {
            let mut errors = refusal_errors(&p, |_| None);
            if p.field.is_some() {
                // The engine refused a field, at the first problem it found:
                // its own field checks find the others, so all show at once.
                let (a, r, t) = (app.clone(), run.clone(), task.clone());
                let others = blocking(move || {
                    let row = a.read.run(&r)?;
                    let compiled = a.read.compiled(&row.template_key, row.template_version)?;
                    Ok(attest_engine::field_problems(&compiled, &row.state, &t, &sent, complete))
                })
                .await?;
                for refusal in others {
                    errors.add(refusal.field.as_deref().unwrap_or(""), refusal.message);
                }
                let fields = errors.0.keys().filter(|k| !k.is_empty()).count();
                if fields > 1 {
                    errors.add("", format!("{fields} fields need a change: each says why beside it"));
                }
            }
            let feedback = Feedback { task, errors, typed: form };
            render_run(&app, &viewer, run, Some(feedback), FieldErrors::default(), None).await
        }
        Err(p) => Err(p.into()),
    }
}

/// Which tasks and fields the form's values (not yet saved) show, by the
/// engine's visibility: the script uses it to show and hide them live.
async fn preview(State(app): State<Arc<App>>, Path((run, task)): Path<(String, String)>, form: FormBody) -> WebResult {
    let out = blocking(move || {
        let row = app.read.run(&run)?;
        let compiled = app.read.compiled(&row.template_key, row.template_version)?;
        let index =
            compiled.task_index(&task).ok_or_else(|| Problem::not_found(format!("this run has no task {task}")))?;
        let merged = overlay(&compiled, index, &row.state.values, &form);
        let visibility = Visibility::compute(&compiled, &merged);
        let mut tasks = serde_json::Map::new();
        let mut fields = serde_json::Map::new();
        for (ti, t) in compiled.template.tasks.iter().enumerate() {
            tasks.insert(t.key.clone(), json!(visibility.tasks[ti]));
            for (fi, f) in t.fields.iter().enumerate() {
                fields.insert(f.key.clone(), json!(visibility.field_at(ti, fi)));
            }
        }
        Ok(json!({"tasks": tasks, "fields": fields}))
    })
    .await?;
    let mut res = Json(out).into_response();
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}

async fn decision(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Path((run, task)): Path<(String, String)>,
    form: FormBody,
) -> WebResult {
    let viewer = Viewer::of(&caller)?;
    let comment = form.text("comment");
    let (kind, ok, command) = match form.get("decision") {
        Some("approve") => (
            "approve",
            "approved",
            Command::Approve { task: task.clone(), comment: Some(comment.clone()).filter(|c| !c.is_empty()) },
        ),
        Some("reject") => ("reject", "rejected", Command::Reject { task: task.clone(), comment }),
        _ => {
            let mut errors = FieldErrors::default();
            errors.add("", "choose Approve or Reject");
            let feedback = Feedback { task, errors, typed: form };
            return render_run(&app, &viewer, run, Some(feedback), FieldErrors::default(), None).await;
        }
    };
    match run_command(&app, &viewer, kind, &run, command).await {
        Ok(()) => Ok(after(&run, ok, &task)),
        Err(p) if p.status < 500 && p.status != 404 => {
            let errors =
                refusal_errors(&p, |rule| (rule == "comment-required" || rule == "too-large").then_some("comment"));
            let feedback = Feedback { task, errors, typed: form };
            render_run(&app, &viewer, run, Some(feedback), FieldErrors::default(), None).await
        }
        Err(p) => Err(p.into()),
    }
}

async fn comment(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Path((run, task)): Path<(String, String)>,
    form: FormBody,
) -> WebResult {
    let viewer = Viewer::of(&caller)?;
    let text = form.get("text").unwrap_or("").to_string();
    match run_command(&app, &viewer, "comment", &run, Command::Comment { task: task.clone(), text }).await {
        Ok(()) => Ok(after(&run, "commented", &task)),
        Err(p) if p.status < 500 && p.status != 404 => {
            let errors = refusal_errors(&p, |rule| {
                matches!(rule, "comment-required" | "reason-required" | "too-large").then_some("text")
            });
            let feedback = Feedback { task, errors, typed: form };
            render_run(&app, &viewer, run, Some(feedback), FieldErrors::default(), None).await
        }
        Err(p) => Err(p.into()),
    }
}

async fn evidence(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Path((run, task)): Path<(String, String)>,
    req: Request,
) -> WebResult {
    let viewer = Viewer::of(&caller)?;
    let mut mp = Multipart::from_request(req, &())
        .await
        .map_err(|e| Problem::bad_request(format!("the upload could not be read: {e}")))?;
    let limit = app.config.max_upload_bytes;
    let mut field: Option<String> = None;
    let mut file: Option<(String, Vec<u8>)> = None;
    while let Some(mut part) =
        mp.next_field().await.map_err(|e| Problem::bad_request(format!("the upload could not be read: {e}")))?
    {
        match part.name() {
            Some("field") => {
                let text = part.text().await.unwrap_or_default();
                field = Some(text.trim().chars().take(64).collect()).filter(|t: &String| !t.is_empty());
            }
            Some("file") => {
                let name = part.file_name().unwrap_or("").to_string();
                let mut bytes = Vec::new();
                while let Some(chunk) = part
                    .chunk()
                    .await
                    .map_err(|_| Problem::too_large(format!("the file is larger than {limit} bytes")))?
                {
                    if (bytes.len() + chunk.len()) as u64 > limit {
                        return Err(Problem::too_large(format!("the file is larger than {limit} bytes")).into());
                    }
                    bytes.extend_from_slice(&chunk);
                }
                file = Some((name, bytes));
            }
            _ => {}
        }
    }
    let input = field.clone().unwrap_or_else(|| "evidence".into());
    let fail = |message: String| {
        let mut errors = FieldErrors::default();
        errors.add(&input, message);
        Feedback { task: task.clone(), errors, typed: FormBody::default() }
    };
    let upload = match file {
        Some((name, _)) if name.is_empty() => Err(fail("choose a file to upload".into())),
        None => Err(fail("choose a file to upload".into())),
        Some((name, bytes)) => match crate::api::upload_name(&name) {
            Ok(name) => Ok((name, bytes)),
            Err(p) => Err(fail(p.detail)),
        },
    };
    let outcome = match upload {
        Ok((name, bytes)) => {
            let (a, r, t, f, by) =
                (app.clone(), run.clone(), task.clone(), field.clone(), viewer.principal.actor.clone());
            app.metrics.command("attach_evidence");
            blocking(move || {
                a.write.attach(&r, &t, f.as_deref(), &name, &mut &bytes[..], &by, a.now())?;
                Ok(())
            })
            .await
            .map_err(|p| {
                let mut errors = FieldErrors::default();
                errors.add(p.field.as_deref().unwrap_or(&input), p.detail.clone());
                (p, Feedback { task: task.clone(), errors, typed: FormBody::default() })
            })
        }
        Err(feedback) => Err((Problem::bad_request("no file"), feedback)),
    };
    match outcome {
        Ok(()) => Ok(after(&run, "uploaded", &task)),
        Err((p, feedback)) if p.status < 500 && p.status != 404 => {
            render_run(&app, &viewer, run, Some(feedback), FieldErrors::default(), None).await
        }
        Err((p, _)) => Err(p.into()),
    }
}

async fn cancel(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Path(run): Path<String>,
    form: FormBody,
) -> WebResult {
    let viewer = Viewer::of(&caller)?;
    let reason = form.get("reason").unwrap_or("").to_string();
    match run_command(&app, &viewer, "cancel", &run, Command::Cancel { reason }).await {
        Ok(()) => Ok(see_other(&format!("/runs/{run}?ok=cancelled"))),
        Err(p) if p.status < 500 && p.status != 404 => {
            let mut errors = FieldErrors::default();
            errors.add("reason", p.detail.clone());
            render_run(&app, &viewer, run, None, errors, None).await
        }
        Err(p) => Err(p.into()),
    }
}

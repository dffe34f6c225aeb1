//! The template editor: drafts created from a published version or from
//! scratch, edited as a form or as YAML, checked by the template validator
//! with its messages beside the offending inputs, and published.
//!
//! Without script every button is a form post that saves and re-renders
//! (adding a task, moving a field). A form that does not read as a template
//! (a word where a number goes) is answered 422 with the message beside the
//! input and stores nothing; a draft that reads but does not validate yet is
//! saved, since drafts are work in progress, and publishing it is refused.

use std::sync::Arc;

use askama::Template;
use attest_core::drafts::{DraftStart, read_draft};
use attest_core::{Error, Workspace};
use attest_design::diagram::DiagramOptions;
use attest_store::DraftRow;
use attest_template::Diagnostic;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Extension, Router};
use serde::Deserialize;

use super::editor_form::{self, Action, EditorView, Messages, Posted};
use super::templates::notice;
use super::{Chrome, FieldErrors, FormBody, Viewer, WebResult, blocking, page, page_with, see_other, when};
use crate::App;
use crate::guard::Caller;
use crate::problem::Problem;

/// Most inputs the editor's form may send: a large template has thousands.
const MAX_EDITOR_PAIRS: usize = 20_000;

pub fn routes(r: Router<Arc<App>>) -> Router<Arc<App>> {
    r.route("/drafts/new", get(new_form))
        .route("/drafts", post(create_blank))
        .route("/templates/{key}/drafts", post(create_from_version))
        .route("/drafts/{draft}", get(editor).post(save_form))
        .route("/drafts/{draft}/yaml", get(yaml_editor).post(save_yaml))
        .route("/drafts/{draft}/discard", post(discard))
}

// ----- creating drafts -----

#[derive(Template)]
#[template(path = "draft_new.html")]
struct NewPage {
    chrome: Chrome,
    new_key: String,
    new_name: String,
    errors: FieldErrors,
}

async fn new_form(State(app): State<Arc<App>>, Extension(caller): Extension<Caller>) -> WebResult {
    let viewer = Viewer::of(&caller)?;
    let chrome = Chrome::load(&app, &viewer, "templates").await?;
    Ok(page(&NewPage { chrome, new_key: String::new(), new_name: String::new(), errors: FieldErrors::default() }))
}

async fn create_blank(State(app): State<Arc<App>>, Extension(caller): Extension<Caller>, form: FormBody) -> WebResult {
    let viewer = Viewer::of(&caller)?;
    let (key, name) = (form.text("key"), form.text("name"));
    let mut errors = FieldErrors::default();
    if key.is_empty() {
        errors.add("key", "enter a key, like laptop-request");
    }
    if name.is_empty() {
        errors.add("name", "enter a name, like Laptop request");
    }
    if errors.is_empty() {
        let (a, by) = (app.clone(), viewer.principal.actor.clone());
        let start = DraftStart::Blank { key: key.clone(), name: name.clone() };
        let made = blocking(move || match a.write.create_draft(a.drafts.as_ref(), &by, &start, a.now()) {
            Ok(d) => Ok(Ok(d)),
            Err(Error::InvalidTemplate(diags)) => Ok(Err(diags)),
            Err(Error::BadInput(m)) => Ok(Err(vec![diag("", &m)])),
            Err(e) => Err(Problem::from(e)),
        })
        .await?;
        match made {
            Ok(d) => return Ok(see_other(&format!("/drafts/{}", d.id))),
            Err(diags) => {
                for d in diags {
                    let at = if d.path == "key" || d.path == "name" { d.path.as_str() } else { "" };
                    errors.add(at, d.message.clone());
                }
            }
        }
    }
    let chrome = Chrome::load(&app, &viewer, "templates").await?;
    Ok(page_with(StatusCode::UNPROCESSABLE_ENTITY, &NewPage { chrome, new_key: key, new_name: name, errors }))
}

/// A shape problem of the posted form in the form's words: no line (the
/// form has none) and types named as people know them.
fn form_diagnostic(mut d: Diagnostic) -> Diagnostic {
    d.line = None;
    d.column = None;
    for (serde_word, ours) in [("expected u32", "a whole number"), ("expected f64", "a number")] {
        if d.message.contains(serde_word)
            && let Some(value) = d.message.strip_prefix("invalid type: string ")
        {
            let value = value.split(", expected").next().unwrap_or("").to_string();
            d.message = format!("{value} is not {ours}");
        }
    }
    d
}

fn diag(path: &str, message: &str) -> Diagnostic {
    Diagnostic { file: None, line: None, column: None, path: path.into(), message: message.into() }
}

async fn create_from_version(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Path(key): Path<String>,
    form: FormBody,
) -> WebResult {
    let viewer = Viewer::of(&caller)?;
    let version = form.text("version").parse::<u32>().ok();
    let (a, by) = (app.clone(), viewer.principal.actor.clone());
    let start = DraftStart::Version { key, version };
    let d = blocking(move || Ok(a.write.create_draft(a.drafts.as_ref(), &by, &start, a.now())?)).await?;
    Ok(see_other(&format!("/drafts/{}", d.id)))
}

async fn discard(
    State(app): State<Arc<App>>,
    Extension(_caller): Extension<Caller>,
    Path(id): Path<String>,
) -> WebResult {
    let a = app.clone();
    blocking(move || Ok(a.write.discard_draft(a.drafts.as_ref(), &id)?)).await?;
    Ok(see_other("/templates?ok=discarded"))
}

// ----- the form editor -----

#[derive(Template)]
#[template(path = "draft_editor.html")]
struct EditorPage {
    chrome: Chrome,
    draft: DraftInfo,
    view: EditorView,
    /// The form's own message (a conflict, a refused save).
    form_error: Option<String>,
    check: Option<CheckSummary>,
    diagram: String,
}

struct DraftInfo {
    id: String,
    revision: u64,
    key: String,
    name: String,
    base: Option<u32>,
    updated: String,
    updated_by: String,
}

impl DraftInfo {
    fn of(d: &DraftRow) -> DraftInfo {
        DraftInfo {
            id: d.id.clone(),
            revision: d.revision,
            key: d.template_key.clone(),
            name: d.name.clone(),
            base: d.base_version,
            updated: when(d.updated_at),
            updated_by: d.updated_by.clone(),
        }
    }
}

/// What "Validate" found.
struct CheckSummary {
    errors: usize,
    warnings: Vec<String>,
    published_refused: bool,
}

#[derive(Deserialize)]
struct CheckQuery {
    check: Option<String>,
    ok: Option<String>,
    /// The task to show unfolded.
    open: Option<usize>,
}

async fn load_draft(app: &Arc<App>, id: String) -> WebResult<DraftRow> {
    let a = app.clone();
    Ok(blocking(move || Ok(a.read.draft(a.drafts.as_ref(), &id)?)).await?)
}

async fn editor(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    Query(q): Query<CheckQuery>,
) -> WebResult {
    let viewer = Viewer::of(&caller)?;
    let draft = load_draft(&app, id).await?;
    let template = read_draft(&draft.source)?;
    let model = editor_form::model_of(&template);
    let (mut messages, check) =
        if q.check.is_some() { checked(&draft.source, false) } else { (Messages::default(), None) };
    let mut view = editor_form::view(&model, &mut messages);
    if let Some(t) = q.open.and_then(|i| view.tasks.get_mut(i)) {
        t.open = true;
    }
    let diagram = attest_design::diagram_svg(
        &template,
        &DiagramOptions { id_prefix: "dg", link_prefix: Some("#task-"), ..Default::default() },
    );
    let chrome = Chrome::load(&app, &viewer, "templates").await?.with_notice(notice(q.ok.as_deref()));
    Ok(page(&EditorPage { chrome, draft: DraftInfo::of(&draft), view, form_error: None, check, diagram }))
}

/// Runs the validator over a draft's text: messages to hand out and a summary.
fn checked(source: &str, published_refused: bool) -> (Messages, Option<CheckSummary>) {
    let check = Workspace::check_draft(source);
    let summary = CheckSummary {
        errors: check.errors.len(),
        warnings: check.warnings.iter().map(|w| w.message.clone()).collect(),
        published_refused,
    };
    (Messages::new(&check.errors), Some(summary))
}

fn read_pairs(body: &Bytes) -> Result<Vec<(String, String)>, Problem> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body)
        .map_err(|e| Problem::bad_request(format!("the form could not be read: {e}")))?;
    if pairs.len() > MAX_EDITOR_PAIRS {
        return Err(Problem::too_large(format!("the editor sends at most {MAX_EDITOR_PAIRS} values")));
    }
    Ok(pairs)
}

async fn save_form(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    body: Bytes,
) -> WebResult {
    let viewer = Viewer::of(&caller)?;
    let pairs = read_pairs(&body)?;
    let posted = Posted::new(&pairs);
    let action_text = pairs.iter().find(|(k, _)| k == "action").map(|(_, v)| v.as_str()).unwrap_or("save");
    let publish = action_text == "publish";
    let action = Action::parse(action_text);
    let revision = pairs.iter().find(|(k, _)| k == "revision").and_then(|(_, v)| v.parse::<u64>().ok()).unwrap_or(0);
    let draft = load_draft(&app, id.clone()).await?;
    let stored = editor_form::model_of(&read_draft(&draft.source)?);
    let mut model = editor_form::apply_post(&stored, &posted);
    let template = match editor_form::template_of(&model) {
        Ok(_) => {
            editor_form::apply_action(&mut model, action);
            editor_form::template_of(&model)
        }
        Err(d) => Err(d),
    };
    let template = match template {
        Ok(t) => t,
        // The form does not read as a template: say where, store nothing.
        Err(d) => {
            let mut messages = Messages::new(&[form_diagnostic(d)]);
            let view = editor_form::view(&model, &mut messages);
            return refused(&app, &viewer, &draft, view, None, None).await;
        }
    };
    let source = attest_template::to_yaml(&template);
    let touched = action.task(&model);
    match save_and_maybe_publish(&app, &viewer, &id, revision, &source, publish).await? {
        Outcome::Saved => {
            let to = match (action, touched) {
                (Action::Validate, _) => format!("/drafts/{id}?check=1"),
                (_, Some(i)) => format!("/drafts/{id}?ok=saved&open={i}#task-{i}"),
                _ => format!("/drafts/{id}?ok=saved"),
            };
            Ok(see_other(&to))
        }
        Outcome::Published(key, unchanged) => {
            Ok(see_other(&format!("/templates/{key}?ok={}", if unchanged { "unchanged" } else { "published" })))
        }
        Outcome::Conflict(message) => {
            let mut messages = Messages::default();
            let view = editor_form::view(&model, &mut messages);
            refused(&app, &viewer, &draft, view, Some(message), None).await
        }
        Outcome::Invalid => {
            // Saved, but the validator refused publishing: show its messages.
            let (mut messages, check) = checked(&source, true);
            let saved = load_draft(&app, id).await?;
            let view = editor_form::view(&editor_form::model_of(&template), &mut messages);
            refused(&app, &viewer, &saved, view, None, check).await
        }
    }
}

enum Outcome {
    Saved,
    Published(String, bool),
    Invalid,
    Conflict(String),
}

async fn save_and_maybe_publish(
    app: &Arc<App>,
    viewer: &Viewer,
    id: &str,
    revision: u64,
    source: &str,
    publish: bool,
) -> WebResult<Outcome> {
    let (a, by, id, source) = (app.clone(), viewer.principal.actor.clone(), id.to_string(), source.to_string());
    let outcome = blocking(move || {
        let now = a.now();
        let rev = match a.write.save_draft(a.drafts.as_ref(), &by, &id, revision, &source, now) {
            Ok(rev) => rev,
            Err(Error::Conflict(m)) => return Ok(Outcome::Conflict(m)),
            Err(e) => return Err(Problem::from(e)),
        };
        if !publish {
            return Ok(Outcome::Saved);
        }
        match a.write.publish_draft(a.drafts.as_ref(), &by, &id, rev, now) {
            Ok(out) => Ok(Outcome::Published(out.key, out.unchanged)),
            Err(Error::InvalidTemplate(_)) => Ok(Outcome::Invalid),
            Err(Error::Conflict(m)) => Ok(Outcome::Conflict(m)),
            Err(e) => Err(Problem::from(e)),
        }
    })
    .await?;
    if matches!(outcome, Outcome::Published(..)) {
        app.forget_principals();
    }
    Ok(outcome)
}

async fn refused(
    app: &Arc<App>,
    viewer: &Viewer,
    draft: &DraftRow,
    view: EditorView,
    form_error: Option<String>,
    check: Option<CheckSummary>,
) -> WebResult {
    let status = if form_error.is_some() { StatusCode::CONFLICT } else { StatusCode::UNPROCESSABLE_ENTITY };
    let template = read_draft(&draft.source)?;
    let diagram = attest_design::diagram_svg(
        &template,
        &DiagramOptions { id_prefix: "dg", link_prefix: Some("#task-"), ..Default::default() },
    );
    let form_error = form_error.or_else(|| {
        check.is_none().then(|| "The form was not saved: fix the field marked below and save again.".to_string())
    });
    let chrome = Chrome::load(app, viewer, "templates").await?;
    Ok(page_with(status, &EditorPage { chrome, draft: DraftInfo::of(draft), view, form_error, check, diagram }))
}

// ----- the YAML editor -----

#[derive(Template)]
#[template(path = "draft_yaml.html")]
struct YamlPage {
    chrome: Chrome,
    draft: DraftInfo,
    source: String,
    /// Messages with their line, in the order of the text.
    messages: Vec<String>,
    form_error: Option<String>,
    check: Option<CheckSummary>,
}

async fn yaml_editor(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    Query(q): Query<CheckQuery>,
) -> WebResult {
    let viewer = Viewer::of(&caller)?;
    let draft = load_draft(&app, id).await?;
    let (messages, check) = if q.check.is_some() { yaml_check(&draft.source, false) } else { (Vec::new(), None) };
    let chrome = Chrome::load(&app, &viewer, "templates").await?.with_notice(notice(q.ok.as_deref()));
    Ok(page(&YamlPage {
        chrome,
        draft: DraftInfo::of(&draft),
        source: draft.source.clone(),
        messages,
        form_error: None,
        check,
    }))
}

fn yaml_check(source: &str, published_refused: bool) -> (Vec<String>, Option<CheckSummary>) {
    let check = Workspace::check_draft(source);
    let messages = check.errors.iter().map(line_message).collect();
    let summary = CheckSummary {
        errors: check.errors.len(),
        warnings: check.warnings.iter().map(line_message).collect(),
        published_refused,
    };
    (messages, Some(summary))
}

fn line_message(d: &Diagnostic) -> String {
    let mut s = String::new();
    if let Some(line) = d.line {
        s.push_str(&format!("Line {line}"));
        if let Some(col) = d.column {
            s.push_str(&format!(", column {col}"));
        }
        s.push_str(": ");
    }
    if !d.path.is_empty() {
        s.push_str(&format!("{}: ", d.path));
    }
    s.push_str(&d.message);
    s
}

async fn save_yaml(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    body: Bytes,
) -> WebResult {
    let viewer = Viewer::of(&caller)?;
    let pairs = read_pairs(&body)?;
    let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str()).unwrap_or("");
    let source = get("source").replace("\r\n", "\n");
    let action = get("action");
    let revision = get("revision").parse::<u64>().unwrap_or(0);
    let draft = load_draft(&app, id.clone()).await?;
    // Text that does not read is refused with its line; nothing is stored.
    if let Err(Error::InvalidTemplate(diags)) = read_draft(&source) {
        let chrome = Chrome::load(&app, &viewer, "templates").await?;
        return Ok(page_with(
            StatusCode::UNPROCESSABLE_ENTITY,
            &YamlPage {
                chrome,
                draft: DraftInfo::of(&draft),
                source,
                messages: diags.iter().map(line_message).collect(),
                form_error: Some("The text was not saved: it does not read as a template.".into()),
                check: None,
            },
        ));
    }
    let publish = action == "publish";
    match save_and_maybe_publish(&app, &viewer, &id, revision, &source, publish).await? {
        Outcome::Saved => {
            let check = if action == "validate" { "?check=1" } else { "?ok=saved" };
            Ok(see_other(&format!("/drafts/{id}/yaml{check}")))
        }
        Outcome::Published(key, unchanged) => {
            Ok(see_other(&format!("/templates/{key}?ok={}", if unchanged { "unchanged" } else { "published" })))
        }
        Outcome::Conflict(message) => {
            let chrome = Chrome::load(&app, &viewer, "templates").await?;
            Ok(page_with(
                StatusCode::CONFLICT,
                &YamlPage {
                    chrome,
                    draft: DraftInfo::of(&draft),
                    source,
                    messages: Vec::new(),
                    form_error: Some(message),
                    check: None,
                },
            ))
        }
        Outcome::Invalid => {
            let (messages, check) = yaml_check(&source, true);
            let saved = load_draft(&app, id).await?;
            let chrome = Chrome::load(&app, &viewer, "templates").await?;
            Ok(page_with(
                StatusCode::UNPROCESSABLE_ENTITY,
                &YamlPage { chrome, draft: DraftInfo::of(&saved), source, messages, form_error: None, check },
            ))
        }
    }
}

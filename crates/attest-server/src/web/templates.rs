//! Templates: the list, one template's page (diagram, checklist, controls,
//! versions, its YAML) and the difference between two versions.

use std::sync::Arc;

use askama::Template;
use attest_design::diagram::DiagramOptions;
use attest_design::{Change, LineOp, diff_templates};
use attest_template::{FieldKind, Task, TaskType};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Extension, Router};
use serde::Deserialize;

use super::{Chrome, FieldErrors, Viewer, WebResult, blocking, page, page_with, when};
use crate::App;
use crate::access::Access;
use crate::guard::Caller;
use crate::problem::Problem;

pub fn routes(r: Router<Arc<App>>) -> Router<Arc<App>> {
    r.route("/templates", get(list)).route("/templates/{key}", get(show)).route("/templates/{key}/diff", get(diff))
}

/// Whether the viewer may design templates (and so sees drafts and editing).
pub fn can_design(v: &Viewer) -> bool {
    matches!(v.principal.access, Access::Admin | Access::ProcessOwner)
}

/// The notice for a `?ok=` key of this area, else the app's.
pub fn notice(key: Option<&str>) -> Option<String> {
    let text = match key? {
        "published" => "Published: new runs use this version.",
        "unchanged" => "Nothing published: the draft equals the latest version.",
        "discarded" => "Draft discarded.",
        other => return super::flash(Some(other)),
    };
    Some(text.to_string())
}

// ----- the list -----

struct Row {
    key: String,
    name: String,
    version: u32,
    owner: String,
    policy: Option<PolicyLink>,
    open_runs: u64,
    total_runs: u64,
    tasks: usize,
}

struct PolicyLink {
    text: String,
    url: Option<String>,
}

struct DraftLine {
    id: String,
    key: String,
    name: String,
    base: String,
    updated: String,
    by: String,
}

#[derive(Template)]
#[template(path = "templates_list.html")]
struct ListPage {
    chrome: Chrome,
    rows: Vec<Row>,
    drafts: Vec<DraftLine>,
    can_design: bool,
}

#[derive(Deserialize)]
struct OkQuery {
    ok: Option<String>,
}

fn policy_link(p: Option<&attest_template::PolicyRef>) -> Option<PolicyLink> {
    p.map(|p| {
        let mut text = p.id.clone();
        if let Some(title) = &p.title {
            text.push_str(&format!(" {title}"));
        }
        if let Some(clause) = &p.clause {
            text.push_str(&format!(", clause {clause}"));
        }
        PolicyLink { text, url: p.url.clone() }
    })
}

async fn list(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<OkQuery>,
) -> WebResult {
    let viewer = Viewer::of(&caller)?;
    let design = can_design(&viewer);
    let a = app.clone();
    let (rows, drafts) = blocking(move || {
        let summaries = a.read.store().templates()?;
        let mut rows = Vec::with_capacity(summaries.len());
        for s in summaries {
            let compiled = a.read.compiled(&s.key, s.latest_version)?;
            let t = &compiled.template;
            rows.push(Row {
                key: s.key,
                name: s.name,
                version: s.latest_version,
                owner: t.owner.as_ref().map(ToString::to_string).unwrap_or_default(),
                policy: policy_link(t.policy.as_ref()),
                open_runs: s.open_runs,
                total_runs: s.total_runs,
                tasks: t.tasks.len(),
            });
        }
        let drafts = if design {
            a.drafts
                .drafts()?
                .into_iter()
                .map(|d| DraftLine {
                    base: d.base_version.map(|v| format!("from version {v}")).unwrap_or_else(|| "new".into()),
                    id: d.id,
                    key: d.template_key,
                    name: d.name,
                    updated: when(d.updated_at),
                    by: d.updated_by,
                })
                .collect()
        } else {
            Vec::new()
        };
        Ok((rows, drafts))
    })
    .await?;
    let chrome = Chrome::load(&app, &viewer, "templates").await?.with_notice(notice(q.ok.as_deref()));
    Ok(page(&ListPage { chrome, rows, drafts, can_design: design }))
}

// ----- one template -----

/// A task of the checklist, in words.
struct TaskLine {
    n: usize,
    key: String,
    name: String,
    approval: bool,
    stop: bool,
    assignee: String,
    approves: Vec<String>,
    condition: Option<String>,
    due: Option<String>,
    escalations: Vec<String>,
    reminders: Vec<String>,
    controls: Vec<String>,
    instructions: Option<String>,
    fields: Vec<FieldLine>,
}

struct FieldLine {
    key: String,
    label: String,
    kind: String,
    required: bool,
    rules: String,
    condition: Option<String>,
}

struct ControlLine {
    id: String,
    name: String,
    frameworks: String,
    tasks: Vec<String>,
}

struct VersionLine {
    version: u32,
    hash: String,
    at: String,
    by: String,
    current: bool,
}

#[derive(Template)]
#[template(path = "template_page.html")]
struct TemplatePage {
    chrome: Chrome,
    key: String,
    name: String,
    description: Option<String>,
    version: u32,
    latest: u32,
    hash: String,
    published: String,
    published_by: String,
    owner: String,
    policy: Option<PolicyLink>,
    roles: String,
    diagram: String,
    tasks: Vec<TaskLine>,
    controls: Vec<ControlLine>,
    versions: Vec<VersionLine>,
    yaml: String,
    open_runs: u64,
    can_design: bool,
    can_start: bool,
}

#[derive(Deserialize)]
struct ShowQuery {
    version: Option<u32>,
    ok: Option<String>,
}

async fn show(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Path(key): Path<String>,
    Query(q): Query<ShowQuery>,
) -> WebResult {
    let viewer = Viewer::of(&caller)?;
    let a = app.clone();
    let (row, versions, compiled, open_runs) = blocking(move || {
        let versions = a.read.store().template_versions(&key)?;
        let latest = versions
            .iter()
            .map(|v| v.version)
            .max()
            .ok_or_else(|| Problem::from(attest_core::Error::NotFound(format!("no template with key {key}"))))?;
        let version = q.version.unwrap_or(latest);
        let row = versions.iter().find(|v| v.version == version).cloned().ok_or_else(|| {
            Problem::from(attest_core::Error::NotFound(format!("template {key} has no version {version}")))
        })?;
        let compiled = a.read.compiled(&key, version)?;
        let open_runs = a.read.store().templates()?.into_iter().find(|s| s.key == key).map_or(0, |s| s.open_runs);
        Ok((row, versions, compiled, open_runs))
    })
    .await?;
    let t = &compiled.template;
    let latest = versions.iter().map(|v| v.version).max().unwrap_or(row.version);
    let tasks = t.tasks.iter().enumerate().map(|(i, task)| task_line(i, task)).collect();
    let controls = t
        .controls
        .iter()
        .map(|c| ControlLine {
            id: c.id.clone(),
            name: c.name.clone(),
            frameworks: c.frameworks.join(", "),
            tasks: t.tasks.iter().filter(|task| task.controls.contains(&c.id)).map(|task| task.name.clone()).collect(),
        })
        .collect();
    let mut version_lines: Vec<VersionLine> = versions
        .iter()
        .map(|v| VersionLine {
            version: v.version,
            hash: v.content_hash.clone(),
            at: when(v.published_at),
            by: v.published_by.clone(),
            current: v.version == row.version,
        })
        .collect();
    version_lines.sort_by_key(|v| std::cmp::Reverse(v.version));
    let design = can_design(&viewer);
    let can_start = matches!(viewer.principal.access, Access::Admin | Access::ProcessOwner | Access::Member);
    let chrome = Chrome::load(&app, &viewer, "templates").await?.with_notice(notice(q.ok.as_deref()));
    Ok(page(&TemplatePage {
        chrome,
        key: row.key.clone(),
        name: t.name.clone(),
        description: t.description.clone(),
        version: row.version,
        latest,
        hash: row.content_hash.clone(),
        published: when(row.published_at),
        published_by: row.published_by.clone(),
        owner: t.owner.as_ref().map(ToString::to_string).unwrap_or_default(),
        policy: policy_link(t.policy.as_ref()),
        roles: t.roles.join(", "),
        diagram: attest_design::diagram_svg(
            t,
            &DiagramOptions { id_prefix: "dg", link_prefix: Some("#task-"), ..Default::default() },
        ),
        tasks,
        controls,
        versions: version_lines,
        yaml: attest_template::to_yaml(t),
        open_runs,
        can_design: design,
        can_start,
    }))
}

fn task_line(i: usize, task: &Task) -> TaskLine {
    TaskLine {
        n: i + 1,
        key: task.key.clone(),
        name: task.name.clone(),
        approval: task.task_type == TaskType::Approval,
        stop: task.stop,
        assignee: task.assignee.to_string(),
        approves: task.approves.clone(),
        condition: task.show_when.as_ref().map(attest_design::condition_text),
        due: task.due.as_ref().map(|d| {
            let after = String::from(d.after.clone());
            let business = if d.business_days { " business" } else { "" };
            format!("{}{business} after {}", d.within, after.replace(':', " "))
        }),
        escalations: task
            .escalate
            .iter()
            .map(|e| match &e.action {
                attest_template::EscalationAction::Notify(who) => format!("overdue by {}: notify {who}", e.overdue_by),
                attest_template::EscalationAction::Reassign(who) => {
                    format!("overdue by {}: reassign to {who}", e.overdue_by)
                }
            })
            .collect(),
        reminders: task.remind.iter().map(|r| format!("{} before due", r.before_due)).collect(),
        controls: task.controls.clone(),
        instructions: task.instructions.clone(),
        fields: task
            .fields
            .iter()
            .map(|f| FieldLine {
                key: f.key.clone(),
                label: f.label.clone(),
                kind: f.kind.type_name().replace('_', " "),
                required: f.required,
                rules: rules_text(&f.kind),
                condition: f.show_when.as_ref().map(attest_design::condition_text),
            })
            .collect(),
    }
}

/// A field's validation rules in a few words.
fn rules_text(kind: &FieldKind) -> String {
    let mut parts = Vec::new();
    let num = |x: f64| if x.fract() == 0.0 { format!("{x:.0}") } else { x.to_string() };
    match kind {
        FieldKind::Text(r) | FieldKind::Textarea(r) => {
            if let Some(n) = r.min_length {
                parts.push(format!("at least {n} characters"));
            }
            if let Some(n) = r.max_length {
                parts.push(format!("at most {n} characters"));
            }
            if let Some(p) = &r.pattern {
                parts.push(format!("matches {p}"));
            }
        }
        FieldKind::Number(r) => {
            if let Some(x) = r.min {
                parts.push(format!("≥ {}", num(x)));
            }
            if let Some(x) = r.max {
                parts.push(format!("≤ {}", num(x)));
            }
            if let Some(d) = r.decimals {
                parts.push(format!("{d} decimals"));
            }
        }
        FieldKind::Email(r) => {
            if !r.allow_domains.is_empty() {
                parts.push(format!("only {}", r.allow_domains.join(", ")));
            }
            if !r.block_domains.is_empty() {
                parts.push(format!("not {}", r.block_domains.join(", ")));
            }
        }
        FieldKind::Date(r) | FieldKind::Datetime(r) => {
            if let Some(b) = &r.not_before {
                parts.push(format!("not before {}", String::from(b.clone())));
            }
            if let Some(b) = &r.not_after {
                parts.push(format!("not after {}", String::from(b.clone())));
            }
        }
        FieldKind::Select(r) | FieldKind::MultiChoice(r) => parts.push(r.options.join(" / ")),
        FieldKind::Members(r) if r.multiple => parts.push("several people".into()),
        FieldKind::File(r) => {
            if !r.accept.is_empty() {
                parts.push(r.accept.join(", "));
            }
            if let Some(mb) = r.max_size_mb {
                parts.push(format!("up to {mb} MB"));
            }
        }
        FieldKind::Table(r) => {
            parts
                .push(format!("columns {}", r.columns.iter().map(|c| c.label.as_str()).collect::<Vec<_>>().join(", ")));
        }
        _ => {}
    }
    parts.join("; ")
}

// ----- the difference between versions -----

struct ChangeLine {
    kind: &'static str,
    location: String,
    before: String,
    after: String,
}

struct DiffRow {
    /// `same`, `added`, `removed` or `gap`.
    class: &'static str,
    old_no: String,
    new_no: String,
    text: String,
}

#[derive(Template)]
#[template(path = "template_diff.html")]
struct DiffPage {
    chrome: Chrome,
    errors: FieldErrors,
    key: String,
    name: String,
    versions: Vec<u32>,
    from: u32,
    to: u32,
    changes: Vec<ChangeLine>,
    lines: Vec<DiffRow>,
    added: usize,
    removed: usize,
}

#[derive(Deserialize)]
struct DiffQuery {
    from: Option<u32>,
    to: Option<u32>,
}

async fn diff(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Path(key): Path<String>,
    Query(q): Query<DiffQuery>,
) -> WebResult {
    let viewer = Viewer::of(&caller)?;
    let a = app.clone();
    let (versions, from, to, old, new, errors) = blocking(move || {
        let mut versions: Vec<u32> = a.read.store().template_versions(&key)?.iter().map(|v| v.version).collect();
        versions.sort_unstable();
        let latest = *versions
            .last()
            .ok_or_else(|| Problem::from(attest_core::Error::NotFound(format!("no template with key {key}"))))?;
        // A version that does not exist is said beside its choice; the page compares the defaults.
        let mut errors = FieldErrors::default();
        let mut pick = |name: &str, asked: Option<u32>, default: u32| match asked {
            Some(v) if !versions.contains(&v) => {
                errors.add(name, format!("there is no version {v}; this template has versions 1 to {latest}"));
                default
            }
            Some(v) => v,
            None => default,
        };
        let to = pick("to", q.to, latest);
        let from = pick("from", q.from, to.saturating_sub(1).max(1));
        let old = a.read.compiled(&key, from)?;
        let new = a.read.compiled(&key, to)?;
        Ok((versions, from, to, old, new, errors))
    })
    .await?;
    let d = diff_templates(&old.template, &new.template);
    let changes = d.changes.iter().map(change_line).collect();
    let lines = d
        .lines
        .with_context(3)
        .into_iter()
        .map(|l| match l {
            None => DiffRow { class: "gap", old_no: String::new(), new_no: String::new(), text: "…".into() },
            Some(l) => DiffRow {
                class: match l.op {
                    LineOp::Same => "same",
                    LineOp::Added => "added",
                    LineOp::Removed => "removed",
                },
                old_no: l.old_no.map(|n| n.to_string()).unwrap_or_default(),
                new_no: l.new_no.map(|n| n.to_string()).unwrap_or_default(),
                text: l.text.clone(),
            },
        })
        .collect();
    let chrome = Chrome::load(&app, &viewer, "templates").await?;
    let status = if errors.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    Ok(page_with(
        status,
        &DiffPage {
            errors,
            chrome,
            key: new.template.key.clone(),
            name: new.template.name.clone(),
            versions,
            from,
            to,
            changes,
            lines,
            added: d.lines.added(),
            removed: d.lines.removed(),
        },
    ))
}

fn change_line(c: &Change) -> ChangeLine {
    ChangeLine {
        kind: c.kind.as_str(),
        location: c.location(),
        before: c.before.clone().unwrap_or_default(),
        after: c.after.clone().unwrap_or_default(),
    }
}

//! My work: the open tasks and approvals the signed-in person may act on,
//! overdue first, with due badges.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Extension, Router};

use super::{Chrome, OkQuery, Viewer, WebResult, blocking, due_badge, page};
use crate::App;
use crate::guard::Caller;

pub fn routes(r: Router<Arc<App>>) -> Router<Arc<App>> {
    r.route("/", get(home))
}

/// One line of work.
pub struct WorkItem {
    pub run_id: String,
    pub run_name: String,
    pub template_key: String,
    pub task_key: String,
    pub task_name: String,
    pub rework: bool,
    /// The badge text and its class (`overdue`, `soon`, `due`), if the task has a due date.
    pub due: Option<(String, &'static str)>,
    /// The due time in the viewer's zone, labelled with it.
    pub due_when: Option<String>,
}

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    chrome: Chrome,
    tasks: Vec<WorkItem>,
    approvals: Vec<WorkItem>,
    overdue: usize,
}

async fn home(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<OkQuery>,
) -> WebResult {
    let viewer = Viewer::of(&caller)?;
    let actor = viewer.principal.actor.clone();
    let (a, v) = (app.clone(), viewer.clone());
    let (rows, tz) = blocking(move || Ok((a.read.inbox(&actor)?, super::account::viewer_zone(&a, &v)?))).await?;
    let now = app.now();
    let chrome = Chrome::counted(&viewer, "home", rows.len()).with_notice(super::flash(q.ok.as_deref()));
    let (mut tasks, mut approvals) = (Vec::new(), Vec::new());
    let mut overdue = 0;
    for r in rows {
        let due = r.due_at.map(|d| due_badge(d, now));
        if due.as_ref().is_some_and(|(_, class)| *class == "overdue") {
            overdue += 1;
        }
        let item = WorkItem {
            run_id: r.run_id,
            run_name: r.run_name,
            template_key: r.template_key,
            task_key: r.task_key,
            task_name: r.task_name,
            rework: r.status == "rework",
            due,
            due_when: r.due_at.map(|d| super::when_in(d, &tz)),
        };
        if r.approval { approvals.push(item) } else { tasks.push(item) }
    }
    // Overdue first, then by due date (the store's order), then the rest.
    let key = |w: &WorkItem| match &w.due {
        Some((_, "overdue")) => 0,
        Some(_) => 1,
        None => 2,
    };
    tasks.sort_by_key(key);
    approvals.sort_by_key(key);
    Ok(page(&HomePage { chrome, tasks, approvals, overdue }))
}

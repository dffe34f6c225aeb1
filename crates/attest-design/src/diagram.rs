//! The process diagram: a template's tasks drawn top to bottom in process
//! order as SVG, drawn on the server so that it needs no script.
//!
//! - a task is a box with its name and assignee; an approval has its own
//!   colour and an arrow to each task it approves, in a lane of its own on
//!   the right;
//! - a stop task carries a "stop" badge and a bar below it: the tasks after
//!   the bar wait for it;
//! - a conditional task (`show_when`) has a dashed border and its condition
//!   in words.
//!
//! [`run_diagram_svg`] draws the same picture with a run's task states laid
//! over it (done, open, waiting, rework, overdue, skipped) and a legend that
//! names them, so colour is never the only cue.

use std::collections::HashMap;
use std::fmt::Write as _;

use attest_engine::view::{TaskStatus, TaskView};
use attest_template::{Task, TaskType, Template};

use crate::text::{condition_text, escape, shorten};

const MARGIN: i32 = 16;
/// Width of a task box unless the options narrow it.
pub const NODE_WIDTH: i32 = 320;
/// The narrowest box drawn, so names stay legible.
const MIN_NODE_WIDTH: i32 = 200;
const NODE_H: i32 = 66;
/// Vertical space between two boxes: room for the arrow and a stop bar.
const GAP: i32 = 34;
/// Horizontal distance between approval lanes.
const LANE_W: i32 = 18;
const LEGEND_ROW_H: i32 = 22;
/// Average advance of a character, in tenths of a pixel, at the font sizes
/// used: bold 13 px names and 12 px details.
const NAME_CHAR_TENTHS: i32 = 76;
const META_CHAR_TENTHS: i32 = 67;

/// How to draw a diagram on a page.
#[derive(Debug, Clone, Copy)]
pub struct DiagramOptions<'a> {
    /// Prefix of every `id` in the SVG, unique per page (`dg`).
    pub id_prefix: &'a str,
    /// When set, each task box links to `{link_prefix}{task key}`, such as
    /// `#task-` for the checklist on the same page.
    pub link_prefix: Option<&'a str>,
    /// Width of a task box in drawing units ([`NODE_WIDTH`]); a narrow
    /// column (a run page's side bar) draws narrower boxes so that its text
    /// is not scaled down to nothing.
    pub node_width: i32,
}

impl Default for DiagramOptions<'_> {
    fn default() -> Self {
        DiagramOptions { id_prefix: "dg", link_prefix: None, node_width: NODE_WIDTH }
    }
}

/// Sizes derived from the box width.
#[derive(Clone, Copy)]
struct Layout {
    node_w: i32,
    width: i32,
    name_chars: usize,
    meta_chars: usize,
}

/// A task's state in a run, as the overlay draws it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskMark {
    Done,
    Open,
    /// Open, but behind an earlier stop task that is not complete.
    Waiting,
    /// Sent back by a rejected approval.
    Rework,
    Overdue,
    /// Hidden by its condition: not part of this run.
    Skipped,
    /// A service task Attest is calling its endpoint for.
    Automatic,
}

impl TaskMark {
    pub fn of(view: &TaskView) -> TaskMark {
        match view.status {
            TaskStatus::Done => TaskMark::Done,
            TaskStatus::Hidden => TaskMark::Skipped,
            _ if view.overdue => TaskMark::Overdue,
            _ if view.waits_for.is_some() => TaskMark::Waiting,
            TaskStatus::Rework => TaskMark::Rework,
            TaskStatus::Open => TaskMark::Open,
            TaskStatus::Automatic => TaskMark::Automatic,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            TaskMark::Done => "done",
            TaskMark::Open => "open",
            TaskMark::Waiting => "waiting",
            TaskMark::Rework => "rework",
            TaskMark::Overdue => "overdue",
            TaskMark::Skipped => "skipped",
            TaskMark::Automatic => "automatic",
        }
    }

    /// Fill, stroke and the symbol drawn before the label.
    fn style(self) -> (&'static str, &'static str, &'static str) {
        match self {
            TaskMark::Done => ("#e6f4ea", "#1e7b3a", "✓"),
            TaskMark::Open => ("#e8f0fc", "#1d5fbf", "●"),
            TaskMark::Waiting => ("#f2f2f4", "#62626b", "⏸"),
            TaskMark::Rework => ("#fff3dc", "#a35200", "↺"),
            TaskMark::Overdue => ("#fde7e7", "#b42318", "!"),
            TaskMark::Skipped => ("#f7f7f8", "#8a8a93", "–"),
            TaskMark::Automatic => ("#eef0fb", "#4b53a8", "⚙"),
        }
    }

    const ALL: [TaskMark; 7] = [
        TaskMark::Done,
        TaskMark::Open,
        TaskMark::Waiting,
        TaskMark::Rework,
        TaskMark::Overdue,
        TaskMark::Skipped,
        TaskMark::Automatic,
    ];
}

/// The template's diagram.
pub fn diagram_svg(template: &Template, options: &DiagramOptions<'_>) -> String {
    draw(template, None, options)
}

/// The template's diagram with a run's task states laid over it. Tasks are
/// matched by key; a task without a view is drawn as in the plain diagram.
pub fn run_diagram_svg(template: &Template, views: &[TaskView], options: &DiagramOptions<'_>) -> String {
    let marks: HashMap<&str, (TaskMark, &TaskView)> =
        views.iter().map(|v| (v.key.as_str(), (TaskMark::of(v), v))).collect();
    draw(template, Some(&marks), options)
}

type Marks<'v> = HashMap<&'v str, (TaskMark, &'v TaskView)>;

fn draw(t: &Template, marks: Option<&Marks<'_>>, options: &DiagramOptions<'_>) -> String {
    let p = escape(options.id_prefix);
    let lanes = lanes(t);
    let lane_count = lanes.values().copied().max().map_or(0, |m| m + 1);
    let node_w = options.node_width.max(MIN_NODE_WIDTH);
    let text_w = node_w - 24;
    let l = Layout {
        node_w,
        width: MARGIN * 2 + node_w + if lane_count > 0 { 14 + lane_count * LANE_W } else { 0 },
        name_chars: (text_w * 10 / NAME_CHAR_TENTHS) as usize,
        meta_chars: (text_w * 10 / META_CHAR_TENTHS) as usize,
    };
    let tasks_h = t.tasks.len() as i32 * (NODE_H + GAP) - GAP;
    let legend_top = MARGIN + tasks_h + 28;
    let mut legend_svg = String::new();
    let legend_rows = legend(&mut legend_svg, legend_top, marks.is_some(), &p, l.width);
    let (width, height) = (l.width, legend_top + legend_rows * LEGEND_ROW_H + MARGIN);

    let mut svg = String::with_capacity(2048 + t.tasks.len() * 1024);
    let _ = write!(
        svg,
        r##"<svg xmlns="http://www.w3.org/2000/svg" class="diagram" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" aria-labelledby="{p}-title {p}-desc" font-family="system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif" font-size="13">"##
    );
    let title = match marks {
        Some(_) => format!("Process diagram of {} with the run's progress", t.name),
        None => format!("Process diagram of {}", t.name),
    };
    let _ = write!(
        svg,
        r#"<title id="{p}-title">{}</title><desc id="{p}-desc">{}</desc>"#,
        escape(&title),
        escape(&describe(t, marks))
    );
    let _ = write!(
        svg,
        r##"<defs><marker id="{p}-flow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#44546a"/></marker><marker id="{p}-appr" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#6b4fbb"/></marker></defs>"##
    );

    // Flow arrows and stop bars first, so boxes are drawn over their ends.
    for (i, task) in t.tasks.iter().enumerate().take(t.tasks.len().saturating_sub(1)) {
        let y_bottom = node_y(i) + NODE_H;
        let x = MARGIN + l.node_w / 2;
        let _ = write!(
            svg,
            r##"<line class="flow" x1="{x}" y1="{y_bottom}" x2="{x}" y2="{}" stroke="#44546a" stroke-width="1.5" marker-end="url(#{p}-flow)"/>"##,
            y_bottom + GAP - 1
        );
        if task.stop {
            let bar_y = y_bottom + GAP / 2 - 3;
            let _ = write!(
                svg,
                r##"<g class="stop-bar"><title>Stop: the tasks below wait until {} is complete</title><rect x="{MARGIN}" y="{bar_y}" width="{}" height="6" rx="3" fill="#b42318"/></g>"##,
                escape(&task.name),
                l.node_w
            );
        }
    }

    for (i, task) in t.tasks.iter().enumerate() {
        let mark = marks.and_then(|m| m.get(task.key.as_str()).copied());
        node(&mut svg, &p, &l, i, task, mark, options.link_prefix);
    }

    for (i, task) in t.tasks.iter().enumerate() {
        if let Some(&lane) = lanes.get(task.key.as_str()) {
            approval_edges(&mut svg, &p, &l, t, i, task, lane);
        }
    }

    svg.push_str(&legend_svg);
    svg.push_str("</svg>");
    svg
}

fn node_y(i: usize) -> i32 {
    MARGIN + i as i32 * (NODE_H + GAP)
}

/// The lane of each approval that approves something, in order of appearance.
fn lanes(t: &Template) -> HashMap<&str, i32> {
    let mut out = HashMap::new();
    for task in t.tasks.iter().filter(|t| t.task_type == TaskType::Approval && !t.approves.is_empty()) {
        let next = out.len() as i32;
        out.insert(task.key.as_str(), next);
    }
    out
}

fn node(
    svg: &mut String,
    p: &str,
    l: &Layout,
    i: usize,
    task: &Task,
    mark: Option<(TaskMark, &TaskView)>,
    link: Option<&str>,
) {
    let node_w = l.node_w;
    let y = node_y(i);
    let approval = task.task_type == TaskType::Approval;
    let conditional = task.show_when.is_some();
    let (mut fill, mut stroke) = if approval { ("#f3effc", "#6b4fbb") } else { ("#ffffff", "#44546a") };
    let mut stroke_width = "1.5";
    if let Some((m, _)) = mark {
        (fill, stroke, _) = m.style();
        if m == TaskMark::Overdue {
            stroke_width = "3";
        }
    }
    let mut classes = vec!["node", if approval { "approval" } else { "task" }];
    if task.stop {
        classes.push("stop");
    }
    if conditional {
        classes.push("conditional");
    }
    if let Some((m, _)) = mark {
        classes.push(m.label());
    }
    let key = escape(&task.key);
    let mut title = format!("{} ({}), {}", task.name, if approval { "approval" } else { "task" }, task.assignee);
    if task.stop {
        title.push_str("; stop: later tasks wait for it");
    }
    if !task.approves.is_empty() {
        title.push_str(&format!("; approves {}", task.approves.join(", ")));
    }
    if let Some(c) = &task.show_when {
        title.push_str(&format!("; only if {}", condition_text(c)));
    }
    if let Some((m, v)) = mark {
        title.push_str(&format!("; {}", status_words(m, v)));
    }
    if let Some(prefix) = link {
        let _ = write!(svg, r#"<a href="{}{key}">"#, escape(prefix));
    }
    let _ = write!(
        svg,
        r#"<g id="{p}-task-{key}" class="{}" data-task="{key}"><title>{}</title>"#,
        classes.join(" "),
        escape(&title)
    );
    let dash = if conditional { r#" stroke-dasharray="6 4""# } else { "" };
    let opacity = if mark.is_some_and(|(m, _)| m == TaskMark::Skipped) { r#" opacity="0.7""# } else { "" };
    let _ = write!(
        svg,
        r#"<rect x="{MARGIN}" y="{y}" width="{node_w}" height="{NODE_H}" rx="8" fill="{fill}" stroke="{stroke}" stroke-width="{stroke_width}"{dash}{opacity}/>"#
    );
    let tx = MARGIN + 12;
    // The STOP badge and its margin take 60 units of the line.
    let name_chars =
        if task.stop { l.name_chars.saturating_sub((600 / NAME_CHAR_TENTHS) as usize) } else { l.name_chars };
    let _ = write!(
        svg,
        r##"<text x="{tx}" y="{}" font-weight="600" fill="#1f2937">{}</text>"##,
        y + 21,
        escape(&shorten(&task.name, name_chars))
    );
    let kind = if approval { "approval" } else { "task" };
    let meta = match mark {
        Some((m, v)) => format!("{} {} · {}", m.style().2, status_words(m, v), task.assignee),
        None => format!("{kind} · {}", task.assignee),
    };
    let _ = write!(
        svg,
        r##"<text x="{tx}" y="{}" font-size="12" fill="#374151">{}</text>"##,
        y + 39,
        escape(&shorten(&meta, l.meta_chars))
    );
    if let Some(c) = &task.show_when {
        let _ = write!(
            svg,
            r##"<text x="{tx}" y="{}" font-size="12" font-style="italic" fill="#4b5563">{}</text>"##,
            y + 56,
            escape(&shorten(&format!("only if {}", condition_text(c)), l.meta_chars))
        );
    } else if !task.approves.is_empty() {
        let _ = write!(
            svg,
            r##"<text x="{tx}" y="{}" font-size="12" fill="#4b5563">{}</text>"##,
            y + 56,
            escape(&shorten(&format!("approves {}", task.approves.join(", ")), l.meta_chars))
        );
    }
    if task.stop {
        let bx = MARGIN + node_w - 52;
        let _ = write!(
            svg,
            r##"<rect x="{bx}" y="{}" width="42" height="18" rx="9" fill="#b42318"/><text x="{}" y="{}" font-size="11" font-weight="700" fill="#ffffff" text-anchor="middle">STOP</text>"##,
            y + 8,
            bx + 21,
            y + 21
        );
    }
    svg.push_str("</g>");
    if link.is_some() {
        svg.push_str("</a>");
    }
}

/// The state of a task in words, for its box and its title.
fn status_words(m: TaskMark, v: &TaskView) -> String {
    match m {
        TaskMark::Done => match (&v.decision, &v.completed_by) {
            (Some(d), Some(by)) => format!("{} by {by}", decision_word(d)),
            (_, Some(by)) => format!("done by {by}"),
            _ => "done".into(),
        },
        TaskMark::Waiting => match &v.waits_for {
            Some(stop) => format!("waiting for {stop}"),
            None => "waiting".into(),
        },
        TaskMark::Rework => format!("rework, round {}", v.rework_count),
        TaskMark::Skipped => "skipped: condition not met".into(),
        TaskMark::Automatic => "Attest is calling the service".into(),
        TaskMark::Open | TaskMark::Overdue => m.label().into(),
    }
}

fn decision_word(d: &attest_engine::Decision) -> &'static str {
    match d {
        attest_engine::Decision::Approved => "approved",
        attest_engine::Decision::Rejected => "rejected",
    }
}

/// Arrows from an approval to each task it approves, through its lane.
fn approval_edges(svg: &mut String, p: &str, l: &Layout, t: &Template, i: usize, task: &Task, lane: i32) {
    let right = MARGIN + l.node_w;
    let lane_x = right + 14 + lane * LANE_W;
    // Each lane meets a box at its own height, so two approvals of one task stay apart.
    let offset = (lane % 3 - 1) * 8;
    let from_y = node_y(i) + NODE_H / 2 + offset;
    let _ = write!(svg, r#"<g class="approves" data-approval="{}">"#, escape(&task.key));
    for subject in &task.approves {
        let Some(j) = t.task_index(subject) else { continue };
        let to_y = node_y(j) + NODE_H / 2 + offset;
        let _ = write!(
            svg,
            r##"<path class="approves-edge" data-from="{}" data-to="{}" d="M{right},{from_y} H{lane_x} V{to_y} H{}" fill="none" stroke="#6b4fbb" stroke-width="1.5" marker-end="url(#{p}-appr)"><title>{} approves {}</title></path>"##,
            escape(&task.key),
            escape(subject),
            right + 2,
            escape(&task.name),
            escape(t.task(subject).map_or(subject.as_str(), |s| s.name.as_str()))
        );
    }
    svg.push_str("</g>");
}

/// Draws the legend, wrapping its items to the drawing's width; returns its rows.
fn legend(svg: &mut String, top: i32, overlay: bool, p: &str, width: i32) -> i32 {
    let mut items: Vec<(String, &str)> = vec![
        (r##"<rect width="20" height="14" rx="3" fill="#ffffff" stroke="#44546a"/>"##.into(), "task"),
        (r##"<rect width="20" height="14" rx="3" fill="#f3effc" stroke="#6b4fbb"/>"##.into(), "approval"),
        (
            r##"<rect width="20" height="14" rx="3" fill="#ffffff" stroke="#44546a" stroke-dasharray="4 3"/>"##.into(),
            "only if a condition holds",
        ),
        (r##"<rect y="4" width="20" height="6" rx="3" fill="#b42318"/>"##.into(), "stop: tasks below wait"),
        (
            format!(r##"<path d="M0,7 H18" stroke="#6b4fbb" stroke-width="1.5" marker-end="url(#{p}-appr)"/>"##),
            "approves",
        ),
    ];
    let plain = items.len();
    if overlay {
        items.extend(TaskMark::ALL.iter().map(|m| {
            let (fill, stroke, symbol) = m.style();
            (
                format!(
                    r##"<rect width="20" height="14" rx="3" fill="{fill}" stroke="{stroke}"/><text x="10" y="11" font-size="10" text-anchor="middle" fill="{stroke}">{symbol}</text>"##
                ),
                m.label(),
            )
        }));
    }
    let _ = write!(svg, r#"<g class="legend" font-size="12">"#);
    let (mut row, mut x) = (0, MARGIN);
    for (n, (swatch, label)) in items.iter().enumerate() {
        let item_w = 26 + label.chars().count() as i32 * META_CHAR_TENTHS / 10 + 16;
        // The run's states start on a row of their own.
        if x > MARGIN && (x + item_w > width - MARGIN / 2 || n == plain) {
            row += 1;
            x = MARGIN;
        }
        let y = top + row * LEGEND_ROW_H;
        let _ = write!(
            svg,
            r##"<g transform="translate({x},{y})">{swatch}<text x="26" y="12" fill="#374151">{label}</text></g>"##
        );
        x += item_w;
    }
    svg.push_str("</g>");
    row + 1
}

/// A sentence or two for screen readers: the order, the stops, the approvals.
fn describe(t: &Template, marks: Option<&Marks<'_>>) -> String {
    let mut parts = Vec::new();
    let steps: Vec<String> = t
        .tasks
        .iter()
        .enumerate()
        .map(|(i, task)| {
            let mut s = format!("{}. {}", i + 1, task.name);
            if task.task_type == TaskType::Approval {
                s.push_str(" (approval");
                if !task.approves.is_empty() {
                    s.push_str(&format!(" of {}", task.approves.join(", ")));
                }
                s.push(')');
            }
            if task.stop {
                s.push_str(" (stop)");
            }
            if let Some(c) = &task.show_when {
                s.push_str(&format!(" (only if {})", condition_text(c)));
            }
            if let Some((m, v)) = marks.and_then(|m| m.get(task.key.as_str())) {
                s.push_str(&format!(": {}", status_words(*m, v)));
            }
            s
        })
        .collect();
    parts.push(format!("{} tasks in order: {}.", t.tasks.len(), steps.join("; ")));
    parts.join(" ")
}

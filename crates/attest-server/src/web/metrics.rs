//! Process-metrics dashboards: the workspace overview, a page per template
//! with its figures and charts (SVG drawn by the server, `crate::charts`), and
//! two versions side by side. The period defaults to the last 90 days.

use std::sync::Arc;

use askama::Template;
use attest_core::metrics::stats::human_duration;
use attest_core::metrics::{Durations, Overview, Period, Rate, TemplateMetrics, TemplateOverview};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Extension, Router};
use serde::Deserialize;

use super::{Chrome, FieldErrors, Viewer, WebResult, blocking, page_with, urlencode};
use crate::App;
use crate::charts;
use crate::guard::Caller;

/// The period a dashboard shows unless the viewer picks one.
const DEFAULT_PERIOD_DAYS: i64 = 90;

pub fn routes(r: Router<Arc<App>>) -> Router<Arc<App>> {
    r.route("/dashboards", get(overview))
        .route("/dashboards/templates/{key}", get(template))
        .route("/dashboards/templates/{key}/compare", get(compare))
}

#[derive(Deserialize)]
struct PeriodQuery {
    from: Option<String>,
    to: Option<String>,
    version: Option<String>,
    left: Option<String>,
    right: Option<String>,
}

/// The period as chosen (or the default), and its form values.
struct Chosen {
    period: Period,
    /// The dates the figures are for, for links and the lead text.
    from: String,
    to: String,
    /// The form as the viewer filled it in, with a message beside each bad date.
    form: PeriodForm,
}

/// The period fields of a dashboard's filter form.
pub struct PeriodForm {
    from_input: String,
    to_input: String,
    errors: FieldErrors,
}

/// Reads the period of a dashboard. A bad date gets a message beside its
/// field and the figures fall back to the default period, so the viewer
/// still sees a page and can correct the form.
fn chosen(q: &PeriodQuery, now: jiff::Timestamp) -> Chosen {
    let blank = |s: &Option<String>| s.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_string);
    let today = now.to_zoned(jiff::tz::TimeZone::UTC).date();
    let default_to = today.to_string();
    let default_from = today.checked_sub(jiff::Span::new().days(DEFAULT_PERIOD_DAYS - 1)).unwrap_or(today).to_string();
    let from = blank(&q.from).unwrap_or_else(|| default_from.clone());
    let to = blank(&q.to).unwrap_or_else(|| default_to.clone());
    let mut errors = FieldErrors::default();
    if let Err(e) = Period::from_dates(Some(&from), None) {
        errors.add("from", e.to_string());
    }
    if let Err(e) = Period::from_dates(None, Some(&to)) {
        errors.add("to", e.to_string());
    }
    let period = if errors.is_empty() {
        Period::from_dates(Some(&from), Some(&to)).map_err(|e| errors.add("to", e.to_string())).ok()
    } else {
        None
    };
    let form = PeriodForm { from_input: from.clone(), to_input: to.clone(), errors };
    match period {
        Some(period) => Chosen { period, from, to, form },
        None => Chosen {
            period: Period::from_dates(Some(&default_from), Some(&default_to)).unwrap_or_default(),
            from: default_from,
            to: default_to,
            form,
        },
    }
}

impl Chosen {
    /// 422 when the form has messages, as for every other form.
    fn status(&self) -> StatusCode {
        if self.form.errors.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY }
    }
}

fn version_of(text: &Option<String>, what: &str) -> Result<Option<u32>, super::WebError> {
    match text.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => s.parse::<u32>().ok().filter(|v| *v > 0).map(Some).ok_or_else(|| {
            super::WebError(crate::problem::Problem::bad_request(format!("{what} '{s}' is not a version number")))
        }),
    }
}

fn percent(r: &Rate) -> String {
    r.rate.map_or_else(|| "–".into(), |v| format!("{:.1}%", v * 100.0))
}

fn duration(ms: Option<i64>) -> String {
    ms.map_or_else(|| "–".into(), human_duration)
}

fn rework(r: Option<f64>) -> String {
    r.map_or_else(|| "–".into(), |v| format!("{v:.2}"))
}

/// One figure as the page shows it.
pub struct Figure {
    pub label: &'static str,
    pub value: String,
    pub detail: String,
}

fn figures(m: &TemplateMetrics) -> Vec<Figure> {
    let f = |label, value: String, detail: String| Figure { label, value, detail };
    let durations = |d: &Durations| format!("p90 {}, {} runs", duration(d.p90_ms), d.count);
    vec![
        f("Runs started", m.runs.started.to_string(), format!("{} open now", m.runs.open)),
        f("Cycle time (median)", duration(m.cycle_time.median_ms), durations(&m.cycle_time)),
        f("Completion rate", percent(&m.completion), format!("{} of {}", m.completion.count, m.completion.of)),
        f("Cancellation rate", percent(&m.cancellation), format!("{} of {}", m.cancellation.count, m.cancellation.of)),
        f("Rework per run", rework(m.rework_rate), format!("{} rejections", m.rejections)),
        f(
            "On time, tasks",
            percent(&m.on_time_tasks),
            format!("{} of {} with a due date", m.on_time_tasks.count, m.on_time_tasks.of),
        ),
        f(
            "On time, runs",
            percent(&m.on_time_runs),
            format!("{} of {} completed", m.on_time_runs.count, m.on_time_runs.of),
        ),
        f("Overdue now", m.overdue.tasks.to_string(), format!("tasks in {} open runs", m.overdue.runs)),
    ]
}

/// A task's wait as a table row and a bar.
pub struct WaitRow {
    pub task: String,
    pub name: String,
    pub count: u64,
    pub median: String,
    pub p90: String,
}

fn wait_rows(waits: &[attest_core::metrics::TaskWait]) -> Vec<WaitRow> {
    waits
        .iter()
        .map(|w| WaitRow {
            task: w.task.clone(),
            name: w.name.clone(),
            count: w.wait.count,
            median: duration(w.wait.median_ms),
            p90: duration(w.wait.p90_ms),
        })
        .collect()
}

fn wait_chart(id: &str, title: &str, waits: &[attest_core::metrics::TaskWait]) -> String {
    let bars: Vec<(String, f64, String)> = waits
        .iter()
        .map(|w| (w.name.clone(), w.wait.median_ms.unwrap_or(0) as f64, duration(w.wait.median_ms)))
        .collect();
    charts::bar_chart(id, title, &bars)
}

pub struct ControlRow {
    pub id: String,
    pub name: String,
    pub passed: u64,
    pub applied: u64,
    pub rate: String,
}

#[derive(Template)]
#[template(path = "metrics_template.html")]
struct TemplatePage {
    chrome: Chrome,
    key: String,
    name: String,
    version_label: String,
    version: String,
    versions: Vec<u32>,
    from: String,
    to: String,
    period: PeriodForm,
    figures: Vec<Figure>,
    throughput_svg: String,
    cycle_trend_svg: String,
    histogram_svg: String,
    waits_svg: String,
    approvals_svg: String,
    waits: Vec<WaitRow>,
    approvals: Vec<WaitRow>,
    controls: Vec<ControlRow>,
    compare_left: u32,
    compare_right: u32,
}

async fn template(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    axum::extract::Path(key): axum::extract::Path<String>,
    Query(q): Query<PeriodQuery>,
) -> WebResult {
    let viewer = Viewer::of(&caller)?;
    let c = chosen(&q, app.now());
    let status = c.status();
    let version = version_of(&q.version, "version")?;
    let (a, k, period) = (app.clone(), key.clone(), c.period);
    let (m, versions) = blocking(move || {
        let m = a.read.template_metrics(&k, version, period, a.now())?;
        let versions: Vec<u32> = a.read.store().template_versions(&k)?.iter().map(|v| v.version).collect();
        Ok((m, versions))
    })
    .await?;
    let chrome = Chrome::load(&app, &viewer, "metrics").await?;
    let hours = |ms: Option<i64>| ms.map(|v| v as f64 / 3_600_000.0);
    let week = |w: &attest_core::metrics::WeekFigure| w.week.strftime("%Y-%m-%d").to_string();
    let throughput: Vec<(String, Option<f64>)> = m.weeks.iter().map(|w| (week(w), Some(w.completed as f64))).collect();
    let cycle: Vec<(String, Option<f64>)> = m.weeks.iter().map(|w| (week(w), hours(w.median_cycle_ms))).collect();
    let buckets: Vec<(String, u64)> =
        m.cycle_time_histogram.iter().map(|b| (human_duration(b.from_ms), b.count)).collect();
    let latest = versions.last().copied().unwrap_or(1);
    let controls = m
        .controls
        .iter()
        .map(|c| ControlRow {
            id: c.id.clone(),
            name: c.name.clone(),
            passed: c.pass.count,
            applied: c.pass.of,
            rate: percent(&c.pass),
        })
        .collect();
    Ok(page_with(
        status,
        &TemplatePage {
            chrome,
            name: m.name.clone(),
            version_label: m.version.map_or_else(|| "all versions".to_string(), |v| format!("version {v}")),
            version: m.version.map(|v| v.to_string()).unwrap_or_default(),
            versions,
            from: c.from,
            to: c.to,
            period: c.form,
            figures: figures(&m),
            throughput_svg: charts::line_chart("throughput", "Runs completed per week", &throughput, ""),
            cycle_trend_svg: charts::line_chart("cycle-trend", "Median cycle time per week, in hours", &cycle, "h"),
            histogram_svg: charts::histogram("cycle-histogram", "Cycle times of completed runs", &buckets),
            waits_svg: wait_chart("waits", "Median wait before completion, per task", &m.bottlenecks),
            approvals_svg: wait_chart("approval-delays", "Median delay to an approval decision", &m.approval_delays),
            waits: wait_rows(&m.bottlenecks),
            approvals: wait_rows(&m.approval_delays),
            controls,
            compare_left: latest.saturating_sub(1).max(1),
            compare_right: latest,
            key: urlencode(&key),
        },
    ))
}

/// One figure of two versions, side by side.
pub struct PairRow {
    pub label: &'static str,
    pub left: String,
    pub right: String,
}

#[derive(Template)]
#[template(path = "metrics_compare.html")]
struct ComparePage {
    chrome: Chrome,
    key: String,
    name: String,
    left: u32,
    right: u32,
    versions: Vec<u32>,
    from: String,
    to: String,
    period: PeriodForm,
    rows: Vec<PairRow>,
    left_histogram_svg: String,
    right_histogram_svg: String,
    left_waits_svg: String,
    right_waits_svg: String,
}

async fn compare(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    axum::extract::Path(key): axum::extract::Path<String>,
    Query(q): Query<PeriodQuery>,
) -> WebResult {
    let viewer = Viewer::of(&caller)?;
    let c = chosen(&q, app.now());
    let status = c.status();
    let (left, right) = (version_of(&q.left, "left")?, version_of(&q.right, "right")?);
    let (a, k, period) = (app.clone(), key.clone(), c.period);
    let (cmp, versions) = blocking(move || {
        let versions: Vec<u32> = a.read.store().template_versions(&k)?.iter().map(|v| v.version).collect();
        let latest = a.read.template_row(&k, None)?.version;
        let right = right.unwrap_or(latest);
        let left = left.unwrap_or_else(|| right.saturating_sub(1).max(1));
        Ok((a.read.compare_versions(&k, left, right, period, a.now())?, versions))
    })
    .await?;
    let chrome = Chrome::load(&app, &viewer, "metrics").await?;
    let rows = figures(&cmp.left)
        .into_iter()
        .zip(figures(&cmp.right))
        .map(|(l, r)| PairRow {
            label: l.label,
            left: format!("{} ({})", l.value, l.detail),
            right: format!("{} ({})", r.value, r.detail),
        })
        .collect();
    let histogram = |id: &str, m: &TemplateMetrics| {
        let buckets: Vec<(String, u64)> =
            m.cycle_time_histogram.iter().map(|b| (human_duration(b.from_ms), b.count)).collect();
        charts::histogram(id, &format!("Cycle times, version {}", m.version.unwrap_or_default()), &buckets)
    };
    let (lv, rv) = (cmp.left.version.unwrap_or_default(), cmp.right.version.unwrap_or_default());
    Ok(page_with(
        status,
        &ComparePage {
            chrome,
            name: cmp.left.name.clone(),
            left: lv,
            right: rv,
            versions,
            from: c.from,
            to: c.to,
            period: c.form,
            rows,
            left_histogram_svg: histogram("left-histogram", &cmp.left),
            right_histogram_svg: histogram("right-histogram", &cmp.right),
            left_waits_svg: wait_chart(
                "left-waits",
                &format!("Median wait per task, version {lv}"),
                &cmp.left.bottlenecks,
            ),
            right_waits_svg: wait_chart(
                "right-waits",
                &format!("Median wait per task, version {rv}"),
                &cmp.right.bottlenecks,
            ),
            key: urlencode(&key),
        },
    ))
}

pub struct OverviewRow {
    pub href_key: String,
    pub name: String,
    pub version: u32,
    pub started: u64,
    pub open: u64,
    pub completion: String,
    pub cycle: String,
    pub rework: String,
    pub on_time: String,
    pub overdue: u64,
}

#[derive(Template)]
#[template(path = "metrics_overview.html")]
struct OverviewPage {
    chrome: Chrome,
    from: String,
    to: String,
    period: PeriodForm,
    started: u64,
    open: u64,
    overdue_tasks: u64,
    overdue_runs: u64,
    rows: Vec<OverviewRow>,
    started_svg: String,
}

async fn overview(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<PeriodQuery>,
) -> WebResult {
    let viewer = Viewer::of(&caller)?;
    let c = chosen(&q, app.now());
    let status = c.status();
    let (a, period) = (app.clone(), c.period);
    let o: Overview = blocking(move || Ok(a.read.metrics_overview(period, a.now())?)).await?;
    let chrome = Chrome::load(&app, &viewer, "metrics").await?;
    let row = |t: &TemplateOverview| OverviewRow {
        href_key: urlencode(&t.template),
        name: t.name.clone(),
        version: t.latest_version,
        started: t.runs.started,
        open: t.runs.open,
        completion: percent(&t.completion),
        cycle: duration(t.cycle_time.median_ms),
        rework: rework(t.rework_rate),
        on_time: percent(&t.on_time_runs),
        overdue: t.overdue.tasks,
    };
    let bars: Vec<(String, f64, String)> =
        o.templates.iter().map(|t| (t.name.clone(), t.runs.started as f64, t.runs.started.to_string())).collect();
    Ok(page_with(
        status,
        &OverviewPage {
            chrome,
            from: c.from,
            to: c.to,
            period: c.form,
            started: o.runs.started,
            open: o.runs.open,
            overdue_tasks: o.overdue.tasks,
            overdue_runs: o.overdue.runs,
            rows: o.templates.iter().map(row).collect(),
            started_svg: charts::bar_chart("runs-per-template", "Runs started per template", &bars),
        },
    ))
}

//! Process metrics over the API: a template's figures, two of its versions
//! side by side, and the workspace overview (`docs/metrics.md`). The routes
//! are in the route table's metrics block, with the schemas defined here.

use std::sync::Arc;

use attest_core::metrics::Period;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::App;
use crate::api::{PathParams, QueryParams, blocking};
use crate::problem::ApiResult;
use crate::routes::Param;

type AppState = State<Arc<App>>;

pub fn router() -> Router<Arc<App>> {
    Router::new()
        .route("/api/v1/metrics", get(overview))
        .route("/api/v1/metrics/templates/{key}", get(template))
        .route("/api/v1/metrics/templates/{key}/compare", get(compare))
}

#[derive(Deserialize)]
struct PeriodQuery {
    from: String,
    to: String,
}

#[derive(Deserialize)]
struct TemplateQuery {
    from: String,
    to: String,
    version: Option<u32>,
}

#[derive(Deserialize)]
struct CompareQuery {
    from: String,
    to: String,
    left: Option<u32>,
    right: Option<u32>,
}

async fn overview(State(app): AppState, QueryParams(q): QueryParams<PeriodQuery>) -> ApiResult<Json<Value>> {
    let period = Period::from_dates(Some(&q.from), Some(&q.to))?;
    let overview = blocking(move || Ok(app.read.metrics_overview(period, app.now())?)).await?;
    Ok(Json(serde_json::to_value(overview).map_err(|e| crate::problem::Problem::internal(e.to_string()))?))
}

async fn template(
    State(app): AppState,
    PathParams(key): PathParams<String>,
    QueryParams(q): QueryParams<TemplateQuery>,
) -> ApiResult<Json<Value>> {
    let period = Period::from_dates(Some(&q.from), Some(&q.to))?;
    let m = blocking(move || Ok(app.read.template_metrics(&key, q.version, period, app.now())?)).await?;
    Ok(Json(serde_json::to_value(m).map_err(|e| crate::problem::Problem::internal(e.to_string()))?))
}

async fn compare(
    State(app): AppState,
    PathParams(key): PathParams<String>,
    QueryParams(q): QueryParams<CompareQuery>,
) -> ApiResult<Json<Value>> {
    let period = Period::from_dates(Some(&q.from), Some(&q.to))?;
    let c = blocking(move || {
        let latest = app.read.template_row(&key, None)?.version;
        let right = q.right.unwrap_or(latest);
        let left = q.left.unwrap_or_else(|| right.saturating_sub(1).max(1));
        Ok(app.read.compare_versions(&key, left, right, period, app.now())?)
    })
    .await?;
    Ok(Json(serde_json::to_value(c).map_err(|e| crate::problem::Problem::internal(e.to_string()))?))
}

// ----- the schemas the route table documents -----

fn strict(props: Value, required: &[&str]) -> Value {
    json!({"type": "object", "properties": props, "required": required, "additionalProperties": false})
}
fn int() -> Value {
    json!({"type": "integer", "minimum": 0})
}
fn signed_ms() -> Value {
    json!({"type": ["integer", "null"]})
}
fn ts() -> Value {
    json!({"type": "string", "format": "date-time"})
}
fn text() -> Value {
    json!({"type": "string"})
}
fn rate() -> Value {
    strict(json!({"count": int(), "of": int(), "rate": {"type": ["number", "null"]}}), &["count", "of", "rate"])
}
fn durations() -> Value {
    strict(
        json!({"count": int(), "median_ms": signed_ms(), "p90_ms": signed_ms(), "max_ms": signed_ms()}),
        &["count", "median_ms", "p90_ms", "max_ms"],
    )
}
fn run_counts() -> Value {
    strict(
        json!({"started": int(), "completed": int(), "cancelled": int(), "open": int()}),
        &["started", "completed", "cancelled", "open"],
    )
}
fn overdue() -> Value {
    strict(json!({"tasks": int(), "runs": int()}), &["tasks", "runs"])
}
fn period() -> Value {
    strict(json!({"from": ts(), "to": ts()}), &[])
}
fn task_wait() -> Value {
    strict(json!({"task": text(), "name": text(), "wait": durations()}), &["task", "name", "wait"])
}

/// `TemplateMetrics` as JSON.
pub fn r_template_metrics() -> Value {
    strict(
        json!({
            "template": text(),
            "name": text(),
            "version": {"type": ["integer", "null"], "minimum": 1},
            "period": period(),
            "now": ts(),
            "runs": run_counts(),
            "completion": rate(),
            "cancellation": rate(),
            "rework_rate": {"type": ["number", "null"], "minimum": 0},
            "rejections": int(),
            "cycle_time": durations(),
            "on_time_tasks": rate(),
            "on_time_runs": rate(),
            "controls": {"type": "array", "items": strict(json!({"id": text(), "name": text(), "pass": rate()}), &["id", "name", "pass"])},
            "bottlenecks": {"type": "array", "items": task_wait()},
            "approval_delays": {"type": "array", "items": task_wait()},
            "overdue": overdue(),
            "weeks": {"type": "array", "items": strict(
                json!({"week": ts(), "completed": int(), "median_cycle_ms": signed_ms()}),
                &["week", "completed", "median_cycle_ms"],
            )},
            "cycle_time_histogram": {"type": "array", "items": strict(
                json!({"from_ms": int(), "to_ms": int(), "count": int()}),
                &["from_ms", "to_ms", "count"],
            )}
        }),
        &[
            "template",
            "name",
            "version",
            "period",
            "now",
            "runs",
            "completion",
            "cancellation",
            "rework_rate",
            "rejections",
            "cycle_time",
            "on_time_tasks",
            "on_time_runs",
            "controls",
            "bottlenecks",
            "approval_delays",
            "overdue",
            "weeks",
            "cycle_time_histogram",
        ],
    )
}

/// `VersionComparison` as JSON.
pub fn r_comparison() -> Value {
    strict(
        json!({"template": text(), "left": r_template_metrics(), "right": r_template_metrics()}),
        &["template", "left", "right"],
    )
}

/// `Overview` as JSON.
pub fn r_overview() -> Value {
    let template = strict(
        json!({
            "template": text(), "name": text(), "latest_version": {"type": "integer", "minimum": 1},
            "runs": run_counts(), "completion": rate(), "rework_rate": {"type": ["number", "null"], "minimum": 0},
            "cycle_time": durations(), "on_time_runs": rate(), "overdue": overdue()
        }),
        &[
            "template",
            "name",
            "latest_version",
            "runs",
            "completion",
            "rework_rate",
            "cycle_time",
            "on_time_runs",
            "overdue",
        ],
    );
    strict(
        json!({"period": period(), "now": ts(), "runs": run_counts(), "overdue": overdue(),
               "templates": {"type": "array", "items": template}}),
        &["period", "now", "runs", "overdue", "templates"],
    )
}

fn s_period_bound() -> Value {
    json!({"type": "string"})
}
fn s_version() -> Value {
    json!({"type": "integer", "minimum": 1, "maximum": 4294967295_u64})
}

const FROM: Param = Param {
    name: "from",
    schema: s_period_bound,
    description: "Runs started from this day (YYYY-MM-DD, UTC) or instant (RFC 3339), inclusive.",
};
const TO: Param = Param {
    name: "to",
    schema: s_period_bound,
    description: "Runs started up to this day (YYYY-MM-DD, UTC) or instant (RFC 3339), inclusive.",
};
pub const P_OVERVIEW: &[Param] = &[FROM, TO];
pub const P_TEMPLATE: &[Param] =
    &[FROM, TO, Param { name: "version", schema: s_version, description: "Only runs of this version." }];
pub const P_COMPARE: &[Param] = &[
    FROM,
    TO,
    Param {
        name: "left",
        schema: s_version,
        description: "The version on the left (default: the one before `right`).",
    },
    Param { name: "right", schema: s_version, description: "The version on the right (default: the latest)." },
];

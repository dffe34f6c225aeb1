//! Process metrics over a real server: the API answers match the schemas the
//! route table documents (exactly: no missing and no undocumented keys), bad
//! input is a problem, and the dashboard pages draw their charts.
#![allow(clippy::unwrap_used)]

mod common;

use common::Server;
use serde_json::{Value, json};

const ALL_TIME: &str = "from=2000-01-01&to=2100-12-31";

/// Checks a value against the subset of JSON Schema the route table uses:
/// `type` (one or several), `properties`, `required`, `additionalProperties:
/// false`, `items`, `minimum`.
fn conforms(schema: &Value, value: &Value, path: &str) -> Result<(), String> {
    if let Some(types) = schema.get("type") {
        let types: Vec<&str> = match types {
            Value::String(t) => vec![t.as_str()],
            Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        let kind = match value {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
        };
        let ok = types.contains(&kind) || (kind == "integer" && types.contains(&"number"));
        if !ok {
            return Err(format!("{path}: {kind} where the schema says {types:?}"));
        }
    }
    if let (Some(min), Some(v)) = (schema.get("minimum").and_then(Value::as_f64), value.as_f64())
        && v < min
    {
        return Err(format!("{path}: {v} is below the minimum {min}"));
    }
    if let Value::Object(map) = value {
        let props = schema.get("properties").and_then(Value::as_object);
        for key in schema.get("required").and_then(Value::as_array).into_iter().flatten() {
            let key = key.as_str().unwrap();
            if !map.contains_key(key) {
                return Err(format!("{path}: required key {key} is missing"));
            }
        }
        for (key, v) in map {
            match props.and_then(|p| p.get(key)) {
                Some(s) => conforms(s, v, &format!("{path}.{key}"))?,
                None if schema.get("additionalProperties") == Some(&Value::Bool(false)) => {
                    return Err(format!("{path}: key {key} is not in the schema"));
                }
                None => {}
            }
        }
    }
    if let (Value::Array(items), Some(item)) = (value, schema.get("items")) {
        for (i, v) in items.iter().enumerate() {
            conforms(item, v, &format!("{path}[{i}]"))?;
        }
    }
    Ok(())
}

/// The documented 200 schema of a GET route, from the served OpenAPI document.
async fn documented(s: &Server, path: &str) -> Value {
    let doc = s.get("auditor", "/api/openapi.json").await.body;
    doc["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"].clone()
}

/// One quick-check run completed by the member and the reviewer, one left open.
async fn runs(s: &Server) {
    let run = s.start_check("member").await;
    let done =
        s.post("member", &format!("/api/v1/runs/{run}/tasks/check/complete"), json!({"values": {"note": "ok"}})).await;
    assert_eq!(done.status, 200, "{:?}", done.body);
    let approved = s.post("reviewer", &format!("/api/v1/runs/{run}/tasks/review/approve"), json!({})).await;
    assert_eq!(approved.status, 200, "{:?}", approved.body);
    s.start_check("member").await;
}

#[tokio::test]
async fn metrics_answers_match_their_documented_schemas() {
    let s = Server::start().await;
    runs(&s).await;

    let path = "/api/v1/metrics/templates/{key}";
    let m = s.get("auditor", &format!("/api/v1/metrics/templates/quick-check?{ALL_TIME}")).await;
    assert_eq!(m.status, 200, "{:?}", m.body);
    conforms(&documented(&s, path).await, &m.body, "$").unwrap();
    assert_eq!(m.body["runs"]["started"], 2);
    assert_eq!(m.body["runs"]["completed"], 1);
    assert_eq!(m.body["completion"]["rate"], 0.5);
    assert_eq!(m.body["cycle_time"]["count"], 1);
    assert_eq!(m.body["approval_delays"][0]["task"], "review");

    let v1 = s.get("member", &format!("/api/v1/metrics/templates/quick-check?{ALL_TIME}&version=1")).await;
    assert_eq!(v1.status, 200, "{:?}", v1.body);
    assert_eq!(v1.body["version"], 1);

    let cmp = s.get("owner", &format!("/api/v1/metrics/templates/quick-check/compare?{ALL_TIME}")).await;
    assert_eq!(cmp.status, 200, "{:?}", cmp.body);
    conforms(&documented(&s, "/api/v1/metrics/templates/{key}/compare").await, &cmp.body, "$").unwrap();
    assert_eq!((cmp.body["left"]["version"].as_u64(), cmp.body["right"]["version"].as_u64()), (Some(1), Some(1)));

    let overview = s.get("admin", &format!("/api/v1/metrics?{ALL_TIME}")).await;
    assert_eq!(overview.status, 200, "{:?}", overview.body);
    conforms(&documented(&s, "/api/v1/metrics").await, &overview.body, "$").unwrap();
    let keys: Vec<&str> =
        overview.body["templates"].as_array().unwrap().iter().map(|t| t["template"].as_str().unwrap()).collect();
    assert!(keys.contains(&"quick-check") && keys.contains(&"vendor-onboarding"), "{keys:?}");
    // The seeded workspace's runs count too.
    assert!(overview.body["runs"]["started"].as_u64().unwrap() > 2);

    s.stop().await;
}

#[tokio::test]
async fn bad_metrics_requests_are_problems() {
    let s = Server::start().await;
    for (path, status) in [
        ("/api/v1/metrics?from=yesterday&to=2026-01-01", 400),
        ("/api/v1/metrics?from=2026-02-01&to=2026-01-01", 400),
        ("/api/v1/metrics?to=2026-01-01", 400),
        ("/api/v1/metrics/templates/no-such-template?from=2026-01-01&to=2026-01-31", 404),
        ("/api/v1/metrics/templates/quick-check?from=2026-01-01&to=2026-01-31&version=0", 404),
        ("/api/v1/metrics/templates/quick-check?from=2026-01-01&to=2026-01-31&version=two", 400),
        ("/api/v1/metrics/templates/quick-check/compare?from=2026-01-01&to=2026-01-31&left=7", 404),
    ] {
        let r = s.get("auditor", path).await;
        assert_eq!(r.status, status, "{path}: {:?}", r.body);
        assert!(r.body["detail"].is_string(), "{path}: a problem body: {:?}", r.body);
    }
    let anonymous = s.client.get(format!("{}/api/v1/metrics?{ALL_TIME}", s.base)).send().await.unwrap();
    assert_eq!(anonymous.status().as_u16(), 401);
    s.stop().await;
}

async fn page(s: &Server, path: &str) -> (u16, String) {
    let r = s.client.get(format!("{}{path}", s.base)).bearer_auth(s.token("auditor")).send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test]
async fn dashboards_draw_their_figures_and_charts() {
    let s = Server::start().await;
    runs(&s).await;

    let (status, html) = page(&s, "/dashboards").await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains(r#"href="/dashboards/templates/quick-check?from="#), "{html}");
    assert!(html.contains("<svg") && html.contains(r#"<title id="runs-per-template-title">"#), "{html}");

    let (status, html) = page(&s, "/dashboards/templates/quick-check").await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("Quick check"), "{html}");
    for chart in ["throughput", "cycle-trend", "cycle-histogram", "waits", "approval-delays"] {
        assert!(html.contains(&format!(r#"aria-labelledby="{chart}-title {chart}-desc""#)), "{chart}: {html}");
    }
    assert!(html.contains("Runs started") && html.contains("Overdue now"), "{html}");
    // The completed run's approval is the one decision.
    assert!(html.contains(r#"<span class="muted mono">review</span></td><td>1</td>"#), "{html}");

    let (status, html) = page(&s, "/dashboards/templates/quick-check/compare?left=1&right=1").await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("version 1 and version 1"), "{html}");
    assert_eq!(html.matches("<svg").count(), 4);

    let (status, _) = page(&s, "/dashboards/templates/no-such-template").await;
    assert_eq!(status, 404);
    s.stop().await;
}

/// A bad date in a dashboard's period form is answered beside its field,
/// with the typed value kept and the default period's figures still shown.
#[tokio::test]
async fn a_bad_dashboard_period_gets_a_message_beside_the_field() {
    let s = Server::start().await;
    runs(&s).await;
    for path in [
        "/dashboards?from=not-a-date",
        "/dashboards/templates/quick-check?from=not-a-date",
        "/dashboards/templates/quick-check/compare?left=1&right=1&from=not-a-date",
    ] {
        let (status, html) = page(&s, path).await;
        assert_eq!(status, 422, "{path}: {html}");
        assert!(
            html.contains(r#"value="not-a-date" aria-invalid="true" aria-describedby="err-from" autofocus"#),
            "{html}"
        );
        assert!(
            html.contains(
                r#"<p class="field-error" id="err-from" role="alert">From &#39;not-a-date&#39; is not a date"#
            ),
            "{path}: {html}"
        );
        assert!(!html.contains(r#"id="err-to""#), "{path}: only the bad field has a message");
    }
    let (status, html) = page(&s, "/dashboards/templates/quick-check?from=2026-03-01&to=2026-02-01").await;
    assert_eq!(status, 422, "{html}");
    assert!(html.contains(r#"id="err-to" role="alert">The period ends before it starts"#), "{html}");
    assert!(html.contains("Quick check") && html.contains("Overdue now"), "the default period's figures show: {html}");
    s.stop().await;
}

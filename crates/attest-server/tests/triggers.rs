//! Inbound triggers: a secret URL per template starts a run from a JSON
//! payload through a mapping to the first task's fields; the same through the
//! API with a token. Bad input is a clear 4xx and starts no run.
#![allow(clippy::unwrap_used)]

mod common;

use serde_json::json;

async fn run_count(s: &common::Server) -> usize {
    let r = s.get("admin", "/api/v1/runs?template=quick-check&limit=1000").await;
    r.body["items"].as_array().unwrap().len()
}

async fn post_raw(s: &common::Server, path: &str, content_type: &str, body: &str) -> common::Res {
    let r = s
        .client
        .post(format!("{}{path}", s.base))
        .header("content-type", content_type)
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    common::Res::from(r).await
}

async fn set_trigger(s: &common::Server) -> String {
    let r = s
        .send(
            "owner",
            reqwest::Method::PUT,
            "/api/v1/templates/quick-check/trigger",
            Some(json!({
                "run_as": "rita@example.com",
                "mapping": [{"path": "/ticket/summary", "field": "note"}]
            })),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let url = r.body["url"].as_str().unwrap().to_string();
    assert!(url.ends_with(r.body["secret"].as_str().unwrap()));
    // The secret is shown once: reading the trigger never shows it again.
    let again = s.get("owner", "/api/v1/templates/quick-check/trigger").await;
    assert_eq!(again.status, 200);
    assert!(again.body.get("secret").is_none() && again.body.get("url").is_none(), "{:?}", again.body);
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_secret_url_starts_a_run_with_mapped_values() {
    let s = common::Server::start().await;
    let url = set_trigger(&s).await;
    let r = s
        .client
        .post(format!("{}{url}", s.base))
        .json(&json!({"ticket": {"summary": "laptop broken", "priority": 2}}))
        .send()
        .await
        .unwrap();
    let r = common::Res::from(r).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let run = r.body["run"].as_str().unwrap();
    let shown = s.get("admin", &format!("/api/v1/runs/{run}")).await;
    assert_eq!(shown.body["values"]["note"], "laptop broken");
    assert_eq!(shown.body["starter"], "rita@example.com", "runs start as the trigger's person");
    // Start and mapped values are one decision: two events, one commit.
    let events = s.get("admin", &format!("/api/v1/runs/{run}/events")).await;
    let types: Vec<&str> =
        events.body["items"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["run_started", "fields_set"]);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_trigger_input_is_a_clear_4xx_and_starts_no_run() {
    let s = common::Server::start().await;
    let url = set_trigger(&s).await;
    let before = run_count(&s).await;

    // A wrong secret: 401, the same as for a template without a trigger.
    let wrong = url.rsplit_once('/').unwrap().0.to_string() + "/not-the-secret";
    let r = s.client.post(format!("{}{wrong}", s.base)).json(&json!({"ticket": {"summary": "x"}})).send().await;
    let r = common::Res::from(r.unwrap()).await;
    assert_eq!(r.status, 401, "{:?}", r.body);
    assert!(r.content_type.starts_with("application/problem+json"));
    let r = s.client.post(format!("{}/hooks/triggers/vendor-onboarding/anything", s.base)).json(&json!({})).send();
    assert_eq!(common::Res::from(r.await.unwrap()).await.status, 401);
    let metrics = String::from_utf8_lossy(&s.get("admin", "/metrics").await.bytes).to_string();
    assert!(
        metrics.lines().any(|l| l.contains("/hooks/triggers/{template}/{secret}") && l.contains("status=\"401\"")),
        "refused triggers are counted: {metrics}"
    );

    // Not JSON at all.
    let r = post_raw(&s, &url, "application/json", "{\"ticket\": ").await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    // JSON that is not an object: mappings are paths into an object.
    let r = post_raw(&s, &url, "application/json", "[null, null]").await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    assert!(r.body["detail"].as_str().unwrap().contains("JSON object"), "{:?}", r.body);
    // JSON without the mapped path: the path is named.
    let r = s.client.post(format!("{}{url}", s.base)).json(&json!({"ticket": {"title": "x"}})).send().await;
    let r = common::Res::from(r.unwrap()).await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    assert!(r.body["detail"].as_str().unwrap().contains("/ticket/summary"), "{:?}", r.body);
    // A value the field refuses: the rule and the field are named.
    let long = "x".repeat(201);
    let r = s.client.post(format!("{}{url}", s.base)).json(&json!({"ticket": {"summary": long}})).send().await;
    let r = common::Res::from(r.unwrap()).await;
    assert_eq!(r.status, 422, "{:?}", r.body);
    assert_eq!(r.body["field"], "note", "{:?}", r.body);
    // Too large a body for the open URL.
    let huge = json!({"ticket": {"summary": "x", "padding": "y".repeat(300 * 1024)}});
    let r = s.client.post(format!("{}{url}", s.base)).json(&huge).send().await;
    assert_eq!(common::Res::from(r.unwrap()).await.status, 413);

    assert_eq!(run_count(&s).await, before, "no bad trigger started a run");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_triggers_through_the_api_with_the_same_mapping() {
    let s = common::Server::start().await;
    set_trigger(&s).await;
    let r = s.post("member", "/api/v1/templates/quick-check/trigger", json!({"ticket": {"summary": "via api"}})).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let run = r.body["run"].as_str().unwrap();
    let shown = s.get("admin", &format!("/api/v1/runs/{run}")).await;
    assert_eq!(shown.body["values"]["note"], "via api");
    let r = s.post("member", "/api/v1/templates/quick-check/trigger", json!({"other": 1})).await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    // An auditor changes nothing.
    let r = s.post("auditor", "/api/v1/templates/quick-check/trigger", json!({"ticket": {"summary": "x"}})).await;
    assert_eq!(r.status, 403);
    // Removing the trigger closes the URL.
    let r = s.send("owner", reqwest::Method::DELETE, "/api/v1/templates/quick-check/trigger", None).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let r = s.get("owner", "/api/v1/templates/quick-check/trigger").await;
    assert_eq!(r.status, 404);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_secret_url_is_rate_limited_per_template_with_retry_after() {
    let s = common::Server::start_with(|c| c.trigger_rate = attest_server::ratelimit::Rate { per_minute: 1, burst: 3 })
        .await;
    let url = set_trigger(&s).await;
    let payload = json!({"ticket": {"summary": "printer on fire"}});
    let wrong = "/hooks/triggers/quick-check/not-the-secret";
    let r = post_raw(&s, wrong, "application/json", &payload.to_string()).await;
    assert_eq!(r.status, 401, "a wrong secret is refused and uses up a call");
    for _ in 0..2 {
        assert_eq!(post_raw(&s, &url, "application/json", &payload.to_string()).await.status, 201);
    }
    let before = run_count(&s).await;
    let r = s.client.post(format!("{}{url}", s.base)).json(&payload).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 429);
    let wait: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "Retry-After {wait}");
    assert_eq!(run_count(&s).await, before, "a limited call starts no run, even with the right secret");
    let r = post_raw(&s, "/hooks/triggers/vendor-onboarding/guess", "application/json", "{}").await;
    assert_eq!(r.status, 401, "another template's URL has its own budget");
    s.stop().await;
}

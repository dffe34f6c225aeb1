//! The schedules API end to end: create, list, pause, resume, delete, and a
//! scheduled run started by the server's scheduler on a manual clock.
#![allow(clippy::unwrap_used)]

mod common;

use attest_core::Clock;
use jiff::{SignedDuration, Timestamp};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedules_are_managed_through_the_api_and_start_runs_when_due() {
    let start: Timestamp = "2026-03-31T12:00:00Z".parse().unwrap();
    let clock = Clock::manual(start);
    let manual = clock.clone();
    let s = common::Server::start_with(move |c| {
        c.clock = clock;
        c.scheduler.enabled = false;
    })
    .await;
    let running = s.running.as_ref().unwrap();
    let admin_email = running.seeded.as_ref().unwrap().admin.clone();
    let body = json!({
        "template": "quick-check",
        "name_pattern": "Access review {quarter} {year}",
        "rule": {"every": "quarterly", "at": "09:00", "day": 1},
        "time_zone": "Europe/Berlin",
        "starts_as": admin_email,
    });
    assert_eq!(s.post("member", "/api/v1/schedules", body.clone()).await.status, 403, "members may not schedule");
    let r = s.post("owner", "/api/v1/schedules", body.clone()).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let id = r.body["id"].as_str().unwrap().to_string();
    assert_eq!(r.body["next_at"], "2026-04-01T07:00:00Z", "09:00 in Berlin (summer time)");
    assert_eq!(r.body["rule"], json!({"every": "quarterly", "at": "09:00", "day": 1}));

    let mut bad = body.clone();
    bad["time_zone"] = json!("Mars/Olympus");
    let r = s.post("owner", "/api/v1/schedules", bad).await;
    assert_eq!(r.status, 400);
    assert!(r.body["detail"].as_str().unwrap().contains("IANA time zone"), "{:?}", r.body);
    let mut bad = body.clone();
    bad["rule"] = json!({"every": "daily", "at": "09:00", "weekday": "monday"});
    assert_eq!(s.post("owner", "/api/v1/schedules", bad).await.status, 400);
    let mut bad = body.clone();
    bad["rule"] = json!({"cron": "0 9 * *"});
    assert_eq!(s.post("owner", "/api/v1/schedules", bad).await.status, 400);
    let mut bad = body.clone();
    bad["template"] = json!("no-such-template");
    assert_eq!(s.post("owner", "/api/v1/schedules", bad).await.status, 404);

    let list = s.get("auditor", "/api/v1/schedules").await;
    assert_eq!(list.status, 200);
    assert_eq!(list.body["items"].as_array().unwrap().len(), 1);

    // It fires on 1 April, 09:00 Berlin, once.
    manual.set("2026-04-01T07:00:00Z".parse().unwrap());
    running.tick().await.unwrap();
    running.tick().await.unwrap();
    let runs = s.get("admin", "/api/v1/runs?template=quick-check").await;
    let names: Vec<&str> = runs.body["items"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["Access review Q2 2026"]);
    let one = s.get("admin", &format!("/api/v1/schedules/{id}")).await;
    assert_eq!(one.body["last_fired_at"], "2026-04-01T07:00:00Z");
    assert_eq!(one.body["next_at"], "2026-07-01T07:00:00Z");

    let r = s.post("owner", &format!("/api/v1/schedules/{id}/pause"), json!({})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["paused"], true);
    manual.advance(SignedDuration::from_hours(24 * 100));
    running.tick().await.unwrap();
    let runs = s.get("admin", "/api/v1/runs?template=quick-check").await;
    assert_eq!(runs.body["items"].as_array().unwrap().len(), 1, "a paused schedule starts nothing");
    let r = s.post("owner", &format!("/api/v1/schedules/{id}/resume"), json!({})).await;
    assert_eq!(r.body["paused"], false);
    assert_eq!(r.body["next_at"], "2026-10-01T07:00:00Z", "resumes at the next occurrence, skipping July");

    let r = s.send("owner", reqwest::Method::DELETE, &format!("/api/v1/schedules/{id}"), None).await;
    assert_eq!(r.status, 200);
    assert_eq!(s.get("admin", &format!("/api/v1/schedules/{id}")).await.status, 404);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_workspace_time_zone_is_set_by_admins_and_shown_with_runs() {
    let s = common::Server::start().await;
    let r = s.get("admin", "/api/v1/settings").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["time_zone"], "UTC");
    assert_eq!(s.post("owner", "/api/v1/settings/time-zone", json!({"time_zone": "Europe/Berlin"})).await.status, 403);
    let r = s.post("admin", "/api/v1/settings/time-zone", json!({"time_zone": "Nowhere/Land"})).await;
    assert_eq!(r.status, 400);
    let r = s.post("admin", "/api/v1/settings/time-zone", json!({"time_zone": "Europe/Berlin"})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["time_zone"], "Europe/Berlin");
    let run = s.start_check("member").await;
    let r = s.get("member", &format!("/api/v1/runs/{run}")).await;
    assert_eq!(r.body["time_zone"], "Europe/Berlin");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scheduler_loop_fires_on_its_own_and_stops_with_the_server() {
    let clock = Clock::manual("2026-03-01T12:00:00Z".parse().unwrap());
    let manual = clock.clone();
    let s = common::Server::start_with(move |c| {
        c.clock = clock;
        c.scheduler.tick_ms = 20;
    })
    .await;
    let admin_email = s.running.as_ref().unwrap().seeded.as_ref().unwrap().admin.clone();
    let body = json!({"template": "quick-check", "name_pattern": "Daily {date}",
                      "rule": {"cron": "30 8 * * *"}, "time_zone": "UTC", "starts_as": admin_email});
    assert_eq!(s.post("owner", "/api/v1/schedules", body).await.status, 201);
    manual.set("2026-03-02T08:30:00Z".parse().unwrap());
    let mut names = Vec::new();
    for _ in 0..500 {
        let runs = s.get("admin", "/api/v1/runs?template=quick-check").await;
        names =
            runs.body["items"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap().to_string()).collect();
        if !names.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(names, ["Daily 2026-03-02"]);
    tokio::time::timeout(std::time::Duration::from_secs(30), s.stop()).await.expect("shutdown stops the loop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schedule_due_period_gives_each_run_a_deadline_that_the_overdue_filter_counts() {
    // Wednesday 1 April 2026; three business days later is Monday 6 April.
    let clock = Clock::manual("2026-03-31T12:00:00Z".parse().unwrap());
    let manual = clock.clone();
    let s = common::Server::start_with(move |c| {
        c.clock = clock;
        c.scheduler.enabled = false;
    })
    .await;
    let running = s.running.as_ref().unwrap();
    let body = json!({
        "template": "quick-check", "name_pattern": "Check {date}", "rule": {"every": "monthly", "at": "09:00", "day": 1},
        "time_zone": "UTC", "starts_as": "admin@example.com", "due_days": 3, "due_business_days": true,
    });
    let mut bad = body.clone();
    bad["due_days"] = json!(0);
    assert_eq!(s.post("owner", "/api/v1/schedules", bad).await.status, 400, "a due period is at least a day");
    let r = s.post("owner", "/api/v1/schedules", body).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!((r.body["due_days"].clone(), r.body["due_business_days"].clone()), (json!(3), json!(true)));
    manual.set("2026-04-01T09:00:00Z".parse().unwrap());
    running.tick().await.unwrap();
    running.tick().await.unwrap();
    let runs = s.get("admin", "/api/v1/runs?template=quick-check").await;
    let id = runs.body["items"][0]["id"].as_str().unwrap().to_string();
    let run = s.get("admin", &format!("/api/v1/runs/{id}")).await.body;
    assert_eq!(run["due_at"], "2026-04-06T09:00:00Z", "three business days over the weekend: {run}");
    // A run started by hand has no deadline of its own.
    let by_hand = s.start_check("admin").await;
    assert!(s.get("admin", &format!("/api/v1/runs/{by_hand}")).await.body["due_at"].is_null());

    let login = s.login("admin@example.com", &s.admin_password).await;
    let page = |path: String| {
        let cookie = login.session.as_ref().unwrap().cookie.clone();
        let client = s.client.clone();
        let url = format!("{}{path}", s.base);
        async move { client.get(url).header("cookie", cookie).send().await.unwrap().text().await.unwrap() }
    };
    let html = page(format!("/runs/{id}")).await;
    assert!(html.contains("Run due 2026-04-06 09:00 UTC"), "the run page shows the deadline");
    let overdue = |html: &str| html.contains(&format!("/runs/{id}\""));
    assert!(!overdue(&page("/runs?overdue=on".into()).await), "not overdue before its deadline");
    manual.set("2026-04-06T09:00:01Z".parse().unwrap());
    let list = page("/runs?overdue=on".into()).await;
    assert!(overdue(&list), "overdue once its deadline passed");
    assert!(list.contains("overdue by"), "the runs list says so");
    assert!(!list.contains(&format!("/runs/{by_hand}\"")), "a run without overdue tasks or deadline is not listed");
    s.stop().await;
}

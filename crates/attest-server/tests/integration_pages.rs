//! The schedules, webhooks and trigger-URL pages over a real server, as a
//! browser without JavaScript uses them: each page renders, each form stores
//! what it should on good input and nothing on bad input (with a message
//! beside the field), and people without the right access are refused.
#![allow(clippy::unwrap_used)]

mod common;

use common::browser::Browser;

use std::time::{Duration, Instant};

use serde_json::{Value, json};

async fn admin(s: &common::Server) -> Browser {
    let mut b = Browser::new(&s.base);
    b.sign_in("admin@example.com", &s.admin_password).await;
    b
}

/// A member (no design or admin access) with a password, signed in.
async fn member(s: &common::Server) -> Browser {
    let r = s.post("admin", "/api/v1/people", json!({"email": "mia@example.com", "roles": ["checker"]})).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let otp = r.body["one_time_password"].as_str().unwrap().to_string();
    let mut b = Browser::new(&s.base);
    let page = b.sign_in("mia@example.com", &otp).await;
    let csrf = page.csrf();
    let password = "a member's long password";
    let r = b
        .post(
            "/account/password",
            &[
                ("csrf", csrf.as_str()),
                ("current_password", otp.as_str()),
                ("new_password", password),
                ("confirm_password", password),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    b
}

/// The workspace events of the ledger, by type.
fn ledger_events(s: &common::Server, kind: &str) -> Vec<Value> {
    let dir = attest_core::DataDir::new(s._dir.path().join("data"));
    let store = attest_store_sqlite::SqliteStore::open(dir.database()).unwrap();
    let size = attest_store::Store::ledger_size(&store).unwrap();
    attest_store::Store::ledger_entries(&store, 0, size)
        .unwrap()
        .iter()
        .map(|e| serde_json::from_slice::<Value>(&e.bytes).unwrap())
        .filter(|e| e["event"]["type"] == kind)
        .map(|e| e["event"].clone())
        .collect()
}

async fn schedules(s: &common::Server) -> Vec<Value> {
    s.get("admin", "/api/v1/schedules").await.body["items"].as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_schedules_page_creates_pauses_resumes_and_deletes_and_keeps_bad_input_out() {
    let s = common::Server::start().await;
    let r = s.post("admin", "/api/v1/settings/time-zone", json!({"time_zone": "Europe/Berlin"})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let mut b = admin(&s).await;
    let page = b.get("/schedules").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("Create a schedule") && page.body.contains("No schedules yet"));
    assert!(page.body.contains(r#"href="/schedules" aria-current="page""#), "the nav marks the page");
    assert!(page.body.contains(r#"value="Europe/Berlin""#), "the form starts in the workspace's zone");
    let csrf = page.csrf();

    let bad = b
        .submit(
            "/schedules",
            &csrf,
            &[
                ("template", "quick-check"),
                ("name_pattern", ""),
                ("kind", "monthly"),
                ("at", "09:00"),
                ("day", "32"),
                ("time_zone", "Mars/Olympus"),
                ("starts_as", "admin@example.com"),
                ("due_days", "0"),
            ],
        )
        .await;
    assert_eq!(bad.status, 422, "{}", bad.body);
    for field in ["name_pattern", "day", "time_zone", "due_days"] {
        assert!(bad.body.contains(&format!(r#"id="err-{field}""#)), "a message beside {field}: {}", bad.body);
    }
    assert!(bad.body.contains(r#"value="Mars/Olympus""#), "values stay as typed");
    let bad = b
        .submit(
            "/schedules",
            &csrf,
            &[
                ("template", "quick-check"),
                ("name_pattern", "Check {date}"),
                ("kind", "cron"),
                ("cron", "61 * * * *"),
                ("time_zone", "UTC"),
                ("starts_as", "nobody@example.com"),
            ],
        )
        .await;
    assert_eq!(bad.status, 422);
    assert!(bad.body.contains(r#"id="err-cron""#), "{}", bad.body);
    let bad = b
        .submit(
            "/schedules",
            &csrf,
            &[
                ("template", "quick-check"),
                ("name_pattern", "Check {date}"),
                ("kind", "daily"),
                ("at", "09:00"),
                ("time_zone", "UTC"),
                ("starts_as", "nobody@example.com"),
            ],
        )
        .await;
    assert_eq!(bad.status, 422);
    assert!(bad.body.contains(r#"id="err-starts_as""#), "an unknown person is refused beside the field: {}", bad.body);
    assert!(schedules(&s).await.is_empty(), "bad input stores nothing");

    let ok = b
        .submit(
            "/schedules",
            &csrf,
            &[
                ("template", "quick-check"),
                ("name_pattern", "Check {quarter} {year}"),
                ("kind", "weekly"),
                ("at", "09:30"),
                ("weekday", "friday"),
                ("time_zone", "America/New_York"),
                ("starts_as", "admin@example.com"),
                ("due_days", "5"),
                ("due_business_days", "true"),
            ],
        )
        .await;
    assert_eq!((ok.status, ok.location.as_str()), (303, "/schedules?ok=created"), "{}", ok.body);
    let rows = schedules(&s).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["rule"], json!({"every": "weekly", "at": "09:30", "weekday": "friday"}));
    assert_eq!(rows[0]["time_zone"], "America/New_York");
    assert_eq!((rows[0]["due_days"].clone(), rows[0]["due_business_days"].clone()), (json!(5), json!(true)));
    let id = rows[0]["id"].as_str().unwrap().to_string();
    // 09:30 in New York is 15:30 in Berlin (or 14:30 while their summer times differ).
    let next: jiff::Timestamp = rows[0]["next_at"].as_str().unwrap().parse().unwrap();
    let shown = format!(
        "{} Europe/Berlin",
        next.to_zoned(jiff::tz::TimeZone::get("Europe/Berlin").unwrap()).strftime("%Y-%m-%d %H:%M")
    );
    let page = b.get("/schedules?ok=created").await;
    assert!(page.body.contains("Schedule created."));
    assert!(page.body.contains(&shown), "the next run shows in the workspace zone ({shown}): {}", page.body);
    assert!(page.body.contains("weekly on friday at 09:30"));
    assert!(page.body.contains("due 5 business days after start"));

    let r = b.submit(&format!("/schedules/{id}/pause"), &csrf, &[]).await;
    assert_eq!((r.status, r.location.as_str()), (303, "/schedules?ok=paused"));
    assert_eq!(schedules(&s).await[0]["paused"], true);
    assert!(b.get("/schedules").await.body.contains(&format!(r#"action="/schedules/{id}/resume""#)));
    let r = b.submit(&format!("/schedules/{id}/resume"), &csrf, &[]).await;
    assert_eq!(r.status, 303);
    assert_eq!(schedules(&s).await[0]["paused"], false);
    let r = b.submit(&format!("/schedules/{id}/delete"), &csrf, &[]).await;
    assert_eq!((r.status, r.location.as_str()), (303, "/schedules?ok=deleted"));
    assert!(schedules(&s).await.is_empty());
    let r = b.submit("/schedules/no-such-schedule/pause", &csrf, &[]).await;
    assert_eq!(r.status, 404, "an unknown schedule is a not-found page");
    // Each change is a workspace event naming who made it.
    for kind in ["schedule_created", "schedule_paused", "schedule_resumed", "schedule_deleted", "time_zone_set"] {
        let events = ledger_events(&s, kind);
        assert_eq!(events.len(), 1, "{kind}: {events:?}");
        assert_eq!(events[0]["id"].as_str().unwrap_or(&id), id, "{kind}");
    }
    assert_eq!(ledger_events(&s, "schedule_paused")[0]["by"]["id"], "admin@example.com");
    let created = &ledger_events(&s, "schedule_created")[0];
    assert_eq!(created["rule"], json!({"every": "weekly", "at": "09:30", "weekday": "friday"}));
    assert_eq!(created["starts_as"], "admin@example.com");

    // A member sees the schedules but may not change them.
    let mut m = member(&s).await;
    let page = m.get("/schedules").await;
    assert_eq!(page.status, 200);
    assert!(!page.body.contains("Create a schedule"), "no form for someone who may not use it");
    let r = m
        .submit(
            "/schedules",
            &page.csrf(),
            &[("template", "quick-check"), ("name_pattern", "x"), ("kind", "daily"), ("at", "09:00")],
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(schedules(&s).await.is_empty());
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhooks_pages_show_the_secret_once_switch_delivery_and_redeliver() {
    let s = common::Server::start_with(|c| {
        c.hooks.poll_ms = 50;
        c.hooks.connect_timeout_ms = 300;
        c.hooks.timeout_ms = 500;
    })
    .await;
    let mut b = admin(&s).await;
    let page = b.get("/admin/webhooks").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("No webhooks yet") && page.body.contains(r#"value="run_started""#));
    let csrf = page.csrf();

    let bad = b.submit("/admin/webhooks", &csrf, &[("url", "ftp://example.com"), ("event_types", "run_started")]).await;
    assert_eq!(bad.status, 422);
    assert!(bad.body.contains(r#"id="err-url""#), "{}", bad.body);
    assert!(bad.body.contains(r#"value="run_started" checked"#), "ticked boxes stay ticked");
    let bad = b.submit("/admin/webhooks", &csrf, &[("url", "http://127.0.0.1:9/"), ("template", "no-such")]).await;
    assert_eq!(bad.status, 422);
    assert!(bad.body.contains(r#"id="err-template""#), "{}", bad.body);
    let bad =
        b.submit("/admin/webhooks", &csrf, &[("url", "http://127.0.0.1:9/"), ("event_types", "run_exploded")]).await;
    assert_eq!(bad.status, 422);
    assert!(bad.body.contains(r#"id="err-event_types""#), "{}", bad.body);
    assert!(s.get("admin", "/api/v1/webhooks").await.body["items"].as_array().unwrap().is_empty(), "nothing stored");

    // Port 9 (discard) refuses connections on loopback: every attempt fails fast.
    let made = b
        .submit(
            "/admin/webhooks",
            &csrf,
            &[("url", "http://127.0.0.1:9/hook"), ("template", "quick-check"), ("event_types", "run_started")],
        )
        .await;
    assert_eq!(made.status, 200, "{}", made.body);
    let secret = made.secret();
    assert!(secret.starts_with("whsec_"), "{secret}");
    let list = s.get("admin", "/api/v1/webhooks").await.body["items"].clone();
    assert_eq!(list[0]["event_types"], json!(["run_started"]));
    assert_eq!(list[0]["template"], "quick-check");
    let id = list[0]["id"].as_str().unwrap().to_string();
    let page = b.get("/admin/webhooks").await;
    assert!(!page.body.contains(&secret), "the secret is shown only once");
    assert!(page.body.contains("runs of quick-check"));

    let r = b.submit(&format!("/admin/webhooks/{id}/disable"), &csrf, &[]).await;
    assert_eq!((r.status, r.location.as_str()), (303, "/admin/webhooks?ok=disabled"));
    let sub = s.get("admin", &format!("/api/v1/webhooks/{id}")).await.body;
    assert_eq!(sub["enabled"], false);
    assert_eq!(sub["disabled_reason"], "disabled by admin@example.com");
    let r = b.submit(&format!("/admin/webhooks/{id}/enable"), &csrf, &[]).await;
    assert_eq!(r.status, 303);
    assert_eq!(s.get("admin", &format!("/api/v1/webhooks/{id}")).await.body["enabled"], true);
    // The API does the same.
    let r = s.post("admin", &format!("/api/v1/webhooks/{id}/disable"), json!({})).await;
    assert_eq!((r.status, r.body["enabled"].clone()), (200, json!(false)), "{:?}", r.body);
    let r = s.post("admin", &format!("/api/v1/webhooks/{id}/enable"), json!({})).await;
    assert_eq!((r.status, r.body["enabled"].clone()), (200, json!(true)), "{:?}", r.body);
    let disabled = ledger_events(&s, "webhook_disabled");
    assert_eq!(disabled.len(), 2);
    assert_eq!(disabled[0]["by"]["id"], "admin@example.com", "the ledger names who disabled it");
    assert_eq!(ledger_events(&s, "webhook_enabled").len(), 2);

    // A run's start becomes a delivery that fails; the log shows it and redelivers it.
    s.start_check("admin").await;
    let started = Instant::now();
    let delivery = loop {
        let log = s.get("admin", &format!("/api/v1/webhooks/{id}/deliveries")).await.body["items"].clone();
        if log[0]["attempts"].as_u64().unwrap_or(0) >= 1 {
            break log[0].clone();
        }
        assert!(started.elapsed() < Duration::from_secs(20), "no attempt was made: {log}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let delivery_id = delivery["id"].as_str().unwrap().to_string();
    let page = b.get(&format!("/admin/webhooks/{id}")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("run_started") && page.body.contains(&delivery_id), "{}", page.body);
    assert!(page.body.contains("bad-text"), "the last error shows: {}", page.body);
    let r = b.submit(&format!("/admin/webhooks/{id}/deliveries/{delivery_id}/redeliver"), &csrf, &[]).await;
    assert_eq!((r.status, r.location.clone()), (303, format!("/admin/webhooks/{id}?ok=redelivered")));
    let r = b.submit(&format!("/admin/webhooks/{id}/deliveries/msg_none_0/redeliver"), &csrf, &[]).await;
    assert_eq!(r.status, 404);

    let r = b.submit(&format!("/admin/webhooks/{id}/delete"), &csrf, &[]).await;
    assert_eq!((r.status, r.location.as_str()), (303, "/admin/webhooks?ok=deleted"));
    assert!(s.get("admin", "/api/v1/webhooks").await.body["items"].as_array().unwrap().is_empty());
    assert_eq!(b.get(&format!("/admin/webhooks/{id}")).await.status, 404);

    let mut m = member(&s).await;
    assert_eq!(m.get("/admin/webhooks").await.status, 403);
    let csrf = m.get("/").await.csrf();
    let r = m.submit("/admin/webhooks", &csrf, &[("url", "http://127.0.0.1:9/")]).await;
    assert_eq!(r.status, 403);
    assert!(s.get("admin", "/api/v1/webhooks").await.body["items"].as_array().unwrap().is_empty());
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_settings_are_a_ledger_event_without_the_password() {
    let s = common::Server::start().await;
    let password = "smtp-password-not-for-the-ledger";
    let r = s
        .post(
            "admin",
            "/api/v1/settings/mail",
            json!({"smtp_host": "mail.example.com", "smtp_port": 587, "tls": "starttls",
                   "from": "attest@example.com", "username": "attest", "password": password,
                   "base_url": "https://attest.example.com"}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let events = ledger_events(&s, "mail_settings_set");
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["smtp_host"], "mail.example.com");
    assert!(!events[0].to_string().contains(password), "{}", events[0]);
    let r = s.post("admin", "/api/v1/settings/mail", json!({"smtp_host": ""})).await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    assert_eq!(ledger_events(&s, "mail_settings_set").len(), 1, "a refused change records nothing");
    s.stop().await;
}

async fn trigger(s: &common::Server, url: &str, payload: Value) -> u16 {
    s.client.post(format!("{}{url}", s.base)).json(&payload).send().await.unwrap().status().as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_trigger_page_creates_edits_rotates_and_revokes_the_secret_url() {
    let s = common::Server::start().await;
    let mut b = admin(&s).await;
    let template = b.get("/templates/quick-check").await;
    assert!(template.body.contains(r#"href="/templates/quick-check/trigger""#), "the template page links to it");
    let page = b.get("/templates/quick-check/trigger").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("This template has no trigger URL") && page.body.contains("<code>note</code>"));
    let csrf = page.csrf();

    for (mapping, why) in
        [("/note -> nofield", "not a field"), ("just words", "arrow"), ("note -> note", "JSON pointer")]
    {
        let bad = b
            .submit(
                "/templates/quick-check/trigger",
                &csrf,
                &[("run_as", "admin@example.com"), ("mapping", mapping), ("action", "rotate")],
            )
            .await;
        assert_eq!(bad.status, 422, "{mapping}");
        assert!(bad.body.contains(r#"id="err-mapping""#) && bad.body.contains(why), "{mapping}: {}", bad.body);
    }
    let bad = b
        .submit(
            "/templates/quick-check/trigger",
            &csrf,
            &[("run_as", "nobody@example.com"), ("mapping", "/note -> note"), ("action", "rotate")],
        )
        .await;
    assert_eq!(bad.status, 422);
    assert!(bad.body.contains(r#"id="err-run_as""#), "{}", bad.body);
    assert_eq!(s.get("admin", "/api/v1/templates/quick-check/trigger").await.status, 404, "nothing stored");

    let made = b
        .submit(
            "/templates/quick-check/trigger",
            &csrf,
            &[("run_as", "admin@example.com"), ("mapping", "/vendor/note -> note"), ("action", "rotate")],
        )
        .await;
    assert_eq!(made.status, 200, "{}", made.body);
    let first = made.secret();
    assert!(first.starts_with("/hooks/triggers/quick-check/"), "{first}");
    assert_eq!(trigger(&s, &first, json!({"vendor": {"note": "from the page"}})).await, 201);
    assert_eq!(trigger(&s, &first, json!({})).await, 400, "the mapped path is required");
    let page = b.get("/templates/quick-check/trigger").await;
    assert!(!page.body.contains(&first), "the URL is shown only once");
    assert!(page.body.contains("/vendor/note -&#62; note"), "the mapping is editable: {}", page.body);

    // Saving the mapping keeps the URL.
    let r = b
        .submit(
            "/templates/quick-check/trigger",
            &csrf,
            &[("run_as", "admin@example.com"), ("mapping", "/text -> note?"), ("action", "save")],
        )
        .await;
    assert_eq!((r.status, r.location.as_str()), (303, "/templates/quick-check/trigger?ok=mapping"), "{}", r.body);
    assert_eq!(trigger(&s, &first, json!({})).await, 201, "an optional path may be missing");
    let t = s.get("admin", "/api/v1/templates/quick-check/trigger").await.body;
    assert_eq!(t["mapping"], json!([{"path": "/text", "field": "note", "required": false}]));

    // Rotating makes a new URL and ends the old one.
    let rotated = b
        .submit(
            "/templates/quick-check/trigger",
            &csrf,
            &[("run_as", "admin@example.com"), ("mapping", "/text -> note?"), ("action", "rotate")],
        )
        .await;
    let second = rotated.secret();
    assert_ne!(first, second);
    assert_eq!(trigger(&s, &first, json!({})).await, 401);
    assert_eq!(trigger(&s, &second, json!({})).await, 201);
    let set = ledger_events(&s, "trigger_set");
    assert_eq!(set.len(), 3, "each change is in the ledger");
    assert!(set.iter().all(|e| !e.to_string().contains(&second[second.rfind('/').unwrap() + 1..])), "no secret");

    let r = b.submit("/templates/quick-check/trigger/revoke", &csrf, &[]).await;
    assert_eq!((r.status, r.location.as_str()), (303, "/templates/quick-check/trigger?ok=revoked"));
    assert_eq!(trigger(&s, &second, json!({})).await, 401);
    assert_eq!(ledger_events(&s, "trigger_removed").len(), 1);

    let mut m = member(&s).await;
    assert_eq!(m.get("/templates/quick-check/trigger").await.status, 403);
    assert!(!m.get("/templates/quick-check").await.body.contains("/trigger\""), "no link for a member");
    let csrf = m.get("/").await.csrf();
    let r =
        m.submit("/templates/quick-check/trigger", &csrf, &[("run_as", "mia@example.com"), ("action", "rotate")]).await;
    assert_eq!(r.status, 403);
    assert_eq!(s.get("admin", "/api/v1/templates/quick-check/trigger").await.status, 404);
    s.stop().await;
}

/// Regression: handlers read the server's clock (`Config::clock`), not the
/// system time, so a test that moves a manual clock sees every part agree.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handlers_use_the_server_clock_not_the_system_time() {
    let at: jiff::Timestamp = "2031-05-01T10:00:00Z".parse().unwrap();
    let clock = attest_core::Clock::manual(at);
    let s = common::Server::start_with(move |c| {
        c.clock = clock;
        c.scheduler.enabled = false;
        c.hooks.enabled = false;
    })
    .await;
    let r = s.post("admin", "/api/v1/webhooks", json!({"url": "http://127.0.0.1:9/"})).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.body["created_at"], "2031-05-01T10:00:00Z");
    let r = s
        .send(
            "admin",
            reqwest::Method::PUT,
            "/api/v1/templates/quick-check/trigger",
            Some(json!({"run_as": "admin@example.com"})),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.body["created_at"], "2031-05-01T10:00:00Z");
    let url = r.body["url"].as_str().unwrap().to_string();
    let r = s.client.post(format!("{}{url}", s.base)).json(&json!({})).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let run: Value = r.json().await.unwrap();
    let started = s.get("admin", &format!("/api/v1/runs/{}", run["run"].as_str().unwrap())).await.body;
    assert_eq!(started["started_at"], "2031-05-01T10:00:00Z", "{started}");
    let mut b = admin(&s).await;
    assert!(b.get("/admin/webhooks").await.body.contains("2031-05-01 10:00 UTC"), "the page shows the clock's time");
    s.stop().await;
}

const TIMED_TEMPLATE: &str = r#"
format: attest/v1
key: timed
name: Timed
tasks:
  - key: act
    name: Act
    assignee: starter
    due: { after: run_started, in: 2d }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_sees_due_times_in_their_own_time_zone() {
    let clock = attest_core::Clock::manual("2026-03-02T09:00:00Z".parse().unwrap());
    let s = common::Server::start_with(move |c| {
        c.clock = clock;
        c.scheduler.enabled = false;
    })
    .await;
    assert_eq!(s.post("admin", "/api/v1/templates", json!({"source": TIMED_TEMPLATE})).await.status, 201);
    let mut b = admin(&s).await;
    let session = s.login("admin@example.com", &s.admin_password).await;
    let r = s.post_session("/api/v1/runs", &session, json!({"template": "timed"})).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let run = r.body["run"].as_str().unwrap().to_string();
    let home = b.get("/").await;
    assert!(home.body.contains("2026-03-04 09:00 UTC"), "the workspace's zone by default: {}", home.body);

    let page = b.get("/account/time-zone").await;
    assert_eq!(page.status, 200);
    let csrf = page.csrf();
    let bad = b.submit("/account/time-zone", &csrf, &[("time_zone", "Mars/Olympus")]).await;
    assert_eq!(bad.status, 422);
    assert!(bad.body.contains(r#"id="err-time_zone""#) && bad.body.contains(r#"value="Mars/Olympus""#));
    let mine = s.get_session("/api/v1/me/time-zone", &session).await.body;
    assert_eq!(mine, json!({"time_zone": null, "effective": "UTC"}), "bad input stores nothing");
    let r = b.submit("/account/time-zone", &csrf, &[("time_zone", "Asia/Tokyo")]).await;
    assert_eq!((r.status, r.location.as_str()), (303, "/account/time-zone?ok=saved"));
    assert!(b.get("/").await.body.contains("2026-03-04 18:00 Asia/Tokyo"), "My work shows the viewer's zone");
    let run_page = b.get(&format!("/runs/{run}")).await;
    assert!(run_page.body.contains("due 2026-03-04 18:00 Asia/Tokyo"), "{}", run_page.body);

    // The API: the choice and the zone in effect; null goes back to the workspace's.
    let r = s.post_session("/api/v1/me/time-zone", &session, json!({"time_zone": null})).await;
    assert_eq!(r.body, json!({"time_zone": null, "effective": "UTC"}));
    let r = s.post_session("/api/v1/me/time-zone", &session, json!({"time_zone": "nowhere"})).await;
    assert_eq!(r.status, 400);
    let r = s.post("admin", "/api/v1/me/time-zone", json!({"time_zone": "UTC"})).await;
    assert_eq!(r.status, 400, "a token has no time zone of its own");
    assert!(b.get("/").await.body.contains("2026-03-04 09:00 UTC"));
    s.stop().await;
}

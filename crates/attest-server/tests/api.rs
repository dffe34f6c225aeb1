//! The API as each role uses it, bad input, and concurrency, against a real
//! server on port 0.
#![allow(clippy::unwrap_used)]

mod common;

use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_parallel_completions_give_one_success_and_99_conflicts() {
    let s = std::sync::Arc::new(common::Server::start().await);
    let run = s.start_check("member").await;
    let mut handles = Vec::new();
    for _ in 0..100 {
        let s = s.clone();
        let run = run.clone();
        handles.push(tokio::spawn(async move {
            s.post("member", &format!("/api/v1/runs/{run}/tasks/check/complete"), json!({})).await
        }));
    }
    let mut ok = 0;
    let mut conflicts = 0;
    for h in handles {
        let r = h.await.unwrap();
        match r.status {
            200..=299 => ok += 1,
            409 => {
                conflicts += 1;
                assert!(r.content_type.starts_with("application/problem+json"));
            }
            other => panic!("unexpected {other}: {:?}", r.body),
        }
    }
    assert_eq!((ok, conflicts), (1, 99));
    let events = s.get("auditor", &format!("/api/v1/runs/{run}/events")).await;
    let completions = events.body["items"].as_array().unwrap().iter().filter(|e| e["type"] == "task_completed").count();
    assert_eq!(completions, 1);
    let v = s.get("auditor", "/api/v1/audit/verify").await;
    assert_eq!(v.status, 200);
    assert_eq!(v.body["ok"], true, "{:?}", v.body);
    let s = std::sync::Arc::into_inner(s).unwrap();
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_clear_errors_and_stores_nothing() {
    let s = common::Server::start_with(|c| c.max_upload_bytes = 1024).await;
    let run = s.start_check("member").await;
    let events_before =
        s.get("admin", &format!("/api/v1/runs/{run}/events")).await.body["items"].as_array().unwrap().len();
    let url = |p: &str| format!("{}{p}", s.base);
    let member = s.token("member").to_string();

    // Oversize JSON body.
    let big = "x".repeat(3 * 1024 * 1024);
    // (A fresh client: the server closes a connection whose body it refused unread.)
    let r = reqwest::Client::new()
        .post(url(&format!("/api/v1/runs/{run}/tasks/check/comments")))
        .bearer_auth(&member)
        .json(&json!({"text": big}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 413);
    // Malformed JSON.
    let r = s
        .client
        .post(url(&format!("/api/v1/runs/{run}/tasks/check/comments")))
        .bearer_auth(&member)
        .header("content-type", "application/json")
        .body("{\"text\": ")
        .send()
        .await
        .unwrap();
    let r = common::Res::from(r).await;
    assert_eq!(r.status, 400);
    assert!(r.content_type.starts_with("application/problem+json"));
    // Unknown fields are refused, not ignored.
    let r = s.post("member", &format!("/api/v1/runs/{run}/tasks/check/comments"), json!({"text": "a", "x": 1})).await;
    assert_eq!(r.status, 400);
    // Wrong content type.
    let r = s
        .client
        .post(url(&format!("/api/v1/runs/{run}/tasks/check/comments")))
        .bearer_auth(&member)
        .header("content-type", "text/plain")
        .body("{\"text\": \"a\"}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 415);
    let r = s
        .client
        .post(url(&format!("/api/v1/runs/{run}/tasks/check/evidence")))
        .bearer_auth(&member)
        .json(&json!({"file": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 415);
    // Oversize upload.
    let upload = |name: &str, bytes: Vec<u8>| {
        let form = reqwest::multipart::Form::new()
            .part("file", reqwest::multipart::Part::bytes(bytes).file_name(name.to_string()));
        reqwest::Client::new()
            .post(url(&format!("/api/v1/runs/{run}/tasks/check/evidence")))
            .bearer_auth(&member)
            .multipart(form)
    };
    let r = upload("big.pdf", vec![b'a'; 4096]).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 413);
    // Path traversal in file names.
    for name in ["../../etc/passwd", "..\\..\\boot.ini", "/etc/shadow", ".hidden", "a/b.txt"] {
        let r = common::Res::from(upload(name, b"x".to_vec()).send().await.unwrap()).await;
        assert_eq!(r.status, 400, "{name}: {:?}", r.body);
        assert!(r.body["detail"].as_str().unwrap().contains("file name"), "{:?}", r.body);
    }
    // A good upload works.
    let r = common::Res::from(upload("note.txt", b"fine".to_vec()).send().await.unwrap()).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let events_after =
        s.get("admin", &format!("/api/v1/runs/{run}/events")).await.body["items"].as_array().unwrap().len();
    assert_eq!(events_after, events_before + 1, "only the good upload was stored");

    // Unknown ids.
    let r = s.get("member", "/api/v1/runs/no-such-run").await;
    assert_eq!(r.status, 404);
    let r = s.post("member", "/api/v1/runs/no-such-run/tasks/check/complete", json!({})).await;
    assert_eq!(r.status, 404);
    let r = s.post("member", &format!("/api/v1/runs/{run}/tasks/nope/complete"), json!({})).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.body["rule"], "unknown-task");
    let r = s.post("member", "/api/v1/runs", json!({"template": "no-such-template"})).await;
    assert_eq!(r.status, 404);
    let r = s.get("member", "/api/v1/templates/no-such-template/versions/1").await;
    assert_eq!(r.status, 404);
    let r = s.send("admin", reqwest::Method::DELETE, "/api/v1/tokens/no-such-token", None).await;
    assert_eq!(r.status, 404);
    let r = s.get("member", "/api/v1/nowhere").await;
    assert_eq!(r.status, 404);
    let r = s.get("member", "/api/v1/runs?limit=0").await;
    assert_eq!(r.status, 400);
    let r = s.get("member", "/api/v1/runs?status=weird").await;
    assert_eq!(r.status, 400);

    let v = s.get("auditor", "/api/v1/audit/verify").await;
    assert_eq!(v.body["ok"], true, "{:?}", v.body);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_carry_the_rule_and_idempotency_keys_replay() {
    let s = common::Server::start().await;
    let run = s.start_check("member").await;
    // The reviewer may not complete the starter's task.
    let r = s.post("reviewer", &format!("/api/v1/runs/{run}/tasks/check/complete"), json!({})).await;
    assert_eq!(r.status, 422);
    assert_eq!(r.body["rule"], "not-assignee");
    assert_eq!(r.body["task"], "check");
    // An invalid value names the field.
    let r = s
        .post("member", &format!("/api/v1/runs/{run}/tasks/check/fields"), json!({"values": {"note": "x".repeat(300)}}))
        .await;
    assert_eq!(r.status, 422, "{:?}", r.body);
    assert_eq!(r.body["field"], "note");

    // Idempotency: the same key and body give the same answer, once.
    let send = |key: &str, name: &str| {
        s.client
            .post(format!("{}/api/v1/runs", s.base))
            .bearer_auth(s.token("member"))
            .header("idempotency-key", key)
            .json(&json!({"template": "quick-check", "name": name}))
            .send()
    };
    let a = common::Res::from(send("k-1", "once").await.unwrap()).await;
    let b = send("k-1", "once").await.unwrap();
    assert_eq!(b.headers().get("idempotent-replayed").unwrap(), "true");
    let b = common::Res::from(b).await;
    assert_eq!(a.status, 201);
    assert_eq!(a.body, b.body);
    let c = common::Res::from(send("k-1", "another").await.unwrap()).await;
    assert_eq!(c.status, 422);
    let runs = s.get("admin", "/api/v1/runs?template=quick-check&limit=1000").await;
    let named_once = runs.body["items"].as_array().unwrap().iter().filter(|r| r["name"] == "once").count();
    assert_eq!(named_once, 1);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_role_does_its_job() {
    let s = common::Server::start().await;

    // Process owner: validate, publish a new version, cancel a run.
    let bad = s.post("owner", "/api/v1/templates/validate", json!({"source": "format: attest/v1\nkey: x\n"})).await;
    assert_eq!(bad.status, 422);
    let v2 = common::CHECK_TEMPLATE.replace("name: Quick check", "name: Quick check v2");
    let ok = s.post("owner", "/api/v1/templates/validate", json!({"source": v2})).await;
    assert_eq!(ok.status, 200);
    assert_eq!(ok.body["valid"], true);
    let p = s.post("owner", "/api/v1/templates", json!({"source": v2})).await;
    assert_eq!(p.status, 201);
    assert_eq!(p.body["version"], 2);
    let versions = s.get("member", "/api/v1/templates/quick-check/versions").await;
    assert_eq!(versions.body["items"].as_array().unwrap().len(), 2);
    let seeded = s.seeded_open_run().await;
    let r = s.post("member", &format!("/api/v1/runs/{seeded}/cancel"), json!({"reason": "no"})).await;
    assert_eq!(r.status, 403);
    let r = s.post("owner", &format!("/api/v1/runs/{seeded}/cancel"), json!({"reason": "Duplicate"})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["status"], "cancelled");

    // Member: start, fill in, comment, attach, complete; it shows in the reviewer's inbox.
    let run = s.start_check("member").await;
    let inbox = s.get("member", "/api/v1/inbox").await;
    assert!(inbox.body["items"].as_array().unwrap().iter().any(|i| i["run_id"] == run.as_str()));
    let base = format!("/api/v1/runs/{run}/tasks/check");
    assert_eq!(
        s.post("member", &format!("{base}/fields"), json!({"values": {"note": "looks fine"}})).await.status,
        200
    );
    assert_eq!(s.post("member", &format!("{base}/comments"), json!({"text": "see attached"})).await.status, 200);
    let form = reqwest::multipart::Form::new()
        .text("field", "")
        .part("file", reqwest::multipart::Part::bytes(b"%PDF-1.4 x".to_vec()).file_name("proof.pdf"));
    let r = s
        .client
        .post(format!("{}{base}/evidence", s.base))
        .bearer_auth(s.token("member"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(s.post("member", &format!("{base}/complete"), json!({})).await.status, 200);
    let inbox = s.get("reviewer", "/api/v1/inbox").await;
    assert!(inbox.body["items"].as_array().unwrap().iter().any(|i| i["run_id"] == run.as_str()));

    // Reviewer: reject needs a comment, then approve after rework.
    let review = format!("/api/v1/runs/{run}/tasks/review");
    let r = s.post("reviewer", &format!("{review}/reject"), json!({"comment": "add more"})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(s.post("member", &format!("{base}/complete"), json!({})).await.status, 200);
    let r = s.post("reviewer", &format!("{review}/approve"), json!({"comment": "ok"})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["status"], "completed");
    let detail = s.get("auditor", &format!("/api/v1/runs/{run}")).await;
    assert_eq!(detail.body["status"], "completed");
    assert_eq!(detail.body["values"]["note"], "looks fine");
    assert_eq!(detail.body["tasks"].as_array().unwrap().len(), 2);
    // Whoever acted is recorded: tokens as tokens.
    let events = s.get("auditor", &format!("/api/v1/runs/{run}/events")).await;
    for e in events.body["items"].as_array().unwrap() {
        let want = if e["type"] == "run_completed" { "system" } else { "token" };
        assert_eq!(e["by"]["kind"], want, "{e}");
    }

    // Auditor: reads and verifies, changes nothing.
    assert_eq!(s.post("auditor", "/api/v1/runs", json!({"template": "quick-check"})).await.status, 403);
    assert_eq!(s.post("auditor", &format!("{review}/approve"), json!({})).await.status, 403);
    let v = s.get("auditor", "/api/v1/audit/verify").await;
    assert_eq!(v.body["ok"], true, "{:?}", v.body);
    let export = s.get("auditor", &format!("/api/v1/audit/runs/{run}/export")).await;
    assert_eq!(export.status, 200);
    let pack = attest_pack::verify(std::io::Cursor::new(export.bytes.clone()), None);
    assert!(pack.ok(), "the exported pack verifies: {:?}", pack);
    let period = s.get("auditor", "/api/v1/audit/export?from=2000-01-01&to=2100-12-31").await;
    assert_eq!(period.status, 200, "{:?}", period.body);
    assert_eq!(period.content_type, "application/zip");
    let report = attest_pack::verify(std::io::Cursor::new(period.bytes.clone()), None);
    assert!(report.ok(), "the period pack verifies: {:?}", report);
    let bad = s.get("auditor", "/api/v1/audit/export?from=yesterday&to=2100-12-31").await;
    assert_eq!(bad.status, 400, "{:?}", bad.body);

    // Admin: people, roles, checkpoints and proofs.
    let p = s
        .post("admin", "/api/v1/people", json!({"email": "nia@example.com", "name": "Nia", "roles": ["reviewer"]}))
        .await;
    assert_eq!(p.status, 201, "{:?}", p.body);
    let otp = p.body["one_time_password"].as_str().unwrap().to_string();
    let login = s.login("nia@example.com", &otp).await;
    assert_eq!(login.status, 200);
    assert_eq!(login.body["must_change_password"], true);
    let changed = s
        .post_session(
            "/api/v1/auth/password",
            &login,
            json!({"current_password": otp, "new_password": "nia's own password"}),
        )
        .await;
    assert_eq!(changed.status, 200);
    let nia =
        common::Session { cookie: changed.cookie.unwrap(), csrf: changed.body["csrf_token"].as_str().unwrap().into() };
    let me = s.send_session(reqwest::Method::GET, "/api/v1/me", &nia, None).await;
    assert_eq!(me.body["access"], "member");
    assert_eq!(me.body["roles"], json!(["reviewer"]));
    assert_eq!(s.post("admin", "/api/v1/people/nia@example.com/roles", json!({"role": "auditor"})).await.status, 200);
    let me = s.send_session(reqwest::Method::GET, "/api/v1/me", &nia, None).await;
    assert_eq!(me.body["access"], "auditor", "a role change applies at once");
    let r = s.send("admin", reqwest::Method::DELETE, "/api/v1/people/nia@example.com/roles/auditor", None).await;
    assert_eq!(r.status, 200);
    let cp = s.post("admin", "/api/v1/audit/checkpoints", json!({})).await;
    assert_eq!(cp.status, 201, "{:?}", cp.body);
    let size = cp.body["size"].as_u64().unwrap();
    let inc = s.get("auditor", &format!("/api/v1/audit/proofs/inclusion?index=1&size={size}")).await;
    assert_eq!(inc.status, 200);
    assert!(!inc.body["proof"].as_array().unwrap().is_empty());
    let con = s.get("auditor", &format!("/api/v1/audit/proofs/consistency?old=2&new={size}")).await;
    assert_eq!(con.status, 200);
    let cps = s.get("auditor", "/api/v1/audit/checkpoints").await;
    assert!(!cps.body["items"].as_array().unwrap().is_empty());
    let key = s.get("auditor", "/api/v1/audit/key").await;
    assert!(key.body["verifier_key"].as_str().unwrap().starts_with("attest/"));
    // Credential changes are in the ledger too.
    let v = s.get("auditor", "/api/v1/audit/verify").await;
    assert_eq!(v.body["ok"], true, "{:?}", v.body);

    // Operations.
    assert_eq!(s.get("anonymous", "/healthz").await.status, 200);
    assert_eq!(s.get("anonymous", "/readyz").await.status, 200);
    let m = s.get("anonymous", "/metrics").await;
    let text = m.body.as_str().unwrap();
    assert!(text.contains("attest_http_requests_total"));
    assert!(text.contains("attest_engine_refusals_total") && text.contains("attest_ledger_entries"));
    let doc = s.get("anonymous", "/api/openapi.json").await;
    assert_eq!(doc.body["openapi"], "3.1.0");
    assert_eq!(doc.body["paths"].as_object().unwrap().len(), {
        let mut paths: Vec<_> = attest_server::ROUTES.iter().filter(|r| !r.is_page()).map(|r| r.path).collect();
        paths.dedup();
        paths.sort();
        paths.dedup();
        paths.len()
    });
    let docs = s.client.get(format!("{}/api/docs", s.base)).send().await.unwrap().text().await.unwrap();
    assert!(docs.contains("/api/openapi.json") && !docs.contains("https://"), "the docs page works offline");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workspace_made_by_init_gets_a_one_time_admin_password() {
    let dir = tempfile::tempdir().unwrap();
    let data = attest_core::DataDir::new(dir.path().join("data"));
    attest_core::workspace::init_data_dir(&data, "Init", "boss@example.com", "Boss", jiff::Timestamp::now()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let running = attest_server::start(attest_server::Config::new(data.root()), listener).await.unwrap();
    let seeded = running.seeded.clone().unwrap();
    assert_eq!(seeded.admin, "boss@example.com");
    let r = reqwest::Client::new()
        .post(format!("http://{}/api/v1/auth/login", running.addr))
        .json(&json!({"email": "boss@example.com", "password": seeded.one_time_password}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    running.shutdown().await;
}

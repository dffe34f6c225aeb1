//! Every endpoint × every caller (each access level, anonymous, a revoked
//! token): the callers that get past access control are exactly the allowed
//! set; everyone else gets 401 or 403 and nothing changes.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;

use attest_server::access::Action;
use serde_json::{Value, json};

const CALLERS: &[&str] = &["anonymous", "revoked", "admin", "owner", "member", "auditor"];

/// The policy, stated independently of the code that enforces it.
fn expected(action: Action) -> BTreeSet<&'static str> {
    let set: &[&str] = match action {
        Action::Public => &["anonymous", "revoked", "admin", "owner", "member", "auditor"],
        Action::Session | Action::Read => &["admin", "owner", "member", "auditor"],
        // Tokens have no password to change.
        Action::ChangePassword => &[],
        Action::DesignTemplate | Action::CancelRun => &["admin", "owner"],
        Action::StartRun | Action::WorkTask => &["admin", "owner", "member"],
        Action::ManagePeople
        | Action::ManageTokens
        | Action::SignCheckpoint
        | Action::ManageWorkspace
        | Action::ManageWebhooks => &["admin"],
        Action::Audit => &["admin", "auditor"],
    };
    set.iter().copied().collect()
}

fn fill(path: &str, run: &str, token_id: &str) -> String {
    path.replace("{run}", run)
        .replace("{task}", "check")
        .replace("{key}", "quick-check")
        .replace("{version}", "1")
        .replace("{email}", "rita@example.com")
        .replace("{role}", "requester")
        .replace("{id}", token_id)
        .replace("{file}", "app.css")
        .replace("{index}", "0")
        .replace("{delivery}", "msg_none_0")
        .replace("{template}", "quick-check")
        .replace("{secret}", "not-the-secret")
}

/// A page route as a browser-less client calls it: a bearer token (pages take
/// the same credentials as the API), a form body, and no redirect following.
async fn send_page(
    s: &common::Server,
    spec: &attest_server::RouteSpec,
    path: &str,
    caller: &str,
) -> (u16, String, String) {
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let url = format!("{}{path}", s.base);
    let mut req = if spec.method == "GET" {
        client.get(url)
    } else if spec.path.ends_with("/evidence") {
        let form = reqwest::multipart::Form::new()
            .text("field", "")
            .part("file", reqwest::multipart::Part::bytes(b"evidence".to_vec()).file_name("note.txt"));
        client.post(url).multipart(form)
    } else if spec.path == "/login" {
        // Signing in needs the sign-in form's token, from its page and its cookie.
        let form = client.get(&url).send().await.unwrap();
        let cookie = form.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_string();
        let html = form.text().await.unwrap();
        let at = html.find(r#"name="csrf" value=""#).unwrap() + r#"name="csrf" value=""#.len();
        let csrf = html[at..at + html[at..].find('"').unwrap()].to_string();
        client.post(url).header("cookie", cookie).form(&[("csrf", csrf.as_str()), ("email", "x@example.com")])
    } else {
        client.post(url).form(&[("text", "hello"), ("reason", "matrix"), ("role", "matrix-role"), ("name", "matrix")])
    };
    if !matches!(caller, "anonymous") {
        req = req.bearer_auth(s.token(caller));
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let location = r.headers().get("location").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    let content_type = r.headers().get("content-type").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    (status, location, content_type)
}

/// The secret trigger URL needs no sign-in, only its secret: without it every
/// caller, signed in or not, gets 401.
const SECRET_URL: &str = "/hooks/triggers/{template}/{secret}";

fn body(path: &str, admin_password: &str) -> Option<Value> {
    let b = match path {
        "/api/v1/auth/login" => json!({"email": "admin@example.com", "password": admin_password}),
        "/api/v1/auth/password" => json!({"current_password": "x", "new_password": "another long password"}),
        "/api/v1/templates" | "/api/v1/templates/validate" => json!({"source": common::CHECK_TEMPLATE}),
        "/api/v1/runs" => json!({"template": "quick-check"}),
        "/api/v1/runs/{run}/cancel" => json!({"reason": "matrix"}),
        "/api/v1/runs/{run}/tasks/{task}/fields" => json!({"values": {"note": "hi"}}),
        "/api/v1/runs/{run}/tasks/{task}/complete" => json!({}),
        "/api/v1/runs/{run}/tasks/{task}/approve" => json!({}),
        "/api/v1/runs/{run}/tasks/{task}/reject" => json!({"comment": "no"}),
        "/api/v1/runs/{run}/tasks/{task}/comments" => json!({"text": "hello"}),
        "/api/v1/people" => json!({"email": "new-person@example.com"}),
        "/api/v1/people/{email}/roles" => json!({"role": "matrix-role"}),
        "/api/v1/tokens" => json!({"name": "matrix", "access": "member"}),
        "/api/v1/webhooks" => json!({"url": "http://127.0.0.1:9/matrix", "event_types": ["run_cancelled"]}),
        "/api/v1/templates/{key}/trigger" | SECRET_URL => json!({"note": "matrix"}),
        _ => return None,
    };
    Some(b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_by_every_caller() {
    let s = common::Server::start().await;
    let run = s.start_check("admin").await;
    let throwaway = s.post("admin", "/api/v1/tokens", json!({"name": "throwaway", "access": "member"})).await;
    let token_id = throwaway.body["id"].as_str().unwrap().to_string();
    let mut unauthorized_successes = Vec::new();
    let mut wrong = Vec::new();
    let mut checked = 0;
    for spec in attest_server::ROUTES {
        let path = fill(spec.path, &run, &token_id);
        let allowed = expected(spec.action);
        for caller in CALLERS {
            let method = reqwest::Method::from_bytes(spec.method.as_bytes()).unwrap();
            if spec.is_page() {
                // A page refuses as a page: strangers are sent to sign in, the rest get a 403 page.
                let (status, location, content_type) = send_page(&s, spec, &path, caller).await;
                checked += 1;
                // Signing out also ends at the sign-in form, saying so.
                let to_login = status == 303 && location.starts_with("/login") && !location.contains("signed-out");
                let denied = to_login || status == 403;
                let is_allowed = allowed.contains(caller);
                if is_allowed && denied {
                    wrong.push(format!("{} {} as {caller}: {status} {location}", spec.method, spec.path));
                }
                if !is_allowed && !denied {
                    unauthorized_successes.push(format!("{} {} as {caller}: {status}", spec.method, spec.path));
                }
                if !is_allowed {
                    let ok = if matches!(*caller, "anonymous" | "revoked") {
                        to_login
                    } else {
                        status == 403 && content_type.starts_with("text/html")
                    };
                    if !ok {
                        wrong.push(format!(
                            "{} {} as {caller}: {status} {location} {content_type}",
                            spec.method, spec.path
                        ));
                    }
                }
                assert!(status < 500, "{} {} as {caller}: {status}", spec.method, spec.path);
                continue;
            }
            let res = if spec.path.ends_with("/evidence") {
                let form = reqwest::multipart::Form::new()
                    .part("file", reqwest::multipart::Part::bytes(b"evidence".to_vec()).file_name("note.txt"));
                let mut req = s.client.post(format!("{}{path}", s.base)).multipart(form);
                if *caller != "anonymous" {
                    req = req.bearer_auth(s.token(caller));
                }
                common::Res::from(req.send().await.unwrap()).await
            } else {
                s.send(caller, method, &path, body(spec.path, &s.admin_password)).await
            };
            checked += 1;
            if spec.path == SECRET_URL {
                assert_eq!(res.status, 401, "{} as {caller}: {:?}", spec.path, res.body);
                continue;
            }
            let denied = res.status == 401 || res.status == 403;
            let is_allowed = allowed.contains(caller);
            if is_allowed && denied {
                wrong.push(format!("{} {} as {caller}: {} {:?}", spec.method, spec.path, res.status, res.body));
            }
            if !is_allowed && !denied {
                unauthorized_successes.push(format!("{} {} as {caller}: {}", spec.method, spec.path, res.status));
            }
            if !is_allowed {
                let want = if matches!(*caller, "anonymous" | "revoked") { 401 } else { 403 };
                if res.status != want {
                    wrong.push(format!("{} {} as {caller}: {} (want {want})", spec.method, spec.path, res.status));
                }
                assert!(res.content_type.starts_with("application/problem+json"), "{}", spec.path);
            }
            assert!(res.status < 500, "{} {} as {caller}: {} {:?}", spec.method, spec.path, res.status, res.body);
        }
    }
    assert!(unauthorized_successes.is_empty(), "unauthorized successes: {unauthorized_successes:#?}");
    assert!(wrong.is_empty(), "wrong decisions: {wrong:#?}");
    assert_eq!(checked, attest_server::ROUTES.len() * CALLERS.len());
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_need_the_csrf_token_and_end_at_logout() {
    let s = common::Server::start().await;
    let login = s.login("admin@example.com", &s.admin_password).await;
    assert_eq!(login.status, 200);
    let cookie = login.session.as_ref().unwrap().cookie.clone();
    // A cross-site form post carries the cookie but not the CSRF token.
    let r = s
        .client
        .post(format!("{}/api/v1/runs", s.base))
        .header("cookie", &cookie)
        .json(&json!({"template": "quick-check"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let r = s.post_session("/api/v1/runs", &login, json!({"template": "quick-check"})).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let r = s.post_session("/api/v1/auth/logout", &login, json!({})).await;
    assert_eq!(r.status, 200);
    let r = s.get_session("/api/v1/me", &login).await;
    assert_eq!(r.status, 401);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_are_rate_limited() {
    let s = common::Server::start().await;
    for _ in 0..5 {
        assert_eq!(s.login("admin@example.com", "not the password").await.status, 401);
    }
    let r = s.login("admin@example.com", &s.admin_password).await;
    assert_eq!(r.status, 429, "even the right password waits after five failures");
    s.stop().await;
}

//! A real server on port 0 against a fresh data directory, with a token for
//! each access level.
#![allow(dead_code, clippy::unwrap_used)]

pub mod browser;

use std::collections::HashMap;

use attest_server::{Config, Running};
use serde_json::{Value, json};

pub const CHECK_TEMPLATE: &str = r#"
format: attest/v1
key: quick-check
name: Quick check
roles: [checker, reviewer]
tasks:
  - key: check
    name: Check
    assignee: starter
    fields:
      - { key: note, label: Note, type: text, max_length: 200 }
  - key: review
    name: Review
    type: approval
    approves: [check]
    assignee: role:reviewer
"#;

pub struct Server {
    pub running: Option<Running>,
    pub base: String,
    pub client: reqwest::Client,
    /// Tokens by name: admin, owner, member, auditor, revoked.
    pub tokens: HashMap<&'static str, String>,
    pub admin_password: String,
    pub _dir: tempfile::TempDir,
}

impl Server {
    pub async fn start() -> Server {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::new(dir.path().join("data"));
        tweak(&mut config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let running = attest_server::start(config, listener).await.unwrap();
        let seeded = running.seeded.clone().expect("a fresh data dir is seeded");
        let base = format!("http://{}", running.addr);
        let client = reqwest::Client::builder().pool_max_idle_per_host(200).build().unwrap();
        let mut s = Server {
            running: Some(running),
            base,
            client,
            tokens: HashMap::new(),
            admin_password: String::new(),
            _dir: dir,
        };
        // The admin signs in with the one-time password and must change it.
        let session = s.login(&seeded.admin, &seeded.one_time_password).await;
        assert_eq!(session.body["must_change_password"], true);
        let r = s.get_session("/api/v1/runs", &session).await;
        assert_eq!(r.status, 403, "a one-time password allows nothing but changing it");
        let new_password = "a much better password".to_string();
        let changed = s
            .post_session(
                "/api/v1/auth/password",
                &session,
                json!({"current_password": seeded.one_time_password, "new_password": new_password}),
            )
            .await;
        assert_eq!(changed.status, 200, "{:?}", changed.body);
        let session =
            Session { cookie: changed.cookie.unwrap(), csrf: changed.body["csrf_token"].as_str().unwrap().into() };
        s.admin_password = new_password;
        for (name, access, roles) in [
            ("admin", "admin", json!([])),
            ("owner", "process-owner", json!(["process-owner", "procurement-lead"])),
            ("member", "member", json!(["requester", "checker"])),
            ("reviewer", "member", json!(["reviewer"])),
            ("auditor", "auditor", json!(["auditor"])),
            ("revoked", "admin", json!([])),
        ] {
            let r = s
                .post_session("/api/v1/tokens", &session, json!({"name": name, "access": access, "roles": roles}))
                .await;
            assert_eq!(r.status, 201, "{:?}", r.body);
            s.tokens.insert(name, r.body["token"].as_str().unwrap().to_string());
            if name == "revoked" {
                let id = r.body["id"].as_str().unwrap().to_string();
                let d = s.send_session(reqwest::Method::DELETE, &format!("/api/v1/tokens/{id}"), &session, None).await;
                assert_eq!(d.status, 200, "{:?}", d.body);
            }
        }
        let r = s.post("admin", "/api/v1/templates", json!({"source": CHECK_TEMPLATE})).await;
        assert_eq!(r.status, 201, "{:?}", r.body);
        s
    }

    pub fn token(&self, who: &str) -> &str {
        self.tokens.get(who).map(String::as_str).unwrap_or("")
    }

    pub async fn login(&self, email: &str, password: &str) -> Reply<Session> {
        let r = self
            .client
            .post(format!("{}/api/v1/auth/login", self.base))
            .json(&json!({"email": email, "password": password}))
            .send()
            .await
            .unwrap();
        let cookie = r.headers().get("set-cookie").map(|v| v.to_str().unwrap().split(';').next().unwrap().to_string());
        let status = r.status().as_u16();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        let csrf = body["csrf_token"].as_str().unwrap_or("").to_string();
        Reply { status, session: cookie.clone().map(|c| Session { cookie: c, csrf }), body, cookie }
    }

    pub async fn send(&self, who: &str, method: reqwest::Method, path: &str, body: Option<Value>) -> Res {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if !who.is_empty() && who != "anonymous" {
            req = req.bearer_auth(self.token(who));
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        Res::from(req.send().await.unwrap()).await
    }

    pub async fn get(&self, who: &str, path: &str) -> Res {
        self.send(who, reqwest::Method::GET, path, None).await
    }

    pub async fn post(&self, who: &str, path: &str, body: Value) -> Res {
        self.send(who, reqwest::Method::POST, path, Some(body)).await
    }

    pub async fn send_session(&self, method: reqwest::Method, path: &str, s: &Session, body: Option<Value>) -> Res {
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.base))
            .header("cookie", &s.cookie)
            .header("x-csrf-token", &s.csrf);
        if let Some(b) = body {
            req = req.json(&b);
        }
        Res::from(req.send().await.unwrap()).await
    }

    pub async fn get_session(&self, path: &str, s: &Reply<Session>) -> Res {
        self.send_session(reqwest::Method::GET, path, s.session.as_ref().unwrap(), None).await
    }

    pub async fn post_session<S: AsSession>(&self, path: &str, s: &S, body: Value) -> Res {
        self.send_session(reqwest::Method::POST, path, s.as_session(), Some(body)).await
    }

    /// Starts a quick-check run as `who`; returns its id.
    pub async fn start_check(&self, who: &str) -> String {
        let r = self.post(who, "/api/v1/runs", json!({"template": "quick-check", "name": "check"})).await;
        assert_eq!(r.status, 201, "{:?}", r.body);
        r.body["run"].as_str().unwrap().to_string()
    }

    /// Any open seeded vendor-onboarding run.
    pub async fn seeded_open_run(&self) -> String {
        let r = self.get("admin", "/api/v1/runs?template=vendor-onboarding&status=open").await;
        r.body["items"][0]["id"].as_str().unwrap().to_string()
    }

    pub async fn stop(mut self) {
        if let Some(r) = self.running.take() {
            r.shutdown().await;
        }
    }
}

#[derive(Debug, Clone)]
pub struct Session {
    pub cookie: String,
    pub csrf: String,
}

pub trait AsSession {
    fn as_session(&self) -> &Session;
}
impl AsSession for Session {
    fn as_session(&self) -> &Session {
        self
    }
}
impl AsSession for Reply<Session> {
    fn as_session(&self) -> &Session {
        self.session.as_ref().unwrap()
    }
}

#[derive(Debug)]
pub struct Reply<T> {
    pub status: u16,
    pub session: Option<T>,
    pub body: Value,
    pub cookie: Option<String>,
}

#[derive(Debug)]
pub struct Res {
    pub status: u16,
    pub content_type: String,
    pub body: Value,
    /// The raw body, for binary responses such as evidence packs.
    pub bytes: Vec<u8>,
    pub cookie: Option<String>,
}

impl Res {
    pub async fn from(r: reqwest::Response) -> Res {
        let status = r.status().as_u16();
        let content_type = r.headers().get("content-type").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
        let cookie = r.headers().get("set-cookie").map(|v| v.to_str().unwrap().split(';').next().unwrap().to_string());
        let bytes = r.bytes().await.map(|b| b.to_vec()).unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Res { status, content_type, body, bytes, cookie }
    }
}

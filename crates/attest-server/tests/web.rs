//! The web pages over a real server, as a browser without JavaScript uses
//! them: forms posted urlencoded with the CSRF token, redirects followed by
//! hand, and what the page says checked in its HTML.
#![allow(clippy::unwrap_used)]

mod common;

use common::browser::{Browser, Page};

use serde_json::json;

/// Adds a person through the API and gives them a password through the web forms.
async fn person(s: &common::Server, email: &str, roles: &[&str], password: &str) -> Browser {
    let r = s.post("admin", "/api/v1/people", json!({"email": email, "roles": roles})).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let otp = r.body["one_time_password"].as_str().unwrap().to_string();
    let mut b = Browser::new(&s.base);
    let page = b.sign_in(email, &otp).await;
    assert!(page.body.contains("Choose your own password"), "a one-time password leads to the password form");
    let csrf = page.csrf();
    let r = b
        .post(
            "/account/password",
            &[("csrf", &csrf), ("current_password", &otp), ("new_password", password), ("confirm_password", password)],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    b
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_in_shows_messages_beside_the_fields_and_leads_to_my_work() {
    let s = common::Server::start().await;
    let mut b = Browser::new(&s.base);
    let r = b.get("/runs").await;
    assert_eq!((r.status, r.location.as_str()), (303, "/login?next=/runs"), "pages send strangers to sign in");
    let csrf = b.get("/login").await.csrf();
    let r = b.post("/login", &[("csrf", csrf.as_str()), ("email", ""), ("password", "")]).await;
    assert_eq!(r.status, 422);
    assert!(r.body.contains(r#"id="err-email""#) && r.body.contains("Enter your email address"), "{}", r.body);
    assert_eq!(r.csrf(), csrf, "the form keeps the token the browser holds");
    let wrong = [("csrf", csrf.as_str()), ("email", "admin@example.com"), ("password", "wrong password!")];
    let r = b.post("/login", &wrong).await;
    assert_eq!(r.status, 422);
    assert!(r.body.contains("The email or the password is wrong"));
    assert!(r.body.contains(r#"value="admin@example.com""#), "the email stays as typed");
    let home = b.sign_in("admin@example.com", &s.admin_password).await;
    assert_eq!(home.status, 200, "{}", home.body);
    assert!(home.body.contains("<h1>My work</h1>"));
    assert!(home.body.contains("Sign out"));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cross_site_sign_in_post_is_refused_and_signs_no_one_in() {
    let s = common::Server::start().await;
    let good = [("email", "admin@example.com"), ("password", s.admin_password.as_str()), ("next", "/")];
    // Another site can make a browser post the form, but has neither the cookie nor a token.
    let mut victim = Browser::new(&s.base);
    let r = victim.post("/login", &good).await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains("This sign-in form has expired or was sent from another site"), "{}", r.body);
    assert!(!victim.cookies.contains_key("attest_session"), "no session is set");
    // A token the attacker got from its own visit does not match the victim's cookie.
    let mut attacker = Browser::new(&s.base);
    let theirs = attacker.get("/login").await.csrf();
    victim.get("/login").await;
    let r = victim.post("/login", &[&[("csrf", theirs.as_str())], &good[..]].concat()).await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(!victim.cookies.contains_key("attest_session"), "no session is set");
    // A token that is not the server's own is refused even when cookie and field agree.
    let mut forger = Browser::new(&s.base);
    forger.cookies.insert("attest_login_csrf".into(), "1.forged.00".into());
    let r = forger.post("/login", &[&[("csrf", "1.forged.00")], &good[..]].concat()).await;
    assert_eq!(r.status, 403, "{}", r.body);
    // The refused form carries a fresh token, with which the same browser signs in.
    let csrf = r.csrf();
    let r = forger.post("/login", &[&[("csrf", csrf.as_str())], &good[..]].concat()).await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(forger.cookies.contains_key("attest_session"));
    assert!(!forger.cookies.contains_key("attest_login_csrf"), "signing in drops the form's token");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_form_without_the_csrf_token_is_refused_and_changes_nothing() {
    let s = common::Server::start().await;
    let mut b = Browser::new(&s.base);
    b.sign_in("admin@example.com", &s.admin_password).await;
    let before = s.get("admin", "/api/v1/runs?template=quick-check").await.body["items"].as_array().unwrap().len();
    let r = b.post("/runs", &[("template", "quick-check")]).await;
    assert_eq!(r.status, 403);
    assert!(r.body.contains("This form has expired"));
    let r = b.post("/runs", &[("template", "quick-check"), ("csrf", "not-the-token")]).await;
    assert_eq!(r.status, 403);
    let after = s.get("admin", "/api/v1/runs?template=quick-check").await.body["items"].as_array().unwrap().len();
    assert_eq!(before, after);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_is_worked_through_its_page_with_the_engines_messages_beside_fields() {
    let s = common::Server::start().await;
    let mut rita = person(&s, "rita.web@example.com", &["requester"], "rita's long password").await;
    let mut fin = person(&s, "fin.web@example.com", &["finance-approver"], "fin's long password").await;
    // Start the vendor-onboarding example.
    let form = rita.get("/runs/new").await;
    assert!(form.body.contains("Vendor onboarding"));
    let csrf = form.csrf();
    let r = rita.post("/runs", &[("csrf", &csrf), ("template", "")]).await;
    assert_eq!(r.status, 422);
    assert!(r.body.contains("Choose the template to run"));
    let r = rita.post("/runs", &[("csrf", &csrf), ("template", "vendor-onboarding"), ("name", "Web GmbH")]).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let run_path = r.location.split('?').next().unwrap().to_string();
    let run = rita.get(&r.location).await;
    assert!(run.body.contains("Run started.") && run.body.contains("Web GmbH"));
    let task = format!("{run_path}/tasks/request");
    // A bad number is refused by the engine, shown beside the field, and nothing is stored.
    let events_before = rita.get(&run_path).await.body.matches("proof #").count()
        + rita.get(&run_path).await.body.matches("entry #").count();
    let r = rita
        .post(
            &task,
            &[
                ("csrf", &csrf),
                ("shown", "vendor_name"),
                ("f.vendor_name", "Web GmbH"),
                ("shown", "annual_spend"),
                ("f.annual_spend", "lots"),
                ("action", "save"),
            ],
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(r.body.contains(r#"id="err-annual_spend""#), "the message sits beside the field: {}", r.body);
    assert!(r.body.contains(r#"value="lots""#), "the value stays as typed");
    let after = rita.get(&run_path).await;
    assert_eq!(events_before, after.body.matches("entry #").count() + after.body.matches("proof #").count());
    // Completing without the required contract names that field.
    let r = rita
        .post(
            &task,
            &[
                ("csrf", &csrf),
                ("shown", "vendor_name"),
                ("f.vendor_name", "Web GmbH"),
                ("shown", "annual_spend"),
                ("f.annual_spend", "25000"),
                ("shown", "personal_data"),
                ("action", "complete"),
            ],
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(r.body.contains(r#"id="err-contract""#), "{}", r.body);
    // Saving a spend over 10,000 makes the finance approval appear.
    let r = rita
        .post(
            &task,
            &[
                ("csrf", &csrf),
                ("shown", "vendor_name"),
                ("f.vendor_name", "Web GmbH"),
                ("shown", "annual_spend"),
                ("f.annual_spend", "25000"),
                ("shown", "personal_data"),
                ("action", "save"),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let page = rita.get(&run_path).await;
    assert!(!page.body.contains(r#"<li class="task st-hidden" id="task-finance_approval""#), "{}", page.body);
    // Upload the contract and complete.
    let multipart = reqwest::multipart::Form::new()
        .text("csrf", csrf.clone())
        .text("field", "contract")
        .part("file", reqwest::multipart::Part::bytes(b"%PDF-1.4 contract".to_vec()).file_name("contract.pdf"));
    let r = rita
        .client
        .post(format!("{}{task}/evidence", s.base))
        .header("cookie", rita.cookie().unwrap())
        .multipart(multipart)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303, "{}", r.text().await.unwrap());
    let page = rita.get(&run_path).await;
    let sha = attest_core_sha(b"%PDF-1.4 contract");
    assert!(page.body.contains(&sha), "the page shows the file's SHA-256");
    let r = rita.post(&task, &[("csrf", &csrf), ("action", "complete")]).await;
    assert_eq!(r.status, 303, "{}", r.body);
    // The approver sees it in My work; rejecting without a comment is refused beside the comment box.
    let home = fin.get("/").await;
    assert!(home.body.contains("Finance approval") && home.body.contains("Web GmbH"), "{}", home.body);
    let fcsrf = home.csrf();
    let decision = format!("{run_path}/tasks/finance_approval/decision");
    let r = fin.post(&decision, &[("csrf", &fcsrf), ("decision", "reject"), ("comment", "")]).await;
    assert_eq!(r.status, 422);
    assert!(r.body.contains(r#"id="err-comment""#), "{}", r.body);
    let r = fin.post(&decision, &[("csrf", &fcsrf), ("decision", "reject"), ("comment", "Wrong spend")]).await;
    assert_eq!(r.status, 303);
    let page = rita.get(&run_path).await;
    assert!(page.body.contains("in rework"), "{}", page.body);
    s.stop().await;
}

fn attest_core_sha(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(bytes))
}

async fn ledger_size(s: &common::Server) -> u64 {
    s.get("admin", "/api/v1/audit/proofs/inclusion?index=0").await.body["size"].as_u64().unwrap()
}

/// Asserts a page came back with status 422 and a message beside `field`.
fn beside(page: &Page, field: &str) {
    assert_eq!(page.status, 422, "{}", page.body);
    assert!(page.body.contains(&format!(r#"id="err-{field}""#)), "no message beside {field}: {}", page.body);
    assert!(
        page.body.contains(&format!(r#"aria-describedby="err-{field}""#))
            || page.body.contains(&format!("err-{field}\""))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_form_puts_bad_input_beside_its_field_and_stores_nothing() {
    let s = common::Server::start().await;
    let mut b = Browser::new(&s.base);
    let home = b.sign_in("admin@example.com", &s.admin_password).await;
    let csrf = home.csrf();
    let run = s.start_check("admin").await;
    let before = ledger_size(&s).await;
    let people_before = s.get("admin", "/api/v1/people").await.body["items"].as_array().unwrap().len();

    beside(&b.post("/admin/people", &[("csrf", &csrf), ("email", "not an email")]).await, "email");
    beside(
        &b.post("/admin/people", &[("csrf", &csrf), ("email", "ok@example.com"), ("roles", "Bad Role!")]).await,
        "roles",
    );
    beside(&b.post("/admin/people/rita@example.com/roles", &[("csrf", &csrf), ("role", "NO WAY")]).await, "role");
    beside(&b.post("/admin/tokens", &[("csrf", &csrf), ("name", ""), ("access", "member")]).await, "name");
    beside(&b.post("/admin/tokens", &[("csrf", &csrf), ("name", "ci"), ("access", "root")]).await, "access");
    beside(&b.post("/runs", &[("csrf", &csrf), ("template", "no-such-template")]).await, "template");
    beside(&b.post(&format!("/runs/{run}/cancel"), &[("csrf", &csrf), ("reason", " ")]).await, "reason");
    beside(&b.post(&format!("/runs/{run}/tasks/check/comments"), &[("csrf", &csrf), ("text", "")]).await, "text");
    beside(
        &b.post(
            "/account/password",
            &[("csrf", &csrf), ("current_password", "x"), ("new_password", "short"), ("confirm_password", "short")],
        )
        .await,
        "new_password",
    );
    beside(&b.get("/audit/pack?from=2026-13-01&to=2026-01-31").await, "from");
    beside(&b.get("/runs?status=paused").await, "status");
    beside(&b.get("/runs?assignee=nobody@example.com").await, "assignee");

    assert_eq!(ledger_size(&s).await, before, "no refused form wrote to the ledger");
    let people_after = s.get("admin", "/api/v1/people").await.body["items"].as_array().unwrap().len();
    assert_eq!(people_before, people_after);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_preview_tells_which_fields_and_tasks_typed_values_show_without_storing_them() {
    let s = common::Server::start().await;
    let mut b = Browser::new(&s.base);
    let home = b.sign_in("admin@example.com", &s.admin_password).await;
    let csrf = home.csrf();
    let r = b.post("/runs", &[("csrf", &csrf), ("template", "vendor-onboarding")]).await;
    let run_path = r.location.split('?').next().unwrap().to_string();
    let before = ledger_size(&s).await;
    let preview = |spend: &'static str, personal: bool| {
        let mut form = vec![
            ("csrf", csrf.clone()),
            ("shown", "annual_spend".into()),
            ("f.annual_spend", spend.into()),
            ("shown", "personal_data".into()),
        ];
        if personal {
            form.push(("f.personal_data", "true".into()));
        }
        form
    };
    let url = format!("{}{run_path}/tasks/request/preview", s.base);
    let ask = |form: Vec<(&'static str, String)>| {
        let (client, url, cookie) = (b.client.clone(), url.clone(), b.cookie().unwrap());
        async move {
            let r = client.post(url).header("cookie", cookie).form(&form).send().await.unwrap();
            assert_eq!(r.status().as_u16(), 200);
            r.json::<serde_json::Value>().await.unwrap()
        }
    };
    let low = ask(preview("500", false)).await;
    assert_eq!(low["tasks"]["finance_approval"], false);
    assert_eq!(low["tasks"]["security_review"], false);
    let high = ask(preview("25000", true)).await;
    assert_eq!(high["tasks"]["finance_approval"], true);
    assert_eq!(high["tasks"]["security_review"], true);
    assert_eq!(high["fields"]["risk"], true);
    assert_eq!(ledger_size(&s).await, before, "a preview stores nothing");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_auditor_sees_runs_and_audit_pages_without_any_form_that_changes_something() {
    let s = common::Server::start().await;
    let run = s.start_check("admin").await;
    let mut audrey = person(&s, "audrey.web@example.com", &["auditor"], "audrey's long password").await;
    let page = audrey.get(&format!("/runs/{run}")).await;
    assert_eq!(page.status, 200);
    assert!(
        !page.body.contains("Complete task")
            && !page.body.contains("Add a comment")
            && !page.body.contains("Cancel run")
    );
    assert!(page.body.contains("Download evidence pack") && page.body.contains("proof #"));
    let audit = audrey.get("/audit").await;
    assert_eq!(audit.status, 200);
    assert!(audit.body.contains("verifier-key"));
    let verified = audrey.get("/audit/verify").await;
    assert!(verified.body.contains("Verified"), "{}", verified.body);
    let csrf = audit.csrf();
    let r = audrey.post(&format!("/runs/{run}/tasks/check/comments"), &[("csrf", &csrf), ("text", "hi")]).await;
    assert_eq!(r.status, 403, "an auditor changes nothing");
    assert!(audrey.get("/admin/people").await.status == 403);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_runs_list_filters_by_assignee_and_exports_what_it_shows_as_csv() {
    let s = common::Server::start().await;
    let mut b = Browser::new(&s.base);
    let home = b.sign_in("admin@example.com", &s.admin_password).await;
    let r = b.post("/runs", &[("csrf", &home.csrf()), ("template", "quick-check"), ("name", "check")]).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let run = r.location.trim_start_matches("/runs/").split('?').next().unwrap().to_string();
    let mine = b.get("/runs?template=quick-check&assignee=admin@example.com").await;
    assert_eq!(mine.status, 200);
    assert!(mine.body.contains(&format!("/runs/{run}")), "the starter's open task is theirs: {}", mine.body);
    let theirs = b.get("/runs?template=quick-check&assignee=rita@example.com").await;
    assert!(!theirs.body.contains(&format!("/runs/{run}")), "rita has no task in it");
    assert!(theirs.body.contains("No runs match."));
    // Each filter alone and together (the SQL holds only the filters given).
    let open = b.get("/runs?template=quick-check&status=open").await;
    assert!(open.body.contains(&format!("/runs/{run}")), "{}", open.body);
    let completed = b.get("/runs?template=quick-check&status=completed").await;
    assert!(!completed.body.contains(&format!("/runs/{run}")), "the run is open");
    let other = b.get("/runs?template=vendor-onboarding").await;
    assert!(!other.body.contains(&format!("/runs/{run}")), "another template's list");
    let overdue = b.get("/runs?overdue=1").await;
    assert!(!overdue.body.contains(&format!("/runs/{run}")), "nothing in the new run is due yet");
    let csv = b.get("/runs.csv?template=quick-check").await;
    assert_eq!(csv.status, 200);
    let lines: Vec<&str> = csv.body.lines().collect();
    assert_eq!(lines[0], "id,name,template,version,status,starter,started_at,updated_at,finished_at");
    assert_eq!(lines.len(), 2, "{}", csv.body);
    assert!(lines[1].starts_with(&format!("{run},check,quick-check,1,open,admin@example.com,")));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_form_with_several_problems_shows_each_beside_its_field_and_stores_nothing() {
    let s = common::Server::start().await;
    let mut rita = person(&s, "rita.many@example.com", &["requester"], "rita's long password").await;
    let csrf = rita.get("/runs/new").await.csrf();
    let r = rita.post("/runs", &[("csrf", &csrf), ("template", "vendor-onboarding"), ("name", "Many GmbH")]).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let run_path = r.location.split('?').next().unwrap().to_string();
    let run_id = run_path.trim_start_matches("/runs/").to_string();
    let events_before = s.get("admin", &format!("/api/v1/runs/{run_id}/events")).await.body.to_string();
    let r = rita
        .post(
            &format!("{run_path}/tasks/request"),
            &[
                ("csrf", &csrf),
                ("shown", "vendor_name"),
                ("f.vendor_name", ""),
                ("shown", "vendor_website"),
                ("f.vendor_website", "not a web address"),
                ("shown", "annual_spend"),
                ("f.annual_spend", "lots"),
                ("shown", "personal_data"),
                ("action", "complete"),
            ],
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    // Every problem at once, each beside its own field: the engine's first
    // refusal (the website) and the ones its field checks found after it.
    for field in ["vendor_name", "vendor_website", "annual_spend", "contract"] {
        assert!(r.body.contains(&format!(r#"id="err-{field}""#)), "no message beside {field}: {}", r.body);
        assert!(r.body.matches(&format!(r#"err-{field}""#)).count() >= 2, "{field}'s input names its message");
    }
    assert!(r.body.contains("Field &#39;vendor_name&#39; on task &#39;request&#39; is required"), "{}", r.body);
    assert!(r.body.contains("4 fields need a change"), "{}", r.body);
    assert_eq!(r.body.matches(" autofocus").count(), 1, "one field takes the focus");
    assert!(r.body.contains(r#"value="lots""#) && r.body.contains(r#"value="not a web address""#), "typed values stay");
    let events_after = s.get("admin", &format!("/api/v1/runs/{run_id}/events")).await.body.to_string();
    assert_eq!(events_before, events_after, "nothing is stored");
    // Saving (not completing) asks for no required field: only the bad values.
    let r = rita
        .post(
            &format!("{run_path}/tasks/request"),
            &[
                ("csrf", &csrf),
                ("shown", "vendor_name"),
                ("f.vendor_name", ""),
                ("shown", "annual_spend"),
                ("f.annual_spend", "-3"),
                ("action", "save"),
            ],
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(r.body.contains(r#"id="err-annual_spend""#), "{}", r.body);
    assert!(!r.body.contains(r#"id="err-vendor_name""#) && !r.body.contains(r#"id="err-contract""#), "{}", r.body);
    s.stop().await;
}

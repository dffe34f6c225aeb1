//! `attest user add | list` and `attest role grant | revoke`, and what roles
//! change about who may act.
//!
//! Exit codes, as the CLI classes them: a duplicate person (or a role granted
//! twice) is a conflict, exit 1; a malformed email or role key, or a person
//! that does not exist, is bad input, exit 2.

mod common;

use common::*;
use serde_json::Value;

const ROLE_TASK: &str = r#"
format: attest/v1
key: review
name: Review
roles: [reviewer]
tasks:
  - key: review
    name: Review it
    assignee: role:reviewer
    fields:
      - { key: ok, label: OK, type: checkbox, required: true }
"#;

fn users(ws: &Ws) -> Vec<Value> {
    ws.json(&["user", "list"]).as_array().expect("user list").clone()
}

fn user<'a>(list: &'a [Value], email: &str) -> &'a Value {
    list.iter().find(|u| u["email"] == email).unwrap_or_else(|| panic!("no {email} in {list:?}"))
}

#[test]
fn user_add_and_list() {
    let ws = Ws::new();
    let out =
        ws.json(&["user", "add", "Ann.Lee@Example.COM", "--name", "Ann Lee", "--role", "reviewer", "--role", "it"]);
    assert_eq!(out["email"], "ann.lee@example.com", "emails are stored in lower case");
    assert_eq!(out["roles"], serde_json::json!(["reviewer", "it"]));
    ws.json(&["user", "add", "root@example.com", "--admin"]);
    let list = users(&ws);
    assert_eq!(list.len(), 3, "the init admin and two more: {list:?}");
    let admin = user(&list, ADMIN);
    assert_eq!(admin["admin"], true);
    let ann = user(&list, "ann.lee@example.com");
    assert_eq!(ann["name"], "Ann Lee");
    assert_eq!(ann["admin"], false);
    let mut roles: Vec<&str> =
        ann["roles"].as_array().expect("roles").iter().map(|r| r.as_str().expect("role")).collect();
    roles.sort_unstable();
    assert_eq!(roles, ["it", "reviewer"]);
    let root = user(&list, "root@example.com");
    assert_eq!(root["admin"], true);
    assert_eq!(root["name"], "root", "the name defaults to the address's local part");
    let text = ws.cmd(&["user", "list"]).ok();
    assert_eq!(text.stdout.lines().count(), 3, "{}", text.stdout);
    assert!(
        text.stdout.lines().any(|l| l.starts_with("ann.lee@example.com") && l.contains("Ann Lee")),
        "{}",
        text.stdout
    );
}

#[test]
fn duplicate_user_is_a_conflict_exit_1() {
    let ws = Ws::new();
    ws.json(&["user", "add", "ann@example.com", "--name", "Ann"]);
    for email in ["ann@example.com", "ANN@example.com", " ann@example.com "] {
        let e = ws.cmd_json(&["user", "add", email, "--name", "Other Ann"]).expect_code(1).error_json();
        assert_eq!(e["error"], "conflict", "{e}");
        assert!(e["message"].as_str().is_some_and(|m| m.contains("already exists")), "{e}");
    }
    let text = ws.cmd(&["user", "add", "ann@example.com"]).expect_code(1);
    assert!(text.stderr.starts_with("error: conflict: "), "{}", text.stderr);
    let list = users(&ws);
    assert_eq!(list.len(), 2);
    assert_eq!(user(&list, "ann@example.com")["name"], "Ann", "the first person is unchanged");
    // The init admin is a person like any other.
    ws.cmd(&["user", "add", ADMIN]).expect_code(1);
}

#[test]
fn invalid_email_is_bad_input_exit_2() {
    let ws = Ws::new();
    for email in ["not-an-email", "two@@example.com", "a b@example.com", "@example.com", "ann@", ""] {
        let out = ws.cmd_json(&["user", "add", email]).expect_code(2);
        let e = out.error_json();
        assert_eq!(e["error"], "bad_input", "{email:?}: {e}");
    }
    let text = ws.cmd(&["user", "add", "not-an-email"]).expect_code(2);
    assert!(text.stderr.contains("'not-an-email' is not an email address"), "{}", text.stderr);
    // Invalid role keys are bad input too, and add nobody.
    let e = ws.cmd_json(&["user", "add", "ok@example.com", "--role", "Bad Role"]).expect_code(2).error_json();
    assert!(e["message"].as_str().is_some_and(|m| m.contains("not a role key")), "{e}");
    assert_eq!(users(&ws).len(), 1, "no one was added");
    ws.cmd(&["role", "grant", "not-an-email", "reviewer"]).expect_code(2);
    ws.cmd(&["inbox", "--as", "not-an-email"]).expect_code(2);
}

#[test]
fn the_same_role_given_twice_adds_the_person_once_with_it() {
    let ws = Ws::new();
    let out = ws.json(&["user", "add", "ann@example.com", "--role", "reviewer", "--role", "reviewer"]);
    assert_eq!(out["roles"], serde_json::json!(["reviewer"]));
    let list = users(&ws);
    assert_eq!(list.len(), 2);
    assert_eq!(user(&list, "ann@example.com")["roles"], serde_json::json!(["reviewer"]));
}

#[test]
fn grant_and_revoke_roles() {
    let ws = Ws::new();
    ws.user("ann@example.com", &[]);
    let g = ws.json(&["role", "grant", "ann@example.com", "reviewer"]);
    assert_eq!((g["role"].clone(), g["granted"].clone()), (Value::from("reviewer"), Value::Bool(true)));
    assert_eq!(user(&users(&ws), "ann@example.com")["roles"], serde_json::json!(["reviewer"]));
    // Twice is a conflict; revoking what is not held, or for nobody, is bad input.
    let e = ws.cmd_json(&["role", "grant", "ann@example.com", "reviewer"]).expect_code(1).error_json();
    assert_eq!(e["error"], "conflict");
    let r = ws.json(&["role", "revoke", "ann@example.com", "reviewer"]);
    assert_eq!(r["granted"], false);
    assert_eq!(user(&users(&ws), "ann@example.com")["roles"], serde_json::json!([]));
    ws.cmd_json(&["role", "revoke", "ann@example.com", "reviewer"]).expect_code(2);
    let e = ws.cmd_json(&["role", "grant", "ghost@example.com", "reviewer"]).expect_code(2).error_json();
    assert_eq!(e["error"], "not_found");
    ws.cmd_json(&["role", "grant", "ann@example.com", "Not A Role"]).expect_code(2);
    ws.assert_replay_and_verify(&[]);
}

#[test]
fn roles_decide_who_may_act_and_what_the_inbox_shows() {
    let ws = Ws::new();
    ws.user("ann@example.com", &[]);
    ws.user("rex@example.com", &["reviewer"]);
    ws.publish_text("review.yaml", ROLE_TASK);
    let first = ws.start("review", "ann@example.com");
    let second = ws.start("review", "ann@example.com");

    // Without the role: refused, and nothing in the inbox.
    let e = ws
        .cmd_json(&["task", "complete", &first, "review", "--as", "ann@example.com", "ok=true"])
        .expect_code(1)
        .error_json();
    assert_eq!(e["rule"], "not-assignee", "{e}");
    assert!(ws.inbox("ann@example.com").is_empty());
    assert_eq!(ws.inbox("rex@example.com").len(), 2);

    // Granted: the tasks show up and may be completed.
    ws.json(&["role", "grant", "ann@example.com", "reviewer"]);
    assert_eq!(ws.inbox_tasks("ann@example.com", &first), ["review"]);
    assert_eq!(ws.inbox_tasks("ann@example.com", &second), ["review"]);
    ws.json(&["task", "complete", &first, "review", "--as", "ann@example.com", "ok=true"]);
    assert_eq!(ws.status(&first), "completed");
    assert_eq!(ws.inbox("ann@example.com").len(), 1);

    // Revoked: refused again, and gone from the inbox; others keep theirs.
    ws.json(&["role", "revoke", "ann@example.com", "reviewer"]);
    let e = ws
        .cmd_json(&["task", "complete", &second, "review", "--as", "ann@example.com", "ok=true"])
        .expect_code(1)
        .error_json();
    assert_eq!(e["rule"], "not-assignee", "{e}");
    assert!(ws.inbox("ann@example.com").is_empty());
    assert_eq!(ws.inbox_tasks("rex@example.com", &second), ["review"]);
    ws.json(&["task", "complete", &second, "review", "--as", "rex@example.com", "ok=true"]);

    // An admin added later may act on anything, as a recorded override.
    let third = ws.start("review", "ann@example.com");
    ws.json(&["user", "add", "root@example.com", "--admin"]);
    ws.json(&["task", "complete", &third, "review", "--as", "root@example.com", "ok=true"]);
    let show = ws.show(&third);
    assert_eq!(events(&show, "task_completed", Some("review"))[0]["overridden"], true);
    ws.assert_replay_and_verify(&[&first, &second, &third]);
}

#[test]
fn acting_as_someone_not_in_the_workspace_is_bad_input() {
    let ws = Ws::new();
    ws.publish_text("review.yaml", ROLE_TASK);
    let e = ws.cmd_json(&["run", "start", "review", "--as", "ghost@example.com"]).expect_code(2).error_json();
    assert_eq!(e["error"], "not_found");
    assert!(e["message"].as_str().is_some_and(|m| m.contains("no person with email ghost@example.com")), "{e}");
    ws.cmd(&["inbox", "--as", "ghost@example.com"]).expect_code(2);
    assert_eq!(ws.json(&["run", "list"]).as_array().map(Vec::len), Some(0));
}

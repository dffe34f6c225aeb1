//! `attest template validate | publish | list | show`: versions named by
//! content, no-op republishing, new versions on change, and runs pinned to
//! the version they started on.

mod common;

use common::*;
use serde_json::Value;

const LAPTOP: &str = r#"format: attest/v1
key: laptop-request
name: Laptop request
roles: [it]
tasks:
  - key: request
    name: Ask for a laptop
    assignee: starter
    fields:
      - { key: model, label: Model, type: select, options: [standard, developer], required: true }
      - { key: budget, label: Budget, type: number, min: 0, max: 10000 }
      - { key: reason, label: Why, type: textarea, min_length: 10,
          show_when: { field: model, op: is, value: developer } }
  - key: ship
    name: Ship the laptop
    assignee: role:it
    due: { after: task:request, in: 3d, business_days: true }
    fields:
      - { key: asset_tag, label: Asset tag, type: text, pattern: "AT-[0-9]{6}", required: true }
"#;

/// The same content: comments, block style, other key order and quoting,
/// defaults written out, and another spelling of the same numbers.
const LAPTOP_REFORMATTED: &str = r#"
# The laptop process, written differently.
name: 'Laptop request'
key: "laptop-request"
format: attest/v1
roles:
  - it
tasks:
  - name: Ask for a laptop
    key: request
    stop: false            # the default
    assignee: starter
    fields:
      - key: model
        type: select
        label: Model
        required: true
        options:
          - standard
          - developer
      - key: budget
        label: Budget
        type: number
        required: false
        min: 0.0
        max: 1e4
      - key: reason
        label: Why
        type: textarea
        min_length: 10
        show_when:
          op: is
          field: model
          value: developer
  - key: ship
    name: Ship the laptop
    assignee: role:it
    due:
      in: 3d
      after: task:request
      business_days: true
    fields:
      - key: asset_tag
        label: Asset tag
        type: text
        pattern: 'AT-[0-9]{6}'
        required: true
"#;

fn publish(ws: &Ws, name: &str, content: &str) -> Value {
    ws.publish_text(name, content)
}

#[test]
fn validate_reports_key_task_count_and_hash() {
    let ws = Ws::new();
    let path = ws.write("laptop.yaml", LAPTOP);
    let v = ws.json(&["template", "validate", path_str(&path)]);
    assert_eq!(v["valid"], true);
    assert_eq!(v["key"], "laptop-request");
    assert_eq!(v["tasks"], 2);
    let hash = v["content_hash"].as_str().expect("hash");
    assert!(hash.starts_with("sha256:") && hash.len() == 7 + 64, "{hash}");
    let text = ws.cmd(&["template", "validate", path_str(&path)]).ok();
    assert!(text.stdout.contains("valid (2 tasks"), "{}", text.stdout);
    // Validating publishes nothing.
    assert_eq!(ws.json(&["template", "list"]).as_array().map(Vec::len), Some(0));
    // The hash validate prints is the one publish records.
    assert_eq!(ws.publish(&path)["content_hash"], hash);
}

#[test]
fn publish_list_and_show() {
    let ws = Ws::new();
    let p = publish(&ws, "laptop.yaml", LAPTOP);
    assert_eq!(p["key"], "laptop-request");
    assert_eq!(p["version"], 1);
    assert_eq!(p["unchanged"], false);
    let list = ws.json(&["template", "list"]);
    let list = list.as_array().expect("list");
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["key"], "laptop-request");
    assert_eq!(list[0]["latest_version"], 1);
    assert_eq!(list[0]["total_runs"], 0);
    let show = ws.json(&["template", "show", "laptop-request"]);
    assert_eq!(show["version"], 1);
    assert_eq!(show["content_hash"], p["content_hash"]);
    assert_eq!(show["template"]["tasks"].as_array().map(Vec::len), Some(2));
    assert_eq!(show["template"]["tasks"][1]["fields"][0]["pattern"], "AT-[0-9]{6}");
    let text = ws.cmd(&["template", "show", "laptop-request"]).ok();
    assert!(text.stdout.contains("laptop-request v1: Laptop request"), "{}", text.stdout);
    assert!(text.stdout.contains("asset_tag: text *"), "{}", text.stdout);
    // Unknown keys and versions are bad input.
    let e = ws.cmd_json(&["template", "show", "nope"]).expect_code(2).error_json();
    assert_eq!(e["error"], "not_found");
    let e = ws.cmd_json(&["template", "show", "laptop-request", "--version", "2"]).expect_code(2).error_json();
    assert!(e["message"].as_str().is_some_and(|m| m.contains("no version 2")), "{e}");
}

#[test]
fn republishing_identical_content_is_a_no_op_whatever_its_form() {
    let ws = Ws::new();
    let first = publish(&ws, "laptop.yaml", LAPTOP);
    let hash = first["content_hash"].clone();

    let again = publish(&ws, "laptop-again.yaml", LAPTOP);
    assert_eq!((again["version"].clone(), again["unchanged"].clone()), (Value::from(1), Value::Bool(true)));

    let reformatted = publish(&ws, "laptop-reformatted.yaml", LAPTOP_REFORMATTED);
    assert_eq!(reformatted["version"], 1, "{reformatted}");
    assert_eq!(reformatted["unchanged"], true, "{reformatted}");
    assert_eq!(reformatted["content_hash"], hash);

    // The stored template, as JSON and as YAML, reads back as the same content.
    let stored = ws.json(&["template", "show", "laptop-request"]);
    let json_form = publish(&ws, "laptop.json", &serde_json::to_string_pretty(&stored["template"]).expect("json"));
    assert_eq!((json_form["version"].clone(), json_form["unchanged"].clone()), (Value::from(1), Value::Bool(true)));
    let yaml = ws.cmd(&["template", "show", "laptop-request", "--yaml"]).ok().stdout;
    let yaml_form = publish(&ws, "exported.yaml", &yaml);
    assert_eq!((yaml_form["version"].clone(), yaml_form["unchanged"].clone()), (Value::from(1), Value::Bool(true)));

    let text = ws.cmd(&["template", "publish", path_str(&ws.write("t.yaml", LAPTOP))]).ok();
    assert!(text.stdout.contains("v1 unchanged"), "{}", text.stdout);
    let list = ws.json(&["template", "list"]);
    assert_eq!(list[0]["latest_version"], 1, "no version was added: {list}");
    // Nothing was written to the ledger for the no-ops: the workspace, its
    // admin and one publication.
    let report = ws.json(&["audit", "verify"]);
    assert_eq!(report["ok"], true);
    assert_eq!(report["report"]["entries"], 3, "{report}");
}

#[test]
fn a_change_creates_v2_and_v1_stays_readable() {
    let ws = Ws::new();
    let v1 = publish(&ws, "laptop.yaml", LAPTOP);
    let changed = LAPTOP.replace("label: Asset tag", "label: Asset tag number");
    let v2 = publish(&ws, "laptop-v2.yaml", &changed);
    assert_eq!(v2["version"], 2);
    assert_eq!(v2["unchanged"], false);
    assert_ne!(v2["content_hash"], v1["content_hash"]);

    let old = ws.json(&["template", "show", "laptop-request", "--version", "1"]);
    assert_eq!(old["version"], 1);
    assert_eq!(old["content_hash"], v1["content_hash"]);
    assert_eq!(old["template"]["tasks"][1]["fields"][0]["label"], "Asset tag");
    let latest = ws.json(&["template", "show", "laptop-request"]);
    assert_eq!(latest["version"], 2);
    assert_eq!(latest["template"]["tasks"][1]["fields"][0]["label"], "Asset tag number");
    assert_eq!(ws.json(&["template", "list"])[0]["latest_version"], 2);

    // Republishing v1's content is a change relative to the latest: v3.
    let v3 = publish(&ws, "laptop-v3.yaml", LAPTOP);
    assert_eq!(v3["version"], 3);
    assert_eq!(v3["content_hash"], v1["content_hash"]);
}

#[test]
fn a_run_stays_pinned_to_the_version_it_started_on() {
    let ws = Ws::new();
    ws.user("ann@example.com", &[]);
    ws.user("ivan@example.com", &["it"]);
    publish(&ws, "laptop.yaml", LAPTOP);
    let old_run = ws.start("laptop-request", "ann@example.com");
    assert_eq!(ws.show(&old_run)["version"], 1);

    // v2 adds a required field to the request.
    let v2 = LAPTOP.replace(
        "      - { key: budget,",
        "      - { key: cost_center, label: Cost center, type: text, required: true }\n      - { key: budget,",
    );
    assert_eq!(publish(&ws, "laptop-v2.yaml", &v2)["version"], 2);
    let new_run = ws.start("laptop-request", "ann@example.com");
    assert_eq!(ws.show(&new_run)["version"], 2);
    assert_eq!(ws.show(&old_run)["version"], 1);

    // The new run needs the new field; the old run follows v1 to the end.
    let e = ws
        .cmd_json(&["task", "complete", &new_run, "request", "--as", "ann@example.com", "model=standard"])
        .expect_code(1)
        .error_json();
    assert_eq!(e["field"], "cost_center");
    let e = ws
        .cmd_json(&["task", "set", &old_run, "request", "--as", "ann@example.com", "cost_center=CC-1"])
        .expect_code(2)
        .error_json();
    assert_eq!(e["rule"], "unknown-field", "v1 has no cost_center: {e}");
    ws.json(&["task", "complete", &old_run, "request", "--as", "ann@example.com", "model=standard"]);
    ws.json(&["task", "complete", &old_run, "ship", "--as", "ivan@example.com", "asset_tag=AT-000001"]);
    let show = ws.show(&old_run);
    assert_eq!(show["status"], "completed");
    assert_eq!(show["version"], 1);
    let started = events(&show, "run_started", None);
    assert_eq!(started.len(), 1);
    assert_eq!(started[0]["version"], 1);
    let listed = ws.json(&["run", "list", "--template", "laptop-request"]);
    let versions: Vec<u64> =
        listed.as_array().expect("runs").iter().map(|r| r["template_version"].as_u64().expect("version")).collect();
    assert_eq!(versions, [2, 1], "newest first, each on its own version");
    ws.assert_replay_and_verify(&[&old_run, &new_run]);
}

#[test]
fn only_admins_and_process_owners_may_publish_as_themselves() {
    let ws = Ws::new();
    ws.user("ann@example.com", &[]);
    ws.user("po@example.com", &["process-owner"]);
    let path = ws.write("laptop.yaml", LAPTOP);
    let e =
        ws.cmd_json(&["template", "publish", path_str(&path), "--as", "ann@example.com"]).expect_code(1).error_json();
    assert_eq!(e["rule"], "not-permitted", "{e}");
    assert_eq!(ws.json(&["template", "list"]).as_array().map(Vec::len), Some(0));
    let p = ws.json(&["template", "publish", path_str(&path), "--as", "po@example.com"]);
    assert_eq!(p["version"], 1);
    assert_eq!(ws.json(&["template", "show", "laptop-request"])["published_by"], "po@example.com");
    let changed = ws.write("laptop-2.yaml", LAPTOP.replace("name: Laptop request", "name: Laptop order"));
    assert_eq!(ws.json(&["template", "publish", path_str(&changed), "--as", ADMIN])["version"], 2);
}

#[test]
fn an_invalid_template_is_not_published() {
    let ws = Ws::new();
    let bad = ws.write("bad.yaml", LAPTOP.replace("assignee: role:it", "assignee: role:ops"));
    let e = ws.cmd_json(&["template", "publish", path_str(&bad)]).expect_code(2).error_json();
    assert_eq!(e["error"], "invalid_template");
    let diags = e["diagnostics"].as_array().expect("diagnostics");
    assert_eq!(diags.len(), 1, "{e}");
    assert!(diags[0]["message"].as_str().is_some_and(|m| m.contains("'role:ops'")), "{e}");
    assert_eq!(ws.json(&["template", "list"]).as_array().map(Vec::len), Some(0));
}

//! Bad input of every kind gives a clear error and exit 2, never a panic
//! (every invocation is checked for "panicked" and exit 101) and never a hang.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

const GOOD: &str = r#"format: attest/v1
key: good
name: Good
roles: [checker]
tasks:
  - key: request
    name: Request
    assignee: starter
    fields:
      - { key: amount, label: Amount, type: number, required: true }
      - { key: urgent, label: Urgent, type: checkbox }
      - { key: due_on, label: Due on, type: date }
      - { key: helpers, label: Helpers, type: members, multiple: true }
      - { key: tags, label: Tags, type: multi_choice, options: [a, b] }
      - { key: proof, label: Proof, type: file }
  - key: check
    name: Check
    type: approval
    approves: [request]
    assignee: role:checker
"#;

const ANN: &str = "ann@example.com";

fn good_ws() -> (Ws, String) {
    let ws = Ws::new();
    ws.user(ANN, &[]);
    ws.publish_text("good.yaml", GOOD);
    let run = ws.start("good", ANN);
    (ws, run)
}

/// Validates a template written to a file and returns its diagnostics, after
/// checking exit 2 and that the text form gives each as `FILE:LINE:COL: ...`.
#[track_caller]
fn invalid(ws: &Ws, name: &str, content: &str) -> Vec<Value> {
    let path = ws.write(name, content);
    let body = ws.cmd_json(&["template", "validate", path_str(&path)]).expect_code(2).error_json();
    assert_eq!(body["error"], "invalid_template", "{body}");
    let diags = body["diagnostics"].as_array().expect("diagnostics").clone();
    assert!(!diags.is_empty());
    let text = ws.cmd(&["template", "validate", path_str(&path)]).expect_code(2);
    for d in &diags {
        let located = format!("{}:{}:{}: ", path_str(&path), d["line"], d["column"]);
        assert!(text.stderr.contains(&located), "text error should contain {located:?}:\n{}", text.stderr);
    }
    // Publishing refuses it the same way and publishes nothing.
    ws.cmd(&["template", "publish", path_str(&path)]).expect_code(2);
    diags
}

fn at(d: &Value) -> (u64, u64) {
    (d["line"].as_u64().expect("line"), d["column"].as_u64().expect("column"))
}

fn msg(d: &Value) -> &str {
    d["message"].as_str().expect("message")
}

// ----- templates -----

#[test]
fn malformed_yaml_names_line_and_column() {
    let ws = Ws::new();
    let diags = invalid(&ws, "indent.yaml", "format: attest/v1\nkey: x\n  name: X\n tasks: []\n");
    assert_eq!(diags.len(), 1);
    assert_eq!(at(&diags[0]), (3, 7));
    assert!(msg(&diags[0]).contains("mapping values are not allowed"), "{diags:?}");

    let diags = invalid(&ws, "quote.yaml", "format: attest/v1\nkey: x\nname: \"unterminated\ntasks: []\n");
    assert_eq!(diags.len(), 1);
    assert!(msg(&diags[0]).contains("quoted scalar"), "{diags:?}");
    assert!(diags[0]["line"].as_u64().is_some_and(|l| l >= 3), "{diags:?}");

    let diags = invalid(&ws, "broken.json", "{\"format\": \"attest/v1\", \"key\": \"x\",\n \"name\": }");
    assert_eq!(at(&diags[0]), (2, 10));

    // Wrong types say which key, with its line.
    let diags = invalid(&ws, "type.yaml", "format: attest/v1\nkey: x\nname: [a, b]\ntasks: []\n");
    assert_eq!(at(&diags[0]), (3, 7));
    assert!(msg(&diags[0]).contains("expected a string"), "{diags:?}");
}

#[test]
fn unknown_and_repeated_keys_are_errors() {
    let ws = Ws::new();
    let top = GOOD.replace("name: Good\n", "name: Good\nbogus: 1\n");
    let diags = invalid(&ws, "top.yaml", &top);
    assert_eq!(at(&diags[0]), (4, 1));
    assert!(msg(&diags[0]).contains("unknown field `bogus`"), "{diags:?}");

    let typo = GOOD.replace("    assignee: starter\n", "    asignee: starter\n");
    let diags = invalid(&ws, "typo.yaml", &typo);
    assert_eq!(diags[0]["line"], 8, "{diags:?}");
    assert!(msg(&diags[0]).contains("asignee"), "{diags:?}");

    let field = GOOD.replace("type: number, required: true", "type: number, required: true, min_length: 3");
    let diags = invalid(&ws, "field.yaml", &field);
    assert_eq!(diags[0]["line"], 10, "{diags:?}");
    assert!(msg(&diags[0]).contains("min_length"), "{diags:?}");

    let repeated = GOOD.replace("name: Good\n", "name: Good\nname: Again\n");
    let diags = invalid(&ws, "repeated.yaml", &repeated);
    assert!(msg(&diags[0]).contains("duplicate field `name`"), "{diags:?}");
    // YAML locates a repeated key at the mapping that holds it.
    assert!(diags[0]["line"].as_u64().is_some_and(|l| l >= 1), "{diags:?}");
    let repeated = GOOD.replace("    name: Request\n", "    name: Request\n    name: Again\n");
    let diags = invalid(&ws, "repeated-task.yaml", &repeated);
    assert!(msg(&diags[0]).contains("duplicate field `name`"), "{diags:?}");
    assert_eq!(diags[0]["path"], "tasks[0]", "{diags:?}");
}

#[test]
fn dangling_references_are_each_reported_with_their_place() {
    let ws = Ws::new();
    let t = r#"format: attest/v1
key: dangling
name: Dangling
roles: [checker]
tasks:
  - key: first
    name: First
    assignee: role:auditor
    show_when: { field: ghost, op: is, value: x }
  - key: early_approval
    name: Early approval
    type: approval
    approves: [later]
    assignee: role:checker
  - key: later
    name: Later
    assignee: starter
    due: { after: task:nowhere, in: 1d }
"#;
    let diags = invalid(&ws, "dangling.yaml", t);
    assert_eq!(diags.len(), 4, "every problem at once: {diags:#?}");
    let find = |path: &str| diags.iter().find(|d| d["path"] == path).unwrap_or_else(|| panic!("no {path}: {diags:#?}"));
    let role = find("tasks[0].assignee");
    assert_eq!(role["line"], 8);
    assert!(msg(role).contains("'role:auditor'") && msg(role).contains("not declared"), "{role}");
    let cond = find("tasks[0].show_when.field");
    assert_eq!(cond["line"], 9);
    assert!(msg(cond).contains("'ghost'") && msg(cond).contains("does not exist"), "{cond}");
    let approves = find("tasks[1].approves[0]");
    assert_eq!(approves["line"], 13);
    assert!(msg(approves).contains("'later', which comes after it"), "{approves}");
    let due = diags.iter().find(|d| msg(d).contains("nowhere")).unwrap_or_else(|| panic!("{diags:#?}"));
    assert_eq!(due["line"], 18);
    assert_eq!(ws.json(&["template", "list"]).as_array().map(Vec::len), Some(0));
}

#[test]
fn a_50_mb_template_is_refused_by_its_size() {
    let ws = Ws::new();
    // Real content: a valid template followed by 50 MB of comment lines.
    let path = ws.dir.path().join("huge.yaml");
    {
        use std::io::Write as _;
        let mut f = std::io::BufWriter::new(std::fs::File::create(&path).expect("create"));
        f.write_all(GOOD.as_bytes()).expect("write");
        let line = format!("# {}\n", "x".repeat(1021));
        for _ in 0..50 * 1024 {
            f.write_all(line.as_bytes()).expect("write");
        }
        f.flush().expect("flush");
    }
    let size = std::fs::metadata(&path).expect("metadata").len();
    assert!(size > 50 * 1024 * 1024);
    for cmd in ["validate", "publish"] {
        let started = Instant::now();
        let out = ws.cmd_json(&["template", cmd, path_str(&path)]).expect_code(2);
        assert!(started.elapsed() < Duration::from_secs(10), "refusing by size must not read the file");
        let e = out.error_json();
        let m = e["message"].as_str().expect("message");
        assert!(m.contains(&format!("is {size} bytes")) && m.contains("at most 1048576 bytes"), "{e}");
    }
    assert_eq!(ws.json(&["template", "list"]).as_array().map(Vec::len), Some(0));
}

#[test]
fn the_size_limit_is_exact() {
    let ws = Ws::new();
    let limit = 1024 * 1024;
    let mut at_limit = GOOD.to_string();
    at_limit.push('#');
    while at_limit.len() < limit - 1 {
        at_limit.push('x');
    }
    at_limit.push('\n');
    assert_eq!(at_limit.len(), limit);
    let ok = ws.write("at-limit.yaml", &at_limit);
    assert_eq!(ws.json(&["template", "validate", path_str(&ok)])["valid"], true);
    let over = ws.write("over.yaml", format!("{at_limit}\n"));
    let e = ws.cmd_json(&["template", "validate", path_str(&over)]).expect_code(2).error_json();
    assert!(e["message"].as_str().is_some_and(|m| m.contains("1048577 bytes")), "{e}");
}

#[test]
fn template_sources_that_are_not_regular_files_are_refused_without_reading() {
    let ws = Ws::new();
    // A device reports size 0 and never ends; a FIFO without a writer blocks.
    let out = ws.cmd_within(Duration::from_secs(20), &["template", "validate", "/dev/zero"]).expect_code(2);
    assert!(out.stderr.contains("/dev/zero"), "{}", out.stderr);
    let fifo = ws.dir.path().join("template.fifo");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
    assert!(made.success());
    let out = ws.cmd_within(Duration::from_secs(20), &["template", "publish", path_str(&fifo)]).expect_code(2);
    assert!(out.stderr.contains("template.fifo"), "{}", out.stderr);
    let out = ws.cmd(&["template", "validate", path_str(ws.dir.path())]).expect_code(2);
    assert!(out.stderr.contains("error: "), "{}", out.stderr);
    let out = ws.cmd(&["template", "validate", "/no/such/template.yaml"]).expect_code(2);
    assert!(out.stderr.contains("cannot read /no/such/template.yaml"), "{}", out.stderr);
    let not_utf8 = ws.write("latin1.yaml", b"name: caf\xe9\n");
    let out = ws.cmd(&["template", "validate", path_str(&not_utf8)]).expect_code(2);
    assert!(out.stderr.contains("not UTF-8"), "{}", out.stderr);
    let empty = ws.write("empty.yaml", "");
    let out = ws.cmd(&["template", "validate", path_str(&empty)]).expect_code(2);
    assert!(out.stderr.contains("empty"), "{}", out.stderr);
}

// ----- values -----

#[test]
fn a_field_value_of_the_wrong_type_is_bad_input() {
    let (ws, run) = good_ws();
    let cases = [
        "amount=twelve",
        "amount:=true",
        "urgent=maybe",
        "urgent:=1",
        "due_on=tomorrow",
        "due_on=2025-02-30",
        "helpers:=42",
        "helpers:=[\"not-an-email\"]",
        "tags:=[\"c\"]",
        "tags:={\"a\":1}",
    ];
    let before = ws.show(&run);
    for value in cases {
        let field = value.split([':', '=']).next().expect("field");
        let e = ws.cmd_json(&["task", "set", &run, "request", "--as", ANN, value]).expect_code(2).error_json();
        assert_eq!(e["rule"], "invalid-value", "{value}: {e}");
        assert_eq!(e["field"], field, "{value}: {e}");
        let text = ws.cmd(&["task", "set", &run, "request", "--as", ANN, value]).expect_code(2);
        assert!(text.stderr.starts_with(&format!("refused: field '{field}' on task 'request': ")), "{}", text.stderr);
    }
    assert_eq!(ws.show(&run), before, "nothing was stored");
}

#[test]
fn field_arguments_must_be_field_equals_value() {
    let (ws, run) = good_ws();
    let cases = [
        ("amount", "'amount' is not FIELD=VALUE"),
        ("=12", "has no field name"),
        ("amount:=twelve", "not JSON"),
        ("amount:=[1,", "not JSON"),
    ];
    for (arg, expected) in cases {
        let out = ws.cmd(&["task", "complete", &run, "request", "--as", ANN, arg]).expect_code(2);
        assert!(out.stderr.contains(expected), "{arg}: {}", out.stderr);
        let e = ws.cmd_json(&["task", "set", &run, "request", "--as", ANN, arg]).expect_code(2).error_json();
        assert_eq!(e["error"], "bad_input", "{e}");
    }
    let out = ws.cmd(&["task", "set", &run, "request", "--as", ANN, "amount=1", "amount=2"]).expect_code(2);
    assert!(out.stderr.contains("given twice"), "{}", out.stderr);
    // `task set` needs at least one value.
    ws.cmd(&["task", "set", &run, "request", "--as", ANN]).expect_code(2);
}

// ----- ids, keys, people, arguments -----

#[test]
fn unknown_run_id_is_bad_input() {
    let (ws, _) = good_ws();
    let pdf = ws.write("proof.pdf", "proof");
    let ghost = "01a20c7f-0000-7000-8000-000000000000";
    let commands: Vec<Vec<&str>> = vec![
        vec!["run", "show", ghost],
        vec!["run", "replay", ghost],
        vec!["run", "cancel", ghost, "--as", ADMIN, "--reason", "x"],
        vec!["task", "complete", ghost, "request", "--as", ANN],
        vec!["task", "set", ghost, "request", "--as", ANN, "amount=1"],
        vec!["task", "approve", ghost, "check", "--as", ANN],
        vec!["task", "attach", ghost, "request", path_str(&pdf), "--as", ANN],
    ];
    for args in &commands {
        let e = ws.cmd_json(args).expect_code(2).error_json();
        assert_eq!(e["error"], "not_found", "{args:?}: {e}");
        assert_eq!(e["message"], format!("no run with id {ghost}"), "{args:?}");
    }
    let long = "r".repeat(100);
    let out = ws.cmd(&["run", "show", &long]).expect_code(2);
    assert!(out.stderr.contains("is not a run id"), "{}", out.stderr);
    ws.cmd(&["run", "show", " "]).expect_code(2);
}

#[test]
fn unknown_task_key_is_bad_input() {
    let (ws, run) = good_ws();
    for args in [
        vec!["task", "complete", &run, "nope", "--as", ANN],
        vec!["task", "set", &run, "nope", "--as", ANN, "amount=1"],
        vec!["task", "approve", &run, "nope", "--as", ANN],
        vec!["task", "comment", &run, "nope", "--as", ANN, "hello"],
    ] {
        let e = ws.cmd_json(&args).expect_code(2).error_json();
        assert_eq!((e["rule"].as_str(), e["task"].as_str()), (Some("unknown-task"), Some("nope")), "{e}");
    }
    let e = ws.cmd_json(&["run", "start", "no-such-template", "--as", ANN]).expect_code(2).error_json();
    assert!(e["message"].as_str().is_some_and(|m| m.contains("no template with key no-such-template")), "{e}");
}

#[test]
fn missing_as_is_a_usage_error() {
    let (ws, run) = good_ws();
    for args in [
        vec!["task", "complete", &run, "request", "amount=1"],
        vec!["task", "approve", &run, "check"],
        vec!["run", "start", "good"],
        vec!["run", "cancel", &run, "--reason", "x"],
        vec!["inbox"],
    ] {
        let out = ws.cmd(&args).expect_code(2);
        assert!(out.stderr.contains("--as <EMAIL>"), "{args:?}: {}", out.stderr);
    }
    ws.cmd(&["frobnicate"]).expect_code(2);
    ws.cmd(&["run", "list", "--status", "sideways"]).expect_code(2);
    let out = ws.cmd(&["task", "complete", &run, "request", "--as", "not-an-email"]).expect_code(2);
    assert!(out.stderr.contains("is not an email address"), "{}", out.stderr);
    // A clock that is not a timestamp is bad input too.
    let out =
        ws.command().env("ATTEST_NOW", "yesterday").args(["run", "start", "good", "--as", ANN]).output().expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("ATTEST_NOW"));
}

#[test]
fn attaching_a_file_that_cannot_be_read_is_bad_input() {
    let (ws, run) = good_ws();
    let missing = ws.dir.path().join("no-such-file.pdf");
    let out = ws
        .cmd(&["task", "attach", &run, "request", path_str(&missing), "--field", "proof", "--as", ANN])
        .expect_code(2);
    assert!(out.stderr.contains(&format!("cannot read {}", missing.display())), "{}", out.stderr);
    // A directory, or a FIFO nobody writes to, is not a file to attach.
    let dir = ws.dir.path().join("a-directory");
    std::fs::create_dir(&dir).expect("mkdir");
    let out = ws
        .cmd_within(Duration::from_secs(20), &["task", "attach", &run, "request", path_str(&dir), "--as", ANN])
        .expect_code(2);
    assert!(out.stderr.contains("a-directory"), "{}", out.stderr);
    let fifo = ws.dir.path().join("evidence.fifo");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().expect("mkfifo").success());
    let out = ws
        .cmd_within(Duration::from_secs(20), &["task", "attach", &run, "request", path_str(&fifo), "--as", ANN])
        .expect_code(2);
    assert!(out.stderr.contains("evidence.fifo"), "{}", out.stderr);
    // Nothing was attached and no upload was left behind.
    let show = ws.show(&run);
    assert!(events(&show, "evidence_attached", None).is_empty(), "{show}");
    let files = ws.data().join("files");
    let leftovers: Vec<_> = std::fs::read_dir(&files)
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(leftovers.is_empty(), "no files left in {}: {leftovers:?}", files.display());
    ws.assert_replay_and_verify(&[&run]);
}

#[test]
fn data_dir_without_a_workspace_is_bad_input() {
    let ws = Ws::empty();
    std::fs::create_dir_all(ws.data()).expect("mkdir");
    for args in [
        vec!["run", "list"],
        vec!["template", "list"],
        vec!["user", "add", "ann@example.com"],
        vec!["role", "grant", "ann@example.com", "x"],
        vec!["inbox", "--as", "ann@example.com"],
        vec!["run", "show", "r1"],
        vec!["audit", "verify"],
    ] {
        let out = ws.cmd(&args).expect_code(2);
        assert!(
            out.stderr.contains("no workspace in") && out.stderr.contains("attest init"),
            "{args:?}: {}",
            out.stderr
        );
    }
    let out = ws.cmd(&["template", "publish", example!("vendor-onboarding")]).expect_code(2);
    assert!(out.stderr.contains("no workspace in"), "{}", out.stderr);
    let e = ws.cmd_json(&["run", "list"]).expect_code(2).error_json();
    assert_eq!(e["error"], "bad_input");
    // Asking did not create anything there.
    let entries = std::fs::read_dir(ws.data()).expect("read dir").count();
    assert_eq!(entries, 0, "a failed command leaves the directory empty");
    // A data directory that does not exist at all is the same, and stays absent.
    let absent = ws.dir.path().join("absent");
    let out = std::process::Command::new(BIN).arg("--data").arg(&absent).args(["run", "list"]).output().expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(!absent.exists());
}

#[test]
fn init_twice_is_refused_and_keeps_the_workspace() {
    let ws = Ws::new();
    ws.user(ANN, &[]);
    let key = ws.json(&["audit", "key"])["verifier_key"].clone();
    let users_before = ws.json(&["user", "list"]);
    for args in [vec!["init"], vec!["init", "--admin", "other@example.com"]] {
        let out = ws.cmd(&args).expect_code(2);
        assert!(out.stderr.contains("already holds a workspace"), "{}", out.stderr);
    }
    let e = ws.cmd_json(&["init"]).expect_code(2).error_json();
    assert!(e["message"].as_str().is_some_and(|m| m.contains("already holds a workspace")), "{e}");
    assert_eq!(ws.json(&["audit", "key"])["verifier_key"], key, "the signing key is untouched");
    assert_eq!(ws.json(&["user", "list"]), users_before);
    ws.assert_replay_and_verify(&[]);
    // A bad admin address on a fresh directory creates nothing.
    let fresh = Ws::empty();
    fresh.cmd(&["init", "--admin", "nobody"]).expect_code(2);
    fresh.cmd(&["init", "--admin", ADMIN]).ok();
}

#[test]
fn a_closed_stdout_is_not_a_panic() {
    // `attest run list | head -0`: the reader is gone before anything is written.
    let (ws, run) = good_ws();
    for args in [vec!["--json", "run", "show", run.as_str()], vec!["run", "show", run.as_str()], vec!["user", "list"]] {
        let mut child = ws
            .command()
            .args(&args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn attest");
        drop(child.stdout.take());
        let out = child.wait_with_output().expect("wait");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.code() != Some(101) && !stderr.contains("panicked"),
            "{args:?} with a closed stdout panicked ({:?}):\n{stderr}",
            out.status
        );
        // Usually the write fails (exit 141, as after SIGPIPE); it may succeed
        // if the output fit in the pipe before the reader was gone.
        assert!(matches!(out.status.code(), Some(0 | 141)), "{args:?}: {:?} {stderr}", out.status);
    }
}

//! Several processes act on the same task at the same moment: exactly one
//! wins, the others are refused as a conflict (or because the task is already
//! done), and the ledger holds exactly one completion.

mod common;

use std::io::Write as _;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;

const RACE: &str = r#"
format: attest/v1
key: race
name: Race
roles: [worker, checker]
tasks:
  - key: fill
    name: Fill in
    assignee: role:worker
    stop: true
    fields:
      - { key: n, label: Number, type: number, required: true }
  - key: check
    name: Check
    type: approval
    approves: [fill]
    assignee: role:checker
"#;

const STARTER: &str = "sue@example.com";
const WORKERS: [&str; 4] = ["w1@example.com", "w2@example.com", "w3@example.com", "w4@example.com"];
const CHECKERS: [&str; 3] = ["c1@example.com", "c2@example.com", "c3@example.com"];

fn race_ws() -> Ws {
    let ws = Ws::new();
    ws.user(STARTER, &[]);
    for w in WORKERS {
        ws.user(w, &["worker"]);
    }
    for c in CHECKERS {
        ws.user(c, &["checker"]);
    }
    ws.publish_text("race.yaml", RACE);
    ws
}

/// Spawns every command held at a barrier (each waits for a line on its
/// stdin before it execs `attest`), then releases them all at once.
fn race(ws: &Ws, commands: &[Vec<String>]) -> Vec<Out> {
    let mut children: Vec<Child> = commands
        .iter()
        .map(|args| {
            let mut c = Command::new("bash");
            c.arg("-c").arg(r#"read -r _ && exec "$0" "$@""#).arg(BIN).arg("--data").arg(ws.data()).args(args);
            c.env("ATTEST_NOW", T0).env_remove("ATTEST_DATA").env("RUST_BACKTRACE", "0");
            c.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
            c.spawn().expect("spawn racer")
        })
        .collect();
    // Let every shell reach its `read`, then release them together.
    std::thread::sleep(Duration::from_millis(150));
    let mut gates: Vec<_> = children.iter_mut().map(|c| c.stdin.take().expect("stdin")).collect();
    for gate in &mut gates {
        gate.write_all(b"go\n").expect("release racer");
    }
    drop(gates);
    children
        .into_iter()
        .zip(commands)
        .map(|(child, args)| {
            let out = child.wait_with_output().expect("wait for racer");
            let out = Out {
                code: out.status.code().unwrap_or(-1),
                stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
                args: args.clone(),
            };
            out.assert_no_panic();
            out
        })
        .collect()
}

/// Exactly one racer succeeded; the others exited 1 with a clear reason: a
/// conflict, or a refusal under one of `rules` saying the task is done.
fn assert_one_winner(outs: &[Out], rules: &[&str]) -> usize {
    let winners: Vec<usize> = outs.iter().enumerate().filter(|(_, o)| o.code == 0).map(|(i, _)| i).collect();
    assert_eq!(winners.len(), 1, "exactly one racer must win: {outs:#?}");
    for (i, o) in outs.iter().enumerate() {
        if i == winners[0] {
            continue;
        }
        assert_eq!(o.code, 1, "a losing racer is refused or in conflict: {o:#?}");
        let err = o.error_json();
        let clear = err["error"] == "conflict"
            || (err["error"] == "refused" && rules.iter().any(|r| err["rule"] == *r) && err["message"].is_string());
        assert!(clear, "the loser's message must say conflict or already completed: {err}");
    }
    winners[0]
}

fn args(parts: &[&str]) -> Vec<String> {
    let mut v = vec!["--json".to_string()];
    v.extend(parts.iter().map(|s| s.to_string()));
    v
}

#[test]
fn simultaneous_completions_of_one_task_give_exactly_one_completion() {
    let ws = race_ws();
    let mut runs = Vec::new();
    for round in 0..4 {
        let run = ws.start("race", STARTER);
        let commands: Vec<Vec<String>> = WORKERS
            .iter()
            .enumerate()
            .map(|(i, w)| args(&["task", "complete", &run, "fill", "--as", w, &format!("n={}", round * 10 + i)]))
            .collect();
        let outs = race(&ws, &commands);
        let winner = assert_one_winner(&outs, &["task-locked"]);
        for o in outs.iter().filter(|o| o.code == 1) {
            let err = o.error_json();
            let m = err["message"].as_str().unwrap_or_default();
            assert!(m.starts_with("conflict") || m.contains("already completed"), "{err}");
        }
        let show = ws.show(&run);
        let completed = events(&show, "task_completed", Some("fill"));
        assert_eq!(completed.len(), 1, "never two completions: {show}");
        assert_eq!(task(&show, "fill")["completed_by"], WORKERS[winner]);
        assert_eq!(show["values"]["n"], (round * 10 + winner) as u64, "the winner's value is the one kept");
        assert_eq!(events(&show, "fields_set", Some("fill")).len(), 1, "the losers' values were not written");
        runs.push(run);
    }
    let runs: Vec<&str> = runs.iter().map(String::as_str).collect();
    ws.assert_replay_and_verify(&runs);
}

#[test]
fn simultaneous_decisions_on_one_approval_give_exactly_one_decision() {
    let ws = race_ws();
    let mut runs = Vec::new();
    for _ in 0..3 {
        let run = ws.start("race", STARTER);
        ws.json(&["task", "complete", &run, "fill", "--as", WORKERS[0], "n=1"]);
        // Two approve, one rejects: exactly one decision is recorded.
        let commands = vec![
            args(&["task", "approve", &run, "check", "--as", CHECKERS[0]]),
            args(&["task", "approve", &run, "check", "--as", CHECKERS[1]]),
            args(&["task", "reject", &run, "check", "--as", CHECKERS[2], "--comment", "no"]),
        ];
        let outs = race(&ws, &commands);
        let show = ws.show(&run);
        let winners = outs.iter().filter(|o| o.code == 0).count();
        let approvals = events(&show, "task_approved", Some("check")).len();
        let rejections = events(&show, "task_rejected", Some("check")).len();
        assert_eq!(approvals + rejections, 1, "exactly one decision: {show}");
        assert_eq!(winners, 1, "{outs:#?}");
        if rejections == 1 {
            // The reject won: the approvals lost as a conflict, or were refused
            // because the approval now waits for the reworked task.
            for o in outs.iter().filter(|o| o.code != 0) {
                assert_eq!(o.code, 1, "{o:#?}");
                let err = o.error_json();
                assert!(
                    err["error"] == "conflict" || err["rule"] == "stop-task" || err["rule"] == "approval-waits",
                    "{err}"
                );
            }
            assert_eq!(show["status"], "open");
        } else {
            // The run completed with the approval, so a late racer may also
            // find the run closed.
            assert_one_winner(&outs, &["already-completed", "run-not-open"]);
            assert_eq!(show["status"], "completed");
        }
        runs.push(run);
    }
    let runs: Vec<&str> = runs.iter().map(String::as_str).collect();
    ws.assert_replay_and_verify(&runs);
}

#[test]
fn simultaneous_run_starts_all_succeed_with_distinct_runs() {
    let ws = race_ws();
    let commands: Vec<Vec<String>> =
        (0..4).map(|i| args(&["run", "start", "race", "--as", STARTER, "--name", &format!("run {i}")])).collect();
    let outs = race(&ws, &commands);
    for o in &outs {
        assert_eq!(o.code, 0, "independent writes wait for each other instead of failing: {o:#?}");
    }
    let ids: std::collections::BTreeSet<String> =
        outs.iter().map(|o| o.json()["run"].as_str().expect("run").to_string()).collect();
    assert_eq!(ids.len(), 4);
    let listed = ws.json(&["run", "list"]);
    assert_eq!(listed.as_array().map(Vec::len), Some(4));
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    ws.assert_replay_and_verify(&ids);
}

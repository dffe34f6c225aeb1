//! A crash test: a loop of real `attest` commands is killed with SIGKILL at a
//! random moment (the whole process group, so an `attest` in flight dies
//! mid-write). Afterwards the database opens, every acknowledged command is
//! there, every run replays to its stored state and `audit verify` passes.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read as _;
use std::os::unix::process::CommandExt as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::*;

const CRASH: &str = r#"
format: attest/v1
key: crash
name: Crash test
roles: [checker]
tasks:
  - key: fill
    name: Fill in
    assignee: starter
    stop: true
    fields:
      - { key: n, label: Number, type: number, required: true }
      - { key: proof, label: Proof, type: file, accept: [txt] }
  - key: check
    name: Check
    type: approval
    approves: [fill]
    assignee: role:checker
"#;

const MAKER: &str = "maker@example.com";
const CHECKER: &str = "checker@example.com";

/// Each step prints its acknowledgement only after `attest` returned 0.
const LOOP: &str = r#"
set -eu
i=0
while :; do
  i=$((i+1))
  r=$("$BIN" --data "$DATA" run start crash --as "$MAKER")
  echo "started $r"
  echo "proof $i $r" > "$PROOF"
  "$BIN" --data "$DATA" task attach "$r" fill "$PROOF" --field proof --as "$MAKER" > /dev/null
  echo "attached $r"
  "$BIN" --data "$DATA" task complete "$r" fill "n=$i" --as "$MAKER" > /dev/null
  echo "completed $r"
  "$BIN" --data "$DATA" task approve "$r" check --as "$CHECKER" > /dev/null
  echo "approved $r"
done
"#;

/// A small xorshift generator seeded from the clock: random enough for delays.
struct Rng(u64);

impl Rng {
    fn new() -> Self {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0x9e37_79b9);
        Rng(nanos | 1)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Runs the command loop for `delay` and kills its whole process group.
/// Returns the acknowledged steps: run id → the last acknowledged step.
fn run_and_kill(ws: &Ws, delay: Duration) -> Vec<(String, String)> {
    let proof = ws.dir.path().join("proof.txt");
    let mut child = Command::new("bash")
        .arg("-c")
        .arg(LOOP)
        .env("BIN", BIN)
        .env("DATA", ws.data())
        .env("PROOF", &proof)
        .env("MAKER", MAKER)
        .env("CHECKER", CHECKER)
        // Checkpoints are signed every few entries, so a kill can land in one too.
        .env("ATTEST_CHECKPOINT_EVERY_ENTRIES", "3")
        .env_remove("ATTEST_NOW")
        .env_remove("ATTEST_DATA")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .expect("spawn the command loop");
    let pgid = child.id();
    std::thread::sleep(delay);
    let killed = Command::new("bash").arg("-c").arg(format!("kill -KILL -- -{pgid}")).status().expect("run kill");
    assert!(killed.success(), "kill -KILL -{pgid} failed");
    let status = child.wait().expect("wait for the loop");
    assert!(status.code().is_none(), "the loop must die by the signal, not exit by itself: {status:?}");
    let mut out = String::new();
    child.stdout.take().expect("stdout").read_to_string(&mut out).expect("read acknowledgements");
    // Only complete lines are acknowledgements.
    let complete = match out.rfind('\n') {
        Some(end) => &out[..=end],
        None => "",
    };
    complete
        .lines()
        .map(|l| {
            let (step, run) = l.split_once(' ').unwrap_or_else(|| panic!("bad acknowledgement line {l:?}"));
            (run.to_string(), step.to_string())
        })
        .collect()
}

#[test]
fn sigkill_during_a_stream_of_commands_loses_no_acknowledged_command() {
    let ws = Ws::new();
    ws.user(MAKER, &[]);
    ws.user(CHECKER, &["checker"]);
    ws.publish_text("crash.yaml", CRASH);
    let mut rng = Rng::new();
    let mut verified: BTreeSet<String> = BTreeSet::new();
    let mut acknowledged_total = 0;
    let started = Instant::now();
    for iteration in 0..5 {
        let delay = Duration::from_millis(300 + rng.below(1700));
        let acks = run_and_kill(&ws, delay);
        acknowledged_total += acks.len();
        let mut last_step: BTreeMap<String, String> = BTreeMap::new();
        for (run, step) in &acks {
            last_step.insert(run.clone(), step.clone());
        }

        // The database opens and lists every run, acknowledged or not.
        let listed = ws.json(&["run", "list", "--limit", "100000"]);
        let listed: BTreeSet<String> =
            listed.as_array().expect("run list").iter().map(|r| r["id"].as_str().expect("id").to_string()).collect();
        for (run, step) in &last_step {
            assert!(listed.contains(run), "iteration {iteration}: acknowledged run {run} is missing");
            let show = ws.show(run);
            let attached = events(&show, "evidence_attached", Some("fill")).len();
            let completed = events(&show, "task_completed", Some("fill")).len();
            let approved = events(&show, "task_approved", Some("check")).len();
            match step.as_str() {
                "started" => {}
                "attached" => assert_eq!(attached, 1, "iteration {iteration}: {run} lost its evidence"),
                "completed" => {
                    assert_eq!((attached, completed), (1, 1), "iteration {iteration}: {run} lost its completion");
                    assert_eq!(task_status(&show, "fill"), "done");
                }
                "approved" => {
                    assert_eq!((attached, completed, approved), (1, 1, 1), "iteration {iteration}: {run}");
                    assert_eq!(show["status"], "completed", "iteration {iteration}: {run}");
                }
                other => panic!("unknown acknowledgement {other}"),
            }
            if step != "started" {
                assert_eq!(show["values"]["proof"]["media_type"], "text/plain");
            }
        }
        // Every run replays, including one cut off mid-command.
        for run in listed.difference(&verified.clone()) {
            ws.json(&["run", "replay", run]);
            verified.insert(run.clone());
        }
        let report = ws.json(&["audit", "verify"]);
        assert_eq!(report["ok"], true, "iteration {iteration}: audit verify after SIGKILL: {report}");
    }
    assert!(acknowledged_total >= 5, "the loop made too little progress to test anything: {acknowledged_total} acks");
    assert!(!verified.is_empty());

    // The workspace still works normally after the crashes.
    let run = ws.start("crash", MAKER);
    ws.json(&["task", "complete", &run, "fill", "--as", MAKER, "n=1"]);
    ws.json(&["task", "approve", &run, "check", "--as", CHECKER]);
    assert_eq!(ws.status(&run), "completed");
    ws.assert_replay_and_verify(&[&run]);
    eprintln!("{acknowledged_total} acknowledged commands over 5 crashes in {:?}", started.elapsed());
}

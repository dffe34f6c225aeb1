//! Shared helpers for the integration tests that drive the real `attest` binary.
//!
//! Every test gets its own workspace in a fresh temporary directory, a fixed
//! clock (`ATTEST_NOW`) so that `run show` is byte-for-byte comparable, and a
//! check on every invocation that the binary did not panic.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use tempfile::TempDir;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_attest");

/// A Monday, so business-day due dates are easy to reason about.
pub const T0: &str = "2025-03-03T09:00:00Z";

/// The admin `attest init --admin` creates in every workspace.
pub const ADMIN: &str = "boss@example.com";

/// An example template of the repository.
#[macro_export]
macro_rules! example {
    ($name:literal) => {
        concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/", $name, ".yaml")
    };
}

/// What one invocation of the binary did.
#[derive(Debug)]
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub args: Vec<String>,
}

impl Out {
    fn from_output(args: Vec<String>, out: Output) -> Self {
        let out = Out {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            args,
        };
        out.assert_no_panic();
        out
    }

    /// A panic is a bug, whatever the input.
    pub fn assert_no_panic(&self) {
        assert!(
            self.code != 101 && !self.stderr.contains("panicked"),
            "attest {:?} panicked (exit {}):\n{}",
            self.args,
            self.code,
            self.stderr
        );
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("attest {:?}: stdout is not JSON ({e}):\n{}", self.args, self.stdout))
    }

    /// The JSON error body printed on stderr under `--json`.
    pub fn error_json(&self) -> Value {
        serde_json::from_str(&self.stderr)
            .unwrap_or_else(|e| panic!("attest {:?}: stderr is not JSON ({e}):\n{}", self.args, self.stderr))
    }

    pub fn expect_code(self, code: i32) -> Self {
        assert_eq!(
            self.code, code,
            "attest {:?}: expected exit {code}, got {}\nstdout:\n{}\nstderr:\n{}",
            self.args, self.code, self.stdout, self.stderr
        );
        self
    }

    pub fn ok(self) -> Self {
        self.expect_code(0)
    }
}

/// A workspace in a temporary data directory, with a settable clock.
#[derive(Debug)]
pub struct Ws {
    pub dir: TempDir,
    pub now: std::cell::RefCell<String>,
}

impl Ws {
    /// A data directory with no workspace in it yet.
    pub fn empty() -> Self {
        Ws { dir: tempfile::tempdir().expect("temp dir"), now: std::cell::RefCell::new(T0.to_string()) }
    }

    /// A fresh workspace whose admin is [`ADMIN`].
    pub fn new() -> Self {
        let ws = Self::empty();
        ws.cmd(&["init", "--admin", ADMIN]).ok();
        ws
    }

    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn set_now(&self, now: &str) {
        *self.now.borrow_mut() = now.to_string();
    }

    /// The binary with this workspace's data directory and clock, and none of
    /// the caller's environment that could change its behaviour.
    pub fn command(&self) -> Command {
        let mut c = Command::new(BIN);
        c.arg("--data").arg(self.data());
        c.env("ATTEST_NOW", self.now.borrow().as_str());
        c.env_remove("ATTEST_DATA");
        c.env_remove("ATTEST_CHECKPOINT_EVERY_ENTRIES");
        c.env_remove("ATTEST_CHECKPOINT_EVERY_SECONDS");
        c.env("RUST_BACKTRACE", "0");
        c
    }

    /// Runs the binary (text output).
    pub fn cmd(&self, args: &[&str]) -> Out {
        let out = self.command().args(args).output().expect("spawn attest");
        Out::from_output(args.iter().map(|s| s.to_string()).collect(), out)
    }

    /// Runs the binary with `--json`.
    pub fn cmd_json(&self, args: &[&str]) -> Out {
        let out = self.command().arg("--json").args(args).output().expect("spawn attest");
        let mut all = vec!["--json".to_string()];
        all.extend(args.iter().map(|s| s.to_string()));
        Out::from_output(all, out)
    }

    /// Runs the binary, killing it if it has not finished within `limit`
    /// (a hang is a failure, reported with the arguments).
    pub fn cmd_within(&self, limit: std::time::Duration, args: &[&str]) -> Out {
        use std::io::Read as _;
        let mut child = self
            .command()
            .args(args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn attest");
        let deadline = std::time::Instant::now() + limit;
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait for attest") {
                break status;
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("attest {args:?} did not finish within {limit:?}");
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        };
        let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
        child.stdout.take().expect("stdout").read_to_end(&mut stdout).expect("read stdout");
        child.stderr.take().expect("stderr").read_to_end(&mut stderr).expect("read stderr");
        Out::from_output(args.iter().map(|s| s.to_string()).collect(), Output { status, stdout, stderr })
    }

    /// Runs the binary with `--json`, expects success and returns its output.
    pub fn json(&self, args: &[&str]) -> Value {
        self.cmd_json(args).ok().json()
    }

    /// Writes a file into the temporary directory (not the data directory).
    pub fn write(&self, name: &str, content: impl AsRef<[u8]>) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, content).expect("write file");
        path
    }

    /// Adds a person with roles.
    pub fn user(&self, email: &str, roles: &[&str]) {
        let mut args = vec!["user", "add", email];
        for r in roles {
            args.push("--role");
            args.push(r);
        }
        self.cmd(&args).ok();
    }

    /// Publishes a template file and returns the publish outcome.
    pub fn publish(&self, path: &Path) -> Value {
        self.json(&["template", "publish", path_str(path)])
    }

    /// Publishes a template given as text; the file is named after `name`.
    pub fn publish_text(&self, name: &str, yaml: &str) -> Value {
        let path = self.write(name, yaml);
        self.publish(&path)
    }

    /// Starts a run and returns its id.
    pub fn start(&self, template: &str, actor: &str) -> String {
        let v = self.json(&["run", "start", template, "--as", actor]);
        v["run"].as_str().expect("run id").to_string()
    }

    pub fn show(&self, run: &str) -> Value {
        self.json(&["run", "show", run])
    }

    pub fn status(&self, run: &str) -> String {
        self.show(run)["status"].as_str().expect("status").to_string()
    }

    /// Writes an evidence file and attaches it to a file field.
    pub fn attach(&self, run: &str, task: &str, field: &str, file_name: &str, actor: &str) -> Value {
        let path = self.write(file_name, format!("evidence {file_name} for {run}/{task}/{field}\n"));
        self.json(&["task", "attach", run, task, path_str(&path), "--field", field, "--as", actor])
    }

    /// `attest run replay` and `attest audit verify` both succeed.
    pub fn assert_replay_and_verify(&self, runs: &[&str]) {
        for run in runs {
            let r = self.json(&["run", "replay", run]);
            assert_eq!(r["matches_stored_state"], Value::Bool(true), "replay of {run}: {r}");
        }
        let v = self.json(&["audit", "verify"]);
        assert_eq!(v["ok"], Value::Bool(true), "audit verify: {v}");
    }

    /// The inbox of a person as `(run, task, overdue)`.
    pub fn inbox(&self, actor: &str) -> Vec<(String, String, bool)> {
        let v = self.json(&["inbox", "--as", actor]);
        v.as_array()
            .expect("inbox is a list")
            .iter()
            .map(|i| {
                (
                    i["run_id"].as_str().expect("run_id").to_string(),
                    i["task_key"].as_str().expect("task_key").to_string(),
                    i["overdue"].as_bool().expect("overdue"),
                )
            })
            .collect()
    }

    /// The task keys in a person's inbox for one run.
    pub fn inbox_tasks(&self, actor: &str, run: &str) -> Vec<String> {
        self.inbox(actor).into_iter().filter(|(r, _, _)| r == run).map(|(_, t, _)| t).collect()
    }
}

pub fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// The view of one task in `run show` JSON.
pub fn task<'a>(show: &'a Value, key: &str) -> &'a Value {
    show["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .find(|t| t["key"] == key)
        .unwrap_or_else(|| panic!("no task {key} in {show}"))
}

pub fn task_status(show: &Value, key: &str) -> String {
    task(show, key)["status"].as_str().expect("status").to_string()
}

/// The events of `run show` JSON with the given type (and task, if given).
pub fn events<'a>(show: &'a Value, kind: &str, task: Option<&str>) -> Vec<&'a Value> {
    show["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| &e["event"])
        .filter(|e| e["type"] == kind && task.is_none_or(|t| e["task"] == t))
        .collect()
}

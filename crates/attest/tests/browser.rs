//! The web app end to end in real headless Chromium: `attest serve` (the real
//! binary) on port 0 over a fresh data directory, the Playwright script
//! `e2e/flow.mjs` driving Debian's `/usr/bin/chromium` through the vendor-
//! onboarding flow, and `attest verify` on the evidence pack it downloaded.
//! Screenshots land in `target/screenshots/`. With `CI=true` a missing
//! chromium, node or `e2e/node_modules` fails the test; otherwise it skips.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("the repository root")
}

/// Why the browser test cannot run here, if it cannot.
fn missing_tool(root: &Path) -> Option<String> {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if !Path::new(&chromium).exists() {
        return Some(format!("{chromium} is missing (apt-get install -y chromium)"));
    }
    if Command::new("node").arg("--version").output().map(|o| !o.status.success()).unwrap_or(true) {
        return Some("node is missing".into());
    }
    if !root.join("e2e/node_modules/playwright-core").exists() {
        return Some("e2e/node_modules is missing (npm ci --prefix e2e)".into());
    }
    None
}

/// The server process, stopped when dropped.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn vendor_onboarding_in_a_real_browser_and_its_pack_verifies() {
    let root = repo_root();
    if let Some(why) = missing_tool(&root) {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("the browser test needs its tools in CI: {why}");
        }
        eprintln!("skipping the browser test: {why}");
        return;
    }
    let dir = tempfile::tempdir().expect("a temp dir");
    let data = dir.path().join("data");
    let mut child = Command::new(env!("CARGO_BIN_EXE_attest"))
        .args(["serve", "--addr", "127.0.0.1:0", "--data"])
        .arg(&data)
        .env_remove("ATTEST_DATA")
        .env_remove("ATTEST_NOW")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("attest serve starts");
    let stdout = child.stdout.take().expect("the server's stdout");
    let server = Server(child);
    let (mut base, mut otp) = (String::new(), String::new());
    let started = Instant::now();
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("a line of the server's output");
        if let Some(p) = line.strip_prefix("One-time password: ") {
            otp = p.split_whitespace().next().unwrap_or("").to_string();
        }
        if let Some(rest) = line.strip_prefix("Listening on ") {
            base = rest.split_whitespace().next().unwrap_or("").to_string();
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "the server did not start");
    }
    assert!(base.starts_with("http://") && !otp.is_empty(), "the server printed its address and the admin's password");

    let out = root.join("target/e2e");
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).expect("target/e2e");
    let status = Command::new("node")
        .arg(root.join("e2e/flow.mjs"))
        .arg(&base)
        .arg(&out)
        .arg(&otp)
        .current_dir(root.join("e2e"))
        .status()
        .expect("node runs");
    drop(server);
    // Keep the screenshots where a reviewer looks: target/screenshots.
    let shots = root.join("target/screenshots");
    let _ = std::fs::remove_dir_all(&shots);
    let _ = std::fs::rename(out.join("screenshots"), &shots);
    assert!(status.success(), "the browser flow failed (see its output above)");

    let key = std::fs::read_to_string(out.join("verifier-key.txt")).expect("the verifier key the audit page showed");
    let verified = Command::new(env!("CARGO_BIN_EXE_attest"))
        .arg("verify")
        .arg(out.join("run-pack.zip"))
        .args(["--key", key.trim()])
        .output()
        .expect("attest verify runs");
    assert!(
        verified.status.success(),
        "attest verify refused the downloaded pack:\n{}\n{}",
        String::from_utf8_lossy(&verified.stdout),
        String::from_utf8_lossy(&verified.stderr)
    );
    assert!(std::fs::read_dir(&shots).map(|d| d.count()).unwrap_or(0) >= 10, "the flow saved its screenshots");
}

//! Evidence packs through the real binary: a pack verifies on a clean
//! machine with only the binary and the zip, and each kind of tampering with
//! the zip is caught by `attest verify` with exit 1 and a message naming it.

use std::io::{Cursor, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use sha2::{Digest, Sha256};

const NOW: &str = "2025-03-03T10:00:00Z";

fn attest_in(cwd: Option<&Path>, data: &Path, now: &str, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_attest"));
    if let Some(cwd) = cwd {
        command.current_dir(cwd);
    }
    command
        .arg("--data")
        .arg(data)
        .args(args)
        .env("ATTEST_NOW", now)
        .env_remove("ATTEST_DATA")
        .output()
        .expect("the binary runs")
}

fn attest(data: &Path, args: &[&str]) -> Output {
    attest_in(None, data, NOW, args)
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "expected success:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

struct Demo {
    dir: tempfile::TempDir,
    key: String,
    pack: Vec<u8>,
}

/// The demo workspace, its key, and the pack of its run.
fn demo_pack() -> Demo {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    ok(attest(&data, &["demo"]));
    let key = ok(attest(&data, &["audit", "key"])).trim().to_string();
    let runs: Value = serde_json::from_str(&ok(attest(&data, &["--json", "run", "list"]))).expect("json");
    let run = runs[0]["id"].as_str().expect("a run").to_string();
    let zip = dir.path().join("run.zip");
    ok(attest(&data, &["audit", "export", "--run", &run, "-o", zip.to_str().expect("utf-8 path")]));
    let pack = std::fs::read(&zip).expect("the pack was written");
    Demo { dir, key, pack }
}

/// Verifies pack bytes from a fresh directory holding nothing else, with a
/// data directory that does not exist.
fn verify(pack: &[u8], key: Option<&str>) -> (Option<i32>, String) {
    let clean = tempfile::tempdir().expect("temp dir");
    std::fs::write(clean.path().join("pack.zip"), pack).expect("copy the zip");
    let missing = clean.path().join("no-such-data-dir");
    let mut args = vec!["verify", "pack.zip"];
    if let Some(key) = key {
        args.extend(["--key", key]);
    }
    let out = attest_in(Some(clean.path()), &missing, NOW, &args);
    assert!(!missing.exists(), "verify must not create a data directory");
    let left: Vec<_> = std::fs::read_dir(clean.path()).expect("list").collect();
    assert_eq!(left.len(), 1, "verify must leave nothing behind");
    (out.status.code(), String::from_utf8_lossy(&out.stdout).to_string())
}

fn assert_caught(pack: &[u8], key: Option<&str>, kind: &str) -> String {
    let (code, stdout) = verify(pack, key);
    assert_eq!(code, Some(1), "tampering must fail verification:\n{stdout}");
    assert!(stdout.contains(&format!("FAIL [{kind}]")), "expected a [{kind}] failure:\n{stdout}");
    assert!(stdout.contains("NOT VERIFIED"), "{stdout}");
    stdout
}

fn read_zip(pack: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut archive = zip::ZipArchive::new(Cursor::new(pack)).expect("a zip");
    (0..archive.len())
        .map(|i| {
            let mut file = archive.by_index(i).expect("entry");
            let mut bytes = Vec::new();
            file.read_to_end(&mut bytes).expect("read");
            (file.name().expect("a name").to_string(), bytes)
        })
        .collect()
}

fn write_zip(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for (name, bytes) in files {
        writer.start_file(name.as_str(), zip::write::SimpleFileOptions::default()).expect("start");
        writer.write_all(bytes).expect("write");
    }
    writer.finish().expect("finish").into_inner()
}

/// Rewrites a pack, then makes the manifest agree with the new files, as a
/// careful forger would, so only the deeper checks can catch the change.
fn tamper(pack: &[u8], change: impl FnOnce(&mut Vec<(String, Vec<u8>)>)) -> Vec<u8> {
    let mut files = read_zip(pack);
    change(&mut files);
    let mut manifest: Value = serde_json::from_slice(&file(&files, "manifest.json")).expect("manifest");
    let listed: Vec<Value> = files
        .iter()
        .filter(|(name, _)| name != "manifest.json")
        .map(|(name, bytes)| {
            serde_json::json!({ "path": name, "sha256": hex::encode(Sha256::digest(bytes)), "size": bytes.len() })
        })
        .collect();
    manifest["files"] = Value::Array(listed);
    set(&mut files, "manifest.json", serde_json::to_vec_pretty(&manifest).expect("json"));
    write_zip(&files)
}

fn file(files: &[(String, Vec<u8>)], name: &str) -> Vec<u8> {
    files.iter().find(|(n, _)| n == name).map(|(_, b)| b.clone()).unwrap_or_else(|| panic!("{name} in the pack"))
}

fn set(files: &mut [(String, Vec<u8>)], name: &str, bytes: Vec<u8>) {
    let slot = files.iter_mut().find(|(n, _)| n == name).unwrap_or_else(|| panic!("{name} in the pack"));
    slot.1 = bytes;
}

/// The pack's event files, in ledger order, with their type.
fn events(files: &[(String, Vec<u8>)]) -> Vec<(String, String)> {
    let mut found: Vec<(String, String)> = files
        .iter()
        .filter(|(n, _)| n.starts_with("events/"))
        .map(|(n, b)| {
            let v: Value = serde_json::from_slice(b).expect("event json");
            (n.clone(), v["event"]["type"].as_str().unwrap_or_default().to_string())
        })
        .collect();
    found.sort();
    found
}

fn event_named(files: &[(String, Vec<u8>)], kind: &str) -> String {
    events(files).into_iter().find(|(_, t)| t == kind).map(|(n, _)| n).unwrap_or_else(|| panic!("a {kind} event"))
}

fn proof_for(event: &str) -> String {
    event.replace("events/", "proofs/").replace(".json", ".tlog-proof")
}

#[test]
fn a_run_pack_verifies_with_only_the_binary_and_the_zip() {
    let demo = demo_pack();
    let (code, stdout) = verify(&demo.pack, Some(&demo.key));
    assert_eq!(code, Some(0), "{stdout}");
    assert!(stdout.contains("verified: every check passed"), "{stdout}");
    assert!(stdout.contains("the engine re-decided its"), "{stdout}");
    assert!(!stdout.contains("WARNING"), "{stdout}");
    let files = read_zip(&demo.pack);
    let summary = String::from_utf8(file(&files, "summary.html")).expect("utf-8");
    assert!(summary.starts_with("<!DOCTYPE html>") && summary.contains("How to verify"), "summary");
    assert!(!summary.contains("<script") && !summary.contains("http://") && !summary.contains("https://"));
    assert!(file(&files, "key.txt").starts_with(demo.key.as_bytes()));
}

#[test]
fn without_a_key_the_pack_key_is_used_with_a_warning() {
    let demo = demo_pack();
    let (code, stdout) = verify(&demo.pack, None);
    assert_eq!(code, Some(0), "{stdout}");
    assert!(stdout.contains("WARNING: the key was taken from the pack's key.txt"), "{stdout}");
}

#[test]
fn a_wrong_key_is_caught() {
    let demo = demo_pack();
    let other = demo.dir.path().join("other");
    ok(attest(&other, &["init"]));
    let other_key = ok(attest(&other, &["audit", "key"])).trim().to_string();
    let stdout = assert_caught(&demo.pack, Some(&other_key), "signature");
    assert!(stdout.contains("checkpoint.txt does not verify"), "{stdout}");
}

#[test]
fn a_modified_event_is_caught() {
    let demo = demo_pack();
    let forged = tamper(&demo.pack, |files| {
        let name = event_named(files, "task_approved");
        let text = String::from_utf8(file(files, &name)).expect("utf-8").replace("\"OK\"", "\"Ok\"");
        set(files, &name, text.into_bytes());
    });
    let stdout = assert_caught(&forged, Some(&demo.key), "inclusion");
    assert!(stdout.contains("is not in the signed log"), "{stdout}");
}

#[test]
fn a_naively_modified_file_is_caught_by_its_hash() {
    let demo = demo_pack();
    let mut files = read_zip(&demo.pack);
    let name = event_named(&files, "task_approved");
    let text = String::from_utf8(file(&files, &name)).expect("utf-8").replace("\"OK\"", "\"Ok\"");
    set(&mut files, &name, text.into_bytes());
    assert_caught(&write_zip(&files), Some(&demo.key), "file-hash");
}

#[test]
fn a_dropped_event_is_caught() {
    let demo = demo_pack();
    let forged = tamper(&demo.pack, |files| {
        let name = event_named(files, "task_rejected");
        let proof = proof_for(&name);
        files.retain(|(n, _)| *n != name && *n != proof);
    });
    let stdout = assert_caught(&forged, Some(&demo.key), "gap");
    assert!(stdout.contains("are missing"), "{stdout}");
}

#[test]
fn reordered_events_are_caught() {
    let demo = demo_pack();
    let forged = tamper(&demo.pack, |files| {
        let all = events(files);
        let (a, b) = (all[3].0.clone(), all[4].0.clone());
        let (bytes_a, bytes_b) = (file(files, &a), file(files, &b));
        set(files, &a, bytes_b);
        set(files, &b, bytes_a);
    });
    let stdout = assert_caught(&forged, Some(&demo.key), "event");
    assert!(stdout.contains("reordered"), "{stdout}");
}

#[test]
fn an_altered_proof_is_caught() {
    let demo = demo_pack();
    let forged = tamper(&demo.pack, |files| {
        let proof = proof_for(&event_named(files, "evidence_attached"));
        let text = String::from_utf8(file(files, &proof)).expect("utf-8");
        let mut lines: Vec<String> = text.split('\n').map(str::to_string).collect();
        // Line 2 is the first hash: replace it with another valid hash.
        lines[2] = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=".into();
        set(files, &proof, lines.join("\n").into_bytes());
    });
    assert_caught(&forged, Some(&demo.key), "inclusion");
}

#[test]
fn a_swapped_checkpoint_signature_is_caught() {
    let demo = demo_pack();
    let other = demo.dir.path().join("other");
    ok(attest(&other, &["init"]));
    let foreign = ok(attest(&other, &["audit", "checkpoint"]));
    let foreign_signature = foreign.lines().last().expect("a signature line").to_string();
    let forged = tamper(&demo.pack, |files| {
        let note = String::from_utf8(file(files, "checkpoint.txt")).expect("utf-8");
        let own_signature = note.lines().last().expect("a signature line").to_string();
        let swapped = note.replace(&own_signature, &foreign_signature);
        for (name, bytes) in files.iter_mut() {
            if name == "checkpoint.txt" || name.starts_with("proofs/") {
                let text = String::from_utf8(bytes.clone()).expect("utf-8");
                *bytes = text.replace(&note, &swapped).into_bytes();
            }
        }
    });
    let stdout = assert_caught(&forged, Some(&demo.key), "signature");
    assert!(stdout.contains("checkpoint.txt does not verify"), "{stdout}");
}

#[test]
fn a_replaced_evidence_file_is_caught() {
    let demo = demo_pack();
    let forged = tamper(&demo.pack, |files| {
        let slot = files.iter_mut().find(|(n, _)| n.starts_with("files/")).expect("an evidence file");
        slot.1 = b"%PDF-1.4 a different contract\n".to_vec();
    });
    let stdout = assert_caught(&forged, Some(&demo.key), "evidence");
    assert!(stdout.contains("was replaced"), "{stdout}");
}

#[test]
fn an_altered_template_is_caught() {
    let demo = demo_pack();
    let forged = tamper(&demo.pack, |files| {
        // Any change of content changes the template's hash.
        let mut template: Value = serde_json::from_slice(&file(files, "template.json")).expect("template json");
        template["name"] = Value::from("Vendor onboarding (relaxed)");
        set(files, "template.json", serde_json::to_vec_pretty(&template).expect("json"));
    });
    let stdout = assert_caught(&forged, Some(&demo.key), "template");
    assert!(stdout.contains("hashes to"), "{stdout}");
}

#[test]
fn a_template_with_a_forged_manifest_hash_is_caught_by_the_run() {
    let demo = demo_pack();
    let forged = tamper(&demo.pack, |files| {
        let mut template: Value = serde_json::from_slice(&file(files, "template.json")).expect("template json");
        template["name"] = Value::from("Vendor onboarding (relaxed)");
        let bytes = serde_json::to_vec_pretty(&template).expect("json");
        set(files, "template.json", bytes);
        let mut manifest: Value = serde_json::from_slice(&file(files, "manifest.json")).expect("manifest");
        let canonical = serde_json_canonical(&template);
        manifest["templates"][0]["content_hash"] =
            Value::from(format!("sha256:{}", hex::encode(Sha256::digest(canonical))));
        set(files, "manifest.json", serde_json::to_vec(&manifest).expect("json"));
    });
    let stdout = assert_caught(&forged, Some(&demo.key), "template");
    assert!(stdout.contains("holds no template with that hash"), "{stdout}");
}

/// RFC 8785 for the JSON values a template holds: sorted keys, no spaces.
fn serde_json_canonical(value: &Value) -> Vec<u8> {
    fn sort(value: &Value) -> Value {
        match value {
            Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                Value::Object(keys.into_iter().map(|k| (k.clone(), sort(&map[k]))).collect())
            }
            Value::Array(items) => Value::Array(items.iter().map(sort).collect()),
            other => other.clone(),
        }
    }
    serde_json::to_vec(&sort(value)).expect("json")
}

#[test]
fn a_dropped_file_is_caught() {
    let demo = demo_pack();
    let mut files = read_zip(&demo.pack);
    files.retain(|(n, _)| !n.starts_with("files/"));
    let stdout = assert_caught(&write_zip(&files), Some(&demo.key), "file-missing");
    assert!(stdout.contains("FAIL [evidence]"), "{stdout}");
}

#[test]
fn unsafe_names_and_garbage_are_refused() {
    let demo = demo_pack();
    let mut files = read_zip(&demo.pack);
    files.push(("../escape.txt".into(), b"x".to_vec()));
    assert_caught(&write_zip(&files), Some(&demo.key), "archive");
    assert_caught(b"this is not a zip", Some(&demo.key), "archive");
}

/// A workspace with activity on three days, checkpointed as the CLI does.
fn period_workspace() -> (tempfile::TempDir, PathBuf, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let day = |d: u32| format!("2025-01-{d:02}T09:00:00Z");
    let run = |now: &str, args: &[&str]| ok(attest_in(None, &data, now, args));
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/vendor-onboarding.yaml");
    run(&day(1), &["init"]);
    run(&day(1), &["template", "publish", examples.to_str().expect("utf-8 path")]);
    run(&day(1), &["user", "add", "rita@example.com", "--role", "requester"]);
    let id = run(&day(2), &["run", "start", "vendor-onboarding", "--as", "rita@example.com"]).trim().to_string();
    run(&day(2), &["task", "set", &id, "request", "--as", "rita@example.com", "vendor_name=Acme", "annual_spend=500"]);
    run(&day(3), &["task", "comment", &id, "request", "--as", "rita@example.com", "first note"]);
    run(&day(3), &["task", "comment", &id, "request", "--as", "rita@example.com", "second note"]);
    run(&day(4), &["task", "comment", &id, "request", "--as", "rita@example.com", "later note"]);
    let key = run(&day(4), &["audit", "key"]).trim().to_string();
    (dir, data, key)
}

fn period_pack(dir: &Path, data: &Path) -> Vec<u8> {
    let zip = dir.join("period.zip");
    let out = ok(attest(
        data,
        &["audit", "export", "--from", "2025-01-03", "--to", "2025-01-03", "-o", zip.to_str().expect("utf-8")],
    ));
    assert!(out.contains("period"), "{out}");
    std::fs::read(zip).expect("the pack was written")
}

#[test]
fn a_period_pack_verifies_and_proves_consistency() {
    let (dir, data, key) = period_workspace();
    let pack = period_pack(dir.path(), &data);
    let (code, stdout) = verify(&pack, Some(&key));
    assert_eq!(code, Some(0), "{stdout}");
    assert!(stdout.contains("checkpoint-start.txt is signed"), "{stdout}");
    assert!(stdout.contains("(consistency proof)"), "{stdout}");
    assert!(stdout.contains("the engine re-decided"), "{stdout}");
}

#[test]
fn a_period_pack_with_a_tampered_consistency_proof_is_caught() {
    let (dir, data, key) = period_workspace();
    let pack = period_pack(dir.path(), &data);
    let forged = tamper(&pack, |files| {
        let text = String::from_utf8(file(files, "consistency.txt")).expect("utf-8");
        let mut lines: Vec<String> = text.split('\n').map(str::to_string).collect();
        lines[3] = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=".into();
        set(files, "consistency.txt", lines.join("\n").into_bytes());
    });
    let stdout = assert_caught(&forged, Some(&key), "consistency");
    assert!(stdout.contains("does not provably extend"), "{stdout}");
}

#[test]
fn a_period_pack_missing_an_entry_or_a_boundary_is_caught() {
    let (dir, data, key) = period_workspace();
    let pack = period_pack(dir.path(), &data);
    let manifest: Value = serde_json::from_slice(&file(&read_zip(&pack), "manifest.json")).expect("manifest");
    let first = manifest["period"]["first_seq"].as_u64().expect("first_seq");
    let end = manifest["period"]["end_seq"].as_u64().expect("end_seq");
    let drop_seq = |seq: u64| {
        tamper(&pack, move |files| {
            let (event, proof) = (format!("events/{seq:06}.json"), format!("proofs/{seq:06}.tlog-proof"));
            files.retain(|(n, _)| *n != event && *n != proof);
        })
    };
    assert_caught(&drop_seq(first), Some(&key), "gap");
    assert_caught(&drop_seq(end), Some(&key), "boundary");
}

//! Tampering with a real data directory behind the ledger's back: each kind
//! is caught by `attest audit verify`, which exits 1 and names the kind and
//! the first bad index.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use rusqlite::{Connection, params};

const NOW: &str = "2025-03-03T10:00:00Z";

fn attest(data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_attest"))
        .arg("--data")
        .arg(data)
        .args(args)
        .env("ATTEST_NOW", NOW)
        .env_remove("ATTEST_DATA")
        .output()
        .expect("the binary runs")
}

/// A data directory holding the demo's completed vendor onboarding run.
fn demo() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let out = attest(&data, &["demo"]);
    assert!(out.status.success(), "demo failed: {}", String::from_utf8_lossy(&out.stderr));
    (dir, data)
}

fn db(data: &Path) -> Connection {
    Connection::open(data.join("attest.db")).expect("open the database")
}

/// The first entry of a type.
fn seq_of(conn: &Connection, kind: &str) -> i64 {
    conn.query_row("SELECT MIN(seq) FROM entries WHERE type = ?1", [kind], |r| r.get(0)).expect("entry of that type")
}

fn bytes_at(conn: &Connection, seq: i64) -> Vec<u8> {
    conn.query_row("SELECT bytes FROM entries WHERE seq = ?1", [seq], |r| r.get(0)).expect("entry")
}

/// Runs `audit verify` and requires exit 1 with a finding of `kind` at `index` first.
fn assert_caught(data: &Path, kind: &str, index: i64) -> String {
    let out = attest(data, &["audit", "verify"]);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(out.status.code(), Some(1), "tampering must fail verification:\n{stdout}");
    let first = stdout.lines().find(|l| l.starts_with("FAIL")).unwrap_or_default();
    assert!(
        first.starts_with(&format!("FAIL [{kind}] at index {index}:")),
        "expected [{kind}] at {index} first:\n{stdout}"
    );
    stdout
}

#[test]
fn an_untouched_data_directory_verifies() {
    let (_dir, data) = demo();
    let out = attest(&data, &["audit", "verify"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
}

#[test]
fn one_changed_byte_of_an_event_is_named_modified() {
    let (_dir, data) = demo();
    let conn = db(&data);
    let seq = seq_of(&conn, "task_completed");
    let mut bytes = bytes_at(&conn, seq);
    let at = bytes.windows(7).position(|w| w == b"request").expect("the event names its task");
    bytes[at] = b'R';
    conn.execute("UPDATE entries SET bytes = ?1 WHERE seq = ?2", params![bytes, seq]).expect("update");
    assert_caught(&data, "modified", seq);
}

#[test]
fn a_deleted_event_is_named() {
    let (_dir, data) = demo();
    let conn = db(&data);
    let seq = seq_of(&conn, "task_rejected");
    conn.execute("DELETE FROM entries WHERE seq = ?1", [seq]).expect("delete");
    assert_caught(&data, "deleted", seq);
}

#[test]
fn a_deleted_event_with_the_rest_renumbered_is_named() {
    let (_dir, data) = demo();
    let conn = db(&data);
    let seq = seq_of(&conn, "task_rejected");
    let last: i64 = conn.query_row("SELECT MAX(seq) FROM entries", [], |r| r.get(0)).expect("size");
    conn.execute("DELETE FROM entries WHERE seq = ?1", [seq]).expect("delete");
    for s in seq + 1..=last {
        conn.execute("UPDATE entries SET seq = ?1 WHERE seq = ?2", [s - 1, s]).expect("renumber");
    }
    assert_caught(&data, "deleted", seq);
}

#[test]
fn an_inserted_event_is_named() {
    let (_dir, data) = demo();
    let conn = db(&data);
    let seq = seq_of(&conn, "task_approved");
    let last: i64 = conn.query_row("SELECT MAX(seq) FROM entries", [], |r| r.get(0)).expect("size");
    // Make room, then insert a forged approval in the middle of the run.
    for s in (seq..=last).rev() {
        conn.execute("UPDATE entries SET seq = ?1 WHERE seq = ?2", [s + 1, s]).expect("renumber");
    }
    let forged = String::from_utf8(bytes_at(&conn, seq + 1)).expect("utf-8").replace("\"OK\"", "\"forged\"");
    conn.execute(
        "INSERT INTO entries (seq, run_no, run_seq, type, bytes) VALUES (?1, NULL, NULL, 'task_approved', ?2)",
        params![seq, forged.into_bytes()],
    )
    .expect("insert");
    assert_caught(&data, "inserted", seq);
}

#[test]
fn an_event_appended_outside_the_ledger_is_named() {
    let (_dir, data) = demo();
    let conn = db(&data);
    let last: i64 = conn.query_row("SELECT MAX(seq) FROM entries", [], |r| r.get(0)).expect("size");
    let copy = String::from_utf8(bytes_at(&conn, last))
        .expect("utf-8")
        .replace(&format!("\"seq\":{last}"), &format!("\"seq\":{}", last + 1));
    conn.execute(
        "INSERT INTO entries (seq, run_no, run_seq, type, bytes) VALUES (?1, NULL, NULL, 'run_completed', ?2)",
        params![last + 1, copy.into_bytes()],
    )
    .expect("insert");
    assert_caught(&data, "inserted", last + 1);
}

#[test]
fn two_swapped_events_are_named_reordered() {
    let (_dir, data) = demo();
    let conn = db(&data);
    let a = seq_of(&conn, "task_completed");
    let (first, second) = (bytes_at(&conn, a), bytes_at(&conn, a + 1));
    conn.execute("UPDATE entries SET bytes = ?1 WHERE seq = ?2", params![second, a]).expect("swap");
    conn.execute("UPDATE entries SET bytes = ?1 WHERE seq = ?2", params![first, a + 1]).expect("swap");
    let stdout = assert_caught(&data, "reordered", a);
    assert!(stdout.contains("swapped"), "{stdout}");
}

#[test]
fn a_replaced_evidence_file_is_named() {
    let (_dir, data) = demo();
    let conn = db(&data);
    let seq = seq_of(&conn, "evidence_attached");
    let event = String::from_utf8(bytes_at(&conn, seq)).expect("utf-8");
    let sha = event.split("\"sha256\":\"").nth(1).and_then(|rest| rest.get(..64)).expect("the event records a hash");
    let path = data.join("files").join(&sha[..2]).join(&sha[2..]);
    std::fs::write(&path, b"%PDF-1.4 a different contract\n").expect("replace the file");
    let stdout = assert_caught(&data, "evidence", seq);
    assert!(stdout.contains("was replaced"), "{stdout}");
}

#[test]
fn a_forged_checkpoint_is_named() {
    let (_dir, data) = demo();
    let conn = db(&data);
    let (size, note): (i64, String) = conn
        .query_row("SELECT size, note FROM checkpoints ORDER BY size DESC LIMIT 1", [], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("a checkpoint");
    // Claim another root under the old signature.
    let mut lines: Vec<String> = note.lines().map(str::to_string).collect();
    lines[2] = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=".into();
    let forged = format!("{}\n", lines.join("\n"));
    conn.execute("UPDATE checkpoints SET note = ?1 WHERE size = ?2", params![forged, size]).expect("forge");
    let stdout = assert_caught(&data, "checkpoint", size);
    assert!(stdout.contains("does not verify"), "{stdout}");
}

#[test]
fn a_checkpoint_signed_by_another_key_is_named() {
    let (dir, data) = demo();
    let other = dir.path().join("other");
    assert!(attest(&other, &["init"]).status.success());
    let signed = attest(&other, &["audit", "checkpoint"]);
    assert!(signed.status.success());
    let foreign = String::from_utf8(signed.stdout).expect("utf-8");
    let conn = db(&data);
    let size: i64 = conn.query_row("SELECT MAX(size) FROM checkpoints", [], |r| r.get(0)).expect("a checkpoint");
    conn.execute("UPDATE checkpoints SET note = ?1 WHERE size = ?2", params![foreign, size]).expect("forge");
    assert_caught(&data, "checkpoint", size);
}

/// A run's state is stored as a snapshot every few events; one changed
/// behind the ledger's back no longer gives the state the events give.
#[test]
fn a_changed_state_snapshot_is_named_projection() {
    let (_dir, data) = demo();
    let conn = db(&data);
    let (run, state): (String, String) = conn
        .query_row("SELECT r.id, s.state FROM run_states s JOIN runs r USING (run_no) LIMIT 1", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .expect("a snapshot");
    let changed = state.replacen("\"rework_count\":0", "\"rework_count\":7", 1);
    assert_ne!(changed, state, "the snapshot holds a rework count to change");
    conn.execute(
        "UPDATE run_states SET state = ?1 WHERE run_no = (SELECT run_no FROM runs WHERE id = ?2)",
        params![changed, run],
    )
    .expect("update");
    let out = attest(&data, &["audit", "verify"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "a changed snapshot must fail verification:\n{stdout}");
    assert!(
        stdout.contains(&format!("FAIL [projection]: run {run}: the stored state differs from its events")),
        "{stdout}"
    );
}

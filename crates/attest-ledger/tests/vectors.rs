//! The transparency-dev/merkle proof vectors in `shared/testdata/merkle`:
//! every happy path verifies and every `wantErr` case is rejected.
//!
//! The verifier takes typed 32-byte hashes, while some vectors carry
//! deliberately malformed byte strings (e.g. "WrongLeaf" or ""). As in the
//! Go reference verifier, a leaf hash that is not 32 bytes is refused outright
//! (here: it cannot be decoded into a `Hash`, so the vector counts as
//! rejected), while roots and proof entries are compared as opaque values:
//! malformed ones are mapped to a domain-separated SHA-256 stand-in, so equal
//! malformed values stay equal and differ from every real hash. One happy
//! vector needs exactly that: sizes 1 → 1, empty proof, two equal 12-byte
//! "roots".

use std::path::{Path, PathBuf};

use attest_ledger::Hash;
use attest_ledger::verify::{verify_consistency, verify_inclusion};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use sha2::{Digest, Sha256};

const VECTORS: &str = "../../../shared/testdata/merkle";

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct InclusionVector {
    leaf_idx: u64,
    tree_size: u64,
    root: String,
    leaf_hash: String,
    proof: Option<Vec<String>>,
    desc: String,
    want_err: bool,
}

#[derive(Deserialize)]
struct ConsistencyVector {
    size1: u64,
    size2: u64,
    root1: String,
    root2: String,
    proof: Option<Vec<String>>,
    desc: String,
    #[serde(rename = "wantErr")]
    want_err: bool,
}

fn vector_dir(kind: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(VECTORS).join(kind)
}

fn json_files(dir: &Path, found: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            json_files(&path, found);
        } else if path.extension().is_some_and(|ext| ext == "json") {
            found.push(path);
        }
    }
    found.sort();
}

fn hash(encoded: &str) -> Hash {
    let bytes = STANDARD.decode(encoded).expect("vector base64");
    bytes.as_slice().try_into().unwrap_or_else(|_| {
        let mut hasher = Sha256::new();
        hasher.update(b"malformed test vector value");
        hasher.update(&bytes);
        hasher.finalize().into()
    })
}

fn hashes(encoded: &Option<Vec<String>>) -> Vec<Hash> {
    encoded.iter().flatten().map(|h| hash(h)).collect()
}

/// Runs every vector of a kind and returns (files seen, failure reports).
fn run<V: for<'de> Deserialize<'de>>(kind: &str, check: impl Fn(&V) -> (bool, &str, String)) -> (usize, Vec<String>) {
    let mut files = Vec::new();
    json_files(&vector_dir(kind), &mut files);
    let mut failures = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("vector file");
        let vector: V =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: not a {kind} vector: {e}", file.display()));
        let (want_err, desc, outcome) = check(&vector);
        let rejected = outcome != "ok";
        if rejected != want_err {
            failures.push(format!("{} ({desc}): wantErr {want_err}, got {outcome}", file.display()));
        }
    }
    (files.len(), failures)
}

fn outcome<E: std::fmt::Display>(result: Result<(), E>) -> String {
    result.map_or_else(|e| e.to_string(), |()| "ok".to_owned())
}

#[test]
fn inclusion_vectors() {
    let (seen, failures) = run("inclusion", |v: &InclusionVector| {
        let leaf = STANDARD.decode(&v.leaf_hash).expect("vector base64");
        let result = match Hash::try_from(leaf.as_slice()) {
            Ok(leaf) => outcome(verify_inclusion(&leaf, v.leaf_idx, v.tree_size, &hashes(&v.proof), &hash(&v.root))),
            Err(_) => format!("leaf hash of {} bytes refused", leaf.len()),
        };
        (v.want_err, v.desc.as_str(), result)
    });
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(seen, 98, "expected 98 inclusion vector files");
}

#[test]
fn consistency_vectors() {
    let (seen, failures) = run("consistency", |v: &ConsistencyVector| {
        let result = verify_consistency(v.size1, v.size2, &hash(&v.root1), &hash(&v.root2), &hashes(&v.proof));
        (v.want_err, v.desc.as_str(), outcome(result))
    });
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(seen, 98, "expected 98 consistency vector files");
}

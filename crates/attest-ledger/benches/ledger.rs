//! Ledger throughput figures, printed rather than asserted:
//! `cargo bench -p attest-ledger --bench ledger`.
//!
//! (a) in-memory appends per second with `append_batch`, leaf hashing included;
//! (b) proof build and verify times in a 10,000,000-leaf `MemoryNodeStore`;
//! (c) full-log verification throughput against `openssl speed` SHA-256.

use std::hint::black_box;
use std::process::Command;
use std::time::{Duration, Instant};

use attest_ledger::verify::{RootBuilder, verify_consistency, verify_inclusion};
use attest_ledger::{Hash, MemoryNodeStore, append_batch, consistency_proof, inclusion_proof, leaf_hash, root};

const ENTRY_BYTES: usize = 300;
const BATCH_LEAVES: usize = 1000;
const APPEND_LEAVES: usize = 1_000_000;
const PROOF_TREE_LEAVES: u64 = 10_000_000;
const PROOF_SAMPLES: usize = 20_000;
const VERIFY_LEAVES: usize = 1_000_000;

fn main() {
    println!("attest-ledger benchmark (figures, not assertions)");
    bench_appends();
    bench_proofs();
    bench_full_verification();
}

/// A deterministic 300-byte entry that differs per index.
fn entry(index: u64, buffer: &mut [u8; ENTRY_BYTES]) {
    for (chunk_index, chunk) in buffer.chunks_mut(8).enumerate() {
        let word = index.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ chunk_index as u64;
        chunk.copy_from_slice(&word.to_le_bytes()[..chunk.len()]);
    }
}

/// xorshift64*: enough to spread sample indices without a dependency.
struct Sampler(u64);

impl Sampler {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % bound
    }
}

fn bench_appends() {
    let mut store = MemoryNodeStore::with_capacity(APPEND_LEAVES);
    let mut buffer = [0u8; ENTRY_BYTES];
    let mut size = 0u64;
    let mut batch: Vec<Hash> = Vec::with_capacity(BATCH_LEAVES);
    let start = Instant::now();
    while size < APPEND_LEAVES as u64 {
        batch.clear();
        for index in size..size + BATCH_LEAVES as u64 {
            entry(index, &mut buffer);
            batch.push(leaf_hash(&buffer));
        }
        size = append_batch(&mut store, size, &batch).expect("memory append");
    }
    let elapsed = start.elapsed();
    println!(
        "(a) append_batch, batches of {BATCH_LEAVES}, {ENTRY_BYTES}-byte entries hashed: \
         {APPEND_LEAVES} appends in {:.2} s = {:.0} appends/s",
        elapsed.as_secs_f64(),
        APPEND_LEAVES as f64 / elapsed.as_secs_f64()
    );
}

fn bench_proofs() {
    let build_start = Instant::now();
    let mut store = MemoryNodeStore::with_capacity(PROOF_TREE_LEAVES as usize);
    let mut size = 0u64;
    let mut batch: Vec<Hash> = Vec::with_capacity(BATCH_LEAVES);
    while size < PROOF_TREE_LEAVES {
        batch.clear();
        batch.extend((size..size + BATCH_LEAVES as u64).map(|i| leaf_hash(&i.to_le_bytes())));
        size = append_batch(&mut store, size, &batch).expect("memory append");
    }
    let tree_root = root(&store, size).expect("root");
    println!("(b) tree of {PROOF_TREE_LEAVES} leaves built in {:.2} s", build_start.elapsed().as_secs_f64());

    let mut sampler = Sampler(0x853c_49e6_748f_ea9b);
    let indices: Vec<u64> = (0..PROOF_SAMPLES).map(|_| sampler.below(size)).collect();
    let start = Instant::now();
    let proofs: Vec<Vec<Hash>> =
        indices.iter().map(|&index| inclusion_proof(&store, index, size).expect("inclusion proof")).collect();
    let build = start.elapsed();
    let start = Instant::now();
    for (&index, proof) in indices.iter().zip(&proofs) {
        let leaf = leaf_hash(&index.to_le_bytes());
        verify_inclusion(&leaf, index, size, proof, &tree_root).expect("inclusion verifies");
    }
    let check = start.elapsed();
    println!(
        "    inclusion proof ({} hashes avg): build {:.2} µs, verify {:.2} µs (avg of {PROOF_SAMPLES} random indices)",
        average_len(&proofs),
        per_sample_us(build),
        per_sample_us(check)
    );

    let old_sizes: Vec<u64> = (0..PROOF_SAMPLES).map(|_| 1 + sampler.below(size)).collect();
    let old_roots: Vec<Hash> = old_sizes.iter().map(|&old| root(&store, old).expect("old root")).collect();
    let start = Instant::now();
    let proofs: Vec<Vec<Hash>> =
        old_sizes.iter().map(|&old| consistency_proof(&store, old, size).expect("consistency proof")).collect();
    let build = start.elapsed();
    let start = Instant::now();
    for ((&old, old_root), proof) in old_sizes.iter().zip(&old_roots).zip(&proofs) {
        verify_consistency(old, size, old_root, &tree_root, proof).expect("consistency verifies");
    }
    let check = start.elapsed();
    println!(
        "    consistency proof ({} hashes avg): build {:.2} µs, verify {:.2} µs (avg of {PROOF_SAMPLES} random old sizes)",
        average_len(&proofs),
        per_sample_us(build),
        per_sample_us(check)
    );
}

fn bench_full_verification() {
    let mut buffer = [0u8; ENTRY_BYTES];
    let start = Instant::now();
    let mut builder = RootBuilder::new();
    for index in 0..VERIFY_LEAVES as u64 {
        entry(index, &mut buffer);
        builder.push(&leaf_hash(black_box(&buffer)));
    }
    black_box(builder.root());
    let elapsed = start.elapsed();
    let megabytes = (VERIFY_LEAVES * ENTRY_BYTES) as f64 / 1e6;
    let ledger_mb_s = megabytes / elapsed.as_secs_f64();
    println!(
        "(c) full-log verification: root of {VERIFY_LEAVES} {ENTRY_BYTES}-byte entries in {:.2} s = {ledger_mb_s:.0} MB/s of entries",
        elapsed.as_secs_f64()
    );
    match openssl_sha256_mb_s() {
        Some(openssl_mb_s) => println!(
            "    openssl speed -bytes 256 -seconds 3 sha256: {openssl_mb_s:.0} MB/s; ledger / openssl = {:.2}",
            ledger_mb_s / openssl_mb_s
        ),
        None => {
            println!("    openssl not found on PATH or its output not understood: no comparison")
        }
    }
}

/// SHA-256 throughput of 256-byte blocks per `openssl speed`, in MB/s.
fn openssl_sha256_mb_s() -> Option<f64> {
    let output = Command::new("openssl").args(["speed", "-bytes", "256", "-seconds", "3", "sha256"]).output().ok()?;
    // The last line reads `sha256   <n>k`, in thousands of bytes per second.
    let stdout = String::from_utf8(output.stdout).ok()?;
    let line = stdout.lines().rev().find(|line| line.starts_with("sha256"))?;
    let kilobytes: f64 = line.split_whitespace().last()?.strip_suffix('k')?.parse().ok()?;
    Some(kilobytes * 1e3 / 1e6)
}

fn average_len(proofs: &[Vec<Hash>]) -> String {
    let total: usize = proofs.iter().map(Vec::len).sum();
    format!("{:.1}", total as f64 / proofs.len() as f64)
}

fn per_sample_us(elapsed: Duration) -> f64 {
    elapsed.as_secs_f64() * 1e6 / PROOF_SAMPLES as f64
}

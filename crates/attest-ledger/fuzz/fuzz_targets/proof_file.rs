//! Arbitrary bytes into the tlog-proof parser: no panic, exact round trip of
//! whatever parses, and verification that fails cleanly.

#![no_main]

use std::sync::OnceLock;

use attest_ledger::leaf_hash;
use attest_ledger::note::{SignerKey, VerifierKey};
use attest_ledger::proof_file::ProofFile;
use libfuzzer_sys::fuzz_target;

/// The key that signed the seed corpus, so that verification runs deep.
fn log_key() -> &'static VerifierKey {
    static KEY: OnceLock<VerifierKey> = OnceLock::new();
    KEY.get_or_init(|| {
        SignerKey::from_bytes("attest.example/ledger", &[7; 32])
            .expect("fixed key name is valid")
            .verifier_key()
    })
}

fuzz_target!(|data: &[u8]| {
    if let Ok(file) = ProofFile::parse(data) {
        let text = file.to_text().expect("a parsed proof file writes back");
        assert_eq!(ProofFile::parse(&text).as_ref(), Ok(&file));
        let _ = file.verify(&leaf_hash(&[3]), log_key());
    }
});

//! Arbitrary bytes into the signed-note and checkpoint parsers: no panic,
//! and exact round trips of whatever parses.

#![no_main]

use std::sync::OnceLock;

use attest_ledger::checkpoint::{self, Checkpoint};
use attest_ledger::note::{self, SignerKey, VerifierKey};
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
    let _ = note::split_note(data);
    if let Ok(opened) = checkpoint::open(data, log_key()) {
        let body = opened.to_body().expect("an opened checkpoint writes back");
        assert!(
            data.starts_with(body.as_bytes()),
            "body must be the signed text"
        );
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(parsed) = Checkpoint::parse_body(text) {
            assert_eq!(parsed.to_body().as_deref(), Ok(text));
        }
        if let Ok(key) = VerifierKey::parse(text) {
            assert_eq!(VerifierKey::parse(&key.to_string()).as_ref(), Ok(&key));
        }
    }
});

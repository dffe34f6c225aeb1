//! Parsers never panic, whatever the input, and refuse oversized input
//! before doing work on it.

use std::time::Instant;

use attest_ledger::checkpoint::{self, Checkpoint};
use attest_ledger::note::{self, SignerKey, VerifierKey};
use attest_ledger::proof_file::ProofFile;
use attest_ledger::verify::{
    MAX_CONSISTENCY_PROOF_HASHES, MAX_INCLUSION_PROOF_HASHES, ProofError, verify_consistency, verify_inclusion,
};
use attest_ledger::{Hash, leaf_hash};
use proptest::prelude::*;

const ORIGIN: &str = "attest.example/ledger";

fn log_key() -> SignerKey {
    SignerKey::from_bytes(ORIGIN, &[7; 32]).expect("valid name")
}

fn signed_proof_file() -> String {
    let key = log_key();
    let leaves: Vec<Hash> = (0u8..5).map(|i| leaf_hash(&[i])).collect();
    let mut store = attest_ledger::MemoryNodeStore::new();
    let size = attest_ledger::append_batch(&mut store, 0, &leaves).expect("append");
    let checkpoint = Checkpoint {
        origin: ORIGIN.to_owned(),
        size,
        root: attest_ledger::root(&store, size).expect("root"),
        extension_lines: vec!["ext".to_owned()],
    };
    ProofFile {
        extra: Some(vec![1, 2, 3]),
        index: 3,
        inclusion_proof: attest_ledger::inclusion_proof(&store, 3, size).expect("proof"),
        checkpoint_note: checkpoint::sign(&checkpoint, &key).expect("sign"),
    }
    .to_text()
    .expect("write")
}

/// Feeds `input` to every parser; only the absence of panics is checked.
fn parse_everything(input: &[u8]) {
    let verifier = log_key().verifier_key();
    let _ = note::split_note(input);
    let _ = note::open(input, &verifier);
    let _ = checkpoint::open(input, &verifier);
    if let Ok(proof_file) = ProofFile::parse(input) {
        let _ = proof_file.verify(&leaf_hash(&[3]), &verifier);
        let text = proof_file.to_text().expect("a parsed proof file writes back");
        assert_eq!(ProofFile::parse(&text).as_ref(), Ok(&proof_file));
    }
    if let Ok(text) = std::str::from_utf8(input) {
        if let Ok(parsed) = Checkpoint::parse_body(text) {
            assert_eq!(parsed.to_body().as_deref(), Ok(text), "body round trip");
        }
        let _ = VerifierKey::parse(text);
        let _ = SignerKey::from_text(text);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn random_bytes_never_panic(input in prop::collection::vec(any::<u8>(), 0..512)) {
        parse_everything(&input);
    }

    #[test]
    fn random_text_never_panics(input in "(\\PC|\n| |\u{2014}|\\+|=){0,300}") {
        parse_everything(input.as_bytes());
    }

    #[test]
    fn mutated_proof_files_never_panic_and_never_verify_when_changed(
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
    ) {
        let original = signed_proof_file();
        let mut input = original.clone().into_bytes();
        for (position, byte) in edits {
            let at = position.index(input.len());
            input[at] = byte;
        }
        parse_everything(&input);
        let verifier = log_key().verifier_key();
        let original = ProofFile::parse(&original).expect("original parses");
        if let Ok(proof_file) = ProofFile::parse(&input) {
            let verified = proof_file.verify(&leaf_hash(&[3]), &verifier);
            // The unauthenticated extra line may change freely; nothing else may.
            let same_but_extra = ProofFile {
                extra: original.extra.clone(),
                ..proof_file
            } == original;
            prop_assert_eq!(verified.is_ok(), same_but_extra);
        }
    }
}

#[test]
fn absurdly_long_proofs_are_refused_before_hashing() {
    let proof = vec![[0u8; 32]; 10_000_000];
    let start = Instant::now();
    assert_eq!(
        verify_inclusion(&[0; 32], 5, 10, &proof, &[0; 32]),
        Err(ProofError::TooLong { len: proof.len(), max: MAX_INCLUSION_PROOF_HASHES })
    );
    assert_eq!(
        verify_consistency(5, 10, &[0; 32], &[0; 32], &proof),
        Err(ProofError::TooLong { len: proof.len(), max: MAX_CONSISTENCY_PROOF_HASHES })
    );
    // Hashing ten million nodes would take seconds; refusing takes microseconds.
    assert!(start.elapsed().as_millis() < 100, "took {:?}", start.elapsed());

    // Within the bound but longer than these sizes need: refused by length.
    let proof = vec![[0u8; 32]; MAX_INCLUSION_PROOF_HASHES];
    assert_eq!(
        verify_inclusion(&[0; 32], 5, 10, &proof, &[0; 32]),
        Err(ProofError::WrongLength { len: MAX_INCLUSION_PROOF_HASHES, expected: 4 })
    );
}

#[test]
fn oversized_inputs_are_refused_up_front() {
    let huge = vec![b'a'; 10 * 1024 * 1024];
    let verifier = log_key().verifier_key();
    assert!(matches!(note::open(&huge, &verifier), Err(note::NoteError::TooLarge { .. })));
    assert!(matches!(ProofFile::parse(&huge), Err(attest_ledger::proof_file::ProofFileError::TooLarge { .. })));
    assert!(VerifierKey::parse(&"a".repeat(1 << 20)).is_err());
}

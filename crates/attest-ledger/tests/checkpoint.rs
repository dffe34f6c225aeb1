//! Signed notes, checkpoints and proof files: round trips, tampering, keys,
//! and the Go `sumdb/note` reference vector.

use attest_ledger::checkpoint::{self, Checkpoint, CheckpointError};
use attest_ledger::note::{self, MAX_NOTE_BYTES, MAX_SIGNATURES, NoteError, SignerKey, VerifierKey};
use attest_ledger::proof_file::{ProofFile, ProofFileError};
use attest_ledger::verify::ProofError;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use attest_ledger::{MemoryNodeStore, append_batch, inclusion_proof, leaf_hash, root};

// The PeterNeumann key and note from golang.org/x/mod/sumdb/note's tests.
const GO_SIGNER_KEY: &str = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
const GO_VERIFIER_KEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
const GO_TEXT: &str = "If you think cryptography is the answer to your problem,\n\
                       then you don't know what your problem is.\n";
const GO_SIGNATURE_LINE: &str =
    "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";

const ORIGIN: &str = "attest.example/ledger";

fn log_key() -> SignerKey {
    SignerKey::from_bytes(ORIGIN, &[7; 32]).expect("valid name")
}

fn sample_checkpoint() -> Checkpoint {
    Checkpoint { origin: ORIGIN.to_owned(), size: 20_852_163, root: leaf_hash(b"root"), extension_lines: Vec::new() }
}

#[test]
fn go_reference_vector() {
    let signer = SignerKey::from_text(GO_SIGNER_KEY).expect("Go signer key parses");
    assert_eq!(signer.key_id(), 0xc74f_20a3);
    assert_eq!(signer.to_text(), GO_SIGNER_KEY);
    assert_eq!(signer.verifier_key().to_string(), GO_VERIFIER_KEY);

    let verifier = VerifierKey::parse(GO_VERIFIER_KEY).expect("Go verifier key parses");
    assert_eq!(verifier, signer.verifier_key());

    // Ed25519 is deterministic, so signing reproduces Go's note byte for byte.
    let expected = format!("{GO_TEXT}\n{GO_SIGNATURE_LINE}");
    assert_eq!(note::sign(GO_TEXT, &[&signer]).expect("sign"), expected);
    assert_eq!(note::open(&expected, &verifier).expect("open"), GO_TEXT);
    let altered = expected.replace("cryptography", "cryptographY");
    assert!(matches!(note::open(&altered, &verifier), Err(NoteError::BadSignature { .. })));
}

#[test]
fn verifier_key_manglings_are_refused() {
    // As in Go's TestNewVerifier: every proper substring and every single
    // byte increment of a valid key must be refused.
    let bytes = GO_VERIFIER_KEY.as_bytes();
    for start in 0..=bytes.len() {
        for end in start + 1..=bytes.len() {
            if (start, end) != (0, bytes.len()) {
                let part = &GO_VERIFIER_KEY[start..end];
                assert!(VerifierKey::parse(part).is_err(), "accepted {part:?}");
            }
        }
    }
    for position in 0..bytes.len() {
        let mut mangled = bytes.to_vec();
        mangled[position] += 1;
        if let Ok(text) = String::from_utf8(mangled) {
            assert!(VerifierKey::parse(&text).is_err(), "accepted {text:?}");
        }
    }
    // A key of another type, with a key ID adjusted to match it.
    assert!(matches!(
        VerifierKey::parse("PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"),
        Err(NoteError::UnsupportedKeyType { found: 0x65 })
    ));
}

#[test]
fn checkpoint_round_trip() {
    let key = log_key();
    let mut checkpoint = sample_checkpoint();
    checkpoint.extension_lines = vec!["ext one".to_owned(), "ext two".to_owned()];
    let note_text = checkpoint::sign(&checkpoint, &key).expect("sign");
    assert!(note_text.starts_with(&format!("{ORIGIN}\n20852163\n")));
    let opened = checkpoint::open(&note_text, &key.verifier_key()).expect("open");
    assert_eq!(opened, checkpoint);

    // Keys survive their text and byte forms.
    let restored = SignerKey::from_text(&key.to_text()).expect("signer text");
    assert_eq!(restored.to_bytes(), key.to_bytes());
    let verifier = VerifierKey::parse(&key.verifier_key().to_string()).expect("verifier text");
    assert_eq!(checkpoint::open(&note_text, &verifier).expect("open"), checkpoint);
    assert!(!format!("{key:?}").contains(&format!("{:?}", key.to_bytes())));
}

#[test]
fn tlog_checkpoint_example_body_parses() {
    let body = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";
    let checkpoint = Checkpoint::parse_body(body).expect("spec example parses");
    assert_eq!(checkpoint.origin, "example.com/behind-the-sofa");
    assert_eq!(checkpoint.size, 20_852_163);
    assert_eq!(checkpoint.to_body().expect("encodes"), body);
    for bad in [
        "o\n020852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n",
        "o\n-1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n",
        "o\n18446744073709551616\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n",
        "o\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I\n",
        "o\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2J=\n",
        "o\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\n",
        "o\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=",
        "\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n",
        "o\n1\n",
    ] {
        assert!(Checkpoint::parse_body(bad).is_err(), "accepted {bad:?}");
    }
}

#[test]
fn any_tampered_byte_is_rejected() {
    let key = log_key();
    let verifier = key.verifier_key();
    let note_text = checkpoint::sign(&sample_checkpoint(), &key).expect("sign");
    let bytes = note_text.as_bytes();
    for position in 0..bytes.len() {
        for flip in [0x01u8, 0x20, 0x80] {
            let mut tampered = bytes.to_vec();
            tampered[position] ^= flip;
            assert!(checkpoint::open(&tampered, &verifier).is_err(), "byte {position} xor {flip:#04x} accepted");
        }
    }
}

#[test]
fn wrong_keys_are_rejected() {
    let key = log_key();
    let note_text = checkpoint::sign(&sample_checkpoint(), &key).expect("sign");
    // Same name, other key: a different key ID, so the signature is not its.
    let impostor = SignerKey::from_bytes(ORIGIN, &[8; 32]).expect("key");
    assert_eq!(
        checkpoint::open(&note_text, &impostor.verifier_key()),
        Err(CheckpointError::Note(NoteError::NotSignedByKey { name: ORIGIN.to_owned(), key_id: impostor.key_id() }))
    );
    // Same key, other name: another key ID too.
    let renamed = SignerKey::from_bytes("other.example/log", &[7; 32]).expect("key");
    assert!(checkpoint::open(&note_text, &renamed.verifier_key()).is_err());
    // A key whose name is not the origin may not sign the checkpoint.
    assert!(matches!(checkpoint::sign(&sample_checkpoint(), &renamed), Err(CheckpointError::OriginKeyMismatch { .. })));
}

#[test]
fn unknown_signatures_are_ignored_but_one_known_is_required() {
    let key = log_key();
    let witness = SignerKey::from_bytes("witness.example", &[9; 32]).expect("key");
    let body = sample_checkpoint().to_body().expect("body");
    let cosigned = note::sign(&body, &[&witness, &key]).expect("sign");
    assert_eq!(checkpoint::open(&cosigned, &key.verifier_key()).expect("open"), sample_checkpoint());
    // Only the witness signed: the log key's signature is missing.
    let witness_only = note::sign(&body, &[&witness]).expect("sign");
    assert!(matches!(
        checkpoint::open(&witness_only, &key.verifier_key()),
        Err(CheckpointError::Note(NoteError::NotSignedByKey { .. }))
    ));
    // A forged line under the log key's name and ID spoils the note even
    // next to a valid one.
    let valid = note::sign(&body, &[&key]).expect("sign");
    let (prefix, encoded) = valid.lines().last().and_then(|line| line.rsplit_once(' ')).expect("signature line");
    let mut blob = STANDARD.decode(encoded).expect("base64");
    blob[10] ^= 1;
    let forged = format!("{valid}{prefix} {}\n", STANDARD.encode(blob));
    assert!(checkpoint::open(&forged, &key.verifier_key()).is_err());
}

#[test]
fn note_limits_are_enforced() {
    let key = log_key();
    let body = sample_checkpoint().to_body().expect("body");
    let signed = note::sign(&body, &[&key]).expect("sign");
    let line = signed.lines().last().expect("signature line");
    let many = format!("{signed}{}", format!("{line}\n").repeat(MAX_SIGNATURES));
    assert_eq!(note::open(&many, &key.verifier_key()), Err(NoteError::TooManySignatures { max: MAX_SIGNATURES }));
    let exactly_max = format!("{signed}{}", format!("{line}\n").repeat(MAX_SIGNATURES - 1));
    assert!(note::open(&exactly_max, &key.verifier_key()).is_ok());
    let huge = format!("{}\n{signed}", "x".repeat(MAX_NOTE_BYTES));
    assert!(matches!(note::open(&huge, &key.verifier_key()), Err(NoteError::TooLarge { .. })));
    assert!(matches!(
        note::open("text\r\n\n— a AAAAAAA=\n", &key.verifier_key()),
        Err(NoteError::ControlCharacter { code: 0x0d, .. })
    ));
    assert!(note::sign("no final newline", &[&key]).is_err());
    assert!(SignerKey::from_bytes("has space", &[1; 32]).is_err());
    assert!(SignerKey::from_bytes("has+plus", &[1; 32]).is_err());
    assert!(SignerKey::from_bytes("", &[1; 32]).is_err());
}

#[test]
fn proof_file_round_trip_and_verification() {
    let key = log_key();
    let entries: Vec<_> = (0u32..1000).map(|i| leaf_hash(&i.to_be_bytes())).collect();
    let mut store = MemoryNodeStore::new();
    let size = append_batch(&mut store, 0, &entries).expect("append");
    let checkpoint = Checkpoint {
        origin: ORIGIN.to_owned(),
        size,
        root: root(&store, size).expect("root"),
        extension_lines: Vec::new(),
    };
    let checkpoint_note = checkpoint::sign(&checkpoint, &key).expect("sign");
    let index = 737;
    let file = ProofFile {
        extra: Some(b"context".to_vec()),
        index,
        inclusion_proof: inclusion_proof(&store, index, size).expect("proof"),
        checkpoint_note,
    };
    let text = file.to_text().expect("write");
    assert!(text.starts_with("c2sp.org/tlog-proof@v1\nextra Y29udGV4dA==\nindex 737\n"));
    let parsed = ProofFile::parse(&text).expect("parse");
    assert_eq!(parsed, file);
    let verified = parsed.verify(&entries[index as usize], &key.verifier_key()).expect("verifies");
    assert_eq!(verified, checkpoint);

    assert!(matches!(
        parsed.verify(&entries[0], &key.verifier_key()),
        Err(ProofFileError::Proof(ProofError::RootMismatch { .. }))
    ));
    let impostor = SignerKey::from_bytes(ORIGIN, &[3; 32]).expect("key");
    assert!(matches!(
        parsed.verify(&entries[index as usize], &impostor.verifier_key()),
        Err(ProofFileError::Checkpoint(_))
    ));
    let without_extra = ProofFile { extra: None, ..file };
    let text = without_extra.to_text().expect("write");
    assert_eq!(ProofFile::parse(&text).expect("parse"), without_extra);
}

#[test]
fn proof_file_refuses_overlong_proofs_before_decoding() {
    // 65 lines that are not even base64: the count is refused first.
    let text = format!(
        "c2sp.org/tlog-proof@v1\nindex 0\n{}\n\n{}",
        "!\n".repeat(65).trim_end(),
        "o\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\n— o AAAAAAA=\n"
    );
    assert_eq!(ProofFile::parse(&text), Err(ProofFileError::TooManyHashes { max: 64 }));
    let text = text.replacen("!\n", "", 1);
    assert_eq!(ProofFile::parse(&text), Err(ProofFileError::BadHash { line: 1 }));
    for bad in [
        "",
        "c2sp.org/tlog-proof@v1\nindex 0\n",
        "c2sp.org/tlog-proof@v2\nindex 0\n\nnote\n",
        "c2sp.org/tlog-proof@v1\nindex 01\n\nnote\n",
        "c2sp.org/tlog-proof@v1\nextra !!\nindex 1\n\nnote\n",
        "c2sp.org/tlog-proof@v1\n\nnote\n",
    ] {
        assert!(ProofFile::parse(bad).is_err(), "accepted {bad:?}");
    }
}

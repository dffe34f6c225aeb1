//! Tamper-evident, append-only Merkle log.
//!
//! The ledger hashes opaque entry bytes into an RFC 6962 / RFC 9162 Merkle
//! tree and proves two things about it: that an entry is in the log
//! (inclusion proofs) and that a later log extends an earlier one without
//! rewriting it (consistency proofs). It knows nothing of workflows, SQL or
//! HTTP; persistence goes through the small synchronous [`NodeStore`] trait so
//! that a database-backed store can write nodes in the same transaction as the
//! event they log.
//!
//! # Hashing
//!
//! * [`leaf_hash`]`(entry) = SHA-256(0x00 || entry)`
//! * [`node_hash`]`(l, r) = SHA-256(0x01 || l || r)`
//! * the root of the empty tree is [`EMPTY_ROOT`]` = SHA-256("")`
//!
//! # Entry encoding
//!
//! The ledger hashes whatever bytes it is given. The documented encoding for
//! Attest's entries is RFC 8785 JSON Canonicalization Scheme (JCS) JSON,
//! produced by [`canonical::to_canonical_json`]: sorted keys, no insignificant
//! whitespace and ECMAScript number formatting, so that any verifier in any
//! language that re-serialises the same value gets the same bytes and hence
//! the same leaf hash.
//!
//! # Storage layout
//!
//! `node(level, index)` is the root of the complete subtree over leaves
//! `[index << level, (index + 1) << level)`; level 0 holds the leaf hashes.
//! Only complete subtrees are stored: roots and proofs of trees whose size is
//! not a power of two are assembled from them with `O(log n)` reads.
//!
//! # Consistency from size 0
//!
//! RFC 9162 §2.1.4 defines no consistency proof from the empty tree, because
//! every tree trivially extends it. The ledger makes that explicit:
//!
//! * [`consistency_proof`]`(store, 0, n)` with `n > 0` fails with
//!   [`LedgerError::FromEmptyTree`], and
//!   [`verify::verify_consistency`]`(0, n, ..)` with `n > 0` fails with
//!   [`verify::ProofError::FromEmptyTree`], whatever the proof.
//! * `0 → 0` is accepted only with an empty proof and both roots equal to
//!   [`EMPTY_ROOT`].
//!
//! A client that holds no earlier checkpoint has nothing to check
//! consistency against: it should record the first signed checkpoint it sees
//! and check consistency from that one on. The shared transparency-dev test
//! vectors agree: every vector with `size1 = 0` and `size2 > 0` expects an
//! error, including one whose old root is the genuine empty-tree root and
//! whose proof is empty.
//!
//! # Formats
//!
//! * [`note`]: C2SP signed-note with Ed25519 keys.
//! * [`checkpoint`]: C2SP tlog-checkpoint, a signed tree head.
//! * [`proof_file`]: C2SP tlog-proof, an offline-verifiable inclusion proof.
//!
//! Every parser bounds its input before doing any work on it; see the `MAX_*`
//! constants of each module.

pub mod canonical;
pub mod checkpoint;
mod jcs;
pub mod note;
pub mod proof_file;
mod tree;
pub mod verify;

use sha2::{Digest, Sha256};

pub use tree::{
    LedgerError, MemoryNodeStore, MemoryStoreError, NodeStore, append, append_batch, consistency_proof,
    inclusion_proof, root,
};

/// A SHA-256 digest: a leaf hash, an interior node hash or a tree root.
pub type Hash = [u8; 32];

/// Root of the empty tree: SHA-256 of the empty string (RFC 9162 §2.1.1).
pub const EMPTY_ROOT: Hash = [
    0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24, 0x27, 0xae, 0x41,
    0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
];

/// Hash of one log entry: `SHA-256(0x00 || entry)`.
pub fn leaf_hash(entry: &[u8]) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([0x00]);
    hasher.update(entry);
    hasher.finalize().into()
}

/// Hash of an interior node: `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([0x01]);
    hasher.update(left);
    hasher.update(right);
    hasher.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_root_is_sha256_of_nothing() {
        let digest: Hash = Sha256::digest(b"").into();
        assert_eq!(digest, EMPTY_ROOT);
    }

    #[test]
    fn hashes_are_domain_separated() {
        // Known values from RFC 6962 test data: the leaf hash of the empty entry.
        let empty_leaf = leaf_hash(b"");
        assert_eq!(
            empty_leaf[..4],
            [0x6e, 0x34, 0x0b, 0x9c],
            "leaf hash of the empty entry must match RFC 6962 test data"
        );
        assert_ne!(node_hash(&empty_leaf, &empty_leaf), leaf_hash(&[0u8; 64]));
    }
}

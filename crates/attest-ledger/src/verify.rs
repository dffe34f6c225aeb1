//! The verifier side: checking proofs against roots, and recomputing a root
//! from leaves. Needs no store.
//!
//! Each check first compares the proof's length with the exact length that
//! the sizes and index call for, so an oversized proof costs no hashing.

use crate::{EMPTY_ROOT, Hash, node_hash};

/// Upper bound on an inclusion proof: one hash per level of a tree of fewer
/// than 2^64 leaves.
pub const MAX_INCLUSION_PROOF_HASHES: usize = 64;

/// Upper bound on a consistency proof: an inclusion path from a leaf (64)
/// plus the starting subtree hash when the old size is not a power of two.
pub const MAX_CONSISTENCY_PROOF_HASHES: usize = 65;

/// Why a proof was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The proof is longer than any proof for a tree of fewer than 2^64 leaves.
    #[error("proof has {len} hashes, more than the {max} any tree of fewer than 2^64 leaves needs")]
    TooLong { len: usize, max: usize },
    /// The leaf index is at or past the tree size.
    #[error("leaf index {index} is outside a tree of size {size}")]
    IndexOutOfRange { index: u64, size: u64 },
    /// The proof length does not match the sizes and index.
    #[error("proof has {len} hashes but these sizes and index need exactly {expected}")]
    WrongLength { len: usize, expected: usize },
    /// Consistency was asked from a larger tree to a smaller one.
    #[error("old size {old_size} is larger than new size {new_size}: a log never shrinks")]
    SizeOrder { old_size: u64, new_size: u64 },
    /// RFC 9162 defines no consistency proof from the empty tree.
    #[error(
        "no consistency proof exists from the empty tree to size {new_size} (RFC 9162 §2.1.4): \
         trust the first checkpoint and check consistency from it on"
    )]
    FromEmptyTree { new_size: u64 },
    /// A tree of size 0 has exactly one root.
    #[error("a tree of size 0 must have the root SHA-256(\"\")")]
    EmptyTreeRoot,
    /// The proof leads to a different root than the one given.
    #[error("the proof does not lead to the expected {which} root")]
    RootMismatch { which: WhichRoot },
}

/// Which root a [`ProofError::RootMismatch`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhichRoot {
    /// The single root of an inclusion proof.
    Tree,
    /// The root of the old tree in a consistency proof.
    Old,
    /// The root of the new tree in a consistency proof.
    New,
}

impl std::fmt::Display for WhichRoot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Tree => "tree",
            Self::Old => "old",
            Self::New => "new",
        })
    }
}

/// Checks that `leaf` is the leaf hash at `index` in the tree of `size`
/// leaves whose root is `root` (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(leaf: &Hash, index: u64, size: u64, proof: &[Hash], root: &Hash) -> Result<(), ProofError> {
    check_len_bound(proof, MAX_INCLUSION_PROOF_HASHES)?;
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let (inner, border) = split_path(index, size - 1);
    check_len(proof, inner + border)?;
    let (inner_hashes, border_hashes) = proof.split_at(inner);
    let computed = chain_border(chain_inner(*leaf, inner_hashes, index), border_hashes);
    if computed == *root { Ok(()) } else { Err(ProofError::RootMismatch { which: WhichRoot::Tree }) }
}

/// Checks that the tree of `new_size` leaves with root `new_root` extends the
/// tree of `old_size` leaves with root `old_root` (RFC 9162 §2.1.4.2).
///
/// Equal sizes need an empty proof and equal roots (and, for size 0, the root
/// [`EMPTY_ROOT`]); from size 0 to a larger size there is no proof and the
/// call fails with [`ProofError::FromEmptyTree`].
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    check_len_bound(proof, MAX_CONSISTENCY_PROOF_HASHES)?;
    if old_size > new_size {
        return Err(ProofError::SizeOrder { old_size, new_size });
    }
    if old_size == new_size {
        check_len(proof, 0)?;
        if old_size == 0 && *old_root != EMPTY_ROOT {
            return Err(ProofError::EmptyTreeRoot);
        }
        return if old_root == new_root { Ok(()) } else { Err(ProofError::RootMismatch { which: WhichRoot::New }) };
    }
    if old_size == 0 {
        return Err(ProofError::FromEmptyTree { new_size });
    }
    // Start from the largest complete subtree that ends the old tree; when it
    // is the whole old tree its hash is the old root, which the proof omits.
    let level = old_size.trailing_zeros();
    let index = (old_size >> level) - 1;
    let (inner, border) = split_path(index, (new_size - 1) >> level);
    let omitted = usize::from(index == 0);
    check_len(proof, 1 - omitted + inner + border)?;
    let (seed, path) = match proof.split_first() {
        Some((first, rest)) if omitted == 0 => (*first, rest),
        _ => (*old_root, proof),
    };
    let (inner_hashes, border_hashes) = path.split_at(inner);
    let old = chain_border(chain_inner_left(seed, inner_hashes, index), border_hashes);
    if old != *old_root {
        return Err(ProofError::RootMismatch { which: WhichRoot::Old });
    }
    let new = chain_border(chain_inner(seed, inner_hashes, index), border_hashes);
    if new != *new_root {
        return Err(ProofError::RootMismatch { which: WhichRoot::New });
    }
    Ok(())
}

/// Root of the tree over `leaves` (leaf hashes), computed in one pass with
/// `O(log n)` memory.
pub fn root_from_leaves(leaves: &[Hash]) -> Hash {
    let mut builder = RootBuilder::new();
    for leaf in leaves {
        builder.push(leaf);
    }
    builder.root()
}

/// Streaming root computation: push leaf hashes in log order, read the root
/// of the leaves pushed so far at any time. Keeps one hash per set bit of the
/// size, so a full log can be re-verified without holding it in memory.
#[derive(Debug, Clone, Default)]
pub struct RootBuilder {
    size: u64,
    /// Roots of the complete subtrees covering the leaves so far, largest
    /// first, with their levels.
    subtrees: Vec<(u32, Hash)>,
}

impl RootBuilder {
    /// A builder for the empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the next leaf hash.
    pub fn push(&mut self, leaf: &Hash) {
        self.subtrees.push((0, *leaf));
        while let [.., (left_level, left), (right_level, right)] = self.subtrees[..] {
            if left_level != right_level {
                break;
            }
            self.subtrees.truncate(self.subtrees.len() - 2);
            self.subtrees.push((left_level + 1, node_hash(&left, &right)));
        }
        self.size += 1;
    }

    /// Number of leaves pushed.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Root of the leaves pushed so far; [`EMPTY_ROOT`] before the first.
    pub fn root(&self) -> Hash {
        let mut subtrees = self.subtrees.iter().rev().map(|(_, hash)| *hash);
        match subtrees.next() {
            None => EMPTY_ROOT,
            Some(smallest) => subtrees.fold(smallest, |right, left| node_hash(&left, &right)),
        }
    }
}

fn check_len_bound(proof: &[Hash], max: usize) -> Result<(), ProofError> {
    if proof.len() > max { Err(ProofError::TooLong { len: proof.len(), max }) } else { Ok(()) }
}

fn check_len(proof: &[Hash], expected: usize) -> Result<(), ProofError> {
    if proof.len() == expected { Ok(()) } else { Err(ProofError::WrongLength { len: proof.len(), expected }) }
}

/// Splits the path of node `index` to the root of a tree whose last node at
/// the same level is `last` into the levels where it has a sibling on either
/// side (`inner`) and the left siblings along the right edge above them
/// (`border`).
fn split_path(index: u64, last: u64) -> (usize, usize) {
    let inner = 64 - (index ^ last).leading_zeros();
    let border = index.checked_shr(inner).unwrap_or(0).count_ones();
    (inner as usize, border as usize)
}

/// Hashes up the inner levels; bit `step` of `index` says on which side the
/// sibling sits.
fn chain_inner(seed: Hash, hashes: &[Hash], index: u64) -> Hash {
    hashes.iter().enumerate().fold(seed, |hash, (step, sibling)| {
        if (index >> step) & 1 == 0 { node_hash(&hash, sibling) } else { node_hash(sibling, &hash) }
    })
}

/// Like [`chain_inner`] but only through left siblings: the right siblings
/// lie past the old tree's end, so the old root does not include them.
fn chain_inner_left(seed: Hash, hashes: &[Hash], index: u64) -> Hash {
    hashes.iter().enumerate().fold(
        seed,
        |hash, (step, sibling)| {
            if (index >> step) & 1 == 1 { node_hash(sibling, &hash) } else { hash }
        },
    )
}

/// Hashes up the right edge, where every sibling is on the left.
fn chain_border(seed: Hash, hashes: &[Hash]) -> Hash {
    hashes.iter().fold(seed, |hash, sibling| node_hash(sibling, &hash))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::leaf_hash;

    #[test]
    fn oversized_proofs_are_refused_by_length() {
        let proof = vec![[0u8; 32]; 1_000_000];
        assert_eq!(
            verify_inclusion(&[0; 32], 0, u64::MAX, &proof, &[0; 32]),
            Err(ProofError::TooLong { len: 1_000_000, max: MAX_INCLUSION_PROOF_HASHES })
        );
        assert_eq!(
            verify_consistency(1, u64::MAX, &[0; 32], &[0; 32], &proof),
            Err(ProofError::TooLong { len: 1_000_000, max: MAX_CONSISTENCY_PROOF_HASHES })
        );
    }

    #[test]
    fn longest_proofs_fit_the_bounds() {
        let (inner, border) = split_path(0, u64::MAX - 1);
        assert_eq!(inner + border, MAX_INCLUSION_PROOF_HASHES);
        // From size 3 to 2^64 - 1: the seed plus 64 inner levels.
        let (inner, border) = split_path(2, u64::MAX - 1);
        assert_eq!(1 + inner + border, MAX_CONSISTENCY_PROOF_HASHES);
    }

    #[test]
    fn size_zero_consistency() {
        let leaf = leaf_hash(b"a");
        assert_eq!(verify_consistency(0, 0, &EMPTY_ROOT, &EMPTY_ROOT, &[]), Ok(()));
        assert_eq!(verify_consistency(0, 0, &leaf, &leaf, &[]), Err(ProofError::EmptyTreeRoot));
        assert_eq!(verify_consistency(0, 1, &EMPTY_ROOT, &leaf, &[]), Err(ProofError::FromEmptyTree { new_size: 1 }));
    }

    #[test]
    fn root_builder_matches_small_trees() {
        let leaves: Vec<Hash> = (0u8..3).map(|i| leaf_hash(&[i])).collect();
        assert_eq!(root_from_leaves(&[]), EMPTY_ROOT);
        assert_eq!(root_from_leaves(&leaves[..1]), leaves[0]);
        assert_eq!(root_from_leaves(&leaves), node_hash(&node_hash(&leaves[0], &leaves[1]), &leaves[2]));
    }
}

//! Property tests of the tree against a naive recursive RFC 9162 model.

use attest_ledger::verify::{ProofError, root_from_leaves, verify_consistency, verify_inclusion};
use attest_ledger::{
    EMPTY_ROOT, Hash, MemoryNodeStore, append, append_batch, consistency_proof, inclusion_proof, leaf_hash, node_hash,
    root,
};
use proptest::prelude::*;

const MAX_LEAVES: u64 = 3000;

/// Largest power of two strictly below `n` (n >= 2).
fn split_point(n: usize) -> usize {
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

/// MTH(D[n]) of RFC 9162 §2.1.1.
fn model_root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => EMPTY_ROOT,
        1 => leaves[0],
        n => {
            let k = split_point(n);
            node_hash(&model_root(&leaves[..k]), &model_root(&leaves[k..]))
        }
    }
}

/// PATH(m, D[n]) of RFC 9162 §2.1.3.1.
fn model_path(m: usize, leaves: &[Hash]) -> Vec<Hash> {
    let n = leaves.len();
    if n <= 1 {
        return Vec::new();
    }
    let k = split_point(n);
    if m < k {
        let mut path = model_path(m, &leaves[..k]);
        path.push(model_root(&leaves[k..]));
        path
    } else {
        let mut path = model_path(m - k, &leaves[k..]);
        path.push(model_root(&leaves[..k]));
        path
    }
}

/// SUBPROOF(m, D[n], b) of RFC 9162 §2.1.4.1.
fn model_subproof(m: usize, leaves: &[Hash], complete: bool) -> Vec<Hash> {
    let n = leaves.len();
    if m == n {
        return if complete { Vec::new() } else { vec![model_root(leaves)] };
    }
    let k = split_point(n);
    if m <= k {
        let mut proof = model_subproof(m, &leaves[..k], complete);
        proof.push(model_root(&leaves[k..]));
        proof
    } else {
        let mut proof = model_subproof(m - k, &leaves[k..], false);
        proof.push(model_root(&leaves[..k]));
        proof
    }
}

fn leaves(count: u64, seed: u64) -> Vec<Hash> {
    (0..count).map(|i| leaf_hash(&[i.to_le_bytes(), seed.to_le_bytes()].concat())).collect()
}

fn store_of(leaves: &[Hash]) -> MemoryNodeStore {
    let mut store = MemoryNodeStore::new();
    let size = append_batch(&mut store, 0, leaves).expect("memory append");
    assert_eq!(size, leaves.len() as u64);
    store
}

/// A size in `1..=max` and a point in `0..size`.
fn size_and_below(max: u64) -> impl Strategy<Value = (u64, u64)> {
    (1..=max).prop_flat_map(|size| (Just(size), 0..size))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn roots_match_the_model((size, smaller) in size_and_below(MAX_LEAVES), seed: u64) {
        let leaves = leaves(size, seed);
        let store = store_of(&leaves);
        for n in [size, smaller] {
            let expected = model_root(&leaves[..n as usize]);
            prop_assert_eq!(root(&store, n).expect("root"), expected);
            prop_assert_eq!(root_from_leaves(&leaves[..n as usize]), expected);
        }
    }

    #[test]
    fn inclusion_proofs_match_the_model_and_verify(
        (size, index) in size_and_below(MAX_LEAVES),
        seed: u64,
        flip in any::<(usize, u8)>(),
    ) {
        let leaves = leaves(size, seed);
        let store = store_of(&leaves);
        let tree_root = root(&store, size).expect("root");
        let proof = inclusion_proof(&store, index, size).expect("proof");
        prop_assert_eq!(&proof, &model_path(index as usize, &leaves));
        let leaf = leaves[index as usize];
        prop_assert_eq!(verify_inclusion(&leaf, index, size, &proof, &tree_root), Ok(()));

        // Tampered proofs, leaves, indices and roots all fail. (A wrong size
        // may still verify when it shapes the same path: the size is
        // authenticated by the signed checkpoint, not by the proof.)
        if !proof.is_empty() {
            let mut tampered = proof.clone();
            let (position, bit) = flip;
            tampered[position % proof.len()][(bit % 32) as usize] ^= 1 << (bit % 8);
            prop_assert!(verify_inclusion(&leaf, index, size, &tampered, &tree_root).is_err());
            prop_assert!(verify_inclusion(&leaf, index, size, &proof[1..], &tree_root).is_err());
        }
        let mut longer = proof.clone();
        longer.push(leaf);
        prop_assert!(verify_inclusion(&leaf, index, size, &longer, &tree_root).is_err());
        let other_leaf = leaf_hash(b"not in the tree");
        prop_assert!(verify_inclusion(&other_leaf, index, size, &proof, &tree_root).is_err());
        for other_index in [index ^ 1, index.wrapping_add(1), index.wrapping_sub(1), index ^ 2] {
            if other_index != index {
                prop_assert!(verify_inclusion(&leaf, other_index, size, &proof, &tree_root).is_err());
            }
        }
        prop_assert!(verify_inclusion(&leaf, index, size, &proof, &leaf_hash(b"root")).is_err());
    }

    #[test]
    fn consistency_proofs_match_the_model_and_verify(
        (size, old) in size_and_below(MAX_LEAVES),
        seed: u64,
        flip in any::<(usize, u8)>(),
    ) {
        let old = old + 1;
        let leaves = leaves(size, seed);
        let store = store_of(&leaves);
        let new_root = root(&store, size).expect("root");
        let old_root = root(&store, old).expect("old root");
        let proof = consistency_proof(&store, old, size).expect("proof");
        let expected = if old == size {
            Vec::new()
        } else {
            model_subproof(old as usize, &leaves, true)
        };
        prop_assert_eq!(&proof, &expected);
        prop_assert_eq!(verify_consistency(old, size, &old_root, &new_root, &proof), Ok(()));

        if !proof.is_empty() {
            let mut tampered = proof.clone();
            let (position, bit) = flip;
            tampered[position % proof.len()][(bit % 32) as usize] ^= 1 << (bit % 8);
            prop_assert!(verify_consistency(old, size, &old_root, &new_root, &tampered).is_err());
            prop_assert!(verify_consistency(old, size, &new_root, &old_root, &proof).is_err());
        }
        prop_assert!(verify_consistency(old, size, &leaf_hash(b"x"), &new_root, &proof).is_err());
        prop_assert_eq!(
            verify_consistency(size, old, &new_root, &old_root, &proof).is_err(),
            old != size
        );
    }

    #[test]
    fn append_batch_equals_repeated_append(
        seed: u64,
        batches in prop::collection::vec(0usize..300, 0..20),
    ) {
        let total: usize = batches.iter().sum();
        let leaves = leaves(total as u64, seed);
        let mut one_by_one = MemoryNodeStore::new();
        let mut size = 0;
        for leaf in &leaves {
            size = append(&mut one_by_one, size, leaf).expect("append");
        }
        let mut batched = MemoryNodeStore::new();
        let mut batched_size = 0;
        let mut start = 0;
        for count in batches {
            batched_size =
                append_batch(&mut batched, batched_size, &leaves[start..start + count]).expect("batch");
            start += count;
        }
        prop_assert_eq!(size, batched_size);
        prop_assert_eq!(one_by_one, batched);
    }
}

#[test]
fn every_small_tree_matches_the_model() {
    // Exhaustive over small sizes, where off-by-one errors at powers of two live.
    let leaves = leaves(70, 7);
    let store = store_of(&leaves);
    for size in 1..=70u64 {
        let tree_root = root(&store, size).expect("root");
        assert_eq!(tree_root, model_root(&leaves[..size as usize]));
        for index in 0..size {
            let proof = inclusion_proof(&store, index, size).expect("proof");
            assert_eq!(proof, model_path(index as usize, &leaves[..size as usize]));
            verify_inclusion(&leaves[index as usize], index, size, &proof, &tree_root).expect("inclusion verifies");
        }
        for old in 1..=size {
            let proof = consistency_proof(&store, old, size).expect("proof");
            let old_root = root(&store, old).expect("old root");
            verify_consistency(old, size, &old_root, &tree_root, &proof).expect("consistency verifies");
        }
    }
    assert_eq!(verify_consistency(0, 5, &EMPTY_ROOT, &leaves[0], &[]), Err(ProofError::FromEmptyTree { new_size: 5 }));
}

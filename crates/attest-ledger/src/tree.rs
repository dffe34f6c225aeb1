//! The prover side: appending leaves to a [`NodeStore`] and building roots
//! and proofs from the complete subtrees it holds.

use crate::{EMPTY_ROOT, Hash, node_hash};

/// Persistence of complete-subtree hashes.
///
/// `node(level, index)` is the root of leaves `[index << level, (index + 1) << level)`;
/// level 0 holds the leaf hashes. Only complete subtrees are ever written, each
/// exactly once, in increasing index order within a level. The trait is
/// synchronous so that a database store can run inside the caller's transaction.
pub trait NodeStore {
    /// The store's own failure, kept as the source of [`LedgerError::Store`].
    type Error: std::error::Error + Send + Sync + 'static;

    /// Reads one node, `None` when it was never written.
    fn node(&self, level: u32, index: u64) -> Result<Option<Hash>, Self::Error>;

    /// Writes one node.
    fn put_node(&mut self, level: u32, index: u64, hash: &Hash) -> Result<(), Self::Error>;
}

/// Failures of the tree functions, generic over the store's error.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError<E: std::error::Error + 'static> {
    /// The store failed to read or write a node.
    #[error("the node store failed")]
    Store(#[source] E),
    /// A node that a tree of the given size must have is absent.
    #[error(
        "node (level {level}, index {index}) is missing from the store: the size passed in is \
         larger than what was appended, or the store lost writes"
    )]
    MissingNode { level: u32, index: u64 },
    /// A leaf index at or past the tree size.
    #[error("leaf index {index} is outside a tree of size {size}")]
    IndexOutOfRange { index: u64, size: u64 },
    /// A consistency proof was asked for from a larger tree to a smaller one.
    #[error("old size {old_size} is larger than new size {new_size}: a log never shrinks")]
    SizeOrder { old_size: u64, new_size: u64 },
    /// RFC 9162 defines no consistency proof from the empty tree.
    #[error(
        "no consistency proof exists from the empty tree to size {new_size} (RFC 9162 §2.1.4): \
         every tree extends the empty one, so trust the first checkpoint instead of proving it"
    )]
    FromEmptyTree { new_size: u64 },
    /// The tree would exceed `u64::MAX` leaves.
    #[error("appending {count} leaves to a tree of size {size} would exceed 2^64 - 1 leaves")]
    SizeOverflow { size: u64, count: usize },
}

fn read<S: NodeStore>(store: &S, level: u32, index: u64) -> Result<Hash, LedgerError<S::Error>> {
    store.node(level, index).map_err(LedgerError::Store)?.ok_or(LedgerError::MissingNode { level, index })
}

fn write<S: NodeStore>(store: &mut S, level: u32, index: u64, hash: &Hash) -> Result<(), LedgerError<S::Error>> {
    store.put_node(level, index, hash).map_err(LedgerError::Store)
}

/// Appends one leaf hash to a tree of `size` leaves and returns the new size.
///
/// Writes the leaf and every parent it completes: `O(log n)` worst case,
/// `O(1)` amortised reads and writes.
pub fn append<S: NodeStore>(store: &mut S, size: u64, leaf: &Hash) -> Result<u64, LedgerError<S::Error>> {
    append_batch(store, size, std::slice::from_ref(leaf))
}

/// Appends leaf hashes in order to a tree of `size` leaves and returns the new size.
///
/// Equivalent to calling [`append`] for each leaf, but each left sibling is
/// read from the store at most once per batch.
pub fn append_batch<S: NodeStore>(store: &mut S, size: u64, leaves: &[Hash]) -> Result<u64, LedgerError<S::Error>> {
    let new_size = u64::try_from(leaves.len())
        .ok()
        .and_then(|count| size.checked_add(count))
        .ok_or(LedgerError::SizeOverflow { size, count: leaves.len() })?;
    // Nodes of this batch that still wait for a right sibling, by level, so
    // that the carry chain does not read back what it has just written.
    let mut pending: [Option<Hash>; 64] = [None; 64];
    for (index, leaf) in (size..new_size).zip(leaves) {
        write(store, 0, index, leaf)?;
        let mut hash = *leaf;
        let mut level = 0u32;
        let mut position = index;
        while position & 1 == 1 {
            let left = match pending[level as usize].take() {
                Some(left) => left,
                None => read(store, level, position - 1)?,
            };
            hash = node_hash(&left, &hash);
            level += 1;
            position >>= 1;
            write(store, level, position, &hash)?;
        }
        // The node just written has an even index: it is a left sibling now.
        pending[level as usize] = Some(hash);
    }
    Ok(new_size)
}

/// Root hash of the tree of the first `size` leaves; [`EMPTY_ROOT`] for size 0.
///
/// `O(log n)` reads.
pub fn root<S: NodeStore>(store: &S, size: u64) -> Result<Hash, LedgerError<S::Error>> {
    if size == 0 {
        return Ok(EMPTY_ROOT);
    }
    edge_hash(store, size, 64)
}

/// Inclusion proof (RFC 9162 §2.1.3) for the leaf at `index` in the tree of
/// `size` leaves, from the leaf's sibling up to the root's child.
///
/// `O(log n)` reads.
pub fn inclusion_proof<S: NodeStore>(store: &S, index: u64, size: u64) -> Result<Vec<Hash>, LedgerError<S::Error>> {
    if index >= size {
        return Err(LedgerError::IndexOutOfRange { index, size });
    }
    let mut proof = Vec::new();
    path(store, 0, index, size, &mut proof)?;
    Ok(proof)
}

/// Consistency proof (RFC 9162 §2.1.4) that the tree of `new_size` leaves
/// extends the tree of `old_size` leaves.
///
/// Equal sizes give an empty proof. From size 0 to a larger size there is no
/// proof: see [`LedgerError::FromEmptyTree`] and the crate documentation.
/// `O(log n)` reads.
pub fn consistency_proof<S: NodeStore>(
    store: &S,
    old_size: u64,
    new_size: u64,
) -> Result<Vec<Hash>, LedgerError<S::Error>> {
    if old_size > new_size {
        return Err(LedgerError::SizeOrder { old_size, new_size });
    }
    if old_size == new_size {
        return Ok(Vec::new());
    }
    if old_size == 0 {
        return Err(LedgerError::FromEmptyTree { new_size });
    }
    // The proof starts from the largest complete subtree that ends the old
    // tree; when that subtree is the whole old tree the verifier already has
    // its hash (the old root), so it is left out.
    let level = old_size.trailing_zeros();
    let index = (old_size >> level) - 1;
    let mut proof = Vec::new();
    if index != 0 {
        proof.push(read(store, level, index)?);
    }
    path(store, level, index, new_size, &mut proof)?;
    Ok(proof)
}

/// Appends to `proof` the sibling hashes from the complete node
/// `(level, index)` up to the root of the tree of `size` leaves.
fn path<S: NodeStore>(
    store: &S,
    level: u32,
    index: u64,
    size: u64,
    proof: &mut Vec<Hash>,
) -> Result<(), LedgerError<S::Error>> {
    let last = (size - 1) >> level;
    // Below `inner` the path has a sibling at every level; the topmost of
    // those may straddle the right edge of the tree. Above it the path runs
    // along the right edge, where only left siblings exist.
    let inner = 64 - (index ^ last).leading_zeros();
    for step in 0..inner {
        proof.push(subtree_hash(store, level + step, (index >> step) ^ 1, size)?);
    }
    for step in inner..(64 - level) {
        if (index >> step) & 1 == 1 {
            proof.push(read(store, level + step, (index >> step) - 1)?);
        }
    }
    Ok(())
}

/// Hash of node `(level, index)` in the tree of `size` leaves, which may be
/// cut short by the tree's right edge. The node must start before `size`.
fn subtree_hash<S: NodeStore>(store: &S, level: u32, index: u64, size: u64) -> Result<Hash, LedgerError<S::Error>> {
    let end = (u128::from(index) + 1) << level;
    if end <= u128::from(size) { read(store, level, index) } else { edge_hash(store, size, level) }
}

/// Hash of the leaves from `size` rounded down to a multiple of `2^level` up
/// to `size`, folded from the complete subtrees at the set bits of `size`
/// below `level`. `size` must have such a bit.
fn edge_hash<S: NodeStore>(store: &S, size: u64, level: u32) -> Result<Hash, LedgerError<S::Error>> {
    let lowest = size.trailing_zeros();
    let mut hash = read(store, lowest, (size >> lowest) - 1)?;
    for higher in (lowest + 1)..level {
        if (size >> higher) & 1 == 1 {
            hash = node_hash(&read(store, higher, (size >> higher) - 1)?, &hash);
        }
    }
    Ok(hash)
}

/// A [`NodeStore`] holding every level in a `Vec`.
///
/// Used by tests, benchmarks and the offline verifier. About `64 * n` bytes
/// for `n` leaves.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemoryNodeStore {
    levels: Vec<Vec<Hash>>,
}

/// Misuse of a [`MemoryNodeStore`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MemoryStoreError {
    /// Nodes of a level must be written in index order without gaps.
    #[error(
        "node (level {level}, index {index}) written out of order: the level holds {len} nodes, \
         so the next must have index {len}"
    )]
    OutOfOrder { level: u32, index: u64, len: u64 },
    /// Levels run from 0 (leaves) to 63 (the two halves of a 2^64-leaf tree).
    #[error("node level {level} does not exist: levels run from 0 to 63")]
    BadLevel { level: u32 },
    /// A node once written never changes in an append-only log.
    #[error("node (level {level}, index {index}) already holds a different hash")]
    Overwrite { level: u32, index: u64 },
}

impl MemoryNodeStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty store with room for `leaves` leaves and their parents.
    pub fn with_capacity(leaves: usize) -> Self {
        let mut levels = Vec::new();
        let mut count = leaves;
        while count > 0 {
            levels.push(Vec::with_capacity(count));
            count /= 2;
        }
        Self { levels }
    }

    /// Number of leaves stored.
    pub fn leaf_count(&self) -> u64 {
        self.levels.first().map_or(0, |leaves| leaves.len() as u64)
    }
}

impl NodeStore for MemoryNodeStore {
    type Error = MemoryStoreError;

    fn node(&self, level: u32, index: u64) -> Result<Option<Hash>, Self::Error> {
        let found = self
            .levels
            .get(level as usize)
            .zip(usize::try_from(index).ok())
            .and_then(|(nodes, index)| nodes.get(index));
        Ok(found.copied())
    }

    fn put_node(&mut self, level: u32, index: u64, hash: &Hash) -> Result<(), Self::Error> {
        if level >= 64 {
            return Err(MemoryStoreError::BadLevel { level });
        }
        let level_slot = level as usize;
        if self.levels.len() <= level_slot {
            self.levels.resize_with(level_slot + 1, Vec::new);
        }
        let nodes = &mut self.levels[level_slot];
        let len = nodes.len() as u64;
        if index == len {
            nodes.push(*hash);
            Ok(())
        } else if index < len && nodes[index as usize] == *hash {
            // Rewriting the same hash is harmless, e.g. a retried transaction.
            Ok(())
        } else if index < len {
            Err(MemoryStoreError::Overwrite { level, index })
        } else {
            Err(MemoryStoreError::OutOfOrder { level, index, len })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::leaf_hash;

    fn store_of(size: u64) -> MemoryNodeStore {
        let mut store = MemoryNodeStore::new();
        let leaves: Vec<Hash> = (0..size).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        append_batch(&mut store, 0, &leaves).expect("append to memory store");
        store
    }

    #[test]
    fn rfc9162_example_consistency_3_to_7() {
        // RFC 9162 §2.1.5: the proof from 3 to 7 is [c, d, g, l].
        let store = store_of(7);
        let proof = consistency_proof(&store, 3, 7).expect("proof");
        let c = store.node(0, 2).expect("read").expect("leaf 2");
        let d = store.node(0, 3).expect("read").expect("leaf 3");
        let g = store.node(1, 0).expect("read").expect("node g");
        let i = store.node(1, 2).expect("read").expect("node i");
        let j = store.node(0, 6).expect("read").expect("leaf 6");
        assert_eq!(proof, vec![c, d, g, node_hash(&i, &j)]);
    }

    #[test]
    fn missing_nodes_are_reported_not_panicked() {
        let store = store_of(5);
        assert!(matches!(root(&store, 9), Err(LedgerError::MissingNode { .. })));
        assert!(matches!(inclusion_proof(&store, 7, 8), Err(LedgerError::MissingNode { .. })));
        assert!(matches!(inclusion_proof(&store, 5, 5), Err(LedgerError::IndexOutOfRange { index: 5, size: 5 })));
        assert!(matches!(consistency_proof(&store, 0, 5), Err(LedgerError::FromEmptyTree { new_size: 5 })));
        assert!(matches!(consistency_proof(&store, 4, 3), Err(LedgerError::SizeOrder { .. })));
        assert_eq!(consistency_proof(&store, 0, 0).expect("empty"), Vec::<Hash>::new());
    }

    #[test]
    fn huge_sizes_do_not_overflow() {
        let mut store = store_of(3);
        assert!(matches!(append(&mut store, u64::MAX, &[0; 32]), Err(LedgerError::SizeOverflow { .. })));
        // Nodes for these sizes are absent; the point is that no arithmetic panics.
        for size in [u64::MAX, u64::MAX - 1, 1 << 63, (1 << 63) + 1] {
            assert!(root(&store, size).is_err());
            assert!(inclusion_proof(&store, size - 1, size).is_err());
            assert!(inclusion_proof(&store, 0, size).is_err());
            assert!(consistency_proof(&store, 3, size).is_err());
            assert!(consistency_proof(&store, size - 1, size).is_err());
        }
    }

    #[test]
    fn memory_store_refuses_gaps_and_rewrites() {
        let mut store = MemoryNodeStore::new();
        assert_eq!(store.put_node(0, 1, &[1; 32]), Err(MemoryStoreError::OutOfOrder { level: 0, index: 1, len: 0 }));
        store.put_node(0, 0, &[1; 32]).expect("first write");
        store.put_node(0, 0, &[1; 32]).expect("identical rewrite");
        assert_eq!(store.put_node(0, 0, &[2; 32]), Err(MemoryStoreError::Overwrite { level: 0, index: 0 }));
        assert!(matches!(
            append(&mut store, 5, &[3; 32]),
            Err(LedgerError::Store(MemoryStoreError::OutOfOrder { .. }))
        ));
    }
}

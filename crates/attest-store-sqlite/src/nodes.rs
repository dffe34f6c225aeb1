//! The Merkle tree's node storage inside an SQLite transaction.

use attest_ledger::{Hash, NodeStore, node_hash};
use attest_store::StoreResult;
use rusqlite::{OptionalExtension, ToSql, Transaction, params};

/// The levels between the leaves and this one are not stored: a node there
/// covers at most 8 leaves and is hashed again from their stored hashes when
/// it is read. Those levels were 7 of every 16 rows the tree wrote, on the
/// path of every command, while only proofs and roots read them. The leaves
/// stay: `attest audit verify` names a tampered entry by its own leaf.
const FIRST_STORED_INNER_LEVEL: u32 = 4;

/// Whether a level's nodes are rows of `ledger_nodes`.
fn stored(level: u32) -> bool {
    level == 0 || level >= FIRST_STORED_INNER_LEVEL
}

/// Complete-subtree hashes: the leaves and the levels from
/// [`FIRST_STORED_INNER_LEVEL`] up in the `ledger_nodes` table, read and
/// written in the caller's transaction so the tree moves with the entries,
/// and the levels between hashed from the leaves they cover. Each node is
/// written once, so a plain `INSERT` suffices and a second write is an error.
pub(crate) struct SqlNodes<'t, 'c> {
    pub tx: &'t Transaction<'c>,
}

impl SqlNodes<'_, '_> {
    /// A node of a level that is not stored, hashed from the leaves it
    /// covers; `None` until all of them are stored, as a subtree's node
    /// exists only once the subtree is complete.
    fn hashed_from_leaves(&self, level: u32, index: u64) -> rusqlite::Result<Option<Hash>> {
        debug_assert!(!stored(level), "stored levels are read from their table");
        let width = 1u64 << level;
        // Past i64::MAX no leaf can exist: indexes are SQLite integers.
        let Some((first, end)) = index
            .checked_mul(width)
            .and_then(|first| Some((i64::try_from(first).ok()?, i64::try_from(first.checked_add(width)?).ok()?)))
        else {
            return Ok(None);
        };
        let mut statement = self
            .tx
            .prepare_cached("SELECT hash FROM ledger_nodes WHERE level = 0 AND idx >= ?1 AND idx < ?2 ORDER BY idx")?;
        let mut rows = statement.query(params![first, end])?;
        let mut hashes: Vec<Hash> = Vec::with_capacity(width as usize);
        while let Some(row) = rows.next()? {
            match <Hash>::try_from(row.get_ref(0)?.as_blob()?) {
                Ok(hash) => hashes.push(hash),
                // A malformed leaf leaves its subtree without a node, as a
                // malformed stored node reads as none.
                Err(_) => return Ok(None),
            }
        }
        if hashes.len() as u64 != width {
            return Ok(None);
        }
        while hashes.len() > 1 {
            hashes = hashes.chunks_exact(2).map(|pair| node_hash(&pair[0], &pair[1])).collect();
        }
        Ok(hashes.first().copied())
    }
}

impl NodeStore for SqlNodes<'_, '_> {
    type Error = rusqlite::Error;

    fn node(&self, level: u32, index: u64) -> Result<Option<Hash>, Self::Error> {
        if !stored(level) {
            return self.hashed_from_leaves(level, index);
        }
        let blob: Option<Vec<u8>> = self
            .tx
            .prepare_cached("SELECT hash FROM ledger_nodes WHERE level = ?1 AND idx = ?2")?
            .query_row(params![level, index as i64], |r| r.get(0))
            .optional()?;
        Ok(blob.and_then(|b| <Hash>::try_from(b.as_slice()).ok()))
    }

    fn put_node(&mut self, level: u32, index: u64, hash: &Hash) -> Result<(), Self::Error> {
        if !stored(level) {
            return Ok(());
        }
        self.tx.prepare_cached("INSERT INTO ledger_nodes (level, idx, hash) VALUES (?1, ?2, ?3)")?.execute(params![
            level,
            index as i64,
            &hash[..]
        ])?;
        Ok(())
    }
}

/// The nodes one batch of appends writes, held in memory and inserted by
/// [`BufferedNodes::flush`] with multi-row statements in key order; reads see
/// the held nodes and then the table.
pub(crate) struct BufferedNodes<'t, 'c> {
    stored: SqlNodes<'t, 'c>,
    written: Vec<(u32, i64, Hash)>,
}

impl<'t, 'c> BufferedNodes<'t, 'c> {
    pub fn new(tx: &'t Transaction<'c>) -> Self {
        BufferedNodes { stored: SqlNodes { tx }, written: Vec::new() }
    }

    pub fn flush(mut self) -> StoreResult<()> {
        self.written.sort_unstable_by_key(|&(level, index, _)| (level, index));
        let values: Vec<&dyn ToSql> =
            self.written.iter().flat_map(|(level, index, hash)| [level as &dyn ToSql, index, hash]).collect();
        crate::insert_rows(self.stored.tx, "INSERT INTO ledger_nodes (level, idx, hash)", 3, &values)
    }
}

impl NodeStore for BufferedNodes<'_, '_> {
    type Error = rusqlite::Error;

    fn node(&self, level: u32, index: u64) -> Result<Option<Hash>, Self::Error> {
        let held = self.written.iter().rev().find(|&&(l, i, _)| l == level && i == index as i64);
        match held {
            Some(&(_, _, hash)) => Ok(Some(hash)),
            None => self.stored.node(level, index),
        }
    }

    fn put_node(&mut self, level: u32, index: u64, hash: &Hash) -> Result<(), Self::Error> {
        // A node of a level that is not stored is hashed from the table's
        // leaves when read: `append_batch` reads back only nodes completed
        // before its batch, and keeps those of its batch itself.
        if stored(level) {
            self.written.push((level, index as i64, *hash));
        }
        Ok(())
    }
}

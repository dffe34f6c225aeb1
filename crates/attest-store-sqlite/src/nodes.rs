//! The Merkle tree's node storage inside an SQLite transaction.

use attest_ledger::{Hash, NodeStore};
use attest_store::StoreResult;
use rusqlite::{OptionalExtension, ToSql, Transaction, params};

/// Complete-subtree hashes in the `ledger_nodes` table, read and written in
/// the caller's transaction so the tree moves with the entries. Each node is
/// written once, so a plain `INSERT` suffices and a second write is an error.
pub(crate) struct SqlNodes<'t, 'c> {
    pub tx: &'t Transaction<'c>,
}

impl NodeStore for SqlNodes<'_, '_> {
    type Error = rusqlite::Error;

    fn node(&self, level: u32, index: u64) -> Result<Option<Hash>, Self::Error> {
        let blob: Option<Vec<u8>> = self
            .tx
            .prepare_cached("SELECT hash FROM ledger_nodes WHERE level = ?1 AND idx = ?2")?
            .query_row(params![level, index as i64], |r| r.get(0))
            .optional()?;
        Ok(blob.and_then(|b| <Hash>::try_from(b.as_slice()).ok()))
    }

    fn put_node(&mut self, level: u32, index: u64, hash: &Hash) -> Result<(), Self::Error> {
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
        self.written.push((level, index as i64, *hash));
        Ok(())
    }
}

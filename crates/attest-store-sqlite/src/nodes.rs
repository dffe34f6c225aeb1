//! The Merkle tree's node storage inside an SQLite transaction.

use attest_ledger::{Hash, NodeStore};
use rusqlite::{OptionalExtension, Transaction, params};

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

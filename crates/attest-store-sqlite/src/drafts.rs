//! [`DraftStore`] for SQLite: template drafts in their own table.

use attest_store::{DraftRow, DraftSave, DraftStore, StoreError, StoreResult};
use jiff::Timestamp;
use rusqlite::{OptionalExtension, Row, params};

use crate::{SqliteStore, from_ms, ms, sql};

const COLUMNS: &str =
    "id, template_key, name, base_version, source, revision, created_by, created_at, updated_by, updated_at";

/// A row with its raw timestamps, finished by `finish`.
type RawDraft = (DraftRow, i64, i64);

fn draft_row(r: &Row<'_>) -> rusqlite::Result<RawDraft> {
    let revision: i64 = r.get(5)?;
    Ok((
        DraftRow {
            id: r.get(0)?,
            template_key: r.get(1)?,
            name: r.get(2)?,
            base_version: r.get(3)?,
            source: r.get(4)?,
            revision: revision as u64,
            created_by: r.get(6)?,
            created_at: Timestamp::UNIX_EPOCH,
            updated_by: r.get(8)?,
            updated_at: Timestamp::UNIX_EPOCH,
        },
        r.get(7)?,
        r.get(9)?,
    ))
}

fn finish((mut d, created, updated): RawDraft) -> StoreResult<DraftRow> {
    d.created_at = from_ms(created)?;
    d.updated_at = from_ms(updated)?;
    Ok(d)
}

impl DraftStore for SqliteStore {
    fn create_draft(&self, d: &DraftRow) -> StoreResult<()> {
        self.write(|tx| {
            let n = tx
                .execute(
                    &format!("INSERT INTO template_drafts ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) ON CONFLICT (id) DO NOTHING"),
                    params![
                        d.id,
                        d.template_key,
                        d.name,
                        d.base_version,
                        d.source,
                        d.revision as i64,
                        d.created_by,
                        ms(d.created_at),
                        d.updated_by,
                        ms(d.updated_at)
                    ],
                )
                .map_err(sql)?;
            if n == 0 {
                return Err(StoreError::Conflict(format!("a draft with id {} exists", d.id)));
            }
            Ok(())
        })
    }

    fn draft(&self, id: &str) -> StoreResult<Option<DraftRow>> {
        self.with_conn(|conn| {
            let raw = conn
                .prepare_cached(&format!("SELECT {COLUMNS} FROM template_drafts WHERE id = ?1"))
                .map_err(sql)?
                .query_row(params![id], draft_row)
                .optional()
                .map_err(sql)?;
            raw.map(finish).transpose()
        })
    }

    fn drafts(&self) -> StoreResult<Vec<DraftRow>> {
        self.with_conn(|conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT id, template_key, name, base_version, '', revision, created_by, created_at, updated_by,
                     updated_at FROM template_drafts ORDER BY updated_at DESC, id",
                )
                .map_err(sql)?;
            let raws = stmt.query_map([], draft_row).map_err(sql)?.collect::<Result<Vec<_>, _>>().map_err(sql)?;
            raws.into_iter().map(finish).collect()
        })
    }

    fn draft_count(&self) -> StoreResult<u64> {
        self.with_conn(|conn| {
            let n: i64 = conn.query_row("SELECT COUNT(*) FROM template_drafts", [], |r| r.get(0)).map_err(sql)?;
            Ok(n as u64)
        })
    }

    fn save_draft(&self, id: &str, expected_revision: u64, save: &DraftSave<'_>) -> StoreResult<u64> {
        self.write(|tx| {
            let current: Option<i64> = tx
                .query_row("SELECT revision FROM template_drafts WHERE id = ?1", params![id], |r| r.get(0))
                .optional()
                .map_err(sql)?;
            let Some(current) = current else {
                return Err(StoreError::NotFound(format!("no draft with id {id}")));
            };
            if current as u64 != expected_revision {
                return Err(StoreError::Conflict(format!(
                    "the draft was saved by someone else since you opened it (revision {current}, you edited {expected_revision}); reload it and make your change again"
                )));
            }
            let next = current + 1;
            tx.execute(
                "UPDATE template_drafts SET template_key = ?2, name = ?3, source = ?4, revision = ?5, updated_by = ?6,
                 updated_at = ?7 WHERE id = ?1",
                params![id, save.template_key, save.name, save.source, next, save.by, ms(save.at)],
            )
            .map_err(sql)?;
            Ok(next as u64)
        })
    }

    fn delete_draft(&self, id: &str) -> StoreResult<()> {
        self.write(|tx| {
            let n = tx.execute("DELETE FROM template_drafts WHERE id = ?1", params![id]).map_err(sql)?;
            if n == 0 {
                return Err(StoreError::NotFound(format!("no draft with id {id}")));
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let store = SqliteStore::open(dir.path().join("attest.db")).unwrap_or_else(|e| panic!("{e}"));
        (dir, store)
    }

    fn row(id: &str) -> DraftRow {
        let at = Timestamp::from_second(1_700_000_000).unwrap_or_else(|e| panic!("{e}"));
        DraftRow {
            id: id.into(),
            template_key: "k".into(),
            name: "K".into(),
            base_version: Some(2),
            source: "key: k\n".into(),
            revision: 1,
            created_by: "a@example.com".into(),
            created_at: at,
            updated_by: "a@example.com".into(),
            updated_at: at,
        }
    }

    #[test]
    fn a_draft_round_trips_and_lists_without_its_source() {
        let (_dir, s) = store();
        s.create_draft(&row("d1")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.draft("d1").unwrap_or_else(|e| panic!("{e}")), Some(row("d1")));
        let listed = s.drafts().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].source, "");
        assert_eq!(s.draft_count().unwrap_or_else(|e| panic!("{e}")), 1);
        assert!(matches!(s.create_draft(&row("d1")), Err(StoreError::Conflict(_))));
    }

    #[test]
    fn a_save_on_a_stale_revision_is_a_conflict_and_changes_nothing() {
        let (_dir, s) = store();
        s.create_draft(&row("d1")).unwrap_or_else(|e| panic!("{e}"));
        let at = Timestamp::from_second(1_700_000_100).unwrap_or_else(|e| panic!("{e}"));
        let save = DraftSave { template_key: "k2", name: "K2", source: "key: k2\n", by: "b@example.com", at };
        assert_eq!(s.save_draft("d1", 1, &save).unwrap_or_else(|e| panic!("{e}")), 2);
        let stale = DraftSave { source: "key: lost\n", ..save.clone() };
        assert!(matches!(s.save_draft("d1", 1, &stale), Err(StoreError::Conflict(_))));
        let stored = s.draft("d1").unwrap_or_else(|e| panic!("{e}")).unwrap_or_else(|| panic!("draft gone"));
        assert_eq!((stored.source.as_str(), stored.revision, stored.template_key.as_str()), ("key: k2\n", 2, "k2"));
        assert!(matches!(s.save_draft("nope", 1, &save), Err(StoreError::NotFound(_))));
        s.delete_draft("d1").unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(s.delete_draft("d1"), Err(StoreError::NotFound(_))));
    }
}

//! [`AuthStore`] for SQLite: credentials in their own tables (migration 2).

use attest_engine::WorkspaceEvent;
use attest_store::{
    AuthStore, CredentialChange, EntryEvent, IdempotentResponse, LedgerEntry, PasswordRow, SessionRow, StoreError,
    StoreResult, TokenRow,
};
use jiff::Timestamp;
use rusqlite::{OptionalExtension, Row, params};

use crate::{SqliteStore, append_entry, from_ms, ledger_size, ms, other, sql};

const TOKEN_COLUMNS: &str = "id, hash, name, kind, access, roles, created_by, created_at, last_used_at, revoked_at";

/// A token row with its raw timestamps and roles, finished by `finish_token`.
type RawToken = (TokenRow, i64, Option<i64>, Option<i64>, String);

fn token_row(r: &Row<'_>) -> rusqlite::Result<RawToken> {
    let roles: String = r.get(5)?;
    Ok((
        TokenRow {
            id: r.get(0)?,
            hash: r.get(1)?,
            name: r.get(2)?,
            kind: r.get(3)?,
            access: r.get(4)?,
            roles: Vec::new(),
            created_by: r.get(6)?,
            created_at: Timestamp::UNIX_EPOCH,
            last_used_at: None,
            revoked_at: None,
        },
        r.get(7)?,
        r.get(8)?,
        r.get(9)?,
        roles,
    ))
}

fn finish_token(raw: RawToken) -> StoreResult<TokenRow> {
    let (mut t, created, used, revoked, roles) = raw;
    t.created_at = from_ms(created)?;
    t.last_used_at = used.map(from_ms).transpose()?;
    t.revoked_at = revoked.map(from_ms).transpose()?;
    t.roles = serde_json::from_str(&roles).map_err(|e| StoreError::Corrupt(format!("token {} roles: {e}", t.id)))?;
    Ok(t)
}

impl AuthStore for SqliteStore {
    fn write_credential(&self, event: Option<&WorkspaceEvent>, change: &CredentialChange) -> StoreResult<()> {
        self.write(|tx| {
            match change {
                CredentialChange::SetPassword(p) => {
                    tx.execute(
                        "INSERT INTO passwords (email, phc, must_change, updated_at) VALUES (?1, ?2, ?3, ?4)
                         ON CONFLICT (email) DO UPDATE SET phc = excluded.phc, must_change = excluded.must_change,
                         updated_at = excluded.updated_at",
                        params![p.email, p.phc, p.must_change, ms(p.updated_at)],
                    )
                    .map_err(sql)?;
                }
                CredentialChange::CreateToken(t) => {
                    let roles = serde_json::to_string(&t.roles).map_err(other)?;
                    tx.execute(
                        "INSERT INTO api_tokens (id, hash, name, kind, access, roles, created_by, created_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                        params![t.id, t.hash, t.name, t.kind, t.access, roles, t.created_by, ms(t.created_at)],
                    )
                    .map_err(sql)?;
                }
                CredentialChange::RevokeToken { id, at } => {
                    let n = tx
                        .execute(
                            "UPDATE api_tokens SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
                            params![id, ms(*at)],
                        )
                        .map_err(sql)?;
                    if n == 0 {
                        return Err(StoreError::NotFound(format!("no active token with id {id}")));
                    }
                }
            }
            if let Some(event) = event {
                let seq = ledger_size(tx)?;
                let entry = LedgerEntry { seq, run: None, run_seq: None, event: EntryEvent::Workspace(event.clone()) };
                append_entry(tx, &entry)?;
            }
            Ok(())
        })
    }

    fn password(&self, email: &str) -> StoreResult<Option<PasswordRow>> {
        self.with_conn(|c| {
            let row = c
                .prepare_cached("SELECT email, phc, must_change, updated_at FROM passwords WHERE email = ?1")
                .map_err(sql)?
                .query_row([email], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, bool>(2)?, r.get::<_, i64>(3)?))
                })
                .optional()
                .map_err(sql)?;
            row.map(|(email, phc, must_change, at)| {
                Ok(PasswordRow { email, phc, must_change, updated_at: from_ms(at)? })
            })
            .transpose()
        })
    }

    fn put_session(&self, s: &SessionRow) -> StoreResult<()> {
        self.write(|tx| {
            tx.execute("DELETE FROM sessions WHERE expires_at < ?1", params![ms(s.created_at)]).map_err(sql)?;
            tx.execute(
                "INSERT INTO sessions (id_hash, email, csrf, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![s.id_hash, s.email, s.csrf, ms(s.created_at), ms(s.expires_at)],
            )
            .map_err(sql)?;
            Ok(())
        })
    }

    fn session(&self, id_hash: &str) -> StoreResult<Option<SessionRow>> {
        self.with_conn(|c| {
            let row = c
                .prepare_cached("SELECT id_hash, email, csrf, created_at, expires_at FROM sessions WHERE id_hash = ?1")
                .map_err(sql)?
                .query_row([id_hash], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, i64>(3)?,
                        r.get::<_, i64>(4)?,
                    ))
                })
                .optional()
                .map_err(sql)?;
            row.map(|(id_hash, email, csrf, c, e)| {
                Ok(SessionRow { id_hash, email, csrf, created_at: from_ms(c)?, expires_at: from_ms(e)? })
            })
            .transpose()
        })
    }

    fn delete_session(&self, id_hash: &str) -> StoreResult<()> {
        self.write(|tx| {
            tx.execute("DELETE FROM sessions WHERE id_hash = ?1", [id_hash]).map_err(sql)?;
            Ok(())
        })
    }

    fn delete_sessions_of(&self, email: &str) -> StoreResult<()> {
        self.write(|tx| {
            tx.execute("DELETE FROM sessions WHERE email = ?1", [email]).map_err(sql)?;
            Ok(())
        })
    }

    fn token_by_hash(&self, hash: &str) -> StoreResult<Option<TokenRow>> {
        self.with_conn(|c| {
            let raw = c
                .prepare_cached(&format!("SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE hash = ?1"))
                .map_err(sql)?
                .query_row([hash], token_row)
                .optional()
                .map_err(sql)?;
            raw.map(finish_token).transpose()
        })
    }

    fn tokens(&self) -> StoreResult<Vec<TokenRow>> {
        self.with_conn(|c| {
            let mut stmt = c
                .prepare_cached(&format!("SELECT {TOKEN_COLUMNS} FROM api_tokens ORDER BY created_at, id"))
                .map_err(sql)?;
            let rows = stmt.query_map([], token_row).map_err(sql)?;
            let mut out = Vec::new();
            for raw in rows {
                out.push(finish_token(raw.map_err(sql)?)?);
            }
            Ok(out)
        })
    }

    fn touch_token(&self, id: &str, at: Timestamp) -> StoreResult<()> {
        self.write(|tx| {
            tx.execute("UPDATE api_tokens SET last_used_at = ?2 WHERE id = ?1", params![id, ms(at)]).map_err(sql)?;
            Ok(())
        })
    }

    fn idempotent_response(&self, principal: &str, key: &str) -> StoreResult<Option<IdempotentResponse>> {
        self.with_conn(|c| {
            c.prepare_cached(
                "SELECT fingerprint, status, content_type, body FROM idempotency WHERE principal = ?1 AND key = ?2",
            )
            .map_err(sql)?
            .query_row([principal, key], |r| {
                Ok(IdempotentResponse {
                    fingerprint: r.get(0)?,
                    status: r.get(1)?,
                    content_type: r.get(2)?,
                    body: r.get(3)?,
                })
            })
            .optional()
            .map_err(sql)
        })
    }

    fn put_idempotent_response(
        &self,
        principal: &str,
        key: &str,
        r: &IdempotentResponse,
        at: Timestamp,
    ) -> StoreResult<()> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO idempotency (principal, key, fingerprint, status, content_type, body, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT DO NOTHING",
                params![principal, key, r.fingerprint, r.status, r.content_type, r.body, ms(at)],
            )
            .map_err(sql)?;
            Ok(())
        })
    }
}

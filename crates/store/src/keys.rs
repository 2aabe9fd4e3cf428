//! Local keys: a hash, a policy (one JSON value) and times; never the key.

use rusqlite::params;
use time::OffsetDateTime;

use crate::{get_stamp, get_time, stamp, Result, Stamp, Store};

/// A local key's stored form: never the key, only its hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalKeyRow {
    /// Row id (ignored on insert): audit rows point at it.
    pub id: i64,
    /// Name chosen by the person (unique among live keys).
    pub name: String,
    /// SHA-256 of the key.
    pub key_hash: Vec<u8>,
    /// What the key may do, as JSON (the core's `KeyPolicy`: connectors, methods, paths); the
    /// store keeps it as one value and never reads it.
    pub policy: String,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// Expiry, if any.
    pub expires_at: Option<OffsetDateTime>,
    /// Revocation time, if revoked.
    pub revoked_at: Option<OffsetDateTime>,
}

impl Store {
    /// Stores a new local key; returns its id.
    pub fn local_key_insert(&self, key: &LocalKeyRow) -> Result<i64> {
        self.conn.execute(
            "INSERT INTO local_keys (name, key_hash, policy, created_at, expires_at, revoked_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                key.name,
                key.key_hash,
                key.policy,
                Stamp(key.created_at),
                stamp(key.expires_at),
                stamp(key.revoked_at),
            ],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Every local key, newest first.
    pub fn local_keys(&self) -> Result<Vec<LocalKeyRow>> {
        let mut stmt = self.conn.prepare(
            "SELECT id, name, key_hash, policy, created_at, expires_at, revoked_at
             FROM local_keys ORDER BY id DESC",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(LocalKeyRow {
                id: r.get(0)?,
                name: r.get(1)?,
                key_hash: r.get(2)?,
                policy: r.get(3)?,
                created_at: get_stamp(r, 4)?,
                expires_at: get_time(r, 5)?,
                revoked_at: get_time(r, 6)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Marks a local key revoked; `false` when no live key has that name.
    pub fn local_key_revoke(&self, name: &str, at: OffsetDateTime) -> Result<bool> {
        Ok(self.conn.execute(
            "UPDATE local_keys SET revoked_at = ?2 WHERE name = ?1 AND revoked_at IS NULL",
            params![name, Stamp(at)],
        )? > 0)
    }

    /// Deletes a local key row (exec's short-lived keys, once their child has exited).
    pub fn local_key_delete(&self, name: &str) -> Result<bool> {
        Ok(self.conn.execute(
            "DELETE FROM local_keys WHERE name = ?1 AND revoked_at IS NULL",
            [name],
        )? > 0)
    }
}

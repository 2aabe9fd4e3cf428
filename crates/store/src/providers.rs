//! Providers: when each was added and when its client secret was stored.

use rusqlite::params;
use time::OffsetDateTime;

use crate::{get_stamp, get_time, stamp, Result, Stamp, Store};

/// A provider's non-secret facts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProviderRow {
    /// Name.
    pub name: String,
    /// When the client secret was last written to the keychain, if ever.
    pub client_secret_stored_at: Option<OffsetDateTime>,
    /// When the provider was added.
    pub created_at: OffsetDateTime,
    /// An OAuth 1.0a link's public key fingerprint (`SHA256:…`), when its key is stored.
    pub link_fingerprint: Option<String>,
}

impl Store {
    /// Records a provider (idempotent).
    pub fn provider_upsert(&self, name: &str, now: OffsetDateTime) -> Result<()> {
        self.conn.execute(
            "INSERT INTO providers (name, created_at) VALUES (?1, ?2) ON CONFLICT(name) DO NOTHING",
            params![name, Stamp(now)],
        )?;
        Ok(())
    }

    /// Records that the provider's client secret was written to the keychain.
    pub fn provider_secret_stored(&self, name: &str, at: Option<OffsetDateTime>) -> Result<()> {
        self.conn.execute(
            "UPDATE providers SET client_secret_stored_at = ?2 WHERE name = ?1",
            params![name, stamp(at)],
        )?;
        Ok(())
    }

    /// Records the fingerprint of the link key now in the keychain (`None`: removed).
    pub fn provider_link_fingerprint(&self, name: &str, fingerprint: Option<&str>) -> Result<()> {
        self.conn.execute(
            "UPDATE providers SET link_fingerprint = ?2 WHERE name = ?1",
            params![name, fingerprint],
        )?;
        Ok(())
    }

    /// Every provider row.
    pub fn providers(&self) -> Result<Vec<ProviderRow>> {
        let mut stmt = self.conn.prepare(
            "SELECT name, client_secret_stored_at, created_at, link_fingerprint FROM providers \
             ORDER BY created_at, name",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(ProviderRow {
                name: r.get(0)?,
                client_secret_stored_at: get_time(r, 1)?,
                created_at: get_stamp(r, 2)?,
                link_fingerprint: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Deletes a provider row and its grant.
    pub fn provider_delete(&self, name: &str) -> Result<bool> {
        Ok(self
            .conn
            .execute("DELETE FROM providers WHERE name = ?1", [name])?
            > 0)
    }
}

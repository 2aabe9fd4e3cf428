//! Connectors: when each was added, and what Latch learnt about its own credential.

use rusqlite::params;
use time::OffsetDateTime;

use crate::{get_stamp, get_time, stamp, ApiTokenKind, CredentialState, Result, Stamp, Store};

/// A connector's non-secret runtime facts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectorRow {
    /// Name.
    pub name: String,
    /// Provider name.
    pub provider: String,
    /// When it was added.
    pub added_at: OffsetDateTime,
    /// When its own credential (API token, PAT, API key, service secret) was last stored.
    pub credential_stored_at: Option<OffsetDateTime>,
    /// The last check of that credential against the upstream, if any.
    pub credential_state: Option<CredentialState>,
    /// When that check ran.
    pub credential_checked_at: Option<OffsetDateTime>,
    /// Why it was refused, in plain words, secret-free.
    pub credential_error: Option<String>,
    /// The credential's expiry, when the person told Latch (API tokens live at most a year).
    pub credential_expires_at: Option<OffsetDateTime>,
    /// For API tokens: where the token was found to work.
    pub token_kind: Option<ApiTokenKind>,
    /// For Connect apps: the installed app's facts, as JSON (never its shared secret).
    pub connect: Option<String>,
}

impl Store {
    /// Records a connector (idempotent; keeps the first `added_at`).
    pub fn connector_upsert(&self, name: &str, provider: &str, now: OffsetDateTime) -> Result<()> {
        self.conn.execute(
            "INSERT INTO connectors (name, provider, added_at) VALUES (?1, ?2, ?3)
             ON CONFLICT(name) DO UPDATE SET provider = excluded.provider",
            params![name, provider, Stamp(now)],
        )?;
        Ok(())
    }

    /// Records that a connector's static credential was stored (or removed, with `None`).
    pub fn connector_credential_stored(
        &self,
        name: &str,
        at: Option<OffsetDateTime>,
    ) -> Result<()> {
        self.conn.execute(
            "UPDATE connectors SET credential_stored_at = ?2 WHERE name = ?1",
            params![name, stamp(at)],
        )?;
        Ok(())
    }

    /// Deletes a connector row.
    pub fn connector_delete(&self, name: &str) -> Result<bool> {
        Ok(self
            .conn
            .execute("DELETE FROM connectors WHERE name = ?1", [name])?
            > 0)
    }

    /// Records what a check of a connector's own credential found.
    pub fn connector_credential_checked(
        &self,
        name: &str,
        state: Option<CredentialState>,
        error: Option<&str>,
        at: OffsetDateTime,
    ) -> Result<()> {
        self.conn.execute(
            "UPDATE connectors SET credential_state = ?2, credential_error = ?3,
                 credential_checked_at = ?4 WHERE name = ?1",
            params![name, state, error, Stamp(at)],
        )?;
        Ok(())
    }

    /// Records an installed Connect app's facts (JSON; `None` forgets them).
    pub fn connector_connect_app(&self, name: &str, app: Option<&str>) -> Result<()> {
        self.conn.execute(
            "UPDATE connectors SET connect = ?2 WHERE name = ?1",
            params![name, app],
        )?;
        Ok(())
    }

    /// Records where an API token works (`None`: not known yet).
    pub fn connector_token_kind(&self, name: &str, kind: Option<ApiTokenKind>) -> Result<()> {
        self.conn.execute(
            "UPDATE connectors SET token_kind = ?2 WHERE name = ?1",
            params![name, kind],
        )?;
        Ok(())
    }

    /// Records a credential's expiry (`None`: unknown).
    pub fn connector_credential_expiry(
        &self,
        name: &str,
        expires_at: Option<OffsetDateTime>,
    ) -> Result<()> {
        self.conn.execute(
            "UPDATE connectors SET credential_expires_at = ?2 WHERE name = ?1",
            params![name, stamp(expires_at)],
        )?;
        Ok(())
    }

    /// Forgets everything learnt about a connector's credential (it was removed or replaced).
    pub fn connector_credential_forget(&self, name: &str) -> Result<()> {
        self.conn.execute(
            "UPDATE connectors SET credential_stored_at = NULL, credential_state = NULL,
                 credential_error = NULL, credential_checked_at = NULL,
                 credential_expires_at = NULL, token_kind = NULL, connect = NULL
             WHERE name = ?1",
            [name],
        )?;
        Ok(())
    }

    /// One connector row.
    pub fn connector(&self, name: &str) -> Result<Option<ConnectorRow>> {
        Ok(self.connectors()?.into_iter().find(|c| c.name == name))
    }

    /// Every connector row.
    pub fn connectors(&self) -> Result<Vec<ConnectorRow>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT name, provider, added_at, credential_stored_at, credential_state,
                    credential_checked_at, credential_error, credential_expires_at, token_kind,
                    connect
             FROM connectors ORDER BY added_at, name",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(ConnectorRow {
                name: r.get(0)?,
                provider: r.get(1)?,
                added_at: get_stamp(r, 2)?,
                credential_stored_at: get_time(r, 3)?,
                credential_state: r.get(4)?,
                credential_checked_at: get_time(r, 5)?,
                credential_error: r.get(6)?,
                credential_expires_at: get_time(r, 7)?,
                token_kind: r.get(8)?,
                connect: r.get(9)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

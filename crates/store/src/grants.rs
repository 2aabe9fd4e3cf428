//! Grants: a token family's secret-free facts (account, scopes, expiry, generation, failures).

use rusqlite::{params, OptionalExtension};
use time::OffsetDateTime;

use crate::{get_time, stamp, GrantId, GrantKind, GrantState, Result, Store};

/// A grant's non-secret facts: one token family (a user consent) or one service credential.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GrantRow {
    /// Grant id.
    pub id: GrantId,
    /// A person's consent or a service account's credential.
    pub kind: GrantKind,
    /// State.
    pub state: GrantState,
    /// Account id from `/me`.
    pub account_id: Option<String>,
    /// Display name.
    pub account_name: Option<String>,
    /// E-mail.
    pub account_email: Option<String>,
    /// Granted scopes, space-separated.
    pub granted_scopes: String,
    /// First consent.
    pub obtained_at: Option<OffsetDateTime>,
    /// Last successful refresh (the refresh token's last rotation).
    pub refreshed_at: Option<OffsetDateTime>,
    /// When the current access token was issued.
    pub access_issued_at: Option<OffsetDateTime>,
    /// When the current access token expires.
    pub access_expires_at: Option<OffsetDateTime>,
    /// Set while a refresh is in flight; left behind by a crash mid-refresh.
    pub refresh_started_at: Option<OffsetDateTime>,
    /// Rotation counter: bumped on every token write.
    pub generation: i64,
    /// Last error, in plain words, secret-free.
    pub last_error: Option<String>,
    /// When the last failure happened.
    pub last_failure_at: Option<OffsetDateTime>,
    /// Consecutive refresh failures.
    pub consecutive_failures: i64,
}

#[allow(clippy::derivable_impls)]
impl Default for GrantState {
    fn default() -> Self {
        Self::Ok
    }
}

#[allow(clippy::derivable_impls)]
impl Default for GrantKind {
    fn default() -> Self {
        Self::User
    }
}

impl Store {
    /// Creates or replaces a grant's facts.
    pub fn grant_put(&self, grant: &GrantRow) -> Result<()> {
        self.conn.execute(
            "INSERT INTO grants (id, kind, state, account_id, account_name, account_email,
                 granted_scopes, obtained_at, refreshed_at, access_issued_at, access_expires_at,
                 refresh_started_at, generation, last_error, last_failure_at,
                 consecutive_failures)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)
             ON CONFLICT(id) DO UPDATE SET
                 kind = excluded.kind, state = excluded.state,
                 account_id = excluded.account_id, account_name = excluded.account_name,
                 account_email = excluded.account_email,
                 granted_scopes = excluded.granted_scopes, obtained_at = excluded.obtained_at,
                 refreshed_at = excluded.refreshed_at,
                 access_issued_at = excluded.access_issued_at,
                 access_expires_at = excluded.access_expires_at,
                 refresh_started_at = excluded.refresh_started_at,
                 generation = excluded.generation, last_error = excluded.last_error,
                 last_failure_at = excluded.last_failure_at,
                 consecutive_failures = excluded.consecutive_failures",
            params![
                grant.id,
                grant.kind,
                grant.state,
                grant.account_id,
                grant.account_name,
                grant.account_email,
                grant.granted_scopes,
                stamp(grant.obtained_at),
                stamp(grant.refreshed_at),
                stamp(grant.access_issued_at),
                stamp(grant.access_expires_at),
                stamp(grant.refresh_started_at),
                grant.generation,
                grant.last_error,
                stamp(grant.last_failure_at),
                grant.consecutive_failures,
            ],
        )?;
        Ok(())
    }

    /// A grant, if any.
    pub fn grant(&self, id: &GrantId) -> Result<Option<GrantRow>> {
        Ok(self
            .conn
            .query_row(
                "SELECT id, kind, state, account_id, account_name, account_email, granted_scopes,
                        obtained_at, refreshed_at, access_issued_at, access_expires_at,
                        refresh_started_at, generation, last_error, last_failure_at,
                        consecutive_failures
                 FROM grants WHERE id = ?1",
                [id.as_str()],
                |r| {
                    Ok(GrantRow {
                        id: r.get(0)?,
                        kind: r.get(1)?,
                        state: r.get(2)?,
                        account_id: r.get(3)?,
                        account_name: r.get(4)?,
                        account_email: r.get(5)?,
                        granted_scopes: r.get(6)?,
                        obtained_at: get_time(r, 7)?,
                        refreshed_at: get_time(r, 8)?,
                        access_issued_at: get_time(r, 9)?,
                        access_expires_at: get_time(r, 10)?,
                        refresh_started_at: get_time(r, 11)?,
                        generation: r.get(12)?,
                        last_error: r.get(13)?,
                        last_failure_at: get_time(r, 14)?,
                        consecutive_failures: r.get(15)?,
                    })
                },
            )
            .optional()?)
    }

    /// Deletes a grant and its sites.
    pub fn grant_delete(&self, id: &GrantId) -> Result<bool> {
        Ok(self
            .conn
            .execute("DELETE FROM grants WHERE id = ?1", [id.as_str()])?
            > 0)
    }
}

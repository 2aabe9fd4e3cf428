//! Latch's metadata in SQLite: providers, connectors, grants' non-secret facts, sites, local
//! keys (hash + policy) and the audit log, with versioned migrations and WAL.
//!
//! Architecture invariant: no column holds a secret. This crate does not know the core's
//! `Secret` type, so a secret cannot be handed to it without an explicit `expose()` at the
//! call site; `tests::no_column_is_named_like_a_secret` and the core's populated-database scan
//! keep it that way.

mod migrations;

use std::path::Path;
use std::time::Duration;

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use rusqlite::{params, Connection, OptionalExtension};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// A timestamp as stored: RFC 3339 text in UTC to the second (`2026-01-01T00:00:00Z`), so that
/// people reading the file, SQL comparisons and older rows all agree.
struct Stamp(OffsetDateTime);

impl ToSql for Stamp {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(format_time(self.0)))
    }
}

impl FromSql for Stamp {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        let text = value.as_str()?;
        OffsetDateTime::parse(text, &Rfc3339)
            .map(Self)
            .map_err(|e| FromSqlError::Other(Box::new(e)))
    }
}

/// Formats a timestamp the way the database stores it.
pub fn format_time(t: OffsetDateTime) -> String {
    let utc = t.to_offset(time::UtcOffset::UTC);
    utc.replace_nanosecond(0)
        .unwrap_or(utc)
        .format(&Rfc3339)
        .unwrap_or_default()
}

fn stamp(t: Option<OffsetDateTime>) -> Option<Stamp> {
    t.map(Stamp)
}

fn get_time(row: &rusqlite::Row<'_>, index: usize) -> rusqlite::Result<Option<OffsetDateTime>> {
    Ok(row.get::<_, Option<Stamp>>(index)?.map(|s| s.0))
}

fn get_stamp(row: &rusqlite::Row<'_>, index: usize) -> rusqlite::Result<OffsetDateTime> {
    Ok(row.get::<_, Stamp>(index)?.0)
}

/// Declares a persisted enum: its text form in SQLite (and on the wire), parsing, SQL mapping.
macro_rules! stored_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
        #[cfg_attr(feature = "ts", derive(ts_rs::TS))]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $text)] $variant),+
        }

        impl $name {
            /// The stored text.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text),+
                }
            }

            /// Parses the stored text.
            pub fn parse(text: &str) -> Option<Self> {
                match text {
                    $($text => Some(Self::$variant),)+
                    _ => None,
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ToSql for $name {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                Ok(ToSqlOutput::from(self.as_str()))
            }
        }

        impl FromSql for $name {
            fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
                let text = value.as_str()?;
                Self::parse(text).ok_or_else(|| {
                    FromSqlError::Other(format!("unknown {} `{text}`", stringify!($name)).into())
                })
            }
        }
    };
}

stored_enum! {
    /// What kind of token family a grant is.
    GrantKind {
        /// A person's consent in the browser: a rotating refresh-token family.
        User = "user",
        /// A service account's client credentials: access tokens only.
        Service = "service",
    }
}

stored_enum! {
    /// A grant's state.
    GrantState {
        /// Usable.
        Ok = "ok",
        /// The token family is dead (`invalid_grant`): sign in again.
        NeedsLogin = "needs_login",
        /// Refreshing fails (token endpoint down); the next use tries again.
        RefreshFailing = "refresh_failing",
        /// A refresh was sent and no answer came in time, and the provider has no reuse window
        /// to resend it in: whether the family survived is unknown until the next refresh.
        RefreshUncertain = "refresh_uncertain",
        /// The identity provider refuses the credential itself (a service account's client
        /// secret is wrong, expired or lacks the requested scopes).
        CredentialRejected = "credential_rejected",
    }
}

stored_enum! {
    /// What the last check of a connector's own credential found.
    CredentialState {
        /// The upstream accepted it.
        Ok = "ok",
        /// The upstream refused it (401/403 on the probe).
        Rejected = "rejected",
    }
}

stored_enum! {
    /// Where an Atlassian API token works: scoped tokens only on the gateway
    /// (`api.atlassian.com/ex/{product}/{cloudId}`), classic ones only on the site URL.
    ApiTokenKind {
        /// Scoped: the gateway.
        Scoped = "scoped",
        /// Classic (unscoped): the site URL.
        Classic = "classic",
    }
}

/// A grant's id: the provider name for a person's consent (one token family shared by every
/// connector of the provider), `service:CONNECTOR` for a service account's credential.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct GrantId(String);

impl GrantId {
    /// The consent of a provider.
    pub fn user(provider: &str) -> Self {
        Self(provider.to_owned())
    }

    /// A service connector's own credential.
    pub fn service(connector: &str) -> Self {
        Self(format!("service:{connector}"))
    }

    /// Reads a stored id.
    pub fn from_stored(text: &str) -> Self {
        Self(text.to_owned())
    }

    /// The stored text (also the keychain item's owner and the lock file's stem).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Its kind, from its shape.
    pub fn kind(&self) -> GrantKind {
        if self.0.starts_with("service:") {
            GrantKind::Service
        } else {
            GrantKind::User
        }
    }

    /// The provider (user grants) or connector (service grants) it belongs to.
    pub fn owner(&self) -> &str {
        self.0.strip_prefix("service:").unwrap_or(&self.0)
    }
}

impl std::fmt::Display for GrantId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl ToSql for GrantId {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.0.as_str()))
    }
}

impl FromSql for GrantId {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        Ok(Self(value.as_str()?.to_owned()))
    }
}

/// What the database can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// SQLite reported an error.
    #[error("{0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The file was written by a newer Latch.
    #[error("the database has schema version {found}, newer than this Latch understands ({known}); upgrade Latch")]
    TooNew {
        /// Version in the file.
        found: i64,
        /// Newest version this build knows.
        known: i64,
    },
}

/// Result with the store's error.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A provider's non-secret facts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProviderRow {
    /// Name.
    pub name: String,
    /// When the client secret was last written to the keychain, if ever.
    pub client_secret_stored_at: Option<OffsetDateTime>,
    /// When the provider was added.
    pub created_at: OffsetDateTime,
}

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
}

/// A site's cloud id as Latch learnt it without a sign-in (`/_edge/tenant_info`) or from a
/// sign-in's accessible-resources.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SiteIdRow {
    /// The site's base URL (`https://acme.atlassian.net`).
    pub site_url: String,
    /// Its cloud id.
    pub cloud_id: String,
    /// When it was learnt.
    pub learnt_at: OffsetDateTime,
    /// Where from (`tenant_info`, `accessible_resources`).
    pub source: String,
}

// Written out: `stored_enum!` also declares enums that have no default.
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

/// A site a grant can reach.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SiteRow {
    /// Cloud id (repeats across products).
    pub cloud_id: String,
    /// Site name.
    pub name: String,
    /// Site URL.
    pub url: String,
    /// Scopes granted on it, space-separated.
    pub scopes: String,
}

/// Reads the space-joined path patterns of schema 1, failing closed where that form was
/// ambiguous: an empty pattern (`--path ''`) or a `*` next to other patterns (what
/// `--path 'v2/alerts *'` turned into) makes a key with no paths. Empty text means any path.
pub(crate) fn paths_from_joined(text: &str) -> Option<Vec<String>> {
    if text.is_empty() {
        return None;
    }
    let parts: Vec<&str> = text.split(' ').collect();
    let ambiguous = parts.iter().any(|p| p.is_empty()) || (parts.len() > 1 && parts.contains(&"*"));
    if ambiguous {
        return Some(Vec::new());
    }
    Some(parts.into_iter().map(str::to_owned).collect())
}

/// A local key's stored form: never the key, only its hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalKeyRow {
    /// Name chosen by the person.
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

/// Which audit rows [`Store::audit_page`] reads.
#[derive(Clone, Copy, Debug)]
pub struct AuditPage<'a> {
    /// Only rows after this id.
    pub after_id: i64,
    /// Only rows at or after this time.
    pub since: Option<OffsetDateTime>,
    /// Only this local key's rows.
    pub key: Option<&'a str>,
    /// Only this connector's rows.
    pub connector: Option<&'a str>,
    /// At most this many of the newest.
    pub limit: u32,
}

/// One proxied request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditRow {
    /// Time (refusals counted per minute: the minute).
    pub at: OffsetDateTime,
    /// Local key name, if the request had a valid one.
    pub key_name: Option<String>,
    /// Connector, if routed.
    pub connector: Option<String>,
    /// HTTP method.
    pub method: String,
    /// Path (no query string: it can carry secrets).
    pub path: String,
    /// Status returned to the caller.
    pub status: i64,
    /// Bytes sent to the caller.
    pub bytes: i64,
    /// Latency in microseconds.
    pub latency_us: i64,
    /// Whether the request triggered a refresh.
    pub refreshed: bool,
    /// How many requests the row stands for: 1, or a per-minute count of refusals that came
    /// before any key was known.
    pub count: i64,
    /// For counted refusals: the refusal code.
    pub reason: Option<String>,
}

/// The metadata database.
pub struct Store {
    conn: Connection,
}

impl Store {
    /// Opens (creating and migrating) the database file, in WAL mode.
    pub fn open(path: &Path) -> Result<Self> {
        let conn = Connection::open(path)?;
        Self::setup(conn, true)
    }

    /// A private in-memory database (unit tests).
    pub fn open_in_memory() -> Result<Self> {
        Self::setup(Connection::open_in_memory()?, false)
    }

    fn setup(conn: Connection, wal: bool) -> Result<Self> {
        // Several processes (CLI, desktop app) share the file: wait for locks, don't fail.
        conn.busy_timeout(Duration::from_secs(10))?;
        if wal {
            conn.pragma_update(None, "journal_mode", "WAL")?;
        }
        conn.pragma_update(None, "foreign_keys", true)?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        let mut store = Self { conn };
        migrations::apply(&mut store.conn)?;
        Ok(store)
    }

    /// The schema version after migrations.
    pub fn schema_version(&self) -> Result<i64> {
        Ok(self
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))?)
    }

    /// A value from the `meta` table.
    pub fn meta(&self, key: &str) -> Result<Option<String>> {
        Ok(self
            .conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()?)
    }

    /// Sets a value in the `meta` table unless it is already set; returns the stored value.
    /// Safe against two processes racing to initialise the same key.
    pub fn meta_init(&self, key: &str, value: &str) -> Result<String> {
        self.conn.execute(
            "INSERT OR IGNORE INTO meta (key, value) VALUES (?1, ?2)",
            [key, value],
        )?;
        Ok(self
            .conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))?)
    }

    /// Sets a value in the `meta` table (`None` deletes it).
    pub fn meta_set(&self, key: &str, value: Option<&str>) -> Result<()> {
        match value {
            Some(v) => self.conn.execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2)
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                [key, v],
            )?,
            None => self
                .conn
                .execute("DELETE FROM meta WHERE key = ?1", [key])?,
        };
        Ok(())
    }

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

    /// Every provider row.
    pub fn providers(&self) -> Result<Vec<ProviderRow>> {
        let mut stmt = self.conn.prepare(
            "SELECT name, client_secret_stored_at, created_at FROM providers ORDER BY created_at, name",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(ProviderRow {
                name: r.get(0)?,
                client_secret_stored_at: get_time(r, 1)?,
                created_at: get_stamp(r, 2)?,
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
                 credential_expires_at = NULL, token_kind = NULL
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
                    credential_checked_at, credential_error, credential_expires_at, token_kind
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
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Remembers a site's cloud id.
    pub fn site_id_put(&self, row: &SiteIdRow) -> Result<()> {
        self.conn.execute(
            "INSERT INTO site_ids (site_url, cloud_id, learnt_at, source) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT(site_url) DO UPDATE SET cloud_id = excluded.cloud_id,
                 learnt_at = excluded.learnt_at, source = excluded.source",
            params![row.site_url, row.cloud_id, Stamp(row.learnt_at), row.source],
        )?;
        Ok(())
    }

    /// A site's remembered cloud id.
    pub fn site_id(&self, site_url: &str) -> Result<Option<SiteIdRow>> {
        Ok(self
            .conn
            .query_row(
                "SELECT site_url, cloud_id, learnt_at, source FROM site_ids WHERE site_url = ?1",
                [site_url],
                |r| {
                    Ok(SiteIdRow {
                        site_url: r.get(0)?,
                        cloud_id: r.get(1)?,
                        learnt_at: r.get::<_, Stamp>(2)?.0,
                        source: r.get(3)?,
                    })
                },
            )
            .optional()?)
    }

    /// Every remembered site id.
    pub fn site_ids(&self) -> Result<Vec<SiteIdRow>> {
        let mut stmt = self.conn.prepare(
            "SELECT site_url, cloud_id, learnt_at, source FROM site_ids ORDER BY site_url",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(SiteIdRow {
                site_url: r.get(0)?,
                cloud_id: r.get(1)?,
                learnt_at: r.get::<_, Stamp>(2)?.0,
                source: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

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

    /// Replaces a grant's sites.
    pub fn sites_replace(&mut self, grant_id: &GrantId, sites: &[SiteRow]) -> Result<()> {
        let tx = self.conn.transaction()?;
        tx.execute("DELETE FROM sites WHERE grant_id = ?1", [grant_id.as_str()])?;
        for site in sites {
            tx.execute(
                "INSERT INTO sites (grant_id, cloud_id, name, url, scopes)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    grant_id.as_str(),
                    site.cloud_id,
                    site.name,
                    site.url,
                    site.scopes
                ],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// A grant's sites.
    pub fn sites(&self, grant_id: &GrantId) -> Result<Vec<SiteRow>> {
        let mut stmt = self.conn.prepare(
            "SELECT cloud_id, name, url, scopes FROM sites WHERE grant_id = ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map([grant_id.as_str()], |r| {
            Ok(SiteRow {
                cloud_id: r.get(0)?,
                name: r.get(1)?,
                url: r.get(2)?,
                scopes: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Stores a new local key.
    pub fn local_key_insert(&self, key: &LocalKeyRow) -> Result<()> {
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
        Ok(())
    }

    /// Every local key, newest first.
    pub fn local_keys(&self) -> Result<Vec<LocalKeyRow>> {
        let mut stmt = self.conn.prepare(
            "SELECT name, key_hash, policy, created_at, expires_at, revoked_at
             FROM local_keys ORDER BY id DESC",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(LocalKeyRow {
                name: r.get(0)?,
                key_hash: r.get(1)?,
                policy: r.get(2)?,
                created_at: get_stamp(r, 3)?,
                expires_at: get_time(r, 4)?,
                revoked_at: get_time(r, 5)?,
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
        Ok(self
            .conn
            .execute("DELETE FROM local_keys WHERE name = ?1", [name])?
            > 0)
    }

    /// A counter that every change to providers, connectors, grants, sites and local keys
    /// moves (SQLite triggers), and the audit log does not: caches compare it to know whether
    /// what they hold may be stale.
    pub fn changes(&self) -> Result<i64> {
        Ok(self
            .conn
            .prepare_cached("SELECT counter FROM changes WHERE id = 1")?
            .query_row([], |r| r.get(0))?)
    }

    /// SQLite's `data_version`: changes when another connection commits. Cheap way to know
    /// whether cached rows (local keys) may be stale.
    pub fn data_version(&self) -> Result<i64> {
        Ok(self
            .conn
            .pragma_query_value(None, "data_version", |r| r.get(0))?)
    }

    /// Appends audit rows in one transaction (the proxy batches them).
    pub fn audit_insert_batch(&mut self, rows: &[AuditRow]) -> Result<()> {
        let tx = self.conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO audit (at, key_name, connector, method, path, status, bytes,
                     latency_us, refreshed, count, reason)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
                 ON CONFLICT (at, reason, status) WHERE reason IS NOT NULL
                 DO UPDATE SET count = count + excluded.count",
            )?;
            for row in rows {
                stmt.execute(params![
                    Stamp(row.at),
                    row.key_name,
                    row.connector,
                    row.method,
                    row.path,
                    row.status,
                    row.bytes,
                    row.latency_us,
                    row.refreshed,
                    row.count,
                    row.reason,
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Appends an audit row.
    pub fn audit_insert(&mut self, row: &AuditRow) -> Result<()> {
        self.audit_insert_batch(std::slice::from_ref(row))
    }

    /// Deletes audit rows older than `before`; returns how many.
    pub fn audit_prune(&self, before: OffsetDateTime) -> Result<usize> {
        // Stored text compares as time: one form, UTC, to the second.
        Ok(self
            .conn
            .execute("DELETE FROM audit WHERE at < ?1", params![Stamp(before)])?)
    }

    /// Audit rows with their ids, oldest first: those after `after_id` (the live view's
    /// cursor), at or after `since`, of one key and one connector when given; at most `limit`
    /// of the newest.
    pub fn audit_page(&self, query: &AuditPage<'_>) -> Result<Vec<(i64, AuditRow)>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, at, key_name, connector, method, path, status, bytes, latency_us, refreshed,
                    count, reason
             FROM (SELECT * FROM audit
                   WHERE id > ?1 AND at >= ?2
                     AND (?3 IS NULL OR key_name = ?3) AND (?4 IS NULL OR connector = ?4)
                   ORDER BY id DESC LIMIT ?5)
             ORDER BY id",
        )?;
        let rows = stmt.query_map(
            params![
                query.after_id,
                // Stored text compares as time: one form, UTC, to the second.
                query.since.map_or_else(|| "0000".to_owned(), format_time),
                query.key,
                query.connector,
                query.limit
            ],
            |r| {
                Ok((
                    r.get(0)?,
                    AuditRow {
                        at: get_stamp(r, 1)?,
                        key_name: r.get(2)?,
                        connector: r.get(3)?,
                        method: r.get(4)?,
                        path: r.get(5)?,
                        status: r.get(6)?,
                        bytes: r.get(7)?,
                        latency_us: r.get(8)?,
                        refreshed: r.get(9)?,
                        count: r.get(10)?,
                        reason: r.get(11)?,
                    },
                ))
            },
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Every text and blob value in every table, for secret scans in tests and `doctor`.
    pub fn dump_values(&self) -> Result<Vec<(String, String, Vec<u8>)>> {
        let tables: Vec<String> = {
            let mut stmt = self
                .conn
                .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")?;
            let names = stmt.query_map([], |r| r.get(0))?;
            names.collect::<Result<_, _>>()?
        };
        let mut out = Vec::new();
        for table in tables {
            let columns = self.columns(&table)?;
            let mut stmt = self.conn.prepare(&format!("SELECT * FROM \"{table}\""))?;
            let mut rows = stmt.query([])?;
            while let Some(row) = rows.next()? {
                for (i, column) in columns.iter().enumerate() {
                    let bytes = match row.get_ref(i)? {
                        ValueRef::Text(t) | ValueRef::Blob(t) => t.to_vec(),
                        _ => continue,
                    };
                    out.push((table.clone(), column.clone(), bytes));
                }
            }
        }
        Ok(out)
    }

    /// Column names of a table.
    pub fn columns(&self, table: &str) -> Result<Vec<String>> {
        let mut stmt = self
            .conn
            .prepare(&format!("PRAGMA table_info(\"{table}\")"))?;
        let names = stmt.query_map([], |r| r.get(1))?;
        Ok(names.collect::<Result<_, _>>()?)
    }

    /// Every table name.
    pub fn tables(&self) -> Result<Vec<String>> {
        let mut stmt = self
            .conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")?;
        let names = stmt.query_map([], |r| r.get(0))?;
        Ok(names.collect::<Result<_, _>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn time(text: &str) -> OffsetDateTime {
        OffsetDateTime::parse(text, &Rfc3339).unwrap()
    }

    #[test]
    fn migrations_are_idempotent_and_versioned() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("latch.db");
        let store = Store::open(&path).unwrap();
        let version = store.schema_version().unwrap();
        assert_eq!(version, migrations::latest());
        drop(store);
        let store = Store::open(&path).unwrap();
        assert_eq!(store.schema_version().unwrap(), version);
        let mode: String = store
            .conn
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
    }

    #[test]
    fn refuses_a_newer_schema() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("latch.db");
        drop(Store::open(&path).unwrap());
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", 999).unwrap();
        drop(conn);
        assert!(matches!(
            Store::open(&path),
            Err(StoreError::TooNew { found: 999, .. })
        ));
    }

    /// Names are the first line of defence: a column called `refresh_token` is a bug even if
    /// nothing writes to it yet. Only non-secret facts about secrets may mention them.
    #[test]
    fn no_column_is_named_like_a_secret() {
        let store = Store::open_in_memory().unwrap();
        let allowed = [
            "client_secret_stored_at",
            "credential_stored_at",
            "credential_state",
            "credential_checked_at",
            "credential_error",
            "credential_expires_at",
            "token_kind",
            "key_hash",
        ];
        for table in store.tables().unwrap() {
            for column in store.columns(&table).unwrap() {
                let lower = column.to_lowercase();
                let suspicious = ["secret", "token", "password", "credential", "key"]
                    .iter()
                    .any(|w| lower.contains(w))
                    && lower != "key"
                    && lower != "key_name";
                assert!(
                    !suspicious || allowed.contains(&lower.as_str()),
                    "column {table}.{column} is named like a secret"
                );
            }
        }
    }

    #[test]
    fn grants_sites_keys_and_audit_round_trip() {
        let mut store = Store::open_in_memory().unwrap();
        store
            .provider_upsert("atlassian", time("2026-01-01T00:00:00Z"))
            .unwrap();
        let at = OffsetDateTime::parse("2026-01-01T00:00:00Z", &Rfc3339).unwrap();
        let grant = GrantRow {
            id: GrantId::user("atlassian"),
            kind: GrantKind::User,
            state: GrantState::Ok,
            granted_scopes: "read:me".into(),
            generation: 3,
            obtained_at: Some(at),
            access_expires_at: Some(at + time::Duration::hours(1)),
            ..GrantRow::default()
        };
        store.grant_put(&grant).unwrap();
        assert_eq!(
            store.grant(&GrantId::user("atlassian")).unwrap(),
            Some(grant)
        );
        // Times are stored as RFC 3339 text, readable and comparable in SQL.
        let text: String = store
            .conn
            .query_row("SELECT access_expires_at FROM grants", [], |r| r.get(0))
            .unwrap();
        assert_eq!(text, "2026-01-01T01:00:00Z");
        let site = SiteRow {
            cloud_id: "c1".into(),
            name: "acme".into(),
            url: "https://acme.atlassian.net".into(),
            scopes: "read:jira-work".into(),
        };
        store
            .sites_replace(&GrantId::user("atlassian"), std::slice::from_ref(&site))
            .unwrap();
        assert_eq!(
            store.sites(&GrantId::user("atlassian")).unwrap(),
            vec![site]
        );
        store.grant_delete(&GrantId::user("atlassian")).unwrap();
        assert!(store.sites(&GrantId::user("atlassian")).unwrap().is_empty());
        let audit = AuditRow {
            at: time("2026-01-01T00:00:01Z"),
            key_name: Some("k".into()),
            connector: Some("jira".into()),
            method: "GET".into(),
            path: "/jira/rest/api/3/myself".into(),
            status: 200,
            bytes: 10,
            latency_us: 5,
            refreshed: false,
            count: 1,
            reason: None,
        };
        store.audit_insert(&audit).unwrap();
        let mut other = audit.clone();
        other.key_name = Some("other".into());
        store.audit_insert(&other).unwrap();
        let all = AuditPage {
            after_id: 0,
            since: Some(time("2026-01-01T00:00:00Z")),
            key: None,
            connector: None,
            limit: 10,
        };
        let page = store.audit_page(&all).unwrap();
        assert_eq!(page.len(), 2);
        assert_eq!(page[0].1, audit);
        let first_id = page[0].0;
        let after = store
            .audit_page(&AuditPage {
                after_id: first_id,
                ..all
            })
            .unwrap();
        assert_eq!(after, vec![(first_id + 1, other.clone())]);
        let of_key = store
            .audit_page(&AuditPage {
                key: Some("k"),
                ..all
            })
            .unwrap();
        assert_eq!(of_key, vec![(first_id, audit)]);
        let newest = store.audit_page(&AuditPage { limit: 1, ..all }).unwrap();
        assert_eq!(newest, vec![(first_id + 1, other)]);
        let later = store
            .audit_page(&AuditPage {
                since: Some(time("2026-01-02T00:00:00Z")),
                ..all
            })
            .unwrap();
        assert!(later.is_empty());
        // Counted refusals: one row per minute, reason and status, however many arrive.
        let refused = AuditRow {
            at: time("2026-01-01T00:01:00Z"),
            key_name: None,
            connector: None,
            method: "*".into(),
            path: String::new(),
            status: 401,
            bytes: 0,
            latency_us: 0,
            refreshed: false,
            count: 3,
            reason: Some("missing_key".into()),
        };
        store
            .audit_insert_batch(&[refused.clone(), refused.clone()])
            .unwrap();
        let page = store.audit_page(&all).unwrap();
        let counted: Vec<_> = page.iter().filter(|(_, r)| r.reason.is_some()).collect();
        assert_eq!(counted.len(), 1);
        assert_eq!(counted[0].1.count, 6);
        assert_eq!(store.audit_prune(time("2026-01-01T00:00:30Z")).unwrap(), 2);
    }

    #[test]
    fn changes_count_everything_but_the_audit_log() {
        let mut store = Store::open_in_memory().unwrap();
        let before = store.changes().unwrap();
        store
            .provider_upsert("atlassian", time("2026-01-01T00:00:00Z"))
            .unwrap();
        let after = store.changes().unwrap();
        assert!(after > before);
        store
            .audit_insert(&AuditRow {
                at: time("2026-01-01T00:00:01Z"),
                key_name: None,
                connector: None,
                method: "GET".into(),
                path: "/".into(),
                status: 200,
                bytes: 0,
                latency_us: 0,
                refreshed: false,
                count: 1,
                reason: None,
            })
            .unwrap();
        assert_eq!(store.changes().unwrap(), after);
    }

    #[test]
    fn old_path_patterns_fail_closed_where_ambiguous() {
        assert_eq!(paths_from_joined(""), None);
        assert_eq!(
            paths_from_joined("rest/api/3/*"),
            Some(vec!["rest/api/3/*".to_owned()])
        );
        assert_eq!(
            paths_from_joined("a b"),
            Some(vec!["a".to_owned(), "b".to_owned()])
        );
        assert_eq!(paths_from_joined("v2/alerts *"), Some(Vec::new()));
        assert_eq!(paths_from_joined(" x"), Some(Vec::new()));
        assert_eq!(paths_from_joined("*"), Some(vec!["*".to_owned()]));
    }

    #[test]
    fn schema_1_keys_migrate_to_json_paths() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("latch.db");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(migrations::SCHEMA_1_FOR_TESTS).unwrap();
            conn.pragma_update(None, "user_version", 1).unwrap();
            for (name, patterns) in [("any", ""), ("two", "a/* b"), ("widened", "v2/alerts *")] {
                conn.execute(
                    "INSERT INTO local_keys (name, key_hash, connectors, read_only, path_patterns, created_at)
                     VALUES (?1, ?2, 'jira', 0, ?3, '2026-01-01T00:00:00Z')",
                    rusqlite::params![name, name.as_bytes(), patterns],
                )
                .unwrap();
            }
        }
        let store = Store::open(&path).unwrap();
        let keys = store.local_keys().unwrap();
        let paths = |n: &str| {
            let policy: serde_json::Value =
                serde_json::from_str(&keys.iter().find(|k| k.name == n).unwrap().policy).unwrap();
            serde_json::from_value::<Option<Vec<String>>>(policy["paths"].clone()).unwrap()
        };
        assert_eq!(paths("any"), None);
        assert_eq!(paths("two"), Some(vec!["a/*".to_owned(), "b".to_owned()]));
        assert_eq!(paths("widened"), Some(Vec::new()));
    }
}

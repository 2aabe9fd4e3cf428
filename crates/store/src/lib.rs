//! Latch's metadata in SQLite: providers, connectors, grants' non-secret facts, sites, local
//! keys (hash + policy) and the audit log, with versioned migrations and WAL.
//!
//! Architecture invariant: no column holds a secret. This crate does not know the core's
//! `Secret` type, so a secret cannot be handed to it without an explicit `expose()` at the
//! call site; `tests::no_column_is_named_like_a_secret` and the core's populated-database scan
//! keep it that way.

mod audit;
mod connectors;
mod grants;
mod keys;
mod migrations;
mod providers;
mod sites;

pub use audit::{AuditPage, AuditRow};
pub use connectors::ConnectorRow;
pub use grants::GrantRow;
pub use keys::LocalKeyRow;
pub use providers::ProviderRow;
pub use sites::{SiteIdRow, SiteRow};

use std::path::Path;
use std::time::Duration;

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use rusqlite::{Connection, OptionalExtension};
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

// Written out: `stored_enum!` also declares enums that have no default.

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

/// The metadata database.
pub struct Store {
    conn: Connection,
}

/// The database and its -wal and -shm files, readable by the user only (created so when new).
fn private_files(database: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
        if !database.exists() {
            let _ = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(database);
        }
        let mut companions = vec![database.to_owned()];
        for suffix in ["-wal", "-shm", "-journal"] {
            let mut name = database.as_os_str().to_owned();
            name.push(suffix);
            companions.push(name.into());
        }
        for file in companions {
            if file.exists() {
                let _ = std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600));
            }
        }
    }
    #[cfg(not(unix))]
    let _ = database;
}

impl Store {
    /// Opens (creating and migrating) the database file, in WAL mode.
    pub fn open(path: &Path) -> Result<Self> {
        private_files(path);
        let conn = Connection::open(path)?;
        let store = Self::setup(conn, true)?;
        // SQLite gives its -wal and -shm files the database's mode; older homes' files are
        // tightened here too.
        private_files(path);
        Ok(store)
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
            // A local key's row id (audit rows), not a key.
            "key_id",
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
            key_id: None,
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
            key_id: None,
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
                key_id: None,
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

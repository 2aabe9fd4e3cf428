//! Versioned schema migrations, tracked in `PRAGMA user_version`. Append only: a released
//! migration is never edited.

use rusqlite::{Connection, Transaction};

use crate::StoreError;

/// One migration: SQL, or Rust where SQL cannot express the conversion.
enum Step {
    Sql(&'static str),
    Rust(fn(&Transaction<'_>) -> Result<(), StoreError>),
}

const MIGRATIONS: &[Step] = &[
    Step::Sql(SCHEMA_1),
    Step::Sql(SCHEMA_2),
    Step::Rust(schema_3),
    Step::Sql(SCHEMA_4),
    Step::Rust(schema_5),
    Step::Sql(SCHEMA_6),
    Step::Sql(SCHEMA_7),
    Step::Sql(SCHEMA_8),
];

/// 8: a revoked key's name may be used again: only live keys' names are unique. Audit rows
/// name the key they belong to by id too, so an old and a new key of one name keep separate
/// histories (rows from before are matched to their key by name, unique until now).
const SCHEMA_8: &str = "CREATE TABLE local_keys_8 (
         id         INTEGER PRIMARY KEY,
         name       TEXT NOT NULL,
         key_hash   BLOB NOT NULL UNIQUE,
         policy     TEXT NOT NULL,
         created_at TEXT NOT NULL,
         expires_at TEXT,
         revoked_at TEXT
     );
     INSERT INTO local_keys_8 (id, name, key_hash, policy, created_at, expires_at, revoked_at)
         SELECT id, name, key_hash, policy, created_at, expires_at, revoked_at FROM local_keys;
     DROP TABLE local_keys;
     ALTER TABLE local_keys_8 RENAME TO local_keys;
     CREATE UNIQUE INDEX local_keys_live_name ON local_keys (name) WHERE revoked_at IS NULL;
     CREATE TRIGGER local_keys_insert_counts AFTER INSERT ON local_keys BEGIN UPDATE changes SET counter = counter + 1; END;
     CREATE TRIGGER local_keys_update_counts AFTER UPDATE ON local_keys BEGIN UPDATE changes SET counter = counter + 1; END;
     CREATE TRIGGER local_keys_delete_counts AFTER DELETE ON local_keys BEGIN UPDATE changes SET counter = counter + 1; END;
     ALTER TABLE audit ADD COLUMN key_id INTEGER;
     UPDATE audit SET key_id = (SELECT k.id FROM local_keys k WHERE k.name = audit.key_name)
         WHERE key_name IS NOT NULL;";

/// 7: an OAuth 1.0a application link's public key fingerprint per provider (its private key is
/// in the keychain), so the status can say which key the link must have without reading it.
const SCHEMA_7: &str = "ALTER TABLE providers ADD COLUMN link_fingerprint TEXT;";

/// 6: an installed Connect app's facts per connector (JSON: key, client key, base URL, OAuth
/// client id); its shared secret is in the keychain.
const SCHEMA_6: &str = "ALTER TABLE connectors ADD COLUMN connect TEXT;";

/// 5: a key's policy as one JSON value (`{"connectors": [..], "read_only": .., "paths": ..}`):
/// a new rule is a new field of the core's `KeyPolicy`, not a new column. Every key keeps its
/// id, name, hash and times; the counting triggers are made again for the new table.
fn schema_5(tx: &Transaction<'_>) -> Result<(), StoreError> {
    tx.execute_batch(
        "CREATE TABLE local_keys_5 (
             id         INTEGER PRIMARY KEY,
             name       TEXT NOT NULL UNIQUE,
             key_hash   BLOB NOT NULL UNIQUE,
             policy     TEXT NOT NULL,
             created_at TEXT NOT NULL,
             expires_at TEXT,
             revoked_at TEXT
         );",
    )?;
    type Old = (i64, String, Vec<u8>, String, bool, Option<String>, String);
    type Times = (Option<String>, Option<String>);
    let old: Vec<(Old, Times)> = {
        let mut stmt = tx.prepare(
            "SELECT id, name, key_hash, connectors, read_only, paths, created_at, expires_at,
                    revoked_at
             FROM local_keys",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                (
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                ),
                (r.get(7)?, r.get(8)?),
            ))
        })?;
        rows.collect::<Result<_, _>>()?
    };
    for ((id, name, hash, connectors, read_only, paths, created), (expires, revoked)) in old {
        // Unreadable paths fail closed, as they did when read: no path at all.
        let paths = match paths {
            None => serde_json::Value::Null,
            Some(json) => serde_json::from_str::<Vec<String>>(&json)
                .map(serde_json::Value::from)
                .unwrap_or_else(|_| serde_json::Value::Array(Vec::new())),
        };
        let policy = serde_json::json!({
            "connectors": connectors.split_whitespace().collect::<Vec<_>>(),
            "read_only": read_only,
            "paths": paths,
        });
        tx.execute(
            "INSERT INTO local_keys_5 (id, name, key_hash, policy, created_at, expires_at,
                 revoked_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            rusqlite::params![
                id,
                name,
                hash,
                policy.to_string(),
                created,
                expires,
                revoked
            ],
        )?;
    }
    tx.execute_batch(
        "DROP TABLE local_keys;
         ALTER TABLE local_keys_5 RENAME TO local_keys;
         CREATE TRIGGER local_keys_insert_counts AFTER INSERT ON local_keys BEGIN UPDATE changes SET counter = counter + 1; END;
         CREATE TRIGGER local_keys_update_counts AFTER UPDATE ON local_keys BEGIN UPDATE changes SET counter = counter + 1; END;
         CREATE TRIGGER local_keys_delete_counts AFTER DELETE ON local_keys BEGIN UPDATE changes SET counter = counter + 1; END;",
    )?;
    Ok(())
}

/// 4: a counter that every change but the audit log moves (SQLite's `data_version` moves with
/// every audit batch, so caches keyed on it were thrown away 50 times a second).
const SCHEMA_4: &str = "CREATE TABLE changes (
         id      INTEGER PRIMARY KEY CHECK (id = 1),
         counter INTEGER NOT NULL
     );
     INSERT INTO changes (id, counter) VALUES (1, 0);
     CREATE TRIGGER providers_insert_counts AFTER INSERT ON providers BEGIN UPDATE changes SET counter = counter + 1; END;
     CREATE TRIGGER providers_update_counts AFTER UPDATE ON providers BEGIN UPDATE changes SET counter = counter + 1; END;
     CREATE TRIGGER providers_delete_counts AFTER DELETE ON providers BEGIN UPDATE changes SET counter = counter + 1; END;
     CREATE TRIGGER connectors_insert_counts AFTER INSERT ON connectors BEGIN UPDATE changes SET counter = counter + 1; END;
     CREATE TRIGGER connectors_update_counts AFTER UPDATE ON connectors BEGIN UPDATE changes SET counter = counter + 1; END;
     CREATE TRIGGER connectors_delete_counts AFTER DELETE ON connectors BEGIN UPDATE changes SET counter = counter + 1; END;
     CREATE TRIGGER grants_insert_counts AFTER INSERT ON grants BEGIN UPDATE changes SET counter = counter + 1; END;
     CREATE TRIGGER grants_update_counts AFTER UPDATE ON grants BEGIN UPDATE changes SET counter = counter + 1; END;
     CREATE TRIGGER grants_delete_counts AFTER DELETE ON grants BEGIN UPDATE changes SET counter = counter + 1; END;
     CREATE TRIGGER sites_insert_counts AFTER INSERT ON sites BEGIN UPDATE changes SET counter = counter + 1; END;
     CREATE TRIGGER sites_update_counts AFTER UPDATE ON sites BEGIN UPDATE changes SET counter = counter + 1; END;
     CREATE TRIGGER sites_delete_counts AFTER DELETE ON sites BEGIN UPDATE changes SET counter = counter + 1; END;
     CREATE TRIGGER site_ids_insert_counts AFTER INSERT ON site_ids BEGIN UPDATE changes SET counter = counter + 1; END;
     CREATE TRIGGER site_ids_update_counts AFTER UPDATE ON site_ids BEGIN UPDATE changes SET counter = counter + 1; END;
     CREATE TRIGGER site_ids_delete_counts AFTER DELETE ON site_ids BEGIN UPDATE changes SET counter = counter + 1; END;
     CREATE TRIGGER local_keys_insert_counts AFTER INSERT ON local_keys BEGIN UPDATE changes SET counter = counter + 1; END;
     CREATE TRIGGER local_keys_update_counts AFTER UPDATE ON local_keys BEGIN UPDATE changes SET counter = counter + 1; END;
     CREATE TRIGGER local_keys_delete_counts AFTER DELETE ON local_keys BEGIN UPDATE changes SET counter = counter + 1; END;";

const SCHEMA_1: &str =
    // 1: the foundation schema.
    "CREATE TABLE meta (
         key   TEXT PRIMARY KEY,
         value TEXT NOT NULL
     );
     CREATE TABLE providers (
         name                    TEXT PRIMARY KEY,
         client_secret_stored_at TEXT,
         created_at              TEXT NOT NULL
     );
     CREATE TABLE connectors (
         name                 TEXT PRIMARY KEY,
         provider             TEXT NOT NULL,
         added_at             TEXT NOT NULL,
         credential_stored_at TEXT
     );
     CREATE TABLE grants (
         id                   TEXT PRIMARY KEY,
         kind                 TEXT NOT NULL,
         state                TEXT NOT NULL,
         account_id           TEXT,
         account_name         TEXT,
         account_email        TEXT,
         granted_scopes       TEXT NOT NULL DEFAULT '',
         obtained_at          TEXT,
         refreshed_at         TEXT,
         access_issued_at     TEXT,
         access_expires_at    TEXT,
         refresh_started_at   TEXT,
         generation           INTEGER NOT NULL DEFAULT 0,
         last_error           TEXT,
         last_failure_at      TEXT,
         consecutive_failures INTEGER NOT NULL DEFAULT 0
     );
     -- accessible-resources repeats a cloud id once per product (Jira, Confluence): one row
     -- per entry, told apart by its scopes.
     CREATE TABLE sites (
         id       INTEGER PRIMARY KEY,
         grant_id TEXT NOT NULL REFERENCES grants(id) ON DELETE CASCADE,
         cloud_id TEXT NOT NULL,
         name     TEXT NOT NULL,
         url      TEXT NOT NULL,
         scopes   TEXT NOT NULL
     );
     CREATE INDEX sites_grant ON sites (grant_id);
     CREATE TABLE local_keys (
         id            INTEGER PRIMARY KEY,
         name          TEXT NOT NULL UNIQUE,
         key_hash      BLOB NOT NULL UNIQUE,
         connectors    TEXT NOT NULL,
         read_only     INTEGER NOT NULL,
         path_patterns TEXT NOT NULL,
         created_at    TEXT NOT NULL,
         expires_at    TEXT,
         revoked_at    TEXT
     );
     CREATE TABLE audit (
         id         INTEGER PRIMARY KEY,
         at         TEXT NOT NULL,
         key_name   TEXT,
         connector  TEXT,
         method     TEXT NOT NULL,
         path       TEXT NOT NULL,
         status     INTEGER NOT NULL,
         bytes      INTEGER NOT NULL,
         latency_us INTEGER NOT NULL,
         refreshed  INTEGER NOT NULL DEFAULT 0
     );
     CREATE INDEX audit_at ON audit (at);";

/// 2: credentials that need no sign-in (service accounts, API tokens) and site ids learnt
/// without one.
const SCHEMA_2: &str = "ALTER TABLE connectors ADD COLUMN credential_state TEXT;
     ALTER TABLE connectors ADD COLUMN credential_checked_at TEXT;
     ALTER TABLE connectors ADD COLUMN credential_error TEXT;
     ALTER TABLE connectors ADD COLUMN credential_expires_at TEXT;
     ALTER TABLE connectors ADD COLUMN token_kind TEXT;
     CREATE TABLE site_ids (
         site_url  TEXT PRIMARY KEY,
         cloud_id  TEXT NOT NULL,
         learnt_at TEXT NOT NULL,
         source    TEXT NOT NULL
     );";

/// 3: key path patterns as a JSON array (space-joined text let `--path 'a *'` widen into `*`
/// and an empty pattern mean "any path"); per-minute counts of refusals before a key is known.
fn schema_3(tx: &Transaction<'_>) -> Result<(), StoreError> {
    tx.execute_batch(
        "ALTER TABLE local_keys ADD COLUMN paths TEXT;
         ALTER TABLE audit ADD COLUMN count INTEGER NOT NULL DEFAULT 1;
         ALTER TABLE audit ADD COLUMN reason TEXT;
         CREATE UNIQUE INDEX audit_refusals ON audit (at, reason, status) WHERE reason IS NOT NULL;",
    )?;
    let old: Vec<(i64, String)> = {
        let mut stmt = tx.prepare("SELECT id, path_patterns FROM local_keys")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect::<Result<_, _>>()?
    };
    for (id, text) in old {
        let paths = crate::paths_from_joined(&text);
        let json = paths.map(|p| serde_json::Value::from(p).to_string());
        tx.execute(
            "UPDATE local_keys SET paths = ?2 WHERE id = ?1",
            rusqlite::params![id, json],
        )?;
    }
    Ok(())
}

/// The newest schema version.
pub(crate) fn latest() -> i64 {
    MIGRATIONS.len() as i64
}

/// Applies every migration newer than the file's version, each in its own transaction.
pub(crate) fn apply(conn: &mut Connection) -> Result<(), StoreError> {
    let found: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if found > latest() {
        return Err(StoreError::TooNew {
            found,
            known: latest(),
        });
    }
    for (index, step) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        // Another process may have migrated while we waited for the write lock.
        let now: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if now > index as i64 {
            continue;
        }
        match step {
            Step::Sql(sql) => tx.execute_batch(sql)?,
            Step::Rust(run) => run(&tx)?,
        }
        tx.pragma_update(None, "user_version", index as i64 + 1)?;
        tx.commit()?;
    }
    Ok(())
}

/// The first schema, for tests that start from an old database.
#[cfg(test)]
pub(crate) const SCHEMA_1_FOR_TESTS: &str = SCHEMA_1;

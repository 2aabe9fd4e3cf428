//! Local keys: secrets Latch issues to local tools, each with a policy (connectors, methods,
//! path patterns, expiry). Only a SHA-256 hash is stored; the key is shown once.

use serde::Serialize;
use sha2::Digest as _;
use time::OffsetDateTime;

use crate::clock::now;
use crate::secret::Secret;

pub mod policy;

pub use policy::{Denied, KeyPolicy, RequestFacts};

/// A local key as Latch keeps it: its name, its policy and its times (never the key).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct LocalKey {
    /// Its row id: the audit log's rows point at it (a name may be reused once revoked).
    #[serde(skip)]
    pub id: i64,
    /// The key's name (shown in the audit log).
    pub name: String,
    /// What it may do.
    #[serde(flatten)]
    pub policy: KeyPolicy,
    /// Expiry.
    #[serde(with = "crate::clock::stamp::option")]
    #[cfg_attr(feature = "ts", ts(type = "string | null"))]
    pub expires_at: Option<OffsetDateTime>,
    /// Revocation time.
    #[serde(with = "crate::clock::stamp::option")]
    #[cfg_attr(feature = "ts", ts(type = "string | null"))]
    pub revoked_at: Option<OffsetDateTime>,
    /// Creation time.
    #[serde(with = "crate::clock::stamp")]
    #[cfg_attr(feature = "ts", ts(type = "string"))]
    pub created_at: OffsetDateTime,
}

/// Why a key was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyRefusal {
    /// Past its expiry.
    Expired,
    /// Revoked.
    Revoked,
}

impl LocalKey {
    /// Whether the key is usable now.
    pub fn check_live(&self, at: OffsetDateTime) -> Result<(), KeyRefusal> {
        if self.revoked_at.is_some() {
            return Err(KeyRefusal::Revoked);
        }
        if self.expires_at.is_some_and(|e| at >= e) {
            return Err(KeyRefusal::Expired);
        }
        Ok(())
    }
}

/// Checks the path patterns a person gives for a key. Empty patterns and whitespace are refused:
/// they used to widen a key (`--path ''` meant any path, `--path 'v2/alerts *'` added `*`).
pub fn check_patterns(patterns: &[String]) -> Result<(), String> {
    for p in patterns {
        if p.trim().is_empty() {
            return Err(
                "an empty --path would allow nothing or, worse, anything: give a pattern \
                        like 'rest/api/3/*'"
                    .to_owned(),
            );
        }
        if p.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!(
                "--path {p:?} has whitespace: one pattern per --path (repeat the flag), no spaces"
            ));
        }
    }
    Ok(())
}

/// `*` matches any run of characters, `/` included (so `rest/api/3/*` covers every path below
/// it); everything else is literal, and patterns match the canonical path below the connector.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let pattern = pattern.trim_start_matches('/');
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || text.len() < first.len() + last.len() || !text.ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for middle in &parts[1..parts.len() - 1] {
        match rest.find(middle) {
            Some(i) => rest = &rest[i + middle.len()..],
            None => return false,
        }
    }
    true
}

/// A new random key: `lk_` + 32 random bytes, base64url.
pub fn generate() -> Secret {
    Secret::new(format!("lk_{}", crate::net::oauth::random_token(32)))
}

/// What is stored instead of the key.
pub fn hash(key: &str) -> Vec<u8> {
    sha2::Sha256::digest(key.as_bytes()).to_vec()
}

/// The longest a key or an audit window may be: ten years. Longer is a typo, and an overflow.
const MAX_TTL_SECS: i64 = 10 * 366 * 24 * 3600;

/// Parses `8h`, `30m`, `7d`, `45s` (positive, at most ten years; checked arithmetic).
pub fn parse_ttl(text: &str) -> Result<time::Duration, String> {
    let text = text.trim();
    let (number, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len()),
    );
    let n: i64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration: write it like 30m, 8h or 7d"))?;
    let unit_secs: i64 = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        // A bare number once meant hours, silently: say which unit instead of guessing.
        "" => {
            return Err(format!(
                "`{text}` has no unit: write {text}h for hours, {text}d for days (or m, s)"
            ))
        }
        _ => return Err(format!("`{text}`: use s, m, h or d as the unit")),
    };
    if n <= 0 {
        return Err("the duration must be positive".to_owned());
    }
    match n.checked_mul(unit_secs) {
        Some(secs) if secs <= MAX_TTL_SECS => Ok(time::Duration::seconds(secs)),
        _ => Err(format!(
            "`{text}` is longer than ten years: give a shorter duration (or none: the key lives \
             until revoked)"
        )),
    }
}

/// The expiry for a TTL from now.
pub fn expiry_in(ttl: time::Duration) -> OffsetDateTime {
    now() + ttl
}

pub(crate) fn from_row(row: latch_store::LocalKeyRow) -> LocalKey {
    LocalKey {
        id: row.id,
        name: row.name,
        // An unreadable policy fails closed: a key that may do nothing.
        policy: serde_json::from_str(&row.policy).unwrap_or_else(|_| KeyPolicy::nothing()),
        expires_at: row.expires_at,
        revoked_at: row.revoked_at,
        created_at: row.created_at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_like_people_expect() {
        assert!(glob_match("rest/api/3/*", "rest/api/3/issue/ABC-1"));
        assert!(glob_match("/rest/api/3/*", "rest/api/3/myself"));
        assert!(!glob_match("rest/api/3/*", "rest/api/2/myself"));
        assert!(glob_match("rest/*/myself", "rest/api/3/myself"));
        assert!(glob_match("rest/api/3/myself", "rest/api/3/myself"));
        assert!(!glob_match("rest/api/3/myself", "rest/api/3/myself/x"));
        assert!(glob_match("*", "anything/at/all"));
    }

    #[test]
    fn ttl_parses_units_and_refuses_nonsense() {
        assert_eq!(parse_ttl("8h").unwrap(), time::Duration::hours(8));
        assert_eq!(parse_ttl("30m").unwrap(), time::Duration::minutes(30));
        assert_eq!(parse_ttl("7d").unwrap(), time::Duration::days(7));
        assert!(parse_ttl("0h").is_err());
        assert!(parse_ttl("soon").is_err());
        assert!(parse_ttl("3w").is_err());
        assert!(parse_ttl("8").unwrap_err().contains("8h"));
        // Hostile input: an error, never a panic.
        assert!(parse_ttl("99999999999999d").is_err());
        assert!(parse_ttl("9223372036854775807s").is_err());
        assert!(parse_ttl("99999999999999999999999d").is_err());
        assert!(parse_ttl("3650d").is_ok());
    }

    #[test]
    fn patterns_that_widen_are_refused() {
        assert!(check_patterns(&["rest/api/3/*".into()]).is_ok());
        assert!(check_patterns(&[String::new()]).is_err());
        assert!(check_patterns(&["  ".into()]).is_err());
        assert!(check_patterns(&["v2/alerts *".into()]).is_err());
        assert!(check_patterns(&["a\tb".into()]).is_err());
    }

    #[test]
    fn keys_expire_and_are_revoked() {
        let key = LocalKey {
            id: 1,
            name: "k".into(),
            policy: KeyPolicy::default(),
            expires_at: crate::clock::parse_time(Some("2000-01-01T00:00:00Z")),
            revoked_at: None,
            created_at: now(),
        };
        assert_eq!(key.check_live(now()), Err(KeyRefusal::Expired));
        let revoked = LocalKey {
            expires_at: None,
            revoked_at: crate::clock::parse_time(Some("2000-01-01T00:00:00Z")),
            ..key
        };
        assert_eq!(revoked.check_live(now()), Err(KeyRefusal::Revoked));
        let secret = generate();
        assert!(secret.expose().starts_with("lk_") && secret.expose().len() == 46);
        assert_eq!(hash(secret.expose()).len(), 32);
    }
}

/// Why a presented key is not accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyCheck {
    /// No key with that hash.
    Unknown,
    /// Known but expired or revoked.
    Refused(KeyRefusal),
}

/// Verifies presented keys against the database, with an in-memory cache that is reloaded when
/// the database changes. It reads through its own connection. With a watched version (the
/// proxy's watcher thread) a hit costs no SQLite call and a revocation shows within
/// milliseconds; without one the database is asked at most every half second. A miss always asks
/// at once — a key created a moment ago works at once — and that costs one read of the store's
/// change counter: keys are reloaded only when something but the audit log changed, so unknown
/// keys cannot make Latch read its tables.
pub struct KeyVerifier {
    store: Option<std::sync::Mutex<latch_store::Store>>,
    watched: Option<std::sync::Arc<std::sync::atomic::AtomicI64>>,
    state: std::sync::RwLock<VerifierState>,
}

struct VerifierState {
    keys: std::collections::HashMap<Vec<u8>, std::sync::Arc<LocalKey>>,
    ephemeral: std::collections::HashMap<Vec<u8>, std::sync::Arc<LocalKey>>,
    changes: i64,
    checked: std::time::Instant,
    /// The watcher's version when the keys were last checked.
    watch_seen: i64,
}

/// Without a watcher, how often a hit asks SQLite whether keys changed.
const RECHECK: std::time::Duration = std::time::Duration::from_millis(500);

impl KeyVerifier {
    pub(crate) fn new(
        database: &std::path::Path,
        watched: Option<std::sync::Arc<std::sync::atomic::AtomicI64>>,
    ) -> Self {
        let verifier = Self {
            store: latch_store::Store::open(database)
                .ok()
                .map(std::sync::Mutex::new),
            watched,
            state: std::sync::RwLock::new(VerifierState {
                keys: Default::default(),
                ephemeral: Default::default(),
                changes: i64::MIN,
                checked: std::time::Instant::now(),
                watch_seen: i64::MIN,
            }),
        };
        verifier.reload();
        verifier
    }

    /// Whether the database may have changed since the keys were read, without asking it.
    fn maybe_changed(&self) -> bool {
        let Ok(state) = self.state.read() else {
            return true;
        };
        match &self.watched {
            Some(version) => {
                // The watcher's connection counts differently from ours: any move means a commit.
                let seen = version.load(std::sync::atomic::Ordering::Acquire);
                seen != state.checked_watch()
            }
            None => state.checked.elapsed() >= RECHECK,
        }
    }

    /// Reloads the keys if the database changed.
    fn reload(&self) {
        let Some(store) = &self.store else { return };
        let Ok(store) = store.lock() else { return };
        let watch_now = self
            .watched
            .as_ref()
            .map(|v| v.load(std::sync::atomic::Ordering::Acquire));
        let version = store.changes().unwrap_or(i64::MIN + 1);
        let Ok(mut state) = self.state.write() else {
            return;
        };
        state.checked = std::time::Instant::now();
        state.set_checked_watch(watch_now);
        if version == state.changes {
            return;
        }
        if let Ok(rows) = store.local_keys() {
            state.keys = rows
                .into_iter()
                .map(|row| (row.key_hash.clone(), std::sync::Arc::new(from_row(row))))
                .collect();
            state.changes = version;
        }
    }

    /// Adds a key that lives only in this process (exec's per-child key).
    pub fn add_ephemeral(&self, key: &Secret, policy: LocalKey) {
        if let Ok(mut state) = self.state.write() {
            state
                .ephemeral
                .insert(hash(key.expose()), std::sync::Arc::new(policy));
        }
    }

    fn lookup(&self, digest: &[u8]) -> Option<std::sync::Arc<LocalKey>> {
        let state = self.state.read().ok()?;
        state
            .ephemeral
            .get(digest)
            .or_else(|| state.keys.get(digest))
            .cloned()
    }

    /// Checks a presented key: known, not expired, not revoked.
    pub fn verify(&self, key: &str) -> Result<std::sync::Arc<LocalKey>, KeyCheck> {
        if self.maybe_changed() {
            self.reload();
        }
        let digest = hash(key);
        let policy = match self.lookup(&digest) {
            Some(policy) => policy,
            None => {
                // Perhaps created a moment ago by another process: ask now.
                self.reload();
                self.lookup(&digest).ok_or(KeyCheck::Unknown)?
            }
        };
        policy.check_live(now()).map_err(KeyCheck::Refused)?;
        Ok(policy)
    }
}

impl VerifierState {
    fn checked_watch(&self) -> i64 {
        self.watch_seen
    }

    fn set_checked_watch(&mut self, seen: Option<i64>) {
        if let Some(seen) = seen {
            self.watch_seen = seen;
        }
    }
}

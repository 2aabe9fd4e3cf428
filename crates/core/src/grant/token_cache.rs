//! This process's memory of access tokens, valid only while the stored grant says so.
//!
//! A cached token is used while its grant's `generation` is unchanged (no rotation by another
//! process) and its refresh time has not come. Grant facts are re-read only when the database
//! changed: the store's change counter moves with every write but the audit log's (which comes
//! 50 times a second under load), this process's own writes also bump
//! [`crate::grant::store::local_epoch`]. Long-running processes (the proxy) let a thread watch the
//! counter so that requests read an atomic, not SQLite.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use time::OffsetDateTime;

use crate::error::GrantError;
use crate::grant::store::{local_epoch, GrantStore};
use crate::provider::scope::ScopeList;
use crate::secret::Secret;
use latch_store::{GrantId, GrantRow, Store};

/// How often a long-running process looks for other processes' commits.
const WATCH_EVERY: Duration = Duration::from_millis(5);
/// The refresh margin never exceeds this, nor half the token's lifetime.
const MAX_MARGIN: time::Duration = time::Duration::seconds(60);

/// When to refresh: a margin before expiry of at most a minute and at most half the lifetime,
/// so short-lived tokens are not refreshed on every call.
pub(crate) fn refresh_at(row: &GrantRow) -> Option<OffsetDateTime> {
    let expires = row.access_expires_at?;
    let issued = row.access_issued_at.unwrap_or(expires);
    let lifetime = (expires - issued).max(time::Duration::ZERO);
    Some(expires - MAX_MARGIN.min(lifetime / 2))
}

/// What the hot path needs to know about a grant.
pub(crate) struct Facts {
    pub(crate) generation: i64,
    pub(crate) issued_at: Option<OffsetDateTime>,
    pub(crate) refresh_at: Option<OffsetDateTime>,
    pub(crate) granted: ScopeList,
}

#[derive(Default)]
struct FactsCache {
    changes: i64,
    local_epoch: u64,
    grants: HashMap<GrantId, Option<Arc<Facts>>>,
}

struct CachedToken {
    token: Secret,
    generation: i64,
}

/// Access tokens this process holds, and the grant facts that say whether they are still good.
pub(crate) struct TokenCache {
    tokens: Mutex<HashMap<GrantId, CachedToken>>,
    facts: Mutex<FactsCache>,
    /// A second connection used only to ask SQLite whether anything changed: it sees every
    /// commit, and never waits behind long writes.
    watch: Option<Arc<Mutex<Store>>>,
    /// Set by `watch_in_background`: the last change counter the thread saw.
    watched_version: Arc<AtomicI64>,
    watching: AtomicBool,
}

impl TokenCache {
    pub(crate) fn new(database: &Path) -> Self {
        Self {
            tokens: Mutex::new(HashMap::new()),
            facts: Mutex::new(FactsCache::default()),
            watch: Store::open(database).ok().map(|s| Arc::new(Mutex::new(s))),
            watched_version: Arc::new(AtomicI64::new(-1)),
            watching: AtomicBool::new(false),
        }
    }

    /// Where the database stands: the change counter (the watcher's copy when it runs) and
    /// this process's write epoch. A negative counter means "unknown": nothing cached is used.
    pub(crate) fn version(&self) -> Result<(i64, u64), GrantError> {
        let epoch = local_epoch();
        let changes = match &self.watch {
            _ if self.watching.load(Ordering::Acquire) => {
                self.watched_version.load(Ordering::Acquire)
            }
            Some(watch) => watch
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .changes()?,
            // Without a watch connection, re-read every time (correct, slower).
            None => -1,
        };
        Ok((changes, epoch))
    }

    /// A grant's facts: one cheap version check per call, a row read only when the database
    /// changed.
    pub(crate) fn facts(
        &self,
        store: &GrantStore,
        grant: &GrantId,
    ) -> Result<Option<Arc<Facts>>, GrantError> {
        let (version, epoch) = self.version()?;
        let mut cache = self.facts.lock().unwrap_or_else(PoisonError::into_inner);
        if version < 0 || cache.changes != version || cache.local_epoch != epoch {
            cache.grants.clear();
            cache.changes = version;
            cache.local_epoch = epoch;
        }
        if let Some(known) = cache.grants.get(grant) {
            return Ok(known.clone());
        }
        let facts = store.row(grant)?.map(|row| {
            Arc::new(Facts {
                generation: row.generation,
                issued_at: row.access_issued_at,
                refresh_at: refresh_at(&row),
                granted: ScopeList::parse(&row.granted_scopes).unwrap_or_default(),
            })
        });
        cache.grants.insert(grant.clone(), facts.clone());
        Ok(facts)
    }

    /// The cached token, if the stored grant still says it is fresh at `now`.
    pub(crate) fn fresh(
        &self,
        store: &GrantStore,
        grant: &GrantId,
        now: OffsetDateTime,
    ) -> Result<Option<Secret>, GrantError> {
        let Some(facts) = self.facts(store, grant)? else {
            return Ok(None);
        };
        if facts.refresh_at.is_none_or(|at| now >= at) {
            return Ok(None);
        }
        let tokens = self.tokens.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(tokens
            .get(grant)
            .filter(|c| c.generation == facts.generation)
            .map(|c| c.token.clone()))
    }

    pub(crate) fn remember(&self, grant: &GrantId, token: &Secret, row: &GrantRow) {
        let mut tokens = self.tokens.lock().unwrap_or_else(PoisonError::into_inner);
        tokens.insert(
            grant.clone(),
            CachedToken {
                token: token.clone(),
                generation: row.generation,
            },
        );
    }

    pub(crate) fn forget(&self, grant: &GrantId) {
        let mut tokens = self.tokens.lock().unwrap_or_else(PoisonError::into_inner);
        tokens.remove(grant);
    }

    /// The change counter the watcher thread keeps current, once it runs.
    pub(crate) fn watched(&self) -> Option<Arc<AtomicI64>> {
        self.watching
            .load(Ordering::Acquire)
            .then(|| Arc::clone(&self.watched_version))
    }

    /// Starts the watcher thread; it ends when the cache is dropped.
    pub(crate) fn watch_in_background(self: &Arc<Self>) {
        let Some(watch) = self.watch.clone() else {
            return;
        };
        if self.watching.swap(true, Ordering::AcqRel) {
            return;
        }
        let version = Arc::clone(&self.watched_version);
        let owner = Arc::downgrade(self);
        // `data_version` is the cheap question (did anyone commit?); the counter is read only
        // when it moved, and it moves only for what caches hold.
        let read = move |last_commit: &mut i64| -> Option<i64> {
            let store = watch.lock().ok()?;
            let commit = store.data_version().ok()?;
            if commit == *last_commit {
                return None;
            }
            let counter = store.changes().ok()?;
            *last_commit = commit;
            Some(counter)
        };
        let mut last_commit = i64::MIN;
        version.store(read(&mut last_commit).unwrap_or(-1), Ordering::Release);
        let spawned = std::thread::Builder::new()
            .name("latch-db-watch".into())
            .spawn(move || {
                while owner.strong_count() > 0 {
                    if let Some(v) = read(&mut last_commit) {
                        version.store(v, Ordering::Release);
                    }
                    std::thread::sleep(WATCH_EVERY);
                }
            });
        if spawned.is_err() {
            self.watching.store(false, Ordering::Release);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(issued: &str, expires: &str) -> GrantRow {
        GrantRow {
            access_issued_at: crate::clock::parse_time(Some(issued)),
            access_expires_at: crate::clock::parse_time(Some(expires)),
            ..GrantRow::default()
        }
    }

    #[test]
    fn margin_is_a_minute_or_half_the_lifetime() {
        let fmt = crate::clock::fmt_time;
        let hour = refresh_at(&row("2026-01-01T00:00:00Z", "2026-01-01T01:00:00Z")).unwrap();
        assert_eq!(fmt(hour), "2026-01-01T00:59:00Z");
        let short = refresh_at(&row("2026-01-01T00:00:00Z", "2026-01-01T00:00:40Z")).unwrap();
        assert_eq!(fmt(short), "2026-01-01T00:00:20Z");
    }
}

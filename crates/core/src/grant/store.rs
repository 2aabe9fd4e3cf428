//! Where grants and connector credentials are kept: their secret-free facts in SQLite, their
//! secrets in the keychain (one item each, named by the core). Every write that changes a
//! grant's facts goes through here, so other processes' caches hear of it.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use time::OffsetDateTime;

use crate::clock::Clock;
use crate::error::GrantError;
use crate::net::oauth::TokenSet;
use crate::ports::{SecretKey, SecretStore, SecretStoreError};
use crate::secret::Secret;
use latch_store::{GrantId, GrantRow, GrantState, Store};

/// Bumped by every grant write of this process (SQLite's `data_version` only reports other
/// connections' commits), so every cache of the process re-reads what changed.
static LOCAL_EPOCH: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// Records that this process wrote grant facts.
pub(crate) fn note_local_write() {
    LOCAL_EPOCH.fetch_add(1, std::sync::atomic::Ordering::Release);
}

/// This process's write counter (see [`note_local_write`]).
pub(crate) fn local_epoch() -> u64 {
    LOCAL_EPOCH.load(std::sync::atomic::Ordering::Acquire)
}

/// The keychain item of a grant's refresh token.
pub(crate) fn refresh_token_key(home_id: &str, grant: &GrantId) -> SecretKey {
    SecretKey::new(home_id, "grant", grant.as_str(), "refresh-token")
}

/// The keychain item of a grant's current access token.
pub(crate) fn access_token_key(home_id: &str, grant: &GrantId) -> SecretKey {
    SecretKey::new(home_id, "grant", grant.as_str(), "access-token")
}

/// The keychain item of a connector's own credential (API token, PAT, API key, service secret).
pub(crate) fn connector_secret_key(home_id: &str, connector: &str) -> SecretKey {
    SecretKey::new(home_id, "connector", connector, "credential")
}

/// The keychain item of a provider's OAuth client secret.
pub(crate) fn client_secret_key(home_id: &str, provider: &str) -> SecretKey {
    SecretKey::new(home_id, "provider", provider, "client-secret")
}

/// The keychain item of a provider's OAuth 1.0a application link: its RSA private key.
pub(crate) fn link_key_key(home_id: &str, provider: &str) -> SecretKey {
    SecretKey::new(home_id, "provider", provider, "link-private-key")
}

/// The keychain item of a provider's client certificate: its private key (PEM).
pub(crate) fn client_key_key(home_id: &str, provider: &str) -> SecretKey {
    SecretKey::new(home_id, "provider", provider, "client-cert-key")
}

/// Named points where the crash-safety tests kill the process (debug builds only).
#[derive(Clone, Debug, Default)]
pub(crate) struct CrashPoints(Option<String>);

impl CrashPoints {
    pub(crate) fn from_env() -> Self {
        if cfg!(debug_assertions) {
            Self(std::env::var("LATCH_TEST_CRASH_AT").ok())
        } else {
            Self(None)
        }
    }

    /// Dies like `kill -9` at `point`, when the test asked for it.
    pub(crate) fn at(&self, point: &str) {
        if self.0.as_deref() == Some(point) {
            let pid = std::process::id().to_string();
            let _ = std::process::Command::new("kill")
                .args(["-9", &pid])
                .status();
            std::process::abort();
        }
    }
}

/// Grants' facts and secrets of one home.
#[derive(Clone)]
pub(crate) struct GrantStore {
    home_id: String,
    store: Arc<Mutex<Store>>,
    secrets: Arc<dyn SecretStore>,
    clock: Arc<dyn Clock>,
    crash: CrashPoints,
}

impl GrantStore {
    pub(crate) fn new(
        home_id: String,
        store: Arc<Mutex<Store>>,
        secrets: Arc<dyn SecretStore>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            home_id,
            store,
            secrets,
            clock,
            crash: CrashPoints::from_env(),
        }
    }

    pub(crate) fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    pub(crate) fn crash_point(&self, point: &str) {
        self.crash.at(point);
    }

    /// The database. Hold the guard briefly: other threads of this process wait on it.
    pub(crate) fn db(&self) -> MutexGuard<'_, Store> {
        // A panic while holding the lock cannot leave SQLite inconsistent (statements are
        // atomic), so a poisoned lock is still usable.
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn refresh_token_key(&self, grant: &GrantId) -> SecretKey {
        refresh_token_key(&self.home_id, grant)
    }

    pub(crate) fn access_token_key(&self, grant: &GrantId) -> SecretKey {
        access_token_key(&self.home_id, grant)
    }

    pub(crate) fn connector_secret_key(&self, connector: &str) -> SecretKey {
        connector_secret_key(&self.home_id, connector)
    }

    pub(crate) fn client_secret_key(&self, provider: &str) -> SecretKey {
        client_secret_key(&self.home_id, provider)
    }

    /// The home's id (keychain items are named under it).
    pub(crate) fn home_id(&self) -> &str {
        &self.home_id
    }

    pub(crate) fn link_key_key(&self, provider: &str) -> SecretKey {
        link_key_key(&self.home_id, provider)
    }

    /// Reads providers' client-certificate keys from the keychain, for their TLS.
    pub(crate) fn identities(&self) -> crate::net::tls::IdentitySource {
        let (secrets, home_id) = (Arc::clone(&self.secrets), self.home_id.clone());
        Arc::new(move |provider: &str| {
            secrets
                .get(&client_key_key(&home_id, provider))
                .map_err(|err| err.to_string())
        })
    }

    /// Whether the keychain is open, locked or unreachable (no item read), off the async
    /// threads.
    pub(crate) async fn keychain_state(&self) -> crate::ports::KeychainState {
        let secrets = Arc::clone(&self.secrets);
        tokio::task::spawn_blocking(move || secrets.state())
            .await
            .unwrap_or(crate::ports::KeychainState::Unknown)
    }

    /// Reads a keychain item off the async threads.
    pub(crate) async fn secret(&self, key: SecretKey) -> Result<Option<Secret>, GrantError> {
        let secrets = Arc::clone(&self.secrets);
        tokio::task::spawn_blocking(move || secrets.get(&key))
            .await
            .map_err(|e| GrantError::Lock(format!("keychain task failed: {e}")))?
            .map_err(GrantError::from)
    }

    /// Writes a keychain item off the async threads.
    pub(crate) async fn put_secret(&self, key: SecretKey, value: Secret) -> Result<(), GrantError> {
        let secrets = Arc::clone(&self.secrets);
        tokio::task::spawn_blocking(move || secrets.put(&key, &value))
            .await
            .map_err(|e| GrantError::Lock(format!("keychain task failed: {e}")))?
            .map_err(GrantError::from)
    }

    /// Deletes keychain items; returns how many existed.
    pub(crate) async fn delete_secrets(&self, keys: Vec<SecretKey>) -> Result<usize, GrantError> {
        let secrets = Arc::clone(&self.secrets);
        tokio::task::spawn_blocking(move || -> Result<usize, SecretStoreError> {
            let mut deleted = 0;
            for key in &keys {
                deleted += usize::from(secrets.delete(key)?);
            }
            Ok(deleted)
        })
        .await
        .map_err(|e| GrantError::Lock(format!("keychain task failed: {e}")))?
        .map_err(GrantError::from)
    }

    /// A provider's OAuth client secret, when its client type needs one.
    pub(crate) async fn client_secret(
        &self,
        provider: &crate::config::Provider,
    ) -> Result<Option<Secret>, GrantError> {
        if provider.spec.client_type != crate::provider::catalog::ClientType::Confidential {
            return Ok(None);
        }
        match self.secret(self.client_secret_key(&provider.name)).await? {
            Some(secret) => Ok(Some(secret)),
            None => Err(GrantError::Misconfigured {
                message: format!(
                    "the client secret of `{}` is not in the keychain",
                    provider.name
                ),
                fix: format!("run `latch provider secret {}`", provider.name),
            }),
        }
    }

    /// A grant's stored facts.
    pub(crate) fn row(&self, grant: &GrantId) -> Result<Option<GrantRow>, GrantError> {
        Ok(self.db().grant(grant)?)
    }

    /// Writes a grant's facts and tells this process's caches.
    pub(crate) fn save(&self, row: &GrantRow) -> Result<(), GrantError> {
        self.db().grant_put(row)?;
        note_local_write();
        Ok(())
    }

    /// Records a failure on a grant.
    pub(crate) fn fail(
        &self,
        mut row: GrantRow,
        state: GrantState,
        reason: String,
    ) -> Result<(), GrantError> {
        row.state = state;
        row.last_error = Some(reason);
        row.last_failure_at = Some(self.now());
        row.consecutive_failures = row.consecutive_failures.saturating_add(1);
        row.refresh_started_at = None;
        self.save(&row)
    }

    /// Persists a token response: refresh token first, then the access token, then the facts.
    /// Only then may the access token be handed out. Returns it with the row as saved.
    pub(crate) async fn store_tokens(
        &self,
        grant: &GrantId,
        mut row: GrantRow,
        tokens: TokenSet,
        previous_refresh_token: Option<Secret>,
    ) -> Result<(Secret, GrantRow), GrantError> {
        let TokenSet {
            access_token,
            refresh_token,
            expires_in,
            scope,
        } = tokens;
        if let Some(rt) = refresh_token.or(previous_refresh_token) {
            if let Err(err) = self.put_secret(self.refresh_token_key(grant), rt).await {
                // The new refresh token is lost with this error; the old one still works inside
                // the reuse window. Never hand out an access token whose family we cannot keep.
                self.fail(
                    row,
                    GrantState::RefreshFailing,
                    format!("could not store the rotated refresh token: {err}"),
                )?;
                return Err(err);
            }
        }
        self.crash_point("after_keychain_write");
        self.put_secret(self.access_token_key(grant), access_token.clone())
            .await?;
        let issued = self.now();
        row.access_issued_at = Some(issued);
        row.access_expires_at = Some(issued + token_lifetime(expires_in));
        if row.obtained_at.is_none() {
            row.obtained_at = Some(issued);
        } else {
            row.refreshed_at = Some(issued);
        }
        if let Some(scope) = scope {
            row.granted_scopes = scope.to_string();
        }
        row.state = GrantState::Ok;
        row.generation = row.generation.saturating_add(1);
        row.last_error = None;
        row.consecutive_failures = 0;
        row.refresh_started_at = None;
        self.save(&row)?;
        self.crash_point("after_db_write");
        Ok((access_token, row))
    }
}

/// The longest access-token lifetime Latch believes. Providers say an hour or two; a larger
/// or absurd `expires_in` (a hostile or broken server) is capped instead of overflowing.
const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// How long a token lives: `expires_in` when given (capped), else the common hour (a 401
/// upstream forces a refresh anyway).
pub(crate) fn token_lifetime(expires_in: Option<u64>) -> time::Duration {
    let secs = expires_in.unwrap_or(3600).min(MAX_TOKEN_LIFETIME.as_secs());
    time::Duration::seconds(i64::try_from(secs).unwrap_or(3600))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absurd_lifetimes_are_capped() {
        assert_eq!(token_lifetime(None), time::Duration::hours(1));
        assert_eq!(token_lifetime(Some(7200)), time::Duration::hours(2));
        assert_eq!(token_lifetime(Some(u64::MAX)), time::Duration::hours(24));
        assert_eq!(token_lifetime(Some(0)), time::Duration::ZERO);
    }
}

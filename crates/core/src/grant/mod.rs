//! Grants: token families Latch obtains and keeps alive, with exactly one refresh per grant in
//! flight across threads and processes. How a grant's token is obtained (a refresh, a
//! client-credentials or JWT-bearer request) is the credential kind's [`Mint`]; the order around
//! it is the contract here (DESIGN.md "Token lifecycle", atlassian-wire §1.4):
//! 1. one task per grant in this process, then one process per grant (a lock file);
//! 2. re-read the stored grant after taking the lock, and mint only if still needed;
//! 3. write the rotated refresh token to the keychain *before* the new access token is used.
//!
//! The parts: [`store`] keeps facts (SQLite) and secrets (keychain); [`token_cache`] remembers
//! access tokens while the stored facts say they are good; [`refresh_lock`] serialises mints.

pub(crate) mod refresh_lock;
pub(crate) mod store;
pub(crate) mod token_cache;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::clock::Clock;
use crate::config::{Config, Provider};
use crate::error::GrantError;
use crate::net::oauth;
use crate::ports::SecretStore;
use crate::provider::scope::ScopeList;
use crate::secret::Secret;
use refresh_lock::RefreshLock;
use store::GrantStore;
use token_cache::{refresh_at, TokenCache};

pub use latch_store::{ApiTokenKind, CredentialState, GrantId, GrantKind, GrantRow, GrantState};

/// A future a [`Mint`] returns.
pub type Minting<'a> =
    Pin<Box<dyn Future<Output = Result<(Secret, GrantRow), GrantError>> + Send + 'a>>;

/// How a grant's access token is obtained: each credential kind that draws on a grant has one.
pub trait Mint: Send + Sync {
    /// The provider whose token endpoint it asks (named in errors).
    fn provider(&self) -> &str;

    /// Obtains a new access token and stores it (keychain first). Called with the grant's locks
    /// held and its row re-read; returns the token and the row as stored.
    fn mint<'a>(&'a self, ctx: &'a Ctx<'a>, grant: &'a GrantId, row: GrantRow) -> Minting<'a>;

    /// The error for a grant that was never started (no sign-in, no secret stored).
    fn not_started(&self, grant: &GrantId) -> GrantError;

    /// Whether minting on demand makes a new token ("Refresh now", doctor, keep-alive). A token
    /// that lives for years and has nothing to refresh with (an OAuth 1.0a link's) answers
    /// `false`: such explicit refreshes then leave it alone.
    fn renews_on_demand(&self) -> bool {
        true
    }

    /// The error for a grant whose credential was refused, until a new one is stored; `None`
    /// asks again.
    fn still_refused(&self, _ctx: &Ctx<'_>, _row: &GrantRow) -> Option<GrantError> {
        None
    }
}

/// What a mint needs to reach its token endpoint and keep what it gets.
pub struct Ctx<'a> {
    pub(crate) config: &'a Config,
    pub(crate) store: &'a GrantStore,
    pub(crate) clients: &'a crate::net::tls::ProviderClients,
}

impl Ctx<'_> {
    /// The HTTP client for a provider (its CA file trusted).
    pub(crate) fn http(&self, provider: &str) -> &reqwest::Client {
        self.clients.for_provider(provider)
    }

    /// A configured provider.
    pub(crate) fn provider(&self, name: &str) -> Result<&Provider, GrantError> {
        self.config
            .provider(name)
            .ok_or_else(|| GrantError::Misconfigured {
                message: format!("provider `{name}` is not configured"),
                fix: format!("run `latch provider add {name} --client-id ...`"),
            })
    }
}

/// Why a caller wants a token.
enum Need {
    /// Any token that is still good.
    Fresh,
    /// A token other than this one, which the upstream refused.
    Replacing(Secret),
    /// A newer token than the generation the caller saw (an explicit refresh).
    Newer(i64),
}

/// The grants of one home: cheap to share (`Arc`); every method takes `&self`.
pub struct Grants {
    shared: Arc<Shared>,
}

/// What a mint needs, shared with the task that runs it: a request, once sent, outlives the
/// caller that asked for it (DESIGN.md rule 4).
struct Shared {
    config: Arc<Config>,
    store: GrantStore,
    tokens: Arc<TokenCache>,
    lock: Arc<RefreshLock>,
    http: crate::net::tls::ProviderClients,
}

impl Grants {
    pub(crate) fn new(
        home_id: String,
        database: &Path,
        locks_dir: PathBuf,
        config: Arc<Config>,
        store: Arc<Mutex<latch_store::Store>>,
        secrets: Arc<dyn SecretStore>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let store = GrantStore::new(home_id, store, secrets, clock);
        Self {
            shared: Arc::new(Shared {
                http: config.provider_clients(store.identities()),
                store,
                tokens: Arc::new(TokenCache::new(database)),
                lock: Arc::new(RefreshLock::new(locks_dir)),
                config,
            }),
        }
    }

    /// The same grants over a new configuration: this process's token cache and refresh locks
    /// carry over, so one process never has two of either.
    pub fn reconfigured(&self, config: Arc<Config>) -> Self {
        Self {
            shared: Arc::new(Shared {
                http: config.provider_clients(self.shared.store.identities()),
                store: self.shared.store.clone(),
                tokens: Arc::clone(&self.shared.tokens),
                lock: Arc::clone(&self.shared.lock),
                config,
            }),
        }
    }

    /// Every provider's HTTP trust: the proxy builds its upstream connections on the same
    /// CA files and client certificates.
    pub fn clients(&self) -> &crate::net::tls::ProviderClients {
        &self.shared.http
    }

    /// The configuration these grants serve.
    pub fn config(&self) -> &Arc<Config> {
        &self.shared.config
    }

    /// The outbound HTTP client for a provider's endpoints and API (its CA file trusted); the
    /// default client for `None`.
    pub fn http(&self, provider: Option<&str>) -> &reqwest::Client {
        match provider {
            Some(name) => self.shared.http.for_provider(name),
            None => self.shared.http.default_client(),
        }
    }

    pub(crate) fn store(&self) -> &GrantStore {
        &self.shared.store
    }

    pub(crate) fn ctx(&self) -> Ctx<'_> {
        self.shared.ctx()
    }

    /// For long-running processes (the proxy): a thread notices other processes' commits every
    /// few milliseconds, so requests never touch SQLite while nothing changes.
    pub fn watch_in_background(&self) {
        self.shared.tokens.watch_in_background();
    }

    /// Where the database stands (its change counter and this process's writes): caches keyed
    /// on it are good while it is unchanged. A negative counter means "unknown".
    pub fn version(&self) -> Result<(i64, u64), GrantError> {
        self.shared.tokens.version()
    }

    /// A key verifier over this home that sees every database change as soon as the watcher
    /// thread does (revocations within milliseconds, no SQLite call per request).
    pub fn key_verifier(&self, database: &Path) -> crate::local_key::KeyVerifier {
        crate::local_key::KeyVerifier::new(database, self.shared.tokens.watched())
    }

    /// Drops this process's cached access token of a grant (after a sign-out or sign-in).
    pub fn forget(&self, grant: &GrantId) {
        self.shared.tokens.forget(grant);
    }

    /// A fresh access token, minted when needed; the caller waits at most `wait` for a mint
    /// (the proxy's caller wait), which goes on when the wait is spent.
    pub async fn access_token(
        &self,
        grant: &GrantId,
        mint: &Arc<dyn Mint>,
        wait: Option<Duration>,
    ) -> Result<Secret, GrantError> {
        // Fast path: this process's cache, valid while no other process rotated the grant.
        let store = &self.shared.store;
        if let Some(token) = self.shared.tokens.fresh(store, grant, store.now())? {
            return Ok(token);
        }
        self.obtain(grant, Need::Fresh, mint, wait).await
    }

    /// After the upstream refused `rejected`: a new token, unless another task or process
    /// already replaced that one (then its replacement is returned). At most one mint happens
    /// however many requests saw the same refusal.
    pub async fn after_rejection(
        &self,
        grant: &GrantId,
        rejected: &Secret,
        mint: &Arc<dyn Mint>,
        wait: Option<Duration>,
    ) -> Result<Secret, GrantError> {
        self.shared.tokens.forget(grant);
        self.obtain(grant, Need::Replacing(rejected.clone()), mint, wait)
            .await
    }

    /// Mints now, whatever the expiry ("Refresh now", doctor, keep-alive), unless another
    /// caller did since this one looked. Single-flight and cross-process rules apply.
    pub async fn refresh_now(
        &self,
        grant: &GrantId,
        mint: &Arc<dyn Mint>,
    ) -> Result<(), GrantError> {
        if !mint.renews_on_demand() {
            return Ok(());
        }
        let seen = self
            .shared
            .store
            .row(grant)?
            .map_or(0, |row| row.generation);
        self.shared.tokens.forget(grant);
        self.obtain(grant, Need::Newer(seen), mint, None)
            .await
            .map(drop)
    }

    /// Starts a grant afresh after a new secret was stored (a service account's): whatever was
    /// refused before is forgotten and a first token is minted.
    pub async fn restart(
        &self,
        grant: &GrantId,
        kind: GrantKind,
        mint: &Arc<dyn Mint>,
    ) -> Result<(), GrantError> {
        let row = match self.shared.store.row(grant)? {
            Some(mut row) => {
                row.state = GrantState::Ok;
                row.last_error = None;
                row
            }
            None => GrantRow {
                id: grant.clone(),
                kind,
                state: GrantState::Ok,
                ..GrantRow::default()
            },
        };
        self.shared.store.save(&row)?;
        self.shared.tokens.forget(grant);
        let flight = self.shared.lock.flight(grant);
        let _in_process = flight.lock().await;
        let _across_processes = self.shared.lock.across_processes(grant).await?;
        let ctx = self.ctx();
        let (token, row) = mint.mint(&ctx, grant, row).await?;
        self.shared.tokens.remember(grant, &token, &row);
        Ok(())
    }

    /// Persists a token response and remembers the access token (a sign-in's code exchange).
    pub(crate) async fn store_tokens(
        &self,
        grant: &GrantId,
        row: GrantRow,
        tokens: oauth::TokenSet,
    ) -> Result<Secret, GrantError> {
        let (token, row) = self
            .shared
            .store
            .store_tokens(grant, row, tokens, None)
            .await?;
        self.shared.tokens.remember(grant, &token, &row);
        Ok(token)
    }

    /// Marks a grant's access token stale when `presented` is the current one (git saw it
    /// refused): the next request mints. The refresh token is never touched. Returns whether it
    /// was the current token.
    pub async fn mark_stale(
        &self,
        grant: &GrantId,
        presented: &Secret,
    ) -> Result<bool, GrantError> {
        let store = &self.shared.store;
        let current = store.secret(store.access_token_key(grant)).await?;
        if current.as_ref().map(Secret::expose) != Some(presented.expose()) {
            return Ok(false);
        }
        let Some(mut row) = store.row(grant)? else {
            return Ok(false);
        };
        let now = store.now();
        if row.access_expires_at.is_none_or(|at| at > now) {
            row.access_expires_at = Some(now);
            store.save(&row)?;
        }
        self.shared.tokens.forget(grant);
        Ok(true)
    }

    /// A grant's stored facts.
    pub fn row(&self, grant: &GrantId) -> Result<Option<GrantRow>, GrantError> {
        self.shared.store.row(grant)
    }

    /// When the grant's current access token was issued (the proxy's refresh throttle).
    pub fn issued_at(&self, grant: &GrantId) -> Result<Option<time::OffsetDateTime>, GrantError> {
        Ok(self
            .shared
            .tokens
            .facts(&self.shared.store, grant)?
            .and_then(|facts| facts.issued_at))
    }

    /// What a grant holds (`None` before it was obtained).
    pub fn granted(&self, grant: &GrantId) -> Result<Option<ScopeList>, GrantError> {
        Ok(self
            .shared
            .tokens
            .facts(&self.shared.store, grant)?
            .map(|facts| facts.granted.clone()))
    }

    /// The slow path: runs in its own task holding the grant's locks, so that a mint, once
    /// sent, completes and is stored even when the caller stops waiting (`wait`). A caller whose
    /// wait is spent gets `refresh_failing`; the next caller finds the stored result.
    async fn obtain(
        &self,
        grant: &GrantId,
        need: Need,
        mint: &Arc<dyn Mint>,
        wait: Option<Duration>,
    ) -> Result<Secret, GrantError> {
        let shared = Arc::clone(&self.shared);
        let (id, mint) = (grant.clone(), Arc::clone(mint));
        // What the grant looked like when this caller asked: a failure recorded after this,
        // while it waited, is its answer too.
        let asked = self
            .shared
            .store
            .row(grant)?
            .map(|r| (r.generation, r.consecutive_failures));
        let work = tokio::spawn(async move { shared.obtain(&id, need, &*mint, asked).await });
        let joined = match wait {
            None => work.await,
            Some(limit) => match tokio::time::timeout(limit, work).await {
                Ok(joined) => joined,
                Err(_) => {
                    return Err(GrantError::RefreshFailing {
                        grant: grant.to_string(),
                        reason: format!(
                            "the token endpoint has not answered within {}s; Latch keeps waiting \
                             for it and stores what it returns",
                            limit.as_secs()
                        ),
                    })
                }
            },
        };
        joined.map_err(|e| GrantError::Lock(format!("refresh task failed: {e}")))?
    }
}

impl Shared {
    fn ctx(&self) -> Ctx<'_> {
        Ctx {
            config: &self.config,
            store: &self.store,
            clients: &self.http,
        }
    }

    async fn obtain(
        &self,
        grant: &GrantId,
        need: Need,
        mint: &dyn Mint,
        asked: Option<(i64, i64)>,
    ) -> Result<Secret, GrantError> {
        let wanted = |token: &Secret| match &need {
            Need::Fresh => true,
            Need::Replacing(rejected) => rejected != token,
            Need::Newer(_) => false,
        };
        let flight = self.lock.flight(grant);
        let _in_process = flight.lock().await;
        // Another task of this process may have minted while we waited.
        if let Some(token) = self.tokens.fresh(&self.store, grant, self.store.now())? {
            if wanted(&token) {
                return Ok(token);
            }
        }
        let _across_processes = self.lock.across_processes(grant).await?;
        // Re-read what is stored now: another process may have minted meanwhile.
        let Some(row) = self.store.row(grant)? else {
            return Err(mint.not_started(grant));
        };
        match row.state {
            GrantState::NeedsLogin => {
                return Err(GrantError::NeedsLogin {
                    grant: grant.to_string(),
                    provider: mint.provider().to_owned(),
                    reason: row.last_error.unwrap_or_else(|| {
                        "the provider no longer accepts the refresh token".into()
                    }),
                })
            }
            // A new secret resets the state; until then, asking again with the refused one
            // only fills the provider's logs.
            GrantState::CredentialRejected if matches!(need, Need::Fresh) => {
                if let Some(err) = mint.still_refused(&self.ctx(), &row) {
                    return Err(err);
                }
            }
            // A mint that ended in failure while this caller waited behind it: its outcome is
            // this caller's too. Queued callers must not each send another request.
            GrantState::RefreshFailing | GrantState::RefreshUncertain
                if asked.is_some_and(|(generation, failures)| {
                    row.generation == generation && row.consecutive_failures > failures
                }) =>
            {
                let reason = row.last_error.unwrap_or_default();
                return Err(if row.state == GrantState::RefreshUncertain {
                    GrantError::RefreshUncertain {
                        grant: grant.to_string(),
                        provider: mint.provider().to_owned(),
                        reason,
                    }
                } else {
                    GrantError::RefreshFailing {
                        grant: grant.to_string(),
                        reason,
                    }
                });
            }
            _ => {}
        }
        let newer_than_seen = matches!(need, Need::Newer(seen) if row.generation != seen);
        let still_good = refresh_at(&row).is_some_and(|at| self.store.now() < at);
        if newer_than_seen || (still_good && !matches!(need, Need::Newer(_))) {
            if let Some(token) = self
                .store
                .secret(self.store.access_token_key(grant))
                .await?
            {
                if newer_than_seen || wanted(&token) {
                    self.tokens.remember(grant, &token, &row);
                    return Ok(token);
                }
            }
        }
        let ctx = self.ctx();
        let (token, row) = mint.mint(&ctx, grant, row).await?;
        self.tokens.remember(grant, &token, &row);
        Ok(token)
    }
}

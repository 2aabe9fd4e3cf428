//! The token lifecycle: handing out fresh credentials, and refreshing rotating refresh tokens
//! so that exactly one refresh per grant is in flight, across threads and processes.
//!
//! The order of a refresh is the contract (DESIGN.md "Token lifecycle", atlassian-wire §1.4):
//! 1. one task per grant in this process (async single-flight), then one process per grant
//!    (an OS file lock in the home's `locks/` folder);
//! 2. re-read the stored grant after taking the lock, and refresh only if still needed;
//! 3. write the rotated refresh token to the keychain *before* the new access token is used;
//!    keep the old refresh token when a response omits one;
//! 4. `invalid_grant` → `needs_login`, never retried; 5xx / unreachable → bounded retries with
//!    backoff, then `refresh_failing`; a lost response → one retry with the same refresh token
//!    while inside the provider's reuse window.

use std::collections::HashMap;
use std::fs::{File, TryLockError};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use base64::Engine as _;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::catalog::{AuthMode, ClientType};
use crate::config::{Config, Connector, Provider};
use crate::oauth::{self, TokenEndpoint, TokenError, TokenSet};
use crate::ports::{SecretKey, SecretStore, SecretStoreError};
use crate::scope::ScopeList;
use crate::secret::Secret;
use latch_store::{GrantRow, Store};

/// How many times a transient token-endpoint failure is tried in all.
const MAX_ATTEMPTS: u32 = 3;
/// The refresh margin never exceeds this, nor half the token's lifetime.
const MAX_MARGIN: Duration = Duration::from_secs(60);
/// How often a long-running process looks for other processes' commits.
const WATCH_EVERY: Duration = Duration::from_millis(5);
/// How long a process waits for another process's refresh of the same grant.
const LOCK_TIMEOUT: Duration = Duration::from_secs(60);

/// Grant states stored in SQLite.
pub mod state {
    /// Usable.
    pub const OK: &str = "ok";
    /// The token family is dead: sign in again.
    pub const NEEDS_LOGIN: &str = "needs_login";
    /// Refreshing failed after retries; the next use tries again.
    pub const REFRESH_FAILING: &str = "refresh_failing";
}

/// An upstream credential, ready to go in an `Authorization` header.
pub enum Credential {
    /// `Bearer <token>` (OAuth access tokens, Data Center PATs).
    Bearer(Secret),
    /// `Basic base64(email:token)` (Atlassian API tokens).
    Basic {
        /// The account e-mail.
        user: String,
        /// The API token.
        token: Secret,
    },
    /// `GenieKey <key>` (Opsgenie).
    GenieKey(Secret),
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Bearer(_) => "Credential::Bearer(<redacted>)",
            Self::Basic { .. } => "Credential::Basic(<redacted>)",
            Self::GenieKey(_) => "Credential::GenieKey(<redacted>)",
        })
    }
}

impl Credential {
    /// The full `Authorization` header value.
    pub fn authorization(&self) -> Secret {
        match self {
            Self::Bearer(token) => Secret::new(format!("Bearer {}", token.expose())),
            Self::Basic { user, token } => {
                let raw = Secret::new(format!("{user}:{}", token.expose()));
                Secret::new(format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(raw.expose())
                ))
            }
            Self::GenieKey(key) => Secret::new(format!("GenieKey {}", key.expose())),
        }
    }

    /// The bare token (what `latch token` prints).
    pub fn token(&self) -> &Secret {
        match self {
            Self::Bearer(t) | Self::GenieKey(t) => t,
            Self::Basic { token, .. } => token,
        }
    }
}

/// Why no credential could be handed out. Never carries a secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GrantError {
    /// Never signed in (or signed out).
    #[error("`{grant}` is not signed in\n  fix: {fix}")]
    NotSignedIn {
        /// The grant.
        grant: String,
        /// The command to run.
        fix: String,
    },
    /// The token family is dead.
    #[error("`{grant}` needs a new sign-in: {reason}\n  fix: run `latch login {provider}`")]
    NeedsLogin {
        /// The grant.
        grant: String,
        /// Its provider.
        provider: String,
        /// Why, in plain words.
        reason: String,
    },
    /// Refreshing fails; Latch keeps trying on the next use.
    #[error("refreshing `{grant}` failed: {reason}\n  fix: check the network and the provider's status, then try again; `latch status` shows the last error")]
    RefreshFailing {
        /// The grant.
        grant: String,
        /// The last error.
        reason: String,
    },
    /// Unknown connector.
    #[error("unknown connector `{0}`")]
    UnknownConnector(String),
    /// The connector's API needs a site and none is bound (or the bound one is unknown).
    #[error("connector `{connector}` has no usable site: {reason}\n  fix: {fix}")]
    SiteUnbound {
        /// Connector.
        connector: String,
        /// Why.
        reason: String,
        /// What to do.
        fix: String,
    },
    /// The set-up is incomplete (missing client id, e-mail, …).
    #[error("{message}\n  fix: {fix}")]
    Misconfigured {
        /// What is missing.
        message: String,
        /// What to do.
        fix: String,
    },
    /// The keychain failed.
    #[error(transparent)]
    Keychain(#[from] SecretStoreError),
    /// The database failed.
    #[error("database: {0}")]
    Store(#[from] latch_store::StoreError),
    /// The lock folder is unusable, or another process held the lock too long.
    #[error("{0}")]
    Lock(String),
}

impl GrantError {
    /// A stable code for scripts and the UI.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotSignedIn { .. } => "not_signed_in",
            Self::NeedsLogin { .. } => "needs_login",
            Self::RefreshFailing { .. } => "refresh_failing",
            Self::UnknownConnector(_) => "unknown_connector",
            Self::SiteUnbound { .. } => "site_unbound",
            Self::Misconfigured { .. } => "misconfigured",
            Self::Keychain(_) => "keychain_unavailable",
            Self::Store(_) => "database_error",
            Self::Lock(_) => "lock_failed",
        }
    }
}

struct CachedToken {
    token: Secret,
    generation: i64,
}

/// What the hot path needs to know about a grant, cached until the database changes.
struct Facts {
    generation: i64,
    refresh_at: Option<OffsetDateTime>,
    granted: ScopeList,
}

/// Grant facts as of a database version. SQLite's `data_version` changes when another
/// process commits; this process's own writes bump `local_epoch`. Either one invalidates.
#[derive(Default)]
struct FactsCache {
    data_version: i64,
    local_epoch: u64,
    grants: HashMap<String, Option<Arc<Facts>>>,
}

/// The token lifecycle of one home. Cheap to share (`Arc`); every method takes `&self`.
pub struct Grants {
    home_id: String,
    locks_dir: PathBuf,
    config: Arc<Config>,
    store: Arc<Mutex<Store>>,
    secrets: Arc<dyn SecretStore>,
    http: reqwest::Client,
    flights: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    cache: Mutex<HashMap<String, CachedToken>>,
    facts: Mutex<FactsCache>,
    /// A second connection used only to ask SQLite whether anything changed: it sees every
    /// commit (other processes' and this process's), and never waits behind long writes.
    watch: Option<Arc<Mutex<Store>>>,
    /// Set by `watch_in_background`: the last `data_version` a background thread saw, so the
    /// hot path reads an atomic instead of asking SQLite (which takes a file lock) per request.
    watched_version: Arc<std::sync::atomic::AtomicI64>,
    watching: std::sync::atomic::AtomicBool,
    crash_at: Option<String>,
}

/// Bumped by every grant write of this process (SQLite's `data_version` only reports other
/// connections' commits), so every `Grants` of the process re-reads what changed.
static LOCAL_EPOCH: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// Records that this process wrote grant facts.
pub(crate) fn note_local_write() {
    LOCAL_EPOCH.fetch_add(1, std::sync::atomic::Ordering::Release);
}

/// The keychain item names of one grant.
pub(crate) fn refresh_token_key(home_id: &str, grant: &str) -> SecretKey {
    SecretKey::new(home_id, "grant", grant, "refresh-token")
}

pub(crate) fn access_token_key(home_id: &str, grant: &str) -> SecretKey {
    SecretKey::new(home_id, "grant", grant, "access-token")
}

pub(crate) fn connector_secret_key(home_id: &str, connector: &str) -> SecretKey {
    SecretKey::new(home_id, "connector", connector, "credential")
}

pub(crate) fn client_secret_key(home_id: &str, provider: &str) -> SecretKey {
    SecretKey::new(home_id, "provider", provider, "client-secret")
}

/// The grant a connector draws on: its provider's consent, or its own service credential.
pub fn grant_id(connector: &Connector) -> String {
    match connector.auth {
        AuthMode::Service => format!("service:{}", connector.name),
        _ => connector.provider.clone(),
    }
}

pub(crate) fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

pub(crate) fn fmt_time(t: OffsetDateTime) -> String {
    t.replace_nanosecond(0)
        .unwrap_or(t)
        .format(&Rfc3339)
        .unwrap_or_default()
}

pub(crate) fn parse_time(text: Option<&str>) -> Option<OffsetDateTime> {
    text.and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok())
}

/// When to refresh: a margin before expiry of at most a minute and at most half the lifetime,
/// so short-lived tokens are not refreshed on every call.
pub(crate) fn refresh_at(row: &GrantRow) -> Option<OffsetDateTime> {
    let expires = parse_time(row.access_expires_at.as_deref())?;
    let issued = parse_time(row.access_issued_at.as_deref()).unwrap_or(expires);
    let lifetime: Duration = (expires - issued).try_into().unwrap_or(Duration::ZERO);
    let margin = MAX_MARGIN.min(lifetime / 2);
    Some(expires - margin)
}

impl Grants {
    pub(crate) fn new(
        home_id: String,
        database: &Path,
        locks_dir: PathBuf,
        config: Arc<Config>,
        store: Arc<Mutex<Store>>,
        secrets: Arc<dyn SecretStore>,
    ) -> Self {
        let http = oauth::http_client(config.http_timeout);
        // Test hook for the crash-safety tests: debug builds only.
        let crash_at = if cfg!(debug_assertions) {
            std::env::var("LATCH_TEST_CRASH_AT").ok()
        } else {
            None
        };
        Self {
            home_id,
            locks_dir,
            config,
            store,
            secrets,
            http,
            flights: Mutex::new(HashMap::new()),
            cache: Mutex::new(HashMap::new()),
            facts: Mutex::new(FactsCache::default()),
            watch: Store::open(database).ok().map(|s| Arc::new(Mutex::new(s))),
            watched_version: Arc::new(std::sync::atomic::AtomicI64::new(-1)),
            watching: std::sync::atomic::AtomicBool::new(false),
            crash_at,
        }
    }

    fn db(&self) -> std::sync::MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The outbound HTTP client (no redirects, bounded timeouts).
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// The configuration this lifecycle was built from.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Dies like `kill -9` at a named point, when the crash-safety tests ask for it.
    fn crash_point(&self, point: &str) {
        if self.crash_at.as_deref() == Some(point) {
            let pid = std::process::id().to_string();
            let _ = std::process::Command::new("kill")
                .args(["-9", &pid])
                .status();
            std::process::abort();
        }
    }

    async fn secret(&self, key: SecretKey) -> Result<Option<Secret>, GrantError> {
        let secrets = Arc::clone(&self.secrets);
        tokio::task::spawn_blocking(move || secrets.get(&key))
            .await
            .map_err(|e| GrantError::Lock(format!("keychain task failed: {e}")))?
            .map_err(GrantError::from)
    }

    async fn put_secret(&self, key: SecretKey, value: Secret) -> Result<(), GrantError> {
        let secrets = Arc::clone(&self.secrets);
        tokio::task::spawn_blocking(move || secrets.put(&key, &value))
            .await
            .map_err(|e| GrantError::Lock(format!("keychain task failed: {e}")))?
            .map_err(GrantError::from)
    }

    /// A fresh credential for a connector, refreshing when needed.
    pub async fn credential(&self, connector: &str) -> Result<Credential, GrantError> {
        let Some(c) = self.config.connector(connector) else {
            return Err(GrantError::UnknownConnector(connector.to_owned()));
        };
        match c.auth {
            AuthMode::User | AuthMode::Service => {
                Ok(Credential::Bearer(self.access_token(&grant_id(c)).await?))
            }
            AuthMode::ApiToken | AuthMode::Pat | AuthMode::ApiKey => {
                let key = connector_secret_key(&self.home_id, &c.name);
                let Some(secret) = self.secret(key).await? else {
                    return Err(GrantError::NotSignedIn {
                        grant: c.name.clone(),
                        fix: format!("store the credential: `latch credential set {}`", c.name),
                    });
                };
                Ok(match c.auth {
                    AuthMode::ApiToken => Credential::Basic {
                        user: c.email.clone().ok_or_else(|| GrantError::Misconfigured {
                            message: format!(
                                "connector `{}` uses an API token but has no e-mail",
                                c.name
                            ),
                            fix: format!(
                                "set `email = \"...\"` under [connectors.{}] in latch.toml",
                                c.name
                            ),
                        })?,
                        token: secret,
                    },
                    AuthMode::ApiKey => Credential::GenieKey(secret),
                    _ => Credential::Bearer(secret),
                })
            }
        }
    }

    /// The stored facts of a grant: one cheap `data_version` check per call, a row read only
    /// when the database changed.
    fn facts(&self, grant: &str) -> Result<Option<Arc<Facts>>, GrantError> {
        let epoch = LOCAL_EPOCH.load(std::sync::atomic::Ordering::Acquire);
        let version = match &self.watch {
            _ if self.watching.load(std::sync::atomic::Ordering::Acquire) => self
                .watched_version
                .load(std::sync::atomic::Ordering::Acquire),
            Some(watch) => watch
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .data_version()?,
            // Without a watch connection, re-read every time (correct, slower).
            None => -1,
        };
        let mut cache = self.facts.lock().unwrap_or_else(PoisonError::into_inner);
        if version < 0 || cache.data_version != version || cache.local_epoch != epoch {
            cache.grants.clear();
            cache.data_version = version;
            cache.local_epoch = epoch;
        }
        if let Some(known) = cache.grants.get(grant) {
            return Ok(known.clone());
        }
        let facts = self.db().grant(grant)?.map(|row| {
            Arc::new(Facts {
                generation: row.generation,
                refresh_at: refresh_at(&row),
                granted: ScopeList::parse(&row.granted_scopes).unwrap_or_default(),
            })
        });
        cache.grants.insert(grant.to_owned(), facts.clone());
        Ok(facts)
    }

    /// For long-running processes (the proxy): a thread notices other processes' commits every
    /// few milliseconds, so requests never touch SQLite while nothing changes. The thread ends
    /// when this `Grants` is dropped.
    pub fn watch_in_background(self: &Arc<Self>) {
        let Some(watch) = self.watch.clone() else {
            return;
        };
        let version = Arc::clone(&self.watched_version);
        let owner = Arc::downgrade(self);
        let first = watch
            .lock()
            .ok()
            .and_then(|w| w.data_version().ok())
            .unwrap_or(-1);
        version.store(first, std::sync::atomic::Ordering::Release);
        self.watching
            .store(true, std::sync::atomic::Ordering::Release);
        let spawned = std::thread::Builder::new()
            .name("latch-db-watch".into())
            .spawn(move || {
                while owner.strong_count() > 0 {
                    if let Some(v) = watch.lock().ok().and_then(|w| w.data_version().ok()) {
                        version.store(v, std::sync::atomic::Ordering::Release);
                    }
                    std::thread::sleep(WATCH_EVERY);
                }
            });
        if spawned.is_err() {
            self.watching
                .store(false, std::sync::atomic::Ordering::Release);
        }
    }

    /// This process's cached token, if the stored grant still says it is fresh: same generation
    /// (no rotation by another process) and before its refresh time.
    fn cached(&self, grant: &str) -> Result<Option<Secret>, GrantError> {
        let Some(facts) = self.facts(grant)? else {
            return Ok(None);
        };
        if facts.refresh_at.is_none_or(|at| now() >= at) {
            return Ok(None);
        }
        let cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(cache
            .get(grant)
            .filter(|c| c.generation == facts.generation)
            .map(|c| c.token.clone()))
    }

    fn remember(&self, grant: &str, token: &Secret, row: &GrantRow) {
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        cache.insert(
            grant.to_owned(),
            CachedToken {
                token: token.clone(),
                generation: row.generation,
            },
        );
    }

    /// Drops this process's cached access tokens (after a sign-out or sign-in).
    pub fn forget(&self, grant: &str) {
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        cache.remove(grant);
    }

    fn provider_of(&self, grant: &str) -> String {
        grant
            .strip_prefix("service:")
            .and_then(|c| self.config.connector(c))
            .map_or_else(|| grant.to_owned(), |c| c.provider.clone())
    }

    fn login_hint(&self, grant: &str) -> String {
        match grant.strip_prefix("service:") {
            Some(connector) => {
                format!("store the service account's secret: `latch credential set {connector}`")
            }
            None => format!("sign in: `latch login {grant}`"),
        }
    }

    /// A fresh access token for a grant (provider name, or `service:CONNECTOR`).
    pub async fn access_token(&self, grant: &str) -> Result<Secret, GrantError> {
        // Fast path: this process's cache, valid while no other process rotated the grant.
        if let Some(token) = self.cached(grant)? {
            return Ok(token);
        }
        self.access_token_slow(grant, None).await
    }

    /// After the upstream API refused `rejected` with a 401: refresh, unless another task or
    /// process already replaced that token (then its replacement is returned). At most one
    /// refresh happens however many requests saw the same 401.
    pub async fn access_token_after_rejection(
        &self,
        grant: &str,
        rejected: &Secret,
    ) -> Result<Secret, GrantError> {
        self.forget(grant);
        self.access_token_slow(grant, Some(rejected)).await
    }

    async fn access_token_slow(
        &self,
        grant: &str,
        rejected: Option<&Secret>,
    ) -> Result<Secret, GrantError> {
        let flight = {
            let mut flights = self.flights.lock().unwrap_or_else(PoisonError::into_inner);
            Arc::clone(flights.entry(grant.to_owned()).or_default())
        };
        let _in_process = flight.lock().await;

        // Another task of this process may have refreshed while we waited.
        if let Some(token) = self.cached(grant)? {
            if rejected.is_none_or(|r| r != &token) {
                return Ok(token);
            }
        }
        let lock_path = self
            .locks_dir
            .join(format!("{}.lock", grant.replace(':', "_")));
        let _cross_process = tokio::task::spawn_blocking(move || lock_file(&lock_path))
            .await
            .map_err(|e| GrantError::Lock(format!("lock task failed: {e}")))??;

        // Re-read what is stored now: another process may have refreshed meanwhile.
        let Some(row) = self.db().grant(grant)? else {
            return Err(GrantError::NotSignedIn {
                grant: grant.to_owned(),
                fix: self.login_hint(grant),
            });
        };
        if row.state == state::NEEDS_LOGIN {
            return Err(GrantError::NeedsLogin {
                grant: grant.to_owned(),
                provider: self.provider_of(grant),
                reason: row
                    .last_error
                    .unwrap_or_else(|| "the provider no longer accepts the refresh token".into()),
            });
        }
        if refresh_at(&row).is_some_and(|at| now() < at) {
            if let Some(token) = self.secret(access_token_key(&self.home_id, grant)).await? {
                if rejected.is_none_or(|r| r != &token) {
                    self.remember(grant, &token, &row);
                    return Ok(token);
                }
            }
        }
        let token = if row.kind == "service" {
            self.request_service_token(grant, row).await?
        } else {
            self.refresh(grant, row).await?
        };
        Ok(token)
    }

    pub(crate) fn endpoint(
        &self,
        provider: &Provider,
        client_id: Option<&str>,
    ) -> Result<TokenEndpoint, GrantError> {
        let url = provider
            .spec
            .token_url
            .clone()
            .ok_or_else(|| GrantError::Misconfigured {
                message: format!("provider `{}` has no token endpoint", provider.name),
                fix: "set `token_url` for it in latch.toml".to_owned(),
            })?;
        let client_id = client_id
            .map(str::to_owned)
            .or_else(|| provider.client_id.clone())
            .ok_or_else(|| GrantError::Misconfigured {
                message: format!("provider `{}` has no client id", provider.name),
                fix: format!("run `latch provider add {} --client-id ...`", provider.name),
            })?;
        Ok(TokenEndpoint {
            url,
            encoding: provider.spec.token_request,
            auth: provider.spec.token_auth,
            client_id,
        })
    }

    pub(crate) async fn client_secret(
        &self,
        provider: &Provider,
    ) -> Result<Option<Secret>, GrantError> {
        if provider.spec.client_type != ClientType::Confidential {
            return Ok(None);
        }
        match self
            .secret(client_secret_key(&self.home_id, &provider.name))
            .await?
        {
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

    fn provider(&self, name: &str) -> Result<&Provider, GrantError> {
        self.config
            .provider(name)
            .ok_or_else(|| GrantError::Misconfigured {
                message: format!("provider `{name}` is not configured"),
                fix: format!("run `latch provider add {name} --client-id ...`"),
            })
    }

    fn save(&self, row: &GrantRow) -> Result<(), GrantError> {
        self.db().grant_put(row)?;
        note_local_write();
        Ok(())
    }

    /// Records a failure on the grant and returns the error to hand back.
    fn failed(
        &self,
        row: GrantRow,
        grant: &str,
        provider: &str,
        new_state: &str,
        reason: String,
    ) -> GrantError {
        if let Err(err) = self.fail(row, new_state, reason.clone()) {
            return err;
        }
        if new_state == state::NEEDS_LOGIN {
            GrantError::NeedsLogin {
                grant: grant.to_owned(),
                provider: provider.to_owned(),
                reason,
            }
        } else {
            GrantError::RefreshFailing {
                grant: grant.to_owned(),
                reason,
            }
        }
    }

    fn fail(&self, mut row: GrantRow, new_state: &str, reason: String) -> Result<(), GrantError> {
        row.state = new_state.to_owned();
        row.last_error = Some(reason);
        row.last_failure_at = Some(fmt_time(now()));
        row.consecutive_failures += 1;
        row.refresh_started_at = None;
        self.save(&row)
    }

    async fn refresh(&self, grant: &str, mut row: GrantRow) -> Result<Secret, GrantError> {
        let provider = self.provider(grant)?.clone();
        let endpoint = self.endpoint(&provider, None)?;
        let client_secret = self.client_secret(&provider).await?;
        let rt_key = refresh_token_key(&self.home_id, grant);
        let Some(refresh_token) = self.secret(rt_key.clone()).await? else {
            let reason = "no refresh token is stored for it".to_owned();
            return Err(self.failed(row, grant, &provider.name, state::NEEDS_LOGIN, reason));
        };
        let interrupted = row.refresh_started_at.is_some();
        row.refresh_started_at = Some(fmt_time(now()));
        self.save(&row)?;
        self.crash_point("before_request");

        let window = Duration::from_secs(provider.spec.refresh_reuse_window_secs.unwrap_or(0));
        let started = Instant::now();
        let mut attempt = 0;
        let mut resent_after_loss = false;
        let result = loop {
            attempt += 1;
            match oauth::request_token(
                &self.http,
                &endpoint,
                client_secret.as_ref(),
                oauth::Grant::Refresh(&refresh_token),
            )
            .await
            {
                Ok(tokens) => break Ok(tokens),
                // The provider may have rotated the token without us seeing the answer: the same
                // token may be sent once more inside the reuse window, never after it.
                Err(TokenError::Lost(_)) if !resent_after_loss && started.elapsed() < window => {
                    resent_after_loss = true;
                }
                Err(err) if err.is_transient() && attempt < MAX_ATTEMPTS => {
                    tokio::time::sleep(Duration::from_millis(250 << attempt)).await;
                }
                Err(err) => break Err(err),
            }
        };
        let tokens = match result {
            Ok(tokens) => tokens,
            Err(TokenError::InvalidGrant { description }) => {
                let mut reason = format!(
                    "the provider answered invalid_grant{} (the refresh token was rotated, \
                     revoked, or expired after inactivity)",
                    description.map(|d| format!(": {d}")).unwrap_or_default()
                );
                if interrupted {
                    reason.push_str(
                        "; an earlier refresh was interrupted after the provider rotated the token",
                    );
                }
                return Err(self.failed(row, grant, &provider.name, state::NEEDS_LOGIN, reason));
            }
            Err(err) => {
                let reason = err.to_string();
                return Err(self.failed(
                    row,
                    grant,
                    &provider.name,
                    state::REFRESH_FAILING,
                    reason,
                ));
            }
        };
        self.crash_point("after_response");
        self.store_tokens(grant, row, tokens, Some(refresh_token))
            .await
    }

    async fn request_service_token(
        &self,
        grant: &str,
        row: GrantRow,
    ) -> Result<Secret, GrantError> {
        let connector_name = grant.trim_start_matches("service:");
        let connector = self
            .config
            .connector(connector_name)
            .ok_or_else(|| GrantError::UnknownConnector(connector_name.to_owned()))?
            .clone();
        let provider = self.provider(&connector.provider)?.clone();
        let endpoint = self.endpoint(&provider, connector.client_id.as_deref())?;
        let secret = self
            .secret(connector_secret_key(&self.home_id, connector_name))
            .await?
            .ok_or_else(|| GrantError::NotSignedIn {
                grant: grant.to_owned(),
                fix: self.login_hint(grant),
            })?;
        // `offline_access` asks for a refresh token, which client credentials never carry.
        let scopes = ScopeList::from_scopes(
            connector
                .spec
                .upstream_scopes
                .iter()
                .filter(|s| s.as_str() != "offline_access")
                .cloned(),
        );
        let mut attempt = 0;
        let result = loop {
            attempt += 1;
            match oauth::request_token(
                &self.http,
                &endpoint,
                Some(&secret),
                oauth::Grant::ClientCredentials(Some(&scopes)),
            )
            .await
            {
                Ok(tokens) => break Ok(tokens),
                // No refresh token is at stake: re-sending a client-credentials request is safe.
                Err(err)
                    if (err.is_transient() || matches!(err, TokenError::Lost(_)))
                        && attempt < MAX_ATTEMPTS =>
                {
                    tokio::time::sleep(Duration::from_millis(250 << attempt)).await;
                }
                Err(err) => break Err(err),
            }
        };
        match result {
            Ok(tokens) => self.store_tokens(grant, row, tokens, None).await,
            Err(err @ (TokenError::InvalidGrant { .. } | TokenError::Rejected { .. })) => {
                let reason = err.to_string();
                Err(self.failed(row, grant, &provider.name, state::NEEDS_LOGIN, reason))
            }
            Err(err) => {
                let reason = err.to_string();
                Err(self.failed(row, grant, &provider.name, state::REFRESH_FAILING, reason))
            }
        }
    }

    /// Persists a token response: refresh token first, then the access token, then the facts.
    /// Only then is the access token returned for use.
    pub(crate) async fn store_tokens(
        &self,
        grant: &str,
        mut row: GrantRow,
        tokens: TokenSet,
        previous_refresh_token: Option<Secret>,
    ) -> Result<Secret, GrantError> {
        let TokenSet {
            access_token,
            refresh_token,
            expires_in,
            scope,
        } = tokens;
        if let Some(rt) = refresh_token.or(previous_refresh_token) {
            if let Err(err) = self
                .put_secret(refresh_token_key(&self.home_id, grant), rt)
                .await
            {
                // The new refresh token is lost with this error; the old one still works inside
                // the reuse window. Never hand out an access token whose family we cannot keep.
                self.fail(
                    row,
                    state::REFRESH_FAILING,
                    format!("could not store the rotated refresh token: {err}"),
                )?;
                return Err(err);
            }
        }
        self.crash_point("after_keychain_write");
        self.put_secret(access_token_key(&self.home_id, grant), access_token.clone())
            .await?;
        let issued = now();
        // Without `expires_in`, assume the common hour; a 401 upstream forces a refresh anyway.
        let lifetime = Duration::from_secs(expires_in.unwrap_or(3600));
        row.access_issued_at = Some(fmt_time(issued));
        row.access_expires_at = Some(fmt_time(issued + lifetime));
        if row.obtained_at.is_none() {
            row.obtained_at = Some(fmt_time(issued));
        } else {
            row.refreshed_at = Some(fmt_time(issued));
        }
        if let Some(scope) = scope {
            row.granted_scopes = scope.to_string();
        }
        row.state = state::OK.to_owned();
        row.generation += 1;
        row.last_error = None;
        row.consecutive_failures = 0;
        row.refresh_started_at = None;
        self.save(&row)?;
        self.crash_point("after_db_write");
        self.remember(grant, &access_token, &row);
        Ok(access_token)
    }

    /// Starts a service-account grant (client credentials) and fetches its first token.
    pub async fn start_service(&self, connector: &str) -> Result<(), GrantError> {
        let grant = format!("service:{connector}");
        let existing = self.db().grant(&grant)?;
        let row = existing.unwrap_or(GrantRow {
            id: grant.clone(),
            kind: "service".to_owned(),
            state: state::OK.to_owned(),
            ..GrantRow::default()
        });
        self.forget(&grant);
        self.request_service_token(&grant, row).await.map(drop)
    }

    /// Refreshes now, whatever the expiry ("Refresh now", keep-alive). Single-flight and
    /// cross-process rules apply as for any refresh.
    pub async fn refresh_now(&self, grant: &str) -> Result<(), GrantError> {
        let current = self
            .secret(access_token_key(&self.home_id, grant))
            .await?
            .unwrap_or_else(|| Secret::new(String::new()));
        self.access_token_after_rejection(grant, &current)
            .await
            .map(drop)
    }

    /// Refreshes the token a connector draws on now (the desktop app's "Refresh now").
    pub async fn refresh_connector(&self, connector: &str) -> Result<(), GrantError> {
        let Some(c) = self.config.connector(connector) else {
            return Err(GrantError::UnknownConnector(connector.to_owned()));
        };
        if !matches!(c.auth, AuthMode::User | AuthMode::Service) {
            return Err(GrantError::Misconfigured {
                message: format!(
                    "connector `{connector}` uses a stored {}; there is no token to refresh",
                    c.auth.as_str()
                ),
                fix: format!("store a new one with `latch credential set {connector}`"),
            });
        }
        self.refresh_now(&grant_id(c)).await
    }

    /// Grant ids this home uses (providers with user connectors, service connectors).
    pub fn grant_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = Vec::new();
        for c in &self.config.connectors {
            if matches!(c.auth, AuthMode::User | AuthMode::Service) {
                let id = grant_id(c);
                if !ids.contains(&id) {
                    ids.push(id);
                }
            }
        }
        ids
    }

    /// A grant's stored facts.
    pub fn row(&self, grant: &str) -> Result<Option<GrantRow>, GrantError> {
        Ok(self.db().grant(grant)?)
    }

    /// The upstream API base of a connector, with the provider's gateway and the bound site's
    /// cloud id filled in.
    pub fn upstream_base(&self, connector: &Connector) -> Result<String, GrantError> {
        let provider = self.provider(&connector.provider)?;
        let gateway = provider.spec.api_base.as_deref().unwrap_or_default();
        if !connector.spec.needs_site() {
            return Ok(crate::catalog::expand_api_base(
                &connector.spec.api_base,
                gateway,
                "",
            ));
        }
        let fix = format!(
            "run `latch login {}` (it binds sites), or set `site = \"NAME\"` under [connectors.{}]",
            connector.provider, connector.name
        );
        let Some(site) = connector.site.as_deref() else {
            return Err(GrantError::SiteUnbound {
                connector: connector.name.clone(),
                reason: "no site is bound".to_owned(),
                fix,
            });
        };
        let sites = self.db().sites(&connector.provider)?;
        let markers = &connector.spec.site_scope_markers;
        let cloud_id = sites
            .iter()
            .filter(|s| markers.is_empty() || markers.iter().any(|m| s.scopes.contains(m.as_str())))
            .find(|s| crate::login::site_matches(s, site))
            .map(|s| s.cloud_id.clone())
            .or_else(|| looks_like_cloud_id(site).then(|| site.to_owned()));
        match cloud_id {
            Some(id) => Ok(crate::catalog::expand_api_base(
                &connector.spec.api_base,
                gateway,
                &id,
            )),
            None => Err(GrantError::SiteUnbound {
                connector: connector.name.clone(),
                reason: format!("site `{site}` is not among the sites the sign-in can reach"),
                fix,
            }),
        }
    }

    /// Required scopes a user connector lacks in its grant (empty when fine or not signed in).
    pub fn missing_scopes(
        &self,
        connector: &Connector,
    ) -> Result<Vec<crate::scope::Scope>, GrantError> {
        if connector.auth != AuthMode::User {
            return Ok(Vec::new());
        }
        Ok(match self.facts(&connector.provider)? {
            Some(facts) => connector
                .spec
                .upstream_scopes
                .minus(&facts.granted)
                .iter()
                .cloned()
                .collect(),
            None => Vec::new(),
        })
    }

    pub(crate) fn home_id(&self) -> &str {
        &self.home_id
    }

    pub(crate) fn secrets(&self) -> &Arc<dyn SecretStore> {
        &self.secrets
    }

    /// Signs out of a provider: revokes the refresh token where the provider supports it,
    /// deletes the keychain items and forgets the grant. Returns whether revocation happened.
    pub async fn logout(&self, provider_name: &str) -> Result<LogoutOutcome, GrantError> {
        let provider = self.provider(provider_name)?.clone();
        let rt_key = refresh_token_key(&self.home_id, provider_name);
        let at_key = access_token_key(&self.home_id, provider_name);
        let refresh_token = self.secret(rt_key.clone()).await?;
        let revoked = match (&provider.spec.revoke_url, &refresh_token) {
            (Some(url), Some(token)) => {
                let endpoint = self.endpoint(&provider, None)?;
                let secret = self.client_secret(&provider).await.ok().flatten();
                match oauth::revoke(
                    &self.http,
                    url,
                    &endpoint,
                    secret.as_ref(),
                    token,
                    "refresh_token",
                )
                .await
                {
                    Ok(()) => Revocation::Revoked,
                    Err(err) => Revocation::Failed(err.to_string()),
                }
            }
            (None, Some(_)) => Revocation::Unsupported,
            (_, None) => Revocation::NothingToRevoke,
        };
        let secrets = Arc::clone(&self.secrets);
        let deleted = tokio::task::spawn_blocking(move || -> Result<usize, SecretStoreError> {
            Ok(usize::from(secrets.delete(&rt_key)?) + usize::from(secrets.delete(&at_key)?))
        })
        .await
        .map_err(|e| GrantError::Lock(format!("keychain task failed: {e}")))??;
        let existed = self.db().grant_delete(provider_name)?;
        note_local_write();
        self.forget(provider_name);
        Ok(LogoutOutcome {
            provider: provider_name.to_owned(),
            signed_in: existed,
            revoked,
            keychain_items_deleted: deleted,
        })
    }
}

/// Cloud ids are UUIDs; anything shaped like one may be used without a sign-in's site list.
fn looks_like_cloud_id(text: &str) -> bool {
    text.len() == 36 && text.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
}

/// What `latch logout` did.
#[derive(Debug, serde::Serialize)]
pub struct LogoutOutcome {
    /// Provider.
    pub provider: String,
    /// Whether there was a grant.
    pub signed_in: bool,
    /// What happened at the provider.
    pub revoked: Revocation,
    /// How many keychain items were deleted.
    pub keychain_items_deleted: usize,
}

/// The outcome of revoking at the provider.
#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "result", content = "detail")]
pub enum Revocation {
    /// The provider revoked the token family.
    Revoked,
    /// The provider has no revocation endpoint (Atlassian 3LO): the token dies with disuse.
    Unsupported,
    /// There was no refresh token.
    NothingToRevoke,
    /// Revocation failed; the keychain items were deleted anyway.
    Failed(String),
}

/// Takes the grant's lock file, waiting (bounded) for another process to finish its refresh.
/// The OS releases the lock when the holder dies, so a crashed refresher never blocks others.
fn lock_file(path: &Path) -> Result<File, GrantError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| GrantError::Lock(format!("cannot create {}: {e}", dir.display())))?;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| GrantError::Lock(format!("cannot open {}: {e}", path.display())))?;
    let deadline = Instant::now() + LOCK_TIMEOUT;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(TryLockError::WouldBlock) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(TryLockError::WouldBlock) => {
                return Err(GrantError::Lock(format!(
                    "another Latch process has held {} for over {}s; if none is running, \
                     delete the file",
                    path.display(),
                    LOCK_TIMEOUT.as_secs()
                )))
            }
            Err(TryLockError::Error(e)) => {
                return Err(GrantError::Lock(format!(
                    "cannot lock {}: {e}",
                    path.display()
                )))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(issued: &str, expires: &str) -> GrantRow {
        GrantRow {
            access_issued_at: Some(issued.into()),
            access_expires_at: Some(expires.into()),
            ..GrantRow::default()
        }
    }

    #[test]
    fn margin_is_a_minute_or_half_the_lifetime() {
        let hour = refresh_at(&row("2026-01-01T00:00:00Z", "2026-01-01T01:00:00Z")).unwrap();
        assert_eq!(fmt_time(hour), "2026-01-01T00:59:00Z");
        let short = refresh_at(&row("2026-01-01T00:00:00Z", "2026-01-01T00:00:40Z")).unwrap();
        assert_eq!(fmt_time(short), "2026-01-01T00:00:20Z");
    }

    #[test]
    fn credential_debug_is_redacted_and_headers_are_right() {
        let basic = Credential::Basic {
            user: "me@example.com".into(),
            token: Secret::new("tok".into()),
        };
        assert!(!format!("{basic:?}").contains("tok"));
        assert_eq!(
            basic.authorization().expose(),
            "Basic bWVAZXhhbXBsZS5jb206dG9r"
        );
        let genie = Credential::GenieKey(Secret::new("k".into()));
        assert_eq!(genie.authorization().expose(), "GenieKey k");
    }

    #[test]
    fn lock_file_excludes_a_second_holder() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("locks/g.lock");
        let first = lock_file(&path).unwrap();
        let second = File::open(&path).unwrap();
        assert!(matches!(second.try_lock(), Err(TryLockError::WouldBlock)));
        drop(first);
        assert!(second.try_lock().is_ok());
    }
}

//! The token lifecycle of one home: handing out fresh credentials for connectors, with exactly
//! one refresh per grant in flight across threads and processes.
//!
//! The parts: [`crate::grant::store`] keeps facts (SQLite) and secrets (keychain);
//! [`crate::grant::token_cache`] remembers access tokens while the stored facts say they are good;
//! [`crate::grant::refresh_lock`] serialises refreshes; [`crate::credential`] has one module per
//! credential kind; [`crate::upstream::site`] and [`crate::upstream::base`] say where requests go.
//!
//! The order of a refresh is the contract (DESIGN.md "Token lifecycle", atlassian-wire §1.4):
//! 1. one task per grant in this process, then one process per grant (a lock file);
//! 2. re-read the stored grant after taking the lock, and refresh only if still needed;
//! 3. write the rotated refresh token to the keychain *before* the new access token is used.

pub(crate) mod refresh_lock;
pub mod schedule;
pub(crate) mod store;
pub(crate) mod token_cache;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::clock::Clock;
use crate::config::{Config, Connector};
use crate::credential::{
    self, client_credentials, static_secret, user_grant, CheckResult, CredentialCheck, Ctx,
};
use crate::grant::refresh_lock::RefreshLock;
use crate::grant::store::GrantStore;
use crate::grant::token_cache::{refresh_at, TokenCache};
use crate::net::oauth;
use crate::ports::SecretStore;
use crate::provider::catalog::AuthMode;
use crate::provider::scope::{Scope, ScopeList};
use crate::secret::Secret;
use crate::upstream::base::{api_base, Target};
use crate::upstream::site::Sites;
use latch_store::{GrantRow, Store};

pub use crate::credential::{Credential, CredentialKind};
pub use crate::error::GrantError;
pub use latch_store::{ApiTokenKind, CredentialState, GrantId, GrantKind, GrantState};

/// The grant a connector draws on: its provider's consent, or its own service credential.
/// Connectors with a stored secret draw on none.
pub fn grant_of(connector: &Connector) -> Option<GrantId> {
    match CredentialKind::of(connector.auth) {
        CredentialKind::UserGrant => Some(GrantId::user(&connector.provider)),
        CredentialKind::ClientCredentials => Some(GrantId::service(&connector.name)),
        CredentialKind::Static => None,
    }
}

/// What the proxy needs to send a request upstream.
pub struct Upstream {
    /// The connector's API base, site resolved.
    pub base: String,
    /// The credential to send.
    pub credential: Credential,
    /// The grant it came from (absent for stored secrets): refresh it when the upstream refuses.
    pub grant: Option<GrantId>,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream")
            .field("base", &self.base)
            .field("credential", &self.credential)
            .field("grant", &self.grant)
            .finish()
    }
}

/// What `latch token --json` prints. Holds a secret: it has no `Serialize`; the face builds
/// the JSON and exposes the token there, on purpose.
pub struct TokenDetails {
    /// The connector.
    pub connector: String,
    /// The `Authorization` scheme: `Bearer`, `Basic` or `GenieKey`.
    pub token_type: &'static str,
    /// Exactly what follows the scheme in the header (for `Basic`, `base64(user:secret)`).
    pub token: Secret,
    /// When it expires, when known (an access token's expiry, or a stored credential's).
    pub expires_at: Option<time::OffsetDateTime>,
    /// The granted scopes, for grants.
    pub scopes: Option<ScopeList>,
}

/// The token lifecycle of one home. Cheap to share (`Arc`); every method takes `&self`.
pub struct Grants {
    shared: Arc<Shared>,
    /// Connectors' resolved bases, reused briefly so requests do not resolve sites each time.
    bases: Mutex<HashMap<String, (Instant, String)>>,
    /// Static credentials read from the keychain, kept while the database is unchanged (storing
    /// or removing one writes its connector's row) and for at most [`STATIC_TTL`] (an edit in
    /// the keychain's own UI shows then): a keychain read is a D-Bus round trip.
    statics: Mutex<HashMap<String, StaticEntry>>,
}

struct StaticEntry {
    version: (i64, u64),
    read_at: Instant,
    credential: Credential,
}

/// The longest a static credential read from the keychain is reused.
const STATIC_TTL: Duration = Duration::from_secs(60);

/// What a refresh needs, shared with the task that runs it: a refresh, once sent, outlives the
/// caller that asked for it (DESIGN.md rule 4).
struct Shared {
    config: Arc<Config>,
    store: GrantStore,
    tokens: Arc<TokenCache>,
    lock: RefreshLock,
    http: crate::net::tls::ProviderClients,
}

/// How long a resolved upstream base is reused by [`Grants::upstream`].
const BASE_TTL: Duration = Duration::from_secs(5);

impl Grants {
    pub(crate) fn new(
        home_id: String,
        database: &Path,
        locks_dir: PathBuf,
        config: Arc<Config>,
        store: Arc<Mutex<Store>>,
        secrets: Arc<dyn SecretStore>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let http = config.provider_clients();
        Self {
            shared: Arc::new(Shared {
                store: GrantStore::new(home_id, store, secrets, clock),
                tokens: Arc::new(TokenCache::new(database)),
                lock: RefreshLock::new(locks_dir),
                http,
                config,
            }),
            bases: Mutex::new(HashMap::new()),
            statics: Mutex::new(HashMap::new()),
        }
    }

    /// The outbound HTTP client (no redirects, bounded timeouts).
    pub fn http(&self) -> &reqwest::Client {
        self.shared.http.default_client()
    }

    /// The outbound HTTP client for a provider's endpoints and API (its CA file trusted).
    pub fn http_for(&self, provider: &str) -> &reqwest::Client {
        self.shared.http.for_provider(provider)
    }

    /// The configuration this lifecycle was built from.
    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    pub(crate) fn store(&self) -> &GrantStore {
        &self.shared.store
    }

    fn ctx(&self) -> Ctx<'_> {
        self.shared.ctx()
    }

    pub(crate) fn sites(&self) -> Sites<'_> {
        Sites {
            store: &self.shared.store,
            clients: &self.shared.http,
        }
    }

    fn connector(&self, name: &str) -> Result<&Connector, GrantError> {
        self.shared
            .config
            .connector(name)
            .ok_or_else(|| GrantError::UnknownConnector(name.to_owned()))
    }

    /// For long-running processes (the proxy): a thread notices other processes' commits every
    /// few milliseconds, so requests never touch SQLite while nothing changes.
    pub fn watch_in_background(&self) {
        self.shared.tokens.watch_in_background();
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

    /// A fresh credential for a connector, refreshing when needed.
    pub async fn credential(&self, connector: &str) -> Result<Credential, GrantError> {
        let c = self.connector(connector)?;
        match grant_of(c) {
            Some(grant) => Ok(Credential::Bearer(self.access_token(&grant).await?)),
            None => self.static_credential(c).await,
        }
    }

    /// A static connector's credential, from memory while nothing changed.
    async fn static_credential(&self, connector: &Connector) -> Result<Credential, GrantError> {
        let version = self.shared.tokens.version()?;
        let known = version.0 >= 0;
        if known {
            let statics = self.statics.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(entry) = statics
                .get(&connector.name)
                .filter(|e| e.version == version && e.read_at.elapsed() < STATIC_TTL)
            {
                return Ok(entry.credential.clone());
            }
        }
        let credential = static_secret::read(&self.ctx(), connector).await?;
        if known {
            self.statics
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(
                    connector.name.clone(),
                    StaticEntry {
                        version,
                        read_at: Instant::now(),
                        credential: credential.clone(),
                    },
                );
        }
        Ok(credential)
    }

    /// After the upstream refused a static credential: the keychain's, when it differs from the
    /// refused one (replaced a moment ago, or edited in the keychain's UI); `None` otherwise.
    pub async fn static_after_rejection(
        &self,
        connector: &Connector,
        rejected: &Credential,
    ) -> Option<Credential> {
        self.statics
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&connector.name);
        let now = self.static_credential(connector).await.ok()?;
        (now.authorization().expose() != rejected.authorization().expose()).then_some(now)
    }

    /// A fresh credential with what a script caching it needs (`latch token --json`): the
    /// scheme, the part of the header after it, when it expires and its scopes.
    pub async fn token_details(&self, connector: &str) -> Result<TokenDetails, GrantError> {
        let c = self.connector(connector)?;
        let credential = self.credential(connector).await?;
        let header = credential.authorization();
        let scheme = credential.scheme();
        let value = header
            .expose()
            .strip_prefix(scheme)
            .map(|rest| rest.trim_start().to_owned())
            .unwrap_or_default();
        let (expires_at, scopes) = match grant_of(c) {
            Some(grant) => {
                let row = self.shared.store.row(&grant)?;
                (
                    row.as_ref().and_then(|r| r.access_expires_at),
                    row.and_then(|r| ScopeList::parse(&r.granted_scopes).ok())
                        .filter(|s| !s.is_empty()),
                )
            }
            None => (
                self.shared
                    .store
                    .db()
                    .connector(connector)?
                    .and_then(|r| r.credential_expires_at),
                None,
            ),
        };
        Ok(TokenDetails {
            connector: connector.to_owned(),
            token_type: scheme,
            token: Secret::new(value),
            expires_at,
            scopes,
        })
    }

    /// Where a connector's requests go and what to send.
    pub async fn upstream(&self, connector: &Connector) -> Result<Upstream, GrantError> {
        self.upstream_within(connector, None).await
    }

    /// Like [`Grants::upstream`], waiting at most `wait` for a refresh (the proxy's caller wait):
    /// the one call the proxy makes. A refresh still running when the wait is spent goes on.
    pub async fn upstream_within(
        &self,
        connector: &Connector,
        wait: Option<Duration>,
    ) -> Result<Upstream, GrantError> {
        let cached = self
            .bases
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&connector.name)
            .filter(|(at, _)| at.elapsed() < BASE_TTL)
            .map(|(_, base)| base.clone());
        let base = match cached {
            Some(base) => base,
            None => {
                let base = self.upstream_base(connector).await?;
                self.bases
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(connector.name.clone(), (Instant::now(), base.clone()));
                base
            }
        };
        let credential = match grant_of(connector) {
            Some(grant) => Credential::Bearer(self.access_token_within(&grant, wait).await?),
            None => self.static_credential(connector).await?,
        };
        Ok(Upstream {
            base,
            credential,
            grant: grant_of(connector),
        })
    }

    /// The upstream API base of a connector, its site resolved (learning the cloud id from the
    /// site itself when no sign-in listed it).
    pub async fn upstream_base(&self, connector: &Connector) -> Result<String, GrantError> {
        let provider = self.ctx().provider(&connector.provider)?.clone();
        let mut kind = self.api_token_kind(connector)?;
        if kind.is_none()
            && connector.auth == AuthMode::ApiToken
            && connector.spec.site_api_base.is_some()
        {
            // Not found out when the token was stored (offline then): find out now, once.
            kind = self.detect_api_token_kind(connector).await.ok().flatten();
        }
        api_base(
            &self.sites(),
            connector,
            &provider,
            Target::of(connector, kind),
        )
        .await
    }

    /// Where a connector's API token works: pinned in latch.toml, or as Latch found out.
    pub fn api_token_kind(
        &self,
        connector: &Connector,
    ) -> Result<Option<ApiTokenKind>, GrantError> {
        if connector.auth != AuthMode::ApiToken {
            return Ok(None);
        }
        if let Some(pinned) = connector.token {
            return Ok(Some(pinned));
        }
        Ok(self
            .shared
            .store
            .db()
            .connector(&connector.name)?
            .and_then(|row| row.token_kind))
    }

    /// Probes a connector's stored API token (site URL, then gateway) and remembers where it
    /// works. `Ok(None)`: it worked nowhere.
    pub async fn detect_api_token_kind(
        &self,
        connector: &Connector,
    ) -> Result<Option<ApiTokenKind>, GrantError> {
        let probe = self.probe_api_token(connector).await?;
        Ok(probe.kind)
    }

    pub(crate) async fn probe_api_token(
        &self,
        connector: &Connector,
    ) -> Result<static_secret::TokenProbe, GrantError> {
        let ctx = self.ctx();
        let provider = ctx.provider(&connector.provider)?.clone();
        let Some(secret) = self
            .shared
            .store
            .secret(self.shared.store.connector_secret_key(&connector.name))
            .await?
        else {
            return Err(GrantError::CredentialMissing {
                connector: connector.name.clone(),
                fix: format!("store it: `latch credential set {}`", connector.name),
            });
        };
        let probe = static_secret::probe_token_kind(&ctx, connector, &provider, &secret).await?;
        if let Some(kind) = probe.kind {
            self.shared
                .store
                .db()
                .connector_token_kind(&connector.name, Some(kind))?;
        }
        Ok(probe)
    }

    /// Checks a connector's stored secret against the upstream and records what it found:
    /// an API token on the site URL and the gateway (remembering where it works), any other
    /// secret with the connector's health probe. Never fails: a check that cannot run says so.
    pub async fn check_credential(&self, connector: &Connector) -> CredentialCheck {
        let unchecked = |detail: String| CredentialCheck {
            result: CheckResult::Unchecked,
            detail,
        };
        let provider = match self.ctx().provider(&connector.provider) {
            Ok(p) => p.clone(),
            Err(err) => return unchecked(err.to_string()),
        };
        let profile = provider.rules();
        let outcome: Result<(bool, String), GrantError> = if connector.auth == AuthMode::ApiToken {
            self.probe_api_token(connector).await.map(|probe| {
                let tried = probe
                    .tried
                    .iter()
                    .map(|(kind, what)| {
                        let place = match kind {
                            ApiTokenKind::Classic => "the site URL (classic tokens)",
                            ApiTokenKind::Scoped => "the gateway (scoped tokens)",
                        };
                        format!("{place}: {what}")
                    })
                    .collect::<Vec<_>>()
                    .join("; ");
                match probe.kind {
                    Some(kind) => (
                        true,
                        format!(
                            "the token works on {} ({tried})",
                            match kind {
                                ApiTokenKind::Classic => "the site URL: a classic token",
                                ApiTokenKind::Scoped => "the gateway: a scoped token",
                            }
                        ),
                    ),
                    None => (
                        false,
                        format!(
                            "the token was refused ({tried})\n  fix: check the token and the \
                             e-mail `{}` (a service account's tokens use its own e-mail), and \
                             that a scoped token has the scopes of this product; create a new one \
                             at {}, then `latch credential set {}`",
                            connector.email.as_deref().unwrap_or_default(),
                            profile.api_token_console(),
                            connector.name
                        ),
                    ),
                }
            })
        } else {
            match self.upstream(connector).await {
                Ok(up) => {
                    match static_secret::probe(
                        self.shared.http.for_provider(&connector.provider),
                        connector,
                        &up.base,
                        &up.credential,
                    )
                    .await
                    {
                        Ok(status) if (200..300).contains(&status) => {
                            Ok((true, format!("the health probe answered HTTP {status}")))
                        }
                        Ok(status @ (401 | 403)) => Ok((
                            false,
                            format!(
                            "the health probe answered HTTP {status}\n  fix: check the credential, \
                             then `latch credential set {}`",
                            connector.name
                        ),
                        )),
                        Ok(status) => Err(GrantError::Misconfigured {
                            message: format!("the health probe answered HTTP {status}"),
                            fix: "check the site and the connector's settings".to_owned(),
                        }),
                        Err(why) => Err(GrantError::Misconfigured {
                            message: format!("the upstream is {why}"),
                            fix: "check the network; the credential is stored".to_owned(),
                        }),
                    }
                }
                Err(err) => Err(err),
            }
        };
        match outcome {
            Ok((accepted, detail)) => {
                let state = if accepted {
                    CredentialState::Ok
                } else {
                    CredentialState::Rejected
                };
                let error =
                    (!accepted).then(|| detail.lines().next().unwrap_or_default().to_owned());
                let _ = self.shared.store.db().connector_credential_checked(
                    &connector.name,
                    Some(state),
                    error.as_deref(),
                    self.shared.store.now(),
                );
                store::note_local_write();
                CredentialCheck {
                    result: if accepted {
                        CheckResult::Ok
                    } else {
                        CheckResult::Rejected
                    },
                    detail,
                }
            }
            Err(err) => unchecked(format!("could not check it: {err}")),
        }
    }

    /// A fresh access token for a grant.
    pub async fn access_token(&self, grant: &GrantId) -> Result<Secret, GrantError> {
        self.access_token_within(grant, None).await
    }

    /// A fresh access token, waiting at most `wait` for a refresh to answer.
    pub async fn access_token_within(
        &self,
        grant: &GrantId,
        wait: Option<Duration>,
    ) -> Result<Secret, GrantError> {
        // Fast path: this process's cache, valid while no other process rotated the grant.
        let store = &self.shared.store;
        if let Some(token) = self.shared.tokens.fresh(store, grant, store.now())? {
            return Ok(token);
        }
        self.obtain(grant, None, wait).await
    }

    /// After the upstream refused `rejected` with a 401: refresh, unless another task or
    /// process already replaced that token (then its replacement is returned). At most one
    /// refresh happens however many requests saw the same 401.
    pub async fn access_token_after_rejection(
        &self,
        grant: &GrantId,
        rejected: &Secret,
    ) -> Result<Secret, GrantError> {
        self.access_token_after_rejection_within(grant, rejected, None)
            .await
    }

    /// Like [`Grants::access_token_after_rejection`], waiting at most `wait`.
    pub async fn access_token_after_rejection_within(
        &self,
        grant: &GrantId,
        rejected: &Secret,
        wait: Option<Duration>,
    ) -> Result<Secret, GrantError> {
        self.shared.tokens.forget(grant);
        self.obtain(grant, Some(rejected), wait).await
    }

    /// Marks a grant's access token stale when `presented` is the current one (git saw it
    /// refused): the next request refreshes. The refresh token is never touched. Returns
    /// whether it was the current token.
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

    /// When the grant's current access token was issued (for the proxy's refresh throttle).
    pub fn access_issued_at(
        &self,
        grant: &GrantId,
    ) -> Result<Option<time::OffsetDateTime>, GrantError> {
        Ok(self
            .shared
            .tokens
            .facts(&self.shared.store, grant)?
            .and_then(|facts| facts.issued_at))
    }

    /// The slow path: runs in its own task holding the grant's locks, so that a refresh, once
    /// sent, completes and is stored even when the caller stops waiting (`wait`). A caller whose
    /// wait is spent gets `refresh_failing`; the next caller finds the stored result.
    async fn obtain(
        &self,
        grant: &GrantId,
        rejected: Option<&Secret>,
        wait: Option<Duration>,
    ) -> Result<Secret, GrantError> {
        let shared = Arc::clone(&self.shared);
        let (id, rejected) = (grant.clone(), rejected.cloned());
        // What the grant looked like when this caller asked: a failure recorded after this,
        // while it waited, is its answer too.
        let asked = self
            .shared
            .store
            .row(grant)?
            .map(|r| (r.generation, r.consecutive_failures));
        let work = tokio::spawn(async move { shared.obtain(&id, rejected.as_ref(), asked).await });
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

    /// Refreshes now, whatever the expiry ("Refresh now", doctor, keep-alive). Single-flight and
    /// cross-process rules apply as for any refresh.
    pub async fn refresh_now(&self, grant: &GrantId) -> Result<(), GrantError> {
        let current = self
            .shared
            .store
            .secret(self.shared.store.access_token_key(grant))
            .await?
            .unwrap_or_else(|| Secret::new(String::new()));
        self.access_token_after_rejection(grant, &current)
            .await
            .map(drop)
    }

    /// Refreshes the token a connector draws on now (the desktop app's "Refresh now").
    pub async fn refresh_connector(&self, connector: &str) -> Result<(), GrantError> {
        let c = self.connector(connector)?;
        let Some(grant) = grant_of(c) else {
            return Err(GrantError::Misconfigured {
                message: format!(
                    "connector `{connector}` uses a stored {}; there is no token to refresh",
                    c.auth.as_str()
                ),
                fix: format!("store a new one with `latch credential set {connector}`"),
            });
        };
        self.refresh_now(&grant).await
    }

    /// Starts a service-account grant (client credentials) and fetches its first token.
    pub async fn start_service(&self, connector: &str) -> Result<(), GrantError> {
        let grant = GrantId::service(connector);
        let row = match self.shared.store.row(&grant)? {
            // A new secret: whatever was refused before is forgotten.
            Some(mut row) => {
                row.state = GrantState::Ok;
                row.last_error = None;
                row
            }
            None => GrantRow {
                id: grant.clone(),
                kind: GrantKind::Service,
                state: GrantState::Ok,
                ..GrantRow::default()
            },
        };
        self.shared.store.save(&row)?;
        self.shared.tokens.forget(&grant);
        let flight = self.shared.lock.flight(&grant);
        let _in_process = flight.lock().await;
        let _across_processes = self.shared.lock.across_processes(&grant).await?;
        let (token, row) = client_credentials::request(&self.ctx(), &grant, row).await?;
        self.shared.tokens.remember(&grant, &token, &row);
        Ok(())
    }

    /// Grant ids this home uses (providers with user connectors, service connectors).
    pub fn grant_ids(&self) -> Vec<GrantId> {
        let mut ids: Vec<GrantId> = Vec::new();
        for c in &self.shared.config.connectors {
            if let Some(id) = grant_of(c) {
                if !ids.contains(&id) {
                    ids.push(id);
                }
            }
        }
        ids
    }

    /// A grant's stored facts.
    pub fn row(&self, grant: &GrantId) -> Result<Option<GrantRow>, GrantError> {
        self.shared.store.row(grant)
    }

    /// What a connector's grant holds (`None` before any sign-in, and for stored secrets).
    pub fn granted_scopes(&self, connector: &Connector) -> Result<Option<ScopeList>, GrantError> {
        let Some(grant) = grant_of(connector) else {
            return Ok(None);
        };
        Ok(self
            .shared
            .tokens
            .facts(&self.shared.store, &grant)?
            .map(|facts| facts.granted.clone()))
    }

    /// Required scopes a user connector lacks in its grant (empty when fine or not signed in).
    pub fn missing_scopes(&self, connector: &Connector) -> Result<Vec<Scope>, GrantError> {
        if connector.auth != AuthMode::User {
            return Ok(Vec::new());
        }
        let vocabulary = self.shared.config.rules_of(&connector.provider);
        Ok(match self.granted_scopes(connector)? {
            Some(granted) => vocabulary
                .missing(&connector.spec.upstream_scopes, &granted)
                .iter()
                .cloned()
                .collect(),
            None => Vec::new(),
        })
    }

    /// Signs out of a provider: revokes the refresh token where the provider supports it,
    /// deletes the keychain items and forgets the grant. Returns whether revocation happened.
    pub async fn logout(&self, provider_name: &str) -> Result<LogoutOutcome, GrantError> {
        // Discovery may fail offline; signing out still deletes what is stored.
        let provider = match self.ctx().provider_resolved(provider_name).await {
            Ok(provider) => provider,
            Err(_) => self.ctx().provider(provider_name)?.clone(),
        };
        let grant = GrantId::user(provider_name);
        let rt_key = self.shared.store.refresh_token_key(&grant);
        let at_key = self.shared.store.access_token_key(&grant);
        let refresh_token = self.shared.store.secret(rt_key.clone()).await?;
        let revoked = match (&provider.spec.revoke_url, &refresh_token) {
            (Some(url), Some(token)) => {
                let endpoint = credential::token_endpoint(&provider, None)?;
                let secret = self
                    .shared
                    .store
                    .client_secret(&provider)
                    .await
                    .ok()
                    .flatten();
                match oauth::revoke(
                    self.shared.http.for_provider(&provider.name),
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
        let deleted = self
            .shared
            .store
            .delete_secrets(vec![rt_key, at_key])
            .await?;
        let existed = self.shared.store.db().grant_delete(&grant)?;
        store::note_local_write();
        self.shared.tokens.forget(&grant);
        Ok(LogoutOutcome {
            provider: provider_name.to_owned(),
            signed_in: existed,
            revoked,
            keychain_items_deleted: deleted,
        })
    }
}

/// What `latch logout` did.
#[derive(Debug, serde::Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
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
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
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

impl Shared {
    fn ctx(&self) -> Ctx<'_> {
        Ctx {
            config: &self.config,
            store: &self.store,
            clients: &self.http,
        }
    }

    fn provider_of(&self, grant: &GrantId) -> String {
        match grant.kind() {
            GrantKind::Service => self
                .config
                .connector(grant.owner())
                .map_or_else(|| grant.owner().to_owned(), |c| c.provider.clone()),
            GrantKind::User => grant.owner().to_owned(),
        }
    }

    fn not_signed_in(&self, grant: &GrantId) -> GrantError {
        match grant.kind() {
            GrantKind::Service => GrantError::CredentialMissing {
                connector: grant.owner().to_owned(),
                fix: format!(
                    "store the service account's client secret: `latch credential set {}`",
                    grant.owner()
                ),
            },
            GrantKind::User => GrantError::NotSignedIn {
                grant: grant.to_string(),
                fix: format!("sign in: `latch login {}`", grant.owner()),
            },
        }
    }

    async fn obtain(
        &self,
        grant: &GrantId,
        rejected: Option<&Secret>,
        asked: Option<(i64, i64)>,
    ) -> Result<Secret, GrantError> {
        let flight = self.lock.flight(grant);
        let _in_process = flight.lock().await;
        // Another task of this process may have refreshed while we waited.
        if let Some(token) = self.tokens.fresh(&self.store, grant, self.store.now())? {
            if rejected.is_none_or(|r| r != &token) {
                return Ok(token);
            }
        }
        let _across_processes = self.lock.across_processes(grant).await?;
        // Re-read what is stored now: another process may have refreshed meanwhile.
        let Some(row) = self.store.row(grant)? else {
            return Err(self.not_signed_in(grant));
        };
        match row.state {
            GrantState::NeedsLogin => {
                return Err(GrantError::NeedsLogin {
                    grant: grant.to_string(),
                    provider: self.provider_of(grant),
                    reason: row.last_error.unwrap_or_else(|| {
                        "the provider no longer accepts the refresh token".into()
                    }),
                })
            }
            GrantState::CredentialRejected if rejected.is_none() => {
                // A new secret (`latch credential set`) resets the state; until then, asking
                // again with the refused one only fills the provider's logs.
                if let Some(connector) = self.config.connector(grant.owner()) {
                    let profile = self.ctx().provider(&connector.provider)?.rules();
                    return Err(GrantError::CredentialRejected {
                        connector: connector.name.clone(),
                        reason: row.last_error.unwrap_or_default(),
                        fix: format!(
                            "{}; then store the right secret with `latch credential set {}`",
                            profile.service_account_console(),
                            connector.name
                        ),
                    });
                }
            }
            // A refresh that ended in failure while this caller waited behind it: its outcome is
            // this caller's too. Queued callers must not each send another refresh.
            GrantState::RefreshFailing | GrantState::RefreshUncertain
                if asked.is_some_and(|(generation, failures)| {
                    row.generation == generation && row.consecutive_failures > failures
                }) =>
            {
                let reason = row.last_error.unwrap_or_default();
                return Err(if row.state == GrantState::RefreshUncertain {
                    GrantError::RefreshUncertain {
                        grant: grant.to_string(),
                        provider: self.provider_of(grant),
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
        if refresh_at(&row).is_some_and(|at| self.store.now() < at) {
            if let Some(token) = self
                .store
                .secret(self.store.access_token_key(grant))
                .await?
            {
                if rejected.is_none_or(|r| r != &token) {
                    self.tokens.remember(grant, &token, &row);
                    return Ok(token);
                }
            }
        }
        let (token, row) = match row.kind {
            GrantKind::Service => client_credentials::request(&self.ctx(), grant, row).await?,
            GrantKind::User => user_grant::refresh(&self.ctx(), grant, row).await?,
        };
        self.tokens.remember(grant, &token, &row);
        Ok(token)
    }
}

//! Credential kinds: what a connector sends upstream, and how Latch gets it. One file per kind,
//! each of which authorizes an upstream request:
//! - [`user_grant`]: a person's consent — a rotating refresh-token family (atlassian-wire §1.4);
//! - [`client_credentials`]: a service account's client id and secret — access tokens only;
//! - [`static_secret`]: API tokens, PATs, passwords and API keys stored as they are;
//! - [`connect`], [`connect_user`]: an installed Connect app's per-request JWT, and a user
//!   acted as through it;
//! - [`oauth1`], [`link_user`]: an OAuth 1.0a application link's signature, as the link itself
//!   or with a person's token;
//! - `none`: anonymous calls, nothing added.
//!
//! Kinds that draw on a grant hand the grant machinery ([`crate::grant`]) their [`Mint`]; the
//! [`Credentials`] of a home is what faces and the proxy ask for a connector's credential.

pub(crate) mod client_credentials;
pub mod connect;
pub(crate) mod connect_user;
pub(crate) mod link_user;
pub mod oauth1;
mod refused;
pub mod schedule;
pub(crate) mod static_secret;
pub(crate) mod user_grant;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use base64::Engine as _;

use crate::config::{Connector, Provider};
use crate::error::GrantError;
use crate::grant::{ApiTokenKind, GrantId, GrantKind, Grants, Mint};
use crate::net::oauth::TokenEndpoint;
use crate::provider::catalog::AuthMode;
use crate::provider::scope::{Scope, ScopeList};
use crate::secret::Secret;
use crate::upstream::base::{api_base, Target};
use crate::upstream::site::Sites;
use connect::ConnectApp;

pub use refused::UpstreamRefusal;
pub use static_secret::TokenProbe;
pub use user_grant::{LogoutOutcome, Revocation};

/// An upstream credential, ready to authorize a request.
#[derive(Clone)]
pub enum Credential {
    /// `Bearer <token>` (OAuth access tokens, Data Center PATs).
    Bearer(Secret),
    /// `Basic base64(user:secret)` (Atlassian API tokens with the account e-mail).
    Basic {
        /// The user name (an e-mail for Atlassian API tokens).
        user: String,
        /// The token or password.
        token: Secret,
    },
    /// `GenieKey <key>` (Opsgenie).
    GenieKey(Secret),
    /// An installed Connect app's shared secret: each request gets a JWT of its own.
    ConnectJwt {
        /// The app and the site it is installed on.
        app: ConnectApp,
        /// The shared secret.
        secret: Secret,
    },
    /// An OAuth 1.0a application link: each request gets a signature of its own.
    Link(oauth1::LinkCredential),
    /// Nothing: an anonymous call.
    Anonymous,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Bearer(_) => "Credential::Bearer(<redacted>)",
            Self::Basic { .. } => "Credential::Basic(<redacted>)",
            Self::GenieKey(_) => "Credential::GenieKey(<redacted>)",
            Self::ConnectJwt { .. } => "Credential::ConnectJwt(<redacted>)",
            Self::Link(_) => "Credential::Link(<redacted>)",
            Self::Anonymous => "Credential::Anonymous",
        })
    }
}

/// A credential that cannot go in a header (a stored secret with a line break, say).
#[derive(Debug, thiserror::Error)]
#[error("the stored credential cannot be sent in an HTTP header")]
pub struct Unsendable;

impl Credential {
    /// Authorizes one upstream request, its method and target as sent: most kinds put one
    /// `Authorization` header; a kind that signs each request reads the request to do so (and
    /// the parameters of a form-encoded body, `form`, when it signs those too); a 2-legged link
    /// acting as a user adds that user to the target's query.
    pub fn authorize(
        &self,
        method: &http::Method,
        target: &mut http::Uri,
        headers: &mut http::HeaderMap,
        form: Option<&[u8]>,
    ) -> Result<(), Unsendable> {
        let header = match self {
            Self::Anonymous => return Ok(()),
            Self::ConnectJwt { app, secret } => {
                let now = time::OffsetDateTime::now_utc().unix_timestamp();
                let jwt =
                    app.request_jwt(secret, method.as_str(), target.path(), target.query(), now);
                Secret::new(format!("JWT {}", jwt.expose()))
            }
            Self::Link(link) => {
                *target = link.target(target);
                let params = form.map(oauth1::form_params).unwrap_or_default();
                link.sign(method, target, &params)
            }
            other => other.header().ok_or(Unsendable)?,
        };
        let mut value = http::HeaderValue::from_str(header.expose()).map_err(|_| Unsendable)?;
        value.set_sensitive(true);
        headers.insert(http::header::AUTHORIZATION, value);
        Ok(())
    }

    /// Whether the parameters of a form-encoded body go into its signature (OAuth 1.0a): the
    /// proxy then reads such a body before sending it.
    pub fn signs_form_bodies(&self) -> bool {
        matches!(self, Self::Link(_))
    }

    /// Authorizes a request built with `reqwest` (health probes, credential checks).
    pub fn authorize_reqwest(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::RequestBuilder, Unsendable> {
        let (client, built) = request.build_split();
        let mut built = built.map_err(|_| Unsendable)?;
        let mut target: http::Uri = built.url().as_str().parse().map_err(|_| Unsendable)?;
        let method = built.method().clone();
        self.authorize(&method, &mut target, built.headers_mut(), None)?;
        *built.url_mut() = reqwest::Url::parse(&target.to_string()).map_err(|_| Unsendable)?;
        Ok(reqwest::RequestBuilder::from_parts(client, built))
    }

    /// The `Authorization` value, when it does not depend on the request.
    pub fn header(&self) -> Option<Secret> {
        Some(match self {
            Self::Bearer(token) => Secret::new(format!("Bearer {}", token.expose())),
            Self::Basic { user, token } => {
                let raw = Secret::new(format!("{user}:{}", token.expose()));
                Secret::new(format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(raw.expose())
                ))
            }
            Self::GenieKey(key) => Secret::new(format!("GenieKey {}", key.expose())),
            Self::ConnectJwt { .. } | Self::Link(_) | Self::Anonymous => return None,
        })
    }

    /// The bare secret: a token, a password, a key, a shared secret; `None` for a link signing
    /// as itself and for anonymous calls.
    pub fn token(&self) -> Option<&Secret> {
        match self {
            Self::Bearer(t) | Self::GenieKey(t) => Some(t),
            Self::Basic { token, .. } => Some(token),
            Self::ConnectJwt { secret, .. } => Some(secret),
            Self::Link(link) => link.token.as_ref(),
            Self::Anonymous => None,
        }
    }

    /// The `Authorization` scheme.
    pub fn scheme(&self) -> &'static str {
        match self {
            Self::Bearer(_) => "Bearer",
            Self::Basic { .. } => "Basic",
            Self::GenieKey(_) => "GenieKey",
            Self::ConnectJwt { .. } => "JWT",
            Self::Link(_) => "OAuth",
            Self::Anonymous => "",
        }
    }

    /// Whether two credentials are the same secret in the same form.
    pub fn same_as(&self, other: &Self) -> bool {
        self.scheme() == other.scheme() && self.token() == other.token()
    }
}

/// What the check of a stored credential found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum CheckResult {
    /// The upstream (or token endpoint) accepted it.
    Ok,
    /// It was refused.
    Rejected,
    /// It could not be checked (network, no site yet); it is stored anyway.
    Unchecked,
}

/// A credential check: the result and what it means in plain words.
#[derive(Clone, Debug, serde::Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct CredentialCheck {
    /// Result.
    pub result: CheckResult,
    /// What happened and, when refused, what to do.
    pub detail: String,
    /// `unchecked` because nothing answered (network, TLS, timeout) — not because the set-up
    /// is incomplete (no site yet).
    #[serde(default)]
    pub unreachable: bool,
}

/// How a connector's credential is obtained.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CredentialKind {
    /// A person's consent with a rotating refresh token.
    UserGrant,
    /// A service account's client credentials.
    ClientCredentials,
    /// A secret stored as it is.
    Static,
    /// A Connect app's shared secret, signing each request.
    ConnectJwt,
    /// A user acted as through a Connect app: the JWT bearer grant's tokens.
    ConnectUser,
    /// A person's token on an OAuth 1.0a application link, signed into each request.
    LinkUser,
    /// An OAuth 1.0a application link signing as itself (2-legged).
    LinkConsumer,
    /// No credential.
    Anonymous,
}

impl CredentialKind {
    /// The kind a connector uses: its auth mode, and for `user`, whether its provider is an
    /// OAuth 1.0a link.
    pub fn of(connector: &Connector) -> Self {
        match connector.auth {
            AuthMode::User if connector.oauth1 => Self::LinkUser,
            AuthMode::User => Self::UserGrant,
            AuthMode::Service => Self::ClientCredentials,
            AuthMode::ApiToken | AuthMode::Pat | AuthMode::ApiKey | AuthMode::Basic => Self::Static,
            AuthMode::Connect => Self::ConnectJwt,
            AuthMode::ConnectUser => Self::ConnectUser,
            AuthMode::OAuth1TwoLegged => Self::LinkConsumer,
            AuthMode::None => Self::Anonymous,
        }
    }

    /// Whether it draws on a grant (a token Latch obtains and keeps).
    pub fn is_grant(self) -> bool {
        matches!(
            self,
            Self::UserGrant | Self::ClientCredentials | Self::ConnectUser | Self::LinkUser
        )
    }

    /// Whether its kind reads an upstream 401/403 itself ([`Credentials::explain_refusal`]).
    pub fn explains_refusals(self) -> bool {
        matches!(
            self,
            Self::ConnectJwt | Self::ConnectUser | Self::LinkUser | Self::LinkConsumer
        )
    }

    /// Whether its credential is made for one request (nothing to hand out as a token).
    pub fn bound_to_request(self) -> Option<&'static str> {
        match self {
            Self::ConnectJwt => Some("a JWT made for that request (a Connect app)"),
            Self::LinkUser | Self::LinkConsumer => {
                Some("a signature made for that request (an OAuth 1.0a application link)")
            }
            _ => None,
        }
    }
}

/// The grant a connector draws on: its provider's consent, or its own service credential.
/// Connectors with a stored secret draw on none.
pub fn grant_of(connector: &Connector) -> Option<GrantId> {
    match CredentialKind::of(connector) {
        CredentialKind::UserGrant | CredentialKind::LinkUser => {
            Some(GrantId::user(&connector.provider))
        }
        CredentialKind::ClientCredentials | CredentialKind::ConnectUser => {
            Some(GrantId::service(&connector.name))
        }
        CredentialKind::Static
        | CredentialKind::ConnectJwt
        | CredentialKind::LinkConsumer
        | CredentialKind::Anonymous => None,
    }
}

/// A provider's token endpoint with the client id to present (a service connector's own id,
/// or the provider's 3LO app).
pub(crate) fn token_endpoint(
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
            fix: format!(
                "run `latch provider add {} --client-id ...` with the id of the app from the \
                 developer console",
                provider.name
            ),
        })?;
    Ok(TokenEndpoint {
        url,
        encoding: provider.spec.token_request,
        auth: provider.spec.token_auth,
        client_id,
        resource: provider.spec.authorize_params.get("resource").cloned(),
    })
}

/// A provider with what OpenID discovery fills in (for token requests and sign-in).
pub(crate) async fn provider_resolved(
    ctx: &crate::grant::Ctx<'_>,
    name: &str,
) -> Result<Provider, GrantError> {
    let provider = ctx.provider(name)?;
    crate::upstream::discovery::resolve(ctx.store, ctx.http(name), provider).await
}

/// What the proxy needs to send a request upstream.
pub struct Upstream {
    /// The connector's API base, site resolved.
    pub base: String,
    /// The credential to send.
    pub credential: Credential,
    /// The grant it came from (absent for stored secrets): mint again when the upstream refuses.
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

/// The credentials of a home's connectors, over its grants: what the proxy, `latch token`,
/// the git helper and the doctor ask for. Cheap to share (`Arc`).
pub struct Credentials {
    grants: Arc<Grants>,
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
/// How long a resolved upstream base is reused.
const BASE_TTL: Duration = Duration::from_secs(5);

impl Credentials {
    /// The credentials over `grants`.
    pub fn new(grants: Arc<Grants>) -> Self {
        Self {
            grants,
            bases: Mutex::new(HashMap::new()),
            statics: Mutex::new(HashMap::new()),
        }
    }

    /// The grants they draw on.
    pub fn grants(&self) -> &Arc<Grants> {
        &self.grants
    }

    fn connector(&self, name: &str) -> Result<&Connector, GrantError> {
        self.grants
            .config()
            .connector(name)
            .ok_or_else(|| self.grants.config().unknown_connector_grant(name))
    }

    fn sites(&self) -> Sites<'_> {
        Sites::of(&self.grants)
    }

    /// How a grant's tokens are obtained: a user grant refreshes; a service grant asks the
    /// token endpoint with its connector's credential.
    pub fn mint_for(&self, grant: &GrantId) -> Arc<dyn Mint> {
        match grant.kind() {
            GrantKind::User
                if self
                    .grants
                    .config()
                    .provider(grant.owner())
                    .is_some_and(|p| p.oauth1.is_some()) =>
            {
                Arc::new(link_user::Renew::new(grant.owner()))
            }
            GrantKind::User => Arc::new(user_grant::Refresh::new(grant.owner())),
            GrantKind::Service => {
                let connector = self.grants.config().connector(grant.owner());
                let provider =
                    connector.map_or_else(|| grant.owner().to_owned(), |c| c.provider.clone());
                match connector.map(|c| c.auth) {
                    Some(AuthMode::ConnectUser) => {
                        Arc::new(connect_user::JwtBearer::new(grant.owner(), &provider))
                    }
                    _ => Arc::new(client_credentials::TokenRequest::new(
                        grant.owner(),
                        &provider,
                    )),
                }
            }
        }
    }

    /// A fresh credential for a connector, minting when needed.
    pub async fn credential(&self, connector: &str) -> Result<Credential, GrantError> {
        let c = self.connector(connector)?;
        self.credential_within(c, None).await
    }

    async fn credential_within(
        &self,
        connector: &Connector,
        wait: Option<Duration>,
    ) -> Result<Credential, GrantError> {
        match grant_of(connector) {
            Some(grant) => {
                let mint = self.mint_for(&grant);
                let token = self.grants.access_token(&grant, &mint, wait).await?;
                self.credential_from_grant(connector, token).await
            }
            None => self.static_credential(connector).await,
        }
    }

    /// The credential a grant's token makes: a Bearer token, or a link's signature with it.
    async fn credential_from_grant(
        &self,
        connector: &Connector,
        token: Secret,
    ) -> Result<Credential, GrantError> {
        if CredentialKind::of(connector) != CredentialKind::LinkUser {
            return Ok(Credential::Bearer(token));
        }
        let mut link = self.link(connector).await?;
        link.token = Some(token);
        Ok(Credential::Link(link))
    }

    /// A connector's link credential without a token (its provider's consumer key and private
    /// key), from memory while nothing changed.
    async fn link(&self, connector: &Connector) -> Result<oauth1::LinkCredential, GrantError> {
        match self.static_credential_of(connector, "link").await? {
            Credential::Link(link) => Ok(link),
            _ => Err(GrantError::Lock(
                "a link's key read as something else".to_owned(),
            )),
        }
    }

    /// A static connector's credential, from memory while nothing changed.
    async fn static_credential(&self, connector: &Connector) -> Result<Credential, GrantError> {
        self.static_credential_of(connector, "").await
    }

    async fn static_credential_of(
        &self,
        connector: &Connector,
        slot: &str,
    ) -> Result<Credential, GrantError> {
        let entry_key = format!("{}\u{0}{slot}", connector.name);
        let version = self.grants.version()?;
        let known = version.0 >= 0;
        if known {
            let statics = self.statics.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(entry) = statics
                .get(&entry_key)
                .filter(|e| e.version == version && e.read_at.elapsed() < STATIC_TTL)
            {
                return Ok(entry.credential.clone());
            }
        }
        let credential = match CredentialKind::of(connector) {
            CredentialKind::ConnectJwt => connect::read(&self.grants.ctx(), connector).await?,
            CredentialKind::LinkUser | CredentialKind::LinkConsumer => {
                Credential::Link(link_user::link_of(&self.grants.ctx(), connector).await?)
            }
            CredentialKind::Anonymous => Credential::Anonymous,
            _ => static_secret::read(&self.grants.ctx(), connector).await?,
        };
        if known {
            self.statics
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(
                    entry_key,
                    StaticEntry {
                        version,
                        read_at: Instant::now(),
                        credential: credential.clone(),
                    },
                );
        }
        Ok(credential)
    }

    /// Where a connector's requests go and what to send, waiting at most `wait` for a mint (the
    /// proxy's caller wait): the one call the proxy makes. A mint still running when the wait
    /// is spent goes on.
    pub async fn upstream(
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
        Ok(Upstream {
            base,
            credential: self.credential_within(connector, wait).await?,
            grant: grant_of(connector),
        })
    }

    /// After the upstream refused a request (401): a credential worth one more try, or `None`.
    /// A grant mints a new token (unless another caller already replaced the refused one); a
    /// static credential is re-read from the keychain and returned when it changed (replaced a
    /// moment ago, or edited in the keychain's UI).
    pub async fn after_rejection(
        &self,
        connector: &Connector,
        refused: &Upstream,
        wait: Option<Duration>,
    ) -> Result<Option<Credential>, GrantError> {
        match &refused.grant {
            Some(grant) => {
                let Some(token) = refused.credential.token() else {
                    return Ok(None);
                };
                let mint = self.mint_for(grant);
                let fresh = self
                    .grants
                    .after_rejection(grant, token, &mint, wait)
                    .await?;
                Ok(Some(self.credential_from_grant(connector, fresh).await?))
            }
            None => {
                self.statics
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .retain(|k, _| k.split('\u{0}').next() != Some(connector.name.as_str()));
                let Ok(now) = self.static_credential(connector).await else {
                    return Ok(None);
                };
                Ok((!now.same_as(&refused.credential)).then_some(now))
            }
        }
    }

    /// What `latch token` prints: the bare token, password or key; a credential that signs each
    /// request has nothing to print.
    pub async fn bare_token(&self, connector: &str) -> Result<Secret, GrantError> {
        let c = self.connector(connector)?;
        let kind = CredentialKind::of(c);
        if let Some(what) = kind.bound_to_request() {
            return Err(GrantError::BoundToRequest {
                connector: connector.to_owned(),
                what,
            });
        }
        if kind == CredentialKind::Anonymous {
            return Err(GrantError::Misconfigured {
                message: format!("connector `{connector}` calls anonymously: it has no token"),
                fix: "call it through the proxy, or give it a credential".to_owned(),
            });
        }
        let credential = self.credential(connector).await?;
        credential
            .token()
            .cloned()
            .ok_or_else(|| GrantError::Lock("a credential without a token".to_owned()))
    }

    /// A fresh credential with what a script caching it needs (`latch token --json`): the
    /// scheme, the part of the header after it, when it expires and its scopes.
    pub async fn token_details(&self, connector: &str) -> Result<TokenDetails, GrantError> {
        let c = self.connector(connector)?;
        if let Some(what) = CredentialKind::of(c).bound_to_request() {
            return Err(GrantError::BoundToRequest {
                connector: connector.to_owned(),
                what,
            });
        }
        let credential = self.credential_within(c, None).await?;
        let Some(header) = credential.header() else {
            return Err(GrantError::Misconfigured {
                message: format!("connector `{connector}` calls anonymously: it has no token"),
                fix: "call it through the proxy, or give it a credential".to_owned(),
            });
        };
        let scheme = credential.scheme();
        let value = header
            .expose()
            .strip_prefix(scheme)
            .map(|rest| rest.trim_start().to_owned())
            .unwrap_or_default();
        let (expires_at, scopes) = match grant_of(c) {
            Some(grant) => {
                let row = self.grants.row(&grant)?;
                (
                    row.as_ref().and_then(|r| r.access_expires_at),
                    row.and_then(|r| ScopeList::parse(&r.granted_scopes).ok())
                        .filter(|s| !s.is_empty()),
                )
            }
            None => (
                self.grants
                    .store()
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

    /// The one site a connector's sign-in reached, when the connector names none.
    pub fn only_signed_in_site(&self, connector: &Connector) -> Option<String> {
        self.sites().only_signed_in_site(connector)
    }

    /// The cloud id of a connector's site (learnt from the site itself when no sign-in listed
    /// it).
    pub async fn cloud_id(&self, connector: &Connector) -> Result<String, GrantError> {
        let provider = self.grants.ctx().provider(&connector.provider)?.clone();
        self.sites().cloud_id(connector, &provider).await
    }

    /// The upstream API base of a connector, its site resolved (learning the cloud id from the
    /// site itself when no sign-in listed it).
    pub async fn upstream_base(&self, connector: &Connector) -> Result<String, GrantError> {
        if matches!(connector.auth, AuthMode::Connect | AuthMode::ConnectUser) {
            // The installed app's site, paths as they come (`/wiki` included).
            let (app, _) = connect::stored(&self.grants.ctx(), connector).await?;
            return Ok(app.api_base(&connector.spec.site_paths));
        }
        let provider = self.grants.ctx().provider(&connector.provider)?.clone();
        let mut kind = self.api_token_kind(connector)?;
        if kind.is_none()
            && connector.auth == AuthMode::ApiToken
            && connector.spec.site_api_base.is_some()
        {
            // Not found out when the token was stored (offline then): find out now, once.
            kind = self
                .probe_api_token(connector)
                .await
                .ok()
                .and_then(|p| p.kind);
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
            .grants
            .store()
            .db()
            .connector(&connector.name)?
            .and_then(|row| row.token_kind))
    }

    /// Probes a connector's stored API token (site URL, then gateway) and remembers where it
    /// works.
    pub async fn probe_api_token(&self, connector: &Connector) -> Result<TokenProbe, GrantError> {
        let ctx = self.grants.ctx();
        let provider = ctx.provider(&connector.provider)?.clone();
        let store = self.grants.store();
        let Some(secret) = store
            .secret(store.connector_secret_key(&connector.name))
            .await?
        else {
            return Err(GrantError::CredentialMissing {
                connector: connector.name.clone(),
                fix: format!("store it: `latch credential set {}`", connector.name),
            });
        };
        let probe = static_secret::probe_token_kind(&ctx, connector, &provider, &secret).await?;
        if let Some(kind) = probe.kind {
            store
                .db()
                .connector_token_kind(&connector.name, Some(kind))?;
        }
        Ok(probe)
    }

    /// Checks a connector's stored secret against the upstream and records what it found.
    /// Never fails: a check that cannot run says so.
    pub async fn check(&self, connector: &Connector) -> CredentialCheck {
        static_secret::check(self, connector).await
    }

    /// Mints a new token for the grant a connector draws on now (the app's "Refresh now").
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
        self.refresh_grant(&grant).await
    }

    /// Mints a new token for a grant now (doctor, keep-alive), unless another caller just did.
    pub async fn refresh_grant(&self, grant: &GrantId) -> Result<(), GrantError> {
        let mint = self.mint_for(grant);
        self.grants.refresh_now(grant, &mint).await
    }

    /// Starts a grant of a connector's own (a service account's client credentials, a Connect
    /// app acting as its user) and fetches its first token.
    pub async fn start_service(&self, connector: &str) -> Result<(), GrantError> {
        let grant = GrantId::service(connector);
        let mint = self.mint_for(&grant);
        self.grants.restart(&grant, GrantKind::Service, &mint).await
    }

    /// Grant ids this home uses (providers with user connectors, service connectors).
    pub fn grant_ids(&self) -> Vec<GrantId> {
        let mut ids: Vec<GrantId> = Vec::new();
        for c in &self.grants.config().connectors {
            if let Some(id) = grant_of(c) {
                if !ids.contains(&id) {
                    ids.push(id);
                }
            }
        }
        ids
    }

    /// Required scopes a user connector lacks in its grant (empty when fine or not signed in).
    pub fn missing_scopes(&self, connector: &Connector) -> Result<Vec<Scope>, GrantError> {
        let Some(grant) = grant_of(connector).filter(|_| connector.auth == AuthMode::User) else {
            return Ok(Vec::new());
        };
        let vocabulary = self.grants.config().rules_of(&connector.provider);
        Ok(match self.grants.granted(&grant)? {
            Some(granted) => vocabulary
                .missing(&connector.spec.upstream_scopes, &granted)
                .iter()
                .cloned()
                .collect(),
            None => Vec::new(),
        })
    }

    /// Signs out of a provider: revokes the refresh token where the provider supports it,
    /// deletes the keychain items and forgets the grant.
    pub async fn logout(&self, provider: &str) -> Result<LogoutOutcome, GrantError> {
        user_grant::logout(&self.grants, provider).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_debug_is_redacted_and_headers_are_right() {
        let basic = Credential::Basic {
            user: "me@example.com".into(),
            token: Secret::new("tok".into()),
        };
        assert!(!format!("{basic:?}").contains("tok"));
        assert_eq!(
            basic.header().unwrap().expose(),
            "Basic bWVAZXhhbXBsZS5jb206dG9r"
        );
        let genie = Credential::GenieKey(Secret::new("k".into()));
        assert_eq!(genie.header().unwrap().expose(), "GenieKey k");
        assert_eq!(genie.scheme(), "GenieKey");
        let mut headers = http::HeaderMap::new();
        genie
            .authorize(
                &http::Method::GET,
                &mut "https://api.opsgenie.com/v2/alerts".parse().unwrap(),
                &mut headers,
                None,
            )
            .unwrap();
        assert_eq!(headers[http::header::AUTHORIZATION], "GenieKey k");
        assert!(headers[http::header::AUTHORIZATION].is_sensitive());
    }
}

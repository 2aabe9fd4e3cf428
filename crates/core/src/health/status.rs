//! The status model: per provider and per connector, what is configured, requested, granted
//! and wrong. Serialized as `latch status --json` (schema `latch.status/v1`, documented in the
//! README); field names are a contract.

use serde::Serialize;

use crate::ports::KeychainState;

use crate::config::Config;
use crate::config::ScopeSet;
use crate::credential::connect::ConnectApp;
use crate::credential::{grant_of, CredentialKind};
use crate::finding::{Finding, Severity};
use crate::grant::{GrantKind, GrantState};
use crate::provider::catalog::{AuthMode, ClientType};
use crate::provider::scope::{RequestedScope, Scope, ScopeDiff, ScopeList};
use latch_store::{ApiTokenKind, CredentialState, GrantId};

/// The JSON schema name and version of [`StatusReport`].
pub const STATUS_SCHEMA: &str = "latch.status/v1";

/// A connector's state, worst-first in the order people must act on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum ConnectorState {
    /// The configuration is wrong; nothing will work until it is fixed.
    Misconfigured,
    /// The OS keychain is locked: no credential can be read until it is unlocked.
    KeychainLocked,
    /// No OS keychain is reachable.
    KeychainUnavailable,
    /// The token family is dead (`invalid_grant`); sign in again.
    NeedsLogin,
    /// The identity provider or upstream refuses the connector's own credential.
    CredentialRejected,
    /// The connector's own credential is past the expiry the person recorded.
    Expired,
    /// Refreshing fails (token endpoint down); Latch retries.
    RefreshFailing,
    /// A refresh got no answer and could not be resent safely; the next refresh tells.
    RefreshUncertain,
    /// Required scopes are not granted; sign in again to consent to them.
    NeedsStepUp,
    /// Signed in, but no site is bound.
    SiteUnbound,
    /// No credential stored for a connector that does not sign in as the person.
    CredentialMissing,
    /// Never signed in.
    NotSignedIn,
    /// Ready.
    Ok,
}

impl ConnectorState {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Misconfigured => "misconfigured",
            Self::KeychainLocked => "keychain_locked",
            Self::KeychainUnavailable => "keychain_unavailable",
            Self::NeedsLogin => "needs_login",
            Self::CredentialRejected => "credential_rejected",
            Self::Expired => "expired",
            Self::RefreshFailing => "refresh_failing",
            Self::RefreshUncertain => "refresh_uncertain",
            Self::NeedsStepUp => "needs_step_up",
            Self::SiteUnbound => "site_unbound",
            Self::CredentialMissing => "credential_missing",
            Self::NotSignedIn => "not_signed_in",
            Self::Ok => "ok",
        }
    }
}

/// Whether a provider's client secret is in the keychain (a fact recorded in SQLite when it
/// was written; the keychain itself is not touched by `status`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum ClientSecretState {
    /// Missing although the provider requires one.
    Missing,
    /// Public client, no OAuth, or no connector signs in through the provider's app.
    NotNeeded,
    /// Stored.
    Stored,
}

/// `latch status --json`.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct StatusReport {
    /// Always [`STATUS_SCHEMA`].
    pub schema: &'static str,
    /// Where this installation keeps its files.
    pub home: HomeStatus,
    /// Providers in configuration order.
    pub providers: Vec<ProviderStatus>,
    /// Connectors in configuration order.
    pub connectors: Vec<ConnectorStatus>,
}

/// Where an installation keeps its files.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct HomeStatus {
    /// Prefix of every keychain item of this installation.
    pub id: String,
    /// latch.toml.
    pub config_file: String,
    /// The SQLite database.
    pub database: String,
    /// Where secrets live: the OS keychain, or an encrypted file (`[keychain] store`).
    pub secret_store: String,
    /// Whether it can be read now: `open`, `locked`, `unreachable` (or `unknown`).
    pub keychain: KeychainState,
    /// Who serves this home's proxy and refresh scheduler, when something does.
    pub serving: Option<crate::app::serving::Serving>,
}

/// One provider.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ProviderStatus {
    /// Name.
    pub name: String,
    /// Catalog preset.
    pub preset: String,
    /// Human name.
    pub display_name: String,
    /// Client type.
    pub client_type: ClientType,
    /// OAuth client id (public).
    pub client_id: Option<String>,
    /// Client secret presence.
    pub client_secret: ClientSecretState,
    /// Whether any connector signs in as the person through this provider's OAuth app (only
    /// then are its client id and secret needed).
    pub app_needed: bool,
    /// The callback to register, byte for byte.
    pub redirect_uri: Option<String>,
    /// The union of its connectors' scopes, in request order, with attribution.
    pub requested_scopes: Vec<RequestedScope>,
    /// The `scope=` value `latch login` sends.
    pub requested_scope_string: String,
    /// Grant facts, when signed in.
    pub grant: Option<GrantStatus>,
    /// The sites the grant reaches (one per cloud id), for choosing a connector's site.
    pub sites: Vec<SiteStatus>,
    /// Problems and fixes.
    pub findings: Vec<Finding>,
    /// An OAuth 1.0a application link: its consumer key and which key it must have.
    pub link: Option<LinkStatus>,
    /// The client certificate presented to this provider (mTLS), if any.
    pub client_cert: Option<ClientCertStatus>,
}

/// A provider's client certificate, as the status shows it (its key stays in the keychain).
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ClientCertStatus {
    /// The certificate file latch.toml names.
    pub path: String,
    /// Its subject.
    pub subject: String,
    /// When it ends.
    #[serde(with = "crate::clock::stamp")]
    #[cfg_attr(feature = "ts", ts(type = "string"))]
    pub not_after: time::OffsetDateTime,
}

/// An OAuth 1.0a application link, as the status shows it (never its private key).
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct LinkStatus {
    /// The consumer key of the link's incoming authentication.
    pub consumer_key: String,
    /// The fingerprint of the public key the link must have (`SHA256:…`), when the private
    /// key is stored; `latch provider public-key NAME` prints the key itself.
    pub public_key_fingerprint: Option<String>,
}

/// A site a grant reaches.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct SiteStatus {
    /// Site name (what `latch connector site` and the site field accept).
    pub name: String,
    /// Site URL.
    pub url: String,
}

impl SiteStatus {
    /// One entry per site: the accessible-resources list repeats a site once per product.
    pub fn distinct(rows: Vec<latch_store::SiteRow>) -> Vec<Self> {
        let mut seen = std::collections::HashSet::new();
        rows.into_iter()
            .filter(|r| seen.insert(r.cloud_id.clone()))
            .map(|r| Self {
                name: r.name,
                url: r.url,
            })
            .collect()
    }
}

/// What a grant holds (never the tokens).
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct GrantStatus {
    /// Grant state.
    pub state: GrantState,
    /// Account id.
    pub account_id: Option<String>,
    /// Account name.
    pub account_name: Option<String>,
    /// Account e-mail.
    pub account_email: Option<String>,
    /// Granted scopes.
    pub granted_scopes: Vec<Scope>,
    /// A person's consent (`user`) or a service account's credential (`service`).
    pub kind: GrantKind,
    /// Access-token expiry.
    #[serde(with = "crate::clock::stamp::option")]
    #[cfg_attr(feature = "ts", ts(type = "string | null"))]
    pub access_expires_at: Option<time::OffsetDateTime>,
    /// When the person consented (the last sign-in).
    #[serde(with = "crate::clock::stamp::option")]
    #[cfg_attr(feature = "ts", ts(type = "string | null"))]
    pub obtained_at: Option<time::OffsetDateTime>,
    /// Last successful refresh.
    #[serde(with = "crate::clock::stamp::option")]
    #[cfg_attr(feature = "ts", ts(type = "string | null"))]
    pub refreshed_at: Option<time::OffsetDateTime>,
    /// Rotation counter.
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub generation: i64,
    /// Last error.
    pub last_error: Option<String>,
}

impl GrantStatus {
    /// The secret-free facts of a stored grant.
    pub fn from_row(row: latch_store::GrantRow) -> Self {
        Self {
            state: row.state,
            kind: row.kind,
            account_id: row.account_id,
            account_name: row.account_name,
            account_email: row.account_email,
            granted_scopes: ScopeList::parse(&row.granted_scopes)
                .unwrap_or_default()
                .iter()
                .cloned()
                .collect(),
            access_expires_at: row.access_expires_at,
            obtained_at: row.obtained_at,
            refreshed_at: row.refreshed_at,
            generation: row.generation,
            last_error: row.last_error,
        }
    }
}

/// One connector.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ConnectorStatus {
    /// Name (the proxy route).
    pub name: String,
    /// Catalog entry.
    #[serde(rename = "type")]
    pub kind: String,
    /// Human name.
    pub display_name: String,
    /// Provider name.
    pub provider: String,
    /// Auth mode.
    pub auth: AuthMode,
    /// State.
    pub state: ConnectorState,
    /// Bound site, as configured.
    pub site: Option<String>,
    /// Scope comparison.
    pub scopes: ConnectorScopes,
    /// The grant it draws on (its provider's sign-in, or its own service account), if any.
    pub grant: Option<GrantStatus>,
    /// The connector's own credential (service secret, API token, PAT, API key), if it has one.
    pub credential: Option<CredentialStatus>,
    /// Problems and fixes.
    pub findings: Vec<Finding>,
    /// Something that is fine now and will not be soon (`expiring`), when there is; the state
    /// stays what it is until then.
    pub attention: Option<ConnectorAttention>,
    /// A Data Center connector's instance (its provider's base URL): what a site is on Cloud.
    pub base_url: Option<String>,
}

/// Within this many days of its end, a credential is `expiring` (the doctor warns then too).
pub const EXPIRY_WARN_DAYS: i64 = 14;

/// What will need the person soon.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ConnectorAttention {
    /// `expiring`.
    pub code: String,
    /// When.
    #[serde(with = "crate::clock::stamp")]
    #[cfg_attr(feature = "ts", ts(type = "string"))]
    pub at: time::OffsetDateTime,
    /// Whole days left.
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub days_left: i64,
    /// In plain words, with what to do.
    pub message: String,
}

/// A connector's own credential: facts only, never the secret.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct CredentialStatus {
    /// `grant` (OAuth tokens Latch obtains) or `stored` (a secret sent as it is).
    pub kind: CredentialStorage,
    /// When it was stored in the keychain.
    #[serde(with = "crate::clock::stamp::option")]
    #[cfg_attr(feature = "ts", ts(type = "string | null"))]
    pub stored_at: Option<time::OffsetDateTime>,
    /// Its expiry, when the person recorded one (`latch credential set --expires`).
    #[serde(with = "crate::clock::stamp::option")]
    #[cfg_attr(feature = "ts", ts(type = "string | null"))]
    pub expires_at: Option<time::OffsetDateTime>,
    /// For API tokens: `scoped` (gateway) or `classic` (site URL), pinned or found out.
    pub token_kind: Option<ApiTokenKind>,
    /// Whether `token_kind` was pinned in latch.toml.
    pub token_kind_pinned: bool,
    /// The last check against the upstream: `ok` or `rejected`.
    pub last_check: Option<CredentialState>,
    /// When it ran.
    #[serde(with = "crate::clock::stamp::option")]
    #[cfg_attr(feature = "ts", ts(type = "string | null"))]
    pub checked_at: Option<time::OffsetDateTime>,
    /// Why it was refused.
    pub last_error: Option<String>,
    /// Which scope set the connector requests (`classic` or `granular`).
    pub scope_set: ScopeSet,
    /// For a Connect app: which app, on which site, acting as whom.
    pub connect: Option<ConnectStatus>,
    /// What the credential carries: OAuth scopes, or whose permissions (a PAT has no scopes).
    pub carries: Carries,
}

/// What a connector's own credential may do, as far as Latch knows.
#[derive(Clone, Debug, Default, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Carries {
    /// Its scopes, when it has scopes Latch knows (a service account's granted ones).
    pub scopes: Vec<Scope>,
    /// Otherwise, in words: "all of jbot's permissions", "the scopes chosen when the token was
    /// created".
    pub permissions: Option<String>,
}

/// An installed Connect app, as the status shows it (never its shared secret).
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ConnectStatus {
    /// The app's key.
    pub app_key: String,
    /// The site it is installed on (`/wiki` for Confluence).
    pub base_url: String,
    /// `connect-user`: the account it acts as.
    pub acts_as: Option<String>,
}

/// What a connector's own credential may do: its scopes when Latch knows them, else whose
/// permissions it acts with.
fn carries(
    c: &crate::config::Connector,
    kind: CredentialKind,
    grant: Option<&latch_store::GrantRow>,
    token_kind: Option<ApiTokenKind>,
) -> Carries {
    let words = |text: String| Carries {
        scopes: Vec::new(),
        permissions: Some(text),
    };
    let user = c.username.as_deref().or(c.email.as_deref());
    let someone = |who: Option<&str>| match who {
        Some(who) => format!("all of {who}'s permissions"),
        None => "all of its user's permissions".to_owned(),
    };
    match (kind, c.auth) {
        (CredentialKind::ClientCredentials, _) => {
            let granted = grant
                .and_then(|g| ScopeList::parse(&g.granted_scopes).ok())
                .filter(|s| !s.is_empty())
                .or_else(|| c.scopes.clone());
            match granted {
                Some(scopes) => Carries {
                    scopes: scopes.iter().cloned().collect(),
                    permissions: None,
                },
                None => words("the scopes chosen for the credential where it was created".into()),
            }
        }
        (CredentialKind::ConnectUser, _) => match &c.scopes {
            Some(scopes) => Carries {
                scopes: scopes.iter().cloned().collect(),
                permissions: None,
            },
            None => words("the app descriptor's scopes, as the account it acts as".into()),
        },
        (CredentialKind::ConnectJwt, _) => words("the app descriptor's scopes".into()),
        (_, AuthMode::ApiToken) if token_kind == Some(ApiTokenKind::Scoped) => {
            words("the scopes chosen when the token was created".into())
        }
        (_, AuthMode::ApiToken | AuthMode::Pat | AuthMode::Basic) => words(someone(user)),
        (_, AuthMode::ApiKey) => words("the API key's own permissions".into()),
        (CredentialKind::LinkConsumer, _) => match c.username.as_deref() {
            Some(who) => words(format!("all of {who}'s permissions (impersonated)")),
            None => words("the permissions of the link's \"execute as\" user".into()),
        },
        (CredentialKind::Anonymous, _) => words("what the instance shows without a sign-in".into()),
        _ => Carries::default(),
    }
}

/// How a connector's own credential is kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum CredentialStorage {
    /// OAuth tokens Latch obtains with it (a service account).
    Grant,
    /// A secret sent as it is (API token, PAT, password, API key).
    Stored,
    /// Signed with its provider's OAuth 1.0a link key (2-legged).
    Link,
    /// Nothing: anonymous calls.
    Anonymous,
}

/// A connector's scopes.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ConnectorScopes {
    /// What the connector needs.
    pub required: Vec<Scope>,
    /// Its required scopes as its provider requests them, with who asked for each.
    pub requested: Vec<RequestedScope>,
    /// What the grant holds; `null` before login.
    pub granted: Option<Vec<Scope>>,
    /// Required but not granted.
    pub missing: Vec<Scope>,
    /// Granted but requested by no connector (least privilege).
    pub extra: Vec<Scope>,
    /// How to get the missing scopes, when some are missing (sign in again; for a Bitbucket
    /// OAuth consumer, tick its permissions first: it decides what is granted).
    pub fix: Option<String>,
}

/// What a status is read from: latch.toml and SQLite, nothing else.
pub struct StatusSource<'a> {
    /// The configuration.
    pub config: &'a Config,
    /// The metadata database.
    pub db: &'a latch_store::Store,
    /// Where the home keeps its files.
    pub home: HomeStatus,
    /// The time to judge expiries by.
    pub now: time::OffsetDateTime,
}

/// The status of every provider and connector. Reads latch.toml and SQLite only: it never
/// touches the keychain or the network, so it works when both are down.
pub fn build(source: StatusSource<'_>) -> Result<StatusReport, latch_store::StoreError> {
    let StatusSource {
        config,
        db,
        home,
        now,
    } = source;
    let provider_rows = db.providers()?;
    let connector_rows = db.connectors()?;
    let mut providers = Vec::new();
    let mut all_findings: Vec<Finding> = Vec::new();
    // A locked or missing keychain stops every connector that has a secret, whatever SQLite
    // says: one finding, on each of them.
    let keychain_finding = match home.keychain {
        KeychainState::Locked => Some(Finding::new(
            "keychain_locked",
            Severity::Error,
            "keychain".to_owned(),
            "the OS keychain is locked: no connector can read its credential until it is \
             unlocked (nothing stored is lost)"
                .to_owned(),
            "run `latch keychain unlock` (it asks for the keychain's password), or unlock it \
             in your keychain app",
        )),
        KeychainState::Unreachable => Some(Finding::new(
            "keychain_unreachable",
            Severity::Error,
            "keychain".to_owned(),
            "no OS keychain is reachable: no connector can read its credential".to_owned(),
            "start the Secret Service of your session (gnome-keyring), or see `latch doctor`",
        )),
        KeychainState::Open | KeychainState::Unknown => None,
    };
    for p in &config.providers {
        let request = config.scope_request(&p.name);
        let grant_id = GrantId::user(&p.name);
        let grant = db.grant(&grant_id)?;
        let app_needed = config
            .connectors_of(&p.name)
            .any(|c| c.auth == AuthMode::User)
            && p.spec.client_type != ClientType::None;
        let link_key = provider_rows
            .iter()
            .find(|r| r.name == p.name)
            .and_then(|r| r.link_fingerprint.clone());
        let client_secret = match p.spec.client_type {
            // An OAuth 1.0a link has a key pair, not a client secret.
            _ if p.oauth1.is_some() => ClientSecretState::NotNeeded,
            ClientType::Confidential if app_needed => {
                let stored = provider_rows
                    .iter()
                    .any(|r| r.name == p.name && r.client_secret_stored_at.is_some());
                if stored {
                    ClientSecretState::Stored
                } else {
                    ClientSecretState::Missing
                }
            }
            _ => ClientSecretState::NotNeeded,
        };
        let mut findings = config.provider_findings(&p.name);
        if client_secret == ClientSecretState::Missing {
            findings.push(Finding::new(
                "client_secret_missing",
                Severity::Error,
                format!("provider:{}", p.name),
                format!(
                    "provider `{}` is a confidential client but its client secret is not in the \
                     keychain",
                    p.name
                ),
                "run `latch provider secret NAME` and paste the secret from the developer console",
            ));
        }
        if p.oauth1.is_some() && link_key.is_none() {
            findings.push(Finding::new(
                "link_key_missing",
                Severity::Error,
                format!("provider:{}", p.name),
                format!(
                    "provider `{}` is an OAuth 1.0a application link but its private key is not \
                     in the keychain",
                    p.name
                ),
                &format!(
                    "run `latch provider add {} --oauth1 --consumer-key KEY --base-url URL` (or \
                     with `--private-key FILE`), then paste `latch provider public-key {}` into \
                     the link",
                    p.name, p.name
                ),
            ));
        }
        all_findings.extend(findings.iter().cloned());
        providers.push(ProviderStatus {
            link: p.oauth1.as_ref().map(|l| LinkStatus {
                consumer_key: l.consumer_key.clone(),
                public_key_fingerprint: link_key.clone(),
            }),
            client_cert: p.client_cert.as_ref().map(|cert| ClientCertStatus {
                path: cert.path.display().to_string(),
                subject: cert.subject.clone(),
                not_after: cert.not_after,
            }),
            name: p.name.clone(),
            preset: p.preset.clone(),
            display_name: p.spec.display_name.clone(),
            client_type: p.spec.client_type,
            client_id: p.client_id.clone(),
            client_secret,
            app_needed,
            redirect_uri: p.redirect_uri.clone(),
            requested_scope_string: request.scopes().to_string(),
            requested_scopes: request.entries().to_vec(),
            grant: grant.map(GrantStatus::from_row),
            sites: SiteStatus::distinct(db.sites(&grant_id)?),
            findings,
        });
    }

    let mut connectors = Vec::new();
    for c in &config.connectors {
        let request = config.scope_request(&c.provider);
        let provider = providers.iter().find(|p| p.name == c.provider);
        let kind = CredentialKind::of(c);
        let grant_row = match grant_of(c) {
            Some(id) => db.grant(&id)?,
            None => None,
        };
        let granted = match (&grant_row, c.auth) {
            (Some(row), AuthMode::User) => {
                Some(ScopeList::parse(&row.granted_scopes).unwrap_or_default())
            }
            _ => None,
        };
        let requested_list = request.scopes();
        let vocabulary = config.rules_of(&c.provider);
        let diff = ScopeDiff::compute(
            vocabulary,
            &c.spec.upstream_scopes,
            &requested_list,
            granted.as_ref(),
        );
        let subject = format!("connector:{}", c.name);
        // A provider's problems (its app, its secret) matter to the connectors that use its app.
        let provider_subject = format!("provider:{}", c.provider);
        let findings: Vec<Finding> = all_findings
            .iter()
            .filter(|f| {
                f.subject == subject
                    || (f.subject == provider_subject
                        && (c.auth == AuthMode::User || kind == CredentialKind::LinkConsumer))
            })
            .cloned()
            .collect();
        let row = connector_rows.iter().find(|r| r.name == c.name);
        let stored = row.is_some_and(|r| r.credential_stored_at.is_some());
        // A Connect app's site is its installed payload's.
        let connect = matches!(
            kind,
            CredentialKind::ConnectJwt | CredentialKind::ConnectUser
        );
        let needs_site = c.spec.needs_site() && c.site.is_none() && !connect;
        let state = if findings.iter().any(|f| f.severity == Severity::Error) {
            ConnectorState::Misconfigured
        } else {
            match kind {
                CredentialKind::UserGrant | CredentialKind::LinkUser => match grant_row
                    .as_ref()
                    .map(|g| g.state)
                {
                    None => ConnectorState::NotSignedIn,
                    Some(GrantState::NeedsLogin) => ConnectorState::NeedsLogin,
                    Some(GrantState::RefreshFailing) => ConnectorState::RefreshFailing,
                    Some(GrantState::RefreshUncertain) => ConnectorState::RefreshUncertain,
                    Some(GrantState::CredentialRejected) => ConnectorState::CredentialRejected,
                    Some(GrantState::Ok) if !diff.missing.is_empty() => ConnectorState::NeedsStepUp,
                    Some(GrantState::Ok) if needs_site => ConnectorState::SiteUnbound,
                    Some(GrantState::Ok) => ConnectorState::Ok,
                },
                CredentialKind::ClientCredentials | CredentialKind::ConnectUser => {
                    match grant_row.as_ref().map(|g| g.state) {
                        _ if !stored => ConnectorState::CredentialMissing,
                        None => ConnectorState::CredentialMissing,
                        Some(GrantState::CredentialRejected | GrantState::NeedsLogin) => {
                            ConnectorState::CredentialRejected
                        }
                        Some(GrantState::RefreshFailing) => ConnectorState::RefreshFailing,
                        Some(GrantState::RefreshUncertain) => ConnectorState::RefreshUncertain,
                        Some(GrantState::Ok) if needs_site => ConnectorState::SiteUnbound,
                        Some(GrantState::Ok) => ConnectorState::Ok,
                    }
                }
                // Its provider's link key: a finding above says when it is missing.
                CredentialKind::LinkConsumer | CredentialKind::Anonymous => ConnectorState::Ok,
                CredentialKind::Static | CredentialKind::ConnectJwt => {
                    let row = row.filter(|_| stored);
                    match row {
                        None => ConnectorState::CredentialMissing,
                        Some(r) if r.credential_state == Some(CredentialState::Rejected) => {
                            ConnectorState::CredentialRejected
                        }
                        Some(r) if r.credential_expires_at.is_some_and(|e| e <= now) => {
                            ConnectorState::Expired
                        }
                        Some(_) if needs_site => ConnectorState::SiteUnbound,
                        Some(_) => ConnectorState::Ok,
                    }
                }
            }
        };
        let needs_keychain = kind != CredentialKind::Anonymous;
        let (state, findings) = match (&keychain_finding, home.keychain) {
            (Some(f), keychain) if needs_keychain && state != ConnectorState::Misconfigured => {
                let mut findings = findings;
                findings.push(f.clone());
                let state = if keychain == KeychainState::Locked {
                    ConnectorState::KeychainLocked
                } else {
                    ConnectorState::KeychainUnavailable
                };
                (state, findings)
            }
            _ => (state, findings),
        };
        let credential = match kind {
            CredentialKind::UserGrant | CredentialKind::LinkUser => None,
            _ => Some(CredentialStatus {
                kind: match kind {
                    CredentialKind::Static | CredentialKind::ConnectJwt => {
                        CredentialStorage::Stored
                    }
                    CredentialKind::LinkConsumer => CredentialStorage::Link,
                    CredentialKind::Anonymous => CredentialStorage::Anonymous,
                    _ => CredentialStorage::Grant,
                },
                stored_at: row.and_then(|r| r.credential_stored_at),
                expires_at: row.and_then(|r| r.credential_expires_at),
                token_kind: c
                    .token
                    .or_else(|| row.and_then(|r| r.token_kind))
                    .filter(|_| c.auth == AuthMode::ApiToken),
                token_kind_pinned: c.token.is_some(),
                last_check: row.and_then(|r| r.credential_state),
                checked_at: row.and_then(|r| r.credential_checked_at),
                last_error: row.and_then(|r| r.credential_error.clone()),
                scope_set: c.scope_set,
                connect: connect
                    .then(|| row.and_then(|r| r.connect.as_deref()))
                    .flatten()
                    .and_then(|json| serde_json::from_str::<ConnectApp>(json).ok())
                    .map(|app| ConnectStatus {
                        app_key: app.key,
                        base_url: app.base_url,
                        acts_as: c.account_id.clone(),
                    }),
                carries: carries(c, kind, grant_row.as_ref(), row.and_then(|r| r.token_kind)),
            }),
        };
        // A stored credential's recorded expiry, or an OAuth 1.0a sign-in's token.
        let ends = credential
            .as_ref()
            .and_then(|cr| cr.expires_at)
            .or_else(|| {
                grant_row
                    .as_ref()
                    .and_then(|g| g.access_expires_at)
                    .filter(|_| kind == CredentialKind::LinkUser)
            });
        let attention = ends
            .filter(|at| *at > now && (*at - now).whole_days() < EXPIRY_WARN_DAYS)
            .map(|at| {
                let days_left = (at - now).whole_days();
                ConnectorAttention {
                    code: "expiring".to_owned(),
                    at,
                    days_left,
                    message: format!(
                        "its credential expires in {days_left} day(s): {}",
                        if kind == CredentialKind::LinkUser {
                            format!("sign in again before then (`latch login {}`)", c.provider)
                        } else {
                            format!(
                                "store a new one before then (`latch credential set {}`)",
                                c.name
                            )
                        }
                    ),
                }
            });
        connectors.push(ConnectorStatus {
            attention,
            base_url: config
                .provider(&c.provider)
                .and_then(|p| p.base_url.clone()),
            name: c.name.clone(),
            kind: c.kind.clone(),
            display_name: c.spec.display_name.clone(),
            provider: c.provider.clone(),
            auth: c.auth,
            state,
            site: c.site.clone(),
            scopes: ConnectorScopes {
                required: c.spec.upstream_scopes.iter().cloned().collect(),
                requested: c
                    .spec
                    .upstream_scopes
                    .iter()
                    .filter_map(|s| request.attribution(s).cloned())
                    .collect(),
                granted: granted.map(|g| g.iter().cloned().collect()),
                fix: (c.auth == AuthMode::User && !diff.missing.is_empty()).then(|| {
                    let profile = config.rules_of(&c.provider);
                    let missing: Vec<&str> = diff.missing.iter().map(Scope::as_str).collect();
                    profile.missing_scope_fix(&c.provider, &missing.join(" "))
                }),
                missing: if c.auth == AuthMode::User {
                    diff.missing
                } else {
                    Vec::new()
                },
                extra: if c.auth == AuthMode::User {
                    diff.extra
                } else {
                    Vec::new()
                },
            },
            grant: match (&grant_row, kind) {
                (Some(row), _) => Some(GrantStatus::from_row(row.clone())),
                (None, CredentialKind::UserGrant | CredentialKind::LinkUser) => {
                    provider.and_then(|p| p.grant.clone())
                }
                _ => None,
            },
            credential,
            findings,
        });
    }
    Ok(StatusReport {
        schema: STATUS_SCHEMA,
        home,
        providers,
        connectors,
    })
}

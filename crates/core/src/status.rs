//! The status model: per provider and per connector, what is configured, requested, granted
//! and wrong. Serialized as `latch status --json` (schema `latch.status/v1`, documented in the
//! README); field names are a contract.

use serde::Serialize;

use crate::catalog::{AuthMode, ClientType};
use crate::finding::Finding;
use crate::scope::{RequestedScope, Scope};

/// The JSON schema name and version of [`StatusReport`].
pub const STATUS_SCHEMA: &str = "latch.status/v1";

/// A connector's state, worst-first in the order people must act on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectorState {
    /// The configuration is wrong; nothing will work until it is fixed.
    Misconfigured,
    /// The token family is dead (`invalid_grant`); sign in again.
    NeedsLogin,
    /// Refreshing fails (token endpoint down); Latch retries.
    RefreshFailing,
    /// Required scopes are not granted; sign in again to consent to them.
    NeedsStepUp,
    /// Signed in, but no site is bound.
    SiteUnbound,
    /// Never signed in / no credential stored.
    NotSignedIn,
    /// Ready.
    Ok,
}

impl ConnectorState {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Misconfigured => "misconfigured",
            Self::NeedsLogin => "needs_login",
            Self::RefreshFailing => "refresh_failing",
            Self::NeedsStepUp => "needs_step_up",
            Self::SiteUnbound => "site_unbound",
            Self::NotSignedIn => "not_signed_in",
            Self::Ok => "ok",
        }
    }
}

/// Whether a provider's client secret is in the keychain (a fact recorded in SQLite when it
/// was written; the keychain itself is not touched by `status`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientSecretState {
    /// Missing although the provider requires one.
    Missing,
    /// Public client or no OAuth.
    NotNeeded,
    /// Stored.
    Stored,
}

/// `latch status --json`.
#[derive(Clone, Debug, Serialize)]
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
pub struct HomeStatus {
    /// Prefix of every keychain item of this installation.
    pub id: String,
    /// latch.toml.
    pub config_file: String,
    /// The SQLite database.
    pub database: String,
}

/// One provider.
#[derive(Clone, Debug, Serialize)]
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
}

/// A site a grant reaches.
#[derive(Clone, Debug, Serialize)]
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
pub struct GrantStatus {
    /// Grant state.
    pub state: String,
    /// Account id.
    pub account_id: Option<String>,
    /// Account name.
    pub account_name: Option<String>,
    /// Account e-mail.
    pub account_email: Option<String>,
    /// Granted scopes.
    pub granted_scopes: Vec<Scope>,
    /// Access-token expiry.
    pub access_expires_at: Option<String>,
    /// When the person consented (the last sign-in).
    pub obtained_at: Option<String>,
    /// Last successful refresh.
    pub refreshed_at: Option<String>,
    /// Rotation counter.
    pub generation: i64,
    /// Last error.
    pub last_error: Option<String>,
}

impl GrantStatus {
    /// The secret-free facts of a stored grant.
    pub fn from_row(row: latch_store::GrantRow) -> Self {
        Self {
            state: row.state,
            account_id: row.account_id,
            account_name: row.account_name,
            account_email: row.account_email,
            granted_scopes: crate::scope::ScopeList::parse(&row.granted_scopes)
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
    /// Problems and fixes.
    pub findings: Vec<Finding>,
}

/// A connector's scopes.
#[derive(Clone, Debug, Serialize)]
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
}

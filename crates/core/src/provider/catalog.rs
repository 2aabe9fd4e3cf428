//! The connector catalog: providers (identity-provider presets) and connectors (products),
//! compiled in from `crates/core/catalog/*.toml`, extended by user manifests of the same schema.

use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use crate::provider::scope::ScopeList;
use crate::provider::ProviderKind;
use crate::toml_location::{line_of_key, line_of_offset};

const BUILTIN: &[(&str, &str)] = &[
    (
        "atlassian.toml",
        include_str!("../../catalog/atlassian.toml"),
    ),
    (
        "bitbucket.toml",
        include_str!("../../catalog/bitbucket.toml"),
    ),
    (
        "datacenter.toml",
        include_str!("../../catalog/datacenter.toml"),
    ),
    ("opsgenie.toml", include_str!("../../catalog/opsgenie.toml")),
    ("mcp.toml", include_str!("../../catalog/mcp.toml")),
];

/// How a connector authenticates upstream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "kebab-case")]
pub enum AuthMode {
    /// Opsgenie `Authorization: GenieKey <key>`.
    ApiKey,
    /// Basic `email:api-token`.
    ApiToken,
    /// Basic `username:password` (Data Center).
    Basic,
    /// An installed Atlassian Connect app: a JWT with the request's hash, signed per request.
    Connect,
    /// A user acted as through a Connect app (the JWT bearer grant, `ACT_AS_USER`).
    ConnectUser,
    /// No upstream credential: anonymous calls (the site on Cloud, the base URL on Data Center).
    None,
    /// An OAuth 1.0a application link signing as itself (2-legged), or as `username`.
    #[serde(rename = "oauth1-2lo")]
    OAuth1TwoLegged,
    /// Data Center personal access token, `Authorization: Bearer`.
    Pat,
    /// OAuth client credentials (service accounts); no refresh token.
    Service,
    /// OAuth authorization code in the person's browser, with a rotating refresh token.
    User,
}

impl AuthMode {
    /// The name used in latch.toml and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ApiKey => "api-key",
            Self::ApiToken => "api-token",
            Self::Basic => "basic",
            Self::Connect => "connect",
            Self::ConnectUser => "connect-user",
            Self::None => "none",
            Self::OAuth1TwoLegged => "oauth1-2lo",
            Self::Pat => "pat",
            Self::Service => "service",
            Self::User => "user",
        }
    }

    /// Every mode.
    pub const ALL: [Self; 10] = [
        Self::ApiKey,
        Self::ApiToken,
        Self::Basic,
        Self::Connect,
        Self::ConnectUser,
        Self::None,
        Self::OAuth1TwoLegged,
        Self::Pat,
        Self::Service,
        Self::User,
    ];

    /// Parses the latch.toml / command-line name.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.as_str() == text)
    }
}

/// Whether the provider's client must authenticate at the token endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "kebab-case")]
pub enum ClientType {
    /// A client secret is required (kept in the keychain).
    Confidential,
    /// No OAuth at all: connectors use static credentials only.
    None,
    /// No client secret; PKCE protects the code.
    Public,
}

/// How the token endpoint wants its body.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TokenRequest {
    /// `application/x-www-form-urlencoded` (RFC 6749; Bitbucket requires it).
    Form,
    /// `application/json` (Atlassian's documented form).
    Json,
}

/// Where the client credentials go in a token request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TokenAuth {
    /// HTTP Basic `client_id:client_secret`.
    Basic,
    /// `client_id` and `client_secret` fields in the body.
    Body,
}

/// An identity provider preset.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderSpec {
    /// Human name.
    pub display_name: String,
    /// Its kind, which decides its scope vocabulary and quirks (`vocabulary` in the TOML).
    #[serde(rename = "vocabulary")]
    pub kind: ProviderKind,
    /// Confidential, public, or no OAuth.
    pub client_type: ClientType,
    /// Whether to send PKCE S256.
    #[serde(default)]
    pub pkce: bool,
    /// Token request body encoding.
    #[serde(default = "default_token_request")]
    pub token_request: TokenRequest,
    /// Client authentication at the token endpoint.
    #[serde(default = "default_token_auth")]
    pub token_auth: TokenAuth,
    /// Authorization endpoint.
    #[serde(default)]
    pub authorize_url: Option<String>,
    /// Token endpoint.
    #[serde(default)]
    pub token_url: Option<String>,
    /// Token revocation endpoint (RFC 7009), when the provider has one.
    #[serde(default)]
    pub revoke_url: Option<String>,
    /// Sites a token can reach (Atlassian accessible-resources).
    #[serde(default)]
    pub resources_url: Option<String>,
    /// The signed-in account.
    #[serde(default)]
    pub me_url: Option<String>,
    /// API gateway base.
    #[serde(default)]
    pub api_base: Option<String>,
    /// A site's own URL, `{site}` standing for the name a person types
    /// (`https://{site}.atlassian.net`): tenant_info and classic API tokens go there.
    #[serde(default)]
    pub site_url: Option<String>,
    /// Gateways per region (`eu = "https://api.eu.opsgenie.com"`), picked by a connector's
    /// `region`.
    #[serde(default)]
    pub regions: IndexMap<String, String>,
    /// Extra query parameters on the authorize URL.
    #[serde(default)]
    pub authorize_params: IndexMap<String, String>,
    /// Scopes the provider always requests, whatever its connectors.
    #[serde(default)]
    pub default_scopes: ScopeList,
    /// The callback Latch suggests registering.
    #[serde(default)]
    pub default_redirect_uri: Option<String>,
    /// Whether a refresh token needs `offline_access` in the request.
    #[serde(default)]
    pub needs_offline_access: bool,
    /// How long a rotated-out refresh token stays usable (a lost response may be retried).
    #[serde(default)]
    pub refresh_reuse_window_secs: Option<u64>,
    /// Refresh tokens die after this many idle days.
    #[serde(default)]
    pub inactivity_expiry_days: Option<u32>,
    /// Refresh-token families die this many days after consent.
    #[serde(default)]
    pub absolute_expiry_days: Option<u32>,
    /// Where the person registers the app (shown in set-up hints).
    #[serde(default)]
    pub console_url: Option<String>,
    /// Whether a refresh repeats the `redirect_uri` (Data Center answers `invalid_grant`
    /// without it).
    #[serde(default)]
    pub refresh_sends_redirect_uri: bool,
    /// Whether a service account asks for its connector's scopes when it lists none (Data
    /// Center's client credentials take `scope`; an Atlassian Cloud credential has its own).
    #[serde(default)]
    pub service_requests_scopes: bool,
    /// Where git reaches the provider's repositories over HTTPS (`latch git-credential`).
    #[serde(default)]
    pub git_url: Option<String>,
    /// An OpenID Connect issuer: endpoints left out are read from its discovery document.
    #[serde(default)]
    pub issuer: Option<String>,
    /// Where a Connect app asks for a user's token (the JWT bearer grant, `ACT_AS_USER`).
    #[serde(default)]
    pub connect_token_url: Option<String>,
    /// OAuth 1.0a application links (Data Center), for a provider with `oauth = "1.0a"`.
    #[serde(default)]
    pub oauth1: Option<OAuth1Endpoints>,
    /// An MCP server's sign-in: its endpoints come from the server's protected-resource and
    /// authorization-server metadata, its client id from dynamic registration (MCP
    /// authorization; `upstream::mcp_auth`).
    #[serde(default)]
    pub mcp_discovery: bool,
}

/// An instance's OAuth 1.0a endpoints (atlassian-wire §12.3).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OAuth1Endpoints {
    /// Where a sign-in asks for its request token.
    pub request_token_url: String,
    /// Where the browser authorizes the request token.
    pub authorize_url: String,
    /// Where the authorized request token becomes an access token.
    pub access_token_url: String,
}

/// The placeholder for an instance's base URL in a provider preset (Data Center).
pub const BASE_PLACEHOLDER: &str = "{base}";
/// A preset's `api_base` that latch.toml's `mcp_url` must give (any MCP server).
pub const MCP_URL_PLACEHOLDER: &str = "{mcp_url}";

impl ProviderSpec {
    /// Whether the preset's endpoints need an instance base URL (`{base}`).
    pub fn needs_base_url(&self) -> bool {
        self.urls().iter().any(|u| u.contains(BASE_PLACEHOLDER))
    }

    fn urls(&self) -> Vec<&String> {
        [
            &self.authorize_url,
            &self.token_url,
            &self.revoke_url,
            &self.resources_url,
            &self.me_url,
            &self.api_base,
            &self.console_url,
            &self.git_url,
        ]
        .into_iter()
        .flatten()
        .collect()
    }

    /// Puts an instance's base URL (no trailing `/`) in place of `{base}`.
    pub fn with_base_url(mut self, base: &str) -> Self {
        let base = base.trim_end_matches('/');
        for url in [
            &mut self.authorize_url,
            &mut self.token_url,
            &mut self.revoke_url,
            &mut self.resources_url,
            &mut self.me_url,
            &mut self.api_base,
            &mut self.console_url,
            &mut self.git_url,
        ]
        .into_iter()
        .flatten()
        {
            *url = url.replace(BASE_PLACEHOLDER, base);
        }
        if let Some(link) = &mut self.oauth1 {
            for url in [
                &mut link.request_token_url,
                &mut link.authorize_url,
                &mut link.access_token_url,
            ] {
                *url = url.replace(BASE_PLACEHOLDER, base);
            }
        }
        self
    }
}

fn default_token_request() -> TokenRequest {
    TokenRequest::Form
}

fn default_token_auth() -> TokenAuth {
    TokenAuth::Body
}

/// A connector's health probe.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Probe {
    /// HTTP method.
    pub method: String,
    /// Path below the connector's API base.
    pub path: String,
    /// A JSON body to send (an MCP server is probed with `initialize`).
    #[serde(default)]
    pub body: Option<String>,
    /// The `Accept` header (default `application/json`).
    #[serde(default)]
    pub accept: Option<String>,
}

/// A product reached through a provider.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectorSpec {
    /// Human name.
    pub display_name: String,
    /// The provider it signs in through.
    pub provider: String,
    /// The upstream scopes it needs (its classic set, where the provider has two kinds).
    pub upstream_scopes: ScopeList,
    /// The same needs in granular scopes (Atlassian), chosen with `scope_set = "granular"`.
    #[serde(default)]
    pub granular_scopes: Option<ScopeList>,
    /// API base, with `{cloud_id}` where the site goes.
    pub api_base: String,
    /// API base for credentials that work only on the site's own URL (classic Atlassian API
    /// tokens), with `{site_url}`.
    #[serde(default)]
    pub site_api_base: Option<String>,
    /// Markers that tell this product's accessible-resources entries apart.
    #[serde(default)]
    pub site_scope_markers: Vec<String>,
    /// Site-relative path prefixes (Confluence's `/wiki/`) that the proxy routes here, so that
    /// pagination links relative to the site work through it.
    #[serde(default)]
    pub site_paths: Vec<String>,
    /// A path prefix the proxy once added itself (Bitbucket Cloud's `2.0`): a request without
    /// it still works (the old form, logged as deprecated), and key path patterns written for
    /// the old form keep matching.
    #[serde(default)]
    pub legacy_prefix: Option<String>,
    /// Supported auth modes; the first is the default.
    pub auth_modes: Vec<AuthMode>,
    /// Health probe.
    pub probe: Probe,
    /// An MCP server over streamable HTTP: `latch mcp` relays to it, and the proxy passes its
    /// answers without rewriting links or passing on its OAuth challenge.
    #[serde(default)]
    pub mcp: bool,
    /// The `Authorization` scheme of `api-key` (default `GenieKey`, Opsgenie's; `Bearer` for a
    /// service-account key).
    #[serde(default)]
    pub api_key_scheme: Option<String>,
}

impl ConnectorSpec {
    /// Whether the API base needs a bound site.
    pub fn needs_site(&self) -> bool {
        self.api_base.contains("{cloud_id}") || self.api_base.contains("{site_url}")
    }
}

/// A manifest file's content: the same schema for built-in and user files.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    #[serde(default)]
    providers: IndexMap<String, ProviderSpec>,
    #[serde(default)]
    connectors: IndexMap<String, ConnectorSpec>,
}

/// A manifest that could not be used.
#[derive(Debug, thiserror::Error)]
#[error("{}:{}: {message}", file.display(), line.map_or_else(String::new, |l| l.to_string()))]
pub struct ManifestError {
    /// The file.
    pub file: PathBuf,
    /// The line, when known.
    pub line: Option<usize>,
    /// What is wrong and how to fix it.
    pub message: String,
}

/// A provider preset as faces show it (the desktop app's "Add provider").
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct PresetEntry {
    /// Preset name.
    pub name: String,
    /// Human name.
    pub display_name: String,
    /// Client type.
    pub client_type: ClientType,
    /// The callback to register, unless the person chooses another.
    pub default_redirect_uri: Option<String>,
    /// Where the app is registered.
    pub console_url: Option<String>,
    /// Scopes it always requests.
    pub default_scopes: ScopeList,
    /// Whether it needs an instance's base URL (`--base-url`; Data Center).
    pub needs_base_url: bool,
    /// The scope vocabulary it speaks.
    pub vocabulary: ProviderKind,
    /// Whether its instances may use OAuth 1.0a application links (`--oauth1`).
    pub oauth1: bool,
    /// An MCP server's: no app to register (Latch registers itself at the first sign-in).
    pub mcp: bool,
    /// Whether it needs the MCP server's endpoint (`--mcp-url`; preset `mcp`).
    pub needs_mcp_url: bool,
}

/// A connector type as faces show it (`latch connector catalog`, "Add connector").
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ConnectorEntry {
    /// Catalog type.
    pub name: String,
    /// Human name.
    pub display_name: String,
    /// Provider it signs in through.
    pub provider: String,
    /// Supported auth modes, the default first.
    pub auth_modes: Vec<AuthMode>,
    /// Scopes it needs.
    pub upstream_scopes: ScopeList,
    /// The same in granular scopes, where the provider has them.
    pub granular_scopes: Option<ScopeList>,
    /// API base template.
    pub api_base: String,
    /// Whether it needs a site.
    pub needs_site: bool,
    /// The scope vocabulary of its provider.
    pub vocabulary: ProviderKind,
}

/// The whole catalog as faces show it.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct CatalogEntries {
    /// Provider presets.
    pub providers: Vec<PresetEntry>,
    /// Connector types.
    pub connectors: Vec<ConnectorEntry>,
}

/// Every provider and connector Latch knows.
#[derive(Clone, Debug, Default)]
pub struct Catalog {
    providers: IndexMap<String, ProviderSpec>,
    connectors: IndexMap<String, ConnectorSpec>,
}

impl Catalog {
    /// The catalog as faces show it.
    pub fn entries(&self) -> CatalogEntries {
        CatalogEntries {
            providers: self
                .providers
                .iter()
                .map(|(name, p)| PresetEntry {
                    oauth1: p.oauth1.is_some(),
                    mcp: p.mcp_discovery,
                    needs_mcp_url: p.api_base.as_deref() == Some(MCP_URL_PLACEHOLDER),
                    name: name.clone(),
                    display_name: p.display_name.clone(),
                    client_type: p.client_type,
                    default_redirect_uri: p.default_redirect_uri.clone(),
                    console_url: p.console_url.clone(),
                    default_scopes: p.default_scopes.clone(),
                    needs_base_url: p.needs_base_url(),
                    vocabulary: p.kind,
                })
                .collect(),
            connectors: self
                .connectors
                .iter()
                .map(|(name, c)| ConnectorEntry {
                    name: name.clone(),
                    display_name: c.display_name.clone(),
                    provider: c.provider.clone(),
                    auth_modes: c.auth_modes.clone(),
                    upstream_scopes: c.upstream_scopes.clone(),
                    granular_scopes: c.granular_scopes.clone(),
                    api_base: c.api_base.clone(),
                    needs_site: c.needs_site(),
                    vocabulary: self
                        .providers
                        .get(&c.provider)
                        .map_or(ProviderKind::Generic, |p| p.kind),
                })
                .collect(),
        }
    }

    /// Whether a preset is an MCP server's: its connectors are relayed by `latch mcp`.
    pub fn is_mcp_preset(&self, preset: &str) -> bool {
        self.provider(preset)
            .is_some_and(|p| p.api_base.as_deref() == Some(MCP_URL_PLACEHOLDER))
            || self
                .connectors()
                .any(|(_, c)| c.mcp && c.provider == preset)
    }

    /// The built-in catalog.
    pub fn builtin() -> Self {
        let mut catalog = Self::default();
        for (name, text) in BUILTIN {
            // Built-in files are checked by the `builtin_catalog_is_valid` test.
            if let Err(err) = catalog.add_manifest_text(Path::new(name), text) {
                debug_assert!(false, "built-in catalog: {err}");
            }
        }
        catalog
    }

    /// Adds a user manifest file. The whole file is rejected on the first problem.
    pub fn add_manifest_file(&mut self, path: &Path) -> Result<(), ManifestError> {
        let text = std::fs::read_to_string(path).map_err(|err| ManifestError {
            file: path.to_owned(),
            line: None,
            message: format!("cannot read the manifest: {err}"),
        })?;
        self.add_manifest_text(path, &text)
    }

    fn add_manifest_text(&mut self, file: &Path, text: &str) -> Result<(), ManifestError> {
        let fail = |line: Option<usize>, message: String| ManifestError {
            file: file.to_owned(),
            line,
            message,
        };
        let manifest: Manifest = toml::from_str(text).map_err(|err| {
            fail(
                err.span().map(|s| line_of_offset(text, s.start)),
                err.message().to_owned(),
            )
        })?;
        if manifest.providers.is_empty() && manifest.connectors.is_empty() {
            return Err(fail(
                None,
                "the manifest defines nothing: add a [providers.NAME] or [connectors.NAME] table"
                    .to_owned(),
            ));
        }
        let mut next = self.clone();
        for (name, spec) in manifest.providers {
            let at = |key: &str| line_of_key(text, &["providers", &name, key]);
            check_name(&name).map_err(|m| fail(at(""), m))?;
            if next.providers.contains_key(&name) {
                return Err(fail(
                    at(""),
                    format!("provider `{name}` is already defined; give yours another name"),
                ));
            }
            for (key, url) in [
                ("authorize_url", &spec.authorize_url),
                ("token_url", &spec.token_url),
                ("revoke_url", &spec.revoke_url),
                ("resources_url", &spec.resources_url),
                ("me_url", &spec.me_url),
                ("api_base", &spec.api_base),
                ("console_url", &spec.console_url),
                ("git_url", &spec.git_url),
                ("issuer", &spec.issuer),
                ("default_redirect_uri", &spec.default_redirect_uri),
            ] {
                // `{mcp_url}`: the whole endpoint comes from latch.toml (`mcp_url`).
                if key == "api_base" && url.as_deref() == Some(MCP_URL_PLACEHOLDER) {
                    continue;
                }
                if let Some(url) = url {
                    // `{base}` must start the URL: it stands for a whole origin.
                    let based = url
                        .strip_prefix(BASE_PLACEHOLDER)
                        .map_or_else(|| url.clone(), |rest| format!("https://base.example{rest}"));
                    if based.contains(BASE_PLACEHOLDER)
                        || key == "default_redirect_uri" && based != *url
                    {
                        return Err(fail(
                            at(key),
                            format!("`{key}`: `{{base}}` may only start an endpoint URL"),
                        ));
                    }
                    check_url(&based).map_err(|m| fail(at(key), format!("`{key}`: {m}")))?;
                }
            }
            if let Some(template) = &spec.site_url {
                if !template.contains("{site}") {
                    return Err(fail(
                        at("site_url"),
                        "`site_url` must contain `{site}` where the site's name goes".to_owned(),
                    ));
                }
                check_url(&template.replace("{site}", "site"))
                    .map_err(|m| fail(at("site_url"), format!("`site_url`: {m}")))?;
            }
            for (region, url) in &spec.regions {
                check_url(url)
                    .map_err(|m| fail(at("regions"), format!("region `{region}`: {m}")))?;
            }
            if spec.client_type != ClientType::None
                && spec.issuer.is_none()
                && !spec.mcp_discovery
                && (spec.authorize_url.is_none() || spec.token_url.is_none())
            {
                return Err(fail(
                    at(""),
                    format!(
                        "provider `{name}` does OAuth (client_type = \"{}\") but lacks \
                         `authorize_url` or `token_url`; add both, or `issuer` to discover them, \
                         or set client_type = \"none\"",
                        match spec.client_type {
                            ClientType::Confidential => "confidential",
                            _ => "public",
                        }
                    ),
                ));
            }
            next.providers.insert(name, spec);
        }
        for (name, spec) in manifest.connectors {
            let at = |key: &str| line_of_key(text, &["connectors", &name, key]);
            check_name(&name).map_err(|m| fail(at(""), m))?;
            if next.connectors.contains_key(&name) {
                return Err(fail(
                    at(""),
                    format!("connector `{name}` is already defined; give yours another name"),
                ));
            }
            let Some(provider) = next.providers.get(&spec.provider) else {
                return Err(fail(
                    at("provider"),
                    format!(
                        "connector `{name}` names provider `{}`, which no manifest defines; \
                         known providers: {}",
                        spec.provider,
                        next.providers
                            .keys()
                            .cloned()
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            };
            let gateway = provider
                .api_base
                .as_deref()
                .unwrap_or("https://gateway.invalid")
                .replace(BASE_PLACEHOLDER, "https://base.example");
            if spec.api_base.contains("{api_base}") && provider.api_base.is_none() {
                return Err(fail(
                    at("api_base"),
                    format!(
                        "`api_base` uses {{api_base}} but provider `{}` has no `api_base`",
                        spec.provider
                    ),
                ));
            }
            check_url(&expand_api_base(&spec.api_base, &gateway, "site"))
                .map_err(|m| fail(at("api_base"), format!("`api_base`: {m}")))?;
            if let Some(site_base) = &spec.site_api_base {
                if !site_base.contains("{site_url}") {
                    return Err(fail(
                        at("site_api_base"),
                        "`site_api_base` must start with `{site_url}`".to_owned(),
                    ));
                }
                check_url(&site_base.replace("{site_url}", "https://site.example"))
                    .map_err(|m| fail(at("site_api_base"), format!("`site_api_base`: {m}")))?;
            }
            if spec.auth_modes.is_empty() {
                return Err(fail(
                    at("auth_modes"),
                    "`auth_modes` is empty: list at least one of user, service, api-token, \
                     pat, basic, api-key"
                        .to_owned(),
                ));
            }
            let oauth_modes = spec
                .auth_modes
                .iter()
                .any(|m| matches!(m, AuthMode::User | AuthMode::Service));
            if oauth_modes && provider.client_type == ClientType::None {
                return Err(fail(
                    at("auth_modes"),
                    format!(
                        "connector `{name}` supports OAuth modes but provider `{}` has no OAuth \
                         (client_type = \"none\"); keep only api-token, pat, basic or api-key",
                        spec.provider
                    ),
                ));
            }
            // Empty: the API base itself (an MCP server's one endpoint).
            if !spec.probe.path.is_empty() && !spec.probe.path.starts_with('/') {
                return Err(fail(
                    at("probe"),
                    "`probe.path` must be empty or start with `/`".to_owned(),
                ));
            }
            next.connectors.insert(name, spec);
        }
        *self = next;
        Ok(())
    }

    /// A provider preset by name.
    pub fn provider(&self, name: &str) -> Option<&ProviderSpec> {
        self.providers.get(name)
    }

    /// A connector type by name.
    pub fn connector(&self, name: &str) -> Option<&ConnectorSpec> {
        self.connectors.get(name)
    }

    /// Every provider preset.
    pub fn providers(&self) -> impl Iterator<Item = (&String, &ProviderSpec)> {
        self.providers.iter()
    }

    /// Every connector type.
    pub fn connectors(&self) -> impl Iterator<Item = (&String, &ConnectorSpec)> {
        self.connectors.iter()
    }
}

/// Fills a connector's `api_base` template (checks and previews; requests go through
/// `upstream::base`, which resolves the site).
pub fn expand_api_base(template: &str, gateway: &str, cloud_id: &str) -> String {
    template
        .replace("{api_base}", gateway.trim_end_matches('/'))
        .replace("{cloud_id}", cloud_id)
        .replace("{site_url}", "https://site.example")
}

/// The variable `latch exec` gives a child for a connector's base URL.
pub fn exec_variable(connector: &str) -> String {
    format!(
        "LATCH_{}_URL",
        connector.to_ascii_uppercase().replace(['-', '.'], "_")
    )
}

/// Connector names that `latch exec` needs for itself (`LATCH_PROXY_URL`).
pub const RESERVED_CONNECTOR_NAMES: &[&str] = &["proxy"];

/// Names end up in URL paths (`/jira/...`) and environment variables (`LATCH_JIRA_URL`).
pub fn check_name(name: &str) -> Result<(), String> {
    let ok = name.len() <= 32
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{name}` is not a valid name: use 1–32 lower-case letters, digits and `-`, \
             starting with a letter"
        ))
    }
}

/// Endpoints must be https, except on loopback (tests, local gateways).
pub fn check_url(text: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(text).map_err(|err| format!("{text:?} is not a URL ({err})"))?;
    match url.scheme() {
        "https" => Ok(url),
        "http" if is_loopback_host(&url) => Ok(url),
        "http" => Err(format!(
            "{text:?} uses http:// on a non-loopback host; use https:// (http is accepted only \
             for 127.0.0.1, [::1] and localhost)"
        )),
        other => Err(format!("{text:?} has scheme `{other}`; use https://")),
    }
}

fn is_loopback_host(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_catalog_is_valid() {
        let mut catalog = Catalog::default();
        for (name, text) in BUILTIN {
            catalog
                .add_manifest_text(Path::new(name), text)
                .unwrap_or_else(|e| panic!("{e}"));
        }
        for name in ["jira", "confluence", "jsm", "bitbucket", "opsgenie"] {
            assert!(catalog.connector(name).is_some(), "{name}");
        }
        let atlassian = catalog.provider("atlassian").unwrap();
        assert_eq!(atlassian.authorize_params["audience"], "api.atlassian.com");
        assert_eq!(atlassian.authorize_params["prompt"], "consent");
        assert_eq!(atlassian.client_type, ClientType::Confidential);
        let jira = catalog.connector("jira").unwrap();
        assert_eq!(
            jira.upstream_scopes.to_string(),
            "read:me read:jira-user read:jira-work write:jira-work offline_access"
        );
        assert_eq!(jira.probe.path, "/rest/api/3/myself");
        assert!(jira.needs_site());
    }

    #[test]
    fn builtin_scopes_pass_lint() {
        use crate::provider::scope::{lint, LintConnector};
        let catalog = Catalog::builtin();
        for (name, spec) in catalog.connectors() {
            let provider = catalog.provider(&spec.provider).unwrap();
            // Both scope sets: the classic one and, where it exists, the granular one.
            for scopes in [Some(&spec.upstream_scopes), spec.granular_scopes.as_ref()]
                .into_iter()
                .flatten()
            {
                let findings = lint(
                    &spec.provider,
                    provider.kind.rules(),
                    provider.needs_offline_access,
                    &[LintConnector {
                        name,
                        user_mode: spec.auth_modes.contains(&AuthMode::User),
                        scopes,
                    }],
                );
                assert!(findings.is_empty(), "{name} ({scopes}): {findings:?}");
            }
        }
    }

    fn reject(text: &str) -> ManifestError {
        let mut catalog = Catalog::builtin();
        catalog
            .add_manifest_text(Path::new("custom.toml"), text)
            .unwrap_err()
    }

    #[test]
    fn manifest_adds_a_custom_connector() {
        let mut catalog = Catalog::builtin();
        catalog
            .add_manifest_text(
                Path::new("custom.toml"),
                r#"
[connectors.jira-admin]
display_name = "Jira admin"
provider = "atlassian"
upstream_scopes = ["read:me", "manage:jira-configuration", "offline_access"]
api_base = "https://api.atlassian.com/ex/jira/{cloud_id}"
auth_modes = ["user"]
probe = { method = "GET", path = "/rest/api/3/myself" }
"#,
            )
            .unwrap();
        assert!(catalog.connector("jira-admin").is_some());
    }

    #[test]
    fn malformed_manifests_name_file_line_and_problem() {
        let err = reject("[connectors.x]\ndisplay_name = \"X\"\nprovider = 3\n");
        assert_eq!(err.line, Some(3));
        assert!(err.to_string().starts_with("custom.toml:3: "), "{err}");

        let err = reject(
            "[connectors.x]\ndisplay_name = \"X\"\nprovider = \"nope\"\nupstream_scopes = []\n\
             api_base = \"https://x.example\"\nauth_modes = [\"user\"]\n\
             probe = { method = \"GET\", path = \"/\" }\n",
        );
        assert_eq!(err.line, Some(3));
        assert!(err.message.contains("provider `nope`"), "{err}");

        let err = reject(
            "[providers.p]\ndisplay_name = \"P\"\nvocabulary = \"generic\"\n\
             client_type = \"public\"\nauthorize_url = \"http://idp.example/a\"\n\
             token_url = \"https://idp.example/t\"\n",
        );
        assert_eq!(err.line, Some(5));
        assert!(err.message.contains("http://"), "{err}");

        let err = reject("[connectors.jira]\ncolour = 1\n");
        assert!(err.message.contains("colour"), "{err}");

        let err = reject(
            "[connectors.Bad_Name]\ndisplay_name = \"X\"\nprovider = \"atlassian\"\n\
             upstream_scopes = []\napi_base = \"https://x.example\"\nauth_modes = [\"user\"]\n\
             probe = { method = \"GET\", path = \"/\" }\n",
        );
        assert!(err.message.contains("Bad_Name"), "{err}");
        assert_eq!(err.line, Some(1));
    }
}

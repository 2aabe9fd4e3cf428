//! `latch.toml`: what the person configured (providers, connectors, proxy). Read with
//! line-accurate errors; written with `toml_edit` so that hand edits and comments survive.
//!
//! The file never holds a secret: client secrets and credentials live in the keychain.

pub mod home;
mod settings;

pub use settings::{parse_intercept_host, ConnectorSettings, SettingError};

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde::Deserialize;

use crate::error::{ConfigError, Error, Result};
use crate::finding::Finding;
use crate::provider::catalog::{
    check_name, check_url, AuthMode, Catalog, ClientType, ConnectorSpec, ProviderSpec,
};
use crate::provider::scope::{lint, LintConnector, ScopeList, ScopeRequest};
use crate::provider::{ProviderKind, ProviderRules};
use crate::toml_location::{line_of_key, line_of_offset};
use latch_store::ApiTokenKind;

/// The proxy's default listen address.
pub const DEFAULT_PROXY_LISTEN: &str = "127.0.0.1:7391";

/// latch.toml as written.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// `[proxy]`.
    #[serde(default)]
    pub proxy: ProxySection,
    /// `[catalog]`.
    #[serde(default)]
    pub catalog: CatalogSection,
    /// `[network]`.
    #[serde(default)]
    pub network: NetworkSection,
    /// `[audit]`.
    #[serde(default)]
    pub audit: AuditSection,
    /// `[keychain]`.
    #[serde(default)]
    pub keychain: KeychainSection,
    /// `[providers.NAME]`.
    #[serde(default)]
    pub providers: IndexMap<String, ProviderSection>,
    /// `[connectors.NAME]`.
    #[serde(default)]
    pub connectors: IndexMap<String, ConnectorSettings>,
}

/// `[proxy]`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxySection {
    /// `listen = "127.0.0.1:7391"`.
    pub listen: Option<String>,
}

/// `[network]`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkSection {
    /// Timeout of one request to an identity provider, in seconds (default 30).
    pub timeout_secs: Option<u64>,
    /// How long a sent refresh request may take before it counts as lost (default 300: well
    /// inside Atlassian's 10-minute reuse window, so a lost one can be resent inside it).
    pub refresh_timeout_secs: Option<u64>,
    /// How long the proxy lets a caller wait for a refresh before answering 503 (default 15);
    /// the refresh itself goes on.
    pub caller_wait_secs: Option<u64>,
    /// How long a warm upstream connection of the proxy waits for its next request (default 90).
    pub upstream_idle_secs: Option<u64>,
}

/// `[audit]`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditSection {
    /// Days the audit log keeps (default 90); older rows are pruned.
    pub keep_days: Option<u32>,
}

/// `[keychain]`: where secrets live.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeychainSection {
    /// `"os"` (default: the OS keychain) or `"file"` (an encrypted file, for machines without
    /// one; chosen here, never as a fallback).
    pub store: Option<String>,
    /// `store = "file"`: the file (default: `secrets.latch` in the data folder); relative
    /// paths are relative to latch.toml's folder.
    pub file: Option<PathBuf>,
}

/// Where secrets live, as latch.toml chose.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecretStoreChoice {
    /// The OS keychain.
    Os,
    /// An encrypted file; `None`: the home's default file.
    File(Option<PathBuf>),
}

/// `[catalog]`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogSection {
    /// Manifest files that add providers and connectors; relative paths are relative to the
    /// folder of latch.toml.
    #[serde(default)]
    pub manifests: Vec<PathBuf>,
}

/// `[providers.NAME]`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderSection {
    /// Catalog preset; defaults to the table name.
    pub preset: Option<String>,
    /// OAuth client id (public).
    pub client_id: Option<String>,
    /// Registered callback, byte for byte.
    pub redirect_uri: Option<String>,
    /// Override of the preset's authorize endpoint.
    pub authorize_url: Option<String>,
    /// Override of the preset's token endpoint.
    pub token_url: Option<String>,
    /// Override of the preset's revocation endpoint.
    pub revoke_url: Option<String>,
    /// Override of the preset's accessible-resources endpoint.
    pub resources_url: Option<String>,
    /// Override of the preset's account endpoint.
    pub me_url: Option<String>,
    /// Override of the preset's API gateway.
    pub api_base: Option<String>,
    /// Override of the preset's site URL template (`https://{site}.atlassian.net`).
    pub site_url: Option<String>,
    /// Override of the preset's git URL (where `git clone` reaches Bitbucket Cloud).
    pub git_url: Option<String>,
    /// Override of the preset's token endpoint for Connect apps acting as a user.
    pub connect_token_url: Option<String>,
    /// The instance's base URL, for presets whose endpoints start with `{base}` (Data Center:
    /// `https://jira.corp.example`).
    pub base_url: Option<String>,
    /// A PEM file of CA certificates trusted for this provider only (an internal CA), on top
    /// of the built-in roots and the OS trust store. Relative to latch.toml's folder.
    pub ca_file: Option<PathBuf>,
    /// An MCP server's endpoint (`mcp` and `atlassian-mcp` presets): where `latch mcp` and the
    /// proxy's `/CONNECTOR` send every message.
    pub mcp_url: Option<String>,
    /// A PEM file with the client certificate (and its chain) Latch presents on every
    /// connection to this provider's endpoints and API (mTLS); its private key is in the
    /// keychain (`latch provider client-cert`). Relative to latch.toml's folder.
    pub client_cert: Option<PathBuf>,
    /// `"1.0a"`: the instance's application link speaks OAuth 1.0a (RSA-SHA1); default `"2.0"`.
    pub oauth: Option<String>,
    /// OAuth 1.0a: the consumer key of the link's incoming authentication.
    pub consumer_key: Option<String>,
}

/// Which of a connector's scope sets it uses (Atlassian has classic and granular scopes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum ScopeSet {
    /// `read:jira-work`, … (Atlassian recommends them where they exist).
    #[default]
    Classic,
    /// `read:issue:jira`, … (the only kind Confluence's v2 API documents).
    Granular,
}

impl ScopeSet {
    /// The latch.toml name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Classic => "classic",
            Self::Granular => "granular",
        }
    }

    /// Parses the latch.toml name.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "classic" => Some(Self::Classic),
            "granular" => Some(Self::Granular),
            _ => None,
        }
    }
}

/// A provider, resolved against the catalog.
#[derive(Clone, Debug)]
pub struct Provider {
    /// Its name (the table name).
    pub name: String,
    /// The preset it came from.
    pub preset: String,
    /// Preset with the file's overrides applied.
    pub spec: ProviderSpec,
    /// OAuth client id.
    pub client_id: Option<String>,
    /// The callback to register and listen on.
    pub redirect_uri: Option<String>,
    /// The instance's base URL (Data Center), already put in place of `{base}` in `spec`.
    pub base_url: Option<String>,
    /// Extra CA certificates for this provider's endpoints and API (absolute path, checked).
    pub ca_file: Option<PathBuf>,
    /// The client certificate presented to this provider (absolute path, checked).
    pub client_cert: Option<crate::net::tls::ClientCert>,
    /// Whether it is declared in latch.toml (providers without OAuth need not be).
    pub configured: bool,
    /// An OAuth 1.0a application link (`oauth = "1.0a"`): its consumer key and endpoints.
    pub oauth1: Option<OAuth1Link>,
}

/// A provider's OAuth 1.0a application link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OAuth1Link {
    /// The consumer key the link's incoming authentication was created with.
    pub consumer_key: String,
    /// Its endpoints, base URL filled in.
    pub endpoints: crate::provider::catalog::OAuth1Endpoints,
}

impl Provider {
    /// How this provider behaves (its kind's rules).
    pub fn rules(&self) -> &'static dyn ProviderRules {
        self.spec.kind.rules()
    }
}

/// A connector, resolved against the catalog.
#[derive(Clone, Debug)]
pub struct Connector {
    /// Its name (the table name; the proxy route).
    pub name: String,
    /// The catalog entry.
    pub kind: String,
    /// The catalog entry's content.
    pub spec: ConnectorSpec,
    /// Its provider's name.
    pub provider: String,
    /// How it authenticates.
    pub auth: AuthMode,
    /// The site it is bound to, if any.
    pub site: Option<String>,
    /// Account e-mail for `api-token`.
    pub email: Option<String>,
    /// Service-account client id.
    pub client_id: Option<String>,
    /// Scopes to request: a service account's, or a Connect app's for the user it acts as
    /// (`None`: send no `scope`).
    pub scopes: Option<ScopeList>,
    /// `connect-user`: the Atlassian account the app acts as.
    pub account_id: Option<String>,
    /// Its provider is an OAuth 1.0a application link (`user` then signs in with OAuth 1.0a).
    pub oauth1: bool,
    /// Service-account `audience`.
    pub audience: Option<String>,
    /// Where an API token works, when pinned.
    pub token: Option<ApiTokenKind>,
    /// User name for `basic`.
    pub username: Option<String>,
    /// Which scope set `spec.upstream_scopes` holds.
    pub scope_set: ScopeSet,
    /// Provider region.
    pub region: Option<String>,
    /// `latch exec --intercept`: host names in place of the preset's (empty: the preset's).
    pub intercept_hosts: Vec<String>,
}

/// latch.toml, parsed, with the catalog it extends and every reference resolved.
#[derive(Clone, Debug)]
pub struct Config {
    path: PathBuf,
    text: String,
    /// The proxy's listen address.
    pub listen: SocketAddr,
    /// Timeout of one request to an identity provider.
    pub http_timeout: std::time::Duration,
    /// Timeout of one refresh request (it is never abandoned before this).
    pub refresh_timeout: std::time::Duration,
    /// How long the proxy's caller waits for a refresh.
    pub caller_wait: std::time::Duration,
    /// How long the proxy keeps an idle upstream connection warm.
    pub upstream_idle: std::time::Duration,
    /// Days the audit log keeps.
    pub audit_keep_days: u32,
    /// Where secrets live.
    pub secret_store: SecretStoreChoice,
    /// Built-in catalog plus manifests.
    pub catalog: Catalog,
    /// Manifest paths as written.
    pub manifests: Vec<PathBuf>,
    /// Providers in file order, then catalog providers without OAuth that connectors use.
    pub providers: Vec<Provider>,
    /// Connectors in file order.
    pub connectors: Vec<Connector>,
}

impl Config {
    /// Reads and resolves latch.toml; a missing file is an empty configuration.
    pub fn load(path: &Path) -> Result<Self> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(err) => {
                return Err(ConfigError {
                    file: path.to_owned(),
                    line: None,
                    key: None,
                    message: format!("cannot read the file: {err}"),
                    fix: "check the file's permissions, or point LATCH_HOME elsewhere".to_owned(),
                }
                .into())
            }
        };
        Self::parse(path, text)
    }

    /// Parses and resolves latch.toml text.
    pub fn parse(path: &Path, text: String) -> Result<Self> {
        let file: ConfigFile = toml::from_str(&text).map_err(|err| ConfigError {
            file: path.to_owned(),
            line: err.span().map(|s| line_of_offset(&text, s.start)),
            key: None,
            message: err.message().trim().to_owned(),
            fix: "correct the line above (see the latch.toml section of the README for every key)"
                .to_owned(),
        })?;
        Resolver { path, text: &text }.resolve(file, text.clone())
    }

    /// The file this was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A provider by name.
    pub fn provider(&self, name: &str) -> Option<&Provider> {
        self.providers.iter().find(|p| p.name == name)
    }

    /// A connector by name.
    pub fn connector(&self, name: &str) -> Option<&Connector> {
        self.connectors.iter().find(|c| c.name == name)
    }

    /// How a provider behaves: its configured kind, else its catalog preset's, else a generic
    /// provider's.
    pub fn rules_of(&self, provider: &str) -> &'static dyn ProviderRules {
        self.provider(provider)
            .map(|p| p.spec.kind)
            .or_else(|| self.catalog.provider(provider).map(|p| p.kind))
            .unwrap_or(ProviderKind::Generic)
            .rules()
    }

    /// HTTP clients for this configuration's providers: each provider's `ca_file` trusted for
    /// that provider only.
    pub fn provider_clients(
        &self,
        identities: crate::net::tls::IdentitySource,
    ) -> crate::net::tls::ProviderClients {
        crate::net::tls::ProviderClients::new(self.http_timeout, self.trusts(), identities)
    }

    /// What each provider with a trust of its own (a CA file, a client certificate) trusts
    /// and presents; providers not listed use the defaults.
    pub fn trusts(&self) -> Vec<crate::net::tls::ProviderTrust> {
        self.providers
            .iter()
            .filter(|p| p.ca_file.is_some() || p.client_cert.is_some())
            .map(|p| crate::net::tls::ProviderTrust {
                provider: p.name.clone(),
                ca_file: p.ca_file.clone(),
                client_cert: p.client_cert.clone(),
            })
            .collect()
    }

    /// The error for a connector this configuration does not have, listing the ones it has.
    pub fn unknown_connector(&self, name: &str) -> Error {
        Error::UnknownConnector {
            name: name.to_owned(),
            known: self.connectors.iter().map(|c| c.name.clone()).collect(),
        }
    }

    /// The same, as a grant error (`latch token`, the proxy, the git helper).
    pub fn unknown_connector_grant(&self, name: &str) -> crate::error::GrantError {
        crate::error::GrantError::UnknownConnector {
            name: name.to_owned(),
            known: self.connectors.iter().map(|c| c.name.clone()).collect(),
        }
    }

    /// The connectors of one provider, in file order.
    pub fn connectors_of<'a>(&'a self, provider: &'a str) -> impl Iterator<Item = &'a Connector> {
        self.connectors
            .iter()
            .filter(move |c| c.provider == provider)
    }

    /// A provider's requested scopes: the provider's defaults, then each of its connectors'
    /// scopes merged in configuration order.
    pub fn scope_request(&self, provider: &str) -> ScopeRequest {
        let mut request = self
            .provider(provider)
            .map(|p| ScopeRequest::with_defaults(&p.spec.default_scopes))
            .unwrap_or_default();
        // Only connectors that sign in as the person join the consent; a service account's
        // scopes are chosen when the admin creates it.
        for connector in self.connectors_of(provider) {
            if connector.auth == AuthMode::User {
                request.merge(&connector.name, &connector.spec.upstream_scopes);
            }
        }
        request
    }

    /// Scope lint of a provider's connectors (user and service modes).
    pub fn provider_findings(&self, provider: &str) -> Vec<Finding> {
        let Some(p) = self.provider(provider) else {
            return Vec::new();
        };
        let connectors: Vec<_> = self
            .connectors_of(provider)
            .filter(|c| matches!(c.auth, AuthMode::User | AuthMode::Service))
            .collect();
        let lint_input: Vec<_> = connectors
            .iter()
            .map(|c| LintConnector {
                name: &c.name,
                user_mode: c.auth == AuthMode::User,
                scopes: &c.spec.upstream_scopes,
            })
            .collect();
        lint(
            provider,
            p.spec.kind.rules(),
            p.spec.needs_offline_access,
            &lint_input,
        )
    }

    /// An editable copy of the file.
    pub(crate) fn edit(&self) -> Result<ConfigEdit> {
        let doc = self
            .text
            .parse::<toml_edit::DocumentMut>()
            .map_err(|err| ConfigError {
                file: self.path.clone(),
                line: err.span().map(|s| line_of_offset(&self.text, s.start)),
                key: None,
                message: err.message().to_owned(),
                fix: "correct the line above".to_owned(),
            })?;
        Ok(ConfigEdit {
            path: self.path.clone(),
            doc,
        })
    }
}

struct Resolver<'a> {
    path: &'a Path,
    text: &'a str,
}

impl Resolver<'_> {
    fn fail(&self, key: &[&str], message: String, fix: impl Into<String>) -> Error {
        ConfigError {
            file: self.path.to_owned(),
            line: line_of_key(self.text, key),
            key: Some(
                key.iter()
                    .filter(|k| !k.is_empty())
                    .copied()
                    .collect::<Vec<_>>()
                    .join("."),
            ),
            message,
            fix: fix.into(),
        }
        .into()
    }

    fn resolve(&self, file: ConfigFile, text: String) -> Result<Config> {
        let listen_text = file.proxy.listen.as_deref().unwrap_or(DEFAULT_PROXY_LISTEN);
        let listen: SocketAddr = listen_text.parse().map_err(|_| {
            self.fail(
                &["proxy", "listen"],
                format!("`{listen_text}` is not an address:port"),
                "write it like \"127.0.0.1:7391\" (port 0 picks a free port)",
            )
        })?;
        if !listen.ip().is_loopback() {
            return Err(self.fail(
                &["proxy", "listen"],
                format!(
                    "the proxy must listen on loopback only, not {}",
                    listen.ip()
                ),
                "use 127.0.0.1 or [::1]; other machines must never reach the proxy",
            ));
        }

        let mut catalog = Catalog::builtin();
        let base = self.path.parent().unwrap_or(Path::new("."));
        for manifest in &file.catalog.manifests {
            let full = if manifest.is_absolute() {
                manifest.clone()
            } else {
                base.join(manifest)
            };
            catalog.add_manifest_file(&full)?;
        }

        let mut providers = Vec::new();
        for (name, section) in &file.providers {
            providers.push(self.provider(&catalog, name, section)?);
        }
        let mut connectors = Vec::new();
        for (name, section) in &file.connectors {
            let connector = self.connector(&catalog, name, section)?;
            if !providers
                .iter()
                .any(|p: &Provider| p.name == connector.provider)
            {
                // A provider needs a table (and a 3LO app) only for connectors that sign in as
                // a person; service accounts and stored secrets use the preset as it is.
                let preset = catalog.provider(&connector.provider);
                if preset.is_some_and(ProviderSpec::needs_base_url) {
                    return Err(self.fail(
                        &["connectors", name, "provider"],
                        format!(
                            "connector `{name}` needs a `{}` provider with the instance's base URL",
                            connector.provider
                        ),
                        format!(
                            "run `latch provider add corp --preset {} --base-url https://...` \
                             (the client id is needed only to sign in as you), then set \
                             `provider = \"corp\"` on the connector",
                            connector.provider
                        ),
                    ));
                }
                let implicit = preset.filter(|spec| {
                    spec.client_type == ClientType::None || connector.auth != AuthMode::User
                });
                match implicit {
                    Some(spec) => providers.push(Provider {
                        name: connector.provider.clone(),
                        preset: connector.provider.clone(),
                        spec: spec.clone(),
                        client_id: None,
                        redirect_uri: None,
                        base_url: None,
                        ca_file: None,
                        client_cert: None,
                        configured: false,
                        oauth1: None,
                    }),
                    None => {
                        return Err(self.fail(
                            &["connectors", name, "provider"],
                            format!(
                                "connector `{name}` uses provider `{}`, which is not configured",
                                connector.provider
                            ),
                            format!(
                                "run `latch provider add {} --client-id ...` first (a connector \
                                 that signs in as you needs the provider's OAuth app), or name a \
                                 configured provider",
                                connector.provider
                            ),
                        ))
                    }
                }
            }
            let mut connector = connector;
            connector.oauth1 = providers
                .iter()
                .any(|p| p.name == connector.provider && p.oauth1.is_some());
            if connector.auth == AuthMode::OAuth1TwoLegged && !connector.oauth1 {
                return Err(self.fail(
                    &["connectors", name, "auth"],
                    format!(
                        "connector `{name}` signs as an OAuth 1.0a application link, but provider \
                         `{}` is not one",
                        connector.provider
                    ),
                    format!(
                        "run `latch provider add {} --preset {} --base-url https://... --oauth1 \
                         --consumer-key KEY`, or use another auth mode",
                        connector.provider, connector.spec.provider
                    ),
                ));
            }
            connectors.push(connector);
        }
        // `latch exec` gives each connector a variable; two connectors must never share one, and
        // `proxy` would overwrite LATCH_PROXY_URL.
        for (i, c) in connectors.iter().enumerate() {
            if crate::provider::catalog::RESERVED_CONNECTOR_NAMES.contains(&c.name.as_str()) {
                return Err(self.fail(
                    &["connectors", &c.name],
                    format!(
                        "`{}` is reserved: `latch exec` sets LATCH_PROXY_URL itself",
                        c.name
                    ),
                    "rename the [connectors.NAME] table (e.g. `proxy-api`)",
                ));
            }
            let var = crate::provider::catalog::exec_variable(&c.name);
            if let Some(other) = connectors[..i]
                .iter()
                .find(|o| crate::provider::catalog::exec_variable(&o.name) == var)
            {
                return Err(self.fail(
                    &["connectors", &c.name],
                    format!(
                        "connectors `{}` and `{}` would share the variable {var} in `latch exec`",
                        other.name, c.name
                    ),
                    "rename one of them",
                ));
            }
        }
        for c in &connectors {
            let Some(region) = c.region.as_deref() else {
                continue;
            };
            let regions = providers
                .iter()
                .find(|p| p.name == c.provider)
                .map(|p| &p.spec.regions);
            if !regions.is_some_and(|r| r.contains_key(region)) {
                let known: Vec<String> = regions
                    .map(|r| r.keys().cloned().collect())
                    .unwrap_or_default();
                return Err(self.fail(
                    &["connectors", &c.name, "region"],
                    format!("provider `{}` has no region `{region}`", c.provider),
                    if known.is_empty() {
                        "remove `region`".to_owned()
                    } else {
                        format!("use one of: {}", known.join(", "))
                    },
                ));
            }
        }
        // The 3LO app is needed only when a connector signs in as the person.
        for provider in &providers {
            let user_connector = connectors
                .iter()
                .find(|c| c.provider == provider.name && c.auth == AuthMode::User);
            if let Some(c) = user_connector {
                // An OAuth 1.0a link signs in with its key pair instead; an MCP server's
                // client registers itself at the first sign-in.
                if provider.spec.client_type != ClientType::None
                    && provider.client_id.is_none()
                    && provider.oauth1.is_none()
                    && !provider.spec.mcp_discovery
                {
                    return Err(self.fail(
                        &["providers", &provider.name],
                        format!(
                            "provider `{}` has no `client_id`, which connector `{}` needs to sign \
                             in as you",
                            provider.name, c.name
                        ),
                        format!(
                            "run `latch provider add {} --client-id ...` with the app's id from \
                             the developer console, or use another auth mode for `{}`",
                            provider.name, c.name
                        ),
                    ));
                }
            }
        }
        let seconds = |key: &str, value: Option<u64>, default: u64| match value {
            Some(0) => Err(self.fail(
                &["network", key],
                format!("`{key} = 0` would give up at once"),
                format!("use a number of seconds such as {default}"),
            )),
            // A day is longer than any of these should ever be; bigger is a typo.
            Some(secs) if secs > 86_400 => Err(self.fail(
                &["network", key],
                format!("`{key} = {secs}` is longer than a day"),
                format!("use a number of seconds such as {default}"),
            )),
            Some(secs) => Ok(std::time::Duration::from_secs(secs)),
            None => Ok(std::time::Duration::from_secs(default)),
        };
        let http_timeout = seconds("timeout_secs", file.network.timeout_secs, 30)?;
        let refresh_timeout = seconds(
            "refresh_timeout_secs",
            file.network.refresh_timeout_secs,
            300,
        )?;
        let caller_wait = seconds("caller_wait_secs", file.network.caller_wait_secs, 15)?;
        let upstream_idle = seconds("upstream_idle_secs", file.network.upstream_idle_secs, 90)?;
        let audit_keep_days = match file.audit.keep_days {
            Some(0) => {
                return Err(self.fail(
                    &["audit", "keep_days"],
                    "`keep_days = 0` would delete every row as it is written".to_owned(),
                    "use a number of days such as 90",
                ))
            }
            Some(days) if days > 36_500 => {
                return Err(self.fail(
                    &["audit", "keep_days"],
                    format!("`keep_days = {days}` is over a hundred years"),
                    "use a number of days such as 90",
                ))
            }
            Some(days) => days,
            None => 90,
        };
        let secret_store =
            match (file.keychain.store.as_deref(), &file.keychain.file) {
                (None | Some("os"), None) => SecretStoreChoice::Os,
                (Some("file"), path) => SecretStoreChoice::File(path.as_ref().map(|p| {
                    if p.is_absolute() {
                        p.clone()
                    } else {
                        self.path.parent().unwrap_or(Path::new(".")).join(p)
                    }
                })),
                (None | Some("os"), Some(_)) => {
                    return Err(self.fail(
                        &["keychain", "file"],
                        "`file` is used only with store = \"file\"".to_owned(),
                        "add `store = \"file\"`, or remove `file`",
                    ))
                }
                (Some(other), _) => return Err(self.fail(
                    &["keychain", "store"],
                    format!("`store = \"{other}\"` is neither \"os\" nor \"file\""),
                    "use store = \"os\" (the OS keychain) or store = \"file\" (an encrypted file)",
                )),
            };
        Ok(Config {
            secret_store,
            path: self.path.to_owned(),
            text,
            listen,
            http_timeout,
            refresh_timeout,
            caller_wait,
            upstream_idle,
            audit_keep_days,
            catalog,
            manifests: file.catalog.manifests,
            providers,
            connectors,
        })
    }

    fn provider(
        &self,
        catalog: &Catalog,
        name: &str,
        section: &ProviderSection,
    ) -> Result<Provider> {
        check_name(name)
            .map_err(|m| self.fail(&["providers", name], m, "rename the [providers.NAME] table"))?;
        let preset = section.preset.clone().unwrap_or_else(|| name.to_owned());
        let Some(spec) = catalog.provider(&preset) else {
            let known: Vec<_> = catalog.providers().map(|(n, _)| n.clone()).collect();
            return Err(self.fail(
                &[
                    "providers",
                    name,
                    if section.preset.is_some() {
                        "preset"
                    } else {
                        ""
                    },
                ],
                format!("there is no provider preset `{preset}`"),
                format!(
                    "set `preset` to one of {} or add a manifest that defines it",
                    known.join(", ")
                ),
            ));
        };
        let mut spec = spec.clone();
        for (key, value, target) in [
            (
                "authorize_url",
                &section.authorize_url,
                &mut spec.authorize_url,
            ),
            ("token_url", &section.token_url, &mut spec.token_url),
            ("revoke_url", &section.revoke_url, &mut spec.revoke_url),
            (
                "resources_url",
                &section.resources_url,
                &mut spec.resources_url,
            ),
            ("me_url", &section.me_url, &mut spec.me_url),
            (
                if section.mcp_url.is_some() {
                    "mcp_url"
                } else {
                    "api_base"
                },
                // One name for an MCP server's endpoint; it is the connector's API base.
                if section.mcp_url.is_some() {
                    &section.mcp_url
                } else {
                    &section.api_base
                },
                &mut spec.api_base,
            ),
            ("site_url", &section.site_url, &mut spec.site_url),
            (
                "connect_token_url",
                &section.connect_token_url,
                &mut spec.connect_token_url,
            ),
            ("git_url", &section.git_url, &mut spec.git_url),
        ] {
            if let Some(value) = value {
                let checked = if key == "site_url" {
                    if !value.contains("{site}") {
                        return Err(self.fail(
                            &["providers", name, key],
                            "`site_url` needs `{site}` where the site's name goes".to_owned(),
                            "write it like \"https://{site}.atlassian.net\"",
                        ));
                    }
                    value.replace("{site}", "site")
                } else {
                    value.clone()
                };
                check_url(&checked).map_err(|m| {
                    self.fail(&["providers", name, key], m, "write a full https:// URL")
                })?;
                *target = Some(value.clone());
            }
        }
        if spec.api_base.as_deref() == Some(crate::provider::catalog::MCP_URL_PLACEHOLDER) {
            return Err(self.fail(
                &["providers", name],
                format!("preset `{preset}` needs the MCP server's endpoint"),
                format!(
                    "set `mcp_url = \"https://...\"` under [providers.{name}], or `latch provider \
                     add {name} --preset {preset} --mcp-url URL`"
                ),
            ));
        }
        let base_url =
            match (&section.base_url, spec.needs_base_url()) {
                (Some(base), true) => {
                    let url = check_url(base).map_err(|m| {
                        self.fail(
                            &["providers", name, "base_url"],
                            m,
                            "write the instance's URL, like \"https://jira.corp.example\"",
                        )
                    })?;
                    if url.query().is_some() || url.fragment().is_some() {
                        return Err(self.fail(
                            &["providers", name, "base_url"],
                            format!("`base_url = \"{base}\"` has a query or fragment"),
                            "write the instance's URL only, like \"https://jira.corp.example\" or \
                         \"https://corp.example/jira\"",
                        ));
                    }
                    let base = base.trim_end_matches('/').to_owned();
                    spec = spec.with_base_url(&base);
                    Some(base)
                }
                (None, true) => {
                    return Err(self.fail(
                        &["providers", name],
                        format!(
                        "provider `{name}` (preset `{preset}`) has no `base_url`: its endpoints \
                         are on your instance"
                    ),
                        format!(
                            "run `latch provider add {name} --preset {preset} --base-url \
                         https://...` or set `base_url = \"https://...\"` under [providers.{name}]"
                        ),
                    ))
                }
                (Some(_), false) => return Err(self.fail(
                    &["providers", name, "base_url"],
                    format!("preset `{preset}` has fixed endpoints; `base_url` is for Data Center"),
                    "remove `base_url` (override single endpoints with `token_url`, … if needed)",
                )),
                (None, false) => None,
            };
        let client_cert = match &section.client_cert {
            Some(path) => {
                let full = if path.is_absolute() {
                    path.clone()
                } else {
                    self.path.parent().unwrap_or(Path::new(".")).join(path)
                };
                Some(crate::net::tls::ClientCert::read(&full).map_err(|err| {
                    self.fail(
                        &["providers", name, "client_cert"],
                        err.to_string(),
                        format!(
                            "point `client_cert` at the PEM certificate your gateway's admin \
                             issued, or import it again: `latch provider client-cert {name} \
                             --cert FILE --key FILE`"
                        ),
                    )
                })?)
            }
            None => None,
        };
        let ca_file = match &section.ca_file {
            Some(path) => {
                let full = if path.is_absolute() {
                    path.clone()
                } else {
                    self.path.parent().unwrap_or(Path::new(".")).join(path)
                };
                crate::net::tls::read_ca_file(&full).map_err(|err| {
                    self.fail(
                        &["providers", name, "ca_file"],
                        err.to_string(),
                        "point `ca_file` at a PEM file with your CA's certificate (ask your \
                         admin for the CA that signs the instance's certificate)",
                    )
                })?;
                Some(full)
            }
            None => None,
        };
        if let Some(uri) = &section.redirect_uri {
            check_redirect_uri(uri).map_err(|m| {
                self.fail(
                    &["providers", name, "redirect_uri"],
                    m,
                    "use a loopback callback with an explicit port, such as \
                     \"http://127.0.0.1:8734/callback\", and register the same URL in the \
                     provider's developer console",
                )
            })?;
        }
        let oauth1 = match (section.oauth.as_deref(), &section.consumer_key) {
            (None | Some("2.0"), None) => None,
            (None | Some("2.0"), Some(_)) => {
                return Err(self.fail(
                    &["providers", name, "consumer_key"],
                    "`consumer_key` is used only by OAuth 1.0a application links".to_owned(),
                    "add `oauth = \"1.0a\"`, or remove `consumer_key`",
                ))
            }
            (Some("1.0a"), consumer_key) => {
                let Some(endpoints) = spec.oauth1.clone() else {
                    return Err(self.fail(
                        &["providers", name, "oauth"],
                        format!("preset `{preset}` has no OAuth 1.0a application links"),
                        "OAuth 1.0a is for Jira and Confluence Data Center (`jira-dc`, \
                         `confluence-dc`); remove `oauth`",
                    ));
                };
                let Some(consumer_key) = consumer_key.clone().filter(|k| !k.trim().is_empty())
                else {
                    return Err(self.fail(
                        &["providers", name],
                        format!("provider `{name}` is an OAuth 1.0a link without a consumer key"),
                        "add `consumer_key = \"...\"`: the one the link's incoming \
                         authentication uses",
                    ));
                };
                if section.client_id.is_some() {
                    return Err(self.fail(
                        &["providers", name, "client_id"],
                        format!(
                            "provider `{name}` is an OAuth 1.0a link; `client_id` belongs to \
                             OAuth 2.0 links"
                        ),
                        "remove `client_id`, or `oauth` and `consumer_key` for an OAuth 2.0 link \
                         (add a second provider to use both)",
                    ));
                }
                Some(OAuth1Link {
                    consumer_key,
                    endpoints,
                })
            }
            (Some(other), _) => {
                return Err(self.fail(
                    &["providers", name, "oauth"],
                    format!("`oauth = \"{other}\"` is neither \"2.0\" nor \"1.0a\""),
                    "use oauth = \"1.0a\" for an OAuth 1.0a application link, or remove it",
                ))
            }
        };
        Ok(Provider {
            oauth1,
            name: name.to_owned(),
            preset,
            redirect_uri: section
                .redirect_uri
                .clone()
                .or_else(|| spec.default_redirect_uri.clone()),
            spec,
            client_id: section.client_id.clone().filter(|id| !id.trim().is_empty()),
            base_url,
            ca_file,
            client_cert,
            configured: true,
        })
    }

    fn connector(
        &self,
        catalog: &Catalog,
        name: &str,
        section: &ConnectorSettings,
    ) -> Result<Connector> {
        check_name(name).map_err(|m| {
            self.fail(
                &["connectors", name],
                m,
                "rename the [connectors.NAME] table",
            )
        })?;
        let kind = section.kind.clone().unwrap_or_else(|| name.to_owned());
        let Some(spec) = catalog.connector(&kind) else {
            let known: Vec<_> = catalog.connectors().map(|(n, _)| n.clone()).collect();
            return Err(self.fail(
                &[
                    "connectors",
                    name,
                    if section.kind.is_some() { "type" } else { "" },
                ],
                format!("there is no connector type `{kind}` in the catalog"),
                format!(
                    "use one of {} (set `type` for a second instance), or add a manifest",
                    known.join(", ")
                ),
            ));
        };
        let auth = match &section.auth {
            None => spec.auth_modes[0],
            Some(text) => {
                let mode = AuthMode::parse(text).filter(|m| spec.auth_modes.contains(m));
                mode.ok_or_else(|| {
                    self.fail(
                        &["connectors", name, "auth"],
                        format!("connector `{name}` does not support auth = \"{text}\""),
                        format!(
                            "use one of: {}",
                            spec.auth_modes
                                .iter()
                                .map(|m| m.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    )
                })?
            }
        };
        let scope_set = match &section.scope_set {
            None => ScopeSet::Classic,
            Some(text) => ScopeSet::parse(text).ok_or_else(|| {
                self.fail(
                    &["connectors", name, "scope_set"],
                    format!("`scope_set = \"{text}\"` is neither classic nor granular"),
                    "use scope_set = \"classic\" or \"granular\"",
                )
            })?,
        };
        let mut spec = spec.clone();
        if scope_set == ScopeSet::Granular {
            let Some(granular) = spec.granular_scopes.clone() else {
                return Err(self.fail(
                    &["connectors", name, "scope_set"],
                    format!("connector type `{kind}` has no granular scope set"),
                    "remove `scope_set`, or add `granular_scopes` to its manifest",
                ));
            };
            spec.upstream_scopes = granular;
        }
        let token = match &section.token {
            None => None,
            Some(text) => Some(ApiTokenKind::parse(text).ok_or_else(|| {
                self.fail(
                    &["connectors", name, "token"],
                    format!("`token = \"{text}\"` is neither scoped nor classic"),
                    "use token = \"scoped\" (works on the gateway) or \"classic\" (works on the \
                     site URL), or remove it and let Latch find out",
                )
            })?),
        };
        let scopes = match &section.scopes {
            None => None,
            Some(list) => Some(ScopeList::parse(&list.join(" ")).map_err(|e| {
                self.fail(
                    &["connectors", name, "scopes"],
                    e.to_string(),
                    "list scopes like [\"read:jira-work\"]",
                )
            })?),
        };
        for (key, value, needs) in [
            ("client_id", &section.client_id, AuthMode::Service),
            ("audience", &section.audience, AuthMode::Service),
            ("email", &section.email, AuthMode::ApiToken),
            ("username", &section.username, AuthMode::Basic),
            ("account_id", &section.account_id, AuthMode::ConnectUser),
        ] {
            // A 2-legged link names the user it impersonates with `username` too.
            let also = key == "username" && auth == AuthMode::OAuth1TwoLegged;
            if value.is_some() && auth != needs && !also {
                return Err(self.fail(
                    &["connectors", name, key],
                    format!(
                        "`{key}` is used only with auth = \"{}\", but connector `{name}` uses \
                         \"{}\"",
                        needs.as_str(),
                        auth.as_str()
                    ),
                    format!("remove `{key}`, or set auth = \"{}\"", needs.as_str()),
                ));
            }
        }
        if section.scopes.is_some() && !matches!(auth, AuthMode::Service | AuthMode::ConnectUser) {
            return Err(self.fail(
                &["connectors", name, "scopes"],
                "`scopes` is used only by service accounts (auth = \"service\") and Connect apps \
                 acting as a user (auth = \"connect-user\"); other modes request the \
                 connector's catalog scopes"
                    .to_owned(),
                "remove `scopes`",
            ));
        }
        let connect = matches!(auth, AuthMode::Connect | AuthMode::ConnectUser);
        if connect && section.site.is_some() {
            return Err(self.fail(
                &["connectors", name, "site"],
                format!(
                    "connector `{name}` uses a Connect app, whose installed payload names its site \
                     (`baseUrl`)"
                ),
                "remove `site`; store the app's installed payload with `latch credential set`",
            ));
        }
        if auth == AuthMode::ConnectUser && section.account_id.is_none() {
            return Err(self.fail(
                &["connectors", name],
                format!("connector `{name}` acts as a user but names none"),
                "add `account_id = \"...\"` (the Atlassian account id to act as)",
            ));
        }
        if auth == AuthMode::None && spec.site_api_base.is_some() && section.site.is_none() {
            return Err(self.fail(
                &["connectors", name],
                format!(
                    "connector `{name}` calls anonymously, which only the site itself answers \
                     (the API gateway refuses anonymous calls)"
                ),
                "add `site = \"acme\"` (the site's name, host or URL)",
            ));
        }
        let intercept_hosts = section.intercept_hosts.clone().unwrap_or_default();
        if let Some(bad) = intercept_hosts
            .iter()
            .find(|h| parse_intercept_host(h).is_none())
        {
            return Err(self.fail(
                &["connectors", name, "intercept_hosts"],
                format!("`{bad}` is not a host name with an optional port"),
                "write names like \"jira.corp.example\" or \"jira.corp.example:8443\" (no \
                 scheme, no wildcard, no IP address)",
            ));
        }
        if section.token.is_some() && auth != AuthMode::ApiToken {
            return Err(self.fail(
                &["connectors", name, "token"],
                "`token` is used only with auth = \"api-token\"".to_owned(),
                "remove `token`",
            ));
        }
        Ok(Connector {
            name: name.to_owned(),
            kind,
            provider: section
                .provider
                .clone()
                .unwrap_or_else(|| spec.provider.clone()),
            spec,
            auth,
            site: section.site.clone().filter(|s| !s.trim().is_empty()),
            account_id: section.account_id.clone(),
            oauth1: false,
            email: section.email.clone(),
            client_id: section.client_id.clone(),
            scopes,
            audience: section.audience.clone(),
            token,
            username: section.username.clone(),
            scope_set,
            region: section.region.clone(),
            intercept_hosts,
        })
    }
}

/// The callback must be loopback http with an explicit port: Latch listens there, and
/// Atlassian matches it byte for byte.
pub fn check_redirect_uri(text: &str) -> std::result::Result<url::Url, String> {
    let url = url::Url::parse(text).map_err(|err| format!("{text:?} is not a URL ({err})"))?;
    let loopback = matches!(url.host(), Some(url::Host::Ipv4(ip)) if ip.is_loopback())
        || matches!(url.host(), Some(url::Host::Ipv6(ip)) if ip.is_loopback())
        || matches!(url.host(), Some(url::Host::Domain(d)) if d.eq_ignore_ascii_case("localhost"));
    if url.scheme() != "http" || !loopback {
        return Err(format!(
            "redirect_uri {text:?} must be an http:// loopback URL: Latch receives the callback \
             on this machine"
        ));
    }
    if url.port().is_none() {
        return Err(format!(
            "redirect_uri {text:?} has no port; providers match the callback exactly, so Latch \
             must know which port to listen on"
        ));
    }
    Ok(url)
}

/// A pending change to latch.toml, written atomically.
pub(crate) struct ConfigEdit {
    path: PathBuf,
    doc: toml_edit::DocumentMut,
}

impl ConfigEdit {
    fn table<'a>(
        &'a mut self,
        section: &str,
        name: &str,
    ) -> Result<&'a mut dyn toml_edit::TableLike> {
        let unsupported = |path: &Path| -> Error {
            ConfigError {
                file: path.to_owned(),
                line: None,
                key: Some(format!("{section}.{name}")),
                message: format!("`{section}.{name}` is not written as a table"),
                fix: format!("write it as a [{section}.{name}] table, or edit it by hand"),
            }
            .into()
        };
        let path = self.path.clone();
        let parent = self
            .doc
            .as_table_mut()
            .entry(section)
            .or_insert_with(|| {
                let mut parent = toml_edit::Table::new();
                parent.set_implicit(true);
                toml_edit::Item::Table(parent)
            })
            .as_table_like_mut()
            .ok_or_else(|| unsupported(&path))?;
        if !parent.contains_key(name) {
            parent.insert(name, toml_edit::Item::Table(toml_edit::Table::new()));
        }
        parent
            .get_mut(name)
            .and_then(|item| item.as_table_like_mut())
            .ok_or_else(|| unsupported(&path))
    }

    /// Sets a list value of `[section.name]` (`None` removes the key).
    pub(crate) fn set_list(
        &mut self,
        section: &str,
        name: &str,
        key: &str,
        values: Option<&[String]>,
    ) -> Result<()> {
        let table = self.table(section, name)?;
        match values {
            Some(values) => {
                let mut array = toml_edit::Array::new();
                for v in values {
                    array.push(v.as_str());
                }
                table.insert(key, toml_edit::value(array));
            }
            None => {
                table.remove(key);
            }
        }
        Ok(())
    }

    /// Sets keys of `[section.name]`, creating it; `None` values remove the key.
    pub(crate) fn set(
        &mut self,
        section: &str,
        name: &str,
        values: &[(&str, Option<&str>)],
    ) -> Result<()> {
        let table = self.table(section, name)?;
        for (key, value) in values {
            match value {
                Some(v) => {
                    table.insert(key, toml_edit::value(*v));
                }
                None => {
                    table.remove(key);
                }
            }
        }
        Ok(())
    }

    /// Whether `[section.name]` exists.
    pub(crate) fn has(&self, section: &str, name: &str) -> bool {
        self.doc
            .get(section)
            .and_then(|s| s.as_table_like())
            .is_some_and(|t| t.contains_key(name))
    }

    /// Removes `[section.name]`.
    pub(crate) fn remove(&mut self, section: &str, name: &str) -> bool {
        self.doc
            .get_mut(section)
            .and_then(|s| s.as_table_like_mut())
            .and_then(|t| t.remove(name))
            .is_some()
    }

    /// Appends a manifest path to `[catalog] manifests`.
    pub(crate) fn add_manifest(&mut self, path: &str) {
        let root = self.doc.as_table_mut();
        if !root.contains_table("catalog") {
            root.insert("catalog", toml_edit::Item::Table(toml_edit::Table::new()));
        }
        let catalog = &mut root["catalog"];
        if catalog.get("manifests").is_none() {
            catalog["manifests"] = toml_edit::value(toml_edit::Array::new());
        }
        if let Some(list) = catalog["manifests"].as_array_mut() {
            if !list.iter().any(|v| v.as_str() == Some(path)) {
                list.push(path);
            }
        }
    }

    /// The new text, checked by parsing it as the real loader would.
    pub(crate) fn validate(&self) -> Result<Config> {
        Config::parse(&self.path, self.doc.to_string())
    }

    /// Writes the file atomically (temp file + rename), so a crash never leaves half a file.
    pub(crate) fn write(self) -> Result<()> {
        let text = self.doc.to_string();
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let tmp = dir.join(format!(".latch.toml.{}.tmp", std::process::id()));
        let io = |source| Error::Write {
            path: self.path.clone(),
            source,
        };
        std::fs::write(&tmp, text).map_err(io)?;
        home::private_file(&tmp);
        std::fs::rename(&tmp, &self.path).map_err(io)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config> {
        Config::parse(Path::new("/h/latch.toml"), text.to_owned())
    }

    fn err(text: &str) -> ConfigError {
        match parse(text) {
            Err(Error::Config(e)) => e,
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn empty_file_is_empty_config() {
        let config = parse("").unwrap();
        assert!(config.providers.is_empty() && config.connectors.is_empty());
        assert_eq!(config.listen.to_string(), DEFAULT_PROXY_LISTEN);
    }

    #[test]
    fn the_design_example_parses() {
        let config = parse(
            r#"
[proxy]
listen = "127.0.0.1:7391"

[providers.atlassian]
preset = "atlassian"
client_id = "abc"
redirect_uri = "http://127.0.0.1:8734/callback"
token_url = "http://127.0.0.1:9000/oauth/token"

[connectors.jira]
provider = "atlassian"
auth = "user"
site = "acme"

[connectors.jira-two]
type = "jira"
"#,
        )
        .unwrap();
        let p = config.provider("atlassian").unwrap();
        assert_eq!(
            p.spec.token_url.as_deref(),
            Some("http://127.0.0.1:9000/oauth/token")
        );
        assert_eq!(
            p.spec.authorize_url.as_deref(),
            Some("https://auth.atlassian.com/authorize")
        );
        let two = config.connector("jira-two").unwrap();
        assert_eq!(
            (two.kind.as_str(), two.provider.as_str()),
            ("jira", "atlassian")
        );
        assert_eq!(two.auth, AuthMode::User);
    }

    #[test]
    fn errors_name_file_line_key_and_fix() {
        let e = err("[providers.atlassian]\nclient_id = \"x\"\n\n[connectors.jira]\nprovider = \"atlasian\"\n");
        assert_eq!(e.line, Some(5));
        assert_eq!(e.key.as_deref(), Some("connectors.jira.provider"));
        assert!(e.fix.contains("latch provider add atlasian"), "{e}");
        assert!(e.to_string().starts_with("/h/latch.toml:5: "), "{e}");

        let e = err("[proxy]\nlisten = \"0.0.0.0:7391\"\n");
        assert_eq!(e.line, Some(2));
        assert!(e.message.contains("loopback"));

        let e = err(
            "[providers.atlassian]\nclient_id = \"x\"\nredirect_uri = \"http://127.0.0.1/cb\"\n",
        );
        assert_eq!(e.line, Some(3));
        assert!(e.message.contains("no port"));

        let e = err(
            "[providers.atlassian]\nclient_id = \"x\"\ntoken_url = \"http://evil.example/t\"\n",
        );
        assert_eq!(e.line, Some(3));

        let e = err("[connectors.jira]\nprovder = \"atlassian\"\n");
        assert_eq!(e.line, Some(2));
        assert!(e.message.contains("provder"), "{e}");

        let e = err("[connectors.opsgenie]\nauth = \"user\"\n");
        assert_eq!(e.line, Some(2));
        assert!(e.fix.contains("api-key"), "{e}");

        let e = err("[connectors.jiraa]\n");
        assert!(e.message.contains("jiraa") && e.fix.contains("jira"), "{e}");
    }

    #[test]
    fn providers_without_oauth_need_no_table() {
        let config = parse("[connectors.opsgenie]\n").unwrap();
        assert!(!config.provider("opsgenie").unwrap().configured);
    }

    #[test]
    fn edits_keep_comments_and_round_trip() {
        let config = parse("# mine\n[proxy]\nlisten = \"127.0.0.1:7391\" # keep\n").unwrap();
        let mut edit = config.edit().unwrap();
        edit.set("providers", "atlassian", &[("client_id", Some("abc"))])
            .unwrap();
        edit.set("connectors", "jira", &[("provider", Some("atlassian"))])
            .unwrap();
        let text = edit.doc.to_string();
        assert!(text.contains("# mine") && text.contains("# keep"), "{text}");
        assert!(text.contains("[providers.atlassian]"), "{text}");
        let config = edit.validate().unwrap();
        assert_eq!(config.connectors.len(), 1);
        let mut edit = config.edit().unwrap();
        assert!(edit.remove("connectors", "jira"));
        assert!(!edit.has("connectors", "jira"));
    }
}

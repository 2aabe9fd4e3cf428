//! The use cases every face (CLI, desktop app, proxy) calls: one `Latch` per home folder.

pub mod audit;
pub mod exec;
pub mod git_credential;
pub mod sign_in;

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use time::OffsetDateTime;

use crate::clock::{fmt_time, now_rfc3339, Clock, SystemClock};
use crate::config::home::Home;
use crate::config::{check_redirect_uri, Config, Provider, ScopeSet};
use crate::credential::{CheckResult, CredentialCheck, CredentialKind};
use crate::error::{Error, GrantError, Result};
use crate::finding::Finding;
use crate::health::status::StatusReport;
use crate::ports::{SecretKey, SecretStore};
use crate::provider::catalog::{check_name, AuthMode, ClientType};
use crate::provider::scope::{MergeDiff, Scope, ScopeList, ScopeRequest};
use crate::secret::Secret;
use latch_store::{ApiTokenKind, GrantId};

/// Endpoint overrides for `provider add` (Data Center, gov cloud, tests).
#[derive(Clone, Debug, Default)]
pub struct EndpointOverrides {
    /// Authorize endpoint.
    pub authorize_url: Option<String>,
    /// Token endpoint.
    pub token_url: Option<String>,
    /// Revocation endpoint.
    pub revoke_url: Option<String>,
    /// accessible-resources endpoint.
    pub resources_url: Option<String>,
    /// Account endpoint.
    pub me_url: Option<String>,
    /// API gateway.
    pub api_base: Option<String>,
    /// Site URL template (`https://{site}.atlassian.net`).
    pub site_url: Option<String>,
}

/// `latch provider add`.
#[derive(Clone, Debug, Default)]
pub struct AddProvider {
    /// Name (the latch.toml table).
    pub name: String,
    /// Catalog preset; defaults to the name.
    pub preset: Option<String>,
    /// OAuth client id.
    pub client_id: Option<String>,
    /// Registered callback; defaults to the preset's.
    pub redirect_uri: Option<String>,
    /// The instance's base URL (Data Center presets).
    pub base_url: Option<String>,
    /// A PEM file of CA certificates to trust for this provider (absolute).
    pub ca_file: Option<std::path::PathBuf>,
    /// Endpoint overrides.
    pub endpoints: EndpointOverrides,
}

/// What `provider add` did.
#[derive(Clone, Debug, serde::Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ProviderAdded {
    /// Name.
    pub name: String,
    /// Whether it replaced an existing provider.
    pub updated: bool,
    /// Whether a client secret was stored in the keychain.
    pub secret_stored: bool,
    /// The callback to register in the provider's console, byte for byte.
    pub redirect_uri: Option<String>,
    /// Where to register it.
    pub console_url: Option<String>,
    /// Whether an OAuth app (client id) is configured: without one, only service accounts and
    /// stored secrets use the provider.
    pub has_app: bool,
}

/// `latch connector add`.
#[derive(Clone, Debug, Default)]
pub struct AddConnector {
    /// Name (the latch.toml table and the proxy route).
    pub name: String,
    /// Catalog entry; defaults to the name.
    pub kind: Option<String>,
    /// Provider; defaults to the catalog entry's.
    pub provider: Option<String>,
    /// Auth mode; defaults to the catalog entry's first.
    pub auth: Option<AuthMode>,
    /// Site.
    pub site: Option<String>,
    /// Account e-mail (`api-token`).
    pub email: Option<String>,
    /// Service-account client id (`service`).
    pub client_id: Option<String>,
    /// Service-account scopes to request (`service`; default: none).
    pub scopes: Option<Vec<String>>,
    /// Service-account `audience` (`service`).
    pub audience: Option<String>,
    /// Where an API token works, pinned (`api-token`; default: found out when stored).
    pub token: Option<ApiTokenKind>,
    /// User name (`basic`).
    pub username: Option<String>,
    /// Which scope set to request.
    pub scope_set: Option<ScopeSet>,
    /// Provider region (`eu`).
    pub region: Option<String>,
}

/// `latch connector set`: what to change (`None` leaves it).
#[derive(Clone, Debug, Default)]
pub struct ConnectorChange {
    /// The site (name, host, URL or cloud id); `Some("")` unbinds it.
    pub site: Option<String>,
    /// The scope set.
    pub scope_set: Option<ScopeSet>,
}

/// What `connector set` did.
#[derive(Clone, Debug, serde::Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ConnectorChanged {
    /// Connector name.
    pub name: String,
    /// Its site now.
    pub site: Option<String>,
    /// Its scope set now.
    pub scope_set: ScopeSet,
    /// Scopes its provider's request gains and no longer has (a scope-set change).
    pub requested_added: Vec<Scope>,
    /// Scopes no connector requests any more.
    pub requested_removed: Vec<Scope>,
    /// Whether the grant lacks scopes the connector now requires (a new consent follows).
    pub needs_consent: bool,
}

/// What `latch credential remove` did.
#[derive(Clone, Debug, serde::Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct CredentialRemoved {
    /// Connector.
    pub connector: String,
    /// Whether a keychain item existed.
    pub deleted: bool,
}

/// What `connector add` did to its provider's scope request.
#[derive(Clone, Debug, serde::Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ConnectorAdded {
    /// Connector name.
    pub name: String,
    /// Provider name.
    pub provider: String,
    /// Its auth mode.
    pub auth: AuthMode,
    /// Scopes newly requested / already requested and now shared.
    pub diff: MergeDiff,
    /// The provider's whole request after the merge, with attribution.
    pub requested: ScopeRequest,
    /// Lint findings for the provider after the merge.
    pub findings: Vec<Finding>,
    /// Whether the grant lacks the new scopes (sign in again to consent).
    pub needs_step_up: bool,
}

/// What adding a connector would change (nothing is saved).
#[derive(Clone, Debug, serde::Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ConnectorPreview {
    /// Connector name.
    pub name: String,
    /// Catalog type.
    #[serde(rename = "type")]
    pub kind: String,
    /// Provider it signs in through.
    pub provider: String,
    /// Auth mode it would use.
    pub auth: AuthMode,
    /// Scopes the provider would newly request / already requests.
    pub diff: MergeDiff,
    /// The provider's whole request after the merge, with attribution.
    pub requested: ScopeRequest,
    /// Whether the current grant lacks its scopes (a re-consent would follow).
    pub needs_step_up: bool,
}

/// What `connector remove` did.
#[derive(Clone, Debug, serde::Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ConnectorRemoved {
    /// Connector name.
    pub name: String,
    /// Provider name.
    pub provider: String,
    /// Scopes no connector requests any more (the next consent asks for less).
    pub no_longer_requested: Vec<Scope>,
}

/// What `latch credential set` did.
#[derive(Clone, Debug, serde::Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct CredentialStored {
    /// Connector.
    pub connector: String,
    /// Its auth mode.
    pub auth: AuthMode,
    /// For service accounts: `ok`, or why the first token request failed.
    pub service_token: Option<String>,
    /// What checking it found.
    pub check: CredentialCheck,
    /// For API tokens: where it works (`scoped`: the gateway; `classic`: the site URL).
    pub token_kind: Option<&'static str>,
    /// The expiry the person gave.
    pub expires_at: Option<String>,
}

/// One Latch home: configuration, metadata database and keychain.
pub struct Latch {
    home: Home,
    config: Arc<Config>,
    store: Arc<Mutex<latch_store::Store>>,
    secrets: Arc<dyn SecretStore>,
    clock: Arc<dyn Clock>,
    home_id: String,
}

impl Latch {
    /// Opens a home folder, creating the database on first use.
    pub fn open(home: Home, secrets: Arc<dyn SecretStore>) -> Result<Self> {
        Self::open_with_clock(home, secrets, Arc::new(SystemClock))
    }

    /// Opens a home folder with the secret store its latch.toml chooses (`[keychain] store`):
    /// the configuration is read once, and `choose` is given it.
    pub fn open_choosing(
        home: Home,
        choose: impl FnOnce(
            &Home,
            &Config,
        )
            -> std::result::Result<Arc<dyn SecretStore>, crate::ports::SecretStoreError>,
    ) -> Result<Self> {
        home.ensure()?;
        let config = Config::load(home.config_file())?;
        let secrets = choose(&home, &config)?;
        Self::open_loaded(home, config, secrets, Arc::new(SystemClock))
    }

    /// Opens a home folder with a clock of the caller's (tests).
    pub fn open_with_clock(
        home: Home,
        secrets: Arc<dyn SecretStore>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self> {
        home.ensure()?;
        let config = Config::load(home.config_file())?;
        Self::open_loaded(home, config, secrets, clock)
    }

    fn open_loaded(
        home: Home,
        mut config: Config,
        secrets: Arc<dyn SecretStore>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self> {
        let db = home.database();
        let store = latch_store::Store::open(&db).map_err(|source| Error::Store {
            path: db.clone(),
            source,
        })?;
        crate::upstream::discovery::apply_cached(&mut config, &store);
        let home_id = store
            .meta_init("home_id", &random_hex(8))
            .map_err(|source| Error::Store { path: db, source })?;
        Ok(Self {
            home,
            config: Arc::new(config),
            store: Arc::new(Mutex::new(store)),
            secrets,
            clock,
            home_id,
        })
    }

    /// The current time by this home's clock.
    pub fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    /// The configuration as loaded.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The home folder.
    pub fn home(&self) -> &Home {
        &self.home
    }

    /// This home's id; it prefixes every keychain item so that two homes never share one.
    pub fn home_id(&self) -> &str {
        &self.home_id
    }

    /// The error for a failed database call on this home.
    pub fn store_err(&self, source: latch_store::StoreError) -> Error {
        Error::Store {
            path: self.home.database(),
            source,
        }
    }

    /// The keychain item of a provider's client secret.
    pub fn client_secret_key(&self, provider: &str) -> SecretKey {
        crate::grant::store::client_secret_key(&self.home_id, provider)
    }

    fn unknown_connector(&self, name: &str) -> Error {
        Error::UnknownConnector {
            name: name.to_owned(),
            known: self
                .config
                .connectors
                .iter()
                .map(|c| c.name.clone())
                .collect(),
        }
    }

    fn provider_or_err(&self, name: &str) -> Result<&Provider> {
        self.config
            .provider(name)
            .ok_or_else(|| Error::UnknownProvider {
                name: name.to_owned(),
                known: self
                    .config
                    .providers
                    .iter()
                    .map(|p| p.name.clone())
                    .collect(),
            })
    }

    /// Adds (or updates) a provider. The client secret goes to the keychain first; latch.toml
    /// is written only when that worked, so a failure leaves everything as it was.
    pub fn add_provider(
        &mut self,
        request: AddProvider,
        secret: Option<Secret>,
    ) -> Result<ProviderAdded> {
        check_name(&request.name).map_err(|message| Error::Invalid {
            message,
            fix: "choose another provider name".to_owned(),
        })?;
        let preset_name = request
            .preset
            .clone()
            .unwrap_or_else(|| request.name.clone());
        let Some(preset) = self.config.catalog.provider(&preset_name) else {
            return Err(Error::UnknownProvider {
                name: preset_name,
                known: self
                    .config
                    .catalog
                    .providers()
                    .map(|(n, _)| n.clone())
                    .collect(),
            });
        };
        let client_type = preset.client_type;
        let console_url = preset.console_url.clone();
        if client_type == ClientType::None {
            return Err(Error::Invalid {
                message: format!(
                    "provider `{preset_name}` has no OAuth; its connectors use API keys or tokens"
                ),
                fix: format!("add the connector directly: `latch connector add {preset_name}`"),
            });
        }
        // Without a client id the provider serves service accounts and stored secrets only:
        // its endpoints (and their overrides) still matter, its 3LO app does not.
        let client_id = request
            .client_id
            .as_deref()
            .map(str::trim)
            .filter(|id| !id.is_empty());
        if let Some(uri) = &request.redirect_uri {
            check_redirect_uri(uri).map_err(|message| Error::Invalid {
                message,
                fix: "pass --redirect-uri http://127.0.0.1:PORT/callback".to_owned(),
            })?;
        }
        let secret = secret.filter(|s| !s.is_empty());
        if client_id.is_none() && secret.is_some() {
            return Err(Error::Invalid {
                message: "a client secret was given without a client id".to_owned(),
                fix: "pass --client-id with the app's id from the developer console (the secret \
                      belongs to that app)"
                    .to_owned(),
            });
        }
        if client_type == ClientType::Confidential && client_id.is_some() && secret.is_none() {
            return Err(Error::Invalid {
                message: format!(
                    "provider `{}` is a confidential client: its client secret is required",
                    request.name
                ),
                fix: "pipe the secret on stdin (`... <<< \"$SECRET\"`) or type it at the prompt"
                    .to_owned(),
            });
        }

        // latch.toml is text: a path that is not UTF-8 cannot be written there.
        let ca_file = match &request.ca_file {
            Some(path) => Some(
                path.to_str()
                    .map(str::to_owned)
                    .ok_or_else(|| Error::Invalid {
                        message: format!("the CA file path {} is not UTF-8", path.display()),
                        fix: "move the file to a path with a plain name".to_owned(),
                    })?,
            ),
            None => None,
        };
        let mut edit = self.config.edit()?;
        let updated = edit.has("providers", &request.name);
        let e = &request.endpoints;
        edit.set(
            "providers",
            &request.name,
            &[
                ("preset", Some(preset_name.as_str())),
                ("client_id", client_id),
                ("redirect_uri", request.redirect_uri.as_deref()),
                ("authorize_url", e.authorize_url.as_deref()),
                ("token_url", e.token_url.as_deref()),
                ("revoke_url", e.revoke_url.as_deref()),
                ("resources_url", e.resources_url.as_deref()),
                ("me_url", e.me_url.as_deref()),
                ("api_base", e.api_base.as_deref()),
                ("site_url", e.site_url.as_deref()),
                ("base_url", request.base_url.as_deref()),
                ("ca_file", ca_file.as_deref()),
            ],
        )?;
        let next = edit.validate()?;

        let now = now_rfc3339();
        let secret_stored = match &secret {
            Some(secret) => {
                self.secrets
                    .put(&self.client_secret_key(&request.name), secret)?;
                true
            }
            None => false,
        };
        edit.write()?;
        self.config = Arc::new(next);
        self.db()
            .provider_upsert(&request.name, &now)
            .map_err(|e| self.store_err(e))?;
        if secret_stored {
            self.db()
                .provider_secret_stored(&request.name, Some(&now))
                .map_err(|e| self.store_err(e))?;
        }
        let provider = self.provider_or_err(&request.name)?;
        let (redirect_uri, has_app) = (provider.redirect_uri.clone(), provider.client_id.is_some());
        Ok(ProviderAdded {
            name: request.name,
            updated,
            secret_stored,
            redirect_uri,
            console_url,
            has_app,
        })
    }

    /// Replaces a provider's client secret in the keychain.
    pub fn set_provider_secret(&mut self, name: &str, secret: Secret) -> Result<()> {
        let provider = self.provider_or_err(name)?;
        if provider.spec.client_type != ClientType::Confidential {
            return Err(Error::Invalid {
                message: format!("provider `{name}` is not a confidential client"),
                fix: "nothing to store: it uses no client secret".to_owned(),
            });
        }
        if secret.is_empty() {
            return Err(Error::Invalid {
                message: "the secret is empty".to_owned(),
                fix: "pipe the secret on stdin or type it at the prompt".to_owned(),
            });
        }
        self.secrets.put(&self.client_secret_key(name), &secret)?;
        let now = now_rfc3339();
        let db = self.db();
        db.provider_upsert(name, &now)
            .and_then(|()| db.provider_secret_stored(name, Some(&now)))
            .map_err(|e| self.store_err(e))
    }

    /// The provider a new connector signs in through when none is named: the one configured
    /// provider of its preset (`corp-jira` for a `jira-dc` connector), else the preset itself.
    fn default_provider(&self, preset: &str) -> Result<String> {
        let configured: Vec<&str> = self
            .config
            .providers
            .iter()
            .filter(|p| p.configured && p.preset == preset)
            .map(|p| p.name.as_str())
            .collect();
        match configured.as_slice() {
            [one] => Ok((*one).to_owned()),
            [] if self
                .config
                .catalog
                .provider(preset)
                .is_some_and(crate::provider::catalog::ProviderSpec::needs_base_url) =>
            {
                Err(Error::Invalid {
                    message: format!(
                        "no `{preset}` provider is configured; its endpoints are on your instance"
                    ),
                    fix: format!(
                        "run `latch provider add corp --preset {preset} --base-url https://...` \
                         first (with --client-id to sign in as you)"
                    ),
                })
            }
            [] => Ok(preset.to_owned()),
            several => Err(Error::Invalid {
                message: format!(
                    "several `{preset}` providers are configured: {}",
                    several.join(", ")
                ),
                fix: "name one with --provider".to_owned(),
            }),
        }
    }

    fn check_new_connector(&self, request: &AddConnector) -> Result<(String, String)> {
        check_name(&request.name).map_err(|message| Error::Invalid {
            message,
            fix: "choose another connector name".to_owned(),
        })?;
        if crate::provider::catalog::RESERVED_CONNECTOR_NAMES.contains(&request.name.as_str()) {
            return Err(Error::Invalid {
                message: format!(
                    "`{}` is reserved: `latch exec` sets LATCH_PROXY_URL for the proxy itself",
                    request.name
                ),
                fix: format!("pick another name, e.g. `--type ... {}-api`", request.name),
            });
        }
        let kind = request.kind.clone().unwrap_or_else(|| request.name.clone());
        let Some(spec) = self.config.catalog.connector(&kind) else {
            return Err(Error::UnknownConnector {
                name: kind,
                known: self
                    .config
                    .catalog
                    .connectors()
                    .map(|(n, _)| n.clone())
                    .collect(),
            });
        };
        if self.config.connector(&request.name).is_some() {
            return Err(Error::Exists(format!(
                "connector `{}` already exists; remove it first (`latch connector remove {}`) \
                 or pick another name with --type {kind}",
                request.name, request.name
            )));
        }
        let provider = match &request.provider {
            Some(provider) => provider.clone(),
            None => self.default_provider(&spec.provider)?,
        };
        // A connector type belongs to one kind of provider: Jira Data Center's connector cannot
        // sign in through Atlassian Cloud (doctor still flags a hand-edited latch.toml).
        if let Some(configured) = self.config.provider(&provider).filter(|p| p.configured) {
            if configured.preset != spec.provider {
                return Err(Error::Invalid {
                    message: format!(
                        "connector type `{kind}` signs in through a `{}` provider, but `{provider}` \
                         is a `{}` provider",
                        spec.provider, configured.preset
                    ),
                    fix: format!(
                        "name a provider added with `--preset {}`, or use a connector type of \
                         `{}`",
                        spec.provider, configured.preset
                    ),
                });
            }
        }
        let provider_spec = self.config.catalog.provider(&provider);
        let auth = request
            .auth
            .or_else(|| spec.auth_modes.first().copied())
            .unwrap_or(AuthMode::User);
        // Only a connector that signs in as the person needs the provider's OAuth app; the
        // others use the preset's endpoints as they are.
        let provider_known = self.config.provider(&provider).is_some()
            || provider_spec
                .is_some_and(|p| p.client_type == ClientType::None || auth != AuthMode::User);
        if !provider_known {
            return Err(Error::Invalid {
                message: format!(
                    "connector `{}` signs in as you through provider `{provider}`, which is not \
                     added yet",
                    request.name
                ),
                fix: format!(
                    "run `latch provider add {provider} --client-id ...` first, or choose \
                     another auth mode (--auth {})",
                    spec.auth_modes
                        .iter()
                        .filter(|m| **m != AuthMode::User)
                        .map(|m| m.as_str())
                        .collect::<Vec<_>>()
                        .join(" | ")
                ),
            });
        }
        if let Some(auth) = request.auth {
            if !spec.auth_modes.contains(&auth) {
                return Err(Error::Invalid {
                    message: format!(
                        "connector type `{kind}` does not support auth mode `{}`",
                        auth.as_str()
                    ),
                    fix: format!(
                        "use one of: {}",
                        spec.auth_modes
                            .iter()
                            .map(|m| m.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                });
            }
        }
        Ok((kind, provider))
    }

    /// What adding a connector would change, without saving anything (the desktop app shows
    /// this diff before the person confirms).
    pub fn preview_connector(&self, request: &AddConnector) -> Result<ConnectorPreview> {
        let (kind, provider) = self.check_new_connector(request)?;
        let Some(spec) = self.config.catalog.connector(&kind) else {
            return Err(self.unknown_connector(&kind));
        };
        let auth = request
            .auth
            .or_else(|| spec.auth_modes.first().copied())
            .unwrap_or(AuthMode::User);
        let mut requested = self.config.scope_request(&provider);
        let mut diff = MergeDiff::default();
        let mut needs_step_up = false;
        if auth == AuthMode::User {
            diff = requested.merge(&request.name, &spec.upstream_scopes);
            let vocabulary = self.config.rules_of(&provider);
            needs_step_up = self.granted_scopes(&provider)?.is_some_and(|granted| {
                !vocabulary
                    .missing(&spec.upstream_scopes, &granted)
                    .is_empty()
            });
        }
        Ok(ConnectorPreview {
            name: request.name.clone(),
            kind,
            provider,
            auth,
            diff,
            requested,
            needs_step_up,
        })
    }

    /// Adds a connector and merges its scopes into its provider's request.
    pub fn add_connector(&mut self, request: AddConnector) -> Result<ConnectorAdded> {
        let (kind, provider) = self.check_new_connector(&request)?;
        let before = self.config.scope_request(&provider);

        let mut edit = self.config.edit()?;
        edit.set(
            "connectors",
            &request.name,
            &[
                ("type", (kind != request.name).then_some(kind.as_str())),
                ("provider", Some(provider.as_str())),
                ("auth", request.auth.map(AuthMode::as_str)),
                ("site", request.site.as_deref()),
                ("email", request.email.as_deref()),
                ("client_id", request.client_id.as_deref()),
                ("audience", request.audience.as_deref()),
                ("token", request.token.map(ApiTokenKind::as_str)),
                ("username", request.username.as_deref()),
                ("scope_set", request.scope_set.map(ScopeSet::as_str)),
                ("region", request.region.as_deref()),
            ],
        )?;
        edit.set_list(
            "connectors",
            &request.name,
            "scopes",
            request.scopes.as_deref(),
        )?;
        let next = edit.validate()?;
        edit.write()?;
        self.config = Arc::new(next);
        self.db()
            .connector_upsert(&request.name, &provider, &now_rfc3339())
            .map_err(|e| self.store_err(e))?;

        let connector = self.config.connector(&request.name).cloned();
        let mut diff = MergeDiff::default();
        let mut requested = before.clone();
        if let Some(c) = connector.as_ref().filter(|c| c.auth == AuthMode::User) {
            diff = requested.merge(&c.name, &c.spec.upstream_scopes);
        }
        let granted = self.granted_scopes(&provider)?;
        let needs_step_up = match (&granted, &connector) {
            (Some(granted), Some(c)) if c.auth == AuthMode::User => !self
                .config
                .rules_of(&provider)
                .missing(&c.spec.upstream_scopes, granted)
                .is_empty(),
            _ => false,
        };
        Ok(ConnectorAdded {
            auth: connector.as_ref().map_or(AuthMode::User, |c| c.auth),
            name: request.name,
            findings: self.config.provider_findings(&provider),
            provider,
            diff,
            requested,
            needs_step_up,
        })
    }

    /// Removes a connector; scopes no other connector asks for leave the provider's request.
    pub fn remove_connector(&mut self, name: &str) -> Result<ConnectorRemoved> {
        let Some(connector) = self.config.connector(name).cloned() else {
            return Err(self.unknown_connector(name));
        };
        let before = self.config.scope_request(&connector.provider).scopes();
        let mut edit = self.config.edit()?;
        edit.remove("connectors", name);
        let next = edit.validate()?;
        edit.write()?;
        self.config = Arc::new(next);
        self.db()
            .connector_delete(name)
            .map_err(|e| self.store_err(e))?;
        let after = self.config.scope_request(&connector.provider).scopes();
        Ok(ConnectorRemoved {
            name: name.to_owned(),
            provider: connector.provider,
            no_longer_requested: before.minus(&after).iter().cloned().collect(),
        })
    }

    /// Registers a manifest file in latch.toml after checking it.
    pub fn add_manifest(&mut self, path: &Path) -> Result<Vec<String>> {
        let absolute = std::path::absolute(path).map_err(|source| Error::Write {
            path: path.to_owned(),
            source,
        })?;
        let before: Vec<String> = self
            .config
            .catalog
            .connectors()
            .map(|(n, _)| n.clone())
            .collect();
        let mut edit = self.config.edit()?;
        edit.add_manifest(&absolute.to_string_lossy());
        let next = edit.validate()?;
        edit.write()?;
        self.config = Arc::new(next);
        Ok(self
            .config
            .catalog
            .connectors()
            .map(|(n, _)| n.clone())
            .filter(|n| !before.contains(n))
            .collect())
    }

    fn granted_scopes(&self, provider: &str) -> Result<Option<ScopeList>> {
        let grant = self
            .db()
            .grant(&GrantId::user(provider))
            .map_err(|e| self.store_err(e))?;
        Ok(grant.map(|g| ScopeList::parse(&g.granted_scopes).unwrap_or_default()))
    }

    /// The status of every provider and connector. Reads latch.toml and SQLite only: it never
    /// touches the keychain or the network, so it works when both are down.
    pub fn status(&self) -> Result<StatusReport> {
        let db = self.db();
        crate::health::status::build(crate::health::status::StatusSource {
            config: &self.config,
            db: &db,
            home: crate::health::status::HomeStatus {
                id: self.home_id.clone(),
                config_file: self.home.config_file().display().to_string(),
                database: self.home.database().display().to_string(),
                secret_store: self.secrets.describe(),
            },
            now: self.now(),
        })
        .map_err(|e| self.store_err(e))
    }

    /// The metadata store. Hold the guard briefly: other threads of this process wait on it.
    pub fn db(&self) -> MutexGuard<'_, latch_store::Store> {
        // A panic while holding the lock cannot leave SQLite inconsistent (statements are
        // atomic), so a poisoned lock is still usable.
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A shared handle on the metadata store.
    pub fn store_handle(&self) -> Arc<Mutex<latch_store::Store>> {
        Arc::clone(&self.store)
    }

    /// The configuration, shared.
    pub fn config_handle(&self) -> Arc<Config> {
        Arc::clone(&self.config)
    }

    /// Runs every health check (`latch doctor`).
    pub async fn doctor(
        &self,
        options: crate::health::doctor::DoctorOptions,
    ) -> Result<crate::health::doctor::DoctorReport> {
        let credentials = self.credentials();
        crate::health::doctor::run(&credentials, || self.status(), options).await
    }

    /// The credentials of this home's connectors (over its grants).
    pub fn credentials(&self) -> Arc<crate::credential::Credentials> {
        Arc::new(crate::credential::Credentials::new(self.grants()))
    }

    /// The token lifecycle over this home (shares the store and keychain).
    pub fn grants(&self) -> Arc<crate::grant::Grants> {
        Arc::new(crate::grant::Grants::new(
            self.home_id.clone(),
            &self.home.database(),
            self.home.locks_dir(),
            Arc::clone(&self.config),
            Arc::clone(&self.store),
            Arc::clone(&self.secrets),
            Arc::clone(&self.clock),
        ))
    }

    /// Stores a connector's own secret — an API token, PAT, password or API key, or a service
    /// account's client secret — then checks it: a service account fetches its first token, an
    /// API token is tried on the site URL and the gateway (where it works is remembered), other
    /// secrets meet the connector's health probe. A refused or unchecked secret stays stored
    /// (nothing the person typed is lost); the check says what to do.
    pub async fn set_credential(
        &mut self,
        connector: &str,
        secret: Secret,
        expires_at: Option<OffsetDateTime>,
    ) -> Result<CredentialStored> {
        let Some(c) = self.config.connector(connector).cloned() else {
            return Err(self.unknown_connector(connector));
        };
        if c.auth == AuthMode::User {
            return Err(Error::Invalid {
                message: format!("connector `{connector}` signs in through its provider"),
                fix: format!("run `latch login {}`", c.provider),
            });
        }
        let missing = match c.auth {
            AuthMode::Service if c.client_id.is_none() => {
                Some(("client_id", "service account's OAuth client id"))
            }
            AuthMode::ApiToken if c.email.is_none() => Some((
                "email",
                "account e-mail (a service account's, for its tokens)",
            )),
            AuthMode::Basic if c.username.is_none() => Some(("username", "user name")),
            _ => None,
        };
        if let Some((key, what)) = missing {
            return Err(Error::Invalid {
                message: format!("connector `{connector}` has no {key} (the {what})"),
                fix: format!("set `{key} = \"...\"` under [connectors.{connector}] in latch.toml"),
            });
        }
        if secret.is_empty() {
            return Err(Error::Invalid {
                message: "the credential is empty".to_owned(),
                fix: "pipe it on stdin or type it at the prompt".to_owned(),
            });
        }
        if let Some(at) = expires_at.filter(|at| *at <= self.now()) {
            return Err(Error::Invalid {
                message: format!("the expiry {} is in the past", fmt_time(at)),
                fix: "give the date the token expires, like --expires 2027-03-01".to_owned(),
            });
        }
        let key = crate::grant::store::connector_secret_key(&self.home_id, connector);
        self.secrets.put(&key, &secret)?;
        let at = now_rfc3339();
        {
            let db = self.db();
            db.connector_upsert(connector, &c.provider, &at)
                .and_then(|()| db.connector_credential_forget(connector))
                .and_then(|()| db.connector_credential_stored(connector, Some(&at)))
                .and_then(|()| db.connector_credential_expiry(connector, expires_at))
                .map_err(|e| self.store_err(e))?;
        }
        let credentials = self.credentials();
        let (service_token, check) = if c.auth == AuthMode::Service {
            let result = credentials.start_service(connector).await;
            let check = match &result {
                Ok(()) => CredentialCheck {
                    result: CheckResult::Ok,
                    detail: "the service account obtained a token".to_owned(),
                },
                Err(err @ GrantError::CredentialRejected { .. }) => CredentialCheck {
                    result: CheckResult::Rejected,
                    detail: err.to_string(),
                },
                Err(err) => CredentialCheck {
                    result: CheckResult::Unchecked,
                    detail: err.to_string(),
                },
            };
            (
                Some(
                    result
                        .err()
                        .map_or_else(|| "ok".to_owned(), |e| e.to_string()),
                ),
                check,
            )
        } else {
            (None, credentials.check(&c).await)
        };
        let token_kind = credentials
            .api_token_kind(&c)
            .ok()
            .flatten()
            .map(ApiTokenKind::as_str);
        Ok(CredentialStored {
            connector: connector.to_owned(),
            auth: c.auth,
            service_token,
            check,
            token_kind,
            expires_at: expires_at.map(fmt_time),
        })
    }

    /// Deletes a connector's own credential from the keychain and forgets what Latch learnt
    /// about it (a service account's cached token too).
    pub async fn remove_credential(&mut self, connector: &str) -> Result<CredentialRemoved> {
        let Some(c) = self.config.connector(connector).cloned() else {
            return Err(self.unknown_connector(connector));
        };
        if c.auth == AuthMode::User {
            return Err(Error::Invalid {
                message: format!("connector `{connector}` signs in through its provider; it has no credential of its own"),
                fix: format!("sign out instead: `latch logout {}`", c.provider),
            });
        }
        let mut keys = vec![crate::grant::store::connector_secret_key(
            &self.home_id,
            connector,
        )];
        let grant = (CredentialKind::of(c.auth) == CredentialKind::ClientCredentials)
            .then(|| GrantId::service(connector));
        if let Some(grant) = &grant {
            keys.push(crate::grant::store::access_token_key(&self.home_id, grant));
        }
        let secrets = Arc::clone(&self.secrets);
        let existed = tokio::task::spawn_blocking(
            move || -> std::result::Result<bool, crate::ports::SecretStoreError> {
                let mut first = None;
                for key in &keys {
                    let deleted = secrets.delete(key)?;
                    first.get_or_insert(deleted);
                }
                Ok(first.unwrap_or(false))
            },
        )
        .await
        .map_err(|e| Error::Home(format!("keychain task failed: {e}")))??;
        {
            let db = self.db();
            db.connector_credential_forget(connector)
                .map_err(|e| self.store_err(e))?;
            if let Some(grant) = &grant {
                db.grant_delete(grant).map_err(|e| self.store_err(e))?;
            }
        }
        crate::grant::store::note_local_write();
        Ok(CredentialRemoved {
            connector: connector.to_owned(),
            deleted: existed,
        })
    }

    /// Changes a connector's site or scope set (the CLI twin of the app's "Choose site").
    /// Choosing among the sites a sign-in reached needs no new consent.
    pub fn set_connector(
        &mut self,
        name: &str,
        change: ConnectorChange,
    ) -> Result<ConnectorChanged> {
        let Some(c) = self.config.connector(name).cloned() else {
            return Err(self.unknown_connector(name));
        };
        if let Some(site) = change.site.as_deref().filter(|s| !s.trim().is_empty()) {
            let provider = self.config.provider(&c.provider);
            let template = provider.and_then(|p| p.spec.site_url.as_deref());
            if crate::upstream::site::site_ref(site, template).is_none() {
                return Err(Error::Invalid {
                    message: format!("`{site}` is not a site name, host, URL or cloud id"),
                    fix:
                        "give it like acme, acme.atlassian.net, https://acme.atlassian.net or the \
                          site's cloud id"
                            .to_owned(),
                });
            }
        }
        let before = self.config.scope_request(&c.provider).scopes();
        let mut edit = self.config.edit()?;
        if let Some(site) = &change.site {
            let site = site.trim();
            edit.set(
                "connectors",
                name,
                &[("site", (!site.is_empty()).then_some(site))],
            )?;
        }
        if let Some(set) = change.scope_set {
            edit.set(
                "connectors",
                name,
                &[(
                    "scope_set",
                    (set != ScopeSet::Classic).then_some(set.as_str()),
                )],
            )?;
        }
        let next = edit.validate()?;
        edit.write()?;
        self.config = Arc::new(next);
        let after = self.config.scope_request(&c.provider).scopes();
        let now = self
            .config
            .connector(name)
            .cloned()
            .ok_or_else(|| self.unknown_connector(name))?;
        let needs_consent = now.auth == AuthMode::User
            && self.granted_scopes(&now.provider)?.is_some_and(|g| {
                !self
                    .config
                    .rules_of(&now.provider)
                    .missing(&now.spec.upstream_scopes, &g)
                    .is_empty()
            });
        Ok(ConnectorChanged {
            name: name.to_owned(),
            site: now.site.clone(),
            scope_set: now.scope_set,
            requested_added: after.minus(&before).iter().cloned().collect(),
            requested_removed: before.minus(&after).iter().cloned().collect(),
            needs_consent,
        })
    }

    /// Creates a local key; the key itself is returned once and only its hash is stored.
    pub fn create_key(
        &self,
        name: &str,
        connectors: &[String],
        read_only: bool,
        paths: &[String],
        ttl: Option<time::Duration>,
    ) -> Result<(Secret, crate::local_key::KeyPolicy)> {
        check_name(name).map_err(|message| Error::Invalid {
            message,
            fix: "choose another key name".to_owned(),
        })?;
        if connectors.is_empty() {
            return Err(Error::Invalid {
                message: "a key must name at least one connector".to_owned(),
                fix: "add --connector NAME (repeat it for several)".to_owned(),
            });
        }
        crate::local_key::check_patterns(paths).map_err(|message| Error::Invalid {
            message,
            fix: "repeat --path for several patterns; `*` matches any run of characters, `/` \
                  included"
                .to_owned(),
        })?;
        for c in connectors {
            if self.config.connector(c).is_none() {
                return Err(self.unknown_connector(c));
            }
        }
        if self
            .db()
            .local_keys()
            .map_err(|e| self.store_err(e))?
            .iter()
            .any(|k| k.name == name)
        {
            return Err(Error::Exists(format!(
                "a local key named `{name}` exists; revoke it (`latch keys revoke {name}`) or pick another name"
            )));
        }
        let key = crate::local_key::generate();
        let row = latch_store::LocalKeyRow {
            name: name.to_owned(),
            key_hash: crate::local_key::hash(key.expose()),
            connectors: connectors.join(" "),
            read_only,
            paths: (!paths.is_empty()).then(|| paths.to_vec()),
            created_at: now_rfc3339(),
            expires_at: ttl.map(crate::local_key::expiry_in),
            revoked_at: None,
        };
        self.db()
            .local_key_insert(&row)
            .map_err(|e| self.store_err(e))?;
        Ok((key, crate::local_key::from_row(row)))
    }

    /// Every local key's policy (never the keys).
    pub fn keys(&self) -> Result<Vec<crate::local_key::KeyPolicy>> {
        let rows = self.db().local_keys().map_err(|e| self.store_err(e))?;
        Ok(rows.into_iter().map(crate::local_key::from_row).collect())
    }

    /// Revokes a local key by name.
    pub fn revoke_key(&self, name: &str) -> Result<()> {
        let revoked = self
            .db()
            .local_key_revoke(name, &now_rfc3339())
            .map_err(|e| self.store_err(e))?;
        if revoked {
            Ok(())
        } else {
            Err(Error::Invalid {
                message: format!("there is no live local key named `{name}`"),
                fix: "see `latch keys list`".to_owned(),
            })
        }
    }

    /// A verifier of presented local keys over this home's database.
    pub fn key_verifier(&self) -> crate::local_key::KeyVerifier {
        crate::local_key::KeyVerifier::new(&self.home.database(), None)
    }

    /// Records the site a connector is bound to in latch.toml.
    pub fn bind_site(&mut self, connector: &str, site: &str) -> Result<()> {
        let mut edit = self.config.edit()?;
        edit.set("connectors", connector, &[("site", Some(site))])?;
        let next = edit.validate()?;
        edit.write()?;
        self.config = Arc::new(next);
        Ok(())
    }

    /// The keychain port.
    pub fn secrets(&self) -> &Arc<dyn SecretStore> {
        &self.secrets
    }
}

/// `bytes` random bytes as lower-case hex, from the OS generator.
pub fn random_hex(bytes: usize) -> String {
    use rand::RngCore;
    let mut buf = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::status::{ClientSecretState, ConnectorState};
    use crate::ports::MemorySecretStore;
    use latch_store::{GrantKind, GrantState};

    const FIXTURE_SECRET: &str = "fixture-client-secret-Zq81xVb0";

    fn open(dir: &Path, secrets: Arc<MemorySecretStore>) -> Latch {
        Latch::open(Home::at(dir), secrets).unwrap()
    }

    fn add_atlassian(latch: &mut Latch) {
        latch
            .add_provider(
                AddProvider {
                    name: "atlassian".into(),
                    client_id: Some("client-123".into()),
                    ..AddProvider::default()
                },
                Some(Secret::new(FIXTURE_SECRET.into())),
            )
            .unwrap();
    }

    fn connector(name: &str) -> AddConnector {
        AddConnector {
            name: name.into(),
            ..AddConnector::default()
        }
    }

    #[test]
    fn provider_then_connectors_merge_with_attribution() {
        let dir = tempfile::tempdir().unwrap();
        let secrets = Arc::new(MemorySecretStore::default());
        let mut latch = open(dir.path(), secrets.clone());
        add_atlassian(&mut latch);
        assert_eq!(secrets.len(), 1);
        let jira = latch.add_connector(connector("jira")).unwrap();
        assert_eq!(jira.diff.added.len(), 5);
        let conf = latch.add_connector(connector("confluence")).unwrap();
        assert_eq!(conf.diff.added.len(), 4);
        assert_eq!(conf.diff.shared.len(), 2);

        // A fresh process sees the same thing from the files alone.
        let latch = open(dir.path(), secrets);
        let status = latch.status().unwrap();
        let provider = &status.providers[0];
        assert_eq!(provider.client_secret, ClientSecretState::Stored);
        let me = provider
            .requested_scopes
            .iter()
            .find(|r| r.scope.as_str() == "read:me")
            .unwrap();
        assert_eq!(me.requested_by, ["jira", "confluence"]);
        assert!(status
            .connectors
            .iter()
            .all(|c| c.state == ConnectorState::NotSignedIn));
        let text = std::fs::read_to_string(dir.path().join("latch.toml")).unwrap();
        assert!(!text.contains(FIXTURE_SECRET));
    }

    #[test]
    fn keychain_failure_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut latch = open(dir.path(), Arc::new(MemorySecretStore::unavailable()));
        let err = latch
            .add_provider(
                AddProvider {
                    name: "atlassian".into(),
                    client_id: Some("c".into()),
                    ..AddProvider::default()
                },
                Some(Secret::new("s".into())),
            )
            .unwrap_err();
        assert_eq!(err.code().as_str(), "keychain_unavailable");
        assert!(!dir.path().join("latch.toml").exists());
        assert!(latch.status().unwrap().providers.is_empty());
    }

    #[test]
    fn confidential_provider_requires_a_secret() {
        let dir = tempfile::tempdir().unwrap();
        let mut latch = open(dir.path(), Arc::new(MemorySecretStore::default()));
        let err = latch
            .add_provider(
                AddProvider {
                    name: "atlassian".into(),
                    client_id: Some("c".into()),
                    ..AddProvider::default()
                },
                None,
            )
            .unwrap_err();
        assert_eq!(err.code().as_str(), "invalid_request");
    }

    #[test]
    fn unknown_connector_and_missing_provider_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut latch = open(dir.path(), Arc::new(MemorySecretStore::default()));
        let err = latch.add_connector(connector("jiraa")).unwrap_err();
        assert_eq!(err.code().as_str(), "unknown_connector");
        assert!(err.to_string().contains("jira"), "{err}");
        let err = latch.add_connector(connector("jira")).unwrap_err();
        assert!(
            err.to_string().contains("latch provider add atlassian"),
            "{err}"
        );
        // Opsgenie needs no OAuth provider.
        latch.add_connector(connector("opsgenie")).unwrap();
    }

    #[test]
    fn remove_shrinks_the_request_to_what_others_need() {
        let dir = tempfile::tempdir().unwrap();
        let mut latch = open(dir.path(), Arc::new(MemorySecretStore::default()));
        add_atlassian(&mut latch);
        latch.add_connector(connector("jira")).unwrap();
        latch.add_connector(connector("confluence")).unwrap();
        let removed = latch.remove_connector("confluence").unwrap();
        assert_eq!(removed.no_longer_requested.len(), 4);
        assert!(!removed
            .no_longer_requested
            .iter()
            .any(|s| s.as_str() == "read:me"));
    }

    #[test]
    fn step_up_is_reported_when_the_grant_lacks_scopes() {
        let dir = tempfile::tempdir().unwrap();
        let mut latch = open(dir.path(), Arc::new(MemorySecretStore::default()));
        add_atlassian(&mut latch);
        latch.add_connector(connector("jira")).unwrap();
        latch
            .db()
            .grant_put(&latch_store::GrantRow {
                id: GrantId::user("atlassian"),
                kind: GrantKind::User,
                state: GrantState::Ok,
                granted_scopes:
                    "read:me read:jira-user read:jira-work write:jira-work offline_access".into(),
                ..Default::default()
            })
            .unwrap();
        let added = latch.add_connector(connector("confluence")).unwrap();
        assert!(added.needs_step_up);
        let status = latch.status().unwrap();
        let conf = status
            .connectors
            .iter()
            .find(|c| c.name == "confluence")
            .unwrap();
        assert_eq!(conf.state, ConnectorState::NeedsStepUp);
        assert_eq!(conf.scopes.missing.len(), 4);
        let jira = status.connectors.iter().find(|c| c.name == "jira").unwrap();
        assert_eq!(jira.state, ConnectorState::SiteUnbound);
    }

    /// No secret may reach SQLite: populate every table through the use cases and the
    /// repositories, then scan every value and the raw files (database and WAL).
    #[test]
    fn no_fixture_secret_reaches_the_database() {
        let dir = tempfile::tempdir().unwrap();
        let mut latch = open(dir.path(), Arc::new(MemorySecretStore::default()));
        add_atlassian(&mut latch);
        latch.add_connector(connector("jira")).unwrap();
        latch
            .set_provider_secret("atlassian", Secret::new(format!("{FIXTURE_SECRET}-2")))
            .unwrap();
        let local_key = "latch_fixture_local_key_9f8e7d";
        latch
            .db()
            .local_key_insert(&latch_store::LocalKeyRow {
                name: "ci".into(),
                // Stands for SHA-256 of `local_key`: only the hash is ever stored.
                key_hash: vec![0xab; 32],
                connectors: "jira".into(),
                read_only: true,
                paths: None,
                created_at: now_rfc3339(),
                expires_at: None,
                revoked_at: None,
            })
            .unwrap();
        latch
            .db()
            .grant_put(&latch_store::GrantRow {
                id: GrantId::user("atlassian"),
                kind: GrantKind::User,
                state: GrantState::Ok,
                granted_scopes: "read:me".into(),
                ..Default::default()
            })
            .unwrap();
        let values = latch.db().dump_values().unwrap();
        assert!(!values.is_empty());
        for (table, column, bytes) in values {
            let text = String::from_utf8_lossy(&bytes);
            for secret in [FIXTURE_SECRET, local_key] {
                assert!(!text.contains(secret), "{table}.{column} holds a secret");
            }
        }
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            let path = entry.unwrap().path();
            if path.is_file() {
                let bytes = std::fs::read(&path).unwrap();
                let text = String::from_utf8_lossy(&bytes);
                assert!(
                    !text.contains(FIXTURE_SECRET),
                    "{} holds a secret",
                    path.display()
                );
            }
        }
    }
}

//! Connectors: adding one (its scopes merged into its provider's request), previewing that,
//! removing one, changing its site or scope set, and storing or removing its own credential.

use std::sync::Arc;

use time::OffsetDateTime;

use crate::app::App;
use crate::clock::fmt_time;
use crate::config::{ConnectorSettings, ScopeSet};
use crate::credential::connect::Installed;
use crate::credential::{CheckResult, CredentialCheck, CredentialKind};
use crate::error::{Error, GrantError, Result};
use crate::finding::Finding;
use crate::provider::catalog::{check_name, AuthMode, ClientType};
use crate::provider::scope::{MergeDiff, Scope, ScopeList, ScopeRequest};
use crate::secret::Secret;
use latch_store::{ApiTokenKind, GrantId};

/// `latch connector add`: a name and the settings latch.toml will hold for it.
#[derive(Clone, Debug, Default, serde::Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct AddConnector {
    /// Name (the latch.toml table and the proxy route).
    pub name: String,
    /// Its settings, as given (blank values are left out).
    #[serde(flatten)]
    pub settings: ConnectorSettings,
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
    #[serde(with = "crate::clock::stamp::option")]
    #[cfg_attr(feature = "ts", ts(type = "string | null"))]
    pub expires_at: Option<OffsetDateTime>,
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

/// The connectors of a home.
pub struct Connectors<'a> {
    pub(crate) app: &'a App,
}

impl Connectors<'_> {
    /// What adding a connector would change, without saving anything (the desktop app shows
    /// this diff before the person confirms).
    pub fn preview(&self, request: &AddConnector) -> Result<ConnectorPreview> {
        let config = self.app.config();
        let request = &AddConnector {
            name: request.name.trim().to_owned(),
            settings: request.settings.clone().without_blanks(),
        };
        let (kind, provider, auth) = self.check_new_connector(request)?;
        let Some(spec) = config.catalog.connector(&kind) else {
            return Err(config.unknown_connector(&kind));
        };
        let mut requested = config.scope_request(&provider);
        let mut diff = MergeDiff::default();
        let mut needs_step_up = false;
        if auth == AuthMode::User {
            diff = requested.merge(&request.name, &spec.upstream_scopes);
            let vocabulary = config.rules_of(&provider);
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
    pub fn add(&self, request: AddConnector) -> Result<ConnectorAdded> {
        let config = self.app.config();
        let request = AddConnector {
            name: request.name.trim().to_owned(),
            settings: request.settings.without_blanks(),
        };
        let (kind, provider, _) = self.check_new_connector(&request)?;
        let before = config.scope_request(&provider);

        // The settings as given, with the type and provider they resolved to.
        let settings = ConnectorSettings {
            kind: Some(kind),
            provider: Some(provider.clone()),
            ..request.settings
        };
        let mut edit = config.edit()?;
        edit.set("connectors", &request.name, &settings.keys(&request.name))?;
        edit.set_list(
            "connectors",
            &request.name,
            "scopes",
            settings.scopes.as_deref(),
        )?;
        let next = edit.validate()?;
        edit.write()?;
        self.app.written(next);
        let config = self.app.config();
        self.app
            .db()
            .connector_upsert(&request.name, &provider, self.app.now())
            .map_err(|e| self.app.store_err(e))?;

        let connector = config.connector(&request.name).cloned();
        let mut diff = MergeDiff::default();
        let mut requested = before.clone();
        if let Some(c) = connector.as_ref().filter(|c| c.auth == AuthMode::User) {
            diff = requested.merge(&c.name, &c.spec.upstream_scopes);
        }
        let granted = self.granted_scopes(&provider)?;
        let needs_step_up = match (&granted, &connector) {
            (Some(granted), Some(c)) if c.auth == AuthMode::User => !config
                .rules_of(&provider)
                .missing(&c.spec.upstream_scopes, granted)
                .is_empty(),
            _ => false,
        };
        Ok(ConnectorAdded {
            auth: connector.as_ref().map_or(AuthMode::User, |c| c.auth),
            name: request.name,
            findings: config.provider_findings(&provider),
            provider,
            diff,
            requested,
            needs_step_up,
        })
    }

    /// Removes a connector; scopes no other connector asks for leave the provider's request.
    pub fn remove(&self, name: &str) -> Result<ConnectorRemoved> {
        let config = self.app.config();
        let Some(connector) = config.connector(name).cloned() else {
            return Err(self.app.config().unknown_connector(name));
        };
        let before = config.scope_request(&connector.provider).scopes();
        let mut edit = config.edit()?;
        edit.remove("connectors", name);
        let next = edit.validate()?;
        edit.write()?;
        self.app.written(next);
        let config = self.app.config();
        self.app
            .db()
            .connector_delete(name)
            .map_err(|e| self.app.store_err(e))?;
        let after = config.scope_request(&connector.provider).scopes();
        Ok(ConnectorRemoved {
            name: name.to_owned(),
            provider: connector.provider,
            no_longer_requested: before.minus(&after).iter().cloned().collect(),
        })
    }

    /// Changes a connector's site or scope set (the CLI twin of the app's "Choose site").
    /// Choosing among the sites a sign-in reached needs no new consent.
    pub fn change(&self, name: &str, change: ConnectorChange) -> Result<ConnectorChanged> {
        let config = self.app.config();
        let Some(c) = config.connector(name).cloned() else {
            return Err(self.app.config().unknown_connector(name));
        };
        if let Some(site) = change.site.as_deref().filter(|s| !s.trim().is_empty()) {
            let provider = config.provider(&c.provider);
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
        let before = config.scope_request(&c.provider).scopes();
        let mut edit = config.edit()?;
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
        self.app.written(next);
        let config = self.app.config();
        let after = config.scope_request(&c.provider).scopes();
        let now = config
            .connector(name)
            .cloned()
            .ok_or_else(|| self.app.config().unknown_connector(name))?;
        let needs_consent = now.auth == AuthMode::User
            && self.granted_scopes(&now.provider)?.is_some_and(|g| {
                !config
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

    /// Records the site a connector is bound to in latch.toml.
    pub fn bind_site(&self, connector: &str, site: &str) -> Result<()> {
        let config = self.app.config();
        let mut edit = config.edit()?;
        edit.set("connectors", connector, &[("site", Some(site))])?;
        let next = edit.validate()?;
        edit.write()?;
        self.app.written(next);
        Ok(())
    }

    /// Stores a connector's own secret — an API token, PAT, password or API key, or a service
    /// account's client secret — then checks it: a service account fetches its first token, an
    /// API token is tried on the site URL and the gateway (where it works is remembered), other
    /// secrets meet the connector's health probe. A refused or unchecked secret stays stored
    /// (nothing the person typed is lost); the check says what to do.
    pub async fn set_credential(
        &self,
        connector: &str,
        secret: Secret,
        expires_at: Option<OffsetDateTime>,
    ) -> Result<CredentialStored> {
        let config = self.app.config();
        let Some(c) = config.connector(connector).cloned() else {
            return Err(self.app.config().unknown_connector(connector));
        };
        if c.auth == AuthMode::User {
            return Err(Error::Invalid {
                message: format!("connector `{connector}` signs in through its provider"),
                fix: format!("run `latch login {}`", c.provider),
            });
        }
        if c.auth == AuthMode::OAuth1TwoLegged {
            return Err(Error::Invalid {
                message: format!(
                    "connector `{connector}` signs with its provider's application link key; it \
                     stores no secret of its own"
                ),
                fix: format!(
                    "the key is the provider's: `latch provider public-key {}` shows it",
                    c.provider
                ),
            });
        }
        if c.auth == AuthMode::None {
            return Err(Error::Invalid {
                message: format!("connector `{connector}` calls anonymously: it has no credential"),
                fix: format!(
                    "to use a credential, add it again with another auth mode: `latch connector \
                     add {connector} --type {} --auth api-token …`",
                    c.kind
                ),
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
        if let Some(at) = expires_at.filter(|at| *at <= self.app.now()) {
            return Err(Error::Invalid {
                message: format!("the expiry {} is in the past", fmt_time(at)),
                fix: "give the date the token expires, like --expires 2027-03-01".to_owned(),
            });
        }
        // A Connect app's credential is its installed payload: the shared secret is the
        // secret, the rest is kept beside the connector.
        let (secret, connect_app) = match c.auth {
            AuthMode::Connect | AuthMode::ConnectUser => {
                let installed = Installed::parse(secret.expose()).map_err(|err| {
                    Error::Invalid {
                    message: err.to_string(),
                    fix: "pipe the app's `installed` lifecycle payload as it came (JSON with key, \
                          clientKey, sharedSecret, baseUrl): `latch credential set NAME < \
                          installed.json`"
                        .to_owned(),
                }
                })?;
                if c.auth == AuthMode::ConnectUser && installed.app.oauth_client_id.is_none() {
                    return Err(Error::Invalid {
                        message: "the installed payload has no `oauthClientId`: the app cannot \
                                  act as a user"
                            .to_owned(),
                        fix: "add the ACT_AS_USER scope to the app's descriptor, reinstall it \
                              and store the new installed payload"
                            .to_owned(),
                    });
                }
                let facts = serde_json::to_string(&installed.app)
                    .map_err(|e| Error::Home(e.to_string()))?;
                (installed.shared_secret, Some(facts))
            }
            _ => (secret, None),
        };
        let key = crate::grant::store::connector_secret_key(&self.app.home_id, connector);
        self.app.secrets.put(&key, &secret)?;
        let at = self.app.now();
        {
            let db = self.app.db();
            db.connector_upsert(connector, &c.provider, at)
                .and_then(|()| db.connector_credential_forget(connector))
                .and_then(|()| db.connector_credential_stored(connector, Some(at)))
                .and_then(|()| db.connector_credential_expiry(connector, expires_at))
                .and_then(|()| db.connector_connect_app(connector, connect_app.as_deref()))
                .map_err(|e| self.app.store_err(e))?;
        }
        crate::grant::store::note_local_write();
        let credentials = self.app.credentials();
        let mints = matches!(c.auth, AuthMode::Service | AuthMode::ConnectUser);
        let (service_token, check) = if mints {
            let result = credentials.start_service(connector).await;
            let check = match &result {
                Ok(()) => CredentialCheck {
                    unreachable: false,
                    result: CheckResult::Ok,
                    detail: if c.auth == AuthMode::ConnectUser {
                        "the app obtained a token for its user".to_owned()
                    } else {
                        "the service account obtained a token".to_owned()
                    },
                },
                Err(
                    err @ (GrantError::CredentialRejected { .. }
                    | GrantError::ImpersonationRefused { .. }),
                ) => CredentialCheck {
                    result: CheckResult::Rejected,
                    detail: err.to_string(),
                    unreachable: false,
                },
                Err(err) => CredentialCheck {
                    result: CheckResult::Unchecked,
                    detail: err.to_string(),
                    unreachable: matches!(
                        err,
                        GrantError::RefreshFailing { .. } | GrantError::RefreshUncertain { .. }
                    ),
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
            expires_at,
        })
    }

    /// Deletes a connector's own credential from the keychain and forgets what Latch learnt
    /// about it (a service account's cached token too).
    pub async fn remove_credential(&self, connector: &str) -> Result<CredentialRemoved> {
        let config = self.app.config();
        let Some(c) = config.connector(connector).cloned() else {
            return Err(self.app.config().unknown_connector(connector));
        };
        if c.auth == AuthMode::User {
            return Err(Error::Invalid {
                message: format!("connector `{connector}` signs in through its provider; it has no credential of its own"),
                fix: format!("sign out instead: `latch logout {}`", c.provider),
            });
        }
        let mut keys = vec![crate::grant::store::connector_secret_key(
            &self.app.home_id,
            connector,
        )];
        let grant = (CredentialKind::of(&c) == CredentialKind::ClientCredentials)
            .then(|| GrantId::service(connector));
        if let Some(grant) = &grant {
            keys.push(crate::grant::store::access_token_key(
                &self.app.home_id,
                grant,
            ));
        }
        let secrets = Arc::clone(&self.app.secrets);
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
            let db = self.app.db();
            db.connector_credential_forget(connector)
                .map_err(|e| self.app.store_err(e))?;
            if let Some(grant) = &grant {
                db.grant_delete(grant).map_err(|e| self.app.store_err(e))?;
            }
        }
        crate::grant::store::note_local_write();
        Ok(CredentialRemoved {
            connector: connector.to_owned(),
            deleted: existed,
        })
    }

    /// The provider a new connector signs in through when none is named: the one configured
    /// provider of its preset (`corp-jira` for a `jira-dc` connector), else the preset itself.
    fn default_provider(&self, preset: &str) -> Result<String> {
        let config = self.app.config();
        let configured: Vec<&str> = config
            .providers
            .iter()
            .filter(|p| p.configured && p.preset == preset)
            .map(|p| p.name.as_str())
            .collect();
        match configured.as_slice() {
            [one] => Ok((*one).to_owned()),
            [] if config
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

    /// Checks a new connector's name, type, provider and auth mode; returns its catalog type,
    /// provider and auth mode.
    fn check_new_connector(&self, request: &AddConnector) -> Result<(String, String, AuthMode)> {
        let config = self.app.config();
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
        let settings = &request.settings;
        let invalid = |e: crate::config::SettingError| Error::Invalid {
            message: e.message,
            fix: format!("correct --{}", e.key.replace('_', "-")),
        };
        settings.check().map_err(invalid)?;
        let kind = settings
            .kind
            .clone()
            .unwrap_or_else(|| request.name.clone());
        let Some(spec) = config.catalog.connector(&kind) else {
            return Err(Error::UnknownType {
                name: kind,
                known: config
                    .catalog
                    .connectors()
                    .map(|(n, _)| n.clone())
                    .collect(),
            });
        };
        if config.connector(&request.name).is_some() {
            return Err(Error::Exists(format!(
                "connector `{}` already exists; remove it first (`latch connector remove {}`) \
                 or pick another name with --type {kind}",
                request.name, request.name
            )));
        }
        let provider = match &settings.provider {
            Some(provider) => provider.clone(),
            None => self.default_provider(&spec.provider)?,
        };
        // A connector type belongs to one kind of provider: Jira Data Center's connector cannot
        // sign in through Atlassian Cloud (doctor still flags a hand-edited latch.toml).
        if let Some(configured) = config.provider(&provider).filter(|p| p.configured) {
            // Any MCP server's provider serves the `mcp` connector type.
            let both_mcp = spec.mcp && config.catalog.is_mcp_preset(&configured.preset);
            if configured.preset != spec.provider && !both_mcp {
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
        let provider_spec = config.catalog.provider(&provider);
        let chosen = settings.auth_mode().map_err(invalid)?;
        let auth = chosen
            .or_else(|| spec.auth_modes.first().copied())
            .unwrap_or(AuthMode::User);
        // Only a connector that signs in as the person needs the provider's OAuth app; the
        // others use the preset's endpoints as they are.
        let provider_known = config.provider(&provider).is_some()
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
        if let Some(auth) = chosen {
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
        Ok((kind, provider, auth))
    }

    fn granted_scopes(&self, provider: &str) -> Result<Option<ScopeList>> {
        let grant = self
            .app
            .db()
            .grant(&GrantId::user(provider))
            .map_err(|e| self.app.store_err(e))?;
        Ok(grant.map(|g| ScopeList::parse(&g.granted_scopes).unwrap_or_default()))
    }
}

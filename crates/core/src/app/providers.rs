//! Providers: adding one (its client secret to the keychain first, then latch.toml) and
//! replacing its client secret.

use crate::app::App;
use crate::config::{check_redirect_uri, Provider};
use crate::error::{Error, Result};
use crate::provider::catalog::{check_name, ClientType};
use crate::secret::Secret;

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
    /// Where Connect apps ask for a user's token.
    pub connect_token_url: Option<String>,
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

/// The providers of a home.
pub struct Providers<'a> {
    pub(crate) app: &'a App,
}

impl Providers<'_> {
    fn provider_or_err(&self, name: &str) -> Result<Provider> {
        let config = self.app.config();
        config
            .provider(name)
            .cloned()
            .ok_or_else(|| Error::UnknownProvider {
                name: name.to_owned(),
                known: config.providers.iter().map(|p| p.name.clone()).collect(),
            })
    }

    /// Adds (or updates) a provider. The client secret goes to the keychain first; latch.toml
    /// is written only when that worked, so a failure leaves everything as it was.
    pub fn add(&self, request: AddProvider, secret: Option<Secret>) -> Result<ProviderAdded> {
        let config = self.app.config();
        check_name(&request.name).map_err(|message| Error::Invalid {
            message,
            fix: "choose another provider name".to_owned(),
        })?;
        let preset_name = request
            .preset
            .clone()
            .unwrap_or_else(|| request.name.clone());
        let Some(preset) = config.catalog.provider(&preset_name) else {
            return Err(Error::UnknownProvider {
                name: preset_name,
                known: config.catalog.providers().map(|(n, _)| n.clone()).collect(),
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
        let mut edit = config.edit()?;
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
                ("connect_token_url", e.connect_token_url.as_deref()),
                ("base_url", request.base_url.as_deref()),
                ("ca_file", ca_file.as_deref()),
            ],
        )?;
        let next = edit.validate()?;

        let now = self.app.now();
        let secret_stored = match &secret {
            Some(secret) => {
                self.app.secrets.put(
                    &crate::grant::store::client_secret_key(self.app.home_id(), &request.name),
                    secret,
                )?;
                true
            }
            None => false,
        };
        edit.write()?;
        self.app.replace_config(next);
        self.app
            .db()
            .provider_upsert(&request.name, now)
            .map_err(|e| self.app.store_err(e))?;
        if secret_stored {
            self.app
                .db()
                .provider_secret_stored(&request.name, Some(now))
                .map_err(|e| self.app.store_err(e))?;
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
    pub fn set_secret(&self, name: &str, secret: Secret) -> Result<()> {
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
        self.app.secrets.put(
            &crate::grant::store::client_secret_key(self.app.home_id(), name),
            &secret,
        )?;
        let now = self.app.now();
        let db = self.app.db();
        db.provider_upsert(name, now)
            .and_then(|()| db.provider_secret_stored(name, Some(now)))
            .map_err(|e| self.app.store_err(e))
    }
}

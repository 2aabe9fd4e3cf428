//! Providers: adding one (its client secret, or an OAuth 1.0a link's private key, to the
//! keychain first, then latch.toml), replacing its client secret, showing a link's public key.

use crate::app::App;
use crate::config::{check_redirect_uri, Provider};
use crate::credential::oauth1::LinkKey;
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
    /// An MCP server's endpoint (`mcp` and `atlassian-mcp` presets).
    pub mcp_url: Option<String>,
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
    /// An OAuth 1.0a application link instead of OAuth 2.0 (Jira, Confluence Data Center).
    pub link: Option<LinkSetup>,
}

/// How `provider add --oauth1` sets up the link.
#[derive(Clone, Debug)]
pub struct LinkSetup {
    /// The consumer key the link's incoming authentication uses (chosen by the person).
    pub consumer_key: String,
    /// Where the private key comes from.
    pub key: LinkKeySource,
}

/// Where a link's private key comes from.
#[derive(Clone, Debug, Default)]
pub enum LinkKeySource {
    /// The key already in the keychain, or a new one when there is none: a new key would break
    /// the link and every token made through it.
    #[default]
    Keep,
    /// A new key (rotation): the link's public key must be pasted again.
    New,
    /// An existing key, PEM (PKCS#1 or PKCS#8), read by the face from a file.
    Import(Secret),
}

/// What the admin pastes into the application link's incoming authentication.
#[derive(Clone, Debug, serde::Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct LinkPublicKey {
    /// The provider.
    pub provider: String,
    /// Consumer key.
    pub consumer_key: String,
    /// Consumer name (any; Latch suggests one).
    pub consumer_name: String,
    /// The public key, PEM (`BEGIN PUBLIC KEY`).
    pub public_key: String,
    /// Its fingerprint (`SHA256:…`).
    pub fingerprint: String,
    /// Where the links are configured on the instance.
    pub console_url: Option<String>,
    /// What happened to the key: `generated`, `kept`, `imported` or `rotated`.
    pub key: String,
}

/// A client certificate set on a provider.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ClientCertSet {
    /// The provider.
    pub provider: String,
    /// The certificate file latch.toml now names.
    pub path: String,
    /// The certificate's subject.
    pub subject: String,
    /// When it expires.
    #[serde(with = "crate::clock::stamp")]
    pub not_after: time::OffsetDateTime,
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
    /// An OAuth 1.0a link: what to paste into the instance.
    pub link: Option<LinkPublicKey>,
    /// The connector types that sign in through it (`jira-dc`, `jsm-dc` for a `jira-dc`
    /// instance): what to add next.
    pub connector_types: Vec<String>,
    /// Whether it is a Data Center instance (its own base URL).
    pub data_center: bool,
    /// An MCP server's provider: Latch registers itself at the first sign-in.
    pub mcp: bool,
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
        if let Some(link) = &request.link {
            if preset.oauth1.is_none() {
                return Err(Error::Invalid {
                    message: format!("preset `{preset_name}` has no OAuth 1.0a application links"),
                    fix:
                        "OAuth 1.0a is for Jira and Confluence Data Center (`--preset jira-dc` or \
                          `confluence-dc`)"
                            .to_owned(),
                });
            }
            if client_id.is_some() || secret.is_some() {
                return Err(Error::Invalid {
                    message: "an OAuth 1.0a link has a key pair, not a client id and secret"
                        .to_owned(),
                    fix: "leave out --client-id and the secret, or --oauth1 for an OAuth 2.0 link"
                        .to_owned(),
                });
            }
            if link.consumer_key.trim().is_empty()
                || link.consumer_key.contains(char::is_whitespace)
            {
                return Err(Error::Invalid {
                    message: "the consumer key is empty or has spaces".to_owned(),
                    fix: "pass --consumer-key with the key the link uses, such as `latch-cli`"
                        .to_owned(),
                });
            }
        }
        let link_key = match &request.link {
            Some(link) => Some(self.link_key(&request.name, &link.key)?),
            None => None,
        };
        if client_id.is_none() && secret.is_some() {
            return Err(Error::Invalid {
                message: "a client secret was given without a client id".to_owned(),
                fix: "pass --client-id with the app's id from the developer console (the secret \
                      belongs to that app)"
                    .to_owned(),
            });
        }
        if client_type == ClientType::Confidential
            && client_id.is_some()
            && secret.is_none()
            && request.link.is_none()
        {
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
                ("mcp_url", e.mcp_url.as_deref()),
                ("base_url", request.base_url.as_deref()),
                ("ca_file", ca_file.as_deref()),
                ("oauth", request.link.as_ref().map(|_| "1.0a")),
                (
                    "consumer_key",
                    request.link.as_ref().map(|l| l.consumer_key.trim()),
                ),
            ],
        )?;
        let next = edit.validate()?;
        // The key before latch.toml: a link named in the file always has its key.
        if let Some((key, how)) = &link_key {
            if *how != "kept" {
                self.app.secrets.put(
                    &crate::grant::store::link_key_key(self.app.home_id(), &request.name),
                    &key.to_pem().map_err(|e| Error::Invalid {
                        message: e.to_string(),
                        fix: "try again".to_owned(),
                    })?,
                )?;
            }
        }

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
        self.app.written(next);
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
        if let Some((key, _)) = &link_key {
            self.app
                .db()
                .provider_link_fingerprint(&request.name, Some(&key.fingerprint()))
                .map_err(|e| self.app.store_err(e))?;
        }
        let provider = self.provider_or_err(&request.name)?;
        let (redirect_uri, has_app) = (provider.redirect_uri.clone(), provider.client_id.is_some());
        let link = match (&provider.oauth1, link_key) {
            (Some(link), Some((key, how))) => Some(LinkPublicKey {
                provider: request.name.clone(),
                consumer_key: link.consumer_key.clone(),
                consumer_name: "Latch".to_owned(),
                public_key: key.public_pem(),
                fingerprint: key.fingerprint(),
                console_url: console_url.clone(),
                key: how.to_owned(),
            }),
            _ => None,
        };
        let connector_types = config
            .catalog
            .connectors()
            .filter(|(_, spec)| spec.provider == preset_name)
            .map(|(name, _)| name.clone())
            .collect();
        Ok(ProviderAdded {
            name: request.name,
            updated,
            secret_stored,
            redirect_uri: if link.is_some() { None } else { redirect_uri },
            // The instance's own page, its base URL filled in.
            console_url: provider.spec.console_url.clone().or(console_url),
            has_app: has_app || link.is_some(),
            link,
            connector_types,
            data_center: provider.base_url.is_some(),
            mcp: provider.spec.mcp_discovery,
        })
    }

    /// The key a link set-up uses, and what happened to it (`kept`, `generated`, `imported`,
    /// `rotated`). Nothing is written here.
    fn link_key(&self, provider: &str, source: &LinkKeySource) -> Result<(LinkKey, &'static str)> {
        let invalid = |message: String, fix: &str| Error::Invalid {
            message,
            fix: fix.to_owned(),
        };
        let generate = || LinkKey::generate().map_err(|e| invalid(e.to_string(), "try again"));
        match source {
            LinkKeySource::Import(pem) => LinkKey::from_pem(pem.expose())
                .map(|key| (key, "imported"))
                .map_err(|e| {
                    invalid(
                        e.to_string(),
                        "pass the link's private key file (`openssl genrsa -out key.pem 2048` \
                         makes one), or leave out --private-key and Latch makes one",
                    )
                }),
            LinkKeySource::New => Ok((generate()?, "rotated")),
            LinkKeySource::Keep => {
                let item = crate::grant::store::link_key_key(self.app.home_id(), provider);
                match self.app.secrets.get(&item)? {
                    Some(pem) => match LinkKey::from_pem(pem.expose()) {
                        Ok(key) => Ok((key, "kept")),
                        Err(_) => Ok((generate()?, "generated")),
                    },
                    None => Ok((generate()?, "generated")),
                }
            }
        }
    }

    /// What the admin pastes into a link: the public key of the private key in the keychain.
    pub fn public_key(&self, name: &str) -> Result<LinkPublicKey> {
        let provider = self.provider_or_err(name)?;
        let Some(link) = &provider.oauth1 else {
            return Err(Error::Invalid {
                message: format!("provider `{name}` is not an OAuth 1.0a application link"),
                fix: format!(
                    "set one up: `latch provider add {name} --preset jira-dc --base-url URL \
                     --oauth1 --consumer-key KEY`"
                ),
            });
        };
        let item = crate::grant::store::link_key_key(self.app.home_id(), name);
        let Some(pem) = self.app.secrets.get(&item)? else {
            return Err(Error::Invalid {
                message: format!("the link key of `{name}` is not in the keychain"),
                fix: format!(
                    "run `latch provider add {name} --preset {} --base-url URL --oauth1 \
                     --consumer-key {}` to make one",
                    provider.preset, link.consumer_key
                ),
            });
        };
        let key = LinkKey::from_pem(pem.expose()).map_err(|e| Error::Invalid {
            message: format!("the link key of `{name}` in the keychain is unusable: {e}"),
            fix: format!("make a new one: `latch provider add {name} … --oauth1 --new-key`"),
        })?;
        Ok(LinkPublicKey {
            provider: name.to_owned(),
            consumer_key: link.consumer_key.clone(),
            consumer_name: "Latch".to_owned(),
            public_key: key.public_pem(),
            fingerprint: key.fingerprint(),
            console_url: provider.spec.console_url.clone(),
            key: "kept".to_owned(),
        })
    }

    /// Sets the client certificate a provider's connections present (mTLS): the private key
    /// into the keychain first, then `client_cert` (the certificate file's absolute path) in
    /// latch.toml. The key must go with the certificate; nothing is stored otherwise.
    pub fn set_client_cert(
        &self,
        name: &str,
        cert: &std::path::Path,
        key: &Secret,
    ) -> Result<ClientCertSet> {
        self.provider_or_err(name)?;
        let invalid = |message: String, fix: &str| Error::Invalid {
            message,
            fix: fix.to_owned(),
        };
        let full = std::path::absolute(cert).map_err(|e| {
            invalid(
                format!("{}: {e}", cert.display()),
                "pass the certificate's path",
            )
        })?;
        let shown = full.to_str().map(str::to_owned).ok_or_else(|| {
            invalid(
                format!("the certificate path {} is not UTF-8", full.display()),
                "move the file to a path with a plain name",
            )
        })?;
        let read = crate::net::tls::ClientCert::read(&full).map_err(|e| {
            invalid(
                e.to_string(),
                "pass the PEM certificate (-----BEGIN CERTIFICATE-----) your gateway's admin \
                 issued with --cert",
            )
        })?;
        crate::net::tls::check_identity(&read, key.expose()).map_err(|why| {
            invalid(
                format!(
                    "the key does not fit the certificate {}: {why}",
                    full.display()
                ),
                "pass the private key (PKCS#1, PKCS#8 or EC PEM) made with this certificate's \
                 request",
            )
        })?;
        let mut edit = self.app.config().edit()?;
        edit.set("providers", name, &[("client_cert", Some(shown.as_str()))])?;
        let next = edit.validate()?;
        // The key before latch.toml: a certificate named in the file always has its key.
        self.app.secrets.put(
            &crate::grant::store::client_key_key(self.app.home_id(), name),
            key,
        )?;
        edit.write()?;
        self.app.written(next);
        Ok(ClientCertSet {
            provider: name.to_owned(),
            path: shown,
            subject: read.subject,
            not_after: read.not_after,
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

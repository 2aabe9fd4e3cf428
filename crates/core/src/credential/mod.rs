//! Credential kinds behind one interface: what a connector sends upstream, and how Latch gets
//! it. Three kinds, one module each:
//! - [`user_grant`]: a person's consent — a rotating refresh-token family, refreshed with the
//!   rules of atlassian-wire §1.4;
//! - [`client_credentials`]: a service account's client id and secret — access tokens only;
//! - [`static_secret`]: API tokens, PATs and API keys stored as they are.
//!
//! The first two share the single-flight machinery of [`crate::grant::Grants`].

pub(crate) mod client_credentials;
pub(crate) mod static_secret;
pub(crate) mod user_grant;

use base64::Engine as _;

use crate::config::{Config, Provider};
use crate::error::GrantError;
use crate::grant::store::GrantStore;
use crate::net::oauth::TokenEndpoint;
use crate::provider::catalog::AuthMode;
use crate::secret::Secret;

/// An upstream credential, ready to go in an `Authorization` header.
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
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Bearer(_) => "Credential::Bearer(<redacted>)",
            Self::Basic { .. } => "Credential::Basic(<redacted>)",
            Self::GenieKey(_) => "Credential::GenieKey(<redacted>)",
        })
    }
}

impl Credential {
    /// The full `Authorization` header value.
    pub fn authorization(&self) -> Secret {
        match self {
            Self::Bearer(token) => Secret::new(format!("Bearer {}", token.expose())),
            Self::Basic { user, token } => {
                let raw = Secret::new(format!("{user}:{}", token.expose()));
                Secret::new(format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(raw.expose())
                ))
            }
            Self::GenieKey(key) => Secret::new(format!("GenieKey {}", key.expose())),
        }
    }

    /// The bare token (what `latch token` prints).
    pub fn token(&self) -> &Secret {
        match self {
            Self::Bearer(t) | Self::GenieKey(t) => t,
            Self::Basic { token, .. } => token,
        }
    }

    /// The `Authorization` scheme.
    pub fn scheme(&self) -> &'static str {
        match self {
            Self::Bearer(_) => "Bearer",
            Self::Basic { .. } => "Basic",
            Self::GenieKey(_) => "GenieKey",
        }
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
}

impl CredentialKind {
    /// The kind an auth mode uses.
    pub fn of(auth: AuthMode) -> Self {
        match auth {
            AuthMode::User => Self::UserGrant,
            AuthMode::Service => Self::ClientCredentials,
            AuthMode::ApiToken | AuthMode::Pat | AuthMode::ApiKey | AuthMode::Basic => Self::Static,
        }
    }

    /// Whether it draws on a grant (an OAuth token Latch obtains and caches).
    pub fn is_grant(self) -> bool {
        !matches!(self, Self::Static)
    }
}

/// What every kind needs to reach its token endpoint and keep what it gets.
pub(crate) struct Ctx<'a> {
    pub(crate) config: &'a Config,
    pub(crate) store: &'a GrantStore,
    pub(crate) clients: &'a crate::net::tls::ProviderClients,
}

impl Ctx<'_> {
    /// A provider with what OpenID discovery fills in (for token requests and sign-in).
    pub(crate) async fn provider_resolved(&self, name: &str) -> Result<Provider, GrantError> {
        let provider = self.provider(name)?;
        crate::upstream::discovery::resolve(self.store, self.http(name), provider).await
    }

    /// The HTTP client for a provider (its CA file trusted).
    pub(crate) fn http(&self, provider: &str) -> &reqwest::Client {
        self.clients.for_provider(provider)
    }

    pub(crate) fn provider(&self, name: &str) -> Result<&Provider, GrantError> {
        self.config
            .provider(name)
            .ok_or_else(|| GrantError::Misconfigured {
                message: format!("provider `{name}` is not configured"),
                fix: format!("run `latch provider add {name} --client-id ...`"),
            })
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
    })
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
            basic.authorization().expose(),
            "Basic bWVAZXhhbXBsZS5jb206dG9r"
        );
        let genie = Credential::GenieKey(Secret::new("k".into()));
        assert_eq!(genie.authorization().expose(), "GenieKey k");
        assert_eq!(genie.scheme(), "GenieKey");
    }
}

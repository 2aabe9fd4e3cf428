//! A user acted as through a Connect app: the OAuth 2.0 JWT bearer grant with `ACT_AS_USER`
//! (atlassian-wire §7, §12.2). The app signs an assertion with its shared secret naming the
//! account; the token endpoint answers a 15-minute access token and no refresh token, so a new
//! assertion is sent before it expires — through the same single flight as any mint.

use crate::config::Connector;
use crate::credential::connect::{self, ConnectApp};
use crate::error::GrantError;
use crate::grant::{Ctx, GrantId, GrantRow, GrantState, Mint, Minting};
use crate::net::oauth::{self, TokenError};
use crate::net::retry::{retry, Next};
use crate::secret::Secret;

/// An assertion lives at most this long (the endpoint refuses more than 60 s).
const ASSERTION_LIFETIME: i64 = 60;

/// Where Atlassian's staging sites ask instead of the production endpoint.
const STAGING_TOKEN_URL: &str =
    "https://oauth-2-authorization-server.stg.services.atlassian.com/oauth2/token";

/// A `connect-user` grant's mint.
pub(crate) struct JwtBearer {
    connector: String,
    provider: String,
}

impl JwtBearer {
    pub(crate) fn new(connector: &str, provider: &str) -> Self {
        Self {
            connector: connector.to_owned(),
            provider: provider.to_owned(),
        }
    }
}

impl Mint for JwtBearer {
    fn provider(&self) -> &str {
        &self.provider
    }

    fn mint<'a>(&'a self, ctx: &'a Ctx<'a>, grant: &'a GrantId, row: GrantRow) -> Minting<'a> {
        Box::pin(request(ctx, grant, row))
    }

    fn not_started(&self, _grant: &GrantId) -> GrantError {
        GrantError::CredentialMissing {
            connector: self.connector.clone(),
            fix: format!(
                "store the app's installed payload: `latch credential set {} < installed.json`",
                self.connector
            ),
        }
    }

    fn still_refused(&self, _ctx: &Ctx<'_>, row: &GrantRow) -> Option<GrantError> {
        Some(refused(
            &self.connector,
            row.last_error.clone().unwrap_or_default(),
        ))
    }
}

fn refused(connector: &str, reason: String) -> GrantError {
    GrantError::ImpersonationRefused {
        connector: connector.to_owned(),
        reason,
        fix: format!(
            "check that the app's descriptor has the ACT_AS_USER scope, that `account_id` names \
             an account of this site, and this machine's clock; then `latch credential set \
             {connector}` again to retry"
        ),
    }
}

/// The scope a connector asks for: upper-case, space-separated, `ACT_AS_USER` added.
pub(crate) fn scope(connector: &Connector) -> Option<String> {
    let listed = connector.scopes.as_ref()?;
    let mut scopes: Vec<String> = listed
        .iter()
        .map(|s| s.as_str().to_ascii_uppercase())
        .collect();
    if !scopes.iter().any(|s| s == "ACT_AS_USER") {
        scopes.push("ACT_AS_USER".to_owned());
    }
    Some(scopes.join(" "))
}

/// The token endpoint for an app: the provider's `connect_token_url`, or the staging one for a
/// staging site unless the provider overrides it.
fn token_url(ctx: &Ctx<'_>, connector: &Connector, app: &ConnectApp) -> Result<String, GrantError> {
    let provider = ctx.provider(&connector.provider)?;
    let preset = ctx
        .config
        .catalog
        .provider(&provider.preset)
        .and_then(|p| p.connect_token_url.clone());
    let url = provider
        .spec
        .connect_token_url
        .clone()
        .ok_or_else(|| GrantError::Misconfigured {
            message: format!(
                "provider `{}` has no `connect_token_url` for Connect apps",
                provider.name
            ),
            fix: "set `connect_token_url` under the provider in latch.toml".to_owned(),
        })?;
    let staging = app
        .base_url
        .parse::<url::Url>()
        .ok()
        .and_then(|u| u.host_str().map(|h| h.ends_with(".jira-dev.com")))
        .unwrap_or(false);
    Ok(if staging && preset.as_deref() == Some(url.as_str()) {
        STAGING_TOKEN_URL.to_owned()
    } else {
        url
    })
}

/// The signed assertion naming the account (`tnt` is the base URL, `/wiki` and all).
pub(crate) fn assertion(
    app: &ConnectApp,
    secret: &Secret,
    account_id: &str,
    token_url: &str,
    now: i64,
) -> Result<Secret, GrantError> {
    let client_id = app
        .oauth_client_id
        .as_deref()
        .ok_or_else(|| GrantError::Misconfigured {
            message: "the installed payload has no `oauthClientId`: the app cannot act as a user"
                .to_owned(),
            fix: "add `ACT_AS_USER` to the app's descriptor, reinstall it, and store its new \
              installed payload with `latch credential set`"
                .to_owned(),
        })?;
    let audience = url::Url::parse(token_url)
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_else(|_| token_url.to_owned());
    let claims = serde_json::json!({
        "iss": format!("urn:atlassian:connect:clientid:{client_id}"),
        "sub": format!("urn:atlassian:connect:useraccountid:{account_id}"),
        "tnt": app.base_url,
        "aud": audience,
        "iat": now,
        "exp": now + ASSERTION_LIFETIME,
    });
    Ok(connect::hs256(&claims, secret))
}

async fn request(
    ctx: &Ctx<'_>,
    grant: &GrantId,
    row: GrantRow,
) -> Result<(Secret, GrantRow), GrantError> {
    let name = grant.owner();
    let connector = ctx
        .config
        .connector(name)
        .ok_or_else(|| ctx.config.unknown_connector_grant(name))?
        .clone();
    let (app, secret) = connect::stored(ctx, &connector).await?;
    let account = connector.account_id.clone().unwrap_or_default();
    let url = token_url(ctx, &connector, &app)?;
    let scope = scope(&connector);
    let result = retry(
        || async {
            let now = time::OffsetDateTime::now_utc().unix_timestamp();
            let assertion = assertion(&app, &secret, &account, &url, now)
                .map_err(|e| TokenError::BadResponse(e.to_string()))?;
            oauth::request_jwt_bearer(
                ctx.http(&connector.provider),
                &url,
                &assertion,
                scope.as_deref(),
            )
            .await
        },
        // No refresh token is at stake: a new assertion is always safe to send.
        |err: &TokenError, _| {
            if err.is_transient() || matches!(err, TokenError::Lost(_)) {
                Next::Backoff
            } else {
                Next::Stop
            }
        },
    )
    .await;
    match result {
        Ok(tokens) => {
            let stored = ctx.store.store_tokens(grant, row, tokens, None).await?;
            tracing::info!(grant = %grant, "acting as the connector's user");
            Ok(stored)
        }
        Err(err @ (TokenError::InvalidGrant { .. } | TokenError::Rejected { .. })) => {
            let reason = err.to_string();
            ctx.store
                .fail(row, GrantState::CredentialRejected, reason.clone())?;
            Err(refused(name, reason))
        }
        Err(err) => {
            let reason = err.to_string();
            ctx.store
                .fail(row, GrantState::RefreshFailing, reason.clone())?;
            Err(GrantError::RefreshFailing {
                grant: grant.to_string(),
                reason,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    #[test]
    fn the_assertion_names_the_app_the_account_and_the_site() {
        let app = ConnectApp {
            key: "app".into(),
            client_key: "ck".into(),
            base_url: "https://acme.atlassian.net/wiki".into(),
            oauth_client_id: Some("oc-1".into()),
        };
        let url = "https://oauth-2-authorization-server.services.atlassian.com/oauth2/token";
        let jwt = assertion(&app, &Secret::new("s".into()), "5b10", url, 100).unwrap();
        let claims: serde_json::Value = serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(jwt.expose().split('.').nth(1).unwrap())
                .unwrap(),
        )
        .unwrap();
        assert_eq!(claims["iss"], "urn:atlassian:connect:clientid:oc-1");
        assert_eq!(claims["sub"], "urn:atlassian:connect:useraccountid:5b10");
        assert_eq!(claims["tnt"], "https://acme.atlassian.net/wiki");
        assert_eq!(
            claims["aud"],
            "https://oauth-2-authorization-server.services.atlassian.com"
        );
        assert_eq!(claims["exp"], 160);
        let without = ConnectApp {
            oauth_client_id: None,
            ..app
        };
        assert!(assertion(&without, &Secret::new("s".into()), "5b10", url, 100).is_err());
    }
}

//! A service account: the client-credentials grant (atlassian-wire §5; seeds 000/001). No 3LO
//! app, no sign-in, no refresh token: a new access token is requested before the cached one
//! expires, through the same single flight as any refresh.
//!
//! The request carries no `scope` unless the connector lists `scopes` (the credential's scopes
//! were chosen when an admin created it), and `audience` only when the connector sets one.
//! Providers whose client credentials take a scope (Data Center, §8.2) get the connector's
//! catalog scopes when it lists none.
//! A refusal names the credential and where an admin fixes it — never "sign in".

use crate::credential::{provider_resolved, token_endpoint};
use crate::error::GrantError;
use crate::grant::{Ctx, Mint, Minting};
use crate::net::oauth::{self, TokenError};
use crate::net::retry::{retry, Next};
use crate::provider::catalog::AuthMode;

use crate::secret::Secret;
use latch_store::{GrantId, GrantRow, GrantState};

/// A service grant's mint: a client-credentials request with its connector's id and secret.
pub(crate) struct TokenRequest {
    connector: String,
    provider: String,
}

impl TokenRequest {
    pub(crate) fn new(connector: &str, provider: &str) -> Self {
        Self {
            connector: connector.to_owned(),
            provider: provider.to_owned(),
        }
    }
}

impl Mint for TokenRequest {
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
                "store the service account's client secret: `latch credential set {}`",
                self.connector
            ),
        }
    }

    fn still_refused(&self, ctx: &Ctx<'_>, row: &GrantRow) -> Option<GrantError> {
        let rules = ctx.config.rules_of(&self.provider);
        Some(GrantError::CredentialRejected {
            connector: self.connector.clone(),
            reason: row.last_error.clone().unwrap_or_default(),
            fix: format!(
                "{}; then store the right secret with `latch credential set {}`",
                rules.service_account_console(),
                self.connector
            ),
        })
    }
}

/// Requests a new access token for a service grant. Returns it with the row as stored.
async fn request(
    ctx: &Ctx<'_>,
    grant: &GrantId,
    row: GrantRow,
) -> Result<(Secret, GrantRow), GrantError> {
    let name = grant.owner();
    let connector = ctx
        .config
        .connector(name)
        .filter(|c| c.auth == AuthMode::Service)
        .ok_or_else(|| ctx.config.unknown_connector_grant(name))?
        .clone();
    let provider = provider_resolved(ctx, &connector.provider).await?;
    let Some(client_id) = connector.client_id.as_deref() else {
        return Err(GrantError::Misconfigured {
            message: format!("service connector `{name}` has no client id"),
            fix: format!(
                "set `client_id = \"...\"` under [connectors.{name}] in latch.toml (the service \
                 account's OAuth client id)"
            ),
        });
    };
    let endpoint = token_endpoint(&provider, Some(client_id))?;
    let secret = ctx
        .store
        .secret(ctx.store.connector_secret_key(name))
        .await?
        .ok_or_else(|| GrantError::CredentialMissing {
            connector: name.to_owned(),
            fix: format!(
                "store the service account's client secret: `latch credential set {name}`"
            ),
        })?;
    let scopes = connector.scopes.as_ref().or(provider
        .spec
        .service_requests_scopes
        .then_some(&connector.spec.upstream_scopes));
    let result = retry(
        || {
            oauth::request_token(
                ctx.http(&provider.name),
                &endpoint,
                Some(&secret),
                oauth::Grant::ClientCredentials {
                    scopes,
                    audience: connector.audience.as_deref(),
                },
            )
        },
        // No refresh token is at stake: re-sending a client-credentials request is safe.
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
            tracing::info!(
                grant = %grant,
                expires_at = ?stored.1.access_expires_at,
                "service account token obtained"
            );
            Ok(stored)
        }
        Err(err @ (TokenError::InvalidGrant { .. } | TokenError::Rejected { .. })) => {
            let profile = provider.rules();
            let reason = err.to_string();
            ctx.store
                .fail(row, GrantState::CredentialRejected, reason.clone())?;
            let requested = scopes
                .map(|s| format!("; Latch asked for scopes `{s}` (connector `scopes`)"))
                .unwrap_or_default();
            Err(GrantError::CredentialRejected {
                connector: name.to_owned(),
                reason: format!("{reason}{requested}"),
                fix: format!(
                    "{}; then store the right secret with `latch credential set {name}`",
                    profile.service_account_console()
                ),
            })
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

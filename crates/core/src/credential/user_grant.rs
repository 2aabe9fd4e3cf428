//! A person's consent: refreshing a rotating refresh-token family (atlassian-wire §1.4).
//!
//! Called with the grant's locks held and the stored row re-read. The order is the contract:
//! mark the refresh as started, send it, store the rotated refresh token in the keychain before
//! the access token, keep the old refresh token when the answer has none. `invalid_grant`
//! means the family is dead (`needs_login`), never retried; transient failures are retried
//! with backoff. A sent request is never abandoned before `[network] refresh_timeout_secs`
//! (the caller may stop waiting; this runs in its own task). Only when that timeout passes with
//! no answer is the same token resent — once, while inside the provider's reuse window, never an
//! older one. A provider without a reuse window gets no resend, and the grant says
//! `refresh_uncertain` until the next refresh or sign-in tells.

use std::time::{Duration, Instant};

use crate::credential::{provider_resolved, token_endpoint};
use crate::error::GrantError;
use crate::grant::store::note_local_write;
use crate::grant::{Ctx, Grants, Mint, Minting};
use crate::net::oauth::{self, TokenError};
use crate::net::retry::{retry, Next};
use crate::secret::Secret;
use latch_store::{GrantId, GrantRow, GrantState};

/// A user grant's mint: a refresh at its provider's token endpoint.
pub(crate) struct Refresh {
    provider: String,
}

impl Refresh {
    pub(crate) fn new(provider: &str) -> Self {
        Self {
            provider: provider.to_owned(),
        }
    }
}

impl Mint for Refresh {
    fn provider(&self) -> &str {
        &self.provider
    }

    fn mint<'a>(&'a self, ctx: &'a Ctx<'a>, grant: &'a GrantId, row: GrantRow) -> Minting<'a> {
        Box::pin(refresh(ctx, grant, row))
    }

    fn not_started(&self, grant: &GrantId) -> GrantError {
        GrantError::NotSignedIn {
            grant: grant.to_string(),
            fix: format!("sign in: `latch login {}`", grant.owner()),
        }
    }
}

/// Refreshes a user grant. Returns the new access token and the row as stored.
async fn refresh(
    ctx: &Ctx<'_>,
    grant: &GrantId,
    mut row: GrantRow,
) -> Result<(Secret, GrantRow), GrantError> {
    let provider = provider_resolved(ctx, grant.owner()).await?;
    let endpoint = token_endpoint(&provider, None)?;
    let client_secret = ctx.store.client_secret(&provider).await?;
    let Some(refresh_token) = ctx.store.secret(ctx.store.refresh_token_key(grant)).await? else {
        let reason = "no refresh token is stored for it".to_owned();
        return Err(needs_login(ctx, row, grant, reason));
    };
    let interrupted = row.refresh_started_at.is_some();
    row.refresh_started_at = Some(ctx.store.now());
    ctx.store.save(&row)?;
    ctx.store.crash_point("before_request");

    let window = Duration::from_secs(provider.spec.refresh_reuse_window_secs.unwrap_or(0));
    let redirect_uri = provider
        .spec
        .refresh_sends_redirect_uri
        .then_some(provider.redirect_uri.as_deref())
        .flatten();
    let started = Instant::now();
    let mut resent_after_loss = false;
    let result = retry(
        || {
            oauth::request_token_within(
                ctx.http(&provider.name),
                &endpoint,
                client_secret.as_ref(),
                oauth::Grant::Refresh {
                    token: &refresh_token,
                    redirect_uri,
                },
                Some(ctx.config.refresh_timeout),
            )
        },
        |err: &TokenError, _| match err {
            // The provider may have rotated the token without us seeing the answer: the same
            // token may be sent once more inside the reuse window, never after it.
            TokenError::Lost(_) if !resent_after_loss && started.elapsed() < window => {
                resent_after_loss = true;
                Next::Now
            }
            err if err.is_transient() => Next::Backoff,
            _ => Next::Stop,
        },
    )
    .await;
    let tokens = match result {
        Ok(tokens) => tokens,
        Err(TokenError::InvalidGrant { description }) => {
            let mut reason = format!(
                "the provider answered invalid_grant{} (the refresh token was rotated, revoked, \
                 or expired after inactivity)",
                description.map(|d| format!(": {d}")).unwrap_or_default()
            );
            if interrupted {
                reason.push_str(
                    "; an earlier refresh was interrupted after the provider rotated the token",
                );
            }
            return Err(needs_login(ctx, row, grant, reason));
        }
        // No answer at all: the provider may have rotated the token. Without a reuse window
        // (or after the one resend) nothing may be sent again blindly; say so.
        Err(err @ TokenError::Lost(_)) => {
            let reason = format!(
                "{err}{}",
                if window.is_zero() {
                    "; this provider has no reuse window, so the request was not resent"
                } else {
                    "; resent once inside the reuse window, with no answer either"
                }
            );
            tracing::warn!(grant = %grant, %reason, "refresh answer lost");
            ctx.store
                .fail(row, GrantState::RefreshUncertain, reason.clone())?;
            return Err(GrantError::RefreshUncertain {
                grant: grant.to_string(),
                provider: grant.owner().to_owned(),
                reason,
            });
        }
        Err(err) => {
            let reason = err.to_string();
            tracing::warn!(grant = %grant, %reason, "refresh failed");
            ctx.store
                .fail(row, GrantState::RefreshFailing, reason.clone())?;
            return Err(GrantError::RefreshFailing {
                grant: grant.to_string(),
                reason,
            });
        }
    };
    ctx.store.crash_point("after_response");
    let stored = ctx
        .store
        .store_tokens(grant, row, tokens, Some(refresh_token))
        .await?;
    tracing::info!(
        grant = %grant,
        generation = stored.1.generation,
        expires_at = ?stored.1.access_expires_at,
        "refreshed"
    );
    Ok(stored)
}

pub(crate) fn needs_login(
    ctx: &Ctx<'_>,
    row: GrantRow,
    grant: &GrantId,
    reason: String,
) -> GrantError {
    tracing::warn!(grant = %grant, %reason, "the sign-in is dead; it needs the person");
    if let Err(err) = ctx.store.fail(row, GrantState::NeedsLogin, reason.clone()) {
        return err;
    }
    GrantError::NeedsLogin {
        grant: grant.to_string(),
        provider: grant.owner().to_owned(),
        reason,
    }
}

/// Signs out of a provider: revokes the refresh token where the provider supports it, deletes
/// the keychain items and forgets the grant.
pub(crate) async fn logout(
    grants: &Grants,
    provider_name: &str,
) -> Result<LogoutOutcome, GrantError> {
    let ctx = grants.ctx();
    // Discovery may fail offline; signing out still deletes what is stored.
    let provider = match provider_resolved(&ctx, provider_name).await {
        Ok(provider) => provider,
        Err(_) => ctx.provider(provider_name)?.clone(),
    };
    let store = grants.store();
    let grant = GrantId::user(provider_name);
    let rt_key = store.refresh_token_key(&grant);
    let at_key = store.access_token_key(&grant);
    let refresh_token = store.secret(rt_key.clone()).await?;
    let revoked = match (&provider.spec.revoke_url, &refresh_token) {
        (Some(url), Some(token)) => {
            let endpoint = token_endpoint(&provider, None)?;
            let secret = store.client_secret(&provider).await.ok().flatten();
            match oauth::revoke(
                ctx.http(&provider.name),
                url,
                &endpoint,
                secret.as_ref(),
                token,
                "refresh_token",
            )
            .await
            {
                Ok(()) => Revocation::Revoked,
                Err(err) => Revocation::Failed(err.to_string()),
            }
        }
        (None, Some(_)) => Revocation::Unsupported,
        (_, None) => Revocation::NothingToRevoke,
    };
    let deleted = store.delete_secrets(vec![rt_key, at_key]).await?;
    let existed = store.db().grant_delete(&grant)?;
    note_local_write();
    grants.forget(&grant);
    Ok(LogoutOutcome {
        provider: provider_name.to_owned(),
        signed_in: existed,
        revoked,
        keychain_items_deleted: deleted,
    })
}

/// What `latch logout` did.
#[derive(Debug, serde::Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct LogoutOutcome {
    /// Provider.
    pub provider: String,
    /// Whether there was a grant.
    pub signed_in: bool,
    /// What happened at the provider.
    pub revoked: Revocation,
    /// How many keychain items were deleted.
    pub keychain_items_deleted: usize,
}

/// The outcome of revoking at the provider.
#[derive(Debug, serde::Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case", tag = "result", content = "detail")]
pub enum Revocation {
    /// The provider revoked the token family.
    Revoked,
    /// The provider has no revocation endpoint (Atlassian 3LO): the token dies with disuse.
    Unsupported,
    /// There was no refresh token.
    NothingToRevoke,
    /// Revocation failed; the keychain items were deleted anyway.
    Failed(String),
}

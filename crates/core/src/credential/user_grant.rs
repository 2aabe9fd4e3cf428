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

use crate::credential::{token_endpoint, Ctx};
use crate::error::GrantError;
use crate::net::oauth::{self, TokenError};
use crate::net::retry::{retry, Next};
use crate::secret::Secret;
use latch_store::{GrantId, GrantRow, GrantState};

/// Refreshes a user grant. Returns the new access token and the row as stored.
pub(crate) async fn refresh(
    ctx: &Ctx<'_>,
    grant: &GrantId,
    mut row: GrantRow,
) -> Result<(Secret, GrantRow), GrantError> {
    let provider = ctx.provider_resolved(grant.owner()).await?;
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

fn needs_login(ctx: &Ctx<'_>, row: GrantRow, grant: &GrantId, reason: String) -> GrantError {
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

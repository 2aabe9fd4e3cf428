//! The keys and tokens of OAuth 1.0a application links (atlassian-wire §12.3). The link's RSA
//! private key is a keychain item of its provider; a person's access token (3-legged) is a
//! grant like any sign-in's, kept in the keychain, but nothing refreshes it: it lives as long
//! as the instance says (`oauth_expires_in`, five years on a default install) and is renewed
//! only with a session handle, when the instance gave one.

use crate::config::{Connector, OAuth1Link, Provider};
use crate::credential::oauth1::{self, LinkCredential, LinkKey, Refused, TokenAnswer};
use crate::credential::user_grant::needs_login;
use crate::error::GrantError;
use crate::grant::store::GrantStore;
use crate::grant::{Ctx, GrantId, GrantRow, GrantState, Mint, Minting};
use crate::provider::catalog::AuthMode;
use crate::secret::Secret;

/// What Latch assumes when an access-token answer gives no `oauth_expires_in`: the lifetime of
/// a default install's tokens.
const DEFAULT_LIFETIME_SECS: i64 = 157_680_000;

/// A provider's link, or why it has none.
pub(crate) fn link_config(provider: &Provider) -> Result<&OAuth1Link, GrantError> {
    provider
        .oauth1
        .as_ref()
        .ok_or_else(|| GrantError::Misconfigured {
            message: format!(
                "provider `{}` is not an OAuth 1.0a application link",
                provider.name
            ),
            fix: format!(
                "add `oauth = \"1.0a\"` and `consumer_key` under [providers.{}]",
                provider.name
            ),
        })
}

/// A provider's link key from the keychain.
pub(crate) async fn read_key(
    store: &GrantStore,
    provider: &Provider,
) -> Result<LinkKey, GrantError> {
    let make = format!(
        "run `latch provider add {} --oauth1 --consumer-key KEY` (it makes a key) or pass \
         `--private-key FILE`, then paste `latch provider public-key {}` into the link",
        provider.name, provider.name
    );
    let Some(pem) = store.secret(store.link_key_key(&provider.name)).await? else {
        return Err(GrantError::Misconfigured {
            message: format!(
                "the application link key of `{}` is not in the keychain",
                provider.name
            ),
            fix: make,
        });
    };
    LinkKey::from_pem(pem.expose()).map_err(|err| GrantError::Misconfigured {
        message: format!(
            "the application link key of `{}` in the keychain is unusable: {err}",
            provider.name
        ),
        fix: make,
    })
}

/// A connector's link credential without a person's token: the consumer key, the private key
/// and, for 2-legged impersonation, the user acted as.
pub(crate) async fn link_of(
    ctx: &Ctx<'_>,
    connector: &Connector,
) -> Result<LinkCredential, GrantError> {
    let provider = ctx.provider(&connector.provider)?;
    let link = link_config(provider)?;
    let key = read_key(ctx.store, provider).await?;
    Ok(LinkCredential {
        consumer_key: link.consumer_key.clone(),
        key,
        token: None,
        requestor: connector
            .username
            .clone()
            .filter(|_| connector.auth == AuthMode::OAuth1TwoLegged),
    })
}

/// Why a request to a link's token endpoints failed.
#[derive(Debug)]
pub(crate) enum TokenFailure {
    /// The instance refused it (`oauth_problem`).
    Refused(Refused),
    /// No usable answer (network, status without a problem, a body that is not a form).
    Failed(String),
}

/// One signed POST to a link's token endpoint (request token, access token, renewal); the
/// answer is form-encoded.
pub(crate) async fn token_request(
    http: &reqwest::Client,
    link: &OAuth1Link,
    key: &LinkKey,
    url: &str,
    token: Option<&Secret>,
    extra: &[(&str, &str)],
) -> Result<TokenAnswer, TokenFailure> {
    let target: http::Uri = url
        .parse()
        .map_err(|_| TokenFailure::Failed(format!("`{url}` is not a URL")))?;
    let header = oauth1::authorization(&link.consumer_key, key, token, extra, "POST", &target, &[]);
    let response = http
        .post(url)
        .header(reqwest::header::AUTHORIZATION, header.expose())
        .header(reqwest::header::CONTENT_LENGTH, "0")
        .send()
        .await
        .map_err(|e| TokenFailure::Failed(format!("{url} could not be reached: {e}")))?;
    let status = response.status();
    let www = response
        .headers()
        .get(reqwest::header::WWW_AUTHENTICATE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    // Bounded: token answers are a few hundred bytes.
    let body = response
        .bytes()
        .await
        .map_err(|e| TokenFailure::Failed(format!("{url} answered no body: {e}")))?;
    if body.len() > 64 * 1024 {
        return Err(TokenFailure::Failed(format!(
            "{url} answered {} bytes, not a token",
            body.len()
        )));
    }
    if let Some(refused) = Refused::read(www.as_deref(), &body) {
        return Err(TokenFailure::Refused(refused));
    }
    if !status.is_success() {
        return Err(TokenFailure::Failed(format!(
            "{url} answered HTTP {status}"
        )));
    }
    let answer = TokenAnswer::parse(&body);
    if answer.get("oauth_token").is_none() {
        return Err(TokenFailure::Failed(format!(
            "{url} answered without oauth_token"
        )));
    }
    Ok(answer)
}

/// Stores an access-token answer: the token and the session handle (when given) in the
/// keychain first, then the facts. The token secret is not kept: RSA-SHA1 signs with the
/// link's key alone.
pub(crate) async fn store_token(
    store: &GrantStore,
    grant: &GrantId,
    mut row: GrantRow,
    answer: &TokenAnswer,
) -> Result<(Secret, GrantRow), GrantError> {
    let token = Secret::new(answer.get("oauth_token").unwrap_or_default().to_owned());
    if let Some(handle) = answer.get("oauth_session_handle") {
        store
            .put_secret(
                store.refresh_token_key(grant),
                Secret::new(handle.to_owned()),
            )
            .await?;
    }
    store
        .put_secret(store.access_token_key(grant), token.clone())
        .await?;
    let issued = store.now();
    let lifetime = answer
        .get("oauth_expires_in")
        .and_then(|v| v.parse::<i64>().ok())
        .filter(|secs| *secs > 0)
        .unwrap_or(DEFAULT_LIFETIME_SECS);
    row.access_issued_at = Some(issued);
    row.access_expires_at = Some(issued + time::Duration::seconds(lifetime));
    if row.obtained_at.is_none() {
        row.obtained_at = Some(issued);
    } else {
        row.refreshed_at = Some(issued);
    }
    row.state = GrantState::Ok;
    row.generation = row.generation.saturating_add(1);
    row.last_error = None;
    row.consecutive_failures = 0;
    row.refresh_started_at = None;
    store.save(&row)?;
    Ok((token, row))
}

/// A link sign-in's mint: renews with the session handle when there is one; otherwise the
/// person signs in again.
pub(crate) struct Renew {
    provider: String,
}

impl Renew {
    pub(crate) fn new(provider: &str) -> Self {
        Self {
            provider: provider.to_owned(),
        }
    }
}

impl Mint for Renew {
    fn provider(&self) -> &str {
        &self.provider
    }

    fn renews_on_demand(&self) -> bool {
        false
    }

    fn mint<'a>(&'a self, ctx: &'a Ctx<'a>, grant: &'a GrantId, row: GrantRow) -> Minting<'a> {
        Box::pin(renew(ctx, grant, row))
    }

    fn not_started(&self, grant: &GrantId) -> GrantError {
        GrantError::NotSignedIn {
            grant: grant.to_string(),
            fix: format!("sign in: `latch login {}`", grant.owner()),
        }
    }
}

async fn renew(
    ctx: &Ctx<'_>,
    grant: &GrantId,
    row: GrantRow,
) -> Result<(Secret, GrantRow), GrantError> {
    let provider = ctx.provider(grant.owner())?;
    let link = link_config(provider)?;
    let store = ctx.store;
    let handle = store.secret(store.refresh_token_key(grant)).await?;
    let token = store.secret(store.access_token_key(grant)).await?;
    let (Some(handle), Some(token)) = (handle, token) else {
        return Err(needs_login(
            ctx,
            row,
            grant,
            "the OAuth 1.0a token expired or was refused, and the instance gave no session \
             handle to renew it"
                .to_owned(),
        ));
    };
    let key = read_key(store, provider).await?;
    let answer = token_request(
        ctx.http(&provider.name),
        link,
        &key,
        &link.endpoints.access_token_url,
        Some(&token),
        &[("oauth_session_handle", handle.expose())],
    )
    .await;
    match answer {
        Ok(answer) => store_token(store, grant, row, &answer).await,
        Err(TokenFailure::Refused(refused)) => {
            let (message, _) = refused.explain(&provider.name, link.consumer_key.as_str());
            Err(needs_login(ctx, row, grant, message))
        }
        Err(TokenFailure::Failed(reason)) => {
            let _ = store.fail(row, GrantState::RefreshFailing, reason.clone());
            Err(GrantError::RefreshFailing {
                grant: grant.to_string(),
                reason,
            })
        }
    }
}

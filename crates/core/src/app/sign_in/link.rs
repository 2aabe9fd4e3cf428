//! `latch login` on an OAuth 1.0a application link (atlassian-wire §12.3): a request token
//! asked for with Latch's loopback `oauth_callback`, the person's consent in the system browser,
//! the callback's `oauth_token` checked against the request token (OAuth 1.0a has no `state`)
//! in constant time, its `oauth_verifier` redeemed for an access token. Every step is signed
//! RSA-SHA1 with the link's private key.

use std::sync::Arc;

use super::loopback::{self, Callback, Heard};
use super::{LoginError, LoginOptions, LoginOutcome, LoginProgress};
use crate::app::App;
use crate::config::{check_redirect_uri, Provider};
use crate::credential::link_user::{self, TokenFailure};
use crate::credential::oauth1::LinkCredential;
use crate::credential::Credential;
use crate::grant::GrantId;
use crate::ports::Browser;
use crate::provider::catalog::AuthMode;
use crate::secret::{constant_time_eq, Secret};
use latch_store::{GrantKind, GrantRow, GrantState};

/// What Jira sends back as the verifier when the person declines.
const DENIED: &str = "denied";

fn failed(failure: TokenFailure, provider: &Provider, step: &str) -> LoginError {
    match failure {
        TokenFailure::Refused(refused) => {
            let consumer_key = provider
                .oauth1
                .as_ref()
                .map_or("", |l| l.consumer_key.as_str());
            let (message, fix) = refused.explain(&provider.name, consumer_key);
            LoginError::Exchange {
                message: format!("the {step} was refused ({}): {message}", refused.problem),
                fix,
            }
        }
        TokenFailure::Failed(reason) => LoginError::Exchange {
            message: format!("the {step} failed: {reason}"),
            fix: format!(
                "check that the instance is reachable, then run `latch login {}` again",
                provider.name
            ),
        },
    }
}

pub(super) async fn run(
    app: &App,
    provider: &Provider,
    options: &LoginOptions,
    browser: &dyn Browser,
    progress: &dyn LoginProgress,
) -> Result<LoginOutcome, LoginError> {
    let name = provider.name.as_str();
    let link = link_user::link_config(provider)?.clone();
    if !app
        .config()
        .connectors_of(name)
        .any(|c| c.auth == AuthMode::User)
    {
        return Err(LoginError::Setup {
            message: format!("no connector of `{name}` signs in as a user"),
            fix: format!(
                "add one first: `latch connector add jira --type {} --provider {name}`",
                if provider.preset == "confluence-dc" {
                    "confluence-dc"
                } else {
                    "jira-dc"
                }
            ),
        });
    }
    let Some(redirect) = provider.redirect_uri.clone() else {
        return Err(LoginError::Setup {
            message: format!("provider `{name}` has no callback URL"),
            fix: format!("set `redirect_uri` under [providers.{name}]"),
        });
    };
    let redirect_url = check_redirect_uri(&redirect).map_err(|message| LoginError::Setup {
        message,
        fix: "fix `redirect_uri` in latch.toml".into(),
    })?;
    let grants = Arc::clone(app.credentials().grants());
    let key = link_user::read_key(grants.store(), provider).await?;
    let listening = loopback::listen(&redirect_url, name).await?;
    let http = grants.http(Some(name));

    let request = link_user::token_request(
        http,
        &link,
        &key,
        &link.endpoints.request_token_url,
        None,
        &[("oauth_callback", redirect.as_str())],
    )
    .await
    .map_err(|f| failed(f, provider, "request for a request token"))?;
    let request_token = Secret::new(request.get("oauth_token").unwrap_or_default().to_owned());

    let mut url =
        url::Url::parse(&link.endpoints.authorize_url).map_err(|e| LoginError::Setup {
            message: format!("the authorize URL is invalid: {e}"),
            fix: "fix `base_url` in latch.toml".into(),
        })?;
    url.query_pairs_mut()
        .append_pair("oauth_token", request_token.expose());
    let opened = options.open_browser && browser.open(url.as_str()).is_ok();
    progress.authorize_url(url.as_str(), opened);

    let expected = request_token.clone();
    let judge = move |callback: &Callback| -> Heard<Secret> {
        let ours = callback
            .get("oauth_token")
            .is_some_and(|t| constant_time_eq(t.as_bytes(), expected.expose().as_bytes()));
        if !ours {
            return Heard::Refused("with the wrong request token (it does not match this sign-in)");
        }
        match callback.get("oauth_verifier").filter(|v| !v.is_empty()) {
            Some(DENIED) => Heard::Failed(LoginError::Denied {
                code: "access_denied".to_owned(),
                message: "the access request was denied on the instance; nothing was stored"
                    .to_owned(),
                fix: "run `latch login` again and choose Allow".to_owned(),
            }),
            Some(verifier) => Heard::Got(Secret::new(verifier.to_owned())),
            None => Heard::Failed(LoginError::Exchange {
                message: "the instance sent no oauth_verifier".to_owned(),
                fix: "run `latch login` again".to_owned(),
            }),
        }
    };
    // Pasted: the address the browser ended at, or the bare verification code the instance
    // shows when it cannot redirect (the person typed it: it needs no token to match).
    let token_for_paste = request_token.clone();
    let pasted = move |line: &str| -> Option<Callback> {
        let line = line.trim();
        if !line.is_empty() && !line.contains('=') && !line.contains("://") {
            return Some(Callback {
                path: String::new(),
                params: vec![
                    (
                        "oauth_token".to_owned(),
                        token_for_paste.expose().to_owned(),
                    ),
                    ("oauth_verifier".to_owned(), line.to_owned()),
                ],
            });
        }
        loopback::pasted_callback(line)
    };
    let (verifier, reply) =
        loopback::wait(listening, options, progress, Arc::new(judge), &pasted).await?;
    let outcome = async {
        let access = link_user::token_request(
            http,
            &link,
            &key,
            &link.endpoints.access_token_url,
            Some(&request_token),
            &[("oauth_verifier", verifier.expose())],
        )
        .await
        .map_err(|f| failed(f, provider, "exchange of the verifier for an access token"))?;

        // A new sign-in replaces the old token (and session handle) entirely.
        let grant = GrantId::user(name);
        let store = grants.store();
        let _ = store
            .delete_secrets(vec![
                store.refresh_token_key(&grant),
                store.access_token_key(&grant),
            ])
            .await;
        grants.forget(&grant);
        let row = GrantRow {
            id: grant.clone(),
            kind: GrantKind::User,
            state: GrantState::Ok,
            generation: app
                .db()
                .grant(&grant)
                .ok()
                .flatten()
                .map_or(0, |g| g.generation),
            // No scopes exist: a token carries its user's rights, so it has what was asked for.
            granted_scopes: app.config().scope_request(name).scopes().to_string(),
            ..GrantRow::default()
        };
        let (token, mut row) = link_user::store_token(store, &grant, row, &access).await?;

        let credential = Credential::Link(LinkCredential {
            consumer_key: link.consumer_key.clone(),
            key,
            token: Some(token),
            requestor: None,
        });
        let account = match provider.spec.me_url.as_deref() {
            Some(me) => account_of(&grants, provider, &credential, me).await,
            None => None,
        };
        if let Some(who) = &account {
            row.account_id = Some(who.id.clone());
            row.account_name = who.name.clone();
            row.account_email = who.email.clone();
            store.save(&row)?;
        }
        crate::grant::store::note_local_write();
        tracing::info!(provider = name, "signed in through the OAuth 1.0a link");
        Ok(LoginOutcome {
            provider: name.to_owned(),
            account: account.map(|a| match a.name.or(a.email) {
                Some(who) => format!("{who} ({})", a.id),
                None => a.id,
            }),
            sites: Vec::new(),
            bound: Vec::new(),
            unbound: Vec::new(),
            missing: Vec::new(),
            missing_fix: None,
            refresh_token: access.get("oauth_session_handle").is_some(),
            token_expires_at: row.access_expires_at,
        })
    }
    .await;
    reply.tell(&outcome).await;
    outcome
}

/// The signed-in account, asked with the new token.
async fn account_of(
    grants: &crate::grant::Grants,
    provider: &Provider,
    credential: &Credential,
    me: &str,
) -> Option<crate::provider::Account> {
    let request = grants
        .http(Some(&provider.name))
        .get(me)
        .header("Accept", "application/json");
    let response = credential
        .authorize_reqwest(request)
        .ok()?
        .send()
        .await
        .ok()?;
    if !response.status().is_success() {
        return None;
    }
    let body = response
        .bytes()
        .await
        .ok()
        .filter(|b| b.len() <= 64 * 1024)?;
    let me: serde_json::Value = serde_json::from_slice(&body).ok()?;
    provider.rules().account(&me)
}

//! Secrets stored as they are: API tokens (Basic `email:token`), Data Center PATs (Bearer),
//! Data Center passwords (Basic `username:password`) and Opsgenie API keys (`GenieKey`).
//!
//! Atlassian API tokens come in two kinds that work in different places (atlassian-wire §6):
//! scoped tokens only on the gateway, classic ones only on the site URL. Latch finds out once,
//! when the token is stored (the site first, then the gateway), unless the connector pins it.

use std::time::Duration;

use crate::config::{Connector, Provider};
use crate::credential::{CheckResult, Credential, CredentialCheck, Credentials};
use crate::error::GrantError;
use crate::grant::store::note_local_write;
use crate::grant::{ApiTokenKind, CredentialState, Ctx};
use crate::provider::catalog::AuthMode;
use crate::secret::Secret;
use crate::upstream::base::{api_base, Target};
use crate::upstream::site::Sites;

/// How long one probe of a new API token may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(15);

/// The stored credential of a static connector, ready for a header.
pub(crate) async fn read(ctx: &Ctx<'_>, connector: &Connector) -> Result<Credential, GrantError> {
    let name = &connector.name;
    let Some(secret) = ctx
        .store
        .secret(ctx.store.connector_secret_key(name))
        .await?
    else {
        return Err(GrantError::CredentialMissing {
            connector: name.clone(),
            fix: format!("store it: `latch credential set {name}` (read from stdin or a prompt)"),
        });
    };
    as_credential(connector, secret)
}

/// Wraps a secret in the header scheme of the connector's auth mode.
pub(crate) fn as_credential(
    connector: &Connector,
    secret: Secret,
) -> Result<Credential, GrantError> {
    let user = |field: &str, value: &Option<String>| {
        value.clone().ok_or_else(|| GrantError::Misconfigured {
            message: format!(
                "connector `{}` uses {} but has no {field}",
                connector.name,
                connector.auth.as_str()
            ),
            fix: format!(
                "set `{field} = \"...\"` under [connectors.{}] in latch.toml",
                connector.name
            ),
        })
    };
    Ok(match connector.auth {
        AuthMode::ApiToken => Credential::Basic {
            user: user("email", &connector.email)?,
            token: secret,
        },
        AuthMode::Basic => Credential::Basic {
            user: user("username", &connector.username)?,
            token: secret,
        },
        AuthMode::ApiKey => match connector.spec.api_key_scheme.as_deref() {
            Some("Bearer") => Credential::Bearer(secret),
            _ => Credential::GenieKey(secret),
        },
        AuthMode::Pat | AuthMode::User | AuthMode::Service => Credential::Bearer(secret),
        AuthMode::Connect | AuthMode::ConnectUser | AuthMode::OAuth1TwoLegged => {
            return Err(GrantError::Misconfigured {
                message: format!(
                    "connector `{}` signs each request: it stores no secret of its own",
                    connector.name
                ),
                fix: "call it through the proxy".to_owned(),
            })
        }
        AuthMode::None => Credential::Anonymous,
    })
}

/// Sends a connector's health probe to `base` with `credential`: the HTTP status, or why there
/// was none.
pub(crate) async fn probe(
    http: &reqwest::Client,
    connector: &Connector,
    base: &str,
    credential: &Credential,
) -> Result<u16, String> {
    let request = probe_request(http, connector, base).timeout(PROBE_TIMEOUT);
    let sent = credential
        .authorize_reqwest(request)
        .map_err(|err| err.to_string())?
        .send()
        .await;
    if let Ok(response) = &sent {
        end_probe_session(http, connector, base, credential, response).await;
    }
    sent.map(|r| r.status().as_u16()).map_err(|err| {
        if crate::net::tls::is_untrusted_certificate(&err) {
            crate::net::tls::untrusted_hint(Some(&connector.provider))
        } else if err.is_timeout() {
            "timed out".to_owned()
        } else {
            "unreachable".to_owned()
        }
    })
}

/// An MCP server's probe (`initialize`) may have opened a session: it is ended at once, as a
/// client that is done would, so checks leave nothing behind on the server.
pub(crate) async fn end_probe_session(
    http: &reqwest::Client,
    connector: &Connector,
    base: &str,
    credential: &Credential,
    response: &reqwest::Response,
) {
    if !connector.spec.mcp {
        return;
    }
    let Some(id) = response.headers().get("mcp-session-id").cloned() else {
        return;
    };
    let request = http
        .delete(format!("{base}{}", connector.spec.probe.path))
        .header("Mcp-Session-Id", id)
        .timeout(PROBE_TIMEOUT);
    if let Ok(request) = credential.authorize_reqwest(request) {
        let _ = request.send().await;
    }
}

/// A connector's health probe as a request (its method, path below `base`, `Accept` and body),
/// not yet authorized.
pub(crate) fn probe_request(
    http: &reqwest::Client,
    connector: &Connector,
    base: &str,
) -> reqwest::RequestBuilder {
    let spec = &connector.spec.probe;
    let method =
        reqwest::Method::from_bytes(spec.method.as_bytes()).unwrap_or(reqwest::Method::GET);
    let request = http.request(method, format!("{base}{}", spec.path)).header(
        reqwest::header::ACCEPT,
        spec.accept.as_deref().unwrap_or("application/json"),
    );
    match &spec.body {
        Some(body) => request
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.clone()),
        None => request,
    }
}

/// What probing a new API token found.
#[derive(Debug)]
pub struct TokenProbe {
    /// Where it works, when it works somewhere.
    pub kind: Option<ApiTokenKind>,
    /// Each place tried: what, and the HTTP status or why there was none.
    pub tried: Vec<(ApiTokenKind, String)>,
}

impl TokenProbe {
    /// Whether any place answered at all: with no answer the token was not refused, only not
    /// checked.
    pub fn answered(&self) -> bool {
        self.tried.iter().any(|(_, what)| what.starts_with("HTTP "))
    }
}

/// Tries an API token on the site URL (classic), then on the gateway (scoped), with the
/// connector's health probe.
pub(crate) async fn probe_token_kind(
    ctx: &Ctx<'_>,
    connector: &Connector,
    provider: &Provider,
    secret: &Secret,
) -> Result<TokenProbe, GrantError> {
    let credential = as_credential(connector, secret.clone())?;
    let sites = Sites {
        store: ctx.store,
        clients: ctx.clients,
    };
    let mut order = vec![(ApiTokenKind::Scoped, Target::Gateway)];
    if connector.spec.site_api_base.is_some() {
        order.insert(0, (ApiTokenKind::Classic, Target::Site));
    }
    // A pinned kind is checked where it works, nowhere else.
    if let Some(pinned) = connector.token {
        order.retain(|(kind, _)| *kind == pinned);
    }
    let mut tried = Vec::new();
    let mut last_site_error = None;
    for (kind, target) in order {
        let base = match api_base(&sites, connector, provider, target).await {
            Ok(base) => base,
            Err(err @ GrantError::SiteUnbound { .. }) => {
                last_site_error = Some(err);
                continue;
            }
            Err(err) => return Err(err),
        };
        match probe(ctx.http(&connector.provider), connector, &base, &credential).await {
            Ok(status) if (200..300).contains(&status) => {
                tried.push((kind, format!("HTTP {status}")));
                return Ok(TokenProbe {
                    kind: Some(kind),
                    tried,
                });
            }
            Ok(status) => tried.push((kind, format!("HTTP {status}"))),
            Err(why) => tried.push((kind, why)),
        }
    }
    if tried.is_empty() {
        if let Some(err) = last_site_error {
            return Err(err);
        }
    }
    Ok(TokenProbe { kind: None, tried })
}

/// Checks a connector's stored secret against the upstream and records what it found:
/// an API token on the site URL and the gateway (remembering where it works), any other
/// secret with the connector's health probe. Never fails: a check that cannot run says so.
pub(crate) async fn check(credentials: &Credentials, connector: &Connector) -> CredentialCheck {
    let unchecked = |detail: String| CredentialCheck {
        result: CheckResult::Unchecked,
        detail,
        unreachable: false,
    };
    // Set when nothing answered: the check could not run for want of a network.
    let mut unreachable = false;
    let provider = match credentials.grants().ctx().provider(&connector.provider) {
        Ok(p) => p.clone(),
        Err(err) => return unchecked(err.to_string()),
    };
    let profile = provider.rules();
    let outcome: Result<(bool, String), GrantError> = if connector.auth == AuthMode::ApiToken {
        let probed = credentials
            .probe_api_token(connector)
            .await
            .and_then(|probe| {
                if probe.kind.is_none() && !probe.answered() {
                    unreachable = true;
                    let why: Vec<String> = probe.tried.iter().map(|(_, w)| w.clone()).collect();
                    return Err(GrantError::Misconfigured {
                        message: format!(
                            "no answer from the site or the gateway ({})",
                            why.join("; ")
                        ),
                        fix: "check the network; the credential is stored".to_owned(),
                    });
                }
                Ok(probe)
            });
        probed.map(|probe| {
            let tried = probe
                .tried
                .iter()
                .map(|(kind, what)| {
                    let place = match kind {
                        ApiTokenKind::Classic => "the site URL (classic tokens)",
                        ApiTokenKind::Scoped => "the gateway (scoped tokens)",
                    };
                    format!("{place}: {what}")
                })
                .collect::<Vec<_>>()
                .join("; ");
            match probe.kind {
                Some(kind) => (
                    true,
                    format!(
                        "the token works on {} ({tried})",
                        match kind {
                            ApiTokenKind::Classic => "the site URL: a classic token",
                            ApiTokenKind::Scoped => "the gateway: a scoped token",
                        }
                    ),
                ),
                None => (
                    false,
                    format!(
                        "the token was refused ({tried})\n  fix: check the token and the \
                         e-mail `{}` (a service account's tokens use its own e-mail), and \
                         that a scoped token has the scopes of this product; create a new one \
                         at {}, then `latch credential set {}`",
                        connector.email.as_deref().unwrap_or_default(),
                        profile.api_token_console(),
                        connector.name
                    ),
                ),
            }
        })
    } else {
        match credentials.upstream(connector, None).await {
            Ok(up) => {
                match probe(
                    credentials.grants().http(Some(&connector.provider)),
                    connector,
                    &up.base,
                    &up.credential,
                )
                .await
                {
                    Ok(status) if (200..300).contains(&status) => {
                        Ok((true, format!("the health probe answered HTTP {status}")))
                    }
                    Ok(status @ (401 | 403)) => Ok((
                        false,
                        format!(
                        "the health probe answered HTTP {status}\n  fix: check the credential, \
                         then `latch credential set {}`",
                        connector.name
                    ),
                    )),
                    Ok(status) => Err(GrantError::Misconfigured {
                        message: format!("the health probe answered HTTP {status}"),
                        fix: "check the site and the connector's settings".to_owned(),
                    }),
                    Err(why) => {
                        unreachable = true;
                        Err(GrantError::Misconfigured {
                            message: format!("the upstream is {why}"),
                            fix: "check the network; the credential is stored".to_owned(),
                        })
                    }
                }
            }
            Err(err) => Err(err),
        }
    };
    match outcome {
        Ok((accepted, detail)) => {
            let state = if accepted {
                CredentialState::Ok
            } else {
                CredentialState::Rejected
            };
            let error = (!accepted).then(|| detail.lines().next().unwrap_or_default().to_owned());
            let store = credentials.grants().store();
            let _ = store.db().connector_credential_checked(
                &connector.name,
                Some(state),
                error.as_deref(),
                store.now(),
            );
            note_local_write();
            CredentialCheck {
                result: if accepted {
                    CheckResult::Ok
                } else {
                    CheckResult::Rejected
                },
                detail,
                unreachable: false,
            }
        }
        Err(err) => {
            // Kept, and marked: checked now, no verdict, and why.
            let detail = format!("could not check it: {err}");
            let store = credentials.grants().store();
            let _ = store.db().connector_credential_checked(
                &connector.name,
                None,
                Some(detail.lines().next().unwrap_or_default()),
                store.now(),
            );
            note_local_write();
            CredentialCheck {
                unreachable,
                ..unchecked(detail)
            }
        }
    }
}

//! Signing in to an MCP server as the MCP authorization spec (2025-06-18) has it: the server's
//! protected-resource metadata (RFC 9728: from a 401's `WWW-Authenticate` `resource_metadata`,
//! else the path-inserted well-known URL, then the root one) names its authorization server;
//! that server's metadata (RFC 8414, else OpenID discovery) gives the endpoints; Latch
//! registers itself once as a public client (RFC 7591). The registration is kept in the
//! database (the client id is public; a registration access token would go to the keychain)
//! and reused while the endpoint and the callback stay the same, so every later sign-in and
//! refresh uses the same client. Tokens are asked for with `resource` = the MCP endpoint
//! (RFC 8707).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::config::{Config, Provider};
use crate::error::GrantError;
use crate::grant::store::GrantStore;
use crate::provider::catalog::check_url;

/// How long one metadata fetch or registration may take.
const TIMEOUT: Duration = Duration::from_secs(15);
/// A metadata document is a few kilobytes; more is not one.
const MAX_DOCUMENT: usize = 256 * 1024;

/// What a sign-in learned about an MCP server's authorization, kept for the next ones.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
struct Registration {
    /// The MCP endpoint the tokens are for (`resource`).
    resource: String,
    /// The authorization server.
    issuer: String,
    authorize_url: String,
    token_url: String,
    revoke_url: Option<String>,
    /// The client id dynamic registration gave (public).
    client_id: String,
    /// The callback it was registered with.
    redirect_uri: String,
}

fn meta_key(provider: &str) -> String {
    format!("mcp-registration:{provider}")
}

fn registered(store: &latch_store::Store, provider: &str) -> Option<Registration> {
    serde_json::from_str(&store.meta(&meta_key(provider)).ok()??).ok()
}

/// The provider with what its registration says: endpoints, client id (latch.toml's own wins)
/// and `resource`.
fn apply(provider: &mut Provider, found: &Registration) {
    let spec = &mut provider.spec;
    spec.authorize_url
        .get_or_insert_with(|| found.authorize_url.clone());
    spec.token_url
        .get_or_insert_with(|| found.token_url.clone());
    if spec.revoke_url.is_none() {
        spec.revoke_url.clone_from(&found.revoke_url);
    }
    provider
        .client_id
        .get_or_insert_with(|| found.client_id.clone());
    provider
        .spec
        .authorize_params
        .insert("resource".to_owned(), found.resource.clone());
}

/// Applies kept registrations to a configuration just loaded (no network): refreshes, status
/// and the proxy see the endpoints and the client.
pub fn apply_registered(config: &mut Config, store: &latch_store::Store) {
    for provider in &mut config.providers {
        if !provider.spec.mcp_discovery {
            continue;
        }
        if let Some(found) = registered(store, &provider.name) {
            if Some(&found.resource) == provider.spec.api_base.as_ref() {
                apply(provider, &found);
            }
        }
    }
}

/// The provider ready to sign in: its kept registration, or a new one (discovery, then
/// dynamic registration) when there is none for this endpoint and callback.
pub(crate) async fn prepare(
    store: &GrantStore,
    http: &reqwest::Client,
    provider: &Provider,
) -> Result<Provider, GrantError> {
    let name = &provider.name;
    let fail = |message: String, fix: &str| GrantError::Misconfigured {
        message: format!("provider `{name}`: {message}"),
        fix: fix.to_owned(),
    };
    let resource = provider
        .spec
        .api_base
        .clone()
        .ok_or_else(|| fail("no MCP endpoint".to_owned(), "set `mcp_url`"))?;
    let redirect = provider.redirect_uri.clone().ok_or_else(|| {
        fail(
            "no callback to register".to_owned(),
            "set `redirect_uri = \"http://127.0.0.1:8735/callback\"`",
        )
    })?;
    let kept = registered(&store.db(), name);
    if let Some(found) = kept.filter(|r| r.resource == resource && r.redirect_uri == redirect) {
        let mut ready = provider.clone();
        apply(&mut ready, &found);
        return Ok(ready);
    }
    let check = |what: &str, url: &str| -> Result<String, GrantError> {
        check_url(url).map(|_| url.to_owned()).map_err(|m| {
            fail(
                format!("{what} {url:?}: {m}"),
                "ask the MCP server's operator",
            )
        })
    };
    let metadata_url = protected_resource_url(http, &resource).await;
    let candidates = match metadata_url {
        Some(url) => vec![url],
        None => well_known(&resource, "oauth-protected-resource"),
    };
    let mut resource_doc = None;
    for url in &candidates {
        if let Ok(doc) = get_json(http, url).await {
            resource_doc = Some(doc);
            break;
        }
    }
    let resource_doc = resource_doc.ok_or_else(|| {
        fail(
            format!(
                "no protected-resource metadata (RFC 9728) at {}",
                candidates.join(" or ")
            ),
            "check `mcp_url`; a server without OAuth takes an API token or key instead \
             (`latch connector add NAME --type mcp --auth api-token`)",
        )
    })?;
    let issuer = resource_doc
        .pointer("/authorization_servers/0")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            fail(
                "the protected-resource metadata names no authorization server".to_owned(),
                "ask the MCP server's operator",
            )
        })?
        .to_owned();
    let issuer = check("authorization server", &issuer)?;
    let mut server_doc = None;
    let mut tried = well_known(&issuer, "oauth-authorization-server");
    tried.push(format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    ));
    for url in &tried {
        if let Ok(doc) = get_json(http, url).await {
            let said = doc.get("issuer").and_then(Value::as_str).unwrap_or("");
            if said.trim_end_matches('/') == issuer.trim_end_matches('/') {
                server_doc = Some(doc);
                break;
            }
        }
    }
    let server_doc = server_doc.ok_or_else(|| {
        fail(
            format!("no authorization-server metadata for {issuer} (RFC 8414)"),
            "ask the MCP server's operator",
        )
    })?;
    let endpoint = |key: &str| -> Result<Option<String>, GrantError> {
        server_doc
            .get(key)
            .and_then(Value::as_str)
            .map(|url| check(key, url))
            .transpose()
    };
    let authorize_url = endpoint("authorization_endpoint")?.ok_or_else(|| {
        fail(
            "the authorization server names no authorization endpoint".to_owned(),
            "ask the MCP server's operator",
        )
    })?;
    let token_url = endpoint("token_endpoint")?.ok_or_else(|| {
        fail(
            "the authorization server names no token endpoint".to_owned(),
            "ask the MCP server's operator",
        )
    })?;
    let revoke_url = endpoint("revocation_endpoint")?;
    let client_id = match &provider.client_id {
        // A client registered by hand (latch.toml's `client_id`) is used as it is.
        Some(id) => id.clone(),
        None => {
            let registration = endpoint("registration_endpoint")?.ok_or_else(|| {
                fail(
                    "the authorization server offers no dynamic client registration".to_owned(),
                    "register a public client with the callback by hand and set `client_id` \
                     under the provider in latch.toml",
                )
            })?;
            register(store, http, name, &registration, &redirect).await?
        }
    };
    let found = Registration {
        resource,
        issuer,
        authorize_url,
        token_url,
        revoke_url,
        client_id,
        redirect_uri: redirect,
    };
    let text = serde_json::to_string(&found).unwrap_or_default();
    store
        .db()
        .meta_set(&meta_key(name), Some(&text))
        .map_err(|e| GrantError::Lock(e.to_string()))?;
    let mut ready = provider.clone();
    apply(&mut ready, &found);
    Ok(ready)
}

/// RFC 7591: a public client for Latch's loopback callback. A registration access token, if
/// the server gives one, goes to the keychain.
async fn register(
    store: &GrantStore,
    http: &reqwest::Client,
    provider: &str,
    endpoint: &str,
    redirect: &str,
) -> Result<String, GrantError> {
    let fail = |why: String| GrantError::Misconfigured {
        message: format!("provider `{provider}`: dynamic client registration failed: {why}"),
        fix: "try again; if it keeps failing, register a public client with the callback by \
              hand and set `client_id` under the provider in latch.toml"
            .to_owned(),
    };
    let body = json!({
        "client_name": "Latch",
        "redirect_uris": [redirect],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
        "application_type": "native",
    });
    let answer = http
        .post(endpoint)
        .json(&body)
        .timeout(TIMEOUT)
        .send()
        .await
        .map_err(|_| fail(format!("{endpoint} cannot be reached")))?;
    let status = answer.status().as_u16();
    let bytes = answer
        .bytes()
        .await
        .map_err(|_| fail(format!("{endpoint} stopped answering")))?;
    let doc: Value = serde_json::from_slice(&bytes)
        .map_err(|_| fail(format!("{endpoint} answered HTTP {status} without JSON")))?;
    if !(200..300).contains(&status) {
        let said = doc
            .get("error_description")
            .or_else(|| doc.get("error"))
            .and_then(Value::as_str)
            .map(crate::net::oauth::printable)
            .unwrap_or_default();
        return Err(fail(format!("HTTP {status} {said}")));
    }
    let client_id = doc
        .get("client_id")
        .and_then(Value::as_str)
        .filter(|id| !id.is_empty())
        .ok_or_else(|| fail("the answer has no client_id".to_owned()))?
        .to_owned();
    if let Some(token) = doc.get("registration_access_token").and_then(Value::as_str) {
        store
            .put_secret(
                crate::ports::SecretKey::new(
                    store.home_id(),
                    "provider",
                    provider,
                    "registration-token",
                ),
                crate::secret::Secret::new(token.to_owned()),
            )
            .await?;
    }
    Ok(client_id)
}

/// The `resource_metadata` a tokenless request's 401 names, if it names one.
async fn protected_resource_url(http: &reqwest::Client, resource: &str) -> Option<String> {
    let answer = http
        .post(resource)
        .header("Accept", "application/json, text/event-stream")
        .header("Content-Type", "application/json")
        .body(r#"{"jsonrpc":"2.0","id":0,"method":"ping"}"#)
        .timeout(TIMEOUT)
        .send()
        .await
        .ok()?;
    if answer.status().as_u16() != 401 {
        return None;
    }
    let challenge = answer
        .headers()
        .get(reqwest::header::WWW_AUTHENTICATE)?
        .to_str()
        .ok()?;
    let at = challenge.find("resource_metadata=")? + "resource_metadata=".len();
    let rest = challenge[at..].trim_start_matches('"');
    let url = rest.split(['"', ',']).next()?.trim();
    check_url(url).ok().map(|_| url.to_owned())
}

/// `{origin}/.well-known/{name}{path}`, then `{origin}/.well-known/{name}` (RFC 8414 §3,
/// RFC 9728 §3).
fn well_known(url: &str, name: &str) -> Vec<String> {
    let Ok(parsed) = url::Url::parse(url) else {
        return Vec::new();
    };
    let origin = parsed.origin().ascii_serialization();
    let path = parsed.path().trim_end_matches('/');
    let mut urls = Vec::new();
    if !path.is_empty() {
        urls.push(format!("{origin}/.well-known/{name}{path}"));
    }
    urls.push(format!("{origin}/.well-known/{name}"));
    urls
}

async fn get_json(http: &reqwest::Client, url: &str) -> Result<Value, ()> {
    let answer = http
        .get(url)
        .header("Accept", "application/json")
        .timeout(TIMEOUT)
        .send()
        .await
        .map_err(|_| ())?;
    if !answer.status().is_success() {
        return Err(());
    }
    let bytes = answer.bytes().await.map_err(|_| ())?;
    if bytes.len() > MAX_DOCUMENT {
        return Err(());
    }
    serde_json::from_slice(&bytes).map_err(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_known_urls_insert_the_path_first() {
        assert_eq!(
            well_known(
                "https://mcp.atlassian.com/v1/mcp",
                "oauth-protected-resource"
            ),
            vec![
                "https://mcp.atlassian.com/.well-known/oauth-protected-resource/v1/mcp",
                "https://mcp.atlassian.com/.well-known/oauth-protected-resource",
            ]
        );
        assert_eq!(
            well_known("https://auth.example", "oauth-authorization-server"),
            vec!["https://auth.example/.well-known/oauth-authorization-server"]
        );
    }
}

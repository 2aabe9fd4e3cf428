//! OpenID Connect discovery: a provider given only `issuer = "https://…"` gets its authorize,
//! token, revocation and userinfo endpoints (and whether PKCE S256 is supported) from
//! `{issuer}/.well-known/openid-configuration`. Endpoints written in latch.toml or a manifest
//! always win. The document is cached in the database for a day; when the issuer cannot be
//! reached, an older copy is used rather than nothing.

use std::time::Duration;

use serde_json::Value;
use time::OffsetDateTime;

use crate::config::{Config, Provider};
use crate::error::GrantError;
use crate::grant::store::GrantStore;
use crate::provider::catalog::{check_url, ProviderSpec};

/// How long a fetched document is used before it is fetched again.
const FRESH_FOR: time::Duration = time::Duration::hours(24);
/// How long one fetch may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(15);
/// A discovery document is a few kilobytes; more is not one.
const MAX_DOCUMENT: usize = 256 * 1024;

/// What a discovery document says, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Discovered {
    /// `authorization_endpoint`.
    pub authorize_url: Option<String>,
    /// `token_endpoint`.
    pub token_url: Option<String>,
    /// `revocation_endpoint`.
    pub revoke_url: Option<String>,
    /// `userinfo_endpoint`.
    pub me_url: Option<String>,
    /// `S256` in `code_challenge_methods_supported`.
    pub pkce_s256: bool,
}

/// Reads a document for `issuer`: its `issuer` must be the one asked for (OpenID Connect
/// Discovery §4.3; a mismatch means the wrong server answered) and every endpoint must pass the
/// same URL rules as latch.toml's.
pub fn read(document: &Value, issuer: &str) -> Result<Discovered, String> {
    let said = document.get("issuer").and_then(Value::as_str).unwrap_or("");
    if said.trim_end_matches('/') != issuer.trim_end_matches('/') {
        return Err(format!(
            "the document names issuer {said:?}, not {issuer:?}: the wrong server answered"
        ));
    }
    let url = |key: &str| -> Result<Option<String>, String> {
        match document.get(key).and_then(Value::as_str) {
            Some(text) => check_url(text)
                .map(|_| Some(text.to_owned()))
                .map_err(|m| format!("`{key}`: {m}")),
            None => Ok(None),
        }
    };
    let pkce_s256 = document
        .get("code_challenge_methods_supported")
        .and_then(Value::as_array)
        .is_some_and(|m| m.iter().any(|v| v.as_str() == Some("S256")));
    Ok(Discovered {
        authorize_url: url("authorization_endpoint")?,
        token_url: url("token_endpoint")?,
        revoke_url: url("revocation_endpoint")?,
        me_url: url("userinfo_endpoint")?,
        pkce_s256,
    })
}

/// Fills what the provider's spec leaves out.
pub fn apply(spec: &mut ProviderSpec, found: &Discovered) {
    for (target, value) in [
        (&mut spec.authorize_url, &found.authorize_url),
        (&mut spec.token_url, &found.token_url),
        (&mut spec.revoke_url, &found.revoke_url),
        (&mut spec.me_url, &found.me_url),
    ] {
        if target.is_none() {
            target.clone_from(value);
        }
    }
    spec.pkce |= found.pkce_s256;
}

fn cache_key(issuer: &str) -> String {
    format!("discovery:{}", issuer.trim_end_matches('/'))
}

/// The cached document of an issuer and when it was fetched.
fn cached(store: &latch_store::Store, issuer: &str) -> Option<(Value, OffsetDateTime)> {
    let text = store.meta(&cache_key(issuer)).ok()??;
    let entry: Value = serde_json::from_str(&text).ok()?;
    let at = crate::clock::parse_time(entry.get("fetched_at")?.as_str())?;
    Some((entry.get("document")?.clone(), at))
}

/// Applies cached documents to a configuration just loaded (no network): status, doctor and
/// the proxy see discovered endpoints.
pub fn apply_cached(config: &mut Config, store: &latch_store::Store) {
    for provider in &mut config.providers {
        let Some(issuer) = provider.spec.issuer.clone() else {
            continue;
        };
        if let Some(found) = cached(store, &issuer).and_then(|(doc, _)| read(&doc, &issuer).ok()) {
            apply(&mut provider.spec, &found);
        }
    }
}

async fn fetch(http: &reqwest::Client, issuer: &str) -> Result<Value, String> {
    let url = format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    );
    let response = http
        .get(&url)
        .header("Accept", "application/json")
        .timeout(FETCH_TIMEOUT)
        .send()
        .await
        .map_err(|e| {
            if crate::net::tls::is_untrusted_certificate(&e) {
                crate::net::tls::untrusted_hint(None)
            } else {
                format!("{url} cannot be reached")
            }
        })?;
    if !response.status().is_success() {
        return Err(format!(
            "{url} answered HTTP {}",
            response.status().as_u16()
        ));
    }
    let body = response
        .bytes()
        .await
        .map_err(|_| format!("{url} stopped answering"))?;
    if body.len() > MAX_DOCUMENT {
        return Err(format!("{url} answered over {MAX_DOCUMENT} bytes"));
    }
    serde_json::from_slice(&body).map_err(|_| format!("{url} did not answer JSON"))
}

/// The provider with its discovered endpoints, fetching the document when the cache is older
/// than a day (or missing). Providers without `issuer` come back as they are.
pub(crate) async fn resolve(
    store: &GrantStore,
    http: &reqwest::Client,
    provider: &Provider,
) -> Result<Provider, GrantError> {
    let Some(issuer) = provider.spec.issuer.clone() else {
        return Ok(provider.clone());
    };
    let now = store.now();
    let known = cached(&store.db(), &issuer);
    let document = match known {
        Some((doc, at)) if now - at < FRESH_FOR => doc,
        known => match fetch(http, &issuer).await {
            Ok(doc) => {
                // Checked before it is kept: a bad document must not replace a good one.
                read(&doc, &issuer).map_err(|why| discovery_failed(provider, &issuer, &why))?;
                let entry = serde_json::json!({
                    "fetched_at": crate::clock::fmt_time(now),
                    "document": doc,
                });
                let _ = store
                    .db()
                    .meta_set(&cache_key(&issuer), Some(&entry.to_string()));
                doc
            }
            // An older copy beats none: endpoints rarely move.
            Err(_) if known.is_some() => known.map(|(doc, _)| doc).unwrap_or_default(),
            Err(why) => return Err(discovery_failed(provider, &issuer, &why)),
        },
    };
    let found =
        read(&document, &issuer).map_err(|why| discovery_failed(provider, &issuer, &why))?;
    let mut resolved = provider.clone();
    apply(&mut resolved.spec, &found);
    Ok(resolved)
}

fn discovery_failed(provider: &Provider, issuer: &str, why: &str) -> GrantError {
    GrantError::Misconfigured {
        message: format!(
            "provider `{}`: OpenID discovery at {issuer} failed: {why}",
            provider.name
        ),
        fix: "check `issuer` (the URL before /.well-known/openid-configuration), or write \
              `authorize_url` and `token_url` in the manifest"
            .to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn documents_are_checked_before_use() {
        let doc = json!({
            "issuer": "https://idp.example",
            "authorization_endpoint": "https://idp.example/auth",
            "token_endpoint": "https://idp.example/token",
            "userinfo_endpoint": "https://idp.example/me",
            "code_challenge_methods_supported": ["plain", "S256"],
        });
        let found = read(&doc, "https://idp.example/").unwrap();
        assert_eq!(
            found.token_url.as_deref(),
            Some("https://idp.example/token")
        );
        assert!(found.pkce_s256);
        assert!(found.revoke_url.is_none());
        // Another issuer's document, or one pointing at plain http elsewhere, is refused.
        assert!(read(&doc, "https://other.example").is_err());
        let bad =
            json!({"issuer": "https://idp.example", "token_endpoint": "http://evil.example/t"});
        assert!(read(&bad, "https://idp.example")
            .unwrap_err()
            .contains("token_endpoint"));
    }
}

//! OAuth 2.0 on the wire: the authorize URL (with PKCE S256 and `state`), and token-endpoint
//! requests (authorization code, refresh, client credentials, revocation) in the encoding and
//! client authentication the provider wants.
//!
//! Errors keep the RFC 6749 `error` code typed and never carry a response body: a body that
//! failed to parse may hold tokens.

use std::time::Duration;

use base64::Engine as _;
use serde::Deserialize;
use sha2::Digest as _;

use crate::catalog::{TokenAuth, TokenRequest};
use crate::scope::ScopeList;
use crate::secret::Secret;

/// Everything a token request needs to know about the provider.
#[derive(Clone, Debug)]
pub struct TokenEndpoint {
    /// Token URL.
    pub url: String,
    /// Body encoding.
    pub encoding: TokenRequest,
    /// Client authentication style.
    pub auth: TokenAuth,
    /// Client id.
    pub client_id: String,
}

/// What a token endpoint returned on success.
#[derive(Debug)]
pub struct TokenSet {
    /// The access token.
    pub access_token: Secret,
    /// A new refresh token, when the response carried one.
    pub refresh_token: Option<Secret>,
    /// Lifetime in seconds, when given.
    pub expires_in: Option<u64>,
    /// Granted scopes, when given (`scope`, or Bitbucket's `scopes`).
    pub scope: Option<ScopeList>,
}

/// Why a token request failed. No variant carries a token or a raw body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// `invalid_grant`: the code or refresh token is dead (rotated, reused, expired, revoked).
    #[error("the provider rejected the grant (invalid_grant{})", describe(.description))]
    InvalidGrant {
        /// `error_description`, trimmed.
        description: Option<String>,
    },
    /// Another OAuth error (`invalid_client`, `unauthorized_client`, `access_denied`, …).
    #[error("the token endpoint answered {status} {code}{}", describe(.description))]
    Rejected {
        /// HTTP status.
        status: u16,
        /// RFC 6749 `error`.
        code: String,
        /// `error_description`, trimmed.
        description: Option<String>,
    },
    /// A 5xx or 429: worth retrying.
    #[error("the token endpoint failed with HTTP {status}")]
    Server {
        /// HTTP status.
        status: u16,
    },
    /// The request may have reached the provider but no answer came back (timeout, reset).
    #[error("no answer from the token endpoint ({0})")]
    Lost(String),
    /// The provider could not be reached at all; the request was not sent.
    #[error("cannot reach the token endpoint ({0})")]
    Unreachable(String),
    /// A success status with a body that is not a token response (an HTML page, …).
    #[error("the token endpoint answered with something that is not a token response ({0})")]
    BadResponse(String),
}

fn describe(description: &Option<String>) -> String {
    description
        .as_deref()
        .map(|d| format!(": {d}"))
        .unwrap_or_default()
}

impl TokenError {
    /// Whether retrying the same request can help (bounded, with backoff).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::Server { .. } | Self::Unreachable(_) | Self::BadResponse(_)
        )
    }
}

/// Builds the HTTP client every outbound OAuth request uses: no redirects (a redirect from a
/// token endpoint is never legitimate and following it is an SSRF risk), bounded timeouts,
/// and the trust of `tls` (built-in roots, the OS store, a provider's CA file).
pub fn http_client(timeout: Duration, tls: Option<rustls::ClientConfig>) -> reqwest::Client {
    let builder = match tls {
        Some(config) => reqwest::Client::builder().use_preconfigured_tls(config),
        None => reqwest::Client::builder(),
    };
    builder
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .timeout(timeout)
        .user_agent(concat!("latch/", env!("CARGO_PKG_VERSION")))
        .build()
        // The builder only fails when the TLS backend cannot initialise.
        .unwrap_or_else(|_| reqwest::Client::new())
}

/// A PKCE verifier and its S256 challenge.
pub struct Pkce {
    /// The verifier (sent at the token endpoint).
    pub verifier: Secret,
    /// `BASE64URL(SHA256(verifier))` (sent on the authorize URL).
    pub challenge: String,
}

impl Pkce {
    /// A fresh verifier: 32 random bytes, base64url (43 characters).
    pub fn new() -> Self {
        let verifier = random_token(32);
        let challenge = b64url(&sha2::Sha256::digest(verifier.as_bytes()));
        Self {
            verifier: Secret::new(verifier),
            challenge,
        }
    }
}

impl Default for Pkce {
    fn default() -> Self {
        Self::new()
    }
}

/// `bytes` random bytes from the OS generator, base64url without padding.
pub fn random_token(bytes: usize) -> String {
    use rand::RngCore;
    let mut buf = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    b64url(&buf)
}

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The authorize URL: `response_type=code`, client id, callback, scopes, `state`, PKCE when
/// asked, then the provider's extra parameters (Atlassian: `audience`, `prompt`).
pub fn authorize_url(
    base: &str,
    client_id: &str,
    redirect_uri: &str,
    scopes: &ScopeList,
    state: &Secret,
    pkce: Option<&Pkce>,
    extra: &indexmap::IndexMap<String, String>,
) -> Result<url::Url, url::ParseError> {
    let mut url = url::Url::parse(base)?;
    {
        let mut q = url.query_pairs_mut();
        for (k, v) in extra {
            q.append_pair(k, v);
        }
        q.append_pair("client_id", client_id)
            .append_pair("scope", &scopes.to_string())
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("state", state.expose())
            .append_pair("response_type", "code");
        if let Some(pkce) = pkce {
            q.append_pair("code_challenge", &pkce.challenge)
                .append_pair("code_challenge_method", "S256");
        }
    }
    Ok(url)
}

/// A grant to redeem at the token endpoint.
pub enum Grant<'a> {
    /// Authorization code.
    Code {
        /// The code from the callback.
        code: &'a Secret,
        /// The callback it was delivered to.
        redirect_uri: &'a str,
        /// The PKCE verifier, when PKCE was used.
        verifier: Option<&'a Secret>,
    },
    /// Refresh token.
    Refresh {
        /// The refresh token.
        token: &'a Secret,
        /// The callback, for providers that want it again (Data Center).
        redirect_uri: Option<&'a str>,
    },
    /// Client credentials: `scope` and `audience` only when given.
    ClientCredentials {
        /// Scopes to ask for (`None`: the credential's own).
        scopes: Option<&'a ScopeList>,
        /// An `audience` to send.
        audience: Option<&'a str>,
    },
}

/// Sends one token request with the client's timeout.
pub async fn request_token(
    http: &reqwest::Client,
    endpoint: &TokenEndpoint,
    client_secret: Option<&Secret>,
    grant: Grant<'_>,
) -> Result<TokenSet, TokenError> {
    request_token_within(http, endpoint, client_secret, grant, None).await
}

/// Sends one token request; `timeout` replaces the client's (a refresh waits longer).
pub async fn request_token_within(
    http: &reqwest::Client,
    endpoint: &TokenEndpoint,
    client_secret: Option<&Secret>,
    grant: Grant<'_>,
    timeout: Option<Duration>,
) -> Result<TokenSet, TokenError> {
    let mut fields: Vec<(&str, String)> = Vec::new();
    match &grant {
        Grant::Code {
            code,
            redirect_uri,
            verifier,
        } => {
            fields.push(("grant_type", "authorization_code".into()));
            fields.push(("code", code.expose().to_owned()));
            fields.push(("redirect_uri", (*redirect_uri).to_owned()));
            if let Some(v) = verifier {
                fields.push(("code_verifier", v.expose().to_owned()));
            }
        }
        Grant::Refresh {
            token,
            redirect_uri,
        } => {
            fields.push(("grant_type", "refresh_token".into()));
            fields.push(("refresh_token", token.expose().to_owned()));
            if let Some(uri) = redirect_uri {
                fields.push(("redirect_uri", (*uri).to_owned()));
            }
        }
        Grant::ClientCredentials { scopes, audience } => {
            fields.push(("grant_type", "client_credentials".into()));
            if let Some(scopes) = scopes.filter(|s| !s.is_empty()) {
                fields.push(("scope", scopes.to_string()));
            }
            if let Some(audience) = audience {
                fields.push(("audience", (*audience).to_owned()));
            }
        }
    }
    let mut request = http
        .post(&endpoint.url)
        .header("Accept", "application/json");
    if let Some(timeout) = timeout {
        request = request.timeout(timeout);
    }
    match (endpoint.auth, client_secret) {
        (TokenAuth::Basic, Some(secret)) => {
            request = request.basic_auth(&endpoint.client_id, Some(secret.expose()));
        }
        (TokenAuth::Basic, None) | (TokenAuth::Body, None) => {
            fields.push(("client_id", endpoint.client_id.clone()));
        }
        (TokenAuth::Body, Some(secret)) => {
            fields.push(("client_id", endpoint.client_id.clone()));
            fields.push(("client_secret", secret.expose().to_owned()));
        }
    }
    request = match endpoint.encoding {
        TokenRequest::Form => request.form(&fields),
        TokenRequest::Json => {
            let body: serde_json::Map<String, serde_json::Value> = fields
                .iter()
                .map(|(k, v)| ((*k).to_owned(), serde_json::Value::String(v.clone())))
                .collect();
            request.json(&body)
        }
    };
    // The request body held secrets; wipe our copies now that reqwest has its own.
    for (_, value) in fields {
        drop(Secret::new(value));
    }
    let response = request
        .send()
        .await
        .map_err(|err| classify_send_error(&err))?;
    let status = response.status();
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let body = response
        .bytes()
        .await
        .map_err(|err| TokenError::Lost(transport_kind(&err)))?;
    parse_response(status.as_u16(), &content_type, &body)
}

fn transport_kind(err: &reqwest::Error) -> String {
    if crate::tls::is_untrusted_certificate(err) {
        "the server's TLS certificate is not trusted; if your company's CA signs it, set \
         `ca_file` for the provider in latch.toml"
            .to_owned()
    } else if err.is_timeout() {
        "timed out".to_owned()
    } else if err.is_connect() {
        "connection refused or failed".to_owned()
    } else {
        "connection interrupted".to_owned()
    }
}

fn classify_send_error(err: &reqwest::Error) -> TokenError {
    // A connect error means nothing was sent; anything later may have reached the provider.
    if err.is_connect() {
        TokenError::Unreachable(transport_kind(err))
    } else {
        TokenError::Lost(transport_kind(err))
    }
}

#[derive(Deserialize)]
struct RawTokens {
    access_token: Option<String>,
    refresh_token: Option<String>,
    expires_in: Option<serde_json::Value>,
    scope: Option<String>,
    scopes: Option<String>,
}

#[derive(Deserialize)]
struct RawError {
    error: Option<String>,
    error_description: Option<String>,
}

fn short(text: Option<String>) -> Option<String> {
    text.map(|t| t.chars().filter(|c| !c.is_control()).take(200).collect())
}

/// Turns a token-endpoint answer into tokens or a typed error, without keeping the body.
pub(crate) fn parse_response(
    status: u16,
    content_type: &str,
    body: &[u8],
) -> Result<TokenSet, TokenError> {
    let json = content_type.contains("json") || body.first() == Some(&b'{');
    if (200..300).contains(&status) {
        if !json {
            let kind = content_type.split(';').next().unwrap_or("").trim();
            return Err(TokenError::BadResponse(format!(
                "expected JSON, got {}",
                if kind.is_empty() {
                    "no content type"
                } else {
                    kind
                }
            )));
        }
        let raw: RawTokens = serde_json::from_slice(body)
            .map_err(|_| TokenError::BadResponse("malformed JSON".to_owned()))?;
        let Some(access) = raw.access_token.filter(|t| !t.is_empty()) else {
            return Err(TokenError::BadResponse("no access_token".to_owned()));
        };
        let expires_in = match raw.expires_in {
            Some(serde_json::Value::Number(n)) => n.as_u64(),
            Some(serde_json::Value::String(s)) => s.parse().ok(),
            _ => None,
        };
        let scope = raw
            .scope
            .or(raw.scopes)
            .and_then(|s| ScopeList::parse(&s).ok());
        return Ok(TokenSet {
            access_token: Secret::new(access),
            refresh_token: raw.refresh_token.filter(|t| !t.is_empty()).map(Secret::new),
            expires_in,
            scope,
        });
    }
    if status >= 500 || status == 429 {
        return Err(TokenError::Server { status });
    }
    let raw: Option<RawError> = if json {
        serde_json::from_slice(body).ok()
    } else {
        None
    };
    let (code, description) = match raw {
        Some(RawError {
            error: Some(code),
            error_description,
        }) => (code, short(error_description)),
        _ => {
            return Err(TokenError::Rejected {
                status,
                code: "unknown_error".to_owned(),
                description: Some(format!("HTTP {status} without an OAuth error body")),
            })
        }
    };
    if code == "invalid_grant" {
        return Err(TokenError::InvalidGrant { description });
    }
    Err(TokenError::Rejected {
        status,
        code,
        description,
    })
}

/// RFC 7009 revocation (best effort; not every provider has it).
pub async fn revoke(
    http: &reqwest::Client,
    url: &str,
    endpoint: &TokenEndpoint,
    client_secret: Option<&Secret>,
    token: &Secret,
    hint: &str,
) -> Result<(), TokenError> {
    let mut fields = vec![
        ("token", token.expose().to_owned()),
        ("token_type_hint", hint.to_owned()),
        ("client_id", endpoint.client_id.clone()),
    ];
    if let Some(secret) = client_secret {
        fields.push(("client_secret", secret.expose().to_owned()));
    }
    let response = http
        .post(url)
        .form(&fields)
        .send()
        .await
        .map_err(|err| classify_send_error(&err))?;
    for (_, value) in fields {
        drop(Secret::new(value));
    }
    let status = response.status().as_u16();
    if (200..300).contains(&status) {
        Ok(())
    } else if status >= 500 {
        Err(TokenError::Server { status })
    } else {
        Err(TokenError::Rejected {
            status,
            code: "revocation_refused".to_owned(),
            description: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_challenge_is_s256_of_the_verifier() {
        let pkce = Pkce::new();
        assert_eq!(pkce.verifier.expose().len(), 43);
        let expected = b64url(&sha2::Sha256::digest(pkce.verifier.expose().as_bytes()));
        assert_eq!(pkce.challenge, expected);
        // RFC 7636 appendix B.
        let known = b64url(&sha2::Sha256::digest(
            b"dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
        ));
        assert_eq!(known, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
    }

    #[test]
    fn authorize_url_carries_the_atlassian_parameters() {
        let mut extra = indexmap::IndexMap::new();
        extra.insert("audience".to_owned(), "api.atlassian.com".to_owned());
        extra.insert("prompt".to_owned(), "consent".to_owned());
        let url = authorize_url(
            "https://auth.atlassian.com/authorize",
            "cid",
            "http://127.0.0.1:8734/callback",
            &ScopeList::parse("read:me offline_access").unwrap(),
            &Secret::new("st4te".into()),
            None,
            &extra,
        )
        .unwrap();
        let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
        assert_eq!(q["audience"], "api.atlassian.com");
        assert_eq!(q["prompt"], "consent");
        assert_eq!(q["scope"], "read:me offline_access");
        assert_eq!(q["state"], "st4te");
        assert_eq!(q["response_type"], "code");
        assert!(!q.contains_key("code_challenge"));
    }

    #[test]
    fn parses_tokens_and_keeps_errors_typed() {
        let ok = parse_response(
            200,
            "application/json",
            br#"{"access_token":"a","refresh_token":"r","expires_in":3600,"scope":"read:me x"}"#,
        )
        .unwrap();
        assert_eq!(ok.expires_in, Some(3600));
        assert_eq!(ok.scope.unwrap().len(), 2);
        let bb = parse_response(
            200,
            "application/json",
            br#"{"access_token":"a","scopes":"repository","expires_in":"7200"}"#,
        )
        .unwrap();
        assert_eq!(bb.expires_in, Some(7200));
        assert!(bb.refresh_token.is_none());

        let err = parse_response(
            403,
            "application/json",
            br#"{"error":"invalid_grant","error_description":"Unknown or invalid refresh token."}"#,
        )
        .unwrap_err();
        assert!(matches!(err, TokenError::InvalidGrant { .. }));
        let html = parse_response(200, "text/html; charset=utf-8", b"<html>maintenance</html>")
            .unwrap_err();
        assert_eq!(
            html,
            TokenError::BadResponse("expected JSON, got text/html".into())
        );
        assert!(html.is_transient());
        assert_eq!(
            parse_response(502, "text/html", b"<html>").unwrap_err(),
            TokenError::Server { status: 502 }
        );
    }

    #[test]
    fn errors_never_echo_the_body() {
        let err = parse_response(200, "application/json", br#"{"refresh_token":"leaky-rt"}"#)
            .unwrap_err();
        assert!(!format!("{err} {err:?}").contains("leaky-rt"));
        let err = parse_response(400, "text/plain", b"token=leaky-at").unwrap_err();
        assert!(!format!("{err} {err:?}").contains("leaky-at"));
    }
}

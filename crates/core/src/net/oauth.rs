//! OAuth 2.0 on the wire. The `oauth2` crate builds the standard parts: the authorize URL,
//! `state`, PKCE S256, and each token request (grant parameters, client authentication in the
//! header or the body). Latch's own code is the transport it hands the crate, for what the
//! providers need and the crate does not do:
//! - Atlassian documents JSON token requests: the crate's form body is re-encoded as JSON;
//! - the transport classifies failures (nothing sent, sent but no answer, 5xx/429, a non-JSON
//!   page) because refresh-token rotation depends on it, and applies the refresh timeout;
//! - error answers are read here, and the crate only ever sees a 200 JSON answer, parsed into
//!   Latch's own response type: Atlassian omits `token_type`, Bitbucket says `scopes`, some
//!   send `expires_in` as a string — and the crate's parse error carries the raw body, which
//!   may hold a token, so it is dropped unread.
//!
//! Revocation (RFC 7009, best effort) stays a plain form POST.
//!
//! Errors keep the RFC 6749 `error` code typed and never carry a response body.

use std::time::Duration;

use base64::Engine as _;
use serde::Deserialize;

use crate::provider::catalog::{TokenAuth, TokenRequest};
use crate::provider::scope::ScopeList;
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
    /// RFC 8707's `resource`: what the token is for (an MCP server's endpoint).
    pub resource: Option<String>,
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

/// A PKCE verifier and its S256 challenge.
pub struct Pkce {
    /// The verifier (sent at the token endpoint).
    pub verifier: Secret,
    /// `BASE64URL(SHA256(verifier))` (sent on the authorize URL).
    pub challenge: String,
}

impl Pkce {
    /// A fresh verifier: 32 random bytes, base64url (43 characters), from the `oauth2` crate.
    pub fn new() -> Self {
        let (challenge, verifier) = oauth2::PkceCodeChallenge::new_random_sha256();
        Self {
            verifier: Secret::new(verifier.into_secret()),
            challenge: challenge.as_str().to_owned(),
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

/// The authorize URL, built by the `oauth2` crate: `response_type=code`, client id, callback,
/// scopes, `state`, PKCE S256 when asked, and the provider's extra parameters (Atlassian:
/// `audience`, `prompt`).
pub fn authorize_url(
    base: &str,
    client_id: &str,
    redirect_uri: &str,
    scopes: &ScopeList,
    state: &Secret,
    pkce: Option<&Pkce>,
    extra: &indexmap::IndexMap<String, String>,
) -> Result<url::Url, url::ParseError> {
    let client = oauth2::basic::BasicClient::new(oauth2::ClientId::new(client_id.to_owned()))
        .set_auth_uri(oauth2::AuthUrl::new(base.to_owned())?)
        .set_redirect_uri(oauth2::RedirectUrl::new(redirect_uri.to_owned())?);
    let state = state.expose().to_owned();
    let mut request = client.authorize_url(|| oauth2::CsrfToken::new(state));
    // One `scope` parameter with the list in Latch's order (the crate joins with spaces).
    if !scopes.is_empty() {
        request = request.add_scope(oauth2::Scope::new(scopes.to_string()));
    }
    for (k, v) in extra {
        request = request.add_extra_param(k.as_str(), v.as_str());
    }
    if let Some(pkce) = pkce {
        request = request.set_pkce_challenge(oauth2::PkceCodeChallenge::from_code_verifier_sha256(
            &oauth2::PkceCodeVerifier::new(pkce.verifier.expose().to_owned()),
        ));
    }
    let (url, _state) = request.url();
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

/// Sends one token request; `timeout` replaces the client's (a refresh waits longer). The
/// `oauth2` crate builds the request; [`send`] carries it.
pub async fn request_token_within(
    http: &reqwest::Client,
    endpoint: &TokenEndpoint,
    client_secret: Option<&Secret>,
    grant: Grant<'_>,
    timeout: Option<Duration>,
) -> Result<TokenSet, TokenError> {
    let token_url = oauth2::TokenUrl::new(endpoint.url.clone())
        .map_err(|_| TokenError::Unreachable("the token URL is not a URL".to_owned()))?;
    let mut client = oauth2::Client::<
        oauth2::basic::BasicErrorResponse,
        Tokens,
        oauth2::basic::BasicTokenIntrospectionResponse,
        oauth2::StandardRevocableToken,
        oauth2::basic::BasicRevocationErrorResponse,
    >::new(oauth2::ClientId::new(endpoint.client_id.clone()))
    .set_token_uri(token_url)
    // Without a secret the client id goes in the body either way (a public client).
    .set_auth_type(match (endpoint.auth, client_secret) {
        (TokenAuth::Basic, Some(_)) => oauth2::AuthType::BasicAuth,
        _ => oauth2::AuthType::RequestBody,
    });
    if let Some(secret) = client_secret {
        client = client.set_client_secret(oauth2::ClientSecret::new(secret.expose().to_owned()));
    }
    let transport = Carrier {
        http,
        encoding: endpoint.encoding,
        timeout,
    };
    let answer = match grant {
        Grant::Code {
            code,
            redirect_uri,
            verifier,
        } => {
            let redirect = oauth2::RedirectUrl::new(redirect_uri.to_owned())
                .map_err(|_| TokenError::Unreachable("the callback is not a URL".to_owned()))?;
            let mut request = client
                .exchange_code(oauth2::AuthorizationCode::new(code.expose().to_owned()))
                .set_redirect_uri(std::borrow::Cow::Owned(redirect));
            if let Some(verifier) = verifier {
                request = request
                    .set_pkce_verifier(oauth2::PkceCodeVerifier::new(verifier.expose().to_owned()));
            }
            if let Some(resource) = &endpoint.resource {
                request = request.add_extra_param("resource", resource);
            }
            request.request_async(&transport).await
        }
        Grant::Refresh {
            token,
            redirect_uri,
        } => {
            let refresh = oauth2::RefreshToken::new(token.expose().to_owned());
            let mut request = client.exchange_refresh_token(&refresh);
            if let Some(uri) = redirect_uri {
                request = request.add_extra_param("redirect_uri", uri);
            }
            if let Some(resource) = &endpoint.resource {
                request = request.add_extra_param("resource", resource);
            }
            request.request_async(&transport).await
        }
        Grant::ClientCredentials { scopes, audience } => {
            let mut request = client.exchange_client_credentials();
            if let Some(scopes) = scopes.filter(|s| !s.is_empty()) {
                request = request.add_scope(oauth2::Scope::new(scopes.to_string()));
            }
            if let Some(audience) = audience {
                request = request.add_extra_param("audience", audience);
            }
            request.request_async(&transport).await
        }
    };
    match answer {
        Ok(tokens) if tokens.access_token.secret().is_empty() => {
            Err(TokenError::BadResponse("no access_token".to_owned()))
        }
        Ok(tokens) => Ok(tokens.into_set()),
        Err(oauth2::RequestTokenError::Request(Transport(err))) => Err(err),
        // The transport passes only 200 JSON answers on; these are their parse failures. The
        // crate's `Parse` error holds the raw body (it may hold a token): dropped unread.
        Err(oauth2::RequestTokenError::Parse(_, _)) => {
            Err(TokenError::BadResponse("malformed JSON".to_owned()))
        }
        Err(oauth2::RequestTokenError::ServerResponse(err)) => Err(TokenError::Rejected {
            status: 400,
            code: err.error().as_ref().to_owned(),
            description: short(err.error_description().cloned()),
        }),
        Err(oauth2::RequestTokenError::Other(_)) => {
            Err(TokenError::BadResponse("not a token response".to_owned()))
        }
    }
}

/// The JWT bearer grant (RFC 7523) a Connect app uses to act as a user: a form POST of the
/// signed assertion (and `scope`, when given), read like any token answer.
pub async fn request_jwt_bearer(
    http: &reqwest::Client,
    url: &str,
    assertion: &Secret,
    scope: Option<&str>,
) -> Result<TokenSet, TokenError> {
    // The body holds the assertion: zeroized with the rest in `send`.
    let body = zeroize::Zeroizing::new({
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        form.append_pair("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer");
        form.append_pair("assertion", assertion.expose());
        if let Some(scope) = scope {
            form.append_pair("scope", scope);
        }
        form.finish()
    });
    let request = http::Request::builder()
        .method(http::Method::POST)
        .uri(url)
        .header(
            http::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .header(http::header::ACCEPT, "application/json")
        .body(body.as_bytes().to_vec())
        .map_err(|_| TokenError::Unreachable("the token URL is not a URL".to_owned()))?;
    let answer = send(http, TokenRequest::Form, None, request)
        .await
        .map_err(|Transport(err)| err)?;
    parse_response(200, "application/json", answer.body())
}

/// A transport failure, or an error answer read by [`send`], for the `oauth2` crate to return.
#[derive(Debug)]
struct Transport(TokenError);

impl std::fmt::Display for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for Transport {}

/// The transport handed to the `oauth2` crate.
struct Carrier<'a> {
    http: &'a reqwest::Client,
    encoding: TokenRequest,
    timeout: Option<Duration>,
}

impl<'c> oauth2::AsyncHttpClient<'c> for Carrier<'_> {
    type Error = Transport;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<oauth2::HttpResponse, Transport>> + Send + 'c>,
    >;

    fn call(&'c self, request: oauth2::HttpRequest) -> Self::Future {
        Box::pin(send(self.http, self.encoding, self.timeout, request))
    }
}

/// Carries a token request the `oauth2` crate built: re-encoded as JSON for providers that
/// want it, sent with `timeout`, its failures classified. Only a 200 JSON answer goes back to
/// the crate; anything else becomes a [`TokenError`] here, without its body.
async fn send(
    http: &reqwest::Client,
    encoding: TokenRequest,
    timeout: Option<Duration>,
    request: oauth2::HttpRequest,
) -> Result<oauth2::HttpResponse, Transport> {
    let (mut parts, body) = request.into_parts();
    // The body holds the client secret, a code or a refresh token.
    let body = zeroize::Zeroizing::new(body);
    let body = match encoding {
        TokenRequest::Form => body.to_vec(),
        TokenRequest::Json => {
            parts.headers.insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("application/json"),
            );
            form_as_json(&body).as_bytes().to_vec()
        }
    };
    let mut outgoing = http
        .request(parts.method, parts.uri.to_string())
        .headers(parts.headers)
        .body(body);
    if let Some(timeout) = timeout {
        outgoing = outgoing.timeout(timeout);
    }
    let response = outgoing
        .send()
        .await
        .map_err(|err| Transport(classify_send_error(&err)))?;
    let status = response.status();
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let bytes = response
        .bytes()
        .await
        .map_err(|err| Transport(TokenError::Lost(transport_kind(&err))))?;
    let json = content_type.contains("json") || bytes.first() == Some(&b'{');
    if status.as_u16() != 200 || !json {
        // `parse_response` turns every non-success into a typed error; a 2xx that is not 200,
        // or a page that is not JSON, is refused there too.
        return Err(Transport(
            match parse_response(status.as_u16(), &content_type, &bytes) {
                Err(err) => err,
                Ok(_) => {
                    TokenError::BadResponse(format!("HTTP {} instead of 200", status.as_u16()))
                }
            },
        ));
    }
    let mut answer = oauth2::HttpResponse::new(bytes.to_vec());
    *answer.status_mut() = http::StatusCode::OK;
    answer.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    Ok(answer)
}

/// A form body as the JSON object Atlassian documents (same fields, string values).
fn form_as_json(form: &[u8]) -> zeroize::Zeroizing<String> {
    let fields: serde_json::Map<String, serde_json::Value> = url::form_urlencoded::parse(form)
        .map(|(k, v)| (k.into_owned(), serde_json::Value::String(v.into_owned())))
        .collect();
    zeroize::Zeroizing::new(serde_json::Value::Object(fields).to_string())
}

/// A token response as providers really send it: `token_type` optional (Atlassian omits it),
/// `scope` or Bitbucket's `scopes`, `expires_in` as a number or a string. Parsed by the
/// `oauth2` crate through [`oauth2::TokenResponse`]; never printed (its tokens' `Debug` is
/// redacted by the crate).
#[derive(Clone, Debug, serde::Serialize, Deserialize)]
#[serde(from = "RawTokens", into = "RawTokens")]
struct Tokens {
    access_token: oauth2::AccessToken,
    token_type: oauth2::basic::BasicTokenType,
    refresh_token: Option<oauth2::RefreshToken>,
    expires_in: Option<u64>,
    scopes: Option<Vec<oauth2::Scope>>,
}

impl From<RawTokens> for Tokens {
    fn from(raw: RawTokens) -> Self {
        let expires_in = match &raw.expires_in {
            Some(serde_json::Value::Number(n)) => n.as_u64(),
            Some(serde_json::Value::String(s)) => s.parse().ok(),
            _ => None,
        };
        Self {
            access_token: oauth2::AccessToken::new(raw.access_token.unwrap_or_default()),
            token_type: oauth2::basic::BasicTokenType::Bearer,
            refresh_token: raw
                .refresh_token
                .filter(|t| !t.is_empty())
                .map(oauth2::RefreshToken::new),
            expires_in,
            scopes: raw.scope.or(raw.scopes).map(|text| {
                text.split_whitespace()
                    .map(|s| oauth2::Scope::new(s.to_owned()))
                    .collect()
            }),
        }
    }
}

impl From<Tokens> for RawTokens {
    fn from(tokens: Tokens) -> Self {
        Self {
            access_token: Some(tokens.access_token.secret().clone()),
            refresh_token: tokens.refresh_token.map(|t| t.secret().clone()),
            expires_in: tokens.expires_in.map(serde_json::Value::from),
            scope: tokens
                .scopes
                .map(|s| s.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" ")),
            scopes: None,
        }
    }
}

impl oauth2::TokenResponse for Tokens {
    type TokenType = oauth2::basic::BasicTokenType;

    fn access_token(&self) -> &oauth2::AccessToken {
        &self.access_token
    }

    fn token_type(&self) -> &Self::TokenType {
        &self.token_type
    }

    fn expires_in(&self) -> Option<Duration> {
        self.expires_in.map(Duration::from_secs)
    }

    fn refresh_token(&self) -> Option<&oauth2::RefreshToken> {
        self.refresh_token.as_ref()
    }

    fn scopes(&self) -> Option<&Vec<oauth2::Scope>> {
        self.scopes.as_ref()
    }
}

impl Tokens {
    fn into_set(self) -> TokenSet {
        let scope = self.scopes.and_then(|s| {
            ScopeList::parse(&s.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" ")).ok()
        });
        TokenSet {
            access_token: Secret::new(self.access_token.into_secret()),
            refresh_token: self.refresh_token.map(|t| Secret::new(t.into_secret())),
            expires_in: self.expires_in,
            scope,
        }
    }
}

fn transport_kind(err: &reqwest::Error) -> String {
    if crate::net::tls::is_untrusted_certificate(err) {
        crate::net::tls::untrusted_hint(None)
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

#[derive(Deserialize, serde::Serialize)]
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
    text.map(|t| printable(&t))
}

/// A provider's words as Latch may print and keep them: no control characters (a terminal
/// escape in an `error_description` must not reach a terminal), at most 200 characters.
pub(crate) fn printable(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).take(200).collect()
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
        // The same reading as the `oauth2` crate's, through Latch's response type.
        let tokens: Tokens = serde_json::from_slice(body)
            .map_err(|_| TokenError::BadResponse("malformed JSON".to_owned()))?;
        if tokens.access_token.secret().is_empty() {
            return Err(TokenError::BadResponse("no access_token".to_owned()));
        }
        return Ok(tokens.into_set());
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
    use sha2::Digest as _;

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
    fn the_crate_reads_answers_as_providers_send_them() {
        use oauth2::TokenResponse as _;
        // Atlassian: no token_type. Bitbucket: `scopes`, and `expires_in` as text elsewhere.
        let atlassian: Tokens = serde_json::from_str(
            r#"{"access_token":"a","refresh_token":"r","expires_in":3600,"scope":"read:me x"}"#,
        )
        .unwrap();
        assert_eq!(atlassian.expires_in(), Some(Duration::from_secs(3600)));
        let set = atlassian.into_set();
        assert_eq!(set.scope.unwrap().to_string(), "read:me x");
        assert_eq!(set.refresh_token.unwrap().expose(), "r");
        let bitbucket: Tokens = serde_json::from_str(
            r#"{"access_token":"a","scopes":"repository account","expires_in":"7200","token_type":"bearer"}"#,
        )
        .unwrap();
        assert_eq!(bitbucket.scopes().map(Vec::len), Some(2));
        assert_eq!(bitbucket.expires_in(), Some(Duration::from_secs(7200)));
        // Secrets do not show in Debug.
        assert!(!format!("{bitbucket:?}").contains("\"a\""));
        // The crate's form body becomes Atlassian's JSON, field for field.
        let json = form_as_json(b"grant_type=refresh_token&refresh_token=r%2Bt&client_id=c");
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(value["refresh_token"], "r+t");
        assert_eq!(value["grant_type"], "refresh_token");
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

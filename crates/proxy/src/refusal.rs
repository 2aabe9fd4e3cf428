//! Every way the proxy says no: one enum, mapped once to a status, a stable code, a message and
//! an action, served as `{"error", "message", "action"}` JSON. Refusals never echo the presented
//! key or any token. Codes are a contract: existing ones stay, new ones are added.

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::BodyExt as _;
use latch_core::credential::UpstreamRefusal;
use latch_core::GrantError;

use crate::path::BadPath;
use crate::ProxyBody;

/// Why a request was not forwarded (or its answer replaced).
#[derive(Debug)]
pub(crate) enum Refusal {
    /// `Host` is not a loopback name with this proxy's port (DNS rebinding).
    BadHost { port: u16 },
    /// More than one `Host` header.
    DuplicateHost,
    /// An `Origin` header: a web page.
    OriginNotAllowed,
    /// A CORS preflight.
    PreflightRefused,
    /// `Sec-Fetch-Site`: every current browser sends it; scripts do not.
    BrowserRefused,
    /// The person paused the proxy.
    Paused,
    /// No local key.
    MissingKey,
    /// A key Latch does not know.
    BadKey,
    /// A key past its expiry.
    KeyExpired,
    /// A revoked key.
    KeyRevoked,
    /// A path that could reach another API than the one the policy allows.
    BadPath(BadPath),
    /// The first segment names no connector.
    UnknownConnector,
    /// The key may not use this connector.
    ConnectorNotAllowed { key: String, connector: String },
    /// A read-only key and a writing method.
    MethodNotAllowed { key: String, method: String },
    /// A read-only key and a read that carries a body.
    BodyNotAllowed { key: String, method: String },
    /// The key's path patterns do not match.
    PathNotAllowed {
        key: String,
        path: String,
        patterns: Vec<String>,
    },
    /// The credential could not be had.
    Grant(GrantError),
    /// The token endpoint fails, or the caller's wait for it is spent.
    TokenEndpointFailing { reason: String, retry_after: u32 },
    /// The provider refused the request for scopes the grant lacks.
    NeedsStepUp {
        connector: String,
        provider: String,
        missing: Vec<String>,
        /// Where the scopes are decided when a new sign-in alone does not help (a Bitbucket
        /// OAuth consumer's permissions).
        decided_by: Option<String>,
    },
    /// The provider refused for scope although the grant holds every declared scope.
    ScopeMismatch {
        connector: String,
        provider: String,
        decided_by: Option<String>,
    },
    /// The upstream refused the credential sent, as its kind explains (a Connect JWT, an
    /// OAuth 1.0a signature).
    Credential(UpstreamRefusal),
    /// A form-encoded body too large to sign with OAuth 1.0a.
    FormTooLarge { limit: usize },
    /// The stored credential cannot go in a header.
    BadCredential,
    /// No upstream connection.
    UpstreamUnreachable(String),
    /// The upstream's TLS certificate is signed by a CA Latch does not trust.
    UpstreamUntrusted { provider: String },
    /// The upstream refused the TLS handshake for want of a (valid) client certificate, or
    /// the configured one cannot be presented.
    ClientCertificate {
        provider: String,
        why: String,
        fix: Option<String>,
    },
    /// No upstream answer in time.
    UpstreamTimeout,
    /// `latch exec --intercept`: the inner `Host` or the TLS server name is not the host the
    /// tunnel was opened to.
    InterceptMisdirected { authority: String },
    /// `latch exec --intercept`: no connector the command may reach covers this URL.
    NotCovered { url: String },
}

impl Refusal {
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            Self::BadHost { .. } | Self::InterceptMisdirected { .. } => {
                StatusCode::MISDIRECTED_REQUEST
            }
            Self::NotCovered { .. } => StatusCode::FORBIDDEN,
            Self::DuplicateHost | Self::BadPath(_) => StatusCode::BAD_REQUEST,
            Self::OriginNotAllowed
            | Self::PreflightRefused
            | Self::BrowserRefused
            | Self::ConnectorNotAllowed { .. }
            | Self::MethodNotAllowed { .. }
            | Self::BodyNotAllowed { .. }
            | Self::PathNotAllowed { .. } => StatusCode::FORBIDDEN,
            Self::Paused | Self::TokenEndpointFailing { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::MissingKey | Self::BadKey | Self::KeyExpired | Self::KeyRevoked => {
                StatusCode::UNAUTHORIZED
            }
            Self::UnknownConnector => StatusCode::NOT_FOUND,
            Self::Grant(err) => match err {
                GrantError::RefreshFailing { .. } | GrantError::RefreshUncertain { .. } => {
                    StatusCode::SERVICE_UNAVAILABLE
                }
                _ => StatusCode::BAD_GATEWAY,
            },
            Self::NeedsStepUp { .. }
            | Self::ScopeMismatch { .. }
            | Self::Credential(_)
            | Self::BadCredential
            | Self::UpstreamUnreachable(_)
            | Self::UpstreamUntrusted { .. }
            | Self::ClientCertificate { .. } => StatusCode::BAD_GATEWAY,
            Self::UpstreamTimeout => StatusCode::GATEWAY_TIMEOUT,
            Self::FormTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        }
    }

    pub(crate) fn code(&self) -> &'static str {
        match self {
            Self::BadHost { .. } => "bad_host",
            Self::DuplicateHost => "duplicate_host",
            Self::OriginNotAllowed => "origin_not_allowed",
            Self::PreflightRefused => "preflight_refused",
            Self::BrowserRefused => "browser_refused",
            Self::Paused => "proxy_paused",
            Self::MissingKey => "missing_key",
            Self::BadKey => "bad_key",
            Self::KeyExpired => "key_expired",
            Self::KeyRevoked => "key_revoked",
            Self::BadPath(_) => "bad_path",
            Self::UnknownConnector => "unknown_connector",
            Self::ConnectorNotAllowed { .. } => "connector_not_allowed",
            Self::MethodNotAllowed { .. } => "method_not_allowed",
            Self::BodyNotAllowed { .. } => "body_not_allowed",
            Self::PathNotAllowed { .. } => "path_not_allowed",
            Self::Grant(err) => match err {
                GrantError::RefreshFailing { .. } | GrantError::RefreshUncertain { .. } => {
                    "token_endpoint_failing"
                }
                other => other.code().as_str(),
            },
            Self::TokenEndpointFailing { .. } => "token_endpoint_failing",
            Self::NeedsStepUp { .. } => "needs_step_up",
            Self::ScopeMismatch { .. }
            | Self::Credential(UpstreamRefusal::ConnectScopeMissing { .. }) => "scope_mismatch",
            Self::Credential(UpstreamRefusal::ConnectJwtRejected { .. }) => "connect_jwt_rejected",
            Self::Credential(UpstreamRefusal::LinkRefused { .. }) => "oauth1_rejected",
            Self::FormTooLarge { .. } => "oauth1_body_too_large",
            Self::BadCredential => "bad_credential",
            Self::UpstreamUnreachable(_) => "upstream_unreachable",
            Self::UpstreamUntrusted { .. } => "upstream_certificate_untrusted",
            Self::ClientCertificate { .. } => "client_certificate_refused",
            Self::UpstreamTimeout => "upstream_timeout",
            Self::InterceptMisdirected { .. } => "host_mismatch",
            Self::NotCovered { .. } => "not_covered",
        }
    }

    fn message(&self) -> String {
        match self {
            Self::BadHost { .. } => {
                "the Host header is not a loopback name with this proxy's port \
                (a DNS-rebinding page, or a misconfigured client)"
                    .to_owned()
            }
            Self::DuplicateHost => "the request has more than one Host header".to_owned(),
            Self::OriginNotAllowed => {
                "requests from web pages (with an Origin header) are refused: \
                a page must never spend your tokens"
                    .to_owned()
            }
            Self::PreflightRefused => {
                "CORS preflights are refused: the proxy serves local tools, not browsers".to_owned()
            }
            Self::BrowserRefused => "requests from a browser (Sec-Fetch-Site) are refused: a page \
                must never spend your tokens"
                .to_owned(),
            Self::Paused => "the proxy is paused".to_owned(),
            Self::MissingKey => {
                "no local key: send it as `Authorization: Bearer KEY`, as the Basic \
                password, or as `X-Latch-Key`"
                    .to_owned()
            }
            Self::BadKey => "this local key is not known to Latch".to_owned(),
            Self::KeyExpired => "this local key has expired".to_owned(),
            Self::KeyRevoked => "this local key was revoked".to_owned(),
            Self::BadPath(why) => format!(
                "{why}; Latch refuses paths that could reach another API than the one the key \
                 allows"
            ),
            Self::UnknownConnector => {
                "the first path segment names no configured connector".to_owned()
            }
            Self::ConnectorNotAllowed { key, connector } => {
                format!("key `{key}` may not use connector `{connector}`")
            }
            Self::MethodNotAllowed { key, method } => {
                format!("key `{key}` is read-only: {method} is refused")
            }
            Self::BodyNotAllowed { key, method } => {
                format!("key `{key}` is read-only: a {method} with a body is refused")
            }
            Self::PathNotAllowed { key, path, .. } => {
                format!("key `{key}` may not use path /{path}")
            }
            Self::Grant(err) => err.to_string(),
            Self::TokenEndpointFailing { reason, .. } => format!(
                "the identity provider's token endpoint is failing, so no fresh token could be \
                 had: {reason}; this is not a problem with your key or request"
            ),
            Self::NeedsStepUp {
                connector,
                missing,
                decided_by,
                ..
            } => format!(
                "the upstream API refused the request for a scope the token lacks; connector \
                 `{connector}` needs scopes its sign-in was not granted: {}{}",
                missing.join(" "),
                decided_by
                    .as_deref()
                    .map(|d| format!("; first {d}"))
                    .unwrap_or_default()
            ),
            Self::ScopeMismatch {
                connector,
                decided_by,
                ..
            } => format!(
                "the upstream API refused the request for a scope the token lacks (\"scope does \
                 not match\"), although the grant holds every scope connector `{connector}` \
                 declares; refreshing would not help{}",
                decided_by
                    .as_deref()
                    .map(|d| format!("; {d}"))
                    .unwrap_or_default()
            ),
            Self::Credential(UpstreamRefusal::ConnectJwtRejected { hint }) => hint.clone(),
            Self::Credential(UpstreamRefusal::ConnectScopeMissing { connector }) => format!(
                "the site refused connector `{connector}`'s request: the Connect app's descriptor \
                 does not have the scope this endpoint needs (\"Request not in an authorized API \
                 scope\")"
            ),
            Self::Credential(UpstreamRefusal::LinkRefused {
                provider,
                problem,
                message,
                ..
            }) => format!(
                "the application link of `{provider}` refused the signed request \
                 (oauth_problem={problem}): {message}"
            ),
            Self::FormTooLarge { limit } => format!(
                "a form-encoded body is signed with OAuth 1.0a, so Latch reads it first; this \
                 one is over {} KiB",
                limit / 1024
            ),
            Self::BadCredential => "the stored credential cannot be sent in a header".to_owned(),
            Self::UpstreamUntrusted { provider } => format!(
                "the upstream's TLS certificate of provider `{provider}` is signed by a CA that \
                 neither the built-in roots nor the OS trust store know"
            ),
            Self::UpstreamUnreachable(why) => {
                format!("the upstream API could not be reached: {why}")
            }
            Self::ClientCertificate { provider, why, .. } => format!(
                "the upstream of provider `{provider}` wants a client certificate Latch could \
                 not present: {why}"
            ),
            Self::UpstreamTimeout => "the upstream API did not answer in time".to_owned(),
            Self::InterceptMisdirected { authority } => format!(
                "this connection was opened to {authority}: the Host header and the TLS server \
                 name must name it too"
            ),
            Self::NotCovered { url } => format!(
                "no connector this command may reach covers {url}; Latch never sends a request \
                 with another connector's credential"
            ),
        }
    }

    fn action(&self) -> String {
        match self {
            Self::BadHost { port } => format!("call http://127.0.0.1:{port}/CONNECTOR/..."),
            Self::DuplicateHost => "send one Host header".to_owned(),
            Self::OriginNotAllowed | Self::PreflightRefused | Self::BrowserRefused => {
                "call the proxy from a script or CLI, not from a browser page".to_owned()
            }
            Self::Paused => "resume it in the Latch window".to_owned(),
            Self::MissingKey => {
                "create one with `latch keys create NAME --connector CONNECTOR`".to_owned()
            }
            Self::BadKey | Self::KeyExpired | Self::KeyRevoked => {
                "create a new key with `latch keys create NAME --connector CONNECTOR`".to_owned()
            }
            Self::BadPath(_) => {
                "send the path without dot segments, encoded slashes or backslashes".to_owned()
            }
            Self::UnknownConnector => {
                "call /CONNECTOR/... with a connector from `latch connector list`".to_owned()
            }
            Self::ConnectorNotAllowed { connector, .. } => {
                format!("create a key with --connector {connector}")
            }
            Self::MethodNotAllowed { .. } => {
                "use a key created without --read-only for writes".to_owned()
            }
            Self::BodyNotAllowed { .. } => {
                "send the read without a body, or use a key created without --read-only".to_owned()
            }
            Self::PathNotAllowed { patterns, .. } => {
                if patterns.is_empty() {
                    "this key allows no path; create one with --path PATTERN".to_owned()
                } else {
                    format!("its paths are: {}", patterns.join(", "))
                }
            }
            Self::Grant(err) => match err {
                GrantError::NotSignedIn { fix, .. }
                | GrantError::SiteUnbound { fix, .. }
                | GrantError::CredentialMissing { fix, .. }
                | GrantError::CredentialRejected { fix, .. }
                | GrantError::ImpersonationRefused { fix, .. }
                | GrantError::LinkRefused { fix, .. } => fix.clone(),
                GrantError::NeedsLogin { provider, .. } => format!("latch login {provider}"),
                GrantError::RefreshFailing { .. } => {
                    "retry later; `latch status` shows the last error".to_owned()
                }
                GrantError::RefreshUncertain { provider, .. } => {
                    format!("retry; if it says needs_login next, run `latch login {provider}`")
                }
                _ => "run `latch status` or `latch doctor`".to_owned(),
            },
            Self::TokenEndpointFailing { .. } => {
                "retry after the Retry-After seconds; `latch status` shows the last error"
                    .to_owned()
            }
            Self::NeedsStepUp { provider, .. } => format!("latch login {provider}"),
            Self::ScopeMismatch { provider, .. } => format!(
                "add the scope this endpoint needs to the app and the connector, then `latch \
                 login {provider}`"
            ),
            Self::Credential(UpstreamRefusal::ConnectJwtRejected { .. }) => {
                "check the clock, then store the app's current installed payload with `latch \
                 credential set`"
                    .to_owned()
            }
            Self::Credential(UpstreamRefusal::ConnectScopeMissing { .. }) => {
                "add the scope (READ, WRITE, DELETE, PROJECT_ADMIN or ADMIN) to the app's \
                 descriptor and update the app; Latch cannot grant it"
                    .to_owned()
            }
            Self::Credential(UpstreamRefusal::LinkRefused { fix, .. }) => fix.clone(),
            Self::FormTooLarge { .. } => {
                "send a smaller form, or the data as JSON (only form bodies are signed)".to_owned()
            }
            Self::BadCredential => "store it again".to_owned(),
            Self::ClientCertificate { provider, fix, .. } => fix.clone().unwrap_or_else(|| {
                format!(
                    "import the certificate and key your gateway's admin issued: `latch \
                     provider client-cert {provider} --cert FILE --key FILE`"
                )
            }),
            Self::UpstreamUntrusted { provider } => format!(
                "if your company's CA signs it, set `ca_file = \"/path/to/ca.pem\"` under \
                 [providers.{provider}] in latch.toml (or add the CA to the OS trust store)"
            ),
            Self::UpstreamUnreachable(_) => {
                "check the network; `latch doctor` probes each connector".to_owned()
            }
            Self::UpstreamTimeout => "retry later".to_owned(),
            Self::InterceptMisdirected { .. } => {
                "open one tunnel per host (CONNECT host:443) and send that host's requests on it"
                    .to_owned()
            }
            Self::NotCovered { .. } => "run the command with --connector for the product it \
                calls, or see the host map with `latch exec --intercept --dry-run`"
                .to_owned(),
        }
    }

    /// Seconds a client should wait before trying again, when that is known.
    fn retry_after(&self) -> Option<u32> {
        match self {
            Self::TokenEndpointFailing { retry_after, .. } => Some(*retry_after),
            Self::Grant(
                GrantError::RefreshFailing { .. } | GrantError::RefreshUncertain { .. },
            ) => Some(30),
            Self::Paused => Some(30),
            _ => None,
        }
    }

    pub(crate) fn into_response(self) -> Response<ProxyBody> {
        let mut body = serde_json::json!({
            "error": self.code(),
            "message": self.message(),
            "action": self.action(),
        });
        if let Self::NeedsStepUp { missing, .. } = &self {
            body["missing_scopes"] = serde_json::json!(missing);
        }
        // A keychain that is there but locked needs the person, not an install.
        if let Self::Grant(GrantError::Keychain(err)) = &self {
            body["reason"] = serde_json::json!(match err {
                latch_core::ports::SecretStoreError::Locked { .. } => "locked",
                latch_core::ports::SecretStoreError::Unavailable { .. } => "unreachable",
                _ => "refused",
            });
        }
        if let Self::Credential(UpstreamRefusal::LinkRefused { problem, .. })
        | Self::Grant(GrantError::LinkRefused { problem, .. }) = &self
        {
            body["problem"] = serde_json::json!(problem);
        }
        let mut response = Response::new(
            http_body_util::Full::new(Bytes::from(body.to_string()))
                .map_err(|never| match never {})
                .boxed_unsync(),
        );
        *response.status_mut() = self.status();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        crate::headers::harden(headers);
        if let Some(secs) = self.retry_after() {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.status() == StatusCode::UNAUTHORIZED {
            // Basic-only clients (git, Java, .NET, `curl --anyauth`) send credentials only after
            // a challenge; the key goes in the password. Browsers never get here (refused first).
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"latch\", charset=\"UTF-8\""),
            );
        }
        response
    }
}

//! One proxied request: check, route, inject, stream, audit.

use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use http::{
    header, HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode, Uri,
};
use http_body_util::BodyExt as _;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use latch_core::config::Connector;
use latch_core::grants::{Credential, GrantError, Upstream};
use latch_core::local_keys::{KeyCheck, KeyPolicy, KeyRefusal};
use latch_core::profile::ProviderProfile;
use latch_core::secret::Secret;
use latch_store::AuditRow;

use crate::path::{canonical, upstream_url, CanonicalPath};
use crate::refusal::refuse;
use crate::State;

pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub(crate) type ProxyBody = http_body_util::combinators::UnsyncBoxBody<Bytes, BoxError>;
pub(crate) type UpstreamClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, ProxyBody>;

/// How much of an upstream 401 body is read to tell "scope does not match" from an expired token.
const UNAUTHORIZED_PEEK: usize = 64 * 1024;

pub(crate) fn client() -> UpstreamClient {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(Duration::from_secs(10)));
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_webpki_roots()
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(256)
        .build(https)
}

fn empty() -> ProxyBody {
    http_body_util::Empty::new()
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// Hop-by-hop headers (RFC 9110 §7.6.1) and the ones Latch owns are never forwarded.
fn strip(headers: &mut HeaderMap) {
    let listed: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in listed {
        headers.remove(name);
    }
    for name in [
        header::CONNECTION,
        header::PROXY_AUTHENTICATE,
        header::PROXY_AUTHORIZATION,
        header::TE,
        header::TRAILER,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
        HeaderName::from_static("keep-alive"),
    ] {
        headers.remove(name);
    }
}

/// `Host` must be a loopback name with our port: anything else is DNS rebinding or a mistake.
fn host_ok(headers: &HeaderMap, port: u16) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        return false;
    };
    let Some((name, p)) = host.rsplit_once(':') else {
        return false;
    };
    p.parse::<u16>().ok() == Some(port)
        && (name == "127.0.0.1" || name.eq_ignore_ascii_case("localhost") || name == "[::1]")
}

/// The local key: `Authorization: Bearer`, Basic with the key as password, or `X-Latch-Key`.
fn presented_key(headers: &HeaderMap) -> Option<Secret> {
    if let Some(key) = headers.get("x-latch-key").and_then(|v| v.to_str().ok()) {
        return Some(Secret::new(key.trim().to_owned()));
    }
    let auth = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, value) = auth.split_once(' ')?;
    if scheme.eq_ignore_ascii_case("bearer") {
        return Some(Secret::new(value.trim().to_owned()));
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(value.trim())
            .ok()?;
        let text = Secret::new(String::from_utf8(decoded).ok()?);
        let (_, password) = text.expose().split_once(':')?;
        return Some(Secret::new(password.to_owned()));
    }
    None
}

struct Routed<'a> {
    connector: &'a Connector,
    /// The canonical path below the connector, without a leading `/`: policy is matched on it
    /// and the upstream URL is built from it.
    rest: String,
}

/// `/{connector}/{rest}`, or a site-relative path (Confluence's `/wiki/...` pagination links)
/// that belongs to exactly one of the key's connectors.
fn route<'a>(state: &'a State, path: &CanonicalPath, policy: &KeyPolicy) -> Option<Routed<'a>> {
    let (first, rest) = path.split_first();
    if let Some(connector) = state.config.connector(first) {
        return Some(Routed {
            connector,
            rest: rest.to_owned(),
        });
    }
    let path = path.as_str();
    let trimmed = &path[1..];
    let mut owners = state.config.connectors.iter().filter(|c| {
        policy.allows_connector(&c.name)
            && c.spec
                .site_paths
                .iter()
                .any(|p| path.starts_with(p.as_str()))
    });
    match (owners.next(), owners.next()) {
        (Some(connector), None) => Some(Routed {
            connector,
            rest: trimmed.to_owned(),
        }),
        _ => None,
    }
}

fn grant_refusal(err: &GrantError) -> Response<ProxyBody> {
    match err {
        GrantError::NotSignedIn { fix, .. } => refuse(
            StatusCode::BAD_GATEWAY,
            "not_signed_in",
            &err.to_string(),
            fix,
        ),
        GrantError::NeedsLogin { provider, .. } => refuse(
            StatusCode::BAD_GATEWAY,
            "needs_login",
            &err.to_string(),
            &format!("latch login {provider}"),
        ),
        GrantError::RefreshFailing { .. } => refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "token_endpoint_failing",
            &err.to_string(),
            "retry later; `latch status` shows the last error",
        ),
        GrantError::SiteUnbound { fix, .. } => refuse(
            StatusCode::BAD_GATEWAY,
            "site_unbound",
            &err.to_string(),
            fix,
        ),
        GrantError::CredentialMissing { fix, .. } | GrantError::CredentialRejected { fix, .. } => {
            refuse(
                StatusCode::BAD_GATEWAY,
                err.code().as_str(),
                &err.to_string(),
                fix,
            )
        }
        GrantError::RefreshUncertain { provider, .. } => refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "token_endpoint_failing",
            &err.to_string(),
            &format!("retry; if it says needs_login next, run `latch login {provider}`"),
        ),
        _ => refuse(
            StatusCode::BAD_GATEWAY,
            err.code().as_str(),
            &err.to_string(),
            "run `latch status` or `latch doctor`",
        ),
    }
}

/// The provider refused a request for scope: `needs_step_up` naming what Latch knows is missing
/// (required − granted) and the command; `scope_mismatch` when the grant holds everything the
/// connector declares (the endpoint needs a scope outside it).
fn step_up(state: &State, connector: &Connector, rest: &str) -> Response<ProxyBody> {
    let missing = state.grants.missing_scopes(connector).unwrap_or_default();
    if missing.is_empty() {
        return refuse(
            StatusCode::BAD_GATEWAY,
            "scope_mismatch",
            &format!(
                "the upstream API refused /{rest} for a scope the token lacks (\"scope does not \
                 match\"), although the grant holds every scope connector `{}` declares; refreshing \
                 would not help",
                connector.name
            ),
            &format!(
                "add the scope this endpoint needs to the app and the connector, then `latch login \
                 {}`",
                connector.provider
            ),
        );
    }
    let names: Vec<&str> = missing.iter().map(|s| s.as_str()).collect();
    let body = serde_json::json!({
        "error": "needs_step_up",
        "message": format!(
            "the upstream API refused /{rest} for a scope the token lacks; connector `{}` needs \
             scopes its sign-in was not granted: {}",
            connector.name,
            names.join(" ")
        ),
        "action": format!("latch login {}", connector.provider),
        "missing_scopes": names,
    });
    crate::refusal::refuse_json(StatusCode::BAD_GATEWAY, &body)
}

struct Audit {
    started: Instant,
    key_name: Option<String>,
    connector: Option<String>,
    method: String,
    path: String,
    refreshed: bool,
}

impl Audit {
    fn row(&self, status: u16, bytes: u64) -> AuditRow {
        AuditRow {
            at: latch_core::now_rfc3339(),
            key_name: self.key_name.clone(),
            connector: self.connector.clone(),
            method: self.method.clone(),
            path: self.path.clone(),
            status: i64::from(status),
            bytes: i64::try_from(bytes).unwrap_or(i64::MAX),
            latency_us: i64::try_from(self.started.elapsed().as_micros()).unwrap_or(i64::MAX),
            refreshed: self.refreshed,
        }
    }
}

/// Counts response bytes and writes the audit row when the body ends or is dropped.
struct Counted {
    inner: Incoming,
    bytes: u64,
    status: u16,
    audit: Option<(Audit, crate::AuditSink)>,
}

impl Body for Counted {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.bytes += data.len() as u64;
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(Box::new(e)))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        if let Some((audit, sink)) = self.audit.take() {
            sink.record(audit.row(self.status, self.bytes));
        }
    }
}

fn finish(audit: Audit, state: &State, response: Response<ProxyBody>) -> Response<ProxyBody> {
    let len = response.body().size_hint().exact().unwrap_or(0);
    state
        .audit
        .record(audit.row(response.status().as_u16(), len));
    response
}

pub(crate) async fn handle(state: Arc<State>, request: Request<Incoming>) -> Response<ProxyBody> {
    let mut audit = Audit {
        started: Instant::now(),
        key_name: None,
        connector: None,
        method: request.method().as_str().to_owned(),
        // The path only: query strings can carry secrets.
        path: request.uri().path().to_owned(),
        refreshed: false,
    };
    let headers = request.headers();
    if !host_ok(headers, state.port) {
        return finish(audit, &state, refuse(
            StatusCode::MISDIRECTED_REQUEST,
            "bad_host",
            "the Host header is not a loopback name with this proxy's port (a DNS-rebinding page, or a misconfigured client)",
            &format!("call http://127.0.0.1:{}/CONNECTOR/...", state.port),
        ));
    }
    if headers.contains_key(header::ORIGIN) {
        return finish(audit, &state, refuse(
            StatusCode::FORBIDDEN,
            "origin_not_allowed",
            "requests from web pages (with an Origin header) are refused: a page must never spend your tokens",
            "call the proxy from a script or CLI, not from a browser page",
        ));
    }
    if request.method() == Method::OPTIONS
        && headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
    {
        return finish(
            audit,
            &state,
            refuse(
                StatusCode::FORBIDDEN,
                "preflight_refused",
                "CORS preflights are refused: the proxy serves local tools, not browsers",
                "call the proxy from a script or CLI",
            ),
        );
    }
    if state.paused.load(Ordering::Relaxed) {
        return finish(
            audit,
            &state,
            refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                "proxy_paused",
                "the proxy is paused",
                "resume it in the Latch window",
            ),
        );
    }
    let Some(key) = presented_key(headers) else {
        return finish(audit, &state, refuse(
            StatusCode::UNAUTHORIZED,
            "missing_key",
            "no local key: send it as `Authorization: Bearer KEY`, as the Basic password, or as `X-Latch-Key`",
            "create one with `latch keys create NAME --connector CONNECTOR`",
        ));
    };
    let policy = match state.keys.verify(key.expose()) {
        Ok(policy) => policy,
        Err(check) => {
            let (code, message) = match check {
                KeyCheck::Unknown => ("bad_key", "this local key is not known to Latch"),
                KeyCheck::Refused(KeyRefusal::Expired) => {
                    ("key_expired", "this local key has expired")
                }
                KeyCheck::Refused(KeyRefusal::Revoked) => {
                    ("key_revoked", "this local key was revoked")
                }
            };
            return finish(
                audit,
                &state,
                refuse(
                    StatusCode::UNAUTHORIZED,
                    code,
                    message,
                    "create a new key with `latch keys create NAME --connector CONNECTOR`",
                ),
            );
        }
    };
    audit.key_name = Some(policy.name.clone());
    // One canonical path for routing, policy and the upstream URL.
    let path = match canonical(request.uri().path()) {
        Ok(path) => path,
        Err(why) => {
            return finish(
                audit,
                &state,
                refuse(
                    StatusCode::BAD_REQUEST,
                    "bad_path",
                    &format!("{why}; Latch refuses paths that could reach another API than the one the key allows"),
                    "send the path without dot segments, encoded slashes or backslashes",
                ),
            )
        }
    };
    let Some(Routed { connector, rest }) = route(&state, &path, &policy) else {
        return finish(
            audit,
            &state,
            refuse(
                StatusCode::NOT_FOUND,
                "unknown_connector",
                "the first path segment names no configured connector",
                "call /CONNECTOR/... with a connector from `latch connector list`",
            ),
        );
    };
    audit.connector = Some(connector.name.clone());
    if !policy.allows_connector(&connector.name) {
        return finish(
            audit,
            &state,
            refuse(
                StatusCode::FORBIDDEN,
                "connector_not_allowed",
                &format!(
                    "key `{}` may not use connector `{}`",
                    policy.name, connector.name
                ),
                &format!("create a key with --connector {}", connector.name),
            ),
        );
    }
    if !policy.allows_method(request.method().as_str()) {
        return finish(
            audit,
            &state,
            refuse(
                StatusCode::FORBIDDEN,
                "method_not_allowed",
                &format!(
                    "key `{}` is read-only: {} is refused",
                    policy.name,
                    request.method()
                ),
                "use a key created without --read-only for writes",
            ),
        );
    }
    if !policy.allows_path(&rest) {
        return finish(
            audit,
            &state,
            refuse(
                StatusCode::FORBIDDEN,
                "path_not_allowed",
                &format!("key `{}` may not use path /{rest}", policy.name),
                &format!("its paths are: {}", policy.paths.join(", ")),
            ),
        );
    }
    // No pre-block on missing scopes: Latch cannot know which scopes an arbitrary request
    // needs, so it forwards and turns the provider's scope refusal into `needs_step_up`.
    let Upstream {
        base,
        credential: mut credential_now,
        grant,
    } = match state.grants.upstream(connector).await {
        Ok(upstream) => upstream,
        Err(err) => return finish(audit, &state, grant_refusal(&err)),
    };
    let target = upstream_url(&base, &rest, request.uri().query());
    let Ok(uri) = target.parse::<Uri>() else {
        return finish(
            audit,
            &state,
            refuse(
                StatusCode::BAD_REQUEST,
                "bad_path",
                "the request path does not form a valid upstream URL",
                "check the path",
            ),
        );
    };
    let (parts, body) = request.into_parts();
    let mut headers = parts.headers;
    strip(&mut headers);
    headers.remove(header::HOST);
    headers.remove(header::AUTHORIZATION);
    headers.remove("x-latch-key");
    headers.remove(header::COOKIE);
    // A request without a body can be sent again after a refresh.
    let replayable = body.is_end_stream()
        || headers
            .get(header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() == b"0");
    let profile = state
        .config
        .provider(&connector.provider)
        .map_or(ProviderProfile::Generic, |p| ProviderProfile::of(&p.spec));
    let mut body = Some(if replayable {
        empty()
    } else {
        body.map_err(|e| Box::new(e) as BoxError).boxed_unsync()
    });
    for attempt in 0..2 {
        let mut upstream = Request::new(body.take().unwrap_or_else(empty));
        *upstream.method_mut() = parts.method.clone();
        *upstream.uri_mut() = uri.clone();
        *upstream.headers_mut() = headers.clone();
        let Ok(auth) = HeaderValue::from_str(credential_now.authorization().expose()) else {
            return finish(
                audit,
                &state,
                refuse(
                    StatusCode::BAD_GATEWAY,
                    "bad_credential",
                    "the stored credential cannot be sent in a header",
                    "store it again",
                ),
            );
        };
        let mut auth = auth;
        auth.set_sensitive(true);
        upstream.headers_mut().insert(header::AUTHORIZATION, auth);
        let response =
            match tokio::time::timeout(crate::UPSTREAM_TIMEOUT, state.client.request(upstream))
                .await
            {
                Ok(Ok(response)) => response,
                Ok(Err(err)) => {
                    return finish(
                        audit,
                        &state,
                        refuse(
                            StatusCode::BAD_GATEWAY,
                            "upstream_unreachable",
                            &format!("the upstream API could not be reached: {err}"),
                            "check the network; `latch doctor --probe` tests each connector",
                        ),
                    )
                }
                Err(_) => {
                    return finish(
                        audit,
                        &state,
                        refuse(
                            StatusCode::GATEWAY_TIMEOUT,
                            "upstream_timeout",
                            "the upstream API did not answer in time",
                            "retry later",
                        ),
                    )
                }
            };
        let status = response.status();
        let maybe_scope = status == StatusCode::UNAUTHORIZED
            || (status == StatusCode::FORBIDDEN && profile == ProviderProfile::Bitbucket);
        if maybe_scope {
            let (head, upstream_body) = response.into_parts();
            let peek = http_body_util::Limited::new(upstream_body, UNAUTHORIZED_PEEK)
                .collect()
                .await
                .map(|c| c.to_bytes())
                .unwrap_or_default();
            if profile.is_scope_refusal(status.as_u16(), &peek) {
                return finish(audit, &state, step_up(&state, connector, &rest));
            }
            let refreshable = status == StatusCode::UNAUTHORIZED && replayable && attempt == 0;
            let fresh = match (&grant, refreshable) {
                (Some(grant), true) => {
                    let rejected = credential_now.token().clone();
                    Some(
                        state
                            .grants
                            .access_token_after_rejection(grant, &rejected)
                            .await,
                    )
                }
                _ => None,
            };
            match fresh {
                Some(Ok(token)) => {
                    credential_now = Credential::Bearer(token);
                    audit.refreshed = true;
                    body = Some(empty());
                    continue;
                }
                Some(Err(_)) | None => {
                    let mut response = Response::from_parts(
                        head,
                        http_body_util::Full::new(peek)
                            .map_err(|never| match never {})
                            .boxed_unsync(),
                    );
                    strip(response.headers_mut());
                    return finish(audit, &state, response);
                }
            }
        }
        let (mut head, upstream_body) = response.into_parts();
        strip(&mut head.headers);
        let status = head.status.as_u16();
        let counted = Counted {
            inner: upstream_body,
            bytes: 0,
            status,
            audit: Some((audit, state.audit.clone())),
        };
        return Response::from_parts(head, counted.boxed_unsync());
    }
    refuse(
        StatusCode::BAD_GATEWAY,
        "retry_exhausted",
        "the upstream refused the token twice",
        "run `latch status`",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_must_be_loopback_with_our_port() {
        let mut h = HeaderMap::new();
        for (host, ok) in [
            ("127.0.0.1:7391", true),
            ("localhost:7391", true),
            ("[::1]:7391", true),
            ("127.0.0.1:80", false),
            ("evil.example:7391", false),
            ("evil.example", false),
            ("127.0.0.1", false),
        ] {
            h.insert(header::HOST, HeaderValue::from_static(host));
            assert_eq!(host_ok(&h, 7391), ok, "{host}");
        }
        h.remove(header::HOST);
        assert!(!host_ok(&h, 7391));
    }

    #[test]
    fn keys_are_read_from_all_three_places() {
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer lk_abc"),
        );
        assert_eq!(presented_key(&h).unwrap().expose(), "lk_abc");
        // Basic with any user name: "anything:lk_abc".
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Basic YW55dGhpbmc6bGtfYWJj"),
        );
        assert_eq!(presented_key(&h).unwrap().expose(), "lk_abc");
        h.remove(header::AUTHORIZATION);
        h.insert("x-latch-key", HeaderValue::from_static("lk_abc"));
        assert_eq!(presented_key(&h).unwrap().expose(), "lk_abc");
        assert!(presented_key(&HeaderMap::new()).is_none());
    }

    #[test]
    fn hop_by_hop_headers_are_stripped() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, x-private"),
        );
        h.insert("x-private", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        h.insert("x-keep", HeaderValue::from_static("1"));
        strip(&mut h);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key("x-keep"));
    }
}

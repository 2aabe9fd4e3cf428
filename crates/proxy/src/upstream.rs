//! The last stage: send the request upstream with the connector's credential, stream both
//! bodies, and handle the upstream's 401 — a scope refusal becomes `needs_step_up`; otherwise
//! one refresh (throttled per grant) and one retry.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{header, HeaderName, HeaderValue, Request, Response, StatusCode, Uri};
use http_body_util::BodyExt as _;
use hyper::body::{Body, Frame, SizeHint};
use hyper_util::client::legacy::connect::{Connection as _, HttpConnector};
use latch_core::config::Connector;
use latch_core::credential::{CredentialKind, Upstream};
use latch_core::grant::GrantId;
use latch_core::provider::ProviderRules;
use latch_core::upstream::links::LinkTarget;
use latch_core::GrantError;

use crate::audit::{Audit, Counted};
use crate::headers::{harden, strip};
use crate::policy::Routed;
use crate::pool::{Pool, Returning, Route, Sender};
use crate::refusal::Refusal;
use crate::{BoxError, ProxyBody, Shared, State};
use std::future::Future as _;

/// Makes upstream connections (plain or TLS).
pub(crate) type UpstreamConnector = hyper_rustls::HttpsConnector<HttpConnector>;

/// One trust context: the built-in roots and the OS store, plus a provider's `ca_file` and
/// client certificate; its warm connections are its own.
pub(crate) struct Trust {
    direct: UpstreamConnector,
    tls: Option<rustls::ClientConfig>,
    pool: Arc<Pool>,
    /// Why this provider's connections cannot be made as configured (its client certificate's
    /// key is not in the keychain): its requests are refused with this, never sent without it.
    unusable: Option<latch_core::net::tls::TrustError>,
}

impl Trust {
    fn new(tls: Option<rustls::ClientConfig>, idle_for: Duration) -> Self {
        Self {
            direct: https(tls.clone(), http_connector()),
            tls,
            pool: Pool::new(idle_for),
            unusable: None,
        }
    }
}

/// Upstream connections by trust (a provider's `ca_file` and client certificate are that
/// provider's only) and route (the environment's `HTTPS_PROXY`, by CONNECT tunnel; never for
/// loopback hosts).
pub(crate) struct UpstreamConnectors {
    default: Trust,
    own: std::collections::HashMap<String, Trust>,
    outbound: latch_core::net::outbound::OutboundProxy,
}

impl UpstreamConnectors {
    pub(crate) fn new(
        config: &latch_core::config::Config,
        clients: &latch_core::net::tls::ProviderClients,
    ) -> Self {
        let idle_for = config.upstream_idle;
        let own = clients
            .providers()
            .map(|provider| {
                let trust = match clients.tls(provider) {
                    Ok(tls) => Trust::new(tls, idle_for),
                    Err(err) => Trust {
                        unusable: Some(err),
                        ..Trust::new(latch_core::net::tls::trusting(None), idle_for)
                    },
                };
                (provider.to_owned(), trust)
            })
            .collect();
        Self {
            default: Trust::new(latch_core::net::tls::trusting(None), idle_for),
            own,
            outbound: latch_core::net::outbound::OutboundProxy::from_env(),
        }
    }

    fn trust(&self, provider: &str) -> &Trust {
        self.own.get(provider).unwrap_or(&self.default)
    }
}

/// Opens a new upstream connection to `uri`'s host: directly, or through the environment's
/// proxy with a CONNECT tunnel (TLS to the upstream then runs inside it). HTTP/2 when the
/// upstream picks it by ALPN, HTTP/1.1 otherwise.
async fn connect(
    trust: &Trust,
    via: Option<&latch_core::net::outbound::ProxyRoute>,
    uri: &Uri,
) -> Result<Sender, BoxError> {
    let opening = async {
        match via {
            Some(route) => {
                let mut tunnel = hyper_util::client::legacy::connect::proxy::Tunnel::new(
                    route.uri.clone(),
                    http_connector(),
                );
                if let Some(auth) = route.authorization.clone() {
                    tunnel = tunnel.with_auth(auth);
                }
                let mut connector = https(trust.tls.clone(), tunnel);
                tower_service::Service::call(&mut connector, uri.clone()).await
            }
            None => {
                let mut connector = trust.direct.clone();
                tower_service::Service::call(&mut connector, uri.clone()).await
            }
        }
    };
    let stream = tokio::time::timeout(Duration::from_secs(10), opening)
        .await
        .map_err(|_| "connecting took over 10 s")??;
    if stream.connected().is_negotiated_h2() {
        let (sender, connection) =
            hyper::client::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                .timer(hyper_util::rt::TokioTimer::new())
                .handshake(stream)
                .await?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        return Ok(Sender::H2(sender));
    }
    let (sender, connection) = hyper::client::conn::http1::handshake(stream).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(Sender::H1(sender))
}

/// Sends a request upstream on a warm connection of the trust's pool, or a new one, and gives
/// the connection back to the pool once the answer's head is in. A warm connection the
/// upstream closed in the meantime is replaced once, for a request that can be sent again (no
/// body).
async fn send(
    upstreams: &UpstreamConnectors,
    provider: &str,
    request: Request<ProxyBody>,
    resend: Option<&(dyn Fn() -> Request<ProxyBody> + Sync)>,
) -> Result<Response<Returning>, BoxError> {
    let trust = upstreams.trust(provider);
    if let Some(err) = &trust.unusable {
        return Err(err.clone().into());
    }
    let target = request.uri().clone();
    let origin = target
        .authority()
        .map(|a| format!("{}://{a}", target.scheme_str().unwrap_or("http")))
        .unwrap_or_default();
    let via = upstreams.outbound.route(&target);
    let route = Route {
        via: via.as_ref().map(|v| v.uri.to_string()),
        origin,
    };
    // HTTP/1 names the target in origin form with `Host`; HTTP/2 keeps the absolute form
    // (its `:authority`).
    let shaped = |mut request: Request<ProxyBody>, h2: bool| -> Result<_, BoxError> {
        if h2 {
            return Ok(request);
        }
        let uri = request.uri().clone();
        if let Some(authority) = uri.authority() {
            request
                .headers_mut()
                .insert(header::HOST, HeaderValue::from_str(authority.as_str())?);
        }
        let path = uri
            .path_and_query()
            .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned());
        *request.uri_mut() = path.parse()?;
        Ok(request)
    };
    // A warm connection that turns out closed before anything was sent on it is replaced,
    // whatever the request.
    let mut sender = loop {
        match trust.pool.take(&route) {
            Some(mut warm) => {
                if warm.ready().await.is_ok() {
                    break Some(warm);
                }
            }
            None => break None,
        }
    };
    let reused = sender.is_some();
    if sender.is_none() {
        let mut fresh = connect(trust, via.as_ref(), &target).await?;
        fresh.ready().await?;
        sender = Some(fresh);
    }
    let Some(sender) = sender else {
        return Err("no upstream connection".into());
    };
    let h2 = sender.is_h2();
    match sender
        .send(shaped(request, h2)?, &trust.pool, route.clone())
        .await
    {
        Ok(response) => Ok(response),
        // The upstream closed a warm connection as the request went out (its keep-alive ran
        // out): the request may have reached it, so only one without a body is sent again.
        Err(err)
            if reused && (err.is_canceled() || err.is_closed() || err.is_incomplete_message()) =>
        {
            let Some(again) = resend else {
                return Err(err.into());
            };
            let mut fresh = connect(trust, via.as_ref(), &target).await?;
            fresh.ready().await?;
            let h2 = fresh.is_h2();
            fresh
                .send(shaped(again(), h2)?, &trust.pool, route)
                .await
                .map_err(Into::into)
        }
        Err(err) => Err(err.into()),
    }
}

/// How much of an upstream 401 body is read to tell "scope does not match" from an expired token.
const UNAUTHORIZED_PEEK: usize = 64 * 1024;
/// The proxy refreshes on a 401 at most once per grant in this long, and never a token this
/// young: a path that always answers 401 must not rotate the family on every request.
pub(crate) const REFRESH_THROTTLE: Duration = Duration::from_secs(30);
/// After an automatic refresh that failed (the token endpoint in trouble), the next may come
/// this much sooner: nothing was gained, and the tool is told to come back (Retry-After).
const FAILED_REFRESH_THROTTLE: Duration = Duration::from_secs(5);
/// A request body that sends nothing for this long is cut off.
const BODY_IDLE: Duration = Duration::from_secs(30);

/// TCP with `TCP_NODELAY` and a connect timeout.
fn http_connector() -> HttpConnector {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(Duration::from_secs(10)));
    http
}

/// TLS over `inner` where the upstream is https, with `tls`'s trust (the built-in roots when
/// no configuration could be built).
fn https<C>(tls: Option<rustls::ClientConfig>, inner: C) -> hyper_rustls::HttpsConnector<C> {
    let builder = match tls {
        Some(tls) => hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(tls),
        None => hyper_rustls::HttpsConnectorBuilder::new().with_webpki_roots(),
    };
    // ALPN offers h2 and http/1.1; the upstream picks.
    builder
        .https_or_http()
        .enable_all_versions()
        .wrap_connector(inner)
}

fn empty() -> ProxyBody {
    http_body_util::Empty::new()
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// A request body that fails when the client sends nothing for [`BODY_IDLE`]: a trickling
/// upload would otherwise hold a connection (and an upstream one) for the upstream's timeout.
struct IdleLimited<B> {
    inner: B,
    idle: Pin<Box<tokio::time::Sleep>>,
}

impl<B> IdleLimited<B> {
    fn new(inner: B) -> Self {
        Self {
            inner,
            idle: Box::pin(tokio::time::sleep(BODY_IDLE)),
        }
    }
}

impl<B> Body for IdleLimited<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                this.idle
                    .as_mut()
                    .reset(tokio::time::Instant::now() + BODY_IDLE);
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => match this.idle.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(format!(
                    "the request body sent nothing for {}s",
                    BODY_IDLE.as_secs()
                )
                .into()))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Whether the proxy may refresh `grant` now because of a 401 (and records that it does).
fn may_refresh(shared: &Shared, state: &State, grant: &GrantId) -> bool {
    let young = state
        .credentials
        .grants()
        .issued_at(grant)
        .ok()
        .flatten()
        .is_some_and(|issued| {
            let age = time::OffsetDateTime::now_utc() - issued;
            age < time::Duration::try_from(REFRESH_THROTTLE).unwrap_or(time::Duration::ZERO)
        });
    if young {
        return false;
    }
    let Ok(mut next) = shared.auto_refreshes.lock() else {
        return false;
    };
    if next.get(grant).is_some_and(|at| Instant::now() < *at) {
        return false;
    }
    next.insert(grant.clone(), Instant::now() + REFRESH_THROTTLE);
    true
}

/// An automatic refresh failed: allow the next one sooner.
fn refresh_failed(shared: &Shared, grant: &GrantId) {
    if let Ok(mut next) = shared.auto_refreshes.lock() {
        next.insert(grant.clone(), Instant::now() + FAILED_REFRESH_THROTTLE);
    }
}

/// A refresh the proxy started failed: say what the person or the tool can do about it.
fn refresh_refusal(err: GrantError) -> Refusal {
    match err {
        GrantError::RefreshFailing { reason, .. } => Refusal::TokenEndpointFailing {
            reason,
            retry_after: 30,
        },
        GrantError::RefreshUncertain { .. } => Refusal::Grant(err),
        other => Refusal::Grant(other),
    }
}

fn step_up(state: &State, connector: &Connector, profile: &dyn ProviderRules) -> Refusal {
    let missing = state
        .credentials
        .missing_scopes(connector)
        .unwrap_or_default();
    let provider = &connector.provider;
    // `action` stays the command to run; where the provider decides the scopes, the message
    // says what to do before it.
    if missing.is_empty() {
        return Refusal::ScopeMismatch {
            connector: connector.name.clone(),
            provider: provider.clone(),
            decided_by: profile
                .grants_by_consumer()
                .then(|| profile.scope_mismatch_fix(provider)),
        };
    }
    let missing: Vec<String> = missing.iter().map(|s| s.as_str().to_owned()).collect();
    Refusal::NeedsStepUp {
        connector: connector.name.clone(),
        provider: provider.clone(),
        decided_by: profile
            .grants_by_consumer()
            .then(|| profile.missing_scope_fix(provider, &missing.join(" "))),
        missing,
    }
}

/// Git's host takes an OAuth token as the Basic password of the provider's git user
/// (`x-token-auth` on Bitbucket Cloud), not as a Bearer token.
fn git_form(profile: &dyn ProviderRules, connector: &Connector, headers: &mut http::HeaderMap) {
    let Some(user) = profile.git_user(connector.auth) else {
        return;
    };
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| latch_core::secret::Secret::new(t.to_owned()));
    if let Some(token) = token {
        use base64::Engine as _;
        let basic =
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{}", token.expose()));
        if let Ok(mut value) = HeaderValue::from_str(&format!("Basic {basic}")) {
            value.set_sensitive(true);
            headers.insert(header::AUTHORIZATION, value);
        }
    }
}

/// Sends the request upstream and returns what to answer. The caller has checked everything.
pub(crate) async fn forward<B>(
    shared: &Shared,
    state: &State,
    routed: Routed<'_>,
    request: Request<B>,
    audit: &mut Audit,
) -> Result<Response<ProxyBody>, Refusal>
where
    B: Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<BoxError>,
{
    let connector = routed.connector;
    let wait = Some(state.config.caller_wait);
    let mut upstream_now: Upstream = state
        .credentials
        .upstream(connector, wait)
        .await
        .map_err(refresh_refusal)?;
    let base = routed.git_base.as_deref().unwrap_or(&upstream_now.base);
    let target = crate::path::upstream_url(base, &routed.rest, request.uri().query());
    let uri: Uri = target
        .parse()
        .map_err(|_| Refusal::BadPath(crate::path::BadPath::NotAbsolute))?;
    let (parts, body) = request.into_parts();
    let mut headers = parts.headers;
    // Links in the answer move to the proxy's URL for this connector, on the Host the client
    // used (the guard checked it is a loopback name with this proxy's port).
    // An MCP server's answers are relayed as they are (no links to rewrite), and its OAuth
    // challenge never reaches the client: it would start a sign-in of its own around Latch.
    let mcp = connector.spec.mcp;
    // Under intercept the tool used the real host names: nothing to move.
    let links = headers
        .get(header::HOST)
        .filter(|_| !mcp && !routed.intercepted)
        .and_then(|h| h.to_str().ok())
        .map(|host| LinkTarget {
            from: upstream_now.base.clone(),
            to: format!("http://{host}/{}", connector.name),
            prefix: format!("/{}", connector.name),
        });
    crate::links::readable_encodings(&mut headers);
    strip(&mut headers);
    for name in [header::HOST, header::AUTHORIZATION, header::COOKIE] {
        headers.remove(name);
    }
    headers.remove("x-latch-key");
    let overrides: Vec<HeaderName> = headers
        .keys()
        .filter(|name| crate::headers::is_override(name))
        .cloned()
        .collect();
    for name in overrides {
        headers.remove(name);
    }
    // A request without a body can be sent again after a refresh.
    let empty_body = body.is_end_stream()
        || headers
            .get(header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() == b"0");
    // OAuth 1.0a signs a form body's parameters: such a body is read first (bounded).
    let sign_form = !empty_body && upstream_now.credential.signs_form_bodies() && is_form(&headers);
    let replayable = empty_body;
    let profile = state.config.rules_of(&connector.provider);
    // A key limited to some of an MCP server's tools: the message is read first.
    let screen_tools = if parts.method == http::Method::POST && !empty_body {
        routed.mcp_tools.clone()
    } else {
        None
    };
    let mut lists_tools = false;
    let (form, mut body) = if let Some(allowed) = screen_tools {
        let limit = crate::mcp::MAX_MESSAGE;
        let read = http_body_util::Limited::new(IdleLimited::new(body), limit)
            .collect()
            .await
            .map_err(|_| Refusal::UpstreamUnreachable("the MCP message is over 1 MiB".into()))?
            .to_bytes();
        match crate::mcp::screen(&read, &allowed) {
            crate::mcp::Screened::Refused { answer, tool } => {
                tracing::info!(connector = %connector.name, tool, "tool not allowed for this key");
                let (head, text) = crate::mcp::refused(&answer);
                let (mut head, ()) = head.into_parts();
                harden(&mut head.headers);
                // Audited as the refusal it is; the client gets JSON-RPC's answer.
                return Ok(refused_tool(head, text, shared, audit));
            }
            crate::mcp::Screened::Pass { lists } => lists_tools = lists,
        }
        let full = http_body_util::Full::new(read)
            .map_err(|never| match never {})
            .boxed_unsync();
        (None, Some(full))
    } else if sign_form {
        let limit = latch_core::credential::oauth1::MAX_SIGNED_FORM;
        let read = http_body_util::Limited::new(IdleLimited::new(body), limit)
            .collect()
            .await
            .map_err(|_| Refusal::FormTooLarge { limit })?
            .to_bytes();
        let full = http_body_util::Full::new(read.clone())
            .map_err(|never| match never {})
            .boxed_unsync();
        (Some(read), Some(full))
    } else if replayable {
        (None, Some(empty()))
    } else {
        (None, Some(IdleLimited::new(body).boxed_unsync()))
    };
    for attempt in 0..2 {
        // The credential authorizes the request as it will be sent.
        let mut authorized = headers.clone();
        let mut target = uri.clone();
        upstream_now
            .credential
            .authorize(&parts.method, &mut target, &mut authorized, form.as_deref())
            .map_err(|_| Refusal::BadCredential)?;
        if routed.git_base.is_some() {
            git_form(profile, connector, &mut authorized);
        }
        let build = |body: ProxyBody| {
            let mut upstream = Request::new(body);
            *upstream.method_mut() = parts.method.clone();
            *upstream.uri_mut() = target.clone();
            *upstream.headers_mut() = authorized.clone();
            upstream
        };
        let upstream = build(body.take().unwrap_or_else(empty));
        let again = || build(empty());
        let resend: Option<&(dyn Fn() -> Request<ProxyBody> + Sync)> = replayable.then_some(&again);
        let response = match tokio::time::timeout(
            crate::UPSTREAM_TIMEOUT,
            send(&state.upstreams, &connector.provider, upstream, resend),
        )
        .await
        {
            Ok(Ok(response)) => response,
            Ok(Err(err)) if err.is::<latch_core::net::tls::TrustError>() => {
                let trouble = err.downcast::<latch_core::net::tls::TrustError>();
                let (why, fix) = trouble.map_or_else(
                    |err| (err.to_string(), None),
                    |trouble| (trouble.message, Some(trouble.fix)),
                );
                return Err(Refusal::ClientCertificate {
                    provider: connector.provider.clone(),
                    why,
                    fix,
                });
            }
            Ok(Err(err)) if latch_core::net::tls::is_client_certificate_refused(err.as_ref()) => {
                return Err(Refusal::ClientCertificate {
                    provider: connector.provider.clone(),
                    why: err.to_string(),
                    fix: None,
                })
            }
            Ok(Err(err)) if latch_core::net::tls::is_untrusted_certificate(err.as_ref()) => {
                return Err(Refusal::UpstreamUntrusted {
                    provider: connector.provider.clone(),
                })
            }
            Ok(Err(err)) => return Err(Refusal::UpstreamUnreachable(err.to_string())),
            Err(_) => return Err(Refusal::UpstreamTimeout),
        };
        let status = response.status();
        let refused = matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN);
        let maybe_scope = profile.may_refuse_scope_with(status.as_u16())
            || (refused && CredentialKind::of(connector).explains_refusals());
        if !maybe_scope {
            let mut response = pass_through(
                response,
                shared,
                audit,
                links.as_ref().map(|t| (t, routed.rest.as_str())),
            );
            if mcp {
                response.headers_mut().remove(header::WWW_AUTHENTICATE);
            }
            if lists_tools {
                if let Some(allowed) = routed.mcp_tools.clone() {
                    response = crate::mcp::keep_allowed(response, allowed).await?;
                }
            }
            return Ok(response);
        }
        let www_authenticate = response
            .headers()
            .get(header::WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let (head, upstream_body) = response.into_parts();
        let peek = http_body_util::Limited::new(upstream_body, UNAUTHORIZED_PEEK)
            .collect()
            .await
            .map(|c| c.to_bytes())
            .unwrap_or_default();
        let explained = state.credentials.explain_refusal(
            connector,
            &upstream_now.credential,
            status.as_u16(),
            www_authenticate.as_deref(),
            &peek,
        );
        let retry = status == StatusCode::UNAUTHORIZED && replayable && attempt == 0;
        let static_retry = upstream_now.grant.is_none() && retry;
        if let Some(why) = &explained {
            if !(why.retry_with_a_newer_secret() && static_retry) {
                return Err(Refusal::Credential(why.clone()));
            }
        }
        if profile.is_scope_refusal(status.as_u16(), &peek) {
            return Err(step_up(state, connector, profile));
        }
        let replay = || {
            let mut response = Response::from_parts(
                head.clone(),
                http_body_util::Full::new(peek.clone())
                    .map_err(|never| match never {})
                    .boxed_unsync(),
            );
            strip(response.headers_mut());
            harden(response.headers_mut());
            if mcp {
                response.headers_mut().remove(header::WWW_AUTHENTICATE);
            }
            response
        };
        if static_retry {
            // A static credential replaced since it was read: try the new one once.
            if let Ok(Some(now)) = state
                .credentials
                .after_rejection(connector, &upstream_now, wait)
                .await
            {
                upstream_now.credential = now;
                body = Some(empty());
                continue;
            }
        }
        if let Some(why) = explained {
            // Not the tool's fault, and no refresh helps: say what Latch can check.
            return Err(Refusal::Credential(why));
        }
        let Some(grant) = upstream_now.grant.clone().filter(|_| retry) else {
            return Ok(replay());
        };
        if !may_refresh(shared, state, &grant) {
            // The upstream's own answer, unchanged, and why Latch did not refresh.
            let mut response = replay();
            response.headers_mut().insert(
                HeaderName::from_static("x-latch-refresh"),
                HeaderValue::from_static("throttled"),
            );
            return Ok(response);
        }
        match state
            .credentials
            .after_rejection(connector, &upstream_now, wait)
            .await
        {
            Ok(Some(fresh)) => upstream_now.credential = fresh,
            Ok(None) => return Ok(replay()),
            Err(err) => {
                refresh_failed(shared, &grant);
                return Err(refresh_refusal(err));
            }
        }
        audit.refreshed = true;
        body = Some(empty());
    }
    // Only reached if the loop ran out, which its `attempt == 0` guard prevents.
    Err(Refusal::Grant(GrantError::Lock(
        "the upstream refused the token twice".to_owned(),
    )))
}

/// The JSON-RPC answer to a tool call the key may not make, audited as the refusal it is.
fn refused_tool(
    head: http::response::Parts,
    text: Bytes,
    shared: &Shared,
    audit: &mut Audit,
) -> Response<ProxyBody> {
    let body = Counted::new(
        http_body_util::Full::new(text).map_err(|never| -> BoxError { match never {} }),
        403,
        audit.take(),
        shared.audit.clone(),
    )
    .boxed_unsync();
    Response::from_parts(head, body)
}

/// Whether a request's body is `application/x-www-form-urlencoded`.
fn is_form(headers: &http::HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

fn pass_through(
    response: Response<Returning>,
    shared: &Shared,
    audit: &mut Audit,
    links: Option<(&LinkTarget, &str)>,
) -> Response<ProxyBody> {
    let (mut head, upstream_body) = response.into_parts();
    strip(&mut head.headers);
    harden(&mut head.headers);
    let status = head.status.as_u16();
    let rewrite = links.and_then(|(target, path)| {
        crate::links::rewrite_headers(&mut head.headers, target);
        crate::links::body_rewrite(&head.headers, path).map(|decoder| (target.clone(), decoder))
    });
    let body = match rewrite {
        Some((target, decoder)) => {
            crate::links::rewritten_headers(&mut head.headers);
            let rewritten = crate::links::Rewritten::new(upstream_body, decoder, target);
            Counted::new(rewritten, status, audit.take(), shared.audit.clone()).boxed_unsync()
        }
        None => {
            Counted::new(upstream_body, status, audit.take(), shared.audit.clone()).boxed_unsync()
        }
    };
    Response::from_parts(head, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A body that sends one chunk, then nothing ever again.
    struct Trickle(bool);

    impl Body for Trickle {
        type Data = Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
            if self.0 {
                Poll::Pending
            } else {
                self.0 = true;
                Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(b"x")))))
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_that_stops_sending_is_cut_off() {
        let mut body = IdleLimited::new(Trickle(false));
        let first = body.frame().await.unwrap().unwrap();
        assert_eq!(first.into_data().unwrap(), Bytes::from_static(b"x"));
        // Paused time: the runtime jumps to the idle deadline instead of waiting for it.
        let second = body.frame().await.unwrap();
        assert!(
            second.is_err(),
            "cut off after {}s idle",
            BODY_IDLE.as_secs()
        );
    }

    /// An upstream that answers the first request on its first connection, then reads the
    /// second and closes without answering (its keep-alive ran out as the request came);
    /// later connections answer everything. Counts connections and requests it saw.
    async fn closing_upstream() -> (
        u16,
        Arc<std::sync::atomic::AtomicUsize>,
        Arc<std::sync::atomic::AtomicUsize>,
    ) {
        use std::sync::atomic::Ordering::SeqCst;
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepts = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let requests = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (a, r) = (Arc::clone(&accepts), Arc::clone(&requests));
        tokio::spawn(async move {
            loop {
                let Ok((mut socket, _)) = listener.accept().await else {
                    return;
                };
                let first = a.fetch_add(1, SeqCst) == 0;
                let r = Arc::clone(&r);
                tokio::spawn(async move {
                    let mut seen = 0;
                    let mut buffer = Vec::new();
                    let mut chunk = [0_u8; 4096];
                    loop {
                        let Ok(n) = socket.read(&mut chunk).await else {
                            return;
                        };
                        if n == 0 {
                            return;
                        }
                        buffer.extend_from_slice(&chunk[..n]);
                        while let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                            buffer.drain(..end + 4);
                            seen += 1;
                            r.fetch_add(1, SeqCst);
                            if first && seen == 2 {
                                return; // closes without an answer
                            }
                            let _ = socket
                                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                                .await;
                        }
                    }
                });
            }
        });
        (port, accepts, requests)
    }

    fn request(port: u16, method: http::Method, body: &'static [u8]) -> Request<ProxyBody> {
        let mut request = Request::new(
            http_body_util::Full::new(Bytes::from_static(body))
                .map_err(|never| match never {})
                .boxed_unsync(),
        );
        *request.method_mut() = method;
        *request.uri_mut() = format!("http://127.0.0.1:{port}/rest/api/2/myself")
            .parse()
            .unwrap();
        request
    }

    fn connectors() -> UpstreamConnectors {
        UpstreamConnectors {
            default: Trust::new(
                latch_core::net::tls::trusting(None),
                Duration::from_secs(90),
            ),
            own: std::collections::HashMap::new(),
            outbound: latch_core::net::outbound::OutboundProxy::from_env(),
        }
    }

    /// A warm connection the upstream closed as it was reused: a request without a body is
    /// sent again on a new connection; one with a body is not (it may have been acted on).
    #[tokio::test]
    async fn a_stale_warm_connection_is_retried_only_without_a_body() {
        use std::sync::atomic::Ordering::SeqCst;
        let upstreams = connectors();

        let (port, accepts, _) = closing_upstream().await;
        let answer = send(&upstreams, "p", request(port, http::Method::GET, b""), None)
            .await
            .unwrap();
        answer.into_body().collect().await.unwrap();
        let again = || request(port, http::Method::GET, b"");
        let resend: Option<&(dyn Fn() -> Request<ProxyBody> + Sync)> = Some(&again);
        let answer = send(&upstreams, "p", again(), resend).await.unwrap();
        assert_eq!(answer.status(), StatusCode::OK);
        assert_eq!(accepts.load(SeqCst), 2, "sent again on a new connection");

        let (port, accepts, requests) = closing_upstream().await;
        let answer = send(&upstreams, "p", request(port, http::Method::GET, b""), None)
            .await
            .unwrap();
        answer.into_body().collect().await.unwrap();
        let posted = send(
            &upstreams,
            "p",
            request(port, http::Method::POST, b"{\"fields\":{}}"),
            None,
        )
        .await;
        assert!(posted.is_err(), "a request with a body is not sent twice");
        assert_eq!(accepts.load(SeqCst), 1);
        assert_eq!(requests.load(SeqCst), 2);
    }

    /// Two requests one after another share one upstream connection through the pool (no
    /// tool connection holds it), and the pool keeps it per trust: another provider's trust
    /// opens its own.
    #[tokio::test]
    async fn the_pool_reuses_a_connection_within_a_trust_only() {
        use std::sync::atomic::Ordering::SeqCst;
        let (port, accepts, _) = closing_upstream().await;
        let mut upstreams = connectors();
        upstreams.own.insert(
            "corp".to_owned(),
            Trust::new(
                latch_core::net::tls::trusting(None),
                Duration::from_secs(90),
            ),
        );
        // The first connection closes on its second request: use it once per trust.
        for provider in ["p", "corp"] {
            let answer = send(
                &upstreams,
                provider,
                request(port, http::Method::GET, b""),
                None,
            )
            .await
            .unwrap();
            answer.into_body().collect().await.unwrap();
        }
        assert_eq!(accepts.load(SeqCst), 2, "each trust has its own connection");
        for _ in 0..3 {
            let answer = send(
                &upstreams,
                "corp",
                request(port, http::Method::GET, b""),
                None,
            )
            .await
            .unwrap();
            answer.into_body().collect().await.unwrap();
        }
        assert_eq!(accepts.load(SeqCst), 2, "the warm connection is reused");
    }
}

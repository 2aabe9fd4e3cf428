//! `latch exec --intercept`: a forward proxy for one child. The child reaches it through
//! `HTTPS_PROXY` with a per-exec password; a CONNECT to a connector's host is answered with TLS
//! from the exec's ephemeral CA, and each request inside goes through the same pipeline as
//! `latch serve`'s (the exec's key policy, canonical path, audit, a fresh credential). Every
//! other host is tunnelled byte for byte, or refused.

pub mod ca;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode, Uri};
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use latch_core::app::intercept::InterceptMap;
use latch_core::local_key::LocalKey;
use latch_core::secret::Secret;

use crate::key::VerifiedKey;
use crate::{handler, ProxyBody, Shared, StartError, HEADER_TIMEOUT};

pub use ca::{CaError, EphemeralCa};

/// What one intercepting exec is made of.
pub struct InterceptSetup {
    /// The chosen connectors' hosts.
    pub map: InterceptMap,
    /// The exec's implicit key (never presented: the child does not hold one).
    pub key: LocalKey,
    /// The password in the child's `HTTPS_PROXY`.
    pub password: Secret,
    /// Refuse hosts outside the map instead of tunnelling them.
    pub deny_other_hosts: bool,
}

/// Why intercepting could not start.
#[derive(Debug, thiserror::Error)]
pub enum InterceptError {
    /// The listener.
    #[error("{0}")]
    Start(#[from] StartError),
    /// The CA.
    #[error("{0}")]
    Ca(#[from] CaError),
}

/// A running intercepting proxy: it stops when dropped.
pub struct Intercepting {
    /// Where the child's `HTTPS_PROXY` points.
    pub addr: SocketAddr,
    /// The ephemeral CA's certificate (PEM), for the child's bundle.
    pub ca_pem: String,
    task: tokio::task::JoinHandle<()>,
}

/// Dropping it stops accepting; open tunnels end with the runtime.
impl Drop for Intercepting {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Context {
    shared: Arc<Shared>,
    map: InterceptMap,
    key: VerifiedKey,
    password: Secret,
    deny_other_hosts: bool,
    ca: EphemeralCa,
    outbound: latch_core::net::outbound::OutboundProxy,
    /// Plain HTTP to other hosts, when no outbound proxy takes it.
    direct: hyper_util::client::legacy::Client<
        hyper_util::client::legacy::connect::HttpConnector,
        Incoming,
    >,
}

impl Context {
    /// An audit row for what left for a host outside the map (a tunnel, plain HTTP) or was
    /// refused: the exec's key, no connector, the host (a tunnel's bytes are not Latch's to see).
    fn audited(
        &self,
        method: &str,
        target: &str,
        response: Response<ProxyBody>,
    ) -> Response<ProxyBody> {
        let mut audit = crate::audit::Audit::new(method, target);
        audit.key_name = Some(self.key.name().to_owned());
        self.shared
            .audit
            .record(&audit, response.status().as_u16(), 0);
        response
    }
}

/// Starts the intercepting listener on a free loopback port, next to the exec's proxy.
pub(crate) async fn start(
    shared: Arc<Shared>,
    setup: InterceptSetup,
) -> Result<Intercepting, InterceptError> {
    let (listener, addr) = crate::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let ca = EphemeralCa::new(&setup.map.host_names())?;
    let ca_pem = ca.pem();
    let context = Arc::new(Context {
        shared,
        map: setup.map,
        key: VerifiedKey::implicit(setup.key),
        password: setup.password,
        deny_other_hosts: setup.deny_other_hosts,
        ca,
        outbound: latch_core::net::outbound::OutboundProxy::from_env(),
        direct: hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build_http(),
    });
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, peer)) = listener.accept().await else {
                tokio::time::sleep(crate::ACCEPT_BACKOFF).await;
                continue;
            };
            if !peer.ip().is_loopback() {
                continue;
            }
            let _ = stream.set_nodelay(true);
            let context = Arc::clone(&context);
            tokio::spawn(async move {
                let service = service_fn(move |request| {
                    let context = Arc::clone(&context);
                    async move { Ok::<_, Infallible>(front(context, request).await) }
                });
                let _ = http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(HEADER_TIMEOUT)
                    .serve_connection(TokioIo::new(stream), service)
                    .with_upgrades()
                    .await;
            });
        }
    });
    Ok(Intercepting { addr, ca_pem, task })
}

fn plain(status: StatusCode, code: &str, message: &str) -> Response<ProxyBody> {
    let body = serde_json::json!({ "error": code, "message": message }).to_string();
    let mut response = Response::new(
        http_body_util::Full::new(Bytes::from(body))
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}

/// `Proxy-Authorization: Basic` with the exec's password (any user name), compared in constant
/// time.
fn authorized(context: &Context, request: &Request<Incoming>) -> bool {
    use base64::Engine as _;
    use subtle::ConstantTimeEq as _;
    let Some(value) = request
        .headers()
        .get(header::PROXY_AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let Some((scheme, encoded)) = value.split_once(' ') else {
        return false;
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return false;
    }
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
        return false;
    };
    let decoded = Secret::new(String::from_utf8_lossy(&decoded).into_owned());
    let Some((_, password)) = decoded.expose().split_once(':') else {
        return false;
    };
    let want = context.password.expose().as_bytes();
    // Percent-encoded by some clients when it is in a URL: the password is URL-safe anyway.
    bool::from(password.as_bytes().ct_eq(want))
}

/// The `host` and `port` of an authority, lowercase; `default` when there is no port.
fn split_authority(authority: &http::uri::Authority, default: u16) -> (String, u16) {
    (
        authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase(),
        authority.port_u16().unwrap_or(default),
    )
}

/// The first request on the child's connection: CONNECT, or an absolute-form HTTP request.
async fn front(context: Arc<Context>, request: Request<Incoming>) -> Response<ProxyBody> {
    if !authorized(&context, &request) {
        let mut response = plain(
            StatusCode::PROXY_AUTHENTICATION_REQUIRED,
            "proxy_auth_required",
            "this proxy serves one `latch exec --intercept` child: use the HTTPS_PROXY it was \
             given",
        );
        response.headers_mut().insert(
            header::PROXY_AUTHENTICATE,
            http::HeaderValue::from_static("Basic realm=\"latch exec\""),
        );
        return response;
    }
    if request.method() == Method::CONNECT {
        let Some(authority) = request.uri().authority().cloned() else {
            return plain(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "CONNECT needs host:port",
            );
        };
        let (host, port) = split_authority(&authority, 443);
        if context.map.covers(&host, port) {
            tokio::spawn(async move {
                if let Ok(upgraded) = hyper::upgrade::on(request).await {
                    terminate(context, TokioIo::new(upgraded), host, port).await;
                }
            });
            return Response::new(empty());
        }
        if context.deny_other_hosts {
            return context.audited(
                "CONNECT",
                &format!("{host}:{port}"),
                other_host_refused(&host),
            );
        }
        let target = format!("{host}:{port}");
        let response = tunnel(Arc::clone(&context), request, host, port).await;
        return context.audited("CONNECT", &target, response);
    }
    let Some(authority) = request.uri().authority().cloned() else {
        return plain(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "this is `latch exec --intercept`'s forward proxy: send absolute URLs or CONNECT",
        );
    };
    let default = if request.uri().scheme_str() == Some("https") {
        443
    } else {
        80
    };
    let (host, port) = split_authority(&authority, default);
    if context.map.covers(&host, port) {
        return handler::handle_intercepted(
            &context.shared,
            &context.key,
            &context.map,
            &host,
            port,
            true,
            request,
        )
        .await;
    }
    // The URL without its query, as every audited path.
    let url = format!("http://{authority}{}", request.uri().path());
    let method = request.method().to_string();
    if context.deny_other_hosts {
        return context.audited(&method, &url, other_host_refused(&host));
    }
    let response = forward_plain(&context, request).await;
    context.audited(&method, &url, response)
}

fn empty() -> ProxyBody {
    http_body_util::Empty::new()
        .map_err(|never| match never {})
        .boxed_unsync()
}

fn other_host_refused(host: &str) -> Response<ProxyBody> {
    plain(
        StatusCode::FORBIDDEN,
        "host_not_allowed",
        &format!(
            "{host} is not a host of the connectors this command may reach, and the exec runs \
             with --deny-other-hosts"
        ),
    )
}

/// TLS with the CA's leaf for `host`, then the pipeline for every request inside.
async fn terminate<S>(context: Arc<Context>, stream: S, host: String, port: u16)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let Ok(server) = context.ca.server(&host) else {
        return;
    };
    let acceptor = tokio_rustls::TlsAcceptor::from(server);
    let Ok(Ok(tls)) = tokio::time::timeout(HEADER_TIMEOUT, acceptor.accept(stream)).await else {
        return;
    };
    // The name the client asked for in its TLS hello must be the tunnel's.
    let server_name_ok = tls
        .get_ref()
        .1
        .server_name()
        .is_some_and(|name| name.eq_ignore_ascii_case(&host));
    let service = service_fn(move |request: Request<Incoming>| {
        let context = Arc::clone(&context);
        let host = host.clone();
        async move {
            Ok::<_, Infallible>(
                handler::handle_intercepted(
                    &context.shared,
                    &context.key,
                    &context.map,
                    &host,
                    port,
                    server_name_ok,
                    request,
                )
                .await,
            )
        }
    });
    let _ = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .serve_connection(TokioIo::new(tls), service)
        .await;
}

/// A host outside the map: a byte-for-byte tunnel, through Latch's own outbound proxy when the
/// environment names one. Latch never sees inside it.
async fn tunnel(
    context: Arc<Context>,
    request: Request<Incoming>,
    host: String,
    port: u16,
) -> Response<ProxyBody> {
    // `https`: a tunnel's route is HTTPS_PROXY's, as for any TLS the child would open itself.
    let target: Uri = match format!("https://{host}:{port}").parse() {
        Ok(uri) => uri,
        Err(_) => return plain(StatusCode::BAD_REQUEST, "bad_request", "not a host:port"),
    };
    let mut direct = hyper_util::client::legacy::connect::HttpConnector::new();
    direct.set_nodelay(true);
    direct.enforce_http(false);
    let opening = async {
        match context.outbound.route(&target) {
            Some(route) => {
                let mut tunnel =
                    hyper_util::client::legacy::connect::proxy::Tunnel::new(route.uri, direct);
                if let Some(auth) = route.authorization {
                    tunnel = tunnel.with_auth(auth);
                }
                tower_service::Service::call(&mut tunnel, target.clone())
                    .await
                    .map(TokioIo::into_inner)
                    .map_err(|e| e.to_string())
            }
            None => tower_service::Service::call(&mut direct, target.clone())
                .await
                .map(TokioIo::into_inner)
                .map_err(|e| e.to_string()),
        }
    };
    let mut upstream = match tokio::time::timeout(std::time::Duration::from_secs(10), opening).await
    {
        Ok(Ok(stream)) => stream,
        Ok(Err(why)) => {
            return plain(
                StatusCode::BAD_GATEWAY,
                "upstream_unreachable",
                &format!("cannot reach {host}:{port}: {why}"),
            )
        }
        Err(_) => {
            return plain(
                StatusCode::GATEWAY_TIMEOUT,
                "upstream_timeout",
                &format!("{host}:{port} did not answer in 10 s"),
            )
        }
    };
    tokio::spawn(async move {
        if let Ok(upgraded) = hyper::upgrade::on(request).await {
            let mut child = TokioIo::new(upgraded);
            let _ = tokio::io::copy_bidirectional(&mut child, &mut upstream).await;
        }
    });
    Response::new(empty())
}

/// Plain HTTP to a host outside the map, passed on as it is (minus the proxy's own headers):
/// directly, or to Latch's own outbound proxy (`HTTP_PROXY`) in absolute form with its
/// credentials.
async fn forward_plain(context: &Context, request: Request<Incoming>) -> Response<ProxyBody> {
    let (mut parts, body) = request.into_parts();
    parts.headers.remove(header::PROXY_AUTHORIZATION);
    parts.headers.remove("proxy-connection");
    let answer = match context.outbound.route(&parts.uri) {
        Some(route) => {
            if let Some(auth) = route.authorization {
                parts.headers.insert(header::PROXY_AUTHORIZATION, auth);
            }
            via_proxy(&route.uri, Request::from_parts(parts, body)).await
        }
        None => context
            .direct
            .request(Request::from_parts(parts, body))
            .await
            .map_err(|e| e.to_string()),
    };
    match answer {
        Ok(response) => response.map(|b| b.map_err(Into::into).boxed_unsync()),
        Err(err) => plain(
            StatusCode::BAD_GATEWAY,
            "upstream_unreachable",
            &format!("cannot reach the host: {err}"),
        ),
    }
}

/// One request to an HTTP proxy, its absolute-form target as it came.
async fn via_proxy(proxy: &Uri, request: Request<Incoming>) -> Result<Response<Incoming>, String> {
    let host = proxy.host().ok_or("the outbound proxy has no host")?;
    let port = proxy.port_u16().unwrap_or(80);
    let stream = tokio::net::TcpStream::connect((host.trim_matches(['[', ']']), port))
        .await
        .map_err(|e| format!("cannot reach the outbound proxy {host}:{port}: {e}"))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    sender
        .send_request(request)
        .await
        .map_err(|e| e.to_string())
}

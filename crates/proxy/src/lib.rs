//! The localhost proxy (DESIGN.md, "The localhost proxy"): local tools call
//! `http://127.0.0.1:PORT/{connector}/{rest}` with a local key; App checks the key's policy,
//! strips the key, injects a fresh upstream credential and streams both bodies through.
//!
//! A request goes through one pipeline (`handler`): the guard (Host, Origin, preflight,
//! Sec-Fetch-Site), the key (`VerifiedKey`), the canonical path and its route, the key's policy,
//! then the upstream (credential, 401 refresh-once). Every refusal is one `Refusal`.
//!
//! Bounded: a connection cap below the file-descriptor limit (raised to the hard limit at start),
//! backoff on accept errors, header and body idle timeouts, capped audit paths and per-minute
//! counts for refusals before a key is known. A new configuration is swapped in behind the
//! listener (`Running::reload`): no connection is refused while it changes, and requests in
//! flight finish on the configuration they started with.

mod audit;
mod guard;
mod handler;
mod headers;
pub mod intercept;
mod key;
mod links;
mod mcp;
mod path;
mod policy;
mod pool;
mod refusal;
mod upstream;

#[cfg(test)]
mod test_support;

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use latch_core::app::App;
use latch_core::config::Config;
use latch_core::credential::Credentials;
use latch_core::grant::GrantId;
use latch_core::local_key::KeyVerifier;
use tokio::net::TcpListener;

pub use audit::AuditSink;

pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub(crate) type ProxyBody = http_body_util::combinators::UnsyncBoxBody<Bytes, BoxError>;

/// The default loopback address the proxy listens on (`[proxy] listen` in latch.toml).
pub const DEFAULT_LISTEN: &str = latch_core::config::DEFAULT_PROXY_LISTEN;

/// How long a client may take to send its request head (an idle connection is closed then).
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the upstream may take to answer with a response head.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(120);
/// How long to wait before accepting again after the OS refused (out of descriptors).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Why the proxy could not start.
#[derive(Debug)]
pub enum StartError {
    /// The address is not loopback.
    NotLoopback(SocketAddr),
    /// Binding failed (port busy, …).
    Bind(SocketAddr, std::io::Error),
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotLoopback(addr) => write!(
                f,
                "the proxy only listens on loopback, not {addr}\n  fix: use 127.0.0.1:PORT"
            ),
            Self::Bind(addr, err) => write!(
                f,
                "cannot listen on {addr}: {err}\n  fix: stop the other program on that port, or \
                 set another `[proxy] listen` in latch.toml (port 0 picks a free one)"
            ),
        }
    }
}

impl std::error::Error for StartError {}

/// One configuration's view: swapped whole on reload.
pub(crate) struct State {
    pub(crate) config: Arc<Config>,
    pub(crate) credentials: Arc<Credentials>,
    pub(crate) keys: Arc<KeyVerifier>,
    /// Upstream connectors by trust (a provider's `ca_file`).
    pub(crate) upstreams: upstream::UpstreamConnectors,
}

impl State {
    fn of(latch: &App) -> Self {
        let credentials = latch.credentials();
        credentials.grants().watch_in_background();
        let config = Arc::clone(credentials.grants().config());
        Self {
            upstreams: upstream::UpstreamConnectors::new(&config, credentials.grants().clients()),
            config,
            keys: Arc::new(credentials.grants().key_verifier(&latch.home().database())),
            credentials,
        }
    }
}

/// What outlives a reload: the port, the upstream connections, the audit writer, the pause
/// switch and the refresh throttle.
pub(crate) struct Shared {
    pub(crate) port: u16,
    pub(crate) current: RwLock<Arc<State>>,
    pub(crate) audit: AuditSink,
    pub(crate) paused: Arc<AtomicBool>,
    /// When the proxy may next refresh a grant because of a 401 (the throttle).
    pub(crate) auto_refreshes: Mutex<HashMap<GrantId, Instant>>,
    /// Ephemeral keys (`latch exec`) survive reloads.
    ephemeral: Mutex<Vec<(latch_core::secret::Secret, latch_core::local_key::LocalKey)>>,
}

impl Shared {
    /// What a proxy for `latch` on `port` keeps across reloads.
    pub(crate) fn new(latch: &App, port: u16, paused: Arc<AtomicBool>) -> Self {
        Self {
            port,
            current: RwLock::new(Arc::new(State::of(latch))),
            audit: AuditSink::start(
                &latch.home().database(),
                latch.store_handle(),
                latch.config().audit_keep_days,
            ),
            paused,
            auto_refreshes: Mutex::new(HashMap::new()),
            ephemeral: Mutex::new(Vec::new()),
        }
    }

    pub(crate) fn state(&self) -> Arc<State> {
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }
}

/// A running proxy.
pub struct Running {
    /// Where it listens.
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    /// Refuses new requests with 503 (`proxy_paused`) until resumed.
    pub fn set_paused(&self, paused: bool) {
        self.shared.paused.store(paused, Ordering::Relaxed);
    }

    /// Adds a key that only this process knows (exec's per-child key).
    pub fn add_ephemeral_key(
        &self,
        key: &latch_core::secret::Secret,
        policy: latch_core::local_key::LocalKey,
    ) {
        self.shared.state().keys.add_ephemeral(key, policy.clone());
        self.shared
            .ephemeral
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((key.clone(), policy));
    }

    /// Starts `latch exec --intercept`'s forward proxy for one child, on the same pipeline.
    pub async fn intercept(
        &self,
        setup: intercept::InterceptSetup,
    ) -> Result<intercept::Intercepting, intercept::InterceptError> {
        intercept::start(Arc::clone(&self.shared), setup).await
    }

    /// The credentials the proxy draws on now (shared with the refresh scheduler).
    pub fn credentials(&self) -> Arc<Credentials> {
        Arc::clone(&self.shared.state().credentials)
    }

    /// Serves a new configuration from now on, on the same listener: no connection is refused,
    /// and requests in flight finish on the one they started with.
    pub fn reload(&self, latch: &App) {
        let state = State::of(latch);
        for (key, policy) in self
            .shared
            .ephemeral
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            state.keys.add_ephemeral(key, policy.clone());
        }
        self.shared
            .audit
            .set_keep_days(latch.config().audit_keep_days);
        *self
            .shared
            .current
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(state);
    }

    /// Stops accepting, lets in-flight requests finish (bounded), flushes the audit log.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let _ = (&mut self.task).await;
        self.shared.audit.flush().await;
    }
}

/// Raises the soft limit on open files to the hard limit, and returns the soft limit now: each
/// proxied request holds two descriptors (the tool's connection and the upstream's).
fn descriptor_budget() -> u64 {
    #[cfg(unix)]
    {
        if let Ok((soft, hard)) = rlimit::Resource::NOFILE.get() {
            if soft < hard {
                if let Ok(raised) = rlimit::increase_nofile_limit(hard) {
                    return raised;
                }
            }
            return soft;
        }
    }
    1024
}

/// How many connections to serve at once: half the descriptors, less a reserve for the
/// database, the keychain and the audit writer.
fn connection_cap(descriptors: u64) -> usize {
    let usable = descriptors.saturating_sub(48) / 2;
    usize::try_from(usable.clamp(16, 8192)).unwrap_or(16)
}

/// Starts the proxy on `listen` (loopback only; port 0 picks a free port).
pub async fn start(latch: &App, listen: SocketAddr) -> Result<Running, StartError> {
    start_paused_by(latch, listen, Arc::new(AtomicBool::new(false))).await
}

/// Starts the proxy with a pause switch the caller keeps (it outlives a move to a new address).
pub async fn start_paused_by(
    latch: &App,
    listen: SocketAddr,
    paused: Arc<AtomicBool>,
) -> Result<Running, StartError> {
    if !listen.ip().is_loopback() {
        return Err(StartError::NotLoopback(listen));
    }
    let (listener, addr) = bind(listen).await?;
    let cap = connection_cap(descriptor_budget());
    let shared = Arc::new(Shared::new(latch, addr.port(), paused));
    let (tx, rx) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(accept_loop(listener, Arc::clone(&shared), cap, rx));
    Ok(Running {
        addr,
        shared,
        shutdown: Some(tx),
        task,
    })
}

/// A listener on `listen`, and the address it got (port 0 picks a free one).
async fn bind(listen: SocketAddr) -> Result<(TcpListener, SocketAddr), StartError> {
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|e| StartError::Bind(listen, e))?;
    let addr = listener
        .local_addr()
        .map_err(|e| StartError::Bind(listen, e))?;
    Ok((listener, addr))
}

async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    cap: usize,
    mut shutdown: tokio::sync::oneshot::Receiver<()>,
) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let permits = Arc::new(tokio::sync::Semaphore::new(cap));
    loop {
        // At the cap, stop accepting: further connections wait in the kernel's backlog until a
        // served one ends (idle ones end after the header timeout).
        let permit = tokio::select! {
            permit = Arc::clone(&permits).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            _ = &mut shutdown => break,
        };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = &mut shutdown => break,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(_) => {
                // Out of descriptors (or memory): spinning on accept would burn a core and
                // starve the connections being served. Back off instead.
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        // Bound to loopback, so this holds; checked anyway in case of odd routing.
        if !peer.ip().is_loopback() {
            continue;
        }
        let _ = stream.set_nodelay(true);
        let for_service = Arc::clone(&shared);
        let service = service_fn(move |request| {
            let shared = Arc::clone(&for_service);
            async move { Ok::<_, Infallible>(handler::handle(&shared, request).await) }
        });
        let connection = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_TIMEOUT)
            .serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            let _ = connection.await;
            drop(permit);
        });
    }
    drop(listener);
    // In-flight requests get a bounded grace period.
    let _ = tokio::time::timeout(Duration::from_secs(10), graceful.shutdown()).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_leaves_descriptors_for_everything_else() {
        assert_eq!(connection_cap(200), 76);
        assert_eq!(connection_cap(10), 16);
        assert_eq!(connection_cap(1 << 20), 8192);
    }
}

/// The pipeline in-process: a real listener and a real upstream in this test process, requests
/// from `reqwest`, a home over an in-memory keychain.
#[cfg(test)]
mod pipeline_tests {

    use std::sync::Arc;

    use latch_core::app::{AddConnector, App};
    use latch_core::config::home::Home;
    use latch_core::secret::Secret;

    use crate::test_support::Memory;

    /// An upstream that echoes what reached it: method, path, and the Authorization header.
    async fn echo_upstream() -> std::net::SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(
                        |req: http::Request<hyper::body::Incoming>| async move {
                            let body = serde_json::json!({
                                "method": req.method().as_str(),
                                "path": req.uri().path(),
                                "auth": req.headers().get("authorization").and_then(|v| v.to_str().ok()),
                                "override": req.headers().get("x-http-method-override").is_some(),
                            });
                            Ok::<_, std::convert::Infallible>(http::Response::new(
                                http_body_util::Full::new(bytes::Bytes::from(body.to_string())),
                            ))
                        },
                    );
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        addr
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_pipeline_refuses_and_forwards_in_process() {
        let upstream = echo_upstream().await;
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("latch.toml"),
            format!("[providers.opsgenie]\napi_base = \"http://{upstream}\"\n"),
        )
        .unwrap();
        let latch = App::open(Home::at(dir.path()), Arc::new(Memory::default())).unwrap();
        latch
            .connectors()
            .add(AddConnector {
                name: "opsgenie".into(),
                ..AddConnector::default()
            })
            .unwrap();
        latch
            .connectors()
            .set_credential("opsgenie", Secret::new("genie-77".into()), None)
            .await
            .unwrap();
        let policy = latch_core::local_key::KeyPolicy {
            connectors: vec!["opsgenie".to_owned()],
            read_only: true,
            paths: Some(vec!["v2/alerts/*".to_owned()]),
            mcp_tools: None,
        };
        let (key, _) = latch.keys().create("t", policy, None).unwrap();
        let proxy = super::start(&latch, "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let client = reqwest::Client::new();
        let url = |path: &str| format!("http://{}{path}", proxy.addr);
        let get = |path: String, headers: Vec<(&'static str, String)>| {
            let mut request = client.get(path);
            for (name, value) in headers {
                request = request.header(name, value);
            }
            request.send()
        };
        let bearer = ("authorization", format!("Bearer {}", key.expose()));

        let ok = get(
            url("/opsgenie/v2/alerts/1"),
            vec![bearer.clone(), ("x-http-method-override", "DELETE".into())],
        )
        .await
        .unwrap();
        assert_eq!(ok.status(), 200);
        assert_eq!(ok.headers()["x-content-type-options"], "nosniff");
        assert_eq!(ok.headers()["content-security-policy"], "sandbox");
        let echoed: serde_json::Value = ok.json().await.unwrap();
        assert_eq!(echoed["path"], "/v2/alerts/1");
        assert_eq!(
            echoed["auth"], "GenieKey genie-77",
            "the key is swapped for the credential"
        );
        assert_eq!(echoed["method"], "GET");
        assert_eq!(echoed["override"], false, "method overrides are stripped");

        for (path, headers, status, code) in [
            ("/opsgenie/v2/alerts/1", vec![], 401, "missing_key"),
            (
                "/opsgenie/v2/alerts/1",
                vec![("authorization", "Bearer lk_nope".to_owned())],
                401,
                "bad_key",
            ),
            (
                "/opsgenie/v2/users",
                vec![bearer.clone()],
                403,
                "path_not_allowed",
            ),
            (
                "/opsgenie/v2/alerts%2f..%2fusers",
                vec![bearer.clone()],
                400,
                "bad_path",
            ),
            ("/nothing/x", vec![bearer.clone()], 404, "unknown_connector"),
            (
                "/opsgenie/v2/alerts/1",
                vec![bearer.clone(), ("sec-fetch-site", "cross-site".to_owned())],
                403,
                "browser_refused",
            ),
            (
                "/opsgenie/v2/alerts/1",
                vec![
                    bearer.clone(),
                    ("origin", "https://evil.example".to_owned()),
                ],
                403,
                "origin_not_allowed",
            ),
        ] {
            let answer = get(url(path), headers).await.unwrap();
            assert_eq!(answer.status(), status, "{path}");
            let body: serde_json::Value = answer.json().await.unwrap();
            assert_eq!(body["error"], code, "{path}");
        }
        let post = client
            .post(url("/opsgenie/v2/alerts/1"))
            .header(bearer.0, bearer.1.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(post.status(), 403, "read-only");
        proxy.shutdown().await;
    }
}

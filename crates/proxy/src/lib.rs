//! The localhost proxy (DESIGN.md, "The localhost proxy"): local tools call
//! `http://127.0.0.1:PORT/{connector}/{rest}` with a local key; Latch checks the key's policy,
//! strips the key, injects a fresh upstream credential and streams both bodies through.
//!
//! Defences are part of the feature: loopback only (listener and peer), `Host` must be a
//! loopback name with our port (DNS rebinding), any `Origin` and every CORS preflight are refused
//! (browser CSRF), keys are checked in constant time via their hash, and every request is
//! audited without tokens, bodies or query strings.

mod audit;
mod forward;
mod path;
mod refusal;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use latch_core::config::Config;
use latch_core::grants::Grants;
use latch_core::local_keys::KeyVerifier;
use latch_core::Latch;
use tokio::net::TcpListener;

pub use audit::AuditSink;

/// The default loopback address the proxy listens on (`[proxy] listen` in latch.toml).
pub const DEFAULT_LISTEN: &str = latch_core::config::DEFAULT_PROXY_LISTEN;

/// How long a client may take to send its request head.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the upstream may take to answer with a response head.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(120);

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

pub(crate) struct State {
    pub(crate) port: u16,
    pub(crate) config: Arc<Config>,
    pub(crate) grants: Arc<Grants>,
    pub(crate) keys: Arc<KeyVerifier>,
    pub(crate) client: forward::UpstreamClient,
    pub(crate) audit: AuditSink,
    pub(crate) paused: AtomicBool,
}

/// A running proxy.
pub struct Running {
    /// Where it listens.
    pub addr: SocketAddr,
    state: Arc<State>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    /// Refuses new requests with 503 (`proxy_paused`) until resumed.
    pub fn set_paused(&self, paused: bool) {
        self.state.paused.store(paused, Ordering::Relaxed);
    }

    /// Adds a key that only this process knows (exec's per-child key).
    pub fn add_ephemeral_key(
        &self,
        key: &latch_core::secret::Secret,
        policy: latch_core::local_keys::KeyPolicy,
    ) {
        self.state.keys.add_ephemeral(key, policy);
    }

    /// The token lifecycle the proxy draws on (shared with the refresh scheduler).
    pub fn grants(&self) -> &Arc<Grants> {
        &self.state.grants
    }

    /// Stops accepting, lets in-flight requests finish (bounded), flushes the audit log.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let _ = (&mut self.task).await;
        self.state.audit.flush().await;
    }
}

/// Starts the proxy on `listen` (loopback only; port 0 picks a free port).
pub async fn start(latch: &Latch, listen: SocketAddr) -> Result<Running, StartError> {
    if !listen.ip().is_loopback() {
        return Err(StartError::NotLoopback(listen));
    }
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|e| StartError::Bind(listen, e))?;
    let addr = listener
        .local_addr()
        .map_err(|e| StartError::Bind(listen, e))?;
    let grants = latch.grants();
    grants.watch_in_background();
    let state = Arc::new(State {
        port: addr.port(),
        config: latch.config_handle(),
        grants,
        keys: Arc::new(latch.key_verifier()),
        client: forward::client(),
        audit: AuditSink::start(&latch.home().database(), latch.store_handle()),
        paused: AtomicBool::new(false),
    });
    let (tx, rx) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(accept_loop(listener, Arc::clone(&state), rx));
    Ok(Running {
        addr,
        state,
        shutdown: Some(tx),
        task,
    })
}

async fn accept_loop(
    listener: TcpListener,
    state: Arc<State>,
    mut shutdown: tokio::sync::oneshot::Receiver<()>,
) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, peer)) = accepted else { continue };
                // Bound to loopback, so this holds; checked anyway in case of odd routing.
                if !peer.ip().is_loopback() {
                    continue;
                }
                let _ = stream.set_nodelay(true);
                let state = Arc::clone(&state);
                let service = service_fn(move |request| {
                    let state = Arc::clone(&state);
                    async move { Ok::<_, Infallible>(forward::handle(state, request).await) }
                });
                let connection = http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(HEADER_TIMEOUT)
                    .serve_connection(TokioIo::new(stream), service);
                let connection = graceful.watch(connection);
                tokio::spawn(async move {
                    let _ = connection.await;
                });
            }
            _ = &mut shutdown => break,
        }
    }
    drop(listener);
    // In-flight requests get a bounded grace period.
    let _ = tokio::time::timeout(Duration::from_secs(10), graceful.shutdown()).await;
}

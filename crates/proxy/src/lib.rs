//! The localhost proxy (DESIGN.md, "The localhost proxy"): local tools call
//! `http://127.0.0.1:PORT/{connector}/{rest}` with a local key; Latch checks the key's policy,
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
mod key;
mod path;
mod policy;
mod refusal;
mod service;
mod upstream;

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
use latch_core::config::Config;
use latch_core::grants::{GrantId, Grants};
use latch_core::local_keys::KeyVerifier;
use latch_core::Latch;
use tokio::net::TcpListener;

pub use audit::AuditSink;
pub use service::{Open, Service, ServiceError, ServiceEvent};

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
    pub(crate) grants: Arc<Grants>,
    pub(crate) keys: Arc<KeyVerifier>,
}

impl State {
    fn of(latch: &Latch) -> Self {
        let grants = latch.grants();
        grants.watch_in_background();
        Self {
            config: latch.config_handle(),
            grants,
            keys: Arc::new(latch.key_verifier()),
        }
    }
}

/// What outlives a reload: the port, the upstream connections, the audit writer, the pause
/// switch and the refresh throttle.
pub(crate) struct Shared {
    pub(crate) port: u16,
    pub(crate) current: RwLock<Arc<State>>,
    pub(crate) client: upstream::UpstreamClient,
    pub(crate) audit: AuditSink,
    pub(crate) paused: Arc<AtomicBool>,
    /// When the proxy last refreshed a grant because of a 401 (the throttle).
    pub(crate) auto_refreshes: Mutex<HashMap<GrantId, Instant>>,
    /// Ephemeral keys (`latch exec`) survive reloads.
    ephemeral: Mutex<
        Vec<(
            latch_core::secret::Secret,
            latch_core::local_keys::KeyPolicy,
        )>,
    >,
}

impl Shared {
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
        policy: latch_core::local_keys::KeyPolicy,
    ) {
        self.shared.state().keys.add_ephemeral(key, policy.clone());
        self.shared
            .ephemeral
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((key.clone(), policy));
    }

    /// The token lifecycle the proxy draws on now (shared with the refresh scheduler).
    pub fn grants(&self) -> Arc<Grants> {
        Arc::clone(&self.shared.state().grants)
    }

    /// Serves a new configuration from now on, on the same listener: no connection is refused,
    /// and requests in flight finish on the one they started with.
    pub fn reload(&self, latch: &Latch) {
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
pub async fn start(latch: &Latch, listen: SocketAddr) -> Result<Running, StartError> {
    start_paused_by(latch, listen, Arc::new(AtomicBool::new(false))).await
}

/// Starts the proxy with a pause switch the caller keeps (it outlives a move to a new address).
pub(crate) async fn start_paused_by(
    latch: &Latch,
    listen: SocketAddr,
    paused: Arc<AtomicBool>,
) -> Result<Running, StartError> {
    if !listen.ip().is_loopback() {
        return Err(StartError::NotLoopback(listen));
    }
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|e| StartError::Bind(listen, e))?;
    let addr = listener
        .local_addr()
        .map_err(|e| StartError::Bind(listen, e))?;
    let cap = connection_cap(descriptor_budget());
    let shared = Arc::new(Shared {
        port: addr.port(),
        current: RwLock::new(Arc::new(State::of(latch))),
        client: upstream::client(cap),
        audit: AuditSink::start(
            &latch.home().database(),
            latch.store_handle(),
            latch.config().audit_keep_days,
        ),
        paused,
        auto_refreshes: Mutex::new(HashMap::new()),
        ephemeral: Mutex::new(Vec::new()),
    });
    let (tx, rx) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(accept_loop(listener, Arc::clone(&shared), cap, rx));
    Ok(Running {
        addr,
        shared,
        shutdown: Some(tx),
        task,
    })
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

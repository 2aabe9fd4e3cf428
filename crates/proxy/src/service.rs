//! Serving a home: the proxy, the refresh scheduler, and a watch on latch.toml — the one loop
//! both `latch serve` and the desktop app run. An edit that opens is swapped in behind the
//! listener (no connection refused, requests in flight finish on the old one); an edit that does
//! not open is reported and the running configuration keeps serving.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use latch_core::app::App;
use latch_core::config::home::Home;

use crate::{start_paused_by, Running, StartError};

/// How often latch.toml is looked at for edits made by another face or by hand.
const CONFIG_CHECK: Duration = Duration::from_secs(2);

/// Opens the home again (the face knows the keychain).
pub type Open = Arc<dyn Fn() -> latch_core::Result<App> + Send + Sync>;

/// What the service tells its face.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServiceEvent {
    /// A new configuration is being served.
    Reloaded,
    /// latch.toml changed but does not open; the previous configuration keeps serving.
    ReloadFailed(String),
    /// The listen address changed and the proxy moved to it.
    Moved(SocketAddr),
}

/// Why serving could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The home does not open.
    #[error(transparent)]
    Open(#[from] latch_core::Error),
    /// The proxy could not listen.
    #[error(transparent)]
    Start(#[from] StartError),
}

struct Inner {
    proxy: Option<Running>,
    scheduler: tokio::task::JoinHandle<()>,
}

/// A home being served.
pub struct Service {
    inner: Arc<tokio::sync::Mutex<Inner>>,
    addr: Arc<Mutex<Option<SocketAddr>>>,
    paused: Arc<AtomicBool>,
    watcher: tokio::task::JoinHandle<()>,
}

impl Service {
    /// Starts the proxy on `listen` (or `[proxy] listen`), the scheduler and the watch. When the
    /// proxy cannot listen and `proxy_optional` (the desktop app beside a running `latch serve`),
    /// the scheduler still runs and the error is returned with the service.
    pub async fn start(
        home: Home,
        open: Open,
        listen: Option<SocketAddr>,
        proxy_optional: bool,
        events: Arc<dyn Fn(ServiceEvent) + Send + Sync>,
    ) -> Result<(Self, Option<StartError>), ServiceError> {
        let mut stamp = home.config_stamp();
        let latch = open()?;
        let pinned = listen.is_some();
        let want = listen.unwrap_or(latch.config().listen);
        let paused = Arc::new(AtomicBool::new(false));
        let (proxy, failed) = match start_paused_by(&latch, want, Arc::clone(&paused)).await {
            Ok(proxy) => (Some(proxy), None),
            Err(err) if proxy_optional => (None, Some(err)),
            Err(err) => return Err(err.into()),
        };
        let credentials = proxy
            .as_ref()
            .map_or_else(|| latch.credentials(), Running::credentials);
        let scheduler = tokio::spawn(latch_core::credential::schedule::run(credentials));
        let addr = Arc::new(Mutex::new(proxy.as_ref().map(|p| p.addr)));
        let inner = Arc::new(tokio::sync::Mutex::new(Inner { proxy, scheduler }));
        let watcher = {
            let (inner, addr, pause) = (Arc::clone(&inner), Arc::clone(&addr), Arc::clone(&paused));
            let mut configured = latch.config().listen;
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(CONFIG_CHECK);
                loop {
                    tick.tick().await;
                    let now = home.config_stamp();
                    if now == stamp {
                        continue;
                    }
                    stamp = now;
                    match open() {
                        Ok(next) => {
                            let moved = !pinned && next.config().listen != configured;
                            configured = next.config().listen;
                            let event =
                                apply(&inner, &addr, &pause, &next, moved.then_some(configured))
                                    .await;
                            events(event);
                        }
                        Err(err) => events(ServiceEvent::ReloadFailed(err.to_string())),
                    }
                }
            })
        };
        Ok((
            Self {
                inner,
                addr,
                paused,
                watcher,
            },
            failed,
        ))
    }

    /// Where the proxy listens, when it does.
    pub fn addr(&self) -> Option<SocketAddr> {
        *self.addr.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Applies the configuration now (a face that just changed it need not wait for the watch).
    pub async fn reload(&self, latch: &App) {
        apply(&self.inner, &self.addr, &self.paused, latch, None).await;
    }

    /// Pauses or resumes the proxy (503 `proxy_paused` meanwhile).
    pub fn set_paused(&self, paused: bool) {
        self.paused.store(paused, Ordering::Relaxed);
    }

    /// Whether the proxy is paused.
    pub fn paused(&self) -> bool {
        self.paused.load(Ordering::Relaxed)
    }

    /// Adds a key only this process knows (exec's per-child key).
    pub async fn add_ephemeral_key(
        &self,
        key: &latch_core::secret::Secret,
        policy: latch_core::local_key::KeyPolicy,
    ) {
        if let Some(proxy) = &self.inner.lock().await.proxy {
            proxy.add_ephemeral_key(key, policy);
        }
    }

    /// Stops watching and scheduling, lets requests in flight finish, flushes the audit log.
    pub async fn shutdown(self) {
        self.watcher.abort();
        let mut inner = self.inner.lock().await;
        inner.scheduler.abort();
        if let Some(proxy) = inner.proxy.take() {
            proxy.shutdown().await;
        }
    }
}

async fn apply(
    inner: &tokio::sync::Mutex<Inner>,
    addr: &Mutex<Option<SocketAddr>>,
    paused: &Arc<AtomicBool>,
    latch: &App,
    moved_to: Option<SocketAddr>,
) -> ServiceEvent {
    let mut inner = inner.lock().await;
    let mut event = ServiceEvent::Reloaded;
    match (&inner.proxy, moved_to) {
        (Some(_), Some(to)) => {
            // A new address: the one case where the listener itself changes.
            if let Ok(next) = start_paused_by(latch, to, Arc::clone(paused)).await {
                *addr.lock().unwrap_or_else(PoisonError::into_inner) = Some(next.addr);
                event = ServiceEvent::Moved(next.addr);
                if let Some(old) = inner.proxy.replace(next) {
                    old.shutdown().await;
                }
            }
        }
        (Some(proxy), None) => proxy.reload(latch),
        (None, _) => {}
    }
    inner.scheduler.abort();
    let credentials = inner
        .proxy
        .as_ref()
        .map_or_else(|| latch.credentials(), Running::credentials);
    inner.scheduler = tokio::spawn(latch_core::credential::schedule::run(credentials));
    event
}

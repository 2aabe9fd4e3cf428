//! A home's long-lived services: the proxy listener, the refresh scheduler and the one watch on
//! latch.toml — what `latch serve` and the desktop app run. An edit that opens is swapped in
//! behind the listener (no connection refused, requests in flight finish on the configuration
//! they started with); an edit that does not open is reported and the running configuration
//! keeps serving. One runtime serves a home at a time: it holds the home's serve claim
//! ([`latch_core::app::serving`]) and announces its address there. Short-lived faces
//! (`latch exec`) start a private proxy instead, with no scheduler, no watch and no claim.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use latch_core::app::serving::{self, ServeClaim};
use latch_core::app::App;
use latch_proxy::{start_paused_by, Running, StartError};

/// How often latch.toml is looked at for edits made by another face or by hand.
const CONFIG_CHECK: Duration = Duration::from_secs(2);

/// What the runtime tells its face.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RuntimeEvent {
    /// A new configuration is being served.
    Reloaded,
    /// latch.toml changed but does not open; the previous configuration keeps serving.
    ReloadFailed(String),
    /// The listen address changed and the proxy moved to it.
    Moved(SocketAddr),
}

/// Receives the runtime's events.
pub type Events = Arc<dyn Fn(RuntimeEvent) + Send + Sync>;

type Stamp = Option<(SystemTime, u64)>;

struct Inner {
    proxy: Option<Running>,
    scheduler: tokio::task::JoinHandle<()>,
    /// The latch.toml this runtime serves, by modification time and length.
    stamp: Stamp,
    /// The `[proxy] listen` it was started with (a change moves the proxy unless pinned).
    configured: SocketAddr,
}

/// A home being served.
pub struct Runtime {
    app: Arc<App>,
    inner: Arc<tokio::sync::Mutex<Inner>>,
    addr: Arc<Mutex<Option<SocketAddr>>>,
    paused: Arc<AtomicBool>,
    pinned: bool,
    watcher: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// The home's serve claim: held while this runtime lives.
    claim: Mutex<Option<ServeClaim>>,
}

impl Runtime {
    /// Starts the proxy on `listen` (or `[proxy] listen`), the scheduler and the watch. When the
    /// proxy cannot listen and `proxy_optional` (the desktop app beside a running `latch serve`),
    /// the scheduler still runs and the error is returned with the runtime.
    pub async fn start(
        app: Arc<App>,
        claim: ServeClaim,
        listen: Option<SocketAddr>,
        proxy_optional: bool,
        events: Events,
    ) -> Result<(Arc<Self>, Option<StartError>), StartError> {
        let stamp = app.home().config_stamp();
        let configured = app.config().listen;
        // A pause belongs to the process that served before: this one starts serving.
        if let Err(err) = serving::set_paused(app.home(), false) {
            tracing::warn!(%err, "could not clear the home's pause");
        }
        let paused = Arc::new(AtomicBool::new(false));
        let want = listen.unwrap_or(configured);
        let (proxy, failed) = match start_paused_by(&app, want, Arc::clone(&paused)).await {
            Ok(proxy) => (Some(proxy), None),
            Err(err) if proxy_optional => (None, Some(err)),
            Err(err) => return Err(err),
        };
        let scheduler = schedule(&app, proxy.as_ref());
        // Another face that changed latch.toml or the pause says so with a SIGUSR1
        // (`serving::nudge`): the watch looks at once rather than at its next tick. Handled
        // before it is announced, so that the signal never meets its default action.
        let mut nudged =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::user_defined1()).ok();
        if nudged.is_some() {
            claim.accept_nudges();
        }
        if let Err(err) = claim.announce(proxy.as_ref().map(|p| p.addr)) {
            tracing::warn!(%err, "could not say where this home is served");
        }
        let addr = Arc::new(Mutex::new(proxy.as_ref().map(|p| p.addr)));
        let runtime = Arc::new(Self {
            inner: Arc::new(tokio::sync::Mutex::new(Inner {
                proxy,
                scheduler,
                stamp,
                configured,
            })),
            app,
            addr,
            paused,
            pinned: listen.is_some(),
            watcher: Mutex::new(None),
            claim: Mutex::new(Some(claim)),
        });
        let watcher = {
            let runtime = Arc::clone(&runtime);
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(CONFIG_CHECK);
                loop {
                    match &mut nudged {
                        Some(nudged) => tokio::select! {
                            _ = tick.tick() => {}
                            _ = nudged.recv() => {}
                        },
                        None => {
                            tick.tick().await;
                        }
                    }
                    if let Some(event) = runtime.look().await {
                        events(event);
                    }
                }
            })
        };
        *runtime
            .watcher
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(watcher);
        Ok((runtime, failed))
    }

    /// The home it serves.
    pub fn app(&self) -> &Arc<App> {
        &self.app
    }

    /// Where the proxy listens, when it does.
    pub fn addr(&self) -> Option<SocketAddr> {
        *self.addr.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Serves the home's configuration as it is now: a face that just changed it through the
    /// same [`App`] need not wait for the watch (which then sees nothing new).
    pub async fn apply(&self) -> RuntimeEvent {
        let mut inner = self.inner.lock().await;
        inner.stamp = self.app.home().config_stamp();
        self.serve_current(&mut inner).await
    }

    /// Pauses or resumes the proxy (503 `proxy_paused` meanwhile), for every face to see.
    pub fn set_paused(&self, paused: bool) {
        self.paused.store(paused, Ordering::Relaxed);
        if let Err(err) = serving::set_paused(self.app.home(), paused) {
            tracing::warn!(%err, "could not record the pause for other faces");
        }
    }

    /// Whether the proxy is paused.
    pub fn paused(&self) -> bool {
        self.paused.load(Ordering::Relaxed)
    }

    /// Stops watching and scheduling, lets requests in flight finish, flushes the audit log.
    pub async fn shutdown(&self) {
        if let Some(watcher) = self
            .watcher
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            watcher.abort();
        }
        let mut inner = self.inner.lock().await;
        inner.scheduler.abort();
        if let Some(proxy) = inner.proxy.take() {
            proxy.shutdown().await;
        }
        // The home is free for the next face (the desktop app waits for it).
        drop(
            self.claim
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take(),
        );
    }

    /// The watch's one look: when latch.toml changed, the home reads it again and serves it.
    async fn look(&self) -> Option<RuntimeEvent> {
        // Another face (the window beside the tray, say) may have paused or resumed it.
        self.paused
            .store(serving::paused(self.app.home()), Ordering::Relaxed);
        let mut inner = self.inner.lock().await;
        let now = self.app.home().config_stamp();
        if now == inner.stamp {
            return None;
        }
        inner.stamp = now;
        match self.app.reload() {
            Ok(_) => Some(self.serve_current(&mut inner).await),
            Err(err) => Some(RuntimeEvent::ReloadFailed(err.to_string())),
        }
    }

    async fn serve_current(&self, inner: &mut Inner) -> RuntimeEvent {
        let listen = self.app.config().listen;
        let moved_to = (!self.pinned && listen != inner.configured).then_some(listen);
        inner.configured = listen;
        let mut event = RuntimeEvent::Reloaded;
        match (&inner.proxy, moved_to) {
            (Some(_), Some(to)) => {
                // A new address: the one case where the listener itself changes.
                if let Ok(next) = start_paused_by(&self.app, to, Arc::clone(&self.paused)).await {
                    *self.addr.lock().unwrap_or_else(PoisonError::into_inner) = Some(next.addr);
                    if let Some(claim) = &*self.claim.lock().unwrap_or_else(PoisonError::into_inner)
                    {
                        let _ = claim.announce(Some(next.addr));
                    }
                    event = RuntimeEvent::Moved(next.addr);
                    if let Some(old) = inner.proxy.replace(next) {
                        old.shutdown().await;
                    }
                }
            }
            (Some(proxy), None) => proxy.reload(&self.app),
            (None, _) => {}
        }
        inner.scheduler.abort();
        inner.scheduler = schedule(&self.app, inner.proxy.as_ref());
        event
    }
}

/// The refresh scheduler over the credentials the proxy serves (the home's, without a proxy).
fn schedule(app: &App, proxy: Option<&Running>) -> tokio::task::JoinHandle<()> {
    let credentials = proxy.map_or_else(|| app.credentials(), Running::credentials);
    tokio::spawn(latch_core::credential::schedule::run(credentials))
}

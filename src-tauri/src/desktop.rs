//! The app's own state: where its home is, the in-process proxy, and a nudge to the status
//! watcher after commands that change something.

use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex, PoisonError};

use latch_core::app::App;
use latch_core::config::home::Home;
use serde::Serialize;

use crate::ipc_error::IpcError;

/// What the UI shows about the proxy.
#[derive(Clone, Debug, Default, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub(crate) struct ProxyView {
    /// `http://127.0.0.1:PORT` while listening.
    pub(crate) url: Option<String>,
    /// Refusing requests with 503 `proxy_paused`.
    pub(crate) paused: bool,
    /// Why it is not listening (port taken by `latch serve`, …).
    pub(crate) error: Option<String>,
}

#[derive(Default)]
struct ProxySlot {
    runtime: Option<Arc<latch_runtime::Runtime>>,
    error: Option<String>,
}

pub(crate) struct Desktop {
    home: Home,
    /// The home, opened once; the runtime's watch reloads it when latch.toml changes.
    app: Mutex<Option<Arc<App>>>,
    proxy: Mutex<ProxySlot>,
    nudge: Mutex<Option<Sender<()>>>,
    /// Ends a sign-in that is waiting for the browser (the person closed the tab).
    pub(crate) sign_in_cancel: tokio::sync::Notify,
}

impl Desktop {
    pub(crate) fn new(home: Home) -> Self {
        Self {
            home,
            app: Mutex::new(None),
            proxy: Mutex::new(ProxySlot::default()),
            nudge: Mutex::new(None),
            sign_in_cancel: tokio::sync::Notify::new(),
        }
    }

    /// The home: opened on first use (again after a failure, once latch.toml opens).
    pub(crate) fn open(&self) -> Result<Arc<App>, IpcError> {
        Ok(self.open_core()?)
    }

    /// The same, with the core's error (for the serving loop).
    pub(crate) fn open_core(&self) -> latch_core::Result<Arc<App>> {
        let mut slot = self.app.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(app) = slot.as_ref() {
            return Ok(Arc::clone(app));
        }
        // A secrets file's passphrase comes from LATCH_FILE_KEY or a systemd credential: the
        // app has no terminal to ask on.
        let app = Arc::new(App::open_choosing(self.home.clone(), |home, config| {
            latch_keychain::for_home(home, &config.secret_store, &|| None)
        })?);
        *slot = Some(Arc::clone(&app));
        Ok(app)
    }

    pub(crate) fn home(&self) -> &Home {
        &self.home
    }

    pub(crate) fn set_nudge(&self, nudge: Sender<()>) {
        *self.nudge.lock().unwrap_or_else(PoisonError::into_inner) = Some(nudge);
    }

    /// Asks the status watcher to look now rather than at its next tick.
    pub(crate) fn nudge(&self) {
        if let Some(tx) = &*self.nudge.lock().unwrap_or_else(PoisonError::into_inner) {
            let _ = tx.send(());
        }
    }

    /// The runtime is serving (its proxy failed to listen when `failed` says why).
    pub(crate) fn runtime_started(
        &self,
        runtime: Arc<latch_runtime::Runtime>,
        failed: Option<String>,
    ) {
        let mut slot = self.proxy.lock().unwrap_or_else(PoisonError::into_inner);
        slot.runtime = Some(runtime);
        slot.error = failed;
    }

    /// After a command changed latch.toml through the app: the runtime serves it at once, and
    /// the status watcher looks.
    pub(crate) async fn changed(&self) {
        if let Some(runtime) = self.runtime() {
            runtime.apply().await;
            self.proxy_healthy();
        }
        self.nudge();
    }

    /// The runtime this process serves the home with, if it does.
    fn runtime(&self) -> Option<Arc<latch_runtime::Runtime>> {
        self.proxy
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .runtime
            .clone()
    }

    /// The latest configuration is being served.
    pub(crate) fn proxy_healthy(&self) {
        let mut slot = self.proxy.lock().unwrap_or_else(PoisonError::into_inner);
        if slot.runtime.as_ref().is_some_and(|s| s.addr().is_some()) {
            slot.error = None;
        }
    }

    /// Another process serves the home: no error to show, the status says who.
    pub(crate) fn served_elsewhere(&self) {
        self.proxy
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .error = None;
    }

    pub(crate) fn proxy_failed(&self, why: String) {
        self.proxy
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .error = Some(why);
    }

    /// Pauses or resumes the home's proxy, whichever process serves it (the tray, `latch
    /// serve` or this one).
    pub(crate) fn set_proxy_paused(&self, paused: bool) -> Result<ProxyView, IpcError> {
        match self.runtime() {
            Some(runtime) => runtime.set_paused(paused),
            None => {
                latch_core::app::serving::set_paused(&self.home, paused)
                    .map_err(|e| IpcError::new("proxy_pause_failed", e.to_string()))?;
                latch_core::app::serving::nudge(&self.home);
            }
        }
        self.nudge();
        Ok(self.proxy_view())
    }

    /// Whether this process serves the home (it took over, or there is no tray).
    pub(crate) fn serves_here(&self) -> bool {
        self.proxy
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .runtime
            .is_some()
    }

    pub(crate) fn proxy_view(&self) -> ProxyView {
        let slot = self.proxy.lock().unwrap_or_else(PoisonError::into_inner);
        ProxyView {
            url: slot
                .runtime
                .as_ref()
                .and_then(|s| s.addr())
                .map(|a| format!("http://{a}")),
            paused: slot.runtime.as_ref().map_or_else(
                || latch_core::app::serving::paused(&self.home),
                |runtime| runtime.paused(),
            ),
            error: slot.error.clone(),
        }
    }
}

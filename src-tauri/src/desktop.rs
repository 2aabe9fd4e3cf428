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
    service: Option<Arc<latch_proxy::Service>>,
    paused: bool,
    error: Option<String>,
}

pub(crate) struct Desktop {
    home: Home,
    proxy: Mutex<ProxySlot>,
    nudge: Mutex<Option<Sender<()>>>,
    /// Wakes the serving loop when latch.toml changed: it swaps the new configuration in behind
    /// the proxy's listener (new connectors, providers, keys).
    pub(crate) config_changed: tokio::sync::Notify,
    /// Ends a sign-in that is waiting for the browser (the person closed the tab).
    pub(crate) sign_in_cancel: tokio::sync::Notify,
    /// The secret store, kept while latch.toml chooses the same one: the home is reopened for
    /// every command and status read, and an encrypted file's key costs a key derivation.
    secrets: Mutex<Option<StoreSlot>>,
}

type StoreSlot = (
    latch_core::config::SecretStoreChoice,
    Arc<dyn latch_core::ports::SecretStore>,
);

impl Desktop {
    pub(crate) fn new(home: Home) -> Self {
        Self {
            home,
            proxy: Mutex::new(ProxySlot::default()),
            nudge: Mutex::new(None),
            config_changed: tokio::sync::Notify::new(),
            sign_in_cancel: tokio::sync::Notify::new(),
            secrets: Mutex::new(None),
        }
    }

    /// A fresh view of the home: latch.toml may have been edited by the CLI or by hand.
    pub(crate) fn open(&self) -> Result<App, IpcError> {
        Ok(self.open_core()?)
    }

    /// The same, with the core's error (for the serving loop).
    pub(crate) fn open_core(&self) -> latch_core::Result<App> {
        // A secrets file's passphrase comes from LATCH_FILE_KEY or a systemd credential: the
        // app has no terminal to ask on.
        App::open_choosing(self.home.clone(), |home, config| {
            let mut slot = self.secrets.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some((choice, store)) = slot.as_ref() {
                if *choice == config.secret_store {
                    return Ok(Arc::clone(store));
                }
            }
            let store = latch_keychain::for_home(home, &config.secret_store, &|| None)?;
            *slot = Some((config.secret_store.clone(), Arc::clone(&store)));
            Ok(store)
        })
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

    /// The service is serving (its proxy failed to listen when `failed` says why).
    pub(crate) fn service_started(
        &self,
        service: Arc<latch_proxy::Service>,
        failed: Option<String>,
    ) {
        let mut slot = self.proxy.lock().unwrap_or_else(PoisonError::into_inner);
        service.set_paused(slot.paused);
        slot.service = Some(service);
        slot.error = failed;
    }

    /// The latest configuration is being served.
    pub(crate) fn proxy_healthy(&self) {
        let mut slot = self.proxy.lock().unwrap_or_else(PoisonError::into_inner);
        if slot.service.as_ref().is_some_and(|s| s.addr().is_some()) {
            slot.error = None;
        }
    }

    /// latch.toml's modification time and length, to notice edits by any face.
    pub(crate) fn config_stamp(&self) -> Option<(std::time::SystemTime, u64)> {
        self.home.config_stamp()
    }

    pub(crate) fn proxy_failed(&self, why: String) {
        self.proxy
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .error = Some(why);
    }

    pub(crate) fn set_proxy_paused(&self, paused: bool) -> ProxyView {
        {
            let mut slot = self.proxy.lock().unwrap_or_else(PoisonError::into_inner);
            slot.paused = paused;
            if let Some(service) = &slot.service {
                service.set_paused(paused);
            }
        }
        self.nudge();
        self.proxy_view()
    }

    pub(crate) fn proxy_view(&self) -> ProxyView {
        let slot = self.proxy.lock().unwrap_or_else(PoisonError::into_inner);
        ProxyView {
            url: slot
                .service
                .as_ref()
                .and_then(|s| s.addr())
                .map(|a| format!("http://{a}")),
            paused: slot.paused,
            error: slot.error.clone(),
        }
    }
}

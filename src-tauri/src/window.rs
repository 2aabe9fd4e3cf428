//! The window: built when asked for, and gone (webview and WebKit processes with it) when it
//! closes. What stays runs in `latch tray`, a process of its own without a webview.

use std::sync::Mutex;
use std::time::Instant;

use tauri::{AppHandle, Manager, Runtime};

/// When the window was asked for: its first painted status is logged against it. The first
/// window counts from the process's start.
static ASKED_AT: Mutex<Option<Instant>> = Mutex::new(None);

/// Notes that a window is wanted now.
pub(crate) fn asked() {
    *ASKED_AT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Instant::now());
}

/// The window painted its first status: how long after it was asked for (the figure
/// `make bench-desktop` reads).
pub(crate) fn painted() {
    let asked = ASKED_AT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take();
    if let Some(asked) = asked {
        tracing::info!(
            ms = u64::try_from(asked.elapsed().as_millis()).unwrap_or(u64::MAX),
            "the window painted its status"
        );
    }
}

/// Shows and focuses the window (a second launch), building it when there is none.
pub(crate) fn show_main<R: Runtime>(app: &AppHandle<R>) {
    if let Some(window) = app.get_webview_window("main") {
        let _ = window.unminimize();
        let _ = window.show();
        let _ = window.set_focus();
        return;
    }
    asked();
    if let Err(err) = build_main(app) {
        eprintln!("latch-desktop: cannot open the window: {err}");
    }
}

/// Builds the main window from the app's configuration.
pub(crate) fn build_main<R: Runtime>(app: &AppHandle<R>) -> tauri::Result<()> {
    let Some(config) = app.config().app.windows.iter().find(|w| w.label == "main") else {
        return Ok(());
    };
    let window = tauri::WebviewWindowBuilder::from_config(app, config)?.build()?;
    let _ = window.set_focus();
    Ok(())
}

//! Watches the status (every few seconds, and at once after a command changes something):
//! on a change it tells the webview, recolours the tray and notifies the person when a
//! connector newly needs them.

use std::sync::mpsc::{channel, RecvTimeoutError};
use std::sync::Arc;
use std::time::Duration;

use latch_core::health::attention::{newly_needing, overall};
use latch_core::health::status::StatusReport;
use tauri::{AppHandle, Emitter};
use tauri_plugin_notification::NotificationExt;

use crate::desktop::Desktop;
use crate::tray;

/// How often the status is re-read when nothing nudges the watcher: refreshes by the scheduler,
/// the proxy or the CLI happen outside the webview's commands.
const TICK: Duration = Duration::from_secs(2);

pub(crate) fn start(app: AppHandle, desktop: Arc<Desktop>) {
    let (nudge, nudged) = channel();
    desktop.set_nudge(nudge);
    std::thread::Builder::new()
        .name("latch-status-watch".to_owned())
        .spawn(move || {
            let mut last: Option<StatusReport> = None;
            let mut last_seen = (String::new(), false);
            loop {
                if let Ok(report) = desktop.open().and_then(|l| Ok(l.status()?)) {
                    let paused = desktop.proxy_view().paused;
                    let seen = (serde_json::to_string(&report).unwrap_or_default(), paused);
                    if seen != last_seen {
                        for attention in newly_needing(last.as_ref(), &report) {
                            let _ = app
                                .notification()
                                .builder()
                                .title(&attention.title)
                                .body(&attention.action)
                                .show();
                        }
                        tray::update(&app, &report, overall(&report), paused);
                        let _ = app.emit("status", &report);
                        last = Some(report);
                        last_seen = seen;
                    }
                }
                match nudged.recv_timeout(TICK) {
                    Ok(()) | Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => break,
                }
            }
        })
        .map(drop)
        .unwrap_or_else(|e| eprintln!("latch-desktop: status watcher not started: {e}"));
}

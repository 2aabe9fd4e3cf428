//! Watches the status (every few seconds, and at once after a command changes something) and
//! tells the webview on a change. The tray icon and notifications belong to `latch tray`,
//! which outlives the window.

use std::sync::mpsc::{channel, RecvTimeoutError};
use std::sync::Arc;
use std::time::Duration;

use tauri::{AppHandle, Emitter};

use crate::desktop::Desktop;

/// How often the status is re-read when nothing nudges the watcher: refreshes by the scheduler,
/// the proxy or the CLI happen outside the webview's commands.
const TICK: Duration = Duration::from_secs(2);

pub(crate) fn start(app: AppHandle, desktop: Arc<Desktop>) {
    let (nudge, nudged) = channel();
    desktop.set_nudge(nudge);
    std::thread::Builder::new()
        .name("latch-status-watch".to_owned())
        .spawn(move || {
            let mut last_seen = (String::new(), false);
            loop {
                if let Ok(report) = desktop.open().and_then(|l| Ok(l.status()?)) {
                    let paused = desktop.proxy_view().paused;
                    let seen = (serde_json::to_string(&report).unwrap_or_default(), paused);
                    if seen != last_seen {
                        let _ = app.emit("status", &report);
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

//! Latch desktop app: a Tauri v2 shell over `latch-core`. The proxy and the refresh scheduler run
//! in-process (the same cross-process rules hold when the CLI runs too); commands are a few
//! lines each; errors reach the webview as codes; the tray shows the worst connector state.

// Release builds on Windows should not open a console window.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

#[cfg(test)]
mod command_names;
mod commands;
mod desktop;
mod ipc_error;
#[cfg(test)]
mod ipc_types;
mod status_watch;
mod tray;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use latch_core::app::serving::{self, Claim};
use latch_core::config::home::Home;
use latch_runtime::{Runtime, RuntimeEvent};
use tauri::WindowEvent;
use tauri_plugin_autostart::MacosLauncher;

use crate::desktop::Desktop;

/// The argument that starts the app in the tray, without a window (autostart at login).
const TRAY_ONLY: &str = "--tray";

/// How this face names itself where it serves a home.
const BY: &str = "the desktop app";

/// Whether the tray exists: closing the window then frees it (webview, WebKit processes) and
/// Latch keeps serving from the tray.
static HAS_TRAY: AtomicBool = AtomicBool::new(false);

/// The proxy, the refresh scheduler and the watch on latch.toml: the runtime `latch serve`
/// runs headless. A change by the CLI or by hand is swapped in behind the listener; the app's
/// own changes are applied at once ([`Desktop::changed`]).
async fn serve(desktop: Arc<Desktop>) {
    let events: latch_runtime::Events = {
        let desktop = Arc::clone(&desktop);
        Arc::new(move |event| {
            match event {
                RuntimeEvent::ReloadFailed(err) => desktop.proxy_failed(err),
                RuntimeEvent::Reloaded | RuntimeEvent::Moved(_) => desktop.proxy_healthy(),
            }
            desktop.nudge();
        })
    };
    // Until latch.toml opens there is no runtime (and no watch of its): look again every few
    // seconds after an edit.
    let mut stamp = desktop.home().config_stamp();
    let app = loop {
        match desktop.open_core() {
            Ok(app) => break app,
            Err(err) => {
                desktop.proxy_failed(err.to_string());
                desktop.nudge();
                while desktop.home().config_stamp() == stamp {
                    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
                }
                stamp = desktop.home().config_stamp();
            }
        }
    };
    // One proxy and one scheduler per home: beside a running `latch serve` the app shows who
    // serves (the status says) and takes over when it stops.
    let home = desktop.home().clone();
    let claim = match serving::claim(&home, BY) {
        Ok(Claim::Claimed(claim)) => claim,
        Ok(Claim::Held(_)) => {
            desktop.served_elsewhere();
            desktop.nudge();
            match tokio::task::spawn_blocking(move || serving::claim_when_free(&home, BY)).await {
                Ok(Ok(claim)) => claim,
                Ok(Err(err)) => {
                    return desktop.proxy_failed(format!("cannot serve this home: {err}"))
                }
                Err(err) => return desktop.proxy_failed(format!("cannot serve this home: {err}")),
            }
        }
        Err(err) => return desktop.proxy_failed(format!("cannot serve this home: {err}")),
    };
    // The port may still be taken by a program that is not Latch: the scheduler runs anyway.
    match Runtime::start(app, claim, None, true, events).await {
        Ok((runtime, failed)) => {
            desktop.runtime_started(runtime, failed.map(|e| e.to_string()));
        }
        Err(err) => desktop.proxy_failed(err.to_string()),
    }
    desktop.nudge();
}

fn main() {
    // `LATCH_LOG=debug latch-desktop` logs like `latch -vv`, to stderr.
    let filter = latch_core::logs::filter(std::env::var("LATCH_LOG").ok().as_deref(), 0);
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    let home = match Home::from_env() {
        Ok(home) => home,
        Err(err) => {
            eprintln!("latch-desktop: {err}");
            std::process::exit(3);
        }
    };
    let desktop = Arc::new(Desktop::new(home));
    let result = tauri::Builder::default()
        // First, so that a second launch only reaches this process: it opens the window, or
        // with `--tray` closes it to the tray.
        .plugin(tauri_plugin_single_instance::init(|app, args, _cwd| {
            if args.iter().any(|a| a == TRAY_ONLY) && HAS_TRAY.load(Ordering::Relaxed) {
                tray::close_main(app);
            } else {
                tray::show_main(app);
            }
        }))
        .plugin(tauri_plugin_notification::init())
        // Started at login: to the tray, without a window.
        .plugin(tauri_plugin_autostart::init(
            MacosLauncher::LaunchAgent,
            Some(vec![TRAY_ONLY]),
        ))
        .manage(Arc::clone(&desktop))
        .setup(move |app| {
            match tray::create(app.handle()) {
                Ok(()) => HAS_TRAY.store(true, Ordering::Relaxed),
                Err(err) => {
                    eprintln!("latch-desktop: no tray icon ({err}); closing the window quits")
                }
            }
            tauri::async_runtime::spawn(serve(Arc::clone(&desktop)));
            status_watch::start(app.handle().clone(), Arc::clone(&desktop));
            // `--tray` (autostart) starts without a window; without a tray there must be one.
            let tray_only = std::env::args().any(|a| a == TRAY_ONLY);
            if !tray_only || !HAS_TRAY.load(Ordering::Relaxed) {
                tray::build_main(app.handle())?;
            }
            Ok(())
        })
        .on_window_event(|window, event| {
            if let WindowEvent::Destroyed = event {
                if window.label() == "main" {
                    tracing::debug!("the window closed; serving from the tray");
                }
            }
        })
        .invoke_handler(tauri::generate_handler![
            commands::status,
            commands::catalog,
            commands::add_provider,
            commands::preview_connector,
            commands::add_connector,
            commands::remove_connector,
            commands::set_credential,
            commands::sign_in,
            commands::cancel_sign_in,
            commands::sign_out,
            commands::refresh_connector,
            commands::bind_site,
            commands::keys,
            commands::create_key,
            commands::revoke_key,
            commands::audit,
            commands::doctor,
            commands::export_report,
            commands::proxy,
            commands::set_proxy_paused,
            commands::settings,
            commands::set_autostart,
            commands::window_painted,
        ])
        .build(tauri::generate_context!());
    match result {
        Ok(app) => app.run(|_, event| {
            // The last window closed: with a tray, Latch keeps serving (Quit exits with a
            // code, which is let through).
            if let tauri::RunEvent::ExitRequested {
                code: None, api, ..
            } = event
            {
                if HAS_TRAY.load(Ordering::Relaxed) {
                    api.prevent_exit();
                }
            }
        }),
        Err(err) => {
            eprintln!("latch-desktop: {err}");
            std::process::exit(1);
        }
    }
}

//! Latch desktop app: a Tauri v2 shell over `latch-core`, the window only. The proxy, the refresh
//! scheduler, the tray icon and notifications run in `latch tray`, which the app starts when
//! nobody serves the home and which stays when the window closes (the webview and its WebKit
//! processes go with the window). Without the `latch` binary the app serves in-process and
//! closing the window quits. Commands are a few lines each; errors reach the webview as codes.

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
mod window;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use latch_core::app::serving::{self, Claim};
use latch_core::config::home::Home;
use latch_runtime::{Runtime, RuntimeEvent};
use tauri::Manager as _;
use tauri_plugin_autostart::MacosLauncher;

use crate::desktop::Desktop;

/// The argument that starts the app in the tray, without a window (autostart at login): the
/// process becomes `latch tray`.
const TRAY_ONLY: &str = "--tray";

/// How this face names itself where it serves a home (when it must serve itself).
const BY: &str = "the desktop app";

/// How long the window waits for the tray it started to claim the home.
const TRAY_START: Duration = Duration::from_secs(10);

/// The `latch` binary beside this one (as installed and as built).
fn latch_binary() -> Option<PathBuf> {
    let path = std::env::current_exe().ok()?.with_file_name("latch");
    path.exists().then_some(path)
}

/// Starts `latch tray` for the home (`--wait`: it serves once this process lets go), in a
/// process group of its own so that it outlives the window and a terminal's Ctrl-C.
fn start_tray(wait: bool) -> bool {
    use std::os::unix::process::CommandExt as _;
    let Some(latch) = latch_binary() else {
        return false;
    };
    let mut command = std::process::Command::new(latch);
    command.arg("tray");
    if wait {
        command.arg("--wait");
    }
    command
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .process_group(0);
    match command.spawn() {
        Ok(mut child) => {
            // Reaped if it ends while the window is open (Quit in its menu).
            std::thread::spawn(move || child.wait());
            true
        }
        Err(err) => {
            eprintln!("latch-desktop: cannot start the tray: {err}");
            false
        }
    }
}

/// Starts the tray and waits (bounded) until it serves the home.
async fn tray_serves(home: &Home) -> bool {
    if !start_tray(false) {
        return false;
    }
    let deadline = tokio::time::Instant::now() + TRAY_START;
    while tokio::time::Instant::now() < deadline {
        if serving::serving(home).is_some() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

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
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
                stamp = desktop.home().config_stamp();
            }
        }
    };
    // One proxy and one scheduler per home, which the tray keeps while windows come and go:
    // it is started when nobody serves. Beside a running `latch serve` (or a tray) the app
    // shows who serves (the status says) and takes over when it stops.
    let home = desktop.home().clone();
    if serving::serving(&home).is_none() && !tray_serves(&home).await {
        tracing::info!("no tray: the window serves the home itself");
    }
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
    window::asked();
    // Autostart: become the tray, without loading a webview at all.
    if std::env::args().any(|a| a == TRAY_ONLY) {
        if let Some(latch) = latch_binary() {
            use std::os::unix::process::CommandExt as _;
            let err = std::process::Command::new(latch).arg("tray").exec();
            eprintln!("latch-desktop: cannot start the tray ({err}); opening the window");
        }
    }
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
        // First, so that a second launch only focuses this window.
        .plugin(tauri_plugin_single_instance::init(|app, _args, _cwd| {
            window::show_main(app);
        }))
        // Started at login: to the tray (`latch tray`), without a window.
        .plugin(tauri_plugin_autostart::init(
            MacosLauncher::LaunchAgent,
            Some(vec![TRAY_ONLY]),
        ))
        .manage(Arc::clone(&desktop))
        .setup(move |app| {
            tauri::async_runtime::spawn(serve(Arc::clone(&desktop)));
            status_watch::start(app.handle().clone(), Arc::clone(&desktop));
            window::build_main(app.handle())?;
            Ok(())
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
            commands::close_window,
        ])
        .build(tauri::generate_context!());
    match result {
        Ok(app) => app.run(|app, event| {
            // The window closed and the process ends. If it served the home (it took over
            // from `latch serve`), a tray takes over as it lets go.
            if let tauri::RunEvent::Exit = event {
                let serves_here = app
                    .try_state::<Arc<Desktop>>()
                    .is_some_and(|desktop| desktop.serves_here());
                if serves_here {
                    start_tray(true);
                }
            }
        }),
        Err(err) => {
            eprintln!("latch-desktop: {err}");
            std::process::exit(1);
        }
    }
}

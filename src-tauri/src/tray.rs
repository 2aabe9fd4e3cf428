//! The tray icon: its colour is the worst connector state; its menu lists every connector's
//! state and offers Open Latch, Pause proxy and Quit.

use latch_core::health::attention::Overall;
use latch_core::health::status::StatusReport;
use tauri::image::Image;
use tauri::menu::{CheckMenuItem, Menu, MenuItem, PredefinedMenuItem};
use tauri::tray::TrayIconBuilder;
use tauri::{AppHandle, Manager, Runtime};

use crate::desktop::Desktop;

const TRAY_ID: &str = "latch";

fn icon(overall: Overall) -> tauri::Result<Image<'static>> {
    let bytes: &'static [u8] = match overall {
        Overall::Idle => include_bytes!("../../icons/tray-idle.png"),
        Overall::Ok => include_bytes!("../../icons/tray-ok.png"),
        Overall::Warning => include_bytes!("../../icons/tray-warning.png"),
        Overall::Error => include_bytes!("../../icons/tray-error.png"),
    };
    Image::from_bytes(bytes)
}

fn tooltip(overall: Overall) -> &'static str {
    match overall {
        Overall::Idle => "Latch: no connectors yet",
        Overall::Ok => "Latch: all connectors ready",
        Overall::Warning => "Latch: a connector waits for you",
        Overall::Error => "Latch: a connector needs you",
    }
}

fn menu<R: Runtime>(
    app: &AppHandle<R>,
    report: Option<&StatusReport>,
    paused: bool,
) -> tauri::Result<Menu<R>> {
    let menu = Menu::new(app)?;
    match report {
        Some(report) if !report.connectors.is_empty() => {
            for c in &report.connectors {
                let label = format!("{} — {}", c.name, c.state.as_str().replace('_', " "));
                menu.append(&MenuItem::with_id(
                    app,
                    format!("connector:{}", c.name),
                    label,
                    false,
                    None::<&str>,
                )?)?;
            }
        }
        _ => menu.append(&MenuItem::with_id(
            app,
            "connector:none",
            "No connectors yet",
            false,
            None::<&str>,
        )?)?,
    }
    menu.append(&PredefinedMenuItem::separator(app)?)?;
    menu.append(&MenuItem::with_id(
        app,
        "open",
        "Open Latch",
        true,
        None::<&str>,
    )?)?;
    menu.append(&CheckMenuItem::with_id(
        app,
        "pause",
        "Pause proxy",
        true,
        paused,
        None::<&str>,
    )?)?;
    menu.append(&PredefinedMenuItem::separator(app)?)?;
    menu.append(&MenuItem::with_id(
        app,
        "quit",
        "Quit Latch",
        true,
        None::<&str>,
    )?)?;
    Ok(menu)
}

/// Shows and focuses the main window (tray "Open Latch", a second launch), building it again
/// when it was closed: a closed window is gone, webview and WebKit processes with it, so that
/// Latch idles light in the tray.
pub(crate) fn show_main<R: Runtime>(app: &AppHandle<R>) {
    if let Some(window) = app.get_webview_window("main") {
        let _ = window.unminimize();
        let _ = window.show();
        let _ = window.set_focus();
        return;
    }
    if let Err(err) = build_main(app) {
        eprintln!("latch-desktop: cannot open the window: {err}");
    }
}

/// Closes the main window to the tray: the webview and its WebKit processes go with it.
pub(crate) fn close_main<R: Runtime>(app: &AppHandle<R>) {
    if let Some(window) = app.get_webview_window("main") {
        let _ = window.destroy();
    }
}

/// When the window was last asked for: its first painted status is logged against it.
static ASKED_AT: std::sync::Mutex<Option<std::time::Instant>> = std::sync::Mutex::new(None);

/// The window painted its first status: how long after it was asked for (the figure
/// `make bench-desktop` reads; the first window counts from when the app started it).
pub(crate) fn painted() {
    let asked = ASKED_AT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take();
    if let Some(asked) = asked {
        tracing::info!(
            ms = asked.elapsed().as_millis() as u64,
            "the window painted its status"
        );
    }
}

/// Builds the main window from the app's configuration.
pub(crate) fn build_main<R: Runtime>(app: &AppHandle<R>) -> tauri::Result<()> {
    let Some(config) = app.config().app.windows.iter().find(|w| w.label == "main") else {
        return Ok(());
    };
    *ASKED_AT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(std::time::Instant::now());
    let window = tauri::WebviewWindowBuilder::from_config(app, config)?.build()?;
    let _ = window.set_focus();
    Ok(())
}

/// Creates the tray icon. Fails where the desktop has no tray (then closing the window quits).
pub(crate) fn create(app: &AppHandle) -> tauri::Result<()> {
    TrayIconBuilder::with_id(TRAY_ID)
        .icon(icon(Overall::Idle)?)
        .tooltip(tooltip(Overall::Idle))
        .menu(&menu(app, None, false)?)
        .show_menu_on_left_click(true)
        .on_menu_event(|app, event| match event.id.as_ref() {
            "open" => show_main(app),
            "pause" => {
                if let Some(desktop) = app.try_state::<std::sync::Arc<Desktop>>() {
                    let paused = desktop.proxy_view().paused;
                    desktop.set_proxy_paused(!paused);
                }
            }
            "quit" => app.exit(0),
            _ => {}
        })
        .build(app)?;
    Ok(())
}

/// Recolours the icon and rebuilds the menu after a status change.
pub(crate) fn update(app: &AppHandle, report: &StatusReport, overall: Overall, paused: bool) {
    let Some(tray) = app.tray_by_id(TRAY_ID) else {
        return;
    };
    if let Ok(image) = icon(overall) {
        let _ = tray.set_icon(Some(image));
    }
    let _ = tray.set_tooltip(Some(tooltip(overall)));
    if let Ok(menu) = menu(app, Some(report), paused) {
        let _ = tray.set_menu(Some(menu));
    }
}

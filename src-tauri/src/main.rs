//! Latch desktop app: a Tauri v2 shell. Commands are a few lines over `latch-core`; errors
//! reach the webview as codes; no command returns a secret (the core's secret type cannot be
//! serialized, so a DTO cannot carry one).

// Release builds on Windows should not open a console window.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

use std::sync::Arc;

use latch_core::home::Home;
use latch_core::status::StatusReport;
use latch_core::Latch;

/// What the webview receives when a command fails: a stable code and a human message.
#[derive(Debug, serde::Serialize)]
struct IpcError {
    code: &'static str,
    message: String,
}

impl From<latch_core::Error> for IpcError {
    fn from(err: latch_core::Error) -> Self {
        Self {
            code: err.code(),
            message: err.to_string(),
        }
    }
}

fn open_latch() -> Result<Latch, IpcError> {
    let home = Home::from_env()?;
    Ok(Latch::open(
        home,
        Arc::new(latch_keychain::Keychain::new()),
    )?)
}

/// The status of every provider and connector.
#[tauri::command]
fn status() -> Result<StatusReport, IpcError> {
    Ok(open_latch()?.status()?)
}

/// The proxy and the refresh scheduler run inside the app, as `latch serve` does for headless
/// use; the cross-process rules (one refresh per grant, file locks) hold if the CLI runs too.
async fn serve_in_background() {
    let latch = match open_latch() {
        Ok(latch) => latch,
        Err(err) => {
            eprintln!(
                "latch-desktop: not serving the proxy: {} ({})",
                err.message, err.code
            );
            return;
        }
    };
    let listen = latch.config().listen;
    match latch_proxy::start(&latch, listen).await {
        Ok(proxy) => {
            eprintln!("latch-desktop: proxy on http://{}", proxy.addr);
            latch_core::schedule::run(Arc::clone(proxy.grants())).await;
        }
        Err(err) => {
            // Another Latch (`latch serve`) may hold the port: keep grants alive anyway.
            eprintln!("latch-desktop: proxy not started: {err}");
            latch_core::schedule::run(latch.grants()).await;
        }
    }
}

fn main() {
    let result = tauri::Builder::default()
        .setup(|_app| {
            tauri::async_runtime::spawn(serve_in_background());
            Ok(())
        })
        .invoke_handler(tauri::generate_handler![status])
        .run(tauri::generate_context!());
    if let Err(err) = result {
        eprintln!("latch-desktop: {err}");
        std::process::exit(1);
    }
}

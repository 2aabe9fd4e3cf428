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

fn main() {
    let result = tauri::Builder::default()
        .invoke_handler(tauri::generate_handler![status])
        .run(tauri::generate_context!());
    if let Err(err) = result {
        eprintln!("latch-desktop: {err}");
        std::process::exit(1);
    }
}

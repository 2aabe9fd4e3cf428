//! The webview's commands: each parses its input, calls the core off the main thread and
//! returns a serializable view or an `IpcError`. No command returns an upstream token, refresh
//! token or client secret; the single exception to "no secret to the webview" is a newly created
//! local key, returned once so the person can copy it (only its hash is kept).

use std::sync::Arc;
use std::time::Duration;

use latch_core::app::audit::{AuditEntry, AuditQuery};
use latch_core::app::sign_in::{LoginOptions, LoginOutcome, LoginProgress};
use latch_core::app::{
    AddConnector, AddProvider, App, ConnectorAdded, ConnectorPreview, ConnectorRemoved,
    CredentialStored, LinkKeySource, LinkSetup, ProviderAdded,
};
use latch_core::credential::LogoutOutcome;
use latch_core::health::doctor::DoctorReport;
use latch_core::health::status::StatusReport;
use latch_core::local_key::{KeyPolicy, LocalKey};
use latch_core::ports::SystemBrowser;
use latch_core::provider::catalog::CatalogEntries;
use latch_core::secret::Secret;
use latch_core::ErrorCode;
use serde::{Deserialize, Serialize};
use tauri::{AppHandle, Emitter, Manager, State};
use tauri_plugin_autostart::ManagerExt;

use crate::desktop::{Desktop, ProxyView};
use crate::ipc_error::IpcError;

type Shared<'a> = State<'a, Arc<Desktop>>;

/// Runs core work on a blocking thread (keychain and SQLite calls block; the webview must not).
async fn off_main<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, IpcError> + Send + 'static,
) -> Result<T, IpcError> {
    tauri::async_runtime::spawn_blocking(work)
        .await
        .map_err(|e| IpcError::new("internal", e.to_string()))?
}

/// Runs an async core use case to completion on a blocking thread with its own small runtime
/// (the core's futures hold the store's lock guard and are not all `Send`).
fn run_async<T>(
    future: impl std::future::Future<Output = Result<T, IpcError>>,
) -> Result<T, IpcError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| IpcError::new("internal", e.to_string()))?
        .block_on(future)
}

#[tauri::command]
pub(crate) async fn status(desktop: Shared<'_>) -> Result<StatusReport, IpcError> {
    let desktop = Arc::clone(&desktop);
    off_main(move || Ok(desktop.open()?.status()?)).await
}

#[tauri::command]
pub(crate) async fn catalog(desktop: Shared<'_>) -> Result<CatalogEntries, IpcError> {
    let desktop = Arc::clone(&desktop);
    off_main(move || Ok(desktop.open()?.config().catalog.entries())).await
}

#[derive(Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS), ts(optional_fields = nullable))]
pub(crate) struct ProviderInput {
    name: String,
    preset: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    redirect_uri: Option<String>,
    #[serde(default)]
    base_url: Option<String>,
    /// An OAuth 1.0a application link with this consumer key (Latch makes its key pair).
    #[serde(default)]
    consumer_key: Option<String>,
    /// An MCP server's endpoint.
    #[serde(default)]
    mcp_url: Option<String>,
}

#[tauri::command]
pub(crate) async fn add_provider(
    desktop: Shared<'_>,
    input: ProviderInput,
) -> Result<ProviderAdded, IpcError> {
    let desktop = Arc::clone(&desktop);
    let added = off_main({
        let desktop = Arc::clone(&desktop);
        move || {
            let secret = input
                .client_secret
                .filter(|s| !s.trim().is_empty())
                .map(|s| Secret::new(s.trim().to_owned()));
            let request = AddProvider {
                name: input.name,
                preset: input.preset,
                client_id: input.client_id.filter(|s| !s.trim().is_empty()),
                redirect_uri: input.redirect_uri.filter(|s| !s.trim().is_empty()),
                base_url: input
                    .base_url
                    .map(|s| s.trim().to_owned())
                    .filter(|s| !s.is_empty()),
                ca_file: None,
                endpoints: latch_core::app::EndpointOverrides {
                    mcp_url: input
                        .mcp_url
                        .map(|s| s.trim().to_owned())
                        .filter(|s| !s.is_empty()),
                    ..Default::default()
                },
                link: input
                    .consumer_key
                    .map(|k| k.trim().to_owned())
                    .filter(|k| !k.is_empty())
                    .map(|consumer_key| LinkSetup {
                        consumer_key,
                        key: LinkKeySource::Keep,
                    }),
            };
            Ok(desktop.open()?.providers().add(request, secret)?)
        }
    })
    .await?;
    desktop.changed().await;
    Ok(added)
}

#[tauri::command]
pub(crate) async fn preview_connector(
    desktop: Shared<'_>,
    input: AddConnector,
) -> Result<ConnectorPreview, IpcError> {
    let desktop = Arc::clone(&desktop);
    off_main(move || Ok(desktop.open()?.connectors().preview(&input)?)).await
}

#[tauri::command]
pub(crate) async fn add_connector(
    desktop: Shared<'_>,
    input: AddConnector,
) -> Result<ConnectorAdded, IpcError> {
    let desktop = Arc::clone(&desktop);
    let added = off_main({
        let desktop = Arc::clone(&desktop);
        move || Ok(desktop.open()?.connectors().add(input)?)
    })
    .await?;
    desktop.changed().await;
    Ok(added)
}

#[tauri::command]
pub(crate) async fn remove_connector(
    desktop: Shared<'_>,
    name: String,
) -> Result<ConnectorRemoved, IpcError> {
    let desktop = Arc::clone(&desktop);
    let removed = off_main({
        let desktop = Arc::clone(&desktop);
        move || Ok(desktop.open()?.connectors().remove(&name)?)
    })
    .await?;
    desktop.changed().await;
    Ok(removed)
}

#[tauri::command]
pub(crate) async fn set_credential(
    desktop: Shared<'_>,
    connector: String,
    credential: String,
    expires: Option<String>,
) -> Result<CredentialStored, IpcError> {
    let expires_at = match expires.as_deref().map(str::trim).filter(|e| !e.is_empty()) {
        None => None,
        Some(text) => Some(latch_core::clock::parse_date_or_time(text).ok_or_else(|| {
            IpcError::new(
                ErrorCode::InvalidRequest.as_str(),
                format!("`{text}` is not a date: write it like 2027-03-01"),
            )
        })?),
    };
    let desktop = Arc::clone(&desktop);
    let stored = off_main({
        let desktop = Arc::clone(&desktop);
        move || {
            let secret = Secret::new(credential.trim().to_owned());
            drop(credential);
            let latch = desktop.open()?;
            run_async(async {
                Ok(latch
                    .connectors()
                    .set_credential(&connector, secret, expires_at)
                    .await?)
            })
        }
    })
    .await?;
    desktop.nudge();
    Ok(stored)
}

/// Tells the webview where the sign-in is, so it can offer the URL if no browser appeared.
struct SignInEvents {
    app: AppHandle,
    provider: String,
}

#[derive(Clone, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub(crate) struct SignInEvent<'a> {
    provider: &'a str,
    url: Option<&'a str>,
    opened_browser: bool,
    refused: Option<&'a str>,
}

impl LoginProgress for SignInEvents {
    fn authorize_url(&self, url: &str, opened_browser: bool) {
        let _ = self.app.emit(
            "sign-in",
            SignInEvent {
                provider: &self.provider,
                url: Some(url),
                opened_browser,
                refused: None,
            },
        );
    }

    fn refused_callback(&self, why: &str) {
        let _ = self.app.emit(
            "sign-in",
            SignInEvent {
                provider: &self.provider,
                url: None,
                opened_browser: true,
                refused: Some(why),
            },
        );
    }
}

/// The consent in the system browser (`$BROWSER` when set). Several fitting sites leave the
/// connector `site_unbound`; the card then offers the choice.
#[tauri::command]
pub(crate) async fn sign_in(
    app: AppHandle,
    desktop: Shared<'_>,
    provider: String,
    site: Option<String>,
) -> Result<LoginOutcome, IpcError> {
    let desktop = Arc::clone(&desktop);
    let outcome = off_main({
        let desktop = Arc::clone(&desktop);
        move || {
            let latch = desktop.open()?;
            let options = LoginOptions {
                provider: provider.clone(),
                open_browser: true,
                site: site.filter(|s| !s.trim().is_empty()),
                timeout: Duration::from_secs(300),
                pasted: Default::default(),
            };
            let progress = SignInEvents { app, provider };
            run_async(async {
                // Dropping the login future closes its callback listener: nothing is stored.
                tokio::select! {
                    outcome = latch_core::app::sign_in::login(
                        &latch,
                        &options,
                        &SystemBrowser,
                        &progress,
                        None,
                    ) => Ok(outcome?),
                    () = desktop.sign_in_cancel.notified() => Err(IpcError::new(
                        "sign_in_cancelled",
                        "sign-in cancelled; nothing was changed",
                    )),
                }
            })
        }
    })
    .await;
    desktop.changed().await;
    outcome
}

/// Stops waiting for the browser.
#[tauri::command]
pub(crate) fn cancel_sign_in(desktop: Shared<'_>) {
    desktop.sign_in_cancel.notify_waiters();
}

#[tauri::command]
pub(crate) async fn sign_out(
    desktop: Shared<'_>,
    provider: String,
) -> Result<LogoutOutcome, IpcError> {
    let desktop = Arc::clone(&desktop);
    let outcome = off_main({
        let desktop = Arc::clone(&desktop);
        move || {
            let credentials = desktop.open()?.credentials();
            run_async(async { Ok(credentials.logout(&provider).await?) })
        }
    })
    .await?;
    desktop.nudge();
    Ok(outcome)
}

#[tauri::command]
pub(crate) async fn refresh_connector(
    desktop: Shared<'_>,
    connector: String,
) -> Result<(), IpcError> {
    let desktop = Arc::clone(&desktop);
    let result = off_main({
        let desktop = Arc::clone(&desktop);
        move || {
            let credentials = desktop.open()?.credentials();
            run_async(async { Ok(credentials.refresh_connector(&connector).await?) })
        }
    })
    .await;
    desktop.nudge();
    result
}

#[tauri::command]
pub(crate) async fn bind_site(
    desktop: Shared<'_>,
    connector: String,
    site: String,
) -> Result<(), IpcError> {
    let desktop = Arc::clone(&desktop);
    off_main({
        let desktop = Arc::clone(&desktop);
        move || {
            Ok(desktop
                .open()?
                .connectors()
                .bind_site(&connector, site.trim())?)
        }
    })
    .await?;
    desktop.changed().await;
    Ok(())
}

#[tauri::command]
pub(crate) async fn keys(desktop: Shared<'_>) -> Result<Vec<LocalKey>, IpcError> {
    let desktop = Arc::clone(&desktop);
    off_main(move || Ok(desktop.open()?.keys().list()?)).await
}

#[derive(Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS), ts(optional_fields = nullable))]
pub(crate) struct KeyInput {
    name: String,
    /// What the key may do, as the core takes it.
    #[serde(flatten)]
    policy: KeyPolicy,
    ttl: Option<String>,
}

/// A new local key, shown once.
#[derive(Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub(crate) struct CreatedKey {
    key: String,
    local_key: LocalKey,
}

#[tauri::command]
pub(crate) async fn create_key(
    desktop: Shared<'_>,
    input: KeyInput,
) -> Result<CreatedKey, IpcError> {
    let desktop = Arc::clone(&desktop);
    off_main(move || {
        let ttl = match input.ttl.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(text) => Some(
                latch_core::local_key::parse_ttl(text)
                    .map_err(|message| IpcError::new("invalid_request", message))?,
            ),
        };
        let (key, local_key) =
            desktop
                .open()?
                .keys()
                .create(input.name.trim(), input.policy, ttl)?;
        Ok(CreatedKey {
            key: key.expose().to_owned(),
            local_key,
        })
    })
    .await
}

#[tauri::command]
pub(crate) async fn revoke_key(desktop: Shared<'_>, name: String) -> Result<(), IpcError> {
    let desktop = Arc::clone(&desktop);
    off_main(move || Ok(desktop.open()?.keys().revoke(&name)?)).await
}

#[derive(Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS), ts(optional_fields = nullable))]
pub(crate) struct AuditInput {
    #[cfg_attr(test, ts(type = "number"))]
    after_id: i64,
    since: Option<String>,
    key: Option<String>,
    connector: Option<String>,
    limit: u32,
}

#[tauri::command]
pub(crate) async fn audit(
    desktop: Shared<'_>,
    input: AuditInput,
) -> Result<Vec<AuditEntry>, IpcError> {
    let desktop = Arc::clone(&desktop);
    off_main(move || {
        Ok(desktop.open()?.audit(&AuditQuery {
            after_id: input.after_id,
            since: input.since,
            key: input.key.filter(|k| !k.is_empty()),
            connector: input.connector.filter(|c| !c.is_empty()),
            limit: input.limit,
        })?)
    })
    .await
}

fn run_doctor(latch: &App, probe: bool) -> Result<DoctorReport, IpcError> {
    let options = latch_core::health::doctor::DoctorOptions { offline: !probe };
    run_async(async { Ok(latch.doctor(options).await?) })
}

#[tauri::command]
pub(crate) async fn doctor(desktop: Shared<'_>, probe: bool) -> Result<DoctorReport, IpcError> {
    let desktop = Arc::clone(&desktop);
    off_main(move || run_doctor(&*desktop.open()?, probe)).await
}

/// Writes the admin report (self-contained HTML) to the Downloads folder; returns its path.
#[tauri::command]
pub(crate) async fn export_report(
    app: AppHandle,
    desktop: Shared<'_>,
    probe: bool,
) -> Result<String, IpcError> {
    let desktop = Arc::clone(&desktop);
    let folder = app
        .path()
        .download_dir()
        .or_else(|_| app.path().home_dir())
        .map_err(|e| IpcError::new("no_folder", format!("no folder to save the report in: {e}")))?;
    off_main(move || {
        let report = run_doctor(&*desktop.open()?, probe)?;
        let stamp = latch_core::now_rfc3339().replace([':', '-'], "");
        let path = folder.join(format!("latch-report-{stamp}.html"));
        std::fs::create_dir_all(&folder)
            .and_then(|()| std::fs::write(&path, latch_core::health::doctor::render_html(&report)))
            .map_err(|e| {
                IpcError::new(
                    "write_failed",
                    format!("cannot write {}: {e}", path.display()),
                )
            })?;
        Ok(path.display().to_string())
    })
    .await
}

#[tauri::command]
pub(crate) fn proxy(desktop: Shared<'_>) -> ProxyView {
    desktop.proxy_view()
}

#[tauri::command]
pub(crate) fn set_proxy_paused(desktop: Shared<'_>, paused: bool) -> Result<ProxyView, IpcError> {
    desktop.set_proxy_paused(paused)
}

/// Preferences kept by the OS rather than by App.
#[derive(Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub(crate) struct Settings {
    autostart: bool,
}

#[tauri::command]
pub(crate) fn settings(app: AppHandle) -> Settings {
    Settings {
        autostart: app.autolaunch().is_enabled().unwrap_or(false),
    }
}

/// Closes the window as its close button does (Ctrl+W): the process ends, the tray stays.
#[tauri::command]
pub(crate) fn close_window(window: tauri::WebviewWindow) {
    let _ = window.close();
}

/// The window painted its first status (logged with how long it took to appear).
#[tauri::command]
pub(crate) fn window_painted() {
    crate::window::painted();
}

#[tauri::command]
pub(crate) fn set_autostart(app: AppHandle, enabled: bool) -> Result<Settings, IpcError> {
    let launcher = app.autolaunch();
    let result = if enabled {
        launcher.enable()
    } else {
        launcher.disable()
    };
    result.map_err(|e| IpcError::new("autostart_failed", e.to_string()))?;
    Ok(settings(app))
}

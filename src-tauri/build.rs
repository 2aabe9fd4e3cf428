// The app's commands are declared here so that capabilities/default.json can grant each one
// by name (least privilege: the webview gets these and event listening, nothing else).
const COMMANDS: &[&str] = &[
    "status",
    "catalog",
    "add_provider",
    "preview_connector",
    "add_connector",
    "remove_connector",
    "set_credential",
    "sign_in",
    "cancel_sign_in",
    "sign_out",
    "refresh_connector",
    "bind_site",
    "keys",
    "create_key",
    "revoke_key",
    "audit",
    "doctor",
    "export_report",
    "proxy",
    "set_proxy_paused",
    "settings",
    "set_autostart",
];

fn main() {
    let attributes = tauri_build::Attributes::new()
        .app_manifest(tauri_build::AppManifest::new().commands(COMMANDS));
    if let Err(err) = tauri_build::try_build(attributes) {
        panic!("tauri build: {err:#}");
    }
}

// The app's commands, granted by name in capabilities/default.json (least privilege: the
// webview gets these and event listening, nothing else). One list, shared with the app.
include!("src/command_names.rs");

fn main() {
    let attributes = tauri_build::Attributes::new()
        .app_manifest(tauri_build::AppManifest::new().commands(COMMANDS));
    if let Err(err) = tauri_build::try_build(attributes) {
        panic!("tauri build: {err:#}");
    }
}

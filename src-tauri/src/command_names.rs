// The webview's commands, by name: the one list. build.rs grants each in the app manifest
// (capabilities/default.json), the IPC test writes them into ui/src/ipc/generated.ts (so the UI
// cannot invoke a name that does not exist) and checks main.rs registers exactly these.
pub(crate) const COMMANDS: &[&str] = &[
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
    "window_painted",
    "close_window",
];

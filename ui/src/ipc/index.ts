// The only module that imports @tauri-apps/*: everything else talks to the typed `Host`, so the
// UI runs against a mock host in unit and browser tests.
import { invoke as tauriInvoke } from "@tauri-apps/api/core";
import { listen } from "@tauri-apps/api/event";

import type { Command, Host, SignInEvent, StatusReport } from "./types";

/** Only the commands the app registers (generated from its command list) can be named. */
const invoke = <T>(command: Command, args?: Record<string, unknown>) => tauriInvoke<T>(command, args);

export type * from "./types";

export const tauriHost: Host = {
  status: () => invoke("status"),
  catalog: () => invoke("catalog"),
  addProvider: (input) => invoke("add_provider", { input }),
  previewConnector: (input) => invoke("preview_connector", { input }),
  addConnector: (input) => invoke("add_connector", { input }),
  removeConnector: (name) => invoke("remove_connector", { name }),
  setCredential: (connector, credential, expires) =>
    invoke("set_credential", { connector, credential, expires: expires ?? null }),
  signIn: (provider, site) => invoke("sign_in", { provider, site }),
  cancelSignIn: () => invoke("cancel_sign_in"),
  signOut: (provider) => invoke("sign_out", { provider }),
  refreshConnector: (connector) => invoke("refresh_connector", { connector }),
  bindSite: (connector, site) => invoke("bind_site", { connector, site }),
  keys: () => invoke("keys"),
  createKey: (input) => invoke("create_key", { input }),
  revokeKey: (name) => invoke("revoke_key", { name }),
  audit: (input) => invoke("audit", { input }),
  doctor: (probe) => invoke("doctor", { probe }),
  exportReport: (probe) => invoke("export_report", { probe }),
  proxy: () => invoke("proxy"),
  setProxyPaused: (paused) => invoke("set_proxy_paused", { paused }),
  settings: () => invoke("settings"),
  setAutostart: (enabled) => invoke("set_autostart", { enabled }),
  windowPainted: () => invoke("window_painted"),
  closeWindow: () => invoke("close_window"),
  onStatus: (handler) => listen<StatusReport>("status", (event) => handler(event.payload)),
  onSignIn: (handler) => listen<SignInEvent>("sign-in", (event) => handler(event.payload)),
};

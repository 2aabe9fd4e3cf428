import { mount } from "svelte";

import App from "./App.svelte";
import "./app.css";
import type { Host } from "./ipc/types";
import { applyTheme, storedTheme } from "./lib/theme";

// The desktop build talks to Tauri; `vite build --mode mock` builds the same UI over the mock
// host for the browser tests (the mock never ships in the desktop bundle).
async function host(): Promise<Host> {
  if (import.meta.env.MODE === "mock") {
    const { createMockHost } = await import("./ipc/mock");
    const seeded = new URLSearchParams(location.search).has("seeded");
    const mock = createMockHost({ seeded });
    (globalThis as { latchMock?: unknown }).latchMock = mock;
    return mock;
  }
  const { tauriHost } = await import("./ipc");
  return tauriHost;
}

applyTheme(storedTheme());
const target = document.getElementById("app");
if (target) {
  target.textContent = "";
  mount(App, { target, props: { host: await host() } });
}

// The window's shared state: the latest status, catalog and proxy view, plus the one error or
// notice on display. Views read it through Svelte context and call the host through `act`.

import type { CatalogEntries, Host, ProxyView, SignInEvent, StatusReport, Unlisten } from "../ipc";
import { errorOf } from "./present";

export type View = "connectors" | "keys" | "activity" | "health" | "settings";

export class AppState {
  report = $state<StatusReport | null>(null);
  catalog = $state<CatalogEntries | null>(null);
  proxy = $state<ProxyView | null>(null);
  error = $state<{ code: string; message: string } | null>(null);
  notice = $state<string | null>(null);
  signIn = $state<SignInEvent | null>(null);
  busy = $state<string | null>(null);
  view = $state<View>("connectors");
  now = $state(Date.now());
  loaded = $state(false);

  private unlisten: Unlisten[] = [];
  private clock: ReturnType<typeof setInterval> | undefined;

  constructor(readonly host: Host) {}

  async start(): Promise<void> {
    this.unlisten.push(
      await this.host.onStatus((report) => {
        this.report = report;
        // Who serves the home may have changed with it (the app took over from `latch serve`).
        void this.host.proxy().then((proxy) => (this.proxy = proxy));
      }),
    );
    this.unlisten.push(await this.host.onSignIn((event) => (this.signIn = event)));
    // Countdowns tick locally; status itself arrives as events.
    this.clock = setInterval(() => (this.now = Date.now()), 1000);
    await this.act("load", async () => {
      const [report, catalog, proxy] = await Promise.all([
        this.host.status(),
        this.host.catalog(),
        this.host.proxy(),
      ]);
      this.report = report;
      this.catalog = catalog;
      this.proxy = proxy;
    });
    this.loaded = true;
    // Two frames after the status is in the page, it has been painted: the app logs how long
    // the window took to appear (best effort).
    requestAnimationFrame(() => requestAnimationFrame(() => void this.host.windowPainted().catch(() => {})));
  }

  stop(): void {
    for (const unlisten of this.unlisten) unlisten();
    this.unlisten = [];
    clearInterval(this.clock);
  }

  async refreshStatus(): Promise<void> {
    this.report = await this.host.status();
  }

  /**
   * Runs a command: marks it busy, shows its error (by code and message) if it fails, and
   * re-reads the status afterwards. Returns undefined on failure.
   */
  async act<T>(what: string, work: () => Promise<T>, notice?: (result: T) => string): Promise<T | undefined> {
    this.busy = what;
    this.error = null;
    try {
      const result = await work();
      if (notice) this.notice = notice(result);
      if (what !== "load") await this.refreshStatus();
      return result;
    } catch (error: unknown) {
      this.error = errorOf(error);
      return undefined;
    } finally {
      this.busy = null;
    }
  }
}

/** The text of the file chosen in an `<input type=file>`, or null when none was. */
export async function readChosen(event: Event): Promise<string | null> {
  const file = (event.currentTarget as HTMLInputElement | null)?.files?.[0];
  return file ? await file.text() : null;
}

/** Copies text; the Clipboard API first, the old selection trick where it is not allowed. */
export async function copyText(text: string): Promise<boolean> {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    const area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.append(area);
    area.select();
    const ok = document.execCommand("copy");
    area.remove();
    return ok;
  }
}

// How status facts are shown: labels, tones, countdowns, scope chips and which actions a
// connector card offers. Pure functions, unit-tested without a DOM.

import type { AuthMode, ConnectorState, ConnectorStatus, ProviderStatus } from "../ipc";

export type Tone = "ok" | "warning" | "error" | "idle";

const LABELS: Record<ConnectorState, string> = {
  ok: "Ready",
  keychain_locked: "Keychain locked",
  keychain_unavailable: "No keychain",
  not_signed_in: "Not signed in",
  credential_missing: "No credential yet",
  needs_login: "Sign in again",
  credential_rejected: "Credential refused",
  expired: "Credential expired",
  needs_step_up: "Needs more permissions",
  refresh_failing: "Refresh failing",
  refresh_uncertain: "Refresh unanswered",
  site_unbound: "Choose a site",
  misconfigured: "Set-up problem",
};

/** How each auth mode is named to people. */
export const AUTH_LABELS: Record<AuthMode, string> = {
  user: "You, in the browser",
  service: "Service account (OAuth client)",
  "api-token": "API token",
  pat: "Personal access token",
  basic: "User name and password",
  "api-key": "API key",
  connect: "Connect app (as the app)",
  "connect-user": "Connect app (acting as a user)",
  "oauth1-2lo": "Application link, 2-legged (OAuth 1.0a)",
  none: "Anonymous (no credential)",
};

/** What the secret of an auth mode is called, for the field that takes it. */
export function secretLabel(auth: AuthMode): string | null {
  switch (auth) {
    case "service":
      return "Client secret";
    case "api-token":
      return "API token";
    case "pat":
      return "Personal access token";
    case "basic":
      return "Password";
    case "api-key":
      return "API key";
    case "connect":
    case "connect-user":
      return "Installation payload (JSON)";
    default:
      return null;
  }
}

/** Whether an auth mode's secret is a multi-line document rather than a single token. */
export function secretIsDocument(auth: AuthMode): boolean {
  return auth === "connect" || auth === "connect-user";
}

/** Whether a connector in this auth mode is bound to a site by its credential, not by a choice. */
export function siteFromCredential(auth: AuthMode): boolean {
  return secretIsDocument(auth);
}

/** A piece of a message: plain text, or `code`. */
export interface Piece {
  text: string;
  code: boolean;
}

/** Splits `text` at its backticks into plain and code pieces (an odd backtick stays text). */
export function codePieces(text: string): Piece[] {
  const parts = text.split("`");
  if (parts.length % 2 === 0) return [{ text, code: false }];
  return parts.map((part, i) => ({ text: part, code: i % 2 === 1 })).filter((p) => p.text !== "");
}

/** A message and its fix ("…\n  fix: …"), each in pieces. */
export function messageParts(text: string): { message: Piece[]; fix: Piece[] | null } {
  const at = text.search(/\n\s*fix:\s*/i);
  if (at < 0) return { message: codePieces(text.trim()), fix: null };
  const fix = text.slice(at).replace(/^\n\s*fix:\s*/i, "");
  return { message: codePieces(text.slice(0, at).trim()), fix: codePieces(fix.trim()) };
}

export function stateLabel(state: ConnectorState): string {
  return LABELS[state];
}

export function stateTone(state: ConnectorState): Tone {
  switch (state) {
    case "ok":
      return "ok";
    case "not_signed_in":
    case "site_unbound":
    case "credential_missing":
      return "warning";
    default:
      return "error";
  }
}

const TONE_RANK: Record<Tone, number> = { idle: 0, ok: 1, warning: 2, error: 3 };

/** A connector's tone: its state's, amber when it is fine now and will not be soon. */
export function connectorTone(connector: ConnectorStatus): Tone {
  const tone = stateTone(connector.state);
  return tone === "ok" && connector.attention ? "warning" : tone;
}

/** The worst tone across connectors (the tray's colour); `idle` when there are none. */
export function overallTone(connectors: readonly ConnectorStatus[]): Tone {
  let worst: Tone = "idle";
  for (const c of connectors) {
    const tone = connectorTone(c);
    if (TONE_RANK[tone] > TONE_RANK[worst]) worst = tone;
  }
  return worst;
}

function span(seconds: number): string {
  const s = Math.abs(Math.round(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, "0")} s`;
  if (s < 86_400) return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")} min`;
  return `${Math.floor(s / 86_400)} d`;
}

/** "expires in 59 min 12 s", "expired 3 min 00 s ago", or null when unknown. */
export function countdown(at: string | null | undefined, now: number): string | null {
  if (!at) return null;
  const when = Date.parse(at);
  if (Number.isNaN(when)) return null;
  const seconds = (when - now) / 1000;
  return seconds >= 0 ? `expires in ${span(seconds)}` : `expired ${span(seconds)} ago`;
}

/** "2 min 05 s ago", "just now", or null. */
export function ago(at: string | null | undefined, now: number): string | null {
  if (!at) return null;
  const when = Date.parse(at);
  if (Number.isNaN(when)) return null;
  const seconds = (now - when) / 1000;
  return seconds < 5 ? "just now" : `${span(seconds)} ago`;
}

export type ChipKind = "granted" | "missing" | "extra" | "requested";

export interface ScopeChip {
  scope: string;
  kind: ChipKind;
  /** Connectors that asked for it (empty for extra scopes nobody asked for). */
  askedBy: string[];
  /** Hover text: what the chip means and who asked. */
  title: string;
}

/**
 * A connector's scopes as chips: each required scope is granted, missing or (before any
 * sign-in) requested; scopes the grant holds that no connector asked for are extra.
 */
export function scopeChips(connector: ConnectorStatus): ScopeChip[] {
  const { required, requested, granted, missing, extra } = connector.scopes;
  const askedBy = (scope: string) => {
    const entry = requested.find((r) => r.scope === scope);
    if (!entry) return [];
    return entry.provider_default ? [...entry.requested_by, "the provider"] : entry.requested_by;
  };
  const chips: ScopeChip[] = required.map((scope) => {
    const by = askedBy(scope);
    const who = by.length ? `asked for by ${by.join(", ")}` : "required";
    if (missing.includes(scope)) return { scope, kind: "missing", askedBy: by, title: `Missing: ${who}; not granted` };
    if (granted === null) return { scope, kind: "requested", askedBy: by, title: `Requested: ${who}; not signed in yet` };
    return { scope, kind: "granted", askedBy: by, title: `Granted: ${who}` };
  });
  for (const scope of extra) {
    chips.push({ scope, kind: "extra", askedBy: [], title: "Extra: granted but no connector asks for it (least privilege)" });
  }
  return chips;
}

export type CardAction = "sign_in" | "reconsent" | "sign_out" | "refresh" | "set_credential" | "choose_site" | "copy_url";

/** The actions a connector card offers, most useful first. */
export function cardActions(connector: ConnectorStatus, provider: ProviderStatus | undefined): CardAction[] {
  const actions: CardAction[] = [];
  const signedIn = connector.grant !== null;
  if (connector.auth === "user") {
    if (connector.state === "not_signed_in" || connector.state === "needs_login") actions.push("sign_in");
    else if (connector.state === "needs_step_up") actions.push("reconsent");
    if (connector.state === "site_unbound") actions.push("choose_site");
    // An OAuth 1.0a link's token is not refreshed: it lives as long as the instance says.
    if (signedIn && connector.state !== "needs_login" && !provider?.link) actions.push("refresh");
    if (signedIn && connector.state !== "needs_step_up") actions.push("reconsent");
    if (signedIn || provider?.grant) actions.push("sign_out");
  } else if (connector.auth === "none" || connector.auth === "oauth1-2lo") {
    // Nothing of its own to store: anonymous, or its provider's link key.
  } else if (connector.state === "ok") {
    // Ready: the main thing to do is use it; replacing the credential comes after.
    actions.push("copy_url");
    if (connector.auth === "service" && signedIn) actions.push("refresh");
    actions.push("set_credential");
  } else {
    actions.push("set_credential");
    if (connector.state === "site_unbound") actions.push("choose_site");
    if (connector.auth === "service" && signedIn && connector.state !== "credential_rejected") actions.push("refresh");
  }
  actions.push("copy_url");
  return [...new Set(actions)];
}

export const ACTION_LABELS: Record<CardAction, string> = {
  sign_in: "Sign in",
  reconsent: "Re-consent",
  sign_out: "Sign out",
  refresh: "Refresh now",
  set_credential: "Set credential",
  choose_site: "Choose site",
  copy_url: "Copy proxy URL",
};

/** The URL a local tool calls for a connector. */
export function connectorUrl(proxyUrl: string | null, connector: string): string | null {
  return proxyUrl ? `${proxyUrl}/${connector}` : null;
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

export function formatLatency(us: number): string {
  return us < 1000 ? `${us} µs` : `${(us / 1000).toFixed(1)} ms`;
}

/** Turns what a command threw into words; the code is what the UI branches on. */
export function errorOf(error: unknown): { code: string; message: string } {
  if (typeof error === "object" && error !== null && "code" in error) {
    const e = error as { code: unknown; message?: unknown };
    return { code: String(e.code), message: typeof e.message === "string" ? e.message : String(e.code) };
  }
  return { code: "unknown", message: String(error) };
}

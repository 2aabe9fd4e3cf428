// The shapes the desktop app's commands return. They mirror the core's serde output (the
// status mirrors `latch status --json`, schema latch.status/v1; the health report mirrors
// `latch doctor --json`, latch.doctor/v1). Only `CreatedKey.key` holds a secret: a new local
// key, returned once so the person can copy it.

export type ConnectorState =
  | "ok"
  | "not_signed_in"
  | "credential_missing"
  | "needs_login"
  | "credential_rejected"
  | "expired"
  | "needs_step_up"
  | "refresh_failing"
  | "refresh_uncertain"
  | "site_unbound"
  | "misconfigured";

export type Vocabulary =
  | "atlassian"
  | "bitbucket"
  | "data-center"
  | "bitbucket-data-center"
  | "generic";

export type AuthMode = "user" | "service" | "api-token" | "pat" | "basic" | "api-key";
export type Severity = "info" | "warning" | "error";

export interface RequestedScope {
  scope: string;
  requested_by: string[];
  provider_default: boolean;
}

export interface Finding {
  code: string;
  severity: Severity;
  subject: string;
  message: string;
  fix: string;
}

export interface SiteStatus {
  name: string;
  url: string;
}

export interface GrantStatus {
  state: string;
  /** `user` (a person's consent) or `service` (a service account's credential). */
  kind: string;
  account_id: string | null;
  account_name: string | null;
  account_email: string | null;
  granted_scopes: string[];
  access_expires_at: string | null;
  /** When the person consented (the last sign-in). */
  obtained_at: string | null;
  refreshed_at: string | null;
  generation: number;
  last_error: string | null;
}

export interface ConnectorStatus {
  name: string;
  type: string;
  display_name: string;
  provider: string;
  auth: AuthMode;
  state: ConnectorState;
  site: string | null;
  scopes: {
    required: string[];
    requested: RequestedScope[];
    granted: string[] | null;
    missing: string[];
    extra: string[];
    /** How to get the missing scopes (Bitbucket: tick them on the OAuth consumer first). */
    fix: string | null;
  };
  grant: GrantStatus | null;
  /** The connector's own credential (service secret, API token, PAT, API key); never the secret. */
  credential: CredentialStatus | null;
  findings: Finding[];
}

export interface CredentialStatus {
  kind: "grant" | "stored";
  stored_at: string | null;
  expires_at: string | null;
  token_kind: "scoped" | "classic" | null;
  token_kind_pinned: boolean;
  last_check: "ok" | "rejected" | null;
  checked_at: string | null;
  last_error: string | null;
  scope_set: "classic" | "granular";
}

export interface ProviderStatus {
  name: string;
  preset: string;
  display_name: string;
  client_type: "confidential" | "public" | "none";
  client_id: string | null;
  client_secret: "stored" | "missing" | "not_needed";
  /** Whether a connector signs in as the person through this provider's OAuth app. */
  app_needed: boolean;
  redirect_uri: string | null;
  requested_scopes: RequestedScope[];
  requested_scope_string: string;
  grant: GrantStatus | null;
  /** The sites the grant reaches, one per site. */
  sites: SiteStatus[];
  findings: Finding[];
}

export interface StatusReport {
  schema: "latch.status/v1";
  home: { id: string; config_file: string; database: string; secret_store: string };
  providers: ProviderStatus[];
  connectors: ConnectorStatus[];
}

export interface PresetEntry {
  name: string;
  display_name: string;
  client_type: "confidential" | "public" | "none";
  default_redirect_uri: string | null;
  console_url: string | null;
  default_scopes: string[];
  /** Data Center: endpoints on the person's instance, `{base}` in `console_url`. */
  needs_base_url: boolean;
  vocabulary: Vocabulary;
}

export interface ConnectorEntry {
  name: string;
  display_name: string;
  provider: string;
  auth_modes: AuthMode[];
  upstream_scopes: string[];
  granular_scopes: string[] | null;
  api_base: string;
  needs_site: boolean;
  vocabulary: Vocabulary;
}

export interface CatalogEntries {
  providers: PresetEntry[];
  connectors: ConnectorEntry[];
}

export interface ProviderInput {
  name: string;
  preset: string | null;
  client_id: string | null;
  /** Pasted by the person; goes to the OS keychain and is never sent back. */
  client_secret: string | null;
  redirect_uri: string | null;
  /** The instance's URL, for Data Center presets. */
  base_url?: string | null;
}

export interface ProviderAdded {
  name: string;
  updated: boolean;
  secret_stored: boolean;
  redirect_uri: string | null;
  console_url: string | null;
}

export interface ConnectorInput {
  name: string;
  type: string | null;
  provider: string | null;
  auth: AuthMode | null;
  site: string | null;
  email: string | null;
  client_id: string | null;
  /** `basic`: the user name. */
  username?: string | null;
  /** `api-token`: where the token works; left out, Latch finds out. */
  token?: "scoped" | "classic" | null;
  region?: string | null;
}

export interface MergeDiff {
  added: string[];
  shared: string[];
}

export interface ConnectorPreview {
  name: string;
  type: string;
  provider: string;
  auth: AuthMode;
  diff: MergeDiff;
  requested: RequestedScope[];
  needs_step_up: boolean;
}

export interface ConnectorAdded {
  name: string;
  provider: string;
  diff: MergeDiff;
  requested: RequestedScope[];
  findings: Finding[];
  needs_step_up: boolean;
}

export interface ConnectorRemoved {
  name: string;
  provider: string;
  no_longer_requested: string[];
}

export interface CredentialStored {
  connector: string;
  auth: AuthMode;
  service_token: string | null;
  check: { result: "ok" | "rejected" | "unchecked"; detail: string };
  token_kind: "scoped" | "classic" | null;
  expires_at: string | null;
}

export interface LoginOutcome {
  provider: string;
  account: string | null;
  sites: string[];
  bound: [string, string][];
  unbound: string[];
  missing: string[];
  refresh_token: boolean;
}

export interface LogoutOutcome {
  provider: string;
  signed_in: boolean;
  revoked: { result: "revoked" | "unsupported" | "nothing_to_revoke" | "failed"; detail?: string };
  keychain_items_deleted: number;
}

export interface KeyPolicy {
  name: string;
  connectors: string[];
  read_only: boolean;
  /** null: any path; []: none (stored patterns that were ambiguous fail closed). */
  paths: string[] | null;
  expires_at: string | null;
  revoked_at: string | null;
  created_at: string;
}

export interface KeyInput {
  name: string;
  connectors: string[];
  read_only: boolean;
  paths: string[];
  /** 30m, 8h, 7d; null for no expiry. */
  ttl: string | null;
}

export interface CreatedKey {
  key: string;
  policy: KeyPolicy;
}

export interface AuditInput {
  after_id: number;
  since: string | null;
  key: string | null;
  connector: string | null;
  limit: number;
}

export interface AuditEntry {
  id: number;
  at: string;
  key: string | null;
  connector: string | null;
  method: string;
  path: string;
  status: number;
  bytes: number;
  latency_us: number;
  refreshed: boolean;
  /** 1, or a per-minute count of refusals that came before any key was known. */
  count: number;
  /** For counted refusals: the refusal code. */
  reason: string | null;
}

export interface ProbeResult {
  at: string;
  request: string;
  status: number | null;
  ok: boolean;
  latency_ms: number;
  error: string | null;
}

export interface ConnectorHealth {
  name: string;
  type: string;
  provider: string;
  auth: AuthMode;
  state: ConnectorState;
  account: string | null;
  site: string | null;
  required: string[];
  granted: string[] | null;
  missing: string[];
  extra: string[];
  access_expires_at: string | null;
  last_rotation: string | null;
  idle_days: number | null;
  inactivity_expires_at: string | null;
  absolute_expires_at: string | null;
  last_error: string | null;
  consecutive_failures: number;
  probe: ProbeResult | null;
}

export interface DoctorReport {
  schema: "latch.doctor/v1";
  generated_at: string;
  healthy: boolean;
  summary: { errors: number; warnings: number; infos: number };
  connectors: ConnectorHealth[];
  findings: Finding[];
}

export interface ProxyView {
  url: string | null;
  paused: boolean;
  error: string | null;
}

export interface Settings {
  autostart: boolean;
}

export interface SignInEvent {
  provider: string;
  url: string | null;
  opened_browser: boolean;
  refused: string | null;
}

/** Errors reach the UI as stable codes (switch on `code`); `message` is for people. */
export interface IpcError {
  code: string;
  message: string;
}

export type Unlisten = () => void;

/** Everything the UI may ask of the desktop app. `tauriHost` is the real one; tests use a mock. */
export interface Host {
  status(): Promise<StatusReport>;
  catalog(): Promise<CatalogEntries>;
  addProvider(input: ProviderInput): Promise<ProviderAdded>;
  previewConnector(input: ConnectorInput): Promise<ConnectorPreview>;
  addConnector(input: ConnectorInput): Promise<ConnectorAdded>;
  removeConnector(name: string): Promise<ConnectorRemoved>;
  /** `expires`: a date (`2027-03-01`) when the credential expires, if the person knows it. */
  setCredential(connector: string, credential: string, expires?: string | null): Promise<CredentialStored>;
  signIn(provider: string, site: string | null): Promise<LoginOutcome>;
  /** Stops a sign-in waiting for the browser; it then fails with `sign_in_cancelled`. */
  cancelSignIn(): Promise<void>;
  signOut(provider: string): Promise<LogoutOutcome>;
  refreshConnector(connector: string): Promise<void>;
  bindSite(connector: string, site: string): Promise<void>;
  keys(): Promise<KeyPolicy[]>;
  createKey(input: KeyInput): Promise<CreatedKey>;
  revokeKey(name: string): Promise<void>;
  audit(input: AuditInput): Promise<AuditEntry[]>;
  doctor(probe: boolean): Promise<DoctorReport>;
  exportReport(probe: boolean): Promise<string>;
  proxy(): Promise<ProxyView>;
  setProxyPaused(paused: boolean): Promise<ProxyView>;
  settings(): Promise<Settings>;
  setAutostart(enabled: boolean): Promise<Settings>;
  onStatus(handler: (report: StatusReport) => void): Promise<Unlisten>;
  onSignIn(handler: (event: SignInEvent) => void): Promise<Unlisten>;
}

// The shapes the desktop app's commands take and return are generated from the Rust types
// (`generated.ts`, by `make ipc-types`; `make test` fails when it is stale). The status mirrors
// `latch status --json` (latch.status/v1), the health report `latch doctor --json`
// (latch.doctor/v1). Only `CreatedKey.key` holds a secret: a new local key, returned once so
// the person can copy it. Errors reach the UI as stable codes (switch on `IpcError.code`).

export type * from "./generated";
export { COMMANDS } from "./generated";
import type {
  AuditEntry,
  AuditInput,
  CatalogEntries,
  ConnectorAdded,
  AddConnector,
  ConnectorPreview,
  ConnectorRemoved,
  CreatedKey,
  CredentialStored,
  DoctorReport,
  KeyInput,
  LocalKey,
  LoginOutcome,
  LogoutOutcome,
  ProviderAdded,
  ProviderInput,
  ProxyView,
  Settings,
  SignInEvent,
  StatusReport,
} from "./generated";

export type Unlisten = () => void;

/** Everything the UI may ask of the desktop app. `tauriHost` is the real one; tests use a mock. */
export interface Host {
  status(): Promise<StatusReport>;
  catalog(): Promise<CatalogEntries>;
  addProvider(input: ProviderInput): Promise<ProviderAdded>;
  previewConnector(input: AddConnector): Promise<ConnectorPreview>;
  addConnector(input: AddConnector): Promise<ConnectorAdded>;
  removeConnector(name: string): Promise<ConnectorRemoved>;
  /** `expires`: a date (`2027-03-01`) when the credential expires, if the person knows it. */
  setCredential(connector: string, credential: string, expires?: string | null): Promise<CredentialStored>;
  signIn(provider: string, site: string | null): Promise<LoginOutcome>;
  /** Stops a sign-in waiting for the browser; it then fails with `sign_in_cancelled`. */
  cancelSignIn(): Promise<void>;
  signOut(provider: string): Promise<LogoutOutcome>;
  refreshConnector(connector: string): Promise<void>;
  bindSite(connector: string, site: string): Promise<void>;
  keys(): Promise<LocalKey[]>;
  createKey(input: KeyInput): Promise<CreatedKey>;
  revokeKey(name: string): Promise<void>;
  audit(input: AuditInput): Promise<AuditEntry[]>;
  doctor(probe: boolean): Promise<DoctorReport>;
  exportReport(probe: boolean): Promise<string>;
  proxy(): Promise<ProxyView>;
  setProxyPaused(paused: boolean): Promise<ProxyView>;
  settings(): Promise<Settings>;
  setAutostart(enabled: boolean): Promise<Settings>;
  /** Called once, after the first frame with the status in it. */
  windowPainted(): Promise<void>;
  /** Closes the window (Ctrl+W), as its close button does. */
  closeWindow(): Promise<void>;
  onStatus(handler: (report: StatusReport) => void): Promise<Unlisten>;
  onSignIn(handler: (event: SignInEvent) => void): Promise<Unlisten>;
}

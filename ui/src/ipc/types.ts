// Mirrors `latch status --json` (schema latch.status/v1). No field can hold a secret: the core's
// secret type cannot be serialized.

export type ConnectorState =
  | "ok"
  | "not_signed_in"
  | "needs_login"
  | "needs_step_up"
  | "refresh_failing"
  | "site_unbound"
  | "misconfigured";

export interface RequestedScope {
  scope: string;
  requested_by: string[];
  provider_default: boolean;
}

export interface Finding {
  code: string;
  severity: "info" | "warning" | "error";
  subject: string;
  message: string;
  fix: string;
}

export interface ConnectorStatus {
  name: string;
  type: string;
  display_name: string;
  provider: string;
  auth: "user" | "service" | "api-token" | "pat" | "api-key";
  state: ConnectorState;
  site: string | null;
  scopes: {
    required: string[];
    requested: RequestedScope[];
    granted: string[] | null;
    missing: string[];
    extra: string[];
  };
  findings: Finding[];
}

export interface ProviderStatus {
  name: string;
  preset: string;
  display_name: string;
  client_id: string | null;
  client_secret: "stored" | "missing" | "not_needed";
  redirect_uri: string | null;
  requested_scopes: RequestedScope[];
  requested_scope_string: string;
  findings: Finding[];
}

export interface StatusReport {
  schema: "latch.status/v1";
  providers: ProviderStatus[];
  connectors: ConnectorStatus[];
}

/** Errors reach the UI as stable codes, never as strings to match on. */
export interface IpcError {
  code: string;
  message: string;
}

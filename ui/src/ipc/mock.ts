// An in-memory stand-in for the desktop app, typed by `Host`: Vitest and the browser tests
// (Playwright against the mock build) drive the UI through it. It follows the core's rules
// closely enough to be useful (scope merge with attribution, needs_step_up after adding a
// connector to a signed-in provider, keys shown once, audit ids) but it is not the core.

import type {
  AuditEntry,
  AuthMode,
  CatalogEntries,
  ConnectorState,
  ConnectorStatus,
  CreatedKey,
  GrantState,
  GrantStatus,
  Host,
  IpcError,
  LocalKey,
  ProviderStatus,
  ProxyView,
  RequestedScope,
  SignInEvent,
  StatusReport,
} from "./types";

export const mockCatalog: CatalogEntries = {
  providers: [
    {
      name: "atlassian",
      display_name: "Atlassian Cloud",
      client_type: "confidential",
      default_redirect_uri: "http://127.0.0.1:8734/callback",
      console_url: "https://developer.atlassian.com/console/myapps/",
      default_scopes: [],
      needs_base_url: false,
      vocabulary: "atlassian",
      oauth1: false,
      mcp: false,
      needs_mcp_url: false,
    },
    {
      name: "bitbucket",
      display_name: "Bitbucket Cloud",
      client_type: "confidential",
      default_redirect_uri: "http://127.0.0.1:8734/callback",
      console_url: "https://bitbucket.org/account/settings/",
      default_scopes: [],
      needs_base_url: false,
      vocabulary: "bitbucket",
      oauth1: false,
      mcp: false,
      needs_mcp_url: false,
    },
    {
      name: "jira-dc",
      display_name: "Jira Data Center",
      client_type: "confidential",
      default_redirect_uri: "http://127.0.0.1:8734/callback",
      console_url: "{base}/plugins/servlet/applinks/listApplicationLinks",
      default_scopes: [],
      needs_base_url: true,
      vocabulary: "data-center",
      oauth1: true,
      mcp: false,
      needs_mcp_url: false,
    },
    {
      name: "atlassian-mcp",
      display_name: "Atlassian remote MCP server",
      client_type: "public",
      default_redirect_uri: "http://127.0.0.1:8735/callback",
      console_url: null,
      default_scopes: [],
      needs_base_url: false,
      vocabulary: "generic",
      oauth1: false,
      mcp: true,
      needs_mcp_url: false,
    },
    {
      name: "opsgenie",
      display_name: "Opsgenie",
      client_type: "none",
      default_redirect_uri: null,
      console_url: null,
      default_scopes: [],
      needs_base_url: false,
      vocabulary: "generic",
      oauth1: false,
      mcp: false,
      needs_mcp_url: false,
    },
  ],
  connectors: [
    {
      name: "jira",
      display_name: "Jira",
      provider: "atlassian",
      auth_modes: ["user", "service", "api-token", "connect", "connect-user", "none"],
      upstream_scopes: ["read:me", "read:jira-user", "read:jira-work", "write:jira-work", "offline_access"],
      granular_scopes: null,
      api_base: "{api_base}/ex/jira/{cloud_id}",
      needs_site: true,
      vocabulary: "atlassian",
    },
    {
      name: "confluence",
      display_name: "Confluence",
      provider: "atlassian",
      auth_modes: ["user", "service", "api-token", "connect", "connect-user", "none"],
      upstream_scopes: [
        "read:me",
        "read:confluence-user",
        "read:confluence-space.summary",
        "read:confluence-content.all",
        "write:confluence-content",
        "offline_access",
      ],
      granular_scopes: null,
      api_base: "{api_base}/ex/confluence/{cloud_id}",
      needs_site: true,
      vocabulary: "atlassian",
    },
    {
      name: "bitbucket",
      display_name: "Bitbucket",
      provider: "bitbucket",
      auth_modes: ["user", "service", "api-token"],
      upstream_scopes: ["account", "repository", "repository:write", "pullrequest", "pullrequest:write", "issue"],
      granular_scopes: null,
      api_base: "{api_base}/2.0",
      needs_site: false,
      vocabulary: "bitbucket",
    },
    {
      name: "mcp",
      display_name: "MCP server",
      provider: "atlassian-mcp",
      auth_modes: ["user", "api-token", "api-key"],
      upstream_scopes: ["offline_access"],
      granular_scopes: null,
      api_base: "{api_base}",
      needs_site: false,
      vocabulary: "generic",
    },
    {
      name: "opsgenie",
      display_name: "Opsgenie",
      provider: "opsgenie",
      auth_modes: ["api-key"],
      upstream_scopes: [],
      granular_scopes: null,
      api_base: "{api_base}",
      needs_site: false,
      vocabulary: "generic",
    },
  ],
};

interface MockProvider {
  name: string;
  preset: string;
  client_id: string | null;
  secret: boolean;
  redirect_uri: string | null;
  grant: GrantStatus | null;
  /** An OAuth 1.0a link's consumer key. */
  consumer_key?: string | null;
}

interface MockConnector {
  name: string;
  type: string;
  provider: string;
  auth: ConnectorStatus["auth"];
  site: string | null;
  credential: boolean;
  expires: string | null;
  /** Connect modes: the installation the payload described. */
  connect?: { app_key: string; base_url: string; acts_as: string | null };
  accountId?: string | null;
}

function fail(code: string, message: string): never {
  const error: IpcError = { code, message };
  throw error;
}

const NAME = /^[a-z][a-z0-9-]{0,31}$/;

function inFuture(seconds: number, now: () => number): string {
  return new Date(now() + seconds * 1000).toISOString().replace(/\.\d{3}Z$/, "Z");
}

export interface MockOptions {
  /** Clock, so tests can pin countdowns. */
  now?: () => number;
  /** Start with a signed-in Atlassian provider, Jira and Confluence (screenshots, demos). */
  seeded?: boolean;
  /** `waits`: sign-in never hears back from the browser until `cancelSignIn` (a closed tab). */
  browser?: "completes" | "waits";
}

/** The mock plus a few test hooks. */
export interface MockHost extends Host {
  /** Appends an audit entry as the proxy would. */
  recordRequest(entry: Omit<AuditEntry, "id" | "at" | "count" | "reason"> & Partial<Pick<AuditEntry, "count" | "reason">>): void;
  /** Changes a provider's grant state as the scheduler would (needs_login, refresh_failing). */
  setGrantState(provider: string, state: GrantState, lastError?: string): void;
  /** How many times each command ran. */
  calls: Record<string, number>;
}

export function createMockHost(options: MockOptions = {}): MockHost {
  const now = options.now ?? (() => Date.now());
  const providers: MockProvider[] = [];
  const connectors: MockConnector[] = [];
  const keys: LocalKey[] = [];
  const audit: AuditEntry[] = [];
  const statusHandlers = new Set<(report: StatusReport) => void>();
  const signInHandlers = new Set<(event: SignInEvent) => void>();
  const proxy: ProxyView = { url: "http://127.0.0.1:7391", paused: false, error: null };
  let autostart = false;
  const waitingSignIns = new Set<() => void>();
  // Off while seeding: the seeded sign-in completes at once.
  let browserWaits = false;
  const calls: Record<string, number> = {};
  const count = (name: string) => {
    calls[name] = (calls[name] ?? 0) + 1;
  };

  const spec = (type: string) => mockCatalog.connectors.find((c) => c.name === type);

  function requested(provider: string): RequestedScope[] {
    const entries: RequestedScope[] = [];
    for (const c of connectors) {
      if (c.provider !== provider || c.auth !== "user") continue;
      for (const scope of spec(c.type)?.upstream_scopes ?? []) {
        const entry = entries.find((e) => e.scope === scope);
        if (entry) entry.requested_by.push(c.name);
        else entries.push({ scope, requested_by: [c.name], provider_default: false });
      }
    }
    return entries;
  }

  function connectorStatus(c: MockConnector): ConnectorStatus {
    const s = spec(c.type);
    const provider = providers.find((p) => p.name === c.provider);
    const required = s?.upstream_scopes ?? [];
    const request = requested(c.provider);
    const grant = c.auth === "user" ? (provider?.grant ?? null) : null;
    const granted = grant ? grant.granted_scopes : null;
    const missing = granted ? required.filter((r) => !granted.includes(r)) : [];
    const wanted = new Set(request.map((r) => r.scope));
    const extra = granted ? granted.filter((g) => !wanted.has(g)) : [];
    let state: ConnectorState;
    const expired = c.expires !== null && Date.parse(c.expires) <= now();
    if (c.auth === "none" || c.auth === "oauth1-2lo") state = "ok";
    else if (c.auth !== "user") state = !c.credential ? "credential_missing" : expired ? "expired" : "ok";
    else if (!grant) state = "not_signed_in";
    else if (grant.state === "needs_login") state = "needs_login";
    else if (grant.state === "refresh_failing") state = "refresh_failing";
    else if (missing.length > 0) state = "needs_step_up";
    else if (s?.needs_site && !c.site) state = "site_unbound";
    else state = "ok";
    return {
      name: c.name,
      type: c.type,
      display_name: s?.display_name ?? c.type,
      provider: c.provider,
      auth: c.auth,
      state,
      site: c.site,
      scopes: {
        required,
        requested: request.filter((r) => required.includes(r.scope)),
        granted,
        missing,
        extra,
        fix:
          missing.length === 0
            ? null
            : c.provider === "bitbucket"
              ? `tick ${missing.join(" ")} in the OAuth consumer's permissions (Workspace settings → OAuth consumers → Edit), then sign in again: \`latch login ${c.provider}\``
              : `sign in again and keep ${missing.join(" ")} ticked: \`latch login ${c.provider}\``,
      },
      grant,
      credential:
        c.auth === "user"
          ? null
          : {
              kind: c.auth === "service" ? "grant" : c.auth === "none" ? "anonymous" : c.auth === "oauth1-2lo" ? "link" : "stored",
              stored_at: c.credential ? inFuture(0, now) : null,
              expires_at: c.expires,
              token_kind: c.auth === "api-token" && c.credential ? "scoped" : null,
              token_kind_pinned: false,
              last_check: c.credential ? "ok" : null,
              checked_at: null,
              last_error: null,
              scope_set: "classic",
              connect: c.connect ?? null,
              carries:
                c.auth === "service"
                  ? { scopes: ["read:jira-work"], permissions: null }
                  : { scopes: [], permissions: c.auth === "api-key" ? "the API key's own permissions" : "all of its user's permissions" },
            },
      findings: [],
      base_url: null,
      attention:
        c.expires !== null && Date.parse(c.expires) > now() && Date.parse(c.expires) - now() < 14 * 86_400_000
          ? {
              code: "expiring",
              at: c.expires,
              days_left: Math.floor((Date.parse(c.expires) - now()) / 86_400_000),
              message: `its credential expires soon: store a new one before then (\`latch credential set ${c.name}\`)`,
            }
          : null,
    };
  }

  function report(): StatusReport {
    // Like the core: a provider its connectors use without signing in needs no table.
    const implicit: MockProvider[] = [...new Set(connectors.map((c) => c.provider))]
      .filter((name) => !providers.some((p) => p.name === name))
      .map((name) => ({ name, preset: name, client_id: null, secret: false, redirect_uri: null, grant: null }));
    const providerStatus: ProviderStatus[] = providers.concat(implicit).map((p) => {
      const preset = mockCatalog.providers.find((x) => x.name === p.preset);
      const request = requested(p.name);
      return {
        name: p.name,
        preset: p.preset,
        display_name: preset?.display_name ?? p.preset,
        client_type: preset?.client_type ?? "confidential",
        client_id: p.client_id,
        client_secret:
          preset?.client_type === "confidential" && p.client_id !== null ? (p.secret ? "stored" : "missing") : "not_needed",
        app_needed: connectors.some((c) => c.provider === p.name && c.auth === "user"),
        link: p.consumer_key ? { consumer_key: p.consumer_key, public_key_fingerprint: "SHA256:mock" } : null,
        client_cert: null,
        redirect_uri: p.redirect_uri,
        requested_scopes: request,
        requested_scope_string: request.map((r) => r.scope).join(" "),
        grant: p.grant,
        sites: p.grant ? [{ name: "acme", url: "https://acme.atlassian.net" }] : [],
        findings: [],
      };
    });
    return {
      schema: "latch.status/v1",
      home: {
        id: "mock",
        config_file: "/mock/latch.toml",
        database: "/mock/latch.db",
        secret_store: "the OS keychain",
        keychain: "open",
        serving: { by: "the Latch tray", pid: 4242, addr: proxy.url?.replace("http://", "") ?? null, since: inFuture(0, now), paused: proxy.paused, reloads_on_sigusr1: true },
      },
      providers: providerStatus,
      connectors: connectors.map(connectorStatus),
    };
  }

  function changed() {
    const r = report();
    for (const handler of statusHandlers) handler(r);
  }

  function connectorInput(input: Parameters<Host["addConnector"]>[0]) {
    const type = input.type ?? input.name;
    const s = spec(type);
    if (!NAME.test(input.name)) fail("invalid_request", "a connector name is lower-case letters, digits and dashes");
    if (!s) fail("unknown_connector", `unknown connector \`${type}\``);
    if (connectors.some((c) => c.name === input.name))
      fail("already_exists", `connector \`${input.name}\` already exists`);
    const provider = input.provider ?? s.provider;
    const oauthless = mockCatalog.providers.find((p) => p.name === provider)?.client_type === "none";
    const auth = (input.auth ?? s.auth_modes[0] ?? "user") as AuthMode;
    if (!s.auth_modes.includes(auth)) fail("invalid_request", `connector type \`${type}\` does not support auth mode \`${auth}\``);
    // Only a connector that signs in as the person needs the provider's OAuth app.
    if (auth === "user" && !oauthless && !providers.some((p) => p.name === provider))
      fail("invalid_request", `connector \`${input.name}\` signs in as you through provider \`${provider}\`, which is not added yet`);
    if (auth === "api-token" && !input.email) fail("invalid_request", "an API token needs the account e-mail");
    if (auth === "service" && !input.client_id) fail("invalid_request", "a service account needs its client id");
    if (auth === "basic" && !input.username) fail("invalid_request", "basic needs the user name");
    return { type, s, provider, auth };
  }

  const host: MockHost = {
    calls,
    async status() {
      count("status");
      return report();
    },
    async catalog() {
      count("catalog");
      return structuredClone(mockCatalog);
    },
    async addProvider(input) {
      count("addProvider");
      const preset = mockCatalog.providers.find((p) => p.name === (input.preset ?? input.name));
      if (!preset) fail("unknown_provider", `unknown provider \`${input.preset ?? input.name}\``);
      if (!NAME.test(input.name)) fail("invalid_request", "a provider name is lower-case letters, digits and dashes");
      if (preset.needs_base_url && !input.base_url?.startsWith("https://"))
        fail("invalid_request", "provider has no `base_url`: its endpoints are on your instance");
      if (!input.client_id && !preset.needs_base_url && !preset.mcp)
        fail("invalid_request", "the client id is missing\n  fix: copy it from the developer console");
      const existing = providers.find((p) => p.name === input.name);
      const entry: MockProvider = existing ?? {
        name: input.name,
        preset: preset.name,
        client_id: null,
        secret: false,
        redirect_uri: null,
        grant: null,
      };
      const consumerKey = input.consumer_key?.trim() || null;
      if (consumerKey && !preset.oauth1) fail("invalid_request", `preset \`${preset.name}\` has no OAuth 1.0a application links`);
      entry.client_id = consumerKey ? null : (input.client_id ?? null);
      entry.consumer_key = consumerKey;
      entry.secret = entry.secret || Boolean(input.client_secret);
      entry.redirect_uri = input.redirect_uri ?? preset.default_redirect_uri;
      if (!existing) providers.push(entry);
      changed();
      const consoleUrl = preset.console_url?.replace("{base}", (input.base_url ?? "").replace(/\/+$/, "")) ?? null;
      return {
        name: input.name,
        updated: Boolean(existing),
        secret_stored: Boolean(input.client_secret),
        redirect_uri: consumerKey ? null : entry.redirect_uri,
        console_url: consoleUrl,
        has_app: Boolean(entry.client_id) || Boolean(consumerKey),
        connector_types: mockCatalog.connectors.filter((c) => c.provider === preset.name).map((c) => c.name),
        data_center: preset.needs_base_url,
        mcp: preset.mcp,
        link: consumerKey
          ? {
              provider: input.name,
              consumer_key: consumerKey,
              consumer_name: "Latch",
              public_key: "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAmock\n-----END PUBLIC KEY-----\n",
              fingerprint: "SHA256:mock",
              console_url: consoleUrl,
              key: existing?.consumer_key ? "kept" : "generated",
            }
          : null,
      };
    },
    async previewConnector(input) {
      count("previewConnector");
      const { type, s, provider, auth } = connectorInput(input);
      const before = requested(provider).map((r) => r.scope);
      const scopes = auth === "user" ? s.upstream_scopes : [];
      const grant = providers.find((p) => p.name === provider)?.grant;
      return {
        name: input.name,
        type,
        provider,
        auth,
        diff: {
          added: scopes.filter((x) => !before.includes(x)),
          shared: scopes.filter((x) => before.includes(x)),
        },
        requested: [
          ...requested(provider),
          ...scopes
            .filter((x) => !before.includes(x))
            .map((scope) => ({ scope, requested_by: [input.name], provider_default: false })),
        ],
        needs_step_up: Boolean(grant && scopes.some((x) => !grant.granted_scopes.includes(x))),
      };
    },
    async addConnector(input) {
      count("addConnector");
      const preview = await host.previewConnector(input);
      connectors.push({
        name: input.name,
        type: preview.type,
        provider: preview.provider,
        auth: preview.auth,
        site: input.site ?? null,
        credential: false,
        expires: null,
        accountId: input.account_id ?? null,
      });
      changed();
      return { ...preview, findings: [] };
    },
    async removeConnector(name) {
      count("removeConnector");
      const index = connectors.findIndex((c) => c.name === name);
      const c = connectors[index];
      if (!c) fail("unknown_connector", `unknown connector \`${name}\``);
      const before = requested(c.provider).map((r) => r.scope);
      connectors.splice(index, 1);
      const after = requested(c.provider).map((r) => r.scope);
      changed();
      return { name, provider: c.provider, no_longer_requested: before.filter((s) => !after.includes(s)) };
    },
    async setCredential(connector, credential, expires) {
      count("setCredential");
      const c = connectors.find((x) => x.name === connector);
      if (!c) fail("unknown_connector", `unknown connector \`${connector}\``);
      if (c.auth === "user") fail("invalid_request", `connector \`${connector}\` signs in through its provider`);
      if (!credential.trim()) fail("invalid_request", "the credential is empty");
      const when = expires ? Date.parse(expires) : null;
      if (when !== null && Number.isNaN(when)) fail("invalid_request", `\`${expires}\` is not a date: write it like 2027-03-01`);
      if (when !== null && when <= now()) fail("invalid_request", "the expiry is in the past");
      if (c.auth === "connect" || c.auth === "connect-user") {
        let installed: { key?: string; baseUrl?: string; sharedSecret?: string };
        try {
          installed = JSON.parse(credential);
        } catch {
          fail("invalid_request", "the installation payload is not JSON: paste the body of the installed callback");
        }
        if (!installed.key || !installed.baseUrl || !installed.sharedSecret)
          fail("invalid_request", "the installation payload needs key, baseUrl and sharedSecret");
        c.connect = { app_key: installed.key, base_url: installed.baseUrl, acts_as: c.accountId ?? null };
      }
      c.credential = true;
      c.expires = when === null ? null : new Date(when).toISOString().replace(/\.\d{3}Z$/, "Z");
      changed();
      return {
        connector,
        auth: c.auth,
        service_token: c.auth === "service" ? "ok" : null,
        check: { result: "ok", detail: "the health probe answered HTTP 200", unreachable: false },
        token_kind: c.auth === "api-token" ? "scoped" : null,
        expires_at: c.expires,
      };
    },
    async signIn(provider, site) {
      count("signIn");
      const p = providers.find((x) => x.name === provider);
      if (!p) fail("unknown_provider", `unknown provider \`${provider}\``);
      const url = `https://auth.example/authorize?client_id=${p.client_id}&state=mock`;
      for (const handler of signInHandlers) handler({ provider, url, opened_browser: true, refused: null });
      if (browserWaits) {
        await new Promise<void>((resolve) => waitingSignIns.add(resolve));
        fail("sign_in_cancelled", "sign-in cancelled; nothing was changed");
      }
      const scopes = requested(provider).map((r) => r.scope);
      p.grant = {
        state: "ok",
        kind: "user",
        account_id: "557058:mock",
        account_name: "Ada Lovelace",
        account_email: "ada@example.com",
        granted_scopes: scopes,
        access_expires_at: inFuture(3600, now),
        obtained_at: inFuture(0, now),
        refreshed_at: null,
        generation: (p.grant?.generation ?? 0) + 1,
        last_error: null,
      };
      const bound: [string, string][] = [];
      for (const c of connectors) {
        if (c.provider === provider && !c.site && spec(c.type)?.needs_site) {
          c.site = site ?? "acme";
          bound.push([c.name, c.site]);
        }
      }
      changed();
      return {
        provider,
        account: "Ada Lovelace (557058:mock)",
        sites: ["acme"],
        bound,
        unbound: [],
        missing: [],
        missing_fix: null,
        refresh_token: true,
        token_expires_at: null,
      };
    },
    async cancelSignIn() {
      count("cancelSignIn");
      for (const stop of waitingSignIns) stop();
      waitingSignIns.clear();
    },
    async signOut(provider) {
      count("signOut");
      const p = providers.find((x) => x.name === provider);
      const signedIn = Boolean(p?.grant);
      if (p) p.grant = null;
      changed();
      return {
        provider,
        signed_in: signedIn,
        revoked: { result: signedIn ? "unsupported" : "nothing_to_revoke" },
        keychain_items_deleted: signedIn ? 2 : 0,
      };
    },
    async refreshConnector(connector) {
      count("refreshConnector");
      const c = connectors.find((x) => x.name === connector);
      if (!c) fail("unknown_connector", `unknown connector \`${connector}\``);
      const grant = providers.find((p) => p.name === c.provider)?.grant;
      if (!grant) fail("not_signed_in", `\`${c.provider}\` is not signed in`);
      if (grant.state === "needs_login") fail("needs_login", `\`${c.provider}\` needs a new sign-in`);
      if (grant.state === "refresh_failing")
        fail("refresh_failing", `refreshing \`${c.provider}\` failed: ${grant.last_error ?? "unknown"}`);
      grant.access_expires_at = inFuture(3600, now);
      grant.refreshed_at = inFuture(0, now);
      grant.generation += 1;
      changed();
    },
    async bindSite(connector, site) {
      count("bindSite");
      const c = connectors.find((x) => x.name === connector);
      if (!c) fail("unknown_connector", `unknown connector \`${connector}\``);
      c.site = site;
      changed();
    },
    async keys() {
      count("keys");
      return structuredClone(keys);
    },
    async createKey(input): Promise<CreatedKey> {
      count("createKey");
      if (!NAME.test(input.name)) fail("invalid_request", "a key name is lower-case letters, digits and dashes");
      if (input.connectors.length === 0) fail("invalid_request", "a key must name at least one connector");
      if (keys.some((k) => k.name === input.name && !k.revoked_at))
        fail("already_exists", `a local key named \`${input.name}\` exists`);
      const policy: LocalKey = {
        name: input.name,
        connectors: input.connectors,
        read_only: input.read_only,
        paths: input.paths?.length ? input.paths : null,
        mcp_tools: input.mcp_tools?.length ? input.mcp_tools : null,
        expires_at: input.ttl ? inFuture(3600, now) : null,
        revoked_at: null,
        created_at: inFuture(0, now),
      };
      keys.push(policy);
      return { key: `latch_mock_${input.name}_${keys.length}`, local_key: structuredClone(policy) };
    },
    async revokeKey(name) {
      count("revokeKey");
      const key = keys.find((k) => k.name === name && !k.revoked_at);
      if (!key) fail("invalid_request", `there is no live local key named \`${name}\``);
      key.revoked_at = inFuture(0, now);
    },
    async audit(input) {
      count("audit");
      const rows = audit.filter(
        (e) =>
          e.id > input.after_id &&
          (!input.key || e.key === input.key) &&
          (!input.connector || e.connector === input.connector),
      );
      return structuredClone(input.limit ? rows.slice(-input.limit) : rows);
    },
    async doctor() {
      count("doctor");
      const r = report();
      const findings = r.connectors.flatMap((c) =>
        c.state === "ok"
          ? []
          : [
              {
                code: c.state,
                severity: c.state === "not_signed_in" || c.state === "site_unbound" ? ("warning" as const) : ("error" as const),
                subject: `connector:${c.name}`,
                message: `connector \`${c.name}\` is ${c.state.replaceAll("_", " ")}`,
                fix: `sign in to \`${c.provider}\``,
              },
            ],
      );
      return {
        schema: "latch.doctor/v1",
        generated_at: inFuture(0, now),
        home: r.home,
        healthy: !findings.some((f) => f.severity === "error"),
        summary: {
          errors: findings.filter((f) => f.severity === "error").length,
          warnings: findings.filter((f) => f.severity === "warning").length,
          infos: 0,
        },
        connectors: r.connectors.map((c) => ({
          name: c.name,
          type: c.type,
          provider: c.provider,
          auth: c.auth,
          oauth1: Boolean(providers.find((p) => p.name === c.provider)?.consumer_key),
          attention: c.attention,
          base_url: c.base_url,
          state: c.state,
          account: c.grant?.account_name ?? null,
          site: c.site,
          required: c.scopes.required,
          requested: c.scopes.requested,
          granted: c.scopes.granted,
          missing: c.scopes.missing,
          extra: c.scopes.extra,
          access_expires_at: c.grant?.access_expires_at ?? null,
          last_rotation: c.grant?.refreshed_at ?? c.grant?.obtained_at ?? null,
          idle_days: c.grant ? 0 : null,
          inactivity_expires_at: null,
          absolute_expires_at: null,
          last_error: c.grant?.last_error ?? null,
          consecutive_failures: 0,
          last_failure_at: null,
          credential: c.credential,
          diagnosis: null,
          probe: null,
        })),
        findings,
        providers: r.providers.map((p) => ({
          name: p.name,
          display_name: p.display_name,
          preset: p.preset,
          base_url: null,
          sites: p.sites.map((s) => s.url),
          callback: p.app_needed ? p.redirect_uri : null,
          secret: p.client_secret === "stored" ? "client secret in the OS keychain" : "no secret (no sign-in through it)",
          signed_in_as: p.grant?.account_name ?? null,
        })),
      };
    },
    async exportReport() {
      count("exportReport");
      return "/home/ada/Downloads/latch-report-20261123T120000Z.html";
    },
    async proxy() {
      count("proxy");
      return { ...proxy };
    },
    async setProxyPaused(paused) {
      count("setProxyPaused");
      proxy.paused = paused;
      return { ...proxy };
    },
    async settings() {
      count("settings");
      return { autostart };
    },
    async setAutostart(enabled) {
      count("setAutostart");
      autostart = enabled;
      return { autostart };
    },
    async windowPainted() {
      count("windowPainted");
    },
    async closeWindow() {
      count("closeWindow");
    },
    async onStatus(handler) {
      statusHandlers.add(handler);
      return () => statusHandlers.delete(handler);
    },
    async onSignIn(handler) {
      signInHandlers.add(handler);
      return () => signInHandlers.delete(handler);
    },
    recordRequest(partial) {
      const entry = { count: 1, reason: null, ...partial };
      const last = audit[audit.length - 1];
      audit.push({ ...entry, id: (last?.id ?? 0) + 1, at: inFuture(0, now) });
    },
    setGrantState(provider, state, lastError) {
      const grant = providers.find((p) => p.name === provider)?.grant;
      if (grant) {
        grant.state = state;
        grant.last_error = lastError ?? null;
        changed();
      }
    },
  };

  if (options.seeded) {
    providers.push({
      name: "atlassian",
      preset: "atlassian",
      client_id: "Xy12mockClientId",
      secret: true,
      redirect_uri: "http://127.0.0.1:8734/callback",
      grant: null,
    });
    connectors.push(
      { name: "jira", type: "jira", provider: "atlassian", auth: "user", site: null, credential: false, expires: null },
      { name: "confluence", type: "confluence", provider: "atlassian", auth: "user", site: null, credential: false, expires: null },
    );
    void host.signIn("atlassian", "acme");
    const grant = providers[0]?.grant;
    if (grant) grant.granted_scopes = [...grant.granted_scopes, "manage:jira-configuration"];
    connectors.push({ name: "opsgenie", type: "opsgenie", provider: "opsgenie", auth: "api-key", site: null, credential: false, expires: null });
    const base = { key: "ci-bot", connector: "jira", method: "GET", bytes: 1834, refreshed: false };
    host.recordRequest({ ...base, path: "/jira/rest/api/3/myself", status: 200, latency_us: 41_200 });
    host.recordRequest({ ...base, path: "/jira/rest/api/3/search/jql", status: 200, latency_us: 96_800, refreshed: true });
    host.recordRequest({ ...base, key: "agent", connector: "confluence", path: "/confluence/wiki/api/v2/pages", status: 200, latency_us: 120_300 });
    host.recordRequest({ ...base, key: "agent", method: "POST", path: "/jira/rest/api/3/issue", status: 403, latency_us: 300, bytes: 142 });
    for (const k of calls ? Object.keys(calls) : []) delete calls[k];
  }
  browserWaits = options.browser === "waits";
  return host;
}

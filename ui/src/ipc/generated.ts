// Generated from the Rust types by `make ipc-types` (src-tauri/src/ipc_types.rs); do not edit.
// `make test` fails when this file no longer matches them.

export type StatusReport = { 
/**
 * Always [`STATUS_SCHEMA`].
 */
schema: string, 
/**
 * Where this installation keeps its files.
 */
home: HomeStatus, 
/**
 * Providers in configuration order.
 */
providers: Array<ProviderStatus>, 
/**
 * Connectors in configuration order.
 */
connectors: Array<ConnectorStatus>, };

export type HomeStatus = { 
/**
 * Prefix of every keychain item of this installation.
 */
id: string, 
/**
 * latch.toml.
 */
config_file: string, 
/**
 * The SQLite database.
 */
database: string, 
/**
 * Where secrets live: the OS keychain, or an encrypted file (`[keychain] store`).
 */
secret_store: string, 
/**
 * Whether it can be read now: `open`, `locked`, `unreachable` (or `unknown`).
 */
keychain: KeychainState, 
/**
 * Who serves this home's proxy and refresh scheduler, when something does.
 */
serving: Serving | null, };

export type ProviderStatus = { 
/**
 * Name.
 */
name: string, 
/**
 * Catalog preset.
 */
preset: string, 
/**
 * Human name.
 */
display_name: string, 
/**
 * Client type.
 */
client_type: ClientType, 
/**
 * OAuth client id (public).
 */
client_id: string | null, 
/**
 * Client secret presence.
 */
client_secret: ClientSecretState, 
/**
 * Whether any connector signs in as the person through this provider's OAuth app (only
 * then are its client id and secret needed).
 */
app_needed: boolean, 
/**
 * The callback to register, byte for byte.
 */
redirect_uri: string | null, 
/**
 * The union of its connectors' scopes, in request order, with attribution.
 */
requested_scopes: Array<RequestedScope>, 
/**
 * The `scope=` value `latch login` sends.
 */
requested_scope_string: string, 
/**
 * Grant facts, when signed in.
 */
grant: GrantStatus | null, 
/**
 * The sites the grant reaches (one per cloud id), for choosing a connector's site.
 */
sites: Array<SiteStatus>, 
/**
 * Problems and fixes.
 */
findings: Array<Finding>, 
/**
 * An OAuth 1.0a application link: its consumer key and which key it must have.
 */
link: LinkStatus | null, 
/**
 * The client certificate presented to this provider (mTLS), if any.
 */
client_cert: ClientCertStatus | null, };

export type ClientSecretState = "missing" | "not_needed" | "stored";

export type SiteStatus = { 
/**
 * Site name (what `latch connector site` and the site field accept).
 */
name: string, 
/**
 * Site URL.
 */
url: string, };

export type GrantStatus = { 
/**
 * Grant state.
 */
state: GrantState, 
/**
 * Account id.
 */
account_id: string | null, 
/**
 * Account name.
 */
account_name: string | null, 
/**
 * Account e-mail.
 */
account_email: string | null, 
/**
 * Granted scopes.
 */
granted_scopes: Array<Scope>, 
/**
 * A person's consent (`user`) or a service account's credential (`service`).
 */
kind: GrantKind, 
/**
 * Access-token expiry.
 */
access_expires_at: string | null, 
/**
 * When the person consented (the last sign-in).
 */
obtained_at: string | null, 
/**
 * Last successful refresh.
 */
refreshed_at: string | null, 
/**
 * Rotation counter.
 */
generation: number, 
/**
 * Last error.
 */
last_error: string | null, };

export type ConnectorStatus = { 
/**
 * Name (the proxy route).
 */
name: string, 
/**
 * Catalog entry.
 */
type: string, 
/**
 * Human name.
 */
display_name: string, 
/**
 * Provider name.
 */
provider: string, 
/**
 * Auth mode.
 */
auth: AuthMode, 
/**
 * State.
 */
state: ConnectorState, 
/**
 * Bound site, as configured.
 */
site: string | null, 
/**
 * Scope comparison.
 */
scopes: ConnectorScopes, 
/**
 * The grant it draws on (its provider's sign-in, or its own service account), if any.
 */
grant: GrantStatus | null, 
/**
 * The connector's own credential (service secret, API token, PAT, API key), if it has one.
 */
credential: CredentialStatus | null, 
/**
 * Problems and fixes.
 */
findings: Array<Finding>, 
/**
 * Something that is fine now and will not be soon (`expiring`), when there is; the state
 * stays what it is until then.
 */
attention: ConnectorAttention | null, 
/**
 * A Data Center connector's instance (its provider's base URL): what a site is on Cloud.
 */
base_url: string | null, };

export type ConnectorState = "misconfigured" | "keychain_locked" | "keychain_unavailable" | "needs_login" | "credential_rejected" | "expired" | "refresh_failing" | "refresh_uncertain" | "needs_step_up" | "site_unbound" | "credential_missing" | "not_signed_in" | "ok";

export type CredentialStatus = { 
/**
 * `grant` (OAuth tokens Latch obtains) or `stored` (a secret sent as it is).
 */
kind: CredentialStorage, 
/**
 * When it was stored in the keychain.
 */
stored_at: string | null, 
/**
 * Its expiry, when the person recorded one (`latch credential set --expires`).
 */
expires_at: string | null, 
/**
 * For API tokens: `scoped` (gateway) or `classic` (site URL), pinned or found out.
 */
token_kind: ApiTokenKind | null, 
/**
 * Whether `token_kind` was pinned in latch.toml.
 */
token_kind_pinned: boolean, 
/**
 * The last check against the upstream: `ok` or `rejected`.
 */
last_check: CredentialState | null, 
/**
 * When it ran.
 */
checked_at: string | null, 
/**
 * Why it was refused.
 */
last_error: string | null, 
/**
 * Which scope set the connector requests (`classic` or `granular`).
 */
scope_set: ScopeSet, 
/**
 * For a Connect app: which app, on which site, acting as whom.
 */
connect: ConnectStatus | null, 
/**
 * What the credential carries: OAuth scopes, or whose permissions (a PAT has no scopes).
 */
carries: Carries, };

export type CredentialStorage = "grant" | "stored" | "link" | "anonymous";

export type ConnectStatus = { 
/**
 * The app's key.
 */
app_key: string, 
/**
 * The site it is installed on (`/wiki` for Confluence).
 */
base_url: string, 
/**
 * `connect-user`: the account it acts as.
 */
acts_as: string | null, };

export type ConnectorAttention = { 
/**
 * `expiring`.
 */
code: string, 
/**
 * When.
 */
at: string, 
/**
 * Whole days left.
 */
days_left: number, 
/**
 * In plain words, with what to do.
 */
message: string, };

export type Carries = { 
/**
 * Its scopes, when it has scopes Latch knows (a service account's granted ones).
 */
scopes: Array<Scope>, 
/**
 * Otherwise, in words: "all of jbot's permissions", "the scopes chosen when the token was
 * created".
 */
permissions: string | null, };

export type KeychainState = "open" | "locked" | "unreachable" | "unknown";

export type Serving = { 
/**
 * `latch serve`, `the Latch tray` or `the desktop app`.
 */
by: string, 
/**
 * Its process id.
 */
pid: number, 
/**
 * Where its proxy listens (none while its port is taken by another program).
 */
addr: string | null, 
/**
 * Since when.
 */
since: string, 
/**
 * Whether its proxy is paused (tools get 503 `proxy_paused`).
 */
paused: boolean, 
/**
 * Whether it looks at latch.toml and the pause at once on SIGUSR1 ([`nudge`]).
 */
reloads_on_sigusr1: boolean, };

export type GrantState = "ok" | "needs_login" | "refresh_failing" | "refresh_uncertain" | "credential_rejected";

export type GrantKind = "user" | "service";

export type CredentialState = "ok" | "rejected";

export type ApiTokenKind = "scoped" | "classic";

export type ConnectorScopes = { 
/**
 * What the connector needs.
 */
required: Array<Scope>, 
/**
 * Its required scopes as its provider requests them, with who asked for each.
 */
requested: Array<RequestedScope>, 
/**
 * What the grant holds; `null` before login.
 */
granted: Array<Scope> | null, 
/**
 * Required but not granted.
 */
missing: Array<Scope>, 
/**
 * Granted but requested by no connector (least privilege).
 */
extra: Array<Scope>, 
/**
 * How to get the missing scopes, when some are missing (sign in again; for a Bitbucket
 * OAuth consumer, tick its permissions first: it decides what is granted).
 */
fix: string | null, };

export type Scope = string;

export type ScopeList = Array<Scope>;

export type RequestedScope = { 
/**
 * The scope.
 */
scope: Scope, 
/**
 * The connectors that require it, in the order they asked.
 */
requested_by: Array<string>, 
/**
 * Whether the provider itself asks for it (its `default_scopes`).
 */
provider_default: boolean, };

export type ProviderKind = "atlassian" | "bitbucket" | "data-center" | "bitbucket-data-center" | "generic";

export type MergeDiff = { 
/**
 * Scopes the provider did not request before.
 */
added: Array<Scope>, 
/**
 * Scopes already requested (by another connector or the provider), now shared.
 */
shared: Array<Scope>, };

export type ScopeRequest = Array<RequestedScope>;

export type Finding = { 
/**
 * Stable machine-readable code (`missing_offline_access`, …). Documented in the README.
 */
code: string, 
/**
 * How bad it is.
 */
severity: Severity, 
/**
 * What it is about: `provider:NAME` or `connector:NAME`.
 */
subject: string, 
/**
 * What is wrong, in plain words.
 */
message: string, 
/**
 * What to do about it.
 */
fix: string, };

export type Severity = "info" | "warning" | "error";

export type ScopeSet = "classic" | "granular";

export type CatalogEntries = { 
/**
 * Provider presets.
 */
providers: Array<PresetEntry>, 
/**
 * Connector types.
 */
connectors: Array<ConnectorEntry>, };

export type PresetEntry = { 
/**
 * Preset name.
 */
name: string, 
/**
 * Human name.
 */
display_name: string, 
/**
 * Client type.
 */
client_type: ClientType, 
/**
 * The callback to register, unless the person chooses another.
 */
default_redirect_uri: string | null, 
/**
 * Where the app is registered.
 */
console_url: string | null, 
/**
 * Scopes it always requests.
 */
default_scopes: ScopeList, 
/**
 * Whether it needs an instance's base URL (`--base-url`; Data Center).
 */
needs_base_url: boolean, 
/**
 * The scope vocabulary it speaks.
 */
vocabulary: ProviderKind, 
/**
 * Whether its instances may use OAuth 1.0a application links (`--oauth1`).
 */
oauth1: boolean, 
/**
 * An MCP server's: no app to register (Latch registers itself at the first sign-in).
 */
mcp: boolean, 
/**
 * Whether it needs the MCP server's endpoint (`--mcp-url`; preset `mcp`).
 */
needs_mcp_url: boolean, };

export type ConnectorEntry = { 
/**
 * Catalog type.
 */
name: string, 
/**
 * Human name.
 */
display_name: string, 
/**
 * Provider it signs in through.
 */
provider: string, 
/**
 * Supported auth modes, the default first.
 */
auth_modes: Array<AuthMode>, 
/**
 * Scopes it needs.
 */
upstream_scopes: ScopeList, 
/**
 * The same in granular scopes, where the provider has them.
 */
granular_scopes: ScopeList | null, 
/**
 * API base template.
 */
api_base: string, 
/**
 * Whether it needs a site.
 */
needs_site: boolean, 
/**
 * The scope vocabulary of its provider.
 */
vocabulary: ProviderKind, };

export type AuthMode = "api-key" | "api-token" | "basic" | "connect" | "connect-user" | "none" | "oauth1-2lo" | "pat" | "service" | "user";

export type ClientType = "confidential" | "none" | "public";

export type ProviderAdded = { 
/**
 * Name.
 */
name: string, 
/**
 * Whether it replaced an existing provider.
 */
updated: boolean, 
/**
 * Whether a client secret was stored in the keychain.
 */
secret_stored: boolean, 
/**
 * The callback to register in the provider's console, byte for byte.
 */
redirect_uri: string | null, 
/**
 * Where to register it.
 */
console_url: string | null, 
/**
 * Whether an OAuth app (client id) is configured: without one, only service accounts and
 * stored secrets use the provider.
 */
has_app: boolean, 
/**
 * An OAuth 1.0a link: what to paste into the instance.
 */
link: LinkPublicKey | null, 
/**
 * The connector types that sign in through it (`jira-dc`, `jsm-dc` for a `jira-dc`
 * instance): what to add next.
 */
connector_types: Array<string>, 
/**
 * Whether it is a Data Center instance (its own base URL).
 */
data_center: boolean, 
/**
 * An MCP server's provider: Latch registers itself at the first sign-in.
 */
mcp: boolean, };

export type LinkPublicKey = { 
/**
 * The provider.
 */
provider: string, 
/**
 * Consumer key.
 */
consumer_key: string, 
/**
 * Consumer name (any; Latch suggests one).
 */
consumer_name: string, 
/**
 * The public key, PEM (`BEGIN PUBLIC KEY`).
 */
public_key: string, 
/**
 * Its fingerprint (`SHA256:…`).
 */
fingerprint: string, 
/**
 * Where the links are configured on the instance.
 */
console_url: string | null, 
/**
 * What happened to the key: `generated`, `kept`, `imported` or `rotated`.
 */
key: string, };

export type LinkStatus = { 
/**
 * The consumer key of the link's incoming authentication.
 */
consumer_key: string, 
/**
 * The fingerprint of the public key the link must have (`SHA256:…`), when the private
 * key is stored; `latch provider public-key NAME` prints the key itself.
 */
public_key_fingerprint: string | null, };

export type ClientCertStatus = { 
/**
 * The certificate file latch.toml names.
 */
path: string, 
/**
 * Its subject.
 */
subject: string, 
/**
 * When it ends.
 */
not_after: string, };

export type AddConnector = { 
/**
 * Name (the latch.toml table and the proxy route).
 */
name: string, 
/**
 * Catalog entry; defaults to the table name.
 */
type?: string | null, 
/**
 * Provider; defaults to the catalog entry's provider.
 */
provider?: string | null, 
/**
 * Auth mode; defaults to the catalog entry's first mode.
 */
auth?: string | null, 
/**
 * Site name, URL or cloud id.
 */
site?: string | null, 
/**
 * Account e-mail for `api-token` (the Basic user name; not a secret).
 */
email?: string | null, 
/**
 * Client id of a service account (`auth = "service"`); its secret is in the keychain.
 */
client_id?: string | null, 
/**
 * `auth = "service"`: scopes to request (default: none, the credential's own).
 */
scopes?: Array<string> | null, 
/**
 * `auth = "service"`: an `audience` to send with the token request.
 */
audience?: string | null, 
/**
 * `auth = "api-token"`: where the token works (`scoped`: the gateway; `classic`: the site
 * URL). Default: Latch finds out when the token is stored.
 */
token?: string | null, 
/**
 * `auth = "basic"`: the user name.
 */
username?: string | null, 
/**
 * `classic` (default) or `granular`: which of the connector's scope sets it requests.
 */
scope_set?: string | null, 
/**
 * A region of the provider (`eu` for Opsgenie's EU instance).
 */
region?: string | null, 
/**
 * `auth = "connect-user"`: the Atlassian account id the app acts as.
 */
account_id?: string | null, };

export type ConnectorSettings = { 
/**
 * Catalog entry; defaults to the table name.
 */
type?: string | null, 
/**
 * Provider; defaults to the catalog entry's provider.
 */
provider?: string | null, 
/**
 * Auth mode; defaults to the catalog entry's first mode.
 */
auth?: string | null, 
/**
 * Site name, URL or cloud id.
 */
site?: string | null, 
/**
 * Account e-mail for `api-token` (the Basic user name; not a secret).
 */
email?: string | null, 
/**
 * Client id of a service account (`auth = "service"`); its secret is in the keychain.
 */
client_id?: string | null, 
/**
 * `auth = "service"`: scopes to request (default: none, the credential's own).
 */
scopes?: Array<string> | null, 
/**
 * `auth = "service"`: an `audience` to send with the token request.
 */
audience?: string | null, 
/**
 * `auth = "api-token"`: where the token works (`scoped`: the gateway; `classic`: the site
 * URL). Default: Latch finds out when the token is stored.
 */
token?: string | null, 
/**
 * `auth = "basic"`: the user name.
 */
username?: string | null, 
/**
 * `classic` (default) or `granular`: which of the connector's scope sets it requests.
 */
scope_set?: string | null, 
/**
 * A region of the provider (`eu` for Opsgenie's EU instance).
 */
region?: string | null, 
/**
 * `auth = "connect-user"`: the Atlassian account id the app acts as.
 */
account_id?: string | null, };

export type ConnectorPreview = { 
/**
 * Connector name.
 */
name: string, 
/**
 * Catalog type.
 */
type: string, 
/**
 * Provider it signs in through.
 */
provider: string, 
/**
 * Auth mode it would use.
 */
auth: AuthMode, 
/**
 * Scopes the provider would newly request / already requests.
 */
diff: MergeDiff, 
/**
 * The provider's whole request after the merge, with attribution.
 */
requested: ScopeRequest, 
/**
 * Whether the current grant lacks its scopes (a re-consent would follow).
 */
needs_step_up: boolean, };

export type ConnectorAdded = { 
/**
 * Connector name.
 */
name: string, 
/**
 * Provider name.
 */
provider: string, 
/**
 * Its auth mode.
 */
auth: AuthMode, 
/**
 * Scopes newly requested / already requested and now shared.
 */
diff: MergeDiff, 
/**
 * The provider's whole request after the merge, with attribution.
 */
requested: ScopeRequest, 
/**
 * Lint findings for the provider after the merge.
 */
findings: Array<Finding>, 
/**
 * Whether the grant lacks the new scopes (sign in again to consent).
 */
needs_step_up: boolean, };

export type ConnectorRemoved = { 
/**
 * Connector name.
 */
name: string, 
/**
 * Provider name.
 */
provider: string, 
/**
 * Scopes no connector requests any more (the next consent asks for less).
 */
no_longer_requested: Array<Scope>, };

export type CredentialStored = { 
/**
 * Connector.
 */
connector: string, 
/**
 * Its auth mode.
 */
auth: AuthMode, 
/**
 * For service accounts: `ok`, or why the first token request failed.
 */
service_token: string | null, 
/**
 * What checking it found.
 */
check: CredentialCheck, 
/**
 * For API tokens: where it works (`scoped`: the gateway; `classic`: the site URL).
 */
token_kind: string | null, 
/**
 * The expiry the person gave.
 */
expires_at: string | null, };

export type CredentialCheck = { 
/**
 * Result.
 */
result: CheckResult, 
/**
 * What happened and, when refused, what to do.
 */
detail: string, 
/**
 * `unchecked` because nothing answered (network, TLS, timeout) — not because the set-up
 * is incomplete (no site yet).
 */
unreachable: boolean, };

export type CheckResult = "ok" | "rejected" | "unchecked";

export type LoginOutcome = { 
/**
 * Provider.
 */
provider: string, 
/**
 * Account display name and id, when the provider has a `/me`.
 */
account: string | null, 
/**
 * Sites the grant reaches.
 */
sites: Array<string>, 
/**
 * Connector → bound site.
 */
bound: Array<[string, string]>, 
/**
 * Connectors that need a site choice (`--site`).
 */
unbound: Array<string>, 
/**
 * Requested but not granted (the person unticked them, or the app lacks them).
 */
missing: Array<Scope>, 
/**
 * How to get the missing scopes (sign in again; on Bitbucket, tick them on the OAuth
 * consumer first: it decides what is granted).
 */
missing_fix: string | null, 
/**
 * Whether a refresh token was issued (an OAuth 1.0a link: a session handle).
 */
refresh_token: boolean, 
/**
 * When the token itself expires, when it lives long and nothing refreshes it (an OAuth
 * 1.0a link's `oauth_expires_in`).
 */
token_expires_at: string | null, };

export type LogoutOutcome = { 
/**
 * Provider.
 */
provider: string, 
/**
 * Whether there was a grant.
 */
signed_in: boolean, 
/**
 * What happened at the provider.
 */
revoked: Revocation, 
/**
 * How many keychain items were deleted.
 */
keychain_items_deleted: number, };

export type Revocation = { "result": "revoked" } | { "result": "unsupported" } | { "result": "nothing_to_revoke" } | { "result": "failed", "detail": string };

export type KeyPolicy = { 
/**
 * Connectors it may reach.
 */
connectors: Array<string>, 
/**
 * GET/HEAD/OPTIONS only.
 */
read_only: boolean, 
/**
 * Path patterns below the connector (`rest/api/3/*`): `None` = any path; `Some([])` = no
 * path (a key whose stored patterns were ambiguous, fail-closed).
 */
paths: Array<string> | null, 
/**
 * On MCP connectors: the tools it may list and call (`None` = all). Other `tools/call`s
 * get a JSON-RPC error; `tools/list` answers leave the others out.
 */
mcp_tools?: Array<string> | null, };

export type LocalKey = { 
/**
 * The key's name (shown in the audit log).
 */
name: string, 
/**
 * Expiry.
 */
expires_at: string | null, 
/**
 * Revocation time.
 */
revoked_at: string | null, 
/**
 * Creation time.
 */
created_at: string, 
/**
 * Connectors it may reach.
 */
connectors: Array<string>, 
/**
 * GET/HEAD/OPTIONS only.
 */
read_only: boolean, 
/**
 * Path patterns below the connector (`rest/api/3/*`): `None` = any path; `Some([])` = no
 * path (a key whose stored patterns were ambiguous, fail-closed).
 */
paths: Array<string> | null, 
/**
 * On MCP connectors: the tools it may list and call (`None` = all). Other `tools/call`s
 * get a JSON-RPC error; `tools/list` answers leave the others out.
 */
mcp_tools?: Array<string> | null, };

export type AuditEntry = { 
/**
 * Row id, increasing.
 */
id: number, 
/**
 * Time (refusals counted per minute: the minute).
 */
at: string, 
/**
 * Local key name, when the request carried a valid one.
 */
key: string | null, 
/**
 * Connector, when routed.
 */
connector: string | null, 
/**
 * HTTP method.
 */
method: string, 
/**
 * Path without its query string.
 */
path: string, 
/**
 * Status returned to the caller.
 */
status: number, 
/**
 * Response bytes.
 */
bytes: number, 
/**
 * Time to the response head, in microseconds.
 */
latency_us: number, 
/**
 * Whether Latch refreshed the upstream token for this request.
 */
refreshed: boolean, 
/**
 * How many requests the entry stands for: 1, or a per-minute count of refusals that came
 * before any key was known (then `reason` is their refusal code).
 */
count: number, 
/**
 * For counted refusals: the refusal code.
 */
reason: string | null, };

export type DoctorReport = { 
/**
 * Always [`DOCTOR_SCHEMA`].
 */
schema: string, 
/**
 * When the report was made.
 */
generated_at: string, 
/**
 * Where the installation lives.
 */
home: HomeStatus, 
/**
 * No error finding.
 */
healthy: boolean, 
/**
 * Counts per severity.
 */
summary: Summary, 
/**
 * One entry per connector.
 */
connectors: Array<ConnectorHealth>, 
/**
 * Every finding, worst first.
 */
findings: Array<Finding>, 
/**
 * One entry per provider: where it is, and where its secret lives.
 */
providers: Array<ProviderHealth>, };

export type Summary = { 
/**
 * Errors.
 */
errors: number, 
/**
 * Warnings.
 */
warnings: number, 
/**
 * Infos.
 */
infos: number, };

export type ConnectorHealth = { 
/**
 * Name.
 */
name: string, 
/**
 * Catalog entry.
 */
type: string, 
/**
 * Provider.
 */
provider: string, 
/**
 * Auth mode.
 */
auth: AuthMode, 
/**
 * State.
 */
state: ConnectorState, 
/**
 * Account (name and id).
 */
account: string | null, 
/**
 * Bound site.
 */
site: string | null, 
/**
 * Required scopes.
 */
required: Array<Scope>, 
/**
 * Requested scopes with attribution.
 */
requested: Array<RequestedScope>, 
/**
 * Granted scopes.
 */
granted: Array<Scope> | null, 
/**
 * Required but not granted.
 */
missing: Array<Scope>, 
/**
 * Granted but no connector needs them.
 */
extra: Array<Scope>, 
/**
 * Access-token expiry.
 */
access_expires_at: string | null, 
/**
 * Last refresh-token rotation (or the consent).
 */
last_rotation: string | null, 
/**
 * Days since the last rotation.
 */
idle_days: number | null, 
/**
 * When the refresh token dies if nothing uses it.
 */
inactivity_expires_at: string | null, 
/**
 * When the token family dies whatever happens (Atlassian: 365 days, if it still applies).
 */
absolute_expires_at: string | null, 
/**
 * Last error.
 */
last_error: string | null, 
/**
 * When the last refresh failed.
 */
last_failure_at: string | null, 
/**
 * Consecutive refresh failures.
 */
consecutive_failures: number, 
/**
 * The health probe: run now unless `--offline`, else the last stored result.
 */
probe: ProbeResult | null, 
/**
 * The connector's own credential (service account, API token, PAT, API key).
 */
credential: CredentialStatus | null, 
/**
 * What the doctor concluded about this connector now (a finding code), when it checked.
 */
diagnosis: string | null, 
/**
 * Whether it signs with its provider's OAuth 1.0a application link.
 */
oauth1: boolean, 
/**
 * What will need the person soon (`expiring`), as `latch status` says.
 */
attention: ConnectorAttention | null, 
/**
 * A Data Center connector's instance.
 */
base_url: string | null, };

export type ProbeResult = { 
/**
 * When it ran.
 */
at: string | null, 
/**
 * `GET /rest/api/3/myself` and the like.
 */
request: string, 
/**
 * HTTP status, when an answer came.
 */
status: number | null, 
/**
 * 2xx.
 */
ok: boolean, 
/**
 * Time to the answer.
 */
latency_ms: number, 
/**
 * Why it failed.
 */
error: string | null, 
/**
 * Who the probe answered as, when it says (`/myself`, `/user/current`, whoami): the
 * account of a credential that has no sign-in.
 */
account: string | null, };

export type ProviderHealth = { 
/**
 * Name.
 */
name: string, 
/**
 * Human name of its preset.
 */
display_name: string, 
/**
 * Preset.
 */
preset: string, 
/**
 * A Data Center instance's base URL.
 */
base_url: string | null, 
/**
 * The sites its sign-in reaches (Cloud).
 */
sites: Array<string>, 
/**
 * The callback to register, when a connector signs in through it.
 */
callback: string | null, 
/**
 * Where its secret lives, in words ("client secret in the OS keychain", "no secret").
 */
secret: string, 
/**
 * Who is signed in through it.
 */
signed_in_as: string | null, };

export type ProviderInput = { name: string, preset?: string | null, client_id?: string | null, client_secret?: string | null, redirect_uri?: string | null, base_url?: string | null, 
/**
 * An OAuth 1.0a application link with this consumer key (Latch makes its key pair).
 */
consumer_key?: string | null, 
/**
 * An MCP server's endpoint.
 */
mcp_url?: string | null, };

export type KeyInput = { name: string, ttl?: string | null, 
/**
 * Connectors it may reach.
 */
connectors: Array<string>, 
/**
 * GET/HEAD/OPTIONS only.
 */
read_only: boolean, 
/**
 * Path patterns below the connector (`rest/api/3/*`): `None` = any path; `Some([])` = no
 * path (a key whose stored patterns were ambiguous, fail-closed).
 */
paths: Array<string> | null, 
/**
 * On MCP connectors: the tools it may list and call (`None` = all). Other `tools/call`s
 * get a JSON-RPC error; `tools/list` answers leave the others out.
 */
mcp_tools?: Array<string> | null, };

export type CreatedKey = { key: string, local_key: LocalKey, };

export type AuditInput = { after_id: number, since?: string | null, key?: string | null, connector?: string | null, limit: number, };

export type Settings = { autostart: boolean, };

export type SignInEvent = { provider: string, url: string | null, opened_browser: boolean, refused: string | null, };

export type ProxyView = { 
/**
 * `http://127.0.0.1:PORT` while listening.
 */
url: string | null, 
/**
 * Refusing requests with 503 `proxy_paused`.
 */
paused: boolean, 
/**
 * Why it is not listening (port taken by `latch serve`, …).
 */
error: string | null, };

export type IpcError = { code: string, message: string, };

/** The commands the app registers and grants (src-tauri/src/command_names.rs). */
export const COMMANDS = [
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
] as const;

export type Command = (typeof COMMANDS)[number];

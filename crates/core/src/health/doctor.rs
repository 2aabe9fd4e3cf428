//! `latch doctor`: every check Latch can run, each finding explained with its fix, for people
//! (`latch doctor`), scripts (`--json`, schema `latch.doctor/v1`) and admins collecting reports
//! from many machines (`--report out.html`, self-contained, no secrets).
//!
//! The checks cover the troubleshooting table of the "one IdP, many connectors" seed (missing
//! `audience`, scopes the app was not granted, callback mismatch, stale rotated refresh token,
//! wrong provider mapping) plus scope lint, keychain reachability, clock skew, the proxy port,
//! inactivity and absolute expiry, and least privilege.

use std::collections::HashMap;
use std::time::Duration;

use serde::Serialize;

use crate::clock::{fmt_time, now};
use crate::config::Connector;
use crate::credential::UpstreamRefusal;
use crate::credential::{grant_of, Credentials};
use crate::credential::{CheckResult, CredentialKind};
use crate::error::GrantError;
use crate::finding::{Finding, Severity};
use crate::grant::GrantId;
use crate::health::status::{ConnectorState, CredentialStatus, StatusReport};
use crate::provider::catalog::{AuthMode, ClientType};
use crate::provider::scope::{RequestedScope, Scope};
use crate::provider::ProviderRules;
use latch_store::GrantRow;

/// The JSON schema of [`DoctorReport`].
pub const DOCTOR_SCHEMA: &str = "latch.doctor/v1";

/// Where a failed sign-in is remembered (code and message, secret-free) for the doctor.
pub fn last_sign_in_error_key(provider: &str) -> String {
    format!("last_login_error:{provider}")
}

/// Warn this many days before a refresh token's inactivity expiry.
const INACTIVITY_WARN_DAYS: i64 = 14;
/// Warn this many days before a stored credential's expiry (API tokens live at most a year).
const CREDENTIAL_WARN_DAYS: i64 = crate::health::status::EXPIRY_WARN_DAYS;
/// Warn this many days before a token family's absolute expiry.
const ABSOLUTE_WARN_DAYS: i64 = 30;
/// Clock skew worth a warning (token lifetimes are an hour; JWT checks allow a few minutes).
const SKEW_WARN_SECS: i64 = 120;

/// What `latch doctor` found.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct DoctorReport {
    /// Always [`DOCTOR_SCHEMA`].
    pub schema: &'static str,
    /// When the report was made.
    #[serde(with = "crate::clock::stamp")]
    #[cfg_attr(feature = "ts", ts(type = "string"))]
    pub generated_at: time::OffsetDateTime,
    /// Where the installation lives.
    pub home: crate::health::status::HomeStatus,
    /// No error finding.
    pub healthy: bool,
    /// Counts per severity.
    pub summary: Summary,
    /// One entry per connector.
    pub connectors: Vec<ConnectorHealth>,
    /// Every finding, worst first.
    pub findings: Vec<Finding>,
    /// One entry per provider: where it is, and where its secret lives.
    pub providers: Vec<ProviderHealth>,
}

/// A provider, as the report's reader needs it.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ProviderHealth {
    /// Name.
    pub name: String,
    /// Human name of its preset.
    pub display_name: String,
    /// Preset.
    pub preset: String,
    /// A Data Center instance's base URL.
    pub base_url: Option<String>,
    /// The sites its sign-in reaches (Cloud).
    pub sites: Vec<String>,
    /// The callback to register, when a connector signs in through it.
    pub callback: Option<String>,
    /// Where its secret lives, in words ("client secret in the OS keychain", "no secret").
    pub secret: String,
    /// Who is signed in through it.
    pub signed_in_as: Option<String>,
}

/// Counts per severity.
#[derive(Debug, Default, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Summary {
    /// Errors.
    pub errors: usize,
    /// Warnings.
    pub warnings: usize,
    /// Infos.
    pub infos: usize,
}

/// A connector's health.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ConnectorHealth {
    /// Name.
    pub name: String,
    /// Catalog entry.
    #[serde(rename = "type")]
    pub kind: String,
    /// Provider.
    pub provider: String,
    /// Auth mode.
    pub auth: AuthMode,
    /// State.
    pub state: ConnectorState,
    /// Account (name and id).
    pub account: Option<String>,
    /// Bound site.
    pub site: Option<String>,
    /// Required scopes.
    pub required: Vec<Scope>,
    /// Requested scopes with attribution.
    pub requested: Vec<RequestedScope>,
    /// Granted scopes.
    pub granted: Option<Vec<Scope>>,
    /// Required but not granted.
    pub missing: Vec<Scope>,
    /// Granted but no connector needs them.
    pub extra: Vec<Scope>,
    /// Access-token expiry.
    #[serde(with = "crate::clock::stamp::option")]
    #[cfg_attr(feature = "ts", ts(type = "string | null"))]
    pub access_expires_at: Option<time::OffsetDateTime>,
    /// Last refresh-token rotation (or the consent).
    #[serde(with = "crate::clock::stamp::option")]
    #[cfg_attr(feature = "ts", ts(type = "string | null"))]
    pub last_rotation: Option<time::OffsetDateTime>,
    /// Days since the last rotation.
    #[cfg_attr(feature = "ts", ts(type = "number | null"))]
    pub idle_days: Option<i64>,
    /// When the refresh token dies if nothing uses it.
    #[serde(with = "crate::clock::stamp::option")]
    #[cfg_attr(feature = "ts", ts(type = "string | null"))]
    pub inactivity_expires_at: Option<time::OffsetDateTime>,
    /// When the token family dies whatever happens (Atlassian: 365 days, if it still applies).
    #[serde(with = "crate::clock::stamp::option")]
    #[cfg_attr(feature = "ts", ts(type = "string | null"))]
    pub absolute_expires_at: Option<time::OffsetDateTime>,
    /// Last error.
    pub last_error: Option<String>,
    /// When the last refresh failed.
    #[serde(with = "crate::clock::stamp::option")]
    #[cfg_attr(feature = "ts", ts(type = "string | null"))]
    pub last_failure_at: Option<time::OffsetDateTime>,
    /// Consecutive refresh failures.
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub consecutive_failures: i64,
    /// The health probe: run now unless `--offline`, else the last stored result.
    pub probe: Option<ProbeResult>,
    /// The connector's own credential (service account, API token, PAT, API key).
    pub credential: Option<CredentialStatus>,
    /// What the doctor concluded about this connector now (a finding code), when it checked.
    pub diagnosis: Option<String>,
    /// Whether it signs with its provider's OAuth 1.0a application link.
    pub oauth1: bool,
    /// What will need the person soon (`expiring`), as `latch status` says.
    pub attention: Option<crate::health::status::ConnectorAttention>,
    /// A Data Center connector's instance.
    pub base_url: Option<String>,
}

/// How `latch doctor` runs.
#[derive(Clone, Copy, Debug, Default)]
pub struct DoctorOptions {
    /// Skip every network check: no refresh, no token request, no probe.
    pub offline: bool,
}

/// What a probe showed, beyond its status.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Diagnosis {
    Ok,
    /// Refused for a scope the token lacks ("scope does not match").
    ScopeMissing,
    /// 403 without scope text: the account lacks a product permission.
    PermissionMissing,
    /// 404: the site (or the path on it) does not exist for this credential.
    SiteWrong,
    /// The credential itself is refused (service account, API token, PAT, key).
    CredentialRejected(String),
    /// An API token works after all, on the other host (site URL vs gateway).
    TokenKindChanged(&'static str),
    /// An OAuth 1.0a link refused the signed probe (`oauth_problem`).
    LinkRefused(UpstreamRefusal),
    /// An anonymous connector's probe was refused for want of a credential: the API is
    /// reachable, anonymously.
    ReachableAnonymous(u16),
    /// Anything else.
    Failed(String),
}

impl Diagnosis {
    fn code(&self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::ScopeMissing => "scope_missing",
            Self::PermissionMissing => "permission_missing",
            Self::SiteWrong => "site_wrong",
            Self::CredentialRejected(_) => "credential_rejected",
            Self::TokenKindChanged(_) => "api_token_kind_changed",
            Self::LinkRefused(_) => "oauth1_rejected",
            Self::ReachableAnonymous(_) => "reachable_anonymous",
            Self::Failed(_) => "probe_failed",
        }
    }

    /// The finding code for a connector of `auth`: a refused credential is named by its kind.
    fn code_for(&self, auth: AuthMode) -> &'static str {
        match (self, auth) {
            (Self::CredentialRejected(_), AuthMode::Connect) => "connect_jwt_rejected",
            (Self::CredentialRejected(_), AuthMode::ConnectUser) => "impersonation_refused",
            _ => self.code(),
        }
    }
}

/// A health probe's outcome.
#[derive(Debug, Serialize, serde::Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ProbeResult {
    /// When it ran.
    #[serde(default, with = "crate::clock::stamp::option")]
    #[cfg_attr(feature = "ts", ts(type = "string | null"))]
    pub at: Option<time::OffsetDateTime>,
    /// `GET /rest/api/3/myself` and the like.
    pub request: String,
    /// HTTP status, when an answer came.
    pub status: Option<u16>,
    /// 2xx.
    pub ok: bool,
    /// Time to the answer.
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub latency_ms: u64,
    /// Why it failed.
    pub error: Option<String>,
    /// Who the probe answered as, when it says (`/myself`, `/user/current`, whoami): the
    /// account of a credential that has no sign-in.
    #[serde(default)]
    pub account: Option<String>,
}

/// The account a probe's answer names, in the product's own field.
fn account_in(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?.trim();
    let json: serde_json::Value = match serde_json::from_str(text) {
        Ok(json) => json,
        // Bitbucket Data Center's whoami answers the user name as text.
        Err(_) if !text.is_empty() && text.len() <= 255 && !text.contains(char::is_whitespace) => {
            return Some(text.to_owned())
        }
        Err(_) => return None,
    };
    [
        "displayName",
        "display_name",
        "emailAddress",
        "name",
        "username",
        "accountId",
    ]
    .iter()
    .find_map(|k| json.get(k).and_then(|v| v.as_str()))
    .filter(|v| !v.is_empty())
    .map(|v| v.chars().filter(|c| !c.is_control()).take(120).collect())
}

fn finding(code: &str, severity: Severity, subject: String, message: String, fix: &str) -> Finding {
    Finding::new(code, severity, subject, message, fix)
}

/// Adds a finding unless the same one is already there (several connectors of one provider
/// report the provider's problems once).
fn push_unique(findings: &mut Vec<Finding>, f: Finding) {
    if !findings.contains(&f) {
        findings.push(f);
    }
}

/// Runs every check. Unless `offline`, each credential is proven alive first (a refresh or a
/// token request — explicit, never throttled), then each connector's health probe is called
/// (one refresh on a 401), so that the report says what is true now, not what was last seen.
pub async fn run(
    credentials: &Credentials,
    status: impl FnOnce() -> crate::Result<StatusReport>,
    options: DoctorOptions,
) -> crate::Result<DoctorReport> {
    let grants = credentials.grants();
    let config = grants.config();
    // A locked (or missing) keychain fails every refresh and probe the same way: say that once
    // (the status carries the finding) instead of a probe failure per connector.
    let keychain = grants.store().keychain_state().await;
    let keychain_usable = !matches!(
        keychain,
        crate::ports::KeychainState::Locked | crate::ports::KeychainState::Unreachable
    );
    let probe = !options.offline && keychain_usable;
    // 1. Are the credentials alive? What each grant looked like before is kept to explain an
    //    `invalid_grant` (its body is the same for every cause).
    let mut before: HashMap<GrantId, GrantRow> = HashMap::new();
    let mut liveness: HashMap<GrantId, GrantError> = HashMap::new();
    if probe {
        for id in credentials.grant_ids() {
            let Ok(Some(row)) = grants.row(&id) else {
                continue;
            };
            before.insert(id.clone(), row);
            if let Err(err) = credentials.refresh_grant(&id).await {
                liveness.insert(id, err);
            }
        }
    }
    // 2. The probes, on what is alive.
    let mut diagnoses: HashMap<String, (ProbeResult, Diagnosis)> = HashMap::new();
    if probe {
        for c in &config.connectors {
            let dead = grant_of(c).is_some_and(|g| liveness.contains_key(&g));
            if dead {
                continue;
            }
            if let Some(outcome) = probe_connector(credentials, c).await {
                diagnoses.insert(c.name.clone(), outcome);
            }
        }
    }
    // 3. The status as it is now.
    let status: StatusReport = status()?;
    let mut findings: Vec<Finding> = Vec::new();
    for f in status.providers.iter().flat_map(|p| &p.findings) {
        push_unique(&mut findings, f.clone());
    }
    for f in status
        .connectors
        .iter()
        .flat_map(|c| &c.findings)
        .filter(|f| f.subject == "keychain")
    {
        push_unique(&mut findings, f.clone());
    }

    for provider in &config.providers {
        let subject = format!("provider:{}", provider.name);
        if let Some(cert) = &provider.client_cert {
            for f in client_cert_findings(provider, cert, &subject, grants, keychain_usable) {
                findings.push(f);
            }
        }
        let signs_in = config
            .connectors_of(&provider.name)
            .any(|c| c.auth == AuthMode::User);
        let profile = provider.rules();
        let lacks_required = profile
            .required_authorize_params()
            .iter()
            .any(|(k, v)| provider.spec.authorize_params.get(*k).map(String::as_str) != Some(*v));
        if signs_in && provider.spec.client_type != ClientType::None && lacks_required {
            findings.push(finding(
                "authorize_audience_missing",
                Severity::Error,
                subject.clone(),
                format!(
                    "provider `{}` signs in to Atlassian without `audience=api.atlassian.com`; \
                     Atlassian answers with a generic server_error page (\"There seems to be an \
                     issue with your identity provider\")",
                    provider.name
                ),
                "use `preset = \"atlassian\"`, or add `audience = \"api.atlassian.com\"` to the \
                 provider's authorize_params in its manifest",
            ));
        }
        if let Ok(Some(last)) = grants
            .store()
            .db()
            .meta(&last_sign_in_error_key(&provider.name))
        {
            let mut parts = last.splitn(3, '\t');
            let (code, at, message) = (
                parts.next().unwrap_or_default(),
                parts.next().unwrap_or_default(),
                parts.next().unwrap_or_default(),
            );
            let redirect = provider.redirect_uri.clone().unwrap_or_default();
            let (code_out, severity, fix) = match code {
                "consent_failed" => (
                    "consent_failed",
                    Severity::Error,
                    format!(
                        "the provider reported an error after the credentials: the request asks \
                         for a scope the app has not been granted in the developer console \
                         (Permissions tab), or `audience` is missing; requested: {}",
                        config.scope_request(&provider.name).scopes()
                    ),
                ),
                "login_timeout" => (
                    "callback_mismatch_suspected",
                    Severity::Warning,
                    format!(
                        "if the browser showed an error about the callback or redirect URL, \
                         register exactly this callback in the app's settings, byte for byte: \
                         {redirect}"
                    ),
                ),
                "consent_denied" => (
                    "consent_declined",
                    Severity::Warning,
                    "run `latch login` again and choose Accept; if you did accept, check the \
                     client secret (`latch provider secret NAME`)"
                        .to_owned(),
                ),
                "code_exchange_failed" => (
                    "code_exchange_failed",
                    Severity::Error,
                    format!(
                        "check the client secret (`latch provider secret {}`) and that the \
                         registered callback is exactly {redirect}",
                        provider.name
                    ),
                ),
                _ => (
                    "login_failed",
                    Severity::Warning,
                    "run `latch login` again".to_owned(),
                ),
            };
            let first_line = message.lines().next().unwrap_or_default();
            findings.push(finding(
                code_out,
                severity,
                subject.clone(),
                format!("the last sign-in ({at}) failed: {first_line}"),
                &fix,
            ));
        }
        // An MCP server's client is registered by Latch itself, with this callback.
        if signs_in && provider.spec.client_type != ClientType::None && !provider.spec.mcp_discovery
        {
            if let Some(redirect) = &provider.redirect_uri {
                findings.push(finding(
                    "callback_url",
                    Severity::Info,
                    subject.clone(),
                    format!(
                        "the callback registered for `{}` must be exactly {redirect}",
                        provider.name
                    ),
                    "compare it byte for byte with the app's settings in the developer console",
                ));
            }
        }
    }

    // Keychain reachable (and unlocked)? When its state said so already, the status's finding
    // stands; otherwise reading an item tells.
    let probe_key = grants.store().client_secret_key("doctor-probe");
    let read = if keychain_usable {
        grants.store().secret(probe_key).await
    } else {
        Ok(None)
    };
    if let Err(GrantError::Keychain(err)) = read {
        findings.push(finding(
            "keychain_unreachable",
            Severity::Error,
            "keychain".to_owned(),
            err.to_string()
                .lines()
                .next()
                .unwrap_or_default()
                .to_owned(),
            err.to_string()
                .split("fix: ")
                .nth(1)
                .unwrap_or("start or unlock the OS keychain"),
        ));
    }

    // The proxy's port.
    match std::net::TcpListener::bind(config.listen) {
        Ok(_) => {}
        Err(err) if err.kind() == std::io::ErrorKind::AddrInUse => {
            // Who serves this home says so in the home itself: asking the port would only
            // leave a refused request in the audit log.
            let ours = status
                .home
                .serving
                .as_ref()
                .filter(|s| s.addr.as_deref() == Some(config.listen.to_string().as_str()));
            findings.push(if let Some(serving) = ours {
                finding(
                    "proxy_running",
                    Severity::Info,
                    "proxy".to_owned(),
                    format!("this home is served {}", serving.describe()),
                    "nothing to do",
                )
            } else {
                finding(
                    "proxy_port_busy",
                    Severity::Warning,
                    "proxy".to_owned(),
                    format!("another program listens on {}, so `latch serve` cannot start", config.listen),
                    "stop it, or set another `[proxy] listen` in latch.toml (port 0 picks a free one)",
                )
            });
        }
        Err(_) => {}
    }

    // Clock skew against the first reachable token endpoint.
    if let Some((provider, url)) = config
        .providers
        .iter()
        .find_map(|p| Some((p.name.as_str(), p.spec.token_url.clone()?)))
    {
        if let Some(skew) = clock_skew(grants.http(Some(provider)), &url).await {
            if skew.abs() > SKEW_WARN_SECS {
                findings.push(finding(
                    "clock_skew",
                    Severity::Warning,
                    "clock".to_owned(),
                    format!(
                        "this machine's clock is {} seconds {} the identity provider's",
                        skew.abs(),
                        if skew > 0 { "ahead of" } else { "behind" }
                    ),
                    "turn on time synchronisation (NTP); token expiry and refresh timing depend on it",
                ));
            }
        }
    }

    let mut connectors = Vec::new();
    for (c, s) in config.connectors.iter().zip(&status.connectors) {
        let subject = format!("connector:{}", c.name);
        for f in &s.findings {
            push_unique(&mut findings, f.clone());
        }
        // Provider mapping: a connector's vocabulary must be its provider's.
        let expected = config.catalog.provider(&c.spec.provider).map(|p| p.kind);
        let actual = config.provider(&c.provider).map(|p| p.spec.kind);
        if expected.is_some() && actual.is_some() && expected != actual {
            findings.push(finding(
                "provider_mapping_wrong",
                Severity::Error,
                subject.clone(),
                format!(
                    "connector `{}` ({}) is attached to provider `{}`, which is not the kind of \
                     identity provider its product signs in with (`{}`)",
                    c.name, c.kind, c.provider, c.spec.provider
                ),
                "remove it and add it again with the right provider: `latch connector add NAME --provider PROVIDER`",
            ));
        }
        let grant = grant_of(c);
        let row = grant.as_ref().and_then(|g| grants.row(g).ok().flatten());
        let kind = CredentialKind::of(c);
        let provider_spec = config.provider(&c.provider).map(|p| &p.spec);
        match s.state {
            ConnectorState::NeedsLogin => push_unique(
                &mut findings,
                finding(
                    "needs_login",
                    Severity::Error,
                    format!("provider:{}", c.provider),
                    format!(
                        "the sign-in of `{}` is dead: the provider refuses its refresh token \
                     (invalid_grant). Likely: {}",
                        c.provider,
                        likely_reason(
                            grant.as_ref().and_then(|g| before.get(g)).or(row.as_ref()),
                            provider_spec,
                        )
                    ),
                    &format!(
                        "sign in again: `latch login {}`; keep `offline_access` in both the app's \
                     permissions and the connector's scopes",
                        c.provider
                    ),
                ),
            ),
            ConnectorState::CredentialRejected => {
                let why = grant
                    .as_ref()
                    .and_then(|g| liveness.get(g))
                    .map(ToString::to_string)
                    .or_else(|| row.as_ref().and_then(|r| r.last_error.clone()))
                    .or_else(|| s.credential.as_ref().and_then(|c| c.last_error.clone()))
                    .unwrap_or_default();
                let profile = config.rules_of(&c.provider);
                push_unique(
                    &mut findings,
                    credential_rejected(c, subject.clone(), &why, profile),
                );
            }
            ConnectorState::Expired => findings.push(finding(
                "credential_expired",
                Severity::Error,
                subject.clone(),
                format!(
                    "the {} of connector `{}` expired on {}",
                    credential_noun(c.auth),
                    c.name,
                    s.credential
                        .as_ref()
                        .and_then(|cr| cr.expires_at)
                        .map(fmt_time)
                        .unwrap_or_default()
                ),
                &credential_fix(c, config.rules_of(&c.provider)),
            )),
            ConnectorState::CredentialMissing => findings.push(finding(
                "credential_missing",
                Severity::Warning,
                subject.clone(),
                format!(
                    "connector `{}` has no {} stored yet",
                    c.name,
                    credential_noun(c.auth)
                ),
                &format!("store it: `latch credential set {}`", c.name),
            )),
            ConnectorState::NeedsStepUp => findings.push(finding(
                "needs_step_up",
                Severity::Error,
                subject.clone(),
                format!(
                    "connector `{}` lacks granted scopes: {}",
                    c.name,
                    s.scopes
                        .missing
                        .iter()
                        .map(Scope::as_str)
                        .collect::<Vec<_>>()
                        .join(" ")
                ),
                &config.rules_of(&c.provider).missing_scope_fix(
                    &c.provider,
                    &s.scopes
                        .missing
                        .iter()
                        .map(Scope::as_str)
                        .collect::<Vec<_>>()
                        .join(" "),
                ),
            )),
            ConnectorState::RefreshFailing | ConnectorState::RefreshUncertain => {
                findings.push(finding(
                    if s.state == ConnectorState::RefreshFailing {
                        "refresh_failing"
                    } else {
                        "refresh_uncertain"
                    },
                    Severity::Error,
                    subject.clone(),
                    format!(
                        "refreshing fails: {}",
                        row.as_ref()
                            .and_then(|r| r.last_error.clone())
                            .unwrap_or_default()
                    ),
                    "check the network and the provider's status; Latch retries on the next use",
                ))
            }
            ConnectorState::NotSignedIn => findings.push(finding(
                "not_signed_in",
                Severity::Warning,
                subject.clone(),
                format!("connector `{}` is not signed in yet", c.name),
                &format!("sign in: `latch login {}`", c.provider),
            )),
            ConnectorState::SiteUnbound => findings.push(finding(
                "site_unbound",
                Severity::Warning,
                subject.clone(),
                format!("connector `{}` is not bound to a site", c.name),
                &format!(
                    "choose one: `latch connector set {} --site NAME` (a name as in \
                     https://NAME.atlassian.net, a URL or a cloud id; no new consent needed)",
                    c.name
                ),
            )),
            _ => {}
        }
        if let Some(expires) = s.credential.as_ref().and_then(|cr| cr.expires_at) {
            let left = (expires - now()).whole_days();
            if s.state != ConnectorState::Expired && left < CREDENTIAL_WARN_DAYS {
                findings.push(finding(
                    "credential_expiry_near",
                    Severity::Warning,
                    subject.clone(),
                    format!(
                        "the {} of connector `{}` expires on {} ({left} day(s) left)",
                        credential_noun(c.auth),
                        c.name,
                        fmt_time(expires)
                    ),
                    &credential_fix(c, config.rules_of(&c.provider)),
                ));
            }
        }
        if let Some(expires) = row
            .as_ref()
            .and_then(|r| r.access_expires_at)
            .filter(|_| kind == CredentialKind::LinkUser)
        {
            // An OAuth 1.0a token is not refreshed: it lives as long as the instance said.
            let left = (expires - now()).whole_days();
            if left < CREDENTIAL_WARN_DAYS {
                let expired = expires <= now();
                push_unique(
                    &mut findings,
                    finding(
                        if expired {
                            "oauth1_token_expired"
                        } else {
                            "oauth1_token_expiry_near"
                        },
                        if expired {
                            Severity::Error
                        } else {
                            Severity::Warning
                        },
                        format!("provider:{}", c.provider),
                        format!(
                            "the OAuth 1.0a token of `{}` {} on {} (the instance's \
                             oauth_expires_in)",
                            c.provider,
                            if expired { "expired" } else { "expires" },
                            fmt_time(expires)
                        ),
                        &format!("sign in again: `latch login {}`", c.provider),
                    ),
                );
            }
        }
        if !s.scopes.extra.is_empty() && c.auth == AuthMode::User {
            let f = finding(
                "scopes_no_longer_required",
                Severity::Warning,
                format!("provider:{}", c.provider),
                format!(
                    "the sign-in holds scopes no connector needs: {}",
                    s.scopes.extra.iter().map(Scope::as_str).collect::<Vec<_>>().join(" ")
                ),
                "least privilege: `latch login PROVIDER` re-consents with only what the connectors need",
            );
            push_unique(&mut findings, f);
        }
        // Only a sign-in's refresh token rotates: a service account's tokens are fetched anew.
        let last_rotation = row
            .as_ref()
            .and_then(|r| r.refreshed_at.or(r.obtained_at))
            .filter(|_| kind == CredentialKind::UserGrant);
        let idle_days = last_rotation.map(|t| (now() - t).whole_days());
        let inactivity_expires = match (
            last_rotation.filter(|_| kind == CredentialKind::UserGrant),
            provider_spec.and_then(|p| p.inactivity_expiry_days),
        ) {
            (Some(t), Some(days)) if c.auth == AuthMode::User => {
                Some(t + time::Duration::days(i64::from(days)))
            }
            _ => None,
        };
        let absolute_expires = match (
            row.as_ref().and_then(|r| r.obtained_at),
            provider_spec.and_then(|p| p.absolute_expiry_days),
        ) {
            (Some(t), Some(days)) if c.auth == AuthMode::User => {
                Some(t + time::Duration::days(i64::from(days)))
            }
            _ => None,
        };
        if let Some(expires) = inactivity_expires {
            if (expires - now()).whole_days() < INACTIVITY_WARN_DAYS {
                let f = finding(
                    "inactivity_expiry_near",
                    Severity::Warning,
                    format!("provider:{}", c.provider),
                    format!(
                        "the refresh token has not rotated for {} days and dies after {} idle days (on {})",
                        idle_days.unwrap_or_default(),
                        provider_spec.and_then(|p| p.inactivity_expiry_days).unwrap_or_default(),
                        fmt_time(expires)
                    ),
                    "keep `latch serve` (or the desktop app) running, which rotates idle tokens, or run `latch token CONNECTOR` now",
                );
                push_unique(&mut findings, f);
            }
        }
        if let Some(expires) = absolute_expires {
            if (expires - now()).whole_days() < ABSOLUTE_WARN_DAYS {
                let f = finding(
                    "absolute_expiry_near",
                    Severity::Warning,
                    format!("provider:{}", c.provider),
                    format!(
                        "the sign-in may reach the provider's absolute limit on {}, whatever its use",
                        fmt_time(expires)
                    ),
                    "sign in again before then: `latch login PROVIDER`",
                );
                push_unique(&mut findings, f);
            }
        }
        let probe_key = format!("last_probe:{}", c.name);
        let checked = diagnoses.remove(&c.name);
        let diagnosis = checked.as_ref().map(|(_, d)| d.code_for(c.auth).to_owned());
        let probe_result = match checked {
            Some((result, diagnosis)) => {
                // Kept in SQLite (non-secret) so later reports show the last probe.
                if let Ok(json) = serde_json::to_string(&result) {
                    let _ = grants.store().db().meta_set(&probe_key, Some(&json));
                }
                let profile = config.rules_of(&c.provider);
                if let Some(f) = probe_finding(c, profile, s, &result, &diagnosis) {
                    push_unique(&mut findings, f);
                }
                Some(result)
            }
            None => grants
                .store()
                .db()
                .meta(&probe_key)
                .ok()
                .flatten()
                .and_then(|json| serde_json::from_str(&json).ok()),
        };
        // Without a probe (offline, or nothing to probe yet): the connector's worst finding,
        // else its state (`ok` when healthy) — never nothing.
        let diagnosis = diagnosis.or_else(|| {
            let subject = format!("connector:{}", c.name);
            findings
                .iter()
                .filter(|f| f.subject == subject && f.severity != Severity::Info)
                .max_by_key(|f| f.severity)
                .map(|f| f.code.clone())
                .or_else(|| {
                    serde_json::to_value(s.state)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                })
        });
        let grant_status = s.grant.as_ref().filter(|_| kind != CredentialKind::Static);
        connectors.push(ConnectorHealth {
            name: c.name.clone(),
            kind: c.kind.clone(),
            provider: c.provider.clone(),
            auth: c.auth,
            state: s.state,
            account: grant_status
                .filter(|g| g.account_id.is_some())
                .map(|g| {
                    let who = g
                        .account_name
                        .clone()
                        .or_else(|| g.account_email.clone())
                        .unwrap_or_default();
                    format!("{who} ({})", g.account_id.clone().unwrap_or_default())
                })
                // A credential without a sign-in: whom the probe answered as.
                .or_else(|| probe_result.as_ref().and_then(|p| p.account.clone()))
                .or_else(|| c.email.clone())
                .or_else(|| c.username.clone()),
            site: c.site.clone(),
            required: s.scopes.required.clone(),
            requested: s.scopes.requested.clone(),
            granted: s.scopes.granted.clone(),
            missing: s.scopes.missing.clone(),
            extra: s.scopes.extra.clone(),
            access_expires_at: row.as_ref().and_then(|r| r.access_expires_at),
            last_rotation,
            idle_days,
            inactivity_expires_at: inactivity_expires,
            absolute_expires_at: absolute_expires,
            last_error: row
                .as_ref()
                .and_then(|r| r.last_error.clone())
                .or_else(|| s.credential.as_ref().and_then(|cr| cr.last_error.clone())),
            last_failure_at: row.as_ref().and_then(|r| r.last_failure_at),
            consecutive_failures: row.as_ref().map_or(0, |r| r.consecutive_failures),
            probe: probe_result,
            credential: s.credential.clone(),
            diagnosis,
            oauth1: c.oauth1,
            attention: s.attention.clone(),
            base_url: s.base_url.clone(),
        });
    }
    findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
    let providers = status
        .providers
        .iter()
        .map(|p| {
            let configured = config.provider(&p.name);
            ProviderHealth {
                name: p.name.clone(),
                display_name: p.display_name.clone(),
                preset: p.preset.clone(),
                base_url: configured.and_then(|c| c.base_url.clone()),
                sites: p.sites.iter().map(|s| s.url.clone()).collect(),
                callback: p.redirect_uri.clone().filter(|_| p.app_needed),
                secret: match (&p.link, p.client_secret) {
                    (Some(link), _) => match &link.public_key_fingerprint {
                        Some(print) => format!(
                            "link private key in {store} ({print})",
                            store = status.home.secret_store
                        ),
                        None => "link private key missing".to_owned(),
                    },
                    (None, crate::health::status::ClientSecretState::Stored) => {
                        format!("client secret in {}", status.home.secret_store)
                    }
                    (None, crate::health::status::ClientSecretState::Missing) => {
                        "client secret missing".to_owned()
                    }
                    (None, crate::health::status::ClientSecretState::NotNeeded) => {
                        "no secret (no sign-in through it)".to_owned()
                    }
                },
                signed_in_as: p
                    .grant
                    .as_ref()
                    .and_then(|g| g.account_name.clone().or_else(|| g.account_email.clone())),
            }
        })
        .collect();
    let mut summary = Summary::default();
    for f in &findings {
        match f.severity {
            Severity::Error => summary.errors += 1,
            Severity::Warning => summary.warnings += 1,
            Severity::Info => summary.infos += 1,
        }
    }
    Ok(DoctorReport {
        schema: DOCTOR_SCHEMA,
        generated_at: now(),
        home: status.home,
        healthy: summary.errors == 0,
        summary,
        connectors,
        findings,
        providers,
    })
}

/// Seconds this clock is ahead (+) or behind (-) the server's `Date`, when it answers.
/// A client certificate's expiry (an error once past, a warning within 30 days) and whether
/// its key can be presented.
fn client_cert_findings(
    provider: &crate::config::Provider,
    cert: &crate::net::tls::ClientCert,
    subject: &str,
    grants: &crate::grant::Grants,
    keychain_usable: bool,
) -> Vec<Finding> {
    let mut out = Vec::new();
    let renew = format!(
        "ask the gateway's admin for a new certificate, then `latch provider client-cert {} \
         --cert FILE --key FILE`",
        provider.name
    );
    let now = grants.store().now();
    let ends = fmt_time(cert.not_after);
    let days_left = (cert.not_after - now).whole_days();
    if cert.not_after <= now {
        out.push(finding(
            "client_cert_expired",
            Severity::Error,
            subject.to_owned(),
            format!(
                "the client certificate of provider `{}` ({}) expired on {ends}; the gateway \
                 refuses every connection",
                provider.name, cert.subject
            ),
            &renew,
        ));
    } else if days_left < 30 {
        out.push(finding(
            "client_cert_expiry_near",
            Severity::Warning,
            subject.to_owned(),
            format!(
                "the client certificate of provider `{}` ({}) expires on {ends} ({days_left} \
                 day(s) left)",
                provider.name, cert.subject
            ),
            &renew,
        ));
    } else {
        out.push(finding(
            "client_cert_ok",
            Severity::Info,
            subject.to_owned(),
            format!(
                "provider `{}` presents the client certificate {} (expires on {ends}, in \
                 {days_left} days)",
                provider.name, cert.subject
            ),
            "nothing to do",
        ));
    }
    // A locked keychain is reported once already.
    if keychain_usable {
        if let Some(trouble) = grants.clients().trouble(&provider.name) {
            out.push(finding(
                "client_cert_key_missing",
                Severity::Error,
                subject.to_owned(),
                trouble.message,
                &trouble.fix,
            ));
        }
    }
    out
}

async fn clock_skew(http: &reqwest::Client, url: &str) -> Option<i64> {
    let response = tokio::time::timeout(Duration::from_secs(5), http.get(url).send())
        .await
        .ok()?
        .ok()?;
    let date = response
        .headers()
        .get(reqwest::header::DATE)?
        .to_str()
        .ok()?;
    let theirs =
        time::OffsetDateTime::parse(date, &time::format_description::well_known::Rfc2822).ok()?;
    Some((now() - theirs).whole_seconds())
}

/// Why a sign-in died, from what Latch knows locally (the provider's `invalid_grant` body is
/// the same for every cause).
fn likely_reason(
    row: Option<&GrantRow>,
    spec: Option<&crate::provider::catalog::ProviderSpec>,
) -> String {
    let Some(row) = row else {
        return "the sign-in is gone".to_owned();
    };
    let at = now();
    if row.refresh_started_at.is_some() {
        return "an earlier refresh was interrupted after the provider rotated the token, so the \
                token Latch holds is a generation behind"
            .to_owned();
    }
    if let (Some(last), Some(days)) = (
        row.refreshed_at.or(row.obtained_at),
        spec.and_then(|s| s.inactivity_expiry_days),
    ) {
        let idle = (at - last).whole_days();
        if idle >= i64::from(days) {
            return format!(
                "it was idle for {idle} days, longer than the provider's {days}-day limit \
                 (keep `latch serve` or the desktop app running to rotate it)"
            );
        }
    }
    if let (Some(first), Some(days)) = (row.obtained_at, spec.and_then(|s| s.absolute_expiry_days))
    {
        if (at - first).whole_days() >= i64::from(days) {
            return format!("the sign-in is over {days} days old, the provider's absolute limit");
        }
    }
    "the provider revoked the token family — a password change, an admin or you removing the \
     app's access, or another copy of this sign-in (a second machine, a copied home or a \
     restored backup) rotating it"
        .to_owned()
}

fn credential_noun(auth: AuthMode) -> &'static str {
    match auth {
        AuthMode::Service => "service account credential",
        AuthMode::ApiToken => "API token",
        AuthMode::Pat => "personal access token",
        AuthMode::Basic => "password",
        AuthMode::ApiKey => "API key",
        AuthMode::Connect | AuthMode::ConnectUser => "Connect app's installed payload",
        AuthMode::OAuth1TwoLegged => "application link (2-legged OAuth 1.0a)",
        AuthMode::None => "anonymous (no credential)",
        AuthMode::User => "sign-in",
    }
}

fn credential_fix(c: &Connector, profile: &dyn ProviderRules) -> String {
    match c.auth {
        AuthMode::Service => format!(
            "{}; then `latch credential set {}`",
            profile.service_account_console(),
            c.name
        ),
        AuthMode::ApiToken => format!(
            "create a new API token at {} (for a service account: admin.atlassian.com → \
             Directory → Service accounts → its API tokens), then `latch credential set {} \
             [--expires DATE]`",
            profile.api_token_console(),
            c.name
        ),
        _ => format!("store a working one: `latch credential set {}`", c.name),
    }
}

/// A connector's own credential was refused: by status, or by the doctor's probe.
fn credential_rejected(
    c: &Connector,
    subject: String,
    why: &str,
    profile: &dyn ProviderRules,
) -> Finding {
    match c.auth {
        // Atlassian's token endpoint refused to let the app act as its user.
        AuthMode::ConnectUser => {
            return finding(
                "impersonation_refused",
                Severity::Error,
                subject,
                format!(
                    "the Connect app of connector `{}` may not act as its user: {}",
                    c.name,
                    why.lines().next().unwrap_or_default()
                ),
                &format!(
                    "check that the app's descriptor has the ACT_AS_USER scope, that `account_id` \
                     is an account of the site, and this machine's clock; then `latch credential \
                     set {}` again",
                    c.name
                ),
            )
        }
        // The site refused the app's JWT: a bare 401, so say what can be checked here.
        AuthMode::Connect => {
            return finding(
                "connect_jwt_rejected",
                Severity::Error,
                subject,
                crate::credential::connect::rejected_hint(&c.name, None),
                &format!(
                    "check the clock (`clock_skew`), then store the app's current installed \
                     payload: `latch credential set {} < installed.json`",
                    c.name
                ),
            )
        }
        _ => {}
    }
    finding(
        "credential_rejected",
        Severity::Error,
        subject,
        format!(
            "the {} of connector `{}` is refused: {}",
            credential_noun(c.auth),
            c.name,
            why.lines().next().unwrap_or_default()
        ),
        &credential_fix(c, profile),
    )
}

fn probe_finding(
    c: &Connector,
    profile: &dyn ProviderRules,
    s: &crate::health::status::ConnectorStatus,
    result: &ProbeResult,
    diagnosis: &Diagnosis,
) -> Option<Finding> {
    let subject = format!("connector:{}", c.name);
    let asked = format!("the health probe {}", result.request);
    Some(match diagnosis {
        Diagnosis::Ok => return None,
        Diagnosis::ScopeMissing => {
            let missing: Vec<&str> = s.scopes.missing.iter().map(Scope::as_str).collect();
            finding(
                "scope_missing",
                Severity::Error,
                subject,
                format!(
                    "{asked} was refused for a scope the token lacks{}",
                    if missing.is_empty() {
                        String::new()
                    } else {
                        format!(" (missing from the grant: {})", missing.join(" "))
                    }
                ),
                &if c.auth == AuthMode::User {
                    profile.scope_missing_fix(&c.provider)
                } else {
                    "give the credential the scopes of this product (a new scoped token or \
                     service-account credential), then `latch credential set`"
                        .to_owned()
                },
            )
        }
        Diagnosis::PermissionMissing => finding(
            "permission_missing",
            Severity::Error,
            subject,
            format!(
                "{asked} answered 403 without naming a scope: the account lacks a permission in \
                 {} itself",
                c.spec.display_name
            ),
            "ask a site admin to give the account access to the product (and the project or \
             space role it needs); no sign-in fixes this",
        ),
        Diagnosis::SiteWrong => finding(
            "site_wrong",
            Severity::Error,
            subject,
            format!(
                "{asked} answered 404: site `{}` (or this API on it) does not exist for this \
                 credential",
                c.site.as_deref().unwrap_or("?")
            ),
            &format!(
                "check the site: `latch connector set {} --site NAME`",
                c.name
            ),
        ),
        Diagnosis::CredentialRejected(why) => credential_rejected(c, subject, why, profile),
        Diagnosis::TokenKindChanged(now_kind) => finding(
            "api_token_kind_changed",
            Severity::Info,
            subject,
            format!(
                "the API token of `{}` was refused where Latch sent it and works as a {now_kind} \
                 token; Latch now sends it there",
                c.name
            ),
            &format!(
                "nothing to do; pin it with `token = \"{now_kind}\"` under [connectors.{}] if \
                 you prefer",
                c.name
            ),
        ),
        Diagnosis::LinkRefused(UpstreamRefusal::LinkRefused {
            problem,
            message,
            fix,
            ..
        }) => finding(
            "oauth1_rejected",
            Severity::Error,
            subject,
            format!(
                "{asked} was refused by the application link (oauth_problem={problem}): {message}"
            ),
            fix,
        ),
        Diagnosis::LinkRefused(_) => return None,
        Diagnosis::ReachableAnonymous(status) => finding(
            "reachable_anonymous",
            Severity::Info,
            subject,
            format!(
                "{asked} answered {status} without a credential: the API is reachable, and this \
                 endpoint needs a signed-in user"
            ),
            "nothing to do for public pages; give the connector a credential for the rest",
        ),
        Diagnosis::Failed(why) => finding(
            "probe_failed",
            Severity::Error,
            subject,
            format!("{asked} failed: {why}"),
            "check the network and the provider's status; `latch status` shows the connector",
        ),
    })
}

/// Calls a connector's health probe with its current credential. A 401 that is not a scope
/// refusal gets one explicit refresh (grants) or a re-check of where the token works (API
/// tokens). `None` when there is nothing to probe yet (no credential, no site).
async fn probe_connector(
    credentials: &Credentials,
    c: &Connector,
) -> Option<(ProbeResult, Diagnosis)> {
    let request = format!("{} {}", c.spec.probe.method, c.spec.probe.path);
    let started = std::time::Instant::now();
    let at = now();
    let result = |status: Option<u16>, error: Option<String>| ProbeResult {
        at: Some(at),
        request: request.clone(),
        status,
        ok: status.is_some_and(|s| (200..300).contains(&s)),
        latency_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        error,
        account: None,
    };
    let grants = credentials.grants();
    let profile = grants.config().rules_of(&c.provider);
    let upstream = match credentials.upstream(c, None).await {
        Ok(up) => up,
        Err(
            GrantError::SiteUnbound { .. }
            | GrantError::CredentialMissing { .. }
            | GrantError::NotSignedIn { .. }
            | GrantError::NeedsLogin { .. },
        ) => return None,
        Err(err @ GrantError::CredentialRejected { .. }) => {
            let why = err.to_string();
            return Some((
                result(None, Some(why.clone())),
                Diagnosis::CredentialRejected(why),
            ));
        }
        Err(err) => {
            let why = err.to_string();
            return Some((result(None, Some(why.clone())), Diagnosis::Failed(why)));
        }
    };
    let send = |credential| async move {
        let url_base = credentials
            .upstream_base(c)
            .await
            .map_err(|e| e.to_string())?;
        send_probe(grants.http(Some(&c.provider)), c, &url_base, &credential)
            .await
            .map(|(status, _, body)| (status, body))
    };
    let first = send_probe(
        grants.http(Some(&c.provider)),
        c,
        &upstream.base,
        &upstream.credential,
    )
    .await;
    if let Ok((status @ (401 | 403), www, body)) = &first {
        if c.auth == AuthMode::None {
            return Some((
                result(Some(*status), None),
                Diagnosis::ReachableAnonymous(*status),
            ));
        }
        if let Some(why @ UpstreamRefusal::LinkRefused { .. }) =
            credentials.explain_refusal(c, &upstream.credential, *status, www.as_deref(), body)
        {
            return Some((result(Some(*status), None), Diagnosis::LinkRefused(why)));
        }
    }
    let mut answer = first.map(|(status, _, body)| (status, body));
    let mut corrected = None;
    if let Ok((401, ref body)) = answer {
        if !profile.is_scope_refusal(401, body) {
            match (&upstream.grant, CredentialKind::of(c)) {
                (Some(grant), _) => {
                    // An explicit refresh: the person asked for the truth, so never throttled.
                    match credentials.refresh_grant(grant).await {
                        Ok(()) => {
                            if let Ok(fresh) = credentials.credential(&c.name).await {
                                answer = send(fresh).await;
                            }
                        }
                        Err(err @ GrantError::CredentialRejected { .. }) => {
                            let why = err.to_string();
                            return Some((
                                result(Some(401), Some(why.clone())),
                                Diagnosis::CredentialRejected(why),
                            ));
                        }
                        Err(_) => return None,
                    }
                }
                (None, CredentialKind::Static) => {
                    let before = credentials.api_token_kind(c).ok().flatten();
                    let check = credentials.check(c).await;
                    if check.result == CheckResult::Rejected {
                        return Some((
                            result(Some(401), Some(check.detail.clone())),
                            Diagnosis::CredentialRejected(check.detail),
                        ));
                    }
                    let after = credentials.api_token_kind(c).ok().flatten();
                    if after != before {
                        corrected = after.map(latch_store::ApiTokenKind::as_str);
                        if let Ok(cred) = credentials.credential(&c.name).await {
                            answer = send(cred).await;
                        }
                    }
                }
                _ => {}
            }
        }
    }
    Some(match answer {
        Ok((status, body)) => {
            let diagnosis = match status {
                200..=299 => corrected.map_or(Diagnosis::Ok, Diagnosis::TokenKindChanged),
                401 | 403 if profile.is_scope_refusal(status, &body) => Diagnosis::ScopeMissing,
                401 => match c.auth {
                    AuthMode::User => {
                        Diagnosis::Failed("HTTP 401 even with a freshly refreshed token".to_owned())
                    }
                    _ => Diagnosis::CredentialRejected(format!("the probe answered HTTP {status}")),
                },
                403 => Diagnosis::PermissionMissing,
                404 => Diagnosis::SiteWrong,
                other => Diagnosis::Failed(format!("HTTP {other}")),
            };
            let mut probed = result(Some(status), None);
            if (200..300).contains(&status) {
                probed.account = account_in(&body);
            }
            (probed, diagnosis)
        }
        Err(why) => (result(None, Some(why.clone())), Diagnosis::Failed(why)),
    })
}

/// How much of a probe's answer is read (enough for "scope does not match").
const PROBE_PEEK: usize = 16 * 1024;

async fn send_probe(
    http: &reqwest::Client,
    c: &Connector,
    base: &str,
    credential: &crate::credential::Credential,
) -> Result<(u16, Option<String>, Vec<u8>), String> {
    let request = crate::credential::static_secret::probe_request(http, c, base);
    let response = credential
        .authorize_reqwest(request)
        .map_err(|err| err.to_string())?
        .send()
        .await
        .map_err(|err| {
            format!(
                "no answer ({})",
                if err.is_timeout() {
                    "timeout"
                } else {
                    "connection failed"
                }
            )
        })?;
    crate::credential::static_secret::end_probe_session(http, c, base, credential, &response).await;
    let status = response.status().as_u16();
    let www = response
        .headers()
        .get(reqwest::header::WWW_AUTHENTICATE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut body = Vec::new();
    let mut response = response;
    while let Ok(Some(chunk)) = response.chunk().await {
        body.extend_from_slice(&chunk);
        if body.len() >= PROBE_PEEK {
            break;
        }
    }
    Ok((status, www, body))
}

fn esc(text: &str) -> String {
    crate::html::escape(text)
}

fn state_colour(state: ConnectorState) -> &'static str {
    match state {
        ConnectorState::Ok => "#15803d",
        ConnectorState::NotSignedIn
        | ConnectorState::SiteUnbound
        | ConnectorState::CredentialMissing => "#64748b",
        ConnectorState::NeedsStepUp => "#b45309",
        _ => "#b91c1c",
    }
}

fn chips(scopes: &[Scope], class: &str, title: &dyn Fn(&Scope) -> String) -> String {
    scopes
        .iter()
        .map(|s| {
            format!(
                "<span class=\"chip {class}\" title=\"{}\">{}</span>",
                esc(&title(s)),
                esc(s.as_str())
            )
        })
        .collect()
}

/// The admin report: one self-contained HTML page (no scripts, no external resources), one row
/// per connector with its state, scope chips and expiry timeline, then the findings and fixes.
pub fn render_html(report: &DoctorReport) -> String {
    let now = report.generated_at;
    let mut rows = String::new();
    for c in &report.connectors {
        let asked = |s: &Scope| {
            c.requested
                .iter()
                .find(|r| &r.scope == s)
                .map(|r| format!("requested by {}", r.requested_by.join(", ")))
                .unwrap_or_default()
        };
        let granted: Vec<Scope> = c
            .granted
            .clone()
            .unwrap_or_default()
            .into_iter()
            .filter(|s| c.required.contains(s))
            .collect();
        let timeline = [
            ("access token expires", &c.access_expires_at),
            ("last rotation", &c.last_rotation),
            ("idle expiry", &c.inactivity_expires_at),
            ("absolute expiry", &c.absolute_expires_at),
        ]
        .iter()
        .filter_map(|(label, value)| {
            value
                .as_ref()
                .map(|v| format!("<li>{label}: {}</li>", when(*v, now)))
        })
        .collect::<String>();
        let credential = match &c.credential {
            None if c.oauth1 => {
                "sign-in (OAuth 1.0a application link, signed per request)".to_owned()
            }
            None => "sign-in (OAuth, rotating refresh token)".to_owned(),
            Some(cr) => {
                let mut text = esc(credential_noun(c.auth));
                if let Some(kind) = cr.token_kind {
                    text.push_str(&format!(" ({kind})"));
                }
                if let Some(app) = &cr.connect {
                    text.push_str(&format!(
                        ", app {} on {}",
                        esc(&app.app_key),
                        esc(&app.base_url)
                    ));
                    if let Some(account) = &app.acts_as {
                        text.push_str(&format!(", acting as {}", esc(account)));
                    }
                }
                if let Some(at) = cr.expires_at {
                    text.push_str(&format!(", expires {}", when(at, now)));
                }
                if let Some(check) = cr.last_check {
                    text.push_str(&format!(", last check {check}"));
                }
                if let Some(words) = &cr.carries.permissions {
                    text.push_str(&format!("<br><small>carries {}</small>", esc(words)));
                }
                text
            }
        };
        let credential = if c.credential.is_none() {
            esc(&credential)
        } else {
            credential
        };
        let diagnosis = c
            .diagnosis
            .as_deref()
            .map(|d| format!("<br><small>diagnosis: {}</small>", esc(d)))
            .unwrap_or_default();
        // Where it works: a Data Center instance, or a Cloud site.
        let place = match (&c.base_url, &c.site) {
            (Some(base), _) => esc(base),
            (None, Some(site)) => esc(site),
            (None, None) => "no site".to_owned(),
        };
        // A credential's own scopes, when it has some (a service account's): not the OAuth
        // app's.
        let scopes = match &c.credential {
            Some(cr) if !cr.carries.scopes.is_empty() => {
                chips(&cr.carries.scopes, "granted", &|_| {
                    "the credential's own".to_owned()
                })
            }
            Some(_) => String::new(),
            None => format!(
                "{}{}{}",
                chips(&granted, "granted", &asked),
                chips(&c.missing, "missing", &asked),
                chips(&c.extra, "extra", &|_| "granted but no connector needs it"
                    .to_owned())
            ),
        };
        rows.push_str(&format!(
            "<tr class=\"connector\" data-connector=\"{name}\" data-state=\"{state}\" data-auth=\"{auth}\"{attention_attr}>\
             <td><strong>{name}</strong><br><small>{kind} · {provider} · {auth}</small></td>\
             <td><span class=\"state\" style=\"background:{colour}\">{state}</span>{attention}{diagnosis}</td>\
             <td>{account}<br><small class=\"place\">{place}</small></td><td class=\"credential\">{credential}</td>\
             <td>{scopes}</td><td><ul>{timeline}</ul></td></tr>",
            name = esc(&c.name),
            kind = esc(&c.kind),
            provider = esc(&c.provider),
            auth = c.auth.as_str(),
            // Fine now, ending soon: amber, not green.
            colour = if c.attention.is_some() && c.state == ConnectorState::Ok {
                "#b45309"
            } else {
                state_colour(c.state)
            },
            attention_attr = c
                .attention
                .as_ref()
                .map(|a| format!(" data-attention=\"{}\"", esc(&a.code)))
                .unwrap_or_default(),
            attention = c
                .attention
                .as_ref()
                .map(|a| format!("<br><small>{}: {}</small>", esc(&a.code), code_spans(&a.message)))
                .unwrap_or_default(),
            state = c.state.as_str(),
            account = esc(c.account.as_deref().unwrap_or("—")),
        ));
    }
    let providers: String = report
        .providers
        .iter()
        .map(|p| {
            format!(
                "<tr data-provider=\"{name}\"><td><strong>{name}</strong><br><small>{display} · preset {preset}</small></td>\
                 <td>{place}</td><td>{callback}</td><td>{secret}</td><td>{who}</td></tr>",
                name = esc(&p.name),
                display = esc(&p.display_name),
                preset = esc(&p.preset),
                place = match (&p.base_url, p.sites.is_empty()) {
                    (Some(base), _) => esc(base),
                    (None, false) => esc(&p.sites.join(", ")),
                    (None, true) => "—".to_owned(),
                },
                callback = p.callback.as_deref().map_or_else(
                    || "— (no sign-in through it)".to_owned(),
                    |c| format!("<code>{}</code>", esc(c))
                ),
                secret = esc(&p.secret),
                who = esc(p.signed_in_as.as_deref().unwrap_or("—")),
            )
        })
        .collect();
    let findings: String = report
        .findings
        .iter()
        .map(|f| {
            format!(
                "<li class=\"finding {sev:?}\" data-code=\"{code}\"><strong>{sev:?}</strong> \
                 <code>{code}</code> {subject}: {message}<br><em>Fix:</em> {fix}</li>",
                sev = f.severity,
                code = esc(&f.code),
                subject = esc(&f.subject),
                message = code_spans(&f.message),
                fix = code_spans(&f.fix)
            )
        })
        .collect();
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\
         <title>Latch health report</title><style>\
         body{{font:14px system-ui,sans-serif;margin:2rem;color:#0f172a}}\
         table{{border-collapse:collapse;width:100%}}td,th{{border-bottom:1px solid #e2e8f0;padding:.5rem;vertical-align:top;text-align:left}}\
         .state,.verdict{{color:#fff;border-radius:999px;padding:.1rem .6rem;font-weight:600}}\
         time{{white-space:nowrap}}.ago{{color:#64748b;white-space:nowrap}}\
         .chip{{display:inline-block;border-radius:6px;padding:0 .4rem;margin:.1rem;font-size:12px}}\
         .granted{{background:#dcfce7}}.missing{{background:#fee2e2;outline:1px solid #b91c1c}}.extra{{background:#fef3c7}}\
         .Error{{color:#b91c1c}}.Warning{{color:#b45309}}.Info{{color:#334155}}ul{{margin:0;padding-left:1rem}}\
         code{{background:#f1f5f9;border-radius:4px;padding:0 .25rem}}\
         </style></head><body><h1>Latch health report</h1>\
         <p>Generated {at} · home <code>{home}</code> · secrets in {store} · \
         <span id=\"verdict\" class=\"verdict\" style=\"background:{verdict_colour}\">{verdict}</span> · \
         {errors} error(s), {warnings} warning(s)</p>\
         <table><thead><tr><th>Connector</th><th>State</th><th>Account / site</th><th>Credential</th><th>Scopes</th><th>Timeline</th></tr></thead>\
         <tbody>{rows}</tbody></table>\
         <h2>Providers</h2><table id=\"providers\"><thead><tr><th>Provider</th><th>Instance or sites</th><th>Callback</th><th>Secret</th><th>Signed in as</th></tr></thead>\
         <tbody>{providers}</tbody></table>\
         <h2>Findings</h2><ul id=\"findings\">{findings}</ul></body></html>",
        at = when(report.generated_at, now),
        home = esc(&report.home.id),
        store = esc(&report.home.secret_store),
        verdict = if report.healthy { "healthy" } else { "needs attention" },
        verdict_colour = if report.healthy {
            "#15803d"
        } else if report.summary.errors > 0 {
            "#b91c1c"
        } else {
            "#b45309"
        },
        errors = report.summary.errors,
        warnings = report.summary.warnings,
    )
}

/// A time as the report shows it: whole (never broken mid-value), with how far it is from
/// when the report was made ("in 57 min", "8 days ago").
fn when(at: time::OffsetDateTime, now: time::OffsetDateTime) -> String {
    let stamp = esc(&fmt_time(at));
    let secs = (at - now).whole_seconds();
    let span = |s: i64| match s {
        0..=59 => format!("{s} s"),
        60..=5_399 => format!("{} min", s / 60),
        5_400..=172_799 => format!("{} h", s / 3600),
        _ => format!("{} days", s / 86_400),
    };
    let relative = match secs {
        -1..=1 => "now".to_owned(),
        s if s > 0 => format!("in {}", span(s)),
        s => format!("{} ago", span(-s)),
    };
    format!("<time datetime=\"{stamp}\">{stamp}</time> <span class=\"ago\">({relative})</span>")
}

/// Text with its `code` spans as code (escaped first).
fn code_spans(text: &str) -> String {
    let escaped = esc(text);
    let mut out = String::with_capacity(escaped.len() + 16);
    let mut inside = false;
    let parts: Vec<&str> = escaped.split('`').collect();
    // An odd backtick leaves the text as it was.
    if parts.len().is_multiple_of(2) {
        return escaped;
    }
    for part in parts {
        if inside {
            out.push_str("<code>");
            out.push_str(part);
            out.push_str("</code>");
        } else {
            out.push_str(part);
        }
        inside = !inside;
    }
    out
}

//! `latch doctor`: every check Latch can run, each finding explained with its fix, for people
//! (`latch doctor`), scripts (`--json`, schema `latch.doctor/v1`) and admins collecting reports
//! from many machines (`--report out.html`, self-contained, no secrets).
//!
//! The checks cover the troubleshooting table of the "one IdP, many connectors" seed (missing
//! `audience`, scopes the app was not granted, callback mismatch, stale rotated refresh token,
//! wrong provider mapping) plus scope lint, keychain reachability, clock skew, the proxy port,
//! inactivity and absolute expiry, and least privilege.

use std::time::Duration;

use serde::Serialize;

use crate::catalog::{AuthMode, ClientType};
use crate::finding::{Finding, Severity};
use crate::grants::{grant_id, now, parse_time, GrantError};
use crate::latch::Latch;
use crate::scope::{RequestedScope, Scope, Vocabulary};
use crate::status::{ConnectorState, StatusReport};

/// The JSON schema of [`DoctorReport`].
pub const DOCTOR_SCHEMA: &str = "latch.doctor/v1";

/// Warn this many days before a refresh token's inactivity expiry.
const INACTIVITY_WARN_DAYS: i64 = 14;
/// Warn this many days before a token family's absolute expiry.
const ABSOLUTE_WARN_DAYS: i64 = 30;
/// Clock skew worth a warning (token lifetimes are an hour; JWT checks allow a few minutes).
const SKEW_WARN_SECS: i64 = 120;

/// What `latch doctor` found.
#[derive(Debug, Serialize)]
pub struct DoctorReport {
    /// Always [`DOCTOR_SCHEMA`].
    pub schema: &'static str,
    /// When the report was made.
    pub generated_at: String,
    /// Where the installation lives.
    pub home: crate::status::HomeStatus,
    /// No error finding.
    pub healthy: bool,
    /// Counts per severity.
    pub summary: Summary,
    /// One entry per connector.
    pub connectors: Vec<ConnectorHealth>,
    /// Every finding, worst first.
    pub findings: Vec<Finding>,
}

/// Counts per severity.
#[derive(Debug, Default, Serialize)]
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
    pub access_expires_at: Option<String>,
    /// Last refresh-token rotation (or the consent).
    pub last_rotation: Option<String>,
    /// Days since the last rotation.
    pub idle_days: Option<i64>,
    /// When the refresh token dies if nothing uses it.
    pub inactivity_expires_at: Option<String>,
    /// When the token family dies whatever happens (Atlassian: 365 days, if it still applies).
    pub absolute_expires_at: Option<String>,
    /// Last error.
    pub last_error: Option<String>,
    /// When the last refresh failed.
    pub last_failure_at: Option<String>,
    /// Consecutive refresh failures.
    pub consecutive_failures: i64,
    /// The health probe: run now with `--probe`, else the last stored result.
    pub probe: Option<ProbeResult>,
}

/// A health probe's outcome.
#[derive(Debug, Serialize, serde::Deserialize)]
pub struct ProbeResult {
    /// When it ran.
    #[serde(default)]
    pub at: String,
    /// `GET /rest/api/3/myself` and the like.
    pub request: String,
    /// HTTP status, when an answer came.
    pub status: Option<u16>,
    /// 2xx.
    pub ok: bool,
    /// Time to the answer.
    pub latency_ms: u64,
    /// Why it failed.
    pub error: Option<String>,
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

/// Runs every check. `probe` also calls each connector's health probe upstream.
pub async fn run(latch: &Latch, probe: bool) -> crate::Result<DoctorReport> {
    let status: StatusReport = latch.status()?;
    let config = latch.config();
    let grants = latch.grants();
    let mut findings: Vec<Finding> = Vec::new();
    for f in status.providers.iter().flat_map(|p| &p.findings) {
        push_unique(&mut findings, f.clone());
    }

    for provider in &config.providers {
        let subject = format!("provider:{}", provider.name);
        if provider.spec.vocabulary == Vocabulary::Atlassian
            && provider.spec.client_type != ClientType::None
            && provider
                .spec
                .authorize_params
                .get("audience")
                .map(String::as_str)
                != Some("api.atlassian.com")
        {
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
        if let Ok(Some(last)) = latch
            .db()
            .meta(&crate::login::last_error_key(&provider.name))
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
                        latch.scope_request(&provider.name).scopes()
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
        if provider.spec.client_type != ClientType::None {
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

    // Keychain reachable (and unlocked)?
    let probe_key = latch.client_secret_key("doctor-probe");
    let secrets = std::sync::Arc::clone(latch.secrets());
    let keychain = tokio::task::spawn_blocking(move || secrets.get(&probe_key)).await;
    if let Ok(Err(err)) = keychain {
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
            let ours = proxy_answers(grants.http(), config.listen).await;
            findings.push(if ours {
                finding(
                    "proxy_running",
                    Severity::Info,
                    "proxy".to_owned(),
                    format!("a Latch proxy is serving on {}", config.listen),
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
    if let Some(url) = config
        .providers
        .iter()
        .find_map(|p| p.spec.token_url.clone())
    {
        if let Some(skew) = clock_skew(grants.http(), &url).await {
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
        let expected = config
            .catalog
            .provider(&c.spec.provider)
            .map(|p| p.vocabulary);
        let actual = config.provider(&c.provider).map(|p| p.spec.vocabulary);
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
        let row = grants.row(&grant_id(c)).ok().flatten();
        let oauth = matches!(c.auth, AuthMode::User | AuthMode::Service);
        match s.state {
            ConnectorState::NeedsLogin => findings.push(finding(
                "needs_login",
                Severity::Error,
                subject.clone(),
                format!(
                    "the sign-in is dead: {}",
                    row.as_ref()
                        .and_then(|r| r.last_error.clone())
                        .unwrap_or_default()
                ),
                "sign in again with `latch login PROVIDER`; Atlassian rotates refresh tokens and \
                 refuses a stale one (invalid_grant), and `offline_access` must stay both in the \
                 app's permissions and the connector's scopes",
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
                "sign in again (`latch login PROVIDER`) and keep every scope ticked; if the \
                 consent screen does not offer it, add it to the app in the developer console",
            )),
            ConnectorState::RefreshFailing => findings.push(finding(
                "refresh_failing",
                Severity::Error,
                subject.clone(),
                format!(
                    "refreshing fails: {}",
                    row.as_ref()
                        .and_then(|r| r.last_error.clone())
                        .unwrap_or_default()
                ),
                "check the network and the provider's status; Latch retries on the next use",
            )),
            ConnectorState::NotSignedIn => findings.push(finding(
                "not_signed_in",
                Severity::Warning,
                subject.clone(),
                format!("connector `{}` has no credential yet", c.name),
                if oauth {
                    "run `latch login`"
                } else {
                    "run `latch credential set CONNECTOR`"
                },
            )),
            ConnectorState::SiteUnbound => findings.push(finding(
                "site_unbound",
                Severity::Warning,
                subject.clone(),
                format!("connector `{}` is not bound to a site", c.name),
                "run `latch login PROVIDER --site NAME`",
            )),
            _ => {}
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
        let provider_spec = config.provider(&c.provider).map(|p| &p.spec);
        let last_rotation = row
            .as_ref()
            .and_then(|r| r.refreshed_at.clone().or_else(|| r.obtained_at.clone()));
        let idle_days = parse_time(last_rotation.as_deref()).map(|t| (now() - t).whole_days());
        let inactivity_expires = match (
            parse_time(last_rotation.as_deref()),
            provider_spec.and_then(|p| p.inactivity_expiry_days),
        ) {
            (Some(t), Some(days)) if c.auth == AuthMode::User => {
                Some(t + time::Duration::days(i64::from(days)))
            }
            _ => None,
        };
        let absolute_expires = match (
            row.as_ref()
                .and_then(|r| parse_time(r.obtained_at.as_deref())),
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
                        crate::grants::fmt_time(expires)
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
                        crate::grants::fmt_time(expires)
                    ),
                    "sign in again before then: `latch login PROVIDER`",
                );
                push_unique(&mut findings, f);
            }
        }
        let probe_key = format!("last_probe:{}", c.name);
        let probe_result = if probe && s.state == ConnectorState::Ok {
            let result = run_probe(&grants, c).await;
            // Kept in SQLite (non-secret) so later reports show the last probe.
            if let Ok(json) = serde_json::to_string(&result) {
                let _ = latch.db().meta_set(&probe_key, Some(&json));
            }
            Some(result)
        } else {
            latch
                .db()
                .meta(&probe_key)
                .ok()
                .flatten()
                .and_then(|json| serde_json::from_str(&json).ok())
        };
        if let Some(p) = probe_result.as_ref().filter(|_| probe) {
            if !p.ok {
                findings.push(finding(
                    "probe_failed",
                    Severity::Error,
                    subject.clone(),
                    format!(
                        "the health probe {} failed: {}",
                        p.request,
                        p.error.clone().unwrap_or_else(|| format!("HTTP {}", p.status.unwrap_or(0)))
                    ),
                    "a 401/403 means a scope or permission is missing; a 404 the site or path; run `latch status`",
                ));
            }
        }
        let grant_status = status
            .providers
            .iter()
            .find(|p| p.name == c.provider)
            .and_then(|p| p.grant.as_ref());
        connectors.push(ConnectorHealth {
            name: c.name.clone(),
            kind: c.kind.clone(),
            provider: c.provider.clone(),
            auth: c.auth,
            state: s.state,
            account: grant_status.map(|g| {
                let who = g
                    .account_name
                    .clone()
                    .or_else(|| g.account_email.clone())
                    .unwrap_or_default();
                format!("{who} ({})", g.account_id.clone().unwrap_or_default())
            }),
            site: c.site.clone(),
            required: s.scopes.required.clone(),
            requested: s.scopes.requested.clone(),
            granted: s.scopes.granted.clone(),
            missing: s.scopes.missing.clone(),
            extra: s.scopes.extra.clone(),
            access_expires_at: row.as_ref().and_then(|r| r.access_expires_at.clone()),
            last_rotation,
            idle_days,
            inactivity_expires_at: inactivity_expires.map(crate::grants::fmt_time),
            absolute_expires_at: absolute_expires.map(crate::grants::fmt_time),
            last_error: row.as_ref().and_then(|r| r.last_error.clone()),
            last_failure_at: row.as_ref().and_then(|r| r.last_failure_at.clone()),
            consecutive_failures: row.as_ref().map_or(0, |r| r.consecutive_failures),
            probe: probe_result,
        });
    }
    findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
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
        generated_at: crate::now_rfc3339(),
        home: status.home,
        healthy: summary.errors == 0,
        summary,
        connectors,
        findings,
    })
}

async fn proxy_answers(http: &reqwest::Client, listen: std::net::SocketAddr) -> bool {
    let url = format!("http://{listen}/");
    match tokio::time::timeout(Duration::from_secs(3), http.get(&url).send()).await {
        Ok(Ok(response)) => response
            .text()
            .await
            .is_ok_and(|body| body.contains("\"missing_key\"")),
        _ => false,
    }
}

/// Seconds this clock is ahead (+) or behind (-) the server's `Date`, when it answers.
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

async fn run_probe(
    grants: &crate::grants::Grants,
    connector: &crate::config::Connector,
) -> ProbeResult {
    let request = format!(
        "{} {}",
        connector.spec.probe.method, connector.spec.probe.path
    );
    let started = std::time::Instant::now();
    let at = crate::now_rfc3339();
    let fail = |error: String| ProbeResult {
        at: at.clone(),
        request: request.clone(),
        status: None,
        ok: false,
        latency_ms: started.elapsed().as_millis() as u64,
        error: Some(error),
    };
    let base = match grants.upstream_base(connector) {
        Ok(base) => base,
        Err(err) => return fail(err.to_string()),
    };
    let credential = match grants.credential(&connector.name).await {
        Ok(c) => c,
        Err(err @ GrantError::NeedsLogin { .. }) | Err(err) => return fail(err.to_string()),
    };
    let method = reqwest::Method::from_bytes(connector.spec.probe.method.as_bytes())
        .unwrap_or(reqwest::Method::GET);
    let sent = grants
        .http()
        .request(method, format!("{base}{}", connector.spec.probe.path))
        .header(
            reqwest::header::AUTHORIZATION,
            credential.authorization().expose(),
        )
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await;
    match sent {
        Ok(response) => ProbeResult {
            at: at.clone(),
            request,
            status: Some(response.status().as_u16()),
            ok: response.status().is_success(),
            latency_ms: started.elapsed().as_millis() as u64,
            error: None,
        },
        Err(err) => fail(format!(
            "no answer ({})",
            if err.is_timeout() {
                "timeout"
            } else {
                "connection failed"
            }
        )),
    }
}

fn esc(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn state_colour(state: ConnectorState) -> &'static str {
    match state {
        ConnectorState::Ok => "#15803d",
        ConnectorState::NotSignedIn | ConnectorState::SiteUnbound => "#64748b",
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
                .map(|v| format!("<li>{label}: <time>{}</time></li>", esc(v)))
        })
        .collect::<String>();
        rows.push_str(&format!(
            "<tr class=\"connector\" data-connector=\"{name}\" data-state=\"{state}\">\
             <td><strong>{name}</strong><br><small>{kind} · {provider} · {auth}</small></td>\
             <td><span class=\"state\" style=\"background:{colour}\">{state}</span></td>\
             <td>{account}<br><small>{site}</small></td>\
             <td>{granted}{missing}{extra}</td><td><ul>{timeline}</ul></td></tr>",
            name = esc(&c.name),
            kind = esc(&c.kind),
            provider = esc(&c.provider),
            auth = c.auth.as_str(),
            colour = state_colour(c.state),
            state = c.state.as_str(),
            account = esc(c.account.as_deref().unwrap_or("—")),
            site = esc(c.site.as_deref().unwrap_or("no site")),
            granted = chips(&granted, "granted", &asked),
            missing = chips(&c.missing, "missing", &asked),
            extra = chips(&c.extra, "extra", &|_| "granted but no connector needs it"
                .to_owned()),
        ));
    }
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
                message = esc(&f.message),
                fix = esc(&f.fix)
            )
        })
        .collect();
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\
         <title>Latch health report</title><style>\
         body{{font:14px system-ui,sans-serif;margin:2rem;color:#0f172a}}\
         table{{border-collapse:collapse;width:100%}}td,th{{border-bottom:1px solid #e2e8f0;padding:.5rem;vertical-align:top;text-align:left}}\
         .state{{color:#fff;border-radius:999px;padding:.1rem .6rem;font-weight:600}}\
         .chip{{display:inline-block;border-radius:6px;padding:0 .4rem;margin:.1rem;font-size:12px}}\
         .granted{{background:#dcfce7}}.missing{{background:#fee2e2;outline:1px solid #b91c1c}}.extra{{background:#fef3c7}}\
         .Error{{color:#b91c1c}}.Warning{{color:#b45309}}.Info{{color:#334155}}ul{{margin:0;padding-left:1rem}}\
         </style></head><body><h1>Latch health report</h1>\
         <p>Generated {at} · home <code>{home}</code> · <span id=\"verdict\">{verdict}</span> · \
         {errors} error(s), {warnings} warning(s)</p>\
         <table><thead><tr><th>Connector</th><th>State</th><th>Account / site</th><th>Scopes</th><th>Timeline</th></tr></thead>\
         <tbody>{rows}</tbody></table><h2>Findings</h2><ul id=\"findings\">{findings}</ul></body></html>",
        at = esc(&report.generated_at),
        home = esc(&report.home.id),
        verdict = if report.healthy { "healthy" } else { "needs attention" },
        errors = report.summary.errors,
        warnings = report.summary.warnings,
    )
}

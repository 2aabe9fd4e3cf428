//! `latch login`: one consent in the person's browser for the union of a provider's connector
//! scopes, received on a one-shot loopback listener at the registered callback.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::app::App;
use crate::config::check_redirect_uri;
use crate::credential::token_endpoint;
use crate::error::GrantError;
use crate::grant::Grants;
use crate::net::oauth::{self, Pkce, TokenError};
use crate::ports::Browser;
use crate::provider::catalog::{AuthMode, ClientType};
use crate::provider::scope::{Scope, ScopeList};
use crate::provider::{Account, ProviderRules};
use crate::secret::{constant_time_eq, Secret};
pub use crate::upstream::site::site_matches;
use loopback::{Callback, Heard};

mod link;
mod loopback;
pub use latch_store::SiteRow;
use latch_store::{GrantId, GrantKind, GrantRow, GrantState};

/// How `latch login` runs.
pub struct LoginOptions {
    /// Provider name.
    pub provider: String,
    /// Open the system browser (else only print the URL).
    pub open_browser: bool,
    /// Bind connectors to this site (name, URL or cloud id) when several fit.
    pub site: Option<String>,
    /// How long to wait for the browser.
    pub timeout: Duration,
    /// Lines the person pastes, for a browser that cannot reach this machine's callback (a
    /// box reached over SSH): the address the browser ended at, or `code=…&state=…`. The
    /// first valid one, or the callback, whichever comes first, completes the sign-in.
    pub pasted: std::sync::Mutex<Option<tokio::sync::mpsc::Receiver<String>>>,
}

/// Asks the person to choose a site when several fit a connector.
pub trait SitePicker {
    /// Index into `sites`, or `None` to leave the connector unbound.
    fn pick(&self, connector: &str, sites: &[SiteRow]) -> Option<usize>;
}

/// Where the login is, for faces that show progress (the CLI prints the URL).
pub trait LoginProgress {
    /// The authorize URL, before the browser is opened.
    fn authorize_url(&self, url: &str, opened_browser: bool);
    /// A request to the callback that was refused (wrong `state`, other path): the flow goes on.
    fn refused_callback(&self, why: &str);
}

/// What a login achieved.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct LoginOutcome {
    /// Provider.
    pub provider: String,
    /// Account display name and id, when the provider has a `/me`.
    pub account: Option<String>,
    /// Sites the grant reaches.
    pub sites: Vec<String>,
    /// Connector → bound site.
    pub bound: Vec<(String, String)>,
    /// Connectors that need a site choice (`--site`).
    pub unbound: Vec<String>,
    /// Requested but not granted (the person unticked them, or the app lacks them).
    pub missing: Vec<Scope>,
    /// How to get the missing scopes (sign in again; on Bitbucket, tick them on the OAuth
    /// consumer first: it decides what is granted).
    pub missing_fix: Option<String>,
    /// Whether a refresh token was issued (an OAuth 1.0a link: a session handle).
    pub refresh_token: bool,
    /// When the token itself expires, when it lives long and nothing refreshes it (an OAuth
    /// 1.0a link's `oauth_expires_in`).
    #[serde(with = "crate::clock::stamp::option")]
    #[cfg_attr(feature = "ts", ts(type = "string | null"))]
    pub token_expires_at: Option<time::OffsetDateTime>,
}

/// Why a login failed. Messages are plain words with the fix.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoginError {
    /// The registered callback port is taken.
    #[error("cannot listen on {addr} for the sign-in callback: {reason}\n  fix: close the program using port {port}, or register another callback URL in the provider's console and set the same `redirect_uri` for `{provider}` in app.toml (they must match byte for byte)")]
    PortBusy {
        /// host:port.
        addr: String,
        /// Port.
        port: u16,
        /// OS error.
        reason: String,
        /// Provider.
        provider: String,
    },
    /// Nothing came back in time.
    #[error("no sign-in arrived within {0} seconds\n  fix: run `latch login` again and finish the consent in the browser (or use --no-browser and open the printed URL yourself)")]
    Timeout(u64),
    /// The provider sent the person back with `error=`.
    #[error("{message}\n  fix: {fix}")]
    Denied {
        /// The OAuth error code.
        code: String,
        /// What happened.
        message: String,
        /// What to do.
        fix: String,
    },
    /// The code could not be redeemed.
    #[error("{message}\n  fix: {fix}")]
    Exchange {
        /// What happened.
        message: String,
        /// What to do.
        fix: String,
    },
    /// Set-up problem.
    #[error("{message}\n  fix: {fix}")]
    Setup {
        /// What is missing.
        message: String,
        /// What to do.
        fix: String,
    },
    /// Storing the grant failed.
    #[error(transparent)]
    Grant(#[from] GrantError),
    /// Writing the site binding failed.
    #[error(transparent)]
    Core(#[from] crate::Error),
}

impl LoginError {
    /// A stable code.
    pub fn code(&self) -> crate::ErrorCode {
        use crate::ErrorCode as C;
        match self {
            Self::PortBusy { .. } => C::PortBusy,
            Self::Timeout(_) => C::LoginTimeout,
            Self::Denied { code, .. } if code == "access_denied" => C::ConsentDenied,
            Self::Denied { .. } => C::ConsentFailed,
            Self::Exchange { .. } => C::CodeExchangeFailed,
            Self::Setup { .. } => C::Misconfigured,
            Self::Grant(e) => e.code(),
            Self::Core(e) => e.code(),
        }
    }
}

fn denied(code: &str, description: Option<&str>, scopes: &ScopeList, redirect: &str) -> LoginError {
    // Both come from the browser's address: printed and stored only once printable.
    let code = oauth::printable(code);
    let code = code.as_str();
    let description = description.map(oauth::printable);
    let description = description.as_deref();
    let said = description
        .map(|d| format!(" (the provider said: {d})"))
        .unwrap_or_default();
    let (message, fix) = match code {
        "access_denied" => (
            format!("the consent was declined{said}; nothing was stored"),
            "run `latch login` again and choose Accept; if you did accept, check the app's \
             client secret (`latch provider secret NAME`)"
                .to_owned(),
        ),
        "invalid_scope" => (
            format!("the provider refused a requested scope{said}"),
            format!(
                "add every requested scope to the app in the developer console (Permissions), or \
                 remove the connector that needs it; requested: {scopes}"
            ),
        ),
        "server_error" | "temporarily_unavailable" => (
            format!("the identity provider reported an error{said}"),
            format!(
                "for Atlassian this means the authorize request lacked `audience=api.atlassian.com` \
                 (check `authorize_url`/preset in app.toml), or the app has not been granted a \
                 requested scope in the developer console (Permissions tab); requested: {scopes}"
            ),
        ),
        "unauthorized_client" | "invalid_client" => (
            format!("the provider does not accept this client{said}"),
            "check the client id (`latch provider add NAME --client-id ...`) and that the app \
             allows the authorization-code grant"
                .to_owned(),
        ),
        _ if description.is_some_and(|d| d.to_lowercase().contains("redirect")) => (
            format!("the provider refused the callback URL{said}"),
            format!("register exactly this callback URL in the app's settings: {redirect}"),
        ),
        _ => (
            format!("the sign-in failed with `{code}`{said}"),
            "run `latch login` again; if it repeats, `latch doctor` explains more".to_owned(),
        ),
    };
    LoginError::Denied {
        code: code.to_owned(),
        message,
        fix,
    }
}

/// The OAuth `error` code of a declined or failed consent, when there was one.
impl LoginError {
    /// `access_denied`, `server_error`, … for consent failures.
    pub fn oauth_code(&self) -> Option<&str> {
        match self {
            Self::Denied { code, .. } => Some(code),
            _ => None,
        }
    }
}

fn exchange_failed(err: TokenError, provider: &str, redirect: &str) -> LoginError {
    let (message, fix) = match &err {
        TokenError::InvalidGrant { .. } => (
            format!("the provider refused the sign-in code: {err}"),
            format!(
                "run `latch login {provider}` again; if it repeats, make sure the registered \
                 callback is exactly {redirect}"
            ),
        ),
        TokenError::Rejected { code, .. }
            if code == "invalid_client" || code == "access_denied" =>
        {
            (
                format!("the provider refused the client credentials: {err}"),
                format!("store the right client secret: `latch provider secret {provider}`"),
            )
        }
        _ => (
            format!("redeeming the sign-in code failed: {err}"),
            "check the network and the provider's status, then run `latch login` again".to_owned(),
        ),
    };
    LoginError::Exchange { message, fix }
}

/// What a valid callback must carry.
struct Expected {
    state: Secret,
    scopes: ScopeList,
    redirect: String,
}

/// What a callback (received, or pasted) means for this sign-in: its `state` must be ours
/// (compared in constant time), then `error=` or the code.
fn judge(callback: &Callback, expected: &Expected) -> Heard<Secret> {
    let state_ok = callback
        .get("state")
        .is_some_and(|s| constant_time_eq(s.as_bytes(), expected.state.expose().as_bytes()));
    if !state_ok {
        return Heard::Refused("with the wrong state (it does not match this sign-in)");
    }
    if let Some(error) = callback.get("error") {
        return Heard::Failed(denied(
            error,
            callback.get("error_description"),
            &expected.scopes,
            &expected.redirect,
        ));
    }
    match callback.get("code").filter(|c| !c.is_empty()) {
        Some(code) => Heard::Got(Secret::new(code.to_owned())),
        None => Heard::Failed(LoginError::Exchange {
            message: "the provider sent no authorization code".into(),
            fix: "run `latch login` again".into(),
        }),
    }
}

/// Runs the consent and stores the grant. See the module docs. A failure is remembered (code
/// and message, secret-free) so that `latch doctor` can explain it later.
pub async fn login(
    app: &App,
    options: &LoginOptions,
    browser: &dyn Browser,
    progress: &dyn LoginProgress,
    picker: Option<&dyn SitePicker>,
) -> Result<LoginOutcome, LoginError> {
    let result = run_login(app, options, browser, progress, picker).await;
    let key = crate::health::doctor::last_sign_in_error_key(&options.provider);
    let record = match &result {
        Ok(_) => None,
        Err(err) => Some(format!("{}\t{}\t{}", err.code(), crate::now_rfc3339(), err)),
    };
    let _ = app.db().meta_set(&key, record.as_deref());
    result
}

async fn run_login(
    app: &App,
    options: &LoginOptions,
    browser: &dyn Browser,
    progress: &dyn LoginProgress,
    picker: Option<&dyn SitePicker>,
) -> Result<LoginOutcome, LoginError> {
    let name = options.provider.as_str();
    let config = app.config();
    let Some(provider) = config.provider(name).cloned() else {
        if config.catalog.provider(name).is_none() {
            // Not a preset either: a typo, most likely. Say what there is.
            return Err(LoginError::Core(crate::Error::UnknownProvider {
                name: name.to_owned(),
                known: config.providers.iter().map(|p| p.name.clone()).collect(),
            }));
        }
        return Err(LoginError::Setup {
            message: format!("provider `{name}` is not configured"),
            fix: format!("run `latch provider add {name} --client-id ...`"),
        });
    };
    drop(config);
    if provider.oauth1.is_some() {
        return link::run(app, &provider, options, browser, progress).await;
    }
    // An `issuer` only: the endpoints come from its discovery document.
    let provider = if provider.spec.issuer.is_some() {
        let grants = Arc::clone(app.credentials().grants());
        crate::upstream::discovery::resolve(grants.store(), grants.http(Some(name)), &provider)
            .await?
    } else {
        provider
    };
    // An MCP server: its endpoints and client come from its metadata and registration.
    let provider = if provider.spec.mcp_discovery {
        let grants = Arc::clone(app.credentials().grants());
        crate::upstream::mcp_auth::prepare(grants.store(), grants.http(Some(name)), &provider)
            .await?
    } else {
        provider
    };
    if provider.spec.client_type == ClientType::None {
        return Err(LoginError::Setup {
            message: format!("provider `{name}` has no OAuth sign-in"),
            fix: "store the connector's API key or token: `latch credential set CONNECTOR`".into(),
        });
    }
    let scopes = app.config().scope_request(name).scopes();
    let user_connectors: Vec<_> = app
        .config()
        .connectors_of(name)
        .filter(|c| c.auth == AuthMode::User)
        .cloned()
        .collect();
    if user_connectors.is_empty() {
        return Err(LoginError::Setup {
            message: format!("no connector of `{name}` signs in as a user"),
            fix: format!("add one first: `latch connector add jira --provider {name}`"),
        });
    }
    if provider.client_id.is_none() {
        return Err(LoginError::Setup {
            message: format!("provider `{name}` has no client id (no OAuth app is registered)"),
            fix: format!(
                "register a 3LO app and run `latch provider add {name} --client-id ...` (the \
                 secret on stdin); service accounts and API tokens need no sign-in"
            ),
        });
    }
    let (Some(authorize), Some(client_id), Some(redirect)) = (
        provider.spec.authorize_url.clone(),
        provider.client_id.clone(),
        provider.redirect_uri.clone(),
    ) else {
        return Err(LoginError::Setup {
            message: format!("provider `{name}` lacks an authorize URL, client id or callback"),
            fix: format!("run `latch provider add {name} --client-id ...`"),
        });
    };
    let redirect_url = check_redirect_uri(&redirect).map_err(|message| LoginError::Setup {
        message,
        fix: "fix `redirect_uri` in app.toml".into(),
    })?;
    let grants = Arc::clone(app.credentials().grants());
    // Fail before the browser opens when the secret is missing.
    let client_secret = grants.store().client_secret(&provider).await?;

    let listening = loopback::listen(&redirect_url, name).await?;

    let state = Secret::new(oauth::random_token(32));
    let pkce = provider.spec.pkce.then(Pkce::new);
    let url = oauth::authorize_url(
        &authorize,
        &client_id,
        &redirect,
        &scopes,
        &state,
        pkce.as_ref(),
        &provider.spec.authorize_params,
    )
    .map_err(|e| LoginError::Setup {
        message: format!("the authorize URL is invalid: {e}"),
        fix: "fix `authorize_url` in app.toml".into(),
    })?;
    let opened = options.open_browser && browser.open(url.as_str()).is_ok();
    progress.authorize_url(url.as_str(), opened);

    let expected = Expected {
        state: state.clone(),
        scopes: scopes.clone(),
        redirect: redirect.clone(),
    };
    let (code, reply) = loopback::wait(
        listening,
        options,
        progress,
        Arc::new(move |callback: &Callback| judge(callback, &expected)),
        &loopback::pasted_callback,
    )
    .await?;
    // The browser's page says how this ends, so everything from here reports to it.
    let outcome = async {
        let endpoint = token_endpoint(&provider, None)?;
        let mut tokens = oauth::request_token(
            grants.http(Some(&provider.name)),
            &endpoint,
            client_secret.as_ref(),
            oauth::Grant::Code {
                code: &code,
                redirect_uri: &redirect,
                verifier: pkce.as_ref().map(|p| &p.verifier),
            },
        )
        .await
        .map_err(|e| exchange_failed(e, name, &redirect))?;
        let refresh_token = tokens.refresh_token.is_some();
        // A response without `scope` grants what was requested (RFC 6749 §5.1).
        let granted = tokens.scope.get_or_insert_with(|| scopes.clone()).clone();

        // A new consent starts a new token family: drop the old one first.
        let grant = GrantId::user(name);
        let old_rt = grants.store().refresh_token_key(&grant);
        let _ = grants.store().delete_secrets(vec![old_rt]).await;
        let row = GrantRow {
            id: grant.clone(),
            kind: GrantKind::User,
            state: GrantState::Ok,
            generation: app
                .db()
                .grant(&grant)
                .ok()
                .flatten()
                .map_or(0, |g| g.generation),
            ..GrantRow::default()
        };
        grants.forget(&grant);
        // A fresh row: `store_tokens` records the consent time and the granted scopes.
        let access = grants.store_tokens(&grant, row, tokens).await?;

        let profile = provider.rules();
        let account = fetch_account(&grants, &provider, profile, &access).await;
        if let Some(who) = &account {
            let db = app.db();
            if let Some(mut row) = db.grant(&grant).map_err(GrantError::from)? {
                row.account_id = Some(who.id.clone());
                row.account_name = who.name.clone();
                row.account_email = who.email.clone();
                db.grant_put(&row).map_err(GrantError::from)?;
            }
        }
        let sites = fetch_sites(&grants, &provider, profile, &access).await;
        app.db()
            .sites_replace(&grant, &sites)
            .map_err(GrantError::from)?;
        crate::upstream::site::Sites::of(&grants).remember(
            &sites,
            profile,
            provider.spec.site_url.as_deref(),
        );
        crate::grant::store::note_local_write();

        let mut bound = Vec::new();
        let mut unbound = Vec::new();
        for connector in user_connectors.iter().filter(|c| c.spec.needs_site()) {
            let candidates: Vec<&SiteRow> = sites
                .iter()
                .filter(|s| {
                    connector.spec.site_scope_markers.is_empty()
                        || connector
                            .spec
                            .site_scope_markers
                            .iter()
                            .any(|m| s.scopes.contains(m.as_str()))
                })
                .collect();
            let wanted = connector.site.clone().or_else(|| options.site.clone());
            let choice = match &wanted {
                Some(w) => candidates.iter().find(|s| site_matches(s, w)).copied(),
                None if candidates.len() == 1 => candidates.first().copied(),
                None if candidates.len() > 1 => {
                    let owned: Vec<SiteRow> = candidates.iter().map(|s| (*s).clone()).collect();
                    picker
                        .and_then(|p| p.pick(&connector.name, &owned))
                        .and_then(|i| candidates.get(i).copied())
                }
                None => None,
            };
            match choice {
                Some(site) => {
                    if connector.site.as_deref() != Some(site.name.as_str()) {
                        app.connectors().bind_site(&connector.name, &site.name)?;
                    }
                    bound.push((connector.name.clone(), site.name.clone()));
                }
                None => unbound.push(connector.name.clone()),
            }
        }
        tracing::info!(provider = name, scopes = %granted, "signed in");
        let missing: Vec<Scope> = provider
            .rules()
            .missing(&scopes, &granted)
            .iter()
            .cloned()
            .collect();
        let missing_fix = (!missing.is_empty()).then(|| {
            let names: Vec<&str> = missing.iter().map(Scope::as_str).collect();
            profile.missing_scope_fix(name, &names.join(" "))
        });
        Ok(LoginOutcome {
            missing_fix,
            provider: name.to_owned(),
            account: account.map(|a| {
                let who = a.name.or(a.email).unwrap_or_default();
                if who.is_empty() {
                    a.id
                } else {
                    format!("{who} ({})", a.id)
                }
            }),
            sites: {
                let mut shown: Vec<String> = Vec::new();
                for site in &sites {
                    let label = format!("{} ({})", site.name, site.url);
                    if !shown.contains(&label) {
                        shown.push(label);
                    }
                }
                shown
            },
            bound,
            unbound,
            missing,
            refresh_token,
            token_expires_at: None,
        })
    }
    .await;
    reply.tell(&outcome).await;
    outcome
}

async fn get_json(
    grants: &Grants,
    provider: &str,
    url: &str,
    access: &Secret,
) -> Option<serde_json::Value> {
    let response = grants
        .http(Some(provider))
        .get(url)
        .bearer_auth(access.expose())
        .header("Accept", "application/json")
        .send()
        .await
        .ok()?;
    if !response.status().is_success() {
        return None;
    }
    let text = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("text/plain"));
    // Bounded: an account is a few hundred bytes.
    let body = response
        .bytes()
        .await
        .ok()
        .filter(|b| b.len() <= 64 * 1024)?;
    if text {
        // Bitbucket Data Center's whoami answers the user name as text.
        return String::from_utf8(body.to_vec())
            .ok()
            .map(serde_json::Value::String);
    }
    serde_json::from_slice(&body).ok()
}

async fn fetch_account(
    grants: &Grants,
    provider: &crate::config::Provider,
    profile: &dyn ProviderRules,
    access: &Secret,
) -> Option<Account> {
    let me = get_json(
        grants,
        &provider.name,
        provider.spec.me_url.as_deref()?,
        access,
    )
    .await?;
    profile.account(&me)
}

async fn fetch_sites(
    grants: &Grants,
    provider: &crate::config::Provider,
    profile: &dyn ProviderRules,
    access: &Secret,
) -> Vec<SiteRow> {
    let Some(url) = provider.spec.resources_url.as_deref() else {
        return Vec::new();
    };
    match get_json(grants, &provider.name, url, access).await {
        Some(resources) => profile.sites(&resources),
        None => Vec::new(),
    }
}

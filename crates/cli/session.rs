//! `latch login`, `latch logout`, `latch token`, `latch credential set`: the token lifecycle.

use std::io::IsTerminal;
use std::time::Duration;

use clap::{Args, Subcommand};
use latch_core::app::sign_in::SiteRow;
use latch_core::app::sign_in::{LoginOptions, LoginProgress, SitePicker};
use latch_core::ports::SystemBrowser;

use crate::exit::Failure;
use crate::input::read_secret;
use crate::{open_latch, print_json, runtime};

#[derive(Args)]
pub(crate) struct LoginCmd {
    /// Provider to sign in to (default: the only configured OAuth provider).
    provider: Option<String>,
    /// Print the sign-in URL instead of opening a browser.
    #[arg(long)]
    no_browser: bool,
    /// Site to bind connectors to when several fit (name, URL or cloud id).
    #[arg(long)]
    site: Option<String>,
    /// Seconds to wait for the browser to come back.
    #[arg(long, default_value_t = 300)]
    timeout: u64,
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

struct Terminal {
    no_browser: bool,
}

impl LoginProgress for Terminal {
    fn authorize_url(&self, url: &str, opened: bool) {
        if self.no_browser {
            eprintln!("Open this URL in a browser to sign in:");
            say!("{url}");
            eprintln!(
                "If that browser is on another machine, it ends at an address it cannot open \
                 (http://127.0.0.1:…/callback?…): paste that address here and press Enter (an \
                 OAuth 1.0a instance that shows a verification code: paste the code). Or forward \
                 the port first: ssh -L PORT:127.0.0.1:PORT this-host."
            );
        } else if opened {
            eprintln!("Opened your browser to sign in. If nothing appeared, open:\n  {url}");
        } else {
            eprintln!("Could not open a browser. Open this URL to sign in:\n  {url}");
        }
        eprintln!("Waiting for the sign-in to come back to Latch…");
    }

    fn refused_callback(&self, why: &str) {
        eprintln!("warning: ignored {why} (another tab or a web page?); still waiting");
    }
}

struct PromptPicker;

impl SitePicker for PromptPicker {
    fn pick(&self, connector: &str, sites: &[SiteRow]) -> Option<usize> {
        eprintln!("Several sites fit connector `{connector}`:");
        for (i, site) in sites.iter().enumerate() {
            eprintln!("  {}. {} ({})", i + 1, site.name, site.url);
        }
        eprint!("Choose 1-{} (empty to skip): ", sites.len());
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).ok()?;
        line.trim()
            .parse::<usize>()
            .ok()
            .and_then(|n| n.checked_sub(1))
    }
}

impl LoginCmd {
    pub(crate) fn run(self) -> Result<(), Failure> {
        let latch = open_latch()?;
        let provider = match self.provider {
            Some(p) => p,
            None => {
                let oauth: Vec<_> = latch
                    .config()
                    .providers
                    .iter()
                    .filter(|p| {
                        p.spec.client_type != latch_core::provider::catalog::ClientType::None
                    })
                    .map(|p| p.name.clone())
                    .collect();
                match oauth.as_slice() {
                    [one] => one.clone(),
                    [] => return Err(Failure::usage("no provider to sign in to: run `latch provider add atlassian --client-id ...` first".into())),
                    many => return Err(Failure::usage(format!("several providers: name one of {}", many.join(", ")))),
                }
            }
        };
        // Without a browser here (a box reached over SSH), the person may paste the address the
        // browser elsewhere ended at; stdin is then theirs to paste into, not a site prompt's.
        let pasted = self.no_browser.then(|| {
            let (lines, received) = tokio::sync::mpsc::channel(4);
            std::thread::spawn(move || {
                let stdin = std::io::stdin();
                let mut line = String::new();
                while matches!(stdin.read_line(&mut line), Ok(n) if n > 0) {
                    if lines.blocking_send(std::mem::take(&mut line)).is_err() {
                        break;
                    }
                }
            });
            received
        });
        let options = LoginOptions {
            provider,
            open_browser: !self.no_browser,
            site: self.site,
            timeout: Duration::from_secs(self.timeout),
            pasted: std::sync::Mutex::new(pasted),
        };
        let interactive = std::io::stdin().is_terminal() && !self.no_browser;
        let picker: Option<&dyn SitePicker> = if interactive {
            Some(&PromptPicker)
        } else {
            None
        };
        let progress = Terminal {
            no_browser: self.no_browser,
        };
        let outcome = runtime()?.block_on(latch_core::app::sign_in::login(
            &latch,
            &options,
            &SystemBrowser,
            &progress,
            picker,
        ))?;
        if self.json {
            return print_json(&outcome);
        }
        match &outcome.account {
            Some(who) => say!("Signed in to `{}` as {who}.", outcome.provider),
            None => say!("Signed in to `{}`.", outcome.provider),
        }
        if let Some(until) = outcome.token_expires_at {
            say!(
                "The token is good until {} (the instance's oauth_expires_in); `latch doctor` warns ahead.",
                latch_core::clock::fmt_time(until)
            );
        } else if !outcome.refresh_token {
            say!("warning: no refresh token was issued; you will need to sign in again when the access token expires (is `offline_access` requested and allowed?)");
        }
        if !outcome.sites.is_empty() {
            say!("Sites: {}", outcome.sites.join(", "));
        }
        for (connector, site) in &outcome.bound {
            say!("  {connector} → {site}");
        }
        for connector in &outcome.unbound {
            say!(
                "  {connector}: several sites fit; choose one (no new consent): `latch connector set {connector} --site NAME`"
            );
        }
        if !outcome.missing.is_empty() {
            let missing: Vec<_> = outcome.missing.iter().map(|s| s.as_str()).collect();
            say!(
                "warning: these requested scopes were not granted: {}\n  Connectors needing them stay `needs_step_up`; `latch status` shows which. To get them: {}.",
                missing.join(" "),
                outcome.missing_fix.as_deref().unwrap_or("sign in again and keep them ticked")
            );
        }
        Ok(())
    }
}

#[derive(Args)]
pub(crate) struct LogoutCmd {
    /// Provider to sign out of.
    provider: String,
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

impl LogoutCmd {
    pub(crate) fn run(self) -> Result<(), Failure> {
        let latch = open_latch()?;
        let credentials = latch.credentials();
        let outcome = runtime()?.block_on(credentials.logout(&self.provider))?;
        if self.json {
            return print_json(&outcome);
        }
        use latch_core::credential::Revocation;
        if !outcome.signed_in && outcome.keychain_items_deleted == 0 {
            say!("`{}` was not signed in.", outcome.provider);
            return Ok(());
        }
        match &outcome.revoked {
            Revocation::Revoked => say!("Revoked the sign-in at the provider."),
            Revocation::Unsupported => say!("The provider has no revocation endpoint; the tokens were deleted here and expire unused."),
            Revocation::NothingToRevoke => {}
            Revocation::Failed(why) => say!("warning: revocation at the provider failed ({why}); the tokens were deleted here."),
        }
        say!(
            "Signed out of `{}`: {} keychain item(s) deleted.",
            outcome.provider,
            outcome.keychain_items_deleted
        );
        Ok(())
    }
}

#[derive(Args)]
pub(crate) struct TokenCmd {
    /// Connector whose upstream token to print.
    connector: String,
    /// Refresh first, whatever the expiry (an explicit refresh: never throttled).
    #[arg(long)]
    refresh: bool,
    /// Print `{token, token_type, expires_at, connector, scopes}` (for exec plugins and scripts
    /// that cache): `token_type` is the header's scheme and `token` exactly what follows it.
    #[arg(long)]
    pub(crate) json: bool,
}

impl TokenCmd {
    /// The one command whose job is to print a secret: alone on stdout, nothing else there.
    pub(crate) fn run(self) -> Result<(), Failure> {
        let latch = open_latch()?;
        let credentials = latch.credentials();
        if self.json {
            let details = runtime()?.block_on(async {
                if self.refresh {
                    credentials.refresh_connector(&self.connector).await?;
                }
                credentials.token_details(&self.connector).await
            })?;
            // The one place the token goes into JSON, on purpose.
            let text = serde_json::json!({
                "connector": details.connector,
                "token_type": details.token_type,
                "token": details.token.expose(),
                "expires_at": details.expires_at.map(latch_core::clock::fmt_time),
                "scopes": details.scopes.map(|s| s.iter().map(|s| s.as_str().to_owned()).collect::<Vec<_>>()),
            });
            say!("{text}");
            return Ok(());
        }
        let token = runtime()?.block_on(async {
            if self.refresh {
                credentials.refresh_connector(&self.connector).await?;
            }
            credentials.bare_token(&self.connector).await
        })?;
        say!("{}", token.expose());
        Ok(())
    }
}

#[derive(Subcommand)]
pub(crate) enum CredentialCmd {
    /// Store a connector's API token, PAT, password, API key or service-account secret (read
    /// from stdin or a prompt, never from arguments), then check it upstream.
    #[command(
        after_help = "Example:\n  latch credential set jira-tok --expires 2027-06-30 <<< \"$API_TOKEN\""
    )]
    Set {
        /// Connector name.
        connector: String,
        /// When the credential expires (`2027-03-01` or RFC 3339): status shows it and doctor
        /// warns 14 days ahead. Atlassian API tokens live at most a year.
        #[arg(long)]
        expires: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Delete a connector's credential from the keychain.
    #[command(after_help = "Example:\n  latch credential remove jira-tok")]
    Remove {
        /// Connector name.
        connector: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

impl CredentialCmd {
    pub(crate) fn json(&self) -> bool {
        match self {
            Self::Set { json, .. } | Self::Remove { json, .. } => *json,
        }
    }

    pub(crate) fn run(self) -> Result<(), Failure> {
        match self {
            Self::Set {
                connector,
                expires,
                json,
            } => {
                let expires_at = expires
                    .as_deref()
                    .map(|text| {
                        latch_core::clock::parse_date_or_time(text).ok_or_else(|| {
                            Failure::usage(format!(
                                "`{text}` is not a date: write it like 2027-03-01"
                            ))
                        })
                    })
                    .transpose()?;
                let latch = open_latch()?;
                let secret = read_secret(&format!("Credential for {connector}: "))?;
                let stored = runtime()?.block_on(
                    latch
                        .connectors()
                        .set_credential(&connector, secret, expires_at),
                )?;
                if json {
                    print_json(&stored)?;
                } else {
                    say!(
                        "Stored the credential of `{}` in the OS keychain.",
                        stored.connector
                    );
                    if let Some(kind) = stored.token_kind {
                        say!(
                            "It is a {kind} API token: Latch sends it to {}.",
                            if kind == "classic" {
                                "the site URL"
                            } else {
                                "the API gateway"
                            }
                        );
                    }
                    if let Some(at) = &stored.expires_at {
                        say!("It expires {at}; `latch doctor` warns 14 days ahead.");
                    }
                }
                use latch_core::credential::CheckResult;
                match stored.check.result {
                    CheckResult::Ok => {
                        if !json {
                            say!("Checked: {}.", stored.check.detail);
                        }
                        Ok(())
                    }
                    // Set-up not finished (no site yet): kept, said, done.
                    CheckResult::Unchecked if !stored.check.unreachable => {
                        eprintln!("warning: {}", stored.check.detail);
                        Ok(())
                    }
                    // Nothing answered: kept either way (nothing typed is lost); the exit code
                    // tells scripts.
                    CheckResult::Unchecked => Err(Failure::after_answer(
                        latch_core::ErrorCode::CredentialUnchecked,
                        format!(
                            "the credential is stored, but it could not be checked: {}; Latch \
                             checks it again on first use (`latch doctor` does now)",
                            stored.check.detail
                        ),
                    )),
                    CheckResult::Rejected => Err(Failure::after_answer(
                        latch_core::ErrorCode::CredentialRejected,
                        format!(
                            "the credential is stored, but it was refused: {}",
                            stored.check.detail
                        ),
                    )),
                }
            }
            Self::Remove { connector, json } => {
                let latch = open_latch()?;
                let removed =
                    runtime()?.block_on(latch.connectors().remove_credential(&connector))?;
                if json {
                    return print_json(&removed);
                }
                if removed.deleted {
                    say!(
                        "Deleted the credential of `{}` from the OS keychain.",
                        removed.connector
                    );
                } else {
                    say!("`{}` had no credential stored.", removed.connector);
                }
                Ok(())
            }
        }
    }
}

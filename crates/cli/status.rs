//! `latch status`: a table for people, `--json` (schema `latch.status/v1`) for scripts.

use clap::Args;

use crate::exit::Failure;
use crate::table;
use crate::{open_latch, print_json};

#[derive(Args)]
pub(crate) struct Cmd {
    /// Print JSON (schema `latch.status/v1`, see the README).
    #[arg(long)]
    pub(crate) json: bool,
}

impl Cmd {
    pub(crate) fn run(self) -> Result<(), Failure> {
        let latch = open_latch()?;
        let report = latch.status()?;
        if self.json {
            return print_json(&report);
        }
        if report.providers.is_empty() && report.connectors.is_empty() {
            say!("Nothing set up yet.");
            say!("  1. latch provider add atlassian --client-id ID   (secret on stdin)");
            say!("  2. latch connector add jira");
            return Ok(());
        }
        if let Some(serving) = &report.home.serving {
            say!("proxy: serving {}", serving.describe());
        }
        for p in &report.providers {
            say!(
                "provider {} ({}): {} scope(s) requested",
                p.name,
                p.display_name,
                p.requested_scopes.len()
            );
            if !p.requested_scope_string.is_empty() {
                say!("  scope= {}", p.requested_scope_string);
            }
            if let Some(g) = &p.grant {
                let who = g
                    .account_name
                    .clone()
                    .or_else(|| g.account_email.clone())
                    .unwrap_or_default();
                say!(
                    "  signed in as {who} · access token until {} · last refresh {} · {}",
                    g.access_expires_at
                        .map_or_else(|| "-".to_owned(), latch_core::clock::fmt_time),
                    g.refreshed_at
                        .map_or_else(|| "never".to_owned(), latch_core::clock::fmt_time),
                    g.state
                );
                if let Some(err) = &g.last_error {
                    say!("  last error: {err}");
                }
            }
        }
        say!();
        let rows: Vec<Vec<String>> = report
            .connectors
            .iter()
            .map(|c| {
                let missing: Vec<_> = c.scopes.missing.iter().map(|s| s.as_str()).collect();
                // A stored credential's expiry, or an OAuth 1.0a sign-in's token's.
                let expires = c
                    .credential
                    .as_ref()
                    .and_then(|cr| cr.expires_at)
                    .or_else(|| c.attention.as_ref().map(|a| a.at));
                vec![
                    c.name.clone(),
                    c.provider.clone(),
                    c.auth.as_str().to_owned(),
                    match &c.attention {
                        Some(a) => format!("{} ({})", c.state.as_str(), a.code),
                        None => c.state.as_str().to_owned(),
                    },
                    expires.map_or_else(
                        || "-".to_owned(),
                        |at| latch_core::clock::fmt_time(at)[..10].to_owned(),
                    ),
                    c.site.clone().unwrap_or_else(|| "-".to_owned()),
                    if missing.is_empty() {
                        "-".to_owned()
                    } else {
                        missing.join(" ")
                    },
                ]
            })
            .collect();
        table::print(
            &[
                "CONNECTOR",
                "PROVIDER",
                "AUTH",
                "STATE",
                "EXPIRES",
                "SITE",
                "MISSING",
            ],
            &rows,
        );
        let mut seen = std::collections::BTreeSet::new();
        let findings: Vec<_> = report
            .providers
            .iter()
            .flat_map(|p| &p.findings)
            .chain(report.connectors.iter().flat_map(|c| &c.findings))
            .filter(|f| seen.insert((f.code.clone(), f.subject.clone(), f.message.clone())))
            .collect();
        if !findings.is_empty() {
            say!();
            for f in findings {
                say!(
                    "{:?} [{}] {}: {}\n  fix: {}",
                    f.severity,
                    f.code,
                    f.subject,
                    f.message,
                    f.fix
                );
            }
        }
        Ok(())
    }
}

//! `latch connector add|remove|list|catalog`.

use clap::{Args, Subcommand};
use latch_core::catalog::AuthMode;
use latch_core::AddConnector;

use crate::exit::Failure;
use crate::table;
use crate::{open_latch, print_json};

#[derive(Subcommand)]
pub(crate) enum Cmd {
    /// Add a connector; prints how its scopes change its provider's request.
    Add(Box<AddArgs>),
    /// Remove a connector; prints the scopes no connector needs any more.
    Remove {
        /// Connector name.
        name: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List configured connectors.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List the connector types Latch knows (built-in and from manifests).
    Catalog {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args)]
pub(crate) struct AddArgs {
    /// Connector name: a catalog entry (`jira`, `confluence`, `jsm`, `bitbucket`, `opsgenie`),
    /// or any name with --type.
    name: String,
    /// Catalog entry, for a second instance under another name.
    #[arg(long = "type")]
    kind: Option<String>,
    /// Provider to sign in through (default: the catalog entry's).
    #[arg(long)]
    provider: Option<String>,
    /// Auth mode: user, service, api-token, pat, api-key (default: the entry's first).
    #[arg(long)]
    auth: Option<String>,
    /// Site name, URL or cloud id.
    #[arg(long)]
    site: Option<String>,
    /// Account e-mail, for `--auth api-token` (the Basic user name).
    #[arg(long)]
    email: Option<String>,
    /// Service-account client id, for `--auth service` (its secret: `latch credential set`).
    #[arg(long)]
    client_id: Option<String>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

impl Cmd {
    pub(crate) fn json(&self) -> bool {
        match self {
            Self::Add(a) => a.json,
            Self::Remove { json, .. } | Self::List { json } | Self::Catalog { json } => *json,
        }
    }

    pub(crate) fn run(self) -> Result<(), Failure> {
        match self {
            Self::Add(args) => add(*args),
            Self::Remove { name, json } => remove(&name, json),
            Self::List { json } => list(json),
            Self::Catalog { json } => catalog(json),
        }
    }
}

fn add(args: AddArgs) -> Result<(), Failure> {
    let auth = match &args.auth {
        None => None,
        Some(text) => Some(AuthMode::parse(text).ok_or_else(|| {
            Failure::usage(format!(
                "unknown auth mode `{text}`: use user, service, api-token, pat or api-key"
            ))
        })?),
    };
    let mut latch = open_latch()?;
    let added = latch.add_connector(AddConnector {
        name: args.name,
        kind: args.kind,
        provider: args.provider,
        auth,
        site: args.site,
        email: args.email,
        client_id: args.client_id,
    })?;
    if args.json {
        return print_json(&added);
    }
    say!(
        "Added connector `{}` (provider `{}`).",
        added.name,
        added.provider
    );
    if added.diff.added.is_empty() && added.diff.shared.is_empty() {
        say!("It needs no OAuth scopes.");
    } else {
        say!("Scope request of `{}` after the merge:", added.provider);
        for entry in added.requested.entries() {
            let mark = if added.diff.added.contains(&entry.scope) {
                "+"
            } else if added.diff.shared.contains(&entry.scope) {
                "="
            } else {
                " "
            };
            let mut by = entry.requested_by.join(", ");
            if entry.provider_default {
                by = if by.is_empty() {
                    "provider".to_owned()
                } else {
                    format!("provider, {by}")
                };
            }
            say!("  {mark} {:<36} ({by})", entry.scope.as_str());
        }
        say!(
            "  (+ added by this connector, = already requested and now shared; {} new, {} shared)",
            added.diff.added.len(),
            added.diff.shared.len()
        );
    }
    for finding in &added.findings {
        say!(
            "{:?}: {}\n  fix: {}",
            finding.severity,
            finding.message,
            finding.fix
        );
    }
    if added.needs_step_up {
        say!(
            "The current sign-in lacks the new scopes: sign in again to consent to them \
             (`latch login {}`).",
            added.provider
        );
    }
    Ok(())
}

fn remove(name: &str, json: bool) -> Result<(), Failure> {
    let mut latch = open_latch()?;
    let removed = latch.remove_connector(name)?;
    if json {
        return print_json(&removed);
    }
    say!("Removed connector `{}`.", removed.name);
    if removed.no_longer_requested.is_empty() {
        say!("Every scope it needed is still needed by another connector.");
    } else {
        say!(
            "No connector of `{}` requests these any more:",
            removed.provider
        );
        for scope in &removed.no_longer_requested {
            say!("  - {scope}");
        }
        say!("The next sign-in asks for less; until then the grant keeps them.");
    }
    Ok(())
}

fn list(json: bool) -> Result<(), Failure> {
    let latch = open_latch()?;
    let status = latch.status()?;
    if json {
        return print_json(&status.connectors);
    }
    if status.connectors.is_empty() {
        say!("No connectors yet. Add one: latch connector add jira --provider atlassian");
        return Ok(());
    }
    let rows: Vec<Vec<String>> = status
        .connectors
        .iter()
        .map(|c| {
            vec![
                c.name.clone(),
                c.kind.clone(),
                c.provider.clone(),
                c.auth.as_str().to_owned(),
                c.site.clone().unwrap_or_else(|| "-".to_owned()),
            ]
        })
        .collect();
    table::print(&["CONNECTOR", "TYPE", "PROVIDER", "AUTH", "SITE"], &rows);
    Ok(())
}

fn catalog(json: bool) -> Result<(), Failure> {
    let latch = open_latch()?;
    let entries = latch.config().catalog.entries().connectors;
    if json {
        return print_json(&entries);
    }
    let rows: Vec<Vec<String>> = entries
        .iter()
        .map(|e| {
            vec![
                e.name.clone(),
                e.display_name.clone(),
                e.provider.clone(),
                e.auth_modes
                    .iter()
                    .map(|m| m.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            ]
        })
        .collect();
    table::print(&["TYPE", "PRODUCT", "PROVIDER", "AUTH MODES"], &rows);
    Ok(())
}

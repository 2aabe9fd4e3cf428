//! `latch connector add|remove|list|catalog`.

use clap::{Args, Subcommand};
use latch_core::app::{AddConnector, ConnectorChange};
use latch_core::config::{ConnectorSettings, ScopeSet};
use latch_core::provider::catalog::AuthMode;

use crate::exit::Failure;
use crate::table;
use crate::{open_latch, print_json};

#[derive(Subcommand)]
pub(crate) enum Cmd {
    /// Add a connector; prints how its scopes change its provider's request.
    #[command(
        after_help = "Example:\n  latch connector add jira\n  latch connector add jira-svc --type jira --auth service --client-id \"$ID\" --site acme"
    )]
    Add(Box<AddArgs>),
    /// Change a connector's site or scope set (no new consent for a site your sign-in reached).
    #[command(after_help = "Example:\n  latch connector set jira --site beta")]
    Set(SetArgs),
    /// Remove a connector; prints the scopes no connector needs any more.
    #[command(after_help = "Example:\n  latch connector remove confluence")]
    Remove {
        /// Connector name.
        name: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List configured connectors.
    #[command(after_help = "Example:\n  latch connector list --json")]
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List the connector types Latch knows (built-in and from manifests).
    #[command(after_help = "Example:\n  latch connector catalog")]
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
    /// Auth mode: user, service, api-token, pat, basic, api-key (default: the entry's first).
    #[arg(long)]
    auth: Option<String>,
    /// Site: a name (`acme` for acme.atlassian.net), a host, a URL, or a cloud id.
    #[arg(long)]
    site: Option<String>,
    /// Account e-mail, for `--auth api-token` (the Basic user name; a service account's own
    /// e-mail for its tokens).
    #[arg(long)]
    email: Option<String>,
    /// Service-account OAuth client id, for `--auth service` (its secret: `latch credential set`).
    #[arg(long)]
    client_id: Option<String>,
    /// `--auth service` or `connect-user`: a scope to request (repeat; default: none, the
    /// credential's or the app's own).
    #[arg(long = "scope")]
    scopes: Vec<String>,
    /// `--auth service`: an `audience` to send with the token request.
    #[arg(long)]
    audience: Option<String>,
    /// `--auth api-token`: where the token works, `scoped` (gateway) or `classic` (site URL).
    /// Default: Latch finds out when the token is stored.
    #[arg(long)]
    token: Option<String>,
    /// `--auth basic`: the user name.
    #[arg(long)]
    username: Option<String>,
    /// `classic` (default) or `granular` scopes.
    #[arg(long)]
    scope_set: Option<String>,
    /// A region of the provider (`eu` for Opsgenie's EU instance).
    #[arg(long)]
    region: Option<String>,
    /// `--auth connect-user`: the Atlassian account id the Connect app acts as.
    #[arg(long)]
    account_id: Option<String>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub(crate) struct SetArgs {
    /// Connector name.
    name: String,
    /// Site: a name, host, URL or cloud id (`""` unbinds it).
    #[arg(long)]
    site: Option<String>,
    /// `classic` or `granular`: which of the connector's scope sets to request.
    #[arg(long)]
    scope_set: Option<String>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

fn scope_set(text: Option<&str>) -> Result<Option<ScopeSet>, Failure> {
    text.map(|t| {
        ScopeSet::parse(t).ok_or_else(|| {
            Failure::usage(format!("unknown scope set `{t}`: use classic or granular"))
        })
    })
    .transpose()
}

impl Cmd {
    pub(crate) fn json(&self) -> bool {
        match self {
            Self::Add(a) => a.json,
            Self::Set(a) => a.json,
            Self::Remove { json, .. } | Self::List { json } | Self::Catalog { json } => *json,
        }
    }

    pub(crate) fn run(self) -> Result<(), Failure> {
        match self {
            Self::Add(args) => add(*args),
            Self::Set(args) => set(args),
            Self::Remove { name, json } => remove(&name, json),
            Self::List { json } => list(json),
            Self::Catalog { json } => catalog(json),
        }
    }
}

impl From<AddArgs> for ConnectorSettings {
    fn from(args: AddArgs) -> Self {
        Self {
            kind: args.kind,
            provider: args.provider,
            auth: args.auth,
            site: args.site,
            email: args.email,
            client_id: args.client_id,
            scopes: (!args.scopes.is_empty()).then_some(args.scopes),
            audience: args.audience,
            token: args.token,
            username: args.username,
            scope_set: args.scope_set,
            region: args.region,
            account_id: args.account_id,
            // Written by hand in latch.toml (`latch exec --intercept`).
            intercept_hosts: None,
        }
    }
}

fn add(args: AddArgs) -> Result<(), Failure> {
    let (name, json) = (args.name.clone(), args.json);
    let settings = ConnectorSettings::from(args);
    settings.check().map_err(|e| Failure::usage(e.message))?;
    let latch = open_latch()?;
    let added = latch.connectors().add(AddConnector { name, settings })?;
    if json {
        return print_json(&added);
    }
    say!(
        "Added connector `{}` (provider `{}`).",
        added.name,
        added.provider
    );
    if added.auth != AuthMode::User {
        say!(
            "It uses {} (no sign-in); store its credential: `latch credential set {}`",
            added.auth.as_str(),
            added.name
        );
    } else if added.diff.added.is_empty() && added.diff.shared.is_empty() {
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

fn set(args: SetArgs) -> Result<(), Failure> {
    if args.site.is_none() && args.scope_set.is_none() {
        return Err(Failure::usage(
            "nothing to change: pass --site SITE and/or --scope-set classic|granular".to_owned(),
        ));
    }
    let latch = open_latch()?;
    let changed = latch.connectors().change(
        &args.name,
        ConnectorChange {
            site: args.site,
            scope_set: scope_set(args.scope_set.as_deref())?,
        },
    )?;
    if args.json {
        return print_json(&changed);
    }
    say!(
        "Connector `{}`: site {}, {} scopes.",
        changed.name,
        changed.site.as_deref().unwrap_or("(none)"),
        changed.scope_set.as_str()
    );
    for scope in &changed.requested_added {
        say!("  + {scope}");
    }
    for scope in &changed.requested_removed {
        say!("  - {scope}");
    }
    if changed.needs_consent {
        let provider = latch
            .config()
            .connector(&changed.name)
            .map(|c| c.provider.clone())
            .unwrap_or_default();
        say!(
            "The sign-in lacks scopes the connector now needs: a new consent follows \
             (`latch login {provider}`)."
        );
    }
    Ok(())
}

fn remove(name: &str, json: bool) -> Result<(), Failure> {
    let latch = open_latch()?;
    let removed = latch.connectors().remove(name)?;
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

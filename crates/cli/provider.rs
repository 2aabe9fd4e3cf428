//! `latch provider add|list|secret`.

use clap::{Args, Subcommand};
use latch_core::app::{AddProvider, EndpointOverrides};

use crate::exit::Failure;
use crate::input::read_secret;
use crate::table;
use crate::{open_latch, print_json};

#[derive(Subcommand)]
pub(crate) enum Cmd {
    /// Register a provider; its client secret is read from stdin or a prompt into the keychain.
    Add(Box<AddArgs>),
    /// List configured providers.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Replace a provider's client secret (read from stdin or a prompt).
    Secret {
        /// Provider name.
        name: String,
    },
}

#[derive(Args)]
pub(crate) struct AddArgs {
    /// Provider name (`atlassian`, `bitbucket`, or a manifest's).
    name: String,
    /// Catalog preset, when the name differs from it.
    #[arg(long)]
    preset: Option<String>,
    /// OAuth client id of the app from the provider's developer console. Only connectors that
    /// sign in as you (`--auth user`) need it; leave it out for service accounts and API tokens.
    #[arg(long)]
    client_id: Option<String>,
    /// The callback registered in the console, byte for byte (default: the preset's).
    #[arg(long)]
    redirect_uri: Option<String>,
    /// The instance's URL, for Data Center presets (`jira-dc`, `confluence-dc`, `bitbucket-dc`).
    #[arg(long)]
    base_url: Option<String>,
    /// A PEM file with the CA that signs the instance's certificate (trusted for this provider
    /// only, on top of the OS trust store).
    #[arg(long)]
    ca_file: Option<std::path::PathBuf>,
    /// Override the authorize endpoint.
    #[arg(long)]
    authorize_url: Option<String>,
    /// Override the token endpoint.
    #[arg(long)]
    token_url: Option<String>,
    /// Override the revocation endpoint.
    #[arg(long)]
    revoke_url: Option<String>,
    /// Override the accessible-resources endpoint.
    #[arg(long)]
    resources_url: Option<String>,
    /// Override the account endpoint.
    #[arg(long)]
    me_url: Option<String>,
    /// Override the API gateway.
    #[arg(long)]
    api_base: Option<String>,
    /// Override the site URL template, `{site}` for the site's name.
    #[arg(long)]
    site_url: Option<String>,
    /// Override: where Connect apps ask for a user's token (the JWT bearer grant).
    #[arg(long)]
    connect_token_url: Option<String>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

impl Cmd {
    pub(crate) fn json(&self) -> bool {
        match self {
            Self::Add(a) => a.json,
            Self::List { json } => *json,
            Self::Secret { .. } => false,
        }
    }

    pub(crate) fn run(self) -> Result<(), Failure> {
        match self {
            Self::Add(args) => add(*args),
            Self::List { json } => list(json),
            Self::Secret { name } => {
                let latch = open_latch()?;
                let secret = read_secret(&format!("Client secret for {name}: "))?;
                latch.providers().set_secret(&name, secret)?;
                eprintln!("Stored the client secret of `{name}` in the OS keychain.");
                Ok(())
            }
        }
    }
}

fn add(args: AddArgs) -> Result<(), Failure> {
    let latch = open_latch()?;
    let preset = args.preset.clone().unwrap_or_else(|| args.name.clone());
    let confidential =
        latch.config().catalog.provider(&preset).is_some_and(|p| {
            p.client_type == latch_core::provider::catalog::ClientType::Confidential
        });
    let secret = if confidential && args.client_id.is_some() {
        Some(read_secret(&format!("Client secret for {}: ", args.name))?)
    } else {
        None
    };
    let added = latch.providers().add(
        AddProvider {
            name: args.name,
            preset: args.preset,
            client_id: args.client_id,
            redirect_uri: args.redirect_uri,
            base_url: args.base_url,
            ca_file: args
                .ca_file
                .map(|path| std::path::absolute(&path).unwrap_or(path)),
            endpoints: EndpointOverrides {
                authorize_url: args.authorize_url,
                token_url: args.token_url,
                revoke_url: args.revoke_url,
                resources_url: args.resources_url,
                me_url: args.me_url,
                api_base: args.api_base,
                site_url: args.site_url,
                connect_token_url: args.connect_token_url,
            },
        },
        secret,
    )?;
    if args.json {
        return print_json(&added);
    }
    let verb = if added.updated { "Updated" } else { "Added" };
    say!("{verb} provider `{}`.", added.name);
    if added.secret_stored {
        say!("The client secret is in the OS keychain (not in latch.toml).");
    }
    if !added.has_app {
        say!(
            "No client id: this provider serves service accounts and API tokens (no sign-in). \
             For `latch login`, add the app's id: `latch provider add {} --client-id ID`.",
            added.name
        );
    } else if let Some(uri) = &added.redirect_uri {
        say!("Register this callback URL in the app's settings, exactly: {uri}");
    }
    if let Some(console) = &added.console_url {
        say!("Developer console: {console}");
    }
    say!("Next: `latch connector add jira --provider {}`", added.name);
    Ok(())
}

fn list(json: bool) -> Result<(), Failure> {
    let latch = open_latch()?;
    let status = latch.status()?;
    if json {
        return print_json(&status.providers);
    }
    if status.providers.is_empty() {
        say!("No providers yet. Add one: latch provider add atlassian --client-id ID");
        return Ok(());
    }
    let rows: Vec<Vec<String>> = status
        .providers
        .iter()
        .map(|p| {
            let secret = match p.client_secret {
                latch_core::health::status::ClientSecretState::Stored => "stored",
                latch_core::health::status::ClientSecretState::Missing => "MISSING",
                latch_core::health::status::ClientSecretState::NotNeeded => "-",
            };
            vec![
                p.name.clone(),
                p.preset.clone(),
                p.client_id.clone().unwrap_or_else(|| "-".to_owned()),
                secret.to_owned(),
                p.redirect_uri.clone().unwrap_or_else(|| "-".to_owned()),
            ]
        })
        .collect();
    table::print(
        &["PROVIDER", "PRESET", "CLIENT ID", "SECRET", "CALLBACK"],
        &rows,
    );
    Ok(())
}

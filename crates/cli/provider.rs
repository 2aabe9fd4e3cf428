//! `latch provider add|list|secret|public-key|client-cert`.

use clap::{Args, Subcommand};
use latch_core::app::{AddProvider, EndpointOverrides, LinkKeySource, LinkPublicKey, LinkSetup};

use crate::exit::Failure;
use crate::input::read_secret;
use crate::table;
use crate::{open_latch, print_json};

#[derive(Subcommand)]
pub(crate) enum Cmd {
    /// Register a provider; its client secret is read from stdin or a prompt into the keychain.
    #[command(
        after_help = "Example:\n  latch provider add atlassian --client-id \"$CLIENT_ID\" <<< \"$CLIENT_SECRET\"\n  latch provider add corp-jira --preset jira-dc --base-url https://jira.corp.example"
    )]
    Add(Box<AddArgs>),
    /// List configured providers.
    #[command(after_help = "Example:\n  latch provider list\n  latch provider list --json")]
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Replace a provider's client secret (read from stdin or a prompt).
    #[command(after_help = "Example:\n  latch provider secret atlassian <<< \"$CLIENT_SECRET\"")]
    Secret {
        /// Provider name.
        name: String,
    },
    /// Print the public key of an OAuth 1.0a application link (what its incoming
    /// authentication needs), from the private key in the keychain.
    #[command(after_help = "Example:\n  latch provider public-key old-jira > latch-link.pub")]
    PublicKey {
        /// Provider name.
        name: String,
        /// Print JSON (consumer key, public key, fingerprint).
        #[arg(long)]
        json: bool,
    },
    /// Present a client certificate (mTLS) on every connection to the provider's endpoints
    /// and API: the key goes to the keychain, the certificate's path to latch.toml.
    #[command(
        name = "client-cert",
        after_help = "Example:\n  latch provider client-cert corp-jira --cert ~/certs/me.pem --key ~/certs/me.key\n  shred -u ~/certs/me.key   # the keychain holds it now"
    )]
    ClientCert {
        /// Provider name.
        name: String,
        /// The PEM certificate (with its chain, if any) the gateway's admin issued.
        #[arg(long, value_name = "FILE")]
        cert: std::path::PathBuf,
        /// Its private key, PKCS#1, PKCS#8 or EC PEM (read once into the keychain).
        #[arg(long, value_name = "FILE")]
        key: std::path::PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
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
    /// An MCP server's endpoint (`--preset mcp`; overrides `atlassian-mcp`'s).
    #[arg(long)]
    mcp_url: Option<String>,
    /// An OAuth 1.0a application link (Jira, Confluence Data Center): Latch makes an RSA key
    /// pair (private key in the keychain) and prints what to paste into the link.
    #[arg(long, requires = "consumer_key")]
    oauth1: bool,
    /// `--oauth1`: the consumer key the link's incoming authentication uses.
    #[arg(long, requires = "oauth1")]
    consumer_key: Option<String>,
    /// `--oauth1`: use this PEM private key (PKCS#1 or PKCS#8) instead of making one.
    #[arg(long, requires = "oauth1", conflicts_with = "new_key")]
    private_key: Option<std::path::PathBuf>,
    /// `--oauth1`: replace the link's key with a new one (the link needs the new public key).
    #[arg(long, requires = "oauth1")]
    new_key: bool,
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
            Self::PublicKey { json, .. } | Self::ClientCert { json, .. } => *json,
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
            Self::PublicKey { name, json } => {
                let latch = open_latch()?;
                let key = latch.providers().public_key(&name)?;
                if json {
                    return print_json(&key);
                }
                // The PEM alone on stdout (`> latch.pub` works); the fields to stderr.
                eprintln!(
                    "Consumer key: {}  (fingerprint {})",
                    key.consumer_key, key.fingerprint
                );
                print!("{}", key.public_key);
                Ok(())
            }
            Self::ClientCert {
                name,
                cert,
                key,
                json,
            } => {
                let latch = open_latch()?;
                let pem = std::fs::read_to_string(&key).map_err(|e| {
                    Failure::usage(format!(
                        "cannot read the private key {}: {e}",
                        key.display()
                    ))
                })?;
                let set = latch.providers().set_client_cert(
                    &name,
                    &cert,
                    &latch_core::secret::Secret::new(pem),
                )?;
                if json {
                    return print_json(&set);
                }
                eprintln!(
                    "Provider `{}` presents {} (expires {}) on every connection.\n\
                     The key is in the OS keychain; latch.toml names the certificate: {}\n\
                     You may delete the key file now.",
                    set.provider,
                    set.subject,
                    latch_core::clock::fmt_time(set.not_after),
                    set.path
                );
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
    let link = match (args.oauth1, args.consumer_key) {
        (true, Some(consumer_key)) => Some(LinkSetup {
            consumer_key,
            key: match (&args.private_key, args.new_key) {
                (Some(path), _) => {
                    let text = std::fs::read_to_string(path).map_err(|e| {
                        Failure::usage(format!(
                            "cannot read the private key {}: {e}",
                            path.display()
                        ))
                    })?;
                    LinkKeySource::Import(latch_core::secret::Secret::new(text))
                }
                (None, true) => LinkKeySource::New,
                (None, false) => LinkKeySource::Keep,
            },
        }),
        _ => None,
    };
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
                mcp_url: args.mcp_url,
            },
            link,
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
    let first_type = added
        .connector_types
        .first()
        .cloned()
        .unwrap_or_else(|| "TYPE".to_owned());
    // Explicit: with two instances of one preset, a connector cannot guess.
    let provider_arg = format!(" --provider {}", added.name);
    if let Some(link) = &added.link {
        print_link(link);
        say!(
            "Next: `latch connector add {first_type}{provider_arg}` (then `latch login {}`), or \
             `latch connector add {first_type}-link --type {first_type}{provider_arg} --auth \
             oauth1-2lo` for the link itself",
            added.name
        );
        return Ok(());
    }
    if added.mcp {
        say!(
            "Nothing to register by hand: at the first `latch login {}` Latch registers itself \
             with the MCP server's authorization server (callback {}).",
            added.name,
            added.redirect_uri.as_deref().unwrap_or("-")
        );
    } else if !added.has_app && added.data_center {
        say!(
            "No client id: connectors of this instance use personal access tokens, passwords or \
             service accounts (no sign-in). To sign in as you, an admin creates an incoming \
             application link; then `latch provider add {} --client-id ID`.",
            added.name
        );
    } else if !added.has_app {
        say!(
            "No client id: this provider serves service accounts and API tokens (no sign-in). \
             For `latch login`, add the app's id: `latch provider add {} --client-id ID`.",
            added.name
        );
    } else if let Some(uri) = &added.redirect_uri {
        say!("Register this callback URL in the app's settings, exactly: {uri}");
    }
    if let Some(console) = &added.console_url {
        if added.data_center {
            say!("Application links: {console}");
        } else {
            say!("Developer console: {console}");
        }
    }
    let example = if added.has_app || !added.data_center {
        format!("latch connector add {first_type}{provider_arg}")
    } else {
        format!("latch connector add {first_type}{provider_arg} --auth pat")
    };
    say!(
        "Next: `{example}` (types: {})",
        added.connector_types.join(", ")
    );
    Ok(())
}

/// What the admin fills in on the instance.
fn print_link(link: &LinkPublicKey) {
    let what = match link.key.as_str() {
        "kept" => "The link keeps its key (the one in the OS keychain).",
        "imported" => "The private key you gave is now in the OS keychain.",
        "rotated" => {
            "A NEW key replaced the old one: paste the public key below into the link again; \
             requests fail until you do."
        }
        _ => "Made an RSA-2048 key pair; the private key is in the OS keychain only.",
    };
    say!("{what}");
    say!("On the instance, create an application link to any URL (this machine needs none), then");
    say!("set its incoming authentication (OAuth) to:");
    say!("  Consumer key:  {}", link.consumer_key);
    say!("  Consumer name: {}", link.consumer_name);
    say!("  Public key:    (below; fingerprint {})", link.fingerprint);
    say!("{}", link.public_key.trim_end());
    if let Some(console) = &link.console_url {
        say!("Application links: {console}");
    }
    say!(
        "For 2-legged use tick \"Allow 2-Legged OAuth\" (and impersonation, for `--username`). \
         `latch provider public-key {}` prints the key again.",
        link.provider
    );
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
    // Only homes with a client certificate get the column.
    let certs = status.providers.iter().any(|p| p.client_cert.is_some());
    let rows: Vec<Vec<String>> = status
        .providers
        .iter()
        .map(|p| {
            let secret = match p.client_secret {
                latch_core::health::status::ClientSecretState::Stored => "stored",
                latch_core::health::status::ClientSecretState::Missing => "MISSING",
                latch_core::health::status::ClientSecretState::NotNeeded => "-",
            };
            let mut row = vec![
                p.name.clone(),
                p.preset.clone(),
                p.client_id.clone().unwrap_or_else(|| "-".to_owned()),
                secret.to_owned(),
                p.redirect_uri.clone().unwrap_or_else(|| "-".to_owned()),
            ];
            if certs {
                row.push(p.client_cert.as_ref().map_or_else(
                    || "-".to_owned(),
                    |c| {
                        format!(
                            "{} (until {})",
                            c.subject,
                            latch_core::clock::fmt_time(c.not_after)
                        )
                    },
                ));
            }
            row
        })
        .collect();
    let mut headers = vec!["PROVIDER", "PRESET", "CLIENT ID", "SECRET", "CALLBACK"];
    if certs {
        headers.push("CLIENT CERTIFICATE");
    }
    table::print(&headers, &rows);
    Ok(())
}

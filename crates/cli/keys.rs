//! `latch keys create|list|revoke` and `latch audit`.

use clap::{Args, Subcommand};

use latch_core::clock::fmt_time;
use latch_core::local_key::KeyPolicy;

use crate::exit::Failure;
use crate::{open_latch, print_json, table};

/// What a new key may do: mapped onto the core's `KeyPolicy` as it is.
#[derive(Args)]
pub(crate) struct PolicyArgs {
    /// Connector it may reach (repeat for several).
    #[arg(long = "connector", required = true)]
    connectors: Vec<String>,
    /// Only GET, HEAD and OPTIONS.
    #[arg(long)]
    read_only: bool,
    /// Path pattern below the connector, `*` matching anything (repeat for several).
    #[arg(long = "path")]
    paths: Vec<String>,
    /// On MCP connectors: a tool it may list and call (repeat for several; default: all).
    #[arg(long = "mcp-tool", value_name = "NAME")]
    mcp_tools: Vec<String>,
}

impl From<PolicyArgs> for KeyPolicy {
    fn from(args: PolicyArgs) -> Self {
        Self {
            connectors: args.connectors,
            read_only: args.read_only,
            paths: (!args.paths.is_empty()).then_some(args.paths),
            mcp_tools: (!args.mcp_tools.is_empty()).then_some(args.mcp_tools),
        }
    }
}

#[derive(Subcommand)]
pub(crate) enum KeysCmd {
    /// Create a key for one tool; the key is printed once, alone on stdout.
    #[command(
        after_help = "Example:\n  KEY=$(latch keys create ci --connector jira --read-only --ttl 8h)"
    )]
    Create {
        /// Name shown in the audit log.
        name: String,
        #[command(flatten)]
        policy: PolicyArgs,
        /// Lifetime: 30m, 8h, 7d (default: until revoked).
        #[arg(long)]
        ttl: Option<String>,
        /// Print `{key, policy}` as JSON (the key is in it: shown once).
        #[arg(long)]
        json: bool,
    },
    /// List keys and their policies (never the keys).
    #[command(after_help = "Example:\n  latch keys list")]
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key: the proxy refuses it within a second.
    #[command(after_help = "Example:\n  latch keys revoke ci")]
    Revoke {
        /// Key name.
        name: String,
    },
}

impl KeysCmd {
    pub(crate) fn json(&self) -> bool {
        matches!(
            self,
            Self::List { json: true } | Self::Create { json: true, .. }
        )
    }

    pub(crate) fn run(self) -> Result<(), Failure> {
        let latch = open_latch()?;
        match self {
            Self::Create {
                name,
                policy,
                ttl,
                json,
            } => {
                let ttl = ttl
                    .as_deref()
                    .map(latch_core::local_key::parse_ttl)
                    .transpose()
                    .map_err(Failure::usage)?;
                let (key, created) = latch.keys().create(&name, policy.into(), ttl)?;
                if json {
                    // The key goes into JSON here, on purpose: this is its one showing.
                    let mut value = serde_json::to_value(&created)
                        .map_err(|e| Failure::internal(e.to_string()))?;
                    value["key"] = serde_json::Value::String(key.expose().to_owned());
                    return print_json(&value);
                }
                // Alone on stdout, so `KEY=$(latch keys create ...)` works.
                say!("{}", key.expose());
                eprintln!(
                    "Created key `{}` for {}{}{}. It is shown once; Latch keeps only its hash.",
                    created.name,
                    created.policy.connectors.join(", "),
                    if created.policy.read_only {
                        " (read-only)"
                    } else {
                        ""
                    },
                    created
                        .expires_at
                        .map(|e| format!(", expires {}", fmt_time(e)))
                        .unwrap_or_default()
                );
                Ok(())
            }
            Self::List { json } => {
                let keys = latch.keys().list()?;
                if json {
                    return print_json(&keys);
                }
                let rows: Vec<Vec<String>> = keys
                    .iter()
                    .map(|k| {
                        vec![
                            k.name.clone(),
                            k.policy.connectors.join(","),
                            if k.policy.read_only {
                                "read-only"
                            } else {
                                "read-write"
                            }
                            .to_owned(),
                            match &k.policy.paths {
                                None => "any".to_owned(),
                                // Stored patterns that were ambiguous fail closed (migration 3).
                                Some(p) if p.is_empty() => {
                                    "NONE (recreate the key: its stored paths were ambiguous)"
                                        .to_owned()
                                }
                                Some(p) => p.join(" "),
                            } + &k
                                .policy
                                .mcp_tools
                                .as_ref()
                                .map(|t| format!(" (MCP tools: {})", t.join(", ")))
                                .unwrap_or_default(),
                            k.expires_at.map_or_else(|| "-".to_owned(), fmt_time),
                            if k.revoked_at.is_some() {
                                "revoked"
                            } else {
                                "live"
                            }
                            .to_owned(),
                        ]
                    })
                    .collect();
                table::print(
                    &["KEY", "CONNECTORS", "METHODS", "PATHS", "EXPIRES", "STATE"],
                    &rows,
                );
                Ok(())
            }
            Self::Revoke { name } => {
                latch.keys().revoke(&name)?;
                say!("Revoked key `{name}`.");
                Ok(())
            }
        }
    }
}

#[derive(Args)]
pub(crate) struct AuditCmd {
    /// Only requests at or after this time (RFC 3339) or this long ago (30m, 8h, 7d).
    #[arg(long)]
    since: Option<String>,
    /// Only requests made with this key.
    #[arg(long)]
    key: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

impl AuditCmd {
    pub(crate) fn run(self) -> Result<(), Failure> {
        let latch = open_latch()?;
        let entries = latch.audit(&latch_core::app::audit::AuditQuery {
            since: self.since,
            key: self.key,
            ..Default::default()
        })?;
        if self.json {
            return print_json(&entries);
        }
        let rows: Vec<Vec<String>> = entries
            .iter()
            .map(|e| {
                vec![
                    fmt_time(e.at),
                    e.key.clone().unwrap_or_else(|| "-".into()),
                    e.connector.clone().unwrap_or_else(|| "-".into()),
                    e.method.clone(),
                    match &e.reason {
                        Some(reason) => format!("(refused before a key: {reason})"),
                        None => e.path.clone(),
                    },
                    if e.count > 1 || e.reason.is_some() {
                        format!("{} ×{}", e.status, e.count)
                    } else {
                        e.status.to_string()
                    },
                    // A minute's count of refusals has no size or latency of its own.
                    if e.reason.is_some() {
                        "-".to_owned()
                    } else {
                        e.bytes.to_string()
                    },
                    if e.reason.is_some() {
                        "-".to_owned()
                    } else {
                        format!("{:.1}ms", e.latency_us as f64 / 1000.0)
                    },
                    if e.refreshed { "refreshed" } else { "" }.to_owned(),
                ]
            })
            .collect();
        table::print(
            &[
                "TIME",
                "KEY",
                "CONNECTOR",
                "METHOD",
                "PATH",
                "STATUS",
                "BYTES",
                "LATENCY",
                "",
            ],
            &rows,
        );
        Ok(())
    }
}

//! `latch git-credential`: git's credential helper (`get`, `store`, `erase`) and `install`,
//! which writes the helper line into git's global configuration.

use std::io::{Read as _, Write as _};
use std::process::Command;

use clap::{Args, Subcommand};
use latch_core::app::git_credential::{self, GitRequest};

use crate::exit::Failure;
use crate::{open_latch, runtime};

#[derive(Args)]
pub(crate) struct GitCredentialCmd {
    /// The connector whose credential git gets (default: the one whose git URL matches git's
    /// host: bitbucket.org for Bitbucket Cloud, the base URL for Bitbucket Data Center).
    #[arg(long, global = true)]
    connector: Option<String>,
    #[command(subcommand)]
    op: GitOp,
}

#[derive(Subcommand)]
enum GitOp {
    /// (git) Print a fresh credential for the repository git names on stdin.
    #[command(
        after_help = "Example:\n  git credential fill <<< $'protocol=https\\nhost=bitbucket.org\\n'   # git calls it so"
    )]
    Get,
    /// (git) Nothing to do: Latch already holds the credential.
    #[command(
        after_help = "Example:\n  latch git-credential store   # a no-op: Latch never writes tokens to plain files"
    )]
    Store,
    /// (git) The credential was refused: the next `get` refreshes it.
    #[command(
        after_help = "Example:\n  latch git-credential erase   # git calls it after a refused token"
    )]
    Erase,
    /// Write `credential.<url>.helper` into git's global configuration.
    #[command(
        after_help = "Example:\n  latch git-credential install\n  latch git-credential install --host https://git.corp.example --connector bitbucket-dc"
    )]
    Install {
        /// The URL git clones from (`https://bitbucket.org`, a Data Center base URL, or
        /// `host:port`, taken as https). Default: every connector's git URL.
        #[arg(long)]
        host: Option<String>,
    },
}

impl GitCredentialCmd {
    pub(crate) fn run(self) -> Result<(), Failure> {
        match self.op {
            GitOp::Install { host } => install(self.connector.as_deref(), host.as_deref()),
            // Git reads nothing back from `store`; the input is drained so git is not cut off.
            GitOp::Store => read_input().map(|_| ()),
            GitOp::Get => get(self.connector.as_deref()),
            GitOp::Erase => erase(self.connector.as_deref()),
        }
    }
}

fn read_input() -> Result<GitRequest, Failure> {
    let mut text = String::new();
    std::io::stdin()
        .take(64 * 1024 + 1)
        .read_to_string(&mut text)
        .map_err(|e| Failure::usage(format!("cannot read git's request on stdin: {e}")))?;
    GitRequest::parse(&text).map_err(|e| Failure::usage(format!("git's request: {e}")))
}

fn get(named: Option<&str>) -> Result<(), Failure> {
    let request = read_input()?;
    let latch = open_latch()?;
    let config = latch.config();
    let Some(connector) = git_credential::connector_for(&config, named, &request)? else {
        // Not a repository Latch knows: git asks its next helper.
        return Ok(());
    };
    let answer = if std::env::var_os(latch_core::app::intercept::child::INTERCEPT_MARK).is_some() {
        Ok(git_credential::intercepted_answer())
    } else {
        let credentials = latch.credentials();
        runtime()?.block_on(git_credential::get(&credentials, connector, &request))
    };
    match answer {
        Ok(text) => {
            let mut out = std::io::stdout();
            // Written whole or not at all; a partial answer would be a wrong password.
            out.write_all(text.expose().as_bytes())
                .and_then(|()| out.flush())
                .map_err(|e| Failure::internal(format!("cannot answer git: {e}")))
        }
        Err(err) => {
            // Stop git from prompting for a password that would not help; say what would.
            let _ = writeln!(std::io::stdout(), "quit=1");
            Err(err.into())
        }
    }
}

fn erase(named: Option<&str>) -> Result<(), Failure> {
    let request = read_input()?;
    let latch = open_latch()?;
    let config = latch.config();
    let Some(connector) = git_credential::connector_for(&config, named, &request)? else {
        return Ok(());
    };
    let credentials = latch.credentials();
    runtime()?.block_on(git_credential::erase(&credentials, connector, &request))?;
    Ok(())
}

/// `'text'` for a POSIX shell (git runs `!` helpers through one).
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// `https://host` for a bare `host[:port]`; URLs stay as given, without a trailing `/`.
fn helper_url(host: &str) -> Result<String, Failure> {
    let url = if host.contains("://") {
        host.to_owned()
    } else {
        format!("https://{host}")
    };
    let parsed = url::Url::parse(&url)
        .map_err(|e| Failure::usage(format!("`{host}` is not a host or URL: {e}")))?;
    if !matches!(parsed.scheme(), "https" | "http") || parsed.host_str().is_none() {
        return Err(Failure::usage(format!(
            "`{host}` is not an http(s) URL git clones from"
        )));
    }
    Ok(url.trim_end_matches('/').to_owned())
}

fn git_config(args: &[&str]) -> Result<(), Failure> {
    let out = Command::new("git")
        .arg("config")
        .arg("--global")
        .args(args)
        .output()
        .map_err(|e| Failure::internal(format!("cannot run git (is it installed?): {e}")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(Failure::internal(format!(
            "git config failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

fn install(named: Option<&str>, host: Option<&str>) -> Result<(), Failure> {
    let latch = open_latch()?;
    let config = latch.config();
    let mut targets: Vec<(String, String)> = Vec::new();
    match host {
        Some(host) => {
            let url = helper_url(host)?;
            let connector = match named {
                Some(name) => {
                    config
                        .connector(name)
                        .ok_or_else(|| Failure::usage(format!("there is no connector `{name}`")))?;
                    name.to_owned()
                }
                None => match git_credential::git_connectors(&config).as_slice() {
                    [(c, _)] => c.name.clone(),
                    [] => {
                        return Err(Failure::usage(
                            "no connector reaches git repositories; add `bitbucket` or \
                             `bitbucket-dc` first"
                                .to_owned(),
                        ))
                    }
                    _ => {
                        return Err(Failure::usage(
                            "several connectors reach git repositories: name one with \
                             --connector"
                                .to_owned(),
                        ))
                    }
                },
            };
            targets.push((url, connector));
        }
        None => {
            for (c, url) in git_credential::git_connectors(&config) {
                if named.is_some_and(|n| n != c.name) {
                    continue;
                }
                let url = helper_url(&url)?;
                if !targets.iter().any(|(u, _)| *u == url) {
                    targets.push((url, c.name.clone()));
                }
            }
            if targets.is_empty() {
                return Err(Failure::usage(
                    "no connector reaches git repositories; add `bitbucket` or `bitbucket-dc` \
                     first, or pass --host and --connector"
                        .to_owned(),
                ));
            }
        }
    }
    let exe = std::env::current_exe()
        .map_err(|e| Failure::internal(format!("cannot find the latch binary: {e}")))?;
    // The helper must open the same home as this command, wherever git runs it from.
    let home = std::env::var_os("LATCH_HOME")
        .filter(|h| !h.is_empty())
        .map(|h| format!("LATCH_HOME={} ", shell_quote(&h.to_string_lossy())))
        .unwrap_or_default();
    for (url, connector) in &targets {
        let key = format!("credential.{url}.helper");
        let helper = format!(
            "!{home}{} git-credential --connector {}",
            shell_quote(&exe.to_string_lossy()),
            shell_quote(connector)
        );
        // An empty helper first clears helpers inherited for this URL (a `store` helper would
        // otherwise write Latch's short-lived tokens to a plain file).
        git_config(&["--replace-all", &key, ""])?;
        git_config(&["--add", &key, &helper])?;
        say!("git: {url} → connector `{connector}` ({key})");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_and_urls() {
        assert_eq!(shell_quote("/opt/it's/latch"), r"'/opt/it'\''s/latch'");
        assert_eq!(
            helper_url("bitbucket.org").ok().as_deref(),
            Some("https://bitbucket.org")
        );
        assert_eq!(
            helper_url("http://127.0.0.1:9/dc/").ok().as_deref(),
            Some("http://127.0.0.1:9/dc")
        );
        assert!(helper_url("ftp://x").is_err());
    }
}

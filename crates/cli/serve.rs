//! `latch serve` (proxy + refresh scheduler in the foreground) and `latch exec` (a child with a
//! key that lives exactly as long as it does).

use std::net::SocketAddr;
use std::sync::Arc;

use clap::Args;
use latch_core::app::exec::{ExecError, ExecPlan};
use latch_core::app::intercept::child::ChildSetup;
use latch_core::app::serving::{self, Claim};
use latch_core::config::home::Home;
use latch_core::local_key::LocalKey;
use latch_proxy::intercept::InterceptSetup;
use latch_runtime::RuntimeEvent;

use crate::exit::Failure;
use crate::{open_latch, open_latch_at};

#[derive(Args)]
pub(crate) struct ServeCmd {
    /// Listen address (default: `[proxy] listen` in latch.toml, else 127.0.0.1:7391).
    #[arg(long)]
    listen: Option<SocketAddr>,
}

fn multi_thread() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| Failure::internal(format!("cannot start the async runtime: {e}")))
}

pub(crate) async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// `latch serve` runs on one thread: requests of a connection are sequential anyway, and one
/// thread saves the work-stealing scheduler's wake-ups and atomics on every request. Keychain
/// calls and lock files go to tokio's blocking pool.
pub(crate) fn one_thread() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::internal(format!("cannot start the async runtime: {e}")))
}

impl ServeCmd {
    pub(crate) fn run(self) -> Result<(), Failure> {
        let home = Home::from_env()?;
        let listen = self.listen;
        one_thread()?.block_on(async move {
            let app = Arc::new(open_latch_at(home)?);
            // One proxy and one refresh scheduler per home.
            let claim = match serving::claim(app.home(), "latch serve") {
                Ok(Claim::Claimed(claim)) => claim,
                Ok(Claim::Held(owner)) => {
                    return Err(Failure::coded_error(
                        latch_core::ErrorCode::AlreadyServed,
                        format!(
                            "this home is already served {}; stop that first, or give this one \
                             another home (LATCH_HOME)",
                            owner.map_or_else(|| "by another Latch".to_owned(), |o| o.describe())
                        ),
                    ))
                }
                Err(err) => {
                    return Err(Failure::internal(format!(
                        "cannot claim this home for serving: {err}"
                    )))
                }
            };
            let events: latch_runtime::Events = Arc::new(|event| match event {
                RuntimeEvent::Reloaded => {
                    eprintln!("latch.toml changed: serving the new configuration")
                }
                RuntimeEvent::ReloadFailed(err) => eprintln!(
                    "latch.toml changed but cannot be used ({err}); still serving the previous \
                     configuration"
                ),
                RuntimeEvent::Moved(addr) => {
                    eprintln!("latch.toml changed the address: now listening on http://{addr}")
                }
            });
            let (runtime, _) = latch_runtime::Runtime::start(app, claim, listen, false, events)
                .await
                .map_err(|e| Failure::internal(e.to_string()))?;
            let addr = runtime
                .addr()
                .map_or_else(|| "?".to_owned(), |a| a.to_string());
            say!("Latch proxy listening on http://{addr}");
            eprintln!("Call http://{addr}/CONNECTOR/... with a local key; Ctrl-C stops.");
            wait_for_signal().await;
            eprintln!("Stopping: letting in-flight requests finish…");
            runtime.shutdown().await;
            Ok(())
        })
    }
}

#[derive(Args)]
pub(crate) struct ExecCmd {
    /// Connectors the child may reach (default: every configured connector).
    #[arg(long = "connector")]
    connectors: Vec<String>,
    /// Only GET, HEAD and OPTIONS.
    #[arg(long)]
    read_only: bool,
    /// Set the variables a tool reads: `mcp-atlassian` (JIRA_URL, JIRA_PERSONAL_TOKEN,
    /// CONFLUENCE_URL, CONFLUENCE_PERSONAL_TOKEN) or `atlassian-python-api` (JIRA_URL,
    /// JIRA_TOKEN, CONFLUENCE_URL, CONFLUENCE_TOKEN).
    #[arg(long = "for")]
    recipe: Option<String>,
    /// Set a variable from a template: `NAME={url:jira}`, `NAME={key}`, `NAME={proxy}`
    /// (repeat).
    #[arg(long = "env")]
    env: Vec<String>,
    /// Give the command the credential on requests to its connectors' real host names
    /// (`acme.atlassian.net`, `api.atlassian.com`, …): a forward proxy for this command only,
    /// with a CA that lives as long as it does.
    #[arg(long)]
    intercept: bool,
    /// With --intercept: refuse every other host instead of tunnelling it untouched.
    #[arg(long, requires = "intercept")]
    deny_other_hosts: bool,
    /// With --intercept: print which host goes to which connector, and run nothing.
    #[arg(long, requires = "intercept")]
    dry_run: bool,
    /// The command and its arguments.
    #[arg(last = true, required_unless_present = "dry_run")]
    command: Vec<String>,
}

impl ExecCmd {
    pub(crate) fn run(self) -> Result<(), Failure> {
        let latch = open_latch()?;
        let plan = ExecPlan::new(
            &latch,
            &self.connectors,
            self.read_only,
            self.recipe.as_deref(),
            &self.env,
        )
        .map_err(exec_failure)?;
        if self.dry_run {
            let map = one_thread()?
                .block_on(plan.intercept_map(&latch))
                .map_err(exec_failure)?;
            say!("{}", map.describe().trim_end());
            return Ok(());
        }
        let program = self.command[0].clone();
        let code = multi_thread()?.block_on(async move {
            let map = if self.intercept {
                Some(plan.intercept_map(&latch).await.map_err(exec_failure)?)
            } else {
                None
            };
            // A private proxy on a free port with a key only this process knows: it cannot
            // outlive the child, and no other program ever saw it.
            let proxy = latch_proxy::start(&latch, SocketAddr::from(([127, 0, 0, 1], 0)))
                .await
                .map_err(|e| Failure::internal(e.to_string()))?;
            let key = latch_core::local_key::generate();
            let exec_key = LocalKey {
                // Never stored: no row, no id.
                id: 0,
                name: format!("exec:{}", short_name(&program)),
                policy: plan.policy(),
                expires_at: None,
                revoked_at: None,
                created_at: latch_core::clock::now(),
            };
            proxy.add_ephemeral_key(&key, exec_key.clone());
            let mut vars = plan
                .env(&format!("http://{}", proxy.addr), &key)
                .map_err(exec_failure)?;
            // Under intercept: the forward proxy, its CA's bundle and the preload live in a
            // private directory that goes when this scope ends, whatever the child did.
            let mut intercepting = None;
            if let Some(map) = map {
                let password = latch_core::app::intercept::child::proxy_password();
                let hosts = map.host_names();
                let running = proxy
                    .intercept(InterceptSetup {
                        map,
                        key: exec_key,
                        password: password.clone(),
                        deny_other_hosts: self.deny_other_hosts,
                    })
                    .await
                    .map_err(|e| Failure::internal(e.to_string()))?;
                let child = ChildSetup::prepare(
                    running.addr,
                    &password,
                    &running.ca_pem,
                    &hosts,
                    &|name| std::env::var(name).ok(),
                )
                .map_err(|e| {
                    Failure::internal(format!(
                        "cannot write the command's CA bundle and proxy settings: {e}"
                    ))
                })?;
                vars.extend(child.env.iter().cloned());
                intercepting = Some((running, child));
            }
            let mut child = tokio::process::Command::new(&program);
            child.args(&self.command[1..]);
            for (name, value) in vars {
                child.env(name, value.expose());
            }
            let status = match child.spawn() {
                Ok(mut running) => wait_passing_signals(&mut running).await,
                Err(err) => Err(err),
            }
            .map_err(|e| Failure::usage(format!("cannot run `{program}`: {e}")));
            // The listener first, then the directory its child was pointed at.
            drop(intercepting);
            let status = status?;
            drop(key);
            proxy.shutdown().await;
            Ok::<_, Failure>(exit_code(status))
        })?;
        std::process::exit(code);
    }
}

/// Waits for the child. A SIGTERM or SIGHUP to `latch exec` is passed on, so the child ends
/// first and what the exec made (its key, the intercept's directory) goes after it; a Ctrl-C
/// reaches the child from the terminal already, and `latch exec` waits for it.
async fn wait_passing_signals(
    child: &mut tokio::process::Child,
) -> std::io::Result<std::process::ExitStatus> {
    #[cfg(unix)]
    {
        use rustix::process::{kill_process, Pid, Signal};
        use tokio::signal::unix::{signal, SignalKind};
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut terminate = signal(SignalKind::terminate())?;
        let mut hangup = signal(SignalKind::hangup())?;
        loop {
            let passed = tokio::select! {
                status = child.wait() => return status,
                _ = interrupt.recv() => None,
                _ = terminate.recv() => Some(Signal::TERM),
                _ = hangup.recv() => Some(Signal::HUP),
            };
            let pid = child
                .id()
                .and_then(|id| i32::try_from(id).ok())
                .and_then(Pid::from_raw);
            if let (Some(signal), Some(pid)) = (passed, pid) {
                let _ = kill_process(pid, signal);
            }
        }
    }
    #[cfg(not(unix))]
    child.wait().await
}

fn exec_failure(err: ExecError) -> Failure {
    match err {
        ExecError::Unknown(err) => err.into(),
        ExecError::Usage(message) => Failure::usage(message),
    }
}

fn short_name(program: &str) -> String {
    std::path::Path::new(program)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| program.to_owned())
}

fn exit_code(status: std::process::ExitStatus) -> i32 {
    if let Some(code) = status.code() {
        return code;
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            return 128 + signal;
        }
    }
    1
}

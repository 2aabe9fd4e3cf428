//! `latch`: the command-line face. It parses, calls `latch-core`, and prints; nothing else.

use std::process::ExitCode;

use clap::{CommandFactory as _, Parser, Subcommand};

/// Like `println!`, but a closed stdout (`latch ... | head -1`) is not a crash: the work is
/// done, the reader just stopped listening.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

mod connector;
mod doctor;
mod exit;
mod git;
mod input;
mod keychain;
mod keys;
mod manifest;
mod mcp;
mod provider;
mod serve;
mod session;
mod status;
mod table;
mod tray;

use exit::Failure;

/// Latch keeps your Atlassian tokens in the OS keychain and hands local tools fresh ones.
#[derive(Parser)]
#[command(name = "latch", version, about, max_term_width = 100)]
struct Cli {
    /// Log more to stderr: -v info, -vv debug (one line per proxied request), -vvv trace.
    /// `LATCH_LOG=debug` does the same; logs never carry a token, key or secret.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Identity providers (OAuth app registrations).
    #[command(subcommand)]
    #[command(
        after_help = "Example:\n  latch provider add atlassian --client-id \"$CLIENT_ID\" <<< \"$CLIENT_SECRET\"\n  latch provider add corp-jira --preset jira-dc --base-url https://jira.corp.example"
    )]
    Provider(provider::Cmd),
    /// Connectors: the products you reach through a provider.
    #[command(subcommand)]
    #[command(
        after_help = "Example:\n  latch connector add jira\n  latch connector add jira-svc --type jira --auth service --client-id \"$ID\" --site acme"
    )]
    Connector(connector::Cmd),
    /// Manifests that add custom providers and connectors.
    #[command(subcommand)]
    #[command(after_help = "Example:\n  latch manifest add ./acme.toml")]
    Manifest(manifest::Cmd),
    /// The OS keychain: unlock it when it is locked (`latch status` says `keychain_locked`).
    #[command(subcommand)]
    #[command(after_help = "Example:\n  latch keychain unlock")]
    Keychain(keychain::Cmd),
    /// What every connector needs, has and lacks.
    #[command(
        after_help = "Example:\n  latch status\n  latch status --json | jq '.connectors[] | {name, state}'"
    )]
    Status(status::Cmd),
    /// Sign in to a provider in your browser (one consent for all its connectors).
    #[command(
        after_help = "Example:\n  latch login atlassian\n  latch login atlassian --no-browser   # prints the URL to open elsewhere"
    )]
    Login(session::LoginCmd),
    /// Sign out of a provider: revoke where supported, delete its keychain items.
    #[command(after_help = "Example:\n  latch logout atlassian")]
    Logout(session::LogoutCmd),
    /// Print a fresh upstream token for a connector (the only command that prints a secret).
    #[command(
        after_help = "Example:\n  curl -H \"Authorization: Bearer $(latch token jira)\" https://api.atlassian.com/...\n  latch token jira --json"
    )]
    Token(session::TokenCmd),
    /// Connector credentials (API tokens, PATs, API keys, service-account secrets).
    #[command(subcommand)]
    #[command(
        after_help = "Example:\n  latch credential set jira-tok --expires 2027-06-30 <<< \"$API_TOKEN\""
    )]
    Credential(session::CredentialCmd),
    /// Run the localhost proxy and the refresh scheduler in the foreground.
    #[command(
        after_help = "Example:\n  latch serve\n  latch serve --listen 127.0.0.1:0   # an ephemeral port, printed"
    )]
    Serve(serve::ServeCmd),
    /// The desktop app's tray: the proxy and refreshes of `latch serve`, with a tray icon and
    /// notifications, in a small process the window comes and goes beside.
    #[command(
        after_help = "Example:\n  latch tray   # what `latch-desktop --tray` (autostart) runs"
    )]
    Tray(tray::TrayCmd),
    /// Local keys for tools that call the proxy.
    #[command(subcommand)]
    #[command(
        after_help = "Example:\n  KEY=$(latch keys create ci --connector jira --read-only --ttl 8h)"
    )]
    Keys(keys::KeysCmd),
    /// Run a command with a private proxy and a key that dies with it.
    #[command(
        after_help = "Example:\n  latch exec --connector jira -- python3 report.py   # gets LATCH_PROXY_URL, LATCH_KEY, LATCH_JIRA_URL\n  latch exec --intercept --connector jira -- jira issue list   # calls acme.atlassian.net with any token"
    )]
    Exec(serve::ExecCmd),
    /// Be an MCP server on stdio for an MCP client, relaying to the connector's remote MCP
    /// server with Latch's credential (the client never holds it).
    #[command(
        after_help = "Example:\n  latch mcp rovo --print-config claude-desktop\n  latch mcp rovo --tool search --tool getJiraIssue   # what the MCP client runs"
    )]
    Mcp(mcp::McpCmd),
    /// Requests that went through the proxy.
    #[command(after_help = "Example:\n  latch audit --since 1h --key ci")]
    Audit(keys::AuditCmd),
    /// Run every health check; explain each finding with its fix (exit 1 when unhealthy).
    #[command(after_help = "Example:\n  latch doctor\n  latch doctor --json --report health.html")]
    Doctor(doctor::DoctorCmd),
    /// Git's credential helper: fresh Bitbucket tokens for `git clone` (`install` sets it up).
    #[command(
        after_help = "Example:\n  latch git-credential install\n  git clone https://bitbucket.org/team/repo.git"
    )]
    GitCredential(git::GitCredentialCmd),
    /// Print a shell completion script: `latch completion bash > ~/.local/share/bash-completion/completions/latch`.
    #[command(
        after_help = "Example:\n  latch completion bash > ~/.local/share/bash-completion/completions/latch\n  latch completion zsh > \"${fpath[1]}/_latch\""
    )]
    Completion {
        /// bash, zsh, fish, powershell or elvish.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff): `latch man > ~/.local/share/man/man1/latch.1`.
    Man,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = latch_core::logs::filter(std::env::var("LATCH_LOG").ok().as_deref(), cli.verbose);
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    let json = match &cli.command {
        Command::Provider(c) => c.json(),
        Command::Connector(c) => c.json(),
        Command::Manifest(c) => c.json(),
        Command::Keychain(_) => false,
        Command::Status(c) => c.json,
        Command::Login(c) => c.json,
        Command::Logout(c) => c.json,
        Command::Keys(c) => c.json(),
        Command::Audit(c) => c.json,
        Command::Doctor(c) => c.json,
        Command::Credential(c) => c.json(),
        Command::Token(c) => c.json,
        Command::Serve(_)
        | Command::Tray(_)
        | Command::Exec(_)
        | Command::Mcp(_)
        | Command::GitCredential(_)
        | Command::Completion { .. }
        | Command::Man => false,
    };
    if let Command::Doctor(cmd) = cli.command {
        return match cmd.run() {
            Ok(code) => code,
            Err(failure) => failure.report(json),
        };
    }
    let result = match cli.command {
        Command::Provider(cmd) => cmd.run(),
        Command::Connector(cmd) => cmd.run(),
        Command::Manifest(cmd) => cmd.run(),
        Command::Keychain(cmd) => cmd.run(),
        Command::Status(cmd) => cmd.run(),
        Command::Login(cmd) => cmd.run(),
        Command::Logout(cmd) => cmd.run(),
        Command::Token(cmd) => cmd.run(),
        Command::Credential(cmd) => cmd.run(),
        Command::Serve(cmd) => cmd.run(),
        Command::Tray(cmd) => cmd.run(),
        Command::Keys(cmd) => cmd.run(),
        Command::Exec(cmd) => cmd.run(),
        Command::Mcp(cmd) => cmd.run(),
        Command::Audit(cmd) => cmd.run(),
        Command::GitCredential(cmd) => cmd.run(),
        Command::Completion { shell } => {
            let mut text = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "latch", &mut text);
            print_bytes(&text);
            Ok(())
        }
        Command::Man => {
            let mut text = Vec::new();
            clap_mangen::Man::new(Cli::command())
                .render(&mut text)
                .map(|()| print_bytes(&text))
                .map_err(|e| Failure::internal(format!("cannot render the man page: {e}")))
        }
        Command::Doctor(_) => Ok(()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => failure.report(json),
    }
}

/// Opens the home folder named by `LATCH_HOME` (or the platform default) over the OS keychain.
fn open_latch() -> Result<latch_core::app::App, Failure> {
    Ok(open_latch_at(latch_core::config::home::Home::from_env()?)?)
}

/// The core over `home` with the secret store latch.toml chose (`latch serve` reopens it when
/// latch.toml changes). A secrets file's passphrase may be asked for on the terminal.
fn open_latch_at(home: latch_core::config::home::Home) -> latch_core::Result<latch_core::app::App> {
    // Asked once per process: `latch serve` reopens the home on every latch.toml change.
    static ASKED: std::sync::OnceLock<Option<latch_core::secret::Secret>> =
        std::sync::OnceLock::new();
    let ask = || {
        ASKED
            .get_or_init(|| {
                use std::io::IsTerminal as _;
                std::io::stdin()
                    .is_terminal()
                    .then(|| {
                        rpassword::prompt_password("Passphrase of Latch's secrets file: ").ok()
                    })
                    .flatten()
                    .map(latch_core::secret::Secret::new)
            })
            .clone()
    };
    latch_core::app::App::open_choosing(home, |home, config| {
        latch_keychain::for_home(home, &config.secret_store, &ask)
    })
}

/// A single-threaded runtime: the CLI does one thing at a time; blocking keychain calls go to
/// tokio's blocking pool.
fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::internal(format!("cannot start the async runtime: {e}")))
}

/// Writes to stdout; a reader that stopped listening (`| head`) is not an error.
fn print_bytes(bytes: &[u8]) {
    use std::io::Write as _;
    let mut out = std::io::stdout();
    let _ = out.write_all(bytes).and_then(|()| out.flush());
}

fn print_json<T: serde::Serialize>(value: &T) -> Result<(), Failure> {
    let text = serde_json::to_string_pretty(value).map_err(|e| Failure::internal(e.to_string()))?;
    say!("{text}");
    Ok(())
}

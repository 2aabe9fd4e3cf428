//! `latch mcp CONNECTOR`: a stdio MCP server that relays every message to the connector's
//! remote MCP server with Latch's credential (`app::mcp::McpRelay`); the MCP client never holds
//! it. A short-lived face: no scheduler, no latch.toml watch.

use std::io::{BufRead as _, Write as _};
use std::sync::Arc;

use clap::{Args, ValueEnum};
use serde_json::{json, Value};

use crate::exit::Failure;
use crate::open_latch;

#[derive(Args)]
pub(crate) struct McpCmd {
    /// The MCP connector (`latch connector add NAME --type mcp`).
    connector: String,
    /// Only this tool (repeatable): `tools/list` shows only these, other calls are refused.
    #[arg(long = "tool", value_name = "NAME")]
    tools: Vec<String>,
    /// Print the MCP client's configuration for this connector instead of relaying.
    #[arg(long, value_name = "CLIENT", num_args = 0..=1, default_missing_value = "claude-desktop")]
    print_config: Option<McpClient>,
}

/// MCP clients whose configuration `--print-config` writes.
#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum McpClient {
    /// claude_desktop_config.json's `mcpServers`.
    ClaudeDesktop,
    /// `claude mcp add`.
    ClaudeCode,
    /// ~/.cursor/mcp.json's `mcpServers`.
    Cursor,
    /// .vscode/mcp.json's `servers`.
    Vscode,
}

impl McpCmd {
    pub(crate) fn run(self) -> Result<(), Failure> {
        if let Some(client) = self.print_config {
            return self.print_config(client);
        }
        let app = Arc::new(open_latch()?);
        let relay = Arc::new(app.mcp_relay(&self.connector, &self.tools)?);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| Failure::internal(format!("cannot start the async runtime: {e}")))?;
        runtime.block_on(relay_stdio(relay));
        Ok(())
    }

    fn print_config(&self, client: McpClient) -> Result<(), Failure> {
        let latch = std::env::current_exe()
            .map_err(|e| Failure::internal(format!("cannot tell where latch is: {e}")))?
            .display()
            .to_string();
        let mut args = vec!["mcp".to_owned(), self.connector.clone()];
        for tool in &self.tools {
            args.extend(["--tool".to_owned(), tool.clone()]);
        }
        // The client starts `latch mcp` with its own environment: the home goes with it.
        let env = std::env::var("LATCH_HOME")
            .ok()
            .map(|home| json!({ "LATCH_HOME": home }));
        let name = &self.connector;
        let mut server = json!({ "command": latch, "args": args });
        if let Some(env) = &env {
            server["env"] = env.clone();
        }
        let text = match client {
            McpClient::ClaudeDesktop | McpClient::Cursor => {
                pretty(&json!({ "mcpServers": { name: server } }))
            }
            McpClient::Vscode => {
                server["type"] = json!("stdio");
                pretty(&json!({ "servers": { name: server } }))
            }
            McpClient::ClaudeCode => {
                let env = std::env::var("LATCH_HOME")
                    .map(|home| format!(" -e LATCH_HOME={}", shell_quote(&home)))
                    .unwrap_or_default();
                let args: Vec<String> = args.iter().map(|a| shell_quote(a)).collect();
                format!(
                    "claude mcp add {}{env} -- {} {}\n",
                    shell_quote(name),
                    shell_quote(&latch),
                    args.join(" ")
                )
            }
        };
        print!("{text}");
        Ok(())
    }
}

fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default() + "\n"
}

fn shell_quote(text: &str) -> String {
    if text
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_./=:@".contains(c))
    {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
}

/// Reads one JSON-RPC message per line from stdin, relays each in a task of its own (a long
/// tool call does not hold up a cancellation), and writes every message for the client to
/// stdout, one per line. Ends when stdin ends and the messages in flight are answered.
async fn relay_stdio(relay: Arc<latch_core::app::mcp::McpRelay>) {
    let (lines, mut incoming) = tokio::sync::mpsc::unbounded_channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let (to_client, mut outgoing) = tokio::sync::mpsc::unbounded_channel::<Value>();
    let writer = tokio::spawn(async move {
        while let Some(message) = outgoing.recv().await {
            let mut stdout = std::io::stdout().lock();
            let _ = writeln!(stdout, "{message}");
            let _ = stdout.flush();
        }
    });
    let mut in_flight = tokio::task::JoinSet::new();
    // The GET stream's task, stopped when the client is done (it holds a writer).
    let listening: Arc<std::sync::Mutex<Option<tokio::task::AbortHandle>>> = Arc::default();
    while let Some(line) = incoming.recv().await {
        if line.trim().is_empty() {
            continue;
        }
        let message: Value = match serde_json::from_str(&line) {
            Ok(message) => message,
            Err(err) => {
                let _ = to_client.send(json!({"jsonrpc": "2.0", "id": null,
                    "error": {"code": -32700, "message": format!("Latch: not JSON: {err}")}}));
                continue;
            }
        };
        let (relay, to_client) = (Arc::clone(&relay), to_client.clone());
        let listening = Arc::clone(&listening);
        in_flight.spawn(async move {
            let out = move |message: Value| {
                let _ = to_client.send(message);
            };
            relay.relay(message, &out).await;
            // Once there is a session, the server's own messages come on the GET stream.
            if relay.has_session() {
                let mut slot = listening
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if slot.is_none() {
                    let task = tokio::spawn(async move { relay.listen(&out).await });
                    *slot = Some(task.abort_handle());
                }
            }
        });
    }
    while in_flight.join_next().await.is_some() {}
    if let Some(task) = listening
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take()
    {
        task.abort();
    }
    relay.close().await;
    drop(to_client);
    let _ = writer.await;
}

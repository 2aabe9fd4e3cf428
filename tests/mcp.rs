//! `latch mcp` (issue 25, the static credentials): a remote MCP server built with the official
//! MCP Python SDK (streamable HTTP, SSE answers, sessions) that takes an API token or a
//! service-account key, driven over stdio by the official MCP Python client through
//! `latch mcp`; the client never holds the credential. Tools limited with `--tool`, calls
//! audited under `mcp:CONNECTOR`, a refused credential explained as a JSON-RPC error, the proxy's
//! `/CONNECTOR` mapped to the server without its OAuth challenge, and `--print-config`.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};

use crate::support::{curl, free_port, repo_path, stderr, stdout, venv, Fixture, Home, Serve};

const EMAIL: &str = "agent@example.test";
const TOKEN: &str = "mcp-api-token-fixture-41";
const KEY: &str = "mcp-service-key-fixture-42";

/// The MCP server fixture, stopped on drop.
struct McpServer {
    child: Child,
    url: String,
}

impl McpServer {
    fn start() -> Self {
        Self::start_with(None)
    }

    /// With OAuth: access tokens of the fixture's authorization server at `issuer`.
    fn start_with(issuer: Option<&str>) -> Self {
        let mut command = Command::new(venv("python"));
        if let Some(issuer) = issuer {
            command.env("AS_URL", issuer);
        }
        let mut child = command
            .arg(repo_path("tests/fixture/mcp_server.py"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the test virtualenv's python (`make deps`)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let ready: serde_json::Value = serde_json::from_str(&line)
            .unwrap_or_else(|_| panic!("the MCP fixture did not start: {line:?}"));
        let url = format!("http://127.0.0.1:{}/mcp", ready["port"]);
        // uvicorn prints the port before it accepts: wait for the socket (bounded).
        let port = ready["port"].as_u64().unwrap() as u16;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "the MCP fixture did not listen"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        Self { child, url }
    }

    /// The `Authorization` headers it was sent.
    fn seen(&self) -> Vec<String> {
        let (status, body) = curl(&[&self.url.replace("/mcp", "/seen")]);
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).unwrap()
    }
}

impl Drop for McpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The official MCP client through `latch mcp ARGS`, calling `calls`.
fn client(home: &Home, args: &[&str], calls: &serde_json::Value) -> serde_json::Value {
    let out = Command::new(venv("python"))
        .arg(repo_path("tests/fixture/mcp_relay_client.py"))
        .arg(env!("CARGO_BIN_EXE_latch"))
        .args(args)
        .env("LATCH_HOME", home.path())
        .env("CALLS", calls.to_string())
        .output()
        .unwrap();
    assert!(out.status.success(), "the MCP client: {}", stderr(&out));
    serde_json::from_str(stdout(&out).trim()).unwrap_or_else(|_| panic!("{}", stdout(&out)))
}

fn home_with_server(server: &McpServer) -> Home {
    let home = Home::new();
    home.ok(
        &[
            "provider",
            "add",
            "rovo",
            "--preset",
            "mcp",
            "--mcp-url",
            &server.url,
        ],
        "",
    );
    home.ok(
        &[
            "connector",
            "add",
            "rovo",
            "--type",
            "mcp",
            "--provider",
            "rovo",
            "--auth",
            "api-token",
            "--email",
            EMAIL,
        ],
        "",
    );
    let out = home.ok(&["credential", "set", "rovo", "--json"], TOKEN);
    let stored: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(stored["check"]["result"], "ok", "{stored}");
    // The check's `initialize` opened a session; it was ended, not left on the server.
    let (_, ended) = curl(&[&server.url.replace("/mcp", "/ended")]);
    let ended: Vec<String> = serde_json::from_str(&ended).unwrap();
    assert_eq!(ended.len(), 1, "{ended:?}");
    assert!(!ended[0].is_empty(), "{ended:?}");
    home
}

/// An API token and a service-account key reach the server through `latch mcp`; `--tool`
/// limits what the client sees and may call; calls are audited; the client's environment
/// never held a credential.
#[test]
fn an_mcp_client_works_through_latch_mcp_with_a_token_it_never_holds() {
    let server = McpServer::start();
    let home = home_with_server(&server);
    // Without `--preset mcp`'s endpoint, the provider is refused with the way to give it.
    let out = home.run(&["provider", "add", "other", "--preset", "mcp"], "");
    assert_ne!(out.status.code(), Some(0));
    assert!(stderr(&out).contains("mcp_url"), "{}", stderr(&out));

    let got = client(
        &home,
        &["mcp", "rovo", "--tool", "echo", "--tool", "add"],
        &serde_json::json!([["echo", {"text": "hi"}], ["delete_everything", {}]]),
    );
    assert_eq!(got["tools"], serde_json::json!(["add", "echo"]), "{got}");
    assert_eq!(got["calls"][0]["text"][0], "echo: hi", "{got}");
    let refused = got["calls"][1]["error"].as_str().unwrap_or_default();
    assert!(refused.contains("not allowed"), "{got}");
    let basic = format!(
        "Basic {}",
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            format!("{EMAIL}:{TOKEN}")
        )
    );
    let seen = server.seen();
    assert!(
        !seen.is_empty() && seen.iter().all(|a| *a == basic),
        "{seen:?}"
    );

    let audit = home.json(&["audit", "--json"]);
    let rows = audit.as_array().unwrap();
    let row = |path: &str| {
        rows.iter()
            .find(|r| r["path"] == path)
            .unwrap_or_else(|| panic!("{path}: {audit}"))
    };
    assert_eq!(row("tools/call echo")["key"], "mcp:rovo");
    assert_eq!(row("tools/call echo")["status"], 200);
    assert_eq!(row("tools/call delete_everything")["status"], 403);
    assert_eq!(
        row("tools/call delete_everything")["reason"],
        "tool_not_allowed"
    );

    // A service-account key (Bearer), every tool.
    home.ok(
        &[
            "connector",
            "add",
            "rovo-key",
            "--type",
            "mcp",
            "--provider",
            "rovo",
            "--auth",
            "api-key",
        ],
        "",
    );
    home.ok(&["credential", "set", "rovo-key"], KEY);
    let got = client(
        &home,
        &["mcp", "rovo-key"],
        &serde_json::json!([["add", {"a": 2, "b": 3}], ["__await_list_changed", {}]]),
    );
    assert_eq!(
        got["tools"],
        serde_json::json!(["add", "change_tools", "delete_everything", "echo"]),
        "{got}"
    );
    assert_eq!(got["calls"][0]["text"][0], "5", "{got}");
    // The server's own message reached the client over the GET stream `latch mcp` keeps open.
    assert!(
        got["notifications"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m == "notifications/tools/list_changed"),
        "{got}"
    );
    assert!(server.seen().contains(&format!("Bearer {KEY}")));
}

/// A credential the server refuses is a JSON-RPC error naming the fix (the client sees no HTTP
/// error); through the proxy, `/CONNECTOR` is the server's endpoint and its OAuth challenge is
/// never passed on; `--print-config` writes the client's snippet with latch's absolute path.
#[test]
fn a_refused_credential_the_proxy_route_and_the_client_configuration() {
    let server = McpServer::start();
    let home = home_with_server(&server);
    home.ok(
        &[
            "connector",
            "add",
            "rovo-bad",
            "--type",
            "mcp",
            "--provider",
            "rovo",
            "--auth",
            "api-key",
        ],
        "",
    );
    let _ = home.run(&["credential", "set", "rovo-bad"], "not-the-key");
    let mut relay = home
        .cmd(&["mcp", "rovo-bad"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let initialize = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;
    writeln!(relay.stdin.as_mut().unwrap(), "{initialize}").unwrap();
    drop(relay.stdin.take());
    let mut line = String::new();
    BufReader::new(relay.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(relay.wait().unwrap().success());
    let answer: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(answer["id"], 1, "{answer}");
    let message = answer["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("latch credential set rovo-bad"),
        "{answer}"
    );

    // Through `latch serve`: the server's endpoint at /rovo, with a local key.
    let key = home.key_for("agent", &["rovo", "rovo-bad"]);
    let serve = Serve::start(&home);
    let out = Command::new("curl")
        .args(["-s", "-i", "-X", "POST", "-H"])
        .arg(format!("Authorization: Bearer {key}"))
        .args([
            "-H",
            "Accept: application/json, text/event-stream",
            "-H",
            "Content-Type: application/json",
            "--data",
            initialize,
        ])
        .arg(serve.url("/rovo"))
        .output()
        .unwrap();
    let text = stdout(&out).to_ascii_lowercase();
    assert!(text.starts_with("http/1.1 200"), "{text}");
    assert!(text.contains("mcp-session-id:"), "{text}");
    assert!(text.contains("\"protocolversion\""), "{text}");
    let out = Command::new("curl")
        .args(["-s", "-i", "-X", "POST", "-H"])
        .arg(format!("Authorization: Bearer {key}"))
        .args(["-H", "Content-Type: application/json", "--data", initialize])
        .arg(serve.url("/rovo-bad"))
        .output()
        .unwrap();
    let text = stdout(&out).to_ascii_lowercase();
    assert!(!text.contains("resource_metadata"), "{text}");
    assert!(!text.starts_with("http/1.1 200"), "{text}");

    // An MCP client that speaks HTTP, with a key limited to one tool: it sees and calls only
    // that one (the others get a JSON-RPC error), through `latch serve`.
    let limited = home.ok(
        &[
            "keys",
            "create",
            "agent-echo",
            "--connector",
            "rovo",
            "--mcp-tool",
            "echo",
        ],
        "",
    );
    let out = Command::new(venv("python"))
        .arg(repo_path("tests/fixture/mcp_relay_client.py"))
        .arg(serve.url("/rovo"))
        .env("LATCH_KEY", limited.trim())
        .env(
            "CALLS",
            serde_json::json!([["echo", {"text": "over http"}], ["delete_everything", {}]])
                .to_string(),
        )
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let got: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(got["tools"], serde_json::json!(["echo"]), "{got}");
    assert_eq!(got["calls"][0]["text"][0], "echo: over http", "{got}");
    assert!(
        got["calls"][1]["error"]
            .as_str()
            .is_some_and(|e| e.contains("not allowed")),
        "{got}"
    );
    let audit = home.json(&["audit", "--json", "--key", "agent-echo"]);
    assert!(
        audit.as_array().unwrap().iter().any(|r| r["status"] == 403),
        "the refused call is audited: {audit}"
    );

    let snippet = home.ok(&["mcp", "rovo", "--tool", "echo", "--print-config"], "");
    let snippet: serde_json::Value = serde_json::from_str(&snippet).unwrap();
    let entry = &snippet["mcpServers"]["rovo"];
    assert_eq!(entry["command"], env!("CARGO_BIN_EXE_latch"), "{snippet}");
    assert_eq!(
        entry["args"],
        serde_json::json!(["mcp", "rovo", "--tool", "echo"])
    );
    assert_eq!(
        entry["env"]["LATCH_HOME"],
        home.path().display().to_string()
    );
    let vscode = home.ok(&["mcp", "rovo", "--print-config", "vscode"], "");
    assert!(
        vscode.contains("\"servers\"") && vscode.contains("\"stdio\""),
        "{vscode}"
    );
    let claude = home.ok(&["mcp", "rovo", "--print-config", "claude-code"], "");
    assert!(claude.starts_with("claude mcp add rovo"), "{claude}");
}

/// Sign-in as the MCP authorization spec has it: the server's 401 names its protected-resource
/// metadata, that names the authorization server, whose metadata offers dynamic registration;
/// Latch registers once, signs in with PKCE and `resource`, and keeps the tokens. Mid-session
/// the access token dies: the next call succeeds after exactly one refresh, unseen by the client.
#[test]
fn an_mcp_server_is_signed_in_to_as_its_spec_says_and_refreshed_mid_session() {
    let fixture = Fixture::start();
    let server = McpServer::start_with(Some(&fixture.base));
    let home = Home::new();
    let callback = format!("http://127.0.0.1:{}/callback", free_port());
    let added = home.ok(
        &[
            "provider",
            "add",
            "rovo",
            "--preset",
            "mcp",
            "--mcp-url",
            &server.url,
            "--redirect-uri",
            &callback,
        ],
        "",
    );
    // No app to create and no client id to paste: Latch registers itself at the sign-in.
    assert!(added.contains("Nothing to register by hand"), "{added}");
    home.ok(
        &[
            "connector",
            "add",
            "rovo",
            "--type",
            "mcp",
            "--provider",
            "rovo",
        ],
        "",
    );
    // Headless (a CI box, SSH): the URL is printed, the address the browser ended at pasted.
    let mut login = home
        .cmd(&["login", "rovo", "--no-browser", "--timeout", "60"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut reader = BufReader::new(login.stdout.take().unwrap());
    let mut url = String::new();
    reader.read_line(&mut url).unwrap();
    let landed = crate::lifecycle::consent_elsewhere(url.trim(), &callback);
    assert!(landed.contains("code="), "{landed}");
    writeln!(login.stdin.take().unwrap(), "{landed}").unwrap();
    let out = login.wait_with_output().unwrap();
    assert!(out.status.success(), "login: {}", stderr(&out));
    let stats = fixture.stats();
    assert_eq!(stats["mcp_resource"], server.url.as_str(), "{stats}");
    assert_eq!(stats["mcp_token_resource"], server.url.as_str(), "{stats}");
    let refreshes = stats["refresh_ok"].as_u64().unwrap_or(0);

    let got = client(
        &home,
        &["mcp", "rovo"],
        &serde_json::json!([
            ["echo", {"text": "before"}],
            ["__post", {"url": format!("{}/__revoke_access", fixture.base)}],
            ["echo", {"text": "after"}],
        ]),
    );
    assert_eq!(got["calls"][0]["text"][0], "echo: before", "{got}");
    assert_eq!(got["calls"][1]["text"][0], "echo: after", "{got}");
    let stats = fixture.stats();
    assert_eq!(
        stats["refresh_ok"].as_u64().unwrap_or(0),
        refreshes + 1,
        "exactly one refresh: {stats}"
    );
    // The client was registered once and is kept: a second sign-in registers nothing new.
    let status = home.json(&["status", "--json"]);
    let client_id = status["providers"][0]["client_id"].clone();
    assert!(client_id.is_string(), "{status}");
    let out =
        crate::support::run_with_stdin(home.browser_cmd(&["login", "rovo", "--timeout", "60"]), "");
    assert!(out.status.success(), "login again: {}", stderr(&out));
    let again = home.json(&["status", "--json"]);
    assert_eq!(again["providers"][0]["client_id"], client_id, "{again}");

    // Two MCP clients across an expiry share one grant: one refresh between them, and the
    // rotating family lives.
    let refreshes = fixture.stats()["refresh_ok"].as_u64().unwrap_or(0);
    let (status, body) = curl(&["-X", "POST", &format!("{}/__revoke_access", fixture.base)]);
    assert_eq!(status, 200, "{body}");
    let both: Vec<_> = (0..2)
        .map(|i| {
            Command::new(venv("python"))
                .arg(repo_path("tests/fixture/mcp_relay_client.py"))
                .arg(env!("CARGO_BIN_EXE_latch"))
                .args(["mcp", "rovo"])
                .env("LATCH_HOME", home.path())
                .env(
                    "CALLS",
                    serde_json::json!([["echo", {"text": format!("client {i}")}]]).to_string(),
                )
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for (i, child) in both.into_iter().enumerate() {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "client {i}: {}", stderr(&out));
        assert!(
            stdout(&out).contains(&format!("echo: client {i}")),
            "{}",
            stdout(&out)
        );
    }
    let stats = fixture.stats();
    assert_eq!(
        stats["refresh_ok"].as_u64().unwrap_or(0),
        refreshes + 1,
        "{stats}"
    );
    assert_eq!(
        stats["family_revocations"].as_u64().unwrap_or(0),
        0,
        "no family revoked: {stats}"
    );
}

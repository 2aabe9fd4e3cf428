//! Relaying an MCP client's messages to a remote MCP server over streamable HTTP (MCP
//! 2025-06-18, "Transports"), with the connector's credential on every request: the use case
//! behind `latch mcp`. The client never holds the credential; the relay keeps the session
//! (`Mcp-Session-Id`) and the negotiated protocol version, answers JSON or an SSE stream, and
//! may limit the tools the client sees and calls.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use serde_json::{json, Value};

use crate::app::audit::McpCall;
use crate::app::App;
use crate::config::Connector;
use crate::error::{Error, Result};

/// JSON-RPC's code for invalid parameters: an unknown (here: not allowed) tool.
const INVALID_PARAMS: i64 = -32602;
/// A server-side error: the upstream could not be reached or refused the credential.
const SERVER_ERROR: i64 = -32000;

/// One relay: a connector's MCP server, one session.
pub struct McpRelay {
    app: Arc<App>,
    connector: Connector,
    /// The tools the client may see and call; `None`: all.
    tools: Option<HashSet<String>>,
    session: Mutex<Session>,
}

#[derive(Default)]
struct Session {
    id: Option<String>,
    protocol: Option<String>,
    /// Ids of `tools/list` requests in flight, whose answers are filtered.
    listing: HashSet<String>,
}

impl App {
    /// A relay to connector `name`'s MCP server, limited to `tools` when any are given.
    pub fn mcp_relay(self: &Arc<Self>, name: &str, tools: &[String]) -> Result<McpRelay> {
        let config = self.config();
        let connector = config
            .connector(name)
            .cloned()
            .ok_or_else(|| config.unknown_connector(name))?;
        if !connector.spec.mcp {
            return Err(Error::Invalid {
                message: format!(
                    "connector `{name}` is a REST API ({}), not an MCP server",
                    connector.spec.display_name
                ),
                fix: format!(
                    "call it through the proxy (`latch exec --connector {name} -- …`), or add an \
                     MCP connector: `latch connector add NAME --type mcp --provider PROVIDER`"
                ),
            });
        }
        Ok(McpRelay {
            app: Arc::clone(self),
            connector,
            tools: (!tools.is_empty()).then(|| tools.iter().cloned().collect()),
            session: Mutex::new(Session::default()),
        })
    }
}

impl McpRelay {
    fn session(&self) -> std::sync::MutexGuard<'_, Session> {
        self.session.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Relays one message from the client; every message for the client (the answer, and
    /// whatever the server streams with it) goes to `out`.
    pub async fn relay(&self, message: Value, out: &(dyn Fn(Value) + Send + Sync)) {
        let id = message.get("id").cloned();
        let method = message.get("method").and_then(Value::as_str).unwrap_or("");
        let tool = called_tool(&message).map(str::to_owned);
        if let (Some(tool), Some(allowed)) = (&tool, &self.tools) {
            if !allowed.contains(tool) {
                self.audit(tool, 403, Instant::now(), Some("tool_not_allowed"));
                let allowed: Vec<String> = allowed.iter().cloned().collect();
                out(tool_refused(
                    id.clone().unwrap_or(Value::Null),
                    tool,
                    &allowed,
                ));
                return;
            }
        }
        if lists_tools(&message) {
            if let Some(id) = &id {
                self.session().listing.insert(id.to_string());
            }
        }
        let started = Instant::now();
        let status = match self.send(&message, out).await {
            Ok(status) => status,
            Err((status, why)) => {
                tracing::warn!(connector = %self.connector.name, "{why}");
                if let Some(id) = id.clone().filter(|_| !method.is_empty()) {
                    out(error(id, SERVER_ERROR, why));
                }
                status
            }
        };
        if let Some(tool) = &tool {
            self.audit(tool, status, started, None);
        }
    }

    /// Whether the server gave a session (after `initialize`): then it may have messages of
    /// its own for the client, on the GET stream.
    pub fn has_session(&self) -> bool {
        self.session().id.is_some()
    }

    /// The GET stream (streamable HTTP): messages the server sends on its own (list changes,
    /// its requests) go to `out` until the stream ends. A server without one answers 405.
    pub async fn listen(&self, out: &(dyn Fn(Value) + Send + Sync)) {
        let credentials = self.app.credentials();
        let Ok(mut upstream) = credentials.upstream(&self.connector, None).await else {
            return;
        };
        let http = credentials.grants().http(Some(&self.connector.provider));
        for attempt in 0..2 {
            let mut request = http
                .get(&upstream.base)
                .header(reqwest::header::ACCEPT, "text/event-stream");
            {
                let session = self.session();
                let Some(id) = &session.id else { return };
                request = request.header("Mcp-Session-Id", id);
                if let Some(version) = &session.protocol {
                    request = request.header("MCP-Protocol-Version", version);
                }
            }
            let Ok(request) = upstream.credential.authorize_reqwest(request) else {
                return;
            };
            let Ok(mut response) = request.send().await else {
                return;
            };
            if response.status().as_u16() == 401 && attempt == 0 {
                match self.renew(&mut upstream).await {
                    Ok(true) => continue,
                    _ => return,
                }
            }
            if !response.status().is_success() {
                return;
            }
            let mut events = SseEvents::default();
            while let Ok(Some(chunk)) = response.chunk().await {
                for data in events.push(&chunk) {
                    self.deliver(&data, out);
                }
            }
            return;
        }
    }

    /// After a 401: a newer credential in `upstream` (one refresh, never throttled for MCP;
    /// a stored secret read again); `Ok(false)` when there is none to try.
    async fn renew(
        &self,
        upstream: &mut crate::credential::Upstream,
    ) -> std::result::Result<bool, crate::GrantError> {
        let fresh = self
            .app
            .credentials()
            .after_rejection(&self.connector, upstream, None)
            .await?;
        Ok(fresh.map(|fresh| upstream.credential = fresh).is_some())
    }

    /// Ends the session on the server (a DELETE with its id), as a client that is done does.
    pub async fn close(&self) {
        let Some(id) = self.session().id.take() else {
            return;
        };
        let credentials = self.app.credentials();
        let Ok(upstream) = credentials.upstream(&self.connector, None).await else {
            return;
        };
        let request = credentials
            .grants()
            .http(Some(&self.connector.provider))
            .delete(&upstream.base)
            .header("Mcp-Session-Id", id);
        if let Ok(request) = upstream.credential.authorize_reqwest(request) {
            let _ = request.send().await;
        }
    }

    fn audit(&self, tool: &str, status: u16, started: Instant, refused: Option<&'static str>) {
        let call = McpCall {
            connector: self.connector.name.clone(),
            tool: tool.to_owned(),
            status,
            latency: started.elapsed(),
            refused,
        };
        if let Err(err) = self.app.record_mcp_call(&call) {
            tracing::warn!("could not write the audit row: {err}");
        }
    }

    /// POSTs the message; passes the answer (JSON or an SSE stream) to `out`. Errors are
    /// (status, what to tell the client).
    async fn send(
        &self,
        message: &Value,
        out: &(dyn Fn(Value) + Send + Sync),
    ) -> std::result::Result<u16, (u16, String)> {
        let name = &self.connector.name;
        let credentials = self.app.credentials();
        let mut upstream = credentials
            .upstream(&self.connector, None)
            .await
            .map_err(|err| (502, format!("Latch has no credential for `{name}`: {err}")))?;
        let http = credentials.grants().http(Some(&self.connector.provider));
        let mut attempt = 0;
        let mut response = loop {
            let mut request = http
                .post(&upstream.base)
                .header(
                    reqwest::header::ACCEPT,
                    "application/json, text/event-stream",
                )
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(message.to_string());
            {
                let session = self.session();
                if let Some(id) = &session.id {
                    request = request.header("Mcp-Session-Id", id);
                }
                if let Some(version) = &session.protocol {
                    request = request.header("MCP-Protocol-Version", version);
                }
            }
            let request = upstream
                .credential
                .authorize_reqwest(request)
                .map_err(|err| (502, err.to_string()))?;
            let response = request.send().await.map_err(|err| {
                (
                    502,
                    format!(
                        "the MCP server of `{name}` could not be reached ({})",
                        if err.is_timeout() {
                            "timeout"
                        } else {
                            "connection failed"
                        }
                    ),
                )
            })?;
            // A 401 mid-session: one refresh (never throttled for MCP) and the message again;
            // the client never sees it. A dead family says which command fixes it.
            if response.status().as_u16() == 401 && attempt == 0 {
                attempt += 1;
                match self.renew(&mut upstream).await {
                    Ok(true) => continue,
                    Ok(false) => {}
                    Err(err) => return Err((401, err.to_string().replace('\n', "; "))),
                }
            }
            break response;
        };
        let status = response.status().as_u16();
        match status {
            401 | 403 => {
                let fix = if upstream.grant.is_some() {
                    format!("sign in again: `latch login {}`", self.connector.provider)
                } else {
                    format!("store a working one with `latch credential set {name}`")
                };
                return Err((
                    status,
                    format!(
                        "the MCP server refused the credential of `{name}` (HTTP {status}); fix: \
                         {fix}"
                    ),
                ));
            }
            404 if self.session().id.is_some() => {
                self.session().id = None;
                return Err((
                    status,
                    "the MCP server ended the session; restart the MCP client".to_owned(),
                ));
            }
            _ if !(200..300).contains(&status) => {
                return Err((status, format!("the MCP server answered HTTP {status}")));
            }
            _ => {}
        }
        if let Some(id) = response
            .headers()
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
        {
            self.session().id = Some(id.to_owned());
        }
        let streamed = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| t.starts_with("text/event-stream"));
        if streamed {
            let mut events = SseEvents::default();
            while let Some(chunk) = response
                .chunk()
                .await
                .map_err(|_| (502, "the MCP server's stream broke off".to_owned()))?
            {
                for data in events.push(&chunk) {
                    self.deliver(&data, out);
                }
            }
        } else {
            let body = response
                .bytes()
                .await
                .map_err(|_| (502, "the MCP server's answer broke off".to_owned()))?;
            if !body.is_empty() {
                self.deliver(&body, out);
            }
        }
        Ok(status)
    }

    /// Passes one JSON message (or a batch) to the client: an `initialize` result's protocol
    /// version is kept for later requests, a `tools/list` result loses the tools not allowed.
    fn deliver(&self, data: &[u8], out: &(dyn Fn(Value) + Send + Sync)) {
        let Ok(value) = serde_json::from_slice::<Value>(data) else {
            return;
        };
        let messages = match value {
            Value::Array(batch) => batch,
            one => vec![one],
        };
        for mut message in messages {
            if let Some(version) = message
                .pointer("/result/protocolVersion")
                .and_then(Value::as_str)
            {
                self.session().protocol = Some(version.to_owned());
            }
            let listed = message
                .get("id")
                .is_some_and(|id| self.session().listing.remove(&id.to_string()));
            if let (true, Some(allowed)) = (listed, &self.tools) {
                keep_tools(&mut message, &|name| allowed.contains(name));
            }
            out(message);
        }
    }
}

/// The tool a `tools/call` request names (`None` for any other message, or a notification).
pub fn called_tool(message: &Value) -> Option<&str> {
    if message.get("method").and_then(Value::as_str) != Some("tools/call")
        || message.get("id").is_none()
    {
        return None;
    }
    Some(
        message
            .pointer("/params/name")
            .and_then(Value::as_str)
            .unwrap_or_default(),
    )
}

/// Whether a message is a `tools/list` request.
pub fn lists_tools(message: &Value) -> bool {
    message.get("method").and_then(Value::as_str) == Some("tools/list")
        && message.get("id").is_some()
}

/// Leaves out of a `tools/list` result the tools `allowed` says no to.
pub fn keep_tools(message: &mut Value, allowed: &dyn Fn(&str) -> bool) {
    if let Some(tools) = message
        .pointer_mut("/result/tools")
        .and_then(Value::as_array_mut)
    {
        tools.retain(|t| t.get("name").and_then(Value::as_str).is_some_and(allowed));
    }
}

/// The JSON-RPC error for a tool call Latch refuses.
pub fn tool_refused(id: Value, tool: &str, allowed: &[String]) -> Value {
    let mut names: Vec<&str> = allowed.iter().map(String::as_str).collect();
    names.sort_unstable();
    error(
        id,
        INVALID_PARAMS,
        format!(
            "tool `{tool}` is not allowed here (this key or `--tool` limits the tools to {})",
            names.join(", ")
        ),
    )
}

fn error(id: Value, code: i64, message: String) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": format!("Latch: {message}")}})
}

/// Server-sent events as they arrive: each complete event's `data` lines, joined.
#[derive(Default)]
pub struct SseEvents {
    buffer: Vec<u8>,
}

/// One complete server-sent event: its `id` (what a client resumes from) and its `data`.
#[derive(Debug, PartialEq, Eq)]
pub struct SseEvent {
    /// The `id:` field, when the event has one.
    pub id: Option<String>,
    /// The `data:` lines, joined with `\n`.
    pub data: Vec<u8>,
}

impl SseEvents {
    /// Takes the next bytes; returns the `data` of each event they complete.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<Vec<u8>> {
        self.push_events(chunk)
            .into_iter()
            .map(|e| e.data)
            .collect()
    }

    /// Takes the next bytes; returns each event they complete, with its id.
    pub fn push_events(&mut self, chunk: &[u8]) -> Vec<SseEvent> {
        self.buffer.extend_from_slice(chunk);
        let mut events = Vec::new();
        loop {
            let text = &self.buffer;
            let end = text
                .windows(2)
                .position(|w| w == b"\n\n")
                .map(|at| (at, 2))
                .into_iter()
                .chain(
                    text.windows(4)
                        .position(|w| w == b"\r\n\r\n")
                        .map(|at| (at, 4)),
                )
                .min_by_key(|(at, _)| *at);
            let Some((at, len)) = end else {
                break;
            };
            let event: Vec<u8> = self.buffer.drain(..at + len).collect();
            let mut data = Vec::new();
            let mut id = None;
            for line in event.split(|b| *b == b'\n') {
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                if let Some(rest) = line.strip_prefix(b"data:") {
                    if !data.is_empty() {
                        data.push(b'\n');
                    }
                    data.extend_from_slice(rest.strip_prefix(b" ").unwrap_or(rest));
                } else if let Some(rest) = line.strip_prefix(b"id:") {
                    let rest = rest.strip_prefix(b" ").unwrap_or(rest);
                    id = Some(String::from_utf8_lossy(rest).into_owned());
                }
            }
            if !data.is_empty() {
                events.push(SseEvent { id, data });
            }
        }
        events
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_read_across_chunks_and_line_endings() {
        let mut sse = SseEvents::default();
        assert!(sse.push(b"event: message\ndata: {\"a\":").is_empty());
        let got = sse.push(b"1}\n\ndata: {\"b\":2}\r\n\r\n: comment\n\n");
        assert_eq!(got, vec![b"{\"a\":1}".to_vec(), b"{\"b\":2}".to_vec()]);
    }

    #[test]
    fn events_keep_their_ids() {
        let mut sse = SseEvents::default();
        let got = sse.push_events(b"id: 7\nevent: message\ndata: {}\n\ndata: 1\n\n");
        assert_eq!(
            got,
            vec![
                SseEvent {
                    id: Some("7".into()),
                    data: b"{}".to_vec()
                },
                SseEvent {
                    id: None,
                    data: b"1".to_vec()
                }
            ]
        );
    }
}

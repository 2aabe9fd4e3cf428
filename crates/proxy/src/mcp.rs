//! An MCP connector reached with a key limited to some tools (`keys create --mcp-tool`): the
//! request's JSON-RPC message is read first (bounded); a `tools/call` of another tool is
//! answered here with a JSON-RPC error (HTTP 200: MCP clients take HTTP errors for a broken
//! transport) and never sent; a `tools/list` answer, JSON or an SSE stream, loses the others.

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::BodyExt as _;
use latch_core::app::mcp::{called_tool, keep_tools, lists_tools, tool_refused, SseEvents};
use serde_json::Value;

use crate::refusal::Refusal;
use crate::ProxyBody;

/// How much of a request a limited key may send to an MCP connector (a JSON-RPC message).
pub(crate) const MAX_MESSAGE: usize = 1 << 20;
/// How much of a `tools/list` answer is read to filter it.
const MAX_LISTING: usize = 4 << 20;

/// What a message may do under the key's tools.
pub(crate) enum Screened {
    /// Send it; `lists` when its answer is a tool list to filter.
    Pass { lists: bool },
    /// Answer it with this JSON-RPC error instead.
    Refused { answer: Value, tool: String },
}

/// Looks at a message (or a batch) against the tools the key may call.
pub(crate) fn screen(body: &[u8], allowed: &[String]) -> Screened {
    let Ok(message) = serde_json::from_slice::<Value>(body) else {
        // Not JSON: the server says so; nothing here calls a tool.
        return Screened::Pass { lists: false };
    };
    let messages: Vec<&Value> = match &message {
        Value::Array(batch) => batch.iter().collect(),
        one => vec![one],
    };
    for m in &messages {
        if let Some(tool) = called_tool(m) {
            if !allowed.iter().any(|a| a == tool) {
                return Screened::Refused {
                    answer: tool_refused(m["id"].clone(), tool, allowed),
                    tool: tool.to_owned(),
                };
            }
        }
    }
    Screened::Pass {
        lists: messages.iter().any(|m| lists_tools(m)),
    }
}

/// The JSON-RPC error answer, as an HTTP response.
pub(crate) fn refused(answer: &Value) -> (Response<()>, Bytes) {
    let mut response = Response::new(());
    *response.status_mut() = StatusCode::OK;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    (response, Bytes::from(answer.to_string()))
}

/// A `tools/list` answer without the tools the key may not call.
pub(crate) async fn keep_allowed(
    response: Response<ProxyBody>,
    allowed: Vec<String>,
) -> Result<Response<ProxyBody>, Refusal> {
    let (head, mut body) = response.into_parts();
    let cut = || Refusal::UpstreamUnreachable("the tool list was cut off or too large".into());
    // Read by hand: `Limited` over a boxed error type trips a compiler limit on `Send`.
    let mut read = Vec::new();
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.map_err(|_| cut())?.into_data() {
            if read.len() + data.len() > MAX_LISTING {
                return Err(cut());
            }
            read.extend_from_slice(&data);
        }
    }
    Ok(rebuilt(head, &read, &allowed))
}

/// The answer again, with only the allowed tools in it.
fn rebuilt(
    mut head: http::response::Parts,
    read: &[u8],
    allowed: &[String],
) -> Response<ProxyBody> {
    let keep = |name: &str| allowed.iter().any(|a| a == name);
    let filter = |data: &[u8]| -> Option<String> {
        let mut value: Value = serde_json::from_slice(data).ok()?;
        match &mut value {
            Value::Array(batch) => batch.iter_mut().for_each(|m| keep_tools(m, &keep)),
            one => keep_tools(one, &keep),
        }
        Some(value.to_string())
    };
    let streamed = head
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("text/event-stream"));
    let text = if streamed {
        // Each event keeps its id: a client resumes a stream from it (`Last-Event-ID`).
        let mut events = SseEvents::default();
        events
            .push_events(read)
            .iter()
            .filter_map(|event| {
                let json = filter(&event.data)?;
                let id = event
                    .id
                    .as_deref()
                    .map(|id| format!("id: {id}\n"))
                    .unwrap_or_default();
                Some(format!("{id}event: message\ndata: {json}\n\n"))
            })
            .collect::<String>()
    } else {
        filter(read).unwrap_or_else(|| String::from_utf8_lossy(read).into_owned())
    };
    head.headers.remove(header::CONTENT_LENGTH);
    let body = http_body_util::Full::new(Bytes::from(text))
        .map_err(|never| match never {})
        .boxed_unsync();
    Response::from_parts(head, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_filtered_event_stream_keeps_its_event_ids() {
        let listing = serde_json::json!({"jsonrpc": "2.0", "id": 1, "result": {"tools": [
            {"name": "search"}, {"name": "delete_everything"}
        ]}});
        let body = format!("id: 41\nevent: message\ndata: {listing}\n\n");
        let (head, ()) = Response::builder()
            .header(header::CONTENT_TYPE, "text/event-stream")
            .body(())
            .unwrap()
            .into_parts();
        let answer = rebuilt(head, body.as_bytes(), &["search".to_owned()]);
        let text = answer.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8(text.to_vec()).unwrap();
        assert!(text.starts_with("id: 41\nevent: message\ndata: "), "{text}");
        assert!(
            text.contains("search") && !text.contains("delete_everything"),
            "{text}"
        );
    }
}

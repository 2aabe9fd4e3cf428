//! Reading the proxy's audit log (`latch audit`, the desktop app's Activity view). Rows hold no
//! tokens, bodies or query strings: the proxy never writes them.

use serde::Serialize;

use crate::app::App;
use crate::error::{Error, Result};

/// Which audit entries to read.
#[derive(Clone, Debug, Default)]
pub struct AuditQuery {
    /// Only entries after this id (a live view's cursor); 0 for all.
    pub after_id: i64,
    /// Only entries at or after this time: RFC 3339, or a duration ago (`30m`, `8h`, `7d`).
    pub since: Option<String>,
    /// Only requests made with this local key.
    pub key: Option<String>,
    /// Only requests routed to this connector.
    pub connector: Option<String>,
    /// At most this many of the newest entries (0: no limit).
    pub limit: u32,
}

/// One proxied (or refused) request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct AuditEntry {
    /// Row id, increasing.
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub id: i64,
    /// Time (refusals counted per minute: the minute).
    #[serde(with = "crate::clock::stamp")]
    #[cfg_attr(feature = "ts", ts(type = "string"))]
    pub at: time::OffsetDateTime,
    /// Local key name, when the request carried a valid one.
    pub key: Option<String>,
    /// Connector, when routed.
    pub connector: Option<String>,
    /// HTTP method.
    pub method: String,
    /// Path without its query string.
    pub path: String,
    /// Status returned to the caller.
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub status: i64,
    /// Response bytes.
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub bytes: i64,
    /// Time to the response head, in microseconds.
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub latency_us: i64,
    /// Whether Latch refreshed the upstream token for this request.
    pub refreshed: bool,
    /// How many requests the entry stands for: 1, or a per-minute count of refusals that came
    /// before any key was known (then `reason` is their refusal code).
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub count: i64,
    /// For counted refusals: the refusal code.
    pub reason: Option<String>,
}

/// One MCP tool call relayed by `latch mcp`, for the audit log.
#[derive(Clone, Debug)]
pub struct McpCall {
    /// The connector.
    pub connector: String,
    /// The tool's name.
    pub tool: String,
    /// The HTTP status of the upstream's answer; 403 for a call Latch refused itself.
    pub status: u16,
    /// How long the call took.
    pub latency: std::time::Duration,
    /// Why Latch refused it (`tool_not_allowed`), if it did.
    pub refused: Option<&'static str>,
}

impl App {
    /// Records an MCP tool call under the key name `mcp:CONNECTOR` (path `tools/call NAME`).
    pub fn record_mcp_call(&self, call: &McpCall) -> Result<()> {
        let row = latch_store::AuditRow {
            at: crate::clock::now(),
            key_name: Some(format!("mcp:{}", call.connector)),
            key_id: None,
            connector: Some(call.connector.clone()),
            method: "MCP".to_owned(),
            path: format!("tools/call {}", call.tool),
            status: i64::from(call.status),
            bytes: 0,
            latency_us: i64::try_from(call.latency.as_micros()).unwrap_or(i64::MAX),
            refreshed: false,
            count: 1,
            reason: call.refused.map(str::to_owned),
        };
        self.db()
            .audit_insert_batch(&[row])
            .map_err(|e| self.store_err(e))
    }

    /// Audit entries, oldest first.
    pub fn audit(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>> {
        let since = match query.since.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(text) => Some(match crate::clock::parse_time(Some(text)) {
                Some(at) => at,
                None => {
                    let ago = crate::local_key::parse_ttl(text).map_err(|_| Error::Invalid {
                        message: format!("`{text}` is neither a time nor a duration"),
                        fix: "give a time (2026-11-23T10:00:00Z) or a duration such as 30m, 8h, \
                              7d"
                        .to_owned(),
                    })?;
                    crate::local_key::expiry_in(-ago)
                }
            }),
        };
        let limit = if query.limit == 0 {
            u32::MAX
        } else {
            query.limit
        };
        let rows = self
            .db()
            .audit_page(&latch_store::AuditPage {
                after_id: query.after_id,
                since,
                key: query.key.as_deref(),
                connector: query.connector.as_deref(),
                limit,
            })
            .map_err(|e| self.store_err(e))?;
        Ok(rows
            .into_iter()
            .map(|(id, r)| AuditEntry {
                id,
                at: r.at,
                key: r.key_name,
                connector: r.connector,
                method: r.method,
                path: r.path,
                status: r.status,
                bytes: r.bytes,
                latency_us: r.latency_us,
                refreshed: r.refreshed,
                count: r.count,
                reason: r.reason,
            })
            .collect())
    }
}

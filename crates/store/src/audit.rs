//! The audit log: a row per request that presented a known key, counts per minute for refusals before one.

use rusqlite::params;
use time::OffsetDateTime;

use crate::{format_time, get_stamp, Result, Stamp, Store};

/// Which audit rows [`Store::audit_page`] reads.
#[derive(Clone, Copy, Debug)]
pub struct AuditPage<'a> {
    /// Only rows after this id.
    pub after_id: i64,
    /// Only rows at or after this time.
    pub since: Option<OffsetDateTime>,
    /// Only this local key's rows.
    pub key: Option<&'a str>,
    /// Only this connector's rows.
    pub connector: Option<&'a str>,
    /// At most this many of the newest.
    pub limit: u32,
}

/// One proxied request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditRow {
    /// Time (refusals counted per minute: the minute).
    pub at: OffsetDateTime,
    /// Local key name, if the request had a valid one.
    pub key_name: Option<String>,
    /// That key's id: a name may be used again once its key is revoked.
    pub key_id: Option<i64>,
    /// Connector, if routed.
    pub connector: Option<String>,
    /// HTTP method.
    pub method: String,
    /// Path (no query string: it can carry secrets).
    pub path: String,
    /// Status returned to the caller.
    pub status: i64,
    /// Bytes sent to the caller.
    pub bytes: i64,
    /// Latency in microseconds.
    pub latency_us: i64,
    /// Whether the request triggered a refresh.
    pub refreshed: bool,
    /// How many requests the row stands for: 1, or a per-minute count of refusals that came
    /// before any key was known.
    pub count: i64,
    /// For counted refusals: the refusal code.
    pub reason: Option<String>,
}

impl Store {
    /// Appends audit rows in one transaction (the proxy batches them).
    pub fn audit_insert_batch(&mut self, rows: &[AuditRow]) -> Result<()> {
        let tx = self.conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO audit (at, key_name, connector, method, path, status, bytes,
                     latency_us, refreshed, count, reason, key_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
                 ON CONFLICT (at, reason, status) WHERE reason IS NOT NULL
                 DO UPDATE SET count = count + excluded.count",
            )?;
            for row in rows {
                stmt.execute(params![
                    Stamp(row.at),
                    row.key_name,
                    row.connector,
                    row.method,
                    row.path,
                    row.status,
                    row.bytes,
                    row.latency_us,
                    row.refreshed,
                    row.count,
                    row.reason,
                    row.key_id,
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Appends an audit row.
    pub fn audit_insert(&mut self, row: &AuditRow) -> Result<()> {
        self.audit_insert_batch(std::slice::from_ref(row))
    }

    /// Deletes audit rows older than `before`; returns how many.
    pub fn audit_prune(&self, before: OffsetDateTime) -> Result<usize> {
        // Stored text compares as time: one form, UTC, to the second.
        Ok(self
            .conn
            .execute("DELETE FROM audit WHERE at < ?1", params![Stamp(before)])?)
    }

    /// Audit rows with their ids, oldest first: those after `after_id` (the live view's
    /// cursor), at or after `since`, of one key and one connector when given; at most `limit`
    /// of the newest.
    pub fn audit_page(&self, query: &AuditPage<'_>) -> Result<Vec<(i64, AuditRow)>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, at, key_name, connector, method, path, status, bytes, latency_us, refreshed,
                    count, reason, key_id
             FROM (SELECT * FROM audit
                   WHERE id > ?1 AND at >= ?2
                     AND (?3 IS NULL
                          -- A name's live key (or newest): not an older key of that name.
                          OR key_id = (SELECT k.id FROM local_keys k WHERE k.name = ?3
                                       ORDER BY k.revoked_at IS NULL DESC, k.id DESC LIMIT 1)
                          -- Keys without a row (`latch exec`'s) by name.
                          OR (key_id IS NULL AND key_name = ?3))
                     AND (?4 IS NULL OR connector = ?4)
                   ORDER BY at DESC, id DESC LIMIT ?5)
             ORDER BY at, id",
        )?;
        let rows = stmt.query_map(
            params![
                query.after_id,
                // Stored text compares as time: one form, UTC, to the second.
                query.since.map_or_else(|| "0000".to_owned(), format_time),
                query.key,
                query.connector,
                query.limit
            ],
            |r| {
                Ok((
                    r.get(0)?,
                    AuditRow {
                        at: get_stamp(r, 1)?,
                        key_name: r.get(2)?,
                        connector: r.get(3)?,
                        method: r.get(4)?,
                        path: r.get(5)?,
                        status: r.get(6)?,
                        bytes: r.get(7)?,
                        latency_us: r.get(8)?,
                        refreshed: r.get(9)?,
                        count: r.get(10)?,
                        reason: r.get(11)?,
                        key_id: r.get(12)?,
                    },
                ))
            },
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

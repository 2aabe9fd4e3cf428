//! The audit log writer. Every request that presents a known key gets its own row (path capped,
//! no query string); refusals before a key is known are only counted, per minute, reason and
//! status, so a flood of unauthenticated requests cannot grow the database. Rows go through a
//! bounded queue to a writer thread with its own connection, which also prunes rows older than
//! `[audit] keep_days`.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use latch_store::{AuditRow, Store};

use crate::BoxError;

/// At most this many bytes of a path are stored (a 60,000-character path is an attack, not a
/// request worth keeping whole).
const PATH_CAP: usize = 512;
/// Rows queued for the writer at most; beyond it rows are counted as dropped, not kept.
const QUEUE: usize = 65_536;
/// Rows written per transaction at most.
const BATCH: usize = 5000;
/// How often the writer drains the queue.
const TICK: Duration = Duration::from_millis(20);
/// How often old rows are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// Cuts a path to [`PATH_CAP`] bytes at a character boundary.
pub(crate) fn cap_path(path: &str) -> String {
    if path.len() <= PATH_CAP {
        return path.to_owned();
    }
    let mut end = PATH_CAP;
    while !path.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &path[..end])
}

fn minute_of(at: time::OffsetDateTime) -> time::OffsetDateTime {
    at.replace_second(0)
        .and_then(|t| t.replace_nanosecond(0))
        .unwrap_or(at)
}

/// The facts of one request, kept until its answer is complete.
pub(crate) struct Audit {
    started: Instant,
    pub(crate) key_name: Option<String>,
    pub(crate) key_id: Option<i64>,
    pub(crate) connector: Option<String>,
    method: String,
    path: String,
    pub(crate) refreshed: bool,
    taken: bool,
}

impl Audit {
    pub(crate) fn new(method: &str, path: &str) -> Self {
        Self {
            started: Instant::now(),
            key_name: None,
            key_id: None,
            connector: None,
            method: method.to_owned(),
            path: cap_path(path),
            refreshed: false,
            taken: false,
        }
    }

    /// Whether a streaming body took the facts (it writes the row when the answer ends).
    pub(crate) fn is_taken(&self) -> bool {
        self.taken
    }

    fn row(&self, status: u16, bytes: u64) -> AuditRow {
        AuditRow {
            at: latch_core::clock::now(),
            key_name: self.key_name.clone(),
            key_id: self.key_id,
            connector: self.connector.clone(),
            method: self.method.clone(),
            path: self.path.clone(),
            status: i64::from(status),
            bytes: i64::try_from(bytes).unwrap_or(i64::MAX),
            latency_us: i64::try_from(self.started.elapsed().as_micros()).unwrap_or(i64::MAX),
            refreshed: self.refreshed,
            count: 1,
            reason: None,
        }
    }

    /// Moves the facts out (to the streaming body that writes the row when it ends).
    pub(crate) fn take(&mut self) -> Audit {
        self.taken = true;
        Audit {
            started: self.started,
            key_name: self.key_name.take(),
            key_id: self.key_id.take(),
            connector: self.connector.take(),
            method: std::mem::take(&mut self.method),
            path: std::mem::take(&mut self.path),
            refreshed: self.refreshed,
            taken: false,
        }
    }
}

/// Counts response bytes and writes the audit row when the body ends or is dropped.
pub(crate) struct Counted<B = Incoming> {
    inner: B,
    bytes: u64,
    status: u16,
    audit: Option<(Audit, AuditSink)>,
}

impl<B> Counted<B> {
    pub(crate) fn new(inner: B, status: u16, audit: Audit, sink: AuditSink) -> Self {
        Self {
            inner,
            bytes: 0,
            status,
            audit: Some((audit, sink)),
        }
    }
}

impl<B> Body for Counted<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.bytes += data.len() as u64;
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl<B> Drop for Counted<B> {
    fn drop(&mut self) {
        if let Some((audit, sink)) = self.audit.take() {
            sink.record(&audit, self.status, self.bytes);
        }
    }
}

enum Message {
    Row(AuditRow),
    Flush(tokio::sync::oneshot::Sender<()>),
}

/// (minute, reason, status) → how many refusals.
type Counts = HashMap<(time::OffsetDateTime, &'static str, u16), i64>;

/// Queues audit rows for the background writer. Cheap to clone.
#[derive(Clone)]
pub struct AuditSink {
    tx: mpsc::SyncSender<Message>,
    counts: Arc<Mutex<Counts>>,
    dropped: Arc<AtomicU64>,
    keep_days: Arc<AtomicU64>,
}

impl AuditSink {
    /// Starts the writer thread. It writes through its own connection when it can open one, so
    /// that batches never hold the connection requests use.
    pub fn start(database: &std::path::Path, shared: Arc<Mutex<Store>>, keep_days: u32) -> Self {
        let store = match Store::open(database) {
            Ok(own) => Arc::new(Mutex::new(own)),
            Err(_) => shared,
        };
        let (tx, rx) = mpsc::sync_channel::<Message>(QUEUE);
        let sink = Self {
            tx,
            counts: Arc::new(Mutex::new(HashMap::new())),
            dropped: Arc::new(AtomicU64::new(0)),
            keep_days: Arc::new(AtomicU64::new(u64::from(keep_days))),
        };
        let (counts, dropped, keep) = (
            Arc::clone(&sink.counts),
            Arc::clone(&sink.dropped),
            Arc::clone(&sink.keep_days),
        );
        let spawned = std::thread::Builder::new()
            .name("latch-audit".into())
            .spawn(move || writer(&rx, &store, &counts, &dropped, &keep));
        if let Err(err) = spawned {
            eprintln!("latch: the audit writer did not start: {err}");
        }
        sink
    }

    /// Applies a new `[audit] keep_days` (a configuration reload).
    pub fn set_keep_days(&self, days: u32) {
        self.keep_days.store(u64::from(days), Ordering::Relaxed);
    }

    /// Queues the row of a request that presented a known key.
    pub(crate) fn record(&self, audit: &Audit, status: u16, bytes: u64) {
        let row = audit.row(status, bytes);
        // The audit row's facts: names, the capped path without its query, never a header.
        tracing::debug!(
            key = row.key_name.as_deref().unwrap_or("-"),
            connector = row.connector.as_deref().unwrap_or("-"),
            method = %row.method,
            path = %row.path,
            status = row.status,
            bytes = row.bytes,
            latency_us = row.latency_us,
            refreshed = row.refreshed,
            "proxied"
        );
        if self.tx.try_send(Message::Row(row)).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts a refusal that came before any key was known.
    pub(crate) fn count(&self, reason: &'static str, status: u16) {
        tracing::debug!(reason, status, "refused before a key was known");
        let minute = minute_of(time::OffsetDateTime::now_utc());
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        *counts.entry((minute, reason, status)).or_insert(0) += 1;
    }

    /// Waits until every queued row is written.
    pub async fn flush(&self) {
        let (done, wait) = tokio::sync::oneshot::channel();
        if self.tx.send(Message::Flush(done)).is_ok() {
            let _ = wait.await;
        }
    }
}

fn counted_rows(counts: &Mutex<Counts>, dropped: &AtomicU64) -> Vec<AuditRow> {
    let drained: Counts =
        std::mem::take(&mut *counts.lock().unwrap_or_else(PoisonError::into_inner));
    let mut rows: Vec<AuditRow> = drained
        .into_iter()
        .map(|((minute, reason, status), count)| AuditRow {
            at: minute,
            key_name: None,
            key_id: None,
            connector: None,
            method: "*".to_owned(),
            path: String::new(),
            status: i64::from(status),
            bytes: 0,
            latency_us: 0,
            refreshed: false,
            count,
            reason: Some(reason.to_owned()),
        })
        .collect();
    let lost = dropped.swap(0, Ordering::Relaxed);
    if lost > 0 {
        rows.push(AuditRow {
            at: minute_of(time::OffsetDateTime::now_utc()),
            key_name: None,
            key_id: None,
            connector: None,
            method: "*".to_owned(),
            path: String::new(),
            status: 0,
            bytes: 0,
            latency_us: 0,
            refreshed: false,
            count: i64::try_from(lost).unwrap_or(i64::MAX),
            reason: Some("audit_queue_full".to_owned()),
        });
    }
    rows
}

fn prune(store: &Mutex<Store>, keep_days: u64) {
    let days = i64::try_from(keep_days).unwrap_or(i64::MAX).min(36_500);
    let before = time::OffsetDateTime::now_utc() - time::Duration::days(days);
    if let Ok(store) = store.lock() {
        if let Err(err) = store.audit_prune(before) {
            eprintln!("latch: could not prune the audit log: {err}");
        }
    }
}

fn writer(
    rx: &mpsc::Receiver<Message>,
    store: &Mutex<Store>,
    counts: &Mutex<Counts>,
    dropped: &AtomicU64,
    keep_days: &AtomicU64,
) {
    let mut rows = Vec::with_capacity(BATCH);
    let mut flushes = Vec::new();
    let mut pruned: Option<Instant> = None;
    loop {
        if pruned.is_none_or(|at| at.elapsed() >= PRUNE_EVERY) {
            prune(store, keep_days.load(Ordering::Relaxed));
            pruned = Some(Instant::now());
        }
        // Drain on a timer instead of waking per row: a wake-up per request would cost the
        // proxy a syscall per request.
        std::thread::sleep(TICK);
        let mut open = true;
        loop {
            match rx.try_recv() {
                Ok(Message::Row(row)) => rows.push(row),
                Ok(Message::Flush(done)) => flushes.push(done),
                Err(mpsc::TryRecvError::Empty) => break,
                Err(mpsc::TryRecvError::Disconnected) => {
                    open = false;
                    break;
                }
            }
        }
        rows.extend(counted_rows(counts, dropped));
        for chunk in rows.chunks(BATCH) {
            if let Ok(mut store) = store.lock() {
                if let Err(err) = store.audit_insert_batch(chunk) {
                    eprintln!("latch: could not write {} audit rows: {err}", chunk.len());
                }
            }
        }
        rows.clear();
        for done in flushes.drain(..) {
            let _ = done.send(());
        }
        if !open {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_capped_at_a_character_boundary() {
        assert_eq!(cap_path("/jira/x"), "/jira/x");
        let long = format!("/jira/{}", "é".repeat(600));
        let capped = cap_path(&long);
        assert!(capped.len() <= PATH_CAP + "…".len());
        assert!(capped.ends_with('…'));
    }

    #[test]
    fn refusals_are_counted_per_minute_not_kept_row_by_row() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("latch.db");
        let store = Arc::new(Mutex::new(Store::open(&db).unwrap()));
        let sink = AuditSink::start(&db, Arc::clone(&store), 90);
        for _ in 0..1000 {
            sink.count("missing_key", 401);
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(sink.flush());
        let rows = store
            .lock()
            .unwrap()
            .audit_page(&latch_store::AuditPage {
                after_id: 0,
                since: None,
                key: None,
                connector: None,
                limit: 100,
            })
            .unwrap();
        let total: i64 = rows.iter().map(|(_, r)| r.count).sum();
        assert_eq!(total, 1000);
        assert!(rows.len() <= 2, "one row per minute: {}", rows.len());
    }
}

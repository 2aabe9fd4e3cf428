//! The audit log writer: requests are queued and written to SQLite in batches off the request
//! path, so auditing never adds a database write to a request's latency.

use std::sync::{Arc, Mutex};

use latch_store::{AuditRow, Store};
use tokio::sync::mpsc;

enum Message {
    Row(AuditRow),
    Flush(tokio::sync::oneshot::Sender<()>),
}

/// Queues audit rows for the background writer.
#[derive(Clone)]
pub struct AuditSink {
    tx: mpsc::UnboundedSender<Message>,
}

impl AuditSink {
    /// Starts the writer task. It writes through its own connection when it can open one, so
    /// that batches never hold the connection requests use.
    pub fn start(database: &std::path::Path, shared: Arc<Mutex<Store>>) -> Self {
        let store = match Store::open(database) {
            Ok(own) => Arc::new(Mutex::new(own)),
            Err(_) => shared,
        };
        let (tx, mut rx) = mpsc::unbounded_channel::<Message>();
        tokio::spawn(async move {
            let mut batch = Vec::new();
            while let Some(first) = rx.recv().await {
                let mut flushes = Vec::new();
                for message in std::iter::once(first)
                    .chain(std::iter::from_fn(|| rx.try_recv().ok()))
                    .take(1000)
                {
                    match message {
                        Message::Row(row) => batch.push(row),
                        Message::Flush(done) => flushes.push(done),
                    }
                }
                if !batch.is_empty() {
                    let rows = std::mem::take(&mut batch);
                    let store = Arc::clone(&store);
                    let _ = tokio::task::spawn_blocking(move || {
                        if let Ok(mut store) = store.lock() {
                            if let Err(err) = store.audit_insert_batch(&rows) {
                                eprintln!(
                                    "latch: could not write {} audit rows: {err}",
                                    rows.len()
                                );
                            }
                        }
                    })
                    .await;
                }
                for done in flushes {
                    let _ = done.send(());
                }
            }
        });
        Self { tx }
    }

    /// Queues one row.
    pub fn record(&self, row: AuditRow) {
        let _ = self.tx.send(Message::Row(row));
    }

    /// Waits until every queued row is written.
    pub async fn flush(&self) {
        let (done, wait) = tokio::sync::oneshot::channel();
        if self.tx.send(Message::Flush(done)).is_ok() {
            let _ = wait.await;
        }
    }
}

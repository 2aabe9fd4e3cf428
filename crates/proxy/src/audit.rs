//! The audit log writer: requests are queued and written to SQLite in batches by a dedicated
//! thread with its own connection, so auditing adds no database work to a request.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use latch_store::{AuditRow, Store};

enum Message {
    Row(AuditRow),
    Flush(tokio::sync::oneshot::Sender<()>),
}

/// Queues audit rows for the background writer.
#[derive(Clone)]
pub struct AuditSink {
    tx: mpsc::Sender<Message>,
}

/// Rows written per transaction at most.
const BATCH: usize = 5000;
/// How often the writer drains the queue.
const TICK: std::time::Duration = std::time::Duration::from_millis(20);

impl AuditSink {
    /// Starts the writer thread. It writes through its own connection when it can open one, so
    /// that batches never hold the connection requests use.
    pub fn start(database: &std::path::Path, shared: Arc<Mutex<Store>>) -> Self {
        let store = match Store::open(database) {
            Ok(own) => Arc::new(Mutex::new(own)),
            Err(_) => shared,
        };
        let (tx, rx) = mpsc::channel::<Message>();
        let spawned = std::thread::Builder::new()
            .name("latch-audit".into())
            .spawn(move || {
                let mut rows = Vec::with_capacity(BATCH);
                let mut flushes = Vec::new();
                loop {
                    // Drain on a timer instead of waking per row: a wake-up per request would
                    // cost the proxy a syscall per request.
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
                    for chunk in rows.chunks(BATCH) {
                        if let Ok(mut store) = store.lock() {
                            if let Err(err) = store.audit_insert_batch(chunk) {
                                eprintln!(
                                    "latch: could not write {} audit rows: {err}",
                                    chunk.len()
                                );
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
            });
        if let Err(err) = spawned {
            eprintln!("latch: the audit writer did not start: {err}");
        }
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

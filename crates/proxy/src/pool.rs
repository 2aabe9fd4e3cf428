//! Warm upstream connections shared by every tool connection.
//!
//! A tool that opens a new connection per request (a `curl` loop, `requests` without a
//! session) would otherwise pay a TCP and TLS handshake to the upstream each time. A request
//! takes an idle HTTP/1 connection here, and the answer's body gives it back when it has been
//! read to its end (an answer abandoned half-read closes its connection instead), so the next
//! request, from this tool connection or any other, finds it warm. An HTTP/2 connection serves
//! every request at once.
//!
//! One pool belongs to one trust (a provider's `ca_file` and client certificate, or the
//! defaults), and inside it connections are kept by origin and outbound route: a connection
//! is never handed to a request its trust would not have vouched for. Connections carry no
//! identity; each request carries its own credential.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use tokio::time::Instant;

use crate::ProxyBody;

/// Idle HTTP/1 connections kept per origin and route.
const MAX_IDLE_PER_ROUTE: usize = 64;

/// An upstream connection's sending half.
pub(crate) enum Sender {
    /// One request at a time.
    H1(http1::SendRequest<ProxyBody>),
    /// Many requests at once; clones share the connection.
    H2(http2::SendRequest<ProxyBody>),
}

impl Sender {
    fn is_closed(&self) -> bool {
        match self {
            Self::H1(sender) => sender.is_closed(),
            Self::H2(sender) => sender.is_closed(),
        }
    }

    pub(crate) fn is_h2(&self) -> bool {
        matches!(self, Self::H2(_))
    }

    /// Waits until the connection can take a request; an error means it is closed and
    /// nothing was sent on it.
    pub(crate) async fn ready(&mut self) -> Result<(), hyper::Error> {
        match self {
            Self::H1(sender) => sender.ready().await,
            Self::H2(sender) => sender.ready().await,
        }
    }

    /// Sends on a ready connection; the answer's body gives an HTTP/1 connection back to
    /// `pool` when it ends (an HTTP/2 one is shared through the pool at once).
    pub(crate) async fn send(
        self,
        request: Request<ProxyBody>,
        pool: &Arc<Pool>,
        route: Route,
    ) -> Result<Response<Returning>, hyper::Error> {
        match self {
            Self::H1(mut sender) => {
                let response = sender.send_request(request).await?;
                let back = Some((Arc::clone(pool), route, sender));
                Ok(response.map(|inner| Returning { inner, back }))
            }
            Self::H2(mut sender) => {
                // Shared at once: requests that come meanwhile use it too.
                pool.give(route, Self::H2(sender.clone()));
                let response = sender.send_request(request).await?;
                Ok(response.map(|inner| Returning { inner, back: None }))
            }
        }
    }
}

/// An upstream answer's body; read to its end, it gives its HTTP/1 connection back to the pool.
pub(crate) struct Returning {
    inner: Incoming,
    back: Option<(Arc<Pool>, Route, http1::SendRequest<ProxyBody>)>,
}

impl Returning {
    fn give_back(&mut self) {
        if let Some((pool, route, sender)) = self.back.take() {
            pool.give(route, Sender::H1(sender));
        }
    }
}

impl hyper::body::Body for Returning {
    type Data = bytes::Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<bytes::Bytes>, hyper::Error>>> {
        let polled = hyper::body::Body::poll_frame(std::pin::Pin::new(&mut self.inner), cx);
        match &polled {
            std::task::Poll::Ready(None) => self.give_back(),
            std::task::Poll::Ready(Some(Ok(_)))
                if hyper::body::Body::is_end_stream(&self.inner) =>
            {
                self.give_back()
            }
            std::task::Poll::Ready(Some(Err(_))) => self.back = None,
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        hyper::body::Body::is_end_stream(&self.inner)
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        hyper::body::Body::size_hint(&self.inner)
    }
}

/// Where a pooled connection leads: `scheme://authority`, and the outbound proxy it goes
/// through (none for a direct connection).
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub(crate) struct Route {
    pub(crate) origin: String,
    pub(crate) via: Option<String>,
}

#[derive(Default)]
struct Entries {
    /// Idle HTTP/1 connections; the most recently given back last.
    h1: HashMap<Route, Vec<(Instant, http1::SendRequest<ProxyBody>)>>,
    /// One HTTP/2 connection per route, and when it was last used.
    h2: HashMap<Route, (Instant, http2::SendRequest<ProxyBody>)>,
}

/// The warm connections of one trust.
pub(crate) struct Pool {
    entries: Mutex<Entries>,
    idle_for: Duration,
    /// Whether a task is closing idle connections.
    reaping: AtomicBool,
}

impl Pool {
    pub(crate) fn new(idle_for: Duration) -> Arc<Self> {
        Arc::new(Self {
            entries: Mutex::new(Entries::default()),
            idle_for,
            reaping: AtomicBool::new(false),
        })
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A warm connection to `route`: the HTTP/2 one, else the most recently given back idle
    /// HTTP/1 one. Closed and expired ones are dropped on the way.
    pub(crate) fn take(&self, route: &Route) -> Option<Sender> {
        let now = Instant::now();
        let mut entries = self.entries();
        if let Some((used, sender)) = entries.h2.get_mut(route) {
            if !sender.is_closed() {
                *used = now;
                return Some(Sender::H2(sender.clone()));
            }
            entries.h2.remove(route);
        }
        let idle = entries.h1.get_mut(route)?;
        let mut found = None;
        while let Some((since, sender)) = idle.pop() {
            if !sender.is_closed() && now.duration_since(since) < self.idle_for {
                found = Some(Sender::H1(sender));
                break;
            }
        }
        if idle.is_empty() {
            entries.h1.remove(route);
        }
        found
    }

    /// Keeps a connection for later requests to `route`: an idle HTTP/1 one until it has been
    /// idle `idle_for`; an HTTP/2 one is shared from now on.
    pub(crate) fn give(self: &Arc<Self>, route: Route, sender: Sender) {
        if sender.is_closed() {
            return;
        }
        let now = Instant::now();
        {
            let mut entries = self.entries();
            match sender {
                Sender::H2(sender) => {
                    entries.h2.insert(route, (now, sender));
                }
                Sender::H1(sender) => {
                    let idle = entries.h1.entry(route).or_default();
                    if idle.len() >= MAX_IDLE_PER_ROUTE {
                        return;
                    }
                    idle.push((now, sender));
                }
            }
        }
        self.reap_later();
    }

    /// Drops what has been idle `idle_for`; returns when the next one will have been.
    fn expire(&self) -> Option<Instant> {
        let now = Instant::now();
        let idle_for = self.idle_for;
        let mut entries = self.entries();
        entries.h1.retain(|_, idle| {
            idle.retain(|(since, sender)| {
                now.duration_since(*since) < idle_for && !sender.is_closed()
            });
            !idle.is_empty()
        });
        entries.h2.retain(|_, (used, sender)| {
            now.duration_since(*used) < idle_for && !sender.is_closed()
        });
        let oldest = entries
            .h1
            .values()
            .flatten()
            .map(|(since, _)| *since)
            .chain(entries.h2.values().map(|(used, _)| *used))
            .min();
        oldest.map(|since| since + idle_for)
    }

    /// One task per pool closes idle connections when their time is up; it ends when the
    /// pool is empty, or gone with its configuration.
    fn reap_later(self: &Arc<Self>) {
        if self.reaping.swap(true, Ordering::AcqRel) {
            return;
        }
        let pool: Weak<Self> = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                let Some(strong) = pool.upgrade() else {
                    return;
                };
                match strong.expire() {
                    Some(at) => {
                        drop(strong);
                        tokio::time::sleep_until(at).await;
                    }
                    None => {
                        strong.reaping.store(false, Ordering::Release);
                        // A connection given back since `expire` looked needs a reaper too.
                        let empty = {
                            let entries = strong.entries();
                            entries.h1.is_empty() && entries.h2.is_empty()
                        };
                        if empty || strong.reaping.swap(true, Ordering::AcqRel) {
                            return;
                        }
                    }
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_differ_by_origin_and_by_outbound_proxy() {
        let direct = Route {
            origin: "https://jira.corp.test".to_owned(),
            via: None,
        };
        let tunnelled = Route {
            via: Some("http://proxy.corp.test:3128/".to_owned()),
            ..direct.clone()
        };
        assert_ne!(direct, tunnelled);
        let pool = Pool::new(Duration::from_secs(90));
        assert!(pool.take(&direct).is_none());
    }
}

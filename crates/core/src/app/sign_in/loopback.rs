//! The one-shot loopback listener a sign-in's browser comes back to (RFC 8252): each connection
//! is served in its own task, so idle or slow sockets (a port scanner, a page poking at the
//! port) cannot hold up the real callback; the first valid callback — or a valid line the
//! person pastes, for a browser on another machine — wins. What "valid" means is the flow's:
//! OAuth 2.0 checks `state`, OAuth 1.0a the request token. The browser's page waits for the
//! flow's outcome (the code exchange, the token stored), so it never says "Signed in" for a
//! sign-in that then failed.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::{LoginError, LoginOptions, LoginProgress};

/// A request that reached the callback (or a pasted line read as one).
pub(super) struct Callback {
    pub(super) path: String,
    pub(super) params: Vec<(String, String)>,
}

impl Callback {
    pub(super) fn get(&self, key: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// A pasted line read as a callback: a full URL, or its query (`code=…&state=…`).
pub(super) fn pasted_callback(line: &str) -> Option<Callback> {
    let line = line.trim();
    if line.is_empty() {
        return None;
    }
    let params: Vec<(String, String)> = if line.contains("://") {
        url::Url::parse(line)
            .ok()?
            .query_pairs()
            .into_owned()
            .collect()
    } else {
        let query = line.rsplit_once('?').map_or(line, |(_, q)| q);
        url::form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect()
    };
    (!params.is_empty()).then(|| Callback {
        path: String::new(),
        params,
    })
}

/// What one callback brought.
pub(super) enum Heard<T> {
    /// What the flow waits for (a code, a verifier).
    Got(T),
    /// The provider sent the person back with an error, or without what the flow needs.
    Failed(LoginError),
    /// Not this flow: refused, and the flow goes on. Says why, to follow "a callback" or "a
    /// pasted address" ("with the wrong state …").
    Refused(&'static str),
}

/// How a flow judges a callback.
pub(super) type Judge<T> = Arc<dyn Fn(&Callback) -> Heard<T> + Send + Sync>;

/// How long the browser's page waits for the flow's outcome before saying so.
const OUTCOME_WAIT: Duration = Duration::from_secs(120);

/// Where a browser waits for the outcome: the outcome goes one way, "the page is written"
/// comes back.
type Waiting = (
    tokio::sync::oneshot::Sender<Result<(), String>>,
    tokio::sync::oneshot::Receiver<()>,
);

/// What the browser that brought the callback is told at the end; nothing for a pasted one.
pub(super) struct Reply(Option<Waiting>);

impl Reply {
    /// Tells the browser how the sign-in ended, and waits (briefly) until it was told: a
    /// process that exits at once would otherwise take the page with it.
    pub(super) async fn tell<T>(self, outcome: &Result<T, LoginError>) {
        if let Some((page, written)) = self.0 {
            if page
                .send(outcome.as_ref().map(drop).map_err(ToString::to_string))
                .is_ok()
            {
                let _ = tokio::time::timeout(Duration::from_secs(5), written).await;
            }
        }
    }
}

/// A callback that counted, and where its browser waits for the outcome.
type Arrived<T> = (Heard<T>, Option<Waiting>);

/// The listeners of a sign-in: the registered callback's address (and `::1` for `localhost`).
pub(super) struct Listening {
    listener: TcpListener,
    listener6: Option<TcpListener>,
    path: String,
}

/// Listens where `redirect` points (a loopback `http://` URL with a port).
pub(super) async fn listen(redirect: &url::Url, provider: &str) -> Result<Listening, LoginError> {
    let host = redirect
        .host_str()
        .unwrap_or("127.0.0.1")
        .trim_matches(['[', ']']);
    let localhost = host.eq_ignore_ascii_case("localhost");
    let host = if localhost { "127.0.0.1" } else { host };
    let port = redirect.port().unwrap_or(80);
    let addr = format!("{host}:{port}");
    let listener = TcpListener::bind(&addr)
        .await
        .map_err(|e| LoginError::PortBusy {
            addr: addr.clone(),
            port,
            reason: e.to_string(),
            provider: provider.to_owned(),
        })?;
    // A `localhost` callback may arrive on either loopback (RFC 8252 §8.3): listen on ::1 too
    // where the machine has it.
    let listener6 = if localhost {
        TcpListener::bind(("::1", port)).await.ok()
    } else {
        None
    };
    Ok(Listening {
        listener,
        listener6,
        path: redirect.path().to_owned(),
    })
}

/// Waits for the first valid callback, or a valid pasted line (`pasted` reads one), until
/// the options' timeout. The listeners close when it returns: a replayed callback finds
/// nobody listening.
pub(super) async fn wait<T: Send + 'static>(
    listening: Listening,
    options: &LoginOptions,
    progress: &dyn LoginProgress,
    judge: Judge<T>,
    pasted: &dyn Fn(&str) -> Option<Callback>,
) -> Result<(T, Reply), LoginError> {
    let Listening {
        listener,
        listener6,
        path,
    } = listening;
    let path = Arc::new(path);
    let deadline = tokio::time::Instant::now() + options.timeout;
    let (events, mut heard) = tokio::sync::mpsc::channel::<Arrived<T>>(8);
    let mut lines = options
        .pasted
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take();
    loop {
        let accepted = tokio::select! {
            line = async {
                match lines.as_mut() {
                    Some(lines) => lines.recv().await,
                    None => std::future::pending().await,
                }
            } => {
                match line {
                    // The input ended (nothing more to paste): the callback may still come.
                    None => lines = None,
                    Some(line) => match pasted(&line) {
                        Some(callback) => match judge(&callback) {
                            Heard::Got(value) => return Ok((value, Reply(None))),
                            Heard::Failed(err) => return Err(err),
                            Heard::Refused(why) => progress.refused_callback(
                                &format!("a pasted address {why}"),
                            ),
                        },
                        None => progress.refused_callback(
                            "a pasted line that is not the address the browser ended at",
                        ),
                    },
                }
                continue;
            }
            accepted = listener.accept() => accepted.ok(),
            accepted = async {
                match &listener6 {
                    Some(l6) => l6.accept().await.ok(),
                    None => std::future::pending().await,
                }
            } => accepted,
            event = heard.recv() => match event {
                Some((Heard::Got(value), page)) => return Ok((value, Reply(page))),
                Some((Heard::Failed(err), _)) => return Err(err),
                Some((Heard::Refused(why), _)) => {
                    progress.refused_callback(&format!("a callback {why}"));
                    continue;
                }
                None => continue,
            },
            () = tokio::time::sleep_until(deadline) => {
                return Err(LoginError::Timeout(options.timeout.as_secs()));
            }
        };
        if let Some((stream, _)) = accepted {
            tokio::spawn(serve_callback(
                stream,
                Arc::clone(&path),
                Arc::clone(&judge),
                events.clone(),
            ));
        }
    }
}

async fn read_request(stream: &mut TcpStream) -> Option<Callback> {
    let mut buf = Vec::with_capacity(2048);
    let mut chunk = [0u8; 1024];
    let read = async {
        loop {
            let n = stream.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            buf.extend_from_slice(&chunk[..n]);
            if buf.windows(4).any(|w| w == b"\r\n\r\n") {
                return Some(());
            }
            if buf.len() > 16 * 1024 {
                return None;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(5), read)
        .await
        .ok()??;
    let head = String::from_utf8_lossy(&buf);
    let line = head.lines().next()?;
    let mut parts = line.split(' ');
    if parts.next()? != "GET" {
        return None;
    }
    let target = parts.next()?;
    let url = url::Url::parse(&format!("http://callback.invalid{target}")).ok()?;
    Some(Callback {
        path: url.path().to_owned(),
        params: url.query_pairs().into_owned().collect(),
    })
}

async fn respond(stream: &mut TcpStream, status: &str, title: &str, body: &str) {
    let page = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Latch — {title}</title>\
         <style>body{{font:16px system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem;color:#1e1b4b}}\
         h1{{font-size:1.4rem}}</style></head><body><h1>{title}</h1><p>{body}</p></body></html>"
    );
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nReferrer-Policy: no-referrer\r\nConnection: close\r\n\r\n{page}",
        page.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// Serves one connection to the callback listener.
async fn serve_callback<T>(
    mut stream: TcpStream,
    path: Arc<String>,
    judge: Judge<T>,
    events: tokio::sync::mpsc::Sender<Arrived<T>>,
) {
    let Some(callback) = read_request(&mut stream).await else {
        respond(
            &mut stream,
            "400 Bad Request",
            "Not a sign-in",
            "Latch expected a sign-in callback here.",
        )
        .await;
        return;
    };
    if callback.path != *path {
        respond(
            &mut stream,
            "404 Not Found",
            "Not found",
            "This is Latch's sign-in callback; nothing else lives here.",
        )
        .await;
        return;
    }
    let heard = judge(&callback);
    match &heard {
        // Not our flow (an old tab, or a page poking at the port): refuse, keep waiting.
        Heard::Refused(_) => {
            respond(
                &mut stream,
                "400 Bad Request",
                "Sign-in not recognised",
                "This sign-in link is not the one Latch started (its state does not match). \
                 Latch is still waiting for the sign-in it opened; nothing was stored.",
            )
            .await;
        }
        Heard::Failed(LoginError::Exchange { message, .. }) => {
            respond(
                &mut stream,
                "400 Bad Request",
                "Sign-in incomplete",
                &crate::html::escape(message),
            )
            .await;
        }
        Heard::Failed(err) => {
            respond(
                &mut stream,
                "200 OK",
                "Sign-in did not complete",
                &crate::html::escape(&err.to_string()),
            )
            .await;
        }
        Heard::Got(_) => {
            // The page waits for the outcome: the code is not a sign-in until it is redeemed.
            let (page, outcome) = tokio::sync::oneshot::channel();
            let (written, written_rx) = tokio::sync::oneshot::channel();
            if events
                .send((heard, Some((page, written_rx))))
                .await
                .is_err()
            {
                return;
            }
            let (title, body) = match tokio::time::timeout(OUTCOME_WAIT, outcome).await {
                Ok(Ok(Ok(()))) => (
                    "Signed in",
                    "Latch is signed in. You can close this tab and return to Latch.".to_owned(),
                ),
                Ok(Ok(Err(why))) => (
                    "Sign-in did not complete",
                    format!(
                        "{} Nothing was stored; Latch says what to do.",
                        crate::html::escape(&why)
                    ),
                ),
                _ => (
                    "Sign-in received",
                    "Latch received the sign-in and is still finishing it: see Latch for the \
                     outcome."
                        .to_owned(),
                ),
            };
            respond(&mut stream, "200 OK", title, &body).await;
            let _ = written.send(());
            return;
        }
    }
    let _ = events.send((heard, None)).await;
}

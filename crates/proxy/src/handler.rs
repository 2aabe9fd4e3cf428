//! One request, through the pipeline: guard → key → canonical path → route → policy → upstream.
//! Each stage either passes the request on or returns a `Refusal`; nothing else decides.

use bytes::Bytes;
use http::{Request, Response};
use hyper::body::Body;

use crate::audit::Audit;
use crate::refusal::Refusal;
use crate::{guard, key, path, policy, upstream, ProxyBody, Shared, State};

/// Handles one request, whatever its body (hyper's `Incoming` from a socket, or a buffer in a
/// test): every stage runs without a connection of its own.
pub(crate) async fn handle<B>(shared: &Shared, request: Request<B>) -> Response<ProxyBody>
where
    B: Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<crate::BoxError>,
{
    // Before a key is known, a refusal is only counted (per minute and reason): a flood of
    // unauthenticated requests must not grow the database.
    let before_key =
        guard::check(request.headers(), request.method(), shared.port).and_then(|()| {
            if shared.paused.load(std::sync::atomic::Ordering::Relaxed) {
                Err(Refusal::Paused)
            } else {
                Ok(())
            }
        });
    let state = shared.state();
    let verified = before_key.and_then(|()| key::verify(&state.keys, request.headers()));
    let key = match verified {
        Ok(key) => key,
        Err(refusal) => {
            shared
                .audit
                .count(refusal.code(), refusal.status().as_u16());
            return refusal.into_response();
        }
    };
    past_the_key(shared, &state, &key, Routing::ByPath, request).await
}

/// How a request with a key finds its connector.
enum Routing<'a> {
    /// `/{connector}/{rest}` (`latch serve`, `latch exec`).
    ByPath,
    /// The host it was sent to, through the exec's host map (`latch exec --intercept`).
    ByHost {
        map: &'a latch_core::app::intercept::InterceptMap,
        host: &'a str,
        port: u16,
    },
}

/// Canonical path → route → the key's policy → upstream, audited.
async fn past_the_key<B>(
    shared: &Shared,
    state: &State,
    key: &key::VerifiedKey,
    routing: Routing<'_>,
    request: Request<B>,
) -> Response<ProxyBody>
where
    B: Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<crate::BoxError>,
{
    let mut audit = Audit::new(request.method().as_str(), request.uri().path());
    audit.key_name = Some(key.name().to_owned());
    // `latch exec`'s keys have no row (id 0): their name alone says whose they are.
    audit.key_id = Some(key.id()).filter(|id| *id > 0);
    let answer = async {
        let canonical = path::canonical(request.uri().path()).map_err(Refusal::BadPath)?;
        let routed = match routing {
            Routing::ByPath => policy::route(&state.config, &canonical, key)?,
            Routing::ByHost { map, host, port } => {
                policy::route_intercepted(&state.config, map, host, port, &canonical, key)?
            }
        };
        audit.connector = Some(routed.connector.name.clone());
        let has_body = !request.body().is_end_stream()
            && request
                .headers()
                .get(http::header::CONTENT_LENGTH)
                .is_none_or(|v| v.as_bytes() != b"0");
        policy::allow(key, &routed, request.method(), has_body)?;
        upstream::forward(shared, state, routed, request, &mut audit).await
    }
    .await;
    let response = answer.unwrap_or_else(Refusal::into_response);
    if !audit.is_taken() {
        let bytes = response.body().size_hint().exact().unwrap_or(0);
        shared
            .audit
            .record(&audit, response.status().as_u16(), bytes);
    }
    response
}

/// A request a `latch exec --intercept` child sent to a connector's real host name: the tunnel's
/// host (and the TLS server name) must be the one it names, then the same stages as
/// [`handle`] with the exec's key and the host map in place of the loopback guard and the first
/// path segment.
pub(crate) async fn handle_intercepted<B>(
    shared: &Shared,
    key: &key::VerifiedKey,
    map: &latch_core::app::intercept::InterceptMap,
    host: &str,
    port: u16,
    server_name_ok: bool,
    request: Request<B>,
) -> Response<ProxyBody>
where
    B: Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<crate::BoxError>,
{
    let authority = if port == 443 {
        host.to_owned()
    } else {
        format!("{host}:{port}")
    };
    let hosts = request.headers().get_all(http::header::HOST);
    let named = |value: &http::HeaderValue| {
        value.to_str().is_ok_and(|v| {
            v.eq_ignore_ascii_case(&authority) || v.eq_ignore_ascii_case(&format!("{host}:{port}"))
        })
    };
    let host_ok = hosts.iter().count() == 1 && hosts.iter().all(named);
    let before = if !server_name_ok || !host_ok {
        Err(Refusal::InterceptMisdirected { authority })
    } else if shared.paused.load(std::sync::atomic::Ordering::Relaxed) {
        Err(Refusal::Paused)
    } else {
        Ok(())
    };
    if let Err(refusal) = before {
        shared
            .audit
            .count(refusal.code(), refusal.status().as_u16());
        return refusal.into_response();
    }
    let state = shared.state();
    past_the_key(
        shared,
        &state,
        key,
        Routing::ByHost { map, host, port },
        request,
    )
    .await
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;

    use http_body_util::{BodyExt as _, Full};
    use latch_core::app::{AddConnector, App};
    use latch_core::config::home::Home;
    use latch_core::local_key::KeyPolicy;

    use super::*;
    use crate::test_support::Memory;

    async fn answer(shared: &Shared, request: Request<Full<Bytes>>) -> (u16, String) {
        let response = handle(shared, request).await;
        let status = response.status().as_u16();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        (
            status,
            json["error"].as_str().unwrap_or_default().to_owned(),
        )
    }

    /// Every stage before the upstream, on requests built in memory: no socket, no server.
    #[tokio::test]
    async fn each_stage_refuses_in_process() {
        let dir = tempfile::tempdir().unwrap();
        let app = App::open(Home::at(dir.path()), Arc::new(Memory::default())).unwrap();
        app.connectors()
            .add(AddConnector {
                name: "opsgenie".into(),
                ..AddConnector::default()
            })
            .unwrap();
        let policy = KeyPolicy {
            connectors: vec!["opsgenie".into()],
            read_only: true,
            paths: Some(vec!["v2/alerts/*".into()]),
            mcp_tools: None,
        };
        let (key, _) = app.keys().create("stage", policy, None).unwrap();
        let shared = Shared::new(&app, 7391, Arc::new(AtomicBool::new(false)));
        let request = |method: &str, path: &str, headers: &[(&str, &str)]| {
            let mut builder = Request::builder().method(method).uri(path);
            for (name, value) in headers {
                builder = builder.header(*name, *value);
            }
            builder.body(Full::new(Bytes::new())).unwrap()
        };
        let bearer = format!("Bearer {}", key.expose());
        let host = ("host", "127.0.0.1:7391");
        for (method, path, headers, want) in [
            (
                "GET",
                "/opsgenie/v2/alerts",
                vec![("host", "evil.example:7391")],
                (421, "bad_host"),
            ),
            (
                "GET",
                "/opsgenie/v2/alerts",
                vec![host, ("origin", "https://evil.example")],
                (403, "origin_not_allowed"),
            ),
            (
                "GET",
                "/opsgenie/v2/alerts",
                vec![host],
                (401, "missing_key"),
            ),
            (
                "GET",
                "/opsgenie/v2/alerts",
                vec![host, ("authorization", "Bearer lk_nope")],
                (401, "bad_key"),
            ),
            (
                "GET",
                "/opsgenie/v2/../../x",
                vec![host, ("authorization", bearer.as_str())],
                (400, "bad_path"),
            ),
            (
                "GET",
                "/nope/v2/alerts",
                vec![host, ("authorization", bearer.as_str())],
                (404, "unknown_connector"),
            ),
            (
                "POST",
                "/opsgenie/v2/alerts/1",
                vec![host, ("authorization", bearer.as_str())],
                (403, "method_not_allowed"),
            ),
            (
                "GET",
                "/opsgenie/v1/heartbeats",
                vec![host, ("authorization", bearer.as_str())],
                (403, "path_not_allowed"),
            ),
            (
                "GET",
                "/opsgenie/v2/alerts/1",
                vec![host, ("authorization", bearer.as_str())],
                (502, "credential_missing"),
            ),
        ] {
            let got = answer(&shared, request(method, path, &headers)).await;
            assert_eq!((got.0, got.1.as_str()), want, "{method} {path} {headers:?}");
        }
    }
}

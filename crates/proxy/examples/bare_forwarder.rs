//! The bare-forwarding reference for `make bench-proxy`: hyper's server and hyper-util's
//! pooled client, nothing else (no key, policy, audit, credential or link rewriting). Prints
//! `listening on http://ADDR` and forwards every request to the origin given as its argument.

#![allow(clippy::expect_used)] // a benchmark tool: it fails loudly

use std::convert::Infallible;

use http_body_util::BodyExt as _;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};

type Body = http_body_util::combinators::BoxBody<bytes::Bytes, hyper::Error>;

fn main() {
    let origin = std::env::args()
        .nth(1)
        .expect("usage: bare_forwarder http://127.0.0.1:PORT");
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(serve(origin));
}

async fn serve(origin: String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port");
    println!(
        "listening on http://{}",
        listener.local_addr().expect("an address")
    );
    let client: Client<_, Body> = Client::builder(TokioExecutor::new()).build_http();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let (client, origin) = (client.clone(), origin.clone());
        tokio::spawn(async move {
            let service = service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                let (client, origin) = (client.clone(), origin.clone());
                async move {
                    let (mut parts, body) = request.into_parts();
                    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
                    parts.uri = format!("{origin}{path}").parse().expect("a URL");
                    parts.headers.remove(hyper::header::HOST);
                    let request = hyper::Request::from_parts(parts, body.boxed());
                    let response = match client.request(request).await {
                        Ok(response) => response.map(|b| b.boxed()),
                        Err(_) => hyper::Response::builder()
                            .status(502)
                            .body(
                                http_body_util::Empty::new()
                                    .map_err(|never| match never {})
                                    .boxed(),
                            )
                            .expect("a response"),
                    };
                    Ok::<_, Infallible>(response)
                }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

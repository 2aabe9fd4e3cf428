//! One request, through the pipeline: guard → key → canonical path → route → policy → upstream.
//! Each stage either passes the request on or returns a `Refusal`; nothing else decides.

use http::{Request, Response};
use hyper::body::{Body as _, Incoming};

use crate::audit::Audit;
use crate::refusal::Refusal;
use crate::{guard, key, path, policy, upstream, ProxyBody, Shared};

pub(crate) async fn handle(
    shared: &Shared,
    upstreams: &upstream::UpstreamConnections,
    request: Request<Incoming>,
) -> Response<ProxyBody> {
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
    let mut audit = Audit::new(request.method().as_str(), request.uri().path());
    audit.key_name = Some(key.name().to_owned());
    let answer = async {
        let canonical = path::canonical(request.uri().path()).map_err(Refusal::BadPath)?;
        let routed = policy::route(&state.config, &canonical, &key)?;
        audit.connector = Some(routed.connector.name.clone());
        policy::allow(&key, &routed, request.method())?;
        upstream::forward(shared, &state, upstreams, routed, request, &mut audit).await
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

//! Refusals: a status and a JSON body `{"error", "message", "action"}` a person or a script can
//! act on. They never echo the presented key or any token.

use bytes::Bytes;
use http::{header, Response, StatusCode};
use http_body_util::BodyExt as _;

use crate::forward::ProxyBody;

pub(crate) fn refuse(
    status: StatusCode,
    error: &str,
    message: &str,
    action: &str,
) -> Response<ProxyBody> {
    let body = serde_json::json!({ "error": error, "message": message, "action": action });
    refuse_json(status, &body)
}

/// A refusal with a body that carries more than the three common fields.
pub(crate) fn refuse_json(status: StatusCode, body: &serde_json::Value) -> Response<ProxyBody> {
    let mut response = Response::new(
        http_body_util::Full::new(Bytes::from(body.to_string()))
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    if status == StatusCode::UNAUTHORIZED {
        // Lets Basic-only clients know to send credentials (the key goes in the password).
        headers.insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Basic realm=\"latch\", charset=\"UTF-8\""),
        );
    }
    response
}

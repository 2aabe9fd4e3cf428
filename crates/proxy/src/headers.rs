//! Headers the proxy owns: hop-by-hop ones never forwarded, method overrides stripped from
//! requests, and what every answer carries so that a browser can do nothing with it.

use http::{header, HeaderMap, HeaderName, HeaderValue};

/// Hop-by-hop headers (RFC 9110 §7.6.1) and the ones Latch owns are never forwarded.
pub(crate) fn strip(headers: &mut HeaderMap) {
    let listed: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in listed {
        headers.remove(name);
    }
    for name in [
        header::CONNECTION,
        header::PROXY_AUTHENTICATE,
        header::PROXY_AUTHORIZATION,
        header::TE,
        header::TRAILER,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
        HeaderName::from_static("keep-alive"),
    ] {
        headers.remove(name);
    }
}

/// Headers that would let a client change the method or the path past its key's policy: some
/// upstreams (and the servers in front of them) honour them, in either spelling — servlet
/// containers read `X_HTTP_METHOD_OVERRIDE` as the same header.
pub(crate) const METHOD_OVERRIDES: [&str; 8] = [
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
    "x_http_method_override",
    "x_http_method",
    "x_method_override",
    "x-original-url",
    "x-rewrite-url",
];

/// Whether a request header is one of [`METHOD_OVERRIDES`], whatever its dashes.
pub(crate) fn is_override(name: &HeaderName) -> bool {
    let plain = name.as_str().replace('_', "-");
    METHOD_OVERRIDES
        .iter()
        .any(|o| o.replace('_', "-") == plain)
}

/// An upstream's CORS headers never reach a client: the proxy serves no browser.
pub(crate) fn strip_cors(headers: &mut HeaderMap) {
    let cors: Vec<HeaderName> = headers
        .keys()
        .filter(|name| name.as_str().starts_with("access-control-"))
        .cloned()
        .collect();
    for name in cors {
        headers.remove(name);
    }
}

/// What a browser must not do with anything the proxy answers, should it ever get one: sniff
/// it into something executable, or run it in the proxy's origin.
pub(crate) fn harden(headers: &mut HeaderMap) {
    strip_cors(headers);
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("sandbox"),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_are_stripped() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, x-private"),
        );
        h.insert("x-private", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        h.insert("x-keep", HeaderValue::from_static("1"));
        strip(&mut h);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key("x-keep"));
    }
}

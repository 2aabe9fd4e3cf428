//! What is refused before the key is even looked at: requests that are not from a local tool.
//! DNS rebinding (`Host`), browser pages (`Origin`, CORS preflights, `Sec-Fetch-Site`), and an
//! ambiguous request (two `Host` headers).

use http::{header, HeaderMap, Method};

use crate::refusal::Refusal;

/// `Host` must be a loopback name with our port: anything else is DNS rebinding or a mistake.
pub(crate) fn host_ok(headers: &HeaderMap, port: u16) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        return false;
    };
    let Some((name, p)) = host.rsplit_once(':') else {
        return false;
    };
    p.parse::<u16>().ok() == Some(port)
        && (name == "127.0.0.1" || name.eq_ignore_ascii_case("localhost") || name == "[::1]")
}

/// Checks a request's headers before anything else.
pub(crate) fn check(headers: &HeaderMap, method: &Method, port: u16) -> Result<(), Refusal> {
    if headers.get_all(header::HOST).iter().count() > 1 {
        return Err(Refusal::DuplicateHost);
    }
    if !host_ok(headers, port) {
        return Err(Refusal::BadHost { port });
    }
    if headers.contains_key(header::ORIGIN) {
        return Err(Refusal::OriginNotAllowed);
    }
    if method == Method::OPTIONS && headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD) {
        return Err(Refusal::PreflightRefused);
    }
    // Every current browser sends Sec-Fetch-Site on every request; scripts do not. Node's
    // built-in fetch sends `Sec-Fetch-Mode: cors` but no Sec-Fetch-Site, and is a script.
    if headers.contains_key("sec-fetch-site") {
        return Err(Refusal::BrowserRefused);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn host_must_be_loopback_with_our_port() {
        let mut h = HeaderMap::new();
        for (host, ok) in [
            ("127.0.0.1:7391", true),
            ("localhost:7391", true),
            ("[::1]:7391", true),
            ("127.0.0.1:80", false),
            ("evil.example:7391", false),
            ("evil.example", false),
            ("127.0.0.1", false),
        ] {
            h.insert(header::HOST, HeaderValue::from_static(host));
            assert_eq!(host_ok(&h, 7391), ok, "{host}");
        }
        h.remove(header::HOST);
        assert!(!host_ok(&h, 7391));
    }

    #[test]
    fn browsers_are_refused_scripts_pass() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:7391"));
        assert!(check(&h, &Method::GET, 7391).is_ok());
        h.insert("sec-fetch-mode", HeaderValue::from_static("cors"));
        assert!(check(&h, &Method::GET, 7391).is_ok(), "Node's fetch passes");
        h.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
        assert!(matches!(
            check(&h, &Method::GET, 7391),
            Err(Refusal::BrowserRefused)
        ));
        let mut two = HeaderMap::new();
        two.append(header::HOST, HeaderValue::from_static("127.0.0.1:7391"));
        two.append(header::HOST, HeaderValue::from_static("evil.example:7391"));
        assert!(matches!(
            check(&two, &Method::GET, 7391),
            Err(Refusal::DuplicateHost)
        ));
    }
}

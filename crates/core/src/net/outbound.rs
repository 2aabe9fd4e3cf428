//! How Latch reaches the outside world through a company proxy: `HTTPS_PROXY`, `HTTP_PROXY`,
//! `ALL_PROXY` and `NO_PROXY` (and their lower-case forms), read the way curl reads them, for
//! token endpoints, discovery, probes and the proxy's upstreams alike. Loopback hosts are never
//! sent through a proxy: Latch's own port, a local gateway or test server stay local whatever
//! the environment says.

use hyper_util::client::proxy::matcher::Matcher;

/// The environment's proxy rules.
pub struct OutboundProxy {
    matcher: Matcher,
}

/// Where to send a connection for a destination: the proxy's URI and, when the proxy URL
/// carried `user:password`, the `Proxy-Authorization` value.
pub struct ProxyRoute {
    /// `http://proxy.corp.example:3128`.
    pub uri: http::Uri,
    /// `Basic …` for the proxy, never logged (marked sensitive).
    pub authorization: Option<http::HeaderValue>,
}

fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.eq_ignore_ascii_case("localhost") || host.to_ascii_lowercase().ends_with(".localhost") {
        return true;
    }
    host.parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
}

impl OutboundProxy {
    /// The rules of this process's environment.
    pub fn from_env() -> Self {
        Self {
            matcher: Matcher::from_env(),
        }
    }

    /// The proxy for a destination, or `None` to connect directly.
    pub fn route(&self, destination: &http::Uri) -> Option<ProxyRoute> {
        if is_loopback(destination.host()?) {
            return None;
        }
        let intercept = self.matcher.intercept(destination)?;
        let mut authorization = intercept.basic_auth().cloned();
        if let Some(value) = authorization.as_mut() {
            value.set_sensitive(true);
        }
        Some(ProxyRoute {
            uri: intercept.uri().clone(),
            authorization,
        })
    }

    /// The same rules for reqwest (the OAuth client): a custom proxy that asks [`Self::route`].
    pub fn for_reqwest(self) -> reqwest::Proxy {
        let rules = std::sync::Arc::new(self);
        reqwest::Proxy::custom(move |url| {
            let uri: http::Uri = url.as_str().parse().ok()?;
            if is_loopback(uri.host()?) {
                return None;
            }
            let intercept = rules.matcher.intercept(&uri)?;
            // reqwest takes the credentials from the proxy URL itself.
            let mut proxy = url::Url::parse(&intercept.uri().to_string()).ok()?;
            if let Some((user, password)) = intercept.raw_auth() {
                let _ = proxy.set_username(user);
                let _ = proxy.set_password(Some(password));
            }
            Some(proxy)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_never_proxied() {
        for host in [
            "localhost",
            "127.0.0.1",
            "127.3.2.1",
            "[::1]",
            "app.localhost",
        ] {
            assert!(is_loopback(host), "{host}");
        }
        for host in ["jira.corp.example", "10.0.0.1", "[2001:db8::1]"] {
            assert!(!is_loopback(host), "{host}");
        }
    }
}

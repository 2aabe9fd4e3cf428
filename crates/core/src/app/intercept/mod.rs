//! `latch exec --intercept`: which connector answers a request a tool sends to a real host name
//! (`acme.atlassian.net`, `api.atlassian.com`, `api.bitbucket.org`, a Data Center host).
//!
//! A connector's hosts are its preset's real names, whatever endpoint overrides say (those only
//! decide where Latch sends the request on), or its `intercept_hosts`. On a host that serves
//! several connectors the path decides: the gateway by `/ex/{product}/{cloudId}`, a site by the
//! catalog's `site_paths` (`/wiki/` is Confluence's, the rest Jira's). A path no chosen
//! connector covers is refused, never sent with another connector's credential.

pub mod child;

use std::fmt::Write as _;

use crate::config::{parse_intercept_host, Config, Connector};
use crate::provider::catalog::BASE_PLACEHOLDER;
use crate::upstream::site::{site_ref, SiteRef};

/// The placeholder of a gateway path's cloud id while templates are parsed as URLs.
const CLOUD_ID_MARK: &str = "latch-cloud-id";

/// One segment of a path prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    Fixed(String),
    /// `{cloud_id}`: the connector's site id (any, while unknown).
    CloudId,
}

/// How a host's paths belong to a connector.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Shape {
    /// The connector's API base: a path prefix, taken off (`/ex/jira/{cloudId}`, a Data Center
    /// context path).
    Api(Vec<Segment>),
    /// A Cloud site: the paths in `own` (`/wiki/`) or, when `own` is empty, every path no
    /// product of the provider claims (`claimed`). The path is kept whole.
    Site {
        own: Vec<String>,
        claimed: Vec<String>,
    },
    /// Git over HTTPS at the provider's git URL (`bitbucket.org`): sent to the configured git
    /// URL, with the credential in git's form.
    Git(Vec<Segment>),
}

/// One host a connector answers on.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Route {
    host: String,
    port: u16,
    connector: String,
    shape: Shape,
}

/// Where an intercepted request goes.
#[derive(Debug, PartialEq, Eq)]
pub struct Intercepted {
    /// The connector whose credential it carries.
    pub connector: String,
    /// The path below the connector's base, no leading `/` (as `/{connector}/{rest}` would be).
    pub rest: String,
    /// Git's host: the configured git URL replaces the connector's base, and the credential
    /// goes in git's form.
    pub git_base: Option<String>,
}

/// Why an intercepted request has no connector.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("no connector chosen for this command covers {host}{path}")]
pub struct NotCovered {
    /// The host.
    pub host: String,
    /// The path asked for.
    pub path: String,
}

/// Why the host map cannot be built.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InterceptError {
    /// None of the chosen connectors has a host to intercept.
    #[error(
        "none of the chosen connectors has a host name to intercept ({0}); set `intercept_hosts` \
         under [connectors.NAME] in latch.toml"
    )]
    NoHosts(String),
}

/// The chosen connectors' hosts, and how a path on each picks a connector.
#[derive(Clone, Debug, Default)]
pub struct InterceptMap {
    routes: Vec<Route>,
    /// Cloud ids learnt before the child started, by connector.
    cloud_ids: Vec<(String, String)>,
}

/// `scheme://host[:port]/path` → (host, port, path segments), with `{cloud_id}` as a segment.
fn split_url(template: &str) -> Option<(String, u16, Vec<Segment>)> {
    let url = url::Url::parse(&template.replace("{cloud_id}", CLOUD_ID_MARK)).ok()?;
    let host = url.host_str()?.to_ascii_lowercase();
    let port = url.port_or_known_default()?;
    let segments = url
        .path()
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            if s == CLOUD_ID_MARK {
                Segment::CloudId
            } else {
                Segment::Fixed(s.to_owned())
            }
        })
        .collect();
    Some((host, port, segments))
}

impl InterceptMap {
    /// The host map of `connectors` (the ones the command may reach).
    pub fn build(config: &Config, connectors: &[Connector]) -> Result<Self, InterceptError> {
        let mut routes = Vec::new();
        for connector in connectors {
            let defaults = default_routes(config, connector);
            if connector.intercept_hosts.is_empty() {
                // Names only: the exec's CA may not sign for an IP address (an instance reached
                // by one needs `intercept_hosts`).
                routes.extend(defaults.into_iter().filter(|r| {
                    let bare = r.host.trim_start_matches('[').trim_end_matches(']');
                    bare.parse::<std::net::IpAddr>().is_err()
                }));
                continue;
            }
            // `intercept_hosts` replaces the hosts; each serves every path shape the defaults
            // had (a gateway prefix and a site, for a Cloud connector).
            let mut shapes: Vec<Shape> = Vec::new();
            for route in defaults {
                if !shapes.contains(&route.shape) {
                    shapes.push(route.shape);
                }
            }
            for written in &connector.intercept_hosts {
                let Some((host, port)) = parse_intercept_host(written) else {
                    continue;
                };
                for shape in &shapes {
                    routes.push(Route {
                        host: host.clone(),
                        port,
                        connector: connector.name.clone(),
                        shape: shape.clone(),
                    });
                }
            }
        }
        if routes.is_empty() {
            let names: Vec<&str> = connectors.iter().map(|c| c.name.as_str()).collect();
            return Err(InterceptError::NoHosts(names.join(", ")));
        }
        Ok(Self {
            routes,
            cloud_ids: Vec::new(),
        })
    }

    /// The connectors whose gateway paths carry a cloud id (it is learnt before the child runs).
    pub fn needs_cloud_id(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for route in &self.routes {
            let has = match &route.shape {
                Shape::Api(segments) | Shape::Git(segments) => segments.contains(&Segment::CloudId),
                Shape::Site { .. } => false,
            };
            if has && !names.contains(&route.connector) {
                names.push(route.connector.clone());
            }
        }
        names
    }

    /// Adds the site a connector's sign-in reached (it names none in latch.toml): its real
    /// URL, from the sign-in.
    pub fn add_signed_in_site(&mut self, config: &Config, connector: &Connector, url: &str) {
        if !connector.intercept_hosts.is_empty() {
            return;
        }
        if let Some(route) = site_route(config, connector, url) {
            if !self.routes.contains(&route) {
                self.routes.push(route);
            }
        }
    }

    /// Remembers a connector's cloud id: its gateway paths must carry exactly that one.
    pub fn set_cloud_id(&mut self, connector: &str, id: &str) {
        self.cloud_ids
            .push((connector.to_owned(), id.to_ascii_lowercase()));
    }

    fn cloud_id(&self, connector: &str) -> Option<&str> {
        self.cloud_ids
            .iter()
            .find(|(c, _)| c == connector)
            .map(|(_, id)| id.as_str())
    }

    /// Whether requests to `host:port` are terminated (else they are tunnelled or refused).
    pub fn covers(&self, host: &str, port: u16) -> bool {
        self.routes
            .iter()
            .any(|r| r.port == port && r.host.eq_ignore_ascii_case(host))
    }

    /// Every intercepted host name, once (the CA's permitted names).
    pub fn host_names(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for route in &self.routes {
            if !names.contains(&route.host) {
                names.push(route.host.clone());
            }
        }
        names
    }

    /// The connector for `path` (canonical, from `/`) on `host:port`.
    pub fn route(
        &self,
        config: &Config,
        host: &str,
        port: u16,
        path: &str,
    ) -> Result<Intercepted, NotCovered> {
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let mut found: Vec<Intercepted> = Vec::new();
        for route in self
            .routes
            .iter()
            .filter(|r| r.port == port && r.host.eq_ignore_ascii_case(host))
        {
            let known_id = self.cloud_id(&route.connector);
            let take = |prefix: &[Segment]| -> Option<String> {
                if segments.len() < prefix.len() {
                    return None;
                }
                for (want, got) in prefix.iter().zip(&segments) {
                    let ok = match want {
                        Segment::Fixed(s) => s == got,
                        Segment::CloudId => known_id.is_none_or(|id| id.eq_ignore_ascii_case(got)),
                    };
                    if !ok {
                        return None;
                    }
                }
                // The rest as sent: a trailing `/` is the API's business.
                let mut rest = path.trim_start_matches('/');
                for _ in prefix {
                    rest = rest.split_once('/').map_or("", |(_, after)| after);
                }
                Some(rest.to_owned())
            };
            let hit = match &route.shape {
                Shape::Api(prefix) => take(prefix).map(|rest| (rest, None)),
                Shape::Git(prefix) => take(prefix).map(|rest| {
                    let base = config
                        .connector(&route.connector)
                        .and_then(|c| config.provider(&c.provider))
                        .and_then(|p| p.spec.git_url.clone());
                    (rest, base)
                }),
                Shape::Site { own, claimed } => {
                    let under =
                        |p: &String| path.starts_with(p.as_str()) || format!("{path}/") == *p;
                    let mine = if own.is_empty() {
                        !claimed.iter().any(under)
                    } else {
                        own.iter().any(under)
                    };
                    mine.then(|| (path.trim_start_matches('/').to_owned(), None))
                }
            };
            if let Some((rest, git_base)) = hit {
                if !found.iter().any(|f| f.connector == route.connector) {
                    found.push(Intercepted {
                        connector: route.connector.clone(),
                        rest,
                        git_base,
                    });
                }
            }
        }
        if found.len() > 1 {
            // Two products on one prefix (Jira and Jira Service Management share
            // `/ex/jira/{cloudId}`): the one whose probe lives under the same two segments.
            let pick = found.iter().position(|f| {
                config.connector(&f.connector).is_some_and(|c| {
                    let probe: Vec<&str> = c
                        .spec
                        .probe
                        .path
                        .split('/')
                        .filter(|s| !s.is_empty())
                        .take(2)
                        .collect();
                    let rest: Vec<&str> = f.rest.split('/').take(2).collect();
                    probe == rest
                })
            });
            return Ok(found.swap_remove(pick.unwrap_or(0)));
        }
        found.pop().ok_or_else(|| NotCovered {
            host: host.to_owned(),
            path: path.to_owned(),
        })
    }

    /// The map as `latch exec --intercept --dry-run` prints it: host, paths, connector.
    pub fn describe(&self) -> String {
        let mut rows: Vec<(String, String, String)> = Vec::new();
        for route in &self.routes {
            let authority = if route.port == 443 {
                route.host.clone()
            } else {
                format!("{}:{}", route.host, route.port)
            };
            let id = self.cloud_id(&route.connector).unwrap_or("{cloudId}");
            let prefix = |segments: &[Segment]| {
                let mut text = String::new();
                for s in segments {
                    text.push('/');
                    text.push_str(match s {
                        Segment::Fixed(s) => s,
                        Segment::CloudId => id,
                    });
                }
                text.push_str("/…");
                text
            };
            let paths = match &route.shape {
                Shape::Api(p) => prefix(p),
                Shape::Git(p) => format!("{} (git)", prefix(p)),
                Shape::Site { own, claimed } if own.is_empty() => {
                    if claimed.is_empty() {
                        "/…".to_owned()
                    } else {
                        format!("/… except {}", claimed.join(", "))
                    }
                }
                Shape::Site { own, .. } => own
                    .iter()
                    .map(|p| format!("{}/…", p.trim_end_matches('/')))
                    .collect::<Vec<_>>()
                    .join(", "),
            };
            rows.push((authority, paths, route.connector.clone()));
        }
        let width =
            |f: fn(&(String, String, String)) -> usize| rows.iter().map(f).max().unwrap_or(0);
        let (a, p) = (
            width(|r| r.0.chars().count()),
            width(|r| r.1.chars().count()),
        );
        let mut out = String::new();
        for (authority, paths, connector) in &rows {
            let _ = writeln!(out, "{authority:a$}  {paths:p$}  → {connector}");
        }
        out
    }
}

/// A Cloud site's host for a connector that has one (`site_api_base`).
fn site_route(config: &Config, connector: &Connector, url: &str) -> Option<Route> {
    connector.spec.site_api_base.as_ref()?;
    let (host, port, _) = split_url(url)?;
    let claimed: Vec<String> = config
        .catalog
        .connectors()
        .filter(|(_, spec)| spec.provider == connector.spec.provider)
        .flat_map(|(_, spec)| spec.site_paths.clone())
        .collect();
    Some(Route {
        host,
        port,
        connector: connector.name.clone(),
        shape: Shape::Site {
            own: connector.spec.site_paths.clone(),
            claimed,
        },
    })
}

/// A connector's hosts by default: its preset's real names.
fn default_routes(config: &Config, connector: &Connector) -> Vec<Route> {
    let Some(provider) = config.provider(&connector.provider) else {
        return Vec::new();
    };
    // The preset as shipped: overrides (a test server, a proxy) only say where requests go on.
    let mut preset = config
        .catalog
        .provider(&provider.preset)
        .cloned()
        .unwrap_or_else(|| provider.spec.clone());
    if let Some(base) = &provider.base_url {
        preset = preset.with_base_url(base);
    }
    let placeholder = |u: &Option<String>| u.as_deref().is_none_or(|u| u.contains('{'));
    let gateway = match connector
        .region
        .as_deref()
        .and_then(|r| preset.regions.get(r))
    {
        Some(regional) => regional.clone(),
        // An MCP server's URL is the configuration itself: there is no preset name for it.
        None if placeholder(&preset.api_base) => provider.spec.api_base.clone().unwrap_or_default(),
        None => preset.api_base.clone().unwrap_or_default(),
    };
    let mut routes: Vec<Route> = Vec::new();
    let push = |routes: &mut Vec<Route>, host: String, port: u16, shape: Shape| {
        let route = Route {
            host,
            port,
            connector: connector.name.clone(),
            shape,
        };
        if !routes.contains(&route) {
            routes.push(route);
        }
    };
    let api = connector
        .spec
        .api_base
        .replace("{api_base}", gateway.trim_end_matches('/'))
        .replace(BASE_PLACEHOLDER, provider.base_url.as_deref().unwrap_or(""));
    if !api.contains("{site_url}") {
        if let Some((host, port, segments)) = split_url(&api) {
            push(&mut routes, host, port, Shape::Api(segments));
        }
    }
    let site = connector
        .site
        .as_deref()
        .and_then(|s| site_ref(s, preset.site_url.as_deref()));
    if let Some(SiteRef::Url(url)) = site {
        if let Some(route) = site_route(config, connector, &url) {
            push(&mut routes, route.host, route.port, route.shape);
        }
    }
    if let Some((host, port, segments)) = preset.git_url.as_deref().and_then(split_url) {
        let is_api = routes.iter().any(|r| r.host == host && r.port == port);
        if !is_api {
            push(&mut routes, host, port, Shape::Git(segments));
        }
    }
    routes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Config {
        Config::parse(std::path::Path::new("/h/latch.toml"), text.to_owned()).unwrap()
    }

    const CLOUD: &str = "[providers.atlassian]\nclient_id = \"c\"\napi_base = \"http://127.0.0.1:9/gw\"\n\
        site_url = \"http://127.0.0.1:9/__site/{site}\"\n\n\
        [connectors.jira]\nsite = \"acme\"\n\n[connectors.wiki]\ntype = \"confluence\"\nsite = \"acme\"\n\n\
        [connectors.jsm]\nsite = \"acme\"\n\n\
        [providers.bitbucket]\nclient_id = \"b\"\napi_base = \"http://127.0.0.1:9/bb\"\n\n\
        [connectors.bitbucket]\n";

    #[test]
    fn real_names_route_by_path_whatever_the_overrides() {
        let config = config(CLOUD);
        let mut map = InterceptMap::build(&config, &config.connectors).unwrap();
        let route = |map: &InterceptMap, host: &str, path: &str| {
            map.route(&config, host, 443, path)
                .map(|i| (i.connector, i.rest, i.git_base.is_some()))
        };
        let ok = |c: &str, rest: &str| Ok((c.to_owned(), rest.to_owned(), false));
        assert_eq!(
            route(&map, "acme.atlassian.net", "/rest/api/3/myself"),
            ok("jira", "rest/api/3/myself")
        );
        assert_eq!(
            route(&map, "ACME.atlassian.net", "/wiki/rest/api/space"),
            ok("wiki", "wiki/rest/api/space")
        );
        assert_eq!(
            route(&map, "acme.atlassian.net", "/rest/servicedeskapi/info"),
            ok("jsm", "rest/servicedeskapi/info")
        );
        assert_eq!(
            route(
                &map,
                "api.atlassian.com",
                "/ex/confluence/abc/wiki/api/v2/pages"
            ),
            ok("wiki", "wiki/api/v2/pages")
        );
        map.set_cloud_id("jira", "c1");
        map.set_cloud_id("jsm", "c1");
        assert_eq!(
            route(
                &map,
                "api.atlassian.com",
                "/ex/jira/C1/rest/api/3/issue/X-1"
            ),
            ok("jira", "rest/api/3/issue/X-1")
        );
        assert!(
            route(
                &map,
                "api.atlassian.com",
                "/ex/jira/other/rest/api/3/myself"
            )
            .is_err(),
            "another site's id is not this connector's"
        );
        assert_eq!(
            route(&map, "api.bitbucket.org", "/2.0/repositories/team"),
            ok("bitbucket", "2.0/repositories/team")
        );
        assert_eq!(
            route(
                &map,
                "api.atlassian.com",
                "/ex/confluence/c1/wiki/rest/api/content/"
            ),
            ok("wiki", "wiki/rest/api/content/")
        );
        assert_eq!(
            route(&map, "bitbucket.org", "/team/repo.git/info/refs"),
            Ok(("bitbucket".into(), "team/repo.git/info/refs".into(), true))
        );
        assert!(!map.covers("acme.atlassian.net", 8443));
        assert!(!map.covers("example.com", 443));
        assert!(map.covers("api.atlassian.com", 443));

        // Only Jira chosen: Confluence's paths on the site are refused, not sent with Jira's
        // credential.
        let jira_only = InterceptMap::build(&config, &config.connectors[..1]).unwrap();
        assert_eq!(
            route(&jira_only, "acme.atlassian.net", "/wiki/rest/api/space"),
            Err(NotCovered {
                host: "acme.atlassian.net".into(),
                path: "/wiki/rest/api/space".into()
            })
        );
        assert!(route(&jira_only, "acme.atlassian.net", "/wiki").is_err());
        assert!(route(&jira_only, "api.atlassian.com", "/ex/confluence/c1/wiki").is_err());
        let described = jira_only.describe();
        assert!(described.contains("acme.atlassian.net"), "{described}");
        assert!(described.contains("/ex/jira/{cloudId}/…"), "{described}");
        assert!(!described.contains("127.0.0.1"), "{described}");
    }

    #[test]
    fn intercept_hosts_replace_the_names() {
        let config = config(
            "[providers.corp]\npreset = \"jira-dc\"\nbase_url = \"http://127.0.0.1:9/jira\"\n\n\
             [connectors.jira-dc]\nprovider = \"corp\"\nauth = \"pat\"\nintercept_hosts = [\"jira.corp.test\", \"alt.corp.test:8443\"]\n",
        );
        let map = InterceptMap::build(&config, &config.connectors).unwrap();
        assert_eq!(map.host_names(), ["jira.corp.test", "alt.corp.test"]);
        assert!(!map.covers("127.0.0.1", 9));
        let got = map
            .route(&config, "alt.corp.test", 8443, "/jira/rest/api/2/myself")
            .unwrap();
        assert_eq!(got.rest, "rest/api/2/myself");
        assert!(map
            .route(&config, "jira.corp.test", 443, "/other/rest")
            .is_err());
    }

    /// An instance reached by its IP address has no name to intercept by default.
    #[test]
    fn an_instance_by_ip_needs_intercept_hosts() {
        let by_ip = config(
            "[providers.corp]\npreset = \"jira-dc\"\nbase_url = \"http://127.0.0.1:9/jira\"\n\n\
             [connectors.jira-dc]\nprovider = \"corp\"\nauth = \"pat\"\n",
        );
        let err = InterceptMap::build(&by_ip, &by_ip.connectors).unwrap_err();
        assert!(err.to_string().contains("intercept_hosts"), "{err}");
    }

    #[test]
    fn host_names_are_names() {
        assert_eq!(
            parse_intercept_host("Jira.Corp.test:8443"),
            Some(("jira.corp.test".into(), 8443))
        );
        assert_eq!(parse_intercept_host("a.b"), Some(("a.b".into(), 443)));
        for bad in [
            "*.corp.test",
            "10.0.0.1",
            "https://a.b",
            "a..b",
            "a.b:0",
            "a.b:x",
            "",
        ] {
            assert_eq!(parse_intercept_host(bad), None, "{bad}");
        }
    }
}

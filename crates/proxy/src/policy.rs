//! Routing on the canonical path, and the key's policy: which connectors, which methods (read-only
//! = GET/HEAD/OPTIONS), which path patterns. A new policy is a new check here, a field in the
//! key's stored form (`latch_core::local_key`), and its faces.

use http::Method;
use latch_core::config::{Config, Connector};
use latch_core::local_key::{Denied, RequestFacts};

use crate::key::VerifiedKey;
use crate::path::CanonicalPath;
use crate::refusal::Refusal;

/// A request's connector and the canonical path below it (no leading `/`): policy is matched on
/// it and the upstream URL is built from it.
pub(crate) struct Routed<'a> {
    pub(crate) connector: &'a Connector,
    /// For a connector's old form (Bitbucket without `2.0/`), with the prefix put back.
    pub(crate) rest: String,
    /// On an MCP connector, the tools the key may list and call (`None`: all).
    pub(crate) mcp_tools: Option<Vec<String>>,
    /// Reached by its real host name (`latch exec --intercept`): links stay as they are.
    pub(crate) intercepted: bool,
    /// Git's host under intercept: the configured git URL in place of the connector's base.
    pub(crate) git_base: Option<String>,
}

fn mcp_tools(connector: &Connector, key: &VerifiedKey) -> Option<Vec<String>> {
    if connector.spec.mcp {
        key.policy().mcp_tools.clone()
    } else {
        None
    }
}

/// `/{connector}/{rest}`, or a site-relative path (Confluence's `/wiki/...` pagination links)
/// that belongs to exactly one of the key's connectors.
pub(crate) fn route<'a>(
    config: &'a Config,
    path: &CanonicalPath,
    key: &VerifiedKey,
) -> Result<Routed<'a>, Refusal> {
    let (first, rest) = path.split_first();
    if let Some(connector) = config.connector(first) {
        if let Some(prefix) = connector.spec.legacy_prefix.as_deref() {
            let current = rest == prefix || rest.starts_with(&format!("{prefix}/"));
            if !current {
                deprecated(&connector.name, prefix);
                return Ok(Routed {
                    mcp_tools: mcp_tools(connector, key),
                    connector,
                    rest: format!("{prefix}/{rest}"),
                    intercepted: false,
                    git_base: None,
                });
            }
        }
        return Ok(Routed {
            mcp_tools: mcp_tools(connector, key),
            connector,
            rest: rest.to_owned(),
            intercepted: false,
            git_base: None,
        });
    }
    let whole = path.as_str();
    let mut owners = config.connectors.iter().filter(|c| {
        key.policy().allows_connector(&c.name)
            && c.spec
                .site_paths
                .iter()
                .any(|p| whole.starts_with(p.as_str()))
    });
    match (owners.next(), owners.next()) {
        (Some(connector), None) => Ok(Routed {
            mcp_tools: mcp_tools(connector, key),
            connector,
            rest: whole[1..].to_owned(),
            intercepted: false,
            git_base: None,
        }),
        _ => Err(Refusal::UnknownConnector),
    }
}

/// A request a tool sent to a real host name (`latch exec --intercept`): the host map decides
/// the connector, never the child.
pub(crate) fn route_intercepted<'a>(
    config: &'a Config,
    map: &latch_core::app::intercept::InterceptMap,
    host: &str,
    port: u16,
    path: &CanonicalPath,
    key: &VerifiedKey,
) -> Result<Routed<'a>, Refusal> {
    let found = map
        .route(config, host, port, path.as_str())
        .map_err(|_| Refusal::NotCovered {
            url: format!("https://{host}{}", path.as_str()),
        })?;
    let connector = config
        .connector(&found.connector)
        .ok_or(Refusal::UnknownConnector)?;
    Ok(Routed {
        mcp_tools: mcp_tools(connector, key),
        connector,
        rest: found.rest,
        intercepted: true,
        git_base: found.git_base,
    })
}

/// Says once per connector (per process) that a request used the old form.
fn deprecated(connector: &str, prefix: &str) {
    static SAID: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let mut said = SAID
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if !said.iter().any(|c| c == connector) {
        said.push(connector.to_owned());
        tracing::warn!(
            connector,
            "a request to /{connector}/… without `{prefix}/` uses the old form: it still works, \
             but give clients the proxy's URL in place of the upstream's (they add `/{prefix}`)"
        );
    }
}

/// The key's policy for this request: every rule, in turn.
pub(crate) fn allow(
    key: &VerifiedKey,
    routed: &Routed<'_>,
    method: &Method,
    has_body: bool,
) -> Result<(), Refusal> {
    let legacy_path = routed
        .connector
        .spec
        .legacy_prefix
        .as_deref()
        .and_then(|p| routed.rest.strip_prefix(p))
        .and_then(|r| r.strip_prefix('/'));
    let facts = RequestFacts {
        connector: &routed.connector.name,
        method: method.as_str(),
        path: &routed.rest,
        legacy_path,
        has_body,
    };
    key.policy().allow(&facts).map_err(|denied| match denied {
        Denied::Connector => Refusal::ConnectorNotAllowed {
            key: key.name().to_owned(),
            connector: routed.connector.name.clone(),
        },
        Denied::Method => Refusal::MethodNotAllowed {
            key: key.name().to_owned(),
            method: method.to_string(),
        },
        Denied::Body => Refusal::BodyNotAllowed {
            key: key.name().to_owned(),
            method: method.to_string(),
        },
        Denied::Path(patterns) => Refusal::PathNotAllowed {
            key: key.name().to_owned(),
            path: routed.rest.clone(),
            patterns,
        },
    })
}

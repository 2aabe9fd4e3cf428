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
    pub(crate) rest: String,
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
        return Ok(Routed {
            connector,
            rest: rest.to_owned(),
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
            connector,
            rest: whole[1..].to_owned(),
        }),
        _ => Err(Refusal::UnknownConnector),
    }
}

/// The key's policy for this request: every rule, in turn.
pub(crate) fn allow(
    key: &VerifiedKey,
    routed: &Routed<'_>,
    method: &Method,
) -> Result<(), Refusal> {
    let facts = RequestFacts {
        connector: &routed.connector.name,
        method: method.as_str(),
        path: &routed.rest,
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
        Denied::Path(patterns) => Refusal::PathNotAllowed {
            key: key.name().to_owned(),
            path: routed.rest.clone(),
            patterns,
        },
    })
}

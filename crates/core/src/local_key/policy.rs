//! What a key may do, as one value: the connectors it reaches, whether it only reads, the paths
//! it may use. Stored as one JSON column, passed as is by the CLI and the desktop app, and
//! checked by [`KeyPolicy::allow`], which runs every rule in turn. A new rule is a field here,
//! its check in [`RULES`], and the faces' input for it.

use serde::{Deserialize, Serialize};

/// The rules a key's requests are checked against.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct KeyPolicy {
    /// Connectors it may reach.
    pub connectors: Vec<String>,
    /// GET/HEAD/OPTIONS only.
    #[serde(default)]
    pub read_only: bool,
    /// Path patterns below the connector (`rest/api/3/*`): `None` = any path; `Some([])` = no
    /// path (a key whose stored patterns were ambiguous, fail-closed).
    #[serde(default)]
    pub paths: Option<Vec<String>>,
    /// On MCP connectors: the tools it may list and call (`None` = all). Other `tools/call`s
    /// get a JSON-RPC error; `tools/list` answers leave the others out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mcp_tools: Option<Vec<String>>,
}

/// What the rules look at in a request.
#[derive(Clone, Copy, Debug)]
pub struct RequestFacts<'a> {
    /// The connector it is routed to.
    pub connector: &'a str,
    /// Its method.
    pub method: &'a str,
    /// The canonical path below the connector, without the leading `/`.
    pub path: &'a str,
    /// The same path as a pattern written for the connector's old form may name it (Bitbucket
    /// without `2.0/`).
    pub legacy_path: Option<&'a str>,
    /// Whether it carries a body.
    pub has_body: bool,
}

/// Why a rule refused a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Denied {
    /// The key may not reach this connector.
    Connector,
    /// The key may not use this method.
    Method,
    /// A read-only key sent a body with a read (a read needs none; a body on a GET is a way
    /// to write through upstreams that accept one).
    Body,
    /// No path pattern of the key matches; the patterns it has.
    Path(Vec<String>),
}

type Rule = fn(&KeyPolicy, &RequestFacts<'_>) -> Result<(), Denied>;

/// Every rule, in the order refusals are reported.
const RULES: &[Rule] = &[connector_rule, method_rule, body_rule, path_rule];

impl KeyPolicy {
    /// A policy that allows nothing (what an unreadable stored policy becomes).
    pub fn nothing() -> Self {
        Self {
            connectors: Vec::new(),
            read_only: true,
            paths: Some(Vec::new()),
            mcp_tools: Some(Vec::new()),
        }
    }

    /// Checks a request against every rule; the first refusal wins.
    pub fn allow(&self, request: &RequestFacts<'_>) -> Result<(), Denied> {
        RULES.iter().try_for_each(|rule| rule(self, request))
    }

    /// Whether it may reach a connector (routing asks before a request has a connector).
    pub fn allows_connector(&self, connector: &str) -> bool {
        self.connectors.iter().any(|c| c == connector)
    }
}

fn connector_rule(policy: &KeyPolicy, request: &RequestFacts<'_>) -> Result<(), Denied> {
    if policy.allows_connector(request.connector) {
        Ok(())
    } else {
        Err(Denied::Connector)
    }
}

fn method_rule(policy: &KeyPolicy, request: &RequestFacts<'_>) -> Result<(), Denied> {
    if !policy.read_only || matches!(request.method, "GET" | "HEAD" | "OPTIONS") {
        Ok(())
    } else {
        Err(Denied::Method)
    }
}

fn body_rule(policy: &KeyPolicy, request: &RequestFacts<'_>) -> Result<(), Denied> {
    if policy.read_only && request.has_body {
        Err(Denied::Body)
    } else {
        Ok(())
    }
}

fn path_rule(policy: &KeyPolicy, request: &RequestFacts<'_>) -> Result<(), Denied> {
    let matches = |p: &String| {
        super::glob_match(p, request.path)
            || request
                .legacy_path
                .is_some_and(|old| super::glob_match(p, old))
    };
    match &policy.paths {
        None => Ok(()),
        Some(patterns) if patterns.iter().any(matches) => Ok(()),
        Some(patterns) => Err(Denied::Path(patterns.clone())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts<'a>(connector: &'a str, method: &'a str, path: &'a str) -> RequestFacts<'a> {
        RequestFacts {
            connector,
            method,
            path,
            legacy_path: None,
            has_body: false,
        }
    }

    #[test]
    fn old_form_patterns_keep_their_meaning_and_reads_carry_no_body() {
        let policy = KeyPolicy {
            connectors: vec!["bitbucket".into()],
            read_only: true,
            paths: Some(vec!["repositories/team/*".into()]),
            mcp_tools: None,
        };
        let mut request = facts("bitbucket", "GET", "2.0/repositories/team/repo");
        assert!(
            policy.allow(&request).is_err(),
            "without the old form's path"
        );
        request.legacy_path = Some("repositories/team/repo");
        assert_eq!(policy.allow(&request), Ok(()));
        request.has_body = true;
        assert_eq!(policy.allow(&request), Err(Denied::Body));
    }

    #[test]
    fn every_rule_is_checked_in_turn() {
        let policy = KeyPolicy {
            connectors: vec!["jira".into()],
            read_only: true,
            paths: Some(vec!["rest/api/3/*".into()]),
            mcp_tools: None,
        };
        assert_eq!(
            policy.allow(&facts("jira", "GET", "rest/api/3/myself")),
            Ok(())
        );
        assert_eq!(
            policy.allow(&facts("confluence", "GET", "rest/api/3/myself")),
            Err(Denied::Connector)
        );
        assert_eq!(
            policy.allow(&facts("jira", "POST", "rest/api/3/issue")),
            Err(Denied::Method)
        );
        assert_eq!(
            policy.allow(&facts("jira", "GET", "rest/agile/1.0/board")),
            Err(Denied::Path(vec!["rest/api/3/*".into()]))
        );
        assert!(KeyPolicy::nothing()
            .allow(&facts("jira", "GET", "x"))
            .is_err());
    }

    #[test]
    fn the_stored_form_is_one_json_value_and_new_fields_default() {
        let policy: KeyPolicy = serde_json::from_str(r#"{"connectors":["jira"]}"#).unwrap();
        assert_eq!(
            policy,
            KeyPolicy {
                connectors: vec!["jira".into()],
                read_only: false,
                paths: None,
                mcp_tools: None,
            }
        );
        assert_eq!(
            serde_json::to_string(&policy).unwrap(),
            r#"{"connectors":["jira"],"read_only":false,"paths":null}"#
        );
    }
}

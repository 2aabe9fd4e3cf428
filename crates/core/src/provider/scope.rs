//! Scopes: parsing and printing per provider vocabulary, the additive merge of connector scopes
//! into their provider's request (with attribution), diffs against what was granted, and lint.
//!
//! Vocabularies (see `shared/reference/atlassian-wire.md` §2–3):
//! - Atlassian classic: `read:jira-work`, `write:confluence-content`, …
//! - Atlassian granular: `{verb}:{entity}:{product}`, e.g. `read:issue:jira`.
//! - Bitbucket Cloud: verbs such as `repository`, `pullrequest:write`; no `offline_access`.
//!   Some imply others (`repository:write` ⇒ `repository`): a granted set is read with them.
//! - Data Center (Jira, Confluence): `READ`, `WRITE`, `ADMIN`, `SYSTEM_ADMIN` (§8.1).
//! - Bitbucket Data Center: `PUBLIC_REPOS`, `REPO_READ`, …, `SYSTEM_ADMIN`.
//! - Generic: any RFC 6749 scope token; Latch does not judge the names.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::finding::{Finding, Severity};

/// One scope token (RFC 6749 §3.3: printable ASCII without space, `"` and `\`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(type = "string"))]
#[serde(try_from = "String", into = "String")]
pub struct Scope(String);

/// Why a scope text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    /// The text is empty.
    #[error("a scope cannot be empty")]
    Empty,
    /// The text holds a character RFC 6749 does not allow in a scope.
    #[error("scope {scope:?} contains {ch:?}, which is not allowed in a scope (RFC 6749 §3.3)")]
    BadCharacter {
        /// The refused text.
        scope: String,
        /// The first refused character.
        ch: char,
    },
}

impl Scope {
    /// The scope's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Scope {
    type Err = ScopeError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text.is_empty() {
            return Err(ScopeError::Empty);
        }
        if let Some(ch) = text
            .chars()
            .find(|&c| !matches!(c, '\x21' | '\x23'..='\x5b' | '\x5d'..='\x7e'))
        {
            return Err(ScopeError::BadCharacter {
                scope: text.to_owned(),
                ch,
            });
        }
        Ok(Self(text.to_owned()))
    }
}

impl TryFrom<String> for Scope {
    type Error = ScopeError;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

impl From<Scope> for String {
    fn from(scope: Scope) -> Self {
        scope.0
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An ordered list of distinct scopes, as sent in `scope=` or read from a token response.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(type = "Array<Scope>"))]
#[serde(transparent)]
pub struct ScopeList(Vec<Scope>);

impl ScopeList {
    /// Parses a whitespace-separated list (the OAuth wire form; RFC 6749 allows commas inside
    /// a scope, so they are not separators). Duplicates are dropped, first wins.
    pub fn parse(text: &str) -> Result<Self, ScopeError> {
        let mut list = Self::default();
        for part in text.split(char::is_whitespace) {
            if !part.is_empty() {
                list.push(part.parse()?);
            }
        }
        Ok(list)
    }

    /// Builds a list from scopes, dropping duplicates (first wins).
    pub fn from_scopes(scopes: impl IntoIterator<Item = Scope>) -> Self {
        let mut list = Self::default();
        for scope in scopes {
            list.push(scope);
        }
        list
    }

    /// Appends a scope unless it is already present. Returns whether it was added.
    pub fn push(&mut self, scope: Scope) -> bool {
        if self.contains(&scope) {
            return false;
        }
        self.0.push(scope);
        true
    }

    /// Whether the list holds this scope.
    pub fn contains(&self, scope: &Scope) -> bool {
        self.0.iter().any(|s| s == scope)
    }

    /// Whether the list holds a scope with this text.
    pub fn contains_str(&self, scope: &str) -> bool {
        self.0.iter().any(|s| s.as_str() == scope)
    }

    /// The scopes in order.
    pub fn iter(&self) -> impl Iterator<Item = &Scope> {
        self.0.iter()
    }

    /// How many scopes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The scopes of `self` that `other` lacks, in `self`'s order.
    pub fn minus(&self, other: &ScopeList) -> ScopeList {
        Self(
            self.0
                .iter()
                .filter(|s| !other.contains(s))
                .cloned()
                .collect(),
        )
    }

    /// The scopes as a set, for order-insensitive comparison.
    pub fn to_set(&self) -> BTreeSet<Scope> {
        self.0.iter().cloned().collect()
    }
}

impl fmt::Display for ScopeList {
    /// The wire form: scopes separated by one space.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, scope) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            f.write_str(scope.as_str())?;
        }
        Ok(())
    }
}

impl<'a> IntoIterator for &'a ScopeList {
    type Item = &'a Scope;
    type IntoIter = std::slice::Iter<'a, Scope>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// The scope names a provider speaks: how it reads a scope, and which granted scopes imply
/// others. Every provider kind has one ([`crate::provider::ProviderRules`] extends it).
pub trait Vocabulary: Sync {
    /// What a scope is in this vocabulary.
    fn classify(&self, scope: &Scope) -> ScopeKind;

    /// Granted scopes that imply others (`repository:write` ⇒ `repository` on Bitbucket).
    fn implications(&self) -> &'static [(&'static str, &'static [&'static str])] {
        &[]
    }

    /// The required scopes a granted set lacks, implications applied.
    fn missing(&self, required: &ScopeList, granted: &ScopeList) -> ScopeList {
        required.minus(&self.with_implied(granted))
    }

    /// The scopes a granted set holds once the vocabulary's implications are applied.
    fn with_implied(&self, granted: &ScopeList) -> ScopeList {
        let rules = self.implications();
        let mut all = granted.clone();
        // Implications chain (`pullrequest:write` ⇒ `repository:write` ⇒ `repository`): repeat
        // until nothing is added; the tables are tiny.
        loop {
            let mut added = false;
            for (scope, implied) in rules {
                if all.contains_str(scope) {
                    for text in *implied {
                        if let Ok(implied) = text.parse() {
                            added |= all.push(implied);
                        }
                    }
                }
            }
            if !added {
                return all;
            }
        }
    }
}

/// The Atlassian product a scope belongs to, for the classic/granular mix check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Product {
    /// Jira Software / Jira platform.
    Jira,
    /// Jira Service Management.
    JiraServiceManagement,
    /// Confluence.
    Confluence,
    /// Another Atlassian product named in a granular scope (compass, …).
    Other,
}

impl Product {
    fn label(self) -> &'static str {
        match self {
            Self::Jira => "Jira",
            Self::JiraServiceManagement => "Jira Service Management",
            Self::Confluence => "Confluence",
            Self::Other => "another product",
        }
    }
}

/// What a scope is, read in a provider's vocabulary.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScopeKind {
    /// A Bitbucket scope on a Bitbucket provider.
    Bitbucket,
    /// A Data Center scope on a Data Center provider.
    DataCenter,
    /// A scope of another vocabulary on a Data Center provider (a Cloud scope, or Bitbucket's
    /// on Jira's).
    ForeignDataCenter,
    /// An Atlassian classic scope.
    Classic(Product),
    /// An Atlassian scope that does not fit a Bitbucket provider.
    ForeignAtlassian,
    /// A Bitbucket scope that does not fit an Atlassian provider.
    ForeignBitbucket,
    /// An Atlassian granular scope.
    Granular(Product),
    /// `read:me` / `read:account`: the User Identity API.
    Identity,
    /// `offline_access`: asks for a refresh token.
    OfflineAccess,
    /// Generic vocabulary: not judged.
    Opaque,
    /// Not a name this vocabulary knows.
    Unknown,
}

pub(crate) const JIRA_CLASSIC: &[&str] = &[
    "read:jira-user",
    "read:jira-work",
    "write:jira-work",
    "manage:jira-project",
    "manage:jira-configuration",
    "manage:jira-webhook",
    "manage:jira-data-provider",
];
pub(crate) const JSM_CLASSIC: &[&str] = &[
    "read:servicedesk-request",
    "write:servicedesk-request",
    "manage:servicedesk-customer",
    "read:servicemanagement-insight-objects",
];
pub(crate) const CONFLUENCE_CLASSIC: &[&str] = &[
    "read:confluence-content.all",
    "read:confluence-content.summary",
    "read:confluence-content.permission",
    "read:confluence-space.summary",
    "read:confluence-props",
    "read:confluence-user",
    "read:confluence-groups",
    "search:confluence",
    "readonly:content.attachment:confluence",
    "write:confluence-content",
    "write:confluence-space",
    "write:confluence-file",
    "write:confluence-props",
    "write:confluence-groups",
    "manage:confluence-configuration",
];
pub(crate) const BITBUCKET: &[&str] = &[
    "project",
    "project:admin",
    "repository",
    "repository:write",
    "repository:admin",
    "repository:delete",
    "pullrequest",
    "pullrequest:write",
    "issue",
    "issue:write",
    "wiki",
    "webhook",
    "snippet",
    "snippet:write",
    "email",
    "account",
    "account:write",
    "pipeline",
    "pipeline:write",
    "pipeline:variable",
    "runner",
    "runner:write",
    "team",
    "team:write",
];
pub(crate) const DATA_CENTER: &[&str] = &[
    "READ",
    "WRITE",
    "ADMIN",
    "SYSTEM_ADMIN",
    "READ_ALL",
    "MANAGE_SUBSCRIPTIONS",
];
pub(crate) const BITBUCKET_DATA_CENTER: &[&str] = &[
    "PUBLIC_REPOS",
    "ACCOUNT_WRITE",
    "REPO_READ",
    "REPO_WRITE",
    "REPO_ADMIN",
    "PROJECT_ADMIN",
    "ADMIN",
    "SYSTEM_ADMIN",
];
const GRANULAR_VERBS: &[&str] = &["read", "write", "delete", "manage", "validate", "search"];

/// How Atlassian Cloud reads a scope name (also used to tell its scopes apart on other kinds).
pub(crate) fn atlassian_scope_kind(scope: &str) -> ScopeKind {
    if scope == "offline_access" {
        return ScopeKind::OfflineAccess;
    }
    if scope == "read:me" || scope == "read:account" {
        return ScopeKind::Identity;
    }
    for (list, product) in [
        (JIRA_CLASSIC, Product::Jira),
        (JSM_CLASSIC, Product::JiraServiceManagement),
        (CONFLUENCE_CLASSIC, Product::Confluence),
    ] {
        if list.contains(&scope) {
            return ScopeKind::Classic(product);
        }
    }
    if let Some(product) = granular_product(scope) {
        return ScopeKind::Granular(product);
    }
    if BITBUCKET.contains(&scope) {
        return ScopeKind::ForeignBitbucket;
    }
    ScopeKind::Unknown
}

/// `{verb}:{entity}:{product}` with a known verb and a lower-case entity.
fn granular_product(scope: &str) -> Option<Product> {
    let mut parts = scope.split(':');
    let (verb, entity, product) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || !GRANULAR_VERBS.contains(&verb) {
        return None;
    }
    let entity_ok = !entity.is_empty()
        && entity
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.');
    if !entity_ok {
        return None;
    }
    match product {
        "jira" | "jira-software" => Some(Product::Jira),
        "jira-service-management" => Some(Product::JiraServiceManagement),
        "confluence" => Some(Product::Confluence),
        "compass" | "bitbucket" | "jira-work-management" | "opsgenie" => Some(Product::Other),
        _ => None,
    }
}

/// One scope of a provider's request and who asked for it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct RequestedScope {
    /// The scope.
    pub scope: Scope,
    /// The connectors that require it, in the order they asked.
    pub requested_by: Vec<String>,
    /// Whether the provider itself asks for it (its `default_scopes`).
    pub provider_default: bool,
}

/// A provider's requested scopes: the order-stable union of its connectors' scopes, with
/// attribution. Built by folding [`ScopeRequest::merge`] over the connectors.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(type = "Array<RequestedScope>"))]
#[serde(transparent)]
pub struct ScopeRequest {
    entries: Vec<RequestedScope>,
}

/// What one merge changed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct MergeDiff {
    /// Scopes the provider did not request before.
    pub added: Vec<Scope>,
    /// Scopes already requested (by another connector or the provider), now shared.
    pub shared: Vec<Scope>,
}

impl ScopeRequest {
    /// A request holding the provider's own default scopes.
    pub fn with_defaults(defaults: &ScopeList) -> Self {
        let entries = defaults
            .iter()
            .map(|scope| RequestedScope {
                scope: scope.clone(),
                requested_by: Vec::new(),
                provider_default: true,
            })
            .collect();
        Self { entries }
    }

    /// Merges a connector's scopes: additive (nothing is ever removed), idempotent (merging the
    /// same connector twice changes nothing), order-stable (existing scopes keep their place,
    /// new ones are appended in the connector's order).
    pub fn merge(&mut self, connector: &str, scopes: &ScopeList) -> MergeDiff {
        let mut diff = MergeDiff::default();
        for scope in scopes {
            match self.entries.iter_mut().find(|e| &e.scope == scope) {
                Some(entry) => {
                    if !entry.requested_by.iter().any(|c| c == connector) {
                        entry.requested_by.push(connector.to_owned());
                    }
                    diff.shared.push(scope.clone());
                }
                None => {
                    self.entries.push(RequestedScope {
                        scope: scope.clone(),
                        requested_by: vec![connector.to_owned()],
                        provider_default: false,
                    });
                    diff.added.push(scope.clone());
                }
            }
        }
        diff
    }

    /// The scopes in request order.
    pub fn scopes(&self) -> ScopeList {
        ScopeList::from_scopes(self.entries.iter().map(|e| e.scope.clone()))
    }

    /// The entries with attribution.
    pub fn entries(&self) -> &[RequestedScope] {
        &self.entries
    }

    /// Who asked for a scope, if it is requested.
    pub fn attribution(&self, scope: &Scope) -> Option<&RequestedScope> {
        self.entries.iter().find(|e| &e.scope == scope)
    }
}

/// A connector's scopes against its provider's request and its grant.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ScopeDiff {
    /// Required by the connector but not granted (empty when nothing is granted yet).
    pub missing: Vec<Scope>,
    /// Granted but requested by no connector and not a provider default.
    pub extra: Vec<Scope>,
    /// Required by the connector but absent from the provider's request (configuration drift).
    pub not_requested: Vec<Scope>,
}

impl ScopeDiff {
    /// Compares what a connector requires with what its provider requests and what the grant
    /// holds (`None` before any login).
    pub fn compute(
        vocabulary: &dyn Vocabulary,
        required: &ScopeList,
        requested: &ScopeList,
        granted: Option<&ScopeList>,
    ) -> Self {
        let (missing, extra) = match granted {
            Some(granted) => (
                vocabulary
                    .missing(required, granted)
                    .iter()
                    .cloned()
                    .collect(),
                granted.minus(requested).iter().cloned().collect(),
            ),
            None => (Vec::new(), Vec::new()),
        };
        Self {
            missing,
            extra,
            not_requested: required.minus(requested).iter().cloned().collect(),
        }
    }
}

/// What [`lint`] is told about one connector.
pub struct LintConnector<'a> {
    /// The connector's name.
    pub name: &'a str,
    /// Whether it signs in as a user (`auth = "user"`), so it needs a refresh token.
    pub user_mode: bool,
    /// Its scopes.
    pub scopes: &'a ScopeList,
}

/// Checks a provider's connectors' scopes against the provider's vocabulary.
///
/// `needs_offline_access` is the provider's rule that a refresh token is only issued when
/// `offline_access` is requested (Atlassian 3LO; not Bitbucket, which always issues one).
pub fn lint(
    provider: &str,
    vocabulary: &dyn Vocabulary,
    needs_offline_access: bool,
    connectors: &[LintConnector<'_>],
) -> Vec<Finding> {
    let mut findings = Vec::new();
    let mut classic: BTreeSet<Product> = BTreeSet::new();
    let mut granular: BTreeSet<Product> = BTreeSet::new();
    let mut seen: BTreeSet<&str> = BTreeSet::new();
    for connector in connectors {
        for scope in connector.scopes {
            let kind = vocabulary.classify(scope);
            match kind {
                ScopeKind::Classic(p) => {
                    classic.insert(p);
                }
                ScopeKind::Granular(p) => {
                    granular.insert(p);
                }
                _ => {}
            }
            if !seen.insert(scope.as_str()) {
                continue;
            }
            let subject = format!("connector:{}", connector.name);
            match kind {
                ScopeKind::ForeignBitbucket => findings.push(Finding::new(
                    "bitbucket_scope_on_atlassian",
                    Severity::Error,
                    subject,
                    format!(
                        "`{scope}` is a Bitbucket Cloud scope, but provider `{provider}` is an \
                         Atlassian 3LO provider; Atlassian will not grant it"
                    ),
                    "Use the `bitbucket` provider for Bitbucket connectors \
                     (`latch connector add bitbucket --provider bitbucket`), or remove the scope \
                     from the connector's manifest",
                )),
                ScopeKind::ForeignAtlassian => findings.push(Finding::new(
                    "atlassian_scope_on_bitbucket",
                    Severity::Error,
                    subject,
                    format!(
                        "`{scope}` is an Atlassian 3LO scope, but provider `{provider}` is a \
                         Bitbucket Cloud OAuth consumer; Bitbucket will not grant it"
                    ),
                    "Attach Jira/Confluence connectors to the `atlassian` provider, or remove \
                     the scope from the connector's manifest",
                )),
                ScopeKind::ForeignDataCenter => findings.push(Finding::new(
                    "foreign_scope_on_data_center",
                    Severity::Error,
                    subject,
                    format!(
                        "`{scope}` is not a scope of provider `{provider}`, a Data Center \
                         incoming link; it will not grant it"
                    ),
                    "Data Center speaks READ, WRITE, ADMIN, SYSTEM_ADMIN (Bitbucket: \
                     PUBLIC_REPOS, REPO_READ, REPO_WRITE, …): attach Cloud connectors to a Cloud \
                     provider, or fix the connector's manifest",
                )),
                ScopeKind::Unknown if scope.as_str() == "offline_access" => {
                    findings.push(Finding::new(
                        "offline_access_not_in_vocabulary",
                        Severity::Warning,
                        subject,
                        format!(
                            "`offline_access` is not a scope of provider `{provider}`; it issues \
                             refresh tokens without it and may refuse the unknown scope"
                        ),
                        "Remove `offline_access` from the connector's scopes",
                    ))
                }
                ScopeKind::Unknown => findings.push(Finding::new(
                    "unknown_scope",
                    Severity::Warning,
                    subject,
                    format!("`{scope}` is not a scope Latch knows for provider `{provider}`"),
                    "Check the spelling against the provider's scope documentation; if it is \
                     new, make sure it is also added to the app in the developer console",
                )),
                _ => {}
            }
        }
        if needs_offline_access
            && connector.user_mode
            && !connector.scopes.contains_str("offline_access")
        {
            findings.push(Finding::new(
                "missing_offline_access",
                Severity::Error,
                format!("connector:{}", connector.name),
                format!(
                    "connector `{}` signs in as a user but does not request `offline_access`, so \
                     no refresh token will be issued and it stops working after an hour",
                    connector.name
                ),
                "Add `offline_access` to the connector's scopes (and to the app's permissions \
                 in the developer console)",
            ));
        }
    }
    for product in classic.intersection(&granular) {
        findings.push(Finding::new(
            "mixed_classic_granular",
            Severity::Warning,
            format!("provider:{provider}"),
            format!(
                "provider `{provider}` requests both classic and granular scopes for {}; a token \
                 satisfies an endpoint only with one complete group, and mixed requests are \
                 reported to make the consent screen loop",
                product.label()
            ),
            "Use one style per product: prefer the classic scopes where they exist",
        ));
    }
    findings
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::provider::ProviderKind;

    fn list(text: &str) -> ScopeList {
        ScopeList::parse(text).unwrap()
    }

    #[test]
    fn parse_accepts_any_whitespace_and_drops_duplicates() {
        let l = list("read:me  write:jira-work\nread:me\toffline_access");
        assert_eq!(l.to_string(), "read:me write:jira-work offline_access");
    }

    #[test]
    fn parse_rejects_quotes_and_backslashes() {
        assert!(matches!(
            ScopeList::parse("read:me \"x\""),
            Err(ScopeError::BadCharacter { ch: '"', .. })
        ));
        assert!("".parse::<Scope>().is_err());
    }

    #[test]
    fn classify_atlassian_vocabulary() {
        let k = |s: &str| {
            ProviderKind::Atlassian
                .rules()
                .classify(&s.parse().unwrap())
        };
        assert_eq!(k("read:jira-work"), ScopeKind::Classic(Product::Jira));
        assert_eq!(k("read:issue:jira"), ScopeKind::Granular(Product::Jira));
        assert_eq!(
            k("read:request:jira-service-management"),
            ScopeKind::Granular(Product::JiraServiceManagement)
        );
        assert_eq!(
            k("readonly:content.attachment:confluence"),
            ScopeKind::Classic(Product::Confluence)
        );
        assert_eq!(k("offline_access"), ScopeKind::OfflineAccess);
        assert_eq!(k("read:me"), ScopeKind::Identity);
        assert_eq!(k("pullrequest:write"), ScopeKind::ForeignBitbucket);
        assert_eq!(k("read:jira-wrok"), ScopeKind::Unknown);
    }

    #[test]
    fn bitbucket_implications_are_applied_to_what_was_granted() {
        let granted = list("pullrequest:write account");
        let all = ProviderKind::Bitbucket.rules().with_implied(&granted);
        for s in ["pullrequest", "repository:write", "repository", "account"] {
            assert!(all.contains_str(s), "{s} in {all}");
        }
        assert!(!all.contains_str("repository:admin"));
        // `repository:admin` implies neither read nor write.
        let admin = ProviderKind::Bitbucket
            .rules()
            .with_implied(&list("repository:admin"));
        assert_eq!(admin.to_string(), "repository:admin");
        let missing = ProviderKind::Bitbucket.rules().missing(
            &list("account repository repository:write pullrequest"),
            &list("account repository:write"),
        );
        assert_eq!(missing.to_string(), "pullrequest");
        // Atlassian has no such rules.
        assert_eq!(
            ProviderKind::Atlassian
                .rules()
                .missing(&list("read:jira-work"), &list("write:jira-work"))
                .to_string(),
            "read:jira-work"
        );
    }

    #[test]
    fn data_center_vocabularies_tell_their_own_scopes_from_others() {
        let dc = |s: &str| {
            ProviderKind::DataCenter
                .rules()
                .classify(&s.parse().unwrap())
        };
        assert_eq!(dc("WRITE"), ScopeKind::DataCenter);
        assert_eq!(dc("read:jira-work"), ScopeKind::ForeignDataCenter);
        assert_eq!(dc("REPO_READ"), ScopeKind::ForeignDataCenter);
        assert_eq!(dc("frobnicate"), ScopeKind::Unknown);
        let bb = |s: &str| {
            ProviderKind::BitbucketDataCenter
                .rules()
                .classify(&s.parse().unwrap())
        };
        assert_eq!(bb("REPO_WRITE"), ScopeKind::DataCenter);
        assert_eq!(bb("WRITE"), ScopeKind::ForeignDataCenter);
        assert_eq!(bb("repository"), ScopeKind::ForeignDataCenter);
        let findings = lint(
            "corp-jira",
            ProviderKind::DataCenter.rules(),
            false,
            &[LintConnector {
                name: "jira-dc",
                user_mode: true,
                scopes: &list("READ read:jira-work"),
            }],
        );
        let codes: Vec<_> = findings.iter().map(|f| f.code.as_str()).collect();
        assert_eq!(codes, ["foreign_scope_on_data_center"]);
    }

    #[test]
    fn classify_bitbucket_vocabulary() {
        let k = |s: &str| {
            ProviderKind::Bitbucket
                .rules()
                .classify(&s.parse().unwrap())
        };
        assert_eq!(k("repository:write"), ScopeKind::Bitbucket);
        assert_eq!(k("read:jira-work"), ScopeKind::ForeignAtlassian);
        assert_eq!(k("offline_access"), ScopeKind::ForeignAtlassian);
        assert_eq!(k("repo"), ScopeKind::Unknown);
    }

    #[test]
    fn merge_follows_the_seed_example() {
        let mut request = ScopeRequest::default();
        let jira = list("read:me read:jira-user read:jira-work write:jira-work offline_access");
        let confluence = list(
            "read:me read:confluence-user read:confluence-space.summary \
             read:confluence-content.all write:confluence-content offline_access",
        );
        let diff = request.merge("jira", &jira);
        assert_eq!(diff.added.len(), 5);
        let diff = request.merge("confluence", &confluence);
        assert_eq!(
            diff.added.iter().map(Scope::as_str).collect::<Vec<_>>(),
            [
                "read:confluence-user",
                "read:confluence-space.summary",
                "read:confluence-content.all",
                "write:confluence-content"
            ]
        );
        assert_eq!(
            diff.shared.iter().map(Scope::as_str).collect::<Vec<_>>(),
            ["read:me", "offline_access"]
        );
        let me = request.attribution(&"read:me".parse().unwrap()).unwrap();
        assert_eq!(me.requested_by, ["jira", "confluence"]);
        assert_eq!(request.scopes().len(), 9);
    }

    #[test]
    fn diff_reports_missing_extra_and_drift() {
        let required = list("read:me write:jira-work");
        let requested = list("read:me read:jira-work");
        let granted = list("read:me read:jira-work manage:jira-webhook");
        let diff = ScopeDiff::compute(
            ProviderKind::Atlassian.rules(),
            &required,
            &requested,
            Some(&granted),
        );
        assert_eq!(diff.missing, vec!["write:jira-work".parse().unwrap()]);
        assert_eq!(diff.extra, vec!["manage:jira-webhook".parse().unwrap()]);
        assert_eq!(diff.not_requested, vec!["write:jira-work".parse().unwrap()]);
        let before_login =
            ScopeDiff::compute(ProviderKind::Atlassian.rules(), &required, &requested, None);
        assert!(before_login.missing.is_empty() && before_login.extra.is_empty());
    }

    #[test]
    fn lint_finds_each_problem_and_nothing_when_clean() {
        let clean = list("read:me read:jira-work offline_access");
        let connectors = [LintConnector {
            name: "jira",
            user_mode: true,
            scopes: &clean,
        }];
        assert!(lint(
            "atlassian",
            ProviderKind::Atlassian.rules(),
            true,
            &connectors
        )
        .is_empty());

        let bad = list("read:me read:jira-work read:issue:jira pullrequest read:jira-wrok");
        let connectors = [LintConnector {
            name: "jira",
            user_mode: true,
            scopes: &bad,
        }];
        let codes: Vec<_> = lint(
            "atlassian",
            ProviderKind::Atlassian.rules(),
            true,
            &connectors,
        )
        .into_iter()
        .map(|f| f.code)
        .collect();
        for code in [
            "bitbucket_scope_on_atlassian",
            "unknown_scope",
            "missing_offline_access",
            "mixed_classic_granular",
        ] {
            assert!(codes.contains(&code.to_owned()), "{code} not in {codes:?}");
        }

        let service = [LintConnector {
            name: "jira",
            user_mode: false,
            scopes: &list("read:jira-work"),
        }];
        assert!(lint("atlassian", ProviderKind::Atlassian.rules(), true, &service).is_empty());

        let bb = list("repository read:jira-work offline_access");
        let connectors = [LintConnector {
            name: "bitbucket",
            user_mode: true,
            scopes: &bb,
        }];
        let codes: Vec<_> = lint(
            "bitbucket",
            ProviderKind::Bitbucket.rules(),
            false,
            &connectors,
        )
        .into_iter()
        .map(|f| f.code)
        .collect();
        assert_eq!(
            codes,
            [
                "atlassian_scope_on_bitbucket",
                "atlassian_scope_on_bitbucket"
            ]
        );
    }

    fn scope_strategy() -> impl Strategy<Value = Scope> {
        prop_oneof![
            "[a-z]{1,6}:[a-z-]{1,8}(:[a-z]{1,5})?",
            "[!#-\\[\\]-~]{1,12}",
            Just("offline_access".to_owned()),
            Just("read:me".to_owned()),
        ]
        .prop_map(|s| s.parse().unwrap())
    }

    fn list_strategy() -> impl Strategy<Value = ScopeList> {
        prop::collection::vec(scope_strategy(), 0..12).prop_map(ScopeList::from_scopes)
    }

    fn attribution_set(request: &ScopeRequest) -> BTreeSet<(String, BTreeSet<String>)> {
        request
            .entries()
            .iter()
            .map(|e| {
                (
                    e.scope.to_string(),
                    e.requested_by.iter().cloned().collect(),
                )
            })
            .collect()
    }

    proptest! {
        #[test]
        fn print_then_parse_round_trips(l in list_strategy()) {
            prop_assert_eq!(ScopeList::parse(&l.to_string()).unwrap(), l);
        }

        #[test]
        fn serde_round_trips(l in list_strategy()) {
            let json = serde_json::to_string(&l).unwrap();
            prop_assert_eq!(serde_json::from_str::<ScopeList>(&json).unwrap(), l);
        }

        #[test]
        fn merge_is_idempotent(a in list_strategy(), b in list_strategy()) {
            let mut once = ScopeRequest::default();
            once.merge("a", &a);
            once.merge("b", &b);
            let mut twice = once.clone();
            let diff = twice.merge("b", &b);
            prop_assert!(diff.added.is_empty());
            prop_assert_eq!(&once, &twice);
            twice.merge("a", &a);
            prop_assert_eq!(once, twice);
        }

        #[test]
        fn merge_is_commutative_as_a_set(a in list_strategy(), b in list_strategy()) {
            let mut ab = ScopeRequest::default();
            ab.merge("a", &a);
            ab.merge("b", &b);
            let mut ba = ScopeRequest::default();
            ba.merge("b", &b);
            ba.merge("a", &a);
            prop_assert_eq!(ab.scopes().to_set(), ba.scopes().to_set());
            prop_assert_eq!(attribution_set(&ab), attribution_set(&ba));
        }

        #[test]
        fn merge_never_shrinks_and_keeps_order(a in list_strategy(), b in list_strategy()) {
            let mut request = ScopeRequest::default();
            request.merge("a", &a);
            let before = request.scopes();
            request.merge("b", &b);
            let after = request.scopes();
            prop_assert!(before.to_set().is_subset(&after.to_set()));
            prop_assert!(b.to_set().is_subset(&after.to_set()));
            // Order-stable: the earlier request is a prefix of the later one.
            let prefix: Vec<_> = after.iter().take(before.len()).cloned().collect();
            prop_assert_eq!(prefix, before.iter().cloned().collect::<Vec<_>>());
        }
    }
}

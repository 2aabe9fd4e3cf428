//! Bitbucket Cloud OAuth consumers: `/2.0/user`, scopes decided by the consumer's permission
//! boxes, implications between scopes, 403 scope refusals, git's `x-token-auth` (§3).

use crate::provider::catalog::AuthMode;
use crate::provider::scope::{atlassian_scope_kind, Scope, ScopeKind, Vocabulary, BITBUCKET};
use crate::provider::ProviderRules;

pub(crate) struct Bitbucket;

/// Bitbucket Cloud's documented implications (atlassian-wire §3.3). `repository:admin` implies
/// neither read nor write.
const IMPLIES: &[(&str, &[&str])] = &[
    ("repository:write", &["repository"]),
    ("pullrequest", &["repository"]),
    ("pullrequest:write", &["pullrequest", "repository:write"]),
    ("project", &["repository"]),
];

impl Vocabulary for Bitbucket {
    fn classify(&self, scope: &Scope) -> ScopeKind {
        let text = scope.as_str();
        if BITBUCKET.contains(&text) {
            return ScopeKind::Bitbucket;
        }
        match atlassian_scope_kind(text) {
            ScopeKind::Unknown | ScopeKind::ForeignBitbucket => ScopeKind::Unknown,
            _ => ScopeKind::ForeignAtlassian,
        }
    }

    fn implications(&self) -> &'static [(&'static str, &'static [&'static str])] {
        IMPLIES
    }
}

impl ProviderRules for Bitbucket {
    fn may_refuse_scope_with(&self, status: u16) -> bool {
        matches!(status, 401 | 403)
    }

    /// The consumer's permission boxes are the token's scopes: signing in again changes nothing
    /// until the admin of the consumer ticks them.
    fn grants_by_consumer(&self) -> bool {
        true
    }

    fn missing_scope_fix(&self, provider: &str, missing: &str) -> String {
        format!(
            "tick {missing} in the OAuth consumer's permissions (Workspace settings → OAuth \
             consumers → Edit), then sign in again: `latch login {provider}`"
        )
    }

    fn scope_mismatch_fix(&self, provider: &str) -> String {
        format!(
            "tick the permission this endpoint needs in the OAuth consumer (Workspace settings → \
             OAuth consumers → Edit), then `latch login {provider}`"
        )
    }

    fn scope_missing_fix(&self, provider: &str) -> String {
        self.scope_mismatch_fix(provider)
    }

    fn service_account_console(&self) -> &'static str {
        "the workspace's OAuth consumer (Workspace settings → OAuth consumers): check its key, \
         secret and permissions"
    }

    fn api_token_console(&self) -> &'static str {
        "Bitbucket → Personal settings → API tokens"
    }

    fn git_user(&self, auth: AuthMode) -> Option<&'static str> {
        Some(match auth {
            // API tokens: the REST user is the e-mail, git's is this one.
            AuthMode::ApiToken => "x-bitbucket-api-token-auth",
            _ => "x-token-auth",
        })
    }
}

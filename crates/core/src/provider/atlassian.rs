//! Atlassian Cloud: `/me`, accessible-resources with cloud ids, `/_edge/tenant_info`, the
//! gateway's "scope does not match", `audience` on the authorize URL (atlassian-wire §1–2, §5–6).

use crate::provider::scope::{atlassian_scope_kind, Scope, ScopeKind, Vocabulary};
use crate::provider::ProviderRules;

pub(crate) struct Atlassian;

impl Vocabulary for Atlassian {
    fn classify(&self, scope: &Scope) -> ScopeKind {
        atlassian_scope_kind(scope.as_str())
    }
}

impl ProviderRules for Atlassian {
    fn sites_have_cloud_ids(&self) -> bool {
        true
    }

    fn tenant_info_url(&self, site_url: &str) -> Option<String> {
        Some(format!(
            "{}/_edge/tenant_info",
            site_url.trim_end_matches('/')
        ))
    }

    fn required_authorize_params(&self) -> &'static [(&'static str, &'static str)] {
        // Without it Atlassian shows a generic server_error page.
        &[("audience", "api.atlassian.com")]
    }

    fn service_account_console(&self) -> &'static str {
        "admin.atlassian.com → Directory → Service accounts: check that the credential exists, \
         has not expired, and was given the scopes you request"
    }

    fn api_token_console(&self) -> &'static str {
        "https://id.atlassian.com/manage-profile/security/api-tokens"
    }
}

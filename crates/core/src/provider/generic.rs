//! Any other OAuth 2.0 / OpenID Connect provider: scope names are not judged.

use crate::provider::scope::{Scope, ScopeKind, Vocabulary};
use crate::provider::ProviderRules;

pub(crate) struct Generic;

impl Vocabulary for Generic {
    fn classify(&self, _scope: &Scope) -> ScopeKind {
        ScopeKind::Opaque
    }
}

impl ProviderRules for Generic {
    fn service_account_console(&self) -> &'static str {
        "the identity provider's console: check the client id and secret"
    }

    fn api_token_console(&self) -> &'static str {
        "the service's account settings"
    }
}

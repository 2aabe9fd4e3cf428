//! Jira, Confluence and Bitbucket Data Center incoming links (§8): no sites, `/myself`-style
//! accounts (Bitbucket's whoami answers the user name as text), upper-case scopes.

use serde_json::Value;

use crate::provider::scope::{
    atlassian_scope_kind, Scope, ScopeKind, Vocabulary, BITBUCKET, BITBUCKET_DATA_CENTER,
    DATA_CENTER,
};
use crate::provider::{Account, ProviderRules};

/// A Data Center instance; its own scope names tell Jira/Confluence from Bitbucket.
pub(crate) struct DataCenter {
    own: &'static [&'static str],
}

impl DataCenter {
    pub(crate) const JIRA_CONFLUENCE: Self = Self { own: DATA_CENTER };
    pub(crate) const BITBUCKET: Self = Self {
        own: BITBUCKET_DATA_CENTER,
    };
}

impl Vocabulary for DataCenter {
    fn classify(&self, scope: &Scope) -> ScopeKind {
        let text = scope.as_str();
        if self.own.contains(&text) {
            ScopeKind::DataCenter
        } else if DATA_CENTER.contains(&text)
            || BITBUCKET_DATA_CENTER.contains(&text)
            || BITBUCKET.contains(&text)
            || atlassian_scope_kind(text) != ScopeKind::Unknown
        {
            ScopeKind::ForeignDataCenter
        } else {
            ScopeKind::Unknown
        }
    }
}

impl ProviderRules for DataCenter {
    /// Jira `/rest/api/2/myself`: `key`, `name` (the user name), `displayName`, `emailAddress`;
    /// Confluence `/rest/api/user/current`: `userKey`, `username`; Bitbucket's whoami answers
    /// the user name as text.
    fn account(&self, me: &Value) -> Option<Account> {
        if let Value::String(name) = me {
            let name = name.trim();
            return (!name.is_empty() && name.len() <= 255 && !name.contains(char::is_control))
                .then(|| Account {
                    id: name.to_owned(),
                    name: Some(name.to_owned()),
                    email: None,
                });
        }
        let text = |k: &str| me.get(k).and_then(Value::as_str).map(str::to_owned);
        let id = text("key")
            .or_else(|| text("userKey"))
            .or_else(|| text("name"))
            .or_else(|| text("username"))?;
        Some(Account {
            id,
            name: text("displayName")
                .or_else(|| text("name"))
                .or_else(|| text("username")),
            email: text("emailAddress"),
        })
    }

    fn service_account_console(&self) -> &'static str {
        "the instance's service account (Administration → Service accounts, or the incoming \
         application link): check its client id, secret and scopes"
    }

    fn api_token_console(&self) -> &'static str {
        "your profile → Personal Access Tokens, on the instance"
    }
}

//! What a provider is and how each kind behaves: the catalog of presets and connector types,
//! scopes (parsing, merge with attribution, diff, lint), and one file per provider kind
//! implementing [`ProviderRules`] — its scope vocabulary and its quirks on the wire.
//!
//! Wire facts: shared/reference/atlassian-wire.md.

mod atlassian;
mod bitbucket;
pub mod catalog;
mod datacenter;
mod generic;
pub mod scope;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::provider::catalog::AuthMode;
use crate::provider::scope::Vocabulary;
use latch_store::SiteRow;

/// The kinds of provider Latch knows. A preset names its kind (`vocabulary = "atlassian"` in
/// the catalog's TOML); everything that differs between kinds is behind [`Self::rules`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "kebab-case")]
pub enum ProviderKind {
    /// Atlassian Cloud: 3LO, service accounts, API tokens; classic and granular scopes.
    Atlassian,
    /// Bitbucket Cloud OAuth consumers: verbs like `repository:write`.
    Bitbucket,
    /// Jira and Confluence Data Center incoming links: `READ`, `WRITE`, `ADMIN`, …
    DataCenter,
    /// Bitbucket Data Center incoming links: `REPO_READ`, `PROJECT_ADMIN`, …
    BitbucketDataCenter,
    /// Any other OAuth 2.0 provider: scope names are not judged.
    Generic,
}

impl ProviderKind {
    /// How this kind behaves.
    pub fn rules(self) -> &'static dyn ProviderRules {
        match self {
            Self::Atlassian => &atlassian::Atlassian,
            Self::Bitbucket => &bitbucket::Bitbucket,
            Self::DataCenter => &datacenter::DataCenter::JIRA_CONFLUENCE,
            Self::BitbucketDataCenter => &datacenter::DataCenter::BITBUCKET,
            Self::Generic => &generic::Generic,
        }
    }
}

/// The account a token belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    /// Stable id.
    pub id: String,
    /// Display name.
    pub name: Option<String>,
    /// E-mail.
    pub email: Option<String>,
}

/// Everything that differs between provider kinds beyond their endpoints: the scope vocabulary,
/// how answers read, how scope refusals look, and where people fix things. A new kind is one
/// file implementing this and a [`ProviderKind`] variant.
pub trait ProviderRules: Vocabulary {
    /// Reads the account from the provider's "me" endpoint answer.
    fn account(&self, me: &Value) -> Option<Account> {
        oauth_account(me)
    }

    /// Reads an accessible-resources answer: one row per entry (Atlassian repeats a cloud id
    /// once per product, told apart by its scopes).
    fn sites(&self, resources: &Value) -> Vec<SiteRow> {
        accessible_resources(resources)
    }

    /// Whether the sites a sign-in lists carry cloud ids worth remembering for other auth
    /// modes (found by name without a sign-in later).
    fn sites_have_cloud_ids(&self) -> bool {
        false
    }

    /// Where a site says its cloud id without any credential.
    fn tenant_info_url(&self, _site_url: &str) -> Option<String> {
        None
    }

    /// The cloud id in a `/_edge/tenant_info` answer.
    fn cloud_id(&self, tenant_info: &Value) -> Option<String> {
        tenant_info
            .get("cloudId")
            .and_then(Value::as_str)
            .filter(|id| looks_like_cloud_id(id))
            .map(str::to_owned)
    }

    /// Whether an upstream answer with this status may be a scope refusal (its body is read
    /// then): a 401 everywhere; Bitbucket also refuses for scope with a 403.
    fn may_refuse_scope_with(&self, status: u16) -> bool {
        status == 401
    }

    /// Whether an upstream answer is the provider refusing a request for a scope the token
    /// lacks (refreshing would not help): Atlassian's gateway answers `401` "scope does not
    /// match"; Bitbucket `403` "lack one or more required privilege scopes".
    fn is_scope_refusal(&self, status: u16, body: &[u8]) -> bool {
        let text = String::from_utf8_lossy(body).to_lowercase();
        match status {
            401 => text.contains("scope does not match"),
            403 => text.contains("required privilege scope") || text.contains("insufficient_scope"),
            _ => false,
        }
    }

    /// Authorize parameters without which the provider fails in an unhelpful way.
    fn required_authorize_params(&self) -> &'static [(&'static str, &'static str)] {
        &[]
    }

    /// Whether the granted scopes are decided on the provider's side, whatever the request
    /// says (a Bitbucket OAuth consumer's permission boxes).
    fn grants_by_consumer(&self) -> bool {
        false
    }

    /// What to do about scopes a connector needs and the grant lacks.
    fn missing_scope_fix(&self, provider: &str, missing: &str) -> String {
        format!(
            "sign in again and keep {missing} ticked (if the consent screen does not offer it, \
             add it to the app in the developer console): `latch login {provider}`"
        )
    }

    /// What to do when the provider refuses a request for a scope no connector declares.
    fn scope_mismatch_fix(&self, provider: &str) -> String {
        format!(
            "add the scope this endpoint needs to the app and the connector, then `latch login \
             {provider}`"
        )
    }

    /// What the doctor says when a user connector's probe was refused for scope.
    fn scope_missing_fix(&self, provider: &str) -> String {
        format!(
            "add the scope to the app (developer console → Permissions) and keep it ticked at \
             consent: `latch login {provider}`"
        )
    }

    /// Where an admin fixes a service account's credential.
    fn service_account_console(&self) -> &'static str;

    /// Where a person manages their API tokens.
    fn api_token_console(&self) -> &'static str;

    /// The user name git sends with a token as its password, when the provider wants one
    /// (Bitbucket Cloud); `None`: git sends the token as a Bearer (`authtype`) where it can.
    fn git_user(&self, _auth: AuthMode) -> Option<&'static str> {
        None
    }
}

/// An OAuth provider's "me" answer: Atlassian `/me` (`account_id`, `name`, `email`), Bitbucket
/// `/2.0/user` (`uuid`, `display_name`), OIDC userinfo (`sub`).
fn oauth_account(me: &Value) -> Option<Account> {
    let text = |k: &str| me.get(k).and_then(Value::as_str).map(str::to_owned);
    let id = text("account_id")
        .or_else(|| text("uuid"))
        .or_else(|| text("sub"))?;
    Some(Account {
        id,
        name: text("name").or_else(|| text("display_name")),
        email: text("email"),
    })
}

fn accessible_resources(resources: &Value) -> Vec<SiteRow> {
    let Value::Array(items) = resources else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|item| {
            let text = |k: &str| item.get(k).and_then(Value::as_str).map(str::to_owned);
            let scopes: Vec<&str> = item
                .get("scopes")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            Some(SiteRow {
                cloud_id: text("id")?,
                name: text("name").unwrap_or_default(),
                url: text("url").unwrap_or_default(),
                scopes: scopes.join(" "),
            })
        })
        .collect()
}

/// Cloud ids are UUIDs.
pub fn looks_like_cloud_id(text: &str) -> bool {
    text.len() == 36
        && text.chars().enumerate().all(|(i, c)| {
            if matches!(i, 8 | 13 | 18 | 23) {
                c == '-'
            } else {
                c.is_ascii_hexdigit()
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn answers_are_read_per_kind() {
        let atlassian = ProviderKind::Atlassian.rules();
        let me = json!({"account_id": "a1", "name": "Mia", "email": "mia@example.com"});
        assert_eq!(
            atlassian.account(&me),
            Some(Account {
                id: "a1".into(),
                name: Some("Mia".into()),
                email: Some("mia@example.com".into())
            })
        );
        let sites = atlassian.sites(&json!([
            {"id": "11111111-2222-3333-4444-555555555555", "name": "acme", "url": "https://acme.atlassian.net", "scopes": ["read:jira-work"]},
            {"name": "no id"}
        ]));
        assert_eq!(sites.len(), 1);
        assert_eq!(sites[0].scopes, "read:jira-work");
        assert_eq!(
            atlassian
                .tenant_info_url("https://acme.atlassian.net/")
                .as_deref(),
            Some("https://acme.atlassian.net/_edge/tenant_info")
        );
        assert_eq!(
            atlassian
                .cloud_id(&json!({"cloudId": "11111111-2222-3333-4444-555555555555"}))
                .as_deref(),
            Some("11111111-2222-3333-4444-555555555555")
        );
        assert_eq!(atlassian.cloud_id(&json!({"cloudId": "../x"})), None);
        assert!(atlassian.is_scope_refusal(
            401,
            br#"{"code":401,"message":"Unauthorized; scope does not match"}"#
        ));
        assert!(!atlassian.is_scope_refusal(401, br#"{"code":401,"message":"Unauthorized"}"#));
        let bitbucket = ProviderKind::Bitbucket.rules();
        assert!(bitbucket.is_scope_refusal(
            403,
            br#"{"type":"error","error":{"message":"Your credentials lack one or more required privilege scopes."}}"#
        ));
        assert!(bitbucket.may_refuse_scope_with(403) && !atlassian.may_refuse_scope_with(403));
        assert_eq!(bitbucket.tenant_info_url("https://x"), None);
        let dc = ProviderKind::DataCenter.rules();
        assert_eq!(
            dc.account(&json!({"key": "JIRAUSER1", "name": "mia", "displayName": "Mia"}))
                .map(|a| (a.id, a.name)),
            Some(("JIRAUSER1".into(), Some("Mia".into())))
        );
        assert_eq!(
            dc.account(&json!("mia")).map(|a| a.id),
            Some("mia".to_owned())
        );
    }

    #[test]
    fn cloud_ids_are_uuids() {
        assert!(looks_like_cloud_id("11111111-2222-3333-4444-555555555555"));
        assert!(!looks_like_cloud_id("acme"));
        assert!(!looks_like_cloud_id("11111111-2222-3333-4444-55555555555g"));
        assert!(!looks_like_cloud_id("111111112222-3333-4444-5555-55555555"));
    }
}

//! Provider profiles: everything that differs between identity providers beyond their
//! endpoints, in one place. Atlassian Cloud (`/me`, accessible-resources, `/_edge/tenant_info`,
//! the gateway's "scope does not match", `audience`), Bitbucket Cloud (`/2.0/user`, its scope
//! refusal, permissions decided by the OAuth consumer), Data Center incoming links (no sites,
//! `/myself`-style accounts, no `scope` in token responses), and a generic OAuth 2.0 provider.
//! Wire facts: shared/reference/atlassian-wire.md.

use serde_json::Value;

use crate::provider::catalog::ProviderSpec;
use crate::provider::scope::Vocabulary;
use latch_store::SiteRow;

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

/// Which provider's rules apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProviderProfile {
    /// Atlassian Cloud 3LO, service accounts and API tokens.
    Atlassian,
    /// Bitbucket Cloud OAuth consumers.
    Bitbucket,
    /// Jira, Confluence and Bitbucket Data Center incoming links.
    DataCenter,
    /// Any other OAuth 2.0 provider.
    Generic,
}

impl ProviderProfile {
    /// The profile of a provider preset.
    pub fn of(spec: &ProviderSpec) -> Self {
        match spec.vocabulary {
            Vocabulary::Atlassian => Self::Atlassian,
            Vocabulary::Bitbucket => Self::Bitbucket,
            Vocabulary::DataCenter | Vocabulary::BitbucketDataCenter => Self::DataCenter,
            Vocabulary::Generic => Self::Generic,
        }
    }

    /// Whether the granted scopes are decided by the provider's side, whatever the request
    /// says: a Bitbucket OAuth consumer's permission boxes are the token's scopes, so signing
    /// in again changes nothing; the admin of the consumer does.
    pub fn grants_by_consumer(self) -> bool {
        self == Self::Bitbucket
    }

    /// What to do about scopes a connector needs and the grant lacks.
    pub fn missing_scope_fix(self, provider: &str, missing: &str) -> String {
        match self {
            Self::Bitbucket => format!(
                "tick {missing} in the OAuth consumer's permissions (Workspace settings → OAuth \
                 consumers → Edit), then sign in again: `latch login {provider}`"
            ),
            _ => format!(
                "sign in again and keep {missing} ticked (if the consent screen does not offer \
                 it, add it to the app in the developer console): `latch login {provider}`"
            ),
        }
    }

    /// What to do when the provider refuses a request for a scope no connector declares.
    pub fn scope_mismatch_fix(self, provider: &str) -> String {
        match self {
            Self::Bitbucket => format!(
                "tick the permission this endpoint needs in the OAuth consumer (Workspace \
                 settings → OAuth consumers → Edit), then `latch login {provider}`"
            ),
            _ => format!(
                "add the scope this endpoint needs to the app and the connector, then `latch \
                 login {provider}`"
            ),
        }
    }

    /// Reads the account from the provider's "me" endpoint answer (Atlassian `/me`: `account_id`,
    /// `name`, `email`; Bitbucket `/2.0/user`: `uuid`, `display_name`; OIDC userinfo: `sub`).
    pub fn account(self, me: &Value) -> Option<Account> {
        let text = |k: &str| me.get(k).and_then(Value::as_str).map(str::to_owned);
        if self == Self::DataCenter {
            // Jira `/rest/api/2/myself`: `key`, `name` (the user name), `displayName`,
            // `emailAddress`; Confluence `/rest/api/user/current`: `userKey`, `username`;
            // Bitbucket's whoami answers the user name as text.
            if let Value::String(name) = me {
                let name = name.trim();
                return (!name.is_empty() && name.len() <= 255 && !name.contains(char::is_control))
                    .then(|| Account {
                        id: name.to_owned(),
                        name: Some(name.to_owned()),
                        email: None,
                    });
            }
            let id = text("key")
                .or_else(|| text("userKey"))
                .or_else(|| text("name"))
                .or_else(|| text("username"))?;
            return Some(Account {
                id,
                name: text("displayName")
                    .or_else(|| text("name"))
                    .or_else(|| text("username")),
                email: text("emailAddress"),
            });
        }
        let id = text("account_id")
            .or_else(|| text("uuid"))
            .or_else(|| text("sub"))?;
        Some(Account {
            id,
            name: text("name").or_else(|| text("display_name")),
            email: text("email"),
        })
    }

    /// Reads Atlassian's accessible-resources answer: one row per entry (a cloud id repeats once
    /// per product, told apart by its scopes).
    pub fn sites(self, resources: &Value) -> Vec<SiteRow> {
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

    /// Where a site says its cloud id without any credential.
    pub fn tenant_info_url(self, site_url: &str) -> Option<String> {
        (self == Self::Atlassian)
            .then(|| format!("{}/_edge/tenant_info", site_url.trim_end_matches('/')))
    }

    /// The cloud id in a `/_edge/tenant_info` answer.
    pub fn cloud_id(self, tenant_info: &Value) -> Option<String> {
        tenant_info
            .get("cloudId")
            .and_then(Value::as_str)
            .filter(|id| looks_like_cloud_id(id))
            .map(str::to_owned)
    }

    /// Whether an upstream answer is the provider refusing a request for a scope the token
    /// lacks (refreshing would not help): Atlassian's gateway answers `401` with
    /// "scope does not match"; Bitbucket `403` "lack one or more required privilege scopes".
    pub fn is_scope_refusal(self, status: u16, body: &[u8]) -> bool {
        let text = String::from_utf8_lossy(body).to_lowercase();
        match status {
            401 => text.contains("scope does not match"),
            403 => text.contains("required privilege scope") || text.contains("insufficient_scope"),
            _ => false,
        }
    }

    /// Authorize parameters without which the provider fails in an unhelpful way.
    pub fn required_authorize_params(self) -> &'static [(&'static str, &'static str)] {
        match self {
            // Without it Atlassian shows a generic server_error page.
            Self::Atlassian => &[("audience", "api.atlassian.com")],
            _ => &[],
        }
    }

    /// Where an admin fixes a service account's credential.
    pub fn service_account_console(self) -> &'static str {
        match self {
            Self::Atlassian => {
                "admin.atlassian.com → Directory → Service accounts: check that the credential \
                 exists, has not expired, and was given the scopes you request"
            }
            Self::Bitbucket => {
                "the workspace's OAuth consumer (Workspace settings → OAuth consumers): check its \
                 key, secret and permissions"
            }
            Self::DataCenter => {
                "the instance's service account (Administration → Service accounts, or the \
                 incoming application link): check its client id, secret and scopes"
            }
            Self::Generic => "the identity provider's console: check the client id and secret",
        }
    }

    /// Where a person manages their API tokens.
    pub fn api_token_console(self) -> &'static str {
        match self {
            Self::Atlassian => "https://id.atlassian.com/manage-profile/security/api-tokens",
            Self::Bitbucket => "Bitbucket → Personal settings → API tokens",
            Self::DataCenter => "your profile → Personal Access Tokens, on the instance",
            Self::Generic => "the service's account settings",
        }
    }
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
    fn atlassian_answers_are_read() {
        let p = ProviderProfile::Atlassian;
        let me = json!({"account_id": "a1", "name": "Mia", "email": "mia@example.com"});
        assert_eq!(
            p.account(&me),
            Some(Account {
                id: "a1".into(),
                name: Some("Mia".into()),
                email: Some("mia@example.com".into())
            })
        );
        let sites = p.sites(&json!([
            {"id": "11111111-2222-3333-4444-555555555555", "name": "acme", "url": "https://acme.atlassian.net", "scopes": ["read:jira-work"]},
            {"name": "no id"}
        ]));
        assert_eq!(sites.len(), 1);
        assert_eq!(sites[0].scopes, "read:jira-work");
        assert_eq!(
            p.tenant_info_url("https://acme.atlassian.net/").as_deref(),
            Some("https://acme.atlassian.net/_edge/tenant_info")
        );
        assert_eq!(
            p.cloud_id(&json!({"cloudId": "11111111-2222-3333-4444-555555555555"}))
                .as_deref(),
            Some("11111111-2222-3333-4444-555555555555")
        );
        assert_eq!(p.cloud_id(&json!({"cloudId": "../x"})), None);
        assert!(p.is_scope_refusal(
            401,
            br#"{"code":401,"message":"Unauthorized; scope does not match"}"#
        ));
        assert!(!p.is_scope_refusal(401, br#"{"code":401,"message":"Unauthorized"}"#));
        assert!(ProviderProfile::Bitbucket.is_scope_refusal(
            403,
            br#"{"type":"error","error":{"message":"Your credentials lack one or more required privilege scopes."}}"#
        ));
        assert_eq!(
            ProviderProfile::Bitbucket.tenant_info_url("https://x"),
            None
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

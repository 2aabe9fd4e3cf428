//! A connector's settings as a person gives them — in latch.toml, on the command line, in the
//! app's form: one type. `connector add` writes exactly these keys, the configuration reads
//! them back, and the faces map their input onto it (the CLI's flags with `From`).

use serde::Deserialize;

use crate::config::ScopeSet;
use crate::provider::catalog::AuthMode;
use latch_store::ApiTokenKind;

/// `[connectors.NAME]`: every key a connector may have, as written.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(optional_fields = nullable))]
#[serde(deny_unknown_fields)]
pub struct ConnectorSettings {
    /// Catalog entry; defaults to the table name.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// Provider; defaults to the catalog entry's provider.
    pub provider: Option<String>,
    /// Auth mode; defaults to the catalog entry's first mode.
    pub auth: Option<String>,
    /// Site name, URL or cloud id.
    pub site: Option<String>,
    /// Account e-mail for `api-token` (the Basic user name; not a secret).
    pub email: Option<String>,
    /// Client id of a service account (`auth = "service"`); its secret is in the keychain.
    pub client_id: Option<String>,
    /// `auth = "service"`: scopes to request (default: none, the credential's own).
    pub scopes: Option<Vec<String>>,
    /// `auth = "service"`: an `audience` to send with the token request.
    pub audience: Option<String>,
    /// `auth = "api-token"`: where the token works (`scoped`: the gateway; `classic`: the site
    /// URL). Default: Latch finds out when the token is stored.
    pub token: Option<String>,
    /// `auth = "basic"`: the user name.
    pub username: Option<String>,
    /// `classic` (default) or `granular`: which of the connector's scope sets it requests.
    pub scope_set: Option<String>,
    /// A region of the provider (`eu` for Opsgenie's EU instance).
    pub region: Option<String>,
    /// `auth = "connect-user"`: the Atlassian account id the app acts as.
    pub account_id: Option<String>,
    /// `latch exec --intercept`: the host names (`host[:port]`) tools call this connector by,
    /// in place of its preset's real ones.
    #[cfg_attr(feature = "ts", ts(skip))]
    pub intercept_hosts: Option<Vec<String>>,
}

/// A setting whose value is not one Latch knows: which key, and what to write instead.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SettingError {
    /// The latch.toml key (and flag, with `--` and dashes).
    pub key: &'static str,
    /// What is wrong.
    pub message: String,
}

impl ConnectorSettings {
    /// The same settings with blank values left out (a form's empty fields).
    pub fn without_blanks(self) -> Self {
        let text =
            |value: Option<String>| value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        Self {
            kind: text(self.kind),
            provider: text(self.provider),
            auth: text(self.auth),
            site: text(self.site),
            email: text(self.email),
            client_id: text(self.client_id),
            scopes: self.scopes.filter(|s| !s.is_empty()),
            audience: text(self.audience),
            token: text(self.token),
            username: text(self.username),
            scope_set: text(self.scope_set),
            region: text(self.region),
            account_id: text(self.account_id),
            intercept_hosts: self.intercept_hosts.filter(|h| !h.is_empty()),
        }
    }

    /// The auth mode, when one is given.
    pub fn auth_mode(&self) -> Result<Option<AuthMode>, SettingError> {
        self.auth
            .as_deref()
            .map(|text| {
                AuthMode::parse(text).ok_or_else(|| SettingError {
                    key: "auth",
                    message: format!(
                        "unknown auth mode `{text}`: use {}",
                        AuthMode::ALL
                            .iter()
                            .map(|m| m.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                })
            })
            .transpose()
    }

    /// Where an API token works, when pinned.
    pub fn token_kind(&self) -> Result<Option<ApiTokenKind>, SettingError> {
        self.token
            .as_deref()
            .map(|text| {
                ApiTokenKind::parse(text).ok_or_else(|| SettingError {
                    key: "token",
                    message: format!("unknown token kind `{text}`: use scoped or classic"),
                })
            })
            .transpose()
    }

    /// The scope set, when one is given.
    pub fn scope_set_choice(&self) -> Result<Option<ScopeSet>, SettingError> {
        self.scope_set
            .as_deref()
            .map(|text| {
                ScopeSet::parse(text).ok_or_else(|| SettingError {
                    key: "scope_set",
                    message: format!("unknown scope set `{text}`: use classic or granular"),
                })
            })
            .transpose()
    }

    /// Every value that must parse, parsed once (a face checks its input before anything is
    /// written).
    pub fn check(&self) -> Result<(), SettingError> {
        self.auth_mode()?;
        self.token_kind()?;
        self.scope_set_choice()?;
        Ok(())
    }

    /// The latch.toml keys and values of a connector named `name` (`None` leaves a key out);
    /// `type` is written only when it differs from the name.
    pub(crate) fn keys<'a>(&'a self, name: &str) -> Vec<(&'static str, Option<&'a str>)> {
        vec![
            ("type", self.kind.as_deref().filter(|kind| *kind != name)),
            ("provider", self.provider.as_deref()),
            ("auth", self.auth.as_deref()),
            ("site", self.site.as_deref()),
            ("email", self.email.as_deref()),
            ("client_id", self.client_id.as_deref()),
            ("audience", self.audience.as_deref()),
            ("token", self.token.as_deref()),
            ("username", self.username.as_deref()),
            ("scope_set", self.scope_set.as_deref()),
            ("region", self.region.as_deref()),
            ("account_id", self.account_id.as_deref()),
        ]
    }
}

/// `host[:port]` as written in `intercept_hosts` (checked when latch.toml is read).
pub fn parse_intercept_host(text: &str) -> Option<(String, u16)> {
    let text = text.trim().to_ascii_lowercase();
    let (host, port) = match text.rsplit_once(':') {
        Some((host, port)) => (
            host.to_owned(),
            port.parse::<u16>().ok().filter(|p| *p > 0)?,
        ),
        None => (text.clone(), 443),
    };
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    // Names only: the ephemeral CA's constraints exclude every IP address.
    let is_ip = host.parse::<std::net::IpAddr>().is_ok();
    (!is_ip && host.len() <= 253 && host.split('.').all(label_ok)).then_some((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_parse_once_and_blanks_are_absent() {
        let settings = ConnectorSettings {
            auth: Some(" api-token ".into()),
            site: Some("  ".into()),
            token: Some("scoped".into()),
            ..ConnectorSettings::default()
        }
        .without_blanks();
        assert_eq!(settings.site, None);
        assert_eq!(settings.auth_mode(), Ok(Some(AuthMode::ApiToken)));
        assert_eq!(settings.token_kind(), Ok(Some(ApiTokenKind::Scoped)));
        let bad = ConnectorSettings {
            auth: Some("oauth".into()),
            ..ConnectorSettings::default()
        };
        let err = bad.check().unwrap_err();
        assert_eq!(err.key, "auth");
        assert!(err.message.contains("api-token"), "{err}");
    }
}

//! Git's credential helper protocol (`git help credential`): `latch git-credential get` hands
//! git a token Latch keeps fresh for Bitbucket Cloud and Bitbucket Data Center clones.
//!
//! - `get`: the connector is the one named on the helper line, or the one whose provider's
//!   `git_url` has the host git asks about. Bitbucket Cloud takes OAuth access tokens as the
//!   password of `x-token-auth` and API tokens as that of `x-bitbucket-api-token-auth`
//!   (atlassian-wire §3.2, §3.4). A Bearer credential for Data Center goes as `authtype=Bearer`
//!   when git announces that capability (git 2.46+).
//! - `store`: nothing; Latch already holds the credential.
//! - `erase`: git saw the password refused. When it is the grant's current access token, the
//!   token is marked stale so the next `get` refreshes; a refresh token is never deleted.

use crate::config::{Config, Connector};
use crate::credential::Credential;
use crate::credential::{grant_of, Credentials};
use crate::error::GrantError;
use crate::provider::catalog::AuthMode;
use crate::provider::ProviderRules;
use crate::secret::Secret;

/// The most git sends for one request; anything longer is not git.
const MAX_INPUT: usize = 64 * 1024;

/// What git asks about.
#[derive(Debug, Default)]
pub struct GitRequest {
    /// `https` or `http`.
    pub protocol: Option<String>,
    /// `host` or `host:port`.
    pub host: Option<String>,
    /// The repository path, when git sends it (`credential.useHttpPath`).
    pub path: Option<String>,
    /// The user name git already has.
    pub username: Option<String>,
    /// The password git used (on `erase`).
    pub password: Option<Secret>,
    /// `capability[]` values git announced (`authtype`, `state`).
    pub capabilities: Vec<String>,
}

/// Why git's input could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GitInputError {
    /// Over [`MAX_INPUT`] bytes.
    #[error("the input is longer than git ever sends ({MAX_INPUT} bytes)")]
    TooLong,
    /// A line without `=`.
    #[error("line {0} is not key=value")]
    NotKeyValue(usize),
}

impl GitRequest {
    /// Parses `key=value` lines up to an empty line or the end. Unknown keys are ignored (the
    /// protocol grows); a repeated key keeps its last value, as git does.
    pub fn parse(input: &str) -> Result<Self, GitInputError> {
        if input.len() > MAX_INPUT {
            return Err(GitInputError::TooLong);
        }
        let mut request = Self::default();
        for (n, line) in input.lines().enumerate() {
            if line.is_empty() {
                break;
            }
            let (key, value) = line
                .split_once('=')
                .ok_or(GitInputError::NotKeyValue(n + 1))?;
            let value = value.to_owned();
            match key {
                "protocol" => request.protocol = Some(value),
                "host" => request.host = Some(value),
                "path" => request.path = Some(value),
                "username" => request.username = Some(value),
                "password" => request.password = Some(Secret::new(value)),
                "capability[]" => request.capabilities.push(value),
                _ => {}
            }
        }
        Ok(request)
    }

    fn offers(&self, capability: &str) -> bool {
        self.capabilities.iter().any(|c| c == capability)
    }
}

/// The origin (`scheme://host[:port]`) and path prefix of a URL, for matching git's requests.
fn origin_and_path(url: &str) -> Option<(String, String, String)> {
    let parsed = url::Url::parse(url).ok()?;
    let host = match parsed.port() {
        Some(port) => format!("{}:{port}", parsed.host_str()?),
        None => parsed.host_str()?.to_owned(),
    };
    Some((
        parsed.scheme().to_owned(),
        host.to_ascii_lowercase(),
        parsed.path().trim_matches('/').to_owned(),
    ))
}

/// The connectors git can use, with the URL git reaches their repositories at.
pub fn git_connectors(config: &Config) -> Vec<(&Connector, String)> {
    config
        .connectors
        .iter()
        .filter_map(|c| {
            let url = config.provider(&c.provider)?.spec.git_url.clone()?;
            Some((c, url))
        })
        .collect()
}

/// The connector for git's request: the named one, or the one whose git URL matches the
/// protocol, host and (when git sends it) path. `None` lets git ask its next helper.
pub fn connector_for<'a>(
    config: &'a Config,
    named: Option<&str>,
    request: &GitRequest,
) -> Result<Option<&'a Connector>, GrantError> {
    if let Some(name) = named {
        return config
            .connector(name)
            .map(Some)
            .ok_or_else(|| config.unknown_connector_grant(name));
    }
    let (Some(protocol), Some(host)) = (&request.protocol, &request.host) else {
        return Ok(None);
    };
    let host = host.to_ascii_lowercase();
    let path = request.path.as_deref().unwrap_or("").trim_matches('/');
    let found: Vec<&Connector> = git_connectors(config)
        .into_iter()
        .filter(|(_, url)| {
            origin_and_path(url).is_some_and(|(scheme, h, prefix)| {
                scheme == *protocol
                    && h == host
                    // Without the path (git's default), the host decides.
                    && (request.path.is_none() || prefix.is_empty() || path.starts_with(&prefix))
            })
        })
        .map(|(c, _)| c)
        .collect();
    // The connector that signs in as the person first: it is what a clone usually means.
    Ok(found
        .iter()
        .find(|c| c.auth == AuthMode::User)
        .or(found.first())
        .copied())
}

/// What `get` answers: `key=value` lines, holding a secret.
pub fn answer(
    profile: &dyn ProviderRules,
    connector: &Connector,
    credential: &Credential,
    request: &GitRequest,
) -> Secret {
    let mut lines = Vec::new();
    match credential {
        Credential::Basic { user, token } => {
            // Bitbucket Cloud API tokens: the REST user is the e-mail, git's is its own.
            let user = match connector.auth {
                AuthMode::ApiToken => profile.git_user(connector.auth).unwrap_or(user),
                _ => user.as_str(),
            };
            lines.push(format!("username={user}"));
            lines.push(format!("password={}", token.expose()));
        }
        // Signs each request, or sends nothing: nothing git could send.
        Credential::ConnectJwt { .. } | Credential::Link(_) | Credential::Anonymous => {}
        Credential::Bearer(token) | Credential::GenieKey(token) => {
            if let Some(user) = profile.git_user(connector.auth) {
                lines.push(format!("username={user}"));
                lines.push(format!("password={}", token.expose()));
            } else if request.offers("authtype") {
                lines.push("capability[]=authtype".to_owned());
                lines.push("authtype=Bearer".to_owned());
                lines.push(format!("credential={}", token.expose()));
            } else {
                // Older git: Basic with the token as the password, which Bitbucket Data Center
                // accepts for HTTP access tokens.
                let user = request
                    .username
                    .clone()
                    .or_else(|| connector.username.clone())
                    .unwrap_or_else(|| "x-token-auth".to_owned());
                lines.push(format!("username={user}"));
                lines.push(format!("password={}", token.expose()));
            }
        }
    }
    let mut text = lines.join("\n");
    text.push('\n');
    Secret::new(text)
}

/// `get` under `latch exec --intercept`: a password that is not one. The exec's proxy replaces
/// whatever git sends with the connector's credential, so git never holds the real token.
pub fn intercepted_answer() -> Secret {
    Secret::new("username=latch\npassword=latch-intercepts-this\n".to_owned())
}

/// `get`: a fresh credential for the connector, in git's words.
pub async fn get(
    credentials: &Credentials,
    connector: &Connector,
    request: &GitRequest,
) -> Result<Secret, GrantError> {
    let credential = credentials.credential(&connector.name).await?;
    let profile = credentials.grants().config().rules_of(&connector.provider);
    Ok(answer(profile, connector, &credential, request))
}

/// `erase`: marks the connector's access token stale when git says it was refused. Returns
/// whether it did.
pub async fn erase(
    credentials: &Credentials,
    connector: &Connector,
    request: &GitRequest,
) -> Result<bool, GrantError> {
    let (Some(grant), Some(password)) = (grant_of(connector), &request.password) else {
        return Ok(false);
    };
    credentials.grants().mark_stale(&grant, password).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_input_is_read_like_git_writes_it() {
        let r = GitRequest::parse(
            "capability[]=authtype\ncapability[]=state\nprotocol=https\nhost=bitbucket.org\n\
             username=x-token-auth\npassword=old\nwwwauth[]=Basic realm=\"x\"\n\nignored=1\n",
        )
        .unwrap();
        assert_eq!(r.protocol.as_deref(), Some("https"));
        assert_eq!(r.host.as_deref(), Some("bitbucket.org"));
        assert_eq!(r.password.as_ref().map(Secret::expose), Some("old"));
        assert!(r.offers("authtype"));
        assert!(!r.offers("nothing"));
        assert_eq!(
            GitRequest::parse("protocol=https\nnonsense\n").unwrap_err(),
            GitInputError::NotKeyValue(2)
        );
        assert_eq!(
            GitRequest::parse(&"x".repeat(MAX_INPUT + 1)).unwrap_err(),
            GitInputError::TooLong
        );
    }

    #[test]
    fn urls_match_by_scheme_host_and_path() {
        assert_eq!(
            origin_and_path("https://Bitbucket.org").unwrap(),
            ("https".into(), "bitbucket.org".into(), String::new())
        );
        assert_eq!(
            origin_and_path("http://127.0.0.1:8080/dc/").unwrap(),
            ("http".into(), "127.0.0.1:8080".into(), "dc".into())
        );
    }
}

//! Atlassian Connect: an installed app signs every request with its shared secret — a JWT whose
//! `qsh` claim hashes the request as sent (atlassian-wire §7, §12.1). The app's `installed`
//! lifecycle payload is its credential: the shared secret goes to the keychain, the rest
//! ([`ConnectApp`]) to the database. Acting as a user through the app is [`super::connect_user`].

use base64::Engine as _;
use hmac::Mac as _;
use serde::{Deserialize, Serialize};
use sha2::Digest as _;

use crate::secret::Secret;

/// How long a request's JWT is good for (what atlassian-connect-express uses).
const REQUEST_JWT_LIFETIME: i64 = 180;

/// What Latch keeps of an installed app in the database (never the shared secret).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ConnectApp {
    /// The app's key (`iss` of its JWTs).
    pub key: String,
    /// The installation's client key (`aud`).
    pub client_key: String,
    /// The site the app is installed on, with its context path (`/wiki` for Confluence).
    pub base_url: String,
    /// The app's OAuth client id, for acting as a user (`connect-user`).
    pub oauth_client_id: Option<String>,
}

/// An app's `installed` payload, as the product sent it to the app.
pub struct Installed {
    /// What goes to the database.
    pub app: ConnectApp,
    /// What goes to the keychain.
    pub shared_secret: Secret,
}

/// Why an `installed` payload cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum InstalledError {
    /// Not JSON, or a field missing.
    #[error("the installed payload {0}")]
    Malformed(String),
    /// `baseUrl` is not a place Latch may send the app's credentials.
    #[error("baseUrl `{0}` {1}")]
    BaseUrl(String, &'static str),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Payload {
    key: Option<String>,
    client_key: Option<String>,
    shared_secret: Option<String>,
    base_url: Option<String>,
    oauth_client_id: Option<String>,
}

impl Installed {
    /// Reads the payload; the base URL decides where credentials go, so it must be an
    /// Atlassian site over https (or a loopback URL, for tests).
    pub fn parse(text: &str) -> Result<Self, InstalledError> {
        let payload: Payload = serde_json::from_str(text.trim()).map_err(|_| {
            InstalledError::Malformed("is not JSON (give the app's `installed` body as is)".into())
        })?;
        let field = |value: Option<String>, name: &str| {
            value
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
                .ok_or_else(|| InstalledError::Malformed(format!("has no `{name}`")))
        };
        let base_url = field(payload.base_url, "baseUrl")?;
        check_base_url(&base_url)?;
        Ok(Self {
            shared_secret: Secret::new(field(payload.shared_secret, "sharedSecret")?),
            app: ConnectApp {
                key: field(payload.key, "key")?,
                client_key: field(payload.client_key, "clientKey")?,
                base_url: base_url.trim_end_matches('/').to_owned(),
                oauth_client_id: payload
                    .oauth_client_id
                    .map(|v| v.trim().to_owned())
                    .filter(|v| !v.is_empty()),
            },
        })
    }
}

fn check_base_url(text: &str) -> Result<(), InstalledError> {
    let refuse = |why| InstalledError::BaseUrl(text.to_owned(), why);
    let url = url::Url::parse(text).map_err(|_| refuse("is not a URL"))?;
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err(refuse("has a query, fragment or user name"));
    }
    let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
    let loopback = matches!(url.host(), Some(url::Host::Ipv4(ip)) if ip.is_loopback())
        || matches!(url.host(), Some(url::Host::Ipv6(ip)) if ip.is_loopback())
        || host == "localhost";
    match url.scheme() {
        "http" if loopback => Ok(()),
        "https" if host.ends_with(".atlassian.net") || host.ends_with(".jira-dev.com") => Ok(()),
        "https" => Err(refuse(
            "is not an Atlassian site (*.atlassian.net or *.jira-dev.com): Latch sends the app's \
             credentials only there",
        )),
        _ => Err(refuse("must be https:// (http:// only on loopback)")),
    }
}

impl ConnectApp {
    /// Where requests go: the base URL, less the product's own prefix that paths through the
    /// proxy carry anyway (Confluence's `/wiki`: the connector's `site_paths`).
    pub fn api_base(&self, site_paths: &[String]) -> String {
        site_paths
            .iter()
            .map(|p| p.trim_end_matches('/'))
            .filter(|p| !p.is_empty())
            .find_map(|p| self.base_url.strip_suffix(p))
            .unwrap_or(&self.base_url)
            .to_owned()
    }

    /// The base URL's own path (`/wiki`), which the `qsh` path is relative to.
    pub fn context_path(&self) -> String {
        url::Url::parse(&self.base_url)
            .map(|u| u.path().trim_end_matches('/').to_owned())
            .unwrap_or_default()
    }

    /// The JWT for one request to `path?query` (as sent upstream) at `now` (seconds).
    pub fn request_jwt(
        &self,
        secret: &Secret,
        method: &str,
        path: &str,
        query: Option<&str>,
        now: i64,
    ) -> Secret {
        let canonical = canonical_request(method, path, query, &self.context_path());
        let claims = serde_json::json!({
            "iss": self.key,
            "aud": [self.client_key],
            "iat": now,
            "exp": now + REQUEST_JWT_LIFETIME,
            "qsh": qsh(&canonical),
        });
        hs256(&claims, secret)
    }
}

/// The canonical request of atlassian-wire §12.1: `METHOD&PATH&QUERY`, the path relative to
/// `context_path`, the query decoded and re-encoded, sorted, `jwt` dropped.
pub fn canonical_request(
    method: &str,
    path: &str,
    query: Option<&str>,
    context_path: &str,
) -> String {
    let relative = path
        .strip_prefix(context_path)
        .filter(|rest| rest.is_empty() || rest.starts_with('/'))
        .unwrap_or(path);
    let mut relative = relative.to_owned();
    if relative.is_empty() {
        relative.push('/');
    }
    if relative.len() > 1 && relative.ends_with('/') {
        relative.pop();
    }
    let relative = relative.replace('&', "%26");
    // Keys sorted by their encoded form; a repeated key's raw values sorted, then encoded.
    let mut params: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for (key, value) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        if key == "jwt" {
            continue;
        }
        params
            .entry(encode(&key))
            .or_default()
            .push(value.into_owned());
    }
    let query = params
        .into_iter()
        .map(|(key, mut values)| {
            values.sort();
            let values: Vec<String> = values.iter().map(|v| encode(v)).collect();
            format!("{key}={}", values.join(","))
        })
        .collect::<Vec<_>>()
        .join("&");
    format!("{}&{relative}&{query}", method.to_ascii_uppercase())
}

/// RFC 3986 encoding keeping only the unreserved characters.
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The query-string hash: lower-case hex SHA-256 of the canonical request.
pub fn qsh(canonical: &str) -> String {
    sha2::Sha256::digest(canonical.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// An HS256 JWT of `claims`, keyed with the shared secret's UTF-8 bytes.
pub(crate) fn hs256(claims: &serde_json::Value, secret: &Secret) -> Secret {
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let signing = format!(
        "{}.{}",
        b64(br#"{"typ":"JWT","alg":"HS256"}"#),
        b64(claims.to_string().as_bytes())
    );
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.expose().as_bytes())
        // HMAC takes a key of any length.
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    mac.update(signing.as_bytes());
    Secret::new(format!("{signing}.{}", b64(&mac.finalize().into_bytes())))
}

/// The credential of a `connect` connector: the installed app's facts and shared secret.
pub(crate) async fn read(
    ctx: &crate::grant::Ctx<'_>,
    connector: &crate::config::Connector,
) -> Result<super::Credential, crate::error::GrantError> {
    let (app, secret) = stored(ctx, connector).await?;
    Ok(super::Credential::ConnectJwt { app, secret })
}

/// An installed app as stored: its facts from the database, its shared secret from the keychain.
pub(crate) async fn stored(
    ctx: &crate::grant::Ctx<'_>,
    connector: &crate::config::Connector,
) -> Result<(ConnectApp, Secret), crate::error::GrantError> {
    let name = &connector.name;
    let missing = || crate::error::GrantError::CredentialMissing {
        connector: name.clone(),
        fix: format!(
            "store the app's installed payload: `latch credential set {name} < installed.json`"
        ),
    };
    let app = ctx
        .store
        .db()
        .connector(name)?
        .and_then(|row| row.connect)
        .and_then(|json| serde_json::from_str::<ConnectApp>(&json).ok())
        .ok_or_else(missing)?;
    let secret = ctx
        .store
        .secret(ctx.store.connector_secret_key(name))
        .await?
        .ok_or_else(missing)?;
    Ok((app, secret))
}

/// What to check when a site refuses an app's JWT: the product answers a bare 401 without the
/// reason, so say what can be checked locally.
pub fn rejected_hint(connector: &str, app: Option<&ConnectApp>) -> String {
    let site = app.map_or_else(|| "the site".to_owned(), |a| a.base_url.clone());
    format!(
        "{site} refused the JWT of connector `{connector}`: check this machine's clock (the JWT \
         lives 3 minutes), whether the app was reinstalled since (a new installed payload carries \
         a new shared secret: store it with `latch credential set {connector}`), and that the \
         payload is this site's and this product's"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64_json(part: &str) -> serde_json::Value {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    /// Atlassian's published interoperability cases: each signed URL's canonical request, its
    /// `qsh`, and the JWT's signature with the shared secret.
    #[test]
    fn the_published_signed_urls_verify() {
        let cases: serde_json::Value =
            serde_json::from_str(include_str!("../../testdata/connect-jwt-signed-urls.json"))
                .unwrap();
        let secret = Secret::new(cases["secret"].as_str().unwrap().to_owned());
        let tests = cases["tests"].as_array().unwrap();
        assert_eq!(tests.len(), 79);
        for case in tests {
            let name = case["name"].as_str().unwrap();
            let signed = case["signedUrl"].as_str().unwrap();
            let want = case["canonicalUrl"].as_str().unwrap();
            let (target, query) = signed.split_once('?').unwrap_or((signed, ""));
            let path_start = target.find("://").map(|i| i + 3).unwrap();
            let path = &target[path_start + target[path_start..].find('/').unwrap()..];
            // One case signs for an app whose base URL has a context path of its own.
            let context = if name.starts_with("Add-on baseUrl contains path") {
                "/base"
            } else {
                ""
            };
            let canonical = canonical_request("GET", path, Some(query), context);
            assert_eq!(canonical, want, "{name}");
            let jwt = url::form_urlencoded::parse(query.as_bytes())
                .find(|(k, _)| k == "jwt")
                .map(|(_, v)| v.into_owned())
                .unwrap();
            let parts: Vec<&str> = jwt.split('.').collect();
            assert_eq!(b64_json(parts[1])["qsh"], qsh(&canonical), "{name}");
            // Our signature over their header and claims is theirs.
            let mut mac =
                hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.expose().as_bytes()).unwrap();
            mac.update(format!("{}.{}", parts[0], parts[1]).as_bytes());
            let ours = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(mac.finalize().into_bytes());
            assert_eq!(ours, parts[2], "{name}");
        }
    }

    #[test]
    fn the_reference_vectors_hash_as_published() {
        for (canonical, hash) in [
            (
                "GET&/path&",
                "799be84a7fa35570087163c0cd9af3abff7ac05c2c12ba0bb1d7eebc984b3ac2",
            ),
            (
                "GET&/&",
                "c88caad15a1c1a900b8ac08aa9686f4e8184539bea1deda36e2f649430df3239",
            ),
            (
                "GET&/test&param=value",
                "be16910858a41fd19ea5c1b4e9decca9a784d1024cb00b2158defe2f29dc86dd",
            ),
        ] {
            assert_eq!(qsh(canonical), hash);
        }
        let canonical = canonical_request("get", "/path/to/service", Some("a=1&A=2&b=3&B=4"), "");
        assert_eq!(
            qsh(&canonical),
            "70282c7cf82834bd5a3d6dacda1b4ccd5cf5860a63a1fa2fb86b64d576e6a1d5"
        );
        // Confluence's base URL ends in /wiki: its requests hash relative to it.
        assert_eq!(
            canonical_request("GET", "/wiki/rest/api/space", None, "/wiki"),
            "GET&/rest/api/space&"
        );
        assert_eq!(canonical_request("GET", "/wiki", None, "/wiki"), "GET&/&");
    }

    #[test]
    fn payloads_are_checked_where_credentials_would_go() {
        let ok = Installed::parse(
            r#"{"key":"app","clientKey":"ck","sharedSecret":"s3","baseUrl":"https://acme.atlassian.net/wiki/","productType":"confluence"}"#,
        )
        .unwrap();
        assert_eq!(ok.app.base_url, "https://acme.atlassian.net/wiki");
        assert_eq!(
            ok.app.api_base(&["/wiki/".to_owned()]),
            "https://acme.atlassian.net"
        );
        assert_eq!(ok.app.api_base(&[]), "https://acme.atlassian.net/wiki");
        assert_eq!(ok.app.context_path(), "/wiki");
        assert_eq!(ok.shared_secret.expose(), "s3");
        for bad in [
            "not json",
            r#"{"key":"app","clientKey":"ck","baseUrl":"https://acme.atlassian.net"}"#,
            r#"{"key":"app","clientKey":"ck","sharedSecret":"s","baseUrl":"https://evil.example"}"#,
            r#"{"key":"app","clientKey":"ck","sharedSecret":"s","baseUrl":"http://acme.atlassian.net"}"#,
        ] {
            assert!(Installed::parse(bad).is_err(), "{bad}");
        }
        assert!(Installed::parse(
            r#"{"key":"app","clientKey":"ck","sharedSecret":"s","baseUrl":"http://127.0.0.1:9/jira"}"#
        )
        .is_ok());
        let jwt = ok
            .app
            .request_jwt(&ok.shared_secret, "GET", "/wiki/rest/api/space", None, 1000);
        let parts: Vec<&str> = jwt.expose().split('.').collect();
        let claims = b64_json(parts[1]);
        assert_eq!(claims["iss"], "app");
        assert_eq!(claims["aud"], serde_json::json!(["ck"]));
        assert_eq!(claims["exp"], 1180);
        assert_eq!(claims["qsh"], qsh("GET&/rest/api/space&"));
    }
}

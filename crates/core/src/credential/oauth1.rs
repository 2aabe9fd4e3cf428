//! OAuth 1.0a as Jira and Confluence Data Center application links speak it (atlassian-wire
//! §12.3, RFC 5849): every request is signed RSA-SHA1 with the link's private key, which lives
//! only in the keychain. Three ways to use a link:
//! - 3-legged (`auth = "user"` on an `oauth = "1.0a"` provider): a person's access token,
//!   obtained by [`crate::app::sign_in`], named in each signature;
//! - 2-legged (`auth = "oauth1-2lo"`): no token, the link's "execute as" user;
//! - 2-legged with impersonation: no token, `xoauth_requestor_id` names the user.
//!
//! The signature covers the request as sent: method, the base string URI, the query and, for a
//! form-encoded body, its parameters. A signature is bound to one request, so there is no token
//! to hand out.

use std::sync::Arc;

use base64::Engine as _;
use rsa::pkcs1::DecodeRsaPrivateKey as _;
use rsa::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _, EncodePublicKey as _, LineEnding};
use rsa::signature::{RandomizedSigner as _, SignatureEncoding as _};
use rsa::RsaPrivateKey;
use sha2::Digest as _;

use crate::secret::Secret;

/// The key size Latch generates (what Atlassian's guides use).
const KEY_BITS: usize = 2048;

/// The largest form-encoded body Latch buffers to sign.
pub const MAX_SIGNED_FORM: usize = 1024 * 1024;

/// The parameter that names the user a 2-legged request acts as ("OAuth with impersonation").
pub const REQUESTOR_PARAM: &str = "xoauth_requestor_id";

/// An application link's RSA private key. Never printed: `Debug` redacts; the key's memory is
/// zeroed on drop by `rsa`.
#[derive(Clone)]
pub struct LinkKey(Arc<RsaPrivateKey>);

impl std::fmt::Debug for LinkKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LinkKey({})", self.fingerprint())
    }
}

/// Why a private key cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Not a PEM RSA private key Latch can read.
    #[error(
        "the file is not an RSA private key in PEM (PKCS#1 `BEGIN RSA PRIVATE KEY` or PKCS#8 \
         `BEGIN PRIVATE KEY`, unencrypted)"
    )]
    Unreadable,
    /// Shorter than 2048 bits.
    #[error("the key has {0} bits; application links need at least 2048")]
    TooShort(usize),
    /// Generation or encoding failed.
    #[error("the key could not be made: {0}")]
    Failed(String),
}

impl LinkKey {
    /// A new RSA-2048 key.
    pub fn generate() -> Result<Self, KeyError> {
        let key = RsaPrivateKey::new(&mut rand::rngs::OsRng, KEY_BITS)
            .map_err(|e| KeyError::Failed(e.to_string()))?;
        Ok(Self(Arc::new(key)))
    }

    /// Reads a PEM private key, PKCS#8 or PKCS#1.
    pub fn from_pem(text: &str) -> Result<Self, KeyError> {
        let text = text.trim();
        let key = RsaPrivateKey::from_pkcs8_pem(text)
            .or_else(|_| RsaPrivateKey::from_pkcs1_pem(text))
            .map_err(|_| KeyError::Unreadable)?;
        let bits = rsa::traits::PublicKeyParts::size(&key) * 8;
        if bits < KEY_BITS {
            return Err(KeyError::TooShort(bits));
        }
        Ok(Self(Arc::new(key)))
    }

    /// The private key as PKCS#8 PEM, for the keychain.
    pub fn to_pem(&self) -> Result<Secret, KeyError> {
        let pem = self
            .0
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|e| KeyError::Failed(e.to_string()))?;
        Ok(Secret::new(pem.to_string()))
    }

    /// The public key as the application link's form takes it (`BEGIN PUBLIC KEY`, what
    /// `openssl rsa -pubout` prints).
    pub fn public_pem(&self) -> String {
        self.0
            .to_public_key()
            .to_public_key_pem(LineEnding::LF)
            .unwrap_or_default()
    }

    /// `SHA256:` and the base64 of the public key's SHA-256 (its DER): tells keys apart in the
    /// status and the report without showing either.
    pub fn fingerprint(&self) -> String {
        let der = self
            .0
            .to_public_key()
            .to_public_key_der()
            .map(|d| d.as_bytes().to_vec())
            .unwrap_or_default();
        format!(
            "SHA256:{}",
            base64::engine::general_purpose::STANDARD_NO_PAD.encode(sha2::Sha256::digest(der))
        )
    }

    /// `base64(RSASSA-PKCS1-v1_5(SHA-1(text)))`, blinded.
    fn sign(&self, text: &str) -> String {
        let signer = rsa::pkcs1v15::SigningKey::<sha1::Sha1>::new((*self.0).clone());
        let signature = signer.sign_with_rng(&mut rand::rngs::OsRng, text.as_bytes());
        base64::engine::general_purpose::STANDARD.encode(signature.to_bytes())
    }
}

/// A link as a credential: its consumer key and private key, and what a request acts as.
#[derive(Clone)]
pub struct LinkCredential {
    /// The consumer key the link's incoming authentication was created with.
    pub consumer_key: String,
    /// The private key.
    pub key: LinkKey,
    /// 3-legged: the person's access token.
    pub token: Option<Secret>,
    /// 2-legged with impersonation: the user acted as.
    pub requestor: Option<String>,
}

/// RFC 3986 percent-encoding of everything but the unreserved characters (RFC 5849 §3.6).
pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The base string URI (RFC 5849 §3.4.1.2): scheme and host in lower case, the port only when
/// it is not the scheme's default, the path; no query.
pub fn base_uri(target: &http::Uri) -> String {
    let scheme = target.scheme_str().unwrap_or("https").to_ascii_lowercase();
    let host = target.host().unwrap_or_default().to_ascii_lowercase();
    let port = match (scheme.as_str(), target.port_u16()) {
        ("http", Some(80)) | ("https", Some(443)) | (_, None) => String::new(),
        (_, Some(port)) => format!(":{port}"),
    };
    let path = match target.path() {
        "" => "/",
        path => path,
    };
    format!("{scheme}://{host}{port}{path}")
}

/// The signature base string (RFC 5849 §3.4.1): method, base string URI and the normalized
/// parameters — the query's, the form body's and the protocol's (never `oauth_signature`).
pub fn base_string(
    method: &str,
    target: &http::Uri,
    form: &[(String, String)],
    protocol: &[(String, String)],
) -> String {
    let mut params: Vec<(String, String)> = Vec::new();
    if let Some(query) = target.query() {
        params.extend(url::form_urlencoded::parse(query.as_bytes()).into_owned());
    }
    params.extend(form.iter().cloned());
    params.extend(
        protocol
            .iter()
            .filter(|(k, _)| k != "oauth_signature")
            .cloned(),
    );
    let mut encoded: Vec<(String, String)> = params
        .into_iter()
        .map(|(k, v)| (encode(&k), encode(&v)))
        .collect();
    encoded.sort();
    let normalized = encoded
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    format!(
        "{}&{}&{}",
        method.to_ascii_uppercase(),
        encode(&base_uri(target)),
        encode(&normalized)
    )
}

/// The parameters of a form-encoded body.
pub fn form_params(body: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

/// Signs one request and returns its `Authorization: OAuth …` value. `extra` carries the
/// sign-in's protocol parameters (`oauth_callback`, `oauth_verifier`, `oauth_session_handle`).
pub fn authorization(
    consumer_key: &str,
    key: &LinkKey,
    token: Option<&Secret>,
    extra: &[(&str, &str)],
    method: &str,
    target: &http::Uri,
    form: &[(String, String)],
) -> Secret {
    let nonce = crate::net::oauth::random_token(18);
    let timestamp = time::OffsetDateTime::now_utc().unix_timestamp().to_string();
    let mut protocol: Vec<(String, String)> = vec![
        ("oauth_consumer_key".into(), consumer_key.into()),
        ("oauth_nonce".into(), nonce),
        ("oauth_signature_method".into(), "RSA-SHA1".into()),
        ("oauth_timestamp".into(), timestamp),
        ("oauth_version".into(), "1.0".into()),
    ];
    if let Some(token) = token {
        protocol.push(("oauth_token".into(), token.expose().to_owned()));
    }
    protocol.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    let signature = key.sign(&base_string(method, target, form, &protocol));
    protocol.push(("oauth_signature".into(), signature));
    let fields: Vec<String> = protocol
        .iter()
        .map(|(k, v)| format!("{}=\"{}\"", encode(k), encode(v)))
        .collect();
    Secret::new(format!("OAuth {}", fields.join(", ")))
}

impl LinkCredential {
    /// The target with the user a 2-legged request acts as, when it names one.
    pub fn target(&self, target: &http::Uri) -> http::Uri {
        let Some(user) = &self.requestor else {
            return target.clone();
        };
        let pair = format!("{REQUESTOR_PARAM}={}", encode(user));
        let path_and_query = match target.query() {
            Some(query) if !query.is_empty() => format!("{}?{query}&{pair}", target.path()),
            _ => format!("{}?{pair}", target.path()),
        };
        let mut parts = target.clone().into_parts();
        parts.path_and_query = path_and_query.parse().ok();
        http::Uri::from_parts(parts).unwrap_or_else(|_| target.clone())
    }

    /// The `Authorization` value for a request sent to `target` (already through
    /// [`Self::target`]) with `form`'s parameters in its body.
    pub fn sign(
        &self,
        method: &http::Method,
        target: &http::Uri,
        form: &[(String, String)],
    ) -> Secret {
        authorization(
            &self.consumer_key,
            &self.key,
            self.token.as_ref(),
            &[],
            method.as_str(),
            target,
            form,
        )
    }
}

/// What an instance said when it refused a signed request: `oauth_problem` and, for a bad
/// signature, the base string it computed (useful to compare; holds no secret).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refused {
    /// `oauth_problem`.
    pub problem: String,
    /// `oauth_signature_base_string`, when sent.
    pub base_string: Option<String>,
}

impl Refused {
    /// Reads `WWW-Authenticate: OAuth realm="…", oauth_problem="…"`, or a form-encoded body
    /// with `oauth_problem=` (what the token endpoints answer).
    pub fn read(www_authenticate: Option<&str>, body: &[u8]) -> Option<Self> {
        let from_header = www_authenticate.and_then(|h| {
            let rest = h.trim().strip_prefix("OAuth")?;
            let params = header_params(rest);
            Some(params)
        });
        let params = match from_header {
            Some(p) if p.iter().any(|(k, _)| k == "oauth_problem") => p,
            _ => form_params(body),
        };
        let get = |name: &str| {
            params
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        // The instance's words are printed: nothing that could steer a terminal.
        let printable = |t: String| t.chars().filter(|c| !c.is_control()).take(2048).collect();
        Some(Self {
            problem: get("oauth_problem")
                .map(printable)
                .filter(|p: &String| !p.is_empty())?,
            base_string: get("oauth_signature_base_string").map(printable),
        })
    }

    /// Whether the person's token is the problem (a new sign-in mends it).
    pub fn token_is_dead(&self) -> bool {
        matches!(
            self.problem.as_str(),
            "token_rejected" | "token_expired" | "token_revoked"
        )
    }

    /// What went wrong and what to do, on which side of the link.
    pub fn explain(&self, provider: &str, consumer_key: &str) -> (String, String) {
        let (what, fix) = match self.problem.as_str() {
            "signature_invalid" => (
                "the instance could not verify the signature: the public key on the application \
                 link is not Latch's"
                    .to_owned(),
                format!(
                    "paste the output of `latch provider public-key {provider}` into the link's \
                     incoming authentication (consumer key `{consumer_key}`) on the instance"
                ),
            ),
            "consumer_key_unknown" | "consumer_key_rejected" | "consumer_key_refused" => (
                format!(
                    "the instance knows no application link with consumer key `{consumer_key}`"
                ),
                format!(
                    "create the link's incoming authentication with consumer key `{consumer_key}` \
                     and the public key from `latch provider public-key {provider}`"
                ),
            ),
            "token_rejected" | "token_expired" | "token_revoked" => (
                "the instance no longer accepts this sign-in's token (revoked, or expired)"
                    .to_owned(),
                format!("sign in again: `latch login {provider}`"),
            ),
            "timestamp_refused" => (
                "the instance refused the request's timestamp: the clocks differ".to_owned(),
                "set this machine's clock right (NTP), or ask the instance's admin to".to_owned(),
            ),
            "nonce_used" => (
                "the instance saw this request's nonce before (a replay)".to_owned(),
                "send the request again".to_owned(),
            ),
            "permission_denied" => (
                "the link does not allow this kind of access (2-legged OAuth off, or the person \
                 declined)"
                    .to_owned(),
                "tick \"Allow 2-Legged OAuth\" on the link's incoming authentication, or sign in \
                 again and allow access"
                    .to_owned(),
            ),
            "permission_unknown" | "user_refused" => (
                "the link may not act as this user (impersonation off, or no such user)".to_owned(),
                "tick \"Allow user impersonation through 2-Legged OAuth\" on the link, and check \
                 `username` names a user of the instance"
                    .to_owned(),
            ),
            "signature_method_rejected" => (
                "the instance refuses RSA-SHA1 signatures".to_owned(),
                "check the link's incoming authentication is OAuth with a public key".to_owned(),
            ),
            other => (
                format!("the instance refused the OAuth 1.0a request (`{other}`)"),
                format!(
                    "check the application link's incoming authentication for consumer key \
                     `{consumer_key}`"
                ),
            ),
        };
        (what, fix)
    }
}

/// `k="v", k2="v2"` → pairs, values percent-decoded.
fn header_params(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for part in text.split(',') {
        let Some((k, v)) = part.trim().split_once('=') else {
            continue;
        };
        let v = v.trim().trim_matches('"');
        let decoded = percent_decode(v);
        out.push((k.trim().to_owned(), decoded));
    }
    out
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let hex = |b: u8| (b as char).to_digit(16);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(high), Some(low)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((high * 16 + low) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// An answer of the token endpoints: form-encoded pairs.
pub struct TokenAnswer(Vec<(String, String)>);

impl TokenAnswer {
    /// Reads a form-encoded body.
    pub fn parse(body: &[u8]) -> Self {
        Self(form_params(body))
    }

    /// One parameter.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rfc_5849_example_base_string() {
        // RFC 5849 §3.4.1.1, its example request: query, form body and protocol parameters.
        let target: http::Uri = "http://example.com/request?b5=%3D%253D&a3=a&c%40=&a2=r%20b"
            .parse()
            .unwrap();
        let form = form_params(b"c2&a3=2+q");
        let protocol: Vec<(String, String)> = [
            ("oauth_consumer_key", "9djdj82h48djs9d2"),
            ("oauth_token", "kkk9d7dh3k39sjv7"),
            ("oauth_signature_method", "HMAC-SHA1"),
            ("oauth_timestamp", "137131201"),
            ("oauth_nonce", "7d8f3e4a"),
            ("oauth_signature", "djosJKDKJSD8743243%2Fjdk33klY%3D"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        assert_eq!(
            base_string("POST", &target, &form, &protocol),
            "POST&http%3A%2F%2Fexample.com%2Frequest&a2%3Dr%2520b%26a3%3D2%2520q%26a3%3Da%26b5%3D%253D%25253D%26c%2540%3D%26c2%3D%26oauth_consumer_key%3D9djdj82h48djs9d2%26oauth_nonce%3D7d8f3e4a%26oauth_signature_method%3DHMAC-SHA1%26oauth_timestamp%3D137131201%26oauth_token%3Dkkk9d7dh3k39sjv7"
        );
    }

    #[test]
    fn base_string_uris_drop_default_ports_and_keep_others() {
        let uri = |s: &str| s.parse::<http::Uri>().unwrap();
        assert_eq!(
            base_uri(&uri("HTTP://EXAMPLE.COM:80/r%20v/X?id=123")),
            "http://example.com/r%20v/X"
        );
        assert_eq!(
            base_uri(&uri("https://www.example.net:8080/?q=1")),
            "https://www.example.net:8080/"
        );
    }

    #[test]
    fn refusals_are_read_from_the_header_or_the_body() {
        let refused = Refused::read(
            Some(r#"OAuth realm="https%3A%2F%2Fjira.corp.example", oauth_problem="signature_invalid", oauth_signature_base_string="GET%26https%253A"#),
            b"",
        )
        .unwrap();
        assert_eq!(refused.problem, "signature_invalid");
        assert_eq!(refused.base_string.as_deref(), Some("GET&https%3A"));
        let from_body = Refused::read(None, b"oauth_problem=token_rejected").unwrap();
        assert!(from_body.token_is_dead());
        assert!(Refused::read(Some("Basic realm=\"x\""), b"{}").is_none());
    }

    /// The signature checks out with an independent verifier: OpenSSL's command line.
    #[test]
    fn signatures_verify_with_openssl() {
        let key = LinkKey::generate().unwrap();
        assert!(!format!("{key:?}").contains("PRIVATE"));
        let dir = tempfile::tempdir().unwrap();
        let public = dir.path().join("public.pem");
        std::fs::write(&public, key.public_pem()).unwrap();
        let text = "GET&https%3A%2F%2Fjira.corp.example%2Frest&a%3D1";
        let signature = base64::engine::general_purpose::STANDARD
            .decode(key.sign(text))
            .unwrap();
        let sig = dir.path().join("sig");
        std::fs::write(&sig, signature).unwrap();
        let data = dir.path().join("data");
        std::fs::write(&data, text).unwrap();
        let verify = |data: &std::path::Path| {
            std::process::Command::new("openssl")
                .args(["dgst", "-sha1", "-verify"])
                .arg(&public)
                .arg("-signature")
                .arg(&sig)
                .arg(data)
                .output()
                .expect("openssl is installed by `make deps`")
        };
        let out = verify(&data);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::write(&data, format!("{text}x")).unwrap();
        assert!(
            !verify(&data).status.success(),
            "a changed text must not verify"
        );
        // The PEM round trip keeps the key, and a PKCS#1 file is read too.
        let again = LinkKey::from_pem(key.to_pem().unwrap().expose()).unwrap();
        assert_eq!(again.fingerprint(), key.fingerprint());
        let pkcs1 = rsa::pkcs1::EncodeRsaPrivateKey::to_pkcs1_pem(&*key.0, LineEnding::LF).unwrap();
        assert_eq!(
            LinkKey::from_pem(&pkcs1).unwrap().fingerprint(),
            key.fingerprint()
        );
        assert!(matches!(
            LinkKey::from_pem("not a key"),
            Err(KeyError::Unreadable)
        ));
    }

    #[test]
    fn impersonation_names_the_user_in_the_query() {
        let link = LinkCredential {
            consumer_key: "latch".into(),
            key: LinkKey::generate().unwrap(),
            token: None,
            requestor: Some("j smith".into()),
        };
        let target: http::Uri = "https://jira.corp.example/rest/api/2/search?jql=a"
            .parse()
            .unwrap();
        assert_eq!(
            link.target(&target).to_string(),
            "https://jira.corp.example/rest/api/2/search?jql=a&xoauth_requestor_id=j%20smith"
        );
        let header = link.sign(&http::Method::GET, &link.target(&target), &[]);
        assert!(header
            .expose()
            .starts_with("OAuth oauth_consumer_key=\"latch\""));
        assert!(!header.expose().contains("oauth_token="));
    }
}

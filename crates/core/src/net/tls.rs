//! Which servers Latch trusts: Mozilla's roots (built in), the OS trust store (where companies
//! put their CA), and, for one provider only, the PEM file its `ca_file` names (a Data Center
//! instance behind an internal CA). Used by the OAuth client and by the proxy's upstream client.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// A client certificate from latch.toml's `client_cert`: the chain as read, and when the
/// end-entity certificate ends. Its private key lives in the keychain.
#[derive(Clone, Debug)]
pub struct ClientCert {
    /// The file (absolute).
    pub path: PathBuf,
    /// The end-entity certificate first, then any intermediates.
    pub chain: Vec<rustls_pki_types::CertificateDer<'static>>,
    /// The end-entity certificate's subject, as a person reads it.
    pub subject: String,
    /// Its `notAfter`.
    pub not_after: time::OffsetDateTime,
}

impl ClientCert {
    /// Reads and checks a PEM certificate file.
    pub fn read(path: &Path) -> Result<Self, CaFileError> {
        let chain = read_ca_file(path)?;
        let (subject, not_after) =
            validity(&chain[0]).map_err(|why| CaFileError::NoCertificate {
                path: path.display().to_string(),
                why,
            })?;
        Ok(Self {
            path: path.to_owned(),
            chain,
            subject,
            not_after,
        })
    }
}

/// A certificate's subject and `notAfter`.
fn validity(
    cert: &rustls_pki_types::CertificateDer<'_>,
) -> Result<(String, time::OffsetDateTime), String> {
    use x509_cert::der::Decode as _;
    let cert = x509_cert::Certificate::from_der(cert.as_ref()).map_err(|e| e.to_string())?;
    let tbs = &cert.tbs_certificate;
    let secs = tbs.validity.not_after.to_unix_duration().as_secs();
    let not_after = i64::try_from(secs)
        .ok()
        .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
        .ok_or_else(|| "its notAfter is out of range".to_owned())?;
    Ok((tbs.subject.to_string(), not_after))
}

/// What one provider trusts beyond the defaults, and the certificate it presents.
#[derive(Clone, Debug)]
pub struct ProviderTrust {
    /// The provider.
    pub provider: String,
    /// Its `ca_file`.
    pub ca_file: Option<PathBuf>,
    /// Its `client_cert`.
    pub client_cert: Option<ClientCert>,
}

/// Reads a provider's client-certificate private key (PEM) from the keychain: `Ok(None)` when
/// none was imported.
pub type IdentitySource =
    Arc<dyn Fn(&str) -> Result<Option<crate::secret::Secret>, String> + Send + Sync>;

/// Why a provider's TLS configuration cannot be built: its client certificate cannot be
/// presented. The provider's requests fail with this rather than without the certificate.
#[derive(Clone, Debug, thiserror::Error)]
#[error("{message}\n  fix: {fix}")]
pub struct TrustError {
    /// What is wrong.
    pub message: String,
    /// What to do.
    pub fix: String,
}

impl ProviderTrust {
    /// The rustls configuration: the roots plus `ca_file`, presenting the client certificate
    /// with the key `identities` reads.
    pub fn tls(&self, identities: &IdentitySource) -> Result<rustls::ClientConfig, TrustError> {
        let import = format!(
            "import it: `latch provider client-cert {} --cert FILE --key FILE`",
            self.provider
        );
        let identity = match &self.client_cert {
            None => None,
            Some(cert) => {
                let pem = identities(&self.provider)
                    .map_err(|why| TrustError {
                        message: format!(
                            "the client certificate's key of provider `{}` cannot be read from \
                             the keychain: {why}",
                            self.provider
                        ),
                        fix: "unlock the keychain (`latch keychain unlock`) and try again"
                            .to_owned(),
                    })?
                    .ok_or_else(|| TrustError {
                        message: format!(
                            "provider `{}` has a client certificate but its private key is not \
                             in the keychain",
                            self.provider
                        ),
                        fix: import.clone(),
                    })?;
                let key = private_key(pem.expose()).map_err(|why| TrustError {
                    message: format!(
                        "the client certificate's key of provider `{}` is unusable: {why}",
                        self.provider
                    ),
                    fix: import.clone(),
                })?;
                Some((cert.chain.clone(), key))
            }
        };
        client_config(self.ca_file.as_deref(), identity).map_err(|err| TrustError {
            message: err.to_string(),
            fix: import,
        })
    }
}

/// A private key from PEM: PKCS#8, PKCS#1 (RSA) or SEC1 (EC).
pub fn private_key(pem: &str) -> Result<rustls_pki_types::PrivateKeyDer<'static>, String> {
    use rustls_pki_types::pem::PemObject as _;
    rustls_pki_types::PrivateKeyDer::from_pem_slice(pem.as_bytes())
        .map_err(|_| "no PKCS#8, PKCS#1 or EC private key in PEM form".to_owned())
}

/// Checks that `key` is the private key of `cert`'s certificate (before anything is stored).
pub fn check_identity(cert: &ClientCert, key: &str) -> Result<(), String> {
    let key = private_key(key)?;
    client_config(None, Some((cert.chain.clone(), key)))
        .map(|_| ())
        .map_err(|err| match err {
            CaFileError::NoCertificate { why, .. } => why,
            other => other.to_string(),
        })
}

/// HTTP clients by trust: one for providers with the defaults, one per provider with a CA file
/// or a client certificate. Each is built on first use, so a command that sends nothing never
/// reads the OS store or the keychain.
pub struct ProviderClients {
    timeout: Duration,
    default: OnceLock<reqwest::Client>,
    own: HashMap<String, OwnTrust>,
    identities: IdentitySource,
}

/// A provider's own trust: its TLS configuration, kept once built (the keychain read once; a
/// failure is tried again next time: the key may be imported or the keychain unlocked), and
/// the client built on it. The proxy's upstream connections use the same configuration.
struct OwnTrust {
    trust: ProviderTrust,
    tls: OnceLock<rustls::ClientConfig>,
    client: OnceLock<reqwest::Client>,
}

impl ProviderClients {
    /// Clients with `timeout` for the providers with trusts of their own.
    pub fn new(
        timeout: Duration,
        trusts: impl IntoIterator<Item = ProviderTrust>,
        identities: IdentitySource,
    ) -> Self {
        Self {
            timeout,
            default: OnceLock::new(),
            own: trusts
                .into_iter()
                .map(|trust| {
                    let name = trust.provider.clone();
                    let own = OwnTrust {
                        trust,
                        tls: OnceLock::new(),
                        client: OnceLock::new(),
                    };
                    (name, own)
                })
                .collect(),
            identities,
        }
    }

    /// The client for requests that belong to no provider (the proxy's own port, clocks).
    pub fn default_client(&self) -> &reqwest::Client {
        self.default
            .get_or_init(|| http_client(self.timeout, trusting(None)))
    }

    /// The client for a provider's endpoints and API. A provider whose client certificate
    /// cannot be presented (its key not in the keychain, the keychain locked) gets a client
    /// without it, so the server's refusal is what the person sees; the doctor and the proxy
    /// say why (`trouble`).
    pub fn for_provider(&self, provider: &str) -> &reqwest::Client {
        match self.own.get(provider) {
            Some(own) => own.client.get_or_init(|| {
                let tls = match self.built(own) {
                    Ok(tls) => Some(tls),
                    Err(err) => {
                        tracing::warn!(provider, "{err}");
                        trusting(own.trust.ca_file.as_deref())
                    }
                };
                http_client(self.timeout, tls)
            }),
            None => self.default_client(),
        }
    }

    /// A provider's TLS configuration, kept once built.
    fn built(&self, own: &OwnTrust) -> Result<rustls::ClientConfig, TrustError> {
        if let Some(tls) = own.tls.get() {
            return Ok(tls.clone());
        }
        let tls = own.trust.tls(&self.identities)?;
        Ok(own.tls.get_or_init(|| tls).clone())
    }

    /// Why a provider's client cannot connect, if it cannot.
    pub fn trouble(&self, provider: &str) -> Option<TrustError> {
        let own = self.own.get(provider)?;
        self.built(own).err()
    }

    /// The rustls configuration of a provider (the proxy's upstream connections use it):
    /// `Ok(None)` for the defaults.
    pub fn tls(&self, provider: &str) -> Result<Option<rustls::ClientConfig>, TrustError> {
        match self.own.get(provider) {
            Some(own) => self.built(own).map(Some),
            None => Ok(None),
        }
    }

    /// The providers with trusts of their own.
    pub fn providers(&self) -> impl Iterator<Item = &str> {
        self.own.keys().map(String::as_str)
    }
}

/// Builds the HTTP client every outbound OAuth request uses: no redirects (a redirect from a
/// token endpoint is never legitimate and following it is an SSRF risk), bounded timeouts,
/// and the trust of `tls` (built-in roots, the OS store, a provider's CA file).
pub fn http_client(timeout: Duration, tls: Option<rustls::ClientConfig>) -> reqwest::Client {
    let builder = match tls {
        Some(config) => reqwest::Client::builder().use_preconfigured_tls(config),
        None => reqwest::Client::builder(),
    };
    builder
        // The environment's proxy (HTTPS_PROXY, NO_PROXY, …), never for loopback hosts.
        .no_proxy()
        .proxy(crate::net::outbound::OutboundProxy::from_env().for_reqwest())
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .timeout(timeout)
        .user_agent(concat!("latch/", env!("CARGO_PKG_VERSION")))
        .build()
        // The builder only fails when the TLS backend cannot initialise.
        .unwrap_or_else(|_| reqwest::Client::new())
}

/// Why a CA file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum CaFileError {
    /// Unreadable.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// No certificate in it, or one rustls refuses.
    #[error("{path} holds no usable PEM certificate ({why})")]
    NoCertificate {
        /// The file.
        path: String,
        /// What was wrong.
        why: String,
    },
}

/// The certificates of a PEM file (at least one).
pub fn read_ca_file(
    path: &Path,
) -> Result<Vec<rustls_pki_types::CertificateDer<'static>>, CaFileError> {
    use rustls_pki_types::pem::PemObject as _;
    let shown = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| CaFileError::Read {
        path: shown.clone(),
        source,
    })?;
    let certs: Vec<_> = rustls_pki_types::CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<_, _>>()
        .map_err(|err| CaFileError::NoCertificate {
            path: shown.clone(),
            why: err.to_string(),
        })?;
    if certs.is_empty() {
        return Err(CaFileError::NoCertificate {
            path: shown,
            why: "no -----BEGIN CERTIFICATE----- block".to_owned(),
        });
    }
    Ok(certs)
}

/// A TLS client configuration trusting the built-in roots, the OS store and `ca_file`, and
/// presenting `identity` (a certificate chain and its key) when the server asks for one.
pub fn client_config(
    ca_file: Option<&Path>,
    identity: Option<(
        Vec<rustls_pki_types::CertificateDer<'static>>,
        rustls_pki_types::PrivateKeyDer<'static>,
    )>,
) -> Result<rustls::ClientConfig, CaFileError> {
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    // The OS store may be missing or partly unreadable; what loads is used.
    let native = rustls_native_certs::load_native_certs();
    let _ = roots.add_parsable_certificates(native.certs);
    if let Some(path) = ca_file {
        for cert in read_ca_file(path)? {
            roots.add(cert).map_err(|err| CaFileError::NoCertificate {
                path: path.display().to_string(),
                why: err.to_string(),
            })?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        // Only fails for an inconsistent provider, which the ring default is not.
        .map_err(|err| CaFileError::NoCertificate {
            path: String::new(),
            why: err.to_string(),
        })?
        .with_root_certificates(roots);
    match identity {
        None => Ok(config.with_no_client_auth()),
        Some((chain, key)) => {
            config
                .with_client_auth_cert(chain, key)
                .map_err(|err| CaFileError::NoCertificate {
                    path: String::new(),
                    why: format!("the key does not go with the certificate ({err})"),
                })
        }
    }
}

/// [`client_config`], never failing: a CA file checked when latch.toml was read but gone
/// since leaves the rest trusted, and that provider's requests fail with a certificate error.
/// `None` only if no configuration can be built at all (then the HTTP stack's own roots).
pub fn trusting(ca_file: Option<&Path>) -> Option<rustls::ClientConfig> {
    client_config(ca_file, None)
        .or_else(|_| client_config(None, None))
        .ok()
}

/// What to say about a certificate Latch does not trust (`provider` when known).
pub fn untrusted_hint(provider: Option<&str>) -> String {
    let place = provider.map_or_else(
        || "for the provider".to_owned(),
        |p| format!("under [providers.{p}]"),
    );
    format!(
        "the server's TLS certificate is not trusted; if your company's CA signs it, set \
         `ca_file` {place} in latch.toml (or add the CA to the OS trust store)"
    )
}

/// Whether an error chain is the server refusing the handshake over the client certificate
/// (none sent, or one it does not accept).
pub fn is_client_certificate_refused(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(err);
    while let Some(err) = next {
        let text = err.to_string().to_ascii_lowercase();
        if text.contains("alert")
            && [
                "certificaterequired",
                "badcertificate",
                "unknownca",
                "certificateunknown",
            ]
            .iter()
            .any(|alert| text.contains(alert))
        {
            return true;
        }
        next = err.source();
    }
    false
}

/// Whether an error chain is a certificate the client does not trust.
pub fn is_untrusted_certificate(err: &(dyn std::error::Error + 'static)) -> bool {
    if is_client_certificate_refused(err) {
        return false;
    }
    let mut next = Some(err);
    while let Some(err) = next {
        let text = err.to_string().to_ascii_lowercase();
        if text.contains("unknownissuer")
            || text.contains("unknown issuer")
            || text.contains("invalid peer certificate")
            || text.contains("certificate")
        {
            return true;
        }
        next = err.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_without_certificates_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        assert!(matches!(
            read_ca_file(&empty),
            Err(CaFileError::NoCertificate { .. })
        ));
        assert!(matches!(
            read_ca_file(&dir.path().join("missing.pem")),
            Err(CaFileError::Read { .. })
        ));
        // The built-in and OS roots alone make a configuration.
        assert!(client_config(None, None).is_ok());
    }
}

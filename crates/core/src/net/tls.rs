//! Which servers Latch trusts: Mozilla's roots (built in), the OS trust store (where companies
//! put their CA), and, for one provider only, the PEM file its `ca_file` names (a Data Center
//! instance behind an internal CA). Used by the OAuth client and by the proxy's upstream client.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// HTTP clients by trust: one for providers without a CA file, one per provider with one.
/// Each is built on first use, so a command that sends nothing never reads the OS store.
pub struct ProviderClients {
    timeout: Duration,
    default: OnceLock<reqwest::Client>,
    with_ca: HashMap<String, (PathBuf, OnceLock<reqwest::Client>)>,
}

impl ProviderClients {
    /// Clients with `timeout` for the providers named with their CA files.
    pub fn new(timeout: Duration, ca_files: impl IntoIterator<Item = (String, PathBuf)>) -> Self {
        Self {
            timeout,
            default: OnceLock::new(),
            with_ca: ca_files
                .into_iter()
                .map(|(name, path)| (name, (path, OnceLock::new())))
                .collect(),
        }
    }

    fn build(&self, ca_file: Option<&Path>) -> reqwest::Client {
        http_client(self.timeout, trusting(ca_file))
    }

    /// The client for requests that belong to no provider (the proxy's own port, clocks).
    pub fn default_client(&self) -> &reqwest::Client {
        self.default.get_or_init(|| self.build(None))
    }

    /// The client for a provider's endpoints and API.
    pub fn for_provider(&self, provider: &str) -> &reqwest::Client {
        match self.with_ca.get(provider) {
            Some((path, client)) => client.get_or_init(|| self.build(Some(path))),
            None => self.default_client(),
        }
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

/// A TLS client configuration trusting the built-in roots, the OS store and `ca_file`.
pub fn client_config(ca_file: Option<&Path>) -> Result<rustls::ClientConfig, CaFileError> {
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
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(config)
}

/// [`client_config`], never failing: a CA file checked when latch.toml was read but gone
/// since leaves the rest trusted, and that provider's requests fail with a certificate error.
/// `None` only if no configuration can be built at all (then the HTTP stack's own roots).
pub fn trusting(ca_file: Option<&Path>) -> Option<rustls::ClientConfig> {
    client_config(ca_file).or_else(|_| client_config(None)).ok()
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

/// Whether an error chain is a certificate the client does not trust.
pub fn is_untrusted_certificate(err: &(dyn std::error::Error + 'static)) -> bool {
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
        assert!(client_config(None).is_ok());
    }
}

//! The ephemeral CA of one `latch exec --intercept`: made in memory when the exec starts, gone
//! when it ends, trusted only by the child (through the bundle its environment names).
//!
//! What bounds it, should its key leak while the exec runs: critical name constraints that
//! permit exactly the intercepted host names (a dNSName constraint also permits subdomains) and
//! exclude every IP address, path length 0 (it signs leaves, never another CA), and a lifetime of
//! a day. Leaves are minted per host on first use, serverAuth only.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use rcgen::{
    BasicConstraints, CertificateParams, CidrSubnet, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, GeneralSubtree, IsCa, KeyPair, KeyUsagePurpose, NameConstraints,
    SanType,
};
use time::{Duration, OffsetDateTime};

/// How long the CA is valid: longer than most execs, short enough that a copy of it is soon
/// worthless. Its key never leaves this process.
const CA_LIFETIME: Duration = Duration::hours(24);
/// Clock skew between this process and the child's checks.
const SKEW: Duration = Duration::minutes(5);

/// Why the CA or a leaf could not be made.
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    /// rcgen refused the parameters (a host that is not a DNS name).
    #[error("cannot make the exec's certificate: {0}")]
    Certificate(#[from] rcgen::Error),
    /// rustls refused the leaf.
    #[error("cannot use the exec's certificate: {0}")]
    Tls(#[from] rustls::Error),
}

/// A CA that signs leaves for a fixed set of host names.
pub struct EphemeralCa {
    ca: rcgen::Certificate,
    ca_key: KeyPair,
    /// One key for every leaf: they all live in this process, as long as the CA.
    leaf_key: KeyPair,
    hosts: Vec<String>,
    not_after: OffsetDateTime,
    servers: Mutex<HashMap<String, Arc<rustls::ServerConfig>>>,
}

impl std::fmt::Debug for EphemeralCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EphemeralCa")
            .field("hosts", &self.hosts)
            .finish_non_exhaustive()
    }
}

impl EphemeralCa {
    /// A new CA whose leaves may only name `hosts`.
    pub fn new(hosts: &[String]) -> Result<Self, CaError> {
        let now = OffsetDateTime::now_utc();
        let ca_key = KeyPair::generate()?;
        let mut params = CertificateParams::default();
        let mut name = DistinguishedName::new();
        name.push(DnType::CommonName, "Latch exec --intercept (ephemeral)");
        params.distinguished_name = name;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.name_constraints = Some(NameConstraints {
            permitted_subtrees: hosts
                .iter()
                .map(|h| GeneralSubtree::DnsName(h.clone()))
                .collect(),
            excluded_subtrees: vec![
                GeneralSubtree::IpAddress(CidrSubnet::V4([0; 4], [0; 4])),
                GeneralSubtree::IpAddress(CidrSubnet::V6([0; 16], [0; 16])),
            ],
        });
        params.not_before = now - SKEW;
        params.not_after = now + CA_LIFETIME;
        params.serial_number = Some(random_serial());
        let ca = params.self_signed(&ca_key)?;
        Ok(Self {
            ca,
            ca_key,
            leaf_key: KeyPair::generate()?,
            hosts: hosts.to_vec(),
            not_after: now + CA_LIFETIME,
            servers: Mutex::new(HashMap::new()),
        })
    }

    /// The CA certificate, PEM: what the child's bundle adds.
    pub fn pem(&self) -> String {
        self.ca.pem()
    }

    /// A leaf for `host` (any name: the tests mint ones the constraints refuse).
    pub(crate) fn leaf(&self, host: &str) -> Result<rcgen::Certificate, CaError> {
        let now = OffsetDateTime::now_utc();
        let mut params = CertificateParams::default();
        let mut name = DistinguishedName::new();
        name.push(DnType::CommonName, host);
        params.distinguished_name = name;
        params.subject_alt_names = vec![match host.parse::<std::net::IpAddr>() {
            Ok(ip) => SanType::IpAddress(ip),
            Err(_) => SanType::DnsName(host.try_into()?),
        }];
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        params.not_before = now - SKEW;
        params.not_after = self.not_after;
        params.serial_number = Some(random_serial());
        Ok(params.signed_by(&self.leaf_key, &self.ca, &self.ca_key)?)
    }

    /// The TLS server side for a tunnel to `host`: its leaf, HTTP/1.1 only, no early data.
    pub(crate) fn server(&self, host: &str) -> Result<Arc<rustls::ServerConfig>, CaError> {
        let host = host.to_ascii_lowercase();
        let mut servers = self.servers.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(config) = servers.get(&host) {
            return Ok(Arc::clone(config));
        }
        let leaf = self.leaf(&host)?;
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(self.leaf_key.serialize_der().into());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(vec![leaf.der().clone()], key)?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        config.max_early_data_size = 0;
        let config = Arc::new(config);
        servers.insert(host, Arc::clone(&config));
        Ok(config)
    }
}

fn random_serial() -> rcgen::SerialNumber {
    let mut bytes = [0u8; 16];
    rustls::crypto::ring::default_provider()
        .secure_random
        .fill(&mut bytes)
        .unwrap_or_default();
    // Positive, as DER integers for serials must be.
    bytes[0] &= 0x7f;
    rcgen::SerialNumber::from_slice(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// `openssl verify` of `leaf` against the CA as the only trust anchor.
    fn openssl_verify(ca: &EphemeralCa, leaf: &str, name: Option<&str>) -> (bool, String) {
        let dir = tempfile::tempdir().unwrap();
        let ca_file = dir.path().join("ca.pem");
        let leaf_file = dir.path().join("leaf.pem");
        std::fs::write(&ca_file, ca.pem()).unwrap();
        std::fs::write(&leaf_file, leaf).unwrap();
        let mut cmd = Command::new("openssl");
        cmd.arg("verify")
            .arg("-x509_strict")
            .arg("-purpose")
            .arg("sslserver")
            .arg("-CAfile")
            .arg(&ca_file);
        if let Some(name) = name {
            cmd.arg("-verify_hostname").arg(name);
        }
        let out = cmd.arg(&leaf_file).output().expect("openssl");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }

    fn text_of(pem: &str) -> String {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.pem");
        std::fs::write(&file, pem).unwrap();
        let out = Command::new("openssl")
            .args(["x509", "-noout", "-text", "-in"])
            .arg(&file)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    #[test]
    fn openssl_enforces_the_constraints() {
        let ca =
            EphemeralCa::new(&["acme.atlassian.net".into(), "api.atlassian.com".into()]).unwrap();
        let ca_text = text_of(&ca.pem());
        assert!(
            ca_text.contains("X509v3 Name Constraints: critical"),
            "{ca_text}"
        );
        assert!(ca_text.contains("pathlen:0"), "{ca_text}");
        assert!(ca_text.contains("Excluded:"), "{ca_text}");
        assert!(ca_text.contains("IP:0.0.0.0/0.0.0.0"), "{ca_text}");

        let good = ca.leaf("acme.atlassian.net").unwrap().pem();
        let (ok, why) = openssl_verify(&ca, &good, Some("acme.atlassian.net"));
        assert!(ok, "{why}");
        let leaf_text = text_of(&good);
        assert!(
            leaf_text.contains("TLS Web Server Authentication"),
            "{leaf_text}"
        );
        assert!(leaf_text.contains("CA:FALSE"), "{leaf_text}");

        // A subdomain is inside a dNSName constraint (documented); another name is not.
        let sub = ca.leaf("x.api.atlassian.com").unwrap().pem();
        assert!(openssl_verify(&ca, &sub, None).0);
        let (ok, why) = openssl_verify(&ca, &ca.leaf("evil.example").unwrap().pem(), None);
        assert!(!ok, "a name outside the constraints verified");
        assert!(why.contains("permitted subtree violation"), "{why}");
        let (ok, why) = openssl_verify(&ca, &ca.leaf("127.0.0.1").unwrap().pem(), None);
        assert!(!ok, "an IP address verified");
        assert!(
            why.contains("excluded subtree violation") || why.contains("permitted subtree"),
            "{why}"
        );

        // Path length 0: a CA under it cannot sign anything the child would trust.
        let sub_key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec!["acme.atlassian.net".to_owned()]).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign];
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, "a CA under the exec's");
        let sub_ca = params.signed_by(&sub_key, &ca.ca, &ca.ca_key).unwrap();
        let leaf_key = KeyPair::generate().unwrap();
        let mut leaf = CertificateParams::new(vec!["acme.atlassian.net".to_owned()]).unwrap();
        leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        leaf.distinguished_name = DistinguishedName::new();
        leaf.distinguished_name
            .push(DnType::CommonName, "acme.atlassian.net");
        let leaf = leaf.signed_by(&leaf_key, &sub_ca, &sub_key).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let chain = dir.path().join("chain.pem");
        std::fs::write(&chain, sub_ca.pem()).unwrap();
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, ca.pem()).unwrap();
        let leaf_file = dir.path().join("leaf.pem");
        std::fs::write(&leaf_file, leaf.pem()).unwrap();
        let out = Command::new("openssl")
            .args(["verify", "-CAfile"])
            .arg(&ca_file)
            .arg("-untrusted")
            .arg(&chain)
            .arg(&leaf_file)
            .output()
            .unwrap();
        let why = String::from_utf8_lossy(&out.stderr).into_owned()
            + &String::from_utf8_lossy(&out.stdout);
        assert!(!out.status.success(), "a second-level CA verified");
        assert!(why.contains("path length"), "{why}");
    }
}

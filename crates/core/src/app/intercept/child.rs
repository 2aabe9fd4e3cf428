//! What an intercepting exec's child gets: the proxy in the variables every HTTP stack reads,
//! the ephemeral CA in a bundle only its environment names, Node's fetch routed by a preload,
//! and git's own proxy setting overridden. All of it in a private directory that goes when the
//! exec ends.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use base64::Engine as _;

use crate::secret::Secret;

/// Set in the child: `latch git-credential` answers git with a dummy password under intercept,
/// so git never holds the real token (the proxy adds it).
pub const INTERCEPT_MARK: &str = "LATCH_INTERCEPT";

/// The variables TLS stacks read for their trust anchors: curl, OpenSSL, Python `requests`,
/// Node and git.
const BUNDLE_VARIABLES: [&str; 5] = [
    "SSL_CERT_FILE",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "NODE_EXTRA_CA_CERTS",
    "GIT_SSL_CAINFO",
];

const NODE_PRELOAD: &str = include_str!("node_preload.cjs");

/// A new password for the child's proxy (24 random bytes, URL-safe: it goes in a proxy URL).
pub fn proxy_password() -> Secret {
    Secret::new(crate::net::oauth::random_token(24))
}

/// The child's side of an intercepting exec. Dropping it removes the directory.
pub struct ChildSetup {
    dir: PathBuf,
    /// Variables to set in the child.
    pub env: Vec<(String, Secret)>,
}

impl Drop for ChildSetup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl ChildSetup {
    /// The private directory (0700) holding the bundle and the preload.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes the bundle and the preload, and fills the child's variables; `hosts` are the
    /// intercepted names (`InterceptMap::host_names`). `inherited` reads
    /// this process's environment (what the child would otherwise inherit).
    pub fn prepare(
        proxy: std::net::SocketAddr,
        password: &Secret,
        ca_pem: &str,
        hosts: &[String],
        inherited: &dyn Fn(&str) -> Option<String>,
    ) -> std::io::Result<Self> {
        let dir = private_dir()?;
        let setup = Self {
            dir,
            env: Vec::new(),
        };
        let bundle = setup.dir.join("ca-bundle.pem");
        write_private(&bundle, bundle_text(ca_pem, inherited).as_bytes())?;
        let preload = setup.dir.join("latch-node.cjs");
        write_private(&preload, NODE_PRELOAD.as_bytes())?;
        let mut setup = setup;
        let url = Secret::new(format!("http://latch:{}@{proxy}", password.expose()));
        let mut env = Vec::new();
        for name in ["HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"] {
            env.push((name.to_owned(), url.clone()));
        }
        let no_proxy = no_proxy(
            inherited("NO_PROXY")
                .or_else(|| inherited("no_proxy"))
                .as_deref(),
            hosts,
        );
        env.push(("NO_PROXY".to_owned(), Secret::new(no_proxy.clone())));
        env.push(("no_proxy".to_owned(), Secret::new(no_proxy)));
        for name in BUNDLE_VARIABLES {
            env.push((
                name.to_owned(),
                Secret::new(bundle.to_string_lossy().into_owned()),
            ));
        }
        // Appended: a NODE_OPTIONS the person set still applies.
        let require = format!("--require \"{}\"", preload.display());
        let node_options = match inherited("NODE_OPTIONS").filter(|o| !o.trim().is_empty()) {
            Some(options) => format!("{options} {require}"),
            None => require,
        };
        env.push(("NODE_OPTIONS".to_owned(), Secret::new(node_options)));
        // git reads `http.proxy` from its configuration before the environment: a person's
        // own proxy setting is overridden for this child only (git 2.31+ reads these).
        let count = inherited("GIT_CONFIG_COUNT")
            .and_then(|c| c.parse::<usize>().ok())
            .unwrap_or(0);
        env.push((
            format!("GIT_CONFIG_KEY_{count}"),
            Secret::new("http.proxy".to_owned()),
        ));
        env.push((format!("GIT_CONFIG_VALUE_{count}"), url));
        env.push((
            "GIT_CONFIG_COUNT".to_owned(),
            Secret::new((count + 1).to_string()),
        ));
        env.push((INTERCEPT_MARK.to_owned(), Secret::new("1".to_owned())));
        setup.env = env;
        Ok(setup)
    }
}

/// A directory only this user can enter, under the runtime directory when there is one.
fn private_dir() -> std::io::Result<PathBuf> {
    let parent = std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .filter(|p| p.is_dir())
        .unwrap_or_else(std::env::temp_dir);
    for _ in 0..8 {
        let dir = parent.join(format!(
            "latch-exec-{}",
            crate::net::oauth::random_token(12)
        ));
        let mut builder = std::fs::DirBuilder::new();
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt as _;
            builder.mode(0o700);
        }
        match builder.create(&dir) {
            Ok(()) => return Ok(dir),
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(err) => return Err(err),
        }
    }
    Err(std::io::Error::other("cannot make a private directory"))
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    options.open(path)?.write_all(bytes)
}

/// The OS roots, every bundle the child's variables already named (a company's CA), then the
/// exec's CA.
fn bundle_text(ca_pem: &str, inherited: &dyn Fn(&str) -> Option<String>) -> String {
    let mut text = String::new();
    // The OS store can list a root twice (a bundle file and a hashed directory): every copy
    // costs each TLS client of the child time to parse.
    let mut seen = std::collections::HashSet::new();
    for cert in rustls_native_certs::load_native_certs().certs {
        if !seen.insert(cert.as_ref().to_vec()) {
            continue;
        }
        let encoded = base64::engine::general_purpose::STANDARD.encode(cert.as_ref());
        text.push_str("-----BEGIN CERTIFICATE-----\n");
        for line in encoded.as_bytes().chunks(64) {
            text.push_str(&String::from_utf8_lossy(line));
            text.push('\n');
        }
        text.push_str("-----END CERTIFICATE-----\n");
    }
    let mut read: Vec<String> = Vec::new();
    for name in BUNDLE_VARIABLES {
        let Some(path) = inherited(name).filter(|p| !p.is_empty()) else {
            continue;
        };
        if read.contains(&path) {
            continue;
        }
        if let Ok(more) = std::fs::read_to_string(&path) {
            text.push_str(&format!("# from {name}={path}\n"));
            for block in pem_blocks(&more) {
                let der = base64::engine::general_purpose::STANDARD.decode(
                    block
                        .lines()
                        .filter(|l| !l.starts_with("-----"))
                        .collect::<String>(),
                );
                if der.is_ok_and(|der| seen.insert(der)) {
                    text.push_str(block);
                    text.push('\n');
                }
            }
        }
        read.push(path);
    }
    text.push_str("# latch exec --intercept (ephemeral, this exec only)\n");
    text.push_str(ca_pem);
    text
}

/// The `CERTIFICATE` blocks of a PEM file, whole.
fn pem_blocks(text: &str) -> impl Iterator<Item = &str> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let mut rest = text;
    std::iter::from_fn(move || {
        let start = rest.find(BEGIN)?;
        let end = rest[start..].find(END)? + start + END.len();
        let block = &rest[start..end];
        rest = &rest[end..];
        Some(block)
    })
}

/// An inherited `NO_PROXY` without the entries that would keep the connectors' hosts off the
/// proxy (the host, a domain above it, `*`), plus loopback.
fn no_proxy(inherited: Option<&str>, hosts: &[String]) -> String {
    let covers = |entry: &str| {
        let entry = entry.trim().to_ascii_lowercase();
        let domain = entry.trim_start_matches("*.").trim_start_matches('.');
        let domain = domain.split(':').next().unwrap_or(domain);
        entry == "*"
            || hosts
                .iter()
                .any(|h| h == domain || h.ends_with(&format!(".{domain}")))
    };
    let mut kept: Vec<String> = inherited
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty() && !covers(e))
        .map(str::to_owned)
        .collect();
    for local in ["localhost", "127.0.0.1", "::1"] {
        if !kept.iter().any(|k| k == local) {
            kept.push(local.to_owned());
        }
    }
    kept.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::intercept::InterceptMap;
    use crate::config::Config;

    #[test]
    fn the_child_gets_the_proxy_the_bundle_and_nothing_that_keeps_hosts_off_it() {
        let config = Config::parse(
            Path::new("/h/latch.toml"),
            "[providers.atlassian]\nclient_id = \"c\"\n\n[connectors.jira]\nsite = \"acme\"\n"
                .to_owned(),
        )
        .unwrap();
        let map = InterceptMap::build(&config, &config.connectors).unwrap();
        assert_eq!(
            no_proxy(
                Some("internal.corp, .atlassian.net,api.atlassian.com:443,*,localhost"),
                &map.host_names()
            ),
            "internal.corp,localhost,127.0.0.1,::1"
        );
        let company = tempfile::NamedTempFile::new().unwrap();
        // A company CA, listed twice (bundles repeat themselves): it goes in once.
        let block = "-----BEGIN CERTIFICATE-----\nQ09NUEFOWS1DQQ==\n-----END CERTIFICATE-----\n";
        std::fs::write(company.path(), format!("# corp\n{block}{block}")).unwrap();
        let company_path = company.path().to_string_lossy().into_owned();
        let inherited = |name: &str| match name {
            "NODE_OPTIONS" => Some("--max-old-space-size=100".to_owned()),
            "REQUESTS_CA_BUNDLE" => Some(company_path.clone()),
            "GIT_CONFIG_COUNT" => Some("2".to_owned()),
            _ => None,
        };
        let password = Secret::new("pw".to_owned());
        let setup = ChildSetup::prepare(
            "127.0.0.1:9".parse().unwrap(),
            &password,
            "THE-CA\n",
            &map.host_names(),
            &inherited,
        )
        .unwrap();
        let get = |name: &str| {
            setup
                .env
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.expose().to_owned())
                .unwrap()
        };
        assert_eq!(get("HTTPS_PROXY"), "http://latch:pw@127.0.0.1:9");
        assert_eq!(get("GIT_CONFIG_KEY_2"), "http.proxy");
        assert_eq!(get("GIT_CONFIG_COUNT"), "3");
        assert!(get("NODE_OPTIONS").starts_with("--max-old-space-size=100 --require \""));
        let bundle = std::fs::read_to_string(get("SSL_CERT_FILE")).unwrap();
        assert_eq!(bundle.matches("Q09NUEFOWS1DQQ==").count(), 1, "{bundle}");
        assert!(bundle.ends_with("THE-CA\n"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(setup.dir()), 0o700);
            assert_eq!(mode(Path::new(&get("SSL_CERT_FILE"))), 0o600);
        }
        let dir = setup.dir().to_owned();
        drop(setup);
        assert!(!dir.exists(), "the directory goes with the exec");
    }
}

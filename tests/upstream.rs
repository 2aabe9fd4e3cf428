//! The proxy's upstream connections (issue 24) against Debian's nginx with TLS in front of the
//! fixture's Data Center instance: warm connections shared by tool connections that each open
//! a connection per request (`curl` processes), never across trusts or client certificates,
//! closed after the idle bound; HTTP/2 when the upstream offers it; client certificates (mTLS)
//! on the proxy's and the token endpoint's connections, and the doctor's word on their expiry.
//! nginx's access log says which connection (`$connection`), protocol, credential and client
//! certificate each request came with.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::datacenter::{add_pat_and_service_account, add_service_account, test_ca, DC_PAT};
use crate::support::{curl, error_code, free_port, stderr, Fixture, Home, Serve};

/// nginx, one process (`master_process off`, so it runs as whoever runs the tests), its files
/// in a temporary prefix; stopped on drop.
struct Nginx {
    child: Child,
    dir: tempfile::TempDir,
}

impl Nginx {
    /// nginx serving `servers` (server blocks), once every port in `ports` accepts.
    fn start(servers: &str, ports: &[u16]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().display();
        let conf = format!(
            "master_process off; daemon off; pid {p}/nginx.pid; error_log stderr;\n\
             events {{ worker_connections 256; }}\n\
             http {{\n\
               log_format pool '$connection $server_port $server_protocol \"$http_authorization\" \"$ssl_client_s_dn\" $request_uri';\n\
               access_log {p}/access.log pool;\n\
               client_body_temp_path {p}/body; proxy_temp_path {p}/proxy;\n\
               fastcgi_temp_path {p}/fastcgi; uwsgi_temp_path {p}/uwsgi; scgi_temp_path {p}/scgi;\n\
               {servers}\n\
             }}\n"
        );
        std::fs::write(dir.path().join("nginx.conf"), conf).unwrap();
        let binary = if Path::new("/usr/sbin/nginx").exists() {
            "/usr/sbin/nginx"
        } else {
            "nginx"
        };
        let mut child = Command::new(binary)
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(dir.path().join("nginx.conf"))
            .args(["-e", "stderr"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("nginx (installed by `make deps`)");
        let deadline = Instant::now() + Duration::from_secs(20);
        for port in ports {
            while std::net::TcpStream::connect(("127.0.0.1", *port)).is_err() {
                if let Ok(Some(status)) = child.try_wait() {
                    let mut text = String::new();
                    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut text)
                        .unwrap();
                    panic!("nginx exited ({status}): {text}");
                }
                assert!(Instant::now() < deadline, "nginx did not listen on {port}");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        Self { child, dir }
    }

    /// The access log's rows from line `from` on.
    fn rows(&self, from: usize) -> Vec<Row> {
        std::fs::read_to_string(self.dir.path().join("access.log"))
            .unwrap_or_default()
            .lines()
            .skip(from)
            .map(Row::parse)
            .collect()
    }

    fn lines(&self) -> usize {
        self.rows(0).len()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One access-log line.
#[derive(Debug)]
struct Row {
    connection: u64,
    port: u16,
    protocol: String,
    authorization: String,
    client_dn: String,
    uri: String,
}

impl Row {
    fn parse(line: &str) -> Self {
        let quoted: Vec<&str> = line.split('"').collect();
        let head: Vec<&str> = quoted[0].split_whitespace().collect();
        Self {
            connection: head[0].parse().unwrap(),
            port: head[1].parse().unwrap(),
            protocol: head[2].to_owned(),
            authorization: quoted[1].to_owned(),
            client_dn: quoted[3].to_owned(),
            uri: quoted[4].trim().to_owned(),
        }
    }
}

/// A TLS server block in front of the fixture.
fn server(
    port: u16,
    h2: bool,
    tls: &(PathBuf, PathBuf, PathBuf),
    extra: &str,
    fixture: &Fixture,
) -> String {
    format!(
        "server {{ listen 127.0.0.1:{port} ssl{}; ssl_certificate {}; ssl_certificate_key {}; \
         keepalive_timeout 300s; keepalive_requests 10000; {extra} \
         location / {{ proxy_pass {}; proxy_http_version 1.1; proxy_set_header Connection \"\"; }} }}",
        if h2 { " http2" } else { "" },
        tls.1.display(),
        tls.2.display(),
        fixture.base,
    )
}

/// An HTTP/1.1 gateway in front of the fixture that asks for a client certificate signed by
/// `client_ca` (`verify`: `optional` or `on`), and its port.
fn gateway(
    fixture: &Fixture,
    tls: &(PathBuf, PathBuf, PathBuf),
    client_ca: &Path,
    verify: &str,
) -> (Nginx, u16) {
    let port = free_port();
    let extra = format!(
        "ssl_client_certificate {}; ssl_verify_client {verify};",
        client_ca.display()
    );
    (
        Nginx::start(&server(port, false, tls, &extra, fixture), &[port]),
        port,
    )
}

/// A client CA and a client certificate it signs (CN `latch-test-client`), ending in
/// `valid_days`: (ca, cert, key, the other key that does not fit).
fn client_identity(dir: &Path, valid_days: i64) -> (PathBuf, PathBuf, PathBuf, PathBuf) {
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "Latch Test Client CA");
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let mut leaf = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    leaf.distinguished_name
        .push(rcgen::DnType::CommonName, "latch-test-client");
    leaf.not_before = time::OffsetDateTime::now_utc() - time::Duration::days(1);
    leaf.not_after = time::OffsetDateTime::now_utc() + time::Duration::days(valid_days);
    leaf.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf_cert = leaf.signed_by(&leaf_key, &ca_cert, &ca_key).unwrap();
    let other = rcgen::KeyPair::generate().unwrap();
    let paths = (
        dir.join(format!("client-ca-{valid_days}.pem")),
        dir.join(format!("client-{valid_days}.pem")),
        dir.join(format!("client-{valid_days}.key")),
        dir.join(format!("other-{valid_days}.key")),
    );
    std::fs::write(&paths.0, ca_cert.pem()).unwrap();
    std::fs::write(&paths.1, leaf_cert.pem()).unwrap();
    std::fs::write(&paths.2, leaf_key.serialize_pem()).unwrap();
    std::fs::write(&paths.3, other.serialize_pem()).unwrap();
    paths
}

/// `latch provider client-cert PROVIDER --cert CERT --key KEY [extra]`.
fn client_cert(
    home: &Home,
    provider: &str,
    cert: &Path,
    key: &Path,
    extra: &[&str],
) -> std::process::Output {
    let mut args = vec![
        "provider",
        "client-cert",
        provider,
        "--cert",
        cert.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    home.run(&args, "")
}

fn add_provider(home: &Home, name: &str, base: &str, ca: &Path) {
    home.ok(
        &[
            "provider",
            "add",
            name,
            "--preset",
            "jira-dc",
            "--base-url",
            base,
            "--ca-file",
            ca.to_str().unwrap(),
        ],
        "",
    );
}

fn get(serve: &Serve, key: &str, path: &str) -> (u16, String) {
    curl(&[
        "-H",
        &format!("Authorization: Bearer {key}"),
        &serve.url(path),
    ])
}

/// Warm connections: four `curl` processes (a connection each) on two connectors of one
/// provider reach the upstream over one TLS connection, each with its own credential; a second
/// provider on the same host with a client certificate never shares it; HTTP/1.1 here.
#[test]
fn tool_connections_share_a_warm_upstream_connection_within_one_trust_only() {
    let fixture = Fixture::start();
    let certs = tempfile::tempdir().unwrap();
    let tls = test_ca(certs.path());
    let client = client_identity(certs.path(), 365);
    let (nginx, port) = gateway(&fixture, &tls, &client.0, "optional");
    let base = format!("https://localhost:{port}/dc");
    let home = Home::new();
    add_provider(&home, "corp-jira", &base, &tls.0);
    add_pat_and_service_account(&home);
    add_provider(&home, "corp-mtls", &base, &tls.0);
    let out = client_cert(&home, "corp-mtls", &client.1, &client.2, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    home.ok(
        &[
            "connector",
            "add",
            "mtls-pat",
            "--type",
            "jira-dc",
            "--provider",
            "corp-mtls",
            "--auth",
            "pat",
        ],
        "",
    );
    home.ok(&["credential", "set", "mtls-pat"], DC_PAT);
    let key = home.key_for("k", &["dc-pat", "dc-svc", "mtls-pat"]);
    let serve = Serve::start(&home);
    let from = nginx.lines();
    for path in [
        "/dc-pat/rest/api/2/myself",
        "/dc-pat/rest/api/2/myself",
        "/dc-svc/rest/api/2/myself",
        "/dc-pat/rest/api/2/myself",
        "/mtls-pat/rest/api/2/myself",
        "/mtls-pat/rest/api/2/myself",
    ] {
        let (status, body) = get(&serve, &key, path);
        assert_eq!(status, 200, "{path}: {body}");
    }
    let rows: Vec<Row> = nginx
        .rows(from)
        .into_iter()
        .filter(|r| r.uri.ends_with("/rest/api/2/myself"))
        .collect();
    assert_eq!(rows.len(), 6, "{rows:#?}");
    let (plain, mtls) = rows.split_at(4);
    // One upstream connection for four tool connections of one trust.
    assert!(
        plain.iter().all(|r| r.connection == plain[0].connection),
        "{rows:#?}"
    );
    assert!(plain.iter().all(|r| r.protocol == "HTTP/1.1"), "{rows:#?}");
    // Each request with its own credential: the PAT, then the service account's token.
    assert_eq!(plain[0].authorization, format!("Bearer {DC_PAT}"));
    assert_eq!(plain[3].authorization, format!("Bearer {DC_PAT}"));
    assert!(
        plain[2].authorization.starts_with("Bearer ") && !plain[2].authorization.contains(DC_PAT),
        "{rows:#?}"
    );
    // No client certificate on the first trust's connection; the second trust's own
    // connection presents one, and is shared by its own requests only.
    assert!(
        plain
            .iter()
            .all(|r| r.client_dn.is_empty() || r.client_dn == "-"),
        "{rows:#?}"
    );
    assert!(
        mtls.iter()
            .all(|r| r.client_dn.contains("latch-test-client")),
        "{rows:#?}"
    );
    assert!(
        mtls.iter().all(|r| r.connection != plain[0].connection),
        "{rows:#?}"
    );
    assert_eq!(mtls[0].connection, mtls[1].connection, "{rows:#?}");
    assert!(rows.iter().all(|r| r.port == port));
}

/// HTTP/2 when the upstream offers it by ALPN: tool connections share one HTTP/2 connection;
/// after the idle bound (`[network] upstream_idle_secs = 1`) the proxy closes it, and the next
/// request opens another.
#[test]
fn http2_when_offered_and_idle_connections_close_after_the_bound() {
    let fixture = Fixture::start();
    let certs = tempfile::tempdir().unwrap();
    let tls = test_ca(certs.path());
    let port = free_port();
    let nginx = Nginx::start(&server(port, true, &tls, "", &fixture), &[port]);
    let home = Home::new();
    add_provider(
        &home,
        "corp-jira",
        &format!("https://localhost:{port}/dc"),
        &tls.0,
    );
    add_pat_and_service_account(&home);
    home.append_config("\n[network]\nupstream_idle_secs = 1\n");
    let key = home.key_for("k", &["dc-pat"]);
    let serve = Serve::start(&home);
    let from = nginx.lines();
    for _ in 0..3 {
        let (status, body) = get(&serve, &key, "/dc-pat/rest/api/2/myself");
        assert_eq!(status, 200, "{body}");
    }
    let rows = nginx.rows(from);
    assert_eq!(rows.len(), 3, "{rows:#?}");
    assert!(rows.iter().all(|r| r.protocol == "HTTP/2.0"), "{rows:#?}");
    assert!(
        rows.iter().all(|r| r.connection == rows[0].connection),
        "{rows:#?}"
    );

    // The proxy closes the idle connection once the bound has passed: its socket to nginx
    // goes away (watched, not slept on).
    let deadline = Instant::now() + Duration::from_secs(15);
    while upstream_sockets(serve.pid(), port) > 0 {
        assert!(
            Instant::now() < deadline,
            "the idle connection was not closed"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let (status, body) = get(&serve, &key, "/dc-pat/rest/api/2/myself");
    assert_eq!(status, 200, "{body}");
    let after = nginx.rows(from);
    assert_eq!(after.len(), 4, "{after:#?}");
    assert_ne!(after[3].connection, rows[0].connection, "{after:#?}");
}

/// How many established TCP connections process `pid` holds to `port` on loopback.
fn upstream_sockets(pid: u32, port: u16) -> usize {
    let inodes: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|dir| {
            dir.flatten()
                .filter_map(|fd| std::fs::read_link(fd.path()).ok())
                .filter_map(|target| {
                    let target = target.to_string_lossy().into_owned();
                    target
                        .strip_prefix("socket:[")
                        .map(|rest| rest.trim_end_matches(']').to_owned())
                })
                .collect()
        })
        .unwrap_or_default();
    let table = std::fs::read_to_string(format!("/proc/{pid}/net/tcp")).unwrap_or_default();
    let wanted = format!(":{port:04X}");
    table
        .lines()
        .skip(1)
        .filter(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            cols.len() > 9
                && cols[2].ends_with(&wanted)
                && cols[3] == "01"
                && inodes.contains(&cols[9].to_owned())
        })
        .count()
}

/// A gateway that requires a client certificate (`ssl_verify_client on`): refused without one;
/// a key that does not fit is refused before anything is stored; with the certificate the
/// proxy, the credential check and the service account's token endpoint all get through; the
/// doctor says when it ends; a key gone from the keychain is a clear refusal, not a silent
/// connection without it.
#[test]
fn client_certificates_reach_a_gateway_that_requires_one() {
    let fixture = Fixture::start();
    let certs = tempfile::tempdir().unwrap();
    let tls = test_ca(certs.path());
    let client = client_identity(certs.path(), 10);
    let (_nginx, port) = gateway(&fixture, &tls, &client.0, "on");
    let home = Home::new();
    add_provider(
        &home,
        "corp-jira",
        &format!("https://localhost:{port}/dc"),
        &tls.0,
    );
    crate::datacenter::add_pat_connector(&home);
    // Without a certificate the gateway says no (nginx: 400), and the check says so.
    let out = home.run(&["credential", "set", "dc-pat", "--json"], DC_PAT);
    let stored: serde_json::Value = serde_json::from_str(&crate::support::stdout(&out)).unwrap();
    assert_ne!(stored["check"]["result"], "ok", "{stored}");

    // A key that is not the certificate's: refused, latch.toml untouched.
    let before = std::fs::read_to_string(home.file("latch.toml")).unwrap();
    let out = client_cert(&home, "corp-jira", &client.1, &client.3, &[]);
    assert_ne!(out.status.code(), Some(0));
    assert!(stderr(&out).contains("does not fit"), "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(home.file("latch.toml")).unwrap(),
        before
    );

    let out = client_cert(&home, "corp-jira", &client.1, &client.2, &["--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let set: serde_json::Value = serde_json::from_str(&crate::support::stdout(&out)).unwrap();
    assert!(
        set["subject"]
            .as_str()
            .unwrap()
            .contains("latch-test-client"),
        "{set}"
    );
    let providers = home.json(&["provider", "list", "--json"]);
    assert!(
        providers[0]["client_cert"]["subject"]
            .as_str()
            .is_some_and(|s| s.contains("latch-test-client")),
        "{providers}"
    );
    let config = std::fs::read_to_string(home.file("latch.toml")).unwrap();
    assert!(config.contains("client_cert = "), "{config}");
    assert!(!config.contains("PRIVATE KEY"), "{config}");
    // The PAT's check and the service account's token endpoint go through the gateway.
    let out = home.ok(&["credential", "set", "dc-pat", "--json"], DC_PAT);
    let stored: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(stored["check"]["result"], "ok", "{stored}");
    add_service_account(&home);

    let key = home.key_for("k", &["dc-pat", "dc-svc"]);
    let serve = Serve::start(&home);
    for path in ["/dc-pat/rest/api/2/myself", "/dc-svc/rest/api/2/myself"] {
        let (status, body) = get(&serve, &key, path);
        assert_eq!(status, 200, "{path}: {body}");
    }
    // The doctor: ten days left is a warning with the way to renew.
    let report = home.json(&["doctor", "--offline", "--json"]);
    let findings = report["findings"].as_array().unwrap();
    let near = findings
        .iter()
        .find(|f| f["code"] == "client_cert_expiry_near")
        .unwrap_or_else(|| panic!("{report}"));
    assert!(near["fix"]
        .as_str()
        .unwrap()
        .contains("latch provider client-cert corp-jira"));
    serve.stop();

    // The key gone from the keychain: the proxy refuses and says how to import it again.
    let home_id = home.json(&["status", "--json"])["home"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let item = format!("{home_id}/provider/corp-jira/client-cert-key");
    assert!(
        crate::support::keychain_lookup(&item).is_some(),
        "the key is in the keychain"
    );
    let out = Command::new("secret-tool")
        .args(["clear", "service", "latch", "username", &item])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let serve = Serve::start(&home);
    let (status, body) = get(&serve, &key, "/dc-pat/rest/api/2/myself");
    assert_eq!(status, 502, "{body}");
    assert_eq!(error_code(&body), "client_certificate_refused", "{body}");
    assert!(
        body.contains("latch provider client-cert corp-jira"),
        "{body}"
    );
    // An error finding: the doctor exits non-zero and says what is missing.
    let out = home.run(&["doctor", "--offline", "--json"], "");
    assert_ne!(out.status.code(), Some(0));
    let report: serde_json::Value = serde_json::from_str(&crate::support::stdout(&out)).unwrap();
    assert!(
        report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["code"] == "client_cert_key_missing"),
        "{report}"
    );
}

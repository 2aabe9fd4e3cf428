//! Jira, Confluence and Bitbucket Data Center through the README's commands, against the
//! fixture's Data Center instance at `/dc` (an incoming link whose refresh needs the
//! `redirect_uri` and invalidates both old tokens, a service account, a PAT, Basic).

use crate::support::{
    connector_in, curl, python_requests_ok, run_with_stdin, stderr, stdout, Fixture, Home, Serve,
};

const DC_CLIENT_ID: &str = "dc-link-client";
const DC_CLIENT_SECRET: &str = "dc-link-secret-fixture-81";
const DC_SVC_CLIENT_ID: &str = "dc-svc-client";
const DC_SVC_CLIENT_SECRET: &str = "dc-svc-secret-fixture-82";
pub(crate) const DC_PAT: &str = "dc-pat-fixture-61";
const DC_PASSWORD: &str = "dc-password-fixture-72";

/// The README's Data Center recipe: a provider per instance (`--preset jira-dc --base-url`),
/// connectors that find it by themselves, one sign-in in the browser for Jira and JSM, and the
/// credentials that need no browser (PAT, Basic, service account) — all through `latch serve`
/// with curl and Python `requests`.
#[test]
fn jira_data_center_signs_in_once_and_works_without_a_browser_too() {
    let fixture = Fixture::start();
    let home = Home::new();
    let base = format!("{}/dc", fixture.base);
    // Before a provider exists, a DC connector says what to run.
    let out = home.run(&["connector", "add", "jira-dc"], "");
    assert_ne!(out.status.code(), Some(0));
    assert!(
        stderr(&out).contains("--preset jira-dc --base-url"),
        "{}",
        stderr(&out)
    );
    // A DC preset without its base URL says so.
    let out = home.run(
        &[
            "provider",
            "add",
            "corp-jira",
            "--preset",
            "jira-dc",
            "--client-id",
            DC_CLIENT_ID,
        ],
        DC_CLIENT_SECRET,
    );
    assert_ne!(out.status.code(), Some(0));
    assert!(stderr(&out).contains("base_url"), "{}", stderr(&out));

    home.ok(
        &[
            "provider",
            "add",
            "corp-jira",
            "--preset",
            "jira-dc",
            "--base-url",
            &base,
            "--client-id",
            DC_CLIENT_ID,
            "--redirect-uri",
            &fixture.redirect_uri,
        ],
        DC_CLIENT_SECRET,
    );
    home.ok(&["connector", "add", "jira-dc"], "");
    home.ok(&["connector", "add", "jsm-dc"], "");
    let toml = std::fs::read_to_string(home.file("latch.toml")).unwrap();
    assert!(toml.contains("provider = \"corp-jira\""), "{toml}");
    // A Cloud connector cannot sign in through a DC link.
    let out = home.run(&["connector", "add", "jira", "--provider", "corp-jira"], "");
    assert_ne!(out.status.code(), Some(0));
    assert!(stderr(&out).contains("jira-dc"), "{}", stderr(&out));

    // One consent for both connectors, in the browser.
    let out = run_with_stdin(
        home.browser_cmd(&["login", "corp-jira", "--timeout", "60"]),
        "",
    );
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let status = home.json(&["status", "--json"]);
    for name in ["jira-dc", "jsm-dc"] {
        let c = connector_in(&status, name);
        assert_eq!(c["state"], "ok", "{c}");
        // Data Center answers no `scope`: the granted set is the requested one.
        assert_eq!(c["scopes"]["missing"], serde_json::json!([]), "{c}");
    }
    assert!(status.to_string().contains("DC User"), "{status}");
    assert_eq!(fixture.stats()["dc_token_calls"]["authorization_code"], 1);

    // No browser from here on: a PAT, Basic and a service account on the same instance.
    add_pat_and_service_account(&home);
    home.ok(
        &[
            "connector",
            "add",
            "dc-basic",
            "--type",
            "jira-dc",
            "--auth",
            "basic",
            "--username",
            "dc-user",
        ],
        "",
    );
    let out = home.ok(&["credential", "set", "dc-basic", "--json"], DC_PASSWORD);
    let stored: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(stored["check"]["result"], "ok", "{stored}");
    // Data Center's client credentials take the connector's scopes (§8.2).
    assert_eq!(
        fixture.stats()["dc_last_client_credentials_scope"],
        "READ WRITE"
    );

    let k = home.key_for("k", &["jira-dc", "jsm-dc", "dc-pat", "dc-basic", "dc-svc"]);
    let serve = Serve::start(&home);
    for (path, via) in [
        ("/jira-dc/rest/api/2/search?jql=project%3DOPS", "oauth"),
        ("/jsm-dc/rest/servicedeskapi/request", "oauth"),
        ("/dc-pat/rest/api/2/issue/OPS-1", "pat"),
        ("/dc-basic/rest/api/2/issue/OPS-1", "basic"),
        ("/dc-svc/rest/api/2/issue/OPS-1", "service"),
    ] {
        let (status, body) = curl(&[
            "-H",
            &format!("Authorization: Bearer {k}"),
            &serve.url(path),
        ]);
        assert_eq!(status, 200, "{path}: {body}");
        let echoed: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(echoed["via"], via, "{path}: {body}");
        assert_eq!(echoed["product"], "data-center", "{path}: {body}");
    }
    python_requests_ok(
        &serve.url(""),
        &k,
        &[
            "/jira-dc/rest/api/2/myself",
            "/dc-pat/rest/api/2/myself",
            "/dc-svc/rest/api/2/myself",
        ],
        Some("r.json()['displayName'] == 'DC User'"),
    );
    drop(serve);

    // A refresh repeats the redirect_uri (DC answers invalid_grant without it) and leaves the
    // grant healthy; both old tokens are dead afterwards.
    let before = home.ok(&["token", "jira-dc"], "").trim().to_owned();
    home.ok(&["token", "jira-dc", "--refresh"], "");
    let stats = fixture.stats();
    assert_eq!(stats["dc_token_calls"]["refresh_token"], 1, "{stats}");
    assert_eq!(stats["dc_refresh_without_redirect_uri"], 0, "{stats}");
    let after = home.ok(&["token", "jira-dc"], "").trim().to_owned();
    assert_ne!(before, after);
    assert!(
        !fixture.token_active(&before),
        "the old access token died with the refresh"
    );
    let status = home.json(&["status", "--json"]);
    assert_eq!(connector_in(&status, "jira-dc")["state"], "ok");

    // A refresh whose answer is lost is never sent again: Data Center has no reuse window, so
    // the old refresh token is already dead. The grant says so instead of guessing.
    fixture.control(serde_json::json!({ "token_mode": "lose_response" }));
    let out = home.run(&["token", "jira-dc", "--refresh"], "");
    assert_ne!(out.status.code(), Some(0));
    assert!(stderr(&out).contains("reuse window"), "{}", stderr(&out));
    assert_eq!(fixture.stats()["dc_token_calls"]["refresh_token"], 2);
    let status = home.json(&["status", "--json"]);
    assert_eq!(
        connector_in(&status, "jira-dc")["state"],
        "refresh_uncertain"
    );
}

/// Without any OAuth app: a Confluence DC provider with only its base URL serves PAT
/// connectors; Bitbucket DC's whoami (plain text) works as its probe.
#[test]
fn data_center_pats_need_no_oauth_app() {
    let fixture = Fixture::start();
    let home = Home::new();
    let base = format!("{}/dc", fixture.base);
    for (provider, preset) in [("corp-wiki", "confluence-dc"), ("corp-git", "bitbucket-dc")] {
        home.ok(
            &[
                "provider",
                "add",
                provider,
                "--preset",
                preset,
                "--base-url",
                &base,
            ],
            "",
        );
    }
    home.ok(&["connector", "add", "confluence-dc", "--auth", "pat"], "");
    home.ok(&["connector", "add", "bitbucket-dc", "--auth", "pat"], "");
    for name in ["confluence-dc", "bitbucket-dc"] {
        let out = home.ok(&["credential", "set", name, "--json"], DC_PAT);
        let stored: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(stored["check"]["result"], "ok", "{name}: {stored}");
    }
    let (code, report) = {
        let out = home.run(&["doctor", "--json"], "");
        (
            out.status.code(),
            serde_json::from_str::<serde_json::Value>(&stdout(&out)).unwrap(),
        )
    };
    assert_eq!(code, Some(0), "{report}");
    let k = home.key_for("k", &["confluence-dc", "bitbucket-dc"]);
    let serve = Serve::start(&home);
    let (status, body) = curl(&[
        "-H",
        &format!("Authorization: Bearer {k}"),
        &serve.url("/bitbucket-dc/rest/api/1.0/projects"),
    ]);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"via\":\"pat\""), "{body}");
}

/// The catalog lists the Data Center connectors with their auth modes and vocabularies.
#[test]
fn the_catalog_lists_data_center() {
    let home = Home::new();
    let catalog = home.json(&["connector", "catalog", "--json"]);
    for (name, provider, vocabulary) in [
        ("jira-dc", "jira-dc", "data-center"),
        ("jsm-dc", "jira-dc", "data-center"),
        ("confluence-dc", "confluence-dc", "data-center"),
        ("bitbucket-dc", "bitbucket-dc", "bitbucket-data-center"),
    ] {
        let entry = catalog
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("{name} in {catalog}"));
        assert_eq!(entry["provider"], provider);
        assert_eq!(entry["vocabulary"], vocabulary);
        // OAuth 1.0a links and anonymous calls: Jira and Confluence, not Bitbucket.
        let modes = if provider == "bitbucket-dc" {
            serde_json::json!(["user", "pat", "basic", "service"])
        } else {
            serde_json::json!(["user", "pat", "basic", "service", "oauth1-2lo", "none"])
        };
        assert_eq!(entry["auth_modes"], modes);
    }
    let jira = catalog
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "jira-dc")
        .unwrap();
    assert_eq!(
        jira["upstream_scopes"],
        serde_json::json!(["READ", "WRITE"])
    );
}

/// A PAT connector and a service-account connector on the `jira-dc` provider, each credential
/// proven by `credential set` (a probe, and the token endpoint).
/// The `dc-pat` connector (a PAT on the `jira-dc` provider), its PAT not yet stored.
pub(crate) fn add_pat_connector(home: &Home) {
    home.ok(
        &[
            "connector",
            "add",
            "dc-pat",
            "--type",
            "jira-dc",
            "--auth",
            "pat",
        ],
        "",
    );
}

pub(crate) fn add_pat_and_service_account(home: &Home) {
    add_pat_connector(home);
    let out = home.ok(&["credential", "set", "dc-pat", "--json"], DC_PAT);
    let stored: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(stored["check"]["result"], "ok", "the PAT: {stored}");
    add_service_account(home);
}

/// A service-account connector `dc-svc` on the `jira-dc` provider, proven by its token endpoint.
pub(crate) fn add_service_account(home: &Home) {
    home.ok(
        &[
            "connector",
            "add",
            "dc-svc",
            "--type",
            "jira-dc",
            "--auth",
            "service",
            "--client-id",
            DC_SVC_CLIENT_ID,
        ],
        "",
    );
    let out = home.ok(
        &["credential", "set", "dc-svc", "--json"],
        DC_SVC_CLIENT_SECRET,
    );
    let stored: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        stored["check"]["result"], "ok",
        "the token endpoint: {stored}"
    );
}

/// A test CA and a certificate it signs for localhost and 127.0.0.1, as PEM files in `dir`:
/// (ca, cert, key).
pub(crate) fn test_ca(
    dir: &std::path::Path,
) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "Latch Test Corp CA");
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let leaf = rcgen::CertificateParams::new(vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "dc.corp.test".to_owned(),
    ])
    .unwrap();
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf_cert = leaf.signed_by(&leaf_key, &ca_cert, &ca_key).unwrap();
    let paths = (
        dir.join("ca.pem"),
        dir.join("cert.pem"),
        dir.join("key.pem"),
    );
    std::fs::write(&paths.0, ca_cert.pem()).unwrap();
    std::fs::write(&paths.1, leaf_cert.pem()).unwrap();
    std::fs::write(&paths.2, leaf_key.serialize_pem()).unwrap();
    paths
}

/// A Data Center instance behind an internal CA: without `ca_file` the credential check and
/// the proxy say the certificate is not trusted and name `ca_file`; with it, a PAT and a
/// service account (the OAuth client) work, through `latch serve` too. The CA is trusted for
/// that provider only.
#[test]
fn an_internal_ca_is_trusted_for_its_provider_only() {
    let certs = tempfile::tempdir().unwrap();
    let (ca, cert, tls_key) = test_ca(certs.path());
    let fixture = Fixture::start_with_tls(&cert, &tls_key);
    let base = format!("https://localhost:{}/dc", fixture.tls_port.unwrap());
    let home = Home::new();
    // Without the CA first: stored, but the check says why it could not be made.
    home.ok(
        &[
            "provider",
            "add",
            "corp-wiki",
            "--preset",
            "confluence-dc",
            "--base-url",
            &base,
        ],
        "",
    );
    home.ok(&["connector", "add", "confluence-dc", "--auth", "pat"], "");
    // No answer it can trust: stored, unchecked, exit 7.
    let out = home.run(&["credential", "set", "confluence-dc", "--json"], DC_PAT);
    assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));
    let stored: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(stored["check"]["result"], "unchecked", "{stored}");
    assert!(
        stored["check"]["detail"]
            .as_str()
            .unwrap()
            .contains("ca_file"),
        "{stored}"
    );

    // A CA file that is not one is refused before anything is written.
    let bogus = certs.path().join("bogus.pem");
    std::fs::write(&bogus, "hello\n").unwrap();
    let out = home.run(
        &[
            "provider",
            "add",
            "corp-jira",
            "--preset",
            "jira-dc",
            "--base-url",
            &base,
            "--ca-file",
            bogus.to_str().unwrap(),
        ],
        "",
    );
    assert_ne!(out.status.code(), Some(0));
    assert!(
        stderr(&out).contains("no usable PEM certificate"),
        "{}",
        stderr(&out)
    );

    home.ok(
        &[
            "provider",
            "add",
            "corp-jira",
            "--preset",
            "jira-dc",
            "--base-url",
            &base,
            "--ca-file",
            ca.to_str().unwrap(),
        ],
        "",
    );
    add_pat_and_service_account(&home);

    let k = home.key_for("k", &["dc-pat", "dc-svc", "confluence-dc"]);
    let serve = Serve::start(&home);
    for path in ["/dc-pat/rest/api/2/myself", "/dc-svc/rest/api/2/myself"] {
        let (status, body) = curl(&[
            "-H",
            &format!("Authorization: Bearer {k}"),
            &serve.url(path),
        ]);
        assert_eq!(status, 200, "{path}: {body}");
    }
    // The same host through the provider without the CA: refused, and told why.
    let (status, body) = curl(&[
        "-H",
        &format!("Authorization: Bearer {k}"),
        &serve.url("/confluence-dc/rest/api/space"),
    ]);
    assert_eq!(status, 502, "{body}");
    assert_eq!(
        crate::support::error_code(&body),
        "upstream_certificate_untrusted"
    );
    assert!(body.contains("ca_file"), "{body}");
}

/// A Data Center instance on a company network (`dc.corp.test`, reached only through the
/// fixture's company proxy, behind the test CA), with the home's environment naming both and a
/// PAT and a service account stored.
pub(crate) struct CompanyNetwork {
    pub(crate) _certs: tempfile::TempDir,
    pub(crate) ca: std::path::PathBuf,
    pub(crate) fixture: Fixture,
    pub(crate) home: Home,
    /// `https://dc.corp.test:PORT/dc`.
    pub(crate) base: String,
}

pub(crate) fn company_network() -> CompanyNetwork {
    let certs = tempfile::tempdir().unwrap();
    let (ca, cert, tls_key) = test_ca(certs.path());
    let fixture = Fixture::start_with_tls(&cert, &tls_key);
    let base = format!("https://dc.corp.test:{}/dc", fixture.tls_port.unwrap());
    let home = Home::new();
    let proxy = format!("http://127.0.0.1:{}", fixture.connect_port);
    home.set_env("HTTPS_PROXY", Some(&proxy));
    home.set_env("SSL_CERT_FILE", Some(ca.to_str().unwrap()));
    home.ok(
        &[
            "provider",
            "add",
            "corp-jira",
            "--preset",
            "jira-dc",
            "--base-url",
            &base,
        ],
        "",
    );
    add_pat_and_service_account(&home);
    CompanyNetwork {
        _certs: certs,
        ca,
        fixture,
        home,
        base,
    }
}

/// A company network: the instance's name resolves only behind the company proxy (HTTPS_PROXY,
/// by CONNECT tunnel) and its CA is only in a trust file named by the environment
/// (SSL_CERT_FILE, read with the OS trust store). Token requests, credential checks and the
/// proxy's upstream all go through the tunnel; NO_PROXY is honoured.
#[test]
fn a_company_proxy_and_a_trust_file_from_the_environment() {
    let CompanyNetwork {
        fixture,
        home,
        _certs,
        ..
    } = company_network();
    let tunnels = fixture.stats()["connect_tunnels"].as_u64().unwrap();
    assert!(
        tunnels >= 2,
        "the check and the token request went through the proxy: {tunnels}"
    );

    let k = home.key_for("k", &["dc-pat", "dc-svc"]);
    let serve = Serve::start(&home);
    for path in ["/dc-pat/rest/api/2/myself", "/dc-svc/rest/api/2/myself"] {
        let (status, body) = curl(&[
            "-H",
            &format!("Authorization: Bearer {k}"),
            &serve.url(path),
        ]);
        assert_eq!(status, 200, "{path}: {body}");
    }
    assert!(
        fixture.stats()["connect_tunnels"].as_u64().unwrap() > tunnels,
        "the proxy's upstream went through the tunnel"
    );
    drop(serve);

    // NO_PROXY: Latch connects directly, and the internal name does not resolve here.
    home.set_env("NO_PROXY", Some("corp.test"));
    let out = home.run(&["credential", "set", "dc-pat", "--json"], DC_PAT);
    assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));
    let stored: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(stored["check"]["result"], "unchecked", "{stored}");
    home.set_env("NO_PROXY", None);
    // Without the trust file the certificate is not trusted, and the error says what to do.
    home.set_env("SSL_CERT_FILE", None);
    let out = home.run(&["credential", "set", "dc-pat", "--json"], DC_PAT);
    assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));
    let stored: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert!(
        stored["check"]["detail"]
            .as_str()
            .unwrap()
            .contains("ca_file"),
        "{stored}"
    );
}

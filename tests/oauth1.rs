//! OAuth 1.0a application links (seed 003) and anonymous connectors, through the README's
//! commands, against the fixture's Data Center instance: its links check RSA-SHA1 signatures
//! with OpenSSL (node:crypto), timestamps, nonces, 2-legged and impersonation switches, and
//! answer Jira's `oauth_problem`s. The person signs in with headless Chromium; tools reach the
//! instance through `latch serve` with curl, Python `requests` and atlassian-python-api.

use crate::support::{
    all_files_text, connector_in, curl, error_code, python_ok, python_requests_ok,
    require_secret_service, run_with_stdin, stderr, stdout, venv, Fixture, Home, Serve,
};

const CONSUMER_KEY: &str = "latch-cli";

/// `provider add NAME --preset jira-dc --oauth1 …` with `extra`; its JSON answer.
fn add_link(home: &Home, fixture: &Fixture, name: &str, extra: &[&str]) -> serde_json::Value {
    let base = format!("{}/dc", fixture.base);
    let mut args = vec![
        "provider",
        "add",
        name,
        "--preset",
        "jira-dc",
        "--base-url",
        &base,
        "--oauth1",
        "--consumer-key",
        CONSUMER_KEY,
        "--redirect-uri",
        &fixture.redirect_uri,
        "--json",
    ];
    args.extend_from_slice(extra);
    let out = home.ok(&args, "");
    serde_json::from_str(&out).unwrap_or_else(|_| panic!("not JSON: {out}"))
}

/// The admin pastes `public_key` into the link's incoming authentication.
fn link_with(fixture: &Fixture, public_key: &str, two_legged: bool, impersonation: bool) {
    fixture.link(serde_json::json!({
        "consumer_key": CONSUMER_KEY,
        "public_key": public_key,
        "two_legged": two_legged,
        "impersonation": impersonation,
        "execute_as": "svc-bot",
    }));
}

/// `latch doctor --json`, whatever its exit code (non-zero when it found errors).
fn doctor(home: &Home) -> serde_json::Value {
    let out = home.run(&["doctor", "--json"], "");
    serde_json::from_str(&stdout(&out))
        .unwrap_or_else(|_| panic!("{}{}", stdout(&out), stderr(&out)))
}

fn json_of(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|_| panic!("not JSON: {body}"))
}

#[test]
fn a_link_signs_in_in_the_browser_and_signs_every_request() {
    require_secret_service();
    let fixture = Fixture::start();
    let home = Home::new();
    let added = add_link(&home, &fixture, "corp-jira", &[]);
    let link = &added["link"];
    assert_eq!(link["consumer_key"], CONSUMER_KEY);
    assert_eq!(link["key"], "generated");
    let public_key = link["public_key"].as_str().unwrap().to_owned();
    assert!(
        public_key.starts_with("-----BEGIN PUBLIC KEY-----"),
        "{added}"
    );
    assert!(!added.to_string().contains("PRIVATE"), "{added}");
    // The same command again keeps the key (a new one would break the link).
    let again = add_link(&home, &fixture, "corp-jira", &[]);
    assert_eq!(again["link"]["key"], "kept");
    assert_eq!(again["link"]["fingerprint"], link["fingerprint"]);
    // `public-key` prints the PEM alone on stdout, for a file or the clipboard.
    let printed = home.ok(&["provider", "public-key", "corp-jira"], "");
    assert_eq!(printed, public_key);
    link_with(&fixture, &public_key, true, true);

    // 3-legged: one sign-in in the browser.
    home.ok(
        &["connector", "add", "jira-dc", "--provider", "corp-jira"],
        "",
    );
    let out = run_with_stdin(
        home.browser_cmd(&["login", "corp-jira", "--timeout", "60"]),
        "",
    );
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("DC User"), "{}", stdout(&out));
    assert!(stdout(&out).contains("good until"), "{}", stdout(&out));
    // 2-legged, as the link's "execute as" user and as a named user.
    for (name, extra) in [
        ("jira-2lo", vec![]),
        ("jira-as-jsmith", vec!["--username", "jsmith"]),
    ] {
        let mut args = vec![
            "connector",
            "add",
            name,
            "--type",
            "jira-dc",
            "--provider",
            "corp-jira",
            "--auth",
            "oauth1-2lo",
        ];
        args.extend(extra);
        home.ok(&args, "");
    }

    let status = home.json(&["status", "--json"]);
    let provider = &status["providers"][0];
    assert_eq!(provider["link"]["consumer_key"], CONSUMER_KEY, "{provider}");
    assert_eq!(
        provider["link"]["public_key_fingerprint"],
        link["fingerprint"]
    );
    assert_eq!(provider["client_secret"], "not_needed");
    let jira = connector_in(&status, "jira-dc");
    assert_eq!(jira["state"], "ok", "{jira}");
    assert_eq!(jira["grant"]["account_name"], "DC User", "{jira}");
    // The instance's oauth_expires_in: five years, not an access token's hour.
    let expires = jira["grant"]["access_expires_at"].as_str().unwrap();
    assert!(expires[..4] >= *"2031", "{expires}");
    for name in ["jira-2lo", "jira-as-jsmith"] {
        let c = connector_in(&status, name);
        assert_eq!(c["state"], "ok", "{c}");
        assert_eq!(c["credential"]["kind"], "link", "{c}");
    }

    let key = home.key_for("dc-tools", &["jira-dc", "jira-2lo", "jira-as-jsmith"]);
    let bearer = format!("Authorization: Bearer {key}");
    let serve = Serve::start(&home);
    // Repeated, encoded and empty parameters are signed as sent.
    let (status, body) = curl(&[
        "-H",
        &bearer,
        &serve.url("/jira-dc/rest/api/2/search?jql=project%20%3D%20OPS%20AND%20text%20~%20%22a%2Bb%22&fields=summary&fields=status&expand="),
    ]);
    assert_eq!(status, 200, "{body}");
    let answer = json_of(&body);
    assert_eq!(
        (answer["via"].as_str(), answer["user"].as_str()),
        (Some("oauth1"), Some("dc-user"))
    );
    assert_eq!(answer["query"]["jql"], "project = OPS AND text ~ \"a+b\"");
    for (connector, via, user) in [
        ("jira-2lo", "oauth1-2lo", "svc-bot"),
        ("jira-as-jsmith", "oauth1-2lo-impersonation", "jsmith"),
    ] {
        let (status, body) = curl(&[
            "-H",
            &bearer,
            &serve.url(&format!("/{connector}/rest/api/2/myself")),
        ]);
        assert_eq!(status, 200, "{connector}: {body}");
        let answer = json_of(&body);
        assert_eq!(answer["name"], user, "{connector}: {body}");
        let stats = fixture.stats();
        assert_eq!(stats["oauth1_last"]["via"], via, "{stats}");
    }
    // A form body's parameters are part of the signature, and arrive intact.
    let (status, body) = curl(&[
        "-X",
        "POST",
        "-H",
        &bearer,
        "-H",
        "Content-Type: application/x-www-form-urlencoded",
        "--data-raw",
        "body=two+words&tag=a%26b&tag=c&empty=",
        &serve.url("/jira-dc/rest/api/2/issue/OPS-1/comment?notify=false"),
    ]);
    assert_eq!(status, 200, "{body}");
    let answer = json_of(&body);
    assert_eq!(answer["form"]["body"], "two words", "{body}");
    assert_eq!(answer["form"]["empty"], "", "{body}");
    // A JSON body streams unsigned, as before.
    let (status, body) = curl(&[
        "-X",
        "POST",
        "-H",
        &bearer,
        "-H",
        "Content-Type: application/json",
        "-d",
        "{\"body\":\"hello\"}",
        &serve.url("/jira-dc/rest/api/2/issue/OPS-1/comment"),
    ]);
    assert_eq!(status, 200, "{body}");
    // Unmodified clients: Python requests, and atlassian-python-api given the proxy's URL.
    python_requests_ok(
        &serve.url(""),
        &key,
        &[
            "/jira-dc/rest/api/2/myself",
            "/jira-2lo/rest/api/2/search?jql=project%3DOPS",
            "/jira-as-jsmith/rest/api/2/myself",
        ],
        Some("r.json().get('via', r.json().get('name'))"),
    );
    let script = format!(
        "from atlassian import Jira\n\
         jira = Jira(url='{}', username='me', password='{key}')\n\
         assert jira.myself()['name'] == 'dc-user'\n\
         print('python ok')",
        serve.url("/jira-dc")
    );
    let out = std::process::Command::new(venv("python"))
        .args(["-c", &script])
        .output()
        .unwrap();
    assert!(
        stdout(&out).contains("python ok"),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let stats = fixture.stats();
    assert_eq!(stats["oauth1_refused"], serde_json::json!({}), "{stats}");

    // A signature is bound to its request: no token to print.
    let out = home.run(&["token", "jira-dc"], "");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("proxy"), "{}", stderr(&out));
    // The doctor probes all three alive.
    let report = doctor(&home);
    for name in ["jira-dc", "jira-2lo", "jira-as-jsmith"] {
        assert_eq!(connector_in(&report, name)["diagnosis"], "ok", "{report}");
    }
    // The admin report says how each signs.
    let file = home.file("report.html");
    home.run(
        &["doctor", "--offline", "--report", file.to_str().unwrap()],
        "",
    );
    let html = std::fs::read_to_string(&file).unwrap();
    assert!(
        html.contains("OAuth 1.0a application link, signed per request")
            && html.contains("application link (2-legged OAuth 1.0a)"),
        "{html}"
    );
    std::fs::remove_file(&file).unwrap();
    // The private key and the token are in the keychain only.
    for (path, text) in all_files_text(home.path()) {
        assert!(
            !text.contains("PRIVATE KEY"),
            "{} holds the private key",
            path.display()
        );
        assert!(!text.contains("at-"), "{} holds a token", path.display());
    }
    serve.stop();
}

#[test]
fn each_side_of_the_link_is_named_when_it_refuses() {
    require_secret_service();
    let fixture = Fixture::start();
    let home = Home::new();
    let ours = add_link(&home, &fixture, "corp-jira", &[]);
    // The admin pasted some other key (here: another home's).
    let other = Home::new();
    let theirs = add_link(&other, &fixture, "corp-jira", &[]);
    link_with(
        &fixture,
        theirs["link"]["public_key"].as_str().unwrap(),
        true,
        false,
    );
    home.ok(
        &[
            "connector",
            "add",
            "jira-2lo",
            "--type",
            "jira-dc",
            "--provider",
            "corp-jira",
            "--auth",
            "oauth1-2lo",
        ],
        "",
    );
    home.ok(
        &[
            "connector",
            "add",
            "jira-as-jsmith",
            "--type",
            "jira-dc",
            "--provider",
            "corp-jira",
            "--auth",
            "oauth1-2lo",
            "--username",
            "jsmith",
        ],
        "",
    );
    home.ok(
        &[
            "connector",
            "add",
            "jira-as-nobody",
            "--type",
            "jira-dc",
            "--provider",
            "corp-jira",
            "--auth",
            "oauth1-2lo",
            "--username",
            "nobody",
        ],
        "",
    );
    let key = home.key_for("k", &["jira-2lo", "jira-as-jsmith"]);
    let bearer = format!("Authorization: Bearer {key}");
    let serve = Serve::start(&home);
    let get = |connector: &str| {
        curl(&[
            "-H",
            &bearer,
            &serve.url(&format!("/{connector}/rest/api/2/myself")),
        ])
    };
    let problem = |body: &str| {
        json_of(body)["problem"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };

    // The wrong public key on the link: the fix names the command that prints the right one.
    let (status, body) = get("jira-2lo");
    assert_eq!(
        (status, error_code(&body).as_str()),
        (502, "oauth1_rejected"),
        "{body}"
    );
    assert_eq!(problem(&body), "signature_invalid");
    assert!(
        body.contains("latch provider public-key corp-jira"),
        "{body}"
    );
    let report = doctor(&home);
    assert_eq!(
        connector_in(&report, "jira-2lo")["diagnosis"],
        "oauth1_rejected",
        "{report}"
    );
    assert!(
        report["findings"].to_string().contains("public-key"),
        "{report}"
    );
    // Pasting the right key mends it at once.
    link_with(
        &fixture,
        ours["link"]["public_key"].as_str().unwrap(),
        true,
        false,
    );
    assert_eq!(get("jira-2lo").0, 200);
    // Impersonation off on the link; then a user the instance does not know.
    let (status, body) = get("jira-as-jsmith");
    assert_eq!(
        (status, problem(&body).as_str()),
        (502, "permission_denied"),
        "{body}"
    );
    assert!(body.contains("2-Legged"), "{body}");
    link_with(
        &fixture,
        ours["link"]["public_key"].as_str().unwrap(),
        true,
        true,
    );
    let k2 = home.key_for("k2", &["jira-as-nobody"]);
    let (status, body) = curl(&[
        "-H",
        &format!("Authorization: Bearer {k2}"),
        &serve.url("/jira-as-nobody/rest/api/2/myself"),
    ]);
    assert_eq!(
        (status, problem(&body).as_str()),
        (502, "permission_unknown"),
        "{body}"
    );
    // The instance's clock is an hour off.
    fixture.control(serde_json::json!({ "oauth1_clock_skew_secs": 3600 }));
    let (status, body) = get("jira-2lo");
    assert_eq!(
        (status, problem(&body).as_str()),
        (502, "timestamp_refused"),
        "{body}"
    );
    assert!(body.contains("clock"), "{body}");
    fixture.control(serde_json::json!({ "oauth1_clock_skew_secs": 0 }));
    // A form too large to sign is refused before anything is sent.
    let big = format!("text={}", "a".repeat(1024 * 1024 + 10));
    let file = home.file("big.form");
    std::fs::write(&file, big).unwrap();
    let (status, body) = curl(&[
        "-X",
        "POST",
        "-H",
        &bearer,
        "-H",
        "Content-Type: application/x-www-form-urlencoded",
        "--data-binary",
        &format!("@{}", file.display()),
        &serve.url("/jira-2lo/rest/api/2/issue"),
    ]);
    assert_eq!(
        (status, error_code(&body).as_str()),
        (413, "oauth1_body_too_large"),
        "{body}"
    );

    // A new key: the link must get it again, and says so until it does.
    let rotated = add_link(&home, &fixture, "corp-jira", &["--new-key"]);
    assert_eq!(rotated["link"]["key"], "rotated");
    assert_ne!(rotated["link"]["fingerprint"], ours["link"]["fingerprint"]);
    let (status, body) = get("jira-2lo");
    assert_eq!(
        (status, problem(&body).as_str()),
        (502, "signature_invalid"),
        "{body}"
    );
    serve.stop();

    // A key of one's own, PKCS#1 as `openssl genrsa -traditional` writes it.
    let pem = home.file("link.pem");
    let out = std::process::Command::new("openssl")
        .args(["genrsa", "-traditional", "-out"])
        .arg(&pem)
        .arg("2048")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let imported = add_link(
        &home,
        &fixture,
        "corp-jira",
        &["--private-key", pem.to_str().unwrap()],
    );
    assert_eq!(imported["link"]["key"], "imported");
    let expected = std::process::Command::new("openssl")
        .args(["rsa", "-pubout", "-in"])
        .arg(&pem)
        .output()
        .unwrap();
    assert_eq!(imported["link"]["public_key"], stdout(&expected));
    let out = home.run(
        &[
            "provider",
            "add",
            "x",
            "--preset",
            "jira-dc",
            "--base-url",
            "https://jira.corp.example",
            "--oauth1",
            "--consumer-key",
            "k",
            "--private-key",
            home.file("latch.toml").to_str().unwrap(),
        ],
        "",
    );
    assert_ne!(out.status.code(), Some(0));
    assert!(stderr(&out).contains("PEM"), "{}", stderr(&out));
}

#[test]
fn a_declined_consent_and_a_revoked_token_say_what_to_do() {
    require_secret_service();
    let fixture = Fixture::start();
    let home = Home::new();
    let added = add_link(&home, &fixture, "corp-jira", &[]);
    link_with(
        &fixture,
        added["link"]["public_key"].as_str().unwrap(),
        false,
        false,
    );
    home.ok(
        &["connector", "add", "jira-dc", "--provider", "corp-jira"],
        "",
    );
    // The person clicks Deny.
    fixture.control(serde_json::json!({ "oauth1_deny": true }));
    let out = run_with_stdin(
        home.browser_cmd(&["login", "corp-jira", "--timeout", "60"]),
        "",
    );
    assert_eq!(out.status.code(), Some(6), "{}", stderr(&out));
    assert!(stderr(&out).contains("denied"), "{}", stderr(&out));
    assert_eq!(
        connector_in(&home.json(&["status", "--json"]), "jira-dc")["state"],
        "not_signed_in"
    );
    // Allow, then the person revokes the token on the instance.
    fixture.control(serde_json::json!({ "oauth1_deny": false }));
    let out = run_with_stdin(
        home.browser_cmd(&["login", "corp-jira", "--timeout", "60"]),
        "",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let key = home.key_for("k", &["jira-dc"]);
    let serve = Serve::start(&home);
    let (status, _) = curl(&[
        "-H",
        &format!("Authorization: Bearer {key}"),
        &serve.url("/jira-dc/rest/api/2/myself"),
    ]);
    assert_eq!(status, 200);
    fixture.revoke_link_tokens();
    let (status, body) = curl(&[
        "-H",
        &format!("Authorization: Bearer {key}"),
        &serve.url("/jira-dc/rest/api/2/myself"),
    ]);
    assert_eq!(
        (status, json_of(&body)["problem"].as_str()),
        (502, Some("token_rejected")),
        "{body}"
    );
    assert!(body.contains("latch login corp-jira"), "{body}");
    serve.stop();
    // The status says so too: the person signs in again.
    let status = home.json(&["status", "--json"]);
    assert_eq!(
        connector_in(&status, "jira-dc")["state"],
        "needs_login",
        "{status}"
    );
}

#[test]
fn anonymous_connectors_reach_public_pages_on_cloud_and_data_center() {
    let fixture = Fixture::start();
    let home = Home::with_fixture_endpoints_only(&fixture);
    // Cloud: the gateway refuses anonymous calls, so the site is required.
    let out = home.run(
        &[
            "connector",
            "add",
            "jira-public",
            "--type",
            "jira",
            "--auth",
            "none",
        ],
        "",
    );
    assert_ne!(out.status.code(), Some(0));
    assert!(stderr(&out).contains("site"), "{}", stderr(&out));
    home.ok(
        &[
            "connector",
            "add",
            "jira-public",
            "--type",
            "jira",
            "--auth",
            "none",
            "--site",
            "acme",
        ],
        "",
    );
    let base = format!("{}/dc", fixture.base);
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
    home.ok(
        &[
            "connector",
            "add",
            "dc-public",
            "--type",
            "jira-dc",
            "--provider",
            "corp-jira",
            "--auth",
            "none",
        ],
        "",
    );
    let status = home.json(&["status", "--json"]);
    for name in ["jira-public", "dc-public"] {
        let c = connector_in(&status, name);
        assert_eq!(
            (c["state"].as_str(), c["credential"]["kind"].as_str()),
            (Some("ok"), Some("anonymous")),
            "{c}"
        );
    }
    // Local key, policy and audit still apply.
    let key = home.key_for("reader", &["jira-public", "dc-public"]);
    let serve = Serve::start(&home);
    for path in [
        "/jira-public/rest/api/3/serverInfo",
        "/dc-public/rest/api/2/serverInfo",
    ] {
        let (status, body) = curl(&[
            "-H",
            &format!("Authorization: Bearer {key}"),
            &serve.url(path),
        ]);
        assert_eq!(status, 200, "{path}: {body}");
        assert_eq!(json_of(&body)["anonymous"], true, "{body}");
        let (status, _) = curl(&[&serve.url(path)]);
        assert_eq!(status, 401, "no local key, no call");
    }
    python_ok(&format!(
        "import requests\n\
         r = requests.get('{}', auth=('me', '{key}'))\n\
         assert r.status_code == 200 and r.json()['deploymentType'] == 'Server', r.text\n\
         print('python ok')",
        serve.url("/dc-public/rest/api/2/serverInfo")
    ));
    serve.stop();
    let audit = home.ok(&["audit", "--json"], "");
    assert!(
        audit.contains("/dc-public/rest/api/2/serverInfo"),
        "{audit}"
    );
    // The doctor: a 401 on the probe is "reachable, anonymously".
    let report = doctor(&home);
    for name in ["jira-public", "dc-public"] {
        assert_eq!(
            connector_in(&report, name)["diagnosis"],
            "reachable_anonymous",
            "{report}"
        );
    }
    let out = home.run(&["credential", "set", "dc-public"], "x");
    assert_ne!(out.status.code(), Some(0));
    assert!(stderr(&out).contains("anonymously"), "{}", stderr(&out));
}

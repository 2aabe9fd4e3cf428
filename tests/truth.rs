//! What Latch says is true (issue 21): hints that lead somewhere, names people know, exit codes
//! the README promises, and a credential that could not be checked kept and said so.

use crate::support::{
    connector_in, curl, require_secret_service, run_with_stdin, stderr, stdout, Fixture, Home,
    PrivateKeyring, Serve, EMAIL, SCOPED_TOKEN,
};

/// `provider add --preset jira-dc` says where the instance's links are, the connector types to
/// add next (a command that works) and Data Center's own credentials.
#[test]
fn a_data_center_provider_says_what_to_do_next() {
    require_secret_service();
    let home = Home::new();
    let out = home.ok(
        &[
            "provider",
            "add",
            "corp-jira",
            "--preset",
            "jira-dc",
            "--base-url",
            "https://jira.corp.example",
        ],
        "",
    );
    assert!(!out.contains("{base}"), "{out}");
    assert!(
        out.contains("https://jira.corp.example/plugins/servlet/applinks/listApplicationLinks"),
        "{out}"
    );
    assert!(
        out.contains("personal access tokens") && !out.contains("API tokens"),
        "{out}"
    );
    // The suggested next step, run as printed, works.
    let next = out
        .lines()
        .find_map(|l| l.strip_prefix("Next: `"))
        .and_then(|l| l.split('`').next())
        .unwrap_or_else(|| panic!("no next step in {out}"));
    assert!(next.starts_with("latch connector add jira-dc"), "{next}");
    let args: Vec<&str> = next.split_whitespace().skip(1).collect();
    home.ok(&args, "");
}

/// A mistyped provider, connector or type is named as such, with what exists; exit 5.
#[test]
fn wrong_names_list_what_exists() {
    let fixture = Fixture::start();
    let home = Home::with_fixture_provider(&fixture);
    let out = home.run(&["login", "atlasian"], "");
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("unknown provider `atlasian`") && stderr(&out).contains("atlassian"),
        "{}",
        stderr(&out)
    );
    let out = home.run(&["token", "jirra"], "");
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("known: jira, confluence"),
        "{}",
        stderr(&out)
    );
    let out = home.run(&["connector", "add", "jira-2", "--type", "jirra"], "");
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("unknown connector type `jirra`") && stderr(&out).contains("jira-dc"),
        "{}",
        stderr(&out)
    );
}

/// A key's lifetime needs its unit: a bare `8` once meant eight hours without saying so.
#[test]
fn a_key_lifetime_needs_a_unit() {
    let fixture = Fixture::start();
    let home = Home::with_fixture_provider(&fixture);
    let out = home.run(
        &["keys", "create", "ci", "--connector", "jira", "--ttl", "8"],
        "",
    );
    assert_ne!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(stderr(&out).contains("8h"), "{}", stderr(&out));
    home.ok(
        &["keys", "create", "ci", "--connector", "jira", "--ttl", "8h"],
        "",
    );
}

/// A check that cannot reach the server keeps the credential, says so in one JSON answer and
/// exits 7, as the README's exit table promises for network failures.
#[test]
fn an_unchecked_credential_is_kept_and_exits_7() {
    require_secret_service();
    let home = Home::new();
    // Nothing listens on port 9: the site and the gateway are unreachable.
    home.ok(
        &[
            "provider",
            "add",
            "atlassian",
            "--api-base",
            "http://127.0.0.1:9",
            "--site-url",
            "http://127.0.0.1:9/{site}",
        ],
        "",
    );
    home.ok(
        &[
            "connector",
            "add",
            "jira-tok",
            "--type",
            "jira",
            "--auth",
            "api-token",
            "--email",
            EMAIL,
            "--site",
            "11111111-2222-3333-4444-555555555555",
        ],
        "",
    );
    let out = home.run(&["credential", "set", "jira-tok", "--json"], SCOPED_TOKEN);
    assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));
    let answer: serde_json::Value = serde_json::from_str(&stdout(&out))
        .unwrap_or_else(|_| panic!("one JSON document: {}", stdout(&out)));
    assert_eq!(answer["check"]["result"], "unchecked", "{answer}");
    let status = home.json(&["status", "--json"]);
    let credential = &connector_in(&status, "jira-tok")["credential"];
    assert!(credential["stored_at"].is_string(), "{credential}");
    assert!(
        credential["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("could not check")),
        "{credential}"
    );
}

/// Messages name the connector, not the grant's internal id (`service:jira-svc`).
#[test]
fn messages_name_connectors_not_internal_ids() {
    let fixture = Fixture::start();
    let home = Home::with_fixture_endpoints_only(&fixture);
    home.add_jira_service_account();
    fixture.control(serde_json::json!({ "token_mode": "500" }));
    let out = home.run(&["token", "jira-svc", "--refresh"], "");
    assert_ne!(out.status.code(), Some(0));
    assert!(
        !stderr(&out).contains("service:") && stderr(&out).contains("connector `jira-svc`"),
        "{}",
        stderr(&out)
    );
}

/// Every connector has a diagnosis in `doctor --json`: `ok` when healthy, never null.
#[test]
fn doctor_diagnoses_every_connector() {
    let fixture = Fixture::start();
    let home = Home::with_fixture_provider(&fixture);
    assert!(home.login().status.success());
    for args in [
        &["doctor", "--json", "--offline"][..],
        &["doctor", "--json"][..],
    ] {
        let out = home.run(args, "");
        let report: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
        for name in ["jira", "confluence"] {
            assert_eq!(
                connector_in(&report, name)["diagnosis"],
                "ok",
                "{args:?}: {report}"
            );
        }
    }
}

/// Keychain tools show whose items these are, not the keyring library's version.
#[test]
fn keychain_items_are_labelled_as_latch_s() {
    let fixture = Fixture::start();
    let home = Home::with_fixture_provider(&fixture);
    let out = std::process::Command::new("secret-tool")
        .args(["search", "--all", "service", "latch"])
        .output()
        .unwrap();
    let listed = format!("{}{}", stdout(&out), stderr(&out));
    let labels: Vec<&str> = listed
        .lines()
        .filter_map(|l| l.strip_prefix("label = "))
        .collect();
    assert!(!labels.is_empty(), "{listed}");
    let home_id = home.json(&["status", "--json"])["home"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let ours: Vec<&&str> = labels.iter().filter(|l| l.contains(&home_id)).collect();
    assert!(!ours.is_empty(), "{listed}");
    for label in ours {
        assert!(
            label.starts_with("Latch: ") && !label.contains("keyring v"),
            "{label}"
        );
    }
}

/// A locked keychain is what status, doctor (offline too) and the proxy say, with a fix that
/// works; unlocked again, nothing was lost.
#[test]
fn a_locked_keychain_is_named_everywhere_and_unlocked_by_latch() {
    let fixture = Fixture::start();
    let keyring = PrivateKeyring::start();
    let home = Home::new();
    let b = &fixture.base;
    keyring.ok(
        &home,
        &[
            "provider",
            "add",
            "atlassian",
            "--token-url",
            &format!("{b}/oauth/token"),
            "--api-base",
            b,
            "--site-url",
            &format!("{b}/__site/{{site}}"),
        ],
        "",
    );
    keyring.ok(
        &home,
        &[
            "connector",
            "add",
            "jira-tok",
            "--type",
            "jira",
            "--auth",
            "api-token",
            "--email",
            EMAIL,
            "--site",
            "acme",
        ],
        "",
    );
    keyring.ok(&home, &["credential", "set", "jira-tok"], SCOPED_TOKEN);
    let key = keyring
        .ok(
            &home,
            &["keys", "create", "k", "--connector", "jira-tok"],
            "",
        )
        .trim()
        .to_owned();
    keyring.lock();

    let status: serde_json::Value =
        serde_json::from_str(&keyring.ok(&home, &["status", "--json"], "")).unwrap();
    assert_eq!(status["home"]["keychain"], "locked", "{status}");
    let c = connector_in(&status, "jira-tok");
    assert_eq!(c["state"], "keychain_locked", "{c}");
    assert!(
        c["findings"].to_string().contains("latch keychain unlock"),
        "{c}"
    );
    for offline in [true, false] {
        let mut args = vec!["doctor", "--json"];
        if offline {
            args.push("--offline");
        }
        let out = run_with_stdin(keyring.cmd(&home, &args), "");
        assert_eq!(out.status.code(), Some(1), "offline={offline}: unhealthy");
        let report: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
        let codes = report["findings"].to_string();
        assert!(codes.contains("keychain_locked"), "{report}");
        assert!(
            !codes.contains("probe_failed"),
            "one cause, said once: {report}"
        );
        assert_eq!(
            connector_in(&report, "jira-tok")["diagnosis"],
            "keychain_locked",
            "{report}"
        );
    }
    let out = run_with_stdin(keyring.cmd(&home, &["token", "jira-tok"]), "");
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("latch keychain unlock"),
        "{}",
        stderr(&out)
    );
    let serve = Serve::start_cmd(
        keyring.cmd(&home, &["serve", "--listen", "127.0.0.1:0"]),
        std::process::Stdio::null(),
    );
    let (code, body) = curl(&[
        "-H",
        &format!("Authorization: Bearer {key}"),
        &serve.url("/jira-tok/rest/api/3/myself"),
    ]);
    assert_eq!(code, 502, "{body}");
    let refusal: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (refusal["error"].as_str(), refusal["reason"].as_str()),
        (Some("keychain_unavailable"), Some("locked")),
        "{body}"
    );

    // The fix Latch prints, as printed: the same credential works again.
    let out = run_with_stdin(
        keyring.cmd(&home, &["keychain", "unlock"]),
        "wrong password",
    );
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    keyring.ok(&home, &["keychain", "unlock"], PrivateKeyring::PASSWORD);
    let status: serde_json::Value =
        serde_json::from_str(&keyring.ok(&home, &["status", "--json"], "")).unwrap();
    assert_eq!(connector_in(&status, "jira-tok")["state"], "ok", "{status}");
    let (code, body) = curl(&[
        "-H",
        &format!("Authorization: Bearer {key}"),
        &serve.url("/jira-tok/rest/api/3/myself"),
    ]);
    assert_eq!(code, 200, "{body}");
    serve.stop();
}

/// One proxy per home: a second `latch serve` says who serves and exits 1; status and doctor
/// say the same, and the doctor asks no port (so the audit has no refusal of its own).
#[test]
fn one_home_is_served_once_and_every_face_says_by_whom() {
    let fixture = Fixture::start();
    let home = Home::with_fixture_provider(&fixture);
    let port = crate::support::free_port();
    home.append_config(&format!("\n[proxy]\nlisten = \"127.0.0.1:{port}\"\n"));
    let serve = Serve::start(&home);
    let out = home.run(&["serve"], "");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let said = format!("(latch serve, pid {})", serve.pid());
    assert!(
        stderr(&out).contains("already served on 127.0.0.1:") && stderr(&out).contains(&said),
        "{}",
        stderr(&out)
    );
    let status = home.json(&["status", "--json"]);
    assert_eq!(status["home"]["serving"]["by"], "latch serve", "{status}");
    assert_eq!(status["home"]["serving"]["pid"], serve.pid(), "{status}");
    assert!(home.ok(&["status"], "").contains(&said));
    for args in [
        &["doctor", "--json", "--offline"][..],
        &["doctor", "--json"][..],
    ] {
        let out = home.run(args, "");
        assert!(
            !stdout(&out).contains("proxy_port_busy"),
            "{}",
            stdout(&out)
        );
    }
    serve.stop();
    // No phantom `missing_key` from the doctor's own look at the proxy.
    let audit = home.ok(&["audit", "--json"], "");
    assert!(!audit.contains("missing_key"), "{audit}");
    // Stopped: nobody serves, and the next `latch serve` may.
    let status = home.json(&["status", "--json"]);
    assert!(status["home"]["serving"].is_null(), "{status}");
    Serve::start(&home).stop();
}

/// The audit reads in time order, and a minute's count of refusals says why and how many.
#[test]
fn the_audit_reads_in_time_order_with_counts_and_reasons() {
    let fixture = Fixture::start();
    let home = Home::with_fixture_provider(&fixture);
    assert!(home.login().status.success());
    let key = home.key_for("k", &["jira"]);
    let serve = Serve::start(&home);
    let myself = serve.url("/jira/rest/api/3/myself");
    assert_eq!(
        curl(&["-H", &format!("Authorization: Bearer {key}"), &myself]).0,
        200
    );
    for _ in 0..3 {
        assert_eq!(curl(&[&myself]).0, 401);
    }
    assert_eq!(
        curl(&["-H", &format!("Authorization: Bearer {key}"), &myself]).0,
        200
    );
    serve.stop();
    let entries: Vec<serde_json::Value> =
        serde_json::from_str(&home.ok(&["audit", "--json"], "")).unwrap();
    let times: Vec<&str> = entries.iter().map(|e| e["at"].as_str().unwrap()).collect();
    let mut sorted = times.clone();
    sorted.sort_unstable();
    assert_eq!(times, sorted, "{entries:?}");
    let refused = entries
        .iter()
        .find(|e| e["reason"] == "missing_key")
        .unwrap_or_else(|| panic!("{entries:?}"));
    assert_eq!(refused["count"], 3);
    let table = home.ok(&["audit"], "");
    assert!(
        table.contains("missing_key") && table.contains("401 ×3"),
        "{table}"
    );
}

/// A revoked key's name can be used again; each key keeps its own audit history.
#[test]
fn a_revoked_keys_name_is_free_again_and_histories_stay_apart() {
    let fixture = Fixture::start();
    let home = Home::with_fixture_provider(&fixture);
    assert!(home.login().status.success());
    let old = home.key_for("my-script", &["jira"]);
    let serve = Serve::start(&home);
    let myself = serve.url("/jira/rest/api/3/myself");
    assert_eq!(
        curl(&["-H", &format!("Authorization: Bearer {old}"), &myself]).0,
        200
    );
    home.ok(&["keys", "revoke", "my-script"], "");
    let new = home.key_for("my-script", &["confluence"]);
    assert_ne!(old, new);
    let out = home.run(&["keys", "create", "my-script", "--connector", "jira"], "");
    assert_ne!(out.status.code(), Some(0), "the live one's name is taken");
    let page = serve.url("/confluence/wiki/rest/api/user/current");
    assert_eq!(
        curl(&["-H", &format!("Authorization: Bearer {new}"), &page]).0,
        200
    );
    assert_eq!(
        curl(&["-H", &format!("Authorization: Bearer {old}"), &myself]).0,
        401
    );
    serve.stop();
    let mine: Vec<serde_json::Value> =
        serde_json::from_str(&home.ok(&["audit", "--key", "my-script", "--json"], "")).unwrap();
    assert_eq!(mine.len(), 1, "only the live key's requests: {mine:?}");
    assert_eq!(mine[0]["connector"], "confluence");
    let all: Vec<serde_json::Value> =
        serde_json::from_str(&home.ok(&["audit", "--json"], "")).unwrap();
    assert_eq!(
        all.iter().filter(|e| e["key"] == "my-script").count(),
        2,
        "the old key's request is kept: {all:?}"
    );
    let keys = home.ok(&["keys", "list", "--json"], "");
    assert_eq!(keys.matches("\"my-script\"").count(), 2, "{keys}");
}

/// The browser's page tells the outcome: a sign-in whose code exchange fails does not say
/// "Signed in".
#[test]
fn the_sign_in_page_tells_the_outcome() {
    let fixture = Fixture::start();
    let home = Home::new();
    let b = &fixture.base;
    // The app's client secret is wrong: the consent works, redeeming the code does not.
    home.add_fixture_provider_with_secret(&fixture, "not-the-secret");
    home.ok(&["connector", "add", "jira"], "");
    let page = home.file("page.html");
    let mut cmd = home.browser_cmd(&["login", "atlassian", "--timeout", "60"]);
    cmd.env("FIXTURE_BROWSER_DOM", &page);
    let out = run_with_stdin(cmd, "");
    assert_ne!(out.status.code(), Some(0), "{}", stderr(&out));
    // The browser (a process of its own) writes the page it ended on when it is done.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !page.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let shown = std::fs::read_to_string(&page).unwrap();
    assert!(
        shown.contains("Sign-in did not complete") && !shown.contains(">Signed in<"),
        "{shown}"
    );
    let _ = b;
}

/// A credential within 14 days of its end is `expiring`: in the JSON (state unchanged), the
/// table and the report.
#[test]
fn a_credential_ending_soon_says_so_before_it_breaks() {
    let fixture = Fixture::start();
    let home = Home::with_fixture_endpoints_only(&fixture);
    home.add_jira_api_token_connector(&[]);
    let soon = (time::OffsetDateTime::now_utc() + time::Duration::days(5)).date();
    home.ok(
        &[
            "credential",
            "set",
            "jira-tok",
            "--expires",
            &soon.to_string(),
        ],
        SCOPED_TOKEN,
    );
    let status = home.json(&["status", "--json"]);
    let c = connector_in(&status, "jira-tok");
    assert_eq!(c["state"], "ok", "{c}");
    assert_eq!(c["attention"]["code"], "expiring", "{c}");
    let table = home.ok(&["status"], "");
    assert!(
        table.contains("EXPIRES")
            && table.contains(&soon.to_string())
            && table.contains("(expiring)"),
        "{table}"
    );
    let file = home.file("report.html");
    home.run(
        &["doctor", "--offline", "--report", file.to_str().unwrap()],
        "",
    );
    let html = std::fs::read_to_string(&file).unwrap();
    assert!(html.contains("data-attention=\"expiring\""), "{html}");
}

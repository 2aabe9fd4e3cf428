//! `latch doctor`: each finding produced for real (fixture authorization server, real keychain,
//! real SQLite, real ports), its absence when healthy, the JSON schema, and the HTML report in
//! headless Chromium.

use std::process::Command;

use crate::support::{stderr, stdout, Fixture, Home, CLIENT_ID, CLIENT_SECRET};

fn doctor(home: &Home, args: &[&str]) -> (Option<i32>, serde_json::Value) {
    let mut full = vec!["doctor", "--json"];
    full.extend_from_slice(args);
    let out = home.run(&full, "");
    let json = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("doctor: {}{}", stdout(&out), stderr(&out)));
    (out.status.code(), json)
}

/// The report as headless Chromium renders it (its DOM).
fn rendered(report: &std::path::Path) -> String {
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--no-first-run",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", report.display()))
        .output()
        .unwrap();
    stdout(&out)
}

fn codes(report: &serde_json::Value) -> Vec<String> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap().to_owned())
        .collect()
}

fn signed_in(fixture: &Fixture) -> Home {
    let home = Home::with_fixture_provider(fixture);
    let out = home.login();
    assert!(out.status.success(), "{}", stderr(&out));
    home
}

const PROBLEMS: &[&str] = &[
    "authorize_audience_missing",
    "consent_failed",
    "callback_mismatch_suspected",
    "needs_login",
    "needs_step_up",
    "refresh_failing",
    "provider_mapping_wrong",
    "keychain_unreachable",
    "proxy_port_busy",
    "clock_skew",
    "inactivity_expiry_near",
    "absolute_expiry_near",
    "scopes_no_longer_required",
    "probe_failed",
    "mixed_classic_granular",
    "bitbucket_scope_on_atlassian",
    "missing_offline_access",
    "unknown_scope",
];

#[test]
fn a_healthy_setup_has_no_problem_and_a_stable_schema() {
    let fixture = Fixture::start();
    let home = signed_in(&fixture);
    let report_path = home.file("report.html");
    let (code, report) = doctor(
        &home,
        &["--probe", "--report", report_path.to_str().unwrap()],
    );
    assert_eq!(code, Some(0), "{report}");
    let found = codes(&report);
    for problem in PROBLEMS {
        assert!(
            !found.contains(&problem.to_string()),
            "{problem} in a healthy report: {report}"
        );
    }
    let keys: Vec<_> = report.as_object().unwrap().keys().cloned().collect();
    assert_eq!(
        keys,
        [
            "schema",
            "generated_at",
            "home",
            "healthy",
            "summary",
            "connectors",
            "findings",
            "providers"
        ]
    );
    assert_eq!(report["schema"], "latch.doctor/v1");
    let connector: Vec<_> = report["connectors"][0]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert_eq!(
        connector,
        [
            "name",
            "type",
            "provider",
            "auth",
            "state",
            "account",
            "site",
            "required",
            "requested",
            "granted",
            "missing",
            "extra",
            "access_expires_at",
            "last_rotation",
            "idle_days",
            "inactivity_expires_at",
            "absolute_expires_at",
            "last_error",
            "last_failure_at",
            "consecutive_failures",
            "probe",
            "credential",
            "diagnosis",
            // Added later: new fields come last.
            "oauth1",
            "attention",
            "base_url",
        ]
    );
    assert_eq!(report["connectors"][0]["probe"]["status"], 200);
    // The last probe is kept: a later offline report still shows it.
    let (_, later) = doctor(&home, &["--offline"]);
    assert_eq!(later["connectors"][0]["probe"]["status"], 200);
    assert_eq!(
        later["connectors"][0]["probe"]["at"],
        report["connectors"][0]["probe"]["at"]
    );
    let callback = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == "callback_url")
        .unwrap()
        .clone();
    assert!(callback["message"]
        .as_str()
        .unwrap()
        .contains(&fixture.redirect_uri));

    // The admin report renders in a real browser with one row per connector; no secret in it.
    let html = std::fs::read_to_string(&report_path).unwrap();
    for token in fixture.issued() {
        assert!(!html.contains(&token));
    }
    assert!(!html.contains(CLIENT_SECRET));
    let dom = rendered(&report_path);
    assert!(
        dom.contains("data-connector=\"jira\"") && dom.contains("data-connector=\"confluence\""),
        "{dom}"
    );
    assert_eq!(dom.matches("data-state=\"ok\"").count(), 2, "{dom}");
    assert!(
        dom.contains("class=\"verdict\" style=\"background:#15803d\">healthy<"),
        "{dom}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(home.file("report.json")).unwrap()).unwrap();
    assert_eq!(json["schema"], "latch.doctor/v1");
}

#[test]
fn dead_family_missing_scope_extra_scope_and_expiries_are_found() {
    let fixture = Fixture::start();
    let home = Home::with_fixture_provider(&fixture);
    fixture.control(serde_json::json!({ "drop_scopes": ["write:confluence-content"] }));
    assert!(home.login().status.success());
    let (code, report) = doctor(&home, &[]);
    assert_eq!(code, Some(1));
    assert!(
        codes(&report).contains(&"needs_step_up".to_owned()),
        "{report}"
    );

    // Least privilege: a removed connector leaves granted scopes nobody needs.
    home.ok(&["connector", "remove", "confluence"], "");
    let (code, report) = doctor(&home, &[]);
    assert_eq!(code, Some(0), "a warning is not an error: {report}");
    assert!(codes(&report).contains(&"scopes_no_longer_required".to_owned()));

    // Idle for 80 days, consented 350 days ago. Offline: a networked doctor proves the sign-in
    // alive with a refresh, which is itself the cure for idleness.
    let db = rusqlite::Connection::open(home.file("latch.db")).unwrap();
    db.execute(
        "UPDATE grants SET refreshed_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now', '-80 days'),
                           obtained_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now', '-350 days')",
        [],
    )
    .unwrap();
    let (_, report) = doctor(&home, &["--offline"]);
    let found = codes(&report);
    assert!(
        found.contains(&"inactivity_expiry_near".to_owned()),
        "{report}"
    );
    assert!(
        found.contains(&"absolute_expiry_near".to_owned()),
        "{report}"
    );

    // A stale, rotated-away refresh token.
    fixture.revoke_all();
    home.expire_access();
    assert_eq!(home.token("jira").status.code(), Some(6));
    let (code, report) = doctor(&home, &[]);
    assert_eq!(code, Some(1));
    assert!(
        codes(&report).contains(&"needs_login".to_owned()),
        "{report}"
    );
}

#[test]
fn identity_provider_errors_are_explained() {
    let fixture = Fixture::start();
    let home = Home::new();
    crate::support::require_secret_service();
    let b = &fixture.base;
    // A hand-made Atlassian provider that forgot `audience` (the seed's first troubleshooting row).
    let manifest = home.file("no-audience.toml");
    std::fs::write(
        &manifest,
        format!(
            r#"[providers.atl-custom]
display_name = "Atlassian without audience"
vocabulary = "atlassian"
client_type = "confidential"
token_request = "json"
authorize_url = "{b}/authorize"
token_url = "{b}/oauth/token"
api_base = "{b}"
needs_offline_access = true
authorize_params = {{ prompt = "consent" }}

[connectors.jira-custom]
display_name = "Jira (custom)"
provider = "atl-custom"
upstream_scopes = ["read:me", "read:jira-work", "offline_access"]
api_base = "{{api_base}}/ex/jira/{{cloud_id}}"
auth_modes = ["user"]
probe = {{ method = "GET", path = "/rest/api/3/myself" }}
"#
        ),
    )
    .unwrap();
    home.ok(&["manifest", "add", manifest.to_str().unwrap()], "");
    home.ok(
        &[
            "provider",
            "add",
            "atl-custom",
            "--client-id",
            CLIENT_ID,
            "--redirect-uri",
            &fixture.redirect_uri,
        ],
        CLIENT_SECRET,
    );
    home.ok(&["connector", "add", "jira-custom"], "");
    let out = crate::support::run_with_stdin(
        home.browser_cmd(&["login", "atl-custom", "--timeout", "60"]),
        "",
    );
    assert_eq!(out.status.code(), Some(6), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("audience=api.atlassian.com"),
        "{}",
        stderr(&out)
    );
    let (code, report) = doctor(&home, &[]);
    assert_eq!(code, Some(1));
    let found = codes(&report);
    assert!(
        found.contains(&"authorize_audience_missing".to_owned()),
        "{report}"
    );
    assert!(found.contains(&"consent_failed".to_owned()), "{report}");

    // A callback the provider does not know: the browser never comes back.
    let other = format!("http://127.0.0.1:{}/callback", crate::support::free_port());
    let home2 = Home::new();
    home2.add_fixture_provider(&fixture, "atlassian", &other, &["--api-base", b]);
    home2.ok(&["connector", "add", "jira"], "");
    let out = crate::support::run_with_stdin(
        home2.browser_cmd(&["login", "atlassian", "--timeout", "3"]),
        "",
    );
    assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));
    let (_, report) = doctor(&home2, &[]);
    let suspected = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == "callback_mismatch_suspected")
        .cloned();
    let suspected = suspected.unwrap_or_else(|| panic!("{report}"));
    assert!(
        suspected["fix"].as_str().unwrap().contains(&other),
        "the exact URI to register: {suspected}"
    );
}

#[test]
fn wrong_mapping_lint_keychain_port_clock_and_probe_are_found() {
    let fixture = Fixture::start();
    let home = signed_in(&fixture);
    // A connector attached to the wrong kind of provider.
    home.add_fixture_provider(&fixture, "bitbucket", &fixture.redirect_uri, &[]);
    // `connector add` refuses a Jira connector on a Bitbucket provider; a hand edit does not.
    let out = home.run(
        &[
            "connector",
            "add",
            "jira-bb",
            "--type",
            "jira",
            "--provider",
            "bitbucket",
        ],
        "",
    );
    assert_ne!(out.status.code(), Some(0));
    assert!(
        stderr(&out).contains("--preset atlassian"),
        "{}",
        stderr(&out)
    );
    home.append_config("\n[connectors.jira-bb]\ntype = \"jira\"\nprovider = \"bitbucket\"\n");
    // A manifest connector breaking the scope rules.
    let manifest = home.file("lint.toml");
    std::fs::write(
        &manifest,
        r#"[connectors.messy]
display_name = "Messy"
provider = "atlassian"
upstream_scopes = ["read:jira-work", "read:issue:jira", "pullrequest", "read:jira-wrok"]
api_base = "{api_base}/ex/jira/{cloud_id}"
auth_modes = ["user"]
probe = { method = "GET", path = "/rest/api/3/myself" }
"#,
    )
    .unwrap();
    home.ok(&["manifest", "add", manifest.to_str().unwrap()], "");
    home.ok(&["connector", "add", "messy"], "");
    let (code, report) = doctor(&home, &[]);
    assert_eq!(code, Some(1));
    let found = codes(&report);
    for expected in [
        "provider_mapping_wrong",
        "atlassian_scope_on_bitbucket",
        "mixed_classic_granular",
        "bitbucket_scope_on_atlassian",
        "missing_offline_access",
        "unknown_scope",
    ] {
        assert!(found.contains(&expected.to_owned()), "{expected}: {report}");
    }
    home.ok(&["connector", "remove", "messy"], "");
    home.ok(&["connector", "remove", "jira-bb"], "");

    // The proxy port held by another program; then by a Latch proxy.
    let squatter = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = squatter.local_addr().unwrap().port();
    home.append_config(&format!("\n[proxy]\nlisten = \"127.0.0.1:{port}\"\n"));
    let (_, report) = doctor(&home, &[]);
    assert!(
        codes(&report).contains(&"proxy_port_busy".to_owned()),
        "{report}"
    );
    drop(squatter);

    // The clock: the provider's runs ten minutes ahead.
    fixture.control(serde_json::json!({ "date_skew_secs": 600 }));
    let (_, report) = doctor(&home, &[]);
    assert!(
        codes(&report).contains(&"clock_skew".to_owned()),
        "{report}"
    );
    fixture.control(serde_json::json!({ "date_skew_secs": 0 }));

    // The probe: the gateway refuses without naming a scope (a product permission), cannot find
    // the site, or fails (`--probe` is still accepted; probing is the default).
    for (status, expected) in [
        (403, "permission_missing"),
        (404, "site_wrong"),
        (500, "probe_failed"),
    ] {
        fixture.control(serde_json::json!({ "gateway_status": status }));
        let (code, report) = doctor(&home, &["--probe"]);
        assert_eq!(code, Some(1), "{report}");
        assert!(
            codes(&report).contains(&expected.to_owned()),
            "{expected}: {report}"
        );
    }
    fixture.control(serde_json::json!({ "gateway_status": 0 }));

    // No keychain: one clear finding (status and doctor still run).
    let mut cmd = home.cmd(&["doctor", "--json"]);
    cmd.env_remove("DBUS_SESSION_BUS_ADDRESS")
        .env_remove("DISPLAY");
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        codes(&report).contains(&"keychain_unreachable".to_owned()),
        "{report}"
    );
}

#[test]
fn doctor_exits_2_when_it_cannot_run() {
    let home = Home::new();
    std::fs::write(home.file("latch.toml"), "[proxy\n").unwrap();
    let out = home.run(&["doctor"], "");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

/// Issue "doctor tells the truth": after the identity provider revoked the token family (a
/// password change does that), doctor said "healthy" until some request failed. Now it proves
/// every credential alive first, and says to sign in again with the likely reason. A probe
/// refused for scope is a missing scope, not "a scope or permission".
#[test]
fn doctor_notices_a_revoked_sign_in_without_waiting_for_a_request() {
    let fixture = Fixture::start();
    let home = signed_in(&fixture);
    let (code, report) = doctor(&home, &[]);
    assert_eq!(code, Some(0), "{report}");
    fixture.revoke_all();
    // Offline, nothing is asked of the network: the facts as last seen.
    let (code, _) = doctor(&home, &["--offline"]);
    assert_eq!(code, Some(0));
    let (code, report) = doctor(&home, &[]);
    assert_eq!(code, Some(1), "{report}");
    let dead = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == "needs_login")
        .unwrap_or_else(|| panic!("{report}"))
        .clone();
    assert!(
        dead["message"].as_str().unwrap().contains("revoked"),
        "{dead}"
    );
    assert!(
        dead["fix"]
            .as_str()
            .unwrap()
            .contains("latch login atlassian"),
        "{dead}"
    );
    assert_eq!(report["connectors"][0]["state"], "needs_login");

    // Signed in again without `read:jira-work`: jira's probe is refused for scope.
    fixture.control(serde_json::json!({ "drop_scopes": ["read:jira-work"] }));
    assert!(home.login().status.success());
    let (code, report) = doctor(&home, &[]);
    assert_eq!(code, Some(1), "{report}");
    let found = codes(&report);
    assert!(found.contains(&"scope_missing".to_owned()), "{report}");
    let jira = report["connectors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "jira")
        .unwrap();
    assert_eq!(jira["diagnosis"], "scope_missing");
}

/// The admin report as a person reads it: whole timestamps with how far away they are, only
/// the timeline a credential kind can have, the account the probe saw, a Data Center row's
/// instance, a providers section, and the verdict as a coloured badge.
#[test]
fn the_report_says_what_each_credential_is_and_when() {
    use crate::support::SCOPED_TOKEN;
    let fixture = Fixture::start();
    let home = Home::with_fixture_endpoints_only(&fixture);
    home.add_jira_service_account();
    home.add_jira_api_token_connector(&[]);
    let later = (time::OffsetDateTime::now_utc() + time::Duration::days(8)).date();
    home.ok(
        &[
            "credential",
            "set",
            "jira-tok",
            "--expires",
            &later.to_string(),
        ],
        SCOPED_TOKEN,
    );
    let dc_base = format!("{}/dc", fixture.base);
    home.ok(
        &[
            "provider",
            "add",
            "corp-jira",
            "--preset",
            "jira-dc",
            "--base-url",
            &dc_base,
        ],
        "",
    );
    crate::datacenter::add_pat_connector(&home);
    home.ok(&["credential", "set", "dc-pat"], crate::datacenter::DC_PAT);

    let report_path = home.file("report.html");
    let (code, json) = doctor(
        &home,
        &["--probe", "--report", report_path.to_str().unwrap()],
    );
    assert_eq!(code, Some(0), "{json}");
    let dom = rendered(&report_path);
    let row = |name: &str| {
        let start = dom
            .find(&format!(
                "<tr class=\"connector\" data-connector=\"{name}\""
            ))
            .unwrap_or_else(|| panic!("no row for {name}: {dom}"));
        let end = dom[start..].find("</tr>").unwrap() + start;
        dom[start..end].to_owned()
    };

    // Whole timestamps, each with its distance from now.
    assert!(dom.contains("time{white-space:nowrap}"), "{dom}");
    let svc = row("jira-svc");
    assert!(svc.contains("access token expires: <time"), "{svc}");
    assert!(
        svc.contains("(in 59 min)") || svc.contains("(in 60 min)"),
        "{svc}"
    );
    let tok = row("jira-tok");
    assert!(
        tok.contains("(in 7 days)") || tok.contains("(in 8 days)"),
        "{tok}"
    );
    // A service account has no rotating refresh token, so no last rotation.
    assert!(!svc.contains("last rotation"), "{svc}");
    // The account the probe saw, for a service account and a PAT.
    for (name, account) in [
        ("jira-svc", json_account(&json, "jira-svc")),
        ("dc-pat", json_account(&json, "dc-pat")),
    ] {
        assert!(!account.is_empty(), "{name} has an account in JSON: {json}");
        assert!(row(name).contains(&account), "{name}: {}", row(name));
    }
    // A Data Center row names its instance; what the credentials carry is said.
    let pat = row("dc-pat");
    assert!(pat.contains(&dc_base) && !pat.contains("no site"), "{pat}");
    assert!(pat.contains("carries all of"), "{pat}");
    assert!(
        svc.contains("read:jira-work") && !svc.contains("offline_access"),
        "{svc}"
    );

    // The providers: preset, instance or sites, callback (only where one signs in), secret.
    let providers = &dom[dom.find("id=\"providers\"").expect("a providers section")..];
    let corp = &providers[providers.find("data-provider=\"corp-jira\"").unwrap()..];
    let corp = &corp[..corp.find("</tr>").unwrap()];
    assert!(
        corp.contains("preset jira-dc") && corp.contains(&dc_base),
        "{corp}"
    );
    assert!(corp.contains("no sign-in through it"), "{corp}");
    assert!(
        providers.contains("data-provider=\"atlassian\""),
        "{providers}"
    );

    // The verdict is a badge coloured by the outcome.
    assert!(
        dom.contains("id=\"verdict\" class=\"verdict\" style=\"background:#15803d\">healthy<"),
        "{dom}"
    );
    // The README's picture of the report, drawn by Chromium.
    let shots = crate::support::repo_path("target/desktop-e2e");
    std::fs::create_dir_all(&shots).unwrap();
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--no-first-run",
            "--hide-scrollbars",
            "--window-size=1280,900",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!(
            "--screenshot={}",
            shots.join("doctor-report.png").display()
        ))
        .arg(format!("file://{}", report_path.display()))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
}

/// A connector's account in `doctor --json` (empty when there is none).
fn json_account(report: &serde_json::Value, name: &str) -> String {
    crate::support::connector_in(report, name)["account"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

//! Every Atlassian Cloud credential without a browser sign-in: service accounts (client
//! credentials), scoped and classic API tokens, sites by name, and the doctor telling a dead
//! sign-in from a refused credential. Driven through the README's own commands against the
//! fixture, which behaves like Atlassian for these (a service-account client with fixed scopes,
//! tokens that work only where the real ones do, `/_edge/tenant_info`, two sites).

use crate::support::{
    connector_in, curl, curl_until_settled, error_code, keychain_lookup, keychain_replace,
    python_requests_ok, stderr, stdout, Fixture, Home, Serve, BETA_CLOUD_ID, CLASSIC_TOKEN,
    CLOUD_ID, EMAIL, SCOPED_TOKEN, SVC_CLIENT_ID, SVC_CLIENT_SECRET, SVC_EMAIL, SVC_TOKEN,
};

fn bearer(key: &str) -> String {
    format!("Authorization: Bearer {key}")
}

fn doctor(home: &Home, extra: &[&str]) -> (Option<i32>, serde_json::Value) {
    let mut args = vec!["doctor", "--json"];
    args.extend_from_slice(extra);
    let out = home.run(&args, "");
    let report = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("doctor printed no JSON: {}", stderr(&out)));
    (out.status.code(), report)
}

fn findings<'a>(report: &'a serde_json::Value, code: &str) -> Vec<&'a serde_json::Value> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["code"] == code)
        .collect()
}

/// The README's service-account and API-token recipes: no 3LO app, no client secret of a
/// provider, no `latch login` — and both answer through `latch serve` to curl and Python.
#[test]
fn service_accounts_and_api_tokens_work_through_serve_without_a_sign_in() {
    let fixture = Fixture::start();
    let home = Home::with_fixture_endpoints_only(&fixture);
    // Service account (README "Service accounts").
    let out = home.add_jira_service_account();
    assert!(out.contains("obtained a token"), "{out}");
    // No `scope` by default: the credential's scopes were chosen when it was created.
    let sent = &fixture.stats()["last_client_credentials"];
    assert!(
        sent["scope"].is_null() && sent["audience"].is_null(),
        "{sent}"
    );
    // A scoped API token (README "API tokens"), a classic one, and a service account's token.
    home.add_jira_api_token_connector(&[]);
    let out = home.ok(&["credential", "set", "jira-tok"], SCOPED_TOKEN);
    assert!(out.contains("scoped API token"), "{out}");
    home.ok(
        &[
            "connector",
            "add",
            "wiki",
            "--type",
            "confluence",
            "--auth",
            "api-token",
            "--email",
            EMAIL,
            "--site",
            "acme",
        ],
        "",
    );
    let out = home.ok(&["credential", "set", "wiki"], CLASSIC_TOKEN);
    assert!(out.contains("classic API token"), "{out}");
    home.ok(
        &[
            "connector",
            "add",
            "bot",
            "--type",
            "jira",
            "--auth",
            "api-token",
            "--email",
            SVC_EMAIL,
            "--site",
            "acme",
        ],
        "",
    );
    home.ok(&["credential", "set", "bot"], SVC_TOKEN);

    let status = home.json(&["status", "--json"]);
    for name in ["jira-svc", "jira-tok", "wiki", "bot"] {
        assert_eq!(
            connector_in(&status, name)["state"],
            "ok",
            "{name}: {status}"
        );
    }
    let provider = &status["providers"][0];
    assert_eq!(provider["client_secret"], "not_needed", "{status}");
    assert_eq!(provider["app_needed"], false);
    assert_eq!(
        connector_in(&status, "wiki")["credential"]["token_kind"],
        "classic"
    );
    assert_eq!(
        connector_in(&status, "jira-tok")["credential"]["token_kind"],
        "scoped"
    );
    // The table names each state too.
    let table = home.ok(&["status"], "");
    assert!(!table.contains("misconfigured"), "{table}");

    let k = home.key_for("ci", &["jira-svc", "jira-tok", "wiki", "bot"]);
    let serve = Serve::start(&home);
    for (path, via, account) in [
        ("/jira-svc/rest/api/3/myself", "gateway", "service"),
        ("/jira-tok/rest/api/3/myself", "gateway", EMAIL),
        ("/wiki/wiki/rest/api/space", "site", EMAIL),
        ("/bot/rest/api/3/myself", "gateway", SVC_EMAIL),
    ] {
        let (status, body) = curl(&["-H", &bearer(&k), &serve.url(path)]);
        assert_eq!(status, 200, "{path}: {body}");
        let echoed: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(echoed["via"], via, "{path}: {body}");
        assert_eq!(echoed["cloudId"], CLOUD_ID, "{path}: {body}");
        assert_eq!(echoed["accountId"], account, "{path}: {body}");
    }
    // Python `requests`, unmodified, Basic with the key as the password.
    python_requests_ok(
        &serve.url(""),
        &k,
        &[
            "/jira-svc/rest/api/3/myself",
            "/jira-tok/rest/api/2/project",
            "/wiki/wiki/rest/api/space",
        ],
        None,
    );
    drop(serve);

    // The admin's doctor: healthy, with each credential kind in the report; then the admin
    // deletes the service account's credential.
    let html_path = home.file("report.html");
    let (code, report) = doctor(&home, &["--report", html_path.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{report}");
    let html = std::fs::read_to_string(&html_path).unwrap();
    assert!(html.contains("service account credential"), "{html}");
    assert!(
        html.contains("API token (classic)") && html.contains("API token (scoped)"),
        "{html}"
    );
    for secret in [SVC_CLIENT_SECRET, SCOPED_TOKEN, CLASSIC_TOKEN, SVC_TOKEN] {
        assert!(!html.contains(secret), "a secret in the report");
    }
    fixture.control(serde_json::json!({ "svc_disabled": true }));
    let (code, report) = doctor(&home, &[]);
    assert_eq!(code, Some(1), "{report}");
    let refused = findings(&report, "credential_rejected");
    assert_eq!(refused.len(), 1, "{report}");
    assert_eq!(refused[0]["subject"], "connector:jira-svc");
    let text = refused[0].to_string();
    assert!(
        text.contains("Service accounts") && text.contains("admin.atlassian.com"),
        "{text}"
    );
    assert!(
        !text.contains("latch login"),
        "a service account cannot sign in: {text}"
    );
    let status = home.json(&["status", "--json"]);
    assert_eq!(
        connector_in(&status, "jira-svc")["state"],
        "credential_rejected"
    );
    // The other credentials are untouched.
    assert_eq!(connector_in(&status, "jira-tok")["state"], "ok");
}

/// A service account asked for scopes it was not given, or with a wrong secret: the message
/// names the credential and where an admin fixes it, never `latch login`; nothing is lost.
#[test]
fn a_refused_service_credential_says_where_to_fix_it() {
    let fixture = Fixture::start();
    let home = Home::with_fixture_endpoints_only(&fixture);
    home.ok(
        &[
            "connector",
            "add",
            "svc",
            "--type",
            "jira",
            "--auth",
            "service",
            "--client-id",
            SVC_CLIENT_ID,
            "--site",
            "acme",
            "--scope",
            "read:me",
            "--scope",
            "read:jira-work",
            "--audience",
            "api.atlassian.com",
        ],
        "",
    );
    let out = home.run(&["credential", "set", "svc"], SVC_CLIENT_SECRET);
    assert_eq!(out.status.code(), Some(6), "{}", stderr(&out));
    let said = stderr(&out);
    assert!(
        said.contains("Client has not been granted scopes: read:me"),
        "{said}"
    );
    assert!(said.contains("admin.atlassian.com"), "{said}");
    assert!(!said.contains("latch login"), "{said}");
    let sent = &fixture.stats()["last_client_credentials"];
    assert_eq!(sent["scope"], "read:me read:jira-work");
    assert_eq!(sent["audience"], "api.atlassian.com");
    // The secret is kept (nothing the person typed is lost), and status says what is wrong.
    let status = home.json(&["status", "--json"]);
    assert_eq!(
        connector_in(&status, "svc")["state"],
        "credential_rejected",
        "{status}"
    );
    let out = home.run(&["token", "svc"], "");
    assert_eq!(out.status.code(), Some(6));
    assert!(
        stderr(&out).contains("Service accounts"),
        "{}",
        stderr(&out)
    );
    // The admin fixes the request (no `scopes`): storing the same secret again works.
    let toml = std::fs::read_to_string(home.file("latch.toml")).unwrap();
    std::fs::write(
        home.file("latch.toml"),
        toml.replace("scopes = [\"read:me\", \"read:jira-work\"]\n", ""),
    )
    .unwrap();
    home.ok(&["credential", "set", "svc"], SVC_CLIENT_SECRET);
    let status = home.json(&["status", "--json"]);
    assert_eq!(connector_in(&status, "svc")["state"], "ok", "{status}");
    // A wrong secret: `invalid_client`, the same kind of answer.
    let out = home.run(&["credential", "set", "svc"], "not-the-secret");
    assert_eq!(out.status.code(), Some(6), "{}", stderr(&out));
    assert!(stderr(&out).contains("invalid_client"), "{}", stderr(&out));
}

/// Scoped tokens go to the gateway, classic ones to the site URL; a pinned kind is checked
/// where it works only; expiries are kept and warned about; `credential remove` deletes the item;
/// when a token stops working where Latch sends it, doctor finds where it works.
#[test]
fn api_tokens_go_where_they_work_and_say_when_they_expire() {
    let fixture = Fixture::start();
    let home = Home::with_fixture_endpoints_only(&fixture);
    home.add_jira_api_token_connector(&["--token", "classic"]);
    // Pinned classic, but the token is scoped: refused, kept, and status says so.
    let out = home.run(&["credential", "set", "jira-tok"], SCOPED_TOKEN);
    assert_eq!(out.status.code(), Some(6), "{}", stderr(&out));
    assert!(stderr(&out).contains("the site URL"), "{}", stderr(&out));
    let status = home.json(&["status", "--json"]);
    assert_eq!(
        connector_in(&status, "jira-tok")["state"],
        "credential_rejected"
    );
    // The right token, with its expiry 10 days out: stored, shown, warned about.
    let expires = (time::OffsetDateTime::now_utc() + time::Duration::days(10)).date();
    let out = home.ok(
        &[
            "credential",
            "set",
            "jira-tok",
            "--expires",
            &expires.to_string(),
            "--json",
        ],
        CLASSIC_TOKEN,
    );
    let stored: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(stored["token_kind"], "classic");
    assert_eq!(stored["check"]["result"], "ok");
    let status = home.json(&["status", "--json"]);
    let c = connector_in(&status, "jira-tok");
    assert_eq!(c["state"], "ok");
    assert!(c["credential"]["expires_at"]
        .as_str()
        .unwrap()
        .starts_with(&expires.to_string()));
    let (code, report) = doctor(&home, &[]);
    assert_eq!(code, Some(0), "a warning is not an error: {report}");
    assert_eq!(
        findings(&report, "credential_expiry_near").len(),
        1,
        "{report}"
    );
    // An expiry in the past is refused before anything is stored.
    let out = home.run(
        &["credential", "set", "jira-tok", "--expires", "2020-01-01"],
        CLASSIC_TOKEN,
    );
    assert_ne!(out.status.code(), Some(0));
    assert!(stderr(&out).contains("in the past"), "{}", stderr(&out));
    // Garbage is a usage error.
    let out = home.run(
        &["credential", "set", "jira-tok", "--expires", "soonish"],
        CLASSIC_TOKEN,
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));

    // Unpinned: Latch finds out (site first, then gateway) and remembers.
    home.ok(
        &[
            "connector",
            "add",
            "conf-tok",
            "--type",
            "confluence",
            "--auth",
            "api-token",
            "--email",
            EMAIL,
            "--site",
            "acme",
        ],
        "",
    );
    home.ok(&["credential", "set", "conf-tok"], SCOPED_TOKEN);
    let k = home.key_for("k", &["conf-tok"]);
    let serve = Serve::start(&home);
    let (status, body) = curl(&[
        "-H",
        &bearer(&k),
        &serve.url("/conf-tok/wiki/rest/api/space"),
    ]);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"via\":\"gateway\""), "{body}");
    drop(serve);
    // The remembered kind goes stale (say the person swapped tokens in the keychain by hand):
    // the proxy's 401 passes through; doctor finds where the token works and says so.
    let db = rusqlite::Connection::open(home.file("latch.db")).unwrap();
    db.execute(
        "UPDATE connectors SET token_kind = 'classic' WHERE name = 'conf-tok'",
        [],
    )
    .unwrap();
    let (_, report) = doctor(&home, &[]);
    assert_eq!(
        findings(&report, "api_token_kind_changed").len(),
        1,
        "{report}"
    );
    let status = home.json(&["status", "--json"]);
    assert_eq!(
        connector_in(&status, "conf-tok")["credential"]["token_kind"],
        "scoped"
    );
    // The person revokes the token: doctor names it.
    fixture.control(serde_json::json!({ "revoked_api_tokens": [SCOPED_TOKEN] }));
    let (code, report) = doctor(&home, &[]);
    assert_eq!(code, Some(1), "{report}");
    let refused = findings(&report, "credential_rejected");
    assert!(
        refused.iter().any(|f| f["subject"] == "connector:conf-tok"
            && f["fix"].as_str().unwrap().contains("api-tokens")),
        "{report}"
    );

    // `credential remove` deletes the keychain item; the connector then has none.
    let home_id = home.json(&["status", "--json"])["home"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let item = format!("{home_id}/connector/jira-tok/credential");
    assert!(keychain_lookup(&item).is_some());
    home.ok(&["credential", "remove", "jira-tok"], "");
    assert!(
        keychain_lookup(&item).is_none(),
        "the keychain item is gone"
    );
    let status = home.json(&["status", "--json"]);
    assert_eq!(
        connector_in(&status, "jira-tok")["state"],
        "credential_missing"
    );
    let out = home.run(&["token", "jira-tok"], "");
    assert_eq!(out.status.code(), Some(6));
    assert!(
        stderr(&out).contains("latch credential set jira-tok"),
        "{}",
        stderr(&out)
    );
}

/// The proxy keeps a static credential in memory (a keychain read is a D-Bus round trip), so
/// one replaced behind Latch's back — in the keychain's own UI — must not stay stale: the
/// upstream's 401 makes the proxy read the keychain again and retry once with the new token.
#[test]
fn a_token_replaced_in_the_keychain_works_at_once_through_serve() {
    let fixture = Fixture::start();
    let home = Home::with_fixture_endpoints_only(&fixture);
    home.ok(
        &[
            "connector",
            "add",
            "conf-tok",
            "--type",
            "confluence",
            "--auth",
            "api-token",
            "--email",
            EMAIL,
            "--site",
            "acme",
            "--token",
            "scoped",
        ],
        "",
    );
    // A mistyped token: refused by the check, kept.
    let out = home.run(&["credential", "set", "conf-tok"], "mistyped-token");
    assert_eq!(out.status.code(), Some(6), "{}", stderr(&out));
    let k = home.key_for("k", &["conf-tok"]);
    let serve = Serve::start(&home);
    let url = serve.url("/conf-tok/wiki/rest/api/space");
    let (status, body) = curl(&["-H", &bearer(&k), &url]);
    assert_eq!(
        status, 401,
        "the upstream's answer to the mistyped token: {body}"
    );
    let home_id = home.json(&["status", "--json"])["home"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    keychain_replace(
        &format!("{home_id}/connector/conf-tok/credential"),
        SCOPED_TOKEN,
    );
    let (status, body) = curl(&["-H", &bearer(&k), &url]);
    assert_eq!(status, 200, "the replaced token is used at once: {body}");
    assert!(body.contains("\"via\":\"gateway\""), "{body}");
}

/// A site by name, by URL or by cloud id, for every mode, without a sign-in: the cloud id comes
/// from `/_edge/tenant_info` once and is remembered; a classic token needs the site's URL.
#[test]
fn sites_resolve_without_a_sign_in_and_are_remembered() {
    let fixture = Fixture::start();
    let home = Home::with_fixture_endpoints_only(&fixture);
    let site_url = format!("{}/__site/beta", fixture.base);
    for (name, site) in [
        ("by-name", "acme"),
        ("by-url", site_url.as_str()),
        ("by-id", CLOUD_ID),
    ] {
        home.ok(
            &[
                "connector",
                "add",
                name,
                "--type",
                "jira",
                "--auth",
                "service",
                "--client-id",
                SVC_CLIENT_ID,
                "--site",
                site,
            ],
            "",
        );
        home.ok(&["credential", "set", name], SVC_CLIENT_SECRET);
    }
    // A classic token with a bare cloud id nobody learnt the URL of cannot reach the site URL
    // (had a sign-in or tenant_info told Latch, it would); a typo'd site cannot be learnt.
    // Both are stored; both say what to do.
    home.ok(
        &[
            "connector",
            "add",
            "classic-id",
            "--type",
            "jira",
            "--auth",
            "api-token",
            "--email",
            EMAIL,
            "--site",
            "33333333-4444-5555-6666-777777777777",
            "--token",
            "classic",
        ],
        "",
    );
    home.run(&["credential", "set", "classic-id"], CLASSIC_TOKEN);
    home.ok(
        &[
            "connector",
            "add",
            "typo",
            "--type",
            "jira",
            "--auth",
            "service",
            "--client-id",
            SVC_CLIENT_ID,
            "--site",
            "acmee",
        ],
        "",
    );
    home.ok(&["credential", "set", "typo"], SVC_CLIENT_SECRET);
    let k = home.key_for("k", &["by-name", "by-url", "by-id", "classic-id", "typo"]);
    let serve = Serve::start(&home);
    for (path, cloud) in [
        ("/by-name/rest/api/3/myself", CLOUD_ID),
        ("/by-url/rest/api/3/myself", BETA_CLOUD_ID),
        ("/by-id/rest/api/3/myself", CLOUD_ID),
    ] {
        let (status, body) = curl(&["-H", &bearer(&k), &serve.url(path)]);
        assert_eq!(status, 200, "{path}: {body}");
        assert!(body.contains(cloud), "{path}: {body}");
    }
    let (status, body) = curl(&[
        "-H",
        &bearer(&k),
        &serve.url("/classic-id/rest/api/3/myself"),
    ]);
    assert_eq!(
        (status, error_code(&body).as_str()),
        (502, "site_unbound"),
        "{body}"
    );
    assert!(body.contains("site's own URL"), "{body}");
    let (status, body) = curl(&["-H", &bearer(&k), &serve.url("/typo/rest/api/3/myself")]);
    assert_eq!(
        (status, error_code(&body).as_str()),
        (502, "site_unbound"),
        "{body}"
    );
    assert!(
        body.contains("cloud id") && body.contains("latch connector set typo"),
        "{body}"
    );
    drop(serve);
    // Learnt once (`acme` and the beta URL), kept in SQLite with when and where from.
    let learnt = fixture.stats()["tenant_info_calls"].as_u64().unwrap();
    let db = rusqlite::Connection::open(home.file("latch.db")).unwrap();
    let rows: Vec<(String, String, String)> = db
        .prepare("SELECT site_url, cloud_id, source FROM site_ids ORDER BY site_url")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(
        rows.iter()
            .any(|(url, id, source)| url.ends_with("/__site/acme")
                && id == CLOUD_ID
                && source == "tenant_info"),
        "{rows:?}"
    );
    let serve = Serve::start(&home);
    let (status, _) = curl(&["-H", &bearer(&k), &serve.url("/by-name/rest/api/3/myself")]);
    assert_eq!(status, 200);
    let typo_calls = 1; // the typo is asked again: nothing was learnt for it
    let now = fixture.stats()["tenant_info_calls"].as_u64().unwrap();
    assert!(
        now <= learnt + typo_calls,
        "remembered, not asked again: {learnt} → {now}"
    );
}

/// A sign-in that reaches two sites, with no terminal to choose: both connectors wait; the
/// proxy's refusal names the command; `latch connector set` binds them with no new consent.
#[test]
fn choosing_among_two_sites_needs_no_new_consent() {
    let fixture = Fixture::start();
    fixture.control(serde_json::json!({ "extra_site": true }));
    let home = Home::with_fixture_provider(&fixture);
    let out = home.login();
    assert!(out.status.success(), "{}", stderr(&out));
    // No terminal to ask in: the hint needs no second consent.
    assert!(
        stdout(&out).contains("latch connector set jira --site NAME")
            && !stdout(&out).contains("latch login atlassian --site"),
        "{}",
        stdout(&out)
    );
    let status = home.json(&["status", "--json"]);
    assert_eq!(
        connector_in(&status, "jira")["state"],
        "site_unbound",
        "{status}"
    );
    let sites: Vec<&str> = status["providers"][0]["sites"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(sites, ["acme", "beta"]);
    let k = home.key_for("k", &["jira"]);
    let serve = Serve::start(&home);
    let myself = serve.url("/jira/rest/api/3/myself");
    let (status, body) = curl(&["-H", &bearer(&k), &myself]);
    assert_eq!(
        (status, error_code(&body).as_str()),
        (502, "site_unbound"),
        "{body}"
    );
    assert!(
        body.contains("latch connector set jira --site") && body.contains("acme, beta"),
        "{body}"
    );
    let consents = fixture.stats()["token_calls"]["authorization_code"]
        .as_u64()
        .unwrap();
    let out = home.ok(&["connector", "set", "jira", "--site", "beta"], "");
    assert!(out.contains("site beta"), "{out}");
    // The running proxy picks up the edit (it watches latch.toml).
    let (status, body) = curl_until_settled(
        &["-H", &bearer(&k), &myself],
        std::time::Duration::from_secs(10),
        |status, _| status == 200,
    );
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(BETA_CLOUD_ID), "{body}");
    assert_eq!(
        fixture.stats()["token_calls"]["authorization_code"]
            .as_u64()
            .unwrap(),
        consents,
        "no new consent"
    );
    let out = home.run(&["connector", "set", "jira", "--site", "no/such"], "");
    assert_ne!(out.status.code(), Some(0));
    assert!(stderr(&out).contains("not a site name"), "{}", stderr(&out));
}

/// A person who unticked `write:jira-work` at consent can still read; a write gets
/// `502 needs_step_up` naming the scope and the command; the connector says `needs_step_up`.
#[test]
fn step_up_is_per_request() {
    let fixture = Fixture::start();
    fixture.control(serde_json::json!({ "drop_scopes": ["write:jira-work"] }));
    let home = Home::with_fixture_provider(&fixture);
    assert!(home.login().status.success());
    let status = home.json(&["status", "--json"]);
    assert_eq!(connector_in(&status, "jira")["state"], "needs_step_up");
    let k = home.key_for("k", &["jira"]);
    let serve = Serve::start(&home);
    // Reads pass, including a read that is a POST (JQL search).
    let (status, body) = curl(&["-H", &bearer(&k), &serve.url("/jira/rest/api/3/myself")]);
    assert_eq!(status, 200, "{body}");
    let (status, body) = curl(&[
        "-X",
        "PUT",
        "-d",
        "{}",
        "-H",
        &bearer(&k),
        &serve.url("/jira/rest/api/3/issue/ABC-1"),
    ]);
    assert_eq!(status, 502, "{body}");
    let refusal: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(refusal["error"], "needs_step_up");
    assert_eq!(
        refusal["missing_scopes"],
        serde_json::json!(["write:jira-work"])
    );
    assert_eq!(refusal["action"], "latch login atlassian");
    let refreshes = fixture.refresh_calls();
    let (status, _) = curl(&[
        "-X",
        "POST",
        "-d",
        "{}",
        "-H",
        &bearer(&k),
        &serve.url("/jira/rest/api/3/issue"),
    ]);
    assert_eq!(status, 502);
    assert_eq!(
        fixture.refresh_calls(),
        refreshes,
        "a scope refusal is never a refresh"
    );
}

/// `scope_set = "granular"`: the command shows the diff and says a consent follows.
#[test]
fn a_granular_scope_set_shows_its_diff() {
    let fixture = Fixture::start();
    let home = Home::with_fixture_provider(&fixture);
    assert!(home.login().status.success());
    let out = home.ok(
        &["connector", "set", "confluence", "--scope-set", "granular"],
        "",
    );
    assert!(out.contains("+ read:page:confluence"), "{out}");
    assert!(out.contains("- read:confluence-content.all"), "{out}");
    assert!(out.contains("latch login atlassian"), "{out}");
    let toml = std::fs::read_to_string(home.file("latch.toml")).unwrap();
    assert!(toml.contains("scope_set = \"granular\""), "{toml}");
    let status = home.json(&["status", "--json"]);
    let conf = connector_in(&status, "confluence");
    assert_eq!(conf["state"], "needs_step_up");
    assert!(conf["scopes"]["required"]
        .to_string()
        .contains("read:page:confluence"));
    // One consent serves a granular Confluence and a classic Jira: a warning at most.
    let (_, report) = doctor(&home, &["--offline"]);
    assert!(
        findings(&report, "mixed_classic_granular").is_empty(),
        "{report}"
    );
    let out = home.ok(
        &["connector", "set", "confluence", "--scope-set", "classic"],
        "",
    );
    assert!(out.contains("classic scopes"), "{out}");
}

/// JSM Operations (Opsgenie's successor) with an API token; Opsgenie's EU region.
#[test]
fn jsm_operations_and_opsgenie_regions() {
    let fixture = Fixture::start();
    let home = Home::with_fixture_endpoints_only(&fixture);
    let catalog = home.json(&["connector", "catalog", "--json"]);
    let ops = catalog
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "jsm-ops")
        .unwrap();
    assert_eq!(ops["auth_modes"], serde_json::json!(["api-token"]));
    home.ok(
        &[
            "connector",
            "add",
            "jsm-ops",
            "--email",
            EMAIL,
            "--site",
            "acme",
        ],
        "",
    );
    home.ok(&["credential", "set", "jsm-ops"], SCOPED_TOKEN);
    let k = home.key_for("k", &["jsm-ops"]);
    let serve = Serve::start(&home);
    let (status, body) = curl(&["-H", &bearer(&k), &serve.url("/jsm-ops/v1/alerts?limit=5")]);
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("\"product\":\"jsm-ops\"") && body.contains(CLOUD_ID),
        "{body}"
    );
    drop(serve);
    // `region = "eu"` picks Opsgenie's EU instance; an unknown region says which exist.
    home.ok(&["connector", "add", "opsgenie", "--region", "eu"], "");
    let toml = std::fs::read_to_string(home.file("latch.toml")).unwrap();
    assert!(toml.contains("region = \"eu\""), "{toml}");
    let out = home.run(
        &[
            "connector",
            "add",
            "ops2",
            "--type",
            "opsgenie",
            "--region",
            "mars",
        ],
        "",
    );
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("eu"), "{}", stderr(&out));
}

/// `latch token --json` for scripts that cache: the scheme, exactly what follows it in the
/// header, the expiry and the scopes — for a sign-in, a service account and an API token; and
/// `--json` on `keys create` and `manifest add`.
#[test]
fn token_json_says_what_goes_in_the_header_and_until_when() {
    use base64::Engine as _;
    let fixture = Fixture::start();
    let home = Home::with_fixture_provider(&fixture);
    assert!(home.login().status.success());
    let plain = home.ok(&["token", "jira"], "").trim().to_owned();
    let details: serde_json::Value =
        serde_json::from_str(&home.ok(&["token", "jira", "--json"], "")).unwrap();
    assert_eq!(details["connector"], "jira");
    assert_eq!(details["token_type"], "Bearer");
    assert_eq!(details["token"], plain.as_str());
    let expires = time::OffsetDateTime::parse(
        details["expires_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert!(expires > time::OffsetDateTime::now_utc());
    assert!(
        details["scopes"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("read:jira-work")),
        "{details}"
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
            &format!("{}/__site/acme", fixture.base),
            "--token",
            "classic",
        ],
        "",
    );
    home.ok(
        &["credential", "set", "jira-tok", "--expires", "2099-01-31"],
        CLASSIC_TOKEN,
    );
    let details: serde_json::Value =
        serde_json::from_str(&home.ok(&["token", "jira-tok", "--json"], "")).unwrap();
    assert_eq!(details["token_type"], "Basic");
    let expected =
        base64::engine::general_purpose::STANDARD.encode(format!("{EMAIL}:{CLASSIC_TOKEN}"));
    assert_eq!(details["token"], expected.as_str());
    assert!(
        details["expires_at"]
            .as_str()
            .unwrap()
            .starts_with("2099-01-31"),
        "{details}"
    );
    assert_eq!(details["scopes"], serde_json::Value::Null);

    let created: serde_json::Value = serde_json::from_str(&home.ok(
        &["keys", "create", "k", "--connector", "jira", "--json"],
        "",
    ))
    .unwrap();
    assert!(
        created["key"].as_str().unwrap().starts_with("lk_"),
        "{created}"
    );
    assert_eq!(created["name"], "k");
    let file = home.file("extra.toml");
    std::fs::write(
        &file,
        "[connectors.jira-admin]\ndisplay_name = \"Jira admin\"\nprovider = \"atlassian\"\n\
         upstream_scopes = [\"read:me\", \"manage:jira-configuration\", \"offline_access\"]\n\
         api_base = \"{api_base}/ex/jira/{cloud_id}\"\nauth_modes = [\"user\"]\n\
         probe = { method = \"GET\", path = \"/rest/api/3/myself\" }\n",
    )
    .unwrap();
    let added: serde_json::Value =
        serde_json::from_str(&home.ok(&["manifest", "add", file.to_str().unwrap(), "--json"], ""))
            .unwrap();
    assert_eq!(added["connector_types"], serde_json::json!(["jira-admin"]));
}

/// A box without a Secret Service (no D-Bus session): the error offers the encrypted file;
/// with `[keychain] store = "file"` and the passphrase in LATCH_FILE_KEY, a service account
/// works through `latch serve`, status and doctor say where secrets are, the file is 0600 and
/// holds no secret in the clear, and a wrong passphrase opens nothing and overwrites nothing.
#[test]
fn an_encrypted_file_store_serves_a_box_without_a_keychain() {
    let fixture = Fixture::start();
    let home = Home::new();
    home.unset_env("DBUS_SESSION_BUS_ADDRESS");
    let b = &fixture.base;
    let provider_args = [
        "provider",
        "add",
        "atlassian",
        "--token-url",
        &format!("{b}/oauth/token"),
        "--api-base",
        b,
        "--site-url",
        &format!("{b}/__site/{{site}}"),
    ];
    home.ok(&provider_args, "");
    home.ok(
        &[
            "connector",
            "add",
            "jira-svc",
            "--type",
            "jira",
            "--auth",
            "service",
            "--client-id",
            SVC_CLIENT_ID,
            "--site",
            "acme",
        ],
        "",
    );
    // No keychain, no choice made: refused, and the error names the file store.
    let out = home.run(&["credential", "set", "jira-svc"], SVC_CLIENT_SECRET);
    assert_ne!(out.status.code(), Some(0));
    assert!(
        stderr(&out).contains("store = \"file\""),
        "{}",
        stderr(&out)
    );

    home.append_config("\n[keychain]\nstore = \"file\"\n");
    // No passphrase anywhere (no terminal to ask on): a clear error.
    let out = home.run(&["credential", "set", "jira-svc"], SVC_CLIENT_SECRET);
    assert_ne!(out.status.code(), Some(0));
    assert!(stderr(&out).contains("LATCH_FILE_KEY"), "{}", stderr(&out));

    home.set_env("LATCH_FILE_KEY", Some("a long passphrase for the file"));
    let out = home.ok(
        &["credential", "set", "jira-svc", "--json"],
        SVC_CLIENT_SECRET,
    );
    let stored: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(stored["check"]["result"], "ok", "{stored}");
    let status = home.json(&["status", "--json"]);
    let store = status["home"]["secret_store"].as_str().unwrap();
    assert!(store.contains("encrypted file"), "{store}");
    let (code, report) = doctor(&home, &[]);
    assert_eq!(code, Some(0), "{report}");
    assert!(report["home"]["secret_store"]
        .as_str()
        .unwrap()
        .contains("encrypted file"));

    let k = home.key_for("k", &["jira-svc"]);
    let serve = Serve::start(&home);
    let (status, body) = curl(&["-H", &bearer(&k), &serve.url("/jira-svc/rest/api/3/myself")]);
    assert_eq!(status, 200, "{body}");
    drop(serve);

    let file = home.file("secrets.latch");
    let text = std::fs::read_to_string(&file).unwrap();
    for secret in fixture
        .issued()
        .iter()
        .map(String::as_str)
        .chain([SVC_CLIENT_SECRET])
    {
        assert!(!text.contains(secret), "a secret in the clear in the file");
    }
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    home.set_env("LATCH_FILE_KEY", Some("not the passphrase"));
    let out = home.run(&["token", "jira-svc"], "");
    assert_ne!(out.status.code(), Some(0));
    assert!(stderr(&out).contains("does not open"), "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        text,
        "nothing overwritten"
    );
}

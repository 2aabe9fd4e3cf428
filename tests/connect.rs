//! Atlassian Connect (seed 002): an installed app's credential — its `installed` payload — acting
//! as the app (a JWT with the request's `qsh`, per request) and as a named user (the JWT bearer
//! grant), through `latch serve` with curl and Python `requests`. The fixture plays the installed
//! app's sites (checking JWTs with atlassian-jwt, the library atlassian-connect-express uses)
//! and Atlassian's JWT bearer token endpoint.

use crate::support::{
    connector_in, curl, error_code, python_requests_ok, stderr, stdout, Fixture, Home, Serve,
};

const MIA: &str = "5b10ac8d82e05b22cc7d4ef5";

/// The installed payload the product sent the app, as its owner would have saved it.
fn installed(fixture: &Fixture, product: &str) -> String {
    let (status, body) = curl(&[&format!("{}/__connect/installed/{product}", fixture.base)]);
    assert_eq!(status, 200, "{body}");
    body
}

/// The first JSON document on stdout (a refused credential is followed by the error's).
fn first_json(text: &str) -> serde_json::Value {
    serde_json::Deserializer::from_str(text)
        .into_iter::<serde_json::Value>()
        .next()
        .unwrap_or_else(|| panic!("no JSON in {text:?}"))
        .unwrap()
}

/// A home with the Atlassian provider pointed at the fixture's JWT bearer endpoint, and the
/// three kinds of Connect connector.
fn connect_home(fixture: &Fixture) -> Home {
    let home = Home::with_fixture_endpoints_only(fixture);
    home.ok(
        &[
            "provider",
            "add",
            "atlassian",
            "--connect-token-url",
            &format!("{}/__connect/oauth2/token", fixture.base),
        ],
        "",
    );
    for (name, kind, auth, extra) in [
        ("jira-app", "jira", "connect", vec![]),
        ("conf-app", "confluence", "connect", vec![]),
        (
            "jira-mia",
            "jira",
            "connect-user",
            vec!["--account-id", MIA, "--scope", "READ"],
        ),
    ] {
        let mut args = vec!["connector", "add", name, "--type", kind, "--auth", auth];
        args.extend(extra);
        home.ok(&args, "");
    }
    home
}

#[test]
fn a_connect_app_signs_each_request_and_acts_as_a_named_user() {
    let fixture = Fixture::start();
    let home = connect_home(&fixture);
    let jira = installed(&fixture, "jira");
    let conf = installed(&fixture, "confluence");
    for (connector, payload) in [
        ("jira-app", &jira),
        ("conf-app", &conf),
        ("jira-mia", &jira),
    ] {
        let out = home.ok(&["credential", "set", connector, "--json"], payload);
        let stored: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(stored["check"]["result"], "ok", "{connector}: {out}");
    }
    // The status names the app, the site and the account acted as; never the secret.
    let status = home.json(&["status", "--json"]);
    let app = connector_in(&status, "jira-mia");
    assert_eq!(app["state"], "ok", "{app}");
    assert_eq!(app["credential"]["connect"]["app_key"], "latch-fixture-app");
    assert_eq!(app["credential"]["connect"]["acts_as"], MIA);
    assert_eq!(connector_in(&status, "conf-app")["state"], "ok");
    assert!(
        connector_in(&status, "conf-app")["credential"]["connect"]["base_url"]
            .as_str()
            .unwrap()
            .ends_with("/__connect/acme/wiki")
    );
    assert!(!status
        .to_string()
        .contains("connect-jira-secret-fixture-27"));
    // The shared secret is in the keychain only.
    for (path, text) in crate::support::all_files_text(home.path()) {
        assert!(
            !text.contains("connect-jira-secret-fixture-27"),
            "{} holds the shared secret",
            path.display()
        );
    }

    let serve = Serve::start(&home);
    let key = home.key_for("connect-tools", &["jira-app", "conf-app", "jira-mia"]);
    let bearer = format!("Authorization: Bearer {key}");
    // Repeated, encoded and empty parameters: the qsh covers the query as sent.
    let query = "jql=project%20%3D%20OPS%20AND%20text%20~%20%22a%2Bb%22&fields=summary&fields=status&expand=&x=a+b";
    let (status, body) = curl(&[
        "-H",
        &bearer,
        &serve.url(&format!("/jira-app/rest/api/3/search?{query}")),
    ]);
    assert_eq!(status, 200, "{body}");
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["accountId"], "addon_latch-fixture-app");
    assert_eq!(answer["path"], "/rest/api/3/search");
    // Confluence under /wiki, the qsh relative to the base URL's own path.
    let (status, body) = curl(&[
        "-H",
        &bearer,
        &serve.url("/conf-app/wiki/rest/api/space?limit=5&start=0"),
    ]);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"product\":\"confluence\""), "{body}");
    // An unmodified Python client, the key as its Basic password.
    python_requests_ok(
        &serve.url(""),
        &key,
        &[
            "/jira-app/rest/api/3/myself",
            "/jira-app/rest/api/3/search?jql=project%3DOPS&fields=summary,status",
            "/conf-app/wiki/rest/api/user/current",
            "/jira-mia/rest/api/3/myself",
        ],
        Some("'accountId' in r.json()"),
    );
    // Acting as Mia: several requests, one token (the one `credential set` obtained).
    for _ in 0..3 {
        let (status, body) = curl(&["-H", &bearer, &serve.url("/jira-mia/rest/api/3/myself")]);
        assert_eq!(status, 200, "{body}");
        assert!(body.contains(MIA), "{body}");
    }
    let stats = fixture.stats();
    assert_eq!(stats["connect_token_calls"], 1, "{stats}");
    let claims = &stats["connect_last_assertion"];
    assert_eq!(
        claims["sub"],
        format!("urn:atlassian:connect:useraccountid:{MIA}")
    );
    assert_eq!(
        claims["iss"],
        "urn:atlassian:connect:clientid:connect-oauth-client-fixture"
    );
    assert!(claims["tnt"].as_str().unwrap().ends_with("/__connect/acme"));
    assert!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap() <= 60);
    assert_eq!(
        stats["connect_jwt_refused"],
        serde_json::json!({}),
        "{stats}"
    );

    // The descriptor has no WRITE: the site's 403 names the descriptor, never a sign-in.
    let (status, body) = curl(&[
        "-X",
        "POST",
        "-H",
        &bearer,
        "-H",
        "Content-Type: application/json",
        "-d",
        "{}",
        &serve.url("/jira-app/rest/api/3/issue"),
    ]);
    assert_eq!(
        (status, error_code(&body).as_str()),
        (502, "scope_mismatch"),
        "{body}"
    );
    assert!(
        body.contains("descriptor") && !body.contains("latch login"),
        "{body}"
    );

    // `latch token`: Mia's token prints; the app's JWT is bound to one request.
    let out = home.run(&["token", "jira-mia"], "");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).starts_with("connect-user-token-"));
    let out = home.run(&["token", "jira-app"], "");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("proxy"), "{}", stderr(&out));
    // The admin report names the app and whom it acts as, and probes each one alive.
    let report_file = home.path().join("report.html");
    let out = home.run(&["doctor", "--report", report_file.to_str().unwrap()], "");
    assert!(out.status.success(), "{}", stderr(&out));
    let html = std::fs::read_to_string(&report_file).unwrap();
    assert!(
        html.contains("app latch-fixture-app on ") && html.contains(&format!("acting as {MIA}")),
        "{html}"
    );
    serve.stop();
}

#[test]
fn a_wrong_secret_a_skewed_clock_and_an_app_without_act_as_user_are_named() {
    let fixture = Fixture::start();
    let home = connect_home(&fixture);
    // A payload whose baseUrl is no Atlassian site is refused before anything is stored.
    let evil = installed(&fixture, "jira").replace(
        &format!("{}/__connect/acme", fixture.base),
        "https://evil.example",
    );
    let out = home.run(&["credential", "set", "jira-app"], &evil);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("not an Atlassian site"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        connector_in(&home.json(&["status", "--json"]), "jira-app")["state"],
        "credential_missing"
    );

    // A reinstalled app has a new secret; the old payload's is refused by the site.
    let stale = installed(&fixture, "jira").replace(
        "connect-jira-secret-fixture-27",
        "connect-jira-secret-before-reinstall",
    );
    let out = home.run(&["credential", "set", "jira-app", "--json"], &stale);
    let stored = first_json(&stdout(&out));
    assert_eq!(stored["check"]["result"], "rejected", "{stored}");
    let serve = Serve::start(&home);
    let key = home.key_for("connect-tools", &["jira-app", "jira-mia"]);
    let bearer = format!("Authorization: Bearer {key}");
    let (status, body) = curl(&["-H", &bearer, &serve.url("/jira-app/rest/api/3/myself")]);
    assert_eq!(
        (status, error_code(&body).as_str()),
        (502, "connect_jwt_rejected"),
        "{body}"
    );
    assert!(
        body.contains("clock") && body.contains("reinstalled"),
        "{body}"
    );
    let report = home.run(&["doctor", "--json"], "");
    let report: serde_json::Value = serde_json::from_str(&stdout(&report)).unwrap();
    assert_eq!(
        connector_in(&report, "jira-app")["diagnosis"],
        "connect_jwt_rejected",
        "{report}"
    );

    // The right payload works again at once; then the site's clock runs an hour ahead.
    home.ok(
        &["credential", "set", "jira-app"],
        &installed(&fixture, "jira"),
    );
    let (status, body) = curl(&["-H", &bearer, &serve.url("/jira-app/rest/api/3/myself")]);
    assert_eq!(status, 200, "{body}");
    fixture.control(serde_json::json!({ "connect_clock_skew_secs": 3600 }));
    let (status, body) = curl(&["-H", &bearer, &serve.url("/jira-app/rest/api/3/myself")]);
    assert_eq!(
        (status, error_code(&body).as_str()),
        (502, "connect_jwt_rejected"),
        "{body}"
    );
    fixture.control(serde_json::json!({ "connect_clock_skew_secs": 0 }));

    // An app whose descriptor lost ACT_AS_USER cannot act as a user.
    fixture.control(serde_json::json!({ "connect_scopes": ["READ"] }));
    let out = home.run(
        &["credential", "set", "jira-mia", "--json"],
        &installed(&fixture, "jira"),
    );
    let stored = first_json(&stdout(&out));
    assert_eq!(stored["check"]["result"], "rejected", "{stored}");
    assert!(
        stored["check"]["detail"]
            .as_str()
            .unwrap()
            .contains("ACT_AS_USER"),
        "{stored}"
    );
    let (status, body) = curl(&["-H", &bearer, &serve.url("/jira-mia/rest/api/3/myself")]);
    assert_eq!(
        (status, error_code(&body).as_str()),
        (502, "impersonation_refused"),
        "{body}"
    );
    assert!(!body.contains("latch login"), "{body}");
    let status = home.json(&["status", "--json"]);
    assert_eq!(
        connector_in(&status, "jira-mia")["state"],
        "credential_rejected"
    );
    let report = home.run(&["doctor", "--json", "--offline"], "");
    let report: serde_json::Value = serde_json::from_str(&stdout(&report)).unwrap();
    let codes: Vec<&str> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["code"].as_str())
        .collect();
    assert!(codes.contains(&"impersonation_refused"), "{codes:?}");
    serve.stop();
}

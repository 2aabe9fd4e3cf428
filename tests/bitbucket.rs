//! Bitbucket Cloud against the fixture's Bitbucket (a form-only token endpoint with Basic
//! client auth, `scopes` in answers, tokens over 2,500 characters, and an OAuth consumer whose
//! ticked permissions are what is granted, whatever Latch asks for).

use crate::support::{
    connector_in, curl, error_code, python_requests_ok, run_with_stdin, stderr, stdout, Fixture,
    Home, Serve,
};

pub(crate) const BB_KEY: &str = "bb-consumer-key";
pub(crate) const BB_SECRET: &str = "bb-consumer-secret-fixture-91";

/// The README's Bitbucket recipe with the fixture's endpoints.
pub(crate) fn add_bitbucket(home: &Home, fixture: &Fixture) {
    let b = &fixture.base;
    home.ok(
        &[
            "provider",
            "add",
            "bitbucket",
            "--client-id",
            BB_KEY,
            "--redirect-uri",
            &fixture.redirect_uri,
            "--authorize-url",
            &format!("{b}/bitbucket/site/oauth2/authorize"),
            "--token-url",
            &format!("{b}/bitbucket/site/oauth2/access_token"),
            "--me-url",
            &format!("{b}/bitbucket-api/2.0/user"),
            "--api-base",
            &format!("{b}/bitbucket-api"),
        ],
        BB_SECRET,
    );
    home.ok(&["connector", "add", "bitbucket"], "");
}

/// Signs in to Bitbucket through the browser; returns what `latch login` printed.
pub(crate) fn login_bitbucket(home: &Home) -> String {
    let out = run_with_stdin(
        home.browser_cmd(&["login", "bitbucket", "--timeout", "60"]),
        "",
    );
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    stdout(&out)
}

/// A consumer with only `account repository` ticked: the sign-in works, status names the
/// permissions to tick on the consumer, every request is forwarded, and only the ones Bitbucket
/// refuses for scope become `needs_step_up` — with the consumer, not a new sign-in, as the fix.
/// Once the admin ticks more, one more sign-in makes everything work (implications included).
#[test]
fn the_consumer_decides_what_is_granted_and_every_request_is_forwarded() {
    let fixture = Fixture::start();
    let home = Home::new();
    add_bitbucket(&home, &fixture);
    let said = login_bitbucket(&home);
    // The sign-in itself says where the missing permissions are decided.
    assert!(said.contains("OAuth consumer"), "{said}");
    let stats = fixture.stats();
    assert_eq!(stats["bb_json_bodies"], 0, "form-encoded only: {stats}");
    assert!(stats["bb_basic_auth"].as_u64().unwrap() >= 1, "{stats}");

    let status = home.json(&["status", "--json"]);
    let c = connector_in(&status, "bitbucket");
    assert_eq!(
        c["scopes"]["granted"],
        serde_json::json!(["account", "repository"])
    );
    let missing: Vec<&str> = c["scopes"]["missing"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert_eq!(
        missing,
        [
            "repository:write",
            "pullrequest",
            "pullrequest:write",
            "issue"
        ]
    );
    assert!(
        c["scopes"]["fix"]
            .as_str()
            .unwrap()
            .contains("OAuth consumer"),
        "{c}"
    );
    assert_eq!(c["grant"]["account_name"], "BB User", "{c}");

    // Tokens over 2,500 characters are kept whole.
    let token = home.ok(&["token", "bitbucket"], "").trim().to_owned();
    assert!(token.len() > 2500, "{}", token.len());

    let k = home
        .ok(&["keys", "create", "k", "--connector", "bitbucket"], "")
        .trim()
        .to_owned();
    let serve = Serve::start(&home);
    let auth = format!("Authorization: Bearer {k}");
    // The upstream's own path after the connector name, as a client given the proxy's URL
    // in place of https://api.bitbucket.org sends it.
    let (status, body) = curl(&["-H", &auth, &serve.url("/bitbucket/2.0/repositories/team")]);
    assert_eq!(
        status, 200,
        "granted scopes suffice, so it is forwarded: {body}"
    );
    let (status, body) = curl(&[
        "-H",
        &auth,
        &serve.url("/bitbucket/2.0/repositories/team/repo/pullrequests"),
    ]);
    assert_eq!(status, 502, "{body}");
    assert_eq!(error_code(&body), "needs_step_up");
    let refusal: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(refusal["action"], "latch login bitbucket", "{body}");
    assert!(
        refusal["message"]
            .as_str()
            .unwrap()
            .contains("OAuth consumer"),
        "{body}"
    );
    assert!(
        refusal["missing_scopes"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("pullrequest")),
        "{body}"
    );
    // The form before `/2.0` was kept still works.
    python_requests_ok(&serve.url(""), &k, &["/bitbucket/repositories/team"], None);

    // Rotation: form-encoded, Basic client auth, the rotated token stored.
    home.ok(&["token", "bitbucket", "--refresh"], "");
    assert_eq!(fixture.stats()["bb_token_calls"]["refresh_token"], 1);
    let (status, body) = curl(&["-H", &auth, &serve.url("/bitbucket/repositories/team")]);
    assert_eq!(status, 200, "after the rotation: {body}");

    // The admin ticks write and pull-request permissions; one sign-in later everything works:
    // `pullrequest:write` implies `pullrequest` and `repository:write`, which implies
    // `repository`.
    fixture.control(serde_json::json!({
        "bb_permissions": ["account", "pullrequest:write", "issue"]
    }));
    login_bitbucket(&home);
    let status = home.json(&["status", "--json"]);
    let c = connector_in(&status, "bitbucket");
    assert_eq!(c["state"], "ok", "{c}");
    assert_eq!(c["scopes"]["missing"], serde_json::json!([]), "{c}");
    let (status, body) = curl(&[
        "-H",
        &auth,
        &serve.url("/bitbucket/repositories/team/repo/pullrequests"),
    ]);
    assert_eq!(status, 200, "{body}");
}

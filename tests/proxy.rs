//! The localhost proxy through unmodified clients (curl, Python `requests`), against the fixture
//! gateway with tokens from the real lifecycle. Every refusal has a twin that is allowed.

use std::process::Command;

use crate::support::{
    curl, curl_until, curl_until_settled, error_code, python_ok, stderr, stdout, Fixture, Home,
    Serve, CLOUD_ID,
};

fn signed_in(fixture: &Fixture) -> Home {
    let home = Home::with_fixture_provider(fixture);
    let out = home.login();
    assert!(out.status.success(), "login: {}", stderr(&out));
    home
}

fn key(home: &Home, args: &[&str]) -> String {
    let mut full = vec!["keys", "create"];
    full.extend_from_slice(args);
    let out = home.run(&full, "");
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert_eq!(text.lines().count(), 1, "the key alone on stdout: {text:?}");
    text.trim().to_owned()
}

fn bearer(key: &str) -> String {
    format!("Authorization: Bearer {key}")
}

#[test]
fn unmodified_clients_reach_the_gateway() {
    let fixture = Fixture::start();
    let home = signed_in(&fixture);
    let k = key(
        &home,
        &["tools", "--connector", "jira", "--connector", "confluence"],
    );
    let serve = Serve::start(&home);

    // curl with a bearer key, the query string kept.
    let (status, body) = curl(&[
        "-H",
        &bearer(&k),
        &serve.url("/jira/rest/api/3/search?jql=project%3DABC"),
    ]);
    assert_eq!(status, 200, "{body}");
    let echoed: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(echoed["path"], "/rest/api/3/search");
    assert_eq!(echoed["cloudId"], CLOUD_ID);
    assert_eq!(echoed["query"]["jql"], "project=ABC");
    assert_eq!(echoed["accountId"], "fixture-user");

    // A Basic-only client: the key is the password, any user name.
    let (status, _) = curl(&[
        "-u",
        &format!("anyone:{k}"),
        &serve.url("/jira/rest/api/3/myself"),
    ]);
    assert_eq!(status, 200);
    // X-Latch-Key.
    let (status, _) = curl(&[
        "-H",
        &format!("X-Latch-Key: {k}"),
        &serve.url("/confluence/wiki/rest/api/space"),
    ]);
    assert_eq!(status, 200);

    // Python requests, unmodified, with Basic auth and with a bearer header.
    python_ok(&format!(
        "import requests\n\
         r = requests.get('{}', auth=('me', '{k}'))\n\
         assert r.status_code == 200, r.text\n\
         r = requests.post('{}', headers={{'Authorization': 'Bearer {k}'}}, data=b'x' * 100000)\n\
         assert r.status_code == 200 and r.json()['received'] == 100000, r.text\n\
         print('python ok')",
        serve.url("/jira/rest/api/3/myself"),
        serve.url("/jira/__sink"),
    ));

    // Confluence pagination links come back relative to the site: they work through the proxy.
    let (status, body) = curl(&[
        "-H",
        &bearer(&k),
        &serve.url("/wiki/rest/api/content?start=25"),
    ]);
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("\"product\":\"confluence\"") && body.contains("/wiki/rest/api/content"),
        "{body}"
    );

    // 429 and Retry-After pass through untouched; redirects are not followed.
    let (status, body) = curl(&["-i", "-H", &bearer(&k), &serve.url("/jira/__status/429")]);
    assert_eq!(status, 429);
    assert!(body.to_lowercase().contains("retry-after: 7"), "{body}");
    let (status, body) = curl(&["-i", "-H", &bearer(&k), &serve.url("/jira/__redirect")]);
    assert_eq!(status, 302);
    assert!(body.contains("example.invalid/elsewhere"), "{body}");

    // The upstream never sees the local key, and the audit log holds no token or query.
    serve.stop();
    let audit = home.json(&["audit", "--json"]);
    let rows = audit.as_array().unwrap();
    assert!(rows.len() >= 7, "{audit}");
    assert!(rows.iter().all(|r| r["key"] == "tools"));
    let text = audit.to_string();
    assert!(!text.contains(&k) && !text.contains("jql"), "{text}");
    for token in fixture.issued() {
        assert!(!text.contains(&token));
    }
}

#[test]
fn every_refusal_and_its_allowed_twin() {
    let fixture = Fixture::start();
    let home = signed_in(&fixture);
    let jira_ro = key(
        &home,
        &[
            "jira-ro",
            "--connector",
            "jira",
            "--read-only",
            "--path",
            "rest/api/3/*",
        ],
    );
    let jira_rw = key(&home, &["jira-rw", "--connector", "jira"]);
    let expired = key(&home, &["old", "--connector", "jira"]);
    let revoked = key(&home, &["gone", "--connector", "jira"]);
    home.ok(&["keys", "revoke", "gone"], "");
    let db = rusqlite::Connection::open(home.file("latch.db")).unwrap();
    db.execute(
        "UPDATE local_keys SET expires_at = '2000-01-01T00:00:00Z' WHERE name = 'old'",
        [],
    )
    .unwrap();
    let serve = Serve::start(&home);
    let myself = serve.url("/jira/rest/api/3/myself");
    let port = serve.addr.rsplit(':').next().unwrap().to_owned();

    let cases: Vec<(Vec<String>, u16, &str)> = vec![
        (vec![myself.clone()], 401, "missing_key"),
        (vec!["-H".into(), bearer(&jira_ro), myself.clone()], 200, ""),
        (
            vec!["-H".into(), bearer("lk_not-a-real-key"), myself.clone()],
            401,
            "bad_key",
        ),
        (
            vec!["-H".into(), bearer(&expired), myself.clone()],
            401,
            "key_expired",
        ),
        (
            vec!["-H".into(), bearer(&revoked), myself.clone()],
            401,
            "key_revoked",
        ),
        // DNS rebinding: a page on evil.example resolving to 127.0.0.1.
        (
            vec![
                "-H".into(),
                format!("Host: evil.example:{port}"),
                "-H".into(),
                bearer(&jira_ro),
                myself.clone(),
            ],
            421,
            "bad_host",
        ),
        (
            vec![
                "-H".into(),
                format!("Host: localhost:{port}"),
                "-H".into(),
                bearer(&jira_ro),
                myself.clone(),
            ],
            200,
            "",
        ),
        // A browser page (CSRF) and its preflight.
        (
            vec![
                "-H".into(),
                "Origin: https://evil.example".into(),
                "-H".into(),
                bearer(&jira_ro),
                myself.clone(),
            ],
            403,
            "origin_not_allowed",
        ),
        (
            vec![
                "-X".into(),
                "OPTIONS".into(),
                "-H".into(),
                "Origin: https://evil.example".into(),
                "-H".into(),
                "Access-Control-Request-Method: GET".into(),
                myself.clone(),
            ],
            403,
            "origin_not_allowed",
        ),
        (
            vec![
                "-X".into(),
                "OPTIONS".into(),
                "-H".into(),
                "Access-Control-Request-Method: GET".into(),
                "-H".into(),
                bearer(&jira_ro),
                myself.clone(),
            ],
            403,
            "preflight_refused",
        ),
        // A jira key on confluence; its twin on jira.
        (
            vec![
                "-H".into(),
                bearer(&jira_rw),
                serve.url("/confluence/wiki/rest/api/space"),
            ],
            403,
            "connector_not_allowed",
        ),
        (vec!["-H".into(), bearer(&jira_rw), myself.clone()], 200, ""),
        // A POST with a read-only key; the twin with a read-write key.
        (
            vec![
                "-X".into(),
                "POST".into(),
                "-d".into(),
                "{}".into(),
                "-H".into(),
                bearer(&jira_ro),
                serve.url("/jira/rest/api/3/issue"),
            ],
            403,
            "method_not_allowed",
        ),
        (
            vec![
                "-X".into(),
                "POST".into(),
                "-d".into(),
                "{}".into(),
                "-H".into(),
                bearer(&jira_rw),
                serve.url("/jira/__sink"),
            ],
            200,
            "",
        ),
        // Outside the key's paths; inside.
        (
            vec![
                "-H".into(),
                bearer(&jira_ro),
                serve.url("/jira/rest/agile/1.0/board"),
            ],
            403,
            "path_not_allowed",
        ),
        (
            vec![
                "-H".into(),
                bearer(&jira_ro),
                serve.url("/jira/rest/api/3/project"),
            ],
            200,
            "",
        ),
        // Unknown connector; known.
        (
            vec![
                "-H".into(),
                bearer(&jira_rw),
                serve.url("/gitlab/api/v4/user"),
            ],
            404,
            "unknown_connector",
        ),
        // An endpoint needing a scope the grant lacks: a scope problem, not a refresh loop.
        (
            vec![
                "-H".into(),
                bearer(&jira_rw),
                serve.url("/jira/__needs/manage:jira-project"),
            ],
            502,
            "scope_mismatch",
        ),
        (
            vec![
                "-H".into(),
                bearer(&jira_rw),
                serve.url("/jira/__needs/read:jira-work"),
            ],
            200,
            "",
        ),
    ];
    let refreshes = fixture.refresh_calls();
    for (args, want, code) in &cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (status, body) = curl(&args);
        assert_eq!(status, *want, "{args:?}: {body}");
        if !code.is_empty() {
            assert_eq!(error_code(&body), *code, "{args:?}: {body}");
            let json: serde_json::Value = serde_json::from_str(&body).unwrap();
            assert!(json["message"].as_str().is_some_and(|m| !m.is_empty()));
            assert!(json["action"].as_str().is_some_and(|a| !a.is_empty()));
            assert!(!body.contains(&jira_ro) && !body.contains(&jira_rw));
        }
    }
    assert_eq!(
        fixture.refresh_calls(),
        refreshes,
        "no refusal triggered a refresh"
    );

    // Revoking a key while the proxy runs takes effect (the CLI and the proxy are two processes).
    home.ok(&["keys", "revoke", "jira-rw"], "");
    let refused = (0..60).any(|_| {
        let (status, _) = curl(&["-H", &bearer(&jira_rw), &myself]);
        status == 401 || {
            std::thread::sleep(std::time::Duration::from_millis(50));
            false
        }
    });
    assert!(
        refused,
        "a revoked key is refused by the running proxy within 3 s"
    );
}

#[test]
fn grants_that_need_the_person_or_a_dead_token_endpoint_are_explained() {
    let fixture = Fixture::start();
    let home = Home::with_fixture_provider(&fixture);
    fixture.control(serde_json::json!({ "drop_scopes": ["write:confluence-content"] }));
    assert!(home.login().status.success());
    let k = key(
        &home,
        &["all", "--connector", "jira", "--connector", "confluence"],
    );
    let serve = Serve::start(&home);

    // Step-up per request: the connector lacks a granted scope, yet what the grant covers
    // passes; the request the provider refuses for scope is 502 naming it and the command.
    let (status, body) = curl(&[
        "-H",
        &bearer(&k),
        &serve.url("/confluence/wiki/rest/api/space"),
    ]);
    assert_eq!(status, 200, "a read the grant covers passes: {body}");
    let (status, body) = curl(&[
        "-X",
        "POST",
        "-d",
        "{}",
        "-H",
        &bearer(&k),
        &serve.url("/confluence/wiki/rest/api/content"),
    ]);
    assert_eq!(status, 502, "{body}");
    assert_eq!(error_code(&body), "needs_step_up");
    assert!(
        body.contains("write:confluence-content") && body.contains("latch login atlassian"),
        "{body}"
    );
    let (status, _) = curl(&["-H", &bearer(&k), &serve.url("/jira/rest/api/3/myself")]);
    assert_eq!(status, 200, "jira has all its scopes");

    // Token endpoint down: 503 after bounded retries, no hang.
    home.expire_access();
    fixture.control(serde_json::json!({ "token_mode": "500" }));
    let (status, body) = curl_until(
        503,
        &["-H", &bearer(&k), &serve.url("/jira/rest/api/3/myself")],
    );
    assert_eq!(status, 503, "{body}");
    assert_eq!(error_code(&body), "token_endpoint_failing");
    fixture.control(serde_json::json!({ "token_mode": "normal" }));
    let (status, _) = curl(&["-H", &bearer(&k), &serve.url("/jira/rest/api/3/myself")]);
    assert_eq!(status, 200, "recovers once the endpoint is back");

    // The family revoked behind Latch's back: 502 with `latch login`.
    fixture.revoke_all();
    home.expire_access();
    let (status, body) = curl_until(
        502,
        &["-H", &bearer(&k), &serve.url("/jira/rest/api/3/myself")],
    );
    assert_eq!(status, 502, "{body}");
    assert_eq!(error_code(&body), "needs_login");
    assert!(body.contains("latch login atlassian"));
}

#[test]
fn an_upstream_401_refreshes_once_and_retries() {
    let fixture = Fixture::start();
    let home = signed_in(&fixture);
    let k = key(&home, &["tools", "--connector", "jira"]);
    let serve = Serve::start(&home);
    let (status, _) = curl(&["-H", &bearer(&k), &serve.url("/jira/rest/api/3/myself")]);
    assert_eq!(status, 200);
    // Access tokens die early (Atlassian revokes the old one ten minutes after a rotation
    // elsewhere); the refresh token still works.
    curl(&["-X", "POST", &format!("{}/__revoke_access", fixture.base)]);
    home.age_access(120);
    let before = fixture.refresh_calls();
    let (status, body) = curl(&["-H", &bearer(&k), &serve.url("/jira/rest/api/3/myself")]);
    assert_eq!(status, 200, "{body}");
    assert_eq!(fixture.refresh_calls(), before + 1);
    serve.stop();
    let audit = home.json(&["audit", "--json", "--key", "tools"]);
    assert_eq!(audit.as_array().unwrap().last().unwrap()["refreshed"], true);
}

/// An expired access token under a burst of 500 concurrent requests: one refresh, no failure.
#[test]
fn a_burst_on_an_expired_token_refreshes_once() {
    let fixture = Fixture::start();
    let home = signed_in(&fixture);
    let k = key(&home, &["burst", "--connector", "jira"]);
    let serve = Serve::start(&home);
    home.expire_access();
    let before = fixture.refresh_calls();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixture/burst.py");
    let out = Command::new("python3")
        .args([script, &serve.url("/jira/rest/api/3/myself"), &k, "500"])
        .output()
        .unwrap();
    let result: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("burst: {}{}", stdout(&out), stderr(&out)));
    assert_eq!(result["ok"], 500, "{result}");
    assert_eq!(fixture.refresh_calls(), before + 1);
}

/// 1 GiB down and 1 GiB up through the proxy, streamed (memory is measured by the benchmark).
#[test]
fn a_gibibyte_streams_both_ways() {
    const GIB: u64 = 1 << 30;
    let fixture = Fixture::start();
    let home = signed_in(&fixture);
    let k = key(&home, &["bulk", "--connector", "jira"]);
    let serve = Serve::start(&home);

    let out = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{size_download}",
            "-H",
            &bearer(&k),
        ])
        .arg(serve.url(&format!("/jira/__bytes?n={GIB}")))
        .output()
        .unwrap();
    assert_eq!(stdout(&out), format!("200 {GIB}"));

    let upload = format!(
        "head -c {GIB} /dev/zero | curl -s -T - -H '{}' '{}'",
        bearer(&k),
        serve.url("/jira/__sink")
    );
    let out = Command::new("sh").args(["-c", &upload]).output().unwrap();
    let body: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("upload: {}", stdout(&out)));
    assert_eq!(body["received"], GIB);
    let _ = serve.pid();
}

#[test]
fn exec_gives_the_child_a_private_proxy_and_its_exit_code() {
    let fixture = Fixture::start();
    let home = signed_in(&fixture);
    let script = "test -n \"$LATCH_KEY\" && test -n \"$LATCH_PROXY_URL\" || exit 90; \
        curl -s -o /dev/null -w '%{http_code}' -H \"Authorization: Bearer $LATCH_KEY\" \"$LATCH_JIRA_URL/rest/api/3/myself\"; \
        curl -s -o /dev/null -w ' %{http_code}' -H \"Authorization: Bearer $LATCH_KEY\" \"$LATCH_PROXY_URL/confluence/wiki/rest/api/space\"; \
        curl -s -o /dev/null -w ' %{http_code}' -X POST -H \"Authorization: Bearer $LATCH_KEY\" \"$LATCH_JIRA_URL/__sink\"; \
        echo; echo \"$LATCH_PROXY_URL\" > proxy-url; exit 42";
    let mut cmd = home.cmd(&[
        "exec",
        "--connector",
        "jira",
        "--read-only",
        "--",
        "sh",
        "-c",
        script,
    ]);
    cmd.current_dir(home.path());
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(42), "{}", stderr(&out));
    assert_eq!(
        stdout(&out).trim(),
        "200 403 403",
        "jira allowed; confluence and writes refused"
    );
    // The key and the proxy died with the child.
    let url = std::fs::read_to_string(home.file("proxy-url")).unwrap();
    let (status, _) = curl(&[&format!("{}/jira/rest/api/3/myself", url.trim())]);
    assert_eq!(status, 0, "nobody listens after the child exited");
}

#[test]
fn serve_picks_up_a_connector_added_while_it_runs() {
    let fixture = Fixture::start();
    let home = signed_in(&fixture);
    let k = key(&home, &["tools", "--connector", "jira"]);
    let serve = Serve::start(&home);
    let ops = serve.url("/jira-ops/rest/api/3/myself");
    let (status, body) = curl(&["-H", &bearer(&k), &ops]);
    assert_eq!(
        (status, error_code(&body)),
        (404, "unknown_connector".to_owned())
    );

    home.ok(
        &[
            "connector",
            "add",
            "jira-ops",
            "--type",
            "jira",
            "--site",
            "acme",
        ],
        "",
    );
    let k = key(
        &home,
        &["ops", "--connector", "jira-ops", "--connector", "jira"],
    );
    // `latch serve` notices the edit within a few seconds and restarts on the same address
    // (the new key is seen within half a second; while it rebinds, connections are refused).
    let (status, body) = curl_until_settled(
        &["-H", &bearer(&k), &ops],
        std::time::Duration::from_secs(30),
        |status, body| {
            status != 0 && !matches!(error_code(body).as_str(), "unknown_connector" | "bad_key")
        },
    );
    assert_eq!(status, 200, "the new connector is served: {body}");
    let (status, body) = curl(&["-H", &bearer(&k), &serve.url("/jira/rest/api/3/myself")]);
    assert_eq!(status, 200, "the existing connector still works: {body}");
}

/// Issue: "Path escape". A jira-only key reached Confluence with `..` segments, and a
/// path-limited key reached other paths with `..`, `%2e%2e` and `alerts%2f..%2fusers`. Each is
/// refused with 400 `bad_path` before routing and policy; each twin still passes, and what the
/// upstream receives is the canonical path the policy saw.
#[test]
fn path_escapes_are_refused_and_their_twins_pass() {
    let fixture = Fixture::start();
    let home = signed_in(&fixture);
    home.append_config(&format!(
        "\n[providers.opsgenie]\napi_base = \"{}/opsgenie\"\n",
        fixture.base
    ));
    home.ok(&["connector", "add", "opsgenie"], "");
    home.ok(&["credential", "set", "opsgenie"], "genie-key-fixture-88\n");
    let jira_only = key(&home, &["jira-only", "--connector", "jira"]);
    let alerts = key(
        &home,
        &["alerts", "--connector", "opsgenie", "--path", "v2/alerts/*"],
    );
    let serve = Serve::start(&home);
    let get = |k: &str, path: &str| {
        // --path-as-is: curl would otherwise resolve the dots itself before sending.
        curl(&["--path-as-is", "-H", &bearer(k), &serve.url(path)])
    };

    let escapes = [
        (
            &jira_only,
            format!("/jira/rest/../../../confluence/{CLOUD_ID}/wiki/rest/api/space"),
        ),
        (&jira_only, "/jira/rest/%2e%2e/%2E%2E/x".to_owned()),
        (&jira_only, "/jira/rest/..;/..;/x".to_owned()),
        (&alerts, "/opsgenie/v2/alerts/../users".to_owned()),
        (&alerts, "/opsgenie/v2/alerts/%2e%2e/users".to_owned()),
        (&alerts, "/opsgenie/v2/alerts%2f..%2fusers".to_owned()),
        (&alerts, "/opsgenie/v2/alerts/x%5c..%5cusers".to_owned()),
        (&alerts, "/opsgenie/v2/alerts/a%00b".to_owned()),
        (&alerts, "/opsgenie/v2/alerts/%252e%252e/users".to_owned()),
    ];
    let calls_before = fixture.stats()["gateway_calls"].as_u64().unwrap();
    for (k, path) in &escapes {
        let (status, body) = get(k, path);
        assert_eq!(status, 400, "{path}: {body}");
        assert_eq!(error_code(&body), "bad_path", "{path}: {body}");
        assert!(!body.contains(k.as_str()), "{body}");
    }
    // A raw backslash (curl sends it as is).
    let (status, body) = get(&alerts, "/opsgenie/v2\\..\\users");
    assert_eq!(
        (status, error_code(&body).as_str()),
        (400, "bad_path"),
        "{body}"
    );
    assert_eq!(
        fixture.stats()["gateway_calls"].as_u64().unwrap(),
        calls_before,
        "no escape reached the upstream"
    );

    // The twins: the same keys on the paths they allow.
    let (status, body) = get(&jira_only, "/jira/rest/api/3/myself");
    assert_eq!(status, 200, "{body}");
    let (status, body) = get(&alerts, "/opsgenie/v2/alerts/123");
    assert_eq!(status, 200, "{body}");
    // Unreserved characters are decoded once, and the upstream sees exactly that path.
    let (status, body) = get(&alerts, "/opsgenie/v2/alerts/%7Eops%2Dteam?limit=5");
    assert_eq!(status, 200, "{body}");
    let echoed: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(echoed["rawPath"], "/v2/alerts/~ops-team");
    assert_eq!(echoed["query"]["limit"], "5");
    // Dots inside a name are not dot segments.
    let (status, _) = get(&alerts, "/opsgenie/v2/alerts/v1.2..3");
    assert_eq!(status, 200);
    // The path policy sees the canonical path: `%2F` cannot smuggle a path past `v2/alerts/*`
    // and a decoded path outside it is refused by policy, not forwarded.
    let (status, body) = get(&alerts, "/opsgenie/v2/%75sers");
    assert_eq!(
        (status, error_code(&body).as_str()),
        (403, "path_not_allowed"),
        "{body}"
    );
    // The jira-only key on Confluence is a policy refusal, as before.
    let (status, body) = get(&jira_only, "/confluence/wiki/rest/api/space");
    assert_eq!(
        (status, error_code(&body).as_str()),
        (403, "connector_not_allowed"),
        "{body}"
    );
}

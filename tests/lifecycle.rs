//! The token lifecycle end to end: the fixture authorization server (oidc-provider with
//! rotating refresh tokens and reuse detection), real headless Chromium through `$BROWSER`,
//! the real Secret Service and real SQLite files.

use std::process::{Command, Stdio};
use std::sync::Arc;

use crate::support::{
    all_files_text, keychain_lookup, stderr, stdout, Fixture, Home, CLIENT_SECRET,
};

fn token_of(home: &Home, connector: &str) -> String {
    let out = home.token(connector);
    assert!(out.status.success(), "latch token failed: {}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<_> = text.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "latch token prints the token alone: {text:?}"
    );
    lines[0].to_owned()
}

fn signed_in(fixture: &Fixture) -> Home {
    let home = Home::with_fixture_provider(fixture);
    let out = home.login();
    assert!(
        out.status.success(),
        "login failed: {}{}",
        stdout(&out),
        stderr(&out)
    );
    home
}

#[test]
fn login_token_refresh_logout() {
    let fixture = Fixture::start();
    let home = Home::with_fixture_provider(&fixture);
    let before = home.json(&["status", "--json"]);
    assert_eq!(before["connectors"][0]["state"], "not_signed_in");

    let login = home.login();
    assert!(login.status.success(), "{}", stderr(&login));
    let said = stdout(&login);
    assert!(
        said.contains("Signed in to `atlassian` as Fixture User"),
        "{said}"
    );
    assert!(
        said.contains("jira → acme") && said.contains("confluence → acme"),
        "{said}"
    );
    assert!(stderr(&login).contains("audience=api.atlassian.com"));

    let status = home.json(&["status", "--json"]);
    for connector in status["connectors"].as_array().unwrap() {
        assert_eq!(connector["state"], "ok", "{connector}");
        assert_eq!(connector["site"], "acme");
        assert!(connector["scopes"]["missing"]
            .as_array()
            .unwrap()
            .is_empty());
    }
    let grant = &status["providers"][0]["grant"];
    assert_eq!(grant["account_id"], "fixture-user");
    assert_eq!(grant["generation"], 1);
    assert!(grant["obtained_at"].is_string(), "{grant}");
    // The site list for choosing a site: one entry per site, though the fixture lists it per product.
    assert_eq!(
        status["providers"][0]["sites"],
        serde_json::json!([{"name": "acme", "url": "https://acme.atlassian.net"}])
    );

    // A cached token is reused: no refresh.
    let first = token_of(&home, "jira");
    assert!(fixture.token_works(&first));
    assert_eq!(
        token_of(&home, "confluence"),
        first,
        "one grant serves both products"
    );
    assert_eq!(fixture.refresh_calls(), 0);

    // Expired: exactly one refresh, a new working token, the rotated refresh token stored.
    let home_id = status["home"]["id"].as_str().unwrap().to_owned();
    let rt_key = format!("{home_id}/grant/atlassian/refresh-token");
    let rt_before = keychain_lookup(&rt_key).expect("refresh token in the Secret Service");
    home.expire_access();
    let second = token_of(&home, "jira");
    assert_ne!(second, first);
    assert!(fixture.token_works(&second));
    assert_eq!(fixture.refresh_calls(), 1);
    let rt_after = keychain_lookup(&rt_key).unwrap();
    assert_ne!(
        rt_before, rt_after,
        "the rotated refresh token replaced the old one"
    );
    assert_eq!(token_of(&home, "jira"), second, "cached after the refresh");
    assert_eq!(fixture.refresh_calls(), 1);

    // No secret anywhere it must not be: files, database, latch.toml, non-secret output.
    let mut secrets = fixture.issued();
    secrets.push(CLIENT_SECRET.to_owned());
    let status_text = home.ok(&["status"], "") + &home.ok(&["status", "--json"], "");
    let outputs = [said, stderr(&login), status_text];
    for secret in &secrets {
        for (path, text) in all_files_text(home.path()) {
            assert!(
                !text.contains(secret.as_str()),
                "{} holds a token",
                path.display()
            );
        }
        for output in &outputs {
            assert!(!output.contains(secret.as_str()), "a token was printed");
        }
    }

    let logout = home.ok(&["logout", "atlassian"], "");
    assert!(
        logout.contains("Revoked") && logout.contains("2 keychain item(s) deleted"),
        "{logout}"
    );
    assert_eq!(keychain_lookup(&rt_key), None);
    assert_eq!(fixture.stats()["revocations"], 1);
    let out = home.token("jira");
    assert_eq!(out.status.code(), Some(6), "{}", stderr(&out));
    assert!(stderr(&out).contains("latch login atlassian"));
    let status = home.json(&["status", "--json"]);
    assert_eq!(status["connectors"][0]["state"], "not_signed_in");
}

/// 200 concurrent requests in one process plus 4 CLI processes, all on an expired access
/// token: one refresh at the token endpoint, one new token for everybody, family intact.
#[test]
fn refresh_storm_refreshes_exactly_once() {
    let fixture = Fixture::start();
    let home = signed_in(&fixture);
    let old = token_of(&home, "jira");
    home.expire_access();

    let processes: Vec<_> = (0..4)
        .map(|_| {
            home.cmd(&["token", "jira"])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    let latch = home.open_in_process();
    let grants = latch.credentials();
    let in_process: Vec<String> = runtime.block_on(async {
        let tasks: Vec<_> = (0..200)
            .map(|_| {
                let grants = Arc::clone(&grants);
                tokio::spawn(async move { grants.credential("jira").await })
            })
            .collect();
        let mut tokens = Vec::new();
        for task in tasks {
            let credential = task.await.unwrap().expect("every caller gets a token");
            tokens.push(credential.token().unwrap().expose().to_owned());
        }
        tokens
    });
    let mut all = in_process;
    for child in processes {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        all.push(String::from_utf8(out.stdout).unwrap().trim().to_owned());
    }
    assert_eq!(all.len(), 204);
    assert_eq!(
        fixture.refresh_calls(),
        1,
        "exactly one refresh for the whole storm"
    );
    let fresh = &all[0];
    assert_ne!(fresh, &old);
    assert!(
        all.iter().all(|t| t == fresh),
        "everybody got the one new token"
    );
    assert!(fixture.token_works(fresh));

    // The family is intact: the next rotation works, and nothing was detected as reuse.
    home.expire_access();
    let next = token_of(&home, "jira");
    assert!(fixture.token_works(&next));
    let stats = fixture.stats();
    assert_eq!(stats["refresh_ok"], 2);
    assert_eq!(stats["refresh_errors"], serde_json::json!({}));
}

/// kill -9 a refreshing process at each point; the next run recovers (the provider's reuse
/// window covers a refresh token rotated by a request whose answer died with the process).
#[test]
fn a_killed_refresh_recovers_at_every_point() {
    let fixture = Fixture::start();
    let home = signed_in(&fixture);
    for point in [
        "before_request",
        "after_response",
        "after_keychain_write",
        "after_db_write",
    ] {
        home.expire_access();
        let mut cmd = home.cmd(&["token", "jira"]);
        cmd.env("LATCH_TEST_CRASH_AT", point);
        let crashed = cmd.output().unwrap();
        assert!(
            !crashed.status.success(),
            "{point}: the process should have died"
        );
        assert!(
            stdout(&crashed).is_empty(),
            "{point}: no token may escape a crashed refresh"
        );

        let token = token_of(&home, "jira");
        assert!(
            fixture.token_works(&token),
            "{point}: the recovered token works"
        );
        let status = home.json(&["status", "--json"]);
        assert_eq!(status["connectors"][0]["state"], "ok", "{point}");
        assert!(home.grant_column("refresh_started_at").is_none(), "{point}");
    }
    assert_eq!(fixture.stats()["refresh_errors"], serde_json::json!({}));
}

/// Without a reuse window, a refresh token rotated by a lost answer is dead: the next run says
/// so clearly (needs_login), once, instead of a silently broken grant or a retry loop.
#[test]
fn a_killed_refresh_without_reuse_window_reports_needs_login() {
    let fixture = Fixture::start();
    let home = signed_in(&fixture);
    fixture.control(serde_json::json!({ "reuse_window_secs": 0 }));
    home.expire_access();
    let mut cmd = home.cmd(&["token", "jira"]);
    cmd.env("LATCH_TEST_CRASH_AT", "after_response");
    assert!(!cmd.output().unwrap().status.success());

    let out = home.token("jira");
    assert_eq!(out.status.code(), Some(6), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("needs a new sign-in") && err.contains("invalid_grant"),
        "{err}"
    );
    assert!(err.contains("interrupted"), "{err}");
    let calls = fixture.refresh_calls();
    // No retry loop: asking again does not touch the token endpoint.
    assert_eq!(home.token("jira").status.code(), Some(6));
    assert_eq!(fixture.refresh_calls(), calls);
    let status = home.json(&["status", "--json"]);
    assert_eq!(status["connectors"][0]["state"], "needs_login");
    // Signing in again heals it.
    assert!(home.login().status.success());
    assert!(fixture.token_works(&token_of(&home, "jira")));
}

#[test]
fn invalid_grant_means_needs_login_without_retries() {
    let fixture = Fixture::start();
    let home = signed_in(&fixture);
    fixture.revoke_all();
    home.expire_access();
    let out = home.token("jira");
    assert_eq!(out.status.code(), Some(6));
    assert!(
        stderr(&out).contains("latch login atlassian"),
        "{}",
        stderr(&out)
    );
    assert_eq!(fixture.refresh_calls(), 1, "invalid_grant is never retried");
    let out = home.token("confluence");
    assert_eq!(out.status.code(), Some(6));
    assert_eq!(fixture.refresh_calls(), 1);
    let status = home.json(&["status", "--json"]);
    assert_eq!(status["connectors"][1]["state"], "needs_login");
    assert!(status["providers"][0]["grant"]["last_error"]
        .as_str()
        .unwrap()
        .contains("invalid_grant"));
}

#[test]
fn token_endpoint_failures_are_bounded_and_kept() {
    let fixture = Fixture::start();
    let home = signed_in(&fixture);
    home.append_config("\n[network]\ntimeout_secs = 1\nrefresh_timeout_secs = 1\n");
    for (mode, expect, state) in [
        ("html", "not a token response", "refresh_failing"),
        ("500", "HTTP 500", "refresh_failing"),
        // No answer at all: the provider may have rotated; resent once inside the window.
        ("slow", "no answer", "refresh_uncertain"),
    ] {
        fixture.control(serde_json::json!({ "token_mode": mode, "slow_ms": 2500 }));
        home.expire_access();
        let calls = fixture.refresh_calls();
        let out = home.token("jira");
        assert_eq!(out.status.code(), Some(7), "{mode}: {}", stderr(&out));
        assert!(stderr(&out).contains(expect), "{mode}: {}", stderr(&out));
        let tried = fixture.refresh_calls() - calls;
        assert!(
            (1..=3).contains(&tried),
            "{mode}: bounded retries, tried {tried}"
        );
        let status = home.json(&["status", "--json"]);
        assert_eq!(status["connectors"][0]["state"], state, "{mode}");
        assert!(status["providers"][0]["grant"]["last_error"]
            .as_str()
            .unwrap()
            .contains(expect));
        // Back to normal: the next use recovers, even after the slow answer rotated the token.
        fixture.control(serde_json::json!({ "token_mode": "normal" }));
        let token = token_of(&home, "jira");
        assert!(fixture.token_works(&token), "{mode}");
        assert_eq!(
            home.json(&["status", "--json"])["connectors"][0]["state"],
            "ok"
        );
    }
    assert_eq!(fixture.stats()["refresh_errors"], serde_json::json!({}));
}

#[test]
fn wrong_state_is_refused_and_a_replayed_callback_finds_nobody() {
    let fixture = Fixture::start();
    let home = Home::with_fixture_provider(&fixture);
    let mut login = home
        .cmd(&["login", "atlassian", "--no-browser", "--timeout", "60"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut url = String::new();
    let mut reader = std::io::BufReader::new(login.stdout.take().unwrap());
    std::io::BufRead::read_line(&mut reader, &mut url).unwrap();
    let url = url.trim().to_owned();
    assert!(url.contains("state="), "{url}");

    let forged = format!("{}?code=forged&state=not-the-state", fixture.redirect_uri);
    let page = Command::new("curl")
        .args(["-s", "-w", "\n%{http_code}", &forged])
        .output()
        .unwrap();
    let page = String::from_utf8_lossy(&page.stdout);
    assert!(
        page.ends_with("400") && page.contains("state does not match"),
        "{page}"
    );

    // The real sign-in still completes after the refused one.
    let status = Command::new(
        home.browser_cmd(&[])
            .get_envs()
            .find(|(k, _)| *k == "BROWSER")
            .unwrap()
            .1
            .unwrap(),
    )
    .arg(&url)
    .status()
    .unwrap();
    assert!(status.success());
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut reader, &mut rest).unwrap();
    let out = login.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(rest.contains("Signed in"), "{rest}");
    assert!(stderr(&out).contains("wrong state"));
    assert_eq!(
        fixture.stats()["token_calls"]["authorization_code"],
        1,
        "the forged code was never redeemed"
    );

    // One-shot: replaying a callback finds no listener.
    let replay = Command::new("curl")
        .args(["-s", &format!("{}?code=x&state=y", fixture.redirect_uri)])
        .status()
        .unwrap();
    assert_eq!(replay.code(), Some(7), "curl: connection refused");
}

#[test]
fn declined_consent_is_explained_and_stores_nothing() {
    let fixture = Fixture::start();
    let home = Home::with_fixture_provider(&fixture);
    fixture.control(serde_json::json!({ "deny": true }));
    let out = home.login();
    assert_eq!(out.status.code(), Some(6), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("consent was declined") && err.contains("fix:"),
        "{err}"
    );
    assert_eq!(
        home.json(&["status", "--json"])["connectors"][0]["state"],
        "not_signed_in"
    );
    assert_eq!(fixture.stats()["token_calls"]["authorization_code"], 0);
}

#[test]
fn a_busy_callback_port_is_a_clear_error() {
    let fixture = Fixture::start();
    let home = Home::with_fixture_provider(&fixture);
    let port = fixture
        .redirect_uri
        .split(':')
        .nth(2)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let _squatter = std::net::TcpListener::bind(format!("127.0.0.1:{port}")).unwrap();
    let out = home.login();
    assert_ne!(out.status.code(), Some(0));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("port {port}")) && err.contains("redirect_uri"),
        "{err}"
    );
}

/// The person unticks a scope: the connector that needs it is `needs_step_up`, status says
/// exactly what is missing, and signing in again (with the union) heals it.
#[test]
fn a_missing_scope_means_step_up_and_login_heals_it() {
    let fixture = Fixture::start();
    let home = Home::with_fixture_provider(&fixture);
    fixture.control(serde_json::json!({ "drop_scopes": ["write:confluence-content"] }));
    let out = home.login();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("not granted: write:confluence-content"),
        "{}",
        stdout(&out)
    );
    let status = home.json(&["status", "--json"]);
    let confluence = &status["connectors"][1];
    assert_eq!(confluence["state"], "needs_step_up");
    assert_eq!(
        confluence["scopes"]["missing"],
        serde_json::json!(["write:confluence-content"])
    );
    assert_eq!(status["connectors"][0]["state"], "ok");

    fixture.control(serde_json::json!({ "drop_scopes": [] }));
    assert!(home.login().status.success());
    let status = home.json(&["status", "--json"]);
    assert_eq!(status["connectors"][1]["state"], "ok");
}

/// PKCE where the provider supports it (Bitbucket's preset): a tampered challenge fails the
/// code exchange; the honest twin succeeds.
#[test]
fn pkce_mismatch_is_refused_and_the_honest_flow_works() {
    let fixture = Fixture::start();
    fixture.control(serde_json::json!({ "require_audience": false }));
    let home = Home::new();
    let me = format!("{}/me", fixture.base);
    home.add_fixture_provider(
        &fixture,
        "bitbucket",
        &fixture.redirect_uri,
        &["--me-url", &me],
    );
    home.ok(&["connector", "add", "bitbucket"], "");
    let mut tampered = home.browser_cmd(&["login", "bitbucket", "--timeout", "60"]);
    tampered.env("FIXTURE_TAMPER_PKCE", "1");
    let out = tampered.output().unwrap();
    assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("refused the sign-in code"),
        "{}",
        stderr(&out)
    );

    let out = crate::support::run_with_stdin(
        home.browser_cmd(&["login", "bitbucket", "--timeout", "60"]),
        "",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(fixture.token_active(&token_of(&home, "bitbucket")));
}

#[test]
fn service_accounts_and_static_credentials_share_the_interface() {
    let fixture = Fixture::start();
    let home = Home::with_fixture_provider(&fixture);
    let stored = home.add_jira_service_account();
    assert!(stored.contains("obtained a token"), "{stored}");
    let first = token_of(&home, "jira-svc");
    assert!(fixture.token_works(&first));
    assert_eq!(
        fixture.stats()["token_calls"]["client_credentials"],
        1,
        "cached, not re-requested"
    );
    let db = rusqlite::Connection::open(home.file("latch.db")).unwrap();
    db.execute("UPDATE grants SET access_expires_at = '2000-01-01T00:00:00Z' WHERE id = 'service:jira-svc'", []).unwrap();
    let second = token_of(&home, "jira-svc");
    assert_ne!(first, second);
    assert_eq!(fixture.stats()["token_calls"]["client_credentials"], 2);
    let status = home.json(&["status", "--json"]);
    let svc = status["connectors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "jira-svc")
        .unwrap()
        .clone();
    assert_eq!(svc["state"], "ok");

    home.ok(
        &[
            "connector",
            "add",
            "jira-basic",
            "--type",
            "jira",
            "--auth",
            "api-token",
            "--email",
            "me@example.test",
        ],
        "",
    );
    assert_eq!(home.token("jira-basic").status.code(), Some(6));
    home.ok(
        &["credential", "set", "jira-basic"],
        "api-token-fixture-77\n",
    );
    assert_eq!(token_of(&home, "jira-basic"), "api-token-fixture-77");
    home.append_config(&format!(
        "\n[providers.opsgenie]\napi_base = \"{}/opsgenie\"\n",
        fixture.base
    ));
    home.ok(&["connector", "add", "opsgenie"], "");
    home.ok(&["credential", "set", "opsgenie"], "genie-key-fixture-88\n");
    assert_eq!(token_of(&home, "opsgenie"), "genie-key-fixture-88");
    let status = home.json(&["status", "--json"]);
    let ops = status["connectors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "opsgenie")
        .unwrap()
        .clone();
    assert_eq!(ops["state"], "ok");
}

/// The scheduler of `latch serve` rotates a refresh token that has been idle for a week, long
/// before the 90-day inactivity expiry, and refreshes access tokens about to expire.
#[test]
fn the_scheduler_keeps_idle_grants_alive() {
    let fixture = Fixture::start();
    let home = signed_in(&fixture);
    let db = rusqlite::Connection::open(home.file("latch.db")).unwrap();
    db.execute(
        "UPDATE grants SET refreshed_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now', '-10 days')",
        [],
    )
    .unwrap();
    let latch = home.open_in_process();
    let grants = latch.credentials();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(latch_core::credential::schedule::tick(&grants));
    assert_eq!(
        fixture.refresh_calls(),
        1,
        "the idle refresh token was rotated"
    );
    runtime.block_on(latch_core::credential::schedule::tick(&grants));
    assert_eq!(fixture.refresh_calls(), 1, "and not again while fresh");
    home.expire_access();
    runtime.block_on(latch_core::credential::schedule::tick(&grants));
    assert_eq!(
        fixture.refresh_calls(),
        2,
        "an expiring access token is refreshed ahead"
    );
    assert!(fixture.token_works(&token_of(&home, "jira")));
}

/// Drives the consent like a browser on another machine: follows the provider's redirects
/// (with its cookies) and stops at the callback it cannot reach; returns that address.
pub(crate) fn consent_elsewhere(authorize_url: &str, callback: &str) -> String {
    let script = "import sys, urllib.parse, requests\n\
        s = requests.Session()\n\
        url, prefix = sys.argv[1], sys.argv[2]\n\
        for _ in range(20):\n\
        \x20   r = s.get(url, allow_redirects=False)\n\
        \x20   loc = r.headers.get('location')\n\
        \x20   if not loc: sys.exit(f'no redirect from {url}: {r.status_code}')\n\
        \x20   url = urllib.parse.urljoin(url, loc)\n\
        \x20   if url.startswith(prefix):\n\
        \x20       print(url); break\n";
    let out = Command::new("python3")
        .args(["-c", script, authorize_url, callback])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// Headless / SSH sign-in: `--no-browser` prints the URL; the person signs in on another
/// machine, whose browser cannot reach the callback, and pastes the address it ended at — or
/// just `code=…&state=…`. A line that is not ours is refused and the sign-in goes on; the
/// callback listener is never needed.
#[test]
fn a_headless_sign_in_takes_the_pasted_address() {
    use std::io::Write as _;
    let fixture = Fixture::start();
    let home = Home::with_fixture_provider(&fixture);
    for paste_query_only in [false, true] {
        let mut login = home
            .cmd(&["login", "atlassian", "--no-browser", "--timeout", "60"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut reader = std::io::BufReader::new(login.stdout.take().unwrap());
        let mut url = String::new();
        std::io::BufRead::read_line(&mut reader, &mut url).unwrap();
        let landed = consent_elsewhere(url.trim(), &fixture.redirect_uri);
        assert!(landed.contains("code="), "{landed}");
        let paste = if paste_query_only {
            landed.split_once('?').unwrap().1.to_owned()
        } else {
            landed.clone()
        };
        let mut stdin = login.stdin.take().unwrap();
        writeln!(stdin, "this is not an address").unwrap();
        writeln!(
            stdin,
            "{}?code=forged&state=not-the-state",
            fixture.redirect_uri
        )
        .unwrap();
        writeln!(stdin, "{paste}").unwrap();
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut reader, &mut rest).unwrap();
        let out = login.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(rest.contains("Signed in"), "{rest}");
        assert!(stderr(&out).contains("does not match"), "{}", stderr(&out));
        assert!(stderr(&out).contains("paste"), "{}", stderr(&out));
    }
    assert_eq!(
        fixture.stats()["token_calls"]["authorization_code"],
        2,
        "one code per sign-in; the forged one was never redeemed"
    );
    assert_eq!(
        home.json(&["status", "--json"])["connectors"][0]["state"],
        "ok"
    );
}

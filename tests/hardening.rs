//! The proxy and sign-in hardening issue, finding by finding: each refusal with its allowed twin,
//! each bound asserted by count and outcome (never by duration), through `latch serve`, the real
//! fixture, curl, Python and Node.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::{
    curl, curl_until_settled, error_code, repo_path, stderr, stdout, Fixture, Home, Serve,
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
    home.ok(&full, "").trim().to_owned()
}

fn bearer(key: &str) -> String {
    format!("Authorization: Bearer {key}")
}

/// `curl -i`: (status, headers lower-cased, body).
fn curl_head(args: &[&str]) -> (u16, String, String) {
    let out = Command::new("curl")
        .args(["-s", "-i", "--max-time", "60"])
        .args(args)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head.to_lowercase(), body.to_owned())
}

/// Item 2: `--path ''` no longer means "any path", `--path 'v2/alerts *'` no longer adds `*`;
/// patterns are stored as a list; a stored pattern set that was ambiguous fails closed.
#[test]
fn policies_cannot_widen() {
    let fixture = Fixture::start();
    let home = signed_in(&fixture);
    for bad in ["", "  ", "rest/api/3/myself *"] {
        let out = home.run(
            &["keys", "create", "k", "--connector", "jira", "--path", bad],
            "",
        );
        assert_eq!(out.status.code(), Some(1), "{bad:?}: {}", stderr(&out));
        assert!(stderr(&out).contains("--path"), "{}", stderr(&out));
    }
    let k = key(
        &home,
        &[
            "two",
            "--connector",
            "jira",
            "--path",
            "rest/api/3/myself",
            "--path",
            "rest/api/2/*",
        ],
    );
    let serve = Serve::start(&home);
    for (path, want) in [
        ("/jira/rest/api/3/myself", 200),
        // `*` matches across `/`, as documented.
        ("/jira/rest/api/2/issue/ABC-1/comment", 200),
        ("/jira/rest/api/3/project", 403),
    ] {
        let (status, body) = curl(&["-H", &bearer(&k), &serve.url(path)]);
        assert_eq!(status, want, "{path}: {body}");
    }
    let listed = home.json(&["keys", "list", "--json"]);
    assert_eq!(
        listed[0]["paths"],
        serde_json::json!(["rest/api/3/myself", "rest/api/2/*"])
    );
    // A key whose stored patterns were ambiguous (what migration 3 makes of "v2/alerts *")
    // allows nothing, and says so.
    let db = rusqlite::Connection::open(home.file("latch.db")).unwrap();
    db.execute(
        "UPDATE local_keys SET policy = json_set(policy, '$.paths', json('[]')) WHERE name = 'two'",
        [],
    )
    .unwrap();
    let (status, body) = curl_until_settled(
        &["-H", &bearer(&k), &serve.url("/jira/rest/api/3/myself")],
        Duration::from_secs(5),
        |status, _| status == 403,
    );
    assert_eq!(
        (status, error_code(&body).as_str()),
        (403, "path_not_allowed"),
        "{body}"
    );
    assert!(home.ok(&["keys", "list"], "").contains("NONE"));
}

/// Item 3: a browser is refused before its key is looked at (Sec-Fetch-Site); Node's fetch, which
/// sends only Sec-Fetch-Mode, passes; Basic-after-challenge clients still get their challenge;
/// proxied answers carry nosniff and a sandbox CSP.
#[test]
fn browsers_are_refused_and_scripts_pass() {
    let fixture = Fixture::start();
    let home = signed_in(&fixture);
    let k = key(&home, &["k", "--connector", "jira"]);
    let serve = Serve::start(&home);
    let myself = serve.url("/jira/rest/api/3/myself");
    let (status, body) = curl(&[
        "-H",
        &bearer(&k),
        "-H",
        "Sec-Fetch-Site: same-origin",
        &myself,
    ]);
    assert_eq!(
        (status, error_code(&body).as_str()),
        (403, "browser_refused"),
        "{body}"
    );
    // Refused before the key: a browser without any key gets the same, and no challenge.
    let (status, head, _) = curl_head(&["-H", "Sec-Fetch-Site: cross-site", &myself]);
    assert_eq!(status, 403);
    assert!(!head.contains("www-authenticate"), "{head}");
    let (status, body) = curl(&["-H", &bearer(&k), "-H", "Sec-Fetch-Mode: cors", &myself]);
    assert_eq!(status, 200, "{body}");
    // Node's built-in fetch, unmodified.
    let script = format!(
        "fetch('{myself}', {{ headers: {{ Authorization: 'Bearer {k}' }} }})\
         .then(r => r.text().then(t => console.log(r.status, t.length)))\
         .catch(e => {{ console.error(e); process.exit(1); }})"
    );
    let out = Command::new("node").args(["-e", &script]).output().unwrap();
    assert!(
        stdout(&out).starts_with("200 "),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    // A client that sends Basic only after a challenge (curl --anyauth, git, Java, .NET).
    let (status, head, _) = curl_head(&["-H", "X-Nothing: 1", &myself]);
    assert_eq!(status, 401);
    assert!(head.contains("www-authenticate: basic"), "{head}");
    let (status, body) = curl(&["--anyauth", "-u", &format!("me:{k}"), &myself]);
    assert_eq!(status, 200, "{body}");
    // Proxied answers and refusals cannot be sniffed or run by a browser.
    for args in [
        vec!["-H".to_owned(), bearer(&k), myself.clone()],
        vec![myself.clone()],
    ] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (_, head, _) = curl_head(&args);
        assert!(head.contains("x-content-type-options: nosniff"), "{head}");
        assert!(head.contains("content-security-policy: sandbox"), "{head}");
    }
}

/// Item 4: method-override headers never reach the upstream (a read-only key stays read-only);
/// two Host headers are refused.
#[test]
fn read_only_stays_read_only_and_two_hosts_are_refused() {
    let fixture = Fixture::start();
    let home = signed_in(&fixture);
    let ro = key(&home, &["ro", "--connector", "jira", "--read-only"]);
    let serve = Serve::start(&home);
    let (status, body) = curl(&[
        "-H",
        &bearer(&ro),
        "-H",
        "X-HTTP-Method-Override: DELETE",
        "-H",
        "X-HTTP-Method: PUT",
        "-H",
        "X-Method-Override: POST",
        &serve.url("/jira/rest/api/3/issue/ABC-1"),
    ]);
    assert_eq!(status, 200, "{body}");
    let echoed: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(echoed["method"], "GET");
    assert_eq!(echoed["overrides"], serde_json::json!([]), "{body}");
    // Two Host headers: written by hand (clients refuse to send them).
    let request = format!(
        "GET /jira/rest/api/3/myself HTTP/1.1\r\nHost: {0}\r\nHost: evil.example\r\n\
         Authorization: Bearer {ro}\r\nConnection: close\r\n\r\n",
        serve.addr
    );
    let mut socket = std::net::TcpStream::connect(&serve.addr).unwrap();
    socket.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    socket.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("duplicate_host"), "{answer}");
}

/// Item 5: numbers from outside are checked: a huge `expires_in` from the token endpoint and a
/// huge `--ttl` are handled, never a panic (exit 101) or a half-written grant.
#[test]
fn hostile_numbers_are_errors_not_panics() {
    let fixture = Fixture::start();
    let home = Home::with_fixture_provider(&fixture);
    fixture.control(serde_json::json!({ "expires_in_override": "18446744073709551615" }));
    let out = home.login();
    assert!(out.status.success(), "{}", stderr(&out));
    let status = home.json(&["status", "--json"]);
    let expires = status["providers"][0]["grant"]["access_expires_at"]
        .as_str()
        .unwrap()
        .to_owned();
    let at = time::OffsetDateTime::parse(&expires, &time::format_description::well_known::Rfc3339)
        .unwrap();
    assert!(
        at - time::OffsetDateTime::now_utc() <= time::Duration::hours(24),
        "capped: {expires}"
    );
    let k = key(&home, &["k", "--connector", "jira"]);
    let serve = Serve::start(&home);
    let (status, body) = curl(&["-H", &bearer(&k), &serve.url("/jira/rest/api/3/myself")]);
    assert_eq!(status, 200, "{body}");
    drop(serve);
    // Negative and out-of-range `expires_in`: a default, or a refusal — never a crash.
    for value in ["-5", "1e400"] {
        fixture.control(serde_json::json!({ "expires_in_override": value }));
        home.expire_access();
        let out = home.run(&["token", "jira"], "");
        assert_ne!(out.status.code(), Some(101), "{value}: {}", stderr(&out));
    }
    fixture.control(serde_json::json!({ "expires_in_override": null }));
    for args in [
        vec![
            "keys",
            "create",
            "x",
            "--connector",
            "jira",
            "--ttl",
            "99999999999999d",
        ],
        vec![
            "keys",
            "create",
            "x",
            "--connector",
            "jira",
            "--ttl",
            "9223372036854775807s",
        ],
        vec!["audit", "--since", "99999999999999d"],
        vec!["audit", "--since", "garbageTx"],
    ] {
        let out = home.run(&args, "");
        assert!(
            matches!(out.status.code(), Some(1 | 2)),
            "{args:?}: {:?} {}",
            out.status.code(),
            stderr(&out)
        );
    }
}

/// Item 6: 1,000 unauthenticated requests with 60,000-character paths add a row or two of
/// counts, not 1,000 rows of paths; a keyed request's path is capped; old rows are pruned.
#[test]
fn the_audit_log_stays_bounded() {
    let fixture = Fixture::start();
    let home = signed_in(&fixture);
    let k = key(&home, &["k", "--connector", "jira"]);
    // An old row: older than `[audit] keep_days`, pruned when serving starts.
    home.append_config("\n[audit]\nkeep_days = 30\n");
    let db = rusqlite::Connection::open(home.file("latch.db")).unwrap();
    db.execute(
        "INSERT INTO audit (at, key_name, connector, method, path, status, bytes, latency_us)
         VALUES ('2001-01-01T00:00:00Z', 'k', 'jira', 'GET', '/old', 200, 0, 0)",
        [],
    )
    .unwrap();
    let size_before = std::fs::metadata(home.file("latch.db")).unwrap().len();
    let serve = Serve::start(&home);
    let long = "a".repeat(60_000);
    let script = format!(
        "import requests\n\
         s = requests.Session()\n\
         codes = set()\n\
         for i in range(1000):\n\
         \x20   codes.add(s.get('{}' + '/jira/{long}').status_code)\n\
         print(sorted(codes))",
        serve.url("")
    );
    let out = Command::new("python3")
        .args(["-c", &script])
        .output()
        .unwrap();
    assert_eq!(stdout(&out).trim(), "[401]", "{}", stderr(&out));
    // The fixture's own HTTP server refuses a 60 KB request line (431): the proxy passes that
    // through, and keeps the row.
    let (status, _) = curl(&["-H", &bearer(&k), &serve.url(&format!("/jira/{long}"))]);
    assert!(status >= 200, "answered: {status}");
    serve.stop();
    let rows: Vec<(Option<String>, String, i64, Option<String>)> = db
        .prepare("SELECT key_name, path, count, reason FROM audit")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(!rows.iter().any(|r| r.1 == "/old"), "pruned: {rows:?}");
    let refused: i64 = rows
        .iter()
        .filter(|r| r.3.as_deref() == Some("missing_key"))
        .map(|r| r.2)
        .sum();
    assert_eq!(refused, 1000);
    assert!(
        rows.len() <= 4,
        "a row per minute and reason, not per request: {}",
        rows.len()
    );
    assert!(rows.iter().all(|r| r.1.len() <= 520), "paths are capped");
    let keyed = rows.iter().find(|r| r.0.as_deref() == Some("k")).unwrap();
    assert!(keyed.1.starts_with("/jira/aaa") && keyed.1.len() <= 520);
    let size_after = std::fs::metadata(home.file("latch.db")).unwrap().len();
    assert!(
        size_after < size_before + 1_000_000,
        "{size_before} → {size_after} bytes"
    );
}

/// Item 7: out of descriptors, the proxy backs off instead of spinning, caps its connections
/// below the limit, and a real request is answered while 400 idle connections are held.
#[test]
fn a_request_is_answered_while_400_idle_connections_are_held() {
    let fixture = Fixture::start();
    let home = signed_in(&fixture);
    let k = key(&home, &["k", "--connector", "jira"]);
    let latch = env!("CARGO_BIN_EXE_latch");
    let mut serve = Command::new("bash");
    serve
        .args([
            "-c",
            "ulimit -n 200 && exec \"$0\" serve --listen 127.0.0.1:0",
            latch,
        ])
        .env("LATCH_HOME", home.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut serve = serve.spawn().unwrap();
    let mut line = String::new();
    BufReader::new(serve.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line.trim().rsplit("http://").next().unwrap().to_owned();
    let (host, port) = addr.rsplit_once(':').unwrap();
    // 400 connections that never send a request, held until told to stop.
    let mut holder = Command::new("python3")
        .args([
            "-c",
            &format!(
                "import socket, sys\n\
                 held = [socket.create_connection(('{host}', {port})) for _ in range(400)]\n\
                 print('held', len(held), flush=True)\n\
                 sys.stdin.read()"
            ),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut held = String::new();
    BufReader::new(holder.stdout.take().unwrap())
        .read_line(&mut held)
        .unwrap();
    assert_eq!(held.trim(), "held 400");
    let (status, body) = curl(&[
        "-H",
        &bearer(&k),
        &format!("http://{addr}/jira/rest/api/3/myself"),
    ]);
    assert_eq!(status, 200, "{body}");
    drop(holder.stdin.take());
    let _ = holder.wait();
    let _ = serve.kill();
    let _ = serve.wait();
}

/// Item 8: a path that always answers 401 does not rotate the family on every request: at most
/// one automatic refresh per grant per 30 s, and none for a young token; the upstream's 401 passes
/// through with `X-Latch-Refresh: throttled`. An explicit refresh is never throttled.
#[test]
fn forced_refreshes_are_throttled() {
    let fixture = Fixture::start();
    let home = signed_in(&fixture);
    let k = key(&home, &["k", "--connector", "jira"]);
    let serve = Serve::start(&home);
    // A young token: no refresh at all.
    let before = fixture.refresh_calls();
    let (status, head, body) = curl_head(&["-H", &bearer(&k), &serve.url("/jira/__status/401")]);
    assert_eq!(status, 401);
    assert!(head.contains("x-latch-refresh: throttled"), "{head}");
    assert_eq!(body, "{\"status\":401}");
    assert_eq!(fixture.refresh_calls(), before);
    // An older token: one refresh for twenty 401s.
    home.age_access(120);
    let mut throttled = 0;
    for _ in 0..20 {
        let (status, head, _) = curl_head(&["-H", &bearer(&k), &serve.url("/jira/__status/401")]);
        assert_eq!(status, 401);
        throttled += usize::from(head.contains("x-latch-refresh: throttled"));
    }
    let refreshes = fixture.refresh_calls() - before;
    assert!(
        refreshes <= 1,
        "{refreshes} token-endpoint calls for 20 401s"
    );
    assert!(throttled >= 19, "{throttled}");
    // The person asks: refreshed now.
    let calls = fixture.refresh_calls();
    home.ok(&["token", "jira", "--refresh"], "");
    assert_eq!(fixture.refresh_calls(), calls + 1);
}

/// A `$BROWSER` that first opens `idle` silent connections to the callback port (and, for a
/// `localhost` callback, checks that ::1 is listened on), then runs the real headless browser.
fn browser_with_idle_sockets(
    home: &Home,
    port: u16,
    idle: usize,
    check_v6: bool,
) -> std::path::PathBuf {
    let script = home.file("browser-idle.sh");
    let holder = format!(
        "import socket, sys, time\n\
         held = [socket.create_connection(('127.0.0.1', {port})) for _ in range({idle})]\n\
         v6 = 'skip'\n\
         if {check}:\n\
         \x20   try:\n\
         \x20       socket.create_connection(('::1', {port}), timeout=5).close(); v6 = 'yes'\n\
         \x20   except OSError as e:\n\
         \x20       v6 = 'no' if socket.has_ipv6 else 'skip'\n\
         open(sys.argv[1], 'w').write(v6)\n\
         print('held', flush=True)\n\
         time.sleep(60)\n",
        check = if check_v6 { "True" } else { "False" },
    );
    std::fs::write(home.file("hold.py"), holder).unwrap();
    std::fs::write(
        &script,
        format!(
            "#!/usr/bin/env bash\nset -euo pipefail\n\
             fifo=$(mktemp -u); mkfifo \"$fifo\"\n\
             python3 {hold} {v6} > \"$fifo\" &\n\
             read -r ready < \"$fifo\"\n\
             exec {browser} \"$1\"\n",
            hold = home.file("hold.py").display(),
            v6 = home.file("v6").display(),
            browser = repo_path("tests/fixture/browser.sh").display(),
        ),
    )
    .unwrap();
    Command::new("chmod")
        .args(["+x"])
        .arg(&script)
        .status()
        .unwrap();
    script
}

/// Item 9: three idle sockets on the callback port no longer hold up the real callback (each
/// connection is served on its own; before, each cost a 5 s read timeout in turn); a
/// `localhost` callback is listened for on ::1 as well, where the machine has it.
#[test]
fn the_callback_is_served_while_idle_sockets_wait() {
    let fixture = Fixture::start();
    let home = Home::with_fixture_provider(&fixture);
    let port: u16 = fixture
        .redirect_uri
        .rsplit(':')
        .next()
        .unwrap()
        .trim_end_matches("/callback")
        .parse()
        .unwrap();
    let browser = browser_with_idle_sockets(&home, port, 3, false);
    // 12 s: enough for the browser; not for three 5 s read timeouts in a row.
    let mut cmd = home.cmd(&["login", "atlassian", "--timeout", "12"]);
    cmd.env("BROWSER", &browser);
    let out = crate::support::run_with_stdin(cmd, "");
    assert!(out.status.success(), "{}", stderr(&out));

    // `localhost`: the fixture must also accept that callback.
    let fixture = Fixture::start_with_redirect(&format!(
        "http://localhost:{}/callback",
        crate::support::free_port()
    ));
    let home = Home::with_fixture_provider(&fixture);
    let port: u16 = fixture
        .redirect_uri
        .rsplit(':')
        .next()
        .unwrap()
        .trim_end_matches("/callback")
        .parse()
        .unwrap();
    let browser = browser_with_idle_sockets(&home, port, 0, true);
    let mut cmd = home.cmd(&["login", "atlassian", "--timeout", "30"]);
    cmd.env("BROWSER", &browser);
    let out = crate::support::run_with_stdin(cmd, "");
    assert!(out.status.success(), "{}", stderr(&out));
    let v6 = std::fs::read_to_string(home.file("v6")).unwrap();
    assert_ne!(
        v6, "no",
        "::1 is on this machine but Latch did not listen there"
    );
}

/// Item 10: `latch exec` gives the child LATCH_PROXY_URL and one LATCH_<NAME>_URL per connector:
/// a connector named `proxy` would overwrite the first, and is refused.
#[test]
fn exec_names_cannot_collide() {
    let fixture = Fixture::start();
    let home = Home::with_fixture_provider(&fixture);
    let out = home.run(&["connector", "add", "proxy", "--type", "jira"], "");
    assert_ne!(out.status.code(), Some(0));
    assert!(stderr(&out).contains("reserved"), "{}", stderr(&out));
    home.append_config("\n[connectors.proxy]\ntype = \"jira\"\n");
    let out = home.run(&["status"], "");
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("LATCH_PROXY_URL"), "{}", stderr(&out));
}

/// Item 11: `KEY=$(latch keys create …); curl …` against a running `latch serve` works at once,
/// every time (it was refused `bad_key` for half a second).
#[test]
fn a_new_key_works_at_once() {
    let fixture = Fixture::start();
    let home = signed_in(&fixture);
    let serve = Serve::start(&home);
    for i in 0..20 {
        let k = key(&home, &[&format!("k{i}"), "--connector", "jira"]);
        let (status, body) = curl(&["-H", &bearer(&k), &serve.url("/jira/rest/api/3/myself")]);
        assert_eq!(status, 200, "key {i}: {body}");
    }
    // Revocation stays immediate.
    home.ok(&["keys", "revoke", "k0"], "");
    let (status, _) = curl_until_settled(
        &[
            "-H",
            &bearer("lk_unused"),
            &serve.url("/jira/rest/api/3/myself"),
        ],
        Duration::from_secs(1),
        |status, _| status == 401,
    );
    assert_eq!(status, 401);
}

/// Item 12: a 401-triggered refresh that meets a failing token endpoint answers 503
/// `token_endpoint_failing` with Retry-After (not the upstream's stale 401); a hanging one
/// answers 503 once the caller's wait is spent, while the refresh goes on and is kept; a dead
/// family answers 502 `needs_login`.
#[test]
fn token_endpoint_trouble_is_not_the_tools_fault() {
    let fixture = Fixture::start();
    let home = signed_in(&fixture);
    home.append_config("\n[network]\ncaller_wait_secs = 1\nrefresh_timeout_secs = 20\n");
    let k = key(&home, &["k", "--connector", "jira"]);
    for mode in ["500", "html", "lose_response"] {
        // A new proxy each time: the 401 refresh is throttled per grant for 30 s.
        let serve = Serve::start(&home);
        let myself = serve.url("/jira/rest/api/3/myself");
        // The access token dies early; the refresh meets a broken token endpoint.
        curl(&["-X", "POST", &format!("{}/__revoke_access", fixture.base)]);
        home.age_access(120);
        fixture.control(serde_json::json!({ "token_mode": mode }));
        let (status, head, body) = curl_head(&["-H", &bearer(&k), &myself]);
        assert_eq!(status, 503, "{mode}: {body}");
        assert_eq!(
            error_code(&body),
            "token_endpoint_failing",
            "{mode}: {body}"
        );
        assert!(head.contains("retry-after:"), "{mode}: {head}");
        fixture.control(serde_json::json!({ "token_mode": "normal" }));
        let (status, _) = curl_until_settled(
            &["-H", &bearer(&k), &myself],
            Duration::from_secs(20),
            |status, _| status == 200,
        );
        assert_eq!(status, 200, "{mode}: recovers");
        let status = home.json(&["status", "--json"]);
        assert_eq!(status["connectors"][0]["state"], "ok");
    }
    let serve = Serve::start(&home);
    let myself = serve.url("/jira/rest/api/3/myself");
    // A token endpoint that takes 3 s: the caller waits 1 s, then 503; the refresh completes.
    fixture.control(serde_json::json!({ "token_mode": "slow", "slow_ms": 3000 }));
    home.expire_access();
    let (status, body) = curl(&["-H", &bearer(&k), &myself]);
    assert_eq!(
        (status, error_code(&body).as_str()),
        (503, "token_endpoint_failing"),
        "{body}"
    );
    fixture.control(serde_json::json!({ "token_mode": "normal" }));
    let calls = fixture.refresh_calls();
    let (status, _) = curl_until_settled(
        &["-H", &bearer(&k), &myself],
        Duration::from_secs(20),
        |status, _| status == 200,
    );
    assert_eq!(status, 200);
    assert_eq!(
        fixture.refresh_calls(),
        calls,
        "the slow refresh's answer was kept and used"
    );
    // The family revoked: the 401-triggered refresh says sign in again.
    drop(serve);
    let serve = Serve::start(&home);
    let myself = serve.url("/jira/rest/api/3/myself");
    fixture.revoke_all();
    curl(&["-X", "POST", &format!("{}/__revoke_access", fixture.base)]);
    home.age_access(120);
    let (status, body) = curl_until_settled(
        &["-H", &bearer(&k), &myself],
        Duration::from_secs(5),
        |status, _| status == 502,
    );
    assert_eq!(
        (status, error_code(&body).as_str()),
        (502, "needs_login"),
        "{body}"
    );
}

/// Item 13: a token endpoint that hangs and then processes the refresh, or processes it and
/// answers late, never costs the sign-in: Latch never abandons a sent refresh before its own
/// timeout, resends the same token only once inside the reuse window, and the family is never
/// revoked — several times in a row, with other requests and normal rotations in between.
#[test]
fn slow_rotation_never_loses_the_sign_in() {
    let fixture = Fixture::start();
    let home = signed_in(&fixture);
    // Scaled down from the defaults and keeping their proportions: the caller waits 15 s → 1 s,
    // a refresh runs to 300 s → 10 s, a slow token endpoint takes 40 s → 3 s.
    home.append_config("\n[network]\ncaller_wait_secs = 1\nrefresh_timeout_secs = 10\n");
    let k = key(&home, &["k", "--connector", "jira"]);
    let serve = Serve::start(&home);
    let myself = serve.url("/jira/rest/api/3/myself");
    for round in 0..2 {
        for mode in ["slow", "late_answer"] {
            fixture.control(serde_json::json!({ "token_mode": mode, "slow_ms": 3000 }));
            home.expire_access();
            let calls = fixture.refresh_calls();
            let (status, body) = curl(&["-H", &bearer(&k), &myself]);
            assert_eq!(status, 503, "{round}/{mode}: {body}");
            // Other requests meanwhile: answered (503 while it lasts), never a second refresh.
            for _ in 0..3 {
                let (status, _) = curl(&["-H", &bearer(&k), &myself]);
                assert!(matches!(status, 200 | 503), "{round}/{mode}: {status}");
            }
            let (status, body) = curl_until_settled(
                &["-H", &bearer(&k), &myself],
                Duration::from_secs(30),
                |status, _| status == 200,
            );
            assert_eq!(status, 200, "{round}/{mode}: {body}");
            assert_eq!(
                fixture.refresh_calls(),
                calls + 1,
                "{round}/{mode}: one refresh, run to its end, never resent"
            );
            fixture.control(serde_json::json!({ "token_mode": "normal" }));
            // A normal rotation between.
            home.ok(&["token", "jira", "--refresh"], "");
        }
    }
    let stats = fixture.stats();
    assert!(stats["family_revocations"].is_null(), "{stats}");
    assert!(
        stats["refresh_errors"].get("invalid_grant").is_none(),
        "{stats}"
    );
    let status = home.json(&["status", "--json"]);
    assert_eq!(status["connectors"][0]["state"], "ok", "{status}");
}

/// Item 14: while `latch serve` takes a latch.toml edit, no connection is refused: the new
/// configuration is swapped in behind the listener.
#[test]
fn reloads_refuse_no_connection() {
    let fixture = Fixture::start();
    let home = signed_in(&fixture);
    let k = key(&home, &["k", "--connector", "jira"]);
    let serve = Serve::start(&home);
    let mut client = Command::new("python3")
        .args([
            "-c",
            &format!(
                "import requests, sys, select\n\
                 s = requests.Session()\n\
                 seen = {{}}\n\
                 while not select.select([sys.stdin], [], [], 0)[0]:\n\
                 \x20   try:\n\
                 \x20       code = s.get('{}', headers={{'Authorization': 'Bearer {k}'}}).status_code\n\
                 \x20   except Exception as e:\n\
                 \x20       code = type(e).__name__\n\
                 \x20   seen[code] = seen.get(code, 0) + 1\n\
                 \x20   if sum(seen.values()) == 1:\n\
                 \x20       print('started', flush=True)\n\
                 print(seen)",
                serve.url("/jira/rest/api/3/myself")
            ),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // The edits start once the client is sending (they apply at once, faster than Python starts).
    let mut client_out = BufReader::new(client.stdout.take().unwrap());
    let mut started = String::new();
    BufRead::read_line(&mut client_out, &mut started).unwrap();
    assert_eq!(started.trim(), "started");
    for name in ["conf-a", "conf-b", "conf-c"] {
        home.ok(
            &[
                "connector",
                "add",
                name,
                "--type",
                "confluence",
                "--site",
                "acme",
            ],
            "",
        );
        let k2 = key(&home, &[&format!("key-{name}"), "--connector", name]);
        let (status, body) = curl_until_settled(
            &[
                "-H",
                &bearer(&k2),
                &serve.url(&format!("/{name}/wiki/rest/api/space")),
            ],
            Duration::from_secs(15),
            |status, _| status == 200,
        );
        assert_eq!(status, 200, "{name} served after the edit: {body}");
    }
    drop(client.stdin.take());
    let mut seen = String::new();
    Read::read_to_string(&mut client_out, &mut seen).unwrap();
    client.wait().unwrap();
    assert!(seen.contains("200:"), "{seen}");
    assert_eq!(
        seen.trim().trim_matches(['{', '}']).split(',').count(),
        1,
        "only 200s, no refused connection: {seen}"
    );
}

/// Logs: a whole session at `LATCH_LOG=trace` (and `-vvv`) — a sign-in, a service account, an
/// API token, proxied requests with a secret in the query, a refresh — logs what happened, and
/// no token, key or secret reaches any line.
#[test]
fn no_secret_reaches_a_log_line_at_any_level() {
    use crate::support::{CLIENT_SECRET, SCOPED_TOKEN, SVC_CLIENT_ID, SVC_CLIENT_SECRET};
    let fixture = Fixture::start();
    let home = Home::with_fixture_provider(&fixture);
    home.set_env("LATCH_LOG", Some("trace"));
    let logs = std::cell::RefCell::new(String::new());
    let keep = |out: std::process::Output| {
        logs.borrow_mut()
            .push_str(&String::from_utf8_lossy(&out.stderr));
        out
    };
    let out = keep(home.login());
    assert!(out.status.success(), "{}", stderr(&out));
    keep(home.run(
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
    ));
    keep(home.run(&["credential", "set", "jira-svc"], SVC_CLIENT_SECRET));
    keep(home.run(
        &[
            "connector",
            "add",
            "jira-tok",
            "--type",
            "jira",
            "--auth",
            "api-token",
            "--email",
            crate::support::EMAIL,
            "--site",
            "acme",
            "--token",
            "scoped",
        ],
        "",
    ));
    keep(home.run(&["credential", "set", "jira-tok"], SCOPED_TOKEN));
    let out = keep(home.run(
        &[
            "keys",
            "create",
            "k",
            "--connector",
            "jira",
            "--connector",
            "jira-svc",
            "--connector",
            "jira-tok",
        ],
        "",
    ));
    let key = stdout(&out).trim().to_owned();
    let log_file = home.file("serve.log");
    let serve = Serve::start_with_stderr(&home, std::fs::File::create(&log_file).unwrap());
    for path in [
        "/jira/rest/api/3/myself?secret=query-secret-77",
        "/jira-svc/rest/api/3/myself",
        "/jira-tok/rest/api/3/myself",
    ] {
        let (status, body) = curl(&[
            "-H",
            &format!("Authorization: Bearer {key}"),
            &serve.url(path),
        ]);
        assert_eq!(status, 200, "{path}: {body}");
    }
    let (status, _) = curl(&[
        "-H",
        "Authorization: Bearer lk_not-a-real-key-0000",
        &serve.url("/jira/x"),
    ]);
    assert_eq!(status, 401);
    serve.stop();
    logs.borrow_mut()
        .push_str(&std::fs::read_to_string(&log_file).unwrap());
    // -vvv on the command line, without LATCH_LOG: a refresh.
    home.set_env("LATCH_LOG", None);
    keep(home.run(&["-vvv", "token", "jira", "--refresh"], ""));

    let logs = logs.into_inner();
    // The log says what happened…
    assert!(logs.contains("proxied"), "{logs}");
    assert!(logs.contains("refreshed"), "{logs}");
    assert!(
        logs.contains("/jira-svc/rest/api/3/myself") || logs.contains("rest/api/3/myself"),
        "{logs}"
    );
    // …and nothing secret.
    let mut secrets: Vec<String> = fixture.issued();
    secrets.extend(
        [
            key.as_str(),
            CLIENT_SECRET,
            SVC_CLIENT_SECRET,
            SCOPED_TOKEN,
            "query-secret-77",
            "lk_not-a-real-key-0000",
        ]
        .map(str::to_owned),
    );
    for secret in secrets.iter().filter(|s| s.len() >= 8) {
        assert!(
            !logs.contains(secret.as_str()),
            "a secret reached the log: {}…",
            &secret[..6]
        );
    }
}

//! `latch exec --intercept`: unmodified tools call Atlassian's real host names with dummy tokens
//! of their own — curl, Python `requests`, Node's built-in `fetch`, real `git clone` — and Latch's
//! forward proxy for the child gives each request the connector's credential. The test server
//! stands in for Atlassian through the endpoint overrides; the host names stay the real ones
//! (no DNS: the proxy never resolves an intercepted host).

use std::process::Output;

use crate::bitbucket::{add_bitbucket, login_bitbucket};
use crate::support::{repo_path, stderr, stdout, venv, Fixture, Home};

fn signed_in(fixture: &Fixture) -> Home {
    let home = Home::with_fixture_provider(fixture);
    let out = home.login();
    assert!(out.status.success(), "login: {}", stderr(&out));
    home
}

/// `latch exec --intercept ARGS -- sh -c SCRIPT` in the home's directory.
fn intercept(home: &Home, args: &[&str], script: &str) -> Output {
    let mut full = vec!["exec", "--intercept"];
    full.extend_from_slice(args);
    full.extend_from_slice(&["--", "sh", "-c", script]);
    let mut cmd = home.cmd(&full);
    cmd.current_dir(home.path());
    // The person's own proxy settings are what the exec starts from; none here.
    for name in [
        "HTTPS_PROXY",
        "https_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "NO_PROXY",
        "no_proxy",
    ] {
        cmd.env_remove(name);
    }
    cmd.env("NODE_OPTIONS", "--no-warnings");
    cmd.output().unwrap()
}

/// Each tool with a dummy token of its own gets the connector's answer; the real token is
/// nowhere in the child's environment; a Confluence path with only Jira chosen is refused; the
/// private directory is gone after the exit.
#[test]
fn unmodified_tools_reach_atlassian_by_its_own_names() {
    let fixture = Fixture::start();
    let home = signed_in(&fixture);
    let python = venv("python");
    let script = format!(
        "set -u\n\
         curl -sS -o curl.json -w '%{{http_code}}\\n' -H 'Authorization: Bearer dummy-curl' \
           https://acme.atlassian.net/rest/api/3/myself > curl.status 2> curl.err\n\
         curl -sS -o /dev/null -w '%{{http_code}}\\n' -H 'Authorization: Bearer dummy-curl' \
           https://api.atlassian.com/ex/jira/$(cat cloud-id)/rest/api/3/myself > gateway.status\n\
         curl -sS -o wiki.json -w '%{{http_code}}\\n' https://acme.atlassian.net/wiki/rest/api/space > wiki.status\n\
         curl -sS -o /dev/null -w '%{{http_code}}\\n' -H 'Host: api.atlassian.com' \
           https://acme.atlassian.net/rest/api/3/myself > host.status\n\
         {python} -c \"import requests; r = requests.get('https://acme.atlassian.net/rest/api/3/myself', \
           headers={{'Authorization': 'Bearer dummy-python'}}); print(r.status_code, r.json()['accountId'])\" > python.out\n\
         {python} -c \"from atlassian import Jira; \
           j = Jira(url='https://acme.atlassian.net', username='me@example.com', password='dummy', cloud=True); \
           print(j.myself()['accountId'])\" > apa.out 2>&1\n\
         node -e \"fetch('https://acme.atlassian.net/rest/api/3/myself', {{headers: {{authorization: 'Bearer dummy-node'}}}})\
           .then(async (r) => console.log(r.status, (await r.json()).accountId), (e) => console.log(e, e.cause))\" > node.out 2>&1\n\
         node -e \"require('https').get('https://acme.atlassian.net/rest/api/3/myself', \
           {{headers: {{authorization: 'Basic ZHVtbXk6ZHVtbXk='}}}}, (r) => console.log(r.statusCode))\" > node-https.out 2>&1\n\
         {python} {sni} > sni.out\n\
         {python} {absolute} https://acme.atlassian.net/rest/api/3/myself > absolute.out 2>&1\n\
         cat /proc/$$/environ > environ\n\
         env > env.txt\n\
         echo \"$SSL_CERT_FILE\" > bundle-path\n\
         exit 7",
        python = python.display(),
        sni = repo_path("tests/fixture/sni_mismatch.py").display(),
        absolute = repo_path("tests/fixture/absolute_form.py").display(),
    );
    std::fs::write(home.file("cloud-id"), crate::support::CLOUD_ID).unwrap();
    let out = intercept(&home, &["--connector", "jira"], &script);
    assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));
    let read = |name: &str| std::fs::read_to_string(home.file(name)).unwrap_or_default();

    assert_eq!(
        read("curl.status").trim(),
        "200",
        "{}{}",
        read("curl.json"),
        read("curl.err")
    );
    let me: serde_json::Value = serde_json::from_str(&read("curl.json")).unwrap();
    assert!(me["accountId"].is_string(), "{me}");
    assert_eq!(read("gateway.status").trim(), "200");
    assert!(
        read("python.out").starts_with("200 "),
        "{}",
        read("python.out")
    );
    assert!(read("node.out").starts_with("200 "), "{}", read("node.out"));
    assert_eq!(read("node-https.out").trim(), "200", "Node's https module");
    assert_eq!(
        read("apa.out").trim(),
        "fixture-user",
        "atlassian-python-api"
    );

    // Only Jira was chosen: Confluence's path on the same site is refused, not sent with
    // Jira's credential.
    assert_eq!(read("wiki.status").trim(), "403");
    assert!(
        read("wiki.json").contains("not_covered"),
        "{}",
        read("wiki.json")
    );
    // A Host other than the tunnel's, and a TLS server name other than the tunnel's: 421.
    assert_eq!(read("host.status").trim(), "421");
    assert_eq!(read("sni.out").trim(), "421", "{}", read("sni.out"));
    // axios's way: an absolute-form https:// URL in plain HTTP to the proxy.
    assert_eq!(
        read("absolute.out").trim(),
        "200",
        "{}",
        read("absolute.out")
    );

    // The real tokens are nowhere in the child's environment.
    let environ = read("environ") + &read("env.txt");
    assert!(
        environ.contains("HTTPS_PROXY=http://latch:"),
        "the child had the proxy"
    );
    let issued = fixture.issued();
    assert!(!issued.is_empty());
    for token in issued {
        assert!(!environ.contains(&token), "a real token reached the child");
    }
    let bundle = read("bundle-path");
    let dir = std::path::Path::new(bundle.trim())
        .parent()
        .unwrap()
        .to_owned();
    assert!(!dir.as_os_str().is_empty());
    assert!(!dir.exists(), "{} outlived the exec", dir.display());

    // Audited as the exec's, with the connector.
    let audit = home.ok(&["audit", "--json"], "");
    assert!(audit.contains("exec:sh"), "{audit}");

    // With Confluence chosen too, the same site's `/wiki/` goes to it, the rest still to Jira.
    let out = intercept(
        &home,
        &["--connector", "jira", "--connector", "confluence"],
        "curl -sS -o wiki.json -w '%{http_code}' https://acme.atlassian.net/wiki/rest/api/space > wiki.status; \
         curl -sS -o /dev/null -w ' %{http_code}' https://acme.atlassian.net/rest/api/3/myself >> wiki.status",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(read("wiki.status"), "200 200", "{}", read("wiki.json"));
    let wiki: serde_json::Value = serde_json::from_str(&read("wiki.json")).unwrap();
    assert_eq!(wiki["product"], "confluence", "{wiki}");
}

/// A host outside the connectors is tunnelled untouched (the client sees that server's own
/// certificate, never one from the exec's CA), or refused with --deny-other-hosts. The dry run
/// prints the host map.
#[test]
fn other_hosts_are_tunnelled_or_refused() {
    let certs = tempfile::tempdir().unwrap();
    let (ca, cert, key) = crate::datacenter::test_ca(certs.path());
    let fixture = Fixture::start_with_tls(&cert, &key);
    let home = signed_in(&fixture);
    let other = format!(
        "https://localhost:{}/dc/rest/api/2/serverInfo",
        fixture.tls_port.unwrap()
    );
    let plain = format!("{}/dc/rest/api/2/serverInfo", fixture.base);
    // Loopback is in the child's NO_PROXY; `--noproxy ''` sends it through the proxy anyway.
    // Without the exec's password (none, or a wrong one), the proxy answers CONNECT with 407.
    let script = format!(
        "curl -sS --noproxy '' --cacert {ca} -o /dev/null -w '%{{http_code}} %{{certs}}' {other} > other.out 2>&1; \
         echo \" exit=$?\" >> other.out\n\
         curl -sS --noproxy '' -o /dev/null -w '%{{http_code}}' {plain} > plain.out 2>&1\n\
         bare=$(echo \"$HTTPS_PROXY\" | sed 's|//[^@]*@|//|')\n\
         wrong=$(echo \"$HTTPS_PROXY\" | sed 's|:[^:@]*@|:wrong@|')\n\
         curl -s -o /dev/null -w '%{{http_connect}} ' --proxy \"$bare\" https://acme.atlassian.net/ > auth.out\n\
         curl -s -o /dev/null -w '%{{http_connect}}' --proxy \"$wrong\" https://acme.atlassian.net/ >> auth.out; true",
        ca = ca.display()
    );
    let out = intercept(&home, &["--connector", "jira"], &script);
    assert!(out.status.success(), "{}", stderr(&out));
    let read = |name: &str| std::fs::read_to_string(home.file(name)).unwrap();
    assert_eq!(read("auth.out"), "407 407", "no password, a wrong one");
    assert_eq!(
        read("plain.out"),
        "200",
        "plain HTTP to another host is passed on"
    );
    let text = read("other.out");
    assert!(text.starts_with("200 "), "{text}");
    assert!(text.contains("Latch Test Corp CA"), "{text}");
    assert!(!text.contains("ephemeral"), "{text}");

    let out = intercept(
        &home,
        &["--connector", "jira", "--deny-other-hosts"],
        &script,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = read("other.out");
    assert!(text.contains("403"), "{text}");
    assert_eq!(read("plain.out"), "403", "and plain HTTP to it");
    // What left for other hosts, and what was refused, is audited under the exec's key.
    let audit: serde_json::Value =
        serde_json::from_str(&home.ok(&["audit", "--json", "--key", "exec:sh"], "")).unwrap();
    let rows = audit.as_array().expect("rows");
    let tunnel = format!("localhost:{}", fixture.tls_port.unwrap());
    let statuses: Vec<i64> = rows
        .iter()
        .filter(|r| r["method"] == "CONNECT" && r["path"] == tunnel.as_str())
        .filter_map(|r| r["status"].as_i64())
        .collect();
    assert!(
        statuses.contains(&200) && statuses.contains(&403),
        "{statuses:?} in {audit}"
    );
    assert!(!text.starts_with("200"), "{text}");

    let out = home.run(
        &["exec", "--intercept", "--dry-run", "--connector", "jira"],
        "",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let map = stdout(&out);
    assert!(map.contains("acme.atlassian.net"), "{map}");
    let gateway = format!("/ex/jira/{}/…", crate::support::CLOUD_ID);
    assert!(
        map.lines().any(|l| l.starts_with("api.atlassian.com ")
            && l.contains(&gateway)
            && l.ends_with("→ jira")),
        "{map}"
    );
    assert!(!map.contains("127.0.0.1"), "{map}");
    let out = home.run(&["exec", "--dry-run", "--", "true"], "");
    assert!(!out.status.success(), "--dry-run needs --intercept");
}

/// Real `git clone https://bitbucket.org/…` under intercept: the person's own `http.proxy` is
/// overridden for the child, the clone carries the connector's token in git's form, and the
/// installed credential helper answers git a dummy password.
#[test]
fn git_clones_bitbucket_by_its_own_url() {
    let fixture = Fixture::start();
    let home = Home::new();
    add_bitbucket(&home, &fixture);
    login_bitbucket(&home);
    // The helper is installed for bitbucket.org, the host git is given.
    let gitconfig = home.file("gitconfig");
    std::fs::write(&gitconfig, "[http]\n\tproxy = http://127.0.0.1:9\n").unwrap();
    let mut install = home.cmd(&["git-credential", "install", "--connector", "bitbucket"]);
    install.env("GIT_CONFIG_GLOBAL", &gitconfig);
    let done = install.output().unwrap();
    assert!(done.status.success(), "{}", stderr(&done));
    // Bitbucket's git host in the fixture; the URL git is given stays bitbucket.org.
    let config = std::fs::read_to_string(home.file("latch.toml")).unwrap();
    let config = config.replacen(
        "[providers.bitbucket]\n",
        &format!(
            "[providers.bitbucket]\ngit_url = \"{}/bitbucket\"\n",
            fixture.base
        ),
        1,
    );
    std::fs::write(home.file("latch.toml"), config).unwrap();

    let script = "git clone -q https://bitbucket.org/team/repo.git cloned && \
        printf 'protocol=https\\nhost=bitbucket.org\\n\\n' | git credential fill > filled && \
        curl -sS -o user.json -w '%{http_code}' https://api.bitbucket.org/2.0/user > user.status";
    let mut full = vec!["exec", "--intercept", "--connector", "bitbucket", "--"];
    full.extend_from_slice(&["sh", "-c", script]);
    let mut cmd = home.cmd(&full);
    cmd.current_dir(home.path())
        .env("GIT_CONFIG_GLOBAL", &gitconfig)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_TERMINAL_PROMPT", "0");
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}{}\naudit: {}",
        stdout(&out),
        stderr(&out),
        home.ok(&["audit"], "")
    );
    let readme = std::fs::read_to_string(home.file("cloned/README.md")).unwrap();
    assert!(readme.contains("cloned"), "{readme}");
    // The REST API by its own host, on the same exec.
    assert_eq!(
        std::fs::read_to_string(home.file("user.status")).unwrap(),
        "200",
        "{}",
        std::fs::read_to_string(home.file("user.json")).unwrap_or_default()
    );
    let filled = std::fs::read_to_string(home.file("filled")).unwrap();
    assert!(
        filled.contains("password=latch-intercepts-this"),
        "{filled}"
    );
    for token in fixture.issued() {
        assert!(!filled.contains(&token), "git was given a real token");
    }
    assert!(fixture.stats()["git_requests"].as_u64().unwrap() > 0);
}

/// A company network: Data Center's name resolves only behind the company proxy and its CA is
/// in a trust file the environment names. Under intercept the inherited HTTPS_PROXY becomes
/// Latch's own route (terminated requests and tunnels both go through it), the company CA is
/// in the child's bundle beside the exec's, and `--read-only` holds for the real host name.
#[test]
fn a_company_proxy_and_ca_carry_over_to_the_child() {
    let crate::datacenter::CompanyNetwork {
        _certs,
        ca,
        fixture,
        home,
        base,
    } = crate::datacenter::company_network();
    home.set_env(
        "HTTP_PROXY",
        Some(&format!("http://127.0.0.1:{}", fixture.connect_port)),
    );
    let port = fixture.tls_port.unwrap();
    let script = format!(
        "curl -sS -o myself.json -w '%{{http_code}}' -H 'Authorization: Bearer dummy' \
           {base}/rest/api/2/myself > myself.status 2>&1\n\
         curl -sS -o /dev/null -w '%{{http_code}}' -X POST {base}/rest/api/2/issue > post.status 2>&1\n\
         curl -sS -k -o /dev/null -w '%{{http_code}} %{{certs}}' \
           https://other.corp.test:{port}/dc/rest/api/2/serverInfo > other.out 2>&1\n\
         curl -sS -o /dev/null -w '%{{http_code}}' \
           http://plain.corp.test:{plain_port}/dc/rest/api/2/serverInfo > plain.status 2>&1\n\
         cp \"$SSL_CERT_FILE\" bundle.pem",
        plain_port = fixture.base.rsplit(':').next().unwrap()
    );
    let mut cmd = home.cmd(&[
        "exec",
        "--intercept",
        "--connector",
        "dc-pat",
        "--read-only",
        "--",
        "sh",
        "-c",
        &script,
    ]);
    cmd.current_dir(home.path());
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let read = |name: &str| std::fs::read_to_string(home.file(name)).unwrap_or_default();
    assert_eq!(read("myself.status"), "200", "{}", read("myself.json"));
    assert_eq!(read("post.status"), "403", "read-only holds");
    let other = read("other.out");
    assert!(other.starts_with("200 "), "{other}");
    assert!(
        other.contains("Latch Test Corp CA"),
        "the server's own certificate: {other}"
    );
    let hosts = fixture.stats()["connect_hosts"].clone();
    let hosts: Vec<&str> = hosts
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|h| h.as_str())
        .collect();
    assert!(
        hosts.contains(&"dc.corp.test"),
        "terminated upstream: {hosts:?}"
    );
    assert!(
        hosts.contains(&"other.corp.test"),
        "chained tunnel: {hosts:?}"
    );
    // Plain HTTP to another host goes through the company proxy too (HTTP_PROXY).
    assert_eq!(read("plain.status"), "200");
    let plain = fixture.stats()["proxied_plain"].to_string();
    assert!(plain.contains("plain.corp.test"), "{plain}");
    let bundle = read("bundle.pem");
    let company = std::fs::read_to_string(&ca).unwrap();
    assert!(
        bundle.contains(company.trim()),
        "the company CA is in the bundle"
    );
    assert!(
        bundle.matches("BEGIN CERTIFICATE").count() > 3,
        "with the OS roots"
    );
}

/// `latch exec` stopped with SIGTERM (a service manager, a closed terminal's SIGHUP) passes the
/// signal to the child, waits for it, and still removes the private directory.
#[test]
fn a_stopped_exec_stops_its_child_and_cleans_up() {
    use std::io::BufRead as _;
    let fixture = Fixture::start();
    let home = signed_in(&fixture);
    let script = "trap 'kill $s; echo term > got-term; exit 3' TERM; \
        echo \"$SSL_CERT_FILE\" > bundle-path; sleep 60 & s=$!; echo ready; wait $s";
    let mut cmd = home.cmd(&[
        "exec",
        "--intercept",
        "--connector",
        "jira",
        "--",
        "sh",
        "-c",
        script,
    ]);
    cmd.current_dir(home.path())
        .stdout(std::process::Stdio::piped());
    let mut exec = cmd.spawn().unwrap();
    let mut ready = String::new();
    std::io::BufReader::new(exec.stdout.take().unwrap())
        .read_line(&mut ready)
        .unwrap();
    assert_eq!(ready.trim(), "ready");
    let bundle = std::fs::read_to_string(home.file("bundle-path")).unwrap();
    let dir = std::path::Path::new(bundle.trim())
        .parent()
        .unwrap()
        .to_owned();
    assert!(dir.exists());
    let pid = exec.id().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let status = exec.wait().unwrap();
    assert_eq!(status.code(), Some(3), "the child's own exit code");
    assert_eq!(
        std::fs::read_to_string(home.file("got-term"))
            .unwrap()
            .trim(),
        "term"
    );
    assert!(!dir.exists(), "{} outlived the exec", dir.display());
}

//! Running the real `latch` binary in a scrubbed environment with its own temp home.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// A temp `LATCH_HOME` and a way to run `latch` in it.
pub(crate) struct Home {
    dir: tempfile::TempDir,
    /// Extra environment for every `latch` this home runs (a company proxy, a trust file);
    /// `None` removes an inherited variable (no D-Bus session).
    env: std::sync::Mutex<Vec<(String, Option<String>)>>,
}

/// No process outlives its test: a tray the desktop app started (in a process group of its
/// own, as it should be), or one that took over as a window closed, is stopped with its home.
impl Drop for Home {
    fn drop(&mut self) {
        let needle = format!("LATCH_HOME={}", self.path().display());
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return;
        };
        for entry in entries.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|p| p.parse::<u32>().ok())
            else {
                continue;
            };
            let environ = std::fs::read(entry.path().join("environ")).unwrap_or_default();
            if environ.split(|b| *b == 0).any(|v| v == needle.as_bytes()) {
                let _ = Command::new("kill").arg(pid.to_string()).status();
            }
        }
    }
}

impl Home {
    pub(crate) fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
            env: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// Sets (or, with `None`, forgets) a variable for every later `latch` of this home.
    pub(crate) fn set_env(&self, key: &str, value: Option<&str>) {
        let mut env = self.env.lock().unwrap();
        env.retain(|(k, _)| k != key);
        if let Some(value) = value {
            env.push((key.to_owned(), Some(value.to_owned())));
        }
    }

    /// Removes an inherited variable from every later `latch` of this home.
    pub(crate) fn unset_env(&self, key: &str) {
        let mut env = self.env.lock().unwrap();
        env.retain(|(k, _)| k != key);
        env.push((key.to_owned(), None));
    }

    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }

    pub(crate) fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `latch ARGS` with this home, the caller's D-Bus session, and no other LATCH_* variable.
    pub(crate) fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_latch"));
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("LATCH_") {
                cmd.env_remove(&key);
            }
        }
        cmd.env("LATCH_HOME", self.path()).args(args);
        for (key, value) in self.env.lock().unwrap().iter() {
            match value {
                Some(value) => cmd.env(key, value),
                None => cmd.env_remove(key),
            };
        }
        cmd
    }

    /// Runs `latch ARGS` with `stdin` piped in.
    pub(crate) fn run(&self, args: &[&str], stdin: &str) -> Output {
        run_with_stdin(self.cmd(args), stdin)
    }

    /// Runs and requires success; returns stdout.
    pub(crate) fn ok(&self, args: &[&str], stdin: &str) -> String {
        let out = self.run(args, stdin);
        assert!(
            out.status.success(),
            "latch {args:?} failed ({:?}):\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    pub(crate) fn json(&self, args: &[&str]) -> serde_json::Value {
        serde_json::from_str(&self.ok(args, "")).unwrap()
    }
}

pub(crate) fn run_with_stdin(mut cmd: Command, stdin: &str) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A command that refuses its arguments exits without reading stdin: not a test failure.
    let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    child.wait_with_output().unwrap()
}

/// Tests that store secrets need the real Secret Service started by scripts/with-keyring.sh.
pub(crate) fn require_secret_service() {
    assert!(
        std::env::var_os("LATCH_TEST_SECRET_SERVICE").is_some(),
        "this test needs the real Secret Service: run it through `make test`"
    );
}

/// `secret-tool lookup service latch username KEY`.
pub(crate) fn keychain_lookup(key: &str) -> Option<String> {
    let out = Command::new("secret-tool")
        .args(["lookup", "service", "latch", "username", key])
        .output()
        .unwrap();
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Replaces a Latch keychain item's secret the way a person would in the keychain's own UI:
/// same item (all its attributes), new secret, nothing written to Latch's database.
pub(crate) fn keychain_replace(key: &str, secret: &str) {
    let out = Command::new("secret-tool")
        .args(["search", "--all", "service", "latch", "username", key])
        .output()
        .unwrap();
    let found =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let attributes: Vec<String> = found
        .lines()
        .filter_map(|line| line.strip_prefix("attribute."))
        .filter_map(|line| line.split_once(" = "))
        .flat_map(|(name, value)| [name.to_owned(), value.to_owned()])
        .collect();
    assert!(!attributes.is_empty(), "no keychain item {key}: {found}");
    let mut store = Command::new("secret-tool")
        .args(["store", "--label", key])
        .args(&attributes)
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    store
        .stdin
        .take()
        .unwrap()
        .write_all(secret.as_bytes())
        .unwrap();
    assert!(store.wait().unwrap().success());
    assert_eq!(
        keychain_lookup(key).as_deref(),
        Some(secret),
        "replaced in place"
    );
}

/// A connector's entry in `latch status --json` (or doctor's report).
pub(crate) fn connector_in<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    report["connectors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no connector {name} in {report}"))
}

impl Home {
    /// `latch keys create NAME --connector C …`: the key.
    pub(crate) fn key_for(&self, name: &str, connectors: &[&str]) -> String {
        let mut args = vec!["keys", "create", name];
        for c in connectors {
            args.extend(["--connector", c]);
        }
        self.ok(&args, "").trim().to_owned()
    }
}

/// Runs a Python script (an unmodified client such as `requests`) that ends by printing
/// `python ok`; fails the test with its output otherwise.
pub(crate) fn python_ok(script: &str) {
    let out = Command::new("python3")
        .args(["-c", script])
        .output()
        .unwrap();
    assert!(
        stdout(&out).contains("python ok"),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
}

/// Python `requests`, unmodified, GETs each path below `base` with the local key as the Basic
/// password and expects 200 (and `check`, a Python expression over `r`, when given).
pub(crate) fn python_requests_ok(base: &str, key: &str, paths: &[&str], check: Option<&str>) {
    let paths = paths
        .iter()
        .map(|p| format!("'{p}'"))
        .collect::<Vec<_>>()
        .join(", ");
    let check = check
        .map(|c| format!("\n    assert {c}, r.text"))
        .unwrap_or_default();
    python_ok(&format!(
        "import requests\n\
         for path in [{paths}]:\n\
         \x20   r = requests.get('{base}' + path, auth=('me', '{key}'))\n\
         \x20   assert r.status_code == 200, (path, r.status_code, r.text){check}\n\
         print('python ok')"
    ));
}

/// Every file below `dir`, as lossy text (for secret scans).
pub(crate) fn all_files_text(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let bytes = std::fs::read(&path).unwrap();
                out.push((path, String::from_utf8_lossy(&bytes).into_owned()));
            }
        }
    }
    out
}

/// A free loopback port for a program the test starts next (a callback, a server). Picked below
/// the kernel's ephemeral range, so that no other socket — an outgoing connection, a `port 0`
/// listener of a parallel test — can be given it between the pick and the program's bind; each
/// pick is a different port.
pub(crate) fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|text| text.split_whitespace().next()?.parse::<u32>().ok())
        .unwrap_or(32768);
    let (low, span) = (10_000u32, ephemeral_low.saturating_sub(10_000));
    if span >= 1000 {
        // Another test binary running at the same time starts elsewhere in the range.
        let seed = std::process::id() % span;
        for _ in 0..span {
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let port = u16::try_from(low + (seed + n) % span).unwrap_or(0);
            if port != 0 && std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
                return port;
            }
        }
    }
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The fixture authorization server (oidc-provider + an Atlassian-like gateway), on loopback.
pub(crate) struct Fixture {
    child: std::process::Child,
    /// The fixture's own files (its git repositories), removed with it.
    _dir: tempfile::TempDir,
    pub(crate) base: String,
    pub(crate) redirect_uri: String,
    /// The HTTPS listener's port, when started with TLS.
    pub(crate) tls_port: Option<u16>,
    /// A company proxy (HTTP CONNECT) that resolves `*.corp.test` to this machine.
    pub(crate) connect_port: u16,
}

pub(crate) const CLIENT_ID: &str = "latch-test-client";
pub(crate) const CLIENT_SECRET: &str = "fixture-client-secret-0a9b8c7d";
pub(crate) const CLOUD_ID: &str = "11111111-2222-3333-4444-555555555555";
pub(crate) const BETA_CLOUD_ID: &str = "22222222-3333-4444-5555-666666666666";
/// The fixture's service-account OAuth credential (client credentials only, fixed scopes).
pub(crate) const SVC_CLIENT_ID: &str = "svc-client-fixture";
pub(crate) const SVC_CLIENT_SECRET: &str = "svc-secret-fixture-0c1d";
/// The fixture's API tokens (e-mail, token): scoped (gateway only), classic (site URL only),
/// and a service account's scoped token.
pub(crate) const EMAIL: &str = "fixture@example.test";
pub(crate) const SCOPED_TOKEN: &str = "scoped-api-token-fixture-31";
pub(crate) const CLASSIC_TOKEN: &str = "classic-api-token-fixture-42";
pub(crate) const SVC_EMAIL: &str = "svc-bot@serviceaccount.atlassian.com";
pub(crate) const SVC_TOKEN: &str = "svc-api-token-fixture-53";

/// Held by tests that run or rebuild `target/debug/latch-desktop` (the bundler patches it in
/// place): they must not overlap.
pub(crate) static DESKTOP_BINARY: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A program of the test virtualenv (`make deps` creates it).
pub(crate) fn venv(program: &str) -> PathBuf {
    let path = repo_path("tests/fixture/.venv/bin").join(program);
    assert!(
        path.exists(),
        "{} is missing: run `make deps` (it installs the Python clients)",
        path.display()
    );
    path
}

pub(crate) fn repo_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

impl Fixture {
    pub(crate) fn start() -> Self {
        Self::start_with_redirect(&format!("http://127.0.0.1:{}/callback", free_port()))
    }

    /// The fixture with a 3LO app whose registered callback is `redirect_uri`.
    pub(crate) fn start_with_redirect(redirect_uri: &str) -> Self {
        Self::spawn(redirect_uri, None)
    }

    /// The fixture with an HTTPS listener too, serving `cert` (and its `key`); its port is
    /// `tls_port`.
    pub(crate) fn start_with_tls(cert: &Path, key: &Path) -> Self {
        Self::spawn(
            &format!("http://127.0.0.1:{}/callback", free_port()),
            Some((cert, key)),
        )
    }

    fn spawn(redirect_uri: &str, tls: Option<(&Path, &Path)>) -> Self {
        let redirect_uri = redirect_uri.to_owned();
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = Command::new("node");
        if let Some((cert, key)) = tls {
            cmd.env("FIXTURE_TLS_CERT", cert)
                .env("FIXTURE_TLS_KEY", key);
        }
        let mut child = cmd
            .arg(repo_path("tests/fixture/server.js"))
            .env("FIXTURE_DIR", dir.path())
            .env("FIXTURE_REDIRECT_URIS", &redirect_uri)
            .env("FIXTURE_CLIENT_ID", CLIENT_ID)
            .env("FIXTURE_CLIENT_SECRET", CLIENT_SECRET)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("node runs the fixture (installed by `make deps`)");
        let mut line = String::new();
        let stdout = child.stdout.take().unwrap();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line).unwrap();
        let ready: serde_json::Value = serde_json::from_str(&line)
            .unwrap_or_else(|_| panic!("fixture did not start: {line:?} (run `make deps`)"));
        let port = ready["port"].as_u64().unwrap();
        Self {
            child,
            _dir: dir,
            tls_port: ready["tls_port"].as_u64().map(|p| p as u16),
            connect_port: ready["connect_port"].as_u64().unwrap() as u16,
            base: format!("http://127.0.0.1:{port}"),
            redirect_uri,
        }
    }

    fn curl(&self, args: &[&str]) -> String {
        let out = Command::new("curl")
            .args(["-sS", "--max-time", "20"])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "curl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    pub(crate) fn stats(&self) -> serde_json::Value {
        serde_json::from_str(&self.curl(&[&format!("{}/__stats", self.base)])).unwrap()
    }

    pub(crate) fn refresh_calls(&self) -> u64 {
        self.stats()["token_calls"]["refresh_token"]
            .as_u64()
            .unwrap()
    }

    pub(crate) fn control(&self, body: serde_json::Value) {
        self.curl(&[
            "-X",
            "POST",
            "-d",
            &body.to_string(),
            &format!("{}/__control", self.base),
        ]);
    }

    /// An admin sets up the incoming authentication of an application link on the Data Center
    /// instance (`consumer_key`, `public_key`, `two_legged`, `impersonation`, `execute_as`).
    pub(crate) fn link(&self, body: serde_json::Value) {
        self.curl(&[
            "-X",
            "POST",
            "-d",
            &body.to_string(),
            &format!("{}/__oauth1/links", self.base),
        ]);
    }

    /// The person revokes every OAuth 1.0a token on the instance.
    pub(crate) fn revoke_link_tokens(&self) {
        self.curl(&["-X", "POST", &format!("{}/__oauth1/revoke", self.base)]);
    }

    /// Every access token the fixture issued dies before its expiry.
    pub(crate) fn revoke_access(&self) {
        self.curl(&["-X", "POST", &format!("{}/__revoke_access", self.base)]);
    }

    pub(crate) fn revoke_all(&self) {
        self.curl(&["-X", "POST", &format!("{}/__revoke_all", self.base)]);
    }

    /// Every token the fixture issued (to check none leaked into files or output).
    pub(crate) fn issued(&self) -> Vec<String> {
        let v: serde_json::Value =
            serde_json::from_str(&self.curl(&[&format!("{}/__issued", self.base)])).unwrap();
        ["access", "refresh"]
            .iter()
            .flat_map(|k| v[*k].as_array().unwrap().clone())
            .map(|t| t.as_str().unwrap().to_owned())
            .collect()
    }

    /// Whether the authorization server considers the token active (any scopes).
    pub(crate) fn token_active(&self, token: &str) -> bool {
        let body = self.curl(&[
            "-X",
            "POST",
            "--data-binary",
            token,
            &format!("{}/__introspect", self.base),
        ]);
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["active"] == true
    }

    /// Whether the gateway accepts the token (a real request through the fixture gateway).
    pub(crate) fn token_works(&self, token: &str) -> bool {
        let url = format!("{}/ex/jira/{CLOUD_ID}/rest/api/3/myself", self.base);
        let out = Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-H"])
            .arg(format!("Authorization: Bearer {token}"))
            .arg(url)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout) == "200"
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Home {
    /// `latch provider add NAME` with the fixture's client, `redirect_uri`, authorize and token
    /// endpoints, plus `extra` arguments (more endpoint overrides).
    pub(crate) fn add_fixture_provider(
        &self,
        fixture: &Fixture,
        name: &str,
        redirect_uri: &str,
        extra: &[&str],
    ) {
        require_secret_service();
        let b = &fixture.base;
        let (authorize, token) = (format!("{b}/authorize"), format!("{b}/oauth/token"));
        let mut args = vec![
            "provider",
            "add",
            name,
            "--client-id",
            CLIENT_ID,
            "--redirect-uri",
            redirect_uri,
            "--authorize-url",
            &authorize,
            "--token-url",
            &token,
        ];
        args.extend_from_slice(extra);
        self.ok(&args, CLIENT_SECRET);
    }

    /// `latch provider add atlassian` pointed at the fixture, with `secret` as its client secret
    /// (a wrong one, say).
    pub(crate) fn add_fixture_provider_with_secret(&self, fixture: &Fixture, secret: &str) {
        require_secret_service();
        let b = &fixture.base;
        let (authorize, token, me, resources) = (
            format!("{b}/authorize"),
            format!("{b}/oauth/token"),
            format!("{b}/me"),
            format!("{b}/oauth/token/accessible-resources"),
        );
        self.ok(
            &[
                "provider",
                "add",
                "atlassian",
                "--client-id",
                CLIENT_ID,
                "--redirect-uri",
                &fixture.redirect_uri,
                "--authorize-url",
                &authorize,
                "--token-url",
                &token,
                "--me-url",
                &me,
                "--resources-url",
                &resources,
                "--api-base",
                b,
            ],
            secret,
        );
    }

    /// The README's service account: connector `jira-svc` on site `acme`, its secret stored;
    /// returns what `credential set` printed.
    pub(crate) fn add_jira_service_account(&self) -> String {
        self.ok(
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
        self.ok(&["credential", "set", "jira-svc"], SVC_CLIENT_SECRET)
    }

    /// The README's API-token connector `jira-tok` on site `acme` (its token not yet stored),
    /// with `extra` flags (`--token scoped`).
    pub(crate) fn add_jira_api_token_connector(&self, extra: &[&str]) {
        let mut args = vec![
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
        ];
        args.extend_from_slice(extra);
        self.ok(&args, "");
    }

    /// `latch provider add atlassian` without an OAuth app (no client id, no secret): only
    /// the fixture's endpoints, as a service-account or API-token user would have it.
    pub(crate) fn with_fixture_endpoints_only(fixture: &Fixture) -> Self {
        require_secret_service();
        let home = Self::new();
        let b = &fixture.base;
        home.ok(
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
        home
    }

    /// `latch provider add atlassian` pointed at the fixture (no connectors).
    pub(crate) fn with_fixture_atlassian(fixture: &Fixture) -> Self {
        let home = Self::new();
        let b = &fixture.base;
        let (resources, me, revoke, site_url) = (
            format!("{b}/oauth/token/accessible-resources"),
            format!("{b}/me"),
            format!("{b}/oauth/revoke"),
            format!("{b}/__site/{{site}}"),
        );
        home.add_fixture_provider(
            fixture,
            "atlassian",
            &fixture.redirect_uri,
            &[
                "--resources-url",
                &resources,
                "--me-url",
                &me,
                "--api-base",
                b,
                "--revoke-url",
                &revoke,
                "--site-url",
                &site_url,
            ],
        );
        home
    }

    /// `latch provider add atlassian` pointed at the fixture, plus jira and confluence.
    pub(crate) fn with_fixture_provider(fixture: &Fixture) -> Self {
        let home = Self::with_fixture_atlassian(fixture);
        home.ok(&["connector", "add", "jira"], "");
        home.ok(&["connector", "add", "confluence"], "");
        home
    }

    /// This home opened in the test process (for in-process concurrency and scheduler tests).
    pub(crate) fn open_in_process(&self) -> latch_core::app::App {
        latch_core::app::App::open(
            latch_core::config::home::Home::at(self.path()),
            std::sync::Arc::new(latch_keychain::Keychain::new()),
        )
        .unwrap()
    }

    /// `latch ARGS` with `$BROWSER` = headless Chromium driving the consent.
    pub(crate) fn browser_cmd(&self, args: &[&str]) -> Command {
        let mut cmd = self.cmd(args);
        cmd.env("BROWSER", repo_path("tests/fixture/browser.sh"));
        cmd
    }

    pub(crate) fn login(&self) -> Output {
        run_with_stdin(
            self.browser_cmd(&["login", "atlassian", "--timeout", "60"]),
            "",
        )
    }

    pub(crate) fn token(&self, connector: &str) -> Output {
        self.run(&["token", connector], "")
    }

    /// Makes the stored access token look expired, as time would.
    pub(crate) fn expire_access(&self) {
        let db = rusqlite::Connection::open(self.file("latch.db")).unwrap();
        db.execute(
            "UPDATE grants SET access_expires_at = '2000-01-01T00:00:00Z', access_issued_at = '1999-12-31T23:00:00Z'",
            [],
        )
        .unwrap();
    }

    /// Makes the stored access token `secs` old (still valid), as time would.
    pub(crate) fn age_access(&self, secs: i64) {
        let db = rusqlite::Connection::open(self.file("latch.db")).unwrap();
        db.execute(
            &format!(
                "UPDATE grants SET access_issued_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now', '-{secs} seconds')"
            ),
            [],
        )
        .unwrap();
    }

    pub(crate) fn grant_column(&self, column: &str) -> Option<String> {
        let db = rusqlite::Connection::open(self.file("latch.db")).unwrap();
        db.query_row(
            &format!("SELECT {column} FROM grants WHERE id = 'atlassian'"),
            [],
            |r| r.get::<_, Option<String>>(0),
        )
        .unwrap()
    }

    pub(crate) fn append_config(&self, text: &str) {
        let path = self.file("latch.toml");
        let mut current = std::fs::read_to_string(&path).unwrap_or_default();
        current.push_str(text);
        std::fs::write(path, current).unwrap();
    }
}

pub(crate) fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub(crate) fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `latch serve --listen 127.0.0.1:0` in the background, stopped (SIGTERM) on drop.
pub(crate) struct Serve {
    child: std::process::Child,
    pub(crate) addr: String,
}

impl Serve {
    pub(crate) fn start(home: &Home) -> Self {
        Self::start_with_stderr(home, Stdio::null())
    }

    /// `latch serve` with its stderr (its log) going to `stderr`.
    pub(crate) fn start_with_stderr(home: &Home, stderr: impl Into<Stdio>) -> Self {
        Self::start_cmd(home.cmd(&["serve", "--listen", "127.0.0.1:0"]), stderr)
    }

    /// `cmd` (a `latch serve` set up by the caller: another bus, say), once it listens.
    pub(crate) fn start_cmd(mut cmd: Command, stderr: impl Into<Stdio>) -> Self {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        let addr = line
            .trim()
            .rsplit("http://")
            .next()
            .unwrap_or_else(|| panic!("serve did not start: {line:?}"))
            .to_owned();
        assert!(addr.starts_with("127.0.0.1:"), "serve printed {line:?}");
        Self { child, addr }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stops it like Ctrl-C would and waits: the audit log is flushed on the way out.
    pub(crate) fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `curl ARGS`, returning (HTTP status, body).
pub(crate) fn curl(args: &[&str]) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-s", "--max-time", "60", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_owned())
}

pub(crate) fn error_code(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .map(|v| v["error"].as_str().unwrap_or_default().to_owned())
        .unwrap_or_default()
}

/// `curl ARGS` until it answers `want` (the proxy notices another process's database commits
/// within milliseconds, not instantly); bounded, and returns the last answer.
pub(crate) fn curl_until(want: u16, args: &[&str]) -> (u16, String) {
    curl_until_settled(args, std::time::Duration::from_secs(1), |status, _| {
        status == want
    })
}

/// `curl ARGS` until `settled(status, body)` or `within` has passed; returns the last answer.
pub(crate) fn curl_until_settled(
    args: &[&str],
    within: std::time::Duration,
    settled: impl Fn(u16, &str) -> bool,
) -> (u16, String) {
    let deadline = std::time::Instant::now() + within;
    loop {
        let (status, body) = curl(args);
        if settled(status, &body) || std::time::Instant::now() > deadline {
            return (status, body);
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
}

/// A Secret Service of one test's own (its own D-Bus session and gnome-keyring), for tests
/// that lock the keychain: locking the shared one would stop every other test. Unlocked at
/// start with [`PrivateKeyring::PASSWORD`].
pub(crate) struct PrivateKeyring {
    bus: std::process::Child,
    keyring_pid: Option<u32>,
    _dir: tempfile::TempDir,
    /// `DBUS_SESSION_BUS_ADDRESS` of its session.
    pub(crate) address: String,
}

impl PrivateKeyring {
    pub(crate) const PASSWORD: &'static str = "private-test-keyring";

    pub(crate) fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (data, runtime) = (dir.path().join("data"), dir.path().join("run"));
        std::fs::create_dir_all(&data).unwrap();
        std::fs::create_dir_all(&runtime).unwrap();
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&runtime, std::fs::Permissions::from_mode(0o700)).unwrap();
        let mut bus = Command::new("dbus-daemon")
            .args(["--session", "--nofork", "--print-address=1"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("dbus-daemon is installed by `make deps`");
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(bus.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        let address = line.trim().to_owned();
        assert!(!address.is_empty(), "dbus-daemon printed no address");
        let mut keyring = Command::new("gnome-keyring-daemon");
        keyring
            .args(["--unlock", "--components=secrets"])
            .env("DBUS_SESSION_BUS_ADDRESS", &address)
            .env("XDG_DATA_HOME", &data)
            .env("XDG_RUNTIME_DIR", &runtime)
            .stdout(Stdio::null());
        let out = run_with_stdin(keyring, Self::PASSWORD);
        assert!(out.status.success(), "{}", stderr(&out));
        let mut this = Self {
            bus,
            keyring_pid: None,
            _dir: dir,
            address,
        };
        // Ready when the daemon owns the Secret Service's name (bounded).
        for _ in 0..200 {
            if let Some(pid) = this.owner_pid() {
                this.keyring_pid = Some(pid);
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(25));
        }
        assert!(
            this.keyring_pid.is_some(),
            "gnome-keyring never took the bus name"
        );
        this
    }

    fn dbus_send(&self, args: &[&str]) -> String {
        let out = Command::new("dbus-send")
            .args(["--session", "--print-reply"])
            .args(args)
            .env("DBUS_SESSION_BUS_ADDRESS", &self.address)
            .output()
            .unwrap();
        format!("{}{}", stdout(&out), stderr(&out))
    }

    fn owner_pid(&self) -> Option<u32> {
        let reply = self.dbus_send(&[
            "--dest=org.freedesktop.DBus",
            "/",
            "org.freedesktop.DBus.GetConnectionUnixProcessID",
            "string:org.freedesktop.secrets",
        ]);
        reply
            .lines()
            .find_map(|l| l.trim().strip_prefix("uint32 "))
            .and_then(|p| p.trim().parse().ok())
    }

    /// Locks the default collection, as a screen lock or a timeout would.
    pub(crate) fn lock(&self) {
        let reply = self.dbus_send(&[
            "--dest=org.freedesktop.secrets",
            "/org/freedesktop/secrets",
            "org.freedesktop.Secret.Service.Lock",
            "array:objpath:/org/freedesktop/secrets/collection/login",
        ]);
        assert!(reply.contains("collection/login"), "{reply}");
    }

    /// `latch ARGS` in `home` against this keyring.
    pub(crate) fn cmd(&self, home: &Home, args: &[&str]) -> Command {
        let mut cmd = home.cmd(args);
        cmd.env("DBUS_SESSION_BUS_ADDRESS", &self.address);
        cmd
    }

    /// The same, with `stdin`, expecting success; its stdout.
    pub(crate) fn ok(&self, home: &Home, args: &[&str], stdin: &str) -> String {
        let out = run_with_stdin(self.cmd(home, args), stdin);
        assert!(
            out.status.success(),
            "latch {args:?} failed ({:?}):\n{}",
            out.status.code(),
            stderr(&out)
        );
        stdout(&out)
    }
}

impl Drop for PrivateKeyring {
    fn drop(&mut self) {
        if let Some(pid) = self.keyring_pid {
            let _ = Command::new("kill").arg(pid.to_string()).status();
        }
        let _ = self.bus.kill();
        let _ = self.bus.wait();
    }
}

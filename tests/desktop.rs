//! The real desktop binary under Xvfb, driven by WebDriver (tauri-driver + WebKitWebDriver),
//! with the real Secret Service and the fixture authorization server: a person adds Jira, signs
//! in through `$BROWSER` (headless Chromium), creates a local key in the window, and a tool
//! uses that key through the app's in-process proxy.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serde_json::json;

use crate::support::{
    curl, curl_until_settled, free_port, keychain_lookup, repo_path, require_secret_service,
    Fixture, Home, SVC_CLIENT_ID, SVC_CLIENT_SECRET,
};
use crate::webdriver::{Session, TauriDriver, Xvfb};

/// `target/debug/latch-desktop`, next to the `latch` binary under test (`make test` builds it).
fn desktop_binary() -> PathBuf {
    let latch = PathBuf::from(env!("CARGO_BIN_EXE_latch"));
    let path = latch.with_file_name("latch-desktop");
    assert!(
        path.exists(),
        "{} is missing: build it with `cargo build -p latch-desktop` (`make test` does)",
        path.display()
    );
    path
}

fn screenshots() -> PathBuf {
    repo_path("target/desktop-e2e")
}

/// `tauri-driver` for `home` on `xvfb`'s display, without the test's own `LATCH_*` settings;
/// the autostart plugin and GTK write below `$HOME`, so that is the temp home too.
fn driver_for(xvfb: &Xvfb, home: &Home) -> Command {
    let mut driver = Command::new("tauri-driver");
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("LATCH_") {
            driver.env_remove(&key);
        }
    }
    driver
        .env("DISPLAY", &xvfb.display)
        .env("LATCH_HOME", home.path())
        .env("HOME", home.path())
        .env("XDG_CONFIG_HOME", home.file("xdg-config"));
    driver
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
// The binary lock is held for the whole test on purpose: the package test must not re-patch
// the binary while this one drives it; no other task waits on it.
#[allow(clippy::await_holding_lock)]
async fn sign_in_and_proxy_from_the_desktop_window() {
    require_secret_service();
    let _desktop = crate::support::DESKTOP_BINARY
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let fixture = Fixture::start();
    let home = Home::with_fixture_atlassian(&fixture);
    let port = free_port();
    home.append_config(&format!("\n[proxy]\nlisten = \"127.0.0.1:{port}\"\n"));

    let xvfb = Xvfb::start();
    let mut driver = driver_for(&xvfb, &home);
    driver
        .env("BROWSER", repo_path("tests/fixture/browser.sh"))
        .env("FIXTURE_BROWSER_HOLD", home.file("browser-closed"));
    let driver = TauriDriver::start(driver);
    let window = Session::open(&driver, &desktop_binary()).await;
    let shots = screenshots();

    // A provider but no connector: the window says what to do next.
    window
        .wait_for(
            "[data-testid=overall][data-tone=idle]",
            Duration::from_secs(30),
        )
        .await;
    let empty = window.text(".empty").await;
    assert!(empty.contains("No connectors yet"), "{empty}");
    // WebKitGTK resolves the theme's light-dark() colours (light: Xvfb has no dark preference).
    assert_eq!(
        window
            .script(
                "return getComputedStyle(document.body).backgroundColor",
                json!([])
            )
            .await,
        json!("rgb(246, 247, 249)")
    );

    // Add Jira through the dialog; the scope diff comes from the core before anything is saved.
    window.click(".empty button.primary").await;
    window
        .wait_for("[data-diff=added]", Duration::from_secs(10))
        .await;
    let diff = window.text("section[aria-label='Scope changes']").await;
    assert!(diff.contains("+ read:jira-work"), "{diff}");
    window.screenshot(&shots.join("add-connector.png")).await;
    window
        .click("form[aria-label='Add connector'] button[type=submit]")
        .await;
    window
        .wait_for(
            "[data-connector=jira][data-state=not_signed_in]",
            Duration::from_secs(10),
        )
        .await;
    let config = std::fs::read_to_string(home.file("latch.toml")).unwrap();
    assert!(config.contains("[connectors.jira]"), "{config}");

    // A sign-in whose browser tab was closed: the person cancels it and nothing changes.
    std::fs::write(home.file("browser-closed"), "").unwrap();
    window
        .click("[data-connector=jira] [data-action=sign_in]")
        .await;
    window
        .wait_for("[data-action=cancel_sign_in]", Duration::from_secs(30))
        .await;
    window.click("[data-action=cancel_sign_in]").await;
    window
        .wait_for_text("[role=status]", "cancelled", Duration::from_secs(10))
        .await;
    window
        .wait_for(
            "[data-connector=jira][data-state=not_signed_in]",
            Duration::from_secs(10),
        )
        .await;
    let status = home.json(&["status", "--json"]);
    assert_eq!(
        status["connectors"][0]["state"], "not_signed_in",
        "{status}"
    );
    std::fs::remove_file(home.file("browser-closed")).unwrap();

    // Sign in: the app opens $BROWSER (headless Chromium), which completes the consent. The
    // cancelled attempt released its callback listener, so this one can bind again.
    window
        .click("[data-connector=jira] [data-action=sign_in]")
        .await;
    window
        .wait_for(
            "[data-connector=jira][data-state=ok]",
            Duration::from_secs(90),
        )
        .await;
    let card = window.text("[data-connector=jira]").await;
    assert!(card.contains("Access token expires in"), "{card}");
    assert!(card.contains("signed in just now"), "{card}");
    assert_eq!(
        window
            .script(
                "return document.querySelectorAll('[data-connector=jira] [data-kind=granted]').length",
                json!([])
            )
            .await,
        json!(5)
    );
    window.screenshot(&shots.join("connectors.png")).await;
    let status = home.json(&["status", "--json"]);
    assert_eq!(status["connectors"][0]["state"], "ok", "{status}");

    // Create a local key in the window; it is shown once.
    window.click("#tab-keys").await;
    window
        .type_into(
            "form[aria-label='Create key'] input[name=key_name]",
            "desk-tool",
        )
        .await;
    window
        .click("form[aria-label='Create key'] input[name=key_connector][value=jira]")
        .await;
    window
        .click("form[aria-label='Create key'] button[type=submit]")
        .await;
    let key = window.text("[data-testid=new-key]").await;
    assert!(key.len() > 20, "key shown: {key:?}");
    window.screenshot(&shots.join("key-created.png")).await;
    // Latch stores only the key's hash.
    let db = std::fs::read(home.file("latch.db")).unwrap();
    assert!(
        !String::from_utf8_lossy(&db).contains(&key),
        "the key itself is in SQLite"
    );

    // A tool calls the app's in-process proxy with that key; Latch injects the upstream token.
    let url = format!("http://127.0.0.1:{port}/jira/rest/api/3/myself");
    let (status, body) = curl(&["-H", &format!("Authorization: Bearer {key}"), &url]);
    assert_eq!(status, 200, "{body}");
    let (status, _) = curl(&["-H", "Authorization: Bearer not-a-key", &url]);
    assert_eq!(status, 401);

    // Once dismissed, the key is gone from the window.
    window.click("[data-testid=key-done]").await;
    assert!(window.find("[data-testid=new-key]").await.is_none());

    // The request shows up in Activity.
    window.click("#tab-activity").await;
    window
        .wait_for("[data-audit-id]", Duration::from_secs(15))
        .await;
    let log = window.text("table[aria-label='Audit log']").await;
    assert!(log.contains("/jira/rest/api/3/myself"), "{log}");
    window.screenshot(&shots.join("activity.png")).await;

    // A service account, added in the window with its secret: no CLI, no sign-in.
    window.click("#tab-connectors").await;
    window.click("[data-action=add_connector]").await;
    window
        .wait_for("form[aria-label='Add connector']", Duration::from_secs(10))
        .await;
    window
        .script(
            "const f = document.querySelector(\"form[aria-label='Add connector']\"); \
             const auth = f.querySelector('select[name=auth]'); auth.value = 'service'; \
             auth.dispatchEvent(new Event('change', {bubbles: true}));",
            json!([]),
        )
        .await;
    window
        .wait_for(
            "form[aria-label='Add connector'] input[name=client_id]",
            Duration::from_secs(10),
        )
        .await;
    let form = "form[aria-label='Add connector']";
    window
        .type_into(&format!("{form} input[name=name]"), "jira-svc")
        .await;
    window
        .type_into(&format!("{form} input[name=site]"), "acme")
        .await;
    window
        .type_into(&format!("{form} input[name=client_id]"), SVC_CLIENT_ID)
        .await;
    window
        .type_into(&format!("{form} input[name=secret]"), SVC_CLIENT_SECRET)
        .await;
    window
        .screenshot(&shots.join("add-service-account.png"))
        .await;
    window.click(&format!("{form} button[type=submit]")).await;
    window
        .wait_for(
            "[data-connector=jira-svc][data-state=ok]",
            Duration::from_secs(30),
        )
        .await;
    let home_id = home.json(&["status", "--json"])["home"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        keychain_lookup(&format!("{home_id}/connector/jira-svc/credential")).as_deref(),
        Some(SVC_CLIENT_SECRET),
        "the secret went to the OS keychain"
    );
    let config = std::fs::read_to_string(home.file("latch.toml")).unwrap();
    assert!(!config.contains(SVC_CLIENT_SECRET), "{config}");
    // The app's proxy serves it once it has picked up the new connector.
    let svc_key = home.ok(
        &["keys", "create", "svc-tool", "--connector", "jira-svc"],
        "",
    );
    let (status, body) = curl_until_settled(
        &[
            "-H",
            &format!("Authorization: Bearer {}", svc_key.trim()),
            &format!("http://127.0.0.1:{port}/jira-svc/rest/api/3/myself"),
        ],
        Duration::from_secs(20),
        |status, _| status == 200,
    );
    assert_eq!(status, 200, "{body}");

    // A Jira Data Center instance, added in the window: the preset asks for the base URL; no
    // OAuth app is needed for a personal access token.
    window
        .script(
            "[...document.querySelectorAll('button')].find(b => b.textContent.trim() === 'Add provider').click()",
            json!([]),
        )
        .await;
    let provider_form = "form[aria-label='Add provider']";
    window
        .wait_for(provider_form, Duration::from_secs(10))
        .await;
    window
        .script(
            "const f = document.querySelector(\"form[aria-label='Add provider']\"); \
             const p = f.querySelector('select[name=preset]'); p.value = 'jira-dc'; \
             p.dispatchEvent(new Event('change', {bubbles: true})); \
             f.querySelector('details').open = true;",
            json!([]),
        )
        .await;
    window
        .wait_for(
            &format!("{provider_form} input[name=base_url]"),
            Duration::from_secs(10),
        )
        .await;
    window
        .type_into(
            &format!("{provider_form} input[name=base_url]"),
            &format!("{}/dc", fixture.base),
        )
        .await;
    window
        .type_into(&format!("{provider_form} input[name=name]"), "corp-jira")
        .await;
    window.screenshot(&shots.join("add-data-center.png")).await;
    window
        .click(&format!("{provider_form} button[type=submit]"))
        .await;
    window
        .wait_for("[data-provider=corp-jira]", Duration::from_secs(10))
        .await;
    window.click("[data-action=add_connector]").await;
    window.wait_for(form, Duration::from_secs(10)).await;
    window
        .script(
            "const f = document.querySelector(\"form[aria-label='Add connector']\"); \
             const t = f.querySelector('select[name=type]'); t.value = 'jira-dc'; \
             t.dispatchEvent(new Event('change', {bubbles: true}));",
            json!([]),
        )
        .await;
    window
        .script(
            "const f = document.querySelector(\"form[aria-label='Add connector']\"); \
             const a = f.querySelector('select[name=auth]'); a.value = 'pat'; \
             a.dispatchEvent(new Event('change', {bubbles: true}));",
            json!([]),
        )
        .await;
    window
        .wait_for(
            &format!("{form} input[name=secret]"),
            Duration::from_secs(10),
        )
        .await;
    window
        .type_into(&format!("{form} input[name=name]"), "dc-pat")
        .await;
    window
        .type_into(&format!("{form} input[name=secret]"), "dc-pat-fixture-61")
        .await;
    window.click(&format!("{form} button[type=submit]")).await;
    window
        .wait_for(
            "[data-connector=dc-pat][data-state=ok]",
            Duration::from_secs(30),
        )
        .await;
    let config = std::fs::read_to_string(home.file("latch.toml")).unwrap();
    assert!(config.contains("preset = \"jira-dc\""), "{config}");
    assert!(config.contains("provider = \"corp-jira\""), "{config}");

    // An older instance whose application link uses OAuth 1.0a: the window makes the key pair
    // and shows the public key to paste; a 2-legged connector then signs with it.
    window
        .script(
            "[...document.querySelectorAll('button')].find(b => b.textContent.trim() === 'Add provider').click()",
            json!([]),
        )
        .await;
    window
        .wait_for(provider_form, Duration::from_secs(10))
        .await;
    window
        .script(
            "const f = document.querySelector(\"form[aria-label='Add provider']\"); \
             const p = f.querySelector('select[name=preset]'); p.value = 'jira-dc'; \
             p.dispatchEvent(new Event('change', {bubbles: true})); \
             f.querySelector('details').open = true;",
            json!([]),
        )
        .await;
    window
        .wait_for(
            &format!("{provider_form} select[name=link_type]"),
            Duration::from_secs(10),
        )
        .await;
    window
        .script(
            "const f = document.querySelector(\"form[aria-label='Add provider']\"); \
             const t = f.querySelector('select[name=link_type]'); t.value = 'oauth1'; \
             t.dispatchEvent(new Event('change', {bubbles: true}));",
            json!([]),
        )
        .await;
    window
        .wait_for(
            &format!("{provider_form} input[name=consumer_key]"),
            Duration::from_secs(10),
        )
        .await;
    window
        .type_into(
            &format!("{provider_form} input[name=base_url]"),
            &format!("{}/dc", fixture.base),
        )
        .await;
    window
        .type_into(&format!("{provider_form} input[name=name]"), "old-jira")
        .await;
    window
        .click(&format!("{provider_form} button[type=submit]"))
        .await;
    window
        .wait_for("[data-testid=public-key]", Duration::from_secs(30))
        .await;
    window.screenshot(&shots.join("oauth1-link.png")).await;
    let shown = window.text("[data-testid=public-key]").await;
    let printed = home.ok(&["provider", "public-key", "old-jira"], "");
    assert_eq!(
        shown.trim(),
        printed.trim(),
        "the window shows the key in the keychain"
    );
    fixture.link(json!({
        "consumer_key": "latch",
        "public_key": printed,
        "two_legged": true,
        "impersonation": false,
        "execute_as": "svc-bot",
    }));
    window
        .script(
            "[...document.querySelectorAll('button')].find(b => b.textContent.trim() === 'Done').click()",
            json!([]),
        )
        .await;
    window.click("[data-action=add_connector]").await;
    window.wait_for(form, Duration::from_secs(10)).await;
    window
        .script(
            "const f = document.querySelector(\"form[aria-label='Add connector']\"); \
             const t = f.querySelector('select[name=type]'); t.value = 'jira-dc'; \
             t.dispatchEvent(new Event('change', {bubbles: true}));",
            json!([]),
        )
        .await;
    window
        .script(
            "const f = document.querySelector(\"form[aria-label='Add connector']\"); \
             const a = f.querySelector('select[name=auth]'); a.value = 'oauth1-2lo'; \
             a.dispatchEvent(new Event('change', {bubbles: true}));",
            json!([]),
        )
        .await;
    // Two Jira Data Center instances now: the form asks which.
    window
        .wait_for(
            &format!("{form} select[name=provider]"),
            Duration::from_secs(10),
        )
        .await;
    window
        .script(
            "const f = document.querySelector(\"form[aria-label='Add connector']\"); \
             const p = f.querySelector('select[name=provider]'); p.value = 'old-jira'; \
             p.dispatchEvent(new Event('change', {bubbles: true}));",
            json!([]),
        )
        .await;
    window
        .type_into(&format!("{form} input[name=name]"), "old-jira-2lo")
        .await;
    window.click(&format!("{form} button[type=submit]")).await;
    window
        .wait_for(
            "[data-connector=old-jira-2lo][data-state=ok]",
            Duration::from_secs(30),
        )
        .await;
    let card = window.text("[data-connector=old-jira-2lo]").await;
    assert!(card.contains("Application link, 2-legged"), "{card}");
    let config = std::fs::read_to_string(home.file("latch.toml")).unwrap();
    assert!(config.contains("oauth = \"1.0a\""), "{config}");
    assert!(config.contains("provider = \"old-jira\""), "{config}");

    // Health runs the doctor over the same home.
    window.click("#tab-health").await;
    // The doctor checks every credential over the network: slow on a loaded machine (a CI run
    // next to other builds once took over 20 s).
    window
        .wait_for(
            "table[aria-label='Connector health']",
            Duration::from_secs(90),
        )
        .await;
    window.screenshot(&shots.join("health.png")).await;

    window.close().await;
    drop(driver);
    drop(xvfb);
}

/// What the window says is true (issue 21): beside a running `latch serve` it says who serves
/// (and takes over when that stops), a locked keychain is a locked keychain on the card, and a
/// credential ending soon is amber before it breaks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::await_holding_lock)]
async fn the_window_says_who_serves_what_is_locked_and_what_ends_soon() {
    use crate::support::{PrivateKeyring, Serve, EMAIL, SCOPED_TOKEN};
    let _desktop = crate::support::DESKTOP_BINARY
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let fixture = Fixture::start();
    // Its own Secret Service: this test locks it.
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
    let soon = (time::OffsetDateTime::now_utc() + time::Duration::days(5)).date();
    keyring.ok(
        &home,
        &[
            "credential",
            "set",
            "jira-tok",
            "--expires",
            &soon.to_string(),
        ],
        SCOPED_TOKEN,
    );
    let port = free_port();
    home.append_config(&format!("\n[proxy]\nlisten = \"127.0.0.1:{port}\"\n"));
    let serve = Serve::start_cmd(keyring.cmd(&home, &["serve"]), std::process::Stdio::null());

    let xvfb = Xvfb::start();
    let mut driver = driver_for(&xvfb, &home);
    driver.env("DBUS_SESSION_BUS_ADDRESS", &keyring.address);
    let driver = TauriDriver::start(driver);
    let window = Session::open(&driver, &desktop_binary()).await;
    let shots = screenshots();

    // Beside `latch serve`: who serves, and no "address already in use".
    let said = format!("latch serve, pid {}", serve.pid());
    window
        .wait_for_text("[data-testid=serving]", &said, Duration::from_secs(30))
        .await;
    // Ending in five days: amber, with what to do, while the state is still ok.
    window
        .wait_for(
            "[data-connector=jira-tok][data-state=ok] [data-attention=expiring]",
            Duration::from_secs(30),
        )
        .await;
    let card = window.text("[data-connector=jira-tok]").await;
    assert!(card.contains("latch credential set jira-tok"), "{card}");
    window.screenshot(&shots.join("expiring.png")).await;
    window.click("#tab-settings").await;
    window
        .wait_for("[data-testid=served-elsewhere]", Duration::from_secs(10))
        .await;
    let settings = window.text("[data-testid=served-elsewhere]").await;
    assert!(settings.contains("latch serve"), "{settings}");
    window.click("#tab-connectors").await;

    // `latch serve` stops: the app takes the home over and serves on the same address.
    serve.stop();
    window
        .wait_for_text(
            "[data-testid=serving]",
            "the desktop app",
            Duration::from_secs(30),
        )
        .await;
    let status: serde_json::Value =
        serde_json::from_str(&keyring.ok(&home, &["status", "--json"], "")).unwrap();
    assert_eq!(
        status["home"]["serving"]["by"], "the desktop app",
        "{status}"
    );
    assert_eq!(
        status["home"]["serving"]["addr"],
        format!("127.0.0.1:{port}"),
        "{status}"
    );

    // The keychain locks (a screen lock, a timeout): the card says so, then recovers.
    keyring.lock();
    window
        .wait_for(
            "[data-connector=jira-tok][data-state=keychain_locked]",
            Duration::from_secs(30),
        )
        .await;
    let card = window.text("[data-connector=jira-tok]").await;
    assert!(
        card.contains("Keychain locked") && card.contains("latch keychain unlock"),
        "{card}"
    );
    window
        .wait_for(
            "[data-testid=overall][data-tone=error]",
            Duration::from_secs(10),
        )
        .await;
    window.screenshot(&shots.join("keychain-locked.png")).await;
    keyring.ok(&home, &["keychain", "unlock"], PrivateKeyring::PASSWORD);
    window
        .wait_for(
            "[data-connector=jira-tok][data-state=ok]",
            Duration::from_secs(30),
        )
        .await;

    window.close().await;
    drop(driver);
    drop(xvfb);
}

/// The names of a process's descendants (`comm`), the process itself included.
fn process_tree(root: u32) -> Vec<(u32, String)> {
    let out = Command::new("ps")
        .args(["-e", "-o", "pid=,ppid=,comm="])
        .output()
        .unwrap();
    let rows: Vec<(u32, u32, String)> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let mut parts = l.split_whitespace();
            Some((
                parts.next()?.parse().ok()?,
                parts.next()?.parse().ok()?,
                parts.next()?.to_owned(),
            ))
        })
        .collect();
    let mut tree = vec![root];
    let mut i = 0;
    while i < tree.len() {
        let parent = tree[i];
        tree.extend(rows.iter().filter(|r| r.1 == parent).map(|r| r.0));
        i += 1;
    }
    rows.into_iter()
        .filter(|r| tree.contains(&r.0))
        .map(|r| (r.0, r.2))
        .collect()
}

/// Waits (bounded) until `done` holds.
fn eventually(what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + within;
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "{what} did not happen within {within:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// In the tray the app holds no webview (nor WebKit process): it serves the proxy and keeps
/// grants fresh; asking for the window (a second launch, the tray's "Open Latch") builds it.
#[test]
fn the_tray_serves_without_a_webview_and_the_window_comes_back() {
    require_secret_service();
    let _desktop = crate::support::DESKTOP_BINARY
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let fixture = Fixture::start();
    let home = Home::with_fixture_provider(&fixture);
    let port = free_port();
    home.append_config(&format!("\n[proxy]\nlisten = \"127.0.0.1:{port}\"\n"));
    let xvfb = Xvfb::start();
    let launch = |args: &[&str]| {
        let mut cmd = Command::new(desktop_binary());
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("LATCH_") {
                cmd.env_remove(&key);
            }
        }
        cmd.args(args)
            .env("DISPLAY", &xvfb.display)
            .env("LATCH_HOME", home.path())
            .env("HOME", home.path())
            .env("XDG_CONFIG_HOME", home.file("xdg-config"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut tray = launch(&["--tray"]);
    let pid = tray.id();
    // It serves: the status says so, and the proxy answers.
    eventually("the app serving the home", Duration::from_secs(30), || {
        home.json(&["status", "--json"])["home"]["serving"]["pid"] == pid
    });
    let (status, body) = curl(&[&format!("http://127.0.0.1:{port}/jira/rest/api/3/myself")]);
    assert_eq!(status, 401, "the proxy answers (no key): {body}");
    let webkit = || {
        process_tree(pid)
            .iter()
            .filter(|(_, name)| name.starts_with("WebKit"))
            .count()
    };
    assert_eq!(
        webkit(),
        0,
        "no webview in the tray: {:?}",
        process_tree(pid)
    );
    // A second launch asks the running app for its window: it is built again.
    let mut second = launch(&[]);
    let _ = second.wait();
    eventually(
        "the window's WebKit process",
        Duration::from_secs(30),
        || webkit() > 0,
    );
    let _ = tray.kill();
    let _ = tray.wait();
    drop(xvfb);
}

/// What a person reads on the cards, the Providers table and the dialogs is what is true of
/// each credential kind, and Activity draws the audit's minutes: a service account, a scoped
/// API token ending soon and a Data Center PAT, with no OAuth app anywhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::await_holding_lock)]
async fn cards_dialogs_and_activity_say_what_each_credential_is() {
    use crate::support::{EMAIL, SCOPED_TOKEN};
    require_secret_service();
    let _desktop = crate::support::DESKTOP_BINARY
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let fixture = Fixture::start();
    let home = Home::with_fixture_endpoints_only(&fixture);
    let svc = [
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
    ];
    home.ok(&svc, "");
    home.ok(&["credential", "set", "jira-svc"], SVC_CLIENT_SECRET);
    let token = [
        "connector",
        "add",
        "jira",
        "--type",
        "jira",
        "--auth",
        "api-token",
        "--email",
        EMAIL,
        "--site",
        "acme",
    ];
    home.ok(&token, "");
    let soon = (time::OffsetDateTime::now_utc() + time::Duration::days(5)).date();
    home.ok(
        &["credential", "set", "jira", "--expires", &soon.to_string()],
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
    home.ok(
        &[
            "connector",
            "add",
            "dc-pat",
            "--type",
            "jira-dc",
            "--auth",
            "pat",
        ],
        "",
    );
    home.ok(&["credential", "set", "dc-pat"], crate::datacenter::DC_PAT);
    let key = home.key_for("chart-tool", &["jira"]);
    let port = free_port();
    home.append_config(&format!("\n[proxy]\nlisten = \"127.0.0.1:{port}\"\n"));

    let xvfb = Xvfb::start();
    let driver = TauriDriver::start(driver_for(&xvfb, &home));
    let window = Session::open(&driver, &desktop_binary()).await;
    let shots = screenshots();
    for name in ["jira-svc", "jira", "dc-pat"] {
        window
            .wait_for(
                &format!("[data-connector={name}][data-state=ok]"),
                Duration::from_secs(30),
            )
            .await;
    }
    let count = |css: &str| {
        let css = css.to_owned();
        let window = &window;
        async move {
            window
                .script(
                    "return document.querySelectorAll(arguments[0]).length",
                    json!([css]),
                )
                .await
        }
    };

    // 1. Each card shows what its credential carries, not the OAuth app's scopes.
    let chips = window
        .text("[data-connector=jira-svc] [data-carries=scopes]")
        .await;
    assert!(
        chips.contains("read:jira-work") && chips.contains("read:confluence-user"),
        "the service account's own scopes: {chips}"
    );
    assert!(!chips.contains("offline_access"), "{chips}");
    let carries = window
        .text("[data-connector=jira] [data-carries=permissions]")
        .await;
    assert!(
        carries.contains("chosen when the token was created"),
        "{carries}"
    );
    let carries = window
        .text("[data-connector=dc-pat] [data-carries=permissions]")
        .await;
    assert!(carries.contains("user's permissions"), "{carries}");
    let pat = window.text("[data-connector=dc-pat]").await;
    assert!(!pat.contains("READ WRITE"), "{pat}");

    // 2. A Ready card's main action is to use it, not to set its credential again.
    for name in ["jira-svc", "jira", "dc-pat"] {
        assert_eq!(
            count(&format!(
                "[data-connector={name}] button.primary[data-action=copy_url]"
            ))
            .await,
            json!(1),
            "{name}"
        );
    }

    // 3. A Data Center card names its instance; a PAT-only provider needs no sign-in or callback.
    assert!(pat.contains(&dc_base) && !pat.contains("no site"), "{pat}");
    let row = window.text("tr[data-provider=corp-jira]").await;
    assert!(
        row.contains("no sign-in needed") && !row.contains("not signed in"),
        "{row}"
    );
    assert!(!row.contains("/callback"), "{row}");

    // 4. Commands in findings are code, without backticks; the fix is its own line.
    let attention = window
        .text("[data-connector=jira] [data-testid=attention]")
        .await;
    assert!(!attention.contains('`'), "{attention}");
    assert_eq!(
        window
            .script(
                "return document.querySelector('[data-connector=jira] [data-testid=attention] code')?.textContent",
                json!([])
            )
            .await,
        json!("latch credential set jira")
    );
    window.screenshot(&shots.join("credential-kinds.png")).await;
    // Add connector opens on a free name, without the last attempt's error.
    window.click("[data-action=add_connector]").await;
    let form = "form[aria-label='Add connector']";
    window
        .wait_for(
            &format!("{form} input[name=name][placeholder=jira-2]"),
            Duration::from_secs(10),
        )
        .await;
    window
        .type_into(&format!("{form} input[name=name]"), "jira")
        .await;
    window
        .wait_for_text(
            &format!("{form} .tone-error"),
            "already exists",
            Duration::from_secs(10),
        )
        .await;
    window
        .click(&format!("{form} button[data-action=cancel]"))
        .await;
    window.click("[data-action=add_connector]").await;
    window
        .wait_for(
            &format!("{form} section[aria-label='Scope changes'] p"),
            Duration::from_secs(10),
        )
        .await;
    assert_eq!(count(&format!("{form} .tone-error")).await, json!(0));
    assert_eq!(
        window
            .script(
                "return document.querySelector(arguments[0]).value",
                json!([format!("{form} input[name=name]")])
            )
            .await,
        json!("")
    );
    window
        .click(&format!("{form} button[data-action=cancel]"))
        .await;
    // Add provider lists only products that have scopes to add.
    window.click("[data-action=add_provider]").await;
    let steps = window.text("form[aria-label='Add provider']").await;
    assert!(steps.contains("Jira:"), "{steps}");
    assert!(!steps.contains("JSM Operations"), "{steps}");
    window
        .click("form[aria-label='Add provider'] button[data-action=cancel]")
        .await;

    // 5. Activity draws the last minutes by result, from the audit.
    let url = |path: &str| format!("http://127.0.0.1:{port}{path}");
    let bearer = format!("Authorization: Bearer {key}");
    window
        .wait_for_text(
            "[data-testid=serving]",
            "the desktop app",
            Duration::from_secs(30),
        )
        .await;
    for _ in 0..3 {
        let (status, body) = curl(&["-H", &bearer, &url("/jira/rest/api/3/myself")]);
        assert_eq!(status, 200, "{body}");
    }
    let (status, _) = curl(&["-H", &bearer, &url("/jira-svc/rest/api/3/myself")]);
    assert_eq!(status, 403, "the key is not for jira-svc");
    let (status, _) = curl(&["-H", &bearer, &url("/jira/__status/503")]);
    assert_eq!(status, 503);
    window.click("#tab-activity").await;
    let chart = "[data-testid=activity-chart]";
    window
        .wait_for_text(
            &format!("{chart} [data-total=failed]"),
            "1",
            Duration::from_secs(15),
        )
        .await;
    let totals = window
        .script(
            "return ['allowed', 'refused', 'failed'].map((k) => document.querySelector(`${arguments[0]} [data-total=${k}]`).textContent)",
            json!([chart]),
        )
        .await;
    assert_eq!(totals, json!(["3", "1", "1"]));
    assert!(
        count(&format!("{chart} rect.allowed[height]")).await != json!(0),
        "bars drawn"
    );
    window.screenshot(&shots.join("activity.png")).await;

    window.close().await;
    drop(driver);
    drop(xvfb);
}

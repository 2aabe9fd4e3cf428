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

    // The window was a window only: the tray it started serves the home. Closing the window
    // (Ctrl+W, the close button's path) ends its process and WebKit processes; the tray keeps
    // serving.
    let serving = home.json(&["status", "--json"])["home"]["serving"].clone();
    assert_eq!(serving["by"], "the Latch tray", "{serving}");
    let window_process = processes_of(&home)
        .into_iter()
        .find(|(_, name)| name == "latch-desktop")
        .expect("the window's process");
    window.press_ctrl('w').await;
    eventually(
        "the window's processes to end",
        Duration::from_secs(30),
        || {
            processes_of(&home)
                .iter()
                // The driver carries the home in its environment too; it is not the window's.
                .all(|(pid, name)| {
                    *pid != window_process.0
                        && (name == "WebKitWebDriver" || !name.starts_with("WebKit"))
                })
        },
    );
    let (status, body) = curl(&[
        "-H",
        &format!("Authorization: Bearer {}", svc_key.trim()),
        &format!("http://127.0.0.1:{port}/jira-svc/rest/api/3/myself"),
    ]);
    assert_eq!(status, 200, "the tray still serves: {body}");
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

/// The processes started for `home` (their environment names it), with their names.
fn processes_of(home: &Home) -> Vec<(u32, String)> {
    let needle = format!("LATCH_HOME={}", home.path().display());
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let environ = std::fs::read(entry.path().join("environ")).ok()?;
            environ
                .split(|b| *b == 0)
                .any(|v| v == needle.as_bytes())
                .then_some(())?;
            let name = std::fs::read_to_string(entry.path().join("comm")).ok()?;
            Some((pid, name.trim().to_owned()))
        })
        .collect()
}

/// `dbus-send` on the session bus; its printed reply.
fn dbus_send(args: &[&str]) -> String {
    let out = Command::new("dbus-send")
        .args(["--session", "--print-reply"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "dbus-send {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A StatusNotifierItem's menu as a tray host reads it (com.canonical.dbusmenu): each item's
/// label with its id.
fn tray_menu(item: &str) -> Vec<(i32, String)> {
    let layout = dbus_send(&[
        &format!("--dest={item}"),
        "/MenuBar",
        "com.canonical.dbusmenu.GetLayout",
        "int32:0",
        "int32:-1",
        "array:string:label",
    ]);
    let mut items = Vec::new();
    let mut id = None;
    let mut label_next = false;
    for line in layout.lines().map(str::trim) {
        if let Some(n) = line.strip_prefix("int32 ") {
            id = n.parse().ok();
        } else if line == "string \"label\"" {
            label_next = true;
        } else if label_next && line.starts_with("variant") {
            label_next = false;
            if let (Some(id), Some(label)) = (id, line.split('"').nth(1)) {
                items.push((id, label.to_owned()));
            }
        }
    }
    items
}

/// Clicks a tray menu item, as the tray host does.
fn tray_click(item: &str, label: &str) {
    let menu = tray_menu(item);
    let id = menu
        .iter()
        .find(|(_, l)| l == label)
        .unwrap_or_else(|| panic!("no {label:?} in the tray menu: {menu:?}"))
        .0;
    dbus_send(&[
        &format!("--dest={item}"),
        "/MenuBar",
        "com.canonical.dbusmenu.Event",
        &format!("int32:{id}"),
        "string:clicked",
        "variant:int32:0",
        "uint32:0",
    ]);
}

/// Started at login (`latch-desktop --tray`), Latch is `latch tray`: the proxy, refreshes and a
/// tray icon on the session bus, with no webview in any process. Its menu says each
/// connector's state, pauses the proxy for every face, and opens the window, which finds the
/// tray serving; when the window's process ends, the tray serves on.
#[test]
fn the_tray_serves_without_a_webview_and_opens_the_window() {
    require_secret_service();
    let _desktop = crate::support::DESKTOP_BINARY
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let fixture = Fixture::start();
    let home = Home::with_fixture_provider(&fixture);
    let port = free_port();
    home.append_config(&format!("\n[proxy]\nlisten = \"127.0.0.1:{port}\"\n"));
    let key = home.key_for("tray-tool", &["jira"]);
    let xvfb = Xvfb::start();
    let mut cmd = Command::new(desktop_binary());
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("LATCH_") {
            cmd.env_remove(&key);
        }
    }
    let mut tray = cmd
        .arg("--tray")
        .env("DISPLAY", &xvfb.display)
        .env("LATCH_HOME", home.path())
        .env("HOME", home.path())
        .env("XDG_CONFIG_HOME", home.file("xdg-config"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = tray.id();
    eventually("the tray serving the home", Duration::from_secs(30), || {
        let serving = &home.json(&["status", "--json"])["home"]["serving"];
        serving["pid"] == pid && serving["by"] == "the Latch tray" && !serving["addr"].is_null()
    });
    // The desktop binary became `latch tray`: no webview, no WebKit process.
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
    assert_eq!(comm.trim(), "latch");
    assert!(
        process_tree(pid)
            .iter()
            .all(|(_, n)| !n.starts_with("WebKit")),
        "{:?}",
        process_tree(pid)
    );
    let url = format!("http://127.0.0.1:{port}/jira/rest/api/3/myself");
    let bearer = format!("Authorization: Bearer {key}");
    // Latch answers for jira itself (not signed in yet): the proxy is up.
    let (served, body) = curl(&["-H", &bearer, &url]);
    assert!(body.contains("\"error\""), "{served}: {body}");

    // The icon, as a tray host sees it on the session bus.
    let item = format!("org.kde.StatusNotifierItem-{pid}-1");
    eventually("the tray's menu", Duration::from_secs(30), || {
        tray_menu(&item)
            .iter()
            .any(|(_, l)| l == "jira — not signed in")
    });
    let tip = dbus_send(&[
        &format!("--dest={item}"),
        "/StatusNotifierItem",
        "org.freedesktop.DBus.Properties.Get",
        "string:org.kde.StatusNotifierItem",
        "string:ToolTip",
    ]);
    assert!(tip.contains("Latch: a connector waits for you"), "{tip}");
    let labels: Vec<String> = tray_menu(&item).into_iter().map(|(_, l)| l).collect();
    for want in [
        "confluence — not signed in",
        "Open Latch",
        "Pause proxy",
        "Quit Latch",
    ] {
        assert!(labels.iter().any(|l| l == want), "{want}: {labels:?}");
    }

    // Pause proxy: every face sees it, tools get 503.
    tray_click(&item, "Pause proxy");
    let (status, body) = curl(&["-H", &bearer, &url]);
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("proxy_paused"), "{body}");
    assert_eq!(
        home.json(&["status", "--json"])["home"]["serving"]["paused"],
        true
    );
    tray_click(&item, "Pause proxy");
    let (status, _) = curl(&["-H", &bearer, &url]);
    assert_eq!(status, served, "resumed");

    // Open Latch: the window's own process, beside the tray, which still serves.
    tray_click(&item, "Open Latch");
    eventually(
        "the window and its WebKit process",
        Duration::from_secs(30),
        || {
            let names: Vec<String> = processes_of(&home).into_iter().map(|(_, n)| n).collect();
            names.iter().any(|n| n == "latch-desktop")
                && names.iter().any(|n| n.starts_with("WebKit"))
        },
    );
    assert_eq!(
        home.json(&["status", "--json"])["home"]["serving"]["pid"],
        pid
    );
    // The window's process ends (the window test closes it with Ctrl+W): nothing of it stays.
    let window = processes_of(&home)
        .into_iter()
        .find(|(_, n)| n == "latch-desktop")
        .unwrap();
    let _ = Command::new("kill").arg(window.0.to_string()).status();
    eventually(
        "the window's processes to end",
        Duration::from_secs(30),
        || {
            processes_of(&home)
                .iter()
                .all(|(_, n)| n != "latch-desktop" && !n.starts_with("WebKit"))
        },
    );
    let (status, _) = curl(&["-H", &bearer, &url]);
    assert_eq!(status, served, "the tray serves on");

    // Quit: the tray stops serving and exits.
    tray_click(&item, "Quit Latch");
    let code = tray.wait().unwrap();
    assert!(code.success(), "{code:?}");
    assert!(home.json(&["status", "--json"])["home"]["serving"].is_null());
    drop(xvfb);
}

//! The Debian package: built with Tauri's bundler (`scripts/package.sh --debug`, what `make
//! package` does in release), installed with the real `dpkg` into a private root, the CLI and
//! the desktop app run from there, and an upgrade from an older package keeps latch.toml, the
//! database and the keychain items.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::{
    curl_until_settled, free_port, keychain_lookup, repo_path, stderr, stdout, Home,
};
use crate::webdriver::Xvfb;

/// Builds the package (debug profile) and returns the .deb.
fn build(version: Option<&str>) -> PathBuf {
    let mut cmd = Command::new(repo_path("scripts/package.sh"));
    cmd.arg("--debug");
    if let Some(version) = version {
        cmd.args(["--version", version]);
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "packaging failed:\n{}", stderr(&out));
    let deb = PathBuf::from(stdout(&out).lines().last().unwrap().trim());
    assert!(deb.exists(), "{}", deb.display());
    deb
}

/// `dpkg -i` into a private root: the real installer, without touching this machine's
/// packages (dependencies are this machine's, hence --force-depends).
fn dpkg_install(root: &Path, deb: &Path) {
    let out = Command::new("dpkg")
        .args(["--force-not-root", "--force-depends"])
        .arg(format!("--root={}", root.display()))
        .arg(format!("--log={}", root.join("dpkg.log").display()))
        .arg("-i")
        .arg(deb)
        .output()
        .unwrap();
    assert!(out.status.success(), "dpkg -i: {}", stderr(&out));
}

fn installed_version(root: &Path) -> String {
    let status = std::fs::read_to_string(root.join("var/lib/dpkg/status")).unwrap();
    status
        .split("\n\n")
        .find(|block| block.contains("Package: latch\n"))
        .and_then(|block| block.lines().find_map(|l| l.strip_prefix("Version: ")))
        .unwrap()
        .to_owned()
}

#[test]
fn the_deb_installs_runs_and_upgrades_without_losing_anything() {
    let _desktop = crate::support::DESKTOP_BINARY
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let older = build(Some("0.0.1"));
    let current = build(None);
    let root = tempfile::tempdir().unwrap();
    for dir in ["var/lib/dpkg/info", "var/lib/dpkg/updates"] {
        std::fs::create_dir_all(root.path().join(dir)).unwrap();
    }
    std::fs::write(root.path().join("var/lib/dpkg/status"), "").unwrap();
    dpkg_install(root.path(), &older);
    assert_eq!(installed_version(root.path()), "0.0.1");

    // The packaged CLI sets up a home: a provider (its secret in the keychain), a connector.
    let home = Home::new();
    let latch = root.path().join("usr/bin/latch");
    let run = |args: &[&str], stdin: &str| {
        // The home's environment, the packaged binary.
        let cmd = home.cmd(args);
        let mut packaged = Command::new(&latch);
        packaged.args(args);
        for (key, value) in cmd.get_envs() {
            match value {
                Some(value) => packaged.env(key, value),
                None => packaged.env_remove(key),
            };
        }
        crate::support::run_with_stdin(packaged, stdin)
    };
    let out = run(&["--version"], "");
    assert!(stdout(&out).starts_with("latch "), "{}", stdout(&out));
    let out = run(
        &["provider", "add", "atlassian", "--client-id", "pkg-client"],
        "pkg-secret-4242",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run(&["connector", "add", "jira"], "");
    assert!(out.status.success(), "{}", stderr(&out));
    let home_id = home.json(&["status", "--json"])["home"]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Upgrade: everything is still there.
    dpkg_install(root.path(), &current);
    assert_eq!(installed_version(root.path()), "0.1.0");
    let out = run(&["status", "--json"], "");
    assert!(out.status.success(), "{}", stderr(&out));
    let status: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(status["home"]["id"], home_id.as_str(), "same database");
    assert_eq!(status["connectors"][0]["name"], "jira", "{status}");
    assert_eq!(
        status["providers"][0]["client_secret"], "stored",
        "{status}"
    );
    assert_eq!(
        keychain_lookup(&format!("{home_id}/provider/atlassian/client-secret")).as_deref(),
        Some("pkg-secret-4242")
    );
    for shipped in [
        "usr/share/man/man1/latch.1.gz",
        "usr/share/bash-completion/completions/latch",
        "usr/share/zsh/vendor-completions/_latch",
        "usr/lib/systemd/user/latch.service",
        "usr/share/applications/Latch.desktop",
    ] {
        assert!(
            root.path().join(shipped).exists(),
            "{shipped} is in the package"
        );
    }

    // The packaged desktop app starts under Xvfb and serves its proxy.
    let port = free_port();
    home.append_config(&format!("\n[proxy]\nlisten = \"127.0.0.1:{port}\"\n"));
    let xvfb = Xvfb::start();
    let mut app = Command::new(root.path().join("usr/bin/latch-desktop"));
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("LATCH_") {
            app.env_remove(&key);
        }
    }
    let mut app = app
        .env("LATCH_HOME", home.path())
        .env("DISPLAY", &xvfb.display)
        .env("HOME", home.path())
        .env("XDG_CONFIG_HOME", home.file("xdg-config"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (status, body) = curl_until_settled(
        &[&format!("http://127.0.0.1:{port}/jira/rest/api/3/myself")],
        Duration::from_secs(30),
        |status, _| status == 401,
    );
    let _ = app.kill();
    let _ = app.wait();
    assert_eq!(status, 401, "the packaged app's proxy answers: {body}");
    assert!(body.contains("missing_key"), "{body}");
}

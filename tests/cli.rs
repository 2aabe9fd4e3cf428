//! The foundation's promises, through the real binary, the real Secret Service and real
//! SQLite files.

use crate::support::{all_files_text, keychain_lookup, require_secret_service, Home};

const SECRET: &str = "fixture-client-secret-cli-8c1f2e";

fn setup_atlassian(home: &Home) {
    home.ok(
        &["provider", "add", "atlassian", "--client-id", "client-x"],
        &format!("{SECRET}\n"),
    );
}

#[test]
fn provider_and_two_connectors_merge_scopes_with_attribution() {
    require_secret_service();
    let home = Home::new();
    setup_atlassian(&home);
    let out = home.ok(&["connector", "add", "jira"], "");
    assert!(out.contains("+ read:jira-work"), "{out}");
    let out = home.ok(&["connector", "add", "confluence"], "");
    assert!(out.contains("= read:me"), "{out}");
    assert!(out.contains("4 new, 2 shared"), "{out}");

    let status = home.json(&["status", "--json"]);
    assert_eq!(status["schema"], "latch.status/v1");
    let provider = &status["providers"][0];
    assert_eq!(provider["client_secret"], "stored");
    assert_eq!(
        provider["requested_scope_string"],
        "read:me read:jira-user read:jira-work write:jira-work offline_access \
         read:confluence-user read:confluence-space.summary read:confluence-content.all \
         write:confluence-content"
    );
    let attribution = |scope: &str| -> Vec<String> {
        provider["requested_scopes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["scope"] == scope)
            .unwrap()["requested_by"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(attribution("offline_access"), ["jira", "confluence"]);
    assert_eq!(attribution("write:confluence-content"), ["confluence"]);
    for connector in status["connectors"].as_array().unwrap() {
        assert_eq!(connector["state"], "not_signed_in");
        assert!(connector["scopes"]["granted"].is_null());
    }

    // The secret is in the Secret Service under this home's id, and nowhere in the home.
    let home_id = status["home"]["id"].as_str().unwrap();
    let key = format!("{home_id}/provider/atlassian/client-secret");
    assert_eq!(keychain_lookup(&key).as_deref(), Some(SECRET));
    for (path, text) in all_files_text(home.path()) {
        assert!(
            !text.contains(SECRET),
            "{} holds the client secret",
            path.display()
        );
    }
    let stdout = home.ok(&["status"], "") + &home.ok(&["provider", "list"], "");
    assert!(!stdout.contains(SECRET));
}

#[test]
fn provider_secret_replaces_the_keychain_item() {
    require_secret_service();
    let home = Home::new();
    setup_atlassian(&home);
    home.ok(
        &["provider", "secret", "atlassian"],
        "second-secret-value\n",
    );
    let id = home.json(&["status", "--json"])["home"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        keychain_lookup(&format!("{id}/provider/atlassian/client-secret")).as_deref(),
        Some("second-secret-value")
    );
}

#[test]
fn connector_remove_reports_scopes_no_longer_requested() {
    require_secret_service();
    let home = Home::new();
    setup_atlassian(&home);
    home.ok(&["connector", "add", "jira"], "");
    home.ok(&["connector", "add", "confluence"], "");
    let removed = home.json(&["connector", "remove", "confluence", "--json"]);
    let gone: Vec<_> = removed["no_longer_requested"]
        .as_array()
        .unwrap()
        .iter()
        .collect();
    assert_eq!(gone.len(), 4);
    let status = home.json(&["status", "--json"]);
    assert_eq!(status["connectors"].as_array().unwrap().len(), 1);
}

#[test]
fn unknown_connector_is_one_clear_error() {
    let home = Home::new();
    let out = home.run(&["connector", "add", "jiraa"], "");
    assert_eq!(out.status.code(), Some(5));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("unknown connector type `jiraa`") && stderr.contains("jira, "),
        "{stderr}"
    );
}

#[test]
fn malformed_manifest_names_file_and_line() {
    let home = Home::new();
    let manifest = home.file("custom.toml");
    std::fs::write(
        &manifest,
        "[connectors.wiki]\ndisplay_name = \"Wiki\"\nprovider = \"atlassian\"\nupstream_scopes = \"read:me\"\n",
    )
    .unwrap();
    let out = home.run(&["manifest", "add", manifest.to_str().unwrap()], "");
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("custom.toml:4:"), "{stderr}");
    assert!(
        !home.file("latch.toml").exists(),
        "a rejected manifest must not be registered"
    );
}

#[test]
fn valid_manifest_adds_a_connector_type() {
    let home = Home::new();
    let manifest = home.file("custom.toml");
    std::fs::write(
        &manifest,
        r#"[providers.acme]
display_name = "Acme IdP"
vocabulary = "generic"
client_type = "public"
pkce = true
authorize_url = "https://idp.acme.example/authorize"
token_url = "https://idp.acme.example/token"

[connectors.acme-api]
display_name = "Acme API"
provider = "acme"
upstream_scopes = ["openid", "api.read"]
api_base = "https://api.acme.example"
auth_modes = ["user"]
probe = { method = "GET", path = "/me" }
"#,
    )
    .unwrap();
    let out = home.ok(&["manifest", "add", manifest.to_str().unwrap()], "");
    assert!(out.contains("acme-api"), "{out}");
    let catalog = home.json(&["connector", "catalog", "--json"]);
    assert!(catalog
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["name"] == "acme-api"));
}

#[test]
fn malformed_latch_toml_names_line_and_fix() {
    let home = Home::new();
    std::fs::write(
        home.file("latch.toml"),
        "[proxy]\nlisten = \"127.0.0.1:7391\"\n\n[connectors.jira]\nprovider = \"atlasian\"\n",
    )
    .unwrap();
    let out = home.run(&["status"], "");
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("latch.toml:5:"), "{stderr}");
    assert!(
        stderr.contains("fix: run `latch provider add atlasian"),
        "{stderr}"
    );
}

#[test]
fn missing_keychain_is_one_clear_error_and_writes_nothing() {
    let home = Home::new();
    let mut cmd = home.cmd(&["provider", "add", "atlassian", "--client-id", "x"]);
    cmd.env_remove("DBUS_SESSION_BUS_ADDRESS")
        .env_remove("DISPLAY");
    let out = crate::support::run_with_stdin(cmd, "some-secret\n");
    assert_eq!(out.status.code(), Some(4));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no OS keychain is reachable"), "{stderr}");
    assert!(stderr.contains("fix:"), "{stderr}");
    assert!(
        !home.file("latch.toml").exists(),
        "no plaintext fallback, no half set-up"
    );
    // status needs no keychain.
    let mut cmd = home.cmd(&["status", "--json"]);
    cmd.env_remove("DBUS_SESSION_BUS_ADDRESS")
        .env_remove("DISPLAY");
    assert!(cmd.output().unwrap().status.success());
}

#[test]
fn empty_secret_is_refused() {
    let home = Home::new();
    let out = home.run(&["provider", "add", "atlassian", "--client-id", "x"], "\n");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no secret given"));
}

#[test]
fn json_errors_are_machine_readable() {
    let home = Home::new();
    let out = home.run(&["connector", "add", "nope", "--json"], "");
    assert_eq!(out.status.code(), Some(5));
    let body: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(body["error"]["code"], "unknown_connector");
}

/// Shells: completions that bash accepts, a zsh script, a man page, and an example in the help
/// of every verb.
#[test]
fn completions_man_page_and_examples_in_every_help() {
    let home = Home::new();
    let help = home.ok(&["--help"], "");
    let verbs: Vec<String> = help
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        // Wrapped descriptions are indented further.
        .filter(|l| !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .filter(|v| !["help", "man"].contains(&v.as_str()))
        .collect();
    assert!(verbs.len() > 10, "{help}");
    let commands_of = |help: &str| -> Vec<String> {
        help.lines()
            .skip_while(|l| !l.starts_with("Commands:"))
            .skip(1)
            .take_while(|l| l.starts_with("  "))
            .filter(|l| !l.starts_with("   "))
            .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
            .filter(|v| v != "help")
            .collect()
    };
    let mut checked = 0;
    for verb in &verbs {
        let out = home.ok(&[verb, "--help"], "");
        assert!(
            out.contains("Example:"),
            "`latch {verb} --help` has no example:\n{out}"
        );
        // And each verb of a group: `latch keys create --help` is where people look.
        for sub in commands_of(&out) {
            let out = home.ok(&[verb, &sub, "--help"], "");
            assert!(
                out.contains("Example:"),
                "`latch {verb} {sub} --help` has no example:\n{out}"
            );
            checked += 1;
        }
    }
    assert!(checked > 15, "only {checked} sub-verbs found");
    let bash = home.ok(&["completion", "bash"], "");
    let checked = std::process::Command::new("bash")
        .args(["-c", "source /dev/stdin && complete -p latch"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write as _;
            child.stdin.take().unwrap().write_all(bash.as_bytes())?;
            child.wait_with_output()
        })
        .unwrap();
    assert!(
        String::from_utf8_lossy(&checked.stdout).contains("-F _latch latch"),
        "bash did not register the completion"
    );
    assert!(home
        .ok(&["completion", "zsh"], "")
        .starts_with("#compdef latch"));
    let man = home.ok(&["man"], "");
    assert!(
        man.contains(".TH latch 1"),
        "{}",
        &man[..200.min(man.len())]
    );
}

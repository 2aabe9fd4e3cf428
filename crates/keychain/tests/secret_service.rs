#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design
//! Against the real Secret Service (gnome-keyring in a private D-Bus session, started by
//! `scripts/with-keyring.sh`, which `make test` uses). Another client, `secret-tool`, must see
//! what Latch writes, and must stop seeing it after Latch deletes it.

use std::process::Command;

use latch_core::ports::{SecretKey, SecretStore};
use latch_core::secret::Secret;
use latch_keychain::{Keychain, SERVICE};

fn require_secret_service() {
    assert!(
        std::env::var_os("LATCH_TEST_SECRET_SERVICE").is_some(),
        "these tests need the real Secret Service: run them through `make test` \
         (scripts/with-keyring.sh)"
    );
}

fn secret_tool_lookup(key: &SecretKey) -> Option<String> {
    let out = Command::new("secret-tool")
        .args(["lookup", "service", SERVICE, "username", key.as_str()])
        .output()
        .expect("secret-tool is installed by `make deps`");
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn unique_key(what: &str) -> SecretKey {
    SecretKey::named(&format!("test-{}-{what}", std::process::id()))
}

#[test]
fn another_client_sees_the_item_and_removal_removes_it() {
    require_secret_service();
    let keychain = Keychain::new();
    let key = unique_key("roundtrip");
    let value = Secret::new("fixture-secret-ss-4711".to_owned());

    keychain.put(&key, &value).unwrap();
    assert_eq!(
        secret_tool_lookup(&key).as_deref(),
        Some("fixture-secret-ss-4711")
    );
    assert_eq!(keychain.get(&key).unwrap(), Some(value));

    // Replacing keeps one item with the new value.
    keychain
        .put(&key, &Secret::new("rotated-ss-4712".to_owned()))
        .unwrap();
    assert_eq!(secret_tool_lookup(&key).as_deref(), Some("rotated-ss-4712"));

    assert!(keychain.delete(&key).unwrap());
    assert_eq!(secret_tool_lookup(&key), None);
    assert_eq!(keychain.get(&key).unwrap(), None);
    assert!(!keychain.delete(&key).unwrap());
}

#[test]
fn an_item_written_by_another_client_is_read() {
    require_secret_service();
    let key = unique_key("foreign");
    let mut child = Command::new("secret-tool")
        .args([
            "store",
            "--label",
            "latch test",
            "service",
            SERVICE,
            "username",
            key.as_str(),
        ])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"from-secret-tool")
        .unwrap();
    assert!(child.wait().unwrap().success());
    let keychain = Keychain::new();
    assert_eq!(
        keychain
            .get(&key)
            .unwrap()
            .map(|s| s.expose().to_owned())
            .as_deref(),
        Some("from-secret-tool")
    );
    assert!(keychain.delete(&key).unwrap());
}

#[test]
fn large_rotating_tokens_fit() {
    // Bitbucket's rotating tokens regularly exceed 2,500 characters.
    require_secret_service();
    let keychain = Keychain::new();
    let key = unique_key("large");
    let big = "x".repeat(8192);
    keychain.put(&key, &Secret::new(big.clone())).unwrap();
    assert_eq!(keychain.get(&key).unwrap().unwrap().expose(), big);
    keychain.delete(&key).unwrap();
}

#[test]
fn chunked_items_are_real_items_and_go_away_together() {
    // The code path Windows uses (its items hold 1,280 UTF-16 units), on a real keychain.
    require_secret_service();
    let chunked = latch_core::secret_chunks::Chunked::new(Keychain::new(), 1280);
    let key = unique_key("chunked");
    let token = "t".repeat(2_700);
    chunked.put(&key, &Secret::new(token.clone())).unwrap();
    let manifest = secret_tool_lookup(&key).unwrap();
    assert!(
        manifest.starts_with("latch-chunks:v1:g1:3:2700"),
        "{manifest}"
    );
    let part = SecretKey::named(&format!("{}/g1/part-3", key.as_str()));
    assert_eq!(secret_tool_lookup(&part).map(|p| p.len()), Some(140));
    assert_eq!(chunked.get(&key).unwrap().unwrap().expose(), token);
    assert!(chunked.delete(&key).unwrap());
    assert_eq!(secret_tool_lookup(&key), None);
    assert_eq!(secret_tool_lookup(&part), None);
}

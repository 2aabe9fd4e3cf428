//! A home written by an earlier Latch opens with every key, hash, policy and audit row intact,
//! and its keys still work through the proxy. `tests/fixture/home-2026-12-06` was written by the
//! main of that day (schema 4): three keys (one with paths, read-only, an expiry; one revoked),
//! audited requests and counted refusals; `keys.txt` holds the keys it printed.

use std::collections::BTreeMap;

use sha2::Digest as _;

use crate::support::{curl, error_code, repo_path, Home, Serve};

/// Copies the recorded home into a fresh one.
fn recorded_home() -> Home {
    let home = Home::new();
    for file in ["latch.toml", "latch.db"] {
        std::fs::copy(
            repo_path(&format!("tests/fixture/home-2026-12-06/{file}")),
            home.file(file),
        )
        .unwrap();
    }
    home
}

fn recorded(file: &str) -> String {
    std::fs::read_to_string(repo_path(&format!("tests/fixture/home-2026-12-06/{file}"))).unwrap()
}

fn keys() -> BTreeMap<String, String> {
    recorded("keys.txt")
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(name, key)| (name.to_owned(), key.to_owned()))
        .collect()
}

#[test]
fn a_home_from_an_earlier_latch_keeps_every_key_and_audit_row() {
    let home = recorded_home();
    // What `keys list --json` and `audit --json` printed then, they print now.
    let listed: serde_json::Value =
        serde_json::from_str(&home.ok(&["keys", "list", "--json"], "")).unwrap();
    let then: serde_json::Value = serde_json::from_str(&recorded("keys.json")).unwrap();
    assert_eq!(listed, then);
    // Every audit row, now in time order (a minute's count of refusals carries that minute's
    // start, and was written after the minute's requests).
    let audit: serde_json::Value =
        serde_json::from_str(&home.ok(&["audit", "--json"], "")).unwrap();
    let mut then: Vec<serde_json::Value> = serde_json::from_str(&recorded("audit.json")).unwrap();
    then.sort_by(|a, b| {
        (a["at"].as_str(), a["id"].as_i64()).cmp(&(b["at"].as_str(), b["id"].as_i64()))
    });
    assert_eq!(audit, serde_json::Value::from(then));

    // The hashes are the keys' own, and the schema is the newest.
    let db = rusqlite::Connection::open(home.file("latch.db")).unwrap();
    let version: i64 = db
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert!(version >= 5, "schema {version}");
    let mut stmt = db.prepare("SELECT name, key_hash FROM local_keys").unwrap();
    let stored: BTreeMap<String, Vec<u8>> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let keys = keys();
    assert_eq!(stored.len(), keys.len());
    for (name, key) in &keys {
        assert_eq!(
            stored[name],
            sha2::Sha256::digest(key.as_bytes()).to_vec(),
            "{name}"
        );
    }
    drop(stmt);
    drop(db);

    // And the keys mean what they meant: policy, revocation, paths.
    let serve = Serve::start(&home);
    let ask = |key: &str, method: &str, path: &str| {
        let (status, body) = curl(&[
            "-X",
            method,
            "-H",
            &format!("Authorization: Bearer {key}"),
            &serve.url(path),
        ]);
        (status, error_code(&body))
    };
    // Verified, then refused only because this copy has no site and no sign-in.
    assert_eq!(
        ask(&keys["ci"], "GET", "/jira/rest/api/3/myself"),
        (502, "site_unbound".to_owned())
    );
    assert_eq!(
        ask(&keys["ci"], "POST", "/jira/rest/api/3/issue"),
        (403, "method_not_allowed".to_owned())
    );
    assert_eq!(
        ask(&keys["ci"], "GET", "/jira/rest/servicedeskapi/info"),
        (403, "path_not_allowed".to_owned())
    );
    assert_eq!(
        ask(&keys["ci"], "GET", "/ops/v2/alerts"),
        (403, "connector_not_allowed".to_owned())
    );
    assert_eq!(
        ask(&keys["wide"], "GET", "/ops/v2/alerts"),
        (502, "credential_missing".to_owned())
    );
    assert_eq!(
        ask(&keys["old"], "GET", "/ops/v2/alerts"),
        (401, "key_revoked".to_owned())
    );
    serve.stop();
}

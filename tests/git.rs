//! `git clone` through `latch git-credential`, with the real `git` against the fixture's
//! smart-HTTP servers (`git http-backend` behind a credential check): Bitbucket Cloud with an
//! OAuth token (`x-token-auth`), Bitbucket Data Center with a PAT.

use std::path::Path;
use std::process::{Command, Output};

use crate::bitbucket::{add_bitbucket, login_bitbucket};
use crate::support::{stderr, stdout, Fixture, Home};

const DC_PAT: &str = "dc-pat-fixture-61";

/// Real git with its global configuration in the test's home, no system configuration and no
/// prompts: a missing credential fails instead of waiting for a terminal.
fn git(home: &Home, args: &[&str]) -> Output {
    Command::new("git")
        .args(args)
        .env("GIT_CONFIG_GLOBAL", home.file("gitconfig"))
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env_remove("GIT_ASKPASS")
        .env_remove("SSH_ASKPASS")
        .output()
        .unwrap()
}

fn install(home: &Home, args: &[&str]) -> String {
    let mut cmd = home.cmd(&[&["git-credential", "install"], args].concat());
    cmd.env("GIT_CONFIG_GLOBAL", home.file("gitconfig"));
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out)
}

fn readme(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("README.md")).unwrap()
}

/// The README's "Bitbucket and git" recipe: `latch git-credential install`, then plain `git
/// clone`. A token the server stops accepting is erased by git (marked stale, the refresh token
/// kept), and the next git command gets a refreshed one.
#[test]
fn git_clones_bitbucket_and_data_center_with_tokens_latch_keeps_fresh() {
    let fixture = Fixture::start();
    let home = Home::new();
    add_bitbucket(&home, &fixture);
    login_bitbucket(&home);
    let dc_base = format!("{}/dc", fixture.base);
    home.ok(
        &[
            "provider",
            "add",
            "corp-git",
            "--preset",
            "bitbucket-dc",
            "--base-url",
            &dc_base,
        ],
        "",
    );
    home.ok(&["connector", "add", "bitbucket-dc", "--auth", "pat"], "");
    home.ok(&["credential", "set", "bitbucket-dc"], DC_PAT);

    // Bitbucket Cloud's git host is bitbucket.org; the fixture's is this one. Data Center's
    // git URL is its base URL, found by itself (and installed after, so it wins for /dc).
    let said = install(
        &home,
        &["--host", &fixture.base, "--connector", "bitbucket"],
    );
    assert!(said.contains("connector `bitbucket`"), "{said}");
    let said = install(&home, &["--connector", "bitbucket-dc"]);
    assert!(said.contains(&dc_base), "{said}");
    let config = std::fs::read_to_string(home.file("gitconfig")).unwrap();
    assert!(config.contains("git-credential --connector"), "{config}");

    let work = tempfile::tempdir().unwrap();
    let bb = work.path().join("bb");
    let out = git(
        &home,
        &[
            "clone",
            "-q",
            &format!("{}/bitbucket/team/repo.git", fixture.base),
            bb.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(readme(&bb).contains("latch git-credential"));
    let dc = work.path().join("dc");
    let out = git(
        &home,
        &[
            "clone",
            "-q",
            &format!("{dc_base}/scm/proj/repo.git"),
            dc.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(readme(&dc).contains("latch git-credential"));

    // The server revokes the access token (as Bitbucket does after a rotation elsewhere): git
    // fails once and erases it; the next fetch gets a refreshed token.
    let refreshes = fixture.stats()["bb_token_calls"]["refresh_token"]
        .as_u64()
        .unwrap();
    fixture.revoke_access();
    let out = git(&home, &["-C", bb.to_str().unwrap(), "fetch", "-q"]);
    assert!(!out.status.success(), "the revoked token is refused");
    let out = git(&home, &["-C", bb.to_str().unwrap(), "fetch", "-q"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        fixture.stats()["bb_token_calls"]["refresh_token"],
        refreshes + 1,
        "one refresh, after git's erase"
    );
    // The refresh token was never deleted: the grant works without a new sign-in.
    home.ok(&["token", "bitbucket"], "");

    // A host Latch does not know: nothing on stdout, so git asks its next helper.
    let out = crate::support::run_with_stdin(
        home.cmd(&["git-credential", "get"]),
        "protocol=https\nhost=example.org\n\n",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "");
}

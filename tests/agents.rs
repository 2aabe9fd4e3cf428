//! Agents and tools with zero token handling: the real mcp-atlassian (PyPI), started through
//! `latch exec --for mcp-atlassian` and spoken to over MCP stdio by the official `mcp` Python
//! client — list tools, get an issue, search with JQL — through Latch's private proxy, with its
//! key, against the fixture's Jira; and atlassian-python-api through `--for`.

use std::path::PathBuf;
use std::process::Command;

use crate::support::{repo_path, stderr, stdout, venv, Fixture, Home};

/// `program args` with this home's `LATCH_HOME` and no other LATCH_* variable.
fn in_home(home: &Home, program: &PathBuf, args: &[&str]) -> Command {
    let mut cmd = Command::new(program);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("LATCH_") {
            cmd.env_remove(&key);
        }
    }
    cmd.env("LATCH_HOME", home.path()).args(args);
    cmd
}

#[test]
fn mcp_atlassian_runs_through_latch_exec_over_mcp_stdio() {
    let fixture = Fixture::start();
    let home = Home::with_fixture_provider(&fixture);
    assert!(home.login().status.success());
    let latch = env!("CARGO_BIN_EXE_latch");
    let server = venv("mcp-atlassian");
    let out = in_home(
        &home,
        &venv("python"),
        &[
            repo_path("tests/fixture/mcp_client.py").to_str().unwrap(),
            latch,
            "exec",
            "--for",
            "mcp-atlassian",
            "--",
            server.to_str().unwrap(),
        ],
    )
    .output()
    .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let answer: serde_json::Value = serde_json::from_str(stdout(&out).trim())
        .unwrap_or_else(|_| panic!("{}\n{}", stdout(&out), stderr(&out)));
    let tools: Vec<&str> = answer["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert!(tools.contains(&"jira_get_issue") && tools.contains(&"jira_search"));
    assert_eq!(answer["issue_error"], false, "{answer}");
    let issue = answer["issue"][0].as_str().unwrap();
    assert!(issue.contains("\"key\": \"OPS-1\""), "{issue}");
    assert!(issue.contains("Rotate the signing keys"), "{issue}");
    assert_eq!(answer["search_error"], false, "{answer}");
    let search = answer["search"][0].as_str().unwrap();
    assert!(search.contains("\"total\": 2"), "{search}");

    // Through the gateway, with the signed-in token Latch injected; audited under the child's
    // key; no token in the child's hands (it only ever had LATCH_KEY).
    let paths = fixture.stats()["gateway_paths"].to_string();
    assert!(paths.contains("GET /rest/api/2/issue/OPS-1"), "{paths}");
    assert!(paths.contains("GET /rest/api/2/search"), "{paths}");
    let audit = home.ok(&["audit", "--json"], "");
    assert!(audit.contains("exec:mcp-atlassian"), "{audit}");
    assert!(audit.contains("/jira/rest/api/2/issue/OPS-1"), "{audit}");
}

#[test]
fn atlassian_python_api_reads_its_usual_variables() {
    let fixture = Fixture::start();
    let home = Home::with_fixture_provider(&fixture);
    assert!(home.login().status.success());
    let python = venv("python");
    let script = "import os\n\
        from atlassian import Jira\n\
        jira = Jira(url=os.environ['JIRA_URL'], token=os.environ['JIRA_TOKEN'])\n\
        print(jira.issue('OPS-2')['fields']['summary'])";
    let out = home
        .cmd(&[
            "exec",
            "--for",
            "atlassian-python-api",
            "--env",
            "MY_JIRA={url:jira}/rest/api/2",
            "--",
            python.to_str().unwrap(),
            "-c",
            &format!("{script}\nprint(os.environ['MY_JIRA'])"),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let printed = stdout(&out);
    assert!(printed.contains("Renew the TLS certificate"), "{printed}");
    assert!(printed.contains("/jira/rest/api/2"), "{printed}");
    // A template that names no connector is refused before anything runs.
    let out = home.run(&["exec", "--env", "X={url:nope}", "--", "true"], "");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("no such connector"),
        "{}",
        stderr(&out)
    );
}

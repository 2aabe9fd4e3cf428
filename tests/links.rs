//! Every unmodified client stays on the proxy (issue 22): Bitbucket at its own `/2.0` paths,
//! link fields rewritten to the proxy (and only those), and the last small security findings.
//! Each client is the one people use, given the proxy's URL in place of the real one.

use crate::bitbucket::{add_bitbucket, login_bitbucket};
use crate::support::{curl, error_code, stderr, venv, Fixture, Home, Serve, CLOUD_ID};

fn python(script: &str) -> String {
    let out = std::process::Command::new(venv("python"))
        .args(["-c", script])
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        printed.contains("python ok"),
        "{printed}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    printed
}

/// atlassian-python-api's Bitbucket Cloud client, given the proxy's URL in place of
/// `https://api.bitbucket.org`: it appends `/2.0` itself, follows `links.repositories.href`,
/// then `next` for every page after the first. Every request reaches Bitbucket through the
/// proxy, with a token; none leaves it with the local key.
#[test]
fn a_bitbucket_client_pages_through_the_proxy() {
    let fixture = Fixture::start();
    let home = Home::new();
    add_bitbucket(&home, &fixture);
    login_bitbucket(&home);
    // A key whose path pattern was written for the old form (`repositories/…`, no `2.0/`).
    let key = home
        .ok(
            &[
                "keys",
                "create",
                "bb",
                "--connector",
                "bitbucket",
                "--path",
                "workspaces/*",
                "--path",
                "repositories/paged-team*",
            ],
            "",
        )
        .trim()
        .to_owned();
    let serve = Serve::start(&home);
    let printed = python(&format!(
        "from atlassian.bitbucket import Cloud\n\
         cloud = Cloud(url='{}', username='me', password='{key}')\n\
         repos = [r.name for r in cloud.workspaces.get('paged-team').repositories.each()]\n\
         assert len(repos) == 25, repos\n\
         print('python ok', len(repos))",
        serve.url("/bitbucket")
    ));
    assert!(printed.contains("25"), "{printed}");
    let seen: Vec<serde_json::Value> = fixture.stats()["bb_api_requests"]
        .as_array()
        .unwrap()
        .clone();
    let paged: Vec<&serde_json::Value> = seen
        .iter()
        .filter(|r| r["path"].as_str().unwrap().contains("paged-team"))
        .collect();
    assert_eq!(paged.len(), 4, "the workspace and three pages: {seen:?}");
    assert!(
        paged.iter().all(|r| r["token"] == true),
        "every request carried Latch's token, none the local key: {seen:?}"
    );
    // The old form still works (a line in the log says it is deprecated).
    let (status, body) = curl(&[
        "-H",
        &format!("Authorization: Bearer {key}"),
        &serve.url("/bitbucket/repositories/paged-team"),
    ]);
    assert_eq!(status, 200, "{body}");
    serve.stop();
}

/// Jira through pycontribs `jira`, Node's fetch and curl: `self` and `nextPage` lead back to
/// the proxy (a gzip answer too), content naming the upstream URL comes back unchanged.
#[test]
fn jira_links_lead_back_to_the_proxy_and_content_is_untouched() {
    let fixture = Fixture::start();
    let home = Home::with_fixture_provider(&fixture);
    assert!(home.login().status.success());
    let key = home.key_for("tools", &["jira", "confluence"]);
    let serve = Serve::start(&home);
    let api = format!("{}/ex/jira/{CLOUD_ID}", fixture.base);
    let proxy = serve.url("/jira");

    // pycontribs jira updates an issue through its `self` link.
    python(&format!(
        "from jira import JIRA\n\
         j = JIRA(server='{proxy}', basic_auth=('me', '{key}'))\n\
         issue = j.issue('OPS-1')\n\
         assert issue.self.startswith('{proxy}/'), issue.self\n\
         issue.update(fields={{'summary': 'Keys rotated'}})\n\
         print('python ok')"
    ));
    let writes = fixture.stats()["jira_writes"].to_string();
    assert!(writes.contains("PUT /rest/api/2/issue/10000"), "{writes}");

    // Node's fetch follows `nextPage` to the end; the upstream answered gzip.
    let script = format!(
        "let url = '{proxy}/rest/api/3/project/search';\n\
         const keys = [];\n\
         while (url) {{\n\
           const r = await fetch(url, {{ headers: {{ authorization: 'Bearer {key}' }} }});\n\
           if (r.status !== 200) throw new Error(`${{r.status}} ${{await r.text()}}`);\n\
           const page = await r.json();\n\
           if (!page.self.startsWith('{proxy}/')) throw new Error(page.self);\n\
           keys.push(...page.values.map((p) => p.key));\n\
           url = page.nextPage;\n\
         }}\n\
         if (keys.join() !== 'OPS,DEV,WEB,APP,SEC') throw new Error(keys.join());\n\
         console.log('node ok');"
    );
    let out = std::process::Command::new("node")
        .args(["--input-type=module", "-e", &script])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("node ok"),
        "{}",
        stderr(&out)
    );
    assert!(
        fixture.stats()["gzip_answers"].as_u64().unwrap() >= 3,
        "{}",
        fixture.stats()
    );
    let (status, body) = curl(&[
        "--compressed",
        "-H",
        &format!("Authorization: Bearer {key}"),
        &format!("{proxy}/rest/api/3/project/search"),
    ]);
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains(&format!(
            "\"nextPage\":\"{proxy}/rest/api/3/project/search?startAt=2"
        )),
        "{body}"
    );

    // Content: a description naming the API's URL, an attachment, an entity property.
    let (_, body) = curl(&[
        "-H",
        &format!("Authorization: Bearer {key}"),
        &format!("{proxy}/rest/api/2/issue/OPS-2"),
    ]);
    assert!(
        body.contains(&format!(
            "\"description\":\"Steps: {api}/rest/api/2/issue/10001 (and its self link).\""
        )),
        "{body}"
    );
    assert!(
        body.contains(&format!("\"self\":\"{proxy}/rest/api/2/issue/10001\"")),
        "{body}"
    );
    let (_, body) = curl(&[
        "-H",
        &format!("Authorization: Bearer {key}"),
        &format!("{proxy}/rest/api/3/attachment/content/7"),
    ]);
    assert_eq!(
        body,
        format!("{{\"self\":\"{api}/rest/api/3/issue/10000\",\"note\":\"a JSON file someone attached\"}}")
    );
    let (_, body) = curl(&[
        "-H",
        &format!("Authorization: Bearer {key}"),
        &format!("{proxy}/rest/api/3/issue/OPS-1/properties/latch"),
    ]);
    assert!(
        body.contains(&format!("\"self\":\"{api}/rest/api/3/issue/OPS-1\"")),
        "{body}"
    );

    // Confluence: atlassian-python-api follows `_links.next` page after page.
    python(&format!(
        "from atlassian import Confluence\n\
         c = Confluence(url='{}', username='me', password='{key}', cloud=True)\n\
         children = list(c.get_page_child_by_type('123', type='page'))\n\
         assert [p['title'] for p in children] == ['Child 1', 'Child 2', 'Child 3', 'Child 4', 'Child 5'], children\n\
         assert all(p['_links']['self'].startswith('{}/') for p in children), children\n\
         print('python ok')",
        serve.url("/confluence/wiki"),
        serve.url("/confluence")
    ));
    serve.stop();
}

/// The last small findings of the review, one each.
#[test]
fn small_security_findings_are_closed() {
    let fixture = Fixture::start();
    let home = Home::with_fixture_provider(&fixture);
    // A provider's error_description with a terminal escape reaches neither the terminal nor
    // the doctor's report.
    fixture.control(serde_json::json!({
        "deny": true,
        "deny_description": "declined \u{1b}[2J\u{1b}]0;pwned\u{7} here"
    }));
    let out = home.login();
    assert!(!out.status.success());
    assert!(!stderr(&out).contains('\u{1b}'), "{:?}", stderr(&out));
    assert!(stderr(&out).contains("declined"), "{}", stderr(&out));
    let report = home.run(&["doctor", "--offline"], "");
    assert!(!String::from_utf8_lossy(&report.stdout).contains('\u{1b}'));
    fixture.control(serde_json::json!({ "deny": false }));
    assert!(home.login().status.success());

    let reader = home
        .ok(
            &[
                "keys",
                "create",
                "reader",
                "--connector",
                "jira",
                "--read-only",
            ],
            "",
        )
        .trim()
        .to_owned();
    let serve = Serve::start(&home);
    let url = serve.url("/jira/rest/api/3/myself");
    let auth = format!("Authorization: Bearer {reader}");
    // The upstream's CORS headers never reach a client.
    let out = std::process::Command::new("curl")
        .args(["-s", "-D", "-", "-o", "/dev/null", "-H", &auth, &url])
        .output()
        .unwrap();
    let head = String::from_utf8_lossy(&out.stdout).to_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(!head.contains("access-control-"), "{head}");
    // Path and method overrides, in either spelling, are stripped for every key.
    let (status, body) = curl(&[
        "-H",
        &auth,
        "-H",
        "X-Original-URL: /rest/api/3/user?accountId=x",
        "-H",
        "X-Rewrite-URL: /admin",
        "-H",
        "X_HTTP_METHOD_OVERRIDE: DELETE",
        "-H",
        "X-HTTP-Method: DELETE",
        &url,
    ]);
    assert_eq!(status, 200, "{body}");
    let echoed: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(echoed["overrides"], serde_json::json!([]), "{body}");
    // A read-only key sends no body with a read.
    let big = home.file("body.bin");
    std::fs::write(&big, vec![b'x'; 1024]).unwrap();
    let (status, body) = curl(&[
        "-X",
        "GET",
        "-H",
        &auth,
        "--data-binary",
        &format!("@{}", big.display()),
        &url,
    ]);
    assert_eq!(
        (status, error_code(&body).as_str()),
        (403, "body_not_allowed"),
        "{body}"
    );
    serve.stop();

    // The home's files are the user's alone, and an older home's are tightened.
    use std::os::unix::fs::PermissionsExt as _;
    let mode =
        |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    let toml = home.file("latch.toml");
    std::fs::set_permissions(&toml, std::fs::Permissions::from_mode(0o644)).unwrap();
    home.ok(&["status"], "");
    let mut files = vec![toml];
    for entry in std::fs::read_dir(home.path()).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("latch.db") {
            files.push(entry.path());
        }
    }
    for entry in std::fs::read_dir(home.file("locks")).unwrap().flatten() {
        files.push(entry.path());
    }
    assert!(files.len() >= 4, "{files:?}");
    for file in files {
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }
}

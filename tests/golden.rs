//! What scripts and admins read, byte for byte: `status --json`, `doctor --json --offline` and
//! the HTML report of a home in a known state, against files recorded in `tests/golden/`.
//! Values that depend on the moment or the machine are masked by shape (every digit of a
//! timestamp becomes `D`, so a change of format still shows); the home's paths and id are
//! named. `LATCH_UPDATE_GOLDEN=1` rewrites the files.

use std::path::PathBuf;

use crate::support::{require_secret_service, Home};

/// Latch's own timestamp form (`2026-12-06T06:24:33Z`), and any other RFC 3339 form near it, so
/// that a changed format stands out instead of being masked away.
fn mask_times(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < bytes.len() {
        // YYYY-MM-DDTHH:MM:SS
        let stamp = bytes.len() >= i + 19
            && bytes[i..i + 19].iter().enumerate().all(|(k, b)| match k {
                4 | 7 => *b == b'-',
                10 => *b == b'T',
                13 | 16 => *b == b':',
                _ => b.is_ascii_digit(),
            });
        if stamp {
            out.push_str("DDDD-DD-DDTDD:DD:DD");
            i += 19;
            // Fractions and offsets keep their shape.
            while i < bytes.len() && (bytes[i].is_ascii_digit() || b".+-:".contains(&bytes[i])) {
                out.push(if bytes[i].is_ascii_digit() {
                    'D'
                } else {
                    bytes[i] as char
                });
                i += 1;
            }
            continue;
        }
        let c = text[i..].chars().next().unwrap_or_default();
        out.push(c);
        i += c.len_utf8();
    }
    out
}

fn mask(home: &Home, home_id: &str, text: &str) -> String {
    mask_relative(&mask_times(text))
        .replace(&home.path().display().to_string(), "$HOME")
        .replace(home_id, "$HOME_ID")
}

/// The report's "(in 40 min)", "(2 days ago)": how far a time is from the report's making moves
/// with the seconds the test takes (`doctor` tests read them); the golden keeps where they are.
fn mask_relative(text: &str) -> String {
    const OPEN: &str = "<span class=\"ago\">(";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(OPEN) {
        let after = &rest[at + OPEN.len()..];
        let Some(close) = after.find(')') else { break };
        out.push_str(&rest[..at + OPEN.len()]);
        out.push('…');
        rest = &after[close..];
    }
    out.push_str(rest);
    out
}

fn golden(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name)
}

fn check(name: &str, actual: &str) {
    let path = golden(name);
    if std::env::var_os("LATCH_UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (LATCH_UPDATE_GOLDEN=1 records it)", path.display()));
    if expected != actual {
        let at = expected
            .lines()
            .zip(actual.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| expected.lines().count().min(actual.lines().count()));
        panic!(
            "{name} differs from {} at line {}:\n  expected: {}\n  actual:   {}",
            path.display(),
            at + 1,
            expected.lines().nth(at).unwrap_or("<end>"),
            actual.lines().nth(at).unwrap_or("<end>"),
        );
    }
}

/// A home with every credential kind and state the status shows: a signed-in provider with an
/// extra and a missing scope, an unbound connector, a service account, an API token with an
/// expiry near, a Data Center PAT never stored, an Opsgenie key that was refused.
fn known_home() -> (Home, String) {
    require_secret_service();
    let home = Home::new();
    std::fs::write(
        home.file("latch.toml"),
        "[proxy]\n# Nothing listens here: doctor sees a free port.\nlisten = \"127.0.0.1:1\"\n",
    )
    .unwrap();
    home.ok(
        &[
            "provider",
            "add",
            "atlassian",
            "--client-id",
            "golden-client",
        ],
        "golden-client-secret\n",
    );
    home.ok(
        &[
            "provider",
            "add",
            "corp",
            "--preset",
            "jira-dc",
            "--base-url",
            "https://jira.corp.example",
        ],
        "",
    );
    home.ok(&["connector", "add", "jira", "--site", "acme"], "");
    home.ok(&["connector", "add", "confluence"], "");
    home.ok(
        &[
            "connector",
            "add",
            "jira-svc",
            "--type",
            "jira",
            "--auth",
            "service",
            "--client-id",
            "svc-client",
            "--site",
            "acme",
        ],
        "",
    );
    home.ok(
        &[
            "connector",
            "add",
            "jira-tok",
            "--type",
            "jira",
            "--auth",
            "api-token",
            "--email",
            "me@example.com",
            "--site",
            "acme",
        ],
        "",
    );
    home.ok(
        &[
            "connector",
            "add",
            "corp-jira",
            "--type",
            "jira-dc",
            "--provider",
            "corp",
            "--auth",
            "pat",
        ],
        "",
    );
    home.ok(&["connector", "add", "ops", "--type", "opsgenie"], "");
    let status = home.json(&["status", "--json"]);
    let home_id = status["home"]["id"].as_str().unwrap().to_owned();

    // What sign-ins, token requests and checks would have recorded, at times relative to now
    // (a day ago, in forty minutes, in ten days) so that no finding appears or fades with the
    // calendar.
    let db = rusqlite::Connection::open(home.file("latch.db")).unwrap();
    let at = |offset: i64| {
        latch_store::format_time(time::OffsetDateTime::now_utc() + time::Duration::seconds(offset))
    };
    let day = 86_400;
    db.execute(
        "INSERT INTO grants (id, kind, state, account_id, account_name, account_email,
             granted_scopes, obtained_at, refreshed_at, access_issued_at, access_expires_at,
             generation, last_error, consecutive_failures)
         VALUES ('user:atlassian', 'user', 'ok', '5b10ac8d82e05b22cc7d4ef5', 'Mia Krystof',
             'mia@example.com', 'read:me read:jira-user read:jira-work write:jira-work offline_access manage:jira-project',
             ?1, ?2, ?3, ?4, 7, NULL, 0)",
        rusqlite::params![at(-3 * day), at(-day), at(-1200), at(2400)],
    )
    .unwrap();
    db.execute(
        "INSERT INTO sites (grant_id, cloud_id, name, url, scopes) VALUES
             ('user:atlassian', '11111111-2222-3333-4444-555555555555', 'acme',
              'https://acme.atlassian.net', 'read:jira-work write:jira-work'),
             ('user:atlassian', '66666666-7777-8888-9999-000000000000', 'beta',
              'https://beta.atlassian.net', 'read:jira-work')",
        [],
    )
    .unwrap();
    db.execute(
        "INSERT INTO grants (id, kind, state, granted_scopes, obtained_at, access_issued_at,
             access_expires_at, generation, last_error, last_failure_at, consecutive_failures)
         VALUES ('service:jira-svc', 'service', 'credential_rejected', '', ?1, ?1, ?2, 1,
             'the provider refused the client credentials: invalid_client', ?3, 2)",
        rusqlite::params![at(-2 * day), at(-2 * day + 3600), at(-600)],
    )
    .unwrap();
    for (name, state, expires, kind, error) in [
        ("jira-svc", None, None, None, None),
        (
            "jira-tok",
            Some("ok"),
            Some(at(10 * day)),
            Some("scoped"),
            None,
        ),
        (
            "ops",
            Some("rejected"),
            None,
            None,
            Some("the health probe answered HTTP 401"),
        ),
    ] {
        db.execute(
            "UPDATE connectors SET credential_stored_at = ?2, credential_state = ?3,
                 credential_checked_at = ?4, credential_error = ?5, credential_expires_at = ?6,
                 token_kind = ?7
             WHERE name = ?1",
            rusqlite::params![
                name,
                at(-5 * day),
                state,
                state.map(|_| at(-5 * day + 5)),
                error,
                expires,
                kind
            ],
        )
        .unwrap();
    }
    drop(db);
    (home, home_id)
}

#[test]
fn status_doctor_and_the_report_read_as_recorded() {
    let (home, home_id) = known_home();
    let status = home.ok(&["status", "--json"], "");
    check("status.json", &mask(&home, &home_id, &status));
    let report = home.file("report.html");
    let out = home.run(
        &[
            "doctor",
            "--json",
            "--offline",
            "--report",
            report.to_str().unwrap(),
        ],
        "",
    );
    // Unhealthy on purpose: exit 1, with the report still written.
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    check(
        "doctor.json",
        &mask(&home, &home_id, &String::from_utf8(out.stdout).unwrap()),
    );
    let html = std::fs::read_to_string(&report).unwrap();
    check("report.html", &mask(&home, &home_id, &html));
}

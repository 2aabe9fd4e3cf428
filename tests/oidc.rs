//! Any OAuth 2.0 / OpenID Connect provider through a manifest that gives just its `issuer`:
//! Latch reads the discovery document (authorize, token, revocation, userinfo, PKCE) from the
//! fixture's oidc-provider. Seed 001's shape — client credentials against a third-party
//! provider with optional `openid email profile` scopes — and a person's sign-in.

use crate::support::{curl, run_with_stdin, stderr, stdout, Fixture, Home, Serve};

const OIDC_CLIENT_ID: &str = "oidc-generic-client";
const OIDC_CLIENT_SECRET: &str = "oidc-generic-secret-fixture-95";

fn manifest(fixture: &Fixture, issuer: &str) -> String {
    format!(
        r#"[providers.acme-idp]
display_name = "Acme identity provider"
vocabulary = "generic"
client_type = "confidential"
issuer = "{issuer}"
token_request = "form"
token_auth = "basic"
api_base = "{base}/api"
default_redirect_uri = "{redirect}"

# This server keeps `offline_access` (a refresh token) only with prompt=consent.
[providers.acme-idp.authorize_params]
prompt = "consent"

[connectors.acme-api]
display_name = "Acme API"
provider = "acme-idp"
upstream_scopes = ["api:read", "offline_access"]
api_base = "{{api_base}}"
auth_modes = ["user", "service"]
probe = {{ method = "GET", path = "/whoami" }}
"#,
        base = fixture.base,
        redirect = fixture.redirect_uri,
    )
}

#[test]
fn a_provider_given_only_its_issuer_serves_scripts_and_people() {
    let fixture = Fixture::start();
    let home = Home::new();
    let file = home.file("acme.toml");
    std::fs::write(&file, manifest(&fixture, &fixture.base)).unwrap();
    home.ok(&["manifest", "add", file.to_str().unwrap()], "");

    // Seed 001: a service connector with optional OIDC scopes, no browser.
    home.ok(
        &[
            "connector",
            "add",
            "acme-svc",
            "--type",
            "acme-api",
            "--auth",
            "service",
            "--client-id",
            OIDC_CLIENT_ID,
            "--scope",
            "openid",
            "--scope",
            "email",
            "--scope",
            "profile",
        ],
        "",
    );
    let out = home.ok(
        &["credential", "set", "acme-svc", "--json"],
        OIDC_CLIENT_SECRET,
    );
    let stored: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(stored["check"]["result"], "ok", "{stored}");
    // The document is cached in the database.
    let db = rusqlite::Connection::open(home.file("latch.db")).unwrap();
    let cached: String = db
        .query_row(
            "SELECT value FROM meta WHERE key = ?1",
            [format!("discovery:{}", fixture.base)],
            |r| r.get(0),
        )
        .unwrap();
    assert!(cached.contains("token_endpoint"), "{cached}");

    // A person signs in through the discovered authorize endpoint (PKCE S256, as advertised).
    home.ok(
        &[
            "provider",
            "add",
            "acme-idp",
            "--client-id",
            OIDC_CLIENT_ID,
            "--redirect-uri",
            &fixture.redirect_uri,
        ],
        OIDC_CLIENT_SECRET,
    );
    home.ok(&["connector", "add", "acme-api"], "");
    let out = run_with_stdin(
        home.browser_cmd(&["login", "acme-idp", "--timeout", "60"]),
        "",
    );
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let status = home.json(&["status", "--json"]);
    let acme = status["connectors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "acme-api")
        .unwrap();
    assert_eq!(acme["state"], "ok", "{acme}");

    let k = home
        .ok(
            &[
                "keys",
                "create",
                "k",
                "--connector",
                "acme-svc",
                "--connector",
                "acme-api",
            ],
            "",
        )
        .trim()
        .to_owned();
    let serve = Serve::start(&home);
    let auth = format!("Authorization: Bearer {k}");
    let (status, body) = curl(&["-H", &auth, &serve.url("/acme-svc/things")]);
    assert_eq!(status, 200, "{body}");
    let echoed: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        echoed["scopes"],
        serde_json::json!(["openid", "email", "profile"])
    );
    let (status, body) = curl(&["-H", &auth, &serve.url("/acme-api/things")]);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("api:read"), "{body}");
    drop(serve);
    // A refresh goes to the discovered token endpoint too.
    home.ok(&["token", "acme-api", "--refresh"], "");
}

/// An issuer whose discovery document is not there: the error names discovery and `issuer`.
#[test]
fn a_wrong_issuer_says_discovery_failed() {
    let fixture = Fixture::start();
    let home = Home::new();
    let file = home.file("acme.toml");
    std::fs::write(
        &file,
        manifest(&fixture, &format!("{}/not-an-issuer", fixture.base)),
    )
    .unwrap();
    home.ok(&["manifest", "add", file.to_str().unwrap()], "");
    home.ok(
        &[
            "connector",
            "add",
            "acme-svc",
            "--type",
            "acme-api",
            "--auth",
            "service",
            "--client-id",
            OIDC_CLIENT_ID,
        ],
        "",
    );
    let out = home.ok(
        &["credential", "set", "acme-svc", "--json"],
        OIDC_CLIENT_SECRET,
    );
    let stored: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(stored["check"]["result"], "unchecked", "{stored}");
    let detail = stored["check"]["detail"].as_str().unwrap();
    assert!(detail.contains("OpenID discovery"), "{detail}");
    assert!(detail.contains("issuer"), "{detail}");
}

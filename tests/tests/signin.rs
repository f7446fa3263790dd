//! People signing in to the web UI, end to end: a real OpenID provider
//! (node-oidc-provider from npm, OpenID Certified, started here on a
//! loopback port by `ui/e2e/oidc-provider.mjs`), `smolder serve` with tokens
//! required and `[oidc]` pointing at it, and headless Chromium driven by
//! `ui/e2e/signin.test.mjs`: sign-in with the authorization code flow and
//! PKCE, roles from the ID token's `groups` claim, the session cookie's
//! attributes, a viewer refused a silence, CSRF and cross-origin refusals,
//! sign-out at smolder and the provider, an expired session, and signing in
//! with an API token.

use std::io::{BufRead as _, BufReader, Write as _};
use std::process::{Command, Stdio};

use smolder_tests::{Server, browser_prerequisites, create_token, http_request};

#[test]
fn people_sign_in_through_a_real_openid_provider_in_a_browser() {
    let (ui, chromium) = browser_prerequisites();
    assert!(
        ui.join("node_modules/oidc-provider").is_dir(),
        "oidc-provider is missing: run `npm ci` in ui/ (scripts/test.sh does)"
    );
    let users = r#"{"alice": ["smolder:default:viewer", "other:admin"],
                    "erin": ["smolder:default:editor"],
                    "nobody": ["other:admin"]}"#;
    let mut provider = Command::new("node")
        .arg(ui.join("e2e/oidc-provider.mjs"))
        .args(["smolder", "provider-test-secret", users])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting node");
    let mut lines = BufReader::new(provider.stdout.take().unwrap()).lines();
    let issuer = lines
        .next()
        .expect("the provider prints its issuer")
        .unwrap()
        .strip_prefix("issuer ")
        .expect("`issuer URL`")
        .to_string();

    let dir = tempfile::tempdir().unwrap();
    let read_token = create_token(dir.path(), "default", "read");
    let admin_token = create_token(dir.path(), "default", "admin");
    let server = Server::start_in(
        dir.path(),
        &[
            "--auth",
            "required",
            "--oidc-issuer",
            &issuer,
            "--oidc-client-id",
            "smolder",
            "--oidc-client-secret",
            "provider-test-secret",
            "--oidc-session-ttl",
            "20s",
        ],
    );
    // The provider learns smolder's callback once smolder listens.
    let mut stdin = provider.stdin.take().unwrap();
    writeln!(stdin, "http://{}/auth/callback", server.http).unwrap();
    let registered = lines.next().unwrap().unwrap();
    assert!(registered.starts_with("client smolder "), "{registered}");

    let artifacts = ui.join("e2e/artifacts");
    let out = Command::new("node")
        .arg(ui.join("e2e/signin.test.mjs"))
        .arg(&artifacts)
        .env("SMOLDER_URL", format!("http://{}", server.http))
        .env("ISSUER", &issuer)
        .env("READ_TOKEN", &read_token)
        .env("CHROMIUM", &chromium)
        .output()
        .expect("running node");
    drop(stdin);
    let _ = provider.kill();
    let _ = provider.wait();
    assert!(
        out.status.success(),
        "the sign-in test failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // The editor's silence is in the audit log under her subject.
    let (status, audit) = http_request(
        server.http,
        "GET",
        "/api/v1/audit",
        &[("authorization", &format!("Bearer {admin_token}"))],
        b"",
    );
    assert_eq!(status, 200, "{audit}");
    let audit: serde_json::Value = serde_json::from_str(&audit).unwrap();
    assert!(
        audit["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| { e["actor"] == "user:erin" && e["action"] == "POST /api/v1/silences" }),
        "{audit:#}"
    );
}

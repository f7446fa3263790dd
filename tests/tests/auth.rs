//! Authentication against the real binary: tokens made with `smolder token`
//! beside the running server, and every kind of route of every listener
//! called by every kind of caller.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use smolder_tests::{Server, http_request, smolder_bin};

/// `smolder token create …`: the token, alone on the last line.
fn create(dir: &Path, tenant: &str, scope: &str, expires: Option<&str>) -> String {
    let mut cmd = Command::new(smolder_bin());
    cmd.args(["token", "create", "--data-dir"])
        .arg(dir)
        .args(["--tenant", tenant, "--scope", scope]);
    if let Some(e) = expires {
        cmd.args(["--expires", e]);
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    stdout.lines().last().unwrap().trim().to_string()
}

fn id_of(token: &str) -> &str {
    token
        .strip_prefix("smd_")
        .and_then(|t| t.split('_').next())
        .unwrap()
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Needs {
    Nothing,
    Ingest,
    Read,
    Write,
    Admin,
}

#[test]
fn every_route_answers_each_caller_by_the_scope_of_its_token() {
    let dir = tempfile::tempdir().unwrap();
    let expired = create(dir.path(), "default", "admin", Some("1s"));
    let revoked = create(dir.path(), "default", "admin", None);
    let out = Command::new(smolder_bin())
        .args(["token", "revoke", id_of(&revoked), "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let callers: Vec<(&str, Option<String>, Option<Needs>)> = vec![
        ("no token", None, None),
        ("a bad token", Some("smd_000000000000_nope".into()), None),
        ("an expired token", Some(expired), None),
        ("a revoked token", Some(revoked), None),
        (
            "ingest",
            Some(create(dir.path(), "default", "ingest", None)),
            Some(Needs::Ingest),
        ),
        (
            "read",
            Some(create(dir.path(), "default", "read", None)),
            Some(Needs::Read),
        ),
        (
            "write",
            Some(create(dir.path(), "default", "write", Some("1h"))),
            Some(Needs::Write),
        ),
        (
            "admin",
            Some(create(dir.path(), "default", "admin", None)),
            Some(Needs::Admin),
        ),
        (
            "another tenant's admin",
            Some(create(dir.path(), "team-b", "admin", None)),
            Some(Needs::Admin),
        ),
    ];
    // The expired token's second has passed by now (five processes later),
    // but make sure.
    std::thread::sleep(Duration::from_millis(1100));
    let server = Server::start_in(dir.path(), &["--auth", "required"]);
    let silence = br#"{"matchers":["slo=\"x\""],"duration":"1h","created_by":"test"}"#;
    let json = ("content-type", "application/json");
    // (method, path, content type, body, scope needed, on the OTLP listener)
    type Route<'a> = (
        &'a str,
        &'a str,
        Option<(&'a str, &'a str)>,
        &'a [u8],
        Needs,
        bool,
    );
    let routes: Vec<Route<'_>> = vec![
        ("GET", "/healthz", None, b"", Needs::Nothing, false),
        ("GET", "/readyz", None, b"", Needs::Nothing, false),
        ("GET", "/slos", None, b"", Needs::Nothing, false),
        ("GET", "/metrics", None, b"", Needs::Read, false),
        ("GET", "/api/v1/slos", None, b"", Needs::Read, false),
        ("GET", "/api/v1/alerts", None, b"", Needs::Read, false),
        (
            "GET",
            "/api/v1/traces?limit=1",
            None,
            b"",
            Needs::Read,
            false,
        ),
        (
            "POST",
            "/api/v1/sql",
            Some(json),
            br#"{"sql": "SELECT 1"}"#,
            Needs::Read,
            false,
        ),
        (
            "POST",
            "/api/v1/silences",
            Some(json),
            silence,
            Needs::Write,
            false,
        ),
        (
            "DELETE",
            "/api/v1/slos/none",
            None,
            b"",
            Needs::Write,
            false,
        ),
        ("POST", "/-/reload", None, b"", Needs::Write, false),
        ("GET", "/api/v1/tokens", None, b"", Needs::Admin, false),
        (
            "POST",
            "/v1/traces",
            Some(("content-type", "application/x-protobuf")),
            b"",
            Needs::Ingest,
            true,
        ),
    ];
    for (caller, token, has) in &callers {
        let bearer = token.as_ref().map(|t| format!("Bearer {t}"));
        for (method, path, content_type, body, needs, otlp) in &routes {
            let mut headers: Vec<(&str, &str)> = content_type.iter().copied().collect();
            if let Some(b) = &bearer {
                headers.push(("authorization", b));
            }
            let addr = if *otlp { server.otlp_http } else { server.http };
            let (status, answer) = http_request(addr, method, path, &headers, body);
            // The server's own routes are the operator's, the default
            // tenant's (tests/tests/tenants.rs checks what another tenant
            // sees of the rest).
            let default_only = ["/metrics", "/api/v1/status", "/-/"]
                .iter()
                .any(|p| path.starts_with(p));
            let allowed = match (needs, has) {
                (Needs::Nothing, _) => true,
                _ if *caller == "another tenant's admin" && default_only => false,
                (_, Some(Needs::Admin)) => true,
                (n, Some(h)) => n == h,
                (_, None) => false,
            };
            let what = format!("{caller} → {method} {path}: {status} {answer}");
            if allowed {
                assert!(status != 401 && status != 403, "{what}");
            } else if has.is_some() {
                assert_eq!(status, 403, "{what}");
                assert!(answer.contains("permission_denied"), "{what}");
            } else {
                assert_eq!(status, 401, "{what}");
                assert!(answer.contains("unauthenticated"), "{what}");
            }
        }
    }
    // The admin API: make, list and revoke a token; secrets are never listed.
    let admin = format!("Bearer {}", callers[7].1.as_ref().unwrap());
    let (status, made) = http_request(
        server.http,
        "POST",
        "/api/v1/tokens",
        &[json, ("authorization", &admin)],
        br#"{"tenant": "team-c", "scopes": ["read"], "expires": "1d"}"#,
    );
    assert_eq!(status, 201, "{made}");
    let made: serde_json::Value = serde_json::from_str(&made).unwrap();
    let new = made["token"].as_str().unwrap().to_string();
    let (status, listed) = http_request(
        server.http,
        "GET",
        "/api/v1/tokens",
        &[("authorization", &admin)],
        b"",
    );
    assert_eq!(status, 200);
    assert!(
        listed.contains("team-c") && !listed.contains(&new[20..]),
        "{listed}"
    );
    let reader = format!("Bearer {new}");
    let get = |auth: &str| {
        http_request(
            server.http,
            "GET",
            "/api/v1/traces?limit=1",
            &[("authorization", auth)],
            b"",
        )
        .0
    };
    assert_eq!(get(&reader), 200);
    let (status, _) = http_request(
        server.http,
        "DELETE",
        &format!("/api/v1/tokens/{}", id_of(&new)),
        &[("authorization", &admin)],
        b"",
    );
    assert_eq!(status, 204);
    assert_eq!(get(&reader), 401, "a revoked token is refused at once");

    // Every change is in the audit log with who made it; reads and refused
    // attempts are not.
    let (status, audit) = http_request(
        server.http,
        "GET",
        "/api/v1/audit?limit=1000",
        &[("authorization", &admin)],
        b"",
    );
    assert_eq!(status, 200, "{audit}");
    let audit: serde_json::Value = serde_json::from_str(&audit).unwrap();
    let entries = audit["entries"].as_array().unwrap();
    let actions: Vec<(&str, &str)> = entries
        .iter()
        .map(|e| (e["actor"].as_str().unwrap(), e["action"].as_str().unwrap()))
        .collect();
    let writer = id_of(callers[6].1.as_ref().unwrap());
    let admin_id = id_of(callers[7].1.as_ref().unwrap());
    for want in [
        (writer, "POST /api/v1/silences"),
        (admin_id, "POST /api/v1/silences"),
        (admin_id, "POST /api/v1/tokens (token "),
        (admin_id, "DELETE /api/v1/tokens/".to_string().as_str()),
    ] {
        assert!(
            actions
                .iter()
                .any(|(a, act)| *a == want.0 && act.starts_with(want.1)),
            "{want:?} not in {actions:?}"
        );
    }
    assert!(
        actions
            .iter()
            .any(|(a, act)| *a == "local" && act.starts_with("token revoke"))
    );
    assert!(
        !actions
            .iter()
            .any(|(_, act)| act.contains("/api/v1/sql") || act.starts_with("GET"))
    );
    assert_eq!(
        actions
            .iter()
            .filter(|(_, act)| *act == "POST /api/v1/silences")
            .count(),
        3,
        "only the write and admin tokens (and another tenant's admin, in its own tenant) made silences: {actions:?}"
    );
    assert!(
        entries
            .iter()
            .all(|e| e["remote"].as_str().unwrap().starts_with("127.0.0.1:")
                || e["actor"] == "local")
    );
}

#[test]
fn a_token_made_beside_a_running_server_works_within_two_seconds() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_in(dir.path(), &["--auth", "required"]);
    let token = create(dir.path(), "default", "read", None);
    let made = Instant::now();
    let bearer = format!("Bearer {token}");
    loop {
        let (status, body) = http_request(
            server.http,
            "GET",
            "/api/v1/slos",
            &[("authorization", &bearer)],
            b"",
        );
        if status == 200 {
            break;
        }
        assert_eq!(status, 401, "{body}");
        assert!(
            made.elapsed() < Duration::from_secs(2),
            "not accepted after 2 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test]
async fn grpc_exports_need_an_ingest_token_in_the_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let ingest = create(dir.path(), "default", "ingest", None);
    let read = create(dir.path(), "default", "read", None);
    let server = Server::start_in(dir.path(), &["--auth", "required"]);
    let mut client = TraceServiceClient::connect(server.otlp_grpc_url())
        .await
        .unwrap();
    let export = |token: Option<&str>| {
        let mut request = tonic::Request::new(ExportTraceServiceRequest::default());
        if let Some(t) = token {
            request
                .metadata_mut()
                .insert("authorization", format!("Bearer {t}").parse().unwrap());
        }
        request
    };
    let err = client.export(export(None)).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unauthenticated, "{err:?}");
    let err = client.export(export(Some("smd_1_2"))).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unauthenticated, "{err:?}");
    let err = client.export(export(Some(&read))).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::PermissionDenied, "{err:?}");
    client.export(export(Some(&ingest))).await.unwrap();
}

#[test]
fn loadgen_fails_when_not_one_request_was_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let token = smolder_tests::create_token(dir.path(), "default", "ingest");
    let server = Server::start_in(dir.path(), &["--auth", "required"]);
    let loadgen = |extra: &[&str]| {
        Command::new(smolder_bin())
            .args(["loadgen", "--endpoint"])
            .arg(server.otlp_grpc_url())
            .args(["--requests", "3", "--batch-size", "5"])
            .args(extra)
            .output()
            .unwrap()
    };
    // The token forgotten: every export is refused, and the exit code says so
    // after the report.
    let refused = loadgen(&[]);
    assert!(!refused.status.success(), "{refused:?}");
    let stdout = String::from_utf8_lossy(&refused.stdout);
    assert!(stdout.contains("failed=3"), "{stdout}");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("every one of the 3 requests failed") && stderr.contains("Unauthenticated"),
        "{stderr}"
    );
    assert!(loadgen(&["--token", &token]).status.success());
}

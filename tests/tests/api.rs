//! The HTTP API and the command line of the real binary: SQL answers and
//! errors, Arrow IPC, health checks, `--help` and configuration files.

use std::io::Cursor;
use std::process::Command;

use datafusion::arrow::ipc::reader::StreamReader;
use serde_json::json;
use smolder_tests::{Server, http_request, repo_root, smolder_bin};

#[test]
fn sql_answers_json_and_bad_sql_is_a_400_with_datafusion_s_message() {
    let server = Server::start(&[]);
    let answer = server.sql("SELECT 1 AS one, 'a' AS letter");
    assert_eq!(
        answer["columns"],
        json!([{"name": "one", "type": "Int64"}, {"name": "letter", "type": "Utf8"}])
    );
    assert_eq!(answer["rows"], json!([[1, "a"]]));
    assert_eq!(answer["truncated"], json!(false));

    let (status, body) = server.sql_status("SELECT no_such_column FROM spans");
    assert_eq!(status, 400);
    assert!(
        body["error"].as_str().unwrap().contains("no_such_column"),
        "{body}"
    );
    let (status, body) = server.sql_status("DROP TABLE spans");
    assert_eq!(status, 400);
    assert!(
        body["error"].as_str().unwrap().contains("read-only"),
        "{body}"
    );
    let (status, _) = http_request(
        server.http,
        "POST",
        "/api/v1/sql",
        &[("content-type", "application/json")],
        b"{\"query\":1}",
    );
    assert_eq!(status, 422, "a body without `sql` is refused");
    // The server is still there.
    assert_eq!(server.scalar("SELECT 2"), json!(2));
}

#[test]
fn sql_answers_arrow_ipc_on_request() {
    let server = Server::start(&[]);
    let body = json!({"sql": "SELECT * FROM generate_series(1, 3)"}).to_string();
    let (status, _) = http_request(
        server.http,
        "POST",
        "/api/v1/sql",
        &[
            ("content-type", "application/json"),
            ("accept", "application/vnd.apache.arrow.stream"),
        ],
        body.as_bytes(),
    );
    assert_eq!(status, 200);
    // The helper returns text; fetch the raw bytes over a plain socket instead.
    let bytes = raw_post(&server, &body);
    let reader = StreamReader::try_new(Cursor::new(bytes), None).unwrap();
    let rows: usize = reader.map(|b| b.unwrap().num_rows()).sum();
    assert_eq!(rows, 3);
}

fn raw_post(server: &Server, body: &str) -> Vec<u8> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(server.http).unwrap();
    write!(
        s,
        "POST /api/v1/sql HTTP/1.1\r\nhost: {}\r\nconnection: close\r\ncontent-type: application/json\r\n\
         accept: application/vnd.apache.arrow.stream\r\ncontent-length: {}\r\n\r\n{body}",
        server.http,
        body.len()
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    assert!(
        head.contains("content-type: application/vnd.apache.arrow.stream"),
        "{head}"
    );
    assert!(
        head.contains("content-length"),
        "expected a sized body: {head}"
    );
    raw[split + 4..].to_vec()
}

#[test]
fn health_and_metrics_endpoints() {
    let server = Server::start(&[]);
    assert_eq!(
        http_request(server.http, "GET", "/healthz", &[], b"").0,
        200
    );
    assert_eq!(http_request(server.http, "GET", "/readyz", &[], b"").0, 200);
    let (status, text) = http_request(server.http, "GET", "/metrics", &[], b"");
    assert_eq!(status, 200);
    for metric in [
        "smolder_buffer_bytes",
        "smolder_buffer_limit_bytes 1073741824",
        "smolder_ingest_inflight_bytes 0",
        "smolder_buffer_rows{table=\"spans\"} 0",
        "# TYPE smolder_storage_flushes counter",
        "smolder_storage_flushes_total 0",
        "smolder_storage_files_expired_total 0",
        "smolder_memory_reserved_bytes{consumer=\"query\"}",
        "smolder_build_info",
        "# EOF",
    ] {
        assert!(
            text.contains(metric),
            "{metric} missing from /metrics:\n{text}"
        );
    }
}

#[test]
fn help_documents_every_option_with_its_environment_variable() {
    let out = Command::new(smolder_bin())
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    for (flag, env) in [
        ("--config", "SMOLDER_CONFIG"),
        ("--data-dir", "SMOLDER_DATA_DIR"),
        ("--otlp-grpc-addr", "SMOLDER_OTLP_GRPC_ADDR"),
        ("--otlp-http-addr", "SMOLDER_OTLP_HTTP_ADDR"),
        ("--http-addr", "SMOLDER_HTTP_ADDR"),
        ("--max-request-size", "SMOLDER_MAX_REQUEST_SIZE"),
        ("--buffer-limit", "SMOLDER_BUFFER_LIMIT"),
        ("--retry-after", "SMOLDER_RETRY_AFTER"),
        ("--query-max-rows", "SMOLDER_QUERY_MAX_ROWS"),
        ("--query-timeout", "SMOLDER_QUERY_TIMEOUT"),
        ("--query-memory-limit", "SMOLDER_QUERY_MEMORY_LIMIT"),
        ("--log-format", "SMOLDER_LOG_FORMAT"),
    ] {
        assert!(
            help.contains(flag) && help.contains(env),
            "{flag} / {env} missing from --help:\n{help}"
        );
    }
    for sub in ["demo", "loadgen"] {
        let out = Command::new(smolder_bin())
            .args([sub, "--help"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{sub} --help");
    }
}

#[test]
fn the_example_config_runs_and_flags_override_it() {
    let example = repo_root().join("smolder.example.toml");
    let server = Server::start(&[
        "--config",
        example.to_str().unwrap(),
        "--query-max-rows",
        "2",
    ]);
    let answer = server.sql("SELECT * FROM generate_series(1, 10)");
    assert_eq!(answer["row_count"], json!(2));
    assert_eq!(answer["truncated"], json!(true));
}

#[test]
fn environment_variables_override_the_file_and_bad_files_name_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[query]\nmax_rowz = 3\n").unwrap();
    let out = Command::new(smolder_bin())
        .args([
            "serve",
            "--config",
            bad.to_str().unwrap(),
            "--http-addr",
            "127.0.0.1:0",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("max_rowz"), "{stderr}");

    let good = dir.path().join("good.toml");
    std::fs::write(&good, "[query]\nmax_rows = 3\n").unwrap();
    let server = Server::start_with_env(
        &["--config", good.to_str().unwrap()],
        &[("SMOLDER_QUERY_MAX_ROWS", "4")],
    );
    assert_eq!(
        server.sql("SELECT * FROM generate_series(1, 10)")["row_count"],
        json!(4)
    );
}

#[test]
fn config_defaults_print_the_example_and_config_check_lists_every_problem() {
    let out = Command::new(smolder_bin())
        .args(["config", "defaults"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let example = std::fs::read_to_string(repo_root().join("smolder.example.toml")).unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), example);

    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.toml");
    std::fs::write(&good, "[query]\ntimeout = \"10s\"\n").unwrap();
    let out = Command::new(smolder_bin())
        .args(["config", "check", good.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("ok"));

    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[slo]\ninterval = \"10ms\"\nmax_groups = 0\n[retention]\ntraces = \"5m\"\n",
    )
    .unwrap();
    let out = Command::new(smolder_bin())
        .args(["config", "check", bad.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    for problem in [
        "3 problems",
        "retention.traces: must be at least 1h",
        "slo.interval: must be at least 1s",
        "slo.max_groups: must be positive",
    ] {
        assert!(err.contains(problem), "{problem} missing from:\n{err}");
    }
    // Flags are checked with the file, and named when they are wrong.
    let out = Command::new(smolder_bin())
        .args([
            "config",
            "check",
            good.to_str().unwrap(),
            "--slo-step",
            "soon",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("slo.step (--slo-step)"), "{err}");
}

#[test]
fn a_reload_validates_every_section_and_names_the_options_that_need_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("smolder.toml");
    std::fs::write(&file, "[query]\ntimeout = \"20s\"\n").unwrap();
    let server = Server::start(&["--config", file.to_str().unwrap()]);
    let reload = || http_request(server.http, "POST", "/-/reload", &[], b"");

    let (status, body) = reload();
    assert_eq!((status, body.trim()), (200, "reloaded"));

    std::fs::write(&file, "[query]\ntimeout = \"5s\"\n[slo]\nmax_groups = 7\n").unwrap();
    let (status, body) = reload();
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("query.timeout") && body.contains("slo.max_groups"),
        "{body}"
    );

    std::fs::write(&file, "[slo]\ninterval = \"1ms\"\n").unwrap();
    let (status, body) = reload();
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("slo.interval: must be at least 1s"), "{body}");
    assert_eq!(server.scalar("SELECT 1"), json!(1), "the server runs on");
}

#[test]
fn every_api_error_is_json_with_a_stable_code() {
    let server = Server::start(&[]);
    let cases: [(&str, &str, &[u8], u16, &str); 7] = [
        (
            "POST",
            "/api/v1/sql",
            b"{\"query\": 1}",
            422,
            "invalid_argument",
        ),
        (
            "POST",
            "/api/v1/sql",
            b"{\"sql\": \"SELEC 1\"}",
            400,
            "invalid_argument",
        ),
        (
            "GET",
            "/api/v1/traces?limit=many",
            b"",
            400,
            "invalid_argument",
        ),
        ("GET", "/api/v1/slos/nope", b"", 404, "not_found"),
        (
            "GET",
            "/api/v1/slos/nope/series?from=x",
            b"",
            404,
            "not_found",
        ),
        ("DELETE", "/api/v1/silences/nope", b"", 404, "not_found"),
        ("GET", "/api/v1/no-such-endpoint", b"", 404, "not_found"),
    ];
    for (method, path, body, status, code) in cases {
        let (got, text) = http_request(
            server.http,
            method,
            path,
            &[("content-type", "application/json")],
            body,
        );
        assert_eq!(got, status, "{method} {path}: {text}");
        let answer: serde_json::Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{method} {path}: not JSON ({e}): {text}"));
        assert_eq!(answer["code"], json!(code), "{method} {path}: {text}");
        assert!(answer["error"].as_str().is_some_and(|e| !e.is_empty()));
    }
}

#[test]
fn a_browser_on_another_origin_or_name_cannot_change_anything() {
    let server = Server::start(&[]);
    let silence = br#"{"matchers":["slo=~\".+\""],"duration":"720h","created_by":"evil"}"#;
    let origin = format!("http://{}", server.http);
    // What `fetch(api + '/api/v1/silences', {method: 'POST', mode: 'no-cors',
    // headers: {'Content-Type': 'text/plain'}, body})` from another page sends.
    let no_cors = [
        ("content-type", "text/plain;charset=UTF-8"),
        ("origin", "https://evil.example"),
        ("sec-fetch-site", "cross-site"),
        ("sec-fetch-mode", "no-cors"),
    ];
    let (status, body) = http_request(server.http, "POST", "/api/v1/silences", &no_cors, silence);
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("\"code\":\"forbidden\""), "{body}");
    // The same with the right type but from the other origin.
    let json_from_evil = [
        ("content-type", "application/json"),
        ("origin", "https://evil.example"),
    ];
    for (method, path, body) in [
        ("POST", "/api/v1/silences", &silence[..]),
        ("POST", "/-/reload", b""),
        ("DELETE", "/api/v1/slos/x", b""),
        ("PUT", "/api/v1/slos/x", b"{}"),
        ("POST", "/api/v1/sql", b"{\"sql\": \"SELECT 1\"}"),
    ] {
        let (status, answer) = http_request(server.http, method, path, &json_from_evil, body);
        assert_eq!(status, 403, "{method} {path}: {answer}");
    }
    // DNS rebinding: a name that is not the server's.
    let (status, body) = http_request(
        server.http,
        "GET",
        "/api/v1/slos",
        &[("host", "evil.example:8080")],
        b"",
    );
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("allowed_hosts"), "{body}");
    // A script (no Origin) must still send the declared type.
    let (status, body) = http_request(
        server.http,
        "POST",
        "/api/v1/silences",
        &[("content-type", "text/plain")],
        silence,
    );
    assert_eq!(status, 415, "{body}");
    assert!(body.contains("application/json"), "{body}");
    let (status, body) = http_request(
        server.http,
        "PUT",
        "/api/v1/slos/x",
        &[("content-type", "application/x-www-form-urlencoded")],
        b"a=b",
    );
    assert_eq!(status, 415, "{body}");
    // Nothing was silenced; the UI's own same-origin requests still work.
    let (_, list) = http_request(server.http, "GET", "/api/v1/silences", &[], b"");
    assert!(list.contains("\"silences\":[]"), "{list}");
    let (status, body) = http_request(
        server.http,
        "POST",
        "/api/v1/sql",
        &[("content-type", "application/json"), ("origin", &origin)],
        b"{\"sql\": \"SELECT 1 AS one\"}",
    );
    assert_eq!(status, 200, "{body}");
}

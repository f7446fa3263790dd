//! The OpenTelemetry Python SDK's gRPC, HTTP/protobuf and HTTP/JSON exporters
//! (from PyPI) each send traces, metrics and logs to a real `smolder serve`;
//! the SQL API must then show exactly what they sent.

use serde_json::{Value, json};
use smolder_tests::Server;

/// Runs tests/python/export.py with `env` set: its status, stdout and stderr.
fn run_export(
    server: &Server,
    venv: &str,
    protocol: &str,
    run_id: &str,
    env: &[(&str, &str)],
) -> (bool, String, String) {
    let endpoint = match protocol {
        "grpc" => server.otlp_grpc_url(),
        _ => server.otlp_http_url(),
    };
    let out = smolder_tests::python_export_command(venv, &endpoint, protocol, run_id)
        .envs(env.iter().copied())
        .output()
        .expect("running tests/python/export.py");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

fn export(server: &Server, venv: &str, protocol: &str, run_id: &str) -> Value {
    let (ok, stdout, stderr) = run_export(server, venv, protocol, run_id, &[]);
    assert!(ok, "export.py --protocol {protocol} failed:\n{stderr}");
    assert!(
        !stderr.contains("Failed to export"),
        "exporter reported a failure:\n{stderr}"
    );
    serde_json::from_str(&stdout).expect("export.py prints JSON")
}

fn check(protocol: &str, venv: &str) {
    let server = Server::start(&[]);
    let run = format!("r{}", protocol.replace('/', "-"));
    let sent = export(&server, venv, protocol, &run);
    let service = format!("pysdk-{run}");
    let trace_id = sent["trace_id"].as_str().unwrap();
    let root_span_id = sent["root_span_id"].as_str().unwrap();

    // Spans: exact count, then field values.
    let count = server.wait_for_scalar(
        &format!("SELECT count(*) FROM spans WHERE service_name = '{service}'"),
        &json!(2),
    );
    assert_eq!(count, json!(2), "{protocol}: spans");
    let root = server.sql(&format!(
        "SELECT trace_id, span_id, name, kind, status_code, status_message, http_route, \
         http_response_status_code, attributes['retries'], attribute_types['retries'], \
         cardinality(events), resource_attributes['run.id'], scope_name, duration_ns >= 0 \
         FROM spans WHERE service_name = '{service}' AND parent_span_id IS NULL"
    ));
    assert_eq!(
        root["rows"],
        json!([[
            trace_id,
            root_span_id,
            "GET /pay",
            "SERVER",
            "ERROR",
            "card declined",
            "/pay",
            500,
            "2",
            "int",
            1,
            run,
            "smolder.e2e",
            true
        ]]),
        "{protocol}: root span"
    );
    let child = server.sql(&format!(
        "SELECT trace_id, parent_span_id, kind, status_code, attributes['db.system'] \
         FROM spans WHERE service_name = '{service}' AND parent_span_id IS NOT NULL"
    ));
    assert_eq!(
        child["rows"],
        json!([[trace_id, root_span_id, "CLIENT", "UNSET", "postgresql"]]),
        "{protocol}: child span"
    );
    let by_id = server.scalar(&format!(
        "SELECT count(*) FROM spans WHERE trace_id = '{trace_id}'"
    ));
    assert_eq!(by_id, json!(2), "{protocol}: spans by trace id");

    // Logs.
    let count = server.wait_for_scalar(
        &format!("SELECT count(*) FROM logs WHERE service_name = '{service}'"),
        &json!(2),
    );
    assert_eq!(count, json!(2), "{protocol}: logs");
    let logs = server.sql(&format!(
        "SELECT body, body_type, severity_number, severity_text, trace_id, span_id, attributes['order.id'] \
         FROM logs WHERE service_name = '{service}' ORDER BY severity_number DESC"
    ));
    assert_eq!(
        logs["rows"],
        json!([
            [
                "charge failed for order 42",
                "string",
                17,
                "ERROR",
                trace_id,
                root_span_id,
                "42"
            ],
            ["all done", "string", 9, "INFO", null, null, null]
        ]),
        "{protocol}: log records"
    );

    // Metrics: a counter by route, a histogram and a gauge.
    let count = server.wait_for_scalar(
        &format!("SELECT count(*) FROM metrics WHERE service_name = '{service}'"),
        &json!(4),
    );
    assert_eq!(count, json!(4), "{protocol}: metric points");
    let counter = server.sql(&format!(
        "SELECT attributes['http.route'], value_int, metric_type, temporality, is_monotonic, metric_unit \
         FROM metrics WHERE service_name = '{service}' AND metric_name = 'e2e.requests' ORDER BY 1"
    ));
    assert_eq!(
        counter["rows"],
        json!([
            ["/cart", 1, "sum", "cumulative", true, "{request}"],
            ["/pay", 2, "sum", "cumulative", true, "{request}"]
        ]),
        "{protocol}: counter"
    );
    let histogram = server.sql(&format!(
        "SELECT count, round(sum, 6), bucket_bounds[2], bucket_counts[2], cardinality(bucket_counts), min, max, temporality \
         FROM metrics WHERE service_name = '{service}' AND metric_name = 'e2e.duration'"
    ));
    assert_eq!(
        histogram["rows"],
        json!([[3, 0.324, 5.0, 3, 16, 0.004, 0.3, "cumulative"]]),
        "{protocol}: histogram"
    );
    let gauge = server.sql(&format!(
        "SELECT value, metric_type, attributes['queue'] FROM metrics \
         WHERE service_name = '{service}' AND metric_name = 'e2e.queue.depth'"
    ));
    assert_eq!(
        gauge["rows"],
        json!([[17.0, "gauge", "orders"]]),
        "{protocol}: gauge"
    );
}

#[test]
fn python_sdk_grpc_exporter() {
    check("grpc", ".venv-otel");
}

#[test]
fn python_sdk_http_protobuf_exporter() {
    check("http/protobuf", ".venv-otel");
}

#[test]
fn python_sdk_http_json_exporter() {
    check("http/json", ".venv-otel-json");
}

#[test]
fn python_sdk_exporters_send_the_token_of_otel_exporter_otlp_headers() {
    let dir = tempfile::tempdir().unwrap();
    let token = smolder_tests::create_token(dir.path(), "default", "ingest");
    let mut server = Server::start_in(dir.path(), &["--auth", "required"]);
    let header = format!("Authorization=Bearer {token}");
    for (protocol, run) in [("grpc", "tok-grpc"), ("http/protobuf", "tok-http")] {
        let (ok, _, stderr) = run_export(
            &server,
            ".venv-otel",
            protocol,
            run,
            &[("OTEL_EXPORTER_OTLP_HEADERS", &header)],
        );
        assert!(
            ok && !stderr.contains("Failed to export"),
            "{protocol}: {stderr}"
        );
    }
    // Without the header every export is refused.
    let (_, _, stderr) = run_export(&server, ".venv-otel", "grpc", "no-token", &[]);
    assert!(stderr.contains("Failed to export"), "{stderr}");
    // Read back on a loopback server without tokens, over the same data.
    server.stop();
    let server = Server::start_in(dir.path(), &[]);
    for service in ["pysdk-tok-grpc", "pysdk-tok-http"] {
        let sql = format!("SELECT count(*) FROM spans WHERE service_name = '{service}'");
        assert_eq!(
            server.wait_for_scalar(&sql, &json!(2)),
            json!(2),
            "{service}"
        );
    }
    assert_eq!(
        server.scalar("SELECT count(*) FROM spans WHERE service_name = 'pysdk-no-token'"),
        json!(0)
    );
}

//! Canned OTLP requests for tests, in `sample-data/fixtures/`:
//!
//! * `traces.json`, `logs.json`, `metrics.json` — hand-written OTLP/JSON that
//!   exercises the encoding's quirks (upper-case hex ids, 64-bit integers as
//!   strings, enum names, snake_case keys, unknown fields, omitted zero fields);
//! * `traces.pb`, `logs.pb`, `metrics.pb` — protobuf requests from the generator
//!   with seed [`SEED`] at [`START`], ten user requests; regenerate them with
//!   `cargo run -p smolder-sample-data --example write_fixtures`.

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;

use crate::Generator;

/// Seed of the protobuf fixtures.
pub const SEED: u64 = 7;
/// Start of the protobuf fixtures' clock: 2023-11-14T22:13:20Z.
pub const START: u64 = 1_700_000_000_000_000_000;

/// The requests the protobuf fixtures hold.
pub fn requests() -> (
    ExportTraceServiceRequest,
    ExportLogsServiceRequest,
    ExportMetricsServiceRequest,
) {
    let mut g = Generator::new(SEED, START);
    let telemetry = g.requests(10, 1_000_000_000);
    (telemetry.traces, telemetry.logs, g.metrics())
}

/// File names and contents of the protobuf fixtures.
pub fn protobuf() -> Vec<(&'static str, Vec<u8>)> {
    let (traces, logs, metrics) = requests();
    vec![
        ("traces.pb", traces.encode_to_vec()),
        ("logs.pb", logs.encode_to_vec()),
        ("metrics.pb", metrics.encode_to_vec()),
    ]
}

/// The path of a fixture file.
pub fn path(name: &str) -> std::path::PathBuf {
    let compiled = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    // A build cache shared by two checkouts (CARGO_TARGET_DIR outside the
    // clone) may hold this crate compiled in the other one: then find the
    // fixtures beside the crate whose tests run (cargo sets its directory).
    let dir = match std::env::var_os("CARGO_MANIFEST_DIR") {
        Some(running) if !compiled.is_dir() => std::path::PathBuf::from(running)
            .join("..")
            .join("sample-data")
            .join("fixtures"),
        _ => compiled,
    };
    dir.join(name)
}

/// A string attribute.
pub fn kv(key: &str, value: &str) -> opentelemetry_proto::tonic::common::v1::KeyValue {
    use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
        ..Default::default()
    }
}

/// An OpenSLO availability SLO `{service}-availability` over the spans of
/// `service` (good: status not `ERROR`), 99 %, 30 days rolling, with a
/// runbook at `https://runbooks.example.com/{service}`.
pub fn availability_slo(service: &str) -> String {
    format!(
        r#"
apiVersion: openslo/v1
kind: SLO
metadata:
  name: {service}-availability
  annotations:
    smolder.dev/runbook-url: https://runbooks.example.com/{service}
spec:
  service: {service}
  indicator:
    metadata:
      name: {service}-ok
    spec:
      ratioMetric:
        counter: true
        good:
          metricSource:
            type: smolder
            spec:
              table: spans
              filter: "service_name = '{service}' AND status_code <> 'ERROR'"
        total:
          metricSource:
            type: smolder
            spec:
              table: spans
              filter: "service_name = '{service}'"
  timeWindow:
    - duration: 30d
      isRolling: true
  budgetingMethod: Occurrences
  objectives:
    - target: 0.99
"#
    )
}

/// A server span `GET /` with trace id `id` twice and span id `id` (8 bytes
/// big-endian), from `start_ns` for `duration_ns`, failed or not.
pub fn server_span(
    id: u64,
    start_ns: i64,
    duration_ns: i64,
    failed: bool,
) -> opentelemetry_proto::tonic::trace::v1::Span {
    use opentelemetry_proto::tonic::trace::v1::{Span, Status, status};
    Span {
        trace_id: id.to_be_bytes().repeat(2),
        span_id: id.to_be_bytes().to_vec(),
        name: "GET /".into(),
        kind: 2,
        start_time_unix_nano: start_ns as u64,
        end_time_unix_nano: (start_ns + duration_ns) as u64,
        status: Some(Status {
            code: if failed {
                status::StatusCode::Error
            } else {
                status::StatusCode::Ok
            } as i32,
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// An export of hand-made `spans` of one service (`service.name` on the
/// resource), as protobuf bytes.
pub fn service_spans(
    service: &str,
    spans: Vec<opentelemetry_proto::tonic::trace::v1::Span>,
) -> Vec<u8> {
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans};
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![kv("service.name", service)],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
    .encode_to_vec()
}

#[cfg(test)]
mod tests {
    #[test]
    fn committed_protobuf_fixtures_are_up_to_date() {
        for (name, bytes) in super::protobuf() {
            let committed = std::fs::read(super::path(name)).unwrap();
            assert!(
                committed == bytes,
                "fixtures/{name} is stale: run cargo run -p smolder-sample-data --example write_fixtures"
            );
        }
    }
}

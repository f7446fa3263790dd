//! The Rust `opentelemetry-otlp` exporters (gRPC/tonic, HTTP/protobuf and
//! HTTP/JSON) send traces, metrics and logs to a real `smolder serve`; the SQL
//! API must then show exactly what they sent.

use opentelemetry::KeyValue;
use opentelemetry::logs::{AnyValue, LogRecord as _, Logger as _, LoggerProvider as _, Severity};
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry::trace::{
    Span as _, SpanKind, Status, TraceContextExt as _, Tracer as _, TracerProvider as _,
};
use opentelemetry_otlp::{
    LogExporter, MetricExporter, Protocol, SpanExporter, WithExportConfig as _,
};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::logs::SdkLoggerProvider;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::trace::SdkTracerProvider;
use serde_json::json;
use smolder_tests::Server;

#[derive(Clone, Copy, Debug)]
enum Transport {
    Grpc,
    HttpProtobuf,
    HttpJson,
}

struct Exporters {
    spans: SpanExporter,
    metrics: MetricExporter,
    logs: LogExporter,
}

fn exporters(server: &Server, transport: Transport) -> Exporters {
    // The workspace builds reqwest (which the HTTP exporters use) with rustls
    // and no default crypto provider; smolder installs ring at start, and so
    // must any other program built with it.
    let _ = rustls::crypto::ring::default_provider().install_default();
    match transport {
        Transport::Grpc => {
            let url = server.otlp_grpc_url();
            Exporters {
                spans: SpanExporter::builder()
                    .with_tonic()
                    .with_endpoint(&url)
                    .build()
                    .unwrap(),
                metrics: MetricExporter::builder()
                    .with_tonic()
                    .with_endpoint(&url)
                    .build()
                    .unwrap(),
                logs: LogExporter::builder()
                    .with_tonic()
                    .with_endpoint(&url)
                    .build()
                    .unwrap(),
            }
        }
        Transport::HttpProtobuf | Transport::HttpJson => {
            let protocol = match transport {
                Transport::HttpJson => Protocol::HttpJson,
                _ => Protocol::HttpBinary,
            };
            let url = server.otlp_http_url();
            Exporters {
                spans: SpanExporter::builder()
                    .with_http()
                    .with_protocol(protocol)
                    .with_endpoint(format!("{url}/v1/traces"))
                    .build()
                    .unwrap(),
                metrics: MetricExporter::builder()
                    .with_http()
                    .with_protocol(protocol)
                    .with_endpoint(format!("{url}/v1/metrics"))
                    .build()
                    .unwrap(),
                logs: LogExporter::builder()
                    .with_http()
                    .with_protocol(protocol)
                    .with_endpoint(format!("{url}/v1/logs"))
                    .build()
                    .unwrap(),
            }
        }
    }
}

fn check(transport: Transport) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .worker_threads(2)
        .build()
        .unwrap();
    let server = Server::start(&[]);
    let service = format!("rust-{transport:?}").to_lowercase();
    let resource = Resource::builder()
        .with_service_name(service.clone())
        .build();
    // The tonic client needs the runtime when it is built.
    let exporters = runtime.block_on(async { exporters(&server, transport) });

    let tracer_provider = SdkTracerProvider::builder()
        .with_resource(resource.clone())
        .with_batch_exporter(exporters.spans)
        .build();
    let logger_provider = SdkLoggerProvider::builder()
        .with_resource(resource.clone())
        .with_batch_exporter(exporters.logs)
        .build();
    let meter_provider = SdkMeterProvider::builder()
        .with_resource(resource)
        .with_periodic_exporter(exporters.metrics)
        .build();

    let tracer = tracer_provider.tracer("smolder.e2e.rust");
    let logger = logger_provider.logger("smolder.e2e.rust");
    let mut root = tracer
        .span_builder("POST /orders")
        .with_kind(SpanKind::Server)
        .with_attributes([
            KeyValue::new("http.route", "/orders"),
            KeyValue::new("http.response.status_code", 503),
        ])
        .start(&tracer);
    root.set_status(Status::error("upstream unavailable"));
    let trace_id = root.span_context().trace_id().to_string();
    let span_id = root.span_context().span_id().to_string();
    let cx = opentelemetry::Context::current_with_span(root);
    let _child = tracer.start_with_context("db.insert", &cx);
    drop(_child);
    {
        let _guard = cx.clone().attach();
        let mut record = logger.create_log_record();
        record.set_body(AnyValue::from("order rejected"));
        record.set_severity_number(Severity::Warn);
        record.add_attribute("order.items", 3);
        logger.emit(record);
    }
    cx.span().end();

    let meter = meter_provider.meter("smolder.e2e.rust");
    let counter = meter.u64_counter("orders.created").build();
    counter.add(4, &[KeyValue::new("region", "eu")]);
    let histogram = meter
        .f64_histogram("orders.latency")
        .with_unit("ms")
        .build();
    histogram.record(12.0, &[]);
    histogram.record(700.0, &[]);
    let gauge = meter.i64_gauge("orders.queue").build();
    gauge.record(-2, &[]);

    tracer_provider.shutdown().unwrap();
    logger_provider.shutdown().unwrap();
    meter_provider.shutdown().unwrap();

    let spans = server.sql(&format!(
        "SELECT name, kind, status_code, status_message, http_response_status_code, trace_id, span_id \
         FROM spans WHERE service_name = '{service}' ORDER BY name DESC"
    ));
    assert_eq!(
        spans["rows"],
        json!([
            [
                "db.insert",
                "INTERNAL",
                "UNSET",
                null,
                null,
                trace_id,
                spans["rows"][0][6]
            ],
            [
                "POST /orders",
                "SERVER",
                "ERROR",
                "upstream unavailable",
                503,
                trace_id,
                span_id
            ]
        ]),
        "{transport:?}: spans"
    );
    let parent = server.scalar(&format!(
        "SELECT parent_span_id FROM spans WHERE service_name = '{service}' AND name = 'db.insert'"
    ));
    assert_eq!(parent, json!(span_id));
    let logs = server.sql(&format!(
        "SELECT body, severity_number, trace_id, span_id, attributes['order.items'], attribute_types['order.items'] \
         FROM logs WHERE service_name = '{service}'"
    ));
    assert_eq!(
        logs["rows"],
        json!([["order rejected", 13, trace_id, span_id, "3", "int"]]),
        "{transport:?}: logs"
    );
    let metrics = server.sql(&format!(
        "SELECT metric_name, metric_type, value, count, round(sum, 3) FROM metrics WHERE service_name = '{service}' ORDER BY metric_name"
    ));
    assert_eq!(
        metrics["rows"],
        json!([
            ["orders.created", "sum", 4.0, null, null],
            ["orders.latency", "histogram", null, 2, 712.0],
            ["orders.queue", "gauge", -2.0, null, null]
        ]),
        "{transport:?}: metrics"
    );
    drop(runtime);
}

#[test]
fn rust_otlp_grpc_exporter() {
    check(Transport::Grpc);
}

#[test]
fn rust_otlp_http_protobuf_exporter() {
    check(Transport::HttpProtobuf);
}

#[test]
fn rust_otlp_http_json_exporter() {
    check(Transport::HttpJson);
}

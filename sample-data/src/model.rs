//! The simulated services and how one user request flows through them.

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, any_value::Value};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, span};
use rand::Rng;
use rand_distr::{Distribution, LogNormal};

use crate::metrics::MetricState;
use crate::{Telemetry, kv_int, kv_str};

/// A simulated service.
#[derive(Debug, Clone, Copy)]
pub struct Service {
    /// `service.name`.
    pub name: &'static str,
    /// `service.version`.
    pub version: &'static str,
    /// `telemetry.sdk.language`.
    pub language: &'static str,
    /// Instrumentation scope of its server spans.
    pub scope: &'static str,
}

/// The services of the simulated shop, in a fixed order.
pub const SERVICES: [Service; 5] = [
    Service {
        name: "frontend",
        version: "2.4.1",
        language: "nodejs",
        scope: "@opentelemetry/instrumentation-http",
    },
    Service {
        name: "checkout",
        version: "1.9.0",
        language: "python",
        scope: "opentelemetry.instrumentation.flask",
    },
    Service {
        name: "payment",
        version: "3.2.7",
        language: "go",
        scope: "go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc",
    },
    Service {
        name: "inventory",
        version: "0.12.3",
        language: "go",
        scope: "go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp",
    },
    Service {
        name: "catalog",
        version: "5.0.2",
        language: "java",
        scope: "io.opentelemetry.tomcat-10.0",
    },
];

pub(crate) const FRONTEND: usize = 0;
pub(crate) const CHECKOUT: usize = 1;
pub(crate) const PAYMENT: usize = 2;
pub(crate) const INVENTORY: usize = 3;
pub(crate) const CATALOG: usize = 4;

const SERVER: i32 = 2;
const CLIENT: i32 = 3;
const MS: u64 = 1_000_000;

pub(crate) fn resource(service: usize) -> Resource {
    let s = SERVICES[service];
    Resource {
        attributes: vec![
            kv_str("service.name", s.name),
            kv_str("service.version", s.version),
            kv_str("service.namespace", "shop"),
            kv_str("deployment.environment.name", "production"),
            kv_str("host.name", &format!("node-{}", service % 3 + 1)),
            kv_str("k8s.namespace.name", "shop"),
            kv_str(
                "k8s.pod.name",
                &format!("{}-7d9f8b6c4-{}", s.name, ["x2k9p", "m4q7z"][service % 2]),
            ),
            kv_str("telemetry.sdk.name", "opentelemetry"),
            kv_str("telemetry.sdk.language", s.language),
            kv_str("telemetry.sdk.version", "1.38.0"),
        ],
        dropped_attributes_count: 0,
        entity_refs: vec![],
    }
}

/// Spans and logs of several requests, grouped by service.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    spans: [Vec<Span>; 5],
    logs: [Vec<LogRecord>; 5],
}

impl Batch {
    pub(crate) fn span_count(&self) -> usize {
        self.spans.iter().map(Vec::len).sum()
    }

    pub(crate) fn log_count(&self) -> usize {
        self.logs.iter().map(Vec::len).sum()
    }

    /// Drops log records so that exactly `count` remain.
    pub(crate) fn truncate_logs(&mut self, count: usize) {
        let mut left = count;
        for logs in &mut self.logs {
            let keep = logs.len().min(left);
            logs.truncate(keep);
            left -= keep;
        }
    }

    /// Drops spans (the logs of dropped spans are kept: they still carry valid
    /// ids) so that exactly `count` remain.
    pub(crate) fn truncate_spans(&mut self, count: usize) {
        let mut left = count;
        for spans in &mut self.spans {
            let keep = spans.len().min(left);
            spans.truncate(keep);
            left -= keep;
        }
    }

    pub(crate) fn into_telemetry(self) -> Telemetry {
        let mut traces = ExportTraceServiceRequest::default();
        let mut logs = ExportLogsServiceRequest::default();
        for (i, (spans, records)) in self.spans.into_iter().zip(self.logs).enumerate() {
            let scope = InstrumentationScope {
                name: SERVICES[i].scope.to_string(),
                version: "0.49.0".to_string(),
                ..Default::default()
            };
            if !spans.is_empty() {
                traces.resource_spans.push(ResourceSpans {
                    resource: Some(resource(i)),
                    scope_spans: vec![ScopeSpans {
                        scope: Some(scope.clone()),
                        spans,
                        schema_url: "https://opentelemetry.io/schemas/1.26.0".to_string(),
                    }],
                    schema_url: "https://opentelemetry.io/schemas/1.26.0".to_string(),
                });
            }
            if !records.is_empty() {
                logs.resource_logs.push(ResourceLogs {
                    resource: Some(resource(i)),
                    scope_logs: vec![ScopeLogs {
                        scope: Some(scope),
                        log_records: records,
                        schema_url: String::new(),
                    }],
                    schema_url: String::new(),
                });
            }
        }
        Telemetry { traces, logs }
    }
}

/// Ids and timing shared by the spans of one trace.
struct Trace<'a, R: Rng> {
    rng: &'a mut R,
    trace_id: Vec<u8>,
    incident: bool,
    batch: &'a mut Batch,
    metrics: &'a mut MetricState,
}

/// A log-normal latency in nanoseconds with median `median_ms`, and a 1% chance
/// of a 5–20× tail.
fn latency<R: Rng>(rng: &mut R, median_ms: f64, slow: f64) -> u64 {
    let base = LogNormal::new((median_ms * slow).ln(), 0.45)
        .expect("valid log-normal parameters")
        .sample(rng);
    let tail = if rng.random_bool(0.01) {
        rng.random_range(5.0..20.0)
    } else {
        1.0
    };
    ((base * tail) * MS as f64) as u64
}

impl<R: Rng> Trace<'_, R> {
    fn span_id(&mut self) -> Vec<u8> {
        let mut id = [0u8; 8];
        self.rng.fill(&mut id);
        if id == [0; 8] {
            id[7] = 1;
        }
        id.to_vec()
    }

    #[allow(clippy::too_many_arguments)]
    fn push_span(
        &mut self,
        service: usize,
        name: String,
        kind: i32,
        (span_id, parent): (Vec<u8>, Vec<u8>),
        (start, end): (u64, u64),
        attributes: Vec<opentelemetry_proto::tonic::common::v1::KeyValue>,
        error: Option<String>,
    ) {
        let status = match &error {
            Some(message) => Status {
                code: 2,
                message: message.clone(),
            },
            None => Status::default(),
        };
        let mut events = Vec::new();
        if let Some(message) = &error {
            events.push(span::Event {
                time_unix_nano: end - 1000,
                name: "exception".to_string(),
                attributes: vec![
                    kv_str("exception.type", "PaymentDeclinedError"),
                    kv_str("exception.message", message),
                ],
                dropped_attributes_count: 0,
            });
        }
        if kind == SERVER {
            let (severity, text, body) = match &error {
                Some(message) => (17, "ERROR", format!("{name} failed: {message}")),
                None => (
                    9,
                    "INFO",
                    format!("{name} completed in {} ms", (end - start) / MS),
                ),
            };
            self.batch.logs[service].push(LogRecord {
                time_unix_nano: end,
                observed_time_unix_nano: end + 150_000,
                severity_number: severity,
                severity_text: text.to_string(),
                body: Some(AnyValue {
                    value: Some(Value::StringValue(body)),
                }),
                attributes: vec![
                    kv_str("code.function", "handle_request"),
                    kv_str("thread.name", "worker-3"),
                ],
                dropped_attributes_count: 0,
                flags: 1,
                trace_id: self.trace_id.clone(),
                span_id: span_id.clone(),
                event_name: String::new(),
            });
        }
        self.batch.spans[service].push(Span {
            trace_id: self.trace_id.clone(),
            span_id,
            trace_state: String::new(),
            parent_span_id: parent,
            flags: 0x301,
            name,
            kind,
            start_time_unix_nano: start,
            end_time_unix_nano: end,
            attributes,
            dropped_attributes_count: 0,
            events,
            dropped_events_count: 0,
            links: vec![],
            dropped_links_count: 0,
            status: Some(status),
        });
    }

    /// An HTTP server span with the semantic-convention attributes, recorded in
    /// the service's HTTP metrics too.
    #[allow(clippy::too_many_arguments)]
    fn http_server(
        &mut self,
        service: usize,
        method: &str,
        route: &str,
        path: &str,
        ids: (Vec<u8>, Vec<u8>),
        window: (u64, u64),
        status: i64,
        error: Option<String>,
    ) {
        let attributes = vec![
            kv_str("http.request.method", method),
            kv_str("http.route", route),
            kv_str("url.path", path),
            kv_str("url.scheme", "http"),
            kv_int("http.response.status_code", status),
            kv_str("server.address", SERVICES[service].name),
            kv_int("server.port", 8080),
            kv_str("client.address", "10.1.2.3"),
            kv_str("network.protocol.version", "1.1"),
            kv_str(
                "user_agent.original",
                "Mozilla/5.0 (X11; Linux x86_64) Chrome/126.0",
            ),
            kv_str(
                "customer.tier",
                ["free", "pro", "enterprise"][path.len() % 3],
            ),
        ];
        let seconds = (window.1 - window.0) as f64 / 1e9;
        self.metrics
            .record_http(service, method, route, status, seconds);
        let name = format!("{method} {route}");
        self.push_span(service, name, SERVER, ids, window, attributes, error);
    }
}

/// Simulates one user request starting at `start`.
pub(crate) fn simulate_request<R: Rng>(
    rng: &mut R,
    start: u64,
    incident: bool,
    batch: &mut Batch,
    metrics: &mut MetricState,
) {
    let mut trace_id = [0u8; 16];
    rng.fill(&mut trace_id);
    trace_id[0] |= 1;
    let mut t = Trace {
        rng,
        trace_id: trace_id.to_vec(),
        incident,
        batch,
        metrics,
    };
    let root = t.span_id();
    let pick: f64 = t.rng.random();
    let own = latency(t.rng, 4.0, 1.0);
    match pick {
        p if p < 0.40 => {
            let error = t.rng.random_bool(0.002);
            let status = if error { 500 } else { 200 };
            let err = error.then(|| "template rendering failed".to_string());
            t.http_server(
                FRONTEND,
                "GET",
                "/",
                "/",
                (root, vec![]),
                (start, start + own),
                status,
                err,
            );
        }
        p if p < 0.75 => {
            let id = t.rng.random_range(1..500);
            let path = format!("/product/{id}");
            let (client, server) = (t.span_id(), t.span_id());
            let c_start = start + own / 2;
            let c_dur = latency(t.rng, 12.0, 1.0);
            let error = t.rng.random_bool(0.003);
            let status = if error { 500 } else { 200 };
            let err = error.then(|| "database timeout".to_string());
            let s_window = (c_start + 200_000, c_start + c_dur - 200_000.min(c_dur / 4));
            let api_path = format!("/api/products/{id}");
            t.http_server(
                CATALOG,
                "GET",
                "/api/products/{id}",
                &api_path,
                (server, client.clone()),
                s_window,
                status,
                err.clone(),
            );
            let attrs = vec![
                kv_str("http.request.method", "GET"),
                kv_str("url.full", &format!("http://catalog:8080{api_path}")),
                kv_int("http.response.status_code", status),
                kv_str("server.address", "catalog"),
            ];
            t.push_span(
                FRONTEND,
                "GET".to_string(),
                CLIENT,
                (client, root.clone()),
                (c_start, c_start + c_dur),
                attrs,
                err.clone(),
            );
            t.http_server(
                FRONTEND,
                "GET",
                "/product/{id}",
                &path,
                (root, vec![]),
                (start, start + own + c_dur),
                status,
                err,
            );
        }
        p if p < 0.90 => {
            let error = t.rng.random_bool(0.002);
            let status = if error { 500 } else { 201 };
            let err = error.then(|| "session store unavailable".to_string());
            let dur = own + latency(t.rng, 6.0, 1.0);
            t.http_server(
                FRONTEND,
                "POST",
                "/cart",
                "/cart",
                (root, vec![]),
                (start, start + dur),
                status,
                err,
            );
        }
        _ => checkout(&mut t, root, start, own),
    }
}

/// frontend POST /checkout → checkout → payment (gRPC) and inventory (HTTP).
fn checkout<R: Rng>(t: &mut Trace<'_, R>, root: Vec<u8>, start: u64, own: u64) {
    let slow = if t.incident { 4.0 } else { 1.0 };
    let (fe_client, co_server) = (t.span_id(), t.span_id());
    let (inv_client, inv_server) = (t.span_id(), t.span_id());
    let (pay_client, pay_server) = (t.span_id(), t.span_id());
    let co_start = start + own / 2;
    let mut cursor = co_start + latency(t.rng, 2.0, 1.0);

    // inventory: GET /stock/{sku}
    let inv_dur = latency(t.rng, 8.0, slow);
    let sku = format!("SKU-{:05}", t.rng.random_range(0..20_000));
    let inv_path = format!("/stock/{sku}");
    t.http_server(
        INVENTORY,
        "GET",
        "/stock/{sku}",
        &inv_path,
        (inv_server, inv_client.clone()),
        (
            cursor + 150_000,
            cursor + inv_dur - 150_000.min(inv_dur / 4),
        ),
        200,
        None,
    );
    let attrs = vec![
        kv_str("http.request.method", "GET"),
        kv_str("url.full", &format!("http://inventory:8080{inv_path}")),
        kv_int("http.response.status_code", 200),
        kv_str("server.address", "inventory"),
    ];
    t.push_span(
        CHECKOUT,
        "GET".to_string(),
        CLIENT,
        (inv_client, co_server.clone()),
        (cursor, cursor + inv_dur),
        attrs,
        None,
    );
    cursor += inv_dur;

    // payment: /payment.Payment/Charge over gRPC
    let fail_p = if t.incident { 0.35 } else { 0.004 };
    let failed = t.rng.random_bool(fail_p);
    let pay_dur = latency(t.rng, 35.0, slow);
    let grpc_code = if failed { 9 } else { 0 }; // FAILED_PRECONDITION
    let pay_err = failed.then(|| "card declined by issuer: insufficient_funds".to_string());
    let grpc_attrs = |code: i64| {
        vec![
            kv_str("rpc.system", "grpc"),
            kv_str("rpc.service", "payment.Payment"),
            kv_str("rpc.method", "Charge"),
            kv_int("rpc.grpc.status_code", code),
            kv_str("server.address", "payment"),
            kv_int("server.port", 50051),
        ]
    };
    let window = (
        cursor + 300_000,
        cursor + pay_dur - 300_000.min(pay_dur / 4),
    );
    t.metrics.record_grpc(
        PAYMENT,
        "payment.Payment",
        "Charge",
        grpc_code,
        (window.1 - window.0) as f64 / 1e9,
    );
    t.push_span(
        PAYMENT,
        "payment.Payment/Charge".to_string(),
        SERVER,
        (pay_server, pay_client.clone()),
        window,
        grpc_attrs(grpc_code),
        pay_err.clone(),
    );
    t.push_span(
        CHECKOUT,
        "payment.Payment/Charge".to_string(),
        CLIENT,
        (pay_client, co_server.clone()),
        (cursor, cursor + pay_dur),
        grpc_attrs(grpc_code),
        pay_err.clone(),
    );
    cursor += pay_dur;

    let co_end = cursor + latency(t.rng, 3.0, 1.0);
    let co_status = if failed { 502 } else { 200 };
    t.http_server(
        CHECKOUT,
        "POST",
        "/api/checkout",
        "/api/checkout",
        (co_server, fe_client.clone()),
        (co_start, co_end),
        co_status,
        pay_err.clone(),
    );
    let attrs = vec![
        kv_str("http.request.method", "POST"),
        kv_str("url.full", "http://checkout:8080/api/checkout"),
        kv_int("http.response.status_code", co_status),
        kv_str("server.address", "checkout"),
    ];
    t.push_span(
        FRONTEND,
        "POST".to_string(),
        CLIENT,
        (fe_client, root.clone()),
        (co_start - 100_000, co_end + 100_000),
        attrs,
        pay_err.clone(),
    );
    let fe_status = if failed { 500 } else { 200 };
    t.http_server(
        FRONTEND,
        "POST",
        "/checkout",
        "/checkout",
        (root, vec![]),
        (start, co_end + own / 2 + 100_000),
        fe_status,
        pay_err,
    );
}

//! Metric state of the simulated services and its export as OTLP, in the shape
//! each service's SDK would send.

use std::collections::BTreeMap;

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use opentelemetry_proto::tonic::metrics::v1::{
    ExponentialHistogram, ExponentialHistogramDataPoint, Gauge, Histogram, HistogramDataPoint,
    Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, Summary, SummaryDataPoint,
    exponential_histogram_data_point::Buckets, metric::Data, number_data_point,
    summary_data_point::ValueAtQuantile,
};
use rand::Rng;

use crate::model::{CATALOG, CHECKOUT, FRONTEND, INVENTORY, PAYMENT, SERVICES, resource};
use crate::{kv_int, kv_str};

const DELTA: i32 = 1;
const CUMULATIVE: i32 = 2;

/// Bucket bounds the HTTP semantic conventions recommend for request durations.
const SEMCONV_BOUNDS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];
/// The Prometheus Go client's default histogram buckets.
const PROMETHEUS_BOUNDS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Scale of the exponential histograms (base 2^(1/8)).
const EXP_SCALE: i32 = 3;

#[derive(Debug, Clone, Default)]
struct Distribution {
    count: u64,
    sum: f64,
    min: f64,
    max: f64,
    buckets: Vec<u64>,
    exp_buckets: BTreeMap<i32, u64>,
}

impl Distribution {
    fn record(&mut self, bounds: &[f64], seconds: f64) {
        if self.buckets.is_empty() {
            self.buckets = vec![0; bounds.len() + 1];
            self.min = f64::INFINITY;
            self.max = f64::NEG_INFINITY;
        }
        self.count += 1;
        self.sum += seconds;
        self.min = self.min.min(seconds);
        self.max = self.max.max(seconds);
        // Bucket i covers (bounds[i-1], bounds[i]].
        let i = bounds.partition_point(|b| *b < seconds);
        self.buckets[i] += 1;
        let index = ((seconds.log2() * f64::from(1 << EXP_SCALE)).ceil() as i32) - 1;
        *self.exp_buckets.entry(index).or_default() += 1;
    }
}

/// Key of an HTTP series: method, route, status code.
type HttpKey = (String, String, i64);
/// Key of a gRPC series: service, method, code.
type GrpcKey = (String, String, i64);

#[derive(Debug, Clone, Default)]
struct ServiceState {
    start: u64,
    last_export: u64,
    http_total: BTreeMap<HttpKey, Distribution>,
    http_delta: BTreeMap<HttpKey, Distribution>,
    grpc_total: BTreeMap<GrpcKey, u64>,
    gc_count: u64,
    gc_sum: f64,
}

/// Accumulated metrics of every service.
#[derive(Debug, Clone)]
pub(crate) struct MetricState {
    services: Vec<ServiceState>,
    /// Whether an incident is under way: memory use climbs.
    pub(crate) incident: bool,
}

fn bounds_of(service: usize) -> &'static [f64] {
    if service == INVENTORY {
        &PROMETHEUS_BOUNDS
    } else {
        &SEMCONV_BOUNDS
    }
}

const GRPC_CODES: [&str; 17] = [
    "OK",
    "Canceled",
    "Unknown",
    "InvalidArgument",
    "DeadlineExceeded",
    "NotFound",
    "AlreadyExists",
    "PermissionDenied",
    "ResourceExhausted",
    "FailedPrecondition",
    "Aborted",
    "OutOfRange",
    "Unimplemented",
    "Internal",
    "Unavailable",
    "DataLoss",
    "Unauthenticated",
];

impl MetricState {
    pub(crate) fn new(start: u64) -> Self {
        let state = ServiceState {
            start,
            last_export: start,
            ..Default::default()
        };
        Self {
            services: vec![state; SERVICES.len()],
            incident: false,
        }
    }

    pub(crate) fn record_http(
        &mut self,
        service: usize,
        method: &str,
        route: &str,
        status: i64,
        seconds: f64,
    ) {
        let s = &mut self.services[service];
        let key = (method.to_string(), route.to_string(), status);
        let bounds = bounds_of(service);
        s.http_total
            .entry(key.clone())
            .or_default()
            .record(bounds, seconds);
        s.http_delta.entry(key).or_default().record(bounds, seconds);
    }

    pub(crate) fn record_grpc(
        &mut self,
        service: usize,
        grpc_service: &str,
        method: &str,
        code: i64,
        _seconds: f64,
    ) {
        let key = (grpc_service.to_string(), method.to_string(), code);
        *self.services[service].grpc_total.entry(key).or_default() += 1;
    }

    pub(crate) fn restart(&mut self, service: &str, now: u64) {
        if let Some(i) = SERVICES.iter().position(|s| s.name == service) {
            self.services[i] = ServiceState {
                start: now,
                last_export: now,
                ..Default::default()
            };
        }
    }

    pub(crate) fn export<R: Rng>(&mut self, now: u64, rng: &mut R) -> ExportMetricsServiceRequest {
        let mut request = ExportMetricsServiceRequest::default();
        for (service, info) in SERVICES.iter().enumerate() {
            let metrics = self.service_metrics(service, now, rng);
            let state = &mut self.services[service];
            state.http_delta.clear();
            state.last_export = now;
            request.resource_metrics.push(ResourceMetrics {
                resource: Some(resource(service)),
                scope_metrics: vec![ScopeMetrics {
                    scope: Some(InstrumentationScope {
                        name: info.scope.to_string(),
                        version: "0.49.0".to_string(),
                        ..Default::default()
                    }),
                    metrics,
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            });
        }
        request
    }

    fn service_metrics<R: Rng>(&mut self, service: usize, now: u64, rng: &mut R) -> Vec<Metric> {
        let s = &mut self.services[service];
        let mut out = Vec::new();
        let http_attrs = |(method, route, status): &HttpKey| {
            vec![
                kv_str("http.request.method", method),
                kv_str("http.route", route),
                kv_int("http.response.status_code", *status),
                kv_str("url.scheme", "http"),
            ]
        };
        match service {
            FRONTEND | CHECKOUT | CATALOG => {
                let (temporality, series, start) = if service == FRONTEND {
                    (CUMULATIVE, &s.http_total, s.start)
                } else {
                    (DELTA, &s.http_delta, s.last_export)
                };
                let data = if service == CATALOG {
                    Data::ExponentialHistogram(ExponentialHistogram {
                        aggregation_temporality: temporality,
                        data_points: series
                            .iter()
                            .map(|(k, d)| exponential_point(http_attrs(k), start, now, d))
                            .collect(),
                    })
                } else {
                    Data::Histogram(Histogram {
                        aggregation_temporality: temporality,
                        data_points: series
                            .iter()
                            .map(|(k, d)| {
                                explicit_point(http_attrs(k), start, now, d, &SEMCONV_BOUNDS)
                            })
                            .collect(),
                    })
                };
                out.push(metric(
                    "http.server.request.duration",
                    "Duration of HTTP server requests.",
                    "s",
                    data,
                ));
                // Request counters: checkout's SDK is configured for delta.
                let (temporality, series, start) = if service == CHECKOUT {
                    (DELTA, &s.http_delta, s.last_export)
                } else {
                    (CUMULATIVE, &s.http_total, s.start)
                };
                out.push(metric(
                    "http.server.requests",
                    "Number of HTTP server requests.",
                    "{request}",
                    Data::Sum(Sum {
                        aggregation_temporality: temporality,
                        is_monotonic: true,
                        data_points: series
                            .iter()
                            .map(|(k, d)| int_point(http_attrs(k), start, now, d.count as i64))
                            .collect(),
                    }),
                ));
            }
            INVENTORY => {
                out.push(metric(
                    "http_request_duration_seconds",
                    "Duration of HTTP requests.",
                    "s",
                    Data::Histogram(Histogram {
                        aggregation_temporality: CUMULATIVE,
                        data_points: s
                            .http_total
                            .iter()
                            .map(|((method, route, status), d)| {
                                let attrs = vec![
                                    kv_str("handler", route),
                                    kv_str("method", method),
                                    kv_str("code", &status.to_string()),
                                ];
                                explicit_point(attrs, s.start, now, d, &PROMETHEUS_BOUNDS)
                            })
                            .collect(),
                    }),
                ));
            }
            _ => {
                debug_assert_eq!(service, PAYMENT);
                out.push(metric(
                    "grpc_server_handled_total",
                    "Total number of RPCs completed on the server, regardless of success or failure.",
                    "",
                    Data::Sum(Sum {
                        aggregation_temporality: CUMULATIVE,
                        is_monotonic: true,
                        data_points: s
                            .grpc_total
                            .iter()
                            .map(|((svc, method, code), n)| {
                                let attrs = vec![
                                    kv_str("grpc_service", svc),
                                    kv_str("grpc_method", method),
                                    kv_str("grpc_type", "unary"),
                                    kv_str("grpc_code", GRPC_CODES[*code as usize]),
                                ];
                                int_point(attrs, s.start, now, *n as i64)
                            })
                            .collect(),
                    }),
                ));
            }
        }
        if SERVICES[service].language == "go" {
            s.gc_count += rng.random_range(1..5);
            s.gc_sum += rng.random_range(0.0001..0.002);
            let base = rng.random_range(0.00002..0.00005);
            out.push(metric(
                "go_gc_duration_seconds",
                "A summary of the wall-time pause (stop-the-world) duration in garbage collection cycles.",
                "s",
                Data::Summary(Summary {
                    data_points: vec![SummaryDataPoint {
                        start_time_unix_nano: s.start,
                        time_unix_nano: now,
                        count: s.gc_count,
                        sum: s.gc_sum,
                        quantile_values: [(0.0, 0.5), (0.25, 0.8), (0.5, 1.0), (0.75, 1.4), (1.0, 6.0)]
                            .iter()
                            .map(|(q, f)| ValueAtQuantile { quantile: *q, value: base * f })
                            .collect(),
                        ..Default::default()
                    }],
                }),
            ));
        }
        // 90–140 MB, and up to 160 MB during an incident (one draw either
        // way, so the rest of the telemetry is the same).
        let drawn: i64 = rng.random_range(90_000_000..160_000_000);
        let memory = if self.incident {
            drawn
        } else {
            90_000_000 + (drawn - 90_000_000) * 5 / 7
        };
        out.push(metric(
            "process.memory.usage",
            "The amount of physical memory in use.",
            "By",
            Data::Gauge(Gauge {
                data_points: vec![int_point(vec![], 0, now, memory)],
            }),
        ));
        out
    }
}

fn metric(name: &str, description: &str, unit: &str, data: Data) -> Metric {
    Metric {
        name: name.to_string(),
        description: description.to_string(),
        unit: unit.to_string(),
        metadata: vec![],
        data: Some(data),
    }
}

fn int_point(
    attributes: Vec<opentelemetry_proto::tonic::common::v1::KeyValue>,
    start: u64,
    now: u64,
    value: i64,
) -> NumberDataPoint {
    NumberDataPoint {
        attributes,
        start_time_unix_nano: start,
        time_unix_nano: now,
        value: Some(number_data_point::Value::AsInt(value)),
        ..Default::default()
    }
}

fn explicit_point(
    attributes: Vec<opentelemetry_proto::tonic::common::v1::KeyValue>,
    start: u64,
    now: u64,
    d: &Distribution,
    bounds: &[f64],
) -> HistogramDataPoint {
    HistogramDataPoint {
        attributes,
        start_time_unix_nano: start,
        time_unix_nano: now,
        count: d.count,
        sum: Some(d.sum),
        bucket_counts: d.buckets.clone(),
        explicit_bounds: bounds.to_vec(),
        min: (d.count > 0).then_some(d.min),
        max: (d.count > 0).then_some(d.max),
        ..Default::default()
    }
}

fn exponential_point(
    attributes: Vec<opentelemetry_proto::tonic::common::v1::KeyValue>,
    start: u64,
    now: u64,
    d: &Distribution,
) -> ExponentialHistogramDataPoint {
    let offset = d.exp_buckets.keys().next().copied().unwrap_or(0);
    let last = d.exp_buckets.keys().next_back().copied().unwrap_or(-1);
    let bucket_counts = (offset..=last)
        .map(|i| d.exp_buckets.get(&i).copied().unwrap_or(0))
        .collect();
    ExponentialHistogramDataPoint {
        attributes,
        start_time_unix_nano: start,
        time_unix_nano: now,
        count: d.count,
        sum: Some(d.sum),
        scale: EXP_SCALE,
        zero_count: 0,
        positive: Some(Buckets {
            offset,
            bucket_counts,
        }),
        negative: None,
        min: (d.count > 0).then_some(d.min),
        max: (d.count > 0).then_some(d.max),
        zero_threshold: 0.0,
        ..Default::default()
    }
}

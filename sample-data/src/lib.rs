//! Deterministic generator of realistic microservice telemetry, as OTLP requests.
//!
//! The simulated shop has five services calling each other:
//!
//! ```text
//! frontend ──HTTP──> checkout ──gRPC──> payment (Go)
//!     │                  └────HTTP──> inventory (Go)
//!     └──────HTTP──> catalog
//! ```
//!
//! Each user request becomes a trace (server and client spans with parent/child
//! links), a log record per server span carrying the trace and span ids, and
//! contributions to the services' metrics: OTel semantic-convention
//! `http.server.request.duration` histograms (explicit and exponential,
//! cumulative and delta) and `http.server.requests` counters by route and status,
//! and the Prometheus-style `http_request_duration_seconds` histogram,
//! `grpc_server_handled_total` counter and `go_gc_duration_seconds` summary that
//! the Go services export, plus `process.memory.usage` gauges.
//!
//! Latencies are log-normal with a long tail; errors are rare until
//! [`Generator::set_incident`] starts a burst of payment failures and slowness.
//! The same seed always yields the same telemetry.

pub mod fixtures;
mod metrics;
mod model;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub use model::SERVICES;

/// The sample SLOs (`sample-data/slos/`) by file name: one of each SLI kind
/// over the generated telemetry, as the demo loads them.
pub const SAMPLE_SLOS: [(&str, &str); 4] = [
    ("checkout.yaml", include_str!("../slos/checkout.yaml")),
    ("catalog.yaml", include_str!("../slos/catalog.yaml")),
    ("frontend.yaml", include_str!("../slos/frontend.yaml")),
    (
        "payment-sloth.yaml",
        include_str!("../slos/payment-sloth.yaml"),
    ),
];

/// One batch of generated telemetry.
#[derive(Debug, Clone, Default)]
pub struct Telemetry {
    /// Spans of the simulated requests.
    pub traces: ExportTraceServiceRequest,
    /// One log record per server span.
    pub logs: ExportLogsServiceRequest,
}

impl Telemetry {
    /// Number of spans.
    pub fn span_count(&self) -> usize {
        self.traces
            .resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .map(|s| s.spans.len())
            .sum()
    }

    /// Number of log records.
    pub fn log_count(&self) -> usize {
        self.logs
            .resource_logs
            .iter()
            .flat_map(|r| &r.scope_logs)
            .map(|s| s.log_records.len())
            .sum()
    }
}

/// The telemetry generator.
#[derive(Debug, Clone)]
pub struct Generator {
    rng: ChaCha8Rng,
    clock_ns: u64,
    incident: bool,
    metrics: metrics::MetricState,
}

impl Generator {
    /// A generator seeded with `seed` whose clock starts at `start_unix_nano`.
    pub fn new(seed: u64, start_unix_nano: u64) -> Self {
        Self {
            rng: ChaCha8Rng::seed_from_u64(seed),
            clock_ns: start_unix_nano,
            incident: false,
            metrics: metrics::MetricState::new(start_unix_nano),
        }
    }

    /// The simulated clock, in nanoseconds since the Unix epoch.
    pub fn clock(&self) -> u64 {
        self.clock_ns
    }

    /// Moves the clock (e.g. to the real time, for live traffic). It never goes
    /// backwards.
    pub fn set_clock(&mut self, unix_nano: u64) {
        self.clock_ns = self.clock_ns.max(unix_nano);
    }

    /// Starts or ends an incident: payments fail often and everything behind
    /// checkout slows down.
    pub fn set_incident(&mut self, on: bool) {
        self.incident = on;
        self.metrics.incident = on;
    }

    /// Whether an incident is under way.
    pub fn incident(&self) -> bool {
        self.incident
    }

    /// Simulates `requests` user requests spread over the next `interval_ns`
    /// nanoseconds and advances the clock by `interval_ns`.
    pub fn requests(&mut self, requests: usize, interval_ns: u64) -> Telemetry {
        let mut out = model::Batch::default();
        let step = if requests == 0 {
            0
        } else {
            interval_ns / requests as u64
        };
        for i in 0..requests {
            let jitter = if step > 1 {
                self.rng.random_range(0..step)
            } else {
                0
            };
            let start = self.clock_ns + i as u64 * step + jitter;
            model::simulate_request(
                &mut self.rng,
                start,
                self.incident,
                &mut out,
                &mut self.metrics,
            );
        }
        self.clock_ns += interval_ns;
        out.into_telemetry()
    }

    /// Exactly `count` spans (whole traces, the last one cut short), for load
    /// generation where batch sizes must be exact. The clock advances by one
    /// millisecond per trace.
    pub fn spans(&mut self, count: usize) -> ExportTraceServiceRequest {
        let mut out = self.requests_until(|b| b.span_count() >= count);
        out.truncate_spans(count);
        out.into_telemetry().traces
    }

    /// Exactly `count` log records (from whole requests, the last cut short).
    pub fn logs(&mut self, count: usize) -> ExportLogsServiceRequest {
        let mut out = self.requests_until(|b| b.log_count() >= count);
        out.truncate_logs(count);
        out.into_telemetry().logs
    }

    /// Simulates requests one millisecond apart until `done` holds.
    fn requests_until(&mut self, done: impl Fn(&model::Batch) -> bool) -> model::Batch {
        let mut out = model::Batch::default();
        while !done(&out) {
            let start = self.clock_ns;
            self.clock_ns += 1_000_000;
            let (rng, metrics) = (&mut self.rng, &mut self.metrics);
            model::simulate_request(rng, start, self.incident, &mut out, metrics);
        }
        out
    }

    /// The services' metrics as of the clock: cumulative series report totals
    /// since their start, delta series what happened since the previous call.
    pub fn metrics(&mut self) -> ExportMetricsServiceRequest {
        self.metrics.export(self.clock_ns, &mut self.rng)
    }

    /// Metric exports 10 s apart, each after 20 simulated requests (so
    /// request histograms and counters have series), concatenated
    /// until they hold at least `points` data points (for load generation and
    /// benchmarks).
    pub fn metric_points(&mut self, points: usize) -> ExportMetricsServiceRequest {
        use opentelemetry_proto::tonic::metrics::v1::metric::Data;
        let count = |r: &ExportMetricsServiceRequest| -> usize {
            r.resource_metrics
                .iter()
                .flat_map(|r| &r.scope_metrics)
                .flat_map(|s| &s.metrics)
                .map(|m| match &m.data {
                    Some(Data::Gauge(g)) => g.data_points.len(),
                    Some(Data::Sum(s)) => s.data_points.len(),
                    Some(Data::Histogram(h)) => h.data_points.len(),
                    Some(Data::ExponentialHistogram(h)) => h.data_points.len(),
                    Some(Data::Summary(s)) => s.data_points.len(),
                    None => 0,
                })
                .sum()
        };
        let mut request = ExportMetricsServiceRequest::default();
        // Each export follows its own 10 s of requests, so two calls never
        // send the same instant's points (a sender would see one request's
        // points again in the next).
        while request.resource_metrics.is_empty() || count(&request) < points {
            // Only the metrics matter here; the spans and logs are dropped.
            let _ = self.requests(20, 10_000_000_000);
            request
                .resource_metrics
                .extend(self.metrics().resource_metrics);
        }
        request
    }

    /// Simulates a restart of `service`: its cumulative series start again from
    /// zero with a new start time (a counter reset).
    pub fn restart_service(&mut self, service: &str) {
        self.metrics.restart(service, self.clock_ns);
    }
}

pub(crate) fn kv(key: &str, value: Value) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

pub(crate) fn kv_str(key: &str, value: &str) -> KeyValue {
    kv(key, Value::StringValue(value.to_string()))
}

pub(crate) fn kv_int(key: &str, value: i64) -> KeyValue {
    kv(key, Value::IntValue(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_700_000_000_000_000_000;

    #[test]
    fn consecutive_batches_of_metric_points_never_repeat_an_instant() {
        use opentelemetry_proto::tonic::metrics::v1::metric::Data;
        let mut g = Generator::new(3, T0);
        let times = |r: &ExportMetricsServiceRequest| -> std::collections::BTreeSet<u64> {
            r.resource_metrics
                .iter()
                .flat_map(|r| &r.scope_metrics)
                .flat_map(|s| &s.metrics)
                .flat_map(|m| match &m.data {
                    Some(Data::Sum(s)) => s.data_points.iter().map(|p| p.time_unix_nano).collect(),
                    Some(Data::Gauge(g)) => {
                        g.data_points.iter().map(|p| p.time_unix_nano).collect()
                    }
                    _ => Vec::new(),
                })
                .collect()
        };
        let first = times(&g.metric_points(50));
        let second = times(&g.metric_points(50));
        assert!(!first.is_empty() && !second.is_empty());
        assert!(first.is_disjoint(&second), "{first:?} {second:?}");
    }

    #[test]
    fn same_seed_same_telemetry() {
        let mut a = Generator::new(7, T0);
        let mut b = Generator::new(7, T0);
        assert_eq!(
            a.requests(50, 1_000_000_000).traces,
            b.requests(50, 1_000_000_000).traces
        );
        assert_eq!(a.metrics(), b.metrics());
        let mut c = Generator::new(8, T0);
        assert_ne!(
            a.requests(50, 1_000_000_000).traces,
            c.requests(50, 1_000_000_000).traces
        );
    }

    #[test]
    fn traces_have_parents_within_the_trace() {
        let mut g = Generator::new(1, T0);
        let t = g.requests(100, 10_000_000_000);
        let spans: Vec<_> = t
            .traces
            .resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .flat_map(|s| &s.spans)
            .collect();
        assert!(spans.len() >= 200, "{} spans", spans.len());
        let roots = spans.iter().filter(|s| s.parent_span_id.is_empty()).count();
        assert_eq!(roots, 100, "one root per request");
        for s in &spans {
            assert_eq!(s.trace_id.len(), 16);
            assert_eq!(s.span_id.len(), 8);
            if !s.parent_span_id.is_empty() {
                assert!(
                    spans
                        .iter()
                        .any(|p| p.span_id == s.parent_span_id && p.trace_id == s.trace_id)
                );
            }
            assert!(s.end_time_unix_nano > s.start_time_unix_nano);
        }
        assert_eq!(t.log_count(), spans.iter().filter(|s| s.kind == 2).count());
    }

    #[test]
    fn incidents_raise_the_error_rate() {
        let error_rate = |incident| {
            let mut g = Generator::new(3, T0);
            g.set_incident(incident);
            let t = g.requests(2000, 60_000_000_000);
            let spans: Vec<_> = t
                .traces
                .resource_spans
                .iter()
                .flat_map(|r| &r.scope_spans)
                .flat_map(|s| &s.spans)
                .filter(|s| s.parent_span_id.is_empty())
                .collect();
            let errors = spans
                .iter()
                .filter(|s| s.status.as_ref().is_some_and(|st| st.code == 2))
                .count();
            errors as f64 / spans.len() as f64
        };
        let calm = error_rate(false);
        let burning = error_rate(true);
        assert!(calm < 0.02, "calm error rate {calm}");
        assert!(
            burning > 0.03 && burning > 5.0 * calm,
            "incident error rate {burning} vs {calm}"
        );
    }

    #[test]
    fn exact_span_counts() {
        let mut g = Generator::new(1, T0);
        for n in [1, 7, 512] {
            let r = g.spans(n);
            let count: usize = r
                .resource_spans
                .iter()
                .flat_map(|r| &r.scope_spans)
                .map(|s| s.spans.len())
                .sum();
            assert_eq!(count, n);
        }
    }
}

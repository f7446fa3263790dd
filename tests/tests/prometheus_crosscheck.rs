//! Cross-check of burn-rate math with a real Prometheus (Debian package
//! `prometheus`, which scripts/test.sh installs).
//!
//! The same generated request and error counters (three series, cumulative,
//! one with a restart) are backfilled into Prometheus with `promtool tsdb
//! create-blocks-from openmetrics` and sent to smolder as OTLP cumulative
//! sums. For each window (5m … 3d) and several instants the test compares:
//!
//! * smolder's error ratio with the exact one computed from the generated
//!   events: equal (the counts are exact integers);
//! * Prometheus's `sum(rate(errors_total[W])) / sum(rate(requests_total[W]))`
//!   with the exact ratio, within a tolerance: Prometheus only sees the
//!   samples inside the window and extrapolates their increase to its edges,
//!   so it leaves out the increase between the last sample before the window
//!   and the first inside it — one scrape interval of events out of W/1m.
//!   The tolerance is 1.5 / (W / 1m) of the exact ratio (relative), plus
//!   1e-9; and the test shows that Prometheus differs from the exact ratio
//!   where smolder does not.

use std::io::Write as _;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, metric,
    number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;
use serde_json::Value;
use smolder_tests::{Server, http_post, http_request, kv};

const MIN: i64 = 60;
const SERIES: [&str; 3] = ["a", "b", "c"];
const WINDOWS: [(&str, i64); 7] = [
    ("5m", 5),
    ("30m", 30),
    ("1h", 60),
    ("2h", 120),
    ("6h", 360),
    ("1d", 1440),
    ("3d", 4320),
];

/// One scrape of one series: its time (Unix seconds), start time, the
/// cumulative values and the events since the previous scrape.
#[derive(Debug, Clone)]
struct Sample {
    series: usize,
    time: i64,
    start: i64,
    requests: u64,
    errors: u64,
    new_requests: u64,
    new_errors: u64,
}

/// Four days and a bit of one-minute scrapes ending at `end`, with varying
/// traffic and error rates, incidents, and a restart of series `b`.
fn generate(end: i64) -> Vec<Sample> {
    let minutes = 4 * 1440 + 30;
    let first = end - minutes * MIN;
    let mut rng: u64 = 0x5eed;
    let mut next = || {
        rng = rng.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        (rng >> 33) as f64 / (1u64 << 31) as f64
    };
    let mut out = Vec::new();
    for (s, _) in SERIES.iter().enumerate() {
        let mut start = first - 3600;
        let (mut requests, mut errors) = (1000 * (s as u64 + 1), 10 * (s as u64 + 1));
        for m in 0..minutes {
            let time = first + m * MIN;
            if s == 1 && m == 2 * 1440 + 77 {
                // The process restarts: a new start time, counters from zero.
                start = time - 20;
                requests = 0;
                errors = 0;
            }
            let hour = (m / 60) as f64;
            let rate = 40.0 + 30.0 * (hour / 5.0 + s as f64).sin() + 20.0 * next();
            let incident = (m % 1440) > 600 && (m % 1440) < 660;
            let p = 0.004 + 0.01 * next() + if incident { 0.2 } else { 0.0 };
            let new_requests = rate.round() as u64;
            let new_errors = ((new_requests as f64) * p).round() as u64;
            requests += new_requests;
            errors += new_errors;
            out.push(Sample {
                series: s,
                time,
                start,
                requests,
                errors,
                new_requests,
                new_errors,
            });
        }
    }
    out
}

/// Events of the scrapes whose minute lies in the window ending at `at`. The
/// first scrape of each series only sets the baseline; after the restart, a
/// scrape's events are its whole value, as both systems count them.
fn exact(samples: &[Sample], at: i64, window_minutes: i64) -> (u64, u64) {
    let last = at.div_euclid(MIN);
    let (mut total, mut bad) = (0, 0);
    let mut seen = [false; 3];
    for s in samples {
        let first = !seen[s.series];
        seen[s.series] = true;
        let bucket = s.time.div_euclid(MIN);
        if !first && bucket > last - window_minutes && bucket <= last {
            total += s.new_requests;
            bad += s.new_errors;
        }
    }
    (bad, total)
}

fn openmetrics(samples: &[Sample]) -> String {
    let mut out = String::new();
    for (family, pick) in [
        ("requests", (|s: &Sample| s.requests) as fn(&Sample) -> u64),
        ("errors", |s: &Sample| s.errors),
    ] {
        out.push_str(&format!("# TYPE {family} counter\n"));
        for (i, name) in SERIES.iter().enumerate() {
            for s in samples.iter().filter(|s| s.series == i) {
                out.push_str(&format!(
                    "{family}_total{{pod=\"{name}\"}} {} {}\n",
                    pick(s),
                    s.time
                ));
            }
        }
    }
    out.push_str("# EOF\n");
    out
}

fn otlp(samples: &[&Sample]) -> Vec<u8> {
    let sum = |name: &str, pick: fn(&Sample) -> u64| Metric {
        name: name.into(),
        data: Some(metric::Data::Sum(Sum {
            data_points: samples
                .iter()
                .map(|s| NumberDataPoint {
                    attributes: vec![kv("pod", SERIES[s.series])],
                    start_time_unix_nano: s.start as u64 * 1_000_000_000,
                    time_unix_nano: s.time as u64 * 1_000_000_000,
                    value: Some(number_data_point::Value::AsInt(pick(s) as i64)),
                    ..Default::default()
                })
                .collect(),
            aggregation_temporality: AggregationTemporality::Cumulative as i32,
            is_monotonic: true,
        })),
        ..Default::default()
    };
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: vec![kv("service.name", "api")],
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![sum("requests", |s| s.requests), sum("errors", |s| s.errors)],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
    .encode_to_vec()
}

const SLO: &str = r#"
apiVersion: openslo/v1
kind: SLO
metadata:
  name: api-requests
spec:
  service: api
  indicator:
    metadata:
      name: api-ok
    spec:
      ratioMetric:
        counter: true
        bad:
          metricSource:
            type: smolder
            spec:
              table: metrics
              filter: "metric_name = 'errors'"
        total:
          metricSource:
            type: smolder
            spec:
              table: metrics
              filter: "metric_name = 'requests'"
  timeWindow:
    - duration: 30d
      isRolling: true
  budgetingMethod: Occurrences
  objectives:
    - target: 0.99
"#;

fn tool(name: &str) -> String {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "{name} is missing: install the Debian package `prometheus` (scripts/test.sh does: apt-get install prometheus)"
    );
    name.to_string()
}

struct Prometheus {
    child: Child,
    addr: String,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_prometheus(dir: &std::path::Path, samples: &[Sample]) -> Prometheus {
    let input = dir.join("input.om");
    std::fs::File::create(&input)
        .unwrap()
        .write_all(openmetrics(samples).as_bytes())
        .unwrap();
    let data = dir.join("tsdb");
    let status = Command::new(tool("promtool"))
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&input)
        .arg(&data)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "promtool create-blocks-from failed");
    let config = dir.join("prometheus.yml");
    std::fs::write(&config, "global:\n  scrape_interval: 1m\n").unwrap();
    // A free loopback port (Prometheus does not report a port 0 choice).
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let child = Command::new(tool("prometheus"))
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.tsdb.path={}", data.display()))
        .arg("--storage.tsdb.retention.time=3650d")
        .arg(format!("--web.listen-address={addr}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let prometheus = Prometheus { child, addr };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ready = std::net::TcpStream::connect(&prometheus.addr).is_ok() && {
            let (status, _) = http_request(
                prometheus.addr.parse().unwrap(),
                "GET",
                "/-/ready",
                &[],
                b"",
            );
            status == 200
        };
        if ready {
            return prometheus;
        }
        assert!(Instant::now() < deadline, "Prometheus did not become ready");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn prometheus_ratio(p: &Prometheus, window: &str, at: i64) -> f64 {
    let query = format!("sum(rate(errors_total[{window}])) / sum(rate(requests_total[{window}]))");
    let encoded: String = query
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    let (status, body) = http_request(
        p.addr.parse().unwrap(),
        "GET",
        &format!("/api/v1/query?query={encoded}&time={at}"),
        &[],
        b"",
    );
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    v["data"]["result"][0]["value"][1]
        .as_str()
        .unwrap_or_else(|| panic!("no result for {query} at {at}: {body}"))
        .parse()
        .unwrap()
}

#[test]
fn burn_rates_match_prometheus_within_its_extrapolation_and_the_exact_counts_exactly() {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    // Scrapes on the half minute, ending ten minutes ago (beyond the lateness).
    let end = (now - 10 * MIN).div_euclid(MIN) * MIN + 30;
    let samples = generate(end);

    let dir = tempfile::tempdir().unwrap();
    let prometheus = start_prometheus(dir.path(), &samples);

    let server = Server::start(&["--slo-interval", "1s"]);
    for chunk in samples.chunks(2000) {
        let refs: Vec<&Sample> = chunk.iter().collect();
        let (status, body) = http_post(
            server.otlp_http,
            "/v1/metrics",
            "application/x-protobuf",
            &otlp(&refs),
        );
        assert_eq!(status, 200, "{body}");
    }
    // Created after the data is stored: the SLO backfills from history.
    let (status, body) = http_request(
        server.http,
        "PUT",
        "/api/v1/slos/api-requests",
        &[("content-type", "application/yaml")],
        SLO.as_bytes(),
    );
    assert_eq!(status, 201, "{body}");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (_, body) = http_request(server.http, "GET", "/api/v1/slos/api-requests", &[], b"");
        let v: Value = serde_json::from_str(&body).unwrap();
        if v["backfill"]["done"] == true {
            assert!(v["error"].is_null(), "{v:#}");
            break;
        }
        assert!(Instant::now() < deadline, "backfill did not finish: {v:#}");
        std::thread::sleep(Duration::from_millis(300));
    }

    // Instants between scrapes, as when an evaluation does not coincide with
    // a scrape (Prometheus 2 includes a sample on the window's left edge, so
    // at a scrape's instant it sees the same intervals as the buckets do).
    let instants = [
        end + 17,
        end - 37 * MIN + 5,
        end - 6 * 60 * MIN + 44,
        end - 1440 * MIN + 11 * MIN + 29,
    ];
    let mut prometheus_differs = false;
    for at in instants {
        let (_, body) = http_request(
            server.http,
            "GET",
            &format!("/api/v1/slos/api-requests/series?from={at}&to={at}"),
            &[],
            b"",
        );
        let series: Value = serde_json::from_str(&body).unwrap();
        for (window, minutes) in WINDOWS {
            let (bad, total) = exact(&samples, at, minutes);
            let exact_ratio = bad as f64 / total as f64;
            // smolder: exact counts from the rollups…
            let first_bucket = (at.div_euclid(MIN) - minutes + 1) * MIN;
            let counts = server.sql(&format!(
                "SELECT sum(total) - sum(good), sum(total) FROM slo_rollups \
                 WHERE slo = 'api-requests' AND bucket_start >= to_timestamp({first_bucket}) \
                 AND bucket_start <= to_timestamp({at})"
            ));
            let row = &counts["rows"][0];
            assert_eq!(
                (row[0].as_f64().unwrap(), row[1].as_f64().unwrap()),
                (bad as f64, total as f64),
                "smolder's counts over {window} at {at}"
            );
            // …and the burn rate the API reports for the window.
            let burn = series["burn_rates"][window][0].as_f64().unwrap();
            let ratio = burn * 0.01;
            assert!(
                (ratio - exact_ratio).abs() <= 1e-12 * exact_ratio.max(1e-12),
                "smolder {ratio} vs exact {exact_ratio} over {window} at {at}"
            );
            // Prometheus, within what its extrapolation allows.
            let prom = prometheus_ratio(&prometheus, window, at);
            eprintln!(
                "{window} at {at}: exact {exact_ratio:.9} smolder {ratio:.9} prometheus {prom:.9}"
            );
            let tolerance = 1.5 / minutes as f64 * exact_ratio + 1e-9;
            assert!(
                (prom - exact_ratio).abs() <= tolerance,
                "Prometheus {prom} vs exact {exact_ratio} over {window} at {at} (tolerance {tolerance})"
            );
            if (prom - exact_ratio).abs() > 1e-9 {
                prometheus_differs = true;
            }
        }
    }
    assert!(
        prometheus_differs,
        "Prometheus extrapolates at the window edges; it should differ from the exact ratio somewhere"
    );
}

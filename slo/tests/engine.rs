//! The SLO engine over real DataFusion tables filled through smolder's OTLP
//! conversion, with an injected clock.
//!
//! The property test drives random counter series (delta and cumulative,
//! resets, gaps, data arriving late within the allowed lateness) through
//! ticks, then checks every alert window's counts, burn rate and the budget
//! left against a plain computation from the generated events — exactly.

use std::sync::Arc;
use std::time::Duration;

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
    metric, number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, status};
use proptest::prelude::*;
use smolder_common::clock::ManualClock;
use smolder_common::{Table, TableSource};
use smolder_query::{QueryEngine, QueryLimits};
use smolder_slo::engine::ExclusionError;
use smolder_slo::eval::{budget_remaining, burn_rate};
use smolder_slo::exclusion::ExclusionSpec;
use smolder_slo::model::Window;
use smolder_slo::persist::Db;
use smolder_slo::rollup::Counts;
use smolder_slo::{EngineOptions, SloEngine};

const SEC: i64 = 1_000_000_000;
const MIN: i64 = 60 * SEC;
/// 2026-01-01T00:00:00Z.
const T0: i64 = 1_767_225_600 * SEC;

type Memory = smolder_common::BatchesInMemory;

fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
        ..Default::default()
    }
}

fn resource(service: &str) -> Option<Resource> {
    Some(Resource {
        attributes: vec![kv("service.name", service)],
        ..Default::default()
    })
}

async fn engine(
    memory: &Arc<Memory>,
    clock: &Arc<ManualClock>,
    lateness: Duration,
) -> Arc<SloEngine> {
    let source: Arc<dyn TableSource> = Arc::clone(memory) as Arc<dyn TableSource>;
    let query = QueryEngine::new(vec![source], QueryLimits::default()).unwrap();
    let options = EngineOptions {
        step: Duration::from_secs(60),
        lateness,
        interval: Duration::from_secs(60),
        counter_lookback: Duration::from_secs(15 * 60),
        // Catch up on the (empty) history in one tick.
        backfill_chunk: Duration::from_secs(40 * 86_400),
        ..EngineOptions::default()
    };
    SloEngine::new(
        query.clone(),
        Db::in_memory().unwrap(),
        Arc::clone(clock) as Arc<dyn smolder_common::clock::Clock>,
        options,
    )
    .await
    .unwrap()
}

const COUNTER_SLO: &str = r#"
apiVersion: openslo/v1
kind: SLO
metadata:
  name: requests
spec:
  service: api
  indicator:
    metadata:
      name: requests-ok
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

/// One export of one series: events since the previous export.
#[derive(Debug, Clone)]
struct Step {
    requests: u32,
    errors: u32,
    /// The process restarted before this export: a new start time and
    /// counters from zero (cumulative series).
    reset: bool,
    /// No export for a while before this one (an empty window, and the
    /// events of the gap in this export).
    gap: bool,
    /// Minutes between the point's time and its arrival.
    delay: i64,
}

#[derive(Debug, Clone)]
struct Series {
    delta: bool,
    every: i64,
    offset: i64,
    steps: Vec<Step>,
}

fn step() -> impl Strategy<Value = Step> {
    (
        0u32..20,
        0u32..=100,
        prop::bool::weighted(0.1),
        prop::bool::weighted(0.08),
        0i64..=4,
    )
        .prop_map(|(requests, error_pct, reset, gap, delay)| Step {
            requests,
            errors: requests * error_pct / 100,
            reset,
            gap,
            delay,
        })
}

fn series() -> impl Strategy<Value = Series> {
    (
        any::<bool>(),
        1i64..=3,
        0i64..60,
        prop::collection::vec(step(), 5..30),
    )
        .prop_map(|(delta, every, offset, steps)| Series {
            delta,
            every,
            offset,
            steps,
        })
}

/// A generated point: when it happened, when it arrives, and the events it
/// adds (the reference increments).
#[derive(Debug, Clone)]
struct Point {
    series: usize,
    time: i64,
    start: i64,
    arrival: i64,
    requests: u64,
    errors: u64,
    value_requests: u64,
    value_errors: u64,
    delta: bool,
}

fn points(all: &[Series]) -> Vec<Point> {
    let mut out = Vec::new();
    for (i, s) in all.iter().enumerate() {
        let mut t = T0 + s.offset * SEC;
        let mut start = t;
        let (mut cum_r, mut cum_e) = (0u64, 0u64);
        let mut previous = t;
        for (k, step) in s.steps.iter().enumerate() {
            // A gap longer than the counter lookback (15 minutes here): the
            // engine keeps each series' last point, so the increase across
            // the gap still counts. (A series' first point comes within the
            // lookback of its start: with no earlier point to go by, one
            // that starts earlier is taken as running already.)
            let gap = step.gap && k > 0;
            t += s.every * MIN + if gap { 25 * MIN } else { 0 };
            if step.reset && !s.delta {
                start = t - 20 * SEC;
                cum_r = 0;
                cum_e = 0;
            }
            cum_r += u64::from(step.requests);
            cum_e += u64::from(step.errors);
            let (value_requests, value_errors, point_start) = if s.delta {
                (u64::from(step.requests), u64::from(step.errors), previous)
            } else {
                (cum_r, cum_e, start)
            };
            out.push(Point {
                series: i,
                time: t,
                start: point_start,
                arrival: t + step.delay * MIN,
                requests: u64::from(step.requests),
                errors: u64::from(step.errors),
                value_requests,
                value_errors,
                delta: s.delta,
            });
            previous = t;
        }
    }
    out
}

fn request(p: &Point) -> ExportMetricsServiceRequest {
    let temporality = if p.delta {
        AggregationTemporality::Delta
    } else {
        AggregationTemporality::Cumulative
    } as i32;
    let sum = |name: &str, value: u64| Metric {
        name: name.into(),
        data: Some(metric::Data::Sum(Sum {
            data_points: vec![NumberDataPoint {
                attributes: vec![kv("series", &format!("s{}", p.series))],
                start_time_unix_nano: p.start as u64,
                time_unix_nano: p.time as u64,
                value: Some(number_data_point::Value::AsInt(value as i64)),
                ..Default::default()
            }],
            aggregation_temporality: temporality,
            is_monotonic: true,
        })),
        ..Default::default()
    };
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: resource("api"),
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![
                    sum("requests", p.value_requests),
                    sum("errors", p.value_errors),
                ],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// Counts of the window of length `w` ending at `now`, from the generated
/// events: the increments of the points whose minute lies in the window.
fn reference(points: &[Point], now: i64, w: Duration) -> Counts {
    let n = (w.as_secs() as i64 * SEC + MIN - 1) / MIN;
    let last = now.div_euclid(MIN);
    let (mut total, mut bad) = (0u64, 0u64);
    for p in points {
        let b = p.time.div_euclid(MIN);
        if b > last - n && b <= last {
            total += p.requests;
            bad += p.errors;
        }
    }
    Counts {
        good: (total - bad) as f64,
        total: total as f64,
    }
}

async fn run_counter_case(all: Vec<Series>) -> Result<(), TestCaseError> {
    let memory = Arc::new(Memory::default());
    let clock = Arc::new(ManualClock::new(T0));
    let engine = engine(&memory, &clock, Duration::from_secs(5 * 60)).await;
    engine.put("requests", COUNTER_SLO).await.unwrap();
    let mut pending = points(&all);
    let last_arrival = pending.iter().map(|p| p.arrival).max().unwrap_or(T0);
    pending.sort_by_key(|p| p.arrival);
    let mut arrived = Vec::new();
    let mut tick = T0;
    // A tick every two minutes, off the minute, until everything arrived.
    while tick <= last_arrival + 2 * MIN {
        tick += 2 * MIN + 7 * SEC;
        clock.set(tick);
        while pending.first().is_some_and(|p| p.arrival <= tick) {
            let p = pending.remove(0);
            let converted = smolder_ingest::convert::metrics(&request(&p)).unwrap();
            memory.push(Table::Metrics, converted.batch);
            arrived.push(p);
        }
        let report = engine.tick().await;
        prop_assert_eq!(report.failed, 0, "{:?}", engine.snapshot().slos[0].error);
    }
    let snap = engine.snapshot();
    let slo = &snap.slos[0];
    prop_assert!(slo.error.is_none(), "{:?}", slo.error);
    let def = &slo.definition;
    let mut windows: Vec<Duration> = def
        .alert_windows
        .iter()
        .flat_map(|w| [w.long, w.short])
        .collect();
    windows.sort();
    windows.dedup();
    // Now, and instants along the way (evaluated from the final rollups).
    let times: Vec<i64> = (0..12).map(|k| tick - k * 9 * MIN).collect();
    let evals = engine
        .series("requests", &Vec::new(), &times)
        .await
        .unwrap();
    for (t, e) in times.iter().zip(&evals) {
        for w in &windows {
            let name = Window(*w);
            let expect = reference(&arrived, *t, *w);
            prop_assert_eq!(
                e.window_events[&name],
                expect.total,
                "events {} at {}",
                name,
                t
            );
            prop_assert_eq!(
                e.burn_rates[&name],
                burn_rate(expect, def.objective),
                "burn rate {} at {}",
                name,
                t
            );
        }
        let period = reference(&arrived, *t, Duration::from_secs(30 * 86_400));
        prop_assert_eq!(e.period, period);
        prop_assert_eq!(
            e.error_budget_remaining,
            budget_remaining(period, def.objective)
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, max_shrink_iters: 40, ..ProptestConfig::default() })]

    #[test]
    fn counter_burn_rates_match_the_events(all in prop::collection::vec(series(), 1..=3)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(run_counter_case(all))?;
    }
}

fn span(route: &str, start: i64, duration_ms: i64, error: bool, id: u64) -> Span {
    Span {
        trace_id: id.to_be_bytes().repeat(2),
        span_id: id.to_be_bytes().to_vec(),
        name: format!("GET {route}"),
        kind: 2,
        start_time_unix_nano: start as u64,
        end_time_unix_nano: (start + duration_ms * 1_000_000) as u64,
        attributes: vec![kv("http.route", route)],
        status: Some(Status {
            code: if error {
                status::StatusCode::Error
            } else {
                status::StatusCode::Ok
            } as i32,
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn spans_request(service: &str, spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: resource(service),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

const ROUTE_SLO: &str = r#"
apiVersion: openslo/v1
kind: SLO
metadata:
  name: shop-latency
  annotations:
    smolder.dev/min-events: "3"
    # This SLO's tests count a handful of events.
    smolder.dev/min-bad-events: "0"
spec:
  service: shop
  indicator:
    metadata:
      name: fast-and-ok
    spec:
      ratioMetric:
        counter: true
        good:
          metricSource:
            type: smolder
            spec:
              table: spans
              filter: "service_name = 'shop' AND status_code <> 'ERROR' AND duration_ns <= 300e6"
        total:
          metricSource:
            type: smolder
            spec:
              table: spans
              filter: "service_name = 'shop'"
              groupBy: [http_route]
              maxGroups: 2
  timeWindow:
    - duration: 7d
      isRolling: true
  budgetingMethod: Occurrences
  objectives:
    - target: 0.9
"#;

#[tokio::test]
async fn span_slo_per_route_with_a_group_limit() {
    let memory = Arc::new(Memory::default());
    let clock = Arc::new(ManualClock::new(T0));
    let engine = engine(&memory, &clock, Duration::from_secs(120)).await;
    engine.put("shop-latency", ROUTE_SLO).await.unwrap();
    // /pay: 10 spans, 2 errors and 1 slow one; /cart: 4 fine spans; /search
    // comes third and is over the group limit; other services do not count.
    let t = T0 + 30 * SEC;
    let mut spans = Vec::new();
    for i in 0..10 {
        spans.push(span(
            "/pay",
            t + i * SEC,
            if i == 5 { 900 } else { 20 },
            i < 2,
            i as u64 + 1,
        ));
    }
    for i in 0..4 {
        spans.push(span("/cart", t + i * SEC, 20, false, 100 + i as u64));
    }
    let search = vec![span("/search", t, 20, true, 200)];
    let other = vec![span("/pay", t, 20, true, 300)];
    for (service, batch) in [("shop", spans), ("shop", search), ("other", other)] {
        let converted = smolder_ingest::convert::spans(&spans_request(service, batch)).unwrap();
        memory.push(Table::Spans, converted.batch);
    }
    clock.set(T0 + 2 * MIN);
    engine.tick().await;
    let snap = engine.snapshot();
    let slo = &snap.slos[0];
    assert!(slo.error.is_none(), "{:?}", slo.error);
    assert_eq!(slo.instances.len(), 2, "{:?}", slo.instances);
    assert!(
        slo.dropped_group_rows > 0,
        "the third route is over the limit"
    );
    let pay = slo
        .instances
        .iter()
        .find(|i| i.group["http_route"] == "/pay")
        .unwrap();
    assert_eq!(pay.evaluation.period.total, 10.0);
    assert_eq!(pay.evaluation.period.good, 7.0);
    // 3 bad of 10 at a 10% budget: a burn rate of 3 and the budget overspent 3 times.
    assert!((pay.evaluation.burn_rates[&Window(Duration::from_secs(3600))] - 3.0).abs() < 1e-12);
    assert!((pay.evaluation.error_budget_remaining - (1.0 - 3.0)).abs() < 1e-12);
    let cart = slo
        .instances
        .iter()
        .find(|i| i.group["http_route"] == "/cart")
        .unwrap();
    assert_eq!(cart.evaluation.period.good, 4.0);
    // The worst group comes first.
    assert_eq!(slo.instances[0].group["http_route"], "/pay");

    // A span arriving late (within the lateness) lands in its own minute.
    let late = vec![span("/cart", T0 + 45 * SEC, 20, true, 400)];
    let converted = smolder_ingest::convert::spans(&spans_request("shop", late)).unwrap();
    memory.push(Table::Spans, converted.batch);
    clock.set(T0 + 3 * MIN);
    engine.tick().await;
    let snap = engine.snapshot();
    let cart = snap.slos[0]
        .instances
        .iter()
        .find(|i| i.group["http_route"] == "/cart")
        .unwrap();
    assert_eq!(cart.evaluation.period.total, 5.0);
    assert_eq!(cart.evaluation.period.good, 4.0);
    // Low-traffic guard: /cart's 5-minute window has 5 events (≥ 3), so its
    // conditions may hold; a window needs 3.
    assert!(cart.evaluation.conditions.iter().all(|c| !c.low_traffic));
}

#[tokio::test]
async fn bad_sql_is_refused_when_the_slo_is_created() {
    let memory = Arc::new(Memory::default());
    let clock = Arc::new(ManualClock::new(T0));
    let engine = engine(&memory, &clock, Duration::from_secs(120)).await;
    let yaml = ROUTE_SLO.replace("duration_ns <= 300e6", "no_such_column <= 300e6");
    let Err(smolder_slo::PutError::Invalid(problems)) = engine.put("shop-latency", &yaml).await
    else {
        panic!("refused as invalid")
    };
    let text = problems[0].to_string();
    assert!(text.contains("no_such_column"), "{text}");
    // The problem names the document and the field of the expression.
    assert_eq!(problems[0].document, 1);
    assert_eq!(
        problems[0].field,
        "spec.indicator.spec.ratioMetric.good.metricSource.spec.filter"
    );
    let yaml = ROUTE_SLO.replace(
        "service_name = 'shop'\"\n              groupBy",
        "service_name = 'shop') OR (true\"\n              groupBy",
    );
    let Err(smolder_slo::PutError::Invalid(problems)) = engine.put("shop-latency", &yaml).await
    else {
        panic!("refused as invalid")
    };
    assert!(
        problems[0].message.contains("more than one expression"),
        "{problems:?}"
    );
    // Nothing was created.
    engine.evaluate_now().await;
    assert!(engine.snapshot().slos.is_empty());
}

fn gauge_request(points: &[(i64, f64)]) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: resource("api"),
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![Metric {
                    name: "memory".into(),
                    data: Some(metric::Data::Gauge(Gauge {
                        data_points: points
                            .iter()
                            .map(|&(t, v)| NumberDataPoint {
                                time_unix_nano: t as u64,
                                value: Some(number_data_point::Value::AsDouble(v)),
                                ..Default::default()
                            })
                            .collect(),
                    })),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn gauge_slo(name: &str, method: &str, window: &str) -> String {
    format!(
        r#"
apiVersion: openslo/v1
kind: SLO
metadata:
  name: {name}
spec:
  service: api
  indicator:
    metadata:
      name: {name}-memory
    spec:
      thresholdMetric:
        metricSource:
          type: smolder
          spec:
            table: metrics
            filter: "metric_name = 'memory'"
  timeWindow:
{window}
  budgetingMethod: {method}
  objectives:
    - op: lte
      value: 100
      target: 0.9
      timeSliceTarget: 0.75
      timeSliceWindow: 1m
"#
    )
}

#[tokio::test]
async fn gauge_thresholds_over_timeslices_and_a_calendar_month() {
    // 2026-03-15T12:00:00Z; Berlin is UTC+1 until March 29.
    let now = 1_773_576_000 * SEC;
    let memory = Arc::new(Memory::default());
    let clock = Arc::new(ManualClock::new(now - 10 * MIN));
    let engine = engine(&memory, &clock, Duration::from_secs(120)).await;
    let rolling = "    - duration: 7d\n      isRolling: true";
    let calendar = "    - duration: 1M\n      isRolling: false\n      calendar:\n        startTime: \"2024-01-01 00:00:00\"\n        timeZone: Europe/Berlin";
    engine
        .put("slices", &gauge_slo("slices", "Timeslices", rolling))
        .await
        .unwrap();
    engine
        .put("ratios", &gauge_slo("ratios", "RatioTimeslices", rolling))
        .await
        .unwrap();
    engine
        .put("month", &gauge_slo("month", "Timeslices", calendar))
        .await
        .unwrap();
    // Four points a minute for four minutes, 3, 4, 2 and 0 of them under the
    // threshold: slices 0.75 (good), 1 (good), 0.5, 0; and a good slice just
    // before the Berlin month began (2026-02-28T23:00Z), one just after.
    let base = now - 6 * MIN;
    let mut points = Vec::new();
    for (minute, under) in [(0i64, 3), (1, 4), (2, 2), (3, 0)] {
        for k in 0..4 {
            let value = if k < under { 50.0 } else { 150.0 };
            points.push((base + minute * MIN + k * 10 * SEC, value));
        }
    }
    let month_start = 1_772_319_600 * SEC; // 2026-02-28T23:00:00Z
    points.push((month_start - 30 * SEC, 10.0));
    points.push((month_start + 30 * SEC, 10.0));
    let converted = smolder_ingest::convert::metrics(&gauge_request(&points)).unwrap();
    memory.push(Table::Metrics, converted.batch);
    clock.set(now);
    engine.tick().await;
    let snap = engine.snapshot();
    let get = |id: &str| {
        let s = snap.slos.iter().find(|s| s.definition.id == id).unwrap();
        assert!(s.error.is_none(), "{:?}", s.error);
        s.instances[0].evaluation.clone()
    };
    let slices = get("slices");
    // The four recent slices (those around the month start are older than
    // the 7-day period); the first two good.
    assert_eq!(
        slices.period,
        Counts {
            good: 2.0,
            total: 4.0
        }
    );
    let ratios = get("ratios");
    assert_eq!(ratios.period.total, 4.0);
    assert!((ratios.period.good - (0.75 + 1.0 + 0.5 + 0.0)).abs() < 1e-12);
    let month = get("month");
    assert_eq!(month.period_start_ns, month_start);
    assert_eq!(
        month.period,
        Counts {
            good: 3.0,
            total: 5.0
        },
        "February's slice is not in March"
    );
    // 10-minute windows: 2 bad slices of 4 at a 10% budget burn at 5.
    assert!(
        (slices.burn_rates[&Window(Duration::from_secs(1800))] - 5.0).abs() < 1e-12,
        "{:?}",
        slices.burn_rates
    );
}

/// SLOs without groups on one table share a scan once they are caught up;
/// each still gets its own counts.
/// `ROUTE_SLO` without groups as `ok` (good: no error and fast), and
/// `errors` (bad: an error).
fn ungrouped_slos() -> (String, String) {
    let ok = ROUTE_SLO.replace("shop-latency", "ok").replace(
        "              groupBy: [http_route]\n              maxGroups: 2\n",
        "",
    );
    let errors = ok
        .replace("name: ok", "name: errors")
        .replace("good:", "bad:")
        .replace(
            "service_name = 'shop' AND status_code <> 'ERROR' AND duration_ns <= 300e6",
            "service_name = 'shop' AND status_code = 'ERROR'",
        );
    (ok, errors)
}

#[tokio::test]
async fn caught_up_slos_of_a_table_are_computed_in_one_scan() {
    let memory = Arc::new(Memory::default());
    let clock = Arc::new(ManualClock::new(T0));
    let engine = engine(&memory, &clock, Duration::from_secs(120)).await;
    let (ok, errors) = ungrouped_slos();
    let threshold = r#"
apiVersion: openslo/v1
kind: SLO
metadata:
  name: fast
spec:
  service: shop
  indicator:
    metadata:
      name: fast-spans
    spec:
      thresholdMetric:
        metricSource:
          type: smolder
          spec:
            table: spans
            filter: "service_name = 'shop'"
            value: "duration_ns / 1e6"
  timeWindow:
    - duration: 7d
      isRolling: true
  budgetingMethod: Occurrences
  objectives:
    - op: lte
      value: 100
      target: 0.9
"#;
    for (id, yaml) in [
        ("ok", ok.as_str()),
        ("errors", errors.as_str()),
        ("fast", threshold),
    ] {
        engine.put(id, yaml).await.unwrap();
    }
    // The first tick catches up on history SLO by SLO.
    clock.set(T0 + MIN);
    engine.tick().await;
    // Then 10 spans: 2 errors (0, 1), 4 slow (0, 7, 8, 9).
    let spans: Vec<Span> = (0..10)
        .map(|i| {
            span(
                "/pay",
                T0 + MIN + i * SEC,
                if i >= 7 || i == 0 { 500 } else { 20 },
                i < 2,
                1000 + i as u64,
            )
        })
        .collect();
    let converted = smolder_ingest::convert::spans(&spans_request("shop", spans)).unwrap();
    memory.push(Table::Spans, converted.batch);
    clock.set(T0 + 2 * MIN);
    let report = engine.tick().await;
    assert_eq!((report.updated, report.failed), (3, 0));
    let snap = engine.snapshot();
    let period = |id: &str| {
        let s = snap.slos.iter().find(|s| s.definition.id == id).unwrap();
        assert!(s.error.is_none(), "{:?}", s.error);
        s.instances[0].evaluation.period
    };
    // ok: neither an error nor slow — 10 − 5.
    assert_eq!(
        period("ok"),
        Counts {
            good: 5.0,
            total: 10.0
        }
    );
    assert_eq!(
        period("errors"),
        Counts {
            good: 8.0,
            total: 10.0
        }
    );
    assert_eq!(
        period("fast"),
        Counts {
            good: 6.0,
            total: 10.0
        }
    );
}

/// A tick whose rollups cannot be stored keeps them and stores them with the
/// next one, so the database never misses a range.
#[tokio::test]
async fn rollups_a_failed_store_left_behind_are_stored_later() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("slo.db");
    let memory = Arc::new(Memory::default());
    let clock = Arc::new(ManualClock::new(T0));
    let source: Arc<dyn TableSource> = Arc::clone(&memory) as Arc<dyn TableSource>;
    let query = QueryEngine::new(vec![source], QueryLimits::default()).unwrap();
    let engine = SloEngine::new(
        query.clone(),
        Db::open(&path).unwrap(),
        Arc::clone(&clock) as Arc<dyn smolder_common::clock::Clock>,
        EngineOptions {
            backfill_chunk: Duration::from_secs(40 * 86_400),
            ..EngineOptions::default()
        },
    )
    .await
    .unwrap();
    let slo = ROUTE_SLO.replace(
        "              groupBy: [http_route]\n              maxGroups: 2\n",
        "",
    );
    engine.put("shop-latency", &slo).await.unwrap();
    let add = |at: i64, id: u64| {
        let request = spans_request("shop", vec![span("/pay", at, 20, false, id)]);
        memory.push(
            Table::Spans,
            smolder_ingest::convert::spans(&request).unwrap().batch,
        );
    };
    let stored = || {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.query_row("SELECT COALESCE(sum(total), 0) FROM rollups", [], |r| {
            r.get::<_, f64>(0)
        })
        .unwrap()
    };
    add(T0 + 30 * SEC, 1);
    clock.set(T0 + MIN);
    engine.tick().await;
    assert_eq!(stored(), 1.0);
    // The database fails: its rollups table is gone for a tick.
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch("ALTER TABLE rollups RENAME TO rollups_away")
        .unwrap();
    // Older than the next tick's recomputed range (from 9 minutes on).
    add(T0 + 5 * MIN, 2);
    clock.set(T0 + 11 * MIN);
    engine.tick().await;
    conn.execute_batch("ALTER TABLE rollups_away RENAME TO rollups")
        .unwrap();
    assert_eq!(stored(), 1.0, "the failed tick stored nothing");
    add(T0 + 20 * MIN, 3);
    clock.set(T0 + 21 * MIN);
    engine.tick().await;
    assert_eq!(stored(), 3.0, "the next tick stored both");
    let snap = engine.snapshot();
    assert_eq!(snap.slos[0].instances[0].evaluation.period.total, 3.0);
}

/// SLOs created over days of stored history: the ungrouped ones on one table
/// backfill together (one scan per chunk for all of them), every SLO is
/// listed from the first tick on with its progress, a tick reads no more
/// history than its budget allows (here none beyond the first chunk), and
/// the finished rollups count every stored event exactly.
#[tokio::test]
async fn slos_created_over_history_backfill_together_within_the_tick_budget() {
    const DAY: i64 = 86_400 * SEC;
    let memory = Arc::new(Memory::default());
    let clock = Arc::new(ManualClock::new(T0));
    // Five days of history: a span every 10 minutes, every 7th an error,
    // every 5th slow, on two routes.
    let spans: Vec<Span> = (0..5 * 144)
        .map(|i: i64| {
            let route = if i % 2 == 0 { "/pay" } else { "/cart" };
            let slow = if i % 5 == 0 { 500 } else { 20 };
            span(
                route,
                T0 - 5 * DAY + i * 10 * MIN,
                slow,
                i % 7 == 0,
                5000 + i as u64,
            )
        })
        .collect();
    let (total, errors) = (spans.len() as f64, spans.len().div_ceil(7) as f64);
    let good = (0..spans.len() as i64)
        .filter(|i| i % 7 != 0 && i % 5 != 0)
        .count() as f64;
    let request = spans_request("shop", spans);
    memory.push(
        Table::Spans,
        smolder_ingest::convert::spans(&request).unwrap().batch,
    );
    let source: Arc<dyn TableSource> = Arc::clone(&memory) as Arc<dyn TableSource>;
    let query = QueryEngine::new(vec![source], QueryLimits::default()).unwrap();
    let engine = SloEngine::new(
        query.clone(),
        Db::in_memory().unwrap(),
        Arc::clone(&clock) as Arc<dyn smolder_common::clock::Clock>,
        EngineOptions {
            backfill_chunk: Duration::from_secs(86_400),
            backfill_budget: Duration::ZERO,
            ..EngineOptions::default()
        },
    )
    .await
    .unwrap();
    let (ok, errors_slo) = ungrouped_slos();
    for (id, yaml) in [
        ("ok", ok.as_str()),
        ("errors", errors_slo.as_str()),
        ("shop-latency", ROUTE_SLO),
    ] {
        engine.put(id, yaml).await.unwrap();
    }
    let progress = |snap: &smolder_slo::engine::Snapshot, id: &str| {
        let s = snap.slos.iter().find(|s| s.definition.id == id).unwrap();
        assert!(s.error.is_none(), "{id}: {:?}", s.error);
        (s.backfill.done, s.backfill.progress)
    };
    clock.set(T0 + MIN);
    engine.tick().await;
    let snap = engine.snapshot();
    assert_eq!(
        snap.slos.len(),
        3,
        "every SLO is listed from the first tick on"
    );
    let (ok_done, ok_progress) = progress(&snap, "ok");
    assert!(!ok_done, "one day of five per tick");
    assert_eq!(
        progress(&snap, "errors"),
        (ok_done, ok_progress),
        "the ungrouped SLOs backfill in one scan"
    );
    assert_eq!(
        progress(&snap, "shop-latency"),
        (false, 0.0),
        "the tick's budget was spent: the grouped SLO waits"
    );
    let mut ticks = 1;
    while engine.snapshot().slos.iter().any(|s| !s.backfill.done) {
        ticks += 1;
        assert!(
            ticks <= 20,
            "backfill did not finish: {:?}",
            engine.snapshot().slos
        );
        clock.set(T0 + ticks * MIN);
        engine.tick().await;
    }
    assert!(
        ticks >= 6,
        "the budget held each tick to one chunk ({ticks} ticks)"
    );
    let snap = engine.snapshot();
    let period = |id: &str| {
        let s = snap.slos.iter().find(|s| s.definition.id == id).unwrap();
        let mut all = Counts::default();
        for i in &s.instances {
            all.good += i.evaluation.period.good;
            all.total += i.evaluation.period.total;
        }
        all
    };
    assert_eq!(period("ok"), Counts { good, total });
    assert_eq!(
        period("errors"),
        Counts {
            good: total - errors,
            total
        }
    );
    assert_eq!(period("shop-latency"), Counts { good, total });
}

/// An engine over the SLO files of `dir`, as `smolder serve` builds it.
async fn engine_over_dir(
    memory: &Arc<Memory>,
    clock: &Arc<ManualClock>,
    dir: &std::path::Path,
) -> Arc<SloEngine> {
    let config = smolder_slo::SloConfig {
        dir: Some(dir.to_path_buf()),
        ..smolder_slo::SloConfig::default()
    };
    let query = QueryEngine::new(
        vec![Arc::clone(memory) as Arc<dyn TableSource>],
        QueryLimits::default(),
    )
    .unwrap();
    SloEngine::new(
        query,
        Db::in_memory().unwrap(),
        Arc::clone(clock) as Arc<dyn smolder_common::clock::Clock>,
        config.engine_options(Duration::from_secs(30)),
    )
    .await
    .unwrap()
}

/// Every sample SLO counted over rows — good, bad and total filters, a
/// latency threshold in a filter, a gauge threshold, and the grouped one
/// without its groups — is rolled up together with the others of its table,
/// tick after tick, with no fallback to one query per SLO.
#[tokio::test]
async fn every_sample_row_slo_is_rolled_up_together_with_no_fallback() {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in smolder_sample_data::SAMPLE_SLOS {
        // Groups are rolled up per SLO; without them the SLO joins the batch.
        let text = text.replace(
            "              groupBy: [http_route]\n              maxGroups: 20\n",
            "",
        );
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let memory = Arc::new(Memory::default());
    let clock = Arc::new(ManualClock::new(T0));
    let engine = engine_over_dir(&memory, &clock, dir.path()).await;
    let row_slos: Vec<String> = engine
        .snapshot()
        .slos
        .iter()
        .filter(|s| {
            matches!(
                s.definition.sli.kind,
                smolder_slo::model::SliKind::Rows { .. }
                    | smolder_slo::model::SliKind::Threshold { .. }
            )
        })
        .map(|s| {
            assert!(s.definition.group_by.is_empty(), "{}", s.definition.id);
            s.definition.id.clone()
        })
        .collect();
    assert_eq!(row_slos.len(), 5, "{row_slos:?}");
    let mut generator = smolder_sample_data::Generator::new(42, T0 as u64);
    generator.set_incident(true);
    for minute in 1..=4 {
        for second in 0..60 {
            let telemetry = generator.requests(5, SEC as u64);
            memory.push(
                Table::Spans,
                smolder_ingest::convert::spans(&telemetry.traces)
                    .unwrap()
                    .batch,
            );
            memory.push(
                Table::Logs,
                smolder_ingest::convert::logs(&telemetry.logs)
                    .unwrap()
                    .batch,
            );
            if second % 10 == 0 {
                memory.push(
                    Table::Metrics,
                    smolder_ingest::convert::metrics(&generator.metrics())
                        .unwrap()
                        .batch,
                );
            }
        }
        clock.set(T0 + minute * MIN + 7 * SEC);
        let report = engine.tick().await;
        assert_eq!(report.fallbacks, 0, "minute {minute}");
        if minute > 1 {
            // Caught up: every row SLO in the batched path.
            assert_eq!(report.batched, row_slos.len(), "minute {minute}");
        }
        for s in &engine.snapshot().slos {
            assert_eq!(s.error, None, "{}", s.definition.id);
        }
    }
    assert_eq!(engine.batch_fallbacks(), 0);
    let snap = engine.snapshot();
    for id in &row_slos {
        let s = snap.slos.iter().find(|s| &s.definition.id == id).unwrap();
        assert!(
            s.instances[0].evaluation.period.total > 0.0,
            "{id} counted nothing"
        );
    }
}

/// When rolling up a batch fails, its SLOs are updated one by one that tick
/// and counted as fallbacks; the failing SLO then goes alone and the others
/// are batched again.
#[tokio::test]
async fn a_failing_batch_is_counted_and_its_other_slos_are_batched_again() {
    let memory = Arc::new(Memory::default());
    let clock = Arc::new(ManualClock::new(T0));
    let engine = engine(&memory, &clock, Duration::from_secs(120)).await;
    let (ok, errors) = ungrouped_slos();
    // Integer division by zero: an error only when a row is read.
    let failing = ok.replace("  name: ok\n", "  name: broken\n").replace(
        "service_name = 'shop'",
        "service_name = 'shop' AND 1 / (duration_ns - duration_ns) = 0",
    );
    assert_ne!(failing, ok);
    for (id, yaml) in [
        ("ok", ok.as_str()),
        ("errors", errors.as_str()),
        ("broken", failing.as_str()),
    ] {
        engine.put(id, yaml).await.unwrap();
    }
    clock.set(T0 + MIN);
    engine.tick().await;
    let spans: Vec<Span> = (0..10)
        .map(|i| span("/pay", T0 + MIN + i * SEC, 20, i < 2, 2000 + i as u64))
        .collect();
    let converted = smolder_ingest::convert::spans(&spans_request("shop", spans)).unwrap();
    memory.push(Table::Spans, converted.batch);
    clock.set(T0 + 2 * MIN);
    let report = engine.tick().await;
    assert_eq!(report.fallbacks, 3, "the whole batch fell back");
    assert_eq!(engine.batch_fallbacks(), 3);
    let snap = engine.snapshot();
    let broken = snap
        .slos
        .iter()
        .find(|s| s.definition.id == "broken")
        .unwrap();
    assert!(
        broken.error.as_deref().unwrap_or("").contains("zero"),
        "{:?}",
        broken.error
    );
    clock.set(T0 + 3 * MIN);
    let report = engine.tick().await;
    assert_eq!(
        (report.batched, report.fallbacks),
        (2, 0),
        "the others are batched again"
    );
    assert_eq!(engine.batch_fallbacks(), 3);
}

fn rfc3339(ns: i64) -> String {
    smolder_common::text::rfc3339(ns, chrono::SecondsFormat::Secs)
}

/// 10 spans a minute for `minutes` minutes from `from`; those of the
/// minutes in `bad` fail.
fn minutes_of_spans(from: i64, minutes: i64, bad: std::ops::Range<i64>, id: u64) -> Vec<Span> {
    (0..minutes)
        .flat_map(|m| {
            let failed = bad.contains(&m);
            (0..10).map(move |i| {
                span(
                    "/pay",
                    from + m * MIN + i * SEC,
                    20,
                    failed,
                    id + (m * 10 + i) as u64,
                )
            })
        })
        .collect()
}

fn push_spans(memory: &Memory, spans: Vec<Span>) {
    let converted = smolder_ingest::convert::spans(&spans_request("shop", spans)).unwrap();
    memory.push(Table::Spans, converted.batch);
}

fn evaluation(engine: &SloEngine) -> smolder_slo::eval::Evaluation {
    engine.snapshot().slos[0].instances[0].evaluation.clone()
}

/// An engine running the SLO `yaml` (id `ok`) over 10 minutes of spans
/// from T0, minutes 3, 4 and 5 failing (30 bad of 100), ticked at minute 12.
async fn ten_minutes_with_three_failing(yaml: &str) -> (Arc<ManualClock>, Arc<SloEngine>) {
    let memory = Arc::new(Memory::default());
    let clock = Arc::new(ManualClock::new(T0));
    let engine = engine(&memory, &clock, Duration::from_secs(120)).await;
    engine.put("ok", yaml).await.unwrap();
    push_spans(&memory, minutes_of_spans(T0, 10, 3..6, 1));
    clock.set(T0 + 12 * MIN);
    engine.tick().await;
    (clock, engine)
}

/// A budget exclusion takes its buckets' events out of every figure at
/// once — the figures equal those of an engine that never saw them — and
/// removing it gives the old figures back. The raw buckets stay
/// (`slo_rollups` marks the excluded ones).
#[tokio::test]
async fn an_exclusion_takes_its_events_out_of_every_figure_and_removing_it_restores_them() {
    let (ok, _) = ungrouped_slos();
    let (clock, engine) = ten_minutes_with_three_failing(&ok).await;
    let before = evaluation(&engine);
    assert_eq!((before.period.good, before.period.total), (70.0, 100.0));

    // The same spans without the failing minutes, through another engine.
    let clean_memory = Arc::new(Memory::default());
    let clean = self::engine(&clean_memory, &clock, Duration::from_secs(120)).await;
    clean.put("ok", &ok).await.unwrap();
    let mut spans = minutes_of_spans(T0, 10, 3..6, 1);
    spans.retain(|s| !(3 * MIN..6 * MIN).contains(&(s.start_time_unix_nano as i64 - T0)));
    push_spans(&clean_memory, spans);
    clean.tick().await;
    let never_seen = evaluation(&clean);

    // 03:30 to 05:10, rounded out to whole minutes: minutes 3 to 5.
    let spec = ExclusionSpec {
        start: rfc3339(T0 + 3 * MIN + 30 * SEC),
        end: Some(rfc3339(T0 + 5 * MIN + 10 * SEC)),
        duration: None,
        rrule: None,
        time_zone: None,
        reason: "a broken load balancer".into(),
    };
    let x = engine.add_exclusion("ok", spec, "tester").await.unwrap();
    engine.evaluate_now().await;
    let after = evaluation(&engine);
    assert_eq!((after.period.good, after.period.total), (70.0, 70.0));
    assert_eq!(after.error_budget_remaining, 1.0);
    assert_eq!(
        serde_json::to_value(&after).unwrap(),
        serde_json::to_value(&never_seen).unwrap(),
        "as if the excluded events had never happened"
    );
    // Charts: from the ring, and from the stored buckets (a chart of a
    // week's budget reads further back than the ring).
    for times in [vec![T0 + 12 * MIN], vec![T0 + 8 * MIN, T0 + 12 * MIN]] {
        let series = engine.series("ok", &Vec::new(), &times).await.unwrap();
        let expected = clean.series("ok", &Vec::new(), &times).await.unwrap();
        assert_eq!(
            serde_json::to_value(&series).unwrap(),
            serde_json::to_value(&expected).unwrap()
        );
    }
    let rows = engine.rollup_rows().await;
    let excluded: Vec<i64> = rows
        .iter()
        .filter(|r| r.excluded)
        .map(|r| (r.start_ns - T0) / MIN)
        .collect();
    assert_eq!(excluded, vec![3, 4, 5]);
    assert_eq!(
        rows.iter().map(|r| r.total).sum::<f64>(),
        100.0,
        "raw buckets stay"
    );
    assert!(engine.snapshot().slos[0].excluded_now.is_empty());

    assert_eq!(engine.remove_exclusion("ok", &x.id).await, Ok(x.clone()));
    engine.evaluate_now().await;
    assert_eq!(
        serde_json::to_value(evaluation(&engine)).unwrap(),
        serde_json::to_value(&before).unwrap(),
        "removing the exclusion restores the figures"
    );
    assert_eq!(
        engine.remove_exclusion("ok", &x.id).await,
        Err(ExclusionError::NotFound(format!(
            "SLO \"ok\" has no exclusion {:?}",
            x.id
        )))
    );
    assert!(matches!(
        engine.add_exclusion("nope", x.spec.clone(), "tester").await,
        Err(ExclusionError::NotFound(_))
    ));
}

/// A recurring exclusion from the SLO's annotation (daily, 00:00 to 00:10
/// UTC) goes on excluding day after day: its occurrences are worked out
/// ahead and renewed as time passes. It is changed with the definition,
/// not through the API.
#[tokio::test]
async fn a_daily_exclusion_from_the_annotation_goes_on_excluding_day_after_day() {
    const DAY: i64 = 1440 * MIN;
    let (ok, _) = ungrouped_slos();
    let annotated = ok.replace(
        "    smolder.dev/min-events: \"3\"\n",
        "    smolder.dev/min-events: \"3\"\n    smolder.dev/exclusions: |\n      \
         - start: 2026-01-01T00:00:00Z\n        duration: 10m\n        \
         rrule: FREQ=DAILY\n        reason: nightly batch job\n",
    );
    assert_ne!(annotated, ok);
    let memory = Arc::new(Memory::default());
    let clock = Arc::new(ManualClock::new(T0));
    let engine = engine(&memory, &clock, Duration::from_secs(120)).await;
    engine.put("ok", &annotated).await.unwrap();
    for day in 0..3 {
        // Failures at 00:05 (excluded), successes at 00:30.
        push_spans(
            &memory,
            minutes_of_spans(T0 + day * DAY + 5 * MIN, 1, 0..1, 1000 * day as u64 + 1),
        );
        push_spans(
            &memory,
            minutes_of_spans(T0 + day * DAY + 30 * MIN, 1, 0..0, 1000 * day as u64 + 500),
        );
        clock.set(T0 + day * DAY + 40 * MIN);
        engine.tick().await;
    }
    let e = evaluation(&engine);
    assert_eq!((e.period.good, e.period.total), (30.0, 30.0), "{e:?}");
    clock.set(T0 + 3 * DAY + 2 * MIN);
    engine.tick().await;
    let now = &engine.snapshot().slos[0].excluded_now;
    assert_eq!(now.len(), 1, "{now:?}");
    assert_eq!(now[0].reason, "nightly batch job");
    assert_eq!(now[0].start, "2026-01-04T00:00:00Z");
    assert_eq!(now[0].end, "2026-01-04T00:10:00Z");
    assert!(matches!(
        engine.remove_exclusion("ok", "annotation-1").await,
        Err(ExclusionError::Conflict(_))
    ));
}

/// Changing the SLO's annotation changes its exclusions without rolling
/// anything up again: the buckets are kept (same indicator) and masked
/// anew, both ways.
#[tokio::test]
async fn an_annotation_exclusion_applies_and_lifts_when_the_definition_changes() {
    let (ok, _) = ungrouped_slos();
    let annotated = ok.replace(
        "    smolder.dev/min-events: \"3\"\n",
        &format!(
            "    smolder.dev/min-events: \"3\"\n    smolder.dev/exclusions: |\n      \
             - start: {}\n        duration: 3m\n        reason: bad probe\n",
            rfc3339(T0 + 3 * MIN)
        ),
    );
    let (_clock, engine) = ten_minutes_with_three_failing(&ok).await;
    let period = |e: smolder_slo::eval::Evaluation| (e.period.good, e.period.total);
    assert_eq!(period(evaluation(&engine)), (70.0, 100.0));
    // Changed as a file or a PUT is: the next evaluation leaves them out.
    engine.put("ok", &annotated).await.unwrap();
    engine.evaluate_now().await;
    assert_eq!(period(evaluation(&engine)), (70.0, 70.0));
    engine.put("ok", &ok).await.unwrap();
    engine.evaluate_now().await;
    assert_eq!(period(evaluation(&engine)), (70.0, 100.0));
}

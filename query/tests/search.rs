//! The trace and log searches read the newest stretch of their range first
//! and widen it only as needed; their answers equal the plain query over the
//! whole range.

use std::sync::Arc;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use smolder_common::Table;
use smolder_query::search::{
    LogSearch, TraceOrder, TraceSearch, logs_sql, search_logs, search_traces, traces_sql,
};
use smolder_query::{QueryEngine, QueryLimits, QueryOutput};

const SEC: i64 = 1_000_000_000;
const MIN: i64 = 60 * SEC;
const HOUR: i64 = 60 * MIN;
/// 2026-01-01T00:00:00Z, the end of every searched range.
const TO: i64 = 1_767_225_600 * SEC;

fn text(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
        ..Default::default()
    }
}

/// A server span of trace `trace` on `route`, starting at `start`.
fn span(trace: u64, n: u64, route: &str, start: i64) -> Span {
    Span {
        trace_id: [trace.to_be_bytes(), trace.to_be_bytes()].concat(),
        span_id: (trace * 100 + n).to_be_bytes().to_vec(),
        name: format!("GET {route}"),
        kind: 2,
        start_time_unix_nano: start as u64,
        end_time_unix_nano: (start + 20_000_000) as u64,
        attributes: vec![text("http.route", route)],
        ..Default::default()
    }
}

fn store(spans: Vec<Span>, logs: Vec<LogRecord>) -> QueryEngine {
    let resource = Some(Resource {
        attributes: vec![text("service.name", "checkout")],
        ..Default::default()
    });
    let traces = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: resource.clone(),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let logs = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource,
            scope_logs: vec![ScopeLogs {
                log_records: logs,
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let memory = smolder_common::BatchesInMemory::default();
    memory.push(
        Table::Spans,
        smolder_ingest::convert::spans(&traces).unwrap().batch,
    );
    memory.push(
        Table::Logs,
        smolder_ingest::convert::logs(&logs).unwrap().batch,
    );
    QueryEngine::new(vec![Arc::new(memory)], QueryLimits::default()).unwrap()
}

/// The given columns of each row, as text separated by spaces.
fn rows(output: &QueryOutput, columns: &[usize]) -> Vec<String> {
    let mut out = Vec::new();
    for batch in &output.batches {
        for r in 0..batch.num_rows() {
            let cells: Vec<String> = columns
                .iter()
                .map(|&c| {
                    datafusion::arrow::util::display::array_value_to_string(batch.column(c), r)
                        .unwrap()
                })
                .collect();
            out.push(cells.join(" "));
        }
    }
    out
}

/// Trace id, start and spans of each trace.
const TRACE_COLUMNS: [usize; 3] = [0, 1, 6];
/// Trace id, duration, root span name, spans, matching spans.
const FIGURES: [usize; 5] = [0, 2, 4, 6, 9];
/// Time and body of each log record.
const LOG_COLUMNS: [usize; 2] = [0, 4];

async fn both(engine: &QueryEngine, q: &TraceSearch) -> (Vec<String>, Vec<String>) {
    let searched = rows(&search_traces(engine, q).await.unwrap(), &TRACE_COLUMNS);
    let exact = rows(
        &engine.sql(&traces_sql(q).unwrap()).await.unwrap(),
        &TRACE_COLUMNS,
    );
    (searched, exact)
}

#[tokio::test]
async fn the_newest_traces_come_from_the_newest_stretch_as_from_the_whole_range() {
    let mut spans = Vec::new();
    // 150 traces in the last 50 minutes, two spans each.
    for t in 0..150u64 {
        let start = TO - 50 * MIN + t as i64 * 20 * SEC;
        spans.push(span(t, 0, "/pay", start));
        spans.push(span(t, 1, "/pay", start + SEC));
    }
    // A trace that began 70 minutes ago (before the first stretch read)
    // and has a span a minute ago: it is older than the 150.
    spans.push(span(1000, 0, "/pay", TO - 70 * MIN));
    spans.push(span(1000, 1, "/pay", TO - MIN));
    // A route seen five times in three days: the search widens to all of it.
    for t in 0..5u64 {
        spans.push(span(
            2000 + t,
            0,
            "/rare",
            TO - 3 * 24 * HOUR + t as i64 * 14 * HOUR,
        ));
    }
    let engine = store(spans, Vec::new());
    let range = |limit: usize, route: &str| TraceSearch {
        service: Some("checkout".into()),
        route: Some(route.into()),
        from: Some(((TO - 4 * 24 * HOUR) / SEC).to_string()),
        to: Some((TO / SEC).to_string()),
        limit: Some(limit),
        ..Default::default()
    };

    let (searched, exact) = both(&engine, &range(100, "/pay")).await;
    assert_eq!(searched.len(), 100);
    assert_eq!(searched, exact);
    assert!(
        !searched.iter().any(|r| r.starts_with("00000000000003e8")),
        "the trace that began before the stretch is not listed as new: {searched:?}"
    );
    // Every span of each listed trace is counted.
    assert!(searched.iter().all(|r| r.ends_with(" 2")), "{searched:?}");

    let (searched, exact) = both(&engine, &range(100, "/rare")).await;
    assert_eq!(searched.len(), 5);
    assert_eq!(searched, exact);

    // More asked for than the range holds: everything, as the plain query.
    let (searched, exact) = both(&engine, &range(1000, "/pay")).await;
    assert_eq!(searched.len(), 151);
    assert_eq!(searched, exact);
}

fn log(at: i64, severity: i32, body: &str) -> LogRecord {
    LogRecord {
        time_unix_nano: at as u64,
        severity_number: severity,
        body: Some(AnyValue {
            value: Some(any_value::Value::StringValue(body.into())),
        }),
        ..Default::default()
    }
}

#[tokio::test]
async fn the_newest_log_records_come_from_the_newest_stretch_as_from_the_whole_range() {
    let mut logs = Vec::new();
    // A WARN every 30 s over the last two days; an ERROR "timeout" every 6 hours.
    for i in 0..(2 * 24 * 120) {
        logs.push(log(TO - i * 30 * SEC, 13, &format!("slow response {i}")));
    }
    for i in 0..8 {
        logs.push(log(
            TO - 5 * MIN - i * 6 * HOUR,
            17,
            &format!("database timeout {i}"),
        ));
    }
    logs.push(log(TO - 2 * MIN, 9, "50%_off sale"));
    logs.push(log(TO - 3 * MIN, 9, "500 offers"));
    let engine = store(Vec::new(), logs);
    let search = |q: Option<&str>, severity: &str, limit: usize| LogSearch {
        q: q.map(str::to_string),
        severity: Some(severity.into()),
        from: Some(((TO - 3 * 24 * HOUR) / SEC).to_string()),
        to: Some((TO / SEC).to_string()),
        limit: Some(limit),
        ..Default::default()
    };
    for (q, limit, expected) in [
        // Found in the last hour.
        (search(None, "WARN", 100), 100, 100),
        // Needs 8 hours: 1,000 records at 2 a minute.
        (search(None, "WARN", 1000), 1000, 1000),
        // Needs the whole range: 8 in two days.
        (search(Some("TIMEOUT"), "ERROR", 100), 100, 8),
    ] {
        let searched = rows(&search_logs(&engine, &q).await.unwrap(), &LOG_COLUMNS);
        let exact = rows(
            &engine.sql(&logs_sql(&q).unwrap()).await.unwrap(),
            &LOG_COLUMNS,
        );
        assert_eq!(searched.len(), expected, "limit {limit}");
        assert_eq!(searched, exact, "limit {limit}");
    }
    // The text is matched as written: % and _ are not wildcards.
    let found = rows(
        &search_logs(&engine, &search(Some("50%_OFF"), "INFO", 10))
            .await
            .unwrap(),
        &LOG_COLUMNS,
    );
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].ends_with("50%_off sale"), "{found:?}");
}

#[tokio::test]
async fn a_found_trace_shows_its_own_span_count_and_duration_not_only_the_matching_spans() {
    // Trace 1: a root on / (0 .. 300 ms) with children on /pay and /cart;
    // only the /pay span matches the search.
    let mut root = span(1, 0, "/", TO - 10 * MIN);
    root.end_time_unix_nano = (TO - 10 * MIN + 300_000_000) as u64;
    let mut pay = span(1, 1, "/pay", TO - 10 * MIN + 50_000_000);
    pay.parent_span_id = root.span_id.clone();
    let mut cart = span(1, 2, "/cart", TO - 10 * MIN + 100_000_000);
    cart.parent_span_id = root.span_id.clone();
    let engine = store(vec![pay, cart, root], Vec::new());
    let q = TraceSearch {
        route: Some("/pay".into()),
        from: Some(((TO - HOUR) / SEC).to_string()),
        to: Some((TO / SEC).to_string()),
        ..Default::default()
    };
    let found = rows(&search_traces(&engine, &q).await.unwrap(), &FIGURES);
    assert_eq!(
        found,
        ["00000000000000010000000000000001 300000000 GET / 3 1"],
        "trace id, duration, root span, spans, matching spans"
    );
}

#[tokio::test]
async fn traces_sort_by_duration_and_span_count_and_pages_join_up() {
    // 60 traces in the last 50 minutes: trace t lasts (t * 7 % 60) ms and
    // has 1 + t % 4 spans.
    let mut spans = Vec::new();
    for t in 0..60u64 {
        let start = TO - 50 * MIN + t as i64 * 40 * SEC;
        let mut root = span(t, 0, "/pay", start);
        root.end_time_unix_nano = (start + 1_000_000 * (1 + (t * 7 % 60) as i64)) as u64;
        let id = root.span_id.clone();
        spans.push(root);
        for n in 1..=(t % 4) {
            let mut child = span(t, n, "/db", start);
            child.end_time_unix_nano = (start + 1_000_000) as u64;
            child.parent_span_id = id.clone();
            spans.push(child);
        }
    }
    let engine = store(spans, Vec::new());
    let search = |sort: TraceOrder, limit: usize, offset: usize| TraceSearch {
        from: Some(((TO - 2 * HOUR) / SEC).to_string()),
        to: Some((TO / SEC).to_string()),
        limit: Some(limit),
        offset: Some(offset),
        sort: Some(sort),
        ..Default::default()
    };
    let column = |rows: &[String], i: usize| -> Vec<i64> {
        rows.iter()
            .map(|r| r.split(' ').nth(i).unwrap().parse().unwrap())
            .collect()
    };
    for sort in [
        TraceOrder::Newest,
        TraceOrder::Oldest,
        TraceOrder::Longest,
        TraceOrder::Shortest,
        TraceOrder::MostSpans,
    ] {
        let all = rows(
            &search_traces(&engine, &search(sort, 60, 0)).await.unwrap(),
            &FIGURES,
        );
        assert_eq!(all.len(), 60, "{sort:?}");
        // Three pages of 20 are the whole answer, in order, without overlap.
        let mut pages = Vec::new();
        for page in 0..3 {
            let q = search(sort, 20, page * 20);
            pages.extend(rows(&search_traces(&engine, &q).await.unwrap(), &FIGURES));
        }
        assert_eq!(pages, all, "{sort:?}");
        // Columns: id, duration, the root's name (two words), spans, matching.
        let (durations, spans) = (column(&all, 1), column(&all, 4));
        match sort {
            TraceOrder::Longest => assert!(durations.is_sorted_by(|a, b| a >= b), "{all:?}"),
            TraceOrder::Shortest => assert!(durations.is_sorted(), "{all:?}"),
            TraceOrder::MostSpans => assert!(spans.is_sorted_by(|a, b| a >= b), "{all:?}"),
            TraceOrder::Newest | TraceOrder::Oldest => {
                let ids: Vec<String> = all.iter().map(|r| r[..32].to_string()).collect();
                let mut sorted = ids.clone();
                sorted.sort();
                if sort == TraceOrder::Newest {
                    sorted.reverse();
                }
                // Trace ids grow with their start here.
                assert_eq!(ids, sorted, "{sort:?}");
            }
        }
    }
    // The longest lasts 60 ms (t = 17: 17 * 7 % 60 = 59, plus 1).
    let longest = rows(
        &search_traces(&engine, &search(TraceOrder::Longest, 1, 0))
            .await
            .unwrap(),
        &FIGURES,
    );
    assert_eq!(
        longest,
        ["00000000000000110000000000000011 60000000 GET /pay 2 2"]
    );
}

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
    LogSearch, TraceSearch, logs_sql, search_logs, search_traces, traces_sql,
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
const TRACE_COLUMNS: [usize; 3] = [0, 1, 5];
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

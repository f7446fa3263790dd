//! One test per OTLP/JSON quirk the specification asks receivers to accept.

use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::metrics::v1::{metric::Data, number_data_point};

use super::*;

fn span_json(fields: &str) -> String {
    format!(r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{{{fields}}}]}}]}}]}}"#)
}

fn one_span(fields: &str) -> Span {
    let r = decode_traces(span_json(fields).as_bytes()).unwrap();
    r.resource_spans[0].scope_spans[0].spans[0].clone()
}

fn one_point(metric: &str) -> Metric {
    let body = format!(r#"{{"resourceMetrics":[{{"scopeMetrics":[{{"metrics":[{metric}]}}]}}]}}"#);
    let r = decode_metrics(body.as_bytes()).unwrap();
    r.resource_metrics[0].scope_metrics[0].metrics[0].clone()
}

#[test]
fn hex_ids_in_either_case() {
    let upper =
        one_span(r#""traceId":"5B8EFFF798038103D269B633813FC60C","spanId":"EEE19B7EC3C1B174""#);
    let lower =
        one_span(r#""traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174""#);
    assert_eq!(upper.trace_id, lower.trace_id);
    assert_eq!(upper.trace_id[0], 0x5b);
    assert_eq!(upper.span_id.len(), 8);
}

#[test]
fn int64_as_string_or_number() {
    let s = one_span(
        r#""startTimeUnixNano":"1700000000000000001","endTimeUnixNano":1700000000000000002"#,
    );
    assert_eq!(s.start_time_unix_nano, 1_700_000_000_000_000_001);
    assert_eq!(s.end_time_unix_nano, 1_700_000_000_000_000_002);
    let m = one_point(r#"{"name":"c","sum":{"dataPoints":[{"asInt":"42"},{"asInt":43}]}}"#);
    let Some(Data::Sum(sum)) = m.data else {
        panic!()
    };
    assert_eq!(
        sum.data_points[0].value,
        Some(number_data_point::Value::AsInt(42))
    );
    assert_eq!(
        sum.data_points[1].value,
        Some(number_data_point::Value::AsInt(43))
    );
    let s = one_span(r#""attributes":[{"key":"n","value":{"intValue":"-7"}}]"#);
    assert_eq!(
        s.attributes[0].value.as_ref().unwrap().value,
        Some(Value::IntValue(-7))
    );
}

#[test]
fn enums_as_integers_or_names() {
    for kind in [
        r#"2"#,
        r#""SPAN_KIND_SERVER""#,
        r#""span_kind_server""#,
        r#""SERVER""#,
    ] {
        let s = one_span(&format!(
            r#""kind":{kind},"status":{{"code":"STATUS_CODE_ERROR"}}"#
        ));
        assert_eq!(s.kind, 2, "{kind}");
        assert_eq!(s.status.unwrap().code, 2);
    }
    let m = one_point(
        r#"{"name":"c","sum":{"aggregationTemporality":"AGGREGATION_TEMPORALITY_DELTA"}}"#,
    );
    let Some(Data::Sum(sum)) = m.data else {
        panic!()
    };
    assert_eq!(sum.aggregation_temporality, 1);
    let logs = decode_logs(
        br#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"severityNumber":"SEVERITY_NUMBER_WARN"}]}]}]}"#,
    )
    .unwrap();
    assert_eq!(
        logs.resource_logs[0].scope_logs[0].log_records[0].severity_number,
        13
    );
    let err = decode_traces(span_json(r#""kind":"SIDEWAYS""#).as_bytes()).unwrap_err();
    assert!(err.to_string().contains("SIDEWAYS"), "{err}");
}

#[test]
fn snake_case_keys() {
    let body = br#"{"resource_spans":[{"scope_spans":[{"spans":[{"trace_id":"5b8efff798038103d269b633813fc60c","span_id":"eee19b7ec3c1b174","parent_span_id":"1111111111111111","start_time_unix_nano":"5","dropped_attributes_count":3}]}]}]}"#;
    let r = decode_traces(body).unwrap();
    let s = &r.resource_spans[0].scope_spans[0].spans[0];
    assert_eq!(s.trace_id.len(), 16);
    assert_eq!(s.parent_span_id.len(), 8);
    assert_eq!(s.start_time_unix_nano, 5);
    assert_eq!(s.dropped_attributes_count, 3);
}

#[test]
fn unknown_fields_and_nulls_are_ignored() {
    let s = one_span(r#""name":"x","futureField":{"nested":[1,2,3]},"traceState":null"#);
    assert_eq!(s.name, "x");
    assert_eq!(s.trace_state, "");
    let r = decode_traces(br#"{"resourceSpans":[],"extra":1}"#).unwrap();
    assert!(r.resource_spans.is_empty());
}

#[test]
fn exponential_histogram_with_zero_fields_omitted() {
    let m = one_point(
        r#"{"name":"e","exponentialHistogram":{"dataPoints":[{"count":"3","positive":{"bucketCounts":["1","2"]}}]}}"#,
    );
    let Some(Data::ExponentialHistogram(h)) = m.data else {
        panic!()
    };
    let p = &h.data_points[0];
    assert_eq!(
        (p.count, p.scale, p.zero_count, p.zero_threshold),
        (3, 0, 0, 0.0)
    );
    let positive = p.positive.as_ref().unwrap();
    assert_eq!(
        (positive.offset, positive.bucket_counts.clone()),
        (0, vec![1, 2])
    );
    assert!(p.negative.is_none() && p.sum.is_none());
}

#[test]
fn special_doubles_as_strings() {
    let m = one_point(
        r#"{"name":"g","gauge":{"dataPoints":[{"asDouble":"NaN"},{"asDouble":"-Infinity"},{"asDouble":"1.5"}]}}"#,
    );
    let Some(Data::Gauge(g)) = m.data else {
        panic!()
    };
    let values: Vec<f64> = g
        .data_points
        .iter()
        .map(|p| match p.value {
            Some(number_data_point::Value::AsDouble(d)) => d,
            _ => panic!(),
        })
        .collect();
    assert!(values[0].is_nan());
    assert_eq!(values[1], f64::NEG_INFINITY);
    assert_eq!(values[2], 1.5);
}

#[test]
fn bytes_values_are_base64() {
    let s = one_span(r#""attributes":[{"key":"b","value":{"bytesValue":"AQID"}}]"#);
    assert_eq!(
        s.attributes[0].value.as_ref().unwrap().value,
        Some(Value::BytesValue(vec![1, 2, 3]))
    );
}

#[test]
fn errors_name_the_path_of_the_bad_value() {
    let body = br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc60c"},{"traceId":"zz"}]}]}]}"#;
    let err = decode_traces(body).unwrap_err().to_string();
    assert!(
        err.starts_with("resourceSpans[0].scopeSpans[0].spans[1].traceId: invalid hex"),
        "{err}"
    );
    let err = decode_traces(
        br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"startTimeUnixNano":"soon"}]}]}]}"#,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("startTimeUnixNano") && err.contains("soon"),
        "{err}"
    );
}

#[test]
fn non_objects_and_invalid_json_are_errors() {
    assert!(
        decode_traces(b"[]")
            .unwrap_err()
            .to_string()
            .contains("JSON object")
    );
    assert!(
        decode_traces(b"{\"resourceSpans\":")
            .unwrap_err()
            .to_string()
            .contains("invalid JSON")
    );
    assert!(decode_logs(b"").is_err());
    assert!(decode_metrics(b"{}").unwrap().resource_metrics.is_empty());
}

#[test]
fn fixtures_decode() {
    let read = |name: &str| std::fs::read(smolder_sample_data::fixtures::path(name)).unwrap();
    let traces = decode_traces(&read("traces.json")).unwrap();
    assert_eq!(traces.resource_spans[0].scope_spans[0].spans.len(), 2);
    let logs = decode_logs(&read("logs.json")).unwrap();
    assert_eq!(logs.resource_logs[0].scope_logs[0].log_records.len(), 3);
    let metrics = decode_metrics(&read("metrics.json")).unwrap();
    assert_eq!(
        metrics.resource_metrics[0].scope_metrics[0].metrics.len(),
        5
    );
}

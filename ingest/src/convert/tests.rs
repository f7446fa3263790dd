//! Conversion tests over the JSON fixtures, checked value by value.

use datafusion::arrow::array::{Array, AsArray, MapArray, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{
    DataType, Float64Type, Int64Type, TimestampNanosecondType, UInt64Type,
};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;

use super::*;
use crate::json;

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(smolder_sample_data::fixtures::path(name)).unwrap()
}

/// A column as strings (dictionaries decoded), nulls as `None`.
fn strings(batch: &RecordBatch, column: &str) -> Vec<Option<String>> {
    let array = cast(batch.column_by_name(column).unwrap(), &DataType::Utf8).unwrap();
    let array = array.as_string::<i32>();
    (0..array.len())
        .map(|i| array.is_valid(i).then(|| array.value(i).to_string()))
        .collect()
}

/// The entries of row `row` of a map column.
fn map_entries(batch: &RecordBatch, column: &str, row: usize) -> Vec<(String, Option<String>)> {
    let map: &MapArray = batch.column_by_name(column).unwrap().as_map();
    let entries = map.value(row);
    let keys = entries.column(0).as_string::<i32>();
    let values = entries.column(1).as_string::<i32>();
    (0..entries.len())
        .map(|i| {
            (
                keys.value(i).to_string(),
                values.is_valid(i).then(|| values.value(i).to_string()),
            )
        })
        .collect()
}

#[test]
fn spans_keep_every_field() {
    let request = json::decode_traces(&fixture("traces.json")).unwrap();
    let out = spans(&request).unwrap();
    assert_eq!((out.accepted, out.rejected), (2, 0));
    let b = out.batch.unwrap();
    assert_eq!(b.schema(), smolder_common::schema::spans());
    assert_eq!(
        strings(&b, "trace_id")[0].as_deref(),
        Some("5b8efff798038103d269b633813fc60c")
    );
    assert_eq!(strings(&b, "trace_id")[0], strings(&b, "trace_id")[1]);
    assert_eq!(
        strings(&b, "parent_span_id"),
        vec![None, Some("eee19b7ec3c1b174".into())]
    );
    assert_eq!(
        strings(&b, "kind"),
        vec![Some("SERVER".into()), Some("CLIENT".into())]
    );
    assert_eq!(
        strings(&b, "status_code"),
        vec![Some("ERROR".into()), Some("ERROR".into())]
    );
    assert_eq!(
        strings(&b, "status_message")[0].as_deref(),
        Some("payment declined")
    );
    assert_eq!(
        strings(&b, "service_name"),
        vec![Some("checkout".into()); 2]
    );
    assert_eq!(
        strings(&b, "http_route")[0].as_deref(),
        Some("/api/checkout")
    );
    let duration = b
        .column_by_name("duration_ns")
        .unwrap()
        .as_primitive::<Int64Type>();
    assert_eq!(duration.value(0), 250_000_000);
    let start = b
        .column_by_name("start_time")
        .unwrap()
        .as_primitive::<TimestampNanosecondType>();
    assert_eq!(start.value(0), 1_700_000_000_000_000_000);
    let status = b
        .column_by_name("http_response_status_code")
        .unwrap()
        .as_primitive::<Int64Type>();
    assert_eq!(status.value(0), 502);
    let grpc = b
        .column_by_name("rpc_grpc_status_code")
        .unwrap()
        .as_primitive::<Int64Type>();
    assert_eq!((grpc.is_null(0), grpc.value(1)), (true, 9));

    let attrs = map_entries(&b, "attributes", 0);
    assert!(attrs.contains(&("http.response.status_code".into(), Some("502".into()))));
    assert!(attrs.contains(&("retry".into(), Some("true".into()))));
    assert!(attrs.contains(&("cart.total".into(), Some("129.5".into()))));
    assert!(attrs.contains(&("items".into(), Some(r#"["a",2]"#.into()))));
    let types = map_entries(&b, "attribute_types", 0);
    assert_eq!(
        types,
        vec![
            ("http.response.status_code".into(), Some("int".into())),
            ("retry".into(), Some("bool".into())),
            ("cart.total".into(), Some("double".into())),
            ("items".into(), Some("array".into())),
        ]
    );
    let resource = map_entries(&b, "resource_attributes", 1);
    assert_eq!(
        resource[1],
        ("service.instance.num".into(), Some("3".into()))
    );
    let dropped = b
        .column_by_name("resource_dropped_attributes_count")
        .unwrap();
    assert_eq!(
        dropped
            .as_primitive::<datafusion::arrow::datatypes::UInt32Type>()
            .value(1),
        1
    );
    assert_eq!(
        strings(&b, "scope_name"),
        vec![Some("fixture.tracer".into()); 2]
    );

    let events = b.column_by_name("events").unwrap().as_list::<i32>();
    assert_eq!((events.value_length(0), events.value_length(1)), (1, 0));
    let event = events.value(0);
    let event = event.as_struct();
    assert_eq!(
        event
            .column_by_name("name")
            .unwrap()
            .as_string::<i32>()
            .value(0),
        "exception"
    );
    let links = b.column_by_name("links").unwrap().as_list::<i32>();
    let link = links.value(0);
    let link = link.as_struct();
    assert_eq!(
        link.column_by_name("trace_id")
            .unwrap()
            .as_string::<i32>()
            .value(0),
        "00000000000000000000000000000001"
    );
    assert_eq!(
        link.column_by_name("trace_state")
            .unwrap()
            .as_string::<i32>()
            .value(0),
        "k=v"
    );
    let dropped_events = b.column_by_name("dropped_events_count").unwrap();
    assert_eq!(
        dropped_events
            .as_primitive::<datafusion::arrow::datatypes::UInt32Type>()
            .value(0),
        2
    );
}

#[test]
fn bad_ids_reject_only_their_span() {
    let mut request: ExportTraceServiceRequest =
        json::decode_traces(&fixture("traces.json")).unwrap();
    let spans_list = &mut request.resource_spans[0].scope_spans[0].spans;
    spans_list.push(spans_list[1].clone());
    spans_list[1].trace_id = vec![1, 2, 3];
    spans_list[2].span_id = vec![];
    let out = spans(&request).unwrap();
    assert_eq!((out.accepted, out.rejected), (1, 2));
    assert_eq!(
        out.rejection_reasons,
        vec![
            "span trace_id must be 16 bytes, got 3".to_string(),
            "span span_id must be 8 bytes, got 0".to_string()
        ]
    );
    assert_eq!(out.batch.unwrap().num_rows(), 1);
}

#[test]
fn logs_keep_bodies_of_any_type() {
    let request = json::decode_logs(&fixture("logs.json")).unwrap();
    let out = logs(&request).unwrap();
    assert_eq!((out.accepted, out.rejected), (3, 0));
    let b = out.batch.unwrap();
    assert_eq!(
        strings(&b, "body"),
        vec![
            Some("payment declined: insufficient_funds".into()),
            Some(r#"{"event":"cart.updated","items":3}"#.into()),
            Some("7".into())
        ]
    );
    assert_eq!(
        strings(&b, "body_type"),
        vec![
            Some("string".into()),
            Some("kvlist".into()),
            Some("int".into())
        ]
    );
    assert_eq!(
        strings(&b, "trace_id")[0].as_deref(),
        Some("5b8efff798038103d269b633813fc60c")
    );
    assert_eq!(strings(&b, "trace_id")[1], None);
    assert_eq!(
        strings(&b, "event_name")[1].as_deref(),
        Some("cart.updated")
    );
    let time = b
        .column_by_name("time")
        .unwrap()
        .as_primitive::<TimestampNanosecondType>();
    // The second record has no time of its own: its observed time stands in.
    assert_eq!(time.value(1), 1_700_000_000_300_000_000);
    let severity = b.column_by_name("severity_number").unwrap();
    let severity = severity.as_primitive::<datafusion::arrow::datatypes::Int32Type>();
    assert_eq!(
        (severity.value(0), severity.value(1), severity.value(2)),
        (17, 9, 9)
    );
}

#[test]
fn metrics_of_every_type() {
    let request = json::decode_metrics(&fixture("metrics.json")).unwrap();
    let out = metrics(&request).unwrap();
    assert_eq!((out.accepted, out.rejected), (5, 0));
    let b = out.batch.unwrap();
    assert_eq!(b.schema(), smolder_common::schema::metrics());
    assert_eq!(
        strings(&b, "metric_type"),
        [
            "gauge",
            "sum",
            "histogram",
            "exponential_histogram",
            "summary"
        ]
        .map(|s| Some(s.to_string()))
        .to_vec()
    );
    assert_eq!(
        strings(&b, "temporality"),
        vec![
            None,
            Some("cumulative".into()),
            Some("delta".into()),
            Some("delta".into()),
            None
        ]
    );
    let value = b
        .column_by_name("value")
        .unwrap()
        .as_primitive::<Float64Type>();
    assert_eq!((value.value(0), value.value(1)), (123_456_789.0, 42.0));
    let value_int = b
        .column_by_name("value_int")
        .unwrap()
        .as_primitive::<Int64Type>();
    assert_eq!((value_int.is_null(0), value_int.value(1)), (true, 42));
    let count = b
        .column_by_name("count")
        .unwrap()
        .as_primitive::<UInt64Type>();
    assert_eq!((count.value(2), count.value(3), count.value(4)), (10, 3, 5));
    let bounds = b.column_by_name("bucket_bounds").unwrap().as_list::<i32>();
    assert_eq!(
        bounds
            .value(2)
            .as_primitive::<Float64Type>()
            .values()
            .to_vec(),
        vec![0.1, 0.25]
    );
    assert!(bounds.is_null(0));
    let counts = b.column_by_name("bucket_counts").unwrap().as_list::<i32>();
    assert_eq!(
        counts
            .value(2)
            .as_primitive::<UInt64Type>()
            .values()
            .to_vec(),
        vec![2, 5, 3]
    );
    let exp = b
        .column_by_name("exp_positive_bucket_counts")
        .unwrap()
        .as_list::<i32>();
    assert_eq!(
        exp.value(3).as_primitive::<UInt64Type>().values().to_vec(),
        vec![1, 2]
    );
    let scale = b.column_by_name("exp_scale").unwrap();
    assert_eq!(
        scale
            .as_primitive::<datafusion::arrow::datatypes::Int32Type>()
            .value(3),
        2
    );
    let quantiles = b.column_by_name("quantiles").unwrap().as_list::<i32>();
    assert_eq!(quantiles.value_length(4), 2);
    let exemplars = b.column_by_name("exemplars").unwrap().as_list::<i32>();
    let exemplar = exemplars.value(2);
    let exemplar = exemplar.as_struct();
    assert_eq!(
        exemplar
            .column_by_name("span_id")
            .unwrap()
            .as_string::<i32>()
            .value(0),
        "eee19b7ec3c1b174"
    );
    assert_eq!(strings(&b, "metric_unit")[2].as_deref(), Some("s"));
    assert_eq!(
        map_entries(&b, "attributes", 1),
        vec![("http.route".into(), Some("/api/checkout".into()))]
    );
}

#[test]
fn histograms_with_inconsistent_buckets_are_rejected() {
    let mut request = json::decode_metrics(&fixture("metrics.json")).unwrap();
    let metric = &mut request.resource_metrics[0].scope_metrics[0].metrics[2];
    if let Some(opentelemetry_proto::tonic::metrics::v1::metric::Data::Histogram(h)) =
        &mut metric.data
    {
        h.data_points[0].bucket_counts.pop();
    }
    let out = metrics(&request).unwrap();
    assert_eq!((out.accepted, out.rejected), (4, 1));
    assert!(
        out.rejection_reasons[0].contains("2 bucket counts for 2 bounds"),
        "{:?}",
        out.rejection_reasons
    );
}

#[test]
fn generated_telemetry_converts() {
    let (traces, logs_request, metrics_request) = smolder_sample_data::fixtures::requests();
    let s = spans(&traces).unwrap();
    let l = logs(&logs_request).unwrap();
    let m = metrics(&metrics_request).unwrap();
    assert!(s.accepted > 10 && s.rejected == 0);
    assert!(l.accepted >= 10 && l.rejected == 0);
    assert!(m.accepted > 10 && m.rejected == 0);
}

#[test]
fn take_string_map_matches_arrow_take() {
    use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value};
    let kv = |k: &str, v: Option<&str>| KeyValue {
        key: k.to_string(),
        value: v.map(|v| AnyValue {
            value: Some(Value::StringValue(v.to_string())),
        }),
        ..Default::default()
    };
    let mut builder = AttributeBuilder::new();
    builder.append(&[kv("a", Some("1")), kv("b", None)], 0);
    builder.append(&[], 0);
    builder.append(
        &[kv("service.name", Some("checkout")), kv("é", Some("ünï"))],
        0,
    );
    let [map, _, _] = builder.finish();
    let index = [2u32, 0, 0, 1, 2, 2, 0];
    let ours = take_string_map(&map, &index).unwrap();
    let arrows = take(&map, &UInt32Array::from(index.to_vec()), None).unwrap();
    assert_eq!(ours.to_data(), arrows.to_data());
    assert_eq!(ours.as_map().value(3).len(), 0);
    assert_eq!(ours.as_map().value(1).column(1).null_count(), 1);
    let empty = take_string_map(&map, &[]).unwrap();
    assert_eq!(empty.len(), 0);
}

/// Protobuf field `number` with wire type 2 holding `payload`.
fn length_delimited(number: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![number << 3 | 2];
    let mut len = payload.len();
    while len >= 0x80 {
        out.push((len as u8) | 0x80);
        len >>= 7;
    }
    out.push(len as u8);
    out.extend_from_slice(payload);
    out
}

#[test]
fn spans_read_fields_in_any_order_and_skip_unknown_ones() {
    use prost::Message;
    let request = json::decode_traces(&fixture("traces.json")).unwrap();
    let expected = spans(&request).unwrap().batch.unwrap();

    // The same request with each ResourceSpans written schema_url first, then
    // its scopes, then the resource, plus an unknown field — all legal protobuf.
    let mut body = Vec::new();
    for rs in &request.resource_spans {
        let mut message = Vec::new();
        message.extend(length_delimited(3, rs.schema_url.as_bytes()));
        for ss in &rs.scope_spans {
            message.extend(length_delimited(2, &ss.encode_to_vec()));
        }
        message.extend(length_delimited(9, b"unknown"));
        message.extend(length_delimited(
            1,
            &rs.resource.clone().unwrap().encode_to_vec(),
        ));
        body.extend(length_delimited(1, &message));
    }
    let reordered = spans_protobuf(&body).unwrap().batch.unwrap();
    assert_eq!(reordered, expected);
}

/// Found by the `otlp_protobuf` fuzz target (fuzz/): an unknown field
/// written as a (deprecated) protobuf group made the direct converter refuse
/// a request that prost — and so every other OTLP receiver — accepts.
#[test]
fn unknown_fields_written_as_groups_are_skipped_as_prost_skips_them() {
    use prost::Message;
    let request = json::decode_traces(&fixture("traces.json")).unwrap();
    let mut body = request.encode_to_vec();
    // Field 99 as a group holding a varint, a string and a nested group.
    body.extend([0x9a, 0x06]); // 99 << 3 | 3 (start group)
    body.extend([0x08, 0x01]); // 1: varint 1
    body.extend(length_delimited(2, b"x"));
    body.extend([0x1b, 0x1c]); // 3: an empty nested group
    body.extend([0x9c, 0x06]); // 99 << 3 | 4 (end group)
    let decoded = ExportTraceServiceRequest::decode(body.as_slice()).expect("prost skips it");
    assert_eq!(
        spans_protobuf(&body).unwrap().batch,
        spans(&decoded).unwrap().batch
    );
    // Groups that never end, or end with another number, are malformed
    // (prost refuses them too).
    let unterminated = [&request.encode_to_vec()[..], &[0x9a, 0x06, 0x08, 0x01]].concat();
    assert!(ExportTraceServiceRequest::decode(unterminated.as_slice()).is_err());
    assert!(spans_protobuf(&unterminated).is_err());
    let mismatched = [&request.encode_to_vec()[..], &[0x9a, 0x06, 0xa4, 0x06]].concat();
    assert!(ExportTraceServiceRequest::decode(mismatched.as_slice()).is_err());
    assert!(spans_protobuf(&mismatched).is_err());
}

#[test]
fn malformed_span_bytes_name_the_field() {
    // ExportTraceServiceRequest { resource_spans { scope_spans { spans { name: 7 } } } }
    // with the name sent as a varint instead of a string.
    let span = [5 << 3, 7];
    let body = length_delimited(1, &length_delimited(2, &length_delimited(2, &span)));
    let err = spans_protobuf(&body).unwrap_err();
    assert!(matches!(err, ConvertError::Malformed(_)), "{err:?}");
    assert_eq!(
        err.to_string(),
        "Span.name: invalid wire type varint, expected length-delimited"
    );
    // A span name that is not UTF-8.
    let span = length_delimited(5, &[0xc3, 0x28]);
    let body = length_delimited(1, &length_delimited(2, &length_delimited(2, &span)));
    assert_eq!(
        spans_protobuf(&body).unwrap_err().to_string(),
        "Span.name: string is not valid UTF-8"
    );
}

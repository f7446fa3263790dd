//! Lenient OTLP/JSON decoding into the protobuf message types.
//!
//! The OTLP specification's JSON encoding differs from the generic protobuf JSON
//! mapping, and real exporters differ again. This decoder accepts everything the
//! specification asks receivers to accept:
//!
//! * trace and span ids as hex, in either case (not base64);
//! * 64-bit integers as JSON strings or numbers, and doubles as numbers or as the
//!   strings `"NaN"`, `"Infinity"`, `"-Infinity"`;
//! * enums as integers or as their names (`"SPAN_KIND_SERVER"`, also `"SERVER"`),
//!   in any case;
//! * keys in lowerCamelCase or snake_case;
//! * unknown fields ignored, `null` treated as absent, and fields that are zero
//!   omitted (as exporters do for exponential-histogram `zeroCount`, `offset` …).
//!
//! The `opentelemetry-proto` crate's serde support is not used: it reads neither
//! snake_case keys nor enum names (a test in `smolder/src/loadgen.rs` pins this
//! down). Doubles are parsed with `serde_json`'s `float_roundtrip`, so a value
//! survives JSON exactly.
//! Errors name the JSON path of the offending value, e.g.
//! `resourceSpans[0].scopeSpans[0].spans[2].traceId: invalid hex`.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList, any_value,
};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{
    Exemplar, ExponentialHistogram, ExponentialHistogramDataPoint, Gauge, Histogram,
    HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, Summary,
    SummaryDataPoint, exemplar, exponential_histogram_data_point, metric, number_data_point,
    summary_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, span};
use serde_json::{Map, Value};

/// A JSON document that is not a valid OTLP message, with the path of the
/// offending value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonError {
    /// Path segments from the innermost outwards.
    path: Vec<String>,
    message: String,
}

impl JsonError {
    fn new(message: impl Into<String>) -> Self {
        Self {
            path: Vec::new(),
            message: message.into(),
        }
    }

    fn at(mut self, segment: impl Into<String>) -> Self {
        self.path.push(segment.into());
        self
    }
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut path = String::new();
        for segment in self.path.iter().rev() {
            if !segment.starts_with('[') && !path.is_empty() {
                path.push('.');
            }
            path.push_str(segment);
        }
        if path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{path}: {}", self.message)
        }
    }
}

impl std::error::Error for JsonError {}

type R<T> = Result<T, JsonError>;

/// Decodes an OTLP/JSON trace export request.
pub fn decode_traces(body: &[u8]) -> R<ExportTraceServiceRequest> {
    let root = parse(body)?;
    let mut out = ExportTraceServiceRequest::default();
    fields(&root, |k, v| {
        if k == "resourcespans" {
            out.resource_spans = list(v, resource_spans)?;
        }
        Ok(())
    })?;
    Ok(out)
}

/// Decodes an OTLP/JSON logs export request.
pub fn decode_logs(body: &[u8]) -> R<ExportLogsServiceRequest> {
    let root = parse(body)?;
    let mut out = ExportLogsServiceRequest::default();
    fields(&root, |k, v| {
        if k == "resourcelogs" {
            out.resource_logs = list(v, resource_logs)?;
        }
        Ok(())
    })?;
    Ok(out)
}

/// Decodes an OTLP/JSON metrics export request.
pub fn decode_metrics(body: &[u8]) -> R<ExportMetricsServiceRequest> {
    let root = parse(body)?;
    let mut out = ExportMetricsServiceRequest::default();
    fields(&root, |k, v| {
        if k == "resourcemetrics" {
            out.resource_metrics = list(v, resource_metrics)?;
        }
        Ok(())
    })?;
    Ok(out)
}

fn parse(body: &[u8]) -> R<Value> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| JsonError::new(format!("invalid JSON: {e}")))?;
    if !value.is_object() {
        return Err(JsonError::new("the request body must be a JSON object"));
    }
    Ok(value)
}

// ---- generic helpers -------------------------------------------------------

/// Normalises a key so that `traceId`, `trace_id` and `TraceId` compare equal.
fn normalize(key: &str) -> String {
    key.chars()
        .filter(|c| *c != '_')
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

fn object(v: &Value) -> R<&Map<String, Value>> {
    v.as_object()
        .ok_or_else(|| JsonError::new(format!("expected an object, found {}", kind(v))))
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Calls `f` with each non-null field's normalised key and value.
fn fields(v: &Value, mut f: impl FnMut(&str, &Value) -> R<()>) -> R<()> {
    for (key, value) in object(v)? {
        if value.is_null() {
            continue;
        }
        f(&normalize(key), value).map_err(|e| e.at(key.clone()))?;
    }
    Ok(())
}

fn list<T>(v: &Value, f: impl Fn(&Value) -> R<T>) -> R<Vec<T>> {
    let items = v
        .as_array()
        .ok_or_else(|| JsonError::new(format!("expected an array, found {}", kind(v))))?;
    items
        .iter()
        .enumerate()
        .map(|(i, item)| f(item).map_err(|e| e.at(format!("[{i}]"))))
        .collect()
}

fn string(v: &Value) -> R<String> {
    v.as_str()
        .map(str::to_owned)
        .ok_or_else(|| JsonError::new(format!("expected a string, found {}", kind(v))))
}

fn boolean(v: &Value) -> R<bool> {
    v.as_bool()
        .ok_or_else(|| JsonError::new(format!("expected a boolean, found {}", kind(v))))
}

fn u64_(v: &Value) -> R<u64> {
    match v {
        Value::Number(n) => n
            .as_u64()
            .or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && *f >= 0.0)
                    .map(|f| f as u64)
            })
            .ok_or_else(|| JsonError::new(format!("expected an unsigned integer, found {n}"))),
        Value::String(s) => s
            .trim()
            .parse()
            .map_err(|_| JsonError::new(format!("expected an unsigned integer, found \"{s}\""))),
        _ => Err(JsonError::new(format!(
            "expected an integer, found {}",
            kind(v)
        ))),
    }
}

fn i64_(v: &Value) -> R<i64> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
            .ok_or_else(|| JsonError::new(format!("expected an integer, found {n}"))),
        Value::String(s) => s
            .trim()
            .parse()
            .map_err(|_| JsonError::new(format!("expected an integer, found \"{s}\""))),
        _ => Err(JsonError::new(format!(
            "expected an integer, found {}",
            kind(v)
        ))),
    }
}

fn u32_(v: &Value) -> R<u32> {
    let n = u64_(v)?;
    u32::try_from(n).map_err(|_| JsonError::new(format!("{n} does not fit in 32 bits")))
}

fn i32_(v: &Value) -> R<i32> {
    let n = i64_(v)?;
    i32::try_from(n).map_err(|_| JsonError::new(format!("{n} does not fit in 32 bits")))
}

fn f64_(v: &Value) -> R<f64> {
    match v {
        Value::Number(n) => n
            .as_f64()
            .ok_or_else(|| JsonError::new(format!("expected a number, found {n}"))),
        Value::String(s) => match s.trim() {
            "NaN" => Ok(f64::NAN),
            "Infinity" | "+Infinity" => Ok(f64::INFINITY),
            "-Infinity" => Ok(f64::NEG_INFINITY),
            other => other
                .parse()
                .map_err(|_| JsonError::new(format!("expected a number, found \"{s}\""))),
        },
        _ => Err(JsonError::new(format!(
            "expected a number, found {}",
            kind(v)
        ))),
    }
}

/// An enum given as its number or its name, with or without the type prefix.
fn enumeration(v: &Value, prefix: &str, names: &[&str]) -> R<i32> {
    if let Value::String(s) = v {
        let upper = s.trim().to_ascii_uppercase();
        let short = upper.strip_prefix(prefix).unwrap_or(&upper);
        if let Some(i) = names.iter().position(|n| *n == short) {
            return Ok(i as i32);
        }
        if let Ok(n) = upper.parse::<i32>() {
            return Ok(n);
        }
        return Err(JsonError::new(format!(
            "unknown value \"{s}\"; expected a number or one of {prefix}{}",
            names.join(&format!(", {prefix}"))
        )));
    }
    i32_(v)
}

/// A trace or span id: hex in either case. Length is checked later, per item,
/// so that one bad id rejects one item rather than the whole request.
fn id(v: &Value) -> R<Vec<u8>> {
    let s = v
        .as_str()
        .ok_or_else(|| JsonError::new(format!("expected a hex string, found {}", kind(v))))?;
    hex::decode(s).map_err(|e| JsonError::new(format!("invalid hex id \"{s}\": {e}")))
}

fn bytes(v: &Value) -> R<Vec<u8>> {
    let s = v
        .as_str()
        .ok_or_else(|| JsonError::new(format!("expected a base64 string, found {}", kind(v))))?;
    BASE64
        .decode(s)
        .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(s))
        .map_err(|e| JsonError::new(format!("invalid base64: {e}")))
}

// ---- common ----------------------------------------------------------------

fn any_value(v: &Value) -> R<AnyValue> {
    let mut value = None;
    fields(v, |k, v| {
        value = Some(match k {
            "stringvalue" => any_value::Value::StringValue(string(v)?),
            "boolvalue" => any_value::Value::BoolValue(boolean(v)?),
            "intvalue" => any_value::Value::IntValue(i64_(v)?),
            "doublevalue" => any_value::Value::DoubleValue(f64_(v)?),
            "bytesvalue" => any_value::Value::BytesValue(bytes(v)?),
            "arrayvalue" => {
                let mut values = Vec::new();
                fields(v, |k, v| {
                    if k == "values" {
                        values = list(v, any_value)?;
                    }
                    Ok(())
                })?;
                any_value::Value::ArrayValue(ArrayValue { values })
            }
            "kvlistvalue" => {
                let mut values = Vec::new();
                fields(v, |k, v| {
                    if k == "values" {
                        values = list(v, key_value)?;
                    }
                    Ok(())
                })?;
                any_value::Value::KvlistValue(KeyValueList { values })
            }
            _ => return Ok(()),
        });
        Ok(())
    })?;
    Ok(AnyValue { value })
}

fn key_value(v: &Value) -> R<KeyValue> {
    let mut kv = KeyValue::default();
    fields(v, |k, v| {
        match k {
            "key" => kv.key = string(v)?,
            "value" => kv.value = Some(any_value(v)?),
            _ => {}
        }
        Ok(())
    })?;
    Ok(kv)
}

fn resource(v: &Value) -> R<Resource> {
    let mut r = Resource::default();
    fields(v, |k, v| {
        match k {
            "attributes" => r.attributes = list(v, key_value)?,
            "droppedattributescount" => r.dropped_attributes_count = u32_(v)?,
            _ => {}
        }
        Ok(())
    })?;
    Ok(r)
}

fn scope(v: &Value) -> R<InstrumentationScope> {
    let mut s = InstrumentationScope::default();
    fields(v, |k, v| {
        match k {
            "name" => s.name = string(v)?,
            "version" => s.version = string(v)?,
            "attributes" => s.attributes = list(v, key_value)?,
            "droppedattributescount" => s.dropped_attributes_count = u32_(v)?,
            _ => {}
        }
        Ok(())
    })?;
    Ok(s)
}

// ---- traces ----------------------------------------------------------------

const SPAN_KINDS: &[&str] = &[
    "UNSPECIFIED",
    "INTERNAL",
    "SERVER",
    "CLIENT",
    "PRODUCER",
    "CONSUMER",
];
const STATUS_CODES: &[&str] = &["UNSET", "OK", "ERROR"];

fn resource_spans(v: &Value) -> R<ResourceSpans> {
    let mut out = ResourceSpans::default();
    fields(v, |k, v| {
        match k {
            "resource" => out.resource = Some(resource(v)?),
            "scopespans" => out.scope_spans = list(v, scope_spans)?,
            "schemaurl" => out.schema_url = string(v)?,
            _ => {}
        }
        Ok(())
    })?;
    Ok(out)
}

fn scope_spans(v: &Value) -> R<ScopeSpans> {
    let mut out = ScopeSpans::default();
    fields(v, |k, v| {
        match k {
            "scope" => out.scope = Some(scope(v)?),
            "spans" => out.spans = list(v, span)?,
            "schemaurl" => out.schema_url = string(v)?,
            _ => {}
        }
        Ok(())
    })?;
    Ok(out)
}

fn span(v: &Value) -> R<Span> {
    let mut s = Span::default();
    fields(v, |k, v| {
        match k {
            "traceid" => s.trace_id = id(v)?,
            "spanid" => s.span_id = id(v)?,
            "tracestate" => s.trace_state = string(v)?,
            "parentspanid" => s.parent_span_id = id(v)?,
            "flags" => s.flags = u32_(v)?,
            "name" => s.name = string(v)?,
            "kind" => s.kind = enumeration(v, "SPAN_KIND_", SPAN_KINDS)?,
            "starttimeunixnano" => s.start_time_unix_nano = u64_(v)?,
            "endtimeunixnano" => s.end_time_unix_nano = u64_(v)?,
            "attributes" => s.attributes = list(v, key_value)?,
            "droppedattributescount" => s.dropped_attributes_count = u32_(v)?,
            "events" => s.events = list(v, event)?,
            "droppedeventscount" => s.dropped_events_count = u32_(v)?,
            "links" => s.links = list(v, link)?,
            "droppedlinkscount" => s.dropped_links_count = u32_(v)?,
            "status" => s.status = Some(status(v)?),
            _ => {}
        }
        Ok(())
    })?;
    Ok(s)
}

fn status(v: &Value) -> R<Status> {
    let mut s = Status::default();
    fields(v, |k, v| {
        match k {
            "message" => s.message = string(v)?,
            "code" => s.code = enumeration(v, "STATUS_CODE_", STATUS_CODES)?,
            _ => {}
        }
        Ok(())
    })?;
    Ok(s)
}

fn event(v: &Value) -> R<span::Event> {
    let mut e = span::Event::default();
    fields(v, |k, v| {
        match k {
            "timeunixnano" => e.time_unix_nano = u64_(v)?,
            "name" => e.name = string(v)?,
            "attributes" => e.attributes = list(v, key_value)?,
            "droppedattributescount" => e.dropped_attributes_count = u32_(v)?,
            _ => {}
        }
        Ok(())
    })?;
    Ok(e)
}

fn link(v: &Value) -> R<span::Link> {
    let mut l = span::Link::default();
    fields(v, |k, v| {
        match k {
            "traceid" => l.trace_id = id(v)?,
            "spanid" => l.span_id = id(v)?,
            "tracestate" => l.trace_state = string(v)?,
            "attributes" => l.attributes = list(v, key_value)?,
            "droppedattributescount" => l.dropped_attributes_count = u32_(v)?,
            "flags" => l.flags = u32_(v)?,
            _ => {}
        }
        Ok(())
    })?;
    Ok(l)
}

// ---- logs ------------------------------------------------------------------

const SEVERITIES: &[&str] = &[
    "UNSPECIFIED",
    "TRACE",
    "TRACE2",
    "TRACE3",
    "TRACE4",
    "DEBUG",
    "DEBUG2",
    "DEBUG3",
    "DEBUG4",
    "INFO",
    "INFO2",
    "INFO3",
    "INFO4",
    "WARN",
    "WARN2",
    "WARN3",
    "WARN4",
    "ERROR",
    "ERROR2",
    "ERROR3",
    "ERROR4",
    "FATAL",
    "FATAL2",
    "FATAL3",
    "FATAL4",
];

fn resource_logs(v: &Value) -> R<ResourceLogs> {
    let mut out = ResourceLogs::default();
    fields(v, |k, v| {
        match k {
            "resource" => out.resource = Some(resource(v)?),
            "scopelogs" => out.scope_logs = list(v, scope_logs)?,
            "schemaurl" => out.schema_url = string(v)?,
            _ => {}
        }
        Ok(())
    })?;
    Ok(out)
}

fn scope_logs(v: &Value) -> R<ScopeLogs> {
    let mut out = ScopeLogs::default();
    fields(v, |k, v| {
        match k {
            "scope" => out.scope = Some(scope(v)?),
            "logrecords" => out.log_records = list(v, log_record)?,
            "schemaurl" => out.schema_url = string(v)?,
            _ => {}
        }
        Ok(())
    })?;
    Ok(out)
}

fn log_record(v: &Value) -> R<LogRecord> {
    let mut r = LogRecord::default();
    fields(v, |k, v| {
        match k {
            "timeunixnano" => r.time_unix_nano = u64_(v)?,
            "observedtimeunixnano" => r.observed_time_unix_nano = u64_(v)?,
            "severitynumber" => r.severity_number = enumeration(v, "SEVERITY_NUMBER_", SEVERITIES)?,
            "severitytext" => r.severity_text = string(v)?,
            "body" => r.body = Some(any_value(v)?),
            "attributes" => r.attributes = list(v, key_value)?,
            "droppedattributescount" => r.dropped_attributes_count = u32_(v)?,
            "flags" => r.flags = u32_(v)?,
            "traceid" => r.trace_id = id(v)?,
            "spanid" => r.span_id = id(v)?,
            "eventname" => r.event_name = string(v)?,
            _ => {}
        }
        Ok(())
    })?;
    Ok(r)
}

// ---- metrics ---------------------------------------------------------------

const TEMPORALITIES: &[&str] = &["UNSPECIFIED", "DELTA", "CUMULATIVE"];

fn temporality(v: &Value) -> R<i32> {
    enumeration(v, "AGGREGATION_TEMPORALITY_", TEMPORALITIES)
}

fn resource_metrics(v: &Value) -> R<ResourceMetrics> {
    let mut out = ResourceMetrics::default();
    fields(v, |k, v| {
        match k {
            "resource" => out.resource = Some(resource(v)?),
            "scopemetrics" => out.scope_metrics = list(v, scope_metrics)?,
            "schemaurl" => out.schema_url = string(v)?,
            _ => {}
        }
        Ok(())
    })?;
    Ok(out)
}

fn scope_metrics(v: &Value) -> R<ScopeMetrics> {
    let mut out = ScopeMetrics::default();
    fields(v, |k, v| {
        match k {
            "scope" => out.scope = Some(scope(v)?),
            "metrics" => out.metrics = list(v, metric)?,
            "schemaurl" => out.schema_url = string(v)?,
            _ => {}
        }
        Ok(())
    })?;
    Ok(out)
}

fn metric(v: &Value) -> R<Metric> {
    let mut m = Metric::default();
    fields(v, |k, v| {
        match k {
            "name" => m.name = string(v)?,
            "description" => m.description = string(v)?,
            "unit" => m.unit = string(v)?,
            "metadata" => m.metadata = list(v, key_value)?,
            "gauge" => {
                let mut g = Gauge::default();
                fields(v, |k, v| {
                    if k == "datapoints" {
                        g.data_points = list(v, number_point)?;
                    }
                    Ok(())
                })?;
                m.data = Some(metric::Data::Gauge(g));
            }
            "sum" => {
                let mut s = Sum::default();
                fields(v, |k, v| {
                    match k {
                        "datapoints" => s.data_points = list(v, number_point)?,
                        "aggregationtemporality" => s.aggregation_temporality = temporality(v)?,
                        "ismonotonic" => s.is_monotonic = boolean(v)?,
                        _ => {}
                    }
                    Ok(())
                })?;
                m.data = Some(metric::Data::Sum(s));
            }
            "histogram" => {
                let mut h = Histogram::default();
                fields(v, |k, v| {
                    match k {
                        "datapoints" => h.data_points = list(v, histogram_point)?,
                        "aggregationtemporality" => h.aggregation_temporality = temporality(v)?,
                        _ => {}
                    }
                    Ok(())
                })?;
                m.data = Some(metric::Data::Histogram(h));
            }
            "exponentialhistogram" => {
                let mut h = ExponentialHistogram::default();
                fields(v, |k, v| {
                    match k {
                        "datapoints" => h.data_points = list(v, exponential_point)?,
                        "aggregationtemporality" => h.aggregation_temporality = temporality(v)?,
                        _ => {}
                    }
                    Ok(())
                })?;
                m.data = Some(metric::Data::ExponentialHistogram(h));
            }
            "summary" => {
                let mut s = Summary::default();
                fields(v, |k, v| {
                    if k == "datapoints" {
                        s.data_points = list(v, summary_point)?;
                    }
                    Ok(())
                })?;
                m.data = Some(metric::Data::Summary(s));
            }
            _ => {}
        }
        Ok(())
    })?;
    Ok(m)
}

fn number_point(v: &Value) -> R<NumberDataPoint> {
    let mut p = NumberDataPoint::default();
    fields(v, |k, v| {
        match k {
            "attributes" => p.attributes = list(v, key_value)?,
            "starttimeunixnano" => p.start_time_unix_nano = u64_(v)?,
            "timeunixnano" => p.time_unix_nano = u64_(v)?,
            "asdouble" => p.value = Some(number_data_point::Value::AsDouble(f64_(v)?)),
            "asint" => p.value = Some(number_data_point::Value::AsInt(i64_(v)?)),
            "exemplars" => p.exemplars = list(v, exemplar)?,
            "flags" => p.flags = u32_(v)?,
            _ => {}
        }
        Ok(())
    })?;
    Ok(p)
}

fn histogram_point(v: &Value) -> R<HistogramDataPoint> {
    let mut p = HistogramDataPoint::default();
    fields(v, |k, v| {
        match k {
            "attributes" => p.attributes = list(v, key_value)?,
            "starttimeunixnano" => p.start_time_unix_nano = u64_(v)?,
            "timeunixnano" => p.time_unix_nano = u64_(v)?,
            "count" => p.count = u64_(v)?,
            "sum" => p.sum = Some(f64_(v)?),
            "bucketcounts" => p.bucket_counts = list(v, u64_)?,
            "explicitbounds" => p.explicit_bounds = list(v, f64_)?,
            "exemplars" => p.exemplars = list(v, exemplar)?,
            "flags" => p.flags = u32_(v)?,
            "min" => p.min = Some(f64_(v)?),
            "max" => p.max = Some(f64_(v)?),
            _ => {}
        }
        Ok(())
    })?;
    Ok(p)
}

fn buckets(v: &Value) -> R<exponential_histogram_data_point::Buckets> {
    let mut b = exponential_histogram_data_point::Buckets::default();
    fields(v, |k, v| {
        match k {
            "offset" => b.offset = i32_(v)?,
            "bucketcounts" => b.bucket_counts = list(v, u64_)?,
            _ => {}
        }
        Ok(())
    })?;
    Ok(b)
}

fn exponential_point(v: &Value) -> R<ExponentialHistogramDataPoint> {
    let mut p = ExponentialHistogramDataPoint::default();
    fields(v, |k, v| {
        match k {
            "attributes" => p.attributes = list(v, key_value)?,
            "starttimeunixnano" => p.start_time_unix_nano = u64_(v)?,
            "timeunixnano" => p.time_unix_nano = u64_(v)?,
            "count" => p.count = u64_(v)?,
            "sum" => p.sum = Some(f64_(v)?),
            "scale" => p.scale = i32_(v)?,
            "zerocount" => p.zero_count = u64_(v)?,
            "positive" => p.positive = Some(buckets(v)?),
            "negative" => p.negative = Some(buckets(v)?),
            "flags" => p.flags = u32_(v)?,
            "exemplars" => p.exemplars = list(v, exemplar)?,
            "min" => p.min = Some(f64_(v)?),
            "max" => p.max = Some(f64_(v)?),
            "zerothreshold" => p.zero_threshold = f64_(v)?,
            _ => {}
        }
        Ok(())
    })?;
    Ok(p)
}

fn summary_point(v: &Value) -> R<SummaryDataPoint> {
    let mut p = SummaryDataPoint::default();
    fields(v, |k, v| {
        match k {
            "attributes" => p.attributes = list(v, key_value)?,
            "starttimeunixnano" => p.start_time_unix_nano = u64_(v)?,
            "timeunixnano" => p.time_unix_nano = u64_(v)?,
            "count" => p.count = u64_(v)?,
            "sum" => p.sum = f64_(v)?,
            "quantilevalues" => {
                p.quantile_values = list(v, |v| {
                    let mut q = summary_data_point::ValueAtQuantile::default();
                    fields(v, |k, v| {
                        match k {
                            "quantile" => q.quantile = f64_(v)?,
                            "value" => q.value = f64_(v)?,
                            _ => {}
                        }
                        Ok(())
                    })?;
                    Ok(q)
                })?
            }
            "flags" => p.flags = u32_(v)?,
            _ => {}
        }
        Ok(())
    })?;
    Ok(p)
}

fn exemplar(v: &Value) -> R<Exemplar> {
    let mut e = Exemplar::default();
    fields(v, |k, v| {
        match k {
            "filteredattributes" => e.filtered_attributes = list(v, key_value)?,
            "timeunixnano" => e.time_unix_nano = u64_(v)?,
            "asdouble" => e.value = Some(exemplar::Value::AsDouble(f64_(v)?)),
            "asint" => e.value = Some(exemplar::Value::AsInt(i64_(v)?)),
            "spanid" => e.span_id = id(v)?,
            "traceid" => e.trace_id = id(v)?,
            _ => {}
        }
        Ok(())
    })?;
    Ok(e)
}

#[cfg(test)]
mod tests;

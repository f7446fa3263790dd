//! What a request costs in memory once decoded, estimated before decoding.
//!
//! Protobuf is compact where decoded data are not: an empty `LogRecord` is
//! two bytes on the wire and a few hundred in memory (the decoded struct,
//! then its row in every column), so 20 MB of them decode to gigabytes, and
//! a resource's attributes are copied into every row of its items. Requests
//! are therefore admitted by this estimate, not by their size: a scan of
//! the wire format down to the items (and one level into each item, for
//! its attributes, events and links) that skips every other field by its
//! length, allocating nothing.
//!
//! The estimate is deliberately simple — a fixed cost per item and per
//! attribute, the bytes of each item's resource and scope per item, twice
//! the body — and errs on the generous side for real exports: an SDK's
//! batch of 512 spans of 20 attributes is estimated at about three times
//! its size.

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::metrics::v1::Metric;
use prost::Message as _;
use smolder_common::Table;

use crate::ExportRequest;

use super::wire::{Field, WireError, for_each_field};

/// Memory of one item (span, log record, data point) besides its bytes: the
/// decoded struct and its share of every column.
pub const ITEM_BYTES: usize = 256;

/// Memory of one attribute, event or link of an item besides its bytes.
pub const NESTED_BYTES: usize = 64;

/// Memory of one JSON object besides its bytes, before the items are known.
pub const JSON_OBJECT_BYTES: usize = 64;

#[derive(Debug, Default)]
struct Tally {
    bytes: usize,
}

impl Tally {
    fn add(&mut self, n: usize) {
        self.bytes = self.bytes.saturating_add(n);
    }

    /// `items` items each carrying `shared` bytes of resource and scope.
    fn items(&mut self, items: usize, shared: usize) {
        self.add(items.saturating_mul(ITEM_BYTES.saturating_add(shared)));
    }
}

fn length(field: Field<'_>, message: &str, name: &str) -> Result<usize, WireError> {
    Ok(field.bytes(message, name)?.len())
}

/// Counts the fields numbered `numbers` of `message`.
fn count(message: &[u8], numbers: &[u32]) -> Result<usize, WireError> {
    let mut n = 0usize;
    for_each_field(message, |number, _| {
        n += usize::from(numbers.contains(&number));
        Ok(())
    })?;
    Ok(n)
}

/// The estimated memory of an export given as protobuf bytes.
pub fn protobuf(table: Table, body: &[u8]) -> Result<usize, WireError> {
    let mut tally = Tally::default();
    tally.add(body.len().saturating_mul(2));
    let (request, resource_field) = match table {
        Table::Spans => ("ExportTraceServiceRequest", "resource_spans"),
        Table::Logs => ("ExportLogsServiceRequest", "resource_logs"),
        Table::Metrics => ("ExportMetricsServiceRequest", "resource_metrics"),
    };
    for_each_field(body, |number, field| {
        if number == 1 {
            resource(table, field.bytes(request, resource_field)?, &mut tally)?;
        }
        Ok(())
    })?;
    Ok(tally.bytes)
}

/// `Resource{Spans,Logs,Metrics}`: 1 resource, 2 scopes.
fn resource(table: Table, message: &[u8], tally: &mut Tally) -> Result<(), WireError> {
    let mut resource_bytes = 0;
    for_each_field(message, |number, field| {
        if number == 1 {
            resource_bytes = length(field, "Resource", "resource")?;
        }
        Ok(())
    })?;
    for_each_field(message, |number, field| {
        if number == 2 {
            scope(
                table,
                field.bytes("Resource", "scope")?,
                resource_bytes,
                tally,
            )?;
        }
        Ok(())
    })
}

/// `Scope{Spans,Logs,Metrics}`: 1 scope, 2 items (metrics for metrics).
fn scope(
    table: Table,
    message: &[u8],
    resource_bytes: usize,
    tally: &mut Tally,
) -> Result<(), WireError> {
    let mut scope_bytes = 0;
    for_each_field(message, |number, field| {
        if number == 1 {
            scope_bytes = length(field, "Scope", "scope")?;
        }
        Ok(())
    })?;
    let shared = resource_bytes.saturating_add(scope_bytes);
    for_each_field(message, |number, field| {
        if number != 2 {
            return Ok(());
        }
        let item = field.bytes("Scope", "item")?;
        match table {
            // Span: 9 attributes, 11 events (3 attributes), 13 links (5 attributes).
            Table::Spans => {
                tally.items(1, shared);
                for_each_field(item, |n, f| {
                    match n {
                        9 => tally.add(NESTED_BYTES),
                        11 => {
                            tally.add(NESTED_BYTES * (1 + count(f.bytes("Span", "events")?, &[3])?))
                        }
                        13 => {
                            tally.add(NESTED_BYTES * (1 + count(f.bytes("Span", "links")?, &[5])?))
                        }
                        _ => {}
                    }
                    Ok(())
                })?;
            }
            // LogRecord: 6 attributes.
            Table::Logs => {
                tally.items(1, shared);
                tally.add(NESTED_BYTES.saturating_mul(count(item, &[6])?));
            }
            Table::Metrics => metric(item, shared, tally)?,
        }
        Ok(())
    })
}

/// `Metric`: every data point carries the metric's own fields (name,
/// description, unit, metadata) besides the resource and scope.
fn metric(message: &[u8], shared: usize, tally: &mut Tally) -> Result<(), WireError> {
    let mut own = 0usize;
    let mut data: Vec<&[u8]> = Vec::new();
    for_each_field(message, |number, field| {
        match number {
            1 | 2 | 3 | 12 => own = own.saturating_add(length(field, "Metric", "name")?),
            // gauge, sum, histogram, exponential_histogram, summary
            5 | 7 | 9 | 10 | 11 => data.push(field.bytes("Metric", "data")?),
            _ => {}
        }
        Ok(())
    })?;
    let shared = shared.saturating_add(own);
    for points in data {
        // Field 1 of every kind of data is its data points.
        for_each_field(points, |number, field| {
            if number == 1 {
                let point = field.bytes("Metric", "data_points")?;
                tally.items(1, shared);
                // Attributes are field 7 (number, summary) or 9 (histogram)
                // or 1 (exponential histogram); exemplars 5, 8 or 11; the
                // quantiles of a summary 6. Counting them all is generous.
                tally.add(NESTED_BYTES.saturating_mul(count(point, &[1, 5, 6, 7, 8, 9, 11])?));
            }
            Ok(())
        })?;
    }
    Ok(())
}

/// The estimated memory of decoding a JSON body: each object (counted as
/// its opening braces, which a string can only over-count) decodes to a
/// struct.
pub fn json_body(body: &[u8]) -> usize {
    let objects = body.iter().filter(|b| **b == b'{').count();
    body.len()
        .saturating_mul(2)
        .saturating_add(objects.saturating_mul(JSON_OBJECT_BYTES))
}

/// What converting a decoded request adds: its resource and scope copied
/// into every row of their items.
pub fn replication(request: &ExportRequest) -> usize {
    let mut tally = Tally::default();
    match request {
        ExportRequest::Traces(r) => traces(r, &mut tally),
        ExportRequest::Logs(r) => logs(r, &mut tally),
        ExportRequest::Metrics(r) => metrics(r, &mut tally),
    }
    tally.bytes
}

fn traces(r: &ExportTraceServiceRequest, tally: &mut Tally) {
    for rs in &r.resource_spans {
        let resource = rs.resource.as_ref().map_or(0, |m| m.encoded_len());
        for ss in &rs.scope_spans {
            let scope = ss.scope.as_ref().map_or(0, |m| m.encoded_len());
            tally.items(ss.spans.len(), resource + scope);
        }
    }
}

fn logs(r: &ExportLogsServiceRequest, tally: &mut Tally) {
    for rl in &r.resource_logs {
        let resource = rl.resource.as_ref().map_or(0, |m| m.encoded_len());
        for sl in &rl.scope_logs {
            let scope = sl.scope.as_ref().map_or(0, |m| m.encoded_len());
            tally.items(sl.log_records.len(), resource + scope);
        }
    }
}

/// Data points of a metric, whatever its type.
pub fn data_points(m: &Metric) -> usize {
    use opentelemetry_proto::tonic::metrics::v1::metric::Data;
    match &m.data {
        Some(Data::Gauge(g)) => g.data_points.len(),
        Some(Data::Sum(s)) => s.data_points.len(),
        Some(Data::Histogram(h)) => h.data_points.len(),
        Some(Data::ExponentialHistogram(h)) => h.data_points.len(),
        Some(Data::Summary(s)) => s.data_points.len(),
        None => 0,
    }
}

fn metrics(r: &ExportMetricsServiceRequest, tally: &mut Tally) {
    for rm in &r.resource_metrics {
        let resource = rm.resource.as_ref().map_or(0, |m| m.encoded_len());
        for sm in &rm.scope_metrics {
            let scope = sm.scope.as_ref().map_or(0, |m| m.encoded_len());
            for m in &sm.metrics {
                let own = m.name.len() + m.description.len() + m.unit.len();
                tally.items(data_points(m), resource + scope + own);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
    use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
    use opentelemetry_proto::tonic::resource::v1::Resource;

    use super::*;

    fn logs_request(records: usize, resource_attribute_bytes: usize) -> ExportLogsServiceRequest {
        ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: Some(Resource {
                    attributes: vec![KeyValue {
                        key: "k".into(),
                        value: Some(AnyValue {
                            value: Some(any_value::Value::StringValue(
                                "v".repeat(resource_attribute_bytes),
                            )),
                        }),
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
                scope_logs: vec![ScopeLogs {
                    log_records: vec![LogRecord::default(); records],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    #[test]
    fn empty_records_cost_far_more_than_their_bytes() {
        let body = logs_request(100_000, 0).encode_to_vec();
        let cost = protobuf(Table::Logs, &body).unwrap();
        assert!(body.len() < 300_000, "{}", body.len());
        assert!(cost >= 100_000 * ITEM_BYTES, "{cost}");
    }

    #[test]
    fn a_resource_is_counted_once_per_item_it_is_copied_to() {
        let small = protobuf(Table::Logs, &logs_request(1000, 10).encode_to_vec()).unwrap();
        let large = protobuf(Table::Logs, &logs_request(1000, 10_000).encode_to_vec()).unwrap();
        assert!(large - small >= 1000 * 9_990, "{small} {large}");
    }

    #[test]
    fn the_json_estimate_after_decoding_agrees_with_the_protobuf_scan() {
        let request = logs_request(1000, 100);
        let scanned = protobuf(Table::Logs, &request.encode_to_vec()).unwrap();
        let replicated = replication(&ExportRequest::Logs(request.clone()));
        assert!(
            replicated <= scanned && replicated * 2 > scanned,
            "{replicated} {scanned}"
        );
    }

    #[test]
    fn malformed_bodies_are_errors_not_estimates() {
        assert!(protobuf(Table::Logs, &[0x0a, 0x05, 0x01]).is_err());
    }
}

//! `ExportLogsServiceRequest` → `logs` batch.

use std::fmt::Write as _;
use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, Int32Builder, StringBuilder, StringDictionaryBuilder, TimestampNanosecondBuilder,
    UInt32Builder,
};
use datafusion::arrow::datatypes::Int32Type;
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::record_batch::RecordBatch;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use smolder_common::schema;

use super::attributes::Text;
use super::{
    AttributeBuilder, Converted, Rejections, ResourceScope, any_value_type, append_dict_or_null,
    append_hex_or_null, append_ts_or_null, bad_id, check_id, nanos, timestamp_builder,
};

fn invalid(record: &LogRecord) -> Option<String> {
    if !check_id(&record.trace_id, 16, true) {
        return Some(bad_id("log record trace_id", &record.trace_id, 16));
    }
    if !check_id(&record.span_id, 8, true) {
        return Some(bad_id("log record span_id", &record.span_id, 8));
    }
    None
}

/// Converts a logs export request into a `logs` batch.
pub fn logs(request: &ExportLogsServiceRequest) -> Result<Converted, ArrowError> {
    let mut b = Builders::new();
    let mut rejections = Rejections::default();
    for rl in &request.resource_logs {
        b.rs.push_resource(rl.resource.as_ref(), &rl.schema_url);
        for sl in &rl.scope_logs {
            b.rs.push_scope(sl.scope.as_ref(), &sl.schema_url);
            for record in &sl.log_records {
                match invalid(record) {
                    None => b.append(record),
                    Some(reason) => rejections.reject(|| reason),
                }
            }
        }
    }
    Ok(rejections.into_converted(b.finish()?))
}

struct Builders {
    time: TimestampNanosecondBuilder,
    observed_time: TimestampNanosecondBuilder,
    severity_number: Int32Builder,
    severity_text: StringDictionaryBuilder<Int32Type>,
    body: StringBuilder,
    body_type: StringDictionaryBuilder<Int32Type>,
    event_name: StringDictionaryBuilder<Int32Type>,
    trace_id: StringBuilder,
    span_id: StringBuilder,
    flags: UInt32Builder,
    attributes: AttributeBuilder,
    rs: ResourceScope,
}

impl Builders {
    fn new() -> Self {
        Self {
            time: timestamp_builder(),
            observed_time: timestamp_builder(),
            severity_number: Int32Builder::new(),
            severity_text: StringDictionaryBuilder::new(),
            body: StringBuilder::new(),
            body_type: StringDictionaryBuilder::new(),
            event_name: StringDictionaryBuilder::new(),
            trace_id: StringBuilder::new(),
            span_id: StringBuilder::new(),
            flags: UInt32Builder::new(),
            attributes: AttributeBuilder::new(),
            rs: ResourceScope::with_capacity(0),
        }
    }

    fn append(&mut self, record: &LogRecord) {
        self.rs.add_row();
        // The log data model: when a record has no time of its own, its observed
        // time stands in for it.
        let time = if record.time_unix_nano != 0 {
            record.time_unix_nano
        } else {
            record.observed_time_unix_nano
        };
        self.time.append_value(nanos(time));
        append_ts_or_null(&mut self.observed_time, record.observed_time_unix_nano);
        self.severity_number.append_value(record.severity_number);
        append_dict_or_null(&mut self.severity_text, &record.severity_text);
        match record.body.as_ref() {
            Some(body) if body.value.is_some() => {
                match &body.value {
                    Some(Value::StringValue(s)) => self.body.append_value(s),
                    _ => {
                        let _ = write!(self.body, "{}", Text(body));
                        self.body.append_value("");
                    }
                }
                self.body_type
                    .append_value(any_value_type(Some(body)).unwrap_or("string"));
            }
            _ => {
                self.body.append_null();
                self.body_type.append_null();
            }
        }
        append_dict_or_null(&mut self.event_name, &record.event_name);
        append_hex_or_null(&mut self.trace_id, &record.trace_id);
        append_hex_or_null(&mut self.span_id, &record.span_id);
        self.flags.append_value(record.flags);
        self.attributes
            .append(&record.attributes, record.dropped_attributes_count);
    }

    fn finish(mut self) -> Result<RecordBatch, ArrowError> {
        let rs = self.rs.finish()?;
        let [attrs, attr_types, dropped_attrs] = self.attributes.finish();
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(self.time.finish()),
            Arc::new(self.observed_time.finish()),
            rs.service_name,
            Arc::new(self.severity_number.finish()),
            Arc::new(self.severity_text.finish()),
            Arc::new(self.body.finish()),
            Arc::new(self.body_type.finish()),
            Arc::new(self.event_name.finish()),
            Arc::new(self.trace_id.finish()),
            Arc::new(self.span_id.finish()),
            Arc::new(self.flags.finish()),
            attrs,
            attr_types,
            dropped_attrs,
        ];
        columns.extend(rs.trailing);
        RecordBatch::try_new(schema::logs(), columns)
    }
}

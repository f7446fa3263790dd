//! `ExportTraceServiceRequest` → `spans` batch.

use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, Int64Builder, StringBuilder, StringDictionaryBuilder, StructArray, UInt32Builder,
};
use datafusion::arrow::datatypes::Int32Type;
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::record_batch::RecordBatch;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::Span;
use smolder_common::schema;

use super::{
    AttributeBuilder, Converted, Rejections, ResourceScope, append_dict_or_null, append_hex,
    append_hex_or_null, bad_id, check_id, int_value, list_column, nanos, str_value,
    timestamp_builder,
};

/// The readable name of a span kind.
pub(crate) fn kind_name(kind: i32) -> &'static str {
    match kind {
        1 => "INTERNAL",
        2 => "SERVER",
        3 => "CLIENT",
        4 => "PRODUCER",
        5 => "CONSUMER",
        _ => "UNSPECIFIED",
    }
}

/// The readable name of a span status code.
pub(crate) fn status_name(code: i32) -> &'static str {
    match code {
        1 => "OK",
        2 => "ERROR",
        _ => "UNSET",
    }
}

/// Why a span cannot be stored, if it cannot.
fn invalid(span: &Span) -> Option<String> {
    if !check_id(&span.trace_id, 16, false) {
        return Some(bad_id("span trace_id", &span.trace_id, 16));
    }
    if !check_id(&span.span_id, 8, false) {
        return Some(bad_id("span span_id", &span.span_id, 8));
    }
    if !check_id(&span.parent_span_id, 8, true) {
        return Some(bad_id("span parent_span_id", &span.parent_span_id, 8));
    }
    for link in &span.links {
        if !check_id(&link.trace_id, 16, false) || !check_id(&link.span_id, 8, false) {
            return Some("span link ids must be 16 and 8 bytes".to_string());
        }
    }
    None
}

/// Converts a trace export request into a `spans` batch.
pub fn spans(request: &ExportTraceServiceRequest) -> Result<Converted, ArrowError> {
    let mut b = Builders::new();
    let mut rejections = Rejections::default();
    for rs in &request.resource_spans {
        b.rs.push_resource(rs.resource.as_ref(), &rs.schema_url);
        for ss in &rs.scope_spans {
            b.rs.push_scope(ss.scope.as_ref(), &ss.schema_url);
            for span in &ss.spans {
                match invalid(span) {
                    None => b.append(span),
                    Some(reason) => rejections.reject(|| reason),
                }
            }
        }
    }
    Ok(rejections.into_converted(b.finish()?))
}

struct Builders {
    start_time: datafusion::arrow::array::TimestampNanosecondBuilder,
    end_time: datafusion::arrow::array::TimestampNanosecondBuilder,
    duration_ns: Int64Builder,
    name: StringDictionaryBuilder<Int32Type>,
    kind: StringDictionaryBuilder<Int32Type>,
    status_code: StringDictionaryBuilder<Int32Type>,
    status_message: StringBuilder,
    trace_id: StringBuilder,
    span_id: StringBuilder,
    parent_span_id: StringBuilder,
    trace_state: StringBuilder,
    flags: UInt32Builder,
    http_route: StringDictionaryBuilder<Int32Type>,
    http_request_method: StringDictionaryBuilder<Int32Type>,
    http_response_status_code: Int64Builder,
    rpc_grpc_status_code: Int64Builder,
    attributes: AttributeBuilder,
    event_offsets: Vec<i32>,
    event_time: datafusion::arrow::array::TimestampNanosecondBuilder,
    event_name: StringBuilder,
    event_attributes: AttributeBuilder,
    dropped_events: UInt32Builder,
    link_offsets: Vec<i32>,
    link_trace_id: StringBuilder,
    link_span_id: StringBuilder,
    link_trace_state: StringBuilder,
    link_flags: UInt32Builder,
    link_attributes: AttributeBuilder,
    dropped_links: UInt32Builder,
    rs: ResourceScope,
}

impl Builders {
    fn new() -> Self {
        Self {
            start_time: timestamp_builder(),
            end_time: timestamp_builder(),
            duration_ns: Int64Builder::new(),
            name: StringDictionaryBuilder::new(),
            kind: StringDictionaryBuilder::new(),
            status_code: StringDictionaryBuilder::new(),
            status_message: StringBuilder::new(),
            trace_id: StringBuilder::new(),
            span_id: StringBuilder::new(),
            parent_span_id: StringBuilder::new(),
            trace_state: StringBuilder::new(),
            flags: UInt32Builder::new(),
            http_route: StringDictionaryBuilder::new(),
            http_request_method: StringDictionaryBuilder::new(),
            http_response_status_code: Int64Builder::new(),
            rpc_grpc_status_code: Int64Builder::new(),
            attributes: AttributeBuilder::new(),
            event_offsets: vec![0],
            event_time: timestamp_builder(),
            event_name: StringBuilder::new(),
            event_attributes: AttributeBuilder::new(),
            dropped_events: UInt32Builder::new(),
            link_offsets: vec![0],
            link_trace_id: StringBuilder::new(),
            link_span_id: StringBuilder::new(),
            link_trace_state: StringBuilder::new(),
            link_flags: UInt32Builder::new(),
            link_attributes: AttributeBuilder::new(),
            dropped_links: UInt32Builder::new(),
            rs: ResourceScope::new(),
        }
    }

    fn append(&mut self, span: &Span) {
        self.rs.add_row();
        let start = nanos(span.start_time_unix_nano);
        let end = nanos(span.end_time_unix_nano);
        self.start_time.append_value(start);
        self.end_time.append_value(end);
        self.duration_ns.append_value(end.saturating_sub(start));
        self.name.append_value(&span.name);
        self.kind.append_value(kind_name(span.kind));
        let status = span.status.as_ref();
        self.status_code
            .append_value(status_name(status.map_or(0, |s| s.code)));
        match status.map(|s| s.message.as_str()) {
            Some(m) if !m.is_empty() => self.status_message.append_value(m),
            _ => self.status_message.append_null(),
        }
        append_hex(&mut self.trace_id, &span.trace_id);
        append_hex(&mut self.span_id, &span.span_id);
        append_hex_or_null(&mut self.parent_span_id, &span.parent_span_id);
        if span.trace_state.is_empty() {
            self.trace_state.append_null();
        } else {
            self.trace_state.append_value(&span.trace_state);
        }
        self.flags.append_value(span.flags);
        self.append_promoted(span);
        self.attributes
            .append(&span.attributes, span.dropped_attributes_count);

        for event in &span.events {
            self.event_time.append_value(nanos(event.time_unix_nano));
            self.event_name.append_value(&event.name);
            self.event_attributes
                .append(&event.attributes, event.dropped_attributes_count);
        }
        push_offset(&mut self.event_offsets, span.events.len());
        self.dropped_events.append_value(span.dropped_events_count);

        for link in &span.links {
            append_hex(&mut self.link_trace_id, &link.trace_id);
            append_hex(&mut self.link_span_id, &link.span_id);
            if link.trace_state.is_empty() {
                self.link_trace_state.append_null();
            } else {
                self.link_trace_state.append_value(&link.trace_state);
            }
            self.link_flags.append_value(link.flags);
            self.link_attributes
                .append(&link.attributes, link.dropped_attributes_count);
        }
        push_offset(&mut self.link_offsets, span.links.len());
        self.dropped_links.append_value(span.dropped_links_count);
    }

    /// Fills the promoted semantic-convention columns in one pass over the
    /// attributes, accepting the pre-1.20 HTTP names as fallbacks.
    fn append_promoted(&mut self, span: &Span) {
        let (mut route, mut method, mut old_method) = (None, None, None);
        let (mut status, mut old_status, mut grpc) = (None, None, None);
        for kv in &span.attributes {
            let v = kv.value.as_ref();
            match kv.key.as_str() {
                "http.route" => route = str_value(v),
                "http.request.method" => method = str_value(v),
                "http.method" => old_method = str_value(v),
                "http.response.status_code" => status = int_value(v),
                "http.status_code" => old_status = int_value(v),
                "rpc.grpc.status_code" => grpc = int_value(v),
                _ => {}
            }
        }
        append_dict_or_null(&mut self.http_route, route.unwrap_or(""));
        append_dict_or_null(
            &mut self.http_request_method,
            method.or(old_method).unwrap_or(""),
        );
        self.http_response_status_code
            .append_option(status.or(old_status));
        self.rpc_grpc_status_code.append_option(grpc);
    }

    fn finish(mut self) -> Result<RecordBatch, ArrowError> {
        let schema = schema::spans();
        let rs = self.rs.finish()?;
        let [attrs, attr_types, dropped_attrs] = self.attributes.finish();

        let [e_attrs, e_types, e_dropped] = self.event_attributes.finish();
        let events = StructArray::try_new(
            schema::span_event_fields(),
            vec![
                Arc::new(self.event_time.finish()) as ArrayRef,
                Arc::new(self.event_name.finish()),
                e_attrs,
                e_types,
                e_dropped,
            ],
            None,
        )?;
        let events = list_column(
            schema.field_with_name("events")?.data_type(),
            self.event_offsets,
            Arc::new(events),
        )?;

        let [l_attrs, l_types, l_dropped] = self.link_attributes.finish();
        let links = StructArray::try_new(
            schema::span_link_fields(),
            vec![
                Arc::new(self.link_trace_id.finish()) as ArrayRef,
                Arc::new(self.link_span_id.finish()),
                Arc::new(self.link_trace_state.finish()),
                Arc::new(self.link_flags.finish()),
                l_attrs,
                l_types,
                l_dropped,
            ],
            None,
        )?;
        let links = list_column(
            schema.field_with_name("links")?.data_type(),
            self.link_offsets,
            Arc::new(links),
        )?;

        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(self.start_time.finish()),
            Arc::new(self.end_time.finish()),
            Arc::new(self.duration_ns.finish()),
            rs.service_name,
            Arc::new(self.name.finish()),
            Arc::new(self.kind.finish()),
            Arc::new(self.status_code.finish()),
            Arc::new(self.status_message.finish()),
            Arc::new(self.trace_id.finish()),
            Arc::new(self.span_id.finish()),
            Arc::new(self.parent_span_id.finish()),
            Arc::new(self.trace_state.finish()),
            Arc::new(self.flags.finish()),
            Arc::new(self.http_route.finish()),
            Arc::new(self.http_request_method.finish()),
            Arc::new(self.http_response_status_code.finish()),
            Arc::new(self.rpc_grpc_status_code.finish()),
            attrs,
            attr_types,
            dropped_attrs,
            events,
            Arc::new(self.dropped_events.finish()),
            links,
            Arc::new(self.dropped_links.finish()),
        ];
        columns.extend(rs.trailing);
        RecordBatch::try_new(schema, columns)
    }
}

/// Closes one row of a list column that received `added` items.
pub(crate) fn push_offset(offsets: &mut Vec<i32>, added: usize) {
    let last = *offsets.last().expect("offsets start with 0");
    offsets.push(last + i32::try_from(added).expect("list fits in i32 offsets"));
}

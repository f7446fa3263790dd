//! Trace export requests → `spans` batch, read straight from the protobuf
//! bytes (see [`super::wire`]).

use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, Int64Builder, StringBuilder, StringDictionaryBuilder, StructArray, UInt32Builder,
};
use datafusion::arrow::datatypes::Int32Type;
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::record_batch::RecordBatch;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message as _;
use smolder_common::schema;

use super::attributes::Val;
use super::wire::{self, WireError, for_each_field, key_value};
use super::{
    AttributeBuilder, ConvertError, Converted, Rejections, ResourceScope, append_dict_or_null,
    append_hex, append_hex_or_null, bad_id, check_id, list_column, nanos,
    timestamp_builder_with_capacity,
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

/// Converts a decoded trace export request (from JSON) into a `spans` batch.
pub fn spans(request: &ExportTraceServiceRequest) -> Result<Converted, ConvertError> {
    spans_protobuf(&request.encode_to_vec())
}

/// Converts the protobuf bytes of an `ExportTraceServiceRequest` into a
/// `spans` batch.
pub fn spans_protobuf(body: &[u8]) -> Result<Converted, ConvertError> {
    let mut b = Builders::new(count_spans(body)?);
    let mut rejections = Rejections::default();
    let mut scratch = Scratch::default();
    for_each_field(body, |number, field| {
        if number == 1 {
            let message = field.bytes("ExportTraceServiceRequest", "resource_spans")?;
            resource_spans(message, &mut b, &mut rejections, &mut scratch)?;
        }
        Ok(())
    })?;
    Ok(rejections.into_converted(b.finish()?))
}

/// Reusable lists of the pieces of the span being read.
#[derive(Default)]
struct Scratch<'a> {
    attributes: Vec<(&'a str, Val<'a>)>,
    nested_attributes: Vec<(&'a str, Val<'a>)>,
    events: Vec<&'a [u8]>,
    links: Vec<&'a [u8]>,
}

/// Counts the spans of a request without reading them, to size the builders.
fn count_spans(body: &[u8]) -> Result<usize, WireError> {
    let mut spans = 0;
    for_each_field(body, |number, field| {
        if number == 1 {
            for_each_field(
                field.bytes("ExportTraceServiceRequest", "resource_spans")?,
                |n, f| {
                    if n == 2 {
                        for_each_field(f.bytes("ResourceSpans", "scope_spans")?, |n, _| {
                            spans += usize::from(n == 2);
                            Ok(())
                        })?;
                    }
                    Ok(())
                },
            )?;
        }
        Ok(())
    })?;
    Ok(spans)
}

/// Reads the `attributes` (field `attributes_field`) and dropped count
/// (`dropped_field`) of a `Resource` or `InstrumentationScope`-like message;
/// `other` sees the remaining fields.
fn read_attributes<'a>(
    message_name: &str,
    message: &'a [u8],
    attributes: &mut Vec<(&'a str, Val<'a>)>,
    dropped: &mut u32,
    (attributes_field, dropped_field): (u32, u32),
    mut other: impl FnMut(u32, wire::Field<'a>) -> Result<(), WireError>,
) -> Result<(), WireError> {
    for_each_field(message, |number, field| {
        if number == attributes_field {
            attributes.push(key_value(field.bytes(message_name, "attributes")?)?);
        } else if number == dropped_field {
            *dropped = field.varint32(message_name, "dropped_attributes_count")?;
        } else {
            other(number, field)?;
        }
        Ok(())
    })
}

fn resource_spans<'a>(
    message: &'a [u8],
    b: &mut Builders,
    rejections: &mut Rejections,
    scratch: &mut Scratch<'a>,
) -> Result<(), WireError> {
    const M: &str = "ResourceSpans";
    let mut schema_url = "";
    let mut dropped = 0;
    scratch.attributes.clear();
    // The resource and schema URL come first in the batch but not necessarily
    // on the wire; a first pass reads them, a second the scopes.
    for_each_field(message, |number, field| {
        match number {
            1 => read_attributes(
                "Resource",
                field.bytes(M, "resource")?,
                &mut scratch.attributes,
                &mut dropped,
                (1, 2),
                |_, _| Ok(()),
            )?,
            3 => schema_url = field.string(M, "schema_url")?,
            _ => {}
        }
        Ok(())
    })?;
    b.rs.push_resource_entries(&scratch.attributes, dropped, schema_url);
    for_each_field(message, |number, field| {
        if number == 2 {
            scope_spans(field.bytes(M, "scope_spans")?, b, rejections, scratch)?;
        }
        Ok(())
    })
}

fn scope_spans<'a>(
    message: &'a [u8],
    b: &mut Builders,
    rejections: &mut Rejections,
    scratch: &mut Scratch<'a>,
) -> Result<(), WireError> {
    const M: &str = "ScopeSpans";
    let (mut name, mut version, mut schema_url) = ("", "", "");
    let mut dropped = 0;
    scratch.attributes.clear();
    for_each_field(message, |number, field| {
        match number {
            1 => read_attributes(
                "InstrumentationScope",
                field.bytes(M, "scope")?,
                &mut scratch.attributes,
                &mut dropped,
                (3, 4),
                |n, f| {
                    match n {
                        1 => name = f.string("InstrumentationScope", "name")?,
                        2 => version = f.string("InstrumentationScope", "version")?,
                        _ => {}
                    }
                    Ok(())
                },
            )?,
            3 => schema_url = field.string(M, "schema_url")?,
            _ => {}
        }
        Ok(())
    })?;
    b.rs.push_scope_entries(name, version, &scratch.attributes, dropped, schema_url);
    for_each_field(message, |number, field| {
        if number == 2 {
            let span = SpanView::read(field.bytes(M, "spans")?, scratch)?;
            match span.invalid(&scratch.links)? {
                None => b.append(&span, scratch)?,
                Some(reason) => rejections.reject(|| reason),
            }
        }
        Ok(())
    })
}

/// The scalar fields of one span; its attributes, events and links are in the
/// [`Scratch`] lists.
#[derive(Default)]
struct SpanView<'a> {
    trace_id: &'a [u8],
    span_id: &'a [u8],
    trace_state: &'a str,
    parent_span_id: &'a [u8],
    flags: u32,
    name: &'a str,
    kind: i32,
    start: u64,
    end: u64,
    dropped_attributes: u32,
    dropped_events: u32,
    dropped_links: u32,
    status_message: &'a str,
    status_code: i32,
}

impl<'a> SpanView<'a> {
    fn read(message: &'a [u8], scratch: &mut Scratch<'a>) -> Result<Self, WireError> {
        const M: &str = "Span";
        let mut span = Self::default();
        scratch.attributes.clear();
        scratch.events.clear();
        scratch.links.clear();
        for_each_field(message, |number, field| {
            match number {
                1 => span.trace_id = field.bytes(M, "trace_id")?,
                2 => span.span_id = field.bytes(M, "span_id")?,
                3 => span.trace_state = field.string(M, "trace_state")?,
                4 => span.parent_span_id = field.bytes(M, "parent_span_id")?,
                5 => span.name = field.string(M, "name")?,
                6 => span.kind = field.varint32(M, "kind")? as i32,
                7 => span.start = field.fixed64(M, "start_time_unix_nano")?,
                8 => span.end = field.fixed64(M, "end_time_unix_nano")?,
                9 => scratch
                    .attributes
                    .push(key_value(field.bytes(M, "attributes")?)?),
                10 => span.dropped_attributes = field.varint32(M, "dropped_attributes_count")?,
                11 => scratch.events.push(field.bytes(M, "events")?),
                12 => span.dropped_events = field.varint32(M, "dropped_events_count")?,
                13 => scratch.links.push(field.bytes(M, "links")?),
                14 => span.dropped_links = field.varint32(M, "dropped_links_count")?,
                15 => for_each_field(field.bytes(M, "status")?, |n, f| {
                    match n {
                        2 => span.status_message = f.string("Status", "message")?,
                        3 => span.status_code = f.varint32("Status", "code")? as i32,
                        _ => {}
                    }
                    Ok(())
                })?,
                16 => span.flags = field.fixed32(M, "flags")?,
                _ => {}
            }
            Ok(())
        })?;
        Ok(span)
    }

    /// Why the span cannot be stored, if it cannot.
    fn invalid(&self, links: &[&'a [u8]]) -> Result<Option<String>, WireError> {
        if !check_id(self.trace_id, 16, false) {
            return Ok(Some(bad_id("span trace_id", self.trace_id, 16)));
        }
        if !check_id(self.span_id, 8, false) {
            return Ok(Some(bad_id("span span_id", self.span_id, 8)));
        }
        if !check_id(self.parent_span_id, 8, true) {
            return Ok(Some(bad_id("span parent_span_id", self.parent_span_id, 8)));
        }
        // Times are stored as nanoseconds in an i64 (until 2262); a span
        // that ends before it starts has no duration to report.
        for (what, t) in [("start", self.start), ("end", self.end)] {
            if i64::try_from(t).is_err() {
                return Ok(Some(format!(
                    "span {what}_time_unix_nano {t} is past the year 2262"
                )));
            }
        }
        if self.end < self.start {
            return Ok(Some(format!(
                "span end_time_unix_nano {} is before start_time_unix_nano {}",
                self.end, self.start
            )));
        }
        for link in links {
            let link = LinkView::read(link, &mut Vec::new(), false)?;
            if !check_id(link.trace_id, 16, false) || !check_id(link.span_id, 8, false) {
                return Ok(Some("span link ids must be 16 and 8 bytes".to_string()));
            }
        }
        Ok(None)
    }
}

#[derive(Default)]
struct LinkView<'a> {
    trace_id: &'a [u8],
    span_id: &'a [u8],
    trace_state: &'a str,
    flags: u32,
    dropped_attributes: u32,
}

impl<'a> LinkView<'a> {
    /// Reads a link; its attributes go to `attributes` when `with_attributes`.
    fn read(
        message: &'a [u8],
        attributes: &mut Vec<(&'a str, Val<'a>)>,
        with_attributes: bool,
    ) -> Result<Self, WireError> {
        const M: &str = "Span.Link";
        let mut link = Self::default();
        attributes.clear();
        for_each_field(message, |number, field| {
            match number {
                1 => link.trace_id = field.bytes(M, "trace_id")?,
                2 => link.span_id = field.bytes(M, "span_id")?,
                3 => link.trace_state = field.string(M, "trace_state")?,
                4 if with_attributes => attributes.push(key_value(field.bytes(M, "attributes")?)?),
                5 => link.dropped_attributes = field.varint32(M, "dropped_attributes_count")?,
                6 => link.flags = field.fixed32(M, "flags")?,
                _ => {}
            }
            Ok(())
        })?;
        Ok(link)
    }
}

/// Reads a span event: its time, name and dropped count; attributes go to
/// `attributes`.
fn read_event<'a>(
    message: &'a [u8],
    attributes: &mut Vec<(&'a str, Val<'a>)>,
) -> Result<(u64, &'a str, u32), WireError> {
    const M: &str = "Span.Event";
    let (mut time, mut name, mut dropped) = (0, "", 0);
    attributes.clear();
    for_each_field(message, |number, field| {
        match number {
            1 => time = field.fixed64(M, "time_unix_nano")?,
            2 => name = field.string(M, "name")?,
            3 => attributes.push(key_value(field.bytes(M, "attributes")?)?),
            4 => dropped = field.varint32(M, "dropped_attributes_count")?,
            _ => {}
        }
        Ok(())
    })?;
    Ok((time, name, dropped))
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
    /// Builders sized for `n` spans.
    fn new(n: usize) -> Self {
        // Typical spans carry about ten attributes, and few events or links.
        let (attributes, events, links) = (n * 10, n / 4, n / 16);
        let dict = || StringDictionaryBuilder::with_capacity(n, 64, 1024);
        let timestamps = || timestamp_builder_with_capacity(n);
        Self {
            start_time: timestamps(),
            end_time: timestamps(),
            duration_ns: Int64Builder::with_capacity(n),
            name: dict(),
            kind: dict(),
            status_code: dict(),
            status_message: StringBuilder::new(),
            trace_id: StringBuilder::with_capacity(n, n * 32),
            span_id: StringBuilder::with_capacity(n, n * 16),
            parent_span_id: StringBuilder::with_capacity(n, n * 16),
            trace_state: StringBuilder::new(),
            flags: UInt32Builder::with_capacity(n),
            http_route: dict(),
            http_request_method: dict(),
            http_response_status_code: Int64Builder::with_capacity(n),
            rpc_grpc_status_code: Int64Builder::with_capacity(n),
            attributes: AttributeBuilder::with_capacity(n, attributes),
            event_offsets: first_offset(n),
            event_time: timestamp_builder_with_capacity(events),
            event_name: StringBuilder::with_capacity(events, events * 16),
            event_attributes: AttributeBuilder::with_capacity(events, events),
            dropped_events: UInt32Builder::with_capacity(n),
            link_offsets: first_offset(n),
            link_trace_id: StringBuilder::with_capacity(links, links * 32),
            link_span_id: StringBuilder::with_capacity(links, links * 16),
            link_trace_state: StringBuilder::new(),
            link_flags: UInt32Builder::with_capacity(links),
            link_attributes: AttributeBuilder::with_capacity(links, links),
            dropped_links: UInt32Builder::with_capacity(n),
            rs: ResourceScope::with_capacity(n),
        }
    }

    fn append<'a>(
        &mut self,
        span: &SpanView<'a>,
        scratch: &mut Scratch<'a>,
    ) -> Result<(), WireError> {
        self.rs.add_row();
        let start = nanos(span.start);
        let end = nanos(span.end);
        self.start_time.append_value(start);
        self.end_time.append_value(end);
        self.duration_ns.append_value(end.saturating_sub(start));
        self.name.append_value(span.name);
        self.kind.append_value(kind_name(span.kind));
        self.status_code.append_value(status_name(span.status_code));
        if span.status_message.is_empty() {
            self.status_message.append_null();
        } else {
            self.status_message.append_value(span.status_message);
        }
        append_hex(&mut self.trace_id, span.trace_id);
        append_hex(&mut self.span_id, span.span_id);
        append_hex_or_null(&mut self.parent_span_id, span.parent_span_id);
        if span.trace_state.is_empty() {
            self.trace_state.append_null();
        } else {
            self.trace_state.append_value(span.trace_state);
        }
        self.flags.append_value(span.flags);
        self.append_promoted(&scratch.attributes);
        self.attributes
            .append_entries(scratch.attributes.iter().copied(), span.dropped_attributes);

        for event in &scratch.events {
            let (time, name, dropped) = read_event(event, &mut scratch.nested_attributes)?;
            self.event_time.append_value(nanos(time));
            self.event_name.append_value(name);
            self.event_attributes
                .append_entries(scratch.nested_attributes.iter().copied(), dropped);
        }
        push_offset(&mut self.event_offsets, scratch.events.len());
        self.dropped_events.append_value(span.dropped_events);

        for link in &scratch.links {
            let link = LinkView::read(link, &mut scratch.nested_attributes, true)?;
            append_hex(&mut self.link_trace_id, link.trace_id);
            append_hex(&mut self.link_span_id, link.span_id);
            if link.trace_state.is_empty() {
                self.link_trace_state.append_null();
            } else {
                self.link_trace_state.append_value(link.trace_state);
            }
            self.link_flags.append_value(link.flags);
            self.link_attributes.append_entries(
                scratch.nested_attributes.iter().copied(),
                link.dropped_attributes,
            );
        }
        push_offset(&mut self.link_offsets, scratch.links.len());
        self.dropped_links.append_value(span.dropped_links);
        Ok(())
    }

    /// Fills the promoted semantic-convention columns in one pass over the
    /// attributes, accepting the pre-1.20 HTTP names as fallbacks.
    fn append_promoted(&mut self, attributes: &[(&str, Val<'_>)]) {
        let (mut route, mut method, mut old_method) = (None, None, None);
        let (mut status, mut old_status, mut grpc) = (None, None, None);
        for (key, value) in attributes {
            match *key {
                "http.route" => route = value.as_str(),
                "http.request.method" => method = value.as_str(),
                "http.method" => old_method = value.as_str(),
                "http.response.status_code" => status = value.as_int(),
                "http.status_code" => old_status = value.as_int(),
                "rpc.grpc.status_code" => grpc = value.as_int(),
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

/// The offsets of a list column of `rows` rows before the first row is added.
fn first_offset(rows: usize) -> Vec<i32> {
    let mut offsets = Vec::with_capacity(rows + 1);
    offsets.push(0);
    offsets
}

/// Closes one row of a list column that received `added` items.
pub(crate) fn push_offset(offsets: &mut Vec<i32>, added: usize) {
    let last = *offsets.last().expect("offsets start with 0");
    offsets.push(last + i32::try_from(added).expect("list fits in i32 offsets"));
}

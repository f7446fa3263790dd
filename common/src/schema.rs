//! Arrow schemas of the `spans`, `logs` and `metrics` tables.
//!
//! The column-by-column reference, with the reasoning behind each choice, is
//! `docs/schema.md`; keep the two in step. In short:
//!
//! * timestamps are `Timestamp(Nanosecond, "UTC")`;
//! * trace and span ids are lowercase hex text, so `WHERE trace_id = '…'` works;
//! * low-cardinality strings (service, span name, kind, status, metric name…) are
//!   dictionary-encoded;
//! * attributes are kept losslessly in a `Map<Utf8, Utf8>` (`attributes['http.route']`)
//!   holding each value's canonical text, beside a `*_types` map that records the
//!   OTLP type of every value that is not a string (`int`, `double`, `bool`, `bytes`,
//!   `array`, `kvlist`, `empty`);
//! * the hot semantic-convention attributes are also promoted to real columns.

use std::sync::{Arc, LazyLock};

use datafusion::arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};

/// Name of the map entries field, and of its key and value fields.
pub const MAP_ENTRIES: &str = "entries";
/// Name of the key field of attribute maps.
pub const MAP_KEY: &str = "key";
/// Name of the value field of attribute maps.
pub const MAP_VALUE: &str = "value";

/// `Timestamp(Nanosecond, "UTC")`.
pub fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()))
}

/// `Dictionary(Int32, Utf8)`, used for low-cardinality strings.
pub fn dict_type() -> DataType {
    DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8))
}

/// The map type of attribute columns: `Map<Utf8 not null, Utf8>`.
pub fn attribute_map_type() -> DataType {
    let entries = Field::new(
        MAP_ENTRIES,
        DataType::Struct(Fields::from(vec![
            Field::new(MAP_KEY, DataType::Utf8, false),
            Field::new(MAP_VALUE, DataType::Utf8, true),
        ])),
        false,
    );
    DataType::Map(Arc::new(entries), false)
}

fn ts(name: &str, nullable: bool) -> Field {
    Field::new(name, timestamp_type(), nullable)
}

fn dict(name: &str) -> Field {
    Field::new(name, dict_type(), true)
}

fn utf8(name: &str) -> Field {
    Field::new(name, DataType::Utf8, true)
}

fn map(name: &str) -> Field {
    Field::new(name, attribute_map_type(), true)
}

fn list_of(name: &str, item: DataType) -> Field {
    Field::new(
        name,
        DataType::List(Arc::new(Field::new("item", item, true))),
        true,
    )
}

/// The columns describing an item's attributes: values, types and the dropped count.
fn attribute_fields(prefix: &str) -> Vec<Field> {
    vec![
        map(&format!("{prefix}attributes")),
        map(&format!("{prefix}attribute_types")),
        Field::new(
            format!("{prefix}dropped_attributes_count"),
            DataType::UInt32,
            true,
        ),
    ]
}

/// Columns every table ends with: the resource and the instrumentation scope.
fn resource_and_scope_fields() -> Vec<Field> {
    let mut fields = attribute_fields("resource_");
    fields.push(dict("resource_schema_url"));
    fields.extend([dict("scope_name"), dict("scope_version")]);
    fields.extend(attribute_fields("scope_"));
    fields.push(dict("scope_schema_url"));
    fields
}

/// Fields of one span event, the item type of the `events` list column.
pub fn span_event_fields() -> Fields {
    let mut fields = vec![ts("time", true), utf8("name")];
    fields.extend(attribute_fields(""));
    Fields::from(fields)
}

/// Fields of one span link, the item type of the `links` list column.
pub fn span_link_fields() -> Fields {
    let mut fields = vec![
        utf8("trace_id"),
        utf8("span_id"),
        utf8("trace_state"),
        Field::new("flags", DataType::UInt32, true),
    ];
    fields.extend(attribute_fields(""));
    Fields::from(fields)
}

/// Fields of one exemplar, the item type of the `exemplars` list column.
pub fn exemplar_fields() -> Fields {
    Fields::from(vec![
        ts("time", true),
        Field::new("value", DataType::Float64, true),
        Field::new("value_int", DataType::Int64, true),
        utf8("trace_id"),
        utf8("span_id"),
        map("filtered_attributes"),
        map("filtered_attribute_types"),
    ])
}

/// Fields of one summary quantile, the item type of the `quantiles` list column.
pub fn quantile_fields() -> Fields {
    Fields::from(vec![
        Field::new("quantile", DataType::Float64, true),
        Field::new("value", DataType::Float64, true),
    ])
}

/// Schema of the `spans` table.
pub fn spans() -> SchemaRef {
    static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
        let mut fields = vec![
            ts("start_time", false),
            ts("end_time", false),
            Field::new("duration_ns", DataType::Int64, false),
            dict("service_name"),
            dict("name"),
            dict("kind"),
            dict("status_code"),
            utf8("status_message"),
            Field::new("trace_id", DataType::Utf8, false),
            Field::new("span_id", DataType::Utf8, false),
            utf8("parent_span_id"),
            utf8("trace_state"),
            Field::new("flags", DataType::UInt32, true),
            dict("http_route"),
            dict("http_request_method"),
            Field::new("http_response_status_code", DataType::Int64, true),
            Field::new("rpc_grpc_status_code", DataType::Int64, true),
        ];
        fields.extend(attribute_fields(""));
        fields.push(list_of("events", DataType::Struct(span_event_fields())));
        fields.push(Field::new("dropped_events_count", DataType::UInt32, true));
        fields.push(list_of("links", DataType::Struct(span_link_fields())));
        fields.push(Field::new("dropped_links_count", DataType::UInt32, true));
        fields.extend(resource_and_scope_fields());
        Arc::new(Schema::new(fields))
    });
    Arc::clone(&SCHEMA)
}

/// Schema of the `logs` table.
pub fn logs() -> SchemaRef {
    static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
        let mut fields = vec![
            ts("time", false),
            ts("observed_time", true),
            dict("service_name"),
            Field::new("severity_number", DataType::Int32, true),
            dict("severity_text"),
            utf8("body"),
            dict("body_type"),
            dict("event_name"),
            utf8("trace_id"),
            utf8("span_id"),
            Field::new("flags", DataType::UInt32, true),
        ];
        fields.extend(attribute_fields(""));
        fields.extend(resource_and_scope_fields());
        Arc::new(Schema::new(fields))
    });
    Arc::clone(&SCHEMA)
}

/// Schema of the `metrics` table: one row per data point of any metric type.
pub fn metrics() -> SchemaRef {
    static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
        let mut fields = vec![
            ts("time", false),
            ts("start_time", true),
            dict("service_name"),
            dict("metric_name"),
            dict("metric_type"),
            dict("metric_unit"),
            dict("metric_description"),
            dict("temporality"),
            Field::new("is_monotonic", DataType::Boolean, true),
            map("metric_metadata"),
            Field::new("flags", DataType::UInt32, true),
            Field::new("value", DataType::Float64, true),
            Field::new("value_int", DataType::Int64, true),
            Field::new("count", DataType::UInt64, true),
            Field::new("sum", DataType::Float64, true),
            Field::new("min", DataType::Float64, true),
            Field::new("max", DataType::Float64, true),
            list_of("bucket_bounds", DataType::Float64),
            list_of("bucket_counts", DataType::UInt64),
            Field::new("exp_scale", DataType::Int32, true),
            Field::new("exp_zero_count", DataType::UInt64, true),
            Field::new("exp_zero_threshold", DataType::Float64, true),
            Field::new("exp_positive_offset", DataType::Int32, true),
            list_of("exp_positive_bucket_counts", DataType::UInt64),
            Field::new("exp_negative_offset", DataType::Int32, true),
            list_of("exp_negative_bucket_counts", DataType::UInt64),
            list_of("quantiles", DataType::Struct(quantile_fields())),
            list_of("exemplars", DataType::Struct(exemplar_fields())),
        ];
        fields.extend(attribute_fields(""));
        fields.extend(resource_and_scope_fields());
        Arc::new(Schema::new(fields))
    });
    Arc::clone(&SCHEMA)
}

//! Conversion of decoded OTLP requests into Arrow record batches.
//!
//! One function per signal ([`spans`], [`logs`], [`metrics`]) turns a whole
//! export request into one [`RecordBatch`] with the schema of its table (see
//! `smolder_common::schema`). Items that break the OTLP rules (a trace id that is
//! not 16 bytes, …) are left out and counted in [`Converted::rejected`], so the
//! receiver can answer with `partial_success` while keeping the good items.
//!
//! Resource and scope columns are built once per resource / scope and expanded to
//! one value per row with a single `take` at the end, rather than re-encoding the
//! same attributes for every span.

mod attributes;
mod logs;
mod metrics;
mod spans;

use std::fmt::Write as _;
use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, StringBuilder, StringDictionaryBuilder, TimestampNanosecondBuilder, UInt32Array,
};
use datafusion::arrow::compute::take;
use datafusion::arrow::datatypes::Int32Type;
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::record_batch::RecordBatch;
use opentelemetry_proto::tonic::common::v1::{InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;

pub(crate) use self::attributes::AttributeBuilder;
pub use self::attributes::{any_value_text, any_value_type};
pub use self::logs::logs;
pub use self::metrics::metrics;
pub use self::spans::spans;

/// The result of converting one export request.
#[derive(Debug)]
pub struct Converted {
    /// The accepted items, or `None` when the request held none.
    pub batch: Option<RecordBatch>,
    /// Items accepted (rows of `batch`).
    pub accepted: u64,
    /// Items left out because they were invalid.
    pub rejected: u64,
    /// Why items were rejected: the first few distinct reasons, for the
    /// `partial_success.error_message` of the response.
    pub rejection_reasons: Vec<String>,
}

/// Keeps the first few distinct reasons for rejected items.
#[derive(Debug, Default)]
pub(crate) struct Rejections {
    count: u64,
    reasons: Vec<String>,
}

impl Rejections {
    const MAX_REASONS: usize = 5;

    pub(crate) fn reject(&mut self, reason: impl FnOnce() -> String) {
        self.count += 1;
        if self.reasons.len() < Self::MAX_REASONS {
            let reason = reason();
            if !self.reasons.contains(&reason) {
                self.reasons.push(reason);
            }
        }
    }

    pub(crate) fn into_converted(self, batch: RecordBatch) -> Converted {
        let accepted = batch.num_rows() as u64;
        Converted {
            batch: (accepted > 0).then_some(batch),
            accepted,
            rejected: self.count,
            rejection_reasons: self.reasons,
        }
    }
}

/// Appends `bytes` as lowercase hex to a string builder, or a null when empty.
pub(crate) fn append_hex_or_null(builder: &mut StringBuilder, bytes: &[u8]) {
    if bytes.is_empty() {
        builder.append_null();
    } else {
        append_hex(builder, bytes);
    }
}

/// Appends `bytes` (at most 16) as lowercase hex to a string builder.
pub(crate) fn append_hex(builder: &mut StringBuilder, bytes: &[u8]) {
    let mut buf = [0u8; 32];
    let out = &mut buf[..bytes.len() * 2];
    hex::encode_to_slice(bytes, out).expect("output buffer is twice the input length");
    builder.append_value(std::str::from_utf8(out).expect("hex is ASCII"));
}

/// Checks the length of a trace or span id; `allow_empty` for optional ids.
pub(crate) fn check_id(id: &[u8], want: usize, allow_empty: bool) -> bool {
    id.len() == want || (allow_empty && id.is_empty())
}

/// A human description of an id's length problem, for rejection reasons.
pub(crate) fn bad_id(what: &str, id: &[u8], want: usize) -> String {
    format!("{what} must be {want} bytes, got {}", id.len())
}

/// Converts OTLP nanoseconds since the epoch to an Arrow timestamp value.
///
/// Values beyond `i64::MAX` (year 2262) are clamped; they cannot be represented.
pub(crate) fn nanos(t: u64) -> i64 {
    i64::try_from(t).unwrap_or(i64::MAX)
}

/// Appends a string to a dictionary builder, or a null when it is empty.
pub(crate) fn append_dict_or_null(builder: &mut StringDictionaryBuilder<Int32Type>, s: &str) {
    if s.is_empty() {
        builder.append_null();
    } else {
        builder.append_value(s);
    }
}

/// Appends a timestamp, null when zero ("unset" in OTLP).
pub(crate) fn append_ts_or_null(builder: &mut TimestampNanosecondBuilder, t: u64) {
    if t == 0 {
        builder.append_null();
    } else {
        builder.append_value(nanos(t));
    }
}

/// The resource and scope columns every table ends with.
///
/// Each `Resource*` and `Scope*` message of a request appends one entry here;
/// each row records which entry it belongs to, and [`Self::finish`] expands the
/// entries to one value per row.
pub(crate) struct ResourceScope {
    service_name: StringDictionaryBuilder<Int32Type>,
    resource_attributes: AttributeBuilder,
    resource_schema_url: StringDictionaryBuilder<Int32Type>,
    scope_name: StringDictionaryBuilder<Int32Type>,
    scope_version: StringDictionaryBuilder<Int32Type>,
    scope_attributes: AttributeBuilder,
    scope_schema_url: StringDictionaryBuilder<Int32Type>,
    resource_count: u32,
    scope_count: u32,
    row_resource: Vec<u32>,
    row_scope: Vec<u32>,
}

/// Columns produced by [`ResourceScope::finish`].
pub(crate) struct ResourceScopeColumns {
    /// `service_name`, placed near the front of each table.
    pub(crate) service_name: ArrayRef,
    /// The trailing resource and scope columns, in schema order.
    pub(crate) trailing: Vec<ArrayRef>,
}

impl ResourceScope {
    pub(crate) fn new() -> Self {
        Self {
            service_name: StringDictionaryBuilder::new(),
            resource_attributes: AttributeBuilder::new(),
            resource_schema_url: StringDictionaryBuilder::new(),
            scope_name: StringDictionaryBuilder::new(),
            scope_version: StringDictionaryBuilder::new(),
            scope_attributes: AttributeBuilder::new(),
            scope_schema_url: StringDictionaryBuilder::new(),
            resource_count: 0,
            scope_count: 0,
            row_resource: Vec::new(),
            row_scope: Vec::new(),
        }
    }

    /// Starts a new resource; rows added afterwards belong to it.
    pub(crate) fn push_resource(&mut self, resource: Option<&Resource>, schema_url: &str) {
        let attributes: &[KeyValue] = resource.map_or(&[], |r| &r.attributes);
        let service = attributes
            .iter()
            .find(|kv| kv.key == "service.name")
            .and_then(|kv| kv.value.as_ref());
        match service {
            Some(v) => {
                let mut text = String::new();
                let _ = write!(text, "{}", attributes::Text(v));
                self.service_name.append_value(&text);
            }
            // The SDK specification's default when a service sets no name.
            None => self.service_name.append_value("unknown_service"),
        }
        self.resource_attributes.append(
            attributes,
            resource.map_or(0, |r| r.dropped_attributes_count),
        );
        append_dict_or_null(&mut self.resource_schema_url, schema_url);
        self.resource_count += 1;
    }

    /// Starts a new scope within the current resource.
    pub(crate) fn push_scope(&mut self, scope: Option<&InstrumentationScope>, schema_url: &str) {
        append_dict_or_null(&mut self.scope_name, scope.map_or("", |s| &s.name));
        append_dict_or_null(&mut self.scope_version, scope.map_or("", |s| &s.version));
        self.scope_attributes.append(
            scope.map_or(&[], |s| &s.attributes),
            scope.map_or(0, |s| s.dropped_attributes_count),
        );
        append_dict_or_null(&mut self.scope_schema_url, schema_url);
        self.scope_count += 1;
    }

    /// Records that one more row belongs to the current resource and scope.
    pub(crate) fn add_row(&mut self) {
        debug_assert!(self.resource_count > 0 && self.scope_count > 0);
        self.row_resource.push(self.resource_count - 1);
        self.row_scope.push(self.scope_count - 1);
    }

    pub(crate) fn finish(mut self) -> Result<ResourceScopeColumns, ArrowError> {
        let by_resource = UInt32Array::from(std::mem::take(&mut self.row_resource));
        let by_scope = UInt32Array::from(std::mem::take(&mut self.row_scope));
        let expand = |array: ArrayRef, index: &UInt32Array| take(&array, index, None);
        let service_name = expand(Arc::new(self.service_name.finish()), &by_resource)?;
        let [r_attrs, r_types, r_dropped] = self.resource_attributes.finish();
        let [s_attrs, s_types, s_dropped] = self.scope_attributes.finish();
        let trailing = vec![
            expand(r_attrs, &by_resource)?,
            expand(r_types, &by_resource)?,
            expand(r_dropped, &by_resource)?,
            expand(Arc::new(self.resource_schema_url.finish()), &by_resource)?,
            expand(Arc::new(self.scope_name.finish()), &by_scope)?,
            expand(Arc::new(self.scope_version.finish()), &by_scope)?,
            expand(s_attrs, &by_scope)?,
            expand(s_types, &by_scope)?,
            expand(s_dropped, &by_scope)?,
            expand(Arc::new(self.scope_schema_url.finish()), &by_scope)?,
        ];
        Ok(ResourceScopeColumns {
            service_name,
            trailing,
        })
    }
}

#[cfg(test)]
mod tests;

/// Builds a list column from row offsets and the flattened items, with the item
/// field taken from the column's type in the table schema.
pub(crate) fn list_column(
    column_type: &datafusion::arrow::datatypes::DataType,
    offsets: Vec<i32>,
    items: ArrayRef,
) -> Result<ArrayRef, ArrowError> {
    use datafusion::arrow::array::ListArray;
    use datafusion::arrow::buffer::OffsetBuffer;
    use datafusion::arrow::datatypes::DataType;
    let DataType::List(item_field) = column_type else {
        return Err(ArrowError::SchemaError(format!(
            "expected a list column, found {column_type}"
        )));
    };
    Ok(Arc::new(ListArray::try_new(
        Arc::clone(item_field),
        OffsetBuffer::new(offsets.into()),
        items,
        None,
    )?))
}

/// A timestamp builder of the tables' timestamp type.
pub(crate) fn timestamp_builder() -> TimestampNanosecondBuilder {
    TimestampNanosecondBuilder::new().with_timezone("UTC")
}

/// Reads an integer attribute that may have been sent as an int or as digits.
pub(crate) fn int_value(
    value: Option<&opentelemetry_proto::tonic::common::v1::AnyValue>,
) -> Option<i64> {
    use opentelemetry_proto::tonic::common::v1::any_value::Value;
    match value?.value.as_ref()? {
        Value::IntValue(i) => Some(*i),
        Value::StringValue(s) => s.parse().ok(),
        Value::DoubleValue(d) if d.fract() == 0.0 => Some(*d as i64),
        _ => None,
    }
}

/// Reads a string attribute.
pub(crate) fn str_value(
    value: Option<&opentelemetry_proto::tonic::common::v1::AnyValue>,
) -> Option<&str> {
    use opentelemetry_proto::tonic::common::v1::any_value::Value;
    match value?.value.as_ref()? {
        Value::StringValue(s) => Some(s),
        _ => None,
    }
}

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
pub mod cost;
mod logs;
mod metrics;
mod spans;
mod wire;

use std::fmt::Write as _;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, ListArray, MapArray, StringArray, StringBuilder,
    StringDictionaryBuilder, StructArray, TimestampNanosecondBuilder, UInt32Array,
};
use datafusion::arrow::buffer::{NullBuffer, OffsetBuffer};
use datafusion::arrow::compute::take;
use datafusion::arrow::datatypes::{DataType, Int32Type};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::record_batch::RecordBatch;
use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use opentelemetry_proto::tonic::resource::v1::Resource;

pub(crate) use self::attributes::AttributeBuilder;
use self::attributes::Val;
pub use self::attributes::{any_value_text, any_value_type};
pub use self::logs::logs;
pub use self::metrics::metrics;
pub use self::spans::{spans, spans_protobuf};
pub use self::wire::WireError;

/// Why a request could not be converted.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    /// The protobuf bytes are not a valid request.
    #[error("{0}")]
    Malformed(#[from] WireError),
    /// Arrow refused the columns (a bug, not a client error).
    #[error("building Arrow columns: {0}")]
    Arrow(#[from] ArrowError),
}

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
    /// Columns for a request of about `rows` rows.
    pub(crate) fn with_capacity(rows: usize) -> Self {
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
            row_resource: Vec::with_capacity(rows),
            row_scope: Vec::with_capacity(rows),
        }
    }

    /// Starts a new resource; rows added afterwards belong to it.
    pub(crate) fn push_resource(&mut self, resource: Option<&Resource>, schema_url: &str) {
        let attributes: Vec<_> = resource
            .map_or(&[][..], |r| &r.attributes)
            .iter()
            .map(|kv| (kv.key.as_str(), Val::from_any(kv.value.as_ref())))
            .collect();
        let dropped = resource.map_or(0, |r| r.dropped_attributes_count);
        self.push_resource_entries(&attributes, dropped, schema_url);
    }

    /// Starts a new resource given as its attributes.
    pub(crate) fn push_resource_entries(
        &mut self,
        attributes: &[(&str, Val<'_>)],
        dropped: u32,
        schema_url: &str,
    ) {
        let service = attributes
            .iter()
            .find(|(key, _)| *key == "service.name")
            .map(|(_, value)| value);
        match service {
            Some(Val::Str(name)) => self.service_name.append_value(name),
            // The SDK specification's default when a service sets no name.
            None | Some(Val::Empty) => self.service_name.append_value("unknown_service"),
            Some(other) => {
                let mut text = String::new();
                let _ = write!(text, "{other}");
                self.service_name.append_value(&text);
            }
        }
        self.resource_attributes
            .append_entries(attributes.iter().copied(), dropped);
        append_dict_or_null(&mut self.resource_schema_url, schema_url);
        self.resource_count += 1;
    }

    /// Starts a new scope within the current resource.
    pub(crate) fn push_scope(&mut self, scope: Option<&InstrumentationScope>, schema_url: &str) {
        let attributes: Vec<_> = scope
            .map_or(&[][..], |s| &s.attributes)
            .iter()
            .map(|kv| (kv.key.as_str(), Val::from_any(kv.value.as_ref())))
            .collect();
        self.push_scope_entries(
            scope.map_or("", |s| &s.name),
            scope.map_or("", |s| &s.version),
            &attributes,
            scope.map_or(0, |s| s.dropped_attributes_count),
            schema_url,
        );
    }

    /// Starts a new scope given as its parts.
    pub(crate) fn push_scope_entries(
        &mut self,
        name: &str,
        version: &str,
        attributes: &[(&str, Val<'_>)],
        dropped: u32,
        schema_url: &str,
    ) {
        append_dict_or_null(&mut self.scope_name, name);
        append_dict_or_null(&mut self.scope_version, version);
        self.scope_attributes
            .append_entries(attributes.iter().copied(), dropped);
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
            take_string_map(&r_attrs, by_resource.values())?,
            take_string_map(&r_types, by_resource.values())?,
            expand(r_dropped, &by_resource)?,
            expand(Arc::new(self.resource_schema_url.finish()), &by_resource)?,
            expand(Arc::new(self.scope_name.finish()), &by_scope)?,
            expand(Arc::new(self.scope_version.finish()), &by_scope)?,
            take_string_map(&s_attrs, by_scope.values())?,
            take_string_map(&s_types, by_scope.values())?,
            expand(s_dropped, &by_scope)?,
            expand(Arc::new(self.scope_schema_url.finish()), &by_scope)?,
        ];
        Ok(ResourceScopeColumns {
            service_name,
            trailing,
        })
    }
}

/// `take` for a `Map<Utf8, Utf8>` column: the rows at `index`, in order.
///
/// Arrow's generic `take` copies nested types one element at a time; resource
/// attributes are repeated for every row of a request, so this copies each
/// picked row's keys and values as two contiguous byte ranges instead.
fn take_string_map(array: &ArrayRef, index: &[u32]) -> Result<ArrayRef, ArrowError> {
    let map = array.as_map();
    let keys = map.keys().as_string::<i32>();
    let values = map.values().as_string::<i32>();
    let offsets = map.value_offsets();
    let row = |i: u32| {
        let i = i as usize;
        (offsets[i] as usize, offsets[i + 1] as usize)
    };
    let entries: usize = index.iter().map(|&i| row(i).1 - row(i).0).sum();
    let mut map_offsets = Vec::with_capacity(index.len() + 1);
    map_offsets.push(0i32);
    let mut new_keys = StringColumn::with_capacity(entries);
    let mut new_values = StringColumn::with_capacity(entries);
    let mut value_valid = Vec::with_capacity(if values.null_count() > 0 { entries } else { 0 });
    for &i in index {
        let (start, end) = row(i);
        new_keys.extend_from(keys, start, end);
        new_values.extend_from(values, start, end);
        if values.null_count() > 0 {
            value_valid.extend((start..end).map(|j| values.is_valid(j)));
        }
        let last = *map_offsets.last().expect("starts with 0");
        map_offsets.push(last + i32::try_from(end - start).expect("map fits in i32 offsets"));
    }
    let value_nulls = (values.null_count() > 0).then(|| NullBuffer::from(value_valid));
    let (entry_fields, _, _) = map.entries().clone().into_parts();
    let entries = StructArray::try_new(
        entry_fields,
        vec![
            Arc::new(new_keys.finish(None)?) as ArrayRef,
            Arc::new(new_values.finish(value_nulls)?),
        ],
        None,
    )?;
    let map_nulls = map
        .nulls()
        .map(|nulls| NullBuffer::from_iter(index.iter().map(|&i| nulls.is_valid(i as usize))));
    let DataType::Map(entry_field, ordered) = map.data_type() else {
        unreachable!("as_map checked the type");
    };
    Ok(Arc::new(MapArray::try_new(
        Arc::clone(entry_field),
        OffsetBuffer::new(map_offsets.into()),
        entries,
        map_nulls,
        *ordered,
    )?))
}

/// The offsets and bytes of a string column under construction.
struct StringColumn {
    offsets: Vec<i32>,
    data: Vec<u8>,
}

impl StringColumn {
    fn with_capacity(items: usize) -> Self {
        let mut offsets = Vec::with_capacity(items + 1);
        offsets.push(0);
        Self {
            offsets,
            data: Vec::new(),
        }
    }

    /// Appends the strings `start..end` of `source`.
    fn extend_from(&mut self, source: &StringArray, start: usize, end: usize) {
        let from = source.value_offsets();
        let base =
            i32::try_from(self.data.len()).expect("column fits in i32 offsets") - from[start];
        self.offsets
            .extend(from[start + 1..=end].iter().map(|offset| offset + base));
        self.data
            .extend_from_slice(&source.value_data()[from[start] as usize..from[end] as usize]);
    }

    fn finish(self, nulls: Option<NullBuffer>) -> Result<StringArray, ArrowError> {
        StringArray::try_new(
            OffsetBuffer::new(self.offsets.into()),
            self.data.into(),
            nulls,
        )
    }
}

#[cfg(test)]
mod tests;

/// Builds a list column from row offsets and the flattened items, with the item
/// field taken from the column's type in the table schema.
pub(crate) fn list_column(
    column_type: &DataType,
    offsets: Vec<i32>,
    items: ArrayRef,
) -> Result<ArrayRef, ArrowError> {
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
    timestamp_builder_with_capacity(0)
}

/// A timestamp builder of the tables' timestamp type with room for `n` values.
pub(crate) fn timestamp_builder_with_capacity(n: usize) -> TimestampNanosecondBuilder {
    TimestampNanosecondBuilder::with_capacity(n).with_timezone("UTC")
}

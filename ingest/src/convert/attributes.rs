//! Attribute maps: OTLP `KeyValue` lists as a `Map<Utf8, Utf8>` of canonical
//! value texts plus a map of the non-string values' types.

use std::fmt::{self, Write as _};
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use datafusion::arrow::array::{ArrayRef, MapBuilder, MapFieldNames, StringBuilder, UInt32Builder};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value};
use smolder_common::schema::{MAP_ENTRIES, MAP_KEY, MAP_VALUE};

/// The type name recorded in `*_attribute_types` for a value, or `None` for strings
/// (which are the common case and are therefore not listed).
pub fn any_value_type(value: Option<&AnyValue>) -> Option<&'static str> {
    Val::from_any(value).type_name()
}

/// The canonical text of a value: strings as they are, numbers and booleans as
/// in JSON, bytes as base64, arrays and key-value lists as JSON.
pub fn any_value_text(value: &AnyValue) -> String {
    Text(value).to_string()
}

/// Formats an [`AnyValue`] as its canonical text.
pub(crate) struct Text<'a>(pub(crate) &'a AnyValue);

impl fmt::Display for Text<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        Val::from_any(Some(self.0)).fmt(f)
    }
}

/// An attribute value borrowed from a decoded message or straight from the
/// protobuf bytes of a request.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Val<'a> {
    /// No value, or an `AnyValue` with none of its fields set.
    Empty,
    Str(&'a str),
    Bool(bool),
    Int(i64),
    Double(f64),
    Bytes(&'a [u8]),
    /// A string-table reference (profiles only), which cannot be resolved here.
    StrIndex(i32),
    /// An array or key-value list.
    Nested(Nested<'a>),
}

/// An array or key-value list value, decoded or as the protobuf bytes of its
/// `AnyValue` (already checked to decode).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Nested<'a> {
    Decoded(&'a AnyValue),
    Encoded { any_value: &'a [u8], is_array: bool },
}

impl<'a> Val<'a> {
    pub(crate) fn from_any(value: Option<&'a AnyValue>) -> Self {
        match value.and_then(|v| v.value.as_ref()) {
            None => Self::Empty,
            Some(Value::StringValue(s)) => Self::Str(s),
            Some(Value::BoolValue(b)) => Self::Bool(*b),
            Some(Value::IntValue(i)) => Self::Int(*i),
            Some(Value::DoubleValue(d)) => Self::Double(*d),
            Some(Value::BytesValue(b)) => Self::Bytes(b),
            Some(Value::StringValueStrindex(i)) => Self::StrIndex(*i),
            Some(Value::ArrayValue(_) | Value::KvlistValue(_)) => {
                Self::Nested(Nested::Decoded(value.expect("has a value")))
            }
        }
    }

    /// The type name recorded in `*_attribute_types`, `None` for strings.
    pub(crate) fn type_name(&self) -> Option<&'static str> {
        match self {
            Self::Str(_) => None,
            Self::Bool(_) => Some("bool"),
            Self::Int(_) => Some("int"),
            Self::Double(_) => Some("double"),
            Self::Bytes(_) => Some("bytes"),
            Self::StrIndex(_) => Some("strindex"),
            Self::Nested(Nested::Decoded(v)) => match v.value {
                Some(Value::ArrayValue(_)) => Some("array"),
                _ => Some("kvlist"),
            },
            Self::Nested(Nested::Encoded { is_array, .. }) => {
                Some(if *is_array { "array" } else { "kvlist" })
            }
            Self::Empty => Some("empty"),
        }
    }

    /// The value as a string, if it is one.
    pub(crate) fn as_str(&self) -> Option<&'a str> {
        match self {
            Self::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The value as an integer, also when sent as digits or as a whole double.
    pub(crate) fn as_int(&self) -> Option<i64> {
        match self {
            Self::Int(i) => Some(*i),
            Self::Str(s) => s.parse().ok(),
            Self::Double(d) if d.fract() == 0.0 => Some(*d as i64),
            _ => None,
        }
    }
}

impl fmt::Display for Val<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Str(s) => f.write_str(s),
            Self::Bool(b) => write!(f, "{b}"),
            Self::Int(i) => write!(f, "{i}"),
            Self::Double(d) => write!(f, "{d}"),
            Self::Bytes(b) => f.write_str(&BASE64.encode(b)),
            Self::StrIndex(i) => write!(f, "{i}"),
            Self::Nested(Nested::Decoded(v)) => f.write_str(&to_json(v).to_string()),
            Self::Nested(Nested::Encoded { any_value, .. }) => {
                let v = <AnyValue as prost::Message>::decode(*any_value)
                    .expect("nested values are checked when they are read");
                f.write_str(&to_json(&v).to_string())
            }
            Self::Empty => Ok(()),
        }
    }
}

/// The plain JSON form of a value, used for arrays and key-value lists.
fn to_json(value: &AnyValue) -> serde_json::Value {
    use serde_json::Value as J;
    match &value.value {
        Some(Value::StringValue(s)) => J::String(s.clone()),
        Some(Value::BoolValue(b)) => J::Bool(*b),
        Some(Value::IntValue(i)) => J::from(*i),
        Some(Value::DoubleValue(d)) => serde_json::Number::from_f64(*d)
            .map(J::Number)
            .unwrap_or_else(|| J::String(d.to_string())),
        Some(Value::BytesValue(b)) => J::String(BASE64.encode(b)),
        Some(Value::StringValueStrindex(i)) => J::from(*i),
        Some(Value::ArrayValue(a)) => J::Array(a.values.iter().map(to_json).collect()),
        Some(Value::KvlistValue(kv)) => J::Object(
            kv.values
                .iter()
                .map(|kv| {
                    let v = kv.value.as_ref().map_or(J::Null, to_json);
                    (kv.key.clone(), v)
                })
                .collect(),
        ),
        None => J::Null,
    }
}

/// A map builder sized for `rows` rows holding `entries` entries in all.
fn map_builder(rows: usize, entries: usize) -> MapBuilder<StringBuilder, StringBuilder> {
    let names = MapFieldNames {
        entry: MAP_ENTRIES.to_string(),
        key: MAP_KEY.to_string(),
        value: MAP_VALUE.to_string(),
    };
    // Typical keys and values are a few dozen bytes; a low guess only means
    // the builder grows once or twice.
    let strings = || StringBuilder::with_capacity(entries, entries * 16);
    MapBuilder::with_capacity(Some(names), strings(), strings(), rows)
}

/// Builds the three attribute columns of an item: values, types, dropped count.
pub(crate) struct AttributeBuilder {
    values: MapBuilder<StringBuilder, StringBuilder>,
    types: MapBuilder<StringBuilder, StringBuilder>,
    dropped: UInt32Builder,
}

impl AttributeBuilder {
    pub(crate) fn new() -> Self {
        Self::with_capacity(0, 0)
    }

    /// A builder sized for `rows` rows holding `entries` attributes in all.
    pub(crate) fn with_capacity(rows: usize, entries: usize) -> Self {
        Self {
            values: map_builder(rows, entries),
            types: map_builder(rows, 0),
            dropped: UInt32Builder::with_capacity(rows),
        }
    }

    /// Appends one row holding `attributes`.
    pub(crate) fn append(&mut self, attributes: &[KeyValue], dropped: u32) {
        self.append_entries(
            attributes
                .iter()
                .map(|kv| (kv.key.as_str(), Val::from_any(kv.value.as_ref()))),
            dropped,
        );
    }

    /// Appends one row holding the `(key, value)` pairs of `entries`.
    pub(crate) fn append_entries<'a>(
        &mut self,
        entries: impl IntoIterator<Item = (&'a str, Val<'a>)>,
        dropped: u32,
    ) {
        for (key, value) in entries {
            self.values.keys().append_value(key);
            match value {
                Val::Str(s) => self.values.values().append_value(s),
                Val::Empty => self.values.values().append_null(),
                Val::Int(i) => self
                    .values
                    .values()
                    .append_value(itoa::Buffer::new().format(i)),
                other => {
                    let out = self.values.values();
                    let _ = write!(out, "{other}");
                    out.append_value("");
                }
            }
            if let Some(kind) = value.type_name() {
                self.types.keys().append_value(key);
                self.types.values().append_value(kind);
            }
        }
        self.values
            .append(true)
            .expect("keys and values are appended in pairs");
        self.types
            .append(true)
            .expect("keys and values are appended in pairs");
        self.dropped.append_value(dropped);
    }

    /// The finished columns: `[attributes, attribute_types, dropped_attributes_count]`.
    pub(crate) fn finish(&mut self) -> [ArrayRef; 3] {
        [
            Arc::new(self.values.finish()),
            Arc::new(self.types.finish()),
            Arc::new(self.dropped.finish()),
        ]
    }
}

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
    match value.and_then(|v| v.value.as_ref()) {
        Some(Value::StringValue(_)) => None,
        Some(Value::BoolValue(_)) => Some("bool"),
        Some(Value::IntValue(_)) => Some("int"),
        Some(Value::DoubleValue(_)) => Some("double"),
        Some(Value::BytesValue(_)) => Some("bytes"),
        Some(Value::ArrayValue(_)) => Some("array"),
        Some(Value::KvlistValue(_)) => Some("kvlist"),
        // A string-table reference (profiles only) cannot be resolved here.
        Some(Value::StringValueStrindex(_)) => Some("strindex"),
        None => Some("empty"),
    }
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
        match &self.0.value {
            Some(Value::StringValue(s)) => f.write_str(s),
            Some(Value::BoolValue(b)) => write!(f, "{b}"),
            Some(Value::IntValue(i)) => write!(f, "{i}"),
            Some(Value::DoubleValue(d)) => write!(f, "{d}"),
            Some(Value::BytesValue(b)) => f.write_str(&BASE64.encode(b)),
            Some(Value::StringValueStrindex(i)) => write!(f, "{i}"),
            Some(Value::ArrayValue(_)) | Some(Value::KvlistValue(_)) => {
                f.write_str(&to_json(self.0).to_string())
            }
            None => Ok(()),
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

fn map_builder() -> MapBuilder<StringBuilder, StringBuilder> {
    let names = MapFieldNames {
        entry: MAP_ENTRIES.to_string(),
        key: MAP_KEY.to_string(),
        value: MAP_VALUE.to_string(),
    };
    MapBuilder::new(Some(names), StringBuilder::new(), StringBuilder::new())
}

/// Builds the three attribute columns of an item: values, types, dropped count.
pub(crate) struct AttributeBuilder {
    values: MapBuilder<StringBuilder, StringBuilder>,
    types: MapBuilder<StringBuilder, StringBuilder>,
    dropped: UInt32Builder,
}

impl AttributeBuilder {
    pub(crate) fn new() -> Self {
        Self {
            values: map_builder(),
            types: map_builder(),
            dropped: UInt32Builder::new(),
        }
    }

    /// Appends one row holding `attributes`.
    pub(crate) fn append(&mut self, attributes: &[KeyValue], dropped: u32) {
        for kv in attributes {
            self.values.keys().append_value(&kv.key);
            match kv.value.as_ref() {
                Some(AnyValue {
                    value: Some(Value::StringValue(s)),
                }) => self.values.values().append_value(s),
                Some(v @ AnyValue { value: Some(_) }) => {
                    let out = self.values.values();
                    let _ = write!(out, "{}", Text(v));
                    out.append_value("");
                }
                _ => self.values.values().append_null(),
            }
            if let Some(kind) = any_value_type(kv.value.as_ref()) {
                self.types.keys().append_value(&kv.key);
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

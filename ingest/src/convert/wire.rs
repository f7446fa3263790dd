//! A reader of the protobuf wire format, so that trace requests are converted
//! straight from their bytes into Arrow builders, without first building (and
//! then freeing) a prost message per span, attribute and value.
//!
//! It follows prost's decoding rules where OTLP requests can differ: unknown
//! fields are skipped, a repeated scalar field keeps its last value, strings
//! must be UTF-8, and a known field with the wrong wire type is an error.

use std::fmt;

use prost::Message as _;

use super::attributes::{Nested, Val};

/// Why a message could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireError(String);

impl WireError {
    fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for WireError {}

/// One field's value as it appears on the wire.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Field<'a> {
    Varint(u64),
    Fixed64(u64),
    Bytes(&'a [u8]),
    Fixed32(u32),
    /// A (deprecated) group, skipped: OTLP has none, but a field unknown
    /// to this version may be one, and unknown fields are skipped whatever
    /// their wire type (as prost does).
    Group,
}

impl<'a> Field<'a> {
    #[cold]
    #[inline(never)]
    fn wrong_type(&self, message: &str, field: &str, want: &str) -> WireError {
        let found = match self {
            Self::Varint(_) => "varint",
            Self::Fixed64(_) => "64-bit",
            Self::Bytes(_) => "length-delimited",
            Self::Fixed32(_) => "32-bit",
            Self::Group => "group",
        };
        WireError::new(format!(
            "{message}.{field}: invalid wire type {found}, expected {want}"
        ))
    }

    /// A length-delimited field: bytes, string or message.
    #[inline]
    pub(crate) fn bytes(self, message: &str, field: &str) -> Result<&'a [u8], WireError> {
        match self {
            Self::Bytes(b) => Ok(b),
            other => Err(other.wrong_type(message, field, "length-delimited")),
        }
    }

    #[inline]
    pub(crate) fn string(self, message: &str, field: &str) -> Result<&'a str, WireError> {
        std::str::from_utf8(self.bytes(message, field)?).map_err(|_| not_utf8(message, field))
    }

    #[inline]
    pub(crate) fn varint(self, message: &str, field: &str) -> Result<u64, WireError> {
        match self {
            Self::Varint(v) => Ok(v),
            other => Err(other.wrong_type(message, field, "varint")),
        }
    }

    /// An `int32`, `uint32` or enum field: prost keeps the low 32 bits.
    #[inline]
    pub(crate) fn varint32(self, message: &str, field: &str) -> Result<u32, WireError> {
        Ok(self.varint(message, field)? as u32)
    }

    #[inline]
    pub(crate) fn fixed64(self, message: &str, field: &str) -> Result<u64, WireError> {
        match self {
            Self::Fixed64(v) => Ok(v),
            other => Err(other.wrong_type(message, field, "64-bit")),
        }
    }

    #[inline]
    pub(crate) fn fixed32(self, message: &str, field: &str) -> Result<u32, WireError> {
        match self {
            Self::Fixed32(v) => Ok(v),
            other => Err(other.wrong_type(message, field, "32-bit")),
        }
    }
}

#[cold]
#[inline(never)]
fn not_utf8(message: &str, field: &str) -> WireError {
    WireError::new(format!("{message}.{field}: string is not valid UTF-8"))
}

/// Iterates over the fields of one message.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }

    /// Reads a varint; tags and most lengths take one or two bytes.
    #[inline]
    fn varint(&mut self) -> Result<u64, WireError> {
        match *self.buf {
            [b0, ref rest @ ..] if b0 < 0x80 => {
                self.buf = rest;
                Ok(u64::from(b0))
            }
            [b0, b1, ref rest @ ..] if b1 < 0x80 => {
                self.buf = rest;
                Ok(u64::from(b0 & 0x7f) | u64::from(b1) << 7)
            }
            _ => self.varint_slow(),
        }
    }

    #[inline(never)]
    fn varint_slow(&mut self) -> Result<u64, WireError> {
        let mut value = 0u64;
        for (i, &byte) in self.buf.iter().enumerate().take(10) {
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte < 0x80 {
                if i == 9 && byte > 1 {
                    break;
                }
                self.buf = &self.buf[i + 1..];
                return Ok(value);
            }
        }
        Err(WireError::new(if self.buf.len() < 10 {
            "truncated varint"
        } else {
            "invalid varint"
        }))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        if self.buf.len() < n {
            return Err(underflow());
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    /// The next field number and value, or `None` at the end of the message.
    #[inline]
    pub(crate) fn next_field(&mut self) -> Result<Option<(u32, Field<'a>)>, WireError> {
        if self.buf.is_empty() {
            return Ok(None);
        }
        let key = self.varint()?;
        let number = match u32::try_from(key >> 3) {
            Ok(n @ 1..=0x1fff_ffff) => n,
            _ => return Err(bad_field_number(key)),
        };
        let field = match key & 7 {
            0 => Field::Varint(self.varint()?),
            1 => Field::Fixed64(u64::from_le_bytes(
                self.take(8)?.try_into().expect("took 8 bytes"),
            )),
            2 => {
                let len = usize::try_from(self.varint()?)
                    .map_err(|_| WireError::new("length does not fit in memory"))?;
                Field::Bytes(self.take(len)?)
            }
            5 => Field::Fixed32(u32::from_le_bytes(
                self.take(4)?.try_into().expect("took 4 bytes"),
            )),
            3 => {
                self.skip_group(number, 1)?;
                Field::Group
            }
            other => return Err(bad_wire_type(other)),
        };
        Ok(Some((number, field)))
    }

    /// Skips the fields of the group `number` up to its end tag, groups
    /// nested in it too (at most [`MAX_GROUP_DEPTH`] deep, as prost).
    #[cold]
    #[inline(never)]
    fn skip_group(&mut self, number: u32, depth: u32) -> Result<(), WireError> {
        if depth > MAX_GROUP_DEPTH {
            return Err(WireError::new("groups nested too deeply"));
        }
        loop {
            if self.buf.is_empty() {
                return Err(WireError::new("a group without its end tag"));
            }
            let key = self.varint()?;
            let inner = match u32::try_from(key >> 3) {
                Ok(n @ 1..=0x1fff_ffff) => n,
                _ => return Err(bad_field_number(key)),
            };
            match key & 7 {
                0 => {
                    self.varint()?;
                }
                1 => {
                    self.take(8)?;
                }
                2 => {
                    let len = usize::try_from(self.varint()?)
                        .map_err(|_| WireError::new("length does not fit in memory"))?;
                    self.take(len)?;
                }
                5 => {
                    self.take(4)?;
                }
                3 => self.skip_group(inner, depth + 1)?,
                4 if inner == number => return Ok(()),
                4 => return Err(WireError::new("a group's end tag does not match its start")),
                other => return Err(bad_wire_type(other)),
            }
        }
    }
}

/// Groups nested deeper are refused (prost's recursion limit).
const MAX_GROUP_DEPTH: u32 = 100;

#[cold]
#[inline(never)]
fn underflow() -> WireError {
    WireError::new("buffer underflow: a field runs past its message")
}

#[cold]
#[inline(never)]
fn bad_field_number(key: u64) -> WireError {
    WireError::new(format!("invalid field number {}", key >> 3))
}

#[cold]
#[inline(never)]
fn bad_wire_type(wire_type: u64) -> WireError {
    match wire_type {
        4 => WireError::new("an end-group tag without its group"),
        other => WireError::new(format!("invalid wire type {other}")),
    }
}

/// Calls `f` with each field of `message`.
#[inline]
pub(crate) fn for_each_field<'a>(
    message: &'a [u8],
    mut f: impl FnMut(u32, Field<'a>) -> Result<(), WireError>,
) -> Result<(), WireError> {
    let mut reader = Reader::new(message);
    while let Some((number, field)) = reader.next_field()? {
        f(number, field)?;
    }
    Ok(())
}

/// Reads a `KeyValue` message into its key and value.
#[inline]
pub(crate) fn key_value(message: &[u8]) -> Result<(&str, Val<'_>), WireError> {
    let (mut key, mut value) = ("", Val::Empty);
    for_each_field(message, |number, field| {
        match number {
            1 => key = field.string("KeyValue", "key")?,
            2 => value = any_value(field.bytes("KeyValue", "value")?)?,
            _ => {}
        }
        Ok(())
    })?;
    Ok((key, value))
}

/// Reads an `AnyValue` message. Arrays and key-value lists are checked to
/// decode and kept as bytes; they are rare and formatted as JSON later.
pub(crate) fn any_value(message: &[u8]) -> Result<Val<'_>, WireError> {
    const M: &str = "AnyValue";
    let mut value = Val::Empty;
    for_each_field(message, |number, field| {
        value = match number {
            1 => Val::Str(field.string(M, "string_value")?),
            2 => Val::Bool(field.varint(M, "bool_value")? != 0),
            3 => Val::Int(field.varint(M, "int_value")? as i64),
            4 => Val::Double(f64::from_bits(field.fixed64(M, "double_value")?)),
            5 | 6 => {
                field.bytes(M, "array_value or kvlist_value")?;
                Val::Nested(Nested::Encoded {
                    any_value: message,
                    is_array: number == 5,
                })
            }
            7 => Val::Bytes(field.bytes(M, "bytes_value")?),
            8 => Val::StrIndex(field.varint32(M, "string_value_strindex")? as i32),
            _ => value,
        };
        Ok(())
    })?;
    if let Val::Nested(_) = value {
        // Check the nested value now, so a bad one fails the request as it
        // would with prost, rather than when it is formatted.
        opentelemetry_proto::tonic::common::v1::AnyValue::decode(message)
            .map_err(|e| WireError::new(format!("AnyValue: {e}")))?;
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::common::v1::{
        AnyValue, ArrayValue, KeyValue, any_value::Value,
    };
    use prost::Message;

    use super::*;

    fn kv(key: &str, value: Value) -> Vec<u8> {
        KeyValue {
            key: key.to_string(),
            value: Some(AnyValue { value: Some(value) }),
            ..Default::default()
        }
        .encode_to_vec()
    }

    #[test]
    fn reads_each_value_type() {
        let bytes = kv("a", Value::StringValue("x".into()));
        let (k, v) = key_value(&bytes).unwrap();
        assert_eq!((k, v.as_str()), ("a", Some("x")));
        let bytes = kv("n", Value::IntValue(-42));
        assert_eq!(key_value(&bytes).unwrap().1.as_int(), Some(-42));
        let bytes = kv("d", Value::DoubleValue(0.25));
        assert_eq!(key_value(&bytes).unwrap().1.to_string(), "0.25");
        let bytes = kv("b", Value::BoolValue(true));
        assert_eq!(key_value(&bytes).unwrap().1.to_string(), "true");
        let bytes = kv("y", Value::BytesValue(vec![1, 2, 3]));
        assert_eq!(key_value(&bytes).unwrap().1.to_string(), "AQID");
        let array = Value::ArrayValue(ArrayValue {
            values: vec![
                AnyValue {
                    value: Some(Value::IntValue(1)),
                },
                AnyValue {
                    value: Some(Value::StringValue("two".into())),
                },
            ],
        });
        let bytes = kv("arr", array);
        let (_, v) = key_value(&bytes).unwrap();
        assert_eq!(v.type_name(), Some("array"));
        assert_eq!(v.to_string(), r#"[1,"two"]"#);
        let empty = KeyValue {
            key: "e".into(),
            ..Default::default()
        }
        .encode_to_vec();
        assert_eq!(key_value(&empty).unwrap().1.type_name(), Some("empty"));
    }

    #[test]
    fn refuses_malformed_input() {
        let mut bytes = kv("a", Value::StringValue("x".into()));
        bytes.pop();
        assert!(
            key_value(&bytes)
                .unwrap_err()
                .to_string()
                .contains("underflow")
        );
        // Field 1 (key) sent as a varint.
        assert!(
            key_value(&[0x08, 0x01])
                .unwrap_err()
                .to_string()
                .contains("KeyValue.key: invalid wire type varint")
        );
        // A key that is not UTF-8.
        assert!(
            key_value(&[0x0a, 0x01, 0xff])
                .unwrap_err()
                .to_string()
                .contains("UTF-8")
        );
        assert!(
            key_value(&[0x0b])
                .unwrap_err()
                .to_string()
                .contains("a group without its end tag")
        );
        assert!(
            key_value(&[0x80])
                .unwrap_err()
                .to_string()
                .contains("varint")
        );
        assert!(
            key_value(&[0x00])
                .unwrap_err()
                .to_string()
                .contains("field number 0")
        );
    }

    #[test]
    fn skips_unknown_fields_and_keeps_the_last_value() {
        let mut bytes = kv("a", Value::StringValue("first".into()));
        // An unknown field 9 (varint), then a second key.
        bytes.extend_from_slice(&[0x48, 0x05, 0x0a, 0x01, b'b']);
        let (k, v) = key_value(&bytes).unwrap();
        assert_eq!((k, v.as_str()), ("b", Some("first")));
    }
}

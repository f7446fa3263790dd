//! Request-body decompression with the size cap enforced while inflating, so a
//! small "zip bomb" cannot make the server allocate more than the cap.

use std::io::Read;

use flate2::read::{DeflateDecoder, MultiGzDecoder, ZlibDecoder};

/// A `Content-Encoding` / `grpc-encoding` this server accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Encoding {
    /// No compression.
    Identity,
    /// gzip (RFC 1952), the encoding every OTLP exporter supports.
    Gzip,
    /// HTTP `deflate`: zlib-wrapped (RFC 1950); raw deflate is accepted too.
    Deflate,
    /// Zstandard.
    Zstd,
}

impl Encoding {
    /// Parses a `Content-Encoding` header value; `None` when unsupported.
    pub(crate) fn from_header(value: Option<&str>) -> Option<Self> {
        match value.map(|v| v.trim().to_ascii_lowercase()).as_deref() {
            None | Some("") | Some("identity") => Some(Self::Identity),
            Some("gzip") | Some("x-gzip") => Some(Self::Gzip),
            Some("deflate") => Some(Self::Deflate),
            Some("zstd") => Some(Self::Zstd),
            _ => None,
        }
    }
}

/// Why a body could not be decompressed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DecompressError {
    /// The decompressed body would exceed the cap.
    #[error("the decompressed request body exceeds the limit of {limit} bytes")]
    TooLarge {
        /// The cap, in bytes.
        limit: usize,
    },
    /// The body is not valid data in the declared encoding (e.g. truncated gzip).
    #[error("the request body is not valid {encoding:?} data: {source}")]
    Corrupt {
        /// The declared encoding.
        encoding: Encoding,
        /// What the decoder reported.
        source: std::io::Error,
    },
}

/// Decompresses `body` declared as `encoding`, failing as soon as the output
/// would exceed `limit` bytes.
pub(crate) fn decompress(
    encoding: Encoding,
    body: bytes::Bytes,
    limit: usize,
) -> Result<bytes::Bytes, DecompressError> {
    let corrupt = |source| DecompressError::Corrupt { encoding, source };
    let out = match encoding {
        Encoding::Identity => {
            if body.len() > limit {
                return Err(DecompressError::TooLarge { limit });
            }
            return Ok(body);
        }
        Encoding::Gzip => read_capped(MultiGzDecoder::new(&body[..]), limit, body.len()),
        Encoding::Deflate => {
            match read_capped(ZlibDecoder::new(&body[..]), limit, body.len()) {
                // Some clients send raw deflate despite RFC 9110; accept it too.
                Err(ReadError::Io(_)) => {
                    read_capped(DeflateDecoder::new(&body[..]), limit, body.len())
                }
                other => other,
            }
        }
        Encoding::Zstd => match zstd::stream::read::Decoder::new(&body[..]) {
            Ok(decoder) => read_capped(decoder, limit, body.len()),
            Err(e) => Err(ReadError::Io(e)),
        },
    };
    match out {
        Ok(out) => Ok(out.into()),
        Err(ReadError::TooLarge) => Err(DecompressError::TooLarge { limit }),
        Err(ReadError::Io(e)) => Err(corrupt(e)),
    }
}

enum ReadError {
    TooLarge,
    Io(std::io::Error),
}

fn read_capped(reader: impl Read, limit: usize, input_len: usize) -> Result<Vec<u8>, ReadError> {
    let mut out = Vec::with_capacity((input_len * 4).min(limit));
    // Read one byte past the limit to tell "exactly at the limit" from "over it".
    let read = reader
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(ReadError::Io)?;
    if read > limit {
        return Err(ReadError::TooLarge);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn each_encoding_round_trips() {
        let data = b"hello hello hello hello".repeat(100);
        let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        zlib.write_all(&data).unwrap();
        let mut raw = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
        raw.write_all(&data).unwrap();
        let cases = [
            (Encoding::Identity, data.clone()),
            (Encoding::Gzip, gzip(&data)),
            (Encoding::Deflate, zlib.finish().unwrap()),
            (Encoding::Deflate, raw.finish().unwrap()),
            (Encoding::Zstd, zstd::encode_all(&data[..], 1).unwrap()),
        ];
        for (encoding, body) in cases {
            let out = decompress(encoding, body.into(), 1 << 20).unwrap();
            assert_eq!(&out[..], &data[..], "{encoding:?}");
        }
    }

    #[test]
    fn bomb_is_stopped_at_the_cap() {
        let bomb = gzip(&vec![0u8; 10 << 20]);
        assert!(bomb.len() < 100 << 10);
        let err = decompress(Encoding::Gzip, bomb.into(), 1 << 20).unwrap_err();
        assert!(matches!(err, DecompressError::TooLarge { limit } if limit == 1 << 20));
    }

    #[test]
    fn body_exactly_at_the_cap_is_accepted() {
        let body = gzip(&[7u8; 1000]);
        assert_eq!(
            decompress(Encoding::Gzip, body.into(), 1000).unwrap().len(),
            1000
        );
    }

    #[test]
    fn truncated_gzip_is_corrupt() {
        let body = gzip(&b"some telemetry".repeat(50));
        let truncated = bytes::Bytes::copy_from_slice(&body[..body.len() / 2]);
        let err = decompress(Encoding::Gzip, truncated, 1 << 20).unwrap_err();
        assert!(matches!(err, DecompressError::Corrupt { .. }), "{err}");
    }

    #[test]
    fn header_values() {
        assert_eq!(Encoding::from_header(None), Some(Encoding::Identity));
        assert_eq!(Encoding::from_header(Some("GZIP")), Some(Encoding::Gzip));
        assert_eq!(Encoding::from_header(Some("br")), None);
    }
}

//! OTLP ingest: the first stage of smolder's data flow.
//!
//! ```text
//! OTLP/gRPC (grpc) ─┐
//!                   ├─ decode (prost | lenient json) ─ Ingestor ─ convert → Arrow ─ Store
//! OTLP/HTTP (http) ─┘        (decompress with cap)      (pipeline)  (convert)   (smolder-storage)
//! ```
//!
//! The entry point is [`Ingestor`]: both receivers hand it decoded export
//! requests; it converts them to record batches with the schemas of
//! `smolder_common::schema`, keeps the items inside the accepted time window,
//! and appends them to the [`smolder_storage::Store`] (write-ahead log, then
//! buffer), which the query engine reads through `smolder_common::TableSource`.
//! Ingest never depends on query.

mod config;
pub mod convert;
mod decompress;
pub mod dedup;
mod grpc;
pub mod http;
pub mod json;
mod pipeline;
mod telemetry;

pub use config::IngestConfig;
pub use grpc::OtlpGrpc;
pub use pipeline::{ExportRequest, ExportResult, IngestError, IngestLimits, Ingestor};
pub use telemetry::{IngestMetrics, IngestTotals, Transport};

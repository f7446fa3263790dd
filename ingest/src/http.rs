//! OTLP/HTTP receiver: `POST /v1/traces`, `/v1/logs`, `/v1/metrics`.
//!
//! Protobuf (`application/x-protobuf`) and JSON (`application/json`) share the
//! port; the answer uses the request's media type. Bodies may be gzip, deflate or
//! zstd compressed; the size cap applies to the decompressed body.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, State};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use http_body_util::BodyExt;
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceResponse,
};
use prost::Message;
use smolder_common::memory::{Consumer, Reservation};
use smolder_common::{Table, Tenant};

use crate::convert::cost;
use crate::decompress::{DecompressError, Encoding, decompress};
use crate::json;
use crate::pipeline::{ExportRequest, ExportResult, IngestError, Ingestor};
use crate::telemetry::Transport;

/// The OTLP/HTTP routes, ready to be served.
pub fn router(ingestor: Arc<Ingestor>) -> Router {
    Router::new()
        .route("/v1/traces", post(traces))
        .route("/v1/logs", post(logs))
        .route("/v1/metrics", post(metrics))
        // The body is read with the configured cap by the handler itself.
        .layer(DefaultBodyLimit::disable())
        .with_state(ingestor)
}

async fn traces(
    State(i): State<Arc<Ingestor>>,
    tenant: Tenant,
    headers: HeaderMap,
    body: Body,
) -> Response {
    export(i, tenant, Table::Spans, headers, body).await
}

async fn logs(
    State(i): State<Arc<Ingestor>>,
    tenant: Tenant,
    headers: HeaderMap,
    body: Body,
) -> Response {
    export(i, tenant, Table::Logs, headers, body).await
}

async fn metrics(
    State(i): State<Arc<Ingestor>>,
    tenant: Tenant,
    headers: HeaderMap,
    body: Body,
) -> Response {
    export(i, tenant, Table::Metrics, headers, body).await
}

/// The body formats OTLP/HTTP defines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Protobuf,
    Json,
}

impl Format {
    fn from_content_type(headers: &HeaderMap) -> Result<Self, IngestError> {
        let raw = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        // Parameters such as `charset=utf-8` are allowed.
        let media = raw
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match media.as_str() {
            "application/x-protobuf" | "application/protobuf" => Ok(Self::Protobuf),
            "application/json" => Ok(Self::Json),
            _ => Err(IngestError::UnsupportedMediaType(format!(
                "unsupported Content-Type \"{raw}\"; OTLP/HTTP accepts application/x-protobuf \
                 and application/json"
            ))),
        }
    }

    fn content_type(self) -> HeaderValue {
        HeaderValue::from_static(match self {
            Self::Protobuf => "application/x-protobuf",
            Self::Json => "application/json",
        })
    }

    fn transport(self) -> Transport {
        match self {
            Self::Protobuf => Transport::HttpProtobuf,
            Self::Json => Transport::HttpJson,
        }
    }
}

async fn export(
    ingestor: Arc<Ingestor>,
    tenant: Tenant,
    table: Table,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    let format = match Format::from_content_type(&headers) {
        Ok(f) => f,
        // Unknown media type: answer in JSON, the more readable of the two.
        Err(e) => return error_response(Format::Json, &e),
    };
    let result = receive(&ingestor, &tenant, table, format, &headers, body).await;
    ingestor.record(table, format.transport(), started, &result);
    match result {
        Ok(r) => success_response(format, table, &r),
        Err(e) => {
            if matches!(e, IngestError::Internal(_)) {
                tracing::error!(%table, error = %e, "Export failed.");
            } else {
                tracing::debug!(%table, error = %e, "Export refused.");
            }
            error_response(format, &e)
        }
    }
}

async fn receive(
    ingestor: &Ingestor,
    tenant: &Tenant,
    table: Table,
    format: Format,
    headers: &HeaderMap,
    body: Body,
) -> Result<ExportResult, IngestError> {
    let encoding_header = headers
        .get(header::CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap_or("(not text)"));
    let encoding = Encoding::from_header(encoding_header).ok_or_else(|| {
        IngestError::UnsupportedMediaType(format!(
            "unsupported Content-Encoding \"{}\"; use gzip, deflate, zstd or none",
            encoding_header.unwrap_or_default()
        ))
    })?;
    ingestor.check_capacity()?;
    let limit = ingestor.limits().max_request_bytes;
    // The body's memory is taken from the budget as it arrives (all of it
    // up front when its length is announced), so that slow or stalled
    // uploads cannot hold more than the budget between them.
    let mut reading = Reservation::empty(ingestor.budget(), Consumer::Ingest);
    let raw = read_body(ingestor, headers, body, limit, &mut reading).await?;
    ingestor
        .metrics()
        .record_bytes(table.signal(), format.transport(), raw.len());
    let body = decompress(encoding, raw, limit).map_err(|e| match e {
        DecompressError::TooLarge { limit } => IngestError::TooLarge { limit },
        corrupt => IngestError::Malformed(corrupt.to_string()),
    })?;
    match format {
        Format::Protobuf => {
            let _admitted = ingestor.admit_protobuf(table, &body)?;
            drop(reading);
            ingestor
                .ingest_protobuf(tenant, table, body, format.transport())
                .await
        }
        Format::Json => {
            let mut admitted = ingestor.admit(cost::json_body(&body))?;
            drop(reading);
            let request = decode_json(table, &body)?;
            admitted.grow(cost::replication(&request))?;
            ingestor.ingest(tenant, &request, format.transport()).await
        }
    }
}

/// Reads a body of at most `limit` bytes, each chunk taken from the memory
/// budget into `reading` before it is kept.
async fn read_body(
    ingestor: &Ingestor,
    headers: &HeaderMap,
    mut body: Body,
    limit: usize,
    reading: &mut Reservation,
) -> Result<Bytes, IngestError> {
    let overloaded = |e: smolder_common::memory::Exhausted| IngestError::Unavailable {
        message: format!("the server is overloaded: {e}; retry later"),
        retry_after: ingestor.limits().retry_after,
    };
    let announced = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if let Some(length) = announced {
        if length > limit {
            return Err(IngestError::TooLarge { limit });
        }
        reading.grow(length).map_err(overloaded)?;
    }
    let mut data = BytesMut::with_capacity(announced.unwrap_or(0));
    let timeout = ingestor.limits().body_timeout;
    let deadline = tokio::time::Instant::now() + timeout;
    while let Some(frame) = tokio::time::timeout_at(deadline, body.frame())
        .await
        .map_err(|_| IngestError::SlowBody { timeout })?
    {
        let frame =
            frame.map_err(|e| IngestError::Malformed(format!("reading the request body: {e}")))?;
        let Ok(chunk) = frame.into_data() else {
            continue;
        };
        let total = data.len().saturating_add(chunk.len());
        if total > limit {
            return Err(IngestError::TooLarge { limit });
        }
        if total > reading.bytes() {
            reading.grow(total - reading.bytes()).map_err(overloaded)?;
        }
        data.extend_from_slice(&chunk);
    }
    Ok(data.freeze())
}

fn decode_json(table: Table, body: &[u8]) -> Result<ExportRequest, IngestError> {
    let malformed = |e: json::JsonError| {
        IngestError::Malformed(format!("invalid OTLP JSON {} request: {e}", table.signal()))
    };
    Ok(match table {
        Table::Spans => ExportRequest::Traces(json::decode_traces(body).map_err(malformed)?),
        Table::Logs => ExportRequest::Logs(json::decode_logs(body).map_err(malformed)?),
        Table::Metrics => ExportRequest::Metrics(json::decode_metrics(body).map_err(malformed)?),
    })
}

fn success_response(format: Format, table: Table, r: &ExportResult) -> Response {
    let body = match format {
        Format::Protobuf => encode_response_protobuf(table, r),
        Format::Json => encode_response_json(table, r),
    };
    ([(header::CONTENT_TYPE, format.content_type())], body).into_response()
}

fn encode_response_protobuf(table: Table, r: &ExportResult) -> Vec<u8> {
    let partial = r.rejected > 0;
    let rejected = i64::try_from(r.rejected).unwrap_or(i64::MAX);
    let message = r.message.clone();
    match table {
        Table::Spans => ExportTraceServiceResponse {
            partial_success: partial.then_some(ExportTracePartialSuccess {
                rejected_spans: rejected,
                error_message: message,
            }),
        }
        .encode_to_vec(),
        Table::Logs => ExportLogsServiceResponse {
            partial_success: partial.then_some(ExportLogsPartialSuccess {
                rejected_log_records: rejected,
                error_message: message,
            }),
        }
        .encode_to_vec(),
        Table::Metrics => ExportMetricsServiceResponse {
            partial_success: partial.then_some(ExportMetricsPartialSuccess {
                rejected_data_points: rejected,
                error_message: message,
            }),
        }
        .encode_to_vec(),
    }
}

fn encode_response_json(table: Table, r: &ExportResult) -> Vec<u8> {
    if r.rejected == 0 {
        return b"{}".to_vec();
    }
    let count_key = match table {
        Table::Spans => "rejectedSpans",
        Table::Logs => "rejectedLogRecords",
        Table::Metrics => "rejectedDataPoints",
    };
    // int64 is a JSON string in the protobuf JSON mapping.
    serde_json::json!({
        "partialSuccess": { count_key: r.rejected.to_string(), "errorMessage": r.message }
    })
    .to_string()
    .into_bytes()
}

/// `google.rpc.Status`, the body of OTLP/HTTP error responses.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RpcStatus {
    /// A `google.rpc.Code` value.
    #[prost(int32, tag = "1")]
    pub code: i32,
    /// A developer-facing message naming the problem.
    #[prost(string, tag = "2")]
    pub message: String,
}

fn error_response(format: Format, e: &IngestError) -> Response {
    let (status, code) = match e {
        IngestError::Malformed(_) => (StatusCode::BAD_REQUEST, tonic::Code::InvalidArgument),
        IngestError::TooLarge { .. }
        | IngestError::TooCostly { .. }
        | IngestError::TooManyItems(_) => (
            StatusCode::PAYLOAD_TOO_LARGE,
            tonic::Code::ResourceExhausted,
        ),
        IngestError::RateLimited { .. } => (
            StatusCode::TOO_MANY_REQUESTS,
            tonic::Code::ResourceExhausted,
        ),
        IngestError::UnsupportedMediaType(_) => (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            tonic::Code::InvalidArgument,
        ),
        IngestError::Unavailable { .. } => {
            (StatusCode::SERVICE_UNAVAILABLE, tonic::Code::Unavailable)
        }
        IngestError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, tonic::Code::Internal),
        IngestError::SlowBody { .. } => {
            (StatusCode::REQUEST_TIMEOUT, tonic::Code::DeadlineExceeded)
        }
    };
    let message = e.to_string();
    let body = match format {
        Format::Protobuf => RpcStatus {
            code: code as i32,
            message,
        }
        .encode_to_vec(),
        Format::Json => serde_json::json!({ "code": code as i32, "message": message })
            .to_string()
            .into_bytes(),
    };
    let mut response = (
        status,
        [(header::CONTENT_TYPE, format.content_type())],
        body,
    )
        .into_response();
    if let IngestError::Unavailable { retry_after, .. }
    | IngestError::RateLimited { retry_after, .. } = e
    {
        let seconds = retry_after.as_secs().max(1);
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

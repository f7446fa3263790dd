//! OTLP/gRPC receiver: the `Export` methods of TraceService, MetricsService and
//! LogsService, served by tonic.
//!
//! gzip, deflate and zstd request compression are accepted. Tonic enforces the
//! size cap on the decompressed message. A few of tonic's answers to bad requests
//! do not match what OTLP clients need, so a response layer
//! ([`conform_status`]) rewrites them:
//!
//! * a message whose framed length exceeds the cap gets OUT_OF_RANGE, which OTLP
//!   clients retry forever → RESOURCE_EXHAUSTED, as the specification asks;
//! * malformed protobuf and corrupt compressed data get INTERNAL, which clients
//!   also retry → INVALID_ARGUMENT, which they drop.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use http::HeaderValue;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;
use tonic::codec::CompressionEncoding;
use tonic::{Code, Request, Response, Status};
use tonic_types::{ErrorDetails, StatusExt};
use tower::util::MapResponseLayer;

use crate::pipeline::{ExportRequest, ExportResult, IngestError, Ingestor};
use crate::telemetry::Transport;

impl From<IngestError> for Status {
    fn from(e: IngestError) -> Self {
        let message = e.to_string();
        match e {
            IngestError::Malformed(_) | IngestError::UnsupportedMediaType(_) => {
                Status::invalid_argument(message)
            }
            IngestError::TooLarge { .. } => Status::resource_exhausted(message),
            IngestError::Unavailable { retry_after, .. } => Status::with_error_details(
                Code::Unavailable,
                message,
                ErrorDetails::with_retry_info(Some(retry_after)),
            ),
            IngestError::Internal(_) => Status::internal(message),
        }
    }
}

/// The three OTLP gRPC services over one [`Ingestor`].
#[derive(Debug, Clone)]
pub struct OtlpGrpc {
    ingestor: Arc<Ingestor>,
}

impl OtlpGrpc {
    /// Services appending through `ingestor`.
    pub fn new(ingestor: Arc<Ingestor>) -> Self {
        Self { ingestor }
    }

    fn handle(&self, request: ExportRequest, wire_bytes: usize) -> Result<ExportResult, Status> {
        let started = Instant::now();
        let table = request.table();
        self.ingestor
            .metrics()
            .record_bytes(table.signal(), Transport::Grpc, wire_bytes);
        let result = self
            .ingestor
            .check_capacity()
            .and_then(|()| self.ingestor.ingest(&request, Transport::Grpc));
        self.ingestor
            .record(table, Transport::Grpc, started, &result);
        result.map_err(|e| {
            tracing::debug!(%table, error = %e, "gRPC export refused.");
            Status::from(e)
        })
    }

    /// Serves the services on `listener` until `shutdown` completes.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), tonic::transport::Error> {
        let limit = self.ingestor.limits().max_request_bytes;
        let rewrite: fn(http::Response<tonic::body::Body>) -> http::Response<tonic::body::Body> =
            conform_status;
        let incoming =
            tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
        tonic::transport::Server::builder()
            .layer(MapResponseLayer::new(rewrite))
            .add_service(configure!(TraceServiceServer::new(self.clone()), limit))
            .add_service(configure!(MetricsServiceServer::new(self.clone()), limit))
            .add_service(configure!(LogsServiceServer::new(self), limit))
            .serve_with_incoming_shutdown(incoming, shutdown)
            .await
    }
}

macro_rules! configure {
    ($server:expr, $limit:expr) => {
        $server
            .accept_compressed(CompressionEncoding::Gzip)
            .accept_compressed(CompressionEncoding::Zstd)
            .accept_compressed(CompressionEncoding::Deflate)
            .max_decoding_message_size($limit)
    };
}
use configure;

/// Rewrites the statuses tonic gives bad requests into the ones OTLP asks for.
///
/// The Export handlers never answer OUT_OF_RANGE, so any such status comes from
/// tonic's message-length check. INTERNAL is rewritten only when its message is
/// one of tonic's decoding errors (the message is percent-encoded on the wire);
/// the handlers' own internal errors keep their code.
fn conform_status(
    mut response: http::Response<tonic::body::Body>,
) -> http::Response<tonic::body::Body> {
    const DECODE_ERRORS: [&[u8]; 2] =
        [b"failed%20to%20decode%20Protobuf", b"Error%20decompressing"];
    let headers = response.headers_mut();
    let rewrite = match headers.get("grpc-status").map(HeaderValue::as_bytes) {
        Some(b"11") => Some("8"),
        Some(b"13") => {
            let message = headers
                .get("grpc-message")
                .map_or(&b""[..], HeaderValue::as_bytes);
            DECODE_ERRORS
                .iter()
                .any(|p| message.starts_with(p))
                .then_some("3")
        }
        _ => None,
    };
    if let Some(code) = rewrite {
        headers.insert("grpc-status", HeaderValue::from_static(code));
    }
    response
}

fn rejected(r: &ExportResult) -> i64 {
    i64::try_from(r.rejected).unwrap_or(i64::MAX)
}

#[tonic::async_trait]
impl TraceService for OtlpGrpc {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let request = request.into_inner();
        let bytes = request.encoded_len();
        let r = self.handle(ExportRequest::Traces(request), bytes)?;
        Ok(Response::new(ExportTraceServiceResponse {
            partial_success: (r.rejected > 0).then(|| ExportTracePartialSuccess {
                rejected_spans: rejected(&r),
                error_message: r.message,
            }),
        }))
    }
}

#[tonic::async_trait]
impl LogsService for OtlpGrpc {
    async fn export(
        &self,
        request: Request<ExportLogsServiceRequest>,
    ) -> Result<Response<ExportLogsServiceResponse>, Status> {
        let request = request.into_inner();
        let bytes = request.encoded_len();
        let r = self.handle(ExportRequest::Logs(request), bytes)?;
        Ok(Response::new(ExportLogsServiceResponse {
            partial_success: (r.rejected > 0).then(|| ExportLogsPartialSuccess {
                rejected_log_records: rejected(&r),
                error_message: r.message,
            }),
        }))
    }
}

#[tonic::async_trait]
impl MetricsService for OtlpGrpc {
    async fn export(
        &self,
        request: Request<ExportMetricsServiceRequest>,
    ) -> Result<Response<ExportMetricsServiceResponse>, Status> {
        let request = request.into_inner();
        let bytes = request.encoded_len();
        let r = self.handle(ExportRequest::Metrics(request), bytes)?;
        Ok(Response::new(ExportMetricsServiceResponse {
            partial_success: (r.rejected > 0).then(|| ExportMetricsPartialSuccess {
                rejected_data_points: rejected(&r),
                error_message: r.message,
            }),
        }))
    }
}

//! OTLP/gRPC receiver: the `Export` methods of TraceService, MetricsService and
//! LogsService.
//!
//! Tonic does the HTTP/2 and gRPC framing, decompression (gzip, deflate, zstd)
//! and the size cap on the decompressed message; its codec here hands over the
//! message bytes undecoded ([`RawRequestCodec`]). Decoding happens in the handler,
//! after the capacity check, so an overloaded server spends no CPU decoding
//! requests it must refuse, and from one contiguous buffer, which prost decodes
//! markedly faster than tonic's chunked buffer.
//!
//! A few of tonic's answers to bad requests do not match what OTLP clients need,
//! so a response layer ([`conform_status`]) rewrites them:
//!
//! * a message whose framed length exceeds the cap gets OUT_OF_RANGE, which OTLP
//!   clients retry forever → RESOURCE_EXHAUSTED, as the specification asks;
//! * corrupt compressed data gets INTERNAL, which clients also retry →
//!   INVALID_ARGUMENT, which they drop.

use std::convert::Infallible;
use std::future::Future as _;
use std::marker::PhantomData;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::{Buf, Bytes};
use http::HeaderValue;
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceResponse,
};
use smolder_common::{Table, Tenant};
use tonic::codec::{Codec, CompressionEncoding, DecodeBuf, Decoder};
use tonic::codegen::{BoxFuture, StdError};
use tonic::server::NamedService;
use tonic::{Code, Request, Response, Status};
use tonic_prost::ProstEncoder;
use tonic_types::{ErrorDetails, StatusExt};
use tower::util::MapResponseLayer;

use crate::pipeline::{ExportResult, IngestError, Ingestor};
use crate::telemetry::Transport;

impl From<IngestError> for Status {
    fn from(e: IngestError) -> Self {
        let message = e.to_string();
        match e {
            IngestError::Malformed(_) | IngestError::UnsupportedMediaType(_) => {
                Status::invalid_argument(message)
            }
            IngestError::TooLarge { .. }
            | IngestError::TooCostly { .. }
            | IngestError::TooManyItems(_) => Status::resource_exhausted(message),
            // RESOURCE_EXHAUSTED is retryable in OTLP only with RetryInfo.
            IngestError::RateLimited { retry_after, .. } => Status::with_error_details(
                Code::ResourceExhausted,
                message,
                ErrorDetails::with_retry_info(Some(retry_after)),
            ),
            IngestError::Unavailable { retry_after, .. } => Status::with_error_details(
                Code::Unavailable,
                message,
                ErrorDetails::with_retry_info(Some(retry_after)),
            ),
            IngestError::Internal(_) => Status::internal(message),
            IngestError::SlowBody { .. } => Status::deadline_exceeded(message),
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

    /// The three OTLP services as one HTTP/2 service, for the server's own
    /// accept loop (which owns connection limits and, later, TLS).
    pub fn service(
        self,
    ) -> impl tower::Service<
        http::Request<hyper::body::Incoming>,
        Response = http::Response<tonic::body::Body>,
        Error = std::convert::Infallible,
        Future = impl Send + 'static,
    > + Clone
    + Send
    + 'static {
        let rewrite: fn(http::Response<tonic::body::Body>) -> http::Response<tonic::body::Body> =
            conform_status;
        let ingestor_for_bodies = Arc::clone(&self.ingestor);
        let routes =
            tonic::service::Routes::new(ExportServer::<Traces>::new(Arc::clone(&self.ingestor)))
                .add_service(ExportServer::<Metrics>::new(Arc::clone(&self.ingestor)))
                .add_service(ExportServer::<Logs>::new(self.ingestor))
                .prepare();
        let ingestor = ingestor_for_bodies;
        tower::ServiceBuilder::new()
            .layer(MapResponseLayer::new(rewrite))
            .map_request(move |request: http::Request<hyper::body::Incoming>| {
                request.map(|body| GuardedBody::new(body, &ingestor))
            })
            .service(routes)
    }
}

/// A request body taken from the memory budget as it arrives (tonic buffers
/// a whole message before the handler sees it, so without this a slow or
/// large upload would hold memory nobody counted) and that must arrive
/// within the body timeout (a client trickling a message holds a stream and
/// that memory). Either failure ends the call with the status the handler
/// would give: UNAVAILABLE with a retry delay, DEADLINE_EXCEEDED.
struct GuardedBody {
    inner: hyper::body::Incoming,
    reservation: smolder_common::memory::Reservation,
    deadline: std::pin::Pin<Box<tokio::time::Sleep>>,
    timeout: std::time::Duration,
    retry_after: std::time::Duration,
}

impl GuardedBody {
    fn new(inner: hyper::body::Incoming, ingestor: &Ingestor) -> Self {
        let limits = ingestor.limits();
        Self {
            inner,
            reservation: smolder_common::memory::Reservation::empty(
                ingestor.budget(),
                smolder_common::memory::Consumer::Ingest,
            ),
            deadline: Box::pin(tokio::time::sleep(limits.body_timeout)),
            timeout: limits.body_timeout,
            retry_after: limits.retry_after,
        }
    }
}

impl http_body::Body for GuardedBody {
    type Data = Bytes;
    type Error = StdError;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, StdError>>> {
        let this = self.get_mut();
        match std::pin::Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                let bytes = frame.data_ref().map_or(0, Bytes::len);
                if let Err(e) = this.reservation.grow(bytes) {
                    let status = Status::from(IngestError::Unavailable {
                        message: format!("the server is overloaded: {e}; retry later"),
                        retry_after: this.retry_after,
                    });
                    return Poll::Ready(Some(Err(Box::new(status))));
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(Box::new(e)))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => {
                if this.deadline.as_mut().poll(cx).is_ready() {
                    let status = Status::from(IngestError::SlowBody {
                        timeout: this.timeout,
                    });
                    return Poll::Ready(Some(Err(Box::new(status))));
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// What differs between the three OTLP services.
trait Signal: Send + Sync + 'static {
    /// The fully qualified gRPC service name.
    const SERVICE: &'static str;
    /// The path of its `Export` method.
    const EXPORT_PATH: &'static str;
    /// The table the items land in.
    const TABLE: Table;
    /// The `Export*ServiceResponse` message.
    type Response: prost::Message + Default + Send + 'static;
    /// The response for an export's result.
    fn response(result: ExportResult) -> Self::Response;
}

struct Traces;
struct Metrics;
struct Logs;

fn rejected(r: &ExportResult) -> i64 {
    i64::try_from(r.rejected).unwrap_or(i64::MAX)
}

impl Signal for Traces {
    const SERVICE: &'static str = "opentelemetry.proto.collector.trace.v1.TraceService";
    const EXPORT_PATH: &'static str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
    const TABLE: Table = Table::Spans;
    type Response = ExportTraceServiceResponse;
    fn response(r: ExportResult) -> Self::Response {
        ExportTraceServiceResponse {
            partial_success: (r.rejected > 0).then(|| ExportTracePartialSuccess {
                rejected_spans: rejected(&r),
                error_message: r.message,
            }),
        }
    }
}

impl Signal for Metrics {
    const SERVICE: &'static str = "opentelemetry.proto.collector.metrics.v1.MetricsService";
    const EXPORT_PATH: &'static str =
        "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export";
    const TABLE: Table = Table::Metrics;
    type Response = ExportMetricsServiceResponse;
    fn response(r: ExportResult) -> Self::Response {
        ExportMetricsServiceResponse {
            partial_success: (r.rejected > 0).then(|| ExportMetricsPartialSuccess {
                rejected_data_points: rejected(&r),
                error_message: r.message,
            }),
        }
    }
}

impl Signal for Logs {
    const SERVICE: &'static str = "opentelemetry.proto.collector.logs.v1.LogsService";
    const EXPORT_PATH: &'static str = "/opentelemetry.proto.collector.logs.v1.LogsService/Export";
    const TABLE: Table = Table::Logs;
    type Response = ExportLogsServiceResponse;
    fn response(r: ExportResult) -> Self::Response {
        ExportLogsServiceResponse {
            partial_success: (r.rejected > 0).then(|| ExportLogsPartialSuccess {
                rejected_log_records: rejected(&r),
                error_message: r.message,
            }),
        }
    }
}

/// Handles one decompressed `Export` message.
async fn export<S: Signal>(
    ingestor: &Ingestor,
    tenant: &Tenant,
    message: Bytes,
) -> Result<S::Response, Status> {
    let started = Instant::now();
    let table = S::TABLE;
    ingestor
        .metrics()
        .record_bytes(table.signal(), Transport::Grpc, message.len());
    let result = async {
        ingestor.check_capacity()?;
        let _admitted = ingestor.admit_protobuf(table, &message)?;
        ingestor
            .ingest_protobuf(tenant, table, message, Transport::Grpc)
            .await
    }
    .await;
    ingestor.record(table, Transport::Grpc, started, &result);
    result.map(S::response).map_err(|e| {
        tracing::debug!(%table, error = %e, "gRPC export refused.");
        Status::from(e)
    })
}

/// One OTLP service: a tower service routing its `Export` method through tonic.
struct ExportServer<S> {
    ingestor: Arc<Ingestor>,
    signal: PhantomData<fn() -> S>,
}

impl<S> ExportServer<S> {
    fn new(ingestor: Arc<Ingestor>) -> Self {
        Self {
            ingestor,
            signal: PhantomData,
        }
    }
}

impl<S> Clone for ExportServer<S> {
    fn clone(&self) -> Self {
        Self::new(Arc::clone(&self.ingestor))
    }
}

impl<S: Signal> NamedService for ExportServer<S> {
    const NAME: &'static str = S::SERVICE;
}

impl<S, B> tower::Service<http::Request<B>> for ExportServer<S>
where
    S: Signal,
    B: tonic::codegen::Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Infallible>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        if request.uri().path() != S::EXPORT_PATH {
            let status = Status::unimplemented(format!(
                "{} has no method {}",
                S::SERVICE,
                request.uri().path()
            ));
            return Box::pin(async move { Ok(status.into_http()) });
        }
        let ingestor = Arc::clone(&self.ingestor);
        Box::pin(async move {
            let limit = ingestor.limits().max_request_bytes;
            let mut grpc = tonic::server::Grpc::new(RawRequestCodec::<S::Response>::default())
                .accept_compressed(CompressionEncoding::Gzip)
                .accept_compressed(CompressionEncoding::Zstd)
                .accept_compressed(CompressionEncoding::Deflate)
                .max_decoding_message_size(limit);
            let method = tower::service_fn(move |message: Request<Bytes>| {
                let ingestor = Arc::clone(&ingestor);
                async move {
                    // Set by the binary's authentication layer from the
                    // caller's token; without one, the default tenant.
                    let tenant = message
                        .extensions()
                        .get::<Tenant>()
                        .cloned()
                        .unwrap_or_default();
                    export::<S>(&ingestor, &tenant, message.into_inner())
                        .await
                        .map(Response::new)
                }
            });
            Ok(grpc.unary(method, request).await)
        })
    }
}

/// A codec that encodes responses with prost and passes requests on as the
/// bytes of the (decompressed) message.
struct RawRequestCodec<R>(PhantomData<fn() -> R>);

impl<R> Default for RawRequestCodec<R> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

impl<R: prost::Message + Send + 'static> Codec for RawRequestCodec<R> {
    type Encode = R;
    type Decode = Bytes;
    type Encoder = ProstEncoder<R>;
    type Decoder = RawDecoder;

    fn encoder(&mut self) -> Self::Encoder {
        ProstEncoder::default()
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawDecoder
    }
}

/// Takes the whole message out of tonic's buffer without copying it.
struct RawDecoder;

impl Decoder for RawDecoder {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

/// Rewrites the statuses tonic gives bad requests into the ones OTLP asks for.
///
/// The Export handlers never answer OUT_OF_RANGE, so any such status comes from
/// tonic's message-length check. INTERNAL is rewritten only when its message is
/// tonic's decompression error (the message is percent-encoded on the wire);
/// the handlers' own internal errors keep their code.
fn conform_status(
    mut response: http::Response<tonic::body::Body>,
) -> http::Response<tonic::body::Body> {
    const DECOMPRESS_ERROR: &[u8] = b"Error%20decompressing";
    let headers = response.headers_mut();
    let rewrite = match headers.get("grpc-status").map(HeaderValue::as_bytes) {
        Some(b"11") => Some("8"),
        Some(b"13") => {
            let message = headers
                .get("grpc-message")
                .map_or(&b""[..], HeaderValue::as_bytes);
            message.starts_with(DECOMPRESS_ERROR).then_some("3")
        }
        _ => None,
    };
    if let Some(code) = rewrite {
        headers.insert("grpc-status", HeaderValue::from_static(code));
    }
    response
}

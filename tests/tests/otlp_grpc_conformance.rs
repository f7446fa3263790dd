//! OTLP/gRPC conformance against the real server, with tonic clients.

use bytes::{Buf, BufMut, Bytes};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;
use serde_json::json;
use smolder_tests::{Server, span_count};
use tonic::Code;
use tonic::codec::{Codec, CompressionEncoding, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::transport::Channel;
use tonic_types::StatusExt;

fn fixture<M: Message + Default>(name: &str) -> M {
    M::decode(&std::fs::read(smolder_sample_data::fixtures::path(name)).unwrap()[..]).unwrap()
}

async fn traces_client(server: &Server) -> TraceServiceClient<Channel> {
    TraceServiceClient::connect(server.otlp_grpc_url())
        .await
        .unwrap()
        .max_encoding_message_size(usize::MAX)
}

async fn assert_still_serving(server: &mut Server) {
    assert!(server.is_running(), "the server process exited");
    let mut client = traces_client(server).await;
    client
        .export(fixture::<ExportTraceServiceRequest>("traces.pb"))
        .await
        .expect("a good export after a refused one");
}

#[tokio::test(flavor = "multi_thread")]
async fn every_signal_with_every_compression() {
    // The same fixture is sent again and again: each copy must be stored,
    // so the retried-export filter is off.
    let mut server = Server::start(&["--dedup-window", "0s"]);
    let traces: ExportTraceServiceRequest = fixture("traces.pb");
    let logs: ExportLogsServiceRequest = fixture("logs.pb");
    let metrics: ExportMetricsServiceRequest = fixture("metrics.pb");
    let encodings = [
        None,
        Some(CompressionEncoding::Gzip),
        Some(CompressionEncoding::Zstd),
        Some(CompressionEncoding::Deflate),
    ];
    for encoding in encodings {
        let channel = Channel::from_shared(server.otlp_grpc_url())
            .unwrap()
            .connect()
            .await
            .unwrap();
        let (mut t, mut l, mut m) = (
            TraceServiceClient::new(channel.clone()),
            LogsServiceClient::new(channel.clone()),
            MetricsServiceClient::new(channel),
        );
        if let Some(e) = encoding {
            t = t.send_compressed(e);
            l = l.send_compressed(e);
            m = m.send_compressed(e);
        }
        let r = t.export(traces.clone()).await.unwrap().into_inner();
        assert_eq!(r.partial_success, None, "{encoding:?}");
        assert!(
            l.export(logs.clone())
                .await
                .unwrap()
                .into_inner()
                .partial_success
                .is_none()
        );
        assert!(
            m.export(metrics.clone())
                .await
                .unwrap()
                .into_inner()
                .partial_success
                .is_none()
        );
    }
    let n = span_count(&traces) * 4;
    assert_eq!(server.scalar("SELECT count(*) FROM spans"), json!(n));
    let points = server.scalar("SELECT count(*) FROM metrics");
    assert!(points.as_i64().unwrap() > 0 && points.as_i64().unwrap() % 4 == 0);
    assert_still_serving(&mut server).await;
}

fn huge_request(bytes: usize) -> ExportTraceServiceRequest {
    let mut r: ExportTraceServiceRequest = fixture("traces.pb");
    r.resource_spans[0].scope_spans[0].spans[0].name = "x".repeat(bytes);
    r
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_messages_get_resource_exhausted_not_out_of_range() {
    let mut server = Server::start(&["--max-request-size", "1MiB"]);
    // Too large as sent.
    let err = traces_client(&server)
        .await
        .export(huge_request(2 << 20))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
    // Small as sent, too large once decompressed.
    let mut client = traces_client(&server)
        .await
        .send_compressed(CompressionEncoding::Gzip);
    let err = client.export(huge_request(8 << 20)).await.unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
    assert!(err.message().contains("size limit"), "{}", err.message());
    assert_still_serving(&mut server).await;
}

/// Sends raw bytes as the request message.
#[derive(Debug, Clone, Copy, Default)]
struct RawCodec;

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = ExportTraceServiceResponse;
    type Encoder = RawCodec;
    type Decoder = RawCodec;
    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }
    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Bytes;
    type Error = tonic::Status;
    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Self::Error> {
        dst.put(item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = ExportTraceServiceResponse;
    type Error = tonic::Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Self::Item>, Self::Error> {
        let bytes = src.copy_to_bytes(src.remaining());
        Ok(Some(
            ExportTraceServiceResponse::decode(bytes)
                .map_err(|e| tonic::Status::internal(e.to_string()))?,
        ))
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_protobuf_gets_invalid_argument() {
    let mut server = Server::start(&[]);
    let channel = Channel::from_shared(server.otlp_grpc_url())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let path = http::uri::PathAndQuery::from_static(
        "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
    );
    let garbage = Bytes::from_static(&[0x0a, 0xff, 0x01, 0x02]);
    let err = grpc
        .unary(tonic::Request::new(garbage), path, RawCodec)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert!(
        err.message()
            .contains("invalid OTLP protobuf traces request: buffer underflow"),
        "{}",
        err.message()
    );
    assert_still_serving(&mut server).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn empty_requests_succeed() {
    let mut server = Server::start(&[]);
    let r = traces_client(&server)
        .await
        .export(ExportTraceServiceRequest::default())
        .await
        .unwrap();
    assert_eq!(r.into_inner().partial_success, None);
    let mut logs = LogsServiceClient::connect(server.otlp_grpc_url())
        .await
        .unwrap();
    assert!(
        logs.export(ExportLogsServiceRequest::default())
            .await
            .unwrap()
            .into_inner()
            .partial_success
            .is_none()
    );
    assert_still_serving(&mut server).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_id_length_is_partial_success() {
    let mut server = Server::start(&[]);
    let mut request: ExportTraceServiceRequest = fixture("traces.pb");
    let total = span_count(&request);
    request.resource_spans[0].scope_spans[0].spans[0].trace_id = vec![1, 2, 3];
    let r = traces_client(&server)
        .await
        .export(request)
        .await
        .unwrap()
        .into_inner();
    let partial = r.partial_success.expect("partial success");
    assert_eq!(partial.rejected_spans, 1);
    assert!(
        partial
            .error_message
            .contains("trace_id must be 16 bytes, got 3"),
        "{}",
        partial.error_message
    );
    assert_eq!(
        server.scalar("SELECT count(*) FROM spans"),
        json!(total - 1)
    );
    assert_still_serving(&mut server).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_buffer_answers_unavailable_with_retry_info() {
    // The same fixture is sent again and again: each copy must be stored,
    // so the retried-export filter is off.
    let server = Server::start(&[
        "--buffer-limit",
        "300KiB",
        "--retry-after",
        "2s",
        "--dedup-window",
        "0s",
    ]);
    let mut client = traces_client(&server).await;
    let request: ExportTraceServiceRequest = fixture("traces.pb");
    let mut accepted = 0;
    let status = loop {
        match client.export(request.clone()).await {
            Ok(_) => accepted += 1,
            Err(status) => break status,
        }
        assert!(accepted < 500, "the buffer never filled");
    };
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    let retry = status.get_details_retry_info().expect("RetryInfo detail");
    assert_eq!(retry.retry_delay, Some(std::time::Duration::from_secs(2)));
    assert_eq!(
        server.scalar("SELECT count(*) FROM spans"),
        json!(accepted * span_count(&request))
    );
}

/// Sends one gRPC frame marked as gzip-compressed whose payload is a truncated
/// gzip stream, as raw HTTP/2, since tonic's client only sends valid frames.
#[tokio::test(flavor = "multi_thread")]
async fn corrupt_compressed_frames_get_invalid_argument() {
    use std::io::Write as _;
    let mut server = Server::start(&[]);
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gzip.write_all(&fixture::<ExportTraceServiceRequest>("traces.pb").encode_to_vec())
        .unwrap();
    let compressed = gzip.finish().unwrap();
    let truncated = &compressed[..compressed.len() / 2];
    let mut frame = vec![1u8];
    frame.extend_from_slice(&(truncated.len() as u32).to_be_bytes());
    frame.extend_from_slice(truncated);

    let mut channel = Channel::from_shared(server.otlp_grpc_url())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let request = http::Request::post(format!(
        "{}/opentelemetry.proto.collector.trace.v1.TraceService/Export",
        server.otlp_grpc_url()
    ))
    .header("content-type", "application/grpc")
    .header("grpc-encoding", "gzip")
    .header("te", "trailers")
    .body(tonic::body::Body::new(http_body_util::Full::new(
        Bytes::from(frame),
    )))
    .unwrap();
    std::future::poll_fn(|cx| tonic::codegen::Service::poll_ready(&mut channel, cx))
        .await
        .unwrap();
    let response = tonic::codegen::Service::call(&mut channel, request)
        .await
        .unwrap();
    let status = tonic::Status::from_header_map(response.headers())
        .expect("an error status in the response headers");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(
        status.message().contains("decompressing"),
        "{}",
        status.message()
    );
    assert_still_serving(&mut server).await;
}

/// A message is taken from the memory budget as it arrives, before tonic
/// has buffered all of it: one larger than what the budget has left is
/// refused as overload (UNAVAILABLE with RetryInfo), not buffered first.
#[tokio::test(flavor = "multi_thread")]
async fn a_message_beyond_the_memory_budget_is_refused_while_it_arrives() {
    let mut server = Server::start(&[
        "--memory-budget",
        "24MiB",
        "--max-inflight-bytes",
        "16MiB",
        "--max-request-size",
        "64MiB",
    ]);
    let err = traces_client(&server)
        .await
        .export(huge_request(40 << 20))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    assert!(err.message().contains("overloaded"), "{}", err.message());
    assert!(err.get_details_retry_info().is_some(), "{err:?}");
    assert_still_serving(&mut server).await;
}

/// A message that is small as sent but large once decoded (400,000 empty
/// log records: 800 KB, about 100 MB decoded) is refused by its decoded size
/// before it is decoded, over gRPC as over HTTP.
#[tokio::test(flavor = "multi_thread")]
async fn a_message_that_decodes_to_far_more_than_its_bytes_is_refused() {
    use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
    let mut server = Server::start(&["--max-inflight-bytes", "32MiB"]);
    let request = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: vec![LogRecord::default(); 400_000],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let err = LogsServiceClient::connect(server.otlp_grpc_url())
        .await
        .unwrap()
        .export(request)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
    assert!(
        err.message().contains("smaller batches"),
        "{}",
        err.message()
    );
    assert_still_serving(&mut server).await;
}

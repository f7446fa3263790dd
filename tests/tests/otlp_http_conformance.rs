//! OTLP/HTTP conformance, one raw request per point of the specification,
//! against the real server. After every refused request the server must still
//! accept the next good one.

use std::io::Write;

use prost::Message;
use serde_json::{Value, json};
use smolder_tests::{Server, http_request};

const PROTOBUF: &str = "application/x-protobuf";
const JSON: &str = "application/json";

/// `google.rpc.Status` as OTLP/HTTP error bodies carry it.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

struct Answer {
    status: u16,
    headers: String,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }

    fn header(&self, name: &str) -> Option<String> {
        self.headers.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    }
}

/// POSTs raw bytes and keeps the answer's headers and body as bytes.
fn post(server: &Server, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Answer {
    use std::io::Read;
    let mut stream = std::net::TcpStream::connect(server.otlp_http).unwrap();
    let mut head = format!(
        "POST {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    // The server may answer (413) before reading the whole body.
    let _ = stream.write_all(body);
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("response head");
    let headers = String::from_utf8_lossy(&raw[..split]).to_string();
    let status = headers.split_whitespace().nth(1).unwrap().parse().unwrap();
    let body = raw[split + 4..].to_vec();
    let body = if headers
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        let mut out = Vec::new();
        let mut rest = &body[..];
        loop {
            let eol = rest.windows(2).position(|w| w == b"\r\n").unwrap();
            let n = usize::from_str_radix(std::str::from_utf8(&rest[..eol]).unwrap().trim(), 16)
                .unwrap();
            if n == 0 {
                break;
            }
            out.extend_from_slice(&rest[eol + 2..eol + 2 + n]);
            rest = &rest[eol + 4 + n..];
        }
        out
    } else {
        body
    };
    Answer {
        status,
        headers,
        body,
    }
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn zlib(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(smolder_sample_data::fixtures::path(name)).unwrap()
}

/// A one-span JSON request whose span carries `fields`.
fn span_json(service: &str, fields: &str) -> Vec<u8> {
    format!(
        r#"{{"resourceSpans":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"{service}"}}}}]}},"scopeSpans":[{{"spans":[{{{fields}}}]}}]}}]}}"#
    )
    .into_bytes()
}

/// Asserts that the server still takes a good export after whatever came before.
fn assert_still_serving(server: &mut Server) {
    assert!(server.is_running(), "the server process exited");
    let a = post(
        server,
        "/v1/traces",
        &[("content-type", PROTOBUF)],
        &fixture("traces.pb"),
    );
    assert_eq!(a.status, 200, "a good export after a refused one");
}

#[test]
fn every_json_quirk_is_accepted() {
    let mut server = Server::start(&[]);
    let cases: &[(&str, &str, &str)] = &[
        (
            "upper-case hex ids",
            r#""traceId":"5B8EFFF798038103D269B633813FC60C","spanId":"EEE19B7EC3C1B174","name":"x""#,
            "trace_id = '5b8efff798038103d269b633813fc60c' AND span_id = 'eee19b7ec3c1b174'",
        ),
        (
            "int64 as string",
            r#""traceId":"5b8efff798038103d269b633813fc60c","spanId":"0000000000000001","startTimeUnixNano":"1700000000000000000","endTimeUnixNano":"1700000000500000000""#,
            "duration_ns = 500000000",
        ),
        (
            "int64 as number",
            r#""traceId":"5b8efff798038103d269b633813fc60c","spanId":"0000000000000002","startTimeUnixNano":1700000000000000000,"endTimeUnixNano":1700000000100000000"#,
            "duration_ns = 100000000",
        ),
        (
            "enum names",
            r#""traceId":"5b8efff798038103d269b633813fc60c","spanId":"0000000000000003","kind":"SPAN_KIND_CONSUMER","status":{"code":"STATUS_CODE_OK"}"#,
            "kind = 'CONSUMER' AND status_code = 'OK'",
        ),
        (
            "enum integers",
            r#""traceId":"5b8efff798038103d269b633813fc60c","spanId":"0000000000000004","kind":4,"status":{"code":2}"#,
            "kind = 'PRODUCER' AND status_code = 'ERROR'",
        ),
        (
            "snake_case keys",
            r#""trace_id":"5b8efff798038103d269b633813fc60c","span_id":"0000000000000005","parent_span_id":"0000000000000001","dropped_attributes_count":4"#,
            "parent_span_id = '0000000000000001' AND dropped_attributes_count = 4",
        ),
        (
            "unknown fields",
            r#""traceId":"5b8efff798038103d269b633813fc60c","spanId":"0000000000000006","notInTheSpec":{"a":[1,2]},"alsoNot":7"#,
            "span_id = '0000000000000006'",
        ),
        (
            "int attribute as string",
            r#""traceId":"5b8efff798038103d269b633813fc60c","spanId":"0000000000000007","attributes":[{"key":"http.response.status_code","value":{"intValue":"503"}}]"#,
            "http_response_status_code = 503 AND attribute_types['http.response.status_code'] = 'int'",
        ),
    ];
    for (i, (what, fields, predicate)) in cases.iter().enumerate() {
        let service = format!("quirk{i}");
        let a = post(
            &server,
            "/v1/traces",
            &[("content-type", JSON)],
            &span_json(&service, fields),
        );
        assert_eq!(
            a.status,
            200,
            "{what}: {}",
            String::from_utf8_lossy(&a.body)
        );
        assert_eq!(a.json(), json!({}), "{what}");
        let n = server.scalar(&format!(
            "SELECT count(*) FROM spans WHERE service_name = '{service}' AND {predicate}"
        ));
        assert_eq!(n, json!(1), "{what}: stored as expected");
    }
    // Omitted zero fields in an exponential histogram.
    let body = br#"{"resourceMetrics":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"expo"}}]},"scopeMetrics":[{"metrics":[{"name":"lat","exponentialHistogram":{"aggregationTemporality":"AGGREGATION_TEMPORALITY_DELTA","dataPoints":[{"timeUnixNano":"1700000000000000000","count":"3","positive":{"bucketCounts":["1","2"]}}]}}]}]}]}"#;
    let a = post(&server, "/v1/metrics", &[("content-type", JSON)], body);
    assert_eq!(a.status, 200);
    let row = server.sql("SELECT count, exp_scale, exp_zero_count, exp_positive_offset, exp_positive_bucket_counts FROM metrics WHERE service_name = 'expo'");
    assert_eq!(row["rows"], json!([[3, 0, 0, 0, [1, 2]]]));
    assert_still_serving(&mut server);
}

#[test]
fn every_compression_on_protobuf_and_json() {
    // The same fixture is sent again and again: each copy must be stored,
    // so the retried-export filter is off.
    let mut server = Server::start(&["--dedup-window", "0s"]);
    let pb = fixture("logs.pb");
    let js = fixture("logs.json");
    let n_pb = prost::Message::decode(&pb[..])
        .map(
            |r: opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest| {
                r.resource_logs
                    .iter()
                    .flat_map(|r| &r.scope_logs)
                    .map(|s| s.log_records.len())
                    .sum::<usize>()
            },
        )
        .unwrap() as i64;
    let mut expected = 0;
    for (encoding, compress) in [
        ("identity", (|d: &[u8]| d.to_vec()) as fn(&[u8]) -> Vec<u8>),
        ("gzip", gzip),
        ("deflate", zlib),
        ("zstd", |d: &[u8]| zstd::encode_all(d, 3).unwrap()),
    ] {
        for (ctype, body, n) in [(PROTOBUF, &pb, n_pb), (JSON, &js, 3)] {
            let a = post(
                &server,
                "/v1/logs",
                &[("content-type", ctype), ("content-encoding", encoding)],
                &compress(body),
            );
            assert_eq!(
                a.status,
                200,
                "{encoding} {ctype}: {}",
                String::from_utf8_lossy(&a.body)
            );
            assert_eq!(
                a.header("content-type").as_deref(),
                Some(ctype),
                "answer in the request's type"
            );
            expected += n;
            assert_eq!(
                server.scalar("SELECT count(*) FROM logs"),
                json!(expected),
                "{encoding} {ctype}"
            );
        }
    }
    assert_still_serving(&mut server);
}

#[test]
fn oversized_bodies_get_413_before_and_after_decompression() {
    let mut server = Server::start(&["--max-request-size", "1MiB"]);
    // Too large as sent.
    let big = vec![0x0a; 2 << 20];
    let a = post(&server, "/v1/traces", &[("content-type", PROTOBUF)], &big);
    assert_eq!(a.status, 413);
    let status = RpcStatus::decode(&a.body[..]).unwrap();
    assert_eq!(status.code, 8, "RESOURCE_EXHAUSTED");
    assert!(
        status.message.contains("1048576 bytes"),
        "{}",
        status.message
    );
    // Small as sent, too large once inflated (a zip bomb).
    let bomb = gzip(&vec![0u8; 8 << 20]);
    assert!(bomb.len() < 64 << 10);
    let a = post(
        &server,
        "/v1/traces",
        &[("content-type", JSON), ("content-encoding", "gzip")],
        &bomb,
    );
    assert_eq!(a.status, 413);
    assert!(
        a.json()["message"]
            .as_str()
            .unwrap()
            .contains("exceeds the limit"),
        "{}",
        a.json()
    );
    assert_still_serving(&mut server);
}

#[test]
fn malformed_bodies_get_400_with_a_status_naming_the_problem() {
    let mut server = Server::start(&[]);
    // Malformed protobuf: a field header promising more bytes than there are.
    let a = post(
        &server,
        "/v1/traces",
        &[("content-type", PROTOBUF)],
        &[0x0a, 0xff, 0x01, 0x02],
    );
    assert_eq!(a.status, 400);
    assert_eq!(a.header("content-type").as_deref(), Some(PROTOBUF));
    let status = RpcStatus::decode(&a.body[..]).unwrap();
    assert_eq!(status.code, 3, "INVALID_ARGUMENT");
    assert!(
        status
            .message
            .contains("invalid OTLP protobuf traces request"),
        "{}",
        status.message
    );

    // Malformed JSON, answered in JSON with the path of the bad value.
    let a = post(
        &server,
        "/v1/traces",
        &[("content-type", JSON)],
        &span_json("bad", r#""traceId":"xyz""#),
    );
    assert_eq!(a.status, 400);
    let body = a.json();
    assert_eq!(body["code"], 3);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("resourceSpans[0].scopeSpans[0].spans[0].traceId"),
        "{body}"
    );
    let a = post(
        &server,
        "/v1/logs",
        &[("content-type", JSON)],
        b"{\"resourceLogs\": [",
    );
    assert_eq!(a.status, 400);
    assert!(
        a.json()["message"]
            .as_str()
            .unwrap()
            .contains("invalid JSON")
    );

    // Truncated gzip.
    let body = gzip(&fixture("traces.pb"));
    let a = post(
        &server,
        "/v1/traces",
        &[("content-type", PROTOBUF), ("content-encoding", "gzip")],
        &body[..body.len() / 2],
    );
    assert_eq!(a.status, 400);
    let status = RpcStatus::decode(&a.body[..]).unwrap();
    assert!(status.message.contains("Gzip"), "{}", status.message);
    assert_still_serving(&mut server);
}

#[test]
fn unsupported_media_types_and_encodings_get_415() {
    let mut server = Server::start(&[]);
    for ctype in ["text/plain", "application/xml", ""] {
        let a = post(&server, "/v1/traces", &[("content-type", ctype)], b"{}");
        assert_eq!(a.status, 415, "{ctype:?}");
        assert!(
            a.json()["message"]
                .as_str()
                .unwrap()
                .contains("unsupported Content-Type")
        );
    }
    let a = post(
        &server,
        "/v1/traces",
        &[("content-type", JSON), ("content-encoding", "br")],
        b"{}",
    );
    assert_eq!(a.status, 415);
    assert!(
        a.json()["message"]
            .as_str()
            .unwrap()
            .contains("Content-Encoding \"br\"")
    );
    // Media type parameters are allowed.
    let a = post(
        &server,
        "/v1/traces",
        &[("content-type", "application/json; charset=utf-8")],
        b"{}",
    );
    assert_eq!(a.status, 200);
    assert_still_serving(&mut server);
}

#[test]
fn empty_requests() {
    let mut server = Server::start(&[]);
    for path in ["/v1/traces", "/v1/logs", "/v1/metrics"] {
        // An empty protobuf body is a valid, empty message.
        let a = post(&server, path, &[("content-type", PROTOBUF)], b"");
        assert_eq!((a.status, a.body.len()), (200, 0), "{path}");
        let a = post(&server, path, &[("content-type", JSON)], b"{}");
        assert_eq!((a.status, a.json()), (200, json!({})), "{path}");
        // An empty body is not a JSON document.
        let a = post(&server, path, &[("content-type", JSON)], b"");
        assert_eq!(a.status, 400, "{path}");
    }
    assert_still_serving(&mut server);
}

#[test]
fn bad_ids_are_partial_success_and_good_items_are_kept() {
    let mut server = Server::start(&[]);
    let body = br#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"partial"}}]},"scopeSpans":[{"spans":[
        {"traceId":"5b8efff798038103d269b633813fc60c","spanId":"0000000000000001","name":"good"},
        {"traceId":"010203","spanId":"0000000000000002","name":"short trace id"},
        {"traceId":"5b8efff798038103d269b633813fc60c","spanId":"00","name":"short span id"}]}]}]}"#;
    let a = post(&server, "/v1/traces", &[("content-type", JSON)], body);
    assert_eq!(a.status, 200);
    let answer = a.json();
    assert_eq!(answer["partialSuccess"]["rejectedSpans"], json!("2"));
    let message = answer["partialSuccess"]["errorMessage"].as_str().unwrap();
    assert!(
        message.contains("trace_id must be 16 bytes, got 3"),
        "{message}"
    );
    assert!(
        message.contains("span_id must be 8 bytes, got 1"),
        "{message}"
    );
    assert_eq!(
        server.sql("SELECT name FROM spans WHERE service_name = 'partial'")["rows"],
        json!([["good"]])
    );

    // The same over protobuf: the partial success comes back as protobuf.
    let mut request: opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest =
        Message::decode(&fixture("logs.pb")[..]).unwrap();
    let total: usize = request
        .resource_logs
        .iter()
        .flat_map(|r| &r.scope_logs)
        .map(|s| s.log_records.len())
        .sum();
    request.resource_logs[0].scope_logs[0].log_records[0].trace_id = vec![9; 5];
    let a = post(
        &server,
        "/v1/logs",
        &[("content-type", PROTOBUF)],
        &request.encode_to_vec(),
    );
    assert_eq!(a.status, 200);
    let response =
        opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceResponse::decode(
            &a.body[..],
        )
        .unwrap();
    let partial = response.partial_success.unwrap();
    assert_eq!(partial.rejected_log_records, 1);
    assert!(
        partial
            .error_message
            .contains("trace_id must be 16 bytes, got 5")
    );
    assert_eq!(
        server.scalar("SELECT count(*) FROM logs"),
        json!(total as i64 - 1)
    );
    assert_still_serving(&mut server);
}

#[test]
fn a_full_buffer_answers_503_with_retry_after_and_keeps_what_it_has() {
    // The same fixture is sent again and again: each copy must be stored,
    // so the retried-export filter is off.
    let server = Server::start(&[
        "--buffer-limit",
        "300KiB",
        "--retry-after",
        "3s",
        "--dedup-window",
        "0s",
    ]);
    let body = fixture("traces.pb");
    let mut accepted = 0;
    let mut refused = None;
    for _ in 0..500 {
        let a = post(&server, "/v1/traces", &[("content-type", PROTOBUF)], &body);
        match a.status {
            200 => accepted += 1,
            503 => {
                refused = Some(a);
                break;
            }
            other => panic!("unexpected status {other}"),
        }
    }
    let refused = refused.expect("the buffer never filled");
    assert!(accepted > 0);
    assert_eq!(refused.header("retry-after").as_deref(), Some("3"));
    let status = RpcStatus::decode(&refused.body[..]).unwrap();
    assert_eq!(status.code, 14, "UNAVAILABLE");
    assert!(
        status.message.contains("buffer is full"),
        "{}",
        status.message
    );
    // Everything acknowledged before is still there, exactly once.
    let per_request: i64 = {
        let r: opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest =
            Message::decode(&body[..]).unwrap();
        r.resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .map(|s| s.spans.len() as i64)
            .sum()
    };
    assert_eq!(
        server.scalar("SELECT count(*) FROM spans"),
        json!(accepted * per_request)
    );
    // /metrics counts the refusal.
    let (_, metrics) = http_request(server.http, "GET", "/metrics", &[], b"");
    assert!(
        metrics.contains(
            "smolder_otlp_rejected_items_total{signal=\"traces\",reason=\"backpressure\"}"
        ),
        "{metrics}"
    );
}

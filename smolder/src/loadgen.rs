//! `smolder loadgen`: sends generated telemetry over OTLP (gRPC or HTTP with
//! protobuf or JSON) at a target rate or as fast as possible, bounded by a
//! duration and optionally a request count, and reports what was sent,
//! acknowledged and rejected, with throughput and latency percentiles.
//!
//! Request bodies are generated, encoded and compressed before the clock starts
//! (a pool of distinct bodies sent in turn), so the generator's own cost does not
//! limit the load. With `--history`, every request is generated afresh instead,
//! its timestamps spread over a stretch of the past: a replay of history that
//! loads realistic data for query benchmarks.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use bytes::{Buf, BufMut, Bytes};
use clap::{Args, ValueEnum};
use hdrhistogram::Histogram;
use prost::Message;
use serde::Serialize;
use smolder_ingest::ExportRequest;
use smolder_sample_data::Generator;
use tonic::codec::{Codec, CompressionEncoding, DecodeBuf, Decoder, EncodeBuf, Encoder};

/// Options of `smolder loadgen`.
#[derive(Debug, Clone, Args)]
pub(crate) struct LoadgenArgs {
    /// Base URL of the receiver, e.g. http://127.0.0.1:4317 for gRPC or
    /// http://127.0.0.1:4318 for HTTP.
    #[arg(long, default_value = "http://127.0.0.1:4317")]
    pub(crate) endpoint: String,
    /// OTLP transport and encoding.
    #[arg(long, value_enum, default_value_t = Protocol::Grpc)]
    pub(crate) protocol: Protocol,
    /// Which signal to send.
    #[arg(long, value_enum, default_value_t = Signal::Traces)]
    pub(crate) signal: Signal,
    /// Items (spans, log records, data points) per request; metrics requests
    /// hold whole exports, so their size is approximate.
    #[arg(long, default_value_t = 512)]
    pub(crate) batch_size: usize,
    /// Target items per second over all connections; 0 sends as fast as possible.
    #[arg(long, default_value_t = 0)]
    pub(crate) rate: u64,
    /// Concurrent requests in flight (one connection each).
    #[arg(long, default_value_t = 4)]
    pub(crate) concurrency: usize,
    /// How long to send for.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub(crate) duration: Duration,
    /// Stop after this many requests (whichever of this and --duration comes first).
    #[arg(long)]
    pub(crate) requests: Option<u64>,
    /// Request body compression.
    #[arg(long, value_enum, default_value_t = Compression::None)]
    pub(crate) compression: Compression,
    /// Seed of the telemetry generator.
    #[arg(long, default_value_t = 1)]
    pub(crate) seed: u64,
    /// Distinct request bodies generated up front and sent in turn.
    #[arg(long, default_value_t = 32)]
    pub(crate) pool: usize,
    /// Print the report as one JSON object instead of text.
    #[arg(long)]
    pub(crate) json: bool,
    /// Append the ids of the items of every fully acknowledged request to
    /// this file, one per line (span ids in hex for traces, the span id of
    /// each log record for logs; for metrics, which have no id,
    /// `service|metric|time in ns` of each point, shared by the points of one
    /// series set at one instant), so a test can check each acknowledged item
    /// is stored. Make --pool at least --requests so that no body is sent
    /// twice.
    #[arg(long, value_name = "FILE")]
    pub(crate) ack_log: Option<std::path::PathBuf>,
    /// Generate every request afresh (unique ids) instead of cycling through
    /// a pool, with timestamps spread evenly over this much of the past,
    /// ending now: a replay of history. Needs --requests. The generator's own
    /// cost then counts against the load.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub(crate) history: Option<Duration>,
    /// An API token with the ingest scope, sent as `Authorization: Bearer`
    /// (gRPC metadata or HTTP header).
    #[arg(long, env = "SMOLDER_TOKEN", hide_env_values = true)]
    pub(crate) token: Option<String>,
    /// Certificates for an `https://` endpoint.
    #[command(flatten)]
    pub(crate) tls: crate::client::ClientTls,
    /// Resend a request the server refused as retryable (UNAVAILABLE, 503,
    /// 429, RESOURCE_EXHAUSTED with RetryInfo, a lost connection) after a backoff, as OTLP exporters do, until
    /// it is accepted or --duration is over.
    #[arg(long)]
    pub(crate) retry: bool,
}

/// OTLP transport and encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Protocol {
    /// OTLP/gRPC.
    Grpc,
    /// OTLP/HTTP with protobuf bodies.
    HttpProtobuf,
    /// OTLP/HTTP with JSON bodies.
    HttpJson,
}

/// A telemetry signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Signal {
    /// Spans.
    Traces,
    /// Log records.
    Logs,
    /// Metric data points.
    Metrics,
}

/// Request body compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Compression {
    /// None.
    None,
    /// gzip.
    Gzip,
    /// Zstandard.
    Zstd,
}

impl Signal {
    fn path(self) -> &'static str {
        match self {
            Self::Traces => "traces",
            Self::Logs => "logs",
            Self::Metrics => "metrics",
        }
    }

    fn grpc_path(self) -> &'static str {
        match self {
            Self::Traces => "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
            Self::Logs => "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
            Self::Metrics => "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
        }
    }
}

/// One pre-encoded request.
#[derive(Debug, Clone)]
struct Body {
    bytes: Bytes,
    items: u64,
    /// The items' ids as hex lines, for `--ack-log`.
    ids: String,
}

/// The ids `--ack-log` records for a request's items.
fn item_ids(request: &ExportRequest) -> String {
    let mut out = String::new();
    let mut push = |id: &[u8]| {
        out.push_str(&hex::encode(id));
        out.push('\n');
    };
    match request {
        ExportRequest::Traces(r) => r
            .resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .flat_map(|s| &s.spans)
            .for_each(|span| push(&span.span_id)),
        ExportRequest::Logs(r) => r
            .resource_logs
            .iter()
            .flat_map(|r| &r.scope_logs)
            .flat_map(|s| &s.log_records)
            .for_each(|log| push(&log.span_id)),
        ExportRequest::Metrics(r) => {
            use opentelemetry_proto::tonic::metrics::v1::metric::Data;
            for resource in &r.resource_metrics {
                let service = resource
                    .resource
                    .iter()
                    .flat_map(|r| &r.attributes)
                    .find(|kv| kv.key == "service.name")
                    .and_then(|kv| kv.value.as_ref()?.value.as_ref())
                    .map(|v| match v {
                        opentelemetry_proto::tonic::common::v1::any_value::Value::StringValue(
                            s,
                        ) => s.as_str(),
                        _ => "",
                    })
                    .unwrap_or_default();
                for metric in resource.scope_metrics.iter().flat_map(|s| &s.metrics) {
                    let times: Vec<u64> = match &metric.data {
                        Some(Data::Gauge(g)) => {
                            g.data_points.iter().map(|p| p.time_unix_nano).collect()
                        }
                        Some(Data::Sum(s)) => {
                            s.data_points.iter().map(|p| p.time_unix_nano).collect()
                        }
                        Some(Data::Histogram(h)) => {
                            h.data_points.iter().map(|p| p.time_unix_nano).collect()
                        }
                        Some(Data::ExponentialHistogram(h)) => {
                            h.data_points.iter().map(|p| p.time_unix_nano).collect()
                        }
                        Some(Data::Summary(s)) => {
                            s.data_points.iter().map(|p| p.time_unix_nano).collect()
                        }
                        None => Vec::new(),
                    };
                    for time in times {
                        out.push_str(&format!("{service}|{}|{time}\n", metric.name));
                    }
                }
            }
        }
    }
    out
}

/// Generates one request of `signal` with about `size` items.
fn generate(generator: &mut Generator, signal: Signal, size: usize) -> ExportRequest {
    match signal {
        Signal::Traces => ExportRequest::Traces(generator.spans(size)),
        Signal::Logs => ExportRequest::Logs(generator.logs(size)),
        Signal::Metrics => ExportRequest::Metrics(generator.metric_points(size)),
    }
}

fn encode(
    request: &ExportRequest,
    protocol: Protocol,
    compression: Compression,
) -> anyhow::Result<Bytes> {
    let raw = match (protocol, request) {
        (Protocol::HttpJson, ExportRequest::Traces(r)) => serde_json::to_vec(r)?,
        (Protocol::HttpJson, ExportRequest::Logs(r)) => serde_json::to_vec(r)?,
        (Protocol::HttpJson, ExportRequest::Metrics(r)) => serde_json::to_vec(r)?,
        (_, ExportRequest::Traces(r)) => r.encode_to_vec(),
        (_, ExportRequest::Logs(r)) => r.encode_to_vec(),
        (_, ExportRequest::Metrics(r)) => r.encode_to_vec(),
    };
    // gRPC compresses per message in the client; HTTP bodies are compressed here.
    if protocol == Protocol::Grpc {
        return Ok(raw.into());
    }
    Ok(match compression {
        Compression::None => raw.into(),
        Compression::Gzip => {
            use std::io::Write;
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(&raw)?;
            e.finish()?.into()
        }
        Compression::Zstd => zstd::encode_all(&raw[..], 1)?.into(),
    })
}

/// What one request came back with.
enum Answer {
    Ok { rejected: u64 },
    Failed { why: String, retryable: bool },
}

impl Answer {
    fn failed(why: String, retryable: bool) -> Self {
        Self::Failed { why, retryable }
    }
}

/// The report printed at the end.
#[derive(Debug, Serialize)]
pub(crate) struct Report {
    protocol: Protocol,
    signal: Signal,
    compression: Compression,
    concurrency: usize,
    elapsed_seconds: f64,
    requests_sent: u64,
    requests_ok: u64,
    requests_partial: u64,
    requests_failed: u64,
    requests_retried: u64,
    failures: BTreeMap<String, u64>,
    items_sent: u64,
    items_acknowledged: u64,
    items_rejected: u64,
    items_per_second: f64,
    bytes_sent: u64,
    latency_ms: BTreeMap<&'static str, f64>,
}

#[derive(Default)]
struct Tally {
    sent: u64,
    ok: u64,
    partial: u64,
    failed: u64,
    retried: u64,
    failures: BTreeMap<String, u64>,
    items_sent: u64,
    items_acked: u64,
    items_rejected: u64,
    bytes: u64,
}

/// Runs the load and prints the report; fails (after the report) when not
/// one request was acknowledged, so a script notices a load that never
/// arrived.
pub(crate) async fn run(args: LoadgenArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.concurrency > 0, "--concurrency must be at least 1");
    anyhow::ensure!(args.batch_size > 0, "--batch-size must be at least 1");
    anyhow::ensure!(args.pool > 0, "--pool must be at least 1");
    let report = execute(&args).await?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print_report(&report);
    }
    if report.requests_sent > 0 && report.requests_ok + report.requests_partial == 0 {
        let reasons: Vec<String> = report
            .failures
            .iter()
            .map(|(why, n)| format!("{n} × {why}"))
            .collect();
        anyhow::bail!(
            "every one of the {} requests failed: {}",
            report.requests_sent,
            reasons.join(", ")
        );
    }
    Ok(())
}

/// Where request bodies come from.
enum Bodies {
    /// A pool generated up front, sent in turn.
    Pool(Vec<Arc<Body>>),
    /// Request n is generated when it is sent, at `start + n * step`.
    History {
        args: Box<LoadgenArgs>,
        start: u64,
        step: u64,
    },
}

impl Bodies {
    fn body(&self, n: u64) -> anyhow::Result<Arc<Body>> {
        match self {
            Self::Pool(bodies) => Ok(Arc::clone(&bodies[(n % bodies.len() as u64) as usize])),
            Self::History { args, start, step } => {
                let seed = args.seed.wrapping_mul(1_000_003).wrapping_add(n);
                let mut generator = Generator::new(seed, start + n * step);
                make_body(&mut generator, args).map(Arc::new)
            }
        }
    }
}

fn make_body(generator: &mut Generator, args: &LoadgenArgs) -> anyhow::Result<Body> {
    let request = generate(generator, args.signal, args.batch_size);
    Ok(Body {
        items: request.item_count(),
        bytes: encode(&request, args.protocol, args.compression)?,
        ids: if args.ack_log.is_some() {
            item_ids(&request)
        } else {
            String::new()
        },
    })
}

/// Runs the load and returns the report.
pub(crate) async fn execute(args: &LoadgenArgs) -> anyhow::Result<Report> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos() as u64;
    let (bodies, mean_items) = match args.history {
        Some(history) => {
            let requests = args
                .requests
                .context("--history needs --requests: how many requests to spread over it")?;
            let history = history.as_nanos() as u64;
            let step = history / requests.max(1);
            let bodies = Bodies::History {
                args: Box::new(args.clone()),
                start: now.saturating_sub(history),
                step,
            };
            (bodies, args.batch_size as f64)
        }
        None => {
            // The pool's clock starts an hour back: metric exports advance it
            // by 10 s each, and the server refuses items too far in the future.
            let mut generator = Generator::new(args.seed, now.saturating_sub(3_600_000_000_000));
            let mut pool = Vec::with_capacity(args.pool);
            for _ in 0..args.pool {
                pool.push(Arc::new(make_body(&mut generator, args)?));
            }
            let mean = pool.iter().map(|b| b.items).sum::<u64>() as f64 / pool.len() as f64;
            (Bodies::Pool(pool), mean)
        }
    };
    let bodies = Arc::new(bodies);
    let period = (args.rate > 0).then(|| Duration::from_secs_f64(mean_items / args.rate as f64));
    let max_requests = args.requests.unwrap_or(u64::MAX);
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + args.duration;

    let ack_log = match &args.ack_log {
        Some(path) => Some(Arc::new(std::sync::Mutex::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("opening --ack-log {}", path.display()))?,
        ))),
        None => None,
    };

    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..args.concurrency {
        let sender = Sender::connect(args).await?;
        let (bodies, next) = (Arc::clone(&bodies), Arc::clone(&next));
        let ack_log = ack_log.clone();
        let retry = args.retry;
        workers.spawn(async move {
            let mut tally = Tally::default();
            let mut latency = Histogram::<u64>::new(3).expect("valid histogram precision");
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= max_requests {
                    break;
                }
                if let Some(period) = period {
                    let at = started + period.mul_f64(n as f64);
                    if at >= deadline {
                        break;
                    }
                    tokio::time::sleep_until(at.into()).await;
                }
                if Instant::now() >= deadline {
                    break;
                }
                let body = match bodies.body(n) {
                    Ok(body) => body,
                    Err(e) => {
                        tally.failed += 1;
                        *tally
                            .failures
                            .entry(format!("generating: {e}"))
                            .or_default() += 1;
                        continue;
                    }
                };
                let t0 = Instant::now();
                let mut answer = sender.send(body.bytes.clone()).await;
                let mut backoff = Duration::from_millis(50);
                while retry
                    && matches!(
                        answer,
                        Answer::Failed {
                            retryable: true,
                            ..
                        }
                    )
                    && Instant::now() + backoff < deadline
                {
                    tally.retried += 1;
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                    answer = sender.send(body.bytes.clone()).await;
                }
                let _ = latency.record(t0.elapsed().as_micros() as u64);
                tally.sent += 1;
                tally.items_sent += body.items;
                tally.bytes += body.bytes.len() as u64;
                match answer {
                    Answer::Ok { rejected } => {
                        if rejected > 0 {
                            tally.partial += 1;
                        } else {
                            tally.ok += 1;
                            if let Some(log) = &ack_log {
                                use std::io::Write as _;
                                let mut file = log.lock().expect("ack log lock");
                                if let Err(e) = file.write_all(body.ids.as_bytes()) {
                                    tracing::error!(error = %e, "Writing --ack-log failed.");
                                }
                            }
                        }
                        tally.items_rejected += rejected;
                        tally.items_acked += body.items.saturating_sub(rejected);
                    }
                    Answer::Failed { why, .. } => {
                        tally.failed += 1;
                        *tally.failures.entry(why).or_default() += 1;
                    }
                }
            }
            (tally, latency)
        });
    }
    let mut total = Tally::default();
    let mut latency = Histogram::<u64>::new(3).expect("valid histogram precision");
    while let Some(done) = workers.join_next().await {
        let (t, h) = done.context("loadgen worker panicked")?;
        total.sent += t.sent;
        total.ok += t.ok;
        total.partial += t.partial;
        total.failed += t.failed;
        total.retried += t.retried;
        for (k, v) in t.failures {
            *total.failures.entry(k).or_default() += v;
        }
        total.items_sent += t.items_sent;
        total.items_acked += t.items_acked;
        total.items_rejected += t.items_rejected;
        total.bytes += t.bytes;
        latency.add(h).expect("histograms of the same precision");
    }
    let elapsed = started.elapsed().as_secs_f64();
    let ms = |q: f64| latency.value_at_quantile(q) as f64 / 1000.0;
    Ok(Report {
        protocol: args.protocol,
        signal: args.signal,
        compression: args.compression,
        concurrency: args.concurrency,
        elapsed_seconds: elapsed,
        requests_sent: total.sent,
        requests_ok: total.ok,
        requests_partial: total.partial,
        requests_failed: total.failed,
        requests_retried: total.retried,
        failures: total.failures,
        items_sent: total.items_sent,
        items_acknowledged: total.items_acked,
        items_rejected: total.items_rejected,
        items_per_second: total.items_acked as f64 / elapsed,
        bytes_sent: total.bytes,
        latency_ms: BTreeMap::from([
            ("p50", ms(0.5)),
            ("p90", ms(0.9)),
            ("p99", ms(0.99)),
            ("max", latency.max() as f64 / 1000.0),
        ]),
    })
}

fn print_report(r: &Report) {
    println!(
        "loadgen: {:?} {:?} compression={:?} concurrency={} elapsed={:.2}s",
        r.protocol, r.signal, r.compression, r.concurrency, r.elapsed_seconds
    );
    println!(
        "requests: sent={} ok={} partial={} failed={} retries={}",
        r.requests_sent, r.requests_ok, r.requests_partial, r.requests_failed, r.requests_retried
    );
    for (why, n) in &r.failures {
        println!("  failed {n}: {why}");
    }
    println!(
        "items: sent={} acknowledged={} rejected={}",
        r.items_sent, r.items_acknowledged, r.items_rejected
    );
    println!(
        "throughput: {:.0} items/s acknowledged, {:.1} MB/s on the wire",
        r.items_per_second,
        r.bytes_sent as f64 / r.elapsed_seconds / 1e6
    );
    println!(
        "latency ms: p50={:.2} p90={:.2} p99={:.2} max={:.2}",
        r.latency_ms["p50"], r.latency_ms["p90"], r.latency_ms["p99"], r.latency_ms["max"]
    );
}

/// One connection to the receiver.
enum Sender {
    Grpc {
        client: tonic::client::Grpc<tonic::transport::Channel>,
        path: &'static str,
        authorization: Option<tonic::metadata::AsciiMetadataValue>,
    },
    Http {
        client: reqwest::Client,
        url: String,
        content_type: &'static str,
        encoding: Option<&'static str>,
        authorization: Option<String>,
    },
}

impl Sender {
    async fn connect(args: &LoadgenArgs) -> anyhow::Result<Self> {
        let base = args.endpoint.trim_end_matches('/');
        let bearer = args.token.as_ref().map(|t| format!("Bearer {}", t.trim()));
        Ok(match args.protocol {
            Protocol::Grpc => {
                let mut endpoint = tonic::transport::Endpoint::from_shared(base.to_string())
                    .context("invalid --endpoint")?
                    .tcp_nodelay(true);
                if base.starts_with("https://") {
                    endpoint = endpoint.tls_config(args.tls.tonic()?)?;
                }
                // With --retry, as an exporter does, a server not up yet (or
                // restarting) is a failed send to retry, not the end.
                let channel = if args.retry {
                    endpoint.connect_lazy()
                } else {
                    endpoint
                        .connect()
                        .await
                        .with_context(|| format!("connecting to {base}"))?
                };
                let mut client =
                    tonic::client::Grpc::new(channel).max_decoding_message_size(16 << 20);
                client = match args.compression {
                    Compression::None => client,
                    Compression::Gzip => client.send_compressed(CompressionEncoding::Gzip),
                    Compression::Zstd => client.send_compressed(CompressionEncoding::Zstd),
                };
                Self::Grpc {
                    client,
                    path: args.signal.grpc_path(),
                    authorization: bearer
                        .as_deref()
                        .map(str::parse)
                        .transpose()
                        .context("--token is not a valid header value")?,
                }
            }
            Protocol::HttpProtobuf | Protocol::HttpJson => Self::Http {
                client: args
                    .tls
                    .reqwest(
                        reqwest::Client::builder()
                            .pool_max_idle_per_host(1)
                            .tcp_nodelay(true),
                    )?
                    .build()?,
                url: format!("{base}/v1/{}", args.signal.path()),
                content_type: if args.protocol == Protocol::HttpJson {
                    "application/json"
                } else {
                    "application/x-protobuf"
                },
                encoding: match args.compression {
                    Compression::None => None,
                    Compression::Gzip => Some("gzip"),
                    Compression::Zstd => Some("zstd"),
                },
                authorization: bearer,
            },
        })
    }

    async fn send(&self, body: Bytes) -> Answer {
        match self {
            Self::Grpc {
                client,
                path,
                authorization,
            } => {
                let mut client = client.clone();
                if let Err(e) = client.ready().await {
                    return Answer::failed(format!("grpc connection: {e}"), true);
                }
                let path = http::uri::PathAndQuery::from_static(path);
                let mut request = tonic::Request::new(body);
                if let Some(value) = authorization {
                    request
                        .metadata_mut()
                        .insert("authorization", value.clone());
                }
                match client.unary(request, path, RawCodec).await {
                    Ok(response) => Answer::Ok {
                        rejected: response.into_inner().rejected(),
                    },
                    Err(status) => {
                        // RESOURCE_EXHAUSTED is retryable when the server
                        // says when (RetryInfo), as OTLP specifies.
                        let retry_info =
                            tonic_types::StatusExt::get_details_retry_info(&status).is_some();
                        Answer::failed(
                            format!("grpc {:?}", status.code()),
                            status.code() == tonic::Code::Unavailable
                                || (status.code() == tonic::Code::ResourceExhausted && retry_info),
                        )
                    }
                }
            }
            Self::Http {
                client,
                url,
                content_type,
                encoding,
                authorization,
            } => {
                let mut request = client
                    .post(url)
                    .header("content-type", *content_type)
                    .body(body);
                if let Some(value) = authorization {
                    request = request.header("authorization", value);
                }
                if let Some(encoding) = encoding {
                    request = request.header("content-encoding", *encoding);
                }
                match request.send().await {
                    Ok(response) if response.status().is_success() => {
                        let json = *content_type == "application/json";
                        match response.bytes().await {
                            Ok(bytes) => Answer::Ok {
                                rejected: if json {
                                    rejected_from_json(&bytes)
                                } else {
                                    ExportResponse::decode(bytes).map_or(0, |r| r.rejected())
                                },
                            },
                            Err(e) => Answer::failed(format!("reading response: {e}"), true),
                        }
                    }
                    Ok(response) => {
                        let status = response.status().as_u16();
                        Answer::failed(
                            format!("http {status}"),
                            matches!(status, 429 | 502 | 503 | 504),
                        )
                    }
                    Err(e) => Answer::failed(format!("http error: {e}"), true),
                }
            }
        }
    }
}

fn rejected_from_json(body: &[u8]) -> u64 {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        return 0;
    };
    let Some(partial) = value.get("partialSuccess") else {
        return 0;
    };
    ["rejectedSpans", "rejectedLogRecords", "rejectedDataPoints"]
        .iter()
        .find_map(|k| partial.get(*k))
        .and_then(|v| {
            v.as_u64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        })
        .unwrap_or(0)
}

/// The shape shared by the three `Export*ServiceResponse` messages.
#[derive(Clone, PartialEq, Message)]
struct ExportResponse {
    #[prost(message, optional, tag = "1")]
    partial_success: Option<PartialSuccess>,
}

#[derive(Clone, PartialEq, Message)]
struct PartialSuccess {
    #[prost(int64, tag = "1")]
    rejected: i64,
    #[prost(string, tag = "2")]
    error_message: String,
}

impl ExportResponse {
    fn rejected(&self) -> u64 {
        self.partial_success
            .as_ref()
            .map_or(0, |p| u64::try_from(p.rejected).unwrap_or(0))
    }
}

/// A gRPC codec that sends pre-encoded protobuf bytes as they are and decodes
/// the response as an export response.
#[derive(Debug, Clone, Copy, Default)]
struct RawCodec;

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = ExportResponse;
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
    type Item = ExportResponse;
    type Error = tonic::Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Self::Item>, Self::Error> {
        let bytes = src.copy_to_bytes(src.remaining());
        ExportResponse::decode(bytes)
            .map(Some)
            .map_err(|e| tonic::Status::internal(format!("decoding the response: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// loadgen's OTLP/JSON (the `opentelemetry-proto` serde encoding) must be
    /// what the server's decoder reads back, item for item.
    #[test]
    fn json_bodies_decode_to_the_same_requests() {
        let mut g = Generator::new(3, 1_700_000_000_000_000_000);
        let traces = g.spans(64);
        let body = encode(
            &ExportRequest::Traces(traces.clone()),
            Protocol::HttpJson,
            Compression::None,
        )
        .unwrap();
        assert_eq!(smolder_ingest::json::decode_traces(&body).unwrap(), traces);
        let logs = g.logs(32);
        let body = encode(
            &ExportRequest::Logs(logs.clone()),
            Protocol::HttpJson,
            Compression::None,
        )
        .unwrap();
        assert_eq!(smolder_ingest::json::decode_logs(&body).unwrap(), logs);
        let _ = g.requests(200, 10_000_000_000);
        let metrics = g.metrics();
        let body = encode(
            &ExportRequest::Metrics(metrics.clone()),
            Protocol::HttpJson,
            Compression::None,
        )
        .unwrap();
        assert_eq!(
            smolder_ingest::json::decode_metrics(&body).unwrap(),
            metrics
        );
    }

    /// Why the server has its own JSON decoder: the `opentelemetry-proto` serde
    /// support does not accept everything the OTLP specification asks receivers
    /// to accept. If this test starts failing, upstream has caught up.
    #[test]
    fn upstream_serde_is_stricter_than_the_specification() {
        use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest as M;
        use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest as T;
        let snake = r#"{"resource_spans":[{"scope_spans":[{"spans":[{"trace_id":"5b8efff798038103d269b633813fc60c","span_id":"eee19b7ec3c1b174"}]}]}]}"#;
        let upstream = serde_json::from_str::<T>(snake);
        assert!(
            upstream.map_or(true, |r| r.resource_spans.is_empty()),
            "upstream now reads snake_case keys"
        );
        let enum_name = r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","kind":"SPAN_KIND_SERVER"}]}]}]}"#;
        assert!(
            serde_json::from_str::<T>(enum_name).is_err(),
            "upstream now reads enum names"
        );
        let _ = serde_json::from_str::<M>("{}");
    }
}

//! Configuration of `smolder serve` and `smolder demo`.
//!
//! Every option can be set in a TOML file (`--config`), by an environment
//! variable, or by a flag; flags win over environment variables, which win over
//! the file, which wins over the defaults. `smolder.example.toml` at the
//! repository root lists every option with its default (a test keeps it in step
//! with this file).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use bytesize::ByteSize;
use clap::Args;
use serde::Deserialize;
use smolder_storage::SyncPolicy;

/// Server options given on the command line or in the environment.
#[derive(Debug, Clone, Default, Args)]
pub(crate) struct ServeArgs {
    /// TOML configuration file; flags and environment variables override it.
    #[arg(long, env = "SMOLDER_CONFIG", value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,

    /// Data directory; holds the write-ahead log (`wal/`) and the Parquet
    /// files with their manifest (`parquet/`) [default: smolder-data]
    #[arg(long, env = "SMOLDER_DATA_DIR", value_name = "DIR")]
    pub(crate) data_dir: Option<PathBuf>,

    /// Address of the OTLP/gRPC receiver; port 0 picks a free port
    /// [default: 0.0.0.0:4317]
    #[arg(long, env = "SMOLDER_OTLP_GRPC_ADDR", value_name = "ADDR")]
    pub(crate) otlp_grpc_addr: Option<SocketAddr>,

    /// Address of the OTLP/HTTP receiver [default: 0.0.0.0:4318]
    #[arg(long, env = "SMOLDER_OTLP_HTTP_ADDR", value_name = "ADDR")]
    pub(crate) otlp_http_addr: Option<SocketAddr>,

    /// Address of the HTTP API (SQL, metrics, health) [default: 127.0.0.1:8080]
    #[arg(long, env = "SMOLDER_HTTP_ADDR", value_name = "ADDR")]
    pub(crate) http_addr: Option<SocketAddr>,

    /// Largest accepted OTLP request body after decompression; larger requests
    /// get 413 / RESOURCE_EXHAUSTED [default: 64 MiB]
    #[arg(long, env = "SMOLDER_MAX_REQUEST_SIZE", value_name = "BYTES")]
    pub(crate) max_request_size: Option<ByteSize>,

    /// Memory for buffered telemetry (Arrow data); when it is full, exports get
    /// 503 / UNAVAILABLE with a retry delay [default: 1 GiB]
    #[arg(long, env = "SMOLDER_BUFFER_LIMIT", value_name = "BYTES")]
    pub(crate) buffer_limit: Option<ByteSize>,

    /// Memory OTLP requests being decoded and converted may take at once, by
    /// the estimate of their decoded size; more load gets 503 / UNAVAILABLE
    /// with a retry delay, a single larger request 413 [default: 256 MiB]
    #[arg(long, env = "SMOLDER_MAX_INFLIGHT_BYTES", value_name = "BYTES")]
    pub(crate) max_inflight_bytes: Option<ByteSize>,

    /// When the write-ahead log is forced to disk: "always" (fsync before each
    /// acknowledgement, shared by concurrent requests), an interval such as
    /// "100ms" (acknowledge once written, fsync periodically), or "off"
    /// [default: always]
    #[arg(long, env = "SMOLDER_WAL_SYNC", value_name = "POLICY")]
    pub(crate) wal_sync: Option<SyncPolicy>,

    /// Keep a write-ahead log; with `false`, data not yet flushed to Parquet
    /// is lost on a crash [default: true]
    #[arg(long, env = "SMOLDER_WAL_ENABLED", value_name = "BOOL")]
    pub(crate) wal_enabled: Option<bool>,

    /// Flush the in-memory buffer to Parquet at least this often (and
    /// whenever it is half full) [default: 1m]
    #[arg(long, env = "SMOLDER_FLUSH_INTERVAL", value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub(crate) flush_interval: Option<Duration>,

    /// Small Parquet files of an hour are merged up to this size
    /// [default: 256 MiB]
    #[arg(long, env = "SMOLDER_COMPACTION_TARGET_SIZE", value_name = "BYTES")]
    pub(crate) compaction_target_size: Option<ByteSize>,

    /// How long spans are kept; older hours are deleted and older spans are
    /// rejected at ingest [default: 7d]
    #[arg(long, env = "SMOLDER_RETENTION_TRACES", value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub(crate) retention_traces: Option<Duration>,

    /// How long log records are kept [default: 7d]
    #[arg(long, env = "SMOLDER_RETENTION_LOGS", value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub(crate) retention_logs: Option<Duration>,

    /// How long metric points are kept [default: 30d]
    #[arg(long, env = "SMOLDER_RETENTION_METRICS", value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub(crate) retention_metrics: Option<Duration>,

    /// Items timestamped further than this in the future are rejected as
    /// partial success [default: 1h]
    #[arg(long, env = "SMOLDER_MAX_FUTURE", value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub(crate) max_future: Option<Duration>,

    /// Retry delay suggested to clients under backpressure [default: 1s]
    #[arg(long, env = "SMOLDER_RETRY_AFTER", value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub(crate) retry_after: Option<Duration>,

    /// Most rows a SQL query returns; the answer says when it was truncated
    /// [default: 10000]
    #[arg(long, env = "SMOLDER_QUERY_MAX_ROWS", value_name = "ROWS")]
    pub(crate) query_max_rows: Option<usize>,

    /// Time a SQL query may run before it is cancelled [default: 30s]
    #[arg(long, env = "SMOLDER_QUERY_TIMEOUT", value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub(crate) query_timeout: Option<Duration>,

    /// Memory a SQL query's operators may use (sorts, joins, aggregations)
    /// [default: 1 GiB]
    #[arg(long, env = "SMOLDER_QUERY_MEMORY_LIMIT", value_name = "BYTES")]
    pub(crate) query_memory_limit: Option<ByteSize>,

    /// Memory queries, OTLP requests and SLO rollups may hold together;
    /// beyond it requests get 503 / UNAVAILABLE or a query error, never an
    /// out-of-memory crash [default: 2 GiB]
    #[arg(long, env = "SMOLDER_MEMORY_BUDGET", value_name = "BYTES")]
    pub(crate) memory_budget: Option<ByteSize>,

    /// Connections each listener keeps open at most; more are closed as
    /// they arrive [default: 4096]
    #[arg(long, env = "SMOLDER_MAX_CONNECTIONS", value_name = "CONNECTIONS")]
    pub(crate) max_connections: Option<usize>,

    /// A connection with nothing read or written for this long is closed
    /// [default: 2m]
    #[arg(long, env = "SMOLDER_IDLE_TIMEOUT", value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub(crate) idle_timeout: Option<Duration>,

    /// Log format: `text` or `json` [default: text]
    #[arg(long, env = "SMOLDER_LOG_FORMAT", value_name = "FORMAT")]
    pub(crate) log_format: Option<LogFormat>,

    /// Directory of SLO definitions (OpenSLO or Sloth YAML), reloaded when a
    /// file changes [default: none]
    #[arg(long, env = "SMOLDER_SLO_DIR", value_name = "DIR")]
    pub(crate) slo_dir: Option<PathBuf>,

    /// Time between SLO evaluations (rollup update + evaluation); down to 1s
    /// [default: 10s]
    #[arg(long, env = "SMOLDER_SLO_INTERVAL", value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub(crate) slo_interval: Option<Duration>,

    /// Width of an SLO rollup bucket [default: 1m]
    #[arg(long, env = "SMOLDER_SLO_STEP", value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub(crate) slo_step: Option<Duration>,

    /// How late telemetry may arrive and still count in its SLO bucket
    /// [default: 2m]
    #[arg(long, env = "SMOLDER_SLO_LATENESS", value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub(crate) slo_lateness: Option<Duration>,

    /// Low-traffic guard: events a window needs before its burn rate can fire
    /// an alert condition; SLOs override it with the annotation
    /// `smolder.dev/min-events` [default: 0]
    #[arg(long, env = "SMOLDER_SLO_MIN_EVENTS", value_name = "EVENTS")]
    pub(crate) slo_min_events: Option<f64>,

    /// Groups tracked per SLO at most (`groupBy`); SLOs override it with
    /// `maxGroups` [default: 100]
    #[arg(long, env = "SMOLDER_SLO_MAX_GROUPS", value_name = "GROUPS")]
    pub(crate) slo_max_groups: Option<usize>,

    /// How far back a counter SLI looks for the previous point of a series;
    /// longer than the exporters' interval [default: 10m]
    #[arg(long, env = "SMOLDER_SLO_COUNTER_LOOKBACK", value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub(crate) slo_counter_lookback: Option<Duration>,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub(crate) enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// The configuration file. Every field is optional; see `smolder.example.toml`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileConfig {
    /// Data directory.
    pub(crate) data_dir: Option<PathBuf>,
    /// Listener addresses.
    #[serde(default)]
    pub(crate) listen: ListenSection,
    /// Limits of the whole server.
    #[serde(default)]
    pub(crate) server: ServerSection,
    /// OTLP ingest limits.
    #[serde(default)]
    pub(crate) ingest: IngestSection,
    /// Write-ahead log.
    #[serde(default)]
    pub(crate) wal: WalSection,
    /// Parquet storage.
    #[serde(default)]
    pub(crate) storage: StorageSection,
    /// Retention per signal.
    #[serde(default)]
    pub(crate) retention: RetentionSection,
    /// SQL engine limits.
    #[serde(default)]
    pub(crate) query: QuerySection,
    /// Logging.
    #[serde(default)]
    pub(crate) log: LogSection,
    #[serde(default)]
    pub(crate) slo: SloSection,
    /// Alerting: receivers, routes, inhibition, maintenance windows,
    /// scaling targets, delivery. Reloaded on SIGHUP and `POST /-/reload`.
    #[serde(default)]
    pub(crate) alerting: smolder_alerting::AlertingConfig,
}

/// `[slo]`: the SLO engine.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub(crate) struct SloSection {
    /// Directory of SLO definitions.
    pub(crate) dir: Option<PathBuf>,
    /// Time between evaluations.
    #[serde(default, with = "humantime_serde")]
    pub(crate) interval: Option<Duration>,
    /// Rollup bucket width.
    #[serde(default, with = "humantime_serde")]
    pub(crate) step: Option<Duration>,
    /// Allowed lateness of telemetry.
    #[serde(default, with = "humantime_serde")]
    pub(crate) lateness: Option<Duration>,
    /// Low-traffic guard.
    pub(crate) min_events: Option<f64>,
    /// Groups per SLO.
    pub(crate) max_groups: Option<usize>,
    /// Counter lookback.
    #[serde(default, with = "humantime_serde")]
    pub(crate) counter_lookback: Option<Duration>,
}

/// `[listen]`: listener addresses.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListenSection {
    /// OTLP/gRPC receiver.
    pub(crate) otlp_grpc: Option<SocketAddr>,
    /// OTLP/HTTP receiver.
    pub(crate) otlp_http: Option<SocketAddr>,
    /// HTTP API.
    pub(crate) http: Option<SocketAddr>,
}

/// `[server]`: limits of the whole server.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub(crate) struct ServerSection {
    /// Memory budget of queries, OTLP requests and SLO rollups.
    pub(crate) memory_budget: Option<ByteSize>,
    /// Connections per listener.
    pub(crate) max_connections: Option<usize>,
    /// Idle connection timeout.
    #[serde(default, with = "humantime_serde")]
    pub(crate) idle_timeout: Option<Duration>,
    /// Time to send a request's headers.
    #[serde(default, with = "humantime_serde")]
    pub(crate) header_timeout: Option<Duration>,
    /// Concurrent HTTP/2 streams per connection.
    pub(crate) max_streams: Option<u32>,
}

/// `[ingest]`: OTLP ingest limits.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub(crate) struct IngestSection {
    /// Largest request body after decompression.
    pub(crate) max_request_size: Option<ByteSize>,
    /// Memory for buffered telemetry.
    pub(crate) buffer_limit: Option<ByteSize>,
    /// Bytes of requests being decoded and converted at once.
    pub(crate) max_inflight_bytes: Option<ByteSize>,
    /// Retry delay suggested under backpressure.
    #[serde(default, with = "humantime_serde")]
    pub(crate) retry_after: Option<Duration>,
    /// How far in the future items may be.
    #[serde(default, with = "humantime_serde")]
    pub(crate) max_future: Option<Duration>,
}

/// `[storage]`: Parquet files.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub(crate) struct StorageSection {
    /// Longest time between flushes of the buffer.
    #[serde(default, with = "humantime_serde")]
    pub(crate) flush_interval: Option<Duration>,
    /// Size small files are merged up to.
    pub(crate) compaction_target_size: Option<ByteSize>,
}

/// `[retention]`: how long each signal is kept.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub(crate) struct RetentionSection {
    /// Spans.
    #[serde(default, with = "humantime_serde")]
    pub(crate) traces: Option<Duration>,
    /// Log records.
    #[serde(default, with = "humantime_serde")]
    pub(crate) logs: Option<Duration>,
    /// Metric points.
    #[serde(default, with = "humantime_serde")]
    pub(crate) metrics: Option<Duration>,
}

/// `[wal]`: write-ahead log.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub(crate) struct WalSection {
    /// Whether to keep a log at all.
    pub(crate) enabled: Option<bool>,
    /// `always`, `off` or an fsync interval.
    #[serde(default, deserialize_with = "deserialize_sync_policy")]
    pub(crate) sync: Option<SyncPolicy>,
}

fn deserialize_sync_policy<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<SyncPolicy>, D::Error> {
    Option::<String>::deserialize(deserializer)?
        .map(|s| s.parse().map_err(serde::de::Error::custom))
        .transpose()
}

/// `[query]`: SQL engine limits.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub(crate) struct QuerySection {
    /// Most rows returned.
    pub(crate) max_rows: Option<usize>,
    /// Time a query may run.
    #[serde(default, with = "humantime_serde")]
    pub(crate) timeout: Option<Duration>,
    /// Memory a query may use.
    pub(crate) memory_limit: Option<ByteSize>,
}

/// `[log]`: logging.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub(crate) struct LogSection {
    /// `text` or `json`.
    pub(crate) format: Option<LogFormat>,
}

/// The resolved configuration the server runs with.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Config {
    /// The configuration file, re-read on reload.
    pub(crate) config_path: Option<PathBuf>,
    /// The `[alerting]` section.
    pub(crate) alerting: smolder_alerting::AlertingConfig,
    /// Data directory.
    pub(crate) data_dir: PathBuf,
    /// OTLP/gRPC listener.
    pub(crate) otlp_grpc_addr: SocketAddr,
    /// OTLP/HTTP listener.
    pub(crate) otlp_http_addr: SocketAddr,
    /// API listener.
    pub(crate) http_addr: SocketAddr,
    /// Request body cap after decompression, in bytes.
    pub(crate) max_request_size: u64,
    /// Buffer memory limit, in bytes.
    pub(crate) buffer_limit: u64,
    /// In-flight request budget, in decompressed bytes.
    pub(crate) max_inflight_bytes: u64,
    /// Retry delay under backpressure.
    pub(crate) retry_after: Duration,
    /// Process-wide memory budget, in bytes.
    pub(crate) memory_budget: u64,
    /// Connections per listener.
    pub(crate) max_connections: usize,
    /// Idle connection timeout.
    pub(crate) idle_timeout: Duration,
    /// Time to send a request's headers (HTTP/1).
    pub(crate) header_timeout: Duration,
    /// Concurrent HTTP/2 streams per connection.
    pub(crate) max_streams: u32,
    /// Whether the WAL is kept.
    pub(crate) wal_enabled: bool,
    /// WAL fsync policy.
    pub(crate) wal_sync: SyncPolicy,
    /// Longest time between flushes.
    pub(crate) flush_interval: Duration,
    /// Compaction output size, in bytes.
    pub(crate) compaction_target_size: u64,
    /// Retention of spans.
    pub(crate) retention_traces: Duration,
    /// Retention of logs.
    pub(crate) retention_logs: Duration,
    /// Retention of metrics.
    pub(crate) retention_metrics: Duration,
    /// How far in the future items may be.
    pub(crate) max_future: Duration,
    /// SQL row limit.
    pub(crate) query_max_rows: usize,
    /// SQL timeout.
    pub(crate) query_timeout: Duration,
    /// SQL memory limit, in bytes.
    pub(crate) query_memory_limit: u64,
    /// Log format.
    pub(crate) log_format: LogFormat,
    /// SLO directory.
    pub(crate) slo_dir: Option<PathBuf>,
    /// SLO evaluation interval.
    pub(crate) slo_interval: Duration,
    /// SLO rollup bucket width.
    pub(crate) slo_step: Duration,
    /// Allowed lateness for SLO rollups.
    pub(crate) slo_lateness: Duration,
    /// Low-traffic guard.
    pub(crate) slo_min_events: f64,
    /// Groups per SLO.
    pub(crate) slo_max_groups: usize,
    /// Counter lookback.
    pub(crate) slo_counter_lookback: Duration,
}

impl Config {
    /// The limits every listener applies (listen.rs).
    pub(crate) fn listener_limits(&self) -> crate::listen::ListenerLimits {
        crate::listen::ListenerLimits {
            max_connections: self.max_connections,
            idle_timeout: self.idle_timeout,
            header_timeout: self.header_timeout,
            max_streams: self.max_streams,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            config_path: None,
            alerting: smolder_alerting::AlertingConfig::default(),
            data_dir: PathBuf::from("smolder-data"),
            otlp_grpc_addr: "0.0.0.0:4317".parse().expect("valid address"),
            otlp_http_addr: "0.0.0.0:4318".parse().expect("valid address"),
            http_addr: "127.0.0.1:8080".parse().expect("valid address"),
            max_request_size: 64 << 20,
            buffer_limit: 1 << 30,
            max_inflight_bytes: 256 << 20,
            retry_after: Duration::from_secs(1),
            memory_budget: 2 << 30,
            max_connections: 4096,
            idle_timeout: Duration::from_secs(120),
            header_timeout: Duration::from_secs(10),
            max_streams: 256,
            wal_enabled: true,
            wal_sync: SyncPolicy::Always,
            flush_interval: Duration::from_secs(60),
            compaction_target_size: 256 << 20,
            retention_traces: Duration::from_secs(7 * 86_400),
            retention_logs: Duration::from_secs(7 * 86_400),
            retention_metrics: Duration::from_secs(30 * 86_400),
            max_future: Duration::from_secs(3600),
            query_max_rows: 10_000,
            query_timeout: Duration::from_secs(30),
            query_memory_limit: 1 << 30,
            log_format: LogFormat::Text,
            slo_dir: None,
            slo_interval: Duration::from_secs(10),
            slo_step: Duration::from_secs(60),
            slo_lateness: Duration::from_secs(120),
            slo_min_events: 0.0,
            slo_max_groups: 100,
            slo_counter_lookback: Duration::from_secs(600),
        }
    }
}

impl FileConfig {
    /// Reads and parses a configuration file.
    pub(crate) fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading configuration file {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("in configuration file {}", path.display()))
    }

    /// Parses configuration text; errors name the offending key.
    pub(crate) fn parse(text: &str) -> anyhow::Result<Self> {
        Ok(toml::from_str(text)?)
    }
}

impl Config {
    /// Resolves flags and environment (`args`) over the file over the defaults.
    pub(crate) fn resolve(args: &ServeArgs) -> anyhow::Result<Self> {
        let file = match &args.config {
            Some(path) => FileConfig::load(path)?,
            None => FileConfig::default(),
        };
        let mut config = Self::merge(args, &file);
        config.config_path.clone_from(&args.config);
        config.validate()?;
        Ok(config)
    }

    fn merge(args: &ServeArgs, file: &FileConfig) -> Self {
        let d = Self::default();
        Self {
            config_path: None,
            alerting: file.alerting.clone(),
            data_dir: args
                .data_dir
                .clone()
                .or_else(|| file.data_dir.clone())
                .unwrap_or(d.data_dir),
            otlp_grpc_addr: args
                .otlp_grpc_addr
                .or(file.listen.otlp_grpc)
                .unwrap_or(d.otlp_grpc_addr),
            otlp_http_addr: args
                .otlp_http_addr
                .or(file.listen.otlp_http)
                .unwrap_or(d.otlp_http_addr),
            http_addr: args.http_addr.or(file.listen.http).unwrap_or(d.http_addr),
            max_request_size: args
                .max_request_size
                .or(file.ingest.max_request_size)
                .map_or(d.max_request_size, |b| b.as_u64()),
            buffer_limit: args
                .buffer_limit
                .or(file.ingest.buffer_limit)
                .map_or(d.buffer_limit, |b| b.as_u64()),
            max_inflight_bytes: args
                .max_inflight_bytes
                .or(file.ingest.max_inflight_bytes)
                .map_or(d.max_inflight_bytes, |b| b.as_u64()),
            retry_after: args
                .retry_after
                .or(file.ingest.retry_after)
                .unwrap_or(d.retry_after),
            memory_budget: args
                .memory_budget
                .or(file.server.memory_budget)
                .map_or(d.memory_budget, |b| b.as_u64()),
            max_connections: args
                .max_connections
                .or(file.server.max_connections)
                .unwrap_or(d.max_connections),
            idle_timeout: args
                .idle_timeout
                .or(file.server.idle_timeout)
                .unwrap_or(d.idle_timeout),
            header_timeout: file.server.header_timeout.unwrap_or(d.header_timeout),
            max_streams: file.server.max_streams.unwrap_or(d.max_streams),
            wal_enabled: args
                .wal_enabled
                .or(file.wal.enabled)
                .unwrap_or(d.wal_enabled),
            wal_sync: args.wal_sync.or(file.wal.sync).unwrap_or(d.wal_sync),
            flush_interval: args
                .flush_interval
                .or(file.storage.flush_interval)
                .unwrap_or(d.flush_interval),
            compaction_target_size: args
                .compaction_target_size
                .or(file.storage.compaction_target_size)
                .map_or(d.compaction_target_size, |b| b.as_u64()),
            retention_traces: args
                .retention_traces
                .or(file.retention.traces)
                .unwrap_or(d.retention_traces),
            retention_logs: args
                .retention_logs
                .or(file.retention.logs)
                .unwrap_or(d.retention_logs),
            retention_metrics: args
                .retention_metrics
                .or(file.retention.metrics)
                .unwrap_or(d.retention_metrics),
            max_future: args
                .max_future
                .or(file.ingest.max_future)
                .unwrap_or(d.max_future),
            query_max_rows: args
                .query_max_rows
                .or(file.query.max_rows)
                .unwrap_or(d.query_max_rows),
            query_timeout: args
                .query_timeout
                .or(file.query.timeout)
                .unwrap_or(d.query_timeout),
            query_memory_limit: args
                .query_memory_limit
                .or(file.query.memory_limit)
                .map_or(d.query_memory_limit, |b| b.as_u64()),
            log_format: args.log_format.or(file.log.format).unwrap_or(d.log_format),
            slo_dir: args.slo_dir.clone().or_else(|| file.slo.dir.clone()),
            slo_interval: args
                .slo_interval
                .or(file.slo.interval)
                .unwrap_or(d.slo_interval),
            slo_step: args.slo_step.or(file.slo.step).unwrap_or(d.slo_step),
            slo_lateness: args
                .slo_lateness
                .or(file.slo.lateness)
                .unwrap_or(d.slo_lateness),
            slo_min_events: args
                .slo_min_events
                .or(file.slo.min_events)
                .unwrap_or(d.slo_min_events),
            slo_max_groups: args
                .slo_max_groups
                .or(file.slo.max_groups)
                .unwrap_or(d.slo_max_groups),
            slo_counter_lookback: args
                .slo_counter_lookback
                .or(file.slo.counter_lookback)
                .unwrap_or(d.slo_counter_lookback),
        }
    }

    fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.max_request_size > 0,
            "ingest.max_request_size must be positive"
        );
        anyhow::ensure!(
            self.buffer_limit > 0,
            "ingest.buffer_limit must be positive"
        );
        anyhow::ensure!(
            self.max_inflight_bytes > 0,
            "ingest.max_inflight_bytes must be positive"
        );
        anyhow::ensure!(self.query_max_rows > 0, "query.max_rows must be positive");
        anyhow::ensure!(
            self.memory_budget >= self.max_inflight_bytes,
            "server.memory_budget ({}) must be at least ingest.max_inflight_bytes ({})",
            ByteSize(self.memory_budget),
            ByteSize(self.max_inflight_bytes)
        );
        anyhow::ensure!(
            (1..=1 << 20).contains(&self.max_connections),
            "server.max_connections must be between 1 and 1048576"
        );
        anyhow::ensure!(
            self.idle_timeout > self.query_timeout + Duration::from_secs(30),
            "server.idle_timeout ({}) must be longer than query.timeout + 30s, the longest an \
             API request may take",
            humantime::format_duration(self.idle_timeout)
        );
        anyhow::ensure!(
            !self.header_timeout.is_zero(),
            "server.header_timeout must be positive"
        );
        anyhow::ensure!(self.max_streams > 0, "server.max_streams must be positive");
        anyhow::ensure!(
            !self.flush_interval.is_zero(),
            "storage.flush_interval must be positive"
        );
        for (name, retention) in [
            ("retention.traces", self.retention_traces),
            ("retention.logs", self.retention_logs),
            ("retention.metrics", self.retention_metrics),
        ] {
            anyhow::ensure!(
                retention >= Duration::from_secs(3600),
                "{name} must be at least 1h (data is deleted by the hour)"
            );
        }
        anyhow::ensure!(
            !self.query_timeout.is_zero(),
            "query.timeout must be positive"
        );
        anyhow::ensure!(
            self.slo_interval >= Duration::from_secs(1),
            "slo.interval must be at least 1s"
        );
        anyhow::ensure!(
            self.slo_step >= Duration::from_secs(1) && self.slo_step.subsec_nanos() == 0,
            "slo.step must be whole seconds, at least 1s"
        );
        anyhow::ensure!(
            self.slo_min_events >= 0.0,
            "slo.min_events must not be negative"
        );
        anyhow::ensure!(self.slo_max_groups > 0, "slo.max_groups must be positive");
        check_alerting(&self.alerting)
    }
}

/// Checks the `[alerting]` section; the error lists every problem with its
/// field.
fn check_alerting(alerting: &smolder_alerting::AlertingConfig) -> anyhow::Result<()> {
    match alerting.validate() {
        Ok(()) => Ok(()),
        Err(problems) => Err(smolder_alerting::Error::Config(problems).into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_config_parses_and_states_the_defaults() {
        let text = include_str!("../../smolder.example.toml");
        let file = FileConfig::parse(text).unwrap();
        assert_eq!(
            Config::merge(&ServeArgs::default(), &file),
            Config::default()
        );
        // Every option is present in the example, not left to the default.
        assert!(file.data_dir.is_some());
        assert!(
            file.listen.otlp_grpc.is_some()
                && file.listen.otlp_http.is_some()
                && file.listen.http.is_some()
        );
        assert!(file.ingest.max_request_size.is_some() && file.ingest.buffer_limit.is_some());
        assert!(file.ingest.retry_after.is_some() && file.ingest.max_inflight_bytes.is_some());
        assert!(file.wal.sync.is_some() && file.wal.enabled.is_some());
        assert!(file.ingest.max_future.is_some());
        assert!(
            file.storage.flush_interval.is_some() && file.storage.compaction_target_size.is_some()
        );
        assert!(
            file.retention.traces.is_some()
                && file.retention.logs.is_some()
                && file.retention.metrics.is_some()
        );
        assert!(
            file.query.max_rows.is_some()
                && file.query.timeout.is_some()
                && file.query.memory_limit.is_some()
        );
        assert!(file.log.format.is_some());
        let server = &file.server;
        assert!(server.memory_budget.is_some() && server.max_connections.is_some());
        assert!(server.idle_timeout.is_some() && server.header_timeout.is_some());
        assert!(server.max_streams.is_some());
        let slo = &file.slo;
        assert!(slo.interval.is_some() && slo.step.is_some() && slo.lateness.is_some());
        assert!(slo.min_events.is_some() && slo.max_groups.is_some());
        assert!(slo.counter_lookback.is_some());
    }

    #[test]
    fn flags_win_over_the_file() {
        let file =
            FileConfig::parse("[listen]\nhttp = \"127.0.0.1:9000\"\n[query]\nmax_rows = 5\n")
                .unwrap();
        let args = ServeArgs {
            query_max_rows: Some(7),
            ..Default::default()
        };
        let config = Config::merge(&args, &file);
        assert_eq!(config.http_addr.port(), 9000);
        assert_eq!(config.query_max_rows, 7);
    }

    #[test]
    fn unknown_keys_are_refused_with_their_name() {
        let err = FileConfig::parse("[ingest]\nbufer_limit = \"1GiB\"\n").unwrap_err();
        assert!(format!("{err:#}").contains("bufer_limit"), "{err:#}");
        let err = FileConfig::parse("[query]\ntimeout = \"soon\"\n").unwrap_err();
        assert!(format!("{err:#}").contains("timeout"), "{err:#}");
    }

    #[test]
    fn limits_that_contradict_each_other_are_refused_with_their_names() {
        let file = FileConfig::parse("[server]\nmemory_budget = \"1 MiB\"\n").unwrap();
        let err = Config::merge(&ServeArgs::default(), &file)
            .validate()
            .unwrap_err();
        assert!(
            format!("{err:#}").contains("server.memory_budget"),
            "{err:#}"
        );
        let file = FileConfig::parse("[server]\nidle_timeout = \"10s\"\n").unwrap();
        let err = Config::merge(&ServeArgs::default(), &file)
            .validate()
            .unwrap_err();
        assert!(
            format!("{err:#}").contains("server.idle_timeout"),
            "{err:#}"
        );
    }
}

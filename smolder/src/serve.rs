//! `smolder serve`: wires ingest, storage, the query engine and the SLO
//! engine together, runs the three listeners, the SLO ticks and the storage
//! maintenance (flush to Parquet, compaction, retention) until shutdown, and
//! flushes the buffer on the way out.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use smolder_common::memory::{Consumer, MemoryBudget};
use smolder_common::{Table, TableSource};
use smolder_ingest::{IngestMetrics, Ingestor, OtlpGrpc};
use smolder_query::QueryEngine;
use smolder_slo::SloEngine;
use smolder_storage::{CompactionOptions, Store, StoreOptions, SystemClock};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::config::{Config, Layers};
use crate::{http_layer, listen, supervise};

/// Bytes of an API request body (SQL, an SLO's YAML, a silence).
const API_MAX_BODY_BYTES: usize = 2 << 20;
/// API requests handled at once; more wait for a slot.
const API_CONCURRENCY: usize = 256;

/// The bound addresses of a running server.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Addrs {
    /// OTLP/gRPC.
    pub(crate) otlp_grpc: SocketAddr,
    /// OTLP/HTTP.
    pub(crate) otlp_http: SocketAddr,
    /// HTTP API.
    pub(crate) http: SocketAddr,
}

/// A server whose listeners are bound and serving.
pub(crate) struct Running {
    /// Where it listens.
    pub(crate) addrs: Addrs,
    shutdown: watch::Sender<bool>,
    tasks: JoinSet<anyhow::Result<()>>,
    store: Arc<Store>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct TableLabel {
    table: &'static str,
}

/// Gauges read at scrape time.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ConsumerLabel {
    consumer: &'static str,
}

#[derive(Debug, Default)]
struct StorageGauges {
    bytes: Gauge,
    limit: Gauge,
    rows: Family<TableLabel, Gauge>,
    inflight: Gauge,
    memory_budget: Gauge,
    memory_used: Family<ConsumerLabel, Gauge>,
    files: Family<TableLabel, Gauge>,
    file_bytes: Family<TableLabel, Gauge>,
    persisted_through: Gauge,
    flushes: Gauge,
    failures: Gauge,
    files_compacted: Gauge,
    files_expired: Gauge,
    last_flush: Gauge,
}

#[derive(Clone)]
struct MetricsState {
    registry: Arc<Registry>,
    store: Arc<Store>,
    ingestor: Arc<Ingestor>,
    gauges: Arc<StorageGauges>,
    /// For the status page: where data lives and how it is kept.
    config: Arc<Config>,
    /// Panics caught, with the query runtime's added at each scrape.
    panics: Arc<supervise::Panics>,
    query: Arc<QueryEngine>,
    started: std::time::Instant,
}

/// Binds the listeners, prints `listening <name>=<addr>` for each on stdout, and
/// starts serving.
pub(crate) async fn start(config: &Config, layers: &Layers) -> anyhow::Result<Running> {
    let bind = |addr: SocketAddr, what: &'static str| async move {
        TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding the {what} listener to {addr}"))
    };
    let grpc_listener = bind(config.listen.otlp_grpc, "OTLP/gRPC").await?;
    let otlp_http_listener = bind(config.listen.otlp_http, "OTLP/HTTP").await?;
    let http_listener = bind(config.listen.http, "HTTP API").await?;
    let addrs = Addrs {
        otlp_grpc: grpc_listener.local_addr()?,
        otlp_http: otlp_http_listener.local_addr()?,
        http: http_listener.local_addr()?,
    };

    let mut registry = Registry::with_prefix("smolder");
    let budget = MemoryBudget::new(
        usize::try_from(config.server.memory_budget.as_u64()).unwrap_or(usize::MAX),
    );
    let limits = config.ingest.limits();
    let options = StoreOptions {
        buffer_limit: usize::try_from(config.ingest.buffer_limit.as_u64()).unwrap_or(usize::MAX),
        wal: config.wal.options(),
        flush_interval: config.storage.flush_interval,
        retention: config.retention.by_table(),
        max_future: config.ingest.max_future,
        compaction: CompactionOptions {
            target_file_bytes: config.storage.compaction_target_size.as_u64(),
            ..CompactionOptions::default()
        },
        // Files replaced by compaction or retention outlive any query that
        // may still read them.
        deletion_delay: (config.query.timeout * 2).max(Duration::from_secs(120)),
        ..StoreOptions::default()
    };
    let (store, records) = Store::open(&config.data_dir, options, Arc::new(SystemClock))
        .await
        .with_context(|| format!("opening the data directory {}", config.data_dir.display()))?;
    let store = Arc::new(store);
    let ingestor = Ingestor::with_budget(
        Arc::clone(&store),
        IngestMetrics::new(&mut registry),
        limits,
        Arc::clone(&budget),
    );
    let replayed = ingestor
        .replay(&records)
        .context("replaying the write-ahead log")?;
    if !records.is_empty() {
        tracing::info!(
            records = records.len(),
            items = replayed,
            buffer_bytes = store.buffer().used(),
            "Replayed the write-ahead log."
        );
    }
    drop(records);
    let ingestor = Arc::new(ingestor);
    let gauges = Arc::new(StorageGauges::default());
    registry.register(
        "buffer_bytes",
        "Arrow memory held by the in-memory buffer",
        gauges.bytes.clone(),
    );
    registry.register(
        "buffer_limit_bytes",
        "Configured limit of the in-memory buffer",
        gauges.limit.clone(),
    );
    registry.register(
        "buffer_rows",
        "Rows held in the in-memory buffer, by table",
        gauges.rows.clone(),
    );
    registry.register(
        "ingest_inflight_bytes",
        "Decompressed bytes of OTLP requests being decoded and converted",
        gauges.inflight.clone(),
    );
    registry.register(
        "memory_budget_bytes",
        "The process-wide memory budget queries, OTLP requests and SLO rollups draw from",
        gauges.memory_budget.clone(),
    );
    registry.register(
        "memory_reserved_bytes",
        "Bytes of the memory budget held, by consumer",
        gauges.memory_used.clone(),
    );
    registry.register(
        "storage_files",
        "Parquet files listed in the manifest, by table",
        gauges.files.clone(),
    );
    registry.register(
        "storage_file_bytes",
        "Bytes of Parquet files listed in the manifest, by table",
        gauges.file_bytes.clone(),
    );
    registry.register(
        "storage_persisted_through",
        "Sequence number of the last write-ahead-log record persisted to Parquet",
        gauges.persisted_through.clone(),
    );
    registry.register(
        "storage_flushes",
        "Flushes of the buffer to Parquet since start",
        gauges.flushes.clone(),
    );
    registry.register(
        "storage_failures",
        "Failed flushes, compactions and retention passes since start",
        gauges.failures.clone(),
    );
    registry.register(
        "storage_files_compacted",
        "Files merged away by compaction since start",
        gauges.files_compacted.clone(),
    );
    registry.register(
        "storage_files_expired",
        "Files deleted by retention since start",
        gauges.files_expired.clone(),
    );
    registry.register(
        "storage_last_flush_timestamp_seconds",
        "Time of the last successful flush (Unix seconds)",
        gauges.last_flush.clone(),
    );
    let build_info = Family::<Vec<(String, String)>, Gauge>::default();
    build_info
        .get_or_create(&vec![(
            "version".to_string(),
            env!("CARGO_PKG_VERSION").to_string(),
        )])
        .set(1);
    registry.register("build_info", "Version of this smolder binary", build_info);

    let source: Arc<dyn TableSource> = Arc::clone(&store) as Arc<dyn TableSource>;
    let engine = Arc::new(QueryEngine::with_budget(
        vec![source],
        config.query.limits(),
        Arc::clone(&budget),
    )?);
    let listeners = listen::ListenerMetrics::new(&mut registry);
    let panics = supervise::Panics::register(&mut registry);
    let slo_engine = start_slo_engine(config, &engine, &mut registry).await?;
    let alerting = start_alerting(config, &engine, addrs.http, &mut registry)?;
    let metrics_state = MetricsState {
        registry: Arc::new(registry),
        panics: Arc::clone(&panics),
        query: Arc::clone(&engine),
        store: Arc::clone(&store),
        ingestor: Arc::clone(&ingestor),
        gauges,
        config: Arc::new(config.clone()),
        started: std::time::Instant::now(),
    };
    let reload = ReloadState {
        alerting: Arc::clone(&alerting),
        running: Arc::new(config.clone()),
        layers: layers.clone(),
    };
    let api = api_router(Arc::clone(&engine), metrics_state)
        .merge(smolder_slo::api::router(Arc::clone(&slo_engine)))
        .merge(smolder_alerting::api::router(Arc::clone(&alerting)))
        .merge(smolder_ui::router())
        .merge(reload_router(reload.clone()));
    let api = http_layer::layered(
        api,
        http_layer::HttpLimits {
            // Queries stop at their own timeout; this bounds everything else.
            timeout: config.query.timeout + Duration::from_secs(30),
            max_body_bytes: API_MAX_BODY_BYTES,
            concurrency: API_CONCURRENCY,
        },
        Arc::clone(&panics),
    );

    let (shutdown, shutdown_rx) = watch::channel(false);
    let signal = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let mut tasks = JoinSet::new();
    // The three listeners, each with its connection limits (listen.rs).
    let listener_limits = config.listener_limits();
    tasks.spawn(listen::serve(
        "otlp_grpc",
        grpc_listener,
        OtlpGrpc::new(Arc::clone(&ingestor)).service(),
        listener_limits,
        listeners.clone(),
        shutdown_rx.clone(),
    ));
    tasks.spawn(listen::serve(
        "otlp_http",
        otlp_http_listener,
        smolder_ingest::http::router(Arc::clone(&ingestor)),
        listener_limits,
        listeners.clone(),
        shutdown_rx.clone(),
    ));
    tasks.spawn(listen::serve(
        "http",
        http_listener,
        api,
        listener_limits,
        listeners,
        shutdown_rx.clone(),
    ));
    // Background tasks: each survives its own panics (supervise.rs).
    tasks.spawn({
        let (alerting, panics, rx) = (
            Arc::clone(&alerting),
            Arc::clone(&panics),
            shutdown_rx.clone(),
        );
        async move {
            // Group timers and the delivery of the outbox.
            supervise::restarting("alerting", Duration::from_secs(1), &panics, || {
                Arc::clone(&alerting).run(signal(rx.clone()))
            })
            .await;
            Ok(())
        }
    });
    #[cfg(unix)]
    tasks.spawn({
        let stop = signal(shutdown_rx.clone());
        let reload = reload.clone();
        async move {
            // SIGHUP re-reads the configuration (see ReloadState::reload).
            let Ok(mut hup) =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            else {
                return Ok(());
            };
            tokio::pin!(stop);
            loop {
                tokio::select! {
                    () = &mut stop => return Ok(()),
                    _ = hup.recv() => {
                        if let Err(e) = reload.reload() {
                            tracing::error!("Configuration reload refused: {e:#}");
                        }
                    }
                }
            }
        }
    });
    tasks.spawn({
        let stop = signal(shutdown_rx.clone());
        let (alerting, panics) = (Arc::clone(&alerting), Arc::clone(&panics));
        let tick_timeout = (config.slo.interval.max(config.query.timeout)) * 10;
        let (interval, query) = (config.slo.interval, Arc::clone(&engine));
        async move {
            // Rollup updates and evaluation of every SLO, on the query
            // runtime: its queries are the users' expressions.
            supervise::periodically("slo_tick", interval, stop, &panics, || async {
                let engine = Arc::clone(&slo_engine);
                let ran = query
                    .run("slo tick", tick_timeout, async move { Ok(engine.tick().await) })
                    .await;
                match ran {
                    Ok(report) => tracing::debug!(
                        updated = report.updated,
                        failed = report.failed,
                        update_ms = report.update.as_secs_f64() * 1e3,
                        evaluate_ms = report.evaluate.as_secs_f64() * 1e3,
                        "SLO tick."
                    ),
                    Err(e) => tracing::error!(error = %e, "The SLO tick failed; the next one runs on time."),
                }
                alerting.observe(slo_engine.snapshot()).await;
            })
            .await;
            Ok(())
        }
    });
    tasks.spawn({
        let store = Arc::clone(&store);
        let stop = signal(shutdown_rx);
        async move {
            // Flushes, compaction and retention, checked every second.
            supervise::periodically("storage", Duration::from_secs(1), stop, &panics, || {
                store.maintain()
            })
            .await;
            Ok(())
        }
    });

    // Scripts and tests find the ports from these lines.
    println!("listening otlp_grpc={}", addrs.otlp_grpc);
    println!("listening otlp_http={}", addrs.otlp_http);
    println!("listening http={}", addrs.http);
    tracing::info!(
        otlp_grpc = %addrs.otlp_grpc,
        otlp_http = %addrs.otlp_http,
        http = %addrs.http,
        buffer_limit = %config.ingest.buffer_limit,
        "smolder is serving."
    );
    Ok(Running {
        addrs,
        shutdown,
        tasks,
        store,
    })
}

impl Running {
    /// Serves until `stop` completes or a server fails, then shuts down: the
    /// listeners stop accepting and in-flight requests get `grace` to finish.
    pub(crate) async fn run_until(
        mut self,
        stop: impl std::future::Future<Output = ()>,
        grace: Duration,
    ) -> anyhow::Result<()> {
        let failed = tokio::select! {
            () = stop => None,
            Some(result) = self.tasks.join_next() => Some(result),
        };
        let _ = self.shutdown.send(true);
        if let Some(result) = failed {
            result.context("server task panicked")??;
            anyhow::bail!("a server stopped unexpectedly");
        }
        let drain = async {
            while let Some(result) = self.tasks.join_next().await {
                result.context("server task panicked")??;
            }
            Ok::<_, anyhow::Error>(())
        };
        match tokio::time::timeout(grace, drain).await {
            Ok(result) => result?,
            Err(_) => tracing::warn!(
                ?grace,
                "Shutdown grace period over; closing open connections."
            ),
        }
        // Nothing is accepted any more: persist what is buffered, so the next
        // start reads Parquet instead of replaying the log.
        match self.store.flush().await {
            Ok(report) => tracing::info!(
                rows = report.rows_flushed,
                files = report.files_written,
                "Flushed the buffer to Parquet."
            ),
            Err(e) => {
                tracing::warn!(error = %e, "The final flush failed; the write-ahead log keeps the data for the next start.")
            }
        }
        self.store.collect_garbage(true).await;
        tracing::info!("smolder stopped.");
        Ok(())
    }
}

/// Opens the SLO engine over the query engine's tables, adds the
/// `slo_rollups` table and the SLO gauges.
async fn start_slo_engine(
    config: &Config,
    engine: &QueryEngine,
    registry: &mut Registry,
) -> anyhow::Result<Arc<SloEngine>> {
    let db_path = config.data_dir.join("slo.db");
    let db = smolder_slo::persist::Db::open(&db_path)
        .with_context(|| format!("opening the SLO database {}", db_path.display()))?;
    // An SLO's queries get the SQL API's timeout.
    let options = config.slo.engine_options(config.query.timeout);
    let ctx = engine.context().clone();
    let slo_engine = SloEngine::new(engine.clone(), db, Arc::new(SystemClock), options)
        .await
        .context("starting the SLO engine")?;
    ctx.register_table(
        "slo_rollups",
        Arc::new(smolder_slo::table::RollupTable::new(&slo_engine)),
    )?;
    registry.register_collector(Box::new(smolder_slo::metrics::SloCollector::new(
        &slo_engine,
    )));
    Ok(slo_engine)
}

/// Opens the alerting stage (`alerts.db` in the data directory) with the
/// `[alerting]` configuration, and adds its metrics.
fn start_alerting(
    config: &Config,
    engine: &QueryEngine,
    http: SocketAddr,
    registry: &mut Registry,
) -> anyhow::Result<Arc<smolder_alerting::Alerting>> {
    let db_path = config.data_dir.join("alerts.db");
    let store = smolder_alerting::store::Store::open(&db_path)
        .with_context(|| format!("opening the alerting database {}", db_path.display()))?;
    let host = if http.ip().is_unspecified() {
        format!("127.0.0.1:{}", http.port())
    } else {
        http.to_string()
    };
    let alerting = smolder_alerting::Alerting::new(
        store,
        engine.clone(),
        Arc::new(SystemClock),
        &config.alerting,
        format!("http://{host}"),
    )?;
    registry.register_collector(Box::new(smolder_alerting::metrics::AlertingCollector::new(
        &alerting,
    )));
    Ok(alerting)
}

/// What a configuration reload needs.
#[derive(Clone)]
struct ReloadState {
    alerting: Arc<smolder_alerting::Alerting>,
    /// The configuration the server started with.
    running: Arc<Config>,
    /// The file and the flags, layered again at each reload.
    layers: Layers,
}

impl ReloadState {
    /// Re-reads the configuration file under the same flags, validates every
    /// section and applies `[alerting]`; returns the other options that
    /// changed, which take effect at the next start. A configuration with
    /// problems is refused and the running one stays.
    fn reload(&self) -> anyhow::Result<Vec<String>> {
        if self.layers.file.is_none() {
            anyhow::bail!("smolder was started without --config; there is nothing to reload");
        }
        let new = self.layers.resolve()?;
        self.alerting.reload(&new.alerting)?;
        let restart = self.running.changed_outside_alerting(&new);
        if restart.is_empty() {
            tracing::info!("Configuration reloaded.");
        } else {
            tracing::warn!(
                options = %restart.join(", "),
                "Configuration reloaded; [alerting] is applied, the other changed options take effect at the next start."
            );
        }
        Ok(restart)
    }
}

/// `POST /-/reload`: re-reads the configuration file (as SIGHUP does); 400
/// with the problems when it is refused.
fn reload_router(state: ReloadState) -> Router {
    Router::new()
        .route(
            "/-/reload",
            post(|State(state): State<ReloadState>| async move {
                match tokio::task::spawn_blocking(move || state.reload()).await {
                    Ok(Ok(restart)) if restart.is_empty() => {
                        (StatusCode::OK, "reloaded\n".to_string())
                    }
                    Ok(Ok(restart)) => (
                        StatusCode::OK,
                        format!(
                            "reloaded [alerting]; these changed options take effect at the next start: {}\n",
                            restart.join(", ")
                        ),
                    ),
                    Ok(Err(e)) => (StatusCode::BAD_REQUEST, format!("{e:#}\n")),
                    Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")),
                }
            }),
        )
        .with_state(state)
}

/// Completes on SIGTERM or Ctrl-C.
pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("Shutdown requested.");
}

/// The HTTP API: SQL, the service's own metrics, and health checks.
fn api_router(engine: Arc<QueryEngine>, metrics: MetricsState) -> Router {
    let sql = Router::new()
        .route("/api/v1/sql", post(smolder_query::api::sql))
        .with_state(Arc::clone(&engine))
        .merge(smolder_query::search::router(engine));
    let ops = Router::new()
        .route("/metrics", get(metrics_handler))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(|| async { "ready\n" }))
        .route("/api/v1/status", get(status_handler))
        .with_state(metrics);
    sql.merge(ops)
}

/// Bytes of the files directly in `dir` (0 when it does not exist).
fn dir_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir).map_or(0, |entries| {
        entries
            .filter_map(Result::ok)
            .filter_map(|e| e.metadata().ok())
            .filter(std::fs::Metadata::is_file)
            .map(|m| m.len())
            .sum()
    })
}

/// `GET /api/v1/status`: version, ingest totals (the page derives rates from
/// two readings), storage per table, write-ahead log and flush state.
async fn status_handler(State(state): State<MetricsState>) -> impl IntoResponse {
    use std::sync::atomic::Ordering::Relaxed;
    let buffer = state.store.buffer();
    let manifest = state.store.current();
    let stats = state.store.stats();
    let options = state.store.options();
    let config = &state.config;
    let tables: serde_json::Map<String, serde_json::Value> = Table::ALL
        .iter()
        .zip(options.retention)
        .map(|(table, retention)| {
            (
                table.name().to_string(),
                serde_json::json!({
                    "buffer_rows": buffer.rows(*table),
                    "files": state.store.stored_files(*table),
                    "file_bytes": state.store.stored_bytes(*table),
                    "retention": humantime::format_duration(retention).to_string(),
                }),
            )
        })
        .collect();
    let wal_dir = config.data_dir.join("wal");
    let wal_bytes = tokio::task::spawn_blocking(move || dir_bytes(&wal_dir))
        .await
        .unwrap_or(0);
    let last_flush_ns = stats.last_flush_ns.load(Relaxed);
    axum::Json(serde_json::json!({
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_seconds": state.started.elapsed().as_secs_f64(),
        "now_ms": std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis()),
        "ingest": state.ingestor.metrics().totals(),
        "ingest_inflight_bytes": state.ingestor.in_flight_bytes(),
        "buffer": { "bytes": buffer.used(), "limit_bytes": buffer.limit() },
        "tables": tables,
        "data_dir": config.data_dir.display().to_string(),
        "wal": {
            "enabled": options.wal.is_some(),
            "sync": options.wal.map(|w| format!("{:?}", w.sync)),
            "bytes": wal_bytes,
            "persisted_through": manifest.persisted_through,
        },
        "flush": {
            "interval": humantime::format_duration(options.flush_interval).to_string(),
            "flushes": stats.flushes.load(Relaxed),
            "failures": stats.failures.load(Relaxed),
            "files_compacted": stats.files_compacted.load(Relaxed),
            "files_expired": stats.files_expired.load(Relaxed),
            "last_flush_ms": (last_flush_ns > 0).then_some(last_flush_ns / 1_000_000),
        },
    }))
}

async fn metrics_handler(State(state): State<MetricsState>) -> impl IntoResponse {
    let g = &state.gauges;
    let buffer = state.store.buffer();
    g.bytes.set(buffer.used() as i64);
    g.limit.set(buffer.limit() as i64);
    g.inflight.set(state.ingestor.in_flight_bytes() as i64);
    let budget = state.query.budget();
    g.memory_budget
        .set(i64::try_from(budget.limit()).unwrap_or(i64::MAX));
    for consumer in Consumer::ALL {
        g.memory_used
            .get_or_create(&ConsumerLabel {
                consumer: consumer.name(),
            })
            .set(i64::try_from(budget.used_by(consumer)).unwrap_or(i64::MAX));
    }
    let manifest = state.store.current();
    for table in Table::ALL {
        let label = TableLabel {
            table: table.name(),
        };
        g.rows.get_or_create(&label).set(buffer.rows(table) as i64);
        g.files
            .get_or_create(&label)
            .set(state.store.stored_files(table) as i64);
        g.file_bytes
            .get_or_create(&label)
            .set(state.store.stored_bytes(table) as i64);
    }
    let stats = state.store.stats();
    let load =
        |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed) as i64;
    g.persisted_through.set(manifest.persisted_through as i64);
    g.flushes.set(load(&stats.flushes));
    g.failures.set(load(&stats.failures));
    g.files_compacted.set(load(&stats.files_compacted));
    g.files_expired.set(load(&stats.files_expired));
    g.last_flush.set(load(&stats.last_flush_ns) / 1_000_000_000);
    let queries = state.query.panics();
    let counted = state.panics.get("query");
    state.panics.count("query", queries.saturating_sub(counted));
    let mut text = String::new();
    if let Err(e) = prometheus_client::encoding::text::encode(&mut text, &state.registry) {
        tracing::error!(error = %e, "Encoding metrics failed.");
        return (StatusCode::INTERNAL_SERVER_ERROR, "encoding metrics failed").into_response();
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

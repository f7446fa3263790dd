//! `smolder serve`: wires ingest, the buffer and the query engine together and
//! runs the three listeners until shutdown.

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
use smolder_common::{Table, TableSource};
use smolder_ingest::wal::{Wal, WalOptions};
use smolder_ingest::{Buffer, IngestLimits, IngestMetrics, Ingestor, OtlpGrpc};
use smolder_query::{QueryEngine, QueryLimits};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::config::Config;

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
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct TableLabel {
    table: &'static str,
}

/// Gauges read at scrape time.
#[derive(Debug, Default)]
struct BufferGauges {
    bytes: Gauge,
    limit: Gauge,
    rows: Family<TableLabel, Gauge>,
    inflight: Gauge,
}

#[derive(Clone)]
struct MetricsState {
    registry: Arc<Registry>,
    buffer: Arc<Buffer>,
    ingestor: Arc<Ingestor>,
    gauges: Arc<BufferGauges>,
}

/// Binds the listeners, prints `listening <name>=<addr>` for each on stdout, and
/// starts serving.
pub(crate) async fn start(config: &Config) -> anyhow::Result<Running> {
    let bind = |addr: SocketAddr, what: &'static str| async move {
        TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding the {what} listener to {addr}"))
    };
    let grpc_listener = bind(config.otlp_grpc_addr, "OTLP/gRPC").await?;
    let otlp_http_listener = bind(config.otlp_http_addr, "OTLP/HTTP").await?;
    let http_listener = bind(config.http_addr, "HTTP API").await?;
    let addrs = Addrs {
        otlp_grpc: grpc_listener.local_addr()?,
        otlp_http: otlp_http_listener.local_addr()?,
        http: http_listener.local_addr()?,
    };

    let mut registry = Registry::with_prefix("smolder");
    let buffer = Arc::new(Buffer::new(
        usize::try_from(config.buffer_limit).unwrap_or(usize::MAX),
    ));
    let limits = IngestLimits {
        max_request_bytes: usize::try_from(config.max_request_size).unwrap_or(usize::MAX),
        retry_after: config.retry_after,
        max_inflight_bytes: usize::try_from(config.max_inflight_bytes).unwrap_or(usize::MAX),
    };
    let wal_dir = config.data_dir.join("wal");
    let (wal, records) = Wal::open(
        &wal_dir,
        WalOptions {
            sync: config.wal_sync,
            ..WalOptions::default()
        },
    )
    .with_context(|| format!("opening the write-ahead log in {}", wal_dir.display()))?;
    let ingestor = Ingestor::new(
        Arc::clone(&buffer),
        IngestMetrics::new(&mut registry),
        limits,
    )
    .with_wal(wal);
    let replayed = ingestor
        .replay(&records)
        .context("replaying the write-ahead log")?;
    if !records.is_empty() {
        tracing::info!(
            records = records.len(),
            items = replayed,
            buffer_bytes = buffer.used(),
            "Replayed the write-ahead log."
        );
    }
    drop(records);
    let ingestor = Arc::new(ingestor);
    let gauges = Arc::new(BufferGauges::default());
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
    let build_info = Family::<Vec<(String, String)>, Gauge>::default();
    build_info
        .get_or_create(&vec![(
            "version".to_string(),
            env!("CARGO_PKG_VERSION").to_string(),
        )])
        .set(1);
    registry.register("build_info", "Version of this smolder binary", build_info);

    let source: Arc<dyn TableSource> = Arc::clone(&buffer) as Arc<dyn TableSource>;
    let engine = QueryEngine::new(
        vec![source],
        QueryLimits {
            max_rows: config.query_max_rows,
            timeout: config.query_timeout,
            memory_limit: usize::try_from(config.query_memory_limit).unwrap_or(usize::MAX),
        },
    )?;
    let metrics_state = MetricsState {
        registry: Arc::new(registry),
        buffer: Arc::clone(&buffer),
        ingestor: Arc::clone(&ingestor),
        gauges,
    };
    let api = api_router(Arc::new(engine), metrics_state);

    let (shutdown, shutdown_rx) = watch::channel(false);
    let signal = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let mut tasks = JoinSet::new();
    let grpc = OtlpGrpc::new(Arc::clone(&ingestor));
    tasks.spawn({
        let stop = signal(shutdown_rx.clone());
        async move {
            grpc.serve(grpc_listener, stop)
                .await
                .context("OTLP/gRPC server")
        }
    });
    let otlp_http = smolder_ingest::http::router(Arc::clone(&ingestor));
    tasks.spawn({
        let stop = signal(shutdown_rx.clone());
        async move {
            axum::serve(otlp_http_listener, otlp_http)
                .with_graceful_shutdown(stop)
                .await
                .context("OTLP/HTTP server")
        }
    });
    tasks.spawn({
        let stop = signal(shutdown_rx);
        async move {
            axum::serve(http_listener, api)
                .with_graceful_shutdown(stop)
                .await
                .context("HTTP API server")
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
        buffer_limit = config.buffer_limit,
        "smolder is serving."
    );
    Ok(Running {
        addrs,
        shutdown,
        tasks,
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
        tracing::info!("smolder stopped.");
        Ok(())
    }
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
        .with_state(engine);
    let ops = Router::new()
        .route("/metrics", get(metrics_handler))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(|| async { "ready\n" }))
        .with_state(metrics);
    sql.merge(ops)
}

async fn metrics_handler(State(state): State<MetricsState>) -> impl IntoResponse {
    let g = &state.gauges;
    g.bytes.set(state.buffer.used() as i64);
    g.limit.set(state.buffer.limit() as i64);
    g.inflight.set(state.ingestor.in_flight_bytes() as i64);
    for table in Table::ALL {
        g.rows
            .get_or_create(&TableLabel {
                table: table.name(),
            })
            .set(state.buffer.rows(table) as i64);
    }
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

//! `smolder serve`: wires ingest, storage, the query engine, the SLO engine
//! and alerting together and starts them as a list of components
//! (components.rs): the storage maintenance (flush to Parquet, compaction,
//! retention; the final flush at shutdown), the SLO ticks, alerting, the
//! configuration reload and the three listeners — stopped in the reverse
//! order.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use smolder_cluster::Role;
use smolder_common::TableSource;
use smolder_common::clock::{Clock as _, SystemClock};
use smolder_common::memory::MemoryBudget;
use smolder_ingest::dedup::Dedup;
use smolder_ingest::{IngestMetrics, Ingestor, OtlpGrpc};
use smolder_query::QueryEngine;
use smolder_slo::{Databases, SloEngines};
use smolder_storage::{CompactionOptions, ReadCacheOptions, StorageUrl, Store, StoreOptions};
use tokio::net::TcpListener;

use crate::audit::AuditLog;
use crate::auth::{Auth, AuthMode, GrpcGuard, TokenStore, ingest_guard};
use crate::browser::BrowserPolicy;
use crate::components::{Components, Drain, Stop, stopped};
use crate::config::{Config, Layers};
use crate::http_layer::Guards;
use crate::state::StateCopies;
use crate::{http_layer, listen, ops, supervise};

/// Bytes of an API request body (SQL, an SLO's YAML, a silence).
const API_MAX_BODY_BYTES: usize = 2 << 20;
/// API requests handled at once; more wait for a slot.
const API_CONCURRENCY: usize = 256;

/// The bound addresses of a running server.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Addrs {
    /// OTLP/gRPC (an ingester's).
    pub(crate) otlp_grpc: Option<SocketAddr>,
    /// OTLP/HTTP (an ingester's).
    pub(crate) otlp_http: Option<SocketAddr>,
    /// HTTP API.
    pub(crate) http: SocketAddr,
    /// Arrow Flight (an ingester's, when asked for).
    pub(crate) flight: Option<SocketAddr>,
}

/// A server whose listeners are bound and serving.
pub(crate) struct Running {
    /// Where it listens.
    pub(crate) addrs: Addrs,
    components: Components,
}

/// The listeners of this process's roles, bound.
struct Listeners {
    otlp_grpc: Option<TcpListener>,
    otlp_http: Option<TcpListener>,
    http: TcpListener,
    flight: Option<TcpListener>,
}

impl Listeners {
    async fn bind(config: &Config) -> anyhow::Result<(Self, Addrs)> {
        let bind = |addr: SocketAddr, what: &'static str| async move {
            TcpListener::bind(addr)
                .await
                .with_context(|| format!("binding the {what} listener to {addr}"))
        };
        let ingest = config.cluster.has(Role::Ingest);
        let listeners = Self {
            otlp_grpc: if ingest {
                Some(bind(config.listen.otlp_grpc, "OTLP/gRPC").await?)
            } else {
                None
            },
            otlp_http: if ingest {
                Some(bind(config.listen.otlp_http, "OTLP/HTTP").await?)
            } else {
                None
            },
            http: bind(config.listen.http, "HTTP API").await?,
            flight: match config.cluster.flight_addr() {
                Some(addr) => Some(bind(addr, "Arrow Flight").await?),
                None => None,
            },
        };
        let addr = |l: &Option<TcpListener>| l.as_ref().map(TcpListener::local_addr).transpose();
        let addrs = Addrs {
            otlp_grpc: addr(&listeners.otlp_grpc)?,
            otlp_http: addr(&listeners.otlp_http)?,
            http: listeners.http.local_addr()?,
            flight: addr(&listeners.flight)?,
        };
        Ok((listeners, addrs))
    }
}

/// How often a process on a bucket exchanges tokens with the others
/// (`auth::shared`).
const TOKEN_SYNC_EVERY: Duration = Duration::from_secs(2);

/// Binds the listeners, prints `listening <name>=<addr>` for each on stdout, and
/// starts serving.
pub(crate) async fn start(config: &Config, layers: &Layers) -> anyhow::Result<Running> {
    let tls = crate::tls::Tls::load(&config.tls).context("loading the TLS files")?;
    if let Some(tls) = &tls {
        tracing::info!(
            mutual = tls.mutual(),
            "TLS on every listener{}.",
            if tls.mutual() {
                ", with client certificates"
            } else {
                ""
            }
        );
    }
    let (listeners, addrs) = Listeners::bind(config).await?;
    let mut registry = Registry::with_prefix("smolder");
    let budget = MemoryBudget::new(
        usize::try_from(config.server.memory_budget.as_u64()).unwrap_or(usize::MAX),
    );
    let (store, records) = open_store(config).await?;
    let mut ingestor = Ingestor::with_budget(
        Arc::clone(&store),
        IngestMetrics::new(&mut registry),
        config.ingest.limits(),
        Arc::clone(&budget),
    );
    let roles = &config.cluster;
    let dedup = if config.ingest.dedup_window.is_zero() || !roles.has(Role::Ingest) {
        None
    } else {
        let dir = config.data_dir.join("dedup");
        // The keys may take at most a quarter of the memory budget.
        let max_keys = config
            .ingest
            .dedup_max_keys
            .min(Dedup::keys_within(budget.limit() / 4));
        if max_keys < config.ingest.dedup_max_keys {
            tracing::info!(
                max_keys,
                "ingest.dedup_max_keys lowered to what fits in a quarter of server.memory_budget."
            );
        }
        let dedup = Dedup::open(
            config.ingest.dedup_window,
            max_keys,
            Some(&dir),
            SystemClock.now_ns(),
        )
        .with_context(|| format!("opening {}", dir.display()))?
        .with_budget(Arc::clone(&budget));
        let dedup = Arc::new(dedup);
        ingestor = ingestor.with_dedup(Arc::clone(&dedup));
        Some(dedup)
    };
    let replayed = ingestor
        .replay(&records)
        .context("replaying the write-ahead log")?;
    // After the replay (which goes through the filter in the log's order):
    // the keys of items already flushed to Parquet.
    if let Some(dedup) = &dedup {
        let keys = dedup
            .load(SystemClock.now_ns())
            .context("reading the keys of accepted items")?;
        tracing::debug!(keys, "Read the keys of recently accepted items.");
    }
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
    registry.register_collector(Box::new(smolder_storage::metrics::StorageCollector::new(
        &store,
    )));
    register_build_info(&mut registry);

    // A querier or evaluator reads the ingesters' unflushed rows besides
    // the bucket's files.
    let source: Arc<dyn TableSource> = if config.cluster.ingesters.is_empty() {
        Arc::clone(&store) as Arc<dyn TableSource>
    } else {
        let ingesters = smolder_cluster::ingesters::Ingesters::new(
            config.cluster.ingesters.clone(),
            config.cluster.secret.clone(),
            config.cluster.ingester_ca.as_deref(),
            config.cluster.ingester_timeout,
        )
        .context("cluster.ingester_ca")?;
        Arc::new(smolder_cluster::ingesters::ClusterSource::new(
            Arc::clone(&store),
            Arc::new(ingesters),
        ))
    };
    let engine = Arc::new(QueryEngine::with_budget(
        vec![source],
        config.query.limits(),
        Arc::clone(&budget),
    )?);
    registry.register_collector(Box::new(ops::ProcessCollector {
        ingestor: Arc::downgrade(&ingestor),
        query: Arc::downgrade(&engine),
    }));
    let listener_metrics = listen::ListenerMetrics::new(&mut registry);
    let panics = supervise::Panics::register(&mut registry);
    let state = roles
        .has(Role::Evaluate)
        .then(|| store.bucket())
        .flatten()
        .map(|bucket| Arc::new(StateCopies::new(bucket, &config.data_dir)));
    if let Some(state) = &state {
        let restored = state
            .restore()
            .await
            .context("taking the evaluator's databases from the bucket (state/)")?;
        if !restored.is_empty() {
            tracing::info!(databases = ?restored, "A new data directory: took the evaluator's databases from the bucket.");
        }
    }
    let slo_engines = start_slo_engines(config, &engine, &mut registry).await?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let own_url = own_url(scheme, addrs.http);
    let alerting = start_alerting(config, &engine, own_url.clone(), &mut registry)?;
    alerting.charts().set_engines(Arc::clone(&slo_engines));
    let auth = Arc::new(start_auth(config, tls.is_some())?);
    let oidc = crate::auth::oidc::Oidc::new(
        &config.oidc,
        config.alerting.external_url.as_deref().unwrap_or(&own_url),
        Arc::new(SystemClock),
    )
    .context("[oidc]")?
    .map(Arc::new);
    let audit = Arc::new(
        AuditLog::open(&config.data_dir)
            .with_context(|| format!("opening the audit log in {}", config.data_dir.display()))?,
    );
    engine.add_tables(Arc::new(crate::audit::AuditTables(Arc::clone(&audit))))?;
    let reload = ReloadState {
        audit: Arc::clone(&audit),
        alerting: Arc::clone(&alerting),
        running: Arc::new(config.clone()),
        layers: layers.clone(),
    };
    let mut api = Router::new()
        .merge(ops::router(ops::OpsState {
            registry: Arc::new(registry),
            panics: Arc::clone(&panics),
            query: Arc::clone(&engine),
            store: Arc::clone(&store),
            ingestor: Arc::clone(&ingestor),
            config: Arc::new(config.clone()),
            started: std::time::Instant::now(),
            slo: Arc::clone(&slo_engines),
            alerting: Arc::clone(&alerting),
        }))
        .merge(crate::auth::api::router(Arc::clone(auth.store())))
        .merge(crate::auth::signin::router(crate::auth::signin::SignIn {
            auth: Arc::clone(&auth),
            oidc,
        }))
        .merge(crate::audit::router(Arc::clone(&audit)))
        .merge(reload_router(reload.clone()));
    // The API of each role this process has.
    if roles.has(Role::Query) {
        api = api
            .route(
                "/api/v1/sql",
                post(smolder_query::api::sql).with_state(Arc::clone(&engine)),
            )
            .merge(smolder_query::search::router(Arc::clone(&engine)))
            .merge(smolder_ui::router());
    }
    if roles.has(Role::Evaluate) {
        api = api
            .merge(smolder_slo::api::router(Arc::clone(&slo_engines)))
            .merge(smolder_alerting::api::router(Arc::clone(&alerting)))
            .merge(smolder_alerting::api::backtest_router(
                Arc::clone(&alerting),
                Arc::clone(&slo_engines),
            ));
    }
    let api = http_layer::layered(
        api,
        http_layer::HttpLimits {
            // Queries stop at their own timeout; this bounds everything else.
            timeout: config.query.timeout + Duration::from_secs(30),
            max_body_bytes: API_MAX_BODY_BYTES,
            concurrency: API_CONCURRENCY,
        },
        Guards {
            browser: Arc::new(BrowserPolicy::new(
                &config.server.allowed_hosts,
                &config.server.cors_origins,
                config.alerting.external_url.as_deref(),
            )),
            auth: Arc::clone(&auth),
            audit,
        },
        Arc::clone(&panics),
    );

    // Started in this order and stopped in the reverse one (components.rs).
    let mut components = Components::default();
    components.start("storage", Drain::Complete, {
        let (store, panics) = (Arc::clone(&store), Arc::clone(&panics));
        let lease = roles
            .has(Role::Compact)
            .then(|| store.lease("compactor", roles.lease_ttl));
        let ingest = roles.has(Role::Ingest);
        move |stop| maintain_storage(store, lease, ingest, panics, stop)
    });
    // Started before the SLO ticks and alerting, so stopped after them: the
    // last copy has their last changes.
    if let Some(state) = state {
        let (interval, panics) = (roles.state_interval, Arc::clone(&panics));
        components.start("state", Drain::Complete, move |stop| async move {
            let copy = async || {
                if let Err(e) = state.copy().await {
                    tracing::warn!(error = %format!("{e:#}"), "Copying the evaluator's databases to the bucket failed; retrying.");
                }
            };
            supervise::periodically("state", interval, stopped(stop), &panics, copy).await;
            copy().await;
            Ok(())
        });
    }
    if roles.has(Role::Evaluate) {
        components.start("slo_tick", Drain::Grace, {
        let (alerting, panics, query) = (
            Arc::clone(&alerting),
            Arc::clone(&panics),
            Arc::clone(&engine),
        );
        let tick_timeout = (config.slo.interval.max(config.query.timeout)) * 10;
        let interval = config.slo.interval;
        move |stop| async move {
            // Rollup updates and evaluation of every SLO, on the query
            // runtime: its queries are the users' expressions.
            supervise::on_grid("slo_tick", interval, &SystemClock, stopped(stop), &panics, |at| {
                let (engines, query, alerting) = (Arc::clone(&slo_engines), Arc::clone(&query), Arc::clone(&alerting));
                async move {
                // The scaling targets' windows, as configured now.
                engines.watched().set(alerting.watched_windows());
                let snapshot_of = Arc::clone(&engines);
                let ran = query
                    .run("slo tick", tick_timeout, async move { Ok(engines.tick_at(at).await) })
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
                alerting.observe(snapshot_of.snapshot()).await;
            }})
            .await;
            Ok(())
        }
    });
        components.start("alerting", Drain::Grace, {
            let panics = Arc::clone(&panics);
            move |stop| async move {
                // Group timers and the delivery of the outbox.
                supervise::restarting("alerting", Duration::from_secs(1), &panics, || {
                    Arc::clone(&alerting).run(stopped(stop.clone()))
                })
                .await;
                Ok(())
            }
        });
    }
    components.start("tokens", Drain::Grace, {
        let store = Arc::clone(auth.store());
        let panics = Arc::clone(&panics);
        move |stop| async move {
            // Tokens made or revoked by `smolder token` beside the server.
            supervise::periodically("tokens", Duration::from_secs(1), stopped(stop), &panics, || async {
                // SQLite may wait for the CLI's write: not on an async worker.
                let store = Arc::clone(&store);
                match tokio::task::spawn_blocking(move || store.refresh()).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, "Re-reading the tokens failed; the last ones stay.");
                    }
                    Err(e) => tracing::warn!(error = %e, "Re-reading the tokens failed."),
                }
            })
            .await;
            Ok(())
        }
    });
    if let Some(bucket) = store.bucket() {
        let shared = crate::auth::shared::SharedTokens::new(bucket, Arc::clone(auth.store()));
        let panics = Arc::clone(&panics);
        components.start("shared_tokens", Drain::Grace, move |stop| async move {
            // Tokens made or revoked on any process of the bucket.
            supervise::periodically("shared_tokens", TOKEN_SYNC_EVERY, stopped(stop), &panics, || async {
                if let Err(e) = shared.sync().await {
                    tracing::warn!(error = %format!("{e:#}"), "Sharing the tokens through the bucket failed; retrying.");
                }
            })
            .await;
            Ok(())
        });
    }
    if let Some(tls) = &tls {
        let tls = Arc::clone(tls);
        components.start("tls", Drain::Grace, |stop| async move {
            // Certificates renewed on disk are used without a restart.
            tls.watch(stop).await;
            Ok(())
        });
    }
    #[cfg(unix)]
    components.start("sighup", Drain::Grace, |stop| {
        reload_on_sighup(reload, stop)
    });
    let limits = config.listener_limits();
    if let Some(listener) = listeners.flight {
        let tls = tls.clone();
        let service = smolder_cluster::flight::BufferService::new(
            Arc::clone(&store),
            config.cluster.secret.clone(),
        )
        .into_server();
        let metrics = listener_metrics.clone();
        components.start("flight", Drain::Grace, move |stop| {
            listen::serve("flight", listener, tls, service, limits, metrics, stop)
        });
    }
    if let (Some(grpc), Some(http)) = (listeners.otlp_grpc, listeners.otlp_http) {
        components.start("otlp_grpc", Drain::Grace, {
            let tls = tls.clone();
            let (service, metrics) = (
                GrpcGuard::new(
                    OtlpGrpc::new(Arc::clone(&ingestor)).service(),
                    Arc::clone(&auth),
                ),
                listener_metrics.clone(),
            );
            move |stop| listen::serve("otlp_grpc", grpc, tls, service, limits, metrics, stop)
        });
        components.start("otlp_http", Drain::Grace, {
            let tls = tls.clone();
            let (service, metrics) = (
                smolder_ingest::http::router(Arc::clone(&ingestor)).layer(
                    axum::middleware::from_fn_with_state(Arc::clone(&auth), ingest_guard),
                ),
                listener_metrics.clone(),
            );
            move |stop| listen::serve("otlp_http", http, tls, service, limits, metrics, stop)
        });
    }
    components.start("http", Drain::Grace, move |stop| {
        listen::serve(
            "http",
            listeners.http,
            tls,
            api,
            limits,
            listener_metrics,
            stop,
        )
    });

    // Scripts and tests find the ports from these lines.
    for (name, addr) in [
        ("otlp_grpc", addrs.otlp_grpc),
        ("otlp_http", addrs.otlp_http),
        ("http", Some(addrs.http)),
        ("flight", addrs.flight),
    ] {
        if let Some(addr) = addr {
            println!("listening {name}={addr}");
        }
    }
    tracing::info!(
        roles = %roles.roles_text(),
        http = %addrs.http,
        tls = scheme == "https",
        buffer_limit = %config.ingest.buffer_limit,
        "smolder is serving."
    );
    Ok(Running { addrs, components })
}

impl Running {
    /// Serves until `stop` completes or a component fails, then stops the
    /// components in the reverse order of their start: the listeners stop
    /// accepting and in-flight requests get `grace` to finish; the store
    /// persists the buffer last.
    pub(crate) async fn run_until(
        self,
        stop: impl std::future::Future<Output = ()>,
        grace: Duration,
    ) -> anyhow::Result<()> {
        self.components.run_until(stop, grace).await?;
        tracing::info!("smolder stopped.");
        Ok(())
    }
}

/// Opens the store in the data directory; returns it with the write-ahead
/// log's records to replay.
async fn open_store(
    config: &Config,
) -> anyhow::Result<(Arc<Store>, Vec<smolder_storage::wal::Record>)> {
    let options = StoreOptions {
        buffer_limit: usize::try_from(config.ingest.buffer_limit.as_u64()).unwrap_or(usize::MAX),
        tenant_buffer_limit: Some(config.ingest.tenant_buffer_limit()),
        // Only an ingester logs; only ingesters and compactors write files.
        wal: config
            .wal
            .options()
            .filter(|_| config.cluster.has(Role::Ingest)),
        writes: config.cluster.has(Role::Ingest) || config.cluster.has(Role::Compact),
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
        // Only processes that read files keep copies of them.
        read_cache: (config.cluster.has(Role::Query) || config.cluster.has(Role::Evaluate)).then(
            || ReadCacheOptions {
                dir: config.data_dir.join("cache"),
                capacity: config.storage.read_cache_size.as_u64(),
            },
        ),
        ..StoreOptions::default()
    };
    let files = StorageUrl::parse(&config.storage.url, &config.data_dir)
        .map_err(|e| anyhow::anyhow!("storage.url: {e}"))?;
    let (store, records) = Store::open_at(&files, &config.data_dir, options, Arc::new(SystemClock))
        .await
        .with_context(|| {
            format!(
                "opening the stored data at {files} (log in {})",
                config.data_dir.display()
            )
        })?;
    tracing::info!(files = %files, writer = store.writer(), roles = %config.cluster.roles_text(), "Storage opened.");
    Ok((Arc::new(store), records))
}

/// The token store in the data directory and whether tokens are asked for:
/// `[server] auth`, where `auto` means required unless every listener is on
/// loopback.
fn start_auth(config: &Config, tls: bool) -> anyhow::Result<Auth> {
    let store = TokenStore::open(&config.data_dir)
        .with_context(|| format!("opening the tokens in {}", config.data_dir.display()))?;
    let listeners = [
        config.listen.otlp_grpc,
        config.listen.otlp_http,
        config.listen.http,
    ];
    let required = auth_required(config.server.auth, &listeners);
    if config.server.auth == AuthMode::Disabled {
        tracing::warn!(
            "Authentication is disabled (--auth disabled): anyone who reaches a listener can send, read and change everything."
        );
    }
    if required {
        tracing::info!("Every request needs a token (smolder token create).");
        if !tls && !listeners.iter().all(|a| a.ip().is_loopback()) {
            tracing::warn!(
                "Tokens travel in plain text: a listener is not on loopback and TLS is off (--tls-cert, --tls-key)."
            );
        }
    }
    Ok(Auth::new(
        Arc::new(store),
        required,
        config.oidc.session_ttl,
    ))
}

/// Whether tokens are asked for: `auto` means unless every listener is on
/// loopback.
fn auth_required(mode: AuthMode, listeners: &[SocketAddr]) -> bool {
    match mode {
        AuthMode::Required => true,
        AuthMode::Disabled => false,
        AuthMode::Auto => !listeners.iter().all(|a| a.ip().is_loopback()),
    }
}

#[cfg(test)]
#[test]
fn tokens_are_required_by_default_once_a_listener_leaves_loopback() {
    let local: SocketAddr = "127.0.0.1:4317".parse().unwrap();
    let v6: SocketAddr = "[::1]:8080".parse().unwrap();
    let open: SocketAddr = "0.0.0.0:4318".parse().unwrap();
    assert!(!auth_required(AuthMode::Auto, &[local, v6]));
    assert!(auth_required(AuthMode::Auto, &[local, open, v6]));
    assert!(auth_required(AuthMode::Required, &[local]));
    assert!(!auth_required(AuthMode::Disabled, &[open]));
}

/// `smolder_build_info{version}`.
fn register_build_info(registry: &mut Registry) {
    let build_info = Family::<Vec<(String, String)>, Gauge>::default();
    build_info
        .get_or_create(&vec![(
            "version".to_string(),
            env!("CARGO_PKG_VERSION").to_string(),
        )])
        .set(1);
    registry.register("build_info", "Version of this smolder binary", build_info);
}

/// Flushes (an ingester), compaction and retention (the compactor that
/// holds the lease), checked every second; at stop, an ingester persists
/// what is buffered (nothing is accepted any more), so the next start
/// reads Parquet instead of replaying the log, and a compactor lets its
/// lease go.
///
/// The lease is renewed by a task of its own: a round of merges can take
/// longer than the lease's time to live (seconds of Parquet in a busy
/// process), and a renewal waiting behind it would hand the lease to a
/// standby in the middle of the holder's work.
async fn maintain_storage(
    store: Arc<Store>,
    lease: Option<smolder_storage::Lease>,
    ingest: bool,
    panics: Arc<supervise::Panics>,
    stop: Stop,
) -> anyhow::Result<()> {
    let lease = lease.map(Arc::new);
    let renewal = lease.as_ref().map(|lease| {
        let (lease, panics, stop) = (Arc::clone(lease), Arc::clone(&panics), stop.clone());
        tokio::spawn(async move {
            let every = (lease.ttl() / 6).max(Duration::from_millis(50));
            supervise::periodically("lease", every, stopped(stop), &panics, || async {
                if let Err(e) = lease.tick().await {
                    tracing::warn!(error = %e, "Renewing or taking the compactor's lease failed; retrying.");
                }
            })
            .await;
        })
    });
    supervise::periodically(
        "storage",
        Duration::from_secs(1),
        stopped(stop),
        &panics,
        || async {
            store
                .maintain(smolder_storage::Work {
                    flush: ingest,
                    compact: lease.as_ref().is_some_and(|l| l.held()),
                })
                .await;
        },
    )
    .await;
    if let Some(renewal) = renewal {
        // It stops with the same signal; its last renewal ends before the
        // lease is let go below.
        let _ = renewal.await;
    }
    if ingest {
        match store.flush().await {
            Ok(report) => tracing::info!(
                rows = report.rows_flushed,
                files = report.files_written,
                "Flushed the buffer to Parquet."
            ),
            Err(e) => {
                tracing::warn!(error = %e, "The final flush failed; the write-ahead log keeps the data for the next start.")
            }
        }
    }
    if let Some(lease) = &lease {
        lease.release().await;
    }
    // In a bucket, files dropped just now may still be read by queriers
    // with an older manifest: the sweep deletes those left.
    store.collect_garbage(store.bucket().is_none()).await;
    Ok(())
}

/// SIGHUP re-reads the configuration (see [`ReloadState::reload`]).
#[cfg(unix)]
async fn reload_on_sighup(reload: ReloadState, stop: Stop) -> anyhow::Result<()> {
    let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else {
        // Without SIGHUP the server goes on (POST /-/reload still works).
        tracing::warn!("SIGHUP cannot be handled here; reload with POST /-/reload.");
        stopped(stop).await;
        return Ok(());
    };
    let stop = stopped(stop);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => return Ok(()),
            _ = hup.recv() => {
                let result = reload.reload();
                let status = if result.is_ok() { 200 } else { 400 };
                reload.audit.record("local", "default", "reload (SIGHUP)", Some(status), "local");
                if let Err(e) = result {
                    tracing::error!("Configuration reload refused: {e:#}");
                }
            }
        }
    }
}

/// Opens every tenant's SLO engine over the query engine's tables (their
/// databases in the data directory), adds the `slo_rollups` table and the
/// SLO gauges.
async fn start_slo_engines(
    config: &Config,
    engine: &QueryEngine,
    registry: &mut Registry,
) -> anyhow::Result<Arc<SloEngines>> {
    // An SLO's queries get the SQL API's timeout.
    let options = config.slo.engine_options(config.query.timeout);
    let engines = SloEngines::open(
        engine.clone(),
        Databases::Dir(config.data_dir.clone()),
        Arc::new(SystemClock),
        options,
        config.slo.tenant_max_slos,
    )
    .await
    .with_context(|| {
        format!(
            "starting the SLO engines (databases slo.db and tenants/*/slo.db in {})",
            config.data_dir.display()
        )
    })?;
    engine.add_tables(Arc::new(smolder_slo::table::RollupTables(Arc::downgrade(
        &engines,
    ))))?;
    registry.register_collector(Box::new(smolder_slo::metrics::SloCollector::new(&engines)));
    Ok(engines)
}

/// Opens the alerting stage (`alerts.db` in the data directory) with the
/// `[alerting]` configuration, and adds its metrics.
fn start_alerting(
    config: &Config,
    engine: &QueryEngine,
    own_url: String,
    registry: &mut Registry,
) -> anyhow::Result<Arc<smolder_alerting::Alerting>> {
    let db_path = config.data_dir.join("alerts.db");
    let store = smolder_alerting::store::Store::open(&db_path)
        .with_context(|| format!("opening the alerting database {}", db_path.display()))?;
    let alerting = smolder_alerting::Alerting::new(
        store,
        engine.clone(),
        Arc::new(SystemClock),
        &config.alerting,
        own_url,
    )?;
    registry.register_collector(Box::new(smolder_alerting::metrics::AlertingCollector::new(
        &alerting,
    )));
    Ok(alerting)
}

/// The API listener's own URL, for links when alerting.external_url is
/// not set.
fn own_url(scheme: &str, http: SocketAddr) -> String {
    let host = if http.ip().is_unspecified() {
        format!("127.0.0.1:{}", http.port())
    } else {
        http.to_string()
    };
    format!("{scheme}://{host}")
}

/// What a configuration reload needs.
#[derive(Clone)]
struct ReloadState {
    /// Where SIGHUP reloads are recorded (API reloads are recorded by the
    /// listener's middleware).
    audit: Arc<AuditLog>,
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

//! The server's own operations endpoints: `/metrics` (every crate's
//! collectors plus the process-wide figures below), `/healthz`, `/readyz`
//! and `/api/v1/status` (what the status page shows).

use std::sync::{Arc, Weak};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::registry::Registry;
use smolder_common::Table;
use smolder_common::memory::Consumer;
use smolder_common::metrics::{gauge, gauges};
use smolder_ingest::Ingestor;
use smolder_query::QueryEngine;
use smolder_storage::Store;

use crate::config::Config;
use crate::supervise;

/// What the operations endpoints read.
#[derive(Clone)]
pub(crate) struct OpsState {
    pub(crate) registry: Arc<Registry>,
    pub(crate) store: Arc<Store>,
    pub(crate) ingestor: Arc<Ingestor>,
    /// For the status page: where data lives and how it is kept.
    pub(crate) config: Arc<Config>,
    /// Panics caught, with the query runtime's added at each scrape.
    pub(crate) panics: Arc<supervise::Panics>,
    pub(crate) query: Arc<QueryEngine>,
    pub(crate) started: std::time::Instant,
    /// For the status page: the SLO engine's ticks.
    pub(crate) slo: Arc<smolder_slo::SloEngines>,
    /// For the status page: the notification queue.
    pub(crate) alerting: Arc<smolder_alerting::Alerting>,
}

/// `/metrics`, `/healthz`, `/readyz` and `/api/v1/status`.
pub(crate) fn router(state: OpsState) -> Router {
    Router::new()
        .route("/metrics", get(metrics_handler))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(|| async { "ready\n" }))
        .route("/api/v1/status", get(status_handler))
        .with_state(state)
}

/// Process-wide figures read at each scrape: decoded OTLP requests in flight
/// and the memory budget by consumer.
pub(crate) struct ProcessCollector {
    pub(crate) ingestor: Weak<Ingestor>,
    pub(crate) query: Weak<QueryEngine>,
}

impl std::fmt::Debug for ProcessCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessCollector").finish_non_exhaustive()
    }
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let int = |v: usize| i64::try_from(v).unwrap_or(i64::MAX);
        if let Some(ingestor) = self.ingestor.upgrade() {
            gauge(
                &mut encoder,
                "ingest_inflight_bytes",
                "Decompressed bytes of OTLP requests being decoded and converted",
                int(ingestor.in_flight_bytes()),
            )?;
        }
        if let Some(query) = self.query.upgrade() {
            let budget = query.budget();
            gauge(
                &mut encoder,
                "memory_budget_bytes",
                "The process-wide memory budget queries, OTLP requests and SLO rollups draw from",
                int(budget.limit()),
            )?;
            let used: Vec<_> = Consumer::ALL
                .iter()
                .map(|&c| ([("consumer", c.name())], int(budget.used_by(c))))
                .collect();
            gauges(
                &mut encoder,
                "memory_reserved_bytes",
                "Bytes of the memory budget held, by consumer",
                &used,
            )?;
        }
        Ok(())
    }
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
async fn status_handler(State(state): State<OpsState>) -> impl IntoResponse {
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
    let slo = slo_status(&state);
    let alerting = Arc::clone(&state.alerting);
    let notifications = tokio::task::spawn_blocking(move || alerting.store().delivery_counts())
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r.map_err(|e| e.to_string()));
    let notifications = match notifications {
        Ok((states, oldest)) => serde_json::json!({
            "queued": state.alerting.deliverer().pending(),
            "states": states,
            "oldest_pending": oldest.map(crate::ops::rfc3339),
        }),
        Err(e) => serde_json::json!({ "error": e }),
    };
    axum::Json(serde_json::json!({
        "slo": slo,
        "notifications": notifications,
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
            "persisted_through": manifest.persisted(state.store.writer()),
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

/// The SLO engine as the status page shows it: ticks, the last one's
/// figures, SLOs backfilling or failing (with their errors).
fn slo_status(state: &OpsState) -> serde_json::Value {
    let (ticks, last) = state.slo.last_tick();
    let snapshot = state.slo.snapshot();
    let backfilling: Vec<_> = snapshot
        .slos
        .iter()
        .filter(|s| !s.backfill.done)
        .map(|s| serde_json::json!({ "slo": s.definition.id, "progress": s.backfill.progress }))
        .collect();
    let failing: Vec<_> = snapshot
        .slos
        .iter()
        .filter_map(|s| {
            s.error
                .as_ref()
                .map(|e| serde_json::json!({ "slo": s.definition.id, "error": e }))
        })
        .collect();
    serde_json::json!({
        "slos": snapshot.slos.len(),
        "interval": humantime::format_duration(state.config.slo.interval).to_string(),
        "ticks": ticks,
        "last_tick": last.map(|(at, r)| serde_json::json!({
            "at": rfc3339(at),
            "update_ms": r.update.as_secs_f64() * 1e3,
            "evaluate_ms": r.evaluate.as_secs_f64() * 1e3,
            "updated": r.updated,
            "waiting_or_failed": r.failed,
            "batched": r.batched,
            "fallbacks": r.fallbacks,
        })),
        "batch_fallbacks": state.slo.batch_fallbacks(),
        "backfilling": backfilling,
        "failing": failing,
        "problems": snapshot.problems.iter().map(ToString::to_string).collect::<Vec<_>>(),
    })
}

/// Unix nanoseconds as RFC 3339 (UTC, milliseconds).
pub(crate) fn rfc3339(ns: i64) -> String {
    chrono::DateTime::from_timestamp_nanos(ns).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

async fn metrics_handler(State(state): State<OpsState>) -> impl IntoResponse {
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

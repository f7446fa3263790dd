//! Storage on `/metrics`, read from the store at each scrape (like the SLO
//! and alerting collectors), so a scrape costs nothing between scrapes and
//! the figures cannot drift from the store's own:
//!
//! * `smolder_buffer_bytes`, `smolder_buffer_limit_bytes`,
//!   `smolder_buffer_rows{table}` — the in-memory buffer
//! * `smolder_storage_files{table}`, `smolder_storage_file_bytes{table}` —
//!   Parquet files in the manifest
//! * `smolder_storage_persisted_through` — the last record of this
//!   process's write-ahead log in Parquet
//! * `smolder_storage_flushes_total`, `smolder_storage_failures_total`,
//!   `smolder_storage_files_compacted_total`,
//!   `smolder_storage_files_expired_total` — counters since start
//! * `smolder_storage_last_flush_timestamp_seconds`
//! * `smolder_read_cache_bytes`, `smolder_read_cache_files`,
//!   `smolder_read_cache_hits_total`, `smolder_read_cache_misses_total`,
//!   `smolder_read_cache_evictions_total` — local copies of files read
//!   from a bucket (only when kept)

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use smolder_common::Table;
use smolder_common::metrics::{counter, gauge, gauges};

use crate::Store;

/// The collector of a store's metrics.
#[derive(Debug)]
pub struct StorageCollector {
    store: Weak<Store>,
}

impl StorageCollector {
    /// A collector for `store`.
    pub fn new(store: &Arc<Store>) -> Self {
        Self {
            store: Arc::downgrade(store),
        }
    }
}

type Labels = [(&'static str, &'static str); 1];

fn per_table(value: impl Fn(Table) -> i64) -> Vec<(Labels, i64)> {
    Table::ALL
        .iter()
        .map(|&t| ([("table", t.name())], value(t)))
        .collect()
}

fn int(v: impl TryInto<i64>) -> i64 {
    v.try_into().unwrap_or(i64::MAX)
}

impl Collector for StorageCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(store) = self.store.upgrade() else {
            return Ok(());
        };
        let buffer = store.buffer();
        let manifest = store.current();
        let stats = store.stats();
        let e = &mut encoder;
        gauge(
            e,
            "buffer_bytes",
            "Arrow memory held by the in-memory buffer",
            int(buffer.used()),
        )?;
        gauge(
            e,
            "buffer_limit_bytes",
            "Configured limit of the in-memory buffer",
            int(buffer.limit()),
        )?;
        gauges(
            e,
            "buffer_rows",
            "Rows held in the in-memory buffer, by table",
            &per_table(|t| int(buffer.rows(t))),
        )?;
        gauges(
            e,
            "storage_files",
            "Parquet files listed in the manifest, by table",
            &per_table(|t| int(manifest.files_of(t).count())),
        )?;
        gauges(
            e,
            "storage_file_bytes",
            "Bytes of Parquet files listed in the manifest, by table",
            &per_table(|t| int(manifest.files_of(t).map(|f| f.bytes).sum::<u64>())),
        )?;
        gauge(
            e,
            "storage_persisted_through",
            "Sequence number of the last write-ahead-log record persisted to Parquet",
            int(manifest.persisted(store.writer())),
        )?;
        counter(
            e,
            "storage_flushes",
            "Flushes of the buffer to Parquet since start",
            stats.flushes.load(Ordering::Relaxed),
        )?;
        counter(
            e,
            "storage_failures",
            "Failed flushes, compactions and retention passes since start",
            stats.failures.load(Ordering::Relaxed),
        )?;
        counter(
            e,
            "storage_files_compacted",
            "Files merged away by compaction since start",
            stats.files_compacted.load(Ordering::Relaxed),
        )?;
        counter(
            e,
            "storage_files_expired",
            "Files deleted by retention since start",
            stats.files_expired.load(Ordering::Relaxed),
        )?;
        gauge(
            e,
            "storage_last_flush_timestamp_seconds",
            "Time of the last successful flush (Unix seconds)",
            int(stats.last_flush_ns.load(Ordering::Relaxed)) / 1_000_000_000,
        )?;
        let Some(cache) = store.read_cache() else {
            return Ok(());
        };
        let stats = cache.stats();
        gauge(
            e,
            "read_cache_bytes",
            "Bytes of local copies of files read from the bucket",
            int(cache.bytes()),
        )?;
        gauge(
            e,
            "read_cache_files",
            "Local copies of files read from the bucket",
            int(cache.files()),
        )?;
        counter(
            e,
            "read_cache_hits",
            "Reads served from a local copy since start",
            stats.hits.load(Ordering::Relaxed),
        )?;
        counter(
            e,
            "read_cache_misses",
            "Reads of Parquet files served from the bucket since start",
            stats.misses.load(Ordering::Relaxed),
        )?;
        counter(
            e,
            "read_cache_evictions",
            "Local copies removed to stay within the cache size since start",
            stats.evictions.load(Ordering::Relaxed),
        )
    }
}

//! Durable storage of smolder: the write path after conversion, and the
//! stored data the query engine reads.
//!
//! ```text
//! Store::append ─ WAL (wal) ─ Buffer (buffer) ─ flush ─ Parquet files (parquet)
//!                                   │                        │  listed in the manifest (catalog)
//!                                   └──── TableSnapshot ─────┘  compaction, retention (store)
//! ```
//!
//! The entry point is [`Store`]. Every accepted export is appended to the
//! write-ahead log before it becomes visible in the memory [`Buffer`]; a
//! background flush writes the buffer to sorted, zstd-compressed Parquet
//! files partitioned by table and hour through the `object_store` crate,
//! records them in a manifest (replaced atomically), and only then truncates
//! the log. Small files of an hour are compacted, and whole hours older than
//! a table's retention are deleted. Queries read a consistent
//! [`smolder_common::TableSnapshot`] (buffered batches plus files) through
//! [`smolder_common::TableSource`].

mod buffer;
mod cache;
mod catalog;
mod config;
mod lease;
mod location;
pub mod metrics;
mod parquet;
mod store;
/// Batches built without the OTLP conversion, for the tests of this crate and
/// of those that read through it.
#[doc(hidden)]
pub mod testing;
pub mod wal;

use datafusion::arrow::array::{AsArray, BooleanArray};
use datafusion::arrow::compute::filter_record_batch;
use datafusion::arrow::datatypes::TimestampNanosecondType;
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::record_batch::RecordBatch;
use smolder_common::Table;

pub use buffer::{Buffer, BufferFull};
pub use cache::{ReadCache, ReadCacheOptions, ReadCacheStats};
pub use config::{RetentionConfig, StorageConfig, WalConfig};
pub use lease::Lease;
pub use location::{Scheme, StorageUrl};
pub use store::{
    CompactionOptions, MaintenanceReport, Store, StoreError, StoreOptions, StoreStats, Work,
};
pub use wal::{SyncPolicy, Wal, WalOptions};

/// One hour in nanoseconds: the span of a storage partition.
pub const HOUR_NS: i64 = 3_600_000_000_000;

/// The range of item times an export was accepted with, in nanoseconds since
/// the epoch (both ends included). Items outside it — older than the table's
/// retention or too far in the future — are rejected as partial success.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeWindow {
    /// Earliest accepted time.
    pub not_before: i64,
    /// Latest accepted time.
    pub not_after: i64,
}

/// The rows of a batch inside a [`TimeWindow`], and how many were outside.
#[derive(Debug)]
pub struct InWindow {
    /// The rows inside the window; `None` when there are none.
    pub batch: Option<RecordBatch>,
    /// Rows older than the window.
    pub too_old: u64,
    /// Rows newer than the window.
    pub too_new: u64,
}

impl TimeWindow {
    /// Accepts every time.
    pub const ANY: TimeWindow = TimeWindow {
        not_before: i64::MIN,
        not_after: i64::MAX,
    };

    /// Keeps the rows of `batch` (of `table`) whose time is inside the window.
    pub fn apply(&self, table: Table, batch: RecordBatch) -> Result<InWindow, ArrowError> {
        let times = batch
            .column_by_name(table.time_column())
            .ok_or_else(|| ArrowError::SchemaError(format!("no {} column", table.time_column())))?
            .as_primitive::<TimestampNanosecondType>();
        let (mut too_old, mut too_new) = (0u64, 0u64);
        for t in times.values().iter() {
            too_old += u64::from(*t < self.not_before);
            too_new += u64::from(*t > self.not_after);
        }
        if too_old + too_new == 0 {
            return Ok(InWindow {
                batch: Some(batch),
                too_old,
                too_new,
            });
        }
        let keep: BooleanArray = times
            .values()
            .iter()
            .map(|t| Some(*t >= self.not_before && *t <= self.not_after))
            .collect();
        let kept = filter_record_batch(&batch, &keep)?;
        Ok(InWindow {
            batch: (kept.num_rows() > 0).then_some(kept),
            too_old,
            too_new,
        })
    }
}

/// The partition (start of the hour, ns) a time falls in.
pub fn partition_of(time_ns: i64) -> i64 {
    time_ns.div_euclid(HOUR_NS) * HOUR_NS
}

/// A time as RFC 3339 text, for messages.
pub fn format_time(ns: i64) -> String {
    let secs = ns.div_euclid(1_000_000_000);
    let nanos = ns.rem_euclid(1_000_000_000) as u32;
    chrono::DateTime::from_timestamp(secs, nanos).map_or_else(
        || format!("{ns} ns"),
        |t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_keeps_rows_inside_it_and_counts_the_rest() {
        let batch = testing::batch(Table::Logs, "a", &[5, 10, 15, 20, 25]);
        let window = TimeWindow {
            not_before: 10,
            not_after: 20,
        };
        let r = window.apply(Table::Logs, batch.clone()).unwrap();
        assert_eq!((r.too_old, r.too_new), (1, 1));
        assert_eq!(r.batch.unwrap().num_rows(), 3);
        let all = TimeWindow::ANY.apply(Table::Logs, batch).unwrap();
        assert_eq!(all.batch.unwrap().num_rows(), 5);
        let none = TimeWindow {
            not_before: 100,
            not_after: 200,
        }
        .apply(Table::Logs, testing::batch(Table::Logs, "a", &[1]))
        .unwrap();
        assert!(none.batch.is_none());
        assert_eq!(none.too_old, 1);
    }

    #[test]
    fn partitions_are_hours() {
        assert_eq!(partition_of(HOUR_NS + 5), HOUR_NS);
        assert_eq!(partition_of(-1), -HOUR_NS);
        assert_eq!(format_time(0), "1970-01-01T00:00:00Z");
    }
}

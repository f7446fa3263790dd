//! Shared domain types of smolder.
//!
//! Every other crate depends on this one and on nothing else of smolder's, so the
//! dependency arrows point one way:
//!
//! * [`Table`] names the telemetry tables (`spans`, `logs`, `metrics`) and
//!   [`schema`] defines their Arrow schemas — the data model documented in
//!   `docs/schema.md`;
//! * [`TableSource`] is the boundary between the write side (ingest, the
//!   write-ahead log, the buffer and the Parquet files of `smolder-storage`) and
//!   the read side (the DataFusion engine in `smolder-query`): query reads a
//!   consistent [`TableSnapshot`] of one [`Tenant`]'s data — recent batches in
//!   memory plus Parquet files in an object store — without knowing how they
//!   were written;
//! * [`memory::MemoryBudget`] is the process-wide memory budget queries,
//!   ingest and SLO rollups draw from.

pub mod schema;
pub mod secret;

pub mod clock;
pub mod config;
pub mod http;
pub mod memory;
pub mod metrics;
pub mod sync;
pub mod tenant;
pub mod text;
use std::fmt;
use std::sync::Arc;
pub use tenant::Tenant;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::object_store::ObjectStore;

/// A telemetry table, one per OTLP signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Table {
    /// One row per span (OTLP traces).
    Spans,
    /// One row per log record.
    Logs,
    /// One row per metric data point, of every metric type.
    Metrics,
}

impl Table {
    /// All tables, in a stable order.
    pub const ALL: [Table; 3] = [Table::Spans, Table::Logs, Table::Metrics];

    /// The SQL name of the table.
    pub fn name(self) -> &'static str {
        match self {
            Table::Spans => "spans",
            Table::Logs => "logs",
            Table::Metrics => "metrics",
        }
    }

    /// The OTLP signal name the table stores (`traces`, `logs`, `metrics`).
    pub fn signal(self) -> &'static str {
        match self {
            Table::Spans => "traces",
            Table::Logs => "logs",
            Table::Metrics => "metrics",
        }
    }

    /// The column that places a row in time (`start_time` for spans, `time`
    /// otherwise): files are partitioned and pruned by it.
    pub fn time_column(self) -> &'static str {
        match self {
            Table::Spans => "start_time",
            Table::Logs | Table::Metrics => "time",
        }
    }

    /// Whether its Parquet files carry a bloom filter on `trace_id` per row
    /// group (spans and logs are looked up by trace; metrics' exemplar trace
    /// ids are not).
    pub fn has_trace_id_bloom(self) -> bool {
        matches!(self, Table::Spans | Table::Logs)
    }

    /// The Arrow schema of the table.
    pub fn schema(self) -> SchemaRef {
        match self {
            Table::Spans => schema::spans(),
            Table::Logs => schema::logs(),
            Table::Metrics => schema::metrics(),
        }
    }
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A Parquet file of a table, as the query engine needs to know it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredFile {
    /// Path of the file in the object store.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// Rows in the file.
    pub rows: u64,
    /// Smallest value of the table's time column, in nanoseconds since the epoch.
    pub min_time: i64,
    /// Largest value of the table's time column, in nanoseconds since the epoch.
    pub max_time: i64,
}

/// What a query of one table reads: batches still in memory and Parquet
/// files, taken together so that no row is in both or in neither.
#[derive(Debug, Clone, Default)]
pub struct TableSnapshot {
    /// Recent batches held in memory. Every batch has exactly the schema
    /// [`Table::schema`] returns.
    pub batches: Vec<RecordBatch>,
    /// Persisted files, each sorted by `service_name` and then the time column.
    pub files: Vec<StoredFile>,
    /// Batches other processes hold in memory (an ingester's unflushed
    /// rows), already cut to the [`Scan`]'s projection and perhaps to its
    /// filters.
    pub remote: Vec<RecordBatch>,
}

/// What a query reads of a table, for sources that can narrow what they
/// send: the columns and the filters (which the query applies again on top,
/// so a source may use any of them, or none).
#[derive(Debug, Clone, Default)]
pub struct Scan {
    /// Indices of the columns read in [`Table::schema`]; `None` for all.
    pub projection: Option<Vec<usize>>,
    /// The query's filters on the table.
    pub filters: Vec<datafusion::logical_expr::Expr>,
}

/// Read access to the stored data of each table.
#[async_trait::async_trait]
pub trait TableSource: Send + Sync + fmt::Debug {
    /// A consistent snapshot of what is currently stored for `table` by
    /// `tenant` — and nothing of any other tenant's.
    async fn snapshot(
        &self,
        tenant: &Tenant,
        table: Table,
        scan: &Scan,
    ) -> datafusion::error::Result<TableSnapshot>;

    /// The object store holding the snapshot's files, and the URL the query
    /// engine registers it under; `None` when the source has no files.
    fn object_store(&self) -> Option<(ObjectStoreUrl, Arc<dyn ObjectStore>)>;

    /// What a user of the last snapshots should know they miss (an ingester
    /// that did not answer); nothing by default.
    fn warnings(&self) -> Vec<String> {
        Vec::new()
    }
}

/// A [`TableSource`] of batches held in memory, for every tenant alike and
/// without files: what tests, benchmarks and simulations query when the
/// storage layer (its log, buffer and files) is not what they are about.
#[derive(Debug, Default)]
pub struct BatchesInMemory {
    tables: std::sync::Mutex<Vec<(Table, RecordBatch)>>,
}

impl BatchesInMemory {
    /// Adds a batch to `table` (nothing for `None`, as conversions return).
    pub fn push(&self, table: Table, batch: Option<RecordBatch>) {
        if let Some(b) = batch {
            sync::lock(&self.tables).push((table, b));
        }
    }
}

#[async_trait::async_trait]
impl TableSource for BatchesInMemory {
    async fn snapshot(
        &self,
        _tenant: &Tenant,
        table: Table,
        _scan: &Scan,
    ) -> datafusion::error::Result<TableSnapshot> {
        Ok(TableSnapshot {
            batches: sync::lock(&self.tables)
                .iter()
                .filter(|(t, _)| *t == table)
                .map(|(_, b)| b.clone())
                .collect(),
            files: Vec::new(),
            remote: Vec::new(),
        })
    }

    fn object_store(&self) -> Option<(ObjectStoreUrl, Arc<dyn ObjectStore>)> {
        None
    }
}

#[async_trait::async_trait]
impl<T: TableSource + ?Sized> TableSource for Arc<T> {
    async fn snapshot(
        &self,
        tenant: &Tenant,
        table: Table,
        scan: &Scan,
    ) -> datafusion::error::Result<TableSnapshot> {
        (**self).snapshot(tenant, table, scan).await
    }

    fn object_store(&self) -> Option<(ObjectStoreUrl, Arc<dyn ObjectStore>)> {
        (**self).object_store()
    }

    fn warnings(&self) -> Vec<String> {
        (**self).warnings()
    }
}

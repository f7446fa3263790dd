//! Shared domain types of smolder.
//!
//! Every other crate depends on this one and on nothing else of smolder's, so the
//! dependency arrows point one way:
//!
//! * [`Table`] names the telemetry tables (`spans`, `logs`, `metrics`) and
//!   [`schema`] defines their Arrow schemas — the data model documented in
//!   `docs/schema.md`;
//! * [`TableSource`] is the boundary between the write side (ingest, later the WAL
//!   and the Parquet persister) and the read side (the DataFusion engine in
//!   `smolder-query`): query reads stored batches through it without knowing how
//!   they were written.

pub mod schema;

use std::fmt;
use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;

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

/// Read access to the stored record batches of each table.
///
/// The in-memory buffer implements it today; the Parquet store will implement it
/// too, and the query engine unions the sources it is given.
pub trait TableSource: Send + Sync + fmt::Debug {
    /// A consistent snapshot of the batches currently held for `table`. Every batch
    /// has exactly the schema [`Table::schema`] returns.
    fn snapshot(&self, table: Table) -> Vec<RecordBatch>;
}

impl<T: TableSource + ?Sized> TableSource for Arc<T> {
    fn snapshot(&self, table: Table) -> Vec<RecordBatch> {
        (**self).snapshot(table)
    }
}

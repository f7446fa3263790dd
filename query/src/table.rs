//! The `TableProvider` of each telemetry table: the union of what every
//! [`TableSource`] holds, snapshotted when the query is planned.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::Session;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::Result;
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;
use smolder_common::{Table, TableSource};

/// One of the tables `spans`, `logs`, `metrics`.
#[derive(Debug)]
pub struct SourceTable {
    table: Table,
    sources: Vec<Arc<dyn TableSource>>,
}

impl SourceTable {
    /// The table `table` over `sources`.
    pub fn new(table: Table, sources: Vec<Arc<dyn TableSource>>) -> Self {
        Self { table, sources }
    }
}

#[async_trait]
impl TableProvider for SourceTable {
    fn schema(&self) -> SchemaRef {
        self.table.schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let batches: Vec<_> = self
            .sources
            .iter()
            .flat_map(|s| s.snapshot(self.table))
            .collect();
        // Spread the batches over the configured number of partitions so that
        // scans, filters and partial aggregations run on every core.
        let n = state
            .config()
            .target_partitions()
            .max(1)
            .min(batches.len().max(1));
        let mut partitions = vec![Vec::new(); n];
        for (i, batch) in batches.into_iter().enumerate() {
            partitions[i % n].push(batch);
        }
        let exec =
            MemorySourceConfig::try_new_exec(&partitions, self.schema(), projection.cloned())?;
        Ok(exec)
    }
}

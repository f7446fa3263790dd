//! The SQL table `slo_rollups`: every SLO's buckets as the engine holds them.
//!
//! | column | type | |
//! |---|---|---|
//! | `slo` | Utf8 | the SLO's id |
//! | `group` | Utf8 | the group, a JSON object of `group_by` expression → value (`{}` without groups) |
//! | `bucket_start` | Timestamp(ns, UTC) | start of the bucket |
//! | `bucket_end` | Timestamp(ns, UTC) | end of the bucket (exclusive) |
//! | `good` | Float64 | good events (or, for counters, increments) in the bucket |
//! | `total` | Float64 | all events in the bucket |
//!
//! Only buckets with events are listed. Each tenant's `slo_rollups` holds its
//! own SLOs' buckets (its engine's in [`SloEngines`]), nothing else.

use std::sync::{Arc, LazyLock};

use async_trait::async_trait;
use datafusion::arrow::array::{BooleanArray, Float64Array, StringArray, TimestampNanosecondArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::Session;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::Result;
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;

use datafusion::prelude::SessionContext;
use smolder_common::Tenant;

use crate::SloEngines;

/// The `slo_rollups` table as one tenant sees it.
#[derive(Debug)]
pub struct RollupTable {
    engines: std::sync::Weak<SloEngines>,
    tenant: Tenant,
}

impl RollupTable {
    /// The table over `tenant`'s SLOs' rollups.
    pub fn new(engines: &Arc<SloEngines>, tenant: Tenant) -> Self {
        Self {
            engines: Arc::downgrade(engines),
            tenant,
        }
    }
}

/// `slo_rollups` in every tenant's query session.
#[derive(Debug)]
pub struct RollupTables(pub std::sync::Weak<SloEngines>);

impl smolder_query::TenantTables for RollupTables {
    fn register(&self, tenant: &Tenant, ctx: &SessionContext) -> Result<()> {
        ctx.register_table(
            "slo_rollups",
            Arc::new(RollupTable {
                engines: std::sync::Weak::clone(&self.0),
                tenant: tenant.clone(),
            }),
        )?;
        Ok(())
    }
}

fn schema() -> SchemaRef {
    static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
        let ts = DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()));
        Arc::new(Schema::new(vec![
            Field::new("slo", DataType::Utf8, false),
            Field::new("group", DataType::Utf8, false),
            Field::new("bucket_start", ts.clone(), false),
            Field::new("bucket_end", ts, false),
            Field::new("good", DataType::Float64, false),
            Field::new("total", DataType::Float64, false),
            Field::new("excluded", DataType::Boolean, false),
        ]))
    });
    Arc::clone(&SCHEMA)
}

#[async_trait]
impl TableProvider for RollupTable {
    fn schema(&self) -> SchemaRef {
        schema()
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let engine = self.engines.upgrade().and_then(|e| e.get(&self.tenant));
        let rows = match engine {
            Some(engine) => engine.rollup_rows().await,
            None => Vec::new(),
        };
        let utc = |v: Vec<i64>| TimestampNanosecondArray::from(v).with_timezone("UTC");
        let batch = RecordBatch::try_new(
            schema(),
            vec![
                Arc::new(StringArray::from_iter_values(rows.iter().map(|r| &r.slo))),
                Arc::new(StringArray::from_iter_values(rows.iter().map(|r| &r.group))),
                Arc::new(utc(rows.iter().map(|r| r.start_ns).collect())),
                Arc::new(utc(rows.iter().map(|r| r.start_ns + r.width_ns).collect())),
                Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.good))),
                Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.total))),
                Arc::new(BooleanArray::from(
                    rows.iter().map(|r| r.excluded).collect::<Vec<bool>>(),
                )),
            ],
        )?;
        let exec: Arc<dyn ExecutionPlan> =
            MemorySourceConfig::try_new_exec(&[vec![batch]], schema(), projection.cloned())?;
        Ok(exec)
    }
}

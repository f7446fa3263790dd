//! The `TableProvider` of each telemetry table: the union of what every
//! [`TableSource`] holds — batches in memory and Parquet files — snapshotted
//! when the query is planned. A provider belongs to one tenant and asks the
//! sources for that tenant's data only: no filter a query could remove or
//! get around, the other tenants' rows are never in the plan.
//!
//! Filters are pushed down as far as they go: the query's predicate prunes
//! whole files by the time range the manifest records for each, and then, in
//! the Parquet reader, row groups and pages by their statistics and `trace_id`
//! lookups by bloom filter — the filters held in memory by [`BloomCache`], so
//! that a lookup opens only the files and row groups that may hold the trace.
//! DataFusion still applies every filter on top (they are reported
//! "inexact"), so pruning only ever saves work.

use std::collections::HashSet;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{ArrayRef, BooleanArray, TimestampNanosecondArray, UInt64Array};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::Session;
use datafusion::common::pruning::PruningStatistics;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::common::{Column, DFSchema, ScalarValue};
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::physical_plan::parquet::{
    CachedParquetFileReaderFactory, ParquetAccessPlan, RowGroupAccess,
};
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder, ParquetSource};
use datafusion::datasource::source::DataSourceExec;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::Result;
use datafusion::execution::cache::cache_manager::FileMetadataCache;
use datafusion::logical_expr::utils::conjunction;
use datafusion::logical_expr::{Expr, Operator, TableProviderFilterPushDown};
use datafusion::object_store::ObjectStore;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_optimizer::pruning::PruningPredicateBuilder;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::physical_plan::union::UnionExec;
use futures::{StreamExt as _, TryStreamExt as _};
use smolder_common::{Scan, StoredFile, Table, TableSource, Tenant};

use crate::bloom::{BloomCache, looked_up_ids};

/// One of the tables `spans`, `logs`, `metrics`.
#[derive(Debug)]
pub struct SourceTable {
    tenant: Tenant,
    table: Table,
    sources: Vec<Arc<dyn TableSource>>,
    blooms: Arc<BloomCache>,
}

impl SourceTable {
    /// `tenant`'s table `table` over `sources`, looking trace ids up in the
    /// filters `blooms` holds.
    pub(crate) fn new(
        tenant: Tenant,
        table: Table,
        sources: Vec<Arc<dyn TableSource>>,
        blooms: Arc<BloomCache>,
    ) -> Self {
        Self {
            tenant,
            table,
            sources,
            blooms,
        }
    }
}

/// The time range of each file, as pruning statistics of the time column.
struct FileTimes<'a> {
    time_column: &'a str,
    files: &'a [StoredFile],
}

impl FileTimes<'_> {
    fn times(&self, column: &Column, pick: impl Fn(&StoredFile) -> i64) -> Option<ArrayRef> {
        (column.name == self.time_column).then(|| {
            Arc::new(
                TimestampNanosecondArray::from_iter_values(self.files.iter().map(pick))
                    .with_timezone("UTC"),
            ) as ArrayRef
        })
    }
}

impl PruningStatistics for FileTimes<'_> {
    fn min_values(&self, column: &Column) -> Option<ArrayRef> {
        self.times(column, |f| f.min_time)
    }

    fn max_values(&self, column: &Column) -> Option<ArrayRef> {
        self.times(column, |f| f.max_time)
    }

    fn num_containers(&self) -> usize {
        self.files.len()
    }

    fn null_counts(&self, column: &Column) -> Option<ArrayRef> {
        // The time column is never null.
        (column.name == self.time_column)
            .then(|| Arc::new(UInt64Array::from(vec![0; self.files.len()])) as ArrayRef)
    }

    fn row_counts(&self) -> Option<ArrayRef> {
        Some(Arc::new(UInt64Array::from_iter_values(
            self.files.iter().map(|f| f.rows),
        )))
    }

    fn contained(&self, _column: &Column, _values: &HashSet<ScalarValue>) -> Option<BooleanArray> {
        None
    }
}

impl SourceTable {
    /// The files whose time range can hold rows matching `predicate`.
    fn prune(
        &self,
        files: Vec<StoredFile>,
        predicate: Option<&Arc<dyn PhysicalExpr>>,
    ) -> Result<Vec<StoredFile>> {
        let Some(predicate) = predicate else {
            return Ok(files);
        };
        let Some(pruning) = PruningPredicateBuilder::new()
            .with_file_schema(self.schema())
            .build(Arc::clone(predicate))
        else {
            return Ok(files);
        };
        let keep = pruning.prune(&FileTimes {
            time_column: self.table.time_column(),
            files: &files,
        })?;
        Ok(files
            .into_iter()
            .zip(keep)
            .filter_map(|(f, keep)| keep.then_some(f))
            .collect())
    }

    /// Of `files`, those whose bloom filters say they may hold one of `ids`,
    /// each with the row groups to read when it is not all of them.
    async fn files_with_ids(
        &self,
        store: &Arc<dyn ObjectStore>,
        metadata: &Arc<FileMetadataCache>,
        files: Vec<StoredFile>,
        ids: &[String],
    ) -> Result<Vec<(StoredFile, Option<ParquetAccessPlan>)>> {
        let checked = futures::stream::iter(files)
            .map(|file| async move {
                let meta = PartitionedFile::new(file.path.clone(), file.size).object_meta;
                let blooms = self.blooms.file(store.as_ref(), &meta, metadata).await?;
                Ok::<_, datafusion::error::DataFusionError>((file, blooms.candidates(ids)))
            })
            .buffered(BLOOM_READS_IN_FLIGHT)
            .try_collect::<Vec<_>>()
            .await?;
        Ok(checked
            .into_iter()
            .filter(|(_, candidates)| candidates.iter().any(|&c| c))
            .map(|(file, candidates)| {
                let plan = (!candidates.iter().all(|&c| c)).then(|| {
                    ParquetAccessPlan::new(
                        candidates
                            .into_iter()
                            .map(|c| {
                                if c {
                                    RowGroupAccess::Scan
                                } else {
                                    RowGroupAccess::Skip
                                }
                            })
                            .collect(),
                    )
                });
                (file, plan)
            })
            .collect())
    }
}

/// Files whose bloom filters a lookup reads at once when they are not in memory.
const BLOOM_READS_IN_FLIGHT: usize = 8;

/// Whether a filter looks rows up by id: `trace_id = '…'`, `span_id IN (…)`.
fn is_id_lookup(filter: &Expr) -> bool {
    let is_id = |e: &Expr| matches!(e, Expr::Column(c) if matches!(c.name.as_str(), "trace_id" | "span_id" | "parent_span_id"));
    let mut found = false;
    let _ = filter.apply(|e| {
        found |= match e {
            Expr::BinaryExpr(b) if b.op == Operator::Eq => {
                (is_id(&b.left) && matches!(*b.right, Expr::Literal(..)))
                    || (is_id(&b.right) && matches!(*b.left, Expr::Literal(..)))
            }
            Expr::InList(list) => !list.negated && is_id(&list.expr),
            _ => false,
        };
        Ok(if found {
            TreeNodeRecursion::Stop
        } else {
            TreeNodeRecursion::Continue
        })
    });
    found
}

#[async_trait]
impl TableProvider for SourceTable {
    fn schema(&self) -> SchemaRef {
        self.table.schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let schema = self.schema();
        let predicate = conjunction(filters.iter().cloned())
            .map(|expr| {
                let df_schema = DFSchema::try_from(Arc::clone(&schema))?;
                state.create_physical_expr(expr, &df_schema)
            })
            .transpose()?;
        let target_partitions = state.config().target_partitions().max(1);
        // A lookup by trace id asks the bloom filters which files to open.
        let ids = self
            .table
            .has_trace_id_bloom()
            .then(|| filters.iter().find_map(looked_up_ids))
            .flatten();
        let metadata = state.runtime_env().cache_manager.get_file_metadata_cache();

        let mut inputs: Vec<Arc<dyn ExecutionPlan>> = Vec::new();
        // Batches in memory, cut to the projection (remote ones come so).
        let mut batches = Vec::new();
        let scan = Scan {
            projection: projection.cloned(),
            filters: filters.to_vec(),
        };
        for source in &self.sources {
            let snapshot = source.snapshot(&self.tenant, self.table, &scan).await?;
            for batch in snapshot.batches {
                batches.push(match projection {
                    Some(p) => batch.project(p)?,
                    None => batch,
                });
            }
            batches.extend(snapshot.remote);
            let files = self.prune(snapshot.files, predicate.as_ref())?;
            if files.is_empty() {
                continue;
            }
            let Some((url, store)) = source.object_store() else {
                continue;
            };
            let mut files = match &ids {
                Some(ids) => self.files_with_ids(&store, &metadata, files, ids).await?,
                None => files.into_iter().map(|f| (f, None)).collect(),
            };
            if files.is_empty() {
                continue;
            }
            // Spread the files over the partitions, largest first, so that
            // each core reads about the same number of bytes.
            files.sort_by_key(|(f, _)| std::cmp::Reverse(f.size));
            let n = target_partitions.min(files.len());
            let mut groups: Vec<(u64, Vec<PartitionedFile>)> = vec![(0, Vec::new()); n];
            for (file, plan) in files {
                let lightest = groups
                    .iter_mut()
                    .min_by_key(|(bytes, _)| *bytes)
                    .expect("at least one group");
                lightest.0 += file.size;
                let mut partitioned = PartitionedFile::new(file.path, file.size);
                if let Some(plan) = plan {
                    partitioned = partitioned.with_extension(plan);
                }
                lightest.1.push(partitioned);
            }
            // A lookup by id wants late materialization (the id column is
            // decoded first, the others only for the few rows that match);
            // a scan is faster without it.
            let lookup = filters.iter().any(is_id_lookup);
            // Footers and page indexes are parsed once and kept in the
            // session's metadata cache (files are immutable under their
            // names): a query over a month of hourly files does not re-read
            // 700 footers.
            let mut parquet = ParquetSource::new(Arc::clone(&schema))
                .with_parquet_file_reader_factory(Arc::new(CachedParquetFileReaderFactory::new(
                    store,
                    Arc::clone(&metadata),
                )))
                .with_enable_page_index(true)
                // Filters already consulted from memory are not read again.
                .with_bloom_filter_on_read(ids.is_none())
                .with_pushdown_filters(lookup)
                .with_reorder_filters(lookup);
            if let Some(predicate) = &predicate {
                parquet = parquet.with_predicate(Arc::clone(predicate));
            }
            let config = FileScanConfigBuilder::new(url, Arc::new(parquet))
                .with_file_groups(groups.into_iter().map(|(_, g)| FileGroup::new(g)).collect())
                .with_projection_indices(projection.cloned())?
                .with_limit(limit)
                .build();
            inputs.push(DataSourceExec::from_data_source(config));
        }
        let projected = match projection {
            Some(p) => Arc::new(schema.project(p)?),
            None => Arc::clone(&schema),
        };
        if !batches.is_empty() {
            // Spread the batches over the partitions so that scans, filters
            // and partial aggregations run on every core.
            let n = target_partitions.min(batches.len());
            let mut partitions = vec![Vec::new(); n];
            for (i, batch) in batches.into_iter().enumerate() {
                partitions[i % n].push(batch);
            }
            inputs.push(MemorySourceConfig::try_new_exec(
                &partitions,
                Arc::clone(&projected),
                None,
            )?);
        }
        if inputs.is_empty() {
            return Ok(Arc::new(EmptyExec::new(projected)));
        }
        UnionExec::try_new(inputs)
    }
}

#[cfg(test)]
mod tests {
    use datafusion::prelude::{col, lit};

    use super::*;

    #[test]
    fn lookups_by_id_are_told_apart_from_scans() {
        assert!(is_id_lookup(&col("trace_id").eq(lit("5b8e"))));
        assert!(is_id_lookup(&lit("5b8e").eq(col("span_id"))));
        assert!(is_id_lookup(
            &col("start_time")
                .gt(lit(5))
                .and(col("trace_id").in_list(vec![lit("a"), lit("b")], false))
        ));
        assert!(!is_id_lookup(&col("kind").eq(lit("SERVER"))));
        assert!(!is_id_lookup(&col("trace_id").not_eq(lit("5b8e"))));
        assert!(!is_id_lookup(
            &col("trace_id").in_list(vec![lit("a")], true)
        ));
    }
}

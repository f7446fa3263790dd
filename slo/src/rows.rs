//! Row SLIs (spans or logs counted by SQL conditions, no groups) rolled up
//! without planning a query per SLO: each SLO's conditions are compiled once
//! into DataFusion physical expressions, and a tick reads the new rows of a
//! table with one plain query and evaluates every SLO's conditions on them.
//! Planning a query with a hundred `FILTER` aggregates cost far more than
//! evaluating them.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, BooleanArray};
use datafusion::arrow::compute::prep_null_mask_filter;
use datafusion::arrow::datatypes::{Schema, TimestampNanosecondType};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::DFSchema;
use datafusion::logical_expr::simplify::SimplifyContext;
use datafusion::optimizer::simplify_expressions::ExprSimplifier;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::utils::{collect_columns, reassign_expr_columns};
use datafusion::prelude::SessionContext;

use crate::model::{SliKind, SloDefinition};
use crate::{Error, Result};

/// The conditions of a row SLI, compiled against its table's schema.
#[derive(Debug, Clone)]
pub(crate) struct RowConditions {
    good: Count,
    total: Arc<dyn PhysicalExpr>,
}

#[derive(Debug, Clone)]
enum Count {
    /// Rows where this holds.
    Matching(Arc<dyn PhysicalExpr>),
    /// Total rows less those where this holds.
    TotalLess(Arc<dyn PhysicalExpr>),
    /// None.
    Zero,
}

impl RowConditions {
    /// The conditions of `def` when it is a row SLI without groups.
    pub(crate) fn compile(ctx: &SessionContext, def: &SloDefinition) -> Result<Option<Self>> {
        if !def.group_by.is_empty() {
            return Ok(None);
        }
        let schema = DFSchema::try_from(def.sli.table.schema().as_ref().clone())
            .map_err(|e| Error::Query(e.to_string()))?;
        // Coerced and simplified before it becomes a physical expression, as
        // the planner does for a query: some functions (`coalesce`, `nvl`)
        // only run once simplified into CASE, and fail at execution if not.
        let simplifier = ExprSimplifier::new(
            SimplifyContext::builder()
                .with_schema(Arc::new(schema.clone()))
                .build(),
        );
        let compile = |sql: &str| -> Result<Arc<dyn PhysicalExpr>> {
            let expr = ctx
                .parse_sql_expr(sql, &schema)
                .and_then(|e| simplifier.coerce(e, &schema))
                .and_then(|e| simplifier.simplify(e))
                .and_then(|e| ctx.create_physical_expr(e, &schema))
                .map_err(|e| Error::Query(format!("{sql}: {e}")))?;
            Ok(expr)
        };
        Ok(Some(match &def.sli.kind {
            SliKind::Rows { good, bad, total } => Self {
                good: match (good, bad) {
                    (Some(g), _) => Count::Matching(compile(g)?),
                    (None, Some(b)) => Count::TotalLess(compile(b)?),
                    (None, None) => Count::Zero,
                },
                total: compile(total)?,
            },
            SliKind::Threshold {
                filter,
                value,
                op,
                threshold,
            } => Self {
                good: Count::Matching(compile(&format!(
                    "({filter}) AND ({value}) {} {threshold:?}",
                    op.sql()
                ))?),
                total: compile(filter)?,
            },
            SliKind::Counter { .. } | SliKind::Histogram { .. } => return Ok(None),
        }))
    }

    fn exprs(&self) -> impl Iterator<Item = &Arc<dyn PhysicalExpr>> {
        let good = match &self.good {
            Count::Matching(e) | Count::TotalLess(e) => Some(e),
            Count::Zero => None,
        };
        good.into_iter().chain(std::iter::once(&self.total))
    }
}

/// The columns `conditions` read, by name, in a stable order.
pub(crate) fn columns<'a>(conditions: impl IntoIterator<Item = &'a RowConditions>) -> Vec<String> {
    let mut names = BTreeSet::new();
    for c in conditions {
        for e in c.exprs() {
            names.extend(collect_columns(e).into_iter().map(|c| c.name().to_string()));
        }
    }
    names.into_iter().collect()
}

/// Counts good and total rows per bucket for several SLOs over the batches
/// of one read (their column indexes are fitted to its schema once).
pub(crate) struct Counter {
    slos: Vec<(Count, Arc<dyn PhysicalExpr>)>,
    time: usize,
    bucket_ns: i64,
    counts: Vec<BTreeMap<i64, [f64; 2]>>,
}

impl Counter {
    /// A counter for `conditions` over rows of `schema`, whose column `time`
    /// is the rows' timestamp.
    pub(crate) fn new(
        conditions: &[&RowConditions],
        schema: &Schema,
        time: usize,
        bucket_ns: i64,
    ) -> Result<Self> {
        let fit = |e: &Arc<dyn PhysicalExpr>| {
            reassign_expr_columns(Arc::clone(e), schema).map_err(|e| Error::Query(e.to_string()))
        };
        let mut slos = Vec::with_capacity(conditions.len());
        for c in conditions {
            let good = match &c.good {
                Count::Matching(e) => Count::Matching(fit(e)?),
                Count::TotalLess(e) => Count::TotalLess(fit(e)?),
                Count::Zero => Count::Zero,
            };
            slos.push((good, fit(&c.total)?));
        }
        Ok(Self {
            counts: vec![BTreeMap::new(); slos.len()],
            slos,
            time,
            bucket_ns,
        })
    }

    /// Adds the rows of `batch`.
    pub(crate) fn add(&mut self, batch: &RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let times = batch
            .column(self.time)
            .as_primitive_opt::<TimestampNanosecondType>()
            .ok_or_else(|| Error::Query("the time column is not in nanoseconds".into()))?;
        let buckets: Vec<i64> = times
            .values()
            .iter()
            .map(|t| t.div_euclid(self.bucket_ns))
            .collect();
        let matching = |e: &Arc<dyn PhysicalExpr>| -> Result<BooleanArray> {
            let value = e
                .evaluate(batch)
                .and_then(|v| v.into_array(batch.num_rows()))
                .map_err(|e| Error::Query(e.to_string()))?;
            let value = value
                .as_boolean_opt()
                .ok_or_else(|| Error::Query("an SLI condition is not a boolean".into()))?;
            // NULL counts as false, as in `FILTER (WHERE …)`.
            Ok(if value.null_count() > 0 {
                prep_null_mask_filter(value)
            } else {
                value.clone()
            })
        };
        for ((good, total), counts) in self.slos.iter().zip(&mut self.counts) {
            let total = matching(total)?;
            for i in total.values().set_indices() {
                counts.entry(buckets[i]).or_default()[1] += 1.0;
            }
            match good {
                Count::Matching(e) => {
                    for i in matching(e)?.values().set_indices() {
                        counts.entry(buckets[i]).or_default()[0] += 1.0;
                    }
                }
                Count::TotalLess(e) => {
                    for i in total.values().set_indices() {
                        counts.entry(buckets[i]).or_default()[0] += 1.0;
                    }
                    for i in matching(e)?.values().set_indices() {
                        counts.entry(buckets[i]).or_default()[0] -= 1.0;
                    }
                }
                Count::Zero => {}
            }
        }
        Ok(())
    }

    /// Good and total per bucket with events, for each SLO in order.
    pub(crate) fn finish(self) -> Vec<Vec<(i64, [f64; 2])>> {
        self.counts
            .into_iter()
            .map(|c| {
                c.into_iter()
                    .filter(|(_, [g, t])| *g != 0.0 || *t != 0.0)
                    .collect()
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Origin;
    use crate::spec::{Defaults, load_texts};

    /// The demo's frontend SLOs use `coalesce`, which DataFusion only runs
    /// once simplified into CASE: compiled without simplifying, the batched
    /// rollup failed on every tick and fell back to one query per SLO.
    #[test]
    fn conditions_with_functions_the_planner_rewrites_evaluate() {
        let yaml = smolder_sample_data::fixtures::availability_slo("frontend").replace(
            "service_name = 'frontend' AND status_code <> 'ERROR'",
            "coalesce(status_message, '') = '' AND nvl(http_route, '/') <> '/boom'",
        );
        assert!(yaml.contains("coalesce"), "the fixture's filter changed");
        let loaded = load_texts(&[("t".into(), yaml)], Defaults::default(), &Origin::Api);
        assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
        let def = &loaded.slos[0];
        let conditions = RowConditions::compile(&SessionContext::new(), def)
            .unwrap()
            .unwrap();
        let batch = RecordBatch::new_empty(def.sli.table.schema());
        for e in conditions.exprs() {
            e.evaluate(&batch).expect("the condition evaluates");
        }
    }
}

//! Updating rollups: the rollup queries of one SLO (or of row SLOs rolled up
//! together over one read of their table), run through the query engine
//! within the SLO query timeout with panics caught, and their results put
//! into the SLO's buckets.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{DataType, Float64Type, Int64Type};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::prelude::SQLOptions;
use futures::FutureExt as _;
use futures::StreamExt as _;
use smolder_common::Table;

use super::backfill::{BackfillBudget, OldestRows};
use super::state::{InstanceState, Runtime};
use super::{GroupKey, SloEngine};
use crate::model::duration_ns;
use crate::persist::{StoredState, Update};
use crate::rollup::Rollup;
use crate::rows::{self, Counter, RowConditions};
use crate::sql::{Baseline, Range, baseline_query, rollup_query, ts};
use crate::{Error, Result};

/// Updates kept for a database that fails, at most (about an hour of ticks
/// for 100 SLOs at the default interval).
pub(super) const MAX_UNSAVED: usize = 50_000;

/// Rows of a batch a row SLI's conditions are evaluated on at a time.
pub(super) const EVAL_SLICE_ROWS: usize = 1024;

pub(super) fn now_index(ns: i64, bucket_ns: i64) -> i64 {
    ns.div_euclid(bucket_ns)
}

impl SloEngine {
    /// Brings one SLO's rollups up to `now`, or as close as the tick's
    /// backfill budget allows: history is read chunk by chunk.
    pub(super) async fn update(
        &self,
        rt: &Runtime,
        now: i64,
        oldest: &OldestRows,
        budget: &BackfillBudget,
    ) -> Option<Update> {
        let mut st = rt.state.lock().await;
        if st.retry_at > now {
            // It failed recently: wait out its back-off.
            return None;
        }
        let b = rt.bucket_ns;
        let chunk = self.chunk_ns(b);
        let first = self.first_bucket(&st, b);
        let started = Instant::now();
        let mut rows = Vec::new();
        let mut from = self
            .read_from(rt.def.sli.table, first, b, now, oldest, budget)
            .await?;
        let mut done = None;
        while from < now {
            let to = now.min(from + chunk);
            match self
                .guarded(self.update_chunk(rt, &mut st, from, to, now, &mut rows))
                .await
            {
                Ok(()) => done = Some(to),
                Err(e) => {
                    let message = e.to_string();
                    if st.last_error.as_deref() != Some(message.as_str()) {
                        tracing::warn!(slo = %rt.def.id, error = %message, "Computing the SLO's rollups failed.");
                    }
                    st.failed(message, now, self.options.interval);
                    break;
                }
            }
            st.succeeded();
            if to < now && !budget.spend() {
                break;
            }
            from = to;
        }
        let to = done?;
        st.last_update = Some(started.elapsed());
        Some(stored_update(rt, &st, first, to, rows))
    }

    /// Recomputes the buckets of `[from, to)` (`from` on a bucket boundary).
    pub(super) async fn update_chunk(
        &self,
        rt: &Runtime,
        st: &mut InstanceState,
        from: i64,
        to: i64,
        now: i64,
        rows: &mut Vec<(String, i64, f64, f64)>,
    ) -> Result<()> {
        let b = rt.bucket_ns;
        let lookback = duration_ns(self.options.counter_lookback);
        let baselines: Vec<Baseline> = st.baselines.values().copied().collect();
        let sql = rollup_query(
            &rt.def,
            Range {
                bucket_ns: b,
                from_ns: from,
                to_ns: to,
                lookback_ns: lookback,
            },
            &baselines,
        );
        let batches = self.run(&sql).await?;
        let groups = rt.def.group_by.len();
        let mut results: BTreeMap<GroupKey, Vec<(i64, [f64; 2])>> = BTreeMap::new();
        for batch in &batches {
            read_batch(batch, groups, &mut results);
        }
        // The last point of each cumulative series before what the next
        // update reads: its previous point even after a long silence.
        let read_from = from - lookback;
        let cutoff = (to - duration_ns(self.options.lateness)).div_euclid(b) * b - lookback;
        if cutoff > read_from
            && let Some(sql) = baseline_query(&rt.def, read_from, cutoff)
        {
            for batch in self.run(&sql).await? {
                read_baselines(&batch, &mut st.baselines);
            }
            // Series silent for a whole horizon are gone.
            let oldest = now - duration_ns(rt.def.horizon(now));
            st.baselines.retain(|_, b| b.time >= oldest);
        }
        apply_results(rt, st, (from, to), now, results, rows);
        st.account()
    }

    /// Updates the row SLOs without groups on the same table, bucket width
    /// and first bucket together: one read of the new rows (per chunk of
    /// history while they backfill) for all of them, their conditions
    /// evaluated on it. Returns their updates, the SLOs it could not update
    /// so (or whose read failed), left to [`Self::update`], and among those
    /// the row SLOs that should have been updated so, with why not.
    pub(super) async fn update_batched(
        &self,
        runtimes: &[Arc<Runtime>],
        now: i64,
        oldest: &OldestRows,
        budget: &BackfillBudget,
    ) -> (Vec<Update>, Vec<Arc<Runtime>>, Vec<(String, String)>) {
        let mut sets: BTreeMap<(&'static str, i64, i64), Vec<Arc<Runtime>>> = BTreeMap::new();
        let mut rest = Vec::new();
        let mut fallbacks = Vec::new();
        for rt in runtimes {
            if let Some(e) = &rt.rows_error {
                fallbacks.push((rt.def.id.clone(), e.clone()));
            }
            let st = rt.state.lock().await;
            // An SLO whose last update failed goes alone, so that a slow or
            // failing condition does not hold up the others.
            if rt.rows.is_some() && st.last_error.is_none() {
                let first = self.first_bucket(&st, rt.bucket_ns);
                sets.entry((rt.def.sli.table.name(), rt.bucket_ns, first))
                    .or_default()
                    .push(Arc::clone(rt));
            } else {
                rest.push(Arc::clone(rt));
            }
        }
        let mut updates = Vec::new();
        for ((_, b, first), members) in sets {
            let table = members[0].def.sli.table;
            let Some(from) = self.read_from(table, first, b, now, oldest, budget).await else {
                continue;
            };
            match self.update_batch(&members, first, from, now, budget).await {
                Ok(done) => updates.extend(done),
                Err(e) => {
                    // Each SLO on its own reports its own error.
                    let reason = format!("rolling up SLOs together failed: {e}");
                    fallbacks.extend(members.iter().map(|rt| (rt.def.id.clone(), reason.clone())));
                    rest.extend(members);
                }
            }
        }
        (updates, rest, fallbacks)
    }

    /// Rolls up `batch` (row SLOs sharing a table, bucket width and first
    /// bucket `first`) from `from` chunk by chunk up to `now`, or as far as
    /// the tick's backfill budget allows. An error before any chunk is read
    /// is returned; after that, what was read is kept.
    pub(super) async fn update_batch(
        &self,
        batch: &[Arc<Runtime>],
        first: i64,
        mut from: i64,
        now: i64,
        budget: &BackfillBudget,
    ) -> Result<Vec<Update>> {
        let b = batch[0].bucket_ns;
        let chunk = self.chunk_ns(b);
        let table = batch[0].def.sli.table;
        let conditions: Vec<&RowConditions> = batch
            .iter()
            .map(|rt| {
                rt.rows
                    .as_ref()
                    .expect("only row SLOs are rolled up together")
            })
            .collect();
        let columns = rows::columns(conditions.iter().copied());
        let started = Instant::now();
        let mut rows = vec![Vec::new(); batch.len()];
        let mut done = None;
        while from < now {
            let to = now.min(from + chunk);
            let counted = match self
                .guarded(self.count_rows(table, &columns, &conditions, b, from, to))
                .await
            {
                Ok(counted) => counted,
                Err(e) if done.is_none() => return Err(e),
                Err(e) => {
                    tracing::warn!(error = %e, slos = batch.len(), "Rolling up SLOs together failed; the next tick goes on from here.");
                    break;
                }
            };
            for ((rt, values), rows) in batch.iter().zip(counted).zip(&mut rows) {
                let mut st = rt.state.lock().await;
                let results = BTreeMap::from([(Vec::new(), values)]);
                apply_results(rt, &mut st, (from, to), now, results, rows);
                match st.account() {
                    Ok(()) => st.succeeded(),
                    Err(e) => st.failed(e.to_string(), now, self.options.interval),
                }
            }
            done = Some(to);
            if to < now && !budget.spend() {
                break;
            }
            from = to;
        }
        let Some(to) = done else {
            return Ok(Vec::new());
        };
        let elapsed = started.elapsed() / batch.len() as u32;
        let mut updates = Vec::with_capacity(batch.len());
        for (rt, rows) in batch.iter().zip(rows) {
            let mut st = rt.state.lock().await;
            st.last_update = Some(elapsed);
            updates.push(stored_update(rt, &st, first, to, rows));
        }
        Ok(updates)
    }

    /// Good and total per bucket of width `b` for each of `conditions`, over
    /// the rows of `table` in `from .. to`: one plain read of the `columns`
    /// they use, the conditions evaluated batch by batch as it streams.
    pub(super) async fn count_rows(
        &self,
        table: Table,
        columns: &[String],
        conditions: &[&RowConditions],
        b: i64,
        from: i64,
        to: i64,
    ) -> Result<Vec<Vec<(i64, [f64; 2])>>> {
        let time = table.time_column();
        let mut select = vec![quote(time)];
        select.extend(
            columns
                .iter()
                .filter(|c| c.as_str() != time)
                .map(|c| quote(c)),
        );
        let sql = format!(
            "SELECT {} FROM {} WHERE {time} >= {} AND {time} < {}",
            select.join(", "),
            table.name(),
            ts(from),
            ts(to)
        );
        let df = self
            .query
            .context()
            .sql_with_options(&sql, read_only())
            .await
            .map_err(|e| Error::Query(e.to_string()))?;
        let schema = Arc::clone(df.schema().inner());
        let mut counter = Counter::new(conditions, &schema, 0, b)?;
        let mut stream = df
            .execute_stream()
            .await
            .map_err(|e| Error::Query(e.to_string()))?;
        while let Some(batch) = stream.next().await {
            let batch = batch.map_err(|e| Error::Query(e.to_string()))?;
            // The conditions are evaluated a slice at a time, yielding in
            // between, so that a condition slow on every row is stopped by
            // the timeout within a slice, not after a whole batch.
            let mut offset = 0;
            while offset < batch.num_rows() {
                let len = EVAL_SLICE_ROWS.min(batch.num_rows() - offset);
                counter.add(&batch.slice(offset, len))?;
                offset += len;
                tokio::task::yield_now().await;
            }
        }
        Ok(counter.finish())
    }

    pub(super) async fn run(&self, sql: &str) -> Result<Vec<RecordBatch>> {
        let df = self
            .query
            .context()
            .sql_with_options(sql, read_only())
            .await
            .map_err(|e| Error::Query(e.to_string()))?;
        let stream = df
            .execute_stream()
            .await
            .map_err(|e| Error::Query(e.to_string()))?;
        smolder_query::collect_at_most(stream, usize::MAX)
            .await
            .map_err(|e| Error::Query(e.to_string()))
    }

    /// Runs `work` (one SLO's query) within the query timeout, a panic in
    /// it caught: both become that SLO's error.
    pub(super) async fn guarded<T>(
        &self,
        work: impl std::future::Future<Output = Result<T>>,
    ) -> Result<T> {
        let timeout = self.options.query_timeout;
        match tokio::time::timeout(timeout, std::panic::AssertUnwindSafe(work).catch_unwind()).await
        {
            Ok(Ok(result)) => result,
            Ok(Err(payload)) => {
                let message = smolder_query::executor::panic_message(payload.as_ref());
                tracing::error!(panic = %message, "An SLO query panicked; it fails, the engine goes on.");
                Err(Error::Query(format!(
                    "the query failed inside the engine: {message}"
                )))
            }
            Err(_) => Err(Error::Query(format!(
                "the query was stopped after the timeout of {}",
                humantime::format_duration(timeout)
            ))),
        }
    }
}

/// Replaces an SLO's buckets of `[from, to)` with `results` (by group);
/// groups beyond the limit are counted as dropped. Appends what to store to
/// `rows` and moves the watermark to `to`.
pub(super) fn apply_results(
    rt: &Runtime,
    st: &mut InstanceState,
    (from, to): (i64, i64),
    now: i64,
    mut results: BTreeMap<GroupKey, Vec<(i64, [f64; 2])>>,
    rows: &mut Vec<(String, i64, f64, f64)>,
) {
    let b = rt.bucket_ns;
    let (from_index, to_index) = (from.div_euclid(b), (to - 1).div_euclid(b));
    if rt.def.group_by.is_empty() {
        results.entry(Vec::new()).or_default();
    }
    for key in st.groups.keys() {
        results.entry(key.clone()).or_default();
    }
    for (key, mut values) in results {
        values.sort_by_key(|(i, _)| *i);
        if !st.groups.contains_key(&key) {
            if st.groups.len() >= rt.def.max_groups.max(1) {
                st.dropped_groups += values.len() as u64;
                continue;
            }
            let head = now_index(now, b).min(to_index);
            st.groups.insert(
                key.clone(),
                Rollup::new(rt.def.budgeting, rt.capacity, head).excluding(st.excluded.clone()),
            );
        }
        let rollup = st.groups.get_mut(&key).expect("inserted above");
        rollup.replace(from_index, to_index, &values);
        let grp = serde_json::to_string(&key).unwrap_or_else(|_| "[]".into());
        for (i, [g, t]) in values {
            if (from_index..=to_index).contains(&i) && (g != 0.0 || t != 0.0) {
                rows.push((grp.clone(), i, g, t));
            }
        }
    }
    st.watermark = to;
}

/// Keeps the newest point per series of a baseline query's result.
pub(super) fn read_baselines(batch: &RecordBatch, out: &mut HashMap<i64, Baseline>) {
    let sid = batch.column(0).as_primitive::<Int64Type>();
    let time = batch.column(1).as_primitive::<Int64Type>();
    let start = batch.column(2).as_primitive::<Int64Type>();
    let good = batch.column(3).as_primitive::<Float64Type>();
    let total = batch.column(4).as_primitive::<Float64Type>();
    for row in 0..batch.num_rows() {
        if sid.is_null(row) || time.is_null(row) || good.is_null(row) || total.is_null(row) {
            continue;
        }
        let point = Baseline {
            sid: sid.value(row),
            time: time.value(row),
            start: (!start.is_null(row)).then(|| start.value(row)),
            good: good.value(row),
            total: total.value(row),
        };
        match out.get(&point.sid) {
            Some(known) if known.time >= point.time => {}
            _ => {
                out.insert(point.sid, point);
            }
        }
    }
}

/// What an update of `rt` from bucket `first` (ns) up to `to` stores: its
/// new state, and its `rows` replacing the buckets of that range.
pub(super) fn stored_update(
    rt: &Runtime,
    st: &InstanceState,
    first: i64,
    to: i64,
    rows: Vec<(String, i64, f64, f64)>,
) -> Update {
    let b = rt.bucket_ns;
    Update {
        slo: rt.def.id.clone(),
        state: StoredState {
            fingerprint: rt.fingerprint.clone(),
            watermark: to,
            horizon_start: st.horizon_start,
        },
        from: first.div_euclid(b),
        to: (to - 1).div_euclid(b),
        rows,
    }
}

/// A column name as a SQL identifier.
use smolder_common::text::sql_ident as quote;

pub(super) fn read_only() -> SQLOptions {
    SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false)
}

/// Adds a result batch's rows to `out`, by group.
pub(super) fn read_batch(
    batch: &RecordBatch,
    groups: usize,
    out: &mut BTreeMap<GroupKey, Vec<(i64, [f64; 2])>>,
) {
    let bucket = batch.column(0).as_primitive::<Int64Type>();
    // Group values are text; DataFusion may hand them over as string views.
    let group_arrays: Vec<_> = (0..groups)
        .map(|g| {
            datafusion::arrow::compute::cast(batch.column(1 + g), &DataType::Utf8)
                .unwrap_or_else(|_| Arc::clone(batch.column(1 + g)))
        })
        .collect();
    let group_cols: Vec<_> = group_arrays.iter().map(|a| a.as_string::<i32>()).collect();
    let good = batch.column(1 + groups).as_primitive::<Float64Type>();
    let total = batch.column(2 + groups).as_primitive::<Float64Type>();
    for row in 0..batch.num_rows() {
        if bucket.is_null(row) {
            continue;
        }
        let key: GroupKey = group_cols
            .iter()
            .map(|c| {
                if c.is_null(row) {
                    String::new()
                } else {
                    c.value(row).to_string()
                }
            })
            .collect();
        let value = |a: &datafusion::arrow::array::Float64Array| {
            if a.is_null(row) { 0.0 } else { a.value(row) }
        };
        out.entry(key)
            .or_default()
            .push((bucket.value(row), [value(good), value(total)]));
    }
}

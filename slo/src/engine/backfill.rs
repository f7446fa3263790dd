//! Catching up on history: a new SLO (or one whose indicator changed)
//! starts at the beginning of its horizon and is rolled up chunk by chunk,
//! within a time budget per tick shared by every SLO catching up, from the
//! table's oldest row rather than from empty history.

use std::time::{Duration, Instant};

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::Int64Type;
use smolder_common::Table;

use super::SloEngine;
use super::state::InstanceState;
use crate::model::duration_ns;

/// The time of each table's oldest row, read at most once per tick and only
/// when an SLO backfills.
#[derive(Default)]
pub(super) struct OldestRows([tokio::sync::OnceCell<Option<Option<i64>>>; 3]);

impl OldestRows {
    /// The oldest row's time in ns; `Some(None)` for an empty table, `None`
    /// when the query failed.
    pub(super) async fn get(&self, engine: &SloEngine, table: Table) -> Option<Option<i64>> {
        let i = Table::ALL.iter().position(|t| *t == table)?;
        *self.0[i]
            .get_or_init(|| async move {
                let time = table.time_column();
                let sql = format!("SELECT CAST(min({time}) AS BIGINT) FROM {}", table.name());
                let batches = engine.run(&sql).await.ok()?;
                let column = batches
                    .iter()
                    .find(|b| b.num_rows() > 0)?
                    .column(0)
                    .as_primitive_opt::<Int64Type>()?
                    .clone();
                Some((!column.is_null(0)).then(|| column.value(0)))
            })
            .await
    }
}

/// The backfill time of one tick, shared by every SLO catching up
/// ([`EngineOptions::backfill_budget`]).
pub(super) struct BackfillBudget {
    deadline: Instant,
    used: std::sync::atomic::AtomicBool,
}

impl BackfillBudget {
    pub(super) fn new(budget: Duration) -> Self {
        Self {
            deadline: Instant::now() + budget,
            used: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Whether history may be read (further): before the deadline, or when
    /// none has been read this tick.
    pub(super) fn allows(&self) -> bool {
        !self.used.load(std::sync::atomic::Ordering::Relaxed) || Instant::now() < self.deadline
    }

    /// A chunk of history was read; answers whether another may be.
    pub(super) fn spend(&self) -> bool {
        self.used.store(true, std::sync::atomic::Ordering::Relaxed);
        self.allows()
    }
}

impl SloEngine {
    /// The width of a backfill query's range for bucket width `b`.
    pub(super) fn chunk_ns(&self, b: i64) -> i64 {
        duration_ns(self.options.backfill_chunk)
            .max(b)
            .div_euclid(b)
            * b
    }

    /// The first bucket an update of an SLO in state `st` recomputes: late
    /// data may still change the buckets since its watermark less lateness.
    pub(super) fn first_bucket(&self, st: &InstanceState, b: i64) -> i64 {
        (st.watermark - duration_ns(self.options.lateness))
            .max(st.horizon_start)
            .div_euclid(b)
            * b
    }

    /// Where reading starts for an update from `first`: None when the SLO
    /// backfills and must wait (for the tick's budget, or for a first row).
    /// History before the table's oldest row holds no events, so a backfill
    /// reads from there (a new SLO over a young table costs one chunk, not a
    /// horizon of empty ones); the update still replaces its whole range.
    /// Over an empty table there is nothing to read yet: the backfill waits
    /// for the first row (which may be history), so the watermark stays.
    pub(super) async fn read_from(
        &self,
        table: Table,
        first: i64,
        b: i64,
        now: i64,
        oldest: &OldestRows,
        budget: &BackfillBudget,
    ) -> Option<i64> {
        if now - first <= self.chunk_ns(b) {
            return Some(first);
        }
        if !budget.allows() {
            return None;
        }
        match oldest.get(self, table).await {
            Some(Some(t)) => Some(first.max(t.div_euclid(b) * b)),
            Some(None) => None,
            None => Some(first),
        }
    }
}

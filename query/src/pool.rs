//! The query memory pool, drawing from the process's [`MemoryBudget`].
//!
//! DataFusion's own pool (greedy, with the five largest consumers named in
//! its errors) keeps the per-engine limit of `[query] memory_limit`; every
//! reservation is also taken from the process-wide budget, so queries get
//! "resources exhausted" when ingest and SLO rollups hold the rest of it,
//! not only when queries alone reach their limit.

use std::fmt;
use std::num::NonZeroUsize;
use std::sync::Arc;

use datafusion::common::{DataFusionError, Result};
use datafusion::execution::memory_pool::{
    GreedyMemoryPool, MemoryConsumer, MemoryLimit, MemoryPool, MemoryReservation,
    TrackConsumersPool,
};
use smolder_common::memory::{Consumer, MemoryBudget};

/// DataFusion's greedy pool of `limit` bytes, within `budget`.
#[derive(Debug)]
pub(crate) struct BudgetPool {
    inner: TrackConsumersPool<GreedyMemoryPool>,
    budget: Arc<MemoryBudget>,
}

impl BudgetPool {
    pub(crate) fn new(limit: usize, budget: Arc<MemoryBudget>) -> Self {
        Self {
            inner: TrackConsumersPool::new(
                GreedyMemoryPool::new(limit),
                NonZeroUsize::new(5).expect("5 is not zero"),
            ),
            budget,
        }
    }
}

impl fmt::Display for BudgetPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} within the process memory budget", self.inner)
    }
}

impl MemoryPool for BudgetPool {
    fn name(&self) -> &str {
        "smolder_budget"
    }

    fn register(&self, consumer: &MemoryConsumer) {
        self.inner.register(consumer);
    }

    fn unregister(&self, consumer: &MemoryConsumer) {
        self.inner.unregister(consumer);
    }

    fn grow(&self, reservation: &MemoryReservation, additional: usize) {
        self.budget.take(Consumer::Query, additional);
        self.inner.grow(reservation, additional);
    }

    fn shrink(&self, reservation: &MemoryReservation, shrink: usize) {
        self.budget.give_back(Consumer::Query, shrink);
        self.inner.shrink(reservation, shrink);
    }

    fn try_grow(&self, reservation: &MemoryReservation, additional: usize) -> Result<()> {
        self.budget
            .try_take(Consumer::Query, additional)
            .map_err(|e| DataFusionError::ResourcesExhausted(format!("{e}; try later")))?;
        self.inner
            .try_grow(reservation, additional)
            .inspect_err(|_| {
                self.budget.give_back(Consumer::Query, additional);
            })
    }

    fn reserved(&self) -> usize {
        self.inner.reserved()
    }

    fn memory_limit(&self) -> MemoryLimit {
        self.inner.memory_limit()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_draw_from_the_budget_and_fail_when_it_is_spent() {
        let budget = MemoryBudget::new(1000);
        let pool: Arc<dyn MemoryPool> = Arc::new(BudgetPool::new(800, Arc::clone(&budget)));
        let a = MemoryConsumer::new("a").register(&pool);
        a.try_grow(500).unwrap();
        assert_eq!(budget.used_by(Consumer::Query), 500);
        // Someone else holds most of the rest of the budget.
        let _ingest = budget.reserve(Consumer::Ingest, 400).unwrap();
        let b = MemoryConsumer::new("b").register(&pool);
        let e = b.try_grow(200).unwrap_err().to_string();
        assert!(e.contains("memory budget"), "{e}");
        // The engine's own limit still applies.
        drop(_ingest);
        let e = b.try_grow(400).unwrap_err().to_string();
        assert!(e.contains("Resources exhausted"), "{e}");
        assert_eq!(
            budget.used(),
            500,
            "failed reservations give back their share"
        );
        drop(a);
        drop(b);
        assert_eq!(budget.used(), 0);
    }
}

//! One memory budget for everything a request can make the process allocate.
//!
//! Each subsystem already bounds its own work (the query pool, the ingest
//! in-flight budget, the SLO bounds), but those bounds add up: with several
//! of them full at once the process would still outgrow its machine, and the
//! allocator aborts the process instead of failing one request. The
//! [`MemoryBudget`] is the sum they all draw from — queries through their
//! memory pool, OTLP requests by their decoded size and the bodies being
//! read, SLO rollups by the blocks they hold, the retried-export filter by
//! the keys it remembers — so that beyond it a request
//! gets a clear "try later" (503, 429 or a query error) and the process
//! keeps running.
//!
//! Reservations are plain atomic additions: cheap enough for every batch
//! and every body chunk. The budget counts what its consumers say they
//! hold, not what the allocator has handed out; the process's baseline
//! (binary, caches with their own caps, thread stacks, the ingest buffer)
//! comes on top, as the README's operating notes say.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Who holds a share of the budget (for `/metrics` and error messages).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Consumer {
    /// Queries: operators' memory pool and the outputs of bounded functions.
    Query,
    /// OTLP requests being read, decoded and converted.
    Ingest,
    /// SLO rollups.
    Slo,
    /// The keys of recently accepted items that catch retried exports
    /// (already held: counted, never refused).
    Dedup,
}

impl Consumer {
    /// Every consumer, in a stable order.
    pub const ALL: [Consumer; 4] = [
        Consumer::Query,
        Consumer::Ingest,
        Consumer::Slo,
        Consumer::Dedup,
    ];

    /// The consumer's name in metrics.
    pub fn name(self) -> &'static str {
        match self {
            Consumer::Query => "query",
            Consumer::Ingest => "ingest",
            Consumer::Slo => "slo",
            Consumer::Dedup => "dedup",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Asking for more than the budget has left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exhausted {
    /// What was asked for, in bytes.
    pub requested: usize,
    /// Bytes already reserved by everyone.
    pub used: usize,
    /// The budget.
    pub limit: usize,
}

impl fmt::Display for Exhausted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the memory budget is spent: {} bytes asked for, {} of {} bytes in use",
            self.requested, self.used, self.limit
        )
    }
}

impl std::error::Error for Exhausted {}

/// The process's memory budget; shared as an `Arc`.
#[derive(Debug)]
pub struct MemoryBudget {
    limit: usize,
    used: AtomicUsize,
    by_consumer: [AtomicUsize; 4],
}

impl MemoryBudget {
    /// A budget of `limit` bytes.
    pub fn new(limit: usize) -> Arc<Self> {
        Arc::new(Self {
            limit,
            used: AtomicUsize::new(0),
            by_consumer: Default::default(),
        })
    }

    /// A budget nothing exceeds (for tools and tests that set no limit).
    pub fn unlimited() -> Arc<Self> {
        Self::new(usize::MAX)
    }

    /// The budget in bytes.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Bytes reserved by everyone.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }

    /// Bytes reserved by `consumer`.
    pub fn used_by(&self, consumer: Consumer) -> usize {
        self.by_consumer[consumer.index()].load(Ordering::Acquire)
    }

    /// Bytes left.
    pub fn available(&self) -> usize {
        self.limit.saturating_sub(self.used())
    }

    /// Adds `bytes` to what `consumer` holds, unless that exceeds the budget.
    pub fn try_take(&self, consumer: Consumer, bytes: usize) -> Result<(), Exhausted> {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes).filter(|total| *total <= self.limit)
            })
            .map_err(|used| Exhausted {
                requested: bytes,
                used,
                limit: self.limit,
            })?;
        self.by_consumer[consumer.index()].fetch_add(bytes, Ordering::AcqRel);
        Ok(())
    }

    /// Adds `bytes` whatever the budget has left (for memory already
    /// allocated that must be counted, e.g. DataFusion's infallible `grow`).
    pub fn take(&self, consumer: Consumer, bytes: usize) {
        self.used.fetch_add(bytes, Ordering::AcqRel);
        self.by_consumer[consumer.index()].fetch_add(bytes, Ordering::AcqRel);
    }

    /// Gives back `bytes` that `consumer` took.
    pub fn give_back(&self, consumer: Consumer, bytes: usize) {
        self.used.fetch_sub(bytes, Ordering::AcqRel);
        self.by_consumer[consumer.index()].fetch_sub(bytes, Ordering::AcqRel);
    }

    /// A reservation of `bytes` for `consumer`, released when dropped.
    pub fn reserve(
        self: &Arc<Self>,
        consumer: Consumer,
        bytes: usize,
    ) -> Result<Reservation, Exhausted> {
        self.try_take(consumer, bytes)?;
        Ok(Reservation {
            budget: Arc::clone(self),
            consumer,
            bytes,
        })
    }
}

/// A share of the budget; dropping it gives the share back.
#[derive(Debug)]
#[must_use = "the share is given back when the reservation is dropped"]
pub struct Reservation {
    budget: Arc<MemoryBudget>,
    consumer: Consumer,
    bytes: usize,
}

impl Reservation {
    /// An empty reservation, to grow as memory is needed.
    pub fn empty(budget: &Arc<MemoryBudget>, consumer: Consumer) -> Self {
        Self {
            budget: Arc::clone(budget),
            consumer,
            bytes: 0,
        }
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Holds `additional` bytes more, unless the budget is spent.
    pub fn grow(&mut self, additional: usize) -> Result<(), Exhausted> {
        self.budget.try_take(self.consumer, additional)?;
        self.bytes += additional;
        Ok(())
    }

    /// Holds exactly `bytes`: gives back what is no longer needed, or asks
    /// for the difference.
    pub fn resize(&mut self, bytes: usize) -> Result<(), Exhausted> {
        if bytes >= self.bytes {
            self.grow(bytes - self.bytes)
        } else {
            self.budget.give_back(self.consumer, self.bytes - bytes);
            self.bytes = bytes;
            Ok(())
        }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.budget.give_back(self.consumer, self.bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_are_refused_beyond_the_budget_and_given_back_when_dropped() {
        let budget = MemoryBudget::new(100);
        let a = budget.reserve(Consumer::Query, 60).unwrap();
        let refused = budget.reserve(Consumer::Ingest, 50).unwrap_err();
        assert_eq!(
            (refused.requested, refused.used, refused.limit),
            (50, 60, 100)
        );
        assert!(refused.to_string().contains("memory budget"), "{refused}");
        let mut b = budget.reserve(Consumer::Ingest, 40).unwrap();
        assert_eq!(budget.available(), 0);
        assert_eq!(budget.used_by(Consumer::Query), 60);
        drop(a);
        assert_eq!(budget.used(), 40);
        b.grow(50).unwrap();
        b.resize(10).unwrap();
        assert_eq!(budget.used_by(Consumer::Ingest), 10);
        drop(b);
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn an_unlimited_budget_does_not_overflow() {
        let budget = MemoryBudget::unlimited();
        let _a = budget.reserve(Consumer::Slo, usize::MAX - 1).unwrap();
        assert!(budget.reserve(Consumer::Slo, 2).is_err());
    }
}

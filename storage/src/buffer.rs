//! The in-memory buffer of recent record batches.
//!
//! Ingest appends one batch per accepted export, tagged with the sequence
//! number of its write-ahead-log record; the query engine reads snapshots
//! through the store. The buffer holds at most its configured
//! number of bytes (Arrow memory of the batches): an append that would exceed it
//! is refused with [`BufferFull`], which the receivers answer with a retryable
//! "unavailable" status — backpressure, never an out-of-memory crash.
//!
//! Each batch is one tenant's; a query's snapshot holds only its tenant's
//! batches, and a tenant may hold at most its share of the buffer
//! ([`Buffer::with_tenant_limit`]) so that one tenant's burst cannot refuse
//! every other tenant's exports.
//!
//! The write-ahead log goes in front of [`Buffer::reserve`] and the Parquet
//! persister behind it: the persister copies out the batches present with
//! [`Buffer::batches`], writes them, and then drops them with
//! [`Buffer::remove_first`], which frees their memory.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use datafusion::arrow::record_batch::RecordBatch;
use smolder_common::sync::{lock, read, write};
use smolder_common::{Table, Tenant};

/// The buffer has no room for a batch.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error(
    "{} is full ({used} of {limit} bytes in use)",
    if *tenant { "the tenant's share of the in-memory buffer" } else { "the in-memory buffer" }
)]
pub struct BufferFull {
    /// Bytes in use when the append was refused.
    pub used: usize,
    /// The configured limit.
    pub limit: usize,
    /// Whether the tenant's share was the limit reached (not the whole
    /// buffer).
    pub tenant: bool,
}

/// A buffered batch and the write-ahead-log record it came from.
#[derive(Debug, Clone)]
pub struct Buffered {
    /// Sequence number of the record (0 without a log).
    pub seq: u64,
    /// Whose rows they are.
    pub tenant: Tenant,
    /// The rows.
    pub batch: Arc<RecordBatch>,
}

#[derive(Debug, Default)]
struct TableBuffer {
    batches: RwLock<Vec<Buffered>>,
    rows: AtomicUsize,
}

/// Recent batches of every table, within a memory limit.
#[derive(Debug)]
pub struct Buffer {
    limit: usize,
    tenant_limit: usize,
    used: AtomicUsize,
    /// Bytes held (or reserved) per tenant.
    by_tenant: Mutex<HashMap<Tenant, usize>>,
    tables: [TableBuffer; 3],
}

impl Buffer {
    /// A buffer that holds at most `limit` bytes of Arrow data.
    pub fn new(limit: usize) -> Self {
        Self::with_tenant_limit(limit, limit)
    }

    /// A buffer of `limit` bytes of which one tenant may hold at most
    /// `tenant_limit`.
    pub fn with_tenant_limit(limit: usize, tenant_limit: usize) -> Self {
        Self {
            limit,
            tenant_limit: tenant_limit.min(limit),
            used: AtomicUsize::new(0),
            by_tenant: Mutex::new(HashMap::new()),
            tables: Default::default(),
        }
    }

    /// Bytes `tenant` holds.
    pub fn used_by(&self, tenant: &Tenant) -> usize {
        lock(&self.by_tenant).get(tenant).copied().unwrap_or(0)
    }

    fn release(&self, tenant: &Tenant, bytes: usize) {
        self.used.fetch_sub(bytes, Ordering::AcqRel);
        let mut by_tenant = lock(&self.by_tenant);
        if let Some(held) = by_tenant.get_mut(tenant) {
            *held = held.saturating_sub(bytes);
            if *held == 0 {
                by_tenant.remove(tenant);
            }
        }
    }

    fn table(&self, table: Table) -> &TableBuffer {
        &self.tables[table as usize]
    }

    /// The configured limit in bytes.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Bytes of Arrow memory held.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// Rows held for `table`.
    pub fn rows(&self, table: Table) -> usize {
        self.table(table).rows.load(Ordering::Relaxed)
    }

    /// Whether an append would certainly be refused now; receivers check this
    /// before decoding so that an overloaded server spends no CPU on requests it
    /// cannot keep.
    pub fn is_full(&self) -> bool {
        self.used() >= self.limit
    }

    /// Appends a batch from record `seq`, or refuses it when it does not fit.
    pub fn append(
        &self,
        tenant: &Tenant,
        table: Table,
        seq: u64,
        batch: RecordBatch,
    ) -> Result<(), BufferFull> {
        self.reserve(tenant, table, batch)?.commit(seq);
        Ok(())
    }

    /// Sets room aside for a batch without making it visible yet, so that the
    /// write-ahead log is written only for batches the buffer will take;
    /// dropping the reservation gives the room back.
    pub fn reserve(
        &self,
        tenant: &Tenant,
        table: Table,
        batch: RecordBatch,
    ) -> Result<Reservation<'_>, BufferFull> {
        debug_assert_eq!(batch.schema(), table.schema());
        let size = batch.get_array_memory_size();
        // The tenant's share first (under its lock, so two appends of one
        // tenant cannot both pass), then the whole buffer.
        let mut by_tenant = lock(&self.by_tenant);
        let held = by_tenant.get(tenant).copied().unwrap_or(0);
        if held + size > self.tenant_limit {
            return Err(BufferFull {
                used: held,
                limit: self.tenant_limit,
                tenant: true,
            });
        }
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                (used + size <= self.limit).then_some(used + size)
            })
            .map_err(|used| BufferFull {
                used,
                limit: self.limit,
                tenant: false,
            })?;
        *by_tenant.entry(tenant.clone()).or_insert(0) += size;
        Ok(Reservation {
            buffer: self,
            tenant: tenant.clone(),
            table,
            batch: Some(batch),
        })
    }

    /// Appends a batch whatever the limit: for replaying the write-ahead log,
    /// whose records were all acknowledged and must not be lost.
    pub fn append_unchecked(&self, tenant: &Tenant, table: Table, seq: u64, batch: RecordBatch) {
        let size = batch.get_array_memory_size();
        self.used.fetch_add(size, Ordering::AcqRel);
        *lock(&self.by_tenant).entry(tenant.clone()).or_insert(0) += size;
        self.publish(tenant.clone(), table, seq, batch);
    }

    fn publish(&self, tenant: Tenant, table: Table, seq: u64, batch: RecordBatch) {
        let t = self.table(table);
        t.rows.fetch_add(batch.num_rows(), Ordering::Relaxed);
        write(&t.batches).push(Buffered {
            seq,
            tenant,
            batch: Arc::new(batch),
        });
    }

    /// The batches of `table` now held, oldest first, of every tenant.
    pub fn batches(&self, table: Table) -> Vec<Buffered> {
        read(&self.table(table).batches).clone()
    }

    /// The rows of `table` that `tenant` holds now, for its queries.
    pub fn snapshot(&self, tenant: &Tenant, table: Table) -> Vec<RecordBatch> {
        let batches = read(&self.table(table).batches);
        batches
            .iter()
            .filter(|b| &b.tenant == tenant)
            .map(|b| RecordBatch::clone(&b.batch))
            .collect()
    }

    /// `tenant`'s batches of `table` from log records after `seq`.
    pub fn snapshot_after(&self, tenant: &Tenant, table: Table, seq: u64) -> Vec<RecordBatch> {
        let batches = read(&self.table(table).batches);
        batches
            .iter()
            .filter(|b| &b.tenant == tenant && b.seq > seq)
            .map(|b| RecordBatch::clone(&b.batch))
            .collect()
    }

    /// Drops the `n` oldest batches of `table` (once they are persisted) and
    /// frees their memory. Appends only ever add at the end, so these are the
    /// batches an earlier [`Buffer::batches`] returned first.
    pub fn remove_first(&self, table: Table, n: usize) {
        let t = self.table(table);
        let removed: Vec<Buffered> = {
            let mut batches = write(&t.batches);
            let n = n.min(batches.len());
            batches.drain(..n).collect()
        };
        let mut rows = 0;
        for buffered in &removed {
            self.release(&buffered.tenant, buffered.batch.get_array_memory_size());
            rows += buffered.batch.num_rows();
        }
        t.rows.fetch_sub(rows, Ordering::Relaxed);
    }
}

/// Room set aside in the buffer for one batch; see [`Buffer::reserve`].
#[derive(Debug)]
#[must_use = "the batch becomes visible only when committed"]
pub struct Reservation<'a> {
    buffer: &'a Buffer,
    tenant: Tenant,
    table: Table,
    batch: Option<RecordBatch>,
}

impl Reservation<'_> {
    /// Makes the batch, stored in write-ahead-log record `seq`, visible to
    /// queries.
    pub fn commit(mut self, seq: u64) {
        let batch = self.batch.take().expect("committed once");
        self.buffer
            .publish(self.tenant.clone(), self.table, seq, batch);
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if let Some(batch) = self.batch.take() {
            self.buffer
                .release(&self.tenant, batch.get_array_memory_size());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acme() -> Tenant {
        Tenant::parse("acme").unwrap()
    }

    fn batch(rows: usize) -> RecordBatch {
        crate::testing::batch(Table::Logs, "svc", &vec![0; rows])
    }

    #[test]
    fn refuses_appends_beyond_the_limit_and_keeps_what_it_has() {
        let one = batch(10);
        let size = one.get_array_memory_size();
        let buffer = Buffer::new(size * 2 + size / 2);
        buffer.append(&acme(), Table::Logs, 1, one.clone()).unwrap();
        buffer.append(&acme(), Table::Logs, 1, one.clone()).unwrap();
        let full = buffer
            .append(&acme(), Table::Logs, 1, one.clone())
            .unwrap_err();
        assert_eq!(full.used, size * 2);
        assert_eq!(buffer.snapshot(&acme(), Table::Logs).len(), 2);
        assert_eq!(buffer.snapshot(&acme(), Table::Spans).len(), 0);
        assert_eq!(buffer.batches(Table::Logs).len(), 2);
        buffer.remove_first(Table::Logs, 1);
        assert_eq!(buffer.used(), size);
        buffer.remove_first(Table::Logs, 5);
        assert_eq!(buffer.used(), 0);
        buffer.append(&acme(), Table::Logs, 1, one).unwrap();
    }

    #[test]
    fn reservations_hold_room_until_committed_or_dropped() {
        let one = batch(10);
        let size = one.get_array_memory_size();
        let buffer = Buffer::new(size * 2);
        let first = buffer.reserve(&acme(), Table::Logs, one.clone()).unwrap();
        let second = buffer.reserve(&acme(), Table::Logs, one.clone()).unwrap();
        assert!(buffer.reserve(&acme(), Table::Logs, one.clone()).is_err());
        assert_eq!(
            buffer.snapshot(&acme(), Table::Logs).len(),
            0,
            "not visible yet"
        );
        first.commit(1);
        drop(second);
        assert_eq!(buffer.snapshot(&acme(), Table::Logs).len(), 1);
        assert_eq!(buffer.used(), size);
        // Replay ignores the limit.
        buffer.append_unchecked(&acme(), Table::Logs, 2, one.clone());
        buffer.append_unchecked(&acme(), Table::Logs, 3, one);
        assert_eq!(buffer.used(), size * 3);
        assert_eq!(buffer.rows(Table::Logs), 30);
        let seqs: Vec<u64> = buffer.batches(Table::Logs).iter().map(|b| b.seq).collect();
        assert_eq!(seqs, vec![1, 2, 3]);
    }

    #[test]
    fn a_tenant_sees_only_its_batches_and_holds_at_most_its_share() {
        let one = batch(10);
        let size = one.get_array_memory_size();
        let buffer = Buffer::with_tenant_limit(size * 4, size * 2);
        let other = Tenant::parse("other").unwrap();
        buffer.append(&acme(), Table::Logs, 1, one.clone()).unwrap();
        buffer.append(&acme(), Table::Logs, 2, one.clone()).unwrap();
        let full = buffer
            .append(&acme(), Table::Logs, 3, one.clone())
            .unwrap_err();
        assert!(full.tenant, "{full}");
        assert!(full.to_string().contains("tenant's share"), "{full}");
        // Another tenant still has room, and sees none of acme's rows.
        buffer.append(&other, Table::Logs, 4, one.clone()).unwrap();
        assert_eq!(buffer.snapshot(&acme(), Table::Logs).len(), 2);
        assert_eq!(buffer.snapshot(&other, Table::Logs).len(), 1);
        assert_eq!(buffer.snapshot(&Tenant::default(), Table::Logs).len(), 0);
        assert_eq!(buffer.used_by(&acme()), size * 2);
        buffer.remove_first(Table::Logs, 1);
        assert_eq!(buffer.used_by(&acme()), size);
        assert_eq!(buffer.used(), size * 2);
    }
}

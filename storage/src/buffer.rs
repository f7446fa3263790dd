//! The in-memory buffer of recent record batches.
//!
//! Ingest appends one batch per accepted export, tagged with the sequence
//! number of its write-ahead-log record; the query engine reads snapshots
//! through the store. The buffer holds at most its configured
//! number of bytes (Arrow memory of the batches): an append that would exceed it
//! is refused with [`BufferFull`], which the receivers answer with a retryable
//! "unavailable" status — backpressure, never an out-of-memory crash.
//!
//! The write-ahead log goes in front of [`Buffer::reserve`] and the Parquet
//! persister behind it: the persister copies out the batches present with
//! [`Buffer::batches`], writes them, and then drops them with
//! [`Buffer::remove_first`], which frees their memory.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use datafusion::arrow::record_batch::RecordBatch;
use smolder_common::Table;
use smolder_common::sync::{read, write};

/// The buffer has no room for a batch.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the in-memory buffer is full ({used} of {limit} bytes in use)")]
pub struct BufferFull {
    /// Bytes in use when the append was refused.
    pub used: usize,
    /// The configured limit.
    pub limit: usize,
}

/// A buffered batch and the write-ahead-log record it came from.
#[derive(Debug, Clone)]
pub struct Buffered {
    /// Sequence number of the record (0 without a log).
    pub seq: u64,
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
    used: AtomicUsize,
    tables: [TableBuffer; 3],
}

impl Buffer {
    /// A buffer that holds at most `limit` bytes of Arrow data.
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            used: AtomicUsize::new(0),
            tables: Default::default(),
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
    pub fn append(&self, table: Table, seq: u64, batch: RecordBatch) -> Result<(), BufferFull> {
        self.reserve(table, batch)?.commit(seq);
        Ok(())
    }

    /// Sets room aside for a batch without making it visible yet, so that the
    /// write-ahead log is written only for batches the buffer will take;
    /// dropping the reservation gives the room back.
    pub fn reserve(&self, table: Table, batch: RecordBatch) -> Result<Reservation<'_>, BufferFull> {
        debug_assert_eq!(batch.schema(), table.schema());
        let size = batch.get_array_memory_size();
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                (used + size <= self.limit).then_some(used + size)
            })
            .map_err(|used| BufferFull {
                used,
                limit: self.limit,
            })?;
        Ok(Reservation {
            buffer: self,
            table,
            batch: Some(batch),
        })
    }

    /// Appends a batch whatever the limit: for replaying the write-ahead log,
    /// whose records were all acknowledged and must not be lost.
    pub fn append_unchecked(&self, table: Table, seq: u64, batch: RecordBatch) {
        self.used
            .fetch_add(batch.get_array_memory_size(), Ordering::AcqRel);
        self.publish(table, seq, batch);
    }

    fn publish(&self, table: Table, seq: u64, batch: RecordBatch) {
        let t = self.table(table);
        t.rows.fetch_add(batch.num_rows(), Ordering::Relaxed);
        write(&t.batches).push(Buffered {
            seq,
            batch: Arc::new(batch),
        });
    }

    /// The batches of `table` now held, oldest first.
    pub fn batches(&self, table: Table) -> Vec<Buffered> {
        read(&self.table(table).batches).clone()
    }

    /// The rows of `table` now held, for queries.
    pub fn snapshot(&self, table: Table) -> Vec<RecordBatch> {
        let batches = read(&self.table(table).batches);
        batches
            .iter()
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
        let (bytes, rows) = removed.iter().fold((0, 0), |(b, r), buffered| {
            (
                b + buffered.batch.get_array_memory_size(),
                r + buffered.batch.num_rows(),
            )
        });
        self.used.fetch_sub(bytes, Ordering::AcqRel);
        t.rows.fetch_sub(rows, Ordering::Relaxed);
    }
}

/// Room set aside in the buffer for one batch; see [`Buffer::reserve`].
#[derive(Debug)]
#[must_use = "the batch becomes visible only when committed"]
pub struct Reservation<'a> {
    buffer: &'a Buffer,
    table: Table,
    batch: Option<RecordBatch>,
}

impl Reservation<'_> {
    /// Makes the batch, stored in write-ahead-log record `seq`, visible to
    /// queries.
    pub fn commit(mut self, seq: u64) {
        let batch = self.batch.take().expect("committed once");
        self.buffer.publish(self.table, seq, batch);
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if let Some(batch) = self.batch.take() {
            self.buffer
                .used
                .fetch_sub(batch.get_array_memory_size(), Ordering::AcqRel);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(rows: usize) -> RecordBatch {
        crate::testing::batch(Table::Logs, "svc", &vec![0; rows])
    }

    #[test]
    fn refuses_appends_beyond_the_limit_and_keeps_what_it_has() {
        let one = batch(10);
        let size = one.get_array_memory_size();
        let buffer = Buffer::new(size * 2 + size / 2);
        buffer.append(Table::Logs, 1, one.clone()).unwrap();
        buffer.append(Table::Logs, 1, one.clone()).unwrap();
        let full = buffer.append(Table::Logs, 1, one.clone()).unwrap_err();
        assert_eq!(full.used, size * 2);
        assert_eq!(buffer.snapshot(Table::Logs).len(), 2);
        assert_eq!(buffer.snapshot(Table::Spans).len(), 0);
        assert_eq!(buffer.batches(Table::Logs).len(), 2);
        buffer.remove_first(Table::Logs, 1);
        assert_eq!(buffer.used(), size);
        buffer.remove_first(Table::Logs, 5);
        assert_eq!(buffer.used(), 0);
        buffer.append(Table::Logs, 1, one).unwrap();
    }

    #[test]
    fn reservations_hold_room_until_committed_or_dropped() {
        let one = batch(10);
        let size = one.get_array_memory_size();
        let buffer = Buffer::new(size * 2);
        let first = buffer.reserve(Table::Logs, one.clone()).unwrap();
        let second = buffer.reserve(Table::Logs, one.clone()).unwrap();
        assert!(buffer.reserve(Table::Logs, one.clone()).is_err());
        assert_eq!(buffer.snapshot(Table::Logs).len(), 0, "not visible yet");
        first.commit(1);
        drop(second);
        assert_eq!(buffer.snapshot(Table::Logs).len(), 1);
        assert_eq!(buffer.used(), size);
        // Replay ignores the limit.
        buffer.append_unchecked(Table::Logs, 2, one.clone());
        buffer.append_unchecked(Table::Logs, 3, one);
        assert_eq!(buffer.used(), size * 3);
        assert_eq!(buffer.rows(Table::Logs), 30);
        let seqs: Vec<u64> = buffer.batches(Table::Logs).iter().map(|b| b.seq).collect();
        assert_eq!(seqs, vec![1, 2, 3]);
    }
}

//! The in-memory buffer of recent record batches.
//!
//! Ingest appends one batch per accepted export; the query engine reads
//! snapshots through [`TableSource`]. The buffer holds at most its configured
//! number of bytes (Arrow memory of the batches): an append that would exceed it
//! is refused with [`BufferFull`], which the receivers answer with a retryable
//! "unavailable" status — backpressure, never an out-of-memory crash.
//!
//! The write-ahead log goes in front of [`Buffer::append`] and a persister behind
//! it: a persister takes batches out with [`Buffer::drain`], which frees their
//! memory.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use datafusion::arrow::record_batch::RecordBatch;
use smolder_common::{Table, TableSource};

/// The buffer has no room for a batch.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the in-memory buffer is full ({used} of {limit} bytes in use)")]
pub struct BufferFull {
    /// Bytes in use when the append was refused.
    pub used: usize,
    /// The configured limit.
    pub limit: usize,
}

#[derive(Debug, Default)]
struct TableBuffer {
    batches: RwLock<Vec<Arc<RecordBatch>>>,
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

    /// Appends a batch, or refuses it when it does not fit.
    pub fn append(&self, table: Table, batch: RecordBatch) -> Result<(), BufferFull> {
        self.reserve(table, batch)?.commit();
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
    pub fn append_unchecked(&self, table: Table, batch: RecordBatch) {
        self.used
            .fetch_add(batch.get_array_memory_size(), Ordering::AcqRel);
        self.publish(table, batch);
    }

    fn publish(&self, table: Table, batch: RecordBatch) {
        let t = self.table(table);
        t.rows.fetch_add(batch.num_rows(), Ordering::Relaxed);
        t.batches
            .write()
            .expect("buffer lock poisoned")
            .push(Arc::new(batch));
    }

    /// Takes every batch of `table` out of the buffer and frees its memory.
    pub fn drain(&self, table: Table) -> Vec<Arc<RecordBatch>> {
        let t = self.table(table);
        let batches = std::mem::take(&mut *t.batches.write().expect("buffer lock poisoned"));
        let (bytes, rows) = batches.iter().fold((0, 0), |(b, r), batch| {
            (b + batch.get_array_memory_size(), r + batch.num_rows())
        });
        self.used.fetch_sub(bytes, Ordering::AcqRel);
        t.rows.fetch_sub(rows, Ordering::Relaxed);
        batches
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
    /// Makes the batch visible to queries.
    pub fn commit(mut self) {
        let batch = self.batch.take().expect("committed once");
        self.buffer.publish(self.table, batch);
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

impl TableSource for Buffer {
    fn snapshot(&self, table: Table) -> Vec<RecordBatch> {
        let batches = self
            .table(table)
            .batches
            .read()
            .expect("buffer lock poisoned");
        batches.iter().map(|b| RecordBatch::clone(b)).collect()
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
    use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};

    use super::*;

    fn batch(rows: usize) -> RecordBatch {
        let request = ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                scope_logs: vec![ScopeLogs {
                    log_records: vec![LogRecord::default(); rows],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        crate::convert::logs(&request).unwrap().batch.unwrap()
    }

    #[test]
    fn refuses_appends_beyond_the_limit_and_keeps_what_it_has() {
        let one = batch(10);
        let size = one.get_array_memory_size();
        let buffer = Buffer::new(size * 2 + size / 2);
        buffer.append(Table::Logs, one.clone()).unwrap();
        buffer.append(Table::Logs, one.clone()).unwrap();
        let full = buffer.append(Table::Logs, one.clone()).unwrap_err();
        assert_eq!(full.used, size * 2);
        assert_eq!(buffer.snapshot(Table::Logs).len(), 2);
        assert_eq!(buffer.snapshot(Table::Spans).len(), 0);
        assert_eq!(buffer.drain(Table::Logs).len(), 2);
        assert_eq!(buffer.used(), 0);
        buffer.append(Table::Logs, one).unwrap();
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
        first.commit();
        drop(second);
        assert_eq!(buffer.snapshot(Table::Logs).len(), 1);
        assert_eq!(buffer.used(), size);
        // Replay ignores the limit.
        buffer.append_unchecked(Table::Logs, one.clone());
        buffer.append_unchecked(Table::Logs, one);
        assert_eq!(buffer.used(), size * 3);
        assert_eq!(buffer.rows(Table::Logs), 30);
    }
}

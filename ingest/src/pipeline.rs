//! The path every export takes after decoding, whatever its transport:
//! capacity check → conversion to Arrow → time window → store (write-ahead
//! log, then buffer) → accounting.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use smolder_common::memory::{Consumer, MemoryBudget, Reservation};
use smolder_common::{Table, Tenant};
use smolder_storage::wal::Record;
use smolder_storage::{Store, StoreError, TimeWindow, format_time};

use crate::convert::{self, ConvertError, Converted};
use crate::dedup::Dedup;
use crate::telemetry::{IngestMetrics, Outcome, RejectReason, Transport};

/// A decoded export request of any signal.
#[derive(Debug, Clone)]
pub enum ExportRequest {
    /// A trace export.
    Traces(ExportTraceServiceRequest),
    /// A logs export.
    Logs(ExportLogsServiceRequest),
    /// A metrics export.
    Metrics(ExportMetricsServiceRequest),
}

/// Converts a decoded export.
fn convert_request(request: &ExportRequest) -> Result<Converted, IngestError> {
    match request {
        ExportRequest::Traces(r) => convert::spans(r).map_err(|e| e.to_string()),
        ExportRequest::Logs(r) => convert::logs(r).map_err(|e| e.to_string()),
        ExportRequest::Metrics(r) => convert::metrics(r).map_err(|e| e.to_string()),
    }
    .map_err(|e| IngestError::Internal(format!("converting to Arrow: {e}")))
}

impl ExportRequest {
    /// The request as protobuf bytes.
    pub fn encode_to_vec(&self) -> Vec<u8> {
        match self {
            Self::Traces(r) => r.encode_to_vec(),
            Self::Logs(r) => r.encode_to_vec(),
            Self::Metrics(r) => r.encode_to_vec(),
        }
    }

    /// Decodes the protobuf export request of `table`'s signal.
    pub fn decode_protobuf(table: Table, body: &[u8]) -> Result<Self, IngestError> {
        let malformed = |e: prost::DecodeError| {
            IngestError::Malformed(format!(
                "invalid OTLP protobuf {} request: {e}",
                table.signal()
            ))
        };
        Ok(match table {
            Table::Spans => {
                Self::Traces(ExportTraceServiceRequest::decode(body).map_err(malformed)?)
            }
            Table::Logs => Self::Logs(ExportLogsServiceRequest::decode(body).map_err(malformed)?),
            Table::Metrics => {
                Self::Metrics(ExportMetricsServiceRequest::decode(body).map_err(malformed)?)
            }
        })
    }

    /// The table this request's items land in.
    pub fn table(&self) -> Table {
        match self {
            Self::Traces(_) => Table::Spans,
            Self::Logs(_) => Table::Logs,
            Self::Metrics(_) => Table::Metrics,
        }
    }

    /// Number of items (spans, log records, data points) in the request.
    pub fn item_count(&self) -> u64 {
        let n: usize = match self {
            Self::Traces(r) => r
                .resource_spans
                .iter()
                .flat_map(|r| &r.scope_spans)
                .map(|s| s.spans.len())
                .sum(),
            Self::Logs(r) => r
                .resource_logs
                .iter()
                .flat_map(|r| &r.scope_logs)
                .map(|s| s.log_records.len())
                .sum(),
            Self::Metrics(r) => r
                .resource_metrics
                .iter()
                .flat_map(|r| &r.scope_metrics)
                .flat_map(|s| &s.metrics)
                .map(crate::convert::cost::data_points)
                .sum(),
        };
        n as u64
    }
}

/// The answer to an accepted export.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportResult {
    /// Items stored.
    pub accepted: u64,
    /// Items rejected as invalid; non-zero means `partial_success`.
    pub rejected: u64,
    /// Why items were rejected, for `partial_success.error_message`.
    pub message: String,
}

/// Why an export request was refused as a whole.
#[derive(Debug, Clone, thiserror::Error)]
pub enum IngestError {
    /// The body is not a valid OTLP message (400 / INVALID_ARGUMENT).
    #[error("{0}")]
    Malformed(String),
    /// The body exceeds the size cap (413 / RESOURCE_EXHAUSTED).
    #[error("the request body exceeds the limit of {limit} bytes")]
    TooLarge {
        /// The cap in bytes.
        limit: usize,
    },
    /// The body would take more memory once decoded than all requests in
    /// flight may (413 / RESOURCE_EXHAUSTED): retrying cannot help.
    #[error(
        "the request would take about {cost} bytes of memory once decoded (see \
         convert::cost), more than the {limit} bytes all requests in flight may use; send \
         smaller batches"
    )]
    TooCostly {
        /// The estimate in bytes.
        cost: usize,
        /// The in-flight budget in bytes.
        limit: usize,
    },
    /// The media type or content encoding is not supported (415).
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// The tenant sends faster than its rate; retry later (429 /
    /// RESOURCE_EXHAUSTED with RetryInfo, which exporters retry).
    #[error("{message}")]
    RateLimited {
        /// Whose rate, and how to retry.
        message: String,
        /// When the client should retry.
        retry_after: Duration,
    },
    /// One export holds more items than the tenant may send at once (413 /
    /// RESOURCE_EXHAUSTED without RetryInfo): retrying cannot help.
    #[error("{0}")]
    TooManyItems(String),
    /// The server cannot take the request now; retry later (503 / UNAVAILABLE).
    #[error("{message}")]
    Unavailable {
        /// What is overloaded.
        message: String,
        /// When the client should retry.
        retry_after: Duration,
    },
    /// A bug or an unexpected failure (500 / INTERNAL).
    #[error("internal error: {0}")]
    Internal(String),
    /// The body did not arrive within the body timeout (408): a client
    /// that trickles a body holds a connection and memory.
    #[error(
        "the request body did not arrive within {}; send it faster or in smaller batches",
        humantime::format_duration(*timeout)
    )]
    SlowBody {
        /// The body timeout.
        timeout: Duration,
    },
}

impl IngestError {
    /// The outcome label recorded for this error.
    pub fn outcome(&self) -> Outcome {
        match self {
            Self::Malformed(_) => Outcome::Malformed,
            Self::TooLarge { .. } | Self::TooCostly { .. } | Self::TooManyItems(_) => {
                Outcome::TooLarge
            }
            Self::UnsupportedMediaType(_) => Outcome::UnsupportedMediaType,
            Self::RateLimited { .. } => Outcome::RateLimited,
            Self::Unavailable { .. } => Outcome::Backpressure,
            Self::Internal(_) => Outcome::Internal,
            Self::SlowBody { .. } => Outcome::Timeout,
        }
    }
}

/// Receiver-independent limits.
#[derive(Debug, Clone, Copy)]
pub struct IngestLimits {
    /// Maximum request body size after decompression, in bytes.
    pub max_request_bytes: usize,
    /// The `Retry-After` / RetryInfo delay suggested under backpressure.
    pub retry_after: Duration,
    /// Decompressed bytes of the requests being decoded and converted at once;
    /// more is refused as "unavailable". A single request larger than this is
    /// still admitted when nothing else is in flight.
    pub max_inflight_bytes: usize,
    /// Time an OTLP/HTTP body may take to arrive.
    pub body_timeout: Duration,
    /// Items per second each tenant may send; `None` for no limit.
    pub tenant_rate: Option<TenantRate>,
}

/// How fast one tenant may send.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TenantRate {
    /// Items per second, on average.
    pub per_second: f64,
    /// Items at once above the average.
    pub burst: u32,
}

/// Each tenant's rate, as a generic cell rate per tenant (governor).
struct TenantLimiter {
    limiter: governor::DefaultKeyedRateLimiter<Tenant>,
    burst: u32,
}

impl std::fmt::Debug for TenantLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantLimiter")
            .field("burst", &self.burst)
            .finish_non_exhaustive()
    }
}

impl TenantLimiter {
    fn new(rate: TenantRate) -> Self {
        let period = Duration::from_secs_f64(1.0 / rate.per_second);
        let burst = std::num::NonZeroU32::new(rate.burst).unwrap_or(std::num::NonZeroU32::MIN);
        let quota = governor::Quota::with_period(period)
            .unwrap_or_else(|| governor::Quota::per_second(std::num::NonZeroU32::MAX))
            .allow_burst(burst);
        Self {
            limiter: governor::RateLimiter::keyed(quota),
            burst: burst.get(),
        }
    }

    /// Takes `items` from `tenant`'s allowance, or says why not.
    fn take(&self, tenant: &Tenant, items: u64) -> Result<(), IngestError> {
        let Some(n) = u32::try_from(items)
            .ok()
            .and_then(std::num::NonZeroU32::new)
        else {
            return if items == 0 {
                Ok(())
            } else {
                Err(self.too_many(tenant, items))
            };
        };
        match self.limiter.check_key_n(tenant, n) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(not_until)) => {
                let wait = not_until.wait_time_from(governor::clock::Clock::now(
                    &governor::clock::DefaultClock::default(),
                ));
                // Whole seconds: what Retry-After can say.
                let retry_after = Duration::from_secs(wait.as_secs_f64().ceil().max(1.0) as u64);
                Err(IngestError::RateLimited {
                    message: format!(
                        "tenant {tenant} is sending faster than its limit (ingest.tenant_rate); \
                         retry in {}s",
                        retry_after.as_secs()
                    ),
                    retry_after,
                })
            }
            Err(_) => Err(self.too_many(tenant, items)),
        }
    }

    fn too_many(&self, tenant: &Tenant, items: u64) -> IngestError {
        IngestError::TooManyItems(format!(
            "an export of {items} items is more than tenant {tenant} may send at once \
             ({}, ingest.tenant_burst); send smaller batches",
            self.burst
        ))
    }
}

impl Default for IngestLimits {
    fn default() -> Self {
        crate::IngestConfig::default().limits()
    }
}

/// Estimated bytes of requests admitted for decoding and conversion,
/// released when the [`Admitted`] guard is dropped.
#[derive(Debug, Default)]
struct InFlight {
    bytes: AtomicUsize,
}

impl InFlight {
    /// Takes `bytes` from a budget of `limit`, unless that would exceed it.
    fn take(&self, bytes: usize, limit: usize) -> bool {
        self.bytes
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes).filter(|total| *total <= limit)
            })
            .is_ok()
    }
}

/// A request's share of the in-flight budget and of the process's memory
/// budget; dropping it gives both back.
#[derive(Debug)]
#[must_use = "the budget is released when the guard is dropped"]
pub struct Admitted<'a> {
    ingestor: &'a Ingestor,
    bytes: usize,
    memory: Reservation,
}

impl Admitted<'_> {
    /// Takes `bytes` more (what decoding showed the request needs besides
    /// the first estimate), or refuses like [`Ingestor::admit`].
    pub fn grow(&mut self, bytes: usize) -> Result<(), IngestError> {
        let ingestor = self.ingestor;
        let total = self.bytes.saturating_add(bytes);
        if total > ingestor.limits.max_inflight_bytes {
            return Err(IngestError::TooCostly {
                cost: total,
                limit: ingestor.limits.max_inflight_bytes,
            });
        }
        if !ingestor
            .in_flight
            .take(bytes, ingestor.limits.max_inflight_bytes)
        {
            return Err(ingestor.busy());
        }
        self.bytes = total;
        self.memory.grow(bytes).map_err(|e| {
            ingestor.unavailable(format!("the server is overloaded: {e}; retry later"))
        })
    }
}

impl Drop for Admitted<'_> {
    fn drop(&mut self) {
        self.ingestor
            .in_flight
            .bytes
            .fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

/// Turns decoded exports into buffered Arrow batches; shared by all receivers.
#[derive(Debug)]
pub struct Ingestor {
    store: Arc<Store>,
    metrics: IngestMetrics,
    limits: IngestLimits,
    tenant_rate: Option<TenantLimiter>,
    in_flight: InFlight,
    budget: Arc<MemoryBudget>,
    dedup: Option<Arc<Dedup>>,
}

impl Ingestor {
    /// An ingestor appending to `store`, bounded by its own limits only.
    pub fn new(store: Arc<Store>, metrics: IngestMetrics, limits: IngestLimits) -> Self {
        Self::with_budget(store, metrics, limits, MemoryBudget::unlimited())
    }

    /// An ingestor whose requests also draw from the process's memory
    /// `budget`: bodies as they are read, then their decoded estimate.
    pub fn with_budget(
        store: Arc<Store>,
        metrics: IngestMetrics,
        limits: IngestLimits,
        budget: Arc<MemoryBudget>,
    ) -> Self {
        Self {
            store,
            metrics,
            tenant_rate: limits.tenant_rate.map(TenantLimiter::new),
            limits,
            in_flight: InFlight::default(),
            budget,
            dedup: None,
        }
    }

    /// Stores items accepted again within `dedup`'s window once
    /// ([`crate::dedup`]).
    #[must_use]
    pub fn with_dedup(mut self, dedup: Arc<Dedup>) -> Self {
        self.dedup = Some(dedup);
        self
    }

    /// The retried-export filter, if on.
    pub fn dedup(&self) -> Option<&Arc<Dedup>> {
        self.dedup.as_ref()
    }

    /// The memory budget bodies are read into.
    pub fn budget(&self) -> &Arc<MemoryBudget> {
        &self.budget
    }

    fn busy(&self) -> IngestError {
        self.unavailable(format!(
            "the server is overloaded: {} bytes of requests are already being processed; \
             retry later",
            self.limits.max_inflight_bytes
        ))
    }

    /// The limits receivers enforce.
    pub fn limits(&self) -> IngestLimits {
        self.limits
    }

    /// The receivers' counters.
    pub fn metrics(&self) -> &IngestMetrics {
        &self.metrics
    }

    fn max_future_ns(&self) -> i64 {
        i64::try_from(self.store.options().max_future.as_nanos()).unwrap_or(i64::MAX)
    }

    fn unavailable(&self, message: String) -> IngestError {
        IngestError::Unavailable {
            message,
            retry_after: self.limits.retry_after,
        }
    }

    /// Refuses work early, before a body is decoded, when the buffer is full.
    pub fn check_capacity(&self) -> Result<(), IngestError> {
        let buffer = self.store.buffer();
        if buffer.is_full() {
            return Err(self.unavailable(format!(
                "the server is overloaded: the in-memory buffer is full ({} bytes); retry later",
                buffer.limit()
            )));
        }
        Ok(())
    }

    /// Admits a request whose decoding and conversion are estimated to take
    /// `cost` bytes ([`convert::cost`]), or refuses it: as too costly when it
    /// alone exceeds the in-flight budget, as "unavailable" (retry later)
    /// when the in-flight budget or the process's memory budget is spent —
    /// so that the memory of work in progress stays bounded under any load.
    pub fn admit(&self, cost: usize) -> Result<Admitted<'_>, IngestError> {
        let mut admitted = Admitted {
            ingestor: self,
            bytes: 0,
            memory: Reservation::empty(&self.budget, Consumer::Ingest),
        };
        admitted.grow(cost)?;
        Ok(admitted)
    }

    /// Admits an export given as (decompressed) protobuf bytes by the
    /// estimate of its decoded size; malformed bytes are refused here.
    pub fn admit_protobuf(&self, table: Table, body: &[u8]) -> Result<Admitted<'_>, IngestError> {
        let cost = convert::cost::protobuf(table, body).map_err(|e| {
            IngestError::Malformed(format!(
                "invalid OTLP protobuf {} request: {e}",
                table.signal()
            ))
        })?;
        self.admit(cost)
    }

    /// Bytes of requests admitted and not yet finished.
    pub fn in_flight_bytes(&self) -> usize {
        self.in_flight.bytes.load(Ordering::Acquire)
    }

    /// Converts an export given as protobuf bytes. Traces are converted
    /// straight from the bytes; logs and metrics are decoded first.
    fn convert_protobuf(&self, table: Table, body: &[u8]) -> Result<Converted, IngestError> {
        if table != Table::Spans {
            return convert_request(&ExportRequest::decode_protobuf(table, body)?);
        }
        convert::spans_protobuf(body).map_err(|e| match e {
            ConvertError::Malformed(e) => {
                IngestError::Malformed(format!("invalid OTLP protobuf traces request: {e}"))
            }
            ConvertError::Arrow(e) => IngestError::Internal(format!("converting to Arrow: {e}")),
        })
    }

    /// Converts, logs and buffers an export given as protobuf bytes.
    pub async fn ingest_protobuf(
        &self,
        tenant: &Tenant,
        table: Table,
        body: Bytes,
        transport: Transport,
    ) -> Result<ExportResult, IngestError> {
        let converted = self.convert_protobuf(table, &body)?;
        self.store(tenant, table, converted, body, transport).await
    }

    /// Converts, logs and buffers a decoded export.
    pub async fn ingest(
        &self,
        tenant: &Tenant,
        request: &ExportRequest,
        transport: Transport,
    ) -> Result<ExportResult, IngestError> {
        let converted = convert_request(request)?;
        // The JSON path has no protobuf bytes: encode them only for the log.
        let record = if self.store.has_wal() && converted.batch.is_some() {
            Bytes::from(request.encode_to_vec())
        } else {
            Bytes::new()
        };
        self.store(tenant, request.table(), converted, record, transport)
            .await
    }

    /// Replays write-ahead-log records into the buffer at start, whatever its
    /// limit (they were all acknowledged). Returns the items restored.
    pub fn replay(&self, records: &[Record]) -> Result<u64, IngestError> {
        let mut items = 0;
        for record in records {
            let converted = self
                .convert_protobuf(record.table, &record.payload)
                .map_err(|e| {
                    IngestError::Internal(format!(
                        "WAL record {} ({}) no longer converts: {e}",
                        record.seq, record.table
                    ))
                })?;
            // The window the export was accepted in, not today's: replay
            // keeps exactly the items that were acknowledged.
            let Some(batch) = converted.batch else {
                continue;
            };
            let kept = record
                .window
                .apply(record.table, batch)
                .map_err(|e| IngestError::Internal(format!("filtering WAL record: {e}")))?;
            // Through the same filter of retried items, in the same order:
            // what was dropped as a copy is dropped again.
            let kept = match (&self.dedup, kept.batch) {
                (Some(dedup), Some(batch)) => {
                    let arrived = record.window.not_after - self.max_future_ns();
                    let filtered = dedup
                        .filter(&record.tenant, record.table, batch, arrived)
                        .map_err(IngestError::Internal)?;
                    dedup.commit(filtered.reserved);
                    filtered.batch
                }
                (_, batch) => batch,
            };
            if let Some(batch) = kept {
                items += batch.num_rows() as u64;
                self.store
                    .replay(&record.tenant, record.table, record.seq, batch);
            }
        }
        Ok(items)
    }

    /// Keeps the converted items inside the table's time window, stores them
    /// (the write-ahead log gets `record`, the export as protobuf) and counts
    /// them.
    async fn store(
        &self,
        tenant: &Tenant,
        table: Table,
        converted: Converted,
        record: Bytes,
        transport: Transport,
    ) -> Result<ExportResult, IngestError> {
        let signal = table.signal();
        let offered = converted.accepted + converted.rejected;
        if let Some(limiter) = &self.tenant_rate
            && let Err(e) = limiter.take(tenant, offered)
        {
            self.metrics
                .record_rejected(tenant, signal, RejectReason::RateLimited, offered);
            return Err(e);
        }
        let mut accepted = converted.accepted;
        let mut duplicates = 0;
        let mut reasons = converted.rejection_reasons;
        self.metrics.record_rejected(
            tenant,
            signal,
            RejectReason::InvalidItem,
            converted.rejected,
        );
        if let Some(batch) = converted.batch {
            let window = self.store.window(table);
            let kept = window
                .apply(table, batch)
                .map_err(|e| IngestError::Internal(format!("applying the time window: {e}")))?;
            if kept.too_old > 0 {
                let retention = self.store.options().retention[table as usize];
                reasons.push(format!(
                    "{} items are older than the {} retention of {} (before {})",
                    kept.too_old,
                    humantime::format_duration(retention),
                    table,
                    format_time(window.not_before)
                ));
                self.metrics
                    .record_rejected(tenant, signal, RejectReason::TooOld, kept.too_old);
            }
            if kept.too_new > 0 {
                reasons.push(format!(
                    "{} items are more than {} in the future (after {})",
                    kept.too_new,
                    humantime::format_duration(self.store.options().max_future),
                    format_time(window.not_after)
                ));
                self.metrics
                    .record_rejected(tenant, signal, RejectReason::TooNew, kept.too_new);
            }
            accepted -= kept.too_old + kept.too_new;
            match (&self.dedup, kept.batch) {
                (Some(dedup), Some(batch)) => {
                    let arrived = window.not_after - self.max_future_ns();
                    let filtered = dedup
                        .filter(tenant, table, batch, arrived)
                        .map_err(IngestError::Internal)?;
                    duplicates = filtered.duplicates;
                    if let Some(batch) = filtered.batch {
                        match self
                            .append(tenant, table, window, record, batch, offered)
                            .await
                        {
                            Ok(_) => dedup.commit(filtered.reserved),
                            Err(e) => {
                                dedup.forget(filtered.reserved);
                                return Err(e);
                            }
                        }
                    }
                }
                (_, Some(batch)) => {
                    self.append(tenant, table, window, record, batch, offered)
                        .await?;
                }
                (_, None) => {}
            }
        }
        let rejected = offered - accepted;
        // Copies of accepted items are acknowledged (the exporter stops
        // retrying) but neither stored nor counted as received.
        self.metrics.record_duplicates(tenant, signal, duplicates);
        self.metrics
            .record_items(tenant, signal, transport, accepted - duplicates);
        let message = if rejected > 0 {
            format!(
                "{rejected} of {offered} items rejected: {}",
                reasons.join("; ")
            )
        } else {
            String::new()
        };
        Ok(ExportResult {
            accepted,
            rejected,
            message,
        })
    }

    async fn append(
        &self,
        tenant: &Tenant,
        table: Table,
        window: TimeWindow,
        record: Bytes,
        batch: datafusion::arrow::record_batch::RecordBatch,
        offered: u64,
    ) -> Result<u64, IngestError> {
        let signal = table.signal();
        self.store
            .append(tenant, table, window, record, batch)
            .await
            .map_err(|e| match e {
                StoreError::BufferFull(full) => {
                    self.metrics.record_rejected(
                        tenant,
                        signal,
                        RejectReason::Backpressure,
                        offered,
                    );
                    self.unavailable(format!("the server is overloaded: {full}; retry later"))
                }
                other => {
                    self.metrics.record_rejected(
                        tenant,
                        signal,
                        RejectReason::StorageError,
                        offered,
                    );
                    self.unavailable(format!("the export was not stored: {other}; retry later"))
                }
            })
    }

    /// Records the outcome of a request that started at `started`.
    pub fn record(
        &self,
        table: Table,
        transport: Transport,
        started: Instant,
        result: &Result<ExportResult, IngestError>,
    ) {
        let outcome = match result {
            Ok(r) if r.rejected > 0 => Outcome::Partial,
            Ok(_) => Outcome::Accepted,
            Err(e) => e.outcome(),
        };
        self.metrics.record_request(
            table.signal(),
            transport,
            outcome,
            started.elapsed().as_secs_f64(),
        );
    }
}

#[cfg(test)]
mod admission_tests {
    use super::*;

    #[test]
    fn the_in_flight_budget_refuses_work_beyond_it() {
        let budget = InFlight::default();
        assert!(budget.take(60, 100));
        assert!(!budget.take(50, 100), "60 + 50 exceeds 100");
        assert!(budget.take(40, 100));
        assert!(!budget.take(500, 100));
        assert_eq!(budget.bytes.load(Ordering::Acquire), 100);
    }

    #[tokio::test]
    async fn an_exhausted_budget_answers_unavailable_with_the_retry_delay() {
        let limits = IngestLimits {
            max_inflight_bytes: 1000,
            ..IngestLimits::default()
        };
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = Store::open(
            dir.path(),
            smolder_storage::StoreOptions::default(),
            Arc::new(smolder_common::clock::SystemClock),
        )
        .await
        .unwrap();
        let ingestor = Ingestor::new(
            Arc::new(store),
            IngestMetrics::new(&mut prometheus_client::registry::Registry::default()),
            limits,
        );
        let held = ingestor.admit(800).unwrap();
        assert_eq!(ingestor.in_flight_bytes(), 800);
        match ingestor.admit(300) {
            Err(IngestError::Unavailable {
                message,
                retry_after,
            }) => {
                assert!(message.contains("1000 bytes of requests"), "{message}");
                assert_eq!(retry_after, limits.retry_after);
            }
            other => panic!("expected Unavailable, got {other:?}"),
        }
        drop(held);
        assert_eq!(ingestor.in_flight_bytes(), 0);
        assert!(ingestor.admit(300).is_ok());
        // A request that alone exceeds the budget cannot succeed by retrying.
        match ingestor.admit(1001) {
            Err(e @ IngestError::TooCostly { .. }) => {
                assert!(e.to_string().contains("send smaller batches"), "{e}");
            }
            other => panic!("expected TooCostly, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn requests_draw_from_the_process_memory_budget() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = Store::open(
            dir.path(),
            smolder_storage::StoreOptions::default(),
            Arc::new(smolder_common::clock::SystemClock),
        )
        .await
        .unwrap();
        let budget = MemoryBudget::new(1000);
        let ingestor = Ingestor::with_budget(
            Arc::new(store),
            IngestMetrics::new(&mut prometheus_client::registry::Registry::default()),
            IngestLimits::default(),
            Arc::clone(&budget),
        );
        let _query = budget.reserve(Consumer::Query, 900).unwrap();
        let mut held = ingestor.admit(100).unwrap();
        assert_eq!(budget.used_by(Consumer::Ingest), 100);
        match held.grow(1) {
            Err(IngestError::Unavailable { message, .. }) => {
                assert!(message.contains("memory budget"), "{message}");
            }
            other => panic!("expected Unavailable, got {other:?}"),
        }
        drop(held);
        assert_eq!(budget.used_by(Consumer::Ingest), 0);
        assert_eq!(ingestor.in_flight_bytes(), 0);
    }
}

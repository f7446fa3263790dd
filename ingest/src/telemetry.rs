//! The receivers' own telemetry, exported on `/metrics` in Prometheus format.
//!
//! Names follow `smolder_<subsystem>_<name>_<unit>`, counters end in `_total`;
//! labels are low-cardinality (signal, transport, reason, outcome). Counters are
//! updated once per request, never per item.

use std::collections::BTreeMap;
use std::sync::Mutex;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use smolder_common::Tenant;
use smolder_common::sync::lock;

/// How an export arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// OTLP/gRPC.
    Grpc,
    /// OTLP/HTTP with a protobuf body.
    HttpProtobuf,
    /// OTLP/HTTP with a JSON body.
    HttpJson,
}

/// What became of an export request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Every item was accepted.
    Accepted,
    /// Some items were rejected (`partial_success`).
    Partial,
    /// The body was malformed (400 / INVALID_ARGUMENT).
    Malformed,
    /// The body was too large (413 / RESOURCE_EXHAUSTED).
    TooLarge,
    /// The media type or encoding is not supported (415).
    UnsupportedMediaType,
    /// The server was overloaded (503 / UNAVAILABLE).
    Backpressure,
    /// The tenant sent faster than its rate (429 / RESOURCE_EXHAUSTED).
    RateLimited,
    /// An internal error (500 / INTERNAL).
    Internal,
    /// The body did not arrive in time (408).
    Timeout,
}

/// Why items were rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RejectReason {
    /// The item broke an OTLP rule (e.g. a trace id that is not 16 bytes).
    InvalidItem,
    /// The buffer was full; the client was asked to retry.
    Backpressure,
    /// The write-ahead log could not store the export; the client was asked
    /// to retry.
    StorageError,
    /// The item is older than its table's retention.
    TooOld,
    /// The item is too far in the future.
    TooNew,
    /// The tenant sent faster than its rate; the client was asked to retry.
    RateLimited,
}

impl Transport {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Grpc => "grpc",
            Self::HttpProtobuf => "http_protobuf",
            Self::HttpJson => "http_json",
        }
    }
}

impl Outcome {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::Partial => "partial",
            Self::Malformed => "malformed",
            Self::TooLarge => "too_large",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::Backpressure => "backpressure",
            Self::RateLimited => "rate_limited",
            Self::Internal => "internal",
            Self::Timeout => "timeout",
        }
    }
}

impl RejectReason {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidItem => "invalid_item",
            Self::Backpressure => "backpressure",
            Self::StorageError => "storage_error",
            Self::TooOld => "too_old",
            Self::TooNew => "too_new",
            Self::RateLimited => "rate_limited",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct SignalTransport {
    signal: &'static str,
    transport: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RequestLabels {
    signal: &'static str,
    transport: &'static str,
    outcome: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RejectLabels {
    signal: &'static str,
    reason: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct TenantLabels {
    tenant: String,
    signal: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct TenantRejectLabels {
    tenant: String,
    signal: &'static str,
    reason: &'static str,
}

/// Totals since start, for the status page: accepted items and received
/// bytes by signal, rejected items by signal and reason.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct IngestTotals {
    /// Items accepted, by signal.
    pub accepted_items: BTreeMap<&'static str, u64>,
    /// Request bytes received (as sent on the wire), by signal.
    pub received_bytes: BTreeMap<&'static str, u64>,
    /// Items rejected, by signal then reason.
    pub rejected_items: BTreeMap<&'static str, BTreeMap<&'static str, u64>>,
}

/// Counters and histograms of the OTLP receivers.
#[derive(Debug)]
pub struct IngestMetrics {
    totals: Mutex<IngestTotals>,
    requests: Family<RequestLabels, Counter>,
    items: Family<SignalTransport, Counter>,
    bytes: Family<SignalTransport, Counter>,
    rejected: Family<RejectLabels, Counter>,
    duration: Family<SignalTransport, Histogram>,
    tenant_items: Family<TenantLabels, Counter>,
    tenant_rejected: Family<TenantRejectLabels, Counter>,
    duplicates: Family<TenantLabels, Counter>,
}

impl IngestMetrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn new(registry: &mut Registry) -> Self {
        let metrics = Self {
            totals: Mutex::default(),
            requests: Family::default(),
            items: Family::default(),
            bytes: Family::default(),
            rejected: Family::default(),
            duration: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.0001, 2.0, 16))
            }),
            tenant_items: Family::default(),
            tenant_rejected: Family::default(),
            duplicates: Family::default(),
        };
        let otlp = registry.sub_registry_with_prefix("otlp");
        otlp.register(
            "requests",
            "OTLP export requests by signal, transport and outcome",
            metrics.requests.clone(),
        );
        otlp.register(
            "received_items",
            "Spans, log records and metric data points accepted",
            metrics.items.clone(),
        );
        otlp.register(
            "received_bytes",
            "Request body bytes received, as sent on the wire (compressed)",
            metrics.bytes.clone(),
        );
        otlp.register(
            "rejected_items",
            "Items rejected, by reason",
            metrics.rejected.clone(),
        );
        otlp.register(
            "request_duration_seconds",
            "Time to handle an export request, from body received to answer",
            metrics.duration.clone(),
        );
        otlp.register(
            "tenant_received_items",
            "Items accepted, per tenant",
            metrics.tenant_items.clone(),
        );
        otlp.register(
            "duplicate_items",
            "Items accepted again within ingest.dedup_window (an exporter's retry): acknowledged, stored once",
            metrics.duplicates.clone(),
        );
        otlp.register(
            "tenant_rejected_items",
            "Items rejected, per tenant and reason (rate_limited: over ingest.tenant_rate)",
            metrics.tenant_rejected.clone(),
        );
        metrics
    }

    /// The totals since start.
    pub fn totals(&self) -> IngestTotals {
        self.lock_totals().clone()
    }

    fn lock_totals(&self) -> std::sync::MutexGuard<'_, IngestTotals> {
        // The totals stay consistent even if a holder panicked: each update
        // is a single addition.
        lock(&self.totals)
    }

    /// Records a received request body of `bytes` bytes.
    pub fn record_bytes(&self, signal: &'static str, transport: Transport, bytes: usize) {
        *self.lock_totals().received_bytes.entry(signal).or_default() += bytes as u64;
        self.bytes
            .get_or_create(&SignalTransport {
                signal,
                transport: transport.as_str(),
            })
            .inc_by(bytes as u64);
    }

    /// Records the outcome of one request.
    pub fn record_request(
        &self,
        signal: &'static str,
        transport: Transport,
        outcome: Outcome,
        seconds: f64,
    ) {
        self.requests
            .get_or_create(&RequestLabels {
                signal,
                transport: transport.as_str(),
                outcome: outcome.as_str(),
            })
            .inc();
        self.duration
            .get_or_create(&SignalTransport {
                signal,
                transport: transport.as_str(),
            })
            .observe(seconds);
    }

    /// Records accepted items.
    pub fn record_items(
        &self,
        tenant: &Tenant,
        signal: &'static str,
        transport: Transport,
        items: u64,
    ) {
        *self.lock_totals().accepted_items.entry(signal).or_default() += items;
        self.tenant_items
            .get_or_create(&TenantLabels {
                tenant: tenant.to_string(),
                signal,
            })
            .inc_by(items);
        self.items
            .get_or_create(&SignalTransport {
                signal,
                transport: transport.as_str(),
            })
            .inc_by(items);
    }

    /// Counts copies of accepted items, dropped.
    pub fn record_duplicates(&self, tenant: &Tenant, signal: &'static str, items: u64) {
        if items > 0 {
            self.duplicates
                .get_or_create(&TenantLabels {
                    tenant: tenant.to_string(),
                    signal,
                })
                .inc_by(items);
        }
    }

    /// Records rejected items.
    pub fn record_rejected(
        &self,
        tenant: &Tenant,
        signal: &'static str,
        reason: RejectReason,
        items: u64,
    ) {
        if items > 0 {
            self.tenant_rejected
                .get_or_create(&TenantRejectLabels {
                    tenant: tenant.to_string(),
                    signal,
                    reason: reason.as_str(),
                })
                .inc_by(items);
            *self
                .lock_totals()
                .rejected_items
                .entry(signal)
                .or_default()
                .entry(reason.as_str())
                .or_default() += items;
            self.rejected
                .get_or_create(&RejectLabels {
                    signal,
                    reason: reason.as_str(),
                })
                .inc_by(items);
        }
    }
}

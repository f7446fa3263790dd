//! `[ingest]`: limits of the OTLP receivers (see `smolder_common::config`).

use std::time::Duration;

use bytesize::ByteSize;

use crate::pipeline::{IngestLimits, TenantRate};

smolder_common::config_section! {
    /// OTLP ingest.
    pub struct IngestConfig {
        /// Largest OTLP request body after decompression; larger gets 413 /
        /// RESOURCE_EXHAUSTED.
        pub max_request_size: ByteSize = ByteSize::mib(64),
        /// Memory for buffered telemetry (Arrow data). When full, exports get
        /// 503 + Retry-After / UNAVAILABLE + RetryInfo: backpressure, never an
        /// out-of-memory crash.
        pub buffer_limit: ByteSize = ByteSize::gib(1),
        /// Memory of requests being decoded and converted at once, by the
        /// estimate of their decoded size (items, attributes, resources copied
        /// into every row; not their compressed bytes). More concurrent load
        /// gets 503 / UNAVAILABLE; a single request estimated above it gets
        /// 413 / RESOURCE_EXHAUSTED (send smaller batches).
        pub max_inflight_bytes: ByteSize = ByteSize::mib(256),
        /// Retry delay suggested to clients under backpressure.
        #[serde(with = "humantime_serde")]
        pub retry_after: Duration = Duration::from_secs(1),
        /// Items timestamped further than this in the future are rejected as
        /// partial success. Items older than their table's retention are too.
        #[serde(with = "humantime_serde")]
        pub max_future: Duration = Duration::from_secs(3600),
        /// Time an OTLP/HTTP request body may take to arrive; a slower one
        /// gets 408 (a client trickling a body holds a connection and
        /// memory meanwhile).
        #[serde(with = "humantime_serde")]
        pub body_timeout: Duration = Duration::from_secs(60),
        /// Items (spans, log records, data points) per second each tenant
        /// may send, on average; 0 for no limit. Beyond it exports get 429 +
        /// Retry-After / RESOURCE_EXHAUSTED + RetryInfo, which exporters
        /// retry; other tenants are not affected.
        pub tenant_rate: f64 = 0.0,
        /// Items a tenant may send at once above its rate (a burst); 0 for
        /// one second of tenant_rate. A single export larger than this gets
        /// 413 / RESOURCE_EXHAUSTED without retry: send smaller batches.
        pub tenant_burst: u32 = 0,
        /// Share of buffer_limit one tenant may hold (0 < share <= 1): beyond
        /// it its exports get 503 / UNAVAILABLE while others' are buffered.
        pub tenant_buffer_share: f64 = 1.0,
        /// An item (span, log record, data point) accepted again within
        /// this time — an exporter retrying an export whose answer it lost
        /// — is stored once; 0s turns this off. Keys survive restarts.
        #[serde(with = "humantime_serde")]
        pub dedup_window: Duration = Duration::from_secs(300),
        /// Keys of accepted items remembered at most per signal (about
        /// 10–20 bytes each, counted in server.memory_budget as `dedup`,
        /// lowered to fit a quarter of it); beyond it the oldest are
        /// forgotten before dedup_window is over.
        pub dedup_max_keys: usize = 8_000_000,
    }
    validate(self, problems) {
        for (field, bytes) in [
            ("max_request_size", self.max_request_size),
            ("buffer_limit", self.buffer_limit),
            ("max_inflight_bytes", self.max_inflight_bytes),
        ] {
            problems.check(bytes.as_u64() > 0, field, "must be positive");
        }
        problems.check(!self.body_timeout.is_zero(), "body_timeout", "must be positive");
        problems.check(
            self.tenant_rate.is_finite() && self.tenant_rate >= 0.0,
            "tenant_rate",
            "must be 0 (no limit) or positive",
        );
        problems.check(
            self.tenant_buffer_share > 0.0 && self.tenant_buffer_share <= 1.0,
            "tenant_buffer_share",
            "must be more than 0 and at most 1",
        );
    }
}

impl IngestConfig {
    /// The receivers' limits.
    pub fn limits(&self) -> IngestLimits {
        IngestLimits {
            max_request_bytes: usize::try_from(self.max_request_size.as_u64())
                .unwrap_or(usize::MAX),
            retry_after: self.retry_after,
            max_inflight_bytes: usize::try_from(self.max_inflight_bytes.as_u64())
                .unwrap_or(usize::MAX),
            body_timeout: self.body_timeout,
            tenant_rate: (self.tenant_rate > 0.0).then(|| TenantRate {
                per_second: self.tenant_rate,
                burst: match self.tenant_burst {
                    0 => (self.tenant_rate.ceil() as u32).max(1),
                    n => n,
                },
            }),
        }
    }

    /// Bytes of the buffer one tenant may hold.
    pub fn tenant_buffer_limit(&self) -> usize {
        let limit = self.buffer_limit.as_u64() as f64 * self.tenant_buffer_share;
        limit as usize
    }
}

//! The storage sections of the configuration file: `[wal]`, `[storage]` and
//! `[retention]` (see `smolder_common::config` for how sections are declared
//! and layered).

use std::time::Duration;

use bytesize::ByteSize;

use crate::wal::{SyncPolicy, WalOptions};

const DAY: Duration = Duration::from_secs(86_400);

smolder_common::config_section! {
    /// The write-ahead log.
    pub struct WalConfig {
        /// Keep a write-ahead log. With false, data not yet flushed to
        /// Parquet is lost if smolder crashes.
        pub enabled: bool = true,
        /// When the write-ahead log is forced to disk:
        ///   "always" — fsync before acknowledging; one fsync covers all
        ///              requests that arrived meanwhile (group commit).
        ///              Nothing acknowledged is lost.
        ///   "100ms"  — (any interval) acknowledge once written to the OS,
        ///              fsync at the interval: survives a crash of smolder, a
        ///              power loss may lose up to the interval.
        ///   "off"    — never fsync; the OS writes back when it likes.
        pub sync: SyncPolicy = SyncPolicy::Always,
    }
    validate(self, problems) {}
}

impl WalConfig {
    /// The log's options, or `None` when it is turned off.
    pub fn options(&self) -> Option<WalOptions> {
        self.enabled.then(|| WalOptions {
            sync: self.sync,
            ..WalOptions::default()
        })
    }
}

smolder_common::config_section! {
    /// Parquet files.
    pub struct StorageConfig {
        /// Where the Parquet files and their manifest live: empty for
        /// <data-dir>/parquet, file:///path, s3://bucket/prefix (endpoint,
        /// region and credentials from AWS_* variables and the AWS chain;
        /// AWS_ALLOW_HTTP=true for a local server), gs://bucket/prefix or
        /// az://container/prefix. The write-ahead log stays in the data
        /// directory.
        pub url: String = String::new(),
        /// The in-memory buffer is flushed to Parquet files at least this
        /// often, and whenever it is half full.
        #[serde(with = "humantime_serde")]
        pub flush_interval: Duration = Duration::from_secs(60),
        /// Small files of the same hour are merged up to this size.
        pub compaction_target_size: ByteSize = ByteSize::mib(256),
        /// With files in a bucket, a process that queries keeps local copies
        /// of the files it reads (and writes) in <data-dir>/cache, up to
        /// this size; the least recently read go first. 0 turns it off.
        pub read_cache_size: ByteSize = ByteSize::gib(4),
    }
    validate(self, problems) {
        if let Err(e) = crate::StorageUrl::parse(&self.url, std::path::Path::new("/")) {
            problems.check(false, "url", e);
        }
        problems.check(!self.flush_interval.is_zero(), "flush_interval", "must be positive");
        problems.check(
            self.compaction_target_size.as_u64() > 0,
            "compaction_target_size",
            "must be positive",
        );
    }
}

smolder_common::config_section! {
    /// How long each signal is kept. Whole hours are deleted once they are
    /// older; at least 1h. Items older than their table's retention are
    /// rejected at ingest.
    pub struct RetentionConfig {
        /// Spans.
        #[serde(with = "humantime_serde")]
        pub traces: Duration = 7 * DAY,
        /// Log records.
        #[serde(with = "humantime_serde")]
        pub logs: Duration = 7 * DAY,
        /// Metric points.
        #[serde(with = "humantime_serde")]
        pub metrics: Duration = 30 * DAY,
    }
    validate(self, problems) {
        for (field, kept) in [("traces", self.traces), ("logs", self.logs), ("metrics", self.metrics)] {
            problems.check(
                kept >= Duration::from_secs(3600),
                field,
                "must be at least 1h (data is deleted by the hour)",
            );
        }
    }
}

impl RetentionConfig {
    /// Retention per table, in [`smolder_common::Table`] order.
    pub fn by_table(&self) -> [Duration; 3] {
        [self.traces, self.logs, self.metrics]
    }
}

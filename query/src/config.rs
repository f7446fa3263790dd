//! `[query]`: limits of SQL queries (see `smolder_common::config`).

use std::time::Duration;

use bytesize::ByteSize;

use crate::QueryLimits;

smolder_common::config_section! {
    /// SQL queries: the SQL API, searches, SLO rollups and cause lookups.
    pub struct QueryConfig {
        /// Most rows a SQL query returns ("truncated": true when more matched).
        pub max_rows: usize = 10_000,
        /// Time a SQL query may run before it is cancelled.
        #[serde(with = "humantime_serde")]
        pub timeout: Duration = Duration::from_secs(30),
        /// Memory a SQL query's operators may use (sorts, joins, aggregations).
        pub memory_limit: ByteSize = ByteSize::gib(1),
        /// SQL API queries and searches one tenant may run at once; more get
        /// 429 (resource_exhausted) at once. 0 for no limit of its own.
        pub tenant_concurrency: usize = 0,
    }
    validate(self, problems) {
        problems.check(self.max_rows > 0, "max_rows", "must be positive");
        problems.check(!self.timeout.is_zero(), "timeout", "must be positive");
        problems.check(self.memory_limit.as_u64() > 0, "memory_limit", "must be positive");
    }
}

impl QueryConfig {
    /// The limits of every query, with the built-in statement and function
    /// limits.
    pub fn limits(&self) -> QueryLimits {
        QueryLimits {
            max_rows: self.max_rows,
            timeout: self.timeout,
            memory_limit: usize::try_from(self.memory_limit.as_u64()).unwrap_or(usize::MAX),
            statement: crate::sandbox::Limits::default(),
            functions: crate::bounded::FunctionLimits::default(),
            threads: 0,
            tenant_concurrency: self.tenant_concurrency,
        }
    }
}

//! The SQL engine of smolder.
//!
//! [`QueryEngine`] is the entry point: a DataFusion session whose tables
//! `spans`, `logs` and `metrics` read stored data through
//! [`smolder_common::TableSource`] — batches still in memory and Parquet files
//! — so a query sees an export as soon as it is acknowledged, and data thirty
//! days old alike.
//!
//! Each tenant has a session of its own ([`QueryEngine::for_tenant`]), whose
//! tables are bound to that tenant's data when they are registered: there is
//! no table, catalog entry, function or plan node through which one tenant's
//! query could reach another's rows, whatever SQL it writes (joins, unions,
//! subqueries, `information_schema`, EXPLAIN). The sessions share the runtime,
//! the memory pool, the caches and the query threads. [`api`] exposes it as the read-only
//! `POST /api/v1/sql` endpoint; [`sandbox`] decides what "read-only" admits;
//! [`search`] answers the UI's trace and log searches with the same engine.

pub mod api;
mod bloom;
mod bounded;
mod config;
pub mod executor;
mod functions;
mod pool;
pub mod sandbox;
pub mod search;
mod table;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::error::DataFusionError;
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::prelude::{SQLOptions, SessionConfig, SessionContext};
use futures::StreamExt as _;
use smolder_common::memory::MemoryBudget;
use smolder_common::sync::{lock, read, write};
use smolder_common::{Table, TableSource, Tenant};

pub use config::QueryConfig;
pub use table::SourceTable;

/// Errors of the query engine.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The statement is not allowed in the read-only sandbox.
    #[error("{0}")]
    Refused(String),
    /// DataFusion could not parse, plan or run the query (the user's error, in
    /// DataFusion's words).
    #[error("{0}")]
    Query(Box<DataFusionError>),
    /// The query ran longer than the configured timeout.
    #[error("the query was cancelled after the timeout of {0:?}")]
    Timeout(Duration),
    /// The tenant already runs as many queries as it may.
    #[error(
        "tenant {tenant} already runs {limit} queries, as many as it may at once \
         (query.tenant_concurrency); retry when one has finished"
    )]
    Busy {
        /// Whose queries.
        tenant: Tenant,
        /// The limit.
        limit: usize,
    },
    /// The query panicked inside DataFusion (a bug there or here); the
    /// query failed, the server goes on.
    #[error("the query failed inside the engine: {0}")]
    Panicked(String),
    /// The engine could not be set up (a bug or a configuration error).
    #[error("query engine: {0}")]
    Internal(String),
}

impl From<DataFusionError> for Error {
    fn from(e: DataFusionError) -> Self {
        Self::Query(Box::new(e))
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Limits applied to every query.
#[derive(Debug, Clone, Copy)]
pub struct QueryLimits {
    /// Rows returned at most; more are cut off and the answer says `truncated`.
    pub max_rows: usize,
    /// Wall-clock time a query may run.
    pub timeout: Duration,
    /// Memory DataFusion operators may reserve (sorts, joins, aggregations).
    pub memory_limit: usize,
    /// Size and nesting of statements and expressions.
    pub statement: sandbox::Limits,
    /// Output of the functions that make data out of a number.
    pub functions: bounded::FunctionLimits,
    /// Threads of the query runtime ([`executor`]); 0 for one per core.
    pub threads: usize,
    /// SQL API queries one tenant may run at once; 0 for no limit.
    pub tenant_concurrency: usize,
}

impl Default for QueryLimits {
    fn default() -> Self {
        QueryConfig::default().limits()
    }
}

/// Memory for parsed Parquet metadata (footers and page indexes), kept
/// across queries.
const METADATA_CACHE_BYTES: usize = 256 << 20;

/// Memory for the `trace_id` bloom filters of Parquet files, kept across
/// queries so that a lookup by trace id does not read them again (bloom.rs):
/// about a byte per span or log record, so a month of ten million spans a
/// day would not all fit; the files looked up least recently make room.
const BLOOM_CACHE_BYTES: usize = 128 << 20;

/// The answer to a query.
#[derive(Debug, Clone)]
pub struct QueryOutput {
    /// Schema of the result.
    pub schema: SchemaRef,
    /// At most `max_rows` rows.
    pub batches: Vec<RecordBatch>,
    /// Whether rows beyond `max_rows` were cut off.
    pub truncated: bool,
    /// What the answer may miss (an ingester that did not answer: its
    /// unflushed rows are not in it).
    pub warnings: Vec<String>,
}

/// Tables a tenant's session gets besides the telemetry tables (the SLO
/// engine's `slo_rollups`), each bound to that tenant.
pub trait TenantTables: Send + Sync {
    /// Registers the tables of `tenant` in its session.
    fn register(&self, tenant: &Tenant, ctx: &SessionContext) -> datafusion::error::Result<()>;

    /// Registers the tables only `tenant`'s administrators query (in the
    /// session [`QueryEngine::for_admin`] gives); none by default.
    fn register_admin(
        &self,
        _tenant: &Tenant,
        _ctx: &SessionContext,
    ) -> datafusion::error::Result<()> {
        Ok(())
    }
}

/// Whose session: a tenant's members', or its administrators' (which also
/// has the tables only they may query, such as the audit log).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Access {
    Member,
    Admin,
}

/// What the tenants' sessions share.
struct Shared {
    sources: Vec<Arc<dyn TableSource>>,
    runtime: Arc<RuntimeEnv>,
    blooms: Arc<bloom::BloomCache>,
    limits: QueryLimits,
    executor: Arc<executor::Executor>,
    budget: Arc<MemoryBudget>,
    sessions: Mutex<HashMap<(Tenant, Access), SessionContext>>,
    extra: RwLock<Vec<Arc<dyn TenantTables>>>,
    /// SQL API queries running per tenant.
    running: Mutex<HashMap<Tenant, usize>>,
}

/// A query counted against its tenant's concurrency until dropped.
struct Running<'a> {
    shared: &'a Shared,
    tenant: &'a Tenant,
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        let mut running = lock(&self.shared.running);
        if let Some(n) = running.get_mut(self.tenant) {
            *n -= 1;
            if *n == 0 {
                running.remove(self.tenant);
            }
        }
    }
}

impl Shared {
    /// Counts a query of `tenant`, or refuses it over the tenant's limit.
    fn start<'a>(&'a self, tenant: &'a Tenant) -> Result<Running<'a>> {
        let limit = self.limits.tenant_concurrency;
        let mut running = lock(&self.running);
        let n = running.entry(tenant.clone()).or_insert(0);
        if limit > 0 && *n >= limit {
            return Err(Error::Busy {
                tenant: tenant.clone(),
                limit,
            });
        }
        *n += 1;
        Ok(Running {
            shared: self,
            tenant,
        })
    }
}

impl Shared {
    /// A new session of `tenant`: its telemetry tables, the functions, and
    /// the extra tables.
    fn session(&self, tenant: &Tenant, access: Access) -> Result<SessionContext> {
        let config = SessionConfig::new()
            .with_information_schema(true)
            .with_default_catalog_and_schema("smolder", "public");
        let ctx = SessionContext::new_with_config_rt(config, Arc::clone(&self.runtime));
        functions::register(&ctx);
        bounded::register(&ctx, self.limits.functions, &self.budget);
        for table in Table::ALL {
            let provider = SourceTable::new(
                tenant.clone(),
                table,
                self.sources.clone(),
                Arc::clone(&self.blooms),
            );
            ctx.register_table(table.name(), Arc::new(provider))?;
        }
        for extra in read(&self.extra).iter() {
            extra.register(tenant, &ctx)?;
            if access == Access::Admin {
                extra.register_admin(tenant, &ctx)?;
            }
        }
        Ok(ctx)
    }
}

/// A DataFusion session over one tenant's tables (see the module
/// documentation); [`QueryEngine::for_tenant`] gives another tenant's.
#[derive(Clone)]
pub struct QueryEngine {
    tenant: Tenant,
    access: Access,
    ctx: SessionContext,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for QueryEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueryEngine")
            .field("tenant", &self.tenant)
            .field("limits", &self.shared.limits)
            .finish_non_exhaustive()
    }
}

impl QueryEngine {
    /// An engine whose tables read from `sources` (their union), with no
    /// process-wide memory budget beyond its own limits (tools and tests).
    pub fn new(sources: Vec<Arc<dyn TableSource>>, limits: QueryLimits) -> Result<Self> {
        Self::with_budget(sources, limits, MemoryBudget::unlimited())
    }

    /// An engine whose queries also draw from the process's memory `budget`
    /// (operators through the pool, bounded functions while they run). It
    /// is the default tenant's; [`Self::for_tenant`] gives the others'.
    pub fn with_budget(
        sources: Vec<Arc<dyn TableSource>>,
        limits: QueryLimits,
        budget: Arc<MemoryBudget>,
    ) -> Result<Self> {
        let runtime = RuntimeEnvBuilder::new()
            .with_memory_pool(Arc::new(pool::BudgetPool::new(
                limits.memory_limit,
                Arc::clone(&budget),
            )))
            // Parsed Parquet footers and page indexes (table.rs): room for
            // a month of hourly files of every signal.
            .with_metadata_cache_limit(METADATA_CACHE_BYTES)
            .build_arc()?;
        // The object stores live in the shared runtime: registered once.
        for source in &sources {
            if let Some((url, store)) = source.object_store() {
                runtime.register_object_store(url.as_ref(), store);
            }
        }
        let threads = match limits.threads {
            0 => std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get),
            n => n,
        };
        let shared = Arc::new(Shared {
            sources,
            runtime,
            blooms: Arc::new(bloom::BloomCache::new(BLOOM_CACHE_BYTES)),
            limits,
            executor: Arc::new(executor::Executor::new(threads)?),
            budget,
            sessions: Mutex::new(HashMap::new()),
            extra: RwLock::new(Vec::new()),
            running: Mutex::new(HashMap::new()),
        });
        let tenant = Tenant::default_tenant();
        let ctx = shared.session(&tenant, Access::Member)?;
        lock(&shared.sessions).insert((tenant.clone(), Access::Member), ctx.clone());
        Ok(Self {
            tenant,
            access: Access::Member,
            ctx,
            shared,
        })
    }

    /// The same engine over `tenant`'s data (its session is made on first
    /// use and kept).
    pub fn for_tenant(&self, tenant: &Tenant) -> Result<Self> {
        self.with(tenant, Access::Member)
    }

    /// The engine of `tenant`'s administrators: its data, and the tables
    /// only they may query ([`TenantTables::register_admin`]).
    pub fn for_admin(&self, tenant: &Tenant) -> Result<Self> {
        self.with(tenant, Access::Admin)
    }

    fn with(&self, tenant: &Tenant, access: Access) -> Result<Self> {
        if tenant == &self.tenant && access == self.access {
            return Ok(self.clone());
        }
        let mut sessions = lock(&self.shared.sessions);
        let key = (tenant.clone(), access);
        let ctx = match sessions.get(&key) {
            Some(ctx) => ctx.clone(),
            None => {
                let ctx = self.shared.session(tenant, access)?;
                sessions.insert(key, ctx.clone());
                ctx
            }
        };
        Ok(Self {
            tenant: tenant.clone(),
            access,
            ctx,
            shared: Arc::clone(&self.shared),
        })
    }

    /// Whose data this engine reads.
    pub fn tenant(&self) -> &Tenant {
        &self.tenant
    }

    /// Adds tables to every tenant's session, now and to come.
    pub fn add_tables(&self, tables: Arc<dyn TenantTables>) -> Result<()> {
        // The sessions' lock first, as `for_tenant` takes it: no session is
        // made between the two steps without the new tables.
        let sessions = lock(&self.shared.sessions);
        for ((tenant, access), ctx) in sessions.iter() {
            tables.register(tenant, ctx)?;
            if *access == Access::Admin {
                tables.register_admin(tenant, ctx)?;
            }
        }
        write(&self.shared.extra).push(tables);
        Ok(())
    }

    /// This tenant's session, for planning queries (on [`Self::run`]).
    pub fn context(&self) -> &SessionContext {
        &self.ctx
    }

    /// The configured limits.
    pub fn limits(&self) -> QueryLimits {
        self.shared.limits
    }

    /// The memory budget queries draw from, shared with the rest of the
    /// process (the SLO engine takes its rollups' share from it).
    pub fn budget(&self) -> &Arc<MemoryBudget> {
        &self.shared.budget
    }

    /// Queries that panicked since start.
    pub fn panics(&self) -> u64 {
        self.shared.executor.panics()
    }

    /// Runs `work` — planning and running queries on [`Self::context`] — on
    /// the query runtime, for at most `timeout` ([`executor`]). For queries
    /// other than the SQL API's (SLO rollups, causes, searches): they get
    /// the same isolation, memory pool and function limits.
    pub async fn run<T, F>(&self, what: &str, timeout: Duration, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: std::future::Future<Output = Result<T>> + Send + 'static,
    {
        self.shared.executor.run(what, timeout, work).await
    }

    /// Checks that `expr` is one expression without subqueries within the
    /// statement limits (for expressions users write into definitions).
    pub fn check_expression(&self, expr: &str) -> Result<()> {
        sandbox::check_expression(expr, self.shared.limits.statement)
    }

    /// Runs one read-only statement (counted against the tenant's
    /// concurrent queries).
    pub async fn sql(&self, sql: &str) -> Result<QueryOutput> {
        let _running = self.shared.start(&self.tenant)?;
        let ctx = self.ctx.clone();
        let limits = self.shared.limits;
        let sql = sql.to_string();
        let mut output = self
            .run("sql", limits.timeout, async move {
                run_sql(&ctx, &sql, limits).await
            })
            .await?;
        output.warnings = self.warnings();
        Ok(output)
    }

    /// What the sources say queries miss now (an ingester down).
    pub fn warnings(&self) -> Vec<String> {
        self.shared
            .sources
            .iter()
            .flat_map(|s| s.warnings())
            .collect()
    }
}

/// A session that knows smolder's SQL functions and nothing else: for
/// evaluating a query's filters elsewhere (an ingester applying the filters
/// a querier pushed down to its buffered rows).
pub fn expression_context() -> SessionContext {
    let ctx = SessionContext::new();
    functions::register(&ctx);
    ctx
}

/// Plans and runs a statement of the SQL API (on the query runtime).
async fn run_sql(ctx: &SessionContext, sql: &str, limits: QueryLimits) -> Result<QueryOutput> {
    sandbox::check(sql, limits.statement)?;
    let options = SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false);
    let df = ctx.sql_with_options(sql, options).await?;
    let schema = Arc::clone(df.schema().inner());
    let batches = collect_at_most(df.execute_stream().await?, limits.max_rows + 1).await?;
    let (batches, truncated) = truncate(batches, limits.max_rows);
    Ok(QueryOutput {
        schema,
        batches,
        truncated,
        warnings: Vec::new(),
    })
}

/// The batches of `stream` until it ends or `rows` rows have come (the rest
/// is never computed). Yields to the runtime between batches, so that a
/// query past its timeout is stopped at the next batch.
pub async fn collect_at_most(
    mut stream: datafusion::physical_plan::SendableRecordBatchStream,
    rows: usize,
) -> Result<Vec<RecordBatch>> {
    let (mut batches, mut seen) = (Vec::new(), 0);
    while let Some(batch) = stream.next().await {
        let batch = batch?;
        seen += batch.num_rows();
        batches.push(batch);
        if seen >= rows {
            break;
        }
        tokio::task::yield_now().await;
    }
    Ok(batches)
}

/// Keeps the first `max_rows` rows.
fn truncate(batches: Vec<RecordBatch>, max_rows: usize) -> (Vec<RecordBatch>, bool) {
    let mut left = max_rows;
    let mut out = Vec::with_capacity(batches.len());
    let mut truncated = false;
    for batch in batches {
        if batch.num_rows() <= left {
            left -= batch.num_rows();
            out.push(batch);
        } else {
            if left > 0 {
                out.push(batch.slice(0, left));
            }
            left = 0;
            truncated = true;
        }
    }
    (out, truncated)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_tenant_at_its_concurrent_queries_is_refused_and_others_are_not() {
        let limits = QueryLimits {
            tenant_concurrency: 1,
            ..QueryLimits::default()
        };
        let engine = QueryEngine::new(Vec::new(), limits).unwrap();
        let acme = engine.for_tenant(&Tenant::parse("acme").unwrap()).unwrap();
        let running = acme.shared.start(acme.tenant()).unwrap();
        let refused = acme.sql("SELECT 1").await.unwrap_err();
        assert!(matches!(refused, Error::Busy { limit: 1, .. }), "{refused}");
        assert!(refused.to_string().contains("tenant acme"), "{refused}");
        // Another tenant is not held up.
        engine.sql("SELECT 1").await.unwrap();
        drop(running);
        acme.sql("SELECT 1").await.unwrap();
    }

    #[tokio::test]
    async fn each_tenant_has_a_session_of_its_own_with_the_same_tables() {
        let engine = QueryEngine::new(Vec::new(), QueryLimits::default()).unwrap();
        let acme = Tenant::parse("acme").unwrap();
        let a = engine.for_tenant(&acme).unwrap();
        let again = engine.for_tenant(&acme).unwrap();
        assert_eq!(a.context().session_id(), again.context().session_id());
        assert_ne!(a.context().session_id(), engine.context().session_id());
        let tables = a
            .sql("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'")
            .await
            .unwrap();
        assert_eq!(tables.batches[0].num_rows(), 1);
    }
}

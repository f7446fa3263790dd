//! The audit log: every change made to a server — who (token id and tenant,
//! or `local` for the CLI and signals), what (method and path: SLO put and
//! delete, silences, tokens, reloads), when, from where and with what result.
//!
//! It is written by one middleware of the API listener for every state
//! change that succeeded — and for every one cut off before its answer (a
//! timeout, a client that left), which may have taken effect — so no handler
//! can forget it, by `smolder token`
//! and by SIGHUP reloads, into `audit.db` in the data directory (SQLite, so
//! the CLI writes beside a running server). Admins read it at
//! `GET /api/v1/audit?limit=` and in SQL as the table `audit_log`
//! ([`AuditTables`]: only in administrators' sessions).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};
use axum::routing::get;
use rusqlite::{Connection, params};
use serde::{Deserialize, Serialize};
use smolder_common::Tenant;
use smolder_common::clock::{Clock as _, SystemClock};
use smolder_common::http::{ApiError, Query};
use smolder_common::sync::lock;

use crate::auth::TokenInfo;

/// Opens (creating) the SQLite database `name` in `data_dir` for use beside
/// other processes (the CLI writes while the server runs): WAL journal, a
/// wait of up to 5 s for a writer, and `schema` applied.
pub(crate) fn open_db(data_dir: &Path, name: &str, schema: &str) -> anyhow::Result<Connection> {
    std::fs::create_dir_all(data_dir)?;
    let conn = Connection::open(data_dir.join(name))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.execute_batch(schema)?;
    Ok(conn)
}

/// What a handler adds to its change's audit entry (the id of what it
/// made), put in its response's extensions (shared with the library
/// crates' handlers).
pub(crate) use smolder_common::http::AuditDetail as Detail;

/// The address a request came from (set per connection by the listener).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Peer(pub(crate) SocketAddr);

/// One change.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Entry {
    /// When (RFC 3339).
    pub(crate) at: String,
    /// When (Unix ns).
    #[serde(skip)]
    pub(crate) at_ns: i64,
    /// The token's id, or `local` (the CLI, a signal), or `anonymous` when
    /// authentication is off.
    pub(crate) actor: String,
    /// The token's tenant.
    pub(crate) tenant: String,
    /// `PUT /api/v1/slos/checkout`, `token create`, `reload (SIGHUP)`.
    pub(crate) action: String,
    /// The HTTP status, when it was a request.
    pub(crate) status: Option<u16>,
    /// The client's address.
    pub(crate) remote: String,
}

/// The log.
pub(crate) struct AuditLog {
    conn: Mutex<Connection>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog").finish_non_exhaustive()
    }
}

impl AuditLog {
    /// Opens (creating) `audit.db` in `data_dir`.
    pub(crate) fn open(data_dir: &Path) -> anyhow::Result<Self> {
        let conn = open_db(
            data_dir,
            "audit.db",
            "CREATE TABLE IF NOT EXISTS audit (
                at INTEGER NOT NULL,
                actor TEXT NOT NULL,
                tenant TEXT NOT NULL,
                action TEXT NOT NULL,
                status INTEGER,
                remote TEXT NOT NULL
            )",
        )?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    /// Records a change; a failure to write is logged (the change happened).
    pub(crate) fn record(
        &self,
        actor: &str,
        tenant: &str,
        action: &str,
        status: Option<u16>,
        remote: &str,
    ) {
        let result = lock(&self.conn).execute(
            "INSERT INTO audit (at, actor, tenant, action, status, remote) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![SystemClock.now_ns(), actor, tenant, action, status, remote],
        );
        match result {
            Ok(_) => {
                tracing::info!(
                    actor,
                    tenant,
                    action,
                    status,
                    remote,
                    "Audit: a change was made."
                );
            }
            Err(e) => {
                tracing::error!(error = %e, actor, action, "Writing the audit log failed.");
            }
        }
    }

    /// The newest `limit` entries, newest first: of `tenant` only, or of
    /// every tenant.
    pub(crate) fn recent(
        &self,
        limit: usize,
        tenant: Option<&Tenant>,
    ) -> anyhow::Result<Vec<Entry>> {
        let conn = lock(&self.conn);
        let mut stmt = conn.prepare(
            "SELECT at, actor, tenant, action, status, remote FROM audit \
             WHERE ?2 IS NULL OR tenant = ?2 ORDER BY at DESC, rowid DESC LIMIT ?1",
        )?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = stmt
            .query_map(params![limit, tenant.map(Tenant::as_str)], |r| {
                let at_ns = r.get::<_, i64>(0)?;
                Ok(Entry {
                    at: smolder_common::text::rfc3339(at_ns, chrono::SecondsFormat::Millis),
                    at_ns,
                    actor: r.get(1)?,
                    tenant: r.get(2)?,
                    action: r.get(3)?,
                    status: r.get::<_, Option<u16>>(4)?,
                    remote: r.get(5)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }
}

/// Middleware of the API listener (inside authentication, so the token is
/// known): records every state change that succeeded.
pub(crate) async fn record_changes(
    State(log): State<Arc<AuditLog>>,
    request: Request,
    next: Next,
) -> Response {
    if matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    ) {
        return next.run(request).await;
    }
    let action = format!("{} {}", request.method(), request.uri().path());
    // A query changes nothing; signing in and out changes no data (and
    // has no actor yet: the changes made in a session name its person).
    if action == "POST /api/v1/sql" || request.uri().path().starts_with("/auth/") {
        return next.run(request).await;
    }
    let (actor, tenant) = match request.extensions().get::<TokenInfo>() {
        Some(t) => (t.id.clone(), t.tenant.to_string()),
        None => ("anonymous".to_string(), Tenant::DEFAULT.to_string()),
    };
    let remote = request
        .extensions()
        .get::<Peer>()
        .map_or_else(|| "unknown".to_string(), |p| p.0.to_string());
    // A request cut off (by the timeout, or a client that left) may still
    // have changed something: the guard records that it got no answer.
    let mut pending = Pending {
        log: Arc::clone(&log),
        entry: Some((actor, tenant, action, remote)),
    };
    let response = next.run(request).await;
    let status = response.status();
    if let Some((actor, tenant, mut action, remote)) = pending.entry.take()
        && status.is_success()
    {
        if let Some(Detail(detail)) = response.extensions().get::<Detail>() {
            action = format!("{action} ({detail})");
        }
        // SQLite waits for the CLI's writes: not on an async worker.
        let _ = tokio::task::spawn_blocking(move || {
            log.record(&actor, &tenant, &action, Some(status.as_u16()), &remote);
        })
        .await;
    }
    response
}

/// A change whose answer is not known yet: (actor, tenant, action, remote).
struct Pending {
    log: Arc<AuditLog>,
    entry: Option<(String, String, String, String)>,
}

impl Drop for Pending {
    fn drop(&mut self) {
        let Some((actor, tenant, action, remote)) = self.entry.take() else {
            return;
        };
        let log = Arc::clone(&self.log);
        let action =
            format!("{action} (no answer: timed out or the client left; it may have taken effect)");
        let record = move || log.record(&actor, &tenant, &action, None, &remote);
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn_blocking(record)),
            Err(_) => record(),
        }
    }
}

#[derive(Debug, Deserialize)]
struct Params {
    #[serde(default = "default_limit")]
    limit: usize,
}

fn default_limit() -> usize {
    100
}

/// `GET /api/v1/audit?limit=` (the `admin` scope): a tenant's admins see
/// its entries, the default tenant's (the operator's) every entry.
pub(crate) fn router(log: Arc<AuditLog>) -> Router {
    Router::new()
        .route(
            "/api/v1/audit",
            get(
                |State(log): State<Arc<AuditLog>>, caller: Tenant, Query(p): Query<Params>| async move {
                    let only = (!caller.is_default()).then_some(&caller);
                    match log.recent(p.limit.min(10_000), only) {
                        Ok(entries) => {
                            axum::Json(serde_json::json!({ "entries": entries })).into_response()
                        }
                        Err(e) => ApiError::internal("reading the audit log", e).into_response(),
                    }
                },
            ),
        )
        .with_state(log)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_come_back_newest_first() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::open(dir.path()).unwrap();
        log.record("local", "default", "token create abc", None, "local");
        log.record(
            "abc",
            "team-a",
            "PUT /api/v1/slos/x",
            Some(201),
            "127.0.0.1:5000",
        );
        let entries = log.recent(10, None).unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].action, "PUT /api/v1/slos/x");
        assert_eq!(entries[0].tenant, "team-a");
        assert_eq!(entries[1].status, None);
        assert_eq!(log.recent(1, None).unwrap().len(), 1);
        let team_a = Tenant::parse("team-a").unwrap();
        let theirs = log.recent(10, Some(&team_a)).unwrap();
        assert_eq!(theirs.len(), 1, "a tenant sees its own entries only");
        assert_eq!(theirs[0].tenant, "team-a");
    }
}

/// The SQL table `audit_log`, in the sessions of administrators only
/// (`QueryEngine::for_admin`): a tenant's admins see its entries, the
/// default tenant's every entry, as `GET /api/v1/audit`. Columns: `at`
/// (timestamp, UTC), `actor`, `tenant`, `action`, `status` (HTTP status,
/// null for a change without an answer or a local one), `remote`.
#[derive(Debug)]
pub(crate) struct AuditTables(pub(crate) Arc<AuditLog>);

impl smolder_query::TenantTables for AuditTables {
    fn register(
        &self,
        _tenant: &Tenant,
        _ctx: &datafusion::prelude::SessionContext,
    ) -> datafusion::error::Result<()> {
        Ok(())
    }

    fn register_admin(
        &self,
        tenant: &Tenant,
        ctx: &datafusion::prelude::SessionContext,
    ) -> datafusion::error::Result<()> {
        ctx.register_table(
            "audit_log",
            Arc::new(AuditTable {
                log: Arc::clone(&self.0),
                tenant: tenant.clone(),
            }),
        )?;
        Ok(())
    }
}

/// Most entries one scan of `audit_log` reads.
const MAX_SQL_ENTRIES: usize = 1_000_000;

#[derive(Debug)]
struct AuditTable {
    log: Arc<AuditLog>,
    tenant: Tenant,
}

fn audit_schema() -> datafusion::arrow::datatypes::SchemaRef {
    use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
    Arc::new(Schema::new(vec![
        Field::new(
            "at",
            DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())),
            false,
        ),
        Field::new("actor", DataType::Utf8, false),
        Field::new("tenant", DataType::Utf8, false),
        Field::new("action", DataType::Utf8, false),
        Field::new("status", DataType::UInt16, true),
        Field::new("remote", DataType::Utf8, false),
    ]))
}

#[async_trait::async_trait]
impl datafusion::datasource::TableProvider for AuditTable {
    fn schema(&self) -> datafusion::arrow::datatypes::SchemaRef {
        audit_schema()
    }

    fn table_type(&self) -> datafusion::datasource::TableType {
        datafusion::datasource::TableType::View
    }

    async fn scan(
        &self,
        _state: &dyn datafusion::catalog::Session,
        projection: Option<&Vec<usize>>,
        _filters: &[datafusion::logical_expr::Expr],
        _limit: Option<usize>,
    ) -> datafusion::error::Result<Arc<dyn datafusion::physical_plan::ExecutionPlan>> {
        use datafusion::arrow::array::{StringArray, TimestampNanosecondArray, UInt16Array};
        let log = Arc::clone(&self.log);
        let only = (!self.tenant.is_default()).then(|| self.tenant.clone());
        // SQLite waits for the CLI's writes: not on an async worker.
        let entries =
            tokio::task::spawn_blocking(move || log.recent(MAX_SQL_ENTRIES, only.as_ref()))
                .await
                .map_err(|e| datafusion::error::DataFusionError::External(Box::new(e)))?
                .map_err(|e| datafusion::error::DataFusionError::External(e.into()))?;
        let text = |f: fn(&Entry) -> &str| {
            Arc::new(StringArray::from_iter_values(entries.iter().map(f)))
                as datafusion::arrow::array::ArrayRef
        };
        let batch = datafusion::arrow::record_batch::RecordBatch::try_new(
            audit_schema(),
            vec![
                Arc::new(
                    TimestampNanosecondArray::from_iter_values(entries.iter().map(|e| e.at_ns))
                        .with_timezone("UTC"),
                ),
                text(|e| &e.actor),
                text(|e| &e.tenant),
                text(|e| &e.action),
                Arc::new(UInt16Array::from_iter(entries.iter().map(|e| e.status))),
                text(|e| &e.remote),
            ],
        )?;
        let exec: Arc<dyn datafusion::physical_plan::ExecutionPlan> =
            datafusion::datasource::memory::MemorySourceConfig::try_new_exec(
                &[vec![batch]],
                audit_schema(),
                projection.cloned(),
            )?;
        Ok(exec)
    }
}

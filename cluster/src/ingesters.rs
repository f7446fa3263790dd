//! A querier's view of the ingesters: where they are ([`Ingesters`]) and
//! the [`TableSource`] that joins the bucket's files with their unflushed
//! rows ([`ClusterSource`]; the protocol is in the crate documentation).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arrow_flight::error::FlightError;
use arrow_flight::{FlightClient, Ticket};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::tree_node::{Transformed, TreeNode as _};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::logical_expr::Expr;
use datafusion::object_store::ObjectStore;
use smolder_common::secret::Secret;
use smolder_common::sync::lock;
use smolder_common::{Scan, Table, TableSnapshot, TableSource, Tenant};
use smolder_storage::Store;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

use crate::flight::{BufferRequest, WRITER_HEADER};

/// How long a resolved list of addresses is used before the names are
/// looked up again.
const RESOLVE_EVERY: Duration = Duration::from_secs(5);
/// Times a query reads the manifest again when an ingester finds it stale.
const STALE_RETRIES: usize = 5;

/// `host:port` split, with `[v6]:port` too.
pub(crate) fn split_host_port(entry: &str) -> Option<(&str, u16)> {
    let (host, port) = entry.rsplit_once(':')?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    (!host.is_empty()).then_some(())?;
    Some((host, port.parse().ok()?))
}

/// One ingester address, with the name it was found under (for TLS).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Target {
    name: String,
    addr: SocketAddr,
}

/// The ingesters, found from a static list of addresses and names that
/// may resolve to many.
pub struct Ingesters {
    entries: Vec<String>,
    secret: Option<Secret>,
    tls: Option<ClientTlsConfig>,
    timeout: Duration,
    resolved: tokio::sync::Mutex<Option<(Instant, Vec<Target>)>>,
    channels: Mutex<HashMap<Target, Channel>>,
}

impl std::fmt::Debug for Ingesters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ingesters")
            .field("entries", &self.entries)
            .finish_non_exhaustive()
    }
}

/// What asking one ingester gave.
enum Answer {
    Rows {
        writer: String,
        batches: Vec<RecordBatch>,
    },
    Stale,
    Missing(String),
}

impl Ingesters {
    /// The ingesters at `entries` (`host:port`), called with `secret`, over
    /// TLS checked against the PEM file `ca` if given, each given `timeout`.
    pub fn new(
        entries: Vec<String>,
        secret: Option<Secret>,
        ca: Option<&Path>,
        timeout: Duration,
    ) -> std::io::Result<Self> {
        let tls = match ca {
            Some(path) => {
                let pem = std::fs::read(path)?;
                Some(ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pem)))
            }
            None => None,
        };
        Ok(Self {
            entries,
            secret,
            tls,
            timeout,
            resolved: tokio::sync::Mutex::new(None),
            channels: Mutex::new(HashMap::new()),
        })
    }

    /// Whether any ingester is configured.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every ingester's address: names looked up at most every
    /// [`RESOLVE_EVERY`]; a name that does not resolve is a warning.
    async fn targets(&self) -> (Vec<Target>, Vec<String>) {
        let mut resolved = self.resolved.lock().await;
        if let Some((at, targets)) = resolved.as_ref()
            && at.elapsed() < RESOLVE_EVERY
        {
            return (targets.clone(), Vec::new());
        }
        let mut targets = Vec::new();
        let mut problems = Vec::new();
        for entry in &self.entries {
            let Some((host, port)) = split_host_port(entry) else {
                continue;
            };
            match tokio::net::lookup_host((host, port)).await {
                Ok(addrs) => {
                    let before = targets.len();
                    for addr in addrs {
                        let target = Target {
                            name: host.to_string(),
                            addr,
                        };
                        if !targets.contains(&target) {
                            targets.push(target);
                        }
                    }
                    if targets.len() == before {
                        problems.push(format!("ingesters: {entry} resolves to no address"));
                    }
                }
                Err(e) => problems.push(format!("ingesters: {entry} does not resolve ({e})")),
            }
        }
        if problems.is_empty() {
            *resolved = Some((Instant::now(), targets.clone()));
        }
        (targets, problems)
    }

    fn channel(&self, target: &Target) -> std::result::Result<Channel, String> {
        if let Some(channel) = lock(&self.channels).get(target) {
            return Ok(channel.clone());
        }
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let mut endpoint = Endpoint::from_shared(format!("{scheme}://{}", target.addr))
            .map_err(|e| e.to_string())?
            .connect_timeout(Duration::from_secs(2))
            .timeout(self.timeout);
        if let Some(tls) = &self.tls {
            endpoint = endpoint
                .tls_config(tls.clone().domain_name(target.name.clone()))
                .map_err(|e| e.to_string())?;
        }
        let channel = endpoint.connect_lazy();
        lock(&self.channels).insert(target.clone(), channel.clone());
        Ok(channel)
    }

    /// Asks one ingester for the rows of `ticket`.
    async fn ask(&self, target: &Target, ticket: bytes::Bytes) -> Answer {
        let channel = match self.channel(target) {
            Ok(channel) => channel,
            Err(e) => return Answer::Missing(e),
        };
        let mut client = FlightClient::new(channel);
        if let Some(secret) = &self.secret
            && let Err(e) =
                client.add_header("authorization", &format!("Bearer {}", secret.expose()))
        {
            return Answer::Missing(e.to_string());
        }
        let asked = async {
            let stream = client.do_get(Ticket::new(ticket)).await?;
            let writer = stream
                .headers()
                .get(WRITER_HEADER)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            let batches: Vec<RecordBatch> = stream.try_collect().await?;
            Ok::<_, FlightError>((writer, batches))
        };
        match tokio::time::timeout(self.timeout, asked).await {
            Ok(Ok((writer, batches))) => Answer::Rows { writer, batches },
            Ok(Err(FlightError::Tonic(status)))
                if status.code() == tonic::Code::FailedPrecondition =>
            {
                Answer::Stale
            }
            Ok(Err(FlightError::Tonic(status))) => Answer::Missing(status.message().to_string()),
            Ok(Err(e)) => Answer::Missing(e.to_string()),
            Err(_) => Answer::Missing(format!("no answer within {:?}", self.timeout)),
        }
    }
}

use futures::TryStreamExt as _;

/// The tables as a querier sees them: the bucket's files (through this
/// process's reader [`Store`], whose own buffer counts too if it also
/// ingests) and every ingester's unflushed rows.
#[derive(Debug)]
pub struct ClusterSource {
    store: Arc<Store>,
    ingesters: Arc<Ingesters>,
    /// What the last snapshot missed.
    missing: Mutex<Vec<String>>,
}

impl ClusterSource {
    /// The source over `store` and `ingesters`.
    pub fn new(store: Arc<Store>, ingesters: Arc<Ingesters>) -> Self {
        Self {
            store,
            ingesters,
            missing: Mutex::new(Vec::new()),
        }
    }
}

/// A filter as SQL an ingester can parse, if it has a form that can be
/// sent: no volatile function (an ingester's `random()` would not be the
/// querier's), no subquery or placeholder.
fn filter_sql(filter: &Expr) -> Option<String> {
    if filter.is_volatile() {
        return None;
    }
    // The table's name qualifies columns; the ingester knows it too.
    let unqualified = filter
        .clone()
        .transform(|e| {
            Ok(match e {
                Expr::Column(c) if c.relation.is_some() => Transformed::yes(Expr::Column(
                    datafusion::common::Column::new_unqualified(c.name),
                )),
                other => Transformed::no(other),
            })
        })
        .ok()?
        .data;
    let sql = datafusion::sql::unparser::expr_to_sql(&unqualified).ok()?;
    Some(sql.to_string())
}

#[async_trait::async_trait]
impl TableSource for ClusterSource {
    async fn snapshot(&self, tenant: &Tenant, table: Table, scan: &Scan) -> Result<TableSnapshot> {
        let schema = table.schema();
        let columns = scan
            .projection
            .as_ref()
            .map(|p| p.iter().map(|&i| schema.field(i).name().clone()).collect());
        let filters: Vec<String> = scan.filters.iter().filter_map(filter_sql).collect();
        for _ in 0..STALE_RETRIES {
            let (mut snapshot, positions) = self.store.files_and_positions(tenant, table);
            let (targets, mut missing) = self.ingesters.targets().await;
            let request = BufferRequest {
                tenant: tenant.clone(),
                table: table.name().to_string(),
                positions,
                columns: columns.clone(),
                filters: filters.clone(),
            };
            let ticket = bytes::Bytes::from(
                serde_json::to_vec(&request).map_err(|e| DataFusionError::External(Box::new(e)))?,
            );
            let answers = futures::future::join_all(
                targets
                    .iter()
                    .map(|t| self.ingesters.ask(t, ticket.clone())),
            )
            .await;
            let mut stale = false;
            for (target, answer) in targets.iter().zip(answers) {
                match answer {
                    // This process's own buffer is in the snapshot already.
                    Answer::Rows { writer, .. } if writer == self.store.writer() => {}
                    Answer::Rows { batches, .. } => snapshot.remote.extend(batches),
                    Answer::Stale => stale = true,
                    Answer::Missing(why) => missing.push(format!(
                        "ingester {} ({}) did not answer: its rows not yet flushed are missing ({why})",
                        target.name, target.addr
                    )),
                }
            }
            if stale {
                self.store
                    .reread_manifest()
                    .await
                    .map_err(|e| DataFusionError::External(Box::new(e)))?;
                continue;
            }
            for warning in &missing {
                tracing::warn!("{warning}");
            }
            *lock(&self.missing) = missing;
            return Ok(snapshot);
        }
        Err(DataFusionError::Execution(format!(
            "the manifest changed {STALE_RETRIES} times while asking the ingesters; try again"
        )))
    }

    fn object_store(&self) -> Option<(ObjectStoreUrl, Arc<dyn ObjectStore>)> {
        self.store.object_store()
    }

    fn warnings(&self) -> Vec<String> {
        lock(&self.missing).clone()
    }
}

#[cfg(test)]
mod tests {
    use datafusion::prelude::{col, lit};

    use super::*;

    #[test]
    fn host_and_port_are_split_for_names_and_both_ip_versions() {
        assert_eq!(
            split_host_port("ingest-0.smolder:8815"),
            Some(("ingest-0.smolder", 8815))
        );
        assert_eq!(split_host_port("127.0.0.1:1"), Some(("127.0.0.1", 1)));
        assert_eq!(split_host_port("[::1]:8815"), Some(("::1", 8815)));
        assert_eq!(split_host_port("ingest"), None);
        assert_eq!(split_host_port(":8815"), None);
        assert_eq!(split_host_port("host:port"), None);
    }

    #[test]
    fn filters_travel_as_sql_without_the_table_name_and_volatile_ones_stay() {
        let filter = Expr::Column(datafusion::common::Column::new(
            Some("spans"),
            "service_name",
        ))
        .eq(lit("checkout"))
        .and(col("duration_ns").gt(lit(5_i64)));
        let sql = filter_sql(&filter).unwrap();
        assert!(!sql.contains("spans."), "{sql}");
        assert!(
            sql.contains("service_name") && sql.contains("'checkout'"),
            "{sql}"
        );
        let random = datafusion::functions::math::expr_fn::random().lt(lit(0.5));
        assert_eq!(filter_sql(&random), None);
    }
}

//! One SLO engine per tenant.
//!
//! A tenant's SLOs run in an engine of their own whose query engine is bound
//! to that tenant's data (`QueryEngine::for_tenant`): an SLO's indicator is
//! planned in the tenant's session, so no expression in it — however it is
//! written — can roll up another tenant's rows. Each engine keeps its rollups
//! and API-managed definitions in its own database (the default tenant's in
//! `slo.db` as before tenants existed, another's in `tenants/<name>/slo.db`)
//! and is bounded by its own SLO limit, so one tenant filling its quota does
//! not stop another's SLOs.
//!
//! The default tenant's engine is the operator's: it also loads the SLO
//! directory. Other tenants' engines are made at their first `PUT` (not at a
//! read: a token that only looks must not leave files behind) and, at start,
//! for every tenant database found. Alerting sees every engine's SLOs in one
//! [`Snapshot`], each definition naming its tenant.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use futures::future::join_all;
use smolder_common::Tenant;
use smolder_common::clock::Clock;
use smolder_common::sync::{read, write};
use smolder_query::QueryEngine;

use crate::engine::{EngineOptions, Snapshot, TickReport};
use crate::persist::Db;
use crate::{Error, Result, SloEngine};

/// Where the engines keep their databases.
#[derive(Debug, Clone)]
pub enum Databases {
    /// `slo.db` in the directory for the default tenant,
    /// `tenants/<name>/slo.db` for the others.
    Dir(PathBuf),
    /// In memory (tests and benchmarks).
    Memory,
}

impl Databases {
    fn open(&self, tenant: &Tenant) -> Result<Db> {
        match self {
            Self::Memory => Db::in_memory(),
            Self::Dir(dir) if tenant.is_default() => Db::open(&dir.join("slo.db")),
            Self::Dir(dir) => {
                let dir = dir.join("tenants").join(tenant.as_str());
                std::fs::create_dir_all(&dir)
                    .map_err(|e| Error::Storage(format!("creating {}: {e}", dir.display())))?;
                Db::open(&dir.join("slo.db"))
            }
        }
    }

    /// Tenants other than the default one with a database.
    fn tenants(&self) -> Result<Vec<Tenant>> {
        let Self::Dir(dir) = self else {
            return Ok(Vec::new());
        };
        let dir = dir.join("tenants");
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::Storage(format!("reading {}: {e}", dir.display()))),
        };
        let mut out = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            match Tenant::parse(name) {
                Ok(t) if !t.is_default() && entry.path().join("slo.db").is_file() => out.push(t),
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(path = %entry.path().display(), error = %e, "Ignoring a directory that is not a tenant's.");
                }
            }
        }
        out.sort();
        Ok(out)
    }
}

/// Every tenant's SLO engine.
pub struct SloEngines {
    query: QueryEngine,
    clock: Arc<dyn Clock>,
    options: EngineOptions,
    tenant_max_slos: usize,
    databases: Databases,
    engines: RwLock<BTreeMap<Tenant, Arc<SloEngine>>>,
    /// Held while an engine is made, so two first `PUT`s of a tenant make one.
    creating: tokio::sync::Mutex<()>,
    /// Ticks run since start, and the last one's report and end (Unix ns).
    ticks: std::sync::Mutex<(u64, Option<(i64, TickReport)>)>,
}

impl std::fmt::Debug for SloEngines {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SloEngines")
            .field("tenants", &read(&self.engines).keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl SloEngines {
    /// The default tenant's engine (with `options`, the SLO directory
    /// included) and one for each other tenant with a database, those
    /// bounded to `tenant_max_slos` SLOs and without a directory.
    pub async fn open(
        query: QueryEngine,
        databases: Databases,
        clock: Arc<dyn Clock>,
        options: EngineOptions,
        tenant_max_slos: usize,
    ) -> Result<Arc<Self>> {
        let query = query.for_tenant(&Tenant::default()).map_err(query_error)?;
        let default = SloEngine::new(
            query.clone(),
            databases.open(&Tenant::default())?,
            Arc::clone(&clock),
            options.clone(),
        )
        .await?;
        let engines = Arc::new(Self {
            query,
            clock,
            options,
            tenant_max_slos,
            databases,
            engines: RwLock::new(BTreeMap::from([(Tenant::default(), default)])),
            creating: tokio::sync::Mutex::new(()),
            ticks: std::sync::Mutex::new((0, None)),
        });
        for tenant in engines.databases.tenants()? {
            let engine = engines.make(&tenant).await?;
            write(&engines.engines).insert(tenant, engine);
        }
        Ok(engines)
    }

    async fn make(&self, tenant: &Tenant) -> Result<Arc<SloEngine>> {
        let mut options = self.options.clone();
        options.dir = None;
        options.defaults.bounds.max_slos = self.tenant_max_slos;
        SloEngine::new(
            self.query.for_tenant(tenant).map_err(query_error)?,
            self.databases.open(tenant)?,
            Arc::clone(&self.clock),
            options,
        )
        .await
    }

    /// The burn-rate windows every tenant's SLOs are evaluated over beside
    /// their alert windows (the burn-driven scaling targets').
    pub fn watched(&self) -> &crate::WatchedWindows {
        &self.options.watched
    }

    /// The default tenant's engine.
    pub fn default_engine(&self) -> Arc<SloEngine> {
        Arc::clone(&read(&self.engines)[&Tenant::default()])
    }

    /// `tenant`'s engine, if it has one (it has SLOs or had some).
    pub fn get(&self, tenant: &Tenant) -> Option<Arc<SloEngine>> {
        read(&self.engines).get(tenant).cloned()
    }

    /// `tenant`'s engine, made (with its database) if it has none yet.
    pub async fn get_or_create(&self, tenant: &Tenant) -> Result<Arc<SloEngine>> {
        if let Some(engine) = self.get(tenant) {
            return Ok(engine);
        }
        let _creating = self.creating.lock().await;
        if let Some(engine) = self.get(tenant) {
            return Ok(engine);
        }
        let engine = self.make(tenant).await?;
        tracing::info!(%tenant, "Started the SLO engine of a tenant.");
        write(&self.engines).insert(tenant.clone(), Arc::clone(&engine));
        Ok(engine)
    }

    /// Every engine, in tenant order.
    pub fn all(&self) -> Vec<Arc<SloEngine>> {
        read(&self.engines).values().cloned().collect()
    }

    /// One tick of every engine, side by side (each bounded by its own
    /// concurrency); the reports added up.
    pub async fn tick(&self) -> TickReport {
        self.tick_at(self.clock.now_ns()).await
    }

    /// One tick of every engine at `now` (see [`SloEngine::tick_at`]).
    pub async fn tick_at(&self, now: i64) -> TickReport {
        let engines = self.all();
        let reports = join_all(engines.iter().map(|e| e.tick_at(now))).await;
        let report = reports
            .into_iter()
            .fold(TickReport::default(), |a, r| TickReport {
                updated: a.updated + r.updated,
                failed: a.failed + r.failed,
                update: a.update.max(r.update),
                evaluate: a.evaluate.max(r.evaluate),
                batched: a.batched + r.batched,
                fallbacks: a.fallbacks + r.fallbacks,
            });
        let mut ticks = smolder_common::sync::lock(&self.ticks);
        ticks.0 += 1;
        ticks.1 = Some((self.clock.now_ns(), report));
        report
    }

    /// Ticks run since start, and the last one's report with when it ended
    /// (Unix ns): the status page's view of the engine.
    pub fn last_tick(&self) -> (u64, Option<(i64, TickReport)>) {
        *smolder_common::sync::lock(&self.ticks)
    }

    /// Row SLOs updated one by one instead of together since start, all
    /// tenants.
    pub fn batch_fallbacks(&self) -> u64 {
        self.all().iter().map(|e| e.batch_fallbacks()).sum()
    }

    /// Every tenant's SLOs after their last tick, default tenant's first;
    /// the problems are the SLO directory's.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        let engines = self.all();
        if let [only] = engines.as_slice() {
            return only.snapshot();
        }
        let default = self.default_engine().snapshot();
        let mut merged = Snapshot {
            at_ns: default.at_ns,
            slos: default.slos.clone(),
            problems: default.problems.clone(),
        };
        for engine in engines {
            if engine.tenant().is_default() {
                continue;
            }
            let snap = engine.snapshot();
            merged.at_ns = merged.at_ns.max(snap.at_ns);
            merged.slos.extend(snap.slos.iter().cloned());
        }
        Arc::new(merged)
    }
}

fn query_error(e: smolder_query::Error) -> Error {
    Error::Query(e.to_string())
}

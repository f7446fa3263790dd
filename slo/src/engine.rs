//! The engine: keeps every SLO's rollups up to date and evaluates them.
//!
//! Each tick, for every SLO, DataFusion recomputes the buckets from the last
//! tick's time minus the allowed lateness up to now, so data arriving late
//! (within the lateness) lands in the buckets it belongs to, and the work of
//! a tick grows with the new data, not with the window length. A new SLO —
//! or one whose indicator changed — starts at the beginning of its horizon
//! and catches up chunk by chunk (its backfill, with visible progress).
//! Buckets are stored in SQLite after each tick; evaluation then reads only
//! the in-memory rollups.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime};

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{DataType, Float64Type, Int64Type};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::prelude::SQLOptions;
use futures::FutureExt as _;
use futures::StreamExt as _;
use serde::Serialize;
use smolder_common::Table;
use smolder_common::clock::Clock;
use smolder_query::QueryEngine;

use crate::eval::{Evaluation, evaluate};
use crate::model::{Origin, SloDefinition, duration_ns};
use crate::persist::{Db, StoredState, Update};
use crate::rollup::Rollup;
use crate::rows::{self, Counter, RowConditions};
use crate::spec::{self, Defaults, Problem};
use crate::sql::{Baseline, Range, baseline_query, check_definition, rollup_query, ts};
use crate::{Error, Result};
use smolder_common::memory::{Consumer, Reservation};

/// How the engine runs.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Width of a rollup bucket (the timeslice width overrides it for
    /// timeslice SLOs).
    pub step: Duration,
    /// How late data may arrive and still be counted in its bucket.
    pub lateness: Duration,
    /// Time between ticks.
    pub interval: Duration,
    /// How far back a counter looks for the previous point of a series.
    pub counter_lookback: Duration,
    /// History is rolled up this much per query while an SLO catches up.
    pub backfill_chunk: Duration,
    /// Time one tick may spend catching up on history, all SLOs together
    /// (the first chunk always runs, so every tick makes progress); the rest
    /// waits for the next tick, so the evaluation of every SLO stays current.
    pub backfill_budget: Duration,
    /// SLOs updated at once.
    pub concurrency: usize,
    /// Time one SLO's query (a chunk of its rollups) may run; beyond it the
    /// update stops, the SLO reports the timeout as its error and the other
    /// SLOs go on.
    pub query_timeout: Duration,
    /// Defaults for definitions.
    pub defaults: Defaults,
    /// The directory SLO files are loaded from (and reloaded when they
    /// change).
    pub dir: Option<PathBuf>,
}

impl Default for EngineOptions {
    fn default() -> Self {
        let config = crate::SloConfig::default();
        config.engine_options(Duration::from_secs(30))
    }
}

/// Why [`SloEngine::put`] refused a definition.
#[derive(Debug, Clone, PartialEq)]
pub enum PutError {
    /// The definition has problems, each with its field.
    Invalid(Vec<Problem>),
    /// The SLO is defined in the SLO directory; it is changed there.
    Conflict(String),
    /// Storing the definition failed.
    Storage(String),
}

/// A group's values, in the order of the SLO's `group_by`.
pub type GroupKey = Vec<String>;

#[derive(Debug, Clone)]
struct InstanceState {
    groups: BTreeMap<GroupKey, Rollup>,
    /// Events before this time have been rolled up.
    watermark: i64,
    horizon_start: i64,
    /// Rows of groups beyond the limit, ignored.
    dropped_groups: u64,
    last_error: Option<String>,
    last_update: Option<Duration>,
    /// Counters and histograms: the last point of each cumulative series
    /// before the range the next update reads, by series hash.
    baselines: HashMap<i64, Baseline>,
    /// The share of the process's memory budget the groups' rollups hold
    /// (shared with the copy a reload keeps).
    memory: Arc<std::sync::Mutex<Reservation>>,
    /// Updates that failed in a row; each doubles the wait before the next.
    failures: u32,
    /// No update before this time (ns) after a failure.
    retry_at: i64,
}

/// Memory a group holds besides its rollup: its key, the map's entry.
const GROUP_OVERHEAD_BYTES: usize = 128;

/// The longest wait between retries of an SLO whose updates keep failing.
const MAX_RETRY_WAIT: Duration = Duration::from_secs(300);

impl InstanceState {
    /// Bytes the groups' rollups hold.
    fn bytes(&self) -> usize {
        self.groups
            .iter()
            .map(|(key, r)| {
                r.bytes() + GROUP_OVERHEAD_BYTES + key.iter().map(String::len).sum::<usize>()
            })
            .sum()
    }

    /// Takes what the groups now hold from the memory budget. Beyond the
    /// budget the rollups are dropped (they are recomputed from the stored
    /// telemetry once memory allows) and the SLO reports why.
    fn account(&mut self) -> Result<()> {
        let bytes = self.bytes();
        let mut memory = self.memory.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(e) = memory.resize(bytes) {
            let groups = self.groups.len();
            self.groups.clear();
            self.baselines.clear();
            self.watermark = self.horizon_start;
            let _ = memory.resize(0);
            return Err(Error::Resources(format!(
                "the rollups of {groups} groups need {bytes} bytes and {e}; they are \
                 recomputed when memory allows"
            )));
        }
        Ok(())
    }

    /// Records a failed update and when to try again: after one tick, then
    /// twice as long after each further failure, at most [`MAX_RETRY_WAIT`].
    fn failed(&mut self, message: String, now: i64, interval: Duration) {
        self.failures = self.failures.saturating_add(1);
        let wait = interval
            .saturating_mul(1 << self.failures.min(16))
            .min(MAX_RETRY_WAIT);
        self.retry_at = now.saturating_add(duration_ns(wait));
        self.last_error = Some(message);
    }

    fn succeeded(&mut self) {
        self.failures = 0;
        self.retry_at = i64::MIN;
        self.last_error = None;
    }
}

#[derive(Debug)]
struct Runtime {
    def: Arc<SloDefinition>,
    /// The compiled conditions of a row SLI without groups: its rollups
    /// come from one read of the table shared with the other such SLOs.
    rows: Option<RowConditions>,
    bucket_ns: i64,
    fingerprint: String,
    capacity: usize,
    state: tokio::sync::Mutex<InstanceState>,
}

/// Progress of an SLO's rollups towards now.
#[derive(Debug, Clone, Serialize)]
pub struct Backfill {
    /// Whether the rollups have reached now.
    pub done: bool,
    /// Fraction of the horizon rolled up, 0 to 1.
    pub progress: f64,
    /// Events before this time are rolled up (RFC 3339).
    pub through: String,
}

/// One SLO instance (the whole SLO, or one group) and its evaluation.
#[derive(Debug, Clone, Serialize)]
pub struct InstanceStatus {
    /// The group's values by `group_by` expression; empty without groups.
    pub group: BTreeMap<String, String>,
    /// The evaluation.
    #[serde(flatten)]
    pub evaluation: Evaluation,
}

/// An SLO and its state after the last tick.
#[derive(Debug, Clone, Serialize)]
pub struct SloStatus {
    /// The definition.
    pub definition: Arc<SloDefinition>,
    /// One per group (one without groups).
    pub instances: Vec<InstanceStatus>,
    /// Rollup progress.
    pub backfill: Backfill,
    /// Rows of groups beyond `max_groups`, ignored since start.
    pub dropped_group_rows: u64,
    /// Why the last rollup update failed, if it did.
    pub error: Option<String>,
    /// How long the last rollup update took, in milliseconds.
    pub last_update_ms: Option<f64>,
}

/// Everything the engine knows after a tick.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Snapshot {
    /// When it was evaluated (Unix ns).
    pub at_ns: i64,
    /// Every SLO, by id.
    pub slos: Vec<SloStatus>,
    /// Problems of the SLO directory's files.
    pub problems: Vec<Problem>,
}

/// What one tick did.
#[derive(Debug, Clone, Copy, Default)]
pub struct TickReport {
    /// SLOs whose rollups were updated.
    pub updated: usize,
    /// SLOs not updated: their update failed, or they wait to backfill (for
    /// a first row to start from, or for the next tick's backfill budget).
    pub failed: usize,
    /// Time spent updating rollups (queries and storage).
    pub update: Duration,
    /// Time spent evaluating.
    pub evaluate: Duration,
}

/// The SLO engine.
pub struct SloEngine {
    query: QueryEngine,
    clock: Arc<dyn Clock>,
    options: EngineOptions,
    db: Arc<Db>,
    file_defs: RwLock<Vec<SloDefinition>>,
    api_defs: RwLock<Vec<SloDefinition>>,
    runtimes: RwLock<BTreeMap<String, Arc<Runtime>>>,
    snapshot: RwLock<Arc<Snapshot>>,
    problems: RwLock<Vec<Problem>>,
    dir_stamp: std::sync::Mutex<Vec<(PathBuf, SystemTime, u64)>>,
    ticks: std::sync::atomic::AtomicU64,
    /// Updates not yet stored because the database failed.
    unsaved: std::sync::Mutex<Vec<Update>>,
}

impl std::fmt::Debug for SloEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SloEngine")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// The time of each table's oldest row, read at most once per tick and only
/// when an SLO backfills.
#[derive(Default)]
struct OldestRows([tokio::sync::OnceCell<Option<Option<i64>>>; 3]);

impl OldestRows {
    /// The oldest row's time in ns; `Some(None)` for an empty table, `None`
    /// when the query failed.
    async fn get(&self, engine: &SloEngine, table: Table) -> Option<Option<i64>> {
        let i = Table::ALL.iter().position(|t| *t == table)?;
        *self.0[i]
            .get_or_init(|| async move {
                let time = table.time_column();
                let sql = format!("SELECT CAST(min({time}) AS BIGINT) FROM {}", table.name());
                let batches = engine.run(&sql).await.ok()?;
                let column = batches
                    .iter()
                    .find(|b| b.num_rows() > 0)?
                    .column(0)
                    .as_primitive_opt::<Int64Type>()?
                    .clone();
                Some((!column.is_null(0)).then(|| column.value(0)))
            })
            .await
    }
}

/// The backfill time of one tick, shared by every SLO catching up
/// ([`EngineOptions::backfill_budget`]).
struct BackfillBudget {
    deadline: Instant,
    used: std::sync::atomic::AtomicBool,
}

impl BackfillBudget {
    fn new(budget: Duration) -> Self {
        Self {
            deadline: Instant::now() + budget,
            used: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Whether history may be read (further): before the deadline, or when
    /// none has been read this tick.
    fn allows(&self) -> bool {
        !self.used.load(std::sync::atomic::Ordering::Relaxed) || Instant::now() < self.deadline
    }

    /// A chunk of history was read; answers whether another may be.
    fn spend(&self) -> bool {
        self.used.store(true, std::sync::atomic::Ordering::Relaxed);
        self.allows()
    }
}

/// Updates kept for a database that fails, at most (about an hour of ticks
/// for 100 SLOs at the default interval).
const MAX_UNSAVED: usize = 50_000;

/// Rows of a batch a row SLI's conditions are evaluated on at a time.
const EVAL_SLICE_ROWS: usize = 1024;

fn now_index(ns: i64, bucket_ns: i64) -> i64 {
    ns.div_euclid(bucket_ns)
}

impl SloEngine {
    /// An engine reading telemetry through `query` (a session with the
    /// `spans`, `logs` and `metrics` tables and smolder's functions), storing
    /// rollups in `db`. Loads the SLO directory and the API-managed SLOs.
    pub async fn new(
        query: QueryEngine,
        db: Db,
        clock: Arc<dyn Clock>,
        options: EngineOptions,
    ) -> Result<Arc<Self>> {
        let engine = Arc::new(Self {
            query,
            clock,
            options,
            db: Arc::new(db),
            file_defs: RwLock::new(Vec::new()),
            api_defs: RwLock::new(Vec::new()),
            runtimes: RwLock::new(BTreeMap::new()),
            snapshot: RwLock::new(Arc::new(Snapshot::default())),
            problems: RwLock::new(Vec::new()),
            dir_stamp: std::sync::Mutex::new(Vec::new()),
            ticks: std::sync::atomic::AtomicU64::new(0),
            unsaved: std::sync::Mutex::new(Vec::new()),
        });
        let api_docs = engine.db.api_slos()?;
        let mut api = Vec::new();
        for (id, yaml) in api_docs {
            let loaded = spec::load_texts(
                &[(format!("api:{id}"), yaml)],
                engine.options.defaults,
                &Origin::Api,
            );
            for p in &loaded.problems {
                tracing::warn!(slo = %id, problem = %p, "A stored SLO no longer loads.");
            }
            // A stored body may hold other SLOs beside its own.
            api.extend(loaded.slos.into_iter().filter(|d| d.id == id));
        }
        *engine.api_defs.write().expect("lock") = api;
        engine.reload_dir(true).await?;
        engine.rebuild()?;
        Ok(engine)
    }

    /// The options.
    pub fn options(&self) -> &EngineOptions {
        &self.options
    }

    /// The result of the last tick.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        Arc::clone(&self.snapshot.read().expect("lock"))
    }

    /// Re-reads the SLO directory if a file changed (or `force`). Returns
    /// whether definitions were reloaded.
    pub async fn reload_dir(&self, force: bool) -> Result<bool> {
        let Some(dir) = &self.options.dir else {
            return Ok(false);
        };
        let mut stamp = Vec::new();
        let entries = std::fs::read_dir(dir).map_err(|e| {
            Error::Config(format!("reading the SLO directory {}: {e}", dir.display()))
        })?;
        for entry in entries.flatten() {
            let path = entry.path();
            if let Ok(meta) = entry.metadata()
                && meta.is_file()
            {
                stamp.push((
                    path,
                    meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                    meta.len(),
                ));
            }
        }
        stamp.sort();
        {
            let mut old = self.dir_stamp.lock().unwrap_or_else(|e| e.into_inner());
            if !force && *old == stamp {
                return Ok(false);
            }
            *old = stamp;
        }
        let loaded = spec::load_dir(dir, self.options.defaults).map_err(|e| {
            Error::Config(format!("reading the SLO directory {}: {e}", dir.display()))
        })?;
        let mut problems = loaded.problems;
        let mut slos = Vec::new();
        for slo in loaded.slos {
            match self.check(&slo).await {
                Ok(()) => slos.push(slo),
                Err(mut p) => problems.append(&mut p),
            }
        }
        for p in &problems {
            tracing::warn!(problem = %p, "An SLO file has a problem; the SLO is not loaded.");
        }
        // A file that no longer loads keeps its SLOs' last good definitions,
        // so a typo does not drop an SLO (and its alerts) until it is fixed.
        let broken: std::collections::BTreeSet<&str> = problems
            .iter()
            .map(|p| p.file.as_str())
            .filter(|f| !f.is_empty())
            .collect();
        let previous = self.file_defs.read().expect("lock").clone();
        for old in previous {
            if let Origin::File(file) = &old.origin
                && broken.contains(file.as_str())
                && !slos.iter().any(|s| s.id == old.id)
            {
                tracing::warn!(slo = %old.id, file = %file, "Keeping the SLO's last good definition until its file loads again.");
                slos.push(old);
            }
        }
        tracing::info!(dir = %dir.display(), slos = slos.len(), problems = problems.len(), "Loaded SLO definitions.");
        *self.file_defs.write().expect("lock") = slos;
        *self.problems.write().expect("lock") = problems;
        Ok(true)
    }

    /// Checks a definition's SQL against the tables (see
    /// [`crate::sql::check_definition`]).
    pub async fn check(&self, def: &SloDefinition) -> Result<(), Vec<Problem>> {
        let ctx = self.query.context().clone();
        let (def, step) = (def.clone(), self.options.step);
        let origin = def.id.clone();
        // Planning runs on the query runtime like every query: the
        // expressions are the user's.
        self.query
            .run("slo check", self.options.query_timeout, async move {
                Ok(check_definition(&ctx, &def, step).await)
            })
            .await
            .unwrap_or_else(|e| {
                Err(vec![Problem {
                    file: "api".into(),
                    document: 0,
                    field: format!("SLO {origin}"),
                    message: format!("checking the SLO failed: {e}"),
                }])
            })
    }

    /// Rebuilds the runtimes from the current definitions, keeping rollups
    /// whose fingerprint is unchanged.
    fn rebuild(&self) -> Result<()> {
        let mut defs: BTreeMap<String, SloDefinition> = BTreeMap::new();
        for d in self.api_defs.read().expect("lock").iter() {
            defs.insert(d.id.clone(), d.clone());
        }
        // Files win over the API.
        for d in self.file_defs.read().expect("lock").iter() {
            defs.insert(d.id.clone(), d.clone());
        }
        let now = self.clock.now_ns();
        let old = self.runtimes.read().expect("lock").clone();
        let mut next = BTreeMap::new();
        for (id, def) in defs {
            let fingerprint = def.rollup_fingerprint(self.options.step);
            if let Some(rt) = old.get(&id) {
                if *rt.def == def {
                    next.insert(id, Arc::clone(rt));
                    continue;
                }
                if rt.fingerprint == fingerprint {
                    // Same rollups, other objective or alerting: keep the buckets.
                    let state = rt.state.try_lock().ok().map(|s| s.clone());
                    if let Some(state) = state {
                        let capacity = self.capacity(&def, now);
                        let mut state = state;
                        if capacity > rt.capacity {
                            // A longer horizon: read the history again.
                            state = self.fresh_state(&def, now);
                        }
                        next.insert(
                            id,
                            Arc::new(Runtime {
                                rows: rt.rows.clone(),
                                bucket_ns: rt.bucket_ns,
                                fingerprint,
                                capacity: capacity.max(rt.capacity),
                                def: Arc::new(def),
                                state: tokio::sync::Mutex::new(state),
                            }),
                        );
                        continue;
                    }
                }
            }
            let rt = self.load_runtime(def, fingerprint, now)?;
            next.insert(id, Arc::new(rt));
        }
        for id in old.keys() {
            if !next.contains_key(id) {
                // Its stored buckets stay: restoring the definition restores
                // them (an SLO deleted through the API forgets them).
                tracing::info!(slo = %id, "SLO removed.");
            }
        }
        *self.runtimes.write().expect("lock") = next;
        Ok(())
    }

    /// Buckets an SLO's ring holds: its horizon, the lateness and a chunk.
    fn capacity(&self, def: &SloDefinition, now: i64) -> usize {
        let b = def.bucket_ns(self.options.step);
        // Saturating: definitions are bounded (spec::Bounds), but a stored
        // one must never wrap into a negative span.
        let span = duration_ns(def.horizon(now).saturating_add(self.options.lateness))
            .saturating_add(b.saturating_mul(2));
        usize::try_from(span / b + 1).unwrap_or(usize::MAX)
    }

    fn fresh_state(&self, def: &SloDefinition, now: i64) -> InstanceState {
        let b = def.bucket_ns(self.options.step);
        let start = now
            .saturating_sub(duration_ns(def.horizon(now)))
            .div_euclid(b)
            .saturating_mul(b);
        InstanceState {
            groups: BTreeMap::new(),
            watermark: start,
            horizon_start: start,
            dropped_groups: 0,
            last_error: None,
            last_update: None,
            baselines: HashMap::new(),
            memory: Arc::new(std::sync::Mutex::new(Reservation::empty(
                self.query.budget(),
                Consumer::Slo,
            ))),
            failures: 0,
            retry_at: i64::MIN,
        }
    }

    /// A runtime for `def`, with its stored rollups when they are still valid.
    fn load_runtime(&self, def: SloDefinition, fingerprint: String, now: i64) -> Result<Runtime> {
        let bucket_ns = def.bucket_ns(self.options.step);
        let capacity = self.capacity(&def, now);
        let mut state = self.fresh_state(&def, now);
        match self.db.state(&def.id)? {
            Some(stored) if stored.fingerprint == fingerprint => {
                let head = now_index(now, bucket_ns);
                let oldest = head - capacity as i64 + 1;
                let mut buckets: HashMap<GroupKey, Vec<(i64, [f64; 2])>> = HashMap::new();
                for (grp, bucket, good, total) in self.db.rollups(&def.id, oldest)? {
                    let key: GroupKey = serde_json::from_str(&grp).unwrap_or_default();
                    buckets
                        .entry(key)
                        .or_default()
                        .push((bucket, [good, total]));
                }
                let loaded = buckets.len();
                for (key, values) in buckets {
                    // One pass over the ring (the rows come by bucket), each
                    // block summed once.
                    let mut r = Rollup::new(def.budgeting, capacity, head);
                    r.replace(oldest, head, &values);
                    state.groups.insert(key, r);
                }
                state.watermark = stored.watermark.max(state.horizon_start);
                state.horizon_start = stored.horizon_start.max(state.horizon_start);
                match state.account() {
                    Ok(()) => {
                        tracing::info!(slo = %def.id, groups = loaded, "Loaded stored rollups.");
                    }
                    Err(e) => {
                        tracing::warn!(slo = %def.id, error = %e, "The SLO's stored rollups do not fit the memory budget.");
                        state.failed(e.to_string(), now, self.options.interval);
                    }
                }
            }
            Some(_) => {
                tracing::info!(slo = %def.id, "The SLO's indicator changed; recomputing its rollups from history.");
                self.db.forget(&def.id)?;
            }
            None => {}
        }
        let rows = RowConditions::compile(self.query.context(), &def).unwrap_or_else(|e| {
            // Its own query will report the problem.
            tracing::warn!(slo = %def.id, error = %e, "The SLI's conditions do not compile; the SLO is rolled up on its own.");
            None
        });
        Ok(Runtime {
            def: Arc::new(def),
            rows,
            bucket_ns,
            fingerprint,
            capacity,
            state: tokio::sync::Mutex::new(state),
        })
    }

    /// Creates or replaces an API-managed SLO from its YAML (OpenSLO or
    /// Sloth), which must define the SLO `id`; other SLOs in it are ignored.
    /// Returns the definition and whether it was created (not replaced).
    pub async fn put(&self, id: &str, yaml: &str) -> Result<(Arc<SloDefinition>, bool), PutError> {
        let fail = |message: String| {
            PutError::Invalid(vec![Problem {
                file: "api".into(),
                document: 0,
                field: String::new(),
                message,
            }])
        };
        if let Some(f) = self
            .file_defs
            .read()
            .expect("lock")
            .iter()
            .find(|d| d.id == id)
        {
            let file = match &f.origin {
                Origin::File(file) => file.clone(),
                Origin::Api => String::new(),
            };
            return Err(PutError::Conflict(format!(
                "SLO {id:?} is defined in the SLO directory ({file}); change it there"
            )));
        }
        let loaded = spec::load_texts(
            &[("api".to_string(), yaml.to_string())],
            self.options.defaults,
            &Origin::Api,
        );
        if !loaded.problems.is_empty() {
            return Err(PutError::Invalid(loaded.problems));
        }
        let Some(def) = loaded.slos.iter().find(|d| d.id == id) else {
            let found: Vec<&str> = loaded.slos.iter().map(|d| d.id.as_str()).collect();
            return Err(fail(format!(
                "the body does not define SLO {id:?} (it defines {found:?})"
            )));
        };
        let max_slos = self.options.defaults.bounds.max_slos;
        let exists = self.runtimes.read().expect("lock").contains_key(id);
        if !exists && self.runtimes.read().expect("lock").len() >= max_slos {
            return Err(fail(format!(
                "smolder runs at most {max_slos} SLOs (slo.max_slos); delete one first"
            )));
        }
        self.check(def).await.map_err(PutError::Invalid)?;
        self.db
            .put_api(id, yaml, self.clock.now_ns())
            .map_err(|e| PutError::Storage(e.to_string()))?;
        let created = {
            let mut api = self.api_defs.write().expect("lock");
            let before = api.len();
            api.retain(|d| d.id != id);
            let created = api.len() == before;
            api.push(def.clone());
            created
        };
        self.rebuild()
            .map_err(|e| PutError::Storage(e.to_string()))?;
        let def = Arc::clone(&self.runtimes.read().expect("lock")[id].def);
        Ok((def, created))
    }

    /// Deletes an API-managed SLO. `Ok(false)` when there is none.
    pub fn delete(&self, id: &str) -> Result<bool> {
        if self
            .file_defs
            .read()
            .expect("lock")
            .iter()
            .any(|d| d.id == id)
        {
            return Err(Error::Conflict(format!(
                "SLO {id:?} is defined in the SLO directory; remove it there"
            )));
        }
        let existed = self.db.delete_api(id)?;
        self.api_defs.write().expect("lock").retain(|d| d.id != id);
        self.rebuild()?;
        if existed {
            self.db.forget(id)?;
        }
        Ok(existed)
    }

    /// One tick: reload changed files, update every SLO's rollups, persist
    /// them, evaluate.
    pub async fn tick(&self) -> TickReport {
        match self.reload_dir(false).await {
            Ok(true) => {
                if let Err(e) = self.rebuild() {
                    tracing::error!(error = %e, "Applying reloaded SLO definitions failed.");
                }
            }
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "Reloading the SLO directory failed."),
        }
        let now = self.clock.now_ns();
        let started = Instant::now();
        let runtimes = self.all_runtimes();
        let oldest = OldestRows::default();
        let oldest = &oldest;
        let budget = BackfillBudget::new(self.options.backfill_budget);
        let budget = &budget;
        let (mut batched, rest) = self.update_batched(&runtimes, now, oldest, budget).await;
        let results: Vec<Option<Update>> = futures::stream::iter(rest)
            .map(|rt| async move { self.update(&rt, now, oldest, budget).await })
            .buffer_unordered(self.options.concurrency.max(1))
            .collect()
            .await;
        let mut report = TickReport::default();
        batched.extend(results.into_iter().flatten());
        let updates = batched;
        report.updated = updates.len();
        report.failed = runtimes.len() - updates.len();
        let db = Arc::clone(&self.db);
        // Stored buckets are kept for two horizons (charts of a period's
        // budget read one period before their first point); older ones are
        // dropped about once an hour.
        let tick = self
            .ticks
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let every = (3600 / self.options.interval.as_secs().max(1)).max(1);
        let prune: Vec<(String, i64)> = if tick.is_multiple_of(every) {
            runtimes
                .iter()
                .map(|rt| {
                    let keep = 2 * rt.capacity as i64;
                    (rt.def.id.clone(), now.div_euclid(rt.bucket_ns) - keep)
                })
                .collect()
        } else {
            Vec::new()
        };
        // Updates a failed store left behind go first: each replaces its
        // range, so applying them in order leaves the database right.
        let mut pending =
            std::mem::take(&mut *self.unsaved.lock().unwrap_or_else(|e| e.into_inner()));
        pending.extend(updates);
        let persisted = tokio::task::spawn_blocking(move || {
            let result = db.apply(&pending).and_then(|()| {
                for (slo, before) in prune {
                    db.prune(&slo, before)?;
                }
                Ok(())
            });
            (pending, result)
        })
        .await;
        match persisted {
            Ok((_, Ok(()))) => {}
            Ok((mut pending, Err(e))) => {
                tracing::error!(error = %e, updates = pending.len(), "Storing SLO rollups failed; retrying at the next tick.");
                if pending.len() > MAX_UNSAVED {
                    // Beyond this the database is rebuilt from the raw data
                    // after a restart, as far as it is still kept.
                    pending.drain(..pending.len() - MAX_UNSAVED);
                }
                *self.unsaved.lock().unwrap_or_else(|e| e.into_inner()) = pending;
            }
            Err(e) => tracing::error!(error = %e, "Storing SLO rollups panicked."),
        }
        report.update = started.elapsed();
        let started = Instant::now();
        self.evaluate_all(&runtimes, now).await;
        report.evaluate = started.elapsed();
        report
    }

    /// Every SLO's runtime, in id order.
    fn all_runtimes(&self) -> Vec<Arc<Runtime>> {
        self.runtimes
            .read()
            .expect("lock")
            .values()
            .cloned()
            .collect()
    }

    /// Re-evaluates every SLO at the clock's time, without updating rollups.
    pub async fn evaluate_now(&self) {
        let runtimes = self.all_runtimes();
        self.evaluate_all(&runtimes, self.clock.now_ns()).await;
    }

    async fn evaluate_all(&self, runtimes: &[Arc<Runtime>], now: i64) {
        let mut slos = Vec::with_capacity(runtimes.len());
        for rt in runtimes {
            let state = rt.state.lock().await;
            slos.push(status(
                rt,
                &state,
                now,
                duration_ns(self.options.interval) * 2,
            ));
        }
        let snapshot = Snapshot {
            at_ns: now,
            slos,
            problems: self.problems.read().expect("lock").clone(),
        };
        *self.snapshot.write().expect("lock") = Arc::new(snapshot);
    }

    /// The width of a backfill query's range for bucket width `b`.
    fn chunk_ns(&self, b: i64) -> i64 {
        duration_ns(self.options.backfill_chunk)
            .max(b)
            .div_euclid(b)
            * b
    }

    /// The first bucket an update of an SLO in state `st` recomputes: late
    /// data may still change the buckets since its watermark less lateness.
    fn first_bucket(&self, st: &InstanceState, b: i64) -> i64 {
        (st.watermark - duration_ns(self.options.lateness))
            .max(st.horizon_start)
            .div_euclid(b)
            * b
    }

    /// Where reading starts for an update from `first`: None when the SLO
    /// backfills and must wait (for the tick's budget, or for a first row).
    /// History before the table's oldest row holds no events, so a backfill
    /// reads from there (a new SLO over a young table costs one chunk, not a
    /// horizon of empty ones); the update still replaces its whole range.
    /// Over an empty table there is nothing to read yet: the backfill waits
    /// for the first row (which may be history), so the watermark stays.
    async fn read_from(
        &self,
        table: Table,
        first: i64,
        b: i64,
        now: i64,
        oldest: &OldestRows,
        budget: &BackfillBudget,
    ) -> Option<i64> {
        if now - first <= self.chunk_ns(b) {
            return Some(first);
        }
        if !budget.allows() {
            return None;
        }
        match oldest.get(self, table).await {
            Some(Some(t)) => Some(first.max(t.div_euclid(b) * b)),
            Some(None) => None,
            None => Some(first),
        }
    }

    /// Brings one SLO's rollups up to `now`, or as close as the tick's
    /// backfill budget allows: history is read chunk by chunk.
    async fn update(
        &self,
        rt: &Runtime,
        now: i64,
        oldest: &OldestRows,
        budget: &BackfillBudget,
    ) -> Option<Update> {
        let mut st = rt.state.lock().await;
        if st.retry_at > now {
            // It failed recently: wait out its back-off.
            return None;
        }
        let b = rt.bucket_ns;
        let chunk = self.chunk_ns(b);
        let first = self.first_bucket(&st, b);
        let started = Instant::now();
        let mut rows = Vec::new();
        let mut from = self
            .read_from(rt.def.sli.table, first, b, now, oldest, budget)
            .await?;
        let mut done = None;
        while from < now {
            let to = now.min(from + chunk);
            match self
                .guarded(self.update_chunk(rt, &mut st, from, to, now, &mut rows))
                .await
            {
                Ok(()) => done = Some(to),
                Err(e) => {
                    let message = e.to_string();
                    if st.last_error.as_deref() != Some(message.as_str()) {
                        tracing::warn!(slo = %rt.def.id, error = %message, "Computing the SLO's rollups failed.");
                    }
                    st.failed(message, now, self.options.interval);
                    break;
                }
            }
            st.succeeded();
            if to < now && !budget.spend() {
                break;
            }
            from = to;
        }
        let to = done?;
        st.last_update = Some(started.elapsed());
        Some(stored_update(rt, &st, first, to, rows))
    }

    /// Recomputes the buckets of `[from, to)` (`from` on a bucket boundary).
    async fn update_chunk(
        &self,
        rt: &Runtime,
        st: &mut InstanceState,
        from: i64,
        to: i64,
        now: i64,
        rows: &mut Vec<(String, i64, f64, f64)>,
    ) -> Result<()> {
        let b = rt.bucket_ns;
        let lookback = duration_ns(self.options.counter_lookback);
        let baselines: Vec<Baseline> = st.baselines.values().copied().collect();
        let sql = rollup_query(
            &rt.def,
            Range {
                bucket_ns: b,
                from_ns: from,
                to_ns: to,
                lookback_ns: lookback,
            },
            &baselines,
        );
        let batches = self.run(&sql).await?;
        let groups = rt.def.group_by.len();
        let mut results: BTreeMap<GroupKey, Vec<(i64, [f64; 2])>> = BTreeMap::new();
        for batch in &batches {
            read_batch(batch, groups, &mut results);
        }
        // The last point of each cumulative series before what the next
        // update reads: its previous point even after a long silence.
        let read_from = from - lookback;
        let cutoff = (to - duration_ns(self.options.lateness)).div_euclid(b) * b - lookback;
        if cutoff > read_from
            && let Some(sql) = baseline_query(&rt.def, read_from, cutoff)
        {
            for batch in self.run(&sql).await? {
                read_baselines(&batch, &mut st.baselines);
            }
            // Series silent for a whole horizon are gone.
            let oldest = now - duration_ns(rt.def.horizon(now));
            st.baselines.retain(|_, b| b.time >= oldest);
        }
        apply_results(rt, st, (from, to), now, results, rows);
        st.account()
    }

    /// Updates the row SLOs without groups on the same table, bucket width
    /// and first bucket together: one read of the new rows (per chunk of
    /// history while they backfill) for all of them, their conditions
    /// evaluated on it. Returns their updates; the SLOs it could not update
    /// so (or whose read failed) are left to [`Self::update`].
    async fn update_batched(
        &self,
        runtimes: &[Arc<Runtime>],
        now: i64,
        oldest: &OldestRows,
        budget: &BackfillBudget,
    ) -> (Vec<Update>, Vec<Arc<Runtime>>) {
        let mut sets: BTreeMap<(&'static str, i64, i64), Vec<Arc<Runtime>>> = BTreeMap::new();
        let mut rest = Vec::new();
        for rt in runtimes {
            let st = rt.state.lock().await;
            // An SLO whose last update failed goes alone, so that a slow or
            // failing condition does not hold up the others.
            if rt.rows.is_some() && st.last_error.is_none() {
                let first = self.first_bucket(&st, rt.bucket_ns);
                sets.entry((rt.def.sli.table.name(), rt.bucket_ns, first))
                    .or_default()
                    .push(Arc::clone(rt));
            } else {
                rest.push(Arc::clone(rt));
            }
        }
        let mut updates = Vec::new();
        for ((_, b, first), members) in sets {
            let table = members[0].def.sli.table;
            let Some(from) = self.read_from(table, first, b, now, oldest, budget).await else {
                continue;
            };
            match self.update_batch(&members, first, from, now, budget).await {
                Ok(done) => updates.extend(done),
                Err(e) => {
                    // Each SLO on its own reports its own error.
                    tracing::warn!(error = %e, slos = members.len(), "Rolling up SLOs together failed; updating them one by one.");
                    rest.extend(members);
                }
            }
        }
        (updates, rest)
    }

    /// Rolls up `batch` (row SLOs sharing a table, bucket width and first
    /// bucket `first`) from `from` chunk by chunk up to `now`, or as far as
    /// the tick's backfill budget allows. An error before any chunk is read
    /// is returned; after that, what was read is kept.
    async fn update_batch(
        &self,
        batch: &[Arc<Runtime>],
        first: i64,
        mut from: i64,
        now: i64,
        budget: &BackfillBudget,
    ) -> Result<Vec<Update>> {
        let b = batch[0].bucket_ns;
        let chunk = self.chunk_ns(b);
        let table = batch[0].def.sli.table;
        let conditions: Vec<&RowConditions> = batch
            .iter()
            .map(|rt| {
                rt.rows
                    .as_ref()
                    .expect("only row SLOs are rolled up together")
            })
            .collect();
        let columns = rows::columns(conditions.iter().copied());
        let started = Instant::now();
        let mut rows = vec![Vec::new(); batch.len()];
        let mut done = None;
        while from < now {
            let to = now.min(from + chunk);
            let counted = match self
                .guarded(self.count_rows(table, &columns, &conditions, b, from, to))
                .await
            {
                Ok(counted) => counted,
                Err(e) if done.is_none() => return Err(e),
                Err(e) => {
                    tracing::warn!(error = %e, slos = batch.len(), "Rolling up SLOs together failed; the next tick goes on from here.");
                    break;
                }
            };
            for ((rt, values), rows) in batch.iter().zip(counted).zip(&mut rows) {
                let mut st = rt.state.lock().await;
                let results = BTreeMap::from([(Vec::new(), values)]);
                apply_results(rt, &mut st, (from, to), now, results, rows);
                match st.account() {
                    Ok(()) => st.succeeded(),
                    Err(e) => st.failed(e.to_string(), now, self.options.interval),
                }
            }
            done = Some(to);
            if to < now && !budget.spend() {
                break;
            }
            from = to;
        }
        let Some(to) = done else {
            return Ok(Vec::new());
        };
        let elapsed = started.elapsed() / batch.len() as u32;
        let mut updates = Vec::with_capacity(batch.len());
        for (rt, rows) in batch.iter().zip(rows) {
            let mut st = rt.state.lock().await;
            st.last_update = Some(elapsed);
            updates.push(stored_update(rt, &st, first, to, rows));
        }
        Ok(updates)
    }

    /// Good and total per bucket of width `b` for each of `conditions`, over
    /// the rows of `table` in `from .. to`: one plain read of the `columns`
    /// they use, the conditions evaluated batch by batch as it streams.
    async fn count_rows(
        &self,
        table: Table,
        columns: &[String],
        conditions: &[&RowConditions],
        b: i64,
        from: i64,
        to: i64,
    ) -> Result<Vec<Vec<(i64, [f64; 2])>>> {
        let time = table.time_column();
        let mut select = vec![quote(time)];
        select.extend(
            columns
                .iter()
                .filter(|c| c.as_str() != time)
                .map(|c| quote(c)),
        );
        let sql = format!(
            "SELECT {} FROM {} WHERE {time} >= {} AND {time} < {}",
            select.join(", "),
            table.name(),
            ts(from),
            ts(to)
        );
        let df = self
            .query
            .context()
            .sql_with_options(&sql, read_only())
            .await
            .map_err(|e| Error::Query(e.to_string()))?;
        let schema = Arc::clone(df.schema().inner());
        let mut counter = Counter::new(conditions, &schema, 0, b)?;
        let mut stream = df
            .execute_stream()
            .await
            .map_err(|e| Error::Query(e.to_string()))?;
        while let Some(batch) = stream.next().await {
            let batch = batch.map_err(|e| Error::Query(e.to_string()))?;
            // The conditions are evaluated a slice at a time, yielding in
            // between, so that a condition slow on every row is stopped by
            // the timeout within a slice, not after a whole batch.
            let mut offset = 0;
            while offset < batch.num_rows() {
                let len = EVAL_SLICE_ROWS.min(batch.num_rows() - offset);
                counter.add(&batch.slice(offset, len))?;
                offset += len;
                tokio::task::yield_now().await;
            }
        }
        Ok(counter.finish())
    }

    async fn run(&self, sql: &str) -> Result<Vec<RecordBatch>> {
        let df = self
            .query
            .context()
            .sql_with_options(sql, read_only())
            .await
            .map_err(|e| Error::Query(e.to_string()))?;
        let stream = df
            .execute_stream()
            .await
            .map_err(|e| Error::Query(e.to_string()))?;
        smolder_query::collect_at_most(stream, usize::MAX)
            .await
            .map_err(|e| Error::Query(e.to_string()))
    }

    /// Runs `work` (one SLO's query) within the query timeout, a panic in
    /// it caught: both become that SLO's error.
    async fn guarded<T>(&self, work: impl std::future::Future<Output = Result<T>>) -> Result<T> {
        let timeout = self.options.query_timeout;
        match tokio::time::timeout(timeout, std::panic::AssertUnwindSafe(work).catch_unwind()).await
        {
            Ok(Ok(result)) => result,
            Ok(Err(payload)) => {
                let message = smolder_query::executor::panic_message(payload.as_ref());
                tracing::error!(panic = %message, "An SLO query panicked; it fails, the engine goes on.");
                Err(Error::Query(format!(
                    "the query failed inside the engine: {message}"
                )))
            }
            Err(_) => Err(Error::Query(format!(
                "the query was stopped after the timeout of {}",
                humantime::format_duration(timeout)
            ))),
        }
    }

    /// Evaluations of one SLO instance at each of `times` (for charts).
    pub async fn series(
        &self,
        id: &str,
        group: &GroupKey,
        times: &[i64],
    ) -> Option<Vec<Evaluation>> {
        let rt = self.runtimes.read().expect("lock").get(id).cloned()?;
        let b = rt.bucket_ns;
        // The oldest bucket any evaluation reads: a period (or the longest
        // window) before the first instant.
        let first = *times.iter().min()?;
        let needed = (first - duration_ns(rt.def.horizon(first))).div_euclid(b);
        let st = rt.state.lock().await;
        match st.groups.get(group) {
            Some(r) if needed >= r.oldest() => {
                return Some(times.iter().map(|&t| evaluate(&rt.def, r, b, t)).collect());
            }
            None if !group.is_empty() => return None,
            _ => {}
        }
        drop(st);
        // Older than the ring: read the stored buckets (the ring's are stored
        // too, after every tick).
        let last = times.iter().max().copied().unwrap_or(first).div_euclid(b);
        let key = serde_json::to_string(group).unwrap_or_else(|_| "[]".into());
        let db = Arc::clone(&self.db);
        let slo = rt.def.id.clone();
        let rows = tokio::task::spawn_blocking(move || db.rollups(&slo, needed))
            .await
            .ok()?
            .ok()?;
        let values: Vec<(i64, [f64; 2])> = rows
            .into_iter()
            .filter(|(g, i, _, _)| *g == key && *i <= last)
            .map(|(_, i, g, t)| (i, [g, t]))
            .collect();
        let capacity = usize::try_from(last - needed + 1).unwrap_or(1);
        let mut history = Rollup::new(rt.def.budgeting, capacity, last);
        history.replace(needed, last, &values);
        Some(
            times
                .iter()
                .map(|&t| evaluate(&rt.def, &history, b, t))
                .collect(),
        )
    }

    /// Every stored bucket, for the `slo_rollups` table: (slo, group JSON,
    /// bucket start ns, bucket width ns, good, total).
    pub async fn rollup_rows(&self) -> Vec<(String, String, i64, i64, f64, f64)> {
        let runtimes = self.all_runtimes();
        let mut out = Vec::new();
        for rt in runtimes {
            let st = rt.state.lock().await;
            for (key, rollup) in &st.groups {
                let grp = group_json(&rt.def.group_by, key);
                for (i, [g, t]) in rollup.buckets() {
                    out.push((
                        rt.def.id.clone(),
                        grp.clone(),
                        i * rt.bucket_ns,
                        rt.bucket_ns,
                        g,
                        t,
                    ));
                }
            }
        }
        out
    }
}

/// Replaces an SLO's buckets of `[from, to)` with `results` (by group);
/// groups beyond the limit are counted as dropped. Appends what to store to
/// `rows` and moves the watermark to `to`.
fn apply_results(
    rt: &Runtime,
    st: &mut InstanceState,
    (from, to): (i64, i64),
    now: i64,
    mut results: BTreeMap<GroupKey, Vec<(i64, [f64; 2])>>,
    rows: &mut Vec<(String, i64, f64, f64)>,
) {
    let b = rt.bucket_ns;
    let (from_index, to_index) = (from.div_euclid(b), (to - 1).div_euclid(b));
    if rt.def.group_by.is_empty() {
        results.entry(Vec::new()).or_default();
    }
    for key in st.groups.keys() {
        results.entry(key.clone()).or_default();
    }
    for (key, mut values) in results {
        values.sort_by_key(|(i, _)| *i);
        if !st.groups.contains_key(&key) {
            if st.groups.len() >= rt.def.max_groups.max(1) {
                st.dropped_groups += values.len() as u64;
                continue;
            }
            let head = now_index(now, b).min(to_index);
            st.groups.insert(
                key.clone(),
                Rollup::new(rt.def.budgeting, rt.capacity, head),
            );
        }
        let rollup = st.groups.get_mut(&key).expect("inserted above");
        rollup.replace(from_index, to_index, &values);
        let grp = serde_json::to_string(&key).unwrap_or_else(|_| "[]".into());
        for (i, [g, t]) in values {
            if (from_index..=to_index).contains(&i) && (g != 0.0 || t != 0.0) {
                rows.push((grp.clone(), i, g, t));
            }
        }
    }
    st.watermark = to;
}

/// Keeps the newest point per series of a baseline query's result.
fn read_baselines(batch: &RecordBatch, out: &mut HashMap<i64, Baseline>) {
    let sid = batch.column(0).as_primitive::<Int64Type>();
    let time = batch.column(1).as_primitive::<Int64Type>();
    let start = batch.column(2).as_primitive::<Int64Type>();
    let good = batch.column(3).as_primitive::<Float64Type>();
    let total = batch.column(4).as_primitive::<Float64Type>();
    for row in 0..batch.num_rows() {
        if sid.is_null(row) || time.is_null(row) || good.is_null(row) || total.is_null(row) {
            continue;
        }
        let point = Baseline {
            sid: sid.value(row),
            time: time.value(row),
            start: (!start.is_null(row)).then(|| start.value(row)),
            good: good.value(row),
            total: total.value(row),
        };
        match out.get(&point.sid) {
            Some(known) if known.time >= point.time => {}
            _ => {
                out.insert(point.sid, point);
            }
        }
    }
}

/// What an update of `rt` from bucket `first` (ns) up to `to` stores: its
/// new state, and its `rows` replacing the buckets of that range.
fn stored_update(
    rt: &Runtime,
    st: &InstanceState,
    first: i64,
    to: i64,
    rows: Vec<(String, i64, f64, f64)>,
) -> Update {
    let b = rt.bucket_ns;
    Update {
        slo: rt.def.id.clone(),
        state: StoredState {
            fingerprint: rt.fingerprint.clone(),
            watermark: to,
            horizon_start: st.horizon_start,
        },
        from: first.div_euclid(b),
        to: (to - 1).div_euclid(b),
        rows,
    }
}

/// A column name as a SQL identifier.
use smolder_common::text::sql_ident as quote;

fn read_only() -> SQLOptions {
    SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false)
}

/// Adds a result batch's rows to `out`, by group.
fn read_batch(
    batch: &RecordBatch,
    groups: usize,
    out: &mut BTreeMap<GroupKey, Vec<(i64, [f64; 2])>>,
) {
    let bucket = batch.column(0).as_primitive::<Int64Type>();
    // Group values are text; DataFusion may hand them over as string views.
    let group_arrays: Vec<_> = (0..groups)
        .map(|g| {
            datafusion::arrow::compute::cast(batch.column(1 + g), &DataType::Utf8)
                .unwrap_or_else(|_| Arc::clone(batch.column(1 + g)))
        })
        .collect();
    let group_cols: Vec<_> = group_arrays.iter().map(|a| a.as_string::<i32>()).collect();
    let good = batch.column(1 + groups).as_primitive::<Float64Type>();
    let total = batch.column(2 + groups).as_primitive::<Float64Type>();
    for row in 0..batch.num_rows() {
        if bucket.is_null(row) {
            continue;
        }
        let key: GroupKey = group_cols
            .iter()
            .map(|c| {
                if c.is_null(row) {
                    String::new()
                } else {
                    c.value(row).to_string()
                }
            })
            .collect();
        let value = |a: &datafusion::arrow::array::Float64Array| {
            if a.is_null(row) { 0.0 } else { a.value(row) }
        };
        out.entry(key)
            .or_default()
            .push((bucket.value(row), [value(good), value(total)]));
    }
}

/// A group as a JSON object of expression → value.
pub fn group_json(group_by: &[String], key: &GroupKey) -> String {
    serde_json::to_string(&group_map(group_by, key)).unwrap_or_else(|_| "{}".into())
}

fn group_map(group_by: &[String], key: &GroupKey) -> BTreeMap<String, String> {
    group_by.iter().cloned().zip(key.iter().cloned()).collect()
}

/// The status of an SLO; its rollups count as caught up when they are less
/// than `slack_ns` behind `now`.
fn status(rt: &Runtime, st: &InstanceState, now: i64, slack_ns: i64) -> SloStatus {
    let mut instances = Vec::with_capacity(st.groups.len().max(1));
    for (key, rollup) in &st.groups {
        instances.push(InstanceStatus {
            group: group_map(&rt.def.group_by, key),
            evaluation: evaluate(&rt.def, rollup, rt.bucket_ns, now),
        });
    }
    if instances.is_empty() && rt.def.group_by.is_empty() {
        let empty = Rollup::new(rt.def.budgeting, 1, 0);
        instances.push(InstanceStatus {
            group: BTreeMap::new(),
            evaluation: evaluate(&rt.def, &empty, rt.bucket_ns, now),
        });
    }
    // Worst budget first.
    instances.sort_by(|a, b| {
        a.evaluation
            .error_budget_remaining
            .total_cmp(&b.evaluation.error_budget_remaining)
    });
    let span = (now - st.horizon_start).max(1) as f64;
    let caught_up = now - st.watermark <= slack_ns.max(1_000_000_000);
    let through = smolder_common::text::rfc3339(st.watermark, chrono::SecondsFormat::Secs);
    SloStatus {
        definition: Arc::clone(&rt.def),
        instances,
        backfill: Backfill {
            done: caught_up,
            progress: ((st.watermark - st.horizon_start) as f64 / span).clamp(0.0, 1.0),
            through,
        },
        dropped_group_rows: st.dropped_groups,
        error: st.last_error.clone(),
        last_update_ms: st.last_update.map(|d| d.as_secs_f64() * 1e3),
    }
}

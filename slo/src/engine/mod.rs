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
//!
//! The parts: `registry.rs` (definitions from files and the API, compiled
//! into runtimes), `state.rs` (what is kept per SLO), `backfill.rs` (catching
//! up on history within a budget), `update.rs` (the rollup queries and their
//! results), `status.rs` (what the API, charts and `slo_rollups` read); this
//! module schedules them: one tick reloads, updates, stores and evaluates.

mod backfill;
mod exclusions;
mod history;
mod registry;
mod state;
mod status;
mod update;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime};

use futures::StreamExt as _;
use serde::Serialize;
use smolder_common::clock::Clock;
use smolder_common::sync::{lock, read, write};
use smolder_query::QueryEngine;

pub use self::exclusions::ExclusionError;
pub use self::history::{GroupBuckets, History, Sources};
pub use self::status::{RollupRow, group_json, group_map};

use self::backfill::{BackfillBudget, OldestRows};
use self::state::Runtime;
use self::status::status;
use self::update::MAX_UNSAVED;
use crate::Result;
use crate::eval::Evaluation;
use crate::model::{Origin, SloDefinition, Window, duration_ns};
use crate::persist::{Db, Update};
use crate::spec::{self, Defaults, Problem};

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
    /// Burn-rate windows evaluated for every SLO beside its alert windows
    /// (those burn-driven scaling targets decide on); shared by the
    /// engines made with these options, so a reload changes them for all.
    pub watched: WatchedWindows,
}

/// Burn-rate windows every SLO's evaluation carries beside its own alert
/// windows; see [`EngineOptions::watched`].
#[derive(Debug, Clone, Default)]
pub struct WatchedWindows(Arc<RwLock<Vec<Window>>>);

impl WatchedWindows {
    /// Evaluates `windows` from the next tick on.
    pub fn set(&self, windows: impl IntoIterator<Item = Window>) {
        let mut windows: Vec<Window> = windows.into_iter().collect();
        windows.sort_unstable();
        windows.dedup();
        *write(&self.0) = windows;
    }

    /// The windows, shortest first.
    pub fn get(&self) -> Vec<Window> {
        read(&self.0).clone()
    }
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
    /// The SLO would be one more than the limit allows.
    Limit(String),
}

/// A group's values, in the order of the SLO's `group_by`.
pub type GroupKey = Vec<String>;

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
    /// The budget exclusions in force at the evaluation: its events do not
    /// count now.
    pub excluded_now: Vec<crate::exclusion::Occurrence>,
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
    /// SLOs updated together with others of their table, over one read.
    pub batched: usize,
    /// Row SLOs without groups that had to be updated one by one (rolling
    /// them up together failed, or their conditions did not compile).
    pub fallbacks: usize,
}

/// The tick instant at or before `now_ns` on the grid of `interval`: the
/// multiples of the interval since the Unix epoch. Live ticks run on this
/// grid and a backtest evaluates on it, so both see the same instants.
pub fn tick_instant(now_ns: i64, interval: Duration) -> i64 {
    let every = duration_ns(interval).max(1);
    now_ns.div_euclid(every) * every
}

/// The SLO engine.
pub struct SloEngine {
    query: QueryEngine,
    clock: Arc<dyn Clock>,
    options: EngineOptions,
    db: Arc<Db>,
    file_defs: RwLock<Vec<SloDefinition>>,
    api_defs: RwLock<Vec<SloDefinition>>,
    /// Budget exclusions made through the API, by SLO id.
    api_exclusions: RwLock<BTreeMap<String, Vec<crate::exclusion::Exclusion>>>,
    runtimes: RwLock<BTreeMap<String, Arc<Runtime>>>,
    snapshot: RwLock<Arc<Snapshot>>,
    /// Held from choosing the SLOs to evaluate until their snapshot is
    /// published, so that snapshots are published in the order they were
    /// begun: a tick that began before a PUT must not publish, after the
    /// PUT's own evaluation, a snapshot without the new SLO.
    publishing: tokio::sync::Mutex<()>,
    problems: RwLock<Vec<Problem>>,
    dir_stamp: std::sync::Mutex<Vec<(PathBuf, SystemTime, u64)>>,
    ticks: std::sync::atomic::AtomicU64,
    /// Row SLOs updated one by one instead of together, per tick, since
    /// start (`smolder_slo_batch_fallbacks_total`).
    fallbacks: std::sync::atomic::AtomicU64,
    /// The fallbacks' errors already logged: each is logged once, not at
    /// every tick.
    fallback_errors: std::sync::Mutex<std::collections::HashSet<String>>,
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
            api_exclusions: RwLock::new(BTreeMap::new()),
            runtimes: RwLock::new(BTreeMap::new()),
            snapshot: RwLock::new(Arc::new(Snapshot::default())),
            publishing: tokio::sync::Mutex::new(()),
            problems: RwLock::new(Vec::new()),
            dir_stamp: std::sync::Mutex::new(Vec::new()),
            ticks: std::sync::atomic::AtomicU64::new(0),
            fallbacks: std::sync::atomic::AtomicU64::new(0),
            fallback_errors: std::sync::Mutex::new(std::collections::HashSet::new()),
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
        *write(&engine.api_defs) = api;
        *write(&engine.api_exclusions) = exclusions::load(&engine.db)?;
        engine.reload_dir(true).await?;
        engine.rebuild()?;
        // The SLOs (from their stored rollups) are listed from the start,
        // not only after the first tick.
        engine.evaluate_now().await;
        Ok(engine)
    }

    /// Whose SLOs this engine runs.
    pub fn tenant(&self) -> &smolder_common::Tenant {
        self.query.tenant()
    }

    /// The options.
    pub fn options(&self) -> &EngineOptions {
        &self.options
    }

    /// Row SLOs updated one by one instead of together since start, counted
    /// once per tick each.
    pub fn batch_fallbacks(&self) -> u64 {
        self.fallbacks.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Counts the row SLOs (id, why) updated one by one this tick although
    /// they could have been updated together with others, and logs each
    /// reason the first time it is seen.
    fn count_fallbacks(&self, fallbacks: &[(String, String)]) -> usize {
        for (slo, reason) in fallbacks {
            let first = {
                let mut seen = smolder_common::sync::lock(&self.fallback_errors);
                seen.len() < 256 && seen.insert(reason.clone())
            };
            if first {
                tracing::warn!(slo = %slo, error = %reason, "An SLO is rolled up on its own instead of together with the others of its table (slower). Logged once; counted in smolder_slo_batch_fallbacks_total.");
            }
        }
        self.fallbacks
            .fetch_add(fallbacks.len() as u64, std::sync::atomic::Ordering::Relaxed);
        fallbacks.len()
    }

    /// The result of the last tick.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        Arc::clone(&read(&self.snapshot))
    }

    /// One tick at the clock's time: reload changed files, update every
    /// SLO's rollups, persist them, evaluate.
    pub async fn tick(&self) -> TickReport {
        self.tick_at(self.clock.now_ns()).await
    }

    /// One tick at `now` (Unix ns): the server ticks at the multiples of
    /// the interval ([`tick_instant`]), so a backtest replays the live
    /// engine's evaluations at the same instants.
    pub async fn tick_at(&self, now: i64) -> TickReport {
        match self.reload_dir(false).await {
            Ok(true) => {
                if let Err(e) = self.rebuild() {
                    tracing::error!(error = %e, "Applying reloaded SLO definitions failed.");
                }
            }
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "Reloading the SLO directory failed."),
        }
        let started = Instant::now();
        let runtimes = self.all_runtimes();
        for rt in &runtimes {
            rt.state
                .lock()
                .await
                .renew_exclusions(rt.bucket_ns, rt.capacity, now);
        }
        let oldest = OldestRows::default();
        let oldest = &oldest;
        let budget = BackfillBudget::new(self.options.backfill_budget);
        let budget = &budget;
        let (mut batched, rest, fallbacks) =
            self.update_batched(&runtimes, now, oldest, budget).await;
        let mut report = TickReport {
            batched: batched.len(),
            fallbacks: self.count_fallbacks(&fallbacks),
            ..TickReport::default()
        };
        let results: Vec<Option<Update>> = futures::stream::iter(rest)
            .map(|rt| async move { self.update(&rt, now, oldest, budget).await })
            .buffer_unordered(self.options.concurrency.max(1))
            .collect()
            .await;
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
        let mut pending = std::mem::take(&mut *lock(&self.unsaved));
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
                *lock(&self.unsaved) = pending;
            }
            Err(e) => tracing::error!(error = %e, "Storing SLO rollups panicked."),
        }
        report.update = started.elapsed();
        let started = Instant::now();
        self.evaluate_all(now).await;
        report.evaluate = started.elapsed();
        report
    }

    /// Every SLO's runtime, in id order.
    fn all_runtimes(&self) -> Vec<Arc<Runtime>> {
        read(&self.runtimes).values().cloned().collect()
    }

    /// Re-evaluates every SLO at the clock's time, without updating rollups.
    pub async fn evaluate_now(&self) {
        self.evaluate_all(self.clock.now_ns()).await;
    }

    /// Evaluates the SLOs defined now (not those a tick began with: one may
    /// have been added or removed since) and publishes their snapshot.
    async fn evaluate_all(&self, now: i64) {
        let _publishing = self.publishing.lock().await;
        let runtimes = self.all_runtimes();
        let watched = self.options.watched.get();
        let mut slos = Vec::with_capacity(runtimes.len());
        for rt in &runtimes {
            let state = rt.state.lock().await;
            slos.push(status(
                rt,
                &state,
                now,
                duration_ns(self.options.interval) * 2,
                &watched,
            ));
        }
        let snapshot = Snapshot {
            at_ns: now,
            slos,
            problems: read(&self.problems).clone(),
        };
        *write(&self.snapshot) = Arc::new(snapshot);
    }
}

//! The SLOs the engine knows: definitions from the SLO directory (reloaded
//! when a file changes; a broken file keeps its SLOs' last good definitions)
//! and from the API (stored in the database), checked against the tables and
//! compiled into runtimes that keep their rollups while their indicator is
//! unchanged.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use smolder_common::sync::{lock, read, write};
use std::time::SystemTime;

use super::state::{InstanceState, Runtime};
use super::update::now_index;
use super::{GroupKey, PutError, SloEngine};
use crate::exclusion::Exclusions;
use crate::model::{Origin, SloDefinition, duration_ns};
use crate::rollup::{Excluded, Rollup};
use crate::rows::RowConditions;
use crate::spec::{self, Problem};
use crate::sql::check_definition;
use crate::{Error, Result};
use smolder_common::memory::{Consumer, Reservation};

impl SloEngine {
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
            let mut old = lock(&self.dir_stamp);
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
        let previous = read(&self.file_defs).clone();
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
        *write(&self.file_defs) = slos;
        *write(&self.problems) = problems;
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
    pub(super) fn rebuild(&self) -> Result<()> {
        let mut defs: BTreeMap<String, SloDefinition> = BTreeMap::new();
        for d in read(&self.api_defs).iter() {
            defs.insert(d.id.clone(), d.clone());
        }
        // Files win over the API.
        for d in read(&self.file_defs).iter() {
            defs.insert(d.id.clone(), d.clone());
        }
        for d in defs.values_mut() {
            d.tenant = self.tenant().clone();
        }
        let now = self.clock.now_ns();
        let old = read(&self.runtimes).clone();
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
                        // The annotation's exclusions may have changed.
                        state.set_exclusions(
                            self.exclusions(&def),
                            rt.bucket_ns,
                            capacity.max(rt.capacity),
                            now,
                        );
                        next.insert(
                            id,
                            Arc::new(Runtime {
                                rows: rt.rows.clone(),
                                rows_error: rt.rows_error.clone(),
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
        *write(&self.runtimes) = next;
        Ok(())
    }

    /// Buckets an SLO's ring holds: its horizon, the lateness and a chunk.
    pub(super) fn capacity(&self, def: &SloDefinition, now: i64) -> usize {
        let b = def.bucket_ns(self.options.step);
        // Saturating: definitions are bounded (spec::Bounds), but a stored
        // one must never wrap into a negative span.
        let span = duration_ns(def.horizon(now).saturating_add(self.options.lateness))
            .saturating_add(b.saturating_mul(2));
        usize::try_from(span / b + 1).unwrap_or(usize::MAX)
    }

    pub(super) fn fresh_state(&self, def: &SloDefinition, now: i64) -> InstanceState {
        let b = def.bucket_ns(self.options.step);
        let start = now
            .saturating_sub(duration_ns(def.horizon(now)))
            .div_euclid(b)
            .saturating_mul(b);
        self.empty_state(start)
    }

    /// A state with nothing rolled up before `start`, its memory taken
    /// from the process's budget.
    pub(super) fn empty_state(&self, start: i64) -> InstanceState {
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
            exclusions: Exclusions::default(),
            occurrences: Vec::new(),
            excluded: Excluded::default(),
            excluded_through: i64::MIN,
        }
    }

    /// A runtime for `def`, with its stored rollups when they are still valid.
    pub(super) fn load_runtime(
        &self,
        def: SloDefinition,
        fingerprint: String,
        now: i64,
    ) -> Result<Runtime> {
        let bucket_ns = def.bucket_ns(self.options.step);
        let capacity = self.capacity(&def, now);
        let mut state = self.fresh_state(&def, now);
        state.set_exclusions(self.exclusions(&def), bucket_ns, capacity, now);
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
                    let mut r = Rollup::new(def.budgeting, capacity, head)
                        .excluding(state.excluded.clone());
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
        // On an error its own query reports the problem, if there is one.
        let (rows, rows_error) = match RowConditions::compile(self.query.context(), &def) {
            Ok(rows) => (rows, None),
            Err(e) => (
                None,
                Some(format!("the SLI's conditions do not compile: {e}")),
            ),
        };
        Ok(Runtime {
            def: Arc::new(def),
            rows,
            rows_error,
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
        if let Some(f) = read(&self.file_defs).iter().find(|d| d.id == id) {
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
        let exists = read(&self.runtimes).contains_key(id);
        if !exists && read(&self.runtimes).len() >= max_slos {
            return Err(PutError::Limit(if self.tenant().is_default() {
                format!("smolder runs at most {max_slos} SLOs (slo.max_slos); delete one first")
            } else {
                format!(
                    "tenant {} may have at most {max_slos} SLOs (slo.tenant_max_slos); delete one first",
                    self.tenant()
                )
            }));
        }
        self.check(def).await.map_err(PutError::Invalid)?;
        self.db
            .put_api(id, yaml, self.clock.now_ns())
            .map_err(|e| PutError::Storage(e.to_string()))?;
        let created = {
            let mut api = write(&self.api_defs);
            let before = api.len();
            api.retain(|d| d.id != id);
            let created = api.len() == before;
            api.push(def.clone());
            created
        };
        self.rebuild()
            .map_err(|e| PutError::Storage(e.to_string()))?;
        let def = Arc::clone(&read(&self.runtimes)[id].def);
        Ok((def, created))
    }

    /// The text an SLO was loaded from — its file's, or the document it was
    /// stored through the API with — and where it came from; `None` for an
    /// unknown SLO (or a file no longer readable).
    pub fn source(&self, id: &str) -> Result<Option<(Origin, String)>> {
        let origin = match read(&self.runtimes).get(id) {
            Some(rt) => rt.def.origin.clone(),
            None => return Ok(None),
        };
        let text = match &origin {
            Origin::Api => self.db.api_slo(id)?,
            Origin::File(path) => std::fs::read_to_string(path).ok(),
        };
        Ok(text.map(|t| (origin, t)))
    }

    /// Deletes an API-managed SLO. `Ok(false)` when there is none.
    pub fn delete(&self, id: &str) -> Result<bool> {
        if read(&self.file_defs).iter().any(|d| d.id == id) {
            return Err(Error::Conflict(format!(
                "SLO {id:?} is defined in the SLO directory; remove it there"
            )));
        }
        let existed = self.db.delete_api(id)?;
        write(&self.api_defs).retain(|d| d.id != id);
        self.rebuild()?;
        if existed {
            self.db.forget(id)?;
            self.forget_exclusions(id)?;
        }
        Ok(existed)
    }
}

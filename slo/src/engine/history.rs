//! An SLO's buckets over a past range, for backtests: what a candidate
//! policy would have seen.
//!
//! A candidate whose indicator is that of a running SLO (same rollup
//! fingerprint: only objective, alert windows or labels differ) reads the
//! SLO's stored buckets — one SQLite range read, no telemetry scanned — and
//! scans only what the store does not hold (before the SLO existed, or the
//! minutes since its last tick). Any other candidate is rolled up from the
//! telemetry chunk by chunk with the engine's own rollup queries, within
//! the query timeout per chunk and the process's memory budget, so its
//! buckets are the ones the live engine would have computed.
//!
//! [`SloEngine::scan`] also reads a single bucket at a finer width: a
//! backtest needs what the live engine saw of the bucket a tick fell in (the
//! part before the tick) where that decides an alert condition.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::GroupKey;
use super::SloEngine;
use super::state::Runtime;
use crate::model::{SloDefinition, duration_ns};
use crate::rollup::Rollup;
use crate::{Error, Result};
use smolder_common::memory::{Consumer, Reservation};
use smolder_common::sync::read;

/// Each group's non-empty buckets (index, raw good and total), by index.
pub type GroupBuckets = BTreeMap<GroupKey, Vec<(i64, [f64; 2])>>;

/// Where a history's buckets came from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sources {
    /// Buckets read from the running SLO's stored rollups.
    pub stored_buckets: u64,
    /// Time rolled up from the telemetry (ns).
    pub scanned_ns: i64,
}

/// An SLO's buckets from a horizon before a range to its end.
#[derive(Debug)]
pub struct History {
    /// The definition the buckets are of.
    pub def: Arc<SloDefinition>,
    /// Width of a bucket (ns).
    pub bucket_ns: i64,
    /// The first bucket index held.
    pub first: i64,
    /// The last bucket index held.
    pub last: i64,
    /// Each group's buckets (one without groups).
    pub groups: BTreeMap<GroupKey, Rollup>,
    /// Where they came from.
    pub sources: Sources,
    /// The share of the process's memory budget the rollups hold.
    _memory: Reservation,
}

impl SloEngine {
    /// The buckets `def` needs to be evaluated at any instant of
    /// `[from, to]`: from a horizon before `from` through the bucket holding
    /// `to`.
    pub async fn history(&self, def: &SloDefinition, from: i64, to: i64) -> Result<History> {
        let b = def.bucket_ns(self.options.step);
        let need = from
            .saturating_sub(duration_ns(def.horizon(from)))
            .div_euclid(b);
        let last = to.div_euclid(b);
        let end = (last + 1) * b;
        let capacity = usize::try_from(last - need + 1)
            .map_err(|_| Error::Config("the range ends before it starts".into()))?;
        let mut groups = GroupBuckets::new();
        let mut sources = Sources::default();
        // The stored buckets of the running SLO with this indicator.
        let fingerprint = def.rollup_fingerprint(self.options.step);
        let running = read(&self.runtimes)
            .get(&def.id)
            .filter(|rt| rt.fingerprint == fingerprint)
            .cloned();
        let mut scan_ranges = vec![(need * b, end)];
        if let Some(rt) = running {
            let db = Arc::clone(&self.db);
            let id = def.id.clone();
            let now = self.clock.now_ns();
            // Buckets older than two rings are pruned (about hourly).
            let kept = now.div_euclid(b) - 2 * rt.capacity as i64 + 1;
            let read_stored = move || -> Result<_> {
                let Some(state) = db.state(&id)? else {
                    return Ok(None);
                };
                if state.fingerprint != fingerprint {
                    return Ok(None);
                }
                let start = state.horizon_start.div_euclid(b).max(kept).max(need);
                // The bucket holding the watermark is partly rolled up.
                let stop = state.watermark.div_euclid(b).min(last + 1);
                if start >= stop {
                    return Ok(None);
                }
                Ok(Some((start, stop, db.rollups(&id, start)?)))
            };
            let stored = tokio::task::spawn_blocking(read_stored)
                .await
                .map_err(|e| Error::Storage(e.to_string()))??;
            if let Some((start, stop, rows)) = stored {
                for (grp, i, g, t) in rows {
                    if i >= stop {
                        break;
                    }
                    let key: GroupKey = serde_json::from_str(&grp).unwrap_or_default();
                    groups.entry(key).or_default().push((i, [g, t]));
                    sources.stored_buckets += 1;
                }
                scan_ranges = [(need * b, start * b), (stop * b, end)]
                    .into_iter()
                    .filter(|(f, t)| f < t)
                    .collect();
            }
        }
        // Nothing is older than the table's oldest row: no need to read
        // the empty history before it chunk by chunk.
        let oldest = if scan_ranges.is_empty() {
            None
        } else {
            self.oldest_row(def.sli.table).await?
        };
        for (f, t) in scan_ranges {
            let f = match oldest {
                Some(o) => f.max(o.div_euclid(b) * b),
                None => t,
            };
            if f >= t {
                continue;
            }
            sources.scanned_ns += t - f;
            for (key, values) in self.scan(def, f, t, b).await? {
                groups.entry(key).or_default().extend(values);
            }
        }
        if def.group_by.is_empty() {
            groups.entry(Vec::new()).or_default();
        }
        // The candidate's exclusions with those made through the API for
        // its id, as the live engine masks them.
        let excluded = self.exclusions(def).excluded(need * b, end, b);
        let groups = groups
            .into_iter()
            .take(def.max_groups.max(1))
            .map(|(key, mut values)| {
                values.sort_by_key(|(i, _)| *i);
                let mut r = Rollup::new(def.budgeting, capacity, last).excluding(excluded.clone());
                r.replace(need, last, &values);
                (key, r)
            })
            .collect::<BTreeMap<GroupKey, Rollup>>();
        let mut memory = Reservation::empty(self.query.budget(), Consumer::Slo);
        let bytes: usize = groups.values().map(Rollup::bytes).sum();
        memory.resize(bytes).map_err(|e| {
            Error::Resources(format!(
                "the backtest's {} buckets of {} groups need {bytes} bytes and {e}; try a shorter range",
                last - need + 1,
                groups.len()
            ))
        })?;
        Ok(History {
            def: Arc::new(def.clone()),
            bucket_ns: b,
            first: need,
            last,
            groups,
            sources,
            _memory: memory,
        })
    }

    /// A copy of `h` for another task to replay on (its share of the
    /// memory budget reserved again).
    pub fn copy_history(&self, h: &History) -> Result<History> {
        let mut memory = Reservation::empty(self.query.budget(), Consumer::Slo);
        let bytes: usize = h.groups.values().map(Rollup::bytes).sum();
        memory.resize(bytes).map_err(|e| {
            Error::Resources(format!(
                "a copy of the backtest's buckets needs {bytes} bytes and {e}"
            ))
        })?;
        Ok(History {
            def: Arc::clone(&h.def),
            bucket_ns: h.bucket_ns,
            first: h.first,
            last: h.last,
            groups: h.groups.clone(),
            sources: h.sources.clone(),
            _memory: memory,
        })
    }

    /// Rolls `def` up from the telemetry of `[from, to)` in buckets of
    /// `width_ns` (`from` on a bucket boundary), chunk by chunk as a
    /// backfill does: each group's non-empty buckets, by index.
    pub async fn scan(
        &self,
        def: &SloDefinition,
        from: i64,
        to: i64,
        width_ns: i64,
    ) -> Result<GroupBuckets> {
        let width_ns = width_ns.max(1);
        let capacity = usize::try_from((to - from) / width_ns + 2).unwrap_or(usize::MAX);
        let rt = Runtime {
            def: Arc::new(def.clone()),
            rows: None,
            rows_error: None,
            bucket_ns: width_ns,
            fingerprint: String::new(),
            capacity,
            state: tokio::sync::Mutex::new(self.empty_state(from)),
        };
        let chunk = self.chunk_ns(width_ns);
        let mut st = rt.state.lock().await;
        let mut rows = Vec::new();
        let mut at = from;
        while at < to {
            let until = to.min(at.saturating_add(chunk));
            self.guarded(self.update_chunk(&rt, &mut st, at, until, to, &mut rows))
                .await?;
            rows.clear();
            at = until;
        }
        Ok(st
            .groups
            .iter()
            .map(|(key, r)| (key.clone(), r.buckets().collect()))
            .collect())
    }
}

impl SloEngine {
    /// The time of the oldest row of `table` (ns), `None` when it is empty.
    pub async fn oldest_row(&self, table: smolder_common::Table) -> Result<Option<i64>> {
        super::backfill::OldestRows::default()
            .get(self, table)
            .await
            .ok_or_else(|| Error::Query(format!("reading the oldest row of {}", table.name())))
    }
}

//! What the engine shows: each SLO's status after a tick, evaluations over
//! time for charts, and the stored buckets for the `slo_rollups` table.

use std::collections::BTreeMap;

use smolder_common::sync::read;
use std::sync::Arc;

use super::state::{InstanceState, Runtime};
use super::{Backfill, GroupKey, InstanceStatus, SloEngine, SloStatus};
use crate::eval::{Evaluation, evaluate};
use crate::model::{Window, duration_ns};
use crate::rollup::Rollup;

/// One stored bucket of one SLO instance (a row of `slo_rollups`).
#[derive(Debug, Clone, PartialEq)]
pub struct RollupRow {
    /// The SLO's id.
    pub slo: String,
    /// The group as a JSON object of expression → value.
    pub group: String,
    /// Start of the bucket (Unix ns).
    pub start_ns: i64,
    /// Width of the bucket (ns).
    pub width_ns: i64,
    /// Good events (or good timeslices).
    pub good: f64,
    /// All events (or timeslices).
    pub total: f64,
    /// Whether a budget exclusion covers the bucket (its events count
    /// nowhere; good and total are what was measured).
    pub excluded: bool,
}

impl SloEngine {
    /// Evaluations of one SLO instance at each of `times` (for charts).
    pub async fn series(
        &self,
        id: &str,
        group: &GroupKey,
        times: &[i64],
    ) -> Option<Vec<Evaluation>> {
        let rt = read(&self.runtimes).get(id).cloned()?;
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
        let excluded = self
            .exclusions(&rt.def)
            .excluded(needed * b, (last + 1) * b, b);
        let mut history = Rollup::new(rt.def.budgeting, capacity, last).excluding(excluded);
        history.replace(needed, last, &values);
        Some(
            times
                .iter()
                .map(|&t| evaluate(&rt.def, &history, b, t))
                .collect(),
        )
    }

    /// Every stored bucket, for the `slo_rollups` table.
    pub async fn rollup_rows(&self) -> Vec<RollupRow> {
        let runtimes = self.all_runtimes();
        let mut out = Vec::new();
        for rt in runtimes {
            let st = rt.state.lock().await;
            for (key, rollup) in &st.groups {
                let grp = group_json(&rt.def.group_by, key);
                for (i, [g, t]) in rollup.buckets() {
                    out.push(RollupRow {
                        slo: rt.def.id.clone(),
                        group: grp.clone(),
                        start_ns: i * rt.bucket_ns,
                        width_ns: rt.bucket_ns,
                        good: g,
                        total: t,
                        excluded: rollup.excluded().contains(i),
                    });
                }
            }
        }
        out
    }
}

/// A group as a JSON object of expression → value.
pub fn group_json(group_by: &[String], key: &GroupKey) -> String {
    serde_json::to_string(&group_map(group_by, key)).unwrap_or_else(|_| "{}".into())
}

/// A group's values by `group_by` expression.
pub fn group_map(group_by: &[String], key: &GroupKey) -> BTreeMap<String, String> {
    group_by.iter().cloned().zip(key.iter().cloned()).collect()
}

/// The status of an SLO, with the burn rates over the `watched` windows
/// too; its rollups count as caught up when they are less than `slack_ns`
/// behind `now`.
pub(super) fn status(
    rt: &Runtime,
    st: &InstanceState,
    now: i64,
    slack_ns: i64,
    watched: &[Window],
) -> SloStatus {
    let instance = |group, rollup: &Rollup| {
        let mut evaluation = evaluate(&rt.def, rollup, rt.bucket_ns, now);
        evaluation.add_windows(&rt.def, rollup, rt.bucket_ns, watched);
        InstanceStatus { group, evaluation }
    };
    let mut instances = Vec::with_capacity(st.groups.len().max(1));
    for (key, rollup) in &st.groups {
        instances.push(instance(group_map(&rt.def.group_by, key), rollup));
    }
    if instances.is_empty() && rt.def.group_by.is_empty() {
        let empty = Rollup::new(rt.def.budgeting, 1, 0);
        instances.push(instance(BTreeMap::new(), &empty));
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
        excluded_now: st
            .occurrences
            .iter()
            .filter(|o| o.start_ns <= now && now < o.end_ns)
            .cloned()
            .collect(),
    }
}

//! Causes of new alerts: example bad traces and over-represented attribute
//! values, looked up once per SLO instance when its alerts start firing (and
//! on demand for the SLO page).

use smolder_common::Tenant;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use smolder_slo::engine::Snapshot;

use super::runtime::Runtime;
use super::{Alerting, Error, Inner};
use crate::alert::{group_label, set_cause_annotations};

/// What a cause lookup found for its alerts: (fingerprints, (example trace
/// ids, hints)).
pub(super) type FoundCauses = Vec<(Vec<String>, (Vec<String>, Vec<crate::alert::Hint>))>;

/// One cause lookup: the SLO, the group, the window and the alerts it serves.
pub(super) type CauseLookup = (
    Arc<smolder_slo::SloDefinition>,
    BTreeMap<String, String>,
    Duration,
    Vec<String>,
);

/// One lookup per SLO instance among the alerts that started firing, over
/// the shortest window of those alerts (none when examples are off).
pub(super) fn cause_lookups(
    rt: &Runtime,
    snapshot: &Snapshot,
    inner: &Inner,
    step: &crate::alert::Step,
) -> Vec<CauseLookup> {
    if rt.config.examples == 0 {
        return Vec::new();
    }
    let mut instances: BTreeMap<String, CauseLookup> = BTreeMap::new();
    for fp in &step.fired {
        let Some(alert) = inner.lifecycle.active.get(fp) else {
            continue;
        };
        let Some(status) = snapshot.slos.iter().find(|s| s.definition.id == alert.slo) else {
            continue;
        };
        let group: BTreeMap<String, String> = status
            .definition
            .group_by
            .iter()
            .filter_map(|g| alert.labels.get(g).map(|v| (g.clone(), v.clone())))
            .collect();
        // The short window of the condition that fired.
        let window = status
            .definition
            .alert_windows
            .iter()
            .find(|w| alert.labels.get("condition") == Some(&w.name))
            .map_or(Duration::from_secs(300), |w| w.short);
        let key = format!("{}|{}", alert.slo, group_label(&group));
        let entry = instances
            .entry(key)
            .or_insert_with(|| (Arc::clone(&status.definition), group, window, Vec::new()));
        entry.2 = entry.2.min(window);
        entry.3.push(fp.clone());
    }
    instances.into_values().collect()
}

/// Puts what the lookups found on the alerts (and their changed copies).
pub(super) fn apply_causes(inner: &mut Inner, step: &mut crate::alert::Step, found: FoundCauses) {
    for (fps, (ids, hints)) in found {
        for fp in fps {
            let Some(alert) = inner.lifecycle.active.get_mut(&fp) else {
                continue;
            };
            alert.examples.clone_from(&ids);
            alert.hints.clone_from(&hints);
            set_cause_annotations(alert);
            let updated = alert.clone();
            if let Some(c) = step.changed.iter_mut().find(|c| c.fingerprint == fp) {
                *c = updated;
            }
        }
    }
}

impl Alerting {
    /// Example traces and hints for each looked-up SLO instance; the
    /// queries run concurrently, each for 2 s at most.
    pub(super) async fn find_causes(
        &self,
        rt: &Runtime,
        lookups: Vec<CauseLookup>,
        now: i64,
    ) -> FoundCauses {
        let examples = rt.config.examples;
        let lookups = lookups
            .into_iter()
            .map(|(def, group, window, fps)| async move {
                let started = std::time::Instant::now();
                let found = crate::cause::find(
                    &self.query,
                    &def,
                    &group,
                    window,
                    now,
                    examples,
                    Duration::from_secs(2),
                )
                .await;
                let found = match found {
                    Ok(f) => f,
                    Err(e) => {
                        tracing::warn!(slo = %def.id, error = %e, "Looking for causes failed; skipped.");
                        Default::default()
                    }
                };
                tracing::debug!(
                    slo = %def.id,
                    ms = started.elapsed().as_secs_f64() * 1e3,
                    examples = found.0.len(),
                    hints = found.1.len(),
                    "Looked for causes."
                );
                (fps, found)
            });
        futures::future::join_all(lookups).await
    }

    /// Example bad trace ids and over-represented attribute values of an SLO
    /// instance over the last `window` (the SLO detail page asks for them
    /// whether or not an alert fires). `group` defaults to the worst group.
    pub async fn causes(
        &self,
        tenant: &Tenant,
        slo: &str,
        group: Option<BTreeMap<String, String>>,
        window: Duration,
    ) -> Result<(Vec<String>, Vec<crate::alert::Hint>), Error> {
        let snapshot = self
            .snapshot()
            .await
            .ok_or_else(|| Error::NotFound("no SLO evaluation yet".into()))?;
        let status = snapshot
            .slos
            .iter()
            .find(|s| s.definition.id == slo && s.definition.tenant == *tenant)
            .ok_or_else(|| Error::NotFound(format!("no SLO {slo:?}")))?;
        let group = match group {
            Some(g) => g,
            None => status
                .instances
                .first()
                .map(|i| i.group.clone())
                .unwrap_or_default(),
        };
        let examples = self.runtime().config.examples.max(1);
        let now = self.clock.now_ns();
        crate::cause::find(
            &self.query,
            &status.definition,
            &group,
            window,
            now,
            examples,
            Duration::from_secs(10),
        )
        .await
        .map_err(Error::Invalid)
    }
}

//! Why an alert is not notified: silences (and maintenance windows) that
//! match it, and firing alerts that inhibit it.

use std::collections::HashMap;

use serde::Serialize;

use super::runtime::{Inhibit, Runtime};
use super::{Alerting, Inner};
use crate::alert::{Alert, State, TENANT_LABEL};
use crate::silence::{ActiveSilence, Silence};

/// Why an alert is not notified.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Suppression {
    /// Silences (and maintenance windows, `maintenance/<name>`) matching it.
    pub silenced_by: Vec<String>,
    /// Firing alerts that inhibit it.
    pub inhibited_by: Vec<String>,
}

impl Suppression {
    /// Whether it is suppressed.
    pub fn any(&self) -> bool {
        !self.silenced_by.is_empty() || !self.inhibited_by.is_empty()
    }
}

/// Firing sources of an inhibition rule by the values of its `equal` labels.
type SourcesByEqual = HashMap<Vec<Option<String>>, Vec<String>>;

/// The values of a rule's `equal` labels for an alert, its tenant first: an
/// alert inhibits only alerts of its own tenant, whatever `equal` says.
fn equal_key(equal: &[String], a: &Alert) -> Vec<Option<String>> {
    std::iter::once(a.labels.get(TENANT_LABEL).cloned())
        .chain(equal.iter().map(|l| a.labels.get(l).cloned()))
        .collect()
}

pub(super) struct Suppressor {
    silences: Vec<ActiveSilence>,
    /// Each inhibition rule with its firing sources, indexed by the values
    /// of the rule's `equal` labels: finding an alert's inhibitors is one
    /// lookup, not a pass over every firing alert (thousands at once in a
    /// large incident).
    rules: Vec<(Inhibit, SourcesByEqual)>,
}

impl Suppressor {
    pub(super) fn why(&self, a: &Alert) -> Suppression {
        let silenced_by = self
            .silences
            .iter()
            .filter(|s| s.matches(&a.labels))
            .map(|s| s.id.clone())
            .collect();
        let mut inhibited_by: Vec<String> = Vec::new();
        for (rule, sources) in &self.rules {
            if !rule.target.matches(&a.labels) {
                continue;
            }
            let key = equal_key(&rule.equal, a);
            for fp in sources.get(&key).into_iter().flatten() {
                if *fp != a.fingerprint && !inhibited_by.contains(fp) {
                    inhibited_by.push(fp.clone());
                }
            }
        }
        Suppression {
            silenced_by,
            inhibited_by,
        }
    }
}

impl Alerting {
    pub(super) fn suppressor(&self, rt: &Runtime, inner: &Inner, now: i64) -> Suppressor {
        suppressor(rt, &inner.silences, &inner.lifecycle.active, now)
    }
}

/// What suppresses alerts at `now`: the silences and maintenance windows
/// active then, and the inhibition rules with the firing alerts among
/// `active` as their sources.
pub(super) fn suppressor(
    rt: &Runtime,
    silences: &[Silence],
    active: &HashMap<String, Alert>,
    now: i64,
) -> Suppressor {
    let now_utc = chrono::DateTime::from_timestamp_nanos(now);
    let mut silences: Vec<ActiveSilence> = silences
        .iter()
        .filter(|s| s.status(now_utc) == "active")
        .filter_map(ActiveSilence::new)
        .collect();
    silences.extend(rt.maintenance.iter().filter_map(|m| m.active(now_utc)));
    let rules = rt
        .inhibit
        .iter()
        .map(|rule| {
            let mut sources = SourcesByEqual::new();
            for a in active.values() {
                if a.state == State::Firing && rule.source.matches(&a.labels) {
                    let key = equal_key(&rule.equal, a);
                    sources.entry(key).or_default().push(a.fingerprint.clone());
                }
            }
            (rule.clone(), sources)
        })
        .collect();
    Suppressor { silences, rules }
}

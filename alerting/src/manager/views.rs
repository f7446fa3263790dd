//! What the API and `/metrics` show of the alerting stage's state.

use std::sync::Arc;

use serde::Serialize;
use smolder_common::Tenant;
use smolder_slo::engine::Snapshot;

use super::suppress::Suppression;
use super::{Alerting, Error};
use crate::alert::{Alert, State, Transition};

/// An active alert as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct AlertStatus {
    /// The alert.
    #[serde(flatten)]
    pub alert: Alert,
    /// `pending`, `firing`, or `suppressed` (firing but silenced or
    /// inhibited).
    pub status: &'static str,
    /// Since when it is in its state (RFC 3339).
    pub since: String,
    /// Silences and inhibitions.
    pub suppressed: Suppression,
    /// Receivers its routes lead to.
    pub receivers: Vec<String>,
}

impl Alerting {
    /// Active alerts by state (`pending`, `firing`, `suppressed`); `None`
    /// while an evaluation holds the state (a scrape does not wait for it).
    pub fn alert_counts(&self) -> Option<Vec<(&'static str, usize)>> {
        let mut counts = vec![("pending", 0), ("firing", 0), ("suppressed", 0)];
        let inner = self.inner.try_lock().ok()?;
        let rt = self.runtime();
        let suppressor = self.suppressor(&rt, &inner, self.clock.now_ns());
        for a in inner.lifecycle.active.values() {
            let i = match a.state {
                State::Pending => 0,
                _ if suppressor.why(a).any() => 2,
                _ => 1,
            };
            counts[i].1 += 1;
        }
        Some(counts)
    }

    /// `tenant`'s active alerts (pending and firing), most severe and
    /// oldest first.
    pub async fn alerts(&self, tenant: &Tenant) -> Vec<AlertStatus> {
        let rt = self.runtime();
        let now = self.clock.now_ns();
        let inner = self.inner.lock().await;
        let suppressor = self.suppressor(&rt, &inner, now);
        let mut out: Vec<AlertStatus> = inner
            .lifecycle
            .active
            .values()
            .filter(|a| a.tenant() == *tenant)
            .map(|a| {
                let suppressed = suppressor.why(a);
                let status = match a.state {
                    State::Pending => "pending",
                    _ if suppressed.any() => "suppressed",
                    _ => "firing",
                };
                AlertStatus {
                    since: crate::render::rfc3339(a.fired_at.unwrap_or(a.active_since)),
                    status,
                    suppressed,
                    receivers: rt
                        .route
                        .as_ref()
                        .map(|r| {
                            r.routes_for(&a.labels)
                                .iter()
                                .map(|r| r.receiver.clone())
                                .collect()
                        })
                        .unwrap_or_default(),
                    alert: a.clone(),
                }
            })
            .collect();
        let rank = |s: &AlertStatus| match s.alert.labels.get("severity").map(String::as_str) {
            Some("page") => 0,
            Some("ticket") => 1,
            _ => 2,
        };
        out.sort_by(|a, b| {
            rank(a)
                .cmp(&rank(b))
                .then(a.alert.active_since.cmp(&b.alert.active_since))
                .then(a.alert.fingerprint.cmp(&b.alert.fingerprint))
        });
        out
    }

    /// `tenant`'s alerts' state changes, newest first.
    pub fn history(
        &self,
        tenant: &Tenant,
        slo: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Transition>, Error> {
        Ok(self.store.history(tenant, slo, limit)?)
    }

    /// The latest SLO snapshot seen.
    pub async fn snapshot(&self) -> Option<Arc<Snapshot>> {
        self.inner.lock().await.snapshot.clone()
    }
}

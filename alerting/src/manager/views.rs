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

/// What the receiver of one notification was sent.
#[derive(Debug, Clone, Serialize)]
pub struct SentPayload {
    /// The notification as queued: status, group, alerts.
    pub notification: crate::notification::Notification,
    /// The body its receiver sends, as JSON (or text when it is not JSON),
    /// secrets in it replaced; `None` for email, which sends mail, and when
    /// the receiver is no longer configured.
    pub payload: Option<serde_json::Value>,
}

impl Alerting {
    /// `tenant`'s notification `id` and the body its receiver sends for it
    /// (rendered again from the queued notification with the receiver's
    /// current configuration; the URL and headers, which may hold secrets,
    /// are left out, and so is a PagerDuty routing key).
    pub fn sent_payload(&self, tenant: &Tenant, id: &str) -> Result<Option<SentPayload>, Error> {
        let Some(notification) = self.store.notification(tenant, id)? else {
            return Ok(None);
        };
        let rt = self.runtime();
        let payload = rt
            .receivers
            .get(&notification.receiver)
            .and_then(|r| r.request(&notification).ok())
            .map(|req| {
                let mut v = serde_json::from_slice(&req.body).unwrap_or_else(|_| {
                    serde_json::Value::String(String::from_utf8_lossy(&req.body).into_owned())
                });
                if let Some(key) = v.get_mut("routing_key") {
                    *key = serde_json::Value::String("(secret)".to_string());
                }
                v
            });
        Ok(Some(SentPayload {
            notification,
            payload,
        }))
    }
}

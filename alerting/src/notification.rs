//! What a notification carries: a group of alerts for one receiver (or a
//! scaling request), as written to the outbox before it is sent.

use serde::{Deserialize, Serialize};
use smolder_common::Tenant;

use crate::alert::{Alert, Labels};

/// One notification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// Stable id, sent as the idempotency key (`webhook-id`) on every
    /// attempt.
    pub id: String,
    /// The receiver.
    pub receiver: String,
    /// The alert group (route and grouping labels).
    pub group_key: String,
    /// The grouping labels and their values.
    pub group_labels: Labels,
    /// `firing` when any alert fires, else `resolved`.
    pub status: String,
    /// Firing alerts, then resolved ones.
    pub alerts: Vec<Alert>,
    /// When it was created (Unix ns).
    pub created_at: i64,
    /// Id of the first notification of this incident of the group, for mail
    /// threading (equal to `id` for the first).
    pub thread: String,
    /// Base URL of the web UI.
    pub external_url: String,
    /// For Alertmanager receivers: how long a firing alert stays valid.
    #[serde(default)]
    pub resend_interval_ns: i64,
    /// Set for scaling webhooks.
    #[serde(default)]
    pub scaling: Option<ScalingRequest>,
    /// Set for a scheduled SLO report (email receivers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<ReportMail>,
    /// Whose alerts (or scaling request) it carries: one tenant's only.
    #[serde(default)]
    pub tenant: Tenant,
}

/// A scheduled SLO report as mailed: rendered when its period ended, so a
/// retry after a restart sends the same mail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportMail {
    /// The subject.
    pub subject: String,
    /// The plain text part.
    pub text: String,
    /// The HTML part (its charts referred to by Content-ID).
    pub html: String,
    /// The charts: Content-ID and the PNG in base64.
    pub charts: Vec<(String, String)>,
}

/// A request to an autoscaler.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScalingRequest {
    /// `scale_up` or `scale_down`.
    pub action: String,
    /// The scaling target's name.
    pub target: String,
    /// The SLO.
    pub slo: String,
    /// The SLO instance's group values.
    pub group: Labels,
    /// The burn rate that decided: over the target's window, or the short
    /// window of the fast-burn condition.
    pub burn_rate: f64,
    /// Its window.
    pub window: String,
    /// The threshold the burn rate crossed: `scale_up_at` (a burn-driven
    /// scale-up) or `scale_down_below`; none for a scale-up on an alert.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    /// The alert that scaled up.
    pub alert: Option<String>,
    /// Why.
    pub reason: String,
    /// The SLO's tenant, for another tenant's than the default one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<Tenant>,
}

impl Notification {
    /// Labels shared by every alert.
    pub fn common_labels(&self) -> Labels {
        common(self.alerts.iter().map(|a| &a.labels))
    }

    /// Annotations shared by every alert.
    pub fn common_annotations(&self) -> Labels {
        common(self.alerts.iter().map(|a| &a.annotations))
    }

    /// Alerts that fire.
    pub fn firing(&self) -> impl Iterator<Item = &Alert> {
        self.alerts
            .iter()
            .filter(|a| a.state == crate::alert::State::Firing)
    }

    /// Alerts that resolved.
    pub fn resolved(&self) -> impl Iterator<Item = &Alert> {
        self.alerts
            .iter()
            .filter(|a| a.state == crate::alert::State::Resolved)
    }
}

fn common<'a>(mut sets: impl Iterator<Item = &'a Labels>) -> Labels {
    let Some(first) = sets.next() else {
        return Labels::new();
    };
    let mut out = first.clone();
    for s in sets {
        out.retain(|k, v| s.get(k) == Some(v));
    }
    out
}

/// A new notification id: `msg_` and 26 characters of time and randomness,
/// sortable by creation.
pub fn new_id(now_ns: i64) -> String {
    let r: u64 = rand::random();
    format!("msg_{now_ns:016x}{r:016x}")
}

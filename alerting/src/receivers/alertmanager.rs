//! `type = "alertmanager"`: alerts POSTed to an Alertmanager's
//! `/api/v2/alerts`, firing ones re-sent every `resend_interval` as
//! Prometheus does.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::config::HttpUrl;
use super::json_bytes;
use crate::notification::Notification;
use crate::render::{AlertView, rfc3339};

/// An Alertmanager's settings.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The Alertmanager's base URL.
    pub url: HttpUrl,
    /// How often firing alerts are re-sent.
    #[serde(default = "default_resend", with = "humantime_serde")]
    pub resend_interval: Duration,
}

fn default_resend() -> Duration {
    Duration::from_secs(60)
}

impl Config {
    pub(crate) fn request(&self, n: &Notification) -> (String, Vec<u8>) {
        let url = format!("{}/api/v2/alerts", self.url.as_str().trim_end_matches('/'));
        (url, json_bytes(&payload(n)))
    }
}

/// Alerts for Alertmanager's `POST /api/v2/alerts`: firing ones valid for
/// four resend intervals (as Prometheus does), resolved ones ending when
/// they resolved.
pub fn payload(n: &Notification) -> Value {
    let valid_until = n.created_at + 4 * n.resend_interval_ns.max(1_000_000_000);
    Value::Array(
        n.alerts
            .iter()
            .map(|a| {
                let v = AlertView::of(a);
                json!({
                    "labels": a.labels,
                    "annotations": a.annotations,
                    "startsAt": v.starts_at,
                    "endsAt": a.resolved_at.map_or_else(|| rfc3339(valid_until), rfc3339),
                    "generatorURL": a.annotations.get("slo_url").cloned().unwrap_or_default(),
                })
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::receivers::fixture::rendered;

    #[test]
    fn payloads_are_pinned() {
        for status in ["firing", "resolved"] {
            let (n, _) = rendered(status);
            insta::assert_json_snapshot!(format!("alertmanager_api_{status}"), payload(&n));
        }
    }
}

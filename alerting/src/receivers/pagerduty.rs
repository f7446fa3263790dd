//! `type = "pagerduty"`: PagerDuty Events API v2 — trigger while any alert
//! of the group fires, resolve when the group resolved, with a `dedup_key`
//! stable for the group at this receiver.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use smolder_common::secret::Secret;
use smolder_slo::model::Severity;

use super::config::HttpUrl;
use super::{json_bytes, truncate};
use crate::notification::Notification;
use crate::render::{self, Texts, rfc3339};

/// PagerDuty's settings.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The integration's routing key.
    pub routing_key: Secret,
    /// The Events API endpoint.
    #[serde(default = "default_url")]
    pub url: HttpUrl,
}

fn default_url() -> HttpUrl {
    HttpUrl::new("https://events.pagerduty.com/v2/enqueue").expect("a valid URL")
}

impl Config {
    pub(crate) fn request(&self, n: &Notification) -> Result<(String, Vec<u8>), String> {
        let texts = render::texts(n, None)?;
        let body = payload(n, &texts, self.routing_key.expose());
        Ok((self.url.to_string(), json_bytes(&body)))
    }
}

/// PagerDuty Events API v2: trigger while any alert fires, resolve when the
/// group resolved; the `dedup_key` is stable for the group.
pub fn payload(n: &Notification, t: &Texts, routing_key: &str) -> Value {
    let dedup_key = dedup_key(&n.receiver, &n.group_key);
    if n.status == "resolved" {
        return json!({
            "routing_key": routing_key,
            "event_action": "resolve",
            "dedup_key": dedup_key,
        });
    }
    // PagerDuty's severities, from the most urgent alert's.
    let severity = match n
        .firing()
        .filter_map(|a| a.labels.get("severity"))
        .map(|s| Severity::from(s.as_str()).rank())
        .min()
    {
        Some(0) => "critical",
        Some(1) => "error",
        Some(2) => "warning",
        _ => "info",
    };
    let first = n.firing().next();
    let mut links = Vec::new();
    if let Some(url) = first.and_then(|a| a.annotations.get("slo_url")) {
        links.push(json!({"href": url, "text": "SLO in smolder"}));
    }
    if let Some(url) = first.and_then(|a| a.annotations.get("runbook_url")) {
        links.push(json!({"href": url, "text": "Runbook"}));
    }
    json!({
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": dedup_key,
        "payload": {
            "summary": truncate(&t.title, 1024),
            "source": first.map_or("smolder", |a| a.labels.get("service").map_or("smolder", String::as_str)),
            "severity": severity,
            "timestamp": rfc3339(n.created_at),
            "component": first.map(|a| a.slo.clone()),
            "group": n.group_labels.get("slo"),
            "class": if first.is_some_and(|a| a.labels.get("severity").is_some_and(|s| s == crate::alert::BUDGET_SEVERITY)) { "slo_error_budget" } else { "slo_burn_rate" },
            "custom_details": {
                "text": t.text,
                "alerts": n.firing().map(|a| &a.annotations).collect::<Vec<_>>(),
            },
        },
        "links": links,
        "client": "smolder",
        "client_url": n.external_url,
    })
}

/// A stable key for a group at a receiver.
pub fn dedup_key(receiver: &str, group_key: &str) -> String {
    use sha2::{Digest as _, Sha256};
    let mut h = Sha256::new();
    h.update(receiver.as_bytes());
    h.update([0]);
    h.update(group_key.as_bytes());
    hex::encode(&h.finalize()[..16])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::receivers::fixture::rendered;

    #[test]
    fn payloads_are_pinned() {
        for status in ["firing", "resolved"] {
            let (n, texts) = rendered(status);
            insta::assert_json_snapshot!(
                format!("pagerduty_{status}"),
                payload(&n, &texts, "R0UTINGKEY")
            );
        }
    }
}

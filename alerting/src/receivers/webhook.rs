//! `type = "webhook"`: a JSON POST in smolder's own format (version 1,
//! documented in the README), in Alertmanager's webhook format (version 4),
//! or a body rendered from the receiver's template; optionally signed with a
//! Standard Webhooks secret. Scaling targets use this kind too.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use smolder_common::secret::Secret;

use super::config::{HttpUrl, check_template};
use super::json_bytes;
use crate::notification::Notification;
use crate::render::{self, AlertView, rfc3339};

/// A webhook's settings.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// URL to POST to.
    pub url: HttpUrl,
    /// `smolder` (default) or `alertmanager` (webhook v4).
    #[serde(default)]
    pub format: Format,
    /// A minijinja template for the request body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    /// Standard Webhooks secret (`whsec_…`): requests carry `webhook-id`,
    /// `webhook-timestamp` and `webhook-signature`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<Secret>,
}

/// Body format of a webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// smolder's own format (documented in the README).
    #[default]
    Smolder,
    /// Alertmanager's webhook payload, version 4.
    Alertmanager,
}

impl Config {
    pub(crate) fn check(&self, out: &mut Vec<(String, String)>) {
        if let Some(s) = &self.secret
            && let Err(e) = crate::sign::Signer::new(s.expose())
        {
            out.push(("secret".into(), e));
        }
        check_template(self.template.as_deref(), out);
    }

    /// The URL and body for a notification (scaling requests always in
    /// smolder's format).
    pub(crate) fn request(&self, n: &Notification) -> Result<(String, Vec<u8>), String> {
        let body = match (&self.template, self.format) {
            (Some(t), _) if n.scaling.is_none() => render::custom(n, t)?.into_bytes(),
            (_, Format::Alertmanager) if n.scaling.is_none() => json_bytes(&alertmanager_v4(n)),
            _ => json_bytes(&smolder(n)),
        };
        Ok((self.url.to_string(), body))
    }
}

/// smolder's own webhook format (version 1), documented in the README.
pub fn smolder(n: &Notification) -> Value {
    if let Some(s) = &n.scaling {
        return json!({
            "version": "1",
            "type": "scaling",
            "id": n.id,
            "action": s.action,
            "target": s.target,
            "slo": s.slo,
            "group": s.group,
            "burn_rate": s.burn_rate,
            "window": s.window,
            "threshold": s.threshold,
            "alert": s.alert,
            "reason": s.reason,
            "created_at": rfc3339(n.created_at),
        });
    }
    json!({
        "version": "1",
        "type": "alerts",
        "id": n.id,
        "receiver": n.receiver,
        "status": n.status,
        "group_key": n.group_key,
        "group_labels": n.group_labels,
        "common_labels": n.common_labels(),
        "common_annotations": n.common_annotations(),
        "external_url": n.external_url,
        "created_at": rfc3339(n.created_at),
        "alerts": n.alerts.iter().map(AlertView::of).collect::<Vec<_>>(),
    })
}

/// Alertmanager's webhook payload, version 4.
pub fn alertmanager_v4(n: &Notification) -> Value {
    json!({
        "version": "4",
        "groupKey": n.group_key,
        "truncatedAlerts": 0,
        "status": n.status,
        "receiver": n.receiver,
        "groupLabels": n.group_labels,
        "commonLabels": n.common_labels(),
        "commonAnnotations": n.common_annotations(),
        "externalURL": n.external_url,
        "alerts": n.alerts.iter().map(|a| {
            let v = AlertView::of(a);
            json!({
                "status": v.status,
                "labels": a.labels,
                "annotations": a.annotations,
                "startsAt": v.starts_at,
                // Alertmanager's zero time for alerts that have not ended.
                "endsAt": if v.ends_at.is_empty() { "0001-01-01T00:00:00Z".to_string() } else { v.ends_at },
                "generatorURL": a.annotations.get("slo_url").cloned().unwrap_or_default(),
                "fingerprint": a.fingerprint,
            })
        }).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::receivers::fixture::rendered;

    fn templated(template: &str) -> Config {
        Config {
            url: HttpUrl::new("http://127.0.0.1:1/hook").unwrap(),
            format: Format::Smolder,
            template: Some(template.into()),
            secret: None,
        }
    }

    #[test]
    fn a_json_template_stays_valid_json_whatever_the_telemetry_says() {
        let (mut n, _) = rendered("firing");
        let evil = "boom\", \"injected\": true, \"x\": \"";
        n.alerts[0]
            .annotations
            .insert("summary".into(), evil.into());
        n.alerts[0].hints[0].value = "back\\slash\n</script>\u{1}".into();
        let config = templated(
            r#"{"text": "{{ alerts[0].annotations.summary }}", "hint": "{{ alerts[0].hints[0].value }}",
                "firing": {{ firing|length }}, "labels": {{ common_labels }}, "raw": {{ status|tojson }}}"#,
        );
        let (_, body) = config.request(&n).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["text"], evil);
        assert_eq!(v["hint"], "back\\slash\n</script>\u{1}");
        assert!(v.get("injected").is_none(), "{v}");
        assert_eq!(v["firing"], 1);
        assert_eq!(v["labels"]["slo"], "checkout-availability");
        assert_eq!(v["raw"], "firing");
    }

    #[test]
    fn a_template_that_renders_invalid_json_is_an_error_not_a_request() {
        let (n, _) = rendered("firing");
        let err = templated("{\"text\": {{ alerts[0].annotations.summary }}}")
            .request(&n)
            .unwrap_err();
        assert!(err.contains("invalid JSON"), "{err}");
    }

    #[test]
    fn payloads_are_pinned() {
        for status in ["firing", "resolved"] {
            let (n, _) = rendered(status);
            insta::assert_json_snapshot!(format!("smolder_{status}"), smolder(&n));
            insta::assert_json_snapshot!(
                format!("alertmanager_webhook_{status}"),
                alertmanager_v4(&n)
            );
        }
    }
}

//! Request bodies of the HTTP receivers, in the formats their services
//! document.

use serde_json::{Value, json};
use smolder_slo::model::Severity;

use crate::notification::Notification;
use crate::render::{AlertView, Texts, rfc3339};

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
pub fn alertmanager_webhook(n: &Notification) -> Value {
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

/// Alerts for Alertmanager's `POST /api/v2/alerts`: firing ones valid for
/// four resend intervals (as Prometheus does), resolved ones ending when
/// they resolved.
pub fn alertmanager_api(n: &Notification) -> Value {
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

fn severity_colour(n: &Notification) -> (&'static str, u32) {
    if n.status == "resolved" {
        ("good", 0x2e7d32)
    } else if n.firing().any(|a| {
        a.labels
            .get("severity")
            .is_some_and(|s| Severity::from(s.as_str()).is_page())
    }) {
        ("danger", 0xc62828)
    } else {
        ("warning", 0xef6c00)
    }
}

/// Slack (and Mattermost) incoming webhook: `text` as the fallback and
/// `blocks` for the message.
pub fn slack(n: &Notification, t: &Texts, channel: Option<&str>) -> Value {
    let mut blocks = vec![json!({
        "type": "header",
        "text": {"type": "plain_text", "text": truncate(&t.title, 150)},
    })];
    blocks.push(json!({
        "type": "section",
        "text": {"type": "mrkdwn", "text": truncate(&t.text, 3000)},
    }));
    if let Some(url) = n.alerts.first().and_then(|a| a.annotations.get("slo_url")) {
        blocks.push(json!({
            "type": "actions",
            "elements": [{"type": "button", "text": {"type": "plain_text", "text": "Open the SLO"}, "url": url}],
        }));
    }
    let mut body = json!({
        "text": format!("{}\n{}", t.title, t.text),
        "blocks": blocks,
        "attachments": [{"color": severity_colour(n).0, "fallback": t.title}],
    });
    if let Some(c) = channel {
        body["channel"] = json!(c);
    }
    body
}

/// Microsoft Teams Workflows webhook: a message with an adaptive card.
pub fn teams(n: &Notification, t: &Texts) -> Value {
    let mut facts = Vec::new();
    for a in n.alerts.iter().take(10) {
        facts.push(json!({
            "title": a.labels.get("slo").cloned().unwrap_or_default(),
            "value": a.annotations.get("summary").cloned().unwrap_or_default(),
        }));
    }
    let colour = if n.status == "resolved" {
        "Good"
    } else {
        "Attention"
    };
    let mut actions = Vec::new();
    if let Some(url) = n.alerts.first().and_then(|a| a.annotations.get("slo_url")) {
        actions.push(json!({"type": "Action.OpenUrl", "title": "Open the SLO", "url": url}));
    }
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "body": [
                    {"type": "TextBlock", "text": t.title, "weight": "Bolder", "size": "Medium", "color": colour, "wrap": true},
                    {"type": "TextBlock", "text": t.text, "wrap": true},
                    {"type": "FactSet", "facts": facts},
                ],
                "actions": actions,
            },
        }],
    })
}

/// Discord webhook: `content` and one embed per alert (at most 10).
pub fn discord(n: &Notification, t: &Texts) -> Value {
    let colour = severity_colour(n).1;
    let embeds: Vec<Value> = n
        .alerts
        .iter()
        .take(10)
        .map(|a| {
            let v = AlertView::of(a);
            let mut e = json!({
                "title": truncate(a.annotations.get("summary").map_or("", String::as_str), 256),
                "description": truncate(a.annotations.get("description").map_or("", String::as_str), 4096),
                "color": if v.status == "resolved" { 0x2e7d32 } else { colour },
                "timestamp": if v.ends_at.is_empty() { v.starts_at.clone() } else { v.ends_at.clone() },
                "fields": [
                    {"name": "SLO", "value": a.slo, "inline": true},
                    {"name": "Severity", "value": a.labels.get("severity").cloned().unwrap_or_default(), "inline": true},
                    {"name": "Window", "value": a.labels.get("window").cloned().unwrap_or_default(), "inline": true},
                ],
            });
            if let Some(url) = a.annotations.get("slo_url") {
                e["url"] = json!(url);
            }
            e
        })
        .collect();
    json!({
        "content": truncate(&t.title, 2000),
        "embeds": embeds,
        "allowed_mentions": {"parse": []},
    })
}

/// Google Chat space webhook: a text message.
pub fn google_chat(t: &Texts) -> Value {
    json!({ "text": truncate(&format!("*{}*\n{}", t.title, t.text), 4000) })
}

/// PagerDuty Events API v2: trigger while any alert fires, resolve when the
/// group resolved; the `dedup_key` is stable for the group.
pub fn pagerduty(n: &Notification, t: &Texts, routing_key: &str) -> Value {
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
            "class": "slo_burn_rate",
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

fn truncate(s: &str, max_chars: usize) -> String {
    if s.chars().count() <= max_chars {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max_chars.saturating_sub(1)).collect();
    out.push('…');
    out
}

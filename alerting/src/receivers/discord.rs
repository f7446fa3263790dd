//! `type = "discord"`: `content` and one embed per alert (at most 10).

use serde_json::{Value, json};

/// Its settings: a URL and a text template, like the other plain chat kinds.
pub use super::config::ChatConfig as Config;

use super::{severity_colour, truncate};
use crate::alert::Alert;
use crate::notification::Notification;
use crate::render::{AlertView, Texts};

/// Discord webhook: `content` and one embed per alert (at most 10).
pub fn payload(n: &Notification, t: &Texts) -> Value {
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
                    condition_field(a),
                ],
            });
            if let Some(url) = a.annotations.get("slo_url") {
                e["url"] = json!(url);
            }
            if let Some(url) = a.annotations.get("burn_chart_url") {
                e["image"] = json!({"url": url});
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

/// The window pair of a burn-rate alert, or the condition of a budget event
/// (Discord refuses empty field values; budget events have no window).
fn condition_field(a: &Alert) -> Value {
    match (a.labels.get("window"), a.labels.get("condition")) {
        (Some(w), _) => json!({"name": "Window", "value": w, "inline": true}),
        (None, c) => {
            json!({"name": "Condition", "value": c.map_or("-", String::as_str), "inline": true})
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::receivers::fixture::rendered;

    #[test]
    fn payloads_are_pinned() {
        for status in ["firing", "resolved"] {
            let (n, texts) = rendered(status);
            insta::assert_json_snapshot!(format!("discord_{status}"), payload(&n, &texts));
        }
    }
}

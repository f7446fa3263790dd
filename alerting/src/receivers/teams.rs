//! `type = "teams"`: a Microsoft Teams Workflows webhook message with an
//! adaptive card.

use serde_json::{Value, json};

/// Its settings: a URL and a text template, like the other plain chat kinds.
pub use super::config::ChatConfig as Config;

use crate::notification::Notification;
use crate::render::Texts;

/// Microsoft Teams Workflows webhook: a message with an adaptive card.
pub fn payload(n: &Notification, t: &Texts) -> Value {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::receivers::fixture::rendered;

    #[test]
    fn payloads_are_pinned() {
        for status in ["firing", "resolved"] {
            let (n, texts) = rendered(status);
            insta::assert_json_snapshot!(format!("teams_{status}"), payload(&n, &texts));
        }
    }
}

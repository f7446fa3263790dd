//! `type = "slack"` and `type = "mattermost"` (Slack-compatible): an
//! incoming webhook message with `text` as the fallback and `blocks`.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::config::{WebhookUrl, check_template};
use super::{json_bytes, severity_colour, truncate};
use crate::notification::Notification;
use crate::render::{self, Texts};

/// A Slack (or Mattermost) webhook's settings.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The incoming webhook's URL (a secret: the URL is the credential).
    pub url: WebhookUrl,
    /// Channel override.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// A minijinja template for the message text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
}

impl Config {
    pub(crate) fn check(&self, out: &mut Vec<(String, String)>) {
        check_template(self.template.as_deref(), out);
    }

    pub(crate) fn request(&self, n: &Notification) -> Result<(String, Vec<u8>), String> {
        let texts = render::texts(n, self.template.as_deref())?;
        let body = payload(n, &texts, self.channel.as_deref());
        Ok((self.url.expose().to_string(), json_bytes(&body)))
    }
}

/// Slack (and Mattermost) incoming webhook: `text` as the fallback and
/// `blocks` for the message.
/// Text for Slack's markup: `&`, `<` and `>` escaped as Slack documents, so
/// a value from telemetry cannot become a link or a mention (`<!channel>`).
/// Plain URLs are still linked by Slack.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

pub fn payload(n: &Notification, t: &Texts, channel: Option<&str>) -> Value {
    let mut blocks = vec![json!({
        "type": "header",
        "text": {"type": "plain_text", "text": truncate(&t.title, 150)},
    })];
    blocks.push(json!({
        "type": "section",
        "text": {"type": "mrkdwn", "text": truncate(&escape(&t.text), 3000)},
    }));
    // The first alert's burn-rate chart, which Slack fetches from the
    // signed link.
    if let Some(url) = n
        .alerts
        .first()
        .and_then(|a| a.annotations.get("burn_chart_url"))
    {
        blocks.push(json!({
            "type": "image",
            "image_url": url,
            "alt_text": "Burn rates and error budget around the alert",
        }));
    }
    if let Some(url) = n.alerts.first().and_then(|a| a.annotations.get("slo_url")) {
        blocks.push(json!({
            "type": "actions",
            "elements": [{"type": "button", "text": {"type": "plain_text", "text": "Open the SLO"}, "url": url}],
        }));
    }
    let mut body = json!({
        "text": escape(&format!("{}\n{}", t.title, t.text)),
        "blocks": blocks,
        "attachments": [{"color": severity_colour(n).0, "fallback": t.title}],
    });
    if let Some(c) = channel {
        body["channel"] = json!(c);
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::receivers::fixture::rendered;

    #[test]
    fn telemetry_cannot_mention_or_link_in_slack_markup() {
        let (mut n, _) = rendered("firing");
        n.alerts[0].annotations.insert(
            "summary".into(),
            "<!channel> <https://evil.example|click> & more".into(),
        );
        let texts = crate::render::texts(&n, None).unwrap();
        let body = payload(&n, &texts, None);
        let text = body["blocks"][1]["text"]["text"].as_str().unwrap();
        assert!(
            text.contains("&lt;!channel&gt; &lt;https://evil.example|click&gt; &amp; more"),
            "{text}"
        );
        assert!(!body["text"].as_str().unwrap().contains("<!channel>"));
    }

    #[test]
    fn payloads_are_pinned() {
        for status in ["firing", "resolved"] {
            let (n, texts) = rendered(status);
            insta::assert_json_snapshot!(
                format!("slack_{status}"),
                payload(&n, &texts, Some("#payments"))
            );
        }
    }
}

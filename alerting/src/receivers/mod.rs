//! Receivers: one attempt to deliver a notification, and how its result
//! counts — delivered, worth retrying (5xx, 429, network errors), or refused
//! (other 4xx, with the receiver's answer kept).
//!
//! Each kind of receiver is a module here owning its settings, their checks
//! and its payload (`slack.rs`: [`slack::Config`], [`slack::payload`]);
//! [`config`] reads them from the `[[alerting.receivers]]` entries and this
//! module sends: headers, signatures, timeouts and the classification of
//! answers are the same for every HTTP kind.

pub mod alertmanager;
pub mod config;
pub mod discord;
pub mod email;
#[cfg(test)]
pub(crate) mod fixture;
pub mod google_chat;
pub mod pagerduty;
pub mod slack;
pub mod teams;
pub mod webhook;

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::sync::Semaphore;

use serde_json::Value;
use smolder_slo::model::Severity;

pub use self::config::{Kind, ReceiverConfig};
use crate::config::DeliveryConfig;
use crate::notification::Notification;
use crate::sign::Signer;

/// The result of one attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Accepted.
    Delivered {
        /// HTTP status or SMTP reply code.
        status: Option<u16>,
    },
    /// Failed in a way worth retrying.
    Retry {
        /// HTTP status or SMTP reply code, when there was an answer.
        status: Option<u16>,
        /// What happened.
        error: String,
        /// The receiver's `Retry-After`.
        retry_after: Option<Duration>,
    },
    /// Refused; retrying would not help.
    Failed {
        /// HTTP status or SMTP reply code.
        status: Option<u16>,
        /// The receiver's answer.
        error: String,
    },
}

/// A configured receiver, ready to send.
pub struct Receiver {
    /// Its configuration.
    pub config: ReceiverConfig,
    client: reqwest::Client,
    signer: Option<Signer>,
    mailer: Option<email::Mailer>,
    /// Limits requests in flight.
    pub concurrency: Arc<Semaphore>,
    /// Limits requests per second.
    pub limiter: Option<DefaultDirectRateLimiter>,
    timeout: Duration,
}

impl std::fmt::Debug for Receiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receiver")
            .field("name", &self.config.name)
            .finish_non_exhaustive()
    }
}

impl Receiver {
    /// Builds a receiver from its (validated) configuration.
    pub fn new(
        config: ReceiverConfig,
        delivery: &DeliveryConfig,
        client: reqwest::Client,
    ) -> Result<Self, String> {
        let signer = match &config.kind {
            Kind::Webhook(w) => w
                .secret
                .as_ref()
                .map(|s| Signer::new(s.expose()))
                .transpose()?,
            _ => None,
        };
        let mailer = match &config.kind {
            Kind::Email(e) => Some(email::Mailer::new(e)?),
            _ => None,
        };
        let limiter = config
            .common
            .rate_limit
            .and_then(NonZeroU32::new)
            .map(|n| RateLimiter::direct(Quota::per_second(n)));
        Ok(Self {
            concurrency: Arc::new(Semaphore::new(config.common.max_concurrency.max(1))),
            timeout: config.common.timeout.unwrap_or(delivery.timeout),
            config,
            client,
            signer,
            mailer,
            limiter,
        })
    }

    /// An email receiver that mails the alerts' burn-rate charts inline
    /// (other kinds link them through `burn_chart_url`).
    pub fn with_charts(mut self, charts: Arc<crate::chart::ChartLinks>) -> Self {
        self.mailer = self.mailer.map(|m| m.with_charts(charts));
        self
    }

    /// The receiver's name.
    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// One delivery attempt.
    pub async fn send(&self, n: &Notification) -> Outcome {
        if let Some(mailer) = &self.mailer {
            return mailer.send(n, self.timeout).await;
        }
        let request = match self.request(n) {
            Ok(r) => r,
            Err(e) => {
                return Outcome::Failed {
                    status: None,
                    error: e,
                };
            }
        };
        send_http(&self.client, request, self.timeout).await
    }

    /// The HTTP request for a notification (an error for email, which
    /// sends mail).
    pub fn request(&self, n: &Notification) -> Result<HttpRequest, String> {
        let (url, body) = match &self.config.kind {
            Kind::Email(_) => return Err("email receivers send mail, not HTTP requests".into()),
            Kind::Webhook(c) => c.request(n)?,
            Kind::Alertmanager(c) => c.request(n),
            Kind::Slack(c) | Kind::Mattermost(c) => c.request(n)?,
            Kind::Teams(c) => c.request(n, teams::payload)?,
            Kind::Discord(c) => c.request(n, discord::payload)?,
            Kind::GoogleChat(c) => c.request(n, |_, t| google_chat::payload(t))?,
            Kind::Pagerduty(c) => c.request(n)?,
        };
        let mut headers = vec![
            ("content-type".to_string(), "application/json".to_string()),
            (
                "user-agent".to_string(),
                concat!("smolder/", env!("CARGO_PKG_VERSION")).to_string(),
            ),
            // The idempotency key: the same on every attempt.
            ("webhook-id".to_string(), n.id.clone()),
        ];
        if let Some(signer) = &self.signer {
            let ts = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64);
            headers.push(("webhook-timestamp".to_string(), ts.to_string()));
            headers.push((
                "webhook-signature".to_string(),
                signer.sign(&n.id, ts, &body),
            ));
        }
        for (k, v) in &self.config.common.headers {
            headers.retain(|(name, _)| !name.eq_ignore_ascii_case(k));
            headers.push((k.clone(), v.expose().to_string()));
        }
        Ok(HttpRequest { url, headers, body })
    }
}

/// Serializes a payload.
pub(crate) fn json_bytes(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).expect("JSON values serialize")
}

/// The attachment colour of a notification: (Slack name, RGB).
pub(crate) fn severity_colour(n: &Notification) -> (&'static str, u32) {
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

pub(crate) fn truncate(s: &str, max_chars: usize) -> String {
    if s.chars().count() <= max_chars {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max_chars.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// An HTTP request a receiver makes.
#[derive(Debug, Clone)]
pub struct HttpRequest {
    /// Where to.
    pub url: String,
    /// Headers.
    pub headers: Vec<(String, String)>,
    /// JSON (or templated) body.
    pub body: Vec<u8>,
}

/// POSTs a request and classifies the answer.
pub async fn send_http(client: &reqwest::Client, r: HttpRequest, timeout: Duration) -> Outcome {
    let mut req = client.post(&r.url).timeout(timeout).body(r.body);
    for (k, v) in &r.headers {
        req = req.header(k, v);
    }
    let resp = match req.send().await {
        Ok(resp) => resp,
        Err(e) => {
            return Outcome::Retry {
                status: None,
                // Without the URL: for chat webhooks the URL is the credential.
                error: error_chain(&e.without_url()),
                retry_after: None,
            };
        }
    };
    let status = resp.status();
    let retry_after = resp
        .headers()
        .get(http::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_retry_after);
    if status.is_success() {
        return Outcome::Delivered {
            status: Some(status.as_u16()),
        };
    }
    let answer = resp.text().await.unwrap_or_default();
    let error = format!(
        "HTTP {}: {}",
        status.as_u16(),
        answer.chars().take(500).collect::<String>().trim()
    );
    if status.is_server_error()
        || status == http::StatusCode::TOO_MANY_REQUESTS
        || status == http::StatusCode::REQUEST_TIMEOUT
    {
        Outcome::Retry {
            status: Some(status.as_u16()),
            error,
            retry_after,
        }
    } else {
        Outcome::Failed {
            status: Some(status.as_u16()),
            error,
        }
    }
}

/// `Retry-After`: seconds, or an HTTP date.
pub fn parse_retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(
        at.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        source = inner.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_in_seconds_or_as_a_date() {
        assert_eq!(parse_retry_after("7"), Some(Duration::from_secs(7)));
        let later = SystemTime::now() + Duration::from_secs(30);
        let d = parse_retry_after(&httpdate::fmt_http_date(later)).unwrap();
        assert!(
            d <= Duration::from_secs(30) && d >= Duration::from_secs(28),
            "{d:?}"
        );
        assert_eq!(parse_retry_after("soon"), None);
    }
}

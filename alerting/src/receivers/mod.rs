//! Receivers: one attempt to deliver a notification, and how its result
//! counts — delivered, worth retrying (5xx, 429, network errors), or refused
//! (other 4xx, with the receiver's answer kept).

pub mod email;
pub mod payload;

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::sync::Semaphore;

use crate::config::{DeliveryConfig, ReceiverConfig, ReceiverKind, WebhookFormat};
use crate::notification::Notification;
use crate::render;
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
        let signer = config.secret.as_deref().map(Signer::new).transpose()?;
        let mailer = match config.kind {
            ReceiverKind::Email => Some(email::Mailer::new(&config)?),
            _ => None,
        };
        let limiter = config
            .rate_limit
            .and_then(NonZeroU32::new)
            .map(|n| RateLimiter::direct(Quota::per_second(n)));
        Ok(Self {
            concurrency: Arc::new(Semaphore::new(config.max_concurrency.unwrap_or(4).max(1))),
            timeout: config.timeout.unwrap_or(delivery.timeout),
            config,
            client,
            signer,
            mailer,
            limiter,
        })
    }

    /// The receiver's name.
    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// One delivery attempt.
    pub async fn send(&self, n: &Notification) -> Outcome {
        let request = match self.request(n) {
            Ok(Some(r)) => r,
            Ok(None) => {
                let mailer = self.mailer.as_ref().expect("email receivers have a mailer");
                return mailer
                    .send(n, self.config.template.as_deref(), self.timeout)
                    .await;
            }
            Err(e) => {
                return Outcome::Failed {
                    status: None,
                    error: e,
                };
            }
        };
        send_http(&self.client, request, self.timeout).await
    }

    /// The HTTP request for a notification; `None` for email.
    pub fn request(&self, n: &Notification) -> Result<Option<HttpRequest>, String> {
        use ReceiverKind as K;
        let c = &self.config;
        let texts = || render::texts(n, c.template.as_deref());
        let (url, body) = match c.kind {
            K::Email => return Ok(None),
            K::Webhook => {
                let body = match (&c.template, c.format.unwrap_or_default()) {
                    (Some(t), _) if n.scaling.is_none() => render::custom(n, t)?.into_bytes(),
                    (_, WebhookFormat::Alertmanager) if n.scaling.is_none() => {
                        json_bytes(&payload::alertmanager_webhook(n))
                    }
                    _ => json_bytes(&payload::smolder(n)),
                };
                (self.url()?, body)
            }
            K::Alertmanager => {
                let base = self.url()?;
                let url = format!("{}/api/v2/alerts", base.trim_end_matches('/'));
                (url, json_bytes(&payload::alertmanager_api(n)))
            }
            K::Slack | K::Mattermost => (
                self.url()?,
                json_bytes(&payload::slack(n, &texts()?, c.channel.as_deref())),
            ),
            K::Teams => (self.url()?, json_bytes(&payload::teams(n, &texts()?))),
            K::Discord => (self.url()?, json_bytes(&payload::discord(n, &texts()?))),
            K::GoogleChat => (self.url()?, json_bytes(&payload::google_chat(&texts()?))),
            K::Pagerduty => {
                let url = c
                    .url
                    .clone()
                    .unwrap_or_else(|| "https://events.pagerduty.com/v2/enqueue".to_string());
                let key = c.routing_key.as_deref().unwrap_or_default();
                (url, json_bytes(&payload::pagerduty(n, &texts()?, key)))
            }
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
        for (k, v) in &c.headers {
            headers.retain(|(name, _)| !name.eq_ignore_ascii_case(k));
            headers.push((k.clone(), v.clone()));
        }
        Ok(Some(HttpRequest { url, headers, body }))
    }

    fn url(&self) -> Result<String, String> {
        self.config
            .url
            .clone()
            .ok_or_else(|| "the receiver has no url".to_string())
    }
}

fn json_bytes(v: &serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(v).expect("JSON values serialize")
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
                error: error_chain(&e),
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

//! Alerting metrics on `/metrics`:
//!
//! * `smolder_alerts{state}` — active alerts by state (`pending`, `firing`,
//!   `suppressed`)
//! * `smolder_notification_attempts_total{receiver,outcome}` — delivery
//!   attempts by outcome (`delivered`, `retry`, `failed`, `dead`)
//! * `smolder_notifications_pending` — notifications in the outbox

use std::sync::{Arc, Weak};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use smolder_common::metrics::{counters, gauge, gauges};
use smolder_common::sync::lock;

use crate::Alerting;

/// The collector of the alerting stage's metrics.
#[derive(Debug)]
pub struct AlertingCollector {
    alerting: Weak<Alerting>,
}

impl AlertingCollector {
    /// A collector for `alerting`.
    pub fn new(alerting: &Arc<Alerting>) -> Self {
        Self {
            alerting: Arc::downgrade(alerting),
        }
    }
}

impl Collector for AlertingCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(a) = self.alerting.upgrade() else {
            return Ok(());
        };
        // Scrapes do not wait behind an evaluation: while one runs, the
        // alert counts are left out of that scrape rather than made up.
        if let Some(counts) = a.alert_counts() {
            let samples: Vec<_> = counts
                .into_iter()
                .map(|(state, n)| ([("state", state)], n as i64))
                .collect();
            gauges(&mut encoder, "alerts", "Active alerts by state", &samples)?;
        }
        let attempts = lock(&a.deliverer().stats.attempts).clone();
        let samples: Vec<_> = attempts
            .iter()
            .map(|((receiver, outcome), n)| {
                ([("receiver", receiver.as_str()), ("outcome", *outcome)], *n)
            })
            .collect();
        counters(
            &mut encoder,
            "notification_attempts",
            "Delivery attempts by receiver and outcome",
            &samples,
        )?;
        gauge(
            &mut encoder,
            "notifications_pending",
            "Notifications in the outbox waiting for delivery",
            a.deliverer().pending() as i64,
        )?;
        Ok(())
    }
}

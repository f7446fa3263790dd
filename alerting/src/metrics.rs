//! Alerting metrics on `/metrics`:
//!
//! * `smolder_alerts{state}` — active alerts by state (`pending`, `firing`,
//!   `suppressed`)
//! * `smolder_notification_attempts_total{receiver,outcome}` — delivery
//!   attempts by outcome (`delivered`, `retry`, `failed`, `dead`)
//! * `smolder_notifications_pending` — notifications in the outbox

use std::sync::{Arc, Weak};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric as _};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

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
            let mut m = encoder.encode_descriptor(
                "alerts",
                "Active alerts by state",
                None,
                MetricType::Gauge,
            )?;
            for (state, n) in counts {
                ConstGauge::new(n as i64).encode(m.encode_family(&[("state", state)])?)?;
            }
        }
        let attempts = lock(&a.deliverer().stats.attempts).clone();
        let mut m = encoder.encode_descriptor(
            "notification_attempts",
            "Delivery attempts by receiver and outcome",
            None,
            MetricType::Counter,
        )?;
        for ((receiver, outcome), n) in attempts {
            ConstCounter::new(n).encode(
                m.encode_family(&[("receiver", receiver.as_str()), ("outcome", outcome)])?,
            )?;
        }
        let m = encoder.encode_descriptor(
            "notifications_pending",
            "Notifications in the outbox waiting for delivery",
            None,
            MetricType::Gauge,
        )?;
        ConstGauge::new(a.deliverer().pending() as i64).encode(m)?;
        Ok(())
    }
}

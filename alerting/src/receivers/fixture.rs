//! The notification every receiver kind's snapshot tests render: the page
//! of an availability SLO of `checkout`, firing or resolved. A change to a
//! payload shows up as a diff of the kind's `.snap` files to review
//! (`INSTA_UPDATE=always cargo test --workspace --lib`, then read the diff).

use crate::alert::{Alert, Hint, Labels, State, Values};
use crate::notification::Notification;

/// 2023-11-14T22:13:20Z.
const T: i64 = 1_700_000_000_000_000_000;
const MIN: i64 = 60_000_000_000;

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The page of an availability SLO of `checkout`, firing or resolved.
pub(crate) fn notification(status: &str) -> Notification {
    let resolved = status == "resolved";
    let alert = Alert {
        fingerprint: "3f9a1c2b7d4e5f60".into(),
        labels: labels(&[
            ("alertname", "SLOBurnRate"),
            ("slo", "checkout-availability"),
            ("service", "checkout"),
            ("severity", "page"),
            ("condition", "page-1h"),
            ("long_window", "1h"),
            ("short_window", "5m"),
            ("window", "1h/5m"),
            ("team", "payments"),
        ]),
        annotations: labels(&[
            (
                "summary",
                "Checkout availability burns its error budget 20.0× too fast (page 1h/5m)",
            ),
            (
                "description",
                "Burn rate 20.00× over 1h and 25.00× over 5m; the page-1h condition needs 14.400× over both.",
            ),
            ("runbook_url", "https://runbooks.example.com/checkout"),
            (
                "slo_url",
                "https://smolder.example.com/slos/checkout-availability",
            ),
            (
                "burn_chart_url",
                "https://smolder.example.com/api/v1/slos/checkout-availability/chart.png?long=1h&short=5m&factor=14.4&from=1699996400&to=1700000000&at=1699999760&expires=1700604800&sig=5e1f",
            ),
        ]),
        state: if resolved {
            State::Resolved
        } else {
            State::Firing
        },
        active_since: T - 5 * MIN,
        fired_at: Some(T - 4 * MIN),
        resolved_at: resolved.then_some(T + 30 * MIN),
        last_met: T,
        slo: "checkout-availability".into(),
        values: Values {
            long_burn_rate: 20.0,
            short_burn_rate: 25.0,
            factor: 14.4,
            error_budget_remaining: 0.62,
            sli: Some(0.9865),
            objective: 0.999,
            time_to_exhaustion_seconds: Some(5400.0),
            budget_level: None,
        },
        examples: vec!["5b8efff798038103d269b633813fc60c".into()],
        hints: vec![Hint {
            attribute: "http_route".into(),
            value: "/api/pay".into(),
            bad_share: 0.92,
            total_share: 0.18,
        }],
        flapping: false,
        group: Default::default(),
    };
    Notification {
        id: "018bd0f0-0000-7000-8000-000000000001".into(),
        receiver: "team".into(),
        group_key: "0:{severity=\"page\",slo=\"checkout-availability\"}".into(),
        group_labels: labels(&[("slo", "checkout-availability"), ("severity", "page")]),
        status: status.into(),
        alerts: vec![alert],
        created_at: if resolved { T + 30 * MIN } else { T },
        thread: "018bd0f0-0000-7000-8000-000000000001".into(),
        external_url: "https://smolder.example.com".into(),
        resend_interval_ns: 60_000_000_000,
        scaling: None,
        report: None,
        tenant: Default::default(),
    }
}

/// The notification and its rendered texts.
pub(crate) fn rendered(status: &str) -> (Notification, crate::render::Texts) {
    let n = notification(status);
    let texts = crate::render::texts(&n, None).expect("the default templates render");
    (n, texts)
}

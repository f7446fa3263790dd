//! How well a policy's conditions catch known incidents: the four measures
//! of the SRE Workbook ("Alerting on SLOs").
//!
//! * **precision** — of the alerts a condition raised, the share that came
//!   during an incident (its firing overlaps one);
//! * **recall** — of the incidents, the share some alert of the condition
//!   caught (fired while the incident lasted);
//! * **detection time** — from an incident's start to the first alert that
//!   caught it (0 when one was already firing);
//! * **reset time** — from an incident's end to the resolution of the
//!   alerts that caught it (how long the page outlives the problem).
//!
//! Times are means over the incidents caught; an alert still firing at the
//! range's end counts as resolving then.

use serde::Deserialize;
use serde_json::{Value, json};
use smolder_slo::model::{SloDefinition, Window};

use super::replay::Raised;

/// A known incident: when users were hurt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct Incident {
    /// Start (Unix ns).
    pub start: i64,
    /// End (Unix ns).
    pub end: i64,
}

/// The measures of one set of alerts against the incidents.
#[derive(Debug, Clone, PartialEq)]
pub struct Measures {
    /// Alerts raised.
    pub alerts: usize,
    /// Share of alerts during an incident; `None` without alerts.
    pub precision: Option<f64>,
    /// Share of incidents caught; `None` without incidents.
    pub recall: Option<f64>,
    /// Mean seconds from an incident's start to its first alert.
    pub detection_seconds: Option<f64>,
    /// Mean seconds from an incident's end to its alerts' resolution.
    pub reset_seconds: Option<f64>,
}

fn overlaps(a: &Raised, i: &Incident, to: i64) -> bool {
    a.start <= i.end && i.start <= a.end.unwrap_or(to)
}

fn mean(xs: &[f64]) -> Option<f64> {
    (!xs.is_empty()).then(|| xs.iter().sum::<f64>() / xs.len() as f64)
}

/// The measures of `alerts` against `incidents`; alerts still firing end at
/// `to`.
pub fn measure(alerts: &[&Raised], incidents: &[Incident], to: i64) -> Measures {
    let true_alerts = alerts
        .iter()
        .filter(|a| incidents.iter().any(|i| overlaps(a, i, to)))
        .count();
    let mut detection = Vec::new();
    let mut reset = Vec::new();
    for i in incidents {
        let caught: Vec<&&Raised> = alerts.iter().filter(|a| overlaps(a, i, to)).collect();
        let Some(first) = caught.iter().map(|a| a.start).min() else {
            continue;
        };
        detection.push((first - i.start).max(0) as f64 / 1e9);
        let last = caught
            .iter()
            .map(|a| a.end.unwrap_or(to))
            .max()
            .unwrap_or(to);
        reset.push((last - i.end).max(0) as f64 / 1e9);
    }
    Measures {
        alerts: alerts.len(),
        precision: (!alerts.is_empty()).then(|| true_alerts as f64 / alerts.len() as f64),
        recall: (!incidents.is_empty()).then(|| detection.len() as f64 / incidents.len() as f64),
        detection_seconds: mean(&detection),
        reset_seconds: mean(&reset),
    }
}

fn measures_json(name: Value, m: &Measures) -> Value {
    json!({
        "condition": name,
        "alerts": m.alerts,
        "precision": m.precision,
        "recall": m.recall,
        "detection_seconds": m.detection_seconds,
        "reset_seconds": m.reset_seconds,
    })
}

/// The measures of each condition of `def`, then of the policy as a whole
/// (`"condition": "any"`).
pub fn measures(def: &SloDefinition, alerts: &[Raised], incidents: &[Incident], to: i64) -> Value {
    let mut out = Vec::new();
    for w in &def.alert_windows {
        let pair = format!("{}/{}", Window(w.long), Window(w.short));
        let mine: Vec<&Raised> = alerts.iter().filter(|a| a.name() == w.name).collect();
        let mut row = measures_json(json!(pair), &measure(&mine, incidents, to));
        row["name"] = json!(w.name);
        row["severity"] = json!(w.severity.as_str());
        out.push(row);
    }
    let all: Vec<&Raised> = alerts.iter().collect();
    out.push(measures_json(json!("any"), &measure(&all, incidents, to)));
    Value::Array(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::Labels;

    const S: i64 = 1_000_000_000;

    fn alert(start: i64, end: Option<i64>) -> Raised {
        Raised {
            fingerprint: String::new(),
            labels: Labels::new(),
            group: Default::default(),
            pending_since: start * S,
            start: start * S,
            end: end.map(|e| e * S),
            peak_long_burn_rate: 0.0,
            peak_short_burn_rate: 0.0,
            budget_at_start: 1.0,
            budget_at_end: 1.0,
            flapping: false,
        }
    }

    #[test]
    fn the_workbook_measures_of_two_incidents_one_caught_and_a_false_alarm() {
        let incidents = [
            Incident {
                start: 100 * S,
                end: 200 * S,
            },
            Incident {
                start: 1000 * S,
                end: 1100 * S,
            },
        ];
        // Caught 30 s in, resolved 60 s after the end; a false alarm later.
        let alerts = [alert(130, Some(260)), alert(500, Some(520))];
        let refs: Vec<&Raised> = alerts.iter().collect();
        let m = measure(&refs, &incidents, 2000 * S);
        assert_eq!(m.alerts, 2);
        assert_eq!(m.precision, Some(0.5));
        assert_eq!(m.recall, Some(0.5));
        assert_eq!(m.detection_seconds, Some(30.0));
        assert_eq!(m.reset_seconds, Some(60.0));
    }

    #[test]
    fn an_alert_still_firing_resets_at_the_end_of_the_range() {
        let incidents = [Incident {
            start: 100 * S,
            end: 200 * S,
        }];
        let alerts = [alert(50, None)];
        let refs: Vec<&Raised> = alerts.iter().collect();
        let m = measure(&refs, &incidents, 500 * S);
        assert_eq!(m.detection_seconds, Some(0.0), "already firing");
        assert_eq!(m.reset_seconds, Some(300.0));
        assert_eq!(m.precision, Some(1.0));
        let none = measure(&[], &incidents, 500 * S);
        assert_eq!((none.precision, none.recall), (None, Some(0.0)));
    }
}

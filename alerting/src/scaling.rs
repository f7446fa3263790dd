//! Autoscaler hysteresis. A target is asked to scale up either when a
//! fast-burn alert of an SLO instance starts firing (the default) or, with
//! `scale_up_at`, as soon as the burn rate over the target's `window`
//! reaches it — before any alert, the way an autoscaler wants to hear of a
//! burn. Either way it is asked to scale back once the burn rate (no alert
//! of its severity firing) stayed under `scale_down_below` for `cooldown`;
//! a burn back at or above it in between starts the cooldown again. The
//! band between the two thresholds changes nothing, so a burn hovering
//! around one of them does not scale up and back in turns.

use std::time::Duration;

use smolder_slo::engine::InstanceStatus;
use smolder_slo::model::{Severity, Window, duration_ns};

use crate::alert::{Alert, Labels};
use crate::config::ScalingTarget;
use crate::notification::ScalingRequest;
use crate::store::ScalingState;

/// The burn rate that decides and its window: over `window` when the target
/// names one (`None` until the engine has evaluated it), else over the short
/// window of the first condition of `severity` (the fastest page by
/// default), or of the first condition.
pub(crate) fn deciding_burn_rate(
    instance: &InstanceStatus,
    severity: &Severity,
    window: Option<Window>,
) -> Option<(f64, Window)> {
    let e = &instance.evaluation;
    if let Some(w) = window {
        return e.burn_rates.get(&w).map(|&b| (b, w));
    }
    let conds = &e.conditions;
    conds
        .iter()
        .find(|c| &c.severity == severity)
        .or(conds.first())
        .map(|c| (c.short_burn_rate, c.short_window))
}

/// What a target sees of one SLO instance at a tick.
pub(crate) struct Observed<'a> {
    /// The SLO.
    pub slo: &'a str,
    /// The instance's group values.
    pub group: &'a Labels,
    /// The alert of the target's severity firing for the instance, if any.
    pub firing: Option<&'a Alert>,
    /// The deciding burn rate and its window.
    pub burn_rate: f64,
    /// Its window.
    pub window: Window,
}

/// One step of a target for one SLO instance at `now`: its next state and
/// the request to send, if any.
pub(crate) fn step(
    target: &ScalingTarget,
    seen: &Observed<'_>,
    state: Option<&ScalingState>,
    now: i64,
) -> (ScalingState, Option<ScalingRequest>) {
    let settings = target.settings_for(seen.slo);
    let below = settings.scale_down_below;
    let burn_rate = seen.burn_rate;
    let mut s = state.cloned().unwrap_or_default();
    s.burn_rate = burn_rate;
    let request = |action: &str, threshold: Option<f64>, reason: String| ScalingRequest {
        action: action.to_string(),
        target: target.name.clone(),
        slo: seen.slo.to_string(),
        group: seen.group.clone(),
        burn_rate,
        window: seen.window.to_string(),
        threshold,
        // The alert that decided (a target scaling on alerts).
        alert: seen
            .firing
            .filter(|_| settings.scale_up_at.is_none())
            .map(|a| a.fingerprint.clone()),
        reason,
        // Set by the caller, which knows the SLO's tenant.
        tenant: None,
    };
    if !s.scaled_up {
        let up = match settings.scale_up_at {
            Some(at) if burn_rate >= at => Some((
                Some(at),
                format!(
                    "burn rate over {} is {} (scale up at {at} or more)",
                    seen.window,
                    round(burn_rate)
                ),
            )),
            Some(_) => None,
            None => seen.firing.map(|a| {
                let reason = a.annotations.get("summary").cloned().unwrap_or_default();
                (None, reason)
            }),
        };
        return match up {
            Some((threshold, reason)) => {
                s.scaled_up = true;
                s.since = now;
                s.low_since = None;
                (s, Some(request("scale_up", threshold, reason)))
            }
            None => (s, None),
        };
    }
    if seen.firing.is_some() || burn_rate >= below {
        s.low_since = None;
        return (s, None);
    }
    let low_since = *s.low_since.get_or_insert(now);
    if now - low_since >= duration_ns(settings.cooldown) {
        s.scaled_up = false;
        s.low_since = None;
        let reason = format!(
            "burn rate over {} stayed under {below} for {} (now {})",
            seen.window,
            humantime::format_duration(Duration::from_nanos(
                u64::try_from(now - low_since).unwrap_or(0)
            )),
            round(burn_rate)
        );
        return (s, Some(request("scale_down", Some(below), reason)));
    }
    (s, None)
}

/// A burn rate as people read it: three significant decimals.
fn round(burn: f64) -> f64 {
    (burn * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hysteresis_with_cooldown() {
        let target = ScalingTarget {
            name: "hpa".into(),
            cooldown: Some(Duration::from_secs(60)),
            ..Default::default()
        };
        let alert = Alert {
            fingerprint: "f".into(),
            labels: Labels::new(),
            annotations: Labels::new(),
            state: crate::alert::State::Firing,
            active_since: 0,
            fired_at: Some(0),
            resolved_at: None,
            last_met: 0,
            slo: "s".into(),
            values: Default::default(),
            examples: vec![],
            hints: vec![],
            flapping: false,
            group: Default::default(),
        };
        let g = Labels::new();
        let at = |state: &ScalingState, firing: Option<&Alert>, burn: f64, secs: f64| {
            let seen = Observed {
                slo: "s",
                group: &g,
                firing,
                burn_rate: burn,
                window: Window(Duration::from_secs(300)),
            };
            step(&target, &seen, Some(state), (secs * 1e9) as i64)
        };
        let (s1, r) = at(&ScalingState::default(), Some(&alert), 20.0, 0.0);
        assert_eq!(r.unwrap().action, "scale_up");
        // Still firing: nothing.
        let (s2, r) = at(&s1, Some(&alert), 20.0, 1.0);
        assert!(r.is_none() && s2.scaled_up);
        // Resolved but burn rate still above 0.8: stay.
        let (s3, r) = at(&s2, None, 2.0, 2.0);
        assert!(r.is_none() && s3.low_since.is_none());
        // Low for 30 s: not yet; a spike resets the cooldown.
        let (s4, _) = at(&s3, None, 0.1, 3.0);
        let (s5, r) = at(&s4, None, 0.1, 33.0);
        assert!(r.is_none());
        let (s6, _) = at(&s5, None, 1.0, 34.0);
        assert!(s6.low_since.is_none());
        // Low again from 100 s: scale back once the 60 s cooldown passed.
        let (s7, _) = at(&s6, None, 0.1, 100.0);
        let (_, r) = at(&s7, None, 0.1, 159.0);
        assert!(r.is_none());
        let (s9, r) = at(&s7, None, 0.1, 160.0);
        assert_eq!(r.unwrap().action, "scale_down");
        assert!(!s9.scaled_up);
    }

    #[test]
    fn a_burn_driven_target_scales_up_at_its_threshold_and_back_only_after_a_whole_cooldown_under_the_lower_one()
     {
        let target = ScalingTarget {
            name: "hpa".into(),
            scale_up_at: Some(1.5),
            window: Some(Duration::from_secs(300)),
            scale_down_below: Some(0.8),
            cooldown: Some(Duration::from_secs(150)),
            ..Default::default()
        };
        let g = Labels::new();
        let at = |state: &ScalingState, burn: f64, secs: i64| {
            let seen = Observed {
                slo: "s",
                group: &g,
                firing: None,
                burn_rate: burn,
                window: Window(Duration::from_secs(300)),
            };
            step(&target, &seen, Some(state), secs * 1_000_000_000)
        };
        // Inside the band (0.8 … 1.5): nothing.
        let (s, r) = at(&ScalingState::default(), 1.49, 0);
        assert!(r.is_none() && !s.scaled_up);
        // At the threshold: up, with its figures.
        let (s, r) = at(&s, 1.5, 10);
        let r = r.expect("scale up at 1.5");
        assert_eq!(
            (r.action.as_str(), r.threshold, r.window.as_str()),
            ("scale_up", Some(1.5), "5m")
        );
        assert!(s.scaled_up && r.alert.is_none(), "{r:?}");
        // Back in the band: stays up, no cooldown runs.
        let (s, r) = at(&s, 1.0, 20);
        assert!(r.is_none() && s.scaled_up && s.low_since.is_none());
        // Under 0.8 from 30 s; 0.85 at 100 s starts the cooldown again.
        let (s, _) = at(&s, 0.5, 30);
        let (s, _) = at(&s, 0.85, 100);
        assert!(s.low_since.is_none());
        let (s, _) = at(&s, 0.79, 110);
        let (s, r) = at(&s, 0.1, 259);
        assert!(r.is_none() && s.scaled_up, "149 s of the 150 s cooldown");
        let (s, r) = at(&s, 0.1, 260);
        let r = r.expect("scale down after 150 s under 0.8");
        assert_eq!((r.action.as_str(), r.threshold), ("scale_down", Some(0.8)));
        assert!(!s.scaled_up);
        // Up again only at the upper threshold.
        let (s, r) = at(&s, 1.2, 270);
        assert!(r.is_none() && !s.scaled_up);
    }
}

//! Autoscaler hysteresis: a target is asked to scale up when a fast-burn
//! alert of an SLO instance starts firing, and to scale back once no such
//! alert fires and the burn rate over the fast condition's short window
//! stayed under `scale_down_below` for `cooldown`.

use std::time::Duration;

use smolder_slo::engine::InstanceStatus;
use smolder_slo::model::{Severity, Window, duration_ns};

use crate::alert::{Alert, Labels};
use crate::config::ScalingTarget;
use crate::notification::ScalingRequest;
use crate::store::ScalingState;

/// The burn rate that decides scaling back, and its window: the short window
/// of the first condition of `severity` (the fastest page by default), or of
/// the first condition.
pub(crate) fn deciding_burn_rate(
    instance: &InstanceStatus,
    severity: &Severity,
) -> (f64, Option<Window>) {
    let conds = &instance.evaluation.conditions;
    conds
        .iter()
        .find(|c| &c.severity == severity)
        .or(conds.first())
        .map_or((0.0, None), |c| (c.short_burn_rate, Some(c.short_window)))
}

/// One step of a target for one SLO instance.
#[allow(clippy::too_many_arguments)]
pub(crate) fn step(
    target: &ScalingTarget,
    slo: &str,
    group: &Labels,
    state: Option<&ScalingState>,
    firing: Option<&Alert>,
    burn_rate: f64,
    window: Option<Window>,
    now: i64,
) -> (ScalingState, Option<ScalingRequest>) {
    let (below, cooldown) = target.settings_for(slo);
    let mut s = state.cloned().unwrap_or_default();
    s.burn_rate = burn_rate;
    let request = |action: &str, reason: String| ScalingRequest {
        action: action.to_string(),
        target: target.name.clone(),
        slo: slo.to_string(),
        group: group.clone(),
        burn_rate,
        window: window.map(|w| w.to_string()).unwrap_or_default(),
        alert: firing.map(|a| a.fingerprint.clone()),
        reason,
        // Set by the caller, which knows the SLO's tenant.
        tenant: None,
    };
    if !s.scaled_up {
        if let Some(a) = firing {
            s.scaled_up = true;
            s.since = now;
            s.low_since = None;
            let reason = a.annotations.get("summary").cloned().unwrap_or_default();
            return (s, Some(request("scale_up", reason)));
        }
        return (s, None);
    }
    if firing.is_some() || burn_rate >= below {
        s.low_since = None;
        return (s, None);
    }
    let low_since = *s.low_since.get_or_insert(now);
    if now - low_since >= duration_ns(cooldown) {
        s.scaled_up = false;
        s.low_since = None;
        let reason = format!(
            "burn rate over {} stayed under {below} for {}",
            window.map(|w| w.to_string()).unwrap_or_default(),
            humantime::format_duration(Duration::from_nanos(
                u64::try_from(now - low_since).unwrap_or(0)
            ))
        );
        return (s, Some(request("scale_down", reason)));
    }
    (s, None)
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
        };
        let g = Labels::new();
        let at = |state: &ScalingState, firing: Option<&Alert>, burn: f64, secs: f64| {
            step(
                &target,
                "s",
                &g,
                Some(state),
                firing,
                burn,
                Some(Window(Duration::from_secs(300))),
                (secs * 1e9) as i64,
            )
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
}

//! Scaling targets driven by the alerts or the burn rate: a scale-up request
//! while a fast burn fires (or once the burn rate over the target's window
//! reaches `scale_up_at`), a scale-down once the burn rate stayed low for the
//! cooldown (the state machine is [`crate::scaling`]); requests go through
//! the outbox as signed webhooks, and the outbox is the scaling history.

use smolder_slo::engine::Snapshot;
use smolder_slo::model::{InstanceKey, Severity};

use super::runtime::Runtime;
use super::{Alerting, Inner, instance_key};
use crate::alert::{Labels, State, TENANT_LABEL};
use crate::config::scaling_receiver;
use crate::notification::{Notification, new_id};
use crate::store::ScalingState;
use smolder_common::Tenant;

impl Alerting {
    pub(super) fn scale(&self, rt: &Runtime, inner: &mut Inner, snapshot: &Snapshot, now: i64) {
        if rt.scaling.is_empty() {
            return;
        }
        let mut out = Vec::new();
        for (target, matchers) in &rt.scaling {
            let severity = target
                .severity
                .as_deref()
                .map_or_else(Severity::page, Severity::from);
            // Another tenant's SLOs drive a target only when its matchers
            // say which tenants (the targets are the operator's).
            let tenants_named = matchers.names(TENANT_LABEL);
            for status in &snapshot.slos {
                let def = &status.definition;
                if !def.tenant.is_default() && !tenants_named {
                    continue;
                }
                for instance in &status.instances {
                    let key = (
                        target.name.clone(),
                        instance_key(&def.tenant, &def.id, &instance.group),
                    );
                    let firing = inner.lifecycle.active.values().find(|a| {
                        a.slo == def.id
                            && a.tenant() == def.tenant
                            && a.state == State::Firing
                            && a.labels
                                .get("severity")
                                .is_some_and(|s| s == severity.as_str())
                            && instance
                                .group
                                .iter()
                                .all(|(k, v)| a.labels.get(k) == Some(v))
                            && matchers.matches(&a.labels)
                    });
                    let state = inner.scaling.get(&key).cloned();
                    // A target scaling on alerts has nothing to decide for
                    // an instance without one that it has not scaled up; a
                    // burn-driven one acts on the instances its matchers
                    // select by their labels.
                    let on_alerts = target.settings_for(&def.id).scale_up_at.is_none();
                    if on_alerts {
                        if firing.is_none() && !state.as_ref().is_some_and(|s| s.scaled_up) {
                            continue;
                        }
                    } else if !matchers.matches(&crate::alert::instance_labels(status, instance)) {
                        continue;
                    }
                    // The target's window is evaluated from the tick after
                    // the configuration named it.
                    let Some((burn_rate, window)) =
                        crate::scaling::deciding_burn_rate(instance, &severity, target.window())
                    else {
                        continue;
                    };
                    let seen = crate::scaling::Observed {
                        slo: &def.id,
                        group: &instance.group,
                        firing,
                        burn_rate,
                        window,
                    };
                    let (next, request) = crate::scaling::step(target, &seen, state.as_ref(), now);
                    // Stored when a decision changes (not at every new burn
                    // rate); an instance never scaled up has no state.
                    let decided = |s: &ScalingState| (s.scaled_up, s.since, s.low_since);
                    if state.as_ref().map(decided) != Some(decided(&next))
                        && (state.is_some() || next.scaled_up)
                        && let Err(e) = self.store.put_scaling(&key.0, &key.1.to_string(), &next)
                    {
                        tracing::error!(error = %e, "Saving scaling state failed.");
                    }
                    if state.is_some() || next.scaled_up {
                        inner.scaling.insert(key.clone(), next);
                    }
                    if let Some(mut req) = request {
                        req.tenant = (!def.tenant.is_default()).then(|| def.tenant.clone());
                        tracing::info!(target = %target.name, slo = %def.id, action = %req.action, "Scaling request.");
                        let id = new_id(now);
                        out.push((
                            Notification {
                                thread: id.clone(),
                                id,
                                receiver: scaling_receiver(&target.name),
                                group_key: key.1.to_string(),
                                group_labels: scaling_group_labels(&def.tenant, &instance.group),
                                status: req.action.clone(),
                                alerts: Vec::new(),
                                created_at: now,
                                external_url: rt.options.external_url.clone(),
                                resend_interval_ns: 0,
                                scaling: Some(req),
                                report: None,
                                tenant: def.tenant.clone(),
                            },
                            None,
                        ));
                    }
                }
            }
        }
        self.enqueue(out);
    }

    /// Scaling state of every target for `tenant`'s SLO's instances.
    pub async fn scaling_state(
        &self,
        tenant: &Tenant,
        slo: &str,
    ) -> Vec<(String, InstanceKey, ScalingState)> {
        let inner = self.inner.lock().await;
        let mut out: Vec<_> = inner
            .scaling
            .iter()
            .filter(|((_, inst), _)| inst.slo() == slo && inst.tenant() == tenant)
            .map(|((t, i), s)| (t.clone(), i.clone(), s.clone()))
            .collect();
        out.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        out
    }
}

/// The group labels of a scaling request: the instance's group, and the
/// tenant of another tenant's SLO (as alert groups have it).
fn scaling_group_labels(tenant: &Tenant, group: &Labels) -> Labels {
    let mut labels = group.clone();
    if !tenant.is_default() {
        labels.insert(TENANT_LABEL.to_string(), tenant.to_string());
    }
    labels
}

//! Alerts and their lifecycle: from the SLO engine's alert conditions to
//! alerts that are pending, firing and resolved.
//!
//! Every alert condition of every SLO instance is one potential alert. When
//! its windows both burn at or above the factor the alert becomes pending, and
//! firing once that held for the condition's `alertAfter` (at once when it is
//! zero). A firing alert whose condition stops holding keeps firing for
//! `keep_firing_for` (5 minutes by default), then resolves; should it hold
//! again within that time it simply goes on firing.
//!
//! Hysteresis alone does not stop a burn rate that crosses its threshold
//! every quarter of an hour from paging every quarter of an hour. An alert
//! that starts firing for the `flap_count`-th time within `flap_window` is
//! *flapping*: it says so (API, UI, notifications' alert JSON) and resolves
//! only once its condition has not held for a whole `flap_window`, so its
//! receivers hear of it at most `flap_count` times per window.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use smolder_common::Tenant;
use smolder_slo::engine::{InstanceStatus, SloStatus, Snapshot};
use smolder_slo::eval::ConditionStatus;
use smolder_slo::model::{AlertWindow, Window, budget_below, duration_ns};

/// Label or annotation names and values.
pub type Labels = BTreeMap<String, String>;

/// Where an alert is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// The condition holds, for less than its `alertAfter`.
    Pending,
    /// The alert fires.
    Firing,
    /// The alert fired and stopped.
    Resolved,
}

impl State {
    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Firing => "firing",
            Self::Resolved => "resolved",
        }
    }
}

/// The numbers behind an alert at its last evaluation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Values {
    /// Burn rate over the long window.
    pub long_burn_rate: f64,
    /// Burn rate over the short window.
    pub short_burn_rate: f64,
    /// The burn rate both windows must reach.
    pub factor: f64,
    /// Error budget remaining over the period (may be negative).
    pub error_budget_remaining: f64,
    /// SLI over the period.
    pub sli: Option<f64>,
    /// The objective.
    pub objective: f64,
    /// Seconds until the budget is exhausted at the current burn rate.
    pub time_to_exhaustion_seconds: Option<f64>,
    /// The error-budget policy level of a budget event (its burn rates are
    /// then the period's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_level: Option<f64>,
}

/// An attribute value over-represented among bad events: a hint at the cause.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hint {
    /// Column or attribute (`http_route`, `attributes['k8s.pod.name']`).
    pub attribute: String,
    /// The value.
    pub value: String,
    /// Share of bad events with this value.
    pub bad_share: f64,
    /// Share of all events with this value.
    pub total_share: f64,
}

/// One alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Stable identity: a hash of the labels (16 hex digits).
    pub fingerprint: String,
    /// Identifying labels: `alertname`, `slo`, `service`, `severity`,
    /// `condition`, `long_window`, `short_window`, `window`, `slo_group` and
    /// the group's values, and the SLO's own labels.
    pub labels: Labels,
    /// `summary`, `description`, `slo_url`, `runbook_url`, `example_trace_ids`,
    /// `cause_hint`.
    pub annotations: Labels,
    /// The state.
    pub state: State,
    /// When the condition started holding (Unix ns).
    pub active_since: i64,
    /// When it started firing.
    pub fired_at: Option<i64>,
    /// When it resolved.
    pub resolved_at: Option<i64>,
    /// Last evaluation at which the condition held.
    pub last_met: i64,
    /// The SLO's id.
    pub slo: String,
    /// The numbers at the last evaluation.
    pub values: Values,
    /// Example trace ids of bad events (when it started firing).
    #[serde(default)]
    pub examples: Vec<String>,
    /// Over-represented attribute values among bad events.
    #[serde(default)]
    pub hints: Vec<Hint>,
    /// Whether it started firing too often lately (see the module's doc).
    #[serde(default)]
    pub flapping: bool,
    /// The SLO instance's values by group-by expression (empty for an SLO
    /// without groups).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub group: BTreeMap<String, String>,
}

impl Alert {
    /// Whose SLO raised it.
    pub fn tenant(&self) -> Tenant {
        tenant_of(&self.labels)
    }
}

/// A change of state, for the history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transition {
    /// When (Unix ns).
    pub at: i64,
    /// The alert's fingerprint.
    pub fingerprint: String,
    /// The SLO.
    pub slo: String,
    /// State before (`inactive` for a new alert).
    pub from: String,
    /// State after (`inactive` when a pending alert stops).
    pub to: String,
    /// The alert's labels.
    pub labels: Labels,
    /// The summary at the time.
    pub summary: String,
}

/// Identity hash of a label set.
pub fn fingerprint(labels: &Labels) -> String {
    let mut h = Sha256::new();
    for (k, v) in labels {
        h.update(k.as_bytes());
        h.update([0xff]);
        h.update(v.as_bytes());
        h.update([0xfe]);
    }
    hex::encode(&h.finalize()[..8])
}

/// The `slo_group` label of a grouped SLO instance: `k=v,k2=v2`.
pub use smolder_slo::model::group_label;

/// The label naming the tenant of another tenant's SLO's alert. The default
/// tenant's alerts carry none, so their identities (fingerprints, group
/// keys) and what receivers get are as before tenants; a route matches them
/// with `tenant=""`.
pub const TENANT_LABEL: &str = "tenant";

/// The tenant of an alert with these labels.
pub fn tenant_of(labels: &Labels) -> Tenant {
    labels
        .get(TENANT_LABEL)
        .and_then(|t| Tenant::parse(t).ok())
        .unwrap_or_default()
}

/// Labels every alert carries (`tenant`: those of other tenants than the
/// default one), beyond those of the SLO; an SLO's own labels cannot set
/// them (so no SLO can pass for another tenant's).
pub const RESERVED_LABELS: [&str; 11] = [
    TENANT_LABEL,
    "alertname",
    "slo",
    "service",
    "severity",
    "condition",
    "long_window",
    "short_window",
    "window",
    "slo_group",
    "budget_level",
];

/// The severity of budget events: alerts an SLO's error-budget policy
/// raises when an instance's remaining budget falls below one of its levels
/// (see [`SloDefinition::budget_levels`]).
///
/// [`SloDefinition::budget_levels`]: smolder_slo::model::SloDefinition::budget_levels
pub const BUDGET_SEVERITY: &str = "budget";

/// A potential alert of an SLO instance: a burn-rate condition of its
/// policy, or a level of its error-budget policy.
#[derive(Debug, Clone, Copy)]
enum Kind<'a> {
    Burn(&'a AlertWindow, &'a ConditionStatus),
    Budget(f64),
}

impl Kind<'_> {
    fn labels(self, status: &SloStatus, instance: &InstanceStatus) -> Labels {
        match self {
            Self::Burn(window, c) => alert_labels(status, instance, window, c),
            Self::Budget(level) => budget_labels(status, instance, level),
        }
    }

    fn met(self, instance: &InstanceStatus) -> bool {
        match self {
            Self::Burn(_, c) => c.met,
            Self::Budget(level) => budget_below(instance.evaluation.error_budget_remaining, level),
        }
    }

    /// How long the condition must hold before the alert fires.
    fn alert_after(self) -> i64 {
        match self {
            Self::Burn(window, _) => duration_ns(window.alert_after),
            Self::Budget(_) => 0,
        }
    }

    fn values(self, status: &SloStatus, instance: &InstanceStatus) -> Values {
        let e = &instance.evaluation;
        let mut v = Values {
            long_burn_rate: 0.0,
            short_burn_rate: 0.0,
            factor: 0.0,
            error_budget_remaining: e.error_budget_remaining,
            sli: e.sli,
            objective: status.definition.objective,
            time_to_exhaustion_seconds: e.time_to_exhaustion_seconds,
            budget_level: None,
        };
        match self {
            Self::Burn(_, c) => {
                v.long_burn_rate = c.long_burn_rate;
                v.short_burn_rate = c.short_burn_rate;
                v.factor = c.factor;
            }
            Self::Budget(level) => {
                v.long_burn_rate =
                    smolder_slo::eval::burn_rate(e.period, status.definition.objective);
                v.short_burn_rate = v.long_burn_rate;
                v.budget_level = Some(level);
            }
        }
        v
    }
}

/// A budget level as the `budget_level` label and `condition` show it.
pub fn budget_level_name(level: f64) -> String {
    if level <= 0.0 {
        "exhausted".to_string()
    } else {
        percent(level)
    }
}

/// The labels of an SLO instance, as its alerts carry them: the SLO's own
/// labels, the group's values, `slo`, `service`, `slo_group` and the tenant
/// of another tenant's SLO. A burn-driven scaling target matches these.
pub(crate) fn instance_labels(status: &SloStatus, instance: &InstanceStatus) -> Labels {
    let def = &status.definition;
    let mut labels: Labels = def
        .labels
        .iter()
        .chain(&instance.group)
        .filter(|(k, _)| !RESERVED_LABELS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    labels.insert("slo".to_string(), def.id.clone());
    labels.insert("service".to_string(), def.service.clone());
    if !instance.group.is_empty() {
        labels.insert("slo_group".to_string(), group_label(&instance.group));
    }
    if !def.tenant.is_default() {
        labels.insert(TENANT_LABEL.to_string(), def.tenant.to_string());
    }
    labels
}

fn alert_labels(
    status: &SloStatus,
    instance: &InstanceStatus,
    window: &AlertWindow,
    c: &ConditionStatus,
) -> Labels {
    let mut labels = instance_labels(status, instance);
    let fixed = [
        ("alertname", "SLOBurnRate".to_string()),
        ("severity", window.severity.to_string()),
        ("condition", window.name.clone()),
        ("long_window", c.long_window.to_string()),
        ("short_window", c.short_window.to_string()),
        ("window", format!("{}/{}", c.long_window, c.short_window)),
    ];
    for (k, v) in fixed {
        labels.insert(k.to_string(), v);
    }
    labels
}

/// The labels of a budget event of `instance` at `level`.
fn budget_labels(status: &SloStatus, instance: &InstanceStatus, level: f64) -> Labels {
    let mut labels = instance_labels(status, instance);
    let name = budget_level_name(level);
    let fixed = [
        ("alertname", "SLOErrorBudget".to_string()),
        ("severity", BUDGET_SEVERITY.to_string()),
        ("condition", format!("budget {name}")),
        ("budget_level", name),
    ];
    for (k, v) in fixed {
        labels.insert(k.to_string(), v);
    }
    labels
}

/// Options of the lifecycle.
#[derive(Debug, Clone, Default)]
pub struct LifecycleOptions {
    /// How long an alert keeps firing after its condition stopped holding.
    pub keep_firing_for: Duration,
    /// The window over which firings are counted for flapping.
    pub flap_window: Duration,
    /// Firings within `flap_window` that make an alert flapping (0: never).
    pub flap_count: usize,
    /// Base URL of the web UI for `slo_url`.
    pub external_url: String,
    /// Leave the annotations (summary, description, links) out: a
    /// backtest's variants need only when alerts fire and resolve, and
    /// writing the texts is most of a step's work.
    pub skip_annotations: bool,
}

/// Active alerts (pending and firing), by fingerprint, and the step from one
/// SLO snapshot to the next.
#[derive(Debug, Default)]
pub struct Lifecycle {
    /// The alerts that are pending or firing.
    pub active: HashMap<String, Alert>,
    /// When each alert started firing within the last `flap_window`, oldest
    /// first.
    pub firings: HashMap<String, VecDeque<i64>>,
}

/// What one step changed.
#[derive(Debug, Default)]
pub struct Step {
    /// Alerts whose state or values changed (resolved ones included).
    pub changed: Vec<Alert>,
    /// Fingerprints of pending alerts whose condition stopped holding
    /// before they fired; they are gone.
    pub dropped: Vec<String>,
    /// Alerts that started firing in this step.
    pub fired: Vec<String>,
    /// State changes.
    pub transitions: Vec<Transition>,
}

impl Lifecycle {
    /// Applies one SLO snapshot at `now` (Unix ns).
    pub fn step(&mut self, snapshot: &Snapshot, now: i64, options: &LifecycleOptions) -> Step {
        let mut step = Step::default();
        let mut seen = std::collections::HashSet::new();
        let keep = duration_ns(options.keep_firing_for);
        let flap = duration_ns(options.flap_window);
        let mut known_slos = std::collections::HashSet::new();
        for status in &snapshot.slos {
            let def = &status.definition;
            known_slos.insert((&def.tenant, def.id.as_str()));
            // Without a complete rollup (backfill in progress) or after a
            // failed update the numbers are partial or stale: leave the
            // alerts of this SLO as they are.
            let trustworthy = status.backfill.done && status.error.is_none();
            for instance in &status.instances {
                let burns = def
                    .alert_windows
                    .iter()
                    .zip(&instance.evaluation.conditions)
                    .map(|(w, c)| Kind::Burn(w, c));
                let levels = def.budget_levels.iter().map(|&l| Kind::Budget(l));
                for kind in burns.chain(levels) {
                    let labels = kind.labels(status, instance);
                    let fp = fingerprint(&labels);
                    seen.insert(fp.clone());
                    if !trustworthy {
                        continue;
                    }
                    let vals = kind.values(status, instance);
                    let existing = self.active.get_mut(&fp);
                    match (existing, kind.met(instance)) {
                        (None, false) => {}
                        (None, true) => {
                            let mut alert = Alert {
                                fingerprint: fp.clone(),
                                labels,
                                annotations: Labels::new(),
                                state: State::Pending,
                                active_since: now,
                                fired_at: None,
                                resolved_at: None,
                                last_met: now,
                                slo: def.id.clone(),
                                values: vals,
                                examples: Vec::new(),
                                hints: Vec::new(),
                                flapping: false,
                                group: instance.group.clone(),
                            };
                            if kind.alert_after() == 0 {
                                alert.state = State::Firing;
                                alert.fired_at = Some(now);
                                alert.flapping = count_firing(&mut self.firings, &fp, now, options);
                                step.fired.push(fp.clone());
                            }
                            if !options.skip_annotations {
                                annotate(&mut alert, status, instance, kind, options);
                            }
                            step.transitions.push(transition(&alert, "inactive", now));
                            step.changed.push(alert.clone());
                            self.active.insert(fp, alert);
                        }
                        (Some(alert), met) => {
                            let before = alert.state;
                            alert.values = vals;
                            if met {
                                alert.last_met = now;
                            }
                            match (alert.state, met) {
                                (State::Pending, true)
                                    if now - alert.active_since >= kind.alert_after() =>
                                {
                                    alert.state = State::Firing;
                                    alert.fired_at = Some(now);
                                    step.fired.push(fp.clone());
                                    let flapping =
                                        count_firing(&mut self.firings, &fp, now, options);
                                    alert.flapping = flapping;
                                }
                                (State::Pending, false) => {
                                    let mut gone = alert.clone();
                                    gone.state = State::Resolved;
                                    let mut t = transition(&gone, "pending", now);
                                    t.to = "inactive".to_string();
                                    step.transitions.push(t);
                                    step.dropped.push(fp.clone());
                                    self.active.remove(&fp);
                                    continue;
                                }
                                (State::Firing, false)
                                    if now - alert.last_met
                                        >= if alert.flapping { keep.max(flap) } else { keep } =>
                                {
                                    alert.state = State::Resolved;
                                    alert.resolved_at = Some(now);
                                }
                                _ => {}
                            }
                            if !options.skip_annotations {
                                annotate(alert, status, instance, kind, options);
                            }
                            if alert.state != before {
                                step.transitions.push(transition(alert, before.name(), now));
                            }
                            step.changed.push(alert.clone());
                            if alert.state == State::Resolved {
                                self.active.remove(&fp);
                            }
                        }
                    }
                }
            }
        }
        // Alerts of deleted SLOs, groups that disappeared, or conditions
        // removed from a policy resolve (pending ones just go).
        let gone: Vec<String> = self
            .active
            .keys()
            .filter(|fp| !seen.contains(*fp))
            .cloned()
            .collect();
        // Firings older than the flap window no longer count.
        self.firings.retain(|_, at| {
            while at.front().is_some_and(|&t| now - t >= flap) {
                at.pop_front();
            }
            !at.is_empty()
        });
        for fp in gone {
            let Some(mut alert) = self.active.remove(&fp) else {
                continue;
            };
            if alert.state == State::Pending {
                let mut t = transition(&alert, "pending", now);
                t.to = "inactive".to_string();
                step.transitions.push(t);
                step.dropped.push(fp);
                continue;
            }
            let before = alert.state;
            alert.state = State::Resolved;
            alert.resolved_at = Some(now);
            alert.annotations.insert(
                "description".to_string(),
                if known_slos.contains(&(&alert.tenant(), alert.slo.as_str())) {
                    "The SLO no longer has this alert condition or group.".to_string()
                } else {
                    "The SLO was deleted.".to_string()
                },
            );
            step.transitions
                .push(transition(&alert, before.name(), now));
            step.changed.push(alert);
        }
        step
    }
}

/// Records that the alert `fp` starts firing at `now`; returns whether that
/// makes it flapping (its `flap_count`-th firing within `flap_window`).
fn count_firing(
    firings: &mut HashMap<String, VecDeque<i64>>,
    fp: &str,
    now: i64,
    options: &LifecycleOptions,
) -> bool {
    let at = firings.entry(fp.to_string()).or_default();
    let flap = duration_ns(options.flap_window);
    while at.front().is_some_and(|&t| now - t >= flap) {
        at.pop_front();
    }
    at.push_back(now);
    options.flap_count > 0 && at.len() >= options.flap_count
}

fn transition(alert: &Alert, from: &str, now: i64) -> Transition {
    Transition {
        at: now,
        fingerprint: alert.fingerprint.clone(),
        slo: alert.slo.clone(),
        from: from.to_string(),
        to: alert.state.name().to_string(),
        labels: alert.labels.clone(),
        summary: alert
            .annotations
            .get("summary")
            .cloned()
            .unwrap_or_default(),
    }
}

/// Percent with up to three decimals, without trailing zeros.
pub fn percent(x: f64) -> String {
    let s = format!("{:.3}", x * 100.0);
    let s = s.trim_end_matches('0').trim_end_matches('.');
    format!("{s}%")
}

/// A duration as short human text (`2h 5m`).
pub fn human_seconds(secs: f64) -> String {
    let secs = secs.max(0.0).round() as u64;
    let (d, h, m, s) = (
        secs / 86_400,
        secs % 86_400 / 3600,
        secs % 3600 / 60,
        secs % 60,
    );
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m"),
        (0, _, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
    }
}

fn annotate(
    alert: &mut Alert,
    status: &SloStatus,
    instance: &InstanceStatus,
    kind: Kind<'_>,
    options: &LifecycleOptions,
) {
    let def = &status.definition;
    let v = &alert.values;
    let name = def.display_name.as_deref().unwrap_or(&def.id);
    let group = if instance.group.is_empty() {
        String::new()
    } else {
        format!(" [{}]", group_label(&instance.group))
    };
    let left = percent(v.error_budget_remaining);
    let (summary, mut description) = match kind {
        Kind::Burn(window, _) => {
            let (long, short) = (Window(window.long), Window(window.short));
            let summary = match alert.state {
                State::Resolved => format!(
                    "{name}{group}: the {long}/{short} burn rate is back under {:.3}×",
                    v.factor
                ),
                _ => format!(
                    "{name}{group} burns its error budget {:.1}× too fast ({} {long}/{short})",
                    v.long_burn_rate, window.severity
                ),
            };
            let description = format!(
                "Burn rate {:.2}× over {long} and {:.2}× over {short}; the {} condition needs {:.3}× over both. ",
                v.long_burn_rate, v.short_burn_rate, window.name, v.factor
            );
            (summary, description)
        }
        Kind::Budget(level) => {
            let summary = match (alert.state, level <= 0.0) {
                (State::Resolved, true) => {
                    format!("{name}{group}: the error budget is no longer spent ({left} left)")
                }
                (State::Resolved, false) => format!(
                    "{name}{group}: the error budget is back above {} ({left} left)",
                    percent(level)
                ),
                (_, true) => format!("{name}{group} has spent its error budget ({left} left)"),
                (_, false) => format!(
                    "{name}{group} has less than {} of its error budget left ({left})",
                    percent(level)
                ),
            };
            let description = format!(
                "The SLO's error-budget policy raises an event at {} left. Burn rate over the period: {:.2}×. ",
                budget_level_name(level),
                v.long_burn_rate
            );
            (summary, description)
        }
    };
    if let Some(sli) = v.sli {
        description.push_str(&format!(
            "SLI over the period: {} (objective {}). ",
            percent(sli),
            percent(v.objective)
        ));
    }
    description.push_str(&format!("Error budget left: {left}"));
    match v.time_to_exhaustion_seconds {
        Some(t) if t <= 0.0 => description.push_str(", exhausted."),
        Some(t) => description.push_str(&format!(
            "; at this rate it runs out in {}.",
            human_seconds(t)
        )),
        None => description.push('.'),
    }
    let a = &mut alert.annotations;
    a.insert("summary".to_string(), summary);
    a.insert("description".to_string(), description);
    a.insert(
        "slo_url".to_string(),
        format!(
            "{}/slos/{}",
            options.external_url.trim_end_matches('/'),
            def.id
        ),
    );
    if let Some(r) = &def.runbook_url {
        a.insert("runbook_url".to_string(), r.clone());
    }
    if let Some(d) = &def.description {
        a.insert("slo_description".to_string(), d.clone());
    }
    set_cause_annotations(alert);
}

/// Writes `example_trace_ids` and `cause_hint` from the alert's examples and
/// hints.
pub fn set_cause_annotations(alert: &mut Alert) {
    if !alert.examples.is_empty() {
        alert
            .annotations
            .insert("example_trace_ids".to_string(), alert.examples.join(","));
    }
    if !alert.hints.is_empty() {
        let text = alert
            .hints
            .iter()
            .map(|h| {
                format!(
                    "{}={} ({} of bad events, {} of all)",
                    h.attribute,
                    h.value,
                    percent(h.bad_share),
                    percent(h.total_share)
                )
            })
            .collect::<Vec<_>>()
            .join("; ");
        alert.annotations.insert("cause_hint".to_string(), text);
    }
}

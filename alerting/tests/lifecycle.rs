//! The alert lifecycle and the notification decisions of aggregation groups,
//! step by step with an injected time.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use smolder_alerting::alert::{Lifecycle, LifecycleOptions, State};
use smolder_alerting::config::AlertingConfig;
use smolder_alerting::dispatch::{Dispatcher, ReceiverTiming};
use smolder_alerting::route::CompiledRoute;
use smolder_alerting::store::NflogEntry;
use smolder_slo::SloDefinition;
use smolder_slo::engine::{Backfill, InstanceStatus, SloStatus, Snapshot};
use smolder_slo::eval::{AlertState, ConditionStatus, Evaluation};
use smolder_slo::model::{Origin, Window};
use smolder_slo::rollup::Counts;
use smolder_slo::spec::{Defaults, load_texts};

const S: i64 = 1_000_000_000;

fn definition() -> SloDefinition {
    let yaml = smolder_sample_data::fixtures::availability_slo("shop");
    let loaded = load_texts(
        &[("shop.yaml".to_string(), yaml)],
        Defaults::default(),
        &Origin::File(String::new()),
    );
    assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
    loaded.slos.into_iter().next().unwrap()
}

/// A snapshot in which the conditions of `def` are met as `met` says.
fn snapshot(def: &Arc<SloDefinition>, met: &[bool]) -> Snapshot {
    let conditions = def
        .alert_windows
        .iter()
        .zip(met)
        .map(|(w, &m)| ConditionStatus {
            name: w.name.clone(),
            severity: w.severity.clone(),
            long_window: Window(w.long),
            short_window: Window(w.short),
            factor: w.factor,
            long_burn_rate: if m { 20.0 } else { 0.5 },
            short_burn_rate: if m { 25.0 } else { 0.4 },
            met: m,
            low_traffic: false,
            long_bad_events: 0.0,
            min_bad_events: 0.0,
            events_at_threshold: 0.0,
        })
        .collect();
    Snapshot {
        at_ns: 0,
        slos: vec![SloStatus {
            definition: Arc::clone(def),
            instances: vec![InstanceStatus {
                group: BTreeMap::new(),
                evaluation: Evaluation {
                    at_ns: 0,
                    period_start_ns: 0,
                    data_since_ns: None,
                    period: Counts {
                        good: 75.0,
                        total: 100.0,
                    },
                    sli: Some(0.75),
                    error_budget_remaining: -24.0,
                    burn_rates: BTreeMap::new(),
                    window_events: BTreeMap::new(),
                    conditions,
                    time_to_exhaustion_seconds: Some(0.0),
                    alert_state: AlertState::Ok,
                },
            }],
            backfill: Backfill {
                done: true,
                progress: 1.0,
                through: String::new(),
            },
            dropped_group_rows: 0,
            error: None,
            last_update_ms: None,
            excluded_now: Vec::new(),
        }],
        problems: Vec::new(),
    }
}

fn options(keep: Duration) -> LifecycleOptions {
    LifecycleOptions {
        keep_firing_for: keep,
        external_url: "http://smolder".to_string(),
        ..LifecycleOptions::default()
    }
}

#[test]
fn pending_for_alert_after_then_firing_then_kept_then_resolved() {
    let mut def = definition();
    def.alert_windows[0].alert_after = Duration::from_secs(120);
    let def = Arc::new(def);
    let opts = options(Duration::from_secs(60));
    let mut lc = Lifecycle::default();
    let page = [true, false, false, false];
    let none = [false; 4];

    let step = lc.step(&snapshot(&def, &page), 0, &opts);
    assert_eq!(step.changed.len(), 1);
    assert_eq!(step.changed[0].state, State::Pending);
    assert_eq!(step.transitions[0].from, "inactive");
    let fp = step.changed[0].fingerprint.clone();
    assert!(step.fired.is_empty());

    let step = lc.step(&snapshot(&def, &page), 119 * S, &opts);
    assert_eq!(
        step.changed[0].state,
        State::Pending,
        "alertAfter not reached"
    );
    let step = lc.step(&snapshot(&def, &page), 120 * S, &opts);
    assert_eq!(step.changed[0].state, State::Firing);
    assert_eq!(step.fired, std::slice::from_ref(&fp));
    assert_eq!(step.changed[0].fired_at, Some(120 * S));
    let a = &step.changed[0];
    assert_eq!(a.labels["severity"], "page");
    assert_eq!(a.labels["window"], "1h/5m");
    assert_eq!(
        a.annotations["slo_url"],
        "http://smolder/slos/shop-availability"
    );
    assert!(
        a.annotations["summary"].contains("20.0× too fast"),
        "{:?}",
        a.annotations
    );

    // The condition stops holding: it keeps firing for keep_firing_for...
    let step = lc.step(&snapshot(&def, &none), 130 * S, &opts);
    assert_eq!(step.changed[0].state, State::Firing);
    // ...and holding again within it just goes on firing (no new alert).
    let step = lc.step(&snapshot(&def, &page), 150 * S, &opts);
    assert!(step.transitions.is_empty() && step.fired.is_empty());
    let step = lc.step(&snapshot(&def, &none), 160 * S, &opts);
    assert_eq!(step.changed[0].state, State::Firing);
    let step = lc.step(&snapshot(&def, &none), 210 * S, &opts);
    assert_eq!(step.changed[0].state, State::Resolved);
    assert_eq!(step.changed[0].resolved_at, Some(210 * S));
    assert_eq!(
        (
            step.transitions[0].from.as_str(),
            step.transitions[0].to.as_str()
        ),
        ("firing", "resolved")
    );
    assert!(lc.active.is_empty());
}

#[test]
fn an_alert_firing_for_the_third_time_within_the_hour_is_flapping_and_holds() {
    let def = Arc::new(definition());
    let opts = LifecycleOptions {
        flap_window: Duration::from_secs(3600),
        flap_count: 3,
        ..options(Duration::from_secs(300))
    };
    let mut lc = Lifecycle::default();
    let page = [true, false, false, false];
    let none = [false; 4];
    let min = 60 * S;
    let mut notified = Vec::new();
    // The burn rate crosses the page threshold for a minute every 12
    // minutes, for two hours.
    for m in 0..120 {
        let met = if m % 12 == 0 { &page } else { &none };
        let step = lc.step(&snapshot(&def, met), m * min, &opts);
        for t in step.transitions {
            notified.push((m, t.to));
        }
    }
    let flapping = lc.active.values().all(|a| a.flapping);
    // Fired at 0, resolved 5 minutes after (kept for keep_firing_for), fired
    // at 12, resolved at 17, fired at 24 — the third time: flapping, so it
    // holds until an hour without the condition, which never comes.
    let expect: Vec<(i64, String)> = [
        (0, "firing"),
        (5, "resolved"),
        (12, "firing"),
        (17, "resolved"),
        (24, "firing"),
    ]
    .iter()
    .map(|(m, s)| (*m, s.to_string()))
    .collect();
    assert_eq!(notified, expect);
    assert!(flapping && lc.active.len() == 1, "{:?}", lc.active);
    // Quiet for an hour: it resolves, and is no longer flapping when it
    // fires again once the old firings are out of the window.
    let mut m = 120;
    let mut resolved_at = None;
    while resolved_at.is_none() && m < 300 {
        m += 1;
        let step = lc.step(&snapshot(&def, &none), m * min, &opts);
        if step.transitions.iter().any(|t| t.to == "resolved") {
            resolved_at = Some(m);
        }
    }
    assert_eq!(
        resolved_at,
        Some(108 + 60),
        "an hour after the last time it held"
    );
    let step = lc.step(&snapshot(&def, &page), 300 * min, &opts);
    assert_eq!(step.changed[0].state, State::Firing);
    assert!(!step.changed[0].flapping);
}

#[test]
fn a_pending_alert_that_stops_is_dropped_and_a_deleted_slo_resolves() {
    let mut def = definition();
    def.alert_windows[0].alert_after = Duration::from_secs(120);
    let def = Arc::new(def);
    let opts = options(Duration::ZERO);
    let mut lc = Lifecycle::default();
    lc.step(&snapshot(&def, &[true, true, false, false]), 0, &opts);
    // page-1h is pending, page-6h (alertAfter 0) fires at once.
    let states: Vec<State> = {
        let mut v: Vec<_> = lc.active.values().map(|a| a.state).collect();
        v.sort_by_key(|s| s.name());
        v
    };
    assert_eq!(states, [State::Firing, State::Pending]);
    let step = lc.step(&snapshot(&def, &[false, true, false, false]), 10 * S, &opts);
    assert_eq!(step.dropped.len(), 1);
    assert_eq!(step.transitions[0].to, "inactive");
    // The SLO disappears: its firing alert resolves.
    let empty = Snapshot::default();
    let step = lc.step(&empty, 20 * S, &opts);
    assert_eq!(step.changed.len(), 1);
    assert_eq!(step.changed[0].state, State::Resolved);
    assert_eq!(
        step.changed[0].annotations["description"],
        "The SLO was deleted."
    );
}

#[test]
fn an_slo_still_backfilling_does_not_change_its_alerts() {
    let def = Arc::new(definition());
    let opts = options(Duration::ZERO);
    let mut lc = Lifecycle::default();
    let mut snap = snapshot(&def, &[true, false, false, false]);
    snap.slos[0].backfill.done = false;
    let step = lc.step(&snap, 0, &opts);
    assert!(step.changed.is_empty(), "no alert from partial rollups");
}

/// A snapshot in which no burn-rate condition is met and `remaining` of
/// the error budget is left.
fn with_budget(def: &Arc<SloDefinition>, remaining: f64) -> Snapshot {
    let mut snap = snapshot(def, &[false; 4]);
    let e = &mut snap.slos[0].instances[0].evaluation;
    e.error_budget_remaining = remaining;
    // The SLI that leaves that much of a 99 % objective's budget.
    e.period = Counts {
        good: 10_000.0 - 100.0 * (1.0 - remaining),
        total: 10_000.0,
    };
    e.sli = Some(e.period.good / e.period.total);
    snap
}

/// (budget_level, state) of the alerts a step changed, sorted.
fn budget_changes(step: &smolder_alerting::alert::Step) -> Vec<(String, State)> {
    let mut v: Vec<(String, State)> = step
        .changed
        .iter()
        .map(|a| (a.labels["budget_level"].clone(), a.state))
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

#[test]
fn budget_events_fire_as_the_budget_falls_below_each_level_and_resolve_as_it_recovers() {
    let mut def = definition();
    def.budget_levels = vec![0.5, 0.25, 0.0];
    let def = Arc::new(def);
    let opts = options(Duration::from_secs(60));
    let mut lc = Lifecycle::default();

    let step = lc.step(&with_budget(&def, 0.6), 0, &opts);
    assert!(step.changed.is_empty(), "{:?}", step.changed);

    // Below 50 %: one event, at once (no alertAfter), routed by its labels.
    let step = lc.step(&with_budget(&def, 0.4), 10 * S, &opts);
    assert_eq!(step.fired.len(), 1);
    let a = &step.changed[0];
    assert_eq!(a.state, State::Firing);
    assert_eq!(a.labels["alertname"], "SLOErrorBudget");
    assert_eq!(a.labels["severity"], "budget");
    assert_eq!(a.labels["condition"], "budget 50%");
    assert_eq!(a.labels["budget_level"], "50%");
    assert_eq!(a.labels["slo"], "shop-availability");
    assert_eq!(a.values.budget_level, Some(0.5));
    assert!(
        (a.values.long_burn_rate - 0.6).abs() < 1e-9,
        "{:?}",
        a.values
    );
    assert_eq!(
        a.annotations["summary"],
        "shop-availability has less than 50% of its error budget left (40%)"
    );
    assert!(
        a.annotations["description"].contains("Error budget left: 40%"),
        "{:?}",
        a.annotations
    );

    // Below 25 % and then spent: each level is its own event; those above
    // go on firing without a new transition.
    let step = lc.step(&with_budget(&def, 0.2), 20 * S, &opts);
    assert_eq!(step.fired.len(), 1);
    assert_eq!(
        budget_changes(&step),
        [("25%".into(), State::Firing), ("50%".into(), State::Firing)]
    );
    assert_eq!(step.transitions.len(), 1);
    let step = lc.step(&with_budget(&def, -0.05), 30 * S, &opts);
    let spent: Vec<_> = step
        .changed
        .iter()
        .filter(|a| a.labels["budget_level"] == "exhausted")
        .collect();
    assert_eq!(spent.len(), 1);
    assert_eq!(spent[0].labels["condition"], "budget exhausted");
    assert_eq!(
        spent[0].annotations["summary"],
        "shop-availability has spent its error budget (-5% left)"
    );

    // Back to 30 %: the spent and 25 % events resolve once that held for
    // keep_firing_for; the 50 % one goes on.
    let step = lc.step(&with_budget(&def, 0.3), 40 * S, &opts);
    assert!(step.transitions.is_empty());
    let step = lc.step(&with_budget(&def, 0.3), 100 * S, &opts);
    assert_eq!(
        budget_changes(&step),
        [
            ("25%".into(), State::Resolved),
            ("50%".into(), State::Firing),
            ("exhausted".into(), State::Resolved)
        ]
    );
    let summaries: Vec<&str> = step
        .changed
        .iter()
        .filter(|a| a.state == State::Resolved)
        .map(|a| a.annotations["summary"].as_str())
        .collect();
    assert!(
        summaries.contains(&"shop-availability: the error budget is back above 25% (30% left)")
            && summaries
                .contains(&"shop-availability: the error budget is no longer spent (30% left)"),
        "{summaries:?}"
    );
    assert_eq!(lc.active.len(), 1);

    // Burn-rate alerts and budget events are distinct alerts of the SLO.
    let mut both = with_budget(&def, 0.3);
    both.slos[0].instances[0].evaluation.conditions[0].met = true;
    let step = lc.step(&both, 110 * S, &opts);
    assert_eq!(step.fired.len(), 1);
    assert_eq!(lc.active.len(), 2);
}

fn route(toml_text: &str) -> CompiledRoute {
    let cfg: AlertingConfig = toml::from_str(toml_text).unwrap();
    CompiledRoute::compile(cfg.route.as_ref().unwrap()).unwrap()
}

#[test]
fn groups_wait_notify_changes_repeat_and_resolve_like_alertmanager() {
    let def = Arc::new(definition());
    let mut lc = Lifecycle::default();
    let opts = options(Duration::ZERO);
    let root = route(
        "[route]\nreceiver = \"r\"\ngroup_wait = \"10s\"\ngroup_interval = \"30s\"\nrepeat_interval = \"1h\"\ngroup_by = [\"slo\"]\n",
    );
    let timing = ReceiverTiming::default();
    let mut d = Dispatcher::default();
    let mut nflog: Option<NflogEntry> = None;
    let feed = |d: &mut Dispatcher, lc: &mut Lifecycle, met: [bool; 4], now: i64| {
        let step = lc.step(&snapshot(&def, &met), now, &opts);
        for a in &step.changed {
            for r in root.routes_for(&a.labels) {
                d.insert(a, r, timing, now);
            }
        }
    };
    let flush = |d: &mut Dispatcher, nflog: &mut Option<NflogEntry>, now: i64| {
        let mut out = Vec::new();
        for id in d.due(now) {
            if let Some(f) = d.flush(&id, now, nflog.clone(), |_| false, true, "http://x", 0) {
                *nflog = Some(f.nflog.clone());
                out.push(f.notification);
            }
        }
        out
    };

    feed(&mut d, &mut lc, [true, false, false, false], 0);
    assert!(flush(&mut d, &mut nflog, 9 * S).is_empty(), "group_wait");
    let first = flush(&mut d, &mut nflog, 10 * S);
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].status, "firing");
    assert_eq!(first[0].alerts.len(), 1);
    assert_eq!(
        first[0].thread, first[0].id,
        "the first notification starts the thread"
    );
    // A second alert joins: notified at the next group_interval, not before.
    feed(&mut d, &mut lc, [true, true, false, false], 15 * S);
    assert!(flush(&mut d, &mut nflog, 20 * S).is_empty());
    let second = flush(&mut d, &mut nflog, 40 * S);
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].alerts.len(), 2);
    assert_eq!(second[0].thread, first[0].id, "same thread");
    // Nothing changes: silence until repeat_interval.
    assert!(flush(&mut d, &mut nflog, 70 * S).is_empty());
    assert!(flush(&mut d, &mut nflog, 3600 * S).is_empty());
    let repeat = flush(&mut d, &mut nflog, 3640 * S);
    assert_eq!(
        repeat.len(),
        1,
        "repeat_interval after the last notification"
    );
    // Everything resolves: one resolved notification with both alerts.
    feed(&mut d, &mut lc, [false; 4], 3650 * S);
    let resolved = flush(&mut d, &mut nflog, 3670 * S);
    assert_eq!(resolved.len(), 1);
    assert_eq!(resolved[0].status, "resolved");
    assert_eq!(resolved[0].alerts.len(), 2);
    assert!(
        resolved[0]
            .alerts
            .iter()
            .all(|a| a.state == State::Resolved)
    );
    assert_eq!(resolved[0].thread, first[0].id);
    assert!(d.groups().next().is_none(), "the empty group is gone");
    assert_eq!(
        nflog.as_ref().unwrap().thread,
        None,
        "the next incident starts a new thread"
    );
}

#[test]
fn a_restored_group_does_not_notify_what_the_log_already_has() {
    let def = Arc::new(definition());
    let mut lc = Lifecycle::default();
    let opts = options(Duration::ZERO);
    let root = route("[route]\nreceiver = \"r\"\n");
    let step = lc.step(&snapshot(&def, &[true, false, false, false]), 0, &opts);
    let alert = step.changed[0].clone();
    // As after a restart: the group is rebuilt from the stored alert and the
    // notification log says it was notified a minute ago.
    let mut d = Dispatcher::default();
    for r in root.routes_for(&alert.labels) {
        d.insert(&alert, r, ReceiverTiming::default(), 60 * S);
    }
    let log = NflogEntry {
        firing: vec![alert.fingerprint.clone()],
        sent_at: 0,
        thread: Some("msg_first".to_string()),
    };
    for id in d.due(60 * S) {
        let out = d.flush(&id, 60 * S, Some(log.clone()), |_| false, true, "", 0);
        assert!(out.is_none(), "already notified as firing");
    }
    // A suppressed alert is not notified either.
    let mut d = Dispatcher::default();
    for r in root.routes_for(&alert.labels) {
        d.insert(&alert, r, ReceiverTiming::default(), 0);
    }
    for id in d.due(0) {
        assert!(d.flush(&id, 0, None, |_| true, true, "", 0).is_none());
    }
}

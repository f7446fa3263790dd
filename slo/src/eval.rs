//! Evaluation: from an instance's rollups to its SLI, error budget, burn rates
//! and alert conditions at one instant. The math of DESIGN.md ("SLO math").
//!
//! Windows are whole buckets: a window of length W at time `now` covers the
//! last ⌈W / width⌉ buckets, the one containing `now` included. So does a
//! rolling period; a calendar period covers the buckets that start within it.
//!
//! The low-traffic guard: a burn rate over a handful of events means nothing
//! (one failure among the first 40 requests burns a 99.9 % budget 25 times
//! too fast), so a condition is only met when the burn of its long window
//! rests on at least `min_bad_events` bad events (5 by default) — for a
//! window burning exactly at its factor that is min_bad_events / (factor ×
//! (1 − objective)) events ([`events_at_threshold`]: 348 in the hour for the
//! 14.4× page of a 99.9 % SLO); a faster burn needs fewer. Under a burn just
//! at the objective, five failures in so few events are very unlikely, so
//! what pages is a real change. The short window only confirms that the
//! burn goes on: it needs events, not as many.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use crate::model::{Period, Severity, SloDefinition, Window, duration_ns};
use crate::rollup::{Counts, Rollup};

/// The state of one alert condition (a pair of windows).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConditionStatus {
    /// The condition's name.
    pub name: String,
    /// `page`, `ticket` …
    pub severity: Severity,
    /// The long window (`1h`).
    pub long_window: Window,
    /// The short window (`5m`).
    pub short_window: Window,
    /// The burn rate both windows must reach.
    pub factor: f64,
    /// Burn rate over the long window.
    pub long_burn_rate: f64,
    /// Burn rate over the short window.
    pub short_burn_rate: f64,
    /// Whether both burn rates reach the factor (and both windows have enough
    /// events).
    pub met: bool,
    /// Whether a window had fewer events than the low-traffic guard asks.
    pub low_traffic: bool,
    /// Bad events in the long window.
    pub long_bad_events: f64,
    /// The bad events the long window needs before the condition can be met
    /// (the low-traffic guard).
    pub min_bad_events: f64,
    /// The events the long window holds when it burns exactly at the factor
    /// with `min_bad_events` bad ones ([`events_at_threshold`]).
    pub events_at_threshold: f64,
}

/// Everything known about one SLO instance at one instant.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evaluation {
    /// Evaluation time (Unix nanoseconds).
    pub at_ns: i64,
    /// Start of the period the budget covers (Unix nanoseconds).
    pub period_start_ns: i64,
    /// Start of the period's first bucket with events: a young SLO's
    /// figures cover only the time since (`None` without events).
    pub data_since_ns: Option<i64>,
    /// Good and total over the period.
    pub period: Counts,
    /// good / total over the period; `None` without events.
    pub sli: Option<f64>,
    /// 1 − bad / ((1 − objective) · total) over the period; 1 without events.
    /// Negative once the budget is overspent.
    pub error_budget_remaining: f64,
    /// Burn rate per distinct alert window, shortest first.
    pub burn_rates: BTreeMap<Window, f64>,
    /// Events per alert window.
    pub window_events: BTreeMap<Window, f64>,
    /// The alert conditions, in the policy's order.
    pub conditions: Vec<ConditionStatus>,
    /// At the burn rate of the shortest long window, when the budget runs out
    /// (seconds from now); 0 when it has, `None` when it does not burn.
    pub time_to_exhaustion_seconds: Option<f64>,
    /// The severity of the most severe condition met, or `ok`.
    pub alert_state: AlertState,
}

/// An instance's alert state at one instant: no condition met, or the
/// severity of the most severe one met. Serialized as `ok` or the severity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlertState {
    /// No condition is met.
    Ok,
    /// A condition of this severity is met (the first in the policy's
    /// order, which lists the most severe first).
    Met(Severity),
}

impl AlertState {
    /// `ok` or the severity.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Ok => "ok",
            Self::Met(s) => s.as_str(),
        }
    }
}

impl Serialize for AlertState {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// Window length as short text: `5m`, `1h`, `3d`.
pub fn window_name(d: Duration) -> String {
    Window(d).to_string()
}

/// The error budget, 1 − objective, without the binary rounding noise of the
/// subtraction (1 − 0.99 is 0.010000000000000009 in floating point; 0.01
/// here), so a 10% error rate at 99% burns at exactly 10.
pub fn error_budget(objective: f64) -> f64 {
    ((1.0 - objective) * 1e12).round() / 1e12
}

/// Burn rate: (bad / total) / (1 − objective); 0 without events.
pub fn burn_rate(counts: Counts, objective: f64) -> f64 {
    if counts.total <= 0.0 {
        return 0.0;
    }
    counts.bad() / counts.total / error_budget(objective)
}

/// Budget remaining: 1 − bad / ((1 − objective) · total); 1 without events.
pub fn budget_remaining(counts: Counts, objective: f64) -> f64 {
    if counts.total <= 0.0 {
        return 1.0;
    }
    1.0 - counts.bad() / (error_budget(objective) * counts.total)
}

/// The first bucket of the window of length `window` ending at `now_ns`
/// (the last is the one containing `now_ns`).
fn window_start(bucket_ns: i64, now_ns: i64, window: Duration) -> i64 {
    let buckets = (duration_ns(window) + bucket_ns - 1) / bucket_ns;
    now_ns.div_euclid(bucket_ns) - buckets + 1
}

/// The counts of the window of length `window` ending at `now_ns`.
pub fn window_counts(rollup: &Rollup, bucket_ns: i64, now_ns: i64, window: Duration) -> Counts {
    rollup.sum(
        window_start(bucket_ns, now_ns, window),
        now_ns.div_euclid(bucket_ns),
    )
}

/// The first bucket of the period at `now_ns`: a rolling period is a window
/// of its length; a calendar period starts with the first bucket that starts
/// within it.
pub fn period_first_bucket(def: &SloDefinition, bucket_ns: i64, now_ns: i64) -> i64 {
    match &def.period {
        Period::Rolling { duration } => window_start(bucket_ns, now_ns, *duration),
        Period::Calendar { .. } => {
            let (start, _) = def.period_bounds(now_ns);
            start.div_euclid(bucket_ns) + i64::from(start.rem_euclid(bucket_ns) != 0)
        }
    }
}

/// The events a window burning exactly at `factor` holds when
/// `min_bad_events` of them are bad: ⌈min_bad_events / (factor × (1 −
/// objective))⌉ — how much traffic the low-traffic guard asks of a service
/// for its slowest burn to page (0 without a guard).
pub fn events_at_threshold(def: &SloDefinition, factor: f64) -> f64 {
    if def.min_bad_events > 0.0 && factor > 0.0 {
        // Less a hair, so that 5 / (1 × 0.005) is 1000, not 1001.
        (def.min_bad_events / (factor * error_budget(def.objective)) - 1e-9).ceil()
    } else {
        0.0
    }
}

/// The tests an alert condition passes when it is met: the low-traffic
/// guard's three and a burn at or above the factor over both windows.
///
/// Each test is monotone in the good and in the bad events of a window (more
/// bad events never lower a burn rate; more good ones never raise it), which
/// is what lets a backtest know a condition's outcome over every instant
/// within a bucket from the bucket's extremes alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConditionChecks {
    /// The long window holds at least `min_bad_events` bad events.
    pub enough_bad: bool,
    /// The long window holds at least `min_events` events.
    pub long_events: bool,
    /// The short window holds at least `min_events` events.
    pub short_events: bool,
    /// The long window burns at or above the factor.
    pub long_burns: bool,
    /// The short window burns at or above the factor.
    pub short_burns: bool,
}

impl ConditionChecks {
    /// The tests of a condition of `def` with `factor` over the windows'
    /// counts.
    pub fn of(def: &SloDefinition, factor: f64, long: Counts, short: Counts) -> Self {
        let floor = def.min_events.max(f64::MIN_POSITIVE);
        Self {
            // Counts are sums of floats: a hair of tolerance on "at least 5".
            enough_bad: long.bad() + 1e-9 >= def.min_bad_events,
            long_events: long.total >= floor,
            short_events: short.total >= floor,
            long_burns: burn_rate(long, def.objective) >= factor,
            short_burns: burn_rate(short, def.objective) >= factor,
        }
    }

    /// The tests in a fixed order.
    pub fn all(&self) -> [bool; 5] {
        [
            self.enough_bad,
            self.long_events,
            self.short_events,
            self.long_burns,
            self.short_burns,
        ]
    }

    /// Whether a window had too few events (or bad events) to be trusted.
    pub fn low_traffic(&self) -> bool {
        !(self.enough_bad && self.long_events && self.short_events)
    }

    /// Whether the condition is met.
    pub fn met(&self) -> bool {
        self.all().iter().all(|&b| b)
    }
}

impl Evaluation {
    /// Adds the burn rates and events over `windows` that the SLO's own
    /// alert windows do not already give.
    pub fn add_windows(
        &mut self,
        def: &SloDefinition,
        rollup: &Rollup,
        bucket_ns: i64,
        windows: &[Window],
    ) {
        for &w in windows {
            if self.burn_rates.contains_key(&w) {
                continue;
            }
            let counts = window_counts(rollup, bucket_ns, self.at_ns, w.0);
            self.burn_rates.insert(w, burn_rate(counts, def.objective));
            self.window_events.insert(w, counts.total);
        }
    }
}

/// Evaluates one instance at `now_ns`.
pub fn evaluate(def: &SloDefinition, rollup: &Rollup, bucket_ns: i64, now_ns: i64) -> Evaluation {
    let (_, period_end) = def.period_bounds(now_ns);
    let first = period_first_bucket(def, bucket_ns, now_ns);
    let period_start = first * bucket_ns;
    let now_index = now_ns.div_euclid(bucket_ns);
    let period = rollup.sum(first, now_index);
    let data_since_ns = rollup
        .first_from(first)
        .filter(|&i| i <= now_index)
        .map(|i| i * bucket_ns);
    let mut burn_rates = BTreeMap::new();
    let mut window_events = BTreeMap::new();
    let mut window = |d: Duration| {
        let name = Window(d);
        let counts = window_counts(rollup, bucket_ns, now_ns, d);
        let rate = burn_rate(counts, def.objective);
        burn_rates.insert(name, rate);
        window_events.insert(name, counts.total);
        (rate, counts)
    };
    let mut conditions = Vec::with_capacity(def.alert_windows.len());
    for w in &def.alert_windows {
        let (long, long_counts) = window(w.long);
        let (short, short_counts) = window(w.short);
        let checks = ConditionChecks::of(def, w.factor, long_counts, short_counts);
        conditions.push(ConditionStatus {
            name: w.name.clone(),
            severity: w.severity.clone(),
            long_window: Window(w.long),
            short_window: Window(w.short),
            factor: w.factor,
            long_burn_rate: long,
            short_burn_rate: short,
            met: checks.met(),
            low_traffic: checks.low_traffic(),
            long_bad_events: long_counts.bad(),
            min_bad_events: def.min_bad_events,
            events_at_threshold: events_at_threshold(def, w.factor),
        });
    }
    let remaining = budget_remaining(period, def.objective);
    // The burn rate an on-call cares about now: the shortest long window's.
    let current = def
        .alert_windows
        .iter()
        .min_by_key(|w| w.long)
        .and_then(|w| burn_rates.get(&Window(w.long)).copied())
        .unwrap_or(0.0);
    let period_len = (period_end - period_start) as f64 / 1e9;
    let time_to_exhaustion = if remaining <= 0.0 {
        Some(0.0)
    } else if current > 0.0 {
        Some(remaining * period_len / current)
    } else {
        None
    };
    let alert_state = severity_order(&conditions);
    Evaluation {
        at_ns: now_ns,
        period_start_ns: period_start,
        data_since_ns,
        period,
        sli: period.ratio(),
        error_budget_remaining: remaining,
        burn_rates,
        window_events,
        conditions,
        time_to_exhaustion_seconds: time_to_exhaustion,
        alert_state,
    }
}

/// The severity of the first condition met (policies list the most severe
/// first), or `ok`.
fn severity_order(conditions: &[ConditionStatus]) -> AlertState {
    conditions
        .iter()
        .find(|c| c.met)
        .map_or(AlertState::Ok, |c| AlertState::Met(c.severity.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Budgeting, Sli, SliKind, default_alert_windows};
    use smolder_common::Table;

    const MIN: i64 = 60_000_000_000;
    const HOUR: i64 = 60 * MIN;
    const DAY: i64 = 24 * HOUR;

    pub(crate) fn slo(objective: f64) -> SloDefinition {
        let period = Duration::from_secs(30 * 86_400);
        SloDefinition {
            id: "test".into(),
            display_name: None,
            description: None,
            service: "svc".into(),
            objective,
            period: Period::Rolling { duration: period },
            budgeting: Budgeting::Occurrences,
            sli: Sli {
                table: Table::Spans,
                kind: SliKind::Rows {
                    good: Some("true".into()),
                    bad: None,
                    total: "true".into(),
                },
            },
            group_by: vec![],
            max_groups: 1,
            min_events: 0.0,
            min_bad_events: 0.0,
            alert_windows: default_alert_windows(period),
            freeze_below: 0.0,
            budget_levels: vec![],
            exclusions: vec![],
            runbook_url: None,
            labels: Default::default(),
            notification_targets: vec![],
            tenant: Default::default(),
            origin: Default::default(),
            sli_fields: Default::default(),
        }
    }

    fn ring() -> Rollup {
        Rollup::new(Budgeting::Occurrences, (31 * DAY / MIN) as usize, 0)
    }

    #[test]
    fn a_90_percent_slo_never_trips_the_14_4_pair() {
        let def = slo(0.90);
        let mut r = ring();
        // A total outage for the last two hours: every event bad.
        let now = 30 * DAY;
        let values: Vec<_> = ((now - 2 * HOUR) / MIN..=now / MIN)
            .map(|i| (i, [0.0, 100.0]))
            .collect();
        r.replace(values[0].0, now / MIN, &values);
        let e = evaluate(&def, &r, MIN, now);
        assert!(
            (e.burn_rates[&Window(Duration::from_secs(3600))] - 10.0).abs() < 1e-9,
            "{e:?}"
        );
        assert!(!e.conditions[0].met, "10x never reaches 14.4x");
        assert!(e.conditions[1].met, "but the 6x pair fires");
        assert_eq!(e.alert_state.as_str(), "page");
    }

    #[test]
    fn one_failure_in_ten_requests_an_hour() {
        let def = slo(0.999);
        let mut r = ring();
        let now = 30 * DAY - 1;
        // Ten requests an hour for 30 days, one every 6 minutes; the last one failed.
        let mut values = Vec::new();
        let mut i = now / MIN;
        while i > now / MIN - 30 * DAY / MIN {
            values.push((i, [1.0, 1.0]));
            i -= 6;
        }
        values.reverse();
        let last = values.len() - 1;
        values[last].1 = [0.0, 1.0];
        r.replace(values[0].0, now / MIN, &values);
        let e = evaluate(&def, &r, MIN, now);
        let burn = e.burn_rates[&Window(Duration::from_secs(3600))];
        assert!(
            (burn - 100.0).abs() < 1e-6,
            "one bad of 10 at 99.9%: {burn}"
        );
        // One bad of 7,200 events: 1 / (0.001 × 7200) = 1/7.2 of the budget.
        assert_eq!(e.period.total, 7200.0);
        assert_eq!(
            e.data_since_ns,
            Some(values[0].0 * MIN),
            "the first bucket with events"
        );
        let consumed = 1.0 - e.error_budget_remaining;
        assert!((consumed - 1.0 / 7.2).abs() < 1e-9, "{consumed}");
    }

    #[test]
    fn no_traffic_is_not_an_outage() {
        let def = slo(0.999);
        let e = evaluate(&def, &ring(), MIN, 30 * DAY);
        assert_eq!(e.sli, None);
        assert_eq!(e.data_since_ns, None);
        assert_eq!(e.error_budget_remaining, 1.0);
        assert!(e.burn_rates.values().all(|&b| b == 0.0));
        assert!(e.conditions.iter().all(|c| !c.met && c.low_traffic));
        assert_eq!(e.alert_state, AlertState::Ok);
        assert_eq!(e.time_to_exhaustion_seconds, None);
    }

    #[test]
    fn no_condition_is_met_on_fewer_than_five_bad_events() {
        let mut def = slo(0.999);
        def.min_bad_events = 5.0;
        // 5 / (14.4 × 0.001) = 347.2…; 5 / (1 × 0.001) = 5000 exactly.
        assert_eq!(events_at_threshold(&def, 14.4), 348.0);
        assert_eq!(events_at_threshold(&def, 1.0), 5000.0);
        let now = 30 * DAY;
        let mut r = ring();
        // The first minute of a service: 2 failures among 40 requests burn
        // the budget 50 times too fast, and mean nothing.
        r.replace(now / MIN, now / MIN, &[(now / MIN, [38.0, 40.0])]);
        let e = evaluate(&def, &r, MIN, now);
        assert!(e.conditions[0].long_burn_rate >= 14.4);
        assert!(
            e.conditions.iter().all(|c| c.low_traffic && !c.met),
            "{e:?}"
        );
        assert_eq!(e.conditions[0].long_bad_events, 2.0);
        assert_eq!(e.conditions[0].events_at_threshold, 348.0);
        // Five failures among 40: a real change, it pages.
        r.replace(now / MIN, now / MIN, &[(now / MIN, [35.0, 40.0])]);
        let e = evaluate(&def, &r, MIN, now);
        assert!(e.conditions[0].met, "{:?}", e.conditions[0]);
        // The explicit floor of events still applies.
        def.min_events = 50.0;
        assert!(!evaluate(&def, &r, MIN, now).conditions[0].met);
        def.min_events = 0.0;
        // An hour of 7 requests a minute, one failing: enough events.
        let values: Vec<_> = (now / MIN - 59..=now / MIN)
            .map(|i| (i, [6.0, 7.0]))
            .collect();
        r.replace(values[0].0, now / MIN, &values);
        let e = evaluate(&def, &r, MIN, now);
        assert_eq!(e.window_events[&Window(Duration::from_secs(3600))], 420.0);
        assert!(!e.conditions[0].low_traffic, "{:?}", e.conditions[0]);
        assert!(e.conditions[0].met, "{:?}", e.conditions[0]);
    }

    /// A plain count of `buckets` whose start lies in `[from_ns, now's
    /// bucket]`, in budget units.
    fn plain(budgeting: &Budgeting, buckets: &[(i64, [f64; 2])], first: i64, last: i64) -> Counts {
        buckets
            .iter()
            .filter(|(i, _)| (first..=last).contains(i))
            .fold(Counts::default(), |c, (_, [g, t])| {
                let [g, t] = budgeting.units(*g, *t);
                Counts {
                    good: c.good + g,
                    total: c.total + t,
                }
            })
    }

    /// Equal counts (slice ratios summed in another order may differ in the
    /// last bit).
    fn same(a: Counts, b: Counts) -> bool {
        a.total == b.total && (a.good - b.good).abs() <= 1e-9 * b.good.max(1.0)
    }

    fn methods() -> Vec<Budgeting> {
        vec![
            Budgeting::Occurrences,
            Budgeting::Timeslices {
                slice_target: 0.9,
                slice: Duration::from_secs(60),
            },
            Budgeting::RatioTimeslices {
                slice: Duration::from_secs(60),
            },
        ]
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

        /// Over 33 days of minute buckets, a 30-day rolling period counts
        /// exactly its 43,200 buckets, and a calendar month exactly the
        /// buckets that start within it, for every budgeting method.
        #[test]
        fn periods_cover_exactly_their_length_in_buckets(
            seed in proptest::collection::vec((0i64..33 * 1440, 0u8..20, 1u8..20), 50..400),
            now_offset in 0i64..3 * DAY,
            edge in 0i64..5,
        ) {
            let start = 1_767_225_600_000_000_000 / MIN * MIN; // 2026-01-01 UTC
            let now = start + 30 * DAY + now_offset;
            let now_index = now / MIN;
            let mut buckets: Vec<(i64, [f64; 2])> = seed
                .iter()
                .map(|&(i, g, t)| (start / MIN + i, [f64::from(g.min(t)), f64::from(t)]))
                .collect();
            // Buckets right at the rolling period's edge, where it went wrong.
            for k in 0..=edge {
                buckets.push((now_index - 43_200 + 1 - k, [1.0, 2.0]));
            }
            buckets.sort_by_key(|b| b.0);
            buckets.dedup_by_key(|b| b.0);
            let calendar = Period::Calendar {
                unit: crate::model::CalendarUnit::Month,
                count: 1,
                start: chrono::NaiveDate::from_ymd_opt(2024, 1, 1).unwrap().and_hms_opt(0, 0, 0).unwrap(),
                time_zone: chrono_tz::Europe::Berlin,
            };
            for budgeting in methods() {
                let mut r = Rollup::new(budgeting, 34 * 1440, 0);
                r.replace(buckets[0].0, now_index, &buckets);
                let mut def = slo(0.99);
                def.budgeting = budgeting;
                let e = evaluate(&def, &r, MIN, now);
                let expect = plain(&budgeting, &buckets, now_index - 43_200 + 1, now_index);
                proptest::prop_assert!(same(e.period, expect), "rolling, {:?}: {:?} ≠ {:?}", budgeting, e.period, expect);
                proptest::prop_assert_eq!(e.period_start_ns, (now_index - 43_200 + 1) * MIN);
                def.period = calendar.clone();
                let (from, _) = def.period_bounds(now);
                let e = evaluate(&def, &r, MIN, now);
                let first = from.div_euclid(MIN) + i64::from(from % MIN != 0);
                let expect = plain(&budgeting, &buckets, first, now_index);
                proptest::prop_assert!(same(e.period, expect), "calendar, {:?}: {:?} ≠ {:?}", budgeting, e.period, expect);
                proptest::prop_assert_eq!(e.period_start_ns, from);
            }
        }
    }

    #[test]
    fn low_traffic_guard_blocks_conditions() {
        let mut def = slo(0.99);
        def.min_events = 50.0;
        let mut r = ring();
        let now = 30 * DAY;
        r.replace(now / MIN, now / MIN, &[(now / MIN, [0.0, 10.0])]);
        let e = evaluate(&def, &r, MIN, now);
        assert!(e.burn_rates[&Window(Duration::from_secs(300))] > 14.4);
        assert!(e.conditions.iter().all(|c| c.low_traffic && !c.met));
        def.min_events = 10.0;
        let e = evaluate(&def, &r, MIN, now);
        assert!(e.conditions[0].met);
    }
}

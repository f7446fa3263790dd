//! The replay: a policy's alert lifecycle over an SLO's history, at the live
//! engine's tick instants, with its evaluation and its lifecycle.
//!
//! Live, the engine ticks at the multiples of its interval; at a tick `t` it
//! holds every bucket before the one `t` falls in, and of that bucket the
//! events before `t`. A replay steps [`Lifecycle`] at the same instants with
//! the same figures, so the alerts it raises fire and resolve at the
//! instants the live engine records.
//!
//! Most ticks cannot change anything — no condition can be met and no alert
//! is active — and are skipped. Whether a condition can be met at a tick
//! inside a bucket depends on the part of the bucket before the tick, which
//! the minute rollups do not hold. Every test of a condition is monotone in
//! that part's good and bad events ([`ConditionChecks`]), so evaluating the
//! tests at the four corners of "none to all of the bucket's good events ×
//! none to all of its bad ones" decides them for every tick in the bucket;
//! only where the corners disagree is the bucket read again from the
//! telemetry at the tick grid's resolution ([`SloEngine::scan`]) — a few
//! buckets around each change, each one query of one minute.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use smolder_slo::engine::{
    Backfill, GroupBuckets, GroupKey, History, InstanceStatus, SloStatus, Snapshot, group_map,
};
use smolder_slo::eval::{ConditionChecks, evaluate};
use smolder_slo::model::{Budgeting, SloDefinition, duration_ns};
use smolder_slo::rollup::{Counts, Rollup};
use smolder_slo::{Result, SloEngine};

use crate::alert::{Alert, Labels, Lifecycle, LifecycleOptions, State};

/// An alert a replay raised: it fired at `start` and resolved at `end`.
#[derive(Debug, Clone, PartialEq)]
pub struct Raised {
    /// Its identity (the live alert's fingerprint).
    pub fingerprint: String,
    /// Its labels.
    pub labels: Labels,
    /// The group's values (empty without groups).
    pub group: BTreeMap<String, String>,
    /// When its condition started holding (it was pending until `start`).
    pub pending_since: i64,
    /// When it fired.
    pub start: i64,
    /// When it resolved; `None` while it still fires at the range's end.
    pub end: Option<i64>,
    /// Highest long-window burn rate while it fired.
    pub peak_long_burn_rate: f64,
    /// Highest short-window burn rate while it fired.
    pub peak_short_burn_rate: f64,
    /// Budget remaining when it fired.
    pub budget_at_start: f64,
    /// Budget remaining when it resolved (or at the range's end).
    pub budget_at_end: f64,
    /// Whether it was flapping.
    pub flapping: bool,
}

impl Raised {
    /// The condition's window pair (`1h/5m`).
    pub fn condition(&self) -> &str {
        self.labels.get("window").map_or("", String::as_str)
    }

    /// The severity.
    pub fn severity(&self) -> &str {
        self.labels.get("severity").map_or("", String::as_str)
    }

    /// The condition's name in the policy.
    pub fn name(&self) -> &str {
        self.labels.get("condition").map_or("", String::as_str)
    }

    /// Share of the period's budget spent while it fired.
    pub fn budget_consumed(&self) -> f64 {
        (self.budget_at_start - self.budget_at_end).max(0.0)
    }
}

/// What a replay found.
#[derive(Debug, Default)]
pub struct Replay {
    /// The alerts raised, by start.
    pub alerts: Vec<Raised>,
    /// Tick instants in the range.
    pub ticks: u64,
    /// Ticks at which the lifecycle was stepped (the others could change
    /// nothing).
    pub stepped: u64,
    /// Buckets whose part before a tick decided a condition (refined at
    /// the tick grid's resolution).
    pub refined: u64,
    /// Of those, buckets read with a query of their own.
    pub queried: u64,
}

/// Buckets already read at the tick grid's resolution, by bucket index:
/// they do not depend on the policy, so variants of one SLO share them.
/// With [`Partials::prefetch`] the whole range is read at that resolution
/// once (one scan) and every minute is refined from memory — what a
/// comparison of many variants needs, each opening other minutes.
#[derive(Debug, Default, Clone)]
pub struct Partials {
    minutes: HashMap<i64, Arc<GroupBuckets>>,
    fine: Option<(i64, Arc<GroupBuckets>)>,
}

impl Partials {
    /// Reads `def`'s buckets of `[from, to]` at the resolution of a tick
    /// grid of `interval` over buckets of `bucket_ns`.
    pub async fn prefetch(
        &mut self,
        engine: &SloEngine,
        def: &SloDefinition,
        (from, to): (i64, i64),
        bucket_ns: i64,
        interval: Duration,
    ) -> Result<()> {
        let fine = gcd(duration_ns(interval).max(1), bucket_ns).max(1);
        let start = from.div_euclid(bucket_ns) * bucket_ns;
        let end = (to.div_euclid(bucket_ns) + 1) * bucket_ns;
        self.fine = Some((fine, Arc::new(engine.scan(def, start, end, fine).await?)));
        Ok(())
    }

    /// Bucket `k` (of width `b`) at resolution `fine`: from memory after a
    /// prefetch, else read (and kept); the flag says whether it was read.
    async fn minute(
        &mut self,
        engine: &SloEngine,
        def: &SloDefinition,
        k: i64,
        b: i64,
        fine: i64,
    ) -> Result<(Arc<GroupBuckets>, bool)> {
        if let Some(p) = self.minutes.get(&k) {
            return Ok((Arc::clone(p), false));
        }
        let (p, read) = match &self.fine {
            Some((width, all)) if *width == fine => {
                let (lo, hi) = (k * b / fine, (k + 1) * b / fine);
                let part = all
                    .iter()
                    .map(|(key, values)| {
                        let a = values.partition_point(|(i, _)| *i < lo);
                        let z = values.partition_point(|(i, _)| *i < hi);
                        (key.clone(), values[a..z].to_vec())
                    })
                    .collect();
                (Arc::new(part), false)
            }
            _ => (
                Arc::new(engine.scan(def, k * b, (k + 1) * b, fine).await?),
                true,
            ),
        };
        self.minutes.insert(k, Arc::clone(&p));
        Ok((p, read))
    }
}

/// Buckets replayed between two yields to the runtime.
const YIELD_EVERY: i64 = 1024;

fn gcd(a: i64, b: i64) -> i64 {
    if b == 0 { a.abs() } else { gcd(b, a % b) }
}

/// Good and bad events a bucket's part before a tick can hold at most, in
/// budget units: all of the bucket's for occurrences, one slice otherwise.
fn bucket_box(budgeting: &Budgeting, raw: [f64; 2]) -> (f64, f64) {
    match budgeting {
        Budgeting::Occurrences => (raw[0], (raw[1] - raw[0]).max(0.0)),
        _ if raw[1] <= 0.0 => (0.0, 0.0),
        _ => (1.0, 1.0),
    }
}

/// Cumulative budget units of a group's buckets, for window sums in two
/// lookups.
struct Prefix {
    first: i64,
    sums: Vec<[f64; 2]>,
}

impl Prefix {
    fn new(history: &History, rollup: &Rollup) -> Self {
        let budgeting = history.def.budgeting;
        let mut sums = Vec::with_capacity((history.last - history.first + 1) as usize);
        let mut acc = [0.0; 2];
        for i in history.first..=history.last {
            let [g, t] = rollup.get(i);
            let [ug, ut] = budgeting.units(g, t);
            acc[0] += ug;
            acc[1] += ut;
            sums.push(acc);
        }
        Self {
            first: history.first,
            sums,
        }
    }

    /// Units of buckets `from..=to`.
    fn sum(&self, from: i64, to: i64) -> Counts {
        let at = |i: i64| -> [f64; 2] {
            if i < self.first {
                return [0.0; 2];
            }
            let i = ((i - self.first) as usize).min(self.sums.len() - 1);
            self.sums[i]
        };
        if to < from {
            return Counts::default();
        }
        let (a, b) = (at(from - 1), at(to));
        Counts {
            good: b[0] - a[0],
            total: b[1] - a[1],
        }
    }
}

/// What a condition's tests say for every tick inside a bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Met,
    NotMet,
    /// Depends on the part of the bucket before the tick.
    Open,
}

/// Decides a condition of `def` (its long and short windows `n` buckets
/// long) over every instant inside bucket `k` from the box of what the
/// bucket's part before the instant can hold.
fn outcome(
    def: &SloDefinition,
    factor: f64,
    prefix: &Prefix,
    k: i64,
    (n_long, n_short): (i64, i64),
    (gu, bu): (f64, f64),
) -> Outcome {
    let long0 = prefix.sum(k - n_long + 1, k - 1);
    let short0 = prefix.sum(k - n_short + 1, k - 1);
    if (gu, bu) == (0.0, 0.0) {
        // Nothing can be added: one corner decides.
        let tests = ConditionChecks::of(def, factor, long0, short0).all();
        return if tests.iter().all(|&t| t) {
            Outcome::Met
        } else {
            Outcome::NotMet
        };
    }
    let with = |c: Counts, g: f64, b: f64| Counts {
        good: c.good + g,
        total: c.total + g + b,
    };
    let corners = [(0.0, 0.0), (gu, 0.0), (0.0, bu), (gu, bu)].map(|(g, b)| {
        ConditionChecks::of(def, factor, with(long0, g, b), with(short0, g, b)).all()
    });
    let mut all_true = true;
    for test in 0..5 {
        let values = corners.map(|c| c[test]);
        if values.iter().all(|&v| !v) {
            return Outcome::NotMet;
        }
        all_true &= values.iter().all(|&v| v);
    }
    if all_true {
        Outcome::Met
    } else {
        Outcome::Open
    }
}

/// Buckets a window of length `d` spans.
fn buckets(d: Duration, b: i64) -> i64 {
    (duration_ns(d) + b - 1) / b
}

/// Replays `def`'s alert policy over `history` (whose buckets must be
/// those of `def`'s indicator) at every multiple of `interval` in
/// `[from, to]`. `on_step` hears of the alerts each step changed (what
/// routing and grouping see).
#[allow(clippy::too_many_arguments)]
pub async fn replay(
    engine: &SloEngine,
    history: &mut History,
    def: &Arc<SloDefinition>,
    from: i64,
    to: i64,
    interval: Duration,
    options: &LifecycleOptions,
    partials: &mut Partials,
    on_step: &mut (dyn FnMut(i64, &[Alert]) + Send),
) -> Result<Replay> {
    // A replay decides the alert policy's burn-rate conditions: the ticks it
    // skips are those where none of them can change. The budget events of
    // the error-budget policy are not replayed.
    let def = &if def.budget_levels.is_empty() {
        Arc::clone(def)
    } else {
        let mut d = SloDefinition::clone(def);
        d.budget_levels.clear();
        Arc::new(d)
    };
    let b = history.bucket_ns;
    let every = duration_ns(interval).max(1);
    let fine = gcd(every, b).max(1);
    let windows: Vec<(i64, i64)> = def
        .alert_windows
        .iter()
        .map(|w| (buckets(w.long, b), buckets(w.short, b)))
        .collect();
    let keys: Vec<GroupKey> = history.groups.keys().cloned().collect();
    let prefixes: Vec<Prefix> = keys
        .iter()
        .map(|k| Prefix::new(history, &history.groups[k]))
        .collect();
    let mut lifecycle = Lifecycle::default();
    let mut out = Replay::default();
    let mut raised: HashMap<String, Raised> = HashMap::new();
    // The first multiple of the interval at or after `t`.
    let on_grid =
        |t: i64| t.div_euclid(every) * every + if t.rem_euclid(every) == 0 { 0 } else { every };
    let first_tick = on_grid(from);
    // The conditions met at the last tick, per instance and condition.
    let mut met = vec![false; keys.len() * windows.len()];
    // The last tick not stepped, with what it saw of its bucket.
    let mut previous: Option<(i64, i64, Vec<[f64; 2]>)> = None;
    let mut last_stepped = i64::MIN;
    for k in first_tick.div_euclid(b)..=to.div_euclid(b) {
        // A replay is seconds of CPU: let the other tasks of this worker
        // (ingest, the API) run between stretches of it.
        if k.rem_euclid(YIELD_EVERY) == 0 {
            tokio::task::yield_now().await;
        }
        let end = ((k + 1) * b - 1).min(to);
        let ticks: Vec<i64> = (0..)
            .map(|n| on_grid((k * b).max(first_tick)) + n * every)
            .take_while(|&t| t <= end)
            .collect();
        if ticks.is_empty() {
            continue;
        }
        out.ticks += ticks.len() as u64;
        // What each instance's conditions do at the bucket's start and
        // inside it.
        let mut may_meet = false;
        let mut open = false;
        let mut at_start = Vec::with_capacity(keys.len() * windows.len());
        let mut inside = Vec::with_capacity(keys.len() * windows.len());
        for (i, key) in keys.iter().enumerate() {
            let raw = history.groups[key].get(k);
            let boxed = bucket_box(&def.budgeting, raw);
            for (w, n) in def.alert_windows.iter().zip(&windows) {
                let first = outcome(def, w.factor, &prefixes[i], k, *n, (0.0, 0.0));
                let within = if boxed == (0.0, 0.0) {
                    first
                } else {
                    outcome(def, w.factor, &prefixes[i], k, *n, boxed)
                };
                may_meet |= ticks[0] == k * b && first == Outcome::Met;
                may_meet |= within != Outcome::NotMet && ticks.iter().any(|&t| t != k * b);
                open |= within == Outcome::Open && ticks.iter().any(|&t| t != k * b);
                at_start.push(first == Outcome::Met);
                inside.push(within);
            }
        }
        if !may_meet && lifecycle.active.is_empty() {
            met.fill(false);
            previous = None;
            continue;
        }
        let exact = if open {
            let (p, read) = partials.minute(engine, def, k, b, fine).await?;
            out.refined += 1;
            out.queried += u64::from(read);
            Some(p)
        } else {
            None
        };
        // What the live engine held of bucket `k` at `t`, per instance.
        let seen_at = |t: i64, key: &GroupKey, full: [f64; 2]| -> [f64; 2] {
            if t == k * b {
                [0.0; 2]
            } else if let Some(exact) = &exact {
                exact
                    .get(key)
                    .into_iter()
                    .flatten()
                    .fold([0.0; 2], |acc, (i, v)| {
                        if i * fine < t {
                            [acc[0] + v[0], acc[1] + v[1]]
                        } else {
                            acc
                        }
                    })
            } else {
                full
            }
        };
        for &t in &ticks {
            let seen: Vec<[f64; 2]> = keys
                .iter()
                .map(|key| seen_at(t, key, history.groups[key].get(k)))
                .collect();
            // Which conditions hold at `t`.
            let mut now_met = Vec::with_capacity(met.len());
            for (i, part) in seen.iter().enumerate() {
                for (c, (w, n)) in def.alert_windows.iter().zip(&windows).enumerate() {
                    let j = i * windows.len() + c;
                    now_met.push(if t == k * b {
                        at_start[j]
                    } else {
                        match inside[j] {
                            Outcome::Met => true,
                            Outcome::NotMet => false,
                            Outcome::Open => {
                                let [g, tot] = def.budgeting.units(part[0], part[1]);
                                let add = |c: Counts| Counts {
                                    good: c.good + g,
                                    total: c.total + tot,
                                };
                                let long = add(prefixes[i].sum(k - n.0 + 1, k - 1));
                                let short = add(prefixes[i].sum(k - n.1 + 1, k - 1));
                                ConditionChecks::of(def, w.factor, long, short).met()
                            }
                        }
                    });
                }
            }
            // Between changes a step only moves the alerts' figures: the
            // lifecycle is stepped where a condition starts or stops
            // holding (and at the tick before, which the alerts' last
            // instant met is), and where a timer (`alertAfter`,
            // `keep_firing_for`) comes due.
            let changed = now_met != met;
            let due = next_due(&lifecycle, def, options, last_stepped).is_some_and(|d| d <= t);
            if changed
                && !lifecycle.active.is_empty()
                && let Some((tp, kp, seen_p)) = previous.take()
            {
                let snapshot = snapshot_at(def, history, &keys, tp, kp, &seen_p);
                step_at(&mut lifecycle, &snapshot, tp, options, &mut raised, on_step);
                out.stepped += 1;
                last_stepped = tp;
            }
            if changed || due {
                let snapshot = snapshot_at(def, history, &keys, t, k, &seen);
                step_at(&mut lifecycle, &snapshot, t, options, &mut raised, on_step);
                out.stepped += 1;
                last_stepped = t;
                previous = None;
            } else {
                previous = Some((t, k, seen));
            }
            met = now_met;
        }
    }
    // Alerts still firing at the end get the figures of the last tick.
    if !lifecycle.active.is_empty()
        && let Some((tp, kp, seen_p)) = previous.take()
    {
        let snapshot = snapshot_at(def, history, &keys, tp, kp, &seen_p);
        step_at(&mut lifecycle, &snapshot, tp, options, &mut raised, on_step);
        out.stepped += 1;
    }
    let mut alerts: Vec<Raised> = raised.into_values().collect();
    alerts.sort_by(|a, b| (a.start, &a.labels).cmp(&(b.start, &b.labels)));
    out.alerts = alerts;
    Ok(out)
}

/// The snapshot of the candidate at `t`: every instance evaluated with
/// `seen` as its bucket `k` (what the live engine held of it at `t`).
fn snapshot_at(
    def: &Arc<SloDefinition>,
    history: &mut History,
    keys: &[GroupKey],
    t: i64,
    k: i64,
    seen: &[[f64; 2]],
) -> Snapshot {
    let b = history.bucket_ns;
    let mut instances = Vec::with_capacity(keys.len());
    for (key, part) in keys.iter().zip(seen) {
        let rollup = history.groups.get_mut(key).expect("a key of the history");
        let full = rollup.get(k);
        let evaluation = if *part == full {
            evaluate(def, rollup, b, t)
        } else {
            rollup.replace(k, k, &[(k, *part)]);
            let e = evaluate(def, rollup, b, t);
            rollup.replace(k, k, &[(k, full)]);
            e
        };
        instances.push(InstanceStatus {
            group: group_map(&def.group_by, key),
            evaluation,
        });
    }
    Snapshot {
        at_ns: t,
        slos: vec![SloStatus {
            definition: Arc::clone(def),
            instances,
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

/// One lifecycle step at `t`, its alerts recorded and passed on.
fn step_at(
    lifecycle: &mut Lifecycle,
    snapshot: &Snapshot,
    t: i64,
    options: &LifecycleOptions,
    raised: &mut HashMap<String, Raised>,
    on_step: &mut (dyn FnMut(i64, &[Alert]) + Send),
) {
    let step = lifecycle.step(snapshot, t, options);
    for alert in &step.changed {
        record(raised, alert);
    }
    if !step.changed.is_empty() {
        on_step(t, &step.changed);
    }
}

/// When the next timer of an active alert comes due: a pending alert fires
/// once it held for its condition's `alertAfter`; a firing one whose
/// condition did not hold at the last step (`last_stepped`) resolves after
/// `keep_firing_for` (the flap window for a flapping one). `None` without
/// timers.
fn next_due(
    lifecycle: &Lifecycle,
    def: &SloDefinition,
    options: &LifecycleOptions,
    last_stepped: i64,
) -> Option<i64> {
    let keep = duration_ns(options.keep_firing_for);
    let flap = duration_ns(options.flap_window);
    lifecycle
        .active
        .values()
        .filter_map(|a| match a.state {
            State::Pending => {
                let after = def
                    .alert_windows
                    .iter()
                    .find(|w| a.labels.get("condition") == Some(&w.name))
                    .map_or(0, |w| duration_ns(w.alert_after));
                Some(a.active_since.saturating_add(after))
            }
            // Held at the last step: it resolves only after a change.
            _ if a.last_met == last_stepped => None,
            _ => Some(
                a.last_met
                    .saturating_add(if a.flapping { keep.max(flap) } else { keep }),
            ),
        })
        .min()
}

/// Keeps a raised alert's figures up to date; a new firing after a
/// resolution is a new alert.
fn record(raised: &mut HashMap<String, Raised>, alert: &Alert) {
    let Some(start) = alert.fired_at else {
        return;
    };
    let id = format!("{}@{start}", alert.fingerprint);
    let v = &alert.values;
    let entry = raised.entry(id).or_insert_with(|| Raised {
        fingerprint: alert.fingerprint.clone(),
        labels: alert.labels.clone(),
        group: alert.group.clone(),
        pending_since: alert.active_since,
        start,
        end: None,
        peak_long_burn_rate: 0.0,
        peak_short_burn_rate: 0.0,
        budget_at_start: v.error_budget_remaining,
        budget_at_end: v.error_budget_remaining,
        flapping: false,
    });
    if alert.state == State::Firing {
        entry.peak_long_burn_rate = entry.peak_long_burn_rate.max(v.long_burn_rate);
        entry.peak_short_burn_rate = entry.peak_short_burn_rate.max(v.short_burn_rate);
    }
    entry.budget_at_end = v.error_budget_remaining;
    entry.end = alert.resolved_at;
    entry.flapping |= alert.flapping;
}

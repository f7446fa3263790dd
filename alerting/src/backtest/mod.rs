//! Backtests: "if this policy had been in place last month, when would it
//! have paged, and was that right?"
//!
//! A candidate SLO (OpenSLO or Sloth YAML, new or a change of a running one)
//! is evaluated over stored history exactly as the live engine evaluates:
//! the same buckets ([`SloEngine::history`]), the same tick instants and
//! the same alert lifecycle ([`replay`]), and its alerts go through the live
//! routing, grouping, inhibition, silences and maintenance windows
//! ([`Simulation`]) to the notifications they would have sent. A change of a
//! running SLO is compared with its current policy (alerts added, removed,
//! moved); known incidents score each condition by the SRE Workbook's
//! measures ([`score`]); variants of the objective and burn-rate factors are
//! replayed over the same buckets side by side.

pub mod replay;
pub mod score;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;
use serde_json::{Value, json};
use smolder_slo::SloEngine;
use smolder_slo::engine::{GroupKey, History, tick_instant};
use smolder_slo::eval::evaluate;
use smolder_slo::model::{Origin, SloDefinition, Window, duration_ns};
use smolder_slo::spec::{self, Problem};

use self::replay::{Partials, Raised, Replay, replay};
use self::score::{Incident, measures};
use crate::alert::LifecycleOptions;
use crate::manager::Alerting;
use crate::notification::Notification;
use crate::render::rfc3339;

/// Most points a backtest's series hold per group.
const MAX_POINTS: i64 = 1000;
/// Groups whose series a backtest returns, worst budget first.
const MAX_SERIES_GROUPS: usize = 10;
/// Policy variants one request may compare.
pub const MAX_VARIANTS: usize = 200;

/// A variant of the candidate's policy: another objective and/or other
/// burn-rate factors (one per alert condition, in the policy's order).
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Variant {
    /// The objective (0 < objective < 1).
    pub objective: Option<f64>,
    /// The factor of each alert condition.
    pub factors: Option<Vec<f64>>,
}

/// What to backtest.
#[derive(Debug, Clone)]
pub struct Request {
    /// The candidate: OpenSLO or Sloth YAML.
    pub yaml: String,
    /// Which of its SLOs to backtest; needed when it defines several.
    pub id: Option<String>,
    /// Start (Unix ns); default: as far back as the stored telemetry goes.
    pub from: Option<i64>,
    /// End (Unix ns); default: the last tick.
    pub to: Option<i64>,
    /// Known incidents, to score the conditions.
    pub incidents: Vec<Incident>,
    /// Variants of the policy to compare.
    pub variants: Vec<Variant>,
}

/// Why a backtest could not run.
#[derive(Debug, thiserror::Error)]
pub enum BacktestError {
    /// The candidate or the request is not usable; each problem with its
    /// field.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<Problem>),
    /// Reading the history failed.
    #[error(transparent)]
    Slo(#[from] smolder_slo::Error),
}

fn invalid(field: &str, message: impl Into<String>) -> BacktestError {
    BacktestError::Invalid(vec![Problem {
        file: "backtest".into(),
        document: 0,
        field: field.into(),
        message: message.into(),
    }])
}

/// Parses the candidate (the SLO `id` of the YAML, or its only one) and
/// checks it against the tables.
pub async fn candidate(
    engine: &SloEngine,
    yaml: &str,
    id: Option<&str>,
) -> Result<SloDefinition, BacktestError> {
    let loaded = spec::load_texts(
        &[("slo".to_string(), yaml.to_string())],
        engine.options().defaults,
        &Origin::Api,
    );
    if !loaded.problems.is_empty() {
        return Err(BacktestError::Invalid(loaded.problems));
    }
    let ids: Vec<&str> = loaded.slos.iter().map(|d| d.id.as_str()).collect();
    let chosen = match id {
        Some(id) => loaded.slos.iter().find(|d| d.id == id).ok_or_else(|| {
            invalid(
                "id",
                format!("the YAML does not define SLO {id:?} (it defines {ids:?})"),
            )
        })?,
        None => match loaded.slos.as_slice() {
            [only] => only,
            _ => {
                return Err(invalid(
                    "id",
                    format!(
                        "the YAML defines {} SLOs ({ids:?}); say which to backtest",
                        ids.len()
                    ),
                ));
            }
        },
    };
    let mut def = chosen.clone();
    def.tenant = engine.tenant().clone();
    engine.check(&def).await.map_err(BacktestError::Invalid)?;
    Ok(def)
}

/// `def` with a variant's objective and factors.
fn with_variant(def: &SloDefinition, v: &Variant) -> Result<SloDefinition, BacktestError> {
    let mut d = def.clone();
    if let Some(o) = v.objective {
        if !(o > 0.0 && o < 1.0) {
            return Err(invalid(
                "variants.objective",
                format!("{o} is not between 0 and 1"),
            ));
        }
        d.objective = o;
    }
    if let Some(f) = &v.factors {
        if f.len() != d.alert_windows.len() {
            return Err(invalid(
                "variants.factors",
                format!(
                    "gives {} factors; the policy has {} conditions",
                    f.len(),
                    d.alert_windows.len()
                ),
            ));
        }
        for (w, &x) in d.alert_windows.iter_mut().zip(f) {
            if !(x.is_finite() && x > 0.0) {
                return Err(invalid(
                    "variants.factors",
                    format!("{x} is not a positive number"),
                ));
            }
            w.factor = x;
        }
    }
    Ok(d)
}

/// One alert in an answer.
#[derive(Debug, Serialize)]
struct AlertJson<'a> {
    severity: &'a str,
    condition: &'a str,
    name: &'a str,
    group: &'a BTreeMap<String, String>,
    pending_since: String,
    start: String,
    end: Option<String>,
    peak_long_burn_rate: f64,
    peak_short_burn_rate: f64,
    budget_consumed: f64,
    flapping: bool,
    fingerprint: &'a str,
}

fn alert_json(a: &Raised) -> AlertJson<'_> {
    AlertJson {
        severity: a.severity(),
        condition: a.condition(),
        name: a.name(),
        group: &a.group,
        pending_since: rfc3339(a.pending_since),
        start: rfc3339(a.start),
        end: a.end.map(rfc3339),
        peak_long_burn_rate: a.peak_long_burn_rate,
        peak_short_burn_rate: a.peak_short_burn_rate,
        budget_consumed: a.budget_consumed(),
        flapping: a.flapping,
        fingerprint: &a.fingerprint,
    }
}

fn notification_json(n: &Notification) -> Value {
    json!({
        "at": rfc3339(n.created_at),
        "receiver": n.receiver,
        "status": n.status,
        "group_labels": n.group_labels,
        "alerts": n.alerts.iter().map(|a| json!({
            "fingerprint": a.fingerprint,
            "state": a.state.name(),
            "severity": a.labels.get("severity"),
            "condition": a.labels.get("window"),
            "slo_group": a.labels.get("slo_group"),
        })).collect::<Vec<_>>(),
    })
}

/// Which alerts a change of policy adds, removes and moves: alerts of the
/// same condition (window pair and severity) and group that overlap in
/// time are the same alert, moved when its start or end changed.
fn compare(before: &[Raised], after: &[Raised]) -> Value {
    let same = |a: &Raised, b: &Raised| {
        a.condition() == b.condition()
            && a.severity() == b.severity()
            && a.group == b.group
            && a.start <= b.end.unwrap_or(i64::MAX)
            && b.start <= a.end.unwrap_or(i64::MAX)
    };
    let mut matched = vec![false; before.len()];
    let (mut added, mut moved, mut unchanged) = (Vec::new(), Vec::new(), 0);
    for a in after {
        match (0..before.len()).find(|&i| !matched[i] && same(&before[i], a)) {
            Some(i) => {
                matched[i] = true;
                let b = &before[i];
                if (b.start, b.end) == (a.start, a.end) {
                    unchanged += 1;
                } else {
                    moved.push(json!({
                        "before": alert_json(b),
                        "after": alert_json(a),
                        "start_shift_seconds": (a.start - b.start) as f64 / 1e9,
                    }));
                }
            }
            None => added.push(alert_json(a)),
        }
    }
    let removed: Vec<_> = before
        .iter()
        .zip(&matched)
        .filter(|(_, m)| !**m)
        .map(|(b, _)| alert_json(b))
        .collect();
    json!({
        "added": added,
        "removed": removed,
        "moved": moved,
        "unchanged": unchanged,
    })
}

/// SLI, budget and burn rates of up to [`MAX_SERIES_GROUPS`] groups (worst
/// budget at the end first) at up to [`MAX_POINTS`] instants: what the
/// backtest chart draws.
fn series(history: &History, def: &SloDefinition, from: i64, to: i64) -> Value {
    let b = history.bucket_ns;
    let step = ((to - from) / MAX_POINTS + 1).max(b).div_euclid(b) * b;
    let start = from.div_euclid(step) * step + step;
    let mut times: Vec<i64> = (0..)
        .map(|n| start + n * step)
        .take_while(|&t| t <= to)
        .collect();
    // The range's end too: an incident in its last minutes is drawn.
    if times.last().is_none_or(|&t| t < to) {
        times.push(to);
    }
    let mut groups: Vec<(&GroupKey, f64)> = history
        .groups
        .iter()
        .map(|(k, r)| (k, evaluate(def, r, b, to).error_budget_remaining))
        .collect();
    groups.sort_by(|a, b| a.1.total_cmp(&b.1));
    let instances: Vec<Value> = groups
        .into_iter()
        .take(MAX_SERIES_GROUPS)
        .map(|(key, _)| {
            let r = &history.groups[key];
            // At a bucket boundary, as the live engine sees it: the bucket
            // that starts then holds nothing yet.
            let evals: Vec<_> = times
                .iter()
                .map(|&t| evaluate(def, r, b, t - 1))
                .collect();
            let mut burn: BTreeMap<Window, Vec<f64>> = BTreeMap::new();
            for e in &evals {
                for (w, x) in &e.burn_rates {
                    burn.entry(*w).or_default().push(*x);
                }
            }
            json!({
                "group": smolder_slo::engine::group_map(&def.group_by, key),
                "sli": evals.iter().map(|e| e.sli).collect::<Vec<_>>(),
                "error_budget_remaining": evals.iter().map(|e| e.error_budget_remaining).collect::<Vec<_>>(),
                "burn_rates": burn,
            })
        })
        .collect();
    json!({
        "step_seconds": step as f64 / 1e9,
        "timestamps": times.iter().map(|t| t / 1_000_000).collect::<Vec<_>>(),
        "thresholds": def.window_thresholds(),
        "instances": instances,
    })
}

/// Whether two definitions are the same SLO, wherever each was loaded from.
fn same_slo(a: &SloDefinition, b: &SloDefinition) -> bool {
    let mut a = a.clone();
    a.origin = b.origin.clone();
    a.sli_fields = b.sli_fields.clone();
    a == *b
}

/// Runs a backtest; the answer of `POST /api/v1/slos/backtest`.
pub async fn run(
    engine: &Arc<SloEngine>,
    alerting: &Alerting,
    request: Request,
) -> Result<Value, BacktestError> {
    let started = Instant::now();
    let def = candidate(engine, &request.yaml, request.id.as_deref()).await?;
    let options = engine.options();
    let interval = options.interval;
    let now = tick_instant(engine.snapshot().at_ns, interval);
    let to = tick_instant(request.to.unwrap_or(now).min(now), interval);
    let max_range = options.defaults.bounds.max_window;
    let from = match request.from {
        Some(f) => f,
        None => {
            let oldest = engine.oldest_row(def.sli.table).await?.unwrap_or(to);
            oldest.max(to.saturating_sub(duration_ns(max_range)))
        }
    };
    if from > to {
        return Err(invalid(
            "from",
            "the range starts after it ends (or in the future)",
        ));
    }
    if to - from > duration_ns(max_range) {
        return Err(invalid(
            "from",
            format!(
                "the range is longer than {} (slo.max_window)",
                humantime::format_duration(max_range)
            ),
        ));
    }
    if request.variants.len() > MAX_VARIANTS {
        return Err(invalid(
            "variants",
            format!("at most {MAX_VARIANTS} variants per request"),
        ));
    }
    for (i, inc) in request.incidents.iter().enumerate() {
        if inc.end < inc.start {
            return Err(invalid(
                &format!("incidents[{i}]"),
                "the incident ends before it starts",
            ));
        }
    }
    let variants = request
        .variants
        .iter()
        .map(|v| with_variant(&def, v))
        .collect::<Result<Vec<_>, _>>()?;

    let mut history = engine.history(&def, from, to).await?;
    let lifecycle = alerting.lifecycle_options();
    let mut partials = Partials::default();
    if !variants.is_empty() {
        // Each variant opens other minutes: read them all at once.
        partials
            .prefetch(engine, &def, (from, to), history.bucket_ns, interval)
            .await?;
    }
    let mut simulation = alerting.simulation().await;
    let def = Arc::new(def);
    let main = replay(
        engine,
        &mut history,
        &def,
        from,
        to,
        interval,
        &lifecycle,
        &mut partials,
        &mut |t, changed| simulation.step(t, changed),
    )
    .await?;
    simulation.run_until(to.saturating_add(1));

    // The running SLO of that id, for the comparison.
    let current = engine
        .snapshot()
        .slos
        .iter()
        .find(|s| s.definition.id == def.id)
        .map(|s| Arc::clone(&s.definition));
    let change = match current {
        Some(cur) if !same_slo(&cur, &def) => {
            let same = cur.rollup_fingerprint(options.step) == def.rollup_fingerprint(options.step);
            let mut other = None;
            let mut own = Partials::default();
            let (h, p) = if same {
                (&mut history, &mut partials)
            } else {
                (
                    other.insert(engine.history(&cur, from, to).await?),
                    &mut own,
                )
            };
            let before = replay(
                engine,
                h,
                &cur,
                from,
                to,
                interval,
                &lifecycle,
                p,
                &mut |_, _| {},
            )
            .await?;
            let mut c = compare(&before.alerts, &main.alerts);
            c["current"] = json!(true);
            c
        }
        Some(_) => json!({"current": true, "same_policy": true}),
        None => Value::Null,
    };

    // Variants are replayed on every core, each task with its own copy of
    // the buckets (a replay changes a bucket while it evaluates a tick) and
    // of the refined minutes.
    let workers = std::thread::available_parallelism()
        .map_or(1, std::num::NonZero::get)
        .min(variants.len())
        .max(1);
    let mut tasks = Vec::with_capacity(workers);
    let variants: Vec<Arc<SloDefinition>> = variants.into_iter().map(Arc::new).collect();
    for w in 0..workers {
        let mut h = engine.copy_history(&history)?;
        let mut p = partials.clone();
        let engine = Arc::clone(engine);
        let lifecycle = LifecycleOptions {
            skip_annotations: true,
            ..lifecycle.clone()
        };
        let mine: Vec<(usize, Arc<SloDefinition>)> = variants
            .iter()
            .enumerate()
            .skip(w)
            .step_by(workers)
            .map(|(i, v)| (i, Arc::clone(v)))
            .collect();
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::with_capacity(mine.len());
            for (i, vdef) in mine {
                let r = replay(
                    &engine,
                    &mut h,
                    &vdef,
                    from,
                    to,
                    interval,
                    &lifecycle,
                    &mut p,
                    &mut |_, _| {},
                )
                .await?;
                out.push((i, r));
            }
            Ok::<_, smolder_slo::Error>(out)
        }));
    }
    let mut replays: Vec<(usize, Replay)> = Vec::with_capacity(variants.len());
    for t in tasks {
        match t.await {
            Ok(done) => replays.extend(done?),
            // A bug in a replay is a bug of this request.
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => {
                return Err(
                    smolder_slo::Error::Query(format!("a variant's replay stopped: {e}")).into(),
                );
            }
        }
    }
    replays.sort_by_key(|(i, _)| *i);
    let mut variant_answers = Vec::with_capacity(variants.len());
    for ((v, vdef), (_, r)) in request.variants.iter().zip(&variants).zip(replays) {
        let mut by_severity: BTreeMap<&str, usize> = BTreeMap::new();
        for a in &r.alerts {
            *by_severity.entry(a.severity()).or_default() += 1;
        }
        variant_answers.push(json!({
            "objective": vdef.objective,
            "factors": vdef.alert_windows.iter().map(|w| w.factor).collect::<Vec<_>>(),
            "requested": {"objective": v.objective, "factors": v.factors},
            "alerts": r.alerts.iter().map(alert_json).collect::<Vec<_>>(),
            "by_severity": by_severity,
            "measures": (!request.incidents.is_empty())
                .then(|| measures(vdef, &r.alerts, &request.incidents, to)),
        }));
    }

    Ok(json!({
        "slo": {
            "id": def.id,
            "service": def.service,
            "objective": def.objective,
            "conditions": def.alert_windows.iter().map(|w| json!({
                "name": w.name,
                "severity": w.severity.as_str(),
                "condition": format!("{}/{}", Window(w.long), Window(w.short)),
                "factor": w.factor,
                "alert_after_seconds": w.alert_after.as_secs_f64(),
            })).collect::<Vec<_>>(),
        },
        "from": rfc3339(from),
        "to": rfc3339(to),
        "interval_seconds": interval.as_secs_f64(),
        "alerts": main.alerts.iter().map(alert_json).collect::<Vec<_>>(),
        "series": series(&history, &def, from, to),
        "notifications": simulation.sent.iter().map(notification_json).collect::<Vec<_>>(),
        "change": change,
        "measures": (!request.incidents.is_empty())
            .then(|| measures(&def, &main.alerts, &request.incidents, to)),
        "variants": variant_answers,
        "source": {
            "stored_buckets": history.sources.stored_buckets,
            "scanned_seconds": history.sources.scanned_ns as f64 / 1e9,
            "refined_buckets": main.refined,
            "refine_queries": main.queried,
        },
        "stats": {
            "ticks": main.ticks,
            "stepped": main.stepped,
            "elapsed_ms": started.elapsed().as_secs_f64() * 1e3,
        },
    }))
}

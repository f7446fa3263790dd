//! `/api/v1/slos`: the SLOs, their state, chart series, and management.
//!
//! * `GET /api/v1/slos[?instances=true]` — every SLO with objective, period,
//!   SLI, error budget remaining (and as downtime left), burn rate and its
//!   threshold per alert window and alert state (of its worst group), its
//!   groups (each group's figures with `instances=true`), rollup progress,
//!   and problems of the SLO files.
//! * `GET /api/v1/slos/{id}` — one SLO with its definition and every group.
//! * `GET /api/v1/slos/{id}/series?from=&to=&step=&group=` — SLI, budget
//!   remaining and burn rates over a range, for charts (at most 2,000 points).
//! * `GET /api/v1/slos/{id}/gate`, `GET /api/v1/services/{service}/gate` —
//!   the deploy gate of the error-budget policy: 200 with the figures while
//!   the budget allows changes, 423 while an SLO (any of the service's)
//!   freezes them (an instance below its `smolder.dev/freeze-below`, or its
//!   budget spent), 503 while an SLO's figures are not complete yet.
//! * `GET /api/v1/slos/{id}/exclusions?from=&to=` — the SLO's budget
//!   exclusions (its annotation's and the API's), their occurrences over a
//!   range (default: the period before now to a week ahead) and those in
//!   force now; `POST` one (`start`, `end` or `duration`, `rrule`,
//!   `time_zone`, `reason`: see [`crate::exclusion`]) and its events stop
//!   counting at once; `DELETE /api/v1/slos/{id}/exclusions/{n}` and they
//!   count again.
//! * `POST /api/v1/slos/validate` with `{"slo": "<YAML>"}` — the SLOs the
//!   text defines and every problem with its field, nothing saved.
//! * `PUT /api/v1/slos/{id}` — create or replace an SLO from OpenSLO or Sloth
//!   YAML (JSON is YAML too); `DELETE /api/v1/slos/{id}` — delete it. SLOs of
//!   the SLO directory are changed there instead (409).
//!
//! Each request sees its tenant's SLOs only (its engine in
//! [`SloEngines`]); another tenant's SLO is not found.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Value, json};
use smolder_common::Tenant;
use smolder_common::http::{ApiError, AuditDetail, ErrorCode, Path, Query};
use smolder_common::tenant::Actor;
use smolder_common::text::parse_time;

use crate::engine::{
    ExclusionError, GroupKey, InstanceStatus, PutError, SloEngine, SloStatus, Snapshot,
};
use crate::eval::{Evaluation, window_name};
use crate::exclusion::ExclusionSpec;
use crate::model::{Origin, Period, SloDefinition, Window, duration_ns};
use crate::tenants::SloEngines;

/// Most points a series answer holds.
pub const MAX_POINTS: i64 = 2000;

/// The routes, with every tenant's engine as state.
pub fn router(engines: Arc<SloEngines>) -> Router {
    Router::new()
        .route("/api/v1/slos", get(list))
        .route("/api/v1/slos/validate", axum::routing::post(validate))
        .route("/api/v1/slos/{id}", get(one).put(put).delete(delete))
        .route("/api/v1/slos/{id}/series", get(series))
        .route("/api/v1/slos/{id}/gate", get(gate))
        .route(
            "/api/v1/slos/{id}/exclusions",
            get(exclusions).post(add_exclusion),
        )
        .route(
            "/api/v1/slos/{id}/exclusions/{exclusion}",
            axum::routing::delete(remove_exclusion),
        )
        .route("/api/v1/services/{service}/gate", get(service_gate))
        .with_state(engines)
}

/// The tenant's SLOs after the last tick (none for a tenant without an
/// engine).
fn snapshot_of(engines: &SloEngines, tenant: &Tenant) -> Arc<Snapshot> {
    engines.get(tenant).map_or_else(
        || {
            Arc::new(Snapshot {
                at_ns: engines.default_engine().snapshot().at_ns,
                ..Snapshot::default()
            })
        },
        |e| e.snapshot(),
    )
}

fn no_slo(id: &str) -> ApiError {
    ApiError::not_found(format!("no SLO {id:?}"))
}

/// The SLO `id` of a snapshot, or 404.
pub fn find<'a>(snap: &'a Snapshot, id: &str) -> Result<&'a SloStatus, ApiError> {
    snap.slos
        .iter()
        .find(|s| s.definition.id == id)
        .ok_or_else(|| no_slo(id))
}

fn rfc3339(ns: i64) -> String {
    smolder_common::text::rfc3339(ns, chrono::SecondsFormat::Secs)
}

fn period_json(p: &Period) -> Value {
    match p {
        Period::Rolling { duration } => {
            json!({ "kind": "rolling", "duration": window_name(*duration) })
        }
        Period::Calendar {
            unit,
            count,
            start,
            time_zone,
        } => json!({
            "kind": "calendar",
            "unit": unit,
            "count": count,
            "start": start.to_string(),
            "time_zone": time_zone.name(),
        }),
    }
}

/// Error-budget time left: the downtime the objective allows over the
/// period, less the time the bad events so far stand for over the time with
/// data — so that a young SLO (3 minutes of data in a 28-day period) is not
/// shown days of negative downtime; over a full period this is the budget
/// remaining times the allowed downtime.
fn downtime_left_seconds(d: &SloDefinition, e: &Evaluation) -> f64 {
    let period = d.period_length(e.at_ns).as_secs_f64();
    let allowed = crate::eval::error_budget(d.objective) * period;
    let (Some(since), true) = (e.data_since_ns, e.period.total > 0.0) else {
        return allowed;
    };
    let covered = ((e.at_ns - since) as f64 / 1e9).clamp(0.0, period);
    allowed - e.period.bad() / e.period.total * covered
}

/// The figures of one group, for lists.
fn instance_summary(d: &SloDefinition, i: &InstanceStatus) -> Value {
    let e = &i.evaluation;
    json!({
        "group": i.group,
        "sli": e.sli,
        "error_budget_remaining": e.error_budget_remaining,
        "allowed_downtime_left_seconds": downtime_left_seconds(d, e),
        "data_since": e.data_since_ns.map(rfc3339),
        "burn_rates": e.burn_rates,
        "alert_state": e.alert_state,
        "time_to_exhaustion_seconds": e.time_to_exhaustion_seconds,
    })
}

/// The summary of an SLO: the worst group's figures at the top.
pub fn summary(s: &SloStatus) -> Value {
    let d = &s.definition;
    let worst = s.instances.first().map(|i| &i.evaluation);
    json!({
        "id": d.id,
        "display_name": d.display_name,
        "service": d.service,
        "objective": d.objective,
        "period": period_json(&d.period),
        "budgeting": d.budgeting,
        "table": d.sli.table.name(),
        "group_by": d.group_by,
        "groups": s.instances.len(),
        "sli": worst.and_then(|e| e.sli),
        "error_budget_remaining": worst.map(|e| e.error_budget_remaining),
        "burn_rates": worst.map(|e| &e.burn_rates),
        "alert_state": worst.map_or("ok", |e| e.alert_state.as_str()),
        "time_to_exhaustion_seconds": worst.and_then(|e| e.time_to_exhaustion_seconds),
        "allowed_downtime_left_seconds": worst.map(|e| downtime_left_seconds(d, e)),
        "data_since": worst.and_then(|e| e.data_since_ns).map(rfc3339),
        "period_seconds": worst.map(|e| d.period_length(e.at_ns).as_secs_f64()),
        "thresholds": worst.map(|_| d.window_thresholds()),
        "alert_windows": d.alert_windows.iter().map(|w| json!({
            "name": w.name,
            "severity": w.severity,
            "long": Window(w.long),
            "short": Window(w.short),
            "factor": w.factor,
        })).collect::<Vec<_>>(),
        "budget_levels": d.budget_levels,
        "freeze_below": d.freeze_below,
        "excluded_now": s.excluded_now,
        "labels": d.labels,
        "backfill": s.backfill,
        "error": s.error,
    })
}

/// Query of the list endpoint.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Also list every group's figures (`instances`), for overviews.
    #[serde(default)]
    pub instances: bool,
}

async fn list(
    State(engines): State<Arc<SloEngines>>,
    tenant: Tenant,
    Query(q): Query<ListQuery>,
) -> Response {
    let snap = snapshot_of(&engines, &tenant);
    let slos: Vec<Value> = snap
        .slos
        .iter()
        .map(|s| {
            let mut v = summary(s);
            if q.instances {
                v["instances"] = s
                    .instances
                    .iter()
                    .map(|i| instance_summary(&s.definition, i))
                    .collect();
            }
            v
        })
        .collect();
    Json(json!({
        "evaluated_at": rfc3339(snap.at_ns),
        "slos": slos,
        "problems": snap.problems,
    }))
    .into_response()
}

async fn one(
    State(engines): State<Arc<SloEngines>>,
    tenant: Tenant,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let snap = snapshot_of(&engines, &tenant);
    let s = find(&snap, &id)?;
    let mut body = summary(s);
    body["definition"] = json!(s.definition);
    body["instances"] = json!(s.instances);
    body["dropped_group_rows"] = json!(s.dropped_group_rows);
    body["last_update_ms"] = json!(s.last_update_ms);
    body["evaluated_at"] = json!(rfc3339(snap.at_ns));
    if let Some(engine) = engines.get(&tenant) {
        let source = tokio::task::spawn_blocking(move || engine.source(&id))
            .await
            .ok()
            .and_then(Result::ok)
            .flatten();
        body["source"] = match source {
            Some((Origin::Api, yaml)) => json!({ "origin": "api", "yaml": yaml }),
            Some((Origin::File(file), yaml)) => {
                json!({ "origin": "file", "file": file, "yaml": yaml })
            }
            None => Value::Null,
        };
    }
    Ok(Json(body).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ValidateBody {
    /// OpenSLO or Sloth YAML.
    slo: String,
}

/// `POST /api/v1/slos/validate`: the SLOs a text defines and every problem
/// of it (YAML, OpenSLO or Sloth structure, references, the SQL of each
/// expression against the tables), without saving anything — what the SLO
/// editor shows as it is typed.
async fn validate(
    State(engines): State<Arc<SloEngines>>,
    tenant: Tenant,
    smolder_common::http::Json(body): smolder_common::http::Json<ValidateBody>,
) -> Result<Response, ApiError> {
    let engine = engines
        .get_or_create(&tenant)
        .await
        .map_err(|e| ApiError::internal("Opening the tenant's SLO engine", e))?;
    let loaded = crate::spec::load_texts(
        &[("slo".to_string(), body.slo)],
        engine.options().defaults,
        &Origin::Api,
    );
    let mut problems = loaded.problems;
    let mut slos = Vec::new();
    for def in &loaded.slos {
        match engine.check(def).await {
            Ok(()) => slos.push(json!({
                "id": def.id,
                "service": def.service,
                "objective": def.objective,
                "table": def.sli.table.name(),
                "conditions": def.alert_windows.len(),
            })),
            Err(mut p) => problems.append(&mut p),
        }
    }
    Ok(Json(json!({
        "valid": problems.is_empty() && !slos.is_empty(),
        "slos": slos,
        "problems": problems,
    }))
    .into_response())
}

/// Where an SLO's error-budget policy stands for changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Gate {
    /// The budget allows changes.
    Open,
    /// The figures are not complete (history being rolled up, or the last
    /// update failed): nothing can be said yet.
    Unknown,
    /// An instance is below the freeze level: changes wait.
    Frozen,
}

impl Gate {
    fn name(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Unknown => "unknown",
            Self::Frozen => "frozen",
        }
    }

    fn status(self) -> StatusCode {
        match self {
            Self::Open => StatusCode::OK,
            Self::Unknown => StatusCode::SERVICE_UNAVAILABLE,
            Self::Frozen => StatusCode::LOCKED,
        }
    }
}

/// One SLO's gate and the figures behind it.
fn slo_gate(s: &SloStatus, at_ns: i64) -> (Gate, Value) {
    let d = &s.definition;
    let frozen: Vec<&InstanceStatus> = s
        .instances
        .iter()
        .filter(|i| crate::model::budget_below(i.evaluation.error_budget_remaining, d.freeze_below))
        .collect();
    let gate = if !frozen.is_empty() {
        Gate::Frozen
    } else if !s.backfill.done || s.error.is_some() {
        Gate::Unknown
    } else {
        Gate::Open
    };
    let worst = s.instances.first().map(|i| &i.evaluation);
    let reason = match gate {
        Gate::Open => "the error budget allows changes".to_string(),
        Gate::Frozen if d.freeze_below > 0.0 => format!(
            "less than {}% of the error budget is left: changes are frozen",
            d.freeze_below * 100.0
        ),
        Gate::Frozen => "the error budget is spent: changes are frozen".to_string(),
        Gate::Unknown => match &s.error {
            Some(e) => format!("the SLO's figures are stale (the last update failed: {e})"),
            None => "the SLO's history is still being rolled up".to_string(),
        },
    };
    let body = json!({
        "slo": d.id,
        "service": d.service,
        "allowed": gate == Gate::Open,
        "state": gate.name(),
        "reason": reason,
        "freeze_below": d.freeze_below,
        "objective": d.objective,
        "sli": worst.and_then(|e| e.sli),
        "error_budget_remaining": worst.map(|e| e.error_budget_remaining),
        "frozen_groups": frozen.iter().map(|i| crate::model::group_label(&i.group)).collect::<Vec<_>>(),
        "evaluated_at": rfc3339(at_ns),
    });
    (gate, body)
}

async fn gate(
    State(engines): State<Arc<SloEngines>>,
    tenant: Tenant,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let snap = snapshot_of(&engines, &tenant);
    let s = find(&snap, &id)?;
    let (gate, body) = slo_gate(s, snap.at_ns);
    Ok((gate.status(), Json(body)).into_response())
}

async fn service_gate(
    State(engines): State<Arc<SloEngines>>,
    tenant: Tenant,
    Path(service): Path<String>,
) -> Result<Response, ApiError> {
    let snap = snapshot_of(&engines, &tenant);
    let gates: Vec<(Gate, Value)> = snap
        .slos
        .iter()
        .filter(|s| s.definition.service == service)
        .map(|s| slo_gate(s, snap.at_ns))
        .collect();
    let Some(gate) = gates.iter().map(|(g, _)| *g).max() else {
        return Err(ApiError::not_found(format!(
            "no SLO of service {service:?}"
        )));
    };
    let body = json!({
        "service": service,
        "allowed": gate == Gate::Open,
        "state": gate.name(),
        "slos": gates.into_iter().map(|(_, body)| body).collect::<Vec<_>>(),
        "evaluated_at": rfc3339(snap.at_ns),
    });
    Ok((gate.status(), Json(body)).into_response())
}

/// What `PUT /api/v1/slos/{id}` reads: YAML (JSON is YAML too).
const SLO_MEDIA_TYPES: [&str; 4] = [
    "application/yaml",
    "application/x-yaml",
    "text/yaml",
    "application/json",
];

async fn put(
    State(engines): State<Arc<SloEngines>>,
    tenant: Tenant,
    Path(id): Path<String>,
    headers: axum::http::HeaderMap,
    body: String,
) -> Response {
    if let Err(e) = smolder_common::http::require_media_type(&headers, &SLO_MEDIA_TYPES) {
        return e.into_response();
    }
    let engine = match engines.get_or_create(&tenant).await {
        Ok(engine) => engine,
        Err(e) => return ApiError::internal("Starting a tenant's SLO engine", e).into_response(),
    };
    match engine.put(&id, &body).await {
        Ok((def, created)) => {
            // Show the new SLO (and its backfill) right away.
            engine.evaluate_now().await;
            let status = if created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            (status, Json(json!({ "id": def.id, "definition": def }))).into_response()
        }
        Err(PutError::Invalid(problems)) => {
            let messages: Vec<String> = problems.iter().map(ToString::to_string).collect();
            ApiError::invalid(messages.join("; "))
                .with_detail("problems", json!(problems))
                .into_response()
        }
        Err(PutError::Conflict(message)) => ApiError::conflict(message).into_response(),
        Err(PutError::Limit(message)) => {
            ApiError::new(ErrorCode::ResourceExhausted, message).into_response()
        }
        Err(PutError::Storage(message)) => {
            ApiError::internal("Storing an SLO", message).into_response()
        }
    }
}

async fn delete(
    State(engines): State<Arc<SloEngines>>,
    tenant: Tenant,
    Path(id): Path<String>,
) -> Response {
    let Some(engine) = engines.get(&tenant) else {
        return ApiError::not_found(format!("no API-managed SLO {id:?}")).into_response();
    };
    match engine.delete(&id) {
        Ok(true) => {
            engine.evaluate_now().await;
            StatusCode::NO_CONTENT.into_response()
        }
        Ok(false) => ApiError::not_found(format!("no API-managed SLO {id:?}")).into_response(),
        Err(crate::Error::Conflict(m)) => ApiError::conflict(m).into_response(),
        Err(e) => ApiError::internal("Deleting an SLO", e).into_response(),
    }
}

/// Query of the series endpoint.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeriesQuery {
    /// Start: RFC 3339 or Unix seconds (default: `to` minus the period).
    pub from: Option<String>,
    /// End: RFC 3339 or Unix seconds (default: now).
    pub to: Option<String>,
    /// Step: `5m`, `1h` … (default: the range over 500, at least a bucket).
    pub step: Option<String>,
    /// The group, as a JSON object of `group_by` expression → value.
    pub group: Option<String>,
}

/// The instants of a chart of `def` from `from` to `to` (Unix ns), `step`
/// apart (default: a 500th of the range; never finer than the SLO's
/// buckets), at most `max_points`, ending at `to`; and the step. Refuses
/// ranges longer than two of the longest windows a definition may have:
/// no chart needs more, and longer ones only burn CPU.
pub fn series_times(
    engine: &SloEngine,
    def: &SloDefinition,
    from: i64,
    to: i64,
    step: Option<i64>,
    max_points: i64,
) -> Result<(Vec<i64>, i64), ApiError> {
    if from > to {
        return Err(ApiError::invalid("from must not be after to"));
    }
    let max_range = engine
        .options()
        .defaults
        .bounds
        .max_window
        .saturating_mul(2);
    if to
        .checked_sub(from)
        .is_none_or(|r| r > duration_ns(max_range))
    {
        return Err(ApiError::invalid(format!(
            "from: the range from {from} to {to} (ns) is longer than {}",
            humantime::format_duration(max_range)
        )));
    }
    let bucket = def.bucket_ns(engine.options().step);
    let step = step
        .unwrap_or((to - from) / 500)
        .max(bucket)
        .max((to - from) / max_points + 1)
        .max(1);
    let mut times = Vec::new();
    let mut t = to;
    while t >= from && times.len() < max_points as usize {
        times.push(t);
        t -= step;
    }
    times.reverse();
    Ok((times, step))
}

/// The group of an SLO instance from its values by group-by expression as
/// a JSON object (`{"http_route": "/pay"}`); without them, the worst group.
pub fn group_key(s: &SloStatus, json: Option<&str>) -> Result<GroupKey, ApiError> {
    let def = &s.definition;
    let values: Option<BTreeMap<String, String>> = json
        .map(serde_json::from_str)
        .transpose()
        .map_err(|e| ApiError::invalid(format!("group is not a JSON object: {e}")))?;
    match values {
        Some(map) => def
            .group_by
            .iter()
            .map(|g| map.get(g).cloned())
            .collect::<Option<GroupKey>>()
            .ok_or_else(|| {
                ApiError::invalid(format!(
                    "group must give a value for each of {:?}",
                    def.group_by
                ))
            }),
        None => Ok(match s.instances.first() {
            Some(i) if !def.group_by.is_empty() => def
                .group_by
                .iter()
                .map(|g| i.group.get(g).cloned().unwrap_or_default())
                .collect(),
            _ => def.group_by.iter().map(|_| String::new()).collect(),
        }),
    }
}

async fn series(
    State(engines): State<Arc<SloEngines>>,
    tenant: Tenant,
    Path(id): Path<String>,
    Query(q): Query<SeriesQuery>,
) -> Result<Response, ApiError> {
    let Some(engine) = engines.get(&tenant) else {
        return Err(no_slo(&id));
    };
    let snap = engine.snapshot();
    let s = find(&snap, &id)?;
    let def = &s.definition;
    let to = time_param("to", q.to.as_deref(), || snap.at_ns)?;
    let from = time_param("from", q.from.as_deref(), || def.period_bounds(to).0)?;
    if from > to {
        return Err(ApiError::invalid("from must not be after to"));
    }
    let step = match q
        .step
        .as_deref()
        .map(crate::spec::parse_duration)
        .transpose()
    {
        Ok(s) => s.map(duration_ns),
        Err(e) => return Err(ApiError::invalid(format!("step: {e}"))),
    };
    let (times, step) = series_times(&engine, def, from, to, step, MAX_POINTS)?;
    let group = group_key(s, q.group.as_deref())?;
    let Some(evals) = engine.series(&id, &group, &times).await else {
        return Err(ApiError::not_found(format!(
            "SLO {id:?} has no group {group:?}"
        )));
    };
    // The exclusions' occurrences over the chart, to shade.
    let excluded = engine.exclusions_of(&id).map_or_else(Vec::new, |x| {
        let first = times.first().copied().unwrap_or(to);
        x.occurrences(first, to.saturating_add(1))
    });
    let mut burn: BTreeMap<Window, Vec<f64>> = BTreeMap::new();
    for e in &evals {
        for (w, r) in &e.burn_rates {
            burn.entry(*w).or_default().push(*r);
        }
    }
    Ok(Json(json!({
        "slo": id,
        "group": def.group_by.iter().cloned().zip(group).collect::<BTreeMap<_, _>>(),
        "step_seconds": Duration::from_nanos(step as u64).as_secs_f64(),
        "timestamps": times.iter().map(|t| t / 1_000_000).collect::<Vec<_>>(),
        "sli": evals.iter().map(|e| e.sli).collect::<Vec<_>>(),
        "error_budget_remaining": evals.iter().map(|e| e.error_budget_remaining).collect::<Vec<_>>(),
        "burn_rates": burn,
        "exclusions": excluded,
    }))
    .into_response())
}

/// The time parameter `field` (RFC 3339 or Unix seconds), `default()`
/// when it is absent.
fn time_param(
    field: &str,
    value: Option<&str>,
    default: impl FnOnce() -> i64,
) -> Result<i64, ApiError> {
    match value.map(parse_time).transpose() {
        Ok(t) => Ok(t.unwrap_or_else(default)),
        Err(e) => Err(ApiError::invalid(format!("{field}: {e}"))),
    }
}

/// Query of the exclusions list.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExclusionsQuery {
    /// Occurrences from (default: the period before now).
    from: Option<String>,
    /// Occurrences until (default: a week after now).
    to: Option<String>,
}

/// Occurrences listed at most (an hourly rule over a long range has
/// thousands).
const MAX_OCCURRENCES: usize = 5000;

async fn exclusions(
    State(engines): State<Arc<SloEngines>>,
    tenant: Tenant,
    Path(id): Path<String>,
    Query(q): Query<ExclusionsQuery>,
) -> Result<Response, ApiError> {
    let Some(engine) = engines.get(&tenant) else {
        return Err(no_slo(&id));
    };
    let snap = engine.snapshot();
    let s = find(&snap, &id)?;
    let set = engine.exclusions_of(&id).ok_or_else(|| no_slo(&id))?;
    let now = snap.at_ns;
    let from = time_param("from", q.from.as_deref(), || {
        s.definition.period_bounds(now).0
    })?;
    let to = time_param("to", q.to.as_deref(), || {
        now.saturating_add(7 * 86_400 * 1_000_000_000)
    })?;
    if from > to {
        return Err(ApiError::invalid("from must not be after to"));
    }
    let mut occurrences = set.occurrences(from, to);
    let truncated = occurrences.len() > MAX_OCCURRENCES;
    occurrences.truncate(MAX_OCCURRENCES);
    Ok(Json(json!({
        "slo": id,
        "exclusions": set.list(),
        "from": rfc3339(from),
        "to": rfc3339(to),
        "occurrences": occurrences,
        "truncated": truncated,
        "excluded_now": s.excluded_now,
    }))
    .into_response())
}

fn exclusion_error(e: ExclusionError) -> ApiError {
    match e {
        ExclusionError::NotFound(m) => ApiError::not_found(m),
        ExclusionError::Invalid(m) => ApiError::invalid(m),
        ExclusionError::Conflict(m) => ApiError::conflict(m),
        ExclusionError::Limit(m) => ApiError::new(ErrorCode::ResourceExhausted, m),
        ExclusionError::Storage(m) => ApiError::internal("Storing an exclusion", m),
    }
}

/// What the audit log says of an exclusion added or removed.
fn audit_detail(slo: &str, x: &crate::exclusion::Exclusion) -> AuditDetail {
    AuditDetail(format!("exclusion {} of {slo}: {}", x.id, x.spec.reason))
}

async fn add_exclusion(
    State(engines): State<Arc<SloEngines>>,
    tenant: Tenant,
    Actor(actor): Actor,
    Path(id): Path<String>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    smolder_common::http::require_media_type(&headers, &["application/json"])?;
    let Some(engine) = engines.get(&tenant) else {
        return Err(no_slo(&id));
    };
    let spec: ExclusionSpec = serde_json::from_slice(&body)
        .map_err(|e| ApiError::invalid(format!("the exclusion is not valid: {e}")))?;
    let x = engine
        .add_exclusion(&id, spec, &actor)
        .await
        .map_err(exclusion_error)?;
    // The figures without the excluded events, right away.
    engine.evaluate_now().await;
    let mut response = (StatusCode::CREATED, Json(json!(x))).into_response();
    response.extensions_mut().insert(audit_detail(&id, &x));
    Ok(response)
}

async fn remove_exclusion(
    State(engines): State<Arc<SloEngines>>,
    tenant: Tenant,
    Path((id, exclusion)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let Some(engine) = engines.get(&tenant) else {
        return Err(no_slo(&id));
    };
    let x = engine
        .remove_exclusion(&id, &exclusion)
        .await
        .map_err(exclusion_error)?;
    engine.evaluate_now().await;
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.extensions_mut().insert(audit_detail(&id, &x));
    Ok(response)
}

//! The alerting API.
//!
//! * `GET /api/v1/alerts[?brief=true]` — active alerts (pending, firing,
//!   suppressed) with state, since, values, silences and inhibitions, and
//!   receivers (`brief`: identity, labels and state only).
//! * `GET /api/v1/alerts/history?slo=&limit=` — state changes, newest first.
//! * `GET /api/v1/notifications?receiver=&state=&slo=&limit=` — deliveries
//!   with receiver, attempts, state, last status and error.
//! * `GET /api/v1/silences`, `POST /api/v1/silences`,
//!   `DELETE /api/v1/silences/{id}` (expires it).
//! * `GET /api/v1/slos/{id}/causes?group=&window=` — example bad trace ids
//!   and the attribute values most over-represented among bad events over
//!   the window (default 1h) for the group (JSON object; default the worst).
//! * `GET /api/v1/scaling/{slo}` — burn rates as JSON for KEDA's
//!   `metrics-api` scaler, with the scaling targets' state.
//! * `GET /api/v1/scaling/{slo}/history?limit=` — the scaling targets'
//!   decisions for the SLO, newest first: action, burn rate, window,
//!   threshold, reason and delivery.
//! * `POST /api/v1/slos/backtest` — a candidate SLO's alerts, series and
//!   notifications over stored history ([`crate::backtest`]): `{"slo":
//!   "<YAML>", "id": "<SLO of several>", "from": T, "to": T, "incidents": [{"start": T, "end": T}],
//!   "variants": [{"objective": x, "factors": [..]}]}`, T in RFC 3339 or
//!   Unix seconds, all but `slo` optional.
//!
//! A request sees and changes its tenant's alerts, history, notifications,
//! silences and scaling only; a silence silences its tenant's alerts only.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};
use smolder_common::Tenant;
use smolder_common::http::{ApiError, ErrorCode, Json as JsonBody, Path, Query};
use smolder_common::text::parse_time;
use smolder_slo::SloEngines;

use crate::backtest::score::Incident;
use crate::backtest::{BacktestError, Request, Variant};

use crate::manager::{Alerting, Error, instance_key};
use crate::render::rfc3339;
use crate::silence::Silence;
use smolder_slo::model::{Severity, Window};

/// The routes, with the alerting stage as state.
pub fn router(alerting: Arc<Alerting>) -> Router {
    Router::new()
        .route("/api/v1/alerts", get(alerts))
        .route("/api/v1/alerts/history", get(history))
        .route("/api/v1/notifications", get(notifications))
        .route("/api/v1/notifications/{id}", get(notification))
        .route("/api/v1/silences", get(silences).post(add_silence))
        .route("/api/v1/silences/{id}", delete(expire_silence))
        .route("/api/v1/scaling/{slo}", get(scaling))
        .route("/api/v1/scaling/{slo}/history", get(scaling_history))
        .route("/api/v1/slos/{id}/causes", get(causes))
        .route("/api/v1/slos/{id}/chart.png", get(chart))
        .with_state(alerting)
}

/// `GET /api/v1/slos/{id}/chart.png`: the burn-rate chart of a signed link
/// (a notification's `burn_chart_url`, which opens without a token until it
/// expires), or, with a token, of any `from`, `to`, `group`, `long`,
/// `short`, `factor`, `at` and `level`.
async fn chart(
    State(alerting): State<Arc<Alerting>>,
    tenant: Tenant,
    Path(id): Path<String>,
    axum::extract::RawQuery(raw): axum::extract::RawQuery,
) -> Result<Response, ApiError> {
    use crate::chart::{ChartRequest, chart_path, is_signed_chart_link};
    let raw = raw.unwrap_or_default();
    let path = chart_path(&id);
    let charts = alerting.charts();
    let (tenant, req) = if is_signed_chart_link(&path, Some(&raw)) {
        let now = alerting.now_ns().div_euclid(1_000_000_000);
        let req = charts.verify(&path, &raw, now)?;
        let tenant = match &req.tenant {
            Some(t) => Tenant::parse(t).map_err(|e| ApiError::invalid(format!("tenant: {e}")))?,
            None => Tenant::default(),
        };
        (tenant, req)
    } else {
        let req: ChartRequest = serde_urlencoded::from_str(&raw)
            .map_err(|e| ApiError::invalid(format!("chart: {e}")))?;
        if req.tenant.is_some() || req.expires.is_some() {
            return Err(ApiError::invalid(
                "tenant and expires belong to signed chart links (with sig)",
            ));
        }
        (tenant, req)
    };
    let png = charts.png(&tenant, &id, &req).await?;
    Ok((
        [
            (axum::http::header::CONTENT_TYPE, "image/png"),
            (axum::http::header::CACHE_CONTROL, "private, max-age=300"),
        ],
        png,
    )
        .into_response())
}

/// The backtest and report routes, with the alerting stage and every
/// tenant's SLO engine.
pub fn backtest_router(alerting: Arc<Alerting>, engines: Arc<SloEngines>) -> Router {
    Router::new()
        .route("/api/v1/slos/backtest", post(backtest))
        .route("/api/v1/reports/slos", get(slo_report))
        .with_state((alerting, engines))
}

/// `GET /api/v1/reports/slos?period=week|month|quarter&at=&time_zone=&by=service|team|tenant&service=&team=&format=json|csv`.
async fn slo_report(
    State((alerting, engines)): State<(Arc<Alerting>, Arc<SloEngines>)>,
    tenant: Tenant,
    Query(q): Query<crate::report::ReportQuery>,
) -> Result<Response, ApiError> {
    let csv = match q.format.as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "format: {other:?} is neither json nor csv"
            )));
        }
    };
    let engine = engines
        .get_or_create(&tenant)
        .await
        .map_err(|e| ApiError::internal("Opening the tenant's SLO engine", e))?;
    let answer = crate::report::report(&engine, &alerting, &tenant, &q).await?;
    if !csv {
        return Ok(Json(answer).into_response());
    }
    let name = format!(
        "attachment; filename=\"slo-report-{}.csv\"",
        answer["period"]["start"]
            .as_str()
            .unwrap_or("")
            .get(..10)
            .unwrap_or("")
    );
    Ok((
        [
            (
                axum::http::header::CONTENT_TYPE,
                "text/csv; charset=utf-8".to_string(),
            ),
            (axum::http::header::CONTENT_DISPOSITION, name),
        ],
        crate::report::csv(&answer),
    )
        .into_response())
}

/// A time in a JSON body: RFC 3339 text or Unix seconds.
fn json_time(field: &str, v: &Value) -> Result<i64, ApiError> {
    let parsed = match v {
        Value::Number(n) => parse_time(&n.to_string()),
        Value::String(s) => parse_time(s),
        other => Err(format!("{other} is neither RFC 3339 text nor Unix seconds")),
    };
    parsed.map_err(|e| ApiError::invalid(format!("{field}: {e}")))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct IncidentBody {
    start: Value,
    end: Value,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BacktestBody {
    /// OpenSLO or Sloth YAML.
    slo: String,
    /// Which of its SLOs, when it defines several.
    id: Option<String>,
    from: Option<Value>,
    to: Option<Value>,
    #[serde(default)]
    incidents: Vec<IncidentBody>,
    #[serde(default)]
    variants: Vec<Variant>,
}

async fn backtest(
    State((alerting, engines)): State<(Arc<Alerting>, Arc<SloEngines>)>,
    tenant: Tenant,
    JsonBody(body): JsonBody<BacktestBody>,
) -> Result<Json<Value>, ApiError> {
    let time = |field: &str, v: &Option<Value>| v.as_ref().map(|v| json_time(field, v)).transpose();
    let mut incidents = Vec::with_capacity(body.incidents.len());
    for (i, inc) in body.incidents.iter().enumerate() {
        incidents.push(Incident {
            start: json_time(&format!("incidents[{i}].start"), &inc.start)?,
            end: json_time(&format!("incidents[{i}].end"), &inc.end)?,
        });
    }
    let request = Request {
        yaml: body.slo,
        id: body.id,
        from: time("from", &body.from)?,
        to: time("to", &body.to)?,
        incidents,
        variants: body.variants,
    };
    let engine = engines
        .get_or_create(&tenant)
        .await
        .map_err(|e| ApiError::internal("Opening the tenant's SLO engine", e))?;
    match crate::backtest::run(&engine, &alerting, request).await {
        Ok(answer) => Ok(Json(answer)),
        Err(BacktestError::Invalid(problems)) => {
            let messages: Vec<String> = problems.iter().map(ToString::to_string).collect();
            Err(ApiError::invalid(messages.join("; ")).with_detail("problems", json!(problems)))
        }
        Err(BacktestError::Slo(e @ smolder_slo::Error::Resources(_))) => {
            Err(ApiError::new(ErrorCode::ResourceExhausted, e.to_string()))
        }
        Err(BacktestError::Slo(e @ smolder_slo::Error::Query(_))) => Err(ApiError::new(
            ErrorCode::Unavailable,
            format!("reading the history failed: {e}"),
        )),
        Err(BacktestError::Slo(e)) => Err(ApiError::internal("A backtest", e)),
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        match e {
            Error::Invalid(_) | Error::Config(_) => ApiError::invalid(e.to_string()),
            Error::NotFound(_) => ApiError::not_found(e.to_string()),
            Error::Conflict(_) => ApiError::conflict(e.to_string()),
            // The detail is for the operator, not the client.
            Error::Store(e) => ApiError::internal("The alerting database", e),
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        ApiError::from(self).into_response()
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AlertsQuery {
    /// Only identity and state (`fingerprint`, `slo`, `labels`, `status`,
    /// `since`): what an overview of many alerts needs.
    #[serde(default)]
    brief: bool,
}

async fn alerts(
    State(a): State<Arc<Alerting>>,
    tenant: Tenant,
    Query(q): Query<AlertsQuery>,
) -> Response {
    let alerts = a.alerts(&tenant).await;
    if q.brief {
        let brief: Vec<Value> = alerts
            .iter()
            .map(|s| {
                json!({
                    "fingerprint": s.alert.fingerprint,
                    "slo": s.alert.slo,
                    "labels": s.alert.labels,
                    "status": s.status,
                    "since": s.since,
                })
            })
            .collect();
        return Json(json!({ "alerts": brief })).into_response();
    }
    Json(json!({ "alerts": alerts })).into_response()
}

#[derive(Debug, Deserialize)]
struct HistoryQuery {
    slo: Option<String>,
    limit: Option<usize>,
}

async fn history(
    State(a): State<Arc<Alerting>>,
    tenant: Tenant,
    Query(q): Query<HistoryQuery>,
) -> Response {
    match a.history(
        &tenant,
        q.slo.as_deref(),
        q.limit.unwrap_or(200).min(10_000),
    ) {
        Ok(h) => {
            let items: Vec<Value> = h
                .into_iter()
                .map(|t| {
                    json!({
                        "at": rfc3339(t.at),
                        "fingerprint": t.fingerprint,
                        "slo": t.slo,
                        "from": t.from,
                        "to": t.to,
                        "labels": t.labels,
                        "summary": t.summary,
                    })
                })
                .collect();
            Json(json!({ "history": items })).into_response()
        }
        Err(e) => e.into_response(),
    }
}

#[derive(Debug, Deserialize)]
struct NotificationsQuery {
    receiver: Option<String>,
    state: Option<String>,
    slo: Option<String>,
    limit: Option<usize>,
}

async fn notifications(
    State(a): State<Arc<Alerting>>,
    tenant: Tenant,
    Query(q): Query<NotificationsQuery>,
) -> Response {
    if let Some(s) = &q.state
        && !["pending", "delivered", "failed", "dead"].contains(&s.as_str())
    {
        return ApiError::invalid(format!(
            "state: {s:?} is not one of pending, delivered, failed, dead"
        ))
        .into_response();
    }
    match a.store().deliveries(
        &tenant,
        q.receiver.as_deref(),
        q.state.as_deref(),
        q.slo.as_deref(),
        q.limit.unwrap_or(200).min(10_000),
    ) {
        Ok(rows) => {
            let items: Vec<Value> = rows
                .into_iter()
                .map(|d| {
                    json!({
                        "id": d.id,
                        "receiver": d.receiver,
                        "group_key": d.group_key,
                        "status": d.status,
                        "state": d.state,
                        "attempts": d.attempts,
                        "created_at": rfc3339(d.created_at),
                        "next_attempt_at": (d.state == crate::store::DeliveryState::Pending).then(|| rfc3339(d.next_attempt_at)),
                        "last_attempt_at": d.last_attempt_at.map(rfc3339),
                        "delivered_at": d.delivered_at.map(rfc3339),
                        "last_status": d.last_status,
                        "last_error": d.last_error,
                        "slos": d.slos,
                    })
                })
                .collect();
            Json(json!({ "notifications": items, "pending": a.deliverer().pending() }))
                .into_response()
        }
        Err(e) => Error::from(e).into_response(),
    }
}

async fn silences(State(a): State<Arc<Alerting>>, tenant: Tenant) -> Response {
    let items: Vec<Value> = a
        .silences(&tenant)
        .await
        .into_iter()
        .map(|(s, status)| {
            let mut v = serde_json::to_value(&s).unwrap_or_default();
            v["status"] = json!(status);
            v
        })
        .collect();
    Json(json!({ "silences": items })).into_response()
}

/// Body of `POST /api/v1/silences`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewSilence {
    #[serde(default)]
    id: Option<String>,
    matchers: Vec<String>,
    #[serde(default)]
    starts_at: Option<DateTime<Utc>>,
    #[serde(default)]
    ends_at: Option<DateTime<Utc>>,
    #[serde(default, with = "humantime_serde")]
    duration: Option<Duration>,
    created_by: String,
    #[serde(default)]
    comment: String,
}

async fn add_silence(
    State(a): State<Arc<Alerting>>,
    tenant: Tenant,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Err(e) = smolder_common::http::require_media_type(&headers, &["application/json"]) {
        return e.into_response();
    }
    // The longest a silence may last (`[alerting] max_silence`).
    let longest = a.max_silence();
    let max_silence = || chrono::Duration::from_std(longest).unwrap_or(chrono::Duration::MAX);
    let new: NewSilence = match serde_json::from_slice(&body) {
        Ok(n) => n,
        Err(e) => {
            return ApiError::invalid(format!("the silence is not valid JSON: {e}"))
                .into_response();
        }
    };
    if new.created_by.trim().is_empty() {
        return ApiError::invalid("created_by: say who creates the silence").into_response();
    }
    let starts_at = new.starts_at.unwrap_or_else(Utc::now);
    let ends_at = match (new.ends_at, new.duration) {
        (Some(_), Some(_)) => {
            return ApiError::invalid("give ends_at or duration, not both").into_response();
        }
        (Some(e), None) => e,
        (None, Some(d)) => match chrono::Duration::from_std(d)
            .ok()
            .filter(|d| *d <= max_silence())
            .and_then(|d| starts_at.checked_add_signed(d))
        {
            Some(end) => end,
            None => {
                return ApiError::invalid(format!(
                    "duration: {} is longer than a silence may last ({}, alerting.max_silence)",
                    humantime::format_duration(d),
                    humantime::format_duration(longest)
                ))
                .into_response();
            }
        },
        (None, None) => {
            return ApiError::invalid("ends_at or duration is required").into_response();
        }
    };
    if ends_at.signed_duration_since(starts_at) > max_silence() {
        return ApiError::invalid(format!(
            "ends_at: a silence may last at most {} (alerting.max_silence)",
            humantime::format_duration(longest)
        ))
        .into_response();
    }
    let silence = Silence {
        id: new.id.unwrap_or_default(),
        matchers: new.matchers,
        starts_at,
        ends_at,
        created_by: new.created_by,
        comment: new.comment,
        created_at: Utc::now(),
        tenant,
    };
    match a.add_silence(silence).await {
        Ok(s) => (StatusCode::CREATED, Json(s)).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn notification(
    State(a): State<Arc<Alerting>>,
    tenant: Tenant,
    Path(id): Path<String>,
) -> Response {
    match a.sent_payload(&tenant, &id) {
        Ok(Some(sent)) => Json(sent).into_response(),
        Ok(None) => Error::NotFound(format!("no notification {id:?}")).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn expire_silence(
    State(a): State<Arc<Alerting>>,
    tenant: Tenant,
    Path(id): Path<String>,
) -> Response {
    match a.expire_silence(&tenant, &id).await {
        Ok(s) => Json(s).into_response(),
        Err(e) => e.into_response(),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CausesQuery {
    group: Option<String>,
    window: Option<String>,
}

async fn causes(
    State(a): State<Arc<Alerting>>,
    tenant: Tenant,
    Path(id): Path<String>,
    Query(q): Query<CausesQuery>,
) -> Response {
    let window = match q
        .window
        .as_deref()
        .map(humantime::parse_duration)
        .transpose()
    {
        Ok(w) => w.unwrap_or(Duration::from_secs(3600)),
        Err(e) => {
            return ApiError::invalid(format!("window: {e} (e.g. 5m, 1h)")).into_response();
        }
    };
    let group = match q.group.as_deref().map(serde_json::from_str).transpose() {
        Ok(g) => g,
        Err(e) => {
            return ApiError::invalid(format!("group is not a JSON object of strings: {e}"))
                .into_response();
        }
    };
    match a.causes(&tenant, &id, group, window).await {
        Ok((examples, hints)) => Json(json!({
            "slo": id,
            "window": humantime::format_duration(window).to_string(),
            "example_trace_ids": examples,
            "hints": hints,
        }))
        .into_response(),
        Err(e) => e.into_response(),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitQuery {
    limit: Option<usize>,
}

async fn scaling_history(
    State(a): State<Arc<Alerting>>,
    tenant: Tenant,
    Path(slo): Path<String>,
    Query(q): Query<LimitQuery>,
) -> Response {
    let limit = q.limit.unwrap_or(200).min(10_000);
    match a.store().scaling_history(&tenant, &slo, limit) {
        Ok(rows) => {
            let decisions: Vec<Value> = rows
                .into_iter()
                .map(|d| {
                    let r = d.request;
                    json!({
                        "id": d.id,
                        "at": rfc3339(d.created_at),
                        "target": r.target,
                        "action": r.action,
                        "group": r.group,
                        "burn_rate": r.burn_rate,
                        "window": r.window,
                        "threshold": r.threshold,
                        "alert": r.alert,
                        "reason": r.reason,
                        "delivery": {
                            "state": d.state,
                            "attempts": d.attempts,
                            "delivered_at": d.delivered_at.map(rfc3339),
                            "last_error": d.last_error,
                        },
                    })
                })
                .collect();
            Json(json!({ "slo": slo, "decisions": decisions })).into_response()
        }
        Err(e) => Error::from(e).into_response(),
    }
}

async fn scaling(
    State(a): State<Arc<Alerting>>,
    tenant: Tenant,
    Path(slo): Path<String>,
) -> Response {
    let Some(snapshot) = a.snapshot().await else {
        return ApiError::unavailable("no SLO evaluation yet").into_response();
    };
    let found = snapshot
        .slos
        .iter()
        .find(|s| s.definition.id == slo && s.definition.tenant == tenant);
    let Some(status) = found else {
        return ApiError::not_found(format!("no SLO {slo:?}")).into_response();
    };
    let alerts = a.alerts(&tenant).await;
    let states = a.scaling_state(&tenant, &slo).await;
    let mut max_rates: BTreeMap<Window, f64> = BTreeMap::new();
    let mut instances = Vec::new();
    let mut worst = 0.0_f64;
    let mut firing_any = false;
    for inst in &status.instances {
        let e = &inst.evaluation;
        for (w, r) in &e.burn_rates {
            let m = max_rates.entry(*w).or_insert(0.0);
            *m = m.max(*r);
        }
        let (burn, window) = crate::scaling::deciding_burn_rate(inst, &Severity::page(), None)
            .map_or((0.0, None), |(b, w)| (b, Some(w)));
        worst = worst.max(burn);
        let firing: Vec<&str> = alerts
            .iter()
            .filter(|s| {
                s.alert.slo == slo
                    && s.status != "pending"
                    && inst
                        .group
                        .iter()
                        .all(|(k, v)| s.alert.labels.get(k) == Some(v))
            })
            .map(|s| s.alert.labels.get("condition").map_or("", String::as_str))
            .collect();
        firing_any |= !firing.is_empty();
        let key = instance_key(&tenant, &slo, &inst.group);
        let targets: BTreeMap<&str, Value> = states
            .iter()
            .filter(|(_, i, _)| *i == key)
            .map(|(t, _, s)| {
                (
                    t.as_str(),
                    json!({
                        "scaled_up": s.scaled_up,
                        "since": rfc3339(s.since),
                        "low_since": s.low_since.map(rfc3339),
                        "burn_rate": s.burn_rate,
                    }),
                )
            })
            .collect();
        instances.push(json!({
            "group": inst.group,
            "burn_rates": e.burn_rates,
            "burn_rate": burn,
            "window": window,
            "firing": firing,
            "targets": targets,
        }));
    }
    let scaled_up = states.iter().any(|(_, _, s)| s.scaled_up);
    Json(json!({
        "slo": slo,
        "burn_rate": worst,
        "burn_rates": max_rates,
        "firing": firing_any,
        "scale": u8::from(scaled_up),
        "instances": instances,
    }))
    .into_response()
}

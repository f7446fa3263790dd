//! Trace and log search for the web UI and scripts, over the same read-only
//! engine as `POST /api/v1/sql`.
//!
//! * `GET /api/v1/traces?service=&route=&name=&status=&min_duration=&from=&to=&limit=&offset=&sort=`
//!   — traces with a span matching every given filter: one row per trace with
//!   the trace's own figures (root span, start, duration, spans, errors,
//!   services) and how many of its spans matched; newest first unless sorted
//!   otherwise ([`search_traces`] reads the newest stretch of the range first).
//! * `GET /api/v1/services?from=&to=` — the services that sent spans in the
//!   range with their routes and span names, for the search form's choices.
//! * `GET /api/v1/traces/{trace_id}?from=&to=` — every span of the trace
//!   (attributes, events, links, resource) ordered by start, and the trace's
//!   log records; `from`/`to` narrow the lookup (default: all stored data).
//! * `GET /api/v1/logs?q=&severity=&service=&trace_id=&from=&to=&limit=` — log
//!   records, newest first ([`search_logs`] reads the newest stretch of the
//!   range first); `q` matches the body without regard to case, `severity`
//!   is the lowest severity shown (`INFO`, `WARN` …).
//!
//! Answers use the SQL API's shape (`columns`, `rows`, `truncated`). Values
//! from the query string reach SQL only as escaped string literals or parsed
//! numbers. `from`/`to` are RFC 3339 or Unix seconds; the default range is the
//! last hour.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use serde::Deserialize;
use serde_json::json;
use smolder_common::Tenant;
use smolder_common::http::{Path, Query};
use smolder_common::text::sql_literal;

use crate::api::{ApiError, to_json};
use crate::{Error, QueryEngine, QueryOutput};

/// Rows a search answers with unless asked for fewer.
const DEFAULT_LIMIT: usize = 100;
/// Most rows a search answers with.
const MAX_LIMIT: usize = 1000;
/// Most spans and log records of one trace shown.
const TRACE_ROWS: usize = 10_000;

/// The routes, with the engine as state.
pub fn router(engine: Arc<QueryEngine>) -> Router {
    Router::new()
        .route("/api/v1/traces", get(traces))
        .route("/api/v1/traces/{trace_id}", get(trace))
        .route("/api/v1/services", get(services))
        .route("/api/v1/logs", get(logs))
        .with_state(engine)
}

/// Query of `GET /api/v1/traces`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TraceSearch {
    /// `service_name` equals this.
    pub service: Option<String>,
    /// `http_route` equals this.
    pub route: Option<String>,
    /// The span's `name` (its operation) equals this.
    pub name: Option<String>,
    /// `status_code` equals this: `OK`, `ERROR` or `UNSET`.
    pub status: Option<String>,
    /// Spans at least this long (`250ms`, `2s`).
    pub min_duration: Option<String>,
    /// Start of the range (RFC 3339 or Unix seconds).
    pub from: Option<String>,
    /// End of the range (RFC 3339 or Unix seconds).
    pub to: Option<String>,
    /// Most traces answered (default 100, at most 1,000).
    pub limit: Option<usize>,
    /// Traces skipped before the first answered, for paging (at most 10,000).
    pub offset: Option<usize>,
    /// The order of the answer (default: newest first).
    pub sort: Option<TraceOrder>,
}

/// The orders a trace search answers in, as Jaeger offers them.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TraceOrder {
    /// Latest trace start first.
    #[default]
    Newest,
    /// Earliest trace start first.
    Oldest,
    /// Longest trace first.
    Longest,
    /// Shortest trace first.
    Shortest,
    /// Trace with the most spans first.
    MostSpans,
}

impl TraceOrder {
    /// The ORDER BY of the trace summaries (trace id last, so pages are stable).
    fn order_by(self) -> &'static str {
        match self {
            Self::Newest => "start_time DESC, trace_id",
            Self::Oldest => "start_time, trace_id",
            Self::Longest => "duration_ns DESC, trace_id",
            Self::Shortest => "duration_ns, trace_id",
            Self::MostSpans => "spans DESC, trace_id",
        }
    }
}

/// Most traces a search may skip: deeper pages cost as much as reading them.
const MAX_OFFSET: usize = 10_000;

/// Query of `GET /api/v1/services`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceQuery {
    /// Start of the range (RFC 3339 or Unix seconds; default: an hour before `to`).
    pub from: Option<String>,
    /// End of the range (default: now).
    pub to: Option<String>,
}

/// Query of `GET /api/v1/logs`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSearch {
    /// Text the body contains, regardless of case.
    pub q: Option<String>,
    /// The lowest severity shown: TRACE, DEBUG, INFO, WARN, ERROR or FATAL.
    pub severity: Option<String>,
    /// `service_name` equals this.
    pub service: Option<String>,
    /// Records of this trace only.
    pub trace_id: Option<String>,
    /// Start of the range (RFC 3339 or Unix seconds).
    pub from: Option<String>,
    /// End of the range (RFC 3339 or Unix seconds).
    pub to: Option<String>,
    /// Most records answered (default 100, at most 1,000).
    pub limit: Option<usize>,
}

/// Query of `GET /api/v1/traces/{trace_id}`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TraceQuery {
    /// Start of the range searched (speeds up the lookup; default: all time).
    pub from: Option<String>,
    /// End of the range searched.
    pub to: Option<String>,
}

fn refused(message: String) -> ApiError {
    Error::Refused(message).into()
}

/// Nanoseconds since the epoch from RFC 3339 or Unix seconds.
fn parse_time(name: &str, s: &str) -> Result<i64, ApiError> {
    smolder_common::text::parse_time(s).map_err(|e| refused(format!("{name}: {e}")))
}

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

const HOUR_NS: i64 = 3_600_000_000_000;

/// The requested range in ns since the epoch (default: the last hour).
fn bounds(from: Option<&str>, to: Option<&str>) -> Result<(i64, i64), ApiError> {
    let to = to
        .map(|t| parse_time("to", t))
        .transpose()?
        .unwrap_or_else(now_ns);
    let from = match from {
        Some(f) => parse_time("from", f)?,
        None => to - HOUR_NS,
    };
    if from > to {
        return Err(refused("from must not be after to".into()));
    }
    Ok((from, to))
}

/// `from <= column <= to` (ns).
fn between(column: &str, from: i64, to: i64) -> String {
    format!("{column} >= to_timestamp_nanos({from}) AND {column} <= to_timestamp_nanos({to})")
}

/// `column BETWEEN from AND to` for the requested range (default: the last hour).
fn range(column: &str, from: Option<&str>, to: Option<&str>) -> Result<String, ApiError> {
    let (from, to) = bounds(from, to)?;
    Ok(between(column, from, to))
}

fn limit(requested: Option<usize>) -> Result<usize, ApiError> {
    match requested {
        None => Ok(DEFAULT_LIMIT),
        Some(0) => Err(refused("limit must be at least 1".into())),
        Some(n) => Ok(n.min(MAX_LIMIT)),
    }
}

fn non_empty(s: Option<&String>) -> Option<&str> {
    s.map(|s| s.trim()).filter(|s| !s.is_empty())
}

/// A lowercase hex id of `len` characters.
fn hex_id(name: &str, s: &str, len: usize) -> Result<String, ApiError> {
    let s = s.trim().to_ascii_lowercase();
    if s.len() != len || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(refused(format!(
            "{name} must be {len} hexadecimal characters, not {s:?}"
        )));
    }
    Ok(s)
}

/// The lowest OTLP severity number of a severity name.
fn severity_floor(name: &str) -> Result<i32, ApiError> {
    Ok(match name.trim().to_ascii_uppercase().as_str() {
        "TRACE" => 1,
        "DEBUG" => 5,
        "INFO" => 9,
        "WARN" | "WARNING" => 13,
        "ERROR" => 17,
        "FATAL" => 21,
        other => {
            return Err(refused(format!(
                "severity {other:?} is not one of TRACE, DEBUG, INFO, WARN, ERROR, FATAL"
            )));
        }
    })
}

/// A checked trace search: its filters besides time, range, order and page.
#[derive(Debug)]
pub struct TracePlan {
    filters: Vec<String>,
    from: i64,
    to: i64,
    limit: usize,
    offset: usize,
    order: TraceOrder,
}

/// How far before and after its matching spans a trace's other spans are
/// looked for: a trace's figures count its spans within an hour of the range.
const TRACE_REACH_NS: i64 = HOUR_NS;

/// `0` for a root span (no parent), `1` for the others: a trace's first
/// span in this order is its root, or its earliest span when the root is
/// missing.
const ROOT_FIRST: &str =
    "CASE WHEN parent_span_id IS NULL OR parent_span_id = '' THEN 0 ELSE 1 END, start_time";

impl TracePlan {
    /// Checks a search's parameters.
    pub fn new(q: &TraceSearch) -> Result<Self, ApiError> {
        let (from, to) = bounds(q.from.as_deref(), q.to.as_deref())?;
        let mut filters = Vec::new();
        if let Some(s) = non_empty(q.service.as_ref()) {
            filters.push(format!("service_name = {}", sql_literal(s)));
        }
        if let Some(r) = non_empty(q.route.as_ref()) {
            filters.push(format!("http_route = {}", sql_literal(r)));
        }
        if let Some(n) = non_empty(q.name.as_ref()) {
            filters.push(format!("name = {}", sql_literal(n)));
        }
        if let Some(s) = non_empty(q.status.as_ref()) {
            let s = s.to_ascii_uppercase();
            if !matches!(s.as_str(), "OK" | "ERROR" | "UNSET") {
                return Err(refused(format!(
                    "status {s:?} is not one of OK, ERROR, UNSET"
                )));
            }
            filters.push(format!("status_code = {}", sql_literal(&s)));
        }
        if let Some(d) = non_empty(q.min_duration.as_ref()) {
            let d: Duration = humantime::parse_duration(d)
                .map_err(|e| refused(format!("min_duration {d:?}: {e} (e.g. 250ms, 2s)")))?;
            filters.push(format!("duration_ns >= {}", d.as_nanos()));
        }
        let offset = q.offset.unwrap_or(0);
        if offset > MAX_OFFSET {
            return Err(refused(format!(
                "offset {offset} is beyond {MAX_OFFSET}; narrow the time range instead"
            )));
        }
        Ok(Self {
            filters,
            from,
            to,
            limit: limit(q.limit)?,
            offset,
            order: q.sort.unwrap_or_default(),
        })
    }

    fn condition(&self) -> String {
        self.filters.iter().map(|f| format!(" AND {f}")).collect()
    }

    /// A span matches: it starts in the range and passes every filter.
    fn matching(&self) -> String {
        format!(
            "{}{}",
            between("start_time", self.from, self.to),
            self.condition()
        )
    }

    /// The newest `limit` traces with spans matching the filters that start
    /// in `from ..= to`, one row each: trace id and first matching start.
    fn newest_sql(&self, from: i64, limit: usize) -> String {
        format!(
            "SELECT trace_id, min(start_time) AS start_time FROM spans WHERE {}{} \
             GROUP BY trace_id ORDER BY start_time DESC LIMIT {limit}",
            between("start_time", from, self.to),
            self.condition(),
        )
    }

    /// Which of `ids` have a span matching the filters in `from .. before`.
    fn earlier_sql(&self, from: i64, before: i64, ids: &[String]) -> String {
        format!(
            "SELECT DISTINCT trace_id FROM spans WHERE start_time >= to_timestamp_nanos({from}) \
             AND start_time < to_timestamp_nanos({before}){} AND trace_id IN ({})",
            self.condition(),
            id_list(ids)
        )
    }

    /// One row per trace of `traces` (a condition on `trace_id`) with its
    /// spans that start in `from ..= to`: the trace's root span, start,
    /// duration, spans, errors and services, and its spans matching the
    /// search; in the search's order, `limit` rows after `offset`.
    fn summary_sql(&self, traces: &str, from: i64, to: i64, offset: usize) -> String {
        let root =
            |column: &str| format!("first_value({column} ORDER BY {ROOT_FIRST}) AS {column}");
        format!(
            "SELECT trace_id, min(start_time) AS start_time, \
             CAST(max(end_time) AS BIGINT) - CAST(min(start_time) AS BIGINT) AS duration_ns, \
             {}, {}, {}, count(*) AS spans, \
             count(*) FILTER (WHERE status_code = 'ERROR') AS errors, \
             count(DISTINCT service_name) AS services, \
             count(*) FILTER (WHERE {}) AS matching_spans \
             FROM spans WHERE {} AND {traces} \
             GROUP BY trace_id ORDER BY {} LIMIT {} OFFSET {offset}",
            root("service_name"),
            root("name"),
            root("http_route"),
            self.matching(),
            between(
                "start_time",
                from.saturating_sub(TRACE_REACH_NS),
                to.saturating_add(TRACE_REACH_NS)
            ),
            self.order.order_by(),
            self.limit,
        )
    }

    /// The traces an order other than newest first picks, `k` of them, by
    /// what their matching spans alone tell (one aggregate over those spans,
    /// which DataFusion keeps to the top `k`): the longest or shortest of
    /// their longest matching span, the most matching spans, the earliest
    /// matching span. Each with its first matching span's start (ns).
    fn candidates_sql(&self, k: usize) -> String {
        let (key, direction) = match self.order {
            TraceOrder::Longest => ("max(duration_ns)", "DESC"),
            TraceOrder::Shortest => ("max(duration_ns)", "ASC"),
            TraceOrder::MostSpans => ("count(*)", "DESC"),
            TraceOrder::Oldest | TraceOrder::Newest => ("min(start_time)", "ASC"),
        };
        format!(
            "SELECT trace_id, CAST(min(start_time) AS BIGINT) AS first_ns FROM spans WHERE {} \
             GROUP BY trace_id ORDER BY {key} {direction} LIMIT {k}",
            self.matching()
        )
    }

    /// The search over its whole range in one query.
    pub fn sql(&self) -> String {
        self.summary_sql(
            &format!(
                "trace_id IN (SELECT trace_id FROM spans WHERE {})",
                self.matching()
            ),
            self.from,
            self.to,
            self.offset,
        )
    }
}

/// `'a', 'b', …` — ids as SQL literals.
fn id_list(ids: &[String]) -> String {
    let ids: Vec<String> = ids.iter().map(|id| sql_literal(id)).collect();
    ids.join(", ")
}

/// The SQL of a trace search over its whole range.
pub fn traces_sql(q: &TraceSearch) -> Result<String, ApiError> {
    Ok(TracePlan::new(q)?.sql())
}

/// Runs a trace search. Newest first (the default), it finds the traces by
/// reading the last hour of the range, then 8, 64 … hours ([`stretches`]),
/// until the stretch read holds `offset + limit` traces that begin in it, so
/// a search over 30 days reads the recent files only when they hold enough.
/// A trace counts as beginning in the stretch when it has no matching span
/// in the hour before it (a trace longer than an hour may be listed with only
/// its spans in the stretch); with the whole range read the answer is exact.
/// Then one query sums up the traces found.
///
/// Other orders pick twice `offset + limit` candidates by their matching
/// spans ([`TracePlan::candidates_sql`]: longest first by the longest
/// matching span, which for a search without filters is the root span),
/// sum them up and order them by the trace's own figure: a search over 30
/// days costs one aggregate over the matching spans instead of summing up
/// every trace in the range.
pub async fn search_traces(engine: &QueryEngine, q: &TraceSearch) -> Result<QueryOutput, ApiError> {
    let plan = TracePlan::new(q)?;
    if plan.order != TraceOrder::Newest {
        let found = engine
            .sql(&plan.candidates_sql(2 * (plan.offset + plan.limit)))
            .await?;
        let ids = column_strings(&found, 0)?;
        let starts: Vec<i64> = column_strings(&found, 1)?
            .iter()
            .filter_map(|s| s.parse().ok())
            .collect();
        let (Some(first), Some(last)) = (starts.iter().min(), starts.iter().max()) else {
            return Ok(engine
                .sql(&plan.summary_sql("FALSE", plan.from, plan.to, 0))
                .await?);
        };
        let traces = format!("trace_id IN ({})", id_list(&ids));
        return Ok(engine
            .sql(&plan.summary_sql(&traces, *first, *last, plan.offset))
            .await?);
    }
    let wanted = plan.offset + plan.limit;
    for start in stretches(plan.from, plan.to) {
        if start == plan.from {
            return Ok(engine.sql(&plan.sql()).await?);
        }
        // Twice as many as asked for: some may turn out to begin earlier.
        let found = engine.sql(&plan.newest_sql(start, 2 * wanted)).await?;
        let ids = column_strings(&found, 0)?;
        if ids.len() < wanted {
            continue;
        }
        let earlier = engine
            .sql(&plan.earlier_sql((start - HOUR_NS).max(plan.from), start, &ids))
            .await?;
        let earlier: HashSet<String> = column_strings(&earlier, 0)?.into_iter().collect();
        let begin_here: Vec<String> = ids.into_iter().filter(|id| !earlier.contains(id)).collect();
        if begin_here.len() >= wanted {
            let page = &begin_here[plan.offset..wanted];
            let traces = format!("trace_id IN ({})", id_list(page));
            return Ok(engine
                .sql(&plan.summary_sql(&traces, start, plan.to, 0))
                .await?);
        }
    }
    unreachable!("the last stretch is the whole range")
}

fn arrow_error(e: datafusion::arrow::error::ArrowError) -> ApiError {
    Error::from(datafusion::error::DataFusionError::from(e)).into()
}

/// Column `i` of every row as text.
fn column_strings(output: &QueryOutput, i: usize) -> Result<Vec<String>, ApiError> {
    let mut out = Vec::new();
    for batch in &output.batches {
        let column = cast(batch.column(i), &DataType::Utf8).map_err(arrow_error)?;
        let column = column.as_string::<i32>();
        out.extend((0..column.len()).map(|r| column.value(r).to_string()));
    }
    Ok(out)
}

/// The SQL of a log search over `from ..= to` (ns).
fn logs_sql_between(q: &LogSearch, from: i64, to: i64) -> Result<String, ApiError> {
    let mut filters = vec![between("time", from, to)];
    if let Some(text) = non_empty(q.q.as_ref()) {
        // ILIKE's case-insensitive substring search does not build a
        // lowercased copy of every body, as lower() would.
        let pattern = text
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        filters.push(format!(
            "body ILIKE {} ESCAPE '\\'",
            sql_literal(&format!("%{pattern}%"))
        ));
    }
    if let Some(s) = non_empty(q.severity.as_ref()) {
        filters.push(format!("severity_number >= {}", severity_floor(s)?));
    }
    if let Some(s) = non_empty(q.service.as_ref()) {
        filters.push(format!("service_name = {}", sql_literal(s)));
    }
    if let Some(t) = non_empty(q.trace_id.as_ref()) {
        filters.push(format!(
            "trace_id = {}",
            sql_literal(&hex_id("trace_id", t, 32)?)
        ));
    }
    Ok(format!(
        "SELECT time, service_name, severity_text, severity_number, body, trace_id, span_id, \
         attributes, resource_attributes FROM logs WHERE {} ORDER BY time DESC LIMIT {}",
        filters.join(" AND "),
        limit(q.limit)?
    ))
}

/// The SQL of a log search over its whole range.
pub fn logs_sql(q: &LogSearch) -> Result<String, ApiError> {
    let (from, to) = bounds(q.from.as_deref(), q.to.as_deref())?;
    logs_sql_between(q, from, to)
}

/// Runs a log search newest first: the last hour of the range, then 8, 64 …
/// hours, until the stretch read holds `limit` records (then they are the
/// newest of the whole range) or is the whole range.
pub async fn search_logs(engine: &QueryEngine, q: &LogSearch) -> Result<QueryOutput, ApiError> {
    let (from, to) = bounds(q.from.as_deref(), q.to.as_deref())?;
    let wanted = limit(q.limit)?;
    for start in stretches(from, to) {
        let found = engine.sql(&logs_sql_between(q, start, to)?).await?;
        let rows: usize = found.batches.iter().map(|b| b.num_rows()).sum();
        if rows >= wanted || start == from {
            return Ok(found);
        }
    }
    unreachable!("the last stretch is the whole range")
}

/// Where the stretches a search reads begin, newest first: an hour before
/// `to`, then 8, 64 … hours, the last one at `from`.
fn stretches(from: i64, to: i64) -> impl Iterator<Item = i64> {
    let mut width = Some(HOUR_NS);
    std::iter::from_fn(move || {
        let w = width?;
        let start = to.saturating_sub(w).max(from);
        width = (start > from).then(|| w.saturating_mul(8));
        Some(start)
    })
}

async fn traces(
    State(engine): State<Arc<QueryEngine>>,
    tenant: Tenant,
    Query(q): Query<TraceSearch>,
) -> Result<Response, ApiError> {
    let output = search_traces(&engine.for_tenant(&tenant)?, &q).await?;
    Ok(Json(to_json(&output)?).into_response())
}

async fn logs(
    State(engine): State<Arc<QueryEngine>>,
    tenant: Tenant,
    Query(q): Query<LogSearch>,
) -> Result<Response, ApiError> {
    let output = search_logs(&engine.for_tenant(&tenant)?, &q).await?;
    Ok(Json(to_json(&output)?).into_response())
}

async fn services(
    State(engine): State<Arc<QueryEngine>>,
    tenant: Tenant,
    Query(q): Query<ServiceQuery>,
) -> Result<Response, ApiError> {
    let engine = engine.for_tenant(&tenant)?;
    let (from, to) = bounds(q.from.as_deref(), q.to.as_deref())?;
    let output = engine.sql(&services_sql(from, to)).await?;
    Ok(Json(json!({ "services": service_list(&output)? })).into_response())
}

/// Most routes and span names listed per service.
const NAMES_PER_SERVICE: usize = 500;

/// Spans per service, route and span name starting in `from ..= to`.
fn services_sql(from: i64, to: i64) -> String {
    format!(
        "SELECT service_name, http_route, name, count(*) AS spans FROM spans WHERE {} \
         GROUP BY 1, 2, 3 ORDER BY 1, 4 DESC",
        between("start_time", from, to)
    )
}

/// `[{"name", "spans", "routes": [...], "operations": [...]}]` from the rows
/// of [`services_sql`]: routes and span names busiest first.
fn service_list(output: &QueryOutput) -> Result<Vec<serde_json::Value>, ApiError> {
    let services = column_strings(output, 0)?;
    let routes = column_strings(output, 1)?;
    let names = column_strings(output, 2)?;
    let counts = column_strings(output, 3)?;
    let mut out: Vec<(String, u64, Vec<String>, Vec<String>)> = Vec::new();
    for (((service, route), name), count) in services.into_iter().zip(routes).zip(names).zip(counts)
    {
        if out.last().is_none_or(|s| s.0 != service) {
            out.push((service, 0, Vec::new(), Vec::new()));
        }
        let entry = out.last_mut().expect("pushed above");
        entry.1 += count.parse::<u64>().unwrap_or(0);
        if !route.is_empty() && !entry.2.contains(&route) && entry.2.len() < NAMES_PER_SERVICE {
            entry.2.push(route);
        }
        if !entry.3.contains(&name) && entry.3.len() < NAMES_PER_SERVICE {
            entry.3.push(name);
        }
    }
    Ok(out
        .into_iter()
        .map(|(name, spans, routes, operations)| {
            json!({ "name": name, "spans": spans, "routes": routes, "operations": operations })
        })
        .collect())
}

async fn trace(
    State(engine): State<Arc<QueryEngine>>,
    tenant: Tenant,
    Path(trace_id): Path<String>,
    Query(q): Query<TraceQuery>,
) -> Result<Response, ApiError> {
    let engine = engine.for_tenant(&tenant)?;
    let id = sql_literal(&hex_id("trace id", &trace_id, 32)?);
    let time = |column: &str| -> Result<String, ApiError> {
        if q.from.is_none() && q.to.is_none() {
            return Ok(String::new());
        }
        let from = q.from.as_deref().unwrap_or("0");
        let to_default = (now_ns() / 1_000_000_000 + 86_400).to_string();
        let to = q.to.as_deref().unwrap_or(&to_default);
        Ok(format!(" AND {}", range(column, Some(from), Some(to))?))
    };
    let spans_sql = format!(
        "SELECT span_id, parent_span_id, start_time, end_time, duration_ns, service_name, name, \
         kind, status_code, status_message, http_route, http_request_method, \
         http_response_status_code, rpc_grpc_status_code, attributes, events, links, \
         resource_attributes, scope_name, scope_version \
         FROM spans WHERE trace_id = {id}{} ORDER BY start_time LIMIT {TRACE_ROWS}",
        time("start_time")?
    );
    let logs_sql = format!(
        "SELECT time, service_name, severity_text, severity_number, body, span_id, attributes \
         FROM logs WHERE trace_id = {id}{} ORDER BY time LIMIT {TRACE_ROWS}",
        time("time")?
    );
    let (spans, logs) = futures::try_join!(engine.sql(&spans_sql), engine.sql(&logs_sql))?;
    Ok(Json(json!({
        "trace_id": trace_id.to_ascii_lowercase(),
        "spans": to_json(&spans)?,
        "logs": to_json(&logs)?,
    }))
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_reach_sql_only_as_literals() {
        let q = TraceSearch {
            service: Some("x' OR '1'='1".into()),
            route: Some("/pay".into()),
            name: Some("POST /pay".into()),
            status: Some("error".into()),
            min_duration: Some("250ms".into()),
            from: Some("1700000000".into()),
            to: Some("2023-11-14T22:23:20Z".into()),
            limit: Some(5),
            offset: Some(10),
            sort: Some(TraceOrder::Longest),
        };
        let sql = traces_sql(&q).expect("valid");
        assert!(sql.contains("service_name = 'x'' OR ''1''=''1'"), "{sql}");
        assert!(sql.contains("status_code = 'ERROR'"), "{sql}");
        assert!(sql.contains("name = 'POST /pay'"), "{sql}");
        assert!(sql.contains("duration_ns >= 250000000"), "{sql}");
        assert!(
            sql.contains("to_timestamp_nanos(1700000000000000000)"),
            "{sql}"
        );
        assert!(
            sql.ends_with("ORDER BY duration_ns DESC, trace_id LIMIT 5 OFFSET 10"),
            "{sql}"
        );
    }

    #[test]
    fn bad_parameters_are_named() {
        let message = |r: Result<String, ApiError>| r.expect_err("refused").message().to_string();
        let status = TraceSearch {
            status: Some("BROKEN".into()),
            ..Default::default()
        };
        assert!(message(traces_sql(&status)).contains("status \"BROKEN\""));
        let duration = TraceSearch {
            min_duration: Some("fast".into()),
            ..Default::default()
        };
        assert!(message(traces_sql(&duration)).contains("min_duration \"fast\""));
        let deep = TraceSearch {
            offset: Some(50_000),
            ..Default::default()
        };
        assert!(message(traces_sql(&deep)).contains("offset 50000"));
        let severity = LogSearch {
            severity: Some("loud".into()),
            ..Default::default()
        };
        assert!(message(logs_sql(&severity)).contains("severity \"LOUD\""));
        let trace = LogSearch {
            trace_id: Some("zz".into()),
            ..Default::default()
        };
        assert!(message(logs_sql(&trace)).contains("32 hexadecimal"));
        let time = LogSearch {
            from: Some("yesterday".into()),
            ..Default::default()
        };
        assert!(message(logs_sql(&time)).contains("from: \"yesterday\""));
        let backwards = LogSearch {
            from: Some("200".into()),
            to: Some("100".into()),
            ..Default::default()
        };
        assert!(message(logs_sql(&backwards)).contains("from must not be after to"));
    }

    #[test]
    fn log_search_filters() {
        let q = LogSearch {
            q: Some("Payment DECLINED".into()),
            severity: Some("warn".into()),
            service: Some("checkout".into()),
            trace_id: Some("0AF7651916CD43DD8448EB211C80319C".into()),
            ..Default::default()
        };
        let sql = logs_sql(&q).expect("valid");
        assert!(
            sql.contains("body ILIKE '%Payment DECLINED%' ESCAPE '\\'"),
            "{sql}"
        );
        let wild = LogSearch {
            q: Some(r"50%_off\".into()),
            ..Default::default()
        };
        assert!(sql.contains("severity_number >= 13"));
        assert!(sql.contains("trace_id = '0af7651916cd43dd8448eb211c80319c'"));
        assert!(sql.contains(&format!("LIMIT {DEFAULT_LIMIT}")));
        // Wildcards in the text are matched as themselves.
        let sql = logs_sql(&wild).expect("valid");
        assert!(
            sql.contains(r"body ILIKE '%50\%\_off\\%' ESCAPE '\'"),
            "{sql}"
        );
    }
}

//! SLO reports: for a calendar week, month or quarter, each SLO's SLI, the
//! share of the period's error budget its bad events used, the time it was
//! in violation, its incidents (from the alert history) and the downtime
//! its objective still allows — per service, per `team` label, or for the
//! whole tenant.
//!
//! The figures are the rollups' own, summed over the report's range (not
//! over the SLO's period): an SLO of 30 rolling days reported for a month
//! says how that month went. "In violation" is the time during which the
//! SLO's own figure — its SLI over its period, as the SLO page shows it —
//! was below the objective in some group, evaluated every five minutes.

use std::collections::BTreeMap;

use chrono::{Datelike as _, NaiveDate, TimeZone as _};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use smolder_common::Tenant;
use smolder_common::http::ApiError;
use smolder_slo::SloEngine;
use smolder_slo::engine::SloStatus;
use smolder_slo::eval::evaluate;
use smolder_slo::rollup::Counts;

use crate::manager::Alerting;
use crate::render::rfc3339;

/// How often "in violation" is evaluated.
const VIOLATION_STEP: i64 = 300 * 1_000_000_000;
/// Most incidents listed per SLO (all are counted).
const MAX_LISTED: usize = 100;

/// A report's length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Span {
    /// Monday to Monday.
    Week,
    /// A calendar month.
    #[default]
    Month,
    /// January, April, July or October to three months later.
    Quarter,
}

/// What SLOs are grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupBy {
    /// One group per service.
    #[default]
    Service,
    /// One group per value of the SLOs' `team` label.
    Team,
    /// The whole tenant as one group.
    Tenant,
}

/// The query of `GET /api/v1/reports/slos`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportQuery {
    /// `week`, `month` (default) or `quarter`.
    #[serde(default)]
    pub period: Span,
    /// A day in the period (`2026-11-15`, RFC 3339 or Unix seconds);
    /// default: today.
    pub at: Option<String>,
    /// The time zone of the calendar (default UTC).
    pub time_zone: Option<String>,
    /// `service` (default), `team` or `tenant`.
    #[serde(default)]
    pub by: GroupBy,
    /// Only this service's SLOs.
    pub service: Option<String>,
    /// Only SLOs with this `team` label.
    pub team: Option<String>,
    /// `json` (default) or `csv`.
    pub format: Option<String>,
}

/// The calendar period holding the day `at` (Unix ns) in `tz`: its start
/// and end (Unix ns).
pub fn period(span: Span, at: i64, tz: Tz) -> (i64, i64) {
    let day = tz.timestamp_nanos(at).date_naive();
    let start = match span {
        Span::Week => day - chrono::Days::new(u64::from(day.weekday().num_days_from_monday())),
        Span::Month => day.with_day(1).expect("every month has a first day"),
        Span::Quarter => NaiveDate::from_ymd_opt(day.year(), (day.month0() / 3) * 3 + 1, 1)
            .expect("a quarter's first day"),
    };
    let end = match span {
        Span::Week => start + chrono::Days::new(7),
        Span::Month => start + chrono::Months::new(1),
        Span::Quarter => start + chrono::Months::new(3),
    };
    let instant = |d: NaiveDate| {
        let midnight = d.and_hms_opt(0, 0, 0).expect("midnight exists");
        tz.from_local_datetime(&midnight)
            .earliest()
            .map_or(0, |t| t.timestamp_nanos_opt().unwrap_or(0))
    };
    (instant(start), instant(end))
}

/// One incident: an alert that fired in the period.
#[derive(Debug, Clone, Serialize)]
pub struct Incident {
    /// `page`, `ticket`, `budget`, …
    pub severity: String,
    /// The condition (`1h/5m`, `budget 50%`).
    pub condition: String,
    /// When it fired.
    pub start: String,
    /// When it resolved; none while it fires.
    pub end: Option<String>,
    /// The SLO group (`k=v`), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
}

/// One SLO's line of a report.
#[derive(Debug, Clone, Serialize)]
pub struct SloReport {
    /// The group this SLO is reported under.
    pub group: String,
    /// The SLO.
    pub slo: String,
    /// Its name.
    pub display_name: Option<String>,
    /// Its service.
    pub service: String,
    /// Its `team` label.
    pub team: Option<String>,
    /// The objective.
    pub objective: f64,
    /// Good and total over the period so far (budget units: events, or
    /// slices for timeslice SLOs).
    pub good: f64,
    /// See `good`.
    pub total: f64,
    /// good / total; none without events.
    pub sli: Option<f64>,
    /// Whether the SLI meets the objective (true without events).
    pub met: bool,
    /// Bad events over the budget of the period's events (1 = all of it).
    pub budget_used: f64,
    /// Seconds in violation (see the module's doc).
    pub time_in_violation_seconds: f64,
    /// Incidents by severity.
    pub incidents: BTreeMap<String, usize>,
    /// The first [`MAX_LISTED`] incidents.
    pub incident_list: Vec<Incident>,
    /// The downtime the objective allows over the whole period.
    pub allowed_downtime_seconds: f64,
    /// What is left of it: allowed, less the time the bad events stand for
    /// over the time elapsed.
    pub downtime_left_seconds: f64,
    /// Time of the period so far whose events did not count (budget
    /// exclusions; overlapping ones counted once).
    pub excluded_seconds: f64,
    /// The exclusions' occurrences within the period (the first
    /// [`MAX_LISTED`]).
    pub exclusions: Vec<smolder_slo::exclusion::Occurrence>,
    /// The SLO's figures are not complete (history being rolled up, or the
    /// last update failed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
}

fn group_of(by: GroupBy, s: &SloStatus) -> String {
    match by {
        GroupBy::Service => s.definition.service.clone(),
        GroupBy::Team => s
            .definition
            .labels
            .get("team")
            .cloned()
            .unwrap_or_else(|| "(no team)".to_string()),
        GroupBy::Tenant => s.definition.tenant.to_string(),
    }
}

/// The report of `tenant`'s SLOs that `q` selects.
pub async fn report(
    engine: &SloEngine,
    alerting: &Alerting,
    tenant: &Tenant,
    q: &ReportQuery,
) -> Result<serde_json::Value, ApiError> {
    let now = alerting.now_ns();
    let tz: Tz = match q.time_zone.as_deref() {
        None => Tz::UTC,
        Some(name) => name.parse().map_err(|_| {
            ApiError::invalid(format!("time_zone: {name:?} is not an IANA time zone"))
        })?,
    };
    let at = match q.at.as_deref() {
        None => now,
        Some(text) => match NaiveDate::parse_from_str(text, "%Y-%m-%d") {
            Ok(d) => tz
                .from_local_datetime(&d.and_hms_opt(12, 0, 0).expect("noon exists"))
                .earliest()
                .and_then(|t| t.timestamp_nanos_opt())
                .ok_or_else(|| ApiError::invalid(format!("at: {text:?} is out of range")))?,
            Err(_) => smolder_common::text::parse_time(text)
                .map_err(|e| ApiError::invalid(format!("at: {e} (or a day: 2026-11-15)")))?,
        },
    };
    let (start, end) = period(q.period, at, tz);
    if start > now {
        return Err(ApiError::invalid("at: the period has not begun"));
    }
    let until = end.min(now);
    let snap = engine.snapshot();
    let mut lines = Vec::new();
    for s in &snap.slos {
        let d = &s.definition;
        if q.service.as_ref().is_some_and(|x| *x != d.service)
            || q.team
                .as_ref()
                .is_some_and(|x| d.labels.get("team") != Some(x))
        {
            continue;
        }
        lines.push(slo_line(engine, alerting, tenant, s, q.by, (start, end, until)).await?);
    }
    lines.sort_by(|a, b| (&a.group, &a.slo).cmp(&(&b.group, &b.slo)));
    let mut groups: BTreeMap<&str, (usize, usize, f64)> = BTreeMap::new();
    for l in &lines {
        let g = groups.entry(l.group.as_str()).or_default();
        g.0 += 1;
        g.1 += usize::from(l.met);
        g.2 += l.incidents.values().sum::<usize>() as f64;
    }
    Ok(serde_json::json!({
        "period": {
            "kind": q.period,
            "start": rfc3339(start),
            "end": rfc3339(end),
            "time_zone": tz.name(),
            "complete": end <= now,
        },
        "by": q.by,
        "generated_at": rfc3339(now),
        "groups": groups.iter().map(|(name, (slos, met, incidents))| serde_json::json!({
            "name": name, "slos": slos, "met": met, "incidents": *incidents as usize,
        })).collect::<Vec<_>>(),
        "slos": lines,
    }))
}

async fn slo_line(
    engine: &SloEngine,
    alerting: &Alerting,
    tenant: &Tenant,
    s: &SloStatus,
    by: GroupBy,
    (start, end, until): (i64, i64, i64),
) -> Result<SloReport, ApiError> {
    let d = &s.definition;
    let history = engine
        .history(d, start, until)
        .await
        .map_err(|e| ApiError::internal("Reading an SLO's rollups for a report", e))?;
    let b = history.bucket_ns;
    let (first, last) = (start.div_euclid(b), (until - 1).div_euclid(b));
    let mut counts = Counts::default();
    for rollup in history.groups.values() {
        let c = rollup.sum(first, last);
        counts.good += c.good;
        counts.total += c.total;
    }
    // In violation: some group's SLI over its period below the objective,
    // with the events before the instant (as the engine holds them then).
    let mut violation = 0i64;
    let mut t = start + VIOLATION_STEP;
    while t <= until {
        if history
            .groups
            .values()
            .any(|r| evaluate(d, r, b, t - 1).error_budget_remaining < 0.0)
        {
            violation += VIOLATION_STEP;
        }
        t += VIOLATION_STEP;
    }
    let bad = (counts.total - counts.good).max(0.0);
    let error_budget = 1.0 - d.objective;
    let budget_used = if counts.total > 0.0 {
        bad / (error_budget * counts.total)
    } else {
        0.0
    };
    let allowed = error_budget * (end - start) as f64 / 1e9;
    let elapsed = (until - start) as f64 / 1e9;
    let used = if counts.total > 0.0 {
        bad / counts.total * elapsed
    } else {
        0.0
    };
    let (incidents, incident_list) = incidents(alerting, tenant, &d.id, start, end)?;
    let mut exclusions = engine.exclusions(d).occurrences(start, until);
    let excluded_seconds = covered(&exclusions, start, until) as f64 / 1e9;
    exclusions.truncate(MAX_LISTED);
    let warning = if !s.backfill.done {
        Some("the SLO's history is still being rolled up".to_string())
    } else {
        s.error
            .as_ref()
            .map(|e| format!("the SLO's last update failed: {e}"))
    };
    Ok(SloReport {
        group: group_of(by, s),
        slo: d.id.clone(),
        display_name: d.display_name.clone(),
        service: d.service.clone(),
        team: d.labels.get("team").cloned(),
        objective: d.objective,
        good: counts.good,
        total: counts.total,
        sli: (counts.total > 0.0).then(|| counts.good / counts.total),
        met: counts.total <= 0.0 || counts.good / counts.total >= d.objective,
        budget_used,
        time_in_violation_seconds: violation as f64 / 1e9,
        incidents,
        incident_list,
        allowed_downtime_seconds: allowed,
        downtime_left_seconds: allowed - used,
        excluded_seconds,
        exclusions,
        warning,
    })
}

/// Nanoseconds of `[from, to)` that `occurrences` (by start) cover.
fn covered(occurrences: &[smolder_slo::exclusion::Occurrence], from: i64, to: i64) -> i64 {
    let mut total = 0;
    let mut reached = from;
    for o in occurrences {
        let (a, b) = (o.start_ns.max(reached), o.end_ns.min(to));
        if b > a {
            total += b - a;
            reached = b;
        }
    }
    total
}

/// The alerts of `slo` that fired in `[start, end)`, counted by severity
/// and listed, with their resolution when there is one.
fn incidents(
    alerting: &Alerting,
    tenant: &Tenant,
    slo: &str,
    start: i64,
    end: i64,
) -> Result<(BTreeMap<String, usize>, Vec<Incident>), ApiError> {
    let transitions = alerting
        .store()
        .transitions_since(tenant, slo, start)
        .map_err(|e| ApiError::internal("Reading the alert history", e))?;
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let mut list: Vec<Incident> = Vec::new();
    let mut open: BTreeMap<&str, usize> = BTreeMap::new();
    for t in &transitions {
        if t.to == "firing" && t.at < end {
            let severity = t.labels.get("severity").cloned().unwrap_or_default();
            *counts.entry(severity.clone()).or_default() += 1;
            if list.len() < MAX_LISTED {
                open.insert(&t.fingerprint, list.len());
                list.push(Incident {
                    severity,
                    condition: t
                        .labels
                        .get("window")
                        .or_else(|| t.labels.get("condition"))
                        .cloned()
                        .unwrap_or_default(),
                    start: rfc3339(t.at),
                    end: None,
                    group: t.labels.get("slo_group").cloned(),
                });
            }
        } else if t.to == "resolved"
            && let Some(i) = open.remove(t.fingerprint.as_str())
        {
            list[i].end = Some(rfc3339(t.at));
        }
    }
    Ok((counts, list))
}

/// The report's SLO lines as CSV (RFC 4180), one row per SLO.
pub fn csv(answer: &serde_json::Value) -> String {
    const COLUMNS: [&str; 16] = [
        "group",
        "slo",
        "service",
        "team",
        "objective",
        "sli",
        "met",
        "good",
        "total",
        "budget_used",
        "time_in_violation_seconds",
        "incidents",
        "allowed_downtime_seconds",
        "downtime_left_seconds",
        "excluded_seconds",
        "warning",
    ];
    let field = |v: &serde_json::Value| -> String {
        let text = match v {
            serde_json::Value::Null => String::new(),
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        if text.contains([',', '"', '\n', '\r']) {
            format!("\"{}\"", text.replace('"', "\"\""))
        } else {
            text
        }
    };
    let mut out = COLUMNS.join(",");
    out.push_str("\r\n");
    for line in answer["slos"].as_array().into_iter().flatten() {
        let row: Vec<String> = COLUMNS
            .iter()
            .map(|c| match *c {
                "incidents" => line["incidents"]
                    .as_object()
                    .map_or(0, |m| {
                        m.values()
                            .filter_map(serde_json::Value::as_u64)
                            .sum::<u64>()
                    })
                    .to_string(),
                c => field(&line[c]),
            })
            .collect();
        out.push_str(&row.join(","));
        out.push_str("\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400 * 1_000_000_000;

    fn ns(y: i32, m: u32, d: u32, tz: Tz) -> i64 {
        tz.with_ymd_and_hms(y, m, d, 0, 0, 0)
            .unwrap()
            .timestamp_nanos_opt()
            .unwrap()
    }

    #[test]
    fn periods_are_calendar_weeks_months_and_quarters_in_the_time_zone() {
        let utc = Tz::UTC;
        // Wednesday 2026-11-18.
        let at = ns(2026, 11, 18, utc) + DAY / 2;
        assert_eq!(
            period(Span::Week, at, utc),
            (ns(2026, 11, 16, utc), ns(2026, 11, 23, utc))
        );
        assert_eq!(
            period(Span::Month, at, utc),
            (ns(2026, 11, 1, utc), ns(2026, 12, 1, utc))
        );
        assert_eq!(
            period(Span::Quarter, at, utc),
            (ns(2026, 10, 1, utc), ns(2027, 1, 1, utc))
        );
        // Berlin: October 2026 has 31 days and a change of clocks (25 h on
        // the 25th).
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        let (s, e) = period(Span::Month, ns(2026, 10, 10, berlin), berlin);
        assert_eq!((s, e), (ns(2026, 10, 1, berlin), ns(2026, 11, 1, berlin)));
        assert_eq!(e - s, 31 * DAY + DAY / 24);
    }

    #[test]
    fn csv_quotes_what_needs_quoting() {
        let answer = serde_json::json!({"slos": [{
            "group": "pay, \"core\"", "slo": "a", "service": "pay", "team": null,
            "objective": 0.999, "sli": 0.9995, "met": true, "good": 9995.0, "total": 10000.0,
            "budget_used": 0.5, "time_in_violation_seconds": 0.0,
            "incidents": {"page": 1, "ticket": 2}, "allowed_downtime_seconds": 2678.4,
            "downtime_left_seconds": 1339.2, "excluded_seconds": 7200.0, "warning": null,
        }]});
        let text = csv(&answer);
        let mut lines = text.lines();
        assert!(
            lines
                .next()
                .unwrap()
                .starts_with("group,slo,service,team,objective,sli")
        );
        assert_eq!(
            lines.next().unwrap(),
            "\"pay, \"\"core\"\"\",a,pay,,0.999,0.9995,true,9995.0,10000.0,0.5,0.0,3,2678.4,1339.2,7200.0,"
        );
    }
}

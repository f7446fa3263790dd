//! The SQL that computes an SLO's rollups: good and total per bucket (and
//! group) over a time range, run by DataFusion over the telemetry tables.
//!
//! Every query returns the columns `bucket` (the bucket's index: time /
//! width), `g0 … gN` (group values as text) and `good`, `total` (DOUBLE).
//!
//! User expressions (filters, values, groups) are parsed on their own first,
//! so a definition can only ever contribute one expression — never a second
//! statement or a subquery that escapes the table.

use std::time::Duration;

use datafusion::prelude::{SQLOptions, SessionContext};

use crate::model::{Origin, SliKind, SloDefinition};
use crate::spec::Problem;

/// Checks a definition's SQL: each expression must be one expression without
/// subqueries, and the rollup query must plan against the tables of `ctx`
/// (so unknown columns and type errors are reported when the SLO is loaded).
pub async fn check_definition(
    ctx: &SessionContext,
    def: &SloDefinition,
    step: Duration,
) -> Result<(), Vec<Problem>> {
    let origin = match &def.origin {
        Origin::File(f) => f.clone(),
        Origin::Api => "api".to_string(),
    };
    let problem = |field: &str, message: String| match def.sli_fields.get(field) {
        Some(at) => Problem {
            file: if def.origin == Origin::Api {
                "api".to_string()
            } else {
                at.file.clone()
            },
            document: at.document,
            field: at.field.clone(),
            message: format!("SLO {}: {message}", def.id),
        },
        None => Problem {
            file: origin.clone(),
            document: 0,
            field: format!("SLO {}: {field}", def.id),
            message,
        },
    };
    let mut problems = Vec::new();
    for (field, expr) in expressions(def) {
        if let Err(e) = check_expression(expr) {
            problems.push(problem(field, e));
        }
    }
    let options = || {
        SQLOptions::new()
            .with_allow_ddl(false)
            .with_allow_dml(false)
            .with_allow_statements(false)
    };
    // Each expression alone first, so that an unknown column or a type error
    // names its field.
    if problems.is_empty() {
        let table = def.sli.table.name();
        for (field, expr) in expressions(def) {
            let sql = match field {
                "value" | "groupBy" => format!("SELECT ({expr}) FROM {table}"),
                _ => format!("SELECT count(*) FROM {table} WHERE ({expr})"),
            };
            let planned = match ctx.sql_with_options(&sql, options()).await {
                Ok(df) => df.create_physical_plan().await.map(drop),
                Err(e) => Err(e),
            };
            if let Err(e) = planned {
                problems.push(problem(field, format!("{expr:?}: {e}")));
            }
        }
    }
    if problems.is_empty() {
        let range = Range {
            bucket_ns: def.bucket_ns(step),
            from_ns: 0,
            to_ns: 1,
            lookback_ns: 0,
        };
        let sql = rollup_query(def, range, &[]);
        // Down to the physical plan, so type errors surface now, not at the
        // first tick.
        let planned = match ctx.sql_with_options(&sql, options()).await {
            Ok(df) => df.create_physical_plan().await.map(drop),
            Err(e) => Err(e),
        };
        if let Err(e) = planned {
            problems.push(problem("indicator", format!("the SQL does not plan: {e}")));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

/// OTLP's NO_RECORDED_VALUE data point flag.
const NO_RECORDED_VALUE: u32 = 1;

/// Checks that `expr` is one SQL expression without subqueries.
pub fn check_expression(expr: &str) -> Result<(), String> {
    // The same parser, depth and size limits as the SQL API's (an SLO's
    // expressions are planned and run like any query).
    smolder_query::sandbox::check_expression(expr, smolder_query::sandbox::Limits::default())
        .map_err(|e| e.to_string())
}

/// Every user expression of a definition, with the field it came from.
pub fn expressions(def: &SloDefinition) -> Vec<(&'static str, &str)> {
    let mut out: Vec<(&'static str, &str)> = Vec::new();
    match &def.sli.kind {
        SliKind::Rows { good, bad, total } | SliKind::Counter { good, bad, total } => {
            if let Some(g) = good {
                out.push(("good.filter", g));
            }
            if let Some(b) = bad {
                out.push(("bad.filter", b));
            }
            out.push(("total.filter", total));
        }
        SliKind::Histogram { filter, .. } => out.push(("filter", filter)),
        SliKind::Threshold { filter, value, .. } => {
            out.push(("filter", filter));
            out.push(("value", value));
        }
    }
    for g in &def.group_by {
        out.push(("groupBy", g));
    }
    out
}

/// A timestamp literal DataFusion folds into a constant (so files and row
/// groups are pruned by it).
pub fn ts(ns: i64) -> String {
    format!(
        "TIMESTAMP '{}'",
        smolder_common::text::rfc3339(ns, chrono::SecondsFormat::Nanos)
    )
}

/// The last point of a cumulative series before a rollup query's range,
/// kept by the engine so a series that exports rarely (or paused longer
/// than the counter lookback) still counts its increase across the gap.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Baseline {
    /// `series_hash` of the series.
    pub sid: i64,
    /// Time of the point (Unix ns).
    pub time: i64,
    /// Its start time (Unix ns), if any.
    pub start: Option<i64>,
    /// Its good value (the counter, or the histogram's count at or below
    /// the threshold).
    pub good: f64,
    /// Its total value.
    pub total: f64,
}

/// What a rollup query covers.
#[derive(Debug, Clone, Copy)]
pub struct Range {
    /// Width of a bucket, in nanoseconds.
    pub bucket_ns: i64,
    /// Events from this time (Unix ns, on a bucket boundary)…
    pub from_ns: i64,
    /// …up to this time, excluded.
    pub to_ns: i64,
    /// How far before `from_ns` counters look for the previous point of each
    /// series.
    pub lookback_ns: i64,
}

/// The parts of a counter-style query that depend on the SLI kind.
struct PointQuery<'a> {
    /// Columns `vg`, `vt` (the good and total values of a point) and the
    /// flags `is_good`, `is_total`.
    points: &'a str,
    /// Which points are read.
    selection: &'a str,
    /// The bucket's good and total from the increments.
    good_sum: &'a str,
    total_sum: &'a str,
}

/// How an SLI over rows (`Rows` and `Threshold`) counts a bucket: SQL
/// aggregates for good and total, and which rows are read.
#[derive(Debug, Clone)]
pub struct RowAggregates {
    /// Good rows.
    pub good: String,
    /// All rows.
    pub total: String,
    /// The rows read.
    pub selection: String,
}

/// The aggregates of an SLI that counts rows; `None` for counters and
/// histograms (their increments need the previous point of each series).
pub fn row_aggregates(def: &SloDefinition) -> Option<RowAggregates> {
    match &def.sli.kind {
        SliKind::Rows { good, bad, total } => {
            let good_col = match (good, bad) {
                (Some(g), _) => format!("count(*) FILTER (WHERE ({g}))"),
                (None, Some(b)) => {
                    format!("count(*) FILTER (WHERE ({total})) - count(*) FILTER (WHERE ({b}))")
                }
                (None, None) => "0".to_string(),
            };
            let selection = [good.as_deref(), bad.as_deref(), Some(total.as_str())]
                .into_iter()
                .flatten()
                .map(|f| format!("({f})"))
                .collect::<Vec<_>>()
                .join(" OR ");
            Some(RowAggregates {
                good: good_col,
                total: format!("count(*) FILTER (WHERE ({total}))"),
                selection,
            })
        }
        SliKind::Threshold {
            filter,
            value,
            op,
            threshold,
        } => Some(RowAggregates {
            good: format!(
                "count(*) FILTER (WHERE ({filter}) AND ({value}) {} {threshold:?})",
                op.sql()
            ),
            total: format!("count(*) FILTER (WHERE ({filter}))"),
            selection: format!("({filter})"),
        }),
        SliKind::Counter { .. } | SliKind::Histogram { .. } => None,
    }
}

/// The rollup query of `def` for the events of `range`. Counters and
/// histograms take `baselines` (points before the range read) as the
/// previous point of their series.
pub fn rollup_query(def: &SloDefinition, range: Range, baselines: &[Baseline]) -> String {
    let Range {
        bucket_ns,
        from_ns,
        to_ns,
        ..
    } = range;
    let table = def.sli.table.name();
    let time = def.sli.table.time_column();
    let groups: Vec<String> = def
        .group_by
        .iter()
        .enumerate()
        .map(|(i, g)| format!("CAST(({g}) AS VARCHAR) AS g{i}"))
        .collect();
    let group_names: Vec<String> = (0..def.group_by.len()).map(|i| format!("g{i}")).collect();
    let select_groups = |prefix: &str| {
        groups
            .iter()
            .map(|g| format!("{prefix}{g}, "))
            .collect::<String>()
    };
    let group_cols: String = group_names.iter().map(|g| format!(", {g}")).collect();
    let in_range = format!("{time} >= {} AND {time} < {}", ts(from_ns), ts(to_ns));
    if let Some(agg) = row_aggregates(def) {
        return format!(
            "SELECT CAST({time} AS BIGINT) / {bucket_ns} AS bucket, {}\
             CAST({} AS DOUBLE) AS good, CAST({} AS DOUBLE) AS total \
             FROM {table} WHERE {in_range} AND ({}) GROUP BY bucket{group_cols}",
            select_groups(""),
            agg.good,
            agg.total,
            agg.selection
        );
    }
    let Some((points, selection)) = point_columns(def) else {
        unreachable!("every SLI counts rows or points");
    };
    let (good_sum, total_sum) = match &def.sli.kind {
        SliKind::Counter {
            good: None,
            bad: Some(_),
            ..
        } => (
            "COALESCE(sum(inc_total) FILTER (WHERE is_total), 0) - COALESCE(sum(inc_good) FILTER (WHERE is_good), 0)",
            "sum(inc_total) FILTER (WHERE is_total)",
        ),
        SliKind::Counter { .. } => (
            "sum(inc_good) FILTER (WHERE is_good)",
            "sum(inc_total) FILTER (WHERE is_total)",
        ),
        _ => ("sum(inc_good)", "sum(inc_total)"),
    };
    increments(
        def,
        range,
        &PointQuery {
            points: &points,
            selection: &selection,
            good_sum,
            total_sum,
        },
        baselines,
    )
}

/// For counters and histograms: the point columns `vg`, `vt` (good and
/// total value), `is_good`, `is_total`, and which points are read.
fn point_columns(def: &SloDefinition) -> Option<(String, String)> {
    match &def.sli.kind {
        SliKind::Rows { .. } | SliKind::Threshold { .. } => None,
        SliKind::Counter { good, bad, total } => {
            // With `bad`, `is_good` marks the bad series (good = total − bad).
            let good_flag = match (good, bad) {
                (Some(g), _) | (None, Some(g)) => format!("({g})"),
                (None, None) => "false".to_string(),
            };
            let points = format!(
                "COALESCE(value, CAST(value_int AS DOUBLE)) AS vg, \
                 COALESCE(value, CAST(value_int AS DOUBLE)) AS vt, \
                 COALESCE({good_flag}, false) AS is_good, COALESCE(({total}), false) AS is_total"
            );
            let selection = format!("metric_type = 'sum' AND ({good_flag} OR ({total}))");
            Some((points, selection))
        }
        SliKind::Histogram { filter, le } => {
            let points = format!(
                "CASE WHEN CAST(metric_type AS VARCHAR) = 'histogram' \
                   THEN CAST(histogram_count_le(bucket_bounds, bucket_counts, {le:?}) AS DOUBLE) \
                   ELSE CAST(exp_histogram_count_le(exp_scale, exp_zero_count, exp_positive_offset, exp_positive_bucket_counts, exp_negative_bucket_counts, {le:?}) AS DOUBLE) END AS vg, \
                 CAST(count AS DOUBLE) AS vt, true AS is_good, true AS is_total"
            );
            let selection =
                format!("metric_type IN ('histogram', 'exponential_histogram') AND ({filter})");
            Some((points, selection))
        }
    }
}

/// Counter-style increments per point, then summed per bucket: a delta point
/// counts its value; a cumulative point the difference to the previous point
/// of its series, or its whole value after a reset (a new start time or a
/// decrease of the total). A series' first point counts whole when the
/// series started inside the range read (its start time is after
/// `from − lookback`), else it is the baseline.
fn increments(
    def: &SloDefinition,
    range: Range,
    query: &PointQuery<'_>,
    baselines: &[Baseline],
) -> String {
    let Range {
        bucket_ns,
        from_ns,
        to_ns,
        lookback_ns,
    } = range;
    let PointQuery {
        points,
        selection,
        good_sum,
        total_sum,
    } = query;
    let groups: String = def
        .group_by
        .iter()
        .enumerate()
        .map(|(i, g)| format!(", CAST(({g}) AS VARCHAR) AS g{i}"))
        .collect();
    let group_cols: String = (0..def.group_by.len()).map(|i| format!(", g{i}")).collect();
    let read_from = from_ns.saturating_sub(lookback_ns);
    let inc = |cur: &str, prev: &str| {
        format!(
            "CASE WHEN is_delta THEN {cur} \
                  WHEN {prev} IS NULL THEN CASE WHEN st >= {} THEN {cur} ELSE 0 END \
                  WHEN (pst IS DISTINCT FROM st) OR (vt < pvt) THEN {cur} \
                  ELSE {cur} - {prev} END",
            ts(read_from)
        )
    };
    // Baselines older than the range read join its points as rows that only
    // serve as a previous point.
    let read_from_ns = from_ns.saturating_sub(lookback_ns);
    let baseline_rows: Vec<String> = baselines
        .iter()
        .filter(|b| b.time < read_from_ns)
        .map(|b| {
            format!(
                "({}, {}, {}, {:?}, {:?})",
                b.time,
                b.start
                    .map_or_else(|| "NULL".to_string(), |s| s.to_string()),
                b.sid,
                b.good,
                b.total
            )
        })
        .collect();
    let null_groups: String = (0..def.group_by.len())
        .map(|i| format!(", CAST(NULL AS VARCHAR) AS g{i}"))
        .collect();
    let union = if baseline_rows.is_empty() {
        String::new()
    } else {
        format!(
            " UNION ALL SELECT arrow_cast(b.t, 'Timestamp(Nanosecond, Some(\"UTC\"))') AS t, \
                 arrow_cast(b.st, 'Timestamp(Nanosecond, Some(\"UTC\"))') AS st, false AS is_delta, \
                 CAST(b.sid AS BIGINT) AS sid, CAST(b.vg AS DOUBLE) AS vg, CAST(b.vt AS DOUBLE) AS vt, \
                 CAST(NULL AS BOOLEAN) AS is_good, CAST(NULL AS BOOLEAN) AS is_total{null_groups} \
               FROM (VALUES {}) AS b(t, st, sid, vg, vt)",
            baseline_rows.join(", ")
        )
    };
    format!(
        "WITH pts AS (\
           SELECT time AS t, start_time AS st, CAST(temporality AS VARCHAR) = 'delta' AS is_delta, \
                  series_hash(metric_name, service_name, attributes, resource_attributes, scope_name, scope_version) AS sid, \
                  {points}{groups} \
           FROM metrics \
           WHERE time >= {} AND time < {} AND (flags IS NULL OR (flags & {NO_RECORDED_VALUE}) = 0) AND {selection}\
           {union}\
         ), prev AS (\
           SELECT *, lag(vg) OVER w AS pvg, lag(vt) OVER w AS pvt, lag(st) OVER w AS pst \
           FROM pts WINDOW w AS (PARTITION BY sid ORDER BY t)\
         ), inc AS (\
           SELECT t, is_good, is_total{group_cols}, {} AS inc_good, {} AS inc_total FROM prev\
         ) \
         SELECT CAST(t AS BIGINT) / {bucket_ns} AS bucket{group_cols}, \
                CAST(COALESCE({good_sum}, 0) AS DOUBLE) AS good, \
                CAST(COALESCE({total_sum}, 0) AS DOUBLE) AS total \
         FROM inc WHERE t >= {} GROUP BY bucket{group_cols}",
        ts(read_from),
        ts(to_ns),
        inc("vg", "pvg"),
        inc("vt", "pvt"),
        ts(from_ns),
    )
}

/// The last point before `cutoff_ns` of each cumulative series a counter or
/// histogram SLI reads in `[read_from, cutoff)`: columns `sid`, `t`, `st`,
/// `vg`, `vt` (times as Unix ns). `None` for other SLIs.
pub fn baseline_query(def: &SloDefinition, read_from_ns: i64, cutoff_ns: i64) -> Option<String> {
    let (points, selection) = point_columns(def)?;
    Some(format!(
        "WITH pts AS (\
           SELECT time AS t, start_time AS st, CAST(temporality AS VARCHAR) = 'delta' AS is_delta, \
                  series_hash(metric_name, service_name, attributes, resource_attributes, scope_name, scope_version) AS sid, \
                  {points} \
           FROM metrics \
           WHERE time >= {} AND time < {} AND (flags IS NULL OR (flags & {NO_RECORDED_VALUE}) = 0) AND {selection}\
         ) \
         SELECT sid, CAST(last_value(t ORDER BY t) AS BIGINT) AS t, CAST(last_value(st ORDER BY t) AS BIGINT) AS st, \
                last_value(vg ORDER BY t) AS vg, last_value(vt ORDER BY t) AS vt \
         FROM pts WHERE NOT is_delta GROUP BY sid",
        ts(read_from_ns),
        ts(cutoff_ns),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expressions_are_single_and_without_subqueries() {
        assert!(check_expression("status_code <> 'ERROR' AND duration_ns <= 300e6").is_ok());
        assert!(check_expression("attributes['http.route'] = '/pay'").is_ok());
        let e = check_expression("true) UNION SELECT * FROM logs WHERE (true").unwrap_err();
        assert!(e.contains("more than one expression"), "{e}");
        let e = check_expression("x IN (SELECT 1)").unwrap_err();
        assert!(e.contains("subqueries"), "{e}");
        assert!(check_expression("").is_err());
        assert!(check_expression("1; DROP TABLE spans").is_err());
    }
}

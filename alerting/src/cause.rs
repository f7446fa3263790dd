//! Hints at the cause of a burn: example trace ids of bad events, and the
//! attribute values most over-represented among bad events compared with
//! all events of the SLO (e.g. 90 % of the failing requests but 20 % of all
//! requests come from `k8s.pod.name=checkout-7d9f`).
//!
//! Both come from one DataFusion query each over the alert's short window,
//! for SLIs that count rows of `spans` or `logs`. For metric SLIs, the spans
//! of the SLO's service with status `ERROR` stand in for bad events.

use smolder_common::text::sql_literal;
use std::collections::BTreeMap;
use std::time::Duration;

use datafusion::arrow::array::{Array, AsArray as _};
use datafusion::arrow::datatypes::Int64Type;
use datafusion::prelude::SessionContext;
use smolder_common::Table;
use smolder_query::QueryEngine;
use smolder_slo::SloDefinition;
use smolder_slo::model::{SliKind, duration_ns};
use smolder_slo::sql::ts;

use crate::alert::Hint;

/// Columns and resource attributes worth comparing, per table.
fn candidates(table: Table) -> Vec<(&'static str, &'static str)> {
    let mut c = match table {
        Table::Spans => vec![
            ("service_name", "service_name"),
            ("name", "name"),
            ("http_route", "http_route"),
            ("http_request_method", "http_request_method"),
            ("http_response_status_code", "http_response_status_code"),
            ("rpc_grpc_status_code", "rpc_grpc_status_code"),
            ("status_message", "status_message"),
        ],
        Table::Logs => vec![
            ("service_name", "service_name"),
            ("severity_text", "severity_text"),
            ("scope_name", "scope_name"),
        ],
        Table::Metrics => vec![],
    };
    c.extend([
        ("k8s.pod.name", "resource_attributes['k8s.pod.name']"),
        ("k8s.node.name", "resource_attributes['k8s.node.name']"),
        ("host.name", "resource_attributes['host.name']"),
        ("service.version", "resource_attributes['service.version']"),
        (
            "service.instance.id",
            "resource_attributes['service.instance.id']",
        ),
        (
            "cloud.availability_zone",
            "resource_attributes['cloud.availability_zone']",
        ),
        (
            "deployment.environment",
            "resource_attributes['deployment.environment']",
        ),
    ]);
    c
}

/// The table, the predicate of all events and of bad events for an SLO
/// instance.
fn predicates(def: &SloDefinition, group: &BTreeMap<String, String>) -> (Table, String, String) {
    let (table, total, bad) = match &def.sli.kind {
        SliKind::Rows { good, bad, total } => {
            let bad = match (bad, good) {
                (Some(b), _) => format!("({b})"),
                (None, Some(g)) => format!("NOT COALESCE(({g}), false)"),
                (None, None) => "false".to_string(),
            };
            (def.sli.table, format!("({total})"), bad)
        }
        SliKind::Threshold { filter, .. } if def.sli.table != Table::Metrics => {
            (def.sli.table, format!("({filter})"), "false".to_string())
        }
        _ => (
            Table::Spans,
            format!("service_name = {}", sql_literal(&def.service)),
            "status_code = 'ERROR'".to_string(),
        ),
    };
    let mut total = total;
    if def.sli.table == table {
        for (expr, value) in group {
            total.push_str(&format!(
                " AND CAST(({expr}) AS VARCHAR) = {}",
                sql_literal(value)
            ));
        }
    }
    (table, total, bad)
}

/// Example trace ids and over-represented values among the bad events of the
/// last `window` before `now_ns`, found on the query runtime within
/// `timeout`. The group's keys must be the SLO's own `groupBy` expressions
/// (they are put into the query; its values only as literals).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn find(
    query: &QueryEngine,
    def: &SloDefinition,
    group: &BTreeMap<String, String>,
    window: Duration,
    now_ns: i64,
    examples: usize,
    timeout: Duration,
) -> Result<(Vec<String>, Vec<Hint>), String> {
    if let Some(key) = group.keys().find(|k| !def.group_by.contains(k)) {
        return Err(format!(
            "group key {key:?} is not a groupBy expression of SLO {:?} (it has {:?})",
            def.id, def.group_by
        ));
    }
    // The SLO's tenant's data only, whoever asks.
    let query = query.for_tenant(&def.tenant).map_err(|e| e.to_string())?;
    let ctx = query.context().clone();
    let (def, group) = (def.clone(), group.clone());
    query
        .run("causes", timeout, async move {
            find_in(&ctx, &def, &group, window, now_ns, examples)
                .await
                .map_err(smolder_query::Error::Refused)
        })
        .await
        .map_err(|e| match e {
            smolder_query::Error::Timeout(t) => {
                format!(
                    "finding causes took longer than {}",
                    humantime::format_duration(t)
                )
            }
            e => e.to_string(),
        })
}

async fn find_in(
    ctx: &SessionContext,
    def: &SloDefinition,
    group: &BTreeMap<String, String>,
    window: Duration,
    now_ns: i64,
    examples: usize,
) -> Result<(Vec<String>, Vec<Hint>), String> {
    let (table, total, bad) = predicates(def, group);
    let time = table.time_column();
    let from = now_ns - duration_ns(window);
    let range = format!("{time} >= {} AND {time} < {}", ts(from), ts(now_ns + 1));
    let name = table.name();
    let sql = format!(
        "SELECT trace_id FROM {name} WHERE {range} AND {total} AND {bad} \
         AND trace_id IS NOT NULL AND trace_id <> '' ORDER BY {time} DESC LIMIT {examples}"
    );
    let mut ids = Vec::new();
    for batch in run(ctx, &sql).await? {
        let col = datafusion::arrow::compute::cast(
            batch.column(0),
            &datafusion::arrow::datatypes::DataType::Utf8,
        )
        .map_err(|e| e.to_string())?;
        let col = col.as_string::<i32>();
        for i in 0..col.len() {
            if !col.is_null(i) && !ids.contains(&col.value(i).to_string()) {
                ids.push(col.value(i).to_string());
            }
        }
    }
    let cands: Vec<(&str, &str)> = candidates(table)
        .into_iter()
        .filter(|(_, expr)| !group.contains_key(*expr))
        .collect();
    let cols: Vec<String> = cands
        .iter()
        .enumerate()
        .map(|(i, (_, expr))| format!("CAST({expr} AS VARCHAR) AS c{i}"))
        .collect();
    // One scan: a grouping set per candidate column, and the empty set for
    // the totals (a UNION ALL of per-column aggregates over a CTE would
    // read the window once per column).
    let n = cands.len();
    if n == 0 {
        return Ok((ids, Vec::new()));
    }
    let names: Vec<String> = (0..n).map(|i| format!("c{i}")).collect();
    let groupings: Vec<String> = names.iter().map(|c| format!("grouping({c})")).collect();
    let sets: Vec<String> = names.iter().map(|c| format!("({c})")).collect();
    let sql = format!(
        "WITH ev AS (SELECT {}, COALESCE({bad}, false) AS is_bad FROM {name} WHERE {range} AND {total}) \
         SELECT {}, {}, count(*) AS total, count(*) FILTER (WHERE is_bad) AS bad \
         FROM ev GROUP BY GROUPING SETS ({}, ())",
        cols.join(", "),
        names.join(", "),
        groupings.join(", "),
        sets.join(", ")
    );
    let (mut all_total, mut all_bad) = (0.0, 0.0);
    let mut counted: Vec<(usize, String, f64, f64)> = Vec::new();
    for batch in run(ctx, &sql).await? {
        let total = batch.column(2 * n).as_primitive::<Int64Type>();
        let bad = batch.column(2 * n + 1).as_primitive::<Int64Type>();
        let values = (0..n)
            .map(|i| {
                datafusion::arrow::compute::cast(
                    batch.column(i),
                    &datafusion::arrow::datatypes::DataType::Utf8,
                )
                .map_err(|e| e.to_string())
            })
            .collect::<Result<Vec<_>, String>>()?;
        let grouped = (0..n)
            .map(|i| {
                datafusion::arrow::compute::cast(
                    batch.column(n + i),
                    &datafusion::arrow::datatypes::DataType::Int32,
                )
                .map_err(|e| e.to_string())
            })
            .collect::<Result<Vec<_>, String>>()?;
        for r in 0..batch.num_rows() {
            // grouping(c) is 0 for the column the row is grouped by.
            let set = (0..n).find(|&i| {
                grouped[i]
                    .as_primitive::<datafusion::arrow::datatypes::Int32Type>()
                    .value(r)
                    == 0
            });
            match set {
                None => {
                    all_total = total.value(r) as f64;
                    all_bad = bad.value(r) as f64;
                }
                Some(i) => {
                    let value = values[i].as_string::<i32>();
                    if !value.is_null(r) && bad.value(r) > 0 {
                        counted.push((
                            i,
                            value.value(r).to_string(),
                            total.value(r) as f64,
                            bad.value(r) as f64,
                        ));
                    }
                }
            }
        }
    }
    let rows = counted
        .into_iter()
        .map(|(attr, value, total, bad)| (attr, value, total, bad, all_total, all_bad))
        .collect();
    Ok((ids, rank(&cands, rows)))
}

/// Keeps values that cover at least 30 % of bad events and are at least 1.5
/// times as common among bad events as among all; best first, at most three.
fn rank(cands: &[(&str, &str)], rows: Vec<(usize, String, f64, f64, f64, f64)>) -> Vec<Hint> {
    let mut hints: Vec<(f64, Hint)> = rows
        .into_iter()
        .filter_map(|(attr, value, total, bad, all_total, all_bad)| {
            if all_bad <= 0.0 || all_total <= 0.0 {
                return None;
            }
            let bad_share = bad / all_bad;
            let total_share = total / all_total;
            (bad_share >= 0.3 && bad_share >= 1.5 * total_share).then(|| {
                (
                    bad_share - total_share,
                    Hint {
                        attribute: cands.get(attr).map_or("?", |c| c.0).to_string(),
                        value,
                        bad_share,
                        total_share,
                    },
                )
            })
        })
        .collect();
    hints.sort_by(|a, b| {
        b.0.total_cmp(&a.0)
            .then_with(|| a.1.attribute.cmp(&b.1.attribute))
    });
    hints.into_iter().take(3).map(|(_, h)| h).collect()
}

async fn run(
    ctx: &SessionContext,
    sql: &str,
) -> Result<Vec<datafusion::arrow::record_batch::RecordBatch>, String> {
    let df = ctx.sql(sql).await.map_err(|e| format!("{e}"))?;
    let stream = df.execute_stream().await.map_err(|e| format!("{e}"))?;
    smolder_query::collect_at_most(stream, usize::MAX)
        .await
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranking_prefers_concentrated_values() {
        let cands = [("http_route", "http_route"), ("k8s.pod.name", "x")];
        let rows = vec![
            // /pay: 90 of 100 bad, 200 of 1000 all → hint.
            (0, "/pay".to_string(), 200.0, 90.0, 1000.0, 100.0),
            // /cart: 10 % of bad → no.
            (0, "/cart".to_string(), 800.0, 10.0, 1000.0, 100.0),
            // pod-a: 60 % of bad, 50 % of all → not over-represented.
            (1, "pod-a".to_string(), 500.0, 60.0, 1000.0, 100.0),
        ];
        let hints = rank(&cands, rows);
        assert_eq!(hints.len(), 1);
        assert_eq!(
            (hints[0].attribute.as_str(), hints[0].value.as_str()),
            ("http_route", "/pay")
        );
        assert!((hints[0].bad_share - 0.9).abs() < 1e-9);
    }
}

//! Sloth `prometheus/v1` files, imported as metric-counter SLOs.
//!
//! Sloth's event SLIs are PromQL of the shape
//! `sum(rate(metric{matchers}[{{.window}}]))` for errors and for the total.
//! Each is parsed (promql-parser) and translated to a filter on the `metrics`
//! table: the metric name becomes `metric_name = '…'`, the `job` label
//! `service_name`, every other label `attributes['label']`, with Prometheus's
//! matcher semantics (a missing label equals ""; regular expressions are
//! anchored). Anything else — other functions, `by` clauses, arithmetic,
//! raw ratio queries, plugins — is refused with the reason.
//!
//! Each Sloth SLO becomes `<service>-<name>` with a 30-day rolling period and
//! the Workbook's page and ticket conditions (a disabled Sloth alert drops
//! its conditions).

use std::collections::BTreeMap;
use std::time::Duration;

use promql_parser::label::MatchOp;
use promql_parser::parser::{self, Expr};
use serde::Deserialize;
use smolder_common::{Table, Tenant};

use super::{Defaults, Doc, Problem};
use crate::model::{Location, Origin, Period, Sli, SliKind, SloDefinition, default_alert_windows};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SlothFile {
    #[allow(dead_code)]
    version: String,
    service: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    slos: Vec<SlothSlo>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SlothSlo {
    name: String,
    objective: f64,
    description: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    sli: SlothSli,
    #[serde(default)]
    alerting: SlothAlerting,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SlothSli {
    events: Option<SlothEvents>,
    raw: Option<serde_yaml_ng::Value>,
    plugin: Option<serde_yaml_ng::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SlothEvents {
    error_query: String,
    total_query: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SlothAlerting {
    #[allow(dead_code)]
    name: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    page_alert: Option<SlothAlert>,
    ticket_alert: Option<SlothAlert>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SlothAlert {
    #[serde(default)]
    disable: bool,
    #[serde(default)]
    #[allow(dead_code)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    #[allow(dead_code)]
    annotations: BTreeMap<String, String>,
}

/// Translates one Sloth document.
pub(crate) fn translate(doc: &Doc, defaults: Defaults) -> Result<Vec<SloDefinition>, Vec<Problem>> {
    let file: SlothFile = serde_path_to_error::deserialize(doc.value.clone()).map_err(|e| {
        let path = e.path().to_string();
        vec![doc.problem(
            if path == "." { String::new() } else { path },
            e.inner().to_string(),
        )]
    })?;
    let period = Duration::from_secs(30 * 86_400);
    let mut out = Vec::new();
    let mut problems = Vec::new();
    for (i, slo) in file.slos.iter().enumerate() {
        let at = format!("slos[{i}]");
        let mut fail = |field: &str, message: String| {
            problems.push(doc.problem(format!("{at}.{field}"), message));
        };
        if !(slo.objective > 0.0 && slo.objective < 100.0) {
            fail(
                "objective",
                format!(
                    "{} is not a percentage strictly between 0 and 100",
                    slo.objective
                ),
            );
            continue;
        }
        let events = match (&slo.sli.events, &slo.sli.raw, &slo.sli.plugin) {
            (Some(e), None, None) => e,
            (_, Some(_), _) => {
                fail(
                    "sli.raw",
                    "raw error-ratio queries cannot be counted exactly; use events (error_query and total_query)".into(),
                );
                continue;
            }
            (_, _, Some(_)) => {
                fail(
                    "sli.plugin",
                    "Sloth SLI plugins cannot be translated; use events".into(),
                );
                continue;
            }
            (None, None, None) => {
                fail("sli.events", "missing: error_query and total_query".into());
                continue;
            }
        };
        let bad = translate_query(&events.error_query);
        let total = translate_query(&events.total_query);
        let (bad, total) = match (bad, total) {
            (Ok(b), Ok(t)) => (b, t),
            (b, t) => {
                if let Err(e) = b {
                    fail("sli.events.error_query", e);
                }
                if let Err(e) = t {
                    fail("sli.events.total_query", e);
                }
                continue;
            }
        };
        let id = format!("{}-{}", file.service, slo.name);
        if let Err(p) = super::openslo::check_name(doc, &format!("{at}.name"), &id) {
            problems.push(p);
            continue;
        }
        let mut alert_windows = default_alert_windows(period);
        let disabled = |a: &Option<SlothAlert>| a.as_ref().is_some_and(|a| a.disable);
        alert_windows.retain(|w| {
            !(w.severity.is_page() && disabled(&slo.alerting.page_alert)
                || w.severity.is_ticket() && disabled(&slo.alerting.ticket_alert))
        });
        let mut labels = file.labels.clone();
        labels.extend(slo.labels.clone());
        labels.extend(slo.alerting.labels.clone());
        out.push(SloDefinition {
            id,
            display_name: None,
            description: slo.description.clone(),
            service: file.service.clone(),
            objective: super::percent(slo.objective),
            period: Period::Rolling { duration: period },
            budgeting: crate::model::Budgeting::Occurrences,
            sli: Sli {
                table: Table::Metrics,
                kind: SliKind::Counter {
                    good: None,
                    bad: Some(bad),
                    total,
                },
            },
            group_by: Vec::new(),
            max_groups: defaults.max_groups,
            min_events: defaults.min_events,
            min_bad_events: defaults.min_bad_events,
            alert_windows,
            // Sloth's format has no place for it: freeze once spent.
            freeze_below: 0.0,
            budget_levels: Vec::new(),
            // Sloth's format has no annotations: exclusions come from the API.
            exclusions: Vec::new(),
            runbook_url: slo.alerting.annotations.get("runbook").cloned(),
            labels,
            notification_targets: Vec::new(),
            tenant: Tenant::default(),
            origin: Origin::File(doc.file.clone()),
            sli_fields: [
                ("bad.filter", "sli.events.error_query"),
                ("total.filter", "sli.events.total_query"),
                ("indicator", "sli.events"),
            ]
            .into_iter()
            .map(|(k, path)| {
                let location = Location {
                    file: doc.file.clone(),
                    document: doc.index,
                    field: format!("{at}.{path}"),
                };
                (k.to_string(), location)
            })
            .collect(),
        });
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

/// `sum(rate(metric{…}[{{.window}}]))` → a SQL filter on `metrics`.
pub fn translate_query(query: &str) -> Result<String, String> {
    // Sloth substitutes the window; any value parses the same.
    let promql = query.replace("{{.window}}", "5m");
    let expr = parser::parse(&promql).map_err(|e| format!("not valid PromQL: {e}"))?;
    let expr = unparen(&expr);
    let Expr::Aggregate(agg) = expr else {
        return Err(format!(
            "expected sum(rate(metric{{…}}[{{{{.window}}}}])), got {expr}"
        ));
    };
    if agg.op.to_string() != "sum" {
        return Err(format!(
            "{}(…): only sum(…) of counters can be translated",
            agg.op
        ));
    }
    if agg.modifier.is_some() || agg.param.is_some() {
        return Err("sum by/without (…) cannot be translated: the SLI sums every series".into());
    }
    let Expr::Call(call) = unparen(&agg.expr) else {
        return Err(format!("expected rate(…) inside sum, got {}", agg.expr));
    };
    if call.func.name != "rate" && call.func.name != "increase" {
        return Err(format!(
            "{}(…): only rate(…) or increase(…) of a counter can be translated",
            call.func.name
        ));
    }
    let [arg] = call.args.args.as_slice() else {
        return Err(format!("{} takes one range selector", call.func.name));
    };
    let Expr::MatrixSelector(ms) = unparen(arg) else {
        return Err(format!(
            "expected a range selector metric{{…}}[…], got {arg}"
        ));
    };
    let vs = &ms.vs;
    if vs.offset.is_some() || vs.at.is_some() {
        return Err("offset and @ modifiers cannot be translated".into());
    }
    if !vs.matchers.or_matchers.is_empty() {
        return Err("`or` matchers cannot be translated".into());
    }
    let mut clauses = Vec::new();
    let mut name = vs.name.clone();
    for m in &vs.matchers.matchers {
        if m.name == "__name__" {
            match &m.op {
                MatchOp::Equal => name = Some(m.value.clone()),
                _ => return Err("the metric name must be matched exactly".into()),
            }
            continue;
        }
        let column = match m.name.as_str() {
            // OpenTelemetry's Prometheus mapping puts service.name in `job`.
            "job" => "COALESCE(CAST(service_name AS VARCHAR), '')".to_string(),
            label => format!("COALESCE(attributes[{}], '')", quote(label)),
        };
        let value = quote(&m.value);
        clauses.push(match &m.op {
            MatchOp::Equal => format!("{column} = {value}"),
            MatchOp::NotEqual => format!("{column} <> {value}"),
            MatchOp::Re(_) => format!("regexp_like({column}, {})", quote(&anchored(&m.value))),
            MatchOp::NotRe(_) => {
                format!("NOT regexp_like({column}, {})", quote(&anchored(&m.value)))
            }
        });
    }
    let Some(name) = name else {
        return Err("the selector needs a metric name".into());
    };
    clauses.insert(0, format!("metric_name = {}", quote(&name)));
    Ok(clauses.join(" AND "))
}

fn unparen(e: &Expr) -> &Expr {
    match e {
        Expr::Paren(p) => unparen(&p.expr),
        other => other,
    }
}

/// Prometheus regular expressions match the whole value.
fn anchored(re: &str) -> String {
    format!("^(?:{re})$")
}

/// A SQL string literal.
pub(crate) use smolder_common::text::sql_literal as quote;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn translates_the_common_shape() {
        let sql = translate_query(
            r#"sum(rate(http_request_duration_seconds_count{job="myservice",code=~"(5..|429)"}[{{.window}}]))"#,
        )
        .unwrap();
        assert_eq!(
            sql,
            "metric_name = 'http_request_duration_seconds_count' AND COALESCE(CAST(service_name AS VARCHAR), '') = 'myservice' AND regexp_like(COALESCE(attributes['code'], ''), '^(?:(5..|429))$')"
        );
        let sql =
            translate_query(r#"sum(increase(reqs_total{route!="/health"}[{{.window}}]))"#).unwrap();
        assert!(
            sql.ends_with("COALESCE(attributes['route'], '') <> '/health'"),
            "{sql}"
        );
    }

    #[test]
    fn refuses_what_it_cannot_translate() {
        let cases = [
            ("sum by (code) (rate(x[5m]))", "by/without"),
            ("avg(rate(x[5m]))", "only sum"),
            ("sum(irate(x[5m]))", "only rate"),
            ("sum(rate(x[5m])) / 2", "expected sum"),
            ("sum(rate(x[5m] offset 1h))", "offset"),
            ("sum(rate(x[5m]", "not valid PromQL"),
        ];
        for (q, want) in cases {
            let e = translate_query(q).unwrap_err();
            assert!(e.contains(want), "{q}: {e}");
        }
    }
}

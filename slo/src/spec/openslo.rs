//! OpenSLO v1 (`apiVersion: openslo/v1`): kinds `SLO`, `SLI`, `Service`,
//! `AlertPolicy`, `AlertCondition`, `AlertNotificationTarget` and
//! `DataSource`, inline or referenced by name.
//!
//! Indicators use smolder's own metric source:
//!
//! ```yaml
//! metricSource:
//!   type: smolder
//!   spec:
//!     table: spans                # spans | logs | metrics
//!     filter: "service_name = 'checkout' AND http_route = '/pay'"
//!     groupBy: [http_route]       # optional, SQL expressions
//! ```
//!
//! `filter` is a SQL boolean expression over the table's columns. For
//! `metrics`, a ratio counts counter increments, or histogram observations at
//! or below `le` when the good source has one; a threshold metric compares
//! `value` (a SQL expression; for metrics the point's value by default).

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_yaml_ng::Value;
use smolder_common::{Table, Tenant};

use super::{Defaults, Doc, Problem, Span, parse_duration, parse_span};
use crate::model::{
    AlertWindow, Budgeting, Location, NotificationTarget, Op, Origin, Period, Sli, SliKind,
    SloDefinition, default_alert_windows,
};

/// Annotation: the low-traffic guard (events per window).
pub const MIN_EVENTS: &str = "smolder.dev/min-events";
/// Annotation: the low-traffic guard (bad events a condition's long window
/// needs before it can be met).
pub const MIN_BAD_EVENTS: &str = "smolder.dev/min-bad-events";
/// Annotation: the runbook of the SLO, linked from its alerts.
pub const RUNBOOK_URL: &str = "smolder.dev/runbook-url";
/// Annotation: the error-budget policy's freeze level (`25%` or `0.25`:
/// changes are frozen while less than that much budget is left).
pub const FREEZE_BELOW: &str = "smolder.dev/freeze-below";
/// Annotation: the error-budget policy's event levels (`50%, 25%, 0%`: a
/// budget event when less than each is left, and when it recovers).
pub const BUDGET_LEVELS: &str = "smolder.dev/budget-levels";

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Metadata {
    name: String,
    display_name: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, LabelValue>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum LabelValue {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Envelope {
    api_version: String,
    kind: String,
    metadata: Metadata,
    spec: Value,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SloSpec {
    description: Option<String>,
    service: String,
    indicator: Option<Inline>,
    indicator_ref: Option<String>,
    time_window: Vec<TimeWindow>,
    budgeting_method: String,
    objectives: Vec<Objective>,
    #[serde(default)]
    alert_policies: Vec<Entry>,
}

/// An inline document (`metadata` + `spec`, optionally `kind`) or a
/// reference by name, as SLO, AlertPolicy and their lists allow.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Entry {
    kind: Option<String>,
    api_version: Option<String>,
    metadata: Option<Metadata>,
    spec: Option<Value>,
    alert_policy_ref: Option<String>,
    condition_ref: Option<String>,
    target_ref: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Inline {
    // Parsed so that a malformed name is reported; the SLO's own name is its id.
    #[allow(dead_code)]
    metadata: Metadata,
    spec: Value,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct TimeWindow {
    duration: String,
    is_rolling: Option<bool>,
    calendar: Option<Calendar>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Calendar {
    start_time: String,
    time_zone: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Objective {
    display_name: Option<String>,
    op: Option<String>,
    value: Option<f64>,
    target: Option<f64>,
    target_percent: Option<f64>,
    time_slice_target: Option<f64>,
    time_slice_window: Option<String>,
    indicator: Option<Inline>,
    indicator_ref: Option<String>,
    composite_weight: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SliSpec {
    description: Option<String>,
    ratio_metric: Option<RatioMetric>,
    threshold_metric: Option<MetricSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RatioMetric {
    #[serde(default)]
    counter: bool,
    good: Option<MetricSpec>,
    bad: Option<MetricSpec>,
    total: Option<MetricSpec>,
    raw_type: Option<String>,
    raw: Option<MetricSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct MetricSpec {
    metric_source: MetricSource,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct MetricSource {
    metric_source_ref: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    spec: Value,
}

/// smolder's metric source.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SmolderSource {
    table: Option<String>,
    filter: Option<String>,
    value: Option<String>,
    le: Option<f64>,
    #[serde(default)]
    group_by: Vec<String>,
    max_groups: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct DataSourceSpec {
    #[allow(dead_code)]
    description: Option<String>,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    connection_details: Value,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct AlertPolicySpec {
    #[allow(dead_code)]
    description: Option<String>,
    #[allow(dead_code)]
    alert_when_no_data: Option<bool>,
    #[allow(dead_code)]
    alert_when_resolved: Option<bool>,
    #[allow(dead_code)]
    alert_when_breaching: Option<bool>,
    conditions: Vec<Entry>,
    #[serde(default)]
    notification_targets: Vec<Entry>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct AlertConditionSpec {
    #[allow(dead_code)]
    description: Option<String>,
    severity: String,
    condition: BurnRate,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct BurnRate {
    kind: String,
    op: String,
    threshold: f64,
    lookback_window: String,
    alert_after: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct TargetSpec {
    description: Option<String>,
    target: String,
}

/// Deserializes `value` into `T`, naming the failing field under `prefix`.
fn typed<T: DeserializeOwned>(doc: &Doc, value: &Value, prefix: &str) -> Result<T, Problem> {
    serde_path_to_error::deserialize(value.clone()).map_err(|e| {
        let path = e.path().to_string();
        let field = match (prefix, path.as_str()) {
            (p, ".") => p.to_string(),
            ("", p) => p.to_string(),
            (p, q) => format!("{p}.{q}"),
        };
        doc.problem(field, e.inner().to_string())
    })
}

/// A named document of some kind, with where it is.
struct Named<'a> {
    doc: &'a Doc,
    metadata: Metadata,
    spec: Value,
    /// Field path of the spec in its document.
    at: String,
}

/// Everything the documents define, by kind and name.
#[derive(Default)]
struct Registry<'a> {
    by_kind: HashMap<&'static str, BTreeMap<String, Named<'a>>>,
}

const KINDS: [&str; 7] = [
    "SLO",
    "SLI",
    "Service",
    "AlertPolicy",
    "AlertCondition",
    "AlertNotificationTarget",
    "DataSource",
];

impl<'a> Registry<'a> {
    fn get(&self, kind: &str, name: &str) -> Option<&Named<'a>> {
        self.by_kind.get(kind).and_then(|m| m.get(name))
    }
}

/// Resolves OpenSLO documents into SLO definitions.
pub(crate) fn resolve(docs: &[Doc], defaults: Defaults) -> (Vec<SloDefinition>, Vec<Problem>) {
    let mut problems = Vec::new();
    let mut registry = Registry::default();
    for doc in docs {
        let envelope: Envelope = match typed(doc, &doc.value, "") {
            Ok(e) => e,
            Err(p) => {
                problems.push(p);
                continue;
            }
        };
        if envelope.api_version != "openslo/v1" {
            problems.push(doc.problem(
                "apiVersion",
                format!(
                    "{:?} is not supported; use openslo/v1 (or a Sloth file with version: prometheus/v1)",
                    envelope.api_version
                ),
            ));
            continue;
        }
        let Some(kind) = KINDS.iter().find(|k| **k == envelope.kind) else {
            problems.push(doc.problem(
                "kind",
                format!(
                    "unknown kind {:?}; expected one of {}",
                    envelope.kind,
                    KINDS.join(", ")
                ),
            ));
            continue;
        };
        if let Err(p) = check_name(doc, "metadata.name", &envelope.metadata.name) {
            problems.push(p);
            continue;
        }
        let name = envelope.metadata.name.clone();
        let named = Named {
            doc,
            metadata: envelope.metadata,
            spec: envelope.spec,
            at: "spec".into(),
        };
        if registry
            .by_kind
            .entry(kind)
            .or_default()
            .insert(name.clone(), named)
            .is_some()
        {
            problems.push(doc.problem(
                "metadata.name",
                format!("a {kind} named {name:?} is defined more than once"),
            ));
        }
    }
    let mut slos = Vec::new();
    if let Some(defs) = registry.by_kind.get("SLO") {
        for named in defs.values() {
            match build_slo(named, &registry, defaults) {
                Ok(mut s) => slos.append(&mut s),
                Err(mut p) => problems.append(&mut p),
            }
        }
    }
    (slos, problems)
}

/// Names become ids in URLs and metric labels: letters, digits, `-`, `_`, `.`.
pub(crate) fn check_name(doc: &Doc, field: &str, name: &str) -> Result<(), Problem> {
    let ok = !name.is_empty()
        && name.len() <= 253
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(doc.problem(
            field,
            format!("{name:?}: a name may only hold letters, digits, '-', '_' and '.'"),
        ))
    }
}

fn build_slo(
    named: &Named<'_>,
    registry: &Registry<'_>,
    defaults: Defaults,
) -> Result<Vec<SloDefinition>, Vec<Problem>> {
    let doc = named.doc;
    let spec: SloSpec = typed(doc, &named.spec, "spec").map_err(|p| vec![p])?;
    let mut problems = Vec::new();
    if spec.service.is_empty() {
        problems.push(doc.problem("spec.service", "must name the service"));
    }
    let period = match period(doc, &spec.time_window) {
        Ok(p) => Some(p),
        Err(p) => {
            problems.push(p);
            None
        }
    };
    let annotations = &named.metadata.annotations;
    let mut events_annotation = |name: &str, default: f64| match annotations.get(name) {
        None => default,
        Some(v) => match v.trim().parse::<f64>() {
            Ok(n) if n.is_finite() && n >= 0.0 => n,
            _ => {
                problems.push(doc.problem(
                    format!("metadata.annotations.{name}"),
                    format!("{v:?} is not a number of events"),
                ));
                0.0
            }
        },
    };
    let min_events = events_annotation(MIN_EVENTS, defaults.min_events);
    let min_bad_events = events_annotation(MIN_BAD_EVENTS, defaults.min_bad_events);
    let freeze_below = match annotations.get(FREEZE_BELOW) {
        None => 0.0,
        Some(v) => match super::fraction(v) {
            Some(f) if (0.0..1.0).contains(&f) => f,
            _ => {
                problems.push(doc.problem(
                    format!("metadata.annotations.{FREEZE_BELOW}"),
                    format!("{v:?} is not a share of the budget from 0 up to 100% (25% or 0.25)"),
                ));
                0.0
            }
        },
    };
    let budget_levels = match annotations.get(BUDGET_LEVELS) {
        None => Vec::new(),
        Some(v) => budget_levels(v).unwrap_or_else(|e| {
            problems.push(doc.problem(format!("metadata.annotations.{BUDGET_LEVELS}"), e));
            Vec::new()
        }),
    };
    let exclusions = match annotations.get(crate::exclusion::ANNOTATION) {
        None => Vec::new(),
        Some(v) => crate::exclusion::from_annotation(v).unwrap_or_else(|errors| {
            for e in errors {
                problems.push(doc.problem(
                    format!("metadata.annotations.{}", crate::exclusion::ANNOTATION),
                    e,
                ));
            }
            Vec::new()
        }),
    };
    let mut labels = BTreeMap::new();
    for (k, v) in &named.metadata.labels {
        let v = match v {
            LabelValue::One(s) => s.clone(),
            LabelValue::Many(l) => l.join(","),
        };
        labels.insert(k.clone(), v);
    }
    let (alert_windows, targets) = match &period {
        Some(p) => match alert_policies(doc, &spec.alert_policies, registry, p) {
            Ok(x) => x,
            Err(mut p) => {
                problems.append(&mut p);
                (Vec::new(), Vec::new())
            }
        },
        None => (Vec::new(), Vec::new()),
    };
    if spec.objectives.is_empty() {
        problems.push(doc.problem("spec.objectives", "at least one objective is needed"));
    }
    let several = spec.objectives.len() > 1;
    let mut out = Vec::new();
    for (i, objective) in spec.objectives.iter().enumerate() {
        let at = format!("spec.objectives[{i}]");
        let result = build_objective(doc, &at, &spec, objective, registry, defaults);
        let (sli, group_by, max_groups, budgeting, target, sli_fields) = match result {
            Ok(x) => x,
            Err(mut p) => {
                problems.append(&mut p);
                continue;
            }
        };
        let Some(period) = period.clone() else {
            continue;
        };
        let id = if several {
            let suffix = objective
                .display_name
                .as_deref()
                .map_or_else(|| i.to_string(), slug);
            format!("{}-{suffix}", named.metadata.name)
        } else {
            named.metadata.name.clone()
        };
        let display_name = match (&named.metadata.display_name, &objective.display_name) {
            (Some(a), Some(b)) if several => Some(format!("{a}: {b}")),
            (a, b) => a.clone().or_else(|| b.clone()),
        };
        let alert_windows = if alert_windows.is_empty() {
            default_alert_windows(nominal_period(&period))
        } else {
            alert_windows.clone()
        };
        out.push(SloDefinition {
            id,
            display_name,
            description: spec.description.clone(),
            service: spec.service.clone(),
            objective: target,
            period,
            budgeting,
            sli,
            group_by,
            max_groups,
            min_events,
            min_bad_events,
            alert_windows,
            freeze_below,
            budget_levels: budget_levels.clone(),
            exclusions: exclusions.clone(),
            runbook_url: annotations.get(RUNBOOK_URL).cloned(),
            labels: labels.clone(),
            notification_targets: targets.clone(),
            tenant: Tenant::default(),
            origin: Origin::File(doc.file.clone()),
            sli_fields,
        });
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

/// A period's nominal length, for deriving burn-rate factors.
fn nominal_period(period: &Period) -> Duration {
    match period {
        Period::Rolling { duration } => *duration,
        Period::Calendar { unit, count, .. } => {
            let day = 86_400u64;
            let days = match unit {
                crate::model::CalendarUnit::Day => 1,
                crate::model::CalendarUnit::Week => 7,
                crate::model::CalendarUnit::Month => 30,
                crate::model::CalendarUnit::Quarter => 91,
                crate::model::CalendarUnit::Year => 365,
            };
            Duration::from_secs(day * days * u64::from(*count))
        }
    }
}

fn slug(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_string()
}

fn period(doc: &Doc, windows: &[TimeWindow]) -> Result<Period, Problem> {
    let [window] = windows else {
        return Err(doc.problem(
            "spec.timeWindow",
            format!("exactly one time window is needed, found {}", windows.len()),
        ));
    };
    let field = "spec.timeWindow[0]";
    let span =
        parse_span(&window.duration).map_err(|e| doc.problem(format!("{field}.duration"), e))?;
    let rolling = window.is_rolling.unwrap_or(window.calendar.is_none());
    match (rolling, span, &window.calendar) {
        (true, Span::Fixed(duration), None) => Ok(Period::Rolling { duration }),
        (true, Span::Calendar(..), _) => Err(doc.problem(
            format!("{field}.duration"),
            "a rolling window is measured in s, m, h, d or w; months, quarters and years need isRolling: false and a calendar",
        )),
        (true, _, Some(_)) => Err(doc.problem(
            format!("{field}.isRolling"),
            "a rolling window has no calendar; set isRolling: false for a calendar window",
        )),
        (false, span, calendar) => {
            let Some(calendar) = calendar else {
                return Err(doc.problem(
                    format!("{field}.calendar"),
                    "a calendar window (isRolling: false) needs calendar.startTime and calendar.timeZone",
                ));
            };
            let time_zone: chrono_tz::Tz = calendar.time_zone.parse().map_err(|_| {
                doc.problem(
                    format!("{field}.calendar.timeZone"),
                    format!("{:?} is not an IANA time zone (e.g. Europe/Berlin)", calendar.time_zone),
                )
            })?;
            let start = ["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d"]
                .iter()
                .find_map(|f| {
                    chrono::NaiveDateTime::parse_from_str(&calendar.start_time, f)
                        .ok()
                        .or_else(|| {
                            chrono::NaiveDate::parse_from_str(&calendar.start_time, f)
                                .ok()
                                .and_then(|d| d.and_hms_opt(0, 0, 0))
                        })
                })
                .ok_or_else(|| {
                    doc.problem(
                        format!("{field}.calendar.startTime"),
                        format!("{:?} is not a local time like 2024-01-01 00:00:00", calendar.start_time),
                    )
                })?;
            let (unit, count) = match span {
                Span::Calendar(unit, count) => (unit, count),
                Span::Fixed(d) if d.as_secs() % (7 * 86_400) == 0 => {
                    (crate::model::CalendarUnit::Week, (d.as_secs() / (7 * 86_400)) as u32)
                }
                Span::Fixed(d) if d.as_secs() % 86_400 == 0 => {
                    (crate::model::CalendarUnit::Day, (d.as_secs() / 86_400) as u32)
                }
                Span::Fixed(_) => {
                    return Err(doc.problem(
                        format!("{field}.duration"),
                        "a calendar window is whole days, weeks (w), months (M), quarters (Q) or years (Y)",
                    ));
                }
            };
            Ok(Period::Calendar {
                unit,
                count,
                start,
                time_zone,
            })
        }
    }
}

type BuiltObjective = (
    Sli,
    Vec<String>,
    usize,
    Budgeting,
    f64,
    BTreeMap<String, Location>,
);

fn build_objective(
    doc: &Doc,
    at: &str,
    spec: &SloSpec,
    objective: &Objective,
    registry: &Registry<'_>,
    defaults: Defaults,
) -> Result<BuiltObjective, Vec<Problem>> {
    let mut problems = Vec::new();
    let target = match (objective.target, objective.target_percent) {
        (Some(t), None) => t,
        (None, Some(p)) => super::percent(p),
        (Some(_), Some(_)) => {
            problems.push(doc.problem(
                format!("{at}.target"),
                "give target or targetPercent, not both",
            ));
            0.0
        }
        (None, None) => {
            problems.push(doc.problem(
                format!("{at}.target"),
                "missing: the objective's target (e.g. 0.999) or targetPercent (99.9)",
            ));
            0.0
        }
    };
    if problems.is_empty() && !(target > 0.0 && target < 1.0) {
        problems.push(doc.problem(
            format!("{at}.target"),
            format!("{target} is not a fraction strictly between 0 and 1"),
        ));
    }
    if objective.composite_weight.is_some() {
        problems.push(doc.problem(
            format!("{at}.compositeWeight"),
            "composite SLOs are not supported",
        ));
    }
    let budgeting = match spec.budgeting_method.as_str() {
        "Occurrences" => Some(Budgeting::Occurrences),
        "Timeslices" | "RatioTimeslices" => {
            let slice = match &objective.time_slice_window {
                None => {
                    problems.push(doc.problem(
                        format!("{at}.timeSliceWindow"),
                        format!(
                            "{} budgeting needs the slice width (e.g. 1m)",
                            spec.budgeting_method
                        ),
                    ));
                    None
                }
                Some(w) => match parse_duration(w) {
                    Ok(d) if d >= Duration::from_secs(1) => Some(d),
                    Ok(_) => {
                        problems.push(
                            doc.problem(format!("{at}.timeSliceWindow"), "a slice is at least 1s"),
                        );
                        None
                    }
                    Err(e) => {
                        problems.push(doc.problem(format!("{at}.timeSliceWindow"), e));
                        None
                    }
                },
            };
            match (spec.budgeting_method.as_str(), slice) {
                ("Timeslices", Some(slice)) => {
                    let slice_target = objective.time_slice_target.unwrap_or(1.0);
                    if !(slice_target > 0.0 && slice_target <= 1.0) {
                        problems.push(doc.problem(
                            format!("{at}.timeSliceTarget"),
                            format!("{slice_target} is not a fraction in (0, 1]"),
                        ));
                    }
                    Some(Budgeting::Timeslices {
                        slice_target,
                        slice,
                    })
                }
                (_, Some(slice)) => Some(Budgeting::RatioTimeslices { slice }),
                _ => None,
            }
        }
        other => {
            problems.push(doc.problem(
                "spec.budgetingMethod",
                format!("{other:?}: use Occurrences, Timeslices or RatioTimeslices"),
            ));
            None
        }
    };
    // The indicator: the objective's own, else the SLO's.
    let indicator = match (
        &objective.indicator,
        &objective.indicator_ref,
        &spec.indicator,
        &spec.indicator_ref,
    ) {
        (Some(i), _, _, _) => Some((doc, i.spec.clone(), format!("{at}.indicator.spec"))),
        (None, Some(r), _, _) => sli_ref(doc, &format!("{at}.indicatorRef"), r, registry)
            .map_err(|p| problems.push(p))
            .ok(),
        (None, None, Some(i), _) => Some((doc, i.spec.clone(), "spec.indicator.spec".into())),
        (None, None, None, Some(r)) => sli_ref(doc, "spec.indicatorRef", r, registry)
            .map_err(|p| problems.push(p))
            .ok(),
        (None, None, None, None) => {
            problems.push(doc.problem(
                "spec.indicator",
                "the SLO needs an indicator or an indicatorRef",
            ));
            None
        }
    };
    let sli = indicator.and_then(|(sli_doc, value, field)| {
        build_sli(
            sli_doc, &field, &value, objective, at, doc, registry, defaults,
        )
        .map(|built| {
            let fields = sli_fields(sli_doc, &field, &built.0);
            (built, fields)
        })
        .map_err(|mut p| problems.append(&mut p))
        .ok()
    });
    match (sli, budgeting) {
        (Some(((sli, group_by, max_groups), fields)), Some(budgeting)) if problems.is_empty() => {
            Ok((sli, group_by, max_groups, budgeting, target, fields))
        }
        _ => Err(problems),
    }
}

/// Where each SQL expression of an SLI stands in its document, for
/// problems found once the SLI is built (see [`SloDefinition::sli_fields`]).
fn sli_fields(doc: &Doc, at: &str, sli: &Sli) -> BTreeMap<String, Location> {
    let at_field = |path: String| Location {
        file: doc.file.clone(),
        document: doc.index,
        field: path,
    };
    let mut out = BTreeMap::new();
    out.insert("indicator".to_string(), at_field(at.to_string()));
    let ratio = format!("{at}.ratioMetric");
    let spec_of = |part: &str| format!("{ratio}.{part}.metricSource.spec");
    match &sli.kind {
        SliKind::Rows { .. } | SliKind::Counter { .. } => {
            for part in ["good", "bad", "total"] {
                out.insert(
                    format!("{part}.filter"),
                    at_field(format!("{}.filter", spec_of(part))),
                );
            }
            out.insert(
                "groupBy".into(),
                at_field(format!("{}.groupBy", spec_of("total"))),
            );
        }
        SliKind::Histogram { .. } => {
            out.insert(
                "filter".into(),
                at_field(format!("{}.filter", spec_of("total"))),
            );
            out.insert(
                "groupBy".into(),
                at_field(format!("{}.groupBy", spec_of("total"))),
            );
        }
        SliKind::Threshold { .. } => {
            let spec = format!("{at}.thresholdMetric.metricSource.spec");
            for part in ["filter", "value", "groupBy"] {
                out.insert(part.to_string(), at_field(format!("{spec}.{part}")));
            }
        }
    }
    out
}

fn sli_ref<'a>(
    doc: &'a Doc,
    field: &str,
    name: &str,
    registry: &'a Registry<'_>,
) -> Result<(&'a Doc, Value, String), Problem> {
    registry
        .get("SLI", name)
        .map(|n| (n.doc, n.spec.clone(), n.at.clone()))
        .ok_or_else(|| {
            doc.problem(
                field,
                format!("no SLI named {name:?} among the loaded documents"),
            )
        })
}

/// Reads one metric source; smolder's own is the only type supported.
fn source(
    doc: &Doc,
    field: &str,
    spec: &MetricSpec,
    registry: &Registry<'_>,
) -> Result<SmolderSource, Problem> {
    let ms = &spec.metric_source;
    let mut kind = ms.kind.clone();
    let mut base = Value::Null;
    if let Some(r) = &ms.metric_source_ref {
        let Some(ds) = registry.get("DataSource", r) else {
            return Err(doc.problem(
                format!("{field}.metricSource.metricSourceRef"),
                format!("no DataSource named {r:?} among the loaded documents"),
            ));
        };
        let ds_spec: DataSourceSpec = typed(ds.doc, &ds.spec, "spec")?;
        kind = Some(ds_spec.kind);
        base = ds_spec.connection_details;
    }
    match kind.as_deref() {
        Some("smolder") => {}
        Some(other) => {
            return Err(doc.problem(
                format!("{field}.metricSource.type"),
                format!(
                    "metric source type {other:?} is not supported: smolder computes SLIs from its own tables (type: smolder); a Prometheus SLO can be imported from Sloth's prometheus/v1 format"
                ),
            ));
        }
        None => {
            return Err(doc.problem(
                format!("{field}.metricSource.type"),
                "missing: the metric source type (smolder)",
            ));
        }
    }
    // Connection details of a DataSource give defaults (e.g. the table).
    let mut merged = base.as_mapping().cloned().unwrap_or_default();
    if let Some(m) = ms.spec.as_mapping() {
        for (k, v) in m {
            merged.insert(k.clone(), v.clone());
        }
    }
    typed(
        doc,
        &Value::Mapping(merged),
        &format!("{field}.metricSource.spec"),
    )
}

fn table_of(doc: &Doc, field: &str, s: &SmolderSource) -> Result<Table, Problem> {
    match s.table.as_deref() {
        Some("spans") => Ok(Table::Spans),
        Some("logs") => Ok(Table::Logs),
        Some("metrics") => Ok(Table::Metrics),
        Some(other) => Err(doc.problem(
            format!("{field}.metricSource.spec.table"),
            format!("{other:?}: use spans, logs or metrics"),
        )),
        None => Err(doc.problem(
            format!("{field}.metricSource.spec.table"),
            "missing: the table (spans, logs or metrics)",
        )),
    }
}

type BuiltSli = (Sli, Vec<String>, usize);

#[allow(clippy::too_many_arguments)]
fn build_sli(
    doc: &Doc,
    at: &str,
    value: &Value,
    objective: &Objective,
    objective_at: &str,
    slo_doc: &Doc,
    registry: &Registry<'_>,
    defaults: Defaults,
) -> Result<BuiltSli, Vec<Problem>> {
    let spec: SliSpec = typed(doc, value, at).map_err(|p| vec![p])?;
    let _ = &spec.description;
    match (&spec.ratio_metric, &spec.threshold_metric) {
        (Some(ratio), None) => {
            ratio_sli(doc, &format!("{at}.ratioMetric"), ratio, registry, defaults)
        }
        (None, Some(threshold)) => {
            let field = format!("{at}.thresholdMetric");
            let s = source(doc, &field, threshold, registry).map_err(|p| vec![p])?;
            let table = table_of(doc, &field, &s).map_err(|p| vec![p])?;
            let op = objective.op.as_deref().and_then(Op::parse).ok_or_else(|| {
                vec![slo_doc.problem(
                    format!("{objective_at}.op"),
                    "a threshold metric needs op: lt, lte, gt or gte",
                )]
            })?;
            let threshold = objective.value.ok_or_else(|| {
                vec![slo_doc.problem(
                    format!("{objective_at}.value"),
                    "a threshold metric needs the threshold value",
                )]
            })?;
            let value = match (&s.value, table) {
                (Some(v), _) => v.clone(),
                (None, Table::Metrics) => "COALESCE(value, CAST(value_int AS DOUBLE))".to_string(),
                (None, _) => {
                    return Err(vec![doc.problem(
                        format!("{field}.metricSource.spec.value"),
                        "missing: the SQL expression compared with the threshold (e.g. duration_ns / 1e6)",
                    )]);
                }
            };
            let sli = Sli {
                table,
                kind: SliKind::Threshold {
                    filter: s.filter.clone().unwrap_or_else(|| "true".into()),
                    value,
                    op,
                    threshold,
                },
            };
            Ok((
                sli,
                s.group_by.clone(),
                s.max_groups.unwrap_or(defaults.max_groups),
            ))
        }
        (Some(_), Some(_)) => {
            Err(vec![doc.problem(
                at,
                "give ratioMetric or thresholdMetric, not both",
            )])
        }
        (None, None) => {
            Err(vec![doc.problem(
                at,
                "the SLI needs a ratioMetric or a thresholdMetric",
            )])
        }
    }
}

fn ratio_sli(
    doc: &Doc,
    at: &str,
    ratio: &RatioMetric,
    registry: &Registry<'_>,
    defaults: Defaults,
) -> Result<BuiltSli, Vec<Problem>> {
    if ratio.raw.is_some() || ratio.raw_type.is_some() {
        return Err(vec![doc.problem(
            format!("{at}.raw"),
            "raw (precomputed) ratios are not supported: give good or bad, and total, so smolder counts events exactly",
        )]);
    }
    let Some(total) = &ratio.total else {
        return Err(vec![
            doc.problem(format!("{at}.total"), "missing: the total events"),
        ]);
    };
    let get = |name: &str, spec: &MetricSpec| source(doc, &format!("{at}.{name}"), spec, registry);
    let total_src = get("total", total).map_err(|p| vec![p])?;
    let (good, bad) = match (&ratio.good, &ratio.bad) {
        (Some(g), None) => (Some(get("good", g).map_err(|p| vec![p])?), None),
        (None, Some(b)) => (None, Some(get("bad", b).map_err(|p| vec![p])?)),
        _ => {
            return Err(vec![doc.problem(
                format!("{at}.good"),
                "give good or bad (not both) beside total",
            )]);
        }
    };
    let table = table_of(doc, &format!("{at}.total"), &total_src).map_err(|p| vec![p])?;
    let mut problems = Vec::new();
    for (name, s) in [("good", &good), ("bad", &bad)] {
        let Some(s) = s else { continue };
        if s.table.is_some() && table_of(doc, &format!("{at}.{name}"), s).ok() != Some(table) {
            problems.push(doc.problem(
                format!("{at}.{name}.metricSource.spec.table"),
                "good, bad and total must come from the same table",
            ));
        }
        if !s.group_by.is_empty() && s.group_by != total_src.group_by {
            problems.push(doc.problem(
                format!("{at}.{name}.metricSource.spec.groupBy"),
                "groupBy is set on total (good and bad use the same groups)",
            ));
        }
    }
    if !ratio.counter && table == Table::Metrics && good.as_ref().is_none_or(|g| g.le.is_none()) {
        problems.push(doc.problem(
            format!("{at}.counter"),
            "a ratio of metric points counts counter increments: set counter: true",
        ));
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let filter = |s: &Option<SmolderSource>| {
        s.as_ref()
            .map(|s| s.filter.clone().unwrap_or_else(|| "true".into()))
    };
    let total_filter = total_src.filter.clone().unwrap_or_else(|| "true".into());
    let kind = match table {
        Table::Spans | Table::Logs => SliKind::Rows {
            good: filter(&good),
            bad: filter(&bad),
            total: total_filter,
        },
        Table::Metrics => match good.as_ref().and_then(|g| g.le) {
            Some(le) => SliKind::Histogram {
                filter: total_filter,
                le,
            },
            None => SliKind::Counter {
                good: filter(&good),
                bad: filter(&bad),
                total: total_filter,
            },
        },
    };
    Ok((
        Sli { table, kind },
        total_src.group_by.clone(),
        total_src.max_groups.unwrap_or(defaults.max_groups),
    ))
}

type Policies = (Vec<AlertWindow>, Vec<NotificationTarget>);

/// Inline entry or reference, resolved to (document, metadata, spec, field).
fn entry<'a>(
    doc: &'a Doc,
    field: &str,
    e: &'a Entry,
    reference: Option<&String>,
    kind: &str,
    registry: &'a Registry<'_>,
) -> Result<(&'a Doc, Metadata, Value, String), Problem> {
    if let Some(name) = reference {
        let n = registry.get(kind, name).ok_or_else(|| {
            doc.problem(
                field,
                format!("no {kind} named {name:?} among the loaded documents"),
            )
        })?;
        return Ok((n.doc, n.metadata.clone(), n.spec.clone(), n.at.clone()));
    }
    match (&e.metadata, &e.spec) {
        (Some(m), Some(s)) => {
            if let Some(k) = &e.kind
                && k != kind
            {
                return Err(doc.problem(
                    format!("{field}.kind"),
                    format!("expected {kind}, got {k:?}"),
                ));
            }
            let _ = &e.api_version;
            Ok((doc, m.clone(), s.clone(), format!("{field}.spec")))
        }
        _ => Err(doc.problem(
            field,
            format!("an inline {kind} (kind, metadata, spec) or a reference by name"),
        )),
    }
}

fn alert_policies(
    doc: &Doc,
    entries: &[Entry],
    registry: &Registry<'_>,
    period: &Period,
) -> Result<Policies, Vec<Problem>> {
    let mut windows = Vec::new();
    let mut targets = Vec::new();
    let mut problems = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        let field = format!("spec.alertPolicies[{i}]");
        let (pdoc, _meta, spec, at) = match entry(
            doc,
            &field,
            e,
            e.alert_policy_ref.as_ref(),
            "AlertPolicy",
            registry,
        ) {
            Ok(x) => x,
            Err(p) => {
                problems.push(p);
                continue;
            }
        };
        let policy: AlertPolicySpec = match typed(pdoc, &spec, &at) {
            Ok(p) => p,
            Err(p) => {
                problems.push(p);
                continue;
            }
        };
        for (j, c) in policy.conditions.iter().enumerate() {
            let cfield = format!("{at}.conditions[{j}]");
            let (cdoc, cmeta, cspec, cat) = match entry(
                pdoc,
                &cfield,
                c,
                c.condition_ref.as_ref(),
                "AlertCondition",
                registry,
            ) {
                Ok(x) => x,
                Err(p) => {
                    problems.push(p);
                    continue;
                }
            };
            match condition(cdoc, &cat, &cmeta, &cspec, period) {
                Ok(w) => windows.push(w),
                Err(p) => problems.push(p),
            }
        }
        for (j, t) in policy.notification_targets.iter().enumerate() {
            let tfield = format!("{at}.notificationTargets[{j}]");
            let (tdoc, tmeta, tspec, tat) = match entry(
                pdoc,
                &tfield,
                t,
                t.target_ref.as_ref(),
                "AlertNotificationTarget",
                registry,
            ) {
                Ok(x) => x,
                Err(p) => {
                    problems.push(p);
                    continue;
                }
            };
            match typed::<TargetSpec>(tdoc, &tspec, &tat) {
                Ok(s) => targets.push(NotificationTarget {
                    name: tmeta.name.clone(),
                    target: s.target,
                    description: s.description,
                }),
                Err(p) => problems.push(p),
            }
        }
    }
    if problems.is_empty() {
        Ok((windows, targets))
    } else {
        Err(problems)
    }
}

fn condition(
    doc: &Doc,
    at: &str,
    meta: &Metadata,
    spec: &Value,
    _period: &Period,
) -> Result<AlertWindow, Problem> {
    let c: AlertConditionSpec = typed(doc, spec, at)?;
    let field = format!("{at}.condition");
    if c.condition.kind != "burnrate" {
        return Err(doc.problem(
            format!("{field}.kind"),
            format!(
                "{:?}: only burnrate conditions are supported",
                c.condition.kind
            ),
        ));
    }
    if c.condition.op != "gte" {
        return Err(doc.problem(
            format!("{field}.op"),
            "a burn-rate condition fires when the rate reaches the threshold: use gte",
        ));
    }
    if c.condition.threshold.is_nan() || c.condition.threshold <= 0.0 {
        return Err(doc.problem(format!("{field}.threshold"), "must be a positive burn rate"));
    }
    let long = parse_duration(&c.condition.lookback_window)
        .map_err(|e| doc.problem(format!("{field}.lookbackWindow"), e))?;
    let alert_after = match &c.condition.alert_after {
        Some(a) if a.trim().trim_end_matches(char::is_alphabetic) == "0" => Duration::ZERO,
        Some(a) => parse_duration(a).map_err(|e| doc.problem(format!("{field}.alertAfter"), e))?,
        None => Duration::ZERO,
    };
    Ok(AlertWindow {
        name: meta.name.clone(),
        severity: c.severity.into(),
        long,
        // The Workbook's short window: a twelfth of the long one.
        short: (long / 12).max(Duration::from_secs(1)),
        factor: c.condition.threshold,
        alert_after,
    })
}

/// The levels of [`BUDGET_LEVELS`]: shares of the budget from 0 up to 100 %,
/// separated by commas; returned highest first, without repeats.
fn budget_levels(text: &str) -> Result<Vec<f64>, String> {
    let mut levels = Vec::new();
    for part in text.split(',') {
        match super::fraction(part) {
            Some(f) if (0.0..1.0).contains(&f) => levels.push(f),
            _ => {
                return Err(format!(
                    "{:?} is not a share of the budget from 0 up to 100% (50%, 25%, 0% or 0.5, 0.25, 0)",
                    part.trim()
                ));
            }
        }
    }
    levels.sort_by(|a, b| b.total_cmp(a));
    levels.dedup();
    Ok(levels)
}

//! An SLO as the engine runs it, whatever format it was written in.
//!
//! [`crate::spec`] turns OpenSLO and Sloth documents into [`SloDefinition`]s;
//! everything after that (rollups, evaluation, the API) sees only these types.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono_tz::Tz;
use serde::Serialize;
use smolder_common::{Table, Tenant};

/// One SLO: what is measured, the objective, the period and the alert windows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SloDefinition {
    /// Unique id: the OpenSLO `metadata.name` (with the objective's name when
    /// an SLO has several objectives), or `<service>-<name>` for Sloth.
    pub id: String,
    /// Human-readable name.
    pub display_name: Option<String>,
    /// What the SLO promises, in words.
    pub description: Option<String>,
    /// The service the SLO belongs to.
    pub service: String,
    /// Target fraction of good events (or good slices), in (0, 1).
    pub objective: f64,
    /// The period the error budget is computed over.
    pub period: Period,
    /// How good and total are counted.
    pub budgeting: Budgeting,
    /// The indicator: which rows or points are good and which count.
    pub sli: Sli,
    /// SQL expressions splitting the SLO into one instance per distinct value.
    pub group_by: Vec<String>,
    /// At most this many groups are tracked; rows of further groups are
    /// ignored and counted as dropped.
    pub max_groups: usize,
    /// Low-traffic guard: a window with fewer events than this cannot make an
    /// alert condition true.
    pub min_events: f64,
    /// Low-traffic guard: a condition's long window needs at least this many
    /// bad events before the condition can be met (see [`crate::eval`]); 0
    /// turns it off.
    pub min_bad_events: f64,
    /// The multi-window burn-rate conditions.
    pub alert_windows: Vec<AlertWindow>,
    /// Error-budget policy: changes are frozen — the deploy gate
    /// (`GET /api/v1/slos/{id}/gate`) answers 423 — while an instance has
    /// less than this fraction of its budget left; 0 freezes once the
    /// budget is spent.
    pub freeze_below: f64,
    /// Error-budget policy: the levels of remaining budget (fractions,
    /// highest first; 0 stands for "spent") at which each instance raises a
    /// budget event — an alert of severity `budget` that fires when the
    /// instance falls below the level ([`budget_below`]) and resolves when
    /// its budget is back above it.
    pub budget_levels: Vec<f64>,
    /// Budget exclusions of the definition (its `smolder.dev/exclusions`
    /// annotation): when its events do not count. The engine adds those
    /// made through the API ([`crate::exclusion`]).
    pub exclusions: Vec<crate::exclusion::Exclusion>,
    /// Where the on-call finds what to do.
    pub runbook_url: Option<String>,
    /// OpenSLO labels and Sloth labels, passed on to alerts.
    pub labels: BTreeMap<String, String>,
    /// OpenSLO `AlertNotificationTarget`s of the SLO's alert policies.
    pub notification_targets: Vec<NotificationTarget>,
    /// Whose SLO it is: the engine of that tenant runs it over that tenant's
    /// data, and its alerts carry the tenant as a label. Set by the engine
    /// (a document cannot name another tenant).
    pub tenant: Tenant,
    /// Where the SLO came from.
    #[serde(skip)]
    pub origin: Origin,
    /// Where each SQL expression of the indicator was written (`good.filter`,
    /// `total.filter`, `filter`, `value`, `groupBy`, and `indicator` for the
    /// whole), so problems found later name the document and field.
    #[serde(skip)]
    pub sli_fields: BTreeMap<String, Location>,
}

/// A place in an SLO file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The file (`api` for a request body).
    pub file: String,
    /// The YAML document, counting from 1.
    pub document: usize,
    /// The field's path.
    pub field: String,
}

/// Where a definition came from.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub enum Origin {
    /// A file of the SLO directory.
    File(String),
    /// `PUT /api/v1/slos/{id}`.
    #[default]
    Api,
}

/// The period of the error budget.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Period {
    /// The last `duration`, moving with time (`28d`, `30d`).
    Rolling {
        /// Length of the period.
        #[serde(with = "humantime_serde_compat")]
        duration: Duration,
    },
    /// Calendar periods (`1M`, `1Q`, `1w`, `1d`, `1Y`) in a time zone, the
    /// first one starting at `start` local time.
    Calendar {
        /// The unit of the period.
        unit: CalendarUnit,
        /// How many units one period spans.
        count: u32,
        /// Local start of the first period.
        start: chrono::NaiveDateTime,
        /// The time zone of `start` and of period boundaries.
        #[serde(serialize_with = "serialize_tz")]
        time_zone: Tz,
    },
}

impl Period {
    /// The longest a period can be (a calendar month of 31 days and a
    /// daylight-saving hour).
    pub fn max_length(&self) -> Duration {
        match self {
            Period::Rolling { duration } => *duration,
            Period::Calendar { unit, count, .. } => unit
                .max_length()
                .checked_mul(*count)
                .unwrap_or(Duration::MAX),
        }
    }
}

fn serialize_tz<S: serde::Serializer>(tz: &Tz, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(tz.name())
}

/// Durations serialize as humantime text (`30days`, `1h 30m`).
mod humantime_serde_compat {
    use std::time::Duration;

    pub(super) fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }
}

/// A calendar unit of an OpenSLO calendar time window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CalendarUnit {
    /// Days (`d`).
    Day,
    /// Weeks (`w`).
    Week,
    /// Months (`M`).
    Month,
    /// Quarters (`Q`).
    Quarter,
    /// Years (`Y`).
    Year,
}

/// OpenSLO budgeting methods.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "method", rename_all = "snake_case")]
pub enum Budgeting {
    /// SLI = good events / total events.
    Occurrences,
    /// A slice is good when its ratio reaches `slice_target`; SLI = good
    /// slices / slices with events.
    Timeslices {
        /// Ratio a slice needs to be good.
        slice_target: f64,
        /// Width of a slice.
        #[serde(with = "humantime_serde_compat")]
        slice: Duration,
    },
    /// SLI = mean of the ratios of the slices with events.
    RatioTimeslices {
        /// Width of a slice.
        #[serde(with = "humantime_serde_compat")]
        slice: Duration,
    },
}

impl Budgeting {
    /// The width of a rollup bucket for this method: the slice, or the
    /// engine's step for occurrences.
    pub fn bucket_width(&self, step: Duration) -> Duration {
        match self {
            Budgeting::Occurrences => step,
            Budgeting::Timeslices { slice, .. } | Budgeting::RatioTimeslices { slice } => *slice,
        }
    }

    /// What one bucket's raw good and total count towards the SLI: the counts
    /// themselves for occurrences, one slice for the timeslice methods.
    pub fn units(&self, good: f64, total: f64) -> [f64; 2] {
        match self {
            Budgeting::Occurrences => [good, total],
            _ if total <= 0.0 => [0.0, 0.0],
            Budgeting::Timeslices { slice_target, .. } => {
                [f64::from(u8::from(good / total >= *slice_target)), 1.0]
            }
            Budgeting::RatioTimeslices { .. } => [good / total, 1.0],
        }
    }
}

/// The indicator: a table, and what is good and what counts there.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sli {
    /// The table the events come from.
    #[serde(serialize_with = "serialize_table")]
    pub table: Table,
    /// How events are counted.
    pub kind: SliKind,
}

fn serialize_table<S: serde::Serializer>(t: &Table, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(t.name())
}

/// How an SLI counts good and total events. Every filter is a SQL boolean
/// expression over the table's columns.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SliKind {
    /// Rows of `spans` or `logs`: good (or bad) rows among total rows.
    Rows {
        /// Rows that are good; `None` when `bad` is given.
        good: Option<String>,
        /// Rows that are bad; `None` when `good` is given.
        bad: Option<String>,
        /// Rows that count.
        total: String,
    },
    /// Increments of metric counters (sum points, delta or cumulative, with
    /// resets), summed over every series each filter selects.
    Counter {
        /// Series counting good events; `None` when `bad` is given.
        good: Option<String>,
        /// Series counting bad events; `None` when `good` is given.
        bad: Option<String>,
        /// Series counting all events.
        total: String,
    },
    /// Histogram points (explicit or exponential): good observations are
    /// those at or below `le`, which must be a bucket bound.
    Histogram {
        /// The histogram series.
        filter: String,
        /// The latency threshold, in the histogram's unit.
        le: f64,
    },
    /// Rows or points whose `value` compares with the threshold are good.
    Threshold {
        /// Rows or points that count.
        filter: String,
        /// SQL expression of the compared value.
        value: String,
        /// The comparison making a row good.
        op: Op,
        /// The threshold.
        threshold: f64,
    },
}

/// A comparison of OpenSLO objectives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// `<`
    Lt,
    /// `<=`
    Lte,
    /// `>`
    Gt,
    /// `>=`
    Gte,
}

impl Op {
    /// The SQL operator.
    pub fn sql(self) -> &'static str {
        match self {
            Op::Lt => "<",
            Op::Lte => "<=",
            Op::Gt => ">",
            Op::Gte => ">=",
        }
    }

    /// Parses OpenSLO's `lt`, `lte`, `gt`, `gte`.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "lt" => Op::Lt,
            "lte" => Op::Lte,
            "gt" => Op::Gt,
            "gte" => Op::Gte,
            _ => return None,
        })
    }
}

/// The length of an alert window. Shown and serialized as short text
/// (`5m`, `1h`, `3d`); ordered by length, so maps keyed by windows list the
/// shortest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Window(pub Duration);

impl Window {
    /// The window's length.
    pub fn duration(self) -> Duration {
        self.0
    }
}

impl std::fmt::Display for Window {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.0.as_secs();
        match s {
            0 => f.write_str("0s"),
            _ if s.is_multiple_of(86_400) => write!(f, "{}d", s / 86_400),
            _ if s.is_multiple_of(3600) => write!(f, "{}h", s / 3600),
            _ if s.is_multiple_of(60) => write!(f, "{}m", s / 60),
            _ => write!(f, "{s}s"),
        }
    }
}

impl std::str::FromStr for Window {
    type Err = String;

    /// The text [`Display`](std::fmt::Display) writes (`5m`, `1h`, `3d`).
    fn from_str(s: &str) -> Result<Self, String> {
        crate::spec::parse_duration(s).map(Self)
    }
}

impl Serialize for Window {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// A group as one label value: `k=v,…` in key order.
pub fn group_label(group: &BTreeMap<String, String>) -> String {
    group
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// One instance of an SLO: its tenant, the SLO and the values of its
/// `groupBy` expressions. Shown, and stored by alerting, as `slo{k=v,…}`
/// for the default tenant's SLOs (as before tenants) and
/// `tenant/slo{k=v,…}` for another's (SLO ids hold no `/`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InstanceKey {
    tenant: Tenant,
    slo: String,
    /// `k=v,…`, in the group's key order.
    group: String,
}

impl InstanceKey {
    /// The key of `tenant`'s SLO `slo`'s instance of `group`.
    pub fn new(tenant: &Tenant, slo: &str, group: &BTreeMap<String, String>) -> Self {
        Self {
            tenant: tenant.clone(),
            slo: slo.to_string(),
            group: group_label(group),
        }
    }

    /// Reads the stored form back; `None` when `text` is not one (SLO ids
    /// hold no `{`).
    pub fn parse(text: &str) -> Option<Self> {
        let (slo, rest) = text.split_once('{')?;
        let group = rest.strip_suffix('}')?;
        let (tenant, slo) = match slo.split_once('/') {
            Some((tenant, slo)) => (Tenant::parse(tenant).ok()?, slo),
            None => (Tenant::default(), slo),
        };
        Some(Self {
            tenant,
            slo: slo.to_string(),
            group: group.to_string(),
        })
    }

    /// The SLO.
    pub fn slo(&self) -> &str {
        &self.slo
    }

    /// The SLO's tenant.
    pub fn tenant(&self) -> &Tenant {
        &self.tenant
    }
}

impl std::fmt::Display for InstanceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if !self.tenant.is_default() {
            write!(f, "{}/", self.tenant)?;
        }
        write!(f, "{}{{{}}}", self.slo, self.group)
    }
}

/// How urgent an alert condition is: `page` and `ticket` (the SRE
/// Workbook's, Sloth's) or an OpenSLO AlertCondition's own severity.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Severity(String);

impl Severity {
    /// Wakes someone up.
    pub fn page() -> Self {
        Self("page".into())
    }

    /// Goes to a queue.
    pub fn ticket() -> Self {
        Self("ticket".into())
    }

    /// Whether it pages (`page`, or `critical` as some tools call it).
    pub fn is_page(&self) -> bool {
        matches!(self.0.as_str(), "page" | "critical")
    }

    /// Whether it is a ticket (`ticket`, or `warning`).
    pub fn is_ticket(&self) -> bool {
        matches!(self.0.as_str(), "ticket" | "warning")
    }

    /// Urgency, most urgent first: 0 for pages (`page`, `critical`), 1 for
    /// `error`, 2 for tickets (`ticket`, `warning`), 3 for anything else.
    pub fn rank(&self) -> u8 {
        match self.0.as_str() {
            "page" | "critical" => 0,
            "error" => 1,
            "ticket" | "warning" => 2,
            _ => 3,
        }
    }

    /// The severity as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<String> for Severity {
    fn from(s: String) -> Self {
        Self(s)
    }
}

impl From<&str> for Severity {
    fn from(s: &str) -> Self {
        Self(s.to_string())
    }
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// One multi-window burn-rate condition: it holds when the burn rate over
/// both windows reaches `factor`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertWindow {
    /// Name of the condition (`page-1h`, or the AlertCondition's name).
    pub name: String,
    /// `page`, `ticket` or the AlertCondition's severity.
    pub severity: Severity,
    /// The long window.
    #[serde(with = "humantime_serde_compat")]
    pub long: Duration,
    /// The short window (long / 12 by default).
    #[serde(with = "humantime_serde_compat")]
    pub short: Duration,
    /// The burn rate both windows must reach.
    pub factor: f64,
    /// How long the condition must hold before an alert fires (OpenSLO
    /// `alertAfter`); used by alerting.
    #[serde(with = "humantime_serde_compat")]
    pub alert_after: Duration,
}

/// An OpenSLO `AlertNotificationTarget`, for alerting to route by.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NotificationTarget {
    /// The target's name.
    pub name: String,
    /// OpenSLO's free-form `target` (e.g. `slack`, `email`).
    pub target: String,
    /// What the target is.
    pub description: Option<String>,
}

/// The SRE Workbook's multi-window, multi-burn-rate table: (severity, long
/// window, short window, share of the budget consumed when it fires).
const WORKBOOK: [(&str, u64, u64, f64); 4] = [
    ("page", 3600, 300, 0.02),
    ("page", 6 * 3600, 1800, 0.05),
    ("ticket", 24 * 3600, 2 * 3600, 0.10),
    ("ticket", 3 * 24 * 3600, 6 * 3600, 0.10),
];

/// The default alert windows for a period: the Workbook's windows and budget
/// shares, with factor = share × period / long window (14.4, 6, 3, 1 for 30
/// days; 13.44, 5.6, 2.8, 0.933 for 28).
pub fn default_alert_windows(period: Duration) -> Vec<AlertWindow> {
    WORKBOOK
        .iter()
        .map(|&(severity, long, short, share)| {
            let long = Duration::from_secs(long);
            AlertWindow {
                name: format!("{severity}-{}", humantime::format_duration(long)),
                severity: Severity::from(severity),
                long,
                short: Duration::from_secs(short),
                factor: share * period.as_secs_f64() / long.as_secs_f64(),
                alert_after: Duration::ZERO,
            }
        })
        .collect()
}

impl SloDefinition {
    /// The length of the period that ends at (or contains) `now_ns`.
    pub fn period_bounds(&self, now_ns: i64) -> (i64, i64) {
        match &self.period {
            Period::Rolling { duration } => (now_ns - duration_ns(*duration), now_ns),
            Period::Calendar {
                unit,
                count,
                start,
                time_zone,
            } => crate::calendar::period_containing(*unit, *count, *start, *time_zone, now_ns),
        }
    }

    /// The nominal length of the period (a calendar period's current length).
    pub fn period_length(&self, now_ns: i64) -> Duration {
        let (start, end) = self.period_bounds(now_ns);
        Duration::from_nanos(u64::try_from(end - start).unwrap_or(0))
    }

    /// The part of the definition rollups depend on, as canonical text: when
    /// it changes, the stored rollups are recomputed from history.
    pub fn rollup_fingerprint(&self, step: Duration) -> String {
        serde_json::json!({
            "sli": self.sli,
            "group_by": self.group_by,
            "bucket_ns": duration_ns(self.budgeting.bucket_width(step)),
        })
        .to_string()
    }

    /// Width of this SLO's rollup buckets, in nanoseconds.
    pub fn bucket_ns(&self, step: Duration) -> i64 {
        duration_ns(self.budgeting.bucket_width(step)).max(1)
    }

    /// The burn-rate threshold of each alert window: the lowest factor of
    /// the conditions that use it (what a burn rate is coloured against).
    pub fn window_thresholds(&self) -> BTreeMap<Window, f64> {
        let mut out: BTreeMap<Window, f64> = BTreeMap::new();
        for w in &self.alert_windows {
            for d in [w.long, w.short] {
                let t = out.entry(Window(d)).or_insert(w.factor);
                *t = t.min(w.factor);
            }
        }
        out
    }

    /// The longest stretch of history evaluation reads: the period or the
    /// longest alert window, whichever is longer.
    pub fn horizon(&self, now_ns: i64) -> Duration {
        let longest = self
            .alert_windows
            .iter()
            .map(|w| w.long.max(w.short))
            .max()
            .unwrap_or_default();
        let (start, _) = self.period_bounds(now_ns);
        let period = Duration::from_nanos(u64::try_from(now_ns.saturating_sub(start)).unwrap_or(0));
        longest.max(period).max(self.period.max_length())
    }
}

impl CalendarUnit {
    /// The longest a period of one unit can be.
    pub fn max_length(self) -> Duration {
        let day = Duration::from_secs(86_400);
        match self {
            // A day can be 25 hours at a daylight-saving change.
            CalendarUnit::Day => Duration::from_secs(25 * 3600),
            CalendarUnit::Week => day * 7 + Duration::from_secs(3600),
            CalendarUnit::Month => day * 31 + Duration::from_secs(3600),
            CalendarUnit::Quarter => day * 92 + Duration::from_secs(3600),
            CalendarUnit::Year => day * 366 + Duration::from_secs(3600),
        }
    }
}

/// A duration in nanoseconds, saturating.
pub fn duration_ns(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

/// Whether an instance with `remaining` error budget is below the policy
/// level `level` (a fraction of the budget): it has less than that left, or
/// nothing at all — level 0 means "the budget is spent".
pub fn budget_below(remaining: f64, level: f64) -> bool {
    remaining <= 0.0 || remaining < level
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_read_as_text_and_order_by_length() {
        let w = |s: u64| Window(Duration::from_secs(s));
        assert_eq!(
            [w(300), w(3600), w(86_400 * 3), w(90)].map(|w| w.to_string()),
            ["5m", "1h", "3d", "90s"]
        );
        let mut sorted = vec![w(3600), w(300), w(86_400), w(1800)];
        sorted.sort();
        assert_eq!(sorted, [w(300), w(1800), w(3600), w(86_400)]);
        let map: BTreeMap<Window, f64> = [(w(3600), 1.0), (w(300), 2.0)].into();
        assert_eq!(
            serde_json::to_string(&map).unwrap(),
            r#"{"5m":2.0,"1h":1.0}"#
        );
    }

    #[test]
    fn severities_rank_pages_first() {
        let ranks: Vec<u8> = ["ticket", "page", "critical", "error", "warning", "fyi"]
            .map(|s| Severity::from(s).rank())
            .to_vec();
        assert_eq!(ranks, [2, 0, 0, 1, 2, 3]);
        assert!(Severity::page().is_page() && Severity::ticket().is_ticket());
    }

    #[test]
    fn instance_keys_read_back_from_their_text() {
        let group: BTreeMap<String, String> =
            [("route".to_string(), "/pay,now".to_string())].into();
        let default = Tenant::default();
        let key = InstanceKey::new(&default, "checkout", &group);
        assert_eq!(key.to_string(), "checkout{route=/pay,now}");
        assert_eq!(InstanceKey::parse(&key.to_string()), Some(key.clone()));
        assert_eq!(key.slo(), "checkout");
        // An SLO whose id is a prefix of another's is told apart.
        let other = InstanceKey::new(&default, "checkout-v2", &group);
        assert_ne!(other.slo(), key.slo());
        assert_eq!(InstanceKey::parse("no-braces"), None);
        // Another tenant's SLO of the same id is another instance.
        let acme = Tenant::parse("acme").unwrap();
        let theirs = InstanceKey::new(&acme, "checkout", &group);
        assert_eq!(theirs.to_string(), "acme/checkout{route=/pay,now}");
        assert_eq!(
            InstanceKey::parse(&theirs.to_string()),
            Some(theirs.clone())
        );
        assert_ne!(theirs, key);
        assert_eq!(theirs.tenant(), &acme);
        assert_eq!(InstanceKey::parse("NOT A TENANT/checkout{}"), None);
    }

    #[test]
    fn workbook_factors_for_30_and_28_days() {
        let day = Duration::from_secs(86_400);
        let f30: Vec<f64> = default_alert_windows(day * 30)
            .iter()
            .map(|w| w.factor)
            .collect();
        let close = |a: &[f64], b: &[f64]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-9);
        assert!(close(&f30, &[14.4, 6.0, 3.0, 1.0]), "{f30:?}");
        let f28: Vec<f64> = default_alert_windows(day * 28)
            .iter()
            .map(|w| w.factor)
            .collect();
        assert!(
            close(&f28, &[13.44, 5.6, 2.8, 28.0 / 30.0]),
            "{f28:?} (0.933 is 28/30)"
        );
        let windows = default_alert_windows(day * 30);
        assert_eq!(windows[0].short, Duration::from_secs(300));
        assert_eq!(windows[0].name, "page-1h");
    }

    #[test]
    fn timeslice_units() {
        let t = Budgeting::Timeslices {
            slice_target: 0.95,
            slice: Duration::from_secs(60),
        };
        assert_eq!(t.units(95.0, 100.0), [1.0, 1.0]);
        assert_eq!(t.units(94.0, 100.0), [0.0, 1.0]);
        assert_eq!(t.units(0.0, 0.0), [0.0, 0.0], "a slice without events");
        let r = Budgeting::RatioTimeslices {
            slice: Duration::from_secs(60),
        };
        assert_eq!(r.units(3.0, 4.0), [0.75, 1.0]);
    }
}

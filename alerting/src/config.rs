//! The `[alerting]` section of smolder's TOML configuration: receivers, the
//! routing tree, inhibition rules, maintenance windows, scaling targets and
//! delivery settings.
//!
//! [`AlertingConfig::validate`] checks everything that TOML's types cannot
//! (matchers, references between sections, templates, time zones) and names
//! the field of every problem, e.g.
//! `alerting.route.routes[1].receiver: no receiver named "pager"`.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use smolder_slo::model::Window;

use crate::matchers::Matchers;
use crate::receivers::config::{HttpUrl, names};
pub use crate::receivers::config::{ReceiverConfig, Receivers};
use smolder_common::Tenant;
use smolder_common::config::{Problems, Section as _};

/// The end of `smolder config defaults`: examples of the routing tree,
/// receivers and the other lists of `[alerting]`, commented out (an example
/// says more than empty lists would).
pub const EXAMPLE: &str = r#"# Examples of the lists above (uncomment and adapt):
#
# [alerting.route]
# receiver = "team-chat"
# group_by = ["slo", "slo_group", "severity"]
# group_wait = "0s"
# group_interval = "30s"
# repeat_interval = "4h"
# [[alerting.route.routes]]
# matchers = ['severity="page"']
# receiver = "pagerduty"
# continue = true
#
# [[alerting.receivers]]
# name = "team-chat"
# type = "slack"          # webhook, alertmanager, slack, mattermost, teams,
#                         # discord, google_chat, pagerduty, email
# url = "https://hooks.slack.com/services/…"
# [[alerting.receivers]]
# name = "pagerduty"
# type = "pagerduty"
# routing_key = "…"
#
# [[alerting.inhibit_rules]]          # this one is the default
# source_matchers = ['severity="page"']
# target_matchers = ['severity="ticket"']
# equal = ["slo", "slo_group"]
#
# [[alerting.maintenance_windows]]
# name = "saturday deploys"
# matchers = ['service="checkout"']
# weekdays = ["sat"]
# start = "02:00"
# duration = "2h"
# time_zone = "Europe/Berlin"
#
# [[alerting.reports]]                 # mailed when each period ends
# name = "payments monthly"
# period = "month"                    # week, month or quarter
# receivers = ["team-mail"]           # email receivers
# by = "service"                      # service, team or tenant
# team = "payments"
# time_zone = "Europe/Berlin"
# tenant = "acme"                     # whose SLOs (default: the default tenant's)
#
# [[alerting.scaling]]
# name = "checkout-hpa"
# url = "https://scaler.example.com/hook"
# secret = "whsec_…"
# matchers = ['slo="checkout-availability"']
# scale_down_below = 0.8
# cooldown = "5m"
#
# [[alerting.scaling]]                # driven by the burn rate, not a page
# name = "checkout-burn"
# url = "https://scaler.example.com/hook"
# matchers = ['slo="checkout-availability"']
# scale_up_at = 1.5                   # burn rate over `window`
# window = "5m"
# scale_down_below = 0.8
# cooldown = "2m30s"
"#;

smolder_common::config_section! {
    /// Alerting (README, "Alerting"): receivers, the routing tree,
    /// inhibition, maintenance windows, scaling targets and delivery. Without
    /// a route, alerts are evaluated and listed (GET /api/v1/alerts) but not
    /// sent. This section is re-read on SIGHUP and POST /-/reload; a file with
    /// problems is refused with the field named and the running configuration
    /// stays.
    pub struct AlertingConfig {
        /// Base URL of smolder's web UI, for links in alerts (unset: the HTTP
        /// API's address).
        pub external_url: Option<String> = None,
        /// How long an alert keeps firing after its condition stops holding,
        /// so a burn rate wavering around its threshold does not resolve and
        /// re-fire.
        #[serde(with = "humantime_serde")]
        pub keep_firing_for: Duration = Duration::from_secs(300),
        /// An alert that starts firing for the flap_count-th time within
        /// flap_window is flapping: it is marked so, and resolves only after
        /// its condition has not held for a whole flap_window, so its
        /// receivers hear of it at most flap_count times per window.
        #[serde(with = "humantime_serde")]
        pub flap_window: Duration = Duration::from_secs(3600),
        /// Firings within flap_window that make an alert flapping (0 turns
        /// the detection off).
        pub flap_count: usize = 3,
        /// How many example bad traces an alert carries (0 turns the examples
        /// and the cause hints off).
        pub examples: usize = 3,
        /// How long the burn-rate chart link of a notification
        /// (burn_chart_url, for chat receivers) opens without a token;
        /// 0s leaves the links out (mails still carry their charts).
        #[serde(with = "humantime_serde")]
        pub chart_link_ttl: Duration = Duration::from_secs(7 * 86_400),
        /// The routing tree; without it every alert goes nowhere (alerts are
        /// still evaluated and listed).
        pub route: Option<Route> = None,
        /// Receivers, referenced by name from routes.
        pub receivers: Receivers = Receivers::default(),
        /// Inhibition rules; unset: a firing `page` alert inhibits the
        /// `ticket` alerts of the same SLO instance. An empty list turns
        /// inhibition off.
        pub inhibit_rules: Option<Vec<InhibitRule>> = None,
        /// Recurring silences.
        pub maintenance_windows: Vec<MaintenanceWindow> = Vec::new(),
        /// Autoscaler webhooks.
        pub scaling: Vec<ScalingTarget> = Vec::new(),
        /// SLO reports mailed when each week, month or quarter ends.
        pub reports: Vec<ReportSchedule> = Vec::new(),
        /// The longest a silence may last; a longer one is a mistake, or an
        /// attack on the pages.
        #[serde(with = "humantime_serde")]
        pub max_silence: Duration = Duration::from_secs(366 * 86_400),
        /// Retries, timeouts and the dead-letter age.
        pub delivery: DeliveryConfig = DeliveryConfig::default(),
    }
    validate(self, problems) {
        if let Err(found) = self.check() {
            problems.extend(found);
        }
    }
}

/// An SLO report mailed to email receivers when each period ends (the
/// report of the period that just ended; see [`crate::report`]).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ReportSchedule {
    /// Its name (the mail's subject names it).
    pub name: String,
    /// `week`, `month` (default) or `quarter`.
    #[serde(default)]
    pub period: crate::report::Span,
    /// Email receivers, by name.
    pub receivers: Vec<String>,
    /// `service` (default), `team` or `tenant`.
    #[serde(default)]
    pub by: crate::report::GroupBy,
    /// Only this service's SLOs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// Only SLOs with this `team` label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    /// The calendar's time zone (default UTC).
    #[serde(default = "utc")]
    pub time_zone: String,
    /// Whose SLOs it reports (default: the default tenant's).
    #[serde(default, skip_serializing_if = "Tenant::is_default")]
    pub tenant: Tenant,
}

fn utc() -> String {
    "UTC".to_string()
}

/// A node of the routing tree. The root matches every alert; a child takes an
/// alert when its matchers match, and the first matching child wins unless it
/// says `continue = true`. Unset grouping settings are inherited.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Route {
    /// Receiver of the alerts this node takes (inherited when unset).
    pub receiver: Option<String>,
    /// Label matchers (`severity="page"`, `slo=~"checkout-.*"`), all of which
    /// must match.
    pub matchers: Vec<String>,
    /// Go on to the next sibling after this node matched.
    #[serde(rename = "continue")]
    pub continue_: bool,
    /// Labels that split alerts into notification groups (default `slo`,
    /// `slo_group`, `severity`: pages and tickets of an SLO instance are
    /// notified apart); `["..."]` groups by all labels.
    pub group_by: Option<Vec<String>>,
    /// Wait before the first notification of a new group (default 0s).
    #[serde(with = "humantime_serde")]
    pub group_wait: Option<Duration>,
    /// Wait between notifications of a group that changed (default 30s).
    #[serde(with = "humantime_serde")]
    pub group_interval: Option<Duration>,
    /// Re-send an unchanged firing group after this long (default 4h).
    #[serde(with = "humantime_serde")]
    pub repeat_interval: Option<Duration>,
    /// Child routes.
    pub routes: Vec<Route>,
}

/// Suppresses target alerts while a source alert fires.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct InhibitRule {
    /// Matchers a firing alert must meet to inhibit.
    pub source_matchers: Vec<String>,
    /// Matchers of the alerts it inhibits.
    pub target_matchers: Vec<String>,
    /// Labels whose values must be equal in both.
    pub equal: Vec<String>,
}

/// A recurring silence: every `weekdays` (all days when empty) from `start`
/// for `duration`, in `time_zone`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MaintenanceWindow {
    /// Name shown on the alerts it silences.
    pub name: String,
    /// Matchers of the alerts it silences.
    pub matchers: Vec<String>,
    /// `mon` … `sun`; empty means every day.
    pub weekdays: Vec<String>,
    /// Local start time, `HH:MM`.
    pub start: String,
    /// Length of the window.
    #[serde(with = "humantime_serde")]
    pub duration: Option<Duration>,
    /// IANA time zone (default UTC).
    pub time_zone: Option<String>,
}

/// An autoscaler asked to scale up — while a fast-burn alert fires, or, with
/// `scale_up_at`, as soon as the burn rate over `window` reaches it — and to
/// scale back once the burn rate stayed below `scale_down_below` for
/// `cooldown`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScalingTarget {
    /// Name of the target.
    pub name: String,
    /// URL the signed scaling webhook is POSTed to.
    pub url: String,
    /// Standard Webhooks secret (`whsec_…`); a string, `{ file = … }` or
    /// `{ env = … }`.
    pub secret: Option<smolder_common::secret::Secret>,
    /// Extra HTTP headers; values are secrets (a string, `{ file = … }` or
    /// `{ env = … }`).
    pub headers: BTreeMap<String, smolder_common::secret::Secret>,
    /// Which SLOs' alerts drive this target (label matchers; all SLOs when
    /// empty).
    pub matchers: Vec<String>,
    /// Severity of the alerts that scale up (default `page`).
    pub severity: Option<String>,
    /// Burn rate over `window` at which to scale up without waiting for an
    /// alert (e.g. 1.5); unset, an alert of `severity` firing scales up.
    pub scale_up_at: Option<f64>,
    /// Window of the burn rate that decides (needed with `scale_up_at`;
    /// otherwise the short window of the first condition of `severity`).
    #[serde(with = "humantime_serde")]
    pub window: Option<Duration>,
    /// Burn rate under which scaling back may start (default 0.8).
    pub scale_down_below: Option<f64>,
    /// How long the burn rate must stay under `scale_down_below` (default 5m).
    #[serde(with = "humantime_serde")]
    pub cooldown: Option<Duration>,
    /// Per-SLO overrides of `scale_up_at`, `scale_down_below` and `cooldown`.
    pub slos: BTreeMap<String, ScalingOverride>,
}

/// Per-SLO settings of a scaling target.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScalingOverride {
    /// Burn rate at which to scale up (a burn-driven target's).
    pub scale_up_at: Option<f64>,
    /// Burn rate under which scaling back may start.
    pub scale_down_below: Option<f64>,
    /// How long the burn rate must stay low.
    #[serde(with = "humantime_serde")]
    pub cooldown: Option<Duration>,
}

/// A scaling target's thresholds for one SLO.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScalingSettings {
    /// Burn rate at which to scale up; `None`: scale up on an alert.
    pub scale_up_at: Option<f64>,
    /// Burn rate under which scaling back may start.
    pub scale_down_below: f64,
    /// How long the burn rate must stay under `scale_down_below`.
    pub cooldown: Duration,
}

smolder_common::config_section! {
    /// Delivery of notifications: retries, timeouts and the dead-letter age.
    pub struct DeliveryConfig {
        /// First retry delay; doubles with each attempt, with jitter.
        #[serde(with = "humantime_serde")]
        pub initial_backoff: Duration = Duration::from_secs(1),
        /// Longest retry delay.
        #[serde(with = "humantime_serde")]
        pub max_backoff: Duration = Duration::from_secs(60),
        /// After this long without success a notification is dead-lettered.
        #[serde(with = "humantime_serde")]
        pub max_retry_age: Duration = Duration::from_secs(6 * 3600),
        /// Timeout of one attempt (a receiver's `timeout` overrides it).
        #[serde(with = "humantime_serde")]
        pub timeout: Duration = Duration::from_secs(10),
    }
    validate(self, problems) {
        problems.check(
            self.max_backoff >= self.initial_backoff,
            "max_backoff",
            "must not be shorter than initial_backoff",
        );
        problems.check(!self.timeout.is_zero(), "timeout", "must be longer than 0s");
    }
}

/// A configuration problem: the field and what is wrong with it.
pub use smolder_common::config::Problem as ConfigProblem;

impl ScalingTarget {
    /// The thresholds for one SLO: its overrides, else the target's, else
    /// the defaults (scale back under 0.8 for 5 minutes).
    pub fn settings_for(&self, slo: &str) -> ScalingSettings {
        let o = self.slos.get(slo);
        ScalingSettings {
            scale_up_at: o.and_then(|o| o.scale_up_at).or(self.scale_up_at),
            scale_down_below: o
                .and_then(|o| o.scale_down_below)
                .or(self.scale_down_below)
                .unwrap_or(0.8),
            cooldown: o
                .and_then(|o| o.cooldown)
                .or(self.cooldown)
                .unwrap_or(Duration::from_secs(300)),
        }
    }

    /// The window of the burn rate that decides, when the target names one.
    pub fn window(&self) -> Option<Window> {
        self.window.map(Window)
    }
}

/// Receiver name under which a scaling target's webhooks go through the
/// outbox.
pub fn scaling_receiver(target: &str) -> String {
    format!("scaling/{target}")
}

impl AlertingConfig {
    /// The alert lifecycle's options; links in alerts go to
    /// `default_external_url` unless `external_url` is set.
    pub fn lifecycle_options(&self, default_external_url: &str) -> crate::alert::LifecycleOptions {
        crate::alert::LifecycleOptions {
            keep_firing_for: self.keep_firing_for,
            flap_window: self.flap_window,
            flap_count: self.flap_count,
            external_url: self
                .external_url
                .clone()
                .unwrap_or_else(|| default_external_url.to_string()),
            skip_annotations: false,
        }
    }

    /// Checks what TOML's types cannot; every problem names its field.
    pub fn check(&self) -> Result<(), Vec<ConfigProblem>> {
        let mut problems = Vec::new();
        let mut p =
            |field: String, message: String| problems.push(ConfigProblem { field, message });
        let mut seen = BTreeSet::new();
        for (i, (name, found)) in self.receivers.checked().enumerate() {
            let at = format!("alerting.receivers[{i}]");
            match name {
                Some(name) if name.trim().is_empty() => {
                    p(format!("{at}.name"), "must not be empty".into());
                }
                Some(name) if !seen.insert(name) => {
                    p(
                        format!("{at}.name"),
                        format!("receiver {name:?} is defined twice"),
                    );
                }
                _ => {}
            }
            for (field, message) in found {
                let field = if field.is_empty() {
                    at.clone()
                } else {
                    format!("{at}.{field}")
                };
                p(field, message);
            }
        }
        let names = names(&self.receivers);
        if let Some(route) = &self.route {
            if route.receiver.is_none() {
                p(
                    "alerting.route.receiver".into(),
                    "the root route needs a receiver".into(),
                );
            }
            if !route.matchers.is_empty() {
                p(
                    "alerting.route.matchers".into(),
                    "the root route matches every alert and takes no matchers".into(),
                );
            }
            check_route(route, "alerting.route", &names, &mut p);
        }
        for (i, rule) in self.inhibit_rules.iter().flatten().enumerate() {
            let at = format!("alerting.inhibit_rules[{i}]");
            check_matchers(
                &rule.source_matchers,
                &format!("{at}.source_matchers"),
                &mut p,
            );
            check_matchers(
                &rule.target_matchers,
                &format!("{at}.target_matchers"),
                &mut p,
            );
        }
        for (i, w) in self.maintenance_windows.iter().enumerate() {
            let at = format!("alerting.maintenance_windows[{i}]");
            if let Err(e) = crate::silence::Recurring::from_config(w) {
                p(format!("{at}.{}", e.field), e.message);
            }
            if w.matchers.is_empty() {
                p(
                    format!("{at}.matchers"),
                    "needs at least one matcher".into(),
                );
            }
            check_matchers(&w.matchers, &format!("{at}.matchers"), &mut p);
        }
        let mut targets = BTreeSet::new();
        for (i, t) in self.scaling.iter().enumerate() {
            let at = format!("alerting.scaling[{i}]");
            if t.name.trim().is_empty() {
                p(format!("{at}.name"), "must not be empty".into());
            } else if !targets.insert(t.name.as_str()) {
                p(
                    format!("{at}.name"),
                    format!("scaling target {:?} is defined twice", t.name),
                );
            }
            if let Err(e) = check_url(&t.url) {
                p(format!("{at}.url"), e);
            }
            if let Some(s) = &t.secret
                && let Err(e) = crate::sign::Signer::new(s.expose())
            {
                p(format!("{at}.secret"), e);
            }
            check_matchers(&t.matchers, &format!("{at}.matchers"), &mut p);
            if let Some(w) = t.window
                && w < Duration::from_secs(60)
            {
                p(
                    format!("{at}.window"),
                    format!(
                        "must be at least 1m (burn rates are kept per minute), not {}",
                        humantime::format_duration(w)
                    ),
                );
            }
            let burn_driven =
                t.scale_up_at.is_some() || t.slos.values().any(|o| o.scale_up_at.is_some());
            if burn_driven && t.window.is_none() {
                p(
                    format!("{at}.window"),
                    "is needed with scale_up_at: the burn rate over which window decides (e.g. \"5m\")"
                        .into(),
                );
            }
            let field = |slo: &str, name: &str| {
                if slo.is_empty() {
                    format!("{at}.{name}")
                } else {
                    format!("{at}.slos.{slo}.{name}")
                }
            };
            for slo in std::iter::once("").chain(t.slos.keys().map(String::as_str)) {
                let o = t.slos.get(slo);
                let (down, up) = if slo.is_empty() {
                    (t.scale_down_below, t.scale_up_at)
                } else {
                    (
                        o.and_then(|o| o.scale_down_below),
                        o.and_then(|o| o.scale_up_at),
                    )
                };
                if let Some(v) = down
                    && !(v.is_finite() && v >= 0.0)
                {
                    p(
                        field(slo, "scale_down_below"),
                        format!("must be a burn rate of 0 or more, not {v}"),
                    );
                }
                if let Some(v) = up {
                    let below = t.settings_for(slo).scale_down_below;
                    if !(v.is_finite() && v > 0.0) {
                        p(
                            field(slo, "scale_up_at"),
                            format!("must be a burn rate above 0, not {v}"),
                        );
                    } else if v <= below {
                        p(
                            field(slo, "scale_up_at"),
                            format!(
                                "must be above scale_down_below ({below}), or the target would be asked to scale up and back in turns"
                            ),
                        );
                    }
                }
            }
        }
        let mut reports = BTreeSet::new();
        for (i, r) in self.reports.iter().enumerate() {
            let at = format!("alerting.reports[{i}]");
            if r.name.trim().is_empty() {
                p(format!("{at}.name"), "must not be empty".into());
            } else if !reports.insert(r.name.as_str()) {
                p(
                    format!("{at}.name"),
                    format!("report {:?} is defined twice", r.name),
                );
            }
            if r.receivers.is_empty() {
                p(
                    format!("{at}.receivers"),
                    "needs at least one email receiver".into(),
                );
            }
            for name in &r.receivers {
                match self.receivers.iter().find(|x| x.name == *name) {
                    None => p(
                        format!("{at}.receivers"),
                        format!("no receiver named {name:?}"),
                    ),
                    Some(x) if !matches!(x.kind, crate::receivers::config::Kind::Email(_)) => p(
                        format!("{at}.receivers"),
                        format!("{name:?} is not an email receiver: reports are mailed"),
                    ),
                    Some(_) => {}
                }
            }
            if r.time_zone.parse::<chrono_tz::Tz>().is_err() {
                p(
                    format!("{at}.time_zone"),
                    format!("{:?} is not an IANA time zone", r.time_zone),
                );
            }
        }
        if let Some(url) = &self.external_url
            && let Err(e) = check_url(url)
        {
            p("alerting.external_url".into(), e);
        }
        if self.max_silence.is_zero() {
            p("alerting.max_silence".into(), "must be positive".into());
        }
        let mut delivery = Problems::new("alerting.delivery");
        self.delivery.validate(&mut delivery);
        problems.extend(delivery.into_vec());
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }
}

fn check_route(
    route: &Route,
    at: &str,
    receivers: &BTreeSet<&str>,
    p: &mut impl FnMut(String, String),
) {
    if let Some(r) = &route.receiver
        && !receivers.contains(r.as_str())
    {
        p(format!("{at}.receiver"), format!("no receiver named {r:?}"));
    }
    check_matchers(&route.matchers, &format!("{at}.matchers"), p);
    for (field, d) in [
        ("group_interval", route.group_interval),
        ("repeat_interval", route.repeat_interval),
    ] {
        if d.is_some_and(|d| d.is_zero()) {
            p(format!("{at}.{field}"), "must be longer than 0s".into());
        }
    }
    for (i, child) in route.routes.iter().enumerate() {
        check_route(child, &format!("{at}.routes[{i}]"), receivers, p);
    }
}

fn check_matchers(matchers: &[String], at: &str, p: &mut impl FnMut(String, String)) {
    for (i, m) in matchers.iter().enumerate() {
        if let Err(e) = Matchers::parse(std::slice::from_ref(m)) {
            p(format!("{at}[{i}]"), e);
        }
    }
}

fn check_url(url: &str) -> Result<(), String> {
    HttpUrl::new(url).map(drop)
}

impl Route {
    /// The default grouping labels.
    pub const DEFAULT_GROUP_BY: [&'static str; 3] = ["slo", "slo_group", "severity"];
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> AlertingConfig {
        toml::from_str(text).expect("TOML")
    }

    #[test]
    fn problems_name_their_field() {
        let c = parse(
            r##"
            [route]
            receiver = "ops"
            [[route.routes]]
            matchers = ['severity="page"']
            receiver = "pager"
            [[route.routes]]
            matchers = ['severity=~"(page"']
            [[receivers]]
            name = "ops"
            type = "slack"
            [[receivers]]
            name = "mail"
            type = "email"
            smtp = "localhost"
            from = "not an address"
            to = ["sre@example.com"]
            channel = "#x"
            "##,
        );
        let problems = c.check().unwrap_err();
        let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert!(
            text.contains(
                &"alerting.receivers[0].url: is required for slack receivers".to_string()
            ),
            "{text:?}"
        );
        assert!(
            text.iter().any(
                |t| t.starts_with("alerting.receivers[1].smtp: \"localhost\" is not host:port")
            ),
            "{text:?}"
        );
        assert!(
            text.iter()
                .any(|t| t.starts_with("alerting.receivers[1].from: ")),
            "{text:?}"
        );
        assert!(
            text.contains(
                &"alerting.receivers[1].channel: is not a setting of email receivers".to_string()
            ),
            "{text:?}"
        );
        assert!(
            text.contains(
                &"alerting.route.routes[0].receiver: no receiver named \"pager\"".to_string()
            ),
            "{text:?}"
        );
        assert!(
            text.iter()
                .any(|t| t.starts_with("alerting.route.routes[1].matchers[0]: ")),
            "{text:?}"
        );
    }

    #[test]
    fn unknown_fields_are_refused_with_their_path() {
        let c = parse("[[receivers]]\nname='a'\ntype='webhook'\nurl='http://x'\nsecrt='x'");
        let problems: Vec<String> = c
            .check()
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            problems,
            ["alerting.receivers[0].secrt: is not a setting of webhook receivers"]
        );
        let err = toml::from_str::<AlertingConfig>("[route]\nreceivr = 'x'")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `receivr`"), "{err}");
    }

    #[test]
    fn a_burn_driven_scaling_target_needs_a_window_and_a_gap_between_its_thresholds() {
        let problems = |text: &str| -> Vec<String> {
            parse(text)
                .check()
                .err()
                .map(|p| p.iter().map(ToString::to_string).collect())
                .unwrap_or_default()
        };
        let target = "[[scaling]]\nname = 'hpa'\nurl = 'http://scaler:8080/hook'\n";
        assert_eq!(
            problems(&format!(
                "{target}scale_up_at = 1.5\nwindow = '5m'\ncooldown = '2m30s'"
            )),
            Vec::<String>::new()
        );
        assert_eq!(
            problems(&format!("{target}scale_up_at = 1.5")),
            [
                "alerting.scaling[0].window: is needed with scale_up_at: the burn rate over which window decides (e.g. \"5m\")"
            ]
        );
        assert_eq!(
            problems(&format!("{target}scale_up_at = 0.8\nwindow = '5m'")),
            [
                "alerting.scaling[0].scale_up_at: must be above scale_down_below (0.8), or the target would be asked to scale up and back in turns"
            ]
        );
        assert_eq!(
            problems(&format!(
                "{target}scale_up_at = 2.0\nwindow = '30s'\n[scaling.slos.checkout]\nscale_up_at = 0.5\nscale_down_below = 1.0"
            )),
            [
                "alerting.scaling[0].window: must be at least 1m (burn rates are kept per minute), not 30s",
                "alerting.scaling[0].slos.checkout.scale_up_at: must be above scale_down_below (1), or the target would be asked to scale up and back in turns",
            ]
        );
    }
}

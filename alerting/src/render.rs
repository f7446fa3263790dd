//! Text of notifications, rendered with minijinja templates: the defaults
//! below, or a receiver's own `template`.
//!
//! A template sees: `status` (`firing`/`resolved`), `receiver`, `group_key`,
//! `group_labels`, `common_labels`, `common_annotations`, `external_url`,
//! `title`, `alerts`, `firing` and `resolved` (lists of alerts), and for
//! scaling webhooks `scaling`. Each alert has `status`, `labels`,
//! `annotations`, `starts_at`, `ends_at` (RFC 3339), `fingerprint`, `slo`,
//! `values` (`long_burn_rate`, `short_burn_rate`, `factor`,
//! `error_budget_remaining`, `sli`, `objective`), `examples` and `hints`.

use std::sync::LazyLock;

use chrono::SecondsFormat;
use minijinja::{AutoEscape, Environment, context};
use serde::Serialize;

use crate::alert::{Alert, Labels, State};
use crate::notification::Notification;

/// Title of a notification: `[FIRING:2] checkout-availability (page)`.
const TITLE: &str = "[{{ status|upper }}{% if status == 'firing' %}:{{ firing|length }}{% endif %}] \
{%- if group_labels.slo %} {{ group_labels.slo }}{% if group_labels.slo_group %} [{{ group_labels.slo_group }}]{% endif %}\
{%- if group_labels.severity %} ({{ group_labels.severity }}){% endif %}\
{%- else %}{% for k, v in group_labels|items %} {{ k }}={{ v }}{% endfor %}{% endif %}";

/// Plain text body (chat messages, mail text part).
const TEXT: &str = "{% for a in firing %}🔥 {{ a.annotations.summary }}
{{ a.annotations.description }}
{%- if a.annotations.cause_hint %}
Over-represented among bad events: {{ a.annotations.cause_hint }}{% endif %}
{%- if a.examples %}
Example traces: {% for t in a.examples %}{{ external_url }}/traces/{{ t }}{% if not loop.last %} {% endif %}{% endfor %}{% endif %}
SLO: {{ a.annotations.slo_url }}
{%- if a.annotations.burn_chart_url %}
Burn-rate chart: {{ a.annotations.burn_chart_url }}{% endif %}
{%- if a.annotations.runbook_url %}
Runbook: {{ a.annotations.runbook_url }}{% endif %}
{% endfor %}{% for a in resolved %}✅ Resolved: {{ a.annotations.summary }}
SLO: {{ a.annotations.slo_url }}
{% endfor %}";

/// HTML body of mails.
const HTML: &str = "<html><body style=\"font-family:sans-serif\">
<h2>{{ title }}</h2>
{% for a in firing %}<div style=\"border-left:4px solid #c62828;padding-left:8px;margin-bottom:12px\">
<p><strong>{{ a.annotations.summary }}</strong></p>
<p>{{ a.annotations.description }}</p>
{% if a.annotations.cause_hint %}<p>Over-represented among bad events: <code>{{ a.annotations.cause_hint }}</code></p>{% endif %}
{% if a.examples %}<p>Example traces: {% for t in a.examples %}<a href=\"{{ external_url }}/traces/{{ t }}\">{{ t[:8] }}</a> {% endfor %}</p>{% endif %}
{% if a.fingerprint in inline_charts %}<p><img src=\"cid:chart-{{ a.fingerprint }}@smolder\" alt=\"Burn rates and error budget around the alert\" width=\"720\" style=\"max-width:100%\"></p>
{% elif a.annotations.burn_chart_url %}<p><a href=\"{{ a.annotations.burn_chart_url }}\">Burn-rate chart</a></p>
{% endif %}<p><a href=\"{{ a.annotations.slo_url }}\">Open the SLO</a>{% if a.annotations.runbook_url %} · <a href=\"{{ a.annotations.runbook_url }}\">Runbook</a>{% endif %}</p>
</div>{% endfor %}
{% for a in resolved %}<div style=\"border-left:4px solid #2e7d32;padding-left:8px;margin-bottom:12px\">
<p><strong>Resolved:</strong> {{ a.annotations.summary }}</p>
{% if a.fingerprint in inline_charts %}<p><img src=\"cid:chart-{{ a.fingerprint }}@smolder\" alt=\"Burn rates and error budget around the alert\" width=\"720\" style=\"max-width:100%\"></p>
{% endif %}<p><a href=\"{{ a.annotations.slo_url }}\">Open the SLO</a></p>
</div>{% endfor %}
</body></html>";

/// HTML of a scheduled report mail.
const REPORT_HTML: &str = "<html><body style=\"font-family:sans-serif\">
<h2>{{ subject }}</h2>
<p>{{ period }}{% if not complete %} (in progress){% endif %}</p>
{% for g in groups %}<h3>{{ g.name }}: {{ g.met }} of {{ g.slos }} SLOs met, {{ g.incidents }} incidents</h3>
<table cellpadding=\"4\" style=\"border-collapse:collapse\">
<tr style=\"text-align:left;border-bottom:1px solid #ccc\"><th>SLO</th><th>Objective</th><th>SLI</th><th>Budget used</th><th>In violation</th><th>Incidents</th><th>Downtime left</th></tr>
{% for l in g.lines %}<tr style=\"border-bottom:1px solid #eee\"><td><a href=\"{{ external_url }}/slos/{{ l.slo }}\">{{ l.name }}</a></td><td>{{ l.objective }}</td><td style=\"color:{{ l.colour }}\">{{ l.sli }}</td><td>{{ l.budget_used }}</td><td>{{ l.violation }}</td><td>{{ l.incidents }}</td><td>{{ l.downtime_left }}</td></tr>
{% endfor %}</table>
{% for l in g.lines %}{% if l.cid %}<p><img src=\"cid:{{ l.cid }}\" alt=\"Error budget of {{ l.name }} over the period\" width=\"720\" style=\"max-width:100%\"></p>
{% endif %}{% endfor %}{% endfor %}
{% if not groups %}<p>No SLO matches the report.</p>{% endif %}
</body></html>";

static ENV: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = environment();
    env.add_template("report.html", REPORT_HTML)
        .expect("the report template compiles");
    env.add_template("title", TITLE)
        .expect("the title template compiles");
    env.add_template("text", TEXT)
        .expect("the text template compiles");
    env.add_template("mail.html", HTML)
        .expect("the HTML template compiles");
    env
});

/// The auto-escaping of templates whose output is a JSON document (a
/// webhook's `template`).
fn json_escape() -> AutoEscape {
    AutoEscape::Custom(std::borrow::Cow::Borrowed("json"))
}

/// Writes a value into a JSON template. Values come from telemetry (span
/// status messages, attribute values, log bodies in cause hints and
/// annotations), so none may change the document's structure: a string is
/// written as the escaped contents of a JSON string (the template supplies
/// the quotes: `"text": "{{ title }}"`), numbers and booleans as themselves,
/// lists and maps as JSON, nothing for an undefined value; `|tojson` and
/// `|safe` output is written as it is.
fn json_formatter(
    out: &mut minijinja::Output<'_>,
    state: &mut minijinja::State<'_, '_>,
    value: &minijinja::Value,
) -> Result<(), minijinja::Error> {
    use minijinja::value::ValueKind;
    if *state.auto_escape() != json_escape() || value.is_safe() {
        return minijinja::escape_formatter(out, state, value);
    }
    let io = |e: std::fmt::Error| {
        minijinja::Error::new(minijinja::ErrorKind::WriteFailure, "writing the template")
            .with_source(e)
    };
    let text = match value.kind() {
        ValueKind::Undefined | ValueKind::None => String::new(),
        ValueKind::Bool | ValueKind::Number => value.to_string(),
        ValueKind::String => {
            let quoted =
                serde_json::to_string(value.as_str().unwrap_or_default()).unwrap_or_default();
            quoted[1..quoted.len() - 1].to_string()
        }
        _ => serde_json::to_string(value).map_err(|e| {
            minijinja::Error::new(minijinja::ErrorKind::BadSerialization, e.to_string())
        })?,
    };
    out.write_str(&text).map_err(io)
}

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_auto_escape_callback(|name| {
        if name.ends_with(".html") {
            AutoEscape::Html
        } else {
            AutoEscape::None
        }
    });
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Lenient);
    env
}

/// Checks that a receiver's template compiles.
pub fn check_template(source: &str) -> Result<(), String> {
    let mut env = environment();
    env.add_template_owned("custom".to_string(), source.to_string())
        .map_err(|e| format!("the template does not compile: {e:#}"))
}

/// RFC 3339 time of a Unix-ns instant.
pub fn rfc3339(ns: i64) -> String {
    smolder_common::text::rfc3339(ns, SecondsFormat::Millis)
}

/// An alert as templates and JSON payloads see it.
#[derive(Debug, Serialize)]
pub struct AlertView<'a> {
    /// `firing` or `resolved`.
    pub status: &'static str,
    /// Labels.
    pub labels: &'a Labels,
    /// Annotations.
    pub annotations: &'a Labels,
    /// When it started firing.
    pub starts_at: String,
    /// When it resolved; empty while firing.
    pub ends_at: String,
    /// Identity.
    pub fingerprint: &'a str,
    /// The SLO.
    pub slo: &'a str,
    /// The numbers.
    pub values: &'a crate::alert::Values,
    /// Example trace ids.
    pub examples: &'a [String],
    /// Over-represented attribute values.
    pub hints: &'a [crate::alert::Hint],
}

impl<'a> AlertView<'a> {
    /// The view of an alert.
    pub fn of(a: &'a Alert) -> Self {
        Self {
            status: if a.state == State::Resolved {
                "resolved"
            } else {
                "firing"
            },
            labels: &a.labels,
            annotations: &a.annotations,
            starts_at: rfc3339(a.fired_at.unwrap_or(a.active_since)),
            ends_at: a.resolved_at.map(rfc3339).unwrap_or_default(),
            fingerprint: &a.fingerprint,
            slo: &a.slo,
            values: &a.values,
            examples: &a.examples,
            hints: &a.hints,
        }
    }
}

fn ser<T: Serialize>(x: T) -> minijinja::Value {
    minijinja::Value::from(minijinja::value::Serde(x))
}

fn ctx(n: &Notification) -> minijinja::Value {
    let firing: Vec<AlertView<'_>> = n.firing().map(AlertView::of).collect();
    let resolved: Vec<AlertView<'_>> = n.resolved().map(AlertView::of).collect();
    let alerts: Vec<AlertView<'_>> = n.alerts.iter().map(AlertView::of).collect();
    let base = context! {
        status => &n.status,
        receiver => &n.receiver,
        group_key => &n.group_key,
        group_labels => &n.group_labels,
        common_labels => n.common_labels(),
        common_annotations => n.common_annotations(),
        external_url => n.external_url.trim_end_matches('/'),
        alerts => ser(&alerts),
        firing => ser(&firing),
        resolved => ser(&resolved),
        scaling => ser(&n.scaling),
    };
    let title = ENV
        .get_template("title")
        .and_then(|t| t.render(&base))
        .unwrap_or_default();
    context! { title => title, ..base }
}

/// The rendered texts of a notification.
#[derive(Debug, Clone)]
pub struct Texts {
    /// One-line title.
    pub title: String,
    /// Plain text body (the receiver's template when it has one).
    pub text: String,
}

/// Renders the title and text (with the receiver's template, if any).
pub fn texts(n: &Notification, template: Option<&str>) -> Result<Texts, String> {
    let ctx = ctx(n);
    let title = ENV
        .get_template("title")
        .and_then(|t| t.render(&ctx))
        .map_err(|e| format!("rendering the title: {e:#}"))?;
    let text = match template {
        Some(src) => render_custom(src, &ctx)?,
        None => ENV
            .get_template("text")
            .and_then(|t| t.render(&ctx))
            .map_err(|e| format!("rendering the text: {e:#}"))?,
    };
    Ok(Texts {
        title,
        text: text.trim_end().to_string(),
    })
}

/// Renders the HTML part of a mail, showing the charts of the alerts
/// `inline_charts` names (fingerprints) from the mail's images.
pub fn html(n: &Notification, inline_charts: &[String]) -> Result<String, String> {
    let ctx = context! { inline_charts => inline_charts.to_vec(), ..ctx(n) };
    ENV.get_template("mail.html")
        .and_then(|t| t.render(ctx))
        .map_err(|e| format!("rendering the HTML: {e:#}"))
}

/// Renders a receiver's JSON body template (a webhook's `template`): values
/// are JSON-escaped (see `json_formatter`), and a body that is not valid JSON
/// is an error rather than a request.
pub fn custom(n: &Notification, source: &str) -> Result<String, String> {
    let mut env = environment();
    env.set_auto_escape_callback(|_| json_escape());
    env.set_formatter(json_formatter);
    let body = env
        .render_str(source, ctx(n))
        .map_err(|e| format!("rendering the receiver's template: {e:#}"))?;
    serde_json::from_str::<serde::de::IgnoredAny>(&body)
        .map_err(|e| format!("the receiver's template rendered invalid JSON ({e}): {body}"))?;
    Ok(body)
}

fn render_custom(source: &str, ctx: &minijinja::Value) -> Result<String, String> {
    let env = environment();
    env.render_str(source, ctx)
        .map_err(|e| format!("rendering the receiver's template: {e:#}"))
}

/// A scheduled report's subject, text and HTML from the report's JSON
/// ([`crate::report`]); `charts` names each SLO's chart's Content-ID.
pub fn report(
    name: &str,
    answer: &serde_json::Value,
    charts: &std::collections::BTreeMap<String, String>,
) -> Result<(String, String, String), String> {
    use crate::alert::{human_seconds, percent};
    let p = &answer["period"];
    let day = |v: &serde_json::Value| v.as_str().unwrap_or("").get(..10).unwrap_or("").to_string();
    let kind = p["kind"].as_str().unwrap_or("period");
    let period_text = format!(
        "{}{} from {} to {} ({})",
        kind[..1].to_uppercase(),
        &kind[1..],
        day(&p["start"]),
        day(&p["end"]),
        p["time_zone"].as_str().unwrap_or("UTC")
    );
    let lines = answer["slos"].as_array().cloned().unwrap_or_default();
    let met = lines.iter().filter(|l| l["met"] == true).count();
    let subject = format!(
        "SLO report {name}: {period_text}: {met} of {} SLOs met",
        lines.len()
    );
    let f = |v: &serde_json::Value| v.as_f64().unwrap_or(0.0);
    let mut text = format!("{subject}\n");
    let mut groups = Vec::new();
    for g in answer["groups"].as_array().into_iter().flatten() {
        let gname = g["name"].as_str().unwrap_or("");
        text.push_str(&format!(
            "\n{gname}: {} of {} SLOs met, {} incidents\n",
            g["met"], g["slos"], g["incidents"]
        ));
        let mut rows = Vec::new();
        for l in lines.iter().filter(|l| l["group"] == gname) {
            let slo = l["slo"].as_str().unwrap_or("");
            let incidents = l["incidents"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| format!("{v} {k}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .filter(|t| !t.is_empty())
                .unwrap_or_else(|| "none".to_string());
            let left = f(&l["downtime_left_seconds"]);
            let row = minijinja::context! {
                slo => slo,
                name => l["display_name"].as_str().unwrap_or(slo),
                objective => percent(f(&l["objective"])),
                sli => l["sli"].as_f64().map_or("no events".to_string(), percent),
                colour => if l["met"] == true { "#116329" } else { "#a40e26" },
                budget_used => percent(f(&l["budget_used"])),
                violation => human_seconds(f(&l["time_in_violation_seconds"])),
                incidents => incidents.clone(),
                downtime_left => if left < 0.0 { format!("{} over", human_seconds(-left)) } else { human_seconds(left) },
                cid => charts.get(slo),
            };
            text.push_str(&format!(
                "  {slo}: SLI {} (objective {}), budget used {}, in violation {}, incidents: {incidents}\n",
                l["sli"].as_f64().map_or("no events".to_string(), percent),
                percent(f(&l["objective"])),
                percent(f(&l["budget_used"])),
                human_seconds(f(&l["time_in_violation_seconds"])),
            ));
            rows.push(row);
        }
        groups.push(minijinja::context! {
            name => gname, met => g["met"].as_u64(), slos => g["slos"].as_u64(),
            incidents => g["incidents"].as_u64(), lines => rows,
        });
    }
    let html = ENV
        .get_template("report.html")
        .and_then(|t| {
            t.render(minijinja::context! {
                subject => &subject,
                period => period_text,
                complete => p["complete"].as_bool().unwrap_or(true),
                groups => groups,
                external_url => answer["external_url"].as_str().unwrap_or("").trim_end_matches('/'),
            })
        })
        .map_err(|e| format!("rendering the report: {e:#}"))?;
    Ok((subject, text, html))
}

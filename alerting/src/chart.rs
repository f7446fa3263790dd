//! Burn-rate charts for notifications: a PNG of an alert's burn rates
//! around it, with its threshold, and of the error budget, drawn in the
//! server (plotters into a pixel buffer, with a font compiled in, so no
//! system fonts or browser are needed).
//!
//! A mail carries its charts inline. Chat services cannot take an
//! attachment through a webhook; they fetch images from a URL — with no
//! token. So every alert of a notification gets a link
//! (`burn_chart_url` annotation) to `/api/v1/slos/{id}/chart.png?…` whose
//! query names exactly what to draw (tenant, SLO, group, windows, range)
//! and is signed with HMAC-SHA256 under a key kept in the alert database,
//! with an expiry: the link opens without a token until it expires, and
//! changing any parameter breaks the signature. The key travels with the
//! alert database (`state/` in a bucket), so links outlive a move of the
//! evaluator. With a token, the same route draws any range on request.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use hmac::{KeyInit as _, Mac as _};
use plotters::prelude::*;
use serde::{Deserialize, Serialize};
use smolder_common::Tenant;
use smolder_common::http::ApiError;
use smolder_common::text::parse_time;
use smolder_slo::SloEngines;
use smolder_slo::model::{Window, duration_ns};

use crate::alert::{Alert, State, budget_level_name, group_label};

const WIDTH: u32 = 900;
const HEIGHT: u32 = 440;
/// Points per line: enough for a smooth line at this width.
const POINTS: i64 = 300;
/// The font's name in plotters' registry.
const FONT: &str = "smolder-sans";

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// What a chart shows: one SLO instance over a range, the burn rates over
/// an alert condition's two windows (none for a budget event) and the
/// budget remaining.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChartRequest {
    /// Whose SLO (the default tenant's when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// The instance's values by group-by expression, as JSON; the worst
    /// group when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// The condition's long window (`1h`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub long: Option<String>,
    /// Its short window (`5m`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub short: Option<String>,
    /// Its burn-rate threshold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub factor: Option<f64>,
    /// Start of the range: RFC 3339 or Unix seconds.
    pub from: String,
    /// End of the range.
    pub to: String,
    /// An instant to mark (the alert's firing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<i64>,
    /// A budget level to draw (a budget event's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<f64>,
    /// Unix seconds after which a signed link no longer opens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<i64>,
}

impl ChartRequest {
    /// The chart of an alert as a notification at `now` (Unix ns) shows
    /// it: from a long window (at least an hour; a day for a budget event)
    /// before it fired — the burn that made it — to its resolution, or
    /// `now` while it fires.
    pub fn for_alert(alert: &Alert, now: i64) -> Self {
        const HOUR: i64 = 3_600_000_000_000;
        let l = &alert.labels;
        let at = alert.fired_at.unwrap_or(alert.active_since);
        let long = l.get("long_window").and_then(|w| w.parse::<Window>().ok());
        let before = long.map_or(24 * HOUR, |w| duration_ns(w.0).max(HOUR));
        let end = match alert.state {
            State::Resolved => alert.resolved_at.unwrap_or(now),
            _ => now,
        }
        .max(at + 60_000_000_000);
        Self {
            tenant: l.get(crate::alert::TENANT_LABEL).cloned(),
            group: (!alert.group.is_empty())
                .then(|| serde_json::to_string(&alert.group).unwrap_or_default()),
            long: l.get("long_window").cloned(),
            short: l.get("short_window").cloned(),
            factor: long.map(|_| alert.values.factor),
            from: (at - before).div_euclid(1_000_000_000).to_string(),
            to: end.div_euclid(1_000_000_000).to_string(),
            at: Some(at.div_euclid(1_000_000_000)),
            level: alert.values.budget_level,
            expires: None,
        }
    }

    fn query(&self) -> String {
        serde_urlencoded::to_string(self).expect("a chart request serializes")
    }
}

/// Signs and checks chart links, and draws charts.
pub struct ChartLinks {
    key: Vec<u8>,
    engines: OnceLock<Arc<SloEngines>>,
}

impl std::fmt::Debug for ChartLinks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChartLinks").finish_non_exhaustive()
    }
}

/// Why a signed link is refused.
fn refused(message: impl Into<String>) -> ApiError {
    ApiError::new(smolder_common::http::ErrorCode::PermissionDenied, message)
}

impl ChartLinks {
    /// Links signed with `key`.
    pub fn new(key: Vec<u8>) -> Self {
        Self {
            key,
            engines: OnceLock::new(),
        }
    }

    /// The SLO engines charts are drawn from (set once, by the server).
    pub fn set_engines(&self, engines: Arc<SloEngines>) {
        let _ = self.engines.set(engines);
    }

    /// The SLO engines, once set.
    pub fn engines(&self) -> Option<&Arc<SloEngines>> {
        self.engines.get()
    }

    fn mac(&self, path: &str, query: &str) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(path.as_bytes());
        mac.update(b"?");
        mac.update(query.as_bytes());
        mac
    }

    /// The signed link of a chart of the SLO `slo`, under `external_url`,
    /// opening until `expires` (Unix ns).
    pub fn url(&self, external_url: &str, slo: &str, req: &ChartRequest, expires: i64) -> String {
        let mut req = req.clone();
        req.expires = Some(expires.div_euclid(1_000_000_000));
        let path = chart_path(slo);
        let query = req.query();
        let sig = hex::encode(self.mac(&path, &query).finalize().into_bytes());
        format!(
            "{}{path}?{query}&sig={sig}",
            external_url.trim_end_matches('/')
        )
    }

    /// Checks a signed link's `raw` query (the signature last) for the
    /// chart path `path` at `now` (Unix s): its request, or why not.
    pub fn verify(&self, path: &str, raw: &str, now: i64) -> Result<ChartRequest, ApiError> {
        let (query, sig) = raw
            .rsplit_once("&sig=")
            .ok_or_else(|| refused("sig must be the last parameter of a chart link"))?;
        let sig = hex::decode(sig).map_err(|_| refused("sig is not hexadecimal"))?;
        self.mac(path, query).verify_slice(&sig).map_err(|_| {
            refused(
                "the chart link's signature does not match: it was changed or is not this server's",
            )
        })?;
        let req: ChartRequest = serde_urlencoded::from_str(query)
            .map_err(|e| ApiError::invalid(format!("chart link: {e}")))?;
        match req.expires {
            Some(t) if t >= now => Ok(req),
            Some(t) => Err(refused(format!(
                "the chart link expired at {}",
                crate::render::rfc3339(t.saturating_mul(1_000_000_000))
            ))),
            None => Err(refused("a signed chart link needs expires")),
        }
    }

    /// Draws the chart of `req` for `tenant`'s SLO `slo`.
    pub async fn png(
        &self,
        tenant: &Tenant,
        slo: &str,
        req: &ChartRequest,
    ) -> Result<Vec<u8>, ApiError> {
        let engines = self.engines.get().ok_or_else(|| {
            ApiError::unavailable("the SLO engine is not running in this process")
        })?;
        let chart = chart_data(engines, tenant, slo, req).await?;
        tokio::task::spawn_blocking(move || draw(&chart))
            .await
            .map_err(|e| ApiError::internal("Drawing a chart", e))?
            .map_err(|e| ApiError::internal("Drawing a chart", e))
    }
}

/// The path of an SLO's chart.
pub fn chart_path(slo: &str) -> String {
    let mut id = String::new();
    for b in slo.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            id.push(b as char);
        } else {
            id.push_str(&format!("%{b:02X}"));
        }
    }
    format!("/api/v1/slos/{id}/chart.png")
}

/// Whether a request is for a chart through a signed link (the API lets it
/// through without a token; the handler checks the signature).
pub fn is_signed_chart_link(path: &str, query: Option<&str>) -> bool {
    path.starts_with("/api/v1/slos/")
        && path.ends_with("/chart.png")
        && query.is_some_and(|q| q.contains("&sig=") || q.starts_with("sig="))
}

/// Everything a chart shows, read from the engine.
#[derive(Debug, Clone)]
pub struct Chart {
    /// Top line.
    pub title: String,
    /// Instants (Unix ms).
    pub times: Vec<i64>,
    /// Burn rates by window (`1h`), over `times`.
    pub burn: Vec<(String, Vec<f64>)>,
    /// The condition's threshold.
    pub factor: Option<f64>,
    /// Budget remaining over `times`.
    pub budget: Vec<f64>,
    /// The budget level of a budget event.
    pub level: Option<f64>,
    /// The instant marked (Unix ms).
    pub at: Option<i64>,
    /// Budget exclusions over the range (start, end; Unix ms), shaded.
    pub excluded: Vec<(i64, i64)>,
}

async fn chart_data(
    engines: &SloEngines,
    tenant: &Tenant,
    slo: &str,
    req: &ChartRequest,
) -> Result<Chart, ApiError> {
    let engine = engines
        .get(tenant)
        .ok_or_else(|| ApiError::not_found(format!("no SLO {slo:?}")))?;
    let snap = engine.snapshot();
    let s = smolder_slo::api::find(&snap, slo)?;
    let def = &s.definition;
    let time = |field: &str, v: &str| {
        parse_time(v).map_err(|e| ApiError::invalid(format!("{field}: {e}")))
    };
    let (from, to) = (time("from", &req.from)?, time("to", &req.to)?);
    let (times, _) = smolder_slo::api::series_times(&engine, def, from, to, None, POINTS)?;
    let key = smolder_slo::api::group_key(s, req.group.as_deref())?;
    let evals = engine
        .series(slo, &key, &times)
        .await
        .ok_or_else(|| ApiError::not_found(format!("SLO {slo:?} has no group {key:?}")))?;
    let mut burn = Vec::new();
    for (field, w) in [("long", &req.long), ("short", &req.short)] {
        let Some(w) = w else { continue };
        let window: Window = w
            .parse()
            .map_err(|e| ApiError::invalid(format!("{field}: {e}")))?;
        if evals
            .first()
            .is_some_and(|e| !e.burn_rates.contains_key(&window))
        {
            return Err(ApiError::invalid(format!(
                "{field}: {slo:?} has no alert window {window}"
            )));
        }
        let rates = evals
            .iter()
            .map(|e| e.burn_rates.get(&window).copied().unwrap_or(f64::NAN))
            .collect();
        burn.push((window.to_string(), rates));
    }
    let name = def.display_name.as_deref().unwrap_or(&def.id);
    let group: BTreeMap<String, String> = def
        .group_by
        .iter()
        .cloned()
        .zip(key.iter().cloned())
        .collect();
    let mut title = name.to_string();
    if !group.is_empty() {
        title.push_str(&format!(" [{}]", group_label(&group)));
    }
    match (&req.long, &req.short, req.level) {
        (Some(l), Some(s), _) => title.push_str(&format!(" — burn rate over {l} and {s}")),
        (_, _, Some(level)) => {
            title.push_str(&format!(" — error budget ({})", budget_level_name(level)));
        }
        _ => title.push_str(" — error budget"),
    }
    Ok(Chart {
        title,
        times: times.iter().map(|t| t / 1_000_000).collect(),
        burn,
        factor: req.factor,
        budget: evals.iter().map(|e| e.error_budget_remaining).collect(),
        level: req.level,
        at: req.at.map(|s| s * 1000),
        excluded: engine
            .exclusions_of(slo)
            .map(|x| x.occurrences(from, to.saturating_add(1)))
            .unwrap_or_default()
            .iter()
            .map(|o| (o.start_ns / 1_000_000, o.end_ns / 1_000_000))
            .collect(),
    })
}

fn font() -> Result<(), String> {
    static REGISTERED: OnceLock<Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular())
                .map_err(|_| "the chart font does not load".to_string())
        })
        .clone()
}

const BURN_COLOURS: [RGBColor; 2] = [RGBColor(9, 105, 218), RGBColor(130, 80, 223)];
const RED: RGBColor = RGBColor(207, 34, 46);
const AMBER: RGBColor = RGBColor(191, 135, 0);
/// The shade of budget exclusions (opaque: drawn behind the lines).
const EXCLUDED: RGBColor = RGBColor(236, 228, 250);
const GREY: RGBColor = RGBColor(140, 149, 159);

fn time_label(ms: i64, span_ms: i64) -> String {
    let Some(t) = chrono::DateTime::from_timestamp_millis(ms) else {
        return String::new();
    };
    if span_ms > 2 * 86_400_000 {
        t.format("%b %d %H:%M").to_string()
    } else {
        t.format("%H:%M").to_string()
    }
}

/// The shaded rectangles of the exclusions `ranges` within `(lo, hi)`,
/// from `y.0` to `y.1`.
fn shades(
    ranges: &[(i64, i64)],
    (lo, hi): (i64, i64),
    (y0, y1): (f64, f64),
) -> impl Iterator<Item = Rectangle<(i64, f64)>> + '_ {
    ranges
        .iter()
        .filter(move |&&(a, b)| a < hi && b > lo)
        .map(move |&(a, b)| Rectangle::new([(a.max(lo), y0), (b.min(hi), y1)], EXCLUDED.filled()))
}

/// Draws `c` as a PNG.
pub fn draw(c: &Chart) -> Result<Vec<u8>, String> {
    font()?;
    let mut pixels = vec![255u8; (WIDTH * HEIGHT * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, (WIDTH, HEIGHT)).into_drawing_area();
        let e = |e: DrawingAreaErrorKind<_>| format!("drawing the chart: {e}");
        root.fill(&WHITE).map_err(e)?;
        let root = root
            .titled(&c.title, (FONT, 17).into_font().color(&BLACK))
            .map_err(e)?;
        let (lo, hi) = match (c.times.first(), c.times.last()) {
            (Some(&a), Some(&b)) if b > a => (a, b),
            (Some(&a), _) => (a - 60_000, a + 60_000),
            _ => return Err("no instants to draw".into()),
        };
        let span = hi - lo;
        let (top, bottom) = if c.burn.is_empty() {
            (None, root.clone())
        } else {
            let (t, b) = root.split_vertically(HEIGHT * 58 / 100 - 20);
            (Some(t), b)
        };
        let label = |size: u32| (FONT, size).into_font();
        if let Some(top) = top {
            let peak = c
                .burn
                .iter()
                .flat_map(|(_, v)| v.iter().copied())
                .filter(|v| v.is_finite())
                .fold(c.factor.unwrap_or(1.0), f64::max);
            let mut chart = ChartBuilder::on(&top)
                .margin(8)
                .x_label_area_size(22)
                .y_label_area_size(56)
                .build_cartesian_2d(lo..hi, 0.0..peak * 1.15)
                .map_err(e)?;
            chart
                .configure_mesh()
                .light_line_style(RGBColor(246, 246, 246))
                .x_labels(7)
                .y_labels(5)
                .x_label_formatter(&|t| time_label(*t, span))
                .y_label_formatter(&|v| format!("{v:.1}×"))
                .label_style(label(12))
                .y_desc("burn rate")
                .axis_desc_style(label(12))
                .draw()
                .map_err(e)?;
            chart
                .draw_series(shades(&c.excluded, (lo, hi), (0.0, peak * 1.15)))
                .map_err(e)?;
            for (i, (window, values)) in c.burn.iter().enumerate() {
                let colour = BURN_COLOURS[i % BURN_COLOURS.len()];
                let points = c
                    .times
                    .iter()
                    .zip(values)
                    .filter(|(_, v)| v.is_finite())
                    .map(|(t, v)| (*t, *v));
                chart
                    .draw_series(LineSeries::new(points, colour.stroke_width(2)))
                    .map_err(e)?
                    .label(format!("over {window}"))
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 18, y)], colour.stroke_width(2))
                    });
            }
            if let Some(f) = c.factor {
                chart
                    .draw_series(LineSeries::new([(lo, f), (hi, f)], RED.stroke_width(1)))
                    .map_err(e)?
                    .label(format!("threshold {f:.1}×"))
                    .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], RED));
            }
            if let Some(at) = c.at.filter(|t| (lo..=hi).contains(t)) {
                chart
                    .draw_series(LineSeries::new([(at, 0.0), (at, peak * 1.15)], GREY))
                    .map_err(e)?;
            }
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperLeft)
                .background_style(WHITE.mix(0.85))
                .border_style(GREY)
                .label_font(label(12))
                .draw()
                .map_err(e)?;
        }
        let finite = c.budget.iter().copied().filter(|v| v.is_finite());
        let low = finite.clone().fold(0.0, f64::min).max(-10.0);
        let high = finite.fold(1.0, f64::max);
        let mut chart = ChartBuilder::on(&bottom)
            .margin(8)
            .x_label_area_size(22)
            .y_label_area_size(56)
            .build_cartesian_2d(lo..hi, low - 0.05..high + 0.05)
            .map_err(e)?;
        chart
            .configure_mesh()
            .light_line_style(RGBColor(246, 246, 246))
            .x_labels(7)
            .y_labels(4)
            .x_label_formatter(&|t| time_label(*t, span))
            .y_label_formatter(&|v| format!("{:.0}%", v * 100.0))
            .label_style(label(12))
            .y_desc("budget left")
            .axis_desc_style(label(12))
            .draw()
            .map_err(e)?;
        if c.excluded.iter().any(|&(a, b)| a < hi && b > lo) {
            chart
                .draw_series(shades(&c.excluded, (lo, hi), (low - 0.05, high + 0.05)))
                .map_err(e)?
                .label("excluded (does not count)")
                .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 18, y + 5)], EXCLUDED.filled()));
        }
        let budget = c
            .times
            .iter()
            .zip(&c.budget)
            .filter(|(_, v)| v.is_finite())
            .map(|(t, v)| (*t, v.max(low)));
        chart
            .draw_series(LineSeries::new(
                budget,
                RGBColor(26, 127, 55).stroke_width(2),
            ))
            .map_err(e)?
            .label("error budget remaining")
            .legend(|(x, y)| {
                PathElement::new(
                    vec![(x, y), (x + 18, y)],
                    RGBColor(26, 127, 55).stroke_width(2),
                )
            });
        chart
            .draw_series(LineSeries::new([(lo, 0.0), (hi, 0.0)], RED))
            .map_err(e)?
            .label("spent")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], RED));
        if let Some(level) = c.level.filter(|l| *l > 0.0) {
            chart
                .draw_series(LineSeries::new([(lo, level), (hi, level)], AMBER))
                .map_err(e)?
                .label(format!("level {}", budget_level_name(level)))
                .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], AMBER));
        }
        if let Some(at) = c.at.filter(|t| (lo..=hi).contains(t)) {
            chart
                .draw_series(LineSeries::new([(at, low - 0.05), (at, high + 0.05)], GREY))
                .map_err(e)?
                .label(format!("fired {}", time_label(at, 0)))
                .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], GREY));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(GREY)
            .label_font(label(12))
            .draw()
            .map_err(e)?;
        root.present().map_err(e)?;
    }
    encode_png(&pixels)
}

fn encode_png(rgb: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(64 * 1024);
    {
        let mut encoder = png::Encoder::new(&mut out, WIDTH, HEIGHT);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder
            .write_header()
            .map_err(|e| format!("encoding the chart: {e}"))?;
        writer
            .write_image_data(rgb)
            .map_err(|e| format!("encoding the chart: {e}"))?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    fn request() -> ChartRequest {
        ChartRequest {
            tenant: Some("acme".into()),
            group: Some(r#"{"http_route":"/pay"}"#.into()),
            long: Some("1h".into()),
            short: Some("5m".into()),
            factor: Some(14.4),
            from: "1700000000".into(),
            to: "1700003600".into(),
            at: Some(1_700_003_000),
            level: None,
            expires: None,
        }
    }

    fn path_and_query(url: &str) -> (String, String) {
        let rest = url.strip_prefix("https://smolder.example.com").unwrap();
        let (path, query) = rest.split_once('?').unwrap();
        (path.to_string(), query.to_string())
    }

    #[test]
    fn a_signed_link_opens_until_it_expires_and_not_once_changed() {
        let links = ChartLinks::new(vec![7; 32]);
        let url = links.url(
            "https://smolder.example.com/",
            "checkout availability",
            &request(),
            1_700_100_000 * S,
        );
        let (path, query) = path_and_query(&url);
        assert_eq!(path, "/api/v1/slos/checkout%20availability/chart.png");
        assert!(is_signed_chart_link(&path, Some(&query)));
        let opened = links.verify(&path, &query, 1_700_100_000).unwrap();
        assert_eq!(
            opened,
            ChartRequest {
                expires: Some(1_700_100_000),
                ..request()
            }
        );
        let expired = links.verify(&path, &query, 1_700_100_001).unwrap_err();
        assert!(
            expired.message().contains("expired"),
            "{}",
            expired.message()
        );
        for changed in [
            query.replace("tenant=acme", "tenant=globex"),
            query.replace("from=1700000000", "from=1600000000"),
            query.replace("expires=1700100000", "expires=1800100000"),
        ] {
            let e = links.verify(&path, &changed, 1_700_000_000).unwrap_err();
            assert!(e.message().contains("signature"), "{}", e.message());
        }
        let other_slo = links.verify("/api/v1/slos/other/chart.png", &query, 1_700_000_000);
        assert!(other_slo.is_err());
        let other_key = ChartLinks::new(vec![8; 32]).verify(&path, &query, 1_700_000_000);
        assert!(other_key.is_err());
        assert!(!is_signed_chart_link(&path, Some("from=1&to=2")));
        assert!(!is_signed_chart_link("/api/v1/slos/x", Some("sig=00")));
    }

    #[test]
    fn an_alert_is_charted_from_a_long_window_before_it_fired_to_its_end() {
        let mut alert = crate::receivers::fixture::notification("firing").alerts[0].clone();
        let fired = alert.fired_at.unwrap();
        let req = ChartRequest::for_alert(&alert, fired + 600 * S);
        assert_eq!(req.long.as_deref(), Some("1h"));
        assert_eq!(req.short.as_deref(), Some("5m"));
        assert_eq!(req.factor, Some(14.4));
        assert_eq!(req.from, ((fired - 3600 * S) / S).to_string());
        assert_eq!(req.to, ((fired + 600 * S) / S).to_string());
        assert_eq!(req.at, Some(fired / S));
        alert.state = State::Resolved;
        alert.resolved_at = Some(fired + 1200 * S);
        let req = ChartRequest::for_alert(&alert, fired + 3000 * S);
        assert_eq!(req.to, ((fired + 1200 * S) / S).to_string());
    }

    /// How many pixels of `png` have the colour `rgb`.
    fn count(png: &[u8], rgb: RGBColor) -> usize {
        let decoder = png::Decoder::new(std::io::Cursor::new(png));
        let mut reader = decoder.read_info().unwrap();
        let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut pixels).unwrap();
        assert_eq!((info.width, info.height), (WIDTH, HEIGHT));
        pixels
            .chunks(3)
            .filter(|p| *p == [rgb.0, rgb.1, rgb.2])
            .count()
    }

    #[test]
    fn a_chart_draws_the_burn_rates_the_threshold_and_the_budget() {
        let times: Vec<i64> = (0..120).map(|i| 1_700_000_000_000 + i * 60_000).collect();
        let rising: Vec<f64> = (0..120).map(|i| i as f64 / 5.0).collect();
        let chart = Chart {
            title: "checkout [http_route=/pay] — burn rate over 1h and 5m".into(),
            times: times.clone(),
            burn: vec![
                ("1h".into(), rising.clone()),
                ("5m".into(), rising.iter().map(|r| r * 1.5).collect()),
            ],
            factor: Some(14.4),
            budget: (0..120).map(|i| 1.0 - i as f64 / 100.0).collect(),
            level: Some(0.5),
            at: Some(times[72]),
            excluded: Vec::new(),
        };
        let png = draw(&chart).unwrap();
        assert_eq!(count(&png, EXCLUDED), 0, "no exclusion, no shade");
        assert!(count(&png, BURN_COLOURS[0]) > 300, "the long window's line");
        assert!(
            count(&png, BURN_COLOURS[1]) > 300,
            "the short window's line"
        );
        assert!(count(&png, RED) > 500, "the threshold and the spent line");
        assert!(count(&png, AMBER) > 300, "the budget level");
        assert!(count(&png, RGBColor(26, 127, 55)) > 300, "the budget");
        // A budget event: the budget alone.
        let budget_only = draw(&Chart {
            burn: Vec::new(),
            factor: None,
            ..chart.clone()
        })
        .unwrap();
        assert_eq!(count(&budget_only, BURN_COLOURS[0]), 0);
        assert!(count(&budget_only, AMBER) > 300);
        // An exclusion over a quarter of the range is shaded in both panels.
        let excluded = draw(&Chart {
            excluded: vec![
                (times[10], times[40]),
                (times[0] - 3_600_000, times[0] - 60_000),
            ],
            ..chart
        })
        .unwrap();
        let shaded = count(&excluded, EXCLUDED);
        assert!(
            shaded > (WIDTH * HEIGHT / 4 / 2) as usize && shaded < (WIDTH * HEIGHT / 4) as usize,
            "{shaded} shaded pixels"
        );
    }
}

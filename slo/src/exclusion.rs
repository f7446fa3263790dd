//! Budget exclusions ("status corrections"): time ranges, once or recurring
//! (an RFC 5545 `RRULE` in a time zone), during which an SLO's events do not
//! count — planned maintenance, a known bad data source.
//!
//! An exclusion changes the figures, not the data: the raw buckets stay as
//! they were computed (in the rings and in `slo.db`), and the buckets an
//! exclusion covers are masked where buckets are summed
//! ([`crate::rollup::Excluded`]). So adding one recomputes the SLI, budget
//! and burn rates at once and exactly, for the live engine, charts, reports
//! and backtests alike; removing one gives the old figures back; and
//! `slo_rollups` still shows what was measured, with the masked buckets
//! marked. A silence only mutes notifications; an exclusion is a statement
//! that those events say nothing about the service.
//!
//! Exclusions come from the SLO's OpenSLO annotation
//! [`ANNOTATION`] (a YAML list; they change with the definition) and from
//! `POST /api/v1/slos/{id}/exclusions` (stored in `slo.db` with who made
//! them and when; the audit log records the request). A bucket is excluded
//! when any part of it lies inside an occurrence: ranges are rounded out to
//! whole buckets.

use std::sync::Arc;

use chrono::{DateTime, NaiveDateTime, TimeZone as _};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::rollup::Excluded;

/// The OpenSLO annotation listing an SLO's exclusions (YAML: a list of
/// [`ExclusionSpec`]s).
pub const ANNOTATION: &str = "smolder.dev/exclusions";

/// The longest one occurrence may last.
pub const MAX_LENGTH: std::time::Duration = std::time::Duration::from_secs(400 * 86_400);

/// Exclusions one SLO may have through the API.
pub const MAX_PER_SLO: usize = 200;

/// Occurrences of one rule walked through at most to find those of a range
/// (a rule is walked from its start): an hourly rule reaches 11 years.
const MAX_STEPS: usize = 100_000;

/// An exclusion as written: in the API's body and in the annotation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExclusionSpec {
    /// When it starts (the first occurrence of a recurring one): RFC 3339,
    /// a local date and time in `time_zone` (`2026-11-29T02:00`), or Unix
    /// seconds.
    #[serde(deserialize_with = "text_or_number")]
    pub start: String,
    /// When it ends (the first occurrence's end); or give `duration`.
    #[serde(
        default,
        deserialize_with = "optional_text_or_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub end: Option<String>,
    /// How long each occurrence lasts (`2h`, `30m`); or give `end`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
    /// An RFC 5545 recurrence rule (`FREQ=WEEKLY;BYDAY=SU`), evaluated
    /// from `start` in `time_zone`; none for a one-off exclusion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rrule: Option<String>,
    /// The IANA zone of local times and of the rule (default UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    /// Why the events do not count.
    pub reason: String,
}

fn text_or_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Text(String),
        Number(f64),
    }
    Ok(match Raw::deserialize(d)? {
        Raw::Text(t) => t,
        Raw::Number(n) => n.to_string(),
    })
}

fn optional_text_or_number<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<String>, D::Error> {
    text_or_number(d).map(Some)
}

/// Where an exclusion was made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "source", rename_all = "snake_case")]
pub enum ExclusionOrigin {
    /// The SLO's [`ANNOTATION`]: changed with the definition.
    Annotation,
    /// `POST /api/v1/slos/{id}/exclusions`.
    Api {
        /// The token (or person) that made it.
        created_by: String,
        /// When (RFC 3339).
        created_at: String,
    },
}

/// A checked exclusion.
#[derive(Debug, Clone)]
pub struct Exclusion {
    /// `annotation-N` (N from 1, in the annotation's order), or the number
    /// the API gave it.
    pub id: String,
    /// As written.
    pub spec: ExclusionSpec,
    /// Where it was made.
    pub origin: ExclusionOrigin,
    /// The first occurrence's start, in the exclusion's zone.
    start: DateTime<Tz>,
    /// Each occurrence's length (ns).
    length_ns: i64,
    /// The recurrence, from `start`.
    rule: Option<rrule::RRuleSet>,
}

impl PartialEq for Exclusion {
    fn eq(&self, other: &Self) -> bool {
        (&self.id, &self.spec, &self.origin) == (&other.id, &other.spec, &other.origin)
    }
}

impl Serialize for Exclusion {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct View<'a> {
            id: &'a str,
            #[serde(flatten)]
            origin: &'a ExclusionOrigin,
            start: String,
            end: String,
            duration_seconds: f64,
            rrule: Option<&'a str>,
            time_zone: &'a str,
            reason: &'a str,
        }
        let start_ns = self.start.timestamp_nanos_opt().unwrap_or_default();
        View {
            id: &self.id,
            origin: &self.origin,
            start: self.start.to_rfc3339(),
            end: rfc3339(start_ns.saturating_add(self.length_ns)),
            duration_seconds: self.length_ns as f64 / 1e9,
            rrule: self.rule.as_ref().and(self.spec.rrule.as_deref()),
            time_zone: self.start.timezone().name(),
            reason: &self.spec.reason,
        }
        .serialize(s)
    }
}

fn rfc3339(ns: i64) -> String {
    smolder_common::text::rfc3339(ns, chrono::SecondsFormat::Secs)
}

/// An instant of `field`: RFC 3339 (any offset), Unix seconds, or a local
/// date and time in `tz`.
fn instant(field: &str, text: &str, tz: Tz) -> Result<DateTime<Tz>, String> {
    let text = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&tz));
    }
    if let Ok(secs) = text.parse::<f64>() {
        let ns = secs * 1e9;
        if ns.is_finite() && ns.abs() < 9.2e18 {
            return Ok(tz.timestamp_nanos(ns as i64));
        }
    }
    let local = [
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
    ]
    .iter()
    .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())
    .or_else(|| {
        chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
            .ok()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
    })
    .ok_or_else(|| {
        format!(
            "{field}: {text:?} is not a time (RFC 3339 such as 2026-11-29T02:00:00Z, a local \
                 time such as 2026-11-29T02:00 in time_zone, or Unix seconds)"
        )
    })?;
    tz.from_local_datetime(&local).earliest().ok_or_else(|| {
        format!(
            "{field}: {text} does not exist in {} (the clocks skip it)",
            tz.name()
        )
    })
}

impl Exclusion {
    /// Checks `spec`; the error names the field.
    pub fn new(id: String, spec: ExclusionSpec, origin: ExclusionOrigin) -> Result<Self, String> {
        let reason = spec.reason.trim();
        if reason.is_empty() {
            return Err("reason: say why the events do not count".into());
        }
        if reason.chars().count() > 500 {
            return Err("reason: at most 500 characters".into());
        }
        let tz: Tz = match spec.time_zone.as_deref().map(str::trim) {
            None | Some("") => Tz::UTC,
            Some(name) => name.parse().map_err(|_| {
                format!("time_zone: {name:?} is not an IANA time zone (Europe/Berlin, UTC)")
            })?,
        };
        let start = instant("start", &spec.start, tz)?;
        let start_ns = start
            .timestamp_nanos_opt()
            .ok_or("start: out of the range of a timestamp")?;
        let length_ns = match (&spec.end, &spec.duration) {
            (Some(end), None) => {
                let end = instant("end", end, tz)?
                    .timestamp_nanos_opt()
                    .ok_or("end: out of the range of a timestamp")?;
                if end <= start_ns {
                    return Err("end: must be after start".into());
                }
                end - start_ns
            }
            (None, Some(d)) => {
                let d = crate::spec::parse_duration(d).map_err(|e| format!("duration: {e}"))?;
                i64::try_from(d.as_nanos())
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or("duration: must be longer than 0")?
            }
            (Some(_), Some(_)) => return Err("end: give end or duration, not both".into()),
            (None, None) => return Err("end: give end (or duration)".into()),
        };
        if length_ns > MAX_LENGTH.as_nanos() as i64 {
            return Err(format!(
                "end: an exclusion lasts at most {} days",
                MAX_LENGTH.as_secs() / 86_400
            ));
        }
        let rule = match spec.rrule.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(text) => Some(recurrence(text, start)?),
        };
        Ok(Self {
            id,
            spec,
            origin,
            start,
            length_ns,
            rule,
        })
    }

    /// Whether it repeats.
    pub fn recurring(&self) -> bool {
        self.rule.is_some()
    }

    /// The occurrences (start, end; Unix ns) that overlap `[from, to)`, in
    /// order.
    pub fn occurrences(&self, from: i64, to: i64) -> Vec<(i64, i64)> {
        let first = self.start.timestamp_nanos_opt().unwrap_or_default();
        let Some(rule) = &self.rule else {
            let end = first.saturating_add(self.length_ns);
            return if first < to && end > from {
                vec![(first, end)]
            } else {
                Vec::new()
            };
        };
        let mut out = Vec::new();
        for start in rule.clone().into_iter().take(MAX_STEPS) {
            let Some(start) = start.timestamp_nanos_opt() else {
                break;
            };
            if start >= to {
                break;
            }
            let end = start.saturating_add(self.length_ns);
            if end > from {
                out.push((start, end));
            }
        }
        out
    }
}

/// The rule `text` (with or without `RRULE:`) from `start`.
fn recurrence(text: &str, start: DateTime<Tz>) -> Result<rrule::RRuleSet, String> {
    let text = text.strip_prefix("RRULE:").unwrap_or(text);
    let rule: rrule::RRule<rrule::Unvalidated> = text
        .parse()
        .map_err(|e| format!("rrule: {text:?} is not a recurrence rule: {e}"))?;
    if matches!(
        rule.get_freq(),
        rrule::Frequency::Secondly | rrule::Frequency::Minutely
    ) {
        return Err(format!(
            "rrule: {text:?} repeats every second or minute; an exclusion repeats hourly at most"
        ));
    }
    rule.build(start.with_timezone(&rrule::Tz::Tz(start.timezone())))
        .map_err(|e| format!("rrule: {text:?}: {e}"))
}

/// Parses the [`ANNOTATION`]'s value: a YAML list of exclusions. Each
/// problem names the item (from 1) and its field.
pub fn from_annotation(text: &str) -> Result<Vec<Exclusion>, Vec<String>> {
    let specs: Vec<ExclusionSpec> = serde_yaml_ng::from_str(text).map_err(|e| {
        vec![format!(
            "not a YAML list of exclusions (start, end or duration, rrule, time_zone, reason): {e}"
        )]
    })?;
    let mut out = Vec::new();
    let mut problems = Vec::new();
    for (n, spec) in specs.into_iter().enumerate() {
        match Exclusion::new(
            format!("annotation-{}", n + 1),
            spec,
            ExclusionOrigin::Annotation,
        ) {
            Ok(x) => out.push(x),
            Err(e) => problems.push(format!("[{}].{e}", n + 1)),
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

/// One occurrence of an exclusion.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Occurrence {
    /// The exclusion's id.
    pub id: String,
    /// Start (Unix ns).
    #[serde(skip)]
    pub start_ns: i64,
    /// End (Unix ns).
    #[serde(skip)]
    pub end_ns: i64,
    /// Start (RFC 3339).
    pub start: String,
    /// End (RFC 3339).
    pub end: String,
    /// Why.
    pub reason: String,
}

/// The exclusions of one SLO (its annotation's and the API's).
#[derive(Debug, Clone, Default)]
pub struct Exclusions(Arc<Vec<Exclusion>>);

impl Exclusions {
    /// A set of `list`.
    pub fn new(list: Vec<Exclusion>) -> Self {
        Self(Arc::new(list))
    }

    /// Each exclusion.
    pub fn list(&self) -> &[Exclusion] {
        &self.0
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Every occurrence overlapping `[from, to)`, by start.
    pub fn occurrences(&self, from: i64, to: i64) -> Vec<Occurrence> {
        let mut out: Vec<Occurrence> = self
            .0
            .iter()
            .flat_map(|x| {
                x.occurrences(from, to)
                    .into_iter()
                    .map(|(s, e)| Occurrence {
                        id: x.id.clone(),
                        start_ns: s,
                        end_ns: e,
                        start: rfc3339(s),
                        end: rfc3339(e),
                        reason: x.spec.reason.clone(),
                    })
            })
            .collect();
        out.sort_by(|a, b| (a.start_ns, &a.id).cmp(&(b.start_ns, &b.id)));
        out
    }

    /// The buckets (of `bucket_ns`) of `[from, to)` any occurrence touches.
    pub fn excluded(&self, from: i64, to: i64, bucket_ns: i64) -> Excluded {
        buckets_of(&self.occurrences(from, to), bucket_ns)
    }
}

/// The buckets (of `bucket_ns`) `occurrences` touch.
pub fn buckets_of(occurrences: &[Occurrence], bucket_ns: i64) -> Excluded {
    let b = bucket_ns.max(1);
    Excluded::new(
        occurrences
            .iter()
            .map(|o| (o.start_ns.div_euclid(b), (o.end_ns - 1).div_euclid(b)))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000_000_000;
    const HOUR: i64 = 60 * MIN;
    const DAY: i64 = 24 * HOUR;

    fn spec(start: &str, end: Option<&str>) -> ExclusionSpec {
        ExclusionSpec {
            start: start.into(),
            end: end.map(Into::into),
            duration: None,
            rrule: None,
            time_zone: None,
            reason: "planned maintenance".into(),
        }
    }

    fn make(spec: ExclusionSpec) -> Result<Exclusion, String> {
        Exclusion::new("1".into(), spec, ExclusionOrigin::Annotation)
    }

    fn ns(text: &str) -> i64 {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .timestamp_nanos_opt()
            .unwrap()
    }

    #[test]
    fn a_one_off_exclusion_covers_its_range_and_nothing_else() {
        let x = make(spec("2026-11-01T02:00:00Z", Some("2026-11-01T04:00:00Z"))).unwrap();
        let (s, e) = (ns("2026-11-01T02:00:00Z"), ns("2026-11-01T04:00:00Z"));
        assert_eq!(x.occurrences(0, i64::MAX), vec![(s, e)]);
        assert_eq!(x.occurrences(e, i64::MAX), vec![], "ends before the range");
        assert_eq!(x.occurrences(0, s), vec![], "starts at the range's end");
        assert_eq!(x.occurrences(e - 1, e), vec![(s, e)]);
    }

    #[test]
    fn a_weekly_rule_keeps_its_local_time_across_a_dst_change() {
        // Sundays 10:00–12:00 in Berlin: UTC+2 in October, UTC+1 after the
        // change on 25 October 2026.
        let x = make(ExclusionSpec {
            duration: Some("2h".into()),
            rrule: Some("FREQ=WEEKLY;BYDAY=SU".into()),
            time_zone: Some("Europe/Berlin".into()),
            ..spec("2026-10-18T10:00", None)
        })
        .unwrap();
        let got = x.occurrences(ns("2026-10-01T00:00:00Z"), ns("2026-11-02T00:00:00Z"));
        let want = [
            "2026-10-18T08:00:00Z",
            "2026-10-25T09:00:00Z",
            "2026-11-01T09:00:00Z",
        ]
        .map(|s| (ns(s), ns(s) + 2 * HOUR));
        assert_eq!(got, want);
    }

    #[test]
    fn a_rule_with_a_count_stops_and_ranges_far_after_the_start_are_found() {
        let x = make(ExclusionSpec {
            duration: Some("30m".into()),
            rrule: Some("RRULE:FREQ=DAILY;COUNT=3".into()),
            ..spec("2026-01-01T03:00:00Z", None)
        })
        .unwrap();
        assert_eq!(x.occurrences(0, i64::MAX).len(), 3);
        let daily = make(ExclusionSpec {
            duration: Some("30m".into()),
            rrule: Some("FREQ=DAILY".into()),
            ..spec("2020-01-01T03:00:00Z", None)
        })
        .unwrap();
        let from = ns("2026-06-01T00:00:00Z");
        let got = daily.occurrences(from, from + 2 * DAY);
        assert_eq!(
            got,
            vec![
                (from + 3 * HOUR, from + 3 * HOUR + 30 * MIN),
                (from + DAY + 3 * HOUR, from + DAY + 3 * HOUR + 30 * MIN)
            ]
        );
    }

    #[test]
    fn bad_exclusions_are_refused_with_the_field_named() {
        let cases = [
            (spec("yesterday", Some("2026-11-01T04:00:00Z")), "start:"),
            (
                spec("2026-11-01T04:00:00Z", Some("2026-11-01T02:00:00Z")),
                "end: must be after start",
            ),
            (spec("2026-11-01T04:00:00Z", None), "end: give end"),
            (
                ExclusionSpec {
                    reason: " ".into(),
                    ..spec("2026-11-01T02:00:00Z", Some("2026-11-01T04:00:00Z"))
                },
                "reason:",
            ),
            (
                ExclusionSpec {
                    time_zone: Some("Mars/Olympus".into()),
                    ..spec("2026-11-01T02:00", Some("2026-11-01T04:00"))
                },
                "time_zone:",
            ),
            (
                ExclusionSpec {
                    rrule: Some("FREQ=SOMETIMES".into()),
                    ..spec("2026-11-01T02:00:00Z", Some("2026-11-01T04:00:00Z"))
                },
                "rrule:",
            ),
            (
                ExclusionSpec {
                    rrule: Some("FREQ=MINUTELY".into()),
                    ..spec("2026-11-01T02:00:00Z", Some("2026-11-01T02:00:30Z"))
                },
                "hourly at most",
            ),
            (
                ExclusionSpec {
                    duration: Some("2h".into()),
                    ..spec("2026-11-01T02:00:00Z", Some("2026-11-01T04:00:00Z"))
                },
                "not both",
            ),
            (
                spec("2026-11-01T02:00:00Z", Some("2028-11-01T04:00:00Z")),
                "at most 400 days",
            ),
            (
                ExclusionSpec {
                    time_zone: Some("Europe/Berlin".into()),
                    ..spec("2026-03-29T02:30", Some("2026-03-29T04:00"))
                },
                "does not exist",
            ),
        ];
        for (spec, want) in cases {
            let err = make(spec.clone()).unwrap_err();
            assert!(err.contains(want), "{spec:?}: {err}");
        }
    }

    #[test]
    fn local_times_are_read_in_the_time_zone_and_offsets_are_kept() {
        let x = make(ExclusionSpec {
            time_zone: Some("America/New_York".into()),
            ..spec("2026-07-01T09:00", Some("2026-07-01T10:00:00-04:00"))
        })
        .unwrap();
        let s = ns("2026-07-01T13:00:00Z");
        assert_eq!(x.occurrences(0, i64::MAX), vec![(s, s + HOUR)]);
        let unix = make(spec("1782910800", Some("1782914400"))).unwrap();
        assert_eq!(unix.occurrences(0, i64::MAX), vec![(s, s + HOUR)]);
    }

    #[test]
    fn the_annotation_is_a_yaml_list_and_its_problems_name_the_item() {
        let ok = from_annotation(
            "- start: 2026-11-01T02:00:00Z\n  end: 2026-11-01T04:00:00Z\n  reason: db upgrade\n\
             - start: 2026-11-01T02:00\n  duration: 1h\n  rrule: FREQ=WEEKLY;BYDAY=SU\n  \
             time_zone: Europe/Berlin\n  reason: weekly maintenance\n",
        )
        .unwrap();
        assert_eq!(ok.len(), 2);
        assert_eq!(ok[1].id, "annotation-2");
        assert!(ok[1].recurring());
        let bad = from_annotation(
            "- start: 2026-11-01T02:00:00Z\n  end: 2026-11-01T04:00:00Z\n  reason: ok\n\
             - start: 2026-11-01T02:00:00Z\n  reason: no end\n",
        )
        .unwrap_err();
        assert_eq!(bad, vec!["[2].end: give end (or duration)".to_string()]);
        let not_a_list = from_annotation("reason: x").unwrap_err();
        assert!(not_a_list[0].contains("not a YAML list"), "{not_a_list:?}");
    }

    #[test]
    fn buckets_touched_by_an_occurrence_are_excluded_rounded_out() {
        let set = Exclusions::new(vec![
            make(spec("1970-01-01T00:02:30Z", Some("1970-01-01T00:04:00Z"))).unwrap(),
        ]);
        let ex = set.excluded(0, HOUR, MIN);
        assert_eq!(
            ex.ranges(),
            &[(2, 3)],
            "02:30–04:00 touches minutes 2 and 3"
        );
    }
}

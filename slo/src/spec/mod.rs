//! SLO definitions as users write them: OpenSLO v1 documents ([`openslo`])
//! and Sloth `prometheus/v1` files ([`sloth`]), turned into
//! [`SloDefinition`]s. Every problem names its file, document and field.
//!
//! A file may hold several YAML documents (`---`); OpenSLO documents refer to
//! each other by name within the files loaded together.

pub mod openslo;
pub mod sloth;

use std::fmt;
use std::path::Path;
use std::time::Duration;

use serde::Serialize;
use serde_yaml_ng::Value;

use crate::model::{Origin, SloDefinition};

/// Defaults applied where a definition is silent.
#[derive(Debug, Clone, Copy)]
pub struct Defaults {
    /// Groups tracked per SLO at most.
    pub max_groups: usize,
    /// Events a window needs before its burn rate can make a condition true.
    pub min_events: f64,
    /// Bad events a condition's long window needs before it can be met.
    pub min_bad_events: f64,
    /// What a definition may ask for at most.
    pub bounds: Bounds,
}

impl Default for Defaults {
    fn default() -> Self {
        crate::SloConfig::default().defaults()
    }
}

/// What one definition may ask of the engine at most. A definition beyond
/// them is refused with the field named, so that no stored definition can
/// make the engine allocate without bound or compute past the range of a
/// timestamp.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bounds {
    /// The longest period or alert window.
    pub max_window: Duration,
    /// The narrowest bucket (timeslice width).
    pub min_bucket: Duration,
    /// The most buckets a period or window may span (its length over the
    /// bucket width).
    pub max_buckets: u64,
    /// The largest `maxGroups`.
    pub max_groups: usize,
    /// SLOs the engine runs at most (files and API together).
    pub max_slos: usize,
}

impl Default for Bounds {
    fn default() -> Self {
        Self {
            // Two calendar years.
            max_window: Duration::from_secs(2 * 366 * 86_400 + 7200),
            min_bucket: Duration::from_secs(1),
            // Two years of one-minute buckets.
            max_buckets: 2 * 366 * 1440 + 120,
            max_groups: 10_000,
            max_slos: 2_000,
        }
    }
}

impl Bounds {
    /// Every bound `def` passes beyond, as (field, message).
    pub fn check(&self, def: &SloDefinition, step: Duration) -> Vec<(&'static str, String)> {
        let mut problems = Vec::new();
        let fmt = |d: Duration| humantime::format_duration(d).to_string();
        let bucket = def.budgeting.bucket_width(step);
        if bucket < self.min_bucket {
            problems.push((
                "spec.budgetingMethod",
                format!(
                    "the timeslice is {}; it must be at least {}",
                    fmt(bucket),
                    fmt(self.min_bucket)
                ),
            ));
        }
        let bucket = bucket.max(self.min_bucket);
        let mut check = |field: &'static str, what: &str, length: Duration| {
            if length > self.max_window {
                problems.push((
                    field,
                    format!(
                        "{what} is {}; at most {} is allowed",
                        fmt(length),
                        fmt(self.max_window)
                    ),
                ));
            } else if (length.as_nanos() / bucket.as_nanos().max(1)) > u128::from(self.max_buckets)
            {
                problems.push((
                    field,
                    format!(
                        "{what} of {} spans more than {} buckets of {}; use a wider timeslice",
                        fmt(length),
                        self.max_buckets,
                        fmt(bucket)
                    ),
                ));
            }
        };
        check("spec.timeWindow", "the period", def.period.max_length());
        for w in &def.alert_windows {
            check(
                "alert windows",
                &format!("the window of condition {:?}", w.name),
                w.long.max(w.short),
            );
        }
        if def.max_groups > self.max_groups {
            problems.push((
                "maxGroups",
                format!(
                    "{} groups asked; at most {} are allowed",
                    def.max_groups, self.max_groups
                ),
            ));
        }
        problems
    }
}

/// One thing wrong with a definition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The file (or `api` for a request body).
    pub file: String,
    /// The YAML document in the file, counting from 1; 0 when the whole file
    /// is concerned.
    pub document: usize,
    /// The field, as a path (`spec.objectives[0].target`); empty for the
    /// whole document.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if self.document > 0 {
            write!(f, ": document {}", self.document)?;
        }
        if !self.field.is_empty() {
            write!(f, ": {}", self.field)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// A YAML document with where it came from.
#[derive(Debug, Clone)]
pub(crate) struct Doc {
    pub(crate) file: String,
    pub(crate) index: usize,
    pub(crate) value: Value,
}

impl Doc {
    pub(crate) fn problem(&self, field: impl Into<String>, message: impl Into<String>) -> Problem {
        Problem {
            file: self.file.clone(),
            document: self.index,
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Splits `text` into YAML documents.
fn documents(file: &str, text: &str, problems: &mut Vec<Problem>) -> Vec<Doc> {
    let mut docs = Vec::new();
    for (i, de) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
        match <Value as serde::Deserialize>::deserialize(de) {
            Ok(Value::Null) => {}
            Ok(value) => docs.push(Doc {
                file: file.to_string(),
                index: i + 1,
                value,
            }),
            Err(e) => {
                problems.push(Problem {
                    file: file.to_string(),
                    document: i + 1,
                    field: String::new(),
                    message: format!("not valid YAML: {e}"),
                });
                // The parser cannot resynchronise after a syntax error.
                break;
            }
        }
    }
    docs
}

/// Definitions and problems found in a set of files loaded together.
#[derive(Debug, Default)]
pub struct Loaded {
    /// The SLOs that are valid.
    pub slos: Vec<SloDefinition>,
    /// Everything wrong. An SLO with a problem is left out of `slos`.
    pub problems: Vec<Problem>,
}

/// Parses the given (file name, text) pairs as one set: OpenSLO references
/// resolve across them. Definitions remember their file, or the API when
/// `origin` is [`Origin::Api`].
pub fn load_texts(files: &[(String, String)], defaults: Defaults, origin: &Origin) -> Loaded {
    let mut problems = Vec::new();
    let mut openslo_docs = Vec::new();
    let mut slos = Vec::new();
    for (file, text) in files {
        for doc in documents(file, text, &mut problems) {
            if doc.value.get("version").and_then(Value::as_str) == Some("prometheus/v1") {
                match sloth::translate(&doc, defaults) {
                    Ok(mut defs) => slos.append(&mut defs),
                    Err(mut p) => problems.append(&mut p),
                }
            } else {
                openslo_docs.push(doc);
            }
        }
    }
    let (mut defs, mut p) = openslo::resolve(&openslo_docs, defaults);
    slos.append(&mut defs);
    problems.append(&mut p);
    let mut seen = std::collections::BTreeSet::new();
    slos.retain(|s| {
        if seen.insert(s.id.clone()) {
            true
        } else {
            problems.push(Problem {
                file: String::new(),
                document: 0,
                field: "metadata.name".into(),
                message: format!("SLO {:?} is defined more than once", s.id),
            });
            false
        }
    });
    slos.retain(|s| {
        let found = defaults.bounds.check(s, Duration::from_secs(60));
        let at = s.sli_fields.get("indicator");
        for (field, message) in &found {
            problems.push(Problem {
                file: at.map(|l| l.file.clone()).unwrap_or_default(),
                document: at.map_or(0, |l| l.document),
                field: (*field).to_string(),
                message: format!("SLO {}: {message}", s.id),
            });
        }
        found.is_empty()
    });
    if *origin == Origin::Api {
        for slo in &mut slos {
            slo.origin = Origin::Api;
        }
    }
    Loaded { slos, problems }
}

/// Loads every `.yaml`/`.yml` file of a directory (not recursive).
pub fn load_dir(dir: &Path, defaults: Defaults) -> std::io::Result<Loaded> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let is_yaml = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| e == "yaml" || e == "yml");
        if is_yaml && path.is_file() {
            files.push((path.display().to_string(), std::fs::read_to_string(&path)?));
        }
    }
    files.sort();
    Ok(load_texts(&files, defaults, &Origin::File(String::new())))
}

/// A percentage as a fraction, without the binary rounding noise of the
/// division (99.9 → 0.999, not 0.9990000000000001).
pub(crate) fn percent(p: f64) -> f64 {
    (p / 100.0 * 1e12).round() / 1e12
}

/// A share written `25%` or `0.25`; `None` when it is neither.
pub(crate) fn fraction(text: &str) -> Option<f64> {
    let text = text.trim();
    let value = match text.strip_suffix('%') {
        Some(p) => percent(p.trim().parse::<f64>().ok()?),
        None => text.parse::<f64>().ok()?,
    };
    value.is_finite().then_some(value)
}

/// Parses OpenSLO durations: a count and a unit among `s m h d w` (and `M Q
/// Y` for calendar windows, returned as [`CalendarSpan`]).
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    match parse_span(s)? {
        Span::Fixed(d) => Ok(d),
        Span::Calendar(..) => Err(format!(
            "{s:?}: months, quarters and years are calendar units; use days (e.g. 30d) for a rolling window"
        )),
    }
}

/// A duration as OpenSLO writes it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Span {
    Fixed(Duration),
    Calendar(crate::model::CalendarUnit, u32),
}

pub(crate) fn parse_span(s: &str) -> Result<Span, String> {
    use crate::model::CalendarUnit;
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("{s:?} has no unit (s, m, h, d, w, M, Q or Y)"))?;
    let (number, unit) = s.split_at(split);
    let n: u32 = number
        .parse()
        .map_err(|_| format!("{s:?} does not start with a whole number"))?;
    if n == 0 {
        return Err(format!("{s:?} is zero"));
    }
    let secs = |k: u64| Ok(Span::Fixed(Duration::from_secs(u64::from(n) * k)));
    match unit {
        "s" => secs(1),
        "m" => secs(60),
        "h" => secs(3600),
        "d" => secs(86_400),
        "w" => secs(7 * 86_400),
        "M" => Ok(Span::Calendar(CalendarUnit::Month, n)),
        "Q" => Ok(Span::Calendar(CalendarUnit::Quarter, n)),
        "Y" => Ok(Span::Calendar(CalendarUnit::Year, n)),
        _ => Err(format!(
            "{s:?}: unknown unit {unit:?} (use s, m, h, d, w, M, Q or Y)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_are_written_as_percentages_or_fractions() {
        assert_eq!(fraction("25%"), Some(0.25));
        assert_eq!(fraction(" 12.5 % "), Some(0.125));
        assert_eq!(fraction("0.3"), Some(0.3));
        assert_eq!(fraction("half"), None);
        assert_eq!(fraction("NaN"), None);
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("28d"), Ok(Duration::from_secs(28 * 86_400)));
        assert!(parse_duration("1M").unwrap_err().contains("calendar"));
        assert!(parse_duration("5").unwrap_err().contains("no unit"));
        assert!(parse_duration("0d").unwrap_err().contains("zero"));
        assert!(parse_duration("5x").unwrap_err().contains("unknown unit"));
    }

    #[test]
    fn yaml_errors_name_file_and_document() {
        let mut problems = Vec::new();
        let docs = documents("a.yaml", "a: 1\n---\nb: [1\n", &mut problems);
        assert_eq!(docs.len(), 1);
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].document, 2);
        assert!(
            problems[0]
                .to_string()
                .starts_with("a.yaml: document 2: not valid YAML"),
            "{}",
            problems[0]
        );
    }
}

//! The one home of the text forms smolder reads and writes in several
//! crates: SQL literals and identifiers (for the few statements built from
//! text: search parameters, SLO filters, group keys), and instants as
//! RFC 3339 or Unix seconds (query parameters, answers, logs).

use chrono::{DateTime, SecondsFormat};
use datafusion::arrow::compute::kernels::cast_utils::string_to_timestamp_nanos;

/// A SQL string literal: `it's` → `'it''s'`.
pub fn sql_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// A SQL identifier, quoted: `a"b` → `"a""b"`.
pub fn sql_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Nanoseconds since the epoch from RFC 3339 (or the other timestamp forms
/// Arrow reads) or Unix seconds; an error that says what was given when it
/// is neither or falls outside the years 1677–2262 that fit the nanoseconds.
pub fn parse_time(s: &str) -> Result<i64, String> {
    let s = s.trim();
    if let Ok(secs) = s.parse::<f64>() {
        let ns = secs * 1e9;
        if !ns.is_finite() || ns.abs() >= 9.2e18 {
            return Err(format!("{s:?} is out of the range of a timestamp"));
        }
        return Ok(ns as i64);
    }
    string_to_timestamp_nanos(s).map_err(|_| format!("{s:?} is neither RFC 3339 nor Unix seconds"))
}

/// An instant as RFC 3339 in UTC (`…Z`) with `precision`.
pub fn rfc3339(ns: i64, precision: SecondsFormat) -> String {
    DateTime::from_timestamp_nanos(ns).to_rfc3339_opts(precision, true)
}

/// Unix nanoseconds as people read them in the CLI's tables, as the web UI
/// writes them: `2026-03-02 17:27:05 UTC` (24-hour, with the zone).
pub fn display_time(ns: i64) -> String {
    DateTime::from_timestamp_nanos(ns)
        .format("%Y-%m-%d %H:%M:%S UTC")
        .to_string()
}

/// An RFC 3339 text (as the API answers) as [`display_time`] writes it; the
/// text itself when it is not RFC 3339.
pub fn display_rfc3339(text: &str) -> String {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .and_then(|t| t.timestamp_nanos_opt())
        .map_or_else(|| text.to_string(), display_time)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_the_same_in_the_cli_as_in_the_ui() {
        assert_eq!(
            display_time(1_772_470_025_000_000_000),
            "2026-03-02 16:47:05 UTC"
        );
        assert_eq!(
            display_rfc3339("2026-03-02T17:47:05+01:00"),
            "2026-03-02 16:47:05 UTC"
        );
        assert_eq!(display_rfc3339("soon"), "soon");
    }

    #[test]
    fn sql_text_is_quoted_so_it_stays_text() {
        assert_eq!(sql_literal("it's"), "'it''s'");
        assert_eq!(sql_literal("x') OR (true"), "'x'') OR (true'");
        assert_eq!(sql_ident("a\"b"), "\"a\"\"b\"");
    }

    #[test]
    fn times_read_as_rfc3339_or_unix_seconds_and_refuse_the_rest() {
        let t = 1_700_000_000_000_000_000;
        assert_eq!(parse_time("2023-11-14T22:13:20Z"), Ok(t));
        assert_eq!(parse_time(" 1700000000 "), Ok(t));
        assert_eq!(rfc3339(t, SecondsFormat::Secs), "2023-11-14T22:13:20Z");
        assert_eq!(
            rfc3339(t + 5_000_000, SecondsFormat::Millis),
            "2023-11-14T22:13:20.005Z"
        );
        assert!(parse_time("yesterday").unwrap_err().contains("neither"));
        assert!(parse_time("-9000000000000").unwrap_err().contains("range"));
    }
}

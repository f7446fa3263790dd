//! Calendar periods (month, quarter … in a time zone) for OpenSLO calendar
//! time windows. Boundaries are local midnights of the SLO's time zone, so
//! a day is 23 or 25 hours long across a daylight-saving change.

use chrono::{Datelike as _, Days, Months, NaiveDateTime, TimeZone as _, Timelike as _};
use chrono_tz::Tz;

use crate::model::CalendarUnit;

/// The calendar period (start, end) in Unix nanoseconds that contains
/// `now_ns`, for periods of `count` units starting at `start` (local time).
pub(crate) fn period_containing(
    unit: CalendarUnit,
    count: u32,
    start: NaiveDateTime,
    tz: Tz,
    now_ns: i64,
) -> (i64, i64) {
    let count = i64::from(count.max(1));
    let now_local = tz.timestamp_nanos(now_ns).naive_local();
    let (months, days) = match unit {
        CalendarUnit::Day => (0, count),
        CalendarUnit::Week => (0, 7 * count),
        CalendarUnit::Month => (count, 0),
        CalendarUnit::Quarter => (3 * count, 0),
        CalendarUnit::Year => (12 * count, 0),
    };
    let (begin, end) = if months > 0 {
        let mut elapsed = i64::from(now_local.year() - start.year()) * 12
            + i64::from(now_local.month0())
            - i64::from(start.month0());
        // Not yet at the start's day and time of the month: one month less.
        if (now_local.day(), now_local.time()) < (start.day(), start.time()) {
            elapsed -= 1;
        }
        let k = elapsed.div_euclid(months);
        (
            add_months(start, k * months),
            add_months(start, (k + 1) * months),
        )
    } else {
        let mut elapsed = (now_local.date() - start.date()).num_days();
        if now_local.time() < start.time() {
            elapsed -= 1;
        }
        let k = elapsed.div_euclid(days);
        (add_days(start, k * days), add_days(start, (k + 1) * days))
    };
    (to_utc_ns(begin, tz), to_utc_ns(end, tz))
}

fn add_months(t: NaiveDateTime, n: i64) -> NaiveDateTime {
    let m = Months::new(u32::try_from(n.unsigned_abs()).unwrap_or(u32::MAX));
    let shifted = if n >= 0 {
        t.checked_add_months(m)
    } else {
        t.checked_sub_months(m)
    };
    shifted.unwrap_or(t)
}

fn add_days(t: NaiveDateTime, n: i64) -> NaiveDateTime {
    let d = Days::new(n.unsigned_abs());
    let shifted = if n >= 0 {
        t.checked_add_days(d)
    } else {
        t.checked_sub_days(d)
    };
    shifted.unwrap_or(t)
}

/// A local time in UTC nanoseconds. A time skipped by a daylight-saving
/// change becomes the first instant after the gap; an ambiguous one its
/// earlier reading.
fn to_utc_ns(local: NaiveDateTime, tz: Tz) -> i64 {
    let mut probe = local;
    for _ in 0..4 {
        if let Some(t) = tz.from_local_datetime(&probe).earliest() {
            return t.timestamp_nanos_opt().unwrap_or(i64::MAX);
        }
        // In a gap: move to the next whole hour and try again.
        probe = probe
            .with_minute(0)
            .and_then(|p| p.with_second(0))
            .map_or(probe, |p| p + chrono::Duration::hours(1));
    }
    local.and_utc().timestamp_nanos_opt().unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn ns(s: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(s)
            .unwrap()
            .timestamp_nanos_opt()
            .unwrap()
    }

    fn local(y: i32, m: u32, d: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(y, m, d)
            .unwrap()
            .and_hms_opt(0, 0, 0)
            .unwrap()
    }

    #[test]
    fn month_in_new_york() {
        let tz: Tz = "America/New_York".parse().unwrap();
        let (s, e) = period_containing(
            CalendarUnit::Month,
            1,
            local(2022, 1, 1),
            tz,
            ns("2026-03-15T12:00:00Z"),
        );
        assert_eq!(s, ns("2026-03-01T05:00:00Z"), "EST midnight");
        assert_eq!(e, ns("2026-04-01T04:00:00Z"), "EDT midnight");
        // The first instants of a month belong to it, the last to the one before.
        let (s2, _) = period_containing(
            CalendarUnit::Month,
            1,
            local(2022, 1, 1),
            tz,
            ns("2026-03-01T05:00:00Z"),
        );
        assert_eq!(s2, s);
        let (s3, _) = period_containing(
            CalendarUnit::Month,
            1,
            local(2022, 1, 1),
            tz,
            ns("2026-03-01T04:59:59Z"),
        );
        assert_eq!(s3, ns("2026-02-01T05:00:00Z"));
    }

    #[test]
    fn quarter_and_week_in_utc() {
        let (s, e) = period_containing(
            CalendarUnit::Quarter,
            1,
            local(2020, 1, 1),
            Tz::UTC,
            ns("2026-08-20T00:00:00Z"),
        );
        assert_eq!(
            (s, e),
            (ns("2026-07-01T00:00:00Z"), ns("2026-10-01T00:00:00Z"))
        );
        // Weeks starting on Monday 2024-01-01.
        let (s, e) = period_containing(
            CalendarUnit::Week,
            1,
            local(2024, 1, 1),
            Tz::UTC,
            ns("2026-11-22T10:00:00Z"),
        );
        assert_eq!(
            (s, e),
            (ns("2026-11-16T00:00:00Z"), ns("2026-11-23T00:00:00Z"))
        );
    }

    #[test]
    fn day_across_daylight_saving_is_23_hours() {
        let tz: Tz = "Europe/Berlin".parse().unwrap();
        let (s, e) = period_containing(
            CalendarUnit::Day,
            1,
            local(2020, 1, 1),
            tz,
            ns("2026-03-29T12:00:00Z"),
        );
        assert_eq!(e - s, 23 * 3_600_000_000_000);
    }
}

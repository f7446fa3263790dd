//! Silences (matchers with a start and an end, an author and a comment) and
//! maintenance windows (silences that recur every week).

use chrono::{Datelike, NaiveTime, TimeZone, Utc, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use smolder_common::Tenant;

use crate::alert::Labels;
use crate::config::MaintenanceWindow;
use crate::matchers::Matchers;

/// A silence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Silence {
    /// Its id.
    pub id: String,
    /// Label matchers; an alert all of them match is silenced.
    pub matchers: Vec<String>,
    /// Start (RFC 3339).
    pub starts_at: chrono::DateTime<Utc>,
    /// End (RFC 3339); expiring a silence sets it to now.
    pub ends_at: chrono::DateTime<Utc>,
    /// Who created it.
    pub created_by: String,
    /// Why.
    pub comment: String,
    /// When it was created.
    pub created_at: chrono::DateTime<Utc>,
    /// Whose it is: it silences that tenant's alerts only, and only that
    /// tenant sees and expires it.
    #[serde(default)]
    pub tenant: Tenant,
}

impl Silence {
    /// `active`, `pending` (starts later) or `expired`.
    pub fn status(&self, now: chrono::DateTime<Utc>) -> &'static str {
        if now < self.starts_at {
            "pending"
        } else if now < self.ends_at {
            "active"
        } else {
            "expired"
        }
    }
}

/// An active silence, ready to match.
#[derive(Debug, Clone)]
pub(crate) struct ActiveSilence {
    /// The silence's id (or `maintenance/<name>`).
    pub id: String,
    matchers: Matchers,
    /// A silence's tenant (its alerts only); `None` for the operator's
    /// maintenance windows, which match on labels like routes do.
    tenant: Option<Tenant>,
}

impl ActiveSilence {
    /// Compiles a silence; `None` when its matchers no longer parse.
    pub(crate) fn new(s: &Silence) -> Option<Self> {
        Matchers::parse(&s.matchers).ok().map(|matchers| Self {
            id: s.id.clone(),
            matchers,
            tenant: Some(s.tenant.clone()),
        })
    }

    /// Whether it silences an alert with these labels.
    pub(crate) fn matches(&self, labels: &Labels) -> bool {
        self.tenant
            .as_ref()
            .is_none_or(|t| *t == crate::alert::tenant_of(labels))
            && self.matchers.matches(labels)
    }
}

/// A problem with a maintenance window's fields.
#[derive(Debug)]
pub(crate) struct FieldError {
    /// The field.
    pub field: &'static str,
    /// What is wrong.
    pub message: String,
}

/// A compiled maintenance window.
#[derive(Debug, Clone)]
pub(crate) struct Recurring {
    /// Its name.
    pub name: String,
    weekdays: Vec<Weekday>,
    start: NaiveTime,
    duration: chrono::Duration,
    tz: Tz,
    matchers: Vec<String>,
}

impl Recurring {
    /// Compiles a maintenance window from the configuration.
    pub(crate) fn from_config(w: &MaintenanceWindow) -> Result<Self, FieldError> {
        let err = |field, message: String| FieldError { field, message };
        if w.name.trim().is_empty() {
            return Err(err("name", "must not be empty".into()));
        }
        let weekdays = w
            .weekdays
            .iter()
            .map(|d| {
                d.parse::<Weekday>()
                    .map_err(|_| err("weekdays", format!("{d:?} is not a weekday (mon … sun)")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let start = NaiveTime::parse_from_str(&w.start, "%H:%M").map_err(|_| {
            err(
                "start",
                format!("{:?} is not a time of day (HH:MM)", w.start),
            )
        })?;
        let duration = match w.duration {
            Some(d) if !d.is_zero() && d <= std::time::Duration::from_secs(7 * 86_400) => {
                chrono::Duration::from_std(d).map_err(|e| err("duration", e.to_string()))?
            }
            Some(_) => {
                return Err(err(
                    "duration",
                    "must be longer than 0s and at most 7d".into(),
                ));
            }
            None => return Err(err("duration", "is required".into())),
        };
        let tz = match &w.time_zone {
            None => Tz::UTC,
            Some(z) => z
                .parse::<Tz>()
                .map_err(|_| err("time_zone", format!("{z:?} is not an IANA time zone")))?,
        };
        Ok(Self {
            name: w.name.clone(),
            weekdays,
            start,
            duration,
            tz,
            matchers: w.matchers.clone(),
        })
    }

    /// The window containing `now`, if any: (start, end).
    pub(crate) fn window_at(
        &self,
        now: chrono::DateTime<Utc>,
    ) -> Option<(chrono::DateTime<Utc>, chrono::DateTime<Utc>)> {
        let local = now.with_timezone(&self.tz).date_naive();
        // A window that started up to 7 days ago may still be open.
        for back in 0..=7 {
            let day = local - chrono::Days::new(back);
            if !self.weekdays.is_empty() && !self.weekdays.contains(&day.weekday()) {
                continue;
            }
            let Some(start) = self
                .tz
                .from_local_datetime(&day.and_time(self.start))
                .earliest()
            else {
                continue;
            };
            let start = start.with_timezone(&Utc);
            let end = start + self.duration;
            if start <= now && now < end {
                return Some((start, end));
            }
        }
        None
    }

    /// The window as an active silence, when `now` is inside it.
    pub(crate) fn active(&self, now: chrono::DateTime<Utc>) -> Option<ActiveSilence> {
        self.window_at(now)?;
        Matchers::parse(&self.matchers)
            .ok()
            .map(|matchers| ActiveSilence {
                id: format!("maintenance/{}", self.name),
                matchers,
                tenant: None,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weekly_window_in_a_time_zone() {
        let w = Recurring::from_config(&MaintenanceWindow {
            name: "deploys".into(),
            matchers: vec![r#"service="checkout""#.into()],
            weekdays: vec!["sat".into()],
            start: "23:00".into(),
            duration: Some(std::time::Duration::from_secs(2 * 3600)),
            time_zone: Some("Europe/Berlin".into()),
        })
        .unwrap();
        // Saturday 2026-11-21 23:30 in Berlin is 22:30 UTC.
        let inside = Utc.with_ymd_and_hms(2026, 11, 21, 22, 30, 0).unwrap();
        assert!(w.window_at(inside).is_some());
        // Sunday 00:30 Berlin: still inside, the window crosses midnight.
        let after_midnight = Utc.with_ymd_and_hms(2026, 11, 21, 23, 30, 0).unwrap();
        assert!(w.window_at(after_midnight).is_some());
        let outside = Utc.with_ymd_and_hms(2026, 11, 22, 1, 0, 0).unwrap();
        assert!(w.window_at(outside).is_none());
        let friday = Utc.with_ymd_and_hms(2026, 11, 20, 22, 30, 0).unwrap();
        assert!(w.window_at(friday).is_none());
        let active = w.active(inside).unwrap();
        let labels: Labels = [("service".to_string(), "checkout".to_string())].into();
        assert!(active.matches(&labels));
    }

    #[test]
    fn bad_fields_are_named() {
        let mut cfg = MaintenanceWindow {
            name: "x".into(),
            start: "25:00".into(),
            duration: Some(std::time::Duration::from_secs(60)),
            ..Default::default()
        };
        assert_eq!(Recurring::from_config(&cfg).unwrap_err().field, "start");
        cfg.start = "01:00".into();
        cfg.time_zone = Some("Mars/Olympus".into());
        assert_eq!(Recurring::from_config(&cfg).unwrap_err().field, "time_zone");
        cfg.time_zone = None;
        cfg.weekdays = vec!["someday".into()];
        assert_eq!(Recurring::from_config(&cfg).unwrap_err().field, "weekdays");
    }
}

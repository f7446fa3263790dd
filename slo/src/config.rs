//! `[slo]`: the SLO engine's configuration (see `smolder_common::config`).

use std::path::PathBuf;
use std::time::Duration;

use crate::engine::EngineOptions;
use crate::spec::{Bounds, Defaults};

smolder_common::config_section! {
    /// The SLO engine.
    pub struct SloConfig {
        /// Directory of SLO definitions: OpenSLO v1 or Sloth prometheus/v1
        /// YAML files, reloaded when one changes. Unset: SLOs come only from
        /// the API.
        pub dir: Option<PathBuf> = None,
        /// Time between evaluations: each one updates the rollups with the
        /// data that arrived and recomputes SLIs, budgets and burn rates; down
        /// to 1s.
        #[serde(with = "humantime_serde")]
        pub interval: Duration = Duration::from_secs(10),
        /// Width of a rollup bucket. Timeslice SLOs use their slice.
        #[serde(with = "humantime_serde")]
        pub step: Duration = Duration::from_secs(60),
        /// Telemetry arriving up to this late still counts in the bucket of
        /// its timestamp.
        #[serde(with = "humantime_serde")]
        pub lateness: Duration = Duration::from_secs(120),
        /// Low-traffic guard: a window with fewer events cannot make an alert
        /// condition true; per SLO: annotation smolder.dev/min-events.
        pub min_events: f64 = 0.0,
        /// Low-traffic guard: a burn-rate condition can only be met when its
        /// long window's burn rests on at least this many bad events (for a
        /// window burning just at its factor, min_bad_events / (factor × (1
        /// − objective)) events), so that no handful of failures pages; 0
        /// turns it off. Per SLO: annotation smolder.dev/min-bad-events.
        pub min_bad_events: f64 = 5.0,
        /// Groups tracked per SLO at most, for SLOs with groupBy; per SLO:
        /// maxGroups.
        pub max_groups: usize = 100,
        /// How far back a counter SLI looks for a series' previous point; keep
        /// it longer than the exporters' interval.
        #[serde(with = "humantime_serde")]
        pub counter_lookback: Duration = Duration::from_secs(600),
        /// SLOs the engine runs at most, files and API together; more are
        /// refused.
        pub max_slos: usize = Bounds::default().max_slos,
        /// SLOs each tenant other than the default one may have (the default
        /// tenant's, files and API together, are bounded by max_slos).
        pub tenant_max_slos: usize = 200,
        /// The largest maxGroups an SLO may ask for.
        pub max_groups_limit: usize = Bounds::default().max_groups,
        /// The longest period or alert window an SLO may ask for.
        #[serde(with = "humantime_serde")]
        pub max_window: Duration = Bounds::default().max_window,
    }
    validate(self, problems) {
        problems.check(
            self.interval >= Duration::from_secs(1),
            "interval",
            "must be at least 1s",
        );
        problems.check(
            self.step >= Duration::from_secs(1) && self.step.subsec_nanos() == 0,
            "step",
            "must be whole seconds, at least 1s",
        );
        problems.check(
            self.min_events.is_finite() && self.min_events >= 0.0,
            "min_events",
            "must be a number of 0 or more",
        );
        problems.check(
            self.min_bad_events.is_finite() && self.min_bad_events >= 0.0,
            "min_bad_events",
            "must be a number of 0 or more",
        );
        problems.check(self.max_groups > 0, "max_groups", "must be positive");
        problems.check(self.max_slos > 0, "max_slos", "must be positive");
        problems.check(
            (1..=self.max_slos).contains(&self.tenant_max_slos),
            "tenant_max_slos",
            "must be positive and at most max_slos",
        );
        problems.check(
            self.max_window >= Duration::from_secs(3600),
            "max_window",
            "must be at least 1h",
        );
        problems.check(
            self.max_groups_limit >= self.max_groups,
            "max_groups_limit",
            format!("must be at least max_groups ({})", self.max_groups),
        );
    }
}

impl SloConfig {
    /// The engine's options; `query_timeout` bounds each SLO's queries (the
    /// SQL API's timeout).
    pub fn engine_options(&self, query_timeout: Duration) -> EngineOptions {
        EngineOptions {
            step: self.step,
            lateness: self.lateness,
            interval: self.interval,
            counter_lookback: self.counter_lookback,
            // Catching up on history may take half of each tick, at least 2 s.
            backfill_budget: (self.interval / 2).max(Duration::from_secs(2)),
            query_timeout,
            defaults: self.defaults(),
            dir: self.dir.clone(),
            backfill_chunk: Duration::from_secs(6 * 3600),
            concurrency: 2,
            watched: crate::WatchedWindows::default(),
        }
    }

    /// What definitions get when they say nothing, and may ask for at most.
    pub fn defaults(&self) -> Defaults {
        Defaults {
            max_groups: self.max_groups,
            min_events: self.min_events,
            min_bad_events: self.min_bad_events,
            bounds: Bounds {
                max_slos: self.max_slos,
                max_groups: self.max_groups_limit,
                max_window: self.max_window,
                ..Bounds::default()
            },
        }
    }
}

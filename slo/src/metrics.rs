//! SLO gauges on `/metrics`, read from the last tick at each scrape, so
//! Grafana and KEDA's Prometheus scaler can use them:
//!
//! * `smolder_slo_objective{slo}`
//! * `smolder_slo_sli{slo,group}` — over the period (absent without events)
//! * `smolder_slo_error_budget_remaining{slo,group}`
//! * `smolder_slo_burn_rate{slo,group,window}`
//! * `smolder_slo_alert_condition{slo,group,condition,severity}` — 1 while met
//! * `smolder_slo_events{slo,group,window}` — events per alert window
//! * `smolder_slo_backfill_progress{slo}` — 0 to 1
//! * `smolder_slo_batch_fallbacks_total` — row SLOs updated one by one
//!   instead of together with the others of their table, per tick (0 unless
//!   something is wrong: the server logs why, once)
//!
//! `group` is the group's JSON text, `{}` for an SLO without groups. The
//! series of SLOs of tenants other than the default one carry a `tenant`
//! label first (the default tenant's are as they were before tenants).

use std::sync::{Arc, Weak};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use smolder_common::metrics::gauges;

use crate::SloEngines;

/// The collector of every tenant's SLO gauges.
#[derive(Debug)]
pub struct SloCollector {
    engines: Weak<SloEngines>,
}

impl SloCollector {
    /// A collector for `engines`.
    pub fn new(engines: &Arc<SloEngines>) -> Self {
        Self {
            engines: Arc::downgrade(engines),
        }
    }
}

impl Collector for SloCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(engines) = self.engines.upgrade() else {
            return Ok(());
        };
        let snap = engines.snapshot();
        let mut objective = Vec::new();
        let mut sli = Vec::new();
        let mut budget = Vec::new();
        let mut burn = Vec::new();
        let mut conditions = Vec::new();
        let mut events = Vec::new();
        let mut progress = Vec::new();
        for s in &snap.slos {
            let id = s.definition.id.clone();
            let tenant = &s.definition.tenant;
            let slo = || {
                let mut l = Vec::with_capacity(5);
                if !tenant.is_default() {
                    l.push(("tenant", tenant.to_string()));
                }
                l.push(("slo", id.clone()));
                l
            };
            objective.push((slo(), s.definition.objective));
            progress.push((slo(), s.backfill.progress));
            for i in &s.instances {
                let group = serde_json::to_string(&i.group).unwrap_or_default();
                let base = || {
                    let mut l = slo();
                    l.push(("group", group.clone()));
                    l
                };
                let e = &i.evaluation;
                if let Some(v) = e.sli {
                    sli.push((base(), v));
                }
                budget.push((base(), e.error_budget_remaining));
                for (w, r) in &e.burn_rates {
                    let mut l = base();
                    l.push(("window", w.to_string()));
                    burn.push((l, *r));
                }
                for (w, n) in &e.window_events {
                    let mut l = base();
                    l.push(("window", w.to_string()));
                    events.push((l, *n));
                }
                for c in &e.conditions {
                    let mut l = base();
                    l.push(("condition", c.name.clone()));
                    l.push(("severity", c.severity.to_string()));
                    conditions.push((l, f64::from(u8::from(c.met))));
                }
            }
        }
        gauges(
            &mut encoder,
            "slo_objective",
            "Target fraction of good events of each SLO",
            &objective,
        )?;
        gauges(
            &mut encoder,
            "slo_sli",
            "Fraction of good events over the SLO's period",
            &sli,
        )?;
        gauges(
            &mut encoder,
            "slo_error_budget_remaining",
            "Share of the error budget left over the period (negative when overspent)",
            &budget,
        )?;
        gauges(
            &mut encoder,
            "slo_burn_rate",
            "Error-budget burn rate per alert window",
            &burn,
        )?;
        gauges(
            &mut encoder,
            "slo_events",
            "Events per alert window",
            &events,
        )?;
        gauges(
            &mut encoder,
            "slo_alert_condition",
            "1 while both windows of a burn-rate condition reach its factor",
            &conditions,
        )?;
        gauges(
            &mut encoder,
            "slo_backfill_progress",
            "Share of the SLO's history rolled up (1 when caught up)",
            &progress,
        )?;
        smolder_common::metrics::counter(
            &mut encoder,
            "slo_batch_fallbacks",
            "Row SLOs updated one by one instead of together with the others of their table, per tick",
            engines.batch_fallbacks(),
        )
    }
}

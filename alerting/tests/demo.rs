//! The demo's pages, simulated: the sample SLOs over the demo's generated
//! traffic (20 requests a second, its incident 5 s in, 2 minutes long, every
//! 10 minutes), evaluated every 2 s as `smolder demo` does, through the
//! alert lifecycle with the default alerting options — on an injected clock,
//! so 11 minutes of traffic take seconds.
//!
//! What an on-call relies on: nothing pages outside an incident (not the
//! first handful of events, not a burn rate wavering around a threshold),
//! and no alert changes state more than twice per incident (it fires once
//! and resolves once).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use smolder_alerting::alert::{Lifecycle, State};
use smolder_alerting::config::AlertingConfig;
use smolder_common::clock::{Clock, ManualClock};
use smolder_common::{BatchesInMemory, Table};
use smolder_query::{QueryEngine, QueryLimits};
use smolder_sample_data::{Generator, SAMPLE_SLOS};
use smolder_slo::persist::Db;
use smolder_slo::{SloConfig, SloEngine};

const SEC: i64 = 1_000_000_000;
/// 2026-03-02T09:00:00Z.
const T0: i64 = 1_772_442_000 * SEC;
/// The demo's schedule: the first incident starts 5 s in, lasts 2 minutes,
/// and comes back every 10 minutes.
const FIRST_INCIDENT: i64 = 5;
const INCIDENT_LENGTH: i64 = 120;
const INCIDENT_EVERY: i64 = 600;
const SIMULATED: i64 = 11 * 60;

fn incident_at(second: i64) -> bool {
    second >= FIRST_INCIDENT && (second - FIRST_INCIDENT) % INCIDENT_EVERY < INCIDENT_LENGTH
}

#[derive(Debug)]
struct Change {
    second: i64,
    alert: String,
    severity: String,
    to: String,
}

#[tokio::test]
async fn the_demo_pages_only_for_its_incident_and_each_alert_fires_and_resolves_once() {
    let memory = Arc::new(BatchesInMemory::default());
    let clock = Arc::new(ManualClock::new(T0));
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in SAMPLE_SLOS {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let config = SloConfig {
        dir: Some(dir.path().to_path_buf()),
        interval: Duration::from_secs(2),
        ..SloConfig::default()
    };
    let query = QueryEngine::new(vec![Arc::clone(&memory) as _], QueryLimits::default()).unwrap();
    let engine = SloEngine::new(
        query,
        Db::in_memory().unwrap(),
        Arc::clone(&clock) as Arc<dyn Clock>,
        config.engine_options(Duration::from_secs(30)),
    )
    .await
    .unwrap();
    let problems = &engine.snapshot().problems;
    assert!(problems.is_empty(), "the sample SLOs load: {problems:?}");
    assert_eq!(engine.snapshot().slos.len(), 9, "every sample SLO");
    let options = AlertingConfig::default().lifecycle_options("http://smolder");
    let mut lifecycle = Lifecycle::default();
    let mut changes = Vec::new();

    // As `smolder demo` drives its generator: one second of requests every
    // second, metrics every 10 s, the clock starting a second back.
    let mut generator = Generator::new(42, (T0 - SEC) as u64);
    for second in 0..=SIMULATED {
        let now = T0 + second * SEC;
        clock.set(now);
        generator.set_incident(incident_at(second));
        let telemetry = generator.requests(20, SEC as u64);
        let spans = smolder_ingest::convert::spans(&telemetry.traces).unwrap();
        memory.push(Table::Spans, spans.batch);
        let logs = smolder_ingest::convert::logs(&telemetry.logs).unwrap();
        memory.push(Table::Logs, logs.batch);
        if second % 10 == 0 {
            let metrics = smolder_ingest::convert::metrics(&generator.metrics()).unwrap();
            memory.push(Table::Metrics, metrics.batch);
        }
        generator.set_clock(now as u64);
        if second % 2 == 0 {
            engine.tick().await;
            let snapshot = engine.snapshot();
            for slo in &snapshot.slos {
                assert_eq!(slo.error, None, "{} at {second} s", slo.definition.id);
            }
            let step = lifecycle.step(&snapshot, now, &options);
            for t in step.transitions {
                changes.push(Change {
                    second,
                    alert: format!("{} {}", t.slo, t.labels["condition"]),
                    severity: t.labels["severity"].clone(),
                    to: t.to,
                });
            }
        }
    }
    let log: Vec<String> = changes
        .iter()
        .map(|c| format!("{:>4} s  {:<40} {}", c.second, c.alert, c.to))
        .collect();
    let log = log.join("\n");
    eprintln!("alert changes:\n{log}");

    // Something pages for the incident (the demo shows a burning SLO).
    assert!(
        changes
            .iter()
            .any(|c| c.to == "firing" && c.alert.starts_with("checkout-availability")),
        "the incident pages checkout-availability:\n{log}"
    );
    // No page starts outside an incident, and nothing at all before the
    // first one (the first handful of events pages nobody). A ticket may
    // start after an incident: the slow-burn windows still hold its bad
    // events.
    for c in &changes {
        if c.to == State::Firing.name() || c.to == State::Pending.name() {
            assert!(
                c.second >= FIRST_INCIDENT,
                "{} started at {} s, before the incident:\n{log}",
                c.alert,
                c.second
            );
            assert!(
                incident_at(c.second) || c.severity != "page",
                "{} paged at {} s, outside the incident:\n{log}",
                c.alert,
                c.second
            );
        }
    }
    // Per incident (from its start to the next one's), each alert changes
    // state at most twice.
    let mut per_incident: BTreeMap<(i64, &str), usize> = BTreeMap::new();
    for c in &changes {
        let incident = (c.second - FIRST_INCIDENT).div_euclid(INCIDENT_EVERY);
        *per_incident.entry((incident, &c.alert)).or_default() += 1;
    }
    for ((incident, alert), n) in per_incident {
        assert!(
            n <= 2,
            "{alert} changed state {n} times in incident {incident}:\n{log}"
        );
    }
}

//! A backtest equals what the live engine raised on the same data.
//!
//! The demo's generated traffic (20 requests a second, metrics every 10 s)
//! with incidents of different lengths starting at odd seconds streams
//! through the live engine and alerting stage on an injected clock, ticking
//! every 10 s as the server does (on the interval's grid, each tick seeing
//! the telemetry before it). Afterwards every sample SLO is backtested over
//! the same data — once from the running SLOs' stored rollups and once by
//! an engine that never ran them (it rolls the telemetry up itself) — and
//! must raise the same alerts, firing and resolving at the same instants.
//! One SLO excludes the third incident from its budget (an annotation,
//! starting and ending mid-minute): both engines leave it out alike.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use smolder_alerting::Alerting;
use smolder_alerting::backtest::{Request, Variant, run};
use smolder_alerting::config::AlertingConfig;
use smolder_alerting::store::Store;
use smolder_common::clock::{Clock, ManualClock};
use smolder_common::{BatchesInMemory, Table, Tenant};
use smolder_query::{QueryEngine, QueryLimits};
use smolder_sample_data::{Generator, SAMPLE_SLOS};
use smolder_slo::model::Origin;
use smolder_slo::persist::Db;
use smolder_slo::spec::load_texts;
use smolder_slo::{SloConfig, SloEngine};

const SEC: i64 = 1_000_000_000;
/// 2026-03-02T09:00:00Z.
const T0: i64 = 1_772_442_000 * SEC;
const SIMULATED: i64 = 30 * 60;
/// Incidents (start second, length): long and short, starting mid-minute.
const INCIDENTS: [(i64, i64); 3] = [(437, 150), (1033, 47), (1391, 290)];

/// The third incident, excluded from `checkout-availability`'s budget:
/// 09:23:00 to 09:28:30 (seconds 1380 to 1710).
const DRILL: (i64, i64) = (1380, 1710);

/// The sample SLO files, `checkout-availability` with [`DRILL`] excluded.
fn sample_slos() -> Vec<(&'static str, String)> {
    let annotation = "    smolder.dev/runbook-url: https://runbooks.example.com/checkout
";
    SAMPLE_SLOS
        .iter()
        .map(|&(name, text)| {
            let text = if name == "checkout.yaml" {
                assert!(text.contains(annotation));
                text.replacen(
                    annotation,
                    &format!(
                        "{annotation}    smolder.dev/exclusions: |\n      \
                         - start: {}\n        end: {}\n        \
                         reason: the third incident was a drill\n",
                        rfc3339(T0 + DRILL.0 * SEC),
                        rfc3339(T0 + DRILL.1 * SEC)
                    ),
                    1,
                )
            } else {
                text.to_string()
            };
            (name, text)
        })
        .collect()
}

fn incident_at(second: i64) -> bool {
    INCIDENTS
        .iter()
        .any(|&(start, len)| (start..start + len).contains(&second))
}

/// (fingerprint, start, end) of each alert.
type Raised = BTreeSet<(String, String, Option<String>)>;

fn rfc3339(ns: i64) -> String {
    smolder_alerting::render::rfc3339(ns)
}

async fn engine(
    memory: &Arc<BatchesInMemory>,
    clock: &Arc<ManualClock>,
    dir: Option<&std::path::Path>,
) -> Arc<SloEngine> {
    let config = SloConfig {
        dir: dir.map(std::path::Path::to_path_buf),
        interval: Duration::from_secs(10),
        ..SloConfig::default()
    };
    let query = QueryEngine::new(vec![Arc::clone(memory) as _], QueryLimits::default()).unwrap();
    SloEngine::new(
        query,
        Db::in_memory().unwrap(),
        Arc::clone(clock) as Arc<dyn Clock>,
        config.engine_options(Duration::from_secs(60)),
    )
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backtest_raises_the_alerts_the_live_engine_raised_at_the_same_instants() {
    let memory = Arc::new(BatchesInMemory::default());
    let clock = Arc::new(ManualClock::new(T0));
    let dir = tempfile::tempdir().unwrap();
    let samples = sample_slos();
    for (name, text) in &samples {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let live = engine(&memory, &clock, Some(dir.path())).await;
    let query = QueryEngine::new(vec![Arc::clone(&memory) as _], QueryLimits::default()).unwrap();
    let alerting = Alerting::new(
        Store::in_memory().unwrap(),
        query,
        Arc::clone(&clock) as Arc<dyn Clock>,
        &AlertingConfig::default(),
        "http://smolder".into(),
    )
    .unwrap();

    let mut generator = Generator::new(7, (T0 - SEC) as u64);
    let mut last_tick = T0;
    for second in 0..=SIMULATED {
        let now = T0 + second * SEC;
        clock.set(now);
        generator.set_incident(incident_at(second));
        let telemetry = generator.requests(20, SEC as u64);
        memory.push(
            Table::Spans,
            smolder_ingest::convert::spans(&telemetry.traces)
                .unwrap()
                .batch,
        );
        memory.push(
            Table::Logs,
            smolder_ingest::convert::logs(&telemetry.logs)
                .unwrap()
                .batch,
        );
        if second % 10 == 0 {
            let metrics = smolder_ingest::convert::metrics(&generator.metrics()).unwrap();
            memory.push(Table::Metrics, metrics.batch);
            // A tick sees what was sent before it.
            live.tick_at(now).await;
            alerting.observe(live.snapshot()).await;
            last_tick = now;
        }
    }
    for slo in &live.snapshot().slos {
        assert_eq!(slo.error, None, "{}", slo.definition.id);
    }

    // What the live stage recorded, per SLO.
    let history = alerting.history(&Tenant::default(), None, 100_000).unwrap();
    let live_alerts = |slo: &str| -> Raised {
        let mut out = Raised::new();
        let mut firing: Vec<(String, i64)> = Vec::new();
        for t in history.iter().rev().filter(|t| t.slo == slo) {
            match t.to.as_str() {
                "firing" => firing.push((t.fingerprint.clone(), t.at)),
                "resolved" => {
                    let i = firing
                        .iter()
                        .position(|(fp, _)| *fp == t.fingerprint)
                        .expect("resolved after firing");
                    let (fp, start) = firing.remove(i);
                    out.insert((fp, rfc3339(start), Some(rfc3339(t.at))));
                }
                _ => {}
            }
        }
        out.extend(firing.into_iter().map(|(fp, s)| (fp, rfc3339(s), None)));
        out
    };

    let fresh = engine(&memory, &clock, None).await;
    let mut fired_somewhere = 0;
    let mut refined = 0;
    for status in live.snapshot().slos.iter() {
        let id = status.definition.id.clone();
        // The sample file that defines it.
        let (_, yaml) = samples
            .iter()
            .find(|(name, text)| {
                let loaded = load_texts(
                    &[(name.to_string(), text.to_string())],
                    live.options().defaults,
                    &Origin::Api,
                );
                loaded.slos.iter().any(|d| d.id == id)
            })
            .unwrap();
        let expected = live_alerts(&id);
        fired_somewhere += expected.len();
        for (how, engine) in [("stored rollups", &live), ("a scan", &fresh)] {
            let answer = run(
                engine,
                &alerting,
                Request {
                    yaml: yaml.to_string(),
                    id: Some(id.clone()),
                    from: Some(T0),
                    to: Some(last_tick),
                    incidents: Vec::new(),
                    // With a variant (the same policy) the minutes are
                    // refined from one read of the range at the tick
                    // grid's resolution, not with a query each.
                    variants: if how == "a scan" {
                        vec![Variant {
                            objective: Some(status.definition.objective),
                            factors: None,
                        }]
                    } else {
                        Vec::new()
                    },
                },
            )
            .await
            .unwrap_or_else(|e| panic!("backtest of {id} from {how}: {e}"));
            let got: Raised = answer["alerts"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| {
                    (
                        a["fingerprint"].as_str().unwrap().to_string(),
                        a["start"].as_str().unwrap().to_string(),
                        a["end"].as_str().map(str::to_string),
                    )
                })
                .collect();
            assert_eq!(
                got, expected,
                "{id} backtested from {how}: {:#}",
                answer["alerts"]
            );
            let variant: Raised = answer["variants"][0]["alerts"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|a| {
                    (
                        a["fingerprint"].as_str().unwrap().to_string(),
                        a["start"].as_str().unwrap().to_string(),
                        a["end"].as_str().map(str::to_string),
                    )
                })
                .collect();
            if how == "a scan" {
                assert_eq!(variant, expected, "{id} as a variant, from {how}");
                assert_eq!(answer["source"]["refine_queries"], 0, "{id}");
            }
            refined += answer["source"]["refined_buckets"].as_u64().unwrap();
            if how == "stored rollups" {
                assert!(
                    answer["source"]["stored_buckets"].as_u64().unwrap() > 0,
                    "{id}: the running SLO's rollups are read: {}",
                    answer["source"]
                );
            } else {
                assert_eq!(answer["source"]["stored_buckets"], 0, "{id}");
            }
        }
    }
    assert!(
        fired_somewhere >= 3,
        "the incidents page: {fired_somewhere} alerts"
    );
    // The drill's bad events were there, and left out: no alert of the SLO
    // that excludes it started during it.
    let excluded_bad: f64 = live
        .rollup_rows()
        .await
        .iter()
        .filter(|r| r.slo == "checkout-availability" && r.excluded)
        .map(|r| r.total - r.good)
        .sum();
    assert!(excluded_bad > 0.0, "the drill's failures are excluded");
    let during_drill = live_alerts("checkout-availability")
        .into_iter()
        .filter(|(_, start, _)| {
            let start = chrono::DateTime::parse_from_rfc3339(start)
                .unwrap()
                .timestamp_nanos_opt()
                .unwrap();
            (T0 + DRILL.0 * SEC..T0 + DRILL.1 * SEC).contains(&start)
        })
        .count();
    assert_eq!(during_drill, 0);
    assert!(
        refined > 0,
        "some ticks inside a minute needed the minute read again"
    );
}

//! Burn-driven scaling with the seed's scheme: scale up at a burn rate of
//! 1.5× or more over 5 minutes, back once it stayed under 0.8× for a
//! cooldown of 2m30s.
//!
//! Spans of one service stream through the live SLO engine and alerting
//! stage on an injected clock (a tick every 10 s, on the grid, as the
//! server runs them), with error rates that put the burn rate low, then in
//! the band between the thresholds, then above the upper one, then low with
//! a spike back into the band during the cooldown. What the target was asked
//! to do (the scaling history in the outbox) is compared with the decisions
//! worked out here from the spans sent: the 5-minute window as smolder
//! defines it (the current minute so far and the four before it).

use std::sync::Arc;
use std::time::Duration;

use smolder_alerting::Alerting;
use smolder_alerting::config::{AlertingConfig, ScalingTarget};
use smolder_alerting::store::{ScalingDecision, Store};
use smolder_common::clock::{Clock, ManualClock};
use smolder_common::{BatchesInMemory, Table, Tenant};
use smolder_query::{QueryEngine, QueryLimits};
use smolder_sample_data::fixtures::{availability_slo, server_span, service_spans};
use smolder_slo::{SloConfig, SloEngine};

const SEC: i64 = 1_000_000_000;
/// 2026-03-02T09:00:00Z, a whole minute.
const T0: i64 = 1_772_442_000 * SEC;
const SIMULATED: i64 = 2_100;
const SPANS_PER_SECOND: i64 = 100;
const TICK: i64 = 10;
const SLO: &str = "shop-availability";

/// Failed spans of the 100 sent in second `s`; with a 99 % objective the
/// burn rate of a whole stretch is its failed spans per second.
fn failed_in(s: i64) -> i64 {
    match s {
        0..600 => s % 2, // 0.5×: low
        600..900 => 1,   // 1×: between the thresholds
        900..1200 => 2,  // 2×: above 1.5×
        1380..1440 => 5, // a spike back over 0.8× during the cooldown
        _ => 0,
    }
}

/// The burn rate over the 5-minute window at tick `t` (seconds since T0) of
/// the spans sent before it.
fn burn_at(t: i64) -> f64 {
    let from = (t / 60) * 60 - 240;
    let seconds = from.max(0)..t;
    let total = (seconds.end - seconds.start) * SPANS_PER_SECOND;
    let bad: i64 = seconds.map(failed_in).sum();
    bad as f64 / total as f64 / 0.01
}

/// The decisions the scheme asks for, from the spans sent: (tick, action).
fn expected() -> Vec<(i64, &'static str)> {
    let mut out = Vec::new();
    let mut up = false;
    let mut low_since: Option<i64> = None;
    for t in (TICK..=SIMULATED).step_by(TICK as usize) {
        let burn = burn_at(t);
        if !up {
            if burn >= 1.5 {
                up = true;
                out.push((t, "scale_up"));
            }
        } else if burn >= 0.8 {
            low_since = None;
        } else if t - *low_since.get_or_insert(t) >= 150 {
            up = false;
            low_since = None;
            out.push((t, "scale_down"));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burn_driven_target_scales_up_at_1_5x_over_5m_and_back_after_2m30s_under_0_8x() {
    let memory = Arc::new(BatchesInMemory::default());
    let clock = Arc::new(ManualClock::new(T0));
    let query =
        || QueryEngine::new(vec![Arc::clone(&memory) as _], QueryLimits::default()).unwrap();
    let slo_config = SloConfig {
        interval: Duration::from_secs(TICK as u64),
        ..SloConfig::default()
    };
    let engine = SloEngine::new(
        query(),
        smolder_slo::persist::Db::in_memory().unwrap(),
        Arc::clone(&clock) as Arc<dyn Clock>,
        slo_config.engine_options(Duration::from_secs(60)),
    )
    .await
    .unwrap();
    engine.put(SLO, &availability_slo("shop")).await.unwrap();
    // The same SLO under another id, which the target's matchers leave out.
    let other = availability_slo("shop").replace("name: shop-availability", "name: shop-copy");
    engine.put("shop-copy", &other).await.unwrap();
    let config = AlertingConfig {
        scaling: vec![ScalingTarget {
            name: "shop-burn".into(),
            url: "http://127.0.0.1:9/scale".into(),
            matchers: vec![format!("slo=\"{SLO}\"")],
            scale_up_at: Some(1.5),
            window: Some(Duration::from_secs(300)),
            scale_down_below: Some(0.8),
            cooldown: Some(Duration::from_secs(150)),
            ..ScalingTarget::default()
        }],
        ..AlertingConfig::default()
    };
    let alerting = Alerting::new(
        Store::in_memory().unwrap(),
        query(),
        Arc::clone(&clock) as Arc<dyn Clock>,
        &config,
        "http://smolder".into(),
    )
    .unwrap();
    // What the server's tick does: the targets' windows, then the tick.
    engine.options().watched.set(alerting.watched_windows());

    let mut id = 0u64;
    let mut seen_burn = Vec::new();
    for tick in (TICK..=SIMULATED).step_by(TICK as usize) {
        let mut spans = Vec::new();
        for s in tick - TICK..tick {
            let failed = failed_in(s);
            for i in 0..SPANS_PER_SECOND {
                id += 1;
                let start = T0 + s * SEC + i * (SEC / SPANS_PER_SECOND);
                spans.push(server_span(id, start, 1_000_000, i < failed));
            }
        }
        let batch = smolder_ingest::convert::spans_protobuf(&service_spans("shop", spans))
            .unwrap()
            .batch;
        memory.push(Table::Spans, batch);
        let now = T0 + tick * SEC;
        clock.set(now);
        engine.tick_at(now).await;
        let snapshot = engine.snapshot();
        let status = snapshot
            .slos
            .iter()
            .find(|s| s.definition.id == SLO)
            .unwrap();
        assert_eq!(status.error, None);
        let burn = status.instances[0].evaluation.burn_rates
            [&smolder_slo::model::Window(Duration::from_secs(300))];
        seen_burn.push((tick, burn));
        alerting.observe(snapshot).await;
    }

    // The engine's 5-minute burn rate is the one worked out from the spans.
    for &(tick, burn) in &seen_burn {
        assert!(
            (burn - burn_at(tick)).abs() < 1e-9,
            "burn rate at {tick} s: engine {burn}, spans {}",
            burn_at(tick)
        );
    }
    // The data does what this test is about: one scale-up, in the third
    // phase, and a scale-down that the spike put off.
    let want = expected();
    assert_eq!(want.len(), 2, "{want:?}");
    let (up_at, down_at) = (want[0].0, want[1].0);
    assert!((900..1200).contains(&up_at), "{want:?}");
    let first_low = seen_burn
        .iter()
        .find(|&&(t, b)| t > up_at && b < 0.8)
        .unwrap()
        .0;
    assert!(
        down_at > first_low + 150,
        "the spike restarted the cooldown: {want:?}"
    );
    assert!(
        seen_burn
            .iter()
            .any(|&(t, b)| t > up_at && t < 1300 && (0.8..1.5).contains(&b))
            && seen_burn
                .iter()
                .any(|&(t, b)| t < 900 && (0.8..1.5).contains(&b)),
        "burn rates in the band before the scale-up and during the cooldown"
    );

    // What the target was asked, oldest first, with its figures.
    let mut history: Vec<ScalingDecision> = alerting
        .store()
        .scaling_history(&Tenant::default(), SLO, 100)
        .unwrap();
    history.reverse();
    let got: Vec<(i64, &str)> = history
        .iter()
        .map(|d| ((d.created_at - T0) / SEC, d.request.action.as_str()))
        .collect();
    assert_eq!(got, want);
    let (up, down) = (&history[0].request, &history[1].request);
    assert_eq!((up.window.as_str(), up.threshold), ("5m", Some(1.5)));
    assert!((up.burn_rate - burn_at(up_at)).abs() < 1e-9, "{up:?}");
    assert!(up.burn_rate >= 1.5 && up.alert.is_none(), "{up:?}");
    assert_eq!((down.window.as_str(), down.threshold), ("5m", Some(0.8)));
    assert!(down.burn_rate < 0.8, "{down:?}");
    assert!(
        down.reason.contains("stayed under 0.8 for 2m 30s"),
        "{down:?}"
    );
    assert_eq!(history[0].request.target, "shop-burn");
    // The SLO the matchers leave out burned the same and was not scaled.
    let copy = alerting
        .store()
        .scaling_history(&Tenant::default(), "shop-copy", 100)
        .unwrap();
    assert!(copy.is_empty(), "{copy:?}");
}

//! `smolder slo bench`: what one SLO tick costs.
//!
//! 1. Evaluation: `--slos` SLOs, each with `--days` of minute rollups, are
//!    evaluated as a tick does (every alert window and the period budget);
//!    the same with a 7-day period shows the cost does not grow with the
//!    window; the same with a budget exclusion of 2 hours every day masked
//!    in every ring, and what masking it (adding an exclusion) costs.
//! 2. Rollup update: `--update-slos` span SLOs over generated traffic stored
//!    as Parquet in a temporary directory; ticks after 1 minute and after 60
//!    minutes of new data show the cost grows with the new data.
//!
//! Run it from a release build: `cargo run --release -p smolder -- slo bench`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Args;
use smolder_common::Table;
use smolder_common::clock::{Clock, ManualClock};
use smolder_query::{QueryEngine, QueryLimits};
use smolder_slo::eval::evaluate;
use smolder_slo::model::{Origin, SloDefinition};
use smolder_slo::persist::Db;
use smolder_slo::rollup::{Excluded, Rollup};
use smolder_slo::spec::{self, Defaults};
use smolder_slo::{EngineOptions, SloEngine};
use smolder_storage::{Store, StoreOptions, TimeWindow};

/// Options of `smolder slo bench`.
#[derive(Debug, Clone, Args)]
pub(crate) struct BenchArgs {
    /// SLOs evaluated per tick.
    #[arg(long, default_value_t = 1000)]
    slos: usize,
    /// Days of minute rollups per SLO (the period).
    #[arg(long, default_value_t = 30)]
    days: u64,
    /// Evaluation ticks measured.
    #[arg(long, default_value_t = 15)]
    runs: usize,
    /// SLOs whose rollups are updated from stored spans.
    #[arg(long, default_value_t = 50)]
    update_slos: usize,
    /// Simulated user requests per second of the stored traffic.
    #[arg(long, default_value_t = 20)]
    rate: usize,
}

const MIN: i64 = 60_000_000_000;

fn template(id: &str, days: u64, filter: &str) -> String {
    format!(
        r#"
apiVersion: openslo/v1
kind: SLO
metadata:
  name: {id}
spec:
  service: bench
  indicator:
    metadata:
      name: {id}-sli
    spec:
      ratioMetric:
        counter: true
        good:
          metricSource:
            type: smolder
            spec:
              table: spans
              filter: "{filter} AND status_code <> 'ERROR'"
        total:
          metricSource:
            type: smolder
            spec:
              table: spans
              filter: "{filter}"
  timeWindow:
    - duration: {days}d
      isRolling: true
  budgetingMethod: Occurrences
  objectives:
    - target: 0.999
"#
    )
}

fn definition(days: u64) -> SloDefinition {
    let text = template("bench", days, "service_name = 'checkout'");
    let loaded = spec::load_texts(&[("bench".into(), text)], Defaults::default(), &Origin::Api);
    loaded
        .slos
        .into_iter()
        .next()
        .expect("the template is valid")
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Median and p95 of evaluating `slos` instances of a `days`-day SLO (with
/// 2 hours a day excluded when `excluded`), and the time masking the
/// exclusions took (all rings).
fn evaluation(
    slos: usize,
    days: u64,
    runs: usize,
    excluded: bool,
) -> (Duration, Duration, Duration) {
    let def = definition(days);
    let now = 1_767_225_600 * 1_000_000_000 + 45 * 86_400 * 1_000_000_000i64;
    let buckets = (days * 1440) as usize + 10;
    let head = now / MIN;
    let rings: Vec<Rollup> = (0..slos)
        .map(|s| {
            let mut r = Rollup::new(def.budgeting, buckets, head);
            let values: Vec<(i64, [f64; 2])> = (head - buckets as i64 + 1..=head)
                .map(|i| {
                    let total = 50.0 + ((i + s as i64) % 17) as f64;
                    (i, [total - ((i * 7 + s as i64) % 3) as f64, total])
                })
                .collect();
            r.replace(values[0].0, head, &values);
            r
        })
        .collect();
    let mut rings = rings;
    let masking = Instant::now();
    if excluded {
        // 02:00 to 04:00 every day of the ring.
        let first_day = (head - buckets as i64) / 1440;
        let mask = Excluded::new(
            (first_day..=head / 1440)
                .map(|d| (d * 1440 + 120, d * 1440 + 239))
                .collect(),
        );
        for r in &mut rings {
            r.set_excluded(mask.clone());
        }
    }
    let masking = masking.elapsed();
    let mut times = Vec::with_capacity(runs);
    let mut check = 0.0;
    for run in 0..runs {
        let started = Instant::now();
        for r in &rings {
            let e = evaluate(&def, r, MIN, now + run as i64 * 1_000_000_000);
            check += e.error_budget_remaining;
        }
        times.push(started.elapsed());
    }
    assert!(check.is_finite());
    times.sort();
    (percentile(&times, 0.5), percentile(&times, 0.95), masking)
}

/// Runs the benchmark and prints the figures.
pub(crate) async fn run(args: BenchArgs) -> anyhow::Result<()> {
    println!(
        "evaluation: {} SLOs x {} days of minute rollups, every alert window and the period budget",
        args.slos, args.days
    );
    let (median, p95, _) = evaluation(args.slos, args.days, args.runs, false);
    println!(
        "  {}-day period: median {:.1} ms, p95 {:.1} ms per tick",
        args.days,
        median.as_secs_f64() * 1e3,
        p95.as_secs_f64() * 1e3
    );
    let (median7, p957, _) = evaluation(args.slos, 7, args.runs, false);
    println!(
        "  7-day period:  median {:.1} ms, p95 {:.1} ms per tick",
        median7.as_secs_f64() * 1e3,
        p957.as_secs_f64() * 1e3
    );
    let (median_x, p95_x, masking) = evaluation(args.slos, args.days, args.runs, true);
    println!(
        "  {}-day period, 2 h a day excluded: median {:.1} ms, p95 {:.1} ms per tick; masking the exclusion in every ring took {:.1} ms",
        args.days,
        median_x.as_secs_f64() * 1e3,
        p95_x.as_secs_f64() * 1e3,
        masking.as_secs_f64() * 1e3
    );
    update(&args).await
}

/// Rollup updates over stored spans, after 1 and after 60 minutes of new data.
async fn update(args: &BenchArgs) -> anyhow::Result<()> {
    if args.update_slos == 0 {
        return Ok(());
    }
    let dir = tempfile::tempdir()?;
    let end = 1_767_225_600 * 1_000_000_000i64;
    let start = end - 3 * 60 * MIN;
    let clock = Arc::new(ManualClock::new(end));
    let options = StoreOptions {
        wal: None,
        retention: [Duration::from_secs(30 * 86_400); 3],
        ..StoreOptions::default()
    };
    let (store, _) = Store::open(dir.path(), options, Arc::clone(&clock) as Arc<dyn Clock>).await?;
    let store = Arc::new(store);
    // Three hours of traffic, stored as Parquet a few minutes at a time.
    let mut generator = smolder_sample_data::Generator::new(42, start as u64);
    let window = TimeWindow {
        not_before: i64::MIN,
        not_after: i64::MAX,
    };
    let loading = Instant::now();
    let mut spans = 0usize;
    for minute in 0..180 {
        let traces = generator.requests(args.rate * 60, 60_000_000_000).traces;
        let converted = smolder_ingest::convert::spans(&traces)?;
        if let Some(batch) = converted.batch {
            spans += batch.num_rows();
            store
                .append(
                    &smolder_common::Tenant::default(),
                    Table::Spans,
                    window,
                    Bytes::new(),
                    batch,
                )
                .await?;
        }
        if minute % 10 == 9 {
            store.flush().await?;
        }
    }
    store.flush().await?;
    println!(
        "update: {} span SLOs over {spans} stored spans (3 hours, loaded in {:.1} s)",
        args.update_slos,
        loading.elapsed().as_secs_f64()
    );
    let source: Arc<dyn smolder_common::TableSource> = Arc::clone(&store) as _;
    let query = QueryEngine::new(vec![source], QueryLimits::default())?;
    let engine_options = EngineOptions {
        backfill_chunk: Duration::from_secs(40 * 86_400),
        ..EngineOptions::default()
    };
    let db = Db::open(&dir.path().join("slo.db"))?;
    clock.set(start - MIN);
    let engine = SloEngine::new(
        query.clone(),
        db,
        Arc::clone(&clock) as Arc<dyn Clock>,
        engine_options,
    )
    .await?;
    let services = ["frontend", "checkout", "payment", "inventory", "catalog"];
    for i in 0..args.update_slos {
        let filter = format!(
            "service_name = '{}' AND duration_ns > {}",
            services[i % services.len()],
            i
        );
        let id = format!("bench-{i}");
        engine
            .put(&id, &template(&id, 30, &filter))
            .await
            .map_err(|p| anyhow::anyhow!("{p:?}"))?;
    }
    // Catch up on the (empty) history before the traffic.
    engine.tick().await;
    let measure = |label: &str, step_minutes: i64, ticks: usize| {
        let label = label.to_string();
        let engine = Arc::clone(&engine);
        let clock = Arc::clone(&clock);
        async move {
            let mut times = Vec::new();
            for _ in 0..ticks {
                clock.advance(step_minutes * MIN);
                let report = engine.tick().await;
                anyhow::ensure!(report.failed == 0, "a rollup update failed");
                times.push(report.update);
            }
            times.sort();
            println!(
                "  tick after {label} of new data: median {:.1} ms ({:.2} ms per SLO), over {} ticks",
                percentile(&times, 0.5).as_secs_f64() * 1e3,
                percentile(&times, 0.5).as_secs_f64() * 1e3 / args.update_slos as f64,
                ticks
            );
            Ok::<_, anyhow::Error>(())
        }
    };
    clock.set(start);
    measure("1 minute", 1, 30).await?;
    measure("60 minutes", 60, 2).await?;
    Ok(())
}

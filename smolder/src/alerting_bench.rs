//! `smolder alerting bench`: the alerting stage's two performance figures.
//!
//! * `latency` — from the export that makes an SLO's fast-burn pair true to
//!   the webhook received: a server on loopback (1 s evaluation interval,
//!   `group_wait` 0s) with one SLO per incident; each incident is one OTLP
//!   export of failing spans, timed from its acknowledgement to the arrival of
//!   the firing notification at a webhook in this process.
//! * `delivery` — notifications per second through the outbox (SQLite on
//!   disk) to a local webhook: `--notifications` spread over `--groups`
//!   groups (one at a time per group, as in production), timed from the first
//!   write to the outbox to the last notification received.
//!
//! Run it from a release build: `cargo run --release -p smolder -- alerting
//! bench latency`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::{Args, Subcommand};
use hdrhistogram::Histogram;
use smolder_alerting::alert::{Alert, Labels, State};
use smolder_alerting::config::{AlertingConfig, ReceiverConfig, Route};
use smolder_alerting::notification::{Notification, new_id};
use smolder_common::clock::{Clock, SystemClock};

use crate::config::{Config, Layers};

/// `smolder alerting …`
#[derive(Debug, Clone, Args)]
pub(crate) struct AlertingArgs {
    #[command(subcommand)]
    command: AlertingCommand,
}

#[derive(Debug, Clone, Subcommand)]
enum AlertingCommand {
    /// Measure alert latency or delivery throughput (use a release build).
    Bench {
        #[command(subcommand)]
        what: BenchWhat,
    },
}

#[derive(Debug, Clone, Subcommand)]
enum BenchWhat {
    /// Export → webhook latency of the fast-burn page, over repeated
    /// incidents.
    Latency {
        /// Incidents measured (one SLO each).
        #[arg(long, default_value_t = 30)]
        incidents: usize,
    },
    /// Notifications per second through the outbox to a local webhook.
    Delivery {
        /// Notifications sent.
        #[arg(long, default_value_t = 20_000)]
        notifications: usize,
        /// Groups they belong to.
        #[arg(long, default_value_t = 1_000)]
        groups: usize,
        /// Requests in flight at once.
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
    },
}

/// Runs `smolder alerting …`.
pub(crate) async fn run(args: AlertingArgs) -> anyhow::Result<()> {
    let AlertingCommand::Bench { what } = args.command;
    match what {
        BenchWhat::Latency { incidents } => latency(incidents).await,
        BenchWhat::Delivery {
            notifications,
            groups,
            concurrency,
        } => delivery(notifications, groups, concurrency).await,
    }
}

/// A webhook in this process: counts requests and keeps (arrival, body).
#[derive(Clone, Default)]
struct Sink {
    count: Arc<AtomicU64>,
    bodies: Arc<Mutex<Vec<(Instant, serde_json::Value)>>>,
    keep: bool,
}

async fn start_sink(sink: Sink) -> anyhow::Result<std::net::SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let app = axum::Router::new().fallback(move |body: bytes::Bytes| {
        let sink = sink.clone();
        async move {
            let at = Instant::now();
            sink.count.fetch_add(1, Ordering::Relaxed);
            if sink.keep {
                let v = serde_json::from_slice(&body).unwrap_or_default();
                sink.bodies.lock().expect("sink lock").push((at, v));
            }
            "ok"
        }
    });
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(addr)
}

fn webhook(name: &str, url: String, concurrency: usize) -> ReceiverConfig {
    let text = format!(
        "name = {name:?}\ntype = \"webhook\"\nurl = {url:?}\nmax_concurrency = {concurrency}\n"
    );
    toml::from_str(&text).expect("a valid receiver")
}

fn spans(service: &str, n: usize, errors: usize, start_ns: i64) -> Vec<u8> {
    let spans = (0..n)
        .map(|i| {
            let start = start_ns + i as i64 * 1_000;
            smolder_sample_data::fixtures::server_span(rand::random(), start, 1_000_000, i < errors)
        })
        .collect();
    smolder_sample_data::fixtures::service_spans(service, spans)
}

fn report(name: &str, h: &Histogram<u64>) {
    println!(
        "{name}: n={} p50={:.0} ms p90={:.0} ms p99={:.0} ms max={:.0} ms",
        h.len(),
        h.value_at_quantile(0.5) as f64 / 1e3,
        h.value_at_quantile(0.9) as f64 / 1e3,
        h.value_at_quantile(0.99) as f64 / 1e3,
        h.max() as f64 / 1e3
    );
}

async fn latency(incidents: usize) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let slo_dir = dir.path().join("slos");
    std::fs::create_dir_all(&slo_dir)?;
    for i in 0..incidents {
        std::fs::write(
            slo_dir.join(format!("bench-{i}.yaml")),
            smolder_sample_data::fixtures::availability_slo(&format!("bench-{i}")),
        )?;
    }
    let sink = Sink {
        keep: true,
        ..Default::default()
    };
    let sink_addr = start_sink(sink.clone()).await?;
    let mut alerting = AlertingConfig {
        route: Some(Route {
            receiver: Some("hook".to_string()),
            group_wait: Some(Duration::ZERO),
            ..Default::default()
        }),
        ..Default::default()
    };
    alerting
        .receivers
        .push(webhook("hook", format!("http://{sink_addr}/hook"), 8));
    let loopback = "127.0.0.1:0".parse()?;
    let mut config = Config {
        data_dir: dir.path().join("data"),
        alerting,
        ..Config::default()
    };
    config.listen.otlp_grpc = loopback;
    config.listen.otlp_http = loopback;
    config.listen.http = loopback;
    config.slo.dir = Some(slo_dir);
    config.slo.interval = Duration::from_secs(1);
    let running = crate::serve::start(&config, &Layers::default()).await?;
    let otlp_http =
        anyhow::Context::context(running.addrs.otlp_http, "the server has the ingest role")?;
    let otlp = format!("http://{otlp_http}/v1/traces");
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(running.run_until(
        async move {
            let _ = stop_rx.await;
        },
        Duration::from_secs(2),
    ));
    let client = reqwest::Client::new();
    let mut hist = Histogram::<u64>::new(3)?;
    // Let the engine load the SLOs.
    tokio::time::sleep(Duration::from_secs(2)).await;
    println!("{incidents} incidents, one SLO each, 1 s evaluation interval, group_wait 0s");
    for i in 0..incidents {
        let service = format!("bench-{i}");
        let slo = format!("{service}-availability");
        // Start at a random phase of the evaluation tick.
        tokio::time::sleep(Duration::from_millis(rand::random::<u64>() % 1000)).await;
        let body = spans(&service, 100, 60, SystemClock.now_ns() - 1_000_000_000);
        let resp = client
            .post(&otlp)
            .header("content-type", "application/x-protobuf")
            .body(body)
            .send()
            .await?;
        anyhow::ensure!(
            resp.status().is_success(),
            "export refused: {}",
            resp.status()
        );
        let acked = Instant::now();
        let deadline = acked + Duration::from_secs(30);
        let received = loop {
            let found = sink
                .bodies
                .lock()
                .expect("sink lock")
                .iter()
                .find(|(_, b)| b["group_labels"]["slo"] == slo.as_str() && b["status"] == "firing")
                .map(|(at, _)| *at);
            if let Some(at) = found {
                break at;
            }
            anyhow::ensure!(Instant::now() < deadline, "no page for {slo} within 30 s");
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        let micros = received.saturating_duration_since(acked).as_micros() as u64;
        hist.record(micros.max(1))?;
    }
    report("export acknowledged → page webhook received", &hist);
    let _ = stop_tx.send(());
    server.await??;
    Ok(())
}

fn sample_alert(i: usize) -> Alert {
    let mut labels = Labels::new();
    for (k, v) in [
        ("alertname", "SLOBurnRate".to_string()),
        ("slo", format!("slo-{i}")),
        ("service", format!("service-{}", i % 50)),
        ("severity", "page".to_string()),
        ("window", "1h/5m".to_string()),
    ] {
        labels.insert(k.to_string(), v);
    }
    let mut annotations = Labels::new();
    annotations.insert(
        "summary".into(),
        format!("slo-{i} burns its error budget 20.0× too fast"),
    );
    annotations.insert(
        "description".into(),
        "Burn rate 20.00× over 1h and 31.00× over 5m; the page-1h condition needs 14.400× over both.".into(),
    );
    Alert {
        fingerprint: format!("{i:016x}"),
        labels,
        annotations,
        state: State::Firing,
        active_since: 0,
        fired_at: Some(0),
        resolved_at: None,
        last_met: 0,
        slo: format!("slo-{i}"),
        values: Default::default(),
        examples: vec![],
        hints: vec![],
        flapping: false,
        group: Default::default(),
    }
}

async fn delivery(n: usize, groups: usize, concurrency: usize) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let sink = Sink::default();
    let addr = start_sink(sink.clone()).await?;
    let store = smolder_alerting::store::Store::open(&dir.path().join("alerts.db"))?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let mut config = AlertingConfig::default();
    config
        .receivers
        .push(webhook("hook", format!("http://{addr}/hook"), concurrency));
    let engine =
        smolder_query::QueryEngine::new(Vec::new(), smolder_query::QueryLimits::default())?;
    let alerting = smolder_alerting::Alerting::new(
        store,
        engine,
        Arc::clone(&clock),
        &config,
        "http://127.0.0.1".into(),
    )?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let runner = tokio::spawn(Arc::clone(&alerting).run(async move {
        let _ = stop_rx.await;
    }));
    println!("{n} notifications in {groups} groups, outbox on disk, concurrency {concurrency}");
    let started = Instant::now();
    let mut enqueue_time = Duration::ZERO;
    for chunk in (0..n).collect::<Vec<_>>().chunks(100) {
        let items: Vec<(Notification, Option<_>)> = chunk
            .iter()
            .map(|&i| {
                let now = clock.now_ns();
                let n = Notification {
                    id: new_id(now),
                    receiver: "hook".into(),
                    group_key: format!("0:{{slo=\"slo-{}\"}}", i % groups),
                    group_labels: Labels::new(),
                    status: "firing".into(),
                    alerts: vec![sample_alert(i)],
                    created_at: now,
                    thread: String::new(),
                    external_url: "http://127.0.0.1".into(),
                    resend_interval_ns: 0,
                    scaling: None,
                    report: None,
                    tenant: Default::default(),
                };
                (n, None)
            })
            .collect();
        let t = Instant::now();
        let seqs = alerting.store().enqueue(&items)?;
        enqueue_time += t.elapsed();
        alerting
            .deliverer()
            .push(seqs.into_iter().zip(items.into_iter().map(|(n, _)| n)));
    }
    let deadline = Instant::now() + Duration::from_secs(600);
    while sink.count.load(Ordering::Relaxed) < n as u64 || alerting.deliverer().pending() > 0 {
        anyhow::ensure!(Instant::now() < deadline, "not delivered within 10 minutes");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let total = started.elapsed();
    println!(
        "delivered {} in {:.2} s: {:.0} notifications/s (writing them to the outbox: {:.0}/s)",
        sink.count.load(Ordering::Relaxed),
        total.as_secs_f64(),
        n as f64 / total.as_secs_f64(),
        n as f64 / enqueue_time.as_secs_f64()
    );
    let _ = stop_tx.send(());
    runner.await?;
    Ok(())
}

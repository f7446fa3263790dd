//! The delivery engine against a local HTTP receiver: per-receiver limits on
//! requests in flight and per second, and a notification whose receiver was
//! removed from the configuration.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use smolder_alerting::alert::{Alert, Labels, State};
use smolder_alerting::config::{DeliveryConfig, ReceiverConfig};
use smolder_alerting::deliver::Deliverer;
use smolder_alerting::notification::{Notification, new_id};
use smolder_alerting::receivers::Receiver;
use smolder_alerting::store::Store;
use smolder_common::clock::{Clock, SystemClock};

#[derive(Clone, Default)]
struct Sink {
    in_flight: Arc<AtomicUsize>,
    max_in_flight: Arc<AtomicUsize>,
    arrivals: Arc<Mutex<Vec<Instant>>>,
    /// Answer 503 instead of 200.
    unavailable: bool,
}

async fn start_sink(sink: Sink) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().fallback(move || {
        let sink = sink.clone();
        async move {
            sink.arrivals.lock().unwrap().push(Instant::now());
            let now = sink.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            sink.max_in_flight.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(30)).await;
            sink.in_flight.fetch_sub(1, Ordering::SeqCst);
            if sink.unavailable {
                (
                    axum::http::StatusCode::SERVICE_UNAVAILABLE,
                    "down for maintenance",
                )
            } else {
                (axum::http::StatusCode::OK, "ok")
            }
        }
    });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

fn notification(receiver: &str, group: usize, now: i64) -> Notification {
    Notification {
        id: new_id(now),
        receiver: receiver.to_string(),
        group_key: format!("0:{{slo=\"slo-{group}\"}}"),
        group_labels: Labels::new(),
        status: "firing".to_string(),
        alerts: vec![Alert {
            fingerprint: format!("{group:016x}"),
            labels: Labels::new(),
            annotations: Labels::new(),
            state: State::Firing,
            active_since: now,
            fired_at: Some(now),
            resolved_at: None,
            last_met: now,
            slo: format!("slo-{group}"),
            values: Default::default(),
            examples: vec![],
            hints: vec![],
            flapping: false,
            group: Default::default(),
        }],
        created_at: now,
        thread: String::new(),
        external_url: String::new(),
        resend_interval_ns: 0,
        scaling: None,
        report: None,
        tenant: Default::default(),
    }
}

async fn deliver_all(
    config: &str,
    count: usize,
    receiver_name: &str,
) -> (Sink, Arc<Store>, Arc<Deliverer>) {
    deliver_to(
        Sink::default(),
        config,
        DeliveryConfig::default(),
        count,
        receiver_name,
    )
    .await
}

async fn deliver_to(
    sink: Sink,
    config: &str,
    delivery: DeliveryConfig,
    count: usize,
    receiver_name: &str,
) -> (Sink, Arc<Store>, Arc<Deliverer>) {
    smolder_alerting::manager::install_crypto_provider();
    let addr = start_sink(sink.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(&dir.path().join("alerts.db")).unwrap());
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let deliverer = Arc::new(Deliverer::new(Arc::clone(&store), Arc::clone(&clock)).unwrap());
    let rc: ReceiverConfig =
        toml::from_str(&format!("{config}\nurl = \"http://{addr}/\"\n")).unwrap();
    let receiver = Receiver::new(rc.clone(), &delivery, reqwest::Client::new()).unwrap();
    deliverer.configure([(rc.name.clone(), Arc::new(receiver))].into(), delivery);
    let items: Vec<_> = (0..count)
        .map(|g| (notification(receiver_name, g, clock.now_ns()), None))
        .collect();
    let seqs = store.enqueue(&items).unwrap();
    deliverer.push(seqs.into_iter().zip(items.into_iter().map(|(n, _)| n)));
    let runner = tokio::spawn(Arc::clone(&deliverer).run(std::future::pending()));
    let deadline = Instant::now() + Duration::from_secs(60);
    while deliverer.pending() > 0 {
        assert!(
            Instant::now() < deadline,
            "{} still pending",
            deliverer.pending()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    runner.abort();
    std::mem::forget(dir);
    (sink, store, deliverer)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_in_flight_stay_within_the_receivers_limit() {
    let (sink, store, _) = deliver_all(
        "name = \"hook\"\ntype = \"webhook\"\nmax_concurrency = 3",
        40,
        "hook",
    )
    .await;
    assert_eq!(sink.arrivals.lock().unwrap().len(), 40);
    let max = sink.max_in_flight.load(Ordering::SeqCst);
    assert!(max <= 3, "at most 3 in flight, saw {max}");
    let rows = store
        .deliveries(
            &Default::default(),
            Some("hook"),
            Some("delivered"),
            None,
            100,
        )
        .unwrap();
    assert_eq!(rows.len(), 40);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_per_second_stay_within_the_rate_limit() {
    let (sink, _, _) = deliver_all(
        "name = \"hook\"\ntype = \"webhook\"\nmax_concurrency = 16\nrate_limit = 5",
        16,
        "hook",
    )
    .await;
    let arrivals = sink.arrivals.lock().unwrap().clone();
    assert_eq!(arrivals.len(), 16);
    // A burst of 5, then one every 200 ms: no second holds more than 5 + 5
    // (however slow the machine, a limit cannot be exceeded by slowness).
    for (i, a) in arrivals.iter().enumerate() {
        let within = arrivals[i..]
            .iter()
            .take_while(|b| b.duration_since(*a) < Duration::from_secs(1))
            .count();
        assert!(within <= 10, "{within} requests within one second");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notification_for_a_removed_receiver_fails_with_the_reason() {
    let (sink, store, _) = deliver_all("name = \"hook\"\ntype = \"webhook\"", 1, "gone").await;
    assert!(sink.arrivals.lock().unwrap().is_empty());
    let rows = store
        .deliveries(&Default::default(), Some("gone"), None, None, 10)
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(
        rows[0].state,
        smolder_alerting::store::DeliveryState::Failed
    );
    assert!(
        rows[0]
            .last_error
            .as_deref()
            .unwrap()
            .contains("no receiver named \"gone\""),
        "{:?}",
        rows[0].last_error
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_stop_after_max_retry_age_and_the_notification_is_dead_lettered() {
    let sink = Sink {
        unavailable: true,
        ..Default::default()
    };
    let delivery = DeliveryConfig {
        initial_backoff: Duration::from_millis(100),
        max_backoff: Duration::from_millis(400),
        max_retry_age: Duration::from_secs(2),
        ..Default::default()
    };
    let (sink, store, _) = deliver_to(
        sink,
        "name = \"hook\"\ntype = \"webhook\"",
        delivery,
        1,
        "hook",
    )
    .await;
    let attempts = sink.arrivals.lock().unwrap().len();
    assert!(attempts >= 2, "retried: {attempts} attempts");
    let rows = store
        .deliveries(&Default::default(), Some("hook"), None, None, 10)
        .unwrap();
    assert_eq!(rows[0].state, smolder_alerting::store::DeliveryState::Dead);
    assert_eq!(rows[0].attempts as usize, attempts);
    assert_eq!(rows[0].last_status, Some(503));
    let error = rows[0].last_error.as_deref().unwrap();
    assert!(error.contains("HTTP 503: down for maintenance"), "{error}");
    assert!(error.contains("max_retry_age"), "{error}");
}

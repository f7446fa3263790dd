//! Durability: every acknowledged export survives a crash (SIGKILL) exactly
//! once, through the write-ahead log, and a corrupt log stops the start with
//! a clear message.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use serde_json::json;
use smolder_sample_data::Generator;
use smolder_tests::{Server, span_count};

/// Requests of `per_request` spans with ids unique across all of them.
fn requests(count: usize, per_request: usize) -> Vec<ExportTraceServiceRequest> {
    let mut g = Generator::new(7, 1_700_000_000_000_000_000);
    (0..count).map(|_| g.spans(per_request)).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn acknowledged_exports_survive_a_crash_exactly_once() {
    let mut server = Server::start(&[]);
    let requests = requests(400, 50);
    let sent_total: u64 = requests.iter().map(span_count).sum();
    let acked = Arc::new(AtomicU64::new(0));
    let acked_requests = Arc::new(AtomicU64::new(0));
    let queue = Arc::new(std::sync::Mutex::new(requests));

    // Four clients export until the server dies under them.
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let url = server.otlp_grpc_url();
        let (acked, acked_requests, queue) = (
            Arc::clone(&acked),
            Arc::clone(&acked_requests),
            Arc::clone(&queue),
        );
        tasks.push(tokio::spawn(async move {
            let mut client = TraceServiceClient::connect(url).await.unwrap();
            loop {
                let Some(request) = queue.lock().unwrap().pop() else {
                    return;
                };
                let spans = span_count(&request);
                match client.export(request).await {
                    Ok(_) => {
                        acked.fetch_add(spans, Ordering::SeqCst);
                        acked_requests.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(_) => return,
                }
            }
        }));
    }
    // Crash mid-stream, once a good number of exports were acknowledged.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while acked_requests.load(Ordering::SeqCst) < 40 {
        assert!(
            std::time::Instant::now() < deadline,
            "exports were not acknowledged"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.kill();
    for t in tasks {
        t.await.unwrap();
    }
    let acked = acked.load(Ordering::SeqCst);
    assert!(acked < sent_total, "the crash should interrupt the stream");

    server.restart();
    let stored = server
        .scalar("SELECT count(*) FROM spans")
        .as_u64()
        .unwrap();
    let distinct = server
        .scalar("SELECT count(DISTINCT span_id) FROM spans")
        .as_u64()
        .unwrap();
    assert_eq!(stored, distinct, "no span is stored twice");
    // Exports in flight at the crash may or may not have been stored; every
    // acknowledged one was.
    assert!(
        stored >= acked && stored <= sent_total,
        "stored {stored}, acknowledged {acked}, sent {sent_total}"
    );
    assert_eq!(stored % 50, 0, "whole exports only: {stored}");

    // And the restarted server goes on accepting, numbering after the replay.
    let mut client = TraceServiceClient::connect(server.otlp_grpc_url())
        .await
        .unwrap();
    let extra = Generator::new(99, 1_700_000_000_000_000_000).spans(10);
    client.export(extra).await.unwrap();
    server.crash_and_restart();
    assert_eq!(
        server.scalar("SELECT count(*) FROM spans"),
        json!(stored + 10)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn every_sync_policy_keeps_data_across_a_process_crash() {
    for policy in ["always", "50ms", "off"] {
        let mut server = Server::start(&["--wal-sync", policy]);
        let mut client = TraceServiceClient::connect(server.otlp_grpc_url())
            .await
            .unwrap();
        for request in requests(5, 20) {
            client.export(request).await.unwrap();
        }
        // Only the process dies, not the machine: what reached the OS stays.
        server.crash_and_restart();
        assert_eq!(
            server.scalar("SELECT count(*) FROM spans"),
            json!(100),
            "policy {policy}"
        );
    }
}

#[test]
fn a_corrupt_log_stops_the_start_and_names_the_place() {
    // The same export twice makes two records (the first corrupted below,
    // the second after it): the retried-export filter is off.
    let mut server = Server::start(&["--dedup-window", "0s"]);
    let body = std::fs::read(smolder_sample_data::fixtures::path("traces.pb")).unwrap();
    for _ in 0..2 {
        let (status, _) = smolder_tests::http_request(
            server.otlp_http,
            "POST",
            "/v1/traces",
            &[("content-type", "application/x-protobuf")],
            &body,
        );
        assert_eq!(status, 200);
    }
    server.kill();
    let wal = server.data_dir().join("wal");
    let segment = std::fs::read_dir(&wal)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut data = std::fs::read(&segment).unwrap();
    data[8 + 33 + 3] ^= 0x55; // inside the first record's payload
    std::fs::write(&segment, &data).unwrap();

    let output = std::process::Command::new(smolder_tests::smolder_bin())
        .args(["serve", "--otlp-grpc-addr", "127.0.0.1:0"])
        .args([
            "--otlp-http-addr",
            "127.0.0.1:0",
            "--http-addr",
            "127.0.0.1:0",
        ])
        .arg("--data-dir")
        .arg(server.data_dir())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("corrupt record at byte 8: checksum mismatch")
            && stderr.contains(&segment.display().to_string()),
        "{stderr}"
    );
}

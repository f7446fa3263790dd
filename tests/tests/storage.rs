//! Durable storage end to end: `smolder loadgen` through repeated crashes,
//! a clean restart served from Parquet, backfilled and out-of-order data, the
//! accepted time window, and a full disk.

use std::collections::HashSet;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use serde_json::{Value, json};
use smolder_sample_data::Generator;
use smolder_tests::{Server, loadgen, loadgen_report as report, span_count};

const HOUR: u64 = 3_600_000_000_000;
const DAY: u64 = 24 * HOUR;

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

/// A column of a query's rows as strings.
fn column(answer: &Value) -> Vec<String> {
    answer["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row[0].as_str().unwrap().to_string())
        .collect()
}

/// Checks that every id in `ack_log` is stored exactly once and that nothing
/// is stored that was never sent; returns the number stored.
fn check_exactly_once(server: &Server, table: &str, ack_log: &Path, sent: u64) -> usize {
    let stored = column(&server.sql(&format!("SELECT span_id FROM {table}")));
    let unique: HashSet<&String> = stored.iter().collect();
    assert_eq!(
        unique.len(),
        stored.len(),
        "{table}: an item is stored twice"
    );
    let acked: Vec<String> = std::fs::read_to_string(ack_log)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    let missing: Vec<&String> = acked.iter().filter(|id| !unique.contains(id)).collect();
    assert!(
        missing.is_empty(),
        "{table}: {} of {} acknowledged items are missing, e.g. {:?}",
        missing.len(),
        acked.len(),
        &missing[..missing.len().min(3)]
    );
    assert!(
        stored.len() as u64 <= sent,
        "{table}: more stored than sent"
    );
    stored.len()
}

#[test]
fn every_acknowledged_item_survives_repeated_crashes_under_load_exactly_once() {
    // Flushes every 200 ms, so the crashes also land in the middle of
    // flushes, manifest updates and log truncations.
    let mut server = Server::start(&["--flush-interval", "200ms", "--query-max-rows", "1000000"]);
    let logs_dir = tempfile::tempdir().unwrap();
    let traces_ack = logs_dir.path().join("traces.ack");
    let logs_ack = logs_dir.path().join("logs.ack");
    let (grpc, http) = (server.otlp_grpc_url(), server.otlp_http_url());
    let common = [
        "--batch-size",
        "50",
        "--rate",
        "10000",
        "--concurrency",
        "4",
        "--duration",
        "14s",
        "--requests",
        "2800",
        "--pool",
        "2800",
        // As OTLP exporters do: an export whose connection broke or that
        // met a server not yet back is sent again, and must be stored once.
        "--retry",
    ];
    let traces = loadgen(
        &[
            &[
                "--endpoint",
                &grpc,
                "--protocol",
                "grpc",
                "--signal",
                "traces",
            ][..],
            &common,
            &["--ack-log", traces_ack.to_str().unwrap()],
        ]
        .concat(),
    );
    let logs = loadgen(
        &[
            &[
                "--endpoint",
                &http,
                "--protocol",
                "http-protobuf",
                "--signal",
                "logs",
                "--seed",
                "2",
            ][..],
            &common,
            &["--ack-log", logs_ack.to_str().unwrap()],
        ]
        .concat(),
    );

    // Five crashes at moments that differ from run to run, with 200
    // exports a second in flight: some land after an export was logged and
    // before it was answered, and its retry must not be stored again.
    let mut seed = now_ns();
    for crash in 0..5 {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        let wait = Duration::from_millis(800 + (seed >> 33) % 1_400);
        std::thread::sleep(wait);
        eprintln!("crash {crash} after {wait:?}");
        server.kill();
        std::thread::sleep(Duration::from_millis(100));
        server.restart_on_same_ports();
    }
    let traces = report(traces);
    let logs = report(logs);
    for r in [&traces, &logs] {
        assert!(
            r["items_acknowledged"].as_u64().unwrap() > 0
                && r["requests_retried"].as_u64().unwrap() > 0,
            "the load should have been both acknowledged and interrupted: {r}"
        );
    }

    // After one more crash, from the log and the files alone:
    server.kill();
    server.restart();
    let spans = check_exactly_once(
        &server,
        "spans",
        &traces_ack,
        traces["items_sent"].as_u64().unwrap(),
    );
    let records = check_exactly_once(
        &server,
        "logs",
        &logs_ack,
        logs["items_sent"].as_u64().unwrap(),
    );
    assert!(spans as u64 >= traces["items_acknowledged"].as_u64().unwrap());
    assert!(records as u64 >= logs["items_acknowledged"].as_u64().unwrap());
}

#[tokio::test(flavor = "multi_thread")]
async fn after_a_clean_restart_everything_is_served_from_parquet() {
    let mut server = Server::start(&[]);
    let mut client = TraceServiceClient::connect(server.otlp_grpc_url())
        .await
        .unwrap();
    let mut generator = Generator::new(3, now_ns() - HOUR);
    let mut sent = 0;
    for _ in 0..10 {
        let request = generator.spans(100);
        sent += span_count(&request);
        client.export(request).await.unwrap();
    }
    assert!(server.stop(), "graceful shutdown failed");

    // The shutdown flushed: the manifest lists the files and the log holds
    // nothing to replay.
    let manifest: Value = serde_json::from_slice(
        &std::fs::read(server.data_dir().join("parquet/manifest.json")).unwrap(),
    )
    .unwrap();
    let files = manifest["files"].as_array().unwrap();
    assert!(!files.is_empty());
    let rows: u64 = files.iter().map(|f| f["rows"].as_u64().unwrap()).sum();
    assert_eq!(rows, sent);

    server.restart();
    assert_eq!(server.scalar("SELECT count(*) FROM spans"), json!(sent));
    assert_eq!(
        server.scalar("SELECT count(DISTINCT span_id) FROM spans"),
        json!(sent)
    );
    let (status, metrics) = smolder_tests::http_request(server.http, "GET", "/metrics", &[], b"");
    assert_eq!(status, 200);
    assert!(
        metrics.contains("smolder_buffer_rows{table=\"spans\"} 0"),
        "nothing replayed into memory:\n{metrics}"
    );
    assert!(metrics.contains("smolder_storage_files{table=\"spans\"}"));
    // A time filter prunes the files: EXPLAIN shows the predicate reaching
    // the Parquet scan.
    let plan = server.sql(
        "EXPLAIN SELECT count(*) FROM spans \
         WHERE start_time > now() - INTERVAL '1 day' AND service_name = 'checkout'",
    );
    let text = plan.to_string();
    assert!(
        text.contains("DataSourceExec") && text.contains("predicate="),
        "{text}"
    );
    // A range no file overlaps is answered without reading any.
    let plan =
        server.sql("EXPLAIN SELECT span_id FROM spans WHERE start_time > now() + INTERVAL '1 day'");
    assert!(!plan.to_string().contains("DataSourceExec"), "{plan}");
}

#[tokio::test(flavor = "multi_thread")]
async fn backfilled_and_out_of_order_data_is_kept_and_bad_times_are_refused() {
    let server = Server::start(&["--flush-interval", "200ms", "--retention-traces", "7d"]);
    let mut client = TraceServiceClient::connect(server.otlp_grpc_url())
        .await
        .unwrap();
    let now = now_ns();
    // A replay of history, out of order: three days ago, now, two days ago,
    // five minutes ago.
    let mut expected = Vec::new();
    for (seed, at) in [
        (1, now - 3 * DAY),
        (2, now),
        (3, now - 2 * DAY),
        (4, now - 5 * 60_000_000_000),
    ] {
        let request = Generator::new(seed, at).spans(40);
        expected.push((at, span_count(&request)));
        let answer = client.export(request).await.unwrap().into_inner();
        assert!(answer.partial_success.is_none(), "{answer:?}");
    }
    // Items two hours in the future and eight days old (the retention of
    // spans is seven) are refused as partial success, with the reason.
    for (at, reason) in [
        (now + 2 * HOUR, "in the future"),
        (now - 8 * DAY, "older than the 7days retention of spans"),
    ] {
        let request = Generator::new(9, at).spans(10);
        let answer = client.export(request).await.unwrap().into_inner();
        let partial = answer.partial_success.expect("partial success");
        assert_eq!(partial.rejected_spans, 10);
        assert!(
            partial.error_message.contains(reason),
            "{}",
            partial.error_message
        );
    }
    // Wait for a flush so the old days are read from their own partitions.
    let spans_dir = server.data_dir().join("parquet/tenant=default/spans");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !spans_dir.exists() {
        assert!(Instant::now() < deadline, "nothing was flushed");
        std::thread::sleep(Duration::from_millis(100));
    }
    let total: u64 = expected.iter().map(|(_, n)| n).sum();
    assert_eq!(server.scalar("SELECT count(*) FROM spans"), json!(total));
    for (at, n) in expected {
        let from = at / 1_000_000_000 - 1;
        let sql = format!(
            "SELECT count(*) FROM spans WHERE start_time >= to_timestamp({from}) \
             AND start_time < to_timestamp({from}) + INTERVAL '1 minute'"
        );
        assert_eq!(server.scalar(&sql), json!(n), "{sql}");
    }
    // A flush writes the partitions one after another: wait for the last.
    let dates = || std::fs::read_dir(&spans_dir).unwrap().count();
    while dates() < 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        dates() >= 3,
        "one date partition per day of data, found {}",
        dates()
    );
}

/// A small tmpfs mounted for the test and unmounted after it.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Self {
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .expect("running mount");
        assert!(
            status.success(),
            "mounting a tmpfs at {} failed: this test fills a small file system and \
             needs root (CAP_SYS_ADMIN) to mount one",
            dir.display()
        );
        Self(dir.to_path_buf())
    }

    fn resize(&self, size: &str) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.0)
            .status()
            .unwrap();
        assert!(status.success(), "remounting the tmpfs failed");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_disk_answers_unavailable_loses_nothing_and_recovers_by_itself() {
    let dir = tempfile::tempdir().unwrap();
    let fs = Tmpfs::mount(dir.path(), "3m");
    let data = dir.path().join("data");
    let mut server = Server::start_in(
        &data,
        &["--flush-interval", "200ms", "--query-max-rows", "1000000"],
    );
    let mut client = TraceServiceClient::connect(server.otlp_grpc_url())
        .await
        .unwrap();
    let mut generator = Generator::new(5, now_ns() - HOUR);
    let mut acked: Vec<String> = Vec::new();
    let mut refused = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    // Fill the disk until exports are refused a few times in a row.
    while refused < 5 {
        assert!(Instant::now() < deadline, "the disk never filled up");
        let request = generator.spans(200);
        let ids: Vec<String> = request
            .resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .flat_map(|s| &s.spans)
            .map(|s| s.span_id.iter().map(|b| format!("{b:02x}")).collect())
            .collect();
        match client.export(request).await {
            Ok(_) => {
                acked.extend(ids);
                refused = 0;
            }
            Err(status) => {
                assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
                refused += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    assert!(!acked.is_empty());
    // The server still answers, with everything it acknowledged.
    let stored: HashSet<String> = column(&server.sql("SELECT span_id FROM spans"))
        .into_iter()
        .collect();
    assert!(acked.iter().all(|id| stored.contains(id)));

    // Space returns; ingest resumes without a restart.
    fs.resize("256m");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let request = generator.spans(200);
        if client.export(request).await.is_ok() {
            break;
        }
        assert!(Instant::now() < deadline, "ingest did not resume");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // And after a crash, every acknowledged span is there exactly once.
    server.crash_and_restart();
    let stored = column(&server.sql("SELECT span_id FROM spans"));
    let unique: HashSet<&String> = stored.iter().collect();
    assert_eq!(unique.len(), stored.len(), "a span is stored twice");
    assert!(
        acked.iter().all(|id| unique.contains(id)),
        "an acknowledged span is missing"
    );
    drop(server);
}

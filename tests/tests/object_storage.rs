//! Parquet files and their manifest in an S3 bucket (`--storage-url
//! s3://…`), against a real S3-compatible server (`s3s-fs`, started per
//! test on a free loopback port): the write-ahead log stays in the data
//! directory, and nothing acknowledged is lost across crashes.

use std::time::{Duration, Instant};

use smolder_tests::s3::S3Server;
use smolder_tests::{Server, http_post, route_spans, smolder_bin};

fn post_spans(server: &Server, service: &str, n: usize, seed: u64) {
    let (status, body) = http_post(
        server.otlp_http,
        "/v1/traces",
        "application/x-protobuf",
        &route_spans(service, n, 0, seed),
    );
    assert_eq!(status, 200, "{body}");
}

/// Waits until `check` holds (30 s at most).
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !check() {
        assert!(Instant::now() < deadline, "{what} within 30 s");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn files_and_manifest_live_in_the_bucket_and_every_acknowledged_span_survives_crashes() {
    let s3 = S3Server::start();
    let env = s3.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let url = s3.url("prod/eu");
    let mut server =
        Server::start_with_env(&["--storage-url", &url, "--flush-interval", "1s"], &env);
    let count = "SELECT count(*) FROM spans";

    post_spans(&server, "checkout", 300, 1);
    assert_eq!(server.wait_for_scalar(count, &300.into()), 300);
    // Flushed to the bucket, under the prefix: Parquet files and the manifest.
    eventually("a Parquet file in the bucket", || {
        !s3.objects("prod/eu", ".parquet").is_empty()
    });
    assert_eq!(
        s3.objects("prod/eu", "manifest.json"),
        ["prod/eu/manifest.json"]
    );
    let files = s3.objects("prod/eu", ".parquet");
    assert!(
        files
            .iter()
            .all(|f| f.starts_with("prod/eu/tenant=default/spans/date=")),
        "{files:?}"
    );
    // The data directory keeps the log and the writer id, no Parquet.
    let data = server.data_dir().to_path_buf();
    assert!(data.join("wal").is_dir());
    assert!(data.join("writer-id").is_file());
    assert!(!data.join("parquet").exists(), "no local Parquet folder");

    // Unflushed spans come back from the log after a SIGKILL; flushed ones
    // from the bucket; none twice.
    post_spans(&server, "checkout", 200, 2);
    server.crash_and_restart();
    assert_eq!(server.wait_for_scalar(count, &500.into()), 500);
    post_spans(&server, "payment", 100, 3);
    server.crash_and_restart();
    assert_eq!(server.wait_for_scalar(count, &600.into()), 600);
    // A graceful stop flushes the rest: the bucket's manifest lists all 600.
    assert!(server.stop(), "a clean exit");
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(s3.bucket_dir().join("prod/eu/manifest.json")).unwrap(),
    )
    .unwrap();
    let rows: u64 = manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rows"].as_u64().unwrap())
        .sum();
    assert_eq!(rows, 600, "{manifest:#}");
    server.restart();
    assert_eq!(server.scalar(count), 600);
    assert_eq!(
        server.scalar("SELECT count(*) FROM spans WHERE service_name = 'payment'"),
        100
    );
}

#[test]
fn a_bad_storage_url_or_a_refused_bucket_is_named_at_start() {
    let s3 = S3Server::start();
    let data = tempfile::tempdir().unwrap();
    let run = |url: &str, env: &[(&'static str, String)]| {
        let out = std::process::Command::new(smolder_bin())
            .args(["serve", "--storage-url", url, "--data-dir"])
            .arg(data.path())
            .args([
                "--otlp-grpc-addr",
                "127.0.0.1:0",
                "--otlp-http-addr",
                "127.0.0.1:0",
            ])
            .args(["--http-addr", "127.0.0.1:0"])
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .output()
            .expect("running smolder serve");
        assert!(!out.status.success(), "{url}: started");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let said = run("s3:///no-bucket", &[]);
    assert!(
        said.contains("storage.url") && said.contains("names no bucket"),
        "{said}"
    );
    // The right server, the wrong secret: the bucket refuses, and the
    // message says which storage could not be opened.
    let mut env = s3.env();
    env.retain(|(k, _)| *k != "AWS_SECRET_ACCESS_KEY");
    env.push(("AWS_SECRET_ACCESS_KEY", "wrong".into()));
    let said = run(&s3.url("x"), &env);
    assert!(said.contains("s3://smolder/x"), "{said}");
}

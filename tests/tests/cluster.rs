//! Several processes with roles on one S3 bucket (a real S3 server,
//! s3s-fs): two ingesters, a querier, an evaluator and two compactors.
//! Every acknowledged span, log record and metric point is returned by the
//! querier exactly once — while one ingester is killed again and again, before and
//! after flushes and compaction — an SLO on the evaluator counts both
//! ingesters' spans exactly, and the compactor's lease moves when its
//! holder is killed.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use smolder_tests::cluster::Node;
use smolder_tests::s3::S3Server;
use smolder_tests::{http_post, http_request, loadgen, loadgen_report};

fn sql(node: &Node, sql: &str) -> Value {
    let body = json!({ "sql": sql }).to_string();
    let (status, text) = http_post(
        node.addr("http"),
        "/api/v1/sql",
        "application/json",
        body.as_bytes(),
    );
    assert_eq!(status, 200, "{sql}: {text}");
    serde_json::from_str(&text).unwrap()
}

fn scalar(node: &Node, query: &str) -> Value {
    sql(node, query)["rows"][0][0].clone()
}

/// `smolder loadgen` in the background, retrying as exporters do, logging
/// what was acknowledged.
fn load(
    endpoint: &str,
    protocol: &str,
    signal: &str,
    seed: &str,
    ack: &Path,
) -> std::process::Child {
    // Metric exports of the generator are 10 s apart in time: few enough
    // requests to stay within the hour ingest accepts ahead, slow enough to
    // span the crashes.
    let (requests, rate) = match signal {
        "metrics" => ("60", "300"),
        _ => ("900", "4000"),
    };
    let ack = ack.to_str().unwrap();
    loadgen(&[
        "--endpoint",
        endpoint,
        "--protocol",
        protocol,
        "--signal",
        signal,
        "--seed",
        seed,
        "--batch-size",
        "50",
        "--rate",
        rate,
        "--concurrency",
        "2",
        "--duration",
        "12s",
        "--requests",
        requests,
        "--pool",
        requests,
        "--retry",
        "--ack-log",
        ack,
    ])
}

fn acked(paths: &[&Path]) -> Vec<String> {
    paths
        .iter()
        .flat_map(|p| {
            std::fs::read_to_string(p)
                .unwrap()
                .lines()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Every acknowledged id is in `table` on the querier, none twice.
fn exactly_once(querier: &Node, table: &str, acked: &[String], when: &str) {
    let answer = sql(
        querier,
        &format!("SELECT span_id FROM {table} WHERE service_name NOT LIKE 'pysdk-%'"),
    );
    assert!(
        answer.get("warnings").is_none(),
        "{when}: {:?}",
        answer["warnings"]
    );
    let stored: Vec<&str> = answer["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r[0].as_str().unwrap())
        .collect();
    let unique: HashSet<&str> = stored.iter().copied().collect();
    assert_eq!(
        unique.len(),
        stored.len(),
        "{when}: a row of {table} is returned twice"
    );
    let missing: Vec<&String> = acked
        .iter()
        .filter(|id| !unique.contains(id.as_str()))
        .collect();
    if !missing.is_empty() {
        // Lost, or late? Ask again after a while, for the report.
        std::thread::sleep(Duration::from_secs(5));
        let again = sql(
            querier,
            &format!("SELECT span_id FROM {table} WHERE service_name NOT LIKE 'pysdk-%'"),
        );
        let later: HashSet<&str> = again["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r[0].as_str().unwrap())
            .collect();
        let still = missing
            .iter()
            .filter(|id| !later.contains(id.as_str()))
            .count();
        // Where the missing rows are in the acknowledgement order (the
        // first ingester's log comes first).
        let index: std::collections::HashMap<&str, usize> = acked
            .iter()
            .enumerate()
            .map(|(i, id)| (id.as_str(), i))
            .collect();
        let mut at: Vec<usize> = missing.iter().map(|id| index[id.as_str()]).collect();
        at.sort_unstable();
        let runs: Vec<(usize, usize)> = at.iter().fold(Vec::new(), |mut runs, &i| {
            match runs.last_mut() {
                Some((_, end)) if *end + 1 == i => *end = i,
                _ => runs.push((i, i)),
            }
            runs
        });
        panic!(
            "{when}: {} of {} acknowledged {table} rows missing ({still} still missing 5 s later); \
             positions in the acknowledgement logs: {:?}",
            missing.len(),
            acked.len(),
            &runs[..runs.len().min(10)]
        );
    }
}

/// Every acknowledged metric point is on the querier once: as points have
/// no id, the points of each `service|metric|time` (one export's series at
/// one instant, all in one request) are all there, none twice.
fn points_exactly_once(querier: &Node, acked: &[String], when: &str) {
    let mut want: HashMap<&str, u64> = HashMap::new();
    for key in acked {
        *want.entry(key.as_str()).or_default() += 1;
    }
    let answer = sql(
        querier,
        "SELECT service_name || '|' || metric_name || '|' || CAST(CAST(time AS BIGINT) AS VARCHAR), count(*) \
         FROM metrics WHERE service_name NOT LIKE 'pysdk-%' GROUP BY 1",
    );
    assert!(answer.get("warnings").is_none(), "{when}: {answer}");
    let stored: HashMap<&str, u64> = answer["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r[0].as_str().unwrap(), r[1].as_u64().unwrap()))
        .collect();
    let wrong: Vec<_> = want
        .iter()
        .filter(|(key, n)| stored.get(*key) != Some(n))
        .map(|(key, n)| (key, n, stored.get(key)))
        .collect();
    assert!(
        wrong.is_empty(),
        "{when}: {} of {} keys differ (key, acknowledged, stored): {:?}",
        wrong.len(),
        want.len(),
        &wrong[..wrong.len().min(5)]
    );
}

/// Runs tests/python/export.py against an ingester.
fn python_export(node: &Node, protocol: &str, run: &str) {
    let endpoint = match protocol {
        "grpc" => format!("http://{}", node.addr("otlp_grpc")),
        _ => format!("http://{}", node.addr("otlp_http")),
    };
    let out = smolder_tests::python_export_command(".venv-otel", &endpoint, protocol, run)
        .output()
        .expect("running tests/python/export.py");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn lease_holder(s3: &S3Server) -> Option<String> {
    let text = std::fs::read_to_string(s3.bucket_dir().join("c/leases/compactor.json")).ok()?;
    let lease: Value = serde_json::from_str(&text).ok()?;
    Some(lease["holder"].as_str()?.to_string())
}

fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "{what} within {limit:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

const SLO: &str = r#"
apiVersion: openslo/v1
kind: SLO
metadata:
  name: all-spans
spec:
  service: shop
  indicator:
    metadata:
      name: all-ok
    spec:
      ratioMetric:
        counter: true
        good:
          metricSource:
            type: smolder
            spec:
              table: spans
              filter: "status_code <> 'ERROR'"
        total:
          metricSource:
            type: smolder
            spec:
              table: spans
              filter: "span_id IS NOT NULL"
  timeWindow:
    - duration: 7d
      isRolling: true
  budgetingMethod: Occurrences
  objectives:
    - target: 0.99
"#;

#[test]
fn a_cluster_returns_every_acknowledged_item_once_through_crashes_flushes_and_compaction() {
    let s3 = S3Server::start();
    let ingest = ["--flush-interval", "1s"];
    let mut a = Node::start(&s3, "c", "ingest", &ingest);
    let b = Node::start(&s3, "c", "ingest", &ingest);
    let ingesters = format!("{},{}", a.addr("flight"), b.addr("flight"));
    let querier = Node::start(
        &s3,
        "c",
        "query",
        &["--ingesters", &ingesters, "--query-max-rows", "1000000"],
    );
    let evaluator = Node::start(
        &s3,
        "c",
        "evaluate",
        &["--ingesters", &ingesters, "--slo-interval", "1s"],
    );
    let mut compactor = Node::start(&s3, "c", "compact", &["--lease-ttl", "2s"]);
    wait_until(
        "the first compactor takes the lease",
        Duration::from_secs(20),
        || lease_holder(&s3).as_deref() == Some(compactor.writer_id().as_str()),
    );
    let standby = Node::start(&s3, "c", "compact", &["--lease-ttl", "2s"]);

    // A querier without the query role's peers answers; a process without
    // the query role has no SQL API.
    let (status, _) = http_post(
        a.addr("http"),
        "/api/v1/sql",
        "application/json",
        b"{\"sql\":\"SELECT 1\"}",
    );
    assert_eq!(status, 404, "an ingester alone has no SQL API");

    let acks = tempfile::tempdir().unwrap();
    let ack = |name: &str| acks.path().join(name);
    let grpc = |n: &Node| format!("http://{}", n.addr("otlp_grpc"));
    let http = |n: &Node| format!("http://{}", n.addr("otlp_http"));
    let loads = [
        load(&grpc(&a), "grpc", "traces", "1", &ack("a.traces")),
        load(&grpc(&b), "grpc", "traces", "2", &ack("b.traces")),
        load(&http(&a), "http-protobuf", "logs", "3", &ack("a.logs")),
        load(&http(&b), "http-protobuf", "logs", "4", &ack("b.logs")),
        load(&grpc(&a), "grpc", "metrics", "5", &ack("a.metrics")),
        load(
            &http(&b),
            "http-protobuf",
            "metrics",
            "6",
            &ack("b.metrics"),
        ),
    ];
    // Ingester a dies three times under load (SIGKILL) and comes back.
    for crash in 0..3 {
        std::thread::sleep(Duration::from_millis(2_500));
        eprintln!("killing ingester a ({crash})");
        a.kill();
        std::thread::sleep(Duration::from_millis(300));
        a.restart_on_same_ports();
    }
    let reports: Vec<Value> = loads.into_iter().map(loadgen_report).collect();
    assert!(
        reports
            .iter()
            .all(|r| r["items_acknowledged"].as_u64().unwrap() > 0),
        "{reports:?}"
    );
    python_export(&a, "grpc", "ca");
    python_export(&b, "http/protobuf", "cb");

    // At once, from files and both ingesters' buffers.
    let spans = acked(&[&ack("a.traces"), &ack("b.traces")]);
    let logs = acked(&[&ack("a.logs"), &ack("b.logs")]);
    let acked_points = acked(&[&ack("a.metrics"), &ack("b.metrics")]);
    exactly_once(&querier, "spans", &spans, "right after the load");
    exactly_once(&querier, "logs", &logs, "right after the load");
    points_exactly_once(&querier, &acked_points, "right after the load");
    for run in ["ca", "cb"] {
        let service = format!("pysdk-{run}");
        for (table, n) in [("spans", 2), ("logs", 2)] {
            assert_eq!(
                scalar(
                    &querier,
                    &format!("SELECT count(*) FROM {table} WHERE service_name = '{service}'")
                ),
                json!(n),
                "{table} of the Python SDK's run {run}"
            );
        }
        let points = scalar(
            &querier,
            &format!("SELECT count(*) FROM metrics WHERE service_name = '{service}'"),
        );
        assert!(points.as_u64().unwrap() > 0, "metric points of run {run}");
    }
    let points = scalar(
        &querier,
        "SELECT count(*) FROM metrics WHERE service_name LIKE 'pysdk-c%'",
    );

    // The compactor merges both ingesters' files (its outputs carry its
    // writer id); nothing changes for the querier.
    let merged = format!("-{}-", compactor.writer_id());
    wait_until(
        "the compactor merges files",
        Duration::from_secs(60),
        || {
            s3.objects("c", ".parquet")
                .iter()
                .any(|k| k.contains(&merged))
        },
    );
    exactly_once(&querier, "spans", &spans, "after compaction");
    exactly_once(&querier, "logs", &logs, "after compaction");
    points_exactly_once(&querier, &acked_points, "after compaction");
    // The querier read files it had read before from its local copies.
    let (_, metrics) = http_request(querier.addr("http"), "GET", "/metrics", &[], b"");
    let sample = |name: &str| -> f64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} on /metrics:\n{metrics}"))
    };
    assert!(
        sample("smolder_read_cache_hits_total") > 0.0 && sample("smolder_read_cache_bytes") > 0.0,
        "the querier's read cache is used:\n{metrics}"
    );
    assert_eq!(
        scalar(
            &querier,
            "SELECT count(*) FROM metrics WHERE service_name LIKE 'pysdk-c%'"
        ),
        points
    );

    // The SLO on the evaluator counts every span of both ingesters.
    let total = scalar(&querier, "SELECT count(*) FROM spans")
        .as_f64()
        .unwrap();
    let (status, answer) = http_request(
        evaluator.addr("http"),
        "PUT",
        "/api/v1/slos/all-spans",
        &[("content-type", "application/yaml")],
        SLO.as_bytes(),
    );
    assert!(status == 200 || status == 201, "{status} {answer}");
    let mut slo = Value::Null;
    wait_until(
        "the evaluator's SLO counts every span",
        Duration::from_secs(60),
        || {
            let (_, text) = http_request(
                evaluator.addr("http"),
                "GET",
                "/api/v1/slos/all-spans",
                &[],
                b"",
            );
            slo = serde_json::from_str(&text).unwrap_or_default();
            slo["backfill"]["done"] == true
                && slo["instances"][0]["period"]["total"].as_f64() == Some(total)
        },
    );
    assert_eq!(
        slo["instances"][0]["period"]["total"].as_f64(),
        Some(total),
        "{slo:#}"
    );

    // The compactor is killed: the standby takes the lease after its time
    // to live.
    compactor.kill();
    let standby_id = standby.writer_id();
    wait_until(
        "the standby compactor takes the lease",
        Duration::from_secs(20),
        || lease_holder(&s3).as_deref() == Some(standby_id.as_str()),
    );

    // An ingester down: the querier answers with the rest and names it.
    a.kill();
    let answer = sql(&querier, "SELECT count(*) FROM spans");
    let warnings = answer["warnings"].to_string();
    assert!(warnings.contains(&a.addr("flight").to_string()), "{answer}");
    a.restart_on_same_ports();
    exactly_once(&querier, "spans", &spans, "after the last restart");
    drop(b);
}

#[test]
fn an_evaluator_on_a_new_machine_takes_the_slos_and_silences_of_the_lost_one_from_the_bucket() {
    let s3 = S3Server::start();
    let mut lost = Node::start(&s3, "e", "evaluate", &["--state-interval", "1s"]);
    let (status, answer) = http_request(
        lost.addr("http"),
        "PUT",
        "/api/v1/slos/all-spans",
        &[("content-type", "application/yaml")],
        SLO.as_bytes(),
    );
    assert!(status == 200 || status == 201, "{status} {answer}");
    let silence = json!({
        "matchers": ["slo=\"all-spans\""],
        "duration": "2h",
        "created_by": "sre",
        "comment": "planned database failover",
    });
    let (status, answer) = http_post(
        lost.addr("http"),
        "/api/v1/silences",
        "application/json",
        silence.to_string().as_bytes(),
    );
    assert!(status == 200 || status == 201, "{status} {answer}");
    // s3s-fs keeps each object as a file at its key: wait for the copies
    // that hold both.
    let holds = |key: &str, text: &str| {
        std::fs::read(s3.bucket_dir().join(key))
            .is_ok_and(|bytes| bytes.windows(text.len()).any(|w| w == text.as_bytes()))
    };
    wait_until(
        "the evaluator copies its databases to the bucket",
        Duration::from_secs(30),
        || holds("e/state/slo.db", "all-spans") && holds("e/state/alerts.db", "database failover"),
    );
    lost.kill();

    // A new machine: an empty data directory.
    let new = Node::start(&s3, "e", "evaluate", &[]);
    let (status, answer) =
        http_request(new.addr("http"), "GET", "/api/v1/slos/all-spans", &[], b"");
    assert_eq!(status, 200, "{answer}");
    let (status, answer) = http_request(new.addr("http"), "GET", "/api/v1/silences", &[], b"");
    assert_eq!(status, 200, "{answer}");
    assert!(answer.contains("planned database failover"), "{answer}");
}

#[test]
fn a_token_made_on_one_process_works_on_every_process_of_the_bucket_until_revoked_on_any() {
    let s3 = S3Server::start();
    let auth = ["--auth", "required"];
    let ingester = Node::start(&s3, "t", "ingest", &auth);
    let querier = Node::start(
        &s3,
        "t",
        "query",
        &[
            "--auth",
            "required",
            "--ingesters",
            &ingester.addr("flight").to_string(),
        ],
    );
    // Made beside the querier; the exporter sends to the ingester with it.
    let token = smolder_tests::create_token(querier.data_dir(), "default", "ingest,read");
    let id = token
        .split('_')
        .nth(1)
        .expect("smd_<id>_<secret>")
        .to_string();
    let export = |node: &Node| {
        http_request(
            node.addr("otlp_http"),
            "POST",
            "/v1/traces",
            &[
                ("content-type", "application/json"),
                ("authorization", &format!("Bearer {token}")),
            ],
            b"{\"resourceSpans\":[]}",
        )
        .0
    };
    let query = |node: &Node| {
        http_request(
            node.addr("http"),
            "POST",
            "/api/v1/sql",
            &[
                ("content-type", "application/json"),
                ("authorization", &format!("Bearer {token}")),
            ],
            b"{\"sql\":\"SELECT count(*) FROM spans\"}",
        )
        .0
    };
    assert_eq!(export(&ingester), 401, "unknown to the ingester at first");
    wait_until(
        "the ingester takes the querier's token from the bucket",
        Duration::from_secs(20),
        || export(&ingester) == 200,
    );
    assert_eq!(query(&querier), 200);

    // Revoked beside the ingester: the querier refuses it too.
    let revoked = Command::new(smolder_tests::smolder_bin())
        .args(["token", "revoke", &id, "--data-dir"])
        .arg(ingester.data_dir())
        .status()
        .expect("running smolder token revoke");
    assert!(revoked.success());
    wait_until(
        "the querier learns of the revocation",
        Duration::from_secs(20),
        || query(&querier) == 401,
    );
    assert_eq!(export(&ingester), 401);
}

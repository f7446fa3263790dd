//! The web UI in a real browser: `smolder serve` loaded with the sample SLOs
//! and two minutes of the sample-data generator's traffic with its incident
//! (the checkout SLO burns, its page fires and is delivered to a webhook in
//! the test), then `ui/e2e/ui.test.mjs` drives headless Chromium (Debian's
//! `chromium`) through every page with playwright-core (npm). Screenshots of
//! each page are saved in `ui/e2e/artifacts/`.

use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prost::Message as _;
use smolder_tests::sink::Sink;
use smolder_tests::{Server, browser_prerequisites, http_post, http_request, repo_root};

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

fn post(server: &Server, signal: &str, body: &[u8]) {
    let (status, answer) = http_post(
        server.otlp_http,
        &format!("/v1/{signal}"),
        "application/x-protobuf",
        body,
    );
    assert_eq!(status, 200, "{signal}: {answer}");
}

#[test]
fn every_page_works_in_headless_chromium() {
    let (ui, chromium) = browser_prerequisites();
    let sink = Sink::ok();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("smolder.toml");
    std::fs::write(
        &config,
        format!(
            "[alerting.route]\nreceiver = \"on-call\"\ngroup_interval = \"1s\"\n\
             [[alerting.receivers]]\nname = \"on-call\"\ntype = \"webhook\"\nurl = \"{}\"\n\
             [[alerting.scaling]]\nname = \"checkout-burn\"\nurl = \"{}\"\n\
             matchers = ['slo=\"checkout-availability\"']\nscale_up_at = 1.5\nwindow = \"2m\"\n",
            sink.url("/hook"),
            sink.url("/scale")
        ),
    )
    .unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let slos = repo_root().join("sample-data/slos");
    let server = Server::start_in(
        &data,
        &[
            "--config",
            config.to_str().unwrap(),
            "--slo-dir",
            slos.to_str().unwrap(),
            "--slo-interval",
            "1s",
        ],
    );

    // Two minutes of traffic ending now: healthy, then the payment incident.
    let start = now_ns() - 120_000_000_000;
    let mut generator = smolder_sample_data::Generator::new(7, start);
    for minute in 0..2 {
        generator.set_incident(minute == 1);
        let t = generator.requests(1200, 60_000_000_000);
        post(&server, "traces", &t.traces.encode_to_vec());
        post(&server, "logs", &t.logs.encode_to_vec());
        post(&server, "metrics", &generator.metrics().encode_to_vec());
    }
    sink.wait("/hook", "the checkout page notification", |got| {
        got.iter().any(|r| {
            let b = r.json();
            b["status"] == "firing"
                && b["alerts"].as_array().unwrap().iter().any(|a| {
                    a["slo"] == "checkout-availability" && a["labels"]["severity"] == "page"
                })
        })
    });
    // The delivery is recorded as delivered before the browser looks.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (_, body) = http_request(
            server.http,
            "GET",
            "/api/v1/notifications?state=delivered",
            &[],
            b"",
        );
        if body.contains("checkout-availability") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no delivered notification: {body}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    let artifacts = ui.join("e2e/artifacts");
    let out = Command::new("node")
        .arg(ui.join("e2e/ui.test.mjs"))
        .arg(&artifacts)
        .env("SMOLDER_URL", format!("http://{}", server.http))
        .env("SMOLDER_OTLP_URL", format!("http://{}", server.otlp_http))
        .env("CHROMIUM", &chromium)
        .current_dir(&ui)
        .output()
        .expect("running node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}\n{stderr}");
    assert!(
        out.status.success(),
        "the browser test failed (screenshots in {}):\n{stdout}\n{stderr}",
        artifacts.display()
    );
    for page in [
        "slos-overview",
        "slo-detail",
        "slo-scaling",
        "slo-exclusion",
        "trace-from-slo",
        "explore",
        "traces",
        "logs",
        "alerts-and-silence",
        "reports",
        "status",
    ] {
        assert!(
            artifacts.join(format!("{page}.png")).is_file(),
            "no screenshot of {page}"
        );
    }
}

fn get_json(server: &Server, path: &str) -> serde_json::Value {
    let (status, body) = http_request(server.http, "GET", path, &[], b"");
    assert_eq!(status, 200, "GET {path}: {body}");
    serde_json::from_str(&body).unwrap()
}

/// The rows of a `columns`/`rows` answer as objects.
fn rows(answer: &serde_json::Value) -> Vec<serde_json::Map<String, serde_json::Value>> {
    let names: Vec<&str> = answer["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    answer["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            names
                .iter()
                .zip(r.as_array().unwrap())
                .map(|(n, v)| ((*n).to_string(), v.clone()))
                .collect()
        })
        .collect()
}

/// The APIs behind the pages answer from the stored telemetry, and refuse
/// bad parameters with a 400 naming them while the server keeps serving.
#[test]
fn the_pages_apis_answer_and_name_bad_parameters() {
    let dir = tempfile::tempdir().unwrap();
    let slos = repo_root().join("sample-data/slos");
    let server = Server::start_in(
        dir.path(),
        &["--slo-dir", slos.to_str().unwrap(), "--slo-interval", "1s"],
    );
    let mut generator = smolder_sample_data::Generator::new(11, now_ns() - 60_000_000_000);
    generator.set_incident(true);
    let t = generator.requests(600, 60_000_000_000);
    let spans = smolder_tests::span_count(&t.traces);
    post(&server, "traces", &t.traces.encode_to_vec());
    post(&server, "logs", &t.logs.encode_to_vec());

    // Trace search: failing checkout traces, newest first.
    let found = get_json(
        &server,
        "/api/v1/traces?service=checkout&status=ERROR&limit=20",
    );
    let traces = rows(&found);
    assert!(!traces.is_empty(), "{found:#}");
    assert!(traces.len() <= 20);
    // Each row is the whole trace: its root span (the frontend's), and the
    // checkout spans that failed among its spans.
    for t in &traces {
        assert_eq!(t["service_name"], "frontend", "{t:?}");
        assert!(t["matching_spans"].as_i64().unwrap() >= 1, "{t:?}");
        assert!(t["errors"].as_i64().unwrap() >= 1, "{t:?}");
    }
    let starts: Vec<&str> = traces
        .iter()
        .map(|t| t["start_time"].as_str().unwrap())
        .collect();
    assert!(
        starts.windows(2).all(|w| w[0] >= w[1]),
        "newest first: {starts:?}"
    );

    // The trace's own figures: all its spans, not only the matching ones.
    for t in &traces {
        let (spans, matching) = (
            t["spans"].as_i64().unwrap(),
            t["matching_spans"].as_i64().unwrap(),
        );
        assert!(spans >= matching && matching >= 1, "{t:?}");
        assert!(t["duration_ns"].as_i64().unwrap() > 0, "{t:?}");
    }
    // Longest first, paged.
    let longest = rows(&get_json(&server, "/api/v1/traces?sort=longest&limit=5"));
    let next = rows(&get_json(
        &server,
        "/api/v1/traces?sort=longest&limit=5&offset=5",
    ));
    let durations: Vec<i64> = longest
        .iter()
        .chain(&next)
        .map(|t| t["duration_ns"].as_i64().unwrap())
        .collect();
    assert_eq!(durations.len(), 10);
    assert!(durations.is_sorted_by(|a, b| a >= b), "{durations:?}");

    // The services that sent spans, with their routes, for the search form.
    let services = get_json(&server, "/api/v1/services");
    let checkout = services["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "checkout")
        .unwrap_or_else(|| panic!("{services:#}"));
    assert!(checkout["spans"].as_u64().unwrap() > 0);
    assert!(
        checkout["routes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r.as_str().unwrap().starts_with('/')),
        "{checkout:#}"
    );

    // One trace: its spans (with attributes) and its logs.
    let id = traces[0]["trace_id"].as_str().unwrap();
    let trace = get_json(&server, &format!("/api/v1/traces/{}", id.to_uppercase()));
    assert_eq!(trace["trace_id"], id);
    let trace_spans = rows(&trace["spans"]);
    assert!(trace_spans.len() >= 2, "{trace:#}");
    assert!(trace_spans.iter().any(|s| s["status_code"] == "ERROR"));
    assert!(trace_spans.iter().all(|s| s["attributes"].is_object()));
    assert!(
        !rows(&trace["logs"]).is_empty(),
        "the trace's logs: {trace:#}"
    );

    // Log search: severity floor, service and text.
    let logs = rows(&get_json(
        &server,
        "/api/v1/logs?severity=ERROR&service=checkout&limit=50",
    ));
    assert!(!logs.is_empty());
    for l in &logs {
        assert!(l["severity_number"].as_i64().unwrap() >= 17, "{l:?}");
        assert_eq!(l["service_name"], "checkout");
    }
    let word = logs[0]["body"]
        .as_str()
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_uppercase();
    let matching = rows(&get_json(
        &server,
        &format!("/api/v1/logs?q={word}&limit=10"),
    ));
    assert!(!matching.is_empty());
    assert!(
        matching
            .iter()
            .all(|l| l["body"].as_str().unwrap().to_uppercase().contains(&word))
    );

    // Bad parameters: 400 with the parameter named.
    for (path, says) in [
        ("/api/v1/traces?status=BROKEN", "status"),
        ("/api/v1/traces?min_duration=fast", "min_duration"),
        ("/api/v1/traces?bogus=1", "bogus"),
        ("/api/v1/traces?sort=random", "sort"),
        ("/api/v1/traces?offset=99999", "offset"),
        ("/api/v1/services?from=soon", "from"),
        ("/api/v1/traces/not-a-trace-id", "32 hexadecimal"),
        ("/api/v1/logs?from=yesterday", "from"),
        ("/api/v1/logs?severity=LOUD", "severity"),
        ("/api/v1/logs?from=200&to=100", "from must not be after to"),
        (
            "/api/v1/slos/checkout-availability/causes?window=forever",
            "window",
        ),
        ("/api/v1/slos?instances=maybe", "instances"),
        ("/api/v1/alerts?brief=maybe", "brief"),
    ] {
        let (status, body) = http_request(server.http, "GET", path, &[], b"");
        assert_eq!(status, 400, "GET {path}: {body}");
        assert!(body.contains(says), "GET {path}: {body}");
    }

    // Status: what was accepted, and where it is.
    let status = get_json(&server, "/api/v1/status");
    assert_eq!(status["ingest"]["accepted_items"]["traces"], spans);
    assert!(
        status["tables"]["spans"]["buffer_rows"].as_u64().unwrap()
            + status["tables"]["spans"]["files"].as_u64().unwrap()
            > 0
    );
    assert_eq!(status["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(status["wal"]["enabled"], true);

    // The overview's list, with thresholds, downtime left and every group.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let checkout = loop {
        let list = get_json(&server, "/api/v1/slos?instances=true");
        let slo = list["slos"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == "checkout-availability")
            .unwrap()
            .clone();
        if slo["sli"].is_number() {
            break slo;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no evaluation: {slo:#}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(checkout["thresholds"]["1h"], 13.44, "{checkout:#}");
    assert_eq!(checkout["thresholds"]["1d"], 2.8, "{checkout:#}");
    assert_eq!(checkout["instances"].as_array().unwrap().len(), 1);
    let budget = checkout["error_budget_remaining"].as_f64().unwrap();
    let downtime = checkout["allowed_downtime_left_seconds"].as_f64().unwrap();
    let period = checkout["period_seconds"].as_f64().unwrap();
    assert_eq!(period, 28.0 * 86400.0);
    // Two minutes of data in a 28-day period, some of it bad: the allowed
    // downtime less what the bad share of those minutes stands for — not
    // the budget's (hugely negative) share of the whole period.
    let allowed = 0.005 * period;
    let bad_share = 1.0 - checkout["sli"].as_f64().unwrap();
    assert!(budget < 0.0, "{checkout:#}");
    assert!(
        downtime < allowed && downtime > allowed - bad_share * 600.0,
        "{checkout:#}"
    );
    assert!(checkout["data_since"].is_string(), "{checkout:#}");
    let grouped = get_json(&server, "/api/v1/slos?instances=true");
    let catalog = grouped["slos"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| !s["group_by"].as_array().unwrap().is_empty())
        .expect("a grouped sample SLO");
    assert_eq!(
        catalog["instances"].as_array().unwrap().len() as u64,
        catalog["groups"].as_u64().unwrap()
    );

    // A 30-day chart at a one-minute step is cut to at most 2,000 points.
    let now = now_ns() / 1_000_000_000;
    let series = get_json(
        &server,
        &format!(
            "/api/v1/slos/checkout-availability/series?from={}&to={now}&step=1m",
            now - 30 * 86400
        ),
    );
    let points = series["timestamps"].as_array().unwrap().len();
    assert!((1000..=2000).contains(&points), "{points} points");
    assert_eq!(series["sli"].as_array().unwrap().len(), points);

    // Causes: example bad traces and the over-represented status code.
    let causes = get_json(
        &server,
        "/api/v1/slos/checkout-availability/causes?window=10m",
    );
    assert!(
        !causes["example_trace_ids"].as_array().unwrap().is_empty(),
        "{causes:#}"
    );
    assert!(
        causes["hints"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["bad_share"].as_f64().unwrap() > h["total_share"].as_f64().unwrap()),
        "{causes:#}"
    );
}

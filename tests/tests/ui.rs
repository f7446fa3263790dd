//! The web UI in a real browser: `smolder serve` loaded with the sample SLOs
//! and two minutes of the sample-data generator's traffic with its incident
//! (the checkout SLO burns, its page fires and is delivered to a webhook in
//! the test), then `ui/e2e/ui.test.mjs` drives headless Chromium (Debian's
//! `chromium`) through every page with playwright-core (npm). Screenshots of
//! each page are saved in `ui/e2e/artifacts/`.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prost::Message as _;
use smolder_tests::sink::Sink;
use smolder_tests::{Server, http_post, http_request, repo_root};

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

/// What the browser test needs, or a message saying how to get it.
fn prerequisites() -> (PathBuf, PathBuf) {
    let ui = repo_root().join("ui");
    assert!(
        Command::new("node").arg("--version").output().is_ok(),
        "Node.js is needed to drive the browser: apt-get install nodejs npm (scripts/test.sh does)"
    );
    assert!(
        ui.join("node_modules/playwright-core").is_dir(),
        "playwright-core is missing: run `npm ci` in ui/ (scripts/test.sh does)"
    );
    let chromium = std::env::var_os("CHROMIUM")
        .map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
    assert!(
        chromium.is_file(),
        "Chromium is missing at {}: apt-get install chromium (scripts/test.sh does)",
        chromium.display()
    );
    (ui, chromium)
}

#[test]
fn every_page_works_in_headless_chromium() {
    let (ui, chromium) = prerequisites();
    let sink = Sink::ok();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("smolder.toml");
    std::fs::write(
        &config,
        format!(
            "[alerting.route]\nreceiver = \"on-call\"\ngroup_interval = \"1s\"\n\
             [[alerting.receivers]]\nname = \"on-call\"\ntype = \"webhook\"\nurl = \"{}\"\n",
            sink.url("/hook")
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
        "trace-from-slo",
        "explore",
        "traces",
        "logs",
        "alerts-and-silence",
        "status",
    ] {
        assert!(
            artifacts.join(format!("{page}.png")).is_file(),
            "no screenshot of {page}"
        );
    }
}

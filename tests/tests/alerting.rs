//! Alerting end to end: `smolder serve` with SLOs and an `[alerting]`
//! configuration, telemetry sent over OTLP/HTTP, and real receivers on
//! loopback — an HTTP server in the test standing in for every webhook
//! service (checking each payload and the Standard Webhooks signature), a
//! real SMTP server (Python's aiosmtpd) and a real Alertmanager (Debian's
//! `prometheus-alertmanager`).

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use hmac::{KeyInit as _, Mac as _};
use prost::Message as _;
use serde_json::{Value, json};
use smolder_tests::sink::{Policy, Received, Sink};
use smolder_tests::{
    Server, http_post, http_request, now_ns, repo_root, route_spans as spans, smolder_bin,
};

const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

/// Checks a request's Standard Webhooks signature with the shared secret.
fn assert_signed(r: &Received) {
    let id = r.header("webhook-id");
    let ts = r.header("webhook-timestamp");
    assert!(id.starts_with("msg_"), "webhook-id: {id:?}");
    let age = (now_ns() / 1_000_000_000 - ts.parse::<i64>().unwrap()).abs();
    assert!(age < 600, "webhook-timestamp {ts} is not recent");
    let key = base64::engine::general_purpose::STANDARD
        .decode(SECRET.trim_start_matches("whsec_"))
        .unwrap();
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{ts}.").as_bytes());
    mac.update(&r.body);
    let want = format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    );
    assert_eq!(
        r.header("webhook-signature"),
        want,
        "signature of {}",
        r.path
    );
}

// ---------------------------------------------------------------------------
// Telemetry and the server.

fn send(server: &Server, body: &[u8]) {
    let (status, answer) = http_post(
        server.otlp_http,
        "/v1/traces",
        "application/x-protobuf",
        body,
    );
    assert_eq!(status, 200, "{answer}");
}

/// An availability SLO of `service` (99 %, 30 days, the Workbook's alert
/// table).
fn slo(service: &str) -> String {
    smolder_sample_data::fixtures::availability_slo(service)
}

fn get(server: &Server, path: &str) -> Value {
    let (status, body) = http_request(server.http, "GET", path, &[], b"");
    assert_eq!(status, 200, "GET {path}: {body}");
    serde_json::from_str(&body).unwrap()
}

/// Starts a server with SLO files, the `[alerting]` TOML and a 1 s
/// evaluation interval; `dir` holds the data, SLOs and configuration.
fn start(dir: &Path, slos: &[(&str, String)], alerting: &str) -> Server {
    let slo_dir = dir.join("slos");
    std::fs::create_dir_all(&slo_dir).unwrap();
    for (name, text) in slos {
        std::fs::write(slo_dir.join(name), text).unwrap();
    }
    // These tests watch alerts resolve in real time: no hysteresis (the
    // lifecycle's own tests cover keep_firing_for and flapping).
    let no_hysteresis = "[alerting]\nkeep_firing_for = \"0s\"\n";
    let alerting = match alerting.strip_prefix("[alerting]\n") {
        Some(rest) => format!("{no_hysteresis}{rest}"),
        None => format!("{no_hysteresis}{alerting}"),
    };
    let config = dir.join("smolder.toml");
    std::fs::write(&config, alerting).unwrap();
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    Server::start_in(
        &data,
        &[
            "--config",
            config.to_str().unwrap(),
            "--slo-dir",
            slo_dir.to_str().unwrap(),
            "--slo-interval",
            "1s",
        ],
    )
}

/// Makes the SLO of `service` burn (60 of 100 requests fail) and waits for
/// its page alert to fire.
fn incident(server: &Server, service: &str, seed: u64) {
    send(server, &spans(service, 100, 60, seed));
    wait_alerts(server, &format!("the page alert of {service}"), |alerts| {
        alerts.iter().any(|a| {
            a["labels"]["service"] == service
                && a["labels"]["severity"] == "page"
                && a["state"] == "firing"
        })
    });
}

/// Ends the incident of `service`: 20,000 good requests bring every window
/// under its burn-rate threshold.
fn recover(server: &Server, service: &str, seed: u64) {
    send(server, &spans(service, 20_000, 0, seed));
    wait_alerts(
        server,
        &format!("the alerts of {service} to resolve"),
        |alerts| !alerts.iter().any(|a| a["labels"]["service"] == service),
    );
}

fn wait_alerts(server: &Server, what: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let got = get(server, "/api/v1/alerts");
        let alerts = got["alerts"].as_array().unwrap().clone();
        if done(&alerts) {
            return alerts;
        }
        assert!(Instant::now() < deadline, "waiting for {what}: {got:#}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

// ---------------------------------------------------------------------------

/// An incident from the sample-data generator (the demo's payment failures)
/// against the sample checkout SLO: the page reaches the on-call receivers
/// and the autoscaler, with example traces and the over-represented route;
/// when the incident ends, resolved notifications and the scale-back follow.
#[test]
fn an_incident_pages_every_receiver_then_resolves_and_scales_back() {
    let sink = Sink::ok();
    let dir = tempfile::tempdir().unwrap();
    let checkout =
        std::fs::read_to_string(repo_root().join("sample-data/slos/checkout.yaml")).unwrap();
    let receivers = [
        (
            "hook",
            "webhook",
            "/hook",
            format!("secret = \"{SECRET}\"\nheaders = {{ X-Team = \"payments\" }}"),
        ),
        (
            "am-hook",
            "webhook",
            "/am-hook",
            "format = \"alertmanager\"".to_string(),
        ),
        (
            "slack",
            "slack",
            "/slack",
            "channel = \"#payments\"".to_string(),
        ),
        ("mattermost", "mattermost", "/mattermost", String::new()),
        ("teams", "teams", "/teams", String::new()),
        ("discord", "discord", "/discord", String::new()),
        ("gchat", "google_chat", "/gchat", String::new()),
        (
            "pagerduty",
            "pagerduty",
            "/pagerduty",
            "routing_key = \"R0UT1NGKEY\"".to_string(),
        ),
    ];
    let mut toml = String::from(
        "[alerting]\nexternal_url = \"http://smolder.example.com\"\n\
         [alerting.route]\nreceiver = \"hook\"\ngroup_interval = \"1s\"\n",
    );
    for (name, _, _, _) in &receivers {
        toml.push_str(&format!(
            "[[alerting.route.routes]]\nmatchers = ['slo=\"checkout-availability\"']\nreceiver = \"{name}\"\ncontinue = true\n"
        ));
    }
    for (name, kind, path, extra) in &receivers {
        toml.push_str(&format!(
            "[[alerting.receivers]]\nname = \"{name}\"\ntype = \"{kind}\"\nurl = \"{}\"\n{extra}\n",
            sink.url(path)
        ));
    }
    toml.push_str(&format!(
        "[[alerting.scaling]]\nname = \"checkout-hpa\"\nurl = \"{}\"\nsecret = \"{SECRET}\"\n\
         matchers = ['slo=\"checkout-availability\"']\ncooldown = \"2s\"\n\
         # Healthy traffic fails 0.4 % of checkouts (a burn rate of about 1):\n\
         # scale back once the 5-minute burn rate is under 6.\n\
         [alerting.scaling.slos.checkout-availability]\nscale_down_below = 6.0\n\
         # Driven by the burn rate over a window none of the SLO's conditions has.\n\
         [[alerting.scaling]]\nname = \"checkout-burn\"\nurl = \"{}\"\n\
         matchers = ['slo=\"checkout-availability\"']\nscale_up_at = 1.5\nwindow = \"2m\"\n",
        sink.url("/scale"),
        sink.url("/scale-burn")
    ));
    let server = start(dir.path(), &[("checkout.yaml", checkout)], &toml);

    // The incident: two minutes of the generator's traffic with payment
    // failures, ending now.
    let mut generator = smolder_sample_data::Generator::new(7, (now_ns() - 120_000_000_000) as u64);
    generator.set_incident(true);
    let t = generator.requests(3000, 120_000_000_000);
    send(&server, &t.traces.encode_to_vec());

    // Causes are looked up (without blocking the API) right after an alert
    // fires; wait for them too.
    let page = wait_alerts(&server, "the checkout page", |alerts| {
        alerts.iter().any(|a| {
            a["slo"] == "checkout-availability"
                && a["labels"]["severity"] == "page"
                && a["state"] == "firing"
                && a["annotations"]["example_trace_ids"].is_string()
        })
    });
    let page = page
        .iter()
        .find(|a| a["slo"] == "checkout-availability" && a["labels"]["severity"] == "page")
        .unwrap()
        .clone();
    assert_eq!(page["labels"]["alertname"], "SLOBurnRate");
    assert_eq!(page["labels"]["condition"], "fast-burn");
    assert_eq!(page["labels"]["window"], "1h/5m");
    assert_eq!(page["status"], "firing");
    assert!(page["since"].as_str().unwrap().ends_with('Z'));
    let ann = &page["annotations"];
    assert!(
        ann["summary"].as_str().unwrap().contains("too fast"),
        "{ann:#}"
    );
    assert!(
        ann["description"]
            .as_str()
            .unwrap()
            .contains("Error budget left"),
        "{ann:#}"
    );
    assert_eq!(
        ann["slo_url"],
        "http://smolder.example.com/slos/checkout-availability"
    );
    // Example traces of failed checkouts, which exist in the spans table.
    let examples = ann["example_trace_ids"].as_str().expect("example traces");
    let first = examples.split(',').next().unwrap();
    let found = server.scalar(&format!(
        "SELECT count(*) FROM spans WHERE trace_id = '{first}' AND status_code = 'ERROR'"
    ));
    assert!(
        found.as_i64().unwrap() >= 1,
        "example trace {first} has no failed span"
    );
    // The cause hint names what failing checkouts have in common.
    assert!(
        ann["cause_hint"]
            .as_str()
            .is_some_and(|h| h.contains("of bad events")),
        "{ann:#}"
    );

    // Every receiver got the page, in its own format.
    // Each SLO's page and ticket are separate groups, delivered
    // independently (the latency SLO of checkout.yaml pages too).
    let is_page = |r: &Received| {
        let b = r.json();
        b["status"] == "firing"
            && b["group_labels"]["severity"] == "page"
            && b["group_labels"]["slo"] == "checkout-availability"
    };
    let hook = sink.wait("/hook", "the webhook", |r| r.iter().any(is_page));
    let h = hook.iter().find(|r| is_page(r)).unwrap();
    assert_signed(h);
    assert_eq!(h.header("x-team"), "payments");
    let body = h.json();
    assert_eq!(body["version"], "1");
    assert_eq!(body["type"], "alerts");
    assert_eq!(body["group_labels"]["slo"], "checkout-availability");
    assert_eq!(body["group_labels"]["severity"], "page");
    assert_eq!(body["alerts"][0]["status"], "firing");
    assert!(
        body["alerts"][0]["values"]["long_burn_rate"]
            .as_f64()
            .unwrap()
            >= 13.44
    );

    let am = sink.wait("/am-hook", "the Alertmanager-format webhook", |r| {
        !r.is_empty()
    });
    let am = am[0].json();
    for key in [
        "version",
        "groupKey",
        "truncatedAlerts",
        "status",
        "receiver",
        "groupLabels",
        "commonLabels",
        "commonAnnotations",
        "externalURL",
        "alerts",
    ] {
        assert!(
            am.get(key).is_some(),
            "Alertmanager webhook v4 has {key}: {am:#}"
        );
    }
    assert_eq!(am["version"], "4");
    assert_eq!(am["receiver"], "am-hook");
    let a0 = &am["alerts"][0];
    for key in [
        "status",
        "labels",
        "annotations",
        "startsAt",
        "endsAt",
        "generatorURL",
        "fingerprint",
    ] {
        assert!(a0.get(key).is_some(), "alert has {key}: {a0:#}");
    }
    assert_eq!(a0["endsAt"], "0001-01-01T00:00:00Z");

    let slack = sink.wait("/slack", "Slack", |r| !r.is_empty())[0].json();
    assert_eq!(slack["channel"], "#payments");
    assert!(
        slack["text"]
            .as_str()
            .unwrap()
            .starts_with("[FIRING:1] checkout-availability"),
        "{slack:#}"
    );
    assert_eq!(slack["blocks"][0]["type"], "header");
    assert_eq!(slack["blocks"][1]["text"]["type"], "mrkdwn");
    let mm = sink.wait("/mattermost", "Mattermost", |r| !r.is_empty())[0].json();
    assert!(mm["text"].is_string() && mm["blocks"].is_array());
    let teams = sink.wait("/teams", "Teams", |r| !r.is_empty())[0].json();
    assert_eq!(teams["type"], "message");
    assert_eq!(
        teams["attachments"][0]["contentType"],
        "application/vnd.microsoft.card.adaptive"
    );
    assert_eq!(teams["attachments"][0]["content"]["type"], "AdaptiveCard");
    let discord = sink.wait("/discord", "Discord", |r| !r.is_empty())[0].json();
    assert!(
        discord["content"]
            .as_str()
            .unwrap()
            .contains("checkout-availability")
    );
    assert!(discord["embeds"][0]["title"].is_string() && discord["embeds"][0]["color"].is_number());
    let gchat = sink.wait("/gchat", "Google Chat", |r| !r.is_empty())[0].json();
    assert!(
        gchat["text"]
            .as_str()
            .unwrap()
            .contains("checkout-availability")
    );
    let pd = sink.wait("/pagerduty", "PagerDuty", |r| !r.is_empty())[0].json();
    assert_eq!(pd["routing_key"], "R0UT1NGKEY");
    assert_eq!(pd["event_action"], "trigger");
    assert_eq!(pd["payload"]["severity"], "critical");
    assert_eq!(pd["payload"]["source"], "checkout");
    let dedup_key = pd["dedup_key"].as_str().unwrap().to_string();

    // The autoscaler is asked to scale up, signed.
    let up = sink.wait("/scale", "scale-up", |r| !r.is_empty());
    assert_signed(&up[0]);
    let up = up[0].json();
    assert_eq!(
        (up["type"].as_str(), up["action"].as_str()),
        (Some("scaling"), Some("scale_up"))
    );
    assert_eq!(up["slo"], "checkout-availability");
    assert_eq!(up["target"], "checkout-hpa");
    let scaling = get(&server, "/api/v1/scaling/checkout-availability");
    assert_eq!(scaling["scale"], 1, "{scaling:#}");
    // The burn-driven target too, on the burn rate over its own window,
    // which the engine evaluates for it.
    let burn = sink.wait("/scale-burn", "burn-driven scale-up", |r| !r.is_empty());
    let burn = burn[0].json();
    assert_eq!(
        (&burn["action"], &burn["window"], &burn["threshold"]),
        (&json!("scale_up"), &json!("2m"), &json!(1.5)),
        "{burn:#}"
    );
    assert!(burn["burn_rate"].as_f64().unwrap() >= 1.5, "{burn:#}");
    assert!(
        scaling["instances"][0]["burn_rates"]["2m"]
            .as_f64()
            .is_some(),
        "{scaling:#}"
    );
    assert!(
        scaling["burn_rate"].as_f64().unwrap() >= 13.44,
        "{scaling:#}"
    );
    assert!(
        scaling["burn_rates"]["5m"].as_f64().is_some(),
        "{scaling:#}"
    );

    // The incident ends: plenty of healthy traffic.
    let mut healthy = smolder_sample_data::Generator::new(8, (now_ns() - 60_000_000_000) as u64);
    for _ in 0..4 {
        let t = healthy.requests(15_000, 15_000_000_000);
        send(&server, &t.traces.encode_to_vec());
    }
    wait_alerts(&server, "the page to resolve", |alerts| {
        !alerts.iter().any(|a| a["labels"]["severity"] == "page")
    });
    let resolved = sink.wait("/hook", "the resolved webhook", |r| {
        r.iter().any(|r| r.json()["status"] == "resolved")
    });
    let resolved = resolved
        .iter()
        .find(|r| r.json()["status"] == "resolved")
        .unwrap();
    assert_signed(resolved);
    assert_eq!(resolved.json()["alerts"][0]["status"], "resolved");
    assert!(
        resolved.json()["alerts"][0]["ends_at"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    let pd = sink.wait("/pagerduty", "the PagerDuty resolve", |r| {
        r.iter().any(|r| r.json()["event_action"] == "resolve")
    });
    let pd_resolve = pd
        .iter()
        .find(|r| r.json()["event_action"] == "resolve")
        .unwrap()
        .json();
    assert_eq!(
        pd_resolve["dedup_key"],
        dedup_key.as_str(),
        "the same incident"
    );
    let am = sink.wait("/am-hook", "the resolved Alertmanager webhook", |r| {
        r.iter().any(|r| r.json()["status"] == "resolved")
    });
    let am = am
        .iter()
        .find(|r| r.json()["status"] == "resolved")
        .unwrap()
        .json();
    assert_ne!(am["alerts"][0]["endsAt"], "0001-01-01T00:00:00Z");
    // Burn under 6 for the 2 s cooldown: scale back.
    let scale = sink.wait("/scale", "scale-down", |r| r.len() >= 2);
    assert_signed(&scale[1]);
    assert_eq!(scale[1].json()["action"], "scale_down");

    // What happened is on record.
    let history = get(&server, "/api/v1/alerts/history?slo=checkout-availability");
    let transitions: Vec<(String, String)> = history["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["labels"]["severity"] == "page")
        .map(|t| {
            (
                t["from"].as_str().unwrap().to_string(),
                t["to"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(
        transitions.contains(&("inactive".into(), "firing".into())),
        "{history:#}"
    );
    assert!(
        transitions.contains(&("firing".into(), "resolved".into())),
        "{history:#}"
    );
    let notifications = get(&server, "/api/v1/notifications?slo=checkout-availability");
    let rows = notifications["notifications"].as_array().unwrap();
    for receiver in [
        "hook",
        "am-hook",
        "slack",
        "mattermost",
        "teams",
        "discord",
        "gchat",
        "pagerduty",
    ] {
        let mine: Vec<&Value> = rows.iter().filter(|n| n["receiver"] == receiver).collect();
        assert!(mine.len() >= 2, "{receiver}: {notifications:#}");
        assert!(
            mine.iter()
                .all(|n| n["state"] == "delivered" && n["attempts"] == 1),
            "{mine:#?}"
        );
    }
    assert!(
        rows.iter()
            .any(|n| n["receiver"] == "scaling/checkout-hpa" && n["status"] == "scale_down")
    );
    // The scaling history: both decisions with their figures, delivered.
    let scaling = get(&server, "/api/v1/scaling/checkout-availability/history");
    let decisions: Vec<&Value> = scaling["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["target"] == "checkout-hpa")
        .collect();
    let actions: Vec<&str> = decisions
        .iter()
        .map(|d| d["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["scale_down", "scale_up"], "{scaling:#}");
    let (down, up) = (decisions[0], decisions[1]);
    assert!(
        up["alert"].is_string() && up["threshold"].is_null(),
        "{up:#}"
    );
    assert_eq!(
        (&down["threshold"], &down["window"]),
        (&json!(6.0), &json!("5m"))
    );
    assert!(down["burn_rate"].as_f64().unwrap() < 6.0, "{down:#}");
    assert!(
        down["reason"].as_str().unwrap().contains("stayed under 6"),
        "{down:#}"
    );
    // (The scale-down's delivery may still be being recorded.)
    assert_eq!(up["delivery"]["state"], "delivered", "{scaling:#}");
    // The metrics say so too.
    let (_, metrics) = http_request(server.http, "GET", "/metrics", &[], b"");
    assert!(
        metrics.contains(
            "smolder_notification_attempts_total{receiver=\"slack\",outcome=\"delivered\"}"
        ),
        "{metrics}"
    );
}

/// Silences from the API and the CLI keep a firing alert from being
/// notified; a page inhibits the ticket of the same SLO.
#[test]
fn silences_and_inhibition_suppress_notifications() {
    let sink = Sink::ok();
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "[alerting.route]\nreceiver = \"hook\"\ngroup_interval = \"1s\"\n\
         [[alerting.receivers]]\nname = \"hook\"\ntype = \"webhook\"\nurl = \"{}\"\n",
        sink.url("/hook")
    );
    let server = start(
        dir.path(),
        &[("a.yaml", slo("quiet")), ("b.yaml", slo("loud"))],
        &toml,
    );
    // Silence `quiet` with the CLI before its incident.
    let out = std::process::Command::new(smolder_bin())
        .args([
            "silence",
            "add",
            "service=\"quiet\"",
            "--duration",
            "1h",
            "--author",
            "sre",
            "--comment",
            "planned",
        ])
        .args(["--server", &format!("http://{}", server.http)])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let silence_id = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(silence_id.starts_with("sil_"), "{silence_id}");

    incident(&server, "quiet", 1);
    incident(&server, "loud", 2);
    let alerts = wait_alerts(&server, "both", |a| a.len() >= 4);
    for a in &alerts {
        let service = a["labels"]["service"].as_str().unwrap();
        let severity = a["labels"]["severity"].as_str().unwrap();
        match (service, severity) {
            ("quiet", _) => {
                assert_eq!(a["status"], "suppressed", "{a:#}");
                assert_eq!(a["suppressed"]["silenced_by"][0], silence_id.as_str());
            }
            ("loud", "ticket") => {
                assert_eq!(a["status"], "suppressed", "{a:#}");
                assert!(
                    !a["suppressed"]["inhibited_by"]
                        .as_array()
                        .unwrap()
                        .is_empty(),
                    "{a:#}"
                );
            }
            ("loud", "page") => assert_eq!(a["status"], "firing", "{a:#}"),
            _ => panic!("unexpected alert {a:#}"),
        }
    }
    // Only loud's page is notified.
    sink.wait("/hook", "loud's page", |r| !r.is_empty());
    std::thread::sleep(Duration::from_secs(3));
    let got = sink.received("/hook");
    assert!(got.len() == 1, "{got:#?}");
    let body = got[0].json();
    assert_eq!(body["group_labels"]["slo"], "loud-availability");
    assert_eq!(body["group_labels"]["severity"], "page");

    // The CLI lists the silence; the API expires it; quiet's page follows.
    let out = std::process::Command::new(smolder_bin())
        .args([
            "silence",
            "list",
            "--server",
            &format!("http://{}", server.http),
        ])
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(
        listing.contains(&silence_id) && listing.contains("active") && listing.contains("planned"),
        "{listing}"
    );
    // Its end as the UI writes times: 24-hour, with the zone.
    let row = listing.lines().find(|l| l.contains(&silence_id)).unwrap();
    assert!(
        row.split_whitespace()
            .collect::<Vec<_>>()
            .windows(3)
            .any(|w| w[0].len() == 10 && w[1].len() == 8 && w[2] == "UTC"),
        "{listing}"
    );
    let (status, body) = http_request(
        server.http,
        "DELETE",
        &format!("/api/v1/silences/{silence_id}"),
        &[],
        b"",
    );
    assert_eq!(status, 200, "{body}");
    sink.wait("/hook", "quiet's page after the silence expired", |r| {
        r.iter()
            .any(|r| r.json()["group_labels"]["slo"] == "quiet-availability")
    });
    let silences = get(&server, "/api/v1/silences");
    assert_eq!(silences["silences"][0]["status"], "expired", "{silences:#}");

    // Bad silences are refused with the reason.
    for (body, want) in [
        (
            r#"{"matchers":["service=~\".*\""],"duration":"1h","created_by":"x"}"#,
            "every alert",
        ),
        (
            r#"{"matchers":["service=quiet"],"duration":"1h","created_by":"x"}"#,
            "not a label matcher",
        ),
        (
            r#"{"matchers":["service=\"x\""],"created_by":"x"}"#,
            "ends_at or duration",
        ),
        (
            r#"{"matchers":["service=\"x\""],"duration":"1h","created_by":""}"#,
            "created_by",
        ),
    ] {
        let (status, answer) = http_post(
            server.http,
            "/api/v1/silences",
            "application/json",
            body.as_bytes(),
        );
        assert_eq!(status, 400, "{body}: {answer}");
        assert!(answer.contains(want), "{body}: {answer}");
    }
}

/// The receiver is down (503) for its first 24 attempts, then rate-limits
/// (429 with Retry-After) twice, then recovers: every notification arrives,
/// accepted once per idempotency key, in order within its group. With
/// `restart`, smolder is killed during the outage and started again. The
/// outage is counted in attempts, not in seconds, so it lasts as long as the
/// retries need and no longer.
/// An SLO file's error-budget policy raises budget events, routed like
/// alerts: falling below 50 % of the budget reaches the receiver routed on
/// `severity="budget"` (and not the pager), and the recovery follows.
#[test]
fn budget_events_reach_the_receiver_routed_on_severity_budget_and_the_recovery_follows() {
    let sink = Sink::ok();
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "[alerting.route]\nreceiver = \"pager\"\ngroup_interval = \"1s\"\n\
         [[alerting.route.routes]]\nmatchers = ['severity=\"budget\"']\nreceiver = \"budget\"\n\
         [[alerting.receivers]]\nname = \"pager\"\ntype = \"webhook\"\nurl = \"{}\"\n\
         [[alerting.receivers]]\nname = \"budget\"\ntype = \"webhook\"\nurl = \"{}\"\n",
        sink.url("/pager"),
        sink.url("/budget")
    );
    let with_levels = slo("shop").replace(
        "    smolder.dev/runbook-url",
        "    smolder.dev/budget-levels: \"50%, 0%\"\n    smolder.dev/runbook-url",
    );
    let server = start(dir.path(), &[("shop.yaml", with_levels)], &toml);
    let def = get(&server, "/api/v1/slos/shop-availability");
    assert_eq!(
        def["definition"]["budget_levels"],
        json!([0.5, 0.0]),
        "{def:#}"
    );

    // 60 failures in 10,000 requests spend 60 % of a 99 % objective's
    // budget, at a burn rate of 0.6: a budget event, no burn-rate alert.
    send(&server, &spans("shop", 10_000, 60, 1));
    let got = sink.wait("/budget", "the budget event", |r| !r.is_empty());
    let body = got[0].json();
    assert_eq!(body["status"], "firing", "{body:#}");
    assert_eq!(body["alerts"].as_array().unwrap().len(), 1, "{body:#}");
    let alert = &body["alerts"][0];
    assert_eq!(alert["labels"]["alertname"], "SLOErrorBudget");
    assert_eq!(alert["labels"]["severity"], "budget");
    assert_eq!(alert["labels"]["budget_level"], "50%");
    assert_eq!(
        alert["annotations"]["summary"],
        "shop-availability has less than 50% of its error budget left (40%)"
    );
    let alerts = wait_alerts(&server, "the budget event", |a| !a.is_empty());
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    assert_eq!(alerts[0]["labels"]["condition"], "budget 50%");

    // 10,000 good requests: 30 % spent, the event resolves.
    send(&server, &spans("shop", 10_000, 0, 2));
    let got = sink.wait("/budget", "the recovery", |r| {
        r.iter().any(|r| r.json()["status"] == "resolved")
    });
    let resolved = got.last().unwrap().json();
    assert_eq!(
        resolved["alerts"][0]["annotations"]["summary"],
        "shop-availability: the error budget is back above 50% (70% left)",
        "{resolved:#}"
    );
    assert!(sink.received("/pager").is_empty(), "only the budget route");
}

fn outage(restart: bool) {
    const DOWN: usize = 24;
    const LIMITED: usize = 2;
    let attempts = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let policy: Policy =
        Arc::new(
            move |_| match attempts.fetch_add(1, std::sync::atomic::Ordering::SeqCst) {
                n if n < DOWN => (503, None),
                n if n < DOWN + LIMITED => (429, Some(1)),
                _ => (200, None),
            },
        );
    let sink = Sink::start(policy);
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "[alerting.route]\nreceiver = \"hook\"\ngroup_interval = \"1s\"\n\
         [[alerting.receivers]]\nname = \"hook\"\ntype = \"webhook\"\nurl = \"{}\"\nsecret = \"{SECRET}\"\n\
         [alerting.delivery]\ninitial_backoff = \"200ms\"\nmax_backoff = \"1s\"\nmax_retry_age = \"15m\"\n",
        sink.url("/hook")
    );
    let mut server = start(
        dir.path(),
        &[("a.yaml", slo("alpha")), ("b.yaml", slo("beta"))],
        &toml,
    );
    incident(&server, "alpha", 1);
    incident(&server, "beta", 2);
    recover(&server, "alpha", 3);
    if restart {
        sink.wait("/hook", "retries before the crash", |r| r.len() >= 4);
        server.crash_and_restart();
    }
    recover(&server, "beta", 4);
    // Both groups' firing and resolved notifications get through.
    sink.wait_at_most(
        Duration::from_secs(240),
        "/hook",
        "every notification after the outage",
        |r| r.iter().filter(|r| r.answered == 200).count() >= 4,
    );
    std::thread::sleep(Duration::from_secs(3));
    let got = sink.received("/hook");
    assert!(got.iter().any(|r| r.answered == 503) && got.iter().any(|r| r.answered == 429));
    let accepted: Vec<&Received> = got.iter().filter(|r| r.answered == 200).collect();
    let mut per_key: BTreeMap<&str, usize> = BTreeMap::new();
    for r in &accepted {
        assert_signed(r);
        *per_key.entry(r.header("webhook-id")).or_default() += 1;
    }
    assert!(
        per_key.values().all(|&n| n == 1),
        "accepted once per key: {per_key:?}"
    );
    // Per group: the page fired, then resolved — in that order, each once.
    for slo in ["alpha-availability", "beta-availability"] {
        let statuses: Vec<String> = accepted
            .iter()
            .map(|r| r.json())
            .filter(|b| b["group_labels"]["slo"] == slo && b["group_labels"]["severity"] == "page")
            .map(|b| b["status"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(statuses, ["firing", "resolved"], "{slo}");
    }
    // Retries were spaced out: after the 429, the next attempt waited for
    // Retry-After.
    let after_429 = got.iter().position(|r| r.answered == 429).unwrap();
    assert!(got.len() > after_429 + 1);
    let notifications = get(&server, "/api/v1/notifications?receiver=hook");
    let rows = notifications["notifications"].as_array().unwrap();
    assert!(
        rows.iter().all(|n| n["state"] == "delivered"),
        "{notifications:#}"
    );
    assert!(
        rows.iter().any(|n| n["attempts"].as_u64().unwrap() > 5),
        "{notifications:#}"
    );
    // No notification beyond the delivered ones was made (after the restart
    // the notification log kept "firing" from being notified again).
    let ids: std::collections::BTreeSet<&str> =
        got.iter().map(|r| r.header("webhook-id")).collect();
    assert_eq!(
        ids.len(),
        per_key.len(),
        "every notification id attempted was delivered"
    );
}

#[test]
fn outage_then_recovery_delivers_each_notification_once_in_order() {
    outage(false);
}

#[test]
fn outage_with_a_restart_delivers_each_notification_once_in_order() {
    outage(true);
}

/// A 4xx other than 429 fails at once with the receiver's answer recorded.
#[test]
fn client_errors_are_not_retried() {
    let sink = Sink::start(Arc::new(|_| (400, None)));
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "[alerting.route]\nreceiver = \"hook\"\n\
         [[alerting.receivers]]\nname = \"hook\"\ntype = \"slack\"\nurl = \"{}\"\n",
        sink.url("/slack")
    );
    let server = start(dir.path(), &[("a.yaml", slo("shop"))], &toml);
    incident(&server, "shop", 1);
    let deadline = Instant::now() + Duration::from_secs(30);
    let row = loop {
        let n = get(&server, "/api/v1/notifications");
        if let Some(row) = n["notifications"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["state"] == "failed")
        {
            break row.clone();
        }
        assert!(Instant::now() < deadline, "{n:#}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(row["attempts"], 1);
    assert_eq!(row["last_status"], 400);
    assert!(
        row["last_error"]
            .as_str()
            .unwrap()
            .contains("HTTP 400: try later"),
        "{row:#}"
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(sink.received("/slack").len(), 1, "not retried");
}

/// Invalid alerting configuration is refused at start and at reload, with
/// the field named; the running configuration stays.
#[test]
fn invalid_configuration_is_refused_with_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("smolder.toml");
    std::fs::write(
        &config,
        "[alerting.route]\nreceiver = \"pager\"\n[[alerting.receivers]]\nname = \"ops\"\ntype = \"slack\"\n",
    )
    .unwrap();
    let out = std::process::Command::new(smolder_bin())
        .args(["serve", "--config", config.to_str().unwrap(), "--data-dir"])
        .arg(dir.path().join("data"))
        .args([
            "--otlp-grpc-addr",
            "127.0.0.1:0",
            "--otlp-http-addr",
            "127.0.0.1:0",
            "--http-addr",
            "127.0.0.1:0",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("alerting.receivers[0].url: is required for slack receivers"),
        "{err}"
    );
    assert!(
        err.contains("alerting.route.receiver: no receiver named \"pager\""),
        "{err}"
    );

    // A good configuration, then a bad reload.
    let sink = Sink::ok();
    let good = format!(
        "[alerting.route]\nreceiver = \"ops\"\n[[alerting.receivers]]\nname = \"ops\"\ntype = \"webhook\"\nurl = \"{}\"\n",
        sink.url("/ops")
    );
    let server = start(dir.path(), &[("a.yaml", slo("shop"))], &good);
    std::fs::write(
        dir.path().join("smolder.toml"),
        "[alerting.route]\nreceiver = \"ops\"\n[[alerting.receivers]]\nname = \"ops\"\ntype = \"webhook\"\nurl = \"ftp://x\"\n",
    )
    .unwrap();
    let (status, body) = http_post(server.http, "/-/reload", "text/plain", b"");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("alerting.receivers[0].url"), "{body}");
    // Still alerting with the good configuration.
    incident(&server, "shop", 1);
    sink.wait(
        "/ops",
        "a notification with the configuration before the bad reload",
        |r| !r.is_empty(),
    );
    // A good reload moves the route.
    std::fs::write(
        dir.path().join("smolder.toml"),
        good.replace("/ops", "/ops2"),
    )
    .unwrap();
    let (status, body) = http_post(server.http, "/-/reload", "text/plain", b"");
    assert_eq!(status, 200, "{body}");
}

/// A free loopback port (bound, then released for a server to take).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until something listens on `port`.
fn wait_listening(port: u16, what: &str, child: &mut std::process::Child) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited with {status}");
        }
        assert!(
            Instant::now() < deadline,
            "{what} did not listen on port {port}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Kills a child process when dropped.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A mail's headers (unfolded, names in lower case) and its raw text.
fn parse_mail(text: &str) -> (HashMap<String, String>, String) {
    let head = text
        .split("\n\n")
        .next()
        .unwrap_or_default()
        .replace("\r\n", "\n");
    let mut headers: HashMap<String, String> = HashMap::new();
    let mut last = String::new();
    for line in head.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some(v) = headers.get_mut(&last) {
                v.push(' ');
                v.push_str(line.trim());
            }
        } else if let Some((k, v)) = line.split_once(':') {
            last = k.trim().to_ascii_lowercase();
            headers.insert(last.clone(), v.trim().to_string());
        }
    }
    (headers, text.to_string())
}

/// A test CA and a server certificate for 127.0.0.1 signed by it (openssl):
/// (CA PEM, server certificate, server key).
fn test_certificates(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    let run = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl is missing: apt-get install openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=smolder test CA",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "1",
        "-extfile",
        "ext.cnf",
    ]);
    (
        dir.join("ca.pem"),
        dir.join("server.pem"),
        dir.join("server.key"),
    )
}

/// Email through a real SMTP server (Python's aiosmtpd, writing a maildir),
/// in plain text on loopback, with STARTTLS and with implicit TLS (its
/// certificate from a CA given in `ca_file`): the firing and the resolved
/// mail are multipart text + HTML and thread together.
fn email(tls: &str) {
    let dir = tempfile::tempdir().unwrap();
    let (_smtp, port, maildir, tls_settings) = smtp_server(dir.path(), tls);
    let toml = format!(
        "[alerting]\nexternal_url = \"http://smolder.example.com\"\n\
         [alerting.route]\nreceiver = \"mail\"\ngroup_interval = \"1s\"\n\
         [[alerting.receivers]]\nname = \"mail\"\ntype = \"email\"\nsmtp = \"127.0.0.1:{port}\"\n\
         tls = \"{tls}\"\n{tls_settings}from = \"smolder <alerts@smolder.example.com>\"\nto = [\"sre@example.com\"]\n"
    );
    email_incident(dir.path(), &maildir, &toml);
}

/// A real SMTP server (aiosmtpd) on loopback writing a maildir under `dir`,
/// in plain text or with `starttls` or `tls` (a test CA's certificate):
/// the server, its port, the maildir and the receiver's TLS settings.
fn smtp_server(dir: &Path, tls: &str) -> (Child, u16, std::path::PathBuf, String) {
    let python = smolder_tests::python(".venv-smtp");
    let maildir = dir.join("maildir");
    let port = free_port();
    let mut command = std::process::Command::new(python);
    command
        .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")])
        .args(["-c", "aiosmtpd.handlers.Mailbox"])
        .stdout(std::process::Stdio::null());
    let mut tls_settings = String::new();
    if tls != "none" {
        let (ca, cert, key) = test_certificates(dir);
        let (cert_flag, key_flag) = if tls == "tls" {
            ("--smtpscert", "--smtpskey")
        } else {
            ("--tlscert", "--tlskey")
        };
        command.arg(cert_flag).arg(&cert).arg(key_flag).arg(&key);
        tls_settings = format!("ca_file = {:?}\n", ca.display().to_string());
    }
    // The handler's argument (the maildir) comes last.
    command.arg(&maildir);
    let mut smtp = Child(command.spawn().expect("starting aiosmtpd"));
    wait_listening(port, "aiosmtpd", &mut smtp.0);
    (smtp, port, maildir, tls_settings)
}

/// The mails in a maildir.
/// The first mail whose subject starts with `subject` (90 s at most).
fn wait_for_mail(maildir: &Path, subject: &str) -> (HashMap<String, String>, String) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if let Some(m) = mails(maildir)
            .into_iter()
            .find(|(h, _)| h["subject"].starts_with(subject))
        {
            return m;
        }
        assert!(
            Instant::now() < deadline,
            "a mail {subject:?}: {:#?}",
            mails(maildir)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn mails(maildir: &Path) -> Vec<(HashMap<String, String>, String)> {
    std::fs::read_dir(maildir.join("new"))
        .map(|d| {
            d.map(|e| parse_mail(&std::fs::read_to_string(e.unwrap().path()).unwrap()))
                .collect()
        })
        .unwrap_or_default()
}

/// An incident of `shop` mailed through the `[alerting]` TOML's receiver:
/// the firing and the resolved mail.
fn email_incident(dir: &Path, maildir: &Path, toml: &str) {
    let server = start(dir, &[("a.yaml", slo("shop"))], toml);
    incident(&server, "shop", 1);
    recover(&server, "shop", 2);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mails = loop {
        let mut mails = mails(maildir);
        mails.retain(|(h, _)| {
            h["subject"].contains("shop-availability") && h["subject"].contains("page")
        });
        if mails.len() >= 2 {
            break mails;
        }
        assert!(Instant::now() < deadline, "two mails: {mails:#?}");
        std::thread::sleep(Duration::from_millis(200));
    };
    let firing = mails
        .iter()
        .find(|(h, _)| h["subject"].starts_with("[FIRING:"))
        .expect("a firing mail");
    let resolved = mails
        .iter()
        .find(|(h, _)| h["subject"].starts_with("[RESOLVED]"))
        .expect("a resolved mail");
    for (h, text) in [firing, resolved] {
        assert_eq!(h["x-rcptto"], "sre@example.com");
        assert!(h["from"].contains("alerts@smolder.example.com"), "{h:?}");
        assert!(
            h["content-type"].starts_with("multipart/alternative"),
            "{h:?}"
        );
        assert!(text.contains("Content-Type: text/plain"), "{text}");
        assert!(text.contains("Content-Type: text/html"), "{text}");
        assert!(
            text.contains("http://smolder.example.com/slos/shop-availability"),
            "{text}"
        );
    }
    assert!(
        firing
            .1
            .contains("Runbook: https://runbooks.example.com/shop"),
        "{}",
        firing.1
    );
    // Each mail shows the page's burn-rate chart inline: a PNG part beside
    // the HTML (multipart/related) whose Content-ID the HTML names.
    for (_, text) in [firing, resolved] {
        let text = text.replace("\r\n", "\n");
        assert!(text.contains("Content-Type: multipart/related"), "{text}");
        let (part_head, part) = text
            .split_once("Content-ID: <")
            .map(|(_, rest)| rest.split_once("\n\n").unwrap())
            .unwrap_or_else(|| panic!("an inline image: {text}"));
        let cid = part_head.split('>').next().unwrap();
        assert!(
            cid.starts_with("chart-") && cid.ends_with("@smolder"),
            "{cid}"
        );
        assert!(part_head.contains("image/png"), "{part_head}");
        // The HTML (quoted-printable) refers to it.
        let html = text.replace("=\n", "").replace("=3D", "=");
        assert!(html.contains(&format!("src=\"cid:{cid}\"")), "{html}");
        let b64: String = part.lines().take_while(|l| !l.starts_with("--")).collect();
        let png = base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .expect("a base64 PNG");
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "{:?}", &png[..8]);
    }
    let root = &firing.0["message-id"];
    assert!(
        root.starts_with("<msg_") && root.ends_with("@smolder.example.com>"),
        "{root}"
    );
    assert!(
        !firing.0.contains_key("in-reply-to"),
        "the first mail starts the thread"
    );
    assert_eq!(&resolved.0["in-reply-to"], root);
    assert_eq!(&resolved.0["references"], root);
    assert_ne!(&resolved.0["message-id"], root);
}

/// A weekly report configured in `[[alerting.reports]]` is mailed for the
/// week that ended (the server starts after it ended): the SLOs' figures and
/// each one's budget chart inline. A restart does not send it again.
#[test]
fn the_report_of_the_week_that_ended_is_mailed_once_with_its_charts() {
    let dir = tempfile::tempdir().unwrap();
    let (_smtp, port, maildir, _) = smtp_server(dir.path(), "none");
    let toml = format!(
        "[alerting]\nexternal_url = \"http://smolder.example.com\"\n\
         [[alerting.receivers]]\nname = \"mail\"\ntype = \"email\"\nsmtp = \"127.0.0.1:{port}\"\n\
         tls = \"none\"\nfrom = \"smolder <alerts@smolder.example.com>\"\nto = [\"sre@example.com\"]\n\
         [[alerting.reports]]\nname = \"weekly\"\nperiod = \"week\"\nreceivers = [\"mail\"]\n"
    );
    let slos = [("a.yaml", slo("shop")), ("b.yaml", slo("search"))];
    let server = start(dir.path(), &slos, &toml);
    let report = wait_for_mail(&maildir, "SLO report weekly");
    let (headers, text) = report;
    // Monday to Monday, the week before this one.
    let today = chrono::Utc::now().date_naive();
    let monday = today
        - chrono::Days::new(
            u64::from(chrono::Datelike::weekday(&today).num_days_from_monday()) + 7,
        );
    assert!(
        headers["subject"].contains(&format!(
            "Week from {monday} to {}",
            monday + chrono::Days::new(7)
        )),
        "{headers:?}"
    );
    assert!(
        headers["subject"].ends_with("2 of 2 SLOs met"),
        "{headers:?}"
    );
    let text = text
        .replace("=\r\n", "")
        .replace("=\n", "")
        .replace("=3D", "=");
    for slo in ["shop-availability", "search-availability"] {
        assert!(text.contains(slo), "{text}");
    }
    assert!(text.contains("Content-Type: multipart/related"), "{text}");
    assert_eq!(
        text.matches("Content-Type: image/png").count(),
        2,
        "a chart per SLO"
    );
    assert!(text.contains("src=\"cid:report-"), "{text}");
    drop(server);
    // After a restart the week's report was already sent.
    let server = start(dir.path(), &slos, &toml);
    std::thread::sleep(Duration::from_secs(3));
    let sent = mails(&maildir)
        .into_iter()
        .filter(|(h, _)| h["subject"].starts_with("SLO report weekly"))
        .count();
    assert_eq!(sent, 1);
    drop(server);
}

#[test]
fn email_firing_and_resolved_mails_thread_together() {
    email("none");
}

#[test]
fn email_over_starttls() {
    email("starttls");
}

#[test]
fn email_over_implicit_tls() {
    email("tls");
}

/// Forwarding to a real Alertmanager (Debian's `prometheus-alertmanager`):
/// smolder posts to `/api/v2/alerts`, Alertmanager groups the alerts and
/// delivers them to its own webhook receiver — firing, then resolved.
#[test]
fn alertmanager_groups_and_delivers_what_smolder_forwards() {
    let binary = ["prometheus-alertmanager", "alertmanager"]
        .into_iter()
        .find(|b| std::process::Command::new(b).arg("--version").output().is_ok())
        .expect("Alertmanager is missing: apt-get install prometheus-alertmanager (scripts/test.sh does)");
    let sink = Sink::ok();
    let dir = tempfile::tempdir().unwrap();
    let am_config = dir.path().join("alertmanager.yml");
    std::fs::write(
        &am_config,
        format!(
            "route:\n  receiver: hook\n  group_by: [slo, severity]\n  group_wait: 1s\n  group_interval: 1s\n  repeat_interval: 1h\n\
             receivers:\n  - name: hook\n    webhook_configs:\n      - url: {}\n        send_resolved: true\n",
            sink.url("/from-alertmanager")
        ),
    )
    .unwrap();
    let port = free_port();
    let mut am = Child(
        std::process::Command::new(binary)
            .arg(format!("--config.file={}", am_config.display()))
            .arg(format!(
                "--storage.path={}",
                dir.path().join("am-data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("starting Alertmanager"),
    );
    wait_listening(port, "Alertmanager", &mut am.0);
    let toml = format!(
        "[alerting.route]\nreceiver = \"am\"\ngroup_interval = \"1s\"\n\
         [[alerting.receivers]]\nname = \"am\"\ntype = \"alertmanager\"\nurl = \"http://127.0.0.1:{port}\"\nresend_interval = \"5s\"\n"
    );
    let server = start(dir.path(), &[("a.yaml", slo("shop"))], &toml);
    incident(&server, "shop", 1);
    let got = sink.wait("/from-alertmanager", "Alertmanager's firing webhook", |r| {
        r.iter().any(|r| {
            r.json()["status"] == "firing" && r.json()["groupLabels"]["severity"] == "page"
        })
    });
    let body = got
        .iter()
        .map(Received::json)
        .find(|b| b["groupLabels"]["severity"] == "page")
        .unwrap();
    assert_eq!(body["version"], "4");
    assert_eq!(body["groupLabels"]["slo"], "shop-availability");
    let alert = &body["alerts"][0];
    assert_eq!(alert["labels"]["alertname"], "SLOBurnRate");
    assert_eq!(alert["labels"]["service"], "shop");
    assert!(
        alert["annotations"]["summary"]
            .as_str()
            .unwrap()
            .contains("too fast")
    );
    assert_eq!(
        alert["generatorURL"],
        format!("http://{}/slos/shop-availability", server.http)
    );
    // Alertmanager itself lists the alert.
    let (status, listed) = http_request(
        SocketAddr::from(([127, 0, 0, 1], port)),
        "GET",
        "/api/v2/alerts?filter=slo%3D%22shop-availability%22",
        &[],
        b"",
    );
    assert_eq!(status, 200, "{listed}");
    assert!(listed.contains("SLOBurnRate"), "{listed}");

    recover(&server, "shop", 2);
    sink.wait(
        "/from-alertmanager",
        "Alertmanager's resolved webhook",
        |r| {
            r.iter().any(|r| {
                r.json()["status"] == "resolved" && r.json()["groupLabels"]["severity"] == "page"
            })
        },
    );
}

/// A scheduled report names its tenant: `tenant = "acme"` mails acme's SLOs
/// (and not the default tenant's), with their charts.
#[test]
fn a_tenants_scheduled_report_covers_that_tenants_slos_only() {
    let dir = tempfile::tempdir().unwrap();
    let (_smtp, port, maildir, _) = smtp_server(dir.path(), "none");
    let config = dir.path().join("smolder.toml");
    std::fs::write(
        &config,
        format!(
            "[[alerting.receivers]]\nname = \"mail\"\ntype = \"email\"\nsmtp = \"127.0.0.1:{port}\"\n\
             tls = \"none\"\nfrom = \"smolder <alerts@smolder.example.com>\"\nto = [\"acme@example.com\"]\n\
             [[alerting.reports]]\nname = \"acme weekly\"\nperiod = \"week\"\nreceivers = [\"mail\"]\n\
             tenant = \"acme\"\n"
        ),
    )
    .unwrap();
    let slo_dir = dir.path().join("slos");
    std::fs::create_dir_all(&slo_dir).unwrap();
    std::fs::write(slo_dir.join("search.yaml"), slo("search")).unwrap();
    let data = dir.path().join("data");
    let acme = smolder_tests::create_token(&data, "acme", "read,write");
    let mut server = Server::start_in(
        &data,
        &[
            "--auth",
            "required",
            "--config",
            config.to_str().unwrap(),
            "--slo-dir",
            slo_dir.to_str().unwrap(),
        ],
    );
    let bearer = format!("Bearer {acme}");
    let (status, answer) = http_request(
        server.http,
        "PUT",
        "/api/v1/slos/shop-availability",
        &[
            ("authorization", &bearer),
            ("content-type", "application/yaml"),
        ],
        slo("shop").as_bytes(),
    );
    assert_eq!(status, 201, "{answer}");
    // Started again, the server has acme's SLO engine from the start.
    server.restart();
    let (headers, text) = wait_for_mail(&maildir, "SLO report acme weekly");
    assert!(
        headers["subject"].ends_with("1 of 1 SLOs met"),
        "{headers:?}"
    );
    let text = text.replace("=\r\n", "").replace("=\n", "");
    assert!(text.contains("shop-availability"), "{text}");
    assert!(
        !text.contains("search-availability"),
        "the default tenant's SLO: {text}"
    );
    assert_eq!(text.matches("Content-Type: image/png").count(), 1, "{text}");
}

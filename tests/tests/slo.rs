//! The SLO engine end to end: `smolder serve --slo-dir`, spans sent over
//! OTLP/HTTP, and what an SRE (or Grafana, or KEDA) reads back — the API, the
//! chart series, `/metrics`, the `slo_rollups` table — plus managing SLOs
//! through the API, reloading files, and a restart that keeps the rollups
//! without the raw data.

use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use smolder_tests::{Server, http_post, http_request};

const SLO: &str = r#"
apiVersion: openslo/v1
kind: SLO
metadata:
  name: shop-availability
spec:
  service: shop
  indicator:
    metadata:
      name: shop-ok
    spec:
      ratioMetric:
        counter: true
        good:
          metricSource:
            type: smolder
            spec:
              table: spans
              filter: "service_name = 'shop' AND status_code <> 'ERROR'"
        total:
          metricSource:
            type: smolder
            spec:
              table: spans
              filter: "service_name = 'shop'"
  timeWindow:
    - duration: 7d
      isRolling: true
  budgetingMethod: Occurrences
  objectives:
    - target: 0.99
"#;

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64
}

/// `n` spans of service `shop` starting at `start`, the first `errors` failed.
fn spans(n: usize, errors: usize, start: i64, seed: u64) -> Vec<u8> {
    spans_of("shop", n, errors, start, seed)
}

/// `n` spans of `service` starting at `start`, the first `errors` failed.
fn spans_of(service: &str, n: usize, errors: usize, start: i64, seed: u64) -> Vec<u8> {
    let spans = (0..n)
        .map(|i| {
            let id = seed * 10_000 + i as u64 + 1;
            let start = start + i as i64 * 1_000_000;
            smolder_sample_data::fixtures::server_span(id, start, 5_000_000, i < errors)
        })
        .collect();
    smolder_sample_data::fixtures::service_spans(service, spans)
}

fn get(server: &Server, path: &str) -> (u16, Value) {
    let (status, body) = http_request(server.http, "GET", path, &[], b"");
    (
        status,
        serde_json::from_str(&body).unwrap_or(Value::String(body)),
    )
}

fn send(server: &Server, body: &[u8]) {
    let (status, answer) = http_post(
        server.otlp_http,
        "/v1/traces",
        "application/x-protobuf",
        body,
    );
    assert_eq!(status, 200, "{answer}");
}

/// Polls `GET /api/v1/slos/{id}` until `done` holds (30 s at most).
fn wait_for(server: &Server, id: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, slo) = get(server, &format!("/api/v1/slos/{id}"));
        if status == 200 && done(&slo) {
            return slo;
        }
        assert!(Instant::now() < deadline, "waiting for {what}: {slo:#}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The ids in a `GET /api/v1/slos` answer.
fn slo_ids(list: &Value) -> Vec<&str> {
    list["slos"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect()
}

/// Waits until the server holds `n` spans (30 s at most).
fn wait_until_count(server: &Server, n: u64) {
    let got = server.wait_for_scalar("SELECT count(*) FROM spans", &serde_json::json!(n));
    assert_eq!(got, serde_json::json!(n), "spans stored");
}

fn start(data: &Path, slos: &Path) -> Server {
    Server::start_in(
        data,
        &["--slo-dir", slos.to_str().unwrap(), "--slo-interval", "1s"],
    )
}

#[test]
fn spans_slo_end_to_end() {
    let data = tempfile::tempdir().unwrap();
    let slos = tempfile::tempdir().unwrap();
    std::fs::write(slos.path().join("shop.yaml"), SLO).unwrap();
    let mut server = start(data.path(), slos.path());

    // 100 spans ten minutes ago (beyond the lateness), 10 of them failed.
    send(
        &server,
        &spans(100, 10, now_ns() - 10 * 60 * 1_000_000_000, 1),
    );
    let slo = wait_for(&server, "shop-availability", "100 events", |s| {
        s["instances"][0]["period"]["total"] == 100.0
    });
    let e = &slo["instances"][0];
    assert_eq!(slo["objective"], 0.99);
    assert_eq!(slo["sli"], 0.9);
    assert_eq!(slo["backfill"]["done"], true, "{slo:#}");
    // 10% bad at a 1% budget: burn rate 10 over every window holding the spans.
    let burn = |w: &str| slo["burn_rates"][w].as_f64().unwrap();
    assert!((burn("1h") - 10.0).abs() < 1e-9, "{slo:#}");
    assert_eq!(burn("5m"), 0.0, "the spans are older than 5 minutes");
    assert!((e["error_budget_remaining"].as_f64().unwrap() - (1.0 - 10.0)).abs() < 1e-9);
    // 7-day period: the page pairs need 3.36 and 1.4 over both windows; the
    // 5-minute window is empty, so only the slower pairs are met.
    let conditions = e["conditions"].as_array().unwrap();
    assert_eq!(conditions.len(), 4);
    assert_eq!(conditions[0]["met"], false);
    assert_eq!(conditions[1]["met"], true, "6h/30m at 1.4: {conditions:?}");
    assert_eq!(slo["alert_state"], "page");
    assert_eq!(slo["definition"]["alert_windows"][0]["name"], "page-1h");

    // The list has the contract's fields.
    let (status, list) = get(&server, "/api/v1/slos");
    assert_eq!(status, 200);
    let first = &list["slos"][0];
    for field in [
        "objective",
        "period",
        "sli",
        "error_budget_remaining",
        "burn_rates",
        "alert_state",
    ] {
        assert!(!first[field].is_null(), "{field} missing: {first:#}");
    }

    // Chart series.
    let (status, series) = get(&server, "/api/v1/slos/shop-availability/series?step=1h");
    assert_eq!(status, 200, "{series}");
    let n = series["timestamps"].as_array().unwrap().len();
    assert!(n >= 7 * 24, "a point per hour over the period: {n}");
    assert_eq!(series["burn_rates"]["1h"].as_array().unwrap().len(), n);
    assert_eq!(series["sli"].as_array().unwrap().last().unwrap(), 0.9);
    let (status, bad) = get(
        &server,
        "/api/v1/slos/shop-availability/series?from=tomorrow",
    );
    assert_eq!(status, 400);
    assert!(bad["error"].as_str().unwrap().contains("from"), "{bad}");

    // Prometheus gauges.
    let (_, metrics) = http_request(server.http, "GET", "/metrics", &[], b"");
    assert!(
        metrics.contains(
            r#"smolder_slo_burn_rate{slo="shop-availability",group="{}",window="1h"} 10"#
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            r#"smolder_slo_error_budget_remaining{slo="shop-availability",group="{}"} -9"#
        )
    );
    assert!(metrics.contains(r#"smolder_slo_objective{slo="shop-availability"} 0.99"#));

    // The rollups in SQL.
    let total = server.scalar("SELECT sum(total) FROM slo_rollups WHERE slo = 'shop-availability'");
    assert_eq!(total, 100.0);

    // A restart without the raw data: the rollups come from the SLO database.
    assert!(server.stop());
    for dir in ["parquet", "wal"] {
        let path = data.path().join(dir);
        if path.exists() {
            std::fs::remove_dir_all(path).unwrap();
        }
    }
    server.restart();
    assert_eq!(
        server.scalar("SELECT count(*) FROM spans"),
        serde_json::json!(0),
        "the raw spans are gone"
    );
    let slo = wait_for(&server, "shop-availability", "the stored rollups", |s| {
        s["backfill"]["done"] == true
    });
    assert_eq!(slo["instances"][0]["period"]["total"], 100.0, "{slo:#}");
    assert_eq!(slo["sli"], 0.9);
}

#[test]
fn slos_are_managed_through_the_api_and_the_directory() {
    let data = tempfile::tempdir().unwrap();
    let slos = tempfile::tempdir().unwrap();
    std::fs::write(slos.path().join("shop.yaml"), SLO).unwrap();
    let server = start(data.path(), slos.path());
    let put = |id: &str, body: &str| server.put_slo(id, body);

    // A Sloth file through the API.
    let sloth = r#"
version: "prometheus/v1"
service: "payment"
slos:
  - name: "grpc"
    objective: 99.9
    sli:
      events:
        error_query: sum(rate(grpc_server_handled_total{job="payment",grpc_code!="OK"}[{{.window}}]))
        total_query: sum(rate(grpc_server_handled_total{job="payment"}[{{.window}}]))
"#;
    let (status, answer) = put("payment-grpc", sloth);
    assert_eq!(status, 201, "{answer}");
    let (status, _) = put("payment-grpc", sloth);
    assert_eq!(status, 200, "replacing answers 200");
    let slo = wait_for(&server, "payment-grpc", "the Sloth SLO", |s| {
        s["definition"]["sli"]["table"] == "metrics"
    });
    assert_eq!(slo["objective"], 0.999);

    // What cannot be translated is refused, with the reason and the field.
    let by = sloth.replace(
        "sum(rate(grpc_server_handled_total{job=\"payment\"}",
        "sum by (grpc_code) (rate(grpc_server_handled_total{job=\"payment\"}",
    );
    let (status, answer) = put("payment-grpc", &by);
    assert_eq!(status, 400);
    let error = answer["error"].as_str().unwrap();
    assert!(
        error.contains("slos[0].sli.events.total_query") && error.contains("by/without"),
        "{error}"
    );

    // Unknown columns are refused when the SLO is created.
    let (status, answer) = put(
        "shop-2",
        &SLO.replace("shop-availability", "shop-2")
            .replace("status_code <>", "stat_code <>"),
    );
    assert_eq!(status, 400);
    assert!(
        answer["error"].as_str().unwrap().contains("stat_code"),
        "{answer}"
    );
    // The name in the body must match.
    let (status, answer) = put("other", SLO);
    assert_eq!(status, 400);
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("does not define SLO \"other\""),
        "{answer}"
    );
    // SLOs of the directory are changed there.
    let (status, answer) = put("shop-availability", SLO);
    assert_eq!(status, 409, "{answer}");
    let (status, _) = http_request(
        server.http,
        "DELETE",
        "/api/v1/slos/shop-availability",
        &[],
        b"",
    );
    assert_eq!(status, 409);

    // Delete.
    let (status, _) = http_request(server.http, "DELETE", "/api/v1/slos/payment-grpc", &[], b"");
    assert_eq!(status, 204);
    let (status, _) = get(&server, "/api/v1/slos/payment-grpc");
    assert_eq!(status, 404);
    let (status, _) = http_request(server.http, "DELETE", "/api/v1/slos/payment-grpc", &[], b"");
    assert_eq!(status, 404);

    // A new file is picked up; a broken one is reported with file, document
    // and field while the others keep running.
    std::fs::write(
        slos.path().join("more.yaml"),
        SLO.replace("shop-availability", "shop-strict")
            .replace("0.99", "0.999"),
    )
    .unwrap();
    wait_for(&server, "shop-strict", "the new file", |s| {
        s["objective"] == 0.999
    });
    std::fs::write(
        slos.path().join("broken.yaml"),
        SLO.replace("shop-availability", "shop-broken")
            .replace("target: 0.99", "target: 99"),
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, list) = get(&server, "/api/v1/slos");
        let problems = list["problems"].as_array().unwrap();
        if let Some(p) = problems.first() {
            assert!(p["file"].as_str().unwrap().ends_with("broken.yaml"), "{p}");
            assert_eq!(p["document"], 1);
            assert_eq!(p["field"], "spec.objectives[0].target");
            assert!(
                p["message"]
                    .as_str()
                    .unwrap()
                    .contains("99 is not a fraction")
            );
            let ids = slo_ids(&list);
            assert_eq!(ids, ["shop-availability", "shop-strict"]);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the broken file was not reported: {list:#}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // Breaking a loaded file keeps its SLO's last good definition; deleting
    // the file removes the SLO.
    std::fs::write(
        slos.path().join("more.yaml"),
        "apiVersion: openslo/v1\nkind: SLO\nmetadata: [",
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, list) = get(&server, "/api/v1/slos");
        let problems = list["problems"].as_array().unwrap();
        if problems
            .iter()
            .any(|p| p["file"].as_str().unwrap().ends_with("more.yaml"))
        {
            let ids = slo_ids(&list);
            assert_eq!(ids, ["shop-availability", "shop-strict"], "{list:#}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "more.yaml was not reported: {list:#}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    std::fs::remove_file(slos.path().join("more.yaml")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, _) = get(&server, "/api/v1/slos/shop-strict");
        if status == 404 {
            break;
        }
        assert!(Instant::now() < deadline, "shop-strict was not removed");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn the_deploy_gate_freezes_changes_while_a_budget_is_below_its_policy_level() {
    let data = tempfile::tempdir().unwrap();
    let slos = tempfile::tempdir().unwrap();
    // shop freezes below half its budget; search only once it is spent.
    let shop = SLO.replace(
        "  name: shop-availability\n",
        "  name: shop-availability\n  annotations:\n    smolder.dev/freeze-below: \"50%\"\n",
    );
    std::fs::write(slos.path().join("shop.yaml"), &shop).unwrap();
    std::fs::write(
        slos.path().join("search.yaml"),
        SLO.replace("shop", "search"),
    )
    .unwrap();
    let server = start(data.path(), slos.path());
    let ago = now_ns() - 10 * 60 * 1_000_000_000;
    // shop: 6 of 1,000 failed, 0.6 % against a 1 % budget: 40 % left.
    send(&server, &spans(1000, 6, ago, 1));
    send(&server, &spans_of("search", 100, 0, ago, 2));
    for (id, total) in [
        ("shop-availability", 1000.0),
        ("search-availability", 100.0),
    ] {
        wait_for(&server, id, "the spans", |s| {
            s["instances"][0]["period"]["total"] == total
        });
    }

    let (status, gate) = get(&server, "/api/v1/slos/shop-availability/gate");
    assert_eq!(status, 423, "{gate:#}");
    assert_eq!(gate["state"], "frozen");
    assert_eq!(gate["allowed"], false);
    assert_eq!(gate["freeze_below"], 0.5);
    let left = gate["error_budget_remaining"].as_f64().unwrap();
    assert!((left - 0.4).abs() < 1e-9, "{gate:#}");
    assert!(gate["reason"].as_str().unwrap().contains("50%"), "{gate:#}");

    let (status, gate) = get(&server, "/api/v1/slos/search-availability/gate");
    assert_eq!(status, 200, "{gate:#}");
    assert_eq!(gate["allowed"], true);
    assert_eq!(gate["error_budget_remaining"], 1.0);

    let (status, gate) = get(&server, "/api/v1/services/shop/gate");
    assert_eq!(status, 423, "{gate:#}");
    assert_eq!(gate["slos"][0]["slo"], "shop-availability");
    let (status, _) = get(&server, "/api/v1/services/search/gate");
    assert_eq!(status, 200);
    let (status, answer) = get(&server, "/api/v1/slos/nope/gate");
    assert_eq!(status, 404, "{answer}");
    let (status, answer) = get(&server, "/api/v1/services/nope/gate");
    assert_eq!(status, 404, "{answer}");

    // A level that is not a share of the budget is refused, and named.
    let (status, answer) = server.put_slo(
        "odd",
        &SLO.replace(
            "  name: shop-availability\n",
            "  name: odd\n  annotations:\n    smolder.dev/freeze-below: \"150%\"\n",
        ),
    );
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer.to_string().contains("smolder.dev/freeze-below"),
        "{answer}"
    );
    let (status, answer) = server.put_slo(
        "odd",
        &SLO.replace(
            "  name: shop-availability\n",
            "  name: odd\n  annotations:\n    smolder.dev/budget-levels: \"50%, half\"\n",
        ),
    );
    assert_eq!(status, 400, "{answer}");
    let answer = answer.to_string();
    assert!(
        answer.contains("smolder.dev/budget-levels") && answer.contains("\\\"half\\\""),
        "{answer}"
    );
}

/// `POST /api/v1/slos/backtest` as an SRE tunes a policy: an incident two
/// and a half hours ago, 50 % of requests failing for 20 minutes, in four
/// hours of steady traffic. The running SLO's own policy would have paged
/// during it and notified the webhook of it firing and resolved; a looser
/// candidate would not have paged fast (the change against the running
/// policy);
/// the incident scores the page's condition; `smolder slo backtest` prints
/// the same; bad requests are refused naming what is wrong.
#[test]
fn a_backtest_shows_when_a_policy_would_have_paged_and_what_it_would_have_sent() {
    const MIN: i64 = 60_000_000_000;
    let data = tempfile::tempdir().unwrap();
    let slos = tempfile::tempdir().unwrap();
    let config = data.path().join("smolder.toml");
    std::fs::write(
        &config,
        "[alerting.route]\nreceiver = \"hook\"\ngroup_wait = \"30s\"\n\
         [[alerting.receivers]]\nname = \"hook\"\ntype = \"webhook\"\nurl = \"http://127.0.0.1:9/hook\"\n",
    )
    .unwrap();
    let server = Server::start_in(
        &data.path().join("data"),
        &[
            "--config",
            config.to_str().unwrap(),
            "--slo-dir",
            slos.path().to_str().unwrap(),
            "--slo-interval",
            "1s",
        ],
    );
    // Four hours of 20 requests a minute; minutes 90 to 110 fail half.
    let t0 = (now_ns() - 4 * 60 * MIN).div_euclid(MIN) * MIN;
    let incident = (t0 + 90 * MIN, t0 + 110 * MIN);
    let mut all = Vec::new();
    for minute in 0..240 {
        for i in 0..20 {
            let start = t0 + minute * MIN + i * 3_000_000_000;
            let failed = (90..110).contains(&minute) && i % 2 == 0;
            let id = (minute * 100 + i + 1) as u64;
            all.push(smolder_sample_data::fixtures::server_span(
                id, start, 5_000_000, failed,
            ));
        }
    }
    for chunk in all.chunks(1200) {
        send(
            &server,
            &smolder_sample_data::fixtures::service_spans("shop", chunk.to_vec()),
        );
    }
    // The SLO comes once every request is stored: rolling up history from
    // its first row, it counts all of them (requests hours late for an
    // SLO already past them are beyond its lateness).
    wait_until_count(&server, 4800);
    std::fs::write(slos.path().join("shop.yaml"), SLO).unwrap();
    wait_for(&server, "shop-availability", "the 4,800 requests", |s| {
        s["instances"][0]["period"]["total"] == 4800.0
    });
    let backtest = |body: Value| -> (u16, Value) {
        let (status, text) = http_post(
            server.http,
            "/api/v1/slos/backtest",
            "application/json",
            body.to_string().as_bytes(),
        );
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    };
    let secs = |ns: i64| ns as f64 / 1e9;
    let time =
        |v: &Value| -> i64 { smolder_common::text::parse_time(v.as_str().unwrap()).unwrap() };

    // The running policy, from Unix seconds to RFC 3339, with the incident.
    let to_text = smolder_common::text::rfc3339(t0 + 240 * MIN, chrono::SecondsFormat::Secs);
    let (status, answer) = backtest(serde_json::json!({
        "slo": SLO,
        "from": secs(t0),
        "to": to_text,
        "incidents": [{"start": secs(incident.0), "end": secs(incident.1)}],
    }));
    assert_eq!(status, 200, "{answer:#}");
    let alerts = answer["alerts"].as_array().unwrap();
    let page = alerts
        .iter()
        .find(|a| a["condition"] == "1h/5m")
        .unwrap_or_else(|| panic!("the fast page: {answer:#}"));
    assert_eq!(page["severity"], "page");
    let (start, end) = (time(&page["start"]), time(&page["end"]));
    assert!(
        (incident.0..incident.0 + 5 * MIN).contains(&start),
        "pages within minutes of the incident's start: {page:#}"
    );
    assert!(
        end > incident.1 && end < incident.1 + 30 * MIN,
        "resolves after the incident: {page:#}"
    );
    assert!(
        page["peak_long_burn_rate"].as_f64().unwrap() > 14.4,
        "{page:#}"
    );
    assert!(page["budget_consumed"].as_f64().unwrap() > 0.0, "{page:#}");
    // Every alert comes from the incident.
    for a in alerts {
        assert!(time(&a["start"]) >= incident.0, "{a:#}");
    }
    assert_eq!(answer["change"]["same_policy"], true, "{answer:#}");
    // What the webhook would have been sent: firing after group_wait, and
    // the resolution.
    let sent = answer["notifications"].as_array().unwrap();
    let of_page = |n: &&Value| {
        n["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["fingerprint"] == page["fingerprint"])
    };
    let firing = sent
        .iter()
        .filter(of_page)
        .find(|n| n["status"] == "firing")
        .unwrap_or_else(|| panic!("the page notified: {answer:#}"));
    assert_eq!(firing["receiver"], "hook");
    // Its group (the SLO's pages) flushes after group_wait, then every
    // group_interval (5 minutes).
    let at = time(&firing["at"]);
    assert!(at > start && at <= start + 5 * MIN, "{firing:#}");
    let first = sent
        .iter()
        .find(|n| n["group_labels"]["severity"] == "page")
        .unwrap();
    let first_page = alerts
        .iter()
        .filter(|a| a["severity"] == "page")
        .map(|a| time(&a["start"]))
        .min()
        .unwrap();
    assert_eq!(time(&first["at"]), first_page + 30_000_000_000, "{first:#}");
    // Its resolution is notified too (within the group's next notification).
    assert!(
        sent.iter().any(|n| n["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["fingerprint"] == page["fingerprint"] && a["state"] == "resolved")),
        "{sent:#?}"
    );
    // The page's condition caught the incident and nothing else.
    let measures = answer["measures"].as_array().unwrap();
    let fast = measures.iter().find(|m| m["condition"] == "1h/5m").unwrap();
    assert_eq!(fast["precision"], 1.0, "{fast:#}");
    assert_eq!(fast["recall"], 1.0, "{fast:#}");
    let detection = fast["detection_seconds"].as_f64().unwrap();
    assert!((0.0..300.0).contains(&detection), "{fast:#}");
    // Series for the chart.
    let series = &answer["series"];
    let points = series["timestamps"].as_array().unwrap().len();
    assert!(points > 100, "{series:#}");
    assert_eq!(
        series["instances"][0]["burn_rates"]["1h"]
            .as_array()
            .unwrap()
            .len(),
        points
    );

    // A looser objective: 50 % failures burn 2.5× at 80 %, under the fast
    // page's 3.36× (7-day period): that page is gone.
    let loose = SLO.replace("target: 0.99", "target: 0.8");
    let (status, answer) = backtest(serde_json::json!({
        "slo": loose, "from": secs(t0), "to": secs(t0 + 240 * MIN),
    }));
    assert_eq!(status, 200, "{answer:#}");
    let change = &answer["change"];
    assert_eq!(change["current"], true, "{change:#}");
    let removed = change["removed"].as_array().unwrap();
    assert!(
        removed.iter().any(|a| a["condition"] == "1h/5m"),
        "the fast page is gone: {change:#}"
    );
    assert!(
        !answer["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["condition"] == "1h/5m"),
        "{answer:#}"
    );

    // The CLI prints the same as tables.
    let file = data.path().join("candidate.yaml");
    std::fs::write(&file, SLO).unwrap();
    let incidents = data.path().join("incidents.txt");
    std::fs::write(
        &incidents,
        format!("# the outage\n{} {}\n", secs(incident.0), secs(incident.1)),
    )
    .unwrap();
    let out = std::process::Command::new(smolder_tests::smolder_bin())
        .args(["slo", "backtest", file.to_str().unwrap(), "--server"])
        .arg(server.api_url())
        .args(["--from", &secs(t0).to_string()])
        .args(["--incidents", incidents.to_str().unwrap()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("1h/5m") && stdout.contains("page"),
        "{stdout}"
    );
    assert!(stdout.contains("Against the incidents"), "{stdout}");
    assert!(stdout.contains(page["start"].as_str().unwrap()), "{stdout}");

    // The editor's help: the SLO's source, and validation without saving.
    let (_, slo) = get(&server, "/api/v1/slos/shop-availability");
    assert_eq!(slo["source"]["origin"], "file", "{slo:#}");
    assert_eq!(slo["source"]["yaml"], SLO);
    let (status, text) = http_post(
        server.http,
        "/api/v1/slos/validate",
        "application/json",
        serde_json::json!({"slo": SLO.replace("table: spans", "table: nope")})
            .to_string()
            .as_bytes(),
    );
    let checked: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(status, 200, "{checked:#}");
    assert_eq!(checked["valid"], false);
    assert!(
        checked["problems"][0]["message"]
            .as_str()
            .unwrap()
            .contains("nope"),
        "{checked:#}"
    );
    let (_, text) = http_post(
        server.http,
        "/api/v1/slos/validate",
        "application/json",
        serde_json::json!({ "slo": loose }).to_string().as_bytes(),
    );
    let checked: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(checked["valid"], true, "{checked:#}");
    assert_eq!(checked["slos"][0]["objective"], 0.8);
    let (_, list) = get(&server, "/api/v1/slos");
    assert_eq!(slo_ids(&list), ["shop-availability"], "nothing was saved");

    // Bad requests name what is wrong.
    for (body, want, field) in [
        (serde_json::json!({"from": 0}), 422, "slo"),
        (
            serde_json::json!({"slo": "kind: SLO\nspec: {}"}),
            400,
            "apiVersion",
        ),
        (
            serde_json::json!({"slo": SLO, "from": secs(t0 + MIN), "to": secs(t0)}),
            400,
            "from",
        ),
        (
            serde_json::json!({"slo": SLO, "from": "yesterday-ish"}),
            400,
            "from",
        ),
        (
            serde_json::json!({"slo": SLO, "variants": [{"factors": [1.0]}]}),
            400,
            "factors",
        ),
    ] {
        let (status, answer) = backtest(body.clone());
        assert_eq!(status, want, "{body}: {answer:#}");
        let error = answer["error"].as_str().unwrap_or_default();
        assert!(error.contains(field), "{body}: {field} in {error}");
    }
}

/// The SLO with the label `team`.
fn with_team(slo: &str, id: &str, team: &str) -> String {
    slo.replace(
        &format!("  name: {id}\n"),
        &format!("  name: {id}\n  labels:\n    team: {team}\n"),
    )
}

/// `GET /api/v1/reports/slos` for the month of spans sent half an hour
/// ago: each SLO's events, SLI, budget used and downtime left summed over
/// the month, its time in violation, the page it raised from the alert
/// history, grouped by team; the same as CSV; bad parameters named.
#[test]
fn a_monthly_report_sums_each_slos_month_and_lists_its_incidents() {
    let data = tempfile::tempdir().unwrap();
    let slos = tempfile::tempdir().unwrap();
    std::fs::write(
        slos.path().join("shop.yaml"),
        with_team(SLO, "shop-availability", "payments"),
    )
    .unwrap();
    std::fs::write(
        slos.path().join("search.yaml"),
        with_team(
            &SLO.replace("shop", "search"),
            "search-availability",
            "discovery",
        ),
    )
    .unwrap();
    let server = start(data.path(), slos.path());
    let ago = now_ns() - 30 * 60 * 1_000_000_000;
    // shop: 20 of 1,000 failed half an hour ago (2 % against a 1 % budget:
    // in violation since), then 50 of 50 now (a page).
    send(&server, &spans(1000, 20, ago, 1));
    send(&server, &spans_of("search", 100, 0, ago, 2));
    send(&server, &spans(50, 50, now_ns() - 1_000_000_000, 3));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, alerts) = get(&server, "/api/v1/alerts");
        let paged = alerts["alerts"].as_array().unwrap().iter().any(|a| {
            a["labels"]["slo"] == "shop-availability"
                && a["labels"]["severity"] == "page"
                && a["state"] == "firing"
        });
        if paged {
            break;
        }
        assert!(Instant::now() < deadline, "shop's page: {alerts:#}");
        std::thread::sleep(Duration::from_millis(200));
    }
    wait_for(&server, "search-availability", "search's spans", |s| {
        s["instances"][0]["period"]["total"] == 100.0
    });

    let at = ago / 1_000_000_000;
    let (status, report) = get(
        &server,
        &format!("/api/v1/reports/slos?period=month&at={at}&by=team"),
    );
    assert_eq!(status, 200, "{report:#}");
    let start = report["period"]["start"].as_str().unwrap();
    let end = report["period"]["end"].as_str().unwrap();
    let seconds = |t: &str| chrono::DateTime::parse_from_rfc3339(t).unwrap().timestamp() as f64;
    let month = seconds(end) - seconds(start);
    assert!(
        (28.0 * 86_400.0..=31.0 * 86_400.0).contains(&month),
        "{report:#}"
    );
    assert_eq!(report["period"]["kind"], "month");
    let lines = report["slos"].as_array().unwrap();
    assert_eq!(lines.len(), 2, "{report:#}");
    // Sorted by group: discovery, then payments.
    let (search, shop) = (&lines[0], &lines[1]);
    assert_eq!(search["slo"], "search-availability");
    assert_eq!(search["group"], "discovery");
    assert_eq!(search["met"], true);
    assert_eq!(search["sli"], 1.0);
    assert_eq!(search["incidents"], serde_json::json!({}));
    assert_eq!(shop["group"], "payments");
    assert_eq!(shop["team"], "payments");
    assert_eq!(
        (shop["good"].as_f64(), shop["total"].as_f64()),
        (Some(980.0), Some(1050.0))
    );
    let close = |v: &Value, want: f64| (v.as_f64().unwrap() - want).abs() < 1e-9 * want.max(1.0);
    assert!(close(&shop["sli"], 980.0 / 1050.0), "{shop:#}");
    assert!(
        close(&shop["budget_used"], 70.0 / (0.01 * 1050.0)),
        "{shop:#}"
    );
    assert!(
        close(&shop["allowed_downtime_seconds"], 0.01 * month),
        "{shop:#}"
    );
    assert_eq!(shop["met"], false);
    // In violation from the first five-minute mark after the old spans.
    let violation = shop["time_in_violation_seconds"].as_f64().unwrap();
    assert!((1500.0..=1800.0).contains(&violation), "{shop:#}");
    assert!(shop["incidents"]["page"].as_u64().unwrap() >= 1, "{shop:#}");
    let page = shop["incident_list"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["severity"] == "page")
        .unwrap_or_else(|| panic!("a page in the list: {shop:#}"));
    assert_eq!(page["end"], Value::Null, "it still fires");
    assert!(seconds(page["start"].as_str().unwrap()) >= seconds(start));
    assert!(
        shop["downtime_left_seconds"].as_f64().unwrap()
            < shop["allowed_downtime_seconds"].as_f64().unwrap()
    );
    assert_eq!(
        report["groups"],
        serde_json::json!([
            {"name": "discovery", "slos": 1, "met": 1, "incidents": 0},
            {"name": "payments", "slos": 1, "met": 0,
             "incidents": shop["incidents"].as_object().unwrap().values().map(|v| v.as_u64().unwrap()).sum::<u64>()},
        ])
    );

    // The same as CSV, one row per SLO.
    let (status, csv) = http_request(
        server.http,
        "GET",
        &format!("/api/v1/reports/slos?period=month&at={at}&by=team&format=csv&service=shop"),
        &[],
        b"",
    );
    assert_eq!(status, 200, "{csv}");
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows.len(), 2, "{csv}");
    assert!(rows[0].starts_with("group,slo,service,team,objective,sli,met,good,total,budget_used"));
    assert!(
        rows[1].starts_with("payments,shop-availability,shop,payments,0.99,"),
        "{csv}"
    );

    for (query, field) in [
        ("period=year", "period"),
        ("time_zone=Mars/Olympus", "time_zone"),
        ("format=pdf", "format"),
        ("at=soon", "at"),
    ] {
        let (status, answer) = get(&server, &format!("/api/v1/reports/slos?{query}"));
        assert_eq!(status, 400, "{query}: {answer}");
        assert!(answer.to_string().contains(field), "{query}: {answer}");
    }
}

/// A budget exclusion as an SRE makes one after a load test hit
/// production: `POST /api/v1/slos/{id}/exclusions` takes those minutes out
/// of the SLI, budget and charts at once (the stored buckets stay, marked
/// in `slo_rollups`), the audit log names it, it survives a restart, and
/// removing it brings the figures back. Bad requests name what is wrong;
/// an exclusion of the SLO's annotation is changed in the file.
#[test]
fn an_exclusion_takes_a_load_test_out_of_the_figures_until_it_is_removed() {
    let data = tempfile::tempdir().unwrap();
    let slos = tempfile::tempdir().unwrap();
    std::fs::write(slos.path().join("shop.yaml"), SLO).unwrap();
    let mut server = start(data.path(), slos.path());
    let id = "shop-availability";
    // The load test 30 minutes ago: 100 failed requests within a second;
    // then 1,000 good ones.
    let load_test = (now_ns() - 30 * 60 * 1_000_000_000) / 60_000_000_000 * 60_000_000_000;
    send(&server, &spans(100, 100, load_test, 1));
    send(
        &server,
        &spans(1000, 0, now_ns() - 10 * 60 * 1_000_000_000, 2),
    );
    let before = wait_for(&server, id, "the spans", |s| {
        s["instances"][0]["period"]["total"] == 1100.0
    });
    assert!(
        before["instances"][0]["error_budget_remaining"]
            .as_f64()
            .unwrap()
            < 0.0
    );

    let path = format!("/api/v1/slos/{id}/exclusions");
    let post = |body: &str, content_type: &str| {
        let (status, answer) = http_post(server.http, &path, content_type, body.as_bytes());
        (
            status,
            serde_json::from_str::<Value>(&answer).unwrap_or(Value::String(answer)),
        )
    };
    // Unix seconds, one minute either side of the load test.
    let body = format!(
        r#"{{"start": {}, "end": {}, "reason": "load test against production"}}"#,
        load_test / 1_000_000_000 - 60,
        load_test / 1_000_000_000 + 120
    );
    let (status, made) = post(&body, "application/json");
    assert_eq!(status, 201, "{made:#}");
    assert_eq!(made["source"], "api");
    assert_eq!(made["created_by"], "anonymous", "authentication is off");
    assert_eq!(made["rrule"], Value::Null);
    let number = made["id"].as_str().unwrap().to_string();
    // At once, not at the next tick.
    let (_, after) = get(&server, &format!("/api/v1/slos/{id}"));
    assert_eq!(
        after["instances"][0]["period"]["total"], 1000.0,
        "{after:#}"
    );
    assert_eq!(after["instances"][0]["error_budget_remaining"], 1.0);
    assert_eq!(after["instances"][0]["sli"], 1.0);

    let (status, series) = get(&server, &format!("/api/v1/slos/{id}/series"));
    assert_eq!(status, 200, "{series}");
    assert_eq!(
        series["exclusions"][0]["reason"],
        "load test against production"
    );
    assert_eq!(series["sli"].as_array().unwrap().last().unwrap(), 1.0);
    assert_eq!(
        server.scalar(&format!(
            "SELECT sum(total) FROM slo_rollups WHERE slo = '{id}' AND excluded"
        )),
        serde_json::json!(100.0),
        "the stored buckets keep what was measured"
    );
    // The report of the load test's week: the SLO met, three minutes
    // excluded, and why.
    let (status, report) = get(
        &server,
        &format!(
            "/api/v1/reports/slos?period=week&at={}",
            load_test / 1_000_000_000
        ),
    );
    assert_eq!(status, 200, "{report}");
    let line = &report["slos"][0];
    assert_eq!(
        line["met"], true,
        "the load test's failures do not count: {line:#}"
    );
    assert_eq!(line["excluded_seconds"], 180.0, "{line:#}");
    assert_eq!(
        line["exclusions"][0]["reason"],
        "load test against production"
    );
    let (_, listed) = get(&server, &path);
    assert_eq!(
        listed["exclusions"].as_array().unwrap().len(),
        1,
        "{listed:#}"
    );
    assert_eq!(listed["occurrences"].as_array().unwrap().len(), 1);
    assert_eq!(listed["excluded_now"], serde_json::json!([]));
    let (_, audit) = get(&server, "/api/v1/audit?limit=100");
    assert!(
        audit["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"]
                == format!(
                    "POST {path} (exclusion {number} of {id}: load test against production)"
                )),
        "{audit:#}"
    );

    // Refused, naming what is wrong; nothing changes.
    for (body, content_type, status, needle) in [
        (
            r#"{"start": "soon", "end": "later", "reason": "x"}"#,
            "application/json",
            400,
            "start:",
        ),
        (
            r#"{"start": "2026-01-01T00:00:00Z", "end": "2026-01-01T01:00:00Z"}"#,
            "application/json",
            400,
            "reason",
        ),
        (
            r#"{"start": "2026-01-01T00:00:00Z", "duration": "1h", "reason": "x", "rrule": "FREQ=OFTEN"}"#,
            "application/json",
            400,
            "rrule:",
        ),
        (
            r#"{"start": "2026-01-01T00:00:00Z", "end": "2026-01-01T01:00:00Z", "reason": "x", "who": "me"}"#,
            "application/json",
            400,
            "who",
        ),
        ("start=1", "text/plain", 415, "application/json"),
    ] {
        let (got, answer) = post(body, content_type);
        assert_eq!(got, status, "{body}: {answer}");
        assert!(answer.to_string().contains(needle), "{body}: {answer}");
    }
    let (status, answer) = http_post(
        server.http,
        "/api/v1/slos/nope/exclusions",
        "application/json",
        body.as_bytes(),
    );
    assert_eq!(status, 404, "{answer}");
    let (status, answer) = http_request(server.http, "DELETE", &format!("{path}/999"), &[], b"");
    assert_eq!(status, 404, "{answer}");

    // Kept across a restart (the rollups are loaded with it masked).
    server.crash_and_restart();
    wait_for(&server, id, "the restarted server's figures", |s| {
        s["instances"][0]["period"]["total"] == 1000.0
    });
    let (status, answer) =
        http_request(server.http, "DELETE", &format!("{path}/{number}"), &[], b"");
    assert_eq!(status, 204, "{answer}");
    let (_, back) = get(&server, &format!("/api/v1/slos/{id}"));
    assert_eq!(back["instances"][0]["period"]["total"], 1100.0, "{back:#}");
    assert_eq!(
        back["instances"][0]["error_budget_remaining"],
        before["instances"][0]["error_budget_remaining"]
    );
    let (_, audit) = get(&server, "/api/v1/audit?limit=100");
    assert!(
        audit["entries"].as_array().unwrap().iter().any(|e| e["action"]
            == format!(
                "DELETE {path}/{number} (exclusion {number} of {id}: load test against production)"
            )),
        "{audit:#}"
    );

    // The SLO file's own exclusions: checked when loaded, listed, and not
    // removed through the API.
    let annotated = |exclusions: &str| {
        SLO.replace(
            "  name: shop-availability\n",
            &format!("  name: maint\n  annotations:\n    smolder.dev/exclusions: |\n{exclusions}"),
        )
    };
    let (status, answer) = server.put_slo(
        "maint",
        &annotated("      - start: 2026-01-04T02:00\n        reason: no end\n"),
    );
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer.to_string().contains("smolder.dev/exclusions")
            && answer.to_string().contains("[1].end"),
        "{answer}"
    );
    let (status, answer) = server.put_slo(
        "maint",
        &annotated(
            "      - start: 2026-01-04T02:00\n        duration: 2h\n        rrule: FREQ=WEEKLY;BYDAY=SU\n        time_zone: Europe/Berlin\n        reason: weekly maintenance\n",
        ),
    );
    assert_eq!(status, 201, "{answer}");
    let (_, listed) = get(&server, "/api/v1/slos/maint/exclusions");
    let x = &listed["exclusions"][0];
    assert_eq!(
        (x["id"].as_str(), x["source"].as_str()),
        (Some("annotation-1"), Some("annotation")),
        "{listed:#}"
    );
    assert_eq!(x["rrule"], "FREQ=WEEKLY;BYDAY=SU");
    assert_eq!(x["start"], "2026-01-04T02:00:00+01:00");
    assert!(
        listed["occurrences"].as_array().unwrap().len() >= 2,
        "{listed:#}"
    );
    let (status, answer) = http_request(
        server.http,
        "DELETE",
        "/api/v1/slos/maint/exclusions/annotation-1",
        &[],
        b"",
    );
    assert_eq!(status, 409, "{answer}");
}

//! Tenants kept apart, tried as an attacker with a token of another tenant
//! would: two tenants export through `smolder loadgen` with their own
//! tokens; each one's SQL — plain, joined, unioned, in subqueries, through
//! `information_schema`, EXPLAIN, file paths as tables — its searches and
//! its token administration reach its own data only, before and after the
//! rows are flushed to Parquet under each tenant's own prefix. Each tenant's
//! SLOs, alerts, silences, notifications and causes are its own, alerts
//! are routed on their `tenant` label, and SLO and ingest limits hold per
//! tenant.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use smolder_tests::{Server, create_token, http_bytes, http_request, now_ns, smolder_bin};

/// Sends `requests` requests of 10 spans as the tenant of `token`.
fn export(server: &Server, token: &str, requests: u64, seed: u64) {
    let out = Command::new(smolder_bin())
        .args(["loadgen", "--endpoint"])
        .arg(server.otlp_grpc_url())
        .args(["--token", token, "--batch-size", "10", "--json"])
        .args([
            "--requests",
            &requests.to_string(),
            "--seed",
            &seed.to_string(),
        ])
        .args(["--pool", &requests.to_string()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        report["items_acknowledged"],
        json!(requests * 10),
        "{report}"
    );
}

/// A SQL query with `token`: its status and answer.
fn sql(server: &Server, token: &str, sql: &str) -> (u16, Value) {
    let bearer = format!("Bearer {token}");
    let (status, body) = http_request(
        server.http,
        "POST",
        "/api/v1/sql",
        &[
            ("content-type", "application/json"),
            ("authorization", &bearer),
        ],
        json!({ "sql": sql }).to_string().as_bytes(),
    );
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

fn scalar(server: &Server, token: &str, query: &str) -> Value {
    let (status, answer) = sql(server, token, query);
    assert_eq!(status, 200, "{query}: {answer}");
    answer["rows"][0][0].clone()
}

fn get(server: &Server, token: &str, path: &str) -> (u16, String) {
    let bearer = format!("Bearer {token}");
    http_request(server.http, "GET", path, &[("authorization", &bearer)], b"")
}

/// What one tenant may see, checked with its token.
fn sees_only_its_own(server: &Server, token: &str, spans: i64, other: &str, other_trace: &str) {
    let count = |q: &str| scalar(server, token, q);
    assert_eq!(count("SELECT count(*) FROM spans"), json!(spans));
    assert_eq!(
        count("SELECT count(*) FROM smolder.public.spans"),
        json!(spans)
    );
    assert_eq!(
        count("SELECT count(*) FROM spans a JOIN spans b ON a.span_id = b.span_id"),
        json!(spans),
        "a self-join"
    );
    assert_eq!(
        count(
            "SELECT count(*) FROM (SELECT span_id FROM spans UNION ALL \
             SELECT span_id FROM smolder.public.spans)"
        ),
        json!(2 * spans),
        "a union"
    );
    assert_eq!(
        count(&format!(
            "SELECT count(*) FROM spans WHERE trace_id IN \
             (SELECT trace_id FROM spans WHERE trace_id = '{other_trace}')"
        )),
        json!(0),
        "a subquery for the other tenant's trace"
    );
    assert_eq!(count("SELECT count(*) FROM slo_rollups"), json!(0));
    assert_eq!(
        count(
            "SELECT count(*) FROM information_schema.tables \
             WHERE table_schema = 'public'"
        ),
        json!(4),
        "spans, logs, metrics, slo_rollups"
    );
    // EXPLAIN shows this tenant's files only.
    let (status, plan) = sql(server, token, "EXPLAIN SELECT * FROM spans");
    assert_eq!(status, 200, "{plan}");
    let plan = plan.to_string();
    assert!(!plan.contains(&format!("tenant={other}")), "{plan}");
    // No file or URL can be read as a table.
    let (status, answer) = sql(
        server,
        token,
        &format!(
            "SELECT count(*) FROM '{}/parquet/tenant={other}/spans'",
            server.data_dir().display()
        ),
    );
    assert_ne!(status, 200, "{answer}");
    // Searches and trace lookups.
    let (status, body) = get(
        server,
        token,
        &format!("/api/v1/traces/{other_trace}?from=0&to=4000000000"),
    );
    let found: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    assert!(
        status == 404 || found["spans"]["row_count"] == json!(0),
        "{status} {body}"
    );
}

fn wait_for_files(data_dir: &Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    for tenant in ["acme", "globex"] {
        let dir = data_dir.join(format!("parquet/tenant={tenant}/spans"));
        while !dir.exists() {
            assert!(Instant::now() < deadline, "no flush of {tenant}'s spans");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

#[test]
fn a_tenant_reaches_its_own_data_only_whatever_sql_it_writes() {
    let dir = tempfile::tempdir().unwrap();
    let acme = create_token(dir.path(), "acme", "ingest,read");
    let globex = create_token(dir.path(), "globex", "ingest,read");
    let operator = create_token(dir.path(), "default", "admin");
    let mut server = Server::start_in(dir.path(), &["--auth", "required"]);
    export(&server, &acme, 3, 1);
    export(&server, &globex, 5, 2);

    let trace_of = |token: &str| {
        scalar(&server, token, "SELECT trace_id FROM spans LIMIT 1")
            .as_str()
            .unwrap()
            .to_string()
    };
    let (acme_trace, globex_trace) = (trace_of(&acme), trace_of(&globex));
    assert_ne!(acme_trace, globex_trace);
    // In the buffer.
    sees_only_its_own(&server, &acme, 30, "globex", &globex_trace);
    sees_only_its_own(&server, &globex, 50, "acme", &acme_trace);
    assert_eq!(
        scalar(&server, &operator, "SELECT count(*) FROM spans"),
        json!(0),
        "the default tenant sent nothing"
    );
    // The traces search lists a tenant's own traces.
    let (status, body) = get(
        &server,
        &acme,
        "/api/v1/traces?limit=1000&from=0&to=4000000000",
    );
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(&acme_trace) && !body.contains(&globex_trace));

    // In Parquet, each under its own prefix, after a restart that flushes.
    server.stop();
    server.restart();
    wait_for_files(dir.path());
    sees_only_its_own(&server, &acme, 30, "globex", &globex_trace);
    sees_only_its_own(&server, &globex, 50, "acme", &acme_trace);
    let (_, plan) = sql(&server, &acme, "EXPLAIN SELECT * FROM spans");
    let plan = plan.to_string();
    assert!(
        plan.contains("tenant=acme") && !plan.contains("tenant=globex"),
        "{plan}"
    );
}

#[test]
fn the_servers_own_routes_and_other_tenants_tokens_are_out_of_reach() {
    let dir = tempfile::tempdir().unwrap();
    let acme_admin = create_token(dir.path(), "acme", "admin");
    let globex = create_token(dir.path(), "globex", "read");
    let operator = create_token(dir.path(), "default", "admin");
    let server = Server::start_in(dir.path(), &["--auth", "required"]);
    // The server's own routes are the operator's (the default tenant's).
    for path in ["/metrics", "/api/v1/status"] {
        let (status, body) = get(&server, &acme_admin, path);
        assert_eq!(status, 403, "{path}: {body}");
        assert!(body.contains("permission_denied"), "{body}");
        assert_eq!(get(&server, &operator, path).0, 200, "{path}");
    }
    let bearer = format!("Bearer {acme_admin}");
    let (status, body) = http_request(
        server.http,
        "POST",
        "/-/reload",
        &[("authorization", &bearer)],
        b"",
    );
    assert_eq!(status, 403, "{body}");
    // SLOs, alerts and silences are every tenant's own (the next test).
    for path in ["/api/v1/slos", "/api/v1/alerts", "/api/v1/silences"] {
        assert_eq!(get(&server, &acme_admin, path).0, 200, "{path}");
    }
    // A tenant's admin lists and makes its own tenant's tokens only.
    let (_, listed) = get(&server, &acme_admin, "/api/v1/tokens");
    assert!(
        listed.contains("\"acme\"") && !listed.contains("globex"),
        "{listed}"
    );
    let (_, all) = get(&server, &operator, "/api/v1/tokens");
    assert!(all.contains("acme") && all.contains("globex"), "{all}");
    let headers = [
        ("content-type", "application/json"),
        ("authorization", bearer.as_str()),
    ];
    let (status, body) = http_request(
        server.http,
        "POST",
        "/api/v1/tokens",
        &headers,
        br#"{"tenant": "globex", "scopes": ["read"]}"#,
    );
    assert_eq!(status, 403, "{body}");
    // Another tenant's token is not there to revoke.
    let globex_id = globex.split('_').nth(1).unwrap();
    let (status, _) = http_request(
        server.http,
        "DELETE",
        &format!("/api/v1/tokens/{globex_id}"),
        &headers,
        b"",
    );
    assert_eq!(status, 404);
    assert_eq!(
        get(&server, &globex, "/api/v1/traces?limit=1").0,
        200,
        "still valid"
    );
    // The audit log in SQL, for admins only, each tenant's own: acme's
    // admin sees acme's entries (its token's creation, its silence), the
    // operator every tenant's; a read token has no such table.
    let (status, _) = call(
        &server,
        &acme_admin,
        "POST",
        "/api/v1/silences",
        r#"{"matchers": ["slo=\"x\""], "duration": "1h", "created_by": "a"}"#,
    );
    assert_eq!(status, 201);
    let actions = |token: &str| {
        let (status, answer) = sql(
            &server,
            token,
            "SELECT tenant, action FROM audit_log ORDER BY at",
        );
        assert_eq!(status, 200, "{answer}");
        answer["rows"].clone()
    };
    let acme_id = acme_admin.split('_').nth(1).unwrap();
    assert_eq!(
        actions(&acme_admin),
        json!([
            ["acme", format!("token create {acme_id} (admin)")],
            ["acme", "POST /api/v1/silences"]
        ])
    );
    let all = actions(&operator);
    assert!(
        all.as_array().unwrap().iter().any(|r| r[0] == "globex")
            && all.as_array().unwrap().iter().any(|r| r[0] == "acme"),
        "{all}"
    );
    let (status, answer) = sql(&server, &globex, "SELECT count(*) FROM audit_log");
    assert_eq!(status, 400, "{answer}");
    assert!(answer.to_string().contains("audit_log"), "{answer}");
}

/// `smolder loadgen` as the tenant of `token`: its JSON report.
fn loadgen(server: &Server, token: &str, protocol: &str, args: &[&str]) -> Value {
    let endpoint = match protocol {
        "grpc" => server.otlp_grpc_url(),
        _ => server.otlp_http_url(),
    };
    let out = Command::new(smolder_bin())
        .args(["loadgen", "--json", "--endpoint", &endpoint])
        .args(["--protocol", protocol, "--token", token])
        .args(args)
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{out:?}"))
}

#[test]
fn a_tenant_over_its_rate_is_throttled_while_another_is_served() {
    let dir = tempfile::tempdir().unwrap();
    let noisy = create_token(dir.path(), "noisy", "ingest,read");
    let quiet = create_token(dir.path(), "quiet", "ingest,read");
    let operator = create_token(dir.path(), "default", "read");
    // One item a second, bursts of 200: of the noisy tenant's 8,000 items
    // sent within seconds only the first burst gets in.
    let server = Server::start_in(
        dir.path(),
        &[
            "--auth",
            "required",
            "--tenant-rate",
            "1",
            "--tenant-burst",
            "200",
        ],
    );
    let burst = [
        "--batch-size",
        "100",
        "--requests",
        "40",
        "--concurrency",
        "4",
    ];
    let grpc = loadgen(&server, &noisy, "grpc", &burst);
    let refused = grpc["failures"]["grpc ResourceExhausted"]
        .as_u64()
        .unwrap_or(0);
    assert!(refused >= 30, "{grpc}");
    let http = loadgen(&server, &noisy, "http-protobuf", &burst);
    assert!(
        http["failures"]["http 429"].as_u64().unwrap_or(0) >= 30,
        "{http}"
    );

    // Meanwhile the other tenant's exports are all accepted.
    let served = loadgen(
        &server,
        &quiet,
        "grpc",
        &[
            "--batch-size",
            "100",
            "--requests",
            "2",
            "--concurrency",
            "1",
        ],
    );
    assert_eq!(served["items_acknowledged"], json!(200), "{served}");
    assert_eq!(
        scalar(&server, &quiet, "SELECT count(*) FROM spans"),
        json!(200)
    );
    // What the noisy tenant got in is what was acknowledged, no more.
    let acknowledged =
        grpc["items_acknowledged"].as_u64().unwrap() + http["items_acknowledged"].as_u64().unwrap();
    assert!(
        acknowledged >= 200,
        "at least the first burst: {acknowledged}"
    );
    assert_eq!(
        scalar(&server, &noisy, "SELECT count(*) FROM spans"),
        json!(acknowledged)
    );

    // The refusal says when to come back: 429 with Retry-After, and an
    // export larger than the burst is refused outright (413).
    let export = |spans: usize| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let spans: Vec<Value> = (0..spans)
            .map(|i| {
                json!({
                    "traceId": "5b8efff798038103d269b633813fc60c",
                    "spanId": format!("{i:016x}"),
                    "name": "x",
                    "startTimeUnixNano": now.to_string(),
                    "endTimeUnixNano": now.to_string(),
                })
            })
            .collect();
        let body = json!({"resourceSpans": [{"scopeSpans": [{"spans": spans}]}]}).to_string();
        let bearer = format!("Bearer {noisy}");
        http_request(
            server.otlp_http,
            "POST",
            "/v1/traces",
            &[
                ("content-type", "application/json"),
                ("authorization", &bearer),
            ],
            body.as_bytes(),
        )
    };
    let (status, body) = export(150);
    assert!(
        status == 429 && body.contains("faster than its limit"),
        "{status} {body}"
    );
    let (status, body) = export(201);
    assert!(
        status == 413 && body.contains("tenant_burst"),
        "{status} {body}"
    );

    // The operator sees each tenant's figures in /metrics.
    let (status, metrics) = get(&server, &operator, "/metrics");
    assert_eq!(status, 200);
    let value = |series: &str| {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(series))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or_else(|| panic!("no {series} in /metrics"))
    };
    assert_eq!(
        value(r#"smolder_otlp_tenant_received_items_total{tenant="quiet",signal="traces"}"#),
        200
    );
    assert_eq!(
        value(r#"smolder_otlp_tenant_received_items_total{tenant="noisy",signal="traces"}"#),
        acknowledged
    );
    assert!(
        value(
            r#"smolder_otlp_tenant_rejected_items_total{tenant="noisy",signal="traces",reason="rate_limited"}"#
        ) >= 6_000
    );
}

/// A request with `token` and a JSON (or empty) body: status and answer.
/// Checks that `png` is a drawn chart: a PNG of 900 × 440 pixels of more
/// than a few colours.
fn assert_chart(png: &[u8]) {
    let decoder = png::Decoder::new(std::io::Cursor::new(png));
    let mut reader = decoder.read_info().expect("a PNG");
    let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut pixels).unwrap();
    assert_eq!((info.width, info.height), (900, 440));
    let colours: std::collections::HashSet<&[u8]> = pixels.chunks(3).collect();
    assert!(colours.len() > 20, "{} colours", colours.len());
}

fn call(server: &Server, token: &str, method: &str, path: &str, body: &str) -> (u16, Value) {
    let bearer = format!("Bearer {token}");
    let mut headers = vec![("authorization", bearer.as_str())];
    if !body.is_empty() {
        headers.push(("content-type", "application/json"));
    }
    let (status, answer) = http_request(server.http, method, path, &headers, body.as_bytes());
    (status, serde_json::from_str(&answer).unwrap_or(Value::Null))
}

fn put_slo(server: &Server, token: &str, service: &str) -> (u16, Value) {
    let bearer = format!("Bearer {token}");
    let (status, answer) = http_request(
        server.http,
        "PUT",
        &format!("/api/v1/slos/{service}-availability"),
        &[
            ("authorization", &bearer),
            ("content-type", "application/yaml"),
        ],
        smolder_sample_data::fixtures::availability_slo(service).as_bytes(),
    );
    (status, serde_json::from_str(&answer).unwrap_or(Value::Null))
}

/// Sends `n` spans of `service`, `errors` of them failed, as `token`'s tenant.
fn send_spans(server: &Server, token: &str, service: &str, n: usize, errors: usize, seed: u64) {
    let bearer = format!("Bearer {token}");
    let (status, answer) = http_request(
        server.otlp_http,
        "POST",
        "/v1/traces",
        &[
            ("authorization", &bearer),
            ("content-type", "application/x-protobuf"),
        ],
        &smolder_tests::route_spans(service, n, errors, seed),
    );
    assert_eq!(status, 200, "{answer}");
}

fn alerts(server: &Server, token: &str) -> Vec<Value> {
    let (status, body) = call(server, token, "GET", "/api/v1/alerts", "");
    assert_eq!(status, 200, "{body}");
    body["alerts"].as_array().unwrap().clone()
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn each_tenant_has_its_own_slos_alerts_silences_and_notifications() {
    use smolder_tests::sink::Sink;
    let sink = Sink::ok();
    let dir = tempfile::tempdir().unwrap();
    let acme = create_token(dir.path(), "acme", "ingest,read,write");
    let globex = create_token(dir.path(), "globex", "ingest,read,write");
    let operator = create_token(dir.path(), "default", "ingest,read,write");
    // Alerts are routed on their tenant; each tenant may have 2 SLOs.
    let config = dir.path().join("smolder.toml");
    let mut toml = String::from(
        "[slo]\ntenant_max_slos = 2\n\
         [alerting.route]\nreceiver = \"ops\"\ngroup_interval = \"1s\"\n\
         [[alerting.route.routes]]\nmatchers = ['tenant=\"acme\"']\nreceiver = \"acme-hook\"\n\
         [[alerting.route.routes]]\nmatchers = ['tenant=\"globex\"']\nreceiver = \"globex-hook\"\n",
    );
    for name in ["ops", "acme-hook", "globex-hook"] {
        toml.push_str(&format!(
            "[[alerting.receivers]]\nname = \"{name}\"\ntype = \"webhook\"\nurl = \"{}\"\n",
            sink.url(&format!("/{name}"))
        ));
    }
    std::fs::write(&config, toml).unwrap();
    let mut server = Server::start_in(
        dir.path(),
        &[
            "--auth",
            "required",
            "--config",
            config.to_str().unwrap(),
            "--slo-interval",
            "1s",
        ],
    );

    // Two tenants make an SLO of the same id; neither sees the other's.
    let (status, made) = put_slo(&server, &acme, "shop");
    assert_eq!(status, 201, "{made}");
    assert_eq!(made["definition"]["tenant"], "acme");
    let (status, made) = put_slo(&server, &globex, "shop");
    assert_eq!(status, 201, "{made}");
    let (_, listed) = call(&server, &operator, "GET", "/api/v1/slos", "");
    assert_eq!(listed["slos"], json!([]), "the operator has no SLOs");
    let (status, _) = call(
        &server,
        &operator,
        "GET",
        "/api/v1/slos/shop-availability",
        "",
    );
    assert_eq!(status, 404);
    let (status, _) = call(
        &server,
        &operator,
        "DELETE",
        "/api/v1/slos/shop-availability",
        "",
    );
    assert_eq!(status, 404, "nor may it delete a tenant's SLO");

    // acme's shop fails 60 of 100 requests, globex's none: only acme pages.
    send_spans(&server, &acme, "shop", 100, 60, 1);
    send_spans(&server, &globex, "shop", 100, 0, 2);
    wait_until("acme's page", || {
        alerts(&server, &acme).iter().any(|a| {
            a["labels"]["severity"] == "page"
                && a["state"] == "firing"
                && a["labels"]["tenant"] == "acme"
        })
    });
    let sli = |token: &str| {
        let (_, slo) = call(&server, token, "GET", "/api/v1/slos/shop-availability", "");
        slo["sli"].clone()
    };
    wait_until("globex's SLI", || sli(&globex) == json!(1.0));
    assert_eq!(sli(&acme), json!(0.4));
    assert_eq!(alerts(&server, &globex), Vec::<Value>::new());
    assert_eq!(alerts(&server, &operator), Vec::<Value>::new());
    // Each tenant's slo_rollups are its own SLO's.
    for (token, good) in [(&acme, 40.0), (&globex, 100.0)] {
        let (_, answer) = sql(
            &server,
            token,
            "SELECT sum(good), sum(total), min(slo), max(slo) FROM slo_rollups",
        );
        assert_eq!(
            answer["rows"][0],
            json!([good, 100.0, "shop-availability", "shop-availability"])
        );
    }
    // The page reached acme's receiver only, labelled with the tenant.
    let got = sink.wait("/acme-hook", "acme's page", |r| !r.is_empty());
    let body = got[0].json();
    assert_eq!(body["group_labels"]["tenant"], "acme", "{body}");
    assert!(sink.received("/globex-hook").is_empty());
    assert!(sink.received("/ops").is_empty());
    let (_, sent) = call(&server, &acme, "GET", "/api/v1/notifications", "");
    assert!(
        sent["notifications"]
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n["receiver"] == "acme-hook"),
        "{sent}"
    );
    assert!(!sent["notifications"].as_array().unwrap().is_empty());
    for token in [&globex, &operator] {
        let (_, none) = call(&server, token, "GET", "/api/v1/notifications", "");
        assert_eq!(none["notifications"], json!([]));
        let (_, none) = call(&server, token, "GET", "/api/v1/alerts/history", "");
        assert_eq!(none["history"], json!([]));
    }
    let (_, history) = call(&server, &acme, "GET", "/api/v1/alerts/history", "");
    assert!(!history["history"].as_array().unwrap().is_empty());

    // The page's burn-rate chart link opens without a token (as a chat
    // service fetches it) and shows acme's SLO; changed to name another
    // tenant, or any other parameter, it opens nothing.
    let link = body["alerts"][0]["annotations"]["burn_chart_url"]
        .as_str()
        .unwrap_or_else(|| panic!("a burn_chart_url annotation: {body:#}"))
        .to_string();
    let path = link
        .split_once("/api/")
        .map(|(_, p)| format!("/api/{p}"))
        .unwrap();
    assert!(
        path.contains("tenant=acme") && path.contains("&sig="),
        "{path}"
    );
    let (status, head, png) = http_bytes(server.http, "GET", &path, &[], b"");
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&png));
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: image/png"),
        "{head}"
    );
    assert_chart(&png);
    for forged in [
        path.replace("tenant=acme", "tenant=globex"),
        path.replace("factor=", "factor=1"),
        path.replace("&sig=", "&sig=00"),
    ] {
        let (status, _, answer) = http_bytes(server.http, "GET", &forged, &[], b"");
        let answer = String::from_utf8_lossy(&answer);
        assert_eq!(status, 403, "{forged}: {answer}");
        assert!(answer.contains("signature"), "{answer}");
    }
    // Without a signature the route wants a token, and draws the token's
    // tenant's SLO (globex has one of the same id).
    let unsigned = format!(
        "/api/v1/slos/shop-availability/chart.png?from={}&to={}",
        now_ns() / 1_000_000_000 - 3600,
        now_ns() / 1_000_000_000
    );
    let (status, _, _) = http_bytes(server.http, "GET", &unsigned, &[], b"");
    assert_eq!(status, 401);
    let bearer = format!("Bearer {globex}");
    let (status, _, png) = http_bytes(
        server.http,
        "GET",
        &unsigned,
        &[("authorization", &bearer)],
        b"",
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&png));
    assert_chart(&png);
    let (status, _, answer) = http_bytes(
        server.http,
        "GET",
        &format!("{unsigned}&tenant=acme"),
        &[("authorization", &bearer)],
        b"",
    );
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&answer));

    // Causes are looked for in the tenant's own data: acme's failed spans
    // are examples for acme; globex's SLO of the same id has none.
    let (status, causes) = call(
        &server,
        &acme,
        "GET",
        "/api/v1/slos/shop-availability/causes",
        "",
    );
    assert_eq!(status, 200, "{causes}");
    assert!(!causes["example_trace_ids"].as_array().unwrap().is_empty());
    let (_, causes) = call(
        &server,
        &globex,
        "GET",
        "/api/v1/slos/shop-availability/causes",
        "",
    );
    assert_eq!(causes["example_trace_ids"], json!([]), "{causes}");

    // globex's budget exclusion is of globex's SLO, made by globex's token:
    // acme, whose SLO has the same id, neither sees nor removes it.
    let exclusions = "/api/v1/slos/shop-availability/exclusions";
    let exclusion = r#"{"start": "2020-01-01T00:00:00Z", "end": "2020-01-01T01:00:00Z", "reason": "globex maintenance"}"#;
    let (status, made) = call(&server, &globex, "POST", exclusions, exclusion);
    assert_eq!(status, 201, "{made}");
    assert_eq!(made["created_by"], globex.split('_').nth(1).unwrap());
    let one = format!("{exclusions}/{}", made["id"].as_str().unwrap());
    let (_, listed) = call(&server, &acme, "GET", exclusions, "");
    assert_eq!(listed["exclusions"], json!([]), "{listed}");
    assert_eq!(call(&server, &acme, "DELETE", &one, "").0, 404);
    let (_, listed) = call(&server, &globex, "GET", exclusions, "");
    assert_eq!(
        listed["exclusions"].as_array().unwrap().len(),
        1,
        "{listed}"
    );

    // globex's silence of every shop alert silences none of acme's; acme
    // neither sees nor expires it.
    let silence =
        r#"{"matchers": ["slo=\"shop-availability\""], "duration": "1h", "created_by": "x"}"#;
    let (status, made) = call(&server, &globex, "POST", "/api/v1/silences", silence);
    assert_eq!(status, 201, "{made}");
    let id = made["id"].as_str().unwrap().to_string();
    let (_, listed) = call(&server, &acme, "GET", "/api/v1/silences", "");
    assert_eq!(listed["silences"], json!([]));
    let (status, _) = call(
        &server,
        &acme,
        "DELETE",
        &format!("/api/v1/silences/{id}"),
        "",
    );
    assert_eq!(status, 404);
    std::thread::sleep(Duration::from_millis(1500));
    let page = |token: &str| {
        alerts(&server, token)
            .into_iter()
            .find(|a| a["labels"]["severity"] == "page")
            .unwrap()
    };
    assert_eq!(page(&acme)["status"], "firing");
    // acme's own silence does.
    let (status, _) = call(&server, &acme, "POST", "/api/v1/silences", silence);
    assert_eq!(status, 201);
    assert_eq!(page(&acme)["status"], "suppressed");

    // The SLO limit is per tenant: acme's third SLO is refused, while the
    // operator, bounded by slo.max_slos only, makes more.
    assert_eq!(put_slo(&server, &acme, "cart").0, 201);
    let (status, refused) = put_slo(&server, &acme, "home");
    assert_eq!(status, 429, "{refused}");
    assert_eq!(refused["code"], "resource_exhausted", "{refused}");
    let message = refused["error"].as_str().unwrap();
    assert!(message.contains("slo.tenant_max_slos"), "{message}");
    for service in ["a", "b", "c"] {
        assert_eq!(put_slo(&server, &operator, service).0, 201);
    }
    // The operator's /metrics has every tenant's SLO gauges, labelled.
    let (status, metrics) = http_request(
        server.http,
        "GET",
        "/metrics",
        &[("authorization", &format!("Bearer {operator}"))],
        b"",
    );
    assert_eq!(status, 200);
    assert!(
        metrics.contains(r#"smolder_slo_objective{tenant="acme",slo="shop-availability"} 0.99"#),
        "{metrics}"
    );
    assert!(metrics.contains(r#"smolder_slo_objective{slo="a-availability"} 0.99"#));

    // After a restart each tenant has its SLOs back.
    server.restart();
    let ids = |token: &str| {
        let (_, listed) = call(&server, token, "GET", "/api/v1/slos", "");
        let mut ids: Vec<String> = listed["slos"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap().to_string())
            .collect();
        ids.sort();
        ids
    };
    assert_eq!(ids(&acme), ["cart-availability", "shop-availability"]);
    assert_eq!(ids(&globex), ["shop-availability"]);
    assert_eq!(
        ids(&operator),
        ["a-availability", "b-availability", "c-availability"]
    );
}

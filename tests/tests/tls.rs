//! TLS and mutual TLS on every listener, as real clients use them: the
//! OpenTelemetry Python SDK's gRPC and HTTP exporters configured through
//! `OTEL_EXPORTER_OTLP_CERTIFICATE` (and the client key and certificate), the
//! Rust `opentelemetry-otlp` exporters, smolder's own commands — with
//! certificates made here by rcgen. A certificate renewed on disk is used
//! without a restart.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use opentelemetry::trace::{Tracer as _, TracerProvider as _};
use opentelemetry_otlp::{SpanExporter, WithExportConfig as _, WithHttpConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use serde_json::{Value, json};
use smolder_tests::{Server, smolder_bin};

/// A CA and the PEM files it signed, in a temporary directory.
struct Pki {
    dir: tempfile::TempDir,
    ca: CertifiedIssuer<'static, KeyPair>,
}

impl Pki {
    fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, format!("smolder test CA {name}"));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        let pki = Self {
            dir: tempfile::tempdir().unwrap(),
            ca,
        };
        std::fs::write(pki.path("ca.pem"), pki.ca.pem()).unwrap();
        pki
    }

    fn path(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }

    /// Signs a certificate for `names` with `usage`; writes `{stem}.pem` and
    /// `{stem}-key.pem`.
    fn issue(&self, stem: &str, names: &[&str], usage: ExtendedKeyUsagePurpose) {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names.clone()).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, &names[0]);
        params.extended_key_usages = vec![usage];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.ca).unwrap();
        std::fs::write(self.path(&format!("{stem}.pem")), cert.pem()).unwrap();
        std::fs::write(self.path(&format!("{stem}-key.pem")), key.serialize_pem()).unwrap();
    }

    /// A CA with a server certificate for 127.0.0.1 and localhost
    /// (`server.pem`) and a client certificate (`client.pem`).
    fn with_server_and_client(name: &str) -> Self {
        let pki = Self::new(name);
        pki.issue(
            "server",
            &["localhost", "127.0.0.1"],
            ExtendedKeyUsagePurpose::ServerAuth,
        );
        pki.issue(
            "client",
            &["exporter.example"],
            ExtendedKeyUsagePurpose::ClientAuth,
        );
        pki
    }

    fn file(&self, file: &str) -> String {
        self.path(file).display().to_string()
    }

    /// `serve` flags for TLS with this CA's server certificate (and client
    /// certificates signed by it, with `mutual`).
    fn serve_flags(&self, mutual: bool) -> Vec<String> {
        let mut flags = vec![
            "--tls-cert".into(),
            self.file("server.pem"),
            "--tls-key".into(),
            self.file("server-key.pem"),
        ];
        if mutual {
            flags.extend(["--tls-client-ca".into(), self.file("ca.pem")]);
        }
        flags
    }

    /// A blocking HTTPS client trusting this CA only, presenting the client
    /// certificate if `identity`.
    fn client(&self, identity: bool) -> reqwest::blocking::Client {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let ca =
            reqwest::Certificate::from_pem(&std::fs::read(self.path("ca.pem")).unwrap()).unwrap();
        let mut builder = reqwest::blocking::Client::builder()
            .tls_certs_only([ca])
            .timeout(Duration::from_secs(10));
        if identity {
            let mut pem = std::fs::read(self.path("client.pem")).unwrap();
            pem.extend(std::fs::read(self.path("client-key.pem")).unwrap());
            builder = builder.identity(reqwest::Identity::from_pem(&pem).unwrap());
        }
        builder.build().unwrap()
    }
}

fn start(pki: &Pki, mutual: bool) -> Server {
    let flags = pki.serve_flags(mutual);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    Server::start(&flags)
}

/// A SQL query over HTTPS; the answer's rows.
fn rows(client: &reqwest::blocking::Client, server: &Server, sql: &str) -> Value {
    let answer: Value = client
        .post(format!("https://{}/api/v1/sql", server.http))
        .header("content-type", "application/json")
        .body(json!({ "sql": sql }).to_string())
        .send()
        .expect("the API answers over TLS")
        .text()
        .unwrap()
        .parse()
        .unwrap();
    answer["rows"].clone()
}

/// Polls a count until it equals `want` (exporters flush asynchronously).
fn wait_for_count(client: &reqwest::blocking::Client, server: &Server, sql: &str, want: i64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = rows(client, server, sql)[0][0].clone();
        if got == json!(want) {
            return;
        }
        assert!(Instant::now() < deadline, "{sql}: {got}, want {want}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Runs tests/python/export.py against an https:// endpoint with the
/// standard OTLP TLS variables; returns whether it exported without error.
fn python_export(endpoint: &str, protocol: &str, run: &str, env: &[(&str, String)]) -> bool {
    let out = smolder_tests::python_export_command(".venv-otel", endpoint, protocol, run)
        .envs(env.iter().map(|(k, v)| (k, v)))
        // requests lets these (set on some machines to the system bundle)
        // win over the exporter's own `verify`: they would hide the
        // variables under test.
        .env_remove("REQUESTS_CA_BUNDLE")
        .env_remove("CURL_CA_BUNDLE")
        .output()
        .expect("running tests/python/export.py");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let ok =
        out.status.success() && !stderr.contains("Failed to export") && !stderr.contains("Error");
    if !ok {
        eprintln!("export.py --protocol {protocol} --endpoint {endpoint}:\n{stderr}");
    }
    ok
}

#[test]
fn python_sdk_grpc_and_http_exporters_send_over_tls_and_the_api_answers_over_tls() {
    let pki = Pki::with_server_and_client("python");
    let server = start(&pki, false);
    let ca = [("OTEL_EXPORTER_OTLP_CERTIFICATE", pki.file("ca.pem"))];
    assert!(python_export(
        &format!("https://{}", server.otlp_grpc),
        "grpc",
        "tls-grpc",
        &ca
    ));
    assert!(python_export(
        &format!("https://{}", server.otlp_http),
        "http/protobuf",
        "tls-http",
        &ca
    ));
    let client = pki.client(false);
    for service in ["pysdk-tls-grpc", "pysdk-tls-http"] {
        wait_for_count(
            &client,
            &server,
            &format!("SELECT count(*) FROM spans WHERE service_name = '{service}'"),
            2,
        );
        wait_for_count(
            &client,
            &server,
            &format!("SELECT count(*) FROM logs WHERE service_name = '{service}'"),
            2,
        );
    }
    // An exporter that does not trust the server's CA sends nothing.
    let other = Pki::new("stranger");
    let untrusted = [
        ("OTEL_EXPORTER_OTLP_CERTIFICATE", other.file("ca.pem")),
        // Seconds: give up retrying soon.
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "2".into()),
    ];
    assert!(!python_export(
        &format!("https://{}", server.otlp_http),
        "http/protobuf",
        "tls-untrusted",
        &untrusted
    ));
    assert_eq!(
        rows(
            &client,
            &server,
            "SELECT count(*) FROM spans WHERE service_name = 'pysdk-tls-untrusted'"
        ),
        json!([[0]])
    );
}

#[test]
fn mutual_tls_takes_exporters_with_a_client_certificate_and_refuses_those_without() {
    let pki = Pki::with_server_and_client("mutual");
    let server = start(&pki, true);
    let with_identity = [
        ("OTEL_EXPORTER_OTLP_CERTIFICATE", pki.file("ca.pem")),
        (
            "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
            pki.file("client.pem"),
        ),
        ("OTEL_EXPORTER_OTLP_CLIENT_KEY", pki.file("client-key.pem")),
    ];
    assert!(python_export(
        &format!("https://{}", server.otlp_grpc),
        "grpc",
        "mtls-grpc",
        &with_identity
    ));
    assert!(python_export(
        &format!("https://{}", server.otlp_http),
        "http/protobuf",
        "mtls-http",
        &with_identity
    ));
    let without = [
        ("OTEL_EXPORTER_OTLP_CERTIFICATE", pki.file("ca.pem")),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "2".into()),
    ];
    assert!(!python_export(
        &format!("https://{}", server.otlp_http),
        "http/protobuf",
        "mtls-anonymous",
        &without
    ));

    // The API asks for the certificate too.
    let anonymous = pki.client(false);
    assert!(
        anonymous
            .get(format!("https://{}/healthz", server.http))
            .send()
            .is_err(),
        "a client without a certificate is refused in the handshake"
    );
    let client = pki.client(true);
    for service in ["pysdk-mtls-grpc", "pysdk-mtls-http"] {
        wait_for_count(
            &client,
            &server,
            &format!("SELECT count(*) FROM spans WHERE service_name = '{service}'"),
            2,
        );
    }
    assert_eq!(
        rows(
            &client,
            &server,
            "SELECT count(*) FROM spans WHERE service_name = 'pysdk-mtls-anonymous'"
        ),
        json!([[0]])
    );

    // smolder's own commands take the same certificates.
    let loadgen = Command::new(smolder_bin())
        .args(["loadgen", "--endpoint"])
        .arg(format!("https://{}", server.otlp_grpc))
        .args(["--ca-cert", &pki.file("ca.pem")])
        .args(["--client-cert", &pki.file("client.pem")])
        .args(["--client-key", &pki.file("client-key.pem")])
        .args(["--requests", "3", "--batch-size", "10", "--json"])
        .output()
        .unwrap();
    assert!(loadgen.status.success(), "{loadgen:?}");
    let report: Value = serde_json::from_slice(&loadgen.stdout).unwrap();
    assert_eq!(report["items_acknowledged"], json!(30), "{report}");
    let silences = Command::new(smolder_bin())
        .args(["silence", "list", "--json", "--server"])
        .arg(format!("https://{}", server.http))
        .env("SMOLDER_CA_CERT", pki.file("ca.pem"))
        .env("SMOLDER_CLIENT_CERT", pki.file("client.pem"))
        .env("SMOLDER_CLIENT_KEY", pki.file("client-key.pem"))
        .output()
        .unwrap();
    assert!(silences.status.success(), "{silences:?}");
    assert_eq!(String::from_utf8_lossy(&silences.stdout).trim(), "[]");
}

#[test]
fn rust_otlp_exporters_send_over_mutual_tls() {
    let pki = Pki::with_server_and_client("rust");
    let server = start(&pki, true);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .worker_threads(2)
        .build()
        .unwrap();
    let ca = std::fs::read(pki.path("ca.pem")).unwrap();
    let (cert, key) = (
        std::fs::read(pki.path("client.pem")).unwrap(),
        std::fs::read(pki.path("client-key.pem")).unwrap(),
    );
    // gRPC: tonic's TLS settings, as the exporter's documentation shows.
    let grpc = runtime.block_on(async {
        use opentelemetry_otlp::WithTonicConfig as _;
        let tls = tonic::transport::ClientTlsConfig::new()
            .ca_certificate(tonic::transport::Certificate::from_pem(&ca))
            .identity(tonic::transport::Identity::from_pem(&cert, &key));
        SpanExporter::builder()
            .with_tonic()
            .with_endpoint(format!("https://{}", server.otlp_grpc))
            .with_tls_config(tls)
            .build()
            .unwrap()
    });
    // HTTP: the exporter's own reqwest client, trusting the CA.
    let http = SpanExporter::builder()
        .with_http()
        .with_endpoint(format!("https://{}/v1/traces", server.otlp_http))
        .with_http_client(pki.client(true))
        .build()
        .unwrap();
    for (service, exporter) in [("rust-tls-grpc", grpc), ("rust-tls-http", http)] {
        let provider = SdkTracerProvider::builder()
            .with_resource(Resource::builder().with_service_name(service).build())
            .with_batch_exporter(exporter)
            .build();
        let tracer = provider.tracer("smolder.e2e.tls");
        for i in 0..5 {
            tracer.in_span(format!("work {i}"), |_| {});
        }
        provider
            .shutdown()
            .expect("the exporter delivered its spans");
    }
    let client = pki.client(true);
    for service in ["rust-tls-grpc", "rust-tls-http"] {
        wait_for_count(
            &client,
            &server,
            &format!("SELECT count(*) FROM spans WHERE service_name = '{service}'"),
            5,
        );
    }
}

/// Replaces `to` with `from` the way renewal tools do: a new file renamed
/// over the old one.
fn replace(from: &Path, to: &Path) {
    let staged = to.with_extension("new");
    std::fs::copy(from, &staged).unwrap();
    std::fs::rename(&staged, to).unwrap();
}

#[test]
fn a_certificate_renewed_on_disk_is_used_without_a_restart() {
    let old = Pki::with_server_and_client("old");
    let new = Pki::with_server_and_client("new");
    // The server's files live apart from either CA's.
    let live = tempfile::tempdir().unwrap();
    let (cert, key) = (live.path().join("tls.crt"), live.path().join("tls.key"));
    replace(&old.path("server.pem"), &cert);
    replace(&old.path("server-key.pem"), &key);
    let server = Server::start(&[
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ]);
    let health = |pki: &Pki| {
        pki.client(false)
            .get(format!("https://{}/healthz", server.http))
            .send()
            .is_ok_and(|r| r.status() == 200)
    };
    assert!(health(&old));
    assert!(!health(&new));

    // A renewal caught halfway (the key not yet written) is not used: the
    // certificate in service stays.
    replace(&new.path("server.pem"), &cert);
    std::thread::sleep(Duration::from_secs(3));
    assert!(health(&old), "a certificate without its key is not taken");

    replace(&new.path("server-key.pem"), &key);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !health(&new) {
        assert!(
            Instant::now() < deadline,
            "the renewed certificate is in use within 20 s"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(!health(&old), "the old certificate is no longer presented");
}

#[test]
fn plain_http_sent_to_a_tls_port_is_told_to_use_https() {
    let pki = Pki::with_server_and_client("plain");
    let server = start(&pki, false);
    let (status, body) = smolder_tests::http_request(server.http, "GET", "/healthz", &[], b"");
    assert_eq!(status, 400);
    assert!(
        body.contains("This port speaks TLS: use https://"),
        "{body}"
    );
    // The listener is unharmed.
    let ok = pki
        .client(false)
        .get(format!("https://{}/healthz", server.http))
        .send()
        .unwrap();
    assert_eq!(ok.status(), 200);
}

/// A SQL query over plain HTTP to `node`: the whole answer.
fn node_sql(node: &smolder_tests::cluster::Node, sql: &str) -> Value {
    let (status, text) = smolder_tests::http_post(
        node.addr("http"),
        "/api/v1/sql",
        "application/json",
        json!({ "sql": sql }).to_string().as_bytes(),
    );
    assert_eq!(status, 200, "{sql}: {text}");
    serde_json::from_str(&text).unwrap()
}

#[test]
fn a_querier_reads_an_ingesters_buffer_over_tls_when_it_trusts_the_ingesters_ca() {
    let pki = Pki::with_server_and_client("cluster");
    let s3 = smolder_tests::s3::S3Server::start();
    // Nothing is flushed during the test: the querier can only find the
    // spans in the ingester's buffer, over Arrow Flight.
    let mut flags = pki.serve_flags(false);
    flags.extend(["--flush-interval".into(), "1h".into()]);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let ingester = smolder_tests::cluster::Node::start(&s3, "tls", "ingest", &flags);
    let flight = ingester.addr("flight").to_string();
    let trusting = smolder_tests::cluster::Node::start(
        &s3,
        "tls",
        "query",
        &["--ingesters", &flight, "--ingester-ca", &pki.file("ca.pem")],
    );
    let plain = smolder_tests::cluster::Node::start(&s3, "tls", "query", &["--ingesters", &flight]);

    let ca = [("OTEL_EXPORTER_OTLP_CERTIFICATE", pki.file("ca.pem"))];
    assert!(python_export(
        &format!("https://{}", ingester.addr("otlp_grpc")),
        "grpc",
        "tls-cluster",
        &ca
    ));
    let count = "SELECT count(*) FROM spans WHERE service_name = 'pysdk-tls-cluster'";
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let answer = node_sql(&trusting, count);
        assert!(answer.get("warnings").is_none(), "{answer}");
        if answer["rows"][0][0] == json!(2) {
            break;
        }
        assert!(Instant::now() < deadline, "{answer}");
        std::thread::sleep(Duration::from_millis(100));
    }
    // A querier that speaks plain HTTP/2 to the TLS listener gets nothing
    // from it, answers with what the bucket holds, and names the ingester.
    let answer = node_sql(&plain, count);
    assert_eq!(answer["rows"][0][0], json!(0), "{answer}");
    assert!(answer["warnings"].to_string().contains(&flight), "{answer}");
}
